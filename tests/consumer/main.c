/* Consumer of an installed fuze: checks that the header, the library and MPI link and run.
 * Built twice by the install_consumer test: through find_package(fuze) and through
 * `mpicc main.c $(pkg-config --cflags --libs fuze)`. Run it with 2 or more ranks. */
#include <fuze.h>

#include <mpi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  int failed = 0;
  const char *text = fuze_strerror(FUZE_ERR_ARG);
  if (strcmp(text, "invalid argument") != 0) {
    fprintf(stderr, "rank %d: fuze_strerror(FUZE_ERR_ARG) = \"%s\", want \"invalid argument\"\n",
            rank, text);
    failed = 1;
  }

  /* One failure domain per rank, so that two ranks are enough to place a backup. A single
   * rank cannot hold a backup of itself, so a singleton run only checks the link. */
  if (size >= 2) {
    const char *config = "domain=rank";
    fuze_ctx *ctx = NULL;
    MPI_Comm app = MPI_COMM_NULL;
    int rc = fuze_init(MPI_COMM_WORLD, config, &ctx, &app);
    if (rc != FUZE_SUCCESS) {
      fprintf(stderr, "rank %d: fuze_init(\"%s\") = %s: %s\n", rank, config,
              fuze_err_name(rc), fuze_last_error(NULL));
      failed = 1;
    } else {
      rc = fuze_finalize(&ctx);
      if (rc != FUZE_SUCCESS || ctx != NULL) {
        fprintf(stderr, "rank %d: fuze_finalize = %s\n", rank, fuze_err_name(rc));
        failed = 1;
      }
      if (app != MPI_COMM_NULL) MPI_Comm_free(&app);
    }
  } else if (rank == 0) {
    printf("1 rank: fuze_init/fuze_finalize skipped (run with 2 or more ranks)\n");
  }

  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0)
    printf("fuze %s consumer on %d rank(s): %s\n", FUZE_VERSION_STRING, size,
           any_failed ? "FAILED" : "ok");
  MPI_Finalize();
  return any_failed;
}
