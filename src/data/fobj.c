/* fobj: the fused object of a stack or map (fused.h). Primary side: slots,
 * the hash index of maps, the undo log and the three operations (set,
 * append, remove), whose pieces go down the sending path (fsend.c). Fused
 * side: the region layout, the window, growth, restart, promotion and the
 * copies of a rollback, a wipe, and fuze_fused_info. */
#include "data/fsend.h"

#include "comm/coll.h"
#include "comm/transport.h"
#include "core/bigmem.h"
#include "core/pfile.h"
#include "data/threads.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The region layout is the persisted one (core/pfile.h); its header lines
 * are the ones core/limits.h names. */
_Static_assert(FUZE_HDR_STRIDE == FUZE_HDR_LINE, "pfile.h's header stride is FUZE_HDR_LINE");

/* ---- layout ---- */

static int block_k(const fuze_ctx *ctx, int b) {
  return ctx->plan.block_start[b + 1] - ctx->plan.block_start[b];
}

static fuze_fobj_layout layout(const fuze_fobj *f, int b, size_t cap) {
  return fuze__fobj_layout(block_k(f->ctx, b), cap, f->kb, f->nb);
}

size_t fuze__fobj_region(const fuze_fobj *f, int b) { return layout(f, b, f->cap).bytes; }

size_t fuze__fobj_hdr_off(int i) { return fuze__hdr_off(i); }

size_t fuze__fobj_keys_off(const fuze_fobj *f, int b, int i) {
  return layout(f, b, f->cap).keys_off + (size_t)i * f->cap * f->kb;
}

size_t fuze__fobj_nodes_off(const fuze_fobj *f, int b) { return layout(f, b, f->cap).nodes_off; }

/* Offset of (block, j)'s working region in host's window at capacity cap. */
static size_t region_off(const fuze_fobj *f, int host, int block, int j, size_t cap) {
  const fuze_plan *p = &f->ctx->plan;
  size_t off = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int jj = 0; jj < p->f; jj++) {
      if (p->hosts[b * p->f + jj] != host) continue;
      if (b == block && jj == j) return off;
      off += 2 * layout(f, b, cap).bytes;
    }
  return off;
}

size_t fuze__fobj_region_off(const fuze_fobj *f, int host, int b, int j) {
  return region_off(f, host, b, j, f->cap);
}

static int nomem(fuze_ctx *ctx, const char *name, const char *doing) {
  char what[FUZE_NAME_MAX + 64];
  if (doing) snprintf(what, sizeof what, "'%s': %s", name, doing);
  else snprintf(what, sizeof what, "'%s'", name);
  return FUZE_NOMEM(ctx->msg, what);
}

int fuze__fobj_nomem(const fuze_fobj *f, const char *doing) { return nomem(f->ctx, f->name, doing); }

/* The bytes this rank can hold at most: its node's memory, and never more
 * than an MPI_Aint can express. */
static double memory_limit(void) {
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  double mem = pages > 0 && psize > 0 ? (double)pages * (double)psize : 0x1p62;
  return mem < 0x1p62 ? mem : 0x1p62;
}

/* Before any size_t arithmetic of the layout: the window this rank would
 * host at capacity cap, in floating point (cannot wrap), against the
 * memory the node has. An entry size within FUZE_FOBJ_ENTRY_MAX times a
 * large capacity otherwise fails in MPI_Win_allocate. */
static int check_window(fuze_fobj *f, size_t cap) {
  const fuze_plan *p = &f->ctx->plan;
  double need = 0, limit = memory_limit();
  int nh = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int j = 0; j < p->f; j++)
      if (p->hosts[b * p->f + j] == f->ctx->rank) {
        double k = block_k(f->ctx, b);
        need += 2.0 * ((double)fuze__hdr_off((int)k) + k * (double)cap * (double)f->kb +
                       (double)cap * (double)f->nb + 2.0 * FUZE_ALIGN);
        nh++;
      }
  if (need <= limit) return FUZE_SUCCESS;
  /* f->cap is 0 until the first window exists: creation, else growth. */
  const char *fn = f->cap ? "growing" : f->kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create";
  return fuze__error(f->ctx->msg, FUZE_ERR_NOMEM,
                     "%s('%s'): the backup window would need %.0f bytes on rank %d (%d hosted "
                     "region(s) at capacity %zu of %zu-byte entries), more than the %.0f bytes "
                     "of memory of its node; use smaller entries or a lower capacity=",
                     fn, f->name, need, f->ctx->rank, nh, cap, f->kb + f->nb, limit);
}

static int compute_hosted(fuze_fobj *f, size_t cap, fuze_hosted **out, int *nout, size_t *size) {
  fuze_ctx *ctx = f->ctx;
  const fuze_plan *p = &ctx->plan;
  int rc = check_window(f, cap);
  if (rc) return rc;
  int n = fuze__plan_load(p, ctx->rank);
  fuze_hosted *h = calloc((size_t)(n ? n : 1), sizeof *h);
  if (!h) return fuze__fobj_nomem(f, NULL);
  size_t off = 0;
  int c = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int j = 0; j < p->f; j++) {
      if (p->hosts[b * p->f + j] != ctx->rank) continue;
      h[c++] = (fuze_hosted){b, j, layout(f, b, cap).bytes, off, 0};
      off += 2 * layout(f, b, cap).bytes;
    }
  *out = h;
  *nout = c;
  *size = off;
  return FUZE_SUCCESS;
}

unsigned char *fuze__fobj_hosted(const fuze_fobj *f, int b, int j, int half) {
  for (int h = 0; h < f->nhosted; h++)
    if (f->hosted[h].block == b && f->hosted[h].j == j)
      return f->winbase + f->hosted[h].off + (size_t)half * f->hosted[h].fused;
  return NULL;
}

int fuze__fobj_sync(const fuze_fobj *f) {
  return f->excl ? FUZE_SUCCESS : fuze__win_sync(&f->ctx->net, f->win);
}

/* ---- primary side: slots, hash index, undo log ---- */

/* The hash index of a map: open addressing with linear probing over tsize
 * (a power of two) 64-bit entries: TAB_EMPTY, TAB_DEL (a removed key: probes
 * go on past it, an insert reuses it), or a live entry: the slot in the low
 * TAB_SLOT_BITS bits and, above them, the top bits of the key's hash (a tag:
 * a probe reads the key bytes only when the tags agree, so a miss costs no
 * access to the keys). tused counts the entries that are not TAB_EMPTY (live
 * and deleted): the probe length bound. The index is the primary's own;
 * nothing of it is sent, persisted or compared. */
#define TAB_EMPTY INT64_C(-1)
#define TAB_DEL INT64_C(-2)
#define TAB_SLOT_BITS 40
#define TAB_SLOT_MASK ((INT64_C(1) << TAB_SLOT_BITS) - 1)

/* Words of 8 bytes, each mixed by a multiply (fixed key sizes, any bytes),
 * except the low 3 bits of the first word (the key's first byte on a
 * little-endian machine): they are kept as the low bits of the hash, so
 * that keys differing only there share one cache line of the index (8
 * entries of 8 bytes). Consecutive integer keys, the common case (ids), then
 * cost one cache miss per 8 keys instead of one per key; any other keys are
 * spread as by the plain hash. */
static uint64_t key_hash(const unsigned char *k, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ n, w = 0, low;
  memcpy(&w, k, n < 8 ? n : 8);
  low = w & 7;
  h = (h ^ (w & ~(uint64_t)7)) * 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 31;
  size_t i = 8;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, k + i, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  if (i < n) {
    w = 0;
    memcpy(&w, k + i, n - i);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 29;
  return (h & ~(uint64_t)7) | low;
}

/* 23 high bits of the hash, with the 3 kept key bits folded in. */
static int64_t tab_tag(uint64_t h) { return (int64_t)(((h >> 41) ^ ((h & 7) << 20)) << TAB_SLOT_BITS); }

static int key_eq(const unsigned char *a, const void *b, size_t kb) {
  if (kb == 8) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x == y;
  }
  return !memcmp(a, b, kb);
}

/* Position of key (hash h) in the table, or of the entry an insert takes:
 * the first deleted one on its probe path, else the empty one that ends it. */
static size_t table_pos(const fuze_fobj *f, const void *key, uint64_t h, int *found) {
  size_t mask = f->tsize - 1, pos = (size_t)h & mask, tomb = SIZE_MAX;
  int64_t tag = tab_tag(h);
  for (size_t probe = 0; probe < f->tsize; probe++, pos = (pos + 1) & mask) {
    int64_t e = f->table[pos];
    if (e == TAB_EMPTY) break;
    if (e == TAB_DEL) {
      if (tomb == SIZE_MAX) tomb = pos;
    } else if ((e & ~TAB_SLOT_MASK) == tag && key_eq(f->keys + (size_t)(e & TAB_SLOT_MASK) * f->kb, key, f->kb)) {
      *found = 1;
      return pos;
    }
  }
  *found = 0;
  return tomb != SIZE_MAX ? tomb : pos;
}

int64_t fuze__map_lookup(const fuze_fobj *f, const void *key, fuze_keypos *kp) {
  kp->valid = 0;
  if (!f->tsize) return -1;
  int found;
  uint64_t h = key_hash(key, f->kb);
  size_t pos = table_pos(f, key, h, &found);
  *kp = (fuze_keypos){h, pos, found, 1};
  return found ? f->table[pos] & TAB_SLOT_MASK : -1;
}

int64_t fuze__map_find(const fuze_fobj *f, const void *key) {
  fuze_keypos kp;
  return fuze__map_lookup(f, key, &kp);
}

/* The index of the n slots, afresh, at the current size (n < tsize: an
 * empty entry ends every probe). */
static void table_fill(fuze_fobj *f) {
  memset(f->table, 0xff, sizeof *f->table * f->tsize); /* TAB_EMPTY */
  size_t mask = f->tsize - 1;
  for (size_t s = 0; s < f->n; s++) { /* distinct keys: no compares */
    uint64_t h = key_hash(f->keys + s * f->kb, f->kb);
    size_t pos = (size_t)h & mask;
    while (f->table[pos] != TAB_EMPTY) pos = (pos + 1) & mask;
    f->table[pos] = tab_tag(h) | (int64_t)s;
  }
  f->tused = f->n;
}

/* A fresh index with room for want keys: at most a third full, so that the
 * deleted entries of a steady mix of inserts and removes take at least
 * want / 2 operations to fill it to half (the rebuild point of
 * fuze__fobj_append). It never shrinks (like the slots): an index of the
 * same size is cleared in place, with no free and no fresh pages per
 * rebuild, and a rollback (fuze__fobjs_undo) refills it in place, since
 * every state of the epoch had n <= tsize / 2. */
static int table_rebuild(fuze_fobj *f, size_t want) {
  size_t size = 16;
  while (size < 3 * want + 3) size <<= 1;
  if (size > f->tsize) {
    /* From 4 MiB on (2^19 entries, made for 87 382 keys or more) on huge
     * pages: a lookup of a large index is a cache miss, and on 4 KiB pages
     * a TLB miss too. */
    int64_t *t = fuze__big_zalloc(sizeof *t * size, 1);
    if (!t) return FUZE_ERR_NOMEM;
    fuze__big_free(f->table, sizeof *f->table * f->tsize);
    f->table = t;
    f->tsize = size;
  }
  table_fill(f);
  return FUZE_SUCCESS;
}

/* The entry at pos (table_pos's answer for the key, hash h, found) :=
 * slot (>= 0), or TAB_DEL: the key is removed. An insert into a deleted
 * entry leaves tused as it was (it counted that entry already). */
static void table_put_at(fuze_fobj *f, size_t pos, int found, uint64_t h, int64_t slot) {
  if (slot < 0) {
    if (!found) return;
    /* An entry followed by an empty one ends no other key's probe: it, and
     * the deleted entries just before it, become empty again (removing keys
     * in order then leaves no deleted entries behind). */
    size_t mask = f->tsize - 1;
    if (f->table[(pos + 1) & mask] != TAB_EMPTY) {
      f->table[pos] = TAB_DEL;
      return;
    }
    do {
      f->table[pos] = TAB_EMPTY;
      f->tused--;
      pos = (pos - 1) & mask;
    } while (f->table[pos] == TAB_DEL);
    return;
  }
  if (!found && f->table[pos] == TAB_EMPTY) f->tused++;
  f->table[pos] = tab_tag(h) | slot;
}

/* key -> slot (>= 0), or TAB_DEL. */
static void table_set(fuze_fobj *f, const void *key, int64_t slot) {
  int found;
  uint64_t h = key_hash(key, f->kb);
  size_t pos = table_pos(f, key, h, &found);
  table_put_at(f, pos, found, h, slot);
}

static int ensure_slots(fuze_fobj *f, size_t n) {
  if (n <= f->vcap) return FUZE_SUCCESS;
  if (f->kb && n > (size_t)TAB_SLOT_MASK) return FUZE_ERR_NOMEM; /* the index's slot field */
  size_t cap = f->vcap ? f->vcap : 16;
  while (cap < n) cap *= 2;
  unsigned char *v = realloc(f->vals, cap * f->nb);
  if (!v) return FUZE_ERR_NOMEM;
  f->vals = v;
  if (f->kb) {
    unsigned char *k = realloc(f->keys, cap * f->kb);
    if (!k) return FUZE_ERR_NOMEM;
    f->keys = k;
  }
  f->vcap = cap;
  return FUZE_SUCCESS;
}

enum { LOG_NONE = 0, LOG_APPEND, LOG_SET, LOG_SET_KEY, LOG_REMOVE };

typedef struct log_rec {
  int kind;
  size_t s;
} log_rec;

/* Bytes an undo record of this kind keeps before its log_rec: only what
 * its undo needs (undo_one). An append keeps nothing (its undo drops the
 * last slot), a set the old value (and the old key when it changed it), a
 * remove the removed pair. */
static size_t log_payload(const fuze_fobj *f, int kind) {
  switch (kind) {
    case LOG_APPEND: return 0;
    case LOG_SET: return f->nb;
    default: return f->kb + f->nb; /* LOG_SET_KEY, LOG_REMOVE */
  }
}

/* Undo records (rollback recovery only), of variable size: the payload
 * (old key, then old value, as log_payload says), then the log_rec, so that
 * the undo walks the log backwards from its end. */
static int log_push(fuze_fobj *f, int kind, size_t s, const void *key, const void *val) {
  if (f->ctx->cfg.recovery != FUZE_RECOVERY_ROLLBACK) return FUZE_SUCCESS;
  size_t pay = log_payload(f, kind), need = pay + sizeof(log_rec);
  if (f->loglen + need > f->logcap) {
    size_t cap = f->logcap ? f->logcap * 2 : 4096;
    while (cap < f->loglen + need) cap *= 2;
    unsigned char *l = realloc(f->log, cap);
    if (!l) return FUZE_ERR_NOMEM;
    f->log = l;
    f->logcap = cap;
  }
  log_rec r = {kind, s};
  unsigned char *p = f->log + f->loglen;
  if (pay > f->nb) { /* the key too */
    if (key) memcpy(p, key, f->kb);
    else memset(p, 0, f->kb);
    p += f->kb;
  }
  if (pay) memcpy(p, val, f->nb);
  memcpy(p + (pay ? f->nb : 0), &r, sizeof r);
  f->loglen += need;
  return FUZE_SUCCESS;
}

/* Overwrite slot s (< n) with key/val: one value delta, one key delta. */
int fuze__fobj_set(fuze_fobj *f, size_t s, const void *key, const void *val, int log_kind) {
  unsigned char *dv = f->scratch, *dk = f->scratch + f->nb, dh[FUZE_HDR_BYTES];
  unsigned char *old = f->vals + s * f->nb;
  if (log_kind && log_push(f, f->kb && key ? LOG_SET_KEY : LOG_SET, s, f->kb && key ? f->keys + s * f->kb : NULL, old))
    return fuze__fobj_nomem(f, NULL);
  fuze__xor3_small(dv, old, val, f->nb);
  fuze_piece pcs[3];
  int np = 0;
  pcs[np++] = (fuze_piece){PIECE_NODE, s, dv};
  if (f->kb && key) {
    fuze__xor3_small(dk, f->keys + s * f->kb, key, f->kb);
    memcpy(f->keys + s * f->kb, key, f->kb);
    pcs[np++] = (fuze_piece){PIECE_KEY, s, dk};
  }
  memcpy(old, val, f->nb);
  fuze__hdr_delta(dh, f->n, f->n, f->seq, f->seq + 1);
  f->seq++;
  pcs[np++] = (fuze_piece){PIECE_HDR, 0, dh};
  return fuze__fobj_send_op(f, pcs, np);
}

/* Take slot n (Fig. 4 insert / push). */
int fuze__fobj_append_at(fuze_fobj *f, const void *key, const void *val, int log_kind,
                         const fuze_keypos *kp) {
  if (ensure_slots(f, f->n + 1)) return fuze__fobj_nomem(f, NULL);
  if (f->kb && f->tused + 1 > f->tsize / 2) {
    if (table_rebuild(f, f->n + 1)) return fuze__fobj_nomem(f, NULL);
    kp = NULL; /* the lookup's position is gone with the old index */
  }
  if (log_kind && log_push(f, LOG_APPEND, f->n, key, val))
    return fuze__fobj_nomem(f, NULL);
  size_t s = f->n;
  unsigned char dh[FUZE_HDR_BYTES];
  memcpy(f->vals + s * f->nb, val, f->nb);
  fuze_piece pcs[3];
  int np = 0;
  pcs[np++] = (fuze_piece){PIECE_NODE, s, f->vals + s * f->nb};
  if (f->kb) {
    memcpy(f->keys + s * f->kb, key, f->kb);
    pcs[np++] = (fuze_piece){PIECE_KEY, s, f->keys + s * f->kb};
  }
  fuze__hdr_delta(dh, f->n, f->n + 1, f->seq, f->seq + 1);
  f->n++;
  f->seq++;
  if (f->kb && kp && kp->valid && !kp->found) table_put_at(f, kp->pos, 0, kp->h, (int64_t)s);
  else if (f->kb) table_set(f, key, (int64_t)s);
  pcs[np++] = (fuze_piece){PIECE_HDR, 0, dh};
  return fuze__fobj_send_op(f, pcs, np);
}

int fuze__fobj_append(fuze_fobj *f, const void *key, const void *val, int log_kind) {
  return fuze__fobj_append_at(f, key, val, log_kind, NULL);
}

/* Fig. 5: the last slot moves into the hole s: two value deltas, two key
 * deltas (the index move) and the header. */
int fuze__fobj_remove_slot_at(fuze_fobj *f, size_t s, int log_kind, const fuze_keypos *kp) {
  size_t last = f->n - 1;
  unsigned char *dv = f->scratch, *dk = f->scratch + f->nb, dh[FUZE_HDR_BYTES];
  unsigned char *hole = f->vals + s * f->nb, *tail = f->vals + last * f->nb;
  if (log_kind && log_push(f, LOG_REMOVE, s, f->kb ? f->keys + s * f->kb : NULL, hole))
    return fuze__fobj_nomem(f, NULL);
  fuze_piece pcs[5];
  int np = 0;
  if (f->kb && kp && kp->valid && kp->found) table_put_at(f, kp->pos, 1, kp->h, TAB_DEL);
  else if (f->kb) table_set(f, f->keys + s * f->kb, TAB_DEL);
  if (s != last) {
    fuze__xor3_small(dv, hole, tail, f->nb);
    pcs[np++] = (fuze_piece){PIECE_NODE, s, dv};
    memcpy(hole, tail, f->nb);
    if (f->kb) {
      fuze__xor3_small(dk, f->keys + s * f->kb, f->keys + last * f->kb, f->kb);
      memcpy(f->keys + s * f->kb, f->keys + last * f->kb, f->kb);
      pcs[np++] = (fuze_piece){PIECE_KEY, s, dk};
      table_set(f, f->keys + s * f->kb, (int64_t)s);
    }
  }
  /* The tail slot's contribution leaves the fused node: delta = its value. */
  pcs[np++] = (fuze_piece){PIECE_NODE, last, tail};
  if (f->kb) pcs[np++] = (fuze_piece){PIECE_KEY, last, f->keys + last * f->kb};
  fuze__hdr_delta(dh, f->n, f->n - 1, f->seq, f->seq + 1);
  f->seq++;
  pcs[np++] = (fuze_piece){PIECE_HDR, 0, dh};
  /* The primary's slot `last` is free (its bytes stay in vals until the
   * pieces are staged: nothing reallocates vals meanwhile). the sending path
   * sees the state after the operation. */
  f->n--;
  return fuze__fobj_send_op(f, pcs, np);
}

int fuze__fobj_remove_slot(fuze_fobj *f, size_t s, int log_kind) {
  return fuze__fobj_remove_slot_at(f, s, log_kind, NULL);
}

/* ---- creation, growth, epochs ---- */

static int make_window(fuze_fobj *f, size_t cap) {
  fuze_hosted *h = NULL;
  int nh = 0;
  size_t size = 0;
  int rc = fuze__agree(&f->ctx->net, compute_hosted(f, cap, &h, &nh, &size));
  int shm = 0;
  if (!rc) rc = fuze__win_create_fused(&f->ctx->net, size, &f->win, &f->winbase, !f->excl, &shm);
  if (rc) {
    free(h);
    return rc;
  }
  free(f->hosted);
  f->hosted = h;
  f->nhosted = nh;
  f->winsize = size;
  f->cap = cap;
  return FUZE_SUCCESS;
}

/* A new structure's fields and its recursive mutex (f->mu_ready says
 * whether the mutex could be made). Local. */
static void fobj_init(fuze_ctx *ctx, fuze_fobj *f, const char *name, int kind, size_t kb, size_t nb,
                      unsigned char *scratch) {
  f->ctx = ctx;
  snprintf(f->name, sizeof f->name, "%s", name);
  f->kind = kind;
  f->kb = kb;
  f->nb = nb;
  f->scratch = scratch;
  f->excl = ctx->cfg.lock_exclusive;
  f->win = MPI_WIN_NULL;
  pthread_mutexattr_t ma;
  if (!pthread_mutexattr_init(&ma)) {
    if (!pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE) && !pthread_mutex_init(&f->mu, &ma))
      f->mu_ready = 1;
    pthread_mutexattr_destroy(&ma);
  }
}

int fuze__fobj_create(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                      size_t alloc, size_t cap, fuze_fobj **out) {
  fuze_fobj **grown = realloc(ctx->fobjs, sizeof *grown * (size_t)(ctx->nfobjs + 1));
  fuze_fobj *f = fuze__hook(ctx, FUZE_HOOK_ALLOC, FUZE_ALLOC_CREATE) ? NULL : calloc(1, alloc);
  unsigned char *scratch = malloc(nb + kb + 64);
  if (grown) ctx->fobjs = grown;
  int rc = grown && f && scratch ? FUZE_SUCCESS : nomem(ctx, name, NULL);
  if ((rc = fuze__agree(&ctx->net, rc))) {
    free(f);
    free(scratch);
    return rc;
  }
  fobj_init(ctx, f, name, kind, kb, nb, scratch);
  if ((rc = fuze__agree(&ctx->net, f->mu_ready ? FUZE_SUCCESS : nomem(ctx, name, "a lock")))) {
    fuze__fobj_free(f);
    return rc;
  }
  if ((rc = make_window(f, cap ? cap : ctx->cfg.capacity))) {
    fuze__fobj_free(f);
    return rc;
  }
  ctx->fobjs[ctx->nfobjs++] = f;
  *out = f;
  return FUZE_SUCCESS;
}

/* ULFM repair: a replacement's empty structure (no window yet), appended
 * to ctx->fobjs. Local. */
int fuze__fobj_shell(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb, size_t alloc,
                     size_t cap, fuze_fobj **out) {
  fuze_fobj **grown = realloc(ctx->fobjs, sizeof *grown * (size_t)(ctx->nfobjs + 1));
  fuze_fobj *f = calloc(1, alloc);
  unsigned char *scratch = malloc(nb + kb + 64);
  if (grown) ctx->fobjs = grown;
  if (!grown || !f || !scratch) {
    free(f);
    free(scratch);
    return nomem(ctx, name, NULL);
  }
  fobj_init(ctx, f, name, kind, kb, nb, scratch);
  f->cap = cap;
  if (!f->mu_ready) {
    fuze__fobj_free(f);
    return nomem(ctx, name, "a lock");
  }
  ctx->fobjs[ctx->nfobjs++] = f;
  *out = f;
  return FUZE_SUCCESS;
}

/* Collective over the repaired communicator (ULFM): the hosted regions move
 * from the old window (none on a replacement) into a new one, same capacity. */
int fuze__fobj_rewin(fuze_fobj *f, fuze_oldwin *old) {
  /* The new window first, the bytes copied across; the old one is the
   * caller's to free. */
  *old = (fuze_oldwin){f->win, f->winbase, f->winsize, !f->excl};
  f->win = MPI_WIN_NULL;
  f->ctx->net.win_keep = old->win != MPI_WIN_NULL ? old->size : 0; /* copied below */
  f->ctx->net.win_reuse = &old->win; /* or kept in place: fuze's own shared memory */
  int rc = make_window(f, f->cap);
  f->ctx->net.win_keep = 0;
  f->ctx->net.win_reuse = NULL;
  if (rc) { /* the old window keeps the bytes; a half-made new one is left to MPI */
    f->win = old->win;
    f->winbase = old->base;
    f->winsize = old->size;
    old->win = MPI_WIN_NULL;
    return rc;
  }
  if (old->win != MPI_WIN_NULL && old->size && f->winbase != old->base)
    memcpy(f->winbase, old->base, old->size < f->winsize ? old->size : f->winsize);
  return rc;
}

void fuze__fobj_free(fuze_fobj *f) {
  if (!f) return;
  fuze__fobj_coal_free(f);
  fuze__win_free(&f->win, !f->excl);
  free(f->keys);
  free(f->vals);
  fuze__big_free(f->table, sizeof *f->table * f->tsize);
  free(f->phdr);
  free(f->log);
  free(f->q);
  free(f->scratch);
  free(f->hosted);
  if (f->mu_ready) pthread_mutex_destroy(&f->mu);
  free(f);
}

/* Copy one region from the old layout (cap0) to the new one (cap1). */
static void copy_region(const fuze_fobj *f, int b, const unsigned char *src, size_t cap0,
                        unsigned char *dst, size_t cap1) {
  int k = block_k(f->ctx, b);
  fuze_fobj_layout l0 = layout(f, b, cap0), l1 = layout(f, b, cap1);
  memcpy(dst, src, fuze__hdr_off(k));
  for (int i = 0; f->kb && i < k; i++)
    memcpy(dst + l1.keys_off + (size_t)i * cap1 * f->kb, src + l0.keys_off + (size_t)i * cap0 * f->kb,
           cap0 * f->kb);
  memcpy(dst + l1.nodes_off, src + l0.nodes_off, cap0 * f->nb);
}

/* Collective: new windows at cap1, old contents copied. A failed
 * MPI_Win_sync (local) is agreed after the barrier, so that every rank stops
 * growing together (a regrow is rare: capacities double). */
static int regrow(fuze_fobj *f, size_t cap1) {
  MPI_Win old = f->win;
  unsigned char *obase = f->winbase;
  fuze_hosted *oh = f->hosted;
  size_t cap0 = f->cap;
  int onh = f->nhosted;
  f->hosted = NULL;
  int rc = make_window(f, cap1);
  if (rc) {
    f->win = old;
    f->winbase = obase;
    f->hosted = oh;
    return rc;
  }
  rc = fuze__fobj_sync(f);
  for (int h = 0; h < onh; h++)
    for (int half = 0; half < 2; half++)
      copy_region(f, oh[h].block, obase + oh[h].off + (size_t)half * oh[h].fused, cap0,
                  f->winbase + f->hosted[h].off + (size_t)half * f->hosted[h].fused, cap1);
  int src = fuze__fobj_sync(f);
  free(oh);
  fuze__win_free(&old, !f->excl);
  /* Nobody may accumulate into a region before its old contents are in. */
  int brc = fuze__barrier(&f->ctx->net);
  return brc ? brc : fuze__agree(&f->ctx->net, rc ? rc : src);
}

/* Collective: every window grows to twice the largest need (slots held or
 * touched by queued operations) when that exceeds its capacity, then every
 * queue is sent. */
int fuze__fobjs_grow(fuze_ctx *ctx) {
  int n = ctx->nfobjs;
  if (!n) return FUZE_SUCCESS;
  uint64_t *need = calloc((size_t)n, sizeof *need);
  if (!need) return fuze__agree(&ctx->net, FUZE_NOMEM(ctx->msg, "grow"));
  for (int x = 0; x < n && !ctx->lost; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    need[x] = f->n > f->qslots ? f->n : f->qslots;
  }
  int rc = fuze__max_u64s(&ctx->net, need, n);
  for (int x = 0; x < n && !rc; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    size_t cap = f->cap;
    if (need[x] > cap)
      while (cap < 2 * need[x]) cap *= 2;
    if (cap != f->cap) rc = regrow(f, cap);
  }
  free(need);
  for (int x = 0; x < n && !rc && !ctx->lost; x++)
    if (ctx->fobjs[x]->qlen) rc = fuze__fobj_drain(ctx->fobjs[x]);
  return fuze__agree(&ctx->net, rc);
}

/* Restart (collective, every rank): this member's state as of the persisted
 * epoch (n entries, seq operations), published to the backups and committed
 * at once, so that a wipe before the next checkpoint rolls back to it. The
 * window was created at the stored capacity, so every slot fits. A failed
 * MPI_Win_sync (local) is agreed at the end. */
int fuze__fobj_restore(fuze_fobj *f, size_t n, uint64_t seq, const unsigned char *keys,
                       const unsigned char *vals) {
  fuze_ctx *ctx = f->ctx;
  int rc = FUZE_SUCCESS;
  if (n > f->cap)
    rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "'%s': the persisted epoch holds %zu entries on rank %d "
                 "but its capacity is %zu", f->name, n, ctx->rank, f->cap);
  else if (n && (ensure_slots(f, n) || (f->kb && table_rebuild(f, n))))
    rc = fuze__fobj_nomem(f, NULL);
  if (!rc && n) {
    memcpy(f->vals, vals, n * f->nb);
    if (f->kb) {
      memcpy(f->keys, keys, n * f->kb);
      for (size_t s = 0; s < n; s++) table_set(f, f->keys + s * f->kb, (int64_t)s);
    }
    f->n = n;
  }
  if (!rc && !ctx->is_spare && (n || seq)) {
    f->seq = seq;
    rc = fuze__fobj_publish(f, -1);
  }
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  int rc1 = fuze__barrier(&ctx->net), rc2 = fuze__fobj_sync(f);
  for (int h = 0; h < f->nhosted; h++) {
    unsigned char *w = f->winbase + f->hosted[h].off;
    memcpy(w + f->hosted[h].fused, w, f->hosted[h].fused);
  }
  int rc3 = fuze__fobj_sync(f), rc4 = fuze__barrier(&ctx->net);
  if (rc1 || rc4) return rc1 ? rc1 : rc4;
  return fuze__agree(&ctx->net, rc2 ? rc2 : rc3);
}

/* code=byzantine (byzantine.c): this primary's state becomes (n, seq, keys,
 * vals), a corrected copy of its committed state; local, the backups are not
 * touched (they already hold that state). Recovery (frecovery.c): a lost
 * primary's index with vals NULL (zeros) before its values are decoded. The
 * hash index is rebuilt. */
int fuze__fobj_restore_state(fuze_fobj *f, size_t n, uint64_t seq, const unsigned char *keys,
                             const unsigned char *vals) {
  if (ensure_slots(f, n)) return FUZE_ERR_NOMEM;
  if (n && !vals) memset(f->vals, 0, n * f->nb);
  else if (n && vals != f->vals) memcpy(f->vals, vals, n * f->nb);
  if (n && f->kb && keys != f->keys) memcpy(f->keys, keys, n * f->kb);
  f->n = n;
  f->seq = seq;
  if (f->kb && table_rebuild(f, n)) return FUZE_ERR_NOMEM;
  return FUZE_SUCCESS;
}

/* Rollback: queued operations are undone with the rest; drop them. */
void fuze__fobjs_drop_queues(fuze_ctx *ctx) {
  for (int x = 0; x < ctx->nfobjs; x++) {
    ctx->fobjs[x]->qlen = 0;
    ctx->fobjs[x]->qslots = 0;
  }
}

static int copy_halves(fuze_ctx *ctx, int to_committed, const unsigned char *changed) {
  if (ctx->lost) return FUZE_SUCCESS;
  int rc = FUZE_SUCCESS;
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    int src = fuze__fobj_sync(f);
    for (int h = 0; h < f->nhosted; h++) {
      if (changed && !(changed[f->hosted[h].block] & FUZE_CHANGED_FOBJS)) continue;
      unsigned char *w = f->winbase + f->hosted[h].off, *c = w + f->hosted[h].fused;
      if (to_committed) memcpy(c, w, f->hosted[h].fused);
      else memcpy(w, c, f->hosted[h].fused);
    }
    int src2 = fuze__fobj_sync(f);
    if (!rc) rc = src ? src : src2;
  }
  return rc;
}

int fuze__fobjs_promote(fuze_ctx *ctx, const unsigned char *changed) { return copy_halves(ctx, 1, changed); }
int fuze__fobjs_reset_working(fuze_ctx *ctx) { return copy_halves(ctx, 0, NULL); }

uint64_t fuze__fobjs_ops(const fuze_ctx *ctx) {
  uint64_t n = 0;
  for (int x = 0; x < ctx->nfobjs; x++) n += ctx->fobjs[x]->ops;
  return n;
}

void fuze__fobjs_commit_logs(fuze_ctx *ctx) {
  for (int x = 0; x < ctx->nfobjs; x++) ctx->fobjs[x]->loglen = 0;
}

/* Undo one remove: the element now in the hole goes back to the end and the
 * removed pair returns to its slot (the exact pre-remove slot order). */
static void undo_remove(fuze_fobj *f, size_t s, const unsigned char *key, const unsigned char *val) {
  size_t end = f->n;
  if (s < end) {
    memcpy(f->vals + end * f->nb, f->vals + s * f->nb, f->nb);
    if (f->kb) memcpy(f->keys + end * f->kb, f->keys + s * f->kb, f->kb);
  }
  memcpy(f->vals + s * f->nb, val, f->nb);
  if (f->kb) memcpy(f->keys + s * f->kb, key, f->kb);
  f->n++;
}

/* Undo the record that ends at end (the log's end or the start of the
 * next record); returns where it starts. */
static size_t undo_one(fuze_fobj *f, size_t end) {
  log_rec r;
  memcpy(&r, f->log + end - sizeof r, sizeof r);
  size_t pay = log_payload(f, r.kind), start = end - sizeof r - pay;
  const unsigned char *key = f->log + start, *val = r.kind == LOG_SET ? key : key + f->kb;
  if (r.kind == LOG_APPEND) {
    f->n--;
  } else if (r.kind == LOG_SET) {
    memcpy(f->vals + r.s * f->nb, val, f->nb);
  } else if (r.kind == LOG_SET_KEY) {
    memcpy(f->vals + r.s * f->nb, val, f->nb);
    memcpy(f->keys + r.s * f->kb, key, f->kb);
  } else {
    undo_remove(f, r.s, key, val);
  }
  f->seq--;
  return start;
}

/* Rollback: every operation since the last checkpoint, newest first. */
void fuze__fobjs_undo(fuze_ctx *ctx) {
  if (ctx->lost) return;
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    for (size_t off = f->loglen; off >= sizeof(log_rec);) off = undo_one(f, off);
    /* The index afresh, in place (see table_rebuild), rather than record by
     * record: undoing removes re-inserts keys, and the deleted entries they
     * left would stay counted. */
    if (f->kb && f->loglen && f->tsize) table_fill(f);
    f->loglen = 0;
  }
}

void fuze__fobjs_wipe(fuze_ctx *ctx) {
  /* What was already issued reaches the backups (in-flight messages of a
   * crashed process are delivered or not as a whole per operation and
   * backup; delivering them keeps the emulation deterministic). Coalesced
   * operations (sync=batch) count as issued. A failed flush changes nothing
   * here: the rank is wiped either way. */
  (void)fuze__fobjs_flush(ctx);
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    fuze__fobj_coal_free(f); /* whatever a failed flush left */
    if (f->winbase) memset(f->winbase, 0xA5, f->winsize);
    free(f->keys);
    free(f->vals);
    fuze__big_free(f->table, sizeof *f->table * f->tsize);
    free(f->log);
    f->keys = f->vals = f->log = NULL;
    f->table = NULL;
    free(f->q);
    f->q = NULL;
    f->qlen = f->qcap = f->qslots = 0;
    f->n = f->vcap = f->tsize = f->tused = f->loglen = f->logcap = 0;
    f->seq = 0;
    f->pending = 0;
  }
  ctx->stage_pos = 0;
}

/* ---- introspection ---- */

static int node_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

static int fused_info(const fuze_ctx *ctx, const char *name, fuze_fused_stats *st) {
  const fuze_fobj *f = NULL;
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!strcmp(ctx->fobjs[x]->name, name)) f = ctx->fobjs[x];
  if (!f) return FUZE_ERR(FUZE_ERR_NOT_FOUND, "fuze_fused_info: no stack or map named '%s'", name);
  memset(st, 0, sizeof *st);
  int rc = fuze__fobj_sync(f);
  if (rc) return rc;
  st->regions = f->nhosted;
  st->capacity = f->cap;
  st->ops = f->ops;
  st->deferred_ops = f->deferred_ops;
  for (int h = 0; h < f->nhosted; h++) {
    const unsigned char *w = f->winbase + f->hosted[h].off;
    int k = block_k(ctx, f->hosted[h].block);
    uint64_t live = 0, c;
    for (int i = 0; i < k; i++) {
      memcpy(&c, w + fuze__hdr_off(i), sizeof c); /* the count */
      if (c > live) live = c;
    }
    st->nodes += live;
    const unsigned char *nodes = w + fuze__fobj_nodes_off(f, f->hosted[h].block);
    for (size_t s = live; s < f->cap; s++) st->stray_nodes += !node_zero(nodes + s * f->nb, f->nb);
  }
  return FUZE_SUCCESS;
}

/* Local: with no operation of another thread in progress (data/threads.h). */
int fuze_fused_info(const fuze_ctx *ctx, const char *name, fuze_fused_stats *st) {
  if (!ctx || !name || !st) return FUZE_ERR(FUZE_ERR_ARG, "fuze_fused_info: NULL argument");
  fuze_ctx *c = (fuze_ctx *)ctx;
  int rc = fuze__local_enter(c, "fuze_fused_info");
  if (rc) return rc;
  fuze__send_lock(c);
  rc = fused_info(ctx, name, st);
  fuze__send_unlock(c);
  fuze__local_leave(c);
  return rc;
}
