/* test/Inputs/two-models.c - two models' inference libraries (mnist and
 * mlp2, both with kernels named k0_matmul, ...) in one program: each must
 * run its own kernels.
 *
 *   two-models MNIST_WEIGHTS MLP2_WEIGHTS IMAGES
 *
 * IMAGES: an uncompressed IDX file of 28x28 unsigned bytes.  Prints, per
 * image, "A,B": the class each model predicts (the largest output). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlp2.h"
#include "mnist.h"

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static long argmax(const float *row, long k) {
  long best = 0;
  for (long j = 1; j < k; j++)
    if (row[j] > row[best]) best = j;
  return best;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  mnist_model *a = mnist_load(argv[1]);
  mlp2_model *b = mlp2_load(argv[2]);
  if (!a || !b) {
    fprintf(stderr, "two-models: error: %s\n", !a ? mnist_error() : mlp2_error());
    return 1;
  }
  FILE *f = fopen(argv[3], "rb");
  unsigned char head[16];
  if (!f || fread(head, 1, 16, f) != 16) return 1;
  long n = (long)be32(head + 4), in = mnist_input_size();
  unsigned char *pix = malloc((size_t)(n * in));
  float *x = malloc((size_t)(n * in) * sizeof *x);
  float *ya = malloc((size_t)(n * mnist_output_size()) * sizeof *ya);
  float *yb = malloc((size_t)(n * mlp2_output_size()) * sizeof *yb);
  if (!pix || !x || !ya || !yb || fread(pix, (size_t)in, (size_t)n, f) != (size_t)n) return 1;
  for (long i = 0; i < n * in; i++) x[i] = pix[i] / 255.0f;
  if (mnist_predict(a, x, n, ya) || mlp2_predict(b, x, n, yb)) {
    fprintf(stderr, "two-models: error: %s %s\n", mnist_error(), mlp2_error());
    return 1;
  }
  for (long i = 0; i < n; i++)
    printf("%ld,%ld\n", argmax(ya + i * mnist_output_size(), mnist_output_size()),
           argmax(yb + i * mlp2_output_size(), mlp2_output_size()));
  fclose(f);
  free(pix), free(x), free(ya), free(yb);
  mnist_free(a), mlp2_free(b);
  return 0;
}
