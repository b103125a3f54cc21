/* Unit tests of src/core/byz.c: replica placement and Fig. 6 (Theorem 7) on one
 * block, exhaustive over the placements of up to f faulty objects among the
 * k (f + 1) unfused copies and the f fused backups, for k = 2..4, f = 1..3,
 * with and without index parts, every fault kind on every object:
 *   RANDOM  a few random bytes changed (data, or index where there is one)
 *   ZERO    the whole object zeroed (data and index)
 *   ALT     internally consistent but different: a copy holds an alternative
 *           state of its primary (the same for all colluding copies of that
 *           primary), a backup the parity (and index replicas) of the
 *           alternative states of all primaries
 *   INDEX   only the index part (a copy's, or one replica at a backup)
 * The corrected state must be the original bit for bit, the faulty objects
 * exactly the corrupted ones. f + 1 independent liars (random bytes on f + 1
 * distinct objects) must be reported UNCORRECTABLE with nothing modified. */
#include "core/byz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEN 48
#define ILEN 12
enum { K_RANDOM, K_ZERO, K_ALT, K_INDEX, K_N };

static int failures;
static long runs;
static uint64_t rng_state = 42;

static uint64_t rng(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

#define CHECK(c, ...)                                                  \
  do {                                                                 \
    if (!(c)) {                                                        \
      if (failures++ < 20) {                                           \
        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);   \
        fprintf(stderr, __VA_ARGS__);                                  \
        fprintf(stderr, "\n");                                         \
      }                                                                \
    }                                                                  \
  } while (0)

typedef struct world {
  int k, f, f1, nobj, ilen;
  fuze_code code;
  unsigned char truth[8][LEN], alt[8][LEN], itruth[8][ILEN], ialt[8][ILEN];
  unsigned char par[4][LEN], apar[4][LEN];
  /* live state */
  unsigned char copy[8 * 4][LEN], icopy[8 * 4][ILEN], parity[4][LEN], ipar[4 * 8][ILEN];
  unsigned char *cp[32], *icp[32], *pp[4], *ipp[32];
  fuze_byz_block blk;
} world;

static void setup(world *w, int k, int f, int ilen) {
  memset(w, 0, sizeof *w);
  w->k = k, w->f = f, w->f1 = f + 1, w->nobj = k * (f + 1) + f, w->ilen = ilen;
  if (fuze__code_init(&w->code, k, f, 0)) abort();
  for (int i = 0; i < k; i++)
    for (int b = 0; b < LEN; b++) {
      w->truth[i][b] = (unsigned char)(rng() | 1);
      w->alt[i][b] = (unsigned char)(w->truth[i][b] ^ (1 + rng() % 255));
    }
  for (int i = 0; i < k; i++)
    for (int b = 0; b < ILEN; b++) {
      w->itruth[i][b] = (unsigned char)rng();
      w->ialt[i][b] = (unsigned char)(w->itruth[i][b] ^ 0x5a);
    }
  unsigned char *src[8], *dst[4];
  for (int i = 0; i < k; i++) src[i] = w->truth[i];
  for (int j = 0; j < f; j++) dst[j] = w->par[j];
  fuze__code_encode(&w->code, src, dst, LEN);
  for (int i = 0; i < k; i++) src[i] = w->alt[i];
  for (int j = 0; j < f; j++) dst[j] = w->apar[j];
  fuze__code_encode(&w->code, src, dst, LEN);
  for (int x = 0; x < k * w->f1; x++) w->cp[x] = w->copy[x], w->icp[x] = w->icopy[x];
  for (int j = 0; j < f; j++) w->pp[j] = w->parity[j];
  for (int x = 0; x < f * k; x++) w->ipp[x] = w->ipar[x];
  w->blk = (fuze_byz_block){k, f, &w->code, LEN, w->cp, w->pp, (size_t)ilen,
                            ilen ? w->icp : NULL, ilen ? w->ipp : NULL};
}

static void reset(world *w) {
  for (int i = 0; i < w->k; i++)
    for (int c = 0; c < w->f1; c++) {
      memcpy(w->copy[i * w->f1 + c], w->truth[i], LEN);
      memcpy(w->icopy[i * w->f1 + c], w->itruth[i], ILEN);
    }
  for (int j = 0; j < w->f; j++) {
    memcpy(w->parity[j], w->par[j], LEN);
    for (int i = 0; i < w->k; i++) memcpy(w->ipar[j * w->k + i], w->itruth[i], ILEN);
  }
}

static int exact(const world *w) {
  for (int x = 0; x < w->k * w->f1; x++) {
    if (memcmp(w->copy[x], w->truth[x / w->f1], LEN)) return 0;
    if (w->ilen && memcmp(w->icopy[x], w->itruth[x / w->f1], ILEN)) return 0;
  }
  for (int j = 0; j < w->f; j++) {
    if (memcmp(w->parity[j], w->par[j], LEN)) return 0;
    for (int i = 0; w->ilen && i < w->k; i++)
      if (memcmp(w->ipar[j * w->k + i], w->itruth[i], ILEN)) return 0;
  }
  return 1;
}

/* Corrupt object x (copies first, then backups) with kind. */
static void corrupt(world *w, int x, int kind) {
  int copy = x < w->k * w->f1, i = copy ? x / w->f1 : -1, j = copy ? -1 : x - w->k * w->f1;
  unsigned char *d = copy ? w->copy[x] : w->parity[j];
  switch (kind) {
    case K_RANDOM: {
      int n = 1 + (int)(rng() % 3), at = (int)(rng() % LEN); /* n distinct bytes */
      for (int b = 0; b < n; b++) d[(at + 7 * b) % LEN] ^= (unsigned char)(1 + rng() % 255);
      break;
    }
    case K_ZERO:
      memset(d, 0, LEN);
      if (copy) memset(w->icopy[x], 0, ILEN);
      else
        for (int q = 0; q < w->k; q++) memset(w->ipar[j * w->k + q], 0, ILEN);
      break;
    case K_ALT:
      if (copy) {
        memcpy(d, w->alt[i], LEN);
        if (w->ilen) memcpy(w->icopy[x], w->ialt[i], ILEN);
      } else {
        memcpy(d, w->apar[j], LEN);
        for (int q = 0; w->ilen && q < w->k; q++) memcpy(w->ipar[j * w->k + q], w->ialt[q], ILEN);
      }
      break;
    case K_INDEX:
      if (copy) w->icopy[x][rng() % ILEN] ^= (unsigned char)(1 + rng() % 255);
      else w->ipar[j * w->k + (int)(rng() % (uint64_t)w->k)][rng() % ILEN] ^= (unsigned char)(1 + rng() % 255);
      break;
  }
}

static int run_case(world *w, const int *objs, const int *kinds, int n, unsigned char *bad,
                    int *truth, fuze_byz_result *r) {
  reset(w);
  for (int s = 0; s < n; s++) corrupt(w, objs[s], kinds[s]);
  memset(r, 0, sizeof *r);
  r->bad = bad;
  r->truth = truth;
  runs++;
  return fuze__byz_check_block(&w->blk, r, 1);
}

static void describe(const world *w, const int *objs, const int *kinds, int n, char *buf, size_t len) {
  static const char *kn[] = {"random", "zero", "alt", "index"};
  size_t p = (size_t)snprintf(buf, len, "k=%d f=%d ilen=%d:", w->k, w->f, w->ilen);
  for (int s = 0; s < n && p < len; s++)
    p += (size_t)snprintf(buf + p, len - p, " obj%d=%s", objs[s], kn[kinds[s]]);
}

/* Every subset of <= f objects, every assignment of kinds. */
static void exhaustive(int k, int f, int ilen) {
  world *w = malloc(sizeof *w);
  setup(w, k, f, ilen);
  int nk = ilen ? K_N : K_INDEX;
  unsigned char bad[64];
  int truth[8], objs[4], kinds[4];
  fuze_byz_result r;
  reset(w);
  CHECK(run_case(w, objs, kinds, 0, bad, truth, &r) == FUZE_BYZ_CLEAN && exact(w), "clean block");
  for (int n = 1; n <= f; n++) {
    for (int s = 0; s < n; s++) objs[s] = s;
    for (;;) {
      int combos = 1;
      for (int s = 0; s < n; s++) combos *= nk;
      for (int c = 0; c < combos; c++) {
        for (int s = 0, v = c; s < n; s++, v /= nk) kinds[s] = v % nk;
        int st = run_case(w, objs, kinds, n, bad, truth, &r);
        char d[256];
        describe(w, objs, kinds, n, d, sizeof d);
        CHECK(st == FUZE_BYZ_CORRECTED, "%s: status %d (%s)", d, st, r.msg);
        CHECK(exact(w), "%s: corrected state differs from the original", d);
        int want = 1;
        for (int s = 0; s < n; s++) want &= bad[objs[s]] == 1;
        int nb = 0;
        for (int x = 0; x < w->nobj; x++) nb += bad[x];
        CHECK(want && nb == n, "%s: faulty objects %d, expected exactly the %d corrupted", d, nb, n);
      }
      int s = n - 1; /* next subset */
      while (s >= 0 && objs[s] == w->nobj - n + s) s--;
      if (s < 0) break;
      objs[s]++;
      for (int q = s + 1; q < n; q++) objs[q] = objs[q - 1] + 1;
    }
  }
  /* f + 1 independent liars: random bytes on f + 1 distinct objects. */
  for (int rep = 0; rep < 400; rep++) {
    int n = f + 1;
    for (int s = 0; s < n; s++) {
      int o, dup;
      do {
        o = (int)(rng() % (uint64_t)w->nobj);
        dup = 0;
        for (int q = 0; q < s; q++) dup |= objs[q] == o;
      } while (dup);
      objs[s] = o;
      kinds[s] = K_RANDOM;
    }
    reset(w);
    for (int s = 0; s < n; s++) corrupt(w, objs[s], kinds[s]);
    world *before = malloc(sizeof *before);
    memcpy(before, w, sizeof *w);
    memset(&r, 0, sizeof r);
    r.bad = bad;
    r.truth = truth;
    runs++;
    int st = fuze__byz_check_block(&w->blk, &r, 1);
    char d[256];
    describe(w, objs, kinds, n, d, sizeof d);
    CHECK(st == FUZE_BYZ_UNCORRECTABLE, "%s: f+1 liars gave status %d (%s)", d, st, r.msg);
    CHECK(!memcmp(before->copy, w->copy, sizeof w->copy) && !memcmp(before->parity, w->parity, sizeof w->parity) &&
              !memcmp(before->icopy, w->icopy, sizeof w->icopy) && !memcmp(before->ipar, w->ipar, sizeof w->ipar),
          "%s: uncorrectable block was modified", d);
    free(before);
  }
  fuze__code_free(&w->code);
  free(w);
}

static void test_decode_byte(void) {
  world *w = malloc(sizeof *w);
  setup(w, 4, 3, 0);
  unsigned char *src[8];
  for (int i = 0; i < 4; i++) src[i] = w->truth[i];
  for (int c = 0; c < 4; c++)
    for (int j = 0; j < 3; j++)
      for (size_t b = 0; b < LEN; b++)
        CHECK(fuze__byz_decode_byte(&w->code, j, c, src, w->par[j], b) == w->truth[c][b],
              "decode c=%d j=%d byte %zu", c, j, b);
  fuze__code_free(&w->code);
  free(w);
}

static void test_place(void) {
  int dom[64], out[64 * 4];
  for (int layout = 0; layout < 3; layout++)
    for (int nd = 2; nd <= 8; nd++)
      for (int f = 1; f < nd && f <= 4; f++) {
        int n = 0;
        for (int d = 0; d < nd; d++) {
          int per = layout == 0 ? 1 : layout == 1 ? 3 : 1 + d % 3;
          for (int q = 0; q < per; q++) dom[n++] = d;
        }
        CHECK(fuze__byz_place(dom, n, nd, f, out) == 0, "place nd=%d f=%d", nd, f);
        for (int r = 0; r < n; r++)
          for (int c = 0; c < f; c++) {
            int h = out[r * f + c];
            CHECK(h >= 0 && h < n && dom[h] != dom[r], "replica %d of rank %d on rank %d, same domain", c + 1, r, h);
            for (int e = 0; e < c; e++)
              CHECK(dom[out[r * f + e]] != dom[h], "replicas of rank %d share domain %d", r, dom[h]);
          }
      }
  CHECK(fuze__byz_place(dom, 4, 2, 2, out) == -1, "needs ndomains > f");
}

int main(void) {
  test_place();
  test_decode_byte();
  for (int f = 1; f <= 3; f++)
    for (int k = 2; k <= 4; k++)
      for (int ilen = 0; ilen <= ILEN; ilen += ILEN) exhaustive(k, f, ilen);
  printf("test_byz: %ld block checks, %d failure(s)\n", runs, failures);
  return failures ? 1 : 0;
}
