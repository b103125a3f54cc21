/* The primary's hash index of a map (src/data/fobj.c, "the hash index").
 *
 * 1. Its count: fuze_fobj.tused must equal the number of entries of the
 *    table that are not empty (live keys and deleted entries), after every
 *    operation of a long random mix of inserts, updates and removes at a
 *    steady size, where inserts keep reusing deleted entries. (The defect
 *    this catches: an insert into a deleted entry was counted as a new one,
 *    so the index was rebuilt long before it was half full.) And every key of
 *    the model maps to its slot, and the live entries are exactly n.
 * 2. A rollback after the index shrank or filled up with deleted entries:
 *    1000 keys committed, all removed, 40 new ones put, then a wipe of
 *    another rank; every survivor undoes the 1040 operations and must hold
 *    the 1000 committed pairs in their slot order again (foreach), each found
 *    by fuze_map_get, with a consistent index; the wiped rank too.
 * 3. sync=batch only: wide batches. 70000 pairs, then 35000 removes in key
 *    order: each remove touches its hole (ascending) and the last slot
 *    (descending), so one flush holds slots from both ends of the map, a
 *    range of more than 2^16 slots in a mixed order, which the flush sorts
 *    (fsend.c coal_sort, a radix sort by 8 bits a pass: three passes here).
 *    Then fuze_verify: every backup must equal the encoding of its members
 *    (a piece sent to the wrong slot is a mismatch), and every pair must be
 *    found with its value.
 * Both with sync=op and sync=batch; fuze_verify after each part. np 3, f 1. */
#include "common.h"

#include "data/fused.h"

#define VB 24
#define NKEYS 1000

static char what[160];

static uint64_t key_of(int rank, uint64_t i) { return ((uint64_t)rank << 40 | i) * 0x9E3779B97F4A7C15ULL; }

static void val_of(uint64_t key, unsigned char *v) {
  for (int b = 0; b < VB; b++) v[b] = (unsigned char)(key >> (8 * (b % 8))) ^ (unsigned char)b;
}

/* tused == entries not empty; live entries == n; every slot's key maps to it. */
static void index_check(fuze_map *m, const char *tag) {
  fuze_fobj *o = &m->o;
  size_t used = 0, live = 0;
  for (size_t x = 0; x < o->tsize; x++) {
    used += o->table[x] != -1;
    live += o->table[x] >= 0;
  }
  T_CHECK(o->tused == used, "%s %s: tused %zu but %zu entries are not empty (n %zu, size %zu)", what, tag,
          o->tused, used, o->n, o->tsize);
  T_CHECK(live == o->n, "%s %s: %zu live entries for %zu keys", what, tag, live, o->n);
  T_CHECK(o->tsize == 0 || 2 * o->tused <= o->tsize, "%s %s: index more than half full: %zu of %zu", what, tag,
          o->tused, o->tsize);
  for (size_t s = 0; s < o->n; s++) {
    int64_t got = fuze__map_find(o, o->keys + s * o->kb);
    if (got != (int64_t)s) {
      T_CHECK(got == (int64_t)s, "%s %s: the key of slot %zu is found at %lld", what, tag, s, (long long)got);
      break;
    }
  }
}

/* 1: a steady size, inserts reusing deleted entries. */
static void churn(fuze_ctx *ctx, fuze_map *m, int me, uint64_t *rng) {
  static uint64_t keys[4 * NKEYS];
  size_t n = 0;
  uint64_t next = 0;
  unsigned char v[VB], got[VB];
  for (; n < 200; n++) {
    keys[n] = key_of(me, next++);
    val_of(keys[n], v);
    T_EQ_INT(fuze_map_put(m, &keys[n], v), FUZE_SUCCESS, "put");
  }
  index_check(m, "after 200 puts");
  for (int op = 0; op < 6000 && !t_failures; op++) {
    size_t r = t_below(rng, 3), i = t_below(rng, n);
    if (r == 0) { /* remove, then put a new key */
      T_EQ_INT(fuze_map_remove(m, &keys[i]), FUZE_SUCCESS, "remove");
      keys[i] = key_of(me, next++);
      val_of(keys[i], v);
      T_EQ_INT(fuze_map_put(m, &keys[i], v), FUZE_SUCCESS, "put new");
    } else if (r == 1) { /* re-put a removed key: its own deleted entry */
      T_EQ_INT(fuze_map_remove(m, &keys[i]), FUZE_SUCCESS, "remove");
      val_of(keys[i] ^ 1, v);
      T_EQ_INT(fuze_map_put(m, &keys[i], v), FUZE_SUCCESS, "put again");
      val_of(keys[i], v);
      T_EQ_INT(fuze_map_put(m, &keys[i], v), FUZE_SUCCESS, "update");
    } else {
      val_of(keys[i], v);
      T_EQ_INT(fuze_map_put(m, &keys[i], v), FUZE_SUCCESS, "update");
    }
    char tag[48];
    snprintf(tag, sizeof tag, "churn op %d", op);
    index_check(m, tag);
  }
  T_CHECK(fuze_map_size(m) == n, "%s: size %zu, expected %zu", what, fuze_map_size(m), n);
  for (size_t i = 0; i < n; i++) {
    val_of(keys[i], v);
    int rc = fuze_map_get(m, &keys[i], got);
    T_CHECK(rc == FUZE_SUCCESS && !memcmp(got, v, VB), "%s: churn key %zu: %s", what, i, fuze_err_name(rc));
  }
  T_EQ_INT(fuze_flush(ctx), FUZE_SUCCESS, "flush");
  T_EQ_INT(fuze_verify(ctx, NULL), FUZE_SUCCESS, "verify after churn");
}

typedef struct walk {
  uint64_t keys[NKEYS];
  size_t n, bad;
} walk;

static int walk_fn(const void *key, const void *val, void *arg) {
  walk *w = arg;
  uint64_t k;
  unsigned char v[VB];
  memcpy(&k, key, 8);
  val_of(k, v);
  if (w->n >= NKEYS || k != w->keys[w->n] || memcmp(v, val, VB)) w->bad++;
  w->n++;
  return 0;
}

/* 2: rollback over 1000 removes and 40 puts. */
static void rollback(fuze_ctx *ctx, fuze_map *m, int me, int np) {
  static walk w;
  unsigned char v[VB], got[VB];
  for (size_t i = 0; i < NKEYS; i++) {
    w.keys[i] = key_of(me, 1000000 + i);
    val_of(w.keys[i], v);
    T_EQ_INT(fuze_map_put(m, &w.keys[i], v), FUZE_SUCCESS, "put");
  }
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint");
  for (size_t i = 0; i < NKEYS; i++) T_EQ_INT(fuze_map_remove(m, &w.keys[i]), FUZE_SUCCESS, "remove");
  for (uint64_t i = 0; i < 40; i++) {
    uint64_t k = key_of(me, 2000000 + i);
    val_of(k, v);
    T_EQ_INT(fuze_map_put(m, &k, v), FUZE_SUCCESS, "put new");
  }
  index_check(m, "before the wipe");
  int victim = np - 1;
  T_EQ_INT(fuze_inject(ctx, &victim, 1), FUZE_SUCCESS, "inject");
  int rc = fuze_recover(ctx);
  T_CHECK(rc == FUZE_RECOVERED, "%s: fuze_recover returned %s: %s", what, fuze_err_name(rc), fuze_last_error(ctx));
  index_check(m, "after the rollback");
  T_CHECK(fuze_map_size(m) == NKEYS, "%s: %zu pairs after the rollback, expected %d", what, fuze_map_size(m), NKEYS);
  w.n = w.bad = 0;
  T_EQ_INT(fuze_map_foreach(m, walk_fn, &w), FUZE_SUCCESS, "foreach");
  T_CHECK(w.n == NKEYS && !w.bad, "%s: rollback: %zu pairs walked, %zu out of slot order or wrong", what, w.n, w.bad);
  size_t missing = 0;
  for (size_t i = 0; i < NKEYS; i++) {
    val_of(w.keys[i], v);
    missing += fuze_map_get(m, &w.keys[i], got) != FUZE_SUCCESS || memcmp(got, v, VB);
  }
  T_CHECK(missing == 0, "%s: rollback: %zu of %d committed keys not found or wrong", what, missing, NKEYS);
  T_EQ_INT(fuze_verify(ctx, NULL), FUZE_SUCCESS, "verify after the rollback");
}

/* 3: batches spanning more than 2^16 slots in a mixed order. */
#define WIDE 70000
static void wide(fuze_ctx *ctx, fuze_map *m, int me) {
  unsigned char v[VB], got[VB];
  for (uint64_t i = 0; i < WIDE; i++) {
    uint64_t k = key_of(me, 3000000 + i);
    val_of(k, v);
    T_EQ_INT(fuze_map_put(m, &k, v), FUZE_SUCCESS, "put");
  }
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint");
  for (uint64_t i = 0; i < WIDE / 2; i++) {
    uint64_t k = key_of(me, 3000000 + i);
    T_EQ_INT(fuze_map_remove(m, &k), FUZE_SUCCESS, "remove");
  }
  T_EQ_INT(fuze_flush(ctx), FUZE_SUCCESS, "flush");
  fuze_verify_report rep;
  int rc = fuze_verify(ctx, &rep);
  T_CHECK(rc == FUZE_SUCCESS && rep.mismatches == 0, "%s: fuze_verify after %d removes returned %s with "
          "%llu mismatching range(s)", what, WIDE / 2, fuze_err_name(rc), (unsigned long long)rep.mismatches);
  T_CHECK(fuze_map_size(m) == WIDE / 2, "%s: %zu pairs, expected %d", what, fuze_map_size(m), WIDE / 2);
  size_t bad = 0;
  for (uint64_t i = 0; i < WIDE; i++) {
    uint64_t k = key_of(me, 3000000 + i);
    val_of(k, v);
    rc = fuze_map_get(m, &k, got);
    bad += i < WIDE / 2 ? rc != FUZE_ERR_NOT_FOUND : rc != FUZE_SUCCESS || memcmp(got, v, VB);
  }
  T_CHECK(bad == 0, "%s: %zu of %d keys found when removed, or missing or wrong when kept", what, bad, WIDE);
  index_check(m, "after the wide batches");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int me, np;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  for (int batch = 0; batch < 2; batch++) {
    char cfg[96];
    snprintf(cfg, sizeof cfg, "faults=1;domain=rank;recovery=rollback;sync=%s", batch ? "batch" : "op");
    snprintf(what, sizeof what, "%s", cfg);
    fuze_ctx *ctx;
    MPI_Comm app;
    int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
    T_EQ_INT(rc, FUZE_SUCCESS, cfg);
    if (rc) break;
    uint64_t rng = 4242u + (uint64_t)me;
    fuze_map *m1, *m2;
    T_EQ_INT(fuze_map_create(ctx, "churn", 8, VB, &m1), FUZE_SUCCESS, "map_create churn");
    T_EQ_INT(fuze_map_create(ctx, "rollback", 8, VB, &m2), FUZE_SUCCESS, "map_create rollback");
    churn(ctx, m1, me, &rng);
    snprintf(what, sizeof what, "%s rollback", cfg);
    rollback(ctx, m2, me, np);
    if (batch) {
      fuze_map *m3;
      T_EQ_INT(fuze_map_create(ctx, "wide", 8, VB, &m3), FUZE_SUCCESS, "map_create wide");
      snprintf(what, sizeof what, "%s wide", cfg);
      wide(ctx, m3, me);
    }
    fuze_finalize(&ctx);
    MPI_Comm_free(&app);
  }
  int total = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("test_map_index: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
