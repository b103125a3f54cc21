/* inject: emulate the crash of a rank inside a running job ("wipe"). A wiped
 * rank keeps only what a freshly started replacement process would have: its
 * registrations (name, base, count, type) and the plan it can recompute. */
#include "fused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void poison(void *p, size_t n) {
  static const unsigned char pat[4] = {0xDE, 0xAD, 0xBE, 0xEF};
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++) c[i] = pat[i & 3];
}

static void wipe_array(fuze_array *a) {
  if (a->base) poison(a->base, a->bytes);
  if (a->winbase) poison(a->winbase, a->winsize);
  free(a->shadow);
  free(a->rank_bytes);
  free(a->fused);
  free(a->hosted);
  free(a->dirty);
  a->shadow = NULL;
  a->rank_bytes = NULL;
  a->fused = NULL;
  a->hosted = NULL;
  a->dirty = NULL;
  a->nhosted = 0;
  a->ndirty = 0;
}

void fuze__wipe_self(fuze_ctx *ctx) {
  for (int x = 0; x < ctx->narrays; x++) wipe_array(ctx->arrays[x]);
  fuze__fobjs_wipe(ctx);
  ctx->lost = 1;
  ctx->epoch = ctx->decided = ctx->hosted_epoch = 0;
}

static int listed(const fuze_inject_spec *sp, int rank) {
  for (int r = 0; r < sp->nranks; r++)
    if (sp->ranks[r] == rank) return 1;
  return 0;
}

int fuze__inject_point(fuze_ctx *ctx, int phase) {
  for (int s = 0; s < ctx->cfg.ninject; s++) {
    const fuze_inject_spec *sp = &ctx->cfg.inject[s];
    if (sp->at_checkpoint != ctx->ckpt_calls || sp->phase != phase) continue;
    if (!listed(sp, ctx->rank) || ctx->lost) continue;
    if (ctx->cfg.verbose)
      printf("fuze: rank %d wiped (injected at checkpoint %ld, phase %s)\n", ctx->rank,
             ctx->ckpt_calls, fuze__phase_name(phase));
    fuze__wipe_self(ctx);
    return 1;
  }
  return 0;
}

int fuze__inject_scheduled(const fuze_ctx *ctx, int phase) {
  for (int s = 0; s < ctx->cfg.ninject; s++)
    if (ctx->cfg.inject[s].at_checkpoint == ctx->ckpt_calls && ctx->cfg.inject[s].phase == phase)
      return 1;
  return 0;
}
