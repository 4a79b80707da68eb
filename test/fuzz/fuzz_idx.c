/* test/fuzz/fuzz_idx.c - the IDX loader (runtime/idx.c), raw and gzipped.
 *
 * Input layout: byte 0 = flags (bit 0: write the files gzipped-named
 * "*.gz", so zlib decodes the bytes; bit 1: load the t10k split; bit 2:
 * expect 784 features and labels below 10), bytes 1-2 = the length L of
 * the images file (little-endian), then L bytes of images and the rest as
 * the labels file.  Both files go into a private directory.
 */
#include "fuzz_common.h"

#include "runtime/data.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_make_dir();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  unsigned flags = data[0];
  size_t split = (size_t)data[1] | (size_t)data[2] << 8;
  data += 3, size -= 3;
  if (split > size) split = size;
  bool gz = flags & 1, test = flags & 2;
  const char *pre = test ? "t10k" : "train";
  char images[64], labels[64], other[64];
  snprintf(images, sizeof images, "%s-images-idx3-ubyte%s", pre, gz ? ".gz" : "");
  snprintf(labels, sizeof labels, "%s-labels-idx1-ubyte%s", pre, gz ? ".gz" : "");
  /* the raw file wins over the .gz one: remove the variant not written */
  snprintf(other, sizeof other, "%s-images-idx3-ubyte%s", pre, gz ? "" : ".gz");
  fuzz_remove(other);
  snprintf(other, sizeof other, "%s-labels-idx1-ubyte%s", pre, gz ? "" : ".gz");
  fuzz_remove(other);
  fuzz_write(images, data, split);
  fuzz_write(labels, data + split, size - split);
  RtDataExpect expect = {784, RT_LABEL_I32, 10};
  RtDataset d;
  RtError err;
  if (rt_idx_load(fuzz_dir, test, 1.0 / 255, (flags & 4) ? &expect : NULL, &d, &err) == 0) {
    if (d.n > 0 && d.features > 0) { /* touch the first and last sample */
      volatile float sink = d.x[0] + d.x[d.n * d.features - 1];
      (void)sink;
    }
    rt_data_free(&d);
  }
  return 0;
}
