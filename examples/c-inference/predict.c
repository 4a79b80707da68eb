/* examples/c-inference/predict.c - classifies the images of an IDX file with
 * the inference library of examples/mnist.nn (nnc --emit=lib; see README.md
 * and docs/library.md).
 *
 *   predict WEIGHTS IMAGES [--values]
 *
 * WEIGHTS is what the trainer's --save (or --checkpoint) wrote; IMAGES an
 * uncompressed IDX file of 28x28 unsigned bytes (t10k-images-idx3-ubyte).
 * Prints one line per image: the predicted class (the largest output), or
 * with --values every output value.  Needs only libc, libm and pthreads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist.h"

enum { BATCH = 256 };

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int main(int argc, char **argv) {
  int values = argc == 4 && !strcmp(argv[3], "--values");
  if (argc != 3 && !values) {
    fprintf(stderr, "usage: %s WEIGHTS IMAGES [--values]\n", argv[0]);
    return 2;
  }
  mnist_model *m = mnist_load(argv[1]);
  if (!m) {
    fprintf(stderr, "predict: error: %s\n", mnist_error());
    return 1;
  }
  FILE *f = fopen(argv[2], "rb");
  unsigned char head[16];
  if (!f || fread(head, 1, 16, f) != 16 || be32(head) != 0x00000803) {
    fprintf(stderr, "predict: error: %s: not an IDX file of unsigned-byte images\n", argv[2]);
    return 1;
  }
  long n = (long)be32(head + 4), k = (long)be32(head + 8) * (long)be32(head + 12);
  long in = mnist_input_size(), out = mnist_output_size();
  if (k != in) {
    fprintf(stderr, "predict: error: %s: images of %ld pixels; the model takes %ld\n", argv[2], k, in);
    return 1;
  }
  unsigned char *pix = malloc((size_t)(BATCH * in));
  float *x = malloc((size_t)(BATCH * in) * sizeof *x), *y = malloc((size_t)(BATCH * out) * sizeof *y);
  if (!pix || !x || !y) {
    fprintf(stderr, "predict: error: out of memory\n");
    return 1;
  }
  for (long s = 0; s < n; s += BATCH) {
    long b = n - s < BATCH ? n - s : BATCH;
    if (fread(pix, (size_t)in, (size_t)b, f) != (size_t)b) {
      fprintf(stderr, "predict: error: %s: the file ends before image %ld\n", argv[2], s);
      return 1;
    }
    for (long i = 0; i < b * in; i++) x[i] = pix[i] / 255.0f; /* the train block's scale: the caller's job */
    if (mnist_predict(m, x, b, y) != 0) {
      fprintf(stderr, "predict: error: %s\n", mnist_error());
      return 1;
    }
    for (long i = 0; i < b; i++) {
      const float *row = y + i * out;
      long best = 0;
      for (long j = 0; j < out; j++) {
        if (values) printf(j ? ",%.9g" : "%.9g", (double)row[j]);
        if (row[j] > row[best]) best = j;
      }
      if (values)
        putchar('\n');
      else
        printf("%ld\n", best);
    }
  }
  fclose(f);
  free(pix), free(x), free(y);
  mnist_free(m);
  return 0;
}
