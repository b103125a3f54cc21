/* inject_corrupt: inject=corrupt:rank=R:struct=NAME:at=checkpoint:E
 * [:target=primary|parity|replica][:bytes=N]. Right after checkpoint E
 * committed, rank R flips N distinct random bits (drawn from a seed of the
 * rank, the checkpoint and the spec) of structure NAME's
 *   primary  committed copy (arrays) or elements, keys (stacks and maps);
 *   parity   first hosted committed parity region (arrays) or committed
 *            region: index replicas and fused nodes (stacks and maps);
 *   replica  first replica held here (code=byzantine, byz_replicas.c).
 * Local; what does not exist here is reported (verbose) and ignored. */
#include "proto/inject_corrupt.h"

#include "comm/transport.h"
#include "data/array.h"
#include "core/pfile.h" /* the region layout of a stack/map backup */
#include "data/fused.h"
#include "proto/byzantine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TARGET_PRIMARY = 0, TARGET_PARITY = 1, TARGET_REPLICA = 2 };

uint64_t fuze__inject_mix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Up to 3 byte spans that make up the target; bit b of the target is bit
 * b % 8 of byte b / 8 counted across the spans. */
typedef struct span {
  unsigned char *p[3];
  size_t n[3];
  int nspans;
  const unsigned char *origin; /* offsets are printed from here (NULL: within each span) */
  const char *label[3];
} span;

static unsigned char *span_byte(span *sp, size_t at, int *which) {
  for (int x = 0; x < sp->nspans; x++) {
    if (at < sp->n[x]) {
      *which = x;
      return sp->p[x] + at;
    }
    at -= sp->n[x];
  }
  return NULL;
}

/* What is hit and where, for the message. */
typedef struct where {
  const char *what;
  int block, backup;
} where;

static void array_target(fuze_ctx *ctx, fuze_array *a, int target, span *t, where *w) {
  if (target == TARGET_PRIMARY) {
    w->what = "committed copy";
    t->p[0] = a->shadow, t->n[0] = a->shadow ? a->bytes : 0, t->nspans = 1;
    w->block = ctx->plan.block_of[ctx->rank];
    return;
  }
  w->what = "committed parity";
  for (int h = 0; h < a->nhosted && !t->nspans; h++)
    if (a->hosted[h].fused) {
      t->p[0] = fuze__array_committed(a, h);
      t->n[0] = a->hosted[h].fused, t->nspans = 1;
      w->block = a->hosted[h].block, w->backup = a->hosted[h].j;
    }
}

static void fobj_target(fuze_ctx *ctx, fuze_fobj *f, int target, span *t, where *w) {
  if (target == TARGET_PRIMARY) {
    w->what = f->kb ? "values and keys" : "elements";
    t->p[0] = f->vals, t->n[0] = f->n * f->nb, t->label[0] = "value byte ";
    t->p[1] = f->keys, t->n[1] = f->n * f->kb, t->label[1] = "key byte ";
    t->nspans = 2;
    w->block = ctx->plan.block_of[ctx->rank];
    return;
  }
  if (!f->nhosted) return;
  const fuze_hosted *h = &f->hosted[0];
  int k = ctx->plan.block_start[h->block + 1] - ctx->plan.block_start[h->block];
  fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  unsigned char *r = f->winbase + h->off + h->fused; /* committed half */
  w->what = "committed region (index replicas and fused nodes; offsets in the region)";
  t->origin = r;
  t->p[0] = r, t->n[0] = fuze__hdr_off(k);
  t->p[1] = r + l.keys_off, t->n[1] = (size_t)k * f->cap * f->kb;
  t->p[2] = r + l.nodes_off, t->n[2] = f->cap * f->nb;
  t->nspans = 3;
  w->block = h->block, w->backup = h->j;
}

/* 1 when a structure is named so (t: its target here, maybe empty). */
static int corrupt_target(fuze_ctx *ctx, const fuze_inject_spec *sp, span *t, where *w) {
  memset(t, 0, sizeof *t);
  *w = (where){"", -1, -1};
  for (int x = 0; x < ctx->narrays; x++)
    if (!strcmp(ctx->arrays[x]->name, sp->name)) {
      array_target(ctx, ctx->arrays[x], sp->target, t, w);
      return 1;
    }
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!strcmp(ctx->fobjs[x]->name, sp->name)) {
      fobj_target(ctx, ctx->fobjs[x], sp->target, t, w);
      return 1;
    }
  return 0;
}

/* The bits already flipped: an open-addressing set of bit numbers + 1. */
typedef struct bitset {
  uint64_t *slot;
  size_t mask;
} bitset;

static int bitset_init(bitset *s, uint64_t want) {
  size_t n = 16;
  while (n < 2 * want) n *= 2;
  s->slot = calloc(n, sizeof *s->slot);
  s->mask = n - 1;
  return s->slot ? 0 : -1;
}

/* Adds bit; 0 when it was there already. */
static int bitset_add(bitset *s, uint64_t bit) {
  size_t i = (size_t)(bit * 0x9e3779b97f4a7c15ULL >> 17) & s->mask;
  for (; s->slot[i]; i = (i + 1) & s->mask)
    if (s->slot[i] == bit + 1) return 0;
  s->slot[i] = bit + 1;
  return 1;
}

static uint64_t spec_seed(const fuze_ctx *ctx, int s) {
  return (uint64_t)ctx->rank * 1000003u + (uint64_t)ctx->ckpt_calls * 7919u + (uint64_t)s;
}

/* Flip want distinct bits of t's nbits drawn from seed; list: print the
 * first 8 bytes hit (verbose). */
static void flip_bits(const fuze_ctx *ctx, span *t, bitset *done, uint64_t nbits, uint64_t want,
                      uint64_t seed, int list) {
  for (uint64_t ndone = 0; ndone < want;) {
    uint64_t bit = fuze__inject_mix(&seed) % nbits;
    if (!bitset_add(done, bit)) continue;
    ndone++;
    int which = 0;
    unsigned char *c = span_byte(t, (size_t)(bit / 8), &which);
    *c ^= (unsigned char)(1u << (bit % 8));
    if (list && ctx->cfg.verbose && ndone <= 8)
      printf("%s %s%zu", ndone == 1 ? "" : ",", t->label[which] ? t->label[which] : "",
             (size_t)(c - (t->origin ? t->origin : t->p[which])));
  }
}

/* target=replica: code=byzantine's replicas. */
static int corrupt_replica(fuze_ctx *ctx, int s, const fuze_inject_spec *sp) {
  span t = {.nspans = 1};
  int r = -1;
  t.p[0] = ctx->byz ? fuze__byz_replica(ctx, sp->name, &t.n[0], &r) : NULL;
  if (!t.p[0]) {
    if (ctx->cfg.verbose)
      printf("fuze: rank %d: inject corrupt: no replica of '%s' here (%s; ignored)\n", ctx->rank,
             sp->name, ctx->cfg.mode == FUZE_MODE_BYZANTINE
                           ? "code=byzantine" : "replicas exist only with code=byzantine");
    return 0;
  }
  uint64_t nbits = (uint64_t)t.n[0] * 8, want = (uint64_t)sp->bits < nbits ? (uint64_t)sp->bits : nbits;
  bitset done;
  if (bitset_init(&done, want)) return 0;
  if (ctx->cfg.verbose)
    printf("fuze: rank %d: inject corrupt after checkpoint %ld: flipping %llu bit(s) of the "
           "replica of '%s' of rank %d held here\n", ctx->rank, ctx->ckpt_calls,
           (unsigned long long)want, sp->name, r);
  flip_bits(ctx, &t, &done, nbits, want, spec_seed(ctx, s), 0);
  free(done.slot);
  fflush(stdout);
  return 1;
}

/* After flipping a parity target: the window's local view (MPI_Win_sync; local
 * injection: a failure shows in the scrub or check that follows). */
static void sync_windows(fuze_ctx *ctx, const char *name) {
  for (int x = 0; x < ctx->narrays; x++)
    if (!strcmp(ctx->arrays[x]->name, name)) (void)fuze__win_sync(&ctx->net, ctx->arrays[x]->win);
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!strcmp(ctx->fobjs[x]->name, name) && !ctx->fobjs[x]->excl)
      (void)fuze__win_sync(&ctx->net, ctx->fobjs[x]->win);
}

/* 1 when bits were flipped (the spec fired), 0 when nothing matched here. */
static int corrupt_one(fuze_ctx *ctx, int s, const fuze_inject_spec *sp) {
  span t;
  where w;
  if (sp->target == TARGET_REPLICA) return corrupt_replica(ctx, s, sp);
  if (!corrupt_target(ctx, sp, &t, &w)) {
    if (ctx->cfg.verbose)
      printf("fuze: rank %d: inject corrupt: no array, stack or map named '%s' (ignored)\n",
             ctx->rank, sp->name);
    return 0;
  }
  size_t bytes = 0;
  for (int x = 0; x < t.nspans; x++) bytes += t.n[x];
  if (!bytes) {
    if (ctx->cfg.verbose)
      printf("fuze: rank %d: inject corrupt: '%s' has no %s bytes here (ignored)\n", ctx->rank,
             sp->name, sp->target ? "hosted parity" : "committed");
    return 0;
  }
  uint64_t nbits = (uint64_t)bytes * 8, want = (uint64_t)sp->bits < nbits ? (uint64_t)sp->bits : nbits;
  bitset done;
  if (bitset_init(&done, want)) return 0;
  if (ctx->cfg.verbose) {
    printf("fuze: rank %d: inject corrupt after checkpoint %ld: flipping %llu bit(s) of '%s' (%s",
           ctx->rank, ctx->ckpt_calls, (unsigned long long)want, sp->name, w.what);
    if (w.backup >= 0) printf(", block %d backup %d", w.block, w.backup);
    printf(") at bytes");
  }
  flip_bits(ctx, &t, &done, nbits, want, spec_seed(ctx, s), 1);
  if (sp->target) sync_windows(ctx, sp->name);
  if (ctx->cfg.verbose) {
    printf("%s\n", want > 8 ? ", ..." : "");
    fflush(stdout);
  }
  free(done.slot);
  return 1;
}

void fuze__inject_corrupt(fuze_ctx *ctx) {
  for (int s = 0; s < ctx->cfg.ninject; s++) {
    fuze_inject_spec *sp = &ctx->cfg.inject[s];
    if (sp->kind == FUZE_INJECT_CORRUPT && sp->at_checkpoint == ctx->ckpt_calls &&
        sp->nranks == 1 && sp->ranks[0] == ctx->rank && !ctx->lost && corrupt_one(ctx, s, sp))
      sp->fired = 1;
  }
}
