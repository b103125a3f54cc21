/* byz_internal: what the files of code=byzantine's MPI side share. Never
 * installed; only src/proto/byz*.c include it.
 *
 *   byz_replicas.c  the mode's state, the replicas and their refresh, and what
 *                   a copy is (serialized stack/map states, index and value
 *                   parts, hosted regions)
 *   byzantine.c     detection at a checkpoint (crc tables, parity audits) and
 *                   fuze__byz_check
 *   byz_correct.c   Fig. 6 for one (structure, block): one gather, vote and
 *                   scatter for arrays and stacks/maps
 *   byz_arm.c       the test hook (fuze__byz_arm) and its firing */
#ifndef FUZE_BYZ_INTERNAL_H
#define FUZE_BYZ_INTERNAL_H

#include "proto/byzantine.h"

#include "core/byz.h"
#include "core/pfile.h" /* the region layout of a stack/map backup */
#include "data/fused.h"

#include <isa-l/crc64.h>
#include <stdint.h>

#define FUZE_BYZ_MAX_ARMED 16

/* Point-to-point tags of code=byzantine (on fuze_byz.comm). */
enum {
  FUZE_BYZ_TAG_REFRESH = 7101,  /* arrays' changed chunks, primary -> replica holders */
  FUZE_BYZ_TAG_FIX = 7102,      /* a corrected object, leader -> its holder */
  FUZE_BYZ_TAG_FREFRESH = 7103, /* stacks' and maps' serialized states */
  FUZE_BYZ_TAG_GATHER = 7200,   /* every object of a block, holders -> leader */
};

/* A serialized stack/map state: [count u64][seq u64][keys count*kb][values
 * count*nb]. Its header is the (count, seq) of a region's member header. */
#define FUZE_BYZ_SEQ_OFF 8 /* seq within the header */

typedef struct byz_arr {
  size_t bytes;        /* primary: bytes when last sent */
  uint64_t *sent;      /* primary: crc64 of every chunk as last sent (NULL: send all) */
  unsigned char **rep; /* holder: replica of held[h] */
  size_t *replen;
} byz_arr;

/* A stack or map: replicas are whole serialized committed states, resent
 * whole when their crc64 changed. */
typedef struct byz_fobj {
  int has_sent;
  uint64_t sent;          /* primary: crc64 of the state last sent */
  unsigned char **rep;    /* holder: replica of held[h] (serialized) */
  size_t *replen;
  unsigned char *poison;  /* per block: uncorrectable at the last check */
} byz_fobj;

/* One fuze__byz_arm request, fired at the next check. */
typedef struct byz_armed {
  char name[FUZE_NAME_MAX];
  int what, arg, j, mode;
  size_t off, len;
  uint64_t seed;
} byz_armed;

/* Bytes to send or keep; owned: freed when done with. */
typedef struct byz_buf {
  unsigned char *p;
  size_t len;
  int owned;
} byz_buf;

/* One correction's per-object buffers (byz_correct.c), allocated with the
 * mode's state (agreed there), so that a correction allocates nothing
 * before its agreement. */
typedef struct byz_work {
  int cap;               /* objects of the largest block: k * (f + 1) + f */
  unsigned char *flags;
  byz_buf *mine;
  unsigned char **raw;
  size_t *rawlen;
  MPI_Request *req;
} byz_work;

typedef struct fuze_byz fuze_byz;

struct fuze_byz {
  int f;
  MPI_Comm comm;            /* dup of the context's communicator */
  int *place;               /* size * f: place[r * f + c - 1] holds copy c of rank r */
  int nheld, *held_rank, *held_c; /* the copies this rank holds */
  uint64_t recoveries;      /* full refresh when it changes */
  int narr;
  byz_arr *arr;
  int nfo;
  byz_fobj *fo;
  int narmed;
  byz_armed arm[FUZE_BYZ_MAX_ARMED];
  byz_work work;
};

/* What Fig. 6 found for one (structure, block), known to every rank. */
typedef struct byz_verdict {
  int status, nbad; /* FUZE_BYZ_*, or -1 when the vote ran out of memory */
  char msg[sizeof ((fuze_byz_result *)0)->msg];
} byz_verdict;

static inline int fuze__byz_on(const fuze_ctx *ctx) { return ctx->cfg.mode == FUZE_MODE_BYZANTINE; }

static inline uint64_t fuze__byz_crc(const unsigned char *p, size_t n) {
  return n ? crc64_ecma_refl(0, p, n) : 0;
}

/* Members of block b. */
static inline int fuze__byz_k(const fuze_ctx *ctx, int b) {
  return ctx->plan.block_start[b + 1] - ctx->plan.block_start[b];
}

/* This rank is a primary whose stacks and maps are live (not wiped). */
static inline int fuze__byz_primary(const fuze_ctx *ctx) {
  return ctx->plan.block_of[ctx->rank] >= 0 && !ctx->lost;
}

/* Index part of a copy: the header then cap key slots. */
static inline size_t fuze__byz_ilen(const fuze_fobj *f) { return FUZE_HDR_BYTES + f->cap * f->kb; }

/* ---- byz_replicas.c ---- */

int fuze__byz_held(const fuze_byz *z, int r, int c); /* index h of copy c of rank r, or -1 */

/* Point to point on fuze_byz.comm, a sequence that keeps its first error in
 * *rc (FUZE_MPI_KEEP). probe: the length of the next message from src with
 * tag; 0 when the probe failed (nothing to receive then). take: receive that
 * message into p (len bytes); p NULL: consume it all the same, with a
 * receive that truncates it (the caller has recorded why there is no
 * buffer: that failure is not reported). 1 when received. */
int fuze__byz_probe(fuze_ctx *ctx, int src, int tag, size_t *len, int *rc);
int fuze__byz_take(fuze_ctx *ctx, int src, int tag, unsigned char *p, size_t len, int *rc);

/* Stack/map copies: the serialized state of the primary (NULL: out of
 * memory); the count of a serialized state (-1: malformed); its index part
 * (ilen bytes) and value part (cap * nb bytes), a malformed state getting an
 * index no correct copy has; the inverse for a correct copy. */
unsigned char *fuze__byz_fser(const fuze_fobj *f, size_t *len);
long long fuze__byz_fcount(const fuze_fobj *f, const unsigned char *p, size_t len);
void fuze__byz_fexpand(const fuze_fobj *f, const unsigned char *p, size_t len, unsigned char *idx,
                       unsigned char *val);
unsigned char *fuze__byz_fcompact(const fuze_fobj *f, const unsigned char *idx,
                                  const unsigned char *val, size_t *len);
/* Member i's index replica in a region of a block of k members. */
void fuze__byz_region_index(const fuze_fobj *f, int k, const unsigned char *r, int i,
                            unsigned char *idx);
/* Hosted (block b, backup j) region of f: the committed half (NULL: not hosted here). */
unsigned char *fuze__byz_fregion(fuze_fobj *f, int b, int j, size_t *len);
int fuze__byz_fwin_sync(const fuze_fobj *f); /* MPI_Win_sync unless lock=exclusive */
/* Committed region := r (NULL: unchanged), then working := committed. */
int fuze__byz_fregion_write(fuze_fobj *f, int b, int j, const unsigned char *r);

/* Arrays: committed parity of hosted (b, j), NULL when not hosted; working := committed. */
unsigned char *fuze__byz_parity(fuze_array *a, int b, int j, size_t *len);
void fuze__byz_sync_working(fuze_array *a, int b, int j);

/* ---- byz_correct.c ---- */

/* Fig. 6 for (array x | stack/map x, block b). Collective over every rank;
 * rc: this rank's error so far (agreed first, nothing done then). Returns an
 * agreed code; v is known to every rank when it is FUZE_SUCCESS. */
int fuze__byz_correct_array(fuze_ctx *ctx, int x, int b, byz_verdict *v, int rc);
int fuze__byz_correct_fobj(fuze_ctx *ctx, int x, int b, byz_verdict *v, int rc);

/* ---- byz_arm.c ---- */

void fuze__byz_fire_armed(fuze_ctx *ctx); /* local: what fuze__byz_arm requested, then disarm */

#endif
