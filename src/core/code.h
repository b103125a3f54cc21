/* code: the Reed-Solomon / XOR / replication code of one block, on ISA-L.
 * Pure (no MPI). A block has k primaries (members 0..k-1) and m backups
 * (members k..k+m-1). Backup j holds sum_i coef[j][i] * primary_i over GF(2^8). */
#ifndef FUZE_CODE_H
#define FUZE_CODE_H

#include "core/names.h" /* enum fuze_code_kind */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fuze_code {
  int k, m, kind;
  unsigned char *coef;   /* m x k, coef[j * k + i] */
  unsigned char *tables; /* per primary i: 32 * m bytes of ISA-L tables (ec_init_tables k=1),
                            then 32 * k * m bytes for full encode (ec_init_tables(k, m, coef)) */
} fuze_code;

/* Build the code. RS: Cauchy rows from gf_gen_cauchy1_matrix, except m == 1
 * which uses coefficient 1 (plain XOR). XOR: m must be 1. REPLICATE: k must be
 * 1, all coefficients 1. Returns FUZE_SUCCESS, FUZE_ERR_CONFIG (k < 1, m < 1,
 * k + m > 256, kind constraints; message recorded) or FUZE_ERR_NOMEM. */
int fuze__code_init(fuze_code *c, int k, int m, int kind);
void fuze__code_free(fuze_code *c); /* accepts a zeroed or freed code */

static inline unsigned char fuze__code_coef(const fuze_code *c, int j, int i) {
  return c->coef[j * c->k + i];
}

/* products[j] = coef[j][i] * delta for j = 0..m-1, one pass over delta.
 * A product whose coefficient is 1 is a copy. len may be any size incl. 0.
 * products must not overlap delta. */
void fuze__code_delta_encode(const fuze_code *c, int i, const unsigned char *delta,
                             size_t len, unsigned char **products);

/* out = coef * in over GF(2^8) (any len; out may equal in). */
void fuze__gf_scale(unsigned char coef, const unsigned char *in, unsigned char *out,
                    size_t len);

/* dst ^= src, vectorised (ISA-L xor_gen where aligned, word loop for tails). */
void fuze__xor_into(unsigned char *dst, const unsigned char *src, size_t len);

/* dst = a ^ b (dst may equal a or b, no other overlap). Fastest when all
 * three pointers have the same address modulo 32. */
/* dst = a ^ b, 8 bytes at a time, then < 8 single bytes: for tails, mismatched
 * alignments and small values, where a call into ISA-L's xor_gen costs more. */
static inline void fuze__xor_words(unsigned char *dst, const unsigned char *a,
                                   const unsigned char *b, size_t len) {
  size_t n = 0;
  for (; n + 8 <= len; n += 8) {
    uint64_t x, y;
    memcpy(&x, a + n, 8);
    memcpy(&y, b + n, 8);
    x ^= y;
    memcpy(dst + n, &x, 8);
  }
  for (; n < len; n++) dst[n] = a[n] ^ b[n];
}

void fuze__xor3(unsigned char *dst, const unsigned char *a, const unsigned char *b,
                size_t len);

/* Full encode: parity[j] = sum_i coef[j][i] * data[i], len bytes each. */
void fuze__code_encode(const fuze_code *c, unsigned char **data, unsigned char **parity,
                       size_t len);

/* Decode plan for an erasure pattern. erased[0..k+m-1] != 0 marks lost
 * members. On success rows[0..k-1] are the surviving members used (indices in
 * 0..k+m-1) and D (k x k) gives primary i = sum_s D[i*k + s] * member(rows[s]).
 * More than m erasures: FUZE_ERR_UNRECOVERABLE (message recorded). */
int fuze__code_decode_matrix(const fuze_code *c, const unsigned char *erased, int *rows,
                             unsigned char *D);

/* In-memory decode: members[0..k+m-1] of len bytes; erased members are
 * outputs (lost primaries decoded, then lost backups re-encoded). */
int fuze__code_decode(const fuze_code *c, const unsigned char *erased,
                      unsigned char **members, size_t len);

/* Test hook: ISA-L takes int lengths, so long buffers are processed in chunks
 * (default 1 GiB). bytes >= 128 sets the chunk (rounded down to a multiple of
 * 128) so tests reach the chunked path with small buffers; 0 only queries.
 * Returns the previous value. Not thread-safe; production code never calls it. */
size_t fuze__code_chunk_bytes(size_t bytes);

#endif
