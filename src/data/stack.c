/* stack: fused stacks. Element p of a member is slot p; the fused node p at
 * each backup is the parity of the members' p-th elements, so a push or pop
 * changes one fused node (plus the member's replicated size). */
#include "data/fused.h"
#include "data/threads.h"

#include <string.h>

static int usable(const fuze_stack *s, const char *fn) {
  if (!s) return FUZE_ERR(FUZE_ERR_ARG, "%s: stack is NULL", fn);
  if (s->o.ctx->finalized) return FUZE_ERR(FUZE_ERR_STATE, "%s: called after fuze_finalize", fn);
  if (s->o.ctx->lost)
    return CTX_ERR(s->o.ctx, FUZE_ERR_STATE, "%s('%s'): this rank was wiped; the next collective "
                   "call recovers it", fn, s->o.name);
  return FUZE_SUCCESS;
}

static int stack_push(fuze_stack *s, const void *elem) {
  int rc = usable(s, "fuze_stack_push");
  if (rc) return rc;
  if (!elem) return CTX_ERR(s->o.ctx, FUZE_ERR_ARG, "fuze_stack_push('%s'): elem is NULL", s->o.name);
  return fuze__fobj_append(&s->o, NULL, elem, 1);
}

static int stack_pop(fuze_stack *s, void *elem) {
  int rc = usable(s, "fuze_stack_pop");
  if (rc) return rc;
  if (!s->o.n) return CTX_ERR(s->o.ctx, FUZE_ERR_EMPTY, "fuze_stack_pop('%s'): stack is empty", s->o.name);
  if (elem) memcpy(elem, s->o.vals + (s->o.n - 1) * s->o.nb, s->o.nb);
  return fuze__fobj_remove_slot(&s->o, s->o.n - 1, 1);
}

static int stack_peek(const fuze_stack *s, void *elem) {
  int rc = usable(s, "fuze_stack_peek");
  if (rc) return rc;
  if (!elem) return CTX_ERR(s->o.ctx, FUZE_ERR_ARG, "fuze_stack_peek('%s'): elem is NULL", s->o.name);
  if (!s->o.n) return CTX_ERR(s->o.ctx, FUZE_ERR_EMPTY, "fuze_stack_peek('%s'): stack is empty", s->o.name);
  memcpy(elem, s->o.vals + (s->o.n - 1) * s->o.nb, s->o.nb);
  return FUZE_SUCCESS;
}


static int stack_at(const fuze_stack *s, size_t i, void *elem) {
  int rc = usable(s, "fuze_stack_at");
  if (rc) return rc;
  if (!elem) return CTX_ERR(s->o.ctx, FUZE_ERR_ARG, "fuze_stack_at('%s'): elem is NULL", s->o.name);
  if (i >= s->o.n)
    return CTX_ERR(s->o.ctx, FUZE_ERR_NOT_FOUND, "fuze_stack_at('%s'): index %zu >= size %zu",
                   s->o.name, i, s->o.n);
  memcpy(elem, s->o.vals + i * s->o.nb, s->o.nb);
  return FUZE_SUCCESS;
}

/* The public calls: the stack's mutex and the context's gate
 * (data/threads.h) around each. */
#define STACK_CALL(s, fn, call) FUZE_FOBJ_CALL(s, "stack", fn, call)
#define STACK_MUT(s, fn, call) FUZE_FOBJ_MUT_CALL(s, "stack", fn, call)

int fuze_stack_push(fuze_stack *s, const void *elem) {
  STACK_MUT(s, "fuze_stack_push", stack_push(s, elem));
}

int fuze_stack_pop(fuze_stack *s, void *elem) { STACK_MUT(s, "fuze_stack_pop", stack_pop(s, elem)); }

int fuze_stack_peek(const fuze_stack *s, void *elem) {
  STACK_CALL(s, "fuze_stack_peek", stack_peek(s, elem));
}

int fuze_stack_at(const fuze_stack *s, size_t i, void *elem) {
  STACK_CALL(s, "fuze_stack_at", stack_at(s, i, elem));
}

size_t fuze_stack_size(const fuze_stack *s) {
  if (!s) return 0;
  fuze_fobj *o = (fuze_fobj *)&s->o;
  if (fuze__op_enter(o, "fuze_stack_size")) return 0;
  size_t n = o->n;
  fuze__op_leave(o);
  return n;
}
