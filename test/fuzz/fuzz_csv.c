/* test/fuzz/fuzz_csv.c - the CSV parser (runtime/csv.c) on a file in
 * memory (rt_csv_parse_mem: what rt_csv_load runs on the file it reads).
 *
 * Input layout: byte 0 picks the label column (0: the last, 1: named "y",
 * 2: index "0", 3: named "label") and whether labels are checked as i32
 * classes below 10 (bit 2) and the feature count as 3 (bit 3); the rest is
 * the file.  Batches are gathered from the result to touch every row.
 */
#include "fuzz_common.h"

#include "runtime/data.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const char *const labels[] = {NULL, "y", "0", "label"};
  unsigned flags = data[0];
  RtMemFile file = {"data.csv", data + 1, size - 1, false};
  RtDataExpect expect = {(flags & 8) ? 3 : 0, (flags & 4) ? RT_LABEL_I32 : RT_LABEL_F32, (flags & 4) ? 10 : 0, 0};
  RtDataset d;
  RtError err;
  if (rt_csv_parse_mem(&file, labels[flags & 3], 0.5, &expect, &d, &err) == 0) {
    if (d.n > 0 && d.n < 100000) {
      float *x = malloc((size_t)(d.features ? d.features : 1) * sizeof(float));
      int32_t y[1];
      for (int64_t i = 0; x && i < d.n; i++) rt_batch_gather(&d, NULL, i, 1, x, y);
      free(x);
    }
    rt_data_free(&d);
  } else if (!err.msg[0]) {
    fprintf(stderr, "fuzz_csv: an error without a message\n");
    abort();
  }
  return 0;
}
