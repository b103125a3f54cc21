/* test_incr_kill: a small application whose persisted epochs are increments
 * (issue 16), for the real-kill cycle of restart_cycle.sh (registered in
 * persist.cmake): only a few chunks change per step, so with persist_base > 1
 * every persisted epoch but the first (and the first after a restart) is an
 * increment, and inject=kill:...:phase=persist kills a rank with SIGKILL in
 * the middle of writing one (between its temporary incr-E.h5 and the rename;
 * with persist=async inside the writer thread).
 *
 * State per rank: array 'u' (U doubles, 4096-byte chunks; 3 chunks rewritten
 * per step at places drawn from (rank, step)), array 'step' (the step
 * counter) and stack 'log' (one 16-byte entry pushed per step). The state
 * after step s is a pure function of (rank, s): model() replays it without
 * fuze. Every step is checkpointed.
 *
 * After FUZE_RESTARTED every rank compares its restored 'u' and 'log' bit for
 * bit with model(restored step) and prints (rank 0) "restarted from the
 * persisted epoch E: resuming at step S of N"; at the end every rank compares
 * with model(N) ("state matches the failure-free model at step N on every
 * rank") and rank 0 prints a checksum of the whole job's state, the final
 * answer restart_cycle.sh compares with the failure-free run's. Any mismatch
 * exits 1 naming the rank, the structure and the first differing index.
 *
 * usage: test_incr_kill --config CFG [--steps N]   (CFG: ',' or ';' between keys) */
#include <fuze.h>
#include <mpi.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U 32768                /* doubles per rank: 256 KiB, 64 chunks of 4096 bytes */
#define CH (4096 / sizeof(double))
#define NCH (U / CH)
#define TOUCH 3                /* chunks rewritten per step */
#define MAXSTEPS 64

typedef struct entry {
  int64_t step, value;
} entry;

static int me;

static uint64_t mix(uint64_t z) { /* splitmix64 finalizer */
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Step s (>= 1) of rank r: TOUCH chunks of u rewritten, one log entry. */
static void apply_step(int r, int64_t s, double *u, entry *e) {
  for (int j = 0; j < TOUCH; j++) {
    uint64_t h = mix(((uint64_t)r << 40) ^ ((uint64_t)s << 8) ^ (uint64_t)j);
    size_t c = (size_t)(h % NCH);
    for (size_t i = c * CH; i < (c + 1) * CH; i++) u[i] = (double)(mix(h ^ i) >> 11) / 1024.0;
  }
  e->step = s;
  e->value = (int64_t)mix(((uint64_t)r << 32) ^ (uint64_t)s);
}

/* The failure-free state of rank r after step s. */
static void model(int r, int64_t s, double *u, entry *log) {
  for (size_t i = 0; i < U; i++) u[i] = (double)r * 1e6 + (double)i;
  for (int64_t k = 1; k <= s; k++) apply_step(r, k, u, &log[k - 1]);
}

/* 0 when u and the stack equal model(me, s); else prints the first
 * difference. The stack's entries, bottom first, go to out (MAXSTEPS). */
static int matches(fuze_stack *st, const double *u, int64_t s, const char *when, entry *out) {
  static double mu[U];
  static entry mlog[MAXSTEPS];
  model(me, s, mu, mlog);
  for (size_t i = 0; i < U; i++)
    if (memcmp(&u[i], &mu[i], sizeof *u)) {
      fprintf(stderr, "test_incr_kill: rank %d %s: u[%zu] = %.17g, the model at step %" PRId64
              " has %.17g\n", me, when, i, u[i], s, mu[i]);
      return 1;
    }
  size_t n = fuze_stack_size(st);
  if (n != (size_t)s || n > MAXSTEPS) {
    fprintf(stderr, "test_incr_kill: rank %d %s: stack 'log' holds %zu entries, the model at step "
            "%" PRId64 " has %" PRId64 "\n", me, when, n, s, s);
    return 1;
  }
  /* Pop everything, compare, push it back (the stack's only read is its top). */
  entry *tmp = out;
  int bad = 0;
  for (size_t k = n; k-- > 0;) {
    if (fuze_stack_pop(st, &tmp[k]) != FUZE_SUCCESS) return 1;
    if (!bad && memcmp(&tmp[k], &mlog[k], sizeof tmp[k])) {
      fprintf(stderr, "test_incr_kill: rank %d %s: log entry %zu is (%" PRId64 ", %" PRId64
              "), the model has (%" PRId64 ", %" PRId64 ")\n", me, when, k, tmp[k].step,
              tmp[k].value, mlog[k].step, mlog[k].value);
      bad = 1;
    }
  }
  for (size_t k = 0; k < n; k++)
    if (fuze_stack_push(st, &tmp[k]) != FUZE_SUCCESS) return 1;
  return bad;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
  return h;
}

static int die(const char *what, int rc, fuze_ctx *ctx) {
  fprintf(stderr, "test_incr_kill: rank %d: %s returned %s: %s\n", me, what, fuze_err_name(rc),
          fuze_last_error(ctx));
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  const char *cfgarg = NULL;
  long steps = 8;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc) cfgarg = argv[++i];
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
    else {
      if (me == 0) fprintf(stderr, "usage: test_incr_kill --config CFG [--steps N]\n");
      MPI_Finalize();
      return 2;
    }
  }
  if (!cfgarg || steps < 1 || steps > MAXSTEPS) {
    if (me == 0) fprintf(stderr, "test_incr_kill: --config is required, --steps 1..%d\n", MAXSTEPS);
    MPI_Finalize();
    return 2;
  }
  char cfg[2048];
  snprintf(cfg, sizeof cfg, "%s;chunk=4096", cfgarg);
  for (char *c = cfg; *c; c++)
    if (*c == ',') *c = ';';

  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  if (rc != FUZE_SUCCESS && rc != FUZE_RESTARTED) die("fuze_init", rc, ctx);
  if (!ctx) { /* a spare: served the job inside fuze_init */
    MPI_Finalize();
    return 0;
  }
  int restarted = rc == FUZE_RESTARTED, arank, asize;
  MPI_Comm_rank(app, &arank);
  MPI_Comm_size(app, &asize);
  if (asize > 256) die("test_incr_kill (at most 256 ranks)", FUZE_ERR_ARG, ctx);
  static double u[U];
  int64_t step = 0;
  entry e;
  fuze_stack *log;
  model(me, 0, u, NULL);
  if ((rc = fuze_protect(ctx, "u", u, U, MPI_DOUBLE, NULL))) die("fuze_protect u", rc, ctx);
  if ((rc = fuze_protect(ctx, "step", &step, 1, MPI_INT64_T, NULL))) die("fuze_protect step", rc, ctx);
  if ((rc = fuze_stack_create(ctx, "log", sizeof(entry), &log))) die("fuze_stack_create", rc, ctx);

  int bad = 0;
  entry ml[MAXSTEPS];
  memset(ml, 0, sizeof ml);
  if (restarted) {
    int64_t lo = step, hi = step;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT64_T, MPI_MIN, app);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT64_T, MPI_MAX, app);
    if (lo != hi || lo < 1 || lo > steps) {
      if (arank == 0)
        fprintf(stderr, "test_incr_kill: restored step counters differ or are out of range: "
                "%" PRId64 "..%" PRId64 "\n", lo, hi);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bad = matches(log, u, step, "right after the restart", ml);
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, app);
    fuze_stats st;
    memset(&st, 0, sizeof st);
    fuze_get_stats(ctx, &st);
    if (arank == 0) {
      if (!bad)
        printf("test_incr_kill: state right after the restart matches the failure-free model at "
               "step %" PRId64 " on every rank\n", step);
      printf("test_incr_kill: restarted from the persisted epoch %" PRIu64 ": resuming at step "
             "%" PRId64 " of %ld\n", st.epoch, step, steps);
      fflush(stdout);
    }
  }

  while (step < steps && !bad) {
    step++;
    apply_step(me, step, u, &e);
    if ((rc = fuze_stack_push(log, &e))) die("fuze_stack_push", rc, ctx);
    if ((rc = fuze_checkpoint(ctx)) != FUZE_SUCCESS) die("fuze_checkpoint", rc, ctx);
    fuze_stats st;
    memset(&st, 0, sizeof st);
    fuze_get_stats(ctx, &st);
    if (arank == 0) {
      printf("test_incr_kill: step %" PRId64 " committed (epoch %" PRIu64 "); this run persisted "
             "%" PRIu64 " epochs, %" PRIu64 " of them increments\n", step, st.epoch,
             st.persisted_epochs, st.persisted_increments);
      fflush(stdout);
    }
  }
  if (!bad) bad = matches(log, u, steps, "at the end", ml);
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, app);
  /* The job's checksum: every rank's u and log, in rank order. */
  uint64_t h = fnv(0xcbf29ce484222325ULL, u, sizeof u), all[256];
  h = fnv(h, ml, sizeof(entry) * (size_t)steps);
  MPI_Gather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, app);
  if ((rc = fuze_finalize(&ctx))) die("fuze_finalize", rc, ctx);
  if (arank == 0) {
    uint64_t job = fnv(0xcbf29ce484222325ULL, all, sizeof(uint64_t) * (size_t)asize);
    if (!bad)
      printf("test_incr_kill: state matches the failure-free model at step %ld on every rank\n",
             steps);
    printf("test_incr_kill: checksum %016" PRIx64 " (protected run)\n", job);
  }
  MPI_Comm_free(&app);
  MPI_Finalize();
  return bad ? 1 : 0;
}
