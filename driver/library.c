/* driver/library.c - nnc --emit=lib (see library.h and docs/library.md).
 *
 * The library is the trainer's descriptor without main() followed by the
 * NAME_* functions, which hand it to the runtime's rt_infer_* (runtime/
 * infer.c), compiled by cc, then one archive: a copy of libnnrt.a with
 * that object and the kernels added by `ar`.  The linker takes from it
 * only the members a program needs; the ones prediction needs use libc,
 * libm and pthreads alone.  NAME.h is written first into the temporary
 * directory, where the wrappers include it, so the header and the code
 * cannot disagree; both files reach DIR whole (written aside, renamed).
 */
#include "driver/library.h"

#include "codegen/descriptor.h"
#include "runtime/files.h"
#include "support/arena.h"
#include "support/diag.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef NNC_VERSION
#define NNC_VERSION "unknown"
#endif

static void write_header(FILE *f, const char *name, double scale, bool tokens) {
  char guard[256];
  size_t i = 0;
  for (; name[i] && i + 8 < sizeof guard; i++) guard[i] = (char)toupper((unsigned char)name[i]);
  snprintf(guard + i, sizeof guard - i, "_NNC_H");
  fprintf(f, "/* %s.h - the inference library of model '%s', written by nnc %s (docs/library.md).\n", name, name,
          NNC_VERSION);
  fprintf(f, " *\n * Build: cc prog.c -I DIR -L DIR -l%s -lm -lpthread\n *\n", name);
  fprintf(f, " * %s_load reads the weights that the trainer's --save or --checkpoint wrote,\n", name);
  fprintf(f, " * checked as its --load checks them.  %s_predict takes n samples: x holds\n", name);
  fprintf(f, " * n x %s_input_size() floats, row-major, the model's input as declared and\n", name);
  fprintf(f, " * already multiplied by the train block's scale (%.9g; the library does not\n", scale == 0 ? 1.0 : scale);
  fprintf(f, " * scale); y receives n x %s_output_size() floats, the `output` values.\n", name);
  if (tokens)
    fprintf(f, " * The input is i32 (tokens): x holds their integer values as floats;\n"
               " * a value that is not an integer is refused.\n");
  fprintf(f, " * A model is used by one thread at a time; models on different threads run\n");
  fprintf(f, " * at once.  After a failure (NULL, or nonzero) %s_error() says why.\n */\n", name);
  fprintf(f, "#ifndef %s\n#define %s\n\n", guard, guard);
  fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  fprintf(f, "typedef struct %s_model %s_model;\n\n", name, name);
  fprintf(f, "%s_model *%s_load(const char *weights_path); /* NULL on error */\n", name, name);
  fprintf(f, "const char *%s_error(void);                 /* why the last call on this thread failed */\n", name);
  fprintf(f, "long %s_input_size(void);                   /* floats per sample */\n", name);
  fprintf(f, "long %s_output_size(void);                  /* floats per prediction */\n", name);
  fprintf(f, "int %s_predict(%s_model *m, const float *x, long n, float *y); /* 0 on success */\n", name, name);
  fprintf(f, "void %s_free(%s_model *m);\n\n", name, name);
  fprintf(f, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* The NAME_* functions, after the descriptor (nnc_model). */
static void write_wrappers(FILE *f, const char *name) {
  fprintf(f, "\n#include <nnrt/infer.h>\n\n#include \"%s.h\"\n\n", name);
  fprintf(f, "%s_model *%s_load(const char *weights_path) { return (%s_model *)rt_infer_load(&nnc_model, "
             "weights_path); }\n", name, name, name);
  fprintf(f, "const char *%s_error(void) { return rt_infer_error(); }\n", name);
  fprintf(f, "long %s_input_size(void) { return rt_infer_input_size(&nnc_model); }\n", name);
  fprintf(f, "long %s_output_size(void) { return rt_infer_output_size(&nnc_model); }\n", name);
  fprintf(f, "int %s_predict(%s_model *m, const float *x, long n, float *y) { return rt_infer_predict((RtInfer *)m, "
             "x, n, y); }\n", name, name);
  fprintf(f, "void %s_free(%s_model *m) { rt_infer_free((RtInfer *)m); }\n", name, name);
}

/* Copies the file at src into out; false after reporting an error. */
static bool copy_into(FILE *out, const char *src) {
  FILE *in = fopen(src, "rb");
  if (!in) {
    diag_error_plain("cannot read '%s': %s", src, strerror(errno));
    return false;
  }
  char buf[1 << 16];
  size_t n;
  bool ok = true;
  while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
  ok = ok && !ferror(in);
  fclose(in);
  if (!ok) diag_error_plain("cannot copy '%s'", src);
  return ok;
}

/* path := the file src (whole: written aside, then renamed). */
static bool replace_with(const char *path, const char *src) {
  RtReplace r;
  RtError err;
  if (rt_replace_open(&r, path, &err) != 0) {
    diag_error_plain("%s", err.msg);
    return false;
  }
  bool ok = copy_into(r.f, src);
  if (rt_replace_commit(&r, ok, &err) != 0) {
    if (ok) diag_error_plain("%s", err.msg);
    return false;
  }
  return true;
}

static bool make_dir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return true;
    diag_error_plain("-o %s: not a directory (--emit=lib writes NAME.h and libNAME.a into a directory)", dir);
    return false;
  }
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    diag_error_plain("cannot create the directory '%s': %s", dir, strerror(errno));
    return false;
  }
  return true;
}

static bool write_file(const char *path, bool (*fill)(FILE *, const void *), const void *ctx) {
  FILE *f = fopen(path, "w");
  if (!f) {
    diag_error_plain("cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  bool ok = fill(f, ctx);
  ok &= fclose(f) == 0;
  if (!ok) diag_error_plain("error writing '%s'", path);
  return ok;
}

typedef struct Source {
  const KProgram *p;
  const char *name;
  double scale;
  bool tokens; /* the input is i32 */
} Source;

static bool fill_header(FILE *f, const void *ctx) {
  const Source *s = ctx;
  write_header(f, s->name, s->scale, s->tokens);
  return !ferror(f);
}

static bool fill_source(FILE *f, const void *ctx) {
  const Source *s = ctx;
  DescriptorCode code = {.kind = NNC_CODE_NATIVE, .library = true};
  if (!descriptor_write(s->p, "cpu", &code, f)) return false;
  write_wrappers(f, s->name);
  return !ferror(f);
}

bool library_write(const LinkRuntime *rt, const KProgram *p, LinkTemp *tmp, const char *const *objects, int nobjects,
                   const char *dir, bool verbose) {
  const Module *m = p->module;
  Source src = {p, m && m->name ? m->name : "model", m ? m->train.scale : 0, false};
  for (uint32_t i = 0; m && i < m->nsyms; i++)
    if (m->syms[i].kind == SYM_INPUT && m->syms[i].type.dtype == DT_I32) src.tokens = true;
  if (!make_dir(dir)) return false;
  char hname[256], aname[256];
  snprintf(hname, sizeof hname, "%s.h", src.name);
  snprintf(aname, sizeof aname, "lib%s.a", src.name);
  const char *header = link_temp_file(tmp, hname), *c = link_temp_file(tmp, "library.c");
  const char *obj = link_temp_file(tmp, "library.o"), *archive = link_temp_file(tmp, aname);
  if (!header || !c || !obj || !archive || !write_file(header, fill_header, &src) ||
      !write_file(c, fill_source, &src))
    return false;
  char inc[PATH_MAX + 8], tinc[PATH_MAX + 8];
  snprintf(inc, sizeof inc, "-I%s", rt->include_dir);
  snprintf(tinc, sizeof tinc, "-I%s", tmp->dir);
  const char *cc[] = {link_cc(), "-O2", "-c", "-o", obj, c, inc, tinc,
#ifdef __SANITIZE_ADDRESS__
                      "-fsanitize=address,undefined", /* as libnnrt.a beside this nnc */
#endif
                      NULL};
  if (!link_command(cc, verbose, "compiling the library failed")) return false;
  FILE *a = fopen(archive, "wb");
  bool ok = a && copy_into(a, rt->lib);
  if (a) ok &= fclose(a) == 0;
  if (!ok) {
    diag_error_plain("cannot write '%s'", archive);
    return false;
  }
  /* The wrappers, the descriptor and the kernels become one object whose
   * only global definitions are NAME_*: the kernels' names (k0_matmul, ...)
   * are the same in every model, and a second model's library must not
   * link against the first one's kernels. */
  char keep[300];
  snprintf(keep, sizeof keep, "--keep-global-symbol=%s_*", src.name);
  const char *model_obj = link_temp_file(tmp, "model.o");
  const char **ld = nnc_xmalloc(sizeof(char *) * (size_t)(nobjects + 8));
  int n = 0;
  ld[n++] = link_cc();
  ld[n++] = "-r";
  ld[n++] = "-nostdlib";
  ld[n++] = "-o";
  ld[n++] = model_obj;
  ld[n++] = obj;
  for (int i = 0; i < nobjects; i++) ld[n++] = objects[i];
  ld[n] = NULL;
  const char *hide[] = {"objcopy", "--wildcard", keep, model_obj, NULL};
  const char *ar[] = {"ar", "rs", archive, model_obj, NULL};
  ok = model_obj && link_command(ld, verbose, "combining the library's objects failed") &&
       link_command(hide, verbose, "hiding the library's kernel symbols failed") &&
       link_command(ar, verbose, "archiving the library failed");
  free(ld);
  char out[PATH_MAX + 256];
  snprintf(out, sizeof out, "%s/%s", dir, hname);
  ok = ok && replace_with(out, header);
  snprintf(out, sizeof out, "%s/%s", dir, aname);
  return ok && replace_with(out, archive);
}
