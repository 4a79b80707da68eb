/* passes/cse.c - common subexpression elimination by hash-consing.
 *
 * Requires: a verified module.  Guarantees: no two nodes have the same op,
 * attributes (value, symbol, axes or permutation: whichever the op
 * carries), type and operands.  Every op is pure, so such nodes are one
 * value: a later duplicate is replaced by the first one, whose location is
 * kept.  This merges leaves too (the many `param @h.w` nodes elaboration
 * makes become one).  add, mul, eq and ne are commutative in IEEE
 * arithmetic, so `b + a` also merges with `a + b`.  Constants merge when
 * their values are the same bits (0 and -0 stay apart).
 *
 * Nodes are visited in order with their operands already merged, so whole
 * duplicated subgraphs collapse in one pass.  Lookups go through an
 * open-addressing hash table over the new nodes: linear time overall.
 *
 * Statistics: cse.merged (nodes replaced by an earlier equal node),
 * cse.probes (table slots examined: about 1.5 per node at load 1/2, which
 * tests check instead of timing the pass).
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

typedef struct Cse {
  uint32_t *slots;   /* new id + 1; 0 = empty */
  uint32_t mask;     /* capacity - 1 (a power of two) */
  long merged, probes;
} Cse;

static bool commutative(Op op) { return op == OP_ADD || op == OP_MUL || op == OP_EQ || op == OP_NE; }

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static uint64_t hash_node(const Node *n) {
  unsigned flags = ir_ops[n->op].flags;
  uint64_t h = mix((uint64_t)n->op, (uint64_t)n->type.dtype << 16 | (uint64_t)n->type.rank << 8 | n->type.batched);
  for (int i = 0; i < n->type.rank; i++) h = mix(h, (uint64_t)n->type.dims[i]);
  if (n->nargs == 2 && commutative(n->op)) {
    ValueId lo = n->args[0] < n->args[1] ? n->args[0] : n->args[1];
    h = mix(mix(h, lo), n->args[0] ^ n->args[1] ^ lo);
  } else {
    for (int i = 0; i < n->nargs; i++) h = mix(h, n->args[i]);
  }
  if (flags & OPF_VALUE) {
    uint64_t bits;
    memcpy(&bits, &n->attr.value, sizeof bits);
    h = mix(h, bits);
  }
  if (flags & OPF_SYM) h = mix(h, n->attr.sym);
  if (flags & OPF_AXES) h = mix(h, n->attr.axes);
  if (flags & OPF_PERM)
    for (int i = 0; i < n->type.rank; i++) h = mix(h, n->attr.perm[i]);
  if (flags & OPF_WINDOW)
    h = mix(h, (uint64_t)n->attr.win.size << 32 | (uint64_t)n->attr.win.stride << 16 | n->attr.win.pad);
  /* final avalanche (splitmix64) so the low bits index the table well */
  h ^= h >> 30, h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27, h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

static bool same_node(const Node *a, const Node *b) {
  if (a->op != b->op || a->nargs != b->nargs || !type_equal(&a->type, &b->type)) return false;
  bool args_equal = true;
  for (int i = 0; i < a->nargs; i++) args_equal &= a->args[i] == b->args[i];
  if (!args_equal && !(a->nargs == 2 && commutative(a->op) && a->args[0] == b->args[1] && a->args[1] == b->args[0]))
    return false;
  unsigned flags = ir_ops[a->op].flags;
  if ((flags & OPF_VALUE) && memcmp(&a->attr.value, &b->attr.value, sizeof a->attr.value)) return false;
  if ((flags & OPF_SYM) && a->attr.sym != b->attr.sym) return false;
  if ((flags & OPF_AXES) && a->attr.axes != b->attr.axes) return false;
  if ((flags & OPF_PERM) && memcmp(a->attr.perm, b->attr.perm, a->type.rank)) return false;
  if ((flags & OPF_WINDOW) && memcmp(&a->attr.win, &b->attr.win, sizeof a->attr.win)) return false;
  return true;
}

static ValueId cse_one(Rewrite *rw, ValueId id, Node *n, void *ctx) {
  (void)id;
  Cse *c = ctx;
  const Node *nodes = rw->m->nodes;
  uint32_t i = (uint32_t)hash_node(n) & c->mask;
  for (; c->slots[i]; i = (i + 1) & c->mask) {
    c->probes++;
    ValueId other = c->slots[i] - 1;
    if (same_node(&nodes[other], n)) {
      c->merged++;
      return other;
    }
  }
  ValueId v = rewrite_keep(rw, n);
  c->slots[i] = v + 1;
  return v;
}

bool pass_cse(Module *m) {
  Cse c;
  uint64_t cap = 16;
  while (cap < 2 * (uint64_t)m->nnodes) cap *= 2; /* load factor <= 1/2 */
  NNC_ASSERT(cap <= (uint64_t)1 << 32);
  c.slots = nnc_xcalloc(cap, sizeof *c.slots);
  c.mask = (uint32_t)(cap - 1);
  c.merged = c.probes = 0;
  rewrite_graph(m, cse_one, &c);
  free(c.slots);
  nnc_stat_add("cse", "merged", c.merged);
  nnc_stat_add("cse", "probes", c.probes);
  return true;
}
