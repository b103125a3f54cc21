/* Failure domains: domain=node on one machine falls back to one domain per
 * rank; domain=K groups K consecutive ranks. The plan the library builds must
 * be the one the planner gives for those domains (blocks and backups), and a
 * whole emulated node may fail. */
#include "common.h"

#include "core/plan.h"

static void check(const char *cfg, int np, int k, int f) {
  int domain[64], nd = 0;
  for (int r = 0; r < np; r++) domain[r] = r / k;
  nd = (np + k - 1) / k;
  fuze_plan p;
  char err[256];
  fuze_plan_input in = {np, domain, nd, 0, f, 0};
  T_EQ_INT(fuze__plan_build(&in, &p, err, sizeof err), FUZE_SUCCESS, "plan");
  fuze_ctx *ctx;
  MPI_Comm app;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app), FUZE_SUCCESS, cfg);
  fuze_stats st;
  T_EQ_INT(fuze_get_stats(ctx, &st), FUZE_SUCCESS, "stats");
  T_CHECK(st.nblocks == p.nblocks && st.nbackups == p.nblocks * f, "%s: %d blocks / %d backups, "
          "planner says %d / %d", cfg, st.nblocks, st.nbackups, p.nblocks, p.nblocks * f);
  /* Lose a whole emulated node: every rank of domain 0. */
  int me;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  double v[3] = {me, me * 2.0, me * 3.0}, keep[3];
  memcpy(keep, v, sizeof v);
  T_EQ_INT(fuze_protect(ctx, "v", v, 3, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  int node[64], n = 0;
  for (int r = 0; r < np; r++)
    if (domain[r] == 0) node[n++] = r;
  T_EQ_INT(fuze_inject(ctx, node, n), FUZE_SUCCESS, "inject node");
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_RECOVERED, "node loss");
  T_CHECK(!memcmp(v, keep, sizeof v), "%s: rank %d data differs after losing domain 0", cfg, me);
  fuze_finalize(&ctx);
  MPI_Comm_free(&app);
  fuze__plan_free(&p);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int np, me;
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  check("faults=1", np, 1, 1);                 /* domain=node on one machine -> rank */
  check("faults=1;domain=rank", np, 1, 1);
  check("faults=1;domain=2", np, 2, 1);
  check("faults=1;domain=3;verbose=2", np, 3, 1);
  int total = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("test_topo: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
