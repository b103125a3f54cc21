/* test_ulfm_ops: a real process death noticed by a stack or map operation,
 * or by fuze_flush, with no collective call in between (ULFM, issue 14).
 *
 *   test_ulfm_ops CONFIG VICTIM WHO
 *
 * CONFIG: fuze's configuration (with replacements=1; sync=op or batch,
 * recovery=forward or rollback). VICTIM: the compute rank that SIGKILLs
 * itself. WHO: "op" (the survivors only push, pop, put and remove until one of
 * those operations returns FUZE_RECOVERED) or "flush" (they only call
 * fuze_flush until it returns FUZE_RECOVERED).
 *
 * Every compute rank r keeps a stack "s" and a map "m" whose contents after
 * c operations are fixed by (r, c): the stack holds r*1000000+1 .. +c minus
 * one pop every 7th operation, the map k -> r*k+3 for k in 1..c minus every
 * 5th key. Phase 1: SPLIT operations, a checkpoint, a barrier; the victim
 * dies right after it. Phase 2: the survivors run operations or fuze_flush
 * (no collective call, at most 20 s) until one returns FUZE_RECOVERED. With
 * recovery=forward every completed operation stays (the replacement's state
 * is the victim's at its death: SPLIT operations); with rollback every rank
 * is back at SPLIT. Phase 3: every rank, the replacement too (it takes its
 * count from fuze_stored_count), runs operations up to TOTAL, checkpoints,
 * and checks its stack and map bit for bit against the formulas. Every
 * process alive at the end prints "ULFM-PASS rank W". */
#define _POSIX_C_SOURCE 200809L
#include "fuze.h"

#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ulfm_check.h"

#define SPLIT 400
#define TOTAL 3000

typedef struct st {
  fuze_stack *s;
  fuze_map *m;
  int c; /* operations done */
} st;

static int forward;

/* The key operation c (c % 5 == 0) removes: one that operation c-1 or c-2 put. */
static int64_t removed_key(int c) { return (c - 1) % 7 ? c - 1 : c - 2; }

/* Operation c+1 on rank r: a pop, a remove, or a push and a put. */
static int op(st *x, int r) {
  int c = x->c + 1, rc;
  if (c % 7 == 0) {
    int64_t v;
    rc = fuze_stack_pop(x->s, &v);
  } else if (c % 5 == 0) {
    int64_t k = removed_key(c);
    rc = fuze_map_remove(x->m, &k);
  } else {
    int64_t v = (int64_t)r * 1000000 + c, k = c, mv = (int64_t)r * c + 3;
    rc = fuze_stack_push(x->s, &v);
    /* recovery=forward: the push stays, so the put follows; rollback: both are gone. */
    if (rc == FUZE_SUCCESS || (rc == FUZE_RECOVERED && forward)) {
      int prc = fuze_map_put(x->m, &k, &mv);
      if (prc != FUZE_SUCCESS) rc = prc;
    }
  }
  if (rc == FUZE_SUCCESS || rc == FUZE_RECOVERED) x->c = c;
  return rc;
}

/* The expected contents after c operations, built the same way. */
static void verify(const st *x, int r, int c) {
  int64_t *want = malloc(sizeof *want * (size_t)(c + 1));
  unsigned char *in = calloc((size_t)c + 2, 1);
  size_t n = 0;
  for (int i = 1; i <= c; i++) {
    if (i % 7 == 0) {
      if (n) n--;
    } else if (i % 5 == 0) {
      in[removed_key(i)] = 0;
    } else {
      want[n++] = (int64_t)r * 1000000 + i;
      in[i] = 1;
    }
  }
  CHECK(fuze_stack_size(x->s) == n, "stack size %zu, want %zu (after %d operations)",
        fuze_stack_size(x->s), n, c);
  int bad = 0;
  for (size_t i = 0; i < n && i < fuze_stack_size(x->s); i++) {
    int64_t v = -1;
    bad += fuze_stack_at(x->s, i, &v) != FUZE_SUCCESS || v != want[i];
  }
  CHECK(!bad, "%d stack elements differ", bad);
  size_t keys = 0;
  bad = 0;
  for (int64_t k = 1; k <= c; k++) {
    int64_t v = -1;
    int rc = fuze_map_get(x->m, &k, &v);
    if (in[k]) {
      keys++;
      bad += rc != FUZE_SUCCESS || v != (int64_t)r * k + 3;
    } else {
      bad += rc != FUZE_ERR_NOT_FOUND;
    }
  }
  CHECK(!bad, "%d map keys differ", bad);
  CHECK(fuze_map_size(x->m) == keys, "map size %zu, want %zu", fuze_map_size(x->m), keys);
  free(want);
  free(in);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &ulfm_world);
  if (argc != 4 || (strcmp(argv[3], "op") && strcmp(argv[3], "flush"))) {
    printf("ULFM-FAIL rank %d: usage: test_ulfm_ops CONFIG VICTIM op|flush\n", ulfm_world);
    MPI_Finalize();
    return 2;
  }
  int victim = atoi(argv[2]), by_flush = !strcmp(argv[3], "flush");
  forward = strstr(argv[1], "recovery=forward") != NULL;
  fuze_ctx *ctx = NULL;
  MPI_Comm comm = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, argv[1], &ctx, &comm);
  int replacement = rc == FUZE_RECOVERED;
  CHECK(rc == FUZE_SUCCESS || rc == FUZE_RECOVERED, "fuze_init: %d %s", rc, fuze_last_error(NULL));
  if (comm == MPI_COMM_NULL) { /* an idle replacement never needed */
    ULFM_VERDICT();
    MPI_Finalize();
    return ulfm_failures != 0;
  }
  int r;
  MPI_Comm_rank(comm, &r);
  st x = {NULL, NULL, 0};
  if ((rc = fuze_stack_create(ctx, "s", sizeof(int64_t), &x.s)) ||
      (rc = fuze_map_create(ctx, "m", sizeof(int64_t), sizeof(int64_t), &x.m))) {
    CHECK(0, "registration: %d %s", rc, fuze_last_error(ctx));
    ULFM_VERDICT();
    MPI_Finalize();
    return 1;
  }
  if (replacement) {
    x.c = SPLIT; /* the victim's count at its death (forward) or at the checkpoint (rollback) */
    verify(&x, r, x.c);
    printf("ULFM-INFO rank %d: replaces rank %d after %d operations\n", ulfm_world, r, x.c);
    fflush(stdout);
  } else {
    /* Phase 1. */
    while (x.c < SPLIT && !ulfm_failures) CHECK(op(&x, r) == FUZE_SUCCESS, "op %d: %s", x.c + 1, fuze_last_error(ctx));
    CHECK((rc = fuze_checkpoint(ctx)) == FUZE_SUCCESS, "checkpoint: %d %s", rc, fuze_last_error(ctx));
    MPI_Barrier(comm);
    if (r == victim) raise(SIGKILL);
    /* Phase 2: operations only, until one of them (or fuze_flush) repairs the death. */
    double t0 = MPI_Wtime();
    int got = 0, by = 0;
    while (!got && !ulfm_failures && MPI_Wtime() - t0 < 20 && x.c < TOTAL - 1) {
      if (by_flush) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        rc = fuze_flush(ctx);
        if (rc == FUZE_RECOVERED) got = 1, by = 1;
        else CHECK(rc == FUZE_SUCCESS, "fuze_flush: %d %s", rc, fuze_last_error(ctx));
        continue;
      }
      nanosleep(&(struct timespec){0, 1000000}, NULL); /* ~1 ms per operation: detection takes ms */
      rc = op(&x, r);
      if (rc == FUZE_RECOVERED) got = 1;
      else CHECK(rc == FUZE_SUCCESS, "op %d: %d %s", x.c + 1, rc, fuze_last_error(ctx));
    }
    CHECK(got, "no operation returned FUZE_RECOVERED in %.1f s (%d operations)", MPI_Wtime() - t0, x.c);
    printf("ULFM-INFO rank %d: %s returned FUZE_RECOVERED after %d operations\n", ulfm_world,
           by ? "fuze_flush" : "an operation", x.c);
    fflush(stdout);
    comm = fuze_comm(ctx);
    if (!forward) x.c = SPLIT; /* rolled back to the checkpoint */
    verify(&x, r, x.c);
  }
  /* Phase 3. */
  while (x.c < TOTAL && !ulfm_failures) CHECK(op(&x, r) == FUZE_SUCCESS, "op %d: %s", x.c + 1, fuze_last_error(ctx));
  CHECK((rc = fuze_checkpoint(ctx)) == FUZE_SUCCESS, "final checkpoint: %d %s", rc, fuze_last_error(ctx));
  verify(&x, r, TOTAL);
  fuze_stats s;
  if (fuze_get_stats(ctx, &s) == FUZE_SUCCESS)
    CHECK(s.process_failures == 1, "process_failures %llu, want 1", (unsigned long long)s.process_failures);
  rc = fuze_finalize(&ctx);
  CHECK(rc == FUZE_SUCCESS, "fuze_finalize: %d %s", rc, fuze_last_error(NULL));
  ULFM_VERDICT();
  MPI_Finalize();
  return ulfm_failures != 0;
}
