/* Fused arrays end to end: for every valid (spares, faults, code) at this
 * rank count, random per-rank arrays of several types, epochs of random
 * partial changes, then every failure set of <= f domains (exhaustive up to
 * 6 ranks, a seeded sample above) at every injection phase of a checkpoint.
 * After each recovery every rank's buffers must equal the reference the test
 * keeps itself, bit for bit. Then a failure beyond f must be refused with
 * FUZE_ERR_UNRECOVERABLE and leave the survivors' data untouched. */
#include "common.h"

#include "core/plan.h"

#define NARR 4

typedef struct tarr {
  MPI_Datatype type;
  size_t elem, count;
  unsigned char *buf, *expect, *pending;
  fuze_array *h;
} tarr;

static const char *const phases[] = {"before", "partial", "sent", "promoted", "after"};

static void make_arrays(tarr *t, uint64_t *rng) {
  MPI_Datatype types[NARR] = {MPI_DOUBLE, MPI_INT, MPI_CHAR, MPI_UINT16_T};
  size_t elems[NARR] = {8, 4, 1, 2}, maxc[NARR] = {700, 900, 3001, 5};
  for (int x = 0; x < NARR; x++) {
    t[x].type = types[x];
    t[x].elem = elems[x];
    /* Zero-sized arrays on some ranks, odd sizes on others. */
    t[x].count = t_below(rng, 4) == 0 ? 0 : 1 + t_below(rng, maxc[x]);
    size_t n = t[x].count * t[x].elem + 1;
    t[x].buf = malloc(n);
    t[x].expect = malloc(n);
    t[x].pending = malloc(n);
    t_fill(rng, t[x].buf, n);
    /* chunk=256: one chunk all zero, one zero but for its last byte, one
     * but for its first (fuze_protect's first send compares each chunk with
     * a zero committed copy: every nonzero byte must reach the backups). */
    if (n > 3 * 256 + 1) {
      memset(t[x].buf, 0, 3 * 256);
      t[x].buf[2 * 256 - 1] = 0x5a;
      t[x].buf[2 * 256] = 0xa5;
    }
    memcpy(t[x].expect, t[x].buf, n);
  }
}

static void free_arrays(tarr *t) {
  for (int x = 0; x < NARR; x++) {
    free(t[x].buf);
    free(t[x].expect);
    free(t[x].pending);
  }
}

/* Random partial change: nothing, a few ranges, or everything. */
static void mutate(tarr *t, uint64_t *rng) {
  for (int x = 0; x < NARR; x++) {
    size_t n = t[x].count * t[x].elem;
    if (!n) continue;
    int mode = (int)t_below(rng, 4);
    if (mode == 0) continue;
    if (mode == 3) {
      t_fill(rng, t[x].buf, n);
    } else {
      for (int k = 0; k < 3; k++) {
        size_t off = t_below(rng, n), len = 1 + t_below(rng, n - off);
        t_fill(rng, t[x].buf + off, len < 300 ? len : 300);
      }
    }
  }
}

static void snapshot(tarr *t, int to_expect) {
  for (int x = 0; x < NARR; x++) {
    size_t n = t[x].count * t[x].elem;
    memcpy(to_expect ? t[x].expect : t[x].pending, t[x].buf, n);
  }
}

static int compare(const tarr *t, int use_pending, const char *what) {
  int bad = 0;
  for (int x = 0; x < NARR; x++) {
    size_t n = t[x].count * t[x].elem;
    const unsigned char *ref = use_pending ? t[x].pending : t[x].expect;
    for (size_t i = 0; i < n; i++)
      if (t[x].buf[i] != ref[i]) {
        T_CHECK(0, "%s: array %d byte %zu of %zu: got 0x%02x, expected 0x%02x", what, x, i, n,
                t[x].buf[i], ref[i]);
        bad = 1;
        break;
      }
  }
  return bad;
}

typedef struct scen {
  int np, f, spares, k; /* k: ranks per failure domain (domain=K); 1 = domain=rank */
  const char *code;
  uint64_t seed;
} scen;

static int protect_all(fuze_ctx *ctx, tarr *t) {
  char name[16];
  for (int x = 0; x < NARR; x++) {
    snprintf(name, sizeof name, "arr%d", x);
    int rc = fuze_protect(ctx, name, t[x].count ? t[x].buf : NULL, t[x].count, t[x].type, &t[x].h);
    T_EQ_INT(rc, FUZE_SUCCESS, "fuze_protect");
    if (rc) return rc;
  }
  return 0;
}

/* One scenario: change, arm the wipe, checkpoint, verify. */
static void one_failure(fuze_ctx *ctx, tarr *t, uint64_t *rng, const int *set, int len,
                        int phase, const scen *s) {
  mutate(t, rng);
  snapshot(t, 0);
  int ranks[64], n = 0; /* a failed domain loses all of its ranks */
  for (int d = 0; d < len; d++)
    for (int r = set[d] * s->k; r < (set[d] + 1) * s->k; r++) ranks[n++] = r;
  int rc = fuze_inject_at(ctx, ranks, n, phases[phase]);
  T_EQ_INT(rc, FUZE_SUCCESS, "fuze_inject_at");
  rc = fuze_checkpoint(ctx);
  char what[160];
  snprintf(what, sizeof what, "np=%d k=%d f=%d spares=%d code=%s seed=%llu domains[0]=%d len=%d phase=%s",
           s->np, s->k, s->f, s->spares, s->code, (unsigned long long)s->seed, set[0], len, phases[phase]);
  T_CHECK(rc == FUZE_RECOVERED, "%s: checkpoint returned %s: %s", what, fuze_err_name(rc),
          fuze_last_error(ctx));
  /* Before the commit decision the old epoch survives; after it, the new. */
  int decided = phase >= 3;
  compare(t, decided, what);
  snapshot(t, 1);
}

static void beyond_f(fuze_ctx *ctx, tarr *t, uint64_t *rng, const scen *s) {
  int domain[64];
  for (int r = 0; r < s->np; r++) domain[r] = r / s->k;
  fuze_plan p;
  char err[256];
  fuze_plan_input in = {s->np, domain, s->np / s->k, s->spares, s->f, strcmp(s->code, "replicate") ? 0 : 1};
  if (fuze__plan_build(&in, &p, err, sizeof err)) {
    T_CHECK(0, "plan: %s", err);
    return;
  }
  /* f + 1 members of block 0: its primaries first, then its hosts. */
  int set[64], n = 0, k = p.block_start[1] - p.block_start[0];
  for (int i = 0; i < k && n <= s->f; i++) set[n++] = p.members[i];
  for (int j = 0; j < s->f && n <= s->f; j++) set[n++] = p.hosts[j];
  mutate(t, rng);
  snapshot(t, 0);
  T_EQ_INT(fuze_inject(ctx, set, n), FUZE_SUCCESS, "fuze_inject");
  int me;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  int victim = 0;
  for (int v = 0; v < n; v++) victim |= set[v] == me;
  int rc = fuze_checkpoint(ctx);
  T_EQ_INT(rc, FUZE_ERR_UNRECOVERABLE, "checkpoint with f+1 lost");
  const char *msg = fuze_last_error(ctx);
  T_CHECK(strstr(msg, "unrecoverable: block 0 lost") != NULL, "message: %s", msg);
  if (!victim) compare(t, 1, "survivor after refused recovery");
  fuze__plan_free(&p);
}

/* Only changed chunks move: a checkpoint with nothing changed sends no
 * parity byte; then re-protecting an array with another size re-encodes it
 * and a failure right after restores the new registration exactly. */
static void no_change_and_resize(fuze_ctx *ctx, tarr *t, uint64_t *rng, const scen *s) {
  fuze_stats a, b;
  T_EQ_INT(fuze_get_stats(ctx, &a), FUZE_SUCCESS, "stats");
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint without changes");
  T_EQ_INT(fuze_get_stats(ctx, &b), FUZE_SUCCESS, "stats");
  T_CHECK(b.sent_bytes == a.sent_bytes, "nothing changed but %llu parity bytes were sent",
          (unsigned long long)(b.sent_bytes - a.sent_bytes));
  T_CHECK(b.epoch == a.epoch + 1, "epoch %llu after %llu", (unsigned long long)b.epoch,
          (unsigned long long)a.epoch);
  tarr *x = &t[1];
  size_t count = 1 + t_below(rng, 2000);
  unsigned char *nb = malloc(count * x->elem + 1);
  t_fill(rng, nb, count * x->elem);
  free(x->buf);
  x->buf = nb;
  x->count = count;
  x->expect = realloc(x->expect, count * x->elem + 1);
  x->pending = realloc(x->pending, count * x->elem + 1);
  T_EQ_INT(fuze_protect(ctx, "arr1", x->buf, x->count, x->type, &x->h), FUZE_SUCCESS, "re-protect");
  snapshot(t, 1);
  int victim = (int)(s->seed % (uint64_t)(s->np - s->spares * s->k));
  T_EQ_INT(fuze_inject(ctx, &victim, 1), FUZE_SUCCESS, "inject after re-protect");
  T_EQ_INT(fuze_recover(ctx), FUZE_RECOVERED, "recover after re-protect");
  compare(t, 0, "after re-protect and recovery");
}

static void run(scen *s) {
  char cfg[200];
  snprintf(cfg, sizeof cfg, "faults=%d;spares=%d;domain=%d;code=%s;chunk=256", s->f, s->spares,
           s->k, s->code);
  int ndom = s->np / s->k;
  fuze_ctx *ctx;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  if (ndom <= s->f || s->spares >= ndom) {
    T_EQ_INT(rc, FUZE_ERR_CONFIG, cfg);
    return;
  }
  T_EQ_INT(rc, FUZE_SUCCESS, cfg);
  if (rc || app == MPI_COMM_NULL) return;
  int me;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  uint64_t rng = s->seed * 1000003u + (uint64_t)me;
  tarr t[NARR];
  make_arrays(t, &rng);
  if (protect_all(ctx, t) == 0) {
    for (int e = 0; e < 3; e++) {
      mutate(t, &rng);
      T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "failure-free checkpoint");
      snapshot(t, 1);
    }
    no_change_and_resize(ctx, t, &rng, s);
    int set[64], len = 1;
    set[0] = 0;
    int exhaustive = ndom <= 6, count = 0;
    uint64_t pick = s->seed; /* same on every rank: the sample must agree */
    do {
      for (int ph = 0; ph < 5; ph++) {
        if (!exhaustive && t_below(&pick, 6) != 0) continue;
        one_failure(ctx, t, &rng, set, len, ph, s);
        count++;
      }
    } while (t_next_subset(set, &len, ndom, s->f));
    beyond_f(ctx, t, &rng, s);
    if (me == 0) printf("  %s: %d failure scenarios\n", cfg, count);
  }
  fuze_finalize(&ctx);
  MPI_Comm_free(&app);
  free_arrays(t);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int np, me;
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 12345;
  int k = argc > 2 ? atoi(argv[2]) : 1; /* ranks per emulated node */
  if (k < 1 || np % k) k = 1;
  const char *codes[] = {"rs", "replicate"};
  if (me == 0) printf("test_arrays: np=%d ranks per domain=%d seed=%llu\n", np, k, (unsigned long long)seed);
  for (int c = 0; c < 2; c++)
    for (int spares = 0; spares <= 2; spares++)
      for (int f = 1; f <= 3; f++) {
        scen s = {np, f, spares, k, codes[c], seed + (uint64_t)(100 * c + 10 * spares + f)};
        run(&s);
      }
  int total = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("test_arrays: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
