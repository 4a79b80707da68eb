/* codegen/cpu/gemm.c - a scheduled contraction (KGemm) as a packed,
 * register-blocked matrix product in LLVM IR.
 *
 * For the launch slice [begin, end) of rows i, in chunks (the whole slice,
 * or 4 mc rows when an epilogue follows, so the rows it reads are still in
 * cache):
 *
 *   for jc < n by nc:                      columns of C
 *     for pc < k by kc:                    depth (at least once: k = 0 gives C = 0)
 *       pack B[pc.., jc..] -> Bp           nr-wide slivers, k-major, zero-padded
 *                                          (a narrow B with unit column stride
 *                                          and no column edge is read in place)
 *       for ic < chunk by mc:
 *         pack A[ic.., pc..] -> Ap         mr-tall slivers, k-major, zero-padded
 *                                          (k-contiguous rows used by one column
 *                                          block only are read in place)
 *         for ir < mc by mr:               a sliver of Ap stays in L1
 *           for jr < nc by nr:             slivers of Bp stream from L2
 *             micro-kernel: mr x nr/vector vector accumulators; per step of
 *             k two vector loads of Bp, mr broadcasts of Ap, mr*nr/vector FMAs
 *             C tile = acc (pc = 0) or C tile + acc
 *   epilogue: for i in the chunk: (dot form: C[i,j] = f(C[i,j]) for each j)
 *             then the launch loop's remaining statements
 *
 * Swapped (KGemm.swap, for a narrow C: n = 10 logits would fill 10 of 16
 * lanes), the same loops compute the transposed product C^T = B^T A^T:
 * micro-tile rows run along j (packed from B into Ap), vector lanes along
 * the launch rows i (packed from A into Bp), and "columns" are the slice
 * [begin, end) of i.  The roles below are then those of C^T.
 *
 * Full tiles of a C with unit stride along the lanes are loaded and stored
 * as vectors; edge tiles (and a strided C) go through a small stack tile.  Ap and Bp are
 * thread-local arrays (one per module, sized for the largest schedule),
 * so packing allocates nothing and every pool thread has its own.
 *
 * The packing loops read the operand in the order its strides make
 * contiguous (k-contiguous A rows, j-contiguous B rows, or transposed), so
 * the input and weight gradients need no transposed copies.
 *
 * A batched product (KGemm.nbatch: attention's [h, t, d] @ [h, d, t], a
 * dense layer over [t, n]) runs the above for each launch iteration and
 * each index of its other batch axes, over all its rows, with the
 * operands' offsets there (G->off), then that iteration's epilogue.  When
 * its one batch axis is the launch loop and B stays along it (a dense
 * layer over each sample's rows: kgemm_rows_merge), chunks of iterations
 * run as one product over their rows instead, packing B once per chunk.
 */
#include "codegen/cpu/cpu.h"

#include "codegen/llvm/emit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ACC = 128 };

typedef struct Gm {
  LkEmit *E;
  LLVMBuilderRef B;
  const KGemm *g;
  LLVMTypeRef vty;            /* <vector x float> */
  LLVMValueRef pack_a, pack_b; /* thread-local arrays (their addresses in this thread) */
  LLVMValueRef tile;          /* [mr * nr] float alloca for edge tiles */
  LLVMValueRef kdim;          /* k as i64 (maybe times B) */
  bool swap;                  /* micro-tile rows along j, lanes along i (see the top) */
  LLVMValueRef off[3];        /* a batched product: A's, B's and C's offsets at the current batch index */
} Gm;

/* ---- arithmetic ----------------------------------------------------------------------------- */

static LLVMValueRef imin(Gm *G, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(G->B, LLVMBuildICmp(G->B, LLVMIntSLT, a, b, ""), a, b, "");
}
static LLVMValueRef add(Gm *G, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(G->B, a, b, ""); }
static LLVMValueRef sub(Gm *G, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWSub(G->B, a, b, ""); }
static LLVMValueRef mul(Gm *G, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(G->B, a, b, ""); }
static LLVMValueRef mulc(Gm *G, LLVMValueRef a, int64_t c) { return c == 1 ? a : mul(G, a, lk_i64(G->E, c)); }
static LLVMValueRef c64(Gm *G, int64_t v) { return lk_i64(G->E, v); }

static LLVMValueRef f32_at(Gm *G, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(G->B, G->E->f32, base, &off, 1, "");
}

/* &op(i, j, k) (at the current batch index) */
static LLVMValueRef operand_at(Gm *G, const KGemmOperand *o, LLVMValueRef i, LLVMValueRef j, LLVMValueRef k) {
  LLVMValueRef off = c64(G, o->offset);
  LLVMValueRef boff = G->off[o == &G->g->a ? 0 : o == &G->g->b ? 1 : 2];
  if (boff) off = add(G, off, boff);
  if (i && o->si) off = add(G, off, mulc(G, i, o->si));
  if (j && o->sj) off = add(G, off, mulc(G, j, o->sj));
  if (k && o->sk) off = add(G, off, mulc(G, k, o->sk));
  return f32_at(G, G->E->base[o->buf], off);
}

static LLVMValueRef load_f32(Gm *G, LLVMValueRef p) {
  LLVMValueRef v = LLVMBuildLoad2(G->B, G->E->f32, p, "");
  LLVMSetAlignment(v, 4);
  return v;
}

static void store_f32(Gm *G, LLVMValueRef v, LLVMValueRef p) { LLVMSetAlignment(LLVMBuildStore(G->B, v, p), 4); }

/* &C at micro-tile row `row` and lane column `col` (C^T's when swapped). */
static LLVMValueRef c_at(Gm *G, LLVMValueRef row, LLVMValueRef col) {
  return G->swap ? operand_at(G, &G->g->c, col, row, NULL) : operand_at(G, &G->g->c, row, col, NULL);
}

/* ---- packing -------------------------------------------------------------------------------- */

/* One operand's block into k-major slivers `width` wide:
 *   dst[(s kcur + kk) width + r] = X(x0 + s width + r, pc + kk), 0 for x >= xend
 * into base: Ap (rows, width mr) or a block of Bp (lanes, width nr).  Unswapped, Ap holds A
 * with x its row i and Bp holds B with x its column j; swapped, Ap holds B
 * (x = j) and Bp holds A (x = i).  The loops read along whichever of x and
 * k the operand is contiguous in: along k, one sliver's rows at a time;
 * along x, one whole row of the block per kk (reading each row's slivers
 * in turn would touch one cache line per row and step, a strided stream
 * the prefetcher follows badly); a full sliver without clamps, as vectors
 * where the stride is 1. */
static void pack_scalar(Gm *G, const KGemmOperand *o, bool is_a, LLVMValueRef dst_base, LLVMValueRef x,
                        LLVMValueRef xend, LLVMValueRef k, LLVMValueRef dst) {
  LLVMValueRef inside = LLVMBuildICmp(G->B, LLVMIntSLT, x, xend, "");
  LLVMValueRef xc = imin(G, x, sub(G, xend, c64(G, 1)));
  LLVMValueRef v = load_f32(G, operand_at(G, o, is_a ? xc : NULL, is_a ? NULL : xc, k));
  v = LLVMBuildSelect(G->B, inside, v, lk_f32(G->E, 0), "");
  store_f32(G, v, f32_at(G, dst_base, dst));
}

static void pack(Gm *G, bool rows, LLVMValueRef base, LLVMValueRef x0, LLVMValueRef len, LLVMValueRef xend,
                 LLVMValueRef pc, LLVMValueRef kcur) {
  const KGemm *g = G->g;
  bool is_a = rows != G->swap; /* the operand packed is A */
  const KGemmOperand *o = is_a ? &g->a : &g->b;
  int width = rows ? g->mr : g->nr;
  int64_t sx = is_a ? o->si : o->sj;
  LkLoop ls, lr, lk;
  if (llabs(o->sk) <= llabs(sx)) { /* along k */
    LLVMValueRef s0 = lk_for_begin(G->E, &ls, c64(G, 0), len, width, "pack.s");
    LLVMValueRef r = lk_for_begin(G->E, &lr, c64(G, 0), c64(G, width), 1, "pack.x");
    LLVMValueRef kk = lk_for_begin(G->E, &lk, c64(G, 0), kcur, 1, "pack.k");
    LLVMValueRef dst = add(G, add(G, mul(G, s0, kcur), mulc(G, kk, width)), r);
    pack_scalar(G, o, is_a, base, add(G, add(G, x0, s0), r), xend, add(G, pc, kk), dst);
    lk_for_end(G->E, &lk);
    lk_for_end(G->E, &lr);
    lk_for_end(G->E, &ls);
    return;
  }
  /* along x: kk outer, the row's slivers inner */
  LLVMValueRef kk = lk_for_begin(G->E, &lk, c64(G, 0), kcur, 1, "pack.k");
  LLVMValueRef k = add(G, pc, kk);
  LLVMValueRef s0 = lk_for_begin(G->E, &ls, c64(G, 0), len, width, "pack.s");
  LLVMValueRef x = add(G, x0, s0);
  LLVMValueRef dst = add(G, mul(G, s0, kcur), mulc(G, kk, width)); /* (s kcur + kk) width */
  /* a full sliver: no clamps; with unit stride, vectors of w and the rest singly */
  int w = sx == 1 ? g->vector : 1;
  LLVMBasicBlockRef full = lk_block(G->E, "pack.full"), edge = lk_block(G->E, "pack.edge");
  LLVMBasicBlockRef join = lk_block(G->E, "pack.next");
  LLVMBuildCondBr(G->B, LLVMBuildICmp(G->B, LLVMIntSLE, add(G, x, c64(G, width)), xend, ""), full, edge);
  LLVMPositionBuilderAtEnd(G->B, full);
  for (int r = 0; r < width;) {
    int n = width - r >= w ? w : 1;
    LLVMTypeRef ty = n > 1 ? G->vty : G->E->f32;
    LLVMValueRef xr = add(G, x, c64(G, r));
    LLVMValueRef val = LLVMBuildLoad2(G->B, ty, operand_at(G, o, is_a ? xr : NULL, is_a ? NULL : xr, k), "");
    LLVMSetAlignment(val, 4);
    LLVMSetAlignment(LLVMBuildStore(G->B, val, f32_at(G, base, add(G, dst, c64(G, r)))), 4);
    r += n;
  }
  LLVMBuildBr(G->B, join);
  LLVMPositionBuilderAtEnd(G->B, edge);
  LLVMValueRef r = lk_for_begin(G->E, &lr, c64(G, 0), c64(G, width), 1, "pack.x");
  pack_scalar(G, o, is_a, base, add(G, x, r), xend, k, add(G, dst, r));
  lk_for_end(G->E, &lr);
  LLVMBuildBr(G->B, join);
  LLVMPositionBuilderAtEnd(G->B, join);
  lk_for_end(G->E, &ls);
  lk_for_end(G->E, &lk);
}

/* ---- the micro-kernel ----------------------------------------------------------------------- */

static LLVMValueRef splat(Gm *G, LLVMValueRef x) {
  LLVMValueRef v = LLVMBuildInsertElement(G->B, LLVMGetUndef(G->vty), x, lk_i32(G->E, 0), "");
  LLVMValueRef mask = LLVMConstNull(LLVMVectorType(G->E->i32, (unsigned)G->g->vector));
  return LLVMBuildShuffleVector(G->B, v, LLVMGetUndef(G->vty), mask, "");
}

/* An edge tile of a C with contiguous lanes: each valid row's vectors
 * with lanes past nvalid masked off (vmaskmovps on AVX2). */
static void edge_masked(Gm *G, const LLVMValueRef *acc, LLVMValueRef i0, LLVMValueRef j0, LLVMValueRef mvalid,
                        LLVMValueRef nvalid, LLVMValueRef first, LLVMBasicBlockRef done) {
  LkEmit *E = G->E;
  const KGemm *g = G->g;
  int mr = g->mr, w = g->vector, nv = g->nr / w;
  LLVMTypeRef i32v = LLVMVectorType(E->i32, (unsigned)w);
  LLVMValueRef lanes = LLVMBuildTrunc(G->B, nvalid, E->i32, "");
  lanes = LLVMBuildShuffleVector(G->B, LLVMBuildInsertElement(G->B, LLVMGetUndef(i32v), lanes, lk_i32(E, 0), ""),
                                 LLVMGetUndef(i32v), LLVMConstNull(i32v), "");
  LLVMValueRef mask[MAX_ACC];
  for (int v = 0; v < nv; v++) {
    LLVMValueRef iota[64];
    for (int l = 0; l < w; l++) iota[l] = lk_i32(E, v * w + l);
    mask[v] = LLVMBuildICmp(G->B, LLVMIntSLT, LLVMConstVector(iota, (unsigned)w), lanes, "");
  }
  LLVMTypeRef tys[2] = {G->vty, E->ptr};
  LLVMValueRef zero = LLVMConstNull(G->vty), align = lk_i32(E, 4);
  for (int r = 0; r < mr; r++) {
    LLVMBasicBlockRef row = lk_block(E, "mk.row");
    LLVMBuildCondBr(G->B, LLVMBuildICmp(G->B, LLVMIntSLT, c64(G, r), mvalid, ""), row, done);
    LLVMPositionBuilderAtEnd(G->B, row);
    for (int v = 0; v < nv; v++) {
      LLVMValueRef p = c_at(G, add(G, i0, c64(G, r)), add(G, j0, c64(G, (int64_t)v * w)));
      LLVMValueRef largs[4] = {p, align, mask[v], zero};
      LLVMValueRef old = lk_intrinsic(E, "llvm.masked.load", tys, 2, largs, 4);
      LLVMValueRef val = LLVMBuildSelect(G->B, first, acc[r * nv + v], LLVMBuildFAdd(G->B, old, acc[r * nv + v], ""), "");
      LLVMValueRef sargs[4] = {val, p, align, mask[v]};
      lk_intrinsic(E, "llvm.masked.store", tys, 2, sargs, 4);
    }
  }
}

/* An edge tile of a strided C (a swapped product): through the stack tile. */
static void edge_tile(Gm *G, const LLVMValueRef *acc, LLVMValueRef i0, LLVMValueRef j0, LLVMValueRef mvalid,
                      LLVMValueRef nvalid, LLVMValueRef first) {
  const KGemm *g = G->g;
  int w = g->vector, nv = g->nr / w, nacc = g->mr * nv;
  for (int a = 0; a < nacc; a++) {
    int r = a / nv, v = a % nv;
    LLVMValueRef p = f32_at(G, G->tile, c64(G, (int64_t)r * g->nr + (int64_t)v * w));
    LLVMSetAlignment(LLVMBuildStore(G->B, acc[a], p), 4);
  }
  LkLoop lr, lc;
  LLVMValueRef r = lk_for_begin(G->E, &lr, c64(G, 0), mvalid, 1, "mk.r");
  LLVMValueRef c = lk_for_begin(G->E, &lc, c64(G, 0), nvalid, 1, "mk.c");
  LLVMValueRef t = load_f32(G, f32_at(G, G->tile, add(G, mulc(G, r, g->nr), c)));
  LLVMValueRef cp = c_at(G, add(G, i0, r), add(G, j0, c));
  LLVMValueRef old = LLVMBuildSelect(G->B, first, lk_f32(G->E, 0), load_f32(G, cp), "");
  store_f32(G, LLVMBuildFAdd(G->B, old, t, ""), cp);
  lk_for_end(G->E, &lc);
  lk_for_end(G->E, &lr);
}

/* C[i0 .. i0 + mvalid, j0 .. j0 + nvalid] = (first ? 0 : C) + A rows x B lanes
 * (i0 and j0: micro-tile row and lane coordinates, C^T's when swapped).
 * Row r's value at step kk is arow[r][kk astride] (the packed sliver, or A
 * where it lies), the lanes' bp[kk bstride ...]. */
static void micro(Gm *G, LLVMValueRef *arow, int64_t astride, LLVMValueRef bp, int64_t bstride, LLVMValueRef kcur,
                  LLVMValueRef i0, LLVMValueRef j0, LLVMValueRef mvalid, LLVMValueRef nvalid, LLVMValueRef first) {
  LkEmit *E = G->E;
  const KGemm *g = G->g;
  int mr = g->mr, w = g->vector, nv = g->nr / w, nacc = mr * nv;
  LLVMValueRef acc[MAX_ACC], zero = LLVMConstNull(G->vty);

  /* the k loop, accumulators in phis */
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(G->B);
  LLVMBasicBlockRef body = lk_block(E, "mk.k"), exit = lk_block(E, "mk.done");
  LLVMBuildCondBr(G->B, LLVMBuildICmp(G->B, LLVMIntSGT, kcur, c64(G, 0), ""), body, exit);
  LLVMPositionBuilderAtEnd(G->B, body);
  LLVMValueRef kk = LLVMBuildPhi(G->B, E->i64, "kk");
  LLVMValueRef z0 = c64(G, 0);
  LLVMAddIncoming(kk, &z0, &pre, 1);
  LLVMValueRef phi[MAX_ACC];
  for (int a = 0; a < nacc; a++) {
    phi[a] = LLVMBuildPhi(G->B, G->vty, "acc");
    LLVMAddIncoming(phi[a], &zero, &pre, 1);
  }
  LLVMValueRef bv[MAX_ACC];
  LLVMValueRef brow = mulc(G, kk, bstride);
  for (int v = 0; v < nv; v++) {
    LLVMValueRef p = f32_at(G, bp, add(G, brow, c64(G, (int64_t)v * w)));
    bv[v] = LLVMBuildLoad2(G->B, G->vty, p, "");
    LLVMSetAlignment(bv[v], g->pack_b ? (unsigned)(4 * w) : 4);
  }
  LLVMValueRef aoff = mulc(G, kk, astride);
  LLVMTypeRef vty = G->vty;
  for (int r = 0; r < mr; r++) {
    LLVMValueRef x = splat(G, load_f32(G, f32_at(G, arow[r], aoff)));
    for (int v = 0; v < nv; v++) {
      LLVMValueRef args[3] = {x, bv[v], phi[r * nv + v]};
      acc[r * nv + v] = lk_intrinsic(E, "llvm.fma", &vty, 1, args, 3);
    }
  }
  LLVMValueRef next = LLVMBuildNSWAdd(G->B, kk, c64(G, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(G->B);
  LLVMBuildCondBr(G->B, LLVMBuildICmp(G->B, LLVMIntSLT, next, kcur, ""), body, exit);
  LLVMAddIncoming(kk, &next, &latch, 1);
  for (int a = 0; a < nacc; a++) LLVMAddIncoming(phi[a], &acc[a], &latch, 1);
  LLVMMoveBasicBlockAfter(exit, latch);
  LLVMPositionBuilderAtEnd(G->B, exit);
  for (int a = 0; a < nacc; a++) {
    LLVMValueRef out = LLVMBuildPhi(G->B, G->vty, "acc.out");
    LLVMAddIncoming(out, &zero, &pre, 1);
    LLVMAddIncoming(out, &acc[a], &latch, 1);
    acc[a] = out;
  }

  /* C += or = the tile */
  LLVMBasicBlockRef full_bb = NULL, edge_bb = lk_block(E, "mk.edge"), done = lk_block(E, "mk.stored");
  if ((G->swap ? g->c.si : g->c.sj) == 1) {
    full_bb = lk_block(E, "mk.full");
    LLVMValueRef full = LLVMBuildAnd(G->B, LLVMBuildICmp(G->B, LLVMIntEQ, mvalid, c64(G, mr), ""),
                                     LLVMBuildICmp(G->B, LLVMIntEQ, nvalid, c64(G, g->nr), ""), "");
    LLVMBuildCondBr(G->B, full, full_bb, edge_bb);
    LLVMPositionBuilderAtEnd(G->B, full_bb);
    LLVMBasicBlockRef upd = lk_block(E, "mk.update"), put = lk_block(E, "mk.put");
    LLVMValueRef ptr[MAX_ACC];
    for (int r = 0; r < mr; r++)
      for (int v = 0; v < nv; v++)
        ptr[r * nv + v] = c_at(G, add(G, i0, c64(G, r)), add(G, j0, c64(G, (int64_t)v * w)));
    LLVMBasicBlockRef from = LLVMGetInsertBlock(G->B);
    LLVMBuildCondBr(G->B, first, put, upd);
    LLVMPositionBuilderAtEnd(G->B, upd);
    LLVMValueRef sum[MAX_ACC];
    for (int a = 0; a < nacc; a++) {
      LLVMValueRef old = LLVMBuildLoad2(G->B, G->vty, ptr[a], "");
      LLVMSetAlignment(old, 4);
      sum[a] = LLVMBuildFAdd(G->B, old, acc[a], "");
    }
    LLVMBuildBr(G->B, put);
    LLVMMoveBasicBlockAfter(put, upd);
    LLVMPositionBuilderAtEnd(G->B, put);
    LLVMValueRef val[MAX_ACC];
    for (int a = 0; a < nacc; a++) {
      val[a] = LLVMBuildPhi(G->B, G->vty, "");
      LLVMAddIncoming(val[a], &acc[a], &from, 1);
      LLVMAddIncoming(val[a], &sum[a], &upd, 1);
    }
    for (int a = 0; a < nacc; a++) LLVMSetAlignment(LLVMBuildStore(G->B, val[a], ptr[a]), 4);
    LLVMBuildBr(G->B, done);
  } else {
    LLVMBuildBr(G->B, edge_bb);
  }

  LLVMMoveBasicBlockAfter(edge_bb, LLVMGetInsertBlock(G->B));
  LLVMPositionBuilderAtEnd(G->B, edge_bb);
  if ((G->swap ? g->c.si : g->c.sj) == 1)
    edge_masked(G, acc, i0, j0, mvalid, nvalid, first, done);
  else
    edge_tile(G, acc, i0, j0, mvalid, nvalid, first);
  LLVMBuildBr(G->B, done);
  LLVMMoveBasicBlockAfter(done, LLVMGetInsertBlock(G->B));
  LLVMPositionBuilderAtEnd(G->B, done);
}

/* ---- the product over rows [i0, iend) ------------------------------------------------------- */

/* KGemm.pack_b_whole: block (jc, pc) of B, kcur x round_up(ncur, nr), lies
 * at jc k + pc round_up(ncur, nr) in Bp (blocks of one jc follow each other
 * along pc; a jc's blocks take k x nc at most). */
static LLVMValueRef whole_b_offset(Gm *G, LLVMValueRef jc, LLVMValueRef ncur, LLVMValueRef pc) {
  int64_t nr = G->g->nr;
  LLVMValueRef width = mulc(G, LLVMBuildSDiv(G->B, add(G, ncur, c64(G, nr - 1)), c64(G, nr), ""), nr);
  return add(G, mulc(G, jc, G->g->k), mul(G, pc, width));
}

/* All of B into Bp, block by block as product() reads it. */
static void pack_whole_b(Gm *G) {
  const KGemm *g = G->g;
  LkLoop ljc, lpc;
  LLVMValueRef cend = c64(G, g->n);
  LLVMValueRef jc = lk_for_begin(G->E, &ljc, c64(G, 0), cend, g->nc, "wb.jc");
  LLVMValueRef ncur = imin(G, c64(G, g->nc), sub(G, cend, jc));
  LLVMValueRef pc = lk_for_begin(G->E, &lpc, c64(G, 0), c64(G, g->k), g->kc, "wb.pc");
  LLVMValueRef kcur = imin(G, c64(G, g->kc), sub(G, c64(G, g->k), pc));
  pack(G, false, f32_at(G, G->pack_b, whole_b_offset(G, jc, ncur, pc)), jc, ncur, cend, pc, kcur);
  lk_for_end(G->E, &lpc);
  lk_for_end(G->E, &ljc);
}

/* Micro-tile rows run over [r0, rend) and lanes over [c0, cend): rows i and
 * columns j, or swapped, j and i. */
static void product(Gm *G, LLVMValueRef i0, LLVMValueRef iend) {
  const KGemm *g = G->g;
  LLVMValueRef r0 = i0, rend = iend, c0 = c64(G, 0), cend = c64(G, g->n);
  if (G->swap) r0 = c64(G, 0), rend = c64(G, g->n), c0 = i0, cend = iend;
  /* k = 0 still runs one (empty) depth block, which stores C = 0 */
  LLVMValueRef khi = LLVMBuildSelect(G->B, LLVMBuildICmp(G->B, LLVMIntSGT, G->kdim, c64(G, 0), ""), G->kdim,
                                     c64(G, 1), "");
  LkLoop ljc, lpc, lic, lir, ljr;
  LLVMValueRef jc = lk_for_begin(G->E, &ljc, c0, cend, g->nc, "jc");
  LLVMValueRef ncur = imin(G, c64(G, g->nc), sub(G, cend, jc));
  LLVMValueRef pc = lk_for_begin(G->E, &lpc, c64(G, 0), khi, g->kc, "pc");
  LLVMValueRef kcur = imin(G, c64(G, g->kc), sub(G, G->kdim, pc));
  kcur = LLVMBuildSelect(G->B, LLVMBuildICmp(G->B, LLVMIntSLT, kcur, c64(G, 0), ""), c64(G, 0), kcur, "");
  LLVMValueRef first = LLVMBuildICmp(G->B, LLVMIntEQ, pc, c64(G, 0), "first");
  LLVMValueRef bblock = G->pack_b;
  if (g->pack_b_whole)
    bblock = f32_at(G, G->pack_b, whole_b_offset(G, jc, ncur, pc));
  else if (g->pack_b)
    pack(G, false, bblock, jc, ncur, cend, pc, kcur);
  LLVMValueRef ic = lk_for_begin(G->E, &lic, r0, rend, g->mc, "ic");
  LLVMValueRef mcur = imin(G, c64(G, g->mc), sub(G, rend, ic));
  if (g->pack_a) pack(G, true, G->pack_a, ic, mcur, rend, pc, kcur);
  LLVMValueRef ir = lk_for_begin(G->E, &lir, c64(G, 0), mcur, g->mr, "ir");
  LLVMValueRef mvalid = imin(G, c64(G, g->mr), sub(G, mcur, ir));
  /* each row's first value: in the packed sliver, or A's row (the edge's
   * missing rows read the last valid one; their results are not stored) */
  LLVMValueRef arow[MAX_ACC];
  LLVMValueRef ap = g->pack_a ? f32_at(G, G->pack_a, mul(G, ir, kcur)) : NULL;
  for (int r = 0; r < g->mr; r++) {
    if (g->pack_a) {
      arow[r] = f32_at(G, ap, c64(G, r));
      continue;
    }
    LLVMValueRef row = add(G, add(G, ic, ir), imin(G, c64(G, r), sub(G, mvalid, c64(G, 1))));
    arow[r] = operand_at(G, &g->a, row, NULL, pc);
  }
  LLVMValueRef jr = lk_for_begin(G->E, &ljr, c64(G, 0), ncur, g->nr, "jr");
  LLVMValueRef nvalid = imin(G, c64(G, g->nr), sub(G, ncur, jr));
  LLVMValueRef bp = g->pack_b ? f32_at(G, bblock, mul(G, jr, kcur))
                              : operand_at(G, &g->b, NULL, add(G, jc, jr), pc); /* B in place: rows sk apart */
  micro(G, arow, g->pack_a ? g->mr : g->a.sk, bp, g->pack_b ? g->nr : g->b.sk, kcur, add(G, ic, ir), add(G, jc, jr),
        mvalid, nvalid, first);
  lk_for_end(G->E, &ljr);
  lk_for_end(G->E, &lir);
  lk_for_end(G->E, &lic);
  lk_for_end(G->E, &lpc);
  lk_for_end(G->E, &ljc);
}

/* The rows [i0, iend) after their product: the contraction's value f(t)
 * (t read back from C), then the launch loop's remaining statements, per row. */
static void epilogue(Gm *G, const KStmt *l0, LLVMValueRef i0, LLVMValueRef iend) {
  LkEmit *E = G->E;
  const KGemm *g = G->g;
  const KStmt *c = g->contract;
  LkLoop li, lj;
  LLVMValueRef i = lk_for_begin(G->E, &li, i0, iend, 1, "ep.i");
  E->vars[g->var_i] = i;
  if (!kgemm_plain_store(g)) {
    LLVMValueRef j = lk_for_begin(G->E, &lj, c64(G, 0), c64(G, g->n), 1, "ep.j");
    E->vars[g->var_j] = j;
    LLVMBuildStore(G->B, load_f32(G, operand_at(G, &g->c, i, j, NULL)), E->temps[c->temp]);
    KStmt store = *c; /* C[i,j] = f(t): the contraction's store alone */
    store.kind = KS_STORE;
    lk_stmt(E, &store);
    E->vars[g->var_j] = NULL;
    lk_for_end(G->E, &lj);
  }
  lk_stmts(E, l0->body + 1, l0->nbody - 1);
  E->vars[g->var_i] = NULL;
  lk_for_end(G->E, &li);
}

/* ---- batched products ------------------------------------------------------------------------ */

/* Opens loops over the batch axes 1.. (axis 0, the launch loop, is open:
 * lv[0]) and points G->off at the operands' matrices there. */
static void batch_begin(Gm *G, LkLoop *ll, LLVMValueRef *lv) {
  const KGemm *g = G->g;
  for (int q = 1; q < g->nbatch; q++) lv[q] = lk_for_begin(G->E, &ll[q], c64(G, 0), c64(G, g->l[q]), 1, "l");
  const KGemmOperand *ops[3] = {&g->a, &g->b, &g->c};
  for (int o = 0; o < 3; o++) {
    LLVMValueRef off = c64(G, 0);
    for (int q = 0; q < g->nbatch; q++)
      if (ops[o]->sl[q]) off = add(G, off, mulc(G, lv[q], ops[o]->sl[q]));
    G->off[o] = off;
  }
}

static void batch_end(Gm *G, LkLoop *ll) {
  for (int q = G->g->nbatch - 1; q >= 1; q--) lk_for_end(G->E, &ll[q]);
  G->off[0] = G->off[1] = G->off[2] = NULL;
}

/* Launch iteration lv[0]'s epilogue, after its product: the contraction's
 * value f(t) at each of its outputs (dot form), then the launch loop's
 * other statements. */
static void launch_epilogue(Gm *G, const KStmt *l0, LLVMValueRef *lv) {
  LkEmit *E = G->E;
  const KGemm *g = G->g;
  const KStmt *c = g->contract;
  LkLoop ll[KGEMM_MAX_BATCH], li, lj;
  E->vars[g->var_l[0]] = lv[0];
  if (!kgemm_plain_store(g)) {
    batch_begin(G, ll, lv);
    for (int q = 1; q < g->nbatch; q++) E->vars[g->var_l[q]] = lv[q];
    LLVMValueRef i = lk_for_begin(E, &li, c64(G, 0), c64(G, g->m), 1, "ep.i");
    LLVMValueRef j = lk_for_begin(E, &lj, c64(G, 0), c64(G, g->n), 1, "ep.j");
    E->vars[g->var_i] = i;
    E->vars[g->var_j] = j;
    LLVMBuildStore(G->B, load_f32(G, operand_at(G, &g->c, i, j, NULL)), E->temps[c->temp]);
    KStmt store = *c; /* C[l, i, j] = f(t): the contraction's store alone */
    store.kind = KS_STORE;
    lk_stmt(E, &store);
    E->vars[g->var_i] = E->vars[g->var_j] = NULL;
    lk_for_end(E, &lj);
    lk_for_end(E, &li);
    for (int q = 1; q < g->nbatch; q++) E->vars[g->var_l[q]] = NULL;
    batch_end(G, ll);
  }
  lk_stmts(E, l0->body + 1, l0->nbody - 1);
  E->vars[g->var_l[0]] = NULL;
}

/* A batched product over the launch iterations [begin, end): for each, the
 * product of every batch index, then its epilogue. */
static void batched(Gm *G, const KStmt *l0, LLVMValueRef begin, LLVMValueRef end, bool has_epilogue) {
  const KGemm *g = G->g;
  LkLoop ll[KGEMM_MAX_BATCH];
  LLVMValueRef lv[KGEMM_MAX_BATCH];
  lv[0] = lk_for_begin(G->E, &ll[0], begin, end, 1, "l0");
  batch_begin(G, ll, lv);
  product(G, c64(G, 0), c64(G, g->m));
  batch_end(G, ll);
  if (has_epilogue) launch_epilogue(G, l0, lv);
  lk_for_end(G->E, &ll[0]);
}

/* kgemm_rows_merge: the launch iterations [begin, end) in chunks, each one
 * product over the chunk's rows (B packed once per chunk, not once per
 * iteration), then each iteration's epilogue while the chunk's C is in
 * cache. */
static void merged(Gm *G, const KStmt *l0, LLVMValueRef begin, LLVMValueRef end, bool has_epilogue) {
  const KGemm *g = G->g;
  int64_t rows = g->swap ? g->nc : 4 * (int64_t)g->mc, chunk = rows / g->m > 1 ? rows / g->m : 1;
  LkLoop lch, ll;
  LLVMValueRef s0 = lk_for_begin(G->E, &lch, begin, end, chunk, "chunk");
  LLVMValueRef s1 = imin(G, add(G, s0, c64(G, chunk)), end);
  product(G, mulc(G, s0, g->m), mulc(G, s1, g->m));
  if (has_epilogue) {
    LLVMValueRef lv[KGEMM_MAX_BATCH] = {lk_for_begin(G->E, &ll, s0, s1, 1, "l0")};
    launch_epilogue(G, l0, lv);
    lk_for_end(G->E, &ll);
  }
  lk_for_end(G->E, &lch);
}

/* ---- entry points --------------------------------------------------------------------------- */

static LLVMValueRef tls_array(LkEmit *E, const char *name, int64_t floats) {
  LLVMValueRef gv = LLVMGetNamedGlobal(E->mod, name);
  if (gv) return gv;
  LLVMTypeRef ty = LLVMArrayType2(E->f32, (uint64_t)floats);
  gv = LLVMAddGlobal(E->mod, ty, name);
  LLVMSetInitializer(gv, LLVMConstNull(ty));
  LLVMSetLinkage(gv, LLVMInternalLinkage);
  LLVMSetThreadLocal(gv, 1);
  LLVMSetAlignment(gv, 64);
  return gv;
}

void cpu_gemm_declare(LkEmit *E, const KProgram *p, const uint32_t *which, uint32_t n) {
  int64_t a = 0, b = 0;
  for (uint32_t i = 0; i < n; i++) {
    const KGemm *g = p->kernels[which ? which[i] : i].gemm;
    if (!g) continue;
    if ((int64_t)g->mc * g->kc > a) a = (int64_t)g->mc * g->kc;
    if ((int64_t)g->nc * g->kc > b) b = (int64_t)g->nc * g->kc;
    if (g->pack_b_whole && kgemm_whole_b_floats(g) > b) b = kgemm_whole_b_floats(g);
  }
  if (!a) return;
  tls_array(E, "nnc.gemm.pack_a", a);
  tls_array(E, "nnc.gemm.pack_b", b);
}

void cpu_gemm_emit(LkEmit *E, const Kernel *k, LLVMValueRef begin, LLVMValueRef end) {
  const KGemm *g = k->gemm;
  if (g->mr * (g->nr / g->vector) > MAX_ACC) LK_FAIL(E, "micro-tile %d x %d is too large", g->mr, g->nr);
  if (g->swap && (!g->pack_b || !g->pack_a)) LK_FAIL(E, "%s", "a swapped product packs both operands");
  if (g->mr > MAX_ACC) LK_FAIL(E, "micro-tile of %d rows is too tall", g->mr);
  Gm G = {E, E->b, g, LLVMVectorType(E->f32, (unsigned)g->vector), NULL, NULL, NULL, NULL, g->swap, {NULL}};
  LLVMTypeRef ptr = E->ptr;
  LLVMValueRef ga = LLVMGetNamedGlobal(E->mod, "nnc.gemm.pack_a"), gb = LLVMGetNamedGlobal(E->mod, "nnc.gemm.pack_b");
  if (!ga || !gb) LK_FAIL(E, "%s", "no packing buffers were declared");
  G.pack_a = lk_intrinsic(E, "llvm.threadlocal.address", &ptr, 1, &ga, 1);
  G.pack_b = lk_intrinsic(E, "llvm.threadlocal.address", &ptr, 1, &gb, 1);
  G.tile = LLVMBuildArrayAlloca(E->b, E->f32, c64(&G, (int64_t)g->mr * g->nr), "tile");
  LLVMSetAlignment(G.tile, 64);
  G.kdim = lk_extent(E, g->k, g->k_batched);

  const KStmt *l0 = k->body[0];
  bool has_epilogue = !kgemm_plain_store(g) || l0->nbody > 1;
  if (g->pack_b_whole) pack_whole_b(&G);
  if (kgemm_rows_merge(g)) {
    merged(&G, l0, begin, end, has_epilogue);
    return;
  }
  if (g->nbatch) {
    batched(&G, l0, begin, end, has_epilogue);
    return;
  }
  if (!has_epilogue) {
    product(&G, begin, end);
    return;
  }
  /* rows of C per chunk: few enough to be in cache for the epilogue */
  int64_t chunk = g->swap ? g->nc : 4 * (int64_t)g->mc;
  LkLoop lch;
  LLVMValueRef c0 = lk_for_begin(G.E, &lch, begin, end, chunk, "chunk");
  LLVMValueRef cend = imin(&G, add(&G, c0, c64(&G, chunk)), end);
  product(&G, c0, cend);
  epilogue(&G, l0, c0, cend);
  lk_for_end(G.E, &lch);
}
