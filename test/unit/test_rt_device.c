/* test/unit/test_rt_device.c - the device interface (runtime/device.c) on
 * the CPU device (runtime/device_cpu.c): device specs, listing, buffers,
 * native kernels, launch recording and replay, and the errors a caller can
 * make.  Needs no GPU and no OpenCL.  Prints one line per failed check;
 * exits 1 if any failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"

#include "check.h"

static void test_parse(void) {
  static const struct {
    const char *spec;
    int ok;
    RtDeviceKind kind;
    int index;
  } cases[] = {
      {"cpu", 1, RT_DEVICE_CPU, 0},       {"cuda", 1, RT_DEVICE_CUDA, 0},      {"cuda:1", 1, RT_DEVICE_CUDA, 1},
      {"opencl", 1, RT_DEVICE_OPENCL, 0}, {"opencl:12", 1, RT_DEVICE_OPENCL, 12}, {"gpu", 0, RT_DEVICE_CPU, 0},
      {"cuda:", 0, RT_DEVICE_CPU, 0},     {"cuda:x", 0, RT_DEVICE_CPU, 0},     {"cpu:0", 0, RT_DEVICE_CPU, 0},
      {"opencl:-1", 0, RT_DEVICE_CPU, 0}, {"", 0, RT_DEVICE_CPU, 0},           {"cudas", 0, RT_DEVICE_CPU, 0},
      {"cuda:99999999", 0, RT_DEVICE_CPU, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    RtDeviceKind kind = RT_DEVICE_CPU;
    int index = -1;
    RtError err = {{0}};
    int rc = rt_device_parse(cases[i].spec, &kind, &index, &err);
    if (cases[i].ok) {
      CHECK(rc == 0 && kind == cases[i].kind && index == cases[i].index, "'%s': rc %d kind %d index %d (%s)",
            cases[i].spec, rc, (int)kind, index, err.msg);
    } else {
      CHECK(rc == -1 && strstr(err.msg, "unknown device"), "'%s' should fail: rc %d '%s'", cases[i].spec, rc, err.msg);
    }
  }
}

static void test_list(void) {
  int n = rt_device_list(NULL, 0);
  CHECK(n >= 1, "rt_device_list found %d devices", n);
  RtDeviceInfo info[8];
  int got = rt_device_list(info, 8);
  CHECK(got == n, "%d then %d devices", n, got);
  CHECK(info[0].kind == RT_DEVICE_CPU && strcmp(info[0].type, "CPU") == 0 && info[0].compute_units >= 1,
        "first device: kind %d type %s", (int)info[0].kind, info[0].type);
  FILE *f = tmpfile();
  rt_device_print_list(f);
  rewind(f);
  char text[4096] = "";
  size_t len = fread(text, 1, sizeof text - 1, f);
  text[len] = 0;
  fclose(f);
  CHECK(strncmp(text, "cpu        CPU        ", 22) == 0, "listing starts: %.60s", text);
  CHECK(strstr(text, "threads, ") && strstr(text, " GiB"), "listing: %s", text);
  CHECK(strstr(text, "\ncuda") != NULL && strstr(text, "\nopencl") != NULL, "cuda and opencl lines: %s", text);
}

/* y[i] = a * x[i] + y[i] */
static void saxpy(void **args, int64_t begin, int64_t end) {
  float *x = *(float **)args[0], *y = *(float **)args[1];
  float a = *(float *)args[2];
  int64_t n = *(int64_t *)args[3];
  for (int64_t i = begin; i < end && i < n; i++) y[i] = a * x[i] + y[i];
}

/* x[i] += 1 (i32 argument: the step) */
static void add_step(void **args, int64_t begin, int64_t end) {
  float *x = *(float **)args[0];
  int32_t step = *(int32_t *)args[1];
  for (int64_t i = begin; i < end; i++) x[i] += (float)step;
}

static void test_cpu_device(void) {
  RtError err = {{0}};
  RtDevice *d = rt_device_open(RT_DEVICE_CPU, 0, 2, &err);
  CHECK(d != NULL, "open cpu: %s", err.msg);
  if (!d) return;
  CHECK(rt_device_info(d)->compute_units == 2, "threads %d", rt_device_info(d)->compute_units);
  CHECK(rt_device_open(RT_DEVICE_CPU, 1, 0, &err) == NULL && strstr(err.msg, "cpu:1 does not exist"), "cpu:1: %s",
        err.msg);

  enum { N = 100003 };
  RtMem *x = rt_mem_alloc(d, N * sizeof(float), &err);
  RtMem *y = rt_mem_alloc(d, N * sizeof(float), &err);
  CHECK(x && y, "alloc: %s", err.msg);
  if (!x || !y) return;
  CHECK(((uintptr_t)rt_mem_host(x) & 63) == 0, "alignment of %p", rt_mem_host(x));
  CHECK(rt_mem_size(x) == N * sizeof(float), "size %zu", rt_mem_size(x));
  float *hx = malloc(N * sizeof *hx), *hy = malloc(N * sizeof *hy);
  CHECK(rt_mem_read(d, y, 0, hy, N * sizeof(float), &err) == 0, "read: %s", err.msg);
  int nonzero = 0;
  for (int i = 0; i < N; i++) nonzero += hy[i] != 0;
  CHECK(nonzero == 0, "%d nonzero floats in a fresh buffer", nonzero);
  for (int i = 0; i < N; i++) hx[i] = (float)i, hy[i] = 1;
  CHECK(rt_mem_write(d, x, 0, hx, N * sizeof(float), &err) == 0, "write: %s", err.msg);
  CHECK(rt_mem_write(d, y, 0, hy, N * sizeof(float), &err) == 0, "write: %s", err.msg);
  CHECK(rt_mem_write(d, y, 8, hy, N * sizeof(float), &err) == -1 && strstr(err.msg, "outside"), "bounds: %s", err.msg);

  const char *names[] = {"saxpy", "add_step"};
  const RtNativeKernel fns[] = {saxpy, add_step};
  RtCode code = {.kind = RT_CODE_NATIVE, .native_names = names, .native_fns = fns, .nnative = 2};
  RtModule *mod = rt_module_load(d, &code, &err);
  CHECK(mod != NULL, "module: %s", err.msg);
  RtCode ptx = {.kind = RT_CODE_PTX, .data = ".version 6.3"};
  CHECK(rt_module_load(d, &ptx, &err) == NULL && strstr(err.msg, "native code only"), "ptx on cpu: %s", err.msg);
  if (!mod) return;
  RtKernel *k = rt_kernel_get(d, mod, "saxpy", &err);
  CHECK(k != NULL && rt_kernel_get(d, mod, "saxpy", &err) == k, "kernel: %s", err.msg);
  CHECK(rt_kernel_get(d, mod, "nope", &err) == NULL && strstr(err.msg, "no kernel named 'nope'"), "missing: %s",
        err.msg);
  void *bin;
  size_t binsize;
  CHECK(rt_module_binary(d, mod, &bin, &binsize, &err) == -1, "binary of a cpu module");

  RtArg args[] = {rt_arg_mem(x), rt_arg_mem(y), rt_arg_f32(2.0f), rt_arg_i64(N)};
  uint32_t grid[3] = {N, 1, 1}, block[3] = {1000, 0, 0};
  CHECK(rt_launch(d, k, args, 4, grid, block, &err) == 0, "launch: %s", err.msg);
  CHECK(rt_device_sync(d, &err) == 0, "sync: %s", err.msg);
  rt_mem_read(d, y, 0, hy, N * sizeof(float), &err);
  int wrong = 0;
  for (int i = 0; i < N; i++) wrong += hy[i] != 2.0f * (float)i + 1;
  CHECK(wrong == 0, "saxpy: %d wrong, y[5] = %g", wrong, hy[5]);
  uint32_t grid2[3] = {N, 2, 1};
  CHECK(rt_launch(d, k, args, 4, grid2, block, &err) == -1 && strstr(err.msg, "range [0, grid[0]) only"), "2-d: %s",
        err.msg);
  uint32_t none[3] = {0, 0, 0};
  CHECK(rt_launch(d, k, args, 4, none, block, &err) == 0, "empty launch: %s", err.msg);
  RtArg bad[] = {rt_arg_mem(NULL)};
  CHECK(rt_launch(d, k, bad, 1, grid, block, &err) == -1 && strstr(err.msg, "argument 0"), "null buffer: %s", err.msg);
  CHECK(rt_launch(d, k, args, RT_MAX_ARGS + 1, grid, block, &err) == -1, "too many arguments");

  /* capture: recorded, not run, until replayed */
  RtKernel *step = rt_kernel_get(d, mod, "add_step", &err);
  CHECK(rt_replay(d, &err) == -1 && strstr(err.msg, "nothing has been captured"), "replay first: %s", err.msg);
  CHECK(rt_capture_end(d, &err) == -1, "end without begin");
  for (int i = 0; i < N; i++) hx[i] = 0;
  rt_mem_write(d, x, 0, hx, N * sizeof(float), &err);
  CHECK(rt_capture_begin(d, &err) == 0, "capture: %s", err.msg);
  CHECK(rt_capture_begin(d, &err) == -1 && strstr(err.msg, "already capturing"), "twice: %s", err.msg);
  RtArg a1[] = {rt_arg_mem(x), rt_arg_i32(1)}, a2[] = {rt_arg_mem(x), rt_arg_i32(2)};
  CHECK(rt_launch(d, step, a1, 2, grid, block, &err) == 0, "record: %s", err.msg);
  CHECK(rt_launch(d, step, a2, 2, grid, block, &err) == 0, "record: %s", err.msg);
  CHECK(rt_mem_read(d, x, 0, hx, 4, &err) == -1 && strstr(err.msg, "while capturing"), "read in capture: %s", err.msg);
  CHECK(rt_replay(d, &err) == -1, "replay while capturing");
  CHECK(rt_capture_end(d, &err) == 0, "end: %s", err.msg);
  rt_mem_read(d, x, 0, hx, N * sizeof(float), &err);
  CHECK(hx[0] == 0 && hx[N - 1] == 0, "captured launches ran early: %g", hx[0]);
  for (int r = 0; r < 3; r++) CHECK(rt_replay(d, &err) == 0, "replay: %s", err.msg);
  rt_mem_read(d, x, 0, hx, N * sizeof(float), &err);
  wrong = 0;
  for (int i = 0; i < N; i++) wrong += hx[i] != 9.0f;
  CHECK(wrong == 0, "after 3 replays of +1 +2: %d wrong, x[0] = %g", wrong, hx[0]);

  rt_mem_free(d, y);
  RtMem *empty = rt_mem_alloc(d, 0, &err);
  CHECK(empty != NULL && rt_mem_size(empty) == 0, "zero-byte buffer: %s", err.msg);
  free(hx);
  free(hy);
  rt_device_close(d); /* frees x, empty, the module and the recorded launches */
}

int main(void) {
  test_parse();
  test_list();
  test_cpu_device();
  return check_done();
}
