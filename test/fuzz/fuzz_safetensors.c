/* test/fuzz/fuzz_safetensors.c - the safetensors reader (runtime/
 * safetensors.c) and the checkpoint reader on top of it (runtime/
 * checkpoint.c): the input is written as DIR/checkpoint.safetensors, read
 * with rt_safetensors_read (every tensor's data touched), then with
 * rt_checkpoint_load (metadata) and rt_checkpoint_match against a fixed
 * two-tensor model.  An accepted file is written back and must read again.
 */
#include "fuzz_common.h"

#include "runtime/checkpoint.h"
#include "runtime/safetensors.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_make_dir();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write(RT_CKPT_FILE, data, size);
  RtSafetensors st;
  RtError err;
  if (rt_safetensors_read(path, &st, &err) == 0) {
    volatile float sink = 0;
    RtTensorRef *refs = calloc((size_t)st.n + 1, sizeof *refs);
    for (int i = 0; i < st.n; i++) {
      const RtStTensor *t = &st.tensors[i];
      if (t->end > t->begin) sink += t->data[0] + t->data[(t->end - t->begin) / 4 - 1];
      refs[i].name = t->name;
      refs[i].data = t->data;
      refs[i].rank = t->rank;
      memcpy(refs[i].dims, t->dims, sizeof refs[i].dims);
    }
    (void)sink;
    /* What the reader accepts, the writer writes and the reader reads back. */
    const char *copy = fuzz_write("copy.safetensors", "", 0);
    if (refs && rt_safetensors_write(copy, refs, st.n, NULL, &err) == 0) {
      RtSafetensors again;
      if (rt_safetensors_read(copy, &again, &err) != 0 || again.n != st.n) {
        fprintf(stderr, "fuzz_safetensors: a rewritten file does not read back: %s\n", err.msg);
        abort();
      }
      rt_safetensors_free(&again);
    }
    free(refs);
    rt_safetensors_free(&st);
  }
  RtCheckpoint c;
  if (rt_checkpoint_load(fuzz_dir, &c, &err) == 0) {
    RtCkptTensor t[2];
    memset(t, 0, sizeof t);
    t[0].ref.name = "h.w", t[0].ref.rank = 2, t[0].ref.dims[0] = 2, t[0].ref.dims[1] = 3;
    t[1].ref.name = "h.w/m", t[1].ref.rank = 0, t[1].state = true;
    double lr;
    if (rt_checkpoint_match(&c, "m", t, 2, &err) == 0) (void)rt_checkpoint_tensor(&c, "h.w");
    (void)rt_checkpoint_hyper(&c, "lr", &lr);
    rt_checkpoint_free(&c);
  }
  return 0;
}
