/* ulfm: a real death repaired in the job, against the restart from files, on
 * the same data in one run (only with fuze built against an MPI with ULFM,
 * launched with `mpirun --with-ft ulfm`; not part of --bench all).
 *
 * The job: C compute ranks + 3 idle replacements (world size C + 3),
 * faults=2, domain=rank, one array of --ulfm-size bytes per compute rank,
 * committed once. Round 1: compute rank 2 SIGKILLs itself right after a
 * barrier; round 2: ranks 4 and 5 at once (f deaths). The survivors time from
 * the barrier (the kill) until the application's next step: their
 * fuze_checkpoint detects the death and returns FUZE_RECOVERED, they take
 * fuze_comm() and make the next step's collective, which the replacement
 * joins after its fuze_protect (the registration that copies its recovered
 * array). fuze_get_stats gives each rank's phases of the repair (replace,
 * layout, windows, decode); the table has their max over ranks.
 *
 * The restart path, on the same data: the compute ranks (survivors and
 * replacements) persist the array with dir=, the files of the ranks killed
 * in the round are deleted (their node's disk is gone), and a new context
 * restarts from the directory: fuze_init + fuze_protect, which decode them
 * from the other ranks' files. A real restart also pays the job's abort
 * after the death, mpirun's relaunch and MPI_Init: ulfm_bench.sh measures
 * them in the same run (--ulfm-probe abort, then init: wall-clock times
 * printed by the ranks against the script's) and passes their sum as
 * --ulfm-relaunch; the restart path is that plus the restart from files
 * (without it, the restart from files alone). It still leaves out the work
 * lost since the last persisted epoch. Checks: after each repair and after
 * each restart, every rank's array is bit-exact. */
#include "bench.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int g_world_broken;

#ifndef FUZE_BENCH_ULFM
void bench_ulfm(void) {
  bench_note("ulfm: fuze-bench was built without ULFM (Open MPI 5 with its ftmpi extension: "
             "./quickstart.sh ulfm builds it): skipped\n");
}
#else

#define NREPL 3

static double fill(int r, size_t i) { return (double)i + 1e9 * r; }

static int same(const double *a, int r, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a[i], &(double){fill(r, i)}, sizeof(double))) return 0;
  return 1;
}

/* Persist the array in dir, delete the killed ranks' files, restart: the
 * time of fuze_init + fuze_protect (max over ranks). */
static double restart_path(MPI_Comm comm, const char *dir, const int *victims, int nv, double *a,
                           size_t n, int r, int *ok) {
  char cfg[1400];
  snprintf(cfg, sizeof cfg, "faults=2,domain=rank,code=rs,dir=%.1200s", dir);
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  BENCH_CK(NULL, bench_init(comm, cfg, &ctx, &app));
  BENCH_CK(ctx, fuze_protect(ctx, "bench.ulfm", a, n, MPI_DOUBLE, NULL));
  BENCH_CK(ctx, fuze_checkpoint(ctx));
  BENCH_CK(ctx, fuze_finalize(&ctx));
  MPI_Comm_free(&app);
  MPI_Barrier(comm);
  for (int v = 0; v < nv; v++)
    if (r == victims[v]) { /* its disk is gone: domain=rank, so domain-R/rank-R */
      char cmd[1500];
      snprintf(cmd, sizeof cmd, "rm -rf '%s/domain-%d'", dir, r);
      if (system(cmd)) bench_note("ulfm: could not remove %s/domain-%d\n", dir, r);
    }
  MPI_Barrier(comm);
  double *b = bench_alloc(n * 8);
  double t0 = MPI_Wtime();
  int rc = bench_init(comm, cfg, &ctx, &app);
  BENCH_CK(ctx, rc);
  BENCH_CK(ctx, fuze_protect(ctx, "bench.ulfm", b, n, MPI_DOUBLE, NULL));
  double t = MPI_Wtime() - t0;
  *ok = rc == FUZE_RESTARTED && same(b, r, n);
  BENCH_CK(ctx, fuze_finalize(&ctx));
  MPI_Comm_free(&app);
  free(b);
  double tmax = 0;
  MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm);
  return tmax;
}

/* ulfm_bench.sh's probes of a real restart's extra cost (no fuze): "abort"
 * (launched without --with-ft, so the death aborts the job): rank 2 prints
 * the wall-clock time and SIGKILLs itself, the others wait in a barrier
 * until mpirun kills them; "init": rank 0 prints the time once every rank
 * has passed MPI_Init and a barrier. */
static void probe(const char *what) {
  struct timespec t;
  MPI_Barrier(MPI_COMM_WORLD);
  clock_gettime(CLOCK_REALTIME, &t);
  int init = !strcmp(what, "init");
  if (g_rank == (init ? 0 : 2)) {
    printf("ulfm-probe %s %lld.%09ld\n", init ? "init" : "kill", (long long)t.tv_sec, t.tv_nsec);
    fflush(stdout);
    if (!init) raise(SIGKILL);
  }
  if (!init) MPI_Barrier(MPI_COMM_WORLD);
}

void bench_ulfm(void) {
  if (g_opt.ulfm_probe) {
    probe(g_opt.ulfm_probe);
    return;
  }
  int ncompute = g_size - NREPL;
  if (ncompute < 6) {
    bench_note("ulfm: needs at least 6 compute ranks + %d replacements (np >= 9)\n", NREPL);
    return;
  }
  size_t n = g_opt.ulfm_size / 8, bytes = n * 8;
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/fuze-bench-ulfm-%d", g_opt.persist_dir, pid);
  g_world_broken = 1; /* from the first death on, MPI_COMM_WORLD holds dead ranks */
  char cfg[64];
  snprintf(cfg, sizeof cfg, "faults=2,domain=rank,code=rs,replacements=%d", NREPL);
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = bench_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  BENCH_CK(NULL, rc);
  if (app == MPI_COMM_NULL) return; /* an idle replacement, at the end */
  int joined = rc == FUZE_RECOVERED, r = 0;
  MPI_Comm_rank(app, &r);
  double *a = bench_alloc(bytes);
  if (!joined)
    for (size_t i = 0; i < n; i++) a[i] = fill(r, i);
  double treg = MPI_Wtime();
  BENCH_CK(ctx, fuze_protect(ctx, "bench.ulfm", a, n, MPI_DOUBLE, NULL)); /* a replacement: restores */
  treg = MPI_Wtime() - treg;
  if (!joined) BENCH_CK(ctx, fuze_checkpoint(ctx));
  static const int victims[2][2] = {{2, -1}, {4, 5}};
  static const int nvict[2] = {1, 2};
  int round = 0;
  double kill_ms[2] = {0, 0}, phase_ms[2][5], restart_ms[2] = {0, 0};
  int ok_all = 1;
  for (;;) {
    double t0 = 0, trec = 0;
    if (!joined) {
      MPI_Barrier(app);
      t0 = MPI_Wtime();
      for (int v = 0; v < nvict[round]; v++)
        if (r == victims[round][v]) raise(SIGKILL);
      trec = MPI_Wtime();
      rc = fuze_checkpoint(ctx); /* detects the death, repairs it */
      if (rc != FUZE_RECOVERED) bench_check(ctx, rc < 0 ? rc : -1, "fuze_checkpoint (want FUZE_RECOVERED)");
      app = fuze_comm(ctx);
    }
    /* The application's next step: every rank, the replacements included. */
    int rnd = joined ? -1 : round;
    MPI_Allreduce(MPI_IN_PLACE, &rnd, 1, MPI_INT, MPI_MAX, app);
    round = rnd;
    double t1 = MPI_Wtime();
    fuze_stats st;
    memset(&st, 0, sizeof st);
    fuze_get_stats(ctx, &st);
    double mine[6] = {joined ? 0 : t1 - t0, st.repair_seconds[0], st.repair_seconds[1],
                      st.repair_seconds[2], st.repair_seconds[3], joined ? treg : 0}, mx[6];
    MPI_Allreduce(mine, mx, 6, MPI_DOUBLE, MPI_MAX, app);
    (void)trec;
    kill_ms[round] = 1e3 * mx[0];
    for (int i = 0; i < 5; i++) phase_ms[round][i] = 1e3 * mx[i + 1];
    int ok = same(a, r, n), all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, app);
    if (!all) ok_all = 0;
    /* The restart path on the same data, losing the same ranks' files. */
    int rok = 0;
    char rdir[1200];
    snprintf(rdir, sizeof rdir, "%s-%d", dir, round);
    restart_ms[round] = 1e3 * restart_path(app, rdir, victims[round], nvict[round], a, n, r, &rok);
    MPI_Allreduce(MPI_IN_PLACE, &rok, 1, MPI_INT, MPI_MIN, app);
    if (!rok) ok_all = 0;
    if (r == 0) bench_rmdir(rdir);
    joined = 0;
    if (++round == 2) break;
  }
  char sz[32], param[96];
  bench_fmt_size(bytes, sz, sizeof sz);
  for (int k = 0; k < 2; k++) {
    snprintf(param, sizeof param, "size=%s deaths=%d", sz, nvict[k]);
    bench_row_hidden("ulfm", param, "repair", "ms", &kill_ms[k], 1);
    bench_row_hidden("ulfm", param, "restart", "ms", &restart_ms[k], 1);
  }
  if (r == 0) {
    double rl = 1e3 * g_opt.ulfm_relaunch, path[2];
    for (int k = 0; k < 2; k++) path[k] = restart_ms[k] + rl;
    printf("\nulfm: %d compute ranks x %s, faults=2, domain=rank, %d replacements; a real SIGKILL "
           "right after a barrier; times are the max over ranks (ms). Restart path: the job's "
           "abort, relaunch and MPI_Init (%s) + the restart from files\n\n"
           "| deaths | kill to next step | replace | layout + comms | windows | decode | "
           "replacement's fuze_protect | restart from files (init + protect) | abort + relaunch "
           "| restart path | repair / restart path |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n", ncompute, sz, NREPL,
           rl > 0 ? "measured by ulfm_bench.sh in this run" : "not measured: --ulfm-relaunch not given, counted as 0");
    for (int k = 0; k < 2; k++)
      printf("| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |\n", nvict[k],
             kill_ms[k], phase_ms[k][0], phase_ms[k][1], phase_ms[k][2], phase_ms[k][3],
             phase_ms[k][4], restart_ms[k], rl, path[k], kill_ms[k] / path[k]);
    printf("\nulfm goal (repair at most 0.1x of the restart path): %.3f, %.3f: %s\n",
           kill_ms[0] / path[0], kill_ms[1] / path[1],
           kill_ms[0] <= 0.1 * path[0] && kill_ms[1] <= 0.1 * path[1] ? "met" : "missed");
    printf("check ulfm: every rank bit-exact after each repair and each restart: %s\n",
           ok_all ? "OK" : "MISMATCH");
    fflush(stdout);
  }
  if (!ok_all) g_fail = 1;
  BENCH_CK(ctx, fuze_finalize(&ctx));
  free(a);
}
#endif
