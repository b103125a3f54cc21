/* ulfm_check.h: the verdict lines of the ULFM test programs, which
 * ulfm_run.sh reads (mpirun's status is not reliable under --with-ft):
 * CHECK prints "ULFM-FAIL rank W line L: ..." and counts the failure in
 * ulfm_failures; ULFM_VERDICT prints "ULFM-PASS rank W" or "ULFM-FAIL rank W:
 * N failures". W is ulfm_world, which each program sets (its world rank, or
 * another number that tells its processes apart). */
#ifndef FUZE_ULFM_CHECK_H
#define FUZE_ULFM_CHECK_H

#include <stdio.h>

static int ulfm_failures, ulfm_world;

#define CHECK(cond, ...)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      printf("ULFM-FAIL rank %d line %d: %s: ", ulfm_world, __LINE__, #cond);       \
      printf(__VA_ARGS__);                                                          \
      printf("\n");                                                                 \
      fflush(stdout);                                                               \
      ulfm_failures++;                                                              \
    }                                                                               \
  } while (0)

#define ULFM_VERDICT()                                                              \
  do {                                                                              \
    if (ulfm_failures) printf("ULFM-FAIL rank %d: %d failures\n", ulfm_world, ulfm_failures); \
    else printf("ULFM-PASS rank %d\n", ulfm_world);                                 \
    fflush(stdout);                                                                 \
  } while (0)

#endif
