/* byz: Byzantine mode's pure parts (no MPI): where the unfused copies live,
 * and the recovery algorithm of Fig. 6 of the seed paper (Theorem 7) for one
 * block. All Galois-field arithmetic is ISA-L's (gf_mul, gf_inv, and the
 * full encode of code.h).
 *
 * A block has k primaries X_0..X_{k-1}; each has f + 1 unfused copies (copy 0
 * is the primary's own state, copies 1..f the replicas) and the block has f
 * fused backups F_0..F_{f-1} (parity, code.h). Optionally every copy has an
 * index/aux part (ilen bytes) that each fused backup replicates per member. */
#ifndef FUZE_BYZ_H
#define FUZE_BYZ_H

#include "core/code.h"

#include <stddef.h>

/* Replica placement: out[r * f + c - 1] (c = 1..f) is the rank holding copy c
 * of rank r: the rank at r's position (modulo the domain's size) in each of
 * the f domains that follow r's domain cyclically. f distinct ranks of f
 * distinct domains, none r's. Needs ndomains > f and every domain non-empty;
 * returns 0, or -1 (bad input / out of memory). */
int fuze__byz_place(const int *domain, int nranks, int ndomains, int f, int *out);

enum { FUZE_BYZ_CLEAN = 0, FUZE_BYZ_CORRECTED = 1, FUZE_BYZ_UNCORRECTABLE = 2 };

#define FUZE_BYZ_MSG_LEN 256 /* fuze_byz_result.msg */

typedef struct fuze_byz_block {
  int k, f;
  const fuze_code *code;   /* k primaries, m = f backups */
  size_t len;              /* bytes of every copy and parity (shorter members zero padded) */
  unsigned char **copy;    /* k * (f + 1): copy[i * (f + 1) + c] */
  unsigned char **parity;  /* f */
  size_t ilen;             /* index bytes per primary, 0: none */
  unsigned char **icopy;   /* k * (f + 1) index parts of the copies (ilen > 0) */
  unsigned char **ipar;    /* f * k: backup j's replica of primary i's index, ipar[j * k + i] */
} fuze_byz_block;

typedef struct fuze_byz_result {
  int status;              /* FUZE_BYZ_* */
  int nbad;                /* faulty objects found (copies + backups) */
  /* bad[i * (f + 1) + c] copy c of primary i, bad[k * (f + 1) + j] backup j
   * (caller-allocated, k * (f + 1) + f bytes); truth[i]: a correct copy of
   * primary i (caller-allocated, k ints). Valid unless UNCORRECTABLE. */
  unsigned char *bad;
  int *truth;
  char msg[FUZE_BYZ_MSG_LEN]; /* what was found (UNCORRECTABLE: why) */
} fuze_byz_result;

/* Run Fig. 6 on one block: index votes (2f + 1 versions) discard copies and
 * backups with wrong index parts; while more than one primary is mismatched,
 * the copy of largest multiplicity fixes a primary; the last one's correct copy
 * is located with single-erasure decodes of the first differing byte from the
 * backups and the other primaries until some value has multiplicity f + 1;
 * finally backups are checked against a re-encode of the correct primaries.
 * More than f faulty objects, no value reaching multiplicity f + 1, more than f
 * mismatched primaries or an ambiguous majority: UNCORRECTABLE, and nothing is
 * modified. Otherwise, with apply, every faulty copy is overwritten with the
 * correct one and every faulty backup re-encoded (its index replicas too).
 * Returns the status, or -1 when out of memory (nothing modified). */
int fuze__byz_check_block(const fuze_byz_block *in, fuze_byz_result *out, int apply);

/* The value of primary c's byte w decoded from backup j and the other
 * primaries' copies src[i] (i != c): single-erasure decode. */
unsigned char fuze__byz_decode_byte(const fuze_code *code, int j, int c,
                                    unsigned char *const *src, const unsigned char *parity,
                                    size_t w);

#endif
