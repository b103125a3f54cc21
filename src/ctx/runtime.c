/* runtime: fuze_init/finalize, the control channel that lets spare ranks take
 * part in every collective, error agreement, and the checkpoint protocol.
 *
 * Every collective call runs on all ranks of the init communicator ("world"):
 * compute ranks enter through the public API, spare ranks through serve(),
 * which receives the call's opcode from world rank 0 (always a compute rank:
 * spare domains are the highest-numbered ones). */
#include "data/array.h"
#include "comm/coll.h"
#include "comm/transport.h"
#include "proto/byzantine.h"
#include "proto/inject.h"
#include "proto/persist.h"
#include "proto/recovery.h"
#include "proto/verify.h"
#include "data/fused.h"
#include "data/state.h"
#include "core/pfile.h"
#include "comm/topo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_PROTECT = 1, OP_CHECKPOINT, OP_RECOVER, OP_INJECT, OP_INJECT_AT, OP_INJECT_OP, OP_CREATE,
       OP_FINALIZE, OP_VERIFY };

typedef struct ctl {
  int op, n;
  uint64_t a, b; /* OP_CREATE: key and value bytes; OP_INJECT_OP: rank, backups */
  int ranks[FUZE_MAX_INJECT_RANKS];
  char name[FUZE_NAME_MAX]; /* registration name, or the phase of OP_INJECT_AT */
} ctl;

static int check_ctx(const fuze_ctx *ctx, const char *fn) {
  if (!ctx) return FUZE_ERR(FUZE_ERR_ARG, "%s: ctx is NULL (not initialised, or used after fuze_finalize)", fn);
  if (ctx->finalized) return FUZE_ERR(FUZE_ERR_STATE, "%s: called after fuze_finalize", fn);
  return FUZE_SUCCESS;
}

static void send_ctl(fuze_ctx *ctx, ctl *c) {
  MPI_Bcast(c, (int)sizeof *c, MPI_BYTE, 0, ctx->net.comm);
}

/* ---- recovery entry ---- */

static int recover_if_lost(fuze_ctx *ctx) {
  int *lost = malloc(sizeof(int) * (size_t)ctx->size);
  if (!lost) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "recover: out of memory");
  int rc = FUZE_SUCCESS;
  if (fuze__any_lost(&ctx->net, ctx->lost, lost)) rc = fuze__recover(ctx, lost, NULL);
  free(lost);
  return rc;
}

/* ---- arrays ---- */

static int is_predefined(MPI_Datatype type) {
  int ni, na, nd, comb;
  if (type == MPI_DATATYPE_NULL) return 0;
  if (MPI_Type_get_envelope(type, &ni, &na, &nd, &comb) != MPI_SUCCESS) return 0;
  return comb == MPI_COMBINER_NAMED;
}

static int validate_protect(fuze_ctx *ctx, const ctl *c, const char *name, void *base,
                            size_t count, MPI_Datatype type, size_t *elem) {
  if (ctx->is_spare) return FUZE_SUCCESS;
  if (!name || !*name || strlen(name) >= FUZE_NAME_MAX)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect: name must be 1..%d characters", FUZE_NAME_MAX - 1);
  if (strcmp(name, c->name))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect: name '%s' on rank %d differs from '%s' on "
                   "rank 0 (registrations must be in the same order everywhere)", name, ctx->rank, c->name);
  if (!base && count > 0)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): base is NULL but count is %zu", name, count);
  if (!is_predefined(type))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): type must be a predefined MPI datatype "
                   "(derived or null types are not supported)", name);
  int sz;
  MPI_Type_size(type, &sz);
  if (sz <= 0) return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): type has size %d", name, sz);
  *elem = (size_t)sz;
  return FUZE_SUCCESS;
}

static fuze_array *find_array(fuze_ctx *ctx, const char *name) {
  for (int x = 0; x < ctx->narrays; x++)
    if (!strcmp(ctx->arrays[x]->name, name)) return ctx->arrays[x];
  return NULL;
}

static int new_array(fuze_ctx *ctx, const char *name, fuze_array **out) {
  fuze_array **grown = realloc(ctx->arrays, sizeof *grown * (size_t)(ctx->narrays + 1));
  fuze_array *a = calloc(1, sizeof *a);
  if (grown) ctx->arrays = grown;
  if (!grown || !a) {
    free(a);
    return CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_protect('%s'): out of memory", name);
  }
  a->ctx = ctx;
  a->win = MPI_WIN_NULL;
  snprintf(a->name, sizeof a->name, "%s", name);
  ctx->arrays[ctx->narrays++] = a;
  *out = a;
  return FUZE_SUCCESS;
}

/* Restart: the stored contents go into the registered buffer, which must
 * have the stored size (fuze_stored_count). */
static int restore_array(fuze_ctx *ctx, const char *name, void *base, size_t count, size_t elem) {
  if (!ctx->restore || ctx->is_spare) return FUZE_SUCCESS;
  const fuze_pstruct *ps = fuze__persist_find(ctx, name, FUZE_PS_ARRAY);
  if (!ps)
    return CTX_ERR(ctx, FUZE_ERR_NOT_FOUND, "fuze_protect('%s'): the restarted epoch %llu holds "
                   "no array of that name (register the same structures as the run that "
                   "persisted it)", name, (unsigned long long)ctx->epoch);
  if (ps->count != count || ps->elem != elem)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): the restarted epoch holds %zu elements "
                   "of %zu bytes on rank %d, but %zu of %zu bytes were registered (size the "
                   "buffer with fuze_stored_count)", name, ps->count, ps->elem, ctx->rank, count, elem);
  if (count) memcpy(base, ps->data, count * elem);
  return FUZE_SUCCESS;
}

/* Register (or re-register) and encode the array's current contents: the
 * same two phases as a checkpoint, restricted to this array. */
static int protect_collective(fuze_ctx *ctx, const ctl *c, const char *name, void *base,
                              size_t count, MPI_Datatype type, fuze_array **out) {
  size_t elem = 1;
  int rc = fuze__agree(&ctx->net, validate_protect(ctx, c, name, base, count, type, &elem));
  if (rc || (rc = fuze__agree(&ctx->net, restore_array(ctx, c->name, base, count, elem)))) return rc;
  int *lost = malloc(sizeof(int) * (size_t)ctx->size);
  int any = lost ? fuze__any_lost(&ctx->net, ctx->lost, lost) : 0;
  free(lost);
  if (!lost) return fuze__agree(&ctx->net, CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_protect: out of memory"));
  if (any) return CTX_ERR(ctx, FUZE_ERR_STATE, "fuze_protect('%s'): ranks were lost; call "
                          "fuze_recover() or fuze_checkpoint() first", c->name);
  fuze_array *a = find_array(ctx, c->name);
  if (a) {
    fuze__win_free(&a->win, 1);
    free(a->shadow);
    a->shadow = NULL;
  } else if ((rc = fuze__agree(&ctx->net, new_array(ctx, c->name, &a)))) {
    return rc;
  }
  a->base = ctx->is_spare ? NULL : base;
  a->count = ctx->is_spare ? 0 : count;
  a->type = ctx->is_spare ? MPI_BYTE : type;
  a->elem = elem;
  a->bytes = a->count * elem;
  a->shadow = calloc(a->bytes ? a->bytes : 1, 1);
  rc = a->shadow ? FUZE_SUCCESS : CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_protect('%s'): out of memory", c->name);
  if ((rc = fuze__agree(&ctx->net, rc)) || (rc = fuze__array_layout(ctx, a))) return rc;
  rc = fuze__agree(&ctx->net, fuze__arrays_send(ctx, &a, 1, 0));
  if (!rc) {
    fuze__arrays_promote(ctx, &a, 1, NULL);
    fuze__arrays_update_shadow(ctx, &a, 1);
  }
  if (out) *out = a;
  return rc;
}

int fuze_protect(fuze_ctx *ctx, const char *name, void *base, size_t count,
                 MPI_Datatype type, fuze_array **array) {
  int rc = check_ctx(ctx, "fuze_protect");
  if (rc) return rc;
  ctl c = {.op = OP_PROTECT};
  if (ctx->rank == 0 && name) snprintf(c.name, sizeof c.name, "%s", name);
  send_ctl(ctx, &c);
  return protect_collective(ctx, &c, name, base, count, type, array);
}

int fuze_stored_count(fuze_ctx *ctx, const char *name, size_t *count) {
  int rc = check_ctx(ctx, "fuze_stored_count");
  if (rc) return rc;
  if (!name || !count) return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_stored_count: NULL name or count");
  if (!ctx->restore)
    return CTX_ERR(ctx, FUZE_ERR_NOT_FOUND, "fuze_stored_count('%s'): no restarted epoch (the "
                   "job did not restart: fuze_init returned FUZE_RESTARTED only with dir=PATH "
                   "holding a complete epoch; stored counts are kept until the first checkpoint)",
                   name);
  const fuze_pstruct *ps = fuze__persist_find(ctx, name, -1);
  if (!ps)
    return CTX_ERR(ctx, FUZE_ERR_NOT_FOUND, "fuze_stored_count('%s'): the restarted epoch %llu "
                   "holds no structure of that name", name, (unsigned long long)ctx->epoch);
  *count = ps->count;
  return FUZE_SUCCESS;
}

/* ---- checkpoint ---- */

static int checkpoint_abort(fuze_ctx *ctx, int rc) {
  fuze__arrays_reset_working(ctx);
  for (int x = 0; x < ctx->narrays; x++) ctx->arrays[x]->ndirty = 0;
  return rc;
}

/* Check for lost ranks at an injection point; only where an injection can
 * strike (or where the protocol needs agreement anyway) does it cost a
 * collective. */
static int lost_at(fuze_ctx *ctx, int phase, int always) {
  fuze__inject_point(ctx, phase);
  if (!always && !fuze__inject_scheduled(ctx, phase)) return 0;
  int *lost = malloc(sizeof(int) * (size_t)ctx->size);
  int any = lost ? fuze__any_lost(&ctx->net, ctx->lost, lost) : 0;
  free(lost);
  return any;
}

/* The phase-1 agreement: one MPI_Allgather of every rank's (lost, sent array
 * deltas, did stack/map operations) flags. Returns whether a rank was lost;
 * otherwise ctx->changed says, per block, which hosted regions need a
 * promotion (a checkpoint with nothing changed copies no parity). */
static int gather_changes(fuze_ctx *ctx) {
  int mine = ctx->lost, any = 0;
  for (int x = 0; x < ctx->narrays && !ctx->lost; x++)
    if (ctx->arrays[x]->ndirty) mine |= 2;
  if (!ctx->lost && fuze__fobjs_ops(ctx) != ctx->ops_committed) mine |= 4;
  int *all = malloc(sizeof(int) * (size_t)ctx->size);
  if (!ctx->changed) ctx->changed = malloc((size_t)(ctx->plan.nblocks ? ctx->plan.nblocks : 1));
  if (!all || !ctx->changed) { /* cannot skip anything: promote everything */
    free(all);
    int lost[1] = {ctx->lost};
    MPI_Allreduce(MPI_IN_PLACE, lost, 1, MPI_INT, MPI_MAX, ctx->net.comm);
    free(ctx->changed);
    ctx->changed = NULL;
    return lost[0];
  }
  MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, ctx->net.comm);
  memset(ctx->changed, 0, (size_t)ctx->plan.nblocks);
  for (int r = 0; r < ctx->size; r++) {
    any |= all[r] & 1;
    if (ctx->plan.block_of[r] >= 0) ctx->changed[ctx->plan.block_of[r]] |= (unsigned char)all[r];
  }
  free(all);
  return any;
}

static int checkpoint_collective(fuze_ctx *ctx) {
  ctx->ckpt_calls++;
  fuze__persist_free(ctx); /* registrations after a restart are done */
  if (lost_at(ctx, FUZE_PHASE_BEFORE, 1)) return recover_if_lost(ctx);
  /* Stacks and maps: complete batched operations, then make room for the
   * largest member (this also sends slots that were deferred for lack of it). */
  int rc = fuze__agree(&ctx->net, fuze__fobjs_flush(ctx));
  if (rc || (rc = fuze__fobjs_grow(ctx))) return rc;
  rc = fuze__arrays_send(ctx, ctx->arrays, ctx->narrays, 1);
  /* Phase-1 agreement: every rank alive and flushed, or nobody commits. */
  fuze__inject_point(ctx, FUZE_PHASE_SENT);
  if (gather_changes(ctx)) return recover_if_lost(ctx);
  if ((rc = fuze__agree(&ctx->net, rc))) return checkpoint_abort(ctx, rc);
  ctx->decided = ctx->epoch + 1;
  fuze__arrays_promote(ctx, ctx->arrays, ctx->narrays, ctx->changed);
  fuze__fobjs_promote(ctx, ctx->changed);
  ctx->hosted_epoch = ctx->decided;
  if (lost_at(ctx, FUZE_PHASE_PROMOTED, 0)) return recover_if_lost(ctx);
  fuze__arrays_update_shadow(ctx, ctx->arrays, ctx->narrays);
  fuze__fobjs_commit_logs(ctx);
  ctx->ops_committed = fuze__fobjs_ops(ctx);
  ctx->epoch = ctx->decided;
  if (lost_at(ctx, FUZE_PHASE_AFTER, 0)) return recover_if_lost(ctx);
  if ((rc = fuze__byz_refresh(ctx))) return rc;         /* code=byzantine: replicas */
  if ((rc = fuze__verify_after_commit(ctx))) return rc; /* corrupt injection, verify_every */
  int byz = fuze__byz_check(ctx);                        /* code=byzantine: Fig. 6 */
  if (byz < 0) return byz;
  if ((rc = fuze__persist_epoch(ctx))) return rc > 0 ? recover_if_lost(ctx) : rc;
  /* No operation of the next epoch may reach a host still promoting. */
  if (ctx->nfobjs) MPI_Barrier(ctx->net.comm);
  return byz;
}

int fuze_checkpoint(fuze_ctx *ctx) {
  int rc = check_ctx(ctx, "fuze_checkpoint");
  if (rc) return rc;
  ctl c = {.op = OP_CHECKPOINT};
  send_ctl(ctx, &c);
  return checkpoint_collective(ctx);
}

int fuze_recover(fuze_ctx *ctx) {
  int rc = check_ctx(ctx, "fuze_recover");
  if (rc) return rc;
  ctl c = {.op = OP_RECOVER};
  send_ctl(ctx, &c);
  return recover_if_lost(ctx);
}

int fuze_verify(fuze_ctx *ctx, fuze_verify_report *report) {
  int rc = check_ctx(ctx, "fuze_verify");
  if (rc) return rc;
  ctl c = {.op = OP_VERIFY};
  send_ctl(ctx, &c);
  return fuze__verify_collective(ctx, report);
}

int fuze_flush(fuze_ctx *ctx) {
  int rc = check_ctx(ctx, "fuze_flush");
  return rc ? rc : fuze__fobjs_flush(ctx);
}

/* ---- stacks and maps ---- */

static int validate_create(fuze_ctx *ctx, const ctl *c, const char *name, int kind, size_t kb,
                           size_t nb) {
  const char *fn = kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create";
  if (ctx->is_spare) return FUZE_SUCCESS;
  if (!name || !*name || strlen(name) >= FUZE_NAME_MAX)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: name must be 1..%d characters", fn, FUZE_NAME_MAX - 1);
  if (strcmp(name, c->name))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: name '%s' on rank %d differs from '%s' on rank 0", fn,
                   name, ctx->rank, c->name);
  if (nb == 0 || (kind == FUZE_FOBJ_MAP && kb == 0))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s('%s'): %s size must be at least 1 byte", fn, name,
                   nb == 0 ? (kind == FUZE_FOBJ_MAP ? "value" : "element") : "key");
  if (kb != c->a || nb != c->b)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s('%s'): sizes (%zu, %zu) on rank %d differ from (%llu, "
                   "%llu) on rank 0", fn, name, kb, nb, ctx->rank, (unsigned long long)c->a,
                   (unsigned long long)c->b);
  if (find_array(ctx, name)) return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: name '%s' is already used", fn, name);
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!strcmp(ctx->fobjs[x]->name, name))
      return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: name '%s' is already used", fn, name);
  return FUZE_SUCCESS;
}

static int create_collective(fuze_ctx *ctx, const ctl *c, const char *name, size_t kb, size_t nb,
                             fuze_fobj **out) {
  int kind = c->n;
  int rc = fuze__agree(&ctx->net, validate_create(ctx, c, name, kind, kb, nb));
  if (rc) return rc;
  size_t alloc = kind == FUZE_FOBJ_MAP ? sizeof(fuze_map) : sizeof(fuze_stack);
  const fuze_pstruct *ps = NULL;
  if (ctx->restore) {
    ps = fuze__persist_find(ctx, c->name, kind == FUZE_FOBJ_MAP ? FUZE_PS_MAP : FUZE_PS_STACK);
    if (!ps) rc = CTX_ERR(ctx, FUZE_ERR_NOT_FOUND, "%s('%s'): the restarted epoch %llu holds no %s "
                          "of that name", kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create",
                          c->name, (unsigned long long)ctx->epoch, kind == FUZE_FOBJ_MAP ? "map" : "stack");
    else if (ps->kb != c->a || ps->nb != c->b)
      rc = CTX_ERR(ctx, FUZE_ERR_ARG, "'%s': the restarted epoch stores key/value sizes (%zu, %zu), "
                   "registered (%llu, %llu)", c->name, ps->kb, ps->nb, (unsigned long long)c->a,
                   (unsigned long long)c->b);
    if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  }
  fuze_fobj *f = NULL;
  rc = fuze__fobj_create(ctx, c->name, kind, (size_t)c->a, (size_t)c->b, alloc, ps ? ps->cap : 0, &f);
  if (!rc && ps) rc = fuze__fobj_restore(f, ps->count, ps->seq, ps->keys, ps->data);
  if (out) *out = f;
  return rc;
}

static int create_entry(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                        fuze_fobj **out) {
  int rc = check_ctx(ctx, kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create");
  if (rc) return rc;
  ctl c = {.op = OP_CREATE, .n = kind, .a = kb, .b = nb};
  if (ctx->rank == 0 && name) snprintf(c.name, sizeof c.name, "%s", name);
  send_ctl(ctx, &c);
  return create_collective(ctx, &c, name, kb, nb, out);
}

int fuze_stack_create(fuze_ctx *ctx, const char *name, size_t elem_size, fuze_stack **stack) {
  fuze_fobj *f = NULL;
  int rc = create_entry(ctx, name, FUZE_FOBJ_STACK, 0, elem_size, &f);
  if (stack) *stack = rc ? NULL : (fuze_stack *)f;
  return rc;
}

int fuze_map_create(fuze_ctx *ctx, const char *name, size_t key_size, size_t value_size,
                    fuze_map **map) {
  fuze_fobj *f = NULL;
  int rc = create_entry(ctx, name, FUZE_FOBJ_MAP, key_size, value_size, &f);
  if (map) *map = rc ? NULL : (fuze_map *)f;
  return rc;
}

/* Test hook: the next stack/map operation of `rank` wipes it after reaching
 * `backups` of its backups (0: before any). */
static int inject_op_collective(fuze_ctx *ctx, const ctl *c) {
  int rc = FUZE_SUCCESS;
  if (c->a >= (uint64_t)ctx->size || c->b > (uint64_t)ctx->plan.f)
    rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject_op: rank must be < %d and backups <= faults=%d",
                 ctx->size, ctx->plan.f);
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  if ((uint64_t)ctx->rank == c->a) {
    ctx->op_inject_hosts = (int)c->b;
  }
  return FUZE_SUCCESS;
}

int fuze_inject_op(fuze_ctx *ctx, int rank, int backups) {
  int rc = check_ctx(ctx, "fuze_inject_op");
  if (rc) return rc;
  ctl c = {.op = OP_INJECT_OP, .a = (uint64_t)(rank < 0 ? UINT64_MAX : (uint64_t)rank),
           .b = (uint64_t)(backups < 0 ? UINT64_MAX : (uint64_t)backups)};
  send_ctl(ctx, &c);
  return inject_op_collective(ctx, &c);
}

/* ---- injection ---- */

static int inject_check(fuze_ctx *ctx, const ctl *c) {
  if (c->n < 0 || c->n > FUZE_MAX_INJECT_RANKS)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject: nranks must be 0..%d (and ranks not NULL), got %d",
                   FUZE_MAX_INJECT_RANKS, c->n);
  for (int r = 0; r < c->n; r++)
    if (c->ranks[r] < 0 || c->ranks[r] >= ctx->size)
      return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject: rank %d does not exist (the job has %d ranks)",
                     c->ranks[r], ctx->size);
  return FUZE_SUCCESS;
}

static int inject_collective(fuze_ctx *ctx, const ctl *c) {
  int rc = fuze__agree(&ctx->net, inject_check(ctx, c));
  if (rc) return rc;
  for (int r = 0; r < c->n; r++)
    if (c->ranks[r] == ctx->rank && !ctx->lost) {
      if (ctx->cfg.verbose) printf("fuze: rank %d wiped (fuze_inject)\n", ctx->rank);
      fuze__wipe_self(ctx);
    }
  return FUZE_SUCCESS;
}

/* Append a spec for the next checkpoint call; every rank appends the same. */
static int inject_at_collective(fuze_ctx *ctx, const ctl *c) {
  int rc = inject_check(ctx, c), phase = -1;
  for (int p = 0; p < FUZE_PHASE_COUNT; p++)
    if (!strcmp(c->name, fuze__phase_name(p))) phase = p;
  if (!rc && phase < 0)
    rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject_at: unknown phase '%s' (accepted: before, "
                 "partial, sent, promoted, after)", c->name);
  if (!rc && ctx->cfg.ninject >= FUZE_MAX_INJECT) {
    /* Specs of past checkpoints can never fire again: drop them. */
    int kept = 0;
    for (int s = 0; s < ctx->cfg.ninject; s++)
      if (ctx->cfg.inject[s].at_checkpoint > ctx->ckpt_calls) ctx->cfg.inject[kept++] = ctx->cfg.inject[s];
    ctx->cfg.ninject = kept;
    if (kept >= FUZE_MAX_INJECT) rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_inject_at: too many pending injections");
  }
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  fuze_inject_spec *sp = &ctx->cfg.inject[ctx->cfg.ninject++];
  memset(sp, 0, sizeof *sp);
  sp->nranks = c->n;
  memcpy(sp->ranks, c->ranks, sizeof(int) * (size_t)c->n);
  sp->at_checkpoint = ctx->ckpt_calls + 1;
  sp->phase = phase;
  return FUZE_SUCCESS;
}

static void fill_ranks(ctl *c, const int *ranks, int nranks) {
  if (!ranks && nranks > 0) c->n = -1;
  for (int r = 0; r < nranks && r < FUZE_MAX_INJECT_RANKS && ranks; r++) c->ranks[r] = ranks[r];
  if (nranks > FUZE_MAX_INJECT_RANKS) c->n = -1;
}

int fuze_inject_at(fuze_ctx *ctx, const int *ranks, int nranks, const char *phase) {
  int rc = check_ctx(ctx, "fuze_inject_at");
  if (rc) return rc;
  ctl c = {.op = OP_INJECT_AT, .n = nranks};
  if (ctx->rank == 0) {
    fill_ranks(&c, ranks, nranks);
    snprintf(c.name, sizeof c.name, "%s", phase ? phase : "(null)");
  }
  send_ctl(ctx, &c);
  return inject_at_collective(ctx, &c);
}

int fuze_inject(fuze_ctx *ctx, const int *ranks, int nranks) {
  int rc = check_ctx(ctx, "fuze_inject");
  if (rc) return rc;
  ctl c = {.op = OP_INJECT, .n = nranks};
  if (ctx->rank == 0) fill_ranks(&c, ranks, nranks);
  send_ctl(ctx, &c);
  return inject_collective(ctx, &c);
}

/* ---- init / finalize ---- */

static int build_codes(fuze_ctx *ctx) {
  const fuze_plan *p = &ctx->plan;
  ctx->codes = calloc((size_t)p->nblocks, sizeof *ctx->codes);
  if (!ctx->codes) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_init: out of memory");
  for (int b = 0; b < p->nblocks; b++) {
    int k = p->block_start[b + 1] - p->block_start[b];
    int rc = fuze__code_init(&ctx->codes[b], k, p->f, ctx->cfg.code);
    if (rc) return CTX_ERR(ctx, rc, "fuze_init: %s", fuze__thread_msg());
  }
  return FUZE_SUCCESS;
}

/* One communicator per block: its members in block order, then its hosts in
 * backup order, so that block-comm rank x is block member x of the code. */
static int build_block_comms(fuze_ctx *ctx) {
  const fuze_plan *p = &ctx->plan;
  ctx->block_comm = malloc(sizeof(MPI_Comm) * (size_t)(p->nblocks ? p->nblocks : 1));
  if (!ctx->block_comm) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_init: out of memory");
  MPI_Group world;
  MPI_Comm_group(ctx->net.comm, &world);
  int ranks[512];
  for (int b = 0; b < p->nblocks; b++) {
    int k = p->block_start[b + 1] - p->block_start[b];
    for (int i = 0; i < k; i++) ranks[i] = p->members[p->block_start[b] + i];
    for (int j = 0; j < p->f; j++) ranks[k + j] = p->hosts[b * p->f + j];
    MPI_Group g;
    MPI_Group_incl(world, k + p->f, ranks, &g);
    MPI_Comm_create(ctx->net.comm, g, &ctx->block_comm[b]);
    MPI_Group_free(&g);
  }
  MPI_Group_free(&world);
  return FUZE_SUCCESS;
}

static int build_plan(fuze_ctx *ctx) {
  char err[FUZE_MSG_LEN] = "";
  fuze_plan_input in = {ctx->size, ctx->domain, ctx->ndomains, ctx->cfg.spares, ctx->cfg.faults,
                        ctx->cfg.code == FUZE_CODE_REPLICATE ? 1 : ctx->cfg.block};
  int rc = fuze__plan_build(&in, &ctx->plan, err, sizeof err);
  if (rc) return CTX_ERR(ctx, rc, "fuze_init: %s", err);
  for (int s = 0; s < ctx->cfg.ninject; s++)
    for (int r = 0; r < ctx->cfg.inject[s].nranks; r++)
      if (ctx->cfg.inject[s].ranks[r] >= ctx->size)
        return CTX_ERR(ctx, FUZE_ERR_CONFIG, "config: inject names rank %d but the job has %d ranks",
                       ctx->cfg.inject[s].ranks[r], ctx->size);
  return FUZE_SUCCESS;
}

static void print_plan(const fuze_ctx *ctx) {
  const fuze_plan *p = &ctx->plan;
  if (!ctx->cfg.verbose || ctx->rank != 0) return;
  printf("fuze: %d ranks (%d compute), %d failure domains, faults=%d, spares=%d, code=%s: "
         "%d blocks, %d backups (replication: %d)\n", p->nranks, p->ncompute, p->ndomains, p->f,
         p->spares, fuze__code_label(ctx->cfg.code, ctx->cfg.mode), p->nblocks, p->nblocks * p->f, p->ncompute * p->f);
  for (int b = 0; b < p->nblocks; b++) {
    printf("fuze:   block %d: ranks", b);
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) printf(" %d", p->members[x]);
    printf("; backups on ranks");
    for (int j = 0; j < p->f; j++) printf(" %d", p->hosts[b * p->f + j]);
    printf("\n");
  }
  fflush(stdout);
}

static void ctx_free(fuze_ctx *ctx) {
  if (!ctx) return;
  for (int x = 0; x < ctx->narrays; x++) fuze__array_free(ctx->arrays[x]);
  free(ctx->arrays);
  for (int x = 0; x < ctx->nfobjs; x++) fuze__fobj_free(ctx->fobjs[x]);
  free(ctx->fobjs);
  free(ctx->stage_buf);
  free(ctx->changed);
  fuze__byz_free(ctx);
  fuze__persist_free(ctx);
  for (int b = 0; ctx->block_comm && b < ctx->plan.nblocks; b++)
    if (ctx->block_comm[b] != MPI_COMM_NULL) MPI_Comm_free(&ctx->block_comm[b]);
  free(ctx->block_comm);
  for (int b = 0; ctx->codes && b < ctx->plan.nblocks; b++) fuze__code_free(&ctx->codes[b]);
  free(ctx->codes);
  fuze__plan_free(&ctx->plan);
  free(ctx->domain);
  if (ctx->net.comm != MPI_COMM_NULL) MPI_Comm_free(&ctx->net.comm);
  free(ctx);
}

static int setup(fuze_ctx *ctx, const char *config) {
  int rc = fuze__config_parse(config, &ctx->cfg, ctx->msg);
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  ctx->net.shm = ctx->cfg.shm;
  ctx->net.verbose = ctx->cfg.verbose;
  ctx->hook = fuze__inject_hook; /* specs can also be armed later (fuze_inject*) */
  ctx->domain = malloc(sizeof(int) * (size_t)ctx->size);
  rc = ctx->domain ? fuze__topo_domains(ctx->net.comm, &ctx->cfg, ctx->domain, &ctx->ndomains, ctx->msg)
                   : CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_init: out of memory");
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  if ((rc = fuze__agree(&ctx->net, build_plan(ctx)))) return rc;
  if ((rc = fuze__agree(&ctx->net, build_codes(ctx)))) return rc;
  if ((rc = fuze__agree(&ctx->net, build_block_comms(ctx)))) return rc;
  ctx->is_spare = ctx->plan.block_of[ctx->rank] < 0;
  print_plan(ctx);
  return fuze__persist_init(ctx);
}

static int finalize_collective(fuze_ctx *ctx);

/* Spare ranks: take part in every collective the compute ranks start. */
static void serve(fuze_ctx *ctx) {
  for (;;) {
    ctl c;
    send_ctl(ctx, &c);
    switch (c.op) {
      case OP_PROTECT: protect_collective(ctx, &c, c.name, NULL, 0, MPI_BYTE, NULL); break;
      case OP_CHECKPOINT: checkpoint_collective(ctx); break;
      case OP_RECOVER: recover_if_lost(ctx); break;
      case OP_INJECT: inject_collective(ctx, &c); break;
      case OP_INJECT_AT: inject_at_collective(ctx, &c); break;
      case OP_INJECT_OP: inject_op_collective(ctx, &c); break;
      case OP_CREATE: create_collective(ctx, &c, c.name, (size_t)c.a, (size_t)c.b, NULL); break;
      case OP_FINALIZE: finalize_collective(ctx); return;
      case OP_VERIFY: fuze__verify_collective(ctx, NULL); break;
      default: return;
    }
  }
}

int fuze_init(MPI_Comm comm, const char *config, fuze_ctx **ctxp, MPI_Comm *app_comm) {
  if (!ctxp || !app_comm) return FUZE_ERR(FUZE_ERR_ARG, "fuze_init: ctx and app_comm must not be NULL");
  *ctxp = NULL;
  *app_comm = MPI_COMM_NULL;
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) return FUZE_ERR(FUZE_ERR_STATE, "fuze_init: MPI is not initialised (call MPI_Init first)");
  fuze_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return FUZE_ERR(FUZE_ERR_NOMEM, "fuze_init: out of memory");
  if (MPI_Comm_dup(comm, &ctx->net.comm) != MPI_SUCCESS) {
    free(ctx);
    return FUZE_ERR(FUZE_ERR_MPI, "fuze_init: MPI_Comm_dup failed");
  }
  MPI_Comm_set_errhandler(ctx->net.comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(ctx->net.comm, &ctx->rank);
  MPI_Comm_size(ctx->net.comm, &ctx->size);
  ctx->app = MPI_COMM_NULL;
  ctx->op_inject_hosts = -1;
  ctx->net.rank = ctx->rank;
  ctx->net.size = ctx->size;
  ctx->net.one_node = -1;
  ctx->net.msg = ctx->msg;
  ctx->debug_reorder = getenv("FUZE_DEBUG_REORDER") && atoi(getenv("FUZE_DEBUG_REORDER"));
  int rc = setup(ctx, config);
  if (rc < 0) {
    fuze__error(NULL, rc, "%s", ctx->msg);
    ctx_free(ctx);
    return rc;
  }
  MPI_Comm_split(ctx->net.comm, ctx->is_spare ? MPI_UNDEFINED : 0, ctx->rank, app_comm);
  if (ctx->is_spare) {
    serve(ctx);
    ctx_free(ctx);
    return FUZE_SUCCESS;
  }
  ctx->app = *app_comm;
  *ctxp = ctx;
  return rc; /* FUZE_SUCCESS or FUZE_RESTARTED */
}

static void print_summary(fuze_ctx *ctx) {
  uint64_t mine[3] = {0, 0, 0}, sum[3];
  for (int x = 0; x < ctx->narrays; x++) {
    fuze_array *a = ctx->arrays[x];
    mine[0] += a->bytes;
    for (int h = 0; h < a->nhosted; h++) mine[1] += a->hosted[h].fused;
    mine[2] += a->bytes;
  }
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    mine[0] += f->n * (f->kb + f->nb);
    for (int h = 0; h < f->nhosted; h++) mine[1] += f->hosted[h].fused;
  }
  MPI_Reduce(mine, sum, 3, MPI_UINT64_T, MPI_SUM, 0, ctx->net.comm);
  if (ctx->rank != 0 || !ctx->cfg.verbose) return;
  double prot = sum[0] ? (double)sum[0] : 1.0;
  printf("fuze: summary: epoch %llu, %llu protected bytes, %llu committed parity bytes "
         "(%.3fx protected; replication would hold %dx), %llu array committed-copy bytes, "
         "%llu recoveries\n", (unsigned long long)ctx->epoch, (unsigned long long)sum[0],
         (unsigned long long)sum[1], (double)sum[1] / prot, ctx->plan.f,
         (unsigned long long)sum[2], (unsigned long long)ctx->recoveries);
  fflush(stdout);
}

static int finalize_collective(fuze_ctx *ctx) {
  print_summary(ctx);
  ctx->finalized = 1;
  MPI_Barrier(ctx->net.comm);
  return FUZE_SUCCESS;
}

int fuze_finalize(fuze_ctx **ctxp) {
  if (!ctxp || !*ctxp) return FUZE_SUCCESS;
  fuze_ctx *ctx = *ctxp;
  int rc = check_ctx(ctx, "fuze_finalize");
  if (rc) return rc;
  ctl c = {.op = OP_FINALIZE};
  send_ctl(ctx, &c);
  finalize_collective(ctx);
  ctx_free(ctx);
  *ctxp = NULL;
  return FUZE_SUCCESS;
}

int fuze_get_stats(const fuze_ctx *ctx, fuze_stats *st) {
  int rc = check_ctx(ctx, "fuze_get_stats");
  if (rc) return rc;
  if (!st) return FUZE_ERR(FUZE_ERR_ARG, "fuze_get_stats: stats is NULL");
  memset(st, 0, sizeof *st);
  st->epoch = ctx->epoch;
  for (int x = 0; x < ctx->narrays; x++) {
    const fuze_array *a = ctx->arrays[x];
    st->protected_bytes += a->bytes;
    st->shadow_bytes += a->shadow ? a->bytes : 0;
    for (int h = 0; h < a->nhosted; h++) st->parity_bytes += a->hosted[h].fused;
  }
  /* Stacks and maps: live contents; parity is what the allocated regions hold. */
  for (int x = 0; x < ctx->nfobjs; x++) {
    const fuze_fobj *f = ctx->fobjs[x];
    st->protected_bytes += f->n * (f->kb + f->nb);
    for (int h = 0; h < f->nhosted; h++) st->parity_bytes += f->hosted[h].fused;
  }
  st->working_bytes = st->parity_bytes;
  st->sent_bytes = ctx->net.sent_bytes;
  st->recovered_bytes = ctx->recovered_bytes;
  st->recoveries = ctx->recoveries;
  st->nblocks = ctx->plan.nblocks;
  st->nbackups = ctx->plan.nblocks * ctx->plan.f;
  return FUZE_SUCCESS;
}

const char *fuze_last_error(const fuze_ctx *ctx) {
  return ctx ? ctx->msg : fuze__thread_msg();
}
