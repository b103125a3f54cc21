/* link: what the network between failure domains allows, measured with
 * plain MPI in the same run as the other sub-benchmarks, so that their
 * figures can be read against it. Every rank r is paired with
 * p = (r + np/2) mod np, in another domain whenever the domains are equal
 * halves of consecutive ranks (--domain node on 4 nodes x 2 ranks: node 1
 * with node 3, node 2 with node 4); all pairs run at once, as the ranks of
 * update do. Rows (mode "mpi"):
 *   latency     8-byte ping-pong, half the round trip (us)
 *   put+flush   MPI_Put of 8 bytes + MPI_Win_flush, every rank to its
 *               partner at once (us per operation): the least a sync=op
 *               operation can cost per backup (one remote completion)
 *   put, acc    bandwidth per rank of MPI_Put / MPI_Accumulate(BXOR) of
 *               --link-size pieces into the partner's MPI_Win_allocate
 *               window, one MPI_Win_flush per 16 pieces (what a sync=batch
 *               flush sends: runs of at most 64 KiB), --link-bytes per rank
 *               and repetition (GB/s, 1e9 B/s)
 * When update ran before in the same invocation, a second table compares
 * every sync=batch row with the rate the put bandwidth allows for its bytes
 * per operation (update_bytes): the goal is at least half of it. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define LINK_PINGS 1000
#define LINK_FLUSHES 2000
#define LINK_BURST 16

static double pingpong_us(int peer) {
  char b[8] = {0};
  int lead = g_rank < peer;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < LINK_PINGS && peer != g_rank; i++) {
    if (lead) {
      MPI_Send(b, 8, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
      MPI_Recv(b, 8, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      MPI_Recv(b, 8, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(b, 8, MPI_BYTE, peer, 7, MPI_COMM_WORLD);
    }
  }
  return 1e6 * bench_max(MPI_COMM_WORLD, MPI_Wtime() - t0) / (2.0 * LINK_PINGS);
}

/* how: 0 one target, flushed; 1 two targets, flushed one after the other
 * (MPI_Win_flush each); 2 two targets, one MPI_Win_flush_all. */
static double put_flush_us(MPI_Win win, int peer, const unsigned char *src, int how) {
  int other = (peer + g_size / 4) % g_size;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < LINK_FLUSHES; i++) {
    MPI_Put(src, 8, MPI_BYTE, peer, (MPI_Aint)(i % 64) * 8, 8, MPI_BYTE, win);
    if (how) MPI_Put(src, 8, MPI_BYTE, other, (MPI_Aint)(i % 64) * 8, 8, MPI_BYTE, win);
    if (how == 2) {
      MPI_Win_flush_all(win);
      continue;
    }
    MPI_Win_flush(peer, win);
    if (how) MPI_Win_flush(other, win);
  }
  double t = MPI_Wtime() - t0;
  bench_idle_barrier(MPI_COMM_WORLD); /* the partner may still be flushing into us */
  return 1e6 * bench_max(MPI_COMM_WORLD, t) / LINK_FLUSHES;
}

/* GB/s per rank: --link-bytes in pieces of --link-size, a flush per burst;
 * acc 0: MPI_Put, 1: MPI_Accumulate(BXOR), 2: the same cut into accumulates
 * of at most LINK_CUT bytes. */
#define LINK_CUT ((size_t)16 << 10)
static double bandwidth(MPI_Win win, int peer, const unsigned char *src, size_t piece, size_t win_bytes,
                        int acc) {
  size_t pieces = g_opt.link_bytes / piece ? g_opt.link_bytes / piece : 1, slots = win_bytes / piece;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (size_t i = 0; i < pieces; i++) {
    MPI_Aint disp = (MPI_Aint)((i % slots) * piece);
    if (acc == 2)
      for (size_t o = 0; o < piece; o += LINK_CUT) {
        int len = (int)(piece - o < LINK_CUT ? piece - o : LINK_CUT);
        MPI_Accumulate(src + o, len, MPI_BYTE, peer, disp + (MPI_Aint)o, len, MPI_BYTE, MPI_BXOR, win);
      }
    else if (acc) MPI_Accumulate(src, (int)piece, MPI_BYTE, peer, disp, (int)piece, MPI_BYTE, MPI_BXOR, win);
    else MPI_Put(src, (int)piece, MPI_BYTE, peer, disp, (int)piece, MPI_BYTE, win);
    if (i % LINK_BURST == LINK_BURST - 1 || i + 1 == pieces) MPI_Win_flush(peer, win);
  }
  double t = MPI_Wtime() - t0;
  bench_idle_barrier(MPI_COMM_WORLD);
  return (double)(pieces * piece) / bench_max(MPI_COMM_WORLD, t) / 1e9;
}

static void batch_goal(void) {
  static const char *const ops[] = {"put", "update", "remove", "push", "pop"};
  double bw = bench_median("link", "put", "mpi"); /* GB/s per rank */
  int rows = 0, met = 0;
  double worst = 1e300;
  char where[96] = "";
  for (int x = 0; x < g_opt.n_upd_f; x++)
    for (int o = 0; o < 5; o++) {
      char param[96];
      snprintf(param, sizeof param, "f=%d sync=batch op=%s", g_opt.upd_f[x], ops[o]);
      for (int mode = 0; mode < M_COUNT; mode++) {
        double rate = bench_median("update", param, bench_mode_name[mode]);
        double bytes = bench_median("update_bytes", param, bench_mode_name[mode]);
        if (!(rate == rate) || !(bytes > 0) || !(bw > 0)) continue;
        double allowed = bw * 1e9 / bytes, ratio = rate / allowed;
        if (!rows)
          bench_note("\n### link: sync=batch against the put bandwidth (%.3g GB/s per rank)\n\n"
                     "| param | mode | B/op | ops/s | ops/s the bandwidth allows | ratio |\n"
                     "|---|---|---|---|---|---|\n", bw);
        bench_note("| %s | %s | %.1f | %.4g | %.4g | %.3g |\n", param, bench_mode_name[mode], bytes,
                   rate, allowed, ratio);
        rows++;
        met += ratio >= 0.5;
        if (mode == M_FUSION && ratio < worst) {
          worst = ratio;
          snprintf(where, sizeof where, "%s", param);
        }
      }
    }
  if (rows)
    bench_note("\nbatch goal (sync=batch at least half the rate the bandwidth allows for its bytes): "
               "met in %d of %d rows; lowest fusion ratio %.3g at %s\n", met, rows, worst, where);
}

void bench_link(void) {
  if (g_size < 2) {
    bench_row_na("link", "latency", "mpi", "us", "needs np >= 2");
    bench_table("link");
    return;
  }
  int peer = (g_rank + g_size / 2) % g_size, reps = g_opt.reps;
  if (g_size % 2) peer = g_rank == g_size - 1 ? g_rank : peer; /* odd: the last rank idles */
  int cross = 0, mine = g_dom[peer] != g_dom[g_rank] || peer == g_rank;
  MPI_Allreduce(&mine, &cross, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  size_t piece = g_opt.link_size, win_bytes = piece * LINK_BURST;
  unsigned char *src = bench_alloc(piece), *mem = NULL;
  for (size_t b = 0; b < piece; b++) src[b] = (unsigned char)(b * 13 + g_rank + 1);
  MPI_Win win;
  MPI_Win_allocate((MPI_Aint)win_bytes, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &mem, &win);
  MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  double lat[BENCH_MAX_REPS], pf[BENCH_MAX_REPS], pf2[BENCH_MAX_REPS], pfa[BENCH_MAX_REPS], bput[BENCH_MAX_REPS], bacc[BENCH_MAX_REPS], bcut[BENCH_MAX_REPS];
  for (int r = 0; r < reps; r++) {
    lat[r] = pingpong_us(peer);
    pf[r] = put_flush_us(win, peer, src, 0);
    pf2[r] = put_flush_us(win, peer, src, 1);
    pfa[r] = put_flush_us(win, peer, src, 2);
    bput[r] = bandwidth(win, peer, src, piece, win_bytes, 0);
    bacc[r] = bandwidth(win, peer, src, piece, win_bytes, 1);
    bcut[r] = bandwidth(win, peer, src, piece, win_bytes, 2);
  }
  MPI_Win_unlock_all(win);
  MPI_Win_free(&win);
  free(src);
  char sz[32], p1[64], p2[64], p3[80];
  bench_fmt_size(piece, sz, sizeof sz);
  snprintf(p1, sizeof p1, "put %s", sz);
  snprintf(p2, sizeof p2, "acc %s", sz);
  snprintf(p3, sizeof p3, "acc %s as 16KiB accumulates", sz);
  bench_row("link", "latency", "mpi", "us", lat, reps);
  bench_row("link", "put+flush", "mpi", "us", pf, reps);
  bench_row("link", "2 puts+2 flushes", "mpi", "us", pf2, reps);
  bench_row("link", "2 puts+flush_all", "mpi", "us", pfa, reps);
  bench_row("link", p1, "mpi", "GB/s", bput, reps);
  bench_row("link", p2, "mpi", "GB/s", bacc, reps);
  bench_row("link", p3, "mpi", "GB/s", bcut, reps);
  bench_row_hidden("link", "put", "mpi", "GB/s", bput, reps);
  bench_table(cross ? "link: every rank with a partner in another failure domain, all pairs at once"
                    : "link: every rank with a partner (some partners share a failure domain: "
                      "use --domain node across nodes)");
  batch_goal();
}
