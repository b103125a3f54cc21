#define _POSIX_C_SOURCE 200809L
/* Allocation failures inside fuze_protect, fuze_stack_create and
 * fuze_map_create (issue 15): FUZE_DEBUG_NOMEM=<site>:<rank> makes one
 * allocation fail on one rank. Every rank must return FUZE_ERR_NOMEM with
 * the finder named, no registration may remain (the protected bytes do not
 * count it), and afterwards the same name registers again, checkpoints, and
 * a wiped rank recovers bit-exact. Run with 3 ranks (and under ASan: the
 * half-made registration used to overflow the heap in the dirty scan). */
#include "common.h"

static int me, np;

static void agreed(int rc, int want, int finder, const char *text, const char *what) {
  T_EQ_INT(rc, want, what);
  int lo, hi;
  MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  T_CHECK(lo == hi, "%s: codes differ across ranks (%d..%d)", what, lo, hi);
  char head[128];
  if (me == finder) snprintf(head, sizeof head, "rank %d found: ", finder);
  else snprintf(head, sizeof head, "rank %d reports the error agreed from rank %d: ", me, finder);
  const char *msg = fuze_last_error(NULL);
  T_CHECK(!strncmp(msg, head, strlen(head)) && strstr(msg, text), "%s: message '%s' lacks '%s%s'",
          what, msg, head, text);
}

static fuze_ctx *start(const char *knob, MPI_Comm *app) {
  fuze_ctx *ctx = NULL;
  setenv("FUZE_DEBUG_NOMEM", knob, 1);
  int rc = fuze_init(MPI_COMM_WORLD, "domain=rank;faults=1", &ctx, app);
  unsetenv("FUZE_DEBUG_NOMEM");
  T_EQ_INT(rc, FUZE_SUCCESS, knob);
  return rc ? NULL : ctx;
}

static uint64_t protected_bytes(fuze_ctx *ctx) {
  fuze_stats st;
  T_EQ_INT(fuze_get_stats(ctx, &st), FUZE_SUCCESS, "stats");
  return st.protected_bytes;
}

/* Wipe `victim`, recover, and compare n bytes of every buffer with its copy. */
static void wipe_and_check(fuze_ctx *ctx, int victim, unsigned char **bufs, unsigned char **copies,
                           const size_t *n, int nbufs, const char *what) {
  T_EQ_INT(fuze_inject(ctx, &victim, 1), FUZE_SUCCESS, what);
  T_EQ_INT(fuze_recover(ctx), FUZE_RECOVERED, what);
  for (int i = 0; i < nbufs; i++)
    T_CHECK(!memcmp(bufs[i], copies[i], n[i]), "%s: buffer %d not bit-exact after recovery", what, i);
  T_EQ_INT(fuze_verify(ctx, NULL), FUZE_SUCCESS, what);
}

/* The first protect fails on `rank` (site protect or layout). */
static void array_case(const char *site, int rank, const char *text) {
  char knob[32], what[64];
  snprintf(knob, sizeof knob, "%s:%d", site, rank);
  snprintf(what, sizeof what, "array, FUZE_DEBUG_NOMEM=%s", knob);
  MPI_Comm app;
  fuze_ctx *ctx = start(knob, &app);
  if (!ctx) return;
  uint64_t seed = 77 + (uint64_t)me;
  size_t na = 1000 * sizeof(double), nb = (257 + (size_t)me) * sizeof(double);
  unsigned char *a = malloc(na), *b = malloc(nb), *ca = malloc(na), *cb = malloc(nb);
  t_fill(&seed, a, na);
  t_fill(&seed, b, nb);
  agreed(fuze_protect(ctx, "a", a, 1000, MPI_DOUBLE, NULL), FUZE_ERR_NOMEM, rank, text, what);
  T_CHECK(protected_bytes(ctx) == 0, "%s: the failed registration still counts", what);
  T_EQ_INT(fuze_protect(ctx, "b", b, 257 + (size_t)me, MPI_DOUBLE, NULL), FUZE_SUCCESS, what);
  T_CHECK(protected_bytes(ctx) == nb, "%s: protected %llu, expected %zu", what,
          (unsigned long long)protected_bytes(ctx), nb);
  t_fill(&seed, b, nb / 2);
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, what);
  /* The same name registers now, and both recover bit-exact. */
  T_EQ_INT(fuze_protect(ctx, "a", a, 1000, MPI_DOUBLE, NULL), FUZE_SUCCESS, what);
  t_fill(&seed, a + 100, 3000);
  t_fill(&seed, b, 64);
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, what);
  memcpy(ca, a, na);
  memcpy(cb, b, nb);
  unsigned char *bufs[2] = {a, b}, *copies[2] = {ca, cb};
  size_t n[2] = {na, nb};
  wipe_and_check(ctx, (rank + 1) % np, bufs, copies, n, 2, what);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, what);
  MPI_Comm_free(&app);
  free(a), free(b), free(ca), free(cb);
}

/* A re-registration (same name, a new buffer) fails at its second committed
 * copy on `rank`: the old registration is gone on every rank too, and the
 * name registers again and recovers bit-exact. */
static void reregister_case(int rank) {
  char knob[32], what[64];
  snprintf(knob, sizeof knob, "protect:%d:2", rank);
  snprintf(what, sizeof what, "re-registration, FUZE_DEBUG_NOMEM=%s", knob);
  MPI_Comm app;
  fuze_ctx *ctx = start(knob, &app);
  if (!ctx) return;
  uint64_t seed = 5 + (uint64_t)me;
  size_t n1 = 300 * sizeof(double), n2 = (500 + (size_t)me) * sizeof(double);
  unsigned char *a1 = malloc(n1), *a2 = malloc(n2), *c2 = malloc(n2);
  t_fill(&seed, a1, n1);
  t_fill(&seed, a2, n2);
  fuze_array *h = NULL;
  T_EQ_INT(fuze_protect(ctx, "a", a1, 300, MPI_DOUBLE, &h), FUZE_SUCCESS, what);
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, what);
  agreed(fuze_protect(ctx, "a", a2, 500 + (size_t)me, MPI_DOUBLE, &h), FUZE_ERR_NOMEM, rank,
         "fuze_protect('a'): out of memory", what);
  T_CHECK(h == NULL, "%s: handle not cleared", what);
  T_CHECK(protected_bytes(ctx) == 0, "%s: the dropped registration still counts %llu bytes", what,
          (unsigned long long)protected_bytes(ctx));
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, what);
  T_EQ_INT(fuze_protect(ctx, "a", a2, 500 + (size_t)me, MPI_DOUBLE, &h), FUZE_SUCCESS, what);
  t_fill(&seed, a2 + 8, 800);
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, what);
  memcpy(c2, a2, n2);
  unsigned char *bufs[1] = {a2}, *copies[1] = {c2};
  size_t n[1] = {n2};
  wipe_and_check(ctx, rank, bufs, copies, n, 1, what);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, what);
  MPI_Comm_free(&app);
  free(a1), free(a2), free(c2);
}

/* The first stack or map handle fails on `rank`. */
static void structure_case(int rank, int map_first) {
  char knob[32], what[64];
  snprintf(knob, sizeof knob, "create:%d", rank);
  snprintf(what, sizeof what, "%s, FUZE_DEBUG_NOMEM=%s", map_first ? "map" : "stack", knob);
  MPI_Comm app;
  fuze_ctx *ctx = start(knob, &app);
  if (!ctx) return;
  fuze_stack *s = (fuze_stack *)&s;
  fuze_map *m = (fuze_map *)&m;
  if (map_first) {
    agreed(fuze_map_create(ctx, "m", 8, 16, &m), FUZE_ERR_NOMEM, rank, "'m': out of memory", what);
    T_CHECK(m == NULL, "%s: handle not cleared", what);
  } else {
    agreed(fuze_stack_create(ctx, "s", 24, &s), FUZE_ERR_NOMEM, rank, "'s': out of memory", what);
    T_CHECK(s == NULL, "%s: handle not cleared", what);
  }
  T_EQ_INT(fuze_stack_create(ctx, "s", 24, &s), FUZE_SUCCESS, what);
  T_EQ_INT(fuze_map_create(ctx, "m", 8, 16, &m), FUZE_SUCCESS, what);
  uint64_t seed = 991 + (uint64_t)me;
  unsigned char e[24], v[16];
  for (int i = 0; i < 40 + me; i++) {
    t_fill(&seed, e, sizeof e);
    T_EQ_INT(fuze_stack_push(s, e), FUZE_SUCCESS, "push");
    uint64_t k = (uint64_t)i * 7 + 1;
    t_fill(&seed, v, sizeof v);
    T_EQ_INT(fuze_map_put(m, &k, v), FUZE_SUCCESS, "put");
  }
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, what);
  /* The committed contents, read back before the wipe. */
  size_t ns = fuze_stack_size(s), nm = fuze_map_size(m);
  unsigned char *cs = malloc(ns * 24), *cm = malloc(nm * 16);
  for (size_t i = 0; i < ns; i++) fuze_stack_at(s, i, cs + i * 24);
  for (size_t i = 0; i < nm; i++) {
    uint64_t k = (uint64_t)i * 7 + 1;
    T_EQ_INT(fuze_map_get(m, &k, cm + i * 16), FUZE_SUCCESS, "get");
  }
  int victim = (rank + 2) % np;
  T_EQ_INT(fuze_inject(ctx, &victim, 1), FUZE_SUCCESS, what);
  T_EQ_INT(fuze_recover(ctx), FUZE_RECOVERED, what);
  T_CHECK(fuze_stack_size(s) == ns && fuze_map_size(m) == nm, "%s: sizes %zu/%zu after recovery, "
          "expected %zu/%zu", what, fuze_stack_size(s), fuze_map_size(m), ns, nm);
  for (size_t i = 0; i < ns && i < fuze_stack_size(s); i++) {
    T_EQ_INT(fuze_stack_at(s, i, e), FUZE_SUCCESS, "at");
    T_CHECK(!memcmp(e, cs + i * 24, 24), "%s: stack element %zu differs after recovery", what, i);
  }
  for (size_t i = 0; i < nm; i++) {
    uint64_t k = (uint64_t)i * 7 + 1;
    T_EQ_INT(fuze_map_get(m, &k, v), FUZE_SUCCESS, "get after recovery");
    T_CHECK(!memcmp(v, cm + i * 16, 16), "%s: map value of key %llu differs after recovery", what,
            (unsigned long long)k);
  }
  T_EQ_INT(fuze_verify(ctx, NULL), FUZE_SUCCESS, what);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, what);
  MPI_Comm_free(&app);
  free(cs), free(cm);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  array_case("protect", 1, "fuze_protect('a'): out of memory (a committed copy of 8000 bytes)");
  array_case("layout", 2, "array 'a': out of memory");
  array_case("protect", 0, "fuze_protect('a'): out of memory (a committed copy of 8000 bytes)");
  reregister_case(1);
  structure_case(0, 0);
  structure_case(2, 1);
  /* A malformed knob is refused, not ignored. */
  setenv("FUZE_DEBUG_NOMEM", "everything", 1);
  fuze_ctx *ctx;
  MPI_Comm app;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, "domain=rank", &ctx, &app), FUZE_ERR_CONFIG, "bad knob");
  T_CHECK(strstr(fuze_last_error(NULL), "FUZE_DEBUG_NOMEM='everything': expected protect, layout or "
                 "create, optionally followed by :RANK with RANK in 0..2 and :N"), "knob msg: %s",
          fuze_last_error(NULL));
  unsetenv("FUZE_DEBUG_NOMEM");
  int total = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("test_nomem: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
