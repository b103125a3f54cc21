/* transport: why a shared host costs more than spread ones, and what the
 * shared-memory path (config shm) does about it. Every rank sends XORs of
 * --value bytes, each followed by a flush, for --xor-time seconds (all ranks
 * in the same window, aligned by a barrier), through fuze's own
 * transport (fuze__win_create_fused, fuze__win_xor, fuze__win_flush from the
 * fuze_static library), into one target:
 *   replicate  rank r -> rank r+1: every target has one origin, as a
 *              replicated primary and its copy;
 *   fusion     the first half of the ranks -> the first rank of the second
 *              half, and the second half -> rank 0: np/2 origins share a
 *              host, as the members of a block at f = 1. They hit the same
 *              slots in the same order (the same fused nodes), as members
 *              pushing in step do.
 * Rows per mechanism: xor=accumulate (shm=off: MPI_Accumulate(BXOR) into an
 * MPI_Win_allocate window; Open MPI 4.1 takes the target's one accumulate
 * lock for each) and xor=atomic (shm=on: an MPI_Win_allocate_shared window,
 * CPU atomic XOR; only when every rank shares a node). The figure is the
 * aggregate XORs per second (all ranks' XORs / the longest loop). */
#include "bench.h"

#include "comm/transport.h"
#include "data/state.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 4096

static int target_of(int mode, int r) {
  int half = g_size / 2;
  if (mode == M_REPLICATE) return (r + 1) % g_size;
  return r < half ? half : 0;
}

void bench_transport(void) {
  if (g_size < 2) {
    for (int mode = 0; mode < M_COUNT; mode++)
      bench_row_na("transport", "xor=accumulate", bench_mode_name[mode], "xor/s", "needs np >= 2");
    return;
  }
  size_t nb = g_opt.value ? g_opt.value : 64;
  double secs = g_opt.xor_secs;
  unsigned char *piece = bench_alloc(nb);
  for (size_t b = 0; b < nb; b++) piece[b] = (unsigned char)(g_rank * 31 + b + 1);
  for (int mech = 0; mech < 2; mech++) {
    const char *param = mech ? "xor=atomic" : "xor=accumulate";
    fuze_ctx *ctx = NULL;
    MPI_Comm app = MPI_COMM_NULL;
    BENCH_CK(NULL, bench_init(MPI_COMM_WORLD, mech ? "faults=1,domain=rank,shm=auto" : "faults=1,domain=rank,shm=off",
                              &ctx, &app));
    MPI_Win win = MPI_WIN_NULL;
    unsigned char *base = NULL;
    int shm = 0;
    BENCH_CK(ctx, fuze__win_create_fused(&ctx->net, SLOTS * nb, &win, &base, 1, &shm));
    if (mech && !shm) {
      for (int mode = 0; mode < M_COUNT; mode++)
        bench_row_na("transport", param, bench_mode_name[mode], "xor/s",
                     "no shared-memory window (ranks on several nodes, or osc/pt2pt)");
    } else {
      double v[M_COUNT][BENCH_MAX_REPS];
      for (int rep = 0; rep < g_opt.reps; rep++)
        for (int mode = 0; mode < M_COUNT; mode++) {
          int tgt = target_of(mode, g_rank);
          MPI_Barrier(MPI_COMM_WORLD);
          double t0 = MPI_Wtime(), t = 0;
          uint64_t ops = 0;
          for (;;) {
            for (int i = 0; i < 64; i++, ops++) {
              BENCH_CK(ctx, fuze__win_xor(&ctx->net, win, piece, nb, tgt, (size_t)(ops % SLOTS) * nb));
              BENCH_CK(ctx, fuze__win_flush(&ctx->net, win));
            }
            if ((t = MPI_Wtime() - t0) >= secs) break;
          }
          v[mode][rep] = (double)bench_sum_u64(MPI_COMM_WORLD, ops) / bench_max(MPI_COMM_WORLD, t);
        }
      for (int mode = 0; mode < M_COUNT; mode++) bench_row("transport", param, bench_mode_name[mode], "xor/s", v[mode], g_opt.reps);
    }
    fuze__win_free(&win, 1);
    BENCH_CK(NULL, fuze_finalize(&ctx));
    if (app != MPI_COMM_NULL) MPI_Comm_free(&app);
  }
  free(piece);
  bench_table("transport: aggregate XORs per second into one host per np/2 origins (fusion) or one per origin "
              "(replicate); each XOR flushed");
}
