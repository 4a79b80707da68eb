/* passes/pipeline.c - the graph passes in default order.
 *
 * ORDER: stable-lse first, so that autodiff differentiates the overflow-safe
 * form (the gradient of a naive log-sum-exp overflows even where its value
 * would not); it runs at -O0 too because it is about correct numbers, not
 * speed.  Then autodiff turns the model graph into the training step, the
 * simplifications clean up what it built, and dead-code elimination runs
 * last.
 */
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

const Pass nnc_graph_passes[] = {
    {"stable-lse", "rewrite log(sum(exp(x))) into the overflow-safe max + log(sum(exp(x - max)))", pass_stable_lse, 0},
    {"autodiff", "replace grad placeholders by reverse-mode gradients of the mean loss", pass_autodiff, 0},
    {"fold", "fold ops on scalar constants into constants", pass_fold, 1},
    {"algebra", "drop exact identities: x+0, x*1, x/1, neg(neg(x)), no-op reshapes and casts", pass_algebra, 1},
    {"cse", "merge nodes with the same op, attributes, type and operands", pass_cse, 1},
    {"dce", "remove nodes no output depends on", pass_dce, 0},
    {NULL, NULL, NULL, 0},
};

const Pass *pass_find(const char *name) {
  for (const Pass *p = nnc_graph_passes; p->name; p++)
    if (!strcmp(p->name, name)) return p;
  return NULL;
}
