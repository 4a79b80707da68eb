/* test/Inputs/infer-api.c - the inference library's calls, for
 * test/E2E/inference-lib.test: built against examples/mnist.nn's library.
 *
 *   infer-api WEIGHTS IMAGES   refusals (NULL pointers, n <= 0, no weights
 *                              file), then two threads, each with its own
 *                              model, predicting the same images at once:
 *                              each must give the single-threaded values
 *   infer-api WEIGHTS          only loads: prints NAME_error() on failure
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnist.h"

enum { N = 100, ROUNDS = 20 };

static float x[N * 784];
static float want[N * 10];
static const char *weights;

static void *worker(void *arg) {
  mnist_model *m = mnist_load(weights);
  float *y = malloc(sizeof want);
  int bad = !m || !y;
  for (int r = 0; r < ROUNDS && !bad; r++) {
    long n = 1 + (r * 37 + (int)(long)arg * 11) % N; /* sizes vary: the buffers grow */
    bad = mnist_predict(m, x, n, y) != 0 || memcmp(y, want, (size_t)n * 10 * sizeof(float)) != 0;
  }
  free(y);
  mnist_free(m);
  return (void *)(long)bad;
}

int main(int argc, char **argv) {
  weights = argv[1];
  mnist_model *m = mnist_load(weights);
  if (!m) {
    printf("load: NULL: %s\n", mnist_error());
    return 1;
  }
  if (argc < 3) return 0;
  FILE *f = fopen(argv[2], "rb");
  unsigned char pix[16 + N * 784];
  if (!f || fread(pix, 1, sizeof pix, f) != sizeof pix) return 2;
  fclose(f);
  for (int i = 0; i < N * 784; i++) x[i] = pix[16 + i] / 255.0f;
  printf("sizes: %ld %ld\n", mnist_input_size(), mnist_output_size());
  float y[10];
  printf("n=0: %d %s\n", mnist_predict(m, x, 0, y), mnist_error());
  printf("n=-3: %d %s\n", mnist_predict(m, x, -3, y), mnist_error());
  printf("x=NULL: %d %s\n", mnist_predict(m, NULL, 1, y), mnist_error());
  printf("y=NULL: %d %s\n", mnist_predict(m, x, 1, NULL), mnist_error());
  printf("m=NULL: %d %s\n", mnist_predict(NULL, x, 1, y), mnist_error());
  printf("path=NULL: %s %s\n", mnist_load(NULL) ? "model" : "NULL", mnist_error());
  if (mnist_predict(m, x, N, want) != 0) return 3;
  pthread_t t[2];
  for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  for (int i = 0; i < 2; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    printf("thread %d: %s\n", i, bad ? "differs" : "same");
  }
  mnist_free(m);
  return 0;
}
