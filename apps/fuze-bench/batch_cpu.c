/* fuze-batch-cpu: the CPU time (CLOCK_THREAD_CPUTIME_ID, user and system) a
 * rank spends per sync=batch stack or map operation, the loops of fuze-bench
 * --bench update (8-byte keys, 64-byte values, the same keys and order),
 * without its wall clock: on a loaded machine with ranks sharing cores, the
 * wall rate moves 2-3x from run to run, the CPU time per operation a few
 * percent. One code per run; median over the repetitions of the mean over
 * ranks (docs/benchmarks.md 12d).
 *   mpirun -np 4 fuze-batch-cpu [OPS [REPS [CODE [F]]]]   (300000 5 rs 1) */
#include <fuze.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CK(x)                                                                        \
  do {                                                                               \
    int rc_ = (x);                                                                   \
    if (rc_ < 0) {                                                                   \
      fprintf(stderr, "fuze-batch-cpu: %s: %s\n", #x, fuze_last_error(NULL));        \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                  \
    }                                                                                \
  } while (0)

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, np;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  long n = argc > 1 ? atol(argv[1]) : 300000;
  int reps = argc > 2 ? atoi(argv[2]) : 5, f = argc > 4 ? atoi(argv[4]) : 1;
  const char *code = argc > 3 ? argv[3] : "rs";
  if (n < 1 || reps < 1 || reps > 32) {
    if (!rank) fprintf(stderr, "fuze-batch-cpu: OPS must be >= 1 and REPS within 1..32\n");
    MPI_Finalize();
    return 2;
  }
  char cfg[256];
  snprintf(cfg, sizeof cfg, "faults=%d,code=%s,sync=batch,capacity=%ld,domain=rank,spares=0", f, code, n);
  fuze_ctx *ctx;
  MPI_Comm app;
  CK(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app));
  fuze_map *m;
  fuze_stack *s;
  unsigned char val[64] = {0};
  CK(fuze_map_create(ctx, "m", 8, sizeof val, &m));
  CK(fuze_stack_create(ctx, "s", sizeof val, &s));
  const char *names[5] = {"put", "update", "remove", "push", "pop"};
  double t[5][32];
  for (int r = 0; r < reps; r++) {
    for (int op = 0; op < 5; op++) {
      MPI_Barrier(app);
      double t0 = cpu();
      for (long i = 0; i < n; i++) {
        uint64_t key = ((uint64_t)rank << 40) | (uint64_t)i;
        memcpy(val, &key, 8);
        val[63] = (unsigned char)(r + op);
        switch (op) {
          case 0: CK(fuze_map_put(m, &key, val)); break;
          case 1: val[63] ^= 0x80; CK(fuze_map_put(m, &key, val)); break;
          case 2: CK(fuze_map_remove(m, &key)); break;
          case 3: CK(fuze_stack_push(s, val)); break;
          default: CK(fuze_stack_pop(s, val)); break;
        }
      }
      CK(fuze_flush(ctx));
      double d = (cpu() - t0) / (double)n * 1e9, sum;
      MPI_Allreduce(&d, &sum, 1, MPI_DOUBLE, MPI_SUM, app);
      t[op][r] = sum / np;
    }
    CK(fuze_checkpoint(ctx));
  }
  if (!rank) {
    printf("%s f=%d ns/op CPU (median of %d reps, mean over ranks):", code, f, reps);
    for (int op = 0; op < 5; op++) {
      qsort(t[op], (size_t)reps, sizeof(double), cmpd);
      printf(" %s %.0f", names[op], t[op][reps / 2]);
    }
    printf("\n");
  }
  CK(fuze_finalize(&ctx));
  MPI_Comm_free(&app);
  MPI_Finalize();
  return 0;
}
