/* update: stack and map operations per second per rank, f = 1..3, with
 * sync=op (every operation flushed at its f backups before it returns) and
 * sync=batch (fuze_flush once at the end of the timed loop). Every rank runs
 * its operations at the same time (--domain rank or node, spares=0); the rate
 * is ops / (max over ranks of the loop time). The bytes each operation sends
 * (fuze_get_stats().sent_bytes, all f backups, per rank) go to the CSV as
 * update_bytes rows (link compares sync=batch with the bandwidth). After the
 * timed repetitions every context puts and pushes a known set, checkpoints
 * and scrubs (fuze_verify): any backup that differs from the encoding of its
 * members fails the run (exit status 1), so a run across nodes also checks
 * that every delta arrived. The fused regions are created
 * large enough (capacity=) that no operation waits for growth; a non-zero
 * deferred count would be reported. A fuze_checkpoint between repetitions
 * (not timed) clears the undo logs. Fusion and replication run side by side
 * (two contexts) and alternate repetition by repetition. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

enum { OP_PUT, OP_UPDATE, OP_REMOVE, OP_PUSH, OP_POP, OP_COUNT };
static const char *const op_name[OP_COUNT] = {"put", "update", "remove", "push", "pop"};

static double timed_loop(fuze_ctx *ctx, MPI_Comm app, int batch, int op, fuze_map *m,
                         fuze_stack *s, long n, unsigned char *val, size_t vb, int rep,
                         double *bytes_per_op) {
  fuze_stats s0, s1;
  BENCH_CK(ctx, fuze_get_stats(ctx, &s0));
  MPI_Barrier(app);
  double t0 = MPI_Wtime();
  for (long i = 0; i < n; i++) {
    uint64_t key = ((uint64_t)g_rank << 40) | (uint64_t)i;
    memcpy(val, &key, sizeof key);
    val[vb - 1] = (unsigned char)(rep + op);
    switch (op) {
      case OP_PUT: BENCH_CK(ctx, fuze_map_put(m, &key, val)); break;
      case OP_UPDATE:
        val[vb - 1] ^= 0x80;
        BENCH_CK(ctx, fuze_map_put(m, &key, val));
        break;
      case OP_REMOVE: BENCH_CK(ctx, fuze_map_remove(m, &key)); break;
      case OP_PUSH: BENCH_CK(ctx, fuze_stack_push(s, val)); break;
      case OP_POP: BENCH_CK(ctx, fuze_stack_pop(s, val)); break;
    }
  }
  if (batch) BENCH_CK(ctx, fuze_flush(ctx));
  double t = MPI_Wtime() - t0;
  BENCH_CK(ctx, fuze_get_stats(ctx, &s1));
  *bytes_per_op = (double)(s1.sent_bytes - s0.sent_bytes) / (double)n;
  return (double)n / bench_max(app, t);
}

/* The check after the timed loops: a known set (keys and elements made from
 * the rank), committed, then fuze_verify must find every backup equal to the
 * encoding of its members (and every index replica equal). */
static void check_backups(fuze_ctx *ctx, fuze_map *m, fuze_stack *s, unsigned char *val, size_t vb,
                          long n, const char *what) {
  long count = n < 1000 ? n : 1000;
  for (long i = 0; i < count; i++) {
    uint64_t key = ((uint64_t)g_rank << 40) | (uint64_t)i;
    memset(val, (int)(i * 7 + g_rank), vb);
    memcpy(val, &key, sizeof key);
    BENCH_CK(ctx, fuze_map_put(m, &key, val));
    BENCH_CK(ctx, fuze_stack_push(s, val));
  }
  BENCH_CK(ctx, fuze_checkpoint(ctx));
  fuze_verify_report rep;
  int rc = fuze_verify(ctx, &rep);
  if (rc != FUZE_SUCCESS || rep.mismatches) {
    bench_note("check update %s: fuze_verify returned %s with %llu mismatching range(s): MISMATCH\n",
               what, fuze_err_name(rc), (unsigned long long)rep.mismatches);
    g_fail = 1;
  } else {
    bench_note("check update %s: fuze_verify after %ld puts and pushes per rank: %llu bytes "
               "compared, 0 mismatches: OK\n", what, count, (unsigned long long)rep.bytes);
  }
}

void bench_update(void) {
  size_t vb = g_opt.value < 8 ? 8 : g_opt.value;
  int reps = g_opt.reps;
  for (int batch = 0; batch < 2; batch++) {
    if (!(g_opt.upd_sync & (1u << batch))) continue;
    long n = batch ? g_opt.batch_ops : g_opt.ops;
    for (int x = 0; x < g_opt.n_upd_f; x++) {
      int f = g_opt.upd_f[x];
      char param[OP_COUNT][96];
      for (int op = 0; op < OP_COUNT; op++)
        snprintf(param[op], sizeof param[op], "f=%d sync=%s op=%s", f, batch ? "batch" : "op",
                 op_name[op]);
      if (f >= g_ndom) {
        for (int op = 0; op < OP_COUNT; op++)
          for (int mode = 0; mode < M_COUNT; mode++)
            bench_row_na("update", param[op], bench_mode_name[mode], "ops/s", "needs more domains than f");
        continue;
      }
      /* Both codes live side by side and take turns, so that drift of the
       * machine (other tenants, frequency) hits both alike. */
      fuze_ctx *ctx[M_COUNT];
      MPI_Comm app[M_COUNT];
      fuze_map *m[M_COUNT];
      fuze_stack *s[M_COUNT];
      for (int mode = 0; mode < M_COUNT; mode++) {
        char base[160];
        snprintf(base, sizeof base, "faults=%d,domain=%s,code=%s,sync=%s,capacity=%ld", f,
                 bench_domain(), bench_mode_code[mode], batch ? "batch" : "op", n);
        BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, base, &ctx[mode], &app[mode]));
        BENCH_CK(ctx[mode], fuze_map_create(ctx[mode], "bench.map", 8, vb, &m[mode]));
        BENCH_CK(ctx[mode], fuze_stack_create(ctx[mode], "bench.stack", vb, &s[mode]));
      }
      unsigned char *val = bench_alloc(vb);
      double rate[M_COUNT][OP_COUNT][BENCH_MAX_REPS], bpo[M_COUNT][OP_COUNT][BENCH_MAX_REPS];
      for (int r = 0; r < reps; r++)
        for (int q = 0; q < M_COUNT; q++) {
          int mode = (r + q) % M_COUNT;
          for (int op = 0; op < OP_COUNT; op++)
            rate[mode][op][r] = timed_loop(ctx[mode], app[mode], batch, op, m[mode], s[mode], n, val,
                                           vb, r, &bpo[mode][op][r]);
          BENCH_CK(ctx[mode], fuze_checkpoint(ctx[mode]));
        }
      for (int mode = 0; mode < M_COUNT; mode++) {
        fuze_fused_stats ms, ss;
        BENCH_CK(ctx[mode], fuze_flush(ctx[mode]));
        MPI_Barrier(app[mode]);
        BENCH_CK(ctx[mode], fuze_fused_info(ctx[mode], "bench.map", &ms));
        BENCH_CK(ctx[mode], fuze_fused_info(ctx[mode], "bench.stack", &ss));
        uint64_t deferred = bench_sum_u64(app[mode], ms.deferred_ops + ss.deferred_ops);
        if (deferred)
          bench_note("note: update f=%d %s %s: %llu operations waited for capacity\n", f,
                     batch ? "batch" : "op", bench_mode_name[mode], (unsigned long long)deferred);
        for (int op = 0; op < OP_COUNT; op++) {
          bench_row("update", param[op], bench_mode_name[mode], "ops/s", rate[mode][op], reps);
          bench_row_hidden("update_bytes", param[op], bench_mode_name[mode], "B/op", bpo[mode][op], reps);
        }
        char what[96];
        snprintf(what, sizeof what, "f=%d sync=%s %s", f, batch ? "batch" : "op", bench_mode_name[mode]);
        check_backups(ctx[mode], m[mode], s[mode], val, vb, n, what);
      }
      for (int mode = 0; mode < M_COUNT; mode++) {
        BENCH_CK(ctx[mode], fuze_finalize(&ctx[mode]));
        MPI_Comm_free(&app[mode]);
      }
      free(val);
    }
  }
  bench_table("update: operations per second per rank (all ranks at once; sync=op: each "
              "operation flushed at its backups; sync=batch: one fuze_flush at the end)");
  /* Goal: fusion at least 0.9x replication's throughput. */
  double worst = 1e300;
  char where[96] = "";
  int rows = 0, met = 0;
  for (int batch = 0; batch < 2; batch++)
    for (int x = 0; x < g_opt.n_upd_f && (g_opt.upd_sync & (1u << batch)); x++)
      for (int op = 0; op < OP_COUNT; op++) {
        char param[96];
        snprintf(param, sizeof param, "f=%d sync=%s op=%s", g_opt.upd_f[x], batch ? "batch" : "op",
                 op_name[op]);
        double r = bench_median("update", param, "fusion") / bench_median("update", param, "replicate");
        rows += r == r;
        met += r >= 0.9;
        if (r == r && r < worst) {
          worst = r;
          snprintf(where, sizeof where, "%s", param);
        }
      }
  if (worst < 1e300)
    bench_note("\nupdate goal (fusion >= 0.9x replication): met in %d of %d rows; lowest ratio "
               "%.3g at %s: %s\n", met, rows, worst, where, worst >= 0.9 ? "met" : "missed");
}
