/* driver/link.h - building the trainer executable with the system C compiler.
 *
 * Every target ends the same way: the descriptor C (codegen/descriptor.c) and the
 * target's objects (for cpu, the kernels) are compiled and linked with
 * libnnrt by `cc` into one executable.  Intermediate files live in a
 * temporary directory under $TMPDIR that is removed afterwards, unless -v
 * asked to keep it (the commands are printed then).
 */
#ifndef NNC_LINK_H
#define NNC_LINK_H

#include "codegen/descriptor.h"
#include "ir/kernel.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

/* Room for the cpu target's kernel parts (--jobs: at most 64) and the
 * descriptor, wrapper and archive files around them. */
enum { LINK_MAX_TEMPS = 128 };

typedef struct LinkTemp {
  char dir[PATH_MAX];            /* "$TMPDIR/nnc-XXXXXX"; "" until opened */
  char *files[LINK_MAX_TEMPS];   /* paths handed out, removed on close */
  int nfiles;
  bool keep;                     /* leave everything in place (-v) */
} LinkTemp;

/* Creates the directory.  Returns false after reporting an error. */
bool link_temp_open(LinkTemp *t, bool keep);
/* The path of `name` inside the directory (owned by t), or NULL after
 * reporting an error. */
const char *link_temp_file(LinkTemp *t, const char *name);
/* Removes the files and the directory, or says where they were kept. */
void link_temp_close(LinkTemp *t);

/* Where the nnrt headers and libnnrt.a are. */
typedef struct LinkRuntime {
  char include_dir[PATH_MAX];    /* holds nnrt/model.h */
  char lib[PATH_MAX];            /* libnnrt.a */
} LinkRuntime;

/* Looks beside the nnc binary (the build tree: DIR/include, DIR/libnnrt.a),
 * then in DIR/../include and DIR/../lib, ../lib64 or ../lib/<multiarch>/
 * (installed).  exe_dir NULL = the directory of the running nnc.  Returns
 * false after reporting an error. */
bool link_find_runtime(const char *exe_dir, LinkRuntime *rt);

/* Runs `cc -O2 -o output inputs... -I<include> <libnnrt.a> -lz -lm -lpthread
 * -ldl` ($NNC_CC instead of cc when set; plus -fsanitize=address,undefined
 * when this nnc, and so the libnnrt.a built with it, is sanitized).  cc's messages go to stderr; a
 * failure reports "linking failed".  verbose prints the command first. */
bool link_executable(const LinkRuntime *rt, const char *const *inputs, int ninputs, const char *output,
                     bool verbose);

/* The system C compiler: $NNC_CC, else cc. */
const char *link_cc(void);

/* Runs argv (NULL-terminated; printed shell-quoted first when verbose).
 * Returns false after reporting "cannot run" or `failed`. */
bool link_command(const char *const *argv, bool verbose, const char *failed);

/* Writes the descriptor of p (descriptor_write: target, code) into tmp as
 * model.c, then links it with the objects into output.  Returns false
 * after reporting an error. */
bool link_trainer(const KProgram *p, LinkTemp *tmp, const char *target, const DescriptorCode *code,
                  const char *const *objects, int nobjects, const char *output, bool verbose);

#endif
