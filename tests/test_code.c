/* Unit tests of src/core/code.c: exhaustive erasure decoding, the incremental-update
 * identity, error paths, and the XOR / scaling kernels against references
 * computed another way (byte loops, ISA-L's scalar gf_mul).
 * Usage: test_code [--seed N] | test_code --bench */
#define _POSIX_C_SOURCE 200809L
#include <isa-l/erasure_code.h>
#include <isa-l/gf_vect_mul.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/code.h"
#include "core/error.h"

#define BIG_LEN ((size_t)(1 << 20) + 3)
#define MAXN 20 /* k + m in the exhaustive sweep */

static uint64_t seed, rng_state;
static int failures;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void fill(unsigned char *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t r = rnd();
    memcpy(p + i, &r, 8);
  }
  for (; i < n; i++) p[i] = (unsigned char)rnd();
}

#define FAIL(...)                                                                    \
  do {                                                                               \
    if (failures++ < 20) {                                                           \
      fprintf(stderr, "FAIL %s:%d seed=%llu: ", __FILE__, __LINE__,                 \
              (unsigned long long)seed);                                             \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fputc('\n', stderr);                                                           \
    }                                                                                \
  } while (0)

/* Compare two buffers; on mismatch report the first differing byte after
 * the caller's context (a printf-style string). */
static int same(const unsigned char *got, const unsigned char *want, size_t n,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int same(const unsigned char *got, const unsigned char *want, size_t n,
                const char *fmt, ...) {
  if (n == 0 || memcmp(got, want, n) == 0) return 1;
  size_t i = 0;
  while (got[i] == want[i]) i++;
  char ctx[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx, sizeof ctx, fmt, ap);
  va_end(ap);
  FAIL("%s: byte %zu of %zu got 0x%02x want 0x%02x", ctx, i, n, got[i], want[i]);
  return 0;
}

/* Members of one block: k+m buffers at deliberately odd offsets. */
typedef struct block {
  int k, m;
  size_t len;
  unsigned char *raw[MAXN], *orig[MAXN], *work[MAXN];
} block;

static void block_make(block *b, const fuze_code *c, size_t len) {
  b->k = c->k, b->m = c->m, b->len = len;
  for (int s = 0; s < c->k + c->m; s++) {
    b->raw[s] = malloc(2 * (len + 64));
    b->orig[s] = b->raw[s] + (s * 7) % 32;
    b->work[s] = b->raw[s] + len + 64 + (s * 13) % 32;
  }
  for (int i = 0; i < c->k; i++) fill(b->orig[i], len);
  fuze__code_encode(c, b->orig, b->orig + c->k, len);
  for (int s = 0; s < c->k + c->m; s++) memcpy(b->work[s], b->orig[s], len);
}

static void block_free(block *b) {
  for (int s = 0; s < b->k + b->m; s++) free(b->raw[s]);
}

/* Reference encode through ISA-L's scalar gf_mul, byte by byte. */
static void check_encode_ref(const fuze_code *c, const block *b, size_t n) {
  for (int j = 0; j < c->m; j++)
    for (size_t p = 0; p < n; p++) {
      unsigned char want = 0;
      for (int i = 0; i < c->k; i++) want ^= gf_mul(fuze__code_coef(c, j, i), b->orig[i][p]);
      if (b->orig[c->k + j][p] != want) {
        FAIL("encode k=%d m=%d backup %d byte %zu got 0x%02x want 0x%02x", c->k, c->m, j, p,
             b->orig[c->k + j][p], want);
        return;
      }
    }
}

/* Rows must be the survivors, primaries first, then backups in order. */
static void check_rows(const fuze_code *c, const unsigned char *erased, const int *rows,
                       unsigned long mask) {
  int s = 0;
  for (int r = 0; r < c->k + c->m && s < c->k; r++)
    if (!erased[r] && rows[s++] != r)
      FAIL("rows k=%d m=%d erased=0x%lx: rows[%d]=%d want %d", c->k, c->m, mask, s - 1,
           rows[s - 1], r);
}

/* Erase the members in mask (poison them), decode, compare all to the original. */
static void decode_one(const fuze_code *c, block *b, unsigned long mask) {
  int n = c->k + c->m, rows[MAXN];
  unsigned char erased[MAXN], D[MAXN * MAXN];
  for (int s = 0; s < n; s++) {
    erased[s] = (mask >> s) & 1;
    if (erased[s]) memset(b->work[s], 0xA5, b->len);
  }
  if (fuze__code_decode_matrix(c, erased, rows, D) != FUZE_SUCCESS)
    FAIL("decode_matrix k=%d m=%d erased=0x%lx: %s", c->k, c->m, mask, fuze__thread_msg());
  else
    check_rows(c, erased, rows, mask);
  int rc = fuze__code_decode(c, erased, b->work, b->len);
  if (rc != FUZE_SUCCESS)
    FAIL("decode k=%d m=%d erased=0x%lx len=%zu rc=%d", c->k, c->m, mask, b->len, rc);
  for (int s = 0; s < n; s++)
    if (!same(b->work[s], b->orig[s], b->len, "decode k=%d m=%d len=%zu erased=0x%lx member %d",
              c->k, c->m, b->len, mask, s))
      memcpy(b->work[s], b->orig[s], b->len); /* keep later patterns meaningful */
}

static unsigned long random_pattern(int n, int e) {
  unsigned long mask = 0;
  while (__builtin_popcountl(mask) < e) mask |= 1UL << (rnd() % (unsigned)n);
  return mask;
}

static void test_decode_sweep(void) {
  static const size_t lens[] = {0, 1, 63, 4097, BIG_LEN};
  long patterns = 0;
  for (int k = 1; k <= 16; k++)
    for (int m = 1; m <= 4; m++) {
      fuze_code c;
      if (fuze__code_init(&c, k, m, FUZE_CODE_RS) != FUZE_SUCCESS) {
        FAIL("init k=%d m=%d: %s", k, m, fuze__thread_msg());
        continue;
      }
      int n = k + m;
      for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        block b;
        block_make(&b, &c, lens[li]);
        if (lens[li] == 63) check_encode_ref(&c, &b, 63);
        if (lens[li] != BIG_LEN || k <= 4) { /* every pattern of <= m erasures */
          for (unsigned long mask = 0; mask < (1UL << n); mask++)
            if (__builtin_popcountl(mask) <= m) decode_one(&c, &b, mask), patterns++;
        } else { /* long buffers for large k: a few random full-strength patterns */
          decode_one(&c, &b, (1UL << m) - 1), patterns++; /* the first m primaries */
          for (int t = 0; t < 2; t++) decode_one(&c, &b, random_pattern(n, m)), patterns++;
        }
        block_free(&b);
      }
      fuze__code_free(&c);
    }
  printf("decode sweep: %ld patterns\n", patterns);
}

/* encode(new) == encode(old) ^ delta_encode(old ^ new) for every primary i. */
static void incremental_one(const fuze_code *c, size_t len) {
  block b;
  block_make(&b, c, len);
  unsigned char *delta = malloc(len + 1), *prod[MAXN], *fresh[MAXN];
  for (int j = 0; j < c->m; j++) prod[j] = malloc(len + 1), fresh[j] = malloc(len + 1);
  for (int i = 0; i < c->k; i++) {
    fill(b.work[i], len); /* new data of primary i */
    fuze__xor3(delta, b.orig[i], b.work[i], len);
    fuze__code_delta_encode(c, i, delta, len, prod);
    for (int j = 0; j < c->m; j++) fuze__xor_into(b.orig[c->k + j], prod[j], len);
    memcpy(b.orig[i], b.work[i], len);
    fuze__code_encode(c, b.orig, fresh, len);
    for (int j = 0; j < c->m; j++)
      same(b.orig[c->k + j], fresh[j], len, "incremental k=%d m=%d primary %d backup %d", c->k,
           c->m, i, j);
    if (len <= 4097) /* products against the scalar reference */
      for (int j = 0; j < c->m; j++)
        for (size_t p = 0; p < len; p++)
          if (prod[j][p] != gf_mul(fuze__code_coef(c, j, i), delta[p])) {
            FAIL("delta_encode k=%d m=%d i=%d j=%d len=%zu byte %zu got 0x%02x want 0x%02x",
                 c->k, c->m, i, j, len, p, prod[j][p], gf_mul(fuze__code_coef(c, j, i), delta[p]));
            break;
          }
  }
  for (int j = 0; j < c->m; j++) free(prod[j]), free(fresh[j]);
  free(delta);
  block_free(&b);
}

static void test_incremental(void) {
  static const int ks[] = {1, 2, 3, 5, 8, 16};
  static const size_t lens[] = {0, 1, 63, 4097, BIG_LEN};
  for (size_t a = 0; a < sizeof ks / sizeof *ks; a++)
    for (int m = 1; m <= 4; m++)
      for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
        if (lens[l] == BIG_LEN && ks[a] > 3) continue;
        fuze_code c;
        fuze__code_init(&c, ks[a], m, FUZE_CODE_RS);
        incremental_one(&c, lens[l]);
        fuze__code_free(&c);
      }
  for (int m = 1; m <= 4; m++) { /* replication: products are copies */
    fuze_code c;
    fuze__code_init(&c, 1, m, FUZE_CODE_REPLICATE);
    incremental_one(&c, 4097);
    fuze__code_free(&c);
  }
}

static void expect_rc(int got, int want, const char *what) {
  if (got != want) FAIL("%s: rc=%d want %d", what, got, want);
  else if (want != FUZE_SUCCESS && fuze__thread_msg()[0] == '\0')
    FAIL("%s: no message recorded", what);
  else if (want != FUZE_SUCCESS)
    printf("  %s -> \"%s\"\n", what, fuze__thread_msg());
  fuze__thread_msg()[0] = '\0';
}

static void test_config(void) {
  static const struct { int k, m, kind; const char *what; } bad[] = {
      {0, 1, FUZE_CODE_RS, "k=0"},         {4, 0, FUZE_CODE_RS, "m=0"},
      {-1, 2, FUZE_CODE_RS, "k=-1"},       {200, 60, FUZE_CODE_RS, "k=200 m=60"},
      {256, 1, FUZE_CODE_RS, "k=256 m=1"}, {4, 2, FUZE_CODE_XOR, "xor m=2"},
      {2, 1, FUZE_CODE_REPLICATE, "replicate k=2"}, {4, 1, 7, "kind=7"}};
  for (size_t t = 0; t < sizeof bad / sizeof *bad; t++) {
    fuze_code c;
    expect_rc(fuze__code_init(&c, bad[t].k, bad[t].m, bad[t].kind), FUZE_ERR_CONFIG, bad[t].what);
    fuze__code_free(&c);
  }
  fuze_code c;
  expect_rc(fuze__code_init(&c, 255, 1, FUZE_CODE_RS), FUZE_SUCCESS, "k=255 m=1");
  fuze__code_free(&c);
  expect_rc(fuze__code_init(&c, 128, 128, FUZE_CODE_RS), FUZE_SUCCESS, "k=128 m=128");
  fuze__code_free(&c);
  fuze__code_free(&c); /* freeing twice is allowed */
}

static void test_coefficients(void) {
  for (int k = 1; k <= 255; k++) { /* m == 1 is XOR whatever the kind */
    fuze_code c;
    fuze__code_init(&c, k, 1, k % 2 ? FUZE_CODE_RS : FUZE_CODE_XOR);
    for (int i = 0; i < k; i++)
      if (fuze__code_coef(&c, 0, i) != 1) FAIL("m=1 k=%d coef[%d]=%d", k, i, c.coef[i]);
    fuze__code_free(&c);
  }
  for (int m = 1; m <= 8; m++) {
    fuze_code c;
    fuze__code_init(&c, 1, m, FUZE_CODE_REPLICATE);
    for (int j = 0; j < m; j++)
      if (fuze__code_coef(&c, j, 0) != 1) FAIL("replicate m=%d coef[%d]=%d", m, j, c.coef[j]);
    fuze__code_free(&c);
  }
  fuze_code c; /* RS m >= 2: Cauchy 1 / ((k + j) ^ i) */
  fuze__code_init(&c, 10, 4, FUZE_CODE_RS);
  for (int j = 0; j < 4; j++)
    for (int i = 0; i < 10; i++)
      if (gf_mul(fuze__code_coef(&c, j, i), (unsigned char)((10 + j) ^ i)) != 1)
        FAIL("cauchy coef[%d][%d]=%d", j, i, fuze__code_coef(&c, j, i));
  fuze__code_free(&c);
}

/* More than m erasures: refused, nothing written. */
static void test_unrecoverable(void) {
  fuze_code c;
  fuze__code_init(&c, 4, 2, FUZE_CODE_RS);
  block b;
  block_make(&b, &c, 100);
  unsigned char erased[6] = {1, 0, 1, 0, 0, 1}, D[16];
  int rows[4];
  expect_rc(fuze__code_decode_matrix(&c, erased, rows, D), FUZE_ERR_UNRECOVERABLE,
            "3 of k=4+m=2 lost (matrix)");
  expect_rc(fuze__code_decode(&c, erased, b.work, 100), FUZE_ERR_UNRECOVERABLE,
            "3 of k=4+m=2 lost (decode)");
  for (int s = 0; s < 6; s++) same(b.work[s], b.orig[s], 100, "refused decode left member %d untouched", s);
  block_free(&b);
  fuze__code_free(&c);
}

static void test_xor(void) {
  static const size_t offs[] = {0, 1, 7, 8, 16, 31};
  static const size_t lens[] = {0, 1, 7, 8, 31, 33, 127, 128, 129, 300, 1000, 4099, 70001};
  size_t cap = 70001 + 64;
  unsigned char *a = malloc(cap), *b = malloc(cap), *d = malloc(cap), *want = malloc(cap);
  for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
    for (size_t x = 0; x < 6; x++)
      for (size_t y = 0; y < 6; y++)
        for (size_t z = 0; z < 6; z++) {
          size_t n = lens[l];
          unsigned char *pa = a + offs[x], *pb = b + offs[y], *pd = d + offs[z];
          fill(pa, n + 1), fill(pb, n + 1), fill(pd, n + 1);
          unsigned char guard = pd[n];
          for (size_t p = 0; p < n; p++) want[p] = pa[p] ^ pb[p];
          fuze__xor3(pd, pa, pb, n);
          same(pd, want, n, "xor3 a+%zu b+%zu dst+%zu", offs[x], offs[y], offs[z]);
          for (size_t p = 0; p < n; p++) want[p] = pd[p] ^ pa[p];
          fuze__xor_into(pd, pa, n);
          same(pd, want, n, "xor_into src+%zu dst+%zu", offs[x], offs[z]);
          for (size_t p = 0; p < n; p++) want[p] = pa[p] ^ pb[p];
          fuze__xor3(pb, pa, pb, n); /* dst == b */
          same(pb, want, n, "xor3 in place a+%zu b+%zu", offs[x], offs[y]);
          if (pd[n] != guard) FAIL("xor wrote past the end: n=%zu dst+%zu", n, offs[z]);
        }
  free(a), free(b), free(d), free(want);
}

static void test_scale(void) {
  static const size_t lens[] = {0, 1, 31, 63, 64, 65, 127, 129, 4099, 9000};
  unsigned char *in = malloc(9000 + 64), *out = malloc(9000 + 64), *want = malloc(9000);
  for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
    for (int coef = 0; coef < 256; coef++) {
      size_t n = lens[l], oi = (size_t)coef % 32, oo = (size_t)coef * 7 % 32;
      unsigned char *pi = in + oi, *po = out + oo;
      fill(pi, n);
      for (size_t p = 0; p < n; p++) want[p] = gf_mul((unsigned char)coef, pi[p]);
      fuze__gf_scale((unsigned char)coef, pi, po, n);
      same(po, want, n, "gf_scale coef=%d in+%zu out+%zu", coef, oi, oo);
      fuze__gf_scale((unsigned char)coef, pi, pi, n); /* in place */
      same(pi, want, n, "gf_scale in place coef=%d at +%zu", coef, oi);
    }
  free(in), free(out), free(want);
}

/* Small chunks reach the > INT_MAX path: results must not change. */
static void test_chunked(void) {
  size_t old = fuze__code_chunk_bytes(256), len = 5 * 256 + 77;
  fuze_code c;
  fuze__code_init(&c, 5, 3, FUZE_CODE_RS);
  block b;
  block_make(&b, &c, len); /* encoded with 256-byte chunks */
  check_encode_ref(&c, &b, len);
  decode_one(&c, &b, 0x83); /* primaries 0, 1 and backup 2 */
  decode_one(&c, &b, 0x1c);
  fuze__code_chunk_bytes(old);
  incremental_one(&c, len); /* default chunks vs encode above... */
  fuze__code_chunk_bytes(256);
  incremental_one(&c, len); /* ...and chunked */
  fuze__code_chunk_bytes(old);
  block_free(&b);
  fuze__code_free(&c);
  fuze__code_chunk_bytes(128);
  test_scale();
  test_xor();
  fuze__code_chunk_bytes(old);
}

/* ---- benchmark ---------------------------------------------------------- */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef void (*bench_fn)(void *arg);

/* Median over 11 runs of GB/s moving `bytes` per call (the VM is noisy). */
static double gbps(bench_fn fn, void *arg, size_t bytes) {
  double r[11];
  int iters = 64;
  for (int t = 0; t < 11; t++) {
    fn(arg); /* warm */
    double t0 = now();
    for (int i = 0; i < iters; i++) fn(arg);
    r[t] = (double)bytes * iters / (now() - t0) / 1e9;
  }
  for (int i = 0; i < 11; i++) /* insertion sort for the median */
    for (int j = i; j > 0 && r[j] < r[j - 1]; j--) {
      double x = r[j];
      r[j] = r[j - 1], r[j - 1] = x;
    }
  return r[5];
}

typedef struct bench {
  int m;
  size_t len;
  unsigned char *delta, *prod[4], coefs[4], tbl_ec[4 * 32], tbl_mul[4][32], tbl_rest[4 * 32];
  fuze_code *c;
  unsigned char *a, *b, *d;
} bench;

static void run_ec(void *p) {
  bench *B = p;
  ec_encode_data((int)B->len, 1, B->m, B->tbl_ec, &B->delta, B->prod);
}
static void run_mul(void *p) {
  bench *B = p;
  for (int j = 0; j < B->m; j++) gf_vect_mul((int)B->len, B->tbl_mul[j], B->delta, B->prod[j]);
}
static void run_split(void *p) { /* row 0 has coefficient 1: memcpy + the rest in one pass */
  bench *B = p;
  memcpy(B->prod[0], B->delta, B->len);
  ec_encode_data((int)B->len, 1, B->m - 1, B->tbl_rest, &B->delta, B->prod + 1);
}
static void run_lib(void *p) {
  bench *B = p;
  fuze__code_delta_encode(B->c, 0, B->delta, B->len, B->prod);
}
static void run_memcpy(void *p) {
  bench *B = p;
  memcpy(B->prod[0], B->delta, B->len);
}
static void run_xor(void *p) {
  bench *B = p;
  fuze__xor3(B->d, B->a, B->b, B->len);
}

static unsigned char *aligned(size_t n) {
  void *p = NULL;
  return posix_memalign(&p, 64, n) ? NULL : p;
}

static int run_bench(void) {
  bench B = {.len = (size_t)1 << 20};
  B.delta = aligned(B.len + 64);
  for (int j = 0; j < 4; j++) B.prod[j] = aligned(B.len + 64);
  fill(B.delta, B.len);
  printf("delta-encode of a 1 MiB delta, GB/s of delta (median of 11)\n"
         "  ec: ec_encode_data, 1 source, m rows in one pass; mul: gf_vect_mul, one pass per\n"
         "  product; split: memcpy of a coefficient-1 row + ec of the other m-1 (m=1: memcpy);\n"
         "  lib: fuze__code_delta_encode, k=8, primary 0\n"
         "  m      ec     mul   split     lib\n");
  for (int m = 1; m <= 3; m++) {
    B.m = m;
    for (int j = 0; j < m; j++) { /* arbitrary coefficients != 0, 1 */
      B.coefs[j] = (unsigned char)(0x8e + 17 * j);
      gf_vect_mul_init(B.coefs[j], B.tbl_mul[j]);
    }
    ec_init_tables(1, m, B.coefs, B.tbl_ec);
    if (m > 1) ec_init_tables(1, m - 1, B.coefs + 1, B.tbl_rest);
    fuze_code c;
    fuze__code_init(&c, 8, m, FUZE_CODE_RS);
    B.c = &c;
    double e = gbps(run_ec, &B, B.len), v = gbps(run_mul, &B, B.len);
    double s = m > 1 ? gbps(run_split, &B, B.len) : gbps(run_memcpy, &B, B.len);
    printf("  %d  %6.1f  %6.1f  %6.1f  %6.1f\n", m, e, v, s, gbps(run_lib, &B, B.len));
    fuze__code_free(&c);
  }
  B.a = B.prod[1], B.b = B.prod[2], B.d = B.prod[3];
  fill(B.a, B.len), fill(B.b, B.len);
  printf("fuze__xor3 1 MiB, GB/s of output: aligned %.1f", gbps(run_xor, &B, B.len));
  B.a += 8;
  printf(", mismatched (a at +8) %.1f\n", gbps(run_xor, &B, B.len));
  free(B.delta);
  for (int j = 0; j < 4; j++) free(B.prod[j]);
  return 0;
}

int main(int argc, char **argv) {
  seed = (uint64_t)time(NULL);
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--bench")) return run_bench();
    if (!strcmp(argv[a], "--seed") && a + 1 < argc) seed = strtoull(argv[++a], NULL, 0);
  }
  rng_state = seed;
  printf("test_code seed=%llu (rerun with --seed %llu)\n", (unsigned long long)seed,
         (unsigned long long)seed);
  double t0 = now();
  test_config();
  test_coefficients();
  test_unrecoverable();
  test_xor();
  test_scale();
  test_chunked();
  test_incremental();
  test_decode_sweep();
  printf("%s: %d failure(s) in %.1f s\n", failures ? "FAILED" : "ok", failures, now() - t0);
  return failures ? 1 : 0;
}
