/* test_ulfm_idle: the death of an idle replacement rank changes nothing for
 * the compute ranks (issue 14), under `mpirun --with-ft ulfm`.
 *
 *   test_ulfm_idle    (np N: N-1 compute ranks, replacements=1)
 *
 * Every rank prints "ULFM-PID rank R pid P" before fuze_init; ulfm_run.sh
 * --kill N-1 kill -9s the replacement (waiting inside fuze_init) at a random
 * time while the compute ranks run 30 checkpoints of a protected array.
 * Asserted on every compute rank: every fuze_checkpoint returns
 * FUZE_SUCCESS, the array after each is bit-exact what the rank wrote,
 * fuze_finalize returns FUZE_SUCCESS. Compute ranks print ULFM-PASS. */
#define _DEFAULT_SOURCE /* usleep */
#include <fuze.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ulfm_check.h"

#define N 20000


int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int np;
  MPI_Comm_rank(MPI_COMM_WORLD, &ulfm_world);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  printf("ULFM-PID rank %d pid %ld\n", ulfm_world, (long)getpid());
  fflush(stdout);
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, "faults=1;domain=rank;replacements=1", &ctx, &app);
  if (ulfm_world == np - 1) {
    /* The replacement: killed while waiting, or released at the end. */
    MPI_Finalize();
    return 0;
  }
  CHECK(rc == FUZE_SUCCESS && ctx && app != MPI_COMM_NULL, "fuze_init: %d: %s", rc, fuze_last_error(NULL));
  if (rc) {
    printf("ULFM-ABORT rank %d\n", ulfm_world);
    fflush(stdout);
    _exit(1);
  }
  unsigned long long *u = malloc(N * sizeof *u);
  for (size_t i = 0; i < N; i++) u[i] = (unsigned long long)ulfm_world << 32 | i;
  CHECK(fuze_protect(ctx, "u", u, N, MPI_UNSIGNED_LONG_LONG, NULL) == FUZE_SUCCESS, "protect: %s",
        fuze_last_error(ctx));
  for (int step = 1; step <= 30 && !ulfm_failures; step++) {
    for (size_t i = 0; i < N; i += 7) u[i] = u[i] * 6364136223846793005ULL + (unsigned long long)step;
    unsigned long long keep = u[N - 1] ^ u[0];
    rc = fuze_checkpoint(ctx);
    CHECK(rc == FUZE_SUCCESS, "checkpoint %d: %d: %s", step, rc, fuze_last_error(ctx));
    CHECK((u[N - 1] ^ u[0]) == keep, "checkpoint %d changed the array", step);
    usleep(100000);
  }
  fuze_stats st;
  CHECK(fuze_get_stats(ctx, &st) == FUZE_SUCCESS && st.epoch == 30 && st.recoveries == 0,
        "epoch %llu, recoveries %llu", (unsigned long long)st.epoch, (unsigned long long)st.recoveries);
  rc = fuze_finalize(&ctx);
  CHECK(rc == FUZE_SUCCESS, "fuze_finalize: %d: %s", rc, fuze_last_error(NULL));
  MPI_Comm_free(&app);
  free(u);
  ULFM_VERDICT();
  MPI_Finalize();
  return ulfm_failures != 0;
}
