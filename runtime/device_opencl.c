/* runtime/device_opencl.c - OpenCL devices through the ICD loader.
 *
 * libOpenCL.so.1 (ocl-icd or a vendor's loader) is opened with dlopen on
 * first use and every cl* function is taken from it with dlsym, so nothing
 * links against OpenCL; CL/cl.h is used for types and constants only.
 * Devices of every type on every platform are numbered in the order the
 * loader reports them: opencl:0, opencl:1, ...  A device is one context and
 * one in-order command queue.  Programs are built from OpenCL C source or
 * created from a binary (offline FPGA flows: aoc, v++), and the binary of a
 * built program can be read back.  Every call goes through CL_CHECK, which
 * names the function, its site and the error:
 *   opencl: clCreateBuffer(1048576 bytes) failed at runtime/device_opencl.c:301: CL_INVALID_BUFFER_SIZE
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "device_impl.h"

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001 /* cl_khr_icd, CL/cl_ext.h */
#endif

/* ---- the loader ----------------------------------------------------------- */

static struct {
  cl_int (*GetPlatformIDs)(cl_uint, cl_platform_id *, cl_uint *);
  cl_int (*GetPlatformInfo)(cl_platform_id, cl_platform_info, size_t, void *, size_t *);
  cl_int (*GetDeviceIDs)(cl_platform_id, cl_device_type, cl_uint, cl_device_id *, cl_uint *);
  cl_int (*GetDeviceInfo)(cl_device_id, cl_device_info, size_t, void *, size_t *);
  cl_context (*CreateContext)(const cl_context_properties *, cl_uint, const cl_device_id *,
                              void (*)(const char *, const void *, size_t, void *), void *, cl_int *);
  cl_int (*ReleaseContext)(cl_context);
  cl_command_queue (*CreateCommandQueue)(cl_context, cl_device_id, cl_command_queue_properties, cl_int *);
  cl_int (*ReleaseCommandQueue)(cl_command_queue);
  cl_mem (*CreateBuffer)(cl_context, cl_mem_flags, size_t, void *, cl_int *);
  cl_int (*ReleaseMemObject)(cl_mem);
  cl_int (*EnqueueWriteBuffer)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *, cl_uint,
                               const cl_event *, cl_event *);
  cl_int (*EnqueueReadBuffer)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *, cl_uint,
                              const cl_event *, cl_event *);
  cl_int (*EnqueueFillBuffer)(cl_command_queue, cl_mem, const void *, size_t, size_t, size_t, cl_uint,
                              const cl_event *, cl_event *);
  cl_program (*CreateProgramWithSource)(cl_context, cl_uint, const char **, const size_t *, cl_int *);
  cl_program (*CreateProgramWithBinary)(cl_context, cl_uint, const cl_device_id *, const size_t *,
                                        const unsigned char **, cl_int *, cl_int *);
  cl_int (*BuildProgram)(cl_program, cl_uint, const cl_device_id *, const char *,
                         void (*)(cl_program, void *), void *);
  cl_int (*GetProgramBuildInfo)(cl_program, cl_device_id, cl_program_build_info, size_t, void *, size_t *);
  cl_int (*GetProgramInfo)(cl_program, cl_program_info, size_t, void *, size_t *);
  cl_int (*ReleaseProgram)(cl_program);
  cl_kernel (*CreateKernel)(cl_program, const char *, cl_int *);
  cl_int (*ReleaseKernel)(cl_kernel);
  cl_int (*SetKernelArg)(cl_kernel, cl_uint, size_t, const void *);
  cl_int (*EnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *,
                                 const size_t *, cl_uint, const cl_event *, cl_event *);
  cl_int (*Finish)(cl_command_queue);
} cl;

/* ORDER: one name per field of `cl`, in order. */
static const char *const cl_names[] = {
    "clGetPlatformIDs", "clGetPlatformInfo", "clGetDeviceIDs", "clGetDeviceInfo", "clCreateContext",
    "clReleaseContext", "clCreateCommandQueue", "clReleaseCommandQueue", "clCreateBuffer", "clReleaseMemObject",
    "clEnqueueWriteBuffer", "clEnqueueReadBuffer", "clEnqueueFillBuffer", "clCreateProgramWithSource",
    "clCreateProgramWithBinary", "clBuildProgram", "clGetProgramBuildInfo", "clGetProgramInfo",
    "clReleaseProgram", "clCreateKernel", "clReleaseKernel", "clSetKernelArg", "clEnqueueNDRangeKernel",
    "clFinish",
};
_Static_assert(sizeof cl == sizeof cl_names / sizeof cl_names[0] * sizeof(void (*)(void)),
               "ORDER: cl_names has one name per field of cl");

static pthread_once_t cl_once = PTHREAD_ONCE_INIT;
static RtError cl_load_error; /* empty when the loader is usable */

static void cl_load(void) {
  void *lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) lib = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    rt_error_set(&cl_load_error, "no OpenCL loader found (libOpenCL.so.1 could not be loaded)");
    return;
  }
  for (size_t i = 0; i < sizeof cl_names / sizeof cl_names[0]; i++) {
    void *fn = dlsym(lib, cl_names[i]);
    if (!fn) {
      rt_error_set(&cl_load_error, "opencl: the OpenCL loader has no %s (OpenCL 1.2 is needed)", cl_names[i]);
      memset(&cl, 0, sizeof cl);
      return;
    }
    memcpy((char *)&cl + i * sizeof fn, &fn, sizeof fn); /* field i of cl */
  }
}

static int cl_ready(RtError *err) {
  pthread_once(&cl_once, cl_load);
  if (!cl_load_error.msg[0]) return 0;
  return rt_error_set(err, "%s", cl_load_error.msg);
}

/* ---- errors ------------------------------------------------------------- */

/* The names of the error codes of CL/cl.h (1.0 - 3.0) and cl_ext.h. */
static const char *cl_error_name(cl_int e) {
  switch (e) {
#define E(name, value) case value: return #name;
  E(CL_SUCCESS, 0)
  E(CL_DEVICE_NOT_FOUND, -1)
  E(CL_DEVICE_NOT_AVAILABLE, -2)
  E(CL_COMPILER_NOT_AVAILABLE, -3)
  E(CL_MEM_OBJECT_ALLOCATION_FAILURE, -4)
  E(CL_OUT_OF_RESOURCES, -5)
  E(CL_OUT_OF_HOST_MEMORY, -6)
  E(CL_PROFILING_INFO_NOT_AVAILABLE, -7)
  E(CL_MEM_COPY_OVERLAP, -8)
  E(CL_IMAGE_FORMAT_MISMATCH, -9)
  E(CL_IMAGE_FORMAT_NOT_SUPPORTED, -10)
  E(CL_BUILD_PROGRAM_FAILURE, -11)
  E(CL_MAP_FAILURE, -12)
  E(CL_MISALIGNED_SUB_BUFFER_OFFSET, -13)
  E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, -14)
  E(CL_COMPILE_PROGRAM_FAILURE, -15)
  E(CL_LINKER_NOT_AVAILABLE, -16)
  E(CL_LINK_PROGRAM_FAILURE, -17)
  E(CL_DEVICE_PARTITION_FAILED, -18)
  E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE, -19)
  E(CL_INVALID_VALUE, -30)
  E(CL_INVALID_DEVICE_TYPE, -31)
  E(CL_INVALID_PLATFORM, -32)
  E(CL_INVALID_DEVICE, -33)
  E(CL_INVALID_CONTEXT, -34)
  E(CL_INVALID_QUEUE_PROPERTIES, -35)
  E(CL_INVALID_COMMAND_QUEUE, -36)
  E(CL_INVALID_HOST_PTR, -37)
  E(CL_INVALID_MEM_OBJECT, -38)
  E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR, -39)
  E(CL_INVALID_IMAGE_SIZE, -40)
  E(CL_INVALID_SAMPLER, -41)
  E(CL_INVALID_BINARY, -42)
  E(CL_INVALID_BUILD_OPTIONS, -43)
  E(CL_INVALID_PROGRAM, -44)
  E(CL_INVALID_PROGRAM_EXECUTABLE, -45)
  E(CL_INVALID_KERNEL_NAME, -46)
  E(CL_INVALID_KERNEL_DEFINITION, -47)
  E(CL_INVALID_KERNEL, -48)
  E(CL_INVALID_ARG_INDEX, -49)
  E(CL_INVALID_ARG_VALUE, -50)
  E(CL_INVALID_ARG_SIZE, -51)
  E(CL_INVALID_KERNEL_ARGS, -52)
  E(CL_INVALID_WORK_DIMENSION, -53)
  E(CL_INVALID_WORK_GROUP_SIZE, -54)
  E(CL_INVALID_WORK_ITEM_SIZE, -55)
  E(CL_INVALID_GLOBAL_OFFSET, -56)
  E(CL_INVALID_EVENT_WAIT_LIST, -57)
  E(CL_INVALID_EVENT, -58)
  E(CL_INVALID_OPERATION, -59)
  E(CL_INVALID_GL_OBJECT, -60)
  E(CL_INVALID_BUFFER_SIZE, -61)
  E(CL_INVALID_MIP_LEVEL, -62)
  E(CL_INVALID_GLOBAL_WORK_SIZE, -63)
  E(CL_INVALID_PROPERTY, -64)
  E(CL_INVALID_IMAGE_DESCRIPTOR, -65)
  E(CL_INVALID_COMPILER_OPTIONS, -66)
  E(CL_INVALID_LINKER_OPTIONS, -67)
  E(CL_INVALID_DEVICE_PARTITION_COUNT, -68)
  E(CL_INVALID_PIPE_SIZE, -69)
  E(CL_INVALID_DEVICE_QUEUE, -70)
  E(CL_INVALID_SPEC_ID, -71)
  E(CL_MAX_SIZE_RESTRICTION_EXCEEDED, -72)
  E(CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR, -1000)
  E(CL_PLATFORM_NOT_FOUND_KHR, -1001)
  E(CL_DEVICE_PARTITION_FAILED_EXT, -1057)
  E(CL_INVALID_PARTITION_COUNT_EXT, -1058)
  E(CL_INVALID_PARTITION_NAME_EXT, -1059)
#undef E
  }
  return NULL;
}

static int cl_fail(RtError *err, cl_int e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int cl_fail(RtError *err, cl_int e, const char *file, int line, const char *fmt, ...) {
  char call[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(call, sizeof call, fmt, ap);
  va_end(ap);
  const char *name = cl_error_name(e);
  if (name)
    return rt_error_set(err, "opencl: %s failed at %s:%d: %s", call, rt_site_file(file), line, name);
  return rt_error_set(err, "opencl: %s failed at %s:%d: error %d", call, rt_site_file(file), line, (int)e);
}

/* CL_CHECK(err, call, "what(%d)", args...): on failure fill err and return -1 */
#define CL_CHECK(err, call, ...)                                                \
  do {                                                                          \
    cl_int cl_e_ = (call);                                                      \
    if (cl_e_ != CL_SUCCESS) return cl_fail(err, cl_e_, __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

/* ---- devices ------------------------------------------------------------ */

enum { MAX_PLATFORMS = 16, MAX_DEVICES = 64 };

/* Every device of every platform, in order; returns the count, or -1 with
 * err set when there is no platform at all. */
static int cl_all_devices(cl_device_id *devs, cl_platform_id *plats, int max, RtError *err) {
  if (cl_ready(err)) return -1;
  cl_platform_id platforms[MAX_PLATFORMS];
  cl_uint np = 0;
  cl_int e = cl.GetPlatformIDs(MAX_PLATFORMS, platforms, &np);
  if (e == CL_PLATFORM_NOT_FOUND_KHR || (e == CL_SUCCESS && np == 0))
    return rt_error_set(err, "no OpenCL platform found");
  CL_CHECK(err, e, "clGetPlatformIDs");
  if (np > MAX_PLATFORMS) np = MAX_PLATFORMS;
  int n = 0;
  for (cl_uint p = 0; p < np && n < max; p++) {
    cl_uint nd = 0;
    e = cl.GetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, (cl_uint)(max - n), devs + n, &nd);
    if (e == CL_DEVICE_NOT_FOUND) continue;
    CL_CHECK(err, e, "clGetDeviceIDs(platform %u)", p);
    if (nd > (cl_uint)(max - n)) nd = (cl_uint)(max - n);
    for (cl_uint i = 0; i < nd; i++) plats[n + (int)i] = platforms[p];
    n += (int)nd;
  }
  return n;
}

static void cl_string(cl_device_id dev, cl_device_info what, char *out, size_t size) {
  char buf[512] = "";
  if (cl.GetDeviceInfo(dev, what, sizeof buf - 1, buf, NULL) != CL_SUCCESS) buf[0] = 0;
  buf[sizeof buf - 1] = 0;
  rt_copy_trimmed(out, size, buf);
}

static void cl_info(cl_device_id dev, cl_platform_id plat, int index, RtDeviceInfo *info) {
  memset(info, 0, sizeof *info);
  info->kind = RT_DEVICE_OPENCL;
  info->index = index;
  cl_string(dev, CL_DEVICE_NAME, info->name, sizeof info->name);
  cl_string(dev, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
  char buf[256] = "";
  if (cl.GetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof buf - 1, buf, NULL) != CL_SUCCESS) buf[0] = 0;
  buf[sizeof buf - 1] = 0;
  rt_copy_trimmed(info->platform, sizeof info->platform, buf);
  cl_device_type type = 0;
  cl.GetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  const char *t = "other";
  if (type & CL_DEVICE_TYPE_GPU)
    t = "GPU";
  else if (type & CL_DEVICE_TYPE_CPU)
    t = "CPU";
  else if (type & (CL_DEVICE_TYPE_ACCELERATOR | CL_DEVICE_TYPE_CUSTOM))
    t = "FPGA/ASIC";
  snprintf(info->type, sizeof info->type, "%s", t);
  cl_ulong mem = 0;
  cl.GetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
  info->memory_bytes = mem;
  cl_uint units = 0;
  cl.GetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
  info->compute_units = (int)units;
  /* "OpenCL C 1.2 PoCL" -> "OpenCL C 1.2" (the vendor's words are in name) */
  cl_string(dev, CL_DEVICE_OPENCL_C_VERSION, info->version, sizeof info->version);
  char *sp = strchr(info->version, ' ');
  if (sp) sp = strchr(sp + 1, ' ');
  if (sp) sp = strchr(sp + 1, ' ');
  if (sp && strncmp(info->version, "OpenCL C ", 9) == 0) *sp = 0;
}

static int opencl_list(RtDeviceInfo *out, int max, RtError *why) {
  cl_device_id devs[MAX_DEVICES];
  cl_platform_id plats[MAX_DEVICES];
  int n = cl_all_devices(devs, plats, MAX_DEVICES, why);
  if (n < 0) return -1;
  if (n == 0) return rt_error_set(why, "no OpenCL device found");
  for (int i = 0; i < n && i < max; i++) cl_info(devs[i], plats[i], i, &out[i]);
  return n;
}

typedef struct ClDevice {
  cl_device_id dev;
  cl_context ctx;
  cl_command_queue queue;
} ClDevice;

static int opencl_open(RtDevice *d, int index, int cpu_threads, RtError *err) {
  (void)cpu_threads;
  cl_device_id devs[MAX_DEVICES];
  cl_platform_id plats[MAX_DEVICES];
  int n = cl_all_devices(devs, plats, MAX_DEVICES, err);
  if (n < 0) return -1;
  if (n == 0) return rt_error_set(err, "no OpenCL device found");
  if (index >= n)
    return rt_error_set(err, "opencl:%d does not exist (%d OpenCL device%s found)", index, n, n == 1 ? "" : "s");
  ClDevice *c = calloc(1, sizeof *c);
  if (!c) return rt_error_set(err, "opencl: out of memory");
  c->dev = devs[index];
  cl_info(c->dev, plats[index], index, &d->info);
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plats[index], 0};
  cl_int e = CL_SUCCESS;
  c->ctx = cl.CreateContext(props, 1, &c->dev, NULL, NULL, &e);
  if (e != CL_SUCCESS) {
    free(c);
    return cl_fail(err, e, __FILE__, __LINE__, "clCreateContext(opencl:%d)", index);
  }
  c->queue = cl.CreateCommandQueue(c->ctx, c->dev, 0, &e); /* in order */
  if (e != CL_SUCCESS) {
    cl.ReleaseContext(c->ctx);
    free(c);
    return cl_fail(err, e, __FILE__, __LINE__, "clCreateCommandQueue(opencl:%d)", index);
  }
  d->impl = c;
  return 0;
}

static void opencl_close(RtDevice *d) {
  ClDevice *c = d->impl;
  cl.Finish(c->queue);
  cl.ReleaseCommandQueue(c->queue);
  cl.ReleaseContext(c->ctx);
  free(c);
}

/* ---- memory ------------------------------------------------------------- */

static int opencl_mem_alloc(RtDevice *d, RtMem *m, RtError *err) {
  ClDevice *c = d->impl;
  size_t bytes = m->bytes ? m->bytes : 1;
  cl_int e = CL_SUCCESS;
  cl_mem buf = cl.CreateBuffer(c->ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
  CL_CHECK(err, e, "clCreateBuffer(%zu bytes)", m->bytes);
  /* zero-fill; it also makes lazy allocators fail here, not at first use */
  const unsigned char zero = 0;
  e = cl.EnqueueFillBuffer(c->queue, buf, &zero, 1, 0, bytes, 0, NULL, NULL);
  if (e == CL_SUCCESS) e = cl.Finish(c->queue);
  if (e != CL_SUCCESS) {
    cl.ReleaseMemObject(buf);
    return cl_fail(err, e, __FILE__, __LINE__, "clEnqueueFillBuffer(%zu bytes)", m->bytes);
  }
  m->handle = (uint64_t)(uintptr_t)buf;
  return 0;
}

static void opencl_mem_free(RtDevice *d, RtMem *m) {
  ClDevice *c = d->impl;
  cl.Finish(c->queue); /* kernels may still use it */
  cl.ReleaseMemObject((cl_mem)(uintptr_t)m->handle);
}

static int opencl_mem_write(RtDevice *d, RtMem *m, size_t offset, const void *src, size_t bytes, RtError *err) {
  ClDevice *c = d->impl;
  CL_CHECK(err, cl.EnqueueWriteBuffer(c->queue, (cl_mem)(uintptr_t)m->handle, CL_TRUE, offset, bytes, src, 0, NULL, NULL),
           "clEnqueueWriteBuffer(%zu bytes)", bytes);
  return 0;
}

static int opencl_mem_read(RtDevice *d, RtMem *m, size_t offset, void *dst, size_t bytes, RtError *err) {
  ClDevice *c = d->impl;
  CL_CHECK(err, cl.EnqueueReadBuffer(c->queue, (cl_mem)(uintptr_t)m->handle, CL_TRUE, offset, bytes, dst, 0, NULL, NULL),
           "clEnqueueReadBuffer(%zu bytes)", bytes);
  return 0;
}

/* ---- programs ----------------------------------------------------------- */

/* The build log of prog on the device, malloc'ed ("" if there is none). */
static char *build_log(ClDevice *c, cl_program prog) {
  size_t size = 0;
  if (cl.GetProgramBuildInfo(prog, c->dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &size) != CL_SUCCESS) size = 0;
  char *log = malloc(size + 1);
  if (!log) return NULL;
  if (size == 0 || cl.GetProgramBuildInfo(prog, c->dev, CL_PROGRAM_BUILD_LOG, size, log, NULL) != CL_SUCCESS)
    size = 0;
  log[size] = 0;
  size_t n = strlen(log); /* drop trailing white space */
  while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' ' || log[n - 1] == '\r')) log[--n] = 0;
  return log;
}

static int opencl_module_load(RtDevice *d, RtModule *mod, const RtCode *code, RtError *err) {
  ClDevice *c = d->impl;
  if (code->kind != RT_CODE_CL_SOURCE && code->kind != RT_CODE_CL_BINARY)
    return rt_error_set(err, "opencl: the OpenCL device loads OpenCL C source or an OpenCL binary only");
  if (!code->data) return rt_error_set(err, "opencl: rt_module_load: no code given");
  cl_int e = CL_SUCCESS;
  cl_program prog;
  const char *what;
  if (code->kind == RT_CODE_CL_SOURCE) {
    const char *src = code->data;
    size_t len = code->size ? code->size : strlen(src);
    prog = cl.CreateProgramWithSource(c->ctx, 1, &src, &len, &e);
    CL_CHECK(err, e, "clCreateProgramWithSource(%zu bytes)", len);
    what = "source";
  } else {
    if (code->size == 0) return rt_error_set(err, "opencl: rt_module_load: an OpenCL binary needs its size");
    const unsigned char *bin = code->data;
    cl_int status = CL_SUCCESS;
    prog = cl.CreateProgramWithBinary(c->ctx, 1, &c->dev, &code->size, &bin, &status, &e);
    if (e == CL_SUCCESS && status != CL_SUCCESS) e = status;
    if (e != CL_SUCCESS) {
      if (prog) cl.ReleaseProgram(prog);
      if (e == CL_INVALID_BINARY)
        return rt_error_set(err, "opencl: the binary (%zu bytes) is not a program for %s", code->size, d->info.name);
      return cl_fail(err, e, __FILE__, __LINE__, "clCreateProgramWithBinary(%zu bytes)", code->size);
    }
    what = "binary";
  }
  const char *options = code->options ? code->options : "";
  int line = __LINE__ + 1; /* the call site, for the message */
  e = cl.BuildProgram(prog, 1, &c->dev, options, NULL, NULL);
  d->log = build_log(c, prog); /* warnings too, for rt_device_log */
  if (e != CL_SUCCESS) {
    cl.ReleaseProgram(prog);
    if (e == CL_BUILD_PROGRAM_FAILURE)
      return rt_error_set(err, "opencl: clBuildProgram (%s, options \"%s\") failed at %s:%d: CL_BUILD_PROGRAM_FAILURE; "
                          "build log:\n%s", what, options, rt_site_file(__FILE__), line,
                          d->log && *d->log ? d->log : "(empty)");
    return cl_fail(err, e, __FILE__, line, "clBuildProgram(%s, options \"%s\")", what, options);
  }
  mod->handle = prog;
  return 0;
}

static void opencl_module_free(RtDevice *d, RtModule *mod) {
  (void)d;
  cl.ReleaseProgram(mod->handle);
}

static int opencl_module_binary(RtDevice *d, RtModule *mod, void **data, size_t *size, RtError *err) {
  (void)d;
  cl_program prog = mod->handle;
  cl_uint ndev = 0;
  CL_CHECK(err, cl.GetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL),
           "clGetProgramInfo(CL_PROGRAM_NUM_DEVICES)");
  if (ndev != 1) return rt_error_set(err, "opencl: the program is built for %u devices, expected 1", ndev);
  size_t bytes = 0;
  CL_CHECK(err, cl.GetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof bytes, &bytes, NULL),
           "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)");
  if (bytes == 0) return rt_error_set(err, "opencl: the driver returned no binary for the program");
  unsigned char *bin = malloc(bytes);
  if (!bin) return rt_error_set(err, "opencl: out of memory reading a %zu-byte program binary", bytes);
  unsigned char *bins[1] = {bin};
  cl_int e = cl.GetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL);
  if (e != CL_SUCCESS) {
    free(bin);
    return cl_fail(err, e, __FILE__, __LINE__, "clGetProgramInfo(CL_PROGRAM_BINARIES)");
  }
  *data = bin;
  *size = bytes;
  return 0;
}

static int opencl_kernel_get(RtDevice *d, RtKernel *k, RtError *err) {
  (void)d;
  cl_int e = CL_SUCCESS;
  cl_kernel kernel = cl.CreateKernel(k->mod->handle, k->name, &e);
  if (e == CL_INVALID_KERNEL_NAME) return rt_error_set(err, "opencl: no kernel named '%s' in the program", k->name);
  CL_CHECK(err, e, "clCreateKernel(%s)", k->name);
  k->handle = kernel;
  return 0;
}

static void opencl_kernel_free(RtDevice *d, RtKernel *k) {
  (void)d;
  if (k->handle) cl.ReleaseKernel(k->handle);
}

/* ---- launches ----------------------------------------------------------- */

static int opencl_launch(RtDevice *d, RtKernel *k, const RtArg *args, int nargs, const uint32_t grid[3],
                         const uint32_t block[3], RtError *err) {
  ClDevice *c = d->impl;
  cl_kernel kernel = k->handle;
  for (int i = 0; i < nargs; i++) {
    cl_mem mem;
    cl_long l;
    cl_int n;
    cl_float f;
    const void *value;
    size_t size;
    switch (args[i].kind) {
    case RT_ARG_MEM: mem = (cl_mem)(uintptr_t)args[i].mem->handle, value = &mem, size = sizeof mem; break;
    case RT_ARG_I64: l = args[i].i, value = &l, size = sizeof l; break;
    case RT_ARG_I32: n = (cl_int)args[i].i, value = &n, size = sizeof n; break;
    case RT_ARG_F32: f = args[i].f, value = &f, size = sizeof f; break;
    default: return rt_error_set(err, "opencl: kernel '%s' argument %d has unknown kind", k->name, i);
    }
    CL_CHECK(err, cl.SetKernelArg(kernel, (cl_uint)i, size, value), "clSetKernelArg(%s, argument %d)", k->name, i);
  }
  cl_uint dims = grid[2] > 1 || block[2] > 1 ? 3 : grid[1] > 1 || block[1] > 1 ? 2 : 1;
  size_t global[3], local[3];
  for (int i = 0; i < 3; i++) {
    local[i] = block[0] ? block[i] : 1;
    global[i] = (size_t)grid[i] * local[i];
  }
  char lsize[64] = "any";
  if (block[0]) snprintf(lsize, sizeof lsize, "%zux%zux%zu", local[0], local[1], local[2]);
  CL_CHECK(err, cl.EnqueueNDRangeKernel(c->queue, kernel, dims, NULL, global, block[0] ? local : NULL, 0, NULL, NULL),
           "clEnqueueNDRangeKernel(%s, global %zux%zux%zu, local %s)", k->name, global[0], global[1], global[2],
           lsize);
  return 0;
}

static int opencl_sync(RtDevice *d, RtError *err) {
  ClDevice *c = d->impl;
  CL_CHECK(err, cl.Finish(c->queue), "clFinish");
  return 0;
}

const RtDeviceOps rt_opencl_ops = {
    .kind = RT_DEVICE_OPENCL,
    .loads = 1u << RT_CODE_CL_SOURCE | 1u << RT_CODE_CL_BINARY,
    .list = opencl_list,
    .open = opencl_open,
    .close = opencl_close,
    .mem_alloc = opencl_mem_alloc,
    .mem_free = opencl_mem_free,
    .mem_write = opencl_mem_write,
    .mem_read = opencl_mem_read,
    .module_load = opencl_module_load,
    .module_free = opencl_module_free,
    .module_binary = opencl_module_binary,
    .kernel_get = opencl_kernel_get,
    .kernel_free = opencl_kernel_free,
    .launch = opencl_launch,
    .sync = opencl_sync,
};
