/* scrub: the cost of fuze_verify (recompute every block's parity from its
 * members' committed state, compare with every backup's committed parity),
 * in seconds per protected GiB, for fusion and replication side by side (two
 * contexts, alternating repetitions). One array of --scrub-size bytes per
 * rank, domain=rank, f = --scrub-faults. The timed call runs right after a
 * checkpoint, on a clean epoch: the figure is the price of a routine scrub
 * (finding nothing). Time is MPI_Wtime around the call, max over ranks.
 *
 * Also reported: bytes compared per protected byte (from the report: every
 * member's committed bytes plus every backup's parity, so about 1 + f/k for
 * fusion with k primaries per block and 1 + f for replication), and the
 * memcpy floor of one pass over the protected bytes on one rank.
 *
 * Check (exit status 1 on failure): the clean scrubs return FUZE_SUCCESS with
 * no mismatch; then an injected bit flip (inject=corrupt after the next
 * checkpoint, in rank 1's committed copy) is found and, with f >= 2, repaired
 * (FUZE_RECOVERED) or, with f = 1, reported (FUZE_ERR_CORRUPT). */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

void bench_scrub(void) {
  int np = g_size, reps = g_opt.reps;
  int F = g_opt.scrub_f ? g_opt.scrub_f : (np - 1 < 2 ? np - 1 : 2);
  size_t bytes = g_opt.scrub_size / 8 * 8, n = bytes / 8;
  char sz[32], param[96];
  bench_fmt_size(bytes, sz, sizeof sz);
  snprintf(param, sizeof param, "f=%d size=%s", F, sz);
  if (F < 1 || F >= np) {
    for (int mode = 0; mode < M_COUNT; mode++)
      bench_row_na("scrub", param, bench_mode_name[mode], "s/GiB", "needs np > f >= 1");
    bench_table("scrub");
    return;
  }
  double *a[M_COUNT];
  fuze_ctx *ctx[M_COUNT];
  MPI_Comm app[M_COUNT];
  int victim = 1 % np;
  for (int mode = 0; mode < M_COUNT; mode++) {
    char base[256];
    /* checkpoint 1 is the clean epoch; the corruption follows checkpoint 2 */
    snprintf(base, sizeof base, "faults=%d,domain=rank,code=%s,"
             "inject=corrupt:rank=%d:struct=bench.scrub:at=checkpoint:2", F, bench_mode_code[mode],
             victim);
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, base, &ctx[mode], &app[mode]));
    a[mode] = bench_alloc(bytes);
    for (size_t i = 0; i < n; i++) a[mode][i] = (double)i * 0.25 + 1e6 * g_rank;
    BENCH_CK(ctx[mode], fuze_protect(ctx[mode], "bench.scrub", a[mode], n, MPI_DOUBLE, NULL));
    BENCH_CK(ctx[mode], fuze_checkpoint(ctx[mode]));
  }
  double t[M_COUNT][BENCH_MAX_REPS], per[M_COUNT][BENCH_MAX_REPS], ratio[M_COUNT][BENCH_MAX_REPS];
  double gib = (double)bytes * np / (double)(1u << 30);
  for (int r = 0; r < reps; r++)
    for (int q = 0; q < M_COUNT; q++) {
      int mode = (r + q) % M_COUNT;
      fuze_verify_report rep;
      MPI_Barrier(app[mode]);
      double t0 = MPI_Wtime();
      int rc = fuze_verify(ctx[mode], &rep);
      double el = bench_max(app[mode], MPI_Wtime() - t0);
      BENCH_CK(ctx[mode], rc);
      if (rc != FUZE_SUCCESS || rep.mismatches) {
        bench_note("check scrub %s rep %d: a clean epoch returned %s with %llu mismatches: "
                   "MISMATCH\n", bench_mode_name[mode], r, fuze_err_name(rc),
                   (unsigned long long)rep.mismatches);
        g_fail = 1;
      }
      t[mode][r] = el;
      per[mode][r] = el / gib;
      ratio[mode][r] = (double)rep.bytes / ((double)bytes * np);
    }
  /* Every rank copies its protected bytes at once: the floor of one pass. */
  double mc[BENCH_MAX_REPS];
  double *dst = bench_alloc(bytes);
  for (int r = 0; r < reps; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    memcpy(dst, a[M_FUSION], bytes);
    mc[r] = bench_max(MPI_COMM_WORLD, MPI_Wtime() - t0) / gib;
  }
  free(dst);
  for (int mode = 0; mode < M_COUNT; mode++) {
    bench_row("scrub", param, bench_mode_name[mode], "s/GiB", per[mode], reps);
    bench_row_hidden("scrub_time", param, bench_mode_name[mode], "s", t[mode], reps);
    bench_row("scrub_bytes", param, bench_mode_name[mode], "B/B", ratio[mode], reps);
  }
  bench_row("scrub", param, "memcpy", "s/GiB", mc, reps);
  /* The check: one flipped bit after the next commit. */
  for (int mode = 0; mode < M_COUNT; mode++) {
    fuze_verify_report rep;
    BENCH_CK(ctx[mode], fuze_checkpoint(ctx[mode]));
    int rc = fuze_verify(ctx[mode], &rep);
    int want = F >= 2 ? FUZE_RECOVERED : FUZE_ERR_CORRUPT;
    int named = rep.nentries >= 1 && (F < 2 || rep.entries[0].rank == victim);
    if (rc != want || rep.mismatches != 1 || !named) {
      bench_note("check scrub %s: a flipped bit gave %s (%llu mismatches, entry rank %d), expected "
                 "%s: MISMATCH\n", bench_mode_name[mode], fuze_err_name(rc),
                 (unsigned long long)rep.mismatches, rep.nentries ? rep.entries[0].rank : -1,
                 fuze_err_name(want));
      g_fail = 1;
    }
    BENCH_CK(ctx[mode], fuze_finalize(&ctx[mode]));
    MPI_Comm_free(&app[mode]);
    free(a[mode]);
  }
  bench_table("scrub: fuze_verify of a clean epoch, seconds per protected GiB (all ranks' "
              "arrays; max over ranks); bytes compared per protected byte; memcpy: one pass "
              "over the protected bytes, every rank at once");
}
