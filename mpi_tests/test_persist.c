/* Persistence and restart inside one MPI job: a run persists three epochs
 * (arrays of two types and unequal sizes incl. empty, a stack and a map),
 * then, for every scenario, a copy of its directory is damaged and fuze_init
 * restarts from it:
 *   - every set of <= f deleted domain directories (exhaustive), each
 *     restart bit-exact, followed by a checkpoint, an in-job wipe and a
 *     recovery (the restored parity must be exact too);
 *   - a corrupted, a truncated and a foreign (another job's) file;
 *   - the newest epoch's files of more than f ranks deleted: the restart
 *     falls back to the previous complete epoch;
 *   - more than f domains deleted: FUZE_ERR_UNRECOVERABLE naming the block;
 *   - the manifest (DIR/manifest and one copy per domain): a garbage
 *     DIR/manifest, rank 0's domain with DIR/manifest, every copy deleted
 *     (the files say which epoch): each restarts bit-exact; no manifest and
 *     f+1 domains, garbage copies and no files, two jobs' manifests:
 *     FUZE_ERR_CORRUPT; other faults: FUZE_ERR_CONFIG;
 *   - a rank wiped in the middle of persisting (phase persist and
 *     persisted): the job recovers and persists that epoch again, which the
 *     restart then uses.
 * With "byzantine", every run uses code=byzantine (a mode over the rs code:
 * f replicas of every primary, compared at every checkpoint), and two more
 * scenarios check that the mode survives the restart: a rerun with code=rs
 * is refused naming both, and a replica corrupted at the first checkpoint
 * after a restart is found and corrected (the replicas were rebuilt from the
 * restored primaries, and the mode is live).
 * With "async", every run uses persist=async (a writer thread; the epoch
 * becomes a restart point at the next checkpoint or fuze_finalize).
 * Usage: test_persist [faults] [spares] [byzantine|async] */
#include "common.h"

#include <sys/stat.h>
#include <unistd.h>

#define MODEL_MAXN 600
#include "struct_model.h"

static int me, np, nf, nsp;
static const char *run_code = "rs"; /* code= of every run */
static int async;                   /* persist=async in every run */
static char extra[256];         /* appended to the configuration */
static uint64_t rng;
static char base[512];
static char what[256];

static void say(const char *s) {
  if (me == 0) {
    printf("%s\n", s);
    fflush(stdout);
  }
}

static void sh(const char *fmt, const char *a, const char *b) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  if (me == 0 && system(cmd) != 0) {
    fprintf(stderr, "FAIL: command failed: %s\n", cmd);
    t_failures++;
  }
}

static char *config(char *buf, size_t len, const char *dir, int faults) {
  snprintf(buf, len, "faults=%d;spares=%d;domain=rank;capacity=8;code=%s;dir=%s;persist=%s%s",
           faults, nsp, run_code, dir, async ? "async" : "sync", extra);
  return buf;
}

/* Random changes to the live structures and the model. */
static const model_mix mix = {.a_stride = 7, .ops_base = 5, .ops_range = 40, .push_odds = 3,
                              .remove_odds = 3, .stack_max = 300, .keys = 400};
static void mutate(state *s, double *a, int32_t *iv, fuze_stack *st, fuze_map *m) {
  model_mutate(&rng, &mix, s, a, iv, st, m);
}

/* The first run: three persisted epochs, then changes that are never
 * committed. Returns the model at epoch 3 in s3 and epoch 2 in s2. */
static void first_run(const char *dir, state *s2, state *s3) {
  char cfg[1024];
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, dir, nf), &ctx, &app);
  T_EQ_INT(rc, FUZE_SUCCESS, "first fuze_init");
  if (!ctx) return;
  state *s = calloc(1, sizeof *s);
  s->na = me % 3 == 1 ? 0 : 1000 + 397 * (size_t)me; /* <= 4096 for np <= 8 */
  s->ni = 50 + 31 * (size_t)me; /* <= 1024 */
  double *a = calloc(s->na + 1, sizeof *a);
  int32_t *iv = calloc(s->ni, sizeof *iv);
  fuze_stack *st;
  fuze_map *m;
  T_EQ_INT(fuze_protect(ctx, "field", a, s->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_protect(ctx, "ints", iv, s->ni, MPI_INT32_T, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_stack_create(ctx, "stack", EB, &st), FUZE_SUCCESS, "stack");
  T_EQ_INT(fuze_map_create(ctx, "map", 8, VB, &m), FUZE_SUCCESS, "map");
  for (int e = 1; e <= 3; e++) {
    mutate(s, a, iv, st, m);
    rc = fuze_checkpoint(ctx);
    T_CHECK(rc == FUZE_SUCCESS, "checkpoint %d: %s: %s", e, fuze_err_name(rc), fuze_last_error(ctx));
    if (e == 2) *s2 = *s;
  }
  *s3 = *s;
  /* Never committed (with persist=async: made while epoch 3 is being
   * written, which must not see them). */
  mutate(s, a, iv, st, m);
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  /* Only the newest two complete epochs are kept. */
  char path[1024];
  struct stat sb;
  snprintf(path, sizeof path, "%s/domain-%d/rank-%d/epoch-1.h5", dir, me, me);
  T_CHECK(stat(path, &sb) != 0, "%s should have been deleted", path);
  snprintf(path, sizeof path, "%s/domain-%d/rank-%d/epoch-3.h5", dir, me, me);
  T_CHECK(stat(path, &sb) == 0, "%s is missing", path);
  free(a);
  free(iv);
  free(s);
}

/* Live structures equal the model. */
static void compare(const state *s, const double *a, const int32_t *iv, fuze_stack *st,
                    fuze_map *m, const char *when) {
  model_compare(what, s, a, iv, st, m, when);
}

/* Restart from dir and check everything against s; then a checkpoint, a
 * wipe of `victim` and a recovery must give s back again. */
static void restart_ok(const char *dir, const state *s, int victim) {
  char cfg[1024];
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, dir, nf), &ctx, &app);
  if (!ctx) {
    T_CHECK(rc == FUZE_SUCCESS, "%s: fuze_init on a spare: %s (%s)", what, fuze_err_name(rc),
            fuze_last_error(NULL));
    return;
  }
  T_CHECK(rc == FUZE_RESTARTED, "%s: fuze_init returned %s (%s)", what, fuze_err_name(rc),
          fuze_last_error(ctx));
  size_t n = 99;
  T_EQ_INT(fuze_stored_count(ctx, "field", &n), FUZE_SUCCESS, "stored_count");
  T_CHECK(n == s->na, "%s: stored count of 'field' %zu, expected %zu", what, n, s->na);
  T_EQ_INT(fuze_stored_count(ctx, "nope", &n), FUZE_ERR_NOT_FOUND, "stored_count of an unknown name");
  T_EQ_INT(fuze_stored_count(ctx, "map", &n), FUZE_SUCCESS, "stored_count(map)");
  T_CHECK(n == s->mn, "%s: stored count of 'map' %zu, expected %zu", what, n, s->mn);
  double *a = malloc((s->na + 1) * sizeof *a);
  int32_t *iv = malloc(s->ni * sizeof *iv);
  memset(a, 0xA5, (s->na + 1) * sizeof *a);
  memset(iv, 0xA5, s->ni * sizeof *iv);
  fuze_stack *st = NULL;
  fuze_map *m = NULL;
  /* A wrong size is refused with the stored one named. */
  if (s->ni > 1) {
    rc = fuze_protect(ctx, "ints", iv, me == 0 ? s->ni - 1 : s->ni, MPI_INT32_T, NULL);
    T_EQ_INT(rc, FUZE_ERR_ARG, "protect with the wrong count");
    T_CHECK(strstr(fuze_last_error(ctx), "fuze_stored_count") != NULL, "message: %s", fuze_last_error(ctx));
  }
  /* The same size is not the same type: 8-byte integers over stored doubles. */
  rc = fuze_protect(ctx, "field", a, s->na, MPI_INT64_T, NULL);
  T_EQ_INT(rc, FUZE_ERR_ARG, "protect with another type of the same size");
  T_CHECK(strstr(fuze_last_error(ctx), "stores MPI_DOUBLE elements, but MPI_INT64_T was registered") != NULL,
          "message: %s", fuze_last_error(ctx));
  T_EQ_INT(fuze_protect(ctx, "field", a, s->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_protect(ctx, "ints", iv, s->ni, MPI_INT32_T, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_stack_create(ctx, "stack", EB, &st), FUZE_SUCCESS, "stack");
  T_EQ_INT(fuze_map_create(ctx, "map", 8, VB, &m), FUZE_SUCCESS, "map");
  if (st && m) {
    compare(s, a, iv, st, m, "after restart");
    /* The restored backups must decode: wipe one rank before any checkpoint. */
    int v = victim % np;
    T_EQ_INT(fuze_inject(ctx, &v, 1), FUZE_SUCCESS, "inject");
    T_EQ_INT(fuze_recover(ctx), FUZE_RECOVERED, "recover after restart");
    compare(s, a, iv, st, m, "after restart + wipe");
    T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint after restart");
    compare(s, a, iv, st, m, "after restart + checkpoint");
  }
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  free(a);
  free(iv);
}

/* fuze_init must fail everywhere with `code` and a message containing `needle`. */
static void restart_fails(const char *dir, int faults, int code, const char *needle) {
  char cfg[1024];
  fuze_ctx *ctx = NULL;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, dir, faults), &ctx, &app);
  T_CHECK(rc == code, "%s: fuze_init returned %s, expected %s (%s)", what, fuze_err_name(rc),
          fuze_err_name(code), fuze_last_error(NULL));
  T_CHECK(strstr(fuze_last_error(NULL), needle) != NULL, "%s: message lacks '%s': %s", what, needle,
          fuze_last_error(NULL));
  T_CHECK(ctx == NULL, "%s: ctx set on failure", what);
  if (ctx) fuze_finalize(&ctx);
}

static void copy_dir(const char *src, const char *dst) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dst, src, dst);
  if (me == 0 && system(cmd) != 0) t_failures++;
  MPI_Barrier(MPI_COMM_WORLD);
}

static void rm_domain(const char *dir, int d) {
  char p[1024];
  snprintf(p, sizeof p, "%s/domain-%d", dir, d);
  sh("rm -rf '%s'%s", p, "");
}

/* A restarted job with every structure registered (live handles in *l);
 * returns 0 on spare ranks (no context). */
typedef struct live {
  fuze_ctx *ctx;
  MPI_Comm app;
  double *a;
  int32_t *iv;
  fuze_stack *st;
  fuze_map *m;
} live;

static int open_restarted(const char *dir, const state *s, live *l) {
  char cfg[1024];
  memset(l, 0, sizeof *l);
  int rc = fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, dir, nf), &l->ctx, &l->app);
  if (!l->ctx) return 0;
  T_EQ_INT(rc, FUZE_RESTARTED, "restart");
  l->a = calloc(s->na + 1, sizeof *l->a);
  l->iv = calloc(s->ni, sizeof *l->iv);
  T_EQ_INT(fuze_protect(l->ctx, "field", l->a, s->na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_protect(l->ctx, "ints", l->iv, s->ni, MPI_INT32_T, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_stack_create(l->ctx, "stack", EB, &l->st), FUZE_SUCCESS, "stack");
  T_EQ_INT(fuze_map_create(l->ctx, "map", 8, VB, &l->m), FUZE_SUCCESS, "map");
  return 1;
}

static void close_live(live *l) {
  fuze_finalize(&l->ctx);
  MPI_Comm_free(&l->app);
  free(l->a);
  free(l->iv);
}

/* code=byzantine: the mode is part of what a directory holds. */
static void byzantine_scenarios(const char *orig, const char *work, const state *s3) {
  snprintf(what, sizeof what, "byzantine directory rerun with code=rs");
  copy_dir(orig, work);
  run_code = "rs";
  restart_fails(work, nf, FUZE_ERR_CONFIG, "code=byzantine");
  run_code = "byzantine";

  /* The first checkpoint after the restart (call 4: epoch 3 was call 3)
   * rebuilds the replicas from the restored primaries, then a replica of
   * 'ints' on rank 0 is corrupted: the comparison must find and correct it. */
  snprintf(what, sizeof what, "byzantine replica corrupted after a restart");
  copy_dir(orig, work);
  rm_domain(work, np - 1);
  MPI_Barrier(MPI_COMM_WORLD);
  snprintf(extra, sizeof extra, ";inject=corrupt:rank=0:struct=ints:at=checkpoint:4:target=replica");
  live l;
  if (open_restarted(work, s3, &l)) {
    compare(s3, l.a, l.iv, l.st, l.m, "after restart");
    int rc = fuze_checkpoint(l.ctx);
    T_CHECK(rc == FUZE_RECOVERED, "%s: first checkpoint returned %s, expected FUZE_RECOVERED (%s)",
            what, fuze_err_name(rc), fuze_last_error(l.ctx));
    compare(s3, l.a, l.iv, l.st, l.m, "after the corrected checkpoint");
    rc = fuze_checkpoint(l.ctx);
    T_CHECK(rc == FUZE_SUCCESS, "%s: second checkpoint returned %s (%s)", what, fuze_err_name(rc),
            fuze_last_error(l.ctx));
    compare(s3, l.a, l.iv, l.st, l.m, "after the second checkpoint");
    close_live(&l);
  }
  extra[0] = 0;
  MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  nf = argc > 1 ? atoi(argv[1]) : 1;
  nsp = argc > 2 ? atoi(argv[2]) : 0;
  int byz = argc > 3 && !strcmp(argv[3], "byzantine");
  async = argc > 3 && !strcmp(argv[3], "async");
  if (byz) run_code = "byzantine";
  rng = 1234567 + (uint64_t)me * 7919;
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  snprintf(base, sizeof base, "/tmp/fuze-test-persist-%d", pid);
  char orig[600], work[600];
  snprintf(orig, sizeof orig, "%s/orig", base);
  snprintf(work, sizeof work, "%s/work", base);
  sh("rm -rf '%s'%s", base, "");
  MPI_Barrier(MPI_COMM_WORLD);

  static state s2, s3;
  snprintf(what, sizeof what, "first run");
  first_run(orig, &s2, &s3);

  /* Every set of <= f deleted domains (the domains of compute ranks and
   * spares alike). */
  int set[8] = {0}, len = 1, nsets = 0;
  do {
    char desc[64] = "";
    for (int i = 0; i < len; i++) snprintf(desc + strlen(desc), sizeof desc - strlen(desc), " %d", set[i]);
    snprintf(what, sizeof what, "domains {%s } deleted", desc);
    copy_dir(orig, work);
    for (int i = 0; i < len; i++) rm_domain(work, set[i]);
    MPI_Barrier(MPI_COMM_WORLD);
    restart_ok(work, &s3, set[0] + 1);
    nsets++;
  } while (t_next_subset(set, &len, np, nf));
  if (me == 0) printf("restart: %d failure sets of <= %d domains, each bit-exact\n", nsets, nf);

  /* A corrupted file (bytes flipped in the middle), plus f-1 deleted domains. */
  snprintf(what, sizeof what, "corrupted file of rank 1");
  copy_dir(orig, work);
  char p[1024];
  snprintf(p, sizeof p, "%s/domain-1/rank-1/epoch-3.h5", work);
  sh("f='%s'; s=$(stat -c %%s \"$f\"); printf '\\377\\377\\377\\377' | dd of=\"$f\" bs=1 seek=$((s/2)) conv=notrunc status=none%s", p, "");
  for (int d = 0; d < nf - 1; d++) rm_domain(work, np - 1 - d);
  MPI_Barrier(MPI_COMM_WORLD);
  restart_ok(work, &s3, 0);

  snprintf(what, sizeof what, "truncated file of rank 0");
  copy_dir(orig, work);
  snprintf(p, sizeof p, "%s/domain-0/rank-0/epoch-3.h5", work);
  sh("truncate -s 1000 '%s'%s", p, "");
  MPI_Barrier(MPI_COMM_WORLD);
  restart_ok(work, &s3, 1);

  /* A foreign file: rank 1's file replaced by the same rank's file of another
   * job with the same geometry (valid on its own, other job id): detected
   * and rebuilt. */
  snprintf(what, sizeof what, "foreign file of rank 1");
  {
    static state o2, o3;
    char other[600];
    snprintf(other, sizeof other, "%s/other", base);
    first_run(other, &o2, &o3);
    copy_dir(orig, work);
    char src[1024];
    snprintf(src, sizeof src, "%s/domain-1/rank-1/epoch-3.h5", other);
    snprintf(p, sizeof p, "%s/domain-1/rank-1/epoch-3.h5", work);
    sh("cp '%s' '%s'", src, p);
    MPI_Barrier(MPI_COMM_WORLD);
    restart_ok(work, &s3, 2);
  }

  /* The newest epoch lost everywhere: the previous one is used. */
  snprintf(what, sizeof what, "epoch 3 lost on every rank");
  copy_dir(orig, work);
  for (int r = 0; r < np; r++) {
    snprintf(p, sizeof p, "%s/domain-%d/rank-%d/epoch-3.h5", work, r, r);
    sh("rm -f '%s'%s", p, "");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  restart_ok(work, &s2, 0);

  /* More than f domains: nothing usable. */
  snprintf(what, sizeof what, "f+1 domains deleted");
  copy_dir(orig, work);
  for (int d = 0; d <= nf; d++) rm_domain(work, d);
  MPI_Barrier(MPI_COMM_WORLD);
  restart_fails(work, nf, FUZE_ERR_UNRECOVERABLE, "unrecoverable: block");

  /* The manifest is a replicated convenience (DIR/manifest and one copy per
   * domain), never the only record. */
  snprintf(what, sizeof what, "garbage job-wide manifest");
  copy_dir(orig, work);
  snprintf(p, sizeof p, "%s/manifest", work);
  sh("echo 'not a manifest' > '%s'%s", p, "");
  MPI_Barrier(MPI_COMM_WORLD);
  restart_ok(work, &s3, 0);
  if (me == 0) { /* written again by the restart */
    FILE *fp = fopen(p, "r");
    char line[64] = "";
    T_CHECK(fp && fgets(line, sizeof line, fp) && !strncmp(line, "fuze-manifest", 13),
            "%s: DIR/manifest was not written again: '%s'", what, line);
    if (fp) fclose(fp);
  }

  /* Rank 0's domain with its files and its manifest copy, and DIR/manifest:
   * the node of rank 0 lost with its disk. The other domains' copies say
   * epoch 3; rank 0's file is decoded. */
  snprintf(what, sizeof what, "rank 0's domain and DIR/manifest deleted");
  copy_dir(orig, work);
  rm_domain(work, 0);
  sh("rm -f '%s/manifest'%s", work, "");
  MPI_Barrier(MPI_COMM_WORLD);
  restart_ok(work, &s3, 1);

  /* Every manifest copy deleted, the epoch files intact: never a silent
   * fresh start; the files say epoch 3, and the manifest comes back. */
  snprintf(what, sizeof what, "every manifest copy deleted");
  copy_dir(orig, work);
  sh("rm -f '%s/manifest' '%s'/domain-*/manifest", work, work);
  MPI_Barrier(MPI_COMM_WORLD);
  restart_ok(work, &s3, 0);
  if (me == 0) {
    snprintf(p, sizeof p, "%s/domain-%d/manifest", work, np - 1);
    T_CHECK(access(p, R_OK) == 0, "%s: %s was not written again", what, p);
  }

  /* No manifest and f+1 domains deleted: refused, naming what was found. */
  snprintf(what, sizeof what, "no manifest, f+1 domains deleted");
  copy_dir(orig, work);
  sh("rm -f '%s/manifest' '%s'/domain-*/manifest", work, work);
  for (int d = 0; d <= nf; d++) rm_domain(work, d);
  MPI_Barrier(MPI_COMM_WORLD);
  restart_fails(work, nf, FUZE_ERR_CORRUPT, "has no usable manifest but holds rank files");

  /* Every copy garbage and no epoch file left: nothing to rebuild from. */
  snprintf(what, sizeof what, "garbage manifests, no files");
  copy_dir(orig, work);
  sh("for m in '%s/manifest' '%s'/domain-*/manifest; do echo 'not a manifest' > \"$m\"; done",
     work, work);
  sh("rm -f '%s'/domain-*/rank-*/epoch-*.h5%s", work, "");
  MPI_Barrier(MPI_COMM_WORLD);
  restart_fails(work, nf, FUZE_ERR_CORRUPT, "manifest is damaged");

  /* Two jobs' manifests in one dir: refused, naming both. */
  snprintf(what, sizeof what, "manifests of two jobs");
  copy_dir(orig, work);
  {
    char other[600];
    snprintf(other, sizeof other, "%s/other", base);
    snprintf(p, sizeof p, "%s/manifest", work);
    char src[1024];
    snprintf(src, sizeof src, "%s/manifest", other);
    sh("cp '%s' '%s'", src, p);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  restart_fails(work, nf, FUZE_ERR_CORRUPT, "holds manifests of two jobs");

  /* A second job on a dir in use (without spares: a spare rank of the first
   * job serves inside its fuze_init and cannot start another). */
  if (nsp == 0) {
    snprintf(what, sizeof what, "a second job on a dir in use");
    copy_dir(orig, work);
    live l;
    if (open_restarted(work, &s3, &l)) {
      restart_fails(work, nf, FUZE_ERR_CONFIG, "is in use by another running job (pid ");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    restart_ok(work, &s3, 1); /* released by fuze_finalize */
  }

  /* restart=never: a fresh start over fuze data, which it replaces. */
  snprintf(what, sizeof what, "restart=never");
  copy_dir(orig, work);
  {
    snprintf(extra, sizeof extra, ";restart=never");
    char cfg[1024];
    fuze_ctx *ctx = NULL;
    MPI_Comm app;
    T_EQ_INT(fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, work, nf), &ctx, &app), FUZE_SUCCESS,
             "restart=never over a persisted job");
    extra[0] = 0;
    if (ctx) {
      size_t n = 0;
      T_EQ_INT(fuze_stored_count(ctx, "field", &n), FUZE_ERR_NOT_FOUND, "stored_count after a fresh start");
      T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
      MPI_Comm_free(&app);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0) {
      snprintf(p, sizeof p, "%s/domain-0/rank-0/epoch-3.h5", work);
      T_CHECK(access(p, F_OK) != 0, "%s: %s is still there", what, p);
      snprintf(p, sizeof p, "%s/manifest", work);
      T_CHECK(access(p, F_OK) != 0, "%s: %s is still there", what, p);
    }
    /* With nothing left, a plain rerun starts afresh too. */
    fuze_ctx *c2 = NULL;
    T_EQ_INT(fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, work, nf), &c2, &app), FUZE_SUCCESS,
             "rerun after restart=never");
    if (c2) {
      T_EQ_INT(fuze_finalize(&c2), FUZE_SUCCESS, "finalize");
      MPI_Comm_free(&app);
    }
  }

  snprintf(what, sizeof what, "other faults");
  copy_dir(orig, work);
  restart_fails(work, nf + 1, FUZE_ERR_CONFIG, "faults=");

  /* A rank wiped while persisting epoch 4: epoch 4 is committed in memory,
   * the job recovers to it and persists it again, so a restart uses
   * epoch 4 (it used to stay at epoch 3: the interrupted persist was never
   * retried). */
  snprintf(what, sizeof what, "wipe while persisting");
  copy_dir(orig, work);
  {
    live l;
    if (open_restarted(work, &s3, &l)) {
      int v = 1;
      T_EQ_INT(fuze_inject_at(l.ctx, &v, 1, "persist"), FUZE_SUCCESS, "inject_at persist");
      static state s4;
      s4 = s3;
      for (size_t i = 0; i < s3.na; i++) s4.a[i] = l.a[i] += 1.0;
      T_EQ_INT(fuze_checkpoint(l.ctx), FUZE_RECOVERED, "checkpoint wiped while persisting");
      compare(&s4, l.a, l.iv, l.st, l.m, "after the wipe while persisting");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    static state s4r;
    s4r = s3;
    for (size_t i = 0; i < s3.na; i++) s4r.a[i] += 1.0;
    restart_ok(work, &s4r, 2);
  }

  /* The same at phase=persisted (every file durable, the manifest not yet
   * written): the wiped rank used to leave the others waiting forever. */
  snprintf(what, sizeof what, "wipe after persisting, before the manifest");
  copy_dir(orig, work);
  {
    live l;
    static state s4;
    s4 = s3;
    for (size_t i = 0; i < s3.na; i++) s4.a[i] += 1.0;
    if (open_restarted(work, &s3, &l)) {
      int v = np - 1;
      T_EQ_INT(fuze_inject_at(l.ctx, &v, 1, "persisted"), FUZE_SUCCESS, "inject_at persisted");
      for (size_t i = 0; i < s3.na; i++) l.a[i] += 1.0;
      /* persist=async: the files of epoch 4 become durable in the writer and
       * the wipe strikes when the next checkpoint completes them; that
       * checkpoint recovers, and epoch 5 (the same state) is persisted. */
      if (async) T_EQ_INT(fuze_checkpoint(l.ctx), FUZE_SUCCESS, "checkpoint handing epoch 4 over");
      T_EQ_INT(fuze_checkpoint(l.ctx), FUZE_RECOVERED, "checkpoint wiped after persisting");
      compare(&s4, l.a, l.iv, l.st, l.m, "after the wipe after persisting");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    restart_ok(work, &s4, 1);
  }

  /* Persisting fails (rank 0's directory replaced by a file): the epoch is
   * committed in memory, fuze_checkpoint says it was not persisted, and the
   * previous persisted epoch stays the restart point. */
  snprintf(what, sizeof what, "persisting fails");
  copy_dir(orig, work);
  {
    live l;
    if (open_restarted(work, &s3, &l)) {
      snprintf(p, sizeof p, "%s/domain-0", work);
      sh("rm -rf '%s' && echo blocker > '%s'", p, p);
      MPI_Barrier(l.app);
      int rc = fuze_checkpoint(l.ctx);
      T_EQ_INT(rc, FUZE_ERR_IO, "checkpoint whose persisting fails");
      T_CHECK(strstr(fuze_last_error(l.ctx), "committed in memory but was not persisted") != NULL &&
                  strstr(fuze_last_error(l.ctx), "domain-0") != NULL,
              "message: %s", fuze_last_error(l.ctx));
      compare(&s3, l.a, l.iv, l.st, l.m, "after a failed persist");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    sh("rm -f '%s'%s", p, "");
    MPI_Barrier(MPI_COMM_WORLD);
    /* domain-0 is gone now: restart rebuilds it from epoch 3. */
    restart_ok(work, &s3, 1);
  }

  if (byz) byzantine_scenarios(orig, work, &s3);

  sh("rm -rf '%s'%s", base, "");
  int bad = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("%s: %d failures\n", bad ? "FAILED" : "PASSED", bad);
  MPI_Finalize();
  return bad ? 1 : 0;
}
