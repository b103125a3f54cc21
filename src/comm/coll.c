/* coll: agreement, lost-rank exchange and the block reduction (coll.h). */
#include "comm/coll.h"

#include "core/code.h"
#include "core/limits.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIECE (4u << 20) /* bytes reduced at a time: bounds temporary memory */

/* ---- agreement ---- */

/* The prefixes fuze__agree writes. A message agreed again (an agreed code
 * passed to another agreement) keeps the rank that first found it instead of
 * growing a second prefix. Returns the text after the prefix. */
static const char *agreed_text(const char *m, int *finder) {
  int n = -1, r = -1;
  if (sscanf(m, "rank %d found: %n", &r, &n) >= 1 && n > 0) return *finder = r, m + n;
  n = -1;
  if (sscanf(m, "rank %*d reports the error agreed from rank %d: %n", &r, &n) >= 1 && n > 0)
    return *finder = r, m + n;
  return m;
}

int fuze__agree(fuze_net *net, int rc) {
  struct { int code, rank; } in = {rc < 0 ? rc : 0, net->rank}, out;
  int mrc = FUZE_MPI(net->msg, MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MINLOC, net->comm));
  if (mrc) return mrc;
  if (out.code == 0) return FUZE_SUCCESS;
  char buf[FUZE_MSG_LEN];
  snprintf(buf, sizeof buf, "%s", net->msg);
  if ((mrc = FUZE_MPI(net->msg, MPI_Bcast(buf, FUZE_MSG_LEN, MPI_CHAR, out.rank, net->comm))))
    return mrc;
  buf[FUZE_MSG_LEN - 1] = 0;
  /* Every rank returns the same code; its message says which rank found the
   * error and, on the others, that this rank reports the agreed error. */
  int finder = out.rank;
  const char *text = agreed_text(buf, &finder);
  if (finder == net->rank) return fuze__error(net->msg, out.code, "rank %d found: %s", finder, text);
  return fuze__error(net->msg, out.code, "rank %d reports the error agreed from rank %d: %s",
                     net->rank, finder, text);
}

int fuze__any_lost(fuze_net *net, int mine, int *lost) {
  int any = 0;
  int rc = FUZE_MPI(net->msg, MPI_Allgather(&mine, 1, MPI_INT, lost, 1, MPI_INT, net->comm));
  if (rc) return rc;
  for (int r = 0; r < net->size; r++) any |= lost[r] != 0;
  return any;
}

int fuze__barrier(fuze_net *net) { return FUZE_MPI(net->msg, MPI_Barrier(net->comm)); }

int fuze__max_int(fuze_net *net, int *v) {
  return FUZE_MPI(net->msg, MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_MAX, net->comm));
}

int fuze__max_u64(fuze_net *net, uint64_t *v) {
  return FUZE_MPI(net->msg, MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_UINT64_T, MPI_MAX, net->comm));
}

/* ---- reduction ---- */

/* This rank's contribution to piece [off, off + n): coef * its data, zero
 * padded (a member's data is shorter than the fused region). */
static void contribution(unsigned char coef, const unsigned char *data, size_t dlen,
                         size_t off, size_t n, unsigned char *out) {
  memset(out, 0, n);
  if (!data || !coef || off >= dlen) return;
  size_t m = dlen - off < n ? dlen - off : n;
  fuze__gf_scale(coef, data + off, out, m);
}

/* Who takes part in one reduction: the root and every rank that has
 * something to contribute. */
typedef struct reduction {
  fuze_net *net;
  MPI_Comm comm, sub;      /* block communicator; group communicator of the participants */
  int b, root, me, size;
  int part;                /* this rank takes part */
  int linear;              /* more than two participants, but not everyone, in poll mode */
  int nparts, subroot, other;
  int ranks[FUZE_GF_MEMBERS2];
  unsigned char *buf, *res;
} reduction;

/* One MPI_Allgather of a flag per member (which also carries the allocation
 * check) tells everyone who the participants are. */
static int find_participants(reduction *r) {
  /* Bit 0: allocated what it needs; bit 1: takes part. A block communicator
   * has at most k + f <= FUZE_GF_MEMBERS members (code.h). */
  int mine = (!r->part || (r->buf && (r->me != r->root || r->res))) | r->part << 1;
  int flags[FUZE_GF_MEMBERS2], all_ok = 1;
  int rc = FUZE_MPI(r->net->msg, MPI_Allgather(&mine, 1, MPI_INT, flags, 1, MPI_INT, r->comm));
  if (rc) return rc;
  for (int x = 0; x < r->size; x++) {
    all_ok &= flags[x] & 1;
    if (!(flags[x] & 2)) continue;
    if (x == r->root) r->subroot = r->nparts;
    else r->other = x;
    r->ranks[r->nparts++] = x;
  }
  if (!all_ok) return fuze__error(r->net->msg, FUZE_ERR_NOMEM, "recovery: out of memory in block %d", r->b);
  return FUZE_SUCCESS;
}

/* More than two participants but not everyone: a communicator of just them
 * (MPI_Comm_create_group, collective over the group only). In poll mode
 * (comm/wait.h) there is none: MPI_Comm_create_group has no nonblocking
 * form, and MPICH's spins through several rounds of context-id agreement
 * (58% of a rank's time in the array suite at 4 ranks on 2 cores); the
 * participants send their pieces to the root instead (reduce_piece). */
static int make_group(reduction *r) {
  if (!r->part || r->nparts <= 2 || r->nparts == r->size) return FUZE_SUCCESS;
  if ((r->linear = fuze__wait_polls_on(r->comm))) return FUZE_SUCCESS;
  MPI_Group all, grp;
  int rc = FUZE_MPI(r->net->msg, MPI_Comm_group(r->comm, &all));
  if (rc) return rc;
  rc = FUZE_MPI(r->net->msg, MPI_Group_incl(all, r->nparts, r->ranks, &grp));
  if (!rc) {
    rc = FUZE_MPI(r->net->msg, MPI_Comm_create_group(r->comm, grp, FUZE_TAG_REDUCE, &r->sub));
    FUZE_MPI_TEARDOWN(MPI_Group_free(&grp));
  }
  FUZE_MPI_TEARDOWN(MPI_Group_free(&all));
  return rc;
}

/* Piece [off, off + n) reaches the root's res. */
static int reduce_piece(reduction *r, unsigned char coef, const unsigned char *data, size_t dlen,
                        size_t off, size_t n) {
  char *msg = r->net->msg;
  int cnt = (int)n;
  if (r->linear && r->me != r->root) {
    contribution(coef, data, dlen, off, n, r->buf);
    return FUZE_MPI(msg, MPI_Send(r->buf, cnt, MPI_BYTE, r->root, FUZE_TAG_REDUCE, r->comm));
  }
  if (r->linear) { /* the root: its own share, xor every other participant's in turn */
    contribution(coef, data, dlen, off, n, r->res);
    int rc = FUZE_SUCCESS;
    for (int x = 0; x < r->nparts && !rc; x++) {
      if (r->ranks[x] == r->root) continue;
      rc = FUZE_MPI(msg, MPI_Recv(r->buf, cnt, MPI_BYTE, r->ranks[x], FUZE_TAG_REDUCE, r->comm,
                                  MPI_STATUS_IGNORE));
      if (!rc) fuze__xor_into(r->res, r->buf, n);
    }
    return rc;
  }
  if (r->nparts == r->size || r->nparts > 2) {
    contribution(coef, data, dlen, off, n, r->buf);
    if (r->nparts == r->size)
      return FUZE_MPI(msg, MPI_Reduce(r->buf, r->res, cnt, MPI_BYTE, MPI_BXOR, r->root, r->comm));
    return FUZE_MPI(msg, MPI_Reduce(r->buf, r->res, cnt, MPI_BYTE, MPI_BXOR, r->subroot, r->sub));
  }
  if (r->me != r->root) { /* the only contributor */
    contribution(coef, data, dlen, off, n, r->buf);
    return FUZE_MPI(msg, MPI_Send(r->buf, cnt, MPI_BYTE, r->root, FUZE_TAG_REDUCE, r->comm));
  }
  if (r->nparts == 2) { /* the root: the contributor's piece, xor its own */
    contribution(coef, data, dlen, off, n, r->buf);
    int rc = FUZE_MPI(msg, MPI_Recv(r->res, cnt, MPI_BYTE, r->other, FUZE_TAG_REDUCE, r->comm,
                                    MPI_STATUS_IGNORE));
    if (!rc) fuze__xor_into(r->res, r->buf, n);
    return rc;
  }
  contribution(coef, data, dlen, off, n, r->res); /* nobody contributes: the root's own share */
  return FUZE_SUCCESS;
}

/* Only the members that contribute something take part: a decode uses k of
 * the k + f members (the others' coefficients are 0) and a re-encode the k
 * primaries, so the reduction runs over those and the root only; a
 * non-contributor returns after the flag exchange. Two participants
 * (replication, or k = 1) exchange point to point; more reduce over a group
 * communicator of just them. Traffic per restored byte drops from k + f - 1
 * to k (to 1 for replication). Measured in docs/benchmarks.md. */
int fuze__reduce_to(fuze_net *net, MPI_Comm comm, int b, int root, unsigned char coef,
                    const unsigned char *data, size_t dlen, size_t fused, fuze_sink sink,
                    void *arg) {
  reduction r = {.net = net, .comm = comm, .sub = MPI_COMM_NULL, .b = b, .root = root, .other = -1};
  int rc = FUZE_MPI(net->msg, MPI_Comm_rank(comm, &r.me));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_size(comm, &r.size));
  if (rc) return rc;
  r.part = r.me == root || (coef && data && dlen);
  size_t piece = fused < PIECE ? (fused ? fused : 1) : PIECE;
  r.buf = r.part ? malloc(piece) : NULL;
  r.res = r.part && r.me == root ? malloc(piece) : NULL;
  rc = find_participants(&r);
  if (!rc) rc = make_group(&r);
  for (size_t off = 0; !rc && r.part && off < fused; off += piece) {
    size_t n = fused - off < piece ? fused - off : piece;
    rc = reduce_piece(&r, coef, data, dlen, off, n);
    if (!rc && r.me == root) sink(arg, off, r.res, n);
  }
  if (r.sub != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&r.sub));
  free(r.buf);
  free(r.res);
  return rc;
}

/* ---- small collectives of the structures and recovery ---- */

int fuze__comm_barrier(fuze_net *net, MPI_Comm comm) {
  return FUZE_MPI(net->msg, MPI_Barrier(comm));
}

int fuze__max_u64s(fuze_net *net, uint64_t *v, int n) {
  return FUZE_MPI(net->msg, MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_UINT64_T, MPI_MAX, net->comm));
}

int fuze__allgather_u64(fuze_net *net, MPI_Comm comm, const uint64_t *mine, int n, uint64_t *all) {
  return FUZE_MPI(net->msg, MPI_Allgather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, comm));
}

/* In pieces of at most INT_MAX / 2 bytes (MPI counts are int). */
int fuze__bcast_bytes(fuze_net *net, MPI_Comm comm, void *buf, size_t n, int root) {
  unsigned char *p = buf;
  int rc = FUZE_SUCCESS;
  while (n > 0 && !rc) {
    int c = n > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)n;
    rc = FUZE_MPI(net->msg, MPI_Bcast(p, c, MPI_BYTE, root, comm));
    p += c;
    n -= (size_t)c;
  }
  return rc;
}

/* ---- any ---- */

int fuze__any(fuze_net *net, int mine) {
  int flag = mine != 0, any = 0;
  int rc = FUZE_MPI(net->msg, MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_MAX, net->comm));
  return rc ? rc : any;
}

/* ---- how blocking calls wait ---- */

int fuze__wait_choose(fuze_net *net) {
  char name[MPI_MAX_PROCESSOR_NAME + 1] = "";
  int len = 0, here = 0;
  int rc = FUZE_MPI(net->msg, MPI_Get_processor_name(name, &len));
  /* The ranks with this node's name: a split by a hash of the name (a
   * collision of two names merely overcounts). Every rank splits, also after
   * a failure above, so that none is left waiting. */
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int x = 0; !rc && x < len; x++) h = (h ^ (unsigned char)name[x]) * 0x100000001b3ULL;
  MPI_Comm node = MPI_COMM_NULL;
  int src = FUZE_MPI(net->msg, MPI_Comm_split(net->comm, (int)(h & 0x7fffffff), net->rank, &node));
  if (!rc) rc = src;
  if (!src) {
    if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_size(node, &here));
    FUZE_MPI_TEARDOWN(MPI_Comm_free(&node));
  }
  int pus = fuze__wait_node_pus(), mode = fuze__wait_env();
  if (mode == -2 && !rc)
    rc = fuze__error(net->msg, FUZE_ERR_CONFIG,
                     "fuze_init: environment variable FUZE_WAIT='%s' on rank %d is not spin, poll "
                     "or auto", getenv("FUZE_WAIT"), net->rank);
  if (mode < 0) mode = here > pus && !fuze__wait_mpi_yields() ? FUZE_WAIT_POLL : FUZE_WAIT_SPIN;
  /* One mode for the communicator: poll if any rank wants it. */
  int poll = !rc && mode == FUZE_WAIT_POLL;
  int arc = FUZE_MPI(net->msg, MPI_Allreduce(MPI_IN_PLACE, &poll, 1, MPI_INT, MPI_MAX, net->comm));
  if (rc || (rc = arc)) return rc;
  if (poll && (rc = FUZE_MPI(net->msg, fuze__wait_mark(net->comm)))) return rc;
  if (net->verbose >= 2)
    printf("fuze: rank %d: %d rank(s) on node %s with %d PU(s): blocking calls %s\n", net->rank,
           here, name, pus, poll ? "poll with back-off" : "spin");
  return FUZE_SUCCESS;
}
