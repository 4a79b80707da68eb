/* runtime/comm.c - ranks over MPI, opened at run time (see comm.h).
 *
 * libmpi is opened with dlopen (libmpi.so.40, Open MPI 3 and 4, then
 * libmpi.so), RTLD_GLOBAL because Open MPI's own plugins resolve their
 * symbols in it.  MPI's handles are not portable: Open MPI's MPI_Comm,
 * MPI_Datatype and MPI_Op are pointers to exported objects
 * (ompi_mpi_comm_world, ...), MPICH's are integer constants.  Both go
 * through one table below (Impl), the only place that knows an
 * implementation; only Open MPI's entry is filled in and tested.
 */
#include "comm.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *Handle; /* MPI_Comm, MPI_Datatype, MPI_Op: pointers in Open MPI */

/* One MPI implementation: its library names and where its handles are. */
typedef struct Impl {
  const char *name;
  const char *libs[3];
  /* Exported objects whose address is the handle. */
  const char *comm_world, *float_type, *double_type, *byte_type, *op_sum, *op_max;
  void *in_place; /* MPI_IN_PLACE */
} Impl;

static const Impl impls[] = {
    {"Open MPI", {"libmpi.so.40", "libmpi.so", NULL}, "ompi_mpi_comm_world", "ompi_mpi_float", "ompi_mpi_double",
     "ompi_mpi_byte", "ompi_mpi_op_sum", "ompi_mpi_op_max", (void *)1},
};

static struct {
  int rank, size;
  bool on; /* joined a job of several ranks through MPI */
  Handle world, f32, f64, byte, sum, max;
  void *in_place;
  int (*init)(int *, char ***);
  int (*finalize)(void);
  int (*comm_rank)(Handle, int *);
  int (*comm_size)(Handle, int *);
  int (*allreduce)(const void *, void *, int, Handle, Handle, Handle);
  int (*bcast)(void *, int, Handle, int, Handle);
  int (*barrier)(Handle);
  int (*abort)(Handle, int);
} C = {.rank = 0, .size = 1};

/* The job's size from the launcher's environment: 0 when not launched by one. */
static int env_size(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
  for (int i = 0; vars[i]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) return atoi(v);
  }
  return getenv("PMIX_RANK") ? 2 : 0; /* PMIx without a size: ask MPI */
}

static int fail(const char *prog, const char *what, const char *detail) {
  fprintf(stderr, "%s%serror: %s%s%s\n", prog ? prog : "", prog ? ": " : "", what, detail ? ": " : "",
          detail ? detail : "");
  return -1;
}

int rt_comm_init(const char *prog) {
  int n = env_size();
  if (n <= 1) return 0; /* one process: nothing to join */
  const Impl *im = &impls[0];
  void *lib = NULL;
  for (int i = 0; !lib && im->libs[i]; i++) lib = dlopen(im->libs[i], RTLD_NOW | RTLD_GLOBAL);
  if (!lib)
    return fail(prog, "this program runs as one of several MPI ranks, but libmpi.so.40 (Open MPI) cannot be opened",
                dlerror());
  void *sym[15];
  const char *names[] = {im->comm_world, im->float_type, im->double_type, im->byte_type, im->op_sum, im->op_max,
                         "MPI_Init", "MPI_Finalize", "MPI_Comm_rank", "MPI_Comm_size", "MPI_Allreduce", "MPI_Bcast",
                         "MPI_Barrier", "MPI_Abort", NULL};
  for (int i = 0; names[i]; i++)
    if (!(sym[i] = dlsym(lib, names[i]))) return fail(prog, "libmpi has no symbol", names[i]);
  C.world = sym[0], C.f32 = sym[1], C.f64 = sym[2], C.byte = sym[3], C.sum = sym[4], C.max = sym[5];
  C.in_place = im->in_place;
  *(void **)&C.init = sym[6];
  *(void **)&C.finalize = sym[7];
  *(void **)&C.comm_rank = sym[8];
  *(void **)&C.comm_size = sym[9];
  *(void **)&C.allreduce = sym[10];
  *(void **)&C.bcast = sym[11];
  *(void **)&C.barrier = sym[12];
  *(void **)&C.abort = sym[13];
  if (C.init(NULL, NULL) != 0) return fail(prog, "MPI_Init failed", NULL);
  if (C.comm_rank(C.world, &C.rank) != 0 || C.comm_size(C.world, &C.size) != 0)
    return fail(prog, "MPI_Comm_rank or MPI_Comm_size failed", NULL);
  C.on = C.size > 1;
  return 0;
}

int rt_comm_rank(void) { return C.rank; }
int rt_comm_size(void) { return C.size; }

/* Large buffers go in pieces of at most 2^30 elements (MPI counts are int). */
static int reduce(void *buf, size_t n, size_t elem, Handle type, Handle op) {
  if (!C.on) return 0;
  for (size_t done = 0; done < n;) {
    size_t k = n - done > (1u << 30) ? (1u << 30) : n - done;
    if (C.allreduce(C.in_place, (char *)buf + done * elem, (int)k, type, op, C.world) != 0) return -1;
    done += k;
  }
  return 0;
}

int rt_comm_sum_f32(float *buf, size_t n) { return reduce(buf, n, sizeof *buf, C.f32, C.sum); }
int rt_comm_sum_f64(double *buf, size_t n) { return reduce(buf, n, sizeof *buf, C.f64, C.sum); }
int rt_comm_max_f64(double *buf, size_t n) { return reduce(buf, n, sizeof *buf, C.f64, C.max); }

int rt_comm_broadcast(void *buf, size_t bytes, int root) {
  if (!C.on) return 0;
  for (size_t done = 0; done < bytes;) {
    size_t k = bytes - done > (1u << 30) ? (1u << 30) : bytes - done;
    if (C.bcast((char *)buf + done, (int)k, C.byte, root, C.world) != 0) return -1;
    done += k;
  }
  return 0;
}

int rt_comm_barrier(void) { return C.on && C.barrier(C.world) != 0 ? -1 : 0; }

void rt_comm_abort(int code) {
  if (!C.on) return;
  fflush(stdout);
  fflush(stderr);
  C.abort(C.world, code);
  _Exit(code); /* MPI_Abort does not return; if it did, this rank still ends */
}

void rt_comm_finalize(void) {
  if (C.on) C.finalize();
  C.on = false;
}
