/* space (Theorem 1): redundancy bytes held by all backups / protected bytes.
 *
 * Planner part (world rank 0, no MPI): fuze__plan_build with domain=rank for
 * n = 2..nmax and f = 1..3; a block's f backups hold f times its largest
 * member, so the predicted backup bytes are sum over blocks of f * max member
 * bytes (replication: blocks of one primary, i.e. f copies of everything).
 *
 * Measured part (the job's own np, domain=rank): arrays and maps of equal and
 * unequal sizes. Arrays: the sum over ranks of fuze_get_stats().parity_bytes
 * must equal the prediction exactly; maps: the sum of fuze_fused_info().nodes
 * must equal sum over blocks of f * max member pairs, with no stray nodes.
 * A mismatch fails the run (exit status 1). Memory per rank (space_mem) is
 * from fuze_get_stats: arrays (protected + committed copy + committed parity
 * + working parity) / protected; maps (pairs + committed and working regions,
 * which are allocated for `capacity` slots, here = the largest map) / pairs. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 8

static const char *const layout_name[2] = {"equal", "unequal"};

/* Bytes (or pairs) of rank r: equal = the largest; unequal = 1/4, 2/4, 3/4,
 * 4/4 of it in turn. */
static uint64_t size_of(int layout, int r, uint64_t largest) {
  return layout ? largest * (uint64_t)(1 + r % 4) / 4 : largest;
}

static int build_plan(int n, int f, int mode, fuze_plan *p) { return bench_plan(n, 0, f, mode, p); }

/* sum over blocks of f * max member size */
static uint64_t predicted(const fuze_plan *p, int layout, uint64_t largest) {
  uint64_t total = 0;
  for (int b = 0; b < p->nblocks; b++) {
    uint64_t mx = 0;
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) {
      uint64_t s = size_of(layout, p->members[x], largest);
      if (s > mx) mx = s;
    }
    total += (uint64_t)p->f * mx;
  }
  return total;
}

static void planner_table(void) {
  int nmax = g_opt.space_nmax;
  for (int layout = 0; layout < 2; layout++) {
    bench_note("\n### space (planner): backup bytes / protected bytes, %s sizes%s\n\n",
               layout_name[layout], layout ? " (rank r holds (1 + r mod 4)/4 of the largest)" : "");
    bench_note("| n | f=1 fusion | f=1 replicate | f=2 fusion | f=2 replicate | f=3 fusion | f=3 replicate |\n");
    bench_note("|---|---|---|---|---|---|---|\n");
    for (int n = 2; n <= nmax; n++) {
      bench_note("| %d", n);
      for (int f = 1; f <= 3; f++)
        for (int mode = 0; mode < M_COUNT; mode++) {
          fuze_plan p;
          memset(&p, 0, sizeof p);
          char param[96];
          snprintf(param, sizeof param, "f=%d n=%d layout=%s", f, n, layout_name[layout]);
          if (n <= f || build_plan(n, f, mode, &p)) {
            bench_note(" | -");
            fuze__plan_free(&p);
            continue;
          }
          uint64_t prot = 0;
          for (int r = 0; r < n; r++) prot += size_of(layout, r, 4);
          double v = (double)predicted(&p, layout, 4) / (double)prot;
          bench_row_hidden("space_plan", param, bench_mode_name[mode], "x", &v, 1);
          bench_note(" | %.3f", v);
          fuze__plan_free(&p);
        }
      bench_note(" |\n");
    }
  }
}

static void check(const char *what, const char *param, const char *mode, uint64_t got,
                  uint64_t want) {
  if (got == want) {
    bench_note("check %s %s %s: measured %llu == predicted %llu: OK\n", what, param, mode,
               (unsigned long long)got, (unsigned long long)want);
  } else {
    bench_note("check %s %s %s: measured %llu != predicted %llu: MISMATCH\n", what, param, mode,
               (unsigned long long)got, (unsigned long long)want);
    g_fail = 1;
  }
}

static void measured(void) {
  int np = g_size, fmax = np - 1 < 3 ? np - 1 : 3;
  size_t S = g_opt.space_bytes, vb = g_opt.value;
  long P = g_opt.space_pairs;
  if (fmax < 1) {
    bench_row_na("space", "struct=array-equal", "fusion", "x", "needs np >= 2");
    return;
  }
  bench_note("\n");
  for (int f = 1; f <= fmax; f++) {
    for (int mode = 0; mode < M_COUNT; mode++) {
      char base[160];
      snprintf(base, sizeof base, "faults=%d,domain=rank,code=%s,capacity=%ld", f,
               bench_mode_code[mode], P);
      fuze_ctx *ctx = NULL;
      MPI_Comm app;
      BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, base, &ctx, &app));
      fuze_plan plan;
      memset(&plan, 0, sizeof plan);
      if (build_plan(np, f, mode, &plan)) bench_check(NULL, FUZE_ERR_CONFIG, "fuze__plan_build");
      /* Arrays: one registration at a time, the parity of each is the
       * difference of the counters. */
      unsigned char *bufs[2];
      for (int layout = 0; layout < 2; layout++) {
        size_t bytes = (size_t)size_of(layout, g_rank, S);
        unsigned char *buf = bufs[layout] = bench_alloc(bytes);
        for (size_t i = 0; i < bytes; i++) buf[i] = (unsigned char)(i * 31 + (size_t)g_rank);
        fuze_stats s0, s1;
        BENCH_CK(ctx, fuze_get_stats(ctx, &s0));
        char name[32];
        snprintf(name, sizeof name, "space.array.%s", layout_name[layout]);
        BENCH_CK(ctx, fuze_protect(ctx, name, buf, bytes, MPI_BYTE, NULL));
        BENCH_CK(ctx, fuze_get_stats(ctx, &s1));
        uint64_t mine[4] = {s1.protected_bytes - s0.protected_bytes, s1.parity_bytes - s0.parity_bytes,
                            s1.working_bytes - s0.working_bytes, s1.shadow_bytes - s0.shadow_bytes};
        uint64_t sum[4];
        MPI_Allreduce(mine, sum, 4, MPI_UINT64_T, MPI_SUM, app);
        char param[96];
        snprintf(param, sizeof param, "f=%d n=%d struct=array-%s", f, np, layout_name[layout]);
        check("backup bytes", param, bench_mode_name[mode], sum[1], predicted(&plan, layout, S));
        double v = (double)sum[1] / (double)sum[0];
        bench_row("space", param, bench_mode_name[mode], "x", &v, 1);
        double m = (double)(sum[0] + sum[1] + sum[2] + sum[3]) / (double)sum[0];
        bench_row("space_mem", param, bench_mode_name[mode], "x", &m, 1);
      }
      /* Maps: equal and unequal numbers of pairs. */
      fuze_map *maps[2];
      uint64_t mem[2] = {0, 0}; /* parity + working bytes of each map's regions */
      for (int layout = 0; layout < 2; layout++) {
        fuze_stats s0, s1;
        BENCH_CK(ctx, fuze_get_stats(ctx, &s0));
        char name[32];
        snprintf(name, sizeof name, "space.map.%s", layout_name[layout]);
        BENCH_CK(ctx, fuze_map_create(ctx, name, KEY_BYTES, vb, &maps[layout]));
        long pairs = (long)size_of(layout, g_rank, (uint64_t)P);
        unsigned char *val = bench_alloc(vb);
        for (long i = 0; i < pairs; i++) {
          uint64_t key = ((uint64_t)g_rank << 40) | (uint64_t)i;
          memcpy(val, &key, sizeof key < vb ? sizeof key : vb);
          BENCH_CK(ctx, fuze_map_put(maps[layout], &key, val));
        }
        free(val);
        BENCH_CK(ctx, fuze_get_stats(ctx, &s1));
        mem[layout] = (s1.parity_bytes - s0.parity_bytes) + (s1.working_bytes - s0.working_bytes);
      }
      BENCH_CK(ctx, fuze_checkpoint(ctx));
      BENCH_CK(ctx, fuze_flush(ctx));
      MPI_Barrier(app);
      for (int layout = 0; layout < 2; layout++) {
        char name[32], param[96];
        snprintf(name, sizeof name, "space.map.%s", layout_name[layout]);
        snprintf(param, sizeof param, "f=%d n=%d struct=map-%s", f, np, layout_name[layout]);
        fuze_fused_stats st;
        BENCH_CK(ctx, fuze_fused_info(ctx, name, &st));
        uint64_t pairs = fuze_map_size(maps[layout]);
        uint64_t mine[4] = {st.nodes, st.stray_nodes, pairs, mem[layout]}, sum[4];
        MPI_Allreduce(mine, sum, 4, MPI_UINT64_T, MPI_SUM, app);
        check("fused nodes", param, bench_mode_name[mode], sum[0],
              predicted(&plan, layout, (uint64_t)P));
        check("stray nodes", param, bench_mode_name[mode], sum[1], 0);
        /* Theorem 1's quantity: fused value nodes per protected value. */
        double v = (double)sum[0] / (double)sum[2];
        bench_row("space", param, bench_mode_name[mode], "x", &v, 1);
        double prot = (double)sum[2] * (double)(KEY_BYTES + vb);
        double m = (prot + (double)sum[3]) / prot;
        bench_row("space_mem", param, bench_mode_name[mode], "x", &m, 1);
      }
      fuze__plan_free(&plan);
      BENCH_CK(ctx, fuze_finalize(&ctx));
      MPI_Comm_free(&app);
      free(bufs[0]); /* registered until fuze_finalize */
      free(bufs[1]);
    }
  }
}

void bench_space(void) {
  if (g_rank == 0) planner_table();
  bench_idle_barrier(MPI_COMM_WORLD);
  measured();
  bench_table("space (measured at this job's np): backup bytes / protected bytes (arrays: "
              "parity bytes; maps: fused value nodes / pairs), and memory per rank / protected "
              "bytes (space_mem: buffer + committed copy + committed and working parity; maps: "
              "pairs + allocated fused regions)");
}
