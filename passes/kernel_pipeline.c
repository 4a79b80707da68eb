/* passes/kernel_pipeline.c - the kernel passes by name (pass.h).
 *
 * ORDER: fuse, then memplan: fusion changes which kernel touches which
 * temporary, so the memory plan is made for the fused program (fuse drops
 * any plan it finds).  The rest run only when named: each target's backend
 * takes those steps itself (the cpu backend schedule-cpu then
 * expand-contractions of what it did not plan; the opencl and gpu backends
 * schedule-ndrange, whose first step is hoist-free-axes).  Passes that move
 * statements drop the CPU schedule's plans (KGemm, direct plans), which
 * point into them.
 */
#include "passes/lower.h"
#include "passes/pass.h"

#include <string.h>

static bool kpass_fuse(KProgram *p, const KPassOptions *o) { return lower_fuse(p, o->separate_contractions); }

static bool kpass_memplan(KProgram *p, const KPassOptions *o) {
  memplan(p, o->batch > 0 ? o->batch : 1);
  return true;
}

static bool kpass_schedule_cpu(KProgram *p, const KPassOptions *o) { return schedule_cpu(p, &o->cpu); }

static bool kpass_schedule_ndrange(KProgram *p, const KPassOptions *o) {
  schedule_cpu_clear(p);
  NdSchedule s;
  ndrange_schedule(p, &o->ndrange, &s);
  ndrange_schedule_free(&s);
  return true;
}

/* The contractions the CPU's plans compute stay contractions (as in the cpu backend). */
static bool is_planned(const KStmt *s, void *kernel) {
  const Kernel *k = kernel;
  return (k->gemm && k->gemm->contract == s) || s->direct.vector > 0;
}

static bool kpass_expand(KProgram *p, const KPassOptions *o) {
  (void)o;
  for (uint32_t i = 0; i < p->nkernels; i++) kernel_expand_contractions(p, &p->kernels[i], is_planned, &p->kernels[i]);
  return true;
}

static bool kpass_hoist(KProgram *p, const KPassOptions *o) {
  (void)o;
  schedule_cpu_clear(p);
  for (uint32_t i = 0; i < p->nkernels; i++) kernel_hoist_free_axes(p, &p->kernels[i]);
  return true;
}

const KPass nnc_kernel_passes[] = {
    {"fuse", "fuse kernels along their launch loops, merge loops, forward stored temps, drop unread ones", kpass_fuse,
     1, NULL},
    {"memplan", "give temporaries memory slots, sharing a slot where lifetimes do not overlap", kpass_memplan, 0, NULL},
    {"schedule-cpu",
     "plan packed matrix products and their tiles, direct plans for other contractions (the cpu target; --cpu, "
     "--schedule)",
     kpass_schedule_cpu, -1, "cpu"},
    {"schedule-ndrange",
     "shape kernels for NDRange launches: free axes out, nests collapsed into the launch range, tiles picked",
     kpass_schedule_ndrange, -1, NULL},
    {"expand-contractions", "write each contraction (but those schedule-cpu planned) as the loops it means",
     kpass_expand, -1, NULL},
    {"hoist-free-axes", "move each contraction's free axes out into loops around it", kpass_hoist, -1, NULL},
    {NULL, NULL, NULL, 0, NULL},
};

const KPass *kpass_find(const char *name) {
  for (const KPass *p = nnc_kernel_passes; p->name; p++)
    if (!strcmp(p->name, name)) return p;
  return NULL;
}
