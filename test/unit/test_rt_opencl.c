/* test/unit/test_rt_opencl.c - the OpenCL device (runtime/device_opencl.c)
 * on whatever OpenCL device is first, PoCL's CPU device in CI.
 *
 * Builds a vector add and a work-group reduction from source and checks
 * their results; a syntax error must fail with the compiler's build log in
 * the message; the binary of a built program must load back through
 * clCreateProgramWithBinary and run; recorded launches replay; and with no
 * platform (a child process run with OCL_ICD_VENDORS=/nonexistent) opening
 * a device says "no OpenCL platform found".  Ends as skipped (check.h) when
 * there is no OpenCL device at all.
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "runtime/device.h"

#include "check.h"

extern char **environ;

static const char *source =
    "/* c = a + alpha * b */\n"
    "__kernel void vadd(__global const float *a, __global const float *b, __global float *c,\n"
    "                   float alpha, int n) {\n"
    "  int i = get_global_id(0);\n"
    "  if (i < n) c[i] = a[i] + alpha * b[i];\n"
    "}\n"
    "\n"
    "/* partial[g] = sum of x over the items of work-group g (64 items) */\n"
    "#define WG 64\n"
    "__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))\n"
    "void sum(__global const float *x, __global float *partial, long n) {\n"
    "  __local float tmp[WG];\n"
    "  size_t lid = get_local_id(0);\n"
    "  float s = 0;\n"
    "  for (long i = get_global_id(0); i < n; i += get_global_size(0)) s += x[i];\n"
    "  tmp[lid] = s;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  for (int off = WG / 2; off > 0; off >>= 1) {\n"
    "    if (lid < off) tmp[lid] += tmp[lid + off];\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  }\n"
    "  if (lid == 0) partial[get_group_id(0)] = tmp[0];\n"
    "}\n"
    "\n"
    "__kernel void inc(__global float *x, float v) { x[get_global_id(0)] += v; }\n";

enum { N = 100000, GROUPS = 16 };

/* Runs vadd (c = a + 2b) from module mod and checks c. */
static void check_vadd(RtDevice *d, RtModule *mod, const char *what, int local) {
  RtError err = {{0}};
  RtKernel *k = rt_kernel_get(d, mod, "vadd", &err);
  CHECK(k != NULL, "%s: vadd: %s", what, err.msg);
  if (!k) return;
  float *ha = malloc(N * sizeof *ha), *hb = malloc(N * sizeof *hb), *hc = malloc(N * sizeof *hc);
  for (int i = 0; i < N; i++) ha[i] = (float)i, hb[i] = (float)(i % 10);
  RtMem *a = rt_mem_alloc(d, N * sizeof(float), &err), *b = rt_mem_alloc(d, N * sizeof(float), &err),
        *c = rt_mem_alloc(d, N * sizeof(float), &err);
  CHECK(a && b && c, "%s: alloc: %s", what, err.msg);
  CHECK(rt_mem_write(d, a, 0, ha, N * sizeof(float), &err) == 0, "%s: write: %s", what, err.msg);
  CHECK(rt_mem_write(d, b, 0, hb, N * sizeof(float), &err) == 0, "%s: write: %s", what, err.msg);
  RtArg args[] = {rt_arg_mem(a), rt_arg_mem(b), rt_arg_mem(c), rt_arg_f32(2.0f), rt_arg_i32(N)};
  uint32_t grid[3] = {local ? (N + 255) / 256 : N, 1, 1}, block[3] = {local ? 256 : 0, 1, 1};
  CHECK(rt_launch(d, k, args, 5, grid, block, &err) == 0, "%s: launch: %s", what, err.msg);
  CHECK(rt_mem_read(d, c, 0, hc, N * sizeof(float), &err) == 0, "%s: read: %s", what, err.msg);
  int wrong = 0;
  for (int i = 0; i < N; i++) wrong += hc[i] != (float)i + 2.0f * (float)(i % 10);
  CHECK(wrong == 0, "%s: vadd: %d wrong, c[13] = %g", what, wrong, hc[13]);
  rt_mem_free(d, a), rt_mem_free(d, b), rt_mem_free(d, c);
  free(ha), free(hb), free(hc);
}

static void test_reduction(RtDevice *d, RtModule *mod) {
  RtError err = {{0}};
  RtKernel *k = rt_kernel_get(d, mod, "sum", &err);
  CHECK(k != NULL, "sum: %s", err.msg);
  if (!k) return;
  float *hx = malloc(N * sizeof *hx);
  double want = 0;
  for (int i = 0; i < N; i++) hx[i] = (float)(i % 7), want += i % 7;
  RtMem *x = rt_mem_alloc(d, N * sizeof(float), &err), *partial = rt_mem_alloc(d, GROUPS * sizeof(float), &err);
  rt_mem_write(d, x, 0, hx, N * sizeof(float), &err);
  RtArg args[] = {rt_arg_mem(x), rt_arg_mem(partial), rt_arg_i64(N)};
  uint32_t grid[3] = {GROUPS, 1, 1}, block[3] = {64, 1, 1};
  CHECK(rt_launch(d, k, args, 3, grid, block, &err) == 0, "sum: %s", err.msg);
  float hp[GROUPS];
  CHECK(rt_mem_read(d, partial, 0, hp, sizeof hp, &err) == 0, "read: %s", err.msg);
  double got = 0;
  for (int g = 0; g < GROUPS; g++) got += hp[g];
  CHECK(got == want, "sum: %.1f, want %.1f", got, want);
  free(hx);
}

static void test_errors(RtDevice *d, RtModule *mod) {
  RtError err = {{0}};
  RtCode bad = {.kind = RT_CODE_CL_SOURCE, .data = "__kernel void bad(__global float *x) { x[0] = ; }\n"};
  CHECK(rt_module_load(d, &bad, &err) == NULL, "a syntax error built");
  CHECK(strstr(err.msg, "clBuildProgram") && strstr(err.msg, "CL_BUILD_PROGRAM_FAILURE") &&
            strstr(err.msg, "runtime/device_opencl.c:") && strstr(err.msg, "error:"),
        "message: %s", err.msg);
  CHECK(strstr(rt_device_log(d), "error:") != NULL, "rt_device_log: %s", rt_device_log(d));

  RtCode junk = {.kind = RT_CODE_CL_BINARY, .data = "not a binary at all", .size = 19};
  CHECK(rt_module_load(d, &junk, &err) == NULL && strncmp(err.msg, "opencl: ", 8) == 0, "junk binary: %s", err.msg);

  CHECK(rt_kernel_get(d, mod, "nope", &err) == NULL && strstr(err.msg, "no kernel named 'nope'"), "missing: %s",
        err.msg);
  RtKernel *k = rt_kernel_get(d, mod, "inc", &err);
  RtMem *x = rt_mem_alloc(d, 64 * sizeof(float), &err);
  RtArg wrong[] = {rt_arg_mem(x), rt_arg_i64(1)}; /* inc takes a float */
  uint32_t grid[3] = {64, 1, 1}, block[3] = {0, 0, 0};
  CHECK(rt_launch(d, k, wrong, 2, grid, block, &err) == -1 &&
            strstr(err.msg, "opencl: clSetKernelArg(inc, argument 1) failed at runtime/device_opencl.c:") &&
            strstr(err.msg, "CL_INVALID_ARG_SIZE"),
        "wrong argument: %s", err.msg);
  CHECK(rt_device_open(RT_DEVICE_OPENCL, 99, 0, &err) == NULL && strstr(err.msg, "opencl:99 does not exist"),
        "opencl:99: %s", err.msg);
  rt_mem_free(d, x);
}

static void test_binary(RtDevice *d, RtModule *mod) {
  RtError err = {{0}};
  void *bin = NULL;
  size_t size = 0;
  CHECK(rt_module_binary(d, mod, &bin, &size, &err) == 0 && bin && size > 0, "binary: %s", err.msg);
  if (!bin) return;
  RtCode code = {.kind = RT_CODE_CL_BINARY, .data = bin, .size = size};
  RtModule *again = rt_module_load(d, &code, &err);
  CHECK(again != NULL, "load binary (%zu bytes): %s", size, err.msg);
  if (again) check_vadd(d, again, "from binary", 1);
  free(bin);
}

static void test_replay(RtDevice *d, RtModule *mod) {
  RtError err = {{0}};
  RtKernel *k = rt_kernel_get(d, mod, "inc", &err);
  RtMem *x = rt_mem_alloc(d, 1024 * sizeof(float), &err);
  uint32_t grid[3] = {1024, 1, 1}, block[3] = {0, 0, 0};
  RtArg a1[] = {rt_arg_mem(x), rt_arg_f32(1)}, a2[] = {rt_arg_mem(x), rt_arg_f32(2)};
  CHECK(rt_capture_begin(d, &err) == 0, "capture: %s", err.msg);
  rt_launch(d, k, a1, 2, grid, block, &err);
  rt_launch(d, k, a2, 2, grid, block, &err);
  CHECK(rt_capture_end(d, &err) == 0, "end: %s", err.msg);
  for (int r = 0; r < 3; r++) CHECK(rt_replay(d, &err) == 0, "replay: %s", err.msg);
  float hx[1024];
  CHECK(rt_mem_read(d, x, 0, hx, sizeof hx, &err) == 0, "read: %s", err.msg);
  int wrong = 0;
  for (int i = 0; i < 1024; i++) wrong += hx[i] != 9.0f;
  CHECK(wrong == 0, "3 replays of +1 +2: %d wrong, x[0] = %g", wrong, hx[0]);
}

/* In a child with no ICD vendors: the error, and a listing that says so. */
static int no_platform_child(void) {
  RtError err = {{0}};
  RtDevice *d = rt_device_open(RT_DEVICE_OPENCL, 0, 0, &err);
  CHECK(d == NULL && strcmp(err.msg, "no OpenCL platform found") == 0, "no platform: '%s'", err.msg);
  FILE *f = tmpfile();
  rt_device_print_list(f);
  rewind(f);
  char text[4096] = "";
  text[fread(text, 1, sizeof text - 1, f)] = 0;
  fclose(f);
  CHECK(strstr(text, "\nopencl: no OpenCL platform found\n") != NULL, "listing: %s", text);
  return failures ? 1 : 0;
}

static void test_no_platform(void) {
  /* the loader reads its vendors once per process, so ask a fresh one */
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 2, sizeof *env);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "OCL_ICD_VENDORS=", 16) != 0) env[m++] = environ[i];
  env[m++] = "OCL_ICD_VENDORS=/nonexistent";
  env[m] = NULL;
  char *argv[] = {"test_rt_opencl", "--no-platform", NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, env);
  CHECK(rc == 0, "posix_spawn: %d", rc);
  if (rc == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the no-platform child failed (status %d)", status);
  }
  free(env);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--no-platform") == 0) return no_platform_child();
  RtDeviceInfo info[16];
  int n = rt_device_list(info, 16), first = -1;
  for (int i = 0; i < n && i < 16; i++)
    if (info[i].kind == RT_DEVICE_OPENCL && first < 0) first = i;
  if (first < 0) {
    rt_device_print_list(stdout);
    check_skip("no OpenCL device");
    return check_done();
  }
  printf("opencl:0 is %s (%s), %s, %s\n", info[first].name, info[first].platform, info[first].type,
         info[first].version);
  CHECK(info[first].index == 0 && info[first].compute_units > 0 && info[first].memory_bytes > 0, "info");

  RtError err = {{0}};
  RtDevice *d = rt_device_open(RT_DEVICE_OPENCL, 0, 0, &err);
  CHECK(d != NULL, "open opencl:0: %s", err.msg);
  if (!d) return 1;
  RtCode code = {.kind = RT_CODE_CL_SOURCE, .data = source, .options = "-cl-std=CL1.2"};
  RtModule *mod = rt_module_load(d, &code, &err);
  CHECK(mod != NULL, "build: %s", err.msg);
  if (mod) {
    check_vadd(d, mod, "from source", 1);
    check_vadd(d, mod, "no local size", 0);
    test_reduction(d, mod);
    test_binary(d, mod);
    test_replay(d, mod);
    test_errors(d, mod);
  }
  rt_device_close(d);
  test_no_platform();
  return check_done();
}
