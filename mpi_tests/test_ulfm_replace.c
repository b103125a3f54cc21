/* test_ulfm_replace: fuze__ft_replace (comm/ft.h), the communicator half of
 * bringing a replacement rank into a dead rank's place, under real deaths.
 *
 * np 7: world ranks 0-4 are active, 5 and 6 idle replacements waiting in a
 * receive on the pool communicator (as in fuze_init). Three rounds; in each
 * the active rank VICTIM[round] of the current active communicator SIGKILLs
 * itself, the active survivors see FUZE_RANK_LOST from a collective, the idle
 * replacements from their receive (the pool is revoked), and all call
 * fuze__ft_replace. Asserted on every survivor, bit for bit:
 *   round 0 (active rank 2 dies): dead[] is exactly {2}; the new active
 *     communicator has 5 ranks, world ranks 0 1 5 3 4 in that order (the
 *     first replacement in the dead rank's place, checked with an allgather
 *     of world ranks over it); world 5 gets my_rank 2; world 6 stays idle;
 *   round 1 (active rank 4 dies): 0 1 5 3 6;
 *   round 2 (active rank 0 dies): no replacement left: FUZE_ERR_UNRECOVERABLE
 *     on every survivor, the message naming rank 0; then every survivor
 *     reaches MPI_Finalize by itself.
 * First, on every process: fuze__ft_ignore_sigpipe (what fuze_init does
 * first) changes SIGPIPE from its default action to SIG_IGN.
 * Prints "ULFM-PASS rank R" per survivor (world 1, 3, 5, 6). */
#define _POSIX_C_SOURCE 200809L
#include "comm/coll.h"
#include "comm/ft.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ulfm_check.h"


#define NACTIVE 5

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &ulfm_world);
  int np;
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  if (np != 7) {
    printf("ULFM-FAIL rank %d: run with np 7\n", ulfm_world);
    MPI_Finalize();
    return 2;
  }
  /* What fuze_init does first under ULFM: SIGPIPE from its default action to
   * SIG_IGN (over btl tcp a survivor died writing to a dead rank's socket). */
  CHECK(fuze__ft_ignore_sigpipe() == 1, "fuze__ft_ignore_sigpipe did not change SIGPIPE's default action");
  struct sigaction pipe_act;
  sigaction(SIGPIPE, NULL, &pipe_act);
  CHECK(pipe_act.sa_handler == SIG_IGN, "SIGPIPE is not ignored after fuze__ft_ignore_sigpipe");
  char msg[FUZE_MSG_LEN] = "";
  fuze_net net = {.comm = MPI_COMM_NULL, .msg = msg, .rank = ulfm_world, .size = np};
  MPI_Comm pool, active = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &pool);
  MPI_Comm_set_errhandler(pool, MPI_ERRORS_RETURN);
  MPI_Comm_split(pool, ulfm_world < NACTIVE ? 0 : MPI_UNDEFINED, ulfm_world, &active);
  if (active != MPI_COMM_NULL) MPI_Comm_set_errhandler(active, MPI_ERRORS_RETURN);
  int world_of[NACTIVE] = {0, 1, 2, 3, 4}, next_repl = NACTIVE;
  const int victim[3] = {2, 4, 0};
  int my = ulfm_world < NACTIVE ? ulfm_world : -1;

  for (int round = 0; round < 3; round++) {
    int rc;
    if (my >= 0) {
      /* The active communicator is what the survivors expect, bit for bit. */
      int got[NACTIVE] = {-1, -1, -1, -1, -1};
      rc = MPI_Allgather(&ulfm_world, 1, MPI_INT, got, 1, MPI_INT, active);
      CHECK(rc == MPI_SUCCESS && memcmp(got, world_of, sizeof got) == 0,
            "round %d: active communicator holds world %d %d %d %d %d, expected %d %d %d %d %d", round,
            got[0], got[1], got[2], got[3], got[4], world_of[0], world_of[1], world_of[2],
            world_of[3], world_of[4]);
      /* Every rank's allgather is complete before the victim dies: nobody
       * leaves an agreement before every rank entered it. */
      int flag = 1;
      net.comm = active;
      rc = fuze__ft_agree(&net, active, &flag);
      CHECK(rc == FUZE_SUCCESS && flag == 1, "round %d: agreement before the kill: %d: %s", round, rc, msg);
      if (my == victim[round]) {
        fflush(stdout);
        raise(SIGKILL);
      }
      net.comm = active;
      double t0 = MPI_Wtime();
      uint64_t v;
      do {
        v = 1;
        rc = fuze__max_u64(&net, &v);
      } while (rc == FUZE_SUCCESS && MPI_Wtime() - t0 < 60.0);
      CHECK(rc == FUZE_RANK_LOST, "round %d: active rank %d: %d after the kill: %s", round, my, rc, msg);
    } else {
      int cmd = 0;
      rc = FUZE_MPI(msg, MPI_Recv(&cmd, 1, MPI_INT, 0, FUZE_TAG_POOL, pool, MPI_STATUS_IGNORE));
      CHECK(rc == FUZE_RANK_LOST, "round %d: idle replacement: receive gave %d: %s", round, rc, msg);
    }
    int dead[NACTIVE], ndead = -1, newrank = -2, was_idle = my < 0;
    rc = fuze__ft_replace(&net, &pool, NACTIVE, &active, dead, &ndead, &newrank, 0);
    int dead_world = world_of[victim[round]];
    if (round == 2) {
      CHECK(rc == FUZE_ERR_UNRECOVERABLE && strstr(msg, "ranks 0 died"),
            "round 2: %d (%s): %s", rc, fuze_err_name(rc), msg);
      break;
    }
    CHECK(rc == FUZE_SUCCESS, "round %d: fuze__ft_replace: %d: %s", round, rc, msg);
    if (rc) break;
    CHECK(ndead == 1, "round %d: %d dead", round, ndead);
    for (int r = 0; r < NACTIVE; r++)
      CHECK(dead[r] == (r == victim[round]), "round %d: dead[%d] = %d", round, r, dead[r]);
    world_of[victim[round]] = next_repl++;
    int want = -1;
    for (int r = 0; r < NACTIVE; r++)
      if (world_of[r] == ulfm_world) want = r;
    CHECK(newrank == want, "round %d: world %d (dead world %d) got active rank %d, expected %d", round,
          ulfm_world, dead_world, newrank, want);
    if (was_idle && newrank >= 0) {
      printf("ULFM-INFO rank %d: replaces active rank %d (world %d) after round %d\n", ulfm_world,
             newrank, dead_world, round);
      fflush(stdout);
    }
    my = newrank;
    int psize = 0, prank = -1;
    MPI_Comm_size(pool, &psize);
    MPI_Comm_rank(pool, &prank);
    CHECK(psize == np - round - 1, "round %d: pool of %d ranks", round, psize);
    if (my >= 0) CHECK(prank == my, "round %d: active rank %d is pool rank %d", round, my, prank);
  }
  ULFM_VERDICT();
  MPI_Finalize();
  return ulfm_failures != 0;
}
