/* Incremental persisted epochs (issue 16, persist_base=K): a full file per
 * rank, then increments holding only the chunks that changed since the
 * previous persisted epoch, compacted into a new full file every K epochs.
 *
 * A first run (persist_base=4, chunk=4096) persists epochs 1..7 of arrays
 * 'field', 'ints' and 'big' (1 MiB per rank), a stack and a map: 1 full,
 * 2 3 4 increments, 5 full (the compaction), 6 7 increments. It checks:
 *   - fuze_stats().persisted_increments after every epoch, and the files
 *     each rank keeps: after 4 epoch-1.h5 and incr-2..4.h5; after 7 only
 *     epoch-5.h5, incr-6.h5 and incr-7.h5 (the compaction removed the old
 *     chain);
 *   - write volume: an increment where about 1% of 'big' changed (3 of its
 *     256 chunks, nothing else) costs, beyond an increment where nothing
 *     changed (the HDF5 overhead), between 0.8% and 1.6% of a full file
 *     (fuze_get_job_stats().persisted_last_bytes: every rank, spares too).
 * Then restarts, every one compared bit for bit with the model of the epoch
 * it must give, its parity loaded (nothing sent) and fuze_verify clean:
 *   - from epoch 7 with every set of <= f domains lost (and none); for the
 *     empty set the job goes on: epoch 8 is full, 9 an increment,
 *     and a second restart gives 9;
 *   - a damaged incr-7.h5 on f ranks: rebuilt, epoch 7; on f+1 ranks: the
 *     older epoch 6 with rank 0's message naming incr-7.h5; incr-6.h5 missing
 *     on f+1 ranks: FUZE_ERR_UNRECOVERABLE naming incr-6.h5;
 *   - the directory as a kill leaves it at every point of an incremental
 *     write (epoch 7: a temporary, some ranks' files, all files before the
 *     manifest, half the manifest copies) and of a compaction (epoch 5: the
 *     same, and after the manifest before the old chain was deleted): the
 *     newest durable epoch;
 *   - a rank wiped in the middle of an incremental write and of a
 *     compaction (fuze_inject_at "persist"): the checkpoint recovers,
 *     persists the epoch again, and a restart gives it;
 *   - persist=async: the same epochs through the writer thread, the files
 *     kept, and restarts with nothing and with domain 0 lost;
 *   - with faults >= 2, a corruption that fuze_verify repairs: the next
 *     persisted epoch is full, the one after an increment, the restart exact;
 *   - code=byzantine (no spares): a correction by the vote (a primary's
 *     committed copy) and one by the parity audit (a hosted parity region)
 *     make that checkpoint's persisted epoch full, the next an increment,
 *     and the restart exact;
 *   - persist_every=2: increments carry the changes of both checkpoints
 *     since the last persisted epoch.
 * Usage: test_incremental faults spares [losses]: "losses" stops after the
 * damaged and missing increments and the verify repair (the parts that
 * depend on f). */
#define _POSIX_C_SOURCE 200809L /* setenv, dup */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_MAXN 400
#include "struct_model.h"

#define BIGN 131072 /* doubles: 1 MiB, 256 chunks of 4096 bytes (a file carries ~2 KiB of HDF5 metadata more when it holds data: the changed bytes must dominate it) */
#define CH_DOUBLES 512

static int me, np, nf, nsp;
static uint64_t rng;
static char what[256];

typedef struct full {
  state s;
  double big[BIGN];
} full;

static void sh(const char *fmt, const char *a, const char *b, const char *c) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, fmt, a, b, c);
  if (me == 0 && system(cmd) != 0) {
    fprintf(stderr, "FAIL: command failed: %s\n", cmd);
    t_failures++;
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static char *config(char *buf, size_t len, const char *dir) {
  snprintf(buf, len, "faults=%d;spares=%d;domain=rank;capacity=8;chunk=4096;persist_base=4;dir=%s",
           nf, nsp, dir);
  return buf;
}

static const model_mix mix = {.a_stride = 5, .ops_base = 10, .ops_range = 30, .push_odds = 4,
                              .remove_odds = 4, .stack_max = MODEL_MAXN, .keys = 300};

typedef struct live {
  fuze_ctx *ctx;
  MPI_Comm app;
  double *a, *big;
  int32_t *iv;
  fuze_stack *st;
  fuze_map *m;
} live;

/* About 1% of 'big': chunks c0..c0+2 (the same on every rank), every double. */
static void big_one_percent(full *f, live *l, int epoch) {
  size_t c0 = (size_t)(epoch * 37) % 250;
  for (size_t i = c0 * CH_DOUBLES; i < (c0 + 3) * CH_DOUBLES; i++)
    f->big[i] = l->big[i] = (double)t_rng(&rng);
}

static void everything(full *f, live *l) {
  model_mutate(&rng, &mix, &f->s, l->a, l->iv, l->st, l->m);
  for (size_t i = 0; i < BIGN; i++) f->big[i] = l->big[i] = (double)t_rng(&rng);
}

static int open_live(const char *dir, const full *f, live *l, int want, const char *extra) {
  char cfg[1200];
  memset(l, 0, sizeof *l);
  config(cfg, sizeof cfg, dir);
  if (extra) strncat(cfg, extra, sizeof cfg - strlen(cfg) - 1);
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &l->ctx, &l->app);
  if (!l->ctx) {
    T_CHECK(rc == FUZE_SUCCESS, "%s: fuze_init on a spare: %s (%s)", what, fuze_err_name(rc),
            fuze_last_error(NULL));
    return 0;
  }
  T_CHECK(rc == want, "%s: fuze_init returned %s (%s)", what, fuze_err_name(rc),
          fuze_last_error(l->ctx));
  l->a = malloc((f->s.na + 1) * sizeof *l->a);
  l->iv = malloc((f->s.ni + 1) * sizeof *l->iv);
  l->big = malloc(sizeof(double) * BIGN);
  memset(l->a, 0xA5, (f->s.na + 1) * sizeof *l->a);
  memset(l->iv, 0xA5, (f->s.ni + 1) * sizeof *l->iv);
  memset(l->big, 0xA5, sizeof(double) * BIGN);
  T_EQ_INT(fuze_protect(l->ctx, "field", l->a, f->s.na, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_protect(l->ctx, "ints", l->iv, f->s.ni, MPI_INT32_T, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_protect(l->ctx, "big", l->big, BIGN, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_stack_create(l->ctx, "stack", EB, &l->st), FUZE_SUCCESS, "stack");
  T_EQ_INT(fuze_map_create(l->ctx, "map", 8, VB, &l->m), FUZE_SUCCESS, "map");
  return 1;
}


static void close_live(live *l) {
  T_EQ_INT(fuze_finalize(&l->ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&l->app);
  free(l->a);
  free(l->iv);
  free(l->big);
  memset(l, 0, sizeof *l);
}

static void compare(const full *f, live *l, const char *when) {
  if (!l->st || !l->m) return;
  model_compare(what, &f->s, l->a, l->iv, l->st, l->m, when);
  T_CHECK(!memcmp(l->big, f->big, sizeof f->big), "%s %s: array 'big' differs", what, when);
}

static void verify_clean(fuze_ctx *ctx, const char *when) {
  fuze_verify_report r;
  memset(&r, 0, sizeof r);
  T_EQ_INT(fuze_verify(ctx, &r), FUZE_SUCCESS, "fuze_verify");
  T_CHECK(r.mismatches == 0 && r.bad_bytes == 0 && r.blocks > 0,
          "%s %s: fuze_verify found %llu mismatching ranges in %llu blocks", what, when,
          (unsigned long long)r.mismatches, (unsigned long long)r.blocks);
}

static fuze_stats stats_of(live *l) {
  fuze_stats st;
  memset(&st, 0, sizeof st);
  T_EQ_INT(fuze_get_stats(l->ctx, &st), FUZE_SUCCESS, "stats");
  return st;
}

static int ckpt_rc = FUZE_SUCCESS; /* what the next ckpt() must return (then reset) */

static void ckpt(live *l, int want_incrs, const char *when) {
  int rc = fuze_checkpoint(l->ctx), want = ckpt_rc;
  ckpt_rc = FUZE_SUCCESS;
  T_CHECK(rc == want, "%s %s: checkpoint returned %s, expected %s: %s", what, when,
          fuze_err_name(rc), fuze_err_name(want), fuze_last_error(l->ctx));
  fuze_stats st = stats_of(l);
  T_CHECK(st.persisted_increments == (uint64_t)want_incrs, "%s %s: %llu increments written, "
          "expected %d", what, when, (unsigned long long)st.persisted_increments, want_incrs);
}

/* This rank's directory holds exactly the epoch files in `want` (names,
 * space separated, sorted) besides its lock. */
static void files_are(const char *dir, const char *want) {
  char path[1024], got[1024] = "";
  snprintf(path, sizeof path, "%s/domain-%d/rank-%d", dir, me, me);
  char names[32][64];
  int n = 0;
  DIR *d = opendir(path);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.' && strcmp(e->d_name, "lock") && n < 32)
      snprintf(names[n++], sizeof names[0], "%s", e->d_name);
  if (d) closedir(d);
  for (int i = 0; i < n; i++) /* sort */
    for (int j = i + 1; j < n; j++)
      if (strcmp(names[j], names[i]) < 0) {
        char t[64];
        memcpy(t, names[i], 64), memcpy(names[i], names[j], 64), memcpy(names[j], t, 64);
      }
  for (int i = 0; i < n; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", names[i]);
  T_CHECK(!strcmp(got, want), "%s: rank %d holds '%s', expected '%s'", what, me, got, want);
}

static full S[10]; /* the model at every epoch */

/* Epoch e of a simple run: S[e] from S[e-1], every structure changed at e
 * 1, about 1% of 'big' after; the checkpoint must leave want increments. */
static full *simple_epoch(live *l, int e, int want) {
  if (e > 1) S[e] = S[e - 1];
  full *g = &S[e];
  if (e == 1) everything(g, l);
  else big_one_percent(g, l, e);
  char when[32];
  snprintf(when, sizeof when, "checkpoint %d", e);
  ckpt(l, want, when);
  return g;
}

/* A fresh job on dir from nothing: the model g emptied (S[0]'s registrations)
 * and the live buffers zeroed. 1 when the context opened. */
static int open_fresh(const char *dir, full *g, live *l, const char *extra) {
  g->s = S[0].s;
  memset(g->s.a, 0, sizeof g->s.a), memset(g->s.iv, 0, sizeof g->s.iv);
  memset(g->big, 0, sizeof g->big);
  if (!open_live(dir, g, l, FUZE_SUCCESS, extra)) return 0;
  memset(l->a, 0, (g->s.na + 1) * sizeof *l->a);
  memset(l->iv, 0, (g->s.ni + 1) * sizeof *l->iv);
  memset(l->big, 0, sizeof(double) * BIGN);
  return 1;
}

static void first_run(const char *orig, const char *snap4, const char *snap5, const char *snap6) {
  live l;
  snprintf(what, sizeof what, "first run");
  full *f = &S[0];
  f->s.na = me % 3 == 1 ? 0 : 900 + 211 * (size_t)me;
  f->s.ni = 40 + 29 * (size_t)me;
  if (!open_live(orig, f, &l, FUZE_SUCCESS, NULL)) return; /* a spare served the job */
  memset(l.a, 0, (f->s.na + 1) * sizeof *l.a); /* the model starts at zero */
  memset(l.iv, 0, (f->s.ni + 1) * sizeof *l.iv);
  memset(l.big, 0, sizeof(double) * BIGN);
  memset(f->s.a, 0, sizeof f->s.a), memset(f->s.iv, 0, sizeof f->s.iv);
  uint64_t H = 0, V = 0, F = 0;
  for (int e = 1; e <= 7; e++) {
    S[e] = S[e - 1];
    full *g = &S[e];
    char when[32];
    snprintf(when, sizeof when, "epoch %d", e);
    if (e == 1 || e == 5) everything(g, &l);
    if (e == 2 || e == 6 || e == 7) model_mutate(&rng, &mix, &g->s, l.a, l.iv, l.st, l.m);
    if (e == 2 || e == 4 || e >= 5) big_one_percent(g, &l, e);
    static const int incrs[8] = {0, 0, 1, 2, 3, 3, 4, 5};
    ckpt(&l, incrs[e], when);
    fuze_stats st; /* summed over every rank of the job, spares included */
    memset(&st, 0, sizeof st);
    T_EQ_INT(fuze_get_job_stats(l.ctx, &st), FUZE_SUCCESS, "job stats");
    if (e == 3) H = st.persisted_last_bytes;
    if (e == 4) V = st.persisted_last_bytes;
    if (e == 5) F = st.persisted_last_bytes;
    if (e == 4) files_are(orig, "epoch-1.h5 incr-2.h5 incr-3.h5 incr-4.h5");
    /* Copies of the directory as it is after epochs 4, 5 and 6 (the spares
     * are inside fuze_init: only the job's ranks wait). */
    const char *to = e == 4 ? snap4 : e == 5 ? snap5 : e == 6 ? snap6 : NULL;
    if (to && me == 0) {
      char cmd[1024];
      snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", orig, to);
      T_CHECK(system(cmd) == 0, "%s failed", cmd);
    }
    MPI_Barrier(l.app);
  }
  files_are(orig, "epoch-5.h5 incr-6.h5 incr-7.h5");
  /* Write volume over every rank of the job (spares' files included). */
  uint64_t sum[2] = {V > H ? V - H : 0, F};
  double ratio = sum[1] ? (double)sum[0] / (double)sum[1] : 0;
  if (me == 0)
    printf("incremental: an epoch with 1.17%% of 'big' changed wrote %.3f%% of a full epoch's "
           "bytes beyond the %llu bytes of empty increments (all ranks)\n", 100 * ratio,
           (unsigned long long)H);
  T_CHECK(ratio >= 0.008 && ratio <= 0.016, "write volume of an epoch with ~1%% changed: %.4f of a "
          "full epoch (sums %llu and %llu)", ratio, (unsigned long long)sum[0],
          (unsigned long long)sum[1]);
  state junk = S[7].s; /* uncommitted changes */
  model_mutate(&rng, &mix, &junk, l.a, l.iv, l.st, l.m);
  close_live(&l);
}

/* Restart from dir, expect epoch e's model. */
static const char *restart_extra; /* config keys a restart adds (the first run's mode) */

static void restart_check(const char *dir, int e, int go_on) {
  live l;
  if (!open_live(dir, &S[e], &l, FUZE_RESTARTED, restart_extra)) { /* a spare served the job */
    if (go_on) {
      MPI_Barrier(MPI_COMM_WORLD);
      open_live(dir, &S[9], &l, FUZE_RESTARTED, NULL);
    }
    return;
  }
  fuze_stats st = stats_of(&l);
  T_CHECK(st.sent_bytes == 0, "%s: the registrations encoded again (rank %d sent %llu bytes)",
          what, me, (unsigned long long)st.sent_bytes);
  compare(&S[e], &l, "after the restart");
  verify_clean(l.ctx, "after the restart");
  if (go_on) {
    /* Epoch 8: the first after a restart is full; 9 is an increment. */
    S[8] = S[e], S[9] = S[e];
    model_mutate(&rng, &mix, &S[8].s, l.a, l.iv, l.st, l.m);
    big_one_percent(&S[8], &l, 8);
    ckpt(&l, 0, "epoch 8 after the restart");
    S[9] = S[8];
    big_one_percent(&S[9], &l, 9);
    ckpt(&l, 1, "epoch 9 after the restart");
    files_are(dir, "epoch-8.h5 incr-9.h5");
    close_live(&l);
    MPI_Barrier(MPI_COMM_WORLD);
    char w2[300];
    snprintf(w2, sizeof w2, "%s, second restart", what);
    snprintf(what, sizeof what, "%s", w2);
    live l2;
    if (open_live(dir, &S[9], &l2, FUZE_RESTARTED, NULL)) {
      compare(&S[9], &l2, "after the second restart");
      verify_clean(l2.ctx, "after the second restart");
      close_live(&l2);
    }
    return;
  }
  close_live(&l);
}

static void damage(const char *dir, int rank, const char *file) {
  char p[1024];
  snprintf(p, sizeof p, "%s/domain-%d/rank-%d/%s", dir, rank, rank, file);
  if (me != 0) return;
  FILE *fp = fopen(p, "r+b");
  T_CHECK(fp != NULL, "cannot open %s", p);
  if (!fp) return;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, n / 2, SEEK_SET);
  unsigned char b[16];
  size_t k = fread(b, 1, sizeof b, fp);
  for (size_t i = 0; i < k; i++) b[i] ^= 0x5A;
  fseek(fp, n / 2, SEEK_SET);
  fwrite(b, 1, k, fp);
  fclose(fp);
}

/* Rank 0's stderr during a restart, into a file. */
static int err_to(const char *path) {
  if (me != 0) return -1;
  fflush(stderr);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), saved = dup(2);
  dup2(fd, 2);
  close(fd);
  return saved;
}

static void err_back(int saved) {
  if (saved < 0) return;
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
}

static int file_has(const char *path, const char *a, const char *b) {
  char text[16384] = "";
  FILE *fp = fopen(path, "r");
  size_t n = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
  text[n] = 0;
  if (fp) fclose(fp);
  int ok = strstr(text, a) && (!b || strstr(text, b));
  if (!ok) fprintf(stderr, "(rank 0's stderr was:\n%s)\n", text);
  return ok;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  nf = argc > 1 ? atoi(argv[1]) : 1;
  nsp = argc > 2 ? atoi(argv[2]) : 0;
  int losses_only = argc > 3 && !strcmp(argv[3], "losses"); /* the f-dependent parts only */
  rng = 4242 + (uint64_t)me * 7919;
  int pid = (int)getpid();
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char base[256], orig[300], work[300], s4[300], s5[300], s6[300], log[300];
  snprintf(base, sizeof base, "/tmp/fuze-test-incremental-%d", pid);
  snprintf(orig, sizeof orig, "%s/orig", base);
  snprintf(work, sizeof work, "%s/work", base);
  snprintf(s4, sizeof s4, "%s/snap4", base);
  snprintf(s5, sizeof s5, "%s/snap5", base);
  snprintf(s6, sizeof s6, "%s/snap6", base);
  snprintf(log, sizeof log, "%s/stderr", base);
  sh("rm -rf '%s' && mkdir -p '%s'%s", base, base, "");
  first_run(orig, s4, s5, s6);
  MPI_Barrier(MPI_COMM_WORLD);

  /* Every set of <= f lost domains (and none). */
  int set[8] = {0}, len = 0, nsets = 0;
  do {
    char desc[64] = "";
    for (int i = 0; i < len; i++) snprintf(desc + strlen(desc), sizeof desc - strlen(desc), " %d", set[i]);
    snprintf(what, sizeof what, "domains {%s } lost", desc);
    sh("rm -rf '%s' && cp -a '%s' '%s'", work, orig, work);
    for (int i = 0; i < len; i++) {
      char d[400];
      snprintf(d, sizeof d, "%s/domain-%d", work, set[i]);
      sh("rm -rf '%s'%s%s", d, "", "");
    }
    restart_check(work, 7, len == 0);
    nsets++;
    if (len == 0) len = 1, set[0] = 0;
    else if (!t_next_subset(set, &len, np, nf)) break;
  } while (1);
  if (me == 0) printf("incremental: %d failure sets of <= %d domains (and none) restored epoch 7\n", nsets, nf);

  /* Damaged and missing increments. */
  snprintf(what, sizeof what, "incr-7.h5 damaged on %d rank(s)", nf);
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, orig, work);
  for (int r = 0; r < nf; r++) damage(work, r, "incr-7.h5");
  MPI_Barrier(MPI_COMM_WORLD);
  restart_check(work, 7, 0);

  snprintf(what, sizeof what, "incr-7.h5 damaged on %d ranks", nf + 1);
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, orig, work);
  for (int r = 0; r <= nf; r++) damage(work, r, "incr-7.h5");
  MPI_Barrier(MPI_COMM_WORLD);
  int saved = err_to(log);
  restart_check(work, 6, 0);
  err_back(saved);
  if (me == 0)
    T_CHECK(file_has(log, "fuze: restarted from the older epoch 6 because", "incr-7.h5"),
            "%s: rank 0 did not say it fell back to epoch 6 because of incr-7.h5", what);

  snprintf(what, sizeof what, "incr-6.h5 missing on %d ranks", nf + 1);
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, orig, work);
  for (int r = 0; r <= nf; r++) {
    char p[400];
    snprintf(p, sizeof p, "%s/domain-%d/rank-%d/incr-6.h5", work, r, r);
    sh("rm -f '%s'%s%s", p, "", "");
  }
  {
    char cfg[1200];
    fuze_ctx *ctx = NULL;
    MPI_Comm app;
    saved = err_to(log);
    int rc = fuze_init(MPI_COMM_WORLD, config(cfg, sizeof cfg, work), &ctx, &app);
    err_back(saved);
    const char *msg = fuze_last_error(ctx);
    T_EQ_INT(rc, FUZE_ERR_UNRECOVERABLE, "restart without incr-6.h5 on f+1 ranks");
    if (me == 0) {
      T_CHECK(strstr(msg, "no complete epoch can be restored: epoch 7 is unrecoverable") &&
                  strstr(msg, "/domain-0/rank-0/incr-6.h5: missing (no epoch-6.h5 either), which "
                              "the chain of epoch 7 needs"),
              "%s: the message does not name the missing incr-6.h5: %s", what, msg);
    }
    if (ctx) {
      fuze_finalize(&ctx);
      MPI_Comm_free(&app);
    }
  }

  /* A repair by fuze_verify changes committed bytes without change marks:
   * the next persisted epoch is full, the one after an increment again; a
   * restart from it is exact. Rank 1's committed copy of 'big' gets 3 bytes
   * flipped at checkpoint 3 (inject=corrupt), fuze_verify repairs them from
   * the parity (faults >= 2: with one parity a mismatch is found, not
   * located). */
  snprintf(what, sizeof what, "after a verify repair");
  sh("rm -rf '%s'%s%s", work, "", "");
  if (nf >= 2) {
    live l;
    full *g = &S[1];
    if (open_fresh(work, g, &l, ";inject=corrupt:rank=1:struct=big:at=checkpoint:3:bytes=3")) {
      static const int incrs[6] = {0, 1, 2, 2, 3};
      for (int e = 1; e <= 5; e++) {
        simple_epoch(&l, e, incrs[e - 1]);
        if (e == 3) {
          static fuze_verify_report rep;
          T_EQ_INT(fuze_verify(l.ctx, &rep), FUZE_RECOVERED, "fuze_verify repairs the corruption");
          T_CHECK(rep.repaired > 0 && rep.unrepaired == 0, "%s: %llu repaired, %llu unrepaired", what,
                  (unsigned long long)rep.repaired, (unsigned long long)rep.unrepaired);
        }
      }
      files_are(work, "epoch-4.h5 incr-5.h5");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    restart_check(work, 5, 0);
  }

  /* code=byzantine: a correction by the vote (a primary's committed copy of
   * 'big' with 3 bits flipped) or by the parity audit (3 bits of a hosted
   * parity region of 'big') at checkpoint 3 changes committed bytes without
   * change marks, like the verify repair: checkpoint 3 returns
   * FUZE_RECOVERED and its persisted epoch is a full file (the check runs
   * before the persist), epoch 4 an increment onto it; the old chain is
   * gone and a restart from epoch 4 is exact. Without the forcing epoch 3
   * would be the 2nd increment (files epoch-1.h5 incr-2.h5 incr-3.h5
   * incr-4.h5). With spares byzantine mode is not used here. S[1..4] are
   * kept for the sections after this one. */
  full *kept = malloc(4 * sizeof(full));
  memcpy(kept, &S[1], 4 * sizeof(full));
  for (int t = 0; t < 2 && nsp == 0; t++) {
    static const char *target[2] = {"primary", "parity"};
    snprintf(what, sizeof what, "code=byzantine, %s of 'big' corrected at checkpoint 3", target[t]);
    sh("rm -rf '%s'%s%s", work, "", "");
    /* The victim: rank 1's committed copy; for the parity, the first rank
     * that hosts parity (a job opened once to ask). */
    int victim = 1;
    live l;
    if (t == 1) {
      int host = np;
      if (open_fresh(work, &S[1], &l, ";code=byzantine")) {
        if (stats_of(&l).parity_bytes > 0) host = me;
        close_live(&l);
      }
      MPI_Allreduce(&host, &victim, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
      sh("rm -rf '%s'%s%s", work, "", "");
    }
    char extra[200];
    snprintf(extra, sizeof extra, ";code=byzantine;inject=corrupt:rank=%d:struct=big:at=checkpoint:3:"
             "target=%s:bytes=3", victim, target[t]);
    if (open_fresh(work, &S[1], &l, extra)) {
      static const int incrs[4] = {0, 1, 1, 2};
      for (int e = 1; e <= 4; e++) {
        if (e == 3) ckpt_rc = FUZE_RECOVERED;
        simple_epoch(&l, e, incrs[e - 1]);
        if (e == 3) files_are(work, "epoch-3.h5");
      }
      files_are(work, "epoch-3.h5 incr-4.h5");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    restart_extra = ";code=byzantine";
    restart_check(work, 4, 0);
    restart_extra = NULL;
  }
  memcpy(&S[1], kept, 4 * sizeof(full));
  free(kept);

  if (losses_only) goto done;
  /* Kills during the incremental write of epoch 7 (snap6 + what got written). */
  char p1[600], p2[600];
  snprintf(what, sizeof what, "kill while writing increment 7 (a temporary, half the files)");
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, s6, work);
  for (int r = 0; r < np; r++) {
    snprintf(p1, sizeof p1, "%s/domain-%d/rank-%d/incr-7.h5", orig, r, r);
    snprintf(p2, sizeof p2, "%s/domain-%d/rank-%d/%s", work, r, r, r % 2 ? ".incr-7.h5.tmp" : "incr-7.h5");
    sh("cp '%s' '%s'%s", p1, p2, "");
  }
  restart_check(work, 6, 0);

  snprintf(what, sizeof what, "kill after every increment 7 was renamed, before the manifest");
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, s6, work);
  for (int r = 0; r < np; r++) {
    snprintf(p1, sizeof p1, "%s/domain-%d/rank-%d/incr-7.h5", orig, r, r);
    snprintf(p2, sizeof p2, "%s/domain-%d/rank-%d/incr-7.h5", work, r, r);
    sh("cp '%s' '%s'%s", p1, p2, "");
  }
  restart_check(work, 6, 0);

  snprintf(what, sizeof what, "kill while writing the manifest copies of epoch 7 (DIR/manifest old)");
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, orig, work);
  sh("cp '%s/manifest' '%s/manifest'%s", s6, work, "");
  restart_check(work, 7, 0);

  snprintf(what, sizeof what, "kill while writing the manifest copies of epoch 7 (domain copies old)");
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, orig, work);
  for (int r = 0; r < np; r++) {
    snprintf(p1, sizeof p1, "%s/domain-%d/manifest", s6, r);
    snprintf(p2, sizeof p2, "%s/domain-%d/manifest", work, r);
    sh("cp '%s' '%s'%s", p1, p2, "");
  }
  restart_check(work, 7, 0);

  /* Kills during the compaction of epoch 5 (snap4 + what got written). */
  snprintf(what, sizeof what, "kill while compacting into epoch 5 (a temporary, half the files)");
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, s4, work);
  for (int r = 0; r < np; r++) {
    snprintf(p1, sizeof p1, "%s/domain-%d/rank-%d/epoch-5.h5", s5, r, r);
    snprintf(p2, sizeof p2, "%s/domain-%d/rank-%d/%s", work, r, r, r % 2 ? "epoch-5.h5" : ".epoch-5.h5.tmp");
    sh("cp '%s' '%s'%s", p1, p2, "");
  }
  restart_check(work, 4, 0);

  snprintf(what, sizeof what, "kill after the compaction's manifest, before the old chain was deleted");
  sh("rm -rf '%s' && cp -a '%s' '%s'", work, s4, work);
  sh("cp -a '%s/.' '%s/'%s", s5, work, ""); /* epoch-5.h5 and the new manifests over the old chain */
  restart_check(work, 5, 0);

  /* Wipes in the middle of an incremental write (checkpoint 3) and of a
   * compaction (checkpoint 7: 3 was persisted full again, 4 5 6 are
   * increments). */
  snprintf(what, sizeof what, "wipes while persisting");
  sh("rm -rf '%s'%s%s", work, "", "");
  {
    live l;
    full *g = &S[9];
    if (open_fresh(work, g, &l, NULL)) {
      static const int incrs[8] = {0, 0, 1, 1, 2, 3, 4, 4};
      for (int e = 1; e <= 7; e++) {
        if (e == 1) everything(g, &l);
        else big_one_percent(g, &l, e);
        if (e == 3 || e == 7) {
          int v = e == 3 ? 1 : np - 1 - nsp;
          T_EQ_INT(fuze_inject_at(l.ctx, &v, 1, "persist"), FUZE_SUCCESS, "inject_at persist");
          T_EQ_INT(fuze_checkpoint(l.ctx), FUZE_RECOVERED, "checkpoint wiped while persisting");
          compare(g, &l, "after the wipe while persisting");
          fuze_stats st = stats_of(&l);
          T_CHECK(st.persisted_increments == (uint64_t)incrs[e], "%s: epoch %d: %llu increments, "
                  "expected %d", what, e, (unsigned long long)st.persisted_increments, incrs[e]);
        } else {
          char when[32];
          snprintf(when, sizeof when, "epoch %d", e);
          ckpt(&l, incrs[e], when);
        }
      }
      files_are(work, "epoch-7.h5");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    restart_check(work, 9, 0);
  }

  /* persist=async: the same epochs, each completed by the next checkpoint
   * (and the last by fuze_finalize); then restarts with nothing and with
   * domain 0 lost. */
  snprintf(what, sizeof what, "persist=async");
  sh("rm -rf '%s'%s%s", work, "", "");
  {
    live l;
    full *g = &S[1];
    if (open_fresh(work, g, &l, ";persist=async")) {
      static const int incrs[8] = {0, 0, 1, 2, 3, 3, 4, 5};
      for (int e = 1; e <= 7; e++) {
        if (e > 1) S[e] = S[e - 1];
        g = &S[e];
        if (e == 1 || e == 5) everything(g, &l);
        if (e == 2 || e == 6 || e == 7) model_mutate(&rng, &mix, &g->s, l.a, l.iv, l.st, l.m);
        if (e == 2 || e == 4 || e >= 5) big_one_percent(g, &l, e);
        char when[48];
        snprintf(when, sizeof when, "epoch %d (completes epoch %d)", e, e - 1);
        ckpt(&l, incrs[e - 1], when);
      }
      close_live(&l);
      files_are(work, "epoch-5.h5 incr-6.h5 incr-7.h5");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    restart_check(work, 7, 0);
    snprintf(what, sizeof what, "persist=async, domain 0 lost");
    sh("rm -rf '%s/domain-0'%s%s", work, "", "");
    restart_check(work, 7, 0);
  }

  /* persist_every=2: an increment holds what changed since the last
   * persisted epoch, across the checkpoint in between (each checkpoint
   * changes other chunks of 'big'); a restart from the chain is exact. */
  snprintf(what, sizeof what, "persist_every=2");
  sh("rm -rf '%s'%s%s", work, "", "");
  {
    live l;
    full *g = &S[1];
    if (open_fresh(work, g, &l, ";persist_every=2")) {
      static const int incrs[8] = {0, 0, 0, 1, 1, 2, 2, 3};
      for (int e = 1; e <= 8; e++) simple_epoch(&l, e, incrs[e - 1]);
      files_are(work, "epoch-2.h5 incr-4.h5 incr-6.h5 incr-8.h5");
      close_live(&l);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    restart_check(work, 8, 0);
  }

done:
  if (!getenv("FUZE_TEST_KEEP")) sh("rm -rf '%s'%s%s", base, "", ""); /* kept: to look at */
  int bad = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("%s: %d failures\n", bad ? "FAILED" : "PASSED", bad);
  MPI_Finalize();
  return bad ? 1 : 0;
}
