/* recovery: survivors + committed parity -> decode -> restored buffers.
 *
 * Protocol (see docs/design.md):
 * 1. Every rank knows the lost set. A block that lost more than f members
 *    (primaries + backup hosts) makes the whole recovery refuse, before any
 *    byte is modified.
 * 2. The target epoch T is the highest epoch any survivor knows was decided.
 *    Survivors finish (shadow catch-up, promotion) or discard (working :=
 *    committed) the checkpoint that was in flight accordingly.
 * 3. Rollback: survivors' buffers return to their committed copies.
 * 4. Each lost primary is decoded with one MPI_Reduce(BXOR) over its block
 *    communicator: every chosen survivor contributes its data scaled by the
 *    decode coefficient, so no rank funnels the survivors' state.
 * 5. Each lost backup is re-encoded the same way from the members. */
#include "core/bigmem.h"
#include "proto/recovery.h"
#include "data/array.h"
#include "comm/coll.h"
#include "comm/transport.h"
#include "data/fused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIECE (4u << 20) /* bytes reduced at a time: bounds temporary memory */

typedef struct erasure {
  unsigned char erased[FUZE_GF_MEMBERS2];
  int nlost;
} erasure;

static void block_erasure(const fuze_ctx *ctx, const int *lost, int b, erasure *e) {
  const fuze_plan *p = &ctx->plan;
  int k = p->block_start[b + 1] - p->block_start[b];
  memset(e, 0, sizeof *e);
  for (int i = 0; i < k; i++) e->erased[i] = (unsigned char)lost[p->members[p->block_start[b] + i]];
  for (int j = 0; j < p->f; j++) e->erased[k + j] = (unsigned char)lost[p->hosts[b * p->f + j]];
  for (int x = 0; x < k + p->f; x++) e->nlost += e->erased[x];
}

/* Step 1: the same verdict on every rank, from the same lost set. */
static int check_tolerance(fuze_ctx *ctx, const int *lost) {
  const fuze_plan *p = &ctx->plan;
  for (int b = 0; b < p->nblocks; b++) {
    erasure e;
    block_erasure(ctx, lost, b, &e);
    if (e.nlost <= p->f) continue;
    char list[256] = "";
    size_t len = 0;
    int k = p->block_start[b + 1] - p->block_start[b];
    for (int x = 0; x < k + p->f && len < sizeof list - 16; x++) {
      if (!e.erased[x]) continue;
      int r = x < k ? p->members[p->block_start[b] + x] : p->hosts[b * p->f + x - k];
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s %d", len ? ", " : "",
                              x < k ? "primary rank" : "backup host rank", r);
    }
    return CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE,
                   "recovery: unrecoverable: block %d lost %d members (%s) but tolerates "
                   "faults=%d; no rank's data was modified", b, e.nlost, list, p->f);
  }
  return FUZE_SUCCESS;
}

/* Step 2: finish or discard the checkpoint that was in flight. */
static void settle_epoch(fuze_ctx *ctx, uint64_t T) {
  if (ctx->lost) return;
  fuze_array **arrays = ctx->arrays;
  if (ctx->epoch < T) {
    fuze__arrays_update_shadow(ctx, arrays, ctx->narrays);
    fuze__fobjs_commit_logs(ctx);
    ctx->epoch = T;
  }
  if (ctx->hosted_epoch < T) {
    fuze__arrays_promote(ctx, arrays, ctx->narrays, NULL);
    fuze__fobjs_promote(ctx, NULL);
    ctx->hosted_epoch = T;
  }
  fuze__arrays_reset_working(ctx);
  /* Forward recovery decodes stacks and maps from the live (working) parity. */
  if (ctx->cfg.recovery == FUZE_RECOVERY_ROLLBACK) fuze__fobjs_reset_working(ctx);
  for (int x = 0; x < ctx->narrays; x++) arrays[x]->ndirty = 0;
}

/* Step 3 (rollback mode): buffers := committed copies; stacks and maps undo
 * their operations since the checkpoint. */
static void rollback_buffers(fuze_ctx *ctx) {
  if (ctx->lost || ctx->cfg.recovery != FUZE_RECOVERY_ROLLBACK) return;
  for (int x = 0; x < ctx->narrays; x++) {
    fuze_array *a = ctx->arrays[x];
    if (a->bytes && !a->base_owned) memcpy(a->base, a->shadow, a->bytes);
  }
  fuze__fobjs_undo(ctx);
  fuze__fobjs_drop_queues(ctx);
}

/* Where this rank's data for block member x lives (primary: committed copy;
 * backup: committed parity), or NULL when this rank is not member x. */
static const unsigned char *member_data(const fuze_ctx *ctx, const fuze_array *a, int b,
                                        int x, size_t *len) {
  const fuze_plan *p = &ctx->plan;
  int k = p->block_start[b + 1] - p->block_start[b];
  if (x < k) {
    if (p->members[p->block_start[b] + x] != ctx->rank) return NULL;
    *len = a->bytes;
    return a->shadow;
  }
  if (p->hosts[b * p->f + x - k] != ctx->rank) return NULL;
  for (int h = 0; h < a->nhosted; h++)
    if (a->hosted[h].block == b && a->hosted[h].j == x - k) {
      *len = a->hosted[h].fused;
      return fuze__array_committed(a, h);
    }
  return NULL;
}

typedef struct array_sink {
  fuze_ctx *ctx;
  fuze_array *a;
  int b, j;
} array_sink;

static void sink_primary(void *arg, size_t off, const unsigned char *res, size_t n) {
  array_sink *t = arg;
  fuze_array *a = t->a;
  if (off >= a->bytes) return;
  size_t m = a->bytes - off < n ? a->bytes - off : n;
  memcpy(a->shadow + off, res, m);
  /* A replacement's buffer until it registers is never read: its
   * fuze_protect copies the committed copy (fuze__replay_protect). */
  if (!a->base_owned) memcpy((unsigned char *)a->base + off, res, m);
  t->ctx->recovered_bytes += m;
}

static void sink_backup(void *arg, size_t off, const unsigned char *res, size_t n) {
  array_sink *t = arg;
  fuze_array *a = t->a;
  for (int h = 0; h < a->nhosted; h++) {
    if (a->hosted[h].block != t->b || a->hosted[h].j != t->j) continue;
    memcpy(a->winbase + a->hosted[h].off + off, res, n);
    memcpy(fuze__array_committed(a, h) + off, res, n);
    t->ctx->recovered_bytes += n;
  }
}

/* Steps 4 and 5 for one array and one block. */
static int repair_block(fuze_ctx *ctx, fuze_array *a, int b, const erasure *e) {
  const fuze_plan *p = &ctx->plan;
  const fuze_code *c = &ctx->codes[b];
  int k = c->k, rows[FUZE_GF_MEMBERS], rc = FUZE_SUCCESS, me;
  /* coef[x]: block-comm rank x's coefficient for the current target. */
  unsigned char D[FUZE_GF_MEMBERS * FUZE_GF_MEMBERS], coef[FUZE_GF_MEMBERS2];
  if ((rc = fuze__code_decode_matrix(c, e->erased, rows, D)))
    return CTX_ERR(ctx, rc, "recovery: %s", fuze__thread_msg());
  if ((rc = FUZE_MPI(ctx->msg, MPI_Comm_rank(ctx->block_comm[b], &me)))) return rc;
  size_t dlen = 0;
  const unsigned char *data = member_data(ctx, a, b, me, &dlen);
  for (int i = 0; i < k && !rc; i++) {
    if (!e->erased[i]) continue;
    memset(coef, 0, sizeof coef);
    for (int s = 0; s < k; s++) coef[rows[s]] = D[i * k + s];
    array_sink t = {ctx, a, b, -1};
    rc = fuze__reduce_to(&ctx->net, ctx->block_comm[b], b, i, coef[me], data, dlen, a->fused[b], sink_primary, &t);
  }
  /* Re-encode from the now complete primaries (member_data again: the
   * decoded primary's committed copy was just written). */
  data = member_data(ctx, a, b, me, &dlen);
  for (int j = 0; j < p->f && !rc; j++) {
    if (!e->erased[k + j]) continue;
    memset(coef, 0, sizeof coef);
    for (int i = 0; i < k; i++) coef[i] = fuze__code_coef(c, j, i);
    array_sink t = {ctx, a, b, j};
    rc = fuze__reduce_to(&ctx->net, ctx->block_comm[b], b, k + j, coef[me], data, dlen, a->fused[b], sink_backup, &t);
  }
  return rc;
}

static int repair_array(fuze_ctx *ctx, fuze_array *a, const int *lost) {
  int rc = fuze__array_sizes(ctx, a);
  /* A replacement host starts with clean chunk maps (its regions are
   * re-encoded whole). */
  for (int h = 0; !rc && ctx->lost && h < a->nhosted; h++)
    if (a->hosted[h].fused) memset(fuze__array_map(a, h), 0, (a->hosted[h].fused + ctx->cfg.chunk - 1) / ctx->cfg.chunk);
  if (!rc && ctx->lost && !a->shadow) {
    a->shadow = fuze__big_zalloc(a->bytes, 0); /* a replacement's: no compaction stall */
    if (!a->shadow) rc = FUZE_NOMEM(ctx->msg, "recovery");
  }
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  for (int b = 0; b < ctx->plan.nblocks && !rc; b++) {
    erasure e;
    block_erasure(ctx, lost, b, &e);
    if (e.nlost && ctx->block_comm[b] != MPI_COMM_NULL) rc = repair_block(ctx, a, b, &e);
  }
  return fuze__agree(&ctx->net, rc);
}

int fuze__recover(fuze_ctx *ctx, const int *lost, uint64_t *epoch_out) {
  int rc = check_tolerance(ctx, lost);
  if (rc) return rc;
  double t0 = MPI_Wtime();
  /* Batched stack/map operations of survivors complete first. */
  rc = fuze__agree(&ctx->net, fuze__fobjs_flush(ctx));
  if (rc) return rc;
  uint64_t T = ctx->lost ? 0 : ctx->decided, before = ctx->recovered_bytes;
  if ((rc = fuze__max_u64(&ctx->net, &T))) return rc;
  settle_epoch(ctx, T);
  rollback_buffers(ctx);
  rc = fuze__fobjs_grow(ctx);
  for (int x = 0; x < ctx->narrays && !rc; x++) rc = repair_array(ctx, ctx->arrays[x], lost);
  if (!rc) rc = fuze__fobjs_repair(ctx, lost);
  if (rc) return rc;
  ctx->epoch = ctx->decided = ctx->hosted_epoch = T;
  ctx->lost = 0;
  ctx->ops_committed = 0; /* next checkpoint promotes every stack/map region */
  ctx->recoveries++;
  uint64_t moved = ctx->recovered_bytes - before, total = 0;
  int sum_rc = FUZE_MPI(ctx->msg, MPI_Reduce(&moved, &total, 1, MPI_UINT64_T, MPI_SUM, 0, ctx->net.comm));
  if (ctx->cfg.verbose && ctx->rank == 0 && !sum_rc) {
    printf("fuze: recovered ranks");
    for (int r = 0; r < ctx->size; r++)
      if (lost[r]) printf(" %d", r);
    printf(" to epoch %llu in %.3f s (%llu bytes restored)\n", (unsigned long long)T,
           MPI_Wtime() - t0, (unsigned long long)total);
  }
  if (epoch_out) *epoch_out = T;
  return FUZE_RECOVERED;
}
