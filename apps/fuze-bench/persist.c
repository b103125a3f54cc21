/* persist: the time inside fuze_checkpoint of one array of doubles per rank
 * (every byte changed) with f=2 fused backups (code=rs), in memory only,
 * persisted synchronously (dir=, persist=sync) and asynchronously
 * (persist=async), the three contexts side by side on the same data, in
 * alternating order. Between checkpoints the application computes for
 * --persist-compute seconds (touching its array), which is when an
 * asynchronous write proceeds. A last checkpoint-free fuze_finalize of the
 * async context completes its final write. Checks: after the run both
 * directories restart to the same contents as memory (bit-exact). */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { P_MEMORY, P_SYNC, P_ASYNC, P_COUNT };
static const char *const p_name[P_COUNT] = {"memory", "sync", "async"};

static void compute(double *a, size_t n, double secs, double by) {
  double t0 = MPI_Wtime();
  do {
    for (size_t i = 0; i < n; i++) a[i] += by;
  } while (MPI_Wtime() - t0 < secs);
}

static int restart_check(const char *dir, int f, const double *want, size_t n) {
  char cfg[1400];
  snprintf(cfg, sizeof cfg, "faults=%d,domain=rank,code=rs,dir=%s", f, dir);
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  int rc = bench_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  int ok = rc == FUZE_RESTARTED;
  double *b = bench_alloc(n * 8);
  if (ok) ok = fuze_protect(ctx, "bench.persist", b, n, MPI_DOUBLE, NULL) == FUZE_SUCCESS &&
               !memcmp(b, want, n * 8);
  free(b);
  if (ctx) fuze_finalize(&ctx);
  if (app != MPI_COMM_NULL) MPI_Comm_free(&app);
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all;
}

void bench_persist(void) {
  int reps = g_opt.reps, f = g_size > 2 ? 2 : 1;
  size_t bytes = g_opt.persist_size / 8 * 8, n = bytes / 8;
  double *a = bench_alloc(bytes);
  for (size_t i = 0; i < n; i++) a[i] = (double)i + 1e9 * g_rank;
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char dir[P_COUNT][1100];
  fuze_ctx *ctx[P_COUNT];
  MPI_Comm app[P_COUNT];
  for (int p = 0; p < P_COUNT; p++) {
    snprintf(dir[p], sizeof dir[p], "%s/fuze-bench-persist-%d-%s", g_opt.persist_dir, pid, p_name[p]);
    char cfg[2400];
    if (p == P_MEMORY) snprintf(cfg, sizeof cfg, "faults=%d,domain=rank,code=rs", f);
    else snprintf(cfg, sizeof cfg, "faults=%d,domain=rank,code=rs,dir=%.1000s,persist=%s", f, dir[p],
                  p == P_ASYNC ? "async" : "sync");
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, cfg, &ctx[p], &app[p]));
    BENCH_CK(ctx[p], fuze_protect(ctx[p], "bench.persist", a, n, MPI_DOUBLE, NULL));
  }
  double ms[P_COUNT][BENCH_MAX_REPS];
  for (int r = 0; r < reps; r++) {
    compute(a, n, g_opt.persist_compute, 1.0);
    for (int q = 0; q < P_COUNT; q++) {
      int p = (r + q) % P_COUNT;
      MPI_Barrier(app[p]);
      double t0 = MPI_Wtime();
      BENCH_CK(ctx[p], fuze_checkpoint(ctx[p]));
      ms[p][r] = 1e3 * bench_max(app[p], MPI_Wtime() - t0);
      /* the application computes between checkpoints: the async write's time */
      if (q < P_COUNT - 1) compute(a, n, g_opt.persist_compute / P_COUNT, 0.0);
    }
  }
  for (int p = 0; p < P_COUNT; p++) {
    BENCH_CK(ctx[p], fuze_finalize(&ctx[p]));
    MPI_Comm_free(&app[p]);
  }
  char sz[32], param[96];
  bench_fmt_size(bytes, sz, sizeof sz);
  snprintf(param, sizeof param, "size=%s f=%d compute=%gs", sz, f, g_opt.persist_compute);
  for (int p = 0; p < P_COUNT; p++) bench_row_hidden("persist", param, p_name[p], "ms", ms[p], reps);
  double med[P_COUNT];
  for (int p = 0; p < P_COUNT; p++) med[p] = bench_median_of(ms[p], reps);
  bench_note("\npersist: time inside fuze_checkpoint, %s per rank changed every time, f=%d, "
             "dir=%s/..., %gs of computing between checkpoints (median over %d, max over ranks)\n\n"
             "| memory (ms) | persist=sync (ms) | persist=async (ms) | sync/memory | async/memory |\n"
             "|---|---|---|---|---|\n| %.1f | %.1f | %.1f | %.2f | %.2f |\n\n",
             sz, f, g_opt.persist_dir, g_opt.persist_compute, reps, med[P_MEMORY], med[P_SYNC],
             med[P_ASYNC], med[P_SYNC] / med[P_MEMORY], med[P_ASYNC] / med[P_MEMORY]);
  bench_note("persist goal (persist=async within 1.5x of the in-memory checkpoint): %.2f: %s\n",
             med[P_ASYNC] / med[P_MEMORY], med[P_ASYNC] <= 1.5 * med[P_MEMORY] ? "met" : "missed");
  /* Both directories restart to the last committed contents. */
  for (int p = P_SYNC; p < P_COUNT; p++) {
    int ok = restart_check(dir[p], f, a, n);
    bench_note("check persist %s: the restart is bit-exact: %s\n", p_name[p], ok ? "OK" : "MISMATCH");
    if (!ok) g_fail = 1;
  }
  if (g_rank == 0)
    for (int p = P_SYNC; p < P_COUNT; p++) bench_rmdir(dir[p]);
  free(a);
  bench_persist_disk();
}
