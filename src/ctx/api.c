/* api: the public entry points that are collective. Each one sends its
 * opcode on the control channel (ctx/control.h) so that spare ranks join,
 * then runs the collective that every rank runs. */
#include "core/bigmem.h"
#include "ctx/control.h"
#include "ctx/repair.h"

#include "comm/coll.h"
#include "comm/transport.h"
#include "core/pfile.h"
#include "data/array.h"
#include "data/fused.h"
#include "data/threads.h"
#include "proto/byzantine.h"
#include "proto/checkpoint.h"
#include "proto/inject.h"
#include "proto/persist.h"
#include "proto/verify.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a public call returns: FUZE_RANK_LOST (a rank died under ULFM) is
 * internal; until the repair onto replacement ranks exists (issue 14) it is
 * FUZE_ERR_MPI, its message saying so. */
/* A collective that saw a process die (ULFM) repairs it: FUZE_RECOVERED on
 * every survivor (ctx/repair.h). */
static int pub(fuze_ctx *ctx, int rc) {
  if (rc != FUZE_RANK_LOST) return rc;
  rc = fuze__ft_repair(ctx);
  if (rc != FUZE_RANK_LOST) return rc;
  return CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "%s (a process died during the repair of an earlier "
                 "death)", ctx->msg);
}

static int is_predefined(MPI_Datatype type) {
  int ni, na, nd, comb;
  if (type == MPI_DATATYPE_NULL) return 0;
  if (MPI_Type_get_envelope(type, &ni, &na, &nd, &comb) != MPI_SUCCESS) return 0;
  return comb == MPI_COMBINER_NAMED;
}

static int validate_protect(fuze_ctx *ctx, const fuze_ctl *c, const char *name, void *base,
                            size_t count, MPI_Datatype type, size_t *elem) {
  if (ctx->is_spare) return FUZE_SUCCESS;
  if (!name || !*name || strlen(name) >= FUZE_NAME_MAX)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect: name must be 1..%d characters", FUZE_NAME_MAX - 1);
  if (strcmp(name, c->name))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect: name '%s' on rank %d differs from '%s' on "
                   "rank 0 (registrations must be in the same order everywhere)", name, ctx->rank, c->name);
  if (!base && count > 0)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): base is NULL but count is %zu", name, count);
  if (type == MPI_DATATYPE_NULL)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): type is MPI_DATATYPE_NULL", name);
  int sz;
  int rc = FUZE_MPI(ctx->msg, MPI_Type_size(type, &sz));
  if (rc) return rc;
  if (sz <= 0) return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): type has size %d", name, sz);
  /* An element is the type's extent: a derived type (a struct of scalars, a
   * contiguous or vector type) is protected as count * extent bytes from
   * base, gaps (padding) included, so its data must lie in [0, extent). */
  MPI_Aint lb = 0, ext = 0, tlb = 0, text = 0;
  if ((rc = FUZE_MPI(ctx->msg, MPI_Type_get_extent(type, &lb, &ext))) ||
      (rc = FUZE_MPI(ctx->msg, MPI_Type_get_true_extent(type, &tlb, &text))))
    return rc;
  if (lb != 0 || ext <= 0 || tlb < 0 || tlb + text > ext)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): the datatype has lower bound %ld, extent "
                   "%ld and its data at [%ld, %ld); fuze protects count * extent bytes from base, "
                   "so the data must lie in [0, extent) with lower bound 0 (for a struct, set the "
                   "bounds with MPI_Type_create_resized(type, 0, sizeof(struct), &resized))",
                   name, (long)lb, (long)ext, (long)tlb, (long)(tlb + text));
  /* count * extent must neither wrap nor exceed what an MPI_Aint addresses. */
  if (count > (size_t)PTRDIFF_MAX / (size_t)ext)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): count %zu of %ld-byte elements is more "
                   "than %td bytes (count * size overflows)", name, count, (long)ext, PTRDIFF_MAX);
  *elem = (size_t)ext;
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
static int restore_array(fuze_ctx *ctx, const char *name, void *base, size_t count, size_t elem,
                         MPI_Datatype type) {
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
  /* Same size is not same type: MPI_LONG over stored MPI_DOUBLE would
   * restore garbage. Named types must match (unnamed derived ones are
   * stored without a name and checked by size only). */
  char tname[MPI_MAX_OBJECT_NAME] = "", stored[sizeof ps->type_name];
  int len = 0;
  if (MPI_Type_get_name(type, tname, &len) != MPI_SUCCESS) tname[0] = 0;
  snprintf(stored, sizeof stored, "%.31s", tname);
  if (ps->type_name[0] && stored[0] && strcmp(stored, ps->type_name))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): the restarted epoch stores %s "
                   "elements, but %s was registered (register the same datatype)", name,
                   ps->type_name, stored);
  if (count) memcpy(base, ps->data, count * elem);
  return FUZE_SUCCESS;
}

/* A registration that failed half-way goes away on every rank (each step
 * below is agreed, so every rank drops it): no later checkpoint may scan an
 * array without a committed copy or a window. Collective (MPI_Win_free). */
static int drop_array(fuze_ctx *ctx, fuze_array *a, int rc) {
  int x = 0;
  while (x < ctx->narrays && ctx->arrays[x] != a) x++;
  if (x == ctx->narrays) return rc;
  fuze__array_free(a);
  memmove(ctx->arrays + x, ctx->arrays + x + 1, sizeof *ctx->arrays * (size_t)(ctx->narrays - x - 1));
  ctx->narrays--;
  return rc;
}

/* Register (or re-register) and encode the array's current contents: the
 * same two phases as a checkpoint, restricted to this array. On error no
 * registration of the name remains (a failed re-registration drops the old
 * one: its window is gone already). */
int fuze__protect_collective(fuze_ctx *ctx, const fuze_ctl *c, const char *name, void *base,
                              size_t count, MPI_Datatype type, fuze_array **out) {
  size_t elem = 1;
  int rc = fuze__agree(&ctx->net, validate_protect(ctx, c, name, base, count, type, &elem));
  if (rc || (rc = fuze__agree(&ctx->net, restore_array(ctx, c->name, base, count, elem, type)))) return rc;
  int any = ctx->lost;
  if ((rc = fuze__max_int(&ctx->net, &any))) return rc;
  if (any) return CTX_ERR(ctx, FUZE_ERR_STATE, "fuze_protect('%s'): ranks were lost; call "
                          "fuze_recover() or fuze_checkpoint() first", c->name);
  fuze_array *a = find_array(ctx, c->name);
  if (a) {
    fuze__win_free(&a->win, 1);
    fuze__big_free(a->shadow, a->bytes);
    a->shadow = NULL;
    fuze__big_free(a->cbase, a->csize); /* zeroed again at the layout */
    a->cbase = NULL;
    a->csize = 0;
  } else if ((rc = fuze__agree(&ctx->net, new_array(ctx, c->name, &a)))) {
    return rc;
  }
  a->base = ctx->is_spare ? NULL : base;
  a->count = ctx->is_spare ? 0 : count;
  if (a->type_owned) FUZE_MPI_TEARDOWN(MPI_Type_free(&a->type));
  a->type_owned = 0;
  a->type = ctx->is_spare ? MPI_BYTE : type;
  if (!ctx->is_spare && !is_predefined(type)) { /* the application may free its handle */
    char tname[MPI_MAX_OBJECT_NAME] = "";
    int len = 0;
    rc = FUZE_MPI(ctx->msg, MPI_Type_get_name(type, tname, &len));
    if (!rc) rc = FUZE_MPI(ctx->msg, MPI_Type_dup(type, &a->type));
    if (!rc) {
      a->type_owned = 1;
      rc = FUZE_MPI(ctx->msg, MPI_Type_set_name(a->type, tname)); /* not "Dup ..." */
    } else {
      a->type = MPI_BYTE;
    }
  }
  a->elem = elem;
  a->bytes = a->count * elem;
  a->shadow = rc || fuze__hook(ctx, FUZE_HOOK_ALLOC, FUZE_ALLOC_PROTECT) ? NULL
                                                                      : fuze__big_zalloc(a->bytes, 1);
  rc = rc ? rc : a->shadow ? FUZE_SUCCESS : CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_protect('%s'): out "
                                                    "of memory (a committed copy of %zu bytes)",
                                                    c->name, a->bytes);
  if ((rc = fuze__agree(&ctx->net, rc)) || (rc = fuze__array_layout(ctx, a)))
    return drop_array(ctx, a, rc);
  /* After a restart the files hold the committed copy and the parity:
   * loaded, not encoded again (persist.h). */
  int loaded = fuze__persist_load_array(ctx, a);
  if (loaded < 0) return drop_array(ctx, a, loaded);
  if (!loaded) {
    a->shadow_zero = a->shadow != NULL; /* fresh zero pages: the deltas are the data */
    rc = fuze__agree(&ctx->net, fuze__arrays_send(ctx, &a, 1, 0));
    if (rc) return drop_array(ctx, a, rc);
    fuze__arrays_promote(ctx, &a, 1, NULL);
    fuze__arrays_update_shadow(ctx, &a, 1);
  }
  fuze__persist_registered(ctx, c->name, FUZE_PS_ARRAY);
  if (out) *out = a;
  return rc;
}

static int protect_call(fuze_ctx *ctx, const char *name, void *base, size_t count,
                        MPI_Datatype type, fuze_array **array) {
  int rc = fuze__check_ctx(ctx, "fuze_protect");
  if (rc) return rc;
  if (ctx->replay) return fuze__replay_protect(ctx, name, base, count, type, array);
  fuze_ctl c = {.op = FUZE_OP_PROTECT};
  if (ctx->rank == 0 && name) snprintf(c.name, sizeof c.name, "%s", name);
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  rc = fuze__protect_collective(ctx, &c, name, base, count, type, array);
  if (rc < 0 && array) *array = NULL;
  return rc;
}

/* Unregister an array at once: its window (every rank's hosted parity of
 * it), committed copy and replicas are freed; later arrays move down one. */
int fuze__unprotect_collective(fuze_ctx *ctx, const fuze_ctl *c, const char *name) {
  int rc = FUZE_SUCCESS;
  if (!ctx->is_spare && (!name || !*name || strlen(name) >= FUZE_NAME_MAX))
    rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_unprotect: name must be 1..%d characters", FUZE_NAME_MAX - 1);
  else if (!ctx->is_spare && strcmp(name, c->name))
    rc = CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_unprotect: name '%s' on rank %d differs from '%s' on "
                 "rank 0 (collective calls must be in the same order everywhere)", name, ctx->rank, c->name);
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  int any = ctx->lost;
  if ((rc = fuze__max_int(&ctx->net, &any))) return rc;
  if (any) return CTX_ERR(ctx, FUZE_ERR_STATE, "fuze_unprotect('%s'): ranks were lost; call "
                          "fuze_recover() or fuze_checkpoint() first", c->name);
  int x = 0;
  while (x < ctx->narrays && strcmp(ctx->arrays[x]->name, c->name)) x++;
  if (x == ctx->narrays)
    return CTX_ERR(ctx, FUZE_ERR_NOT_FOUND, "fuze_unprotect('%s'): no array of that name is "
                   "protected (stacks and maps cannot be unprotected)", c->name);
  fuze__byz_drop_array(ctx, x);
  fuze__array_free(ctx->arrays[x]); /* MPI_Win_free: collective, as the registration was */
  memmove(&ctx->arrays[x], &ctx->arrays[x + 1], sizeof *ctx->arrays * (size_t)(ctx->narrays - x - 1));
  ctx->narrays--;
  return FUZE_SUCCESS;
}

static int unprotect_call(fuze_ctx *ctx, const char *name) {
  fuze_ctl c = {.op = FUZE_OP_UNPROTECT};
  if (ctx->rank == 0 && name) snprintf(c.name, sizeof c.name, "%s", name);
  int rc = fuze__ctl_send(ctx, &c);
  return rc ? rc : fuze__unprotect_collective(ctx, &c, name);
}

static int stored_count_call(fuze_ctx *ctx, const char *name, size_t *count) {
  if (!name || !count) return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_stored_count: NULL name or count");
  if (fuze__replay_count(ctx, name, count)) return FUZE_SUCCESS;
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

static int checkpoint_call(fuze_ctx *ctx) {
  int rc = fuze__check_ctx(ctx, "fuze_checkpoint");
  if (rc) return rc;
  ctx->joined = 0; /* a replacement's stored counts: until its first checkpoint */
  fuze_ctl c = {.op = FUZE_OP_CHECKPOINT};
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  return (fuze__checkpoint_collective(ctx));
}

static int recover_call(fuze_ctx *ctx) {
  int rc = fuze__check_ctx(ctx, "fuze_recover");
  if (rc) return rc;
  fuze_ctl c = {.op = FUZE_OP_RECOVER};
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  return (fuze__recover_if_lost(ctx));
}

static int verify_call(fuze_ctx *ctx, fuze_verify_report *report) {
  int rc = fuze__check_ctx(ctx, "fuze_verify");
  if (rc) return rc;
  fuze_ctl c = {.op = FUZE_OP_VERIFY};
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  return (fuze__verify_collective(ctx, report));
}

int fuze_flush(fuze_ctx *ctx) {
  int rc = fuze__check_ctx(ctx, "fuze_flush");
  if (rc || (rc = fuze__local_enter(ctx, "fuze_flush"))) return rc;
  fuze__send_lock(ctx);
  rc = fuze__fobjs_flush(ctx);
  fuze__send_unlock(ctx);
  /* Under ULFM the flushes report no death: looked for, then repaired. */
  int lost = fuze__op_lost(ctx, rc);
  fuze__local_leave(ctx);
  return lost ? fuze__op_repair(ctx, "fuze_flush", rc) : rc;
}

/* The largest capacity hint: config capacity's bound. */
#define FUZE_MAX_CAPACITY_HINT (1ULL << 30)

static int validate_create(fuze_ctx *ctx, const fuze_ctl *c, const char *name, int kind, size_t kb,
                           size_t nb, size_t cap) {
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
  if (kind == FUZE_FOBJ_MAP && (kb > FUZE_FOBJ_ENTRY_MAX || nb > FUZE_FOBJ_ENTRY_MAX - kb))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s('%s'): key size %zu plus value size %zu bytes is more "
                   "than the limit of %zu bytes per entry", fn, name, kb, nb, FUZE_FOBJ_ENTRY_MAX);
  if (nb > FUZE_FOBJ_ENTRY_MAX)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s('%s'): element size %zu bytes is more than the limit of "
                   "%zu bytes", fn, name, nb, FUZE_FOBJ_ENTRY_MAX);
  if (kb != c->a || nb != c->b)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s('%s'): sizes (%zu, %zu) on rank %d differ from (%llu, "
                   "%llu) on rank 0", fn, name, kb, nb, ctx->rank, (unsigned long long)c->a,
                   (unsigned long long)c->b);
  if (cap > FUZE_MAX_CAPACITY_HINT)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_map_create_hint('%s'): capacity %zu is out of range "
                   "(1..%llu slots, or 0 for the configuration's capacity)", name, cap,
                   (unsigned long long)FUZE_MAX_CAPACITY_HINT);
  if (cap != c->cap)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_map_create_hint('%s'): capacity %zu on rank %d "
                   "differs from %llu on rank 0", name, cap, ctx->rank, (unsigned long long)c->cap);
  if (find_array(ctx, name)) return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: name '%s' is already used", fn, name);
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!strcmp(ctx->fobjs[x]->name, name))
      return CTX_ERR(ctx, FUZE_ERR_ARG, "%s: name '%s' is already used", fn, name);
  return FUZE_SUCCESS;
}

int fuze__create_collective(fuze_ctx *ctx, const fuze_ctl *c, const char *name, size_t kb, size_t nb,
                             size_t cap, fuze_fobj **out) {
  int kind = c->n;
  int rc = fuze__agree(&ctx->net, validate_create(ctx, c, name, kind, kb, nb, cap));
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
  rc = fuze__fobj_create(ctx, c->name, kind, (size_t)c->a, (size_t)c->b, alloc,
                         ps ? ps->cap : (size_t)c->cap, &f);
  if (!rc && ps && (rc = fuze__persist_restore_fobj(f, ps))) {
    /* Agreed: every rank drops the structure it just appended. */
    ctx->nfobjs--;
    fuze__fobj_free(f);
    f = NULL;
  }
  if (!rc && ps) fuze__persist_registered(ctx, ps->name, ps->kind);
  if (out) *out = f;
  return rc;
}

static int create_call(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                       size_t cap, fuze_fobj **out) {
  int rc = fuze__check_ctx(ctx, kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create");
  if (rc) return rc;
  if (ctx->replay) return fuze__replay_create(ctx, name, kind, kb, nb, out);
  fuze_ctl c = {.op = FUZE_OP_CREATE, .n = kind, .a = kb, .b = nb, .cap = cap};
  if (ctx->rank == 0 && name) snprintf(c.name, sizeof c.name, "%s", name);
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  return fuze__create_collective(ctx, &c, name, kb, nb, cap, out);
}

/* Collective calls run one at a time per context, with no local call in
 * progress (data/threads.h). */
#define COLLECTIVE(ctx, fn, call)                   \
  do {                                              \
    int rc_ = fuze__check_ctx((ctx), (fn));         \
    if (rc_ || (rc_ = fuze__coll_enter((ctx), (fn)))) return rc_; \
    rc_ = fuze__replay_check((ctx), (fn));          \
    if (!rc_) rc_ = pub((ctx), (call));             \
    fuze__coll_leave(ctx);                          \
    return rc_;                                     \
  } while (0)

static int create_entry(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                        size_t cap, fuze_fobj **out) {
  COLLECTIVE(ctx, kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create",
             create_call(ctx, name, kind, kb, nb, cap, out));
}

int fuze_stack_create(fuze_ctx *ctx, const char *name, size_t elem_size, fuze_stack **stack) {
  fuze_fobj *f = NULL;
  int rc = create_entry(ctx, name, FUZE_FOBJ_STACK, 0, elem_size, 0, &f);
  if (stack) *stack = rc ? NULL : (fuze_stack *)f;
  return rc;
}

int fuze_map_create(fuze_ctx *ctx, const char *name, size_t key_size, size_t value_size,
                    fuze_map **map) {
  return fuze_map_create_hint(ctx, name, key_size, value_size, 0, map);
}

int fuze_map_create_hint(fuze_ctx *ctx, const char *name, size_t key_size, size_t value_size,
                         size_t capacity, fuze_map **map) {
  fuze_fobj *f = NULL;
  int rc = create_entry(ctx, name, FUZE_FOBJ_MAP, key_size, value_size, capacity, &f);
  if (map) *map = rc ? NULL : (fuze_map *)f;
  return rc;
}

static int inject_op_call(fuze_ctx *ctx, int rank, int backups) {
  int rc = fuze__check_ctx(ctx, "fuze_inject_op");
  if (rc) return rc;
  fuze_ctl c = {.op = FUZE_OP_INJECT_OP, .a = (uint64_t)(rank < 0 ? UINT64_MAX : (uint64_t)rank),
           .b = (uint64_t)(backups < 0 ? UINT64_MAX : (uint64_t)backups)};
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  return fuze__inject_op_collective(ctx, c.a, c.b);
}

/* Rank 0's arguments reach every rank; a NULL array travels as
 * FUZE_INJECT_RANKS_NULL in c->n (proto/inject.h), a count beyond the array
 * as itself (the check refuses it before the ranks are read). */
static void fill_ranks(fuze_ctl *c, const int *ranks, int nranks) {
  if (!ranks && nranks > 0) c->n = FUZE_INJECT_RANKS_NULL;
  for (int r = 0; r < nranks && r < FUZE_MAX_INJECT_RANKS && ranks; r++) c->ranks[r] = ranks[r];
}

static int inject_at_call(fuze_ctx *ctx, const int *ranks, int nranks, const char *phase) {
  int rc = fuze__check_ctx(ctx, "fuze_inject_at");
  if (rc) return rc;
  fuze_ctl c = {.op = FUZE_OP_INJECT_AT, .n = nranks};
  if (ctx->rank == 0) {
    fill_ranks(&c, ranks, nranks);
    snprintf(c.name, sizeof c.name, "%s", phase ? phase : "(null)");
  }
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  return fuze__inject_at_collective(ctx, c.ranks, c.n, c.name);
}

static int inject_call(fuze_ctx *ctx, const int *ranks, int nranks) {
  int rc = fuze__check_ctx(ctx, "fuze_inject");
  if (rc) return rc;
  fuze_ctl c = {.op = FUZE_OP_INJECT, .n = nranks};
  if (ctx->rank == 0) fill_ranks(&c, ranks, nranks);
  if ((rc = fuze__ctl_send(ctx, &c))) return rc;
  return fuze__inject_wipe_collective(ctx, c.ranks, c.n);
}

int fuze_protect(fuze_ctx *ctx, const char *name, void *base, size_t count, MPI_Datatype type,
                 fuze_array **array) {
  COLLECTIVE(ctx, "fuze_protect", protect_call(ctx, name, base, count, type, array));
}

int fuze_checkpoint(fuze_ctx *ctx) { COLLECTIVE(ctx, "fuze_checkpoint", checkpoint_call(ctx)); }

int fuze_recover(fuze_ctx *ctx) { COLLECTIVE(ctx, "fuze_recover", recover_call(ctx)); }

int fuze_verify(fuze_ctx *ctx, fuze_verify_report *report) {
  COLLECTIVE(ctx, "fuze_verify", verify_call(ctx, report));
}

int fuze_inject_op(fuze_ctx *ctx, int rank, int backups) {
  COLLECTIVE(ctx, "fuze_inject_op", inject_op_call(ctx, rank, backups));
}

int fuze_inject_at(fuze_ctx *ctx, const int *ranks, int nranks, const char *phase) {
  COLLECTIVE(ctx, "fuze_inject_at", inject_at_call(ctx, ranks, nranks, phase));
}

int fuze_inject(fuze_ctx *ctx, const int *ranks, int nranks) {
  COLLECTIVE(ctx, "fuze_inject", inject_call(ctx, ranks, nranks));
}

int fuze_stored_count(fuze_ctx *ctx, const char *name, size_t *count) {
  int rc = fuze__check_ctx(ctx, "fuze_stored_count");
  if (rc || (rc = fuze__local_enter(ctx, "fuze_stored_count"))) return rc;
  rc = stored_count_call(ctx, name, count);
  fuze__local_leave(ctx);
  return rc;
}

int fuze_unprotect(fuze_ctx *ctx, const char *name) {
  COLLECTIVE(ctx, "fuze_unprotect", unprotect_call(ctx, name));
}
