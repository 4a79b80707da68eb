/* test/E2E/Inputs/lib-generate.c - greedy text generation through the
 * inference library of a byte-level language model named `gpt` (nnc
 * --emit=lib): the window arithmetic of the trainer's --generate at
 * temperature 0 (runtime/generate.c), so the two write the same bytes.
 *
 *   lib-generate WEIGHTS PROMPT TOKENS
 *   lib-generate WEIGHTS --fraction     (predicts a window holding 0.5: prints the refusal)
 */
#include "gpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[2], "--fraction") == 0) {
    gpt_model *m = gpt_load(argv[1]);
    float *x = m ? calloc((size_t)gpt_input_size(), sizeof *x) : NULL;
    float *y = m ? malloc((size_t)gpt_output_size() * sizeof *y) : NULL;
    if (!x || !y) return 1;
    x[1] = 0.5f;
    int rc = gpt_predict(m, x, 1, y);
    printf("rc=%d %s\n", rc, gpt_error());
    free(x), free(y);
    gpt_free(m);
    return 0;
  }
  if (argc != 4) {
    fprintf(stderr, "usage: %s WEIGHTS PROMPT TOKENS\n", argv[0]);
    return 2;
  }
  gpt_model *m = gpt_load(argv[1]);
  if (!m) {
    fprintf(stderr, "%s\n", gpt_error());
    return 1;
  }
  long context = gpt_input_size(), vocab = gpt_output_size() / context, tokens = atol(argv[3]);
  const char *prompt = argv[2];
  size_t plen = strlen(prompt), from = plen > (size_t)context ? plen - (size_t)context : 0;
  float *x = calloc((size_t)context, sizeof *x), *logits = malloc((size_t)(context * vocab) * sizeof *logits);
  unsigned char *window = malloc((size_t)context);
  long filled = (long)(plen - from);
  memcpy(window, prompt + from, (size_t)filled);
  fputs(prompt, stdout);
  for (long t = 0; t < tokens; t++) {
    for (long i = 0; i < context; i++) x[i] = i < filled ? (float)window[i] : 0;
    if (gpt_predict(m, x, 1, logits) != 0) {
      fprintf(stderr, "%s\n", gpt_error());
      return 1;
    }
    const float *row = logits + (filled - 1) * vocab;
    long best = 0;
    for (long v = 1; v < vocab; v++)
      if (row[v] > row[best]) best = v;
    if (filled == context) memmove(window, window + 1, (size_t)--filled);
    window[filled++] = (unsigned char)best;
    putchar((int)best);
  }
  putchar('\n');
  free(x), free(logits), free(window);
  gpt_free(m);
  return 0;
}
