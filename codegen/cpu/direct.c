/* codegen/cpu/direct.c - a contraction as register-blocked vector loops,
 * without packing (KStmt.direct, planned by passes/schedule_cpu.c).
 *
 * A convolution
 *
 *   contract y[b, f, oy, ox] = t for f, oy, ox with t = sum c, ky, kx of w[f, c, ky, kx] * x?[b, c, oy + ky - p, ox + kx - p]
 *
 * runs with vector lanes along ox (contiguous in y and in x) and a block
 * of mr accumulator rows along f (w does not move with ox, x does not move
 * with f): per step of the reduction, nv vector loads of x serve all mr
 * rows and mr broadcasts of w serve all lanes, for mr * nv FMAs.  The
 * lanes may instead run along a reduction axis (a weight gradient's ox):
 * each lane then holds a partial sum, added up at the end.  A block may
 * also span nc columns of another free axis along which the factor that
 * moves with the rows is invariant (a weight gradient's kx: dy[f, oy, ox]
 * is the same for every kx, x[c, oy + ky, ox + kx] for every f), for
 * mr * nc * nv FMAs per mr + nc loads (times nv for vectors).
 *
 *   for the other free axes:
 *     for r0 < rows by mr:                       the row axis
 *      for c0 < cols by nc:                      the column axis
 *       for l0 < lanes by nv W:                  lanes along a free axis (once when they reduce)
 *         acc[mr][nc][nv] = 0
 *         for the reduction axes (the lane axis innermost, by nv W, when it reduces):
 *           each factor: per row (column) if it moves with the rows (columns), else once;
 *                        a vector if it moves with the lanes, else a broadcast
 *           acc[r][j][v] += a * b
 *         (lanes that reduce: added up per row)
 *         store the accumulators into C; then C = value(t) per element when the value is not t
 *
 * A factor's vector is masked where lanes fall outside the lane extent
 * (the last block) or outside its buffer (a guarded load: padding): the
 * masked lanes read 0.  Missing rows (columns) of the last block read the
 * last valid one and are never stored.
 */
#include "codegen/cpu/cpu.h"

#include "codegen/llvm/emit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ACC = 128, MAX_LANES = 64 };

typedef struct Dr {
  LkEmit *E;
  LLVMBuilderRef B;
  const KStmt *c;
  int W, nv, mr;
  LLVMTypeRef vty;
  const KAxis *lane, *row;    /* row NULL: none (mr 1) */
  const KAxis *col;           /* col NULL: none (nc 1) */
  int nc;
  bool lane_reduces;
  LLVMValueRef lane_n;        /* the lane axis' extent (i64) */
  LLVMValueRef row_n;         /* the row axis' extent (i64) */
  LLVMValueRef col_n;         /* the column axis' extent (i64) */
  LLVMValueRef r0, rvalid;    /* the row block */
  LLVMValueRef c0, cvalid;    /* the column block */
  LLVMValueRef l0;            /* the first lane of the block or step */
  LLVMValueRef acc[MAX_ACC];  /* allocas of vty: [mr][nc][nv] */
} Dr;

static LLVMValueRef c64(Dr *D, int64_t v) { return lk_i64(D->E, v); }
static LLVMValueRef add(Dr *D, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(D->B, a, b, ""); }
static LLVMValueRef sub(Dr *D, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWSub(D->B, a, b, ""); }
static LLVMValueRef imin(Dr *D, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(D->B, LLVMBuildICmp(D->B, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef splat(Dr *D, LLVMValueRef x, LLVMTypeRef vty) {
  LLVMValueRef v = LLVMBuildInsertElement(D->B, LLVMGetUndef(vty), x, lk_i32(D->E, 0), "");
  LLVMValueRef mask = LLVMConstNull(LLVMVectorType(D->E->i32, (unsigned)D->W));
  return LLVMBuildShuffleVector(D->B, v, LLVMGetUndef(vty), mask, "");
}

/* <base, base + step, ..., base + (W - 1) step> as i64. */
static LLVMValueRef iota(Dr *D, int64_t base, int64_t step) {
  LLVMValueRef v[MAX_LANES];
  for (int l = 0; l < D->W; l++) v[l] = c64(D, base + l * step);
  return LLVMConstVector(v, (unsigned)D->W);
}

/* ---- factors -------------------------------------------------------------------------------- */

/* Sets the row variable for row r of the block (clamped to the last valid row). */
static void at_row(Dr *D, int r) {
  if (D->row) D->E->vars[D->row->var] = add(D, D->r0, imin(D, c64(D, r), sub(D, D->rvalid, c64(D, 1))));
}

/* Sets the column variable for column j of the block (clamped likewise). */
static void at_col(Dr *D, int j) {
  if (D->col) D->E->vars[D->col->var] = add(D, D->c0, imin(D, c64(D, j), sub(D, D->cvalid, c64(D, 1))));
}

/* The accumulator of row r, column j, vector v. */
static LLVMValueRef acc(const Dr *D, int r, int j, int v) { return D->acc[(r * D->nc + j) * D->nv + v]; }

/* Sets the lane variable for vector v of the block or step. */
static void at_lanes(Dr *D, int v) { D->E->vars[D->lane->var] = add(D, D->l0, c64(D, (int64_t)v * D->W)); }

/* The lanes below n (an i64 scalar): lane < n, compared in 32 bits
 * (n clamped to [0, W]), which takes a quarter of the 64-bit compares. */
static LLVMValueRef lanes_below(Dr *D, LLVMValueRef n) {
  LkEmit *E = D->E;
  LLVMValueRef c = imin(D, n, c64(D, D->W));
  c = LLVMBuildSelect(D->B, LLVMBuildICmp(D->B, LLVMIntSLT, c, c64(D, 0), ""), c64(D, 0), c, "");
  LLVMTypeRef i32v = LLVMVectorType(E->i32, (unsigned)D->W);
  LLVMValueRef lanes[MAX_LANES];
  for (int l = 0; l < D->W; l++) lanes[l] = lk_i32(E, l);
  return LLVMBuildICmp(D->B, LLVMIntSLT, LLVMConstVector(lanes, (unsigned)D->W),
                       splat(D, LLVMBuildTrunc(D->B, c, E->i32, ""), i32v), "");
}

/* The least and greatest value of index e over the contraction's axes;
 * false when e uses another variable (or a batched extent) or is not
 * affine. */
static bool index_range(const Dr *D, const KExpr *e, int64_t *lo, int64_t *hi) {
  int64_t alo, ahi, blo, bhi;
  switch (e->kind) {
  case KE_CONST:
    *lo = *hi = (int64_t)e->value;
    return true;
  case KE_VAR:
    for (int i = 0; i < D->c->nfree + D->c->nred; i++)
      if (D->c->axes[i].var == e->var && !D->c->axes[i].batched) {
        *lo = 0, *hi = D->c->axes[i].extent - 1;
        return true;
      }
    return false;
  case KE_OP:
    if ((e->op == OP_ADD || e->op == OP_SUB) && index_range(D, e->a, &alo, &ahi) && index_range(D, e->b, &blo, &bhi)) {
      *lo = e->op == OP_ADD ? alo + blo : alo - bhi;
      *hi = e->op == OP_ADD ? ahi + bhi : ahi - blo;
      return true;
    }
    if (e->op == OP_MUL && e->b && e->b->kind == KE_CONST && index_range(D, e->a, &alo, &ahi)) {
      int64_t k = (int64_t)e->b->value;
      *lo = k >= 0 ? alo * k : ahi * k, *hi = k >= 0 ? ahi * k : alo * k;
      return true;
    }
    return false;
  default: return false;
  }
}

/* Whether index d of guarded load e may fall outside its buffer: not
 * for the sample index (a window shifts per-sample axes only; the kernel
 * runs over the batch) nor for an index whose range over the contraction
 * lies inside the extent (a channel). */
static bool may_leave(const Dr *D, const KExpr *e, int d, int64_t extent) {
  const KBuffer *kb = &D->E->p->bufs[e->buf];
  if (kb->type.batched && d == 0 && e->idx[0]->kind == KE_VAR) return false;
  int64_t lo, hi;
  return !(index_range(D, e->idx[d], &lo, &hi) && lo >= 0 && hi < extent);
}

/* The lanes of vector v that lie inside the lane extent (tail) and, for
 * a guarded load e, whose every index lies inside its buffer; NULL when
 * that is all of them (no tail, no guard).  An index that does not move
 * with the lanes is checked once, as a scalar. */
static LLVMValueRef lane_mask(Dr *D, const KExpr *e, int v, bool tail) {
  LkEmit *E = D->E;
  LLVMTypeRef i64v = LLVMVectorType(E->i64, (unsigned)D->W);
  LLVMValueRef mask = NULL;
  if (tail) /* l0 + v W + lane < extent */
    mask = lanes_below(D, sub(D, D->lane_n, add(D, D->l0, c64(D, (int64_t)v * D->W))));
  if (!e || !e->guarded) return mask;
  const KBuffer *kb = &E->p->bufs[e->buf];
  int batched = kb->type.batched ? 1 : 0;
  LLVMValueRef scalar_in = NULL; /* the indices that do not move with the lanes */
  for (int d = 0; d < e->nidx; d++) { /* 0 <= idx_d(lane 0) + c_d lane < extent_d, unsigned */
    int64_t cd, dim = batched && d == 0 ? -1 : kb->type.dims[d - batched];
    if (dim >= 0 && !may_leave(D, e, d, dim)) continue;
    if (dim < 0 && !may_leave(D, e, d, INT64_MAX)) continue;
    if (!kexpr_coefficient(e->idx[d], D->lane->var, &cd)) LK_FAIL(E, "%s", "a direct factor's index is not affine");
    LLVMValueRef extent = dim < 0 ? E->batch : c64(D, dim);
    LLVMValueRef i0 = lk_coerce(E, lk_expr(E, e->idx[d]), E->i64);
    if (cd == 0) {
      LLVMValueRef in = LLVMBuildICmp(D->B, LLVMIntULT, i0, extent, "");
      scalar_in = scalar_in ? LLVMBuildAnd(D->B, scalar_in, in, "") : in;
      continue;
    }
    LLVMValueRef in;
    if (cd == 1) { /* -i0 <= lane < extent - i0, in 32-bit lanes */
      in = LLVMBuildAnd(D->B, LLVMBuildNot(D->B, lanes_below(D, sub(D, c64(D, 0), i0)), ""),
                        lanes_below(D, sub(D, extent, i0)), "");
    } else {
      LLVMValueRef idx = LLVMBuildAdd(D->B, splat(D, i0, i64v), iota(D, 0, cd), "");
      in = LLVMBuildICmp(D->B, LLVMIntULT, idx, splat(D, extent, i64v), "");
    }
    mask = mask ? LLVMBuildAnd(D->B, mask, in, "") : in;
  }
  if (scalar_in) {
    LLVMTypeRef i1v = LLVMVectorType(E->i1, (unsigned)D->W);
    LLVMValueRef all = splat(D, scalar_in, i1v);
    mask = mask ? LLVMBuildAnd(D->B, mask, all, "") : all;
  }
  return mask; /* NULL: guarded, but every index provably inside */
}

/* Factor e as a vector for vector v of the lanes (the variables set). */
static LLVMValueRef factor(Dr *D, const KExpr *e, int v, bool tail) {
  LkEmit *E = D->E;
  if (!kexpr_mentions(e, D->lane->var)) return splat(D, lk_expr(E, e), D->vty); /* guards included */
  at_lanes(D, v);
  LLVMValueRef off = lk_offset(E, e->buf, e->idx, e->nidx);
  LLVMValueRef ptr = LLVMBuildGEP2(D->B, E->f32, E->base[e->buf], &off, 1, ""); /* may lie outside: masked */
  LLVMValueRef mask = lane_mask(D, e, v, tail);
  if (!mask) {
    LLVMValueRef x = LLVMBuildLoad2(D->B, D->vty, ptr, "");
    LLVMSetAlignment(x, 4);
    return x;
  }
  LLVMTypeRef tys[2] = {D->vty, E->ptr};
  LLVMValueRef args[4] = {ptr, lk_i32(E, 4), mask, LLVMConstNull(D->vty)};
  return lk_intrinsic(E, "llvm.masked.load", tys, 2, args, 4);
}

/* One step of the reduction: acc[r][v] += a * b for the block. */
static void step(Dr *D, bool tail) {
  LkEmit *E = D->E;
  const KExpr *f[2] = {D->c->a, D->c->b};
  bool per_row[2], per_col[2], per_lane[2];
  for (int i = 0; i < 2; i++) {
    per_row[i] = D->row && kexpr_mentions(f[i], D->row->var);
    per_col[i] = D->col && kexpr_mentions(f[i], D->col->var);
    per_lane[i] = kexpr_mentions(f[i], D->lane->var);
  }
  LLVMValueRef val[2][MAX_ACC];
  for (int i = 0; i < 2; i++) /* each factor once per row, column and vector it moves with */
    for (int r = 0; r < (per_row[i] ? D->mr : 1); r++)
      for (int j = 0; j < (per_col[i] ? D->nc : 1); j++) {
        at_row(D, r);
        at_col(D, j);
        for (int v = 0; v < (per_lane[i] ? D->nv : 1); v++)
          val[i][(r * D->nc + j) * D->nv + v] = factor(D, f[i], v, tail);
      }
  LLVMTypeRef vty = D->vty;
  for (int r = 0; r < D->mr; r++)
    for (int j = 0; j < D->nc; j++)
      for (int v = 0; v < D->nv; v++) {
        int at[2];
        for (int i = 0; i < 2; i++)
          at[i] = ((per_row[i] ? r : 0) * D->nc + (per_col[i] ? j : 0)) * D->nv + (per_lane[i] ? v : 0);
        LLVMValueRef slot = acc(D, r, j, v);
        LLVMValueRef args[3] = {val[0][at[0]], val[1][at[1]], LLVMBuildLoad2(D->B, vty, slot, "")};
        LLVMBuildStore(D->B, lk_intrinsic(E, "llvm.fma", &vty, 1, args, 3), slot);
      }
}

/* The reduction axes (but a reducing lane axis) as loops, then `inner`. */
static void reduce(Dr *D, int i, bool tail) {
  LkEmit *E = D->E;
  const KStmt *c = D->c;
  int n = c->nfree + c->nred;
  if (i == n) {
    if (!D->lane_reduces) {
      step(D, tail);
      return;
    }
    /* the lane axis: full steps, then the partial last one */
    int64_t w = (int64_t)D->W * D->nv;
    LLVMValueRef full = LLVMBuildMul(D->B, LLVMBuildSDiv(D->B, D->lane_n, c64(D, w), ""), c64(D, w), "");
    LkLoop l;
    D->l0 = lk_for_begin(E, &l, c64(D, 0), full, w, "lanes");
    step(D, false);
    lk_for_end(E, &l);
    LLVMBasicBlockRef part = lk_block(E, "lanes.part"), done = lk_block(E, "lanes.done");
    LLVMBuildCondBr(D->B, LLVMBuildICmp(D->B, LLVMIntSLT, full, D->lane_n, ""), part, done);
    LLVMPositionBuilderAtEnd(D->B, part);
    D->l0 = full;
    step(D, true);
    LLVMBuildBr(D->B, done);
    LLVMMoveBasicBlockAfter(done, LLVMGetInsertBlock(D->B));
    LLVMPositionBuilderAtEnd(D->B, done);
    return;
  }
  const KAxis *x = &c->axes[i];
  if (i < c->nfree || x == D->lane) {
    reduce(D, i + 1, tail);
    return;
  }
  LkLoop l;
  E->vars[x->var] = lk_for_begin(E, &l, c64(D, 0), lk_extent(E, x->extent, x->batched), 1, "red");
  reduce(D, i + 1, tail);
  E->vars[x->var] = NULL;
  lk_for_end(E, &l);
}

/* ---- storing ---------------------------------------------------------------------------------- */

/* Goes on to `done` when row r is not valid; else sets the row variable. */
static void if_row(Dr *D, int r, LLVMBasicBlockRef done) {
  LLVMBasicBlockRef row = lk_block(D->E, "row");
  LLVMBuildCondBr(D->B, LLVMBuildICmp(D->B, LLVMIntSLT, c64(D, r), D->rvalid, ""), row, done);
  LLVMPositionBuilderAtEnd(D->B, row);
  if (D->row) D->E->vars[D->row->var] = add(D, D->r0, c64(D, r));
}

/* Goes on to `next` when column j is not valid; else sets the column variable. */
static void if_col(Dr *D, int j, LLVMBasicBlockRef next) {
  if (!D->col) return;
  LLVMBasicBlockRef col = lk_block(D->E, "col");
  LLVMBuildCondBr(D->B, LLVMBuildICmp(D->B, LLVMIntSLT, c64(D, j), D->cvalid, ""), col, next);
  LLVMPositionBuilderAtEnd(D->B, col);
  D->E->vars[D->col->var] = add(D, D->c0, c64(D, j));
}

/* After row r's columns: on to the next row. */
static void next_row(Dr *D, LLVMBasicBlockRef next) {
  LLVMBuildBr(D->B, next);
  LLVMMoveBasicBlockAfter(next, LLVMGetInsertBlock(D->B));
  LLVMPositionBuilderAtEnd(D->B, next);
}

static bool plain_value(const KStmt *c) { return c->value->kind == KE_TEMP && c->value->temp == c->temp; }

/* The contraction's store of value(t) at the current variables, t given. */
static void store_value(Dr *D, LLVMValueRef t) {
  KStmt store = *D->c;
  store.kind = KS_STORE;
  LLVMBuildStore(D->B, t, D->E->temps[D->c->temp]);
  lk_stmt(D->E, &store);
}

/* Lanes along a free axis: the accumulators into C, masked past the lane
 * extent; then value(t) over the block when the value is not t. */
static void store_lanes(Dr *D, bool tail) {
  LkEmit *E = D->E;
  const KStmt *c = D->c;
  LLVMBasicBlockRef done = lk_block(E, "stored");
  for (int r = 0; r < D->mr; r++) {
    if_row(D, r, done);
    LLVMBasicBlockRef next = lk_block(E, "row.next");
    for (int j = 0; j < D->nc; j++) {
      if_col(D, j, next);
      for (int v = 0; v < D->nv; v++) {
        at_lanes(D, v);
        LLVMValueRef off = lk_offset(E, c->buf, c->idx, c->nidx);
        LLVMValueRef ptr = LLVMBuildGEP2(D->B, E->f32, E->base[c->buf], &off, 1, "");
        LLVMValueRef x = LLVMBuildLoad2(D->B, D->vty, acc(D, r, j, v), "");
        LLVMValueRef mask = lane_mask(D, NULL, v, tail);
        if (!mask) {
          LLVMSetAlignment(LLVMBuildStore(D->B, x, ptr), 4);
        } else {
          LLVMTypeRef tys[2] = {D->vty, E->ptr};
          LLVMValueRef args[4] = {x, ptr, lk_i32(E, 4), mask};
          lk_intrinsic(E, "llvm.masked.store", tys, 2, args, 4);
        }
      }
    }
    next_row(D, next);
  }
  LLVMBuildBr(D->B, done);
  LLVMMoveBasicBlockAfter(done, LLVMGetInsertBlock(D->B));
  LLVMPositionBuilderAtEnd(D->B, done);
  if (plain_value(c)) return;
  /* value(t) in place: t read back from C, per element of the block */
  LkLoop lr, lc, ll;
  LLVMValueRef r = lk_for_begin(E, &lr, c64(D, 0), D->rvalid, 1, "ep.r");
  if (D->row) E->vars[D->row->var] = add(D, D->r0, r);
  LLVMValueRef j = lk_for_begin(E, &lc, c64(D, 0), D->cvalid, 1, "ep.c");
  if (D->col) E->vars[D->col->var] = add(D, D->c0, j);
  LLVMValueRef lend = imin(D, c64(D, (int64_t)D->W * D->nv), sub(D, D->lane_n, D->l0));
  LLVMValueRef l = lk_for_begin(E, &ll, c64(D, 0), lend, 1, "ep.l");
  E->vars[D->lane->var] = add(D, D->l0, l);
  LLVMValueRef off = lk_offset(E, c->buf, c->idx, c->nidx);
  LLVMValueRef t = LLVMBuildLoad2(D->B, E->f32, LLVMBuildInBoundsGEP2(D->B, E->f32, E->base[c->buf], &off, 1, ""), "");
  LLVMSetAlignment(t, 4);
  store_value(D, t);
  lk_for_end(E, &ll);
  lk_for_end(E, &lc);
  lk_for_end(E, &lr);
}

/* Lanes along a reduction axis: each row's lanes added up, then value(t). */
static void store_sums(Dr *D) {
  LkEmit *E = D->E;
  LLVMBasicBlockRef done = lk_block(E, "stored");
  LLVMTypeRef vty = D->vty;
  for (int r = 0; r < D->mr; r++) {
    if_row(D, r, done);
    LLVMBasicBlockRef next = lk_block(E, "row.next");
    for (int j = 0; j < D->nc; j++) {
      if_col(D, j, next);
      LLVMValueRef sum = LLVMBuildLoad2(D->B, vty, acc(D, r, j, 0), "");
      for (int v = 1; v < D->nv; v++) sum = lk_fast(LLVMBuildFAdd(D->B, sum, LLVMBuildLoad2(D->B, vty, acc(D, r, j, v), ""), ""));
      LLVMValueRef args[2] = {lk_f32(E, 0), sum};
      LLVMValueRef t = lk_intrinsic(E, "llvm.vector.reduce.fadd", &vty, 1, args, 2);
      lk_fast(t);
      store_value(D, t);
    }
    next_row(D, next);
  }
  LLVMBuildBr(D->B, done);
  LLVMMoveBasicBlockAfter(done, LLVMGetInsertBlock(D->B));
  LLVMPositionBuilderAtEnd(D->B, done);
}

/* ---- the block ---------------------------------------------------------------------------------- */

static void zero(Dr *D) {
  for (int a = 0; a < D->mr * D->nc * D->nv; a++) LLVMBuildStore(D->B, LLVMConstNull(D->vty), D->acc[a]);
}

/* One block of rows (and lanes, when they are free): reduce and store. */
static void block(Dr *D) {
  LkEmit *E = D->E;
  if (D->lane_reduces) {
    zero(D);
    reduce(D, 0, false);
    store_sums(D);
    return;
  }
  int64_t w = (int64_t)D->W * D->nv;
  LkLoop l;
  D->l0 = lk_for_begin(E, &l, c64(D, 0), D->lane_n, w, "lanes");
  LLVMValueRef full = LLVMBuildICmp(D->B, LLVMIntSLE, add(D, D->l0, c64(D, w)), D->lane_n, "");
  LLVMBasicBlockRef body = lk_block(E, "full"), tail = lk_block(E, "tail"), join = lk_block(E, "block.done");
  LLVMBuildCondBr(D->B, full, body, tail);
  for (int t = 0; t < 2; t++) { /* the same code twice: plain loads, and masked ones for the last block */
    LLVMPositionBuilderAtEnd(D->B, t ? tail : body);
    zero(D);
    reduce(D, 0, t == 1);
    store_lanes(D, t == 1);
    LLVMBuildBr(D->B, join);
  }
  LLVMMoveBasicBlockAfter(join, LLVMGetInsertBlock(D->B));
  LLVMPositionBuilderAtEnd(D->B, join);
  E->vars[D->lane->var] = NULL;
  lk_for_end(E, &l);
}

/* Blocks of `size` along axis (of extent n), each running inner with
 * *start and *valid (the block's first index and how many are inside);
 * one block of one when there is no such axis. */
static void blocks(Dr *D, const KAxis *axis, LLVMValueRef n, int size, LLVMValueRef *start, LLVMValueRef *valid,
                   void (*inner)(Dr *), const char *name) {
  if (!axis) {
    *start = c64(D, 0);
    *valid = c64(D, 1);
    inner(D);
    return;
  }
  LkLoop l;
  *start = lk_for_begin(D->E, &l, c64(D, 0), n, size, name);
  *valid = imin(D, c64(D, size), sub(D, n, *start));
  inner(D);
  D->E->vars[axis->var] = NULL;
  lk_for_end(D->E, &l);
}

/* The column blocks inside a row block. */
static void col_blocks(Dr *D) { blocks(D, D->col, D->col_n, D->nc, &D->c0, &D->cvalid, block, "cols"); }

/* The free axes that are neither lanes, rows nor columns, as loops; then
 * the row and column blocks. */
static void outer(Dr *D, int i) {
  LkEmit *E = D->E;
  const KStmt *c = D->c;
  if (i == c->nfree) {
    blocks(D, D->row, D->row_n, D->mr, &D->r0, &D->rvalid, col_blocks, "rows");
    return;
  }
  const KAxis *x = &c->axes[i];
  if (x == D->lane || x == D->row || x == D->col) {
    outer(D, i + 1);
    return;
  }
  LkLoop l;
  E->vars[x->var] = lk_for_begin(E, &l, c64(D, 0), lk_extent(E, x->extent, x->batched), 1, "free");
  outer(D, i + 1);
  E->vars[x->var] = NULL;
  lk_for_end(E, &l);
}

void cpu_direct_emit(LkEmit *E, const KStmt *c) {
  Dr D;
  memset(&D, 0, sizeof D);
  D.E = E, D.B = E->b, D.c = c;
  D.W = c->direct.vector, D.nv = c->direct.nv, D.mr = c->direct.mr, D.nc = c->direct.nc;
  int n = c->nfree + c->nred;
  if (D.W < 1 || D.W > MAX_LANES || D.nv < 1 || D.mr < 1 || D.nc < 1 || D.mr * D.nc * D.nv > MAX_ACC ||
      c->direct.lanes < 0 || c->direct.lanes >= n || c->direct.rows >= c->nfree || c->direct.cols >= c->nfree ||
      (c->direct.cols >= 0 && (c->direct.cols == c->direct.rows || c->direct.cols == c->direct.lanes)) || !c->b ||
      c->combine != OP_ADD || c->buf < 0)
    LK_FAIL(E, "%s", "a direct plan that does not fit its contraction");
  D.vty = LLVMVectorType(E->f32, (unsigned)D.W);
  D.lane = &c->axes[c->direct.lanes];
  D.lane_reduces = c->direct.lanes >= c->nfree;
  D.row = c->direct.rows >= 0 ? &c->axes[c->direct.rows] : NULL;
  D.lane_n = lk_extent(E, D.lane->extent, D.lane->batched);
  if (D.row) D.row_n = lk_extent(E, D.row->extent, D.row->batched);
  if (!D.row) D.mr = 1;
  D.col = c->direct.cols >= 0 ? &c->axes[c->direct.cols] : NULL;
  if (D.col) D.col_n = lk_extent(E, D.col->extent, D.col->batched);
  if (!D.col) D.nc = 1;
  /* the accumulators: allocas in the entry block, kept in registers by mem2reg */
  LLVMBasicBlockRef here = LLVMGetInsertBlock(D.B);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(E->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(D.B, first);
  else LLVMPositionBuilderAtEnd(D.B, entry);
  for (int a = 0; a < D.mr * D.nc * D.nv; a++) {
    D.acc[a] = LLVMBuildAlloca(D.B, D.vty, "acc");
    LLVMSetAlignment(D.acc[a], 4 * (unsigned)D.W);
  }
  LLVMPositionBuilderAtEnd(D.B, here);
  outer(&D, 0);
}
