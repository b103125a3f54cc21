/* fti: the peer's geometry. The first --fti-np ranks (default 8) protect
 * --fti-size bytes of doubles each (default 64 MiB) with f = 2 (domain=rank),
 * change every double between checkpoints, and report the checkpoint time,
 * the recovery of one wiped rank, and parity bytes / protected bytes. Fusion
 * and replication run side by side (two contexts, one array each) and
 * alternate; their ratios are the result. Storage rows: fti_storage =
 * (committed copy + committed parity) / protected; fti_storage_peak adds
 * fuze's working parity (always allocated).
 *
 * FTI's own figures (shared/PLATFORM.md) were measured on another day under
 * another load, and the load moves absolute times by 4x or more: they are
 * printed as references with their provenance, never as rows of the table,
 * ratios against this run, or goals met or missed. Comparing fuze with FTI
 * takes both measured in the same window. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

/* PLATFORM.md, "The peer to beat (FTI, measured here)". */
#define FTI_CKPT_S 1.93       /* 8 ranks x 64 MiB, median */
#define FTI_RESTART_S 1.6     /* rebuilding one lost node of 4 ranks x 64 MiB */
#define FTI_STORAGE 2.0       /* storage / protected bytes */
#define FTI_STORAGE_PEAK 4.0  /* at peak */
#define FTI_PROVENANCE                                                                       \
  "source: ../shared/PLATFORM.md (\"The peer to beat\"); machine: Debian 12, 2 vCPU AMD "    \
  "EPYC (Zen 5), Open MPI 4.1.4, \"a quiet machine\"; date: not recorded there (another day "  \
  "than this run); FTI 1.6, Reed-Solomon level L3, group size 4, files on tmpfs"

/* FTI's constants with where they come from; nothing is divided by them. */
static void print_references(void) {
  bench_note("\nFTI reference figures: constants, NOT measured in this run and not comparable "
             "with it\n  (%s)\n", FTI_PROVENANCE);
  bench_note("  FTI checkpoint of 8 ranks x 64 MiB: %.2f s (median)\n", FTI_CKPT_S);
  bench_note("  FTI restart rebuilding one lost node (4 ranks x 64 MiB): %.1f s\n", FTI_RESTART_S);
  bench_note("  FTI storage / protected bytes: %.1fx (%.1fx at peak)\n", FTI_STORAGE, FTI_STORAGE_PEAK);
  bench_note("  The machine's load moves absolute times by 4x or more: compare fuze with FTI only "
             "when both are measured in the same window.\n");
}

/* The ratios this run measured: fusion against replication, same job. */
static void print_ratios(const char *param) {
  static const struct { const char *bench, *what; } r[] = {
      {"fti_checkpoint", "checkpoint"},
      {"fti_recovery", "recovery of one wiped rank"},
      {"fti_parity", "parity / protected"},
      {"fti_storage", "committed copy + committed parity / protected"},
      {"fti_storage_peak", "... + working parity (always allocated)"},
  };
  bench_note("\nfusion vs replication, both measured in this run (fusion / replicate):\n");
  for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
    double f = bench_median(r[i].bench, param, "fusion");
    double p = bench_median(r[i].bench, param, "replicate");
    bench_note("  %s: %.3g / %.3g = %.3gx\n", r[i].what, f, p, f / p);
  }
}

static void fill(double *a, size_t n, int seed) {
  for (size_t i = 0; i < n; i++) a[i] = (double)i + 1e9 * g_rank + 1e12 * seed;
}

static uint64_t verify(const double *a, size_t n, int seed) {
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += a[i] != (double)i + 1e9 * g_rank + 1e12 * seed;
  return bad;
}

void bench_fti(void) {
  int NP = g_opt.fti_np, F = g_opt.fti_f, reps = g_opt.reps;
  size_t bytes = g_opt.fti_size / 8 * 8, n = bytes / 8;
  char sz[32], param[96];
  bench_fmt_size(bytes, sz, sizeof sz);
  snprintf(param, sizeof param, "np=%d size=%s f=%d", NP, sz, F);
  if (g_size < NP || F >= NP) {
    char why[64];
    snprintf(why, sizeof why, "needs np >= %d and f < %d", NP, NP);
    for (int mode = 0; mode < M_COUNT; mode++) bench_row_na("fti_checkpoint", param, bench_mode_name[mode], "s", why);
    bench_table("fti");
    return;
  }
  MPI_Comm sub;
  MPI_Comm_split(MPI_COMM_WORLD, g_rank < NP ? 0 : MPI_UNDEFINED, g_rank, &sub);
  if (sub != MPI_COMM_NULL) {
    int victim = NP / 2 - 1 > 0 ? NP / 2 - 1 : 1;
    /* Both codes side by side (two contexts, one array each), alternating. */
    double *a[M_COUNT], ck[M_COUNT][BENCH_MAX_REPS], rec[M_COUNT][BENCH_MAX_REPS];
    double parity[M_COUNT], steady[M_COUNT], peak[M_COUNT];
    fuze_ctx *ctx[M_COUNT];
    MPI_Comm app[M_COUNT];
    for (int mode = 0; mode < M_COUNT; mode++) {
      char base[128];
      snprintf(base, sizeof base, "faults=%d,domain=rank,code=%s", F, bench_mode_code[mode]);
      BENCH_CK(NULL, bench_init(sub, base, &ctx[mode], &app[mode]));
      a[mode] = bench_alloc(bytes);
      fill(a[mode], n, 0);
      BENCH_CK(ctx[mode], fuze_protect(ctx[mode], "bench.fti", a[mode], n, MPI_DOUBLE, NULL));
      fuze_stats st;
      BENCH_CK(ctx[mode], fuze_get_stats(ctx[mode], &st));
      uint64_t mine[4] = {st.protected_bytes, st.parity_bytes, st.working_bytes, st.shadow_bytes}, sum[4];
      MPI_Allreduce(mine, sum, 4, MPI_UINT64_T, MPI_SUM, app[mode]);
      parity[mode] = (double)sum[1] / (double)sum[0];
      steady[mode] = (double)(sum[1] + sum[3]) / (double)sum[0];
      peak[mode] = (double)(sum[1] + sum[2] + sum[3]) / (double)sum[0];
    }
    int seed = 1;
    for (int r = 0; r < reps; r++, seed++)
      for (int q = 0; q < M_COUNT; q++) {
        int mode = (r + q) % M_COUNT;
        fill(a[mode], n, seed); /* every double changes */
        MPI_Barrier(app[mode]);
        double t0 = MPI_Wtime();
        BENCH_CK(ctx[mode], fuze_checkpoint(ctx[mode]));
        ck[mode][r] = bench_max(app[mode], MPI_Wtime() - t0);
      }
    for (int r = 0; r < reps; r++, seed++)
      for (int q = 0; q < M_COUNT; q++) {
        int mode = (r + q) % M_COUNT;
        fuze_ctx *c = ctx[mode];
        fill(a[mode], n, seed);
        BENCH_CK(c, fuze_checkpoint(c));
        BENCH_CK(c, fuze_inject(c, &victim, 1));
        MPI_Barrier(app[mode]);
        double t0 = MPI_Wtime();
        int rc = fuze_recover(c);
        double el = MPI_Wtime() - t0;
        BENCH_CK(c, rc);
        rec[mode][r] = bench_max(app[mode], el);
        uint64_t bad = bench_sum_u64(app[mode], (rc == FUZE_RECOVERED ? 0 : 1) + verify(a[mode], n, seed));
        if (bad) {
          bench_note("check fti recovery %s rep %d: %llu wrong doubles: MISMATCH\n",
                     bench_mode_name[mode], r, (unsigned long long)bad);
          g_fail = 1;
        }
      }
    for (int mode = 0; mode < M_COUNT; mode++) {
      bench_row("fti_checkpoint", param, bench_mode_name[mode], "s", ck[mode], reps);
      bench_row("fti_recovery", param, bench_mode_name[mode], "s", rec[mode], reps);
      bench_row("fti_parity", param, bench_mode_name[mode], "x", &parity[mode], 1);
      bench_row("fti_storage", param, bench_mode_name[mode], "x", &steady[mode], 1);
      bench_row("fti_storage_peak", param, bench_mode_name[mode], "x", &peak[mode], 1);
      BENCH_CK(ctx[mode], fuze_finalize(&ctx[mode]));
      MPI_Comm_free(&app[mode]);
      free(a[mode]);
    }
    MPI_Comm_free(&sub);
  }
  bench_idle_barrier(MPI_COMM_WORLD);
  bench_table("fti: FTI's geometry, fusion and replication measured in this run");
  print_ratios(param);
  print_references();
}
