/* nqueens: distributed N-Queens counting whose search state is protected by
 * fuze (fused backups).
 *
 * Every compute rank runs a depth-first search with an explicit work stack of
 * partial boards. The stack is a fused stack (fuze_stack_create) of fixed-size
 * records, and the rank's solution counter is a protected int64 array of one
 * element (fuze_protect, MPI_INT64_T). So the whole search state of a rank -
 * what is left to explore and what has been found - lives in fuze structures.
 *
 *   1. Seeding: every valid placement of the first min(N, 2) rows is generated
 *      in the same order on every rank and dealt round-robin over the ranks.
 *   2. Rounds: each rank performs up to K expansions (pop a board; count it if
 *      it is complete, otherwise count its children that complete the board
 *      and push the others), then calls fuze_checkpoint() - every rank, every
 *      round, even with an empty stack, because the call is collective.
 *   3. When fuze_checkpoint() returns FUZE_RECOVERED (recovery=rollback, the
 *      default), every rank's stack and counter are back at the last committed
 *      epoch: the boards expanded since then are on the stacks again and the
 *      solutions found since then are no longer counted, so the search simply
 *      goes on and the final count is still exact.
 *   4. An MPI_Allreduce after the checkpoint (so it sees a rollback) decides
 *      whether every stack is empty; then one fuze_recover() catches a failure
 *      after the last checkpoint, and the counters are summed on rank 0.
 *   5. Restart: with "dir=PATH" in the configuration every committed epoch is
 *      persisted to PATH. When the job is killed (inject=kill:...) and the same
 *      command is run again, fuze_init() returns FUZE_RESTARTED and the
 *      registrations bring back every rank's stack and counter as of the
 *      persisted epoch (decoding the files of lost failure domains); the
 *      seeding is skipped and the search goes on from there.
 *
 * Faults are injected by the library from the configuration (--config or the
 * FUZE_* environment), e.g. "faults=1;domain=rank;inject=wipe:ranks=1:at=checkpoint:4".
 *
 * Exit status: 0 when the count matches the known value (or N has no known
 * value here), 1 on a wrong count or a fuze error, 2 on bad options.
 */
#define _POSIX_C_SOURCE 200809L /* fuze_app_ulfm.h: getpid, nanosleep */
#include <fuze.h>
#include <mpi.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuze_app.h"
#include "fuze_app_ulfm.h"

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

#define NQ_MAX_N 20 /* boards are 32-bit masks; A000170 is listed up to 20 */

/* Number of solutions of the N-Queens problem, OEIS A000170, index N. */
static const int64_t known_counts[NQ_MAX_N + 1] = {
    1,        1,        0,         0,         2,          10,        4,
    40,       92,       352,       724,       2680,       14200,     73712,
    365596,   2279184,  14772512,  95815104,  666090624,  INT64_C(4968057848),
    INT64_C(39029188884)};

typedef struct options {
  long n;             /* board size */
  long every;         /* expansions per rank between two checkpoints */
  const char *config; /* passed to fuze_init (NULL: defaults + FUZE_* env) */
  long expect_recoveries; /* -1: not checked */
  int help;
} options;

static void usage(FILE *out) {
  fprintf(out,
          "usage: nqueens [--n N] [--every K] [--config STRING] [--expect-recoveries N]\n"
          "               [--help]\n"
          "\n"
          "Counts the solutions of the N-Queens problem by a distributed depth-first\n"
          "search whose per-rank work stack and solution counter are protected by fuze\n"
          "fused backups, and compares the count with the known value.\n"
          "\n"
          "  --n N            board size, 1..%d (default 10)\n"
          "  --every K        expansions per rank between two fuze_checkpoint calls\n"
          "                   (default 200)\n"
          "  --config STRING  fuze configuration, e.g.\n"
          "                   \"faults=1;domain=rank;inject=wipe:ranks=1:at=checkpoint:4\"\n"
          "                   (FUZE_<KEY> environment variables override its keys;\n"
          "                   nqueens needs recovery=rollback, the default); with\n"
          "                   dir=PATH every epoch is persisted to PATH and the same\n"
          "                   command restarts a killed job from it\n"
          "  --expect-recoveries N\n"
          "                   also fail unless exactly N FUZE_RECOVERED were seen (by\n"
          "                   every rank that ran from the start)\n"
          "  --help           this text\n"
          "\n"
          "Exit status: 0 count matches, 1 wrong count or fuze error, 2 bad options.\n",
          NQ_MAX_N);
}

/* The options, in the order of the table below. */
enum { OPT_N, OPT_EVERY, OPT_CONFIG, OPT_HELP, OPT_EXPECT_RECOVERIES };

static const fuze_app_option option_table[] = {
    [OPT_N] = {"--n", FUZE_APP_VALUE},
    [OPT_EVERY] = {"--every", FUZE_APP_VALUE},
    [OPT_CONFIG] = {"--config", FUZE_APP_VALUE},
    [OPT_HELP] = {"--help", FUZE_APP_FLAG_STRICT},
    [OPT_EXPECT_RECOVERIES] = {"--expect-recoveries", FUZE_APP_VALUE},
};

/* Returns 0, or -1 with a message in err. Accepts "--opt VALUE" and "--opt=VALUE". */
static int parse_options(int argc, char **argv, options *o, char *err, size_t errlen) {
  o->n = 10;
  o->every = 200;
  o->config = NULL;
  o->expect_recoveries = -1;
  o->help = 0;
  for (int i = 1; i < argc; i++) {
    const char *val = NULL;
    const int k = fuze_app_next_option(argc, argv, &i, option_table,
                                       sizeof option_table / sizeof option_table[0], &val, err,
                                       errlen);
    if (k < 0) return -1;
    int bad = 0;
    switch (k) {
      case OPT_N: bad = parse_long(val, 1, NQ_MAX_N, &o->n); break;
      case OPT_EVERY: bad = parse_long(val, 1, INT32_MAX, &o->every); break;
      case OPT_CONFIG: o->config = val; break;
      case OPT_EXPECT_RECOVERIES:
        bad = parse_long(val, 0, INT32_MAX, &o->expect_recoveries);
        break;
      default: o->help = 1; break;
    }
    if (bad) return fuze_app_bad_value(val, option_table[k].name, err, errlen);
  }
  return 0;
}

/* nqueens resumes from whatever fuze_checkpoint() restored, which is only
 * consistent with recovery=rollback: with recovery=forward the stacks would
 * come back as of the last operation and the counter as of the last
 * checkpoint. The library has no call to query the effective configuration,
 * so look at the key here (the FUZE_RECOVERY variable overrides --config).
 * Returns the value ("forward") when it is set, else NULL. */
static const char *forward_recovery(const char *config, char *buf, size_t len) {
  const char *env = getenv("FUZE_RECOVERY");
  const char *val = NULL;
  size_t vlen = 0;
  if (env != NULL) {
    val = env;
    vlen = strlen(env);
  } else if (config != NULL) {
    for (const char *p = config; *p != '\0';) {
      const size_t tlen = strcspn(p, ";,");
      const char *sep = memchr(p, '=', tlen);
      if (sep != NULL && (size_t)(sep - p) == strlen("recovery") &&
          strncmp(p, "recovery", strlen("recovery")) == 0) {
        val = sep + 1; /* the last occurrence wins */
        vlen = tlen - (size_t)(sep + 1 - p);
      }
      p += tlen;
      if (*p != '\0') p++;
    }
  }
  /* Other values than forward are fuze_init's to accept or refuse. */
  if (val == NULL || vlen != strlen("forward") || strncmp(val, "forward", vlen) != 0)
    return NULL;
  snprintf(buf, len, "%.*s", (int)(vlen < 64 ? vlen : 64), val);
  return buf;
}

/* ------------------------------------------------------------------------ */
/* Boards                                                                    */

/* One partial board: `row` queens are placed in rows 0..row-1. The masks say
 * which columns of row `row` are attacked: by a queen in the same column, or
 * along the two diagonals (ld moves one column left per row, rd one right).
 * This fixed-size record is the element of the fused stack; `check` lets a
 * popped record be validated, so a wrongly decoded element is reported
 * instead of silently miscounted. 20 bytes, no padding. */
typedef struct board {
  uint32_t cols;
  uint32_t ld;
  uint32_t rd;
  uint16_t row;
  uint16_t n;
  uint32_t check;
} board;

_Static_assert(sizeof(board) == 20, "board must be a padding-free 20-byte record");

static uint32_t board_check(const board *b) {
  uint64_t z = ((uint64_t)b->cols << 32) ^ ((uint64_t)b->ld << 16) ^ (uint64_t)b->rd ^
               ((uint64_t)b->row << 40) ^ ((uint64_t)b->n << 56);
  z += UINT64_C(0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return (uint32_t)(z ^ (z >> 31));
}

static board board_make(uint32_t cols, uint32_t ld, uint32_t rd, int row, int n) {
  board b;
  memset(&b, 0, sizeof b);
  b.cols = cols;
  b.ld = ld;
  b.rd = rd;
  b.row = (uint16_t)row;
  b.n = (uint16_t)n;
  b.check = board_check(&b);
  return b;
}

static int popcount32(uint32_t x) {
  int c = 0;
  for (; x != 0; x &= x - 1u) c++;
  return c;
}

static uint32_t full_mask(int n) { return n >= 32 ? UINT32_MAX : ((UINT32_C(1) << n) - 1u); }

/* A record is sane when its check word matches, it belongs to this board size,
 * and it has exactly `row` columns taken, all on the board. */
static int board_valid(const board *b, int n) {
  if (b->check != board_check(b) || b->n != (uint16_t)n || b->row > (uint16_t)n) return 0;
  const uint32_t full = full_mask(n);
  if ((b->cols & ~full) != 0 || (b->ld & ~full) != 0 || (b->rd & ~full) != 0) return 0;
  return popcount32(b->cols) == (int)b->row;
}

/* The child of b with a queen in column bit `bit` of row b->row. */
static board board_child(const board *b, uint32_t bit, int n) {
  const uint32_t full = full_mask(n);
  return board_make(b->cols | bit, ((b->ld | bit) << 1) & full, (b->rd | bit) >> 1,
                    b->row + 1, n);
}

/* Report the failure of a collective fuze call from rank 0 (it fails with the
 * same status on every rank). */
static void report_fuze_error(const fuze_ctx *ctx, const char *call, int rc, long ckpt) {
  if (!g_rank0) return;
  char where[48];
  snprintf(where, sizeof where, " at checkpoint call #%ld", ckpt);
  fuze_app_fuze_error("nqueens", call, rc, where, fuze_last_error(ctx));
}

/* ------------------------------------------------------------------------ */
/* The search                                                                */

/* The protected state. The counter is registered with fuze_protect, so it must
 * stay at the same address until fuze_finalize(): main() owns it. */
typedef struct search {
  fuze_ctx *ctx;
  MPI_Comm comm;
  int rank, size;
  int n;
  long every;
  fuze_stack *stack; /* fused stack of `board` records */
  int64_t count[1];  /* protected: solutions found by this rank */
  /* Not protected: statistics of this process. */
  long ckpt_calls;      /* fuze_checkpoint calls */
  long rounds;          /* search rounds */
  long recoveries;      /* FUZE_RECOVERED seen */
  long reseeds;         /* rollbacks to before the seeds were committed */
  uint64_t expansions;  /* boards popped, including work redone after rollbacks */
  uint64_t seeded;      /* boards pushed by the seeding on this rank */
  int joined;           /* ULFM: this rank replaced a dead one and has not yet met
                           the survivors after their FUZE_RECOVERED */
  int mpi_rc;           /* the error of the last failed MPI call */
} search;

/* Deal every valid placement of the first `depth` rows round-robin over the
 * ranks; every rank enumerates them in the same order. Local. Returns 0 or the
 * (negative) status of a failed push. */
static int seed(search *s, int depth, uint64_t *dealt) {
  board work[NQ_MAX_N + 1];
  uint32_t avail[NQ_MAX_N + 1];
  const uint32_t full = full_mask(s->n);
  uint64_t idx = 0;
  int sp = 0;
  *dealt = 0;
  work[0] = board_make(0, 0, 0, 0, s->n);
  avail[0] = full;
  /* Iterative DFS in a fixed order: lowest free column first. */
  while (sp >= 0) {
    board *b = &work[sp];
    if (b->row == depth) {
      if ((int)(idx++ % (uint64_t)s->size) == s->rank) {
        int rc = fuze_stack_push(s->stack, b);
        if (rc < 0) return rc;
        (*dealt)++;
      }
      sp--;
      continue;
    }
    const uint32_t free_cols = avail[sp] & ~(b->cols | b->ld | b->rd) & full;
    if (free_cols == 0) {
      sp--;
      continue;
    }
    const uint32_t bit = free_cols & (~free_cols + 1u);
    avail[sp] &= ~bit;
    work[sp + 1] = board_child(b, bit, s->n);
    avail[sp + 1] = full;
    sp++;
  }
  return 0;
}

/* Up to `every` expansions. Local. Returns 0, a negative fuze status of a
 * failed stack operation, FUZE_ERR_CORRUPT for an invalid record, or
 * FUZE_RECOVERED when an operation noticed a death and repaired it (ULFM). */
static int expand(search *s, char *why, size_t whylen) {
  const int n = s->n;
  const uint32_t full = full_mask(n);
  for (long k = 0; k < s->every && fuze_stack_size(s->stack) > 0; k++) {
    board b;
    int rc = fuze_stack_pop(s->stack, &b);
    if (rc == FUZE_RECOVERED) return rc; /* ULFM: the pop noticed a death and repaired it */
    if (rc < 0) {
      snprintf(why, whylen, "fuze_stack_pop returned %s (%d): %s", fuze_err_name(rc), rc,
               fuze_last_error(s->ctx));
      return rc;
    }
    s->expansions++;
    if (!board_valid(&b, n)) {
      snprintf(why, whylen,
               "popped an invalid board record (row %u, n %u, cols %#x, check %#x) after %"
               PRIu64 " expansions", (unsigned)b.row, (unsigned)b.n, (unsigned)b.cols,
               (unsigned)b.check, s->expansions);
      return FUZE_ERR_CORRUPT;
    }
    if (b.row == n) { /* a complete board (only from the seeding, for N <= 2) */
      s->count[0]++;
      continue;
    }
    uint32_t free_cols = ~(b.cols | b.ld | b.rd) & full;
    if (b.row + 1 == n) { /* every child is a complete board: count, don't push */
      s->count[0] += popcount32(free_cols);
      continue;
    }
    while (free_cols != 0) {
      const uint32_t bit = free_cols & (~free_cols + 1u);
      free_cols &= ~bit;
      const board c = board_child(&b, bit, n);
      rc = fuze_stack_push(s->stack, &c);
      if (rc == FUZE_RECOVERED) return rc; /* ULFM: rolled back, like fuze_checkpoint's */
      if (rc < 0) {
        snprintf(why, whylen, "fuze_stack_push returned %s (%d): %s", fuze_err_name(rc), rc,
                 fuze_last_error(s->ctx));
        return rc;
      }
    }
  }
  return 0;
}

/* After FUZE_RECOVERED, on every compute rank: the survivors after the call
 * that returned it, and a replacement (ULFM: s->joined) once its
 * registrations restored its stack and counter. All make these collectives,
 * in this order, on the compute communicator taken again from fuze_comm() (a
 * new one after a real death): report the restored state and re-seed when
 * the rollback went back to before the seeds were first committed. Returns
 * 0, a negative status (already reported), or 1 when an MPI call failed
 * (another death: the caller calls fuze_recover() again). */
static int after_recovery(search *s, const char *by, double dt, int depth) {
  s->comm = fuze_comm(s->ctx);
  int64_t sum[2] = {(int64_t)fuze_stack_size(s->stack), s->count[0]};
  int64_t max[2] = {-s->count[0], (int64_t)(dt * 1e6)}; /* -min count, the call's time */
  if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, sum, 2, MPI_INT64_T, MPI_SUM,
                                 s->comm)) != MPI_SUCCESS ||
      (s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, max, 2, MPI_INT64_T, MPI_MAX,
                                 s->comm)) != MPI_SUCCESS)
    return 1;
  const int64_t lo = -max[0];
  const double dtmax = (double)max[1] / 1e6;
  if (lo < 0) {
    if (g_rank0)
      fprintf(stderr, "nqueens: after FUZE_RECOVERED by %s a restored counter is negative "
              "(%" PRId64 ")\n", by, lo);
    return FUZE_ERR_STATE;
  }
  if (s->joined) {
    s->joined = 0;
    g_rank0 = (s->rank == 0);
    printf("nqueens: world rank %d replaced dead rank %d: its stack (%zu boards) and counter "
           "(%" PRId64 ") restored, going on\n", fuze_app_world_rank(), s->rank,
           fuze_stack_size(s->stack), s->count[0]);
    SAY("nqueens: FUZE_RECOVERED by the survivors' fuze call: rolled back to %" PRId64 " boards "
        "on the stacks and %" PRId64 " solutions counted (the call took %.4f s, max over "
        "ranks)\n", sum[0], sum[1], dtmax); /* rank 0 died: the report comes from here */
    fflush(stdout);
  } else {
    s->recoveries++;
    SAY("nqueens: FUZE_RECOVERED by %s (round %ld): rolled back to %" PRId64
        " boards on the stacks and %" PRId64 " solutions counted (the call took %.4f s, "
        "max over ranks)\n", by, s->rounds, sum[0], sum[1], dtmax);
  }
  if (sum[0] == 0 && sum[1] == 0) {
    /* Empty stacks and nothing counted: the epoch before the seeds were
     * committed (or a finished search with no solution, where seeding again
     * pushes nothing). Deal the seeds again; the next checkpoint commits them. */
    uint64_t dealt = 0;
    int rc = seed(s, depth, &dealt);
    int worst = rc;
    if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MIN,
                                   s->comm)) != MPI_SUCCESS)
      return 1;
    if (worst < 0) {
      if (rc < 0)
        fprintf(stderr, "nqueens: rank %d: re-seeding: fuze_stack_push returned %s (%d): %s\n",
                s->rank, fuze_err_name(rc), rc, fuze_last_error(s->ctx));
      return worst;
    }
    s->reseeds++;
    SAY("nqueens: the rollback went back to before the seeds were committed: seeds dealt "
        "again\n");
  }
  return 0;
}

/* fuze_recover() after this rank's MPI call `what` failed with s->mpi_rc
 * (ULFM: a rank died, or fuze revoked the communicator), then
 * after_recovery(), again while its own collectives fail. Returns 0 or a
 * negative status (reported). */
static int recover_after(search *s, const char *what, int depth) {
  for (int tries = 0; tries < 100; tries++) {
    const double c0 = MPI_Wtime();
    const int rc = fuze_recover(s->ctx);
    const double dt = MPI_Wtime() - c0;
    if (rc < 0) {
      report_fuze_error(s->ctx, "fuze_recover", rc, s->ckpt_calls);
      return rc;
    }
    if (rc != FUZE_RECOVERED) {
      fuze_app_mpi_error("nqueens", s->rank, what, s->mpi_rc);
      return FUZE_ERR_MPI;
    }
    char by[96];
    snprintf(by, sizeof by, "fuze_recover after %s failed", what);
    const int ar = after_recovery(s, by, dt, depth);
    if (ar <= 0) return ar;
    what = "an MPI_Allreduce after FUZE_RECOVERED";
  }
  SAY_ERR("nqueens: giving up after 100 failed collectives after FUZE_RECOVERED\n");
  return FUZE_ERR_STATE;
}

/* after_recovery(), and recover_after() when its collectives fail. */
static int recovered(search *s, const char *by, double dt, int depth) {
  const int rc = after_recovery(s, by, dt, depth);
  return rc <= 0 ? rc : recover_after(s, "an MPI_Allreduce after FUZE_RECOVERED", depth);
}

/* After FUZE_RESTARTED: the registrations restored every rank's stack and
 * counter from the persisted epoch. Report them; when the stacks are empty
 * and nothing was counted (the search had not been seeded, or found nothing),
 * deal the seeds, as after a rollback to epoch 0. Collective. Returns 0 (and
 * *seeded = 1 when it dealt the seeds) or a negative status (reported). */
static int after_restart(search *s, int *seeded) {
  int64_t mine[2] = {(int64_t)fuze_stack_size(s->stack), s->count[0]};
  int64_t tot[2] = {0, 0};
  int64_t lo = s->count[0];
  MPI_Allreduce(mine, tot, 2, MPI_INT64_T, MPI_SUM, s->comm);
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT64_T, MPI_MIN, s->comm);
  if (lo < 0) {
    SAY_ERR("nqueens: after FUZE_RESTARTED a restored counter is negative (%" PRId64 ")\n", lo);
    return FUZE_ERR_STATE;
  }
  fuze_stats st;
  memset(&st, 0, sizeof st);
  fuze_get_stats(s->ctx, &st);
  SAY("nqueens: restarted from the persisted epoch %" PRIu64 ": resuming with %" PRId64
      " boards on the stacks and %" PRId64 " solutions counted\n", st.epoch, tot[0], tot[1]);
  *seeded = 0;
  if (tot[0] != 0 || tot[1] != 0) return 0;
  *seeded = 1;
  return 0;
}

/* The seeding, or what a replacement does instead (its stack and counter
 * are restored: it meets the survivors after their FUZE_RECOVERED). Returns
 * 0 or a negative status (reported). */
static int start_search(search *s, int restarted, int depth) {
  if (s->joined) return recovered(s, "a replacement joining", 0.0, depth);
  int rc = FUZE_SUCCESS;
  int must_seed = 1;
  if (restarted) {
    rc = after_restart(s, &must_seed);
    if (rc < 0) return rc;
  }
  uint64_t dealt = 0;
  rc = must_seed ? seed(s, depth, &dealt) : 0;
  int worst = rc;
  if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MIN,
                                 s->comm)) != MPI_SUCCESS)
    return recover_after(s, "MPI_Allreduce after the seeding", depth);
  if (worst < 0) {
    if (rc < 0)
      fprintf(stderr, "nqueens: rank %d: seeding: fuze_stack_push returned %s (%d): %s\n",
              s->rank, fuze_err_name(rc), rc, fuze_last_error(s->ctx));
    return worst;
  }
  s->seeded = dealt;
  if (must_seed) {
    uint64_t total = 0, lo = dealt, hi = dealt;
    MPI_Reduce(&dealt, &total, 1, MPI_UINT64_T, MPI_SUM, 0, s->comm);
    MPI_Reduce(&dealt, &lo, 1, MPI_UINT64_T, MPI_MIN, 0, s->comm);
    MPI_Reduce(&dealt, &hi, 1, MPI_UINT64_T, MPI_MAX, 0, s->comm);
    SAY("nqueens: seeded %" PRIu64 " partial boards of %d row%s round-robin (%" PRIu64
        "..%" PRIu64 " per rank)\n", total, depth, depth == 1 ? "" : "s", lo, hi);
  }
  return 0;
}

/* The whole search. Collective. Returns 0 or a negative status (reported).
 * restarted: fuze_init returned FUZE_RESTARTED (the stacks and counters hold
 * the persisted epoch). An MPI call of the search that fails (ULFM: a rank
 * died) leads to fuze_recover(), which rolls every rank back like a
 * FUZE_RECOVERED of fuze_checkpoint(). */
static int run_search(search *s, int restarted) {
  const int depth = s->n < 2 ? s->n : 2;
  char why[512] = "";
  int rc = start_search(s, restarted, depth);
  if (rc < 0) return rc;
  fuze_app_ulfm_pid();

  /* A library that kept returning FUZE_RECOVERED would loop forever. */
  const long max_recoveries = 1000;

  for (;;) {
    for (;;) {
      fuze_app_ulfm_pace();
      s->rounds++;
      rc = expand(s, why, sizeof why);
      if (rc == FUZE_RECOVERED) { /* a stack operation noticed a death (ULFM) and repaired it */
        rc = recovered(s, "a stack operation", 0.0, depth);
        if (rc < 0) return rc;
        if (s->recoveries > max_recoveries) {
          SAY_ERR("nqueens: giving up after %ld recoveries\n", s->recoveries);
          return FUZE_ERR_STATE;
        }
        continue;
      }
      /* Agree on local failures before the collective checkpoint, so that a
       * failing rank never leaves the others waiting in it. */
      int worst = rc;
      if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MIN,
                                     s->comm)) != MPI_SUCCESS) {
        /* A death seen by the search's own call: every rank rolls back. */
        rc = recover_after(s, "MPI_Allreduce", depth);
        if (rc < 0) return rc;
        if (s->recoveries > max_recoveries) {
          SAY_ERR("nqueens: giving up after %ld recoveries\n", s->recoveries);
          return FUZE_ERR_STATE;
        }
        continue;
      }
      if (worst < 0) {
        if (rc < 0) {
          fprintf(stderr, "nqueens: rank %d: round %ld: %s\n", s->rank, s->rounds, why);
          fflush(stderr);
        }
        return worst;
      }

      s->ckpt_calls++;
      const double c0 = MPI_Wtime();
      rc = fuze_checkpoint(s->ctx);
      const double dt = MPI_Wtime() - c0;
      if (rc < 0) {
        report_fuze_error(s->ctx, "fuze_checkpoint", rc, s->ckpt_calls);
        return rc;
      }
      if (rc == FUZE_RECOVERED) {
        char by[64];
        snprintf(by, sizeof by, "checkpoint call #%ld", s->ckpt_calls);
        rc = recovered(s, by, dt, depth);
        if (rc < 0) return rc;
        if (s->recoveries > max_recoveries) {
          if (g_rank0)
            fprintf(stderr, "nqueens: giving up after %ld recoveries\n", s->recoveries);
          return FUZE_ERR_STATE;
        }
        /* Every recovery resumes at the next round, where a replacement
         * (ULFM) comes in: the next checkpoint is followed by the test. */
        continue;
      } else if (rc != FUZE_SUCCESS && g_rank0) {
        fprintf(stderr, "nqueens: fuze_checkpoint returned unexpected status %d (%s), "
                "ignored\n", rc, fuze_err_name(rc));
      }

      /* After the checkpoint, so that a rollback's refilled stacks count. */
      int empty = (fuze_stack_size(s->stack) == 0);
      if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, &empty, 1, MPI_INT, MPI_LAND,
                                     s->comm)) != MPI_SUCCESS) {
        rc = recover_after(s, "MPI_Allreduce", depth);
        if (rc < 0) return rc;
        continue;
      }
      if (empty) break;
    }

    /* A failure after the last checkpoint would go unnoticed: ask once more.
     * If it finds lost ranks, everything rolls back and the search goes on. */
    const double c0 = MPI_Wtime();
    rc = fuze_recover(s->ctx);
    const double dt = MPI_Wtime() - c0;
    if (rc < 0) {
      report_fuze_error(s->ctx, "fuze_recover", rc, s->ckpt_calls);
      return rc;
    }
    if (rc != FUZE_RECOVERED) break;
    rc = recovered(s, "the final fuze_recover", dt, depth);
    if (rc < 0) return rc;
    if (s->recoveries > max_recoveries) {
      if (g_rank0) fprintf(stderr, "nqueens: giving up after %ld recoveries\n", s->recoveries);
      return FUZE_ERR_STATE;
    }
  }
  return FUZE_SUCCESS;
}

/* ------------------------------------------------------------------------ */

static void print_stats(const search *s, int nspare) {
  fuze_app_stats st;
  if (fuze_app_sum_stats("nqueens", s->ctx, s->comm, &st) != 0) return;
  uint64_t expansions = 0;
  MPI_Reduce(&s->expansions, &expansions, 1, MPI_UINT64_T, MPI_SUM, 0, s->comm);
  if (!g_rank0) return;
  printf("nqueens: %" PRIu64 " expansions summed over %d ranks (work redone after rollbacks "
         "included)\n", expansions, s->size);
  fuze_app_print_stats("nqueens", &st, s->size, nspare);
  fflush(stdout);
}

/* What the ranks host for the fused stack (fuze_stats counts arrays only).
 * Collective; call it when no stack operation is in flight. */
static void print_stack_stats(const search *s, int nspare) {
  fuze_fused_stats fs;
  memset(&fs, 0, sizeof fs);
  int rc = fuze_flush(s->ctx);
  MPI_Barrier(s->comm);
  if (rc >= 0) rc = fuze_fused_info(s->ctx, "nqueens.stack", &fs);
  int ok = (rc >= 0);
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, s->comm);
  if (!ok) {
    if (rc < 0)
      fprintf(stderr, "nqueens: rank %d: fuze_flush / fuze_fused_info returned %s: %s\n",
              s->rank, fuze_err_name(rc), fuze_last_error(s->ctx));
    return;
  }
  uint64_t mine[6] = {(uint64_t)fs.regions, fs.nodes, fs.stray_nodes, fs.capacity, fs.ops,
                      fs.deferred_ops};
  uint64_t tot[6] = {0, 0, 0, 0, 0, 0};
  MPI_Reduce(mine, tot, 6, MPI_UINT64_T, MPI_SUM, 0, s->comm);
  if (!g_rank0) return;
  char nb[32];
  human_bytes(tot[1] * sizeof(board), nb, sizeof nb);
  printf("nqueens: fused stack summed over %d ranks: %" PRIu64 " push/pop operations (%"
         PRIu64 " deferred to a collective for capacity), %" PRIu64 " backup region%s hosted "
         "with %" PRIu64 " live fused nodes (%s), %" PRIu64 " stray, capacity %" PRIu64
         " nodes%s\n", s->size, tot[4], tot[5], tot[0], tot[0] == 1 ? "" : "s", tot[1], nb,
         tot[2], tot[3], nspare > 0 ? " (spare ranks not counted)" : "");
  fflush(stdout);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int wrank = 0, wsize = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);

  options opt;
  char err[256] = "";
  const int parse_rc = parse_options(argc, argv, &opt, err, sizeof err);
  int exit_now = fuze_app_options_done("nqueens", parse_rc, err, opt.help, usage);
  if (exit_now >= 0) return exit_now;
  char recovery[80];
  if (forward_recovery(opt.config, recovery, sizeof recovery) != NULL) {
    if (wrank == 0)
      fprintf(stderr, "nqueens: needs recovery=rollback (got recovery=%s): it resumes the "
              "search from the restored stacks and counters, which are only consistent "
              "with each other after a rollback\n", recovery);
    MPI_Finalize();
    return 2;
  }

  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int restarted = 0, joined = 0;
  exit_now = fuze_app_init_ft("nqueens", opt.config, &ctx, &app, &restarted, &joined);
  if (exit_now >= 0) return exit_now; /* fuze_init failed, or a spare or unused replacement */

  static search s; /* static: the protected counter must outlive every fuze call */
  memset(&s, 0, sizeof s);
  s.ctx = ctx;
  s.comm = fuze_comm(ctx); /* app; a new one after each real death (ULFM) */
  s.n = (int)opt.n;
  s.every = opt.every;
  s.joined = joined;
  MPI_Comm_rank(s.comm, &s.rank);
  MPI_Comm_size(s.comm, &s.size);
  g_rank0 = (s.rank == 0) && !joined; /* a replacement says what it does itself */
  const int nspare = wsize - s.size;
  int status = 0;

  SAY("nqueens: N = %d, %d compute rank%s, %d spare rank%s, up to %ld expansions per rank "
      "between checkpoints\n", s.n, s.size, s.size == 1 ? "" : "s", nspare,
      nspare == 1 ? "" : "s", s.every);
  if (opt.config)
    SAY("nqueens: fuze config \"%s\"\n", opt.config);
  else
    SAY("nqueens: fuze config: defaults and FUZE_* environment\n");

  const double t0 = MPI_Wtime();
  int rc = fuze_stack_create(ctx, "nqueens.stack", sizeof(board), &s.stack);
  if (rc < 0) {
    report_fuze_error(ctx, "fuze_stack_create(nqueens.stack)", rc, 0);
    status = 1;
    goto finish;
  }
  s.count[0] = 0;
  if (joined) {
    /* A replacement (ULFM): the registrations, made by it alone, restore the
     * dead rank's stack and counter; the counter must be one element. */
    size_t stored = 0;
    rc = fuze_stored_count(ctx, "nqueens.count", &stored);
    if (rc != FUZE_SUCCESS || stored != 1) {
      fprintf(stderr, "nqueens: world rank %d, replacing rank %d: fuze_stored_count("
              "nqueens.count) returned %s with %zu elements, 1 expected: %s\n",
              fuze_app_world_rank(), s.rank, fuze_err_name(rc), stored, fuze_last_error(ctx));
      MPI_Abort(MPI_COMM_WORLD, 1); /* the survivors would wait for it */
    }
  }
  if (restarted) {
    /* The registration restores the persisted counter: one element. (The
     * stack's elements were restored by fuze_stack_create, whatever their
     * number.) */
    size_t stored = 0;
    if (fuze_app_stored_count("nqueens", ctx, app, "nqueens.count", 1, &stored) != 0) {
      status = 1;
      goto finish;
    }
  }
  rc = fuze_protect(ctx, "nqueens.count", s.count, 1, MPI_INT64_T, NULL);
  if (rc < 0) {
    report_fuze_error(ctx, "fuze_protect(nqueens.count)", rc, 0);
    status = 1;
    goto finish;
  }
  SAY("nqueens: fused stack \"nqueens.stack\" of %zu-byte boards, protected counter "
      "\"nqueens.count\" (1 x MPI_INT64_T)\n", sizeof(board));

  rc = run_search(&s, restarted);
  g_rank0 = (s.rank == 0);
  if (rc < 0) {
    status = 1;
    goto finish;
  }
  const double secs = MPI_Wtime() - t0;

  int64_t total = 0;
  MPI_Reduce(&s.count[0], &total, 1, MPI_INT64_T, MPI_SUM, 0, s.comm);
  /* The most of any rank: a replacement (ULFM) counts only since it joined. */
  long counts[4] = {s.rounds, s.ckpt_calls, s.recoveries, s.reseeds}, cmax[4] = {0, 0, 0, 0};
  MPI_Reduce(counts, cmax, 4, MPI_LONG, MPI_MAX, 0, s.comm);
  SAY("nqueens: search done in %.3f s: %ld rounds, %ld checkpoint calls, %ld recover%s%s\n",
      secs, cmax[0], cmax[1], cmax[2], cmax[2] == 1 ? "y" : "ies",
      cmax[3] > 0 ? " (seeds dealt again after a rollback to epoch 0)" : "");
  print_stats(&s, nspare);
  print_stack_stats(&s, nspare);

  int match = 1;
  if (g_rank0) {
    SAY("nqueens: count %" PRId64 ", known value %" PRId64 " (N = %d)\n", total,
        known_counts[s.n], s.n);
    match = (total == known_counts[s.n]);
  }
  MPI_Bcast(&match, 1, MPI_INT, 0, s.comm);
  if (match) {
    SAY("nqueens: count matches\n");
  } else {
    SAY("nqueens: WRONG COUNT\n");
    status = 1;
  }
  if (opt.expect_recoveries >= 0) {
    /* Counted by the ranks that ran from the start (a replacement saw only
     * the recoveries after it joined): the fewest and the most. */
    int64_t rec[2] = {joined ? INT64_MIN : -(int64_t)s.recoveries,
                      joined ? INT64_MIN : (int64_t)s.recoveries};
    MPI_Allreduce(MPI_IN_PLACE, rec, 2, MPI_INT64_T, MPI_MAX, s.comm);
    if (-rec[0] != opt.expect_recoveries || rec[1] != opt.expect_recoveries) {
      if (-rec[0] == rec[1])
        SAY("nqueens: MISMATCH: %" PRId64 " FUZE_RECOVERED seen, --expect-recoveries %ld\n",
            rec[1], opt.expect_recoveries);
      else
        SAY("nqueens: MISMATCH: %" PRId64 " to %" PRId64 " FUZE_RECOVERED seen (by different "
            "ranks), --expect-recoveries %ld\n", -rec[0], rec[1], opt.expect_recoveries);
      status = 1;
    }
  }

finish:
  if (fuze_app_finalize("nqueens", &ctx) != 0) status = 1;
  fuze_app_ulfm_verdict("nqueens", status == 0);
  MPI_Comm_free(&app);
  MPI_Finalize();
  return status;
}
