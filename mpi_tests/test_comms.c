/* What fuze_init returns as the compute communicator (include/fuze.h,
 * README "Communicators"):
 *   spares=0: congruent with the input communicator (MPI_Comm_compare gives
 *             MPI_CONGRUENT), for MPI_COMM_WORLD and for a sub-communicator;
 *   spares=1 (domain=rank): on compute ranks the input communicator without
 *             its last rank, same order (MPI_Group_compare with the group
 *             minus that rank gives MPI_IDENT); on the spare rank
 *             MPI_COMM_NULL and ctx NULL;
 * and that a code written for MPI_COMM_WORLD adopts spares by using app_comm
 * (a reduction over it sums the compute ranks only). */
#include "common.h"

static void check_congruent(MPI_Comm in, const char *config, const char *what) {
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(in, config, &ctx, &app);
  T_EQ_INT(rc, FUZE_SUCCESS, what);
  int cmp = -1;
  MPI_Comm_compare(app, in, &cmp);
  T_CHECK(cmp == MPI_CONGRUENT, "%s: MPI_Comm_compare(app_comm, comm) = %d, expected MPI_CONGRUENT (%d)", what,
          cmp, MPI_CONGRUENT);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&app);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int me, np;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  check_congruent(MPI_COMM_WORLD, "spares=0,domain=rank", "spares=0 over MPI_COMM_WORLD");
  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, me % 2, np - me, &half); /* reversed order: still congruent */
  check_congruent(half, "spares=0,domain=rank", "spares=0 over a sub-communicator");
  MPI_Comm_free(&half);

  /* spares=1: the last rank only hosts backups. */
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, "spares=1,domain=rank", &ctx, &app);
  T_EQ_INT(rc, FUZE_SUCCESS, "spares=1 init");
  if (me == np - 1) {
    T_CHECK(app == MPI_COMM_NULL && ctx == NULL, "spare rank: app_comm %s, ctx %p",
            app == MPI_COMM_NULL ? "MPI_COMM_NULL" : "a communicator", (void *)ctx);
  } else {
    MPI_Group wg, ag, compute;
    int last = np - 1, gcmp = -1, size = -1, arank = -1;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_excl(wg, 1, &last, &compute);
    MPI_Comm_group(app, &ag);
    MPI_Group_compare(ag, compute, &gcmp);
    T_CHECK(gcmp == MPI_IDENT, "spares=1: app_comm's group vs world without rank %d: %d, expected MPI_IDENT", last, gcmp);
    MPI_Comm_size(app, &size);
    MPI_Comm_rank(app, &arank);
    T_CHECK(size == np - 1 && arank == me, "spares=1: app_comm size %d rank %d, expected %d and %d", size, arank,
            np - 1, me);
    /* The application's own communication: app_comm where it had MPI_COMM_WORLD. */
    int one = 1, sum = 0;
    MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, app);
    T_CHECK(sum == np - 1, "Allreduce over app_comm counted %d ranks, expected %d", sum, np - 1);
    MPI_Group_free(&wg);
    MPI_Group_free(&ag);
    MPI_Group_free(&compute);
    T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
    MPI_Comm_free(&app);
  }
  int fails = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("%s: communicators\n", fails ? "FAIL" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
