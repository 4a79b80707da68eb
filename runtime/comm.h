/* runtime/comm.h - the ranks of a data-parallel run (runtime/comm.c).
 *
 * A trainer started by mpirun (Open MPI), or srun under Slurm with Open
 * MPI's PMIx, is one rank of N: it finds out from the environment
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK) and only then opens libmpi
 * with dlopen, so a trainer runs where MPI is not installed.  Without
 * them there is one rank and every call below is a no-op that succeeds.
 * The interface is small on purpose (init, rank, size, sums in place, a
 * broadcast, a barrier, abort): another transport (MPICH, NCCL) would
 * implement the same calls.
 */
#ifndef NNRT_COMM_H
#define NNRT_COMM_H

#include <stddef.h>

/* Joins the job when the environment says there is one: 0, or -1 after a
 * message on stderr ("PROG: error: ..."; libmpi not found, an MPI that is
 * not supported, MPI_Init failed). */
int rt_comm_init(const char *prog);
int rt_comm_rank(void);   /* 0 .. size-1; 0 without MPI */
int rt_comm_size(void);   /* 1 without MPI */

/* Sums over all ranks, in place (every rank gets the sum): 0 or -1.
 * A failing collective aborts the job (MPI's default error handler). */
int rt_comm_sum_f32(float *buf, size_t n);
int rt_comm_sum_f64(double *buf, size_t n);
/* The largest value over all ranks, in place. */
int rt_comm_max_f64(double *buf, size_t n);
int rt_comm_broadcast(void *buf, size_t bytes, int root);
int rt_comm_barrier(void);
/* Ends every rank of the job with `code` (MPI_Abort); returns only
 * without MPI. */
void rt_comm_abort(int code);
/* Leaves the job after a successful run (MPI_Finalize). */
void rt_comm_finalize(void);

#endif
