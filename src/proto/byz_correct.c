/* byz_correct: Fig. 6 for one (structure, block) whose copies differ, the
 * rare path of code=byzantine (byzantine.c's step 3). Collective over every
 * rank (fuze_byz.comm); the block's first member (the leader) decides.
 *
 * One protocol for arrays and stacks/maps. A block's objects are numbered
 * o = i * (f + 1) + c for copy c of member i (copy 0 the primary's committed
 * state, 1..f its replicas) and o = k * (f + 1) + j for backup j:
 *   gather   every holder exports the objects it holds and sends each to the
 *            leader, which learns their lengths by MPI_Probe;
 *   vote     the leader builds Fig. 6's input from them and runs it (byz.c);
 *            the verdict and the flags of the faulty objects are broadcast,
 *            the leader encodes the correct form of every faulty object, and
 *            one agreement carries every error so far;
 *   scatter  (corrected only) each faulty object's correct form to its
 *            holder, which applies it; the outcome is agreed.
 * Every rank takes part in the gather and the vote whatever failed before
 * (an export or allocation that failed sends or keeps nothing), so nothing
 * is agreed before the vote; the buffers indexed by object are the mode's
 * (byz_work), allocated once. Nothing is modified before the agreement.
 * More than f faulty objects, or no value of multiplicity f + 1: the verdict
 * is UNCORRECTABLE and nothing is modified.
 *
 * What differs per structure is one table (byz_kind): how a holder exports an
 * object, how the leader builds the vote's input and encodes a correction, and
 * how a holder applies one. Arrays: an object is its bytes, zero padded to the
 * block's fused size; the vote corrects them in place. Stacks and maps: a copy
 * is a serialized state, expanded to (index part, value part) padded to the
 * capacity; a backup is its committed region, whose header and key replicas
 * are its index parts and whose nodes are its parity. */
#include "proto/byz_internal.h"

#include "comm/coll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vote vote;

/* The per-structure part. Return values: 0, or -1 when out of memory
 * (export and apply: a FUZE_ code, message recorded). */
typedef struct byz_kind {
  int (*export)(vote *w, int o, byz_buf *out);   /* holder: o as it stands here */
  int (*build)(vote *w);                         /* leader: w->blk from w->raw */
  int (*fixed)(vote *w, int o, byz_buf *out);    /* leader: o's correct form */
  /* Holder: where o's correct form (len bytes) can be received in place, or
   * NULL (a buffer); NULL member: always a buffer. */
  unsigned char *(*inplace)(vote *w, int o, size_t len);
  int (*apply)(vote *w, int o, const unsigned char *p, size_t len); /* holder: it takes effect */
  void (*release)(vote *w);                      /* what build allocated (NULL: nothing) */
} byz_kind;

struct vote {
  fuze_ctx *ctx;
  const byz_kind *ops;
  int x, b, k, f, f1, nobj, L, me;
  size_t pad;            /* the leader pads gathered objects with zeros to this many bytes */
  unsigned char *flags;  /* the faulty objects (the vote's result) */
  byz_buf *mine;         /* gather: what this rank exports; scatter: the leader's corrections */
  unsigned char **raw;   /* leader: every object as gathered */
  size_t *rawlen;
  MPI_Request *req;
  fuze_byz_block blk;    /* leader: the vote's input */
};

/* ---- objects ---- */

static int is_copy(const vote *w, int o) { return o < w->k * w->f1; }
static int backup_of(const vote *w, int o) { return o - w->k * w->f1; }

/* The rank whose copy object o is. */
static int member_rank(const vote *w, int o) {
  const fuze_plan *p = &w->ctx->plan;
  return p->members[p->block_start[w->b] + o / w->f1];
}

static int holder(const vote *w, int o) {
  const fuze_plan *p = &w->ctx->plan;
  if (!is_copy(w, o)) return p->hosts[w->b * p->f + backup_of(w, o)];
  int r = member_rank(w, o), c = o % w->f1;
  return c ? w->ctx->byz->place[r * p->f + c - 1] : r;
}

static int nomem(const vote *w) { return FUZE_NOMEM(w->ctx->msg, "byzantine"); }

/* The buffers are the mode's (byz_work, sized for the largest block): the
 * same plan on every rank, so a failure here is the same everywhere. */
static int vote_init(vote *w, fuze_ctx *ctx, const byz_kind *ops, int x, int b, size_t pad) {
  const fuze_plan *p = &ctx->plan;
  byz_work *wk = &ctx->byz->work;
  memset(w, 0, sizeof *w);
  w->ctx = ctx, w->ops = ops, w->x = x, w->b = b;
  w->k = fuze__byz_k(ctx, b), w->f = p->f, w->f1 = p->f + 1;
  w->nobj = w->k * w->f1 + w->f;
  w->L = p->members[p->block_start[b]], w->me = ctx->rank;
  w->pad = pad ? pad : 1;
  if (w->nobj > wk->cap)
    return CTX_ERR(ctx, FUZE_ERR_STATE, "byzantine: block %d has %d objects, more than planned "
                   "(%d)", b, w->nobj, wk->cap);
  size_t n = (size_t)w->nobj;
  w->flags = memset(wk->flags, 0, n);
  w->mine = memset(wk->mine, 0, n * sizeof *wk->mine);
  w->raw = memset(wk->raw, 0, n * sizeof *wk->raw);
  w->rawlen = memset(wk->rawlen, 0, n * sizeof *wk->rawlen);
  w->req = wk->req;
  return FUZE_SUCCESS;
}

static void drop_mine(vote *w) {
  for (int o = 0; w->mine && o < w->nobj; o++) {
    if (w->mine[o].owned) free(w->mine[o].p);
    memset(&w->mine[o], 0, sizeof w->mine[o]);
  }
}

static void vote_free(vote *w) {
  if (w->ops->release) w->ops->release(w);
  drop_mine(w);
  for (int o = 0; w->raw && o < w->nobj; o++) free(w->raw[o]);
}

/* ---- gather ---- */

/* Leader: object o from holder h, its length from MPI_Probe, into a zero
 * padded buffer (out of memory: consumed all the same). */
static void gather_one(vote *w, int o, int h, int *rc) {
  size_t n;
  if (!fuze__byz_probe(w->ctx, h, FUZE_BYZ_TAG_GATHER, &n, rc)) return;
  w->raw[o] = calloc(n > w->pad ? n : w->pad, 1);
  if (!w->raw[o] && !*rc) *rc = nomem(w);
  if (fuze__byz_take(w->ctx, h, FUZE_BYZ_TAG_GATHER, w->raw[o], n, rc)) w->rawlen[o] = n;
}

/* Holders export every object they hold and send it to the leader, even an
 * empty one (an export that failed sends nothing); the leader keeps its own
 * and receives the others in object order. Every rank does all of it,
 * whatever failed before: returns the first error (not agreed). */
static int gather(vote *w, int rc) {
  int nreq = 0, lead = w->me == w->L;
  for (int o = 0; o < w->nobj; o++) {
    if (holder(w, o) != w->me) continue;
    byz_buf *m = &w->mine[o];
    int r2 = w->ops->export(w, o, m);
    if (!rc) rc = r2;
    if (r2) m->len = 0;
    if (lead) {
      w->raw[o] = calloc(m->len > w->pad ? m->len : w->pad, 1);
      if (!w->raw[o] && !rc) rc = nomem(w);
      if (w->raw[o] && m->len) memcpy(w->raw[o], m->p, m->len);
      w->rawlen[o] = w->raw[o] ? m->len : 0;
    } else if (FUZE_MPI_KEEP(rc, w->ctx->msg, MPI_Isend(m->p, (int)m->len, MPI_BYTE, w->L,
                                                       FUZE_BYZ_TAG_GATHER, w->ctx->byz->comm,
                                                       &w->req[nreq]))) {
      nreq++;
    }
  }
  for (int o = 0; lead && o < w->nobj; o++)
    if (holder(w, o) != w->me) gather_one(w, o, holder(w, o), &rc);
  FUZE_MPI_KEEP(rc, w->ctx->msg, MPI_Waitall(nreq, w->req, MPI_STATUSES_IGNORE));
  drop_mine(w);
  return rc;
}

/* ---- vote ---- */

/* Leader: Fig. 6 on the gathered objects; flags and verdict. */
static int decide(vote *w, byz_verdict *v) {
  if (w->ops->build(w)) return nomem(w);
  int *truth = malloc(sizeof(int) * (size_t)w->k);
  if (!truth) return nomem(w);
  fuze_byz_result res;
  memset(&res, 0, sizeof res);
  res.bad = w->flags;
  res.truth = truth;
  int st = fuze__byz_check_block(&w->blk, &res, 1);
  v->status = st < 0 ? -1 : st;
  v->nbad = res.nbad;
  snprintf(v->msg, sizeof v->msg, "%s", st < 0 ? "out of memory" : res.msg);
  free(truth);
  return FUZE_SUCCESS;
}

/* ---- scatter ---- */

/* Leader: the correct form of every faulty object. */
static int encode_fixes(vote *w) {
  for (int o = 0; o < w->nobj; o++)
    if (w->flags[o] && w->ops->fixed(w, o, &w->mine[o])) return nomem(w);
  return FUZE_SUCCESS;
}

/* Holder: faulty object o's correct form from the leader (length by
 * MPI_Probe; in place when the kind allows), applied once received. */
static void receive_fix(vote *w, int o, int *rc) {
  size_t n;
  if (!fuze__byz_probe(w->ctx, w->L, FUZE_BYZ_TAG_FIX, &n, rc)) return;
  unsigned char *at = w->ops->inplace ? w->ops->inplace(w, o, n) : NULL;
  unsigned char *buf = at ? NULL : malloc(n ? n : 1);
  if (!at && !buf && !*rc) *rc = nomem(w);
  if (fuze__byz_take(w->ctx, w->L, FUZE_BYZ_TAG_FIX, at ? at : buf, n, rc)) {
    int r2 = w->ops->apply(w, o, at ? at : buf, n);
    if (!*rc) *rc = r2;
  }
  free(buf);
}

/* Every faulty object to its holder, applied there. Returns an agreed code. */
static int scatter(vote *w) {
  int rc = FUZE_SUCCESS, nreq = 0;
  for (int o = 0; o < w->nobj; o++) {
    if (!w->flags[o]) continue;
    w->ctx->pforce = 1; /* corrected bytes carry no persist_base change marks */
    int h = holder(w, o);
    const byz_buf *m = &w->mine[o];
    if (w->me == w->L && h == w->me) {
      int r2 = w->ops->apply(w, o, m->p, m->len);
      if (!rc) rc = r2;
    } else if (w->me == w->L) {
      if (FUZE_MPI_KEEP(rc, w->ctx->msg, MPI_Isend(m->p, (int)m->len, MPI_BYTE, h, FUZE_BYZ_TAG_FIX,
                                                   w->ctx->byz->comm, &w->req[nreq])))
        nreq++;
    } else if (h == w->me) {
      receive_fix(w, o, &rc);
    }
  }
  FUZE_MPI_KEEP(rc, w->ctx->msg, MPI_Waitall(nreq, w->req, MPI_STATUSES_IGNORE));
  return fuze__agree(&w->ctx->net, rc);
}

/* The whole protocol; rc: this rank's error so far. Every rank gathers and
 * takes the verdict whatever failed; then one agreement; then (corrected
 * only) the scatter and a second agreement. */
static int correct(vote *w, byz_verdict *v, int rc) {
  MPI_Comm comm = w->ctx->byz->comm;
  memset(v, 0, sizeof *v);
  rc = gather(w, rc);
  if (!rc && w->me == w->L) rc = decide(w, v);
  FUZE_MPI_KEEP(rc, w->ctx->msg, MPI_Bcast(v, (int)sizeof *v, MPI_BYTE, w->L, comm));
  FUZE_MPI_KEEP(rc, w->ctx->msg, MPI_Bcast(w->flags, w->nobj, MPI_BYTE, w->L, comm));
  if (!rc && w->me == w->L && v->status == FUZE_BYZ_CORRECTED) rc = encode_fixes(w);
  if ((rc = fuze__agree(&w->ctx->net, rc)) || v->status != FUZE_BYZ_CORRECTED) return rc;
  return scatter(w);
}

/* ---- arrays ---- */

static fuze_array *arr(const vote *w) { return w->ctx->arrays[w->x]; }

/* Bytes of object o: its member's, or the block's fused bytes for a backup. */
static size_t arr_len(const vote *w, int o) {
  return is_copy(w, o) ? arr(w)->rank_bytes[member_rank(w, o)] : arr(w)->fused[w->b];
}

/* This rank's storage of object o (NULL when it is not its holder). */
static unsigned char *arr_mem(const vote *w, int o) {
  fuze_array *a = arr(w);
  fuze_byz *z = w->ctx->byz;
  size_t len;
  if (holder(w, o) != w->me) return NULL;
  if (!is_copy(w, o)) return fuze__byz_parity(a, w->b, backup_of(w, o), &len);
  int c = o % w->f1, h = c ? fuze__byz_held(z, member_rank(w, o), c) : -1;
  if (!c) return a->shadow;
  return h < 0 ? NULL : z->arr[w->x].rep[h];
}

static int arr_export(vote *w, int o, byz_buf *out) {
  out->p = arr_mem(w, o);
  out->len = out->p ? arr_len(w, o) : 0;
  out->owned = 0;
  return FUZE_SUCCESS;
}

static int arr_build(vote *w) {
  w->blk = (fuze_byz_block){w->k, w->f, &w->ctx->codes[w->b], arr(w)->fused[w->b], w->raw,
                            w->raw + w->k * w->f1, 0, NULL, NULL};
  return 0;
}

static int arr_fixed(vote *w, int o, byz_buf *out) {
  *out = (byz_buf){w->raw[o], arr_len(w, o), 0}; /* corrected in place by the vote */
  return 0;
}

static unsigned char *arr_inplace(vote *w, int o, size_t len) {
  return len == arr_len(w, o) ? arr_mem(w, o) : NULL;
}

/* A corrected primary copy is also the application's buffer again; a
 * corrected backup's working parity equals its committed parity again. */
static int arr_apply(vote *w, int o, const unsigned char *p, size_t len) {
  fuze_array *a = arr(w);
  unsigned char *mem = arr_mem(w, o);
  size_t n = arr_len(w, o);
  if (mem && p != mem && len) memcpy(mem, p, len < n ? len : n);
  if (is_copy(w, o) && o % w->f1 == 0 && a->bytes) memcpy(a->base, a->shadow, a->bytes);
  if (!is_copy(w, o)) fuze__byz_sync_working(a, w->b, backup_of(w, o));
  return FUZE_SUCCESS;
}

static const byz_kind ARRAY_KIND = {arr_export, arr_build, arr_fixed, arr_inplace, arr_apply,
                                    NULL};

/* ---- stacks and maps ---- */

static fuze_fobj *fo(const vote *w) { return w->ctx->fobjs[w->x]; }

static fuze_fobj_layout fo_layout(const vote *w) {
  const fuze_fobj *f = fo(w);
  return fuze__fobj_layout(w->k, f->cap, f->kb, f->nb);
}

/* A copy: the serialized state (the primary's made now); a backup: its
 * committed region. */
static int fo_export(vote *w, int o, byz_buf *out) {
  fuze_fobj *f = fo(w);
  fuze_byz *z = w->ctx->byz;
  memset(out, 0, sizeof *out);
  if (!is_copy(w, o)) {
    int rc = fuze__byz_fwin_sync(f);
    out->p = fuze__byz_fregion(f, w->b, backup_of(w, o), &out->len);
    if (!out->p) out->len = 0;
    return rc;
  }
  int c = o % w->f1, h = c ? fuze__byz_held(z, member_rank(w, o), c) : -1;
  if (!c) {
    out->owned = 1;
    out->p = fuze__byz_fser(f, &out->len);
    return out->p ? FUZE_SUCCESS : nomem(w);
  }
  if (h >= 0) out->p = z->fo[w->x].rep[h], out->len = z->fo[w->x].replen[h];
  return FUZE_SUCCESS;
}

/* Backup j's parity (its nodes) and its index replicas of every member; a
 * region that did not arrive whole has every part wrong. */
static int fo_expand_backup(vote *w, int j) {
  fuze_fobj *f = fo(w);
  fuze_fobj_layout lay = fo_layout(w);
  int k = w->k, o = k * w->f1 + j, whole = w->rawlen[o] == lay.bytes;
  size_t len = f->cap * f->nb, ilen = fuze__byz_ilen(f);
  if (!(w->blk.parity[j] = calloc(len ? len : 1, 1))) return -1;
  if (whole) memcpy(w->blk.parity[j], w->raw[o] + lay.nodes_off, len);
  for (int i = 0; i < k; i++) {
    unsigned char *ip = w->blk.ipar[j * k + i] = malloc(ilen);
    if (!ip) return -1;
    if (whole) fuze__byz_region_index(f, k, w->raw[o], i, ip);
    else memset(ip, 0xFF, ilen);
  }
  return 0;
}

static int fo_build(vote *w) {
  fuze_fobj *f = fo(w);
  int k = w->k, kf = k * w->f1, nf = w->f;
  size_t len = f->cap * f->nb, ilen = fuze__byz_ilen(f);
  w->blk = (fuze_byz_block){k, nf, &w->ctx->codes[w->b], len,
                            calloc((size_t)kf, sizeof(unsigned char *)),
                            calloc((size_t)nf, sizeof(unsigned char *)), ilen,
                            calloc((size_t)kf, sizeof(unsigned char *)),
                            calloc((size_t)nf * (size_t)k, sizeof(unsigned char *))};
  if (!w->blk.copy || !w->blk.parity || !w->blk.icopy || !w->blk.ipar) return -1;
  for (int o = 0; o < kf; o++) {
    w->blk.copy[o] = malloc(len ? len : 1);
    w->blk.icopy[o] = malloc(ilen);
    if (!w->blk.copy[o] || !w->blk.icopy[o]) return -1;
    fuze__byz_fexpand(f, w->raw[o], w->rawlen[o], w->blk.icopy[o], w->blk.copy[o]);
  }
  for (int j = 0; j < nf; j++)
    if (fo_expand_backup(w, j)) return -1;
  return 0;
}

/* A copy: its serialized state; a backup: a whole region (header and key
 * replicas from the index parts, nodes from the parity, zeros elsewhere). */
static int fo_fixed(vote *w, int o, byz_buf *out) {
  fuze_fobj *f = fo(w);
  out->owned = 1;
  if (is_copy(w, o)) {
    out->p = fuze__byz_fcompact(f, w->blk.icopy[o], w->blk.copy[o], &out->len);
    return out->p ? 0 : -1;
  }
  fuze_fobj_layout lay = fo_layout(w);
  int k = w->k, j = backup_of(w, o);
  size_t keys = f->cap * f->kb;
  unsigned char *r = calloc(lay.bytes, 1);
  if (!r) return -1;
  for (int i = 0; i < k; i++) {
    const unsigned char *ip = w->blk.ipar[j * k + i];
    memcpy(r + fuze__hdr_off(i), ip, FUZE_HDR_BYTES);
    if (f->kb) memcpy(r + lay.keys_off + (size_t)i * keys, ip + FUZE_HDR_BYTES, keys);
  }
  memcpy(r + lay.nodes_off, w->blk.parity[j], f->cap * f->nb);
  out->p = r;
  out->len = lay.bytes;
  return 0;
}

static int fo_apply(vote *w, int o, const unsigned char *buf, size_t len) {
  fuze_ctx *ctx = w->ctx;
  fuze_fobj *f = fo(w);
  fuze_byz *z = ctx->byz;
  if (!is_copy(w, o)) {
    size_t R = 0;
    int j = backup_of(w, o);
    if (fuze__byz_fregion(f, w->b, j, &R) && R == len) return fuze__byz_fregion_write(f, w->b, j, buf);
    return FUZE_SUCCESS;
  }
  int c = o % w->f1;
  long long n = fuze__byz_fcount(f, buf, len);
  if (n < 0) return CTX_ERR(ctx, FUZE_ERR_CORRUPT, "byzantine: '%s': malformed correction", f->name);
  if (!c) {
    uint64_t seq;
    memcpy(&seq, buf + FUZE_BYZ_SEQ_OFF, sizeof seq);
    const unsigned char *keys = buf + FUZE_HDR_BYTES;
    if (fuze__fobj_restore_state(f, (size_t)n, seq, keys, keys + (size_t)n * f->kb))
      return nomem(w);
    return FUZE_SUCCESS;
  }
  int h = fuze__byz_held(z, member_rank(w, o), c);
  if (h < 0) return FUZE_SUCCESS;
  unsigned char *cp = malloc(len);
  if (!cp) return nomem(w);
  memcpy(cp, buf, len);
  free(z->fo[w->x].rep[h]);
  z->fo[w->x].rep[h] = cp;
  z->fo[w->x].replen[h] = len;
  return FUZE_SUCCESS;
}

static void free_list(unsigned char **l, int n) {
  for (int i = 0; l && i < n; i++) free(l[i]);
  free(l);
}

static void fo_release(vote *w) {
  int kf = w->k * w->f1;
  free_list(w->blk.copy, kf);
  free_list(w->blk.icopy, kf);
  free_list(w->blk.ipar, w->f * w->k);
  free_list(w->blk.parity, w->f);
  memset(&w->blk, 0, sizeof w->blk);
}

static const byz_kind FOBJ_KIND = {fo_export, fo_build, fo_fixed, NULL, fo_apply, fo_release};

/* ---- entry points ---- */

int fuze__byz_correct_array(fuze_ctx *ctx, int x, int b, byz_verdict *v, int rc) {
  vote w;
  int r2 = vote_init(&w, ctx, &ARRAY_KIND, x, b, ctx->arrays[x]->fused[b]);
  if (r2) return r2; /* the same on every rank */
  rc = correct(&w, v, rc);
  vote_free(&w);
  return rc;
}

/* A stack's or map's block found uncorrectable is poisoned (byz_replicas.c). */
int fuze__byz_correct_fobj(fuze_ctx *ctx, int x, int b, byz_verdict *v, int rc) {
  vote w;
  int r2 = vote_init(&w, ctx, &FOBJ_KIND, x, b, 1);
  if (r2) return r2;
  rc = correct(&w, v, rc);
  if (!rc) ctx->byz->fo[x].poison[b] = v->status == FUZE_BYZ_UNCORRECTABLE;
  vote_free(&w);
  return rc;
}
