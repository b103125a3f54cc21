/* mpicheck: what FUZE_MPI and FUZE_MPI_TEARDOWN do with a failed MPI call. */
#include "comm/net.h"

#include "comm/ft.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_ulong teardown_failures;

/* The call's name: its text up to the opening parenthesis. */
static int name_len(const char *what) {
  const char *p = strchr(what, '(');
  return p ? (int)(p - what) : (int)strlen(what);
}

/* file without the source tree's prefix: "src/comm/coll.c". */
static const char *short_file(const char *file) {
  const char *p = strstr(file, "src/");
  return p ? p : file;
}

int fuze__mpi_check(int mpi_rc, const char *what, const char *file, int line, char *msgbuf) {
  if (mpi_rc == MPI_SUCCESS) return FUZE_SUCCESS;
  char err[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  if (MPI_Error_string(mpi_rc, err, &len) != MPI_SUCCESS)
    snprintf(err, sizeof err, "MPI error code %d", mpi_rc);
  int lost = fuze__ft_is_lost(mpi_rc);
  return fuze__error(msgbuf, lost ? FUZE_RANK_LOST : FUZE_ERR_MPI, "%.*s failed at %s:%d: %s%s",
                     name_len(what), what, short_file(file), line, err,
                     lost ? " (a rank was lost)" : "");
}

void fuze__mpi_teardown(int mpi_rc, const char *what, const char *file, int line) {
  if (mpi_rc == MPI_SUCCESS) return;
  atomic_fetch_add(&teardown_failures, 1);
  (void)fuze__mpi_check(mpi_rc, what, file, line, NULL);
}

unsigned long fuze__mpi_teardown_failures(void) { return atomic_load(&teardown_failures); }
