/* checkpoint: fuze_checkpoint of one array of doubles per rank with 0%, 1%,
 * 10% and 100% of its chunks changed (a changed chunk has every double
 * changed; chunks are spread evenly; at least one when the fraction is not 0).
 * Reports the commit time (max over ranks), the parity bytes sent (sum over
 * ranks of the fuze_get_stats().sent_bytes difference) per checkpoint and per
 * changed byte, and the floor: a memcpy of the changed bytes on every rank at
 * once. Fusion and replication protect the same array side by side (two
 * contexts) and commit each change in alternating order. Checks: a checkpoint with nothing changed sends no parity byte (exit
 * status 1 otherwise). */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t n_changed(double frac, size_t nch) {
  if (frac <= 0) return 0;
  size_t c = (size_t)llround(frac * (double)nch);
  if (c < 1) c = 1;
  return c > nch ? nch : c;
}

static void chunk_span(size_t c, size_t chunk, size_t bytes, size_t *off, size_t *len) {
  *off = c * chunk;
  *len = bytes - *off < chunk ? bytes - *off : chunk;
}

static void touch(double *a, size_t bytes, size_t chunk, size_t nch, size_t nchg, double by) {
  for (size_t i = 0; i < nchg; i++) {
    size_t off, len;
    chunk_span(i * nch / nchg, chunk, bytes, &off, &len);
    double *p = a + off / 8;
    for (size_t d = 0; d < len / 8; d++) p[d] += by;
  }
}

static double floor_copy(MPI_Comm comm, const double *a, double *dst, size_t bytes, size_t chunk,
                         size_t nch, size_t nchg) {
  MPI_Barrier(comm);
  double t0 = MPI_Wtime();
  for (size_t i = 0; i < nchg; i++) {
    size_t off, len;
    chunk_span(i * nch / nchg, chunk, bytes, &off, &len);
    memcpy((char *)dst + off, (const char *)a + off, len);
  }
  return bench_max(comm, MPI_Wtime() - t0);
}

static void param_of(char *buf, size_t len, size_t bytes, double frac, int f) {
  char sz[32];
  bench_fmt_size(bytes, sz, sizeof sz);
  snprintf(buf, len, "size=%s changed=%g%% f=%d", sz, frac * 100, f);
}

void bench_checkpoint(void) {
  int reps = g_opt.reps;
  size_t chunk = g_opt.chunk;
  for (int si = 0; si < g_opt.n_ckpt_size; si++) {
    size_t bytes = g_opt.ckpt_size[si] / 8 * 8, nch = (bytes + chunk - 1) / chunk;
    double *a = bench_alloc(bytes), *dst = bench_alloc(bytes);
    for (size_t i = 0; i < bytes / 8; i++) a[i] = (double)i + 1e9 * g_rank;
    /* The floor, once per fraction (it does not depend on f or the code). */
    double floor_ms[BENCH_MAX_LIST][BENCH_MAX_REPS];
    for (int c = 0; c < g_opt.n_changed; c++)
      for (int r = 0; r < reps; r++)
        floor_ms[c][r] = 1e3 * floor_copy(MPI_COMM_WORLD, a, dst, bytes, chunk, nch,
                                          n_changed(g_opt.changed[c], nch));
    for (int fi = 0; fi < g_opt.n_ckpt_f; fi++) {
      int f = g_opt.ckpt_f[fi];
      char param[96];
      if (f >= g_ndom) {
        for (int c = 0; c < g_opt.n_changed; c++) {
          param_of(param, sizeof param, bytes, g_opt.changed[c], f);
          for (int mode = 0; mode < M_COUNT; mode++)
            bench_row_na("checkpoint", param, bench_mode_name[mode], "ms", "needs more domains than f");
        }
        continue;
      }
      /* Both codes protect the same array side by side; after each change
       * both commit it, in alternating order. */
      fuze_ctx *ctx[M_COUNT];
      MPI_Comm app[M_COUNT];
      for (int mode = 0; mode < M_COUNT; mode++) {
        char base[128];
        snprintf(base, sizeof base, "faults=%d,domain=%s,code=%s", f, bench_domain(),
                 bench_mode_code[mode]);
        BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, base, &ctx[mode], &app[mode]));
        BENCH_CK(ctx[mode], fuze_protect(ctx[mode], "bench.ckpt", a, bytes / 8, MPI_DOUBLE, NULL));
      }
      for (int c = 0; c < g_opt.n_changed; c++) {
        double frac = g_opt.changed[c];
        size_t nchg = n_changed(frac, nch);
        uint64_t changed_bytes = 0;
        for (size_t i = 0; i < nchg; i++) {
          size_t off, len;
          chunk_span(i * nch / nchg, chunk, bytes, &off, &len);
          changed_bytes += len;
        }
        changed_bytes = bench_sum_u64(MPI_COMM_WORLD, changed_bytes);
        double ms[M_COUNT][BENCH_MAX_REPS], sent[M_COUNT][BENCH_MAX_REPS], per[M_COUNT][BENCH_MAX_REPS];
        for (int r = 0; r < reps; r++) {
          touch(a, bytes, chunk, nch, nchg, 1.0);
          for (int q = 0; q < M_COUNT; q++) {
            int mode = (r + q) % M_COUNT;
            fuze_stats s0, s1;
            BENCH_CK(ctx[mode], fuze_get_stats(ctx[mode], &s0));
            MPI_Barrier(app[mode]);
            double t0 = MPI_Wtime();
            BENCH_CK(ctx[mode], fuze_checkpoint(ctx[mode]));
            double t = MPI_Wtime() - t0;
            BENCH_CK(ctx[mode], fuze_get_stats(ctx[mode], &s1));
            ms[mode][r] = 1e3 * bench_max(app[mode], t);
            uint64_t total = bench_sum_u64(app[mode], s1.sent_bytes - s0.sent_bytes);
            sent[mode][r] = (double)total;
            per[mode][r] = changed_bytes ? (double)total / (double)changed_bytes : 0;
            if (nchg == 0 && total != 0) {
              bench_note("check checkpoint %s: %llu parity bytes sent with nothing changed: "
                         "MISMATCH\n", bench_mode_name[mode], (unsigned long long)total);
              g_fail = 1;
            }
          }
        }
        param_of(param, sizeof param, bytes, frac, f);
        for (int mode = 0; mode < M_COUNT; mode++) {
          if (nchg == 0 && sent[mode][0] == 0)
            bench_note("check checkpoint %s %s: 0 parity bytes sent with nothing changed: OK\n",
                       param, bench_mode_name[mode]);
          bench_row("checkpoint", param, bench_mode_name[mode], "ms", ms[mode], reps);
          bench_row("checkpoint_sent", param, bench_mode_name[mode], "B", sent[mode], reps);
          if (nchg) bench_row("checkpoint_bytes", param, bench_mode_name[mode], "B/B", per[mode], reps);
        }
        bench_row("checkpoint", param, "memcpy", "ms", floor_ms[c], reps);
      }
      for (int mode = 0; mode < M_COUNT; mode++) {
        BENCH_CK(ctx[mode], fuze_finalize(&ctx[mode]));
        MPI_Comm_free(&app[mode]);
      }
    }
    free(a);
    free(dst);
  }
  bench_table("checkpoint: commit time (max over ranks), parity bytes sent per checkpoint (all "
              "ranks) and per changed byte; reference: memcpy of the changed bytes (the floor)");
  /* Goals: 0% sends nothing (checked above); at 100% fusion within 1.5x of
   * replication's time. */
  for (int si = 0; si < g_opt.n_ckpt_size; si++)
    for (int fi = 0; fi < g_opt.n_ckpt_f; fi++) {
      char param[96];
      param_of(param, sizeof param, g_opt.ckpt_size[si] / 8 * 8, 1.0, g_opt.ckpt_f[fi]);
      double r = bench_median("checkpoint", param, "fusion") / bench_median("checkpoint", param, "replicate");
      if (r == r)
        bench_note("checkpoint goal (100%% changed: fusion <= 1.5x replication's time) at %s: "
                   "%.3g: %s\n", param, r, r <= 1.5 ? "met" : "missed");
    }
}
