/* frecovery: repair of fused stacks and maps after a loss (recovery.h),
 * per block with a lost member or host. The surviving backups' headers say
 * which version of each lost primary they hold; the lost primaries take
 * count, seq and keys from a trusted header and decode their values from k
 * survivors (fuze__reduce_to); lost or stale backups are zeroed and every
 * primary republishes into them. Forward recovery works on the working
 * halves, rollback on the committed ones. */
#include "proto/recovery.h"

#include "comm/coll.h"
#include "data/fused.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct fix {
  fuze_fobj *f;
  int b, k, m, me, half; /* half: 0 working (forward), 1 committed (rollback) */
  unsigned char erased[FUZE_GF_MEMBERS2];
  uint64_t *hdrs;        /* per block-comm member: valid, then (count, seq) x k */
  int ref;               /* block-comm rank of the header everyone trusts */
} fix;

static int block_k(const fuze_ctx *ctx, int b) {
  return ctx->plan.block_start[b + 1] - ctx->plan.block_start[b];
}

/* This host's region of the block (the half recovery works on). */
static unsigned char *my_region(const fix *x) {
  return fuze__fobj_hosted(x->f, x->b, x->me - x->k, x->half);
}

static uint64_t *hdr_of(const fix *x, int member) { return x->hdrs + (size_t)member * (1 + 2 * (size_t)x->k); }

static int gather_headers(fix *x) {
  fuze_ctx *ctx = x->f->ctx;
  size_t w = 1 + 2 * (size_t)x->k;
  uint64_t *mine = calloc(w, sizeof *mine);
  x->hdrs = calloc(w * (size_t)(x->k + x->m), sizeof *x->hdrs);
  if (!mine || !x->hdrs) {
    free(mine);
    return FUZE_NOMEM(ctx->msg, "recovery");
  }
  unsigned char *r = x->me >= x->k && !x->erased[x->me] ? my_region(x) : NULL;
  if (r) {
    mine[0] = 1;
    for (int i = 0; i < x->k; i++)
      memcpy(mine + 1 + 2 * i, r + fuze__fobj_hdr_off(i), FUZE_HDR_BYTES);
  }
  int rc = fuze__allgather_u64(&ctx->net, ctx->block_comm[x->b], mine, (int)w, x->hdrs);
  free(mine);
  return rc;
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

/* A lost primary takes its count, seq and keys from the trusted header (its
 * values are zero until decode_values; its hash index is rebuilt). */
static int restore_index(fix *x, int i) {
  fuze_fobj *f = x->f;
  fuze_ctx *ctx = f->ctx;
  uint64_t cnt = hdr_of(x, x->ref)[1 + 2 * i], seq = hdr_of(x, x->ref)[2 + 2 * i];
  unsigned char *keys = malloc(cnt * f->kb + 1);
  if (!keys) return FUZE_NOMEM(ctx->msg, "recovery");
  if (x->me == x->ref && cnt && f->kb) memcpy(keys, my_region(x) + fuze__fobj_keys_off(f, x->b, i), cnt * f->kb);
  int rc = FUZE_SUCCESS;
  if (f->kb) rc = fuze__bcast_bytes(&ctx->net, ctx->block_comm[x->b], keys, cnt * f->kb, x->ref);
  if (!rc && x->me == i && fuze__fobj_restore_state(f, cnt, seq, keys, NULL))
    rc = FUZE_NOMEM(ctx->msg, "recovery");
  free(keys);
  return rc;
}

static int decode_values(fix *x, int i, const int *rows, const unsigned char *D) {
  fuze_fobj *f = x->f;
  unsigned char coef[FUZE_GF_MEMBERS2] = {0};
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
    data = my_region(x) + fuze__fobj_nodes_off(f, x->b);
    dlen = f->cap * f->nb;
  }
  vsink v = {f};
  return fuze__reduce_to(&f->ctx->net, f->ctx->block_comm[x->b], x->b, i, coef[x->me], data, dlen, maxc * f->nb, sink_values, &v);
}

/* Lost or stale backup j: zeroed (both halves), then every member
 * republishes into it, and its committed half takes the result. */
static int reencode_backup(fix *x, int j) {
  fuze_fobj *f = x->f;
  fuze_ctx *ctx = f->ctx;
  MPI_Comm comm = ctx->block_comm[x->b];
  unsigned char *r = x->me == x->k + j ? fuze__fobj_hosted(f, x->b, j, 0) : NULL;
  size_t R = fuze__fobj_region(f, x->b);
  if (r) memset(r, 0, 2 * R);
  int rc1 = fuze__comm_barrier(&ctx->net, comm);
  int rc2 = x->me < x->k ? fuze__fobj_publish(f, j) : FUZE_SUCCESS;
  int rc3 = fuze__comm_barrier(&ctx->net, comm), rc4 = FUZE_SUCCESS;
  if (r) {
    rc4 = fuze__fobj_sync(f);
    memcpy(r + R, r, R);
    ctx->recovered_bytes += R;
  }
  return rc1 ? rc1 : rc2 ? rc2 : rc3 ? rc3 : rc4;
}

static int repair_block(fuze_fobj *f, int b, const int *lost) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  fix x = {.f = f, .b = b, .k = block_k(ctx, b), .m = p->f,
           .half = ctx->cfg.recovery == FUZE_RECOVERY_ROLLBACK ? 1 : 0};
  int rc = FUZE_MPI(ctx->msg, MPI_Comm_rank(ctx->block_comm[b], &x.me));
  if (rc) return rc;
  for (int i = 0; i < x.k; i++) x.erased[i] = (unsigned char)lost[p->members[p->block_start[b] + i]];
  for (int j = 0; j < x.m; j++) x.erased[x.k + j] = (unsigned char)lost[p->hosts[b * p->f + j]];
  int rows[FUZE_GF_MEMBERS];
  unsigned char D[FUZE_GF_MEMBERS * FUZE_GF_MEMBERS];
  rc = gather_headers(&x);
  if (!rc && choose_version(&x))
    rc = CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "recovery: unrecoverable: '%s' block %d: the "
                 "surviving backups disagree on a lost member's last operation", f->name, b);
  if (!rc) rc = fuze__code_decode_matrix(&ctx->codes[b], x.erased, rows, D);
  for (int i = 0; i < x.k && !rc; i++) {
    if (!x.erased[i]) continue;
    rc = restore_index(&x, i);
    if (!rc) rc = decode_values(&x, i, rows, D);
  }
  /* Once the primaries are back, every erased backup is re-encoded (a
   * collective over the block each), even after a local failure in one:
   * the first is returned (fuze__fobjs_repair agrees it). */
  int stop = rc;
  for (int j = 0; j < x.m && !stop; j++) {
    if (!x.erased[x.k + j]) continue;
    int jrc = reencode_backup(&x, j);
    if (!rc) rc = jrc;
  }
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
