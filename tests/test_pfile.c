/* Unit tests of src/pfile.c: write/read round trips of rank files for many
 * plan geometries, backup regions against an independent byte-by-byte
 * reference encoder (ISA-L's scalar gf_mul), exhaustive rebuild of every set
 * of up to f+1 lost ranks (exact recovery up to f, the refusal naming the
 * block beyond), a mutation fuzzer (byte flips, truncation, HDF5-level edits
 * with and without resealing), the other-version messages, the manifest, and
 * the error paths. Usage: test_pfile [--seed N] [--keep DIR]
 * (--keep writes a sample job to DIR and keeps it, for docs/format.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <isa-l/crc64.h>
#include <isa-l/erasure_code.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/code.h"
#include "core/error.h"
#include "core/pfile.h"
#include "core/plan.h"

#define MAXR 16
#define UB 512

static uint64_t seed, rng_state;
static int failures;
static char label[256];
static char tmpdir[256];

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void fill(unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rnd();
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    if (failures++ < 30) {                                                                         \
      fprintf(stderr, "FAIL [%s] %s:%d seed=%llu: ", label, __FILE__, __LINE__,                    \
              (unsigned long long)seed);                                                           \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

#define EXPECT(cond, ...)                                                                          \
  do {                                                                                             \
    if (!(cond)) FAIL(__VA_ARGS__);                                                                \
  } while (0)

#define EXPECT_RC(want, got, err)                                                                  \
  do {                                                                                             \
    int w_ = (want), g_ = (got);                                                                   \
    EXPECT(w_ == g_, "expected %s, got %s: %s", fuze_err_name(w_), fuze_err_name(g_), (err));      \
  } while (0)

__attribute__((format(printf, 1, 2))) static void set_label(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(label, sizeof label, fmt, ap);
  va_end(ap);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Models                                                              */
/* ------------------------------------------------------------------ */

typedef struct sspec {
  const char *name;
  int kind;
  const char *type;
  size_t elem, kb, nb, cap;
  int empty; /* every rank holds 0 entries */
} sspec;

/* Registration order mixes kinds; names exercise the escaping. */
static const sspec SPECS[] = {
    {"u", FUZE_PS_ARRAY, "MPI_DOUBLE", 8, 0, 0, 0, 0},
    {"work", FUZE_PS_STACK, "", 0, 0, 24, 12, 0},
    {"x/y.z%2F", FUZE_PS_ARRAY, "MPI_INT", 4, 0, 0, 0, 0},
    {"accounts", FUZE_PS_MAP, "", 0, 8, 40, 10, 0},
    {"blob", FUZE_PS_ARRAY, "struct_particle", 12, 0, 0, 0, 0},
    {".hidden", FUZE_PS_ARRAY, "MPI_LONG_DOUBLE", sizeof(long double), 0, 0, 0, 0},
    {"empty", FUZE_PS_ARRAY, "MPI_FLOAT", 4, 0, 0, 0, 1},
    {"idle", FUZE_PS_STACK, "", 0, 0, 8, 4, 1},
    {"flags", FUZE_PS_ARRAY, "MPI_C_BOOL", 1, 0, 0, 0, 0},
    {"odd map \xc3\xa9", FUZE_PS_MAP, "", 0, 3, 5, 7, 0},
    {"step", FUZE_PS_ARRAY, "MPI_LONG", 8, 0, 0, 0, 0},
    {"anon", FUZE_PS_ARRAY, "", 20, 0, 0, 0, 0},          /* unnamed derived type: opaque */
    {"resized", FUZE_PS_ARRAY, "MPI_INT", 6, 0, 0, 0, 0}, /* size mismatch: opaque */
};
#define NSPECS ((int)(sizeof SPECS / sizeof *SPECS))

typedef struct geom {
  int ranks, spares, f, code, max_block;
} geom;

typedef struct job {
  geom g;
  fuze_plan plan;
  int n;
  fuze_pfile m[MAXR];
} job;

static unsigned char *rand_bytes(size_t n) {
  if (!n) return NULL;
  unsigned char *p = malloc(n);
  fill(p, n);
  return p;
}

static void free_job(job *J) {
  for (int r = 0; r < J->n; r++) fuze__pfile_free(&J->m[r]);
  fuze__plan_free(&J->plan);
}

/* Structures of rank r with random contents; rank_counts shared via counts. */
static void make_structs(job *J, int r, uint64_t counts[][MAXR]) {
  fuze_pfile *m = &J->m[r];
  int spare = J->plan.block_of[r] < 0;
  m->nstructs = NSPECS;
  m->structs = calloc(NSPECS, sizeof *m->structs);
  for (int i = 0; i < NSPECS; i++) {
    const sspec *sp = &SPECS[i];
    fuze_pstruct *s = &m->structs[i];
    snprintf(s->name, sizeof s->name, "%s", sp->name);
    s->kind = sp->kind;
    if (sp->kind == FUZE_PS_ARRAY) {
      snprintf(s->type_name, sizeof s->type_name, "%s", sp->type);
      s->elem = sp->elem;
      s->rank_counts = malloc(sizeof(uint64_t) * (size_t)J->n);
      memcpy(s->rank_counts, counts[i], sizeof(uint64_t) * (size_t)J->n);
      s->count = (size_t)counts[i][r];
      s->data = rand_bytes(s->count * s->elem);
    } else {
      s->kb = sp->kb, s->nb = sp->nb, s->cap = sp->cap;
      s->count = spare || sp->empty ? 0 : rndn(sp->cap + 1);
      s->seq = spare ? 0 : s->count + rndn(6);
      s->keys = sp->kind == FUZE_PS_MAP ? rand_bytes(s->count * s->kb) : NULL;
      s->data = rand_bytes(s->count * s->nb);
    }
  }
}

static int hosts_of(const fuze_plan *p, int r) {
  int n = 0;
  for (int i = 0; i < p->nblocks * p->f; i++) n += p->hosts[i] == r;
  return n;
}

static void make_regions(job *J, int r) {
  fuze_pfile *m = &J->m[r];
  fuze_pfile *files[MAXR];
  for (int i = 0; i < J->n; i++) files[i] = &J->m[i];
  m->nregions = hosts_of(&J->plan, r) * NSPECS;
  m->regions = calloc((size_t)m->nregions + 1, sizeof *m->regions);
  int x = 0;
  char err[FUZE_MSG_LEN];
  for (int s = 0; s < NSPECS; s++)
    for (int b = 0; b < J->plan.nblocks; b++)
      for (int j = 0; j < J->plan.f; j++) {
        if (J->plan.hosts[b * J->plan.f + j] != r) continue;
        fuze_pregion *g = &m->regions[x++];
        g->s = s, g->block = b, g->j = j;
        g->bytes = fuze__pfile_region_bytes(m, s, b);
        g->data = malloc(g->bytes + 1);
        int rc = fuze__pfile_encode_region(files, s, b, j, g->data, err);
        EXPECT_RC(FUZE_SUCCESS, rc, err);
      }
}

/* A whole job: plan, random structures, encoded regions. 0 if the geometry
 * is impossible. */
static int make_job(job *J, geom g) {
  memset(J, 0, sizeof *J);
  J->g = g;
  J->n = g.ranks;
  int domain[MAXR];
  for (int r = 0; r < g.ranks; r++) domain[r] = r;
  fuze_plan_input in = {g.ranks, domain, g.ranks, g.spares, g.f, g.max_block};
  char err[FUZE_MSG_LEN];
  if (fuze__plan_build(&in, &J->plan, err, sizeof err) != FUZE_SUCCESS) return 0;
  uint64_t counts[NSPECS][MAXR];
  for (int i = 0; i < NSPECS; i++)
    for (int r = 0; r < g.ranks; r++) {
      int spare = J->plan.block_of[r] < 0;
      uint64_t c = rnd() % 5 == 0 ? 0 : 1 + rndn(40);
      if (strcmp(SPECS[i].name, "step") == 0) c = 1;
      if (i == 0) c = 1 + rndn(40); /* "u" is never empty: the region edits poke it */
      counts[i][r] = spare || SPECS[i].empty ? 0 : c;
    }
  uint64_t job_id = rnd(), epoch = 1 + rndn(1000);
  for (int r = 0; r < g.ranks; r++) {
    fuze_pfile *m = &J->m[r];
    m->version = FUZE_PFILE_VERSION;
    m->job_id = job_id, m->epoch = epoch, m->ckpt_calls = (int64_t)(epoch * 2 + 1);
    m->rank = r, m->ranks = g.ranks, m->f = g.f, m->spares = g.spares, m->code = g.code;
    if (fuze__plan_copy(&m->plan, &J->plan)) abort();
    make_structs(J, r, counts);
  }
  for (int r = 0; r < g.ranks; r++) make_regions(J, r);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Independent checks                                                  */
/* ------------------------------------------------------------------ */

static int bytes_eq(const void *a, const void *b, size_t n) {
  return n == 0 || (a && b && memcmp(a, b, n) == 0);
}

/* Every field of two models, without using pfile.c. Returns 1 if equal. */
static int model_eq(const fuze_pfile *a, const fuze_pfile *b, char *why, size_t wl) {
#define DIFF(...) return snprintf(why, wl, __VA_ARGS__), 0
  if (a->version != b->version || a->job_id != b->job_id || a->epoch != b->epoch ||
      a->ckpt_calls != b->ckpt_calls || a->rank != b->rank || a->ranks != b->ranks ||
      a->f != b->f || a->spares != b->spares || a->code != b->code)
    DIFF("header differs (rank %d vs %d, epoch %" PRIu64 " vs %" PRIu64 ")", a->rank, b->rank,
         a->epoch, b->epoch);
  const fuze_plan *p = &a->plan, *q = &b->plan;
  size_t nr = (size_t)p->nranks, nb = (size_t)p->nblocks;
  if (p->nranks != q->nranks || p->ndomains != q->ndomains || p->spares != q->spares ||
      p->f != q->f || p->ncompute != q->ncompute || p->nblocks != q->nblocks ||
      !bytes_eq(p->block_start, q->block_start, sizeof(int) * (nb + 1)) ||
      !bytes_eq(p->members, q->members, sizeof(int) * (size_t)p->ncompute) ||
      !bytes_eq(p->hosts, q->hosts, sizeof(int) * nb * (size_t)p->f) ||
      !bytes_eq(p->block_of, q->block_of, sizeof(int) * nr) ||
      !bytes_eq(p->index_in_block, q->index_in_block, sizeof(int) * nr) ||
      !bytes_eq(p->domain, q->domain, sizeof(int) * nr))
    DIFF("plan differs");
  if (a->nstructs != b->nstructs) DIFF("nstructs %d vs %d", a->nstructs, b->nstructs);
  for (int i = 0; i < a->nstructs; i++) {
    const fuze_pstruct *x = &a->structs[i], *y = &b->structs[i];
    size_t unit = x->kind == FUZE_PS_ARRAY ? x->elem : x->nb;
    if (strcmp(x->name, y->name) || x->kind != y->kind || strcmp(x->type_name, y->type_name) ||
        x->elem != y->elem || x->kb != y->kb || x->nb != y->nb || x->seq != y->seq ||
        x->cap != y->cap || x->count != y->count)
      DIFF("structure %d ('%s' vs '%s') metadata differs (count %zu vs %zu, seq %" PRIu64
           " vs %" PRIu64 ")",
           i, x->name, y->name, x->count, y->count, x->seq, y->seq);
    if ((x->rank_counts == NULL) != (y->rank_counts == NULL) ||
        (x->rank_counts && !bytes_eq(x->rank_counts, y->rank_counts, 8 * nr)))
      DIFF("structure '%s' rank_counts differ", x->name);
    if (!bytes_eq(x->keys, y->keys, x->count * x->kb)) DIFF("'%s' keys differ", x->name);
    if (!bytes_eq(x->data, y->data, x->count * unit)) DIFF("'%s' data differ", x->name);
  }
  if (a->nregions != b->nregions) DIFF("nregions %d vs %d", a->nregions, b->nregions);
  for (int i = 0; i < a->nregions; i++) {
    const fuze_pregion *x = &a->regions[i], *y = &b->regions[i];
    if (x->s != y->s || x->block != y->block || x->j != y->j || x->bytes != y->bytes ||
        !bytes_eq(x->data, y->data, x->bytes))
      DIFF("region %d (s %d block %d backup %d) differs", i, x->s, x->block, x->j);
  }
  return 1;
#undef DIFF
}

static size_t al64(size_t n) { return (n + 63) / 64 * 64; }

/* Region (s, b, j) recomputed byte by byte from pfile.h's layout comment and
 * ISA-L's scalar gf_mul, compared with what encode_region stored. */
static void check_region_ref(const job *J, const fuze_pregion *g) {
  const fuze_plan *p = &J->plan;
  const fuze_pstruct *s0 = &J->m[0].structs[g->s];
  int k = p->block_start[g->block + 1] - p->block_start[g->block];
  fuze_code c;
  if (fuze__code_init(&c, k, p->f, J->g.code)) {
    FAIL("code_init k=%d f=%d", k, p->f);
    return;
  }
  size_t bytes = 0, keys_off = 0, nodes_off = 0, unit;
  if (s0->kind == FUZE_PS_ARRAY) {
    unit = s0->elem;
    for (int x = 0; x < k; x++) {
      size_t n = s0->rank_counts[p->members[p->block_start[g->block] + x]] * unit;
      if (n > bytes) bytes = n;
    }
  } else {
    unit = s0->nb;
    keys_off = al64(64 * (size_t)k);
    nodes_off = keys_off + al64((size_t)k * s0->cap * s0->kb);
    bytes = nodes_off + al64(s0->cap * s0->nb);
  }
  unsigned char *want = calloc(bytes + 1, 1);
  for (int x = 0; x < k; x++) {
    const fuze_pstruct *s = &J->m[p->members[p->block_start[g->block] + x]].structs[g->s];
    unsigned char coef = c.coef[g->j * k + x];
    if (s->kind != FUZE_PS_ARRAY) {
      uint64_t cnt = s->count, seq = s->seq;
      memcpy(want + 64 * x, &cnt, 8);
      memcpy(want + 64 * x + 8, &seq, 8);
      if (s->kb && s->count)
        memcpy(want + keys_off + (size_t)x * s->cap * s->kb, s->keys, s->count * s->kb);
    }
    for (size_t i = 0; i < s->count * unit; i++) want[nodes_off + i] ^= gf_mul(coef, s->data[i]);
  }
  EXPECT(g->bytes == bytes, "region s=%d b=%d j=%d: %zu bytes, reference %zu", g->s, g->block, g->j,
         g->bytes, bytes);
  if (g->bytes == bytes && memcmp(g->data, want, bytes))
    FAIL("region s=%d ('%s') b=%d j=%d differs from the reference encoder", g->s, s0->name,
         g->block, g->j);
  free(want);
  fuze__code_free(&c);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

static int spit(const char *path, const unsigned char *b, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(b, 1, len, f);
  return fclose(f) || w != len ? -1 : 0;
}

static void le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Recompute the user-block seal (docs/format.md) after an HDF5-level edit,
 * so that only the deeper checks stand between the edit and the model. */
static void reseal(const char *path) {
  size_t len;
  unsigned char *b = slurp(path, &len);
  if (!b || len < UB) {
    FAIL("reseal %s", path);
    free(b);
    return;
  }
  le64(b + 16, len);
  le64(b + 24, crc64_ecma_refl(0, b + UB, len - UB));
  le64(b + 32, crc64_ecma_refl(0, b, 32));
  spit(path, b, len);
  free(b);
}

static void file_of(char *out, size_t n, const char *tag, int r) {
  snprintf(out, n, "%s/%s-rank-%d.h5", tmpdir, tag, r);
}

/* ------------------------------------------------------------------ */
/* Round trips and rebuilds                                            */
/* ------------------------------------------------------------------ */

static void roundtrip(job *J) {
  char path[512], err[FUZE_MSG_LEN], why[256];
  for (int r = 0; r < J->n; r++) {
    for (int i = 0; i < J->m[r].nregions; i++) check_region_ref(J, &J->m[r].regions[i]);
    file_of(path, sizeof path, "rt", r);
    int rc = fuze__pfile_write(&J->m[r], path, err);
    EXPECT_RC(FUZE_SUCCESS, rc, err);
    fuze_pfile back;
    rc = fuze__pfile_read(path, &back, err);
    EXPECT_RC(FUZE_SUCCESS, rc, err);
    if (!rc) EXPECT(model_eq(&J->m[r], &back, why, sizeof why), "rank %d read back: %s", r, why);
    if (!rc) EXPECT_RC(FUZE_SUCCESS, fuze__pfile_equal(&J->m[r], &back, err), err);
    fuze__pfile_free(&back);
    size_t len;
    unsigned char *img = slurp(path, &len);
    rc = fuze__pfile_read_image(img, len, "image", &back, err);
    EXPECT_RC(FUZE_SUCCESS, rc, err);
    if (!rc) EXPECT(model_eq(&J->m[r], &back, why, sizeof why), "rank %d image: %s", r, why);
    fuze__pfile_free(&back);
    free(img);
    unlink(path);
  }
}

/* Independent expectation: rebuilding t with the ranks in `lost` missing
 * fails iff a block it needs (its own; one it hosts that lost a primary)
 * lost more than f members. Returns the failing block or -1. */
static int expect_fail_block(const fuze_plan *p, unsigned lost, int t) {
  for (int b = 0; b < p->nblocks; b++) {
    int own = p->block_of[t] == b, hosted = 0, nl = 0, lostp = 0;
    for (int j = 0; j < p->f; j++) {
      hosted |= p->hosts[b * p->f + j] == t;
      nl += (lost >> p->hosts[b * p->f + j]) & 1;
    }
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) {
      int l = (lost >> p->members[x]) & 1;
      nl += l, lostp += l;
    }
    if ((own || (hosted && lostp)) && nl > p->f) return b;
  }
  return -1;
}

static int bad_blocks_named(const fuze_plan *p, unsigned lost, const char *err) {
  const char *s = strstr(err, "block ");
  int b;
  if (!s || sscanf(s, "block %d lost", &b) != 1 || b < 0 || b >= p->nblocks) return 0;
  int nl = 0;
  for (int j = 0; j < p->f; j++) nl += (lost >> p->hosts[b * p->f + j]) & 1;
  for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) nl += (lost >> p->members[x]) & 1;
  char tail[64];
  snprintf(tail, sizeof tail, "but tolerates faults=%d", p->f);
  return nl > p->f && strstr(err, tail) != NULL;
}

static long rebuilds, refusals;

static void rebuild_set(job *J, unsigned lost) {
  fuze_pfile *files[MAXR];
  char err[FUZE_MSG_LEN], why[256];
  for (int r = 0; r < J->n; r++) files[r] = (lost >> r) & 1 ? NULL : &J->m[r];
  for (int t = 0; t < J->n; t++) {
    if (!((lost >> t) & 1)) continue;
    fuze_pfile out;
    int rc = fuze__pfile_rebuild(files, J->n, t, &out, err);
    int fb = expect_fail_block(&J->plan, lost, t);
    if (lost == (1u << J->n) - 1) { /* nothing survives: no plan to name a block from */
      refusals++;
      EXPECT_RC(FUZE_ERR_UNRECOVERABLE, rc, err);
      EXPECT(strstr(err, "no surviving file to rebuild rank"), "message '%s'", err);
    } else if (fb < 0) {
      rebuilds++;
      EXPECT_RC(FUZE_SUCCESS, rc, err);
      if (!rc)
        EXPECT(model_eq(&J->m[t], &out, why, sizeof why), "lost 0x%x rebuild %d: %s", lost, t, why);
    } else {
      refusals++;
      EXPECT_RC(FUZE_ERR_UNRECOVERABLE, rc, err);
      if (rc == FUZE_ERR_UNRECOVERABLE)
        EXPECT(bad_blocks_named(&J->plan, lost, err), "lost 0x%x rebuild %d: message '%s'", lost, t,
               err);
    }
    fuze__pfile_free(&out);
  }
}

/* Every set of 1..f+1 lost ranks. */
static void rebuild_all(job *J) {
  for (unsigned lost = 1; lost < (1u << J->n); lost++)
    if (__builtin_popcount(lost) <= J->g.f + 1) rebuild_set(J, lost);
}

static void geometries(void) {
  double t0 = now();
  int njobs = 0;
  for (int ranks = 3; ranks <= 8; ranks++)
    for (int spares = 0; spares <= 1; spares++)
      for (int f = 1; f <= 3; f++)
        for (int code = 0; code < 3; code++) {
          if (code == FUZE_CODE_XOR && f != 1) continue;
          geom g = {ranks, spares, f, code, code == FUZE_CODE_REPLICATE ? 1 : (ranks + f) % 3};
          set_label("ranks=%d spares=%d f=%d code=%d max_block=%d", ranks, spares, f, code,
                    g.max_block);
          job J;
          if (make_job(&J, g)) {
            njobs++;
            roundtrip(&J);
            rebuild_all(&J);
          }
          free_job(&J);
        }
  set_label("geometries");
  EXPECT(njobs >= 60, "only %d geometries were possible", njobs);
  EXPECT(refusals > 100 && rebuilds > 1000, "%ld rebuilds, %ld refusals", rebuilds, refusals);
  printf("geometries: %d jobs, %ld exact rebuilds, %ld refusals (%.2f s)\n", njobs, rebuilds,
         refusals, now() - t0);
}

/* ------------------------------------------------------------------ */
/* Mutations                                                           */
/* ------------------------------------------------------------------ */

typedef struct fuzz {
  job J;
  unsigned char *img[MAXR];
  size_t len[MAXR];
  long ok, failed, harmless;
} fuzz;

/* The invariant: a read either fails with CORRUPT/IO and a message naming
 * the file, or returns exactly the original model. A failed file must be
 * rebuildable from the others. */
static void judge(fuzz *Z, int r, int rc, fuze_pfile *got, const char *err, const char *what,
                  int must_fail) {
  char why[256];
  if (rc == FUZE_SUCCESS) {
    EXPECT(!must_fail, "%s: read succeeded", what);
    EXPECT(model_eq(&Z->J.m[r], got, why, sizeof why),
           "%s: read succeeded with a different "
           "model: %s",
           what, why);
    Z->harmless++;
    return;
  }
  Z->failed++;
  EXPECT(rc == FUZE_ERR_CORRUPT || rc == FUZE_ERR_IO, "%s: %s (%s)", what, fuze_err_name(rc), err);
  EXPECT(strlen(err) > 10, "%s: no message", what);
  fuze_pfile *files[MAXR], out;
  char e2[FUZE_MSG_LEN];
  for (int i = 0; i < Z->J.n; i++) files[i] = i == r ? NULL : &Z->J.m[i];
  int rb = fuze__pfile_rebuild(files, Z->J.n, r, &out, e2);
  EXPECT_RC(FUZE_SUCCESS, rb, e2);
  if (!rb) EXPECT(model_eq(&Z->J.m[r], &out, why, sizeof why), "%s: rebuild: %s", what, why);
  fuze__pfile_free(&out);
}

static void flips(fuzz *Z, int iters) {
  char err[FUZE_MSG_LEN], what[128];
  for (int it = 0; it < iters; it++) {
    int r = (int)rndn((size_t)Z->J.n);
    size_t len = Z->len[r];
    unsigned char *b = malloc(len);
    memcpy(b, Z->img[r], len);
    int nflip = 1 + (int)rndn(4), zone = (int)rndn(4);
    size_t off = 0;
    for (int i = 0; i < nflip; i++) {
      off = zone == 0 ? rndn(40) : zone == 1 ? 40 + rndn(UB - 40) : rndn(len);
      b[off] ^= (unsigned char)(1 + rndn(255));
    }
    /* Flips can cancel; what matters is whether a checked byte changed. */
    int vital = memcmp(b, Z->img[r], 40) || memcmp(b + UB, Z->img[r] + UB, len - UB);
    snprintf(what, sizeof what, "rank %d: %d flip(s), last at %zu", r, nflip, off);
    fuze_pfile m;
    int rc = fuze__pfile_read_image(b, len, "image", &m, err);
    /* Flips only in the unused part of the user block are the harmless ones. */
    judge(Z, r, rc, &m, err, what, vital);
    fuze__pfile_free(&m);
    free(b);
  }
}

static void truncations(fuzz *Z, int iters) {
  char err[FUZE_MSG_LEN], what[128], path[512];
  for (int it = 0; it < iters; it++) {
    int r = (int)rndn((size_t)Z->J.n);
    size_t len = rndn(Z->len[r]);
    snprintf(what, sizeof what, "rank %d truncated to %zu of %zu", r, len, Z->len[r]);
    fuze_pfile m;
    int rc = fuze__pfile_read_image(Z->img[r], len, "image", &m, err);
    judge(Z, r, rc, &m, err, what, 1);
    fuze__pfile_free(&m);
    if (it % 16 == 0) { /* the same through the file path */
      file_of(path, sizeof path, "trunc", r);
      spit(path, Z->img[r], len);
      rc = fuze__pfile_read(path, &m, err);
      judge(Z, r, rc, &m, err, what, 1);
      EXPECT(strstr(err, path) != NULL, "%s: message does not name the file: %s", what, err);
      fuze__pfile_free(&m);
      unlink(path);
    }
  }
  /* Appended bytes too. */
  unsigned char *b = malloc(Z->len[0] + 100);
  memcpy(b, Z->img[0], Z->len[0]);
  memset(b + Z->len[0], 0, 100);
  fuze_pfile m;
  int rc = fuze__pfile_read_image(b, Z->len[0] + 100, "image", &m, err);
  judge(Z, 0, rc, &m, err, "extended by 100 bytes", 1);
  fuze__pfile_free(&m);
  free(b);
}

/* HDF5-level edits. */
/* (H5Aopen_by_name + H5Awrite fails in HDF5 1.10 when the object is not
 * open, so open it first.) */
static int h5_set_attr(hid_t f, const char *obj, const char *name, hid_t type, const void *v) {
  hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
  hid_t a = o < 0 ? -1 : H5Aopen(o, name, H5P_DEFAULT);
  int rc = a < 0 || H5Awrite(a, type, v) < 0 ? -1 : 0;
  if (a >= 0) H5Aclose(a);
  if (o >= 0) H5Oclose(o);
  return rc;
}

static int h5_swap_links(hid_t f, const char *a, const char *b) {
  return H5Lmove(f, a, f, "/__tmp", H5P_DEFAULT, H5P_DEFAULT) < 0 ||
         H5Lmove(f, b, f, a, H5P_DEFAULT, H5P_DEFAULT) < 0 ||
         H5Lmove(f, "/__tmp", f, b, H5P_DEFAULT, H5P_DEFAULT) < 0;
}

static unsigned char *h5_read_u8(hid_t f, const char *ds, hid_t *d, size_t *n) {
  *d = H5Dopen2(f, ds, H5P_DEFAULT);
  if (*d < 0) return NULL;
  hid_t sp = H5Dget_space(*d);
  *n = (size_t)H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  unsigned char *b = malloc(*n + 1);
  if (H5Dread(*d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) < 0) *n = 0;
  return b;
}

/* Swap the first min(len) bytes of two uint8 datasets, keeping their crc64s. */
static int h5_swap_contents(hid_t f, const char *a, const char *b) {
  hid_t da, db;
  size_t na = 0, nb = 0;
  unsigned char *x = h5_read_u8(f, a, &da, &na), *y = h5_read_u8(f, b, &db, &nb);
  size_t n = na < nb ? na : nb;
  int rc = !x || !y || !n || !memcmp(x, y, n);
  for (size_t i = 0; !rc && i < n; i++) {
    unsigned char t = x[i];
    x[i] = y[i], y[i] = t;
  }
  if (!rc)
    rc = H5Dwrite(da, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0 ||
         H5Dwrite(db, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) < 0;
  if (da >= 0) H5Dclose(da);
  if (db >= 0) H5Dclose(db);
  free(x), free(y);
  return rc;
}

/* Flip one byte of a uint8 dataset; fix its crc64 attribute when fixcrc. */
static int h5_poke(hid_t f, const char *ds, int fixcrc) {
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t sp = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  int rc = -1;
  if (n > 0) {
    unsigned char *b = malloc((size_t)n);
    if (H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0) {
      b[rndn((size_t)n)] ^= 0x10;
      rc = H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) < 0 ? -1 : 0;
      uint64_t c = crc64_ecma_refl(0, b, (uint64_t)n);
      if (!rc && fixcrc) rc = h5_set_attr(d, ".", "crc64", H5T_NATIVE_UINT64, &c);
    }
    free(b);
  }
  H5Dclose(d);
  return rc;
}

static const char *const EDITS[] = {
    "epoch",         "job_id",       "rank",          "ckpt_calls",    "format_version",
    "swap arrays",   "swap regions", "delete array",  "delete region", "poke region",
    "poke+crc",      "rank_counts",  "extra dataset", "seq",           "swap plan",
    "domain attr",   "rename array", "name attr",     "faults",        "cap",
    "swap contents",
};
#define NEDITS ((int)(sizeof EDITS / sizeof *EDITS))

/* The first region dataset of rank r's file, or NULL when it hosts none. */
static int first_region(const fuze_pfile *m, char *out, size_t n) {
  if (!m->nregions) return -1;
  snprintf(out, n, "/parity/u/block-%d.backup-%d", m->regions[0].block, m->regions[0].j);
  return 0;
}

static int apply_edit(hid_t f, const fuze_pfile *m, int e) {
  uint64_t u = rnd() | 1;
  int64_t i64 = (m->rank + 1) % m->ranks;
  uint32_t v2 = FUZE_PFILE_VERSION + 1;
  char reg[128], reg2[128];
  hid_t sp, d;
  switch (e) {
  case 0: u = m->epoch + 1; return h5_set_attr(f, "/", "epoch", H5T_NATIVE_UINT64, &u);
  case 1: return h5_set_attr(f, "/", "job_id", H5T_NATIVE_UINT64, &u);
  case 2: return h5_set_attr(f, "/", "rank", H5T_NATIVE_INT64, &i64);
  case 3: i64 = m->ckpt_calls + 1; return h5_set_attr(f, "/", "ckpt_calls", H5T_NATIVE_INT64, &i64);
  case 4: return h5_set_attr(f, "/", "format_version", H5T_NATIVE_UINT32, &v2);
  case 5: return h5_swap_links(f, "/arrays/u", "/arrays/step");
  case 6: /* the same region of two arrays */
    if (first_region(m, reg, sizeof reg)) return -1;
    snprintf(reg2, sizeof reg2, "/parity/step/%s", strrchr(reg, '/') + 1);
    return h5_swap_links(f, reg, reg2);
  case 7: return H5Ldelete(f, "/arrays/blob", H5P_DEFAULT) < 0 ? -1 : 0;
  case 8: return first_region(m, reg, sizeof reg) || H5Ldelete(f, reg, H5P_DEFAULT) < 0 ? -1 : 0;
  case 9: return first_region(m, reg, sizeof reg) ? -1 : h5_poke(f, reg, 0);
  case 10: return first_region(m, reg, sizeof reg) ? -1 : h5_poke(f, reg, 1);
  case 11: {
    uint64_t rc_[MAXR];
    memcpy(rc_, m->structs[0].rank_counts, sizeof(uint64_t) * (size_t)m->ranks);
    rc_[(m->rank + 1) % m->ranks] += 1;
    return h5_set_attr(f, "/arrays/u", "rank_counts", H5T_NATIVE_UINT64, rc_);
  }
  case 12: {
    hsize_t n = 4;
    sp = H5Screate_simple(1, &n, NULL);
    d = H5Dcreate2(f, "/arrays/intruder", H5T_NATIVE_UINT8, sp, H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT);
    H5Sclose(sp);
    if (d < 0) return -1;
    H5Dclose(d);
    return 0;
  }
  case 13:
    u = m->structs[1].seq + 1;
    return h5_set_attr(f, "/stacks/work", "seq", H5T_NATIVE_UINT64, &u);
  case 14: return h5_swap_links(f, "/plan/members", "/plan/domain");
  case 15:
    i64 = m->plan.domain[m->rank] + 1;
    return h5_set_attr(f, "/", "domain", H5T_NATIVE_INT64, &i64);
  case 16: return H5Lmove(f, "/arrays/u", f, "/arrays/v", H5P_DEFAULT, H5P_DEFAULT) < 0 ? -1 : 0;
  case 17: {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 2);
    int rc = h5_set_attr(f, "/arrays/u", "name", t, "v");
    H5Tclose(t);
    return rc;
  }
  case 18: i64 = m->f + 1; return h5_set_attr(f, "/", "faults", H5T_NATIVE_INT64, &i64);
  case 20: /* the bytes (not the names) of the same region of "u" and "work" */
    if (first_region(m, reg, sizeof reg)) return -1;
    snprintf(reg2, sizeof reg2, "/parity/work/%s", strrchr(reg, '/') + 1);
    return h5_swap_contents(f, reg, reg2);
  default:
    u = m->structs[1].cap * 2;
    return h5_set_attr(f, "/stacks/work", "cap", H5T_NATIVE_UINT64, &u);
  }
}

static void edits(fuzz *Z, int rounds) {
  char path[512], err[FUZE_MSG_LEN], what[160];
  long version_msgs = 0, applied[NEDITS][2] = {{0}};
  for (int it = 0; it < rounds; it++) {
    int r = (int)rndn((size_t)Z->J.n), e = it % NEDITS, resealed = (it / NEDITS) % 2 == 0;
    /* Region edits need a rank hosting a non-empty region of "u". */
    for (int tries = 0; (e == 6 || (e >= 8 && e <= 10) || e == 20) && tries < 4 * Z->J.n; tries++) {
      if (Z->J.m[r].nregions && Z->J.m[r].regions[0].bytes) break;
      r = (r + 1) % Z->J.n;
    }
    file_of(path, sizeof path, "edit", r);
    spit(path, Z->img[r], Z->len[r]);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int ok = f >= 0 && apply_edit(f, &Z->J.m[r], e) == 0;
    if (f >= 0) H5Fclose(f);
    if (!ok) { /* e.g. no region on this rank: not applicable */
      unlink(path);
      continue;
    }
    if (resealed) reseal(path);
    applied[e][resealed]++;
    snprintf(what, sizeof what, "rank %d edit '%s'%s", r, EDITS[e], resealed ? " resealed" : "");
    fuze_pfile m;
    int rc = fuze__pfile_read(path, &m, err);
    /* Swapping two plan datasets may be a no-op (members == domain). */
    judge(Z, r, rc, &m, err, what, e != 14);
    if (!resealed && rc)
      EXPECT(strstr(err, "checksum mismatch") || strstr(err, "truncated or extended"),
             "%s: message '%s'", what, err);
    if (resealed && e == 4) {
      char want[96];
      snprintf(want, sizeof want, "written by format version %d; this fuze reads version %d",
               FUZE_PFILE_VERSION + 1, FUZE_PFILE_VERSION);
      version_msgs++;
      EXPECT(strstr(err, want) != NULL, "%s: message '%s'", what, err);
    }
    if (resealed && (e == 9 || e == 20))
      EXPECT(strstr(err, "crc64 mismatch in dataset /parity/u/block-") != NULL, "%s: message '%s'",
             what, err);
    fuze__pfile_free(&m);
    unlink(path);
  }
  EXPECT(version_msgs > 0, "the format_version edit never ran");
  for (int e = 0; e < NEDITS; e++)
    EXPECT(applied[e][0] && applied[e][1], "edit '%s' applied %ld/%ld times (plain/resealed)",
           EDITS[e], applied[e][0], applied[e][1]);
}

static void fuzz_job(geom g, int nflips, int ntrunc, int nedits) {
  double t0 = now();
  fuzz *Z = calloc(1, sizeof *Z);
  set_label("fuzz ranks=%d spares=%d f=%d code=%d", g.ranks, g.spares, g.f, g.code);
  if (!make_job(&Z->J, g)) {
    FAIL("geometry impossible");
    free(Z);
    return;
  }
  char path[512], err[FUZE_MSG_LEN];
  for (int r = 0; r < Z->J.n; r++) {
    file_of(path, sizeof path, "fuzz", r);
    EXPECT_RC(FUZE_SUCCESS, fuze__pfile_write(&Z->J.m[r], path, err), err);
    Z->img[r] = slurp(path, &Z->len[r]);
    unlink(path);
  }
  flips(Z, nflips);
  truncations(Z, ntrunc);
  edits(Z, nedits);
  EXPECT(Z->failed > (nflips + ntrunc) / 2, "only %ld reads failed", Z->failed);
  EXPECT(Z->harmless > 0, "no harmless mutation (unused user block bytes) was tried");
  printf("%s: %ld mutations refused, %ld harmless (%.2f s)\n", label, Z->failed, Z->harmless,
         now() - t0);
  for (int r = 0; r < Z->J.n; r++) free(Z->img[r]);
  free_job(&Z->J);
  free(Z);
}

/* ------------------------------------------------------------------ */
/* Versions, errors, determinism, manifest                             */
/* ------------------------------------------------------------------ */

/* A file of another format version (the next one, and the previous one,
 * whose stack/map header layout differs) is refused with a message naming
 * both versions, never misread. */
static void other_version(int v) {
  set_label(v > FUZE_PFILE_VERSION ? "future version" : "older version");
  job J;
  geom g = {4, 0, 1, FUZE_CODE_RS, 0};
  if (!make_job(&J, g)) {
    FAIL("geometry");
    return;
  }
  char path[512], err[FUZE_MSG_LEN], want[96];
  snprintf(want, sizeof want, "v%d", v);
  file_of(path, sizeof path, want, 0);
  J.m[0].version = (uint32_t)v;
  EXPECT_RC(FUZE_SUCCESS, fuze__pfile_write(&J.m[0], path, err), err);
  fuze_pfile m;
  int rc = fuze__pfile_read(path, &m, err);
  EXPECT_RC(FUZE_ERR_CORRUPT, rc, err);
  snprintf(want, sizeof want, "written by format version %d; this fuze reads version %d", v, FUZE_PFILE_VERSION);
  EXPECT(strstr(err, path) && strstr(err, want), "message: %s", err);
  fuze__pfile_free(&m);
  unlink(path);
  free_job(&J);
}

static void error_paths(void) {
  set_label("errors");
  char path[512], err[FUZE_MSG_LEN];
  fuze_pfile m;
  snprintf(path, sizeof path, "%s/no-such-file.h5", tmpdir);
  EXPECT_RC(FUZE_ERR_IO, fuze__pfile_read(path, &m, err), err);
  EXPECT(strstr(err, path) && strstr(err, "No such file"), "message: %s", err);
  EXPECT_RC(FUZE_ERR_IO, fuze__pfile_read(tmpdir, &m, err), err);
  EXPECT(strstr(err, "not a regular file"), "message: %s", err);
  /* A valid HDF5 file that is not ours, and a text file. */
  snprintf(path, sizeof path, "%s/plain.h5", tmpdir);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  EXPECT_RC(FUZE_ERR_CORRUPT, fuze__pfile_read(path, &m, err), err);
  EXPECT(strstr(err, "not a fuze rank file"), "message: %s", err);
  spit(path, (const unsigned char *)"hello\n", 6);
  EXPECT_RC(FUZE_ERR_CORRUPT, fuze__pfile_read(path, &m, err), err);
  EXPECT(strstr(err, "truncated"), "message: %s", err);
  unlink(path);
  /* Writing into a missing directory; an invalid model. */
  job J;
  geom g = {3, 0, 1, FUZE_CODE_XOR, 0};
  if (!make_job(&J, g)) {
    FAIL("geometry");
    return;
  }
  snprintf(path, sizeof path, "%s/missing-dir/x.h5", tmpdir);
  EXPECT_RC(FUZE_ERR_IO, fuze__pfile_write(&J.m[0], path, err), err);
  EXPECT(strstr(err, path) && strstr(err, "No such file or directory"), "message: %s", err);
  file_of(path, sizeof path, "invalid", 0);
  J.m[0].structs[0].count++;
  EXPECT_RC(FUZE_ERR_ARG, fuze__pfile_write(&J.m[0], path, err), err);
  EXPECT(strstr(err, "rank_counts"), "message: %s", err);
  J.m[0].structs[0].count--;
  /* Survivors that disagree. */
  fuze_pfile *files[MAXR], out;
  for (int r = 0; r < J.n; r++) files[r] = &J.m[r];
  J.m[2].epoch++;
  EXPECT_RC(FUZE_ERR_CORRUPT, fuze__pfile_rebuild(files, J.n, 0, &out, err), err);
  EXPECT(strstr(err, "epoch differs"), "message: %s", err);
  EXPECT_RC(FUZE_ERR_CORRUPT, fuze__pfile_same_job(&J.m[1], &J.m[2], err), err);
  J.m[2].epoch--;
  files[1] = &J.m[2];
  EXPECT_RC(FUZE_ERR_CORRUPT, fuze__pfile_rebuild(files, J.n, 0, &out, err), err);
  free_job(&J);
}

/* The same model written twice, and a rebuilt one, give identical bytes. */
static void determinism(void) {
  set_label("determinism");
  job J;
  geom g = {6, 1, 2, FUZE_CODE_RS, 0};
  if (!make_job(&J, g)) {
    FAIL("geometry");
    return;
  }
  char a[512], b[512], err[FUZE_MSG_LEN];
  file_of(a, sizeof a, "det-a", 1);
  file_of(b, sizeof b, "det-b", 1);
  fuze_pfile *files[MAXR], out;
  for (int r = 0; r < J.n; r++) files[r] = r == 1 ? NULL : &J.m[r];
  EXPECT_RC(FUZE_SUCCESS, fuze__pfile_write(&J.m[1], a, err), err);
  EXPECT_RC(FUZE_SUCCESS, fuze__pfile_rebuild(files, J.n, 1, &out, err), err);
  EXPECT_RC(FUZE_SUCCESS, fuze__pfile_write(&out, b, err), err);
  size_t la, lb;
  unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
  EXPECT(x && y && la == lb && memcmp(x, y, la) == 0, "rebuilt file differs in bytes (%zu vs %zu)",
         la, lb);
  free(x), free(y);
  fuze__pfile_free(&out);
  unlink(a), unlink(b);
  free_job(&J);
}

static void manifest(void) {
  set_label("manifest");
  char dir[512], path[600], err[FUZE_MSG_LEN];
  snprintf(dir, sizeof dir, "%s/mdir", tmpdir);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/manifest", dir);
  fuze_manifest m = {1, 0x0123456789abcdefULL, 8, 2, 1, FUZE_CODE_RS, 2, {12, 11}, {24, 22},
                     FUZE_MODE_NONE}, r;
  EXPECT_RC(FUZE_ERR_NOT_FOUND, fuze__manifest_read(dir, &r, err), err);
  EXPECT_RC(FUZE_SUCCESS, fuze__manifest_write(dir, &m, err), err);
  EXPECT_RC(FUZE_SUCCESS, fuze__manifest_read(dir, &r, err), err);
  EXPECT(m.version == r.version && m.job_id == r.job_id && m.ranks == r.ranks && m.f == r.f &&
             m.spares == r.spares && m.code == r.code && m.ncomplete == r.ncomplete &&
             !memcmp(m.complete, r.complete, sizeof m.complete) &&
             !memcmp(m.ckpt_calls, r.ckpt_calls, sizeof m.ckpt_calls),
         "manifest round trip differs");
  EXPECT(r.mode == FUZE_MODE_NONE, "manifest mode %d, expected none", r.mode);
  /* A mode (code=byzantine: rs + replicas) is a line of its own, over rs only. */
  m.mode = FUZE_MODE_BYZANTINE;
  EXPECT_RC(FUZE_SUCCESS, fuze__manifest_write(dir, &m, err), err);
  EXPECT_RC(FUZE_SUCCESS, fuze__manifest_read(dir, &r, err), err);
  EXPECT(r.mode == FUZE_MODE_BYZANTINE && r.code == FUZE_CODE_RS, "manifest mode round trip: %d/%d",
         r.mode, r.code);
  m.code = FUZE_CODE_XOR;
  EXPECT_RC(FUZE_ERR_ARG, fuze__manifest_write(dir, &m, err), err);
  m.code = FUZE_CODE_RS, m.mode = FUZE_MODE_NONE;
  m.ncomplete = 0;
  EXPECT_RC(FUZE_SUCCESS, fuze__manifest_write(dir, &m, err), err);
  EXPECT_RC(FUZE_SUCCESS, fuze__manifest_read(dir, &r, err), err);
  EXPECT(r.ncomplete == 0 && r.ranks == 8, "empty manifest");
  m.ncomplete = 2, m.complete[1] = 13;
  EXPECT_RC(FUZE_ERR_ARG, fuze__manifest_write(dir, &m, err), err);
  m.complete[1] = 11;
  EXPECT_RC(FUZE_SUCCESS, fuze__manifest_write(dir, &m, err), err);
  size_t len;
  unsigned char *orig = slurp(path, &len);
  struct {
    const char *find, *repl, *msg;
  } cases[] = {
      {"ranks 8", "ranks 9", "crc64 mismatch"},
      {"ranks 8", "ranks x", "line 3: bad line 'ranks x'"},
      {"fuze-manifest 1", "fuze-manifest 7",
       "written by manifest version 7; this fuze reads version 1"},
      {"code rs", "code zz", "line 6: bad line 'code zz'"},
      {"faults 2\n", "", "missing 'faults' line"},
      {"complete 12 24", "complete 10 24", "bad line 'complete 11 22'"},
      {"fuze-manifest 1", "hello", "line 1: expected 'fuze-manifest 1'"},
      {"code rs\n", "code rs\nmode none\n", "line 7: bad line 'mode none'"},
      {"code rs\n", "code rs\nmode byzantine\nmode byzantine\n", "bad line 'mode byzantine'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char text[2048];
    memcpy(text, orig, len);
    text[len] = 0;
    char *at = strstr(text, cases[i].find), out[2048];
    if (!at) {
      FAIL("case %zu: '%s' not in the manifest", i, cases[i].find);
      continue;
    }
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, cases[i].repl,
             at + strlen(cases[i].find));
    spit(path, (unsigned char *)out, strlen(out));
    EXPECT_RC(FUZE_ERR_CORRUPT, fuze__manifest_read(dir, &r, err), err);
    EXPECT(strstr(err, cases[i].msg), "case %zu: message '%s', expected '%s'", i, err,
           cases[i].msg);
  }
  spit(path, orig, len - 3);
  EXPECT_RC(FUZE_ERR_CORRUPT, fuze__manifest_read(dir, &r, err), err);
  free(orig);
  unlink(path);
  rmdir(dir);
}

/* --keep DIR: a small job under DIR (the layout of docs/format.md). */
static int keep(const char *dir) {
  job J;
  geom g = {4, 1, 2, FUZE_CODE_RS, 0};
  if (!make_job(&J, g)) return 1;
  char path[1024], sub[1024], err[FUZE_MSG_LEN];
  mkdir(dir, 0755);
  for (int r = 0; r < J.n; r++) {
    fuze__pfile_dir(sub, sizeof sub, dir, J.plan.domain[r], r);
    snprintf(path, sizeof path, "%s/domain-%d", dir, J.plan.domain[r]);
    mkdir(path, 0755);
    mkdir(sub, 0755);
    fuze__pfile_path(path, sizeof path, dir, J.plan.domain[r], r, J.m[r].epoch);
    if (fuze__pfile_write(&J.m[r], path, err)) return fprintf(stderr, "%s\n", err), 1;
    printf("%s\n", path);
  }
  free_job(&J);
  return 0;
}

int main(int argc, char **argv) {
  seed = (uint64_t)time(NULL);
  const char *keepdir = NULL, *part = "all";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
      keepdir = argv[++i];
    else if (!strcmp(argv[i], "--part") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "all") || !strcmp(argv[i + 1], "core") || !strcmp(argv[i + 1], "fuzz")))
      part = argv[++i];
    else
      return fprintf(stderr, "usage: test_pfile [--seed N] [--keep DIR] [--part all|core|fuzz]\n"), 2;
  }
  int do_core = strcmp(part, "fuzz") != 0, do_fuzz = strcmp(part, "core") != 0;
  rng_state = seed;
  if (keepdir) return keep(keepdir);
  printf("test_pfile seed=%llu\n", (unsigned long long)seed);
  if (!getenv("TEST_PFILE_H5ERR")) H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* edits probe */
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_pfile.XXXXXX");
  if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 1;
  double t0 = now();
  if (do_core) {
    error_paths();
    other_version(FUZE_PFILE_VERSION + 1);
    other_version(FUZE_PFILE_VERSION - 1);
    determinism();
    manifest();
    geometries();
  }
  if (do_fuzz) {
    fuzz_job((geom){6, 1, 2, FUZE_CODE_RS, 0}, 1500, 300, 8 * NEDITS);
    fuzz_job((geom){5, 0, 1, FUZE_CODE_XOR, 2}, 800, 150, 4 * NEDITS);
    fuzz_job((geom){4, 0, 3, FUZE_CODE_REPLICATE, 1}, 500, 100, 4 * NEDITS);
  }
  rmdir(tmpdir);
  printf("%s: %d failure(s) in %.2f s (seed=%llu)\n", failures ? "FAILED" : "OK", failures,
         now() - t0, (unsigned long long)seed);
  return failures ? 1 : 0;
}
