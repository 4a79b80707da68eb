/* codegen/gpu/tiled.c - the GK_TILED form: a product C[group, row, col] =
 * sum_k x(group, row, k) y(group, k, col) through shared memory, with
 * register blocking (see gpu.h).
 *
 * The plan's tile groups (TileGroup) say which loop variables a row,
 * column, k and group index stand for.  A matmul as scheduled is `for g <
 * rows * cols: { acc = 0; for k < depth: acc = acc + x * y; stores }` with
 * x free of the output column and y free of the row (schedule.c, from the
 * opencl NDRange schedule's match): x at (row, k) is the expression x with
 * g = row * cols, y at (k, col) is y with g = col, and the stores run with
 * g = row * cols + col and acc bound.  An implicit GEMM (igemm.c) is the
 * contraction with its free axes: rows, columns and k each decompose into
 * several of its variables (f; b, oy, ox; c, ky, kx for a convolution),
 * and a group index (the sample of a filter gradient) picks one of many
 * independent products; a tile lies in one group.
 *
 * A block of 256 threads, tx = tid % 16 and ty = tid / 16, owns a tile of
 * TM = 16 rm rows by TN = 16 rn columns; thread (ty, tx) computes rows
 * ty rm + i (i < rm) and columns tx rn + j (j < rn).  Per step of TK = 16
 * along k:
 *
 *   stage   the block copies x[row0 .. row0 + TM, k0 .. k0 + 16] into xs
 *           and y[k0 .. k0 + 16, col0 .. col0 + TN] into ys, both k-major
 *           (xs[kk * (TM + pad) + r]; pad 1 keeps the k-contiguous copy free
 *           of bank conflicts, pad 4 when rows are read as float4).  Out of
 *           range elements are 0.  A factor that is contiguous along k
 *           (x_kmajor) is read with neighbouring threads on neighbouring k,
 *           else on neighbouring rows/columns, so global loads coalesce
 *           either way.
 *   barrier
 *   compute for kk < 16: rm values of xs and rn of ys into registers (as
 *           128-bit ld.shared.v4 when rm, rn are multiples of 4), rm x rn
 *           fused multiply-adds into the accumulators (in k order: the same
 *           additions, in the same order, as the loop it replaces).  With
 *           4 x 4 outputs that is 16 FMAs per 2 + 2 vector loads (a
 *           broadcast and a conflict-free row), so the FMA units, not
 *           shared memory, set the pace.
 *   barrier
 *
 * Blocks stride over the tiles (tile += gridDim.x), so the kernel is right
 * for any grid; schedule.c sets the launch range to about one block per
 * tile.  Every branch around a barrier is uniform across the block.
 */
#include "codegen/gpu/gpu.h"

#include "codegen/llvm/emit.h"

#include <stdio.h>
#include <string.h>

enum { EDGE = 16, MAX_ACC = 64 };

typedef struct Tile {
  GpuEmit *G;
  LkEmit *E;
  const GpuKernelPlan *kp;
  const KStmt *l;          /* the launch loop: its variable is g */
  int tm, tn, lda, ldb;    /* tile edges; row strides of xs and ys */
  LLVMValueRef xs, ys;     /* the shared arrays */
  LLVMValueRef tid, tx, ty, rows, cols, depth;
  LLVMValueRef grp;        /* the tile's group index, NULL when there is no group */
  LLVMValueRef ty_rm, tx_rn;   /* the first row and column of this thread's outputs in the tile */
  LLVMValueRef acc[MAX_ACC]; /* allocas, [i * rn + j] */
} Tile;

static int log2i(int v) {
  int n = 0;
  while ((1 << n) < v) n++;
  return n;
}

static LLVMValueRef shared_at(Tile *T, LLVMValueRef array, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(T->E->b, T->E->f32, array, &off, 1, "");
}

static void unbind(Tile *T) {
  for (int gi = 0; gi < TG_NGROUPS; gi++)
    for (int i = 0; i < T->kp->tg[gi].n; i++) T->E->vars[T->kp->tg[gi].ax[i].var] = NULL;
}

/* Binds the loop variables of the groups whose index lin[] gives (NULL:
 * that group is not bound; a matmul's x leaves g = row * cols). */
static void bind(Tile *T, LLVMValueRef const lin[TG_NGROUPS]) {
  LkEmit *E = T->E;
  LLVMBuilderRef B = E->b;
  unbind(T);
  for (int gi = 0; gi < TG_NGROUPS; gi++) {
    const TileGroup *t = &T->kp->tg[gi];
    if (!lin[gi]) continue;
    LLVMValueRef rest = lin[gi];
    for (int i = t->n - 1; i >= 0; i--) { /* row-major: the last axis varies fastest */
      const TileAxis *a = &t->ax[i];
      LLVMValueRef idx = rest;
      if (i > 0) {
        idx = LLVMBuildURem(B, rest, lk_i64(E, a->extent), "");
        rest = LLVMBuildUDiv(B, rest, lk_i64(E, a->extent), "");
      }
      if (a->scale != 1) idx = LLVMBuildNSWMul(B, idx, lk_i64(E, a->scale), "");
      LLVMValueRef *v = &E->vars[a->var];
      *v = *v ? LLVMBuildNSWAdd(B, *v, idx, "") : idx;
    }
  }
}

/* The number of elements of a group, as i64 (a constant unless batched). */
static LLVMValueRef group_size(Tile *T, const TileGroup *t) {
  int64_t n = 1;
  bool batched = false;
  for (int i = 0; i < t->n; i++) n *= t->ax[i].extent, batched |= t->ax[i].batched;
  return lk_extent(T->E, n, batched);
}

/* ceil(n / edge), edge a power of 2 (constant when n is). */
static LLVMValueRef tiles_along(Tile *T, LLVMValueRef n, int edge) {
  LLVMBuilderRef B = T->E->b;
  return LLVMBuildLShr(B, LLVMBuildNSWAdd(B, n, lk_i64(T->E, edge - 1), ""), lk_i64(T->E, log2i(edge)), "");
}

/* Copies the 16-deep slice at k0 of factor x (is_x: TM rows from `origin`)
 * or y (TN columns from `origin`) into shared memory. */
static void stage(Tile *T, bool is_x, LLVMValueRef origin, LLVMValueRef k0) {
  LkEmit *E = T->E;
  LLVMBuilderRef B = E->b;
  const GpuKernelPlan *kp = T->kp;
  int edge = is_x ? T->tm : T->tn, ld = is_x ? T->lda : T->ldb;
  bool kmajor = is_x ? kp->x_kmajor : kp->y_kmajor;
  LLVMValueRef limit = is_x ? T->rows : T->cols, array = is_x ? T->xs : T->ys;
  const KExpr *f = is_x ? kp->x : kp->y;
  int per = edge * EDGE / GPU_BLOCK; /* elements per thread: rm or rn */
  for (int e = 0; e < per; e++) {
    LLVMValueRef idx = e ? LLVMBuildNUWAdd(B, T->tid, lk_i64(E, (int64_t)e * GPU_BLOCK), "") : T->tid;
    LLVMValueRef r, kk;
    if (kmajor) {
      kk = LLVMBuildAnd(B, idx, lk_i64(E, EDGE - 1), "kk");
      r = LLVMBuildLShr(B, idx, lk_i64(E, log2i(EDGE)), "r");
    } else {
      r = LLVMBuildAnd(B, idx, lk_i64(E, edge - 1), "r");
      kk = LLVMBuildLShr(B, idx, lk_i64(E, log2i(edge)), "kk");
    }
    LLVMValueRef pos = LLVMBuildNSWAdd(B, origin, r, ""), kv = LLVMBuildNSWAdd(B, k0, kk, "");
    LLVMValueRef ok = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSLT, pos, limit, ""),
                                   LLVMBuildICmp(B, LLVMIntSLT, kv, T->depth, ""), "");
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(B);
    LLVMBasicBlockRef load = lk_block(E, is_x ? "load.x" : "load.y"), join = lk_block(E, "staged");
    LLVMBuildCondBr(B, ok, load, join);
    LLVMPositionBuilderAtEnd(B, load);
    LLVMValueRef lin[TG_NGROUPS] = {NULL, NULL, kv, T->grp};
    lin[is_x ? TG_ROW : TG_COL] = pos;
    bind(T, lin);
    LLVMValueRef v = lk_coerce(E, lk_expr(E, f), E->f32);
    unbind(T);
    LLVMBasicBlockRef loaded = LLVMGetInsertBlock(B);
    LLVMBuildBr(B, join);
    LLVMMoveBasicBlockAfter(join, loaded);
    LLVMPositionBuilderAtEnd(B, join);
    LLVMValueRef phi = LLVMBuildPhi(B, E->f32, "");
    LLVMValueRef vals[2] = {lk_f32(E, 0), v};
    LLVMBasicBlockRef from[2] = {pre, loaded};
    LLVMAddIncoming(phi, vals, from, 2);
    LLVMValueRef off = LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, kk, lk_i64(E, ld), ""), r, "");
    LLVMSetAlignment(LLVMBuildStore(B, phi, shared_at(T, array, off)), 4);
  }
}

/* n consecutive floats from shared memory at base + off: float4 loads
 * (16-byte aligned: n, the row stride and the thread's offset are
 * multiples of 4) or single ones. */
static void load_run(Tile *T, LLVMValueRef base, int64_t off, int n, LLVMValueRef *out) {
  LkEmit *E = T->E;
  LLVMBuilderRef B = E->b;
  if (n % 4) {
    for (int i = 0; i < n; i++) {
      out[i] = LLVMBuildLoad2(B, E->f32, shared_at(T, base, lk_i64(E, off + i)), "");
      LLVMSetAlignment(out[i], 4);
    }
    return;
  }
  LLVMTypeRef v4 = LLVMVectorType(E->f32, 4);
  for (int q = 0; q < n; q += 4) {
    LLVMValueRef v = LLVMBuildLoad2(B, v4, shared_at(T, base, lk_i64(E, off + q)), "");
    LLVMSetAlignment(v, 16);
    for (int e = 0; e < 4; e++) out[q + e] = LLVMBuildExtractElement(B, v, lk_i32(E, e), "");
  }
}

/* The 16 steps of one slice: rm x rn multiply-adds per step. */
static void compute(Tile *T) {
  LkEmit *E = T->E;
  LLVMBuilderRef B = E->b;
  int rm = T->kp->rm, rn = T->kp->rn;
  LLVMValueRef acc[MAX_ACC], a[8], b[8];
  for (int q = 0; q < rm * rn; q++) acc[q] = LLVMBuildLoad2(B, E->f32, T->acc[q], "");
  LLVMValueRef xrow = shared_at(T, T->xs, LLVMBuildNUWMul(B, T->ty, lk_i64(E, rm), ""));
  LLVMValueRef ycol = shared_at(T, T->ys, LLVMBuildNUWMul(B, T->tx, lk_i64(E, rn), ""));
  for (int kk = 0; kk < EDGE; kk++) {
    load_run(T, xrow, (int64_t)kk * T->lda, rm, a);
    load_run(T, ycol, (int64_t)kk * T->ldb, rn, b);
    for (int i = 0; i < rm; i++)
      for (int j = 0; j < rn; j++)
        acc[i * rn + j] = lk_fast(LLVMBuildFAdd(B, acc[i * rn + j], lk_fast(LLVMBuildFMul(B, a[i], b[j], "")), ""));
  }
  for (int q = 0; q < rm * rn; q++) LLVMBuildStore(B, acc[q], T->acc[q]);
}

/* The statements after the reduction, once per output this thread owns. */
static void epilogue(Tile *T, LLVMValueRef row0, LLVMValueRef col0) {
  LkEmit *E = T->E;
  LLVMBuilderRef B = E->b;
  const KStmt *l = T->l;
  int rm = T->kp->rm, rn = T->kp->rn;
  for (int i = 0; i < rm; i++)
    for (int j = 0; j < rn; j++) {
      LLVMValueRef row = LLVMBuildNSWAdd(B, row0, LLVMBuildNSWAdd(B, T->ty_rm, lk_i64(E, i), ""), "row");
      LLVMValueRef col = LLVMBuildNSWAdd(B, col0, LLVMBuildNSWAdd(B, T->tx_rn, lk_i64(E, j), ""), "col");
      LLVMValueRef ok = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSLT, row, T->rows, ""),
                                     LLVMBuildICmp(B, LLVMIntSLT, col, T->cols, ""), "");
      LLVMBasicBlockRef then = lk_block(E, "store"), join = lk_block(E, "stored");
      LLVMBuildCondBr(B, ok, then, join);
      LLVMPositionBuilderAtEnd(B, then);
      bind(T, (LLVMValueRef[TG_NGROUPS]){row, col, NULL, T->grp});
      LLVMBuildStore(B, LLVMBuildLoad2(B, E->f32, T->acc[i * rn + j], ""), E->temps[T->kp->contract->temp]);
      KStmt store = *T->kp->contract; /* the contraction's store of its value */
      store.kind = KS_STORE;
      if (store.buf >= 0) lk_stmt(E, &store);
      lk_stmts(E, l->body + 1, l->nbody - 1);
      unbind(T);
      LLVMBuildBr(B, join);
      LLVMMoveBasicBlockAfter(join, LLVMGetInsertBlock(B));
      LLVMPositionBuilderAtEnd(B, join);
    }
}

void gpu_emit_tiled(GpuEmit *G, const GpuKernelPlan *kp) {
  LkEmit *E = gpu_lk(G);
  LLVMBuilderRef B = E->b;
  const Kernel *k = E->k;
  const KStmt *l = k->nbody == 1 && k->body[0]->kind == KS_LOOP ? k->body[0] : NULL;
  if (!l || l->nbody < 1 || l->body[0] != kp->contract || kp->rm * kp->rn > MAX_ACC || kp->rm > 8 || kp->rn > 8 ||
      !kp->tg[TG_ROW].n || !kp->tg[TG_COL].n || !kp->tg[TG_K].n)
    LK_FAIL(E, "%s", "the tiled dot product lost its shape");
  Tile T;
  memset(&T, 0, sizeof T);
  T.G = G, T.E = E, T.kp = kp, T.l = l;
  T.tm = EDGE * kp->rm, T.tn = EDGE * kp->rn;
  T.lda = T.tm + (kp->rm % 4 ? 1 : 4), T.ldb = T.tn + (kp->rn % 4 ? 1 : 4);
  char name[256];
  snprintf(name, sizeof name, "%.200s.xs", k->name);
  T.xs = gpu_shared_array(G, name, (int64_t)EDGE * T.lda);
  snprintf(name, sizeof name, "%.200s.ys", k->name);
  T.ys = gpu_shared_array(G, name, (int64_t)EDGE * T.ldb);
  for (int q = 0; q < kp->rm * kp->rn; q++) T.acc[q] = LLVMBuildAlloca(B, E->f32, "acc");

  /* the block's geometry and the problem's */
  T.tid = LLVMBuildZExt(B, gpu_sreg(G, GPU_TID), E->i64, "tid");
  T.tx = LLVMBuildAnd(B, T.tid, lk_i64(E, EDGE - 1), "tx");
  T.ty = LLVMBuildLShr(B, T.tid, lk_i64(E, log2i(EDGE)), "ty");
  T.ty_rm = LLVMBuildNUWMul(B, T.ty, lk_i64(E, kp->rm), "");
  T.tx_rn = LLVMBuildNUWMul(B, T.tx, lk_i64(E, kp->rn), "");
  LLVMValueRef ctaid = LLVMBuildZExt(B, gpu_sreg(G, GPU_CTAID), E->i64, "ctaid");
  LLVMValueRef nctaid = LLVMBuildZExt(B, gpu_sreg(G, GPU_NCTAID), E->i64, "nctaid");
  T.rows = group_size(&T, &kp->tg[TG_ROW]);
  T.cols = group_size(&T, &kp->tg[TG_COL]);
  T.depth = group_size(&T, &kp->tg[TG_K]);
  LLVMValueRef tcols = tiles_along(&T, T.cols, T.tn), trows = tiles_along(&T, T.rows, T.tm);
  LLVMValueRef tiles = LLVMBuildNSWMul(B, trows, tcols, "tiles"), per_group = tiles;
  if (kp->tg[TG_GROUP].n) tiles = LLVMBuildNSWMul(B, tiles, group_size(&T, &kp->tg[TG_GROUP]), "tiles");

  /* for (tile = blockIdx.x; tile < tiles; tile += gridDim.x) */
  LLVMBasicBlockRef entry = LLVMGetInsertBlock(B);
  LLVMBasicBlockRef tile_bb = lk_block(E, "tile"), done = lk_block(E, "done");
  LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntULT, ctaid, tiles, ""), tile_bb, done);
  LLVMPositionBuilderAtEnd(B, tile_bb);
  LLVMValueRef tile = LLVMBuildPhi(B, E->i64, "tile");
  LLVMAddIncoming(tile, &ctaid, &entry, 1);
  LLVMValueRef rest = tile;
  if (kp->tg[TG_GROUP].n) { /* the group, then the tile within it */
    T.grp = LLVMBuildUDiv(B, tile, per_group, "grp");
    rest = LLVMBuildURem(B, tile, per_group, "");
  }
  LLVMValueRef row0 = LLVMBuildNUWMul(B, LLVMBuildUDiv(B, rest, tcols, ""), lk_i64(E, T.tm), "row0");
  LLVMValueRef col0 = LLVMBuildNUWMul(B, LLVMBuildURem(B, rest, tcols, ""), lk_i64(E, T.tn), "col0");
  for (int q = 0; q < kp->rm * kp->rn; q++) LLVMBuildStore(B, lk_f32(E, 0), T.acc[q]);

  /* for (k0 = 0; k0 < depth; k0 += 16) */
  LLVMBasicBlockRef kpre = LLVMGetInsertBlock(B);
  LLVMBasicBlockRef kloop = lk_block(E, "kstep"), kdone = lk_block(E, "kdone");
  LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntSLT, lk_i64(E, 0), T.depth, ""), kloop, kdone);
  LLVMPositionBuilderAtEnd(B, kloop);
  LLVMValueRef k0 = LLVMBuildPhi(B, E->i64, "k0");
  LLVMValueRef zero = lk_i64(E, 0);
  LLVMAddIncoming(k0, &zero, &kpre, 1);
  stage(&T, true, row0, k0);
  stage(&T, false, col0, k0);
  gpu_barrier(G);
  compute(&T);
  gpu_barrier(G);
  LLVMValueRef k1 = LLVMBuildNSWAdd(B, k0, lk_i64(E, EDGE), "");
  LLVMBasicBlockRef klatch = LLVMGetInsertBlock(B);
  LLVMAddIncoming(k0, &k1, &klatch, 1);
  LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntSLT, k1, T.depth, ""), kloop, kdone);
  LLVMMoveBasicBlockAfter(kdone, klatch);
  LLVMPositionBuilderAtEnd(B, kdone);

  epilogue(&T, row0, col0);
  LLVMValueRef next = LLVMBuildNUWAdd(B, tile, nctaid, "");
  LLVMBasicBlockRef tlatch = LLVMGetInsertBlock(B);
  LLVMAddIncoming(tile, &next, &tlatch, 1);
  LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntULT, next, tiles, ""), tile_bb, done);
  LLVMMoveBasicBlockAfter(done, tlatch);
  LLVMPositionBuilderAtEnd(B, done);
}
