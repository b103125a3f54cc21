/* byzantine: code=byzantine, the MPI side of Theorem 7 (Fig. 6) for arrays,
 * stacks and maps: what runs at every committed checkpoint, and detection.
 *
 * Redundancy: the f fused backups of every block exactly as code=rs (so
 * checkpoints, wipes and recovery are unchanged), plus f unfused copies
 * (replicas) of every compute rank's committed arrays, stacks and maps on the
 * ranks fuze__byz_place picks (f distinct failure domains, none the rank's
 * own).
 *
 * At every committed checkpoint:
 * 1. refresh (right after the commit, byz_replicas.c): each primary sends,
 *    per array, the chunks whose crc64 changed since what it last sent (all of
 *    them after a recovery or a size change) to its f replica holders, point
 *    to point;
 * 2. detection (here, after the corrupt injections): crc64 (ISA-L) of every
 *    copy (the primary's committed copy and the f replicas), one
 *    MPI_Allreduce of the crc table; a block none of whose primaries has
 *    differing copies gets a parity audit: per backup j one MPI_Reduce(BXOR)
 *    over the block communicator of the members' coef * data and backup j's
 *    parity; a nonzero syndrome at the host means that backup's parity is
 *    wrong (the copies agree, so with at most f faults they are right): it is
 *    re-encoded (parity ^= syndrome);
 * 3. correction (a block with differing copies, the rare path,
 *    byz_correct.c): every copy of the block's primaries and the f parity
 *    regions go to the block's first member, which runs Fig. 6 (byz.c, pure)
 *    and sends the correct state to the holders of the faulty objects. More
 *    than f faulty objects, or no value of multiplicity f + 1:
 *    FUZE_ERR_CORRUPT naming the block, nothing modified.
 *
 * Replicas hold the committed state and are refreshed at checkpoints, not per
 * operation as in the paper: detection happens at checkpoints, and what must
 * be compared there is the committed state of every copy, which the refresh
 * makes equal on every correct copy.
 *
 * Stacks and maps: a copy is a member's committed state (count, seq, keys,
 * values in slot order), serialized for the replicas and resent whole when
 * its crc64 changed; the copy of the primary is its live state, equal to the
 * committed one while the check runs. Detection also compares every backup's
 * header and key replica of the member (the index, 2f + 1 versions) with the
 * primary's; correction runs the same Fig. 6 with index parts (byz.c) on
 * copies expanded to the region's capacity. */
#include "proto/byz_internal.h"

#include "comm/coll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parity audits ---- */

/* One structure's side of the audit of (block b, backup j): the members'
 * committed data against backup j's committed parity. */
typedef struct audit {
  fuze_ctx *ctx;
  const char *name, *part, *was; /* the structure; what a backup's parity is called, its verb */
  int b, j;
  const unsigned char *data; /* a member's committed data (dlen bytes) */
  size_t dlen, fused;        /* fused: bytes of the parity */
  unsigned char *(*parity)(struct audit *t);  /* a host: backup j's committed parity */
  int (*repaired)(struct audit *t);           /* a host: working := committed */
  void *obj;
  long bad;
} audit;

static void sink_audit(void *arg, size_t off, const unsigned char *res, size_t n) {
  audit *t = arg;
  unsigned char *p = t->parity(t);
  for (size_t q = 0; p && q < n && off + q < t->fused; q++)
    if (res[q]) p[off + q] ^= res[q], t->bad++;
}

/* Parity audit of a block whose copies agree: *fixed += the wrong bytes
 * repaired here. Collective over the block communicator. */
static int audit_block(audit *t, long *fixed) {
  fuze_ctx *ctx = t->ctx;
  const fuze_code *code = &ctx->codes[t->b];
  int k = code->k, me, rc = FUZE_MPI(ctx->msg, MPI_Comm_rank(ctx->block_comm[t->b], &me));
  for (int j = 0; j < ctx->plan.f && !rc; j++) {
    unsigned char coef = 0;
    const unsigned char *data = NULL;
    size_t dlen = 0;
    t->j = j, t->bad = 0;
    if (me < k) coef = fuze__code_coef(code, j, me), data = t->data, dlen = t->dlen;
    else if (me == k + j && (data = t->parity(t))) coef = 1, dlen = t->fused;
    rc = fuze__reduce_to(&ctx->net, ctx->block_comm[t->b], t->b, k + j, coef, data, dlen,
                         t->fused, sink_audit, t);
    if (!t->bad) continue;
    if (!rc) rc = t->repaired(t);
    ctx->pforce = 1; /* re-encoded bytes carry no persist_base change marks */
    *fixed += t->bad;
    if (ctx->cfg.verbose)
      printf("fuze: byzantine: '%s' block %d: %s of backup %d on rank %d %s wrong in %ld "
             "byte(s) while every copy agreed: re-encoded\n", t->name, t->b, t->part, j,
             ctx->rank, t->was, t->bad);
  }
  return rc;
}

static unsigned char *arr_parity(audit *t) {
  size_t len;
  return fuze__byz_parity(t->obj, t->b, t->j, &len);
}

static int arr_repaired(audit *t) {
  fuze__byz_sync_working(t->obj, t->b, t->j);
  return FUZE_SUCCESS;
}

static int audit_array(fuze_ctx *ctx, fuze_array *a, int b, long *fixed) {
  audit t = {ctx, a->name, "parity", "was", b, 0, a->shadow, a->bytes, a->fused[b],
             arr_parity, arr_repaired, a, 0};
  return audit_block(&t, fixed);
}

/* A stack's or map's parity: the nodes of its committed region. */
static unsigned char *fo_parity(audit *t) {
  fuze_fobj *f = t->obj;
  unsigned char *r = fuze__byz_fregion(f, t->b, t->j, NULL);
  if (!r) return NULL;
  return r + fuze__fobj_layout(fuze__byz_k(t->ctx, t->b), f->cap, f->kb, f->nb).nodes_off;
}

static int fo_repaired(audit *t) { return fuze__byz_fregion_write(t->obj, t->b, t->j, NULL); }

static int audit_fobj(fuze_ctx *ctx, fuze_fobj *f, int b, long *fixed) {
  audit t = {ctx, f->name, "nodes", "were", b, 0, f->vals, f->n * f->nb, f->cap * f->nb,
             fo_parity, fo_repaired, f, 0};
  int rc = fuze__byz_fwin_sync(f);
  return rc ? rc : audit_block(&t, fixed);
}

/* ---- the crc table ---- */

/* Per array and rank f + 1 entries (the copies' crcs); per stack/map and
 * rank W = f + 2 + f: the f + 1 copies' state crcs, the primary's index crc,
 * the f backups' index crcs of that rank. Every entry is filled by the one
 * rank that has it; one MPI_Allreduce(BXOR) gives everyone the table. */
typedef struct scan {
  int f1, W;
  size_t tl, tlf;        /* entries of the arrays' part, of the stacks' and maps' */
  uint64_t *tab, *ftab;  /* ftab = tab + tl */
  unsigned char *mism;   /* (structure, block): some copies differ; arrays first */
} scan;

static void fill_arrays(fuze_ctx *ctx, scan *s) {
  fuze_byz *z = ctx->byz;
  int f1 = s->f1;
  for (int x = 0; x < ctx->narrays; x++) {
    fuze_array *a = ctx->arrays[x];
    uint64_t *t = s->tab + (size_t)x * (size_t)ctx->size * (size_t)f1;
    if (ctx->plan.block_of[ctx->rank] >= 0) t[(size_t)ctx->rank * f1] = fuze__byz_crc(a->shadow, a->bytes);
    for (int h = 0; h < z->nheld; h++)
      t[(size_t)z->held_rank[h] * f1 + z->held_c[h]] =
          fuze__byz_crc(z->arr[x].rep[h], z->arr[x].replen[h]);
  }
}

/* The primary's entries: its state's crc and its index part's crc. */
static int fill_primary(fuze_fobj *f, uint64_t *t, unsigned char *idx, unsigned char *val,
                        int f1) {
  size_t blen;
  unsigned char *s = fuze__byz_fser(f, &blen);
  if (!s) return -1;
  t[0] = fuze__byz_crc(s, blen);
  fuze__byz_fexpand(f, s, blen, idx, val);
  t[f1] = fuze__byz_crc(idx, fuze__byz_ilen(f));
  free(s);
  return 0;
}

static int fill_fobj(fuze_ctx *ctx, scan *s, int x) {
  const fuze_plan *p = &ctx->plan;
  fuze_byz *z = ctx->byz;
  fuze_fobj *f = ctx->fobjs[x];
  int f1 = s->f1, W = s->W;
  uint64_t *t = s->ftab + (size_t)x * (size_t)ctx->size * (size_t)W;
  size_t ilen = fuze__byz_ilen(f), vl = f->cap * f->nb;
  unsigned char *idx = malloc(ilen), *val = malloc(vl ? vl : 1);
  int rc = idx && val ? FUZE_SUCCESS : FUZE_NOMEM(ctx->msg, "byzantine");
  if (!rc && fuze__byz_primary(ctx) && fill_primary(f, t + (size_t)ctx->rank * W, idx, val, f1))
    rc = FUZE_NOMEM(ctx->msg, "byzantine");
  for (int h = 0; !rc && h < z->nheld; h++)
    t[(size_t)z->held_rank[h] * W + z->held_c[h]] =
        fuze__byz_crc(z->fo[x].rep[h], z->fo[x].replen[h]);
  if (!rc) rc = fuze__byz_fwin_sync(f);
  for (int h = 0; !rc && h < f->nhosted; h++) {
    int b = f->hosted[h].block, j = f->hosted[h].j, k = fuze__byz_k(ctx, b);
    const unsigned char *r = fuze__byz_fregion(f, b, j, NULL);
    for (int i = 0; r && i < k; i++) {
      fuze__byz_region_index(f, k, r, i, idx);
      t[(size_t)p->members[p->block_start[b] + i] * W + f1 + 1 + j] = fuze__byz_crc(idx, ilen);
    }
  }
  free(idx);
  free(val);
  return rc;
}

static void mark_arrays(const fuze_ctx *ctx, scan *s) {
  const fuze_plan *p = &ctx->plan;
  for (int x = 0; x < ctx->narrays; x++)
    for (int r = 0; r < ctx->size; r++) {
      int b = p->block_of[r];
      const uint64_t *t = s->tab + ((size_t)x * (size_t)ctx->size + (size_t)r) * s->f1;
      for (int c = 1; b >= 0 && c < s->f1; c++)
        if (t[c] != t[0]) s->mism[x * p->nblocks + b] = 1;
    }
}

/* A poisoned block (uncorrectable at the last check) is looked at again. */
static void mark_fobjs(const fuze_ctx *ctx, scan *s) {
  const fuze_plan *p = &ctx->plan;
  const fuze_byz *z = ctx->byz;
  int f = p->f, f1 = s->f1;
  for (int x = 0; x < ctx->nfobjs; x++) {
    unsigned char *m = s->mism + (size_t)(ctx->narrays + x) * p->nblocks;
    for (int b = 0; b < p->nblocks; b++)
      if (x < z->nfo && z->fo[x].poison[b]) m[b] = 1;
    for (int r = 0; r < ctx->size; r++) {
      int b = p->block_of[r];
      const uint64_t *t = s->ftab + ((size_t)x * (size_t)ctx->size + (size_t)r) * s->W;
      for (int c = 1; b >= 0 && c < f1; c++)
        if (t[c] != t[0]) m[b] = 1;
      for (int j = 0; b >= 0 && j < f; j++)
        if (t[f1 + 1 + j] != t[f1]) m[b] = 1;
    }
  }
}

/* Collective: which (structure, block) have differing copies. */
static int detect(fuze_ctx *ctx, scan *s) {
  const fuze_plan *p = &ctx->plan;
  int n = ctx->narrays, nfo = ctx->nfobjs, rc = FUZE_SUCCESS;
  s->f1 = p->f + 1;
  s->W = s->f1 + 1 + p->f;
  s->tl = (size_t)n * (size_t)ctx->size * (size_t)s->f1;
  s->tlf = (size_t)nfo * (size_t)ctx->size * (size_t)s->W;
  s->tab = calloc(s->tl + s->tlf ? s->tl + s->tlf : 1, sizeof *s->tab);
  s->ftab = s->tab ? s->tab + s->tl : NULL;
  s->mism = calloc((size_t)(n + nfo) * (size_t)p->nblocks + 1, 1);
  if (!s->tab || !s->mism) rc = FUZE_NOMEM(ctx->msg, "byzantine");
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  fill_arrays(ctx, s);
  for (int x = 0; x < nfo && !rc; x++) rc = fill_fobj(ctx, s, x);
  FUZE_MPI_KEEP(rc, ctx->msg, MPI_Allreduce(MPI_IN_PLACE, s->tab, (int)(s->tl + s->tlf),
                                            MPI_UINT64_T, MPI_BXOR, ctx->byz->comm));
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  mark_arrays(ctx, s);
  mark_fobjs(ctx, s);
  return FUZE_SUCCESS;
}

/* ---- correction or audit, block by block ---- */

typedef struct outcome {
  long fixed;            /* parity bytes re-encoded here by audits */
  int corrected;         /* blocks corrected (the same on every rank) */
  int bad_x, bad_b;      /* the first uncorrectable (structure, block), -1: none */
  byz_verdict first_bad;
} outcome;

/* Structure x: arrays, then stacks and maps. */
static const char *struct_kind(const fuze_ctx *ctx, int x) {
  if (x < ctx->narrays) return "array";
  return ctx->fobjs[x - ctx->narrays]->kind == FUZE_FOBJ_MAP ? "map" : "stack";
}

static const char *struct_name(const fuze_ctx *ctx, int x) {
  return x < ctx->narrays ? ctx->arrays[x]->name : ctx->fobjs[x - ctx->narrays]->name;
}

static void describe(const fuze_ctx *ctx, int x, int b, const byz_verdict *v) {
  if (!ctx->cfg.verbose || ctx->rank != 0) return;
  printf("fuze: byzantine: %s '%s' block %d: %s: %s\n", struct_kind(ctx, x), struct_name(ctx, x),
         b, v->status == FUZE_BYZ_CORRECTED ? "corrected" : "UNCORRECTABLE", v->msg);
  fflush(stdout);
}

/* (structure x, block b): Fig. 6 when its copies differ (collective, and
 * it agrees rc first), else a parity audit (its block; skipped after an
 * error here). */
static int visit(fuze_ctx *ctx, const scan *s, int x, int b, outcome *out, int rc) {
  int n = ctx->narrays;
  if (!s->mism[x * ctx->plan.nblocks + b]) {
    if (rc || ctx->block_comm[b] == MPI_COMM_NULL) return rc;
    return x < n ? audit_array(ctx, ctx->arrays[x], b, &out->fixed)
                 : audit_fobj(ctx, ctx->fobjs[x - n], b, &out->fixed);
  }
  byz_verdict v;
  rc = x < n ? fuze__byz_correct_array(ctx, x, b, &v, rc)
             : fuze__byz_correct_fobj(ctx, x - n, b, &v, rc);
  if (rc) return rc;
  if (v.status == FUZE_BYZ_CORRECTED) out->corrected++;
  if (v.status == FUZE_BYZ_UNCORRECTABLE && out->bad_x < 0)
    out->bad_x = x, out->bad_b = b, out->first_bad = v;
  if (v.status == FUZE_BYZ_CORRECTED || v.status == FUZE_BYZ_UNCORRECTABLE) describe(ctx, x, b, &v);
  return v.status < 0 ? FUZE_NOMEM(ctx->msg, "byzantine") : FUZE_SUCCESS;
}

/* Every (structure, block), then the total of re-encoded parity bytes.
 * Every rank visits every block: an error here still takes part in the
 * corrections (which agree it). Returns an agreed code. */
static int visit_all(fuze_ctx *ctx, const scan *s, outcome *out, long *total) {
  int rc = FUZE_SUCCESS;
  for (int x = 0; x < ctx->narrays + ctx->nfobjs; x++)
    for (int b = 0; b < ctx->plan.nblocks; b++) rc = visit(ctx, s, x, b, out, rc);
  FUZE_MPI_KEEP(rc, ctx->msg, MPI_Allreduce(&out->fixed, total, 1, MPI_LONG, MPI_SUM,
                                            ctx->byz->comm));
  return fuze__agree(&ctx->net, rc);
}

static int conclude(fuze_ctx *ctx, const outcome *out, long total) {
  if (out->bad_x >= 0)
    return CTX_ERR(ctx, FUZE_ERR_CORRUPT, "byzantine: %s '%s' block %d is uncorrectable (%s): "
                   "more than faults=%d copies or backups are wrong; nothing in that block was "
                   "modified", struct_kind(ctx, out->bad_x), struct_name(ctx, out->bad_x),
                   out->bad_b, out->first_bad.msg, ctx->plan.f);
  if (!out->corrected && !total) return FUZE_SUCCESS;
  if (ctx->cfg.verbose && ctx->rank == 0)
    printf("fuze: byzantine: checkpoint %ld: %d block(s) corrected from their copies, %ld "
           "parity byte(s) re-encoded\n", ctx->ckpt_calls, out->corrected, total);
  return FUZE_RECOVERED;
}

int fuze__byz_check(fuze_ctx *ctx) {
  if (!fuze__byz_on(ctx) || !ctx->byz) return FUZE_SUCCESS;
  fuze__byz_fire_armed(ctx);
  scan s;
  memset(&s, 0, sizeof s);
  outcome out = {.bad_x = -1, .bad_b = -1};
  long total = 0;
  int rc = detect(ctx, &s);
  if (!rc) rc = visit_all(ctx, &s, &out, &total);
  if (!rc) rc = conclude(ctx, &out, total);
  free(s.tab);
  free(s.mism);
  return rc;
}
