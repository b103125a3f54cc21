/* concurrency (Theorem 3): aggregate update rate of k primaries that share
 * one backup. The first k + 1 world ranks run fuze with faults=1, spares=1,
 * domain=rank, block=k: one block of k primaries whose backup sits on the
 * spare rank (replication: k blocks of one primary; the planner spreads their
 * copies over the spare and the other primaries). Every primary updates
 * values of its own map (sync=op: one accumulate and flush per backup per
 * operation) during the same time window (--conc-time); the rate is the
 * operations of all primaries / the longest loop.
 * Rows: the default fine-grained path (accumulates under the shared lock_all)
 * and lock=exclusive (the window-wide exclusive-lock switch); if the library
 * does not know that key yet, the row says unavailable. The other ranks sleep
 * in a non-spinning barrier so they do not steal the cores. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define PRELOAD 256

/* Every primary updates its values for the same wall-clock window of
 * `secs` seconds (aligned by a barrier), so that all of them really overlap
 * even on oversubscribed cores; the rate is all their operations over the
 * longest loop. */
static double run_updates(fuze_ctx *ctx, MPI_Comm app, fuze_map *m, double secs, int rep) {
  unsigned char val[64];
  memset(val, rep + 1, sizeof val);
  MPI_Barrier(app);
  double t0 = MPI_Wtime(), t = 0;
  uint64_t ops = 0;
  for (;;) {
    for (int i = 0; i < 64; i++, ops++) {
      uint64_t key = ((uint64_t)g_rank << 40) | (uint64_t)(ops % PRELOAD);
      val[ops % 64] ^= (unsigned char)(ops + 1);
      BENCH_CK(ctx, fuze_map_put(m, &key, val));
    }
    if ((t = MPI_Wtime() - t0) >= secs) break;
  }
  return (double)bench_sum_u64(app, ops) / bench_max(app, t);
}

void bench_concurrency(void) {
  int reps = g_opt.reps;
  double secs = g_opt.conc_secs;
  int lock_unavailable = 0;
  char lock_why[96] = "";
  for (int x = 0; x < g_opt.n_conc_k; x++) {
    int k = g_opt.conc_k[x];
    for (int lock = 0; lock < 2; lock++) {
      char param[96], why[96];
      snprintf(param, sizeof param, "k=%d lock=%s", k, lock ? "exclusive" : "shared");
      if (k + 1 > g_size) {
        snprintf(why, sizeof why, "needs np >= %d", k + 1);
        for (int mode = 0; mode < M_COUNT; mode++)
          bench_row_na("concurrency", param, bench_mode_name[mode], "ops/s", why);
        continue;
      }
      MPI_Comm sub;
      MPI_Comm_split(MPI_COMM_WORLD, g_rank <= k ? 0 : MPI_UNDEFINED, g_rank, &sub);
      /* The spare rank serves inside fuze_init until finalize, so two
       * contexts cannot live side by side: each repetition starts a fresh
       * one per code, the codes alternating. */
      double rate[M_COUNT][BENCH_MAX_REPS];
      int avail[M_COUNT] = {1, 1};
      for (int r = 0; sub != MPI_COMM_NULL && r < reps; r++)
        for (int q = 0; q < M_COUNT; q++) {
          int mode = (r + q) % M_COUNT;
          if (!avail[mode]) continue;
          char base[192];
          snprintf(base, sizeof base,
                   "faults=1,spares=1,domain=rank,block=%d,code=%s,sync=op,capacity=%d%s", k,
                   bench_mode_code[mode], PRELOAD, lock ? ",lock=exclusive" : "");
          fuze_ctx *ctx = NULL;
          MPI_Comm app = MPI_COMM_NULL;
          int rc = bench_init(sub, base, &ctx, &app);
          if (rc == FUZE_ERR_CONFIG && lock) {
            /* Same status on every rank of sub (fuze_init agrees). */
            const char *msg = fuze_last_error(NULL);
            snprintf(why, sizeof why, "%s",
                     strstr(msg, "unknown key 'lock'") ? "fuze_init: unknown key 'lock'" : "lock=exclusive refused");
            if (!lock_unavailable) snprintf(lock_why, sizeof lock_why, "%s", msg);
            lock_unavailable = 1;
            avail[mode] = 0;
            continue;
          }
          BENCH_CK(NULL, rc);
          if (!ctx) continue; /* the spare rank: fuze_init served until finalize */
          fuze_map *m;
          BENCH_CK(ctx, fuze_map_create(ctx, "bench.conc", 8, 64, &m));
          unsigned char val[64] = {0};
          for (int i = 0; i < PRELOAD; i++) {
            uint64_t key = ((uint64_t)g_rank << 40) | (uint64_t)i;
            BENCH_CK(ctx, fuze_map_put(m, &key, val));
          }
          BENCH_CK(ctx, fuze_checkpoint(ctx));
          rate[mode][r] = run_updates(ctx, app, m, secs, r);
          BENCH_CK(ctx, fuze_finalize(&ctx));
          MPI_Comm_free(&app);
        }
      for (int mode = 0; sub != MPI_COMM_NULL && mode < M_COUNT; mode++) {
        if (avail[mode]) bench_row("concurrency", param, bench_mode_name[mode], "ops/s", rate[mode], reps);
        else bench_row_na("concurrency", param, bench_mode_name[mode], "ops/s", why);
      }
      if (sub != MPI_COMM_NULL) MPI_Comm_free(&sub);
      bench_idle_barrier(MPI_COMM_WORLD);
    }
  }
  bench_table("concurrency: aggregate map updates per second of k primaries sharing one "
              "backup (faults=1, spares=1, sync=op)");
  if (lock_unavailable) bench_note("note: lock=exclusive unavailable: %s\n", lock_why);
}
