/* runtime/device_cpu.c - the host CPU as a device.
 *
 * Buffers are 64-byte aligned host memory; code is a table of native
 * functions linked into the program (RT_CODE_NATIVE), each of the form
 * void kernel(void **args, int64_t begin, int64_t end); a launch calls it
 * over [0, grid[0]) split across the thread pool (pool.h).  Launches run to
 * completion before rt_launch returns, so sync has nothing to wait for.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "device_impl.h"
#include "pool.h"

enum { CPU_ALIGN = 64 };

typedef struct CpuTable { /* a module: copies of the caller's table */
  int n;
  char **names;
  RtNativeKernel *fns;
} CpuTable;

/* "model name" and "vendor_id" from /proc/cpuinfo, if there is one. */
static void cpu_names(char *name, size_t name_size, char *vendor, size_t vendor_size) {
  snprintf(name, name_size, "host CPU");
  snprintf(vendor, vendor_size, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  int got = 0;
  while (got != 3 && fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!colon) continue;
    const char *value = colon + 1;
    while (*value == ' ' || *value == '\t') value++;
    if (!(got & 1) && strncmp(line, "model name", 10) == 0) {
      rt_copy_trimmed(name, name_size, value);
      got |= 1;
    } else if (!(got & 2) && strncmp(line, "vendor_id", 9) == 0) {
      rt_copy_trimmed(vendor, vendor_size, value);
      got |= 2;
    }
  }
  fclose(f);
}

static void cpu_info(RtDeviceInfo *info, int threads) {
  memset(info, 0, sizeof *info);
  info->kind = RT_DEVICE_CPU;
  cpu_names(info->name, sizeof info->name, info->vendor, sizeof info->vendor);
  snprintf(info->platform, sizeof info->platform, "host");
  snprintf(info->type, sizeof info->type, "CPU");
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  info->memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
  info->compute_units = threads;
  struct utsname u;
  if (uname(&u) == 0) snprintf(info->version, sizeof info->version, "%s", u.machine);
}

static int cpu_list(RtDeviceInfo *out, int max, RtError *why) {
  (void)why;
  if (max > 0) cpu_info(&out[0], rt_cpu_count());
  return 1;
}

static int cpu_open(RtDevice *d, int index, int cpu_threads, RtError *err) {
  if (index != 0) return rt_error_set(err, "cpu:%d does not exist (there is one CPU device, cpu)", index);
  rt_flush_denormals(); /* the launching thread runs chunks too */
  RtPool *pool = rt_pool_create(cpu_threads);
  if (!pool) return rt_error_set(err, "cpu: out of memory creating the thread pool");
  d->impl = pool;
  cpu_info(&d->info, rt_pool_threads(pool));
  return 0;
}

static void cpu_close(RtDevice *d) { rt_pool_destroy(d->impl); }

static int cpu_mem_alloc(RtDevice *d, RtMem *m, RtError *err) {
  (void)d;
  size_t size = (m->bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
  if (size < m->bytes) return rt_error_set(err, "cpu: cannot allocate %zu bytes", m->bytes);
  if (size == 0) size = CPU_ALIGN;
  m->host = aligned_alloc(CPU_ALIGN, size);
  if (!m->host) return rt_error_set(err, "cpu: out of memory allocating %zu bytes", m->bytes);
  memset(m->host, 0, size);
  return 0;
}

static void cpu_mem_free(RtDevice *d, RtMem *m) {
  (void)d;
  free(m->host);
}

static int cpu_mem_write(RtDevice *d, RtMem *m, size_t offset, const void *src, size_t bytes, RtError *err) {
  (void)d, (void)err;
  memcpy((char *)m->host + offset, src, bytes);
  return 0;
}

static int cpu_mem_read(RtDevice *d, RtMem *m, size_t offset, void *dst, size_t bytes, RtError *err) {
  (void)d, (void)err;
  memcpy(dst, (const char *)m->host + offset, bytes);
  return 0;
}

static void cpu_module_free(RtDevice *d, RtModule *mod) {
  (void)d;
  CpuTable *t = mod->handle;
  if (!t) return;
  for (int i = 0; i < t->n; i++) free(t->names[i]);
  free(t->names);
  free(t->fns);
  free(t);
}

static int cpu_module_load(RtDevice *d, RtModule *mod, const RtCode *code, RtError *err) {
  if (code->kind != RT_CODE_NATIVE)
    return rt_error_set(err, "cpu: the CPU device runs native code only (RT_CODE_NATIVE)");
  if (code->nnative < 0 || (code->nnative > 0 && (!code->native_names || !code->native_fns)))
    return rt_error_set(err, "cpu: bad native kernel table");
  CpuTable *t = calloc(1, sizeof *t);
  if (!t) return rt_error_set(err, "cpu: out of memory");
  mod->handle = t;
  int n = code->nnative;
  t->names = calloc((size_t)n + 1, sizeof *t->names);
  t->fns = calloc((size_t)n + 1, sizeof *t->fns);
  if (!t->names || !t->fns) goto oom;
  for (int i = 0; i < n; i++) {
    if (!code->native_names[i] || !code->native_fns[i]) {
      cpu_module_free(d, mod);
      mod->handle = NULL;
      return rt_error_set(err, "cpu: native kernel %d has no name or no function", i);
    }
    t->names[i] = strdup(code->native_names[i]);
    if (!t->names[i]) goto oom;
    t->fns[i] = code->native_fns[i];
    t->n = i + 1;
  }
  return 0;
oom:
  cpu_module_free(d, mod);
  mod->handle = NULL;
  return rt_error_set(err, "cpu: out of memory");
}

static int cpu_kernel_get(RtDevice *d, RtKernel *k, RtError *err) {
  (void)d;
  const CpuTable *t = k->mod->handle;
  for (int i = 0; i < t->n; i++)
    if (strcmp(t->names[i], k->name) == 0) {
      k->fn = t->fns[i];
      return 0;
    }
  return rt_error_set(err, "cpu: no kernel named '%s' in the module", k->name);
}

typedef union CpuArg {
  void *p;
  int64_t i64;
  int32_t i32;
  float f32;
} CpuArg;

typedef struct CpuLaunch {
  RtNativeKernel fn;
  void **argv;
} CpuLaunch;

static void cpu_chunk(void *ctx, int64_t begin, int64_t end) {
  const CpuLaunch *l = ctx;
  l->fn(l->argv, begin, end);
}

static int cpu_launch(RtDevice *d, RtKernel *k, const RtArg *args, int nargs, const uint32_t grid[3],
                      const uint32_t block[3], RtError *err) {
  if (grid[1] > 1 || grid[2] > 1)
    return rt_error_set(err, "cpu: kernel '%s' launched over %ux%ux%u items; the CPU device takes a range [0, grid[0]) only",
                        k->name, grid[0], grid[1], grid[2]);
  CpuArg vals[RT_MAX_ARGS];
  void *argv[RT_MAX_ARGS + 1];
  for (int i = 0; i < nargs; i++) {
    switch (args[i].kind) {
    case RT_ARG_MEM: vals[i].p = args[i].mem->host; break;
    case RT_ARG_I64: vals[i].i64 = args[i].i; break;
    case RT_ARG_I32: vals[i].i32 = (int32_t)args[i].i; break;
    case RT_ARG_F32: vals[i].f32 = args[i].f; break;
    }
    argv[i] = &vals[i];
  }
  argv[nargs] = NULL;
  CpuLaunch l = {k->fn, argv};
  rt_pool_run(d->impl, cpu_chunk, &l, (int64_t)grid[0], (int64_t)block[0]);
  return 0;
}

static int cpu_sync(RtDevice *d, RtError *err) {
  (void)d, (void)err;
  return 0;
}

const RtDeviceOps rt_cpu_ops = {
    .kind = RT_DEVICE_CPU,
    .loads = 1u << RT_CODE_NATIVE,
    .list = cpu_list,
    .open = cpu_open,
    .close = cpu_close,
    .mem_alloc = cpu_mem_alloc,
    .mem_free = cpu_mem_free,
    .mem_write = cpu_mem_write,
    .mem_read = cpu_mem_read,
    .module_load = cpu_module_load,
    .module_free = cpu_module_free,
    .kernel_get = cpu_kernel_get,
    .launch = cpu_launch,
    .sync = cpu_sync,
};
