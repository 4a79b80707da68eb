/* ir/kernel_print.c - the kernel IR as text: `nnc m.nn --emit=kernels`.
 *
 * A readable, stable listing that reads back (ir/kernel_read.c: print ->
 * read -> print gives the same bytes), specified in docs/ir.md ("Kernel
 * IR", "Text form").  Five parts:
 *
 *     ; kernel IR for @mnist                              header
 *     module @mnist                                       the module's
 *     param @h.w : f32[784,64] = glorot_uniform()         declarations, as
 *     train data = idx("..."), batch = 32, ...            the graph IR's
 *     buffer %7 temp   t7        : f32[B,64]  slot 0 ...  buffers, then
 *     ; slots: 3 (2 batched, 1 fixed)                     the memory plan
 *     kernel k0_matmul(%0, %2, %7) ; matmul  loc(...)     each kernel: its
 *       for v0 in 0..B parallel {                         statement tree,
 *         %7[v0, v1] = t0                                 two spaces a level
 *     train: k0_matmul k1_add                             the two plans
 *
 * Expressions print infix for + - * / and the comparisons, with parentheses
 * exactly where the tree differs from the usual precedence and left-to-right
 * grouping (so `a + (b + c)` keeps its parentheses: float addition is not
 * associative); every other op prints as a call.  What the text does not
 * spell out is implied by rules the reader applies: dtypes (from buffers,
 * temporaries and the way constants are written) and index flags (the
 * ktext_index_* rule below; `i64(e)` and `i32(e)` mark the rare node that
 * differs from it).  Like ir/print.c, nothing here assumes the program is
 * valid: a broken program still prints, with `<bad ...>` where an index is
 * out of range (that text does not read back).
 */
#include "ir/kernel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Printer {
  const KProgram *p;
  FILE *out;
  uint32_t *hypers;   /* symbol of hyper k, for $hyper.NAME */
  uint32_t nhypers;
} Printer;

/* ---- names and locations ----------------------------------------------------- */

/* [A-Za-z_][A-Za-z0-9_./]* is written bare, anything else quoted as the
 * graph IR quotes names (ir_print_string). */
static bool bare_name(const char *s) {
  bool bare = *s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
  for (const char *c = s; *c && bare; c++)
    bare = *c == '_' || *c == '.' || *c == '/' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
           (*c >= '0' && *c <= '9');
  return bare;
}

static void print_name(const char *s, FILE *out) {
  if (!s) s = "<null>";
  if (bare_name(s)) fputs(s, out);
  else ir_print_string(s, out);
}

/* print_name(s) (after '@' when at) padded with spaces to width. */
static void print_name_padded(const char *s, bool at, int width, FILE *out) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) nnc_internal_error(__FILE__, __LINE__, "out of memory");
  if (at) fputc('@', f);
  print_name(s, f);
  fclose(f);
  fprintf(out, "%-*s", width, text);
  free(text);
}

static void print_buf_ref(const Printer *pr, int32_t buf) {
  if (buf < 0 || (uint32_t)buf >= pr->p->nbufs) fprintf(pr->out, "<bad buffer %d>", buf);
  else fprintf(pr->out, "%%%d", buf);
}

/* $step, $batch, $hyper.NAME, $training, $seed: hyper k is the k-th SYM_HYPER symbol. */
static void print_scalar(const Printer *pr, int32_t which) {
  if (which == KSCALAR_STEP) {
    fputs("$step", pr->out);
    return;
  }
  if (which == KSCALAR_BATCH) {
    fputs("$batch", pr->out);
    return;
  }
  int32_t k = which - KSCALAR_HYPER0;
  if (pr->p->module && which == kscalar_training((int32_t)pr->nhypers)) {
    fputs("$training", pr->out);
    return;
  }
  if (pr->p->module && which == kscalar_seed((int32_t)pr->nhypers)) {
    fputs("$seed", pr->out);
    return;
  }
  if (k >= 0 && (uint32_t)k < pr->nhypers) {
    fputs("$hyper.", pr->out);
    print_name(pr->p->module->syms[pr->hypers[k]].name, pr->out);
    return;
  }
  fprintf(pr->out, "$<bad scalar %d>", which);
}

/* ---- expressions --------------------------------------------------------------- */

/* Binding strength: comparisons < + - < * / < unary minus < everything else
 * (calls, loads, names, non-negative numbers). */
enum { PREC_CMP = 1, PREC_ADD = 2, PREC_MUL = 3, PREC_NEG = 4, PREC_ATOM = 5 };

static int expr_prec(const KExpr *e) {
  if (!e) return PREC_ATOM;
  if (e->kind == KE_CONST) return signbit(e->value) ? PREC_NEG : PREC_ATOM; /* -1, -0.0, -inf */
  if (e->kind != KE_OP || (unsigned)e->op >= OP_COUNT) return PREC_ATOM;
  switch (e->op) {
  case OP_NEG: return PREC_NEG;
  case OP_ADD:
  case OP_SUB: return PREC_ADD;
  case OP_MUL:
  case OP_DIV: return PREC_MUL;
  default: return ir_ops[e->op].flags & OPF_CMP ? PREC_CMP : PREC_ATOM;
  }
}

/* ---- index flags ------------------------------------------------------------------
 *
 * The text does not mark index expressions (KExpr.index); the reader
 * infers them from where an expression stands.  An expression is in index
 * context when it is an index of a load or store, an operand of index
 * arithmetic, or compared with an intrinsically index expression (a loop
 * variable, B, or arithmetic over one: `v1 == %1[v0]`, onehot's test).
 * Then loop variables and B are index expressions; arithmetic (+ - * /,
 * and min and max: a scatter's clamped row) is one in index context or
 * when an operand is intrinsically one; everything else is one exactly in
 * index context.  A node whose flag differs from this prints inside
 * i64(...) (an index expression) or i32(...) (not one). */

static bool is_arith(Op op) {
  return op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV || op == OP_MIN || op == OP_MAX;
}

bool ktext_index_intrinsic(const KExpr *e) {
  if (!e) return false;
  if (e->kind == KE_VAR || e->kind == KE_BATCH) return true;
  return e->kind == KE_OP && is_arith(e->op) && (ktext_index_intrinsic(e->a) || ktext_index_intrinsic(e->b));
}

bool ktext_index_default(const KExpr *e, bool ctx) {
  if (e->kind == KE_VAR || e->kind == KE_BATCH) return true;
  if (e->kind == KE_OP && is_arith(e->op)) return ctx || ktext_index_intrinsic(e);
  return ctx;
}

bool ktext_index_operands(const KExpr *e) {
  if (e->kind != KE_OP || (unsigned)e->op >= OP_COUNT) return false;
  if (is_arith(e->op)) return e->index;
  if (ir_ops[e->op].flags & OPF_CMP) return ktext_index_intrinsic(e->a) || ktext_index_intrinsic(e->b);
  return false;
}

/* f32 constants that are whole numbers get ".0" (0.0, 784.0) so they read
 * apart from i32 and index constants; the rest is ir_print_number's shortest
 * round-trip form. */
static void print_const(const KExpr *e, FILE *out) {
  ir_print_number(e->value, out);
  if (e->dtype == DT_F32 && isfinite(e->value) && e->value == trunc(e->value) && fabs(e->value) < 1e15)
    fputs(".0", out);
}

static void print_expr(const Printer *pr, const KExpr *e, bool ctx);

static void print_operand(const Printer *pr, const KExpr *e, bool ctx, bool parens) {
  if (parens) fputc('(', pr->out);
  print_expr(pr, e, ctx);
  if (parens) fputc(')', pr->out);
}

/* Indices are in index context. */
static void print_indices(const Printer *pr, KExpr *const *idx, int n) {
  fputc('[', pr->out);
  for (int i = 0; i < n && i <= NNC_MAX_RANK; i++) {
    if (i) fputs(", ", pr->out);
    print_expr(pr, idx[i], true);
  }
  fputc(']', pr->out);
}

static void print_op(const Printer *pr, const KExpr *e) {
  FILE *out = pr->out;
  if ((unsigned)e->op >= OP_COUNT) {
    fprintf(out, "<bad op %d>(", (int)e->op);
    print_expr(pr, e->a, false);
    fputc(')', out);
    return;
  }
  bool ctx = ktext_index_operands(e);
  const char *sym = ir_ops[e->op].infix; /* + - * / and comparisons */
  if (sym) {
    /* Left to right: the left operand may bind as strongly as the operator
     * (a - b - c), the right one must bind more strongly (a - (b - c)).
     * Comparisons do not chain: both sides must bind more strongly. */
    int prec = expr_prec(e);
    print_operand(pr, e->a, ctx, expr_prec(e->a) < prec || (prec == PREC_CMP && expr_prec(e->a) == prec));
    fprintf(out, " %s ", sym);
    print_operand(pr, e->b, ctx, expr_prec(e->b) <= prec);
    return;
  }
  if (e->op == OP_NEG) {
    /* -(2.0) negates a constant; -2.0 is the constant itself */
    fputc('-', out);
    print_operand(pr, e->a, ctx, expr_prec(e->a) <= PREC_NEG || (e->a && e->a->kind == KE_CONST));
    return;
  }
  if (e->op == OP_CAST) fprintf(out, "cast<%s>(", (unsigned)e->dtype <= DT_I32 ? dtype_name(e->dtype) : "<bad>");
  else fprintf(out, "%s(", ir_ops[e->op].name);
  const KExpr *ops[3] = {e->a, e->b, e->c};
  int n = ir_ops[e->op].arity;
  if (n < 1) n = 1;
  for (int i = 0; i < n && i < 3; i++) {
    if (i) fputs(", ", out);
    print_expr(pr, ops[i], ctx);
  }
  fputc(')', out);
}

/* e in index context ctx (see above): i64(...) or i32(...) around it when
 * its flag is not the one the context implies. */
static void print_expr(const Printer *pr, const KExpr *e, bool ctx) {
  FILE *out = pr->out;
  if (!e) {
    fputs("<null>", out);
    return;
  }
  bool mark = e->index != ktext_index_default(e, ctx);
  if (mark) fputs(e->index ? "i64(" : "i32(", out);
  switch (e->kind) {
  case KE_CONST: print_const(e, out); break;
  case KE_VAR: fprintf(out, "v%d", e->var); break;
  case KE_TEMP: fprintf(out, "t%d", e->temp); break;
  case KE_LOAD:
    print_buf_ref(pr, e->buf);
    if (e->guarded) fputc('?', out);
    print_indices(pr, e->idx, e->nidx);
    break;
  case KE_SCALAR: print_scalar(pr, e->scalar); break;
  case KE_BATCH: fputc('B', out); break;
  case KE_OP: print_op(pr, e); break;
  default: fprintf(out, "<bad expr %d>", (int)e->kind); break;
  }
  if (mark) fputc(')', out);
}

/* ---- statements -------------------------------------------------------------------- */

static void indent(FILE *out, int depth) {
  for (int i = 0; i < depth; i++) fputs("  ", out);
}

static void print_stmt(const Printer *pr, const KStmt *s, int depth);

/* for vN in 0..EXTENT [parallel] [reduce] [vector=W] [unroll=U] [tile=T] {
 * A batched extent counts B samples: `B`, or `B*64` for 64 per sample. */
static void print_loop(const Printer *pr, const KStmt *s, int depth) {
  FILE *out = pr->out;
  fprintf(out, "for v%d in 0..", s->var);
  if (!s->batched) fprintf(out, "%lld", (long long)s->extent);
  else if (s->extent == 1) fputc('B', out);
  else fprintf(out, "B*%lld", (long long)s->extent);
  if (s->flags & KL_PARALLEL) fputs(" parallel", out);
  if (s->flags & KL_REDUCE) fputs(" reduce", out);
  unsigned unknown = s->flags & ~(unsigned)(KL_PARALLEL | KL_REDUCE);
  if (unknown) fprintf(out, " <bad flags 0x%x>", unknown);
  if (s->sched.vector) fprintf(out, " vector=%d", s->sched.vector);
  if (s->sched.unroll) fprintf(out, " unroll=%d", s->sched.unroll);
  if (s->sched.tile) fprintf(out, " tile=%lld", (long long)s->sched.tile);
  fputs(" {\n", out);
  for (uint32_t i = 0; i < s->nbody; i++) print_stmt(pr, s->body[i], depth + 1);
  indent(out, depth);
  fputs("}\n", out);
}

static void print_axes(FILE *out, const KAxis *axes, int n) {
  for (int i = 0; i < n; i++) {
    fprintf(out, "%sv%d in 0..", i ? ", " : "", axes[i].var);
    if (!axes[i].batched) fprintf(out, "%lld", (long long)axes[i].extent);
    else if (axes[i].extent == 1) fputc('B', out);
    else fprintf(out, "B*%lld", (long long)axes[i].extent);
  }
}

/* contract [rows] %C[idx] = VALUE [for FREE-AXES] with tT = sum|max|min RED-AXES of A [* B]
 * or, without a store, contract tT = sum|max|min RED-AXES of A [* B]
 * Factors that are sums, products, quotients or comparisons are
 * parenthesized, a lone one too (`of (x * y)` is one factor).  The CPU's
 * direct plan, when there is one, follows as a comment. */
static void print_contract(const Printer *pr, const KStmt *s, int depth) {
  FILE *out = pr->out;
  fputs("contract ", out);
  if (s->sched.rows) fputs("rows ", out);
  if (s->buf >= 0) {
    print_buf_ref(pr, s->buf);
    print_indices(pr, s->idx, s->nidx);
    fputs(" = ", out);
    print_expr(pr, s->value, false);
    if (s->nfree) {
      fputs(" for ", out);
      print_axes(out, s->axes, s->nfree);
    }
    fputs(" with ", out);
  }
  const char *how = s->combine == OP_ADD ? "sum" : s->combine == OP_MAX ? "max" : s->combine == OP_MIN ? "min" : "<bad>";
  fprintf(out, "t%d = %s ", s->temp, how);
  print_axes(out, s->axes + s->nfree, s->nred);
  fputs(" of ", out);
  print_operand(pr, s->a, false, expr_prec(s->a) <= PREC_MUL);
  if (s->b) {
    fputs(" * ", out);
    print_operand(pr, s->b, false, expr_prec(s->b) <= PREC_MUL);
  }
  fputc('\n', out);
  if (s->direct.vector > 0) { /* the CPU's direct plan (codegen/cpu/direct.c), as a comment */
    indent(out, depth);
    fprintf(out, "; direct lanes=v%d (%d x %d)", s->axes[s->direct.lanes].var, s->direct.nv, s->direct.vector);
    if (s->direct.rows >= 0) fprintf(out, " rows=v%d (%d)", s->axes[s->direct.rows].var, s->direct.mr);
    if (s->direct.cols >= 0) fprintf(out, " cols=v%d (%d)", s->axes[s->direct.cols].var, s->direct.nc);
    fputc('\n', out);
  }
}

static void print_stmt(const Printer *pr, const KStmt *s, int depth) {
  FILE *out = pr->out;
  indent(out, depth);
  if (!s) {
    fputs("<null>\n", out);
    return;
  }
  switch (s->kind) {
  case KS_LOOP: print_loop(pr, s, depth); return;
  case KS_CONTRACT: print_contract(pr, s, depth); return;
  case KS_LET: fprintf(out, "let t%d = ", s->temp); break;
  case KS_ASSIGN: fprintf(out, "t%d = ", s->temp); break;
  case KS_STORE:
    print_buf_ref(pr, s->buf);
    print_indices(pr, s->idx, s->nidx);
    fputs(" = ", out);
    break;
  default: fprintf(out, "<bad statement %d>\n", (int)s->kind); return;
  }
  print_expr(pr, s->value, false);
  fputc('\n', out);
}

/* ---- program --------------------------------------------------------------------------- */

/* buffer %N KIND NAME : TYPE [slot S | no slot] [from OP] [loc(...)]:
 * symbols' buffers print @name (their location is the declaration's);
 * temps, the loss and metrics the graph op and location of their value. */
static void print_buffer(const Printer *pr, int32_t i) {
  FILE *out = pr->out;
  const KBuffer *b = &pr->p->bufs[i];
  bool named = b->kind == KB_INPUT || b->kind == KB_LABEL || b->kind == KB_PARAM || b->kind == KB_STATE;
  char type[192];
  const char *kind = (unsigned)b->kind <= KB_OUTPUT ? kbuf_kind_name(b->kind) : "<bad kind>";
  fprintf(out, "buffer %%%d %-6s ", i, kind);
  print_name_padded(b->name, named, 9, out);
  fputs(" : ", out);
  type_str(&b->type, type, sizeof type);
  if (b->kind == KB_TEMP) {
    fprintf(out, "%-11s ", type);
    if (b->slot >= 0) fprintf(out, "slot %d", b->slot);
    else fputs("no slot", out);
  } else {
    fputs(type, out);
  }
  bool computed = b->kind == KB_TEMP || b->kind == KB_LOSS || b->kind == KB_METRIC || b->kind == KB_OUTPUT;
  if (computed && b->op >= 0) fprintf(out, " from %s", b->op < OP_COUNT ? ir_ops[b->op].name : "<bad op>");
  if (computed && pr->p->module) ir_print_loc(pr->p->module, b->loc, out);
  fputc('\n', out);
}

/* ; slots: N (b batched, f fixed): a slot is batched when it holds a
 * batched temp (its size grows with B). */
static void print_slots(const Printer *pr) {
  const KProgram *p = pr->p;
  int32_t nslots = p->nslots > 0 ? p->nslots : 0, batched = 0;
  bool *is_batched = nnc_xcalloc(nslots ? (size_t)nslots : 1, 1);
  for (uint32_t i = 0; i < p->nbufs; i++) {
    const KBuffer *b = &p->bufs[i];
    if (b->kind == KB_TEMP && b->slot >= 0 && b->slot < nslots && b->type.batched && !is_batched[b->slot]) {
      is_batched[b->slot] = true;
      batched++;
    }
  }
  free(is_batched);
  fprintf(pr->out, "; slots: %d (%d batched, %d fixed)\n", nslots, batched, nslots - batched);
}

static void print_extent(FILE *out, int64_t extent, bool batched) {
  if (!batched) fprintf(out, "%lld", (long long)extent);
  else if (extent == 1) fputs("B", out);
  else fprintf(out, "%lld*B", (long long)extent);
}

static void print_gemm_operand(const Printer *pr, const char *name, const KGemmOperand *o, int nbatch) {
  fprintf(pr->out, " %s=", name);
  print_buf_ref(pr, o->buf);
  fprintf(pr->out, "[%lld", (long long)o->offset);
  for (int q = 0; q < nbatch; q++) fprintf(pr->out, " + %lld l%d", (long long)o->sl[q], q);
  fprintf(pr->out, " + %lld i + %lld j + %lld k]", (long long)o->si, (long long)o->sj, (long long)o->sk);
}

/* The CPU scheduler's plan and tiles, as comments under the header:
 *   ; gemm i=v0<B j=v1<64 k=v2<784 C=%17[...] A=%0[...] B=%2[...]
 *   ; tiles mr=12 nr=32 vector=16 kc=256 mc=96 nc=1024  loops jc pc (pack B) ic (pack A) ir jr
 * and for a batched product its batch axes first, `l0=v0<B l1=v3<4`, with
 * their strides in the operands (`+ 4096 l0 + 1024 l1`). */
static void print_gemm(const Printer *pr, const KGemm *g) {
  FILE *out = pr->out;
  fprintf(out, "  ; gemm ");
  for (int q = 0; q < g->nbatch; q++) {
    fprintf(out, "l%d=v%d<", q, g->var_l[q]);
    print_extent(out, g->l[q], q == 0 && g->l_batched);
    fputc(' ', out);
  }
  fprintf(out, "i=v%d<", g->var_i);
  print_extent(out, g->m, g->m_batched);
  fprintf(out, " j=v%d<%lld k=v%d<", g->var_j, (long long)g->n, g->var_k);
  print_extent(out, g->k, g->k_batched);
  print_gemm_operand(pr, "C", &g->c, g->nbatch);
  print_gemm_operand(pr, "A", &g->a, g->nbatch);
  print_gemm_operand(pr, "B", &g->b, g->nbatch);
  fputc('\n', out);
  fprintf(out, "  ; tiles mr=%d nr=%d vector=%d kc=%d mc=%d nc=%d  loops %s%sjc pc%s ic%s ir jr%s%s%s\n", g->mr, g->nr,
          g->vector, g->kc, g->mc, g->nc, g->pack_b_whole ? "(pack B whole) " : "",
          kgemm_rows_merge(g) ? "(l i: rows merged) " : g->nbatch ? "l " : "",
          g->pack_b && !g->pack_b_whole ? " (pack B)" : "", g->pack_a ? " (pack A)" : "", g->pack_a ? "" : "  A in place",
          g->pack_b ? "" : "  B in place", g->swap ? "  swapped: rows along j, lanes along i" : "");
}

/* The loop variables and temporaries a kernel's text mentions. */
typedef struct Used {
  KVisit v;
  int32_t nvars;       /* the highest variable mentioned + 1 */
  int32_t ntemps;      /* the same for temporaries */
  bool *temp;          /* [k->ntemps]: mentioned */
  int32_t cap;
} Used;

static void use_temp(Used *u, int32_t t) {
  if (t + 1 > u->ntemps) u->ntemps = t + 1;
  if (t >= 0 && t < u->cap) u->temp[t] = true;
}
static bool used_stmt(KVisit *v, KStmt *s) {
  Used *u = (Used *)v;
  int32_t *vars[NNC_MAX_CONTRACT_AXES];
  for (int i = kstmt_binds(s, vars) - 1; i >= 0; i--)
    if (*vars[i] + 1 > u->nvars) u->nvars = *vars[i] + 1;
  if (s->kind == KS_LET || s->kind == KS_ASSIGN || s->kind == KS_CONTRACT) use_temp(u, s->temp);
  return false;
}
static bool used_expr(KVisit *v, KExpr *e) {
  Used *u = (Used *)v;
  if (e->kind == KE_VAR && e->var + 1 > u->nvars) u->nvars = e->var + 1;
  if (e->kind == KE_TEMP) use_temp(u, e->temp);
  return false;
}

/* `  vars N temps T...` under the kernel's line, each part when the body
 * does not imply it (the reader counts the variables and temporaries
 * mentioned, with the dtype of each temporary's definition): fusion leaves
 * numbers unused. */
static void print_counts(const Printer *pr, const Kernel *k) {
  Used u = {{used_stmt, used_expr}, 0, 0, NULL, k->ntemps > 0 ? k->ntemps : 0};
  u.temp = nnc_xcalloc((size_t)u.cap + 1, 1);
  kvisit_kernel(&u.v, k);
  bool temps = u.ntemps != k->ntemps;
  for (int32_t t = 0; t < k->ntemps && k->temp_types && !temps; t++) temps = !u.temp[t] && k->temp_types[t] != DT_F32;
  if (u.nvars != k->nvars) fprintf(pr->out, "  vars %d", k->nvars);
  if (temps) {
    fputs(u.nvars != k->nvars ? " temps" : "  temps", pr->out);
    for (int32_t t = 0; t < k->ntemps && k->temp_types; t++)
      fprintf(pr->out, " %s", (unsigned)k->temp_types[t] <= DT_I32 ? dtype_name(k->temp_types[t]) : "<bad>");
  }
  if (u.nvars != k->nvars || temps) fputc('\n', pr->out);
  free(u.temp);
}

/* kernel NAME(%a, %b, ...) ; WHAT   loc(...), then [vars N] [temps T...] */
static void print_kernel(const Printer *pr, const Kernel *k) {
  FILE *out = pr->out;
  fputs("kernel ", out);
  fputs(k->name ? k->name : "<null>", out);
  fputc('(', out);
  for (uint32_t i = 0; i < k->nargs; i++) {
    if (i) fputs(", ", out);
    print_buf_ref(pr, k->args[i]);
  }
  fputc(')', out);
  if (k->what || k->loc) fputs(" ;", out);
  if (k->what) fprintf(out, " %s", k->what);
  if (k->loc && pr->p->module) {
    if (k->what) fputs("  ", out);
    ir_print_loc(pr->p->module, k->loc, out);
  }
  fputc('\n', out);
  if (k->gemm) print_gemm(pr, k->gemm);
  print_counts(pr, k);
  for (uint32_t i = 0; i < k->nbody; i++) print_stmt(pr, k->body[i], 1);
}

static void print_plan(const Printer *pr, const char *name, const uint32_t *plan, uint32_t n) {
  fprintf(pr->out, "%s:", name);
  for (uint32_t i = 0; i < n; i++) {
    const char *kn = plan[i] < pr->p->nkernels ? pr->p->kernels[plan[i]].name : NULL;
    if (kn) fprintf(pr->out, " %s", kn);
    else fprintf(pr->out, " <bad kernel %u>", plan[i]);
  }
  fputc('\n', pr->out);
}

void kprog_print(const KProgram *p, FILE *out) {
  const Module *m = p->module;
  Printer pr = {p, out, nnc_xmalloc(sizeof(uint32_t) * (m && m->nsyms ? m->nsyms : 1)), 0};
  for (uint32_t i = 0; m && i < m->nsyms; i++)
    if (m->syms[i].kind == SYM_HYPER) pr.hypers[pr.nhypers++] = i;
  fputs("; kernel IR", out);
  if (m && m->name && *m->name) {
    fputs(" for @", out);
    print_name(m->name, out);
  }
  fputc('\n', out);
  if (m && ir_print_decls(m, out)) fputc('\n', out);
  for (uint32_t i = 0; i < p->nbufs; i++) print_buffer(&pr, (int32_t)i);
  print_slots(&pr);
  for (uint32_t i = 0; i < p->nkernels; i++) {
    fputc('\n', out);
    print_kernel(&pr, &p->kernels[i]);
  }
  fputc('\n', out);
  print_plan(&pr, "train", p->train, p->ntrain);
  print_plan(&pr, "eval", p->eval, p->neval);
  free(pr.hypers);
}
