/* fsend: the sending path of fused stacks and maps (fsend.h): the stage,
 * pieces to backups, coalescing for sync=batch, the queue of operations that
 * wait for capacity, and the flush.
 *
 * All pieces are XOR deltas, so any number of primaries update the same
 * backup concurrently with MPI_Accumulate(BXOR) under the shared lock_all
 * (or atomic XORs in a shared-memory window, transport.c), and their arrival
 * order does not matter (Theorems 3 and 4).
 *
 * Growth: a region holds `cap` slots, the same on every rank (config
 * `capacity` at creation). An operation that needs a slot >= cap, and every
 * operation of that structure after it, waits in order in a local queue; the
 * next collective call (checkpoint, recovery) grows every window to twice the
 * largest need (fuze__fobjs_grow, fobj.c) and sends the queue. So the backups
 * always hold a prefix of each member's operations (what a forward recovery
 * restores), growth costs amortised O(1) per operation, and nothing ever
 * waits for a host: a host busy computing cannot cause a deadlock. The price:
 * a queued operation is complete only at that next collective call. */
#include "data/fsend.h"

#include "comm/transport.h"
#include "data/threads.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZE_STAGE (1u << 20)

/* ---- the stage ---- */

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

/* ---- pieces to backups ---- */

/* Byte offset of a piece inside a region (the slot fits: see fuze__fobj_send_op). */
static size_t piece_off(const fuze_fobj *f, const fuze_piece *pc, int b, int i, size_t *len) {
  if (pc->type == PIECE_HDR) {
    *len = FUZE_HDR_BYTES;
    return fuze__fobj_hdr_off(i);
  }
  if (pc->type == PIECE_KEY) {
    *len = f->kb;
    return fuze__fobj_keys_off(f, b, i) + pc->s * f->kb;
  }
  *len = f->nb;
  return fuze__fobj_nodes_off(f, b) + pc->s * f->nb;
}

/* Products of every node piece for every backup, staged until the flush. */
static int stage_products(fuze_fobj *f, const fuze_piece *pcs, int np, unsigned char **prod) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank];
  for (int x = 0; x < np; x++) {
    if (pcs[x].type != PIECE_NODE) continue;
    unsigned char *base = stage_take(ctx, (size_t)p->f * f->nb);
    unsigned char *pr[FUZE_GF_MEMBERS];
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
static int send_piece(fuze_fobj *f, const fuze_piece *pc, const unsigned char *prod, int j, int put) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank], host = host_of(f, j);
  size_t len = 0, off = piece_off(f, pc, b, i, &len);
  const unsigned char *src = pc->type == PIECE_NODE ? prod + (size_t)j * f->nb : pc->delta;
  size_t disp = fuze__fobj_region_off(f, host, b, j) + off;
  f->pending = 1;
  if (!put || pc->type == PIECE_NODE) return fuze__win_xor(&ctx->net, f->win, src, len, host, disp);
  return fuze__win_put(&ctx->net, f->win, src, len, host, disp);
}

/* Key and header pieces into the stage: their deltas, or with put the
 * replica's contents after the operation (the primary's state when the
 * operation is sent: header (n, seq), the key of slot s, zeros from slot n
 * on). */
static int stage_copies(fuze_fobj *f, fuze_piece *pcs, int np, int put) {
  for (int x = 0; x < np; x++) {
    if (pcs[x].type == PIECE_NODE) continue;
    size_t len = pcs[x].type == PIECE_HDR ? FUZE_HDR_BYTES : f->kb;
    unsigned char *c = stage_take(f->ctx, len);
    if (!put) {
      memcpy(c, pcs[x].delta, len);
    } else if (pcs[x].type == PIECE_HDR) {
      uint64_t h[2] = {(uint64_t)f->n, f->seq};
      memcpy(c, h, FUZE_HDR_BYTES);
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
static int send_pieces(fuze_fobj *f, fuze_piece *pcs, int np, int only_j, int inject) {
  fuze_ctx *ctx = f->ctx;
  unsigned char *prod[FUZE_OP_PIECES] = {0};
  size_t need = 0;
  for (int x = 0; x < np; x++)
    need += pcs[x].type == PIECE_NODE ? (size_t)ctx->plan.f * f->nb : pcs[x].type == PIECE_KEY ? f->kb : FUZE_HDR_BYTES;
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
      /* Fault injection: crash between the backups of one operation. What
       * was issued is delivered (a failed flush changes nothing here). */
      (void)flush_hosts(f);
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
 * delta into one FUZE_HDR_BYTES delta. The flush sorts the touched slots, encodes
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
 * contexts in different threads share nothing.
 *
 * Across nodes (docs/design.md, "Across nodes"): an operation that finds the
 * buffer full sends it and completes it only locally (MPI_Win_flush_local:
 * the stage can be reused; coal_early counts these), so it does not wait for
 * a round trip through its hosts' scheduling; the next fuze__fobjs_flush
 * (fuze_flush, every collective call, a wipe) completes everything at the
 * hosts with one MPI_Win_flush per host, which is all that sync=batch
 * promises. And every COAL_PROGRESS batched operations a rank that hosts
 * regions of the structure runs MPI's progress engine (fuze__win_progress):
 * where the one-sided path needs the target to call MPI (Open MPI's
 * osc/pt2pt across nodes, MPICH's active messages), a host busy with its
 * own batch would otherwise leave its members' accumulates in its socket
 * buffers until its own next flush, and their local completions would wait
 * for it. FUZE_BATCH_EARLY=0 in the
 * environment (read when a buffer is created) restores the path before
 * this, for before/after measurements with one binary. */
#define COAL_ACC (64u << 10) /* node bytes per accumulate of a flush */
#define COAL_PROGRESS 512u   /* batched operations between two progress calls */

struct coal_ord { size_t slot, e; };

typedef struct fuze_coal {
  size_t n, max;         /* entries used, entries before a flush */
  size_t *slot;          /* entry -> slot */
  unsigned char *vd, *kd; /* max value deltas of nb bytes, max key deltas of kb bytes:
                             apart, so that entries made in slot order are sent as they are */
  int32_t *hash;         /* slot -> entry, open addressing, -1 empty */
  size_t hmask;
  struct coal_ord *ord, *tmp; /* flush: entries in slot order (tmp: the radix sort's) */
  unsigned char hdr[FUZE_HDR_BYTES]; /* header delta */
  int any;               /* operations coalesced since the last flush */
  int early;             /* a full buffer completes locally, with progress calls
                            (FUZE_BATCH_EARLY=0 at its creation: the old path, a
                            round trip per full buffer and no progress calls) */
  unsigned since_progress; /* operations since the last fuze__win_progress */
} coal;

void fuze__fobj_coal_free(fuze_fobj *f) {
  coal *c = f->coal;
  f->coal = NULL;
  if (!c) return;
  free(c->slot);
  free(c->vd);
  free(c->kd);
  free(c->hash);
  free(c->ord);
  free(c->tmp);
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
    const char *e = getenv("FUZE_BATCH_EARLY");
    c->early = !(e && !strcmp(e, "0"));
    c->max = max;
    c->hmask = hs - 1;
    c->slot = malloc(max * sizeof *c->slot);
    c->vd = malloc(max * (f->nb ? f->nb : 1));
    c->kd = malloc(max * (f->kb ? f->kb : 1));
    c->hash = malloc(hs * sizeof *c->hash);
    c->ord = malloc(max * sizeof *c->ord);
    c->tmp = malloc(max * sizeof *c->tmp);
  }
  f->coal = c;
  if (c && c->slot && c->vd && c->kd && c->hash && c->ord && c->tmp) {
    memset(c->hash, 0xff, hs * sizeof *c->hash);
    return c;
  }
  fuze__fobj_coal_free(f); /* a partly allocated buffer */
  return NULL;
}

/* Entry of slot s; *fresh: it was just made (its bytes are not yet set:
 * the caller fills them). The caller made room for it. */
static size_t coal_entry(coal *c, size_t s, int *fresh) {
  size_t h = (size_t)(((uint64_t)s * 0x9E3779B97F4A7C15ULL) >> 17) & c->hmask;
  for (;; h = (h + 1) & c->hmask) {
    int32_t e = c->hash[h];
    if (e < 0) break;
    if (c->slot[e] == s) {
      *fresh = 0;
      return (size_t)e;
    }
  }
  size_t e = c->n++;
  c->hash[h] = (int32_t)e;
  c->slot[e] = s;
  *fresh = 1;
  return e;
}

/* c->ord (m entries) sorted by slot: an LSD radix sort of slot - lowest
 * slot, 8 bits a pass, as many passes as the range of slots needs (a flush
 * holds a few thousand entries: qsort's compare calls cost more). */
static void coal_sort(coal *c, size_t m) {
  size_t lo = SIZE_MAX, hi = 0;
  for (size_t r = 0; r < m; r++) {
    if (c->ord[r].slot < lo) lo = c->ord[r].slot;
    if (c->ord[r].slot > hi) hi = c->ord[r].slot;
  }
  size_t range = hi - lo;
  struct coal_ord *a = c->ord, *b = c->tmp;
  for (unsigned shift = 0; shift < 64 && (shift == 0 || (range >> shift)); shift += 8) {
    size_t cnt[257] = {0};
    for (size_t r = 0; r < m; r++) cnt[(((a[r].slot - lo) >> shift) & 255) + 1]++;
    for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
    for (size_t r = 0; r < m; r++) b[cnt[((a[r].slot - lo) >> shift) & 255]++] = a[r];
    struct coal_ord *t = a;
    a = b;
    b = t;
  }
  if (a != c->ord) memcpy(c->ord, a, m * sizeof *a);
}

/* c->ord := the entries in slot order; 1 when that is the order they were
 * made in (pushes and puts: no copy needed). Pops come descending: only a
 * mix needs sorting. */
static int coal_order(coal *c) {
  size_t m = c->n;
  int up = 1, down = 1;
  for (size_t r = 0; r < m; r++) {
    c->ord[r].slot = c->slot[r];
    c->ord[r].e = r;
    if (r) {
      up &= c->slot[r] > c->slot[r - 1];
      down &= c->slot[r] < c->slot[r - 1];
    }
  }
  if (up) return 1;
  if (down)
    for (size_t r = 0; r < m / 2; r++) {
      struct coal_ord t = c->ord[r];
      c->ord[r] = c->ord[m - 1 - r];
      c->ord[m - 1 - r] = t;
    }
  else
    coal_sort(c, m);
  return 0;
}

/* Backup j's share of the staged buffer (prod: its products of the value
 * deltas, key: the key deltas, both in slot order; hdr: the header delta). */
static int coal_send_backup(fuze_fobj *f, const coal *c, int j, const unsigned char *prod,
                            const unsigned char *key, const unsigned char *hdr) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank], host = host_of(f, j), rc = FUZE_SUCCESS;
  size_t m = c->n, nb = f->nb, kb = f->kb, base = fuze__fobj_region_off(f, host, b, j);
  size_t noff = fuze__fobj_nodes_off(f, b), koff = fuze__fobj_keys_off(f, b, i);
  /* Runs of consecutive slots, cut into accumulates of at most COAL_ACC
   * node bytes: Open MPI holds the host's accumulate lock for a whole
   * accumulate, and the other members of the block wait for it. */
  for (size_t a = 0, e; a < m && !rc; a = e) {
    size_t most = COAL_ACC / (nb ? nb : 1) ? COAL_ACC / (nb ? nb : 1) : 1;
    for (e = a + 1; e < m && e - a < most && c->ord[e].slot == c->ord[e - 1].slot + 1; e++) {}
    f->coal_cuts += e < m && e - a == most && c->ord[e].slot == c->ord[e - 1].slot + 1;
    rc = fuze__win_xor(&ctx->net, f->win, prod + a * nb, (e - a) * nb, host, base + noff + c->ord[a].slot * nb);
    if (!rc && kb) rc = fuze__win_xor(&ctx->net, f->win, key + a * kb, (e - a) * kb, host, base + koff + c->ord[a].slot * kb);
  }
  if (!rc && c->any)
    rc = fuze__win_xor(&ctx->net, f->win, hdr, FUZE_HDR_BYTES, host, base + fuze__fobj_hdr_off(i));
  f->pending = 1;
  return rc;
}

/* Local completion at every backup: the stage may be reused, the deltas are
 * still owed to the hosts (f->pending stays set: the next flush_hosts). */
static int flush_hosts_local(fuze_fobj *f) {
  for (int j = 0; j < f->ctx->plan.f; j++) {
    int rc = fuze__win_flush_local_rank(&f->ctx->net, f->win, host_of(f, j));
    if (rc) return rc;
  }
  return FUZE_SUCCESS;
}

/* Send the buffer to every backup and complete it: remote 1, at the hosts
 * (flush_hosts, a round trip to each); remote 0, only locally (the buffer
 * filled up in the middle of a batch: the stage can be reused, and the
 * next fuze__fobjs_flush completes it at the hosts). The stage must be
 * empty (nothing issued from it is pending). */
static int coal_send(fuze_fobj *f, coal *c, int remote) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank], nf = p->f, rc = FUZE_SUCCESS;
  size_t m = c->n, nb = f->nb, kb = f->kb;
  size_t need = m * nb * (1 + (size_t)nf) + m * kb + FUZE_HDR_BYTES;
  if (need > ctx->stage_size) {
    unsigned char *s = realloc(ctx->stage_buf, need > FUZE_STAGE ? need : FUZE_STAGE);
    if (!s) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "'%s': cannot stage %zu bytes of batched operations", f->name, need);
    ctx->stage_buf = s;
    ctx->stage_size = need > FUZE_STAGE ? need : FUZE_STAGE;
  }
  /* Entries made in slot order (pushes, puts) are sent from the buffer
   * itself; any other order is gathered into the stage first. */
  int inorder = coal_order(c);
  unsigned char *val = ctx->stage_buf, *prod[FUZE_GF_MEMBERS], *key = val + m * nb * (1 + (size_t)nf), *hdr = key + m * kb;
  for (int j = 0; j < nf; j++) prod[j] = val + m * nb * (1 + (size_t)j);
  if (inorder) {
    val = c->vd;
    key = c->kd;
  } else {
    for (size_t r = 0; r < m; r++) {
      size_t e = c->ord[r].e;
      memcpy(val + r * nb, c->vd + e * nb, nb);
      if (kb) memcpy(key + r * kb, c->kd + e * kb, kb);
    }
  }
  memcpy(hdr, c->hdr, FUZE_HDR_BYTES);
  /* A coefficient 1 for every backup (replication, XOR, f = 1 with the
   * Reed-Solomon matrix's row of ones): every product is the delta itself,
   * sent from where it is. */
  int ones = 1;
  for (int j = 0; j < nf; j++) ones &= fuze__code_coef(&ctx->codes[b], j, i) == 1;
  if (ones)
    for (int j = 0; j < nf; j++) prod[j] = val;
  else
    fuze__code_delta_encode(&ctx->codes[b], i, val, m * nb, prod);
  for (int t = 0; t < nf && !rc; t++) {
    int j = ctx->debug_reorder ? nf - 1 - t : t;
    rc = coal_send_backup(f, c, j, prod[j], key, hdr);
  }
  if (!rc) rc = remote ? flush_hosts(f) : flush_hosts_local(f);
  c->n = 0;
  c->any = 0;
  memset(c->hdr, 0, FUZE_HDR_BYTES);
  memset(c->hash, 0xff, (c->hmask + 1) * sizeof *c->hash);
  ctx->stage_pos = 0;
  return rc;
}

static int coal_flush(fuze_fobj *f) {
  coal *c = f->coal;
  return c && (c->n || c->any) ? coal_send(f, c, 1) : FUZE_SUCCESS;
}

/* One batched operation into the buffer (flushed first when full). */
static int coalesce_op(fuze_fobj *f, const fuze_piece *pcs, int np) {
  coal *c = coal_get(f);
  if (!c) return fuze__fobj_nomem(f, "batched operations");
  int rc = FUZE_SUCCESS;
  if (c->n + 2 > c->max && (c->n || c->any)) { /* an operation touches at most 2 slots */
    if (f->ctx->stage_pos) {
      rc = fuze__fobjs_flush(f->ctx);
    } else if (!c->early) {
      rc = coal_send(f, c, 1);
    } else {
      f->coal_early++;
      rc = coal_send(f, c, 0);
    }
  }
  if (rc) return rc;
  size_t last = SIZE_MAX, e = 0; /* a node and a key piece of one slot: one lookup */
  for (int x = 0; x < np; x++) {
    if (pcs[x].type == PIECE_HDR) {
      fuze__xor_small(c->hdr, pcs[x].delta, FUZE_HDR_BYTES);
      continue;
    }
    int fresh = 0, node = pcs[x].type == PIECE_NODE;
    if (pcs[x].s != last) {
      e = coal_entry(c, pcs[x].s, &fresh);
      last = pcs[x].s;
    }
    unsigned char *d = node ? c->vd + e * f->nb : c->kd + e * f->kb;
    size_t len = node ? f->nb : f->kb;
    if (!fresh) {
      fuze__xor_small(d, pcs[x].delta, len);
      continue;
    }
    /* A new entry: this piece's delta as it is, the other part zero. */
    memcpy(d, pcs[x].delta, len);
    if (node) memset(c->kd + e * f->kb, 0, f->kb);
    else memset(c->vd + e * f->nb, 0, f->nb);
  }
  c->any = 1;
  /* Only a rank that hosts regions of this structure receives accumulates
   * for it; on the others a progress call finds nothing, and with Open MPI's
   * mpi_yield_when_idle (set when oversubscribed) it would give the core
   * away each time. */
  if (c->early && f->nhosted && ++c->since_progress >= COAL_PROGRESS) {
    c->since_progress = 0;
    return fuze__win_progress(&f->ctx->net, f->win);
  }
  return FUZE_SUCCESS;
}

/* ---- the queue of operations waiting for capacity ---- */

static int op_fits(const fuze_fobj *f, const fuze_piece *pcs, int np) {
  for (int x = 0; x < np; x++)
    if (pcs[x].type != PIECE_HDR && pcs[x].s >= f->cap) return 0;
  return 1;
}

static size_t piece_len(const fuze_fobj *f, const fuze_piece *pc) {
  return pc->type == PIECE_NODE ? f->nb : pc->type == PIECE_KEY ? f->kb : FUZE_HDR_BYTES;
}

/* Record: np, then per piece (type, slot, delta bytes). */
static int queue_op(fuze_fobj *f, const fuze_piece *pcs, int np) {
  size_t need = sizeof(int);
  for (int x = 0; x < np; x++) need += sizeof(int) + sizeof(size_t) + piece_len(f, &pcs[x]);
  if (f->qlen + need > f->qcap) {
    size_t cap = f->qcap ? f->qcap : 4096;
    while (cap < f->qlen + need) cap *= 2;
    unsigned char *q = realloc(f->q, cap);
    if (!q) return fuze__fobj_nomem(f, "queueing an operation");
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

int fuze__fobj_drain(fuze_fobj *f) {
  size_t off = 0;
  int rc = FUZE_SUCCESS;
  while (off < f->qlen && !rc) {
    int np;
    fuze_piece pcs[FUZE_OP_PIECES];
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

/* ---- one operation, the flush, publishing a whole primary ---- */

static int send_op(fuze_fobj *f, fuze_piece *pcs, int np) {
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

/* Local operations of several threads share the stage, the pending flags,
 * the sync=batch buffers and queues, and the transport: one at a time
 * (data/threads.h). The caller holds f's own mutex. */
int fuze__fobj_send_op(fuze_fobj *f, fuze_piece *pcs, int np) {
  fuze__send_lock(f->ctx);
  int rc = send_op(f, pcs, np);
  fuze__send_unlock(f->ctx);
  return rc;
}

int fuze__fobjs_flush(fuze_ctx *ctx) {
  int rc = FUZE_SUCCESS;
  /* With nothing in the stage (the batches sent so far completed locally),
   * a structure whose buffer holds operations needs no flush here: its
   * coal_send below flushes its hosts, which completes everything issued
   * to them before. */
  int staged = ctx->stage_pos > 0;
  for (int x = 0; x < ctx->nfobjs && !rc; x++) {
    const coal *c = ctx->fobjs[x]->coal;
    if (ctx->fobjs[x]->pending && (staged || !c || !(c->n || c->any))) rc = flush_hosts(ctx->fobjs[x]);
  }
  ctx->stage_pos = 0;
  /* Then the coalesced operations (sync=batch), through the empty stage. */
  for (int x = 0; x < ctx->nfobjs && !rc; x++) rc = coal_flush(ctx->fobjs[x]);
  return rc;
}

/* Header first, then the slots [0, n) (node and key pieces), then the flush. */
int fuze__fobj_publish(fuze_fobj *f, int only_j) {
  unsigned char dh[FUZE_HDR_BYTES];
  fuze__hdr_delta(dh, 0, f->n, 0, f->seq);
  fuze_piece hdr = {PIECE_HDR, 0, dh};
  int rc = send_pieces(f, &hdr, 1, only_j, 0);
  for (size_t s = 0; s < f->n && !rc; s++) {
    fuze_piece pcs[2] = {{PIECE_NODE, s, f->vals + s * f->nb}, {PIECE_KEY, s, f->keys + s * f->kb}};
    rc = send_pieces(f, pcs, f->kb ? 2 : 1, only_j, 0);
  }
  if (!rc) rc = fuze__fobjs_flush(f->ctx);
  return rc;
}
