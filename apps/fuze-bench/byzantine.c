/* byzantine (Theorem 7): code=byzantine with f faults (f unfused replicas of
 * every primary + f fused backups per block) next to plain replication with 2f
 * copies (code=replicate, faults=2f), the paper's 2nf backups for f Byzantine
 * faults. One array of doubles per rank (domain=rank).
 *   space: redundancy bytes held by all ranks / protected bytes (byzantine:
 *          replicas + committed parity; replicate: committed copies), measured
 *          with fuze_get_stats and the replica counter; the paper predicts
 *          (nf + f)/n-ish (f + f/k with blocks of k) against 2f;
 *   update: fuze_checkpoint time (max over ranks) with 1% and 100% of the
 *          chunks changed; byzantine also compares every copy by crc64 and
 *          audits each block's parity at every checkpoint.
 *   map: map put and update operations per second per rank (sync=op, all
 *          ranks at once) and the checkpoint after them: byzantine sends each
 *          operation to the f fused backups and refreshes the f replicas of
 *          the committed map at the checkpoint; replicate-2f sends each
 *          operation to 2f copies. */
#include "bench.h"

#include "proto/byzantine.h" /* fuze__byz_replica_bytes (src/) */

#include <stdlib.h>
#include <string.h>

static void one_f(int f, size_t bytes) {
  int np = g_size, reps = g_opt.reps;
  char sz[32], param[96];
  bench_fmt_size(bytes, sz, sizeof sz);
  const char *mode[2] = {"byzantine", "replicate-2f"};
  int faults[2] = {f, 2 * f};
  double space[2] = {0, 0}, t1[2][BENCH_MAX_REPS], t100[2][BENCH_MAX_REPS];
  int ok[2] = {np > f, np > 2 * f};
  size_t n = bytes / 8, chunk = g_opt.chunk, nch = (bytes + chunk - 1) / chunk;
  for (int m = 0; m < 2; m++) {
    if (!ok[m]) continue;
    char base[160];
    snprintf(base, sizeof base, "faults=%d,domain=rank,code=%s", faults[m],
             m ? "replicate" : "byzantine");
    fuze_ctx *ctx;
    MPI_Comm app;
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, base, &ctx, &app));
    double *a = bench_alloc(bytes);
    for (size_t i = 0; i < n; i++) a[i] = (double)i + 1e6 * g_rank;
    BENCH_CK(ctx, fuze_protect(ctx, "bench.byz", a, n, MPI_DOUBLE, NULL));
    BENCH_CK(ctx, fuze_checkpoint(ctx)); /* replicas are filled at a checkpoint */
    fuze_stats st;
    BENCH_CK(ctx, fuze_get_stats(ctx, &st));
    uint64_t red = st.parity_bytes + fuze__byz_replica_bytes(ctx);
    space[m] = (double)bench_sum_u64(app, red) / (double)bench_sum_u64(app, st.protected_bytes);
    for (int r = 0; r < reps; r++)
      for (int pct = 0; pct < 2; pct++) {
        size_t nchg = pct ? nch : (nch / 100 ? nch / 100 : 1);
        for (size_t c = 0; c < nchg; c++) {
          size_t off = (c * nch / nchg) * chunk, len = bytes - off < chunk ? bytes - off : chunk;
          for (size_t d = 0; d < len / 8; d++) a[off / 8 + d] += 1.0;
        }
        MPI_Barrier(app);
        double t0 = MPI_Wtime();
        int rc = fuze_checkpoint(ctx);
        double el = bench_max(app, MPI_Wtime() - t0);
        BENCH_CK(ctx, rc);
        if (rc != FUZE_SUCCESS) {
          bench_note("check byzantine %s: a clean checkpoint returned %s: MISMATCH\n", mode[m],
                     fuze_err_name(rc));
          g_fail = 1;
        }
        (pct ? t100 : t1)[m][r] = el;
      }
    fuze_finalize(&ctx);
    MPI_Comm_free(&app);
    free(a);
  }
  snprintf(param, sizeof param, "f=%d size=%s", f, sz);
  for (int m = 0; m < 2; m++) {
    if (!ok[m]) {
      bench_row_na("byzantine_space", param, mode[m], "x", "needs more ranks");
      continue;
    }
    bench_row_hidden("byzantine_space", param, mode[m], "x", &space[m], 1);
    bench_row_hidden("byzantine_ckpt_1pct", param, mode[m], "s", t1[m], reps);
    bench_row_hidden("byzantine_ckpt_100pct", param, mode[m], "s", t100[m], reps);
  }
  char cell[6][48];
  for (int m = 0; m < 2; m++) {
    if (!ok[m]) {
      snprintf(cell[m], 48, "-");
      snprintf(cell[2 + m], 48, "-");
      snprintf(cell[4 + m], 48, "-");
      continue;
    }
    snprintf(cell[m], 48, "%.3f", space[m]);
    snprintf(cell[2 + m], 48, "%.4f", bench_median_of(t1[m], reps));
    snprintf(cell[4 + m], 48, "%.4f", bench_median_of(t100[m], reps));
  }
  bench_note("| %d | %s | %s | %s | %s | %s | %s | %s |\n", f, sz, cell[0], cell[1], cell[2],
             cell[3], cell[4], cell[5]);
}

/* Map operations: byzantine (f) vs replicate (2f), same ranks, alternating. */
static void map_rates(int f) {
  int np = g_size, reps = g_opt.reps;
  long n = g_opt.ops;
  size_t vb = g_opt.value < 8 ? 8 : g_opt.value;
  const char *mode[2] = {"byzantine", "replicate-2f"};
  int faults[2] = {f, 2 * f};
  char param[96];
  snprintf(param, sizeof param, "f=%d ops=%ld value=%zu", f, n, vb);
  if (np <= 2 * f) {
    for (int m = 0; m < 2; m++) bench_row_na("byzantine_map_put", param, mode[m], "ops/s", "needs np > 2f");
    return;
  }
  double put[2][BENCH_MAX_REPS], upd[2][BENCH_MAX_REPS], ck[2][BENCH_MAX_REPS];
  unsigned char *val = bench_alloc(vb);
  for (int m = 0; m < 2; m++) {
    char base[160];
    snprintf(base, sizeof base, "faults=%d,domain=rank,code=%s,capacity=%ld", faults[m],
             m ? "replicate" : "byzantine", n);
    fuze_ctx *ctx;
    MPI_Comm app;
    fuze_map *map;
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, base, &ctx, &app));
    BENCH_CK(ctx, fuze_map_create(ctx, "bench.byzmap", 8, vb, &map));
    for (int r = 0; r < reps; r++) {
      for (int phase = 0; phase < 2; phase++) {
        MPI_Barrier(app);
        double t0 = MPI_Wtime();
        for (long i = 0; i < n; i++) {
          uint64_t key = ((uint64_t)g_rank << 40) | (uint64_t)i;
          memcpy(val, &key, sizeof key);
          val[vb - 1] = (unsigned char)(r * 2 + phase);
          BENCH_CK(ctx, fuze_map_put(map, &key, val));
        }
        (phase ? upd : put)[m][r] = (double)n / bench_max(app, MPI_Wtime() - t0);
      }
      MPI_Barrier(app);
      double t0 = MPI_Wtime();
      BENCH_CK(ctx, fuze_checkpoint(ctx));
      ck[m][r] = bench_max(app, MPI_Wtime() - t0);
      for (long i = 0; i < n; i++) { /* empty again for the next repetition */
        uint64_t key = ((uint64_t)g_rank << 40) | (uint64_t)i;
        BENCH_CK(ctx, fuze_map_remove(map, &key));
      }
      BENCH_CK(ctx, fuze_checkpoint(ctx));
    }
    fuze_finalize(&ctx);
    MPI_Comm_free(&app);
  }
  free(val);
  for (int m = 0; m < 2; m++) {
    bench_row_hidden("byzantine_map_put", param, mode[m], "ops/s", put[m], reps);
    bench_row_hidden("byzantine_map_update", param, mode[m], "ops/s", upd[m], reps);
    bench_row_hidden("byzantine_map_ckpt", param, mode[m], "s", ck[m], reps);
  }
  bench_note("| %d | %ld | %.0f | %.0f | %.0f | %.0f | %.4f | %.4f |\n", f, n,
             bench_median_of(put[0], reps), bench_median_of(put[1], reps),
             bench_median_of(upd[0], reps), bench_median_of(upd[1], reps),
             bench_median_of(ck[0], reps), bench_median_of(ck[1], reps));
}

void bench_byzantine(void) {
  size_t bytes = g_opt.byz_size / 8 * 8;
  bench_note("\n### byzantine: code=byzantine (f) vs code=replicate (2f), %d ranks, domain=rank\n\n",
             g_size);
  bench_note("| f | size/rank | space byzantine (x) | space replicate 2f (x) | ckpt 1%% byzantine (s) "
             "| ckpt 1%% replicate 2f (s) | ckpt 100%% byzantine (s) | ckpt 100%% replicate 2f (s) |\n");
  bench_note("|---|---|---|---|---|---|---|---|\n");
  for (int f = 1; f <= 2; f++) one_f(f, bytes);
  bench_note("\n### byzantine maps: operations per second per rank (sync=op) and the checkpoint after "
             "them, code=byzantine (f) vs code=replicate (2f)\n\n");
  bench_note("| f | ops/rank | put byzantine | put replicate 2f | update byzantine | update replicate 2f "
             "| ckpt byzantine (s) | ckpt replicate 2f (s) |\n");
  bench_note("|---|---|---|---|---|---|---|---|\n");
  for (int f = 1; f <= 2; f++) map_rates(f);
}
