#define _POSIX_C_SOURCE 200809L
/* Injections that never fire (issue 15): fuze_init refuses what cannot
 * fire (naming the spec); fuze_get_stats counts the specs that have not
 * struck; fuze_finalize reports every one that never did on stderr, from
 * rank 0 only, without verbose. Run with 3 ranks. */
#include "common.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int me, np;
static char dir[64];

static uint64_t unfired(fuze_ctx *ctx) {
  fuze_stats st;
  T_EQ_INT(fuze_get_stats(ctx, &st), FUZE_SUCCESS, "stats");
  return st.injections_unfired;
}

/* fuze_finalize with this rank's stderr in a file; returns what it wrote. */
static char *finalize_capturing(fuze_ctx **ctx) {
  static char out[4096];
  char path[96];
  snprintf(path, sizeof path, "%s/stderr-%d", dir, me);
  fflush(stderr);
  int saved = dup(2), fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  T_EQ_INT(fuze_finalize(ctx), FUZE_SUCCESS, "finalize");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, out, sizeof out - 1, 0);
  out[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(path);
  return out;
}

static void refused_at_init(void) {
  char cfg[256];
  /* Checkpoint 2 commits epoch 2; persist_every=3 persists 3, 6, ... */
  snprintf(cfg, sizeof cfg, "domain=rank;dir=%s/p;persist_every=3;inject=wipe:ranks=1:at="
           "checkpoint:2:phase=persisted", dir);
  fuze_ctx *ctx = (fuze_ctx *)1;
  MPI_Comm app;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app), FUZE_ERR_CONFIG, "persist_every skips it");
  const char *want = "config: inject spec 'wipe:ranks=1:at=checkpoint:2:phase=persisted' can never "
                     "fire: checkpoint 2 commits epoch 2, which persist_every=3 does not persist";
  T_CHECK(strstr(fuze_last_error(NULL), want), "msg '%s' lacks '%s'", fuze_last_error(NULL), want);
  /* After an earlier wipe the epoch of checkpoint 2 is the run's to tell:
   * accepted at init (and reported at finalize if it never struck). */
  snprintf(cfg, sizeof cfg, "domain=rank;dir=%s/p;persist_every=3;inject=wipe:ranks=2:at="
           "checkpoint:1/wipe:ranks=1:at=checkpoint:2:phase=persisted", dir);
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app), FUZE_SUCCESS, "earlier failure: accepted");
  if (!ctx) return;
  T_CHECK(unfired(ctx) == 2, "two specs ahead, got %llu", (unsigned long long)unfired(ctx));
  const char *err = finalize_capturing(&ctx);
  const char *w1 = "fuze: inject spec 'wipe:ranks=2:at=checkpoint:1:phase=before' never fired: "
                   "the run made 0 fuze_checkpoint() call(s)\n";
  const char *w2 = "fuze: inject spec 'wipe:ranks=1:at=checkpoint:2:phase=persisted' never fired: "
                   "the run made 0 fuze_checkpoint() call(s)\n";
  if (me == 0) T_CHECK(strstr(err, w1) && strstr(err, w2), "rank 0 stderr:\n%s", err);
  else T_CHECK(err[0] == 0, "rank %d printed:\n%s", me, err);
  MPI_Comm_free(&app);
}

static void counted_and_reported(void) {
  const char *cfg = "domain=rank;inject=wipe:ranks=2:at=checkpoint:1:phase=after/wipe:ranks=1:at="
                    "checkpoint:50/corrupt:rank=0:struct=nothing:at=checkpoint:2";
  fuze_ctx *ctx;
  MPI_Comm app;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app), FUZE_SUCCESS, "init");
  if (!ctx) return;
  double d[64];
  for (int i = 0; i < 64; i++) d[i] = me * 100 + i;
  T_EQ_INT(fuze_protect(ctx, "d", d, 64, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_CHECK(unfired(ctx) == 3, "before any checkpoint: %llu", (unsigned long long)unfired(ctx));
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_RECOVERED, "checkpoint 1 (rank 2 wiped after the commit)");
  T_CHECK(unfired(ctx) == 2, "after checkpoint 1: %llu", (unsigned long long)unfired(ctx));
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint 2 (corrupt finds nothing)");
  T_CHECK(unfired(ctx) == 2, "after checkpoint 2: %llu", (unsigned long long)unfired(ctx));
  int one = 1;
  T_EQ_INT(fuze_inject_at(ctx, &one, 1, "after"), FUZE_SUCCESS, "inject_at");
  T_CHECK(unfired(ctx) == 3, "with a pending fuze_inject_at: %llu", (unsigned long long)unfired(ctx));
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_RECOVERED, "checkpoint 3 (rank 1 wiped)");
  T_CHECK(unfired(ctx) == 2, "after checkpoint 3: %llu", (unsigned long long)unfired(ctx));
  for (int i = 0; i < 64; i++) T_CHECK(d[i] == me * 100 + i, "d[%d] = %g after recovery", i, d[i]);
  const char *err = finalize_capturing(&ctx);
  const char *w1 = "fuze: inject spec 'wipe:ranks=1:at=checkpoint:50:phase=before' never fired: the "
                   "run made 3 fuze_checkpoint() call(s)\n";
  const char *w2 = "fuze: inject spec 'corrupt:rank=0:struct=nothing:at=checkpoint:2:target=primary:"
                   "bytes=1' never fired: after checkpoint 2 rank 0 held no primary bytes of a "
                   "structure named 'nothing'\n";
  if (me == 0) {
    T_CHECK(strstr(err, w1) && strstr(err, w2), "rank 0 stderr:\n%s", err);
    T_CHECK(!strstr(err, "ranks=2:at=checkpoint:1") && !strstr(err, "phase=after"),
            "specs that fired are reported:\n%s", err);
  } else {
    T_CHECK(err[0] == 0, "rank %d printed:\n%s", me, err);
  }
  MPI_Comm_free(&app);
}

/* Everything fires: nothing is printed, nothing counted. */
static void all_fired(void) {
  fuze_ctx *ctx;
  MPI_Comm app;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, "domain=rank;inject=wipe:ranks=1:at=checkpoint:1:phase=sent",
                     &ctx, &app), FUZE_SUCCESS, "init");
  if (!ctx) return;
  int x = me;
  T_EQ_INT(fuze_protect(ctx, "x", &x, 1, MPI_INT, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_RECOVERED, "checkpoint");
  T_CHECK(unfired(ctx) == 0, "all fired: %llu", (unsigned long long)unfired(ctx));
  const char *err = finalize_capturing(&ctx);
  T_CHECK(err[0] == 0, "rank %d printed:\n%s", me, err);
  MPI_Comm_free(&app);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  if (me == 0) {
    snprintf(dir, sizeof dir, "/tmp/fuze-unfired-XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (!dir[0]) {
    if (me == 0) fprintf(stderr, "test_unfired: mkdtemp failed\n");
    MPI_Finalize();
    return 1;
  }
  refused_at_init();
  counted_and_reported();
  all_fired();
  MPI_Barrier(MPI_COMM_WORLD);
  if (me == 0) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "test_unfired: could not remove %s\n", dir);
  }
  int total = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("test_unfired: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
