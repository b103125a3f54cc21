/* state: the context (struct fuze_ctx) and a protected array's handle: the
 * data every layer from the structures up works on. Plain data: no function
 * of a higher layer is declared here. Never installed. */
#ifndef FUZE_STATE_H
#define FUZE_STATE_H

#include "fuze.h"

#include "comm/net.h"
#include "core/code.h"
#include "core/config.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/plan.h"

#include <stdint.h>

/* One backup region a rank hosts in an array's window: the block's working
 * parity at `off`, its committed parity at `off + fused`. */
typedef struct fuze_hosted {
  int block, j;
  size_t fused;
  size_t off;   /* in the window: working parity, then (arrays) the chunk map */
  size_t coff;  /* arrays: the committed parity's offset in cbase */
} fuze_hosted;

struct fuze_array {
  struct fuze_ctx *ctx;
  char name[FUZE_NAME_MAX];
  /* Registration: what a replacement process knows. */
  void *base;
  int base_owned;             /* a replacement's buffer until it registers (ctx/repair.c) */
  size_t count, elem, bytes;  /* elem: the datatype's extent */
  MPI_Datatype type;          /* a derived type is fuze's own dup (type_owned) */
  int type_owned;
  /* Committed copy of this rank's bytes (NULL when lost or bytes == 0). */
  unsigned char *shadow;
  /* The committed copy is all zeros (fuze_protect's fresh one, until the
   * next fuze__arrays_send): a chunk's delta is its data. */
  int shadow_zero;
  /* Bytes of every rank (all ranks of the world; 0 for spares). */
  size_t *rank_bytes;
  /* Fused bytes of every block: the largest member's bytes. */
  size_t *fused;
  /* Window holding every region this rank hosts. */
  MPI_Win win;
  unsigned char *winbase;
  size_t winsize;
  /* The committed parity of every hosted region: only its host reads or
   * writes it, so it is private memory (huge pages), not window memory. */
  unsigned char *cbase;
  size_t csize;
  int nhosted;
  fuze_hosted *hosted;
  /* Dirty chunks found by the last scan (indices), kept until the commit. */
  size_t *dirty;
  size_t ndirty;
  /* persist_base > 1: chunks changed since the last persisted snapshot, one
   * byte per chunk: this rank's bytes, then each hosted region's (set at
   * the commit, cleared at the snapshot; NULL until the first snapshot). */
  unsigned char *pdirty;
  size_t pdirty_len;
};

/* Fault injection's named points in the data path. proto/inject.c owns what
 * happens there; the structures only call fuze__hook (one branch when no
 * injection is configured). A hook returns 1 when it wiped this rank. */
enum fuze_hook_point {
  FUZE_HOOK_ARRAYS_PARTIAL = 1, /* about half of every rank's array deltas sent */
  FUZE_HOOK_OP_HOSTS = 2,       /* a stack/map op reached `arg` of its backup hosts */
  FUZE_HOOK_ALLOC = 3,          /* an allocation at site `arg`; 1: fail it (FUZE_DEBUG_NOMEM) */
};

/* The allocations FUZE_DEBUG_NOMEM=<site>[:<rank>] can make fail once
 * (proto/inject.c), to test that every failure path leaves no registration. */
enum fuze_alloc_site {
  FUZE_ALLOC_PROTECT = 1, /* "protect": fuze_protect's committed copy */
  FUZE_ALLOC_LAYOUT = 2,  /* "layout": an array's per-rank sizes (fuze_protect) */
  FUZE_ALLOC_CREATE = 3,  /* "create": a stack's or map's handle */
};
typedef int (*fuze_hook_fn)(struct fuze_ctx *ctx, int point, int arg);

struct fuze_ctx {
  fuze_net net;         /* net.comm: dup of the init communicator, errors return */
  MPI_Comm app;         /* compute ranks (not owned: the caller frees it) */
  MPI_Comm pool;        /* every rank of fuze_init's communicator, replacements included (a
                           dup, errors return); MPI_COMM_NULL without replacements */
  int nreplacements;    /* config replacements: the last ranks of pool, outside net.comm */
  int app_owned;        /* app was made by a repair (ctx/repair.c): fuze frees it */
  int replay;           /* a replacement: registrations still to bind (ctx/repair.c) */
  int joined;           /* a replacement: fuze_stored_count answers until the first checkpoint */
  uint64_t ft_repairs;  /* process failures repaired in the job (ULFM) */
  int ft_round;         /* the round of the repair in progress (ctx/repair.c) */
  int ft_rounds;        /* rounds the last repair took (1: no death during it) */
  double ft_seconds[4]; /* the last repair: replace, layout + communicators, windows, decode */
  int rank, size;       /* == net.rank, net.size */
  int is_spare;
  fuze_config cfg;
  int *domain;
  int ndomains;
  fuze_plan plan;
  fuze_code *codes;     /* one per block (k = block size, m = f) */
  MPI_Comm *block_comm; /* per block: members (index order) then hosts; NULL if not in it */
  fuze_array **arrays;
  int narrays;
  struct fuze_fobj **fobjs;  /* stacks and maps, in registration order */
  int nfobjs;
  unsigned char *changed;    /* per block, this checkpoint: FUZE_CHANGED_* (core/limits.h) */
  int *rank_flags;           /* size ints, allocated by fuze_init: every rank's flags of the
                                last exchange (lost ranks, changes), so no collective path
                                allocates before it communicates */
  uint64_t ops_committed;    /* stack/map operations of this rank at the last commit */
  unsigned char *stage_buf;  /* stack/map operations in flight (data/fsend.c) */
  size_t stage_pos, stage_size;
  int debug_reorder;         /* FUZE_DEBUG_REORDER: vary the order updates reach backups */
  int op_inject_hosts;       /* >= 0: the next stack/map op wipes this rank after that many hosts */
  int debug_nomem_site;      /* FUZE_DEBUG_NOMEM: enum fuze_alloc_site that fails once, 0 = none */
  int debug_nomem_rank;      /* ... on this rank (-1: every rank) */
  int debug_nomem_nth;       /* ... at its nth allocation there (counts down) */
  uint64_t inject_unfired_dropped; /* unfired specs dropped to make room (fuze_inject_at) */
  /* Epoch state. */
  uint64_t epoch;       /* last committed epoch */
  uint64_t decided;     /* highest epoch this rank knows was decided */
  uint64_t hosted_epoch;/* epoch of the committed parity this rank hosts */
  long ckpt_calls;      /* fuze_checkpoint() calls so far */
  int lost;             /* this rank was wiped and waits for recovery */
  int finalized;
  /* Persistence (persist.c). */
  uint64_t job_id;             /* random at the job's first start, kept across restarts */
  struct fuze_pfile *restore;  /* restart: this rank's stored epoch until the first checkpoint */
  uint64_t persisted[2];       /* complete persisted epochs, newest first */
  int64_t persisted_calls[2];  /* fuze_checkpoint() calls at each */
  int npersisted;
  int dir_lock;                 /* fd + 1 of the flocked DIR/domain-<D>/rank-<R>/lock (0: none) */
  struct fuze_awrite *aw;       /* persist=async: the writer (proto/persist.c) */
  int persist_inflight;         /* an epoch handed to the writer, not yet completed */
  int persist_failed;           /* the last completion's error, reported by the next call */
  char persist_msg[FUZE_MSG_LEN];
  uint64_t persist_redo;        /* persist=async: epoch to write again after a recovery (0: none) */
  int persist_retry;            /* persisting an epoch again after a recovery: no injections */
  /* persist_base > 1 (persist.c): this rank's files of persisted[0], its
   * full file first then its increments (the "chain"). */
  uint64_t pchain[FUZE_PERSIST_BASE_MAX];
  int npchain;
  uint64_t pbase_bytes, pincr_bytes; /* payload bytes of the chain's full file, its increments */
  uint64_t psnap;               /* epoch whose snapshot last cleared the change marks (0: none) */
  uint64_t psnap_recoveries, psnap_repairs; /* recoveries and ULFM repairs at that snapshot */
  int psnap_nstructs;
  int pforce;                   /* committed bytes changed without marks (a repair): next full */
  /* Persistence counters (fuze_stats): bytes of files this rank wrote. */
  uint64_t persist_bytes, persist_last_bytes, persist_files, persist_increments;
  /* Scrubbing (verify.c). */
  uint64_t verifies;           /* fuze_verify runs (explicit and verify_every) */
  fuze_verify_report vlast;    /* the last one's report */
  /* Counters. */
  uint64_t recovered_bytes, recoveries; /* sent bytes: net.sent_bytes */
  struct fuze_byz *byz;        /* code=byzantine: replicas (byzantine.c), NULL otherwise */
  int byz_full;                /* code=byzantine: the next refresh sends every replica (a ULFM
                                  repair dropped them all) */
  fuze_hook_fn hook;            /* fault injection (proto/inject.c), set by fuze_init */
  /* Under ULFM: repairs a death that a stack or map operation noticed
   * (ctx/repair.c, set by fuze_init; the structures cannot call up). */
  int (*repair)(struct fuze_ctx *ctx);
  char msg[FUZE_MSG_LEN];
  /* Threads (data/threads.h, docs/design.md "Threads"). */
  int thread_level;             /* MPI_Query_thread at fuze_init */
  struct fuze_locks *locks;     /* the gate and the send lock (data/threads.c) */
  int coll_busy;                /* atomic: a thread is inside a collective call */
  const char *coll_fn;          /* which one (for the message) */
};

static inline int fuze__hook(struct fuze_ctx *ctx, int point, int arg) {
  return ctx->hook ? ctx->hook(ctx, point, arg) : 0;
}

/* Status helpers: record on the context. */
#define CTX_ERR(ctx, code, ...) fuze__error((ctx)->msg, (code), __VA_ARGS__)

#endif
