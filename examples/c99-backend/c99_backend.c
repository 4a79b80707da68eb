/* c99_backend.c - an nnc backend plugin: the kernels as portable C99.
 *
 * The target `c99` writes every kernel of the kernel IR as a plain C99
 * function, the form high-level synthesis tools for FPGAs (Vitis HLS, Intel
 * HLS, Catapult) take as input: fixed-size loops, typed pointers, no
 * dynamic memory, no library calls beyond <math.h>.  For each kernel NAME
 *
 *   static void NAME_core(float *restrict b4, const float *restrict b0, ...,
 *                         long long B, long long begin, long long end)
 *
 * is the synthesizable core, and `void NAME(void **args, int64_t begin,
 * int64_t end)` unpacks the runtime's arguments and calls it: that is the
 * native kernel ABI of libnnrt's cpu device, so the trainer runs the C on
 * the host (the same source an HLS flow would turn into hardware).
 *
 *   nnc m.nn --plugin=nnc-c99.so --target=c99 -o train    a trainer
 *   nnc m.nn --plugin=nnc-c99.so --target=c99 --emit=c    the C99 source
 *
 * Options (--backend-opt=KEY=VALUE): cc=COMPILER (default $CC, then cc),
 * cflags="-O3 -march=native" (default -O2), hls=1 (add #pragma HLS hints
 * for the loops' schedule).
 *
 * Built against <nnc/backend.h> only; see docs/backends.md.
 */
#include <nnc/backend.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Gen {
  const NncHost *h;
  NncCompile *c;
  const NncProgram *p;
  FILE *out;
  int scalars;        /* the scalars buffer, or -1 */
  int hls;            /* emit #pragma HLS hints */
  int failed;
  const NncKernel *k; /* the kernel being written, for diagnostics */
} Gen;

/* The prelude: helpers with the interpreter's semantics (nnc/backend.h, NncOp). */
static const char prelude[] =
    "#include <math.h>\n"
    "#include <stdint.h>\n"
    "\n"
    "/* i32 arithmetic wraps; division truncates, x / 0 is 0 and INT32_MIN / -1 is INT32_MIN */\n"
    "static int32_t nnc_iadd(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }\n"
    "static int32_t nnc_isub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }\n"
    "static int32_t nnc_imul(int32_t a, int32_t b) { return (int32_t)((uint32_t)a * (uint32_t)b); }\n"
    "static int32_t nnc_ineg(int32_t a) { return (int32_t)(0u - (uint32_t)a); }\n"
    "static int32_t nnc_iabs(int32_t a) { return a < 0 ? nnc_ineg(a) : a; }\n"
    "static int32_t nnc_idiv(int32_t a, int32_t b) {\n"
    "  return b == 0 ? 0 : (a == INT32_MIN && b == -1) ? a : a / b;\n"
    "}\n"
    "static long long nnc_ldiv(long long a, long long b) { return b == 0 ? 0 : a / b; }\n"
    "/* max and min propagate NaN; sign keeps it */\n"
    "static float nnc_fmax(float a, float b) { return a != a ? a : b != b ? b : a >= b ? a : b; }\n"
    "static float nnc_fmin(float a, float b) { return a != a ? a : b != b ? b : a <= b ? a : b; }\n"
    "static float nnc_fsign(float a) { return a != a ? a : (float)((a > 0) - (a < 0)); }\n"
    "/* f32 -> i32 truncates toward zero and saturates; NaN gives 0 */\n"
    "static int32_t nnc_f2i(float a) {\n"
    "  return a != a ? 0 : a >= 2147483648.0f ? INT32_MAX : a <= -2147483648.0f ? INT32_MIN : (int32_t)a;\n"
    "}\n"
    "/* random: Philox4x32-10, key (key, 0), counter (ctr0 low, ctr0 high, ctr1, 0) -> [0, 1) */\n"
    "static float nnc_random(int32_t key, int32_t ctr1, long long ctr0) {\n"
    "  uint32_t x0 = (uint32_t)ctr0, x1 = (uint32_t)((uint64_t)ctr0 >> 32), x2 = (uint32_t)ctr1, x3 = 0;\n"
    "  uint32_t k0 = (uint32_t)key, k1 = 0;\n"
    "  for (int r = 0; r < 10; r++) {\n"
    "    if (r > 0) k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;\n"
    "    uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;\n"
    "    x0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0, x2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;\n"
    "    x1 = (uint32_t)p1, x3 = (uint32_t)p0;\n"
    "  }\n"
    "  return (float)(x0 >> 8) * 0x1p-24f;\n"
    "}\n"
    "\n";

static const char *ctype(NncDType t, int index) { return index ? "long long" : t == NNC_F32 ? "float" : "int32_t"; }

static void fail(Gen *g, const char *fmt, const char *what) {
  if (!g->failed) g->h->diag(g->c, NNC_DIAG_ERROR, g->k, fmt, what);
  g->failed = 1;
}

static void expr(Gen *g, const NncExpr *e);

/* buf[i0, i1, ...] as a flat row-major index; batched buffers index the sample first. */
static void flat_index(Gen *g, int buf, int n, const NncExpr *(*idx)(const void *, int), const void *owner) {
  const NncHost *h = g->h;
  int batched = h->buffer_batched(g->p, buf);
  for (int i = 0; i < n - 1; i++) fputc('(', g->out);
  for (int i = 0; i < n; i++) {
    if (i > 0) {
      int axis = batched ? i - 1 : i; /* the per-sample axis of index i */
      fprintf(g->out, " * %lldLL + ", (long long)h->buffer_dim(g->p, buf, axis));
    }
    fputc('(', g->out);
    expr(g, idx(owner, i));
    fputc(')', g->out);
    if (i > 0) fputc(')', g->out);
  }
  if (n == 0) fputc('0', g->out);
}

static const NncHost *cur_host; /* for the two adapters below */
static const NncExpr *load_index(const void *e, int i) { return cur_host->expr_index((const NncExpr *)e, i); }
static const NncExpr *store_index(const void *s, int i) { return cur_host->stmt_index((const NncStmt *)s, i); }

static void number(Gen *g, double v, NncDType t, int index) {
  if (index) fprintf(g->out, "%lldLL", (long long)v);
  else if (t == NNC_I32) fprintf(g->out, "((int32_t)%lld)", (long long)v);
  else if (isnan(v)) fputs("NAN", g->out);
  else if (isinf(v)) fputs(v > 0 ? "INFINITY" : "(-INFINITY)", g->out);
  else fprintf(g->out, "%.9ef", v);
}

static void operand(Gen *g, const NncExpr *e, int i) {
  fputc('(', g->out);
  expr(g, g->h->expr_operand(e, i));
  fputc(')', g->out);
}

static void op(Gen *g, const NncExpr *e) {
  const NncHost *h = g->h;
  FILE *o = g->out;
  int index = h->expr_is_index(e);
  int i32 = !index && h->expr_dtype(e) == NNC_I32;
  NncOp k = h->expr_op(e);
  /* The operands' type decides for comparisons and casts. */
  const NncExpr *a = h->expr_operand(e, 0);
  int a_f32 = !h->expr_is_index(a) && h->expr_dtype(a) == NNC_F32;
  static const char *const infix[] = {[NNC_OP_ADD] = "+", [NNC_OP_SUB] = "-", [NNC_OP_MUL] = "*",
                                      [NNC_OP_EQ] = "==", [NNC_OP_NE] = "!=", [NNC_OP_LT] = "<",
                                      [NNC_OP_LE] = "<=", [NNC_OP_GT] = ">",  [NNC_OP_GE] = ">="};
  static const char *const fcall[] = {[NNC_OP_EXP] = "expf", [NNC_OP_LOG] = "logf", [NNC_OP_SQRT] = "sqrtf",
                                      [NNC_OP_TANH] = "tanhf", [NNC_OP_POW] = "powf", [NNC_OP_MAX] = "nnc_fmax",
                                      [NNC_OP_MIN] = "nnc_fmin", [NNC_OP_DIV] = NULL, [NNC_OP_SIGN] = "nnc_fsign",
                                      [NNC_OP_ABS] = "fabsf"};
  static const char *const icall[] = {[NNC_OP_ADD] = "nnc_iadd", [NNC_OP_SUB] = "nnc_isub",
                                      [NNC_OP_MUL] = "nnc_imul", [NNC_OP_DIV] = "nnc_idiv",
                                      [NNC_OP_NEG] = "nnc_ineg", [NNC_OP_ABS] = "nnc_iabs"};
  switch (k) {
  case NNC_OP_STOP_GRADIENT:
    operand(g, e, 0);
    return;
  case NNC_OP_CAST:
    if (a_f32 && !h->expr_is_index(e) && h->expr_dtype(e) == NNC_I32) fputs("nnc_f2i", o);
    else if (a_f32 && index) fputs("(long long)nnc_f2i", o);
    else fprintf(o, "(%s)", ctype(h->expr_dtype(e), index));
    operand(g, e, 0);
    return;
  case NNC_OP_EQ: case NNC_OP_NE: case NNC_OP_LT: case NNC_OP_LE: case NNC_OP_GT: case NNC_OP_GE:
    fputs("(", o);
    operand(g, e, 0);
    fprintf(o, " %s ", infix[k]);
    operand(g, e, 1);
    fputs(" ? 1.0f : 0.0f)", o);
    return;
  case NNC_OP_RANDOM: /* an index counter stays 64-bit; an i32 one widens (sign-extended) */
    fputs("nnc_random(", o), operand(g, e, 0), fputs(", ", o), operand(g, e, 1), fputs(", (long long)", o);
    operand(g, e, 2), fputc(')', o);
    return;
  case NNC_OP_WHERE:
    fputs("(", o);
    operand(g, e, 0);
    fputs(" != 0.0f ? ", o);
    operand(g, e, 1);
    fputs(" : ", o);
    operand(g, e, 2);
    fputs(")", o);
    return;
  default:
    break;
  }
  if (index) { /* 64-bit index arithmetic: no overflow at these sizes */
    switch (k) {
    case NNC_OP_ADD: case NNC_OP_SUB: case NNC_OP_MUL:
      fputc('(', o), operand(g, e, 0), fprintf(o, " %s ", infix[k]), operand(g, e, 1), fputc(')', o);
      return;
    case NNC_OP_DIV: fputs("nnc_ldiv(", o), operand(g, e, 0), fputs(", ", o), operand(g, e, 1), fputc(')', o); return;
    case NNC_OP_NEG: fputs("(-", o), operand(g, e, 0), fputc(')', o); return;
    case NNC_OP_MAX: case NNC_OP_MIN:
      fputs("(", o), operand(g, e, 0), fputs(k == NNC_OP_MAX ? " >= " : " <= ", o), operand(g, e, 1), fputs(" ? ", o);
      operand(g, e, 0), fputs(" : ", o), operand(g, e, 1), fputc(')', o);
      return;
    default: break;
    }
  } else if (i32) {
    if (k < (int)(sizeof icall / sizeof *icall) && icall[k]) {
      fprintf(o, "%s(", icall[k]);
      operand(g, e, 0);
      if (h->expr_num_operands(e) > 1) fputs(", ", o), operand(g, e, 1);
      fputc(')', o);
      return;
    }
    if (k == NNC_OP_MAX || k == NNC_OP_MIN) {
      fputs("(", o), operand(g, e, 0), fputs(k == NNC_OP_MAX ? " >= " : " <= ", o), operand(g, e, 1), fputs(" ? ", o);
      operand(g, e, 0), fputs(" : ", o), operand(g, e, 1), fputc(')', o);
      return;
    }
    if (k == NNC_OP_SIGN) {
      fputs("(int32_t)((", o), operand(g, e, 0), fputs(" > 0) - (", o), operand(g, e, 0), fputs(" < 0))", o);
      return;
    }
  } else { /* f32 */
    if (k == NNC_OP_ADD || k == NNC_OP_SUB || k == NNC_OP_MUL || k == NNC_OP_DIV) {
      fputc('(', o), operand(g, e, 0), fprintf(o, " %s ", k == NNC_OP_DIV ? "/" : infix[k]), operand(g, e, 1);
      fputc(')', o);
      return;
    }
    if (k == NNC_OP_NEG) {
      fputs("(-", o), operand(g, e, 0), fputc(')', o);
      return;
    }
    if (k < (int)(sizeof fcall / sizeof *fcall) && fcall[k]) {
      fprintf(o, "%s(", fcall[k]);
      operand(g, e, 0);
      if (h->expr_num_operands(e) > 1) fputs(", ", o), operand(g, e, 1);
      fputc(')', o);
      return;
    }
  }
  fail(g, "the c99 backend cannot compile the op '%s' here", h->expr_op_name(e));
  fputs("0", o);
}

static void expr(Gen *g, const NncExpr *e) {
  const NncHost *h = g->h;
  FILE *o = g->out;
  int index = h->expr_is_index(e);
  switch (h->expr_kind(e)) {
  case NNC_EXPR_CONST: number(g, h->expr_const(e), h->expr_dtype(e), index); return;
  case NNC_EXPR_VAR: fprintf(o, "v%d", h->expr_var(e)); return;
  case NNC_EXPR_TEMP: fprintf(o, "t%d", h->expr_temp(e)); return;
  case NNC_EXPR_BATCH: fputs("B", o); return;
  case NNC_EXPR_SCALAR:
    if (g->scalars < 0) fail(g, "%s", "a run-time scalar without a scalars buffer");
    fprintf(o, "b%d[%d]", g->scalars, h->expr_scalar(e));
    return;
  case NNC_EXPR_LOAD: {
    int buf = h->expr_buffer(e), n = h->expr_num_indices(e);
    const char *cast = index ? "(long long)" : "";
    if (h->expr_guarded(e)) { /* reads 0 out of range: test every index first */
      int batched = h->buffer_batched(g->p, buf);
      fputs("((", o);
      for (int i = 0; i < n; i++) {
        long long dim = batched && i == 0 ? -1 : (long long)h->buffer_dim(g->p, buf, batched ? i - 1 : i);
        fputs(i ? " && " : "", o);
        fputs("(unsigned long long)(", o);
        expr(g, h->expr_index(e, i));
        if (dim < 0) fputs(") < (unsigned long long)B", o);
        else fprintf(o, ") < %lluULL", (unsigned long long)dim);
      }
      if (!n) fputs("1", o);
      fprintf(o, ") ? %sb%d[", cast, buf);
      flat_index(g, buf, n, load_index, e);
      fprintf(o, "] : %s)", index ? "0LL" : h->expr_dtype(e) == NNC_F32 ? "0.0f" : "0");
      return;
    }
    fprintf(o, "%sb%d[", cast, buf);
    flat_index(g, buf, n, load_index, e);
    fputs("]", o);
    return;
  }
  case NNC_EXPR_OP: op(g, e); return;
  }
  fail(g, "%s", "an expression of a kind the c99 backend does not know");
}

static void indent(Gen *g, int depth) {
  for (int i = 0; i < depth; i++) fputs("  ", g->out);
}

/* Loops with a nested loop are not innermost; pipelining hints go on innermost ones. */
static int has_loop(const NncHost *h, const NncStmt *s) {
  for (int i = 0; i < h->stmt_num_body(s); i++)
    if (h->stmt_kind(h->stmt_body(s, i)) == NNC_STMT_LOOP) return 1;
  return 0;
}

static void stmt(Gen *g, const NncStmt *s, int depth, int outer) {
  const NncHost *h = g->h;
  FILE *o = g->out;
  indent(g, depth);
  switch (h->stmt_kind(s)) {
  case NNC_STMT_LOOP: {
    int batched = 0, v = h->loop_var(s);
    long long extent = (long long)h->loop_extent(s, &batched);
    unsigned flags = h->loop_flags(s);
    if (outer) fprintf(o, "for (long long v%d = begin; v%d < end; v%d++) {", v, v, v);
    else if (batched) fprintf(o, "for (long long v%d = 0; v%d < %lldLL * B; v%d++) {", v, v, extent, v);
    else fprintf(o, "for (long long v%d = 0; v%d < %lldLL; v%d++) {", v, v, extent, v);
    long long vec = (long long)h->loop_sched(s, NNC_SCHED_VECTOR), unroll = (long long)h->loop_sched(s, NNC_SCHED_UNROLL);
    if (flags || vec || unroll) {
      fputs(" /*", o);
      if (flags & NNC_LOOP_PARALLEL) fputs(" parallel", o);
      if (flags & NNC_LOOP_REDUCE) fputs(" reduce", o);
      if (vec) fprintf(o, " vector=%lld", vec);
      if (unroll) fprintf(o, " unroll=%lld", unroll);
      fputs(" */", o);
    }
    fputc('\n', o);
    if (g->hls && !has_loop(h, s)) indent(g, depth + 1), fputs("#pragma HLS pipeline II=1\n", o);
    if (g->hls && unroll > 1) indent(g, depth + 1), fprintf(o, "#pragma HLS unroll factor=%lld\n", unroll);
    for (int i = 0; i < h->stmt_num_body(s); i++) stmt(g, h->stmt_body(s, i), depth + 1, 0);
    indent(g, depth);
    fputs("}\n", o);
    return;
  }
  case NNC_STMT_LET:
  case NNC_STMT_ASSIGN: /* temps are declared at the top of the function */
    fprintf(o, "t%d = ", h->stmt_temp(s));
    expr(g, h->stmt_value(s));
    fputs(";\n", o);
    return;
  case NNC_STMT_STORE: {
    int buf = h->stmt_buffer(s);
    fprintf(o, "b%d[", buf);
    flat_index(g, buf, h->stmt_num_indices(s), store_index, s);
    fputs("] = ", o);
    expr(g, h->stmt_value(s));
    fputs(";\n", o);
    return;
  }
  }
  fail(g, "%s", "a statement of a kind the c99 backend does not know");
}

/* Marks the buffers stores write (to declare the others const). */
static void mark_stores(const NncHost *h, const NncStmt *s, char *written, int nbufs) {
  if (h->stmt_kind(s) == NNC_STMT_STORE) {
    int b = h->stmt_buffer(s);
    if (b >= 0 && b < nbufs) written[b] = 1;
  }
  for (int i = 0; i < h->stmt_num_body(s); i++) mark_stores(h, h->stmt_body(s, i), written, nbufs);
}

static void kernel(Gen *g, const NncKernel *k) {
  const NncHost *h = g->h;
  FILE *o = g->out;
  g->k = k;
  const char *name = h->kernel_name(k);
  int nargs = h->kernel_num_args(k), nbufs = h->num_buffers(g->p);
  char *written = calloc((size_t)nbufs + 1, 1);
  for (int i = 0; i < h->kernel_num_stmts(k); i++) mark_stores(h, h->kernel_stmt(k, i), written, nbufs);
  NncLoc loc = h->kernel_loc(g->p, k);
  fprintf(o, "/* %s: %s", name, h->kernel_what(k));
  if (loc.file) fprintf(o, " (%s:%d:%d)", loc.file, loc.line, loc.col);
  fprintf(o, " */\nstatic void %s_core(", name);
  for (int i = 0; i < nargs; i++) {
    int b = h->kernel_arg(k, i);
    fprintf(o, "%s%s%s *restrict b%d", i ? ", " : "", written[b] ? "" : "const ",
            ctype(h->buffer_dtype(g->p, b), 0), b);
  }
  fprintf(o, "%slong long B, long long begin, long long end) {\n", nargs ? ", " : "");
  fputs("  (void)B;\n", o);
  for (int t = 0; t < h->kernel_num_temps(k); t++) fprintf(o, "  %s t%d;\n", ctype(h->kernel_temp_dtype(k, t), 0), t);
  int n = h->kernel_num_stmts(k);
  int one_loop = n == 1 && h->stmt_kind(h->kernel_stmt(k, 0)) == NNC_STMT_LOOP;
  if (one_loop) {
    stmt(g, h->kernel_stmt(k, 0), 1, 1);
  } else { /* not one loop: runs once, in the call whose range holds 0 */
    fputs("  if (begin <= 0 && 0 < end) {\n", o);
    for (int i = 0; i < n; i++) stmt(g, h->kernel_stmt(k, i), 2, 0);
    fputs("  }\n", o);
  }
  fputs("}\n\n", o);
  /* The runtime's native ABI: args[i] is the address of argument i's value
   * (a buffer's base pointer), args[nargs] the address of the int64 B. */
  fprintf(o, "void %s(void **args, int64_t begin, int64_t end) {\n  %s_core(", name, name);
  for (int i = 0; i < nargs; i++) {
    int b = h->kernel_arg(k, i);
    fprintf(o, "%s*(%s **)args[%d]", i ? ", " : "", ctype(h->buffer_dtype(g->p, b), 0), i);
  }
  fprintf(o, "%s(long long)*(const int64_t *)args[%d], (long long)begin, (long long)end);\n}\n\n", nargs ? ", " : "",
          nargs);
  free(written);
  g->k = NULL;
}

/* Writes the whole translation unit. */
static int write_c(Gen *g) {
  const NncHost *h = g->h;
  cur_host = h;
  g->scalars = -1;
  for (int b = 0; b < h->num_buffers(g->p); b++)
    if (h->buffer_kind(g->p, b) == NNC_BUF_SCALARS) g->scalars = b;
  fprintf(g->out, "/* Kernels of model '%s' as portable C99, written by the nnc c99 backend plugin (nnc %s).\n",
          h->program_name(g->p), h->nnc_version);
  fputs(" * Buffers are row-major; batched ones hold B samples, the sample index first. */\n", g->out);
  fputs(prelude, g->out);
  for (int i = 0; i < h->num_kernels(g->p) && !g->failed; i++) kernel(g, h->kernel(g->p, i));
  return g->failed ? 1 : 0;
}

static int c99_compile(const NncHost *h, NncCompile *c) {
  Gen g = {h, c, h->program(c), NULL, -1, 0, 0, NULL};
  const char *hls = h->option(c, "hls");
  g.hls = hls && strcmp(hls, "0");
  const char *emit = h->emit(c);
  const char *out = h->output(c);
  if (emit) { /* --emit=c: the source, to -o FILE or stdout */
    int std = !out || !strcmp(out, "-");
    g.out = std ? stdout : fopen(out, "w");
    if (!g.out) {
      h->diag(c, NNC_DIAG_ERROR, NULL, "cannot write '%s'", out);
      return 1;
    }
    int rc = write_c(&g);
    if (!std && fclose(g.out) != 0) rc = 1;
    return rc;
  }
  if (!out) out = "train";
  if (!strcmp(out, "-")) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "a trainer executable cannot be written to stdout; give -o FILE");
    return 1;
  }
  /* 1. the kernels as C99, in the call's temporary directory */
  const char *src = h->temp_file(c, "kernels.c"), *obj = h->temp_file(c, "kernels.o");
  if (!src || !obj) return 1;
  g.out = fopen(src, "w");
  if (!g.out) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "cannot write '%s'", src);
    return 1;
  }
  int rc = write_c(&g);
  if (fclose(g.out) != 0) rc = 1;
  if (rc) return rc;
  /* 2. compiled by the system C compiler, strictly C99 */
  const char *cc = h->option(c, "cc");
  if (!cc) cc = getenv("CC");
  if (!cc || !*cc) cc = "cc";
  const char *argv[40];
  int n = 0;
  argv[n++] = cc;
  argv[n++] = "-std=c99";
  argv[n++] = "-ffp-contract=off"; /* no fused multiply-add: the interpreter's rounding */
  const char *cflags = h->option(c, "cflags");
  char flags[512];
  snprintf(flags, sizeof flags, "%s", cflags ? cflags : "-O2");
  for (char *save = NULL, *tok = strtok_r(flags, " ", &save); tok && n < 32; tok = strtok_r(NULL, " ", &save))
    argv[n++] = tok;
  argv[n++] = "-c";
  argv[n++] = src;
  argv[n++] = "-o";
  argv[n++] = obj;
  argv[n] = NULL;
  int status = h->run_command(c, argv);
  if (status != 0) {
    h->diag(c, NNC_DIAG_ERROR, NULL, "compiling the C99 kernels with '%s' failed (status %d)", cc, status);
    return 1;
  }
  /* 3. the descriptor (native kernels: libnnrt's cpu device) + kernels + libnnrt */
  return h->link_trainer(c, "c99", NULL, 0, NULL, &obj, 1, out);
}

static const NncBackend c99_backend = {
    .api_version = NNC_BACKEND_API_VERSION,
    .struct_size = sizeof(NncBackend),
    .name = "c99",
    .description = "portable C99 kernels (the input HLS tools for FPGAs take), run on the host CPU",
    .emits = "c",
    .compile = c99_compile,
    .options = "cc,cflags,hls",
    .code = NNC_CODE_NATIVE, /* native functions: the trainer runs on libnnrt's cpu device */
};

static const NncBackend *const backends[] = {&c99_backend};

static const NncPlugin plugin = {
    .api_version = NNC_BACKEND_API_VERSION,
    .struct_size = sizeof(NncPlugin),
    .name = "nnc-c99",
    .nbackends = 1,
    .backends = backends,
};

NNC_PLUGIN_EXPORT const NncPlugin *nnc_backend_plugin(void) { return &plugin; }
