/* test_ulfm_comm: fuze's collective layer under real process failures
 * (comm/ft.h), under `mpirun --with-ft ulfm` through ulfm_run.sh.
 *
 *   test_ulfm_comm VICTIMS
 *
 * A fuze_net on a dup of the world (errors return, as fuze_init makes it).
 * The victims SIGKILL themselves; every survivor must see, bit for bit:
 *   1. fuze__ft_enabled() is 1 (mpirun --with-ft ulfm);
 *   2. the collective layer's calls (fuze__max_u64 in a loop) return the
 *      internal FUZE_RANK_LOST, never FUZE_ERR_MPI, with the MPI call named
 *      in the message;
 *   3. fuze__ft_agree over the survivors of the broken communicator ANDs the
 *      survivors' values (each clears its own bit: the result is exactly
 *      the victims' bits);
 *   4. fuze__ft_shrink gives the survivors in their old order and dead[]
 *      exactly the victims;
 *   5. on a fuze_net over the shrunken communicator, fuze__agree,
 *      fuze__max_u64 and fuze__reduce_to (a GF(2^8) weighted XOR of every
 *      survivor's seeded data to each root in turn) give exactly what each
 *      rank computes locally.
 * Prints "ULFM-PASS rank R" per survivor; ulfm_run.sh counts them. */
#include "comm/coll.h"
#include "comm/ft.h"
#include "core/code.h"

#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ulfm_check.h"


static int nvictims, victims[32];

static int is_victim(int r) {
  for (int v = 0; v < nvictims; v++)
    if (victims[v] == r) return 1;
  return 0;
}

static unsigned char byte_of(int world, size_t i) {
  uint64_t z = (uint64_t)world * 0x9e3779b97f4a7c15ULL + i;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (unsigned char)(z ^ (z >> 31));
}

#define LEN 100003 /* odd, more than one cache line, less than one reduction piece */

typedef struct sink_arg {
  unsigned char *out;
  size_t got;
} sink_arg;

static void sink(void *arg, size_t off, const unsigned char *res, size_t n) {
  sink_arg *s = arg;
  memcpy(s->out + off, res, n);
  s->got += n;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &ulfm_world);
  int np;
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  const char *list = argc > 1 ? argv[1] : "1";
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
  char msg[FUZE_MSG_LEN] = "";
  fuze_net net = {.comm = MPI_COMM_NULL, .msg = msg};
  MPI_Comm_dup(MPI_COMM_WORLD, &net.comm);
  MPI_Comm_set_errhandler(net.comm, MPI_ERRORS_RETURN);
  net.rank = ulfm_world;
  net.size = np;

  CHECK(fuze__ft_enabled() == 1, "fuze__ft_enabled() = %d under mpirun --with-ft ulfm",
        fuze__ft_enabled());
  uint64_t v = (uint64_t)ulfm_world;
  int rc = fuze__max_u64(&net, &v);
  CHECK(rc == FUZE_SUCCESS && v == (uint64_t)np - 1, "max before the failure: %d, %llu", rc,
        (unsigned long long)v);

  /* Nobody leaves an agreement before every rank entered it: the max above
   * is complete everywhere before a victim dies. */
  int before = 1;
  rc = fuze__ft_agree(&net, net.comm, &before);
  CHECK(rc == FUZE_SUCCESS && before == 1, "agreement before the kill: %d: %s", rc, msg);
  if (is_victim(ulfm_world)) {
    fflush(stdout);
    raise(SIGKILL);
  }

  /* 2. The collective layer reports the death as FUZE_RANK_LOST. */
  int calls = 0;
  double t0 = MPI_Wtime();
  do {
    v = 1;
    rc = fuze__max_u64(&net, &v);
    calls++;
  } while (rc == FUZE_SUCCESS && MPI_Wtime() - t0 < 60.0);
  CHECK(rc == FUZE_RANK_LOST, "fuze__max_u64 after the kill: %d (%s) after %d calls: %s", rc,
        fuze_err_name(rc), calls, msg);
  CHECK(strstr(msg, "MPI_Allreduce") != NULL, "the message names the call: %s", msg);

  /* 3. Agreement over the survivors. */
  int mask = (int)((1u << np) - 1u), flag = mask & ~(1 << ulfm_world), want = 0;
  for (int x = 0; x < nvictims; x++) want |= 1 << victims[x];
  rc = fuze__ft_agree(&net, net.comm, &flag);
  CHECK(rc == FUZE_SUCCESS && flag == want, "fuze__ft_agree: %d, flag 0x%x, expected 0x%x: %s", rc,
        flag, want, msg);

  /* 4. Shrink. */
  MPI_Comm shrunk = MPI_COMM_NULL;
  int *dead = calloc((size_t)np, sizeof *dead), ndead = -1;
  rc = fuze__ft_shrink(&net, net.comm, &shrunk, dead, &ndead);
  CHECK(rc == FUZE_SUCCESS, "fuze__ft_shrink: %d: %s", rc, msg);
  if (rc) {
    printf("ULFM-ABORT rank %d\n", ulfm_world);
    fflush(stdout);
    _exit(1);
  }
  CHECK(ndead == nvictims, "%d dead, expected %d", ndead, nvictims);
  for (int r = 0; r < np; r++) CHECK(dead[r] == is_victim(r), "dead[%d] = %d", r, dead[r]);
  fuze_net s = {.comm = shrunk, .msg = msg};
  MPI_Comm_rank(shrunk, &s.rank);
  MPI_Comm_size(shrunk, &s.size);
  int below = 0;
  for (int x = 0; x < nvictims; x++) below += victims[x] < ulfm_world;
  CHECK(s.size == np - nvictims && s.rank == ulfm_world - below, "shrunken: rank %d of %d", s.rank,
        s.size);
  int *world_of = malloc(sizeof(int) * (size_t)np);
  for (int r = 0, x = 0; r < np; r++)
    if (!dead[r]) world_of[x++] = r;

  /* 5. The collective layer on the survivors. */
  v = (uint64_t)ulfm_world * 7;
  rc = fuze__max_u64(&s, &v);
  uint64_t vmax = 0;
  for (int x = 0; x < s.size; x++) vmax = (uint64_t)world_of[x] * 7 > vmax ? (uint64_t)world_of[x] * 7 : vmax;
  CHECK(rc == FUZE_SUCCESS && v == vmax, "max over the survivors: %d, %llu, expected %llu", rc,
        (unsigned long long)v, (unsigned long long)vmax);
  rc = fuze__agree(&s, s.rank == s.size - 1 ? fuze__error(msg, FUZE_ERR_IO, "from the last") : 0);
  CHECK(rc == FUZE_ERR_IO && strstr(msg, "from the last"), "fuze__agree: %d: %s", rc, msg);
  unsigned char *data = malloc(LEN), *got = malloc(LEN), *want_buf = malloc(LEN), *tmp = malloc(LEN);
  for (size_t i = 0; i < LEN; i++) data[i] = byte_of(ulfm_world, i);
  for (int root = 0; root < s.size; root++) {
    /* coefficient of survivor x: 1 + (x * 37 + root) % 255, so none is 0 */
    unsigned char coef = (unsigned char)(1 + (s.rank * 37 + root) % 255);
    sink_arg sa = {got, 0};
    memset(got, 0, LEN);
    rc = fuze__reduce_to(&s, shrunk, 0, root, coef, data, LEN, LEN, sink, &sa);
    CHECK(rc == FUZE_SUCCESS, "fuze__reduce_to root %d: %d: %s", root, rc, msg);
    if (s.rank != root) continue;
    memset(want_buf, 0, LEN);
    for (int x = 0; x < s.size; x++) {
      unsigned char c = (unsigned char)(1 + (x * 37 + root) % 255);
      for (size_t i = 0; i < LEN; i++) tmp[i] = byte_of(world_of[x], i);
      fuze__gf_scale(c, tmp, tmp, LEN);
      fuze__xor_into(want_buf, tmp, LEN);
    }
    CHECK(sa.got == LEN && memcmp(got, want_buf, LEN) == 0,
          "reduce to root %d: %zu bytes, differs from the local GF(2^8) sum", root, sa.got);
  }
  int all = 0;
  MPI_Allreduce(&ulfm_failures, &all, 1, MPI_INT, MPI_SUM, shrunk);
  printf("ULFM-INFO rank %d: FUZE_RANK_LOST after %d calls, %.1f ms\n", ulfm_world, calls,
         (MPI_Wtime() - t0) * 1e3);
  if (ulfm_failures == 0 && all == 0)
    printf("ULFM-PASS rank %d\n", ulfm_world);
  else
    printf("ULFM-FAIL rank %d: %d failures here, %d over the survivors\n", ulfm_world, ulfm_failures, all);
  fflush(stdout);
  free(data);
  free(got);
  free(want_buf);
  free(tmp);
  free(world_of);
  free(dead);
  MPI_Comm_free(&shrunk);
  MPI_Comm_free(&net.comm);
  MPI_Finalize();
  return ulfm_failures != 0;
}
