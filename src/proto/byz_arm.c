/* byz_arm: code=byzantine's test hook (fuze__byz_arm, byzantine.h).
 * Corruptions a test arms on this rank fire at its next check, after the
 * replicas were refreshed and before the copies are compared. Local. */
#include "proto/byz_internal.h"

#include "comm/transport.h"
#include "proto/inject_corrupt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fuze__byz_arm(fuze_ctx *ctx, const char *name, int what, int arg, int j, int mode,
                  size_t off, size_t len, uint64_t seed) {
  if (!ctx || !name || !fuze__byz_on(ctx) || !ctx->byz || ctx->byz->narmed >= FUZE_BYZ_MAX_ARMED)
    return -1;
  byz_armed *m = &ctx->byz->arm[ctx->byz->narmed++];
  snprintf(m->name, sizeof m->name, "%s", name);
  m->what = what, m->arg = arg, m->j = j, m->mode = mode, m->off = off, m->len = len, m->seed = seed;
  return 0;
}

/* A random nonzero byte of the armed request's stream. */
static unsigned char noise(byz_armed *m) { return (unsigned char)(1 + fuze__inject_mix(&m->seed) % 255); }

/* XOR/zero n bytes of p per the armed mode (ALT: 0xA5). */
static void hit(byz_armed *m, unsigned char *p, size_t n) {
  if (!p || !n) return;
  if (m->mode == FUZE_BYZ_ARM_ZERO) memset(p, 0, n);
  else if (m->mode == FUZE_BYZ_ARM_ALT)
    for (size_t b = 0; b < n; b++) p[b] ^= 0xA5;
  else
    for (size_t b = m->off; b < m->off + m->len && b < n; b++) p[b] ^= noise(m);
}

/* The index of a serialized state as one span: seq, then the keys. */
static void hit_state_index(byz_armed *m, const fuze_fobj *f, unsigned char *p, size_t len) {
  long long n = fuze__byz_fcount(f, p, len);
  if (n < 0) return;
  if (m->mode == FUZE_BYZ_ARM_RANDOM || m->mode == FUZE_BYZ_ARM_ALT)
    hit(m, p + FUZE_BYZ_SEQ_OFF, FUZE_HDR_BYTES - FUZE_BYZ_SEQ_OFF + (size_t)n * f->kb);
}

/* REPLICA, REPLICA_INDEX: the replica of rank arg's state held here. */
static void fire_fobj_replica(fuze_ctx *ctx, byz_armed *m, fuze_fobj *f, byz_fobj *bf) {
  fuze_byz *z = ctx->byz;
  for (int h = 0; h < z->nheld; h++) {
    if (z->held_rank[h] != m->arg) continue;
    unsigned char *p = bf->rep[h];
    long long n = fuze__byz_fcount(f, p, bf->replen[h]);
    if (n < 0) continue;
    if (m->what == FUZE_BYZ_ARM_REPLICA) {
      hit(m, p + FUZE_HDR_BYTES + (size_t)n * f->kb, (size_t)n * f->nb);
    } else if (m->mode == FUZE_BYZ_ARM_ZERO) { /* a well-formed empty state */
      memset(p, 0, FUZE_HDR_BYTES);
      bf->replen[h] = FUZE_HDR_BYTES;
    } else if (m->mode == FUZE_BYZ_ARM_COUNT) { /* the last element dropped */
      if (!n) continue;
      uint64_t c = (uint64_t)n - 1;
      memcpy(p, &c, sizeof c);
      memmove(p + FUZE_HDR_BYTES + c * f->kb, p + FUZE_HDR_BYTES + (size_t)n * f->kb,
              (size_t)c * f->nb);
      bf->replen[h] = FUZE_HDR_BYTES + c * (f->kb + f->nb);
    } else {
      hit_state_index(m, f, p, bf->replen[h]);
    }
  }
}

/* PRIMARY_INDEX: the primary's own state. */
static void fire_fobj_primary_index(byz_armed *m, fuze_fobj *f) {
  if (m->mode == FUZE_BYZ_ARM_ZERO) {
    if (f->n && f->vals) memset(f->vals, 0, f->n * f->nb);
    fuze__fobj_restore_state(f, 0, 0, NULL, NULL);
  } else if (m->mode == FUZE_BYZ_ARM_COUNT) {
    if (f->n) fuze__fobj_restore_state(f, f->n - 1, f->seq, f->keys, f->vals);
  } else {
    size_t plen;
    unsigned char *p = fuze__byz_fser(f, &plen);
    if (!p) return;
    hit_state_index(m, f, p, plen);
    uint64_t seq;
    memcpy(&seq, p + FUZE_BYZ_SEQ_OFF, sizeof seq);
    fuze__fobj_restore_state(f, f->n, seq, p + FUZE_HDR_BYTES, p + FUZE_HDR_BYTES + f->n * f->kb);
    free(p);
  }
}

/* BACKUP_INDEX, RANDOM: header and keys of hosted (block arg, j) as one span. */
static void hit_region_index(byz_armed *m, unsigned char *r, int k, fuze_fobj_layout l,
                             size_t keys) {
  size_t hl = FUZE_HDR_BYTES * (size_t)k;
  for (size_t b = m->off; b < m->off + m->len && b < hl + keys; b++) {
    unsigned char *at = b < hl ? r + fuze__hdr_off((int)(b / FUZE_HDR_BYTES)) + b % FUZE_HDR_BYTES
                               : r + l.keys_off + (b - hl);
    *at ^= noise(m);
  }
}

/* PARITY, BACKUP_INDEX: the committed region of hosted (block arg, j). */
static void fire_fobj_region(fuze_ctx *ctx, byz_armed *m, fuze_fobj *f) {
  unsigned char *r = fuze__byz_fregion(f, m->arg, m->j, NULL);
  if (!r) return;
  int k = fuze__byz_k(ctx, m->arg);
  fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  size_t keys = (size_t)k * f->cap * f->kb;
  (void)fuze__byz_fwin_sync(f); /* a test hook: a failure shows in the check that follows */
  if (m->what == FUZE_BYZ_ARM_PARITY) {
    hit(m, r + l.nodes_off, f->cap * f->nb);
  } else if (m->mode == FUZE_BYZ_ARM_COUNT) { /* member 0's count */
    uint64_t c;
    memcpy(&c, r, sizeof c);
    c = c ? c - 1 : 1;
    memcpy(r, &c, sizeof c);
  } else if (m->mode == FUZE_BYZ_ARM_RANDOM) {
    hit_region_index(m, r, k, l, keys);
  } else {
    for (int i = 0; i < k; i++) hit(m, r + fuze__hdr_off(i), FUZE_HDR_BYTES);
    hit(m, r + l.keys_off, keys);
  }
  (void)fuze__byz_fwin_sync(f);
}

static void fire_fobj(fuze_ctx *ctx, byz_armed *m, fuze_fobj *f, byz_fobj *bf) {
  switch (m->what) {
  case FUZE_BYZ_ARM_PRIMARY:
    if (fuze__byz_primary(ctx)) hit(m, f->vals, f->n * f->nb);
    break;
  case FUZE_BYZ_ARM_REPLICA:
  case FUZE_BYZ_ARM_REPLICA_INDEX:
    fire_fobj_replica(ctx, m, f, bf);
    break;
  case FUZE_BYZ_ARM_PRIMARY_INDEX:
    if (fuze__byz_primary(ctx)) fire_fobj_primary_index(m, f);
    break;
  case FUZE_BYZ_ARM_PARITY:
  case FUZE_BYZ_ARM_BACKUP_INDEX:
    fire_fobj_region(ctx, m, f);
    break;
  }
}

static void fire_array(fuze_ctx *ctx, byz_armed *m, int x) {
  fuze_byz *z = ctx->byz;
  fuze_array *a = ctx->arrays[x];
  unsigned char *p = NULL;
  size_t n = 0;
  if (m->what == FUZE_BYZ_ARM_PRIMARY) p = a->shadow, n = a->bytes;
  for (int h = 0; m->what == FUZE_BYZ_ARM_REPLICA && h < z->nheld; h++)
    if (z->held_rank[h] == m->arg) p = z->arr[x].rep[h], n = z->arr[x].replen[h];
  if (m->what == FUZE_BYZ_ARM_PARITY) p = fuze__byz_parity(a, m->arg, m->j, &n);
  if (!p || !n) return;
  if (m->what == FUZE_BYZ_ARM_PARITY) (void)fuze__win_sync(&ctx->net, a->win); /* as above */
  hit(m, p, n);
  if (m->what == FUZE_BYZ_ARM_PARITY) (void)fuze__win_sync(&ctx->net, a->win);
}

void fuze__byz_fire_armed(fuze_ctx *ctx) {
  fuze_byz *z = ctx->byz;
  for (int q = 0; q < z->narmed; q++)
    for (int x = 0; x < ctx->nfobjs && x < z->nfo; x++)
      if (!strcmp(ctx->fobjs[x]->name, z->arm[q].name))
        fire_fobj(ctx, &z->arm[q], ctx->fobjs[x], &z->fo[x]);
  for (int q = 0; q < z->narmed; q++)
    for (int x = 0; x < ctx->narrays && x < z->narr; x++)
      if (!strcmp(ctx->arrays[x]->name, z->arm[q].name)) fire_array(ctx, &z->arm[q], x);
  z->narmed = 0;
}
