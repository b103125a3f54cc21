/* transport: the two ways an XOR reaches a stack/map window.
 *
 * usage: test_transport EXPECT   EXPECT is "shm" when MPI can allocate
 * shared-memory windows in this run (every rank on one node, an osc
 * component with shared windows), "noshm" when it cannot (osc/pt2pt), and
 * "split" when the ranks are taken to span nodes (FUZE_DEBUG_SPLIT_NODES=1),
 * "nodes" when they really span nodes (the multinode tests, on the emulated
 * cluster: the same expectations as "split", without the hook). "shm" and
 * "noshm" assume one node: across nodes they say so and exit 77 (skipped).
 *
 * For shm=auto, on and off it checks which kind of window was made (shm=on
 * where that is impossible must fail with FUZE_ERR_MPI naming shm=on and
 * change nothing), then hammers one host region from every rank at once:
 * many XORs of random deltas at random offsets and lengths, unaligned heads
 * and tails included, some into the very same words from all ranks, every
 * one of them atomic. The host's bytes must equal the XOR of everything sent
 * (computed on every rank from the shared seeds), and the accumulate-based
 * path must give the same bytes. Finally a map registered with each setting
 * survives a wipe and a recovery bit-exact.
 *
 * Which memory is behind a window (fuze__win_kind): on one node, fuze's own
 * shared segments (stacks and maps: XOR by word atomics; arrays: plain XOR
 * under the host's stripe locks); with FUZE_DEBUG_OWN_SHM=0 (set by the test
 * for that case, and by the TCP environments) the MPI library's shared
 * window for stacks and maps, and for arrays MPI_Win_allocate (MPICH: the
 * shared window). Arrays get a hammer of their own: large XORs from every
 * rank at once across the 256 KiB stripes of one host, bit-exact. */
#include "common.h"
#include "comm/transport.h"
#include "data/state.h"

#define REGION 4096
#define ROUNDS 3000

static int me, np;

static fuze_ctx *open_ctx(const char *cfg, int want) {
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  if (!rc) MPI_Comm_free(&app);
  T_EQ_INT(rc, want, cfg);
  return rc == want ? ctx : NULL;
}

/* Every rank XORs ROUNDS random pieces into rank `host`'s region; returns the
 * expected region (what all ranks sent, XORed) in want. fuze__win_xor's
 * origin buffer must stay untouched until the next flush (MPI_Accumulate is
 * nonblocking; MPICH reads it after the call returns): one buffer per piece
 * between two flushes. */
#define FLUSH_EVERY 64
static unsigned char pieces[FLUSH_EVERY][REGION], others[REGION];
static void hammer(fuze_ctx *ctx, MPI_Win win, int host, unsigned char *want) {
  memset(want, 0, REGION);
  for (int r = 0; r < np; r++) {
    uint64_t s = 0x5eed0000u + (uint64_t)r;
    for (int x = 0; x < ROUNDS; x++) {
      /* Every 4th piece: the same 64 bytes from every rank (contended);
       * every 50th a long one (1-4 KiB, like a coalesced sync=batch run). */
      size_t len = x % 4 == 0 ? 64 : x % 50 == 1 ? 1024 + t_below(&s, REGION - 1024 + 1) : 1 + t_below(&s, 512);
      size_t off = x % 4 == 0 ? 128 : t_below(&s, REGION - len + 1);
      unsigned char *piece = r == me ? pieces[x % FLUSH_EVERY] : others;
      t_fill(&s, piece, len);
      if (x % 7 == 0) memset(piece + len / 3, 0, len / 3); /* zero words are skipped */
      for (size_t b = 0; b < len; b++) want[off + b] ^= piece[b];
      if (r == me) {
        int rc = fuze__win_xor(&ctx->net, win, piece, len, host, off);
        T_EQ_INT(rc, FUZE_SUCCESS, "fuze__win_xor");
        if (x % FLUSH_EVERY == FLUSH_EVERY - 1) fuze__win_flush(&ctx->net, win);
      }
    }
  }
  fuze__win_flush(&ctx->net, win);
  fuze__win_sync(&ctx->net, win);
  MPI_Barrier(MPI_COMM_WORLD);
  fuze__win_sync(&ctx->net, win);
}

static int split; /* ranks taken to span nodes: shm=on is a config error */

static int own_allowed(void) {
  const char *e = getenv("FUZE_DEBUG_OWN_SHM");
  return !(e && *e && !atoi(e));
}

static const char *kind_name(int k) {
  static const char *const names[] = {"none", "MPI window", "MPI shared window", "fuze's own segments",
                                      "fuze's own segments, stripe-locked"};
  return k >= 0 && k <= FUZE_WIN_OWN_BULK ? names[k] : "?";
}

/* A multiple of 64, as fuze's windows are (fuze__align): with MPICH 4.0 an
 * MPI_Win_allocate window of 1 MiB + 12345 bytes per rank (shm=off) ended
 * with 97% of the last rank's bytes wrong, the same with 16 KiB pieces,
 * while one of 1 MiB + 12288 was exact. The pieces keep odd lengths and
 * offsets. */
#define BIG ((size_t)(1u << 20) + 12288)
#define BIG_PIECES 24
static unsigned char big_piece[600 << 10];

/* An array's window with this shm setting: its kind, then every rank XORs
 * BIG_PIECES pieces of up to 600 KiB at random offsets into host 0 and into
 * host np-1 at once (across stripes, overlapping); the host's bytes must be
 * the XOR of everything sent. */
static void array_setting(const char *shm, int expect_shm) {
  char cfg[128];
  snprintf(cfg, sizeof cfg, "faults=1;domain=rank;shm=%s", shm);
  fuze_ctx *ctx = open_ctx(cfg, FUZE_SUCCESS);
  if (!ctx) return;
  MPI_Win win = MPI_WIN_NULL;
  unsigned char *base = NULL;
  int rc = fuze__win_create_array(&ctx->net, BIG, &win, &base);
  T_EQ_INT(rc, FUZE_SUCCESS, "fuze__win_create_array");
  int shared = expect_shm && strcmp(shm, "off");
#if defined(MPICH_VERSION) && !defined(OPEN_MPI)
  int mpi_kind = shared ? FUZE_WIN_MPI_SHARED : FUZE_WIN_MPI;
#else
  int mpi_kind = FUZE_WIN_MPI;
#endif
  int want = shared && own_allowed() ? FUZE_WIN_OWN_BULK : mpi_kind;
  T_CHECK(fuze__win_kind(win) == want, "%s: array window is %s, expected %s", cfg,
          kind_name(fuze__win_kind(win)), kind_name(want));
  static unsigned char expect[BIG];
  for (int host = 0; !rc && host < np; host += np - 1) {
    memset(expect, 0, BIG);
    for (int r = 0; r < np; r++) {
      uint64_t s = 0xa11a0000u + (uint64_t)r * 131 + (uint64_t)host;
      for (int x = 0; x < BIG_PIECES; x++) {
        size_t len = 1 + t_below(&s, sizeof big_piece);
        size_t off = t_below(&s, BIG - len + 1);
        t_fill(&s, big_piece, len);
        for (size_t b = 0; b < len; b++) expect[off + b] ^= big_piece[b];
        if (r == me) {
          T_EQ_INT(fuze__win_xor(&ctx->net, win, big_piece, len, host, off), FUZE_SUCCESS, "array xor");
          fuze__win_flush(&ctx->net, win); /* big_piece is reused */
        }
      }
    }
    fuze__win_sync(&ctx->net, win);
    MPI_Barrier(MPI_COMM_WORLD);
    fuze__win_sync(&ctx->net, win);
    if (me == host) T_CHECK(!memcmp(base, expect, BIG), "%s: array host %d's bytes are not the XOR of all pieces", cfg, host);
    if (me == host) memset(base, 0, BIG);
    fuze__win_sync(&ctx->net, win);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  fuze__win_free(&win, 1);
  fuze_finalize(&ctx);
}

static void one_setting(const char *shm, int expect_shm) {
  char cfg[128];
  snprintf(cfg, sizeof cfg, "faults=1;domain=rank;shm=%s", shm);
  int impossible = !strcmp(shm, "on") && !expect_shm;
  int impossible_rc = split ? FUZE_ERR_CONFIG : FUZE_ERR_MPI;
  fuze_ctx *ctx = open_ctx(cfg, FUZE_SUCCESS);
  if (!ctx) return;
  MPI_Win win = MPI_WIN_NULL;
  unsigned char *base = NULL;
  int is_shm = -1;
  int rc = fuze__win_create_fused(&ctx->net, REGION, &win, &base, 1, &is_shm);
  if (impossible) {
    T_EQ_INT(rc, impossible_rc, "shm=on without shared-memory windows");
    const char *want = split ? "transport: shm=on needs every rank on one node (shared memory), and these 4 ranks "
                               "are not; use shm=auto or shm=off"
                             : "transport: shm=on, but MPI_Win_allocate_shared of 4096 bytes failed";
    T_CHECK(strstr(fuze_last_error(ctx), want) != NULL, "message: %s", fuze_last_error(ctx));
    T_CHECK(win == MPI_WIN_NULL, "no window is left behind");
  } else {
    T_EQ_INT(rc, FUZE_SUCCESS, cfg);
    int want_shm = strcmp(shm, "off") ? expect_shm : 0;
    T_CHECK(is_shm == want_shm && ctx->net.shm_windows == want_shm, "%s: shared window %d (ctx %d), expected %d", cfg,
            is_shm, ctx->net.shm_windows, want_shm);
    int want_kind = !want_shm ? FUZE_WIN_MPI : own_allowed() ? FUZE_WIN_OWN : FUZE_WIN_MPI_SHARED;
    T_CHECK(fuze__win_kind(win) == want_kind, "%s: stack/map window is %s, expected %s", cfg,
            kind_name(fuze__win_kind(win)), kind_name(want_kind));
    unsigned char want[REGION];
    for (int host = 0; host < np && !rc; host += np - 1) {
      uint64_t before = ctx->net.sent_bytes;
      hammer(ctx, win, host, want);
      if (me == host)
        T_CHECK(!memcmp(base, want, REGION), "%s: host %d's region is not the XOR of all pieces", cfg, host);
      T_CHECK(ctx->net.sent_bytes > before, "%s: sent_bytes counts the XORs", cfg);
      memset(base, 0, REGION);
      fuze__win_sync(&ctx->net, win);
      MPI_Barrier(MPI_COMM_WORLD);
    }
    fuze__win_free(&win, 1);
  }
  fuze_finalize(&ctx);

  /* A map with this setting: wipe one rank, recover, bit-exact. */
  snprintf(cfg, sizeof cfg, "faults=1;domain=rank;recovery=forward;capacity=8;shm=%s", shm);
  ctx = open_ctx(cfg, FUZE_SUCCESS);
  if (!ctx) return;
  fuze_map *m = NULL;
  rc = fuze_map_create(ctx, "m", 8, 24, &m);
  T_EQ_INT(rc, impossible ? impossible_rc : FUZE_SUCCESS, "fuze_map_create");
  if (!rc) {
    uint64_t s = 77 + (uint64_t)me;
    unsigned char val[24];
    for (uint64_t k = 0; k < 40; k++) { /* past capacity 8: growth too */
      t_fill(&s, val, sizeof val);
      T_EQ_INT(fuze_map_put(m, &k, val), FUZE_SUCCESS, "put");
    }
    for (uint64_t k = 0; k < 40; k += 3) T_EQ_INT(fuze_map_remove(m, &k), FUZE_SUCCESS, "remove");
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint");
    for (uint64_t k = 1; k < 40; k += 3) {
      t_fill(&s, val, sizeof val);
      T_EQ_INT(fuze_map_put(m, &k, val), FUZE_SUCCESS, "update");
    }
    /* Expected contents before the wipe. */
    unsigned char before[40][24];
    int have[40];
    for (uint64_t k = 0; k < 40; k++) have[k] = fuze_map_get(m, &k, before[k]) == FUZE_SUCCESS;
    int victim = np - 1;
    T_EQ_INT(fuze_inject(ctx, &victim, 1), FUZE_SUCCESS, "fuze_inject");
    rc = fuze_recover(ctx);
    T_EQ_INT(rc, FUZE_RECOVERED, "fuze_recover");
    for (uint64_t k = 0; k < 40; k++) {
      unsigned char got[24];
      int h = fuze_map_get(m, &k, got) == FUZE_SUCCESS;
      T_CHECK(h == have[k] && (!h || !memcmp(got, before[k], 24)), "%s: key %d after recovery", cfg, (int)k);
    }
  }
  fuze_finalize(&ctx);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  if (argc != 2 || (strcmp(argv[1], "shm") && strcmp(argv[1], "noshm") && strcmp(argv[1], "split") &&
                    strcmp(argv[1], "nodes"))) {
    if (!me) fprintf(stderr, "usage: test_transport shm|noshm|split|nodes\n");
    MPI_Finalize();
    return 2;
  }
  /* The nodes the ranks really span. */
  MPI_Comm node;
  int node_rank = 0, nnodes = 0;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &node_rank);
  MPI_Comm_free(&node);
  int leader = node_rank == 0;
  MPI_Allreduce(&leader, &nnodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (nnodes > 1 && (!strcmp(argv[1], "shm") || !strcmp(argv[1], "noshm"))) {
    if (!me) printf("test_transport (%s): SKIP: assumes every rank on one node, and these %d ranks span %d nodes "
                    "(use \"nodes\")\n", argv[1], np, nnodes);
    MPI_Finalize();
    return 77;
  }
  if (nnodes == 1 && !strcmp(argv[1], "nodes")) {
    if (!me) printf("test_transport (nodes): FAILED: the %d ranks are all on one node\n", np);
    MPI_Finalize();
    return 1;
  }
  int expect_shm = !strcmp(argv[1], "shm");
  split = !strcmp(argv[1], "split") || !strcmp(argv[1], "nodes");
  if (split && np != 4 && !me) fprintf(stderr, "test_transport %s: run on 4 ranks (the message names them)\n", argv[1]);
  if (!me) printf("test_transport (%s): %d ranks on %d node(s)\n", argv[1], np, nnodes);
  one_setting("auto", expect_shm);
  one_setting("on", expect_shm);
  one_setting("off", expect_shm);
  array_setting("auto", expect_shm);
  array_setting("off", expect_shm);
  int bad = 0;
  MPI_Allreduce(&t_failures, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (!me) printf("test_transport (%s): %s (%d failed checks)\n", argv[1], bad ? "FAILED" : "OK", bad);
  MPI_Finalize();
  return bad ? 1 : 0;
}
