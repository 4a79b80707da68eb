/* runtime/device.h - the device layer of libnnrt: one small interface over
 * the host CPU (a thread pool), NVIDIA GPUs (the CUDA driver API) and OpenCL
 * devices (GPUs, CPUs, FPGAs and other accelerators).
 *
 * A trained program opens one device, allocates buffers, loads the code nnc
 * generated for that device (PTX text, OpenCL C source or an OpenCL binary,
 * or a table of native functions linked into the program), looks up its
 * kernels and launches them.  Nothing links against a GPU or OpenCL library:
 * libcuda.so.1 and libOpenCL.so.1 are opened with dlopen on first use, so the
 * same program starts on machines that have neither (they then simply have
 * no such devices).
 *
 *   device.c         dispatch, listing, spec parsing, launch recording
 *   device_cpu.c     host memory + native kernels over the pool (pool.h)
 *   device_cuda.c    CUDA driver API through cuGetProcAddress
 *   device_opencl.c  OpenCL through the ICD loader
 *
 * Every fallible call fills an RtError (runtime/data.h) with a one-line,
 * lower-case message that says what failed and where, e.g.
 *   cuda: cuMemAlloc(50331648 bytes) failed at runtime/device_cuda.c:361: CUDA_ERROR_OUT_OF_MEMORY (out of memory)
 * and returns -1 or NULL.  A device is used by one host thread at a time.
 * See docs/runtime-devices.md.
 */
#ifndef NNRT_DEVICE_H
#define NNRT_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "data.h" /* RtError */

typedef enum { RT_DEVICE_CPU, RT_DEVICE_CUDA, RT_DEVICE_OPENCL } RtDeviceKind;

typedef struct RtDeviceInfo {
  RtDeviceKind kind;
  int index;              /* within its kind: cuda:0, opencl:1 (cpu is 0) */
  char name[256];         /* "NVIDIA H100 80GB HBM3", "pthread-skylake-avx512-..." */
  char vendor[128];       /* "NVIDIA", "GenuineIntel", ... */
  char platform[128];     /* OpenCL platform name, "CUDA", or "host" */
  char type[16];          /* "CPU", "GPU", "FPGA/ASIC" (accelerator or custom), "other" */
  uint64_t memory_bytes;  /* global memory (CPU: physical memory) */
  int compute_units;      /* CPU: threads, CUDA: SMs, OpenCL: compute units */
  char version[128];      /* "sm_90, driver 13.0", "OpenCL C 1.2", CPU: machine */
} RtDeviceInfo;

/* "cpu", "cuda", "opencl" */
const char *rt_device_kind_name(RtDeviceKind kind);

/* Fills out[0 .. min(found, max)) with every device of every kind (cpu
 * first, then cuda:0.., then opencl:0..) and returns how many were found;
 * out may be NULL when max is 0. */
int rt_device_list(RtDeviceInfo *out, int max);

/* `--list-devices`: one line per device, and for a kind with none a line
 * saying why, e.g.
 *   cpu        CPU        Intel(R) Xeon(R) Processor  2 threads, 23.4 GiB
 *   cuda: no CUDA driver found (libcuda.so.1 could not be loaded)
 *   opencl:0   CPU        pthread-skylake-avx512-... (Portable Computing Language)  2 compute units, 5.2 GiB, OpenCL C 1.2 */
void rt_device_print_list(FILE *out);

/* Parses "cpu", "cuda", "cuda:N", "opencl", "opencl:N" (no index = 0).
 * Returns 0, or -1 with err set for anything else. */
int rt_device_parse(const char *spec, RtDeviceKind *kind, int *index, RtError *err);

typedef struct RtDevice RtDevice;
typedef struct RtMem RtMem;
typedef struct RtModule RtModule;
typedef struct RtKernel RtKernel;

/* Opens device `index` of `kind`.  cpu_threads is the CPU pool size (0 = one
 * per CPU this process may run on); the other kinds ignore it. */
RtDevice *rt_device_open(RtDeviceKind kind, int index, int cpu_threads, RtError *err);
/* Frees everything still allocated on the device (buffers, modules,
 * kernels, a captured sequence), then the device.  NULL is allowed. */
void rt_device_close(RtDevice *d);
const RtDeviceInfo *rt_device_info(const RtDevice *d);
/* The compiler log of the last rt_module_load (OpenCL build log, CUDA JIT
 * info and error logs), complete even where err->msg had to cut it; "" if
 * none. Valid until the next rt_module_load or rt_device_close. */
const char *rt_device_log(const RtDevice *d);

/* Buffers.  rt_mem_alloc returns zero-filled memory (at least 64-byte
 * aligned on the CPU).  Reads and writes are bounds-checked against the
 * size and complete before they return. */
RtMem *rt_mem_alloc(RtDevice *d, size_t bytes, RtError *err);
void rt_mem_free(RtDevice *d, RtMem *m);
size_t rt_mem_size(const RtMem *m);
void *rt_mem_host(const RtMem *m); /* CPU device: the memory itself; else NULL */
int rt_mem_write(RtDevice *d, RtMem *m, size_t offset, const void *src, size_t bytes, RtError *err);
int rt_mem_read(RtDevice *d, RtMem *m, size_t offset, void *dst, size_t bytes, RtError *err);

/* A native CPU kernel: runs the work items [begin, end) of a launch.
 * args[i] points at the value of argument i, as in cuLaunchKernel: for a
 * buffer a `void *` holding its address, for RT_ARG_I64 an int64_t, and so
 * on:   float *x = *(float **)args[0]; int64_t n = *(int64_t *)args[1]; */
typedef void (*RtNativeKernel)(void **args, int64_t begin, int64_t end);

typedef enum {
  RT_CODE_PTX,       /* data: PTX text (CUDA) */
  RT_CODE_CL_SOURCE, /* data: OpenCL C source; options: build options */
  RT_CODE_CL_BINARY, /* data: a binary from rt_module_binary or an offline compiler (aoc, v++) */
  RT_CODE_NATIVE     /* native_names[i] names native_fns[i] (CPU) */
} RtCodeKind;

typedef struct RtCode {
  RtCodeKind kind;
  const void *data;
  size_t size;                    /* bytes of data; 0 = NUL-terminated text */
  const char *options;            /* OpenCL build options, or NULL */
  const char *const *native_names;
  const RtNativeKernel *native_fns;
  int nnative;
} RtCode;

/* Whether devices of `kind` run code of kind `code`. */
int rt_device_loads(RtDeviceKind kind, RtCodeKind code);
/* The first kind of device (in RtDeviceKind order) that runs `code`: 0,
 * or -1 when none does.  A trainer's default device is its first one. */
int rt_device_kind_for(RtCodeKind code, RtDeviceKind *kind);
/* The spec of the first device of a kind: "cpu", "cuda:0", "opencl:0". */
const char *rt_device_first_spec(RtDeviceKind kind);

/* Loads (compiles, for PTX and OpenCL C) code for the device.  Modules and
 * kernels live until rt_device_close. */
RtModule *rt_module_load(RtDevice *d, const RtCode *code, RtError *err);
/* OpenCL: the device binary of a built program, malloc'ed (the caller frees
 * *data), so a tool can save it and load it later as RT_CODE_CL_BINARY. */
int rt_module_binary(RtDevice *d, RtModule *m, void **data, size_t *size, RtError *err);
/* The same name gives the same kernel. */
RtKernel *rt_kernel_get(RtDevice *d, RtModule *m, const char *name, RtError *err);

typedef enum { RT_ARG_MEM, RT_ARG_I64, RT_ARG_I32, RT_ARG_F32 } RtArgKind;
typedef struct RtArg {
  RtArgKind kind;
  RtMem *mem;  /* RT_ARG_MEM */
  int64_t i;   /* RT_ARG_I64, RT_ARG_I32 */
  float f;     /* RT_ARG_F32 */
} RtArg;
enum { RT_MAX_ARGS = 64 }; /* arguments per launch */

static inline RtArg rt_arg_mem(RtMem *m) { RtArg a = {RT_ARG_MEM, m, 0, 0}; return a; }
static inline RtArg rt_arg_i64(int64_t v) { RtArg a = {RT_ARG_I64, NULL, v, 0}; return a; }
static inline RtArg rt_arg_i32(int32_t v) { RtArg a = {RT_ARG_I32, NULL, v, 0}; return a; }
static inline RtArg rt_arg_f32(float v) { RtArg a = {RT_ARG_F32, NULL, 0, v}; return a; }

/* Launches a kernel; grid and block have 3 dimensions (0 counts as 1):
 *   CUDA    grid = blocks, block = threads per block
 *   OpenCL  global size = grid * block, local size = block;
 *           block[0] == 0: global size = grid, local size left to the driver
 *   CPU     the work items [0, grid[0]) split over the pool in chunks of at
 *           least block[0] items (0 = any); grid[1] and grid[2] must be 1
 * Launches are asynchronous on CUDA and OpenCL (in order on one stream or
 * queue); rt_mem_read and rt_device_sync wait for them. */
int rt_launch(RtDevice *d, RtKernel *k, const RtArg *args, int nargs, const uint32_t grid[3],
              const uint32_t block[3], RtError *err);
int rt_device_sync(RtDevice *d, RtError *err);

/* Capture a sequence of launches once, then replay it with one call per
 * training step: a CUDA graph on CUDA; elsewhere the runtime records the
 * launches and replays them itself.  Between begin and end only rt_launch is
 * allowed, and launches are recorded, not run.  A new capture replaces the
 * old one; arguments are fixed at capture time, so buffers used by a
 * captured sequence must live as long as it is replayed. */
int rt_capture_begin(RtDevice *d, RtError *err);
int rt_capture_end(RtDevice *d, RtError *err);
int rt_replay(RtDevice *d, RtError *err);

#endif
