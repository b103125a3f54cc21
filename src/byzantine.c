/* byzantine: code=byzantine, the MPI side of Theorem 7 (Fig. 6) for arrays.
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
 * makes equal on every correct copy. Stacks and maps are not replicated yet. */
#include "byzantine.h"

#include "byz.h"

#include <isa-l/crc64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_REFRESH 7101
#define TAG_FIX 7102
#define MAX_ARMED 16

typedef struct fuze_byz fuze_byz;

typedef struct byz_arr {
  size_t bytes;        /* primary: bytes when last sent */
  uint64_t *sent;      /* primary: crc64 of every chunk as last sent (NULL: send all) */
  unsigned char **rep; /* holder: replica of held[h] */
  size_t *replen;
} byz_arr;

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
  int narmed;
  armed arm[MAX_ARMED];
};

static int is_byz(const fuze_ctx *ctx) { return ctx->cfg.code == FUZE_CODE_BYZANTINE; }

static void arr_free(fuze_byz *z, byz_arr *ba) {
  free(ba->sent);
  for (int h = 0; ba->rep && h < z->nheld; h++) free(ba->rep[h]);
  free(ba->rep);
  free(ba->replen);
  memset(ba, 0, sizeof *ba);
}

void fuze__byz_free(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  if (!z) return;
  for (int x = 0; x < z->narr; x++) arr_free(z, &z->arr[x]);
  free(z->arr);
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
  if ((rc = fuze__agree(ctx, rc))) return rc;
  MPI_Comm_dup(ctx->world, &z->comm);
  return FUZE_SUCCESS;
}

static int grow_arrays(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  if (z->narr >= ctx->narrays) return FUZE_SUCCESS;
  byz_arr *g = realloc(z->arr, sizeof *g * (size_t)ctx->narrays);
  if (!g) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  z->arr = g;
  for (int x = z->narr; x < ctx->narrays; x++) {
    memset(&g[x], 0, sizeof g[x]);
    g[x].rep = calloc((size_t)(z->nheld ? z->nheld : 1), sizeof *g[x].rep);
    g[x].replen = calloc((size_t)(z->nheld ? z->nheld : 1), sizeof *g[x].replen);
    if (!g[x].rep || !g[x].replen) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
    z->narr = x + 1;
  }
  return FUZE_SUCCESS;
}

size_t fuze__byz_replica_bytes(const fuze_ctx *ctx) {
  const fuze_byz *z = ctx ? ctx->byz : NULL;
  size_t total = 0;
  for (int x = 0; z && x < z->narr; x++)
    for (int h = 0; h < z->nheld; h++) total += z->arr[x].replen[h];
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

int fuze__byz_refresh(fuze_ctx *ctx) {
  if (!is_byz(ctx)) return FUZE_SUCCESS;
  int rc = byz_state(ctx);
  if (rc || (rc = fuze__agree(ctx, grow_arrays(ctx)))) return rc;
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
  return fuze__agree(ctx, rc);
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

static void fire_armed(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
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
      if (m->what == FUZE_BYZ_ARM_PARITY) fuze__win_sync(a->win);
      if (m->mode == FUZE_BYZ_ARM_ZERO) memset(p, 0, n);
      else if (m->mode == FUZE_BYZ_ARM_ALT)
        for (size_t b = 0; b < n; b++) p[b] ^= 0xA5;
      else
        for (size_t b = m->off; b < m->off + m->len && b < n; b++)
          p[b] ^= (unsigned char)(1 + mix(&m->seed) % 255);
      if (m->what == FUZE_BYZ_ARM_PARITY) fuze__win_sync(a->win);
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
    rc = fuze__reduce_to(ctx, b, k + j, coef, data, dlen, a->fused[b], sink_audit, &t);
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
  if ((rc = fuze__agree(ctx, rc))) goto out;
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

static void describe(const fuze_ctx *ctx, const fuze_array *a, int b, const verdict *v) {
  if (!ctx->cfg.verbose || ctx->rank != 0) return;
  printf("fuze: byzantine: '%s' block %d: %s: %s\n", a->name, b,
         v->status == FUZE_BYZ_CORRECTED ? "corrected" : "UNCORRECTABLE", v->msg);
  fflush(stdout);
}

int fuze__byz_check(fuze_ctx *ctx) {
  if (!is_byz(ctx) || !ctx->byz) return FUZE_SUCCESS;
  fuze_byz *z = ctx->byz;
  const fuze_plan *p = &ctx->plan;
  int f = p->f, f1 = f + 1, n = ctx->narrays, rc = FUZE_SUCCESS;
  fire_armed(ctx);
  size_t tl = (size_t)n * (size_t)ctx->size * (size_t)f1;
  uint64_t *tab = calloc(tl ? tl : 1, sizeof *tab);
  unsigned char *mism = calloc((size_t)n * (size_t)p->nblocks + 1, 1);
  if (!tab || !mism) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
  if ((rc = fuze__agree(ctx, rc))) goto out;
  for (int x = 0; x < n; x++) {
    fuze_array *a = ctx->arrays[x];
    uint64_t *t = tab + (size_t)x * (size_t)ctx->size * (size_t)f1;
    if (p->block_of[ctx->rank] >= 0) t[(size_t)ctx->rank * f1] = crc(a->shadow, a->bytes);
    for (int h = 0; h < z->nheld; h++)
      t[(size_t)z->held_rank[h] * f1 + z->held_c[h]] = crc(z->arr[x].rep[h], z->arr[x].replen[h]);
  }
  MPI_Allreduce(MPI_IN_PLACE, tab, (int)tl, MPI_UINT64_T, MPI_BXOR, z->comm);
  for (int x = 0; x < n; x++)
    for (int r = 0; r < ctx->size; r++) {
      int b = p->block_of[r];
      const uint64_t *t = tab + ((size_t)x * (size_t)ctx->size + (size_t)r) * f1;
      for (int c = 1; b >= 0 && c < f1; c++)
        if (t[c] != t[0]) mism[x * p->nblocks + b] = 1;
    }
  long fixed = 0, total = 0;
  int corrected = 0, bad_x = -1, bad_b = -1;
  verdict first_bad;
  for (int x = 0; x < n && !rc; x++)
    for (int b = 0; b < p->nblocks && !rc; b++) {
      if (mism[x * p->nblocks + b]) {
        verdict v;
        rc = correct_block(ctx, x, b, &v);
        if (rc) break;
        if (v.status == FUZE_BYZ_CORRECTED) corrected++;
        if (v.status == FUZE_BYZ_UNCORRECTABLE && bad_x < 0) bad_x = x, bad_b = b, first_bad = v;
        if (v.status == FUZE_BYZ_CORRECTED || v.status == FUZE_BYZ_UNCORRECTABLE)
          describe(ctx, ctx->arrays[x], b, &v);
        if (v.status < 0) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "byzantine: out of memory");
      } else if (ctx->block_comm[b] != MPI_COMM_NULL) {
        rc = audit_block(ctx, ctx->arrays[x], b, &fixed);
      }
    }
  if ((rc = fuze__agree(ctx, rc))) goto out;
  MPI_Allreduce(&fixed, &total, 1, MPI_LONG, MPI_SUM, z->comm);
  if (bad_x >= 0) {
    rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "byzantine: array '%s' block %d is uncorrectable (%s): "
                 "more than faults=%d copies or backups are wrong; nothing in that block was "
                 "modified", ctx->arrays[bad_x]->name, bad_b, first_bad.msg, f);
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
