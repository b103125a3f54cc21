/* kernel: the coding kernels on one core (world rank 0; the other ranks
 * sleep), from src/core/code.h through the fuze_static library:
 *   encode  fuze__code_delta_encode: the f products of one primary's delta,
 *           GB/s of delta (fusion: Cauchy RS row of primary 0 of a block of
 *           k; f = 1 is plain XOR, i.e. one copy; replicate: f copies)
 *   decode  fuze__code_decode of t lost members, GB/s of reconstructed bytes
 *           (fusion: t of the k primaries, from the k - t others and t
 *           backups; replicate: the primary and t - 1 of its copies, from a
 *           surviving copy)
 * next to memcpy on the same core and buffers. Each repetition loops until
 * about 256 MiB have been processed; fusion and replication alternate. */
#include "bench.h"

#include "core/code.h"

#include <stdlib.h>
#include <string.h>

static int iters_for(size_t len) {
  size_t it = ((size_t)256 << 20) / (len ? len : 1);
  return it < 1 ? 1 : it > 100000 ? 100000 : (int)it;
}

static void fill(unsigned char *p, size_t len, unsigned seed) {
  uint64_t x = 0x9e3779b97f4a7c15ULL * (seed + 1);
  for (size_t i = 0; i + 8 <= len; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    memcpy(p + i, &x, 8);
  }
}

static double gbps_memcpy(unsigned char *dst, const unsigned char *src, size_t len) {
  int it = iters_for(len);
  double t0 = MPI_Wtime();
  for (int i = 0; i < it; i++) {
    memcpy(dst, src, len);
    __asm__ __volatile__("" ::"r"(dst) : "memory");
  }
  return (double)len * it / (MPI_Wtime() - t0) / 1e9;
}

static double gbps_encode(const fuze_code *c, const unsigned char *delta, unsigned char **prod,
                          size_t len) {
  int it = iters_for(len);
  double t0 = MPI_Wtime();
  for (int i = 0; i < it; i++) {
    fuze__code_delta_encode(c, 0, delta, len, prod);
    __asm__ __volatile__("" ::"r"(prod[0]) : "memory");
  }
  return (double)len * it / (MPI_Wtime() - t0) / 1e9;
}

static double gbps_decode(const fuze_code *c, const unsigned char *erased, unsigned char **members,
                          size_t len, int t) {
  int it = iters_for(len * (size_t)t);
  double t0 = MPI_Wtime();
  for (int i = 0; i < it; i++)
    if (fuze__code_decode(c, erased, members, len)) return -1;
  return (double)len * t * it / (MPI_Wtime() - t0) / 1e9;
}

static void run(void) {
  int reps = g_opt.reps, K = g_opt.kern_k;
  for (int si = 0; si < g_opt.n_kern_size; si++) {
    size_t len = g_opt.kern_size[si] / 64 * 64;
    char sz[32];
    bench_fmt_size(len, sz, sizeof sz);
    unsigned char *src = bench_alloc(len), *dst = bench_alloc(len);
    fill(src, len, 1);
    double mc[BENCH_MAX_REPS];
    for (int r = 0; r < reps; r++) mc[r] = gbps_memcpy(dst, src, len);
    for (int f = 1; f <= 3; f++) {
      char param[96];
      snprintf(param, sizeof param, "op=encode f=%d size=%s", f, sz);
      fuze_code c[M_COUNT];
      unsigned char *prod[M_COUNT][3];
      double v[M_COUNT][BENCH_MAX_REPS];
      for (int mode = 0; mode < M_COUNT; mode++) {
        memset(&c[mode], 0, sizeof c[mode]);
        int k = mode == M_FUSION ? K : 1;
        if (fuze__code_init(&c[mode], k, f, mode == M_FUSION ? FUZE_CODE_RS : FUZE_CODE_REPLICATE))
          bench_check(NULL, FUZE_ERR_CONFIG, "fuze__code_init");
        for (int j = 0; j < f; j++) prod[mode][j] = bench_alloc(len);
      }
      for (int r = 0; r < reps; r++)
        for (int q = 0; q < M_COUNT; q++) {
          int mode = (r + q) % M_COUNT;
          v[mode][r] = gbps_encode(&c[mode], src, prod[mode], len);
        }
      for (int mode = 0; mode < M_COUNT; mode++) {
        bench_row("kernel", param, bench_mode_name[mode], "GB/s", v[mode], reps);
        for (int j = 0; j < f; j++) free(prod[mode][j]);
        fuze__code_free(&c[mode]);
      }
      bench_row("kernel", param, "memcpy", "GB/s", mc, reps);
    }
    for (int f = 1; f <= 3; f++) {
      for (int t = 1; t <= f; t++) {
        char param[96];
        snprintf(param, sizeof param, "op=decode f=%d t=%d k=%d size=%s", f, t, K, sz);
        fuze_code c[M_COUNT];
        unsigned char *mem[M_COUNT][256], erased[256];
        double v[M_COUNT][BENCH_MAX_REPS];
        /* fusion: t primaries lost; replicate: the primary and t - 1 copies. */
        memset(erased, 0, sizeof erased);
        for (int x = 0; x < t; x++) erased[x] = 1;
        for (int mode = 0; mode < M_COUNT; mode++) {
          memset(&c[mode], 0, sizeof c[mode]);
          int k = mode == M_FUSION ? K : 1;
          if (fuze__code_init(&c[mode], k, f, mode == M_FUSION ? FUZE_CODE_RS : FUZE_CODE_REPLICATE))
            bench_check(NULL, FUZE_ERR_CONFIG, "fuze__code_init");
          for (int x = 0; x < k + f; x++) {
            mem[mode][x] = bench_alloc(len);
            if (x < k) fill(mem[mode][x], len, (unsigned)(x + 7));
          }
          fuze__code_encode(&c[mode], mem[mode], mem[mode] + k, len);
        }
        for (int r = 0; r < reps; r++)
          for (int q = 0; q < M_COUNT; q++) {
            int mode = (r + q) % M_COUNT;
            v[mode][r] = gbps_decode(&c[mode], erased, mem[mode], len, t);
            if (v[mode][r] < 0) bench_check(NULL, FUZE_ERR_UNRECOVERABLE, "fuze__code_decode");
          }
        for (int mode = 0; mode < M_COUNT; mode++) {
          /* The decoded members must be the originals. */
          for (int x = 0; x < t && x < c[mode].k; x++) {
            unsigned char *ref = bench_alloc(len);
            fill(ref, len, (unsigned)(x + 7));
            if (memcmp(ref, mem[mode][x], len)) {
              bench_note("check kernel decode %s %s: member %d differs: MISMATCH\n", param,
                         bench_mode_name[mode], x);
              g_fail = 1;
            }
            free(ref);
          }
          bench_row("kernel", param, bench_mode_name[mode], "GB/s", v[mode], reps);
          for (int x = 0; x < c[mode].k + f; x++) free(mem[mode][x]);
          fuze__code_free(&c[mode]);
        }
        bench_row("kernel", param, "memcpy", "GB/s", mc, reps);
      }
    }
    free(src);
    free(dst);
  }
}

void bench_kernel(void) {
  if (g_rank == 0) run();
  bench_idle_barrier(MPI_COMM_WORLD);
  bench_table("kernel: one core, GB/s (encode: of delta; decode: of reconstructed bytes)");
}
