/* runtime/device_cuda.c - NVIDIA GPUs through the CUDA driver API.
 *
 * libcuda.so.1 is opened with dlopen on first use and every entry point is
 * fetched through cuGetProcAddress with the CUDA version of the ABI we call
 * (cuMemAlloc at 3020 is cuMemAlloc_v2, with 64-bit sizes); before CUDA
 * 12.0 through the 4-argument cuGetProcAddress of 11.3, and before that by
 * dlsym of the versioned names.  A plain dlsym("cuMemAlloc") would give the
 * 32-bit ABI of CUDA 2.0, which is why cuda.h renames calls to _v2.  No CUDA
 * header is included: the few types and values used are declared below,
 * copied from CUDA 13.0's cuda.h and cudaTypedefs.h.
 *
 * A device is the GPU's primary context (the one the CUDA runtime, cuBLAS
 * and NCCL share) and one non-blocking stream; copies, memsets and launches
 * all go to that stream in order.  Capture uses stream capture: launches
 * between rt_capture_begin and rt_capture_end become a CUDA graph, which
 * rt_replay launches with one cuGraphLaunch.
 *
 * Every driver call goes through CU_CHECK, which names the call and its
 * site: "cuda: cuMemAlloc(50331648 bytes) failed at
 * runtime/device_cuda.c:361: CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "device_impl.h"

/* ---- declarations from cuda.h (CUDA 13.0) ------------------------------- */

typedef int CUresult;                       /* enum cudaError_enum */
typedef int CUdevice;                       /* CUdevice_v1 */
typedef unsigned long long CUdeviceptr;     /* CUdeviceptr_v2 (64-bit hosts) */
typedef unsigned long long cuuint64_t;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef int CUjit_option;                   /* enum CUjit_option_enum */
typedef int CUdevice_attribute;             /* enum CUdevice_attribute_enum */
typedef int CUstreamCaptureMode;            /* enum CUstreamCaptureMode_enum */
typedef int CUdriverProcAddressQueryResult; /* enum CUdriverProcAddressQueryResult_enum */

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_STUB_LIBRARY = 34,
  CUDA_ERROR_INSUFFICIENT_DRIVER = 35,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
  CUDA_ERROR_INVALID_PTX = 218,
  CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
};
enum { CU_GET_PROC_ADDRESS_LEGACY_STREAM = 1 }; /* CUdriverProcAddress_flags */
enum { CU_GET_PROC_ADDRESS_SUCCESS = 0 };        /* CUdriverProcAddressQueryResult */
enum { CU_STREAM_NON_BLOCKING = 1 };             /* CUstream_flags */
enum { CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1 };
enum {                                           /* CUdevice_attribute */
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
};
enum { /* CUjit_option */
  CU_JIT_INFO_LOG_BUFFER = 3,
  CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
  CU_JIT_ERROR_LOG_BUFFER = 5,
  CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
  CU_JIT_LOG_VERBOSE = 12,
};

/* The entry points, named after cudaTypedefs.h (PFN_<name>_v<version>). */
typedef CUresult (*PFN_cuGetProcAddress_v12000)(const char *, void **, int, cuuint64_t,
                                                CUdriverProcAddressQueryResult *);
typedef CUresult (*PFN_cuGetProcAddress_v11030)(const char *, void **, int, cuuint64_t);

static struct {
  CUresult (*Init)(unsigned flags);                                         /* cuInit 2000 */
  CUresult (*DriverGetVersion)(int *version);                               /* 2020 */
  CUresult (*GetErrorName)(CUresult e, const char **s);                     /* 6000 */
  CUresult (*GetErrorString)(CUresult e, const char **s);                   /* 6000 */
  CUresult (*DeviceGetCount)(int *count);                                   /* 2000 */
  CUresult (*DeviceGet)(CUdevice *dev, int ordinal);                        /* 2000 */
  CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);             /* 2000 */
  CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice dev);                  /* 3020: _v2 */
  CUresult (*DeviceGetAttribute)(int *v, CUdevice_attribute a, CUdevice dev); /* 2000 */
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);         /* 7000 */
  CUresult (*DevicePrimaryCtxRelease)(CUdevice dev);                        /* 11000: _v2 */
  CUresult (*CtxSetCurrent)(CUcontext ctx);                                 /* 4000 */
  CUresult (*StreamCreate)(CUstream *s, unsigned flags);                    /* 2000 */
  CUresult (*StreamDestroy)(CUstream s);                                    /* 4000: _v2 */
  CUresult (*StreamSynchronize)(CUstream s);                                /* 2000 */
  CUresult (*MemAlloc)(CUdeviceptr *p, size_t bytes);                       /* 3020: _v2 */
  CUresult (*MemFree)(CUdeviceptr p);                                       /* 3020: _v2 */
  CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t n, CUstream s); /* 3020: _v2 */
  CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t n, CUstream s);       /* 3020: _v2 */
  CUresult (*MemsetD8Async)(CUdeviceptr dst, unsigned char v, size_t n, CUstream s);   /* 3020 */
  CUresult (*ModuleLoadDataEx)(CUmodule *m, const void *image, unsigned n, CUjit_option *opts,
                               void **values);                              /* 2010 */
  CUresult (*ModuleUnload)(CUmodule m);                                     /* 2000 */
  CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name); /* 2000 */
  CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                           unsigned bz, unsigned shared, CUstream s, void **params, void **extra); /* 4000 */
  CUresult (*StreamBeginCapture)(CUstream s, CUstreamCaptureMode mode);     /* 10010: _v2 */
  CUresult (*StreamEndCapture)(CUstream s, CUgraph *g);                     /* 10000 */
  CUresult (*GraphInstantiateWithFlags)(CUgraphExec *e, CUgraph g, unsigned long long flags); /* 11040 */
  CUresult (*GraphLaunch)(CUgraphExec e, CUstream s);                       /* 10000 */
  CUresult (*GraphExecDestroy)(CUgraphExec e);                              /* 10000 */
  CUresult (*GraphDestroy)(CUgraph g);                                      /* 10000 */
} cu;

/* ORDER: one row per field of `cu`, in order. */
static const struct {
  const char *name;    /* base name for cuGetProcAddress */
  int version;         /* the CUDA version of the ABI we call */
  const char *symbol;  /* the exported name with that ABI, for dlsym */
} cu_entries[] = {
    {"cuInit", 2000, "cuInit"},
    {"cuDriverGetVersion", 2020, "cuDriverGetVersion"},
    {"cuGetErrorName", 6000, "cuGetErrorName"},
    {"cuGetErrorString", 6000, "cuGetErrorString"},
    {"cuDeviceGetCount", 2000, "cuDeviceGetCount"},
    {"cuDeviceGet", 2000, "cuDeviceGet"},
    {"cuDeviceGetName", 2000, "cuDeviceGetName"},
    {"cuDeviceTotalMem", 3020, "cuDeviceTotalMem_v2"},
    {"cuDeviceGetAttribute", 2000, "cuDeviceGetAttribute"},
    {"cuDevicePrimaryCtxRetain", 7000, "cuDevicePrimaryCtxRetain"},
    {"cuDevicePrimaryCtxRelease", 11000, "cuDevicePrimaryCtxRelease_v2"},
    {"cuCtxSetCurrent", 4000, "cuCtxSetCurrent"},
    {"cuStreamCreate", 2000, "cuStreamCreate"},
    {"cuStreamDestroy", 4000, "cuStreamDestroy_v2"},
    {"cuStreamSynchronize", 2000, "cuStreamSynchronize"},
    {"cuMemAlloc", 3020, "cuMemAlloc_v2"},
    {"cuMemFree", 3020, "cuMemFree_v2"},
    {"cuMemcpyHtoDAsync", 3020, "cuMemcpyHtoDAsync_v2"},
    {"cuMemcpyDtoHAsync", 3020, "cuMemcpyDtoHAsync_v2"},
    {"cuMemsetD8Async", 3020, "cuMemsetD8Async"},
    {"cuModuleLoadDataEx", 2010, "cuModuleLoadDataEx"},
    {"cuModuleUnload", 2000, "cuModuleUnload"},
    {"cuModuleGetFunction", 2000, "cuModuleGetFunction"},
    {"cuLaunchKernel", 4000, "cuLaunchKernel"},
    {"cuStreamBeginCapture", 10010, "cuStreamBeginCapture_v2"},
    {"cuStreamEndCapture", 10000, "cuStreamEndCapture"},
    {"cuGraphInstantiateWithFlags", 11040, "cuGraphInstantiateWithFlags"},
    {"cuGraphLaunch", 10000, "cuGraphLaunch"},
    {"cuGraphExecDestroy", 10000, "cuGraphExecDestroy"},
    {"cuGraphDestroy", 10000, "cuGraphDestroy"},
};
_Static_assert(sizeof cu == sizeof cu_entries / sizeof cu_entries[0] * sizeof(void (*)(void)),
               "ORDER: cu_entries has one row per field of cu");

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;
static RtError cu_load_error; /* empty when the driver loaded and initialised */
static int cu_driver_version; /* e.g. 13000 */

/* ---- errors ------------------------------------------------------------- */

static const char *cu_error_name(CUresult r) {
  const char *s = NULL;
  if (!cu.GetErrorName || cu.GetErrorName(r, &s) != CUDA_SUCCESS || !s) return "CUDA_ERROR_UNKNOWN_CODE";
  return s;
}

static const char *cu_error_string(CUresult r) {
  const char *s = NULL;
  if (!cu.GetErrorString || cu.GetErrorString(r, &s) != CUDA_SUCCESS || !s) return "no description";
  return s;
}

/* Formats "cuda: <call> failed at <file>:<line>: <NAME> (<description>)",
 * or a plain message for the errors a user can act on. */
static int cu_fail(RtError *err, CUresult r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int cu_fail(RtError *err, CUresult r, const char *file, int line, const char *fmt, ...) {
  if (r == CUDA_ERROR_NO_DEVICE) return rt_error_set(err, "no CUDA GPU found");
  char call[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(call, sizeof call, fmt, ap);
  va_end(ap);
  char name[64];
  snprintf(name, sizeof name, "%s", cu_error_name(r));
  if (strcmp(name, "CUDA_ERROR_UNKNOWN_CODE") == 0) snprintf(name, sizeof name, "CUresult %d", r);
  return rt_error_set(err, "cuda: %s failed at %s:%d: %s (%s)", call, rt_site_file(file), line, name,
                      cu_error_string(r));
}

/* CU_CHECK(err, call, "what(%d)", args...): on failure fill err and return -1 */
#define CU_CHECK(err, call, ...)                                                \
  do {                                                                          \
    CUresult cu_r_ = (call);                                                    \
    if (cu_r_ != CUDA_SUCCESS) return cu_fail(err, cu_r_, __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

/* ---- loading ------------------------------------------------------------ */

static void cu_load(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    rt_error_set(&cu_load_error, "no CUDA driver found (libcuda.so.1 could not be loaded)");
    return;
  }
  PFN_cuGetProcAddress_v12000 gpa2 = NULL;
  PFN_cuGetProcAddress_v11030 gpa1 = NULL;
  *(void **)&gpa2 = dlsym(lib, "cuGetProcAddress_v2");
  if (!gpa2) *(void **)&gpa1 = dlsym(lib, "cuGetProcAddress");
  for (size_t i = 0; i < sizeof cu_entries / sizeof cu_entries[0]; i++) {
    void *fn = NULL;
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SUCCESS;
    if (gpa2) {
      if (gpa2(cu_entries[i].name, &fn, cu_entries[i].version, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &found) !=
              CUDA_SUCCESS ||
          found != CU_GET_PROC_ADDRESS_SUCCESS)
        fn = NULL;
    } else if (gpa1) {
      if (gpa1(cu_entries[i].name, &fn, cu_entries[i].version, CU_GET_PROC_ADDRESS_LEGACY_STREAM) != CUDA_SUCCESS)
        fn = NULL;
    }
    if (!fn) fn = dlsym(lib, cu_entries[i].symbol);
    if (!fn) {
      rt_error_set(&cu_load_error, "cuda: the CUDA driver is too old (it has no %s); nnc needs CUDA 11.4 or newer",
                   cu_entries[i].symbol);
      memset(&cu, 0, sizeof cu);
      return;
    }
    memcpy((char *)&cu + i * sizeof fn, &fn, sizeof fn); /* field i of cu */
  }
  CUresult r = cu.Init(0);
  if (r == CUDA_ERROR_NO_DEVICE) {
    rt_error_set(&cu_load_error, "no CUDA GPU found");
    return;
  }
  if (r == CUDA_ERROR_STUB_LIBRARY) {
    rt_error_set(&cu_load_error, "no CUDA driver found (libcuda.so.1 is the toolkit's stub library)");
    return;
  }
  if (r != CUDA_SUCCESS) {
    cu_fail(&cu_load_error, r, __FILE__, __LINE__, "cuInit(0)");
    return;
  }
  if (cu.DriverGetVersion(&cu_driver_version) != CUDA_SUCCESS) cu_driver_version = 0;
}

/* 0 when the driver is usable, else -1 with err saying why. */
static int cu_ready(RtError *err) {
  pthread_once(&cu_once, cu_load);
  if (!cu_load_error.msg[0]) return 0;
  return rt_error_set(err, "%s", cu_load_error.msg);
}

/* ---- devices ------------------------------------------------------------ */

typedef struct CuDevice {
  CUdevice dev;
  CUcontext ctx;  /* the primary context */
  CUstream stream;
  CUgraphExec exec; /* the captured sequence */
  int capturing;
} CuDevice;

/* The context current on this thread, to skip redundant cuCtxSetCurrent. */
static _Thread_local CUcontext cu_current;

static int cu_enter(CuDevice *c, RtError *err) {
  if (cu_current == c->ctx) return 0;
  CU_CHECK(err, cu.CtxSetCurrent(c->ctx), "cuCtxSetCurrent");
  cu_current = c->ctx;
  return 0;
}

static int cu_info(int index, RtDeviceInfo *info, RtError *err) {
  CUdevice dev;
  memset(info, 0, sizeof *info);
  info->kind = RT_DEVICE_CUDA;
  info->index = index;
  CU_CHECK(err, cu.DeviceGet(&dev, index), "cuDeviceGet(%d)", index);
  CU_CHECK(err, cu.DeviceGetName(info->name, (int)sizeof info->name, dev), "cuDeviceGetName(%d)", index);
  size_t mem = 0;
  CU_CHECK(err, cu.DeviceTotalMem(&mem, dev), "cuDeviceTotalMem(%d)", index);
  int sms = 0, major = 0, minor = 0;
  CU_CHECK(err, cu.DeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev),
           "cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)");
  CU_CHECK(err, cu.DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
           "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)");
  CU_CHECK(err, cu.DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
           "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR)");
  snprintf(info->vendor, sizeof info->vendor, "NVIDIA");
  snprintf(info->platform, sizeof info->platform, "CUDA");
  snprintf(info->type, sizeof info->type, "GPU");
  info->memory_bytes = mem;
  info->compute_units = sms;
  snprintf(info->version, sizeof info->version, "sm_%d%d, driver %d.%d", major, minor, cu_driver_version / 1000,
           cu_driver_version % 1000 / 10);
  return 0;
}

static int cuda_list(RtDeviceInfo *out, int max, RtError *why) {
  if (cu_ready(why)) return -1;
  int n = 0;
  CU_CHECK(why, cu.DeviceGetCount(&n), "cuDeviceGetCount");
  if (n == 0) return rt_error_set(why, "no CUDA GPU found");
  for (int i = 0; i < n && i < max; i++)
    if (cu_info(i, &out[i], why)) return -1;
  return n;
}

static int cuda_open(RtDevice *d, int index, int cpu_threads, RtError *err) {
  (void)cpu_threads;
  if (cu_ready(err)) return -1;
  int n = 0;
  CU_CHECK(err, cu.DeviceGetCount(&n), "cuDeviceGetCount");
  if (n == 0) return rt_error_set(err, "no CUDA GPU found");
  if (index >= n)
    return rt_error_set(err, "cuda:%d does not exist (%d CUDA GPU%s found)", index, n, n == 1 ? "" : "s");
  if (cu_info(index, &d->info, err)) return -1;
  CuDevice *c = calloc(1, sizeof *c);
  if (!c) return rt_error_set(err, "cuda: out of memory");
  CUresult r = cu.DeviceGet(&c->dev, index);
  if (r == CUDA_SUCCESS) r = cu.DevicePrimaryCtxRetain(&c->ctx, c->dev);
  if (r != CUDA_SUCCESS) {
    free(c);
    return cu_fail(err, r, __FILE__, __LINE__, "cuDevicePrimaryCtxRetain(%d)", index);
  }
  cu_current = NULL;
  if (cu_enter(c, err) != 0 || (r = cu.StreamCreate(&c->stream, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS) {
    if (r != CUDA_SUCCESS) cu_fail(err, r, __FILE__, __LINE__, "cuStreamCreate");
    cu.DevicePrimaryCtxRelease(c->dev);
    free(c);
    return -1;
  }
  d->impl = c;
  return 0;
}

static void cuda_close(RtDevice *d) {
  CuDevice *c = d->impl;
  RtError ignored;
  if (cu_enter(c, &ignored) == 0) {
    cu.StreamSynchronize(c->stream);
    if (c->exec) cu.GraphExecDestroy(c->exec);
    cu.StreamDestroy(c->stream);
  }
  cu.DevicePrimaryCtxRelease(c->dev);
  if (cu_current == c->ctx) cu_current = NULL;
  free(c);
}

/* ---- memory ------------------------------------------------------------- */

static int cuda_mem_alloc(RtDevice *d, RtMem *m, RtError *err) {
  CuDevice *c = d->impl;
  if (cu_enter(c, err)) return -1;
  CUdeviceptr p = 0;
  size_t bytes = m->bytes ? m->bytes : 1;
  CU_CHECK(err, cu.MemAlloc(&p, bytes), "cuMemAlloc(%zu bytes)", m->bytes);
  CUresult r = cu.MemsetD8Async(p, 0, bytes, c->stream);
  if (r != CUDA_SUCCESS) {
    cu.MemFree(p);
    return cu_fail(err, r, __FILE__, __LINE__, "cuMemsetD8Async(%zu bytes)", m->bytes);
  }
  m->handle = p;
  return 0;
}

static void cuda_mem_free(RtDevice *d, RtMem *m) {
  CuDevice *c = d->impl;
  RtError ignored;
  if (cu_enter(c, &ignored) == 0) cu.MemFree((CUdeviceptr)m->handle);
}

static int cuda_mem_write(RtDevice *d, RtMem *m, size_t offset, const void *src, size_t bytes, RtError *err) {
  CuDevice *c = d->impl;
  if (cu_enter(c, err)) return -1;
  /* From pageable memory the copy is staged before the call returns, so src
   * may be reused at once; the stream keeps it ordered after earlier work. */
  CU_CHECK(err, cu.MemcpyHtoDAsync((CUdeviceptr)m->handle + offset, src, bytes, c->stream),
           "cuMemcpyHtoDAsync(%zu bytes)", bytes);
  return 0;
}

static int cuda_mem_read(RtDevice *d, RtMem *m, size_t offset, void *dst, size_t bytes, RtError *err) {
  CuDevice *c = d->impl;
  if (cu_enter(c, err)) return -1;
  CU_CHECK(err, cu.MemcpyDtoHAsync(dst, (CUdeviceptr)m->handle + offset, bytes, c->stream),
           "cuMemcpyDtoHAsync(%zu bytes)", bytes);
  CU_CHECK(err, cu.StreamSynchronize(c->stream), "cuStreamSynchronize after reading %zu bytes", bytes);
  return 0;
}

/* ---- code --------------------------------------------------------------- */

/* The ".version X.Y" and ".target sm_XY" of PTX text, for messages. */
static void ptx_header(const char *ptx, char *version, size_t vsize, char *target, size_t tsize) {
  snprintf(version, vsize, "?");
  snprintf(target, tsize, "?");
  const char *v = strstr(ptx, ".version");
  if (v) sscanf(v, ".version %15s", version);
  const char *t = strstr(ptx, ".target");
  if (t) sscanf(t, ".target %15[a-z0-9_]", target);
  (void)vsize, (void)tsize;
}

enum { JIT_LOG_SIZE = 16384 };

static int cuda_module_load(RtDevice *d, RtModule *mod, const RtCode *code, RtError *err) {
  CuDevice *c = d->impl;
  if (code->kind != RT_CODE_PTX) return rt_error_set(err, "cuda: the CUDA device loads PTX only (RT_CODE_PTX)");
  if (!code->data) return rt_error_set(err, "cuda: rt_module_load: no PTX given");
  if (cu_enter(c, err)) return -1;
  /* the driver wants NUL-terminated text */
  size_t len = code->size ? code->size : strlen(code->data);
  char *ptx = malloc(len + 1);
  char *info_log = calloc(1, JIT_LOG_SIZE), *error_log = calloc(1, JIT_LOG_SIZE);
  if (!ptx || !info_log || !error_log) {
    free(ptx), free(info_log), free(error_log);
    return rt_error_set(err, "cuda: out of memory");
  }
  memcpy(ptx, code->data, len);
  ptx[len] = 0;
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
                         CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, CU_JIT_LOG_VERBOSE};
  void *values[] = {info_log, (void *)(uintptr_t)JIT_LOG_SIZE, error_log, (void *)(uintptr_t)JIT_LOG_SIZE,
                    (void *)(uintptr_t)1};
  CUmodule m = NULL;
  CUresult r = cu.ModuleLoadDataEx(&m, ptx, (unsigned)(sizeof opts / sizeof opts[0]), opts, values);
  info_log[JIT_LOG_SIZE - 1] = error_log[JIT_LOG_SIZE - 1] = 0;
  /* keep both logs whole for rt_device_log */
  size_t loglen = strlen(info_log) + strlen(error_log) + 2;
  d->log = malloc(loglen);
  if (d->log) snprintf(d->log, loglen, "%s%s%s", error_log, *error_log && *info_log ? "\n" : "", info_log);
  int rc = 0;
  if (r != CUDA_SUCCESS) {
    char version[16], target[16];
    ptx_header(ptx, version, sizeof version, target, sizeof target);
    char log[400];
    rt_copy_trimmed(log, sizeof log, *error_log ? error_log : info_log);
    if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
      rc = rt_error_set(err, "cuda: the PTX is newer than this CUDA driver supports (PTX .version %s, driver %d.%d): "
                        "update the GPU driver or generate an older PTX version",
                        version, cu_driver_version / 1000, cu_driver_version % 1000 / 10);
    else if (r == CUDA_ERROR_INVALID_PTX)
      rc = rt_error_set(err, "cuda: the driver rejected the PTX (.target %s, .version %s): %s", target, version,
                        *log ? log : "no JIT log");
    else if (r == CUDA_ERROR_NO_BINARY_FOR_GPU)
      rc = rt_error_set(err, "cuda: the PTX (.target %s) cannot run on %s (%s)%s%s", target, d->info.name,
                        d->info.version, *log ? ": " : "", log);
    else {
      rc = cu_fail(err, r, __FILE__, __LINE__, "cuModuleLoadDataEx(%zu bytes of PTX)", len);
      if (*log && err) {
        size_t used = strlen(err->msg);
        snprintf(err->msg + used, sizeof err->msg - used, ": %s", log);
      }
    }
  }
  free(ptx), free(info_log), free(error_log);
  mod->handle = m;
  return rc;
}

static void cuda_module_free(RtDevice *d, RtModule *mod) {
  RtError ignored;
  if (cu_enter(d->impl, &ignored) == 0) cu.ModuleUnload(mod->handle);
}

static int cuda_kernel_get(RtDevice *d, RtKernel *k, RtError *err) {
  if (cu_enter(d->impl, err)) return -1;
  CUfunction f = NULL;
  CUresult r = cu.ModuleGetFunction(&f, k->mod->handle, k->name);
  if (r == CUDA_ERROR_NOT_FOUND) return rt_error_set(err, "cuda: no kernel named '%s' in the module", k->name);
  CU_CHECK(err, r, "cuModuleGetFunction(%s)", k->name);
  k->handle = f;
  return 0;
}

/* ---- launches ----------------------------------------------------------- */

typedef union CuArg {
  CUdeviceptr p;
  int64_t i64;
  int32_t i32;
  float f32;
} CuArg;

static int cuda_launch(RtDevice *d, RtKernel *k, const RtArg *args, int nargs, const uint32_t grid[3],
                       const uint32_t block[3], RtError *err) {
  CuDevice *c = d->impl;
  if (block[0] == 0) return rt_error_set(err, "cuda: kernel '%s' launched with 0 threads per block", k->name);
  if (cu_enter(c, err)) return -1;
  CuArg vals[RT_MAX_ARGS];
  void *params[RT_MAX_ARGS + 1];
  for (int i = 0; i < nargs; i++) {
    switch (args[i].kind) {
    case RT_ARG_MEM: vals[i].p = (CUdeviceptr)args[i].mem->handle; break;
    case RT_ARG_I64: vals[i].i64 = args[i].i; break;
    case RT_ARG_I32: vals[i].i32 = (int32_t)args[i].i; break;
    case RT_ARG_F32: vals[i].f32 = args[i].f; break;
    }
    params[i] = &vals[i];
  }
  params[nargs] = NULL;
  CU_CHECK(err, cu.LaunchKernel(k->handle, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, c->stream,
                                params, NULL),
           "cuLaunchKernel(%s, grid %ux%ux%u, block %ux%ux%u)", k->name, grid[0], grid[1], grid[2], block[0],
           block[1], block[2]);
  return 0;
}

static int cuda_sync(RtDevice *d, RtError *err) {
  CuDevice *c = d->impl;
  if (cu_enter(c, err)) return -1;
  CU_CHECK(err, cu.StreamSynchronize(c->stream), "cuStreamSynchronize");
  return 0;
}

static int cuda_capture_begin(RtDevice *d, RtError *err) {
  CuDevice *c = d->impl;
  if (cu_enter(c, err)) return -1;
  if (c->exec) {
    CU_CHECK(err, cu.StreamSynchronize(c->stream), "cuStreamSynchronize before a new capture");
    cu.GraphExecDestroy(c->exec);
    c->exec = NULL;
  }
  CU_CHECK(err, cu.StreamBeginCapture(c->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
  c->capturing = 1;
  return 0;
}

static int cuda_capture_end(RtDevice *d, RtError *err) {
  CuDevice *c = d->impl;
  if (cu_enter(c, err)) return -1;
  CUgraph graph = NULL;
  c->capturing = 0;
  CUresult r = cu.StreamEndCapture(c->stream, &graph);
  if (r != CUDA_SUCCESS) {
    if (graph) cu.GraphDestroy(graph);
    return cu_fail(err, r, __FILE__, __LINE__, "cuStreamEndCapture");
  }
  r = cu.GraphInstantiateWithFlags(&c->exec, graph, 0);
  cu.GraphDestroy(graph); /* the executable graph is independent of it */
  if (r != CUDA_SUCCESS) {
    c->exec = NULL;
    return cu_fail(err, r, __FILE__, __LINE__, "cuGraphInstantiateWithFlags");
  }
  return 0;
}

static int cuda_replay(RtDevice *d, RtError *err) {
  CuDevice *c = d->impl;
  if (cu_enter(c, err)) return -1;
  CU_CHECK(err, cu.GraphLaunch(c->exec, c->stream), "cuGraphLaunch");
  return 0;
}

const RtDeviceOps rt_cuda_ops = {
    .kind = RT_DEVICE_CUDA,
    .loads = 1u << RT_CODE_PTX,
    .list = cuda_list,
    .open = cuda_open,
    .close = cuda_close,
    .mem_alloc = cuda_mem_alloc,
    .mem_free = cuda_mem_free,
    .mem_write = cuda_mem_write,
    .mem_read = cuda_mem_read,
    .module_load = cuda_module_load,
    .module_free = cuda_module_free,
    .kernel_get = cuda_kernel_get,
    .launch = cuda_launch,
    .sync = cuda_sync,
    .capture_begin = cuda_capture_begin,
    .capture_end = cuda_capture_end,
    .replay = cuda_replay,
};
