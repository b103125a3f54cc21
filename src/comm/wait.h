/* wait: how the runtime waits in a blocking MPI call.
 *
 * Some MPI libraries never give up the core while a rank waits: MPICH 4.0
 * (ch4, Debian's ch4:ucx build) polls its progress engine without ever
 * calling sched_yield or sleeping (MPIR_CVAR_POLLS_BEFORE_YIELD is a ch3
 * setting). With more ranks on a node than it has cores, a rank waiting in a
 * collective then burns its whole time slice before the rank it waits for
 * runs, and every step of a collective costs a scheduler tick: the array
 * suite took 185-334 s at 4 ranks on 2 cores instead of 4-17 s with Open
 * MPI, which yields when it runs oversubscribed (mpi_yield_when_idle).
 *
 * So, in "poll" mode, the blocking calls the runtime makes are started as
 * their nonblocking versions and completed with MPI_Test polling that backs
 * off: a few tests back to back (a fast partner costs nothing extra), then
 * sched_yield, then short sleeps growing to FUZE_WAIT_SLEEP_MAX_NS, which
 * let the ranks that are behind run. In "spin" mode the calls are the MPI
 * library's own.
 *
 * A blocking collective does not match a nonblocking one, so the mode of a
 * collective belongs to its communicator and is the same on every rank of
 * it: fuze_init agrees on it over its communicator (fuze__wait_choose,
 * comm/coll.c) and marks that communicator with an attribute
 * (fuze__wait_mark); the communicators the runtime derives from a marked one
 * (MPI_Comm_split, _split_type, _create, _dup below) are marked too. Point-to-point
 * waits (MPI_Wait, MPI_Waitall, MPI_Probe, MPI_Send, MPI_Recv) match
 * whatever the other side does, so they poll as soon as any context of the
 * process does (fuze__wait_polls).
 *
 * The choice, per fuze_init: FUZE_WAIT=spin|poll (environment) if set;
 * otherwise (auto) poll when more ranks of its communicator run on this node
 * (same MPI_Get_processor_name) than the node has processing units (hwloc)
 * and the MPI library does not yield by itself (everything but Open MPI),
 * spin otherwise; poll on every rank if any rank chose it.
 *
 * The files that include comm/net.h see the blocking calls below redefined
 * to fuze__w_* (FUZE_MPI's #call text still names the MPI function in
 * messages). */
#ifndef FUZE_WAIT_H
#define FUZE_WAIT_H

#include <mpi.h>
#include <stdatomic.h>

enum fuze_wait_mode { FUZE_WAIT_SPIN = 0, FUZE_WAIT_POLL = 1 };

/* The longest sleep between two tests of a pending request (a compile-time
 * setting: -DFUZE_WAIT_SLEEP_MAX_NS=...). */
#ifndef FUZE_WAIT_SLEEP_MAX_NS
#define FUZE_WAIT_SLEEP_MAX_NS 200000L
#endif

extern atomic_int fuze__wait_any_poll; /* a communicator of this process polls */
extern atomic_int fuze__wait_keyval;   /* the mark's keyval; MPI_KEYVAL_INVALID before */

/* Point-to-point waits poll. */
static inline int fuze__wait_polls(void) {
  return atomic_load_explicit(&fuze__wait_any_poll, memory_order_relaxed);
}
/* Collectives over comm poll (comm is marked). */
int fuze__wait_marked(MPI_Comm comm);
static inline int fuze__wait_polls_on(MPI_Comm comm) {
  return atomic_load_explicit(&fuze__wait_keyval, memory_order_relaxed) != MPI_KEYVAL_INVALID &&
         fuze__wait_marked(comm);
}
/* Mark comm: its collectives poll (call with the same comm on all its ranks). */
int fuze__wait_mark(MPI_Comm comm);
/* *out (when not MPI_COMM_NULL) made from comm: marked like comm. */
int fuze__wait_inherit(MPI_Comm comm, MPI_Comm *out);
/* The mode FUZE_WAIT asks for: FUZE_WAIT_SPIN, FUZE_WAIT_POLL, -1 (unset,
 * empty or "auto") or -2 (anything else). */
int fuze__wait_env(void);
/* The number of processing units this process may run on (hwloc), >= 1. */
int fuze__wait_node_pus(void);
/* Nonzero when this MPI library yields the core by itself when oversubscribed. */
int fuze__wait_mpi_yields(void);

/* Complete requests as MPI_Wait / MPI_Waitall / MPI_Probe do, polling with
 * back-off (whatever the mode). */
int fuze__wait_poll(MPI_Request *req, MPI_Status *status);
int fuze__waitall_poll(int n, MPI_Request *reqs, MPI_Status *statuses);
int fuze__probe_poll(int source, int tag, MPI_Comm comm, MPI_Status *status);

/* ---- the blocking calls, by mode ---- */

static inline int fuze__w_wait(MPI_Request *req, MPI_Status *status) {
  return fuze__wait_polls() ? fuze__wait_poll(req, status) : MPI_Wait(req, status);
}
static inline int fuze__w_waitall(int n, MPI_Request *reqs, MPI_Status *statuses) {
  return fuze__wait_polls() ? fuze__waitall_poll(n, reqs, statuses) : MPI_Waitall(n, reqs, statuses);
}
static inline int fuze__w_probe(int source, int tag, MPI_Comm comm, MPI_Status *status) {
  return fuze__wait_polls() ? fuze__probe_poll(source, tag, comm, status)
                            : MPI_Probe(source, tag, comm, status);
}
/* The started request, completed by polling (rc: the start's error, if any). */
static inline int fuze__w_done(int rc, MPI_Request *req, MPI_Status *status) {
  return rc != MPI_SUCCESS ? rc : fuze__wait_poll(req, status);
}
static inline int fuze__w_barrier(MPI_Comm comm) {
  MPI_Request r;
  if (!fuze__wait_polls_on(comm)) return MPI_Barrier(comm);
  return fuze__w_done(MPI_Ibarrier(comm, &r), &r, MPI_STATUS_IGNORE);
}
static inline int fuze__w_bcast(void *buf, int count, MPI_Datatype type, int root, MPI_Comm comm) {
  MPI_Request r;
  if (!fuze__wait_polls_on(comm)) return MPI_Bcast(buf, count, type, root, comm);
  return fuze__w_done(MPI_Ibcast(buf, count, type, root, comm, &r), &r, MPI_STATUS_IGNORE);
}
static inline int fuze__w_allreduce(const void *s, void *r, int count, MPI_Datatype type, MPI_Op op,
                                    MPI_Comm comm) {
  MPI_Request q;
  if (!fuze__wait_polls_on(comm)) return MPI_Allreduce(s, r, count, type, op, comm);
  return fuze__w_done(MPI_Iallreduce(s, r, count, type, op, comm, &q), &q, MPI_STATUS_IGNORE);
}
static inline int fuze__w_reduce(const void *s, void *r, int count, MPI_Datatype type, MPI_Op op,
                                 int root, MPI_Comm comm) {
  MPI_Request q;
  if (!fuze__wait_polls_on(comm)) return MPI_Reduce(s, r, count, type, op, root, comm);
  return fuze__w_done(MPI_Ireduce(s, r, count, type, op, root, comm, &q), &q, MPI_STATUS_IGNORE);
}
static inline int fuze__w_allgather(const void *s, int sc, MPI_Datatype st, void *r, int rc,
                                    MPI_Datatype rt, MPI_Comm comm) {
  MPI_Request q;
  if (!fuze__wait_polls_on(comm)) return MPI_Allgather(s, sc, st, r, rc, rt, comm);
  return fuze__w_done(MPI_Iallgather(s, sc, st, r, rc, rt, comm, &q), &q, MPI_STATUS_IGNORE);
}
static inline int fuze__w_allgatherv(const void *s, int sc, MPI_Datatype st, void *r,
                                     const int *rcs, const int *displs, MPI_Datatype rt,
                                     MPI_Comm comm) {
  MPI_Request q;
  if (!fuze__wait_polls_on(comm)) return MPI_Allgatherv(s, sc, st, r, rcs, displs, rt, comm);
  return fuze__w_done(MPI_Iallgatherv(s, sc, st, r, rcs, displs, rt, comm, &q), &q,
                      MPI_STATUS_IGNORE);
}
static inline int fuze__w_gather(const void *s, int sc, MPI_Datatype st, void *r, int rc,
                                 MPI_Datatype rt, int root, MPI_Comm comm) {
  MPI_Request q;
  if (!fuze__wait_polls_on(comm)) return MPI_Gather(s, sc, st, r, rc, rt, root, comm);
  return fuze__w_done(MPI_Igather(s, sc, st, r, rc, rt, root, comm, &q), &q, MPI_STATUS_IGNORE);
}
static inline int fuze__w_gatherv(const void *s, int sc, MPI_Datatype st, void *r, const int *rcs,
                                  const int *displs, MPI_Datatype rt, int root, MPI_Comm comm) {
  MPI_Request q;
  if (!fuze__wait_polls_on(comm)) return MPI_Gatherv(s, sc, st, r, rcs, displs, rt, root, comm);
  return fuze__w_done(MPI_Igatherv(s, sc, st, r, rcs, displs, rt, root, comm, &q), &q,
                      MPI_STATUS_IGNORE);
}
static inline int fuze__w_send(const void *buf, int count, MPI_Datatype type, int dest, int tag,
                               MPI_Comm comm) {
  MPI_Request q;
  if (!fuze__wait_polls()) return MPI_Send(buf, count, type, dest, tag, comm);
  return fuze__w_done(MPI_Isend(buf, count, type, dest, tag, comm, &q), &q, MPI_STATUS_IGNORE);
}
static inline int fuze__w_recv(void *buf, int count, MPI_Datatype type, int source, int tag,
                               MPI_Comm comm, MPI_Status *status) {
  MPI_Request q;
  if (!fuze__wait_polls()) return MPI_Recv(buf, count, type, source, tag, comm, status);
  return fuze__w_done(MPI_Irecv(buf, count, type, source, tag, comm, &q), &q, status);
}

/* Calls without a nonblocking form (window allocation, communicator
 * creation) spin inside the MPI library until every rank of comm has
 * arrived. In poll mode a polled barrier over comm comes first (the gate),
 * so that they start with everyone there. */
static inline int fuze__w_gate(MPI_Comm comm) {
  MPI_Request r;
  if (!fuze__wait_polls_on(comm)) return MPI_SUCCESS;
  return fuze__w_done(MPI_Ibarrier(comm, &r), &r, MPI_STATUS_IGNORE);
}
static inline int fuze__w_win_allocate(MPI_Aint size, int disp, MPI_Info info, MPI_Comm comm,
                                       void *base, MPI_Win *win) {
  int rc = fuze__w_gate(comm);
  return rc != MPI_SUCCESS ? rc : MPI_Win_allocate(size, disp, info, comm, base, win);
}
static inline int fuze__w_win_allocate_shared(MPI_Aint size, int disp, MPI_Info info,
                                              MPI_Comm comm, void *base, MPI_Win *win) {
  int rc = fuze__w_gate(comm);
  return rc != MPI_SUCCESS ? rc : MPI_Win_allocate_shared(size, disp, info, comm, base, win);
}
static inline int fuze__w_comm_split(MPI_Comm comm, int color, int key, MPI_Comm *out) {
  int rc = fuze__w_gate(comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_split(comm, color, key, out);
  return rc != MPI_SUCCESS ? rc : fuze__wait_inherit(comm, out);
}
static inline int fuze__w_comm_split_type(MPI_Comm comm, int type, int key, MPI_Info info,
                                          MPI_Comm *out) {
  int rc = fuze__w_gate(comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_split_type(comm, type, key, info, out);
  return rc != MPI_SUCCESS ? rc : fuze__wait_inherit(comm, out);
}
static inline int fuze__w_comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *out) {
  int rc = fuze__w_gate(comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_create(comm, group, out);
  return rc != MPI_SUCCESS ? rc : fuze__wait_inherit(comm, out);
}
static inline int fuze__w_comm_dup(MPI_Comm comm, MPI_Comm *out) {
  int rc = fuze__w_gate(comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(comm, out);
  return rc != MPI_SUCCESS ? rc : fuze__wait_inherit(comm, out);
}

#ifndef FUZE_WAIT_NO_REDEFINE
#define MPI_Win_allocate fuze__w_win_allocate
#define MPI_Win_allocate_shared fuze__w_win_allocate_shared
#define MPI_Comm_split fuze__w_comm_split
#define MPI_Comm_split_type fuze__w_comm_split_type
#define MPI_Comm_create fuze__w_comm_create
#define MPI_Comm_dup fuze__w_comm_dup
#define MPI_Wait fuze__w_wait
#define MPI_Waitall fuze__w_waitall
#define MPI_Probe fuze__w_probe
#define MPI_Barrier fuze__w_barrier
#define MPI_Bcast fuze__w_bcast
#define MPI_Allreduce fuze__w_allreduce
#define MPI_Reduce fuze__w_reduce
#define MPI_Allgather fuze__w_allgather
#define MPI_Allgatherv fuze__w_allgatherv
#define MPI_Gather fuze__w_gather
#define MPI_Gatherv fuze__w_gatherv
#define MPI_Send fuze__w_send
#define MPI_Recv fuze__w_recv
#endif

#endif
