/* runtime/infer.c - the inference library's runtime (see infer.h and
 * docs/library.md): weights in, predictions out, on the calling thread.
 *
 * A model holds its parameters and states (read from the weights file as
 * the trainer's --load reads them: rt_weights_load, rt_weights_match) and
 * the other buffers at a batch capacity that grows to the largest n asked
 * for.  A prediction writes the inputs, zero labels (the loss the eval
 * plan also computes is never read) and the scalars with the training
 * flag 0, calls each launch of the eval plan's native kernels once over
 * its whole range, as the cpu device does on one thread, and copies the
 * output buffer out.  Nothing is shared between models but the code, so
 * one model per thread needs no locks.
 */
#include "infer.h"

#include "checkpoint.h"
#include "init.h"
#include "rng.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { INFER_ALIGN = 64, INFER_MAX_ARGS = 64 };

struct RtInfer {
  const RtModelDesc *m;
  void **mem;        /* [nbufs]; temps of one slot point at one allocation */
  bool *owns;        /* [nbufs]: mem[i] is this buffer's own allocation */
  int64_t bcap;      /* batch capacity of the batched buffers (0: none yet) */
  float *scalars;    /* [nscalars] */
  int nscalars;
};

static _Thread_local char infer_msg[1024];

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(infer_msg, sizeof infer_msg, fmt, ap);
  va_end(ap);
}

const char *rt_infer_error(void) { return infer_msg; }

static int64_t numel(const RtBufDesc *b) {
  int64_t n = 1;
  for (int d = 0; d < b->rank; d++) n *= b->dims[d];
  return n;
}

long rt_infer_input_size(const RtModelDesc *m) { return m->input_buf >= 0 ? (long)numel(&m->bufs[m->input_buf]) : 0; }

long rt_infer_output_size(const RtModelDesc *m) {
  return m->output_buf >= 0 ? (long)numel(&m->bufs[m->output_buf]) : 0;
}

/* Bytes of buffer b at batch cap (at least 4); 0 when that overflows. */
static size_t buf_bytes(const RtBufDesc *b, int64_t cap) {
  int64_t n = numel(b), per = b->batched ? cap : 1;
  if (n < 0 || (per > 0 && n > INT64_MAX / 4 / per)) return 0;
  int64_t bytes = n * per * 4;
  return bytes > 0 ? (size_t)bytes : 4;
}

static void *zalloc(size_t bytes) {
  size_t size = (bytes + INFER_ALIGN - 1) / INFER_ALIGN * INFER_ALIGN;
  void *p = size >= bytes ? aligned_alloc(INFER_ALIGN, size) : NULL;
  if (p) memset(p, 0, size);
  return p;
}

static bool persistent(const RtBufDesc *b) { return b->kind == RT_BUF_PARAM || b->kind == RT_BUF_STATE; }

static void free_buffers(RtInfer *s, bool all) {
  for (int i = 0; i < s->m->nbufs; i++) {
    if (!all && persistent(&s->m->bufs[i])) continue;
    if (s->owns[i]) free(s->mem[i]);
    s->mem[i] = NULL, s->owns[i] = false;
  }
}

/* Every buffer but the parameters and states at batch capacity cap (zeroed:
 * the labels stay 0); temps of one slot share the largest. */
static bool alloc_buffers(RtInfer *s, int64_t cap) {
  const RtModelDesc *m = s->m;
  free_buffers(s, false);
  s->bcap = 0;
  for (int i = 0; i < m->nbufs; i++) {
    const RtBufDesc *b = &m->bufs[i];
    if (s->mem[i] || persistent(b)) continue;
    bool shared = b->kind == RT_BUF_TEMP && b->slot >= 0;
    size_t bytes = buf_bytes(b, cap);
    for (int j = i + 1; shared && bytes && j < m->nbufs; j++)
      if (m->bufs[j].kind == RT_BUF_TEMP && m->bufs[j].slot == b->slot) {
        size_t bj = buf_bytes(&m->bufs[j], cap);
        bytes = bj == 0 ? 0 : bj > bytes ? bj : bytes;
      }
    if (b->kind == RT_BUF_SCALARS && bytes && bytes < (size_t)s->nscalars * 4) bytes = (size_t)s->nscalars * 4;
    if (bytes == 0) {
      fail("buffer '%s' is too large for %lld samples", b->name, (long long)cap);
      return false;
    }
    if (!(s->mem[i] = zalloc(bytes))) {
      fail("out of memory allocating %zu bytes for '%s' (%lld samples)", bytes, b->name, (long long)cap);
      return false;
    }
    s->owns[i] = true;
    for (int j = i + 1; shared && j < m->nbufs; j++)
      if (m->bufs[j].kind == RT_BUF_TEMP && m->bufs[j].slot == b->slot) s->mem[j] = s->mem[i];
  }
  s->bcap = cap;
  return true;
}

/* The parameters and states from the weights file c (checked against m);
 * states the file lacks, and optimizer states ("NAME/SLOT"), from their
 * initializers, as the trainer's --load leaves them. */
static bool load_tensors(RtInfer *s, const RtCheckpoint *c, const RtCkptTensor *t, const int *bufs, int n) {
  const RtModelDesc *m = s->m;
  for (int i = 0; i < n; i++) {
    const RtBufDesc *b = &m->bufs[bufs[i]];
    size_t bytes = buf_bytes(b, 1);
    if (!bytes || !(s->mem[bufs[i]] = zalloc(bytes))) {
      fail("out of memory loading '%s'", b->name);
      return false;
    }
    s->owns[bufs[i]] = true;
    const float *v = rt_checkpoint_tensor(c, b->name);
    if (t[i].state && (!v || strchr(b->name, '/'))) {
      if (b->init_kind != RT_INIT_NONE) rt_init_buffer(b, (uint64_t)m->seed, s->mem[bufs[i]]);
    } else if (numel(b) > 0) {
      memcpy(s->mem[bufs[i]], v, (size_t)numel(b) * sizeof(float));
    }
  }
  return true;
}

RtInfer *rt_infer_load(const RtModelDesc *m, const char *weights_path) {
  infer_msg[0] = 0;
  if (!m || m->abi < 3 || m->code_kind != RT_MODEL_CODE_NATIVE || (m->nkernels > 0 && !m->native) ||
      m->input_buf < 0 || m->output_buf < 0) {
    fail("the model description is not one of a CPU model with an output (built by another nnc?)");
    return NULL;
  }
  if (!weights_path) {
    fail("no weights file given (NULL)");
    return NULL;
  }
  RtInfer *s = calloc(1, sizeof *s);
  RtCkptTensor *t = calloc((size_t)m->nbufs + 1, sizeof *t);
  int *bufs = calloc((size_t)m->nbufs + 1, sizeof *bufs);
  if (s) {
    s->m = m;
    s->mem = calloc((size_t)m->nbufs + 1, sizeof *s->mem);
    s->owns = calloc((size_t)m->nbufs + 1, sizeof *s->owns);
    s->nscalars = 4 + m->nhypers; /* step, batch, hypers, training, random key */
    if (m->scalars_buf >= 0 && numel(&m->bufs[m->scalars_buf]) > s->nscalars)
      s->nscalars = (int)numel(&m->bufs[m->scalars_buf]);
    s->scalars = calloc((size_t)s->nscalars, sizeof *s->scalars);
  }
  if (!s || !t || !bufs || !s->mem || !s->owns || !s->scalars) {
    fail("out of memory");
    free(t), free(bufs);
    rt_infer_free(s);
    return NULL;
  }
  int n = rt_model_tensors(m, t, bufs);
  RtCheckpoint c;
  RtError err;
  bool ok = rt_weights_load(weights_path, &c, &err) == 0 && rt_weights_match(&c, m->name, t, n, &err) == 0;
  if (!ok) fail("%s", err.msg);
  ok = ok && load_tensors(s, &c, t, bufs, n);
  rt_checkpoint_free(&c);
  free(t), free(bufs);
  if (!ok) {
    rt_infer_free(s);
    return NULL;
  }
  /* the eval plan's scalars: step 1 (as --predict after --load), the
   * hyper-parameters' defaults, training flag 0 (running statistics, no
   * dropout), the random key */
  s->scalars[0] = 1.0f;
  for (int i = 0; i < m->nhypers; i++) s->scalars[2 + i] = (float)m->hyper_values[i];
  s->scalars[3 + m->nhypers] = (float)rt_rng_key16((uint64_t)m->seed); /* dropout's key, as the trainer's */
  return s;
}

/* The input buffer from x: an i32 input (a text model's tokens) takes its
 * values as floats holding integers, converted here, as the trainer
 * converts the values its loaders give; anything else is refused, since
 * converting it would be undefined or would silently drop a fraction. */
static bool write_input(RtInfer *s, const float *x, long n) {
  const RtModelDesc *m = s->m;
  long k = rt_infer_input_size(m);
  if (m->bufs[m->input_buf].dtype != 1) {
    memcpy(s->mem[m->input_buf], x, (size_t)n * (size_t)k * sizeof(float));
    return true;
  }
  int32_t *to = s->mem[m->input_buf];
  for (long i = 0; i < n * k; i++) {
    if (!(x[i] >= -2147483648.0f && x[i] < 2147483648.0f) || x[i] != (float)(int32_t)x[i]) {
      fail("predict: value %ld of sample %ld is %g, but the input '%s' holds integers (i32)", i % k, i / k,
           (double)x[i], m->bufs[m->input_buf].name);
      return false;
    }
    to[i] = (int32_t)x[i];
  }
  return true;
}

int rt_infer_predict(RtInfer *s, const float *x, long n, float *y) {
  if (!s || !x || !y) {
    fail("predict: %s is NULL", !s ? "the model" : !x ? "the input x" : "the output y");
    return -1;
  }
  if (n <= 0) {
    fail("predict: %ld samples (expected at least 1)", n);
    return -1;
  }
  const RtModelDesc *m = s->m;
  if (n > s->bcap && !alloc_buffers(s, n)) return -1;
  if (!write_input(s, x, n)) return -1;
  if (m->scalars_buf >= 0) {
    s->scalars[1] = (float)n;
    memcpy(s->mem[m->scalars_buf], s->scalars, (size_t)s->nscalars * sizeof(float));
  }
  int64_t b = n;
  void *ptrs[INFER_MAX_ARGS];
  void *argv[INFER_MAX_ARGS + 2];
  for (int i = 0; i < m->neval; i++) {
    const RtLaunchDesc *l = &m->eval[i];
    if (l->nargs > INFER_MAX_ARGS || l->kernel < 0 || l->kernel >= m->nkernels) {
      fail("predict: launch %d of the eval plan is malformed", i);
      return -1;
    }
    for (int a = 0; a < l->nargs; a++) {
      ptrs[a] = s->mem[l->args[a]];
      argv[a] = &ptrs[a];
    }
    argv[l->nargs] = &b;
    argv[l->nargs + 1] = NULL;
    int64_t range = l->range * (l->range_batched ? b : 1);
    if (range > 0) m->native[l->kernel](argv, 0, range);
  }
  memcpy(y, s->mem[m->output_buf], (size_t)n * (size_t)rt_infer_output_size(m) * sizeof(float));
  return 0;
}

void rt_infer_free(RtInfer *s) {
  if (!s) return;
  if (s->mem && s->owns) free_buffers(s, true);
  free(s->mem);
  free(s->owns);
  free(s->scalars);
  free(s);
}
