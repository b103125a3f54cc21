/* test_ulfm_recover: real process deaths survived inside the job (ULFM,
 * issue 14), through the public API only, as an application writes it.
 *
 *   test_ulfm_recover KILLS CONFIG [EVENTS]
 *
 * KILLS: "-" or R@S[+R@S...]: compute rank R SIGKILLs itself in step S, after
 * its updates and before that step's checkpoint (a death between two
 * checkpoints, while the others are in fuze_checkpoint or in the
 * application's own MPI_Allreduce). CONFIG: fuze's configuration (with
 * replacements=N; inject=kill:... kills inside a checkpoint phase instead).
 *
 * Every compute rank r protects, in this order: an int64 "st" (the step its
 * state belongs to), 4096 doubles "a" (a[i] = r*1e6 + t*1000 + i after step
 * t), a stack "s" (r*1000+1 .. r*1000+t) and a map "m" (k -> r*k*7 for k in
 * 1..t); every step updates them, runs an MPI_Allreduce of its own on the
 * compute communicator, then fuze_checkpoint. On FUZE_RECOVERED (from
 * fuze_checkpoint, or from fuze_recover after its own MPI call failed) it
 * takes fuze_comm() again and continues from st (rollback). A replacement
 * returns FUZE_RECOVERED from fuze_init, makes the same registrations (its
 * fuze_stored_count of "s", "m" and "a" must say t, t and 4096) and joins
 * the loop. At the end every compute rank checks its whole state bit for bit
 * against the formulas above for STEPS steps, and the survivors that ran
 * from the start that they saw exactly as many recoveries as there were
 * death events (EVENTS when given: deaths from outside, kill -9 by
 * ulfm_run.sh at a random time, each step then taking ULFM_STEP_MS ms). EVENTS
 * "R": no deaths; fuze_init must restart (dir=) from the files of an
 * earlier run, at step STEPS. "U": the last death leaves no replacement ("UR": another rank dies during
 * the repair, FUZE_DEBUG_REPAIR_KILL; "UB": block 0 loses 2 > faults members), so fuze_checkpoint or fuze_recover
 * (fuze_init on a replacement) must return FUZE_ERR_UNRECOVERABLE on every survivor, whose
 * state must be untouched (the step it was in), and fuze_finalize must
 * return without a hang. Every process alive at the end prints
 * "ULFM-PASS rank W" (W: world rank); ulfm_run.sh counts them.
 * SIGPIPE: world rank 1 installs a handler of its own before fuze_init, which
 * must keep it; on every other process (replacements and spawned ones too)
 * fuze_init must leave SIGPIPE ignored (btl tcp writes to a dead rank's
 * socket: with the default action a survivor died too).
 * Mappings: a survivor that ran from the start ends with as many mappings of
 * fuze's window segments (memfd "fuze-window" in /proc/self/maps) as it had
 * after its registrations: a repair, also one whose first round a death cut
 * short after some windows were made (FUZE_DEBUG_REPAIR_KILL=R@window2),
 * leaves no dead or replaced rank's segment mapped. */
#define _POSIX_C_SOURCE 200809L
#include "fuze.h"

#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ulfm_check.h"

#define STEPS 10
#define N 4096


typedef struct kill_at { int rank, step; } kill_at;

static int parse_kills(const char *s, kill_at *k, int max) {
  int n = 0;
  if (!strcmp(s, "-")) return 0;
  while (*s && n < max) {
    if (sscanf(s, "%d@%d", &k[n].rank, &k[n].step) != 2) return -1;
    n++;
    s = strchr(s, '+');
    if (!s) break;
    s++;
  }
  return n;
}

static void own_sigpipe(int sig) { (void)sig; }

static double aval(int r, int t, int i) { return r * 1e6 + t * 1000.0 + i; }

/* Mappings of fuze's window segments in this process. */
static int seg_mappings(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[1024];
  int n = 0;
  while (f && fgets(line, sizeof line, f)) n += strstr(line, "fuze-window") != NULL;
  if (f) fclose(f);
  return n;
}

typedef struct state {
  int64_t st;
  double a[N];
  fuze_stack *s;
  fuze_map *m;
} state;

static int do_step(state *x, int r, int step) {
  for (int i = 0; i < N; i++) x->a[i] = aval(r, step, i);
  int64_t v = (int64_t)r * 1000 + step, k = step, mv = (int64_t)r * step * 7;
  /* Under ULFM an operation that notices a death repairs it: FUZE_RECOVERED
   * (rolled back: the step is over). */
  int rc = fuze_stack_push(x->s, &v);
  if (!rc) rc = fuze_map_put(x->m, &k, &mv);
  if (!rc) x->st = step;
  return rc;
}

static void verify(const state *x, int r, int t) {
  CHECK(x->st == t, "st %lld, want %d", (long long)x->st, t);
  int bad = 0;
  for (int i = 0; i < N; i++) bad += memcmp(&x->a[i], &(double){aval(r, t, i)}, sizeof(double)) != 0;
  CHECK(!bad, "%d array elements differ from step %d's", bad, t);
  CHECK(fuze_stack_size(x->s) == (size_t)t, "stack size %zu, want %d", fuze_stack_size(x->s), t);
  for (int i = 0; i < t && i < (int)fuze_stack_size(x->s); i++) {
    int64_t v = -1;
    CHECK(fuze_stack_at(x->s, (size_t)i, &v) == FUZE_SUCCESS && v == (int64_t)r * 1000 + i + 1,
          "stack[%d] = %lld", i, (long long)v);
  }
  CHECK(fuze_map_size(x->m) == (size_t)t, "map size %zu, want %d", fuze_map_size(x->m), t);
  for (int64_t k = 1; k <= t; k++) {
    int64_t v = -1;
    CHECK(fuze_map_get(x->m, &k, &v) == FUZE_SUCCESS && v == (int64_t)r * k * 7, "map[%lld] = %lld",
          (long long)k, (long long)v);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &ulfm_world);
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  if (parent != MPI_COMM_NULL) ulfm_world += 1000; /* spawned (replace=spawn/auto): its own world */
  kill_at kills[8];
  int nkills = argc == 3 || argc == 4 ? parse_kills(argv[1], kills, 8) : -1;
  if (nkills < 0) {
    printf("ULFM-FAIL rank %d: usage: test_ulfm_recover KILLS CONFIG [EVENTS|U]\n", ulfm_world);
    MPI_Finalize();
    return 2;
  }
  int events = 0; /* distinct kill steps */
  for (int i = 0; i < nkills; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++) seen |= kills[j].step == kills[i].step;
    events += !seen;
  }
  /* U: no replacement left; UR: a death during the repair. */
  int expect_unrecoverable = argc == 4 && argv[3][0] == 'U';
  /* R: a run without deaths that restarts from the files (dir=) an earlier
   * run with deaths left: every rank's state is step STEPS's. */
  int expect_restart = argc == 4 && !strcmp(argv[3], "R");
  const char *want_msg = argc == 4 && !strcmp(argv[3], "UR")   ? "died during the repair"
                         : argc == 4 && !strcmp(argv[3], "UB") ? "unrecoverable: block 0 lost 2"
                                                               : "no replacement left";
  if (argc == 4 && !expect_unrecoverable && !expect_restart) events = atoi(argv[3]);
  int step_ms = getenv("ULFM_STEP_MS") ? atoi(getenv("ULFM_STEP_MS")) : 0;
  fuze_ctx *ctx = NULL;
  MPI_Comm comm = MPI_COMM_NULL;
  /* ULFM_PID_EARLY: a spare's pid for ulfm_run.sh --kill (it stays in fuze_init). */
  if (getenv("ULFM_PID_EARLY")) {
    printf("ULFM-PID rank %d pid %d\n", ulfm_world, (int)getpid());
    fflush(stdout);
  }
  if (ulfm_world == 1) signal(SIGPIPE, own_sigpipe);
  int rc = fuze_init(MPI_COMM_WORLD, argv[2], &ctx, &comm);
  struct sigaction pipe_act;
  sigaction(SIGPIPE, NULL, &pipe_act);
  CHECK(pipe_act.sa_handler == (ulfm_world == 1 ? own_sigpipe : SIG_IGN),
        "SIGPIPE after fuze_init: %s, want %s",
        pipe_act.sa_handler == SIG_IGN ? "SIG_IGN" : pipe_act.sa_handler == SIG_DFL ? "SIG_DFL"
                                                                                  : "a handler",
        ulfm_world == 1 ? "the application's handler" : "SIG_IGN");
  if (rc == FUZE_ERR_UNRECOVERABLE && expect_unrecoverable) { /* a replacement in the failed repair */
    CHECK(strstr(fuze_last_error(NULL), want_msg) != NULL, "message: %s", fuze_last_error(NULL));
    ULFM_VERDICT();
    MPI_Finalize();
    return ulfm_failures != 0;
  }
  int replacement = rc == FUZE_RECOVERED, restarted = rc == FUZE_RESTARTED;
  CHECK(rc == FUZE_SUCCESS || rc == FUZE_RECOVERED || (rc == FUZE_RESTARTED && expect_restart),
        "fuze_init: %d %s", rc, fuze_last_error(NULL));
  if (comm == MPI_COMM_NULL) { /* a spare or an idle replacement, at the job's end */
    ULFM_VERDICT();
    MPI_Finalize();
    return ulfm_failures != 0;
  }
  CHECK(restarted == expect_restart, "fuze_init returned %d, restart expected: %d", rc, expect_restart);
  int r;
  MPI_Comm_rank(comm, &r);
  CHECK(comm == fuze_comm(ctx), "fuze_init's communicator is fuze_comm's");
  static state x;
  x.st = 0;
  int t = 0, recoveries = 0;
  if ((rc = fuze_protect(ctx, "st", &x.st, 1, MPI_INT64_T, NULL)) ||
      (rc = fuze_protect(ctx, "a", x.a, N, MPI_DOUBLE, NULL)) ||
      (rc = fuze_stack_create(ctx, "s", sizeof(int64_t), &x.s)) ||
      (rc = fuze_map_create(ctx, "m", sizeof(int64_t), sizeof(int64_t), &x.m))) {
    CHECK(0, "registration: %d %s", rc, fuze_last_error(ctx));
  } else if (restarted) {
    t = (int)x.st;
    CHECK(t == STEPS, "restarted at step %d, want %d", t, STEPS);
    verify(&x, r, t);
  } else if (replacement) {
    t = (int)x.st;
    size_t cs = 0, cm = 0, ca = 0;
    CHECK(fuze_stored_count(ctx, "s", &cs) == FUZE_SUCCESS && cs == (size_t)t, "stored s %zu, t %d", cs, t);
    CHECK(fuze_stored_count(ctx, "m", &cm) == FUZE_SUCCESS && cm == (size_t)t, "stored m %zu, t %d", cm, t);
    CHECK(fuze_stored_count(ctx, "a", &ca) == FUZE_SUCCESS && ca == N, "stored a %zu", ca);
    verify(&x, r, t); /* the dead rank's state at the epoch the job rolled back to */
    printf("ULFM-INFO rank %d: replaces rank %d at step %d\n", ulfm_world, r, t);
    fflush(stdout);
  }
  int maps0 = seg_mappings();
  if (!getenv("ULFM_PID_EARLY")) {
    printf("ULFM-PID rank %d pid %d\n", ulfm_world, (int)getpid());
    fflush(stdout);
  }
  int unrecoverable = 0;
  while (!ulfm_failures && t < STEPS && !unrecoverable) {
    if (step_ms) nanosleep(&(struct timespec){step_ms / 1000, (step_ms % 1000) * 1000000L}, NULL);
    int step = t + 1;
    rc = do_step(&x, r, step);
    CHECK(rc == FUZE_SUCCESS || rc == FUZE_RECOVERED, "step %d: %d %s", step, rc, fuze_last_error(ctx));
    if (rc == FUZE_SUCCESS) {
      for (int i = 0; i < nkills && !replacement; i++)
        if (kills[i].rank == r && kills[i].step == step && r == ulfm_world) raise(SIGKILL);
      int one = 1, sum = 0;
      rc = MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, comm);
      if (rc != MPI_SUCCESS) rc = fuze_recover(ctx); /* the application's own call saw the death */
      else rc = fuze_checkpoint(ctx);
    }
    if (rc == FUZE_SUCCESS) {
      t = step;
    } else if (rc == FUZE_RECOVERED) {
      recoveries++;
      comm = fuze_comm(ctx);
      t = (int)x.st;
      CHECK(t == step || t == step - 1, "recovered to step %d in step %d", t, step);
      printf("ULFM-INFO rank %d: recovered in step %d to step %d\n", ulfm_world, step, t);
      fflush(stdout);
    } else if (rc == FUZE_ERR_UNRECOVERABLE && expect_unrecoverable) {
      unrecoverable = 1;
      printf("ULFM-INFO rank %d: %s\n", ulfm_world, fuze_last_error(ctx));
      CHECK(strstr(fuze_last_error(ctx), want_msg) != NULL, "message: %s", fuze_last_error(ctx));
      verify(&x, r, step); /* untouched: this step's state, as the application left it */
    } else {
      CHECK(0, "step %d: %d %s", step, rc, fuze_last_error(ctx));
    }
  }
  if (expect_unrecoverable) {
    CHECK(unrecoverable, "no FUZE_ERR_UNRECOVERABLE");
    fuze_finalize(&ctx); /* may report the failed communicator: it must return */
    ULFM_VERDICT();
    MPI_Finalize();
    return ulfm_failures != 0;
  }
  if (!ulfm_failures) {
    verify(&x, r, STEPS);
    if (!replacement) CHECK(recoveries == events, "%d recoveries, %d death events", recoveries, events);
    if (!replacement)
      CHECK(seg_mappings() == maps0, "%d mappings of window segments at the end, %d after the "
            "registrations", seg_mappings(), maps0);
    /* Every backup (and with code=byzantine every replica) agrees with the data again. */
    static fuze_verify_report rep;
    rc = fuze_verify(ctx, &rep);
    CHECK(rc == FUZE_SUCCESS && rep.mismatches == 0, "fuze_verify: %d, %llu mismatches: %s", rc,
          (unsigned long long)rep.mismatches, fuze_last_error(ctx));
  }
  rc = fuze_finalize(&ctx);
  CHECK(rc == FUZE_SUCCESS, "fuze_finalize: %d %s", rc, fuze_last_error(NULL));
  ULFM_VERDICT();
  MPI_Finalize();
  return ulfm_failures != 0;
}
