/* code=byzantine end to end for fused stacks and maps.
 * Usage: test_byzantine_fused F SEED KIND [inject]   (KIND: stack | map; domain=rank)
 *
 * Without `inject`, one program loops over scenarios on one structure:
 *   - exhaustive over every placement of 1..f faulty objects (f = 3: every
 *     placement of 1 or 2, every 7th of 3) among block 0's unfused copies
 *     (primaries' committed states, replicas) and fused backups; the fault
 *     cycles through value faults (random bytes, zeroed, an internally
 *     consistent but different copy: every byte XOR 0xA5) and index faults
 *     (random bytes in seq/keys, a well-formed empty state, seq/keys XOR 0xA5,
 *     the last element dropped; for a backup: its header and key replicas).
 *     The next checkpoint returns FUZE_RECOVERED, every rank's (count, seq,
 *     keys, values) is bit-exact against the model this test keeps, every map
 *     key is found, every hosted region's working and committed halves agree,
 *     and the checkpoint after it is clean (FUZE_SUCCESS);
 *   - the same for the last block;
 *   - a wipe of f ranks of block 0 + fuze_recover (rollback): exact, then a
 *     corruption after it is still corrected (the replicas were rebuilt);
 *   - f + 1 liars: the f replicas of a primary colluding (XOR 0xA5) plus a
 *     backup's nodes: FUZE_ERR_CORRUPT, every primary unchanged; then the
 *     primary and its f replicas with random bytes: FUZE_ERR_CORRUPT at that
 *     checkpoint and again at the next one (nothing was "corrected").
 * With `inject`, the config corrupts rank 0's replica (target=replica) after
 * checkpoint 3 and rank 1's primary (target=primary) after checkpoint 5: both
 * checkpoints return FUZE_RECOVERED with the exact state.
 * Test hooks reach the library's internals through src/ headers. */
#include "common.h"

#include "core/byz.h"
#include "proto/byzantine.h"
#include "data/fused.h"

#define NKEYS 48

typedef struct model {
  size_t n;
  uint64_t seq;
  unsigned char keys[4096 * 8], vals[4096 * 16];
} model;

typedef struct tb {
  int np, me, f, map;
  fuze_ctx *ctx;
  MPI_Comm app;
  fuze_stack *st;
  fuze_map *mp;
  fuze_fobj *o;
  size_t kb, nb;
  model cur, com;
  uint64_t rng;
  int *place;
} tb;

static void rand_val(tb *w, unsigned char *v) {
  for (size_t i = 0; i < w->nb; i++) v[i] = (unsigned char)(1 + t_below(&w->rng, 255));
}

static long model_find(const tb *w, const unsigned char *key) {
  for (size_t s = 0; s < w->cur.n; s++)
    if (!memcmp(w->cur.keys + s * w->kb, key, w->kb)) return (long)s;
  return -1;
}

/* One operation on the structure and on the model (the same slot order). */
static void op(tb *w, int grow) {
  model *m = &w->cur;
  unsigned char key[8], val[16];
  rand_val(w, val);
  int rm = !grow && m->n > 4 && t_below(&w->rng, 10) < 4;
  if (!w->map) {
    if (rm) {
      unsigned char got[16];
      T_EQ_INT(fuze_stack_pop(w->st, got), FUZE_SUCCESS, "pop");
      T_CHECK(!memcmp(got, m->vals + (m->n - 1) * w->nb, w->nb), "popped value");
      m->n--;
    } else {
      T_EQ_INT(fuze_stack_push(w->st, val), FUZE_SUCCESS, "push");
      memcpy(m->vals + m->n * w->nb, val, w->nb);
      m->n++;
    }
    m->seq++;
    return;
  }
  uint64_t kv = (uint64_t)w->me * 1000 + t_below(&w->rng, NKEYS);
  memcpy(key, &kv, 8);
  long s = model_find(w, key);
  if (rm && s >= 0) {
    T_EQ_INT(fuze_map_remove(w->mp, key), FUZE_SUCCESS, "remove");
    size_t last = m->n - 1;
    memcpy(m->keys + (size_t)s * 8, m->keys + last * 8, 8);
    memcpy(m->vals + (size_t)s * w->nb, m->vals + last * w->nb, w->nb);
    m->n--;
  } else {
    T_EQ_INT(fuze_map_put(w->mp, key, val), FUZE_SUCCESS, "put");
    if (s < 0) {
      s = (long)m->n++;
      memcpy(m->keys + (size_t)s * 8, key, 8);
    }
    memcpy(m->vals + (size_t)s * w->nb, val, w->nb);
  }
  m->seq++;
}

static void mutate(tb *w, int nops) {
  for (int q = 0; q < nops; q++) op(w, 0);
}

/* Bit-exact against the model on every rank, and every hosted region's
 * working and committed halves agree. */
static int exact_h(tb *w, const model *ref, int halves) {
  const fuze_fobj *o = w->o;
  int ok = o->n == ref->n && o->seq == ref->seq && !memcmp(o->vals, ref->vals, ref->n * w->nb);
  if (w->map && ok) ok = !memcmp(o->keys, ref->keys, ref->n * 8);
  for (size_t s = 0; w->map && ok && s < ref->n; s++) {
    unsigned char v[16];
    ok = fuze_map_get(w->mp, ref->keys + s * 8, v) == FUZE_SUCCESS && !memcmp(v, ref->vals + s * w->nb, w->nb);
  }
  if (!w->map && ok && ref->n) {
    unsigned char v[16];
    ok = fuze_stack_peek(w->st, v) == FUZE_SUCCESS && !memcmp(v, ref->vals + (ref->n - 1) * w->nb, w->nb);
  }
  if (!ok)
    fprintf(stderr, "rank %d: state n=%zu seq=%llu, model n=%zu seq=%llu\n", w->me, o->n,
            (unsigned long long)o->seq, ref->n, (unsigned long long)ref->seq);
  for (int h = 0; halves && h < o->nhosted; h++) {
    const unsigned char *r = o->winbase + o->hosted[h].off;
    if (memcmp(r, r + o->hosted[h].fused, o->hosted[h].fused)) {
      fprintf(stderr, "rank %d: region %d: working and committed halves differ\n", w->me, h);
      ok = 0;
    }
  }
  int all;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

static int exact(tb *w, const model *ref) { return exact_h(w, ref, 1); }

static int nobj(const tb *w, int b) {
  const fuze_plan *p = &w->ctx->plan;
  return (p->block_start[b + 1] - p->block_start[b]) * (w->f + 1) + w->f;
}

/* Fault kinds: 0..2 values (random, zero, alt), 3..6 index (random, zero,
 * alt, count). */
#define NKINDS 7
static const char *kind_name[NKINDS] = {"val-random", "val-zero", "val-alt", "idx-random",
                                        "idx-zero", "idx-alt", "idx-count"};
static const int idx_mode[4] = {FUZE_BYZ_ARM_RANDOM, FUZE_BYZ_ARM_ZERO, FUZE_BYZ_ARM_ALT,
                                FUZE_BYZ_ARM_COUNT};

/* Arm object o of block b on its holder (every rank calls this). */
static void arm(tb *w, int b, int o, int kind, uint64_t seed) {
  const fuze_plan *p = &w->ctx->plan;
  int k = p->block_start[b + 1] - p->block_start[b], f1 = w->f + 1, holder, what, arg, j = 0;
  int mode = kind < 3 ? kind : idx_mode[kind - 3];
  if (o < k * f1) {
    int r = p->members[p->block_start[b] + o / f1], c = o % f1;
    holder = c ? w->place[r * w->f + c - 1] : r;
    what = kind < 3 ? (c ? FUZE_BYZ_ARM_REPLICA : FUZE_BYZ_ARM_PRIMARY)
                    : (c ? FUZE_BYZ_ARM_REPLICA_INDEX : FUZE_BYZ_ARM_PRIMARY_INDEX);
    arg = r;
  } else {
    holder = p->hosts[b * w->f + o - k * f1];
    what = kind < 3 ? FUZE_BYZ_ARM_PARITY : FUZE_BYZ_ARM_BACKUP_INDEX;
    arg = b;
    j = o - k * f1;
  }
  if (holder != w->me) return;
  uint64_t s = seed;
  size_t off = t_below(&s, w->map ? 24 : 8), cnt = 1 + t_below(&s, 8);
  T_CHECK(fuze__byz_arm(w->ctx, w->o->name, what, arg, j, mode, off, cnt, seed) == 0, "arm obj %d", o);
}

static void ckpt_ok(tb *w, const char *what) {
  int rc = fuze_checkpoint(w->ctx);
  T_CHECK(rc == FUZE_SUCCESS, "%s: checkpoint returned %d (%s): %s", what, rc, fuze_err_name(rc),
          fuze_last_error(w->ctx));
  w->com = w->cur;
}

/* Corrupt objs of block b with kinds, checkpoint, expect rc. */
static void scenario(tb *w, int b, const int *objs, const int *kinds, int n, int expect) {
  char what[512];
  size_t len = (size_t)snprintf(what, sizeof what, "%s f=%d block %d:", w->map ? "map" : "stack", w->f, b);
  for (int s = 0; s < n && len < sizeof what - 32; s++)
    len += (size_t)snprintf(what + len, sizeof what - len, " obj%d/%s", objs[s], kind_name[kinds[s]]);
  mutate(w, 12);
  ckpt_ok(w, "clean checkpoint before the scenario");
  for (int s = 0; s < n; s++)
    arm(w, b, objs[s], kinds[s], 1000u * (uint64_t)objs[s] + 31u * (uint64_t)kinds[s] + 17u * (uint64_t)b);
  int rc = fuze_checkpoint(w->ctx);
  T_CHECK(rc == expect, "%s: checkpoint returned %d (%s), expected %d: %s", what, rc,
          fuze_err_name(rc), expect, fuze_last_error(w->ctx));
  if (expect == FUZE_RECOVERED) {
    T_CHECK(exact(w, &w->com), "%s: state differs after correction", what);
    rc = fuze_checkpoint(w->ctx);
    T_CHECK(rc == FUZE_SUCCESS, "%s: checkpoint after correction returned %d (%s)", what, rc,
            fuze_last_error(w->ctx));
  }
}

static void exhaustive(tb *w, int b) {
  int m = nobj(w, b), objs[4] = {0}, kinds[4], n = 1, count = 0, tried = 0;
  do {
    if (n < 3 || tried % 7 == 0) {
      for (int s = 0; s < n; s++) kinds[s] = (count + 3 * s) % NKINDS;
      scenario(w, b, objs, kinds, n, FUZE_RECOVERED);
      count++;
    }
    tried++;
  } while (t_next_subset(objs, &n, m, w->f));
  /* Every fault kind on every object alone. */
  for (int o = 0; o < m; o++)
    for (int kd = 0; kd < NKINDS; kd++) {
      scenario(w, b, &o, &kd, 1, FUZE_RECOVERED);
      count++;
    }
  if (w->me == 0) printf("%s block %d: %d placements of <= %d faults corrected\n", w->map ? "map" : "stack", b, count, w->f);
}

static void run_inject(tb *w) {
  /* Checkpoint 3: rank 0's replica; checkpoint 5: rank 1's primary. */
  ckpt_ok(w, "checkpoint 1");
  mutate(w, 10);
  ckpt_ok(w, "checkpoint 2");
  mutate(w, 10);
  w->com = w->cur;
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_RECOVERED, "checkpoint 3 (replica corrupted by the config)");
  T_CHECK(exact(w, &w->com), "state after the replica injection");
  mutate(w, 10);
  ckpt_ok(w, "checkpoint 4");
  mutate(w, 10);
  w->com = w->cur;
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_RECOVERED, "checkpoint 5 (primary corrupted by the config)");
  T_CHECK(exact(w, &w->com), "state after the primary injection");
  ckpt_ok(w, "checkpoint 6");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  tb *w = calloc(1, sizeof *w);
  w->f = argc > 1 ? atoi(argv[1]) : 1;
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  w->map = argc > 3 && !strcmp(argv[3], "map");
  int inject = argc > 4 && !strcmp(argv[4], "inject");
  MPI_Comm_size(MPI_COMM_WORLD, &w->np);
  MPI_Comm_rank(MPI_COMM_WORLD, &w->me);
  w->rng = seed * 1000 + (uint64_t)w->me;
  const char *name = w->map ? "m" : "s";
  char cfg[400];
  int len = snprintf(cfg, sizeof cfg, "faults=%d;domain=rank;code=byzantine;capacity=8", w->f);
  if (inject)
    snprintf(cfg + len, sizeof cfg - (size_t)len,
             ";inject=corrupt:rank=0:struct=%s:at=checkpoint:3:target=replica:bytes=6/"
             "corrupt:rank=1:struct=%s:at=checkpoint:5:target=primary:bytes=3", name, name);
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &w->ctx, &w->app);
  if (rc) {
    fprintf(stderr, "fuze_init: %s\n", fuze_last_error(NULL));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (w->map) {
    w->kb = 8, w->nb = 16;
    T_EQ_INT(fuze_map_create(w->ctx, name, 8, 16, &w->mp), FUZE_SUCCESS, "map_create");
    w->o = &w->mp->o;
  } else {
    w->nb = 12;
    T_EQ_INT(fuze_stack_create(w->ctx, name, 12, &w->st), FUZE_SUCCESS, "stack_create");
    w->o = &w->st->o;
  }
  /* Unequal sizes: members of a block are zero padded in the nodes. */
  for (int q = 0; q < 6 + 3 * w->me; q++) op(w, 1);
  const fuze_plan *p = &w->ctx->plan;
  w->place = malloc(sizeof(int) * (size_t)w->np * (size_t)w->f);
  fuze__byz_place(p->domain, w->np, p->ndomains, w->f, w->place);
  if (inject) {
    run_inject(w);
    goto done;
  }
  ckpt_ok(w, "first checkpoint");
  /* 1. Every placement of <= f faults in block 0, and in the last block. */
  exhaustive(w, 0);
  if (p->nblocks > 1) {
    int last = p->nblocks - 1, objs[1] = {0}, kinds[1] = {5};
    scenario(w, last, objs, kinds, 1, FUZE_RECOVERED);
    objs[0] = nobj(w, last) - 1;
    kinds[0] = 3;
    scenario(w, last, objs, kinds, 1, FUZE_RECOVERED);
  }
  /* 2. Wipe f ranks of block 0, recover (rollback), then corrupt again. */
  mutate(w, 12);
  ckpt_ok(w, "checkpoint before the wipe");
  mutate(w, 12); /* lost by the rollback */
  {
    int victims[4], k0 = p->block_start[1] - p->block_start[0];
    int nv = w->f <= k0 ? w->f : k0;
    for (int v = 0; v < nv; v++) victims[v] = p->members[p->block_start[0] + v];
    T_EQ_INT(fuze_inject(w->ctx, victims, nv), FUZE_SUCCESS, "inject");
    T_EQ_INT(fuze_recover(w->ctx), FUZE_RECOVERED, "recovery after the wipe");
    w->cur = w->com;
    T_CHECK(exact(w, &w->com), "state after the wipe differs from the last epoch");
    int objs[2] = {0, 1}, kinds[2] = {2, 6};
    scenario(w, 0, objs, kinds, 1, FUZE_RECOVERED);
    scenario(w, 0, objs + 1, kinds + 1, 1, FUZE_RECOVERED);
    mutate(w, 8);
    ckpt_ok(w, "checkpoint after the wipe scenarios");
    T_CHECK(exact(w, &w->com), "state after the wipe scenarios");
  }
  /* 3a. f + 1 liars: primary 0's f replicas collude (values XOR 0xA5) and
   * backup 0's nodes are wrong: reported, nothing modified, twice. */
  {
    int k0 = p->block_start[1] - p->block_start[0], f1 = w->f + 1;
    mutate(w, 12);
    ckpt_ok(w, "checkpoint before the liars");
    for (int c = 1; c <= w->f; c++) arm(w, 0, c, 2, 55u + (uint64_t)c);
    arm(w, 0, k0 * f1, 1, 99u);
    rc = fuze_checkpoint(w->ctx);
    T_EQ_INT(rc, FUZE_ERR_CORRUPT, "f+1 liars (colluding replicas + a backup)");
    T_CHECK(strstr(fuze_last_error(w->ctx), "block 0 is uncorrectable") != NULL, "message: %s",
            fuze_last_error(w->ctx));
    T_CHECK(exact_h(w, &w->com, 0), "primaries changed by an uncorrectable block");
    rc = fuze_checkpoint(w->ctx);
    T_EQ_INT(rc, FUZE_ERR_CORRUPT, "f+1 liars, again at the next checkpoint");
    T_CHECK(exact_h(w, &w->com, 0), "primaries changed by an uncorrectable block (again)");
    if (w->me == 0) printf("f+1 liars (a): %s\n", fuze_last_error(w->ctx));
  }
  /* 3b. The primary and its f replicas with random values: never corrected. */
  {
    for (int c = 0; c <= w->f; c++) arm(w, 0, c + (w->f + 1), 0, 77u + (uint64_t)c);
    rc = fuze_checkpoint(w->ctx);
    T_EQ_INT(rc, FUZE_ERR_CORRUPT, "f+1 liars (primary 1 and its replicas)");
    rc = fuze_checkpoint(w->ctx);
    T_EQ_INT(rc, FUZE_ERR_CORRUPT, "f+1 liars (b), again at the next checkpoint");
    if (w->me == 0) printf("f+1 liars (b): %s\n", fuze_last_error(w->ctx));
  }
done:;
  int fails = t_total(MPI_COMM_WORLD);
  fuze_finalize(&w->ctx);
  MPI_Comm_free(&w->app);
  free(w->place);
  if (w->me == 0)
    printf("test_byzantine_fused %s f=%d np=%d%s: %s\n", w->map ? "map" : "stack", w->f, w->np,
           inject ? " inject" : "", fails ? "FAILED" : "passed");
  free(w);
  MPI_Finalize();
  return fails ? 1 : 0;
}
