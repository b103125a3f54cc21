/* Disk full while persisting: one rank's writes fail (RLIMIT_FSIZE with
 * SIGXFSZ ignored makes write(2) fail with EFBIG, exactly the path a full
 * disk takes, without privileges). fuze_checkpoint must return FUZE_ERR_IO on
 * every rank with the epoch committed in memory, leave no partial file of
 * that epoch, keep the previous persisted epoch as the restart point, and
 * persist again at the next checkpoint once space is back; MPI_Finalize must
 * not crash (it used to, on an HDF5 file left open). A restart then gives the
 * newest persisted state bit-exact.
 * With "async" (persist=async) a write fails in the writer thread and the
 * checkpoint that completes it (the next one, or fuze_finalize) reports it.
 * Usage: test_diskfull DIR [async] */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define N 20000 /* doubles per rank: 160 KB, far above the limit below */

static int me, np;

static void fill(double *a, int epoch) {
  for (int i = 0; i < N; i++) a[i] = me * 1e6 + epoch * 1000.0 + i * 0.5;
}

/* Files in rank r's directory: epoch files and temporaries. */
static void count_files(const char *dir, int r, int *epochs, int *tmps) {
  char p[1200];
  snprintf(p, sizeof p, "%s/domain-%d/rank-%d", dir, r, r);
  *epochs = *tmps = 0;
  DIR *d = opendir(p);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strstr(e->d_name, ".tmp")) (*tmps)++;
    else if (!strncmp(e->d_name, "epoch-", 6)) (*epochs)++;
  }
  if (d) closedir(d);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  if (argc < 2) {
    if (me == 0) fprintf(stderr, "usage: test_diskfull DIR\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  char dir[1024], cfg[1200];
  snprintf(dir, sizeof dir, "%s", argv[1]);
  if (me == 0) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) t_failures++;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  int async = argc > 2 && !strcmp(argv[2], "async");
  snprintf(cfg, sizeof cfg, "faults=1;domain=rank;dir=%s;persist=%s", dir, async ? "async" : "sync");
  signal(SIGXFSZ, SIG_IGN);
  const int victim = np - 1;
  static double a[N];
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app), FUZE_SUCCESS, "init");
  fill(a, 1);
  T_EQ_INT(fuze_protect(ctx, "a", a, N, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint 1 (persisted)");

  /* persist=async: the limit below is process-wide, so the writer of this
   * epoch must be done first (its file renamed into place). */
  fuze_stats stats;
  fuze_get_stats(ctx, &stats);
  if (async && me == victim) {
    char p[1200];
    snprintf(p, sizeof p, "%s/domain-%d/rank-%d/epoch-%llu.h5", dir, victim, victim,
             (unsigned long long)stats.epoch);
    struct timespec ts = {0, 10000000};
    for (int i = 0; i < 3000 && access(p, F_OK); i++) nanosleep(&ts, NULL);
    T_CHECK(access(p, F_OK) == 0, "the writer did not write %s within 30 s", p);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* The disk of the victim fills up. */
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 4096;
  if (me == victim) T_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
  int ep, tmp;
  if (!async) {
    fill(a, 2);
    int rc = fuze_checkpoint(ctx);
    T_EQ_INT(rc, FUZE_ERR_IO, "checkpoint 2 on a full disk");
    T_CHECK(strstr(fuze_last_error(ctx), "committed in memory but was not persisted") != NULL,
            "message: %s", fuze_last_error(ctx));
    count_files(dir, victim, &ep, &tmp);
    T_CHECK(ep == 1 && tmp == 0, "rank %d's directory after the failed persist: %d epoch files "
            "(expected 1), %d temporaries (expected 0)", victim, ep, tmp);
    /* A second attempt on the still full disk fails the same way, cleanly. */
    fill(a, 3);
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_ERR_IO, "checkpoint 3 on a full disk");
    /* Space is back: the next checkpoint persists. */
    if (me == victim) T_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0, "setrlimit back");
    fill(a, 4);
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint 4 with space back");
    T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  } else {
    /* Epoch 2 is handed to the writer, which fails; checkpoint 3 says so. */
    fill(a, 2);
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint 2 (written in the background)");
    fill(a, 3);
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_ERR_IO, "checkpoint 3 completing epoch 2 on a full disk");
    char want[200];
    static double want1[N];
    snprintf(want, sizeof want, "epoch %llu is committed in memory, but the asynchronous write "
             "of epoch %llu failed", (unsigned long long)stats.epoch + 2,
             (unsigned long long)stats.epoch + 1);
    T_CHECK(strstr(fuze_last_error(ctx), want) != NULL, "message lacks '%s': %s", want,
            fuze_last_error(ctx));
    /* fuze_finalize completes epoch 3's write (still full) and says so. */
    T_EQ_INT(fuze_finalize(&ctx), FUZE_ERR_IO, "finalize completing epoch 3 on a full disk");
    snprintf(want, sizeof want, "the asynchronous write of epoch %llu failed",
             (unsigned long long)stats.epoch + 2);
    T_CHECK(strstr(fuze_last_error(NULL), want) != NULL, "message lacks '%s': %s", want,
            fuze_last_error(NULL));
    MPI_Comm_free(&app);
    if (me == victim) T_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0, "setrlimit back");
    count_files(dir, victim, &ep, &tmp);
    T_CHECK(ep == 1 && tmp == 0, "rank %d's directory after the failed writes: %d epoch files "
            "(expected 1), %d temporaries (expected 0)", victim, ep, tmp);
    /* The newest durable epoch is checkpoint 1's; with space back the next
     * checkpoint is persisted. */
    T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app), FUZE_RESTARTED, "restart after the failures");
    fill(want1, 1);
    T_EQ_INT(fuze_protect(ctx, "a", a, N, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect after restart");
    T_CHECK(!memcmp(a, want1, sizeof a), "restarted contents differ from checkpoint 1's");
    fill(a, 4);
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint with space back");
    T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize (written with space back)");
  }
  MPI_Comm_free(&app);
  count_files(dir, victim, &ep, &tmp);
  T_CHECK(ep == 2 && tmp == 0, "rank %d's directory at the end: %d epoch files (expected 2: "
          "those of checkpoints 1 and 4), %d temporaries (expected 0)", victim, ep, tmp);

  /* The restart gives epoch 4's contents. */
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app), FUZE_RESTARTED, "restart");
  static double b[N], want[N];
  fill(want, 4);
  T_EQ_INT(fuze_protect(ctx, "a", b, N, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect after restart");
  T_CHECK(!memcmp(b, want, sizeof b), "restarted contents differ from checkpoint 4's");
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&app);
  if (me == 0) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) t_failures++;
  }
  int bad = 0;
  MPI_Allreduce(&t_failures, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (me == 0) printf("%s: %d failures\n", bad ? "FAILED" : "PASSED", bad);
  MPI_Finalize();
  return bad ? 1 : 0;
}
