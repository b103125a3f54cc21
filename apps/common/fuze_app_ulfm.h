/* fuze_app_ulfm.h: what the example apps (kvstore, nqueens) print and do for
 * the ULFM tests (mpi_tests/ulfm_run.sh), read from the environment. Nothing
 * changes when these variables are not set.
 *
 *   ULFM_LINES=1   every compute rank prints "ULFM-PID rank W pid P" when its
 *                  protected phase starts (ulfm_run.sh --kill kill -9s from
 *                  outside by that pid) and, at the end, "ULFM-PASS rank W"
 *                  when the app's own verdict (the answer against the
 *                  failure-free reference) passed on it, else "ULFM-FAIL rank
 *                  W: <app> failed" (W: world rank). ulfm_run.sh decides the
 *                  test by these lines, not by mpirun's exit status, which is
 *                  unreliable under --with-ft ulfm.
 *   ULFM_STEP_MS=M every round of the protected phase sleeps M ms (the app
 *                  says where), so that a kill from outside at a random
 *                  time lands in it.
 *
 * POSIX (getpid, nanosleep): the including file defines _POSIX_C_SOURCE
 * before its first #include, as the project builds with -std=c11.
 */
#ifndef FUZE_APP_ULFM_H
#define FUZE_APP_ULFM_H

#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200112L
#error "define _POSIX_C_SOURCE 200809L before the first #include to use fuze_app_ulfm.h"
#endif

#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Whether ULFM_LINES is set (to anything but "" or "0"). */
static inline int fuze_app_ulfm_lines(void) {
  const char *e = getenv("ULFM_LINES");
  return e != NULL && *e != '\0' && strcmp(e, "0") != 0;
}

static inline int fuze_app_world_rank(void) {
  int w = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &w);
  return w;
}

/* With ULFM_LINES: "ULFM-PID rank W pid P" on stdout. Local. */
static inline void fuze_app_ulfm_pid(void) {
  if (!fuze_app_ulfm_lines()) return;
  printf("ULFM-PID rank %d pid %ld\n", fuze_app_world_rank(), (long)getpid());
  fflush(stdout);
}

/* With ULFM_LINES: this compute rank's verdict, "ULFM-PASS rank W" when ok,
 * else "ULFM-FAIL rank W: <app> failed". Local; call it after fuze_finalize
 * and before MPI_Finalize (which may hang after a failure). */
static inline void fuze_app_ulfm_verdict(const char *app, int ok) {
  if (!fuze_app_ulfm_lines()) return;
  fflush(stderr);
  if (ok) printf("ULFM-PASS rank %d\n", fuze_app_world_rank());
  else printf("ULFM-FAIL rank %d: %s failed (see its messages)\n", fuze_app_world_rank(), app);
  fflush(stdout);
}

/* With ULFM_STEP_MS=M (0..10000): sleeps M ms. Local. */
static inline void fuze_app_ulfm_pace(void) {
  const char *e = getenv("ULFM_STEP_MS");
  if (e == NULL) return;
  const long ms = strtol(e, NULL, 10);
  if (ms <= 0 || ms > 10000) return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* An MPI call of the app on the compute communicator failed with rc: under
 * ULFM (the communicator's error handler is MPI_ERRORS_RETURN) a process
 * failure shows as MPIX_ERR_PROC_FAILED, or MPIX_ERR_REVOKED once fuze
 * revoked the communicator, and the app calls fuze_recover(). Any error class
 * leads there; when fuze_recover() then finds no lost rank (FUZE_SUCCESS),
 * the app reports the error with this (MPI_Error_string's text) and stops. */
static inline void fuze_app_mpi_error(const char *app, int rank, const char *call, int rc) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
  fflush(stdout);
  fprintf(stderr, "%s: rank %d: %s failed (%s) and fuze_recover found no lost rank\n", app,
          rank, call, msg);
  fflush(stderr);
}

#endif /* FUZE_APP_ULFM_H */
