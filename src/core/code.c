/* code: Reed-Solomon / XOR / replication over GF(2^8), all arithmetic in ISA-L.
 *
 * Kernel choice for delta-encode, from `test_code --bench` (1 MiB delta, one
 * core of the 2-vCPU Zen 5 VM, ISA-L 2.30 dispatching to its AVX-512 kernels;
 * GB/s of delta, median of 11, typical of three runs):
 *       ec_encode_data  gf_vect_mul     memcpy of a coef-1 row
 *       1 src, m rows   1 pass/product  + ec of the other m-1
 *   m=1      43.9           27.9            47.8 (plain memcpy)
 *   m=2      26.1           13.9            22.6
 *   m=3      17.9            9.3            16.9
 * ec_encode_data makes all m products in one pass over the delta and takes any
 * length and alignment; gf_vect_mul (128-bit only in 2.30) makes one pass per
 * product and needs 32-byte aligned pointers and lengths. So every product, and
 * gf_scale, goes through ec_encode_data. A coefficient-1 row is not split out
 * (no faster, see the split column); memcpy only when all m coefficients are 1.
 *
 * XOR uses xor_gen (3 vectors) when the three pointers share their address
 * modulo 32 (ISA-L's contract: 32-byte aligned vectors); otherwise, and for
 * heads and tails, a uint64 word loop. xor3 of 1 MiB: 30 GB/s aligned, 19.6
 * mismatched (a bounce buffer into xor_gen measured no better).
 *
 * Memory layout of fuze_code.tables: k blocks of 32*m bytes (primary i's
 * column, ec_init_tables(1, m)), then 32*k*m bytes of full-encode tables
 * (ec_init_tables(k, m, coef)), so full encode needs no per-call setup. */
#include "core/code.h"

#include "core/error.h"
#include "core/limits.h"

#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TBL 32         /* ISA-L table bytes per coefficient */

/* ISA-L lengths are int. Chunks are a multiple of 128 so every chunk after
 * the first keeps the pointers' alignment phase. Adjustable for tests. */
static size_t chunk_bytes = (size_t)1 << 30;

size_t fuze__code_chunk_bytes(size_t bytes) {
  size_t old = chunk_bytes;
  if (bytes >= 128) chunk_bytes = bytes & ~(size_t)127;
  if (chunk_bytes > (size_t)INT_MAX) chunk_bytes = (size_t)1 << 30;
  return old;
}

static size_t chunk_len(size_t len, size_t off) {
  return len - off < chunk_bytes ? len - off : chunk_bytes;
}

/* ec_encode_data over any size_t length: pointer arrays advance per chunk. */
static void ec_chunked(size_t len, int k, int rows, unsigned char *tbls,
                       unsigned char **src, unsigned char **dst) {
  unsigned char *s[FUZE_GF_MEMBERS], *d[FUZE_GF_MEMBERS];
  for (size_t off = 0; off < len; off += chunk_bytes) {
    for (int i = 0; i < k; i++) s[i] = src[i] + off;
    for (int j = 0; j < rows; j++) d[j] = dst[j] + off;
    ec_encode_data((int)chunk_len(len, off), k, rows, tbls, s, d);
  }
}

static int config_error(int k, int m, int kind) {
  if (k < 1 || m < 1)
    return fuze__error(NULL, FUZE_ERR_CONFIG, "code: k=%d and m=%d must both be >= 1", k, m);
  if (k + m > FUZE_GF_MEMBERS)
    return fuze__error(NULL, FUZE_ERR_CONFIG,
                       "code: k=%d + m=%d exceeds %d members of GF(2^8)", k, m, FUZE_GF_MEMBERS);
  if (kind == FUZE_CODE_XOR && m != 1)
    return fuze__error(NULL, FUZE_ERR_CONFIG, "code: xor needs m=1 (one backup), got m=%d", m);
  if (kind == FUZE_CODE_REPLICATE && k != 1)
    return fuze__error(NULL, FUZE_ERR_CONFIG,
                       "code: replicate needs k=1 (one primary per block), got k=%d", k);
  if (kind != FUZE_CODE_RS && kind != FUZE_CODE_XOR && kind != FUZE_CODE_REPLICATE)
    return fuze__error(NULL, FUZE_ERR_CONFIG, "code: unknown kind %d", kind);
  return FUZE_SUCCESS;
}

/* Returns 0, or -1 when out of memory. */
static int fill_coef(fuze_code *c) {
  int k = c->k, m = c->m;
  if (m == 1 || c->kind != FUZE_CODE_RS) { /* XOR and replication: all ones */
    memset(c->coef, 1, (size_t)m * k);
    return 0;
  }
  /* Rows k..k+m-1 of [I; Cauchy]: every k x k submatrix of [I; coef] is invertible. */
  unsigned char *g = malloc((size_t)(k + m) * k);
  if (!g) return -1;
  gf_gen_cauchy1_matrix(g, k + m, k);
  memcpy(c->coef, g + (size_t)k * k, (size_t)m * k);
  free(g);
  return 0;
}

int fuze__code_init(fuze_code *c, int k, int m, int kind) {
  memset(c, 0, sizeof *c);
  int rc = config_error(k, m, kind);
  if (rc) return rc;
  c->k = k, c->m = m, c->kind = kind;
  c->coef = malloc((size_t)m * k);
  c->tables = malloc(2 * (size_t)TBL * m * k);
  if (!c->coef || !c->tables || fill_coef(c)) {
    fuze__code_free(c);
    return FUZE_NOMEM(NULL, "code: tables");
  }
  unsigned char col[FUZE_GF_MEMBERS];
  for (int i = 0; i < k; i++) {
    for (int j = 0; j < m; j++) col[j] = fuze__code_coef(c, j, i);
    ec_init_tables(1, m, col, c->tables + (size_t)i * TBL * m);
  }
  ec_init_tables(k, m, c->coef, c->tables + (size_t)TBL * m * k);
  return FUZE_SUCCESS;
}

void fuze__code_free(fuze_code *c) {
  free(c->coef);
  free(c->tables);
  memset(c, 0, sizeof *c);
}

static int column_all_ones(const fuze_code *c, int i) {
  for (int j = 0; j < c->m; j++)
    if (fuze__code_coef(c, j, i) != 1) return 0;
  return 1;
}

void fuze__code_delta_encode(const fuze_code *c, int i, const unsigned char *delta,
                             size_t len, unsigned char **products) {
  if (len == 0) return;
  if (column_all_ones(c, i)) { /* XOR / replication: a product is the delta */
    for (int j = 0; j < c->m; j++) memcpy(products[j], delta, len);
    return;
  }
  /* ISA-L never writes its sources; the cast only satisfies its prototype. */
  unsigned char *src = (unsigned char *)delta;
  ec_chunked(len, 1, c->m, c->tables + (size_t)i * TBL * c->m, &src, products);
}

void fuze__gf_scale(unsigned char coef, const unsigned char *in, unsigned char *out,
                    size_t len) {
  if (coef == 0) {
    memset(out, 0, len);
    return;
  }
  if (coef == 1) {
    if (out != in) memmove(out, in, len);
    return;
  }
  unsigned char tbl[TBL];
  ec_init_tables(1, 1, &coef, tbl);
  unsigned char *src = (unsigned char *)in;
  if (out != in) {
    ec_chunked(len, 1, 1, tbl, &src, &out);
    return;
  }
  /* In place: ISA-L finishes an odd length by redoing an overlapping last
   * vector, which would scale some bytes twice; go through a bounce buffer. */
  _Alignas(64) unsigned char tmp[4096];
  unsigned char *t = tmp;
  for (size_t off = 0; off < len; off += sizeof tmp) {
    size_t n = len - off < sizeof tmp ? len - off : sizeof tmp;
    src = out + off;
    ec_encode_data((int)n, 1, 1, tbl, &src, &t);
    memcpy(out + off, tmp, n);
  }
}


void fuze__xor3(unsigned char *dst, const unsigned char *a, const unsigned char *b,
                size_t len) {
  uintptr_t phase = (uintptr_t)dst & 31;
  if (((uintptr_t)a & 31) != phase || ((uintptr_t)b & 31) != phase) {
    fuze__xor_words(dst, a, b, len); /* xor_gen needs all three 32-byte aligned */
    return;
  }
  size_t head = (32 - phase) & 31;
  if (head > len) head = len;
  fuze__xor_words(dst, a, b, head);
  size_t bulk = (len - head) & ~(size_t)127; /* xor_gen's fast path: 128 B blocks */
  for (size_t off = head; off < head + bulk; off += chunk_bytes) {
    size_t n = head + bulk - off < chunk_bytes ? head + bulk - off : chunk_bytes;
    void *v[3] = {(void *)(a + off), (void *)(b + off), dst + off};
    xor_gen(3, (int)n, v);
  }
  fuze__xor_words(dst + head + bulk, a + head + bulk, b + head + bulk, len - head - bulk);
}

void fuze__xor_into(unsigned char *dst, const unsigned char *src, size_t len) {
  fuze__xor3(dst, dst, src, len); /* xor_gen reads a position before writing it */
}

void fuze__code_encode(const fuze_code *c, unsigned char **data, unsigned char **parity,
                       size_t len) {
  ec_chunked(len, c->k, c->m, c->tables + (size_t)TBL * c->m * c->k, data, parity);
}

int fuze__code_decode_matrix(const fuze_code *c, const unsigned char *erased, int *rows,
                             unsigned char *D) {
  int k = c->k, n = k + c->m, lost = 0, used = 0;
  for (int s = 0; s < n; s++) lost += erased[s] != 0;
  if (lost > c->m)
    return fuze__error(NULL, FUZE_ERR_UNRECOVERABLE,
                       "code: %d of %d members lost, the code tolerates m=%d", lost, n, c->m);
  /* Primaries first: their rows are unit vectors, which keeps D sparse. */
  for (int s = 0; s < n && used < k; s++)
    if (!erased[s]) rows[used++] = s;
  unsigned char *B = calloc((size_t)k * k, 1);
  if (!B) return FUZE_NOMEM(NULL, "code: decode matrix");
  for (int s = 0; s < k; s++) {
    if (rows[s] < k) B[s * k + rows[s]] = 1;
    else memcpy(B + (size_t)s * k, c->coef + (size_t)(rows[s] - k) * k, k);
  }
  int singular = gf_invert_matrix(B, D, k);
  free(B);
  if (singular) /* impossible for these generators; guards a corrupted code */
    return fuze__error(NULL, FUZE_ERR_CORRUPT, "code: decode matrix for k=%d m=%d is singular",
                       k, c->m);
  return FUZE_SUCCESS;
}

/* dst[r] = sum_i mat[r*k + i] * src[i] for r < rows; builds its own tables. */
static int encode_rows(int k, int rows, unsigned char *mat, unsigned char **src,
                       unsigned char **dst, size_t len) {
  unsigned char *tbls = malloc((size_t)TBL * k * rows);
  if (!tbls) return FUZE_NOMEM(NULL, "code: decode tables");
  ec_init_tables(k, rows, mat, tbls);
  ec_chunked(len, k, rows, tbls, src, dst);
  free(tbls);
  return FUZE_SUCCESS;
}

int fuze__code_decode(const fuze_code *c, const unsigned char *erased,
                      unsigned char **members, size_t len) {
  int k = c->k, m = c->m, rows[FUZE_GF_MEMBERS], nl = 0, nb = 0;
  unsigned char *D = malloc((size_t)k * k), *mat = malloc((size_t)m * k);
  unsigned char *src[FUZE_GF_MEMBERS], *dst[FUZE_GF_MEMBERS];
  int rc = D && mat ? fuze__code_decode_matrix(c, erased, rows, D)
                    : FUZE_NOMEM(NULL, "code: decode");
  if (rc || len == 0) goto out;
  for (int i = 0; i < k; i++) { /* lost primaries from the k chosen survivors */
    src[i] = members[rows[i]];
    if (erased[i]) {
      memcpy(mat + (size_t)nl * k, D + (size_t)i * k, k);
      dst[nl++] = members[i];
    }
  }
  if (nl) rc = encode_rows(k, nl, mat, src, dst, len);
  for (int j = 0; j < m && !rc; j++) /* then lost backups from the full primaries */
    if (erased[k + j]) {
      memcpy(mat + (size_t)nb * k, c->coef + (size_t)j * k, k);
      dst[nb++] = members[k + j];
    }
  if (nb && !rc) rc = encode_rows(k, nb, mat, members, dst, len);
out:
  free(D);
  free(mat);
  return rc;
}
