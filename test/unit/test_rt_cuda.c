/* test/unit/test_rt_cuda.c - the CUDA device (runtime/device_cuda.c).
 *
 * Without a CUDA driver (the usual CI machine) opening cuda:0 must fail
 * with a plain "no CUDA driver found" (or "no CUDA GPU found" where the
 * driver is there but no GPU) and rt_device_print_list must still work.
 * With a GPU it runs a hand-written PTX vector add (.version 6.3, sm_75, so
 * any GPU the CUDA 13 toolchain supports can JIT it), replays a captured
 * CUDA graph, and checks the messages for bad PTX and for running out of
 * memory.  Without a GPU it ends as skipped (check.h), after the checks of
 * the no-GPU messages.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"

#include "check.h"

/* c[i] = a[i] + b[i] for i < n; one thread per element */
static const char *vadd_ptx =
    ".version 6.3\n"
    ".target sm_75\n"
    ".address_size 64\n"
    "\n"
    ".visible .entry vadd(\n"
    "  .param .u64 vadd_a,\n"
    "  .param .u64 vadd_b,\n"
    "  .param .u64 vadd_c,\n"
    "  .param .u32 vadd_n\n"
    ")\n"
    "{\n"
    "  .reg .pred %p<2>;\n"
    "  .reg .b32 %r<6>;\n"
    "  .reg .f32 %f<4>;\n"
    "  .reg .b64 %rd<11>;\n"
    "\n"
    "  ld.param.u64 %rd1, [vadd_a];\n"
    "  ld.param.u64 %rd2, [vadd_b];\n"
    "  ld.param.u64 %rd3, [vadd_c];\n"
    "  ld.param.u32 %r2, [vadd_n];\n"
    "  mov.u32 %r3, %ctaid.x;\n"
    "  mov.u32 %r4, %ntid.x;\n"
    "  mov.u32 %r5, %tid.x;\n"
    "  mad.lo.s32 %r1, %r3, %r4, %r5;\n"
    "  setp.ge.s32 %p1, %r1, %r2;\n"
    "  @%p1 bra DONE;\n"
    "  cvta.to.global.u64 %rd4, %rd1;\n"
    "  cvta.to.global.u64 %rd5, %rd2;\n"
    "  cvta.to.global.u64 %rd6, %rd3;\n"
    "  mul.wide.s32 %rd7, %r1, 4;\n"
    "  add.s64 %rd8, %rd4, %rd7;\n"
    "  add.s64 %rd9, %rd5, %rd7;\n"
    "  add.s64 %rd10, %rd6, %rd7;\n"
    "  ld.global.f32 %f1, [%rd8];\n"
    "  ld.global.f32 %f2, [%rd9];\n"
    "  add.f32 %f3, %f1, %f2;\n"
    "  st.global.f32 [%rd10], %f3;\n"
    "DONE:\n"
    "  ret;\n"
    "}\n";

enum { N = 1000003 };

static void run_on_gpu(RtDevice *d) {
  RtError err = {{0}};
  RtCode code = {.kind = RT_CODE_PTX, .data = vadd_ptx};
  RtModule *mod = rt_module_load(d, &code, &err);
  CHECK(mod != NULL, "load PTX: %s", err.msg);
  if (!mod) return;
  RtKernel *k = rt_kernel_get(d, mod, "vadd", &err);
  CHECK(k != NULL, "vadd: %s", err.msg);
  CHECK(rt_kernel_get(d, mod, "nope", &err) == NULL && strstr(err.msg, "no kernel named 'nope'"), "missing: %s",
        err.msg);
  if (!k) return;
  float *ha = malloc(N * sizeof *ha), *hb = malloc(N * sizeof *hb), *hc = malloc(N * sizeof *hc);
  for (int i = 0; i < N; i++) ha[i] = (float)i, hb[i] = (float)(i % 10);
  RtMem *a = rt_mem_alloc(d, N * sizeof(float), &err), *b = rt_mem_alloc(d, N * sizeof(float), &err),
        *c = rt_mem_alloc(d, N * sizeof(float), &err);
  CHECK(a && b && c, "alloc: %s", err.msg);
  if (!a || !b || !c) return;
  CHECK(rt_mem_read(d, c, 0, hc, N * sizeof(float), &err) == 0 && hc[0] == 0 && hc[N - 1] == 0, "zero-filled: %s",
        err.msg);
  rt_mem_write(d, a, 0, ha, N * sizeof(float), &err);
  rt_mem_write(d, b, 0, hb, N * sizeof(float), &err);
  RtArg args[] = {rt_arg_mem(a), rt_arg_mem(b), rt_arg_mem(c), rt_arg_i32(N)};
  uint32_t grid[3] = {(N + 255) / 256, 1, 1}, block[3] = {256, 1, 1};
  CHECK(rt_launch(d, k, args, 4, grid, block, &err) == 0, "launch: %s", err.msg);
  CHECK(rt_device_sync(d, &err) == 0, "sync: %s", err.msg);
  CHECK(rt_mem_read(d, c, 0, hc, N * sizeof(float), &err) == 0, "read: %s", err.msg);
  int wrong = 0;
  for (int i = 0; i < N; i++) wrong += hc[i] != (float)i + (float)(i % 10);
  CHECK(wrong == 0, "vadd: %d wrong, c[13] = %g", wrong, hc[13]);

  /* a CUDA graph of two launches: c = a + b; a = c + b; each replay adds 2b to a */
  RtArg back[] = {rt_arg_mem(c), rt_arg_mem(b), rt_arg_mem(a), rt_arg_i32(N)};
  CHECK(rt_capture_begin(d, &err) == 0, "capture: %s", err.msg);
  CHECK(rt_launch(d, k, args, 4, grid, block, &err) == 0, "captured launch: %s", err.msg);
  CHECK(rt_launch(d, k, back, 4, grid, block, &err) == 0, "captured launch: %s", err.msg);
  CHECK(rt_capture_end(d, &err) == 0, "end capture: %s", err.msg);
  for (int r = 0; r < 3; r++) CHECK(rt_replay(d, &err) == 0, "replay: %s", err.msg);
  CHECK(rt_mem_read(d, a, 0, ha, N * sizeof(float), &err) == 0, "read: %s", err.msg);
  wrong = 0;
  for (int i = 0; i < N; i++) wrong += ha[i] != (float)i + 6.0f * (float)(i % 10);
  CHECK(wrong == 0, "3 replays: %d wrong, a[13] = %g", wrong, ha[13]);

  /* messages */
  RtCode bad = {.kind = RT_CODE_PTX, .data = ".version 6.3\n.target sm_75\n.address_size 64\n"
                                             ".visible .entry bad() { mov.u32 %r1, 1; ret; }\n"};
  CHECK(rt_module_load(d, &bad, &err) == NULL && strstr(err.msg, "cuda: the driver rejected the PTX"),
        "bad PTX: %s", err.msg);
  printf("bad PTX: %s\n", err.msg);
  RtCode future = {.kind = RT_CODE_PTX, .data = ".version 99.0\n.target sm_75\n.address_size 64\n"};
  CHECK(rt_module_load(d, &future, &err) == NULL && strncmp(err.msg, "cuda: ", 6) == 0, "PTX 99.0: %s", err.msg);
  printf("PTX 99.0: %s\n", err.msg);
  CHECK(rt_mem_alloc(d, (size_t)1 << 50, &err) == NULL && strstr(err.msg, "cuda: cuMemAlloc(1125899906842624 bytes) failed at runtime/device_cuda.c:") &&
            strstr(err.msg, "CUDA_ERROR_OUT_OF_MEMORY (out of memory)"),
        "out of memory: %s", err.msg);
  free(ha), free(hb), free(hc);
}

int main(void) {
  FILE *f = tmpfile();
  rt_device_print_list(f);
  rewind(f);
  char text[8192] = "";
  text[fread(text, 1, sizeof text - 1, f)] = 0;
  fclose(f);
  printf("%s", text);
  CHECK(strncmp(text, "cpu ", 4) == 0, "listing: %s", text);

  RtError err = {{0}};
  RtDevice *d = rt_device_open(RT_DEVICE_CUDA, 0, 0, &err);
  if (!d) {
    CHECK(strcmp(err.msg, "no CUDA driver found (libcuda.so.1 could not be loaded)") == 0 ||
              strcmp(err.msg, "no CUDA GPU found") == 0,
          "opening cuda:0 without a GPU: '%s'", err.msg);
    CHECK(strstr(text, "\ncuda: no CUDA ") != NULL, "listing says why there is no CUDA device: %s", text);
    check_skip("no CUDA GPU here (%s): the GPU part did not run", err.msg);
  } else {
    printf("cuda:0 is %s (%s)\n", rt_device_info(d)->name, rt_device_info(d)->version);
    CHECK(strstr(text, "\ncuda:0 ") != NULL, "listing shows cuda:0: %s", text);
    RtError e2 = {{0}};
    CHECK(rt_device_open(RT_DEVICE_CUDA, 999, 0, &e2) == NULL && strstr(e2.msg, "cuda:999 does not exist"),
          "cuda:999: %s", e2.msg);
    run_on_gpu(d);
    rt_device_close(d);
  }
  return check_done();
}
