/* test_replacements: config replacements=R (issue 14, step b), on any MPI.
 *
 *   test_replacements R SPARES
 *
 * The last R world ranks are replacement ranks. Asserted:
 *   - a replacement's fuze_init returns FUZE_SUCCESS, *ctx == NULL and
 *     *app_comm == MPI_COMM_NULL, and only after the compute ranks called
 *     fuze_finalize (world rank 0 sends the time from a common barrier to
 *     its fuze_finalize call, 1 s of sleep included; the replacement's
 *     fuze_init, from the same barrier, must have taken at least that long);
 *   - the compute communicator has np - SPARES - R ranks in world order, and
 *     fuze_comm(ctx) is that very communicator (MPI_IDENT);
 *   - the wipe model works unchanged beside them: an array of every compute
 *     rank, one compute rank wiped, fuze_checkpoint returns FUZE_RECOVERED
 *     and every rank's array is bit-exact the committed epoch;
 *   - a configuration leaving no compute rank (replacements=np) fails on every
 *     rank with FUZE_ERR_CONFIG naming the key, replacements included.
 * Every rank prints its failures; rank 0 of the world sums them. */
#include "common.h"

#include <time.h>
#include <unistd.h>

#define N 5000

static void fill(double *u, int world, long epoch) {
  for (size_t i = 0; i < N; i++) u[i] = (double)world * 1e6 + (double)epoch * 1e3 + (double)i * 0.5;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int wrank, np;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  int R = argc > 1 ? atoi(argv[1]) : 2, spares = argc > 2 ? atoi(argv[2]) : 0;
  int ncompute = np - spares - R, is_repl = wrank >= np - R, is_spare = !is_repl && wrank >= ncompute;

  /* Too many replacements: the same error everywhere. */
  char cfg[256];
  snprintf(cfg, sizeof cfg, "faults=1;domain=rank;replacements=%d", np);
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  T_EQ_INT(rc, FUZE_ERR_CONFIG, "fuze_init with replacements=np");
  T_CHECK(strstr(fuze_last_error(NULL), "replacements=") != NULL, "message: %s", fuze_last_error(NULL));
  T_CHECK(ctx == NULL && app == MPI_COMM_NULL, "ctx and app_comm must stay NULL");

  snprintf(cfg, sizeof cfg, "faults=1;domain=rank;spares=%d;replacements=%d", spares, R);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  double waited = MPI_Wtime() - t0;
  if (is_repl || is_spare) {
    T_EQ_INT(rc, FUZE_SUCCESS, "fuze_init on a replacement or spare rank");
    T_CHECK(ctx == NULL && app == MPI_COMM_NULL, "rank %d: ctx %p, app_comm not null: %d", wrank,
            (void *)ctx, app != MPI_COMM_NULL);
    if (is_repl) {
      /* World rank 0 tells how long after the common barrier it called
       * fuze_finalize: the replacement cannot have returned before. */
      double fin = -1.0;
      MPI_Recv(&fin, 1, MPI_DOUBLE, 0, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      T_CHECK(fin >= 1.0 && waited >= fin - 0.25, "the replacement returned %.3f s after the barrier, "
              "world rank 0 called fuze_finalize %.3f s after it", waited, fin);
    }
  } else {
    T_EQ_INT(rc, FUZE_SUCCESS, "fuze_init on a compute rank");
    int crank = -1, csize = -1, cmp = MPI_UNEQUAL;
    if (app != MPI_COMM_NULL) {
      MPI_Comm_rank(app, &crank);
      MPI_Comm_size(app, &csize);
      MPI_Comm_compare(app, fuze_comm(ctx), &cmp);
    }
    T_CHECK(csize == ncompute && crank == wrank, "compute rank %d of %d (world %d, expected %d ranks)",
            crank, csize, wrank, ncompute);
    T_CHECK(cmp == MPI_IDENT, "fuze_comm(ctx) is not the app communicator (%d)", cmp);
    T_CHECK(fuze_comm(NULL) == MPI_COMM_NULL, "fuze_comm(NULL)");
    double *u = malloc(N * sizeof *u), *want = malloc(N * sizeof *want);
    fill(u, wrank, 1);
    T_EQ_INT(fuze_protect(ctx, "u", u, N, MPI_DOUBLE, NULL), FUZE_SUCCESS, "fuze_protect");
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint 1");
    fill(want, wrank, 1);
    fill(u, wrank, 2); /* work after the checkpoint, rolled back below */
    int victim = ncompute > 1 ? 1 : 0;
    T_EQ_INT(fuze_inject(ctx, &victim, 1), FUZE_SUCCESS, "fuze_inject");
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_RECOVERED, "checkpoint after the wipe");
    T_CHECK(memcmp(u, want, N * sizeof *u) == 0, "rank %d: the array is not the committed epoch", wrank);
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint after the recovery");
    MPI_Barrier(app);
    sleep(1); /* the replacements must still be waiting */
    double fin = MPI_Wtime() - t0;
    T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "fuze_finalize");
    for (int r = np - R; wrank == 0 && r < np; r++) MPI_Send(&fin, 1, MPI_DOUBLE, r, 77, MPI_COMM_WORLD);
    MPI_Comm_free(&app);
    free(u);
    free(want);
  }
  int total = t_total(MPI_COMM_WORLD);
  if (wrank == 0) printf("test_replacements: np=%d replacements=%d spares=%d: %d failures\n", np, R, spares, total);
  MPI_Finalize();
  return total != 0;
}
