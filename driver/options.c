/* driver/options.c - parsing and documenting the nnc command line.
 *
 * Every option is one row of `options` below: its name, the value it takes,
 * how that value is read and where it goes, and its help line.  Parsing,
 * `--help` and the "did you mean" suggestions all come from that table.
 * Options take `--name=value` or `--name value`.  An unknown option or value
 * is an error (with a suggestion), never ignored.
 */
#include "driver/options.h"

#include "driver/onnx.h"

#include "codegen/backend.h"
#include "support/diag.h"
#include "passes/pass.h"
#include "runtime/memlimit.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nnc: error: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* ---- values -------------------------------------------------------------------------------- */

/* A whole number in [min, max] from an option's value. */
static bool int_value(const char *name, const char *value, int64_t min, int64_t max, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if (!*value || *end || errno || v < min || v > max) {
    bad("option '%s' needs a whole number from %lld to %lld", name, (long long)min, (long long)max);
    return false;
  }
  *out = v;
  return true;
}

/* A finite number from an option's value. */
static bool real_value(const char *name, const char *value, double *out) {
  char *end;
  double v = strtod(value, &end);
  if (!*value || *end || !isfinite(v)) {
    bad("option '%s' needs a number, found '%s'", name, value);
    return false;
  }
  *out = v;
  return true;
}

/* A hyper-parameter's value (--lr, --hyper NAME=VALUE): an f32 in the
 * trainer, so within its range (1e39 would be inf); a learning rate is
 * positive, as in the train block. */
static bool hyper_value(const char *name, const char *hyper, const char *value, double *out) {
  if (!real_value(name, value, out)) return false;
  if (!isfinite((float)*out)) {
    bad("option '%s' needs a number within the f32 range, found '%s'", name, value);
    return false;
  }
  if (!strcmp(hyper, "lr") && !((float)*out > 0)) { /* 1e-50 is 0 in f32 */
    bad("option '%s' needs a positive learning rate, found '%s'", name, value);
    return false;
  }
  return true;
}

/* NAME=VALUE (--hyper, --backend-opt): a non-empty name before an '='. */
static bool has_key(const char *name, const char *what, const char *value) {
  const char *eq = strchr(value, '=');
  if (eq && eq != value) return true;
  bad("option '%s' needs %s=VALUE, found '%s'", name, what, value);
  return false;
}

/* Appends to one of the repeatable lists (--hyper, --plugin). */
static bool push(const char **list, int *n, int max, const char *name, const char *value) {
  if (*n == max) {
    bad("too many '%s' options (limit %d)", name, max);
    return false;
  }
  list[(*n)++] = value;
  return true;
}

/* Appends KEY=VALUE to the backend options; flag: the shorthand that gave
 * it (NULL = --backend-opt).  -1 to go on, else the exit code. */
static int add_backend_opt(Options *o, const char *flag, const char *kv) {
  if (o->nbackend_opts == MAX_BACKEND_OPTS) {
    bad("too many backend options (limit %d)", MAX_BACKEND_OPTS);
    return 1;
  }
  o->backend_opt_flags[o->nbackend_opts] = flag;
  o->backend_opts[o->nbackend_opts++] = kv;
  return -1;
}

static bool valid_stage(const char *name) {
  return !strcmp(name, "parse") || !strcmp(name, "elaborate") || pass_find(name) || !strcmp(name, "lower") ||
         kpass_find(name);
}
static bool graph_pass(const char *name) { return pass_find(name) != NULL; }
static bool kernel_pass(const char *name) { return kpass_find(name) != NULL; }

/* ---- the table ------------------------------------------------------------------------------ */

typedef struct OptionDef OptionDef;

/* How an option's value is read, and where it goes (OptionDef.field). */
typedef enum {
  ARG_FLAG,     /* no value: the bool at field becomes true */
  ARG_TEXT,     /* any text: the const char * at field */
  ARG_INT,      /* a whole number in [min, max]: the int64_t at field */
  ARG_POSITIVE, /* a positive finite number: the double at field */
  ARG_BYTES,    /* a size with an optional K, M, G or T suffix: the int64_t at field */
  ARG_BACKEND,  /* a shorthand for --backend-opt=KEY=VALUE (key): non-empty text, or with max a whole number */
  ARG_CALL,     /* read by set() */
} ArgKind;

struct OptionDef {
  const char *name;  /* "--epochs"; NULL: a section heading (help) */
  const char *value; /* what it takes, for --help ("N"); NULL = a flag */
  ArgKind kind;
  size_t field;      /* offsetof(Options, ...) */
  int64_t min, max;  /* ARG_INT, ARG_BACKEND */
  const char *key;   /* ARG_BACKEND: the backend option's key */
  const char *shown; /* --help's left column when not NAME[=VALUE] */
  /* ARG_CALL: reads value into o; returns -1 to go on, else the exit code. */
  int (*set)(Options *o, const OptionDef *d, const char *value);
  const char *help;  /* NULL: not in --help (-O1 .. -O3 are under -O0) */
};

static int set_help(Options *o, const OptionDef *d, const char *value);
static int set_version(Options *o, const OptionDef *d, const char *value);
static int set_list_passes(Options *o, const OptionDef *d, const char *value);
static int set_emit(Options *o, const OptionDef *d, const char *value);
static int set_passes(Options *o, const OptionDef *d, const char *value);
static int set_kernel_passes(Options *o, const OptionDef *d, const char *value);
static int set_print_after(Options *o, const OptionDef *d, const char *value);
static int set_stop_after(Options *o, const OptionDef *d, const char *value);
static int set_opt_level(Options *o, const OptionDef *d, const char *value);
static int set_color(Options *o, const OptionDef *d, const char *value);
static int set_lr(Options *o, const OptionDef *d, const char *value);
static int set_hyper(Options *o, const OptionDef *d, const char *value);
static int set_plugin(Options *o, const OptionDef *d, const char *value);
static int set_validation(Options *o, const OptionDef *d, const char *value);
static int set_backend_opt(Options *o, const OptionDef *d, const char *value);

#define AT(f) offsetof(Options, f)
#define SECTION(TITLE) {.name = NULL, .help = TITLE}
#define FLAG(NAME, F, HELP) {.name = NAME, .kind = ARG_FLAG, .field = AT(F), .help = HELP}
#define TEXT(NAME, VALUE, F, HELP) {.name = NAME, .value = VALUE, .kind = ARG_TEXT, .field = AT(F), .help = HELP}
#define INT(NAME, F, MIN, MAX, HELP) \
  {.name = NAME, .value = "N", .kind = ARG_INT, .field = AT(F), .min = MIN, .max = MAX, .help = HELP}
#define POSITIVE(NAME, F, HELP) {.name = NAME, .value = "X", .kind = ARG_POSITIVE, .field = AT(F), .help = HELP}
#define CALL(NAME, VALUE, SET, HELP) {.name = NAME, .value = VALUE, .kind = ARG_CALL, .set = SET, .help = HELP}
#define SHORTHAND(NAME, VALUE, KEY, MAX, HELP) \
  {.name = NAME, .value = VALUE, .kind = ARG_BACKEND, .min = 1, .max = MAX, .key = KEY, .help = HELP}

/* Help texts are wrapped to the terminal's 80 columns; {targets},
 * {default} and {emits} name what the registered backends declare, and a
 * shorthand's help ends with the targets that read its key. */
static const OptionDef options[] = {
    SECTION("Output"),
    TEXT("-o", "FILE", output, "write the output to FILE ('-' = stdout)"),
    TEXT("--target", "NAME", target, "the target: {targets} (default {default}), or a plugin's (see --list-targets)"),
    CALL("--emit", "KIND", set_emit,
         "ast: the syntax tree; ir: the graph IR (text); dot: the graph IR for Graphviz; kernels: the kernel IR "
         "after lowering, as the target schedules it; onnx: the prediction as an ONNX model, with --weights; or "
         "what the target writes ({emits}), which implies the first target that writes it (without --emit: a "
         "trainer executable, -o default 'train')"),
    TEXT("--weights", "FILE", weights,
         "the trained parameters --emit=onnx writes into the model (a --save file or a checkpoint)"),
    SHORTHAND("--cpu", "NAME", "cpu", 0,
              "the CPU to generate code for (an LLVM CPU name such as x86-64-v3 or skylake-avx512; default: this "
              "host)"),
    SHORTHAND("--schedule", "SPEC", "schedule", 0,
              "the matmul tiles: [KERNEL:]mr=N,nr=N,kc=N,mc=N,nc=N or [KERNEL:]off, items separated by ';', or "
              "@FILE (docs/codegen-cpu.md); --emit=kernels shows the schedule"),
    SHORTHAND("--jobs", "N", "jobs", 64,
              "compile the kernels in N parts on N threads (default: one per core, at most 8)"),
    SHORTHAND("--local-mem", "BYTES", "local-mem", INT64_C(1) << 31,
              "local memory a kernel may use for matmul tiles (default 32768)"),
    SHORTHAND("--gpu-arch", "sm_XY", "gpu-arch", 0,
              "the NVIDIA GPU generation to generate PTX for: sm_75 to sm_90a (default sm_90)"),
    TEXT("--model", "NAME", model, "the model to compile when a file has several"),

    SECTION("Pipeline"),
    {.name = "-O0", .kind = ARG_CALL, .set = set_opt_level, .shown = "-O0 .. -O3",
     .help = "optimisation level (default -O2)"},
    CALL("-O1", NULL, set_opt_level, NULL),
    CALL("-O2", NULL, set_opt_level, NULL),
    CALL("-O3", NULL, set_opt_level, NULL),
    CALL("--print-after", "PASS", set_print_after,
         "print the IR after PASS to stderr (repeatable, or a comma list); passes: parse, elaborate, the graph "
         "passes, lower and the kernel passes (see --list-passes)"),
    FLAG("--print-after-all", print_after_all, "print the IR after every pass"),
    CALL("--stop-after", "PASS", set_stop_after, "stop after PASS and emit its IR"),
    CALL("--passes", "A,B,...", set_passes, "run exactly these graph passes, in order"),
    CALL("--kernel-passes", "A,B,...", set_kernel_passes,
         "run exactly these kernel passes, in order, after lowering or on a .kir file's kernel IR (none: "
         "--kernel-passes=)"),
    CALL("--list-passes", NULL, set_list_passes, "list the graph and kernel passes"),
    FLAG("--stats", stats, "print pass statistics to stderr"),

    SECTION("Diagnostics"),
    CALL("--color", "WHEN", set_color, "auto (default), always or never"),
    FLAG("--verify", verify,
         "check diagnostics against '# expected-error {{...}}' comments instead of printing them (for tests)"),
    FLAG("-v", verbose, "print the stages and their times"),

    SECTION("Training in the interpreter"),
    FLAG("--run", run, "train the model as its train block says (implies --target=interp); prints one line per epoch"),
    FLAG("--gradcheck", gradcheck,
         "check the gradients against central differences of the mean loss (f64, a batch of 4 from the train "
         "block's data, else random)"),
    POSITIVE("--gradcheck-tol", gradcheck_tol, "largest relative error accepted (default 1e-4)"),
    FLAG("--gradcheck-allow-zero", gradcheck_allow_zero,
         "pass parameters that no gradient reaches (all checked elements 0; they fail the check otherwise)"),
    INT("--epochs", epochs, 1, INT64_C(1) << 30, "epochs to train (overrides the train block)"),
    INT("--batch", batch, 1, INT64_C(1) << 24, "samples per step (overrides the train block)"),
    INT("--steps", steps, 1, INT64_MAX, "stop after N training steps"),
    CALL("--lr", "X", set_lr, "set the optimizer's 'lr'"),
    CALL("--hyper", "NAME=VALUE", set_hyper, "set any optimizer hyper-parameter (repeatable)"),
    INT("--seed", seed, 0, INT64_C(1) << 53, "initialisation and shuffling seed"),
    TEXT("--data", "PATH", data, "train on PATH instead of the train block's data"),
    FLAG("--no-shuffle", no_shuffle, "keep the data in file order"),
    TEXT("--save", "FILE", save, "write the trained parameters as safetensors"),
    TEXT("--metrics", "FILE", metrics, "write one CSV row per epoch"),
    CALL("--validation", "F", set_validation,
         "hold out the last fraction F of the training data and report val_loss and val_<metric> every epoch "
         "(overrides the train block; 0 = none)"),
    INT("--early-stop", early_stop, 1, INT64_C(1) << 30,
        "stop after N epochs without a lower val_loss; --save then writes the best epoch's weights"),
    TEXT("--plot", "FILE.svg", plot, "draw the loss and metric curves, rewritten after every epoch"),
    FLAG("--f64", f64, "run the interpreter in double precision"),
    TEXT("--checkpoint", "DIR", checkpoint, "save DIR/checkpoint.safetensors every epoch (atomically)"),
    INT("--checkpoint-every", checkpoint_every, 1, INT64_MAX, "... every N steps instead"),
    TEXT("--resume", "DIR", resume, "continue from DIR's checkpoint, bit for bit"),
    FLAG("--overwrite-checkpoint", overwrite_checkpoint, "replace a checkpoint already in --checkpoint's DIR"),
    {.name = "--max-memory", .value = "BYTES", .kind = ARG_BYTES, .field = AT(max_memory),
     .help = "refuse models needing more memory (K, M, G, T suffixes; default: this machine's physical memory)"},

    SECTION("Backends and plugins (docs/backends.md)"),
    CALL("--plugin", "PATH.so", set_plugin,
         "load a backend plugin (repeatable); plugins are also found in $NNC_PLUGIN_PATH and PREFIX/lib/nnc/plugins"),
    CALL("--backend-opt", "KEY=VALUE", set_backend_opt, "an option for the target's backend (repeatable)"),
    FLAG("--list-targets", list_targets, "list the built-in and plugin targets"),
    TEXT("--check-backend", "NAME", check_backend,
         "the conformance check: train small models with the target NAME and compare with the interpreter"),
    POSITIVE("--check-tol", check_tol, "its largest relative difference (default 1e-4)"),

    SECTION(""),
    CALL("--version", NULL, set_version, "the nnc and LLVM versions"),
    CALL("--help", NULL, set_help, "this text"),
};
enum { NOPTIONS = sizeof options / sizeof *options };

static const OptionDef *find_option(const char *name) {
  for (int i = 0; i < NOPTIONS; i++)
    if (options[i].name && !strcmp(options[i].name, name)) return &options[i];
  return NULL;
}

/* The known option sharing the longest prefix with s, for suggestions. */
static const char *closest_option(const char *s) {
  const char *best = NULL;
  size_t bestn = 3;
  for (int i = 0; i < NOPTIONS; i++) {
    const char *name = options[i].name;
    size_t n = 0;
    while (name && s[n] && s[n] == name[n]) n++;
    if (n > bestn) best = name, bestn = n;
  }
  return best;
}

/* Reads value into o as row d says: -1 to go on, else the exit code. */
static int apply(Options *o, const OptionDef *d, const char *value) {
  void *at = (char *)o + d->field;
  switch (d->kind) {
  case ARG_FLAG: *(bool *)at = true; return -1;
  case ARG_TEXT: *(const char **)at = value; return -1;
  case ARG_BACKEND: {
    int64_t n;
    if (d->max ? !int_value(d->name, value, d->min, d->max, &n) : !*value) {
      if (!d->max) bad("option '%s' needs a value, found an empty one", d->name);
      return 1;
    }
    size_t len = strlen(d->key) + strlen(value) + 2;
    char *kv = nnc_xmalloc(len); /* held by the Options, as argv is */
    snprintf(kv, len, "%s=%s", d->key, value);
    return add_backend_opt(o, d->name, kv);
  }
  case ARG_INT: return int_value(d->name, value, d->min, d->max, (int64_t *)at) ? -1 : 1;
  case ARG_POSITIVE:
    if (!real_value(d->name, value, (double *)at)) return 1;
    if (*(double *)at > 0) return -1;
    bad("option '%s' needs a positive number, found '%s'", d->name, value);
    return 1;
  case ARG_BYTES:
    if (rt_parse_bytes(value, (int64_t *)at) == 0) return -1;
    bad("option '%s' needs a size in bytes, with an optional K, M, G or T suffix; found '%s'", d->name, value);
    return 1;
  case ARG_CALL: return d->set(o, d, value);
  }
  return 1;
}

/* ---- options read by a function ------------------------------------------------------------------ */

static int set_emit(Options *o, const OptionDef *d, const char *value) {
  (void)d;
  static const struct { const char *name; EmitKind kind; } own[] = {
      {"ast", EMIT_AST}, {"ir", EMIT_IR}, {"dot", EMIT_DOT}, {"kernels", EMIT_KERNELS}, {"onnx", EMIT_ONNX}};
  o->emit_name = value;
  o->emit = EMIT_BACKEND; /* a kind the target writes: checked with the target */
  for (size_t i = 0; i < sizeof own / sizeof *own; i++)
    if (!strcmp(value, own[i].name)) o->emit = own[i].kind;
  return -1;
}

/* Each stage of a comma list, which known() must accept (a stage, a graph
 * pass, a kernel pass: `what`); its pieces are held by the Options, or NULL. */
static char *stages(const OptionDef *d, const char *value, bool (*known)(const char *), const char *what) {
  char *copy = nnc_xstrdup(value);
  for (char *s = copy; s && *s;) {
    size_t n = strcspn(s, ",");
    char c = s[n];
    s[n] = 0;
    bool ok = known(s);
    if (!ok) bad("unknown %s '%s' in %s (see --list-passes)", what, s, d->name);
    s[n] = c;
    if (!ok) {
      free(copy);
      return NULL;
    }
    s += n + (c == ',');
  }
  return copy;
}

static int set_print_after(Options *o, const OptionDef *d, const char *value) {
  char *copy = stages(d, value, valid_stage, "pass");
  if (!copy) return 1;
  for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
    if (o->nprint_after < MAX_PRINT_AFTER) o->print_after[o->nprint_after++] = tok;
  return -1;
}

static int set_stop_after(Options *o, const OptionDef *d, const char *value) {
  if (!valid_stage(value)) {
    bad("unknown pass '%s' in %s (see --list-passes)", value, d->name);
    return 1;
  }
  o->stop_after = value;
  return -1;
}

/* --passes, --kernel-passes: a list of passes known() accepts, into *field. */
static int pass_list(const OptionDef *d, const char *value, bool (*known)(const char *), const char *what,
                     const char **field) {
  char *copy = stages(d, value, known, what);
  bool ok = copy != NULL;
  free(copy);
  *field = value;
  return ok ? -1 : 1;
}

static int set_passes(Options *o, const OptionDef *d, const char *value) {
  return pass_list(d, value, graph_pass, "pass", &o->passes);
}

static int set_kernel_passes(Options *o, const OptionDef *d, const char *value) {
  return pass_list(d, value, kernel_pass, "kernel pass", &o->kernel_passes);
}

static int set_opt_level(Options *o, const OptionDef *d, const char *value) {
  (void)value;
  o->opt_level = d->name[2] - '0';
  return -1;
}

static int set_color(Options *o, const OptionDef *d, const char *value) {
  static const char *const names[] = {"auto", "always", "never"}; /* ORDER ColorMode */
  for (int i = 0; i < 3; i++)
    if (!strcmp(value, names[i])) {
      o->color = (ColorMode)i;
      return -1;
    }
  bad("unknown %s value '%s'; expected auto, always or never", d->name, value);
  return 1;
}

static int set_lr(Options *o, const OptionDef *d, const char *value) {
  if (!hyper_value(d->name, "lr", value, &o->lr)) return 1;
  o->has_lr = true;
  return -1;
}

static int set_hyper(Options *o, const OptionDef *d, const char *value) {
  if (!has_key(d->name, "NAME", value)) return 1;
  const char *eq = strchr(value, '=');
  char hyper[64];
  double v;
  snprintf(hyper, sizeof hyper, "%.*s", (int)(eq - value), value);
  if (!hyper_value(d->name, hyper, eq + 1, &v)) return 1;
  return push(o->hypers, &o->nhypers, MAX_HYPERS, d->name, value) ? -1 : 1;
}

static int set_validation(Options *o, const OptionDef *d, const char *value) {
  if (!real_value(d->name, value, &o->validation)) return 1;
  if (o->validation >= 0 && o->validation < 1) return -1;
  bad("option '%s' needs a fraction from 0 (none) to below 1, found '%s'", d->name, value);
  return 1;
}

static int set_plugin(Options *o, const OptionDef *d, const char *value) {
  return push(o->plugins, &o->nplugins, MAX_PLUGINS, d->name, value) ? -1 : 1;
}

static int set_backend_opt(Options *o, const OptionDef *d, const char *value) {
  return has_key(d->name, "KEY", value) ? add_backend_opt(o, NULL, value) : 1;
}

static int set_version(Options *o, const OptionDef *d, const char *value) {
  (void)o, (void)d, (void)value;
  printf("nnc %s (LLVM %s)\n", NNC_VERSION, NNC_LLVM_VERSION);
  return 0;
}

static int set_list_passes(Options *o, const OptionDef *d, const char *value) {
  (void)o, (void)d, (void)value;
  printf("Passes (default order):\n  parse\n  elaborate\n");
  for (const Pass *p = nnc_graph_passes; p->name; p++) printf("  %-12s %s\n", p->name, p->summary);
  printf("  lower        the training step as kernel IR, one kernel per materialized value\n");
  printf("\nKernel passes (--kernel-passes; the first two by default, the rest when named):\n");
  for (const KPass *p = nnc_kernel_passes; p->name; p++) printf("  %-19s %s\n", p->name, p->summary);
  return 0;
}

/* ---- --help ----------------------------------------------------------------------------------- */

/* "a,b,c" as "a, b or c" into buf; "none" for an empty or NULL list. */
static const char *spoken_list(char *buf, size_t size, const char *list) {
  int n = 0, total = 0;
  for (const char *s = list; s && *s; s++) total += *s == ',';
  total += list && *list;
  buf[0] = 0;
  for (const char *s = list; s && *s && n < total; n++) {
    size_t len = strcspn(s, ","), at = strlen(buf);
    snprintf(buf + at, size - at, "%s%.*s", n == 0 ? "" : n + 1 == total ? " or " : ", ", (int)len, s);
    s += len + (s[len] == ',');
  }
  return total ? buf : "none";
}

/* {emits}: "cpu: llvm, asm or obj; opencl, fpga, asic: cl", targets that
 * write the same kinds together. */
static void emit_kinds(char *buf, size_t size) {
  buf[0] = 0;
  for (int i = 0, n = backend_count(); i < n; i++) {
    const NncBackend *b = backend_at(i, NULL);
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) {
      const NncBackend *a = backend_at(j, NULL);
      seen = a->emits && b->emits && !strcmp(a->emits, b->emits);
    }
    if (!b->emits || !*b->emits || seen) continue;
    size_t at = strlen(buf);
    snprintf(buf + at, size - at, "%s%s", at ? "; " : "", b->name);
    for (int j = i + 1; j < n; j++) {
      const NncBackend *c = backend_at(j, NULL);
      at = strlen(buf);
      if (c->emits && !strcmp(c->emits, b->emits)) snprintf(buf + at, size - at, ", %s", c->name);
    }
    char kinds[256];
    at = strlen(buf);
    snprintf(buf + at, size - at, ": %s", spoken_list(kinds, sizeof kinds, b->emits));
  }
}

/* A row's help with its {placeholders} filled in. */
static void expand_help(const OptionDef *d, char *out, size_t size) {
  char names[1024], spoken[1024];
  out[0] = 0;
  for (const char *s = d->help; *s;) {
    size_t at = strlen(out);
    if (!strncmp(s, "{targets}", 9)) {
      backend_names(names, sizeof names, 0, NULL);
      snprintf(out + at, size - at, "%s", spoken_list(spoken, sizeof spoken, names));
      s += 9;
    } else if (!strncmp(s, "{default}", 9)) {
      snprintf(out + at, size - at, "%s", backend_default()->name);
      s += 9;
    } else if (!strncmp(s, "{emits}", 7)) {
      emit_kinds(names, sizeof names);
      snprintf(out + at, size - at, "%s", names);
      s += 7;
    } else {
      snprintf(out + at, size - at, "%c", *s++);
    }
  }
  if (d->kind == ARG_BACKEND && backend_names(names, sizeof names, 'o', d->key)) {
    size_t at = strlen(out);
    snprintf(out + at, size - at, "; for --target=%s", spoken_list(spoken, sizeof spoken, names));
  }
}

/* Prints text from column `col` on, wrapped before column 80, every line
 * after the first indented to col. */
static void print_wrapped(const char *text, int col) {
  int at = col;
  for (const char *s = text; *s;) {
    while (*s == ' ') s++;
    size_t len = strcspn(s, " ");
    if (at > col && at + 1 + (int)len > 79) {
      printf("\n%*s", col, "");
      at = col;
    }
    if (at > col) putchar(' '), at++;
    printf("%.*s", (int)len, s);
    at += (int)len;
    s += len;
  }
  putchar('\n');
}

static int set_help(Options *o, const OptionDef *d, const char *value) {
  (void)o, (void)d, (void)value;
  enum { COL = 27 };
  printf("usage: nnc FILE [options]\n\nCompiles a .nn model (or a .nnir graph IR or .kir kernel IR file) into a\ntraining program.\n");
  for (int i = 0; i < NOPTIONS; i++) {
    const OptionDef *r = &options[i];
    if (!r->name) {
      printf(*r->help ? "\n%s:\n" : "\n", r->help);
      continue;
    }
    if (!r->help) continue;
    char left[64], help[2048];
    if (r->shown)
      snprintf(left, sizeof left, "%s", r->shown);
    else
      snprintf(left, sizeof left, "%s%s%s", r->name, !r->value ? "" : r->name[1] == '-' ? "=" : " ",
               r->value ? r->value : "");
    expand_help(r, help, sizeof help);
    printf("  %-*s", COL - 3, left);
    if ((int)strlen(left) > COL - 3) printf("\n%*s", COL - 1, "");
    putchar(' ');
    print_wrapped(help, COL);
  }
  printf("\nExit status: 0 on success, 1 on an error in the input, 70 on an internal error.\n");
  return 0;
}

/* ---- after parsing: the target ----------------------------------------------------------------------- */

/* Every backend option must be one the target reads (NncBackend.options). */
static bool backend_opts_known(const NncBackend *b, const Options *o) {
  const char *known = NNC_BACKEND_HAS(b, options) ? b->options : NULL;
  for (int i = 0; i < o->nbackend_opts; i++) {
    const char *kv = o->backend_opts[i], *eq = strchr(kv, '='), *flag = o->backend_opt_flags[i];
    char key[128], takers[512], buf[512];
    snprintf(key, sizeof key, "%.*s", (int)(eq ? eq - kv : (int)strlen(kv)), kv);
    if (backend_list_has(known, key)) continue;
    if (flag && backend_names(takers, sizeof takers, 'o', key))
      bad("%s is an option of --target=%s; --target=%s does not take it", flag, spoken_list(buf, sizeof buf, takers),
          b->name);
    else if (flag)
      bad("%s is an option no target takes", flag);
    else if (known && *known)
      bad("--backend-opt=%s: target '%s' has no option '%s' (its options: %s)", kv, b->name, key, known);
    else
      bad("--backend-opt=%s: target '%s' takes no --backend-opt options", kv, b->name);
    return false;
  }
  return true;
}

/* The target's backend: --target's, else the one --run or --emit implies,
 * else the default; then what it writes and reads must match --emit and
 * the backend options.  False after an error. */
static bool resolve_target(Options *o) {
  const NncBackend *b = NULL;
  bool backend_emit = o->emit == EMIT_BACKEND;
  if (o->target) {
    b = backend_find(o->target, true);
    if (!b) {
      char names[1024], buf[1024];
      backend_names(names, sizeof names, 0, NULL);
      if (!diag_error_count())
        bad("unknown target '%s'; expected %s, or a plugin's (see --list-targets)", o->target,
            spoken_list(buf, sizeof buf, names));
      return false;
    }
  } else if (o->run) {
    b = &nnc_backend_interp;
  } else if (backend_emit && !backend_list_has(backend_default()->emits, o->emit_name)) {
    b = backend_emitting(o->emit_name); /* --emit=ptx: the target that writes PTX */
    if (!b && backend_load_search_path()) b = backend_emitting(o->emit_name);
  }
  if (!b) b = backend_default();
  if (o->run && b != &nnc_backend_interp) {
    bad("--run trains with the interpreter; it cannot be combined with --target=%s", b->name);
    return false;
  }
  o->backend = b;
  o->target = b->name;
  if (backend_emit && !backend_list_has(b->emits, o->emit_name)) {
    char writers[512], buf[512], buf2[512];
    const char *mine = spoken_list(buf, sizeof buf, b->emits);
    if (backend_names(writers, sizeof writers, 'e', o->emit_name))
      bad("--target=%s cannot write --emit=%s (it writes %s); --emit=%s is --target=%s's", b->name, o->emit_name,
          mine, o->emit_name, spoken_list(buf2, sizeof buf2, writers));
    else
      bad("unknown --emit kind '%s'; expected ast, ir, dot, kernels or a kind the target writes (--target=%s: %s)",
          o->emit_name, b->name, mine);
    return false;
  }
  return backend_opts_known(b, o);
}

static void list_targets(void) {
  printf("Targets:\n");
  for (int i = 0, n = backend_count(); i < n; i++) {
    const char *origin;
    const NncBackend *b = backend_at(i, &origin);
    printf("  %-8s %s", b->name, b->description ? b->description : "");
    if (strcmp(backend_device(b), "-")) printf(" (device: %s)", backend_device(b));
    if (origin) printf(" [plugin %s]", origin);
    putchar('\n');
  }
}

/* --emit=onnx and --weights go together, with -o FILE, in an nnc built with ONNX. */
static bool onnx_options_valid(const Options *o) {
  if (o->emit != EMIT_ONNX) {
    if (o->weights) bad("--weights goes with --emit=onnx (a trainer loads weights with --load FILE)");
    return !o->weights;
  }
  const char *why = onnx_unavailable();
  if (why)
    bad("%s", why);
  else if (!o->weights)
    bad("--emit=onnx needs the trained weights: --weights FILE (a --save file or a checkpoint)");
  else if (!o->output || !strcmp(o->output, "-"))
    bad("--emit=onnx writes a file: give it with -o FILE.onnx");
  else if (o->run || o->gradcheck)
    bad("--emit=onnx cannot be combined with %s", o->run ? "--run" : "--gradcheck");
  else
    return true;
  return false;
}

/* ---- parsing ------------------------------------------------------------------------------------ */

int options_parse(int argc, char **argv, Options *o) {
  memset(o, 0, sizeof *o);
  o->opt_level = 2;
  o->epochs = o->batch = o->steps = o->seed = -1;
  o->validation = -1;
  o->gradcheck_tol = 1e-4;
  o->check_tol = 1e-4;
  const char *color_env = getenv("NNC_COLOR");
  o->color = color_env && !strcmp(color_env, "never") ? COLOR_NEVER
             : color_env && !strcmp(color_env, "always") ? COLOR_ALWAYS
                                                          : COLOR_AUTO;
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i];
    if (arg[0] != '-' || !strcmp(arg, "-")) {
      if (o->input) {
        bad("more than one input file ('%s' and '%s')", o->input, arg);
        return 1;
      }
      o->input = arg;
      continue;
    }
    /* --name=value, or --name value for an option that takes one */
    char name[64];
    const char *eq = strchr(arg, '='), *value = eq ? eq + 1 : NULL;
    snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - arg : (int)strlen(arg)), arg);
    const OptionDef *d = find_option(name);
    if (!d) {
      const char *hint = closest_option(name);
      if (hint)
        bad("unknown option '%s'; did you mean '%s'?", name, hint);
      else
        bad("unknown option '%s'", name);
      return 1;
    }
    if (d->value && !value) {
      if (i + 1 >= argc) {
        bad("option '%s' needs a value", name);
        return 1;
      }
      value = argv[++i];
    } else if (!d->value && value) {
      bad("option '%s' does not take a value", name);
      return 1;
    }
    int rc = apply(o, d, value);
    if (rc >= 0) return rc;
  }
  /* Plugins, then the commands that need no input file. */
  for (int i = 0; i < o->nplugins; i++)
    if (!backend_load_plugin(o->plugins[i])) return 1;
  if (o->list_targets) {
    if (!backend_load_search_path()) return 1;
    list_targets();
    return 0;
  }
  if (o->check_backend) {
    if (o->input) {
      bad("--check-backend=%s takes no input file ('%s'): it compiles its own models", o->check_backend, o->input);
      return 1;
    }
    if (!backend_find(o->check_backend, true)) {
      if (!diag_error_count())
        bad("unknown target '%s' in --check-backend (see --list-targets; load a plugin with --plugin=PATH)",
            o->check_backend);
      return 1;
    }
    return -1;
  }
  if (!o->input) {
    fputs("nnc: error: no input file (try 'nnc --help')\n", stderr);
    return 1;
  }
  if (!resolve_target(o) || !onnx_options_valid(o)) return 1;
  if ((o->checkpoint || o->resume) && !o->run) {
    bad("--checkpoint and --resume go with --run here; a built trainer takes them too (./train --checkpoint DIR)");
    return 1;
  }
  if ((o->checkpoint_every || o->overwrite_checkpoint) && !o->checkpoint) {
    bad("%s needs --checkpoint=DIR", o->checkpoint_every ? "--checkpoint-every" : "--overwrite-checkpoint");
    return 1;
  }
  if (o->run && o->gradcheck) {
    bad("--run and --gradcheck cannot be combined");
    return 1;
  }
  return -1;
}

const char *options_backend_value(const Options *o, const char *key) {
  size_t n = strlen(key);
  for (int i = o->nbackend_opts - 1; i >= 0; i--) /* the last one given wins */
    if (!strncmp(o->backend_opts[i], key, n) && o->backend_opts[i][n] == '=') return o->backend_opts[i] + n + 1;
  return NULL;
}
