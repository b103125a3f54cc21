/* array: protected arrays, primary side (committed copy, dirty chunks,
 * deltas) and fused side (working and committed parity regions).
 *
 * Data path of a checkpoint: changed chunk -> delta = new xor committed ->
 * f coefficient products (code module) -> MPI_Accumulate(BXOR) into each
 * backup's working parity -> flush. Promotion copies working to committed at
 * the host once every rank has agreed. */
#include "core/bigmem.h"
#include "data/array.h"
#include "comm/coll.h"
#include "comm/transport.h"
#include "data/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGE_BYTES (4u << 20) /* per backup: bounds the memory of in-flight products */

/* A hosted region in the window: working parity, then one byte per chunk
 * that members set (MPI_BOR) when they send deltas into it, so that a
 * promotion copies only the chunks that changed. Its committed parity is in
 * the host's private memory (cbase): no other rank touches it, and window
 * memory is shared memory without huge pages, whose first touch costs 3-5x
 * more (design.md, "Fresh memory"). */
static size_t map_len(const fuze_ctx *ctx, size_t fused) {
  return (fused + ctx->cfg.chunk - 1) / ctx->cfg.chunk;
}

static size_t region_span(const fuze_ctx *ctx, size_t fused) {
  return fuze__align(fused) + fuze__align(map_len(ctx, fused));
}

unsigned char *fuze__array_map(const fuze_array *a, int h) {
  return a->winbase + a->hosted[h].off + fuze__align(a->hosted[h].fused);
}

unsigned char *fuze__array_committed(const fuze_array *a, int h) {
  return a->cbase + a->hosted[h].coff;
}

/* Offset of backup j of block b in host's window. Every rank computes the
 * same layout from the plan and the fused sizes, so no exchange is needed. */
size_t fuze__array_region(const fuze_ctx *ctx, const fuze_array *a, int host, int block,
                          int j) {
  const fuze_plan *p = &ctx->plan;
  size_t off = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int jj = 0; jj < p->f; jj++) {
      if (p->hosts[b * p->f + jj] != host) continue;
      if (b == block && jj == j) return off;
      off += region_span(ctx, a->fused[b]);
    }
  return off;
}

/* "array 'name': out of memory" (FUZE_ERR_NOMEM, recorded on the context). */
static int array_nomem(fuze_ctx *ctx, const fuze_array *a) {
  char what[FUZE_NAME_MAX + 8];
  snprintf(what, sizeof what, "array '%s'", a->name);
  return FUZE_NOMEM(ctx->msg, what);
}

static int compute_fused(fuze_ctx *ctx, fuze_array *a) {
  const fuze_plan *p = &ctx->plan;
  free(a->fused);
  a->fused = calloc((size_t)p->nblocks, sizeof *a->fused);
  if (!a->fused) return array_nomem(ctx, a);
  for (int r = 0; r < ctx->size; r++) {
    int b = p->block_of[r];
    if (b >= 0 && a->rank_bytes[r] > a->fused[b]) a->fused[b] = a->rank_bytes[r];
  }
  return FUZE_SUCCESS;
}

static int compute_hosted(fuze_ctx *ctx, fuze_array *a) {
  const fuze_plan *p = &ctx->plan;
  int n = fuze__plan_load(p, ctx->rank);
  free(a->hosted);
  a->hosted = calloc((size_t)(n ? n : 1), sizeof *a->hosted);
  if (!a->hosted) return array_nomem(ctx, a);
  a->nhosted = 0;
  size_t off = 0, coff = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int j = 0; j < p->f; j++) {
      if (p->hosts[b * p->f + j] != ctx->rank) continue;
      a->hosted[a->nhosted++] = (fuze_hosted){b, j, a->fused[b], off, coff};
      off += region_span(ctx, a->fused[b]);
      coff += fuze__align(a->fused[b]);
    }
  a->winsize = off;
  /* The committed parity: kept when its size stays (a recovery or a repair
   * lays the same regions out again), else zeroed memory of the new size. */
  if (coff != a->csize || (coff && !a->cbase)) {
    fuze__big_free(a->cbase, a->csize);
    a->cbase = NULL;
    a->csize = 0;
    if (coff && !(a->cbase = fuze__big_zalloc(coff, !ctx->lost))) return array_nomem(ctx, a);
    a->csize = coff;
  }
  return FUZE_SUCCESS;
}

/* Collective: gather every rank's bytes and size the fused regions. */
int fuze__array_sizes(fuze_ctx *ctx, fuze_array *a) {
  free(a->rank_bytes);
  a->rank_bytes = fuze__hook(ctx, FUZE_HOOK_ALLOC, FUZE_ALLOC_LAYOUT)
                      ? NULL : calloc((size_t)ctx->size, sizeof *a->rank_bytes);
  uint64_t mine = a->bytes, *all = malloc(sizeof(uint64_t) * (size_t)ctx->size);
  /* Agreed before the exchange: a rank without its buffers must not meet
   * the others' MPI_Allgather with another collective. */
  int rc = fuze__agree(&ctx->net, a->rank_bytes && all ? FUZE_SUCCESS : array_nomem(ctx, a));
  if (!rc) rc = fuze__allgather_u64(&ctx->net, ctx->net.comm, &mine, 1, all);
  for (int r = 0; !rc && r < ctx->size; r++) a->rank_bytes[r] = (size_t)all[r];
  free(all);
  if (rc) return rc;
  rc = compute_fused(ctx, a);
  if (!rc) rc = compute_hosted(ctx, a);
  return rc;
}

/* Collective: sizes, then the window (zeroed: the parity of nothing). */
int fuze__array_layout(fuze_ctx *ctx, fuze_array *a) {
  int rc = fuze__array_sizes(ctx, a);
  rc = fuze__agree(&ctx->net, rc);
  if (!rc) rc = fuze__win_create_array(&ctx->net, a->winsize, &a->win, &a->winbase);
  return rc;
}

/* Collective over the repaired ctx->net.comm (ULFM): the bytes this rank
 * hosts move from the old window (freed; none on a replacement) into a new
 * one of the same layout on the new communicator. */
int fuze__array_rewin(fuze_ctx *ctx, fuze_array *a, fuze_oldwin *old) {
  /* The new window first, the bytes copied across; the old one is the
   * caller's to free (one copy, no staging buffer). */
  *old = (fuze_oldwin){a->win, a->winbase, a->winsize, 1};
  /* Every rank's size, kept: an exchange that a death cuts short leaves zeros. */
  size_t *sizes = a->rank_bytes ? malloc(sizeof *sizes * (size_t)ctx->size) : NULL;
  if (sizes) memcpy(sizes, a->rank_bytes, sizeof *sizes * (size_t)ctx->size);
  a->win = MPI_WIN_NULL;
  ctx->net.win_keep = old->win != MPI_WIN_NULL ? old->size : 0; /* copied below */
  ctx->net.win_reuse = &old->win; /* or kept in place: fuze's own shared memory */
  int rc = fuze__array_layout(ctx, a);
  ctx->net.win_keep = 0;
  ctx->net.win_reuse = NULL;
  if (rc) { /* the old window keeps the bytes; a half-made new one is left to MPI */
    a->win = old->win;
    a->winbase = old->base;
    a->winsize = old->size;
    old->win = MPI_WIN_NULL;
    if (sizes) {
      free(a->rank_bytes);
      a->rank_bytes = sizes;
    }
    return rc;
  }
  free(sizes);
  if (old->win != MPI_WIN_NULL && old->size && a->winbase != old->base)
    memcpy(a->winbase, old->base, old->size < a->winsize ? old->size : a->winsize);
  return rc;
}

void fuze__array_free(fuze_array *a) {
  if (!a) return;
  fuze__win_free(&a->win, 1);
  if (a->type_owned) FUZE_MPI_TEARDOWN(MPI_Type_free(&a->type));
  fuze__big_free(a->shadow, a->bytes);
  fuze__big_free(a->cbase, a->csize);
  free(a->rank_bytes);
  free(a->fused);
  free(a->hosted);
  free(a->dirty);
  free(a->pdirty);
  if (a->base_owned) fuze__big_free(a->base, a->bytes);
  free(a);
}

/* ---- primary side: dirty chunks and deltas ---- */

static size_t nchunks(const fuze_ctx *ctx, const fuze_array *a) {
  return (a->bytes + ctx->cfg.chunk - 1) / ctx->cfg.chunk;
}

/* Compare with the committed copy chunk by chunk; only changed chunks move. */
static int scan_dirty(fuze_ctx *ctx, fuze_array *a) {
  size_t n = nchunks(ctx, a), chunk = ctx->cfg.chunk;
  free(a->dirty);
  a->dirty = malloc(sizeof(size_t) * (n ? n : 1));
  a->ndirty = 0;
  if (!a->dirty) return array_nomem(ctx, a);
  const unsigned char *cur = a->base;
  for (size_t c = 0; c < n; c++) {
    size_t off = c * chunk, len = a->bytes - off < chunk ? a->bytes - off : chunk;
    /* Against a zero committed copy: any nonzero byte (the chunk compared
     * with itself one byte on, in cache, not with the fresh copy). */
    int diff = a->shadow_zero ? cur[off] || memcmp(cur + off, cur + off + 1, len - 1)
                              : memcmp(cur + off, a->shadow + off, len);
    if (diff) a->dirty[a->ndirty++] = c;
  }
  return FUZE_SUCCESS;
}

typedef struct sender {
  fuze_ctx *ctx;
  unsigned char *delta;   /* one chunk */
  unsigned char *stage;   /* f * cap bytes of products in flight */
  size_t cap;             /* per backup, at most STAGE_BYTES */
  size_t pos;             /* used bytes of each backup's stage */
  MPI_Win pending;        /* window with unflushed accumulates */
} sender;

static int sender_flush(sender *s) {
  int rc = FUZE_SUCCESS;
  if (s->pending != MPI_WIN_NULL) rc = fuze__win_flush(&s->ctx->net, s->pending);
  s->pending = MPI_WIN_NULL;
  s->pos = 0;
  return rc;
}

/* Delta of one chunk, its f products, and one accumulate per backup. */
static int send_chunk(sender *s, fuze_array *a, size_t c) {
  fuze_ctx *ctx = s->ctx;
  const fuze_plan *p = &ctx->plan;
  size_t chunk = ctx->cfg.chunk, off = c * chunk;
  size_t len = a->bytes - off < chunk ? a->bytes - off : chunk;
  int b = p->block_of[ctx->rank], i = p->index_in_block[ctx->rank], rc;
  if ((s->pending != MPI_WIN_NULL && s->pending != a->win) || s->pos + len > s->cap)
    if ((rc = sender_flush(s))) return rc;
  unsigned char *prod[FUZE_GF_MEMBERS];
  for (int j = 0; j < p->f; j++) prod[j] = s->stage + (size_t)j * s->cap + s->pos;
  const unsigned char *delta = (const unsigned char *)a->base + off; /* a zero committed copy */
  if (!a->shadow_zero) {
    fuze__xor3(s->delta, delta, a->shadow + off, len);
    delta = s->delta;
  }
  fuze__code_delta_encode(&ctx->codes[b], i, delta, len, prod);
  for (int j = 0; j < p->f; j++) {
    int host = p->hosts[b * p->f + j];
    size_t disp = fuze__array_region(ctx, a, host, b, j) + off;
    if ((rc = fuze__win_xor(&ctx->net, a->win, prod[j], len, host, disp))) return rc;
  }
  s->pending = a->win;
  s->pos += len;
  return FUZE_SUCCESS;
}

/* Send dirty chunks number [from, to) counted across all arrays. */
static int send_range(sender *s, fuze_array **arrays, int n, size_t from, size_t to) {
  size_t k = 0;
  for (int x = 0; x < n; x++) {
    fuze_array *a = arrays[x];
    for (size_t d = 0; d < a->ndirty; d++, k++) {
      if (k < from || k >= to) continue;
      int rc = send_chunk(s, a, a->dirty[d]);
      if (rc) return rc;
    }
  }
  return sender_flush(s);
}

/* Mark the chunks this rank changed in every backup's map (one BOR
 * accumulate per backup), then flush. */
static int send_map(fuze_ctx *ctx, fuze_array *a) {
  if (!a->ndirty) return FUZE_SUCCESS;
  const fuze_plan *p = &ctx->plan;
  int b = p->block_of[ctx->rank], rc = FUZE_SUCCESS;
  size_t len = a->dirty[a->ndirty - 1] + 1;
  unsigned char *m = calloc(len, 1);
  if (!m) return FUZE_NOMEM(ctx->msg, "checkpoint");
  for (size_t d = 0; d < a->ndirty; d++) m[a->dirty[d]] = 1;
  for (int j = 0; j < p->f && !rc; j++) {
    int host = p->hosts[b * p->f + j];
    size_t disp = fuze__array_region(ctx, a, host, b, j) + fuze__align(a->fused[b]);
    rc = fuze__win_or(&ctx->net, a->win, m, len, host, disp);
  }
  if (!rc) rc = fuze__win_flush(&ctx->net, a->win);
  free(m);
  return rc;
}

/* Phase 1 of a checkpoint on this rank: scan, then send every changed
 * chunk's products. With hook, FUZE_HOOK_ARRAYS_PARTIAL sits after
 * about half of this rank's deltas. A lost rank sends nothing. */
int fuze__arrays_send(fuze_ctx *ctx, fuze_array **arrays, int n, int hook) {
  size_t total = 0;
  int rc = FUZE_SUCCESS;
  int primary = !ctx->lost && ctx->plan.block_of[ctx->rank] >= 0;
  for (int x = 0; x < n && primary && !rc; x++) {
    rc = scan_dirty(ctx, arrays[x]);
    total += arrays[x]->ndirty;
  }
  if (rc) return rc;
  sender s = {ctx, NULL, NULL, 0, 0, MPI_WIN_NULL};
  if (primary && total) {
    /* Stage no more than the changed bytes: small checkpoints stay cheap. */
    size_t bytes = total * ctx->cfg.chunk;
    s.cap = bytes < STAGE_BYTES ? bytes : STAGE_BYTES;
    s.delta = malloc(ctx->cfg.chunk);
    s.stage = malloc((size_t)ctx->plan.f * s.cap);
    if (!s.delta || !s.stage) rc = FUZE_NOMEM(ctx->msg, "checkpoint");
  }
  if (!rc && primary) rc = send_range(&s, arrays, n, 0, total / 2);
  if (hook) fuze__hook(ctx, FUZE_HOOK_ARRAYS_PARTIAL, 0);
  if (!rc && primary && !ctx->lost) rc = send_range(&s, arrays, n, total / 2, total);
  for (int x = 0; x < n && !rc && primary && !ctx->lost; x++) rc = send_map(ctx, arrays[x]);
  for (int x = 0; x < n; x++) arrays[x]->shadow_zero = 0; /* the next send compares */
  free(s.delta);
  free(s.stage);
  return rc;
}

/* ---- fused side ---- */

/* Host: committed := working for the chunks the maps mark (the commit
 * decision was taken; every origin has flushed). A failed MPI_Win_sync is
 * returned after every copy was made. */
int fuze__arrays_promote(fuze_ctx *ctx, fuze_array **arrays, int n, const unsigned char *changed) {
  if (ctx->lost) return FUZE_SUCCESS;
  int rc = FUZE_SUCCESS;
  for (int x = 0; x < n; x++) {
    fuze_array *a = arrays[x];
    int src = fuze__win_sync(&a->ctx->net, a->win);
    size_t pbase = nchunks(ctx, a); /* hosted region h's first byte in pdirty */
    for (int h = 0; h < a->nhosted; h++) {
      size_t at = pbase;
      pbase += map_len(ctx, a->hosted[h].fused);
      /* No member sent a delta: working already equals committed. */
      if (changed && !(changed[a->hosted[h].block] & FUZE_CHANGED_ARRAYS)) continue;
      size_t fused = a->hosted[h].fused, chunk = ctx->cfg.chunk;
      unsigned char *w = a->winbase + a->hosted[h].off, *m = fuze__array_map(a, h);
      unsigned char *cm = fuze__array_committed(a, h);
      for (size_t c = 0; c < map_len(ctx, fused); c++) {
        if (!m[c]) continue;
        if (a->pdirty && at + c < a->pdirty_len) a->pdirty[at + c] = 1;
        size_t off = c * chunk, len = fused - off < chunk ? fused - off : chunk;
        memcpy(cm + off, w + off, len);
      }
      if (map_len(ctx, fused)) memset(m, 0, map_len(ctx, fused));
    }
    int src2 = fuze__win_sync(&a->ctx->net, a->win);
    if (!rc) rc = src ? src : src2;
  }
  return rc;
}

/* Primary: the committed copy catches up with the chunks that were sent. */
void fuze__arrays_update_shadow(fuze_ctx *ctx, fuze_array **arrays, int n) {
  if (ctx->lost) return;
  size_t chunk = ctx->cfg.chunk;
  for (int x = 0; x < n; x++) {
    fuze_array *a = arrays[x];
    for (size_t d = 0; d < a->ndirty; d++) {
      size_t off = a->dirty[d] * chunk;
      size_t len = a->bytes - off < chunk ? a->bytes - off : chunk;
      memcpy(a->shadow + off, (const unsigned char *)a->base + off, len);
      if (a->pdirty && a->dirty[d] < a->pdirty_len) a->pdirty[a->dirty[d]] = 1;
    }
    a->ndirty = 0;
  }
}

/* Host: working := committed, discarding deltas of an epoch that was not
 * decided. A failed MPI_Win_sync is returned after every copy was made. */
int fuze__arrays_reset_working(fuze_ctx *ctx) {
  if (ctx->lost) return FUZE_SUCCESS;
  int rc = FUZE_SUCCESS;
  for (int x = 0; x < ctx->narrays; x++) {
    fuze_array *a = ctx->arrays[x];
    int src = fuze__win_sync(&a->ctx->net, a->win);
    for (int h = 0; h < a->nhosted; h++) {
      if (!a->hosted[h].fused) continue; /* an empty region may have no memory */
      memcpy(a->winbase + a->hosted[h].off, fuze__array_committed(a, h), a->hosted[h].fused);
      if (a->hosted[h].fused) memset(fuze__array_map(a, h), 0, map_len(ctx, a->hosted[h].fused));
    }
    int src2 = fuze__win_sync(&a->ctx->net, a->win);
    if (!rc) rc = src ? src : src2;
  }
  return rc;
}
