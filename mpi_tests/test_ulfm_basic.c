/* test_ulfm_basic: the ULFM behaviour fuze relies on, asserted against the
 * real Open MPI 5 (no fuze code involved). Run it through ulfm_run.sh, under
 * `mpirun --with-ft ulfm`:
 *
 *   test_ulfm_basic VICTIMS [ROUNDS] [self|outside]
 *
 * VICTIMS is a comma-separated list of world ranks. Every rank builds a
 * window on a dup of the world and checks one round of accumulates. Then the
 * victims die: `self` (default) SIGKILLs them right away; with `outside`
 * every rank prints "ULFM-PID rank R pid P" and loops on allreduces until
 * one fails, and the driver (ulfm_run.sh --kill) kill -9s the victims at a
 * random time. Every survivor must see, bit for bit:
 *   1. a communicator operation (allreduce loop) fails with
 *      MPIX_ERR_PROC_FAILED or MPIX_ERR_REVOKED (never success forever);
 *   2. after MPIX_Comm_revoke, every operation on the communicator fails with
 *      MPIX_ERR_REVOKED;
 *   3. MPIX_Comm_agree works on the revoked communicator and ANDs every
 *      survivor's value (each clears its own bit: the result names the
 *      victims exactly);
 *   4. MPIX_Comm_shrink gives the survivors in their old order, and the world
 *      group minus the shrunken group is exactly the victims (the same set on
 *      every survivor; MPIX_Comm_get_failed is only printed: a survivor that
 *      learnt of the failure through the revoke may not know it yet);
 *   5. the old window can be freed (the call returns), and a new window on
 *      the shrunken communicator carries accumulates bit-exactly (BXOR of
 *      seeded patterns from every survivor, checked against the expected
 *      XOR computed locally), ROUNDS times (windows freed and recreated).
 * A survivor prints "ULFM-PASS rank R" when all held, "ULFM-FAIL ..." lines
 * otherwise; the driver counts the PASS lines (mpirun's exit status is not
 * reliable under --with-ft). What one-sided calls to the dead rank return is
 * printed, not asserted (Open MPI reports success: fuze must not rely on it
 * either way). SIGPIPE is ignored, as fuze_init does under ULFM: over btl tcp
 * a survivor writing to a dead rank's socket died of it otherwise. */
#include <mpi.h>
#include <mpi-ext.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ulfm_check.h"

#if !defined(OMPI_HAVE_MPI_EXT_FTMPI)
#error "test_ulfm_basic needs Open MPI's ftmpi extension (ULFM)"
#endif

#define N 4096 /* uint64 words per window */


static int err_class(int rc) {
  int c = rc;
  if (rc != MPI_SUCCESS) MPI_Error_class(rc, &c);
  return c;
}

static const char *class_name(int c) {
  return c == MPI_SUCCESS            ? "MPI_SUCCESS"
         : c == MPIX_ERR_PROC_FAILED ? "MPIX_ERR_PROC_FAILED"
         : c == MPIX_ERR_REVOKED     ? "MPIX_ERR_REVOKED"
                                     : "other";
}

static uint64_t pattern(int origin, int round, size_t i) {
  uint64_t z = ((uint64_t)origin << 40) ^ ((uint64_t)round << 32) ^ (uint64_t)i;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Every rank XORs pattern(own world rank) into every other rank's window;
 * each checks that its window holds the XOR of every other participant's
 * pattern. `world_of[r]` maps comm rank r to its world rank. */
static void window_round(MPI_Comm comm, const int *world_of, int round, const char *what) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  uint64_t *base = NULL;
  MPI_Win win;
  int rc = MPI_Win_allocate((MPI_Aint)(N * sizeof(uint64_t)), sizeof(uint64_t), MPI_INFO_NULL,
                            comm, &base, &win);
  CHECK(rc == MPI_SUCCESS, "%s: MPI_Win_allocate: %s", what, class_name(err_class(rc)));
  if (rc != MPI_SUCCESS) return;
  memset(base, 0, N * sizeof(uint64_t));
  MPI_Barrier(comm);
  uint64_t *src = malloc(N * sizeof(uint64_t));
  for (size_t i = 0; i < N; i++) src[i] = pattern(world_of[rank], round, i);
  rc = MPI_Win_lock_all(0, win);
  for (int t = 0; t < size && rc == MPI_SUCCESS; t++) {
    if (t == rank) continue;
    rc = MPI_Accumulate(src, N, MPI_UINT64_T, t, 0, N, MPI_UINT64_T, MPI_BXOR, win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(t, win);
  }
  if (rc == MPI_SUCCESS) rc = MPI_Win_unlock_all(win);
  CHECK(rc == MPI_SUCCESS, "%s: accumulate: %s", what, class_name(err_class(rc)));
  rc = MPI_Barrier(comm);
  CHECK(rc == MPI_SUCCESS, "%s: barrier after accumulate: %s", what, class_name(err_class(rc)));
  MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win); /* local view of the window */
  size_t bad = 0;
  for (size_t i = 0; i < N; i++) {
    uint64_t want = 0;
    for (int r = 0; r < size; r++)
      if (r != rank) want ^= pattern(world_of[r], round, i);
    bad += base[i] != want;
  }
  MPI_Win_unlock(rank, win);
  CHECK(bad == 0, "%s: %zu of %d words differ from the XOR of the other ranks' patterns", what, bad, N);
  free(src);
  rc = MPI_Win_free(&win);
  CHECK(rc == MPI_SUCCESS, "%s: MPI_Win_free: %s", what, class_name(err_class(rc)));
}

static int nvictims, victims[32];

static int is_victim(int r) {
  for (int v = 0; v < nvictims; v++)
    if (victims[v] == r) return 1;
  return 0;
}

static int victims_below(int r) {
  int n = 0;
  for (int v = 0; v < nvictims; v++) n += victims[v] < r;
  return n;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  /* As fuze_init does under ULFM: btl tcp writes to a dead rank's socket, and
   * with SIGPIPE at its default action a survivor dies of it (exit 141). */
  signal(SIGPIPE, SIG_IGN);
  MPI_Comm_rank(MPI_COMM_WORLD, &ulfm_world);
  int np;
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  const char *list = argc > 1 ? argv[1] : "1";
  int rounds = argc > 2 ? atoi(argv[2]) : 2;
  int outside = argc > 3 && strcmp(argv[3], "outside") == 0;
  for (const char *p = list; *p && nvictims < 32;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 0 || v >= np || is_victim((int)v)) {
      nvictims = 0;
      break;
    }
    victims[nvictims++] = (int)v;
    p = *end == ',' ? end + 1 : end;
  }
  if (nvictims == 0 || nvictims > np - 2 || np > 30) {
    printf("ULFM-FAIL usage: victims \"%s\" must be distinct ranks of np=%d, leaving 2\n", list, np);
    MPI_Finalize();
    return 2;
  }
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  int *world_of = malloc(sizeof(int) * (size_t)np);
  for (int r = 0; r < np; r++) world_of[r] = r;

  /* Before the failure: a window that works, and stays allocated across it. */
  window_round(comm, world_of, 0, "before the failure");
  uint64_t *old_base = NULL;
  MPI_Win old;
  int rc = MPI_Win_allocate((MPI_Aint)(N * sizeof(uint64_t)), sizeof(uint64_t), MPI_INFO_NULL,
                            comm, &old_base, &old);
  CHECK(rc == MPI_SUCCESS, "old window: %s", class_name(err_class(rc)));
  MPI_Barrier(comm);

  if (outside) {
    printf("ULFM-PID rank %d pid %ld\n", ulfm_world, (long)getpid());
    fflush(stdout);
  } else if (is_victim(ulfm_world)) {
    fflush(stdout);
    raise(SIGKILL);
  }

  /* 1. Detection through a communicator operation. */
  double t0 = MPI_Wtime();
  int one = 1, sum = 0, iters = 0;
  do {
    rc = MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, comm);
    iters++;
  } while (rc == MPI_SUCCESS && MPI_Wtime() - t0 < 60.0);
  double detect = MPI_Wtime() - t0;
  int cls = err_class(rc);
  CHECK(cls == MPIX_ERR_PROC_FAILED || cls == MPIX_ERR_REVOKED,
        "allreduce after the kill: %s (class %d) after %d calls, %.3f s", class_name(cls), cls,
        iters, detect);
  if (outside && is_victim(ulfm_world)) {
    printf("ULFM-FAIL rank %d: a victim outlived the failure of an allreduce\n", ulfm_world);
    fflush(stdout);
    _exit(1);
  }

  /* One-sided to a dead rank: printed only. */
  uint64_t word = 1;
  int osc = MPI_Win_lock_all(0, old);
  if (osc == MPI_SUCCESS) osc = MPI_Accumulate(&word, 1, MPI_UINT64_T, victims[0], 0, 1, MPI_UINT64_T, MPI_BXOR, old);
  if (osc == MPI_SUCCESS) osc = MPI_Win_flush(victims[0], old);
  int osc_unlock = MPI_Win_unlock_all(old);

  /* 2. Revoke: every later operation says so. */
  double t1 = MPI_Wtime();
  rc = MPIX_Comm_revoke(comm);
  CHECK(rc == MPI_SUCCESS, "MPIX_Comm_revoke: %s", class_name(err_class(rc)));
  rc = MPI_Barrier(comm);
  CHECK(err_class(rc) == MPIX_ERR_REVOKED, "barrier on the revoked communicator: %s",
        class_name(err_class(rc)));

  /* 3. Agreement over the survivors of the revoked communicator (a survivor
   * that learnt of the failure through the revoke may not have acknowledged
   * it: MPIX_ERR_PROC_FAILED then, with the value still agreed). */
  int mask = (int)((1u << np) - 1u), flag = mask & ~(1 << ulfm_world), want = 0;
  for (int v = 0; v < nvictims; v++) want |= 1 << victims[v];
  rc = MPIX_Comm_agree(comm, &flag);
  CHECK(rc == MPI_SUCCESS || err_class(rc) == MPIX_ERR_PROC_FAILED, "MPIX_Comm_agree: %s",
        class_name(err_class(rc)));
  CHECK(flag == want, "agreed flag 0x%x, expected 0x%x (only the victims' bits left)", flag, want);
  /* What this survivor itself knows failed: printed (it may know nothing yet). */
  int known = -1;
  if (MPIX_Comm_failure_ack(comm) == MPI_SUCCESS) {
    MPI_Group failed = MPI_GROUP_NULL;
    if (MPIX_Comm_get_failed(comm, &failed) == MPI_SUCCESS) {
      MPI_Group_size(failed, &known);
      MPI_Group_free(&failed);
    }
  }

  /* 4. Shrink: the survivors in their old order. */
  MPI_Comm shrunk = MPI_COMM_NULL;
  rc = MPIX_Comm_shrink(comm, &shrunk);
  double repair = MPI_Wtime() - t1;
  CHECK(rc == MPI_SUCCESS, "MPIX_Comm_shrink: %s", class_name(err_class(rc)));
  if (rc != MPI_SUCCESS) {
    printf("ULFM-ABORT rank %d: no shrunken communicator\n", ulfm_world);
    fflush(stdout);
    _exit(1);
  }
  MPI_Comm_set_errhandler(shrunk, MPI_ERRORS_RETURN);
  int srank = -1, ssize = -1;
  MPI_Comm_rank(shrunk, &srank);
  MPI_Comm_size(shrunk, &ssize);
  CHECK(ssize == np - nvictims, "shrunken size %d, expected %d", ssize, np - nvictims);
  CHECK(srank == ulfm_world - victims_below(ulfm_world), "shrunken rank %d of world rank %d",
        srank, ulfm_world);
  /* 4. The dead ranks are the world minus the shrunken group: the same on
   * every survivor by construction (what fuze uses). */
  MPI_Group wg, sg;
  MPI_Comm_group(comm, &wg);
  MPI_Comm_group(shrunk, &sg);
  int *in = malloc(sizeof(int) * (size_t)np), *out = malloc(sizeof(int) * (size_t)np), ndead = 0;
  for (int r = 0; r < np; r++) in[r] = r;
  MPI_Group_translate_ranks(wg, np, in, sg, out);
  for (int r = 0; r < np; r++)
    if (out[r] == MPI_UNDEFINED) {
      ndead++;
      CHECK(is_victim(r), "world rank %d is missing from the shrunken communicator", r);
    } else {
      CHECK(!is_victim(r) && out[r] == r - victims_below(r), "world rank %d is rank %d after the shrink",
            r, out[r]);
    }
  CHECK(ndead == nvictims, "%d ranks missing from the shrunken communicator, expected %d", ndead,
        nvictims);
  MPI_Group_free(&wg);
  MPI_Group_free(&sg);
  free(in);
  free(out);
  for (int r = 0, s = 0; r < np; r++)
    if (!is_victim(r)) world_of[s++] = r;

  /* 5. The old window goes; new ones work on the shrunken communicator. */
  int freed = MPI_Win_free(&old);
  for (int round = 1; round <= rounds; round++) {
    char what[64];
    snprintf(what, sizeof what, "shrunken communicator, round %d", round);
    window_round(shrunk, world_of, round, what);
  }
  int all = 0;
  rc = MPI_Allreduce(&ulfm_failures, &all, 1, MPI_INT, MPI_SUM, shrunk);
  CHECK(rc == MPI_SUCCESS, "final allreduce: %s", class_name(err_class(rc)));

  printf("ULFM-INFO rank %d: detected %s after %d calls in %.1f ms; revoke+agree+shrink "
         "%.1f ms; knew %d failed before the shrink; one-sided to the dead rank: %s (unlock %s); "
         "old window free: %s\n",
         ulfm_world, class_name(cls), iters, detect * 1e3, repair * 1e3, known, class_name(err_class(osc)),
         class_name(err_class(osc_unlock)), class_name(err_class(freed)));
  if (ulfm_failures == 0 && all == 0)
    printf("ULFM-PASS rank %d\n", ulfm_world);
  else
    printf("ULFM-FAIL rank %d: %d failures here, %d over the survivors\n", ulfm_world, ulfm_failures, all);
  fflush(stdout);
  MPI_Comm_free(&shrunk);
  MPI_Comm_free(&comm);
  free(world_of);
  MPI_Finalize();
  return ulfm_failures != 0;
}
