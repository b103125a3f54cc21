/* restart: what a restart from HDF5 persistence costs, and what fuze_protect
 * costs at start-up, side by side in one run (issue 16's goals), on one
 * array of doubles per rank of --restart-size bytes, code=rs, domain=rank,
 * f = 2 from 6 ranks on (else 1).
 *
 * 1. Start-up: in a fresh in-memory context, fuze_protect of the array
 *    (every byte encoded into the f backups) against one full checkpoint of
 *    the same array in the same context (every byte changed). Goal: protect
 *    within 2x of the checkpoint.
 * 2. Restart: a job persists one epoch to DIR (--persist-dir) and ends; then,
 *    in rotating order every repetition, the same job restarts with
 *      none  - every file there,
 *      one   - one rank's domain directory deleted (rank r mod np: rank 0's
 *              domain included),
 *      f     - the domains of f members of one block deleted (f lost per
 *              block, the most it tolerates),
 *    timed from fuze_init to the end of fuze_protect (the application's
 *    buffers hold the epoch again), max over ranks. A restart that lost
 *    files rewrites them, so the directory is whole again for the next one.
 *    Goal: one within 1.5x of none. Check: every restart is bit-exact. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { R_NONE, R_ONE, R_F, R_COUNT };
static const char *const r_name[R_COUNT] = {"none", "one", "f"};

static void shell(const char *cmd) {
  if (g_rank == 0 && system(cmd)) bench_note("command failed: %s\n", cmd);
  MPI_Barrier(MPI_COMM_WORLD);
}

/* Lost ranks of scenario s at repetition r (domain=rank: domain = rank). */
static int lost_set(int s, int r, int f, const fuze_plan *p, int *out) {
  if (s == R_NONE) return 0;
  if (s == R_ONE) {
    out[0] = r % g_size;
    return 1;
  }
  /* f members of block (r mod nblocks), or members and hosts when the block
   * is smaller than f */
  int b = r % p->nblocks, n = 0, k = p->block_start[b + 1] - p->block_start[b];
  for (int i = 0; i < k && n < f; i++) out[n++] = p->members[p->block_start[b] + i];
  for (int j = 0; j < p->f && n < f; j++) out[n++] = p->hosts[b * p->f + j];
  return n;
}

void bench_restart(void) {
  int reps = g_opt.reps, f = g_size >= 6 ? 2 : 1;
  size_t bytes = g_opt.restart_size / 8 * 8, n = bytes / 8;
  double *a = bench_alloc(bytes), *want = bench_alloc(bytes);
  for (size_t i = 0; i < n; i++) a[i] = (double)i + 1e9 * g_rank;
  char cfg[2400], sz[32], param[96];
  bench_fmt_size(bytes, sz, sizeof sz);

  /* 1. fuze_protect vs one full checkpoint, in the same context */
  double tp[BENCH_MAX_REPS], tc[BENCH_MAX_REPS];
  snprintf(cfg, sizeof cfg, "faults=%d,domain=rank,code=rs", f);
  for (int r = 0; r < reps; r++) {
    fuze_ctx *ctx = NULL;
    MPI_Comm app;
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, cfg, &ctx, &app));
    MPI_Barrier(app);
    double t0 = MPI_Wtime();
    BENCH_CK(ctx, fuze_protect(ctx, "bench.restart", a, n, MPI_DOUBLE, NULL));
    tp[r] = 1e3 * bench_max(app, MPI_Wtime() - t0);
    for (size_t i = 0; i < n; i++) a[i] += 1.0;
    MPI_Barrier(app);
    t0 = MPI_Wtime();
    BENCH_CK(ctx, fuze_checkpoint(ctx));
    tc[r] = 1e3 * bench_max(app, MPI_Wtime() - t0);
    BENCH_CK(ctx, fuze_finalize(&ctx));
    MPI_Comm_free(&app);
  }
  snprintf(param, sizeof param, "size=%s f=%d", sz, f);
  bench_row_hidden("startup", param, "protect", "ms", tp, reps);
  bench_row_hidden("startup", param, "checkpoint", "ms", tc, reps);
  double mp = bench_median_of(tp, reps), mc = bench_median_of(tc, reps);
  bench_note("\nstart-up: fuze_protect of %s per rank (everything encoded) vs one full "
             "checkpoint of it (every byte changed), f=%d, in memory (median over %d, max over "
             "ranks)\n\n| fuze_protect (ms) | full checkpoint (ms) | protect/checkpoint |\n"
             "|---|---|---|\n| %.1f | %.1f | %.2f |\n\n", sz, f, reps, mp, mc, mp / mc);
  bench_note("start-up goal (fuze_protect within 2x of one full checkpoint): %.2f: %s\n",
             mp / mc, mp <= 2 * mc ? "met" : "missed");

  /* 2. restarts */
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char dir[1100], cmd[2400];
  snprintf(dir, sizeof dir, "%s/fuze-bench-restart-%d", g_opt.persist_dir, pid);
  snprintf(cfg, sizeof cfg, "faults=%d,domain=rank,code=rs,dir=%.1000s", f, dir);
  {
    fuze_ctx *ctx = NULL;
    MPI_Comm app;
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, cfg, &ctx, &app));
    BENCH_CK(ctx, fuze_protect(ctx, "bench.restart", a, n, MPI_DOUBLE, NULL));
    for (size_t i = 0; i < n; i++) a[i] = a[i] * 0.5 + 3.0;
    BENCH_CK(ctx, fuze_checkpoint(ctx));
    memcpy(want, a, bytes);
    BENCH_CK(ctx, fuze_finalize(&ctx));
    MPI_Comm_free(&app);
  }
  fuze_plan plan;
  memset(&plan, 0, sizeof plan);
  if (bench_plan(g_size, 0, f, M_FUSION, &plan)) {
    bench_note("restart: the planner failed\n");
    g_fail = 1;
    return;
  }
  double t[R_COUNT][BENCH_MAX_REPS], ti[R_COUNT][BENCH_MAX_REPS];
  int ok = 1;
  for (int r = 0; r < reps; r++)
    for (int q = 0; q < R_COUNT; q++) {
      int s = (r + q) % R_COUNT, lost[16], nl = lost_set(s, r, f, &plan, lost);
      for (int x = 0; x < nl; x++) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s/domain-%d'", dir, lost[x]);
        shell(cmd);
      }
      memset(a, 0, bytes);
      fuze_ctx *ctx = NULL;
      MPI_Comm app;
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      int rc = bench_init(MPI_COMM_WORLD, cfg, &ctx, &app);
      double t1 = MPI_Wtime();
      if (rc != FUZE_RESTARTED) BENCH_CK(ctx, rc < 0 ? rc : FUZE_ERR_STATE);
      BENCH_CK(ctx, fuze_protect(ctx, "bench.restart", a, n, MPI_DOUBLE, NULL));
      double t2 = MPI_Wtime();
      t[s][r] = 1e3 * bench_max(MPI_COMM_WORLD, t2 - t0);
      ti[s][r] = 1e3 * bench_max(MPI_COMM_WORLD, t1 - t0);
      ok &= !memcmp(a, want, bytes);
      BENCH_CK(ctx, fuze_finalize(&ctx));
      MPI_Comm_free(&app);
    }
  fuze__plan_free(&plan);
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  snprintf(param, sizeof param, "size=%s f=%d", sz, f);
  for (int s = 0; s < R_COUNT; s++) bench_row_hidden("restart", param, r_name[s], "ms", t[s], reps);
  double m[R_COUNT], mi[R_COUNT];
  for (int s = 0; s < R_COUNT; s++) m[s] = bench_median_of(t[s], reps), mi[s] = bench_median_of(ti[s], reps);
  bench_note("\nrestart: fuze_init + fuze_protect of %s per rank, f=%d, dir=%s/..., lost domains "
             "deleted before each restart (median over %d, max over ranks)\n\n"
             "| lost domains | restart (ms) | of which fuze_init (ms) | /none |\n|---|---|---|---|\n"
             "| none | %.1f | %.1f | 1.00 |\n| one | %.1f | %.1f | %.2f |\n| f=%d (one block) | %.1f | "
             "%.1f | %.2f |\n\n", sz, f, g_opt.persist_dir, reps, m[R_NONE], mi[R_NONE], m[R_ONE],
             mi[R_ONE], m[R_ONE] / m[R_NONE], f, m[R_F], mi[R_F], m[R_F] / m[R_NONE]);
  bench_note("restart goal (one lost domain within 1.5x of none): %.2f: %s\n", m[R_ONE] / m[R_NONE],
             m[R_ONE] <= 1.5 * m[R_NONE] ? "met" : "missed");
  bench_note("check restart: every restart is bit-exact: %s\n", all ? "OK" : "MISMATCH");
  if (!all) g_fail = 1;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  shell(cmd);
  free(a);
  free(want);
}
