/* runtime/generate.c - --generate: text from a model trained on text data
 * (see rt_generate in train.h).
 *
 * The model reads a window of `context` byte tokens and its output gives,
 * for every position, one logit per token.  Each new byte is drawn from
 * the softmax of the logits at the last filled position of the window
 * (divided by the temperature; temperature 0 takes the largest), appended,
 * and the window slides once it is full.  The positions after the last
 * filled one hold zeros: a causal model (attention with causal = true)
 * never reads them for the positions before.  One evaluation per byte,
 * through the engine's predict_batch (the forward pass the eval plan runs).
 */
#include "rng.h"
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A token from one position's logits: the largest at temperature 0, else a
 * draw from softmax(logits / temperature); p holds vocab doubles of room. */
static int pick(const float *logits, int64_t vocab, double temperature, RtRng *rng, double *p) {
  int64_t best = 0;
  for (int64_t v = 1; v < vocab; v++)
    if (logits[v] > logits[best]) best = v;
  if (temperature <= 0) return (int)best;
  double total = 0;
  for (int64_t v = 0; v < vocab; v++) total += p[v] = exp(((double)logits[v] - logits[best]) / temperature);
  double u = rt_rng_uniform(rng) * total;
  int64_t v = 0;
  while (v < vocab - 1 && (u -= p[v]) >= 0) v++;
  return (int)v;
}

int rt_generate(RtEngine *e, int64_t context, const RtGenerateOptions *g, FILE *out, const char *prog) {
  int64_t k = e->output_size, vocab = context > 0 ? k / context : 0;
  size_t plen = strlen(g->prompt);
  if (!e->predict_batch || context < 1 || k % context != 0 || vocab < 1) {
    rt_print_error(prog, "--generate needs a model whose output has one row of logits per input position (an input "
              "of %lld tokens, an output of %lld values)", (long long)context, (long long)k);
    return 1;
  }
  if (vocab > 256) {
    rt_print_error(prog, "--generate writes bytes, but the model's output has %lld values per position (at most 256)",
              (long long)vocab);
    return 1;
  }
  if (plen == 0) {
    rt_print_error(prog, "--generate needs a prompt of at least one byte to continue");
    return 1;
  }
  for (size_t i = 0; i < plen; i++)
    if ((unsigned char)g->prompt[i] >= vocab) {
      rt_print_error(prog, "byte %zu of the prompt (%d) is not one of the model's %lld tokens", i,
                (unsigned char)g->prompt[i], (long long)vocab);
      return 1;
    }
  float *x = calloc((size_t)context, sizeof *x), *logits = malloc((size_t)k * sizeof *logits);
  unsigned char *window = malloc((size_t)context);
  double *p = malloc((size_t)vocab * sizeof *p);
  if (!x || !logits || !window || !p) {
    free(x), free(logits), free(window), free(p);
    rt_print_error(prog, "out of memory");
    return 1;
  }
  /* The window starts with the prompt's last `context` bytes. */
  size_t from = plen > (size_t)context ? plen - (size_t)context : 0;
  int64_t filled = (int64_t)(plen - from);
  memcpy(window, g->prompt + from, (size_t)filled);
  RtRng rng;
  rt_rng_seed_stream(&rng, g->seed, "generate");
  int rc = fwrite(g->prompt, 1, plen, out) == plen ? 0 : 1;
  for (int64_t t = 0; t < g->tokens && rc == 0; t++) {
    for (int64_t i = 0; i < context; i++) x[i] = i < filled ? (float)window[i] : 0;
    if (e->predict_batch(e->self, x, 1, logits)) { /* reported */
      rc = 2;
      break;
    }
    int next = pick(logits + (filled - 1) * vocab, vocab, g->temperature, &rng, p);
    if (filled == context) memmove(window, window + 1, (size_t)--filled);
    window[filled++] = (unsigned char)next;
    if (fputc(next, out) == EOF) rc = 1;
    if (next == '\n' && fflush(out) != 0) rc = 1;
  }
  if (rc == 0 && (fputc('\n', out) == EOF || fflush(out) != 0)) rc = 1;
  if (rc == 1) rt_print_error(prog, "cannot write the generated text: %s", strerror(errno ? errno : EIO));
  free(x), free(logits), free(window), free(p);
  return rc ? 1 : 0;
}
