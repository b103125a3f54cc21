/* byz_replicas: code=byzantine's state and replicas (byzantine.c's step 1).
 *
 * f unfused copies (replicas) of every compute rank's committed arrays,
 * stacks and maps live on the ranks fuze__byz_place picks (f distinct failure
 * domains, none the rank's own). Right after every commit each primary sends,
 * per array, the chunks whose crc64 changed since what it last sent (all of
 * them after a recovery or a size change) to its f replica holders, point to
 * point; per stack or map its whole serialized state when its crc64 changed.
 *
 * Also here: what a stack/map copy is (its serialized state, and the index
 * and value parts Fig. 6 compares) and where the hosted regions are. */
#include "proto/byz_internal.h"

#include "comm/coll.h"
#include "comm/transport.h"
#include "data/array.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- state ---- */

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

static void work_free(byz_work *w) {
  free(w->flags);
  free(w->mine);
  free(w->raw);
  free(w->rawlen);
  free(w->req);
  memset(w, 0, sizeof *w);
}

/* byz_correct.c's buffers for the largest block's objects. */
static int work_alloc(fuze_ctx *ctx, byz_work *w) {
  const fuze_plan *p = &ctx->plan;
  for (int b = 0; b < p->nblocks; b++) {
    int nobj = fuze__byz_k(ctx, b) * (p->f + 1) + p->f;
    if (nobj > w->cap) w->cap = nobj;
  }
  size_t n = (size_t)(w->cap ? w->cap : 1);
  w->flags = calloc(n, 1);
  w->mine = calloc(n, sizeof *w->mine);
  w->raw = calloc(n, sizeof *w->raw);
  w->rawlen = calloc(n, sizeof *w->rawlen);
  w->req = calloc(n, sizeof *w->req);
  if (w->flags && w->mine && w->raw && w->rawlen && w->req) return FUZE_SUCCESS;
  return FUZE_NOMEM(ctx->msg, "byzantine");
}

void fuze__byz_free(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  if (!z) return;
  work_free(&z->work);
  for (int x = 0; x < z->narr; x++) arr_free(z, &z->arr[x]);
  free(z->arr);
  for (int x = 0; x < z->nfo; x++) fo_free(z, &z->fo[x]);
  free(z->fo);
  free(z->place);
  free(z->held_rank);
  free(z->held_c);
  if (z->comm != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&z->comm));
  free(z);
  ctx->byz = NULL;
}

void fuze__byz_reset(fuze_ctx *ctx) {
  fuze__byz_free(ctx);
  ctx->byz_full = 1; /* on every rank alike, a replacement too */
}

/* fuze_unprotect: array x's replicas go; the later arrays move down one,
 * like ctx->arrays. */
void fuze__byz_drop_array(fuze_ctx *ctx, int x) {
  fuze_byz *z = ctx->byz;
  if (!z || x >= z->narr) return;
  arr_free(z, &z->arr[x]);
  memmove(&z->arr[x], &z->arr[x + 1], sizeof *z->arr * (size_t)(z->narr - x - 1));
  z->narr--;
}

/* Placement and the copies this rank holds. */
static int place_replicas(fuze_ctx *ctx, fuze_byz *z) {
  const fuze_plan *p = &ctx->plan;
  size_t n = (size_t)ctx->size * (size_t)p->f;
  z->place = malloc(sizeof(int) * n);
  z->held_rank = malloc(sizeof(int) * n);
  z->held_c = malloc(sizeof(int) * n);
  if (!z->place || !z->held_rank || !z->held_c) return FUZE_NOMEM(ctx->msg, "byzantine");
  if (fuze__byz_place(p->domain, ctx->size, p->ndomains, p->f, z->place))
    return CTX_ERR(ctx, FUZE_ERR_CONFIG, "byzantine: cannot place %d replicas over %d failure "
                   "domains", p->f, p->ndomains);
  for (int r = 0; r < ctx->size; r++)
    for (int c = 1; c <= p->f && p->block_of[r] >= 0; c++)
      if (z->place[r * p->f + c - 1] == ctx->rank)
        z->held_rank[z->nheld] = r, z->held_c[z->nheld++] = c;
  return FUZE_SUCCESS;
}

/* Collective the first time (the communicator). */
static int byz_state(fuze_ctx *ctx) {
  if (ctx->byz) return FUZE_SUCCESS;
  fuze_byz *z = calloc(1, sizeof *z);
  int rc = z ? FUZE_SUCCESS : FUZE_NOMEM(ctx->msg, "byzantine");
  if (z) {
    z->f = ctx->plan.f;
    z->comm = MPI_COMM_NULL;
    /* After fuze__byz_reset: a full refresh (recoveries differ). */
    z->recoveries = ctx->recoveries + (ctx->byz_full ? 1 : 0);
    ctx->byz_full = 0;
    rc = place_replicas(ctx, z);
    if (!rc) rc = work_alloc(ctx, &z->work);
  }
  ctx->byz = z;
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  return fuze__agree(&ctx->net, FUZE_MPI(ctx->msg, MPI_Comm_dup(ctx->net.comm, &z->comm)));
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
  if (!g) return FUZE_NOMEM(ctx->msg, "byzantine");
  z->arr = g;
  for (int x = z->narr; x < ctx->narrays; x++) {
    memset(&g[x], 0, sizeof g[x]);
    if (alloc_replicas(z, &g[x].rep, &g[x].replen)) return FUZE_NOMEM(ctx->msg, "byzantine");
    z->narr = x + 1;
  }
  return FUZE_SUCCESS;
}

static int grow_fobjs(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  if (z->nfo >= ctx->nfobjs) return FUZE_SUCCESS;
  byz_fobj *g = realloc(z->fo, sizeof *g * (size_t)ctx->nfobjs);
  if (!g) return FUZE_NOMEM(ctx->msg, "byzantine");
  z->fo = g;
  for (int x = z->nfo; x < ctx->nfobjs; x++) {
    memset(&g[x], 0, sizeof g[x]);
    int bad = alloc_replicas(z, &g[x].rep, &g[x].replen);
    g[x].poison = calloc((size_t)(ctx->plan.nblocks ? ctx->plan.nblocks : 1), 1);
    z->nfo = x + 1;
    if (bad || !g[x].poison) return FUZE_NOMEM(ctx->msg, "byzantine");
  }
  return FUZE_SUCCESS;
}

int fuze__byz_held(const fuze_byz *z, int r, int c) {
  for (int h = 0; h < z->nheld; h++)
    if (z->held_rank[h] == r && z->held_c[h] == c) return h;
  return -1;
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

unsigned char *fuze__byz_replica(fuze_ctx *ctx, const char *name, size_t *len, int *rank) {
  fuze_byz *z = ctx->byz;
  for (int x = 0; z && x < z->narr && x < ctx->narrays; x++)
    for (int h = 0; h < z->nheld && !strcmp(ctx->arrays[x]->name, name); h++)
      if (z->arr[x].replen[h]) {
        *len = z->arr[x].replen[h], *rank = z->held_rank[h];
        return z->arr[x].rep[h];
      }
  for (int x = 0; z && x < z->nfo && x < ctx->nfobjs; x++)
    for (int h = 0; h < z->nheld && !strcmp(ctx->fobjs[x]->name, name); h++)
      if (z->fo[x].replen[h]) {
        *len = z->fo[x].replen[h], *rank = z->held_rank[h];
        return z->fo[x].rep[h];
      }
  return NULL;
}

/* ---- stack/map copies and hosted regions ---- */

unsigned char *fuze__byz_fser(const fuze_fobj *f, size_t *len) {
  size_t n = f->n, bytes = FUZE_HDR_BYTES + n * (f->kb + f->nb);
  unsigned char *p = malloc(bytes);
  if (!p) return NULL;
  uint64_t h[2] = {(uint64_t)n, f->seq};
  memcpy(p, h, FUZE_HDR_BYTES);
  if (n && f->kb) memcpy(p + FUZE_HDR_BYTES, f->keys, n * f->kb);
  if (n) memcpy(p + FUZE_HDR_BYTES + n * f->kb, f->vals, n * f->nb);
  *len = bytes;
  return p;
}

long long fuze__byz_fcount(const fuze_fobj *f, const unsigned char *p, size_t len) {
  uint64_t n;
  if (!p || len < FUZE_HDR_BYTES) return -1;
  memcpy(&n, p, sizeof n);
  if (n > f->cap || len != FUZE_HDR_BYTES + (size_t)n * (f->kb + f->nb)) return -1;
  return (long long)n;
}

/* The index part is the form of a backup's index replica (header, keys
 * padded to cap slots), the value part the form the nodes parity encodes
 * (values padded to cap slots). A malformed state's index is all 0xFF. */
void fuze__byz_fexpand(const fuze_fobj *f, const unsigned char *p, size_t len, unsigned char *idx,
                       unsigned char *val) {
  size_t ilen = fuze__byz_ilen(f), vl = f->cap * f->nb;
  memset(val, 0, vl ? vl : 1);
  long long n = fuze__byz_fcount(f, p, len);
  if (n < 0) {
    memset(idx, 0xFF, ilen);
    return;
  }
  memset(idx, 0, ilen);
  memcpy(idx, p, FUZE_HDR_BYTES);
  if (n && f->kb) memcpy(idx + FUZE_HDR_BYTES, p + FUZE_HDR_BYTES, (size_t)n * f->kb);
  if (n) memcpy(val, p + FUZE_HDR_BYTES + (size_t)n * f->kb, (size_t)n * f->nb);
}

unsigned char *fuze__byz_fcompact(const fuze_fobj *f, const unsigned char *idx,
                                  const unsigned char *val, size_t *len) {
  uint64_t n;
  memcpy(&n, idx, sizeof n);
  if (n > f->cap) n = f->cap;
  size_t bytes = FUZE_HDR_BYTES + (size_t)n * (f->kb + f->nb);
  unsigned char *p = malloc(bytes);
  if (!p) return NULL;
  memcpy(p, &n, sizeof n);
  memcpy(p + FUZE_BYZ_SEQ_OFF, idx + FUZE_BYZ_SEQ_OFF, sizeof(uint64_t));
  if (n && f->kb) memcpy(p + FUZE_HDR_BYTES, idx + FUZE_HDR_BYTES, (size_t)n * f->kb);
  if (n) memcpy(p + FUZE_HDR_BYTES + (size_t)n * f->kb, val, (size_t)n * f->nb);
  *len = bytes;
  return p;
}

void fuze__byz_region_index(const fuze_fobj *f, int k, const unsigned char *r, int i,
                            unsigned char *idx) {
  fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  memcpy(idx, r + fuze__hdr_off(i), FUZE_HDR_BYTES);
  if (f->kb)
    memcpy(idx + FUZE_HDR_BYTES, r + l.keys_off + (size_t)i * f->cap * f->kb, f->cap * f->kb);
}

unsigned char *fuze__byz_fregion(fuze_fobj *f, int b, int j, size_t *len) {
  for (int h = 0; h < f->nhosted; h++)
    if (f->hosted[h].block == b && f->hosted[h].j == j) {
      if (len) *len = f->hosted[h].fused;
      return f->winbase + f->hosted[h].off + f->hosted[h].fused;
    }
  return NULL;
}

int fuze__byz_fwin_sync(const fuze_fobj *f) {
  return f->excl ? FUZE_SUCCESS : fuze__win_sync(&f->ctx->net, f->win);
}

/* Working := committed: they are equal outside a checkpoint, and detection
 * runs after the commit. */
int fuze__byz_fregion_write(fuze_fobj *f, int b, int j, const unsigned char *r) {
  size_t len = 0;
  unsigned char *c = fuze__byz_fregion(f, b, j, &len);
  if (!c) return FUZE_SUCCESS;
  int rc = fuze__byz_fwin_sync(f);
  if (r) memcpy(c, r, len);
  memcpy(c - len, c, len);
  int r2 = fuze__byz_fwin_sync(f);
  return rc ? rc : r2;
}

unsigned char *fuze__byz_parity(fuze_array *a, int b, int j, size_t *len) {
  for (int h = 0; h < a->nhosted; h++)
    if (a->hosted[h].block == b && a->hosted[h].j == j) {
      *len = a->hosted[h].fused;
      return fuze__array_committed(a, h);
    }
  return NULL;
}

void fuze__byz_sync_working(fuze_array *a, int b, int j) {
  for (int h = 0; h < a->nhosted; h++)
    if (a->hosted[h].block == b && a->hosted[h].j == j && a->hosted[h].fused) {
      memcpy(a->winbase + a->hosted[h].off, fuze__array_committed(a, h), a->hosted[h].fused);
    }
}

/* ---- refresh: the exchange ---- */

/* A holder takes the message of held primary h (buf: cnt bytes, NULL when
 * cnt is 0; it owns buf). */
typedef int (*byz_take)(fuze_ctx *ctx, int x, int h, unsigned char *buf, size_t cnt);

int fuze__byz_probe(fuze_ctx *ctx, int src, int tag, size_t *len, int *rc) {
  MPI_Status stt;
  int n = 0;
  *len = 0;
  if (!FUZE_MPI_KEEP(*rc, ctx->msg, MPI_Probe(src, tag, ctx->byz->comm, &stt)) ||
      !FUZE_MPI_KEEP(*rc, ctx->msg, MPI_Get_count(&stt, MPI_BYTE, &n)))
    return 0;
  *len = (size_t)n;
  return 1;
}

int fuze__byz_take(fuze_ctx *ctx, int src, int tag, unsigned char *p, size_t len, int *rc) {
  unsigned char dummy;
  return FUZE_MPI_KEEP(*rc, ctx->msg, MPI_Recv(p ? p : &dummy, p ? (int)len : 0, MPI_BYTE, src,
                                               tag, ctx->byz->comm, MPI_STATUS_IGNORE)) && p;
}

/* Holder: the next message of held primary h with `tag`, in a fresh buffer
 * (NULL when it is empty or could not be received). */
static int recv_held(fuze_ctx *ctx, int h, int tag, unsigned char **buf, size_t *cnt, int rc) {
  int src = ctx->byz->held_rank[h];
  size_t n;
  *buf = NULL;
  *cnt = 0;
  if (!fuze__byz_probe(ctx, src, tag, &n, &rc)) return rc;
  *buf = n ? malloc(n) : NULL;
  if (n && !*buf && !rc) rc = FUZE_NOMEM(ctx->msg, "byzantine");
  if (!fuze__byz_take(ctx, src, tag, *buf, n, &rc)) {
    free(*buf);
    *buf = NULL;
  }
  *cnt = *buf ? n : 0;
  return rc;
}

/* Each primary (send) sends msg to its f replica holders; each holder hands
 * every held primary's message to take. Every rank runs all of it, whatever
 * failed before: the first error is returned (not agreed). */
static int exchange(fuze_ctx *ctx, int x, int tag, int send, const unsigned char *msg,
                    size_t len, byz_take take) {
  fuze_byz *z = ctx->byz;
  MPI_Request req[FUZE_GF_MEMBERS];
  int nreq = 0, rc = FUZE_SUCCESS, f = z->f;
  for (int c = 0; send && c < f; c++)
    if (FUZE_MPI_KEEP(rc, ctx->msg, MPI_Isend(msg, (int)len, MPI_BYTE, z->place[ctx->rank * f + c],
                                              tag, z->comm, &req[nreq])))
      nreq++;
  for (int h = 0; h < z->nheld; h++) {
    unsigned char *buf;
    size_t cnt;
    rc = recv_held(ctx, h, tag, &buf, &cnt, rc);
    int r2 = take(ctx, x, h, buf, cnt);
    if (!rc) rc = r2;
  }
  FUZE_MPI_KEEP(rc, ctx->msg, MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE));
  return rc;
}

/* ---- refresh: arrays ---- */

/* The crc64 of every chunk of the primary's committed copy (NULL: out of memory). */
static uint64_t *chunk_crcs(const fuze_ctx *ctx, const fuze_array *a, size_t n) {
  size_t chunk = ctx->cfg.chunk;
  uint64_t *cur = malloc(sizeof(uint64_t) * (n ? n : 1));
  for (size_t c = 0; cur && c < n; c++) {
    size_t off = c * chunk, len = a->bytes - off < chunk ? a->bytes - off : chunk;
    cur[c] = fuze__byz_crc(a->shadow + off, len);
  }
  return cur;
}

/* Primary: pack [n][chunk indices][chunk bytes] of the chunks that changed. */
static unsigned char *pack_changed(fuze_ctx *ctx, fuze_array *a, byz_arr *ba, int full,
                                   size_t *plen) {
  size_t chunk = ctx->cfg.chunk, n = (a->bytes + chunk - 1) / chunk, nch = 0, data = 0;
  if (full || ba->bytes != a->bytes || !ba->sent) {
    free(ba->sent);
    ba->sent = NULL;
  }
  uint64_t *cur = chunk_crcs(ctx, a, n);
  if (!cur) return NULL;
  for (size_t c = 0; c < n; c++)
    if (!ba->sent || ba->sent[c] != cur[c])
      nch++, data += a->bytes - c * chunk < chunk ? a->bytes - c * chunk : chunk;
  unsigned char *buf = malloc(8 * (1 + nch) + data);
  if (!buf) {
    free(cur);
    return NULL;
  }
  uint64_t v = nch;
  memcpy(buf, &v, 8);
  size_t ip = 8, dp = 8 * (1 + nch);
  for (size_t c = 0; c < n; c++) {
    if (ba->sent && ba->sent[c] == cur[c]) continue;
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
  return buf;
}

/* Holder: the changed chunks of held primary h into its replica. */
static int apply_pack(fuze_ctx *ctx, int x, int h, unsigned char *buf, size_t blen) {
  fuze_byz *z = ctx->byz;
  fuze_array *a = ctx->arrays[x];
  byz_arr *ba = &z->arr[x];
  size_t bytes = a->rank_bytes[z->held_rank[h]], chunk = ctx->cfg.chunk;
  if (!buf) return FUZE_SUCCESS; /* nothing received: the error is already recorded */
  if (ba->replen[h] != bytes || !ba->rep[h]) {
    free(ba->rep[h]);
    ba->rep[h] = calloc(bytes ? bytes : 1, 1);
    ba->replen[h] = ba->rep[h] ? bytes : 0;
    if (!ba->rep[h]) {
      free(buf);
      return FUZE_NOMEM(ctx->msg, "byzantine");
    }
  }
  uint64_t n = 0;
  if (blen >= 8) memcpy(&n, buf, 8);
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
  free(buf);
  return FUZE_SUCCESS;
}

static int refresh_array(fuze_ctx *ctx, int x, int primary, int full) {
  size_t plen = 0;
  unsigned char *pack = NULL;
  uint64_t empty = 0; /* still one message per holder */
  int rc = FUZE_SUCCESS;
  if (primary) {
    pack = pack_changed(ctx, ctx->arrays[x], &ctx->byz->arr[x], full, &plen);
    if (!pack) rc = FUZE_NOMEM(ctx->msg, "byzantine");
  }
  int r2 = exchange(ctx, x, FUZE_BYZ_TAG_REFRESH, primary,
                    pack ? pack : (unsigned char *)&empty, pack ? plen : 8, apply_pack);
  free(pack);
  return rc ? rc : r2;
}

/* ---- refresh: stacks and maps ---- */

/* Holder: a non-empty message is held primary h's new state. */
static int take_state(fuze_ctx *ctx, int x, int h, unsigned char *buf, size_t cnt) {
  byz_fobj *bf = &ctx->byz->fo[x];
  if (buf) {
    free(bf->rep[h]);
    bf->rep[h] = buf;
    bf->replen[h] = cnt;
  }
  return FUZE_SUCCESS;
}

/* A primary resends its whole serialized state when its crc64 differs from
 * what it last sent (an empty message otherwise). A block found
 * uncorrectable keeps its replicas as they are (they are evidence) until it
 * is correct again or a recovery. */
static int refresh_fobj(fuze_ctx *ctx, int x, int primary, int full) {
  byz_fobj *bf = &ctx->byz->fo[x];
  int myb = ctx->plan.block_of[ctx->rank], rc = FUZE_SUCCESS;
  if (full) memset(bf->poison, 0, (size_t)(ctx->plan.nblocks ? ctx->plan.nblocks : 1));
  size_t plen = 0;
  unsigned char *pack = NULL, dummy = 0;
  if (primary && !(myb >= 0 && bf->poison[myb])) {
    pack = fuze__byz_fser(ctx->fobjs[x], &plen);
    if (!pack) rc = FUZE_NOMEM(ctx->msg, "byzantine");
    uint64_t c = pack ? fuze__byz_crc(pack, plen) : 0;
    if (pack && !full && bf->has_sent && bf->sent == c) plen = 0;
    else if (pack) bf->sent = c, bf->has_sent = 1;
  }
  int r2 = exchange(ctx, x, FUZE_BYZ_TAG_FREFRESH, primary, pack && plen ? pack : &dummy,
                    pack ? plen : 0, take_state);
  free(pack);
  return rc ? rc : r2;
}

int fuze__byz_refresh(fuze_ctx *ctx) {
  if (!fuze__byz_on(ctx)) return FUZE_SUCCESS;
  int rc = byz_state(ctx);
  if (rc || (rc = fuze__agree(&ctx->net, grow_arrays(ctx)))) return rc;
  if ((rc = fuze__agree(&ctx->net, grow_fobjs(ctx)))) return rc;
  fuze_byz *z = ctx->byz;
  int primary = fuze__byz_primary(ctx), full = z->recoveries != ctx->recoveries;
  z->recoveries = ctx->recoveries;
  for (int x = 0; x < ctx->narrays; x++) {
    int r2 = refresh_array(ctx, x, primary, full);
    if (!rc) rc = r2;
  }
  for (int x = 0; x < ctx->nfobjs; x++) {
    int r2 = refresh_fobj(ctx, x, primary, full);
    if (!rc) rc = r2;
  }
  return fuze__agree(&ctx->net, rc);
}
