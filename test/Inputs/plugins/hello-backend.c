/* A minimal plugin (test/Plugins): target `hello` walks the kernel IR
 * through the host table and writes what it finds; it builds no trainer.
 *
 *   --emit=summary      one line per kernel
 *   --emit=cl           one line naming its --local-mem (a kind a built-in
 *                       target writes too: nothing reserves it)
 *   --emit=descriptor   the trainer descriptor through write_descriptor,
 *                       with --backend-opt=code=TEXT as device code (no
 *                       code: native functions), reported as device=NAME
 *   --emit=kernels      (nnc's own) its schedule hook says it ran
 *
 * It declares OpenCL C code (NncBackend.code).  -DNAME=\"cpu\" makes a
 * plugin whose target clashes with a built-in one; -DLEGACY one built
 * before `code` and `schedule` were appended (its struct_size ends at
 * `options`), named legacy. */
#include <nnc/backend.h>

#include <stdio.h>
#include <string.h>

#ifdef LEGACY
#define NAME "legacy"
#endif
#ifndef NAME
#define NAME "hello"
#endif

static int count_stmts(const NncHost *h, const NncStmt *s) {
  int n = 1;
  for (int i = 0; i < h->stmt_num_body(s); i++) n += count_stmts(h, h->stmt_body(s, i));
  return n;
}

static int hello_compile(const NncHost *h, NncCompile *c) {
  const NncProgram *p = h->program(c);
  const char *emit = h->emit(c);
  if (!emit) {
    h->diag(c, NNC_DIAG_ERROR, h->num_kernels(p) ? h->kernel(p, 0) : NULL,
            "the hello backend writes only --emit=summary, cl or descriptor");
    return 1;
  }
  if (!strcmp(emit, "cl")) {
    printf("// hello: local-mem %s\n", h->option(c, "local-mem") ? h->option(c, "local-mem") : "none");
    return 0;
  }
  if (!strcmp(emit, "descriptor")) {
    const char *code = h->option(c, "code"), *out = h->output(c);
    return h->write_descriptor(c, out ? out : "model.c", h->option(c, "device"), code,
                               code ? (uint64_t)strlen(code) : 0, NULL);
  }
  printf("program %s: %d buffers, %d kernels, train plan %d, eval plan %d\n", h->program_name(p), h->num_buffers(p),
         h->num_kernels(p), h->plan_length(p, NNC_PLAN_TRAIN), h->plan_length(p, NNC_PLAN_EVAL));
  for (int i = 0; i < h->num_kernels(p); i++) {
    const NncKernel *k = h->kernel(p, i);
    int batched = 0, n = 0;
    long long range = (long long)h->kernel_range(k, &batched);
    for (int s = 0; s < h->kernel_num_stmts(k); s++) n += count_stmts(h, h->kernel_stmt(k, s));
    NncLoc loc = h->kernel_loc(p, k);
    printf("kernel %s: %d args, range %lld%s, %d statements, line %d\n", h->kernel_name(k), h->kernel_num_args(k),
           range, batched ? "*B" : "", n, loc.line);
  }
  h->diag(c, NNC_DIAG_WARNING, h->kernel(p, 0), "hello from a plugin (option greeting=%s)",
          h->option(c, "greeting") ? h->option(c, "greeting") : "none");
  return 0;
}

static int hello_schedule(const NncHost *h, NncCompile *c) {
  h->diag(c, NNC_DIAG_NOTE, NULL, "hello schedules %d kernels", h->num_kernels(h->program(c)));
  return 0;
}

static const NncBackend hello = {
    .api_version = NNC_BACKEND_API_VERSION,
#ifdef LEGACY
    .struct_size = offsetof(NncBackend, options) + sizeof(const char *),
#else
    .struct_size = sizeof(NncBackend),
#endif
    .name = NAME,
    .description = "a test backend that summarises the kernel IR",
    .emits = "summary,cl,descriptor",
    .compile = hello_compile,
    .options = "greeting,local-mem,device,code",
    .code = NNC_CODE_OPENCL_C,
    .schedule = hello_schedule,
};
static const NncBackend *const list[] = {&hello};
static const NncPlugin plugin = {NNC_BACKEND_API_VERSION, sizeof(NncPlugin), "hello", 1, list};

NNC_PLUGIN_EXPORT const NncPlugin *nnc_backend_plugin(void) { return &plugin; }
