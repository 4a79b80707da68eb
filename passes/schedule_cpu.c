/* passes/schedule_cpu.c - plan the contractions' packed products, choose
 * their tiles (see schedule_cpu.h).
 *
 * A kernel whose launch loop `for i parallel` begins with a contraction of
 * two factors over one free axis j and one reduction axis k,
 *
 *   contract C[..] = f(t) for j with t = sum k of A(..) * B(..)
 *
 * runs as a packed matrix product when its accesses are affine: A's
 * element offset in i and k only, B's in k and j only, C's in i and j
 * (one-to-one).  A batched product has more free axes: its last two are
 * i and j, and the launch loop and the others are batch axes l, along
 * which every operand may move (KGemm.nbatch).  This reads the statement's fields; nothing matches loop
 * shapes.  Index arithmetic such as `v - v / 64 * 64` with v known to lie
 * in [0, 64) simplifies to v, and an unflattened index (a dense layer
 * reading a [16, 5, 5] image at k / 25, k / 5 - k / 5 / 5 * 5, k - k / 5 * 5)
 * is affine because its quotients cancel in the element offset (Aff.q).  Every other contraction is left to the
 * emitter's loops, in rows order (sched.rows) where its last free axis is
 * contiguous.
 *
 * Tiles (BLIS's analysis, transposed for row-major C): a micro-tile of mr
 * rows by nr = 2 vectors of columns keeps mr * nr / vector accumulators in
 * registers (12 x 32 with AVX-512: 24 of 32 zmm; 6 x 16 with AVX2: 12 of
 * 16 ymm) and per step of k loads two vectors of packed B and broadcasts
 * mr values of packed A: 2 loads per mr * 2 FMAs.  kc = 256 keeps an A
 * sliver (mr x kc, 12 KiB) in L1 while B slivers stream past it from a
 * packed kc x nc panel (nc = 1024: 1 MiB, half the L2).
 *
 * A narrow C (the logits' n = 10 against 16 lanes) would leave lanes idle
 * in every step of k; when the rows are many, the product is swapped
 * (KGemm.swap: C^T = B^T A^T, lanes along i) with mr chosen to divide n
 * (5 or 10 for n = 10), so every lane and every accumulator row works.
 */
#include "passes/schedule_cpu.h"

#include "support/diag.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char schedule_cpu_spec_help[] =
    "--schedule=SPEC: ITEM[;ITEM...], ITEM = [KERNEL:]KEY=N[,KEY=N...] with KEY one of mr, nr, kc, mc, nc,\n"
    "  packa, packb (0: read A or B in place, 1: pack it), swap (1: lanes along the rows i, 0: along the columns j),\n"
    "  or [KERNEL:]off (keep the loop nest); KERNEL is a kernel name from --emit=kernels (k3_matmul);\n"
    "  --schedule=@FILE reads the items from FILE, one per line, '#' starts a comment";

/* ---- affine index expressions ------------------------------------------------------------- */

enum { VI, VJ, VK, VL, NV = VL + KGEMM_MAX_BATCH };

typedef struct Ctx {
  int32_t var[NV];      /* loop variables of i, j, k and the batch axes l (-1 = none) */
  int64_t extent[NV];   /* their extents (0 = unknown: batched) */
} Ctx;

/* A quotient (c + x[VI] i + x[VJ] j + x[VK] k) / d, d > 0, truncated. */
typedef struct Quot {
  int64_t coef;         /* its multiple in the sum */
  int64_t c, x[NV], d;
} Quot;

enum { MAX_QUOTS = 8 };

typedef struct Aff {
  int64_t c, x[NV];     /* c + x[VI] i + x[VJ] j + x[VK] k */
  int nq;               /* + sum of q[].coef * quotient: a flattened index */
  Quot q[MAX_QUOTS];    /* unflattened ((v / 5 - v / 5 / 5 * 5) ...), */
} Aff;                  /* whose quotients cancel in an element offset */

static bool same_quot(const Quot *a, const Quot *b) {
  if (a->c != b->c || a->d != b->d) return false;
  for (int v = 0; v < NV; v++)
    if (a->x[v] != b->x[v]) return false;
  return true;
}

/* out += k * a (quotients merged by value); false when they are too many. */
static bool aff_add(Aff *out, const Aff *a, int64_t k) {
  out->c += k * a->c;
  for (int v = 0; v < NV; v++) out->x[v] += k * a->x[v];
  for (int i = 0; i < a->nq; i++) {
    int j = 0;
    while (j < out->nq && !same_quot(&out->q[j], &a->q[i])) j++;
    if (j == out->nq) {
      if (out->nq == MAX_QUOTS) return false;
      out->q[out->nq] = a->q[i];
      out->q[out->nq++].coef = 0;
    }
    out->q[j].coef += k * a->q[i].coef;
  }
  int n = 0; /* cancelled quotients go */
  for (int j = 0; j < out->nq; j++)
    if (out->q[j].coef) out->q[n++] = out->q[j];
  out->nq = n;
  return true;
}

/* The least and greatest value of a over the loop ranges; false when a
 * depends on a variable of unknown extent. */
static bool aff_range(const Ctx *cx, const Aff *a, int64_t *lo, int64_t *hi) {
  *lo = *hi = a->c;
  if (a->nq) return false;
  for (int v = 0; v < NV; v++) {
    if (!a->x[v]) continue;
    if (cx->extent[v] <= 0) return false;
    int64_t far = a->x[v] * (cx->extent[v] - 1);
    if (far < 0) *lo += far;
    else *hi += far;
  }
  return true;
}

/* No variable in the affine part. */
static bool aff_invariant(const Aff *a) {
  for (int v = 0; v < NV; v++)
    if (a->x[v]) return false;
  return true;
}

/* c alone. */
static bool aff_constant(const Aff *a) { return !a->nq && aff_invariant(a); }

static bool aff(const Ctx *cx, const KExpr *e, Aff *out) {
  memset(out, 0, sizeof *out);
  Aff a, b;
  switch (e->kind) {
  case KE_CONST:
    out->c = (int64_t)e->value;
    return (double)out->c == e->value;
  case KE_VAR:
    for (int v = 0; v < NV; v++) {
      if (cx->var[v] == e->var) {
        out->x[v] = 1;
        return true;
      }
    }
    return false;
  case KE_OP:
    if (!e->index) return false;
    switch (e->op) {
    case OP_ADD:
    case OP_SUB:
      if (!aff(cx, e->a, &a) || !aff(cx, e->b, &b)) return false;
      return aff_add(out, &a, 1) && aff_add(out, &b, e->op == OP_ADD ? 1 : -1);
    case OP_NEG:
      if (!aff(cx, e->a, &a)) return false;
      return aff_add(out, &a, -1);
      return true;
    case OP_MUL: { /* by a constant */
      if (!aff(cx, e->a, &a) || !aff(cx, e->b, &b)) return false;
      const Aff *k = aff_constant(&a) ? &a : aff_constant(&b) ? &b : NULL;
      return k && aff_add(out, k == &a ? &b : &a, k->c);
    }
    case OP_DIV: { /* by a positive constant */
      int64_t lo, hi;
      if (!aff(cx, e->a, &a) || !aff(cx, e->b, &b) || !aff_constant(&b) || b.c <= 0) return false;
      if (aff_range(cx, &a, &lo, &hi)) {
        if (lo == hi) { /* constant: the quotient */
          out->c = lo / b.c;
          return true;
        }
        if (lo >= 0 && hi < b.c) return true; /* 0 <= x < d: 0 */
      }
      if (a.nq == 1 && a.q[0].coef == 1 && aff_invariant(&a) && !a.c) { /* (x / d1) / d2 = x / (d1 d2) */
        if (a.q[0].d > INT32_MAX || b.c > INT32_MAX) return false;
        *out = a;
        out->q[0].d *= b.c;
        return true;
      }
      if (a.nq) return false;
      out->nq = 1; /* a quotient, which must cancel in the element offset (access) */
      out->q[0] = (Quot){.coef = 1, .c = a.c, .d = b.c};
      memcpy(out->q[0].x, a.x, sizeof a.x);
      return true;
    }
    default: return false;
    }
  default: return false;
  }
}

/* The element offset of buf[idx...] as an affine function of i, j, k, l. */
static bool access(const Ctx *cx, const KProgram *p, int32_t buf, KExpr *const *idx, int nidx, KGemmOperand *o) {
  const KBuffer *kb = &p->bufs[buf];
  if (kb->type.dtype != DT_F32) return false;
  int batched = kb->type.batched ? 1 : 0;
  if (nidx != kb->type.rank + batched) return false;
  Aff off = {0};
  int64_t row = 1;
  for (int d = nidx - 1; d >= 0; d--) {
    Aff a;
    if (!aff(cx, idx[d], &a) || !aff_add(&off, &a, row)) return false;
    if (d - batched >= 0) row *= kb->type.dims[d - batched];
  }
  if (off.nq) return false; /* a quotient left: not affine */
  o->buf = buf;
  o->offset = off.c;
  o->si = off.x[VI];
  o->sj = off.x[VJ];
  o->sk = off.x[VK];
  for (int q = 0; q < KGEMM_MAX_BATCH; q++) o->sl[q] = off.x[VL + q];
  return true;
}

/* ---- matching ---------------------------------------------------------------------------- */

/* A factor read from a buffer: a plain load (an f32 one). */
static bool factor(const Ctx *cx, const KProgram *p, const KExpr *e, int32_t cbuf, KGemmOperand *o) {
  return e && e->kind == KE_LOAD && !e->guarded && e->buf != cbuf && access(cx, p, e->buf, e->idx, e->nidx, o);
}

/* Different (l, i, j) must store different elements of C: with the
 * strides in ascending order, each is past the span of the ones below it
 * (a batched axis, of unknown extent, must be the last). */
static bool one_to_one(const KGemm *g) {
  int64_t st[2 + KGEMM_MAX_BATCH], ext[2 + KGEMM_MAX_BATCH];
  int n = 0;
  st[n] = g->c.si, ext[n++] = g->m_batched ? 0 : g->m;
  st[n] = g->c.sj, ext[n++] = g->n;
  for (int q = 0; q < g->nbatch; q++) st[n] = g->c.sl[q], ext[n++] = q == 0 && g->l_batched ? 0 : g->l[q];
  for (int a = 1; a < n; a++) /* insertion sort by stride */
    for (int b = a; b > 0 && st[b] < st[b - 1]; b--) {
      int64_t t = st[b]; st[b] = st[b - 1]; st[b - 1] = t;
      t = ext[b]; ext[b] = ext[b - 1]; ext[b - 1] = t;
    }
  int64_t span = 0; /* the largest offset reachable by the axes so far */
  for (int a = 0; a < n; a++) {
    if (st[a] <= span) return false;
    if (ext[a] == 0) return a == n - 1;
    span += st[a] * (ext[a] - 1);
  }
  return true;
}

/* The axes of a product: i the launch loop's variable and j the one free
 * axis (C[i, j]), or, for a batched product, the launch loop and the free
 * axes but the last two as batch axes and those two as i and j. */
static bool product_axes(const KStmt *l0, const KStmt *c, KGemm *g) {
  if (c->nfree == 1) {
    g->var_i = l0->var;
    g->m = l0->extent;
    g->m_batched = l0->batched;
  } else {
    if (c->nfree - 1 > KGEMM_MAX_BATCH) return false;
    g->nbatch = c->nfree - 1;
    g->var_l[0] = l0->var;
    g->l[0] = l0->extent;
    g->l_batched = l0->batched;
    for (int q = 1; q < g->nbatch; q++) {
      if (c->axes[q - 1].batched) return false;
      g->var_l[q] = c->axes[q - 1].var;
      g->l[q] = c->axes[q - 1].extent;
    }
    const KAxis *ai = &c->axes[c->nfree - 2];
    if (ai->batched) return false;
    g->var_i = ai->var;
    g->m = ai->extent;
  }
  const KAxis *aj = &c->axes[c->nfree - 1];
  if (aj->batched) return false;
  g->var_j = aj->var;
  g->n = aj->extent;
  g->var_k = c->axes[c->nfree].var;
  g->k = c->axes[c->nfree].extent;
  g->k_batched = c->axes[c->nfree].batched;
  return true;
}

static bool match(const KProgram *p, const Kernel *k, KGemm *g) {
  if (k->nbody != 1) return false;
  const KStmt *l0 = k->body[0];
  if (l0->kind != KS_LOOP || !(l0->flags & KL_PARALLEL) || !l0->nbody) return false;
  const KStmt *c = l0->body[0];
  if (c->kind != KS_CONTRACT || c->buf < 0 || c->combine != OP_ADD || !c->b || c->nfree < 1 || c->nred != 1 ||
      c->a->dtype != DT_F32)
    return false;
  memset(g, 0, sizeof *g);
  g->contract = c;
  if (!product_axes(l0, c, g)) return false;
  Ctx cx;
  for (int v = 0; v < NV; v++) cx.var[v] = -1, cx.extent[v] = 0;
  cx.var[VI] = g->var_i, cx.var[VJ] = g->var_j, cx.var[VK] = g->var_k;
  cx.extent[VI] = g->m_batched ? 0 : g->m, cx.extent[VJ] = g->n, cx.extent[VK] = g->k_batched ? 0 : g->k;
  for (int q = 0; q < g->nbatch; q++) cx.var[VL + q] = g->var_l[q], cx.extent[VL + q] = q == 0 && g->l_batched ? 0 : g->l[q];
  if (!access(&cx, p, c->buf, c->idx, c->nidx, &g->c) || g->c.sk) return false;
  KGemmOperand o[2];
  if (!factor(&cx, p, c->a, c->buf, &o[0]) || !factor(&cx, p, c->b, c->buf, &o[1])) return false;
  int a = !o[0].sj && !o[1].si ? 0 : !o[1].sj && !o[0].si ? 1 : -1;
  if (a < 0) return false;
  g->a = o[a];
  g->b = o[1 - a];
  /* f(t) runs after the whole product, on C in place: it may not read C */
  if (kexpr_reads(c->value, c->buf)) return false;
  return one_to_one(g);
}

/* Rows order for a contraction left to loops: its last free axis j is
 * contiguous in what it stores and in every load that moves with j, and
 * it is a product or a batch sum (the reductions of lowering's rows), or
 * a sum over rows of one factor that moves with j, at least a vector of
 * j (a column sum: a bias's or layer norm's gradient over a sample's
 * positions, whose loads would otherwise gather a column per output:
 * 30% of a GPT's MLP input-gradient kernel). */
typedef struct RowsOk {
  KVisit v;
  const KProgram *p;
  int32_t j;
} RowsOk;
static bool strided_in_j(KVisit *v, KExpr *e) {
  const RowsOk *r = (const RowsOk *)v;
  int64_t st;
  return e->kind == KE_LOAD && kexpr_mentions(e, r->j) &&
         !(kaccess_stride(r->p, e->buf, e->idx, e->nidx, r->j, &st) && st == 1);
}
static bool prefers_rows(const KProgram *p, const KStmt *c) {
  if (c->kind != KS_CONTRACT || c->nfree < 1 || c->axes[c->nfree - 1].batched) return false;
  const KAxis *j = &c->axes[c->nfree - 1];
  if (!kstmt_is_product(c) && !(j->extent >= 8 && kexpr_mentions(c->a, j->var))) return false;
  RowsOk r = {{NULL, strided_in_j}, p, j->var};
  int64_t st;
  if (!kaccess_stride(p, c->buf, c->idx, c->nidx, r.j, &st) || st != 1) return false;
  return !kvisit_expr(&r.v, c->a) && !kvisit_expr(&r.v, c->b) && !kexpr_reads(c->value, c->buf) &&
         !kexpr_reads(c->a, c->buf) && !kexpr_reads(c->b, c->buf); /* rows accumulate in C */
}

/* ---- direct plans ----------------------------------------------------------------------------
 *
 * A contraction of two loaded f32 factors that is no matrix product for
 * the packed GEMM (a convolution: several free and reduction axes) runs
 * register-blocked without packing (codegen/cpu/direct.c) when it has
 *  - a lane axis: a free axis along which C is contiguous and each factor
 *    contiguous or invariant (outputs in lanes), or a reduction axis along
 *    which both factors are contiguous (partial sums in lanes: a filter
 *    gradient's ox), the one whose extent fills the most lanes;
 *  - a row axis: another free axis along which one factor is invariant,
 *    so that factor's vectors serve a block of mr accumulator rows;
 * and enough work to pay for it.  It may also have a column axis: a third
 * free axis along which the factor that moves with the rows is invariant
 * (a filter gradient's channel), so that each step loads mr + nc values
 * for mr nc FMAs. */

enum { DIRECT_MIN_WORK = 4096, MAX_COLS = 4 };

/* Does e's element move with var (or not provably stay)? */
static bool moves(const KProgram *p, const KExpr *e, int32_t var) {
  int64_t st;
  return !(kaccess_stride(p, e->buf, e->idx, e->nidx, var, &st) && st == 0);
}

/* The share of ceil(extent / block) blocks that lies inside extent. */
static double share(int64_t extent, int64_t block) {
  return (double)extent / (double)((extent + block - 1) / block * block);
}

/* Rows per block, at most max: the fewest rows computed in all
 * (ceil(extent / mr) mr), the larger block on a tie, within [max / 2, max]. */
static int fewest_rows(int64_t extent, int max) {
  int mr = max;
  for (int m = max - 1; m >= (max + 1) / 2 && m >= 1; m--)
    if ((extent + m - 1) / m * m < (extent + mr - 1) / mr * mr) mr = m;
  if (mr > extent) mr = (int)extent;
  return mr;
}

static bool stride_is(const KProgram *p, const KExpr *e, int32_t var, int64_t want) {
  int64_t st;
  return kaccess_stride(p, e->buf, e->idx, e->nidx, var, &st) && st == want;
}

static bool plain_factor(const KStmt *c, const KExpr *e) {
  return e && e->kind == KE_LOAD && e->dtype == DT_F32 && e->buf != c->buf;
}

static void plan_direct(const KProgram *p, KStmt *c, const CpuScheduleOptions *o) {
  memset(&c->direct, 0, sizeof c->direct);
  if (c->kind != KS_CONTRACT || c->buf < 0 || c->combine != OP_ADD || !plain_factor(c, c->a) ||
      !plain_factor(c, c->b) || kexpr_reads(c->value, c->buf))
    return;
  const KExpr *f[2] = {c->a, c->b};
  int n = c->nfree + c->nred, lanes = -1, rows = -1;
  int w = o->vector > 0 ? o->vector : 8, regs = o->registers > 0 ? o->registers : 16;
  double best = 0;
  for (int i = 0; i < n; i++) { /* the axis whose lanes fill best; outputs in lanes on a tie */
    int32_t v = c->axes[i].var;
    int64_t cs;
    bool free_axis = i < c->nfree, fits = !c->axes[i].batched;
    if (fits && free_axis) { /* C contiguous, each factor contiguous or invariant, one contiguous */
      fits = kaccess_stride(p, c->buf, c->idx, c->nidx, v, &cs) && cs == 1;
      int moving = 0;
      for (int k = 0; k < 2; k++) {
        bool one = stride_is(p, f[k], v, 1);
        fits &= one || stride_is(p, f[k], v, 0);
        moving += one;
      }
      fits &= moving > 0;
    } else if (fits) { /* partial sums: both factors contiguous */
      fits = stride_is(p, f[0], v, 1) && stride_is(p, f[1], v, 1);
    }
    if (!fits) continue;
    int64_t e = c->axes[i].extent, block = e > w ? 2L * w : w;
    double fill = (double)e / (double)((e + block - 1) / block * block) - (free_axis ? 0 : 1e-9);
    if (fill > best) best = fill, lanes = i;
  }
  if (lanes < 0) return;
  for (int i = 0; i < c->nfree && rows < 0; i++) {
    int32_t v = c->axes[i].var;
    int64_t cs;
    if (i == lanes || c->axes[i].batched || c->axes[i].extent < 2) continue;
    if (!kaccess_stride(p, c->buf, c->idx, c->nidx, v, &cs) || cs == 0) continue;
    if (stride_is(p, f[0], v, 0) || stride_is(p, f[1], v, 0)) rows = i;
  }
  if (rows < 0) return;
  int64_t work = 1;
  for (int i = 0; i < n; i++) work *= c->axes[i].extent * (c->axes[i].batched ? 32 : 1);
  if (work < DIRECT_MIN_WORK) return;
  /* columns: a free axis along which no factor moves that moves with the rows */
  int cols = -1;
  int32_t rv = c->axes[rows].var;
  for (int i = 0; i < c->nfree && cols < 0; i++) {
    int32_t v = c->axes[i].var;
    int64_t cs;
    if (i == lanes || i == rows || c->axes[i].batched || c->axes[i].extent < 2) continue;
    if (!kaccess_stride(p, c->buf, c->idx, c->nidx, v, &cs) || cs == 0) continue;
    bool ok = true, any = false;
    for (int k = 0; k < 2; k++) {
      ok &= !(moves(p, f[k], rv) && moves(p, f[k], v));
      any |= moves(p, f[k], v);
    }
    if (ok && any) cols = i;
  }
  /* The block (nv, mr, nc) of least modelled time per useful FMA: a step
   * costs max(FMAs, loads) (two of each a cycle), over the share of lanes,
   * rows and columns that hold outputs.  The registers hold the
   * accumulators, a column's vectors, a broadcast, and for a guarded
   * factor that moves with the lanes its masks (else they spill). */
  bool reduces = lanes >= c->nfree;
  bool masked = (c->a->kind == KE_LOAD && c->a->guarded && kexpr_mentions(c->a, c->axes[lanes].var)) ||
                (c->b->kind == KE_LOAD && c->b->guarded && kexpr_mentions(c->b, c->axes[lanes].var));
  int64_t le = c->axes[lanes].extent;
  double best_cost = 0;
  /* on a tie: fewer columns; two vectors for outputs, one for partial sums (fewer to add up) */
  for (int nv = reduces ? 1 : 2; reduces ? nv <= 2 : nv >= 1; nv += reduces ? 1 : -1) {
    if (nv == 2 && !(reduces || le > w)) continue;
    int max_nc = cols < 0 ? 1 : c->axes[cols].extent < MAX_COLS ? (int)c->axes[cols].extent : MAX_COLS;
    for (int nc = 1; nc <= max_nc; nc++) {
      int max = (regs - nv * nc - 2 - (masked ? nv : 0)) / (nv * nc);
      if (max > 12) max = 12;
      if (max < 1) continue;
      int mr = fewest_rows(c->axes[rows].extent, max);
      double fmas = (double)mr * nc * nv, loads = 0;
      for (int k = 0; k < 2; k++)
        loads += (moves(p, f[k], rv) ? mr : 1) * (cols >= 0 && moves(p, f[k], c->axes[cols].var) ? nc : 1) *
                 (moves(p, f[k], c->axes[lanes].var) ? nv : 1);
      double fill = share(le, (int64_t)nv * w) * share(c->axes[rows].extent, mr) *
                    (cols < 0 ? 1 : share(c->axes[cols].extent, nc));
      double cost = (fmas > loads ? fmas : loads) / (fmas * fill);
      if (best_cost == 0 || cost < best_cost - 1e-9) {
        best_cost = cost;
        c->direct.vector = w;
        c->direct.nv = nv;
        c->direct.mr = mr;
        c->direct.nc = nc;
      }
    }
  }
  if (best_cost == 0) return;
  c->direct.lanes = (int8_t)lanes;
  c->direct.rows = (int8_t)rows;
  c->direct.cols = (int8_t)(c->direct.nc > 1 ? cols : -1);
  if (c->direct.cols < 0) c->direct.nc = 1;
}

typedef struct SetRows {
  KVisit v;
  const KProgram *p;
  const CpuScheduleOptions *o;
} SetRows;
static bool set_rows(KVisit *v, KStmt *s) {
  SetRows *r = (SetRows *)v;
  if (s->kind != KS_CONTRACT) return false;
  s->sched.rows = prefers_rows(r->p, s);
  plan_direct(r->p, s, r->o);
  return false;
}

/* ---- tiles ------------------------------------------------------------------------------ */

/* The packed panels are thread-local arrays: keep an override from asking
 * for gigabytes of them. */
enum { MAX_PANEL_BYTES = 256 << 20 };

static int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

/* Worth a packed product: enough columns for one vector and enough depth
 * and rows to amortise packing (small products stay loop nests). */
static bool worth_it(const KGemm *g, int vector) {
  if (g->n < vector && !g->swap) { /* a padded micro-tile: only for long products (the wide logits) */
    bool deep = !g->k_batched && g->k >= 512, tall = !g->m_batched && g->m >= 512;
    if (g->n < 4 || !(deep || tall)) return false;
  }
  if (!g->k_batched && g->k < 8) return false;
  if (!g->m_batched && g->m < 4) return false;
  return true;
}

/* B can be read in place with unit column stride and no column edge. */
static bool b_in_place_ok(const KGemm *g) { return g->b.sj == 1 && g->n % g->nr == 0; }

/* A narrow B that can is read in place: its rows are a few vectors, so
 * packing would copy the whole operand at every call (each step, for a
 * weight) to save nothing. */
static bool default_pack_b(const KGemm *g) { return !(b_in_place_ok(g) && g->n <= 4L * g->vector * 2); }

/* k-contiguous rows of A broadcast well where they lie: packing them is a
 * second pass over A (a transposing copy, scalar stores) that the
 * micro-kernel's reuse does not repay (bench/matmul on AVX2, GPT and wide
 * shapes: forward and input-gradient products 0.9-1.3x faster in place,
 * most where n is a few nr and each sliver is reused few times).  Tiles
 * of more rows (AVX-512's 32 registers: 12 or 14) would read as many row
 * streams at once, which was not measured: those still pack when n > nr.
 * A strided A (a weight gradient's X^T) packs: in place it measured
 * slower. */
static bool default_pack_a(const KGemm *g) {
  return g->swap || g->a.sk != 1 || (g->n > g->nr && g->mr > 8);
}

/* The micro-tile rows for a row extent x: of mr in [max/2, max], the one
 * that wastes the fewest padded rows (the larger on a tie). */
static int rows_dividing(int64_t x, int max) {
  int best = max;
  for (int mr = max; mr >= (max + 1) / 2 && mr >= 1; mr--)
    if (round_up(x, mr) < round_up(x, best)) best = mr;
  return best;
}

/* Fraction of padded micro-tile slots an extent x fills in blocks of b. */
static double filled(int64_t x, int b) { return (double)x / (double)round_up(x, b); }

static int max_rows(int regs) {
  int mr = (regs - 4) / 2; /* 2 vectors of B and a broadcast stay free: 14 (32 regs), 6 (16) */
  return mr > 12 ? 12 : mr;
}

/* Rows known only at run time (times B), or merged across the launch
 * loop's iterations (kgemm_rows_merge): tiles need not shrink to m. */
static bool rows_many(const KGemm *g) { return g->m_batched || kgemm_rows_merge(g); }

/* Tiles of the swapped product (see the top): rows along j, lanes along i. */
static void swapped_tiles(KGemm *g, int w, int regs) {
  g->swap = true;
  g->vector = w;
  g->nr = 2 * w;
  g->mr = rows_dividing(g->n, max_rows(regs));
  g->kc = 256;
  g->mc = (int)round_up(g->n, g->mr);
  g->nc = 1024;
  if (!g->k_batched && g->k < g->kc) g->kc = (int)g->k;
  if (!rows_many(g) && g->nc > round_up(g->m, g->nr)) g->nc = (int)round_up(g->m, g->nr);
  g->pack_b = true;
  g->pack_a = true;
}

/* Swapping pays when it fills clearly more lanes and rows: n well short of
 * nr (unswapped lanes idle), and many rows (run-time rows count as many).
 * Not when A's rows are k-contiguous: then the unswapped product reads A
 * where it lies, while the swapped one would pack (transpose) all of it,
 * and with so few columns packing costs as much as the arithmetic. */
static bool swap_pays(const KGemm *g, int w, int regs) {
  int nr = g->n <= w ? w : 2 * w;
  if (g->n >= 2 * w || (!rows_many(g) && g->m < 4 * w) || g->a.sk == 1) return false;
  double now = filled(g->n, nr);
  double swapped = filled(g->n, rows_dividing(g->n, max_rows(regs))) * (rows_many(g) ? 1 : filled(g->m, 2 * w));
  return swapped > 1.2 * now;
}

static void default_tiles(KGemm *g, const CpuScheduleOptions *o, int swap) {
  int w = o->vector > 0 ? o->vector : 8;
  int regs = o->registers > 0 ? o->registers : 16;
  if (swap == 2 || (swap == 0 && swap_pays(g, w, regs))) {
    swapped_tiles(g, w, regs);
    return;
  }
  g->swap = false;
  g->vector = w;
  g->nr = 2 * w;
  g->mr = max_rows(regs);
  if (g->n <= w) { /* one vector of columns: twice the rows */
    g->nr = w;
    g->mr *= 2;
  }
  g->kc = 256;
  g->mc = g->mr * 8;
  g->nc = 1024;
  if (!g->k_batched && g->k < g->kc) g->kc = (int)g->k;
  if (g->nc > round_up(g->n, g->nr)) g->nc = (int)round_up(g->n, g->nr);
  if (!rows_many(g) && g->mc > round_up(g->m, g->mr)) g->mc = (int)round_up(g->m, g->mr);
  g->pack_b = default_pack_b(g);
  g->pack_a = default_pack_a(g);
  /* A read in place: no A sliver to keep in L1, so deeper blocks (a 64 KiB
   * B sliver in L2) and fewer passes over C */
  if (!g->pack_a) g->kc = !g->k_batched && g->k < 1024 ? (int)g->k : 1024;
  /* A packed from its columns (a weight gradient's x^T, A(i, k) = x[k, i]):
   * all of its rows in one block, so that each step of k copies a whole
   * row of x (a stream the prefetcher follows) rather than an mc-wide piece
   * of rows 2 KiB apart, each a cache miss; the block stays within
   * 256 KiB of L2 (bench/matmul, the GPT's weight gradients on AVX2:
   * 0.95 -> 1.1 of sgemm). */
  int64_t rows = round_up(g->m, g->mr);
  if (g->pack_a && llabs(g->a.si) < llabs(g->a.sk) && !rows_many(g) && rows > g->mc && g->m <= 512) {
    g->mc = (int)rows;
    if ((int64_t)g->kc * rows > (72 << 10)) g->kc = (int)((72 << 10) / rows / 16 * 16);
  }
}

/* Bp for all of B at most (1 MiB: a weight of the GPT's layers, 128 x 512,
 * takes 256 KiB). */
enum { WHOLE_B_MAX_FLOATS = 256 << 10 };

/* KGemm.pack_b_whole: when the rows run in chunks (an epilogue reads each
 * chunk's C while it is in cache; merged rows) every chunk would pack the
 * same B again: the GPT's dense layers over 2048 rows packed each weight
 * 11 times a step, a third of an input-gradient product's time where the
 * weight is read transposed. */
static bool whole_b_pays(const Kernel *k, const KGemm *g) {
  if (g->swap || !g->pack_b || g->k_batched) return false;
  bool epilogue = !kgemm_plain_store(g) || k->body[0]->nbody > 1;
  bool chunks = kgemm_rows_merge(g) || (g->nbatch == 0 && epilogue);
  return chunks && kgemm_whole_b_floats(g) <= WHOLE_B_MAX_FLOATS;
}

/* ---- --schedule --------------------------------------------------------------------------- */

typedef struct Override {
  char kernel[128];   /* "" = every kernel */
  bool off;
  int mr, nr, kc, mc, nc; /* 0 = keep */
  int packa, packb;       /* 0 = keep, 1 = no, 2 = yes */
  int swap;               /* 0 = keep, 1 = no, 2 = yes */
} Override;

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *end = s + strlen(s);
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = 0;
  return s;
}

static bool parse_item(const char *item, size_t len, Override *ov) {
  memset(ov, 0, sizeof *ov);
  char buf[512];
  if (len >= sizeof buf) {
    diag_error_plain("--schedule: item too long: '%.40s...'", item);
    return false;
  }
  memcpy(buf, item, len);
  buf[len] = 0;
  char *s = trim(buf);
  char *colon = strchr(s, ':');
  if (colon) {
    *colon = 0;
    s = trim(s);
    if (!*s || strlen(s) >= sizeof ov->kernel) {
      diag_error_plain("--schedule: bad kernel name in '%.*s'", (int)len, item);
      return false;
    }
    snprintf(ov->kernel, sizeof ov->kernel, "%s", s);
    s = trim(colon + 1);
  }
  if (!strcmp(s, "off")) {
    ov->off = true;
    return true;
  }
  for (char *kv = strtok(s, ","); kv; kv = strtok(NULL, ",")) {
    char *eq = strchr(kv, '=');
    if (!eq) {
      diag_error_plain("--schedule: expected KEY=N or 'off', found '%s'\n%s", kv, schedule_cpu_spec_help);
      return false;
    }
    *eq = 0;
    kv = trim(kv);
    char *num = trim(eq + 1), *stop;
    errno = 0;
    long val = strtol(num, &stop, 10);
    bool flag = !strcmp(kv, "packa") || !strcmp(kv, "packb") || !strcmp(kv, "swap");
    if (!*num || *stop || errno || val < (flag ? 0 : 1) || val > 1 << 20) {
      diag_error_plain("--schedule: %s=%s: expected a positive integer up to 1048576", kv, num);
      return false;
    }
    if (!strcmp(kv, "packb")) {
      if (val > 1) {
        diag_error_plain("--schedule: packb=%s: expected 0 (read B in place) or 1 (pack it)", num);
        return false;
      }
      ov->packb = (int)val + 1;
      continue;
    }
    if (!strcmp(kv, "packa")) {
      if (val > 1) {
        diag_error_plain("--schedule: packa=%s: expected 0 (read A in place) or 1 (pack it)", num);
        return false;
      }
      ov->packa = (int)val + 1;
      continue;
    }
    if (!strcmp(kv, "swap")) {
      if (val > 1) {
        diag_error_plain("--schedule: swap=%s: expected 0 (lanes along j) or 1 (along i)", num);
        return false;
      }
      ov->swap = (int)val + 1;
      continue;
    }
    int *field = !strcmp(kv, "mr") ? &ov->mr
                 : !strcmp(kv, "nr") ? &ov->nr
                 : !strcmp(kv, "kc") ? &ov->kc
                 : !strcmp(kv, "mc") ? &ov->mc
                 : !strcmp(kv, "nc") ? &ov->nc
                                     : NULL;
    if (!field) {
      diag_error_plain("--schedule: unknown key '%s' (mr, nr, kc, mc, nc, packa, packb, swap)", kv);
      return false;
    }
    *field = (int)val;
  }
  return true;
}

/* The items of spec (or of the file it names after '@'). */
static Override *parse_spec(const char *spec, int *n) {
  *n = 0;
  char *text = NULL;
  if (spec[0] == '@') {
    FILE *f = fopen(spec + 1, "rb");
    if (!f) {
      diag_error_plain("--schedule: cannot read '%s': %s", spec + 1, strerror(errno));
      return NULL;
    }
    size_t cap = 4096, len = 0;
    text = nnc_xmalloc(cap);
    size_t got;
    while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
      len += got;
      if (len + 1 == cap) text = nnc_xrealloc(text, cap *= 2);
    }
    fclose(f);
    text[len] = 0;
    for (char *c = text; *c; c++) { /* comments to end of line; lines are items */
      if (*c == '#')
        while (*c && *c != '\n') *c++ = ' ';
      if (*c == '\n') *c = ';';
      if (!*c) break;
    }
  } else {
    text = nnc_xmalloc(strlen(spec) + 1);
    strcpy(text, spec);
  }
  int cap = 8;
  Override *ov = nnc_xmalloc(sizeof *ov * (size_t)cap);
  for (char *item = text; item;) {
    char *semi = strchr(item, ';');
    size_t len = semi ? (size_t)(semi - item) : strlen(item);
    bool blank = true;
    for (size_t i = 0; i < len; i++) blank &= item[i] == ' ' || item[i] == '\t' || item[i] == '\r';
    if (!blank) {
      if (*n == cap) ov = nnc_xrealloc(ov, sizeof *ov * (size_t)(cap *= 2));
      if (!parse_item(item, len, &ov[*n])) {
        free(ov);
        free(text);
        return NULL;
      }
      (*n)++;
    }
    item = semi ? semi + 1 : NULL;
  }
  free(text);
  return ov;
}

/* Applies one item's tiles; *packb_set and *packa_set tell whether an item
 * chose packb or packa (otherwise they follow the tiles: default_pack_b, default_pack_a). */
static bool apply(KGemm *g, const Override *ov, const char *kernel, int registers, bool *packb_set,
                  bool *packa_set) {
  if (ov->mr) g->mr = ov->mr;
  if (ov->nr) g->nr = ov->nr;
  if (ov->kc) g->kc = ov->kc;
  if (ov->mc) g->mc = ov->mc;
  if (ov->nc) g->nc = ov->nc;
  if (ov->packb) {
    g->pack_b = ov->packb == 2;
    *packb_set = true;
  }
  if (ov->packa) {
    g->pack_a = ov->packa == 2;
    *packa_set = true;
  }
  if (g->nr % g->vector) {
    diag_error_plain("--schedule: %s: nr=%d is not a multiple of the vector width %d", kernel, g->nr, g->vector);
    return false;
  }
  if (g->mr > 32 || g->mr * (g->nr / g->vector) > 4 * registers) {
    diag_error_plain("--schedule: %s: a %d x %d micro-tile needs %d accumulators; at most mr=32 and %d", kernel,
                     g->mr, g->nr, g->mr * (g->nr / g->vector), 4 * registers);
    return false;
  }
  if (g->mc % g->mr) g->mc = (int)round_up(g->mc, g->mr);
  if (g->nc % g->nr) g->nc = (int)round_up(g->nc, g->nr);
  if (!*packb_set) g->pack_b = g->swap || default_pack_b(g);
  if (!*packa_set) g->pack_a = default_pack_a(g);
  if (g->swap && (!g->pack_b || !g->pack_a)) {
    diag_error_plain("--schedule: %s: a swapped product packs both operands: pack%c=0 does not apply", kernel,
                     g->pack_a ? 'b' : 'a');
    return false;
  }
  if (!g->pack_b && !b_in_place_ok(g)) {
    diag_error_plain("--schedule: %s: packb=0 needs B's columns contiguous and n a multiple of nr (n=%lld, nr=%d)",
                     kernel, (long long)g->n, g->nr);
    return false;
  }
  int64_t panel = (int64_t)g->kc * (g->mc > g->nc ? g->mc : g->nc) * 4;
  if (panel > MAX_PANEL_BYTES) {
    diag_error_plain("--schedule: %s: a kc x max(mc, nc) = %d x %d packed panel takes %lld MiB per thread; at most %d",
                     kernel, g->kc, g->mc > g->nc ? g->mc : g->nc, (long long)(panel >> 20), MAX_PANEL_BYTES >> 20);
    return false;
  }
  return true;
}

static bool direct_planned(KVisit *v, KStmt *s) {
  (void)v;
  return s->kind == KS_CONTRACT && s->direct.vector > 0;
}
static bool has_direct(const Kernel *k) {
  KVisit v = {direct_planned, NULL};
  return kvisit_kernel(&v, k);
}
static bool unplan(KVisit *v, KStmt *s) {
  (void)v;
  if (s->kind == KS_CONTRACT) memset(&s->direct, 0, sizeof s->direct);
  return false;
}
static void clear_direct(Kernel *k) {
  KVisit v = {unplan, NULL};
  kvisit_kernel(&v, k);
}

void schedule_cpu_clear(KProgram *p) {
  for (uint32_t i = 0; i < p->nkernels; i++) {
    p->kernels[i].gemm = NULL;
    clear_direct(&p->kernels[i]);
  }
}

bool schedule_cpu(KProgram *p, const CpuScheduleOptions *o) {
  int nov = 0;
  Override *ov = NULL;
  if (o->spec && *o->spec) {
    ov = parse_spec(o->spec, &nov);
    if (!ov) return false;
  }
  bool ok = true;
  bool *used = nov ? calloc((size_t)nov, sizeof *used) : NULL;
  for (uint32_t i = 0; i < p->nkernels && ok; i++) {
    Kernel *k = &p->kernels[i];
    k->gemm = NULL;
    SetRows sr = {{set_rows, NULL}, p, o};
    kvisit_kernel(&sr.v, k);
    KGemm g;
    bool matched = match(p, k, &g), direct = has_direct(k);
    if (!matched && !direct) continue;
    int swap = 0; /* the last item naming swap for this kernel decides */
    for (int n = 0; n < nov; n++)
      if (ov[n].swap && (!ov[n].kernel[0] || !strcmp(ov[n].kernel, k->name))) swap = ov[n].swap;
    if (matched) default_tiles(&g, o, swap);
    bool on = matched ? worth_it(&g, g.vector) : true;
    for (int n = 0; n < nov; n++) { /* in order: off, or named (scheduled even if small) */
      if (ov[n].kernel[0] && strcmp(ov[n].kernel, k->name)) continue;
      used[n] = true;
      if (ov[n].off) on = false;
      else if (ov[n].kernel[0]) on = true;
    }
    if (!on) { /* off: the loop nests as written */
      clear_direct(k);
      continue;
    }
    if (!matched) continue;
    bool packb_set = false, packa_set = false;
    for (int n = 0; n < nov && ok; n++) /* then the tiles of the items that apply */
      if (!ov[n].off && (!ov[n].kernel[0] || !strcmp(ov[n].kernel, k->name)))
        ok = apply(&g, &ov[n], k->name, o->registers > 0 ? o->registers : 16, &packb_set, &packa_set);
    if (!ok) continue;
    g.pack_b_whole = whole_b_pays(k, &g);
    k->gemm = arena_alloc(&p->arena, sizeof g);
    *k->gemm = g;
    memset(&((KStmt *)g.contract)->direct, 0, sizeof g.contract->direct); /* the packed product instead */
  }
  for (int n = 0; n < nov && ok; n++) {
    if (ov[n].kernel[0] && !used[n]) {
      diag_error_plain("--schedule: no contraction kernel named '%s' (see --emit=kernels)", ov[n].kernel);
      ok = false;
    }
  }
  free(used);
  free(ov);
  return ok;
}
