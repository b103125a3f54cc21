/* test_ulfm_forward: a real death inside a stack or map operation, with
 * recovery=forward (issue 14): the operation is complete or absent on the
 * replacement, never half.
 *
 *   test_ulfm_forward CONFIG [RANK HOSTS ROUND]
 *
 * CONFIG with recovery=forward and replacements=R. With RANK HOSTS ROUND,
 * every rank calls fuze_inject_op(RANK, HOSTS) at round ROUND: under ULFM
 * rank RANK SIGKILLs itself inside its next operation, after it reached
 * HOSTS of its backups (with faults=2 and HOSTS 1: one backup has it, the
 * other not). Without, ulfm_run.sh kills a rank from outside.
 *
 * Every compute rank r runs rounds until every rank has seen the death; in
 * round k it brings its stack "s"
 * to k*K elements (element i is r*100000+i) and after each push puts key i ->
 * r*7+i*3 into its map "m", one operation at a time (sync=op: each one is at
 * its backups when it returns), then calls fuze_checkpoint. ulfm_run.sh
 * kill -9s a rank from outside at a random time, mostly inside one of these
 * operations (they are most of the run). On FUZE_RECOVERED the survivors keep
 * their stacks and maps (forward) and check them whole; the replacement
 * checks what the decode gave it: a stack of exactly the elements 1..n and a
 * map of exactly the keys 1..m with their values, m == n or m == n - 1 (a
 * push whose put had not started), n at least the count of the last
 * checkpoint: every operation complete or absent. Then all agree on the
 * round (MPI_Allreduce on fuze_comm) and go on; every 2 rounds an
 * MPI_Allreduce of its own says whether everyone saw the death; at the end
 * every rank checks round*K elements and keys bit for bit. Prints "ULFM-PASS rank W". */
#define _POSIX_C_SOURCE 200809L
#include "fuze.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ulfm_check.h"

#define ROUNDS 100000
#define K 2000


static int64_t sval(int r, int64_t i) { return (int64_t)r * 100000 + i; }
static int64_t mval(int r, int64_t i) { return (int64_t)r * 7 + i * 3; }

/* The stack holds 1..n, the map exactly 1..m; returns n, sets *m. */
static int64_t check_whole(fuze_stack *s, fuze_map *m, int r, int64_t *mout) {
  int64_t n = (int64_t)fuze_stack_size(s), nm = (int64_t)fuze_map_size(m);
  int bad = 0;
  for (int64_t i = 1; i <= n; i++) {
    int64_t v = -1;
    bad += fuze_stack_at(s, (size_t)(i - 1), &v) != FUZE_SUCCESS || v != sval(r, i);
  }
  CHECK(!bad, "%d of %lld stack elements wrong", bad, (long long)n);
  bad = 0;
  for (int64_t i = 1; i <= nm; i++) {
    int64_t v = -1;
    bad += fuze_map_get(m, &i, &v) != FUZE_SUCCESS || v != mval(r, i);
  }
  CHECK(!bad, "%d of keys 1..%lld wrong or missing (map size %lld)", bad, (long long)nm,
        (long long)nm);
  *mout = nm;
  return n;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &ulfm_world);
  fuze_ctx *ctx = NULL;
  MPI_Comm comm = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, argc > 1 ? argv[1] : NULL, &ctx, &comm);
  int joined = rc == FUZE_RECOVERED;
  CHECK(rc == FUZE_SUCCESS || rc == FUZE_RECOVERED, "fuze_init: %d %s", rc, fuze_last_error(NULL));
  if (comm == MPI_COMM_NULL) {
    printf(ulfm_failures ? "ULFM-FAIL rank %d\n" : "ULFM-PASS rank %d\n", ulfm_world);
    MPI_Finalize();
    return ulfm_failures != 0;
  }
  int r;
  MPI_Comm_rank(comm, &r);
  fuze_stack *s = NULL;
  fuze_map *m = NULL;
  int64_t round = 0; /* rounds whose checkpoint committed, as this rank knows */
  if ((rc = fuze_protect(ctx, "round", &round, 1, MPI_INT64_T, NULL)) ||
      (rc = fuze_stack_create(ctx, "s", sizeof(int64_t), &s)) ||
      (rc = fuze_map_create(ctx, "m", sizeof(int64_t), sizeof(int64_t), &m)))
    CHECK(0, "registration: %d %s", rc, fuze_last_error(ctx));
  int resync = joined, recoveries = 0;
  printf("ULFM-PID rank %d pid %d\n", ulfm_world, (int)getpid());
  fflush(stdout);
  int inj_rank = argc > 4 ? atoi(argv[2]) : -1, inj_hosts = argc > 4 ? atoi(argv[3]) : 0;
  int64_t inj_round = argc > 4 ? atoll(argv[4]) : -1;
  while (!ulfm_failures) {
    if (resync) { /* survivors after FUZE_RECOVERED, the replacement once registered */
      comm = fuze_comm(ctx);
      int64_t nm = 0, n = check_whole(s, m, r, &nm);
      if (joined && resync == 1) {
        CHECK(nm == n || nm == n - 1, "replacement: stack 1..%lld, map 1..%lld: an operation "
              "is half there", (long long)n, (long long)nm);
        CHECK(n >= round * K, "replacement: %lld elements, the last checkpoint had %lld",
              (long long)n, (long long)(round * K));
        printf("ULFM-INFO rank %d: replaces rank %d: stack 1..%lld, map 1..%lld, round %lld\n",
               ulfm_world, r, (long long)n, (long long)nm, (long long)round);
        fflush(stdout);
        if (nm == n - 1) { /* the push's put never started: the application redoes it */
          int64_t k = n, v = mval(r, n);
          CHECK(fuze_map_put(m, &k, &v) == FUZE_SUCCESS, "put: %s", fuze_last_error(ctx));
        }
      }
      MPI_Allreduce(MPI_IN_PLACE, &round, 1, MPI_INT64_T, MPI_MAX, comm);
      resync = 0;
    }
    CHECK(round < ROUNDS, "no death seen in %d rounds", ROUNDS);
    if (round == inj_round && !joined && !recoveries) { /* the victim dies in an operation */
      rc = fuze_inject_op(ctx, inj_rank, inj_hosts);
      if (rc == FUZE_RECOVERED) { /* a slow rank: the death came while it was still in here */
        recoveries++;
        resync = 2;
        continue;
      }
      CHECK(rc == FUZE_SUCCESS, "fuze_inject_op: %d %s", rc, fuze_last_error(ctx));
    }
    int64_t target = (round + 1) * K;
    int by_op = 0; /* under ULFM an operation that notices a death repairs it */
    for (int64_t i = (int64_t)fuze_stack_size(s) + 1; i <= target && !ulfm_failures && !by_op; i++) {
      int64_t v = sval(r, i), k = i, mv = mval(r, i);
      rc = fuze_stack_push(s, &v);
      CHECK(rc == FUZE_SUCCESS || rc == FUZE_RECOVERED, "push: %d %s", rc, fuze_last_error(ctx));
      by_op = rc == FUZE_RECOVERED;
      rc = fuze_map_put(m, &k, &mv); /* forward: the push stays, its put follows */
      CHECK(rc == FUZE_SUCCESS || rc == FUZE_RECOVERED, "put: %d %s", rc, fuze_last_error(ctx));
      by_op |= rc == FUZE_RECOVERED;
    }
    if (by_op) {
      recoveries++;
      resync = 2;
      continue;
    }
    round++;
    rc = fuze_checkpoint(ctx);
    if (rc == FUZE_RECOVERED) {
      recoveries++;
      round--; /* forward: this round's checkpoint did not commit everywhere; redo it */
      resync = 2;
      continue;
    }
    CHECK(rc == FUZE_SUCCESS, "checkpoint: %d %s", rc, fuze_last_error(ctx));
    /* Every 2 rounds the application asks whether everyone has seen the
     * death (it comes at a random time): then the run ends. */
    if (round % 2 == 0) {
      int done = recoveries > 0 || joined, all = 0;
      if (MPI_Allreduce(&done, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS) {
        rc = fuze_recover(ctx); /* the death, seen by the application's own call */
        CHECK(rc == FUZE_RECOVERED, "fuze_recover: %d %s", rc, fuze_last_error(ctx));
        recoveries++;
        resync = 2;
        continue;
      }
      if (all) break;
    }
  }
  int64_t nm = 0;
  CHECK(check_whole(s, m, r, &nm) == round * K && nm == round * K, "final sizes");
  if (!joined) CHECK(recoveries == 1, "%d recoveries, one death", recoveries);
  CHECK(fuze_finalize(&ctx) == FUZE_SUCCESS, "finalize: %s", fuze_last_error(NULL));
  ULFM_VERDICT();
  MPI_Finalize();
  return ulfm_failures != 0;
}
