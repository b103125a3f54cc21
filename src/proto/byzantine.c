/* byzantine: code=byzantine, the MPI side of Theorem 7 (Fig. 6) for arrays,
 * stacks and maps.
 *
 * Redundancy: the f fused backups of every block exactly as code=rs (so
 * checkpoints, wipes and recovery are unchanged), plus f unfused copies
 * (replicas) of every compute rank's committed arrays on the ranks
 * fuze__byz_place picks (f distinct failure domains, none the rank's own).
 *
 * At every committed checkpoint:
 * 1. refresh (right after the commit): each primary sends, per array, the
 *    chunks whose crc64 changed since what it last sent (all of them after a
 *    recovery or a size change) to its f replica holders, point to point;
 * 2. detection (after the corrupt injections): crc64 (ISA-L) of every copy
 *    (the primary's committed copy and the f replicas), one MPI_Allreduce of
 *    the crc table; a block none of whose primaries has differing copies gets
 *    a parity audit: per backup j one MPI_Reduce(BXOR) over the block
 *    communicator of the members' coef * data and backup j's parity; a nonzero
 *    syndrome at the host means that backup's parity is wrong (the copies agree,
 *    so with at most f faults they are right): it is re-encoded (parity ^=
 *    syndrome);
 * 3. correction (a block with differing copies, the rare path): every copy of
 *    the block's primaries and the f parity regions go to the block's first
 *    member, which runs Fig. 6 (byz.c, pure) and sends the correct state to the
 *    holders of the faulty objects. More than f faulty objects, or no value of
 *    multiplicity f + 1: FUZE_ERR_CORRUPT naming the block, nothing modified.
 *
 * Replicas hold the committed state and are refreshed at checkpoints, not per
 * operation as in the paper: detection happens at checkpoints, and what must
 * be compared there is the committed state of every copy, which the refresh
 * makes equal on every correct copy.
 *
 * Stacks and maps (section 3' below): a copy is a member's committed state
 * (count, seq, keys, values in slot order), serialized for the replicas and
 * resent whole when its crc64 changed; the copy of the primary is its live
 * state, equal to the committed one while the check runs. Detection also
 * compares every backup's header and key replica of the member (the index,
 * 2f + 1 versions) with the primary's; correction runs the same Fig. 6 with
 * index parts (byz.c) on copies expanded to the region's capacity. */
#include "data/array.h"
#include "comm/coll.h"
#include "comm/transport.h"
#include "proto/byzantine.h"

#include "core/byz.h"
#include "data/fused.h"
#include "core/pfile.h"

#include <isa-l/crc64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_REFRESH 7101
#define TAG_FIX 7102
#define MAX_ARMED 16
#define TAG_FREFRESH 7103
#define TAG_FFIX 7104
#define TAG_FGATHER 7200 /* + object */

typedef struct fuze_byz fuze_byz;

typedef struct byz_arr {
  size_t bytes;        /* primary: bytes when last sent */
  uint64_t *sent;      /* primary: crc64 of every chunk as last sent (NULL: send all) */
  unsigned char **rep; /* holder: replica of held[h] */
  size_t *replen;
} byz_arr;

/* A stack or map: replicas are whole serialized committed states
 * [count u64][seq u64][keys count*kb][values count*nb], resent whole when
 * their crc64 changed. */
typedef struct byz_fobj {
  int has_sent;
  uint64_t sent;          /* primary: crc64 of the state last sent */
  unsigned char **rep;    /* holder: replica of held[h] (serialized) */
  size_t *replen;
  unsigned char *poison;  /* per block: uncorrectable at the last check */
} byz_fobj;

typedef struct armed {
  char name[FUZE_NAME_MAX];
  int what, arg, j, mode;
  size_t off, len;
  uint64_t seed;
} armed;

struct fuze_byz {
  int f;
  MPI_Comm comm;
  int *place;               /* size * f */
  int nheld, *held_rank, *held_c;
  uint64_t recoveries;      /* full refresh when it changes */
  int narr;
  byz_arr *arr;
  int nfo;
  byz_fobj *fo;
  int narmed;
  armed arm[MAX_ARMED];
};

static int is_byz(const fuze_ctx *ctx) { return ctx->cfg.mode == FUZE_MODE_BYZANTINE; }

static void arr_free(fuze_byz *z, byz_arr *ba) {
  free(ba->sent);
  for (int h = 0; ba->rep && h < z->nheld; h++) free(ba->rep[h]);
  free(ba->rep);
  free(ba->replen);
  memset(ba, 0, sizeof *ba);
}

static void fo_free(fuze_byz *z, byz_fobj *bf) {
  for (int h = 0; bf->rep && h < z->nheld; h++) free(bf->rep[h]);
  free(bf->rep);
  free(bf->replen);
  free(bf->poison);
  memset(bf, 0, sizeof *bf);
}

void fuze__byz_free(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  if (!z) return;
  for (int x = 0; x < z->narr; x++) arr_free(z, &z->arr[x]);
  free(z->arr);
  for (int x = 0; x < z->nfo; x++) fo_free(z, &z->fo[x]);
  free(z->fo);
  free(z->place);
  free(z->held_rank);
  free(z->held_c);
  if (z->comm != MPI_COMM_NULL) MPI_Comm_free(&z->comm);
  free(z);
  ctx->byz = NULL;
}

/* Collective the first time (the communicator). */
static int byz_state(fuze_ctx *ctx) {
  if (ctx->byz) return FUZE_SUCCESS;
  const fuze_plan *p = &ctx->plan;
  fuze_byz *z = calloc(1, sizeof *z);
  int rc = z ? FUZE_SUCCESS : CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  if (z) {
    z->f = p->f;
    z->comm = MPI_COMM_NULL;
    z->recoveries = ctx->recoveries;
    z->place = malloc(sizeof(int) * (size_t)ctx->size * (size_t)p->f);
    z->held_rank = malloc(sizeof(int) * (size_t)ctx->size * (size_t)p->f);
    z->held_c = malloc(sizeof(int) * (size_t)ctx->size * (size_t)p->f);
    if (!z->place || !z->held_rank || !z->held_c)
      rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
    else if (fuze__byz_place(p->domain, ctx->size, p->ndomains, p->f, z->place))
      rc = CTX_ERR(ctx, FUZE_ERR_CONFIG, "byzantine: cannot place %d replicas over %d failure "
                   "domains", p->f, p->ndomains);
    for (int r = 0; !rc && r < ctx->size; r++)
      for (int c = 1; c <= p->f && p->block_of[r] >= 0; c++)
        if (z->place[r * p->f + c - 1] == ctx->rank)
          z->held_rank[z->nheld] = r, z->held_c[z->nheld++] = c;
  }
  ctx->byz = z;
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  MPI_Comm_dup(ctx->net.comm, &z->comm);
  return FUZE_SUCCESS;
}

/* One replica slot per primary this rank holds copies of. */
static int alloc_replicas(const fuze_byz *z, unsigned char ***rep, size_t **replen) {
  *rep = calloc((size_t)(z->nheld ? z->nheld : 1), sizeof **rep);
  *replen = calloc((size_t)(z->nheld ? z->nheld : 1), sizeof **replen);
  return *rep && *replen ? 0 : -1;
}

static int grow_arrays(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  if (z->narr >= ctx->narrays) return FUZE_SUCCESS;
  byz_arr *g = realloc(z->arr, sizeof *g * (size_t)ctx->narrays);
  if (!g) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  z->arr = g;
  for (int x = z->narr; x < ctx->narrays; x++) {
    memset(&g[x], 0, sizeof g[x]);
    if (alloc_replicas(z, &g[x].rep, &g[x].replen))
      return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
    z->narr = x + 1;
  }
  return FUZE_SUCCESS;
}

static int grow_fobjs(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  if (z->nfo >= ctx->nfobjs) return FUZE_SUCCESS;
  byz_fobj *g = realloc(z->fo, sizeof *g * (size_t)ctx->nfobjs);
  if (!g) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  z->fo = g;
  for (int x = z->nfo; x < ctx->nfobjs; x++) {
    memset(&g[x], 0, sizeof g[x]);
    int bad = alloc_replicas(z, &g[x].rep, &g[x].replen);
    g[x].poison = calloc((size_t)(ctx->plan.nblocks ? ctx->plan.nblocks : 1), 1);
    z->nfo = x + 1;
    if (bad || !g[x].poison)
      return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  }
  return FUZE_SUCCESS;
}

size_t fuze__byz_replica_bytes(const fuze_ctx *ctx) {
  const fuze_byz *z = ctx ? ctx->byz : NULL;
  size_t total = 0;
  for (int x = 0; z && x < z->narr; x++)
    for (int h = 0; h < z->nheld; h++) total += z->arr[x].replen[h];
  for (int x = 0; z && x < z->nfo; x++)
    for (int h = 0; h < z->nheld; h++) total += z->fo[x].replen[h];
  return total;
}

/* ---- 1. refresh ---- */

static uint64_t crc(const unsigned char *p, size_t n) { return n ? crc64_ecma_refl(0, p, n) : 0; }

/* Primary: pack [n][chunk indices][chunk bytes] of the chunks that changed. */
static unsigned char *pack_changed(fuze_ctx *ctx, fuze_array *a, byz_arr *ba, int full,
                                   size_t *plen) {
  size_t chunk = ctx->cfg.chunk, n = (a->bytes + chunk - 1) / chunk, nch = 0, data = 0;
  if (full || ba->bytes != a->bytes || !ba->sent) {
    free(ba->sent);
    ba->sent = NULL;
  }
  uint64_t *cur = malloc(sizeof(uint64_t) * (n ? n : 1));
  unsigned char *mark = calloc(n ? n : 1, 1);
  if (!cur || !mark) {
    free(cur);
    free(mark);
    return NULL;
  }
  for (size_t c = 0; c < n; c++) {
    size_t off = c * chunk, len = a->bytes - off < chunk ? a->bytes - off : chunk;
    cur[c] = crc(a->shadow + off, len);
    if (!ba->sent || ba->sent[c] != cur[c]) mark[c] = 1, nch++, data += len;
  }
  unsigned char *buf = malloc(8 * (1 + nch) + data);
  if (buf) {
    uint64_t v = nch;
    memcpy(buf, &v, 8);
    size_t ip = 8, dp = 8 * (1 + nch);
    for (size_t c = 0; c < n; c++) {
      if (!mark[c]) continue;
      size_t off = c * chunk, len = a->bytes - off < chunk ? a->bytes - off : chunk;
      v = c;
      memcpy(buf + ip, &v, 8);
      ip += 8;
      memcpy(buf + dp, a->shadow + off, len);
      dp += len;
    }
    *plen = dp;
    free(ba->sent);
    ba->sent = cur;
    ba->bytes = a->bytes;
    cur = NULL;
  }
  free(cur);
  free(mark);
  return buf;
}

static int apply_pack(fuze_ctx *ctx, fuze_array *a, byz_arr *ba, int h, const unsigned char *buf,
                      size_t blen) {
  fuze_byz *z = ctx->byz;
  int r = z->held_rank[h];
  size_t bytes = a->rank_bytes[r], chunk = ctx->cfg.chunk;
  if (ba->replen[h] != bytes || !ba->rep[h]) {
    free(ba->rep[h]);
    ba->rep[h] = calloc(bytes ? bytes : 1, 1);
    ba->replen[h] = ba->rep[h] ? bytes : 0;
    if (!ba->rep[h]) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  }
  uint64_t n;
  memcpy(&n, buf, 8);
  size_t dp = 8 * (1 + (size_t)n);
  for (uint64_t q = 0; q < n; q++) {
    uint64_t c;
    memcpy(&c, buf + 8 * (1 + q), 8);
    size_t off = (size_t)c * chunk;
    if (off >= bytes) break;
    size_t len = bytes - off < chunk ? bytes - off : chunk;
    if (dp + len > blen) break;
    memcpy(ba->rep[h] + off, buf + dp, len);
    dp += len;
  }
  return FUZE_SUCCESS;
}

/* ---- stacks and maps: serialized states ---- */

static int fo_primary(const fuze_ctx *ctx) { return ctx->plan.block_of[ctx->rank] >= 0 && !ctx->lost; }

/* [count u64][seq u64][keys n*kb][values n*nb] of the primary's state. */
static unsigned char *fser(const fuze_fobj *f, size_t *len) {
  size_t n = f->n, bytes = 16 + n * (f->kb + f->nb);
  unsigned char *p = malloc(bytes);
  if (!p) return NULL;
  uint64_t h[2] = {(uint64_t)n, f->seq};
  memcpy(p, h, 16);
  if (n && f->kb) memcpy(p + 16, f->keys, n * f->kb);
  if (n) memcpy(p + 16 + n * f->kb, f->vals, n * f->nb);
  *len = bytes;
  return p;
}

/* Count of a serialized state, or -1 when it is malformed. */
static long long fcount(const fuze_fobj *f, const unsigned char *p, size_t len) {
  uint64_t n;
  if (!p || len < 16) return -1;
  memcpy(&n, p, 8);
  if (n > f->cap || len != 16 + (size_t)n * (f->kb + f->nb)) return -1;
  return (long long)n;
}

/* The index part (header (count, seq) + keys padded to cap slots, the form of
 * a backup's index replica) and the value part (values padded to cap slots,
 * the form the nodes parity encodes) of a serialized state. A malformed state
 * gets an index no correct copy has (all 0xFF). */
static void fexpand(const fuze_fobj *f, const unsigned char *p, size_t len, unsigned char *idx,
                    unsigned char *val) {
  size_t ilen = 16 + f->cap * f->kb;
  size_t vl = f->cap * f->nb;
  memset(val, 0, vl ? vl : 1);
  long long n = fcount(f, p, len);
  if (n < 0) {
    memset(idx, 0xFF, ilen);
    return;
  }
  memset(idx, 0, ilen);
  memcpy(idx, p, 16);
  if (n && f->kb) memcpy(idx + 16, p + 16, (size_t)n * f->kb);
  if (n) memcpy(val, p + 16 + (size_t)n * f->kb, (size_t)n * f->nb);
}

/* Inverse of fexpand for a correct copy. */
static unsigned char *fcompact(const fuze_fobj *f, const unsigned char *idx, const unsigned char *val,
                               size_t *len) {
  uint64_t n;
  memcpy(&n, idx, 8);
  if (n > f->cap) n = f->cap;
  size_t bytes = 16 + (size_t)n * (f->kb + f->nb);
  unsigned char *p = malloc(bytes);
  if (!p) return NULL;
  memcpy(p, &n, 8);
  memcpy(p + 8, idx + 8, 8);
  if (n && f->kb) memcpy(p + 16, idx + 16, (size_t)n * f->kb);
  if (n) memcpy(p + 16 + (size_t)n * f->kb, val, (size_t)n * f->nb);
  *len = bytes;
  return p;
}

/* Member i's index replica in a region: header (16 bytes) then cap key slots. */
static void region_index(const fuze_fobj *f, int k, const unsigned char *r, int i, unsigned char *idx) {
  fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  memcpy(idx, r + fuze__hdr_off(i), 16);
  if (f->kb) memcpy(idx + 16, r + l.keys_off + (size_t)i * f->cap * f->kb, f->cap * f->kb);
}

/* Hosted (block b, backup j) region of f: committed half (working: - fused). */
static unsigned char *fregion(fuze_fobj *f, int b, int j, size_t *len) {
  for (int h = 0; h < f->nhosted; h++)
    if (f->hosted[h].block == b && f->hosted[h].j == j) {
      if (len) *len = f->hosted[h].fused;
      return f->winbase + f->hosted[h].off + f->hosted[h].fused;
    }
  return NULL;
}

static void fwin_sync(const fuze_fobj *f) {
  if (!f->excl) fuze__win_sync(&f->ctx->net, f->win);
}

/* Committed region := r, and working := committed (they are equal outside a
 * checkpoint, and detection runs after the commit). */
static void fregion_write(fuze_fobj *f, int b, int j, const unsigned char *r) {
  size_t len = 0;
  unsigned char *c = fregion(f, b, j, &len);
  if (!c) return;
  fwin_sync(f);
  if (r) memcpy(c, r, len);
  memcpy(c - len, c, len);
  fwin_sync(f);
}

static int block_kk(const fuze_ctx *ctx, int b) {
  return ctx->plan.block_start[b + 1] - ctx->plan.block_start[b];
}

/* Refresh of the stacks' and maps' replicas: a primary resends its whole
 * serialized state when its crc64 differs from what it last sent (an empty
 * message otherwise). A block found uncorrectable keeps its replicas as they
 * are (they are evidence) until it is correct again or a recovery. */
static int refresh_fobjs(fuze_ctx *ctx, int full) {
  fuze_byz *z = ctx->byz;
  int f = z->f, primary = fo_primary(ctx), rc = FUZE_SUCCESS;
  int myb = ctx->plan.block_of[ctx->rank];
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *o = ctx->fobjs[x];
    byz_fobj *bf = &z->fo[x];
    if (full) memset(bf->poison, 0, (size_t)(ctx->plan.nblocks ? ctx->plan.nblocks : 1));
    size_t plen = 0;
    unsigned char *pack = NULL, dummy = 0;
    MPI_Request req[256];
    int nreq = 0;
    if (primary && !(myb >= 0 && bf->poison[myb])) {
      pack = fser(o, &plen);
      if (!pack) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
      uint64_t c = pack ? crc(pack, plen) : 0;
      if (pack && !full && bf->has_sent && bf->sent == c) plen = 0;
      else if (pack) bf->sent = c, bf->has_sent = 1;
    }
    for (int c = 0; primary && c < f; c++)
      MPI_Isend(pack && plen ? pack : &dummy, pack ? (int)plen : 0, MPI_BYTE,
                z->place[ctx->rank * f + c], TAG_FREFRESH, z->comm, &req[nreq++]);
    for (int h = 0; h < z->nheld; h++) {
      MPI_Status stt;
      int cnt;
      MPI_Probe(z->held_rank[h], TAG_FREFRESH, z->comm, &stt);
      MPI_Get_count(&stt, MPI_BYTE, &cnt);
      unsigned char *buf = cnt ? malloc((size_t)cnt) : NULL;
      MPI_Recv(buf ? buf : &dummy, buf ? cnt : 0, MPI_BYTE, z->held_rank[h], TAG_FREFRESH,
               z->comm, MPI_STATUS_IGNORE);
      if (cnt && !buf && !rc) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
      if (buf) {
        free(bf->rep[h]);
        bf->rep[h] = buf;
        bf->replen[h] = (size_t)cnt;
      }
    }
    MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    free(pack);
  }
  return rc;
}

int fuze__byz_refresh(fuze_ctx *ctx) {
  if (!is_byz(ctx)) return FUZE_SUCCESS;
  int rc = byz_state(ctx);
  if (rc || (rc = fuze__agree(&ctx->net, grow_arrays(ctx)))) return rc;
  if ((rc = fuze__agree(&ctx->net, grow_fobjs(ctx)))) return rc;
  fuze_byz *z = ctx->byz;
  int f = z->f, primary = ctx->plan.block_of[ctx->rank] >= 0 && !ctx->lost;
  int full = z->recoveries != ctx->recoveries;
  z->recoveries = ctx->recoveries;
  for (int x = 0; x < ctx->narrays && !rc; x++) {
    fuze_array *a = ctx->arrays[x];
    byz_arr *ba = &z->arr[x];
    size_t plen = 0;
    unsigned char *pack = NULL;
    MPI_Request req[256];
    int nreq = 0;
    uint64_t empty = 0; /* still one message per holder */
    if (primary) {
      pack = pack_changed(ctx, a, ba, full, &plen);
      if (!pack) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
      for (int c = 0; c < f; c++)
        MPI_Isend(pack ? pack : (unsigned char *)&empty, pack ? (int)plen : 8, MPI_BYTE,
                  z->place[ctx->rank * f + c], TAG_REFRESH, z->comm, &req[nreq++]);
    }
    for (int h = 0; h < z->nheld; h++) {
      MPI_Status stt;
      int cnt;
      MPI_Probe(z->held_rank[h], TAG_REFRESH, z->comm, &stt);
      MPI_Get_count(&stt, MPI_BYTE, &cnt);
      unsigned char *buf = malloc((size_t)cnt ? (size_t)cnt : 1);
      MPI_Recv(buf ? buf : (unsigned char *)&plen, buf ? cnt : 0, MPI_BYTE, z->held_rank[h],
               TAG_REFRESH, z->comm, MPI_STATUS_IGNORE);
      int r2 = buf ? apply_pack(ctx, a, ba, h, buf, (size_t)cnt)
                   : CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
      if (!rc) rc = r2;
      free(buf);
    }
    MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    free(pack);
  }
  int r2 = refresh_fobjs(ctx, full);
  if (!rc) rc = r2;
  return fuze__agree(&ctx->net, rc);
}

/* ---- test hook ---- */

int fuze__byz_arm(fuze_ctx *ctx, const char *name, int what, int arg, int j, int mode,
                  size_t off, size_t len, uint64_t seed) {
  if (!ctx || !name || !is_byz(ctx) || !ctx->byz || ctx->byz->narmed >= MAX_ARMED) return -1;
  armed *m = &ctx->byz->arm[ctx->byz->narmed++];
  snprintf(m->name, sizeof m->name, "%s", name);
  m->what = what, m->arg = arg, m->j = j, m->mode = mode, m->off = off, m->len = len, m->seed = seed;
  return 0;
}

static uint64_t mix(uint64_t *s) {
  uint64_t q = (*s += 0x9e3779b97f4a7c15ULL);
  q = (q ^ (q >> 30)) * 0xbf58476d1ce4e5b9ULL;
  q = (q ^ (q >> 27)) * 0x94d049bb133111ebULL;
  return q ^ (q >> 31);
}

/* XOR/zero n bytes of p per the armed mode (ALT: 0xA5). */
static void hit(armed *m, unsigned char *p, size_t n) {
  if (!p || !n) return;
  if (m->mode == FUZE_BYZ_ARM_ZERO) memset(p, 0, n);
  else if (m->mode == FUZE_BYZ_ARM_ALT)
    for (size_t b = 0; b < n; b++) p[b] ^= 0xA5;
  else
    for (size_t b = m->off; b < m->off + m->len && b < n; b++)
      p[b] ^= (unsigned char)(1 + mix(&m->seed) % 255);
}

/* The index of a serialized state as one span: seq, then the keys. */
static void hit_state_index(armed *m, const fuze_fobj *f, unsigned char *p, size_t len) {
  long long n = fcount(f, p, len);
  if (n < 0) return;
  if (m->mode == FUZE_BYZ_ARM_RANDOM) hit(m, p + 8, 8 + (size_t)n * f->kb);
  else if (m->mode == FUZE_BYZ_ARM_ALT) hit(m, p + 8, 8 + (size_t)n * f->kb);
}

static void fire_fobj(fuze_ctx *ctx, armed *m, fuze_fobj *f, byz_fobj *bf) {
  fuze_byz *z = ctx->byz;
  int k;
  size_t len = 0;
  unsigned char *r;
  switch (m->what) {
  case FUZE_BYZ_ARM_PRIMARY:
    if (fo_primary(ctx)) hit(m, f->vals, f->n * f->nb);
    break;
  case FUZE_BYZ_ARM_REPLICA:
  case FUZE_BYZ_ARM_REPLICA_INDEX:
    for (int h = 0; h < z->nheld; h++) {
      if (z->held_rank[h] != m->arg) continue;
      unsigned char *p = bf->rep[h];
      long long n = fcount(f, p, bf->replen[h]);
      if (n < 0) continue;
      if (m->what == FUZE_BYZ_ARM_REPLICA) {
        hit(m, p + 16 + (size_t)n * f->kb, (size_t)n * f->nb);
      } else if (m->mode == FUZE_BYZ_ARM_ZERO) { /* a well-formed empty state */
        memset(p, 0, 16);
        bf->replen[h] = 16;
      } else if (m->mode == FUZE_BYZ_ARM_COUNT) { /* the last element dropped */
        if (!n) continue;
        uint64_t c = (uint64_t)n - 1;
        memcpy(p, &c, 8);
        memmove(p + 16 + c * f->kb, p + 16 + (size_t)n * f->kb, (size_t)c * f->nb);
        bf->replen[h] = 16 + c * (f->kb + f->nb);
      } else {
        hit_state_index(m, f, p, bf->replen[h]);
      }
    }
    break;
  case FUZE_BYZ_ARM_PRIMARY_INDEX:
    if (!fo_primary(ctx)) break;
    if (m->mode == FUZE_BYZ_ARM_ZERO) {
      if (f->n && f->vals) memset(f->vals, 0, f->n * f->nb);
      fuze__fobj_restore_state(f, 0, 0, NULL, NULL);
    } else if (m->mode == FUZE_BYZ_ARM_COUNT) {
      if (f->n) fuze__fobj_restore_state(f, f->n - 1, f->seq, f->keys, f->vals);
    } else {
      size_t plen;
      unsigned char *p = fser(f, &plen);
      if (!p) break;
      hit_state_index(m, f, p, plen);
      uint64_t seq;
      memcpy(&seq, p + 8, 8);
      fuze__fobj_restore_state(f, f->n, seq, p + 16, p + 16 + f->n * f->kb);
      free(p);
    }
    break;
  case FUZE_BYZ_ARM_PARITY:
  case FUZE_BYZ_ARM_BACKUP_INDEX:
    if (!(r = fregion(f, m->arg, m->j, &len))) break;
    k = block_kk(ctx, m->arg);
    fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
    fwin_sync(f);
    if (m->what == FUZE_BYZ_ARM_PARITY) {
      hit(m, r + l.nodes_off, f->cap * f->nb);
    } else if (m->mode == FUZE_BYZ_ARM_COUNT) { /* member 0's count */
      uint64_t c;
      memcpy(&c, r, 8);
      c = c ? c - 1 : 1;
      memcpy(r, &c, 8);
    } else if (m->mode == FUZE_BYZ_ARM_RANDOM) { /* header and keys as one span */
      size_t hl = 16 * (size_t)k, kl = (size_t)k * f->cap * f->kb;
      for (size_t b = m->off; b < m->off + m->len && b < hl + kl; b++)
        (b < hl ? r + fuze__hdr_off((int)(b / 16)) - b / 16 * 16 : r + l.keys_off - hl)[b] ^=
            (unsigned char)(1 + mix(&m->seed) % 255);
    } else {
      for (int i = 0; i < k; i++) hit(m, r + fuze__hdr_off(i), 16);
      hit(m, r + l.keys_off, (size_t)k * f->cap * f->kb);
    }
    fwin_sync(f);
    break;
  }
}

static void fire_armed(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  for (int q = 0; q < z->narmed; q++)
    for (int x = 0; x < ctx->nfobjs && x < z->nfo; x++)
      if (!strcmp(ctx->fobjs[x]->name, z->arm[q].name))
        fire_fobj(ctx, &z->arm[q], ctx->fobjs[x], &z->fo[x]);
  for (int q = 0; q < z->narmed; q++) {
    armed *m = &z->arm[q];
    for (int x = 0; x < ctx->narrays && x < z->narr; x++) {
      fuze_array *a = ctx->arrays[x];
      if (strcmp(a->name, m->name)) continue;
      unsigned char *p = NULL;
      size_t n = 0;
      if (m->what == FUZE_BYZ_ARM_PRIMARY) p = a->shadow, n = a->bytes;
      for (int h = 0; m->what == FUZE_BYZ_ARM_REPLICA && h < z->nheld; h++)
        if (z->held_rank[h] == m->arg) p = z->arr[x].rep[h], n = z->arr[x].replen[h];
      for (int h = 0; m->what == FUZE_BYZ_ARM_PARITY && h < a->nhosted; h++)
        if (a->hosted[h].block == m->arg && a->hosted[h].j == m->j)
          p = a->winbase + a->hosted[h].off + fuze__align(a->hosted[h].fused), n = a->hosted[h].fused;
      if (!p || !n) continue;
      if (m->what == FUZE_BYZ_ARM_PARITY) fuze__win_sync(&a->ctx->net, a->win);
      if (m->mode == FUZE_BYZ_ARM_ZERO) memset(p, 0, n);
      else if (m->mode == FUZE_BYZ_ARM_ALT)
        for (size_t b = 0; b < n; b++) p[b] ^= 0xA5;
      else
        for (size_t b = m->off; b < m->off + m->len && b < n; b++)
          p[b] ^= (unsigned char)(1 + mix(&m->seed) % 255);
      if (m->what == FUZE_BYZ_ARM_PARITY) fuze__win_sync(&a->ctx->net, a->win);
    }
  }
  z->narmed = 0;
}

/* ---- 2. detection ---- */

static unsigned char *parity_of(fuze_array *a, int b, int j, size_t *len) {
  for (int h = 0; h < a->nhosted; h++)
    if (a->hosted[h].block == b && a->hosted[h].j == j) {
      *len = a->hosted[h].fused;
      return a->winbase + a->hosted[h].off + fuze__align(a->hosted[h].fused);
    }
  return NULL;
}

/* Working parity := committed after a repair (they are equal outside a checkpoint). */
static void sync_working(fuze_array *a, int b, int j) {
  for (int h = 0; h < a->nhosted; h++)
    if (a->hosted[h].block == b && a->hosted[h].j == j && a->hosted[h].fused) {
      unsigned char *w = a->winbase + a->hosted[h].off;
      memcpy(w, w + fuze__align(a->hosted[h].fused), a->hosted[h].fused);
    }
}

typedef struct audit_sink {
  fuze_array *a;
  int b, j;
  long bad;
} audit_sink;

static void sink_audit(void *arg, size_t off, const unsigned char *res, size_t n) {
  audit_sink *t = arg;
  size_t len = 0;
  unsigned char *p = parity_of(t->a, t->b, t->j, &len);
  for (size_t q = 0; p && q < n && off + q < len; q++)
    if (res[q]) p[off + q] ^= res[q], t->bad++;
}

/* Parity audit of block b (copies agree): returns the wrong bytes repaired here. */
static int audit_block(fuze_ctx *ctx, fuze_array *a, int b, long *fixed) {
  const fuze_plan *p = &ctx->plan;
  const fuze_code *code = &ctx->codes[b];
  int k = code->k, me, rc = FUZE_SUCCESS;
  MPI_Comm_rank(ctx->block_comm[b], &me);
  for (int j = 0; j < p->f && !rc; j++) {
    unsigned char coef = 0;
    const unsigned char *data = NULL;
    size_t dlen = 0;
    if (me < k) coef = fuze__code_coef(code, j, me), data = a->shadow, dlen = a->bytes;
    else if (me == k + j) coef = 1, data = parity_of(a, b, j, &dlen);
    audit_sink t = {a, b, j, 0};
    rc = fuze__reduce_to(&ctx->net, ctx->block_comm[b], b, k + j, coef, data, dlen, a->fused[b], sink_audit, &t);
    if (t.bad) {
      sync_working(a, b, j);
      *fixed += t.bad;
      if (ctx->cfg.verbose)
        printf("fuze: byzantine: '%s' block %d: parity of backup %d on rank %d was wrong in %ld "
               "byte(s) while every copy agreed: re-encoded\n", a->name, b, j, ctx->rank, t.bad);
    }
  }
  return rc;
}

/* ---- 3. correction ---- */

typedef struct obj {
  int holder;
  size_t len;
} obj;

static void obj_of(const fuze_ctx *ctx, const fuze_array *a, int b, int o, obj *out) {
  const fuze_plan *p = &ctx->plan;
  int k = p->block_start[b + 1] - p->block_start[b], f1 = p->f + 1;
  if (o < k * f1) {
    int r = p->members[p->block_start[b] + o / f1], c = o % f1;
    out->holder = c ? ctx->byz->place[r * p->f + c - 1] : r;
    out->len = a->rank_bytes[r];
  } else {
    out->holder = p->hosts[b * p->f + o - k * f1];
    out->len = a->fused[b];
  }
}

/* This rank's storage of object o (NULL when not its holder). */
static unsigned char *obj_mem(fuze_ctx *ctx, int x, int b, int o) {
  const fuze_plan *p = &ctx->plan;
  fuze_array *a = ctx->arrays[x];
  fuze_byz *z = ctx->byz;
  int k = p->block_start[b + 1] - p->block_start[b], f1 = p->f + 1;
  if (o >= k * f1) {
    size_t len;
    return p->hosts[b * p->f + o - k * f1] == ctx->rank ? parity_of(a, b, o - k * f1, &len) : NULL;
  }
  int r = p->members[p->block_start[b] + o / f1], c = o % f1;
  if (!c) return r == ctx->rank ? a->shadow : NULL;
  for (int h = 0; h < z->nheld; h++)
    if (z->held_rank[h] == r && z->held_c[h] == c) return z->arr[x].rep[h];
  return NULL;
}

typedef struct verdict {
  int status, nbad;
  char msg[256];
} verdict;

/* Fig. 6 for (array x, block b) at the block's first member. */
static int correct_block(fuze_ctx *ctx, int x, int b, verdict *v) {
  const fuze_plan *p = &ctx->plan;
  fuze_array *a = ctx->arrays[x];
  fuze_byz *z = ctx->byz;
  int k = p->block_start[b + 1] - p->block_start[b], f = p->f, f1 = f + 1, nobj = k * f1 + f;
  int L = p->members[p->block_start[b]], me = ctx->rank, rc = FUZE_SUCCESS;
  size_t fused = a->fused[b];
  unsigned char *flags = calloc((size_t)nobj, 1), **buf = calloc((size_t)nobj, sizeof *buf);
  MPI_Request *req = malloc(sizeof(MPI_Request) * (size_t)nobj);
  int nreq = 0, ok = flags && buf && req;
  for (int o = 0; ok && o < nobj; o++) {
    obj ob;
    obj_of(ctx, a, b, o, &ob);
    unsigned char *mem = ob.holder == me ? obj_mem(ctx, x, b, o) : NULL;
    if (me == L) {
      buf[o] = calloc(fused ? fused : 1, 1);
      if (!buf[o]) { ok = 0; break; }
      if (ob.holder == me && mem) memcpy(buf[o], mem, ob.len);
      else if (ob.holder != me && ob.len)
        MPI_Irecv(buf[o], (int)ob.len, MPI_BYTE, ob.holder, o, z->comm, &req[nreq++]);
    } else if (ob.holder == me && ob.len) {
      MPI_Isend(mem, (int)ob.len, MPI_BYTE, L, o, z->comm, &req[nreq++]);
    }
  }
  if (!ok) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
  nreq = 0;
  memset(v, 0, sizeof *v);
  if (me == L && ok) {
    int *truth = malloc(sizeof(int) * (size_t)k);
    fuze_byz_block blk = {k, f, &ctx->codes[b], fused, buf, buf + k * f1, 0, NULL, NULL};
    fuze_byz_result res;
    memset(&res, 0, sizeof res);
    res.bad = flags;
    res.truth = truth;
    int st = truth ? fuze__byz_check_block(&blk, &res, 1) : -1;
    v->status = st < 0 ? -1 : st;
    v->nbad = res.nbad;
    snprintf(v->msg, sizeof v->msg, "%s", st < 0 ? "out of memory" : res.msg);
    free(truth);
  }
  if ((rc = fuze__agree(&ctx->net, rc))) goto out;
  MPI_Bcast(v, (int)sizeof *v, MPI_BYTE, L, z->comm);
  MPI_Bcast(flags, nobj, MPI_BYTE, L, z->comm);
  if (v->status == FUZE_BYZ_CORRECTED) {
    for (int o = 0; o < nobj; o++) {
      if (!flags[o]) continue;
      obj ob;
      obj_of(ctx, a, b, o, &ob);
      unsigned char *mem = ob.holder == me ? obj_mem(ctx, x, b, o) : NULL;
      if (me == L && ob.holder == me) {
        if (mem) memcpy(mem, buf[o], ob.len);
      } else if (me == L && ob.len) {
        MPI_Isend(buf[o], (int)ob.len, MPI_BYTE, ob.holder, TAG_FIX, z->comm, &req[nreq++]);
      } else if (ob.holder == me && ob.len) {
        MPI_Recv(mem, (int)ob.len, MPI_BYTE, L, TAG_FIX, z->comm, MPI_STATUS_IGNORE);
      }
      if (ob.holder != me) continue;
      if (o < k * f1 && o % f1 == 0 && a->bytes) memcpy(a->base, a->shadow, a->bytes);
      if (o >= k * f1) sync_working(a, b, o - k * f1);
    }
    MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
  }
out:
  for (int o = 0; buf && o < nobj; o++) free(buf[o]);
  free(buf);
  free(req);
  free(flags);
  return rc;
}

/* ---- 3'. stacks and maps ---- */

/* Holder of object o of block b (copies k * (f + 1), then the f backups). */
static int fobj_holder(const fuze_ctx *ctx, int b, int o) {
  const fuze_plan *p = &ctx->plan;
  int k = block_kk(ctx, b), f1 = p->f + 1;
  if (o >= k * f1) return p->hosts[b * p->f + o - k * f1];
  int r = p->members[p->block_start[b] + o / f1], c = o % f1;
  return c ? ctx->byz->place[r * p->f + c - 1] : r;
}

static int held_index(const fuze_byz *z, int r, int c) {
  for (int h = 0; h < z->nheld; h++)
    if (z->held_rank[h] == r && z->held_c[h] == c) return h;
  return -1;
}

/* This rank's object o (it is its holder): bytes to send; *owned when the
 * caller frees them. NULL with *len 0 when there is nothing. */
static unsigned char *fobj_bytes(fuze_ctx *ctx, int x, int b, int o, size_t *len, int *owned) {
  const fuze_plan *p = &ctx->plan;
  fuze_byz *z = ctx->byz;
  fuze_fobj *f = ctx->fobjs[x];
  int k = block_kk(ctx, b), f1 = p->f + 1;
  *len = 0;
  *owned = 0;
  if (o >= k * f1) {
    fwin_sync(f);
    return fregion(f, b, o - k * f1, len);
  }
  int r = p->members[p->block_start[b] + o / f1], c = o % f1;
  if (!c) {
    *owned = 1;
    return fser(f, len);
  }
  int h = held_index(z, r, c);
  if (h < 0) return NULL;
  *len = z->fo[x].replen[h];
  return z->fo[x].rep[h];
}

/* Apply the corrected bytes of object o here (its holder). */
static int fobj_apply(fuze_ctx *ctx, int x, int b, int o, const unsigned char *buf, size_t len) {
  const fuze_plan *p = &ctx->plan;
  fuze_byz *z = ctx->byz;
  fuze_fobj *f = ctx->fobjs[x];
  int k = block_kk(ctx, b), f1 = p->f + 1;
  if (o >= k * f1) {
    size_t R = 0;
    if (fregion(f, b, o - k * f1, &R) && R == len) fregion_write(f, b, o - k * f1, buf);
    return FUZE_SUCCESS;
  }
  int r = p->members[p->block_start[b] + o / f1], c = o % f1;
  long long n = fcount(f, buf, len);
  if (n < 0) return CTX_ERR(ctx, FUZE_ERR_CORRUPT, "byzantine: '%s': malformed correction", f->name);
  if (!c) {
    uint64_t seq;
    memcpy(&seq, buf + 8, 8);
    if (fuze__fobj_restore_state(f, (size_t)n, seq, buf + 16, buf + 16 + (size_t)n * f->kb))
      return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
    return FUZE_SUCCESS;
  }
  int h = held_index(z, r, c);
  if (h < 0) return FUZE_SUCCESS;
  unsigned char *cp = malloc(len);
  if (!cp) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  memcpy(cp, buf, len);
  free(z->fo[x].rep[h]);
  z->fo[x].rep[h] = cp;
  z->fo[x].replen[h] = len;
  return FUZE_SUCCESS;
}

/* Fig. 6 for (stack/map x, block b): every copy's serialized state and every
 * backup's committed region go to the block's first member; copies are
 * expanded to (index part, value part) padded to the capacity, the backups'
 * header and key replicas are their index parts, the nodes their parity. */
static int correct_fblock(fuze_ctx *ctx, int x, int b, verdict *v) {
  const fuze_plan *p = &ctx->plan;
  fuze_fobj *f = ctx->fobjs[x];
  fuze_byz *z = ctx->byz;
  int k = block_kk(ctx, b), nf = p->f, f1 = nf + 1, nobj = k * f1 + nf;
  int L = p->members[p->block_start[b]], me = ctx->rank, rc = FUZE_SUCCESS, ok = 1;
  fuze_fobj_layout lay = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  size_t len = f->cap * f->nb, ilen = 16 + f->cap * f->kb, R = lay.bytes;
  unsigned char *flags = calloc((size_t)nobj, 1), **raw = calloc((size_t)nobj, sizeof *raw);
  unsigned char **own = calloc((size_t)nobj, sizeof *own);
  size_t *rawlen = calloc((size_t)nobj, sizeof *rawlen);
  MPI_Request *req = malloc(sizeof(MPI_Request) * (size_t)nobj);
  unsigned char **copy = NULL, **icopy = NULL, **ipar = NULL, **par = NULL;
  int nreq = 0;
  if (!flags || !raw || !own || !rawlen || !req) ok = 0;
  /* 1. gather */
  for (int o = 0; ok && o < nobj; o++) {
    int holder = fobj_holder(ctx, b, o);
    if (holder != me) {
      if (me != L) continue;
      MPI_Status stt;
      int cnt;
      MPI_Probe(holder, TAG_FGATHER + o, z->comm, &stt);
      MPI_Get_count(&stt, MPI_BYTE, &cnt);
      raw[o] = malloc((size_t)cnt + 1);
      rawlen[o] = (size_t)cnt;
      MPI_Recv(raw[o] ? raw[o] : flags, raw[o] ? cnt : 0, MPI_BYTE, holder, TAG_FGATHER + o,
               z->comm, MPI_STATUS_IGNORE);
      if (!raw[o]) ok = 0;
      continue;
    }
    int owned;
    size_t bl;
    unsigned char *bytes = fobj_bytes(ctx, x, b, o, &bl, &owned);
    if (owned) own[o] = bytes;
    if (owned && !bytes) ok = 0;
    if (me == L) {
      raw[o] = malloc(bl + 1);
      rawlen[o] = bl;
      if (!raw[o]) ok = 0;
      else if (bl) memcpy(raw[o], bytes, bl);
    } else {
      MPI_Isend(bytes ? bytes : flags, bytes ? (int)bl : 0, MPI_BYTE, L, TAG_FGATHER + o, z->comm,
                &req[nreq++]);
    }
  }
  MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
  nreq = 0;
  memset(v, 0, sizeof *v);
  /* 2. Fig. 6 at the leader */
  if (me == L && ok) {
    copy = calloc((size_t)k * f1, sizeof *copy);
    icopy = calloc((size_t)k * f1, sizeof *icopy);
    ipar = calloc((size_t)nf * k, sizeof *ipar);
    par = calloc((size_t)nf, sizeof *par);
    ok = copy && icopy && ipar && par;
    for (int o = 0; ok && o < k * f1; o++) {
      copy[o] = malloc(len ? len : 1);
      icopy[o] = malloc(ilen);
      if (!copy[o] || !icopy[o]) ok = 0;
      else fexpand(f, raw[o], rawlen[o], icopy[o], copy[o]);
    }
    for (int j = 0; ok && j < nf; j++) {
      unsigned char *reg = raw[k * f1 + j];
      par[j] = calloc(len ? len : 1, 1);
      if (!par[j]) { ok = 0; break; }
      if (rawlen[k * f1 + j] == R) memcpy(par[j], reg + lay.nodes_off, len);
      for (int i = 0; i < k && ok; i++) {
        ipar[j * k + i] = malloc(ilen);
        if (!ipar[j * k + i]) ok = 0;
        else if (rawlen[k * f1 + j] == R) region_index(f, k, reg, i, ipar[j * k + i]);
        else memset(ipar[j * k + i], 0xFF, ilen); /* no region: every part is wrong */
      }
    }
    int *truth = malloc(sizeof(int) * (size_t)k);
    if (ok && truth) {
      fuze_byz_block blk = {k, nf, &ctx->codes[b], len, copy, par, ilen, icopy, ipar};
      fuze_byz_result res;
      memset(&res, 0, sizeof res);
      res.bad = flags;
      res.truth = truth;
      int st = fuze__byz_check_block(&blk, &res, 1);
      v->status = st < 0 ? -1 : st;
      v->nbad = res.nbad;
      snprintf(v->msg, sizeof v->msg, "%s", st < 0 ? "out of memory" : res.msg);
    } else {
      ok = 0;
    }
    free(truth);
  }
  if (!ok) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  if ((rc = fuze__agree(&ctx->net, rc))) goto out;
  MPI_Bcast(v, (int)sizeof *v, MPI_BYTE, L, z->comm);
  MPI_Bcast(flags, nobj, MPI_BYTE, L, z->comm);
  /* 3. the correct state to the holders of the faulty objects */
  if (v->status == FUZE_BYZ_CORRECTED) {
    unsigned char **msg = calloc((size_t)nobj, sizeof *msg);
    size_t *mlen = calloc((size_t)nobj, sizeof *mlen);
    if (!msg || !mlen) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
    for (int o = 0; !rc && me == L && o < nobj; o++) {
      if (!flags[o]) continue;
      if (o < k * f1) {
        msg[o] = fcompact(f, icopy[o], copy[o], &mlen[o]);
      } else {
        int j = o - k * f1;
        msg[o] = calloc(R, 1);
        mlen[o] = R;
        for (int i = 0; msg[o] && i < k; i++) {
          memcpy(msg[o] + fuze__hdr_off(i), ipar[j * k + i], 16);
          if (f->kb) memcpy(msg[o] + lay.keys_off + (size_t)i * f->cap * f->kb, ipar[j * k + i] + 16, f->cap * f->kb);
        }
        if (msg[o]) memcpy(msg[o] + lay.nodes_off, par[j], len);
      }
      if (!msg[o]) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
    }
    if ((rc = fuze__agree(&ctx->net, rc))) {
      for (int o = 0; msg && o < nobj; o++) free(msg[o]);
      free(msg);
      free(mlen);
      goto out;
    }
    for (int o = 0; o < nobj; o++) {
      if (!flags[o]) continue;
      int holder = fobj_holder(ctx, b, o), r2 = FUZE_SUCCESS;
      if (me == L && holder == me) {
        r2 = fobj_apply(ctx, x, b, o, msg[o], mlen[o]);
      } else if (me == L) {
        MPI_Isend(msg[o], (int)mlen[o], MPI_BYTE, holder, TAG_FFIX, z->comm, &req[nreq++]);
      } else if (holder == me) {
        MPI_Status stt;
        int cnt;
        MPI_Probe(L, TAG_FFIX, z->comm, &stt);
        MPI_Get_count(&stt, MPI_BYTE, &cnt);
        unsigned char *buf = malloc((size_t)cnt + 1);
        MPI_Recv(buf ? buf : flags, buf ? cnt : 0, MPI_BYTE, L, TAG_FFIX, z->comm, MPI_STATUS_IGNORE);
        r2 = buf ? fobj_apply(ctx, x, b, o, buf, (size_t)cnt)
                 : CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
        free(buf);
      }
      if (!rc) rc = r2;
    }
    MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    for (int o = 0; o < nobj; o++) free(msg[o]);
    free(msg);
    free(mlen);
  }
  z->fo[x].poison[b] = v->status == FUZE_BYZ_UNCORRECTABLE;
out:
  for (int o = 0; raw && o < nobj; o++) free(raw[o]);
  for (int o = 0; own && o < nobj; o++) free(own[o]);
  for (int o = 0; copy && o < k * f1; o++) free(copy[o]);
  for (int o = 0; icopy && o < k * f1; o++) free(icopy[o]);
  for (int o = 0; ipar && o < nf * k; o++) free(ipar[o]);
  for (int j = 0; par && j < nf; j++) free(par[j]);
  free(copy);
  free(icopy);
  free(ipar);
  free(par);
  free(raw);
  free(own);
  free(rawlen);
  free(req);
  free(flags);
  return rc;
}

typedef struct faudit_sink {
  fuze_fobj *f;
  int b, j;
  size_t nodes_off;
  long bad;
} faudit_sink;

static void sink_faudit(void *arg, size_t off, const unsigned char *res, size_t n) {
  faudit_sink *t = arg;
  size_t len = 0;
  unsigned char *r = fregion(t->f, t->b, t->j, &len);
  for (size_t q = 0; r && q < n && t->nodes_off + off + q < len; q++)
    if (res[q]) r[t->nodes_off + off + q] ^= res[q], t->bad++;
}

/* Nodes audit of (stack/map, block b) whose copies and index replicas agree. */
static int audit_fblock(fuze_ctx *ctx, fuze_fobj *f, int b, long *fixed) {
  const fuze_code *code = &ctx->codes[b];
  int k = code->k, me, rc = FUZE_SUCCESS;
  size_t len = f->cap * f->nb;
  fuze_fobj_layout lay = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  MPI_Comm_rank(ctx->block_comm[b], &me);
  fwin_sync(f);
  for (int j = 0; j < ctx->plan.f && !rc; j++) {
    unsigned char coef = 0;
    const unsigned char *data = NULL;
    size_t dlen = 0;
    if (me < k) coef = fuze__code_coef(code, j, me), data = f->vals, dlen = f->n * f->nb;
    else if (me == k + j && (data = fregion(f, b, j, NULL))) coef = 1, data += lay.nodes_off, dlen = len;
    faudit_sink t = {f, b, j, lay.nodes_off, 0};
    rc = fuze__reduce_to(&ctx->net, ctx->block_comm[b], b, k + j, coef, data, dlen, len, sink_faudit, &t);
    if (t.bad) {
      fregion_write(f, b, j, NULL);
      *fixed += t.bad;
      if (ctx->cfg.verbose)
        printf("fuze: byzantine: '%s' block %d: nodes of backup %d on rank %d were wrong in %ld "
               "byte(s) while every copy agreed: re-encoded\n", f->name, b, j, ctx->rank, t.bad);
    }
  }
  return rc;
}

/* Index crc of primary r's copy as a backup replicates it (header + cap key
 * slots): from a serialized state, or from a region. */
static uint64_t idx_crc(unsigned char *idx, size_t ilen) { return crc(idx, ilen); }

static const char *kind_name(int kind) { return kind == FUZE_FOBJ_MAP ? "map" : "stack"; }

static void describe(const fuze_ctx *ctx, const char *kind, const char *name, int b, const verdict *v) {
  if (!ctx->cfg.verbose || ctx->rank != 0) return;
  printf("fuze: byzantine: %s '%s' block %d: %s: %s\n", kind, name, b,
         v->status == FUZE_BYZ_CORRECTED ? "corrected" : "UNCORRECTABLE", v->msg);
  fflush(stdout);
}

/* Fill the stacks' and maps' part of the crc table: per (fobj, rank) W = f + 2
 * + f entries: the f + 1 copies' state crcs, the primary's index crc, the f
 * backups' index crcs of that rank. */
static int fill_ftab(fuze_ctx *ctx, uint64_t *tab, int W) {
  const fuze_plan *p = &ctx->plan;
  fuze_byz *z = ctx->byz;
  int f1 = p->f + 1;
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    uint64_t *t = tab + (size_t)x * (size_t)ctx->size * (size_t)W;
    size_t ilen = 16 + f->cap * f->kb, blen,     vl = f->cap * f->nb;
    unsigned char *idx = malloc(ilen), *val = malloc(vl ? vl : 1);
    if (!idx || !val) {
      free(idx);
      free(val);
      return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
    }
    if (fo_primary(ctx)) {
      unsigned char *s = fser(f, &blen);
      if (!s) {
        free(idx);
        free(val);
        return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
      }
      t[(size_t)ctx->rank * W] = crc(s, blen);
      fexpand(f, s, blen, idx, val);
      t[(size_t)ctx->rank * W + f1] = idx_crc(idx, ilen);
      free(s);
    }
    for (int h = 0; h < z->nheld; h++)
      t[(size_t)z->held_rank[h] * W + z->held_c[h]] = crc(z->fo[x].rep[h], z->fo[x].replen[h]);
    fwin_sync(f);
    for (int h = 0; h < f->nhosted; h++) {
      int b = f->hosted[h].block, j = f->hosted[h].j, k = block_kk(ctx, b);
      const unsigned char *r = fregion(f, b, j, NULL);
      for (int i = 0; r && i < k; i++) {
        region_index(f, k, r, i, idx);
        t[(size_t)p->members[p->block_start[b] + i] * W + f1 + 1 + j] = idx_crc(idx, ilen);
      }
    }
    free(idx);
    free(val);
  }
  return FUZE_SUCCESS;
}

int fuze__byz_check(fuze_ctx *ctx) {
  if (!is_byz(ctx) || !ctx->byz) return FUZE_SUCCESS;
  fuze_byz *z = ctx->byz;
  const fuze_plan *p = &ctx->plan;
  int f = p->f, f1 = f + 1, n = ctx->narrays, nfo = ctx->nfobjs, W = f1 + 1 + f, rc = FUZE_SUCCESS;
  fire_armed(ctx);
  size_t tl = (size_t)n * (size_t)ctx->size * (size_t)f1;
  size_t tlf = (size_t)nfo * (size_t)ctx->size * (size_t)W;
  uint64_t *tab = calloc(tl + tlf ? tl + tlf : 1, sizeof *tab), *ftab = tab ? tab + tl : NULL;
  unsigned char *mism = calloc((size_t)(n + nfo) * (size_t)p->nblocks + 1, 1);
  if (!tab || !mism) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  if ((rc = fuze__agree(&ctx->net, rc))) goto out;
  for (int x = 0; x < n; x++) {
    fuze_array *a = ctx->arrays[x];
    uint64_t *t = tab + (size_t)x * (size_t)ctx->size * (size_t)f1;
    if (p->block_of[ctx->rank] >= 0) t[(size_t)ctx->rank * f1] = crc(a->shadow, a->bytes);
    for (int h = 0; h < z->nheld; h++)
      t[(size_t)z->held_rank[h] * f1 + z->held_c[h]] = crc(z->arr[x].rep[h], z->arr[x].replen[h]);
  }
  rc = fill_ftab(ctx, ftab, W);
  if ((rc = fuze__agree(&ctx->net, rc))) goto out;
  MPI_Allreduce(MPI_IN_PLACE, tab, (int)(tl + tlf), MPI_UINT64_T, MPI_BXOR, z->comm);
  for (int x = 0; x < n; x++)
    for (int r = 0; r < ctx->size; r++) {
      int b = p->block_of[r];
      const uint64_t *t = tab + ((size_t)x * (size_t)ctx->size + (size_t)r) * f1;
      for (int c = 1; b >= 0 && c < f1; c++)
        if (t[c] != t[0]) mism[x * p->nblocks + b] = 1;
    }
  for (int x = 0; x < nfo; x++) {
    for (int b = 0; b < p->nblocks; b++)
      if (x < z->nfo && z->fo[x].poison[b]) mism[(n + x) * p->nblocks + b] = 1;
    for (int r = 0; r < ctx->size; r++) {
      int b = p->block_of[r];
      const uint64_t *t = ftab + ((size_t)x * (size_t)ctx->size + (size_t)r) * W;
      for (int c = 1; b >= 0 && c < f1; c++)
        if (t[c] != t[0]) mism[(n + x) * p->nblocks + b] = 1;
      for (int j = 0; b >= 0 && j < f; j++)
        if (t[f1 + 1 + j] != t[f1]) mism[(n + x) * p->nblocks + b] = 1;
    }
  }
  long fixed = 0, total = 0;
  int corrected = 0, bad_x = -1, bad_b = -1;
  verdict first_bad;
  for (int x = 0; x < n + nfo && !rc; x++)
    for (int b = 0; b < p->nblocks && !rc; b++) {
      int isf = x >= n;
      fuze_fobj *fo = isf ? ctx->fobjs[x - n] : NULL;
      if (mism[x * p->nblocks + b]) {
        verdict v;
        rc = isf ? correct_fblock(ctx, x - n, b, &v) : correct_block(ctx, x, b, &v);
        if (rc) break;
        if (v.status == FUZE_BYZ_CORRECTED) corrected++;
        if (v.status == FUZE_BYZ_UNCORRECTABLE && bad_x < 0) bad_x = x, bad_b = b, first_bad = v;
        if (v.status == FUZE_BYZ_CORRECTED || v.status == FUZE_BYZ_UNCORRECTABLE)
          describe(ctx, isf ? kind_name(fo->kind) : "array", isf ? fo->name : ctx->arrays[x]->name, b, &v);
        if (v.status < 0) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
      } else if (ctx->block_comm[b] != MPI_COMM_NULL) {
        rc = isf ? audit_fblock(ctx, fo, b, &fixed) : audit_block(ctx, ctx->arrays[x], b, &fixed);
      }
    }
  if ((rc = fuze__agree(&ctx->net, rc))) goto out;
  MPI_Allreduce(&fixed, &total, 1, MPI_LONG, MPI_SUM, z->comm);
  if (bad_x >= 0) {
    int isf = bad_x >= n;
    rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "byzantine: %s '%s' block %d is uncorrectable (%s): "
                 "more than faults=%d copies or backups are wrong; nothing in that block was "
                 "modified", isf ? kind_name(ctx->fobjs[bad_x - n]->kind) : "array",
                 isf ? ctx->fobjs[bad_x - n]->name : ctx->arrays[bad_x]->name, bad_b,
                 first_bad.msg, f);
  } else if (corrected || total) {
    rc = FUZE_RECOVERED;
    if (ctx->cfg.verbose && ctx->rank == 0)
      printf("fuze: byzantine: checkpoint %ld: %d block(s) corrected from their copies, %ld "
             "parity byte(s) re-encoded\n", ctx->ckpt_calls, corrected, total);
  }
out:
  free(tab);
  free(mism);
  return rc;
}

/* inject=corrupt:...:target=replica (verify.c): flip `bits` distinct random
 * bits of the first replica of structure `name` held here. */
void fuze__byz_corrupt_replica(fuze_ctx *ctx, int s, const char *name, long bits) {
  fuze_byz *z = ctx->byz;
  unsigned char *p = NULL;
  size_t n = 0;
  int r = -1;
  for (int x = 0; z && x < z->narr && x < ctx->narrays && !p; x++)
    for (int h = 0; h < z->nheld && !p && !strcmp(ctx->arrays[x]->name, name); h++)
      if (z->arr[x].replen[h]) p = z->arr[x].rep[h], n = z->arr[x].replen[h], r = z->held_rank[h];
  for (int x = 0; z && x < z->nfo && x < ctx->nfobjs && !p; x++)
    for (int h = 0; h < z->nheld && !p && !strcmp(ctx->fobjs[x]->name, name); h++)
      if (z->fo[x].replen[h]) p = z->fo[x].rep[h], n = z->fo[x].replen[h], r = z->held_rank[h];
  if (!p) {
    if (ctx->cfg.verbose)
      printf("fuze: rank %d: inject corrupt: no replica of '%s' here (%s; ignored)\n", ctx->rank,
             name, is_byz(ctx) ? "code=byzantine" : "replicas exist only with code=byzantine");
    return;
  }
  uint64_t seed = (uint64_t)ctx->rank * 1000003u + (uint64_t)ctx->ckpt_calls * 7919u + (uint64_t)s;
  uint64_t nbits = (uint64_t)n * 8, want = (uint64_t)bits < nbits ? (uint64_t)bits : nbits;
  unsigned char *done = calloc((size_t)n, 1); /* bits already flipped, per byte */
  if (!done) return;
  if (ctx->cfg.verbose)
    printf("fuze: rank %d: inject corrupt after checkpoint %ld: flipping %llu bit(s) of the "
           "replica of '%s' of rank %d held here\n", ctx->rank, ctx->ckpt_calls,
           (unsigned long long)want, name, r);
  for (uint64_t q = 0; q < want;) {
    uint64_t bit = mix(&seed) % nbits;
    unsigned char m = (unsigned char)(1u << (bit % 8));
    if (done[bit / 8] & m) continue;
    done[bit / 8] |= m;
    p[bit / 8] ^= m;
    q++;
  }
  free(done);
  fflush(stdout);
}
