/* test/fuzz/fuzz_idx.c - the IDX parser (runtime/idx.c), raw and gzipped,
 * on files in memory (rt_idx_parse_mem: what rt_idx_load runs on the two
 * files it reads).
 *
 * Input layout: byte 0 = flags (bit 0: the images file is gzipped, bit 1:
 * the labels file is, so zlib decodes those bytes; bit 2: expect 784
 * features and labels below 10; bit 3: f32 labels), bytes 1-2 = the length
 * L of the images file (little-endian), then L bytes of images and the rest
 * as the labels file.
 */
#include "fuzz_common.h"

#include "runtime/data.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  unsigned flags = data[0];
  size_t split = (size_t)data[1] | (size_t)data[2] << 8;
  data += 3, size -= 3;
  if (split > size) split = size;
  bool igz = flags & 1, lgz = flags & 2;
  RtMemFile images = {igz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte", data, split, igz};
  RtMemFile labels = {lgz ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte", data + split, size - split, lgz};
  RtDataExpect expect = {784, (flags & 8) ? RT_LABEL_F32 : RT_LABEL_I32, 10, 0};
  RtDataExpect *ex = NULL;
  if (flags & 4) ex = &expect;
  else if (flags & 8) ex = &(RtDataExpect){0, RT_LABEL_F32, 0};
  RtDataset d;
  RtError err;
  if (rt_idx_parse_mem(&images, &labels, 1.0 / 255, ex, &d, &err) == 0) {
    if (d.n > 0 && d.features > 0) { /* touch the first and last sample */
      volatile float sink = d.x[0] + d.x[d.n * d.features - 1];
      sink += d.yi ? (float)d.yi[d.n - 1] : d.yf[d.n - 1];
      (void)sink;
    }
    rt_data_free(&d);
  } else if (!err.msg[0]) {
    fprintf(stderr, "fuzz_idx: an error without a message\n");
    abort();
  }
  return 0;
}
