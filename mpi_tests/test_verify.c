/* Scrubbing (fuze_verify) end to end. Usage: test_verify F CODE SPARES SEED
 * (CODE rs|xor|replicate; domain=rank). One program loops over scenarios:
 *   - a clean verification (every count, no entry);
 *   - one corrupted copy per block: an array's committed copy, a backup's
 *     parity, a stack element, a map value, a map key at its primary, an index
 *     replica at a backup, a stack's fused node, an array's working parity;
 *     with f >= 2 each is located (the report names block, structure, rank and
 *     the exact byte range) and repaired, and a wipe of f other ranks of the
 *     block then recovers bit-exactly; with f = 1 it is detected (naming the
 *     block) and FUZE_ERR_CORRUPT returned, and nothing is modified;
 *   - two corrupted primaries of one block at different offsets (both located)
 *     and at the same offset (never "repaired" into a wrong state: a pattern
 *     that no single error explains is reported unrepaired, nothing modified);
 *   - a corrupted committed copy that a checkpoint then commits into the
 *     parity (the parity is repaired: STALE);
 *   - live stacks and maps (operations since the commit);
 *   - misuse: NULL ctx, lost ranks, after finalize;
 *   - config inject=corrupt:... with verify_every=2: the automatic
 *     verifications find every injection (also on spare ranks).
 * Test hooks reach the library's internals through src/ headers. */
#include "common.h"

#include "data/fused.h"
#include "core/pfile.h"

#include <isa-l/erasure_code.h>

#define EB 12 /* stack element bytes */
#define VB 20 /* map value bytes */
#define MAXE 2048

typedef struct tw {
  int np, me, f, spares, ncompute;
  const char *code;
  uint64_t seed, rng, pick; /* rng: this rank's data; pick: the same on every rank */
  fuze_ctx *ctx;
  MPI_Comm app;
  double *a, *acom;
  size_t na;
  unsigned char *b, *bcom;
  size_t nb;
  fuze_stack *s;
  fuze_map *m;
  size_t sn, mn, sn_com, mn_com;
  unsigned char st[MAXE][EB], st_com[MAXE][EB];
  uint64_t keys[MAXE], keys_com[MAXE];
  unsigned char vals[MAXE][VB], vals_com[MAXE][VB];
} tw;

static char what[256];

/* ---- workload and model ---- */

static long mfind(const tw *w, uint64_t k) {
  for (size_t i = 0; i < w->mn; i++)
    if (w->keys[i] == k) return (long)i;
  return -1;
}

static void ops(tw *w, int n) {
  for (int x = 0; x < n; x++) {
    unsigned char e[EB], v[VB];
    if (t_below(&w->rng, 2)) {
      if ((w->sn < 40 || t_below(&w->rng, 3)) && w->sn < MAXE) {
        t_fill(&w->rng, e, EB);
        T_EQ_INT(fuze_stack_push(w->s, e), FUZE_SUCCESS, "push");
        memcpy(w->st[w->sn++], e, EB);
      } else if (w->sn) {
        T_EQ_INT(fuze_stack_pop(w->s, e), FUZE_SUCCESS, "pop");
        w->sn--;
      }
    } else {
      uint64_t k = t_below(&w->rng, 120);
      long i = mfind(w, k);
      if (t_below(&w->rng, 4) || i < 0) {
        if (i < 0 && w->mn >= MAXE) continue;
        t_fill(&w->rng, v, VB);
        T_EQ_INT(fuze_map_put(w->m, &k, v), FUZE_SUCCESS, "put");
        if (i < 0) {
          i = (long)w->mn++;
          w->keys[i] = k;
        }
        memcpy(w->vals[i], v, VB);
      } else {
        T_EQ_INT(fuze_map_remove(w->m, &k), FUZE_SUCCESS, "remove");
        w->mn--;
        w->keys[i] = w->keys[w->mn];
        memcpy(w->vals[i], w->vals[w->mn], VB);
      }
    }
  }
}

static void change_arrays(tw *w) {
  for (int x = 0; x < 50 && w->na; x++) w->a[t_below(&w->rng, w->na)] = (double)t_rng(&w->rng);
  for (int x = 0; x < 3 && w->nb; x++) w->b[t_below(&w->rng, w->nb)] = (unsigned char)t_rng(&w->rng);
}

static void remember(tw *w) {
  memcpy(w->acom, w->a, w->na * sizeof *w->a);
  memcpy(w->bcom, w->b, w->nb);
  w->sn_com = w->sn;
  w->mn_com = w->mn;
  memcpy(w->st_com, w->st, sizeof w->st);
  memcpy(w->keys_com, w->keys, sizeof w->keys);
  memcpy(w->vals_com, w->vals, sizeof w->vals);
}

static void restore_model(tw *w) {
  w->sn = w->sn_com;
  w->mn = w->mn_com;
  memcpy(w->st, w->st_com, sizeof w->st);
  memcpy(w->keys, w->keys_com, sizeof w->keys);
  memcpy(w->vals, w->vals_com, sizeof w->vals);
}

static void commit(tw *w, int work) {
  if (work) {
    change_arrays(w);
    ops(w, 30);
  }
  int rc = fuze_checkpoint(w->ctx);
  T_CHECK(rc == FUZE_SUCCESS, "%s: checkpoint: %s: %s", what, fuze_err_name(rc), fuze_last_error(w->ctx));
  remember(w);
}

/* Every rank's structures hold the model (cur: the live one, else committed). */
static void check_state(tw *w, int cur, const char *tag) {
  const double *a = cur ? w->a : w->acom;
  T_CHECK(!memcmp(w->a, a, w->na * sizeof *a) && !memcmp(w->b, cur ? w->b : w->bcom, w->nb),
          "%s %s: arrays differ from the model", what, tag);
  size_t sn = cur ? w->sn : w->sn_com, mn = cur ? w->mn : w->mn_com;
  T_CHECK(fuze_stack_size(w->s) == sn, "%s %s: stack size %zu, expected %zu", what, tag,
          fuze_stack_size(w->s), sn);
  for (size_t i = 0; i < sn && i < fuze_stack_size(w->s); i++) {
    unsigned char e[EB];
    fuze_stack_at(w->s, i, e);
    if (memcmp(e, cur ? w->st[i] : w->st_com[i], EB)) {
      T_CHECK(0, "%s %s: stack element %zu differs", what, tag, i);
      break;
    }
  }
  T_CHECK(fuze_map_size(w->m) == mn, "%s %s: map size %zu, expected %zu", what, tag,
          fuze_map_size(w->m), mn);
  for (size_t i = 0; i < mn; i++) {
    unsigned char v[VB];
    uint64_t k = cur ? w->keys[i] : w->keys_com[i];
    int rc = fuze_map_get(w->m, &k, v);
    if (rc || memcmp(v, cur ? w->vals[i] : w->vals_com[i], VB)) {
      T_CHECK(0, "%s %s: key %llu: %s or value differs", what, tag, (unsigned long long)k,
              fuze_err_name(rc));
      break;
    }
  }
}

/* ---- test hooks: internals through src/ headers ---- */

static fuze_array *arr(tw *w, const char *name) {
  for (int x = 0; x < w->ctx->narrays; x++)
    if (!strcmp(w->ctx->arrays[x]->name, name)) return w->ctx->arrays[x];
  return NULL;
}

static fuze_fobj *fobj(tw *w, const char *name) {
  for (int x = 0; x < w->ctx->nfobjs; x++)
    if (!strcmp(w->ctx->fobjs[x]->name, name)) return w->ctx->fobjs[x];
  return NULL;
}

static const fuze_plan *plan(tw *w) { return &w->ctx->plan; }
static int bk(tw *w, int b) { return plan(w)->block_start[b + 1] - plan(w)->block_start[b]; }
static int member(tw *w, int b, int i) { return plan(w)->members[plan(w)->block_start[b] + i]; }
static int host(tw *w, int b, int j) { return plan(w)->hosts[b * w->f + j]; }

/* Byte of rank `r`'s copy; NULL elsewhere. what: "shadow", "working",
 * "parity" (arrays), "vals", "keys", "region" (committed), "wregion". */
static unsigned char *spot(tw *w, int r, const char *name, const char *part, int b, int j, size_t off) {
  if (w->me != r) return NULL;
  fuze_array *a = arr(w, name);
  if (a) {
    if (!strcmp(part, "shadow")) return a->shadow + off;
    for (int h = 0; h < a->nhosted; h++)
      if (a->hosted[h].block == b && a->hosted[h].j == j) {
        return (!strcmp(part, "working") ? a->winbase + a->hosted[h].off
                                         : a->cbase + a->hosted[h].coff) + off;
      }
    return NULL;
  }
  fuze_fobj *f = fobj(w, name);
  if (!strcmp(part, "vals")) return f->vals + off;
  if (!strcmp(part, "keys")) return f->keys + off;
  for (int h = 0; h < f->nhosted; h++)
    if (f->hosted[h].block == b && f->hosted[h].j == j)
      return f->winbase + f->hosted[h].off + (!strcmp(part, "wregion") ? 0 : f->hosted[h].fused) + off;
  return NULL;
}

static void flip(tw *w, int r, const char *name, const char *part, int b, int j, size_t off,
                 unsigned char mask) {
  unsigned char *p = spot(w, r, name, part, b, j, off);
  if (p) *p ^= mask;
  MPI_Barrier(w->app);
}

/* ---- reports ---- */

static const fuze_verify_entry *find(const fuze_verify_report *r, const char *name, int block,
                                     int kind, int rank, uint64_t off) {
  for (int x = 0; x < r->nentries; x++) {
    const fuze_verify_entry *e = &r->entries[x];
    if (!strcmp(e->name, name) && e->block == block && e->kind == kind && e->rank == rank &&
        e->offset <= off && off < e->offset + e->length)
      return e;
  }
  return NULL;
}

static void dump(const fuze_verify_report *r) {
  if (!t_failures) return;
  int me;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  if (me) return;
  fprintf(stderr, "  report: run %llu, %llu mismatches (%llu repaired), %d entries\n",
          (unsigned long long)r->run, (unsigned long long)r->mismatches,
          (unsigned long long)r->repaired, r->nentries);
  for (int x = 0; x < r->nentries; x++)
    fprintf(stderr, "    '%s' b%d kind %d rank %d backup %d member %d [%llu,+%llu) %llu bad rep %d\n",
            r->entries[x].name, r->entries[x].block, r->entries[x].kind, r->entries[x].rank,
            r->entries[x].backup, r->entries[x].member, (unsigned long long)r->entries[x].offset,
            (unsigned long long)r->entries[x].length, (unsigned long long)r->entries[x].bytes,
            r->entries[x].repaired);
}

/* One corruption of one copy, checked. kind/rank: what f >= 2 must report
 * (f = 1: UNLOCATED, or INDEX with rank -1, unrepaired). Afterwards (f >= 2)
 * wipe up to f other ranks of the block and recover bit-exactly; (f = 1) undo
 * the corruption and verify clean. */
static void single(tw *w, const char *label, const char *name, const char *part, int r, int b,
                   int j, size_t off, unsigned char mask, int kind, int backup, int rmember,
                   uint64_t report_off) {
  snprintf(what, sizeof what, "f=%d code=%s spares=%d seed=%llu: %s (rank %d block %d off %zu)",
           w->f, w->code, w->spares, (unsigned long long)w->seed, label, r, b, off);
  fuze_verify_report rep;
  flip(w, r, name, part, b, j, off, mask);
  int rc = fuze_verify(w->ctx, &rep);
  int index = kind == FUZE_VERIFY_INDEX, working = kind == FUZE_VERIFY_WORKING;
  if (w->f >= 2 || working) {
    T_CHECK(rc == FUZE_RECOVERED, "%s: verify returned %s: %s", what, fuze_err_name(rc),
            fuze_last_error(w->ctx));
    const fuze_verify_entry *e = find(&rep, name, b, kind, r, report_off);
    T_CHECK(e != NULL, "%s: no entry of kind %d naming rank %d at %llu", what, kind, r,
            (unsigned long long)report_off);
    if (e) {
      T_CHECK(e->repaired && e->offset == report_off && e->length == 1 && e->bytes == 1,
              "%s: entry [%llu,+%llu) bytes %llu repaired %d", what, (unsigned long long)e->offset,
              (unsigned long long)e->length, (unsigned long long)e->bytes, e->repaired);
      T_CHECK(e->backup == backup && e->member == rmember, "%s: backup %d member %d", what,
              e->backup, e->member);
    }
    T_CHECK(rep.mismatches == 1 && rep.repaired == 1 && rep.unrepaired == 0 && rep.bad_bytes == 1,
            "%s: %llu mismatches, %llu repaired", what, (unsigned long long)rep.mismatches,
            (unsigned long long)rep.repaired);
    dump(&rep);
    rc = fuze_verify(w->ctx, &rep);
    T_CHECK(rc == FUZE_SUCCESS && rep.mismatches == 0, "%s: second verify %s", what, fuze_err_name(rc));
    /* Decode with the repaired copy: wipe up to f other ranks of the block. */
    int victims[8], nv = 0;
    for (int x = 0; x < bk(w, b) + w->f && nv < w->f; x++) {
      int v = x < bk(w, b) ? member(w, b, x) : host(w, b, x - bk(w, b));
      if (v != r && v < w->ncompute) victims[nv++] = v;
    }
    T_EQ_INT(fuze_inject(w->ctx, victims, nv), FUZE_SUCCESS, "inject");
    rc = fuze_recover(w->ctx);
    T_CHECK(rc == FUZE_RECOVERED, "%s: recover %s: %s", what, fuze_err_name(rc), fuze_last_error(w->ctx));
    restore_model(w);
    check_state(w, 0, "after repair + recovery");
  } else {
    T_CHECK(rc == FUZE_ERR_CORRUPT, "%s: verify returned %s", what, fuze_err_name(rc));
    T_CHECK(strstr(fuze_last_error(w->ctx), "could not be repaired") &&
                strstr(fuze_last_error(w->ctx), name),
            "%s: message '%s'", what, fuze_last_error(w->ctx));
    const fuze_verify_entry *e = find(&rep, name, b, index ? FUZE_VERIFY_INDEX : FUZE_VERIFY_UNLOCATED,
                                      -1, report_off);
    T_CHECK(e && !e->repaired, "%s: no unrepaired entry for block %d at %llu", what, b,
            (unsigned long long)report_off);
    T_CHECK(rep.unrepaired >= 1 && rep.repaired == 0, "%s: %llu unrepaired %llu repaired", what,
            (unsigned long long)rep.unrepaired, (unsigned long long)rep.repaired);
    dump(&rep);
    unsigned char *p = spot(w, r, name, part, b, j, off);
    if (p) *p ^= mask; /* nothing was modified: flipping back restores it */
    MPI_Barrier(w->app);
    rc = fuze_verify(w->ctx, &rep);
    T_CHECK(rc == FUZE_SUCCESS && rep.mismatches == 0, "%s: verify after undo: %s: %s", what,
            fuze_err_name(rc), fuze_last_error(w->ctx));
  }
  check_state(w, 0, "after scrub");
  commit(w, 1);
}

static int pick_member(tw *w, size_t (*len)(tw *, int), size_t min) {
  for (int t = 0; t < 100; t++) {
    int r = (int)t_below(&w->pick, (size_t)w->ncompute);
    if (len(w, r) >= min) return r;
  }
  return -1;
}

/* Sizes of other ranks, from every rank's counts (gathered). */
static uint64_t g_sizes[64][4]; /* na bytes, nb, sn, mn */
static void gather_sizes(tw *w) {
  uint64_t mine[4] = {w->na * 8, w->nb, w->sn, w->mn};
  MPI_Allgather(mine, 4, MPI_UINT64_T, g_sizes, 4, MPI_UINT64_T, w->app);
}
static size_t len_a(tw *w, int r) { (void)w; return (size_t)g_sizes[r][0]; }
static size_t len_s(tw *w, int r) { (void)w; return (size_t)g_sizes[r][2]; }
static size_t len_m(tw *w, int r) { (void)w; return (size_t)g_sizes[r][3]; }

/* A backup (b, j) hosted by a compute rank, chosen at random; -1 if none. */
static int pick_host(tw *w, int *b, int *j) {
  for (int t = 0; t < 200; t++) {
    *b = (int)t_below(&w->pick, (size_t)plan(w)->nblocks);
    *j = (int)t_below(&w->pick, (size_t)w->f);
    if (host(w, *b, *j) < w->ncompute) return host(w, *b, *j);
  }
  return -1;
}

static size_t fused_of(tw *w, int b) {
  size_t m = 0;
  for (int i = 0; i < bk(w, b); i++)
    if (len_a(w, member(w, b, i)) > m) m = len_a(w, member(w, b, i));
  return m;
}

static void singles(tw *w) {
  gather_sizes(w);
  const fuze_plan *p = plan(w);
  int r, b, j, h;
  unsigned char mask = (unsigned char)(1u << t_below(&w->pick, 8));
  /* an array's committed copy */
  r = pick_member(w, len_a, 8);
  size_t off = t_below(&w->pick, len_a(w, r));
  single(w, "array copy", "a", "shadow", r, p->block_of[r], -1, off, mask, FUZE_VERIFY_PRIMARY, -1,
         -1, off);
  /* a backup's parity of the array */
  gather_sizes(w);
  if ((h = pick_host(w, &b, &j)) >= 0) {
    off = t_below(&w->pick, fused_of(w, b));
    single(w, "array parity", "a", "parity", h, b, j, off, mask, FUZE_VERIFY_PARITY, j, -1, off);
  }
  /* a stack element and a map value of a primary */
  gather_sizes(w);
  if ((r = pick_member(w, len_s, 1)) >= 0) {
    off = t_below(&w->pick, len_s(w, r) * EB);
    single(w, "stack element", "stack", "vals", r, p->block_of[r], -1, off, mask,
           FUZE_VERIFY_PRIMARY, -1, -1, off);
  }
  gather_sizes(w);
  if ((r = pick_member(w, len_m, 1)) >= 0) {
    off = t_below(&w->pick, len_m(w, r) * VB);
    single(w, "map value", "map", "vals", r, p->block_of[r], -1, off, mask, FUZE_VERIFY_PRIMARY,
           -1, -1, off);
  }
  /* a map key at its primary (index: majority) */
  gather_sizes(w);
  if ((r = pick_member(w, len_m, 1)) >= 0) {
    off = t_below(&w->pick, len_m(w, r) * 8);
    single(w, "map key at the primary", "map", "keys", r, p->block_of[r], -1, off, mask,
           FUZE_VERIFY_INDEX, -1, r, 16 + off);
  }
  /* an index replica at a backup: member i's count, or one of its keys */
  gather_sizes(w);
  if ((h = pick_host(w, &b, &j)) >= 0) {
    int i = (int)t_below(&w->pick, (size_t)bk(w, b));
    off = t_below(&w->pick, 8);
    single(w, "count replica", "stack", "region", h, b, j, 64 * (size_t)i + off, mask,
           FUZE_VERIFY_INDEX, j, member(w, b, i), off);
    gather_sizes(w);
    fuze_fobj *f = fobj(w, "map");
    size_t slot = t_below(&w->pick, f->cap);
    size_t koff = fuze__fobj_layout(bk(w, b), f->cap, 8, VB).keys_off + ((size_t)i * f->cap + slot) * 8;
    single(w, "key replica", "map", "region", h, b, j, koff, mask, FUZE_VERIFY_INDEX, j,
           member(w, b, i), 16 + slot * 8);
  }
  /* a stack's fused node at a backup (also beyond the live nodes) */
  gather_sizes(w);
  if ((h = pick_host(w, &b, &j)) >= 0) {
    fuze_fobj *f = fobj(w, "stack");
    size_t node = t_below(&w->pick, f->cap * EB);
    size_t noff = fuze__fobj_layout(bk(w, b), f->cap, 0, EB).nodes_off + node;
    single(w, "stack node", "stack", "region", h, b, j, noff, mask, FUZE_VERIFY_PARITY, j, -1, node);
  }
  /* an array's working parity (must equal the committed one) */
  gather_sizes(w);
  if ((h = pick_host(w, &b, &j)) >= 0) {
    off = t_below(&w->pick, fused_of(w, b));
    single(w, "working parity", "a", "working", h, b, j, off, mask, FUZE_VERIFY_WORKING, j, -1, off);
  }
}

/* Would the pattern of masks m1 (member i1) and m2 (member i2) at offset p
 * look like one error? (Then the code cannot tell; f = 2 only.) */
static int looks_single(tw *w, int b, int i1, unsigned char m1, int i2, unsigned char m2, size_t p) {
  const fuze_code *c = &w->ctx->codes[b];
  unsigned char s[16];
  int nz = 0;
  for (int j = 0; j < w->f; j++) {
    s[j] = gf_mul(fuze__code_coef(c, j, i1), m1) ^ gf_mul(fuze__code_coef(c, j, i2), m2);
    nz += s[j] != 0;
  }
  if (nz == 1) return 1;
  for (int i = 0; i < bk(w, b); i++) {
    unsigned char e = gf_mul(s[0], gf_inv(fuze__code_coef(c, 0, i)));
    int all = p < len_a(w, member(w, b, i));
    for (int j = 0; j < w->f && all; j++) all = gf_mul(fuze__code_coef(c, j, i), e) == s[j];
    if (all) return 1;
  }
  return 0;
}

/* Two corrupted primaries in one block. */
static void doubles(tw *w) {
  if (w->f < 2) return;
  gather_sizes(w);
  const fuze_plan *p = plan(w);
  int b = -1;
  for (int x = 0; x < p->nblocks && b < 0; x++)
    if (bk(w, x) >= 2) b = x;
  if (b < 0) return;
  int r1 = member(w, b, 0), r2 = member(w, b, 1);
  size_t n = len_a(w, r1) < len_a(w, r2) ? len_a(w, r1) : len_a(w, r2);
  size_t o1 = t_below(&w->pick, n / 2), o2 = n / 2 + t_below(&w->pick, n / 2);
  fuze_verify_report rep;
  /* different offsets: both located and repaired */
  snprintf(what, sizeof what, "f=%d code=%s seed=%llu: two copies of block %d, offsets %zu %zu", w->f,
           w->code, (unsigned long long)w->seed, b, o1, o2);
  flip(w, r1, "a", "shadow", b, -1, o1, 0x10);
  flip(w, r2, "a", "shadow", b, -1, o2, 0x01);
  int rc = fuze_verify(w->ctx, &rep);
  T_CHECK(rc == FUZE_RECOVERED, "%s: %s: %s", what, fuze_err_name(rc), fuze_last_error(w->ctx));
  T_CHECK(find(&rep, "a", b, FUZE_VERIFY_PRIMARY, r1, o1) && find(&rep, "a", b, FUZE_VERIFY_PRIMARY, r2, o2),
          "%s: both not located", what);
  dump(&rep);
  check_state(w, 0, "two repaired");
  int victims[2] = {r1, r2};
  T_EQ_INT(fuze_inject(w->ctx, victims, 2), FUZE_SUCCESS, "inject");
  T_EQ_INT(fuze_recover(w->ctx), FUZE_RECOVERED, "recover after two repairs");
  restore_model(w);
  check_state(w, 0, "two repaired + recovery");
  commit(w, 1);
  /* the same offset: a pattern no single error explains is not repaired */
  gather_sizes(w);
  size_t o = t_below(&w->pick, n);
  int bit1 = -1, bit2 = -1;
  for (int x = 0; x < 64 && bit1 < 0; x++)
    if (!looks_single(w, b, 0, (unsigned char)(1u << (x / 8)), 1, (unsigned char)(1u << (x % 8)), o))
      bit1 = x / 8, bit2 = x % 8;
  if (w->f >= 3) T_CHECK(bit1 == 0 && bit2 == 0, "f >= 3: two errors looked like one");
  if (bit1 < 0) return;
  snprintf(what, sizeof what, "f=%d code=%s seed=%llu: two copies of block %d at offset %zu", w->f,
           w->code, (unsigned long long)w->seed, b, o);
  flip(w, r1, "a", "shadow", b, -1, o, (unsigned char)(1u << bit1));
  flip(w, r2, "a", "shadow", b, -1, o, (unsigned char)(1u << bit2));
  rc = fuze_verify(w->ctx, &rep);
  T_CHECK(rc == FUZE_ERR_CORRUPT, "%s: %s", what, fuze_err_name(rc));
  T_CHECK(find(&rep, "a", b, FUZE_VERIFY_UNLOCATED, -1, o) && rep.repaired == 0, "%s: report", what);
  dump(&rep);
  flip(w, r1, "a", "shadow", b, -1, o, (unsigned char)(1u << bit1)); /* nothing was modified */
  flip(w, r2, "a", "shadow", b, -1, o, (unsigned char)(1u << bit2));
  rc = fuze_verify(w->ctx, &rep);
  T_CHECK(rc == FUZE_SUCCESS, "%s: after undo: %s", what, fuze_err_name(rc));
  commit(w, 1);
}

/* A corrupted copy committed by a checkpoint: the parity is what is wrong. */
static void stale(tw *w) {
  gather_sizes(w);
  int r = pick_member(w, len_a, 8), b = plan(w)->block_of[r];
  size_t off = t_below(&w->pick, len_a(w, r));
  snprintf(what, sizeof what, "f=%d code=%s seed=%llu: stale parity (rank %d off %zu)", w->f,
           w->code, (unsigned long long)w->seed, r, off);
  flip(w, r, "a", "shadow", b, -1, off, 0x04);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint over a corrupted copy");
  fuze_verify_report rep;
  int rc = fuze_verify(w->ctx, &rep);
  if (w->f >= 2) {
    T_CHECK(rc == FUZE_RECOVERED, "%s: %s: %s", what, fuze_err_name(rc), fuze_last_error(w->ctx));
    const fuze_verify_entry *e = find(&rep, "a", b, FUZE_VERIFY_STALE, r, off);
    T_CHECK(e && e->repaired && e->offset == off, "%s: no STALE entry", what);
    dump(&rep);
    int victims[8], nv = 0;
    for (int x = 0; x < bk(w, b) && nv < w->f; x++)
      if (member(w, b, x) != r) victims[nv++] = member(w, b, x);
    victims[nv++] = r;
    if (nv > w->f) nv = w->f;
    T_EQ_INT(fuze_inject(w->ctx, victims, nv), FUZE_SUCCESS, "inject");
    T_EQ_INT(fuze_recover(w->ctx), FUZE_RECOVERED, "recover after a stale repair");
    check_state(w, 0, "stale repaired + recovery");
  } else {
    T_CHECK(rc == FUZE_ERR_CORRUPT, "%s: %s", what, fuze_err_name(rc));
    flip(w, r, "a", "shadow", b, -1, off, 0x04); /* the next checkpoint re-sends the byte */
    T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint");
    T_EQ_INT(fuze_verify(w->ctx, &rep), FUZE_SUCCESS, "verify after the fix");
  }
  commit(w, 1);
}

/* Stacks and maps with operations since the commit: checked live. */
static void live(tw *w) {
  ops(w, 40);
  fuze_verify_report rep;
  snprintf(what, sizeof what, "f=%d code=%s seed=%llu: live", w->f, w->code, (unsigned long long)w->seed);
  int rc = fuze_verify(w->ctx, &rep);
  T_CHECK(rc == FUZE_SUCCESS && rep.live == 1 && rep.mismatches == 0, "%s: %s live %d", what,
          fuze_err_name(rc), rep.live);
  gather_sizes(w);
  int r = pick_member(w, len_s, 1);
  if (r < 0) return;
  size_t off = t_below(&w->pick, len_s(w, r) * EB);
  flip(w, r, "stack", "vals", plan(w)->block_of[r], -1, off, 0x80);
  rc = fuze_verify(w->ctx, &rep);
  if (w->f >= 2) {
    T_CHECK(rc == FUZE_RECOVERED && find(&rep, "stack", plan(w)->block_of[r], FUZE_VERIFY_PRIMARY, r, off),
            "%s: live stack element: %s", what, fuze_err_name(rc));
  } else {
    T_CHECK(rc == FUZE_ERR_CORRUPT, "%s: live: %s", what, fuze_err_name(rc));
    flip(w, r, "stack", "vals", plan(w)->block_of[r], -1, off, 0x80);
  }
  dump(&rep);
  check_state(w, 1, "live");
  commit(w, 0);
  T_EQ_INT(fuze_verify(w->ctx, &rep), FUZE_SUCCESS, "verify after the live one");
  T_CHECK(rep.live == 0, "%s: committed state after a checkpoint", what);
}

static void misuse(tw *w) {
  fuze_verify_report rep;
  T_EQ_INT(fuze_verify(NULL, &rep), FUZE_ERR_ARG, "verify(NULL)");
  T_CHECK(strstr(fuze_last_error(NULL), "fuze_verify"), "message: %s", fuze_last_error(NULL));
  T_EQ_INT(fuze_verify_last(NULL, &rep), FUZE_ERR_ARG, "verify_last(NULL)");
  T_EQ_INT(fuze_verify_last(w->ctx, NULL), FUZE_ERR_ARG, "verify_last(report NULL)");
  T_EQ_INT(fuze_verify(w->ctx, NULL), FUZE_SUCCESS, "verify with no report");
  T_EQ_INT(fuze_verify_last(w->ctx, &rep), FUZE_SUCCESS, "verify_last");
  T_CHECK(rep.run >= 1 && rep.mismatches == 0, "verify_last: run %llu", (unsigned long long)rep.run);
  int victim = w->ncompute - 1;
  T_EQ_INT(fuze_inject(w->ctx, &victim, 1), FUZE_SUCCESS, "inject");
  int rc = fuze_verify(w->ctx, &rep);
  T_EQ_INT(rc, FUZE_ERR_STATE, "verify with a lost rank");
  T_CHECK(strstr(fuze_last_error(w->ctx), "ranks were lost"), "message: %s", fuze_last_error(w->ctx));
  T_EQ_INT(fuze_recover(w->ctx), FUZE_RECOVERED, "recover");
  restore_model(w);
  check_state(w, 0, "after the refused verify");
}

static void sizes(tw *w) {
  w->na = 150000 + 1001 * (size_t)w->me; /* several reduction pieces, members of different sizes */
  w->nb = w->me == 1 ? 0 : 13 + (size_t)w->me;
}

static int setup(tw *w, const char *extra) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "faults=%d;spares=%d;domain=rank;code=%s;capacity=16;chunk=4096%s%s",
           w->f, w->spares, w->code, extra ? ";" : "", extra ? extra : "");
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &w->ctx, &w->app);
  T_CHECK(rc == FUZE_SUCCESS, "fuze_init(%s): %s: %s", cfg, fuze_err_name(rc), fuze_last_error(NULL));
  if (rc || w->app == MPI_COMM_NULL) return 0;
  MPI_Comm_size(w->app, &w->ncompute);
  sizes(w);
  w->a = calloc(w->na + 1, sizeof *w->a);
  w->acom = calloc(w->na + 1, sizeof *w->a);
  w->b = calloc(w->nb + 1, 1);
  w->bcom = calloc(w->nb + 1, 1);
  for (size_t i = 0; i < w->na; i++) w->a[i] = (double)t_rng(&w->rng);
  w->sn = w->mn = 0;
  T_EQ_INT(fuze_protect(w->ctx, "a", w->a, w->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect a");
  T_EQ_INT(fuze_protect(w->ctx, "b", w->b, w->nb, MPI_BYTE, NULL), FUZE_SUCCESS, "protect b");
  T_EQ_INT(fuze_stack_create(w->ctx, "stack", EB, &w->s), FUZE_SUCCESS, "stack");
  T_EQ_INT(fuze_map_create(w->ctx, "map", 8, VB, &w->m), FUZE_SUCCESS, "map");
  return 1;
}

static void teardown(tw *w) {
  T_EQ_INT(fuze_finalize(&w->ctx), FUZE_SUCCESS, "finalize");
  fuze_verify_report rep;
  T_EQ_INT(fuze_verify(w->ctx, &rep), FUZE_ERR_ARG, "verify after finalize");
  T_CHECK(strstr(fuze_last_error(NULL), "after fuze_finalize"), "message: %s", fuze_last_error(NULL));
  MPI_Comm_free(&w->app);
  free(w->a);
  free(w->acom);
  free(w->b);
  free(w->bcom);
}

/* inject=corrupt with verify_every=2: checkpoints 2, 4, 6 verify. */
static void injected(tw *w) {
  int np = w->np, ncomp = np - w->spares;
  int r = 1 % ncomp, r2 = 2 % ncomp;
  /* The plan is deterministic: find a host of "m" parity (possibly a spare). */
  char extra[400];
  fuze_plan p;
  int dom[64];
  for (int x = 0; x < np; x++) dom[x] = x;
  fuze_plan_input in = {np, dom, np, w->spares, w->f, !strcmp(w->code, "replicate") ? 1 : 0};
  char err[256];
  T_EQ_INT(fuze__plan_build(&in, &p, err, sizeof err), FUZE_SUCCESS, "plan");
  /* The injection hits the first region the host holds (lowest block, backup). */
  int h = p.hosts[(p.nblocks - 1) * w->f + w->f - 1], hb = -1, hj = -1;
  for (int x = 0; x < p.nblocks * w->f; x++) /* prefer a spare: inject and verify run in serve() */
    if (p.hosts[x] >= ncomp) h = p.hosts[x];
  for (int x = 0; x < p.nblocks * w->f && hb < 0; x++)
    if (p.hosts[x] == h) hb = x / w->f, hj = x % w->f;
  snprintf(extra, sizeof extra, "verify_every=2;inject=corrupt:rank=%d:struct=a:at=checkpoint:2:bytes=3/"
           "corrupt:rank=%d:struct=map:at=checkpoint:4:target=parity:bytes=2/"
           "corrupt:rank=%d:struct=stack:at=checkpoint:5", r, h, r2);
  if (!setup(w, extra)) {
    fuze__plan_free(&p);
    return;
  }
  snprintf(what, sizeof what, "f=%d code=%s spares=%d: inject=corrupt (%s)", w->f, w->code, w->spares, extra);
  fuze_verify_report rep;
  ops(w, 50);
  commit(w, 1); /* 1 */
  T_EQ_INT(fuze_verify_last(w->ctx, &rep), FUZE_ERR_NOT_FOUND, "no verification yet");
  change_arrays(w);
  ops(w, 20);
  int rc = fuze_checkpoint(w->ctx); /* 2: corrupt a on rank r, then verify */
  remember(w);
  T_EQ_INT(fuze_verify_last(w->ctx, &rep), FUZE_SUCCESS, "verify_last after checkpoint 2");
  dump(&rep);
  T_CHECK(rep.run == 1, "%s: run %llu", what, (unsigned long long)rep.run);
  int found = 0;
  for (int x = 0; x < rep.nentries; x++)
    found += !strcmp(rep.entries[x].name, "a") && rep.entries[x].block == p.block_of[r] &&
             (w->f >= 2 ? rep.entries[x].kind == FUZE_VERIFY_PRIMARY && rep.entries[x].rank == r &&
                              rep.entries[x].repaired
                        : rep.entries[x].kind == FUZE_VERIFY_UNLOCATED && !rep.entries[x].repaired);
  T_CHECK(found >= 1 && rep.bad_bytes >= 1 && rep.bad_bytes <= 3, "%s: checkpoint 2: %d entries, %llu bad bytes",
          what, found, (unsigned long long)rep.bad_bytes);
  if (w->f == 1) {
    T_CHECK(rc == FUZE_ERR_CORRUPT && strstr(fuze_last_error(w->ctx), "'a' block"),
            "%s: checkpoint 2 returned %s: %s", what, fuze_err_name(rc), fuze_last_error(w->ctx));
    teardown(w);
    fuze__plan_free(&p);
    return;
  }
  T_CHECK(rc == FUZE_SUCCESS, "%s: checkpoint 2: %s: %s", what, fuze_err_name(rc), fuze_last_error(w->ctx));
  commit(w, 1); /* 3 */
  commit(w, 1); /* 4: corrupt map parity at host h, then verify */
  T_EQ_INT(fuze_verify_last(w->ctx, &rep), FUZE_SUCCESS, "verify_last after checkpoint 4");
  dump(&rep);
  found = 0;
  for (int x = 0; x < rep.nentries; x++)
    found += !strcmp(rep.entries[x].name, "map") && rep.entries[x].block == hb && rep.entries[x].rank == h &&
             rep.entries[x].backup == hj && rep.entries[x].repaired &&
             (rep.entries[x].kind == FUZE_VERIFY_PARITY || rep.entries[x].kind == FUZE_VERIFY_INDEX);
  T_CHECK(rep.run == 2 && found >= 1 && rep.unrepaired == 0, "%s: checkpoint 4: run %llu, %d entries",
          what, (unsigned long long)rep.run, found);
  change_arrays(w);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint 5"); /* corrupt stack at r2 */
  remember(w);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint 6"); /* verify finds it */
  T_EQ_INT(fuze_verify_last(w->ctx, &rep), FUZE_SUCCESS, "verify_last after checkpoint 6");
  gather_sizes(w);
  dump(&rep);
  found = 0;
  for (int x = 0; x < rep.nentries; x++)
    found += !strcmp(rep.entries[x].name, "stack") && rep.entries[x].rank == r2 && rep.entries[x].repaired &&
             rep.entries[x].kind == FUZE_VERIFY_PRIMARY;
  T_CHECK(rep.run == 3 && (found >= 1 || !g_sizes[r2][2]), "%s: checkpoint 6: run %llu, %d entries", what,
          (unsigned long long)rep.run, found);
  check_state(w, 0, "after the injections");
  int victims[3] = {r, r2, 0};
  int nv = w->f < 3 ? w->f : 3;
  if (r == r2) victims[1] = (r + 1) % ncomp;
  T_EQ_INT(fuze_inject(w->ctx, victims, nv), FUZE_SUCCESS, "inject");
  T_EQ_INT(fuze_recover(w->ctx), FUZE_RECOVERED, "recover after the injections");
  restore_model(w);
  check_state(w, 0, "recovered after the injections");
  teardown(w);
  fuze__plan_free(&p);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  static tw w;
  MPI_Comm_size(MPI_COMM_WORLD, &w.np);
  MPI_Comm_rank(MPI_COMM_WORLD, &w.me);
  w.f = argc > 1 ? atoi(argv[1]) : 2;
  w.code = argc > 2 ? argv[2] : "rs";
  w.spares = argc > 3 ? atoi(argv[3]) : 0;
  w.seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 7;
  w.rng = w.seed * 7919u + (uint64_t)w.me;
  w.pick = w.seed;
  double t0 = MPI_Wtime();
  if (w.me == 0) printf("test_verify: np=%d f=%d code=%s spares=%d seed=%llu\n", w.np, w.f, w.code,
                        w.spares, (unsigned long long)w.seed);
  if (setup(&w, NULL)) {
    snprintf(what, sizeof what, "f=%d code=%s: clean", w.f, w.code);
    ops(&w, 200);
    commit(&w, 1);
    fuze_verify_report rep;
    int rc = fuze_verify(w.ctx, &rep);
    T_CHECK(rc == FUZE_SUCCESS, "%s: %s: %s", what, fuze_err_name(rc), fuze_last_error(w.ctx));
    gather_sizes(&w);
    uint64_t blocks = 3 * (uint64_t)w.ctx->plan.nblocks; /* a, stack, map; b where non-empty */
    for (int b = 0; b < w.ctx->plan.nblocks; b++) {
      uint64_t mx = 0;
      for (int i = 0; i < bk(&w, b); i++) mx |= g_sizes[member(&w, b, i)][1];
      blocks += mx != 0;
    }
    T_CHECK(rep.run == 1 && rep.mismatches == 0 && rep.nentries == 0 && !rep.live &&
                rep.blocks == blocks && rep.bytes > w.na * 8 && rep.epoch == 1,
            "%s: run %llu blocks %llu (nblocks %d) bytes %llu epoch %llu", what,
            (unsigned long long)rep.run, (unsigned long long)rep.blocks, w.ctx->plan.nblocks,
            (unsigned long long)rep.bytes, (unsigned long long)rep.epoch);
    check_state(&w, 1, "clean");
    for (int round = 0; round < 2; round++) {
      singles(&w);
      doubles(&w);
      stale(&w);
      live(&w);
    }
    misuse(&w);
    teardown(&w);
  }
  injected(&w);
  int total = t_total(MPI_COMM_WORLD);
  if (w.me == 0)
    printf("test_verify: %s (%d failed checks, %.1f s)\n", total ? "FAILED" : "OK", total, MPI_Wtime() - t0);
  MPI_Finalize();
  return total ? 1 : 0;
}
