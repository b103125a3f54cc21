/* net: the handle of the bottom MPI layer (collectives and transport) and the
 * checked-MPI macro every MPI call of the runtime goes through.
 *
 * The layers above own a fuze_net (the context embeds one); the collective
 * layer and the transport see nothing else of the context: the communicator,
 * this rank's place in it, the shared-memory mode, the byte counter, and the
 * message buffer that errors are recorded in. */
#ifndef FUZE_NET_H
#define FUZE_NET_H

#include "comm/wait.h" /* how the blocking calls wait (spin, or poll with back-off) */
#include "core/error.h"

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fuze_net {
  MPI_Comm comm;        /* every rank of fuze_init's communicator (a dup, errors return) */
  int rank, size;
  int shm;              /* config shm: enum fuze_shm_mode */
  int verbose;
  int one_node;         /* every rank shares memory: 1 yes, 0 no, -1 not asked yet */
  int shm_windows;      /* the newest stack/map window is in shared memory */
  size_t win_keep;      /* a ULFM repair: the caller overwrites the next window's first
                           win_keep bytes itself, so they are not zeroed (transport.c) */
  const MPI_Win *win_reuse; /* a ULFM repair: the old window of the structure being made
                           again, whose shared-memory segments of fuze's own the new
                           window keeps where they match (transport.c); NULL otherwise */
  size_t acc_piece;     /* largest MPI_Accumulate the transport issues, 0: no cut
                           (set with one_node: FUZE_ACC_PIECE_NODES across nodes) */
  uint64_t sent_bytes;  /* bytes XORed or put into other ranks' windows */
  char *msg;            /* FUZE_MSG_LEN bytes: where errors are recorded */
} fuze_net;

/* The internal result "a rank of the communicator was lost" (comm/ft.h). */
#define FUZE_RANK_LOST FUZE_INTERNAL_RANK_LOST

/* Check an MPI return code: MPI_SUCCESS gives FUZE_SUCCESS; anything else
 * records "what failed at file:line: <MPI error string>" in msgbuf (and the
 * thread's buffer) and gives FUZE_ERR_MPI, or FUZE_RANK_LOST when fuze runs
 * under ULFM and the error says a rank died (MPIX_ERR_PROC_FAILED,
 * MPIX_ERR_REVOKED: comm/ft.h). `what` is the call's text. */
int fuze__mpi_check(int mpi_rc, const char *what, const char *file, int line, char *msgbuf);

/* rc = FUZE_MPI(msgbuf, MPI_Name(...)): the call, checked. */
#define FUZE_MPI(msgbuf, call) fuze__mpi_check((call), #call, __FILE__, __LINE__, (msgbuf))

/* Teardown calls whose failure changes nothing the caller can act on
 * (MPI_Comm_free, MPI_Win_free, MPI_Group_free, MPI_Info_free on the way
 * out): still checked, the failure is recorded in the thread's message and
 * counted (fuze__mpi_teardown_failures), never returned. */
#define FUZE_MPI_TEARDOWN(call) fuze__mpi_teardown((call), #call, __FILE__, __LINE__)
void fuze__mpi_teardown(int mpi_rc, const char *what, const char *file, int line);
unsigned long fuze__mpi_teardown_failures(void);

#endif
