/* Job-wide introspection (issue 15): fuze_get_job_stats summed over every
 * rank, spares included; the memory fields of fuze_stats; the effective
 * configuration and where each value came from; fuze_map_upsert saying
 * insert or update; a per-map capacity hint; and an idle spare rank that
 * does not spin a core.
 *
 * Run on 4 ranks: domain=rank, spares=1, faults=1, so world rank 3 is a spare
 * hosting the only backup of the block of compute ranks 0..2. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include "core/pfile.h" /* fuze__fobj_layout: a fused region's bytes */

#include <sys/resource.h>
#include <time.h>

#define NCOMPUTE 3
#define IDLE_SECONDS 3.0
#define MAX_SPARE_CPU 0.20 /* fraction of wall time */

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

static void check_config(fuze_ctx *ctx) {
  char buf[FUZE_CONFIG_STRING_MAX];
  T_EQ_INT(fuze_config_string(ctx, buf, sizeof buf), FUZE_SUCCESS, "fuze_config_string");
  const char *want = "faults=1;spares=1;replacements=0;replace=auto;domain=rank;code=rs;recovery=rollback;chunk=65536;"
                     "capacity=64;sync=op;lock=shared;shm=auto;persist_every=1;persist_base=1;verify_every=0;"
                     "verbose=0;persist=sync;restart=auto";
  T_CHECK(!strcmp(buf, want), "config string\n got  %s\n want %s", buf, want);
  char small[16];
  T_EQ_INT(fuze_config_string(ctx, small, sizeof small), FUZE_ERR_ARG, "too small a buffer");
  T_CHECK(strstr(fuze_last_error(NULL), "holds 16 bytes") &&
          strstr(fuze_last_error(NULL), "needs 219"), "message: %s", fuze_last_error(NULL));
  T_CHECK(!strcmp(small, "faults=1;spares"), "truncated: '%s'", small);
  const char *src[][2] = {{"faults", "config"}, {"domain", "config"}, {"capacity", "environment"},
                          {"chunk", "default"}, {"code", "default"}};
  for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
    const char *got = fuze_config_source(ctx, src[i][0]);
    T_CHECK(got && !strcmp(got, src[i][1]), "source of %s: %s, expected %s", src[i][0],
            got ? got : "NULL", src[i][1]);
  }
  T_CHECK(fuze_config_source(ctx, "nosuchkey") == NULL, "unknown key must give NULL");
}

static void check_upsert_and_hint(fuze_ctx *ctx, int rank) {
  fuze_map *m = NULL, *h = NULL, *plain = NULL;
  T_EQ_INT(fuze_map_create(ctx, "plain", 8, 8, &plain), FUZE_SUCCESS, "map_create");
  T_EQ_INT(fuze_map_create_hint(ctx, "hinted", 8, 8, 1000, &h), FUZE_SUCCESS, "create_hint");
  int bad = rank == 1 ? 999 : 1000;
  T_EQ_INT(fuze_map_create_hint(ctx, "bad", 8, 8, (size_t)bad, &m), FUZE_ERR_ARG, "differing hint");
  if (rank == 1)
    T_CHECK(strstr(fuze_last_error(ctx), "capacity 999 on rank 1 differs from 1000 on rank 0"),
            "message: %s", fuze_last_error(ctx));
  T_EQ_INT(fuze_map_create_hint(ctx, "huge", 8, 8, (size_t)1 << 31, &m), FUZE_ERR_ARG, "huge hint");
  T_CHECK(strstr(fuze_last_error(ctx), "capacity 2147483648 is out of range (1..1073741824"),
          "message: %s", fuze_last_error(ctx));
  for (uint64_t k = 0; k < 300; k++) {
    uint64_t v = k * 7 + (uint64_t)rank;
    int ins = -1;
    T_EQ_INT(fuze_map_upsert(h, &k, &v, &ins), FUZE_SUCCESS, "upsert insert");
    T_CHECK(ins == 1, "key %llu: inserted=%d, expected 1", (unsigned long long)k, ins);
    T_EQ_INT(fuze_map_put(plain, &k, &v), FUZE_SUCCESS, "put");
  }
  for (uint64_t k = 0; k < 300; k += 3) {
    uint64_t v = k;
    int ins = -1;
    T_EQ_INT(fuze_map_upsert(h, &k, &v, &ins), FUZE_SUCCESS, "upsert update");
    T_CHECK(ins == 0, "key %llu: inserted=%d, expected 0", (unsigned long long)k, ins);
  }
  uint64_t k0 = 0;
  T_EQ_INT(fuze_map_upsert(h, &k0, NULL, NULL), FUZE_ERR_ARG, "NULL value");
  T_CHECK(fuze_map_size(h) == 300, "size %zu", fuze_map_size(h));
  fuze_stats st;
  T_EQ_INT(fuze_get_stats(ctx, &st), FUZE_SUCCESS, "stats");
  T_CHECK(st.undo_bytes > 0, "undo bytes before the checkpoint: %llu", (unsigned long long)st.undo_bytes);
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint");
  T_EQ_INT(fuze_get_stats(ctx, &st), FUZE_SUCCESS, "stats");
  T_CHECK(st.undo_bytes == 0, "undo bytes after the checkpoint: %llu", (unsigned long long)st.undo_bytes);
  fuze_fused_stats fh, fp;
  T_EQ_INT(fuze_fused_info(ctx, "hinted", &fh), FUZE_SUCCESS, "fused_info");
  T_EQ_INT(fuze_fused_info(ctx, "plain", &fp), FUZE_SUCCESS, "fused_info");
  T_CHECK(fh.capacity >= 1000 && fh.deferred_ops == 0, "hinted: capacity %llu, deferred %llu",
          (unsigned long long)fh.capacity, (unsigned long long)fh.deferred_ops);
  T_CHECK(fp.deferred_ops > 0, "plain map at capacity=64: deferred %llu (expected > 0)",
          (unsigned long long)fp.deferred_ops);
  /* Memory: the spare hosts one region per map (committed and working), of
   * the layout's size at the map's capacity, index replicas included. */
  fuze_stats job;
  T_EQ_INT(fuze_get_job_stats(ctx, &job), FUZE_SUCCESS, "job stats");
  uint64_t want = 3000 + fuze__fobj_layout(NCOMPUTE, fh.capacity, 8, 8).bytes +
                  fuze__fobj_layout(NCOMPUTE, fp.capacity, 8, 8).bytes;
  T_CHECK(job.parity_bytes == want && job.working_bytes == want, "job parity %llu working %llu, "
          "expected %llu", (unsigned long long)job.parity_bytes, (unsigned long long)job.working_bytes,
          (unsigned long long)want);
  T_CHECK(job.protected_bytes == 6000 + 2 * NCOMPUTE * 300 * 16, "job protected %llu",
          (unsigned long long)job.protected_bytes);
  /* Each rank's maps hold at least their 2 * 300 pairs of 16 bytes and an index. */
  T_CHECK(st.total_bytes > st.shadow_bytes + 2 * 300 * 16 + 2 * 300 * 8, "total %llu",
          (unsigned long long)st.total_bytes);
}

/* Arrays only, for exact numbers: compute rank r protects (r + 1) * 1000
 * bytes; the spare hosts the block's committed and working parity, each the
 * size of the largest member (3000 bytes). */
static void check_stats(fuze_ctx *ctx, MPI_Comm app, int rank) {
  fuze_stats mine, job;
  T_EQ_INT(fuze_get_stats(ctx, &mine), FUZE_SUCCESS, "stats");
  uint64_t bytes = (uint64_t)(rank + 1) * 1000;
  T_CHECK(mine.protected_bytes == bytes && mine.shadow_bytes == bytes, "rank %d: protected %llu "
          "shadow %llu, expected %llu", rank, (unsigned long long)mine.protected_bytes,
          (unsigned long long)mine.shadow_bytes, (unsigned long long)bytes);
  T_CHECK(mine.parity_bytes == 0 && mine.working_bytes == 0 && mine.undo_bytes == 0 &&
          mine.replica_bytes == 0 && mine.total_bytes == bytes, "rank %d: parity %llu working "
          "%llu undo %llu replica %llu total %llu", rank, (unsigned long long)mine.parity_bytes,
          (unsigned long long)mine.working_bytes, (unsigned long long)mine.undo_bytes,
          (unsigned long long)mine.replica_bytes, (unsigned long long)mine.total_bytes);
  T_EQ_INT(fuze_get_job_stats(ctx, NULL), FUZE_ERR_ARG, "NULL sum");
  T_EQ_INT(fuze_get_job_stats(ctx, &job), FUZE_SUCCESS, "job stats");
  T_CHECK(job.protected_bytes == 6000 && job.shadow_bytes == 6000, "job protected %llu shadow %llu, "
          "expected 6000", (unsigned long long)job.protected_bytes, (unsigned long long)job.shadow_bytes);
  T_CHECK(job.parity_bytes == 3000 && job.working_bytes == 3000, "job parity %llu working %llu, "
          "expected 3000 (hosted by the spare)", (unsigned long long)job.parity_bytes,
          (unsigned long long)job.working_bytes);
  T_CHECK(job.total_bytes == 12000, "job total %llu, expected 12000", (unsigned long long)job.total_bytes);
  T_CHECK(job.epoch == mine.epoch && job.nblocks == 1 && job.nbackups == 1 &&
          job.sent_bytes >= 6000, "job epoch %llu (mine %llu) nblocks %d nbackups %d sent %llu",
          (unsigned long long)job.epoch, (unsigned long long)mine.epoch, job.nblocks, job.nbackups,
          (unsigned long long)job.sent_bytes);
  (void)app;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int wrank, wsize;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);
  if (wsize != NCOMPUTE + 1) {
    if (!wrank) fprintf(stderr, "run on %d ranks\n", NCOMPUTE + 1);
    MPI_Finalize();
    return 2;
  }
  setenv("FUZE_CAPACITY", "64", 1);
  double wall0 = MPI_Wtime(), cpu0 = cpu_seconds();
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, "domain=rank;spares=1;faults=1", &ctx, &app);
  T_EQ_INT(rc, FUZE_SUCCESS, "fuze_init");
  if (ctx) {
    int rank;
    MPI_Comm_rank(app, &rank);
    size_t n = (size_t)(rank + 1) * 125;
    double *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = rank * 1000.0 + (double)i;
    T_EQ_INT(fuze_protect(ctx, "a", a, n, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint");
    check_stats(ctx, app, rank);
    check_config(ctx);
    check_upsert_and_hint(ctx, rank);
    /* The spare idles while the compute ranks do no fuze call. */
    struct timespec idle = {(time_t)IDLE_SECONDS, 0};
    nanosleep(&idle, NULL);
    T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
    MPI_Comm_free(&app);
    free(a);
  } else {
    double wall = MPI_Wtime() - wall0, cpu = cpu_seconds() - cpu0;
    printf("spare rank %d: %.2f s CPU in %.2f s wall inside fuze_init (%.1f%%)\n", wrank, cpu, wall,
           100.0 * cpu / wall);
    T_CHECK(wall >= IDLE_SECONDS, "the spare returned after %.2f s", wall);
    T_CHECK(cpu < MAX_SPARE_CPU * wall, "an idle spare used %.2f s CPU in %.2f s wall (limit %.0f%%)",
            cpu, wall, 100.0 * MAX_SPARE_CPU);
  }
  int fails = 0;
  MPI_Allreduce(&t_failures, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (!wrank) printf("%s: %d failure(s)\n", fails ? "FAIL" : "PASS", fails);
  MPI_Finalize();
  return fails ? 1 : 0;
}
