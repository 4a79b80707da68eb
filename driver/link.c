/* driver/link.c - the trainer's last step: descriptor + objects + libnnrt
 * -> executable, through the system C compiler (see link.h).
 *
 * cc is started with fork/execvp and an argument vector, never through a
 * shell, so paths with spaces or quotes need no quoting.  With -v the
 * command is printed (shell-quoted, to paste) and the temporary files kept.
 */
#include "driver/link.h"

#include "codegen/descriptor.h"
#include "driver/process.h"
#include "support/diag.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- temporary files ---------------------------------------------------------------- */

bool link_temp_open(LinkTemp *t, bool keep) {
  memset(t, 0, sizeof *t);
  t->keep = keep;
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  if (snprintf(t->dir, sizeof t->dir, "%s/nnc-XXXXXX", tmp) >= (int)sizeof t->dir || !mkdtemp(t->dir)) {
    diag_error_plain("cannot create a temporary directory in '%s': %s", tmp, strerror(errno));
    t->dir[0] = 0;
    return false;
  }
  return true;
}

const char *link_temp_file(LinkTemp *t, const char *name) {
  if (!t->dir[0] || t->nfiles == LINK_MAX_TEMPS) {
    diag_error_plain("too many temporary files");
    return NULL;
  }
  size_t n = strlen(t->dir) + strlen(name) + 2;
  char *path = nnc_xmalloc(n);
  snprintf(path, n, "%s/%s", t->dir, name);
  t->files[t->nfiles++] = path;
  return path;
}

void link_temp_close(LinkTemp *t) {
  if (t->dir[0] && t->keep) fprintf(stderr, "nnc: kept the temporary files in %s\n", t->dir);
  for (int i = 0; i < t->nfiles; i++) {
    if (!t->keep) unlink(t->files[i]);
    free(t->files[i]);
  }
  if (t->dir[0] && !t->keep) rmdir(t->dir);
  t->nfiles = 0;
  t->dir[0] = 0;
}

/* ---- finding libnnrt ------------------------------------------------------------------ */

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* include_dir/nnrt/model.h and lib both exist: fill rt. */
static bool try_pair(LinkRuntime *rt, const char *inc, const char *lib) {
  char header[PATH_MAX + 32];
  snprintf(header, sizeof header, "%s/nnrt/model.h", inc);
  if (!exists(header) || !exists(lib)) return false;
  snprintf(rt->include_dir, sizeof rt->include_dir, "%s", inc);
  snprintf(rt->lib, sizeof rt->lib, "%s", lib);
  return true;
}

bool link_find_runtime(const char *exe_dir, LinkRuntime *rt) {
  char dir[PATH_MAX];
  if (exe_dir) {
    snprintf(dir, sizeof dir, "%s", exe_dir);
  } else {
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) {
      diag_error_plain("cannot find the nnc binary to locate libnnrt: %s", strerror(errno));
      return false;
    }
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
  }
  char inc[PATH_MAX + 16], lib[2 * PATH_MAX + 320];
  snprintf(inc, sizeof inc, "%s/include", dir); /* the build tree */
  snprintf(lib, sizeof lib, "%s/libnnrt.a", dir);
  if (try_pair(rt, inc, lib)) return true;
  snprintf(inc, sizeof inc, "%s/../include", dir); /* installed: PREFIX/bin/nnc */
  static const char *const libdirs[] = {"lib", "lib64", NULL};
  for (int i = 0; libdirs[i]; i++) {
    snprintf(lib, sizeof lib, "%s/../%s/libnnrt.a", dir, libdirs[i]);
    if (try_pair(rt, inc, lib)) return true;
  }
  /* PREFIX/lib/<multiarch>/libnnrt.a (GNUInstallDirs with a /usr prefix) */
  char libroot[PATH_MAX + 8];
  snprintf(libroot, sizeof libroot, "%s/../lib", dir);
  DIR *d = opendir(libroot);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(lib, sizeof lib, "%s/%s/libnnrt.a", libroot, e->d_name);
    if (try_pair(rt, inc, lib)) {
      closedir(d);
      return true;
    }
  }
  if (d) closedir(d);
  diag_error_plain("cannot find libnnrt.a and the nnrt headers beside '%s' (looked in %s and %s/..)", dir, dir, dir);
  return false;
}

/* ---- running cc ------------------------------------------------------------------------- */

/* Prints one argument so that a shell reads it back unchanged. */
static void print_quoted(const char *s) {
  if (*s && !strpbrk(s, " \t\n'\"\\$`*?[]{}()<>|&;!#~")) {
    fputs(s, stderr);
    return;
  }
  fputc('\'', stderr);
  for (; *s; s++) {
    if (*s == '\'')
      fputs("'\\''", stderr);
    else
      fputc(*s, stderr);
  }
  fputc('\'', stderr);
}

const char *link_cc(void) {
  const char *cc = getenv("NNC_CC");
  return cc && *cc ? cc : "cc";
}

bool link_executable(const LinkRuntime *rt, const char *const *inputs, int ninputs, const char *output,
                     bool verbose) {
  const char *cc = link_cc();
  char incflag[PATH_MAX + 8];
  snprintf(incflag, sizeof incflag, "-I%s", rt->include_dir);
  const char **argv = nnc_xmalloc(sizeof(char *) * (size_t)(ninputs + 16));
  int n = 0;
  argv[n++] = cc;
  argv[n++] = "-O2";
  argv[n++] = "-o";
  argv[n++] = output;
  for (int i = 0; i < ninputs; i++) argv[n++] = inputs[i];
  argv[n++] = incflag;
  argv[n++] = rt->lib;
  argv[n++] = "-lz";
  argv[n++] = "-lm";
  argv[n++] = "-lpthread";
  argv[n++] = "-ldl";
#ifdef __SANITIZE_ADDRESS__
  /* An NNC_SANITIZE build: libnnrt.a beside this nnc is instrumented too. */
  argv[n++] = "-fsanitize=address,undefined";
#endif
  argv[n] = NULL;
  bool ok = link_command(argv, verbose, "linking failed");
  free(argv);
  return ok;
}

bool link_command(const char *const *argv, bool verbose, const char *failed) {
  if (verbose) {
    fputs("nnc:", stderr);
    for (int i = 0; argv[i]; i++) {
      fputc(' ', stderr);
      print_quoted(argv[i]);
    }
    fputc('\n', stderr);
  }
  int rc = process_run(argv, NULL);
  if (rc < 0) {
    diag_error_plain("cannot run '%s': %s", argv[0], strerror(errno));
    return false;
  }
  if (rc != 0) {
    diag_error_plain("%s", failed);
    return false;
  }
  return true;
}

bool link_trainer(const KProgram *p, LinkTemp *tmp, const char *target, const DescriptorCode *code,
                  const char *const *objects, int nobjects, const char *output, bool verbose) {
  LinkRuntime rt;
  if (!link_find_runtime(NULL, &rt)) return false;
  const char *desc = link_temp_file(tmp, "model.c");
  if (!desc) return false;
  FILE *f = fopen(desc, "w");
  if (!f) {
    diag_error_plain("cannot write '%s': %s", desc, strerror(errno));
    return false;
  }
  bool ok = descriptor_write(p, target, code, f);
  ok &= fclose(f) == 0;
  if (!ok) {
    diag_error_plain("error writing '%s'", desc);
    return false;
  }
  const char **inputs = nnc_xmalloc(sizeof(char *) * (size_t)(nobjects + 1));
  inputs[0] = desc;
  for (int i = 0; i < nobjects; i++) inputs[i + 1] = objects[i];
  ok = link_executable(&rt, inputs, nobjects + 1, output, verbose);
  free(inputs);
  return ok;
}
