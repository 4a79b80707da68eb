/* runtime/trainer_options.c - the trained program's command line (see
 * trainer_options.h and docs/trainer.md).
 *
 * Options take `--name=value` or `--name value`, as nnc's do.  Every value
 * is checked here, before anything is opened or loaded; an unknown option
 * gets the closest known one as a suggestion.
 */
#include "trainer_options.h"

#include "data.h"
#include "device.h"
#include "memlimit.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void rt_trainer_error(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

RtCodeKind rt_trainer_code(const RtModelDesc *m) {
  switch (m->code_kind) {
  case RT_MODEL_CODE_PTX: return RT_CODE_PTX;
  case RT_MODEL_CODE_OPENCL_C: return RT_CODE_CL_SOURCE;
  default: return RT_CODE_NATIVE;
  }
}

const char *rt_trainer_default_device(const RtModelDesc *m) {
  RtDeviceKind kind = RT_DEVICE_CPU;
  if (rt_device_kind_for(rt_trainer_code(m), &kind) != 0) return "none";
  return rt_device_first_spec(kind);
}

/* ---- usage ------------------------------------------------------------------------------ */

static const char *data_kind_name(int kind) {
  return kind == RT_DATA_IDX ? "idx" : kind == RT_DATA_CSV ? "csv" : NULL;
}

void rt_trainer_usage(FILE *f, const RtModelDesc *m, const char *prog) {
  const char *kind = data_kind_name(m->data_kind);
  fprintf(f, "usage: %s [options]\n\n", prog);
  fprintf(f, "Trains model '%s' (built by nnc %s for target %s). Defaults come from its train block.\n\n",
          m->name ? m->name : "?", m->nnc_version ? m->nnc_version : "?", m->target ? m->target : "?");
  fprintf(f, "Training:\n");
  fprintf(f, "  --epochs N          epochs to train (default %lld)\n", (long long)m->epochs);
  fprintf(f, "  --batch N           samples per training step (default %lld)\n", (long long)m->batch);
  fprintf(f, "  --steps N           stop after N training steps (default: no limit)\n");
  fprintf(f, "  --lr X              set the optimizer's 'lr' (positive)\n");
  fprintf(f, "  --hyper NAME=VALUE  set any optimizer hyper-parameter (repeatable; see below)\n");
  fprintf(f, "  --seed N            initialisation, shuffling and dropout seed (default %lld)\n", (long long)m->seed);
  fprintf(f, "  --no-shuffle        keep the data in file order (default: %s)\n",
          m->shuffle ? "shuffled every epoch" : "file order");
  fprintf(f, "  --validation F      hold out the last fraction F of the training data and report val_loss\n"
             "                      and val_<metric> every epoch; 0 = none (default %g)\n", m->validation);
  fprintf(f, "  --early-stop N      stop after N epochs without a lower val_loss; --save then writes the\n"
             "                      best epoch's weights (needs a validation split)\n");
  fprintf(f, "\nData:\n");
  if (kind)
    fprintf(f, "  --data PATH         training data, %s (default %s(\"%s\"))\n",
            m->data_kind == RT_DATA_IDX ? "an IDX directory" : "a CSV file", kind, m->data_path ? m->data_path : "");
  else
    fprintf(f, "  --data PATH         training data (the train block names none)\n");
  if (m->data_kind == RT_DATA_CSV)
    fprintf(f, "  --test PATH         a CSV test file (default %s%s%s)\n", m->test_path ? "\"" : "",
            m->test_path ? m->test_path : "none", m->test_path ? "\"" : "");
  else
    fprintf(f, "  --test PATH         a CSV test file (CSV data only; IDX data tests on its t10k files)\n");
  fprintf(f, "\nDevice:\n");
  fprintf(f, "  --device SPEC       cpu, cuda[:N] or opencl[:N] (default %s)\n", rt_trainer_default_device(m));
  fprintf(f, "  --threads N         CPU device threads; 0 = one per CPU (default 0)\n");
  fprintf(f, "  --list-devices      list the devices this machine has, and exit\n");
  if (rt_trainer_code(m) == RT_CODE_CL_SOURCE) { /* a prebuilt binary may replace the source */
    fprintf(f, "  --cl-binary FILE    load the kernels from a prebuilt OpenCL program binary (offline\n"
               "                      FPGA/ASIC flows) instead of building the embedded OpenCL C\n");
    fprintf(f, "  --save-cl-binary FILE  write the program binary the device built, then train\n");
  }
  fprintf(f, "\nOutput:\n");
  fprintf(f, "  --metrics FILE      write one CSV row per epoch\n");
  fprintf(f, "  --save FILE         write the trained parameters as safetensors\n");
  fprintf(f, "  --plot FILE.svg     draw the loss and metric curves, rewritten after every epoch\n");
  fprintf(f, "\nTrained weights:\n");
  fprintf(f, "  --load FILE         start from the parameters of a --save file or a checkpoint (FILE or\n"
             "                      its DIR) instead of the initializers, then train (fine-tune)\n");
  fprintf(f, "  --eval              with --load: evaluate on the test data and print its figures, no training\n");
  fprintf(f, "  --predict PATH      with --load and --output: predict the inputs of PATH (IDX: a directory's\n"
             "                      test images or an images file; CSV: a file of feature columns)\n");
  fprintf(f, "  --output FILE       --predict's CSV: a header, then one row of the output's values per sample\n");
  if (m->data_kind == RT_DATA_TEXT) {
    fprintf(f, "  --generate PROMPT   with --load: print PROMPT and the bytes the model writes after it\n");
    fprintf(f, "  --tokens N          bytes --generate writes (default 256)\n");
    fprintf(f, "  --temperature T     divide the logits by T before each draw; 0 = the most likely byte (default 1)\n");
  }
  fprintf(f, "\nCheckpoints and checks:\n");
  fprintf(f, "  --checkpoint DIR    save DIR/" "checkpoint.safetensors (atomically) as training goes\n");
  fprintf(f, "  --checkpoint-every N  every N steps (default: at the end of every epoch)\n");
  fprintf(f, "  --resume DIR        continue from DIR's checkpoint, exactly where it stopped\n");
  fprintf(f, "  --overwrite-checkpoint  replace a checkpoint already in the --checkpoint DIR (else an error,\n"
             "                      unless it is the one --resume continues)\n");
  fprintf(f, "  --check-numerics    stop at the first nan or inf in any buffer, naming it\n");
  fprintf(f, "  --check-ranks       under MPI: stop when the ranks' parameters differ after an epoch\n");
  fprintf(f, "  --max-memory BYTES  refuse to use more for buffers and data (K, M, G, T suffixes;\n"
             "                      default: physical memory)\n");
  fprintf(f, "  --version, --help\n");
  fprintf(f, "\nOptimizer hyper-parameters (--hyper NAME=VALUE):\n");
  if (m->nhypers == 0) fprintf(f, "  (none)\n");
  int width = 0;
  for (int i = 0; i < m->nhypers; i++)
    if ((int)strlen(m->hyper_names[i]) > width) width = (int)strlen(m->hyper_names[i]);
  for (int i = 0; i < m->nhypers; i++)
    fprintf(f, "  %-*s  %g\n", width, m->hyper_names[i], m->hyper_values[i]);
  fprintf(f, "\nPrints one line per epoch and a final done: line on stdout (see docs/trainer.md).\n");
  fprintf(f, "Exit status: 0 after training, 1 on any error, 130 after SIGINT, 143 after SIGTERM\n"
             "(the step in progress is finished and, with --checkpoint, saved).\n");
}

/* ---- parsing ---------------------------------------------------------------------------- */

static const char *const option_names[] = {
    "--epochs", "--batch",   "--steps",   "--lr",           "--hyper",   "--seed",
    "--data",   "--test",    "--no-shuffle", "--threads",   "--device",  "--metrics",
    "--save",   "--list-devices", "--help", "--version",    "--cl-binary", "--save-cl-binary", "--checkpoint", "--checkpoint-every", "--resume", "--check-numerics",
    "--check-ranks", "--max-memory", "--overwrite-checkpoint", "--load", "--eval", "--predict", "--output", "--validation",
    "--early-stop", "--plot", "--generate", "--tokens", "--temperature", NULL};

static const char *const with_value[] = {"--epochs", "--batch",  "--steps",  "--lr",      "--hyper", "--seed",
                                         "--data",   "--test",   "--threads", "--device", "--metrics", "--save",
                                         "--cl-binary", "--save-cl-binary", "--checkpoint", "--checkpoint-every",
                                         "--resume", "--max-memory", "--load", "--predict", "--output", "--validation",
                                         "--early-stop", "--plot", "--generate", "--tokens", "--temperature", NULL};

/* Levenshtein distance, for suggestions (names are short: at most 63). */
static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 99;
  int row[64];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The known option closest to s: within a few edits (a typo), else the one
 * sharing the longest prefix of at least three letters; NULL if none. */
static const char *closest_option(const char *s) {
  const char *best = NULL;
  int bestd = 99;
  for (int i = 0; option_names[i]; i++) {
    int d = edit_distance(s, option_names[i]);
    int limit = ((int)strlen(option_names[i]) - 2) / 3;
    limit = limit < 1 ? 1 : limit > 2 ? 2 : limit;
    if (d <= limit && d < bestd) best = option_names[i], bestd = d;
  }
  if (best) return best;
  size_t bestn = 4;
  for (int i = 0; option_names[i]; i++) {
    size_t n = 0;
    while (s[n] && s[n] == option_names[i][n]) n++;
    if (n > bestn) best = option_names[i], bestn = n;
  }
  return best;
}

/* A whole number in [min, max] from an option's value. */
static bool int_value(const char *prog, const char *name, const char *value, int64_t min, int64_t max,
                      int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if (!*value || *end || errno || v < min || v > max) {
    rt_trainer_error(prog, "option '%s' needs a whole number from %lld to %lld", name, (long long)min,
                     (long long)max);
    return false;
  }
  *out = v;
  return true;
}

/* A number that is finite as the f32 the kernels get, from an option's
 * value; lr must be positive (a negative one climbs the loss). */
static bool real_value(const char *prog, const char *name, const char *value, double *out) {
  char *end;
  double v = strtod(value, &end);
  if (!*value || *end || !isfinite(v)) {
    rt_trainer_error(prog, "option '%s' needs a number, found '%s'", name, value);
    return false;
  }
  if (!isfinite((float)v)) { /* the message of nnc --run's (driver/options.c) */
    rt_trainer_error(prog, "option '%s' needs a number within the f32 range, found '%s'", name, value);
    return false;
  }
  *out = v;
  return true;
}

static bool lr_value(const char *prog, const char *name, const char *value, double *out) {
  if (!real_value(prog, name, value, out)) return false;
  if ((float)*out > 0) return true;
  rt_trainer_error(prog, "option '%s' needs a positive learning rate, found '%s'", name, value);
  return false;
}

int rt_trainer_parse(int argc, char **argv, const RtModelDesc *m, const char *prog, RtTrainerOptions *o) {
  memset(o, 0, sizeof *o);
  o->prog = prog;
  o->epochs = o->batch = o->seed = -1;
  o->validation = -1;
  o->tokens = -1;
  o->temperature = -1;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (arg[0] != '-' || arg[1] != '-') {
      const char *hint = arg[0] == '-' ? closest_option(arg) : NULL;
      if (hint)
        rt_trainer_error(prog, "unknown option '%s'; did you mean '%s'?", arg, hint);
      else if (arg[0] == '-')
        rt_trainer_error(prog, "unknown option '%s' (see --help)", arg);
      else
        rt_trainer_error(prog, "unexpected argument '%s' (the options are --name=value or --name value; see --help)",
                         arg);
      return 1;
    }
    /* Split --name=value; options that take a value may also take the next argument. */
    char name[64];
    const char *value = NULL;
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, arg, n);
    name[n] = 0;
    if (eq) value = eq + 1;
    bool known = false, takes = false;
    for (int k = 0; option_names[k]; k++) known |= !strcmp(name, option_names[k]);
    for (int k = 0; with_value[k]; k++) takes |= !strcmp(name, with_value[k]);
    if (!known) {
      const char *hint = closest_option(name);
      if (hint)
        rt_trainer_error(prog, "unknown option '%s'; did you mean '%s'?", name, hint);
      else
        rt_trainer_error(prog, "unknown option '%s' (see --help)", name);
      return 1;
    }
    if (takes && !value) {
      if (i + 1 >= argc) {
        rt_trainer_error(prog, "option '%s' needs a value", name);
        return 1;
      }
      value = argv[++i];
    } else if (!takes && value) {
      rt_trainer_error(prog, "option '%s' does not take a value", name);
      return 1;
    }
    if (takes && !*value) { /* --save "" would fail only after training */
      rt_trainer_error(prog, "option '%s' needs a value, found an empty one", name);
      return 1;
    }

    if (!strcmp(name, "--help")) {
      rt_trainer_usage(stdout, m, prog);
      return 0;
    } else if (!strcmp(name, "--version")) {
      printf("%s: model %s, target %s, built by nnc %s (model ABI %d)\n", prog, m->name ? m->name : "?",
             m->target ? m->target : "?", m->nnc_version ? m->nnc_version : "?", m->abi);
      return 0;
    } else if (!strcmp(name, "--epochs")) {
      if (!int_value(prog, name, value, 1, INT64_C(1) << 30, &o->epochs)) return 1;
    } else if (!strcmp(name, "--batch")) {
      if (!int_value(prog, name, value, 1, INT64_C(1) << 24, &o->batch)) return 1;
    } else if (!strcmp(name, "--steps")) {
      if (!int_value(prog, name, value, 1, INT64_MAX, &o->steps)) return 1;
    } else if (!strcmp(name, "--seed")) {
      if (!int_value(prog, name, value, 0, INT64_C(1) << 53, &o->seed)) return 1;
    } else if (!strcmp(name, "--threads")) {
      int64_t t;
      if (!int_value(prog, name, value, 0, 4096, &t)) return 1;
      o->threads = (int)t;
    } else if (!strcmp(name, "--lr")) {
      if (!lr_value(prog, name, value, &o->lr)) return 1;
      o->has_lr = true;
    } else if (!strcmp(name, "--hyper")) {
      const char *eqv = strchr(value, '=');
      double v;
      if (!eqv || eqv == value) {
        rt_trainer_error(prog, "option '%s' needs NAME=VALUE, found '%s'", name, value);
        return 1;
      }
      if (!(strncmp(value, "lr=", 3) ? real_value : lr_value)(prog, name, eqv + 1, &v)) return 1;
      if (o->nhypers == RT_TRAINER_MAX_HYPERS) {
        rt_trainer_error(prog, "too many '%s' options (limit %d)", name, RT_TRAINER_MAX_HYPERS);
        return 1;
      }
      o->hypers[o->nhypers++] = value;
    } else if (!strcmp(name, "--device")) {
      RtDeviceKind kind;
      int index;
      RtError err;
      if (rt_device_parse(value, &kind, &index, &err) != 0) {
        rt_trainer_error(prog, "%s", err.msg);
        return 1;
      }
      o->device = value;
    } else if (!strcmp(name, "--data")) {
      o->data = value;
    } else if (!strcmp(name, "--test")) {
      o->test = value;
    } else if (!strcmp(name, "--no-shuffle")) {
      o->no_shuffle = true;
    } else if (!strcmp(name, "--metrics")) {
      o->metrics = value;
    } else if (!strcmp(name, "--save")) {
      o->save = value;
    } else if (!strcmp(name, "--validation")) {
      if (!real_value(prog, name, value, &o->validation)) return 1;
      if (!(o->validation >= 0 && o->validation < 1)) {
        rt_trainer_error(prog, "option '%s' needs a fraction from 0 (none) to below 1, found '%s'", name, value);
        return 1;
      }
    } else if (!strcmp(name, "--early-stop")) {
      if (!int_value(prog, name, value, 1, INT64_C(1) << 30, &o->early_stop)) return 1;
    } else if (!strcmp(name, "--plot")) {
      o->plot = value;
    } else if (!strcmp(name, "--list-devices")) {
      o->list_devices = true;
    } else if (!strcmp(name, "--checkpoint")) {
      o->checkpoint = value;
    } else if (!strcmp(name, "--checkpoint-every")) {
      if (!int_value(prog, name, value, 1, INT64_MAX, &o->checkpoint_every)) return 1;
    } else if (!strcmp(name, "--resume")) {
      o->resume = value;
    } else if (!strcmp(name, "--load")) {
      o->load = value;
    } else if (!strcmp(name, "--eval")) {
      o->eval = true;
    } else if (!strcmp(name, "--predict")) {
      o->predict = value;
    } else if (!strcmp(name, "--generate")) {
      o->generate = value;
    } else if (!strcmp(name, "--tokens")) {
      if (!int_value(prog, name, value, 0, INT64_C(1) << 31, &o->tokens)) return 1;
    } else if (!strcmp(name, "--temperature")) {
      if (!real_value(prog, name, value, &o->temperature)) return 1;
      if (!(o->temperature >= 0 && o->temperature <= 1e6)) {
        rt_trainer_error(prog, "option '--temperature' needs a number from 0 to 1e6, found '%s'", value);
        return 1;
      }
    } else if (!strcmp(name, "--output")) {
      o->output = value;
    } else if (!strcmp(name, "--overwrite-checkpoint")) {
      o->overwrite_checkpoint = true;
    } else if (!strcmp(name, "--check-numerics")) {
      o->check_numerics = true;
    } else if (!strcmp(name, "--check-ranks")) {
      o->check_ranks = true;
    } else if (!strcmp(name, "--max-memory")) {
      if (rt_parse_bytes(value, &o->max_memory) != 0) {
        rt_trainer_error(prog, "option '%s' needs a size in bytes, with an optional K, M, G or T suffix; found '%s'",
                         name, value);
        return 1;
      }
    } else if (!strcmp(name, "--cl-binary") || !strcmp(name, "--save-cl-binary")) {
      if (rt_trainer_code(m) != RT_CODE_CL_SOURCE) {
        rt_trainer_error(prog, "%s needs a program built for an OpenCL target (this one runs on %s)", name,
                         rt_trainer_default_device(m));
        return 1;
      }
      if (name[2] == 'c') o->cl_binary = value;
      else o->save_cl_binary = value;
    }
  }
  if ((o->checkpoint_every || o->overwrite_checkpoint) && !o->checkpoint) {
    rt_trainer_error(prog, "%s needs --checkpoint DIR", o->checkpoint_every ? "--checkpoint-every" : "--overwrite-checkpoint");
    return 1;
  }
  if (o->load && o->resume) {
    rt_trainer_error(prog, "--load and --resume both set the weights; use one (--resume continues a run, --load "
                     "starts a new one from its weights)");
    return 1;
  }
  if (o->eval && !o->load) {
    rt_trainer_error(prog, "--eval needs --load FILE (the weights to evaluate)");
    return 1;
  }
  if (o->predict && !o->output) {
    rt_trainer_error(prog, "--predict needs --output FILE.csv (where the predictions go)");
    return 1;
  }
  if (o->output && !o->predict) {
    rt_trainer_error(prog, "--output names --predict's file; give --predict PATH too");
    return 1;
  }
  if (o->predict && !o->load) {
    rt_trainer_error(prog, "--predict needs --load FILE (the weights to predict with)");
    return 1;
  }
  if (o->predict && o->eval) {
    rt_trainer_error(prog, "--predict and --eval are two runs; give one");
    return 1;
  }
  if (o->predict && (o->save || o->checkpoint || o->metrics || o->plot)) {
    rt_trainer_error(prog, "--predict trains nothing, so %s has nothing to write", o->save ? "--save" : o->checkpoint ?
                     "--checkpoint" : o->metrics ? "--metrics" : "--plot");
    return 1;
  }
  if ((o->tokens >= 0 || o->temperature >= 0) && !o->generate) {
    rt_trainer_error(prog, "%s sets --generate's text; give --generate PROMPT too", o->tokens >= 0 ? "--tokens" :
                     "--temperature");
    return 1;
  }
  if (o->generate && (o->eval || o->predict)) {
    rt_trainer_error(prog, "--generate and %s are two runs; give one", o->eval ? "--eval" : "--predict");
    return 1;
  }
  if (o->generate && !o->load) {
    rt_trainer_error(prog, "--generate needs --load FILE (the weights to write with)");
    return 1;
  }
  if (o->generate && (o->save || o->checkpoint || o->metrics || o->plot)) {
    rt_trainer_error(prog, "--generate trains nothing, so %s has nothing to write", o->save ? "--save" :
                     o->checkpoint ? "--checkpoint" : o->metrics ? "--metrics" : "--plot");
    return 1;
  }
  if (o->generate && (m->data_kind != RT_DATA_TEXT || m->output_buf < 0)) {
    rt_trainer_error(prog, m->data_kind != RT_DATA_TEXT ? "--generate writes text with a model trained on text "
                     "data; model '%s' is not" : "model '%s' names no prediction: add `output NAME` (its logits) "
                     "and build it again", m->name ? m->name : "?");
    return 1;
  }
  if (o->predict && m->output_buf < 0) {
    rt_trainer_error(prog, "model '%s' names no prediction: add `output NAME` to the model and build it again",
                     m->name ? m->name : "?");
    return 1;
  }
  if (o->eval && (o->save || o->checkpoint || o->metrics || o->plot)) {
    rt_trainer_error(prog, "--eval trains nothing, so %s has nothing to write", o->save ? "--save" : o->checkpoint ?
                     "--checkpoint" : o->metrics ? "--metrics" : "--plot");
    return 1;
  }
  if (o->early_stop && !o->resume && (o->validation >= 0 ? o->validation : m->validation) <= 0) {
    rt_trainer_error(prog, "--early-stop needs a validation split (--validation F, or 'validation' in the train "
                     "block)");
    return 1;
  }
  return -1;
}

/* ---- hyper-parameters --------------------------------------------------------------------- */

/* " (it has lr, momentum)", or " (it has none)". */
static void hyper_list(const RtModelDesc *m, char *buf, size_t len) {
  size_t o = (size_t)snprintf(buf, len, " (it has ");
  for (int i = 0; i < m->nhypers && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", m->hyper_names[i]);
  if (o < len) snprintf(buf + o, len - o, "%s)", m->nhypers ? "" : "none");
}

static bool set_hyper(const RtModelDesc *m, double *hypers, const char *name, double v) {
  bool found = false;
  for (int i = 0; i < m->nhypers; i++)
    if (!strcmp(m->hyper_names[i], name)) hypers[i] = v, found = true;
  return found;
}

bool rt_trainer_hypers(const RtTrainerOptions *o, const RtModelDesc *m, const double *base, double *hypers) {
  char list[512];
  hyper_list(m, list, sizeof list);
  for (int i = 0; i < m->nhypers; i++) hypers[i] = base ? base[i] : m->hyper_values[i];
  if (o->has_lr && !set_hyper(m, hypers, "lr", o->lr)) {
    rt_trainer_error(o->prog, "--lr: the optimizer has no hyper-parameter 'lr'%s", list);
    return false;
  }
  for (int i = 0; i < o->nhypers; i++) {
    const char *eq = strchr(o->hypers[i], '=');
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(eq - o->hypers[i]), o->hypers[i]);
    if (!set_hyper(m, hypers, name, strtod(eq + 1, NULL))) {
      rt_trainer_error(o->prog, "--hyper: the optimizer has no hyper-parameter '%s'%s", name, list);
      return false;
    }
  }
  for (int i = 0; i < m->nhypers; i++) /* the kernels get f32: a finite double may be inf there */
    if (!isfinite((float)hypers[i])) {
      rt_trainer_error(o->prog, "hyper-parameter '%s' is %g, out of range for f32 (at most %.6g in magnitude)",
                       m->hyper_names[i], hypers[i], FLT_MAX);
      return false;
    }
  return true;
}
