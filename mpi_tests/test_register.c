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
 *   scalars: a struct {int cycle; double time; double dt;} registered once with
 *     an MPI_Type_create_struct (resized to the struct, handle freed right
 *     after fuze_protect) and a contiguous type of 3 doubles; a type whose
 *     lower bound is not 0 is refused with the message; for every victim rank
 *     a wipe and recovery bit-exact (padding bytes included); persisted and
 *     restarted bit-exact; h5dump reads the dataset (an opaque of the extent).
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stddef.h>
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

struct clk {
  int cycle;
  double time, dt;
};

static MPI_Datatype clock_type(void) {
  int len[3] = {1, 1, 1};
  MPI_Aint off[3] = {offsetof(struct clk, cycle), offsetof(struct clk, time), offsetof(struct clk, dt)};
  MPI_Datatype types[3] = {MPI_INT, MPI_DOUBLE, MPI_DOUBLE}, t, r;
  MPI_Type_create_struct(3, len, off, types, &t);
  MPI_Type_create_resized(t, 0, (MPI_Aint)sizeof(struct clk), &r);
  MPI_Type_set_name(r, "struct clk"); /* the tag of the persisted opaque type */
  MPI_Type_commit(&r);
  MPI_Type_free(&t);
  return r;
}

static void scalars_scenario(const char *dir) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "faults=2;domain=rank;dir=%s", dir);
  fuze_ctx *ctx = NULL;
  MPI_Comm comm;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &comm), FUZE_SUCCESS, "init");
  struct clk c, rc_clk;
  memset(&c, 0, sizeof c); /* padding too: it is protected */
  c.cycle = 0;
  c.time = 0.0;
  c.dt = 0.125 + me;
  MPI_Datatype ct = clock_type();
  T_EQ_INT(fuze_protect(ctx, "clock", &c, 1, ct, NULL), FUZE_SUCCESS, "protect clock (struct)");
  MPI_Type_free(&ct); /* fuze keeps its own copy */
  MPI_Datatype v3;
  MPI_Type_contiguous(3, MPI_DOUBLE, &v3);
  MPI_Type_commit(&v3);
  size_t nv = 5 + (size_t)me;
  double *v = fresh(3 * nv, 7), *rv = malloc(3 * nv * sizeof *rv);
  T_EQ_INT(fuze_protect(ctx, "vec3", v, nv, v3, NULL), FUZE_SUCCESS, "protect vec3 (contiguous)");
  MPI_Type_free(&v3);
  MPI_Datatype bad;
  MPI_Type_create_resized(MPI_INT, 4, 8, &bad);
  int x = 0;
  expect_agreed(fuze_protect(ctx, "bad", &x, 1, bad, NULL), FUZE_ERR_ARG,
                "fuze_protect('bad'): the datatype has lower bound 4, extent 8 and its data at [0, 4); "
                "fuze protects count * extent bytes from base, so the data must lie in [0, extent) with "
                "lower bound 0 (for a struct, set the bounds with MPI_Type_create_resized(type, 0, "
                "sizeof(struct), &resized))", "protect a type with lower bound 4");
  MPI_Type_free(&bad);
  for (int vic = 0; vic < np; vic++) {
    c.cycle++;
    c.time += c.dt;
    c.dt *= 1.5;
    for (size_t i = 0; i < 3 * nv; i++) v[i] = v[i] * 0.5 + vic;
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint");
    rc_clk = c;
    memcpy(rv, v, 3 * nv * sizeof *v);
    c.cycle = -7; /* uncommitted */
    c.time = -1.0;
    T_EQ_INT(fuze_inject(ctx, &vic, 1), FUZE_SUCCESS, "inject");
    int rc = fuze_recover(ctx);
    T_CHECK(rc == FUZE_RECOVERED, "victim %d: recover returned %s: %s", vic, fuze_err_name(rc), fuze_last_error(ctx));
    T_CHECK(!memcmp(&c, &rc_clk, sizeof c), "victim %d: clock {%d, %g, %g} on rank %d, expected {%d, %g, %g}", vic,
            c.cycle, c.time, c.dt, me, rc_clk.cycle, rc_clk.time, rc_clk.dt);
    T_CHECK(!memcmp(v, rv, 3 * nv * sizeof *v), "victim %d: vec3 differs on rank %d", vic, me);
  }
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&comm);

  /* h5dump reads the persisted struct (rank 0's file): an opaque of the extent. */
  if (me == 0) {
    char cmd[1200], out[300];
    snprintf(out, sizeof out, "%s/h5dump.txt", dir);
    snprintf(cmd, sizeof cmd, "h5dump -d /arrays/clock %s/domain-0/rank-0/epoch-*.h5 > %s 2>&1", dir, out);
    int st = system(cmd);
    T_CHECK(st == 0, "'%s' exited with %d", cmd, st);
    FILE *fp = fopen(out, "r");
    char buf[4096] = "";
    size_t got = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    buf[got] = 0;
    if (fp) fclose(fp);
    char tag[64];
    snprintf(tag, sizeof tag, "H5T_OPAQUE");
    T_CHECK(strstr(buf, tag) && strstr(buf, "OPAQUE_TAG \"struct clk\"") && strstr(buf, "( 1 )"),
            "h5dump of /arrays/clock: %s", buf);
  }

  /* Restart: the same registration restores it. */
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &comm);
  T_EQ_INT(rc, FUZE_RESTARTED, "restart");
  size_t cnt = 0;
  T_EQ_INT(fuze_stored_count(ctx, "clock", &cnt), FUZE_SUCCESS, "stored clock");
  T_CHECK(cnt == 1, "stored count of clock: %zu", cnt);
  struct clk c2;
  memset(&c2, 0xab, sizeof c2);
  ct = clock_type();
  T_EQ_INT(fuze_protect(ctx, "clock", &c2, 1, ct, NULL), FUZE_SUCCESS, "restore clock");
  MPI_Type_free(&ct);
  T_CHECK(!memcmp(&c2, &rc_clk, sizeof c2), "restarted clock {%d, %g, %g} on rank %d, expected {%d, %g, %g}",
          c2.cycle, c2.time, c2.dt, me, rc_clk.cycle, rc_clk.time, rc_clk.dt);
  T_EQ_INT(fuze_stored_count(ctx, "vec3", &cnt), FUZE_SUCCESS, "stored vec3");
  T_CHECK(cnt == nv, "stored count of vec3: %zu, expected %zu", cnt, nv);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize 2");
  MPI_Comm_free(&comm);
  free(v);
  free(rv);
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
  else if (!strcmp(mode, "scalars")) scalars_scenario(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  if (me == 0 && !getenv("FUZE_TEST_KEEP_DIR")) { /* keep it to inspect by hand */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  }
  int fails = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("%s: %s\n", fails ? "FAIL" : "PASS", mode);
  MPI_Finalize();
  return fails ? 1 : 0;
}
