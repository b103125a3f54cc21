/* fuze-inspect-gen: test helper for fuze-inspect (not installed). Writes a
 * real persistence directory without MPI: a plan from the planner, random
 * arrays, stacks and maps, backup regions from fuze__pfile_encode_region,
 * rank files from fuze__pfile_write and a manifest, as a job would.
 *
 *   fuze-inspect-gen DIR [--ranks N] [--faults F] [--spares S] [--code C]
 *                        [--seed N] [--bad-parity RANK] [--structs N]
 *                        [--chain N]
 *       epochs 6 and 7 (7 newest); --bad-parity flips one byte of RANK's
 *       first backup region before writing it (a valid file, wrong parity);
 *       --chain N (1..5, persist_base > 1): a full epoch-B.h5 with B = 7 - N
 *       and increments incr-B+1.h5 .. incr-7.h5 on every rank (64-byte
 *       chunks; each epoch rewrites a few bytes of every array and may
 *       change a stack or map whole, its parity re-encoded); every rank's
 *       chain is read back and must equal the model it was made from
 *   fuze-inspect-gen --compare FILE1 FILE2
 *       exit 0 when both files read and hold equal models, else 1
 *   fuze-inspect-gen --flip FILE OFFSET
 *       xor the byte at OFFSET (negative: from the end) with 0xff */
#include "core/error.h"
#include "core/pfile.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXR 64

static uint64_t rng;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static unsigned char *rand_bytes(size_t n) {
  unsigned char *p = n ? malloc(n) : NULL;
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rnd();
  return p;
}

typedef struct spec {
  const char *name;
  int kind;
  const char *type;
  size_t elem, kb, nb, cap;
} spec;

static const spec SPECS[] = {
    {"u", FUZE_PS_ARRAY, "MPI_DOUBLE", 8, 0, 0, 0},
    {"work", FUZE_PS_STACK, "", 0, 0, 32, 16},
    {"accounts", FUZE_PS_MAP, "", 0, 8, 40, 16},
    {"grid/halo", FUZE_PS_ARRAY, "MPI_INT", 4, 0, 0, 0},
    {"step", FUZE_PS_ARRAY, "MPI_LONG", 8, 0, 0, 0},
};
#define MAXS ((int)(sizeof SPECS / sizeof *SPECS))
static int NS = MAXS; /* --structs N: the first N only */

typedef struct opts {
  int ranks, faults, spares, code, mode, bad_parity;
  uint64_t seed;
  int chain; /* --chain N: increments */
} opts;

static void make_structs(fuze_pfile *m, const fuze_plan *p, uint64_t counts[][MAXR]) {
  int spare = p->block_of[m->rank] < 0;
  m->nstructs = NS;
  m->structs = calloc((size_t)NS, sizeof *m->structs);
  for (int i = 0; i < NS; i++) {
    fuze_pstruct *s = &m->structs[i];
    snprintf(s->name, sizeof s->name, "%s", SPECS[i].name);
    s->kind = SPECS[i].kind;
    if (s->kind == FUZE_PS_ARRAY) {
      snprintf(s->type_name, sizeof s->type_name, "%s", SPECS[i].type);
      s->elem = SPECS[i].elem;
      s->rank_counts = malloc(sizeof(uint64_t) * (size_t)m->ranks);
      memcpy(s->rank_counts, counts[i], sizeof(uint64_t) * (size_t)m->ranks);
      s->count = (size_t)counts[i][m->rank];
      s->data = rand_bytes(s->count * s->elem);
    } else {
      s->kb = SPECS[i].kb, s->nb = SPECS[i].nb, s->cap = SPECS[i].cap;
      s->count = spare ? 0 : (size_t)(rnd() % (s->cap + 1));
      s->seq = spare ? 0 : s->count + rnd() % 4;
      s->keys = s->kb ? rand_bytes(s->count * s->kb) : NULL;
      s->data = rand_bytes(s->count * s->nb);
    }
  }
}

static int make_regions(fuze_pfile *ms, int r) {
  fuze_pfile *m = &ms[r], *files[MAXR];
  const fuze_plan *p = &m->plan;
  char err[FUZE_MSG_LEN];
  for (int i = 0; i < m->ranks; i++) files[i] = &ms[i];
  int n = 0;
  for (int i = 0; i < p->nblocks * p->f; i++) n += p->hosts[i] == r;
  m->regions = calloc((size_t)(n * NS + 1), sizeof *m->regions);
  for (int s = 0; s < NS; s++)
    for (int b = 0; b < p->nblocks; b++)
      for (int j = 0; j < p->f; j++) {
        if (p->hosts[b * p->f + j] != r) continue;
        fuze_pregion *g = &m->regions[m->nregions++];
        g->s = s, g->block = b, g->j = j, g->bytes = fuze__pfile_region_bytes(m, s, b);
        g->data = malloc(g->bytes + 1);
        if (fuze__pfile_encode_region(files, s, b, j, g->data, err))
          return fprintf(stderr, "fuze-inspect-gen: %s\n", err), -1;
      }
  return 0;
}

/* One epoch's models of every rank. */
static int make_epoch(const opts *o, const fuze_plan *p, uint64_t job_id, uint64_t epoch,
                      fuze_pfile *ms) {
  uint64_t counts[MAXS][MAXR];
  for (int i = 0; i < NS; i++)
    for (int r = 0; r < o->ranks; r++)
      counts[i][r] = p->block_of[r] < 0         ? 0
                     : i == MAXS - 1            ? 1 /* "step" */
                     : i == 0 || rnd() % 5 != 0 ? 1 + rnd() % 64
                                                : 0;
  for (int r = 0; r < o->ranks; r++) {
    fuze_pfile *m = &ms[r];
    memset(m, 0, sizeof *m);
    m->version = FUZE_PFILE_VERSION;
    m->job_id = job_id, m->epoch = epoch, m->ckpt_calls = (int64_t)epoch * 2;
    m->rank = r, m->ranks = o->ranks, m->f = o->faults, m->spares = o->spares, m->code = o->code;
    if (fuze__plan_copy(&m->plan, p)) abort();
    make_structs(m, p, counts);
  }
  for (int r = 0; r < o->ranks; r++)
    if (make_regions(ms, r)) return -1;
  return 0;
}

static int write_rank(const char *dir, const fuze_pfile *m) {
  char path[4096], tmp[4200], err[FUZE_MSG_LEN];
  snprintf(path, sizeof path, "%s/domain-%d", dir, m->plan.domain[m->rank]);
  mkdir(path, 0755);
  fuze__pfile_dir(path, sizeof path, dir, m->plan.domain[m->rank], m->rank);
  mkdir(path, 0755);
  snprintf(tmp, sizeof tmp, "%s/.epoch-%" PRIu64 ".h5.tmp", path, m->epoch);
  fuze__pfile_path(path, sizeof path, dir, m->plan.domain[m->rank], m->rank, m->epoch);
  if (fuze__pfile_write(m, tmp, err) || rename(tmp, path))
    return fprintf(stderr, "fuze-inspect-gen: %s\n", err), -1;
  return 0;
}

/* ---- --chain: increments ---- */

#define GEN_CHUNK 64

/* The chunks of nw (nlen bytes) that differ from old (olen bytes); all of
 * them when the length changed. */
static void delta(fuze_pdelta *p, const unsigned char *old, size_t olen, const unsigned char *nw,
                  size_t nlen) {
  size_t n = (nlen + GEN_CHUNK - 1) / GEN_CHUNK;
  memset(p, 0, sizeof *p);
  p->len = nlen;
  p->idx = malloc(sizeof(uint64_t) * (n + 1));
  p->bytes = malloc(nlen + 1);
  for (size_t c = 0; c < n; c++) {
    size_t off = c * GEN_CHUNK, k = nlen - off < GEN_CHUNK ? nlen - off : GEN_CHUNK;
    if (olen == nlen && !memcmp(old + off, nw + off, k)) continue;
    memcpy(p->bytes + p->nbytes, nw + off, k);
    p->nbytes += k;
    p->idx[p->n++] = c;
  }
}

/* The increment that makes rank model a (epoch parent) into b. */
static void make_incr(const fuze_pfile *a, const fuze_pfile *b, uint64_t base, fuze_pincr *d) {
  memset(d, 0, sizeof *d);
  d->job_id = b->job_id, d->epoch = b->epoch, d->parent = a->epoch, d->base = base;
  d->ckpt_calls = b->ckpt_calls, d->rank = b->rank, d->ranks = b->ranks, d->chunk = GEN_CHUNK;
  d->nstructs = b->nstructs;
  d->structs = calloc((size_t)b->nstructs + 1, sizeof *d->structs);
  for (int i = 0; i < b->nstructs; i++) {
    const fuze_pstruct *x = &a->structs[i], *y = &b->structs[i];
    fuze_pincr_struct *q = &d->structs[i];
    size_t unit = y->kind == FUZE_PS_ARRAY ? y->elem : y->nb;
    snprintf(q->name, sizeof q->name, "%s", y->name);
    q->kind = y->kind, q->count = y->count, q->seq = y->seq;
    q->cap = y->kind == FUZE_PS_ARRAY ? 0 : y->cap;
    delta(&q->keys, x->keys, x->count * x->kb, y->keys, y->count * y->kb);
    delta(&q->data, x->data, x->count * unit, y->data, y->count * unit);
  }
  d->nregions = b->nregions;
  d->regions = calloc((size_t)b->nregions + 1, sizeof *d->regions);
  for (int i = 0; i < b->nregions; i++) {
    fuze_pincr_region *z = &d->regions[i];
    z->s = b->regions[i].s, z->block = b->regions[i].block, z->j = b->regions[i].j;
    delta(&z->d, a->regions[i].data, a->regions[i].bytes, b->regions[i].data, b->regions[i].bytes);
  }
}

/* A deep copy of m (through a file image: the library's own writer and reader). */
static int copy_model(const char *scratch, const fuze_pfile *m, fuze_pfile *out) {
  char err[FUZE_MSG_LEN];
  if (fuze__pfile_write(m, scratch, err) || fuze__pfile_read(scratch, out, err))
    return fprintf(stderr, "fuze-inspect-gen: %s\n", err), -1;
  unlink(scratch);
  return 0;
}

/* Epoch e from the models of e - 1 (in place): every array gets 8 bytes
 * rewritten at a random place, a stack or map now and then a new count
 * and contents (its capacity kept); then every region is encoded again. */
static int next_epoch(fuze_pfile *ms, int ranks, uint64_t e) {
  for (int r = 0; r < ranks; r++) {
    fuze_pfile *m = &ms[r];
    m->epoch = e, m->ckpt_calls = (int64_t)e * 2;
    for (int i = 0; i < m->nstructs; i++) {
      fuze_pstruct *t = &m->structs[i];
      if (t->kind == FUZE_PS_ARRAY) {
        size_t n = t->count * t->elem;
        if (n < 8) continue;
        size_t at = (size_t)(rnd() % (n - 7));
        for (size_t k = 0; k < 8; k++) t->data[at + k] = (unsigned char)rnd();
      } else if (m->plan.block_of[r] >= 0 && rnd() % 2) {
        free(t->keys), free(t->data);
        t->count = (size_t)(rnd() % (t->cap + 1));
        t->seq += 1 + rnd() % 3;
        t->keys = t->kb ? rand_bytes(t->count * t->kb) : NULL;
        t->data = rand_bytes(t->count * t->nb);
      }
    }
  }
  for (int r = 0; r < ranks; r++) {
    for (int g = 0; g < ms[r].nregions; g++) free(ms[r].regions[g].data);
    free(ms[r].regions);
    ms[r].regions = NULL, ms[r].nregions = 0;
  }
  for (int r = 0; r < ranks; r++)
    if (make_regions(ms, r)) return -1;
  return 0;
}

static int write_incr(const char *dir, const fuze_pincr *d, int domain) {
  char path[4096], tmp[4200], err[FUZE_MSG_LEN];
  fuze__pfile_dir(path, sizeof path, dir, domain, d->rank);
  snprintf(tmp, sizeof tmp, "%s/.incr-%" PRIu64 ".h5.tmp", path, d->epoch);
  fuze__pfile_incr_path(path, sizeof path, dir, domain, d->rank, d->epoch);
  if (fuze__pincr_write(d, tmp, err) || rename(tmp, path))
    return fprintf(stderr, "fuze-inspect-gen: %s\n", err), -1;
  return 0;
}

/* --chain: epoch 7 - n full, then n increments; each rank's chain read back. */
static int generate_chain(const char *dir, const opts *o, const fuze_plan *plan, uint64_t job_id) {
  fuze_pfile cur[MAXR], nxt[MAXR];
  char scratch[4096], err[FUZE_MSG_LEN];
  snprintf(scratch, sizeof scratch, "%s/.gen-scratch.h5", dir);
  uint64_t base = 7 - (uint64_t)o->chain;
  int rc = make_epoch(o, plan, job_id, base, cur);
  for (int r = 0; r < o->ranks && !rc; r++) rc = write_rank(dir, &cur[r]);
  for (uint64_t e = base + 1; e <= 7 && !rc; e++) {
    for (int r = 0; r < o->ranks && !rc; r++) rc = copy_model(scratch, &cur[r], &nxt[r]);
    if (!rc) rc = next_epoch(nxt, o->ranks, e);
    for (int r = 0; r < o->ranks && !rc; r++) {
      fuze_pincr d;
      make_incr(&cur[r], &nxt[r], base, &d);
      rc = write_incr(dir, &d, plan->domain[r]);
      fuze__pincr_free(&d);
    }
    for (int r = 0; r < o->ranks; r++) {
      fuze__pfile_free(&cur[r]);
      cur[r] = nxt[r];
      memset(&nxt[r], 0, sizeof nxt[r]);
    }
  }
  for (int r = 0; r < o->ranks && !rc; r++) { /* the chain gives what was written */
    fuze_pfile back;
    if (fuze__pfile_read_chain(dir, plan->domain[r], r, 7, &back, NULL, NULL, 16, err) ||
        fuze__pfile_equal(&back, &cur[r], err))
      rc = fprintf(stderr, "fuze-inspect-gen: rank %d: chain of epoch 7: %s\n", r, err);
    fuze__pfile_free(&back);
  }
  for (int r = 0; r < o->ranks; r++) fuze__pfile_free(&cur[r]);
  return rc ? -1 : 0;
}

static int generate(const char *dir, const opts *o) {
  int domain[MAXR];
  for (int r = 0; r < o->ranks; r++) domain[r] = r;
  fuze_plan_input in = {o->ranks, domain, o->ranks, o->spares, o->faults, o->code == 2 ? 1 : 0};
  fuze_plan plan;
  char err[FUZE_MSG_LEN];
  if (fuze__plan_build(&in, &plan, err, sizeof err))
    return fprintf(stderr, "fuze-inspect-gen: %s\n", err), 2;
  mkdir(dir, 0755);
  rng = o->seed;
  uint64_t job_id = rnd();
  fuze_manifest man = {1, job_id, o->ranks, o->faults, o->spares, o->code, 2, {7, 6}, {14, 12},
                       o->mode};
  int rc = o->chain ? generate_chain(dir, o, &plan, job_id) : 0;
  for (uint64_t e = 6; e <= 7 && !rc && !o->chain; e++) {
    fuze_pfile ms[MAXR];
    rc = make_epoch(o, &plan, job_id, e, ms);
    if (!rc && o->bad_parity >= 0 && e == 7) {
      fuze_pfile *m = &ms[o->bad_parity];
      if (!m->nregions || !m->regions[0].bytes)
        rc = fprintf(stderr, "fuze-inspect-gen: rank %d hosts no region\n", o->bad_parity);
      else
        m->regions[0].data[m->regions[0].bytes / 2] ^= 0x5a;
    }
    for (int r = 0; r < o->ranks && !rc; r++) rc = write_rank(dir, &ms[r]);
    for (int r = 0; r < o->ranks; r++) fuze__pfile_free(&ms[r]);
  }
  if (!rc && fuze__manifest_write(dir, &man, err))
    rc = fprintf(stderr, "fuze-inspect-gen: %s\n", err);
  fuze__plan_free(&plan);
  return rc ? 1 : 0;
}

static int compare(const char *a, const char *b) {
  fuze_pfile x, y;
  char err[FUZE_MSG_LEN];
  int rc = fuze__pfile_read(a, &x, err);
  if (rc) return fprintf(stderr, "%s\n", err), 1;
  rc = fuze__pfile_read(b, &y, err);
  if (!rc) rc = fuze__pfile_equal(&x, &y, err);
  if (rc)
    fprintf(stderr, "%s\n", err);
  else
    printf("identical models: %s and %s\n", a, b);
  fuze__pfile_free(&x);
  fuze__pfile_free(&y);
  return rc ? 1 : 0;
}

static int flip(const char *path, long long off) {
  int fd = open(path, O_RDWR);
  struct stat st;
  unsigned char c;
  if (fd < 0 || fstat(fd, &st)) return perror(path), 1;
  if (off < 0) off += (long long)st.st_size;
  if (off < 0 || off >= (long long)st.st_size || pread(fd, &c, 1, off) != 1)
    return fprintf(stderr, "%s: offset %lld out of range\n", path, off), 1;
  c ^= 0xff;
  int rc = pwrite(fd, &c, 1, off) != 1;
  close(fd);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--compare")) return compare(argv[2], argv[3]);
  if (argc == 4 && !strcmp(argv[1], "--flip")) return flip(argv[2], strtoll(argv[3], NULL, 0));
  opts o = {6, 2, 1, FUZE_CODE_RS, FUZE_MODE_NONE, -1, 42, 0};
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (a[0] != '-')
      dir = a;
    else if (!v)
      return fprintf(stderr, "fuze-inspect-gen: %s needs a value\n", a), 2;
    else if (!strcmp(a, "--ranks"))
      o.ranks = atoi(v), i++;
    else if (!strcmp(a, "--faults"))
      o.faults = atoi(v), i++;
    else if (!strcmp(a, "--spares"))
      o.spares = atoi(v), i++;
    else if (!strcmp(a, "--seed"))
      o.seed = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--bad-parity"))
      o.bad_parity = atoi(v), i++;
    else if (!strcmp(a, "--chain"))
      o.chain = atoi(v), i++;
    else if (!strcmp(a, "--structs"))
      NS = atoi(v), i++;
    else if (!strcmp(a, "--code")) { /* a code, or a mode over rs (byzantine) */
      int code = fuze__name_value(&fuze__names_code, v), mode = fuze__name_value(&fuze__names_mode, v);
      o.mode = mode > FUZE_MODE_NONE ? mode : FUZE_MODE_NONE;
      o.code = code > 0 ? code : FUZE_CODE_RS, i++;
    }
    else
      return fprintf(stderr, "fuze-inspect-gen: unknown option %s\n", a), 2;
  }
  if (!dir || o.ranks < 1 || o.ranks > MAXR || o.bad_parity >= o.ranks || NS < 1 || NS > MAXS ||
      o.chain < 0 || o.chain > 5 || (o.chain && o.bad_parity >= 0))
    return fprintf(stderr, "usage: fuze-inspect-gen DIR [--ranks N] [--faults F] [--spares S] "
                           "[--code C] [--seed N] [--bad-parity RANK] [--structs N] "
                           "[--chain 1..5] (not --chain with --bad-parity)\n"),
           2;
  return generate(dir, &o);
}
