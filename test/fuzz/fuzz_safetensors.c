/* test/fuzz/fuzz_safetensors.c - the safetensors reader and writer
 * (runtime/safetensors.c) on files in memory, and the checkpoint reader on
 * top of them (runtime/checkpoint.c).
 *
 * The input is read with rt_safetensors_read_mem (what rt_safetensors_read
 * runs on the file's bytes; every tensor's data touched).  A file it
 * accepts is written again with rt_safetensors_write_mem, which must read
 * back with the same tensors (names, shapes, bits).  Only an accepted file
 * can be a checkpoint: that one is also written to DIR/checkpoint.safetensors,
 * where rt_safetensors_read (the file reader) must accept it too, and loaded
 * with rt_checkpoint_load (the metadata), then rt_checkpoint_match against a
 * fixed two-tensor model.  Refused inputs never touch the disk: the file
 * readers would refuse them at the same check.
 */
#include "fuzz_common.h"

#include "runtime/checkpoint.h"
#include "runtime/safetensors.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_make_dir();
  return 0;
}

static void fail(const char *what, const RtError *err) {
  fprintf(stderr, "fuzz_safetensors: %s: %s\n", what, err ? err->msg : "");
  abort();
}

/* What the reader accepts, the writer writes and the reader reads back. */
static void round_trip(const RtSafetensors *st) {
  RtError err;
  RtTensorRef *refs = calloc((size_t)st->n + 1, sizeof *refs);
  if (!refs) abort();
  for (int i = 0; i < st->n; i++) {
    const RtStTensor *t = &st->tensors[i];
    refs[i].name = t->name;
    refs[i].data = t->data;
    refs[i].rank = t->rank;
    memcpy(refs[i].dims, t->dims, sizeof refs[i].dims);
  }
  void *buf;
  size_t len;
  if (rt_safetensors_write_mem("copy.safetensors", refs, st->n, NULL, &buf, &len, &err) == 0) {
    RtSafetensors again;
    if (rt_safetensors_read_mem("copy.safetensors", buf, len, &again, &err) != 0) fail("a rewritten file does not read back", &err);
    if (again.n != st->n) fail("a rewritten file has another tensor count", NULL);
    for (int i = 0; i < st->n; i++) {
      const RtStTensor *a = &st->tensors[i], *b = &again.tensors[i];
      if (strcmp(a->name, b->name) || a->rank != b->rank || memcmp(a->dims, b->dims, sizeof a->dims) ||
          a->end - a->begin != b->end - b->begin || (a->end > a->begin && memcmp(a->data, b->data, a->end - a->begin)))
        fail("a rewritten tensor differs", NULL);
    }
    rt_safetensors_free(&again);
    free(buf);
  }
  free(refs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  RtSafetensors st;
  RtError err;
  if (rt_safetensors_read_mem(RT_CKPT_FILE, data, size, &st, &err) != 0) {
    if (!err.msg[0]) fail("an error without a message", NULL);
    return 0;
  }
  volatile float sink = 0;
  for (int i = 0; i < st.n; i++) {
    const RtStTensor *t = &st.tensors[i];
    if (t->end > t->begin) sink += t->data[0] + t->data[(t->end - t->begin) / 4 - 1];
  }
  (void)sink;
  round_trip(&st);

  /* The file reader takes the same steps, reading as it goes: it must agree. */
  const char *path = fuzz_write(RT_CKPT_FILE, data, size);
  int n = st.n;
  rt_safetensors_free(&st);
  if (rt_safetensors_read(path, &st, &err) != 0) fail("the file reader refuses what the memory reader accepts", &err);
  if (st.n != n) fail("the file reader finds another tensor count", NULL);
  rt_safetensors_free(&st);
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
