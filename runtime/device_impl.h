/* runtime/device_impl.h - what device.c shares with the device
 * implementations (device_cpu.c, device_cuda.c, device_opencl.c); not for
 * generated code, which sees only device.h.
 *
 * device.c owns the objects (RtDevice, RtMem, RtModule, RtKernel), checks
 * arguments, bounds and the capture state, and keeps the lists that
 * rt_device_close frees; an implementation fills in the handles.  Each one
 * is an RtDeviceOps table: a new kind of device is a new file with one more
 * table and one line in device.c.
 */
#ifndef NNRT_DEVICE_IMPL_H
#define NNRT_DEVICE_IMPL_H

#include "device.h"

struct RtMem {
  RtDevice *dev;
  size_t bytes;
  void *host;          /* CPU: the memory */
  uint64_t handle;     /* CUDA: CUdeviceptr; OpenCL: cl_mem */
  RtMem *prev, *next;  /* the device's live buffers */
};

struct RtKernel {
  RtModule *mod;
  void *handle;        /* CUDA: CUfunction; OpenCL: cl_kernel */
  RtNativeKernel fn;   /* CPU */
  RtKernel *next;      /* the module's kernels */
  char name[];
};

struct RtModule {
  RtDevice *dev;
  void *handle;        /* CUDA: CUmodule; OpenCL: cl_program; CPU: a copy of the table */
  RtKernel *kernels;
  RtModule *next;      /* the device's modules */
};

/* One launch recorded between rt_capture_begin and rt_capture_end on a
 * device without its own capture. */
typedef struct RtLaunchRec {
  RtKernel *k;
  RtArg *args;
  int nargs;
  uint32_t grid[3], block[3];
} RtLaunchRec;

typedef struct RtDeviceOps RtDeviceOps;

struct RtDevice {
  const RtDeviceOps *ops;
  RtDeviceInfo info;
  void *impl;              /* the implementation's state */
  RtMem *mems;             /* live objects, freed by rt_device_close */
  RtModule *modules;
  int capturing;           /* between rt_capture_begin and rt_capture_end */
  int captured;            /* a sequence is ready for rt_replay */
  RtLaunchRec *recs;       /* recorded launches (ops->capture_begin == NULL) */
  int nrecs, caprecs;
  char *log;               /* the last compiler log, or NULL */
};

/* A device implementation.  Functions return 0 or -1 with err set.  Those
 * marked optional may be NULL. */
struct RtDeviceOps {
  RtDeviceKind kind;
  unsigned loads; /* the code it runs: 1u << RtCodeKind, for each kind module_load takes */
  /* Lists the devices of this kind into out[0 .. max) and returns how many
   * there are, or -1 with why set when there can be none (no driver, no
   * platform, no GPU). */
  int (*list)(RtDeviceInfo *out, int max, RtError *why);
  /* Fills d->impl and d->info. */
  int (*open)(RtDevice *d, int index, int cpu_threads, RtError *err);
  void (*close)(RtDevice *d);
  int (*mem_alloc)(RtDevice *d, RtMem *m, RtError *err); /* m->bytes is set; zero-fill */
  void (*mem_free)(RtDevice *d, RtMem *m);
  int (*mem_write)(RtDevice *d, RtMem *m, size_t offset, const void *src, size_t bytes, RtError *err);
  int (*mem_read)(RtDevice *d, RtMem *m, size_t offset, void *dst, size_t bytes, RtError *err);
  /* Fills mod->handle; may set d->log (malloc'ed; device.c frees the old). */
  int (*module_load)(RtDevice *d, RtModule *mod, const RtCode *code, RtError *err);
  void (*module_free)(RtDevice *d, RtModule *mod);
  int (*module_binary)(RtDevice *d, RtModule *mod, void **data, size_t *size, RtError *err); /* optional */
  int (*kernel_get)(RtDevice *d, RtKernel *k, RtError *err); /* k->mod and k->name are set */
  void (*kernel_free)(RtDevice *d, RtKernel *k);                /* optional */
  /* args are checked: nargs <= RT_MAX_ARGS, buffers belong to d. */
  int (*launch)(RtDevice *d, RtKernel *k, const RtArg *args, int nargs, const uint32_t grid[3],
                const uint32_t block[3], RtError *err);
  int (*sync)(RtDevice *d, RtError *err);
  /* Optional, all three or none: the device's own capture (CUDA graphs).
   * Without them device.c records launches and replays them. */
  int (*capture_begin)(RtDevice *d, RtError *err);
  int (*capture_end)(RtDevice *d, RtError *err);
  int (*replay)(RtDevice *d, RtError *err);
};

extern const RtDeviceOps rt_cpu_ops;
extern const RtDeviceOps rt_cuda_ops;
extern const RtDeviceOps rt_opencl_ops;

/* The file name of a call site without the build's directory, for error
 * messages: "/src/nnc/runtime/device_cuda.c" -> "runtime/device_cuda.c". */
const char *rt_site_file(const char *file);
/* Copies at most size-1 bytes of src into dst, NUL-terminated; drops
 * trailing white space. */
void rt_copy_trimmed(char *dst, size_t size, const char *src);

#endif
