/* code=byzantine end to end (arrays). Usage: test_byzantine F SEED (domain=rank).
 * One program loops over scenarios:
 *   - exhaustive over every placement of 1..f faulty objects (f = 3: every
 *     placement of 1 or 2, every 5th of 3) among block 0's
 *     unfused copies (primaries' committed copies, replicas) and fused
 *     backups, the fault kind cycling through random bytes, zeroed, and an
 *     internally consistent but different copy (two such copies of one primary
 *     agree with each other): the next checkpoint returns FUZE_RECOVERED, every
 *     rank's buffer is bit-exact, and the checkpoint after it is clean
 *     (FUZE_SUCCESS: copies and parity all agree);
 *   - the same for a block other than 0 and for two blocks at once;
 *   - a wipe of f ranks, then recovery: bit-exact, then a corruption after it is
 *     still corrected (the replicas were rebuilt);
 *   - f + 1 independent liars in one block: FUZE_ERR_CORRUPT naming the block,
 *     and again at the next checkpoint (nothing was "corrected").
 * Test hooks reach the library's internals through src/ headers. */
#include "common.h"

#include "core/byz.h"
#include "proto/byzantine.h"

#define MAXOBJ 64

typedef struct tb {
  int np, me, f;
  fuze_ctx *ctx;
  MPI_Comm app;
  double *a, *com;
  size_t n;
  uint64_t rng, pick;
  int *place;
} tb;

static void mutate(tb *w) {
  for (int q = 0; q < 40; q++) w->a[t_below(&w->rng, w->n)] = (double)t_rng(&w->rng) / 7.0;
}

static void commit_model(tb *w) { memcpy(w->com, w->a, w->n * sizeof *w->a); }

static int exact(tb *w, const double *ref) {
  int ok = !memcmp(w->a, ref, w->n * sizeof *w->a), all;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

static int nobj(const tb *w, int b) {
  const fuze_plan *p = &w->ctx->plan;
  return (p->block_start[b + 1] - p->block_start[b]) * (w->f + 1) + w->f;
}

/* Arm object o of block b on its holder (every rank calls this). */
static void arm(tb *w, int b, int o, int mode, uint64_t seed) {
  const fuze_plan *p = &w->ctx->plan;
  int k = p->block_start[b + 1] - p->block_start[b], f1 = w->f + 1, holder, what, arg, j = 0;
  size_t len;
  if (o < k * f1) {
    int r = p->members[p->block_start[b] + o / f1], c = o % f1;
    holder = c ? w->place[r * w->f + c - 1] : r;
    what = c ? FUZE_BYZ_ARM_REPLICA : FUZE_BYZ_ARM_PRIMARY;
    arg = r;
    len = (w->n - 0) * sizeof(double); /* every rank's array has at least n/2 doubles */
  } else {
    holder = p->hosts[b * w->f + o - k * f1];
    what = FUZE_BYZ_ARM_PARITY;
    arg = b;
    j = o - k * f1;
    len = w->n * sizeof(double);
  }
  if (holder != w->me) return;
  uint64_t s = seed;
  size_t off = t_below(&s, len < 4000 ? len / 2 : 2000), cnt = 1 + t_below(&s, 8);
  T_CHECK(fuze__byz_arm(w->ctx, "a", what, arg, j, mode, off, cnt, seed) == 0, "arm obj %d", o);
}

static const char *mode_name[] = {"random", "zero", "alt"};

/* Corrupt objs of block b, checkpoint, expect rc; on RECOVERED check exactness. */
static void scenario(tb *w, int b, const int *objs, int n, int mode0, int expect) {
  char what[256];
  size_t len = (size_t)snprintf(what, sizeof what, "f=%d block %d:", w->f, b);
  for (int s = 0; s < n && len < sizeof what - 24; s++)
    len += (size_t)snprintf(what + len, sizeof what - len, " obj%d/%s", objs[s],
                            mode_name[(mode0 + s) % 3]);
  mutate(w);
  commit_model(w);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "clean checkpoint before the scenario");
  for (int s = 0; s < n; s++) {
    int mode = (mode0 + s) % 3;
    /* Two ALT copies of one primary collude (they agree); keep them so. */
    arm(w, b, objs[s], mode, 1000u * (uint64_t)objs[s] + (uint64_t)mode0 + 17u * (uint64_t)b);
  }
  int rc = fuze_checkpoint(w->ctx);
  T_CHECK(rc == expect, "%s: checkpoint returned %d (%s), expected %d: %s", what, rc,
          fuze_err_name(rc), expect, fuze_last_error(w->ctx));
  if (expect == FUZE_RECOVERED) {
    T_CHECK(exact(w, w->com), "%s: state differs after correction", what);
    rc = fuze_checkpoint(w->ctx);
    T_CHECK(rc == FUZE_SUCCESS, "%s: checkpoint after correction returned %d (%s)", what, rc,
            fuze_last_error(w->ctx));
  }
}

static void exhaustive(tb *w, int b) {
  int m = nobj(w, b), objs[4] = {0}, n = 1, count = 0, tried = 0;
  do {
    /* Three faults: every 5th placement (each is a few checkpoints; the
     * pure test_byz covers all of them), so the job stays fast under ASan. */
    if (n < 3 || tried % 5 == 0) scenario(w, b, objs, n, count++ % 3, FUZE_RECOVERED);
    tried++;
  } while (t_next_subset(objs, &n, m, w->f));
  if (w->me == 0) printf("block %d: %d placements of <= %d faults corrected\n", b, count, w->f);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  tb w;
  memset(&w, 0, sizeof w);
  w.f = argc > 1 ? atoi(argv[1]) : 1;
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  MPI_Comm_size(MPI_COMM_WORLD, &w.np);
  MPI_Comm_rank(MPI_COMM_WORLD, &w.me);
  w.rng = seed * 1000 + (uint64_t)w.me;
  char cfg[160];
  snprintf(cfg, sizeof cfg, "faults=%d;domain=rank;code=byzantine;chunk=1024", w.f);
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &w.ctx, &w.app);
  if (rc) {
    fprintf(stderr, "fuze_init: %s\n", fuze_last_error(NULL));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  /* Unequal sizes: members of a block are zero padded in the parity. */
  w.n = 600 + 97 * (size_t)w.me;
  w.a = calloc(w.n, sizeof *w.a);
  w.com = calloc(w.n, sizeof *w.com);
  for (size_t i = 0; i < w.n; i++) w.a[i] = (double)(i * 3 + (size_t)w.me);
  T_EQ_INT(fuze_protect(w.ctx, "a", w.a, w.n, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  const fuze_plan *p = &w.ctx->plan;
  w.place = malloc(sizeof(int) * (size_t)w.np * (size_t)w.f);
  fuze__byz_place(p->domain, w.np, p->ndomains, w.f, w.place);
  commit_model(&w);
  T_EQ_INT(fuze_checkpoint(w.ctx), FUZE_SUCCESS, "first checkpoint");
  /* 1. Every placement of <= f faults in block 0, and in the last block. */
  exhaustive(&w, 0);
  if (p->nblocks > 1) {
    int last = p->nblocks - 1, objs[1] = {0};
    scenario(&w, last, objs, 1, 2, FUZE_RECOVERED);
    objs[0] = nobj(&w, last) - 1;
    scenario(&w, last, objs, 1, 0, FUZE_RECOVERED);
  }
  /* 2. Wipe f ranks of block 0, recover (rollback), then corrupt again. */
  mutate(&w);
  commit_model(&w);
  T_EQ_INT(fuze_checkpoint(w.ctx), FUZE_SUCCESS, "checkpoint before the wipe");
  mutate(&w); /* lost by the rollback */
  int victims[4];
  for (int v = 0; v < w.f; v++) victims[v] = p->members[p->block_start[0] + v % (p->block_start[1] - p->block_start[0])];
  int nv = w.f <= p->block_start[1] - p->block_start[0] ? w.f : p->block_start[1] - p->block_start[0];
  T_EQ_INT(fuze_inject(w.ctx, victims, nv), FUZE_SUCCESS, "inject");
  T_EQ_INT(fuze_checkpoint(w.ctx), FUZE_RECOVERED, "recovery after the wipe");
  T_CHECK(exact(&w, w.com), "state after the wipe differs from the last epoch");
  {
    int objs[1] = {1};
    scenario(&w, 0, objs, 1, 2, FUZE_RECOVERED);
  }
  /* 3. f + 1 independent liars: random bytes on the primary and its f
   * replicas (every copy differs), reported twice, never corrected. */
  {
    int objs[4];
    for (int c = 0; c <= w.f; c++) objs[c] = c;
    mutate(&w);
    commit_model(&w);
    T_EQ_INT(fuze_checkpoint(w.ctx), FUZE_SUCCESS, "checkpoint before the liars");
    for (int c = 0; c <= w.f; c++) arm(&w, 0, objs[c], FUZE_BYZ_ARM_RANDOM, 77u + (uint64_t)c);
    rc = fuze_checkpoint(w.ctx);
    T_EQ_INT(rc, FUZE_ERR_CORRUPT, "f+1 liars");
    T_CHECK(strstr(fuze_last_error(w.ctx), "block 0 is uncorrectable") != NULL, "message: %s",
            fuze_last_error(w.ctx));
    T_CHECK(exact(&w, w.com), "application buffers changed by an uncorrectable block");
    rc = fuze_checkpoint(w.ctx);
    T_EQ_INT(rc, FUZE_ERR_CORRUPT, "f+1 liars, again at the next checkpoint");
    if (w.me == 0) printf("f+1 liars: %s\n", fuze_last_error(w.ctx));
  }
  int fails = t_total(MPI_COMM_WORLD);
  fuze_finalize(&w.ctx);
  MPI_Comm_free(&w.app);
  free(w.a);
  free(w.com);
  free(w.place);
  if (w.me == 0) printf("test_byzantine f=%d np=%d: %s\n", w.f, w.np, fails ? "FAILED" : "passed");
  MPI_Finalize();
  return fails ? 1 : 0;
}
