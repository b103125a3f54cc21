/* recovery: t = 1..f ranks wiped with fuze_inject (the in-job crash: buffers
 * poisoned, committed copies and hosted parity destroyed), then fuze_recover,
 * timed with MPI_Wtime around the call (max over ranks). One array of
 * doubles per rank (--domain rank or node, spares=0); the victims are spread
 * over the domains: every rank of domain (1 + i * nd / t) mod nd, i < t (with
 * domain=rank, rank (1 + i * np / t) mod np). Before every repetition the array gets new
 * contents and is committed (not timed); after it, every rank checks that it
 * holds exactly the committed contents (exit status 1 otherwise). Fusion and
 * replication run side by side (two contexts) and alternate.
 *
 * Bytes moved per recovered byte: fuze has no counter of the bytes its
 * reductions move, so the traffic is computed from the plan: every lost member
 * (primary decoded, or backup re-encoded) of a block of k primaries is one
 * reduction of the block's fused size towards it over the k members that
 * contribute (decode: the k chosen survivors; re-encode: the k primaries;
 * fuze__reduce_to leaves out the members whose coefficient is 0), in which
 * each contributor sends the full size once: k * fused bytes (equal sizes).
 * The recovered bytes are measured: the sum of fuze_get_stats().recovered_bytes. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static void fill(double *a, size_t n, int seed) {
  for (size_t i = 0; i < n; i++) a[i] = (double)i * 0.5 + 1e9 * g_rank + 1e12 * seed;
}

static uint64_t verify(const double *a, size_t n, int seed) {
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += a[i] != (double)i * 0.5 + 1e9 * g_rank + 1e12 * seed;
  return bad;
}

/* Reduction traffic of a recovery, from the plan (see the header). */
static uint64_t modeled_traffic(const fuze_plan *p, const int *lost, uint64_t fused) {
  uint64_t total = 0;
  for (int b = 0; b < p->nblocks; b++) {
    int k = p->block_start[b + 1] - p->block_start[b], nl = 0;
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) nl += lost[p->members[x]];
    for (int j = 0; j < p->f; j++) nl += lost[p->hosts[b * p->f + j]];
    total += (uint64_t)nl * (uint64_t)k * fused;
  }
  return total;
}

void bench_recovery(void) {
  int np = g_size, nd = g_ndom, reps = g_opt.reps;
  int F = g_opt.rec_f ? g_opt.rec_f : (nd - 1 < 3 ? nd - 1 : 3);
  size_t bytes = g_opt.rec_size / 8 * 8, n = bytes / 8;
  char sz[32];
  bench_fmt_size(bytes, sz, sizeof sz);
  if (F < 1 || F >= nd) {
    for (int mode = 0; mode < M_COUNT; mode++)
      bench_row_na("recovery", "t=1", bench_mode_name[mode], "ms", "needs domains > f >= 1");
    bench_table("recovery");
    return;
  }
  /* Both codes side by side (two contexts, one array each), alternating. */
  double *a[M_COUNT];
  int *lost = calloc((size_t)np, sizeof *lost);
  fuze_ctx *ctx[M_COUNT];
  MPI_Comm app[M_COUNT];
  fuze_plan plan[M_COUNT];
  for (int mode = 0; mode < M_COUNT; mode++) {
    char base[128];
    snprintf(base, sizeof base, "faults=%d,domain=%s,code=%s", F, bench_domain(), bench_mode_code[mode]);
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, base, &ctx[mode], &app[mode]));
    memset(&plan[mode], 0, sizeof plan[mode]);
    if (bench_plan(np, 0, F, mode, &plan[mode])) bench_check(NULL, FUZE_ERR_CONFIG, "fuze__plan_build");
    a[mode] = bench_alloc(bytes);
    fill(a[mode], n, 0);
    BENCH_CK(ctx[mode], fuze_protect(ctx[mode], "bench.rec", a[mode], n, MPI_DOUBLE, NULL));
  }
  for (int t = 1; t <= F; t++) {
    int *victims = calloc((size_t)np, sizeof *victims), nv = 0;
    if (!victims) bench_check(NULL, FUZE_ERR_NOMEM, "calloc");
    memset(lost, 0, sizeof *lost * (size_t)np);
    for (int i = 0; i < t; i++)
      for (int r = 0; r < np; r++)
        if (g_dom[r] == (1 + i * nd / t) % nd) lost[r] = 1;
    for (int r = 0; r < np; r++)
      if (lost[r]) victims[nv++] = r;
    double ms[M_COUNT][BENCH_MAX_REPS], per[M_COUNT][BENCH_MAX_REPS], restored[M_COUNT][BENCH_MAX_REPS];
    for (int r = 0; r < reps; r++)
      for (int q = 0; q < M_COUNT; q++) {
        int mode = (r + q) % M_COUNT, seed = 100 * t + r + 1;
        fuze_ctx *c = ctx[mode];
        fill(a[mode], n, seed);
        BENCH_CK(c, fuze_checkpoint(c));
        fuze_stats s0, s1;
        BENCH_CK(c, fuze_get_stats(c, &s0));
        BENCH_CK(c, fuze_inject(c, victims, nv));
        MPI_Barrier(app[mode]);
        double t0 = MPI_Wtime();
        int rc = fuze_recover(c);
        double el = MPI_Wtime() - t0;
        BENCH_CK(c, rc);
        BENCH_CK(c, fuze_get_stats(c, &s1));
        ms[mode][r] = 1e3 * bench_max(app[mode], el);
        uint64_t rec = bench_sum_u64(app[mode], s1.recovered_bytes - s0.recovered_bytes);
        uint64_t bad = bench_sum_u64(app[mode], (rc == FUZE_RECOVERED ? 0 : 1) + verify(a[mode], n, seed));
        if (bad) {
          bench_note("check recovery t=%d %s rep %d: %llu wrong doubles (or no FUZE_RECOVERED): "
                     "MISMATCH\n", t, bench_mode_name[mode], r, (unsigned long long)bad);
          g_fail = 1;
        }
        restored[mode][r] = (double)rec;
        per[mode][r] = rec ? (double)modeled_traffic(&plan[mode], lost, bytes) / (double)rec : 0;
      }
    free(victims);
    char param[96];
    snprintf(param, sizeof param, "t=%d f=%d size=%s", t, F, sz);
    for (int mode = 0; mode < M_COUNT; mode++) {
      bench_row("recovery", param, bench_mode_name[mode], "ms", ms[mode], reps);
      bench_row("recovery_restored", param, bench_mode_name[mode], "B", restored[mode], reps);
      bench_row("recovery_bytes", param, bench_mode_name[mode], "B/B", per[mode], reps);
    }
  }
  for (int mode = 0; mode < M_COUNT; mode++) {
    fuze__plan_free(&plan[mode]);
    BENCH_CK(ctx[mode], fuze_finalize(&ctx[mode]));
    MPI_Comm_free(&app[mode]);
    free(a[mode]);
  }
  free(lost);
  bench_table("recovery: fuze_recover time after t wiped ranks (max over ranks); bytes restored "
              "(decoded primaries + re-encoded backups, all ranks); reduction traffic per "
              "restored byte (computed from the plan)");
  char param[96];
  snprintf(param, sizeof param, "t=1 f=%d size=%s", F, sz);
  double r = bench_median("recovery", param, "fusion") / bench_median("recovery", param, "replicate");
  if (r == r)
    bench_note("recovery goal (t=1: fusion <= 3x replication's time): %.3g: %s\n", r,
               r <= 3 ? "met" : "missed");
}
