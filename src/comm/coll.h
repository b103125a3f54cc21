/* coll: the collective layer. Agreement on return codes and messages, "was
 * any rank lost", and the reduction that recovery and scrubbing use to bring
 * coefficient-weighted data of a block's members to one of them. Every call
 * here is collective over the communicator it names. */
#ifndef FUZE_COLL_H
#define FUZE_COLL_H

#include "comm/net.h"

#include <stddef.h>
#include <stdint.h>

/* Message tags of fuze's point-to-point traffic (on its own communicators). */
enum {
  FUZE_TAG_REDUCE = 0x7fd,   /* fuze__reduce_to (also the restart's rebuild, proto/prestore.c) */
  FUZE_TAG_POOL = 73,        /* ctx/context.c: world rank 0 to the replacement ranks */
};

/* Collective over net->comm: the same code and message everywhere. Every
 * rank passes its own rc (messages in net->msg); the lowest error code wins,
 * from the lowest rank that has it, and its message is broadcast. The finder
 * records "rank F found: <message>", every other rank "rank R reports the
 * error agreed from rank F: <message>" (agreeing an agreed error again keeps
 * F). Positive (informational) codes are not errors: they agree to
 * FUZE_SUCCESS. */
int fuze__agree(fuze_net *net, int rc);

/* Collective over net->comm: lost[r] = rank r's `mine` for every rank.
 * Returns 1 if any rank passed a non-zero flag, 0 if none, FUZE_ERR_MPI
 * (message recorded) when the exchange itself failed. */
int fuze__any_lost(fuze_net *net, int mine, int *lost);

/* Collective over net->comm, checked (FUZE_ERR_MPI with the call's message). */
int fuze__barrier(fuze_net *net);
int fuze__max_int(fuze_net *net, int *v);      /* *v := max over ranks, in place */
int fuze__max_u64(fuze_net *net, uint64_t *v); /* *v := max over ranks, in place */

/* Receives the root's result of a reduction piece by piece. */
typedef void (*fuze_sink)(void *arg, size_t off, const unsigned char *res, size_t n);

/* Collective over the block communicator `comm` (block b, for messages): the
 * root receives sum over ranks of coef * data (GF(2^8), data zero padded from
 * dlen up to `fused` bytes), handed to sink in pieces. A rank with coef 0 or
 * no data and not the root contributes nothing and returns at once after one
 * flag exchange. */
int fuze__reduce_to(fuze_net *net, MPI_Comm comm, int b, int root, unsigned char coef,
                    const unsigned char *data, size_t dlen, size_t fused, fuze_sink sink,
                    void *arg);

/* Small checked collectives of the structures and recovery. comm is
 * net->comm or a block communicator; errors are recorded in net->msg. */
int fuze__comm_barrier(fuze_net *net, MPI_Comm comm);
/* Over net->comm: v[0..n-1] := their maximum over ranks, in place. */
int fuze__max_u64s(fuze_net *net, uint64_t *v, int n);
/* all[r * n + x] := rank r's mine[x]. */
int fuze__allgather_u64(fuze_net *net, MPI_Comm comm, const uint64_t *mine, int n, uint64_t *all);
/* n bytes of root's buf to every rank of comm (any n). */
int fuze__bcast_bytes(fuze_net *net, MPI_Comm comm, void *buf, size_t n, int root);

/* Collective over net->comm: 1 if any rank passed a non-zero flag, 0 if
 * none, FUZE_ERR_MPI (message recorded, not agreed) when the reduction
 * failed. fuze__any_lost without the per-rank table. */
int fuze__any(fuze_net *net, int mine);

/* Collective over net->comm: choose how blocking calls wait (comm/wait.h):
 * FUZE_WAIT=spin|poll if set; otherwise poll when more ranks of net->comm
 * share this node (the same processor name) than it has processing units
 * and the MPI library does not yield by itself, spin otherwise. Every rank
 * decides for its own node, then poll on every rank if any rank chose it
 * (verbose >= 2: each rank prints the outcome). FUZE_ERR_CONFIG when
 * FUZE_WAIT is set to anything else than spin, poll, auto or empty. */
int fuze__wait_choose(fuze_net *net);

/* A sequence of checked calls that keeps its first error: FUZE_MPI_KEEP(rc,
 * msgbuf, call) runs FUZE_MPI(msgbuf, call) and, when rc is still
 * FUZE_SUCCESS, stores its result in rc; once rc holds an error a later
 * failure is recorded in the thread's message only, so msgbuf keeps the first
 * one's text for fuze__agree. Evaluates to 1 when the call succeeded. */
static inline int fuze__keep_first(int *rc, int r) {
  if (!*rc) *rc = r;
  return r == FUZE_SUCCESS;
}
#define FUZE_MPI_KEEP(rc, msgbuf, call) \
  fuze__keep_first(&(rc), FUZE_MPI((rc) ? NULL : (msgbuf), call))

#endif
