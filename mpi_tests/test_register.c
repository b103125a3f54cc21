/* Registrations (issue 15): the lifetime contract and fuze_unprotect.
 *
 *   unprotect: arrays "a", "b", "c" protected and committed; fuze_unprotect of
 *     an unknown name and of a map name gives FUZE_ERR_NOT_FOUND and the exact
 *     message; "a" moves like a std::vector that grows (unprotect, free the
 *     old buffer, protect a new one of another size and contents at another
 *     address under the same name); "c" is unprotected and freed for good
 *     (its parity regions are gone: parity_bytes as before it was protected);
 *     then for every victim rank: new contents, checkpoint, wipe, recovery,
 *     every rank's "a" and "b" bit-exact (ASan: nothing touches the freed
 *     buffers); unprotect twice gives FUZE_ERR_NOT_FOUND; with dir=, the
 *     persisted epoch after the unprotect no longer holds "c" and holds the
 *     new "a" (a second fuze_init restarts from it).
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <unistd.h>

static int me, np;
static uint64_t rng;

static double *fresh(size_t n, uint64_t tag) {
  double *p = malloc((n ? n : 1) * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = (double)(t_rng(&rng) >> 11) * 1e-9 + (double)tag;
  return p;
}

static void expect_msg(int rc, int want_rc, const char *want_msg, const char *what) {
  T_EQ_INT(rc, want_rc, what);
  T_CHECK(!strcmp(fuze_last_error(NULL), want_msg), "%s: message '%s', expected '%s'", what,
          fuze_last_error(NULL), want_msg);
}

/* An error agreed across ranks carries the reporting rank in front (its
 * wording is the agreement's): the text after it must be exactly this. */
static void expect_agreed(int rc, int want_rc, const char *want_msg, const char *what) {
  T_EQ_INT(rc, want_rc, what);
  const char *got = fuze_last_error(NULL);
  size_t g = strlen(got), w = strlen(want_msg);
  T_CHECK(g >= w && !strcmp(got + g - w, want_msg) && (g == w || got[g - w - 1] == ' '),
          "%s: message '%s', expected it to end with '%s'", what, got, want_msg);
}

static void unprotect_scenario(const char *dir) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "faults=2;domain=rank;dir=%s", dir);
  fuze_ctx *ctx = NULL;
  MPI_Comm comm;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &comm), FUZE_SUCCESS, "init");
  size_t na = 1000 + 37 * (size_t)me, nb = 500, nc = 4096 + 100 * (size_t)me;
  double *a = fresh(na, 1), *b = fresh(nb, 2);
  fuze_stats st0, st1, st2;
  T_EQ_INT(fuze_protect(ctx, "a", a, na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect a");
  T_EQ_INT(fuze_protect(ctx, "b", b, nb, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect b");
  fuze_map *m;
  T_EQ_INT(fuze_map_create(ctx, "m", 8, 8, &m), FUZE_SUCCESS, "map");
  T_EQ_INT(fuze_get_stats(ctx, &st0), FUZE_SUCCESS, "stats");
  double *c = fresh(nc, 3);
  T_EQ_INT(fuze_protect(ctx, "c", c, nc, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect c");
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint 1");
  T_EQ_INT(fuze_get_stats(ctx, &st1), FUZE_SUCCESS, "stats");
  unsigned long long grew = st1.parity_bytes - st0.parity_bytes, all = 0;
  MPI_Allreduce(&grew, &all, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  T_CHECK(all > 0, "protecting c added no parity anywhere");

  expect_msg(fuze_unprotect(ctx, "nope"), FUZE_ERR_NOT_FOUND,
             "fuze_unprotect('nope'): no array of that name is protected (stacks and maps cannot be "
             "unprotected)", "unprotect unknown");
  expect_msg(fuze_unprotect(ctx, "m"), FUZE_ERR_NOT_FOUND,
             "fuze_unprotect('m'): no array of that name is protected (stacks and maps cannot be "
             "unprotected)", "unprotect a map");
  expect_agreed(fuze_unprotect(ctx, NULL), FUZE_ERR_ARG, "fuze_unprotect: name must be 1..63 characters",
             "unprotect NULL");

  /* "c" goes for good; its regions with it. */
  T_EQ_INT(fuze_unprotect(ctx, "c"), FUZE_SUCCESS, "unprotect c");
  free(c);
  T_EQ_INT(fuze_get_stats(ctx, &st2), FUZE_SUCCESS, "stats");
  T_CHECK(st2.parity_bytes == st0.parity_bytes && st2.protected_bytes == st0.protected_bytes &&
              st2.shadow_bytes == st0.shadow_bytes,
          "after unprotect c: parity %llu protected %llu shadow %llu, before protect c: %llu %llu %llu",
          (unsigned long long)st2.parity_bytes, (unsigned long long)st2.protected_bytes,
          (unsigned long long)st2.shadow_bytes, (unsigned long long)st0.parity_bytes,
          (unsigned long long)st0.protected_bytes, (unsigned long long)st0.shadow_bytes);
  expect_msg(fuze_unprotect(ctx, "c"), FUZE_ERR_NOT_FOUND,
             "fuze_unprotect('c'): no array of that name is protected (stacks and maps cannot be "
             "unprotected)", "unprotect c twice");

  /* "a" moves: a std::vector that grew. */
  T_EQ_INT(fuze_unprotect(ctx, "a"), FUZE_SUCCESS, "unprotect a");
  size_t na2 = na * 2 + 3 * (size_t)me;
  double *a2 = fresh(na2, 4);
  free(a);
  a = a2;
  na = na2;
  T_EQ_INT(fuze_protect(ctx, "a", a, na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "re-protect a");

  double *ra = malloc(na * sizeof *ra), *rb = malloc(nb * sizeof *rb);
  for (int v = 0; v < np; v++) {
    for (size_t i = 0; i < na; i++) a[i] += (double)v + 0.5;
    for (size_t i = 0; i < nb; i++) b[i] -= (double)v;
    int rc = fuze_checkpoint(ctx);
    T_EQ_INT(rc, FUZE_SUCCESS, "checkpoint");
    memcpy(ra, a, na * sizeof *a);
    memcpy(rb, b, nb * sizeof *b);
    for (size_t i = 0; i < na; i++) a[i] = -1.0; /* uncommitted: rolled back */
    T_EQ_INT(fuze_inject(ctx, &v, 1), FUZE_SUCCESS, "inject");
    rc = fuze_recover(ctx);
    T_CHECK(rc == FUZE_RECOVERED, "victim %d: recover returned %s: %s", v, fuze_err_name(rc), fuze_last_error(ctx));
    T_CHECK(!memcmp(a, ra, na * sizeof *a), "victim %d: 'a' (re-protected, %zu elements) differs on rank %d", v,
            na, me);
    T_CHECK(!memcmp(b, rb, nb * sizeof *b), "victim %d: 'b' differs on rank %d", v, me);
  }
  fuze_verify_report rep;
  T_EQ_INT(fuze_verify(ctx, &rep), FUZE_SUCCESS, "verify");
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&comm);

  /* The persisted epoch: "a" as re-protected, no "c". */
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &comm);
  T_EQ_INT(rc, FUZE_RESTARTED, "restart");
  size_t cnt = 0;
  T_EQ_INT(fuze_stored_count(ctx, "a", &cnt), FUZE_SUCCESS, "stored a");
  T_CHECK(cnt == na, "stored count of a: %zu, expected %zu", cnt, na);
  T_EQ_INT(fuze_stored_count(ctx, "c", &cnt), FUZE_ERR_NOT_FOUND, "stored c (unprotected before)");
  double *a3 = malloc(na * sizeof *a3);
  T_EQ_INT(fuze_protect(ctx, "a", a3, na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "restore a");
  T_CHECK(!memcmp(a3, ra, na * sizeof *a3), "restored 'a' differs on rank %d", me);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize 2");
  MPI_Comm_free(&comm);
  free(a3);
  free(a);
  free(b);
  free(ra);
  free(rb);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  rng = 99991 + (uint64_t)me * 7919;
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char dir[256], cmd[400];
  snprintf(dir, sizeof dir, "/tmp/fuze-test-register-%d", pid);
  const char *mode = argc > 1 ? argv[1] : "unprotect";
  if (!strcmp(mode, "unprotect")) unprotect_scenario(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  if (me == 0) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  }
  int fails = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("%s: %s\n", fails ? "FAIL" : "PASS", mode);
  MPI_Finalize();
  return fails ? 1 : 0;
}
