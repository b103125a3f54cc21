/* pfile_impl: what the pieces of the rank-file code share. Internal to
 * core/pfile_*.c and core/manifest.c; everything else uses core/pfile.h.
 * No HDF5 here (the HDF5 pieces share core/pfile_h5.h).
 *
 * Defence in depth against damaged files, outermost first:
 *  1. A FUZE_PF_UB_BYTES HDF5 user block ("seal", pfile_seal.c) holds the
 *     file's length and a crc64 of every byte after it. The reader checks it
 *     before HDF5 parses a single byte, so a bit flip or a truncation never
 *     reaches HDF5's metadata decoder (which is not hardened against hostile
 *     input).
 *  2. Every dataset carries a crc64 of its bytes (the message names it).
 *  3. Every size is checked against the attributes and the plan, and every
 *     dataset against its storage size, before anything is allocated
 *     (pfile_check.c, pfile_h5get.c).
 *  4. The root attribute `model_crc64` is a digest of the whole decoded model
 *     (every attribute and byte, pfile_model.c), so a file edited with the
 *     HDF5 API and resealed still cannot pass as a different, valid model.
 *
 * The pieces:
 *   pfile_model.c          paths, the model digest, names on disk, comparisons, free
 *   pfile_check.c          plan and model checks, the coefficient matrices
 *   pfile_code.c           encoding a backup region, rebuilding a lost rank's file
 *   pfile_seal.c           the user block: sealing a written file, checking a read one
 *   pfile_h5.c             HDF5 types of arrays, quiet error stacks, file access
 *   pfile_h5write.c        writing a model as HDF5
 *   pfile_h5get.c          typed, checked reading of HDF5 attributes and datasets
 *   pfile_h5read.c         reading the root, the plan and the whole model
 *   pfile_h5read_structs.c reading the structures and the backup regions
 *   manifest.c             DIR/manifest
 * All Galois-field arithmetic goes through code.h (ISA-L). */
#ifndef FUZE_PFILE_IMPL_H
#define FUZE_PFILE_IMPL_H

#include "core/error.h"
#include "core/pfile.h"

#include <isa-l/crc64.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#define FUZE_PF_UB_BYTES 512         /* HDF5 user block: the seal */
#define FUZE_PF_UB_MAGIC "fuze-pf\n" /* 8 bytes */
#define FUZE_PF_MAX_RANKS (1 << 24)  /* ranks a reader accepts */
#define FUZE_PF_MAX_STRUCTS 4096     /* structures a reader accepts */
/* An escaped structure name (every byte as %XX at worst), with its NUL. */
#define FUZE_PF_ESC_MAX (3 * (FUZE_PFILE_NAME_MAX - 1) + 1)

/* ---- messages ---- */

/* Write a message to err (FUZE_MSG_LEN bytes, may be NULL); returns code. */
__attribute__((format(printf, 3, 4))) static inline int fail(char *err, int code, const char *fmt,
                                                             ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, FUZE_MSG_LEN, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Validation helpers write a message without a prefix and return -1. */
__attribute__((format(printf, 2, 3))) static inline int bad(char *msg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, FUZE_MSG_LEN, fmt, ap);
  va_end(ap);
  return -1;
}

/* One read of a rank file: messages are "<label>: ...". */
typedef struct fuze_pf_rd {
  const char *label;
  char *err;
  uint64_t file_bytes;
  int code; /* the FUZE_ERR_* of the first failure */
} fuze_pf_rd;

/* The file is damaged: FUZE_ERR_CORRUPT (the first failure's code is kept). */
__attribute__((format(printf, 2, 3))) static inline int rbad(fuze_pf_rd *x, const char *fmt, ...) {
  char msg[FUZE_MSG_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!x->code) x->code = FUZE_ERR_CORRUPT;
  return fail(x->err, FUZE_ERR_CORRUPT, "%s: %s", x->label, msg);
}

static inline int rnomem(fuze_pf_rd *x) {
  x->code = FUZE_ERR_NOMEM;
  return FUZE_NOMEM(x->err, x->label);
}

/* ---- checksums (ISA-L crc64_ecma_refl) and little-endian words ---- */

static inline uint64_t crc(const void *buf, size_t len) {
  return len ? crc64_ecma_refl(0, (const unsigned char *)buf, len) : 0;
}

static inline uint64_t crc_more(uint64_t c, const void *buf, size_t len) {
  return len ? crc64_ecma_refl(c, (const unsigned char *)buf, len) : c;
}

static inline void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* ---- the plan ---- */

static inline int block_k(const fuze_plan *p, int b) {
  return p->block_start[b + 1] - p->block_start[b];
}

static inline int is_spare_domain(const fuze_plan *p, int d) {
  return d >= p->ndomains - p->spares;
}

/* ---- pfile_model.c ---- */

/* A digest of everything a model holds; only called on validated models. */
uint64_t fuze__pf_model_digest(const fuze_pfile *m);
/* Structure names as HDF5 link names: out holds FUZE_PF_ESC_MAX bytes. */
void fuze__pf_name_escape(const char *name, char *out);
/* 0 and the name (FUZE_PFILE_NAME_MAX bytes), or -1 when `in` is not a
 * canonical escape. */
int fuze__pf_name_unescape(const char *in, char *out);
/* Structure i of a and b: same name, kind, type and sizes? (FUZE_ERR_CORRUPT) */
int fuze__pf_same_struct_meta(const fuze_pfile *a, const fuze_pstruct *x, const fuze_pstruct *y,
                              int i, char *err);
/* The backup regions rank `rank` hosts. */
int fuze__pf_expected_regions(const fuze_pfile *m, int rank);

/* ---- pfile_check.c (validators: a message in msg and -1) ---- */

/* derive: fill block_of/index_in_block from members once block_start is
 * known to be sane (the reader); otherwise they are checked as given. */
int fuze__pf_plan_check(fuze_plan *p, int derive, char *msg);
/* A deep copy; FUZE_ERR_NOMEM. */
int fuze__pf_check_structs(const fuze_pfile *m, char *msg);
int fuze__pf_check_codes(const fuze_pfile *m, char *msg);
/* Everything a model must satisfy (reader: CORRUPT, writer: ARG). */
int fuze__pf_model_check(const fuze_pfile *m, char *msg);
/* The f x k_b coefficient matrices of every block, in block order (malloc'd). */
int fuze__pf_all_coefficients(const fuze_pfile *m, unsigned char **out, size_t *n);

/* ---- pfile_seal.c ---- */

/* Seal a written file: its length and the crc64 of its HDF5 part. */
int fuze__pf_seal(const char *path, uint32_t version, char *err);
/* A rank file at x->label's path, or an image in memory: its seal and the
 * crc64 of its HDF5 part, before HDF5 reads a byte of it (the file's
 * size in x->file_bytes). FUZE_ERR_IO when unreadable, else rbad(). */
int fuze__pf_check_sealed_file(fuze_pf_rd *x, const char *path);
int fuze__pf_check_sealed_image(fuze_pf_rd *x, const void *buf, size_t len);

#endif
