/* fused: the fused side of stacks and maps, and their operations' data path.
 *
 * An operation of primary i of block b changes a few slots. Each change is a
 * "piece": a value delta for a fused node (sent as its f coefficient products),
 * a key delta for i's index replica, or the (count, seq) delta of i's header.
 * All are XOR deltas, so any number of primaries update the same backup
 * concurrently with MPI_Accumulate(BXOR) under the shared lock_all, and their
 * arrival order does not matter (Theorems 3 and 4).
 *
 * Growth: a region holds `cap` slots, the same on every rank (config
 * `capacity` at creation). An operation that needs a slot >= cap, and every
 * operation of that structure after it, waits in order in a local queue; the
 * next collective call (checkpoint, recovery) grows every window to twice the
 * largest need and sends the queue. So the backups always hold a prefix of
 * each member's operations (what a forward recovery restores), growth costs
 * amortised O(1) per operation, and nothing ever waits for a host: a host
 * busy computing cannot cause a deadlock. The price: a queued operation is
 * complete only at that next collective call. */
#include "comm/coll.h"
#include "comm/transport.h"
#include "data/fused.h"
#include "core/pfile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZE_STAGE (1u << 20)

enum { PIECE_NODE = 0, PIECE_KEY = 1, PIECE_HDR = 2 };

typedef struct piece {
  int type;
  size_t s;
  const unsigned char *delta; /* nb, kb or 16 bytes */
} piece;

/* ---- layout ---- */

static int block_k(const fuze_ctx *ctx, int b) {
  return ctx->plan.block_start[b + 1] - ctx->plan.block_start[b];
}

/* The region layout is shared with the persisted format (pfile.h). */
static size_t keys_off(const fuze_fobj *f, int b) {
  return fuze__fobj_layout(block_k(f->ctx, b), f->cap, f->kb, f->nb).keys_off;
}

static size_t nodes_off(const fuze_fobj *f, int b, size_t cap) {
  return fuze__fobj_layout(block_k(f->ctx, b), cap, f->kb, f->nb).nodes_off;
}

static size_t region_bytes(const fuze_fobj *f, int b, size_t cap) {
  return fuze__fobj_layout(block_k(f->ctx, b), cap, f->kb, f->nb).bytes;
}

size_t fuze__fobj_region(const fuze_fobj *f, int b) { return region_bytes(f, b, f->cap); }

/* Offset of (block, j)'s working region in host's window at capacity cap. */
static size_t region_off(const fuze_fobj *f, int host, int block, int j, size_t cap) {
  const fuze_plan *p = &f->ctx->plan;
  size_t off = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int jj = 0; jj < p->f; jj++) {
      if (p->hosts[b * p->f + jj] != host) continue;
      if (b == block && jj == j) return off;
      off += 2 * region_bytes(f, b, cap);
    }
  return off;
}

static int compute_hosted(fuze_fobj *f, size_t cap, fuze_hosted **out, int *nout, size_t *size) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int n = fuze__plan_load(p, ctx->rank);
  fuze_hosted *h = calloc((size_t)(n ? n : 1), sizeof *h);
  if (!h) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "'%s': out of memory", f->name);
  size_t off = 0;
  int c = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int j = 0; j < p->f; j++) {
      if (p->hosts[b * p->f + j] != ctx->rank) continue;
      h[c++] = (fuze_hosted){b, j, region_bytes(f, b, cap), off};
      off += 2 * region_bytes(f, b, cap);
    }
  *out = h;
  *nout = c;
  *size = off;
  return FUZE_SUCCESS;
}

/* Local view of the window: MPI_Win_sync needs the lock_all epoch that
 * lock=exclusive windows do not hold (there, barriers order the accesses). */
static void fsync_win(const fuze_fobj *f) {
  if (!f->excl) fuze__win_sync(&f->ctx->net, f->win);
}

/* ---- sending ---- */

/* The stage (ctx->stage_*) holds products and delta copies of operations
 * until their flush; one per context, so two contexts never share it. */
/* Room for one whole operation: products and copies of one operation must
 * never be overwritten before they are flushed, so the stage is flushed
 * (and grown if need be) before an operation, never in the middle of one. */
static int stage_reserve(fuze_ctx *ctx, size_t need) {
  if (ctx->stage_pos + need <= ctx->stage_size) return FUZE_SUCCESS;
  int rc = fuze__fobjs_flush(ctx);
  if (rc) return rc;
  if (need > ctx->stage_size) {
    size_t size = need > FUZE_STAGE ? need : FUZE_STAGE;
    unsigned char *b = realloc(ctx->stage_buf, size);
    if (!b) return FUZE_ERR_NOMEM;
    ctx->stage_buf = b;
    ctx->stage_size = size;
  }
  return FUZE_SUCCESS;
}

static unsigned char *stage_take(fuze_ctx *ctx, size_t n) {
  unsigned char *p = ctx->stage_buf + ctx->stage_pos;
  ctx->stage_pos += n;
  return p;
}

static int host_of(const fuze_fobj *f, int j) {
  const fuze_plan *p = &f->ctx->plan;
  return p->hosts[p->block_of[f->ctx->rank] * p->f + j];
}

/* Byte offset of a piece inside a region (the slot fits: see send_op). */
static size_t piece_off(const fuze_fobj *f, const piece *pc, int b, int i, size_t *len) {
  if (pc->type == PIECE_HDR) {
    *len = 16;
    return fuze__hdr_off(i);
  }
  if (pc->type == PIECE_KEY) {
    *len = f->kb;
    return keys_off(f, b) + ((size_t)i * f->cap + pc->s) * f->kb;
  }
  *len = f->nb;
  return nodes_off(f, b, f->cap) + pc->s * f->nb;
}

/* Products of every node piece for every backup, staged until the flush. */
static int stage_products(fuze_fobj *f, const piece *pcs, int np, unsigned char **prod) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank];
  for (int x = 0; x < np; x++) {
    if (pcs[x].type != PIECE_NODE) continue;
    unsigned char *base = stage_take(ctx, (size_t)p->f * f->nb);
    unsigned char *pr[256];
    for (int j = 0; j < p->f; j++) pr[j] = base + (size_t)j * f->nb;
    fuze__code_delta_encode(&ctx->codes[b], i, pcs[x].delta, f->nb, pr);
    prod[x] = base;
  }
  return FUZE_SUCCESS;
}

static int flush_hosts(fuze_fobj *f) {
  if (f->excl) { /* every operation's unlock already completed it */
    f->pending = 0;
    return FUZE_SUCCESS;
  }
  for (int j = 0; j < f->ctx->plan.f; j++) {
    int rc = fuze__win_flush_rank(&f->ctx->net, f->win, host_of(f, j));
    if (rc) return rc;
  }
  f->pending = 0;
  return FUZE_SUCCESS;
}

/* Send one piece to backup j. Key and header deltas are copied to the stage:
 * the caller's buffers may not live until the flush. put: key and header
 * pieces carry the replica's new contents (stage_copies) and go by MPI_Put. */
static int send_piece(fuze_fobj *f, const piece *pc, const unsigned char *prod, int j, int put) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank], host = host_of(f, j);
  size_t len = 0, off = piece_off(f, pc, b, i, &len);
  const unsigned char *src = pc->type == PIECE_NODE ? prod + (size_t)j * f->nb : pc->delta;
  size_t disp = region_off(f, host, b, j, f->cap) + off;
  f->pending = 1;
  if (!put || pc->type == PIECE_NODE) return fuze__win_xor(&ctx->net, f->win, src, len, host, disp);
  return fuze__win_put(&ctx->net, f->win, src, len, host, disp);
}

/* Key and header pieces into the stage: their deltas, or with put the
 * replica's contents after the operation (the primary's state when the
 * operation is sent: header (n, seq), the key of slot s, zeros from slot n
 * on). */
static int stage_copies(fuze_fobj *f, piece *pcs, int np, int put) {
  for (int x = 0; x < np; x++) {
    if (pcs[x].type == PIECE_NODE) continue;
    size_t len = pcs[x].type == PIECE_HDR ? 16 : f->kb;
    unsigned char *c = stage_take(f->ctx, len);
    if (!put) {
      memcpy(c, pcs[x].delta, len);
    } else if (pcs[x].type == PIECE_HDR) {
      uint64_t h[2] = {(uint64_t)f->n, f->seq};
      memcpy(c, h, 16);
    } else if (pcs[x].s < f->n) {
      memcpy(c, f->keys + pcs[x].s * f->kb, len);
    } else {
      memset(c, 0, len);
    }
    pcs[x].delta = c;
  }
  return FUZE_SUCCESS;
}

/* Pieces -> products -> backup j (all backups when only_j < 0). */
static int send_pieces(fuze_fobj *f, piece *pcs, int np, int only_j, int inject) {
  fuze_ctx *ctx = f->ctx;
  unsigned char *prod[8] = {0};
  size_t need = 0;
  for (int x = 0; x < np; x++)
    need += pcs[x].type == PIECE_NODE ? (size_t)ctx->plan.f * f->nb : pcs[x].type == PIECE_KEY ? f->kb : 16;
  int rc = stage_reserve(ctx, need);
  if (rc) return CTX_ERR(ctx, rc, "'%s': cannot stage an operation of %zu bytes", f->name, need);
  /* Index replicas (keys, header) have a single writer, their primary, and
   * with sync=op every earlier operation of this structure is complete at
   * the backups when this one is sent (flushed, or queued and then this one
   * is queued too). So an operation's key and header pieces can be plain
   * MPI_Put of the new contents: unlike MPI_Accumulate they take no
   * per-target accumulate lock in Open MPI (osc/sm: a memcpy; osc/rdma: one
   * RDMA write instead of lock, get, put, unlock). Only the node deltas,
   * which all members of a block add into the same fused nodes, stay
   * accumulates. Not for queued, republished or batched pieces (several
   * pieces to one replica location may be in flight there) nor for
   * lock=exclusive (the naive design kept as it was). */
  int put = inject && !ctx->cfg.sync_batch && !f->excl;
  rc = stage_copies(f, pcs, np, put);
  if (!rc) rc = stage_products(f, pcs, np, prod);
  int nf = ctx->plan.f;
  for (int t = 0; t < nf && !rc; t++) {
    /* Theorem 4 test knob: backups see pieces (and ops) in different orders. */
    int j = ctx->debug_reorder ? nf - 1 - t : t;
    if (only_j >= 0 && j != only_j) continue;
    /* The naive design, for the Theorem 3 benchmark: the whole window of a
     * backup is locked exclusively for each operation. */
    if (f->excl) rc = fuze__win_lock(&ctx->net, f->win, host_of(f, j));
    for (int y = 0; y < np && !rc; y++) {
      int x = ctx->debug_reorder && (j & 1) ? np - 1 - y : y;
      rc = send_piece(f, &pcs[x], prod[x], j, put);
    }
    if (f->excl) {
      int urc = fuze__win_unlock(&ctx->net, f->win, host_of(f, j));
      if (!rc) rc = urc;
    }
    if (!rc && inject && ctx->op_inject_hosts == t + 1) {
      /* Fault injection: crash between the backups of one operation. */
      flush_hosts(f);
      fuze__hook(ctx, FUZE_HOOK_OP_HOSTS, t + 1);
      return CTX_ERR(ctx, FUZE_ERR_STATE, "'%s': rank %d wiped by fault injection during an "
                     "operation", f->name, ctx->rank);
    }
  }
  return rc;
}

/* ---- sync=batch: coalescing ---- */

/* With sync=batch an operation needs to reach its backups only by the next
 * flush, and every piece is an XOR delta, so the pieces of many operations
 * compose: a batched operation only XORs its raw value deltas and key deltas
 * into per-slot entries of its structure's coalescing buffer, and its header
 * delta into one 16-byte delta. The flush sorts the touched slots, encodes
 * all their value deltas with one delta_encode call (the products are linear
 * in the delta) and sends, per backup, one accumulate per run of consecutive
 * slots (at most COAL_ACC node bytes) for the nodes, one per run for the keys
 * and one for the header. Every backup ends exactly where the piece-by-piece
 * path leaves it; a push or put loop becomes a few large accumulates instead
 * of 2-3 small ones per operation and backup. Measured in docs/benchmarks.md
 * (Optimisations).
 *
 * Crash semantics are unchanged: a wipe (fuze__fobjs_wipe) flushes what was
 * coalesced, as it delivers what was issued; an operation armed with a crash
 * between its backups (fuze_inject_op) first flushes the buffer and then goes
 * piece by piece; lock=exclusive keeps its per-operation path. (A real crash
 * with sync=batch loses the operations since the last flush, as it could
 * lose any unflushed accumulate before: batch is for recovery=rollback.)
 *
 * The buffer is a field of the structure (fuze_fobj.coal), created on the
 * first batched operation and freed with the structure or by a wipe, so
 * contexts in different threads share nothing. */
#define COAL_ACC (64u << 10) /* node bytes per accumulate of a flush */

struct coal_ord { size_t slot, e; };

typedef struct fuze_coal {
  size_t n, max;         /* entries used, entries before a flush */
  size_t esz;            /* entry bytes: nb value delta, then kb key delta */
  size_t *slot;          /* entry -> slot */
  unsigned char *delta;  /* max entries of esz bytes */
  int32_t *hash;         /* slot -> entry, open addressing, -1 empty */
  size_t hmask;
  struct coal_ord *ord;  /* flush: entries in slot order */
  unsigned char hdr[16]; /* header delta */
  int any;               /* operations coalesced since the last flush */
} coal;

static void coal_free(fuze_fobj *f) {
  coal *c = f->coal;
  f->coal = NULL;
  if (!c) return;
  free(c->slot);
  free(c->delta);
  free(c->hash);
  free(c->ord);
  free(c);
}

/* The structure's buffer, created on first use: as many entries as one
 * flush can gather into FUZE_STAGE bytes of stage (value deltas, f products
 * of them, key deltas), at least one. */
static coal *coal_get(fuze_fobj *f) {
  if (f->coal) return f->coal;
  size_t per = f->nb * (1 + (size_t)f->ctx->plan.f) + f->kb, max = per ? FUZE_STAGE / per : 1, hs = 4;
  if (max < 2) max = 2; /* an operation touches up to 2 slots */
  while (hs < 2 * max) hs <<= 1;
  coal *c = calloc(1, sizeof *c);
  if (c) {
    c->max = max;
    c->esz = f->nb + f->kb;
    c->hmask = hs - 1;
    c->slot = malloc(max * sizeof *c->slot);
    c->delta = malloc(max * (c->esz ? c->esz : 1));
    c->hash = malloc(hs * sizeof *c->hash);
    c->ord = malloc(max * sizeof *c->ord);
  }
  f->coal = c;
  if (c && c->slot && c->delta && c->hash && c->ord) {
    memset(c->hash, 0xff, hs * sizeof *c->hash);
    return c;
  }
  coal_free(f); /* a partly allocated buffer */
  return NULL;
}

/* Entry of slot s, created zeroed; the caller made room for it. */
static unsigned char *coal_entry(coal *c, size_t s) {
  size_t h = (size_t)(((uint64_t)s * 0x9E3779B97F4A7C15ULL) >> 17) & c->hmask;
  for (;; h = (h + 1) & c->hmask) {
    int32_t e = c->hash[h];
    if (e < 0) break;
    if (c->slot[e] == s) return c->delta + (size_t)e * c->esz;
  }
  size_t e = c->n++;
  c->hash[h] = (int32_t)e;
  c->slot[e] = s;
  memset(c->delta + e * c->esz, 0, c->esz);
  return c->delta + e * c->esz;
}

static int cmp_ord(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* Send the buffer to every backup and complete it (flush_hosts). The stage
 * must be empty (nothing issued from it is pending). */
static int coal_send(fuze_fobj *f, coal *c) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank], nf = p->f, rc = FUZE_SUCCESS;
  size_t m = c->n, nb = f->nb, kb = f->kb;
  size_t need = m * nb * (1 + (size_t)nf) + m * kb + 16;
  if (need > ctx->stage_size) {
    unsigned char *s = realloc(ctx->stage_buf, need > FUZE_STAGE ? need : FUZE_STAGE);
    if (!s) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "'%s': cannot stage %zu bytes of batched operations", f->name, need);
    ctx->stage_buf = s;
    ctx->stage_size = need > FUZE_STAGE ? need : FUZE_STAGE;
  }
  /* Slot order: pushes and puts come ascending, pops descending. */
  int up = 1, down = 1;
  for (size_t r = 0; r < m; r++) {
    c->ord[r].slot = c->slot[r];
    c->ord[r].e = r;
    if (r) {
      up &= c->slot[r] > c->slot[r - 1];
      down &= c->slot[r] < c->slot[r - 1];
    }
  }
  if (!up && down)
    for (size_t r = 0; r < m / 2; r++) {
      struct coal_ord t = c->ord[r];
      c->ord[r] = c->ord[m - 1 - r];
      c->ord[m - 1 - r] = t;
    }
  else if (!up)
    qsort(c->ord, m, sizeof *c->ord, cmp_ord);
  unsigned char *val = ctx->stage_buf, *prod[256], *key = val + m * nb * (1 + (size_t)nf), *hdr = key + m * kb;
  for (int j = 0; j < nf; j++) prod[j] = val + m * nb * (1 + (size_t)j);
  for (size_t r = 0; r < m; r++) {
    const unsigned char *d = c->delta + c->ord[r].e * c->esz;
    memcpy(val + r * nb, d, nb);
    if (kb) memcpy(key + r * kb, d + nb, kb);
  }
  memcpy(hdr, c->hdr, 16);
  fuze__code_delta_encode(&ctx->codes[b], i, val, m * nb, prod);
  size_t noff = nodes_off(f, b, f->cap), koff = keys_off(f, b) + (size_t)i * f->cap * kb;
  for (int t = 0; t < nf && !rc; t++) {
    int j = ctx->debug_reorder ? nf - 1 - t : t, host = host_of(f, j);
    size_t base = region_off(f, host, b, j, f->cap);
    /* Runs of consecutive slots, cut into accumulates of at most COAL_ACC
     * node bytes: Open MPI holds the host's accumulate lock for a whole
     * accumulate, and the other members of the block wait for it. */
    for (size_t a = 0, e; a < m && !rc; a = e) {
      size_t most = COAL_ACC / (nb ? nb : 1) ? COAL_ACC / (nb ? nb : 1) : 1;
      for (e = a + 1; e < m && e - a < most && c->ord[e].slot == c->ord[e - 1].slot + 1; e++) {}
      f->coal_cuts += e < m && e - a == most && c->ord[e].slot == c->ord[e - 1].slot + 1;
      rc = fuze__win_xor(&ctx->net, f->win, prod[j] + a * nb, (e - a) * nb, host, base + noff + c->ord[a].slot * nb);
      if (!rc && kb) rc = fuze__win_xor(&ctx->net, f->win, key + a * kb, (e - a) * kb, host, base + koff + c->ord[a].slot * kb);
    }
    if (!rc && c->any) rc = fuze__win_xor(&ctx->net, f->win, hdr, 16, host, base + fuze__hdr_off(i));
    f->pending = 1;
  }
  if (!rc) rc = flush_hosts(f);
  c->n = 0;
  c->any = 0;
  memset(c->hdr, 0, 16);
  memset(c->hash, 0xff, (c->hmask + 1) * sizeof *c->hash);
  ctx->stage_pos = 0;
  return rc;
}

static int coal_flush(fuze_fobj *f) {
  coal *c = f->coal;
  return c && (c->n || c->any) ? coal_send(f, c) : FUZE_SUCCESS;
}

/* One batched operation into the buffer (flushed first when full). */
static int coalesce_op(fuze_fobj *f, const piece *pcs, int np) {
  coal *c = coal_get(f);
  if (!c) return CTX_ERR(f->ctx, FUZE_ERR_NOMEM, "'%s': out of memory for batched operations", f->name);
  int rc = FUZE_SUCCESS;
  if (c->n + 2 > c->max && (c->n || c->any)) /* an operation touches at most 2 slots */
    rc = f->ctx->stage_pos ? fuze__fobjs_flush(f->ctx) : coal_send(f, c);
  if (rc) return rc;
  for (int x = 0; x < np; x++) {
    if (pcs[x].type == PIECE_HDR) {
      fuze__xor_into(c->hdr, pcs[x].delta, 16);
      continue;
    }
    unsigned char *d = coal_entry(c, pcs[x].s);
    if (pcs[x].type == PIECE_NODE) fuze__xor_into(d, pcs[x].delta, f->nb);
    else fuze__xor_into(d + f->nb, pcs[x].delta, f->kb);
  }
  c->any = 1;
  return FUZE_SUCCESS;
}

/* ---- the queue of operations waiting for capacity ---- */

static int op_fits(const fuze_fobj *f, const piece *pcs, int np) {
  for (int x = 0; x < np; x++)
    if (pcs[x].type != PIECE_HDR && pcs[x].s >= f->cap) return 0;
  return 1;
}

static size_t piece_len(const fuze_fobj *f, const piece *pc) {
  return pc->type == PIECE_NODE ? f->nb : pc->type == PIECE_KEY ? f->kb : 16;
}

/* Record: np, then per piece (type, slot, delta bytes). */
static int queue_op(fuze_fobj *f, const piece *pcs, int np) {
  size_t need = sizeof(int);
  for (int x = 0; x < np; x++) need += sizeof(int) + sizeof(size_t) + piece_len(f, &pcs[x]);
  if (f->qlen + need > f->qcap) {
    size_t cap = f->qcap ? f->qcap : 4096;
    while (cap < f->qlen + need) cap *= 2;
    unsigned char *q = realloc(f->q, cap);
    if (!q) return CTX_ERR(f->ctx, FUZE_ERR_NOMEM, "'%s': out of memory queueing an operation", f->name);
    f->q = q;
    f->qcap = cap;
  }
  unsigned char *p = f->q + f->qlen;
  memcpy(p, &np, sizeof np);
  p += sizeof np;
  for (int x = 0; x < np; x++) {
    memcpy(p, &pcs[x].type, sizeof(int));
    memcpy(p + sizeof(int), &pcs[x].s, sizeof(size_t));
    p += sizeof(int) + sizeof(size_t);
    memcpy(p, pcs[x].delta, piece_len(f, &pcs[x]));
    p += piece_len(f, &pcs[x]);
    if (pcs[x].type != PIECE_HDR && pcs[x].s + 1 > f->qslots) f->qslots = pcs[x].s + 1;
  }
  f->qlen += need;
  return FUZE_SUCCESS;
}

/* Send every queued operation in order (the windows are large enough now). */
static int drain_queue(fuze_fobj *f) {
  size_t off = 0;
  int rc = FUZE_SUCCESS;
  while (off < f->qlen && !rc) {
    int np;
    piece pcs[8];
    memcpy(&np, f->q + off, sizeof np);
    off += sizeof np;
    for (int x = 0; x < np; x++) {
      memcpy(&pcs[x].type, f->q + off, sizeof(int));
      memcpy(&pcs[x].s, f->q + off + sizeof(int), sizeof(size_t));
      off += sizeof(int) + sizeof(size_t);
      pcs[x].delta = f->q + off;
      off += piece_len(f, &pcs[x]);
    }
    rc = send_pieces(f, pcs, np, -1, 0);
  }
  if (!rc) rc = fuze__fobjs_flush(f->ctx);
  f->qlen = 0;
  f->qslots = 0;
  return rc;
}

/* The data path of one operation. With sync=op it is complete (flushed at
 * every backup) when this returns, unless it had to wait for capacity. */
static int send_op(fuze_fobj *f, piece *pcs, int np) {
  fuze_ctx *ctx = f->ctx;
  if (ctx->op_inject_hosts == 0) {
    fuze__hook(ctx, FUZE_HOOK_OP_HOSTS, 0);
    return CTX_ERR(ctx, FUZE_ERR_STATE, "'%s': rank %d wiped by fault injection before an "
                   "operation", f->name, ctx->rank);
  }
  f->ops++;
  if (f->qlen || !op_fits(f, pcs, np)) {
    f->deferred_ops++;
    return queue_op(f, pcs, np);
  }
  if (ctx->cfg.sync_batch && !f->excl) {
    if (ctx->op_inject_hosts < 0) return coalesce_op(f, pcs, np);
    /* Armed crash between the backups of this operation: what was
     * coalesced completes first, this operation goes piece by piece. */
    int rc = fuze__fobjs_flush(ctx);
    if (rc) return rc;
  }
  int rc = send_pieces(f, pcs, np, -1, 1);
  if (ctx->lost) return rc;
  if (!rc && !ctx->cfg.sync_batch) {
    rc = flush_hosts(f);
    ctx->stage_pos = 0; /* sync=op: nothing else of this context is pending */
  }
  return rc;
}

int fuze__fobjs_flush(fuze_ctx *ctx) {
  int rc = FUZE_SUCCESS;
  for (int x = 0; x < ctx->nfobjs && !rc; x++)
    if (ctx->fobjs[x]->pending) rc = flush_hosts(ctx->fobjs[x]);
  ctx->stage_pos = 0;
  /* Then the coalesced operations (sync=batch), through the empty stage. */
  for (int x = 0; x < ctx->nfobjs && !rc; x++) rc = coal_flush(ctx->fobjs[x]);
  return rc;
}

/* ---- primary side: slots, hash index, undo log ---- */

static uint64_t key_hash(const unsigned char *k, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 1099511628211ULL;
  return h ^ (h >> 29);
}

/* Position of key in the table, or of the first free entry for it. */
static size_t table_pos(const fuze_fobj *f, const void *key, int *found) {
  size_t mask = f->tsize - 1, pos = (size_t)key_hash(key, f->kb) & mask, tomb = SIZE_MAX;
  for (size_t probe = 0; probe < f->tsize; probe++, pos = (pos + 1) & mask) {
    int64_t e = f->table[pos];
    if (e == -1) break;
    if (e == -2) {
      if (tomb == SIZE_MAX) tomb = pos;
    } else if (!memcmp(f->keys + (size_t)e * f->kb, key, f->kb)) {
      *found = 1;
      return pos;
    }
  }
  *found = 0;
  return tomb != SIZE_MAX ? tomb : pos;
}

int64_t fuze__map_find(const fuze_fobj *f, const void *key) {
  if (!f->tsize) return -1;
  int found;
  size_t pos = table_pos(f, key, &found);
  return found ? f->table[pos] : -1;
}

static int table_rebuild(fuze_fobj *f, size_t want) {
  size_t size = 16;
  while (size < 2 * want + 2) size <<= 1;
  int64_t *t = malloc(sizeof *t * size);
  if (!t) return FUZE_ERR_NOMEM;
  for (size_t x = 0; x < size; x++) t[x] = -1;
  free(f->table);
  f->table = t;
  f->tsize = size;
  f->tused = 0;
  for (size_t s = 0; s < f->n; s++) {
    int found;
    size_t pos = table_pos(f, f->keys + s * f->kb, &found);
    f->table[pos] = (int64_t)s;
    f->tused++;
  }
  return FUZE_SUCCESS;
}

static void table_set(fuze_fobj *f, const void *key, int64_t slot) {
  int found;
  size_t pos = table_pos(f, key, &found);
  if (!found && slot >= 0) f->tused++;
  f->table[pos] = slot;
}

static int ensure_slots(fuze_fobj *f, size_t n) {
  if (n <= f->vcap) return FUZE_SUCCESS;
  size_t cap = f->vcap ? f->vcap : 16;
  while (cap < n) cap *= 2;
  unsigned char *v = realloc(f->vals, cap * f->nb);
  if (!v) return FUZE_ERR_NOMEM;
  f->vals = v;
  if (f->kb) {
    unsigned char *k = realloc(f->keys, cap * f->kb);
    if (!k) return FUZE_ERR_NOMEM;
    f->keys = k;
  }
  f->vcap = cap;
  return FUZE_SUCCESS;
}

enum { LOG_NONE = 0, LOG_APPEND, LOG_SET, LOG_REMOVE };

typedef struct log_rec {
  int kind;
  size_t s;
} log_rec;

/* Undo records (rollback recovery only): the kind and slot, then the old key
 * and value where the undo needs them. */
static int log_push(fuze_fobj *f, int kind, size_t s, const void *key, const void *val) {
  if (f->ctx->cfg.recovery != FUZE_RECOVERY_ROLLBACK) return FUZE_SUCCESS;
  size_t need = sizeof(log_rec) + f->kb + f->nb;
  if (f->loglen + need > f->logcap) {
    size_t cap = f->logcap ? f->logcap * 2 : 4096;
    while (cap < f->loglen + need) cap *= 2;
    unsigned char *l = realloc(f->log, cap);
    if (!l) return FUZE_ERR_NOMEM;
    f->log = l;
    f->logcap = cap;
  }
  log_rec r = {kind, s};
  unsigned char *p = f->log + f->loglen;
  memcpy(p, &r, sizeof r);
  if (f->kb && key) memcpy(p + sizeof r, key, f->kb);
  else if (f->kb) memset(p + sizeof r, 0, f->kb);
  memcpy(p + sizeof r + f->kb, val, f->nb);
  f->loglen += need;
  return FUZE_SUCCESS;
}

/* Header piece: (count, seq) old xor new. */
static void hdr_delta(unsigned char *d, size_t n0, size_t n1, uint64_t s0, uint64_t s1) {
  uint64_t v[2] = {(uint64_t)n0 ^ (uint64_t)n1, s0 ^ s1};
  memcpy(d, v, 16);
}

/* Overwrite slot s (< n) with key/val: one value delta, one key delta. */
int fuze__fobj_set(fuze_fobj *f, size_t s, const void *key, const void *val, int log_kind) {
  unsigned char *dv = f->scratch, *dk = f->scratch + f->nb, dh[16];
  unsigned char *old = f->vals + s * f->nb;
  if (log_kind && log_push(f, LOG_SET, s, f->kb ? f->keys + s * f->kb : NULL, old))
    return CTX_ERR(f->ctx, FUZE_ERR_NOMEM, "'%s': out of memory", f->name);
  fuze__xor3(dv, old, val, f->nb);
  piece pcs[3];
  int np = 0;
  pcs[np++] = (piece){PIECE_NODE, s, dv};
  if (f->kb && key) {
    fuze__xor3(dk, f->keys + s * f->kb, key, f->kb);
    memcpy(f->keys + s * f->kb, key, f->kb);
    pcs[np++] = (piece){PIECE_KEY, s, dk};
  }
  memcpy(old, val, f->nb);
  hdr_delta(dh, f->n, f->n, f->seq, f->seq + 1);
  f->seq++;
  pcs[np++] = (piece){PIECE_HDR, 0, dh};
  return send_op(f, pcs, np);
}

/* Take slot n (Fig. 4 insert / push). */
int fuze__fobj_append(fuze_fobj *f, const void *key, const void *val, int log_kind) {
  if (ensure_slots(f, f->n + 1)) return CTX_ERR(f->ctx, FUZE_ERR_NOMEM, "'%s': out of memory", f->name);
  if (f->kb && f->tused + 1 > f->tsize / 2 && table_rebuild(f, f->n + 1))
    return CTX_ERR(f->ctx, FUZE_ERR_NOMEM, "'%s': out of memory", f->name);
  if (log_kind && log_push(f, LOG_APPEND, f->n, key, val))
    return CTX_ERR(f->ctx, FUZE_ERR_NOMEM, "'%s': out of memory", f->name);
  size_t s = f->n;
  unsigned char dh[16];
  memcpy(f->vals + s * f->nb, val, f->nb);
  piece pcs[3];
  int np = 0;
  pcs[np++] = (piece){PIECE_NODE, s, f->vals + s * f->nb};
  if (f->kb) {
    memcpy(f->keys + s * f->kb, key, f->kb);
    pcs[np++] = (piece){PIECE_KEY, s, f->keys + s * f->kb};
  }
  hdr_delta(dh, f->n, f->n + 1, f->seq, f->seq + 1);
  f->n++;
  f->seq++;
  if (f->kb) table_set(f, key, (int64_t)s);
  pcs[np++] = (piece){PIECE_HDR, 0, dh};
  return send_op(f, pcs, np);
}

/* Fig. 5: the last slot moves into the hole s: two value deltas, two key
 * deltas (the index move) and the header. */
int fuze__fobj_remove_slot(fuze_fobj *f, size_t s, int log_kind) {
  size_t last = f->n - 1;
  unsigned char *dv = f->scratch, *dk = f->scratch + f->nb, dh[16];
  unsigned char *hole = f->vals + s * f->nb, *tail = f->vals + last * f->nb;
  if (log_kind && log_push(f, LOG_REMOVE, s, f->kb ? f->keys + s * f->kb : NULL, hole))
    return CTX_ERR(f->ctx, FUZE_ERR_NOMEM, "'%s': out of memory", f->name);
  piece pcs[5];
  int np = 0;
  if (f->kb) table_set(f, f->keys + s * f->kb, -2);
  if (s != last) {
    fuze__xor3(dv, hole, tail, f->nb);
    pcs[np++] = (piece){PIECE_NODE, s, dv};
    memcpy(hole, tail, f->nb);
    if (f->kb) {
      fuze__xor3(dk, f->keys + s * f->kb, f->keys + last * f->kb, f->kb);
      memcpy(f->keys + s * f->kb, f->keys + last * f->kb, f->kb);
      pcs[np++] = (piece){PIECE_KEY, s, dk};
      table_set(f, f->keys + s * f->kb, (int64_t)s);
    }
  }
  /* The tail slot's contribution leaves the fused node: delta = its value. */
  pcs[np++] = (piece){PIECE_NODE, last, tail};
  if (f->kb) pcs[np++] = (piece){PIECE_KEY, last, f->keys + last * f->kb};
  hdr_delta(dh, f->n, f->n - 1, f->seq, f->seq + 1);
  f->seq++;
  pcs[np++] = (piece){PIECE_HDR, 0, dh};
  /* The primary's slot `last` is free (its bytes stay in vals until the
   * pieces are staged: nothing reallocates vals meanwhile). send_op sees the
   * state after the operation. */
  f->n--;
  return send_op(f, pcs, np);
}

/* ---- creation, growth, epochs ---- */

static int make_window(fuze_fobj *f, size_t cap) {
  fuze_hosted *h = NULL;
  int nh = 0;
  size_t size = 0;
  int rc = fuze__agree(&f->ctx->net, compute_hosted(f, cap, &h, &nh, &size));
  int shm = 0;
  if (!rc) rc = fuze__win_create_fused(&f->ctx->net, size, &f->win, &f->winbase, !f->excl, &shm);
  if (rc) {
    free(h);
    return rc;
  }
  free(f->hosted);
  f->hosted = h;
  f->nhosted = nh;
  f->winsize = size;
  f->cap = cap;
  return FUZE_SUCCESS;
}

int fuze__fobj_create(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                      size_t alloc, size_t cap, fuze_fobj **out) {
  fuze_fobj **grown = realloc(ctx->fobjs, sizeof *grown * (size_t)(ctx->nfobjs + 1));
  fuze_fobj *f = calloc(1, alloc);
  unsigned char *scratch = malloc(nb + kb + 64);
  if (grown) ctx->fobjs = grown;
  int rc = grown && f && scratch ? FUZE_SUCCESS : CTX_ERR(ctx, FUZE_ERR_NOMEM, "'%s': out of memory", name);
  if ((rc = fuze__agree(&ctx->net, rc))) {
    free(f);
    free(scratch);
    return rc;
  }
  f->ctx = ctx;
  snprintf(f->name, sizeof f->name, "%s", name);
  f->kind = kind;
  f->kb = kb;
  f->nb = nb;
  f->scratch = scratch;
  f->excl = ctx->cfg.lock_exclusive;
  f->win = MPI_WIN_NULL;
  if ((rc = make_window(f, cap ? cap : ctx->cfg.capacity))) {
    fuze__fobj_free(f);
    return rc;
  }
  ctx->fobjs[ctx->nfobjs++] = f;
  *out = f;
  return FUZE_SUCCESS;
}

void fuze__fobj_free(fuze_fobj *f) {
  if (!f) return;
  coal_free(f);
  fuze__win_free(&f->win, !f->excl);
  free(f->keys);
  free(f->vals);
  free(f->table);
  free(f->log);
  free(f->q);
  free(f->scratch);
  free(f->hosted);
  free(f);
}

/* Copy one region from the old layout (cap0) to the new one (cap1). */
static void copy_region(const fuze_fobj *f, int b, const unsigned char *src, size_t cap0,
                        unsigned char *dst, size_t cap1) {
  int k = block_k(f->ctx, b);
  memcpy(dst, src, fuze__hdr_off(k));
  for (int i = 0; f->kb && i < k; i++)
    memcpy(dst + keys_off(f, b) + (size_t)i * cap1 * f->kb,
           src + keys_off(f, b) + (size_t)i * cap0 * f->kb, cap0 * f->kb);
  memcpy(dst + nodes_off(f, b, cap1), src + nodes_off(f, b, cap0), cap0 * f->nb);
}

/* Republish this primary's slots [from, to) to backup only_j (or all). */
static int republish(fuze_fobj *f, size_t from, size_t to, int only_j) {
  int rc = FUZE_SUCCESS;
  for (size_t s = from; s < to && !rc; s++) {
    piece pcs[2] = {{PIECE_NODE, s, f->vals + s * f->nb}, {PIECE_KEY, s, f->keys + s * f->kb}};
    rc = send_pieces(f, pcs, f->kb ? 2 : 1, only_j, 0);
  }
  if (!rc) rc = fuze__fobjs_flush(f->ctx);
  return rc;
}

/* Collective: new windows at cap1, old contents copied. */
static int regrow(fuze_fobj *f, size_t cap1) {
  fuze_ctx *ctx = f->ctx;
  MPI_Win old = f->win;
  unsigned char *obase = f->winbase;
  fuze_hosted *oh = f->hosted;
  size_t cap0 = f->cap;
  int onh = f->nhosted;
  f->hosted = NULL;
  int rc = make_window(f, cap1);
  if (rc) {
    f->win = old;
    f->winbase = obase;
    f->hosted = oh;
    return rc;
  }
  fsync_win(f);
  for (int h = 0; h < onh; h++)
    for (int half = 0; half < 2; half++)
      copy_region(f, oh[h].block, obase + oh[h].off + (size_t)half * oh[h].fused, cap0,
                  f->winbase + f->hosted[h].off + (size_t)half * f->hosted[h].fused, cap1);
  fsync_win(f);
  free(oh);
  fuze__win_free(&old, !f->excl);
  /* Nobody may accumulate into a region before its old contents are in. */
  MPI_Barrier(ctx->net.comm);
  return FUZE_SUCCESS;
}

/* Collective: every window grows to twice the largest need (slots held or
 * touched by queued operations) when that exceeds its capacity, then every
 * queue is sent. */
int fuze__fobjs_grow(fuze_ctx *ctx) {
  int n = ctx->nfobjs, rc = FUZE_SUCCESS;
  if (!n) return FUZE_SUCCESS;
  uint64_t *need = calloc((size_t)n * 2, sizeof *need);
  if (!need) return fuze__agree(&ctx->net, CTX_ERR(ctx, FUZE_ERR_NOMEM, "grow: out of memory"));
  for (int x = 0; x < n && !ctx->lost; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    need[x] = f->n > f->qslots ? f->n : f->qslots;
  }
  MPI_Allreduce(need, need + n, n, MPI_UINT64_T, MPI_MAX, ctx->net.comm);
  for (int x = 0; x < n && !rc; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    size_t cap = f->cap;
    if (need[n + x] > cap)
      while (cap < 2 * need[n + x]) cap *= 2;
    if (cap != f->cap) rc = regrow(f, cap);
  }
  free(need);
  for (int x = 0; x < n && !rc && !ctx->lost; x++)
    if (ctx->fobjs[x]->qlen) rc = drain_queue(ctx->fobjs[x]);
  return fuze__agree(&ctx->net, rc);
}

/* Restart (collective, every rank): this member's state as of the persisted
 * epoch (n entries, seq operations), published to the backups and committed
 * at once, so that a wipe before the next checkpoint rolls back to it. The
 * window was created at the stored capacity, so every slot fits. */
int fuze__fobj_restore(fuze_fobj *f, size_t n, uint64_t seq, const unsigned char *keys,
                       const unsigned char *vals) {
  fuze_ctx *ctx = f->ctx;
  int rc = FUZE_SUCCESS;
  if (n > f->cap)
    rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "'%s': the persisted epoch holds %zu entries on rank %d "
                 "but its capacity is %zu", f->name, n, ctx->rank, f->cap);
  else if (n && (ensure_slots(f, n) || (f->kb && table_rebuild(f, n))))
    rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "'%s': out of memory", f->name);
  if (!rc && n) {
    memcpy(f->vals, vals, n * f->nb);
    if (f->kb) {
      memcpy(f->keys, keys, n * f->kb);
      for (size_t s = 0; s < n; s++) table_set(f, f->keys + s * f->kb, (int64_t)s);
    }
    f->n = n;
  }
  if (!rc && !ctx->is_spare && (n || seq)) {
    f->seq = seq;
    unsigned char dh[16];
    hdr_delta(dh, 0, n, 0, seq);
    piece hdr = {PIECE_HDR, 0, dh};
    rc = republish(f, 0, n, -1);
    if (!rc) rc = send_pieces(f, &hdr, 1, -1, 0);
    if (!rc) rc = fuze__fobjs_flush(ctx);
  }
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  MPI_Barrier(ctx->net.comm);
  fsync_win(f);
  for (int h = 0; h < f->nhosted; h++) {
    unsigned char *w = f->winbase + f->hosted[h].off;
    memcpy(w + f->hosted[h].fused, w, f->hosted[h].fused);
  }
  fsync_win(f);
  MPI_Barrier(ctx->net.comm);
  return FUZE_SUCCESS;
}

/* code=byzantine (byzantine.c): this primary's state becomes (n, seq, keys,
 * vals), a corrected copy of its committed state; local, the backups are not
 * touched (they already hold that state). The hash index is rebuilt. */
int fuze__fobj_restore_state(fuze_fobj *f, size_t n, uint64_t seq, const unsigned char *keys,
                             const unsigned char *vals) {
  if (ensure_slots(f, n)) return FUZE_ERR_NOMEM;
  if (n && vals != f->vals) memcpy(f->vals, vals, n * f->nb);
  if (n && f->kb && keys != f->keys) memcpy(f->keys, keys, n * f->kb);
  f->n = n;
  f->seq = seq;
  if (f->kb && table_rebuild(f, n)) return FUZE_ERR_NOMEM;
  return FUZE_SUCCESS;
}

/* Rollback: queued operations are undone with the rest; drop them. */
void fuze__fobjs_drop_queues(fuze_ctx *ctx) {
  for (int x = 0; x < ctx->nfobjs; x++) {
    ctx->fobjs[x]->qlen = 0;
    ctx->fobjs[x]->qslots = 0;
  }
}

static void copy_halves(fuze_ctx *ctx, int to_committed, const unsigned char *changed) {
  if (ctx->lost) return;
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    fsync_win(f);
    for (int h = 0; h < f->nhosted; h++) {
      if (changed && !(changed[f->hosted[h].block] & 4)) continue;
      unsigned char *w = f->winbase + f->hosted[h].off, *c = w + f->hosted[h].fused;
      if (to_committed) memcpy(c, w, f->hosted[h].fused);
      else memcpy(w, c, f->hosted[h].fused);
    }
    fsync_win(f);
  }
}

void fuze__fobjs_promote(fuze_ctx *ctx, const unsigned char *changed) { copy_halves(ctx, 1, changed); }
void fuze__fobjs_reset_working(fuze_ctx *ctx) { copy_halves(ctx, 0, NULL); }

uint64_t fuze__fobjs_ops(const fuze_ctx *ctx) {
  uint64_t n = 0;
  for (int x = 0; x < ctx->nfobjs; x++) n += ctx->fobjs[x]->ops;
  return n;
}

void fuze__fobjs_commit_logs(fuze_ctx *ctx) {
  for (int x = 0; x < ctx->nfobjs; x++) ctx->fobjs[x]->loglen = 0;
}

/* Undo one remove: the element now in the hole goes back to the end and the
 * removed pair returns to its slot (the exact pre-remove slot order). */
static void undo_remove(fuze_fobj *f, size_t s, const unsigned char *key, const unsigned char *val) {
  size_t end = f->n;
  if (s < end) {
    memcpy(f->vals + end * f->nb, f->vals + s * f->nb, f->nb);
    if (f->kb) {
      memcpy(f->keys + end * f->kb, f->keys + s * f->kb, f->kb);
      table_set(f, f->keys + end * f->kb, (int64_t)end);
    }
  }
  memcpy(f->vals + s * f->nb, val, f->nb);
  if (f->kb) {
    memcpy(f->keys + s * f->kb, key, f->kb);
    table_set(f, key, (int64_t)s);
  }
  f->n++;
}

static void undo_one(fuze_fobj *f, const unsigned char *rec) {
  log_rec r;
  memcpy(&r, rec, sizeof r);
  const unsigned char *key = rec + sizeof r, *val = key + f->kb;
  if (r.kind == LOG_APPEND) {
    f->n--;
    if (f->kb) table_set(f, f->keys + f->n * f->kb, -2);
  } else if (r.kind == LOG_SET) {
    memcpy(f->vals + r.s * f->nb, val, f->nb);
  } else {
    undo_remove(f, r.s, key, val);
  }
  f->seq--;
}

/* Rollback: every operation since the last checkpoint, newest first. */
void fuze__fobjs_undo(fuze_ctx *ctx) {
  if (ctx->lost) return;
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    size_t rec = sizeof(log_rec) + f->kb + f->nb;
    for (size_t off = f->loglen; off >= rec; off -= rec) undo_one(f, f->log + off - rec);
    f->loglen = 0;
  }
}

void fuze__fobjs_wipe(fuze_ctx *ctx) {
  /* What was already issued reaches the backups (in-flight messages of a
   * crashed process are delivered or not as a whole per operation and
   * backup; delivering them keeps the emulation deterministic). Coalesced
   * operations (sync=batch) count as issued. */
  fuze__fobjs_flush(ctx);
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    coal_free(f); /* whatever a failed flush left */
    if (f->winbase) memset(f->winbase, 0xA5, f->winsize);
    free(f->keys);
    free(f->vals);
    free(f->table);
    free(f->log);
    f->keys = f->vals = f->log = NULL;
    f->table = NULL;
    free(f->q);
    f->q = NULL;
    f->qlen = f->qcap = f->qslots = 0;
    f->n = f->vcap = f->tsize = f->tused = f->loglen = f->logcap = 0;
    f->seq = 0;
    f->pending = 0;
  }
  ctx->stage_pos = 0;
}

/* ---- recovery ---- */

typedef struct fix {
  fuze_fobj *f;
  int b, k, m, me, half; /* half: 0 working (forward), 1 committed (rollback) */
  unsigned char erased[512];
  uint64_t *hdrs;        /* per block-comm member: valid, then (count, seq) x k */
  int ref;               /* block-comm rank of the header everyone trusts */
} fix;

static unsigned char *my_region(const fix *x) {
  fuze_fobj *f = x->f;
  for (int h = 0; h < f->nhosted; h++)
    if (f->hosted[h].block == x->b && f->hosted[h].j == x->me - x->k)
      return f->winbase + f->hosted[h].off + (size_t)x->half * f->hosted[h].fused;
  return NULL;
}

static uint64_t *hdr_of(const fix *x, int member) { return x->hdrs + (size_t)member * (1 + 2 * (size_t)x->k); }

static int gather_headers(fix *x) {
  size_t w = 1 + 2 * (size_t)x->k;
  uint64_t *mine = calloc(w, sizeof *mine);
  x->hdrs = calloc(w * (size_t)(x->k + x->m), sizeof *x->hdrs);
  if (!mine || !x->hdrs) {
    free(mine);
    return FUZE_ERR_NOMEM;
  }
  unsigned char *r = x->me >= x->k && !x->erased[x->me] ? my_region(x) : NULL;
  if (r) {
    mine[0] = 1;
    for (int i = 0; i < x->k; i++) memcpy(mine + 1 + 2 * i, r + fuze__hdr_off(i), 16);
  }
  MPI_Allgather(mine, (int)w, MPI_UINT64_T, x->hdrs, (int)w, MPI_UINT64_T, x->f->ctx->block_comm[x->b]);
  free(mine);
  return FUZE_SUCCESS;
}

/* -1, 0, 1: compare two hosts' seq of the lost primaries. */
static int cmp_version(const fix *x, int h1, int h2) {
  for (int i = 0; i < x->k; i++) {
    if (!x->erased[i]) continue;
    uint64_t a = hdr_of(x, h1)[2 + 2 * i], b = hdr_of(x, h2)[2 + 2 * i];
    if (a != b) return a < b ? -1 : 1;
  }
  return 0;
}

/* An operation of a lost primary may have reached some backups and not
 * others. Decode from the backups holding its oldest version (the last
 * completed operation); the others are re-encoded like lost ones. Only if too
 * few old ones survive, the newest version is used. */
static int choose_version(fix *x) {
  for (int pass = 0; pass < 2; pass++) {
    int best = -1, nerased = 0;
    for (int h = x->k; h < x->k + x->m; h++) {
      if (!hdr_of(x, h)[0]) continue;
      int c = best < 0 ? 0 : cmp_version(x, h, best);
      if (best < 0 || (pass == 0 ? c < 0 : c > 0)) best = h;
    }
    if (best < 0) {
      /* No surviving backup: only possible when no primary needs decoding. */
      for (int i = 0; i < x->k; i++)
        if (x->erased[i]) return -1;
      x->ref = -1;
      return 0;
    }
    for (int h = 0; h < x->k + x->m; h++) nerased += x->erased[h] || (h >= x->k && hdr_of(x, h)[0] && cmp_version(x, h, best));
    if (nerased > x->m) continue;
    for (int h = x->k; h < x->k + x->m; h++)
      if (hdr_of(x, h)[0] && cmp_version(x, h, best)) x->erased[h] = 1;
    x->ref = best;
    return 0;
  }
  return -1;
}

typedef struct vsink { fuze_fobj *f; } vsink;

static void sink_values(void *arg, size_t off, const unsigned char *res, size_t n) {
  fuze_fobj *f = ((vsink *)arg)->f;
  size_t have = f->n * f->nb;
  if (off >= have) return;
  size_t m = have - off < n ? have - off : n;
  memcpy(f->vals + off, res, m);
  f->ctx->recovered_bytes += m;
}

/* A lost primary takes its count, seq and keys from the trusted header. */
static int restore_index(fix *x, int i) {
  fuze_fobj *f = x->f;
  uint64_t cnt = hdr_of(x, x->ref)[1 + 2 * i], seq = hdr_of(x, x->ref)[2 + 2 * i];
  unsigned char *keys = malloc(cnt * f->kb + 1);
  if (!keys) return FUZE_ERR_NOMEM;
  if (x->me == x->ref && cnt && f->kb) memcpy(keys, my_region(x) + keys_off(f, x->b) + (size_t)i * f->cap * f->kb, cnt * f->kb);
  if (f->kb) MPI_Bcast(keys, (int)(cnt * f->kb), MPI_BYTE, x->ref, f->ctx->block_comm[x->b]);
  int rc = FUZE_SUCCESS;
  if (x->me == i) {
    rc = ensure_slots(f, cnt);
    if (!rc) {
      f->n = cnt;
      f->seq = seq;
      if (f->kb && cnt) memcpy(f->keys, keys, cnt * f->kb);
      if (cnt) memset(f->vals, 0, cnt * f->nb);
    }
  }
  free(keys);
  return rc;
}

static int decode_values(fix *x, int i, const int *rows, const unsigned char *D) {
  fuze_fobj *f = x->f;
  unsigned char coef[512] = {0};
  for (int s = 0; s < x->k; s++) coef[rows[s]] = D[i * x->k + s];
  size_t maxc = 0;
  for (int q = 0; q < x->k; q++)
    if (hdr_of(x, x->ref)[1 + 2 * q] > maxc) maxc = hdr_of(x, x->ref)[1 + 2 * q];
  const unsigned char *data = NULL;
  size_t dlen = 0;
  if (x->me < x->k) {
    data = f->vals;
    dlen = f->n * f->nb;
  } else if (!x->erased[x->me]) {
    data = my_region(x) + nodes_off(f, x->b, f->cap);
    dlen = f->cap * f->nb;
  }
  vsink v = {f};
  return fuze__reduce_to(&f->ctx->net, f->ctx->block_comm[x->b], x->b, i, coef[x->me], data, dlen, maxc * f->nb, sink_values, &v);
}

/* Lost or stale backup j: zeroed, then every member republishes into it. */
static int reencode_backup(fix *x, int j) {
  fuze_fobj *f = x->f;
  MPI_Comm comm = f->ctx->block_comm[x->b];
  unsigned char *r = x->me == x->k + j ? my_region(x) - (size_t)x->half * fuze__fobj_region(f, x->b) : NULL;
  size_t R = fuze__fobj_region(f, x->b);
  if (r) memset(r, 0, 2 * R);
  MPI_Barrier(comm);
  int rc = FUZE_SUCCESS;
  if (x->me < x->k) {
    unsigned char dh[16];
    hdr_delta(dh, 0, f->n, 0, f->seq);
    piece hp = {PIECE_HDR, 0, dh};
    rc = send_pieces(f, &hp, 1, j, 0);
    if (!rc) rc = republish(f, 0, f->n, j);
  }
  MPI_Barrier(comm);
  if (r) {
    fsync_win(f);
    memcpy(r + R, r, R);
    f->ctx->recovered_bytes += R;
  }
  return rc;
}

static int repair_block(fuze_fobj *f, int b, const int *lost) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  fix x = {.f = f, .b = b, .k = block_k(ctx, b), .m = p->f,
           .half = ctx->cfg.recovery == FUZE_RECOVERY_ROLLBACK ? 1 : 0};
  MPI_Comm_rank(ctx->block_comm[b], &x.me);
  for (int i = 0; i < x.k; i++) x.erased[i] = (unsigned char)lost[p->members[p->block_start[b] + i]];
  for (int j = 0; j < x.m; j++) x.erased[x.k + j] = (unsigned char)lost[p->hosts[b * p->f + j]];
  int rc = gather_headers(&x), rows[256];
  unsigned char D[256 * 256];
  if (!rc && choose_version(&x))
    rc = CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "recovery: unrecoverable: '%s' block %d: the "
                 "surviving backups disagree on a lost member's last operation", f->name, b);
  if (!rc) rc = fuze__code_decode_matrix(&ctx->codes[b], x.erased, rows, D);
  for (int i = 0; i < x.k && !rc; i++) {
    if (!x.erased[i]) continue;
    rc = restore_index(&x, i);
    if (!rc) rc = decode_values(&x, i, rows, D);
    if (!rc && x.me == i && f->kb) rc = table_rebuild(f, f->n);
  }
  for (int j = 0; j < x.m && !rc; j++)
    if (x.erased[x.k + j]) rc = reencode_backup(&x, j);
  free(x.hdrs);
  return rc;
}

int fuze__fobjs_repair(fuze_ctx *ctx, const int *lost) {
  const fuze_plan *p = &ctx->plan;
  int rc = FUZE_SUCCESS;
  for (int o = 0; o < ctx->nfobjs; o++) {
    for (int b = 0; b < p->nblocks && !rc; b++) {
      int any = 0, k = block_k(ctx, b);
      for (int i = 0; i < k; i++) any |= lost[p->members[p->block_start[b] + i]];
      for (int j = 0; j < p->f; j++) any |= lost[p->hosts[b * p->f + j]];
      if (any && ctx->block_comm[b] != MPI_COMM_NULL) rc = repair_block(ctx->fobjs[o], b, lost);
    }
    if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  }
  return FUZE_SUCCESS;
}

/* ---- introspection ---- */

static int node_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

int fuze_fused_info(const fuze_ctx *ctx, const char *name, fuze_fused_stats *st) {
  if (!ctx || !name || !st) return FUZE_ERR(FUZE_ERR_ARG, "fuze_fused_info: NULL argument");
  const fuze_fobj *f = NULL;
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!strcmp(ctx->fobjs[x]->name, name)) f = ctx->fobjs[x];
  if (!f) return FUZE_ERR(FUZE_ERR_NOT_FOUND, "fuze_fused_info: no stack or map named '%s'", name);
  memset(st, 0, sizeof *st);
  fsync_win(f);
  st->regions = f->nhosted;
  st->capacity = f->cap;
  st->ops = f->ops;
  st->deferred_ops = f->deferred_ops;
  for (int h = 0; h < f->nhosted; h++) {
    const unsigned char *w = f->winbase + f->hosted[h].off;
    int k = block_k(ctx, f->hosted[h].block);
    uint64_t live = 0, c;
    for (int i = 0; i < k; i++) {
      memcpy(&c, w + fuze__hdr_off(i), 8);
      if (c > live) live = c;
    }
    st->nodes += live;
    const unsigned char *nodes = w + nodes_off(f, f->hosted[h].block, f->cap);
    for (size_t s = live; s < f->cap; s++) st->stray_nodes += !node_zero(nodes + s * f->nb, f->nb);
  }
  return FUZE_SUCCESS;
}
