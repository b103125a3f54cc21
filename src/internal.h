/* The library's internal state, shared by the runtime, transport, array,
 * recovery and inject modules. Never installed. */
#ifndef FUZE_INTERNAL_H
#define FUZE_INTERNAL_H

#include "fuze.h"

#include "code.h"
#include "config.h"
#include "error.h"
#include "plan.h"

#include <stdint.h>

#define FUZE_NAME_MAX 64
#define FUZE_ALIGN 64

/* One backup region a rank hosts in an array's window: the block's working
 * parity at `off`, its committed parity at `off + fused`. */
typedef struct fuze_hosted {
  int block, j;
  size_t fused;
  size_t off;
} fuze_hosted;

struct fuze_array {
  struct fuze_ctx *ctx;
  char name[FUZE_NAME_MAX];
  /* Registration: what a replacement process knows. */
  void *base;
  size_t count, elem, bytes;
  MPI_Datatype type;
  /* Committed copy of this rank's bytes (NULL when lost or bytes == 0). */
  unsigned char *shadow;
  /* Bytes of every rank (all ranks of the world; 0 for spares). */
  size_t *rank_bytes;
  /* Fused bytes of every block: the largest member's bytes. */
  size_t *fused;
  /* Window holding every region this rank hosts. */
  MPI_Win win;
  unsigned char *winbase;
  size_t winsize;
  int nhosted;
  fuze_hosted *hosted;
  /* Dirty chunks found by the last scan (indices), kept until the commit. */
  size_t *dirty;
  size_t ndirty;
};

/* Inter-module helpers that use MPI live with the context. */
struct fuze_ctx {
  MPI_Comm world;       /* dup of the init communicator, errors return */
  MPI_Comm app;         /* compute ranks (not owned: the caller frees it) */
  int rank, size;
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
  unsigned char *changed;    /* per block, this checkpoint: 2 = array deltas, 4 = stack/map ops */
  uint64_t ops_committed;    /* stack/map operations of this rank at the last commit */
  unsigned char *stage_buf;  /* stack/map operations in flight (fused.c) */
  size_t stage_pos, stage_size;
  int debug_reorder;         /* FUZE_DEBUG_REORDER: vary the order updates reach backups */
  int op_inject_hosts;       /* >= 0: the next stack/map op wipes this rank after that many hosts */
  int one_node;              /* every rank shares memory: 1 yes, 0 no, -1 not asked yet (transport.c) */
  int shm_windows;           /* the newest stack/map window is in shared memory (transport.c) */
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
  /* Scrubbing (verify.c). */
  uint64_t verifies;           /* fuze_verify runs (explicit and verify_every) */
  fuze_verify_report vlast;    /* the last one's report */
  /* Counters. */
  uint64_t sent_bytes, recovered_bytes, recoveries;
  struct fuze_byz *byz;        /* code=byzantine: replicas (byzantine.c), NULL otherwise */
  char msg[FUZE_MSG_LEN];
};

/* Status helpers: record on the context. */
#define CTX_ERR(ctx, code, ...) fuze__error((ctx)->msg, (code), __VA_ARGS__)

/* runtime.c */
int fuze__agree(fuze_ctx *ctx, int rc);           /* collective: same rc and message everywhere */
int fuze__any_lost(fuze_ctx *ctx, int *lost);     /* collective: lost[rank] for every rank */
size_t fuze__align(size_t n);

/* transport.c */
/* lock_all: keep the window under a shared lock_all for its lifetime (the
 * fine-grained path); 0 for lock=exclusive windows, locked per operation. */
int fuze__win_create(fuze_ctx *ctx, size_t bytes, MPI_Win *win, unsigned char **base,
                     int lock_all);
/* The same for a stack/map window (many small concurrent XORs). With
 * shm=auto or on and every rank on one node it is an MPI-3 shared-memory
 * window (MPI_Win_allocate_shared), which fuze__win_xor updates with CPU
 * atomic XOR; otherwise (or when the library cannot allocate one, auto)
 * exactly fuze__win_create. *shm tells which. */
int fuze__win_create_fused(fuze_ctx *ctx, size_t bytes, MPI_Win *win, unsigned char **base,
                           int lock_all, int *shm);
/* Collective, in fuze_init: when the ranks span nodes, checks that the MPI
 * library can make a window over them, or fails naming the MCA setting. */
int fuze__win_probe(fuze_ctx *ctx);
void fuze__win_free(MPI_Win *win, int locked);
/* XOR len bytes into rank's window at disp: MPI_Accumulate(BXOR), or in a
 * shared-memory window atomic XORs done at once. The origin buffer must stay
 * untouched until fuze__win_flush. */
int fuze__win_xor(fuze_ctx *ctx, MPI_Win win, const void *buf, size_t len, int rank,
                  size_t disp);
int fuze__win_flush(fuze_ctx *ctx, MPI_Win win);
int fuze__win_sync(MPI_Win win);

/* array.c */
int fuze__array_layout(fuze_ctx *ctx, fuze_array *a);
int fuze__array_sizes(fuze_ctx *ctx, fuze_array *a); /* collective, no window */
unsigned char *fuze__array_map(const fuze_array *a, int h); /* hosted region h's chunk map */
void fuze__arrays_reset_working(fuze_ctx *ctx);
size_t fuze__array_region(const fuze_ctx *ctx, const fuze_array *a, int host, int block,
                          int j);
int fuze__arrays_send(fuze_ctx *ctx, fuze_array **arrays, int n, int phase_hook);
/* changed: per block, skip hosted regions of blocks without bit 2 (NULL: all). */
void fuze__arrays_promote(fuze_ctx *ctx, fuze_array **arrays, int n, const unsigned char *changed);
void fuze__arrays_update_shadow(fuze_ctx *ctx, fuze_array **arrays, int n);
void fuze__array_free(fuze_array *a);

/* inject.c */
int fuze__inject_point(fuze_ctx *ctx, int phase);
int fuze__inject_scheduled(const fuze_ctx *ctx, int phase);
void fuze__wipe_self(fuze_ctx *ctx);
void fuze__kill_marker(const fuze_ctx *ctx, int spec, char *out, size_t len);
void fuze__kill_disarm(fuze_ctx *ctx); /* restart: kills that fired before do not fire again */

/* persist.c */
int fuze__persist_init(fuze_ctx *ctx);  /* collective in fuze_init: FUZE_RESTARTED or 0 */
int fuze__persist_epoch(fuze_ctx *ctx); /* collective at a committed checkpoint */
void fuze__persist_free(fuze_ctx *ctx);
/* Restart: the stored structure `name` of this rank (kind FUZE_PS_*), NULL if none. */
const struct fuze_pstruct *fuze__persist_find(const fuze_ctx *ctx, const char *name, int kind);

/* recovery.c */
typedef void (*fuze_sink)(void *arg, size_t off, const unsigned char *res, size_t n);
int fuze__reduce_to(fuze_ctx *ctx, int b, int root, unsigned char coef,
                    const unsigned char *data, size_t dlen, size_t fused, fuze_sink sink,
                    void *arg);
int fuze__recover(fuze_ctx *ctx, const int *lost, uint64_t *epoch_out);

/* verify.c */
int fuze__verify_collective(fuze_ctx *ctx, fuze_verify_report *report); /* collective */
/* End of a committed checkpoint: corrupt injections, then fuze_verify when
 * verify_every says so (FUZE_RECOVERED becomes FUZE_SUCCESS). Collective. */
int fuze__verify_after_commit(fuze_ctx *ctx);

/* byzantine.c (code=byzantine; no-ops otherwise). Collective, at a committed
 * checkpoint: refresh the replicas right after the commit, then (after the
 * corrupt injections) compare every copy and correct (Fig. 6). */
int fuze__byz_refresh(fuze_ctx *ctx);
int fuze__byz_check(fuze_ctx *ctx); /* FUZE_SUCCESS, FUZE_RECOVERED or FUZE_ERR_CORRUPT */
void fuze__byz_free(fuze_ctx *ctx);
/* inject=corrupt:...:target=replica (verify.c calls it for spec s). */
void fuze__byz_corrupt_replica(fuze_ctx *ctx, int s, const char *name, long bits);

#endif
