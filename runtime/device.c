/* runtime/device.c - the device interface: dispatch to the implementation
 * of each kind (RtDeviceOps in device_impl.h), listing, device specs,
 * ownership of buffers/modules/kernels, argument and bounds checks, and
 * launch recording for devices without their own capture (CPU, OpenCL).
 */
#include <stdlib.h>
#include <string.h>

#include "device_impl.h"

/* ORDER RtDeviceKind */
static const RtDeviceOps *const kind_ops[] = {&rt_cpu_ops, &rt_cuda_ops, &rt_opencl_ops};
static const char *const kind_names[] = {"cpu", "cuda", "opencl"};
static const char *const first_specs[] = {"cpu", "cuda:0", "opencl:0"};
enum { NKINDS = 3, LIST_MAX = 64 };

const char *rt_device_kind_name(RtDeviceKind kind) {
  return (unsigned)kind < NKINDS ? kind_names[kind] : "unknown";
}

const char *rt_device_first_spec(RtDeviceKind kind) {
  return (unsigned)kind < NKINDS ? first_specs[kind] : "unknown";
}

int rt_device_loads(RtDeviceKind kind, RtCodeKind code) {
  return (unsigned)kind < NKINDS && (unsigned)code < 32 && (kind_ops[kind]->loads >> code & 1u);
}

int rt_device_kind_for(RtCodeKind code, RtDeviceKind *kind) {
  for (int k = 0; k < NKINDS; k++)
    if (rt_device_loads((RtDeviceKind)k, code)) {
      *kind = (RtDeviceKind)k;
      return 0;
    }
  return -1;
}

const char *rt_site_file(const char *file) {
  const char *best = NULL;
  for (const char *s = strstr(file, "runtime/"); s; s = strstr(s + 1, "runtime/")) best = s;
  return best ? best : file;
}

void rt_copy_trimmed(char *dst, size_t size, const char *src) {
  if (size == 0) return;
  snprintf(dst, size, "%s", src ? src : "");
  size_t n = strlen(dst);
  while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\n' || dst[n - 1] == '\r' || dst[n - 1] == '\t'))
    dst[--n] = 0;
}

/* ---- listing -------------------------------------------------------------- */

int rt_device_list(RtDeviceInfo *out, int max) {
  int total = 0;
  for (int k = 0; k < NKINDS; k++) {
    RtDeviceInfo found[LIST_MAX];
    RtError why;
    int n = kind_ops[k]->list(found, LIST_MAX, &why);
    for (int i = 0; i < n && i < LIST_MAX; i++, total++)
      if (out && total < max) out[total] = found[i];
  }
  return total;
}

static void print_size(char *buf, size_t size, uint64_t bytes) {
  snprintf(buf, size, "%.1f GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
}

void rt_device_print_list(FILE *out) {
  for (int k = 0; k < NKINDS; k++) {
    RtDeviceInfo found[LIST_MAX];
    RtError why = {{0}};
    int n = kind_ops[k]->list(found, LIST_MAX, &why);
    if (n <= 0) {
      if (n == 0) snprintf(why.msg, sizeof why.msg, "no %s device found", kind_names[k]);
      /* messages may start with "cuda: ..." already */
      size_t len = strlen(kind_names[k]);
      if (strncmp(why.msg, kind_names[k], len) == 0 && why.msg[len] == ':')
        fprintf(out, "%s\n", why.msg);
      else
        fprintf(out, "%s: %s\n", kind_names[k], why.msg);
      continue;
    }
    for (int i = 0; i < n && i < LIST_MAX; i++) {
      const RtDeviceInfo *d = &found[i];
      char spec[32], mem[32];
      if (d->kind == RT_DEVICE_CPU)
        snprintf(spec, sizeof spec, "cpu");
      else
        snprintf(spec, sizeof spec, "%s:%d", kind_names[k], d->index);
      print_size(mem, sizeof mem, d->memory_bytes);
      switch (d->kind) {
      case RT_DEVICE_CPU:
        fprintf(out, "%-10s %-10s %s  %d threads, %s\n", spec, d->type, d->name, d->compute_units, mem);
        break;
      case RT_DEVICE_CUDA:
        fprintf(out, "%-10s %-10s %s  %d SMs, %s, %s\n", spec, d->type, d->name, d->compute_units, mem,
                d->version);
        break;
      case RT_DEVICE_OPENCL:
        fprintf(out, "%-10s %-10s %s (%s)  %d compute units, %s, %s\n", spec, d->type, d->name, d->platform,
                d->compute_units, mem, d->version);
        break;
      }
    }
  }
}

/* spec: cpu | cuda[:N] | opencl[:N] */
int rt_device_parse(const char *spec, RtDeviceKind *kind, int *index, RtError *err) {
  if (!spec) spec = "";
  for (int k = 0; k < NKINDS; k++) {
    size_t len = strlen(kind_names[k]);
    if (strncmp(spec, kind_names[k], len) != 0) continue;
    const char *rest = spec + len;
    if (*rest == 0) {
      *kind = (RtDeviceKind)k;
      *index = 0;
      return 0;
    }
    if (*rest != ':' || k == RT_DEVICE_CPU) break;
    rest++;
    long v = 0;
    int digits = 0;
    for (; *rest >= '0' && *rest <= '9' && digits < 7; rest++, digits++) v = v * 10 + (*rest - '0');
    if (digits == 0 || *rest) break;
    *kind = (RtDeviceKind)k;
    *index = (int)v;
    return 0;
  }
  return rt_error_set(err, "unknown device '%s' (expected cpu, cuda, cuda:N, opencl or opencl:N; --list-devices shows them)",
                      spec);
}

/* ---- devices ------------------------------------------------------------ */

RtDevice *rt_device_open(RtDeviceKind kind, int index, int cpu_threads, RtError *err) {
  if ((unsigned)kind >= NKINDS) {
    rt_error_set(err, "unknown device kind %d", (int)kind);
    return NULL;
  }
  if (index < 0) {
    rt_error_set(err, "%s:%d does not exist", kind_names[kind], index);
    return NULL;
  }
  RtDevice *d = calloc(1, sizeof *d);
  if (!d) {
    rt_error_set(err, "%s: out of memory", kind_names[kind]);
    return NULL;
  }
  d->ops = kind_ops[kind];
  if (d->ops->open(d, index, cpu_threads, err) != 0) {
    free(d);
    return NULL;
  }
  d->info.kind = kind;
  d->info.index = index;
  return d;
}

static void discard_records(RtDevice *d) {
  for (int i = 0; i < d->nrecs; i++) free(d->recs[i].args);
  d->nrecs = 0;
}

static void module_destroy(RtDevice *d, RtModule *mod) {
  for (RtKernel *k = mod->kernels, *next; k; k = next) {
    next = k->next;
    if (d->ops->kernel_free) d->ops->kernel_free(d, k);
    free(k);
  }
  if (mod->handle) d->ops->module_free(d, mod);
  free(mod);
}

void rt_device_close(RtDevice *d) {
  if (!d) return;
  if (d->capturing && d->ops->capture_end) {
    RtError ignored;
    d->ops->capture_end(d, &ignored);
  }
  discard_records(d);
  free(d->recs);
  while (d->mems) rt_mem_free(d, d->mems);
  for (RtModule *m = d->modules, *next; m; m = next) {
    next = m->next;
    module_destroy(d, m);
  }
  d->ops->close(d);
  free(d->log);
  free(d);
}

const RtDeviceInfo *rt_device_info(const RtDevice *d) { return &d->info; }

const char *rt_device_log(const RtDevice *d) { return d && d->log ? d->log : ""; }

static int not_while_capturing(const RtDevice *d, const char *what, RtError *err) {
  if (!d->capturing) return 0;
  return rt_error_set(err, "%s: %s is not allowed while capturing launches (call rt_capture_end first)",
                      kind_names[d->info.kind], what);
}

/* ---- memory ------------------------------------------------------------- */

RtMem *rt_mem_alloc(RtDevice *d, size_t bytes, RtError *err) {
  if (not_while_capturing(d, "rt_mem_alloc", err)) return NULL;
  RtMem *m = calloc(1, sizeof *m);
  if (!m) {
    rt_error_set(err, "%s: out of memory", kind_names[d->info.kind]);
    return NULL;
  }
  m->dev = d;
  m->bytes = bytes;
  if (d->ops->mem_alloc(d, m, err) != 0) {
    free(m);
    return NULL;
  }
  m->next = d->mems;
  if (d->mems) d->mems->prev = m;
  d->mems = m;
  return m;
}

void rt_mem_free(RtDevice *d, RtMem *m) {
  if (!d || !m || m->dev != d) return;
  d->ops->mem_free(d, m);
  if (m->prev)
    m->prev->next = m->next;
  else
    d->mems = m->next;
  if (m->next) m->next->prev = m->prev;
  free(m);
}

size_t rt_mem_size(const RtMem *m) { return m ? m->bytes : 0; }

void *rt_mem_host(const RtMem *m) { return m ? m->host : NULL; }

static int check_range(RtDevice *d, const RtMem *m, size_t offset, size_t bytes, const char *what, RtError *err) {
  if (!m || m->dev != d)
    return rt_error_set(err, "%s: %s: the buffer does not belong to this device", kind_names[d->info.kind], what);
  if (offset > m->bytes || bytes > m->bytes - offset)
    return rt_error_set(err, "%s: %s of %zu bytes at offset %zu is outside the %zu-byte buffer",
                        kind_names[d->info.kind], what, bytes, offset, m->bytes);
  return not_while_capturing(d, what, err);
}

int rt_mem_write(RtDevice *d, RtMem *m, size_t offset, const void *src, size_t bytes, RtError *err) {
  if (check_range(d, m, offset, bytes, "rt_mem_write", err)) return -1;
  if (bytes == 0) return 0;
  return d->ops->mem_write(d, m, offset, src, bytes, err);
}

int rt_mem_read(RtDevice *d, RtMem *m, size_t offset, void *dst, size_t bytes, RtError *err) {
  if (check_range(d, m, offset, bytes, "rt_mem_read", err)) return -1;
  if (bytes == 0) return 0;
  return d->ops->mem_read(d, m, offset, dst, bytes, err);
}

/* ---- code --------------------------------------------------------------- */

RtModule *rt_module_load(RtDevice *d, const RtCode *code, RtError *err) {
  if (not_while_capturing(d, "rt_module_load", err)) return NULL;
  if (!code) {
    rt_error_set(err, "%s: rt_module_load: no code given", kind_names[d->info.kind]);
    return NULL;
  }
  RtModule *mod = calloc(1, sizeof *mod);
  if (!mod) {
    rt_error_set(err, "%s: out of memory", kind_names[d->info.kind]);
    return NULL;
  }
  mod->dev = d;
  free(d->log);
  d->log = NULL;
  if (d->ops->module_load(d, mod, code, err) != 0) {
    free(mod);
    return NULL;
  }
  mod->next = d->modules;
  d->modules = mod;
  return mod;
}

int rt_module_binary(RtDevice *d, RtModule *m, void **data, size_t *size, RtError *err) {
  *data = NULL;
  *size = 0;
  if (!m || m->dev != d)
    return rt_error_set(err, "%s: rt_module_binary: the module does not belong to this device", kind_names[d->info.kind]);
  if (!d->ops->module_binary)
    return rt_error_set(err, "%s: modules have no binary to return (only OpenCL programs do)", kind_names[d->info.kind]);
  return d->ops->module_binary(d, m, data, size, err);
}

RtKernel *rt_kernel_get(RtDevice *d, RtModule *m, const char *name, RtError *err) {
  if (!m || m->dev != d) {
    rt_error_set(err, "%s: rt_kernel_get: the module does not belong to this device", kind_names[d->info.kind]);
    return NULL;
  }
  if (!name || !*name) {
    rt_error_set(err, "%s: rt_kernel_get: no kernel name given", kind_names[d->info.kind]);
    return NULL;
  }
  for (RtKernel *k = m->kernels; k; k = k->next)
    if (strcmp(k->name, name) == 0) return k;
  size_t len = strlen(name);
  RtKernel *k = calloc(1, sizeof *k + len + 1);
  if (!k) {
    rt_error_set(err, "%s: out of memory", kind_names[d->info.kind]);
    return NULL;
  }
  k->mod = m;
  memcpy(k->name, name, len + 1);
  if (d->ops->kernel_get(d, k, err) != 0) {
    free(k);
    return NULL;
  }
  k->next = m->kernels;
  m->kernels = k;
  return k;
}

/* ---- launches ----------------------------------------------------------- */

static int check_launch(RtDevice *d, const RtKernel *k, const RtArg *args, int nargs, RtError *err) {
  const char *kn = kind_names[d->info.kind];
  if (!k || k->mod->dev != d) return rt_error_set(err, "%s: rt_launch: the kernel does not belong to this device", kn);
  if (nargs < 0 || nargs > RT_MAX_ARGS || (nargs > 0 && !args))
    return rt_error_set(err, "%s: kernel '%s' launched with %d arguments (at most %d)", kn, k->name, nargs, RT_MAX_ARGS);
  for (int i = 0; i < nargs; i++) {
    switch (args[i].kind) {
    case RT_ARG_MEM:
      if (!args[i].mem || args[i].mem->dev != d)
        return rt_error_set(err, "%s: kernel '%s' argument %d: the buffer %s", kn, k->name, i,
                            args[i].mem ? "belongs to another device" : "is NULL");
      break;
    case RT_ARG_I64:
    case RT_ARG_I32:
    case RT_ARG_F32:
      break;
    default:
      return rt_error_set(err, "%s: kernel '%s' argument %d has unknown kind %d", kn, k->name, i, (int)args[i].kind);
    }
  }
  return 0;
}

static int record_launch(RtDevice *d, RtKernel *k, const RtArg *args, int nargs, const uint32_t grid[3],
                         const uint32_t block[3], RtError *err) {
  if (d->nrecs == d->caprecs) {
    int cap = d->caprecs ? 2 * d->caprecs : 16;
    RtLaunchRec *recs = realloc(d->recs, (size_t)cap * sizeof *recs);
    if (!recs) return rt_error_set(err, "%s: out of memory recording a launch", kind_names[d->info.kind]);
    d->recs = recs;
    d->caprecs = cap;
  }
  RtLaunchRec *r = &d->recs[d->nrecs];
  r->args = NULL;
  if (nargs > 0) {
    r->args = malloc((size_t)nargs * sizeof *r->args);
    if (!r->args) return rt_error_set(err, "%s: out of memory recording a launch", kind_names[d->info.kind]);
    memcpy(r->args, args, (size_t)nargs * sizeof *args);
  }
  r->k = k;
  r->nargs = nargs;
  memcpy(r->grid, grid, sizeof r->grid);
  memcpy(r->block, block, sizeof r->block);
  d->nrecs++;
  return 0;
}

int rt_launch(RtDevice *d, RtKernel *k, const RtArg *args, int nargs, const uint32_t grid[3],
              const uint32_t block[3], RtError *err) {
  if (check_launch(d, k, args, nargs, err)) return -1;
  /* 0 counts as 1 except in grid[0] (no work) and block[0] (the kind's default) */
  uint32_t g[3] = {grid[0], grid[1] ? grid[1] : 1, grid[2] ? grid[2] : 1};
  uint32_t b[3] = {block ? block[0] : 0, block && block[1] ? block[1] : 1, block && block[2] ? block[2] : 1};
  if (g[0] == 0) return 0;
  if (d->capturing && !d->ops->capture_begin) return record_launch(d, k, args, nargs, g, b, err);
  return d->ops->launch(d, k, args, nargs, g, b, err);
}

int rt_device_sync(RtDevice *d, RtError *err) {
  if (not_while_capturing(d, "rt_device_sync", err)) return -1;
  return d->ops->sync(d, err);
}

int rt_capture_begin(RtDevice *d, RtError *err) {
  if (d->capturing) return rt_error_set(err, "%s: rt_capture_begin: already capturing", kind_names[d->info.kind]);
  discard_records(d);
  d->captured = 0;
  if (d->ops->capture_begin && d->ops->capture_begin(d, err) != 0) return -1;
  d->capturing = 1;
  return 0;
}

int rt_capture_end(RtDevice *d, RtError *err) {
  if (!d->capturing)
    return rt_error_set(err, "%s: rt_capture_end without rt_capture_begin", kind_names[d->info.kind]);
  d->capturing = 0;
  if (d->ops->capture_end && d->ops->capture_end(d, err) != 0) return -1;
  d->captured = 1;
  return 0;
}

int rt_replay(RtDevice *d, RtError *err) {
  if (d->capturing)
    return rt_error_set(err, "%s: rt_replay while capturing (call rt_capture_end first)", kind_names[d->info.kind]);
  if (!d->captured) return rt_error_set(err, "%s: rt_replay: nothing has been captured", kind_names[d->info.kind]);
  if (d->ops->replay) return d->ops->replay(d, err);
  for (int i = 0; i < d->nrecs; i++) {
    const RtLaunchRec *r = &d->recs[i];
    if (d->ops->launch(d, r->k, r->args, r->nargs, r->grid, r->block, err) != 0) return -1;
  }
  return 0;
}
