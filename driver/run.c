/* driver/run.c - `nnc --run` and `nnc --gradcheck` (see run.h).
 *
 * --run: the module after the graph passes is the training step.  The
 * interpreter (f32, or f64 with --f64) runs it inside rt_train, the epoch
 * loop every compiled trainer shares, on the data the train block names.
 *
 * --gradcheck: the elaborated module is turned into a probe whose outputs
 * are the loss and the raw gradient of every parameter, differentiated by
 * the graph passes, and evaluated in f64 on a seeded random batch; each
 * gradient is compared with central differences of the mean loss.
 *
 * Both feed one input (the first SYM_INPUT) and at most one label: for
 * --run what the data loaders provide (ir_check_feeds), an f32 input and a
 * scalar label; --gradcheck also takes an i32 input and a label of any
 * shape (a token model's next token at each position), whose values it
 * draws in the range they index.  --gradcheck reads its batch from the
 * train block's data when it can, and fails on a parameter no gradient
 * reaches.
 */
#include "driver/run.h"

#include "driver/memory.h"

#include "codegen/interp/interp.h"
#include "support/diag.h"
#include "passes/pass.h"
#include "runtime/checkpoint.h"
#include "runtime/data.h"
#include "runtime/files.h"
#include "runtime/rng.h"
#include "runtime/safetensors.h"
#include "runtime/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared checks ------------------------------------------------------------------- */

/* The model's input and label symbols (label -1 when there is none), or
 * false after an error: one input (f32, or i32 whose values --gradcheck
 * draws itself) and at most one label. */
static bool model_inputs(const Module *m, const char *what, int64_t *xsym, int64_t *ysym) {
  int ninputs = 0, nlabels = 0;
  *xsym = *ysym = -1;
  for (uint32_t i = 0; i < m->nsyms; i++) {
    const Symbol *s = &m->syms[i];
    if (s->kind == SYM_INPUT && ninputs++ == 0) *xsym = i;
    if (s->kind == SYM_LABEL && nlabels++ == 0) *ysym = i;
  }
  if (ninputs != 1) {
    diag_error_plain("%s needs a model with exactly one input, found %d", what, ninputs);
    return false;
  }
  if (nlabels > 1) {
    diag_error_plain("%s needs a model with at most one label, found %d", what, nlabels);
    return false;
  }
  return true;
}

static int64_t count_kind(const Module *m, SymKind k) {
  int64_t n = 0;
  for (uint32_t i = 0; i < m->nsyms; i++) n += m->syms[i].kind == k;
  return n;
}

/* "lr, beta1, ..." : the hyper-parameters, for messages. */
static void hyper_list(const Module *m, char *buf, size_t len) {
  size_t o = 0;
  buf[0] = 0;
  for (uint32_t i = 0; i < m->nsyms && o < len; i++)
    if (m->syms[i].kind == SYM_HYPER)
      o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", m->syms[i].name);
}

/* --lr and --hyper NAME=VALUE. */
static bool apply_hypers(Interp *it, const Module *m, const Options *o) {
  char list[512];
  hyper_list(m, list, sizeof list);
  const char *opt = m->train.optimizer ? m->train.optimizer : "(none)";
  if (o->has_lr && !interp_set_hyper(it, "lr", o->lr)) {
    diag_error_plain("--lr: optimizer '%s' has no hyper-parameter 'lr'%s%s%s", opt, *list ? " (it has " : "", list,
                     *list ? ")" : "");
    return false;
  }
  for (int i = 0; i < o->nhypers; i++) {
    const char *eq = strchr(o->hypers[i], '=');
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(eq - o->hypers[i]), o->hypers[i]);
    if (!interp_set_hyper(it, name, strtod(eq + 1, NULL))) {
      diag_error_plain("--hyper: optimizer '%s' has no hyper-parameter '%s'%s%s%s", opt, name,
                       *list ? " (it has " : "", list, *list ? ")" : "");
      return false;
    }
  }
  return true;
}

/* The train block's data source (or --data) as the loaders take it, and
 * what the model expects of it. */
static void data_spec(const Module *m, const Options *o, int64_t xsym, int64_t ysym, int64_t max_bytes,
                      RtDataSpec *spec, RtDataExpect *expect) {
  const TrainSpec *t = &m->train;
  *spec = (RtDataSpec){t->data == DATA_IDX ? RT_DATA_IDX : t->data == DATA_TEXT ? RT_DATA_TEXT : RT_DATA_CSV,
                       o->data ? o->data : t->data_path, t->test_path, t->label, t->scale, t->context};
  *expect = (RtDataExpect){type_numel(&m->syms[xsym].type), t->data == DATA_IDX ? RT_LABEL_I32 : RT_LABEL_F32, 0,
                           max_bytes};
  if (ysym >= 0) {
    expect->label_type = m->syms[ysym].type.dtype == DT_I32 ? RT_LABEL_I32 : RT_LABEL_F32;
    expect->label_bound = expect->label_type == RT_LABEL_I32 ? m->syms[ysym].bound : 0;
  }
}

static uint64_t run_seed(const Module *m, const Options *o) {
  if (o->seed >= 0) return (uint64_t)o->seed;
  return m->train.present ? (uint64_t)m->train.seed : 0;
}

/* ---- --run ----------------------------------------------------------------------------- */

/* The interpreter as an RtEngine (self is a RunEngine): errors are
 * reported here, so rt_train only stops.  base_lr is the lr the run
 * started with, which the schedule scales. */
typedef struct RunEngine {
  Interp *it;
  double base_lr;
} RunEngine;

static int engine_step(void *self, const float *x, const void *y, int64_t n, double *loss, double *metrics) {
  Interp *it = ((RunEngine *)self)->it;
  if (interp_step(it, x, y, n, loss, metrics) == 0) return 0;
  diag_error_plain("%s", interp_error(it));
  return 1;
}

static int engine_eval(void *self, const float *x, const void *y, int64_t n, double *loss, double *metrics) {
  Interp *it = ((RunEngine *)self)->it;
  if (interp_eval(it, x, y, n, loss, metrics) == 0) return 0;
  diag_error_plain("%s", interp_error(it));
  return 1;
}

static void engine_scale_lr(void *self, double multiplier) {
  RunEngine *r = self;
  interp_set_hyper(r->it, "lr", r->base_lr * multiplier);
}

/* --save: every parameter, keyed by its path, as f32 safetensors. */
static bool save_params(Interp *it, const Module *m, const char *path) {
  int n = (int)count_kind(m, SYM_PARAM), k = 0;
  RtTensorRef *refs = nnc_xcalloc((size_t)(n ? n : 1), sizeof *refs);
  for (uint32_t i = 0; i < m->nsyms; i++) {
    const Symbol *s = &m->syms[i];
    if (s->kind != SYM_PARAM) continue;
    int64_t numel = type_numel(&s->type);
    float *data = nnc_xcalloc((size_t)(numel ? numel : 1), sizeof(float));
    const double *src = interp_symbol(it, i);
    for (int64_t j = 0; j < numel; j++) data[j] = (float)src[j];
    refs[k].name = s->name;
    refs[k].data = data;
    refs[k].rank = s->type.rank;
    for (int d = 0; d < s->type.rank; d++) refs[k].dims[d] = s->type.dims[d];
    k++;
  }
  char meta[256];
  int64_t step = interp_get_step(it) - 1;
  snprintf(meta, sizeof meta, "\"format\": \"nnc\", \"model\": \"%s\", \"step\": \"%lld\"", m->name, (long long)step);
  RtError err;
  bool ok = true;
  for (int i = 0; ok && i < k; i++) /* the last update's work, in f32 as saved */
    if (rt_tensor_finite(&refs[i], "parameter", step, &err) != 0) {
      diag_error_plain("%s; %s was not written", err.msg, path);
      ok = false;
    }
  if (ok && rt_safetensors_write(path, refs, n, meta, &err) != 0) {
    diag_error_plain("%s", err.msg);
    ok = false;
  }
  for (int i = 0; i < k; i++) free((void *)refs[i].data);
  free(refs);
  return ok;
}

/* ---- checkpoints (runtime/checkpoint.h) ------------------------------------------------- */

/* The interpreter's parameters and states as checkpoint tensors.  In f32
 * mode every value is a float held in a double, so f32 files are exact. */
typedef struct InterpCkpt {
  Interp *it;
  const Module *m;
  RtCkptTensor *t;
  uint32_t *syms;          /* [n]: the symbol of each tensor */
  float **host;            /* [n] */
  int n;
} InterpCkpt;

static void ckpt_init(InterpCkpt *c, Interp *it, const Module *m) {
  memset(c, 0, sizeof *c);
  c->it = it, c->m = m;
  c->t = nnc_xcalloc(m->nsyms + 1, sizeof *c->t);
  c->syms = nnc_xcalloc(m->nsyms + 1, sizeof *c->syms);
  c->host = nnc_xcalloc(m->nsyms + 1, sizeof *c->host);
  for (uint32_t i = 0; i < m->nsyms; i++) {
    const Symbol *s = &m->syms[i];
    if (s->kind != SYM_PARAM && s->kind != SYM_STATE) continue;
    RtCkptTensor *t = &c->t[c->n];
    t->ref.name = s->name;
    t->ref.rank = s->type.rank;
    for (int d = 0; d < s->type.rank; d++) t->ref.dims[d] = s->type.dims[d];
    t->state = s->kind == SYM_STATE;
    t->i32 = s->type.dtype == DT_I32;
    c->syms[c->n] = i;
    c->host[c->n++] = nnc_xcalloc((size_t)type_numel(&s->type) + 1, sizeof(float));
  }
}

static void ckpt_free(InterpCkpt *c) {
  for (int i = 0; i < c->n; i++) free(c->host[i]);
  free(c->host), free(c->syms), free(c->t);
}

/* An RtCkptGather: i32 values as their int32 bits, f32 ones as floats. */
static int ckpt_gather(void *self, RtCkptTensor *t, int n, RtError *err) {
  InterpCkpt *c = self;
  (void)err;
  for (int i = 0; i < n; i++) {
    const double *v = interp_symbol(c->it, c->syms[i]);
    for (int64_t k = 0, e = type_numel(&c->m->syms[c->syms[i]].type); k < e; k++) {
      if (t[i].i32) {
        int32_t iv = (int32_t)v[k];
        memcpy(&c->host[i][k], &iv, sizeof iv);
      } else {
        c->host[i][k] = (float)v[k];
      }
    }
    t[i].ref.data = c->host[i];
  }
  return 0;
}

/* Tensor i's values (i32 as their int32 bits) into its symbol. */
static void ckpt_put(InterpCkpt *c, int i, const float *src) {
  double *dst = interp_symbol(c->it, c->syms[i]);
  for (int64_t k = 0, e = type_numel(&c->m->syms[c->syms[i]].type); k < e; k++) {
    int32_t iv;
    memcpy(&iv, &src[k], sizeof iv);
    dst[k] = c->t[i].i32 ? (double)iv : (double)src[k];
  }
}

/* An RtCheckpointer's scatter: early stopping's best weights back into the symbols. */
static int ckpt_scatter(void *self, const RtCkptTensor *t, int n, RtError *err) {
  InterpCkpt *c = self;
  (void)err;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < c->n; j++)
      if (!strcmp(t[i].ref.name, c->t[j].ref.name)) ckpt_put(c, j, t[i].ref.data);
  return 0;
}

/* --resume: the checkpoint's hyper-parameters and tensors into the
 * interpreter, after checking it belongs to this model. */
static bool ckpt_restore(InterpCkpt *c, const RtCheckpoint *ck, const Options *o) {
  RtError err;
  if (rt_checkpoint_match(ck, c->m->name, c->t, c->n, &err) != 0) {
    diag_error_plain("%s", err.msg);
    return false;
  }
  if (o->seed >= 0 && (uint64_t)o->seed != ck->seed) {
    diag_error_plain("%s: the checkpoint was trained with --seed=%llu (it fixes the data order); --seed=%lld cannot "
                     "resume it", ck->path, (unsigned long long)ck->seed, (long long)o->seed);
    return false;
  }
  if (o->no_shuffle && ck->shuffle) {
    diag_error_plain("%s: the checkpoint was trained with shuffled data; --no-shuffle cannot resume it", ck->path);
    return false;
  }
  for (uint32_t i = 0; i < c->m->nsyms; i++) {
    double v;
    const Symbol *s = &c->m->syms[i];
    if (s->kind != SYM_HYPER) continue;
    if (!rt_checkpoint_hyper(ck, s->name, &v)) {
      diag_error_plain("%s: the checkpoint has no value for hyper-parameter '%s' (the optimizer differs)", ck->path,
                       s->name);
      return false;
    }
    interp_set_hyper(c->it, s->name, v);
  }
  for (int i = 0; i < c->n; i++) ckpt_put(c, i, rt_checkpoint_tensor(ck, c->t[i].ref.name));
  interp_set_step(c->it, ck->pos.steps + 1);
  return true;
}

int run_training(Module *m, const Options *o) {
  const TrainSpec *t = &m->train;
  if (!t->present) {
    diag_error_plain("model '%s' has no train block; --run needs one (data, optimizer, batch, epochs)", m->name);
    return 1;
  }
  if (t->data != DATA_IDX && t->data != DATA_CSV && t->data != DATA_TEXT) {
    diag_error_plain("the train block of '%s' names no data source", m->name);
    return 1;
  }
  /* The compiler refused already what the data cannot feed (ir_check_feeds
   * after elaboration or reading IR), with the same messages as here. */
  int64_t xsym, ysym;
  if (!ir_check_feeds(m, (SrcLoc){0, 0, 0}, &xsym, &ysym)) return 1;

  int64_t data_budget; /* what the memory limit leaves for the data */
  if (!memory_check_interp(m, o, &data_budget)) return 1; /* driver/memory.c */
  if (o->f64 && (o->checkpoint || o->resume)) {
    diag_error_plain("--checkpoint and --resume keep f32 values; they cannot be combined with --f64");
    return 1;
  }
  RtCheckpoint ck;
  RtError err;
  memset(&ck, 0, sizeof ck);
  /* The checkpoint directory (created, locked) and the outputs, checked
   * before anything is read or trained, as the trainer does. */
  int lock = -1;
  bool csv = t->data == DATA_CSV;
  RtRunPaths paths = {o->save, o->metrics, o->checkpoint, o->resume, csv ? (o->data ? o->data : t->data_path) : NULL,
                      csv ? t->test_path : NULL, NULL, NULL, NULL, NULL, NULL, o->plot};
  if ((o->checkpoint && rt_checkpoint_prepare(o->checkpoint, o->resume, o->overwrite_checkpoint, &lock, &err) != 0) ||
      rt_check_run_paths(&paths, &err) != 0 || (o->resume && rt_checkpoint_load(o->resume, &ck, &err) != 0)) {
    diag_error_plain("%s", err.msg);
    rt_checkpoint_unlock(lock);
    return 1;
  }
  Interp *it = interp_new(m, o->f64);
  uint64_t seed = o->resume ? ck.seed : run_seed(m, o);
  interp_init(it, seed);
  InterpCkpt ic;
  ckpt_init(&ic, it, m);
  if ((o->resume && !ckpt_restore(&ic, &ck, o)) || !apply_hypers(it, m, o)) {
    ckpt_free(&ic);
    rt_checkpoint_free(&ck);
    interp_free(it);
    rt_checkpoint_unlock(lock);
    return 1;
  }

  /* The data, checked against what the model expects. */
  RtDataSpec spec;
  RtDataExpect expect;
  data_spec(m, o, xsym, ysym, data_budget, &spec, &expect);
  RtDataset train, test, val;
  memset(&train, 0, sizeof train);
  memset(&test, 0, sizeof test);
  memset(&val, 0, sizeof val);
  /* Validation and early stopping: the command line's, else the checkpoint's, else the train block's. */
  double validation = o->validation >= 0 ? o->validation : o->resume ? ck.validation : t->validation;
  RtEarlyStop early = {0};
  if (o->resume) early = ck.early;
  if (o->early_stop) early.patience = o->early_stop;
  RtCheckpointer saver = {"nnc", o->checkpoint, o->checkpoint_every, {0}, ic.t, ic.n, ckpt_gather, &ic,
                          o->resume ? ck.pos.steps : -1, NULL, "", early.patience ? &early : NULL, ckpt_scatter,
                          NULL, 0};
  int rc = 1;
  if (early.patience && validation <= 0) {
    diag_error_plain("--early-stop needs a validation split (--validation=F, or 'validation' in the train block)");
    goto done;
  }
  if (o->resume && !rt_checkpoint_resume_best(&saver, &ck, &err)) {
    diag_error_plain("%s", err.msg);
    goto done;
  }
  if (rt_data_load_splits(&spec, &expect, &train, &test, &err) != 0 ||
      (validation > 0 && rt_data_hold_out(&train, validation, o->validation >= 0 ? "option '--validation'" :
                                          o->resume ? "the checkpoint's 'validation'" :
                                          "the train block's 'validation'", &val, &err) != 0)) {
    diag_error_plain("%s", err.msg);
    goto done;
  }
  if (o->resume && train.n != ck.train_samples) {
    diag_error_plain("%s: the checkpoint was trained on %lld samples, but the training data has %lld (the data order "
                     "depends on it)", ck.path, (long long)ck.train_samples, (long long)train.n);
    goto done;
  }

  int nm = interp_metric_count(it);
  const char **names = nnc_xcalloc((size_t)nm + 1, sizeof *names);
  for (int i = 0; i < nm; i++) names[i] = interp_metric_name(it, i);
  RunEngine run = {it, 0};
  for (uint32_t i = 0; i < m->nsyms; i++)
    if (m->syms[i].kind == SYM_HYPER && !strcmp(m->syms[i].name, "lr")) run.base_lr = *interp_symbol(it, i);
  RtEngine engine = {&run, nm, names, engine_step, engine_eval, NULL, 0, NULL, engine_scale_lr, NULL};
  RtSchedule run_schedule = {(int)t->schedule.kind, t->schedule.every, t->schedule.factor, t->schedule.warmup,
                             t->schedule.min};
  bool resumed = o->resume != NULL;
  RtTrainOptions to = {.batch = o->batch > 0 ? o->batch : resumed ? ck.batch : t->batch,
                       .epochs = o->epochs >= 0 ? o->epochs : resumed ? ck.epochs : t->epochs || t->steps ? t->epochs : 1,
                       .max_steps = o->steps > 0 ? o->steps : resumed ? ck.max_steps : t->steps,
                       .seed = seed,
                       .shuffle = resumed ? ck.shuffle : t->shuffle && !o->no_shuffle,
                       .metrics_csv = o->metrics,
                       .out = stdout,
                       .prog = "nnc",
                       .val = &val,
                       .early = saver.early,
                       .plot = o->plot,
                       .model = m->name,
                       .schedule = t->schedule.kind != SCHEDULE_CONSTANT ? (const RtSchedule *)&run_schedule : NULL};
  /* Checkpoints and signals (runtime/checkpoint.h), as in a built trainer. */
  int nh = (int)count_kind(m, SYM_HYPER), k = 0;
  const char **hnames = nnc_xcalloc((size_t)nh + 1, sizeof *hnames);
  double *hvalues = nnc_xcalloc((size_t)nh + 1, sizeof *hvalues);
  for (uint32_t i = 0; i < m->nsyms; i++)
    if (m->syms[i].kind == SYM_HYPER) hnames[k] = m->syms[i].name, hvalues[k++] = *interp_symbol(it, i);
  RtCkptMeta meta = {m->name, NNC_VERSION, {0}, train.n, to.batch, to.epochs, to.max_steps, seed, to.shuffle, nh,
                     hnames, hvalues, validation, saver.early};
  saver.meta = meta;
  if (o->checkpoint) rt_checkpoint_path(o->checkpoint, saver.path, sizeof saver.path);
  if (resumed) to.start = ck.pos, saver.last_good = ck.path;
  to.hook = rt_checkpoint_hook;
  to.hook_self = &saver;
  to.last_checkpoint = &saver.last_good;
  if (o->verbose)
    fprintf(stderr, "nnc: training '%s' in the interpreter (%s): %lld parameters, %lld train and %lld test samples\n",
            m->name, o->f64 ? "f64" : "f32", (long long)count_kind(m, SYM_PARAM), (long long)train.n,
            (long long)test.n);
  rt_signals_install();
  rc = rt_train(&engine, &train, &test, &to);
  rt_signals_restore();
  free(names), free(hnames), free(hvalues);
  if (rc == 0 && o->save && !rt_checkpoint_restore_best(&saver, &err)) { /* early stopping: the best epoch's */
    diag_error_plain("%s", err.msg);
    rc = 1;
  }
  if (saver.best && early.best_epoch > 0) interp_set_step(it, early.best_step + 1); /* for --save's "step" */
  if (rc == 0 && o->save && !save_params(it, m, o->save)) rc = 1;

done:
  rt_checkpointer_free(&saver);
  rt_data_free(&train);
  rt_data_free(&test);
  ckpt_free(&ic);
  rt_checkpoint_free(&ck);
  interp_free(it);
  rt_checkpoint_unlock(lock);
  return rc;
}

/* ---- --gradcheck ----------------------------------------------------------------------- */

enum { GC_BATCH = 4, GC_MAX_ELEMS = 64 };

/* Turns the elaborated module into the gradient probe.  Its update outputs
 * (the optimizer's new parameters and states) are dropped, and every
 * parameter gets an OUT_UPDATE output whose value is a fresh `grad @param`
 * node: an "update" whose value is the gradient itself.  Autodiff replaces
 * those nodes like any other, so after the graph passes output k holds
 * dJ/dparam, J = mean over the batch of the per-sample loss.  (The probe is
 * only evaluated, never stepped, so nothing is ever written back.) */
static void make_probe(Module *m) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < m->noutputs; i++)
    if (m->outputs[i].kind != OUT_UPDATE) m->outputs[k++] = m->outputs[i];
  m->noutputs = k;
  uint32_t nsyms = m->nsyms;
  for (uint32_t i = 0; i < nsyms; i++) {
    if (m->syms[i].kind != SYM_PARAM || m->syms[i].no_grad) continue;
    ValueId g = ir_leaf(m, OP_GRAD, i, m->syms[i].loc);
    ir_add_output(m, OUT_UPDATE, m->syms[i].name, i, g);
  }
}

/* The graph passes of the default pipeline at this -O level, each verified;
 * autodiff is run first if the pipeline lacks it. */
static bool probe_passes(Module *m, int opt_level) {
  if (!pass_find("autodiff")) {
    if (!pass_autodiff(m)) return false;
    if (!ir_verify(m, "autodiff")) nnc_internal_error(__FILE__, __LINE__, "the IR is invalid after autodiff");
  }
  for (const Pass *p = nnc_graph_passes; p->name; p++) {
    if (p->min_opt > opt_level) continue;
    if (!p->run(m)) return false;
    if (!ir_verify(m, p->name)) nnc_internal_error(__FILE__, __LINE__, "the IR is invalid after %s", p->name);
  }
  return true;
}

/* J: the mean loss over the batch, in f64, into *j; false after an error. */
static bool mean_loss(Interp *it, const float *x, const void *y, double *j) {
  double s = 0;
  if (interp_train_loss(it, x, y, GC_BATCH, &s)) {
    diag_error_plain("%s", interp_error(it));
    return false;
  }
  *j = s / GC_BATCH;
  return true;
}

/* The relative error of an analytic gradient a against a numeric one f:
 *     |a - f| / max(|a|, |f|, 1e-6)
 * relative where the gradient is large, absolute (scaled by 1e6) where both
 * are below 1e-6, so exact zeros compare equal and tiny values do not blow
 * the ratio up. */
static double rel_err(double a, double f) {
  double d = fmax(fmax(fabs(a), fabs(f)), 1e-6);
  return fabs(a - f) / d;
}

/* dJ/dp[e] by finite differences, p[e] restored afterwards; false after an
 * evaluation error.  order 2: the central difference
 *     (J(t+h) - J(t-h)) / 2h,                 h = 1e-6 max(1, |t|)
 * order 4: the fourth-order stencil
 *     (-J(t+2h) + 8 J(t+h) - 8 J(t-h) + J(t-2h)) / 12h,   h = 1e-3 max(1, |t|)
 * The central difference carries rounding noise of about 1e-16 |J| / h =
 * 1e-10 |J|, which is a large relative error on a gradient element below
 * about 1e-5 |J|; the wider fourth-order stencil has about 1e-13 |J| of
 * noise and O(h^4) = 1e-12 of truncation error, so it re-measures elements
 * that the central difference could not settle (see run_gradcheck). */
static bool numeric_grad(Interp *it, const float *x, const void *y, double *p, int64_t e, int order, double *out) {
  double t = p[e], scale = fmax(1, fabs(t));
  double h = (order == 2 ? 1e-6 : 1e-3) * scale;
  /* Points t + k h as they really are in double (t + h - t may not be h). */
  double tp = t + h, tm = t - h, jp = 0, jm = 0;
  bool ok = true;
  p[e] = tp, ok = ok && mean_loss(it, x, y, &jp);
  p[e] = tm, ok = ok && mean_loss(it, x, y, &jm);
  if (order == 2) {
    p[e] = t;
    *out = (jp - jm) / (tp - tm);
    return ok;
  }
  double tp2 = t + 2 * h, tm2 = t - 2 * h, jp2 = 0, jm2 = 0;
  p[e] = tp2, ok = ok && mean_loss(it, x, y, &jp2);
  p[e] = tm2, ok = ok && mean_loss(it, x, y, &jm2);
  p[e] = t;
  *out = (-jp2 + 8 * jp - 8 * jm + jm2) / (6 * (tp - tm));
  return ok;
}

/* The batch the check evaluates: GC_BATCH samples of the train block's
 * training data (drawn with the seed) when the input is f32 and the data
 * loads, else values drawn at random and valid for the model: f32 inputs
 * ~ N(0, 1), i32 inputs and labels uniform in [0, bound) (Symbol.bound:
 * the extent they index), f32 labels ~ N(0, 1).  Says which on stdout.
 * A label of several values per sample is always drawn at random. */
typedef struct GcBatch {
  float *x;                 /* [GC_BATCH][numel(input)]; i32 inputs as whole numbers */
  int32_t *yi;              /* [GC_BATCH][numel(label)] */
  float *yf;
  const void *y;            /* yi or yf by the label's dtype; NULL without a label */
  bool random;              /* drawn at random, not read from the data */
} GcBatch;

static bool gc_data(const Module *m, const Options *o, int64_t xsym, int64_t ysym, RtRng *rng, GcBatch *b) {
  const TrainSpec *t = &m->train;
  if (m->syms[xsym].type.dtype != DT_F32 || !t->present || (t->data != DATA_IDX && t->data != DATA_CSV)) return false;
  if (ysym >= 0 && type_numel(&m->syms[ysym].type) != 1) return false;
  RtDataSpec spec;
  RtDataExpect expect;
  data_spec(m, o, xsym, ysym, o->max_memory, &spec, &expect); /* --max-memory bounds the data alone here */
  RtDataset d;
  RtError err;
  memset(&d, 0, sizeof d);
  err.msg[0] = 0;
  if (rt_data_load(&spec, false, &expect, &d, &err) != 0 || d.n == 0) {
    diag_warning((SrcLoc){0, 0, 0}, "--gradcheck draws its inputs at random: the train block's data cannot be used: %s",
                 d.n == 0 && !err.msg[0] ? "it has no samples" : err.msg);
    rt_data_free(&d);
    return false;
  }
  int64_t pick[GC_BATCH];
  for (int i = 0; i < GC_BATCH; i++) pick[i] = (int64_t)rt_rng_below(rng, (uint64_t)d.n);
  int32_t yi[GC_BATCH];
  float yf[GC_BATCH];
  rt_batch_gather(&d, pick, 0, GC_BATCH, b->x, d.label_type == RT_LABEL_I32 ? (void *)yi : (void *)yf);
  if (ysym >= 0) {
    memcpy(b->yi, yi, sizeof yi); /* one value per sample (checked above) */
    memcpy(b->yf, yf, sizeof yf);
    b->y = m->syms[ysym].type.dtype == DT_I32 ? (const void *)b->yi : (const void *)b->yf;
  }
  printf("gradcheck: inputs: samples %lld, %lld, %lld, %lld of %s\n", (long long)pick[0], (long long)pick[1],
         (long long)pick[2], (long long)pick[3], d.source ? d.source : spec.path);
  rt_data_free(&d);
  return true;
}

static void gc_batch(const Module *m, const Options *o, int64_t xsym, int64_t ysym, RtRng *rng, GcBatch *b) {
  const Symbol *xs = &m->syms[xsym], *ys = ysym >= 0 ? &m->syms[ysym] : NULL;
  int64_t xn = type_numel(&xs->type) * GC_BATCH, yn = ys ? type_numel(&ys->type) * GC_BATCH : 1;
  memset(b, 0, sizeof *b);
  b->x = nnc_xcalloc((size_t)xn, sizeof(float));
  b->yi = nnc_xcalloc((size_t)yn, sizeof(int32_t));
  b->yf = nnc_xcalloc((size_t)yn, sizeof(float));
  if (gc_data(m, o, xsym, ysym, rng, b)) return;
  b->random = true;
  char xd[64], yd[64] = "";
  if (xs->type.dtype == DT_I32) {
    for (int64_t i = 0; i < xn; i++) b->x[i] = (float)rt_rng_below(rng, (uint64_t)xs->bound);
    snprintf(xd, sizeof xd, "uniform in [0, %lld)", (long long)xs->bound);
  } else {
    for (int64_t i = 0; i < xn; i++) b->x[i] = (float)rt_rng_normal(rng);
    snprintf(xd, sizeof xd, "~ N(0, 1)");
  }
  if (ys) {
    for (int64_t i = 0; i < yn; i++) {
      b->yi[i] = (int32_t)rt_rng_below(rng, (uint64_t)(ys->bound > 0 ? ys->bound : 1));
      b->yf[i] = (float)rt_rng_normal(rng);
    }
    b->y = ys->type.dtype == DT_I32 ? (const void *)b->yi : (const void *)b->yf;
    if (ys->type.dtype == DT_I32)
      snprintf(yd, sizeof yd, ", %s uniform in [0, %lld)", ys->name, (long long)ys->bound);
    else
      snprintf(yd, sizeof yd, ", %s ~ N(0, 1)", ys->name);
  }
  printf("gradcheck: inputs: random, %s %s%s\n", xs->name, xd, yd);
}

/* The parameters no gradient reached, for the last line: "w, h.b" (the
 * first few, then how many more). */
typedef struct GcZeros {
  int n;
  char names[256];
} GcZeros;

/* Reports parameter sym, whose analytic and numeric gradients were both 0
 * on all nchk checked elements: the check says nothing about it. */
static void gc_zero(const Module *m, uint32_t sym, int64_t nchk, const GcBatch *b, GcZeros *z) {
  const Symbol *s = &m->syms[sym];
  /* At the user's line: the outermost call site of an inlined location. */
  uint32_t loc = s->loc;
  while (loc && loc < m->nlocs && m->locs[loc].parent && m->locs[loc].parent < loc) loc = m->locs[loc].parent;
  diag_warning(ir_diag_loc(m, loc),
               "no gradient reaches parameter '%s': its analytic and numeric gradients are 0 on all %lld checked "
               "elements, so the check says nothing about it",
               s->name, (long long)nchk);
  const Symbol *x = NULL;
  for (uint32_t i = 0; i < m->nsyms && !x; i++)
    if (m->syms[i].kind == SYM_INPUT) x = &m->syms[i];
  if (z->n == 0 && b->random && x && x->type.dtype == DT_F32)
    diag_note((SrcLoc){0, 0, 0},
              "the inputs are random (%s ~ N(0, 1)): a model that compares its input with constants, such as token "
              "codes, sees none of them; give the train block data the interpreter can read, or declare the input "
              "i32 and use it as an index",
              x->name);
  size_t len = strlen(z->names);
  if (z->n < 4)
    snprintf(z->names + len, sizeof z->names - len, "%s%s", z->n ? ", " : "", s->name);
  else if (z->n == 4)
    snprintf(z->names + len, sizeof z->names - len, " and more");
  z->n++;
}

/* A number the way people write tolerances: 1e-4, 2.5e-06 -> "2.5e-6", 0.01. */
static const char *short_num(double v, char *buf, size_t len) {
  if (v == 0 || (fabs(v) >= 1e-3 && fabs(v) < 1e6)) {
    snprintf(buf, len, "%g", v);
    return buf;
  }
  int e = (int)floor(log10(fabs(v)));
  double mant = v / pow(10, e);
  if (fabs(mant) >= 9.999995) mant /= 10, e++; /* 9.9999999e-5 */
  snprintf(buf, len, "%ge%d", mant, e);
  return buf;
}

int run_gradcheck(Module *m, const Options *o) {
  int64_t xsym, ysym;
  bool have_loss = false;
  for (uint32_t i = 0; i < m->noutputs; i++) have_loss |= m->outputs[i].kind == OUT_LOSS;
  if (!have_loss) {
    diag_error_plain("--gradcheck needs a model with a loss ('loss = ...')");
    return 1;
  }
  if (!model_inputs(m, "--gradcheck", &xsym, &ysym)) return 1;
  if (count_kind(m, SYM_PARAM) == 0) {
    diag_error_plain("--gradcheck: model '%s' has no parameters to check", m->name);
    return 1;
  }
  const Symbol *xs = &m->syms[xsym], *ys = ysym >= 0 ? &m->syms[ysym] : NULL;
  for (const Symbol *s = xs; s; s = s == xs ? ys : NULL)
    if (s->type.dtype == DT_I32 && s->bound <= 0) {
      diag_error_plain("--gradcheck cannot draw values for the i32 %s '%s': it is never used as an index, so its "
                       "range is unknown (use it as an index, as in cross_entropy, onehot or e[%s])",
                       sym_kind_name(s->kind), s->name, s->name);
      return 1;
    }

  make_probe(m);
  if (!probe_passes(m, o->opt_level)) return 1;

  uint64_t seed = run_seed(m, o);
  RtRng rng;
  rt_rng_seed_stream(&rng, seed, "gradcheck");
  GcBatch b;
  gc_batch(m, o, xsym, ysym, &rng, &b);
  const float *x = b.x;
  const void *y = b.y;

  /* The parameters: their initial values, moved off any kinks (zero
   * biases under a relu) by a small random amount. */
  Interp *it = interp_new(m, true);
  interp_init(it, seed);
  for (uint32_t i = 0; i < m->nsyms; i++) {
    if (m->syms[i].kind != SYM_PARAM || m->syms[i].no_grad) continue;
    double *p = interp_symbol(it, i);
    for (int64_t k = 0, n = type_numel(&m->syms[i].type); k < n; k++) p[k] += 0.01 * rt_rng_normal(&rng);
  }

  int rc = 1;
  int64_t *pick = NULL;
  /* The analytic gradients, copied out (later runs reuse the buffers). */
  double **grads = nnc_xcalloc(m->noutputs, sizeof *grads);
  if (interp_run(it, x, y, GC_BATCH, true)) {
    diag_error_plain("%s", interp_error(it));
    goto done;
  }
  for (uint32_t i = 0; i < m->noutputs; i++) {
    if (m->outputs[i].kind != OUT_UPDATE) continue;
    int64_t numel = type_numel(&m->syms[m->outputs[i].sym].type);
    grads[i] = nnc_xcalloc((size_t)(numel ? numel : 1), sizeof(double));
    memcpy(grads[i], interp_output(it, i), (size_t)numel * sizeof(double));
  }
  double worst = 0;
  char worst_at[256] = "";
  GcZeros zeros = {0, ""};
  int width = 0;
  for (uint32_t i = 0; i < m->noutputs; i++)
    if (m->outputs[i].kind == OUT_UPDATE && (int)strlen(m->outputs[i].name) > width)
      width = (int)strlen(m->outputs[i].name);
  for (uint32_t i = 0; i < m->noutputs; i++) {
    const Output *out = &m->outputs[i];
    if (out->kind != OUT_UPDATE) continue;
    int64_t numel = type_numel(&m->syms[out->sym].type);
    double *p = interp_symbol(it, out->sym);
    const double *grad = grads[i];
    /* Which elements: all of a small tensor, else GC_MAX_ELEMS distinct ones
     * by a partial Fisher-Yates shuffle. */
    int64_t nchk = numel <= GC_MAX_ELEMS ? numel : GC_MAX_ELEMS;
    free(pick);
    pick = nnc_xcalloc((size_t)(numel ? numel : 1), sizeof(int64_t));
    for (int64_t k = 0; k < numel; k++) pick[k] = k;
    if (nchk < numel)
      for (int64_t k = 0; k < nchk; k++) {
        int64_t j = k + (int64_t)rt_rng_below(&rng, (uint64_t)(numel - k));
        int64_t tmp = pick[k];
        pick[k] = pick[j], pick[j] = tmp;
      }
    double pworst = 0;
    bool zero = true; /* analytic and numeric gradients both 0 on every checked element */
    for (int64_t k = 0; k < nchk; k++) {
      int64_t e = pick[k];
      double a = grad[e], f, f4;
      if (!numeric_grad(it, x, y, p, e, 2, &f)) goto done;
      zero &= a == 0 && f == 0;
      double r = rel_err(a, f);
      if (isnan(r)) r = INFINITY; /* a NaN gradient or loss fails the check */
      /* Above the tolerance: re-measure with the quieter fourth-order
       * stencil and keep the better agreement.  A wrong gradient disagrees
       * with both; rounding noise on a tiny element does not survive the
       * second measurement. */
      if (r > o->gradcheck_tol) {
        if (!numeric_grad(it, x, y, p, e, 4, &f4)) goto done;
        double r4 = rel_err(a, f4);
        if (r4 < r) r = r4, f = f4;
      }
      if (r > pworst) pworst = r;
      if (!worst_at[0] || r > worst) {
        worst = r;
        snprintf(worst_at, sizeof worst_at, "%s[%lld]: analytic %.6g, numeric %.6g", out->name, (long long)e, a, f);
      }
    }
    zero &= nchk > 0;
    printf("%-*s  max_rel_err=%.2g  checked=%lld/%lld%s\n", width, out->name, pworst, (long long)nchk,
           (long long)numel, zero ? "  no gradient" : "");
    if (zero) gc_zero(m, out->sym, nchk, &b, &zeros);
  }
  char tol[32];
  short_num(o->gradcheck_tol, tol, sizeof tol);
  if (worst > o->gradcheck_tol) {
    printf("gradcheck: FAILED (worst %.2g at %s; tolerance %s)\n", worst, worst_at, tol);
  } else if (zeros.n && !o->gradcheck_allow_zero) {
    printf("gradcheck: FAILED (no gradient reaches %s; --gradcheck-allow-zero accepts that)\n", zeros.names);
  } else {
    printf("gradcheck: ok (worst %.2g, tolerance %s%s%s)\n", worst, tol, zeros.n ? "; no gradient reaches " : "",
           zeros.names);
    rc = 0;
  }
  fflush(stdout);

done:
  free(pick);
  for (uint32_t i = 0; i < m->noutputs; i++) free(grads[i]);
  free(grads);
  free(b.x);
  free(b.yi);
  free(b.yf);
  interp_free(it);
  return rc;
}
