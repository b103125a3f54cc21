/* Helpers shared by the MPI tests: a seeded RNG, checks that print both
 * values, and agreement of failures across ranks. */
#ifndef FUZE_TEST_COMMON_H
#define FUZE_TEST_COMMON_H

#include <fuze.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;

#define T_CHECK(cond, ...)                                                       \
  do {                                                                           \
    if (!(cond)) {                                                               \
      int r_;                                                                    \
      MPI_Comm_rank(MPI_COMM_WORLD, &r_);                                        \
      fprintf(stderr, "FAIL rank %d %s:%d: %s: ", r_, __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                              \
      fprintf(stderr, "\n");                                                     \
      t_failures++;                                                              \
    }                                                                            \
  } while (0)

#define T_EQ_INT(a, b, what)                                                     \
  T_CHECK((a) == (b), "%s: got %d (%s), expected %d (%s)", what, (int)(a),       \
          fuze_err_name(a), (int)(b), fuze_err_name(b))

static inline uint64_t t_rng(uint64_t *s) {
  /* splitmix64: deterministic per seed, so a failing run can be replayed. */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline size_t t_below(uint64_t *s, size_t n) { return n ? (size_t)(t_rng(s) % n) : 0; }

static inline void t_fill(uint64_t *s, unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)t_rng(s);
}

/* Failure sets: the subsets of {0..np-1} of size 1..f in lexicographic
 * order; start with *len = 1, set[0] = 0. Returns 0 after the last one. */
static inline int t_next_subset(int *set, int *len, int np, int f) {
  int k = *len;
  for (int i = k - 1; i >= 0; i--) {
    if (set[i] < np - k + i) {
      set[i]++;
      for (int j = i + 1; j < k; j++) set[j] = set[j - 1] + 1;
      return 1;
    }
  }
  if (k >= f) return 0;
  *len = k + 1;
  for (int i = 0; i <= k; i++) set[i] = i;
  return 1;
}

/* Sum of failures over all ranks of comm. */
static inline int t_total(MPI_Comm comm) {
  int all = 0;
  MPI_Allreduce(&t_failures, &all, 1, MPI_INT, MPI_SUM, comm);
  return all;
}

#endif
