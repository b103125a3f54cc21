/* fused: fused stacks and maps (Section III of the seed paper): the fused
 * object (data/fobj.c) and its sending path (data/fsend.c). Their repair
 * after a loss is a protocol (proto/frecovery.c); it reaches the regions
 * through the layout functions below.
 *
 * Primary side: the member's elements in slot order (the aux list), a hash
 * index for maps, an operation count `seq`, and an undo log of the operations
 * since the last checkpoint (rollback recovery).
 * Fused side, per hosted (block, backup j), a working and a committed region:
 *   header: per member (count, seq), a FUZE_HDR_LINE line each -- index replica
 *   keys:   per member, cap slots of key bytes -- index replica (maps only)
 *   nodes:  cap fused nodes of value bytes     -- parity of the members' slots
 * Every update is an XOR delta: MPI_Accumulate(BXOR), or an atomic XOR in a
 * shared-memory window (transport.c). */
#ifndef FUZE_FUSED_H
#define FUZE_FUSED_H

#include "comm/transport.h"
#include "data/state.h"

#include <pthread.h>

enum { FUZE_FOBJ_STACK = 1, FUZE_FOBJ_MAP = 2 };

typedef struct fuze_fobj {
  fuze_ctx *ctx;
  char name[FUZE_NAME_MAX];
  int kind;
  size_t kb, nb;           /* key bytes (0 for stacks), value/element bytes */
  /* Primary side. */
  size_t n, vcap;          /* elements, allocated slots */
  unsigned char *keys, *vals;
  uint64_t seq;            /* operations applied, replicated at the backups */
  int64_t *table;          /* maps: open addressing, -1 empty, -2 deleted, else hash tag | slot
                              (fobj.c, "the hash index") */
  size_t tsize, tused;     /* entries; entries not empty (live and deleted) */
  unsigned char *scratch;  /* nb + kb bytes for deltas */
  unsigned char *log;      /* undo records since the last checkpoint */
  size_t loglen, logcap;
  /* Fused side. */
  size_t cap;              /* fused slots per region, the same on every rank */
  MPI_Win win;
  unsigned char *winbase;
  size_t winsize;
  int nhosted;
  fuze_hosted *hosted;     /* .fused holds the region bytes */
  int pending;             /* unflushed accumulates */
  int excl;                /* lock=exclusive: MPI_LOCK_EXCLUSIVE per operation and backup */
  int bound;               /* a replacement's structure, registered again (ctx/repair.c) */
  unsigned char *q;        /* operations waiting for capacity, in order */
  size_t qlen, qcap, qslots; /* bytes used/allocated; highest slot + 1 they touch */
  uint64_t ops, deferred_ops;
  /* persist_base > 1: at the last persisted snapshot, seq and the header
   * lines of every hosted committed region (pvalid: taken). */
  uint64_t pseq;
  size_t pcap;
  unsigned char *phdr;
  int pvalid;
  struct fuze_coal *coal;  /* sync=batch: coalesced operations (fsend.c), NULL until the first */
  uint64_t coal_cuts;      /* sync=batch flushes: node runs cut at COAL_ACC, per backup (tests) */
  uint64_t coal_early;     /* sync=batch: buffers sent because they were full, completed
                              only locally until the next flush (tests) */
  /* Threads (data/threads.h): the primary side above is guarded by mu in
   * local calls; the fused side's sending state by the context's send lock. */
  pthread_mutex_t mu;      /* recursive */
  int mu_ready;
} fuze_fobj;

struct fuze_stack { fuze_fobj o; };
struct fuze_map { fuze_fobj o; };

/* Collective: register a stack or map (same name/sizes on every rank). */
int fuze__fobj_create(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                      size_t alloc, size_t cap, fuze_fobj **out); /* cap 0: config capacity */
int fuze__fobj_restore(fuze_fobj *f, size_t n, uint64_t seq, const unsigned char *keys,
                       const unsigned char *vals); /* collective, restart */
void fuze__fobj_free(fuze_fobj *f);
/* ULFM repair (ctx/repair.c): a replacement's empty structure, local; and
 * the move of hosted regions into a window on the repaired communicator,
 * collective. */
int fuze__fobj_shell(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb, size_t alloc,
                     size_t cap, fuze_fobj **out);
/* Like fuze__array_rewin (data/array.h). */
int fuze__fobj_rewin(fuze_fobj *f, fuze_oldwin *old);
/* Local: the primary's state := (n, seq, keys, vals), the hash index
 * rebuilt. code=byzantine: a corrected committed copy; recovery: a lost
 * primary's index, vals NULL (zeros until decoded). FUZE_ERR_NOMEM (no
 * message). */
int fuze__fobj_restore_state(fuze_fobj *f, size_t n, uint64_t seq, const unsigned char *keys,
                             const unsigned char *vals);

/* Primary-side operations (local). */
int fuze__fobj_set(fuze_fobj *f, size_t s, const void *key, const void *val, int log_kind);
int fuze__fobj_append(fuze_fobj *f, const void *key, const void *val, int log_kind);
int fuze__fobj_remove_slot(fuze_fobj *f, size_t s, int log_kind);
int64_t fuze__map_find(const fuze_fobj *f, const void *key);
/* A map's lookup that also says where the key is in the hash index (or
 * where an insert of it goes), so that the put or remove that follows
 * neither hashes nor probes it again: pass kp to the _at variants, with no
 * other change of the map in between. */
typedef struct fuze_keypos {
  uint64_t h;   /* the key's hash */
  size_t pos;   /* its index entry, or the entry an insert takes */
  int found, valid; /* valid 0: no index yet (the _at variants look again) */
} fuze_keypos;
int64_t fuze__map_lookup(const fuze_fobj *f, const void *key, fuze_keypos *kp);
int fuze__fobj_append_at(fuze_fobj *f, const void *key, const void *val, int log_kind,
                         const fuze_keypos *kp);
int fuze__fobj_remove_slot_at(fuze_fobj *f, size_t s, int log_kind, const fuze_keypos *kp);

/* Used by the runtime and recovery. */
int fuze__fobjs_flush(fuze_ctx *ctx);
int fuze__fobjs_grow(fuze_ctx *ctx);                 /* collective */
/* Host, local: committed := working for blocks with FUZE_CHANGED_FOBJS
 * (changed NULL: all), and back (reset_working). A failed MPI_Win_sync
 * (FUZE_ERR_MPI) is returned after every copy was made. */
int fuze__fobjs_promote(fuze_ctx *ctx, const unsigned char *changed);
int fuze__fobjs_reset_working(fuze_ctx *ctx);
uint64_t fuze__fobjs_ops(const fuze_ctx *ctx);
void fuze__fobjs_commit_logs(fuze_ctx *ctx);
void fuze__fobjs_undo(fuze_ctx *ctx);
void fuze__fobjs_drop_queues(fuze_ctx *ctx);
void fuze__fobjs_wipe(fuze_ctx *ctx);

/* The fused side, for the protocols (recovery, scrubbing). A region of block
 * b at the current capacity is laid out as the persisted format's
 * (core/pfile.h, fuze__fobj_layout): header lines, key replicas, nodes. */
size_t fuze__fobj_region(const fuze_fobj *f, int b);          /* bytes of one half */
size_t fuze__fobj_hdr_off(int i);                             /* member i's (count, seq) */
size_t fuze__fobj_keys_off(const fuze_fobj *f, int b, int i); /* member i's key replica */
size_t fuze__fobj_nodes_off(const fuze_fobj *f, int b);       /* the fused nodes */
/* This rank's hosted region of (block b, backup j): its working half (half
 * 0) or committed half (1); NULL when this rank does not host it. */
unsigned char *fuze__fobj_hosted(const fuze_fobj *f, int b, int j, int half);
/* Local view of the window after others wrote into it (MPI_Win_sync; a
 * lock=exclusive window holds no epoch for it: barriers order it there). */
int fuze__fobj_sync(const fuze_fobj *f);
/* This primary's whole state into backup only_j (every backup: -1), as XOR
 * deltas from an empty region: the header (0, 0) -> (n, seq), then slots
 * [0, n); flushed. The region must hold zeros (or what it held for the
 * other members only). */
int fuze__fobj_publish(fuze_fobj *f, int only_j);

#endif
