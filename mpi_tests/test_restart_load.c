/* Restart without encoding again, and the rebuild of lost domains by
 * reductions over the blocks (issue 16, "Persistence v2").
 *
 * A first run persists two epochs of two arrays (unequal sizes, one rank
 * empty), a stack and a map that grew past their first capacity. Then, for
 * the empty set and for every set of <= f domains (domain=rank, so the
 * domain of rank 0 and, with spares, of the spare rank are in it), a copy of
 * the directory loses those domains' directories and the job restarts:
 *   - every rank's arrays, stack and map equal the persisted epoch bit for
 *     bit (the lost ranks' ones decoded);
 *   - the registrations encoded nothing: fuze_get_stats().sent_bytes is 0 on
 *     every rank after fuze_protect, fuze_stack_create and fuze_map_create
 *     (they loaded the committed parity from the files; on a re-encode every
 *     primary accumulates its whole state into its f backups);
 *   - the loaded parity is the parity of the restored data: fuze_verify
 *     finds no mismatch in any block, working or committed;
 *   - every rebuilt file is byte-identical to the lost original, and it is
 *     not written back before the last structure is registered again;
 *   - the loaded parity decodes: a rank is wiped and recovered bit-exact,
 *     then a checkpoint of changed data and a second wipe recover too.
 * Then the fallback: when one rank cannot load (test hook
 * FUZE_DEBUG_RESTART_ENCODE=1), every rank encodes instead and verbose
 * names the rank and the reason; the result is the same.
 * Usage: test_restart_load faults spares */
#define _POSIX_C_SOURCE 200809L /* setenv, dup */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_MAXN 400
#include "struct_model.h"

static int me, np, nf, nsp;
static uint64_t rng;
static char what[256];

static void sh(const char *cmd) {
  if (me == 0 && system(cmd) != 0) {
    fprintf(stderr, "FAIL: command failed: %s\n", cmd);
    t_failures++;
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static char *config(char *buf, size_t len, const char *dir) {
  snprintf(buf, len, "faults=%d;spares=%d;domain=rank;capacity=8;dir=%s", nf, nsp, dir);
  return buf;
}

static const model_mix mix = {.a_stride = 5, .ops_base = 20, .ops_range = 60, .push_odds = 4,
                              .remove_odds = 4, .stack_max = MODEL_MAXN, .keys = 300};
static void mutate(state *s, double *a, int32_t *iv, fuze_stack *st, fuze_map *m) {
  model_mutate(&rng, &mix, s, a, iv, st, m);
}

static void first_run(const char *dir, state *s) {
  char cfg[1024];
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, dir), &ctx, &app), FUZE_SUCCESS,
           "first fuze_init");
  if (!ctx) return; /* a spare rank served the job inside fuze_init */
  s->na = me % 3 == 1 ? 0 : 900 + 211 * (size_t)me;
  s->ni = 40 + 29 * (size_t)me;
  double *a = calloc(s->na + 1, sizeof *a);
  int32_t *iv = calloc(s->ni, sizeof *iv);
  fuze_stack *st = NULL;
  fuze_map *m = NULL;
  T_EQ_INT(fuze_protect(ctx, "field", a, s->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_protect(ctx, "ints", iv, s->ni, MPI_INT32_T, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_stack_create(ctx, "stack", EB, &st), FUZE_SUCCESS, "stack");
  T_EQ_INT(fuze_map_create(ctx, "map", 8, VB, &m), FUZE_SUCCESS, "map");
  for (int e = 1; e <= 2; e++) {
    mutate(s, a, iv, st, m);
    int rc = fuze_checkpoint(ctx);
    T_CHECK(rc == FUZE_SUCCESS, "checkpoint %d: %s", e, fuze_last_error(ctx));
  }
  state *junk = malloc(sizeof *junk); /* changes that are never committed */
  *junk = *s;
  mutate(junk, a, iv, st, m);
  free(junk);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&app);
  free(a);
  free(iv);
}

static void compare(const state *s, const double *a, const int32_t *iv, fuze_stack *st,
                    fuze_map *m, const char *when) {
  model_compare(what, s, a, iv, st, m, when);
}

static void verify_clean(fuze_ctx *ctx, const char *when) {
  fuze_verify_report r;
  memset(&r, 0, sizeof r);
  T_EQ_INT(fuze_verify(ctx, &r), FUZE_SUCCESS, "fuze_verify");
  T_CHECK(r.mismatches == 0 && r.bad_bytes == 0,
          "%s %s: fuze_verify found %llu mismatching ranges (%llu bytes), first in '%s' block %d",
          what, when, (unsigned long long)r.mismatches, (unsigned long long)r.bad_bytes,
          r.nentries ? r.entries[0].name : "?", r.nentries ? r.entries[0].block : -1);
  T_CHECK(r.blocks > 0 && r.bytes > 0, "%s %s: fuze_verify checked nothing", what, when);
}

/* While a stored structure is still to be registered again, no rebuilt
 * file has been written back (the write starts after the last registration,
 * so that the restart does not share the processor with it). */
static void not_written_yet(const char *dir, const int *lost, MPI_Comm app) {
  MPI_Barrier(app);
  for (int r = 0; r < np && me == 0; r++) {
    if (!lost[r]) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/domain-%d/rank-%d/epoch-2.h5", dir, r, r);
    T_CHECK(access(path, F_OK) != 0, "%s: rank %d's rebuilt file %s was written before the last "
            "registration", what, r, path);
  }
}

/* Restart from dir; lost[r] marks ranks whose files were deleted. */
static void restart(const char *dir, const state *s, const int *lost) {
  char cfg[1024];
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, dir), &ctx, &app);
  if (!ctx) {
    T_CHECK(rc == FUZE_SUCCESS, "%s: fuze_init on a spare: %s (%s)", what, fuze_err_name(rc),
            fuze_last_error(NULL));
    return;
  }
  T_CHECK(rc == FUZE_RESTARTED, "%s: fuze_init returned %s (%s)", what, fuze_err_name(rc),
          fuze_last_error(ctx));
  double *a = malloc((s->na + 1) * sizeof *a);
  int32_t *iv = malloc(s->ni * sizeof *iv);
  memset(a, 0xA5, (s->na + 1) * sizeof *a);
  memset(iv, 0xA5, s->ni * sizeof *iv);
  fuze_stack *st = NULL;
  fuze_map *m = NULL;
  T_EQ_INT(fuze_protect(ctx, "field", a, s->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_protect(ctx, "ints", iv, s->ni, MPI_INT32_T, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_stack_create(ctx, "stack", EB, &st), FUZE_SUCCESS, "stack");
  not_written_yet(dir, lost, app);
  T_EQ_INT(fuze_map_create(ctx, "map", 8, VB, &m), FUZE_SUCCESS, "map");
  fuze_stats stats;
  T_EQ_INT(fuze_get_stats(ctx, &stats), FUZE_SUCCESS, "stats");
  T_CHECK(stats.sent_bytes == 0, "%s: the registrations after the restart encoded the parity "
          "again: rank %d accumulated %llu bytes into its backups", what, me,
          (unsigned long long)stats.sent_bytes);
  if (st && m) {
    compare(s, a, iv, st, m, "after restart");
    verify_clean(ctx, "after restart");
    int v = (lost[0] ? 1 : 0) % np;
    T_EQ_INT(fuze_inject(ctx, &v, 1), FUZE_SUCCESS, "inject");
    T_EQ_INT(fuze_recover(ctx), FUZE_RECOVERED, "recover after restart");
    compare(s, a, iv, st, m, "after restart + wipe");
    state *s2 = malloc(sizeof *s2);
    *s2 = *s;
    mutate(s2, a, iv, st, m);
    rc = fuze_checkpoint(ctx);
    T_CHECK(rc == FUZE_SUCCESS, "%s: checkpoint after restart: %s", what, fuze_last_error(ctx));
    v = np - 1 - nsp; /* the last compute rank */
    T_EQ_INT(fuze_inject(ctx, &v, 1), FUZE_SUCCESS, "inject");
    T_EQ_INT(fuze_recover(ctx), FUZE_RECOVERED, "recover after a checkpoint");
    compare(s2, a, iv, st, m, "after restart + checkpoint + wipe");
    verify_clean(ctx, "after restart + checkpoint + wipe");
    free(s2);
  }
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&app);
  free(a);
  free(iv);
}

/* Every rebuilt file is the lost one, byte for byte (written back in the
 * background: complete once every rank finalized; epoch 2 is kept as the
 * previous complete epoch after the one checkpoint of the restarted run). */
static void same_files(const char *dir, const char *orig, const int *lost) {
  MPI_Barrier(MPI_COMM_WORLD);
  for (int r = 0; r < np && me == 0; r++) {
    if (!lost[r]) continue;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/domain-%d/rank-%d/epoch-2.h5' '%s/domain-%d/rank-%d/epoch-2.h5'",
             orig, r, r, dir, r, r);
    T_CHECK(system(cmd) == 0, "%s: rank %d's rebuilt file differs from the lost one", what, r);
  }
}

/* A restarted job that registers only some of the stored structures and
 * ends without a checkpoint: the rebuilt file is still written back (at
 * fuze_finalize), byte-identical. */
static void partial(const char *orig, const char *work, const state *s) {
  char cmd[2048], cfg[1024];
  int lost[64] = {0};
  lost[1] = 1;
  snprintf(what, sizeof what, "domain 1 lost, only 'field' registered again");
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s' && rm -rf '%s/domain-1'", work, orig,
           work, work);
  sh(cmd);
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, work), &ctx, &app);
  if (ctx) {
    T_CHECK(rc == FUZE_RESTARTED, "%s: fuze_init returned %s (%s)", what, fuze_err_name(rc),
            fuze_last_error(ctx));
    double *a = malloc((s->na + 1) * sizeof *a);
    T_EQ_INT(fuze_protect(ctx, "field", a, s->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
    not_written_yet(work, lost, app);
    T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
    MPI_Comm_free(&app);
    free(a);
  }
  same_files(work, orig, lost);
}

/* The fallback: rank 1 says it cannot load its regions
 * (FUZE_DEBUG_RESTART_ENCODE=1), so every rank encodes, as a fresh
 * registration does, and rank 0 says which rank and why (verbose=1, on its
 * stdout, captured here); the result is the same epoch, bit-exact, with
 * parity that fuze_verify finds clean. Domain 0 is lost too. */
static void fallback(const char *orig, const char *work, const state *s) {
  char cmd[2048], cfg[1024], out[700];
  snprintf(what, sizeof what, "fallback to encoding (rank 1 cannot load)");
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s' && rm -rf '%s/domain-0'", work, orig,
           work, work);
  sh(cmd);
  snprintf(out, sizeof out, "%s.stdout", work);
  setenv("FUZE_DEBUG_RESTART_ENCODE", "1", 1);
  fflush(stdout);
  int saved = -1;
  if (me == 0) { /* rank 0's stdout into the file */
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    saved = dup(1);
    T_CHECK(fd >= 0 && saved >= 0 && dup2(fd, 1) == 1, "cannot redirect stdout to %s", out);
    if (fd >= 0) close(fd);
  }
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  config(cfg, sizeof cfg, work);
  strcat(cfg, ";verbose=1");
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  double *a = malloc((s->na + 1) * sizeof *a);
  int32_t *iv = malloc(s->ni * sizeof *iv);
  fuze_stack *st = NULL;
  fuze_map *m = NULL;
  fuze_stats stats;
  memset(&stats, 0, sizeof stats);
  if (ctx) {
    T_CHECK(rc == FUZE_RESTARTED, "%s: fuze_init returned %s (%s)", what, fuze_err_name(rc),
            fuze_last_error(ctx));
    T_EQ_INT(fuze_protect(ctx, "field", a, s->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
    T_EQ_INT(fuze_protect(ctx, "ints", iv, s->ni, MPI_INT32_T, NULL), FUZE_SUCCESS, "protect");
    T_EQ_INT(fuze_stack_create(ctx, "stack", EB, &st), FUZE_SUCCESS, "stack");
    T_EQ_INT(fuze_map_create(ctx, "map", 8, VB, &m), FUZE_SUCCESS, "map");
    T_EQ_INT(fuze_get_stats(ctx, &stats), FUZE_SUCCESS, "stats");
  }
  fflush(stdout);
  if (saved >= 0) { /* rank 0's stdout back */
    dup2(saved, 1);
    close(saved);
  }
  unsetenv("FUZE_DEBUG_RESTART_ENCODE");
  if (ctx) {
    /* Every rank with something to protect encoded it (rank 0's 'ints' is never empty). */
    T_CHECK(stats.sent_bytes > 0, "%s: rank %d sent nothing: it did not encode", what, me);
    if (st && m) {
      compare(s, a, iv, st, m, "after the fallback");
      verify_clean(ctx, "after the fallback");
    }
    T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
    MPI_Comm_free(&app);
  }
  free(a);
  free(iv);
  if (me == 0) {
    char text[65536] = "";
    FILE *fp = fopen(out, "r");
    size_t n = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    text[n] = 0;
    if (fp) fclose(fp);
    static const char *const lines[] = {
        "fuze: fuze_protect('field'): encoding the parity again instead of loading it from the "
        "restarted files: rank 1: FUZE_DEBUG_RESTART_ENCODE=1 asks this rank to encode\n",
        "fuze: fuze_protect('ints'): encoding the parity again",
        "fuze: fuze_stack_create('stack'): encoding the parity again",
        "fuze: fuze_map_create('map'): encoding the parity again"};
    for (size_t x = 0; x < sizeof lines / sizeof *lines; x++)
      T_CHECK(strstr(text, lines[x]) != NULL, "%s: rank 0's output lacks '%s'; it was:\n%s", what,
              lines[x], text);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  nf = argc > 1 ? atoi(argv[1]) : 1;
  nsp = argc > 2 ? atoi(argv[2]) : 0;
  rng = 99991 + (uint64_t)me * 7919;
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char base[512], orig[600], work[600], cmd[2048];
  snprintf(base, sizeof base, "/tmp/fuze-test-restart-load-%d", pid);
  snprintf(orig, sizeof orig, "%s/orig", base);
  snprintf(work, sizeof work, "%s/work", base);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  sh(cmd);
  static state s;
  snprintf(what, sizeof what, "first run");
  first_run(orig, &s);
  MPI_Barrier(MPI_COMM_WORLD);

  int set[8] = {0}, len = 0, nsets = 0;
  do {
    int lost[64] = {0};
    char desc[64] = "";
    for (int i = 0; i < len; i++) {
      lost[set[i]] = 1;
      snprintf(desc + strlen(desc), sizeof desc - strlen(desc), " %d", set[i]);
    }
    snprintf(what, sizeof what, "domains {%s } lost", desc);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", work, orig, work);
    sh(cmd);
    for (int i = 0; i < len; i++) {
      snprintf(cmd, sizeof cmd, "rm -rf '%s/domain-%d'", work, set[i]);
      sh(cmd);
    }
    restart(work, &s, lost);
    same_files(work, orig, lost);
    nsets++;
    if (len == 0) len = 1, set[0] = 0;
    else if (!t_next_subset(set, &len, np, nf)) break;
  } while (1);
  if (me == 0) printf("restart: %d failure sets of <= %d domains (and none), each bit-exact, nothing encoded\n", nsets, nf);

  partial(orig, work, &s);
  fallback(orig, work, &s);

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  sh(cmd);
  int bad = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("%s: %d failures\n", bad ? "FAILED" : "PASSED", bad);
  MPI_Finalize();
  return bad ? 1 : 0;
}
