/* test/unit/test_rt_checkpoint.c - checkpoint files (runtime/checkpoint.c)
 * and memory sizes (runtime/memlimit.c): a write/read round trip of every
 * field (doubles to the bit), the model check naming each kind of
 * difference, refusing non-finite values (the old file stays), stale
 * temporary files removed, the directory lock and the refusal to replace
 * a checkpoint, fields out of range and impossible positions, non-finite
 * tensors and hyper-parameters and flipped bits refused on load, the
 * hook's saving schedule, rt_parse_bytes and rt_format_bytes.  Prints one
 * line per failed check; exits 1 if any failed.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/checkpoint.h"
#include "runtime/memlimit.h"

#include "check.h"

static char tmpdir[256];

static const char *path_in(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static float w[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65504};
static float m[1] = {0.125f};
static const char *const hyper_names[] = {"lr", "beta1"};
static const double hyper_values[] = {0.1, 0.9};

/* h.w [2, 3] (a parameter) and h.w/m [] (a state). */
static void tensors(RtCkptTensor t[2]) {
  memset(t, 0, 2 * sizeof *t);
  t[0].ref = (RtTensorRef){"h.w", w, 2, {2, 3}};
  t[1].ref = (RtTensorRef){"h.w/m", m, 0, {0}};
  t[1].state = true;
}

static RtCkptMeta meta(void) {
  RtCkptMeta mt = {"mnist", "0.1.0", {3, 640, 57, 0.1 + 1e-17 * 3}, 2000, 64, 5, 0, 42, true, 2, hyper_names,
                   hyper_values, 0, NULL};
  mt.pos.loss_sum = 1234.5678901234567;
  return mt;
}

static void test_round_trip(void) {
  RtCkptTensor t[2];
  tensors(t);
  RtCkptMeta mt = meta();
  RtError err;
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path_in("ck"));
  int lockfd;
  CHECK(rt_checkpoint_prepare(dir, NULL, false, &lockfd, &err) == 0, "%s", err.msg);
  rt_checkpoint_unlock(lockfd);
  CHECK(rt_checkpoint_write(dir, &mt, t, 2, &err) == 0, "%s", err.msg);
  RtCheckpoint c;
  CHECK(rt_checkpoint_load(dir, &c, &err) == 0, "%s", err.msg);
  CHECK(!strcmp(c.model, "mnist"), "%s", c.model);
  CHECK(c.pos.epoch == 3 && c.pos.sample == 640 && c.pos.steps == 57, "%lld %lld %lld", (long long)c.pos.epoch,
        (long long)c.pos.sample, (long long)c.pos.steps);
  CHECK(c.pos.loss_sum == mt.pos.loss_sum, "%.17g", c.pos.loss_sum);
  CHECK(c.train_samples == 2000 && c.batch == 64 && c.epochs == 5 && c.max_steps == 0 && c.seed == 42 && c.shuffle,
        "settings");
  double v = 0;
  CHECK(rt_checkpoint_hyper(&c, "lr", &v) && v == 0.1, "%.17g", v);
  CHECK(rt_checkpoint_hyper(&c, "beta1", &v) && v == 0.9, "%.17g", v);
  CHECK(!rt_checkpoint_hyper(&c, "eps", &v), "no eps");
  CHECK(rt_checkpoint_match(&c, "mnist", t, 2, &err) == 0, "%s", err.msg);
  const float *hw = rt_checkpoint_tensor(&c, "h.w");
  CHECK(hw && !memcmp(hw, w, sizeof w), "h.w values");
  CHECK(rt_checkpoint_tensor(&c, "h.w/m") && rt_checkpoint_tensor(&c, "h.w/m")[0] == 0.125f, "h.w/m");

  /* The model check names the first difference. */
  CHECK(rt_checkpoint_match(&c, "other", t, 2, &err) != 0 && strstr(err.msg, "is of model 'mnist', not 'other'"),
        "%s", err.msg);
  RtCkptTensor u[3];
  tensors(u);
  u[0].ref.dims[1] = 4;
  CHECK(rt_checkpoint_match(&c, "mnist", u, 2, &err) != 0 &&
            strstr(err.msg, "parameter 'h.w' is [2, 3] in the checkpoint but [2, 4] in model 'mnist'"),
        "%s", err.msg);
  tensors(u);
  u[2] = u[1];
  u[2].ref.name = "h.b/v";
  CHECK(rt_checkpoint_match(&c, "mnist", u, 3, &err) != 0 &&
            strstr(err.msg, "has no optimizer state 'h.b/v' (model 'mnist' has)"),
        "%s", err.msg);
  CHECK(rt_checkpoint_match(&c, "mnist", u, 1, &err) != 0 &&
            strstr(err.msg, "has a tensor 'h.w/m' that model 'mnist' does not have"),
        "%s", err.msg);
  rt_checkpoint_free(&c);

  /* Non-finite values are refused and the file stays as it was. */
  struct stat before, after;
  stat(path_in("ck/" RT_CKPT_FILE), &before);
  w[4] = NAN;
  CHECK(rt_checkpoint_write(dir, &mt, t, 2, &err) != 0 &&
            !strcmp(err.msg, "parameter 'h.w' holds nan at element 4 after step 57"),
        "%s", err.msg);
  w[4] = -0.0f;
  stat(path_in("ck/" RT_CKPT_FILE), &after);
  CHECK(before.st_ino == after.st_ino && before.st_size == after.st_size, "the checkpoint was replaced");

  /* A dead writer's temporary file goes; a file of another name stays. */
  FILE *f = fopen(path_in("ck/" RT_CKPT_FILE ".tmp.999999999"), "w");
  if (f) fclose(f);
  f = fopen(path_in("ck/keep.txt"), "w");
  if (f) fclose(f);
  CHECK(rt_checkpoint_prepare(dir, dir, false, &lockfd, &err) == 0, "%s", err.msg);
  CHECK(access(path_in("ck/" RT_CKPT_FILE ".tmp.999999999"), F_OK) != 0, "stale temporary file left");
  CHECK(access(path_in("ck/keep.txt"), F_OK) == 0, "an unrelated file removed");
  rt_checkpoint_unlock(lockfd);
}

/* Writes a checkpoint of meta and t into DIR, then loads it: 0, or -1 with err. */
static int write_and_load(const char *dir, const RtCkptMeta *mt, const RtCkptTensor *t, RtError *err) {
  mkdir(dir, 0777);
  RtCheckpoint c;
  if (rt_checkpoint_write(dir, mt, t, 2, err) != 0) return -2;
  int rc = rt_checkpoint_load(dir, &c, err);
  if (rc == 0) rc = rt_checkpoint_match(&c, "mnist", t, 2, err);
  rt_checkpoint_free(&c);
  return rc;
}

/* Flips bit `bit` of byte `at` (counted from the end when negative) of a file. */
static void flip(const char *path, long at, int bit) {
  FILE *f = fopen(path, "r+b");
  if (!f) return;
  fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
  long pos = ftell(f);
  int c = fgetc(f);
  fseek(f, pos, SEEK_SET);
  fputc(c ^ (1 << bit), f);
  fclose(f);
}

/* Fields out of range, positions that cannot be, non-finite values and
 * damaged bytes are refused on load, even with a checksum to match. */
static void test_validation(void) {
  RtCkptTensor t[2];
  tensors(t);
  RtError err;
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path_in("valid"));
  RtCkptMeta mt = meta();
  CHECK(write_and_load(dir, &mt, t, &err) == 0, "%s", err.msg);

  mt.pos.steps = INT64_MAX; /* once overflowed steps + 1 in the trainer */
  CHECK(write_and_load(dir, &mt, t, &err) == -1 && strstr(err.msg, "bad 'step' in its metadata: '9223372036854775807'"),
        "%s", err.msg);
  mt = meta();
  mt.pos = (RtTrainPos){1, 10, 11, 0}; /* 11 steps on 10 samples */
  CHECK(write_and_load(dir, &mt, t, &err) == -1 &&
            strstr(err.msg, "bad 'step' in its metadata: 11 steps cannot have been taken by epoch 1, sample 10 of 2000"),
        "%s", err.msg);
  mt = meta();
  mt.pos.epoch = 7; /* of 5 */
  CHECK(write_and_load(dir, &mt, t, &err) == -1 && strstr(err.msg, "bad 'epoch' in its metadata: 7 is past the run's 5 epochs"),
        "%s", err.msg);
  mt = meta();
  mt.max_steps = 50; /* at step 57 */
  CHECK(write_and_load(dir, &mt, t, &err) == -1 && strstr(err.msg, "57 is past the run's step limit 50"), "%s", err.msg);
  mt = meta();
  double bad_hypers[2] = {NAN, 0.9};
  mt.hyper_values = bad_hypers;
  CHECK(write_and_load(dir, &mt, t, &err) == -1 && strstr(err.msg, "bad 'hyper.lr' in its metadata: 'nan'"), "%s",
        err.msg);
  bad_hypers[0] = 1e39; /* finite as a double, inf as f32 */
  CHECK(write_and_load(dir, &mt, t, &err) == -1 && strstr(err.msg, "bad 'hyper.lr' in its metadata: '9.9999999999999994e+38'"),
        "%s", err.msg);

  /* a nan in a tensor (here written as if it were an i32 state) */
  mt = meta();
  w[2] = NAN;
  t[0].i32 = true;
  CHECK(rt_checkpoint_write(dir, &mt, t, 2, &err) == 0, "%s", err.msg);
  t[0].i32 = false;
  w[2] = 3.5f;
  RtCheckpoint c;
  CHECK(rt_checkpoint_load(dir, &c, &err) == 0, "%s", err.msg);
  CHECK(rt_checkpoint_match(&c, "mnist", t, 2, &err) != 0 &&
            strstr(err.msg, "checkpoint.safetensors: parameter 'h.w' holds nan at element 2 after step 57"),
        "%s", err.msg);
  rt_checkpoint_free(&c);

  /* one flipped bit, in the data or in a metadata value: the checksum says so */
  CHECK(write_and_load(dir, &mt, t, &err) == 0, "%s", err.msg);
  char file[600];
  snprintf(file, sizeof file, "%s/" RT_CKPT_FILE, dir);
  flip(file, -3, 0);
  CHECK(rt_checkpoint_load(dir, &c, &err) != 0 && strstr(err.msg, "the checkpoint is damaged: its checksum is crc32:"),
        "%s", err.msg);
  flip(file, -3, 0);
  CHECK(rt_checkpoint_load(dir, &c, &err) == 0, "%s", err.msg);
  rt_checkpoint_free(&c);
  FILE *f = fopen(file, "rb");
  char head[2048] = {0};
  size_t got = f ? fread(head, 1, sizeof head - 1, f) : 0;
  if (f) fclose(f);
  const char *step = got > 8 ? strstr(head + 8, "\"step\":\"57\"") : NULL;
  CHECK(step != NULL, "no step in the header");
  if (step) flip(file, (long)(step - head) + 9, 0); /* "57" -> "56" */
  CHECK(rt_checkpoint_load(dir, &c, &err) != 0 && strstr(err.msg, "the checkpoint is damaged"), "%s", err.msg);
}

/* One run per directory (a lock), and a checkpoint there is replaced only
 * by the run resuming it or when asked to. */
static void test_lock(void) {
  RtCkptTensor t[2];
  tensors(t);
  RtCkptMeta mt = meta();
  RtError err;
  char dir[512], other[512];
  snprintf(dir, sizeof dir, "%s", path_in("locked"));
  snprintf(other, sizeof other, "%s", path_in("other"));
  int a = -1, b = -1;
  CHECK(rt_checkpoint_prepare(dir, NULL, false, &a, &err) == 0 && a >= 0, "%s", err.msg);
  char want[128];
  snprintf(want, sizeof want, "another run (process %ld) holds this checkpoint directory", (long)getpid());
  CHECK(rt_checkpoint_prepare(dir, NULL, false, &b, &err) != 0 && b == -1 && strstr(err.msg, want), "%s", err.msg);
  CHECK(rt_checkpoint_prepare(dir, dir, true, &b, &err) != 0 && strstr(err.msg, "another run"), "%s", err.msg);
  CHECK(rt_checkpoint_write(dir, &mt, t, 2, &err) == 0, "%s", err.msg);
  rt_checkpoint_unlock(a);
  CHECK(rt_checkpoint_prepare(dir, NULL, false, &b, &err) != 0 && b == -1 &&
            strstr(err.msg, "locked/" RT_CKPT_FILE ": a checkpoint is there already; continue it with --resume ") &&
            strstr(err.msg, "or replace it with --overwrite-checkpoint"),
        "%s", err.msg);
  CHECK(rt_checkpoint_prepare(dir, other, false, &b, &err) != 0, "resuming another directory replaces this one");
  CHECK(rt_checkpoint_prepare(dir, dir, false, &b, &err) == 0, "%s", err.msg); /* resuming it */
  rt_checkpoint_unlock(b);
  char slash[600];
  snprintf(slash, sizeof slash, "%s/", dir);
  CHECK(rt_checkpoint_prepare(dir, slash, false, &b, &err) == 0, "%s", err.msg); /* the same directory */
  rt_checkpoint_unlock(b);
  CHECK(rt_checkpoint_prepare(dir, NULL, true, &b, &err) == 0, "%s", err.msg); /* --overwrite-checkpoint */
  rt_checkpoint_unlock(b);
}

static void test_errors(void) {
  RtError err;
  RtCheckpoint c;
  CHECK(rt_checkpoint_load(path_in("none"), &c, &err) != 0 && strstr(err.msg, "no checkpoint to resume from"), "%s",
        err.msg);
  /* a plain safetensors file (--save) is not a checkpoint */
  mkdir(path_in("plain"), 0777);
  RtTensorRef r = {"h.w", w, 2, {2, 3}};
  CHECK(rt_safetensors_write(path_in("plain/" RT_CKPT_FILE), &r, 1, "\"format\": \"nnc\"", &err) == 0, "%s",
        err.msg);
  CHECK(rt_checkpoint_load(path_in("plain"), &c, &err) != 0 && strstr(err.msg, "not an nnc checkpoint"), "%s",
        err.msg);
  /* a checkpoint from before checksums is refused, saying why */
  mkdir(path_in("bad"), 0777);
  CHECK(rt_safetensors_write(path_in("bad/" RT_CKPT_FILE), &r, 1,
                             "\"format\": \"nnc-checkpoint-1\", \"model\": \"m\", \"step\": \"x\"", &err) == 0,
        "%s", err.msg);
  CHECK(rt_checkpoint_load(path_in("bad"), &c, &err) != 0 &&
            strstr(err.msg, "a checkpoint of format 'nnc-checkpoint-1', written by an older nnc without a checksum"),
        "%s", err.msg);
  int lockfd;
  CHECK(rt_checkpoint_prepare(path_in("bad/" RT_CKPT_FILE), NULL, false, &lockfd, &err) != 0 &&
            strstr(err.msg, "not a directory"),
        "%s", err.msg);
}

/* The hook saves every N steps (or at epoch ends) and at the end, once per step. */
static int gathered;
static int gather(void *self, RtCkptTensor *t, int n, RtError *err) {
  (void)self, (void)t, (void)n, (void)err;
  gathered++;
  return 0;
}

static void test_hook(void) {
  RtCkptTensor t[2];
  tensors(t);
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path_in("hook"));
  RtCheckpointer k = {"test", dir, 3, meta(), t, 2, gather, NULL, -1, NULL, "", NULL, NULL, NULL, 0};
  RtError err;
  int lockfd;
  CHECK(rt_checkpoint_prepare(k.dir, NULL, false, &lockfd, &err) == 0, "%s", err.msg);
  rt_checkpoint_path(k.dir, k.path, sizeof k.path);
  for (int64_t s = 1; s <= 7; s++) {
    RtTrainPos p = {1, s * 10, s, 0};
    CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_STEP) == 0, "step %lld", (long long)s);
  }
  CHECK(gathered == 2 && k.saved_step == 6, "saves %d, last %lld", gathered, (long long)k.saved_step);
  RtTrainPos p = {2, 0, 7, 0};
  CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_EPOCH) == 0 && gathered == 2, "an epoch end is not a save point here");
  CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_END) == 0 && gathered == 3 && k.last_good == k.path, "the end saves");
  CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_END) == 0 && gathered == 3, "not twice at one step");
  k.every = 0;
  p.steps = 9;
  CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_STEP) == 0 && gathered == 3, "every epoch: not after a step");
  CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_EPOCH) == 0 && gathered == 4, "every epoch: at its end");
  rt_checkpoint_unlock(lockfd);
}

/* Early stopping: RT_TRAIN_BEST keeps the parameters (not the optimizer
 * states), checkpoints hold them as best/NAME with the state, a resumed
 * checkpointer reads them back and scatter restores them. */
static int gather_data(void *self, RtCkptTensor *t, int n, RtError *err) {
  (void)self, (void)err;
  t[0].ref.data = w;
  if (n > 1) t[1].ref.data = m;
  return 0;
}

static float scattered[6];
static int scatter(void *self, const RtCkptTensor *t, int n, RtError *err) {
  (void)self, (void)err;
  CHECK(n == 1 && !strcmp(t[0].ref.name, "h.w"), "scatter: %d tensors, '%s'", n, n ? t[0].ref.name : "");
  memcpy(scattered, t[0].ref.data, sizeof scattered);
  return 0;
}

static void test_early_stop(void) {
  RtCkptTensor t[2];
  tensors(t);
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path_in("early"));
  RtEarlyStop es = {2, 0, 0, 0, 0};
  RtCheckpointer k = {"test", dir, 0, meta(), t, 2, gather_data, NULL, -1, NULL, "", &es, scatter, NULL, 0};
  k.meta.validation = 0.25;
  RtError err;
  int lockfd;
  CHECK(rt_checkpoint_prepare(k.dir, NULL, false, &lockfd, &err) == 0, "%s", err.msg);
  rt_checkpoint_path(k.dir, k.path, sizeof k.path);
  float saved[6];
  memcpy(saved, w, sizeof saved);
  es = (RtEarlyStop){2, 2, 0.5, 40, 1};
  RtTrainPos p = {3, 0, 40, 0};
  CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_BEST) == 0 && k.nbest == 1, "best kept: %d tensors", k.nbest);
  w[0] += 1; /* trained on after the best epoch */
  p = (RtTrainPos){4, 0, 57, 0};
  CHECK(rt_checkpoint_hook(&k, &p, RT_TRAIN_EPOCH) == 0, "save");
  RtCheckpoint c;
  CHECK(rt_checkpoint_load(dir, &c, &err) == 0, "%s", err.msg);
  CHECK(c.validation == 0.25 && c.early.patience == 2 && c.early.best_epoch == 2 && c.early.best_loss == 0.5 &&
            c.early.best_step == 40 && c.early.bad_epochs == 1,
        "early-stop state %g %lld %lld", c.validation, (long long)c.early.best_epoch, (long long)c.early.bad_epochs);
  CHECK(rt_checkpoint_match(&c, "mnist", t, 2, &err) == 0, "%s", err.msg);
  const float *best = rt_checkpoint_tensor(&c, "best/h.w");
  CHECK(best && !memcmp(best, saved, sizeof saved) && !rt_checkpoint_tensor(&c, "best/h.w/m"), "best/h.w");
  RtCheckpointer r = {"test", NULL, 0, meta(), t, 2, gather_data, NULL, -1, NULL, "", &es, scatter, NULL, 0};
  CHECK(rt_checkpoint_resume_best(&r, &c, &err) && rt_checkpoint_restore_best(&r, &err), "%s", err.msg);
  CHECK(!memcmp(scattered, saved, sizeof saved), "the best weights restored");
  rt_checkpoint_free(&c);
  rt_checkpointer_free(&r);
  rt_checkpointer_free(&k);
  w[0] -= 1;
  /* A best epoch that is not before the position is refused. */
  es.best_epoch = 4;
  CHECK(rt_checkpoint_hook(&k, &(RtTrainPos){4, 0, 58, 0}, RT_TRAIN_END) == 0, "save");
  CHECK(rt_checkpoint_load(dir, &c, &err) != 0 && strstr(err.msg, "bad 'best_epoch' in its metadata: '4'"), "%s",
        err.msg);
  rt_checkpoint_unlock(lockfd);
}

static void test_bytes(void) {
  int64_t v = 0;
  CHECK(rt_parse_bytes("4096", &v) == 0 && v == 4096, "%lld", (long long)v);
  CHECK(rt_parse_bytes("512M", &v) == 0 && v == INT64_C(512) << 20, "%lld", (long long)v);
  CHECK(rt_parse_bytes("1.5G", &v) == 0 && v == INT64_C(3) << 29, "%lld", (long long)v);
  CHECK(rt_parse_bytes("2TiB", &v) == 0 && v == INT64_C(2) << 40, "%lld", (long long)v);
  CHECK(rt_parse_bytes("64kb", &v) == 0 && v == 65536, "%lld", (long long)v);
  const char *bad[] = {"", "0", "-1", "12X", "1e30", "G", " 5", "5 G", "nan", "inf"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(rt_parse_bytes(bad[i], &v) != 0, "'%s' accepted", bad[i]);
  char buf[32];
  CHECK(!strcmp(rt_format_bytes(512, buf, sizeof buf), "512 bytes"), "%s", buf);
  CHECK(!strcmp(rt_format_bytes(23.4 * 1073741824.0, buf, sizeof buf), "23.4 GiB"), "%s", buf);
  CHECK(!strcmp(rt_format_bytes(400.0 * 1073741824.0, buf, sizeof buf), "400 GiB"), "%s", buf);
  CHECK(!strcmp(rt_format_bytes(1023.9 * 1073741824.0, buf, sizeof buf), "1024 GiB"), "%s", buf);
  CHECK(!strcmp(rt_format_bytes(1.2 * 1099511627776.0, buf, sizeof buf), "1.2 TiB"), "%s", buf);
  CHECK(rt_phys_memory() > 0, "no physical memory size");
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/nnc-ckpt-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_errors();
  test_lock();
  test_validation();
  test_hook();
  test_early_stop();
  test_bytes();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("warning: cannot remove %s\n", tmpdir);
  return check_done();
}
