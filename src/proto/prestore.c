/* prestore: the restart's rebuild of lost rank files by reductions over the
 * blocks, and the registrations after a restart that take their backups'
 * parity from the files instead of encoding it again.
 *
 * Rebuild (fuze_init, after every rank checked its own file of epoch E):
 * 1. the lowest rank whose file is good broadcasts the metadata every file
 *    of the epoch shares (job, epoch, structures, array counts); every good
 *    rank checks its own file against it (fuze__pfile_same_job);
 * 2. for every structure and every block with a lost member (primary or
 *    backup host), in the same order on every rank, over the block's
 *    communicator: each lost primary is decoded with one fuze__reduce_to
 *    (the in-job recovery's reduction: k survivors contribute their data
 *    scaled by the decode coefficient, the lost rank is the root); a lost
 *    stack/map primary first takes its count, operation count and keys from
 *    one surviving backup's replica; then each lost backup region is
 *    encoded again from the k (now complete) primaries the same way.
 * Survivors only read their own file (already in memory from the check) and
 * contribute to the blocks they belong to; no rank receives another's file.
 * The rebuilt model is written by the caller (persist.c).
 *
 * Load (fuze_protect, fuze_stack_create, fuze_map_create after a restart):
 * every rank's file holds the committed parity of the regions it hosts, at
 * the same layout as the live window, so the window's working and committed
 * halves are filled from it and the primary's committed copy from its data:
 * nothing is encoded or sent. When any rank cannot (a region missing or of
 * another size), every rank falls back to encoding, and verbose says why. */
#include "proto/persist.h"
#include "comm/coll.h"
#include "comm/transport.h"
#include "core/code.h"
#include "core/pfile.h"
#include "data/array.h"
#include "data/fused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. the shared metadata ---- */

typedef struct meta_head {
  uint64_t job_id, epoch;
  int64_t calls;
  uint32_t version;
  int32_t f, spares, code, nstructs;
} meta_head;

typedef struct meta_rec {
  char name[FUZE_PFILE_NAME_MAX];
  char type_name[32];
  int32_t kind, has_counts;
  uint64_t elem, kb, nb, cap;
} meta_rec;

static size_t meta_size(const fuze_pfile *m) {
  size_t n = sizeof(meta_head) + (size_t)m->nstructs * sizeof(meta_rec);
  for (int s = 0; s < m->nstructs; s++)
    if (m->structs[s].rank_counts) n += sizeof(uint64_t) * (size_t)m->ranks;
  return n;
}

static void meta_pack(const fuze_pfile *m, unsigned char *out) {
  meta_head h = {m->job_id, m->epoch, m->ckpt_calls, m->version, m->f, m->spares, m->code,
                 m->nstructs};
  memcpy(out, &h, sizeof h);
  out += sizeof h;
  for (int s = 0; s < m->nstructs; s++) {
    const fuze_pstruct *ps = &m->structs[s];
    meta_rec r;
    memset(&r, 0, sizeof r);
    memcpy(r.name, ps->name, sizeof r.name);
    memcpy(r.type_name, ps->type_name, sizeof r.type_name);
    r.kind = ps->kind, r.has_counts = ps->rank_counts != NULL;
    r.elem = ps->elem, r.kb = ps->kb, r.nb = ps->nb, r.cap = ps->cap;
    memcpy(out, &r, sizeof r);
    out += sizeof r;
  }
  for (int s = 0; s < m->nstructs; s++)
    if (m->structs[s].rank_counts) {
      memcpy(out, m->structs[s].rank_counts, sizeof(uint64_t) * (size_t)m->ranks);
      out += sizeof(uint64_t) * (size_t)m->ranks;
    }
}

/* A model of this rank with the shared metadata and no data. */
static int meta_unpack(fuze_ctx *ctx, const unsigned char *in, size_t len, fuze_pfile *m) {
  memset(m, 0, sizeof *m);
  meta_head h;
  if (len < sizeof h) return FUZE_ERR_CORRUPT;
  memcpy(&h, in, sizeof h);
  in += sizeof h;
  m->version = h.version, m->job_id = h.job_id, m->epoch = h.epoch, m->ckpt_calls = h.calls;
  m->rank = ctx->rank, m->ranks = ctx->size, m->f = h.f, m->spares = h.spares, m->code = h.code;
  if (fuze__plan_copy(&m->plan, &ctx->plan)) return FUZE_ERR_NOMEM;
  m->structs = calloc((size_t)(h.nstructs > 0 ? h.nstructs : 1), sizeof *m->structs);
  int nreg = h.nstructs * fuze__plan_load(&ctx->plan, ctx->rank);
  m->regions = calloc((size_t)(nreg > 0 ? nreg : 1), sizeof *m->regions);
  if (!m->structs || !m->regions) return FUZE_ERR_NOMEM;
  const unsigned char *counts = in + (size_t)h.nstructs * sizeof(meta_rec);
  for (int s = 0; s < h.nstructs; s++) {
    meta_rec r;
    memcpy(&r, in + (size_t)s * sizeof r, sizeof r);
    fuze_pstruct *ps = &m->structs[m->nstructs++];
    memcpy(ps->name, r.name, sizeof ps->name);
    ps->name[sizeof ps->name - 1] = 0;
    memcpy(ps->type_name, r.type_name, sizeof ps->type_name);
    ps->type_name[sizeof ps->type_name - 1] = 0;
    ps->kind = r.kind, ps->elem = r.elem, ps->kb = r.kb, ps->nb = r.nb, ps->cap = r.cap;
    if (!r.has_counts) continue;
    ps->rank_counts = malloc(sizeof(uint64_t) * (size_t)ctx->size);
    if (!ps->rank_counts) return FUZE_ERR_NOMEM;
    memcpy(ps->rank_counts, counts, sizeof(uint64_t) * (size_t)ctx->size);
    counts += sizeof(uint64_t) * (size_t)ctx->size;
  }
  return FUZE_SUCCESS;
}

/* Collective: *skel := the reference rank's metadata on every rank; good
 * ranks check their own file against it. Agreed. */
static int share_meta(fuze_ctx *ctx, uint64_t E, const int *bad, const fuze_pfile *mine,
                      fuze_pfile *skel) {
  int ref = 0;
  while (ref < ctx->size && bad[ref]) ref++;
  if (ref == ctx->size)
    return fuze__agree(&ctx->net, CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "restart: no rank has "
                                          "its file of epoch %llu", (unsigned long long)E));
  uint64_t len = ctx->rank == ref ? meta_size(mine) : 0;
  int rc = FUZE_MPI(ctx->msg, MPI_Bcast(&len, 1, MPI_UINT64_T, ref, ctx->net.comm));
  if (rc) return rc;
  unsigned char *buf = malloc(len ? len : 1);
  if ((rc = fuze__agree(&ctx->net, buf ? FUZE_SUCCESS : FUZE_NOMEM(ctx->msg, "restart")))) {
    free(buf);
    return rc;
  }
  if (ctx->rank == ref) meta_pack(mine, buf);
  rc = fuze__bcast_bytes(&ctx->net, ctx->net.comm, buf, len, ref);
  if (!rc && (rc = meta_unpack(ctx, buf, len, skel)))
    rc = CTX_ERR(ctx, rc, "restart: %s the structures of rank %d's file",
                 rc == FUZE_ERR_NOMEM ? "out of memory for" : "cannot read", ref);
  free(buf);
  char err[FUZE_MSG_LEN] = "";
  if (!rc && !bad[ctx->rank] && fuze__pfile_same_job(skel, mine, err))
    rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "restart: rank %d's file of epoch %llu disagrees with "
                 "rank %d's: %s", ctx->rank, (unsigned long long)E, ref, err);
  return fuze__agree(&ctx->net, rc);
}

/* ---- 2. decoding over the blocks ---- */

static fuze_pregion *find_region(const fuze_pfile *m, int s, int b, int j) {
  for (int x = 0; x < m->nregions; x++)
    if (m->regions[x].s == s && m->regions[x].block == b && m->regions[x].j == j)
      return &m->regions[x];
  return NULL;
}

static int nonzero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 1;
  return 0;
}

typedef struct into {
  unsigned char *buf;
  size_t len;
} into;

static void sink_into(void *arg, size_t off, const unsigned char *res, size_t n) {
  into *t = arg;
  if (off >= t->len) return;
  memcpy(t->buf + off, res, t->len - off < n ? t->len - off : n);
}

typedef struct blk {
  fuze_ctx *ctx;
  fuze_pfile *mine;
  const fuze_pfile *skel;
  int s, b, k, f, me, arr;
  unsigned char erased[FUZE_GF_MEMBERS2];
  MPI_Comm comm;
  size_t bytes;         /* region bytes */
  fuze_fobj_layout L;   /* stacks/maps */
  int vrc;              /* first validation error (the reductions go on) */
} blk;

/* This rank's data as block member x's contribution (NULL: none). Arrays:
 * the primary's elements or the whole region; stacks/maps: the values or the
 * region's nodes. */
static const unsigned char *contribution(blk *x, size_t *len) {
  *len = 0;
  if (x->erased[x->me] && !(x->me < x->k && x->mine->structs[x->s].data)) return NULL;
  if (x->me < x->k) {
    const fuze_pstruct *ps = &x->mine->structs[x->s];
    *len = ps->count * (x->arr ? ps->elem : ps->nb);
    return ps->data;
  }
  fuze_pregion *g = find_region(x->mine, x->s, x->b, x->me - x->k);
  if (!g) return NULL;
  *len = x->arr ? g->bytes : x->L.bytes - x->L.nodes_off;
  return x->arr ? g->data : g->data + x->L.nodes_off;
}

/* The first validation error is kept; the reductions go on. */
static void verr(blk *x, const char *what, int i) {
  if (!x->vrc)
    x->vrc = CTX_ERR(x->ctx, FUZE_ERR_CORRUPT, "restart: '%s' block %d member %d: %s",
                     x->mine->structs[x->s].name, x->b, i, what);
}

/* Lost primary i of a stack/map: its header and key replica from the first
 * surviving backup host. */
static int take_header(blk *x, int i, int j0) {
  fuze_pstruct *ps = &x->mine->structs[x->s];
  size_t pre = x->L.nodes_off, dlen = 0;
  const unsigned char *data = NULL;
  if (x->me == x->k + j0) {
    fuze_pregion *g = find_region(x->mine, x->s, x->b, j0);
    data = g ? g->data : NULL, dlen = g ? pre : 0;
  }
  into t = {x->me == i ? calloc(pre ? pre : 1, 1) : NULL, pre};
  if (x->me == i && !t.buf) return FUZE_NOMEM(x->ctx->msg, "restart");
  int rc = fuze__reduce_to(&x->ctx->net, x->comm, x->b, i, 1, data, dlen, pre, sink_into, &t);
  if (!rc && x->me == i) {
    uint64_t cnt, seq;
    memcpy(&cnt, t.buf + fuze__hdr_off(i), sizeof cnt);
    memcpy(&seq, t.buf + fuze__hdr_off(i) + sizeof cnt, sizeof seq);
    const unsigned char *keys = t.buf + x->L.keys_off + (size_t)i * ps->cap * ps->kb;
    if (cnt > ps->cap) {
      verr(x, "the backup's index replica holds more entries than the capacity", i);
    } else if (nonzero(keys + cnt * ps->kb, (ps->cap - cnt) * ps->kb)) {
      verr(x, "the key replica has stray bytes past its entries", i);
    } else {
      ps->count = (size_t)cnt, ps->seq = seq;
      if (ps->kb && cnt) {
        ps->keys = malloc(cnt * ps->kb);
        if (!ps->keys) rc = FUZE_NOMEM(x->ctx->msg, "restart");
        else memcpy(ps->keys, keys, cnt * ps->kb);
      }
    }
  }
  free(t.buf);
  return rc;
}

/* Lost primary i: decoded at its rank. */
static int decode_primary(blk *x, int i, const int *rows, const unsigned char *D) {
  unsigned char coef[FUZE_GF_MEMBERS2];
  memset(coef, 0, sizeof coef);
  for (int s = 0; s < x->k; s++) coef[rows[s]] = D[i * x->k + s];
  fuze_pstruct *ps = &x->mine->structs[x->s];
  size_t span = x->arr ? x->bytes : x->L.bytes - x->L.nodes_off, dlen;
  const unsigned char *data = contribution(x, &dlen);
  into t = {x->me == i ? calloc(span ? span : 1, 1) : NULL, span};
  if (x->me == i && !t.buf) return FUZE_NOMEM(x->ctx->msg, "restart");
  int rc = fuze__reduce_to(&x->ctx->net, x->comm, x->b, i, coef[x->me], data, dlen, span, sink_into,
                           &t);
  if (!rc && x->me == i) {
    size_t unit = x->arr ? ps->elem : ps->nb;
    if (x->arr) ps->count = (size_t)ps->rank_counts[x->ctx->rank];
    size_t used = ps->count * unit;
    if (used > span || nonzero(t.buf + used, span - used)) {
      verr(x, "decoded with stray bytes past its end: the surviving files disagree", i);
    } else if (used) {
      ps->data = t.buf;
      t.buf = NULL;
    }
  }
  free(t.buf);
  return rc;
}

/* A stack/map member's header line and key replica, placed as in a region
 * (n = nodes_off bytes); NULL when it holds nothing. */
static unsigned char *member_prefix(blk *x, int *rc) {
  const fuze_pstruct *ps = &x->mine->structs[x->s];
  if (x->me >= x->k || (!ps->count && !ps->seq)) return NULL;
  unsigned char *p = calloc(x->L.nodes_off ? x->L.nodes_off : 1, 1);
  if (!p) {
    *rc = FUZE_NOMEM(x->ctx->msg, "restart");
    return NULL;
  }
  uint64_t cnt = ps->count, seq = ps->seq;
  memcpy(p + fuze__hdr_off(x->me), &cnt, sizeof cnt);
  memcpy(p + fuze__hdr_off(x->me) + sizeof cnt, &seq, sizeof seq);
  if (ps->kb && cnt) memcpy(p + x->L.keys_off + (size_t)x->me * ps->cap * ps->kb, ps->keys, cnt * ps->kb);
  return p;
}

/* Lost backup j: encoded again at its host from the k primaries. */
static int encode_backup(blk *x, int j) {
  unsigned char coef[FUZE_GF_MEMBERS2];
  memset(coef, 0, sizeof coef);
  for (int i = 0; i < x->k; i++) coef[i] = fuze__code_coef(&x->ctx->codes[x->b], j, i);
  int root = x->k + j, rc = FUZE_SUCCESS;
  unsigned char *region = NULL;
  if (x->me == root && !(region = calloc(x->bytes ? x->bytes : 1, 1)))
    return FUZE_NOMEM(x->ctx->msg, "restart");
  if (!x->arr) { /* header lines and key replicas: each member's own, xored together */
    unsigned char *p = member_prefix(x, &rc);
    into t = {region, x->L.nodes_off};
    if (!rc) rc = fuze__reduce_to(&x->ctx->net, x->comm, x->b, root, 1, p, p ? x->L.nodes_off : 0,
                                  x->L.nodes_off, sink_into, &t);
    free(p);
  }
  size_t off = x->arr ? 0 : x->L.nodes_off, dlen = 0;
  const unsigned char *data = x->me < x->k ? contribution(x, &dlen) : NULL;
  into t = {region ? region + off : NULL, x->bytes - off};
  if (!rc) rc = fuze__reduce_to(&x->ctx->net, x->comm, x->b, root, x->me < x->k ? coef[x->me] : 0,
                                data, dlen, x->bytes - off, sink_into, &t);
  if (!rc && x->me == root) {
    x->mine->regions[x->mine->nregions++] = (fuze_pregion){x->s, x->b, j, x->bytes, region};
    region = NULL;
  }
  free(region);
  return rc;
}

static int rebuild_block(fuze_ctx *ctx, fuze_pfile *mine, const fuze_pfile *skel, int s, int b,
                         const int *bad, int *vrc) {
  const fuze_plan *p = &ctx->plan;
  blk x;
  memset(&x, 0, sizeof x);
  x.ctx = ctx, x.mine = mine, x.skel = skel, x.s = s, x.b = b, x.f = p->f, x.comm = ctx->block_comm[b];
  x.k = p->block_start[b + 1] - p->block_start[b];
  int nlost = 0, lostp = 0, j0 = -1;
  for (int i = 0; i < x.k; i++) lostp += x.erased[i] = (unsigned char)(bad[p->members[p->block_start[b] + i]] != 0);
  for (int j = 0; j < x.f; j++) {
    x.erased[x.k + j] = (unsigned char)(bad[p->hosts[b * x.f + j]] != 0);
    if (!x.erased[x.k + j] && j0 < 0) j0 = j;
  }
  for (int y = 0; y < x.k + x.f; y++) nlost += x.erased[y];
  if (!nlost || x.comm == MPI_COMM_NULL) return FUZE_SUCCESS;
  int rc = FUZE_MPI(ctx->msg, MPI_Comm_rank(x.comm, &x.me));
  if (rc) return rc;
  const fuze_pstruct *st = &skel->structs[s];
  x.arr = st->kind == FUZE_PS_ARRAY;
  x.bytes = fuze__pfile_region_bytes(skel, s, b);
  if (!x.arr) x.L = fuze__fobj_layout(x.k, st->cap, st->kb, st->nb);
  if (lostp) {
    int rows[FUZE_GF_MEMBERS];
    unsigned char D[FUZE_GF_MEMBERS * FUZE_GF_MEMBERS];
    if ((rc = fuze__code_decode_matrix(&ctx->codes[b], x.erased, rows, D)))
      return CTX_ERR(ctx, rc, "restart: %s", fuze__thread_msg());
    for (int i = 0; i < x.k && !rc; i++) {
      if (!x.erased[i]) continue;
      if (!x.arr) rc = take_header(&x, i, j0);
      if (!rc) rc = decode_primary(&x, i, rows, D);
    }
  }
  for (int j = 0; j < x.f && !rc; j++)
    if (x.erased[x.k + j]) rc = encode_backup(&x, j);
  if (!*vrc) *vrc = x.vrc;
  return rc;
}

int fuze__persist_rebuild(fuze_ctx *ctx, uint64_t E, const int *bad, fuze_pfile *mine) {
  fuze_pfile skel;
  memset(&skel, 0, sizeof skel);
  int rc = share_meta(ctx, E, bad, mine, &skel), nbad = 0;
  for (int r = 0; r < ctx->size; r++) nbad += bad[r] != 0;
  if (rc || !nbad) {
    fuze__pfile_free(&skel);
    return rc;
  }
  if (bad[ctx->rank]) { /* the rebuilt model starts as the metadata */
    *mine = skel;
    memset(&skel, 0, sizeof skel);
  }
  int vrc = FUZE_SUCCESS;
  for (int s = 0; s < mine->nstructs && !rc; s++)
    for (int b = 0; b < ctx->plan.nblocks && !rc; b++)
      rc = rebuild_block(ctx, mine, bad[ctx->rank] ? mine : &skel, s, b, bad, &vrc);
  fuze__pfile_free(&skel);
  return fuze__agree(&ctx->net, rc ? rc : vrc);
}

/* ---- the registrations after a restart ---- */

/* Collective: 1 when every rank can (ok), else 0 and rank 0 says why when
 * verbose (the first rank that cannot, and its reason). */
static int all_can(fuze_ctx *ctx, int ok, const char *why, const char *what, const char *name) {
  int first = ok ? ctx->size : ctx->rank;
  if (FUZE_MPI(ctx->msg, MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, ctx->net.comm)))
    return -1;
  if (first == ctx->size) return 1;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", ok ? "" : why);
  if (FUZE_MPI(ctx->msg, MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, first, ctx->net.comm))) return -1;
  if (ctx->cfg.verbose && ctx->rank == 0) {
    printf("fuze: %s('%s'): encoding the parity again instead of loading it from the restarted "
           "files: rank %d: %s\n", what, name, first, buf);
    fflush(stdout);
  }
  return 0;
}

/* Test hook: FUZE_DEBUG_RESTART_ENCODE=R makes rank R report that it cannot
 * load, so that the fallback (every rank encodes, verbose says why) is
 * exercised (test restart_load_*). */
static int debug_refuse(const fuze_ctx *ctx, char *why, size_t len) {
  const char *e = getenv("FUZE_DEBUG_RESTART_ENCODE");
  if (!e || !*e || atoi(e) != ctx->rank) return 0;
  snprintf(why, len, "FUZE_DEBUG_RESTART_ENCODE=%d asks this rank to encode", ctx->rank);
  return 1;
}

/* Index of this rank's stored structure `name`, or -1. */
static int stored_index(const fuze_ctx *ctx, const char *name, int kind) {
  const fuze_pstruct *ps = fuze__persist_find(ctx, name, kind);
  return ps ? (int)(ps - ctx->restore->structs) : -1;
}

int fuze__persist_load_array(fuze_ctx *ctx, fuze_array *a) {
  if (!ctx->restore) return 0; /* the same on every rank: set by the agreed restart */
  fuze_pfile *m = ctx->restore;
  int s = stored_index(ctx, a->name, FUZE_PS_ARRAY), ok = s >= 0;
  char why[200] = "the restarted epoch holds no array of that name";
  if (ok && !ctx->is_spare && m->structs[s].count * m->structs[s].elem != a->bytes) {
    ok = 0;
    snprintf(why, sizeof why, "%zu bytes registered, %zu stored", a->bytes,
             m->structs[s].count * m->structs[s].elem);
  }
  for (int h = 0; ok && h < a->nhosted; h++) {
    const fuze_pregion *g = find_region(m, s, a->hosted[h].block, a->hosted[h].j);
    if (!g || g->bytes != a->hosted[h].fused) {
      ok = 0;
      snprintf(why, sizeof why, "backup %d of block %d: %zu bytes in the window, %zu in the file",
               a->hosted[h].j, a->hosted[h].block, a->hosted[h].fused, g ? g->bytes : 0);
    }
  }
  if (ok && debug_refuse(ctx, why, sizeof why)) ok = 0;
  int all = all_can(ctx, ok, why, "fuze_protect", a->name);
  if (all <= 0) return all < 0 ? FUZE_ERR_MPI : 0;
  /* The committed copy is the stored data (restore_array put it in the
   * buffer); both halves of every hosted region are the stored parity. */
  if (a->bytes) memcpy(a->shadow, m->structs[s].data, a->bytes);
  int rc = fuze__win_sync(&ctx->net, a->win);
  for (int h = 0; h < a->nhosted; h++) {
    size_t n = a->hosted[h].fused;
    if (!n) continue;
    const fuze_pregion *g = find_region(m, s, a->hosted[h].block, a->hosted[h].j);
    memcpy(a->winbase + a->hosted[h].off, g->data, n);
    memcpy(fuze__array_committed(a, h), g->data, n);
  }
  int rc2 = fuze__win_sync(&ctx->net, a->win);
  a->ndirty = 0;
  /* Agreed: no rank sends into a window before its host filled it. */
  rc = fuze__agree(&ctx->net, rc ? rc : rc2);
  return rc ? rc : 1;
}

int fuze__persist_restore_fobj(fuze_fobj *f, const fuze_pstruct *ps) {
  fuze_ctx *ctx = f->ctx;
  fuze_pfile *m = ctx->restore;
  int s = (int)(ps - m->structs), ok = 1;
  char why[200] = "";
  if (ps->count > f->cap) {
    ok = 0;
    snprintf(why, sizeof why, "%zu entries stored, capacity %zu", ps->count, f->cap);
  }
  for (int h = 0; ok && h < f->nhosted; h++) {
    const fuze_pregion *g = find_region(m, s, f->hosted[h].block, f->hosted[h].j);
    if (!g || g->bytes != f->hosted[h].fused) {
      ok = 0;
      snprintf(why, sizeof why, "backup %d of block %d: %zu bytes in the window, %zu in the file",
               f->hosted[h].j, f->hosted[h].block, f->hosted[h].fused, g ? g->bytes : 0);
    }
  }
  if (ok && debug_refuse(ctx, why, sizeof why)) ok = 0;
  int all = all_can(ctx, ok, why, f->kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create",
                    f->name);
  if (all < 0) return FUZE_ERR_MPI;
  if (!all) return fuze__fobj_restore(f, ps->count, ps->seq, ps->keys, ps->data);
  int rc = FUZE_SUCCESS;
  if (!ctx->is_spare && fuze__fobj_restore_state(f, ps->count, ps->seq, ps->keys, ps->data))
    rc = FUZE_NOMEM(ctx->msg, "restart");
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  int rc1 = fuze__fobj_sync(f);
  for (int h = 0; h < f->nhosted; h++) {
    const fuze_pregion *g = find_region(m, s, f->hosted[h].block, f->hosted[h].j);
    unsigned char *w = f->winbase + f->hosted[h].off;
    memcpy(w, g->data, g->bytes);
    memcpy(w + f->hosted[h].fused, g->data, g->bytes);
  }
  int rc2 = fuze__fobj_sync(f), rc3 = fuze__barrier(&ctx->net);
  return fuze__agree(&ctx->net, rc1 ? rc1 : rc2 ? rc2 : rc3);
}
