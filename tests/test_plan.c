/* Unit test of src/plan.c: every property the planner promises, checked by
 * code that does not share the planner's logic (block counts recomputed from
 * group sizes, tolerance by an independent bitmask brute force). */
#include "core/error.h"
#include "core/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXR 4200
#define MAXD 300

static int failures;
static char label[256];

#define EXPECT(cond, ...)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      if (++failures <= 40) {                                               \
        printf("FAIL [%s] %s:%d: ", label, __FILE__, __LINE__);             \
        printf(__VA_ARGS__);                                                \
        printf("\n");                                                       \
      }                                                                     \
    }                                                                       \
  } while (0)

#define EXPECT_INT(what, expected, got)                                     \
  do {                                                                      \
    long long e_ = (expected), g_ = (got);                                  \
    EXPECT(e_ == g_, "%s: expected %lld, got %lld", (what), e_, g_);        \
  } while (0)

typedef struct layout {
  int nranks, ndomains, spares;
  int domain[MAXR];
  int group[MAXR]; /* filled by verify(): position of the rank in its domain */
  int ngroups;
} layout;

/* ---- independent expectations ---- */

static int limit_of(int f, int maxb) {
  if (maxb > 0) return maxb;
  return 256 - f < 32 ? 256 - f : 32;
}

static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* Group of a rank = its position among the ranks of its domain. */
static void compute_groups(layout *L) {
  static int seen[MAXD];
  memset(seen, 0, sizeof seen);
  L->ngroups = 0;
  for (int r = 0; r < L->nranks; r++) {
    L->group[r] = seen[L->domain[r]]++;
    if (L->group[r] + 1 > L->ngroups) L->ngroups = L->group[r] + 1;
  }
}

static int group_of(const layout *L, int r) { return L->group[r]; }

static int is_spare_rank(const layout *L, int r) {
  return L->domain[r] >= L->ndomains - L->spares;
}

/* Blocks expected for group g: n_g ranks, rule of Theorem 5 and the size cap. */
static int expected_group_blocks(const layout *L, int g, int f, int maxb) {
  int n = 0, D = L->ndomains;
  for (int r = 0; r < L->nranks; r++) n += !is_spare_rank(L, r) && group_of(L, r) == g;
  if (n == 0) return 0;
  int a = cdiv(n, D - f), b = cdiv(n, limit_of(f, maxb));
  return a > b ? a : b;
}

static long long binom(int n, int k) {
  long long v = 1;
  for (int i = 1; i <= k; i++) v = v * (n - k + i) / i;
  return v;
}

/* ---- property checks ---- */

static void check_partition(const layout *L, const fuze_plan *p) {
  static int seen[MAXR];
  memset(seen, 0, sizeof seen);
  for (int b = 0; b < p->nblocks; b++) {
    EXPECT(p->block_start[b + 1] > p->block_start[b], "block %d is empty", b);
    if (b > 0)
      EXPECT(p->members[p->block_start[b]] > p->members[p->block_start[b - 1]],
             "block %d first member %d not above block %d's %d", b,
             p->members[p->block_start[b]], b - 1, p->members[p->block_start[b - 1]]);
    for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++) {
      int r = p->members[i];
      EXPECT(r >= 0 && r < L->nranks && !is_spare_rank(L, r), "member %d invalid", r);
      if (r < 0 || r >= L->nranks) continue;
      seen[r]++;
      EXPECT_INT("block_of", b, p->block_of[r]);
      EXPECT_INT("index_in_block", i - p->block_start[b], p->index_in_block[r]);
      if (i > p->block_start[b]) EXPECT(p->members[i - 1] < r, "block %d not ascending", b);
    }
  }
  /* Theorem 6: every primary in exactly one block = in exactly f backups. */
  for (int r = 0; r < L->nranks; r++) {
    EXPECT_INT("times rank is a member", is_spare_rank(L, r) ? 0 : 1, seen[r]);
    if (is_spare_rank(L, r)) {
      EXPECT_INT("spare block_of", -1, p->block_of[r]);
      EXPECT_INT("spare index_in_block", -1, p->index_in_block[r]);
    }
  }
}

/* Blocks per group, balanced sizes, one rank per domain per block. */
static void check_groups(const layout *L, const fuze_plan *p, int f, int maxb) {
  int cap = limit_of(f, maxb) < L->ndomains - f ? limit_of(f, maxb) : L->ndomains - f;
  int total = 0;
  for (int g = 0; g < L->ngroups; g++) {
    int want = expected_group_blocks(L, g, f, maxb), nb = 0, lo = 1 << 30, hi = 0;
    total += want;
    for (int b = 0; b < p->nblocks; b++) {
      if (group_of(L, p->members[p->block_start[b]]) != g) continue;
      int size = p->block_start[b + 1] - p->block_start[b];
      nb++, lo = size < lo ? size : lo, hi = size > hi ? size : hi;
    }
    EXPECT_INT("blocks in group", want, nb);
    if (nb) EXPECT(hi - lo <= 1 && hi <= cap, "group %d sizes %d..%d (cap %d)", g, lo, hi, cap);
  }
  EXPECT_INT("nblocks", total, p->nblocks);
  for (int b = 0; b < p->nblocks; b++) {
    int g0 = group_of(L, p->members[p->block_start[b]]);
    for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++) {
      EXPECT_INT("group of member", g0, group_of(L, p->members[i]));
      for (int k = p->block_start[b]; k < i; k++)
        EXPECT(L->domain[p->members[k]] != L->domain[p->members[i]],
               "block %d holds ranks %d and %d of domain %d", b, p->members[k], p->members[i],
               L->domain[p->members[i]]);
    }
  }
}

/* domuse[d]: 1 = member domain of b, 2 = domain of a backup of b other than skip. */
static void block_domains(const layout *L, const fuze_plan *p, int b, int skip, int *domuse) {
  memset(domuse, 0, sizeof(int) * (size_t)L->ndomains);
  for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++)
    domuse[L->domain[p->members[i]]] = 1;
  for (int j = 0; j < p->f; j++)
    if (j != skip) domuse[L->domain[p->hosts[b * p->f + j]]] = 2;
}

static void check_hosts(const layout *L, const fuze_plan *p) {
  static int domuse[MAXD];
  for (int b = 0; b < p->nblocks; b++) {
    block_domains(L, p, b, -1, domuse);
    int distinct = 0;
    for (int j = 0; j < p->f; j++) {
      int h = p->hosts[b * p->f + j];
      EXPECT(h >= 0 && h < L->nranks, "block %d backup %d host %d invalid", b, j, h);
      if (h < 0 || h >= L->nranks) return;
      for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++)
        EXPECT(L->domain[p->members[i]] != L->domain[h],
               "block %d backup %d on rank %d in member domain %d", b, j, h, L->domain[h]);
      for (int k = 0; k < j; k++) distinct += L->domain[p->hosts[b * p->f + k]] == L->domain[h];
    }
    EXPECT_INT("backups sharing a domain", 0, distinct);
  }
}

/* Balance: a backup's host holds at most one backup more than any rank that
 * could have hosted it instead (domain holds neither a member nor another
 * backup of the block). Spares first: a spare domain the block does not use
 * is never lighter than a compute host of the block. */
static void check_balance(const layout *L, const fuze_plan *p, const int *load) {
  static int domuse[MAXD];
  for (int b = 0; b < p->nblocks; b++) {
    for (int j = 0; j < p->f; j++) {
      int h = p->hosts[b * p->f + j];
      block_domains(L, p, b, j, domuse);
      for (int e = 0; e < L->nranks; e++) {
        if (domuse[L->domain[e]]) continue;
        EXPECT(load[h] <= load[e] + 1, "block %d backup %d on rank %d (load %d), rank %d has %d",
               b, j, h, load[h], e, load[e]);
        if (!is_spare_rank(L, h) && is_spare_rank(L, e))
          EXPECT(load[e] >= load[h],
                 "block %d backup %d on compute rank %d (load %d), spare rank %d has %d", b, j, h,
                 load[h], e, load[e]);
      }
    }
  }
}

/* Independent brute force over every set of <= f domains (bitmasks). */
static long long brute_force(const layout *L, const fuze_plan *p) {
  long long sets = 0;
  int D = L->ndomains;
  for (int k = 1; k <= p->f && k <= D; k++) {
    for (unsigned long m = (1ul << k) - 1; m < (1ul << D);) {
      sets++;
      for (int b = 0; b < p->nblocks; b++) {
        int lost = 0;
        for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++)
          lost += (m >> L->domain[p->members[i]]) & 1;
        for (int j = 0; j < p->f; j++) lost += (m >> L->domain[p->hosts[b * p->f + j]]) & 1;
        EXPECT(lost <= p->f, "domains mask %#lx: block %d loses %d", m, b, lost);
      }
      unsigned long c = m & -m, r = m + c; /* next mask with k bits (Gosper) */
      m = (((r ^ m) >> 2) / c) | r;
    }
  }
  return sets;
}

static void check_tolerance(const layout *L, const fuze_plan *p) {
  int failing[8], nf = -1, bad = -2;
  long long nsets = -1, want = 0;
  int kmax = p->f < L->ndomains ? p->f : L->ndomains;
  for (int k = 1; k <= kmax; k++) want += binom(L->ndomains, k);
  EXPECT_INT("fuze__plan_check", 0, fuze__plan_check(p, failing, &nf));
  EXPECT_INT("nfailing", 0, nf);
  EXPECT_INT("check_detail", 0, fuze__plan_check_detail(p, failing, &nf, &nsets, &bad));
  EXPECT_INT("failure sets", want, nsets);
  EXPECT_INT("bad block", -1, bad);
  if (L->ndomains <= 20) EXPECT_INT("brute-force sets", want, brute_force(L, p));
}

static void verify(layout *L, int f, int maxb) {
  static int load[MAXR];
  int before = failures;
  compute_groups(L);
  fuze_plan_input in = {L->nranks, L->domain, L->ndomains, L->spares, f, maxb};
  fuze_plan p;
  char err[512] = "";
  int rc = fuze__plan_build(&in, &p, err, sizeof err);
  EXPECT_INT("fuze__plan_build", FUZE_SUCCESS, rc);
  if (rc) {
    printf("  message: %s\n", err);
    return;
  }
  EXPECT_INT("plan f", f, p.f);
  int ncompute = 0;
  for (int r = 0; r < L->nranks; r++) ncompute += !is_spare_rank(L, r);
  EXPECT_INT("ncompute", ncompute, p.ncompute);
  memset(load, 0, sizeof load);
  for (int i = 0; i < p.nblocks * f; i++)
    if (p.hosts[i] >= 0 && p.hosts[i] < L->nranks) load[p.hosts[i]]++;
  for (int r = 0; r < L->nranks; r++)
    EXPECT_INT("fuze__plan_load", load[r], fuze__plan_load(&p, r));
  check_partition(L, &p);
  check_groups(L, &p, f, maxb);
  check_hosts(L, &p);
  /* Later checks assume the structure is sound. */
  if (failures == before) check_balance(L, &p, load);
  if (failures == before) check_tolerance(L, &p);
  fuze__plan_free(&p);
  fuze__plan_free(&p); /* a freed plan is accepted again */
}

/* ---- layouts ---- */

/* Domains of consecutive ranks with the given sizes; the last `spares` are spare. */
static void make_layout(layout *L, const int *sizes, int nsizes, int spares) {
  L->nranks = 0, L->ndomains = nsizes, L->spares = spares;
  for (int d = 0; d < nsizes; d++)
    for (int i = 0; i < sizes[d]; i++) L->domain[L->nranks++] = d;
}

static void verify_all_f(layout *L, const char *name) {
  static const int blocks[] = {1, 2, 3, 0};
  for (int f = 1; f <= 4 && f < L->ndomains; f++)
    for (int i = 0; i < 4; i++) {
      snprintf(label, sizeof label, "%s a=%d f=%d block=%d", name, L->spares, f, blocks[i]);
      verify(L, f, blocks[i]);
    }
}

static void test_one_rank_domains(int *cases) {
  static layout L;
  static const int blocks[] = {1, 2, 3, 0};
  for (int n = 1; n <= 12; n++)
    for (int a = 0; a <= 3; a++)
      for (int f = 1; f <= 4; f++) {
        if (n + a <= f) continue;
        for (int i = 0; i < 4; i++) {
          int ones[16];
          for (int d = 0; d < 16; d++) ones[d] = 1;
          make_layout(&L, ones, n + a, a);
          snprintf(label, sizeof label, "n=%d a=%d f=%d block=%d", n, a, f, blocks[i]);
          verify(&L, f, blocks[i]);
          (*cases)++;
          /* Theorem 5 as the paper states it (default block never binds here). */
          if (blocks[i] == 0) {
            fuze_plan_input in = {n + a, L.domain, n + a, a, f, 0};
            fuze_plan p;
            if (fuze__plan_build(&in, &p, NULL, 0) == 0) {
              EXPECT_INT("Theorem 5 backups", cdiv(n, n + a - f) * f, p.nblocks * p.f);
              fuze__plan_free(&p);
            }
          }
        }
      }
}

static void test_multi_rank_domains(int *cases) {
  static layout L;
  struct {
    const char *name;
    int sizes[8], nsizes, spares;
  } t[] = {
      {"4x2", {2, 2, 2, 2}, 4, 0},           {"4x2+1x2", {2, 2, 2, 2, 2}, 5, 1},
      {"3x4", {4, 4, 4}, 3, 0},              {"3x4+1x4", {4, 4, 4, 4}, 4, 1},
      {"3x4+2x4", {4, 4, 4, 4, 4}, 5, 2},    {"3+2+2", {3, 2, 2}, 3, 0},
      {"3+2+2+1", {3, 2, 2, 1}, 4, 1},       {"3+2+2+3", {3, 2, 2, 3}, 4, 1},
      {"1+3+2+4+1", {1, 3, 2, 4, 1}, 5, 0},  {"1+3+2+4+1+2+1", {1, 3, 2, 4, 1, 2, 1}, 7, 2},
      {"6x2", {2, 2, 2, 2, 2, 2}, 6, 0},     {"5x3+1x1", {3, 3, 3, 3, 3, 1}, 6, 1},
      {"2x5", {5, 5}, 2, 0},                 {"2x5+1x5", {5, 5, 5}, 3, 1},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    make_layout(&L, t[i].sizes, t[i].nsizes, t[i].spares);
    verify_all_f(&L, t[i].name);
    *cases += 16;
  }
  /* Domains need not be consecutive ranks: round robin over 4 domains, and
   * a spare domain whose ranks sit between compute ranks. */
  L.nranks = 8, L.ndomains = 4, L.spares = 0;
  for (int r = 0; r < 8; r++) L.domain[r] = r % 4;
  verify_all_f(&L, "round-robin 8 over 4");
  L.nranks = 9, L.ndomains = 3, L.spares = 1;
  for (int r = 0; r < 9; r++) L.domain[r] = (r * 2) % 3;
  verify_all_f(&L, "scattered spare 9 over 3");
  *cases += 32;
}

/* Random layouts with a fixed seed: unequal, scattered domains. */
static void test_random(int *cases) {
  static layout L;
  unsigned long long s = 0x9e3779b97f4a7c15ull;
  for (int t = 0; t < 1500; t++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    int D = 2 + (int)((s >> 33) % 9), a = (int)((s >> 40) % 3), n = D + (int)((s >> 45) % 14);
    if (a >= D) a = D - 1;
    for (int r = 0; r < n; r++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      L.domain[r] = r < D ? r : (int)((s >> 33) % (unsigned)D);
    }
    L.nranks = n, L.ndomains = D, L.spares = a;
    int f = 1 + (int)((s >> 50) % 4), maxb = (int)((s >> 55) % 5);
    if (f >= D) f = D - 1;
    snprintf(label, sizeof label, "random #%d n=%d D=%d a=%d f=%d block=%d", t, n, D, a, f, maxb);
    verify(&L, f, maxb);
    (*cases)++;
  }
}

/* A machine-sized plan: 130 nodes of 32 ranks, 2 of them spare. */
static void test_large(int *cases) {
  static layout L;
  static int sizes[130];
  for (int d = 0; d < 130; d++) sizes[d] = 32;
  make_layout(&L, sizes, 130, 2);
  snprintf(label, sizeof label, "130x32 a=2 f=3");
  verify(&L, 3, 0);
  (*cases)++;
}

/* ---- machine scale: 10^5 and 10^6 ranks ----
 *
 * Size and correctness, not speed (the timings printed are for information;
 * docs/benchmarks.md has the measured ones). The checks above are quadratic or
 * exponential in the ranks, so these use near-linear equivalents written
 * independently of the planner: expected block counts from group sizes,
 * tolerance from "each domain holds at most one of a block's k + f members and
 * backups" (which is what makes any f failed domains cost a block at most f),
 * and balance against the least-loaded domains sorted by load. The digest pins
 * the exact plan: it was computed with the quadratic planner this one replaced
 * (commit af94800), and persisted files store the plan, so a change here would
 * make old checkpoints refuse to restart. */

typedef struct scale_case {
  const char *name;
  int compute, spare, per_domain, f;
  int nblocks;             /* expected */
  unsigned long long hash; /* FNV-1a of block_start, members, hosts */
} scale_case;

static unsigned long long fnv(unsigned long long h, const int *v, int n) {
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 4; k++) h = (h ^ (((unsigned)v[i] >> (8 * k)) & 0xffu)) * 0x100000001b3ull;
  return h;
}

static unsigned long long plan_hash(const fuze_plan *p) {
  unsigned long long h = 0xcbf29ce484222325ull;
  h = fnv(h, p->block_start, p->nblocks + 1);
  h = fnv(h, p->members, p->ncompute);
  return fnv(h, p->hosts, p->nblocks * p->f);
}

/* Domains of K consecutive ranks, compute and spare ranks cut separately (as
 * fuze-plan --domain K). */
static int *scale_domains(const scale_case *c, int *ndom, int *nspare) {
  int n = c->compute + c->spare, K = c->per_domain, ncd = cdiv(c->compute, K);
  int *dom = malloc(sizeof(int) * (size_t)n);
  if (!dom) return NULL;
  for (int r = 0; r < c->compute; r++) dom[r] = r / K;
  for (int s = 0; s < c->spare; s++) dom[c->compute + s] = ncd + s / K;
  *nspare = cdiv(c->spare, K), *ndom = ncd + *nspare;
  return dom;
}

/* Expected blocks and block sizes: group g (rank g of every compute domain,
 * here rank r is in group r % K) holds the compute domains with more than g
 * ranks, and its blocks differ in size by at most one. */
static void scale_sizes(const scale_case *c, const fuze_plan *p, int D) {
  int K = c->per_domain, full = c->compute / K, rest = c->compute % K, f = c->f, want = 0;
  int cap = limit_of(f, 0) < D - f ? limit_of(f, 0) : D - f;
  int *lo = malloc(sizeof(int) * (size_t)K), *hi = calloc((size_t)K, sizeof(int));
  if (!lo || !hi) {
    EXPECT(0, "out of memory");
    free(lo), free(hi);
    return;
  }
  for (int g = 0; g < K; g++) {
    int n = full + (g < rest);
    if (n) want += cdiv(n, D - f) > cdiv(n, 32) ? cdiv(n, D - f) : cdiv(n, 32);
    lo[g] = 1 << 30;
  }
  EXPECT_INT("nblocks (from group sizes)", want, p->nblocks);
  for (int b = 0; b < p->nblocks; b++) {
    int size = p->block_start[b + 1] - p->block_start[b], g = p->members[p->block_start[b]] % K;
    EXPECT(size >= 1 && size <= cap, "block %d has %d members (cap %d)", b, size, cap);
    lo[g] = size < lo[g] ? size : lo[g], hi[g] = size > hi[g] ? size : hi[g];
  }
  for (int g = 0; g < K; g++)
    EXPECT(hi[g] == 0 || hi[g] - lo[g] <= 1, "group %d sizes %d..%d", g, lo[g], hi[g]);
  free(lo), free(hi);
  EXPECT_INT("ncompute", c->compute, p->ncompute);
  /* What every rank stores: 16 bytes per rank and 4 (f + 1) per block. */
  size_t bytes = sizeof(int) * (3 * (size_t)p->nranks + (size_t)p->ncompute +
                                (size_t)p->nblocks * (size_t)(f + 1) + 3);
  EXPECT_INT("fuze__plan_bytes", (long long)bytes, (long long)fuze__plan_bytes(p));
  EXPECT(bytes <= 17 * (size_t)p->nranks, "plan holds %zu bytes for %d ranks", bytes, p->nranks);
}

/* Every compute rank in one block, blocks ascending, and each block's members
 * and backups in k + f distinct domains (the tolerance argument). */
static void scale_structure(const fuze_plan *p, const int *dom, int ncd, int *stamp, int *seen) {
  memset(seen, 0, sizeof(int) * (size_t)p->nranks);
  for (int b = 0; b < p->nblocks; b++) {
    int lo = p->block_start[b], hi = p->block_start[b + 1];
    if (b > 0) EXPECT(p->members[lo] > p->members[p->block_start[b - 1]], "block %d order", b);
    for (int i = lo; i < hi; i++) {
      int r = p->members[i];
      EXPECT(r >= 0 && r < p->nranks && dom[r] < ncd, "block %d member %d", b, r);
      if (r < 0 || r >= p->nranks) return;
      if (i > lo) EXPECT(p->members[i - 1] < r, "block %d not ascending", b);
      seen[r]++;
      EXPECT(p->block_of[r] == b && p->index_in_block[r] == i - lo, "rank %d: block %d index %d",
             r, p->block_of[r], p->index_in_block[r]);
      EXPECT(stamp[dom[r]] != b + 1, "block %d: two members in domain %d", b, dom[r]);
      stamp[dom[r]] = b + 1;
    }
    for (int j = 0; j < p->f; j++) {
      int h = p->hosts[b * p->f + j];
      EXPECT(h >= 0 && h < p->nranks, "block %d backup %d host %d", b, j, h);
      if (h < 0 || h >= p->nranks) return;
      EXPECT(stamp[dom[h]] != b + 1, "block %d backup %d in a used domain %d", b, j, dom[h]);
      stamp[dom[h]] = b + 1;
    }
  }
  for (int r = 0; r < p->nranks; r++) {
    EXPECT_INT("times rank is a member", dom[r] < ncd ? 1 : 0, seen[r]);
    if (dom[r] >= ncd) EXPECT_INT("spare block_of", -1, p->block_of[r]);
  }
}

/* Domains in ascending order of their least-loaded rank (counting sort). */
static void sort_domains(const int *dmin, int lo, int hi, int maxload, int *order) {
  int *cnt = calloc((size_t)maxload + 2, sizeof(int)), at = 0;
  if (!cnt) return;
  for (int d = lo; d < hi; d++) cnt[dmin[d] + 1]++;
  for (int l = 0; l <= maxload; l++) cnt[l + 1] += cnt[l];
  for (int d = lo; d < hi; d++) order[cnt[dmin[d]]++] = d, at++;
  free(cnt);
}

/* The balance and spares-first promises, as check_balance states them. */
static void scale_balance(const fuze_plan *p, const int *dom, int D, int ncd, int *stamp) {
  int n = p->nranks, maxload = 0;
  int *load = calloc((size_t)n, sizeof(int)), *dmin = malloc(sizeof(int) * (size_t)D);
  int *order = malloc(sizeof(int) * (size_t)D);
  if (!load || !dmin || !order) {
    EXPECT(0, "out of memory");
    free(load), free(dmin), free(order);
    return;
  }
  for (int i = 0; i < p->nblocks * p->f; i++) load[p->hosts[i]]++;
  for (int d = 0; d < D; d++) dmin[d] = 1 << 30;
  for (int r = 0; r < n; r++) {
    if (load[r] < dmin[dom[r]]) dmin[dom[r]] = load[r];
    if (load[r] > maxload) maxload = load[r];
  }
  sort_domains(dmin, 0, ncd, maxload, order); /* compute domains, then spare ones */
  sort_domains(dmin, ncd, D, maxload, order + ncd);
  memset(stamp, 0, sizeof(int) * (size_t)D);
  int id = 0;
  for (int b = 0; b < p->nblocks; b++)
    for (int j = 0; j < p->f; j++) {
      int h = p->hosts[b * p->f + j], best = 1 << 30, spare = 1 << 30;
      id++;
      for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++) stamp[dom[p->members[i]]] = id;
      for (int k = 0; k < p->f; k++)
        if (k != j) stamp[dom[p->hosts[b * p->f + k]]] = id;
      for (int i = 0; i < ncd; i++)
        if (stamp[order[i]] != id) {
          best = dmin[order[i]];
          break;
        }
      for (int i = ncd; i < D; i++)
        if (stamp[order[i]] != id) {
          spare = dmin[order[i]];
          break;
        }
      if (spare < best) best = spare;
      EXPECT(load[h] <= best + 1, "block %d backup %d on rank %d (load %d), an eligible rank has %d",
             b, j, h, load[h], best);
      if (dom[h] < ncd)
        EXPECT(spare >= load[h], "block %d backup %d on compute rank %d (load %d), spare has %d", b,
               j, h, load[h], spare);
    }
  free(load), free(dmin), free(order);
}

static void test_scale(void) {
  static const scale_case cases[] = {
      {"10^5 ranks, domain=rank, f=2", 100000, 0, 1, 2, 3125, 0xc0447272983612c8ull},
      {"10^5 ranks + 64 spares, 16 per node, f=3", 100000, 64, 16, 3, 3136, 0x95e11f6b7bb38364ull},
      {"10^6 ranks, domain=rank, f=2", 1000000, 0, 1, 2, 31250, 0xd3944977683bf0c4ull},
      {"10^6 ranks + 256 spares, 128 per node, f=3", 1000000, 256, 128, 3, 31360, 0x6e2de3ab2cac3dd4ull},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const scale_case *c = &cases[i];
    int D = 0, nspare = 0, *dom = scale_domains(c, &D, &nspare);
    int n = c->compute + c->spare;
    int *stamp = calloc((size_t)D, sizeof(int)), *seen = malloc(sizeof(int) * (size_t)n);
    snprintf(label, sizeof label, "%s", c->name);
    EXPECT(dom && stamp && seen, "out of memory");
    fuze_plan_input in = {n, dom, D, nspare, c->f, 0};
    fuze_plan p;
    char err[512] = "";
    clock_t t0 = clock();
    int rc = dom && stamp && seen ? fuze__plan_build(&in, &p, err, sizeof err) : FUZE_ERR_NOMEM;
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    EXPECT_INT("fuze__plan_build", FUZE_SUCCESS, rc);
    if (rc == FUZE_SUCCESS) {
      int before = failures;
      EXPECT_INT("nblocks", c->nblocks, p.nblocks);
      scale_sizes(c, &p, D);
      scale_structure(&p, dom, D - nspare, stamp, seen);
      if (failures == before) scale_balance(&p, dom, D, D - nspare, stamp);
      unsigned long long h = plan_hash(&p);
      EXPECT(h == c->hash, "plan digest %#llx, the previous planner's was %#llx", h, c->hash);
      printf("test_plan: %s: %d blocks, %zu plan bytes (%.1f per rank), built in %.3f s\n", c->name,
             p.nblocks, fuze__plan_bytes(&p), (double)fuze__plan_bytes(&p) / n, secs);
      fuze__plan_free(&p);
    } else {
      printf("  message: %s\n", err);
    }
    free(dom), free(stamp), free(seen);
  }
}

/* ---- exact plans of the paper's examples ---- */

static void expect_blocks(const fuze_plan *p, const char *want) {
  char got[256] = "";
  size_t at = 0;
  for (int b = 0; b < p->nblocks; b++) {
    at += (size_t)snprintf(got + at, sizeof got - at, "[");
    for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++)
      at += (size_t)snprintf(got + at, sizeof got - at, i > p->block_start[b] ? " %d" : "%d",
                             p->members[i]);
    at += (size_t)snprintf(got + at, sizeof got - at, "]");
  }
  EXPECT(strcmp(want, got) == 0, "blocks: expected %s, got %s", want, got);
}

static void test_paper_examples(void) {
  int dom[5] = {0, 1, 2, 3, 4};
  fuze_plan_input in = {5, dom, 5, 0, 3, 0};
  fuze_plan p;
  snprintf(label, sizeof label, "paper n=5 f=3");
  int rc = fuze__plan_build(&in, &p, NULL, 0);
  EXPECT_INT("build", 0, rc);
  if (rc) return;
  EXPECT_INT("nblocks", 3, p.nblocks);
  expect_blocks(&p, "[0 1][2 3][4]");
  EXPECT_INT("backups", 9, p.nblocks * p.f);
  /* A backup in a member's domain must be caught, with a minimal failing set. */
  p.hosts[0] = 0;
  int failing[3] = {-1, -1, -1}, nf = 0, bad = -2;
  long long nsets = 0;
  EXPECT_INT("check of a broken plan", 1, fuze__plan_check_detail(&p, failing, &nf, &nsets, &bad));
  EXPECT_INT("nfailing", 3, nf);
  EXPECT(failing[0] == 0 && failing[1] == 1 && failing[2] == 3, "failing set {%d,%d,%d}",
         failing[0], failing[1], failing[2]);
  EXPECT_INT("bad block", 0, bad);
  fuze__plan_free(&p);

  in = (fuze_plan_input){4, dom, 4, 0, 2, 0};
  snprintf(label, sizeof label, "paper n=4 f=2");
  rc = fuze__plan_build(&in, &p, NULL, 0);
  EXPECT_INT("build", 0, rc);
  if (rc) return;
  expect_blocks(&p, "[0 1][2 3]");
  EXPECT_INT("backups", 4, p.nblocks * p.f);
  fuze__plan_free(&p);
}

/* ---- invalid input: exact code, exact message ---- */

static void expect_error(const char *name, int nranks, const int *dom, int ndom, int spares,
                         int f, int maxb, int code, const char *msg) {
  fuze_plan_input in = {nranks, dom, ndom, spares, f, maxb};
  fuze_plan p;
  char err[512] = "";
  snprintf(label, sizeof label, "invalid: %s", name);
  int rc = fuze__plan_build(&in, &p, err, sizeof err);
  EXPECT_INT("code", code, rc);
  EXPECT(strcmp(err, msg) == 0, "message: expected \"%s\", got \"%s\"", msg, err);
  EXPECT(strcmp(fuze__thread_msg(), msg) == 0, "thread message: got \"%s\"", fuze__thread_msg());
  EXPECT(p.nblocks == 0 && p.hosts == NULL && p.members == NULL, "plan not zeroed on error");
  fuze__plan_free(&p);
}

static void test_invalid(void) {
  static int big[300];
  int seq[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const int C = FUZE_ERR_CONFIG;
  expect_error("too few domains", 3, seq, 3, 1, 3, 0, C,
               "faults=3 needs at least 4 failure domains, got 3 (2 compute + 1 spare)");
  expect_error("f = n", 4, seq, 4, 0, 4, 0, C,
               "faults=4 needs at least 5 failure domains, got 4 (4 compute + 0 spare)");
  expect_error("f = 0", 4, seq, 4, 0, 0, 0, C, "faults=0 must be at least 1");
  expect_error("f < 0", 4, seq, 4, 0, -2, 0, C, "faults=-2 must be at least 1");
  int out_of_range[3] = {0, 1, 5};
  expect_error("domain too big", 3, out_of_range, 3, 0, 1, 0, C,
               "rank 2 has domain 5, outside 0..2 (3 domains)");
  int negative[3] = {0, -1, 1};
  expect_error("negative domain", 3, negative, 3, 0, 1, 0, C,
               "rank 1 has domain -1, outside 0..2 (3 domains)");
  int gap[4] = {0, 0, 2, 3};
  expect_error("empty domain", 4, gap, 4, 0, 1, 0, C, "domain 1 has no ranks (4 domains, 4 ranks)");
  expect_error("all spare", 3, seq, 3, 3, 1, 0, C,
               "spares=3 leaves no compute domain: only 3 failure domains");
  expect_error("spares > domains", 3, seq, 3, 5, 1, 0, C,
               "spares=5 leaves no compute domain: only 3 failure domains");
  expect_error("negative spares", 3, seq, 3, -1, 1, 0, C, "spares=-1 must be >= 0");
  expect_error("block too large f=1", 4, seq, 4, 0, 1, 256, C,
               "block=256 too large for faults=1: GF(2^8) allows at most 255 primaries per block "
               "(k + m <= 256)");
  expect_error("block too large f=3", 8, seq, 8, 0, 3, 254, C,
               "block=254 too large for faults=3: GF(2^8) allows at most 253 primaries per block "
               "(k + m <= 256)");
  expect_error("no ranks", 0, seq, 1, 0, 1, 0, C, "nranks=0: a plan needs at least 1 rank");
  expect_error("no domains", 1, seq, 0, 0, 1, 0, C, "ndomains=0: a plan needs at least 1 domain");
  expect_error("no domain array", 1, NULL, 1, 0, 1, 0, FUZE_ERR_ARG,
               "plan input has no domain array");
  for (int r = 0; r < 300; r++) big[r] = r;
  expect_error("f beyond the field", 300, big, 300, 0, 256, 0, C,
               "faults=256 exceeds GF(2^8): k + m <= 256 allows at most 255 faults");
  /* The largest legal block is accepted; a short error buffer is truncated. */
  fuze_plan_input in = {8, seq, 8, 0, 3, 253};
  fuze_plan p;
  snprintf(label, sizeof label, "block=253 f=3");
  EXPECT_INT("build", 0, fuze__plan_build(&in, &p, NULL, 0));
  fuze__plan_free(&p);
  char small[12];
  in.f = 9;
  EXPECT_INT("short buffer", C, fuze__plan_build(&in, &p, small, sizeof small));
  EXPECT(strcmp(small, "faults=9 ne") == 0, "short buffer holds \"%s\"", small);
  EXPECT_INT("NULL out", FUZE_ERR_ARG, fuze__plan_build(&in, NULL, NULL, 0));
}

int main(void) {
  clock_t t0 = clock();
  int cases = 0;
  test_paper_examples();
  test_invalid();
  test_one_rank_domains(&cases);
  test_multi_rank_domains(&cases);
  test_random(&cases);
  test_large(&cases);
  test_scale();
  printf("test_plan: %d plans verified in %.2f s, %d failure(s)\n", cases,
         (double)(clock() - t0) / CLOCKS_PER_SEC, failures);
  return failures ? 1 : 0;
}
