/* ft: process failures (ULFM) in the collective layer.
 *
 * Built against an MPI with Open MPI's ftmpi extension (OMPI_HAVE_MPI_EXT_FTMPI:
 * Open MPI 5, as in Debian 13) and launched with `mpirun --with-ft ulfm`, a
 * rank's death shows as MPIX_ERR_PROC_FAILED or MPIX_ERR_REVOKED from a
 * communicator operation (one-sided calls report nothing). FUZE_MPI maps
 * both to FUZE_RANK_LOST, an internal result that the layers above handle
 * by repairing (revoke, agree, shrink) instead of failing. Without ULFM
 * (Debian 12's Open MPI 4.1) nothing here is compiled in: fuze__ft_enabled()
 * is 0 and FUZE_MPI never gives FUZE_RANK_LOST. */
#ifndef FUZE_FT_H
#define FUZE_FT_H

#include "comm/net.h"

/* 1 when fuze was built with ULFM and the job was launched with it
 * (Open MPI's mpi_ft_enable), 0 otherwise. */
int fuze__ft_enabled(void);

/* Under ULFM (fuze__ft_enabled): SIGPIPE to SIG_IGN when it is at its default
 * action, so that a survivor lives through writing to a dead rank's socket.
 * Open MPI 5's btl tcp writes with writev, which raises SIGPIPE once the
 * peer's end of the connection is gone, and the MPI processes start with
 * the default action (terminate): a survivor with bytes in flight to the
 * rank that died was killed too, a death the job never had (exit status
 * 141; two in one block: FUZE_ERR_UNRECOVERABLE). Ignored, the write fails
 * with EPIPE and the btl drops that connection. A handler or SIG_IGN the
 * application set stays. Returns 1 when it changed the action, else 0
 * (always 0 without ULFM). Process-wide; fuze_init calls it first. */
int fuze__ft_ignore_sigpipe(void);

/* Whether an MPI return code means "a rank of the communicator died" (or
 * another rank revoked it because of one). 0 without ULFM. */
int fuze__ft_is_lost(int mpi_rc);

/* Local and cheap (a probe of this rank's own messages runs MPI's progress,
 * then what this rank knows): FUZE_RANK_LOST when net->comm is revoked or a
 * rank of it is known to have died, FUZE_SUCCESS otherwise (always without
 * ULFM). How stack and map operations, whose one-sided calls report
 * nothing, notice a death (data/threads.c). */
int fuze__ft_check(fuze_net *net);

/* Revoke net->comm: every rank's pending and later operations on it fail
 * with MPIX_ERR_REVOKED, so every survivor enters the repair. Local. */
int fuze__ft_revoke(fuze_net *net, MPI_Comm comm);

/* Fault-tolerant agreement over the survivors of comm (revoked or not):
 * *flag := AND of every survivor's *flag. A death during it cannot split
 * the result: every survivor that returns has the same value. */
int fuze__ft_agree(fuze_net *net, MPI_Comm comm, int *flag);

/* Collective over the survivors of comm: revoke it, shrink to the survivors
 * (old order kept) into *out (errors return), and set dead[r] = 1 for every
 * rank r of comm not in *out (dead must hold comm's size ints). *ndead is
 * their count. The same dead set on every survivor, by construction. */
int fuze__ft_shrink(fuze_net *net, MPI_Comm comm, MPI_Comm *out, int *dead, int *ndead);

/* Collective over the survivors of *pool, whose ranks 0..nactive-1 are the
 * active ranks (in the order of their communicator *active) and the others
 * idle replacement ranks (*active == MPI_COMM_NULL there). Revokes both,
 * shrinks the pool, and gives every dead active rank a living replacement,
 * in order (the lowest dead rank the first replacement in pool order). On
 * success *active is a new communicator of nactive ranks in the old order,
 * each replacement in its dead rank's place (MPI_COMM_NULL on replacements
 * still idle), *pool a new pool with the same layout, *my_rank this rank's
 * active rank (-1: still idle), and dead[r] (nactive ints) says which active
 * ranks died (*ndead of them). The old communicators are freed. When fewer
 * replacements live than active ranks died: FUZE_ERR_UNRECOVERABLE on every
 * survivor, naming the dead ranks, communicators untouched but revoked. */
int fuze__ft_replace(fuze_net *net, MPI_Comm *pool, int nactive, MPI_Comm *active, int *dead,
                     int *ndead, int *my_rank, int spawn);

/* With spawn (config replace=spawn or auto): dead active ranks without a
 * living idle replacement get new processes started with MPI_Comm_spawn (the
 * same program and arguments, /proc/self/cmdline), merged in after the
 * survivors; they take their slots in fuze__ft_spawned, called from their
 * fuze_init (MPI_Comm_get_parent is not MPI_COMM_NULL there): it returns the
 * new pool and active communicators, this rank's active rank, the active
 * size and the dead set (*dead: nactive ints, the caller frees it). */
int fuze__ft_spawned(fuze_net *net, MPI_Comm parent, MPI_Comm *pool, MPI_Comm *active,
                     int **dead, int *nactive, int *my_rank);

#endif
