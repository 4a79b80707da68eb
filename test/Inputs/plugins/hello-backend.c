/* A minimal plugin (test/Plugins): target `hello` walks the kernel IR
 * through the host table and, for --emit=summary, writes one line per
 * kernel; it builds no trainer.  -DNAME=\"cpu\" makes a plugin whose target
 * clashes with a built-in one. */
#include <nnc/backend.h>

#include <stdio.h>

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
  if (!h->emit(c)) {
    h->diag(c, NNC_DIAG_ERROR, h->num_kernels(p) ? h->kernel(p, 0) : NULL,
            "the hello backend writes only --emit=summary");
    return 1;
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

static const NncBackend hello = {NNC_BACKEND_API_VERSION, sizeof(NncBackend), NAME,
                                 "a test backend that summarises the kernel IR", "summary", 0, hello_compile, 0,
                                 "greeting"};
static const NncBackend *const list[] = {&hello};
static const NncPlugin plugin = {NNC_BACKEND_API_VERSION, sizeof(NncPlugin), "hello", 1, list};

NNC_PLUGIN_EXPORT const NncPlugin *nnc_backend_plugin(void) { return &plugin; }
