/* pfile: one rank's committed epoch as an HDF5 file, the job manifest, and the
 * pure rebuild of a lost rank's file from the others (docs/format.md).
 *
 * Defence in depth against damaged files, outermost first:
 *  1. A 512-byte HDF5 user block ("seal") holds the file's length and a crc64
 *     of every byte after it. The reader checks it before HDF5 parses a single
 *     byte, so a bit flip or a truncation never reaches HDF5's metadata
 *     decoder (which is not hardened against hostile input).
 *  2. Every dataset carries a crc64 of its bytes (the message names it).
 *  3. Every size is checked against the attributes and the plan, and every
 *     dataset against its storage size, before anything is allocated.
 *  4. The root attribute `model_crc64` is a digest of the whole decoded model
 *     (every attribute and byte), so a file edited with the HDF5 API and
 *     resealed still cannot pass as a different, valid model.
 *
 * All Galois-field arithmetic goes through code.h (ISA-L). */
#include "core/pfile.h"

#include "core/code.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <isa-l/crc64.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UB_BYTES 512         /* HDF5 user block: the seal */
#define UB_MAGIC "fuze-pf\n" /* 8 bytes */
#define MAX_RANKS (1 << 24)
#define MAX_STRUCTS 4096
#define MAX_LINKS 1048576 /* links per group a reader accepts */
#define ESC_MAX (3 * (FUZE_PFILE_NAME_MAX - 1) + 1)
#define MANIFEST_VERSION 1
#define MANIFEST_MAX 4096

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int fail(char *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, FUZE_MSG_LEN, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Validation helpers write a message without a prefix and return -1. */
__attribute__((format(printf, 2, 3))) static int bad(char *msg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, FUZE_MSG_LEN, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *code_name(int code) { return fuze__code_name(code); }

static int code_parse(const char *s) { return fuze__name_value(&fuze__names_code, s); }

static const char *kind_name(int kind) { return fuze__ps_kind_name(kind); }

/* ------------------------------------------------------------------ */
/* Paths                                                               */
/* ------------------------------------------------------------------ */

void fuze__pfile_dir(char *out, size_t len, const char *dir, int domain, int rank) {
  snprintf(out, len, "%s/domain-%d/rank-%d", dir, domain, rank);
}

void fuze__pfile_path(char *out, size_t len, const char *dir, int domain, int rank,
                      uint64_t epoch) {
  snprintf(out, len, "%s/domain-%d/rank-%d/epoch-%" PRIu64 ".h5", dir, domain, rank, epoch);
}

/* ------------------------------------------------------------------ */
/* Checksums                                                           */
/* ------------------------------------------------------------------ */

static uint64_t crc(const void *buf, size_t len) {
  return len ? crc64_ecma_refl(0, (const unsigned char *)buf, len) : 0;
}

static uint64_t crc_more(uint64_t c, const void *buf, size_t len) {
  return len ? crc64_ecma_refl(c, (const unsigned char *)buf, len) : c;
}

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static uint64_t dig_u64(uint64_t c, uint64_t v) {
  unsigned char b[8];
  put_le64(b, v);
  return crc_more(c, b, 8);
}

static uint64_t dig_ints(uint64_t c, const int *v, size_t n) {
  c = dig_u64(c, n);
  for (size_t i = 0; i < n; i++) c = dig_u64(c, (uint64_t)(int64_t)v[i]);
  return c;
}

static uint64_t dig_str(uint64_t c, const char *s) {
  size_t n = strlen(s);
  return crc_more(dig_u64(c, n), s, n);
}

static uint64_t dig_bytes(uint64_t c, const void *p, size_t n) {
  return crc_more(dig_u64(c, n), p, n);
}

static uint64_t digest_plan(uint64_t c, const fuze_plan *p) {
  c = dig_u64(c, (uint64_t)p->nranks), c = dig_u64(c, (uint64_t)p->ndomains);
  c = dig_u64(c, (uint64_t)p->spares), c = dig_u64(c, (uint64_t)p->f);
  c = dig_u64(c, (uint64_t)p->ncompute), c = dig_u64(c, (uint64_t)p->nblocks);
  c = dig_ints(c, p->domain, (size_t)p->nranks);
  c = dig_ints(c, p->block_start, (size_t)p->nblocks + 1);
  c = dig_ints(c, p->members, (size_t)p->ncompute);
  return dig_ints(c, p->hosts, (size_t)p->nblocks * (size_t)p->f);
}

static uint64_t digest_struct(uint64_t c, const fuze_pfile *m, const fuze_pstruct *s) {
  c = dig_str(c, s->name), c = dig_u64(c, (uint64_t)s->kind);
  c = dig_str(c, s->type_name), c = dig_u64(c, s->elem);
  c = dig_u64(c, s->rank_counts != NULL);
  for (int r = 0; s->rank_counts && r < m->ranks; r++) c = dig_u64(c, s->rank_counts[r]);
  c = dig_u64(c, s->kb), c = dig_u64(c, s->nb), c = dig_u64(c, s->seq);
  c = dig_u64(c, s->cap), c = dig_u64(c, s->count);
  c = dig_bytes(c, s->keys, s->keys ? s->count * s->kb : 0);
  size_t unit = s->kind == FUZE_PS_ARRAY ? s->elem : s->nb;
  return dig_bytes(c, s->data, s->data ? s->count * unit : 0);
}

/* A digest of everything a model holds; only called on validated models. */
static uint64_t model_digest(const fuze_pfile *m) {
  uint64_t c = dig_str(0, "fuze-pfile-model");
  c = dig_u64(c, m->version), c = dig_u64(c, m->job_id), c = dig_u64(c, m->epoch);
  c = dig_u64(c, (uint64_t)m->ckpt_calls), c = dig_u64(c, (uint64_t)m->rank);
  c = dig_u64(c, (uint64_t)m->ranks), c = dig_u64(c, (uint64_t)m->f);
  c = dig_u64(c, (uint64_t)m->spares), c = dig_u64(c, (uint64_t)m->code);
  c = digest_plan(c, &m->plan);
  c = dig_u64(c, (uint64_t)m->nstructs);
  for (int i = 0; i < m->nstructs; i++) c = digest_struct(c, m, &m->structs[i]);
  c = dig_u64(c, (uint64_t)m->nregions);
  for (int i = 0; i < m->nregions; i++) {
    const fuze_pregion *g = &m->regions[i];
    c = dig_u64(c, (uint64_t)g->s), c = dig_u64(c, (uint64_t)g->block);
    c = dig_u64(c, (uint64_t)g->j), c = dig_bytes(c, g->data, g->bytes);
  }
  return c;
}

/* ------------------------------------------------------------------ */
/* Structure names on disk                                             */
/* ------------------------------------------------------------------ */

/* HDF5 link names cannot hold '/' and "." is special: '%', '/', control and
 * non-ASCII bytes, and a leading '.', become %XX (uppercase hex). Reversible,
 * and the reader accepts only the canonical form. */
static int must_escape(unsigned char c, size_t i) {
  return c == '%' || c == '/' || c < 0x20 || c >= 0x7f || (i == 0 && c == '.');
}

static void name_escape(const char *name, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (size_t i = 0; name[i]; i++) {
    unsigned char c = (unsigned char)name[i];
    if (must_escape(c, i)) {
      out[o++] = '%', out[o++] = hex[c >> 4], out[o++] = hex[c & 15];
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Returns 0 and the name, or -1 when `in` is not a canonical escape. */
static int name_unescape(const char *in, char *out) {
  size_t o = 0;
  for (size_t i = 0; in[i]; i++) {
    if (o + 1 >= FUZE_PFILE_NAME_MAX) return -1;
    if (in[i] != '%') {
      out[o++] = in[i];
      continue;
    }
    int hi = hexval(in[i + 1]), lo = hi < 0 ? -1 : hexval(in[i + 2]);
    if (lo < 0 || (hi == 0 && lo == 0)) return -1;
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[o] = 0;
  char again[ESC_MAX];
  if (o == 0) return -1;
  name_escape(out, again);
  return strcmp(again, in) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Plan checks                                                         */
/* ------------------------------------------------------------------ */

static int block_k(const fuze_plan *p, int b) { return p->block_start[b + 1] - p->block_start[b]; }

static int is_spare_domain(const fuze_plan *p, int d) { return d >= p->ndomains - p->spares; }

/* Recompute block_of and index_in_block from members (entries out of range
 * are skipped; plan_check rejects them). */
static void plan_derive(fuze_plan *p) {
  for (int r = 0; r < p->nranks; r++) p->block_of[r] = -1, p->index_in_block[r] = -1;
  for (int b = 0; b < p->nblocks; b++)
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) {
      int r = p->members[x];
      if (r < 0 || r >= p->nranks) continue;
      p->block_of[r] = b, p->index_in_block[r] = x - p->block_start[b];
    }
}

static int plan_check_scalars(const fuze_plan *p, char *msg) {
  if (p->nranks < 1 || p->nranks > MAX_RANKS) return bad(msg, "plan: %d ranks", p->nranks);
  if (p->f < 1 || p->f > 255) return bad(msg, "plan: faults=%d out of 1..255", p->f);
  if (p->ndomains < 1 || p->ndomains > p->nranks)
    return bad(msg, "plan: %d domains for %d ranks", p->ndomains, p->nranks);
  if (p->spares < 0 || p->spares >= p->ndomains)
    return bad(msg, "plan: %d spare domains of %d", p->spares, p->ndomains);
  if (p->nblocks < 1 || p->nblocks > p->nranks)
    return bad(msg, "plan: %d blocks for %d ranks", p->nblocks, p->nranks);
  if (!p->domain || !p->block_start || !p->members || !p->hosts || !p->block_of ||
      !p->index_in_block)
    return bad(msg, "plan: an array is missing");
  return 0;
}

static int plan_check_domains(const fuze_plan *p, char *msg) {
  int *seen = calloc((size_t)p->ndomains, sizeof *seen), ncompute = 0, rc = 0;
  if (!seen) return bad(msg, "out of memory checking the plan");
  for (int r = 0; r < p->nranks && !rc; r++) {
    int d = p->domain[r];
    if (d < 0 || d >= p->ndomains)
      rc = bad(msg, "plan: rank %d in domain %d, outside 0..%d", r, d, p->ndomains - 1);
    else
      seen[d]++, ncompute += !is_spare_domain(p, d);
  }
  for (int d = 0; d < p->ndomains && !rc; d++)
    if (!seen[d]) rc = bad(msg, "plan: domain %d holds no rank", d);
  if (!rc && ncompute != p->ncompute)
    rc = bad(msg, "plan: %d compute ranks, the domains give %d", p->ncompute, ncompute);
  free(seen);
  return rc;
}

static int plan_check_blocks(const fuze_plan *p, char *msg) {
  if (p->block_start[0] != 0 || p->block_start[p->nblocks] != p->ncompute)
    return bad(msg, "plan: block_start spans %d..%d, expected 0..%d", p->block_start[0],
               p->block_start[p->nblocks], p->ncompute);
  for (int b = 0; b < p->nblocks; b++) {
    long long k = (long long)p->block_start[b + 1] - p->block_start[b];
    if (k < 1 || k + p->f > FUZE_PLAN_FIELD)
      return bad(msg, "plan: block %d has %lld members with faults=%d", b, k, p->f);
  }
  return 0;
}

/* Every compute rank exactly once, ascending within its block, no two members
 * of a block in one domain; block_of/index_in_block agree. */
static int plan_check_members(const fuze_plan *p, char *msg) {
  int *cnt = calloc((size_t)p->nranks, sizeof *cnt), rc = 0;
  if (!cnt) return bad(msg, "out of memory checking the plan");
  for (int b = 0; b < p->nblocks && !rc; b++)
    for (int x = p->block_start[b]; x < p->block_start[b + 1] && !rc; x++) {
      int r = p->members[x];
      if (r < 0 || r >= p->nranks)
        rc = bad(msg, "plan: member %d is rank %d", x, r);
      else if (is_spare_domain(p, p->domain[r]))
        rc = bad(msg, "plan: spare rank %d is a member", r);
      else if (cnt[r]++)
        rc = bad(msg, "plan: rank %d is a member twice", r);
      else if (x > p->block_start[b] && p->members[x - 1] >= r)
        rc = bad(msg, "plan: block %d members not ascending", b);
      for (int y = p->block_start[b]; y < x && !rc; y++)
        if (p->domain[p->members[y]] == p->domain[r])
          rc = bad(msg, "plan: block %d holds two ranks of domain %d", b, p->domain[r]);
    }
  for (int r = 0; r < p->nranks && !rc; r++) {
    int spare = is_spare_domain(p, p->domain[r]);
    if (!spare && !cnt[r])
      rc = bad(msg, "plan: compute rank %d is in no block", r);
    else if (spare && (p->block_of[r] != -1 || p->index_in_block[r] != -1))
      rc = bad(msg, "plan: spare rank %d has a block", r);
    else if (!spare && (p->block_of[r] < 0 || p->block_of[r] >= p->nblocks ||
                        p->members[p->block_start[p->block_of[r]] + p->index_in_block[r]] != r))
      rc = bad(msg, "plan: block_of/index_in_block of rank %d disagree with members", r);
  }
  free(cnt);
  return rc;
}

/* Hosts: in range, distinct domains per block, none in a member's domain. */
static int plan_check_hosts(const fuze_plan *p, char *msg) {
  for (int b = 0; b < p->nblocks; b++)
    for (int j = 0; j < p->f; j++) {
      int h = p->hosts[b * p->f + j];
      if (h < 0 || h >= p->nranks)
        return bad(msg, "plan: backup %d of block %d on rank %d, outside 0..%d", j, b, h,
                   p->nranks - 1);
      for (int jj = 0; jj < j; jj++)
        if (p->domain[p->hosts[b * p->f + jj]] == p->domain[h])
          return bad(msg, "plan: two backups of block %d in domain %d", b, p->domain[h]);
      for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++)
        if (p->domain[p->members[x]] == p->domain[h])
          return bad(msg, "plan: backup %d of block %d shares domain %d with a member", j, b,
                     p->domain[h]);
    }
  return 0;
}

/* derive: fill block_of/index_in_block from members once block_start is
 * known to be sane (the reader); otherwise they are checked as given. */
static int plan_check(fuze_plan *p, int derive, char *msg) {
  if (plan_check_scalars(p, msg) || plan_check_domains(p, msg) || plan_check_blocks(p, msg))
    return -1;
  if (derive) plan_derive(p);
  if (plan_check_members(p, msg) || plan_check_hosts(p, msg)) return -1;
  return 0;
}

static int plan_copy(fuze_plan *dst, const fuze_plan *p) {
  memset(dst, 0, sizeof *dst);
  *dst = *p;
  size_t nr = (size_t)p->nranks, nb = (size_t)p->nblocks;
  dst->block_start = malloc(sizeof(int) * (nb + 1));
  dst->members = malloc(sizeof(int) * ((size_t)p->ncompute + 1));
  dst->hosts = malloc(sizeof(int) * (nb * (size_t)p->f + 1));
  dst->block_of = malloc(sizeof(int) * nr);
  dst->index_in_block = malloc(sizeof(int) * nr);
  dst->domain = malloc(sizeof(int) * nr);
  if (!dst->block_start || !dst->members || !dst->hosts || !dst->block_of || !dst->index_in_block ||
      !dst->domain) {
    fuze__plan_free(dst);
    return FUZE_ERR_NOMEM;
  }
  memcpy(dst->block_start, p->block_start, sizeof(int) * (nb + 1));
  memcpy(dst->members, p->members, sizeof(int) * (size_t)p->ncompute);
  memcpy(dst->hosts, p->hosts, sizeof(int) * nb * (size_t)p->f);
  memcpy(dst->block_of, p->block_of, sizeof(int) * nr);
  memcpy(dst->index_in_block, p->index_in_block, sizeof(int) * nr);
  memcpy(dst->domain, p->domain, sizeof(int) * nr);
  return FUZE_SUCCESS;
}

static int plans_equal(const fuze_plan *a, const fuze_plan *b) {
  if (a->nranks != b->nranks || a->ndomains != b->ndomains || a->spares != b->spares ||
      a->f != b->f || a->ncompute != b->ncompute || a->nblocks != b->nblocks)
    return 0;
  size_t nr = (size_t)a->nranks, nb = (size_t)a->nblocks;
  return !memcmp(a->domain, b->domain, sizeof(int) * nr) &&
         !memcmp(a->block_start, b->block_start, sizeof(int) * (nb + 1)) &&
         !memcmp(a->members, b->members, sizeof(int) * (size_t)a->ncompute) &&
         !memcmp(a->hosts, b->hosts, sizeof(int) * nb * (size_t)a->f);
}

/* ------------------------------------------------------------------ */
/* Model checks                                                        */
/* ------------------------------------------------------------------ */

static int name_ok(const char *name) {
  size_t n = strnlen(name, FUZE_PFILE_NAME_MAX);
  return n >= 1 && n < FUZE_PFILE_NAME_MAX;
}

static int is_spare_rank(const fuze_pfile *m, int r) { return m->plan.block_of[r] < 0; }

static int check_array(const fuze_pfile *m, const fuze_pstruct *s, char *msg) {
  /* An unnamed derived datatype has an empty name: stored opaque. */
  if (strnlen(s->type_name, sizeof s->type_name) >= sizeof s->type_name)
    return bad(msg, "array '%s': MPI type name not terminated", s->name);
  if (s->elem < 1 || s->elem > (1u << 20))
    return bad(msg, "array '%s': element size %zu out of 1..2^20", s->name, s->elem);
  if (!s->rank_counts) return bad(msg, "array '%s': no rank_counts", s->name);
  for (int r = 0; r < m->ranks; r++) {
    if (is_spare_rank(m, r) && s->rank_counts[r])
      return bad(msg, "array '%s': spare rank %d has %" PRIu64 " elements", s->name, r,
                 s->rank_counts[r]);
    if (s->rank_counts[r] > (uint64_t)(SIZE_MAX / 4) / s->elem)
      return bad(msg, "array '%s': rank %d has %" PRIu64 " elements", s->name, r,
                 s->rank_counts[r]);
  }
  if (s->count != s->rank_counts[m->rank])
    return bad(msg, "array '%s': %zu elements, rank_counts says %" PRIu64, s->name, s->count,
               s->rank_counts[m->rank]);
  if (s->kb || s->nb || s->cap || s->seq || s->keys)
    return bad(msg, "array '%s': stack/map fields set", s->name);
  if (s->count && !s->data) return bad(msg, "array '%s': no data", s->name);
  return 0;
}

static int check_fobj(const fuze_pfile *m, const fuze_pstruct *s, char *msg) {
  const char *kn = kind_name(s->kind);
  int map = s->kind == FUZE_PS_MAP;
  if (s->nb < 1 || s->nb > (1u << 30) || (map ? s->kb < 1 || s->kb > (1u << 30) : s->kb != 0))
    return bad(msg, "%s '%s': key/value sizes %zu/%zu", kn, s->name, s->kb, s->nb);
  size_t a, b2;
  if (s->cap < 1 || __builtin_mul_overflow(s->cap, s->nb, &a) ||
      __builtin_mul_overflow(s->cap, s->kb * FUZE_PLAN_FIELD, &b2) || a > SIZE_MAX / 4 ||
      b2 > SIZE_MAX / 4)
    return bad(msg, "%s '%s': capacity %zu out of range", kn, s->name, s->cap);
  if (s->count > s->cap)
    return bad(msg, "%s '%s': %zu entries above capacity %zu", kn, s->name, s->count, s->cap);
  if (is_spare_rank(m, m->rank) && (s->count || s->seq))
    return bad(msg, "%s '%s': a spare rank holds entries", kn, s->name);
  if (s->elem || s->type_name[0] || s->rank_counts)
    return bad(msg, "%s '%s': array fields set", kn, s->name);
  if (s->count && (!s->data || (map && !s->keys))) return bad(msg, "%s '%s': no data", kn, s->name);
  if (!map && s->keys) return bad(msg, "stack '%s': keys set", s->name);
  return 0;
}

static int check_structs(const fuze_pfile *m, char *msg) {
  if (m->nstructs < 0 || m->nstructs > MAX_STRUCTS || (m->nstructs && !m->structs))
    return bad(msg, "%d structures", m->nstructs);
  for (int i = 0; i < m->nstructs; i++) {
    const fuze_pstruct *s = &m->structs[i];
    if (!name_ok(s->name)) return bad(msg, "structure %d: name must be 1..63 bytes", i);
    for (int j = 0; j < i; j++)
      if (strcmp(m->structs[j].name, s->name) == 0)
        return bad(msg, "structure name '%s' used twice", s->name);
    int rc = s->kind == FUZE_PS_ARRAY ? check_array(m, s, msg)
             : s->kind == FUZE_PS_STACK || s->kind == FUZE_PS_MAP
                 ? check_fobj(m, s, msg)
                 : bad(msg, "structure '%s': unknown kind %d", s->name, s->kind);
    if (rc) return rc;
  }
  return 0;
}

size_t fuze__pfile_region_bytes(const fuze_pfile *m, int s, int block) {
  const fuze_pstruct *st = &m->structs[s];
  const fuze_plan *p = &m->plan;
  if (st->kind != FUZE_PS_ARRAY)
    return fuze__fobj_layout(block_k(p, block), st->cap, st->kb, st->nb).bytes;
  size_t max = 0;
  for (int x = p->block_start[block]; x < p->block_start[block + 1]; x++) {
    size_t n = (size_t)st->rank_counts[p->members[x]] * st->elem;
    if (n > max) max = n;
  }
  return max;
}

/* The regions rank `rank` hosts, in (s, block, j) order. */
static int expected_regions(const fuze_pfile *m, int rank) {
  int n = 0;
  for (int i = 0; i < m->plan.nblocks * m->plan.f; i++) n += m->plan.hosts[i] == rank;
  return n * m->nstructs;
}

static int check_regions(const fuze_pfile *m, char *msg) {
  const fuze_plan *p = &m->plan;
  if (m->nregions != expected_regions(m, m->rank) || (m->nregions && !m->regions))
    return bad(msg, "%d backup regions, the plan gives rank %d %d", m->nregions, m->rank,
               expected_regions(m, m->rank));
  int i = 0;
  for (int s = 0; s < m->nstructs; s++)
    for (int b = 0; b < p->nblocks; b++)
      for (int j = 0; j < p->f; j++) {
        if (p->hosts[b * p->f + j] != m->rank) continue;
        const fuze_pregion *g = &m->regions[i++];
        if (g->s != s || g->block != b || g->j != j)
          return bad(msg, "region %d is (structure %d, block %d, backup %d), expected (%d, %d, %d)",
                     i - 1, g->s, g->block, g->j, s, b, j);
        size_t want = fuze__pfile_region_bytes(m, s, b);
        if (g->bytes != want)
          return bad(msg, "region of '%s' block %d backup %d has %zu bytes, expected %zu",
                     m->structs[s].name, b, j, g->bytes, want);
        if (g->bytes && !g->data) return bad(msg, "region without data");
      }
  return 0;
}

static int check_codes(const fuze_pfile *m, char *msg) {
  for (int b = 0; b < m->plan.nblocks; b++) {
    fuze_code c;
    int rc = fuze__code_init(&c, block_k(&m->plan, b), m->f, m->code);
    fuze__code_free(&c);
    if (rc == FUZE_ERR_NOMEM) return bad(msg, "out of memory");
    if (rc) return bad(msg, "block %d: %s", b, fuze__thread_msg());
  }
  return 0;
}

/* Everything a model must satisfy (reader: CORRUPT, writer: ARG). */
static int model_check(const fuze_pfile *m, char *msg) {
  if (m->version < 1) return bad(msg, "format version %u", m->version);
  if (m->ranks != m->plan.nranks || m->f != m->plan.f || m->spares != m->plan.spares)
    return bad(msg, "ranks/faults/spares %d/%d/%d differ from the plan's %d/%d/%d", m->ranks, m->f,
               m->spares, m->plan.nranks, m->plan.f, m->plan.spares);
  if (!fuze__name_known(&fuze__names_code, m->code)) return bad(msg, "unknown code %d", m->code);
  if (m->ckpt_calls < 0) return bad(msg, "ckpt_calls %" PRId64, m->ckpt_calls);
  if (plan_check((fuze_plan *)&m->plan, 0, msg)) return -1;
  if (m->rank < 0 || m->rank >= m->ranks) return bad(msg, "rank %d of %d", m->rank, m->ranks);
  if (check_codes(m, msg) || check_structs(m, msg) || check_regions(m, msg)) return -1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Comparisons                                                         */
/* ------------------------------------------------------------------ */

static int same_struct_meta(const fuze_pfile *a, const fuze_pstruct *x, const fuze_pstruct *y,
                            int i, char *err) {
  if (strcmp(x->name, y->name) || x->kind != y->kind)
    return fail(err, FUZE_ERR_CORRUPT, "structure %d differs: %s '%s' vs %s '%s'", i,
                kind_name(x->kind), x->name, kind_name(y->kind), y->name);
  if (strcmp(x->type_name, y->type_name) || x->elem != y->elem || x->kb != y->kb ||
      x->nb != y->nb || x->cap != y->cap)
    return fail(err, FUZE_ERR_CORRUPT, "structure '%s' differs in type or sizes", x->name);
  if ((x->rank_counts == NULL) != (y->rank_counts == NULL) ||
      (x->rank_counts &&
       memcmp(x->rank_counts, y->rank_counts, sizeof(uint64_t) * (size_t)a->ranks)))
    return fail(err, FUZE_ERR_CORRUPT, "structure '%s' differs in rank_counts", x->name);
  return FUZE_SUCCESS;
}

int fuze__pfile_same_job(const fuze_pfile *a, const fuze_pfile *b, char *err) {
  if (a->version != b->version)
    return fail(err, FUZE_ERR_CORRUPT, "format version differs: %u vs %u", a->version, b->version);
  if (a->job_id != b->job_id)
    return fail(err, FUZE_ERR_CORRUPT, "job id differs: 0x%016" PRIx64 " vs 0x%016" PRIx64,
                a->job_id, b->job_id);
  if (a->epoch != b->epoch || a->ckpt_calls != b->ckpt_calls)
    return fail(err, FUZE_ERR_CORRUPT,
                "epoch differs: %" PRIu64 " (checkpoint %" PRId64 ") vs %" PRIu64
                " (checkpoint %" PRId64 ")",
                a->epoch, a->ckpt_calls, b->epoch, b->ckpt_calls);
  if (a->ranks != b->ranks || a->f != b->f || a->spares != b->spares || a->code != b->code)
    return fail(err, FUZE_ERR_CORRUPT,
                "geometry differs: ranks=%d faults=%d spares=%d code=%s vs ranks=%d faults=%d "
                "spares=%d code=%s",
                a->ranks, a->f, a->spares, code_name(a->code), b->ranks, b->f, b->spares,
                code_name(b->code));
  if (!plans_equal(&a->plan, &b->plan)) return fail(err, FUZE_ERR_CORRUPT, "plans differ");
  if (a->nstructs != b->nstructs)
    return fail(err, FUZE_ERR_CORRUPT, "%d vs %d structures", a->nstructs, b->nstructs);
  for (int i = 0; i < a->nstructs; i++) {
    int rc = same_struct_meta(a, &a->structs[i], &b->structs[i], i, err);
    if (rc) return rc;
  }
  return FUZE_SUCCESS;
}

static int bytes_differ(const void *x, const void *y, size_t n) {
  return n && (!x || !y || memcmp(x, y, n));
}

int fuze__pfile_equal(const fuze_pfile *a, const fuze_pfile *b, char *err) {
  int rc = fuze__pfile_same_job(a, b, err);
  if (rc) return rc;
  if (a->rank != b->rank)
    return fail(err, FUZE_ERR_CORRUPT, "rank differs: %d vs %d", a->rank, b->rank);
  for (int i = 0; i < a->nstructs; i++) {
    const fuze_pstruct *x = &a->structs[i], *y = &b->structs[i];
    size_t unit = x->kind == FUZE_PS_ARRAY ? x->elem : x->nb;
    if (x->count != y->count || x->seq != y->seq)
      return fail(err, FUZE_ERR_CORRUPT, "'%s': count/seq %zu/%" PRIu64 " vs %zu/%" PRIu64, x->name,
                  x->count, x->seq, y->count, y->seq);
    if (bytes_differ(x->keys, y->keys, x->count * x->kb) ||
        bytes_differ(x->data, y->data, x->count * unit))
      return fail(err, FUZE_ERR_CORRUPT, "'%s': contents differ", x->name);
  }
  if (a->nregions != b->nregions)
    return fail(err, FUZE_ERR_CORRUPT, "%d vs %d backup regions", a->nregions, b->nregions);
  for (int i = 0; i < a->nregions; i++) {
    const fuze_pregion *x = &a->regions[i], *y = &b->regions[i];
    if (x->s != y->s || x->block != y->block || x->j != y->j || x->bytes != y->bytes ||
        bytes_differ(x->data, y->data, x->bytes))
      return fail(err, FUZE_ERR_CORRUPT, "backup region %d (block %d, backup %d) differs", i,
                  x->block, x->j);
  }
  return FUZE_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

/* One member's contribution to a block: what its primary file holds. */
typedef struct mview {
  uint64_t count, seq;
  const unsigned char *keys, *data; /* count * kb, count * unit */
} mview;

static void view_of(const fuze_pstruct *s, mview *v) {
  v->count = s->count, v->seq = s->seq, v->keys = s->keys, v->data = s->data;
}

/* out (bytes) = backup j of block b of structure s, from the k members' views.
 * Arrays: sum_i coef[j][i] * d_i zero-padded. Stacks/maps: the pfile.h layout. */
static int encode_views(const fuze_pfile *meta, int s, int b, int j, const mview *v,
                        unsigned char *out, size_t bytes, char *err) {
  const fuze_pstruct *st = &meta->structs[s];
  int k = block_k(&meta->plan, b);
  fuze_code c;
  int rc = fuze__code_init(&c, k, meta->f, meta->code);
  if (rc) return fail(err, rc, "block %d: %s", b, fuze__thread_msg());
  size_t unit = st->kind == FUZE_PS_ARRAY ? st->elem : st->nb, node_off = 0;
  fuze_fobj_layout L = {0, 0, 0};
  if (st->kind != FUZE_PS_ARRAY) {
    L = fuze__fobj_layout(k, st->cap, st->kb, st->nb);
    node_off = L.nodes_off;
  }
  memset(out, 0, bytes);
  size_t maxlen = 0;
  for (int i = 0; i < k; i++) {
    uint64_t lim = st->kind == FUZE_PS_ARRAY ? (bytes - node_off) / unit : st->cap;
    if (v[i].count > lim || (v[i].count && !v[i].data)) {
      fuze__code_free(&c);
      return fail(err, FUZE_ERR_CORRUPT,
                  "'%s' block %d: member %d holds %" PRIu64
                  " entries, the region has room for %" PRIu64,
                  st->name, b, i, v[i].count, lim);
    }
    if (v[i].count * unit > maxlen) maxlen = v[i].count * unit;
  }
  unsigned char *tmp = malloc(maxlen ? maxlen : 1);
  if (!tmp) {
    fuze__code_free(&c);
    return fail(err, FUZE_ERR_NOMEM, "out of memory encoding '%s'", st->name);
  }
  for (int i = 0; i < k; i++) {
    size_t len = v[i].count * unit;
    if (st->kind != FUZE_PS_ARRAY) {
      memcpy(out + fuze__hdr_off(i), &v[i].count, 8);
      memcpy(out + fuze__hdr_off(i) + 8, &v[i].seq, 8);
      if (st->kb && v[i].count)
        memcpy(out + L.keys_off + (size_t)i * st->cap * st->kb, v[i].keys, v[i].count * st->kb);
    }
    if (!len) continue;
    fuze__gf_scale(fuze__code_coef(&c, j, i), v[i].data, tmp, len);
    fuze__xor_into(out + node_off, tmp, len);
  }
  free(tmp);
  fuze__code_free(&c);
  return FUZE_SUCCESS;
}

/* The contract guarantees every member of the block is present, so a file
 * is found at or below the block's first member. */
int fuze__pfile_encode_region(fuze_pfile *const *files, int s, int block, int j, unsigned char *out,
                              char *err) {
  if (!files) return fail(err, FUZE_ERR_ARG, "encode: no files");
  const fuze_pfile *meta = NULL;
  for (int r = 0; !meta; r++) meta = files[r];
  const fuze_plan *p = &meta->plan;
  if (s < 0 || s >= meta->nstructs || block < 0 || block >= p->nblocks || j < 0 || j >= p->f)
    return fail(err, FUZE_ERR_ARG, "encode: structure %d, block %d, backup %d out of range", s,
                block, j);
  mview v[FUZE_PLAN_FIELD];
  for (int x = p->block_start[block]; x < p->block_start[block + 1]; x++) {
    const fuze_pfile *fm = files[p->members[x]];
    if (!fm)
      return fail(err, FUZE_ERR_ARG, "encode: the file of rank %d (member of block %d) is missing",
                  p->members[x], block);
    if (fm->rank != p->members[x] || fm->nstructs != meta->nstructs ||
        same_struct_meta(meta, &meta->structs[s], &fm->structs[s], s, NULL))
      return fail(err, FUZE_ERR_CORRUPT, "encode: the file of rank %d does not match block %d",
                  p->members[x], block);
    view_of(&fm->structs[s], &v[x - p->block_start[block]]);
  }
  return encode_views(meta, s, block, j, v, out, fuze__pfile_region_bytes(meta, s, block), err);
}

/* ------------------------------------------------------------------ */
/* Rebuild                                                             */
/* ------------------------------------------------------------------ */

typedef struct blockrec {
  mview v[FUZE_PLAN_FIELD];
  unsigned char *buf; /* decoded members (owned) */
} blockrec;

static const fuze_pregion *find_region(const fuze_pfile *m, int s, int b, int j) {
  for (int i = 0; i < m->nregions; i++)
    if (m->regions[i].s == s && m->regions[i].block == b && m->regions[i].j == j)
      return &m->regions[i];
  return NULL;
}

static int refuse(const fuze_plan *p, int b, const unsigned char *erased, int lost, char *err) {
  char list[FUZE_MSG_LEN] = "";
  size_t o = 0;
  int k = block_k(p, b);
  for (int x = 0; x < k + p->f; x++) {
    if (!erased[x] || o >= sizeof list - 1) continue;
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s rank %d", o ? ", " : "",
                          x < k ? "primary" : "backup host",
                          x < k ? p->members[p->block_start[b] + x] : p->hosts[b * p->f + x - k]);
  }
  return fail(err, FUZE_ERR_UNRECOVERABLE, "block %d lost %d members (%s) but tolerates faults=%d",
              b, lost, list, p->f);
}

static int nonzero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 1;
  return 0;
}

/* Lost member x of a stack/map: count, seq and keys from a host's header and
 * key replica, values from the decoded nodes. */
static int take_header(const fuze_pstruct *st, int b, int x, int k, const fuze_pregion *hdr,
                       mview *v, char *err) {
  fuze_fobj_layout L = fuze__fobj_layout(k, st->cap, st->kb, st->nb);
  memcpy(&v->count, hdr->data + fuze__hdr_off(x), 8);
  memcpy(&v->seq, hdr->data + fuze__hdr_off(x) + 8, 8);
  if (v->count > st->cap)
    return fail(err, FUZE_ERR_CORRUPT,
                "'%s' block %d: backup %d says member %d holds %" PRIu64 " entries, capacity %zu",
                st->name, b, hdr->j, x, v->count, st->cap);
  const unsigned char *keys = hdr->data + L.keys_off + (size_t)x * st->cap * st->kb;
  if (nonzero(keys + v->count * st->kb, (st->cap - v->count) * st->kb))
    return fail(err, FUZE_ERR_CORRUPT, "'%s' block %d: key replica of member %d has stray bytes",
                st->name, b, x);
  v->keys = st->kb ? keys : NULL;
  return FUZE_SUCCESS;
}

static int decode_block(fuze_pfile *const *files, const fuze_pfile *meta, int s, int b,
                        const unsigned char *erased, blockrec *rec, char *err) {
  const fuze_plan *p = &meta->plan;
  const fuze_pstruct *st = &meta->structs[s];
  int k = block_k(p, b), f = p->f, arr = st->kind == FUZE_PS_ARRAY;
  size_t unit = arr ? st->elem : st->nb;
  size_t len = arr ? fuze__pfile_region_bytes(meta, s, b) : st->cap * st->nb;
  size_t off = arr ? 0 : fuze__fobj_layout(k, st->cap, st->kb, st->nb).nodes_off;
  unsigned char *ptr[FUZE_PLAN_FIELD];
  const fuze_pregion *hdr = NULL;
  rec->buf = calloc((size_t)(k + f), len ? len : 1);
  if (!rec->buf) return fail(err, FUZE_ERR_NOMEM, "out of memory decoding block %d", b);
  for (int x = 0; x < k + f; x++) ptr[x] = rec->buf + (size_t)x * len;
  for (int x = 0; x < k; x++)
    if (!erased[x]) {
      if (rec->v[x].count * unit > len)
        return fail(err, FUZE_ERR_CORRUPT, "'%s' block %d: member %d too large", st->name, b, x);
      if (rec->v[x].count) memcpy(ptr[x], rec->v[x].data, rec->v[x].count * unit);
    }
  for (int j = 0; j < f; j++) {
    if (erased[k + j]) continue;
    const fuze_pregion *g = find_region(files[p->hosts[b * f + j]], s, b, j);
    if (!g || g->bytes != fuze__pfile_region_bytes(meta, s, b))
      return fail(err, FUZE_ERR_CORRUPT, "rank %d lacks backup %d of '%s' block %d",
                  p->hosts[b * f + j], j, st->name, b);
    memcpy(ptr[k + j], g->data + off, len);
    if (!hdr) hdr = g;
  }
  fuze_code c;
  int rc = fuze__code_init(&c, k, f, meta->code);
  if (!rc) rc = fuze__code_decode(&c, erased, ptr, len);
  fuze__code_free(&c);
  if (rc) return fail(err, rc, "block %d: %s", b, fuze__thread_msg());
  for (int x = 0; x < k && !rc; x++) {
    if (!erased[x]) continue;
    mview *v = &rec->v[x];
    if (arr)
      v->count = st->rank_counts[p->members[p->block_start[b] + x]], v->seq = 0;
    else
      rc = take_header(st, b, x, k, hdr, v, err);
    v->data = ptr[x];
    if (!rc && nonzero(ptr[x] + v->count * unit, len - v->count * unit))
      rc = fail(err, FUZE_ERR_CORRUPT,
                "'%s' block %d: decoded member %d (rank %d) has stray bytes past its end: the "
                "surviving files disagree",
                st->name, b, x, p->members[p->block_start[b] + x]);
  }
  return rc;
}

/* Every member of block b for structure s, from the files (target and NULL
 * entries are lost), decoding lost primaries when there are any. */
static int recover_block(fuze_pfile *const *files, int target, const fuze_pfile *meta, int s, int b,
                         blockrec *rec, char *err) {
  const fuze_plan *p = &meta->plan;
  int k = block_k(p, b), f = p->f, lost = 0, lostp = 0;
  unsigned char erased[FUZE_PLAN_FIELD];
  rec->buf = NULL;
  for (int x = 0; x < k + f; x++) {
    int r = x < k ? p->members[p->block_start[b] + x] : p->hosts[b * f + x - k];
    erased[x] = r == target || !files[r];
    lost += erased[x];
    lostp += erased[x] && x < k;
    if (!erased[x] && x < k) view_of(&files[r]->structs[s], &rec->v[x]);
  }
  if (!lostp) return FUZE_SUCCESS;
  if (lost > f) return refuse(p, b, erased, lost, err);
  return decode_block(files, meta, s, b, erased, rec, err);
}

static int copy_bytes(unsigned char **dst, const unsigned char *src, size_t n) {
  *dst = NULL;
  if (!n) return 0;
  *dst = malloc(n);
  if (!*dst) return -1;
  memcpy(*dst, src, n);
  return 0;
}

/* Header, plan and structure metadata of `target`, from the reference file. */
static int rebuild_meta(const fuze_pfile *ref, int target, fuze_pfile *out, char *err) {
  out->version = ref->version, out->job_id = ref->job_id, out->epoch = ref->epoch;
  out->ckpt_calls = ref->ckpt_calls, out->rank = target, out->ranks = ref->ranks;
  out->f = ref->f, out->spares = ref->spares, out->code = ref->code;
  if (plan_copy(&out->plan, &ref->plan)) return fail(err, FUZE_ERR_NOMEM, "out of memory");
  out->structs = calloc((size_t)(ref->nstructs ? ref->nstructs : 1), sizeof *out->structs);
  if (!out->structs) return fail(err, FUZE_ERR_NOMEM, "out of memory");
  out->nstructs = ref->nstructs;
  for (int s = 0; s < ref->nstructs; s++) {
    const fuze_pstruct *a = &ref->structs[s];
    fuze_pstruct *o = &out->structs[s];
    memcpy(o->name, a->name, sizeof o->name),
        memcpy(o->type_name, a->type_name, sizeof o->type_name);
    o->kind = a->kind, o->elem = a->elem, o->kb = a->kb, o->nb = a->nb, o->cap = a->cap;
    if (a->rank_counts &&
        copy_bytes((unsigned char **)&o->rank_counts, (const unsigned char *)a->rank_counts,
                   sizeof(uint64_t) * (size_t)ref->ranks))
      return fail(err, FUZE_ERR_NOMEM, "out of memory");
  }
  int n = expected_regions(ref, target);
  out->regions = calloc((size_t)(n ? n : 1), sizeof *out->regions);
  if (!out->regions) return fail(err, FUZE_ERR_NOMEM, "out of memory");
  return FUZE_SUCCESS;
}

static int take_own(fuze_pstruct *o, const mview *v) {
  size_t unit = o->kind == FUZE_PS_ARRAY ? o->elem : o->nb;
  o->count = (size_t)v->count, o->seq = v->seq;
  if (copy_bytes(&o->data, v->data, o->count * unit)) return -1;
  return copy_bytes(&o->keys, v->keys, o->count * o->kb);
}

static int hosts_block(const fuze_plan *p, int rank, int b) {
  for (int j = 0; j < p->f; j++)
    if (p->hosts[b * p->f + j] == rank) return 1;
  return 0;
}

/* Structure s of the target: its primary and every region it hosts. */
static int rebuild_struct(fuze_pfile *const *files, const fuze_pfile *ref, int s, fuze_pfile *out,
                          char *err) {
  const fuze_plan *p = &ref->plan;
  int t = out->rank, own = p->block_of[t], rc = FUZE_SUCCESS;
  blockrec *rec = malloc(sizeof *rec);
  if (!rec) return fail(err, FUZE_ERR_NOMEM, "out of memory");
  for (int b = 0; b < p->nblocks && !rc; b++) {
    if (b != own && !hosts_block(p, t, b)) continue;
    rc = recover_block(files, t, ref, s, b, rec, err);
    if (!rc && b == own && take_own(&out->structs[s], &rec->v[p->index_in_block[t]]))
      rc = fail(err, FUZE_ERR_NOMEM, "out of memory");
    for (int j = 0; j < p->f && !rc; j++) {
      if (p->hosts[b * p->f + j] != t) continue;
      fuze_pregion *g = &out->regions[out->nregions];
      g->s = s, g->block = b, g->j = j, g->bytes = fuze__pfile_region_bytes(ref, s, b);
      g->data = malloc(g->bytes ? g->bytes : 1);
      if (!g->data)
        rc = fail(err, FUZE_ERR_NOMEM, "out of memory");
      else
        out->nregions++, rc = encode_views(ref, s, b, j, rec->v, g->data, g->bytes, err);
    }
    free(rec->buf);
  }
  free(rec);
  return rc;
}

/* The surviving files must be valid, in their slots and of one job. */
static int check_survivors(fuze_pfile *const *files, int ranks, int target, const fuze_pfile **ref,
                           char *err) {
  char msg[FUZE_MSG_LEN];
  *ref = NULL;
  for (int r = 0; r < ranks; r++) {
    const fuze_pfile *m = files[r];
    if (r == target || !m) continue;
    if (model_check(m, msg)) return fail(err, FUZE_ERR_CORRUPT, "rank %d: %s", r, msg);
    if (m->rank != r || m->ranks != ranks)
      return fail(err, FUZE_ERR_CORRUPT, "the file given for rank %d is rank %d of %d", r, m->rank,
                  m->ranks);
    if (!*ref)
      *ref = m;
    else if (fuze__pfile_same_job(*ref, m, msg))
      return fail(err, FUZE_ERR_CORRUPT, "ranks %d and %d disagree: %s", (*ref)->rank, r, msg);
  }
  if (!*ref)
    return fail(err, FUZE_ERR_UNRECOVERABLE, "no surviving file to rebuild rank %d from", target);
  return FUZE_SUCCESS;
}

int fuze__pfile_rebuild(fuze_pfile *const *files, int ranks, int target, fuze_pfile *out,
                        char *err) {
  memset(out, 0, sizeof *out);
  if (!files || ranks < 1 || target < 0 || target >= ranks)
    return fail(err, FUZE_ERR_ARG, "rebuild: rank %d of %d", target, ranks);
  const fuze_pfile *ref;
  int rc = check_survivors(files, ranks, target, &ref, err);
  if (!rc) rc = rebuild_meta(ref, target, out, err);
  for (int s = 0; s < out->nstructs && !rc; s++) rc = rebuild_struct(files, ref, s, out, err);
  char msg[FUZE_MSG_LEN];
  if (!rc && model_check(out, msg))
    rc = fail(err, FUZE_ERR_CORRUPT, "rebuilt rank %d is inconsistent: %s", target, msg);
  if (rc) fuze__pfile_free(out);
  return rc;
}

void fuze__pfile_free(fuze_pfile *m) {
  if (!m) return;
  for (int i = 0; m->structs && i < m->nstructs; i++) {
    free(m->structs[i].rank_counts);
    free(m->structs[i].keys);
    free(m->structs[i].data);
  }
  for (int i = 0; m->regions && i < m->nregions; i++) free(m->regions[i].data);
  free(m->structs);
  free(m->regions);
  fuze__plan_free(&m->plan);
  memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ */
/* HDF5 types and quiet mode                                           */
/* ------------------------------------------------------------------ */

/* The native HDF5 type of an MPI datatype name, or -1 (then: opaque). */
static hid_t native_of(const char *n) {
  static const char *const names[] = {
      "MPI_DOUBLE",      "MPI_FLOAT",          "MPI_INT",
      "MPI_UNSIGNED",    "MPI_LONG",           "MPI_UNSIGNED_LONG",
      "MPI_LONG_LONG",   "MPI_LONG_LONG_INT",  "MPI_UNSIGNED_LONG_LONG",
      "MPI_SHORT",       "MPI_UNSIGNED_SHORT", "MPI_CHAR",
      "MPI_SIGNED_CHAR", "MPI_UNSIGNED_CHAR",  "MPI_BYTE",
      "MPI_INT8_T",      "MPI_INT16_T",        "MPI_INT32_T",
      "MPI_INT64_T",     "MPI_UINT8_T",        "MPI_UINT16_T",
      "MPI_UINT32_T",    "MPI_UINT64_T",       "MPI_C_BOOL",
      "MPI_LONG_DOUBLE"};
  const hid_t types[] = {H5T_NATIVE_DOUBLE, H5T_NATIVE_FLOAT,  H5T_NATIVE_INT,    H5T_NATIVE_UINT,
                         H5T_NATIVE_LONG,   H5T_NATIVE_ULONG,  H5T_NATIVE_LLONG,  H5T_NATIVE_LLONG,
                         H5T_NATIVE_ULLONG, H5T_NATIVE_SHORT,  H5T_NATIVE_USHORT, H5T_NATIVE_CHAR,
                         H5T_NATIVE_SCHAR,  H5T_NATIVE_UCHAR,  H5T_NATIVE_UCHAR,  H5T_NATIVE_INT8,
                         H5T_NATIVE_INT16,  H5T_NATIVE_INT32,  H5T_NATIVE_INT64,  H5T_NATIVE_UINT8,
                         H5T_NATIVE_UINT16, H5T_NATIVE_UINT32, H5T_NATIVE_UINT64, H5T_NATIVE_HBOOL,
                         H5T_NATIVE_LDOUBLE};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(n, names[i]) == 0) return types[i];
  return -1;
}

/* The HDF5 type of an array's elements; *owned says whether to H5Tclose it.
 * A known name whose size is not `elem` is stored opaque too, tagged with
 * the MPI name ("unnamed MPI datatype" when it has none). */
static hid_t array_type(const fuze_pstruct *s, int *owned) {
  hid_t t = native_of(s->type_name);
  *owned = 0;
  if (t >= 0 && H5Tget_size(t) == s->elem) return t;
  t = H5Tcreate(H5T_OPAQUE, s->elem);
  if (t < 0) return -1;
  *owned = 1;
  if (H5Tset_tag(t, s->type_name[0] ? s->type_name : "unnamed MPI datatype") < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

typedef struct quiet {
  H5E_auto2_t func;
  void *data;
} quiet;

/* HDF5 prints its error stack by default; our messages replace it. */
static void quiet_on(quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_off(const quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* Serial (sec2) file access without HDF5's flock(): a rank file is private
 * to its writer until renamed and immutable after, so the lock protects
 * nothing and fails on file systems without flock (some NFS, Lustre). */
static hid_t fapl_new(void) {
  hid_t p = H5Pcreate(H5P_FILE_ACCESS);
  if (p >= 0 && H5Pset_file_locking(p, 0, 1) < 0) {
    H5Pclose(p);
    return -1;
  }
  return p;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

typedef struct wctx {
  const fuze_pfile *m;
  char where[ESC_MAX + 128]; /* the object being written, for the message */
} wctx;

static hid_t cpl_new(hid_t cls) {
  hid_t p = H5Pcreate(cls);
  if (p < 0) return -1;
  if (H5Pset_obj_track_times(p, 0) < 0 ||
      (cls == H5P_DATASET_CREATE && H5Pset_fill_time(p, H5D_FILL_TIME_NEVER) < 0)) {
    H5Pclose(p);
    return -1;
  }
  return p;
}

static int w_attr(hid_t obj, const char *name, hid_t type, hsize_t n, const void *v) {
  hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = sp < 0 ? -1 : H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a < 0 || H5Awrite(a, type, v) < 0 ? -1 : 0;
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static int w_u64(hid_t o, const char *n, uint64_t v) {
  return w_attr(o, n, H5T_NATIVE_UINT64, 0, &v);
}

static int w_i64(hid_t o, const char *n, int64_t v) {
  return w_attr(o, n, H5T_NATIVE_INT64, 0, &v);
}

static int w_str(hid_t o, const char *n, const char *s) {
  hid_t t = H5Tcopy(H5T_C_S1);
  int rc = t < 0 || H5Tset_size(t, strlen(s) + 1) < 0 || w_attr(o, n, t, 0, s) ? -1 : 0;
  if (t >= 0) H5Tclose(t);
  return rc;
}

static int w_ds(hid_t loc, const char *name, hid_t type, int ndims, const hsize_t *dims,
                const void *buf, size_t bytes) {
  hid_t sp = H5Screate_simple(ndims, dims, NULL), dcpl = cpl_new(H5P_DATASET_CREATE);
  hid_t d =
      sp < 0 || dcpl < 0 ? -1 : H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  int rc = d < 0 ? -1 : 0;
  if (!rc && bytes) rc = H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
  if (!rc) rc = w_u64(d, "crc64", crc(buf, bytes));
  if (d >= 0) H5Dclose(d);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static hid_t w_group(hid_t loc, const char *name) {
  hid_t gcpl = cpl_new(H5P_GROUP_CREATE);
  hid_t g = gcpl < 0 ? -1 : H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  return g;
}

static int write_root(wctx *w, hid_t f, uint64_t digest) {
  const fuze_pfile *m = w->m;
  uint32_t v = m->version;
  snprintf(w->where, sizeof w->where, "the root attributes");
  if (w_str(f, "format", "fuze") || w_attr(f, "format_version", H5T_NATIVE_UINT32, 0, &v) ||
      w_u64(f, "job_id", m->job_id) || w_u64(f, "epoch", m->epoch) ||
      w_i64(f, "ckpt_calls", m->ckpt_calls) || w_i64(f, "rank", m->rank) ||
      w_i64(f, "ranks", m->ranks) || w_i64(f, "faults", m->f) || w_i64(f, "spares", m->spares) ||
      w_i64(f, "domain", m->plan.domain[m->rank]) || w_i64(f, "ndomains", m->plan.ndomains) ||
      w_str(f, "code", code_name(m->code)) || w_i64(f, "block", m->plan.block_of[m->rank]) ||
      w_u64(f, "model_crc64", digest))
    return -1;
  return 0;
}

/* The f x k_b coefficient matrices of every block, in block order. */
static int all_coefficients(const fuze_pfile *m, unsigned char **out, size_t *n) {
  const fuze_plan *p = &m->plan;
  size_t total = (size_t)p->ncompute * (size_t)p->f, o = 0;
  unsigned char *c = malloc(total ? total : 1);
  if (!c) return FUZE_ERR_NOMEM;
  for (int b = 0; b < p->nblocks; b++) {
    fuze_code code;
    int rc = fuze__code_init(&code, block_k(p, b), p->f, m->code);
    if (rc) {
      free(c);
      return rc;
    }
    memcpy(c + o, code.coef, (size_t)p->f * (size_t)block_k(p, b));
    o += (size_t)p->f * (size_t)block_k(p, b);
    fuze__code_free(&code);
  }
  *out = c, *n = total;
  return FUZE_SUCCESS;
}

static int write_plan(wctx *w, hid_t f) {
  const fuze_plan *p = &w->m->plan;
  snprintf(w->where, sizeof w->where, "/plan");
  hid_t g = w_group(f, "plan");
  if (g < 0) return -1;
  hsize_t d1 = (hsize_t)p->nranks, d2 = (hsize_t)p->nblocks + 1, d3 = (hsize_t)p->ncompute,
          d4 = (hsize_t)p->nblocks * (hsize_t)p->f, d5;
  unsigned char *coef = NULL;
  size_t ncoef = 0;
  int rc = all_coefficients(w->m, &coef, &ncoef) ? -1 : 0;
  d5 = ncoef;
  if (!rc)
    rc = w_ds(g, "domain", H5T_NATIVE_INT, 1, &d1, p->domain, sizeof(int) * d1) ||
         w_ds(g, "block_start", H5T_NATIVE_INT, 1, &d2, p->block_start, sizeof(int) * d2) ||
         w_ds(g, "members", H5T_NATIVE_INT, 1, &d3, p->members, sizeof(int) * d3) ||
         w_ds(g, "hosts", H5T_NATIVE_INT, 1, &d4, p->hosts, sizeof(int) * d4) ||
         w_ds(g, "coefficients", H5T_NATIVE_UINT8, 1, &d5, coef, ncoef);
  free(coef);
  H5Gclose(g);
  return rc;
}

static int write_array(wctx *w, hid_t garr, int i) {
  const fuze_pstruct *s = &w->m->structs[i];
  char esc[ESC_MAX];
  name_escape(s->name, esc);
  snprintf(w->where, sizeof w->where, "/arrays/%s", esc);
  int owned;
  hid_t t = array_type(s, &owned);
  if (t < 0) return -1;
  hsize_t n = s->count;
  int rc = w_ds(garr, esc, t, 1, &n, s->data, s->count * s->elem);
  if (owned) H5Tclose(t);
  hid_t d = rc ? -1 : H5Dopen2(garr, esc, H5P_DEFAULT);
  if (d < 0) return -1;
  rc = w_str(d, "name", s->name) || w_str(d, "mpi_type", s->type_name) ||
       w_u64(d, "elem_size", s->elem) || w_i64(d, "index", i) ||
       w_attr(d, "rank_counts", H5T_NATIVE_UINT64, (hsize_t)w->m->ranks, s->rank_counts);
  H5Dclose(d);
  return rc;
}

static int write_fobj(wctx *w, hid_t gparent, int i) {
  const fuze_pstruct *s = &w->m->structs[i];
  int map = s->kind == FUZE_PS_MAP;
  char esc[ESC_MAX];
  name_escape(s->name, esc);
  snprintf(w->where, sizeof w->where, "/%s/%s", map ? "maps" : "stacks", esc);
  hid_t g = w_group(gparent, esc);
  if (g < 0) return -1;
  hsize_t dk[2] = {s->count, s->kb}, dv[2] = {s->count, s->nb};
  int rc = w_str(g, "name", s->name) || w_i64(g, "index", i) || w_u64(g, "seq", s->seq) ||
           w_u64(g, "cap", s->cap) || w_u64(g, "key_size", s->kb) ||
           w_u64(g, "value_size", s->nb) ||
           (map && w_ds(g, "keys", H5T_NATIVE_UINT8, 2, dk, s->keys, s->count * s->kb)) ||
           w_ds(g, map ? "values" : "elements", H5T_NATIVE_UINT8, 2, dv, s->data, s->count * s->nb);
  H5Gclose(g);
  return rc;
}

static int write_parity(wctx *w, hid_t gpar, int s) {
  const fuze_pfile *m = w->m;
  char esc[ESC_MAX], dname[48];
  name_escape(m->structs[s].name, esc);
  snprintf(w->where, sizeof w->where, "/parity/%s", esc);
  hid_t g = w_group(gpar, esc);
  if (g < 0) return -1;
  int rc = w_str(g, "name", m->structs[s].name);
  for (int i = 0; i < m->nregions && !rc; i++) {
    const fuze_pregion *r = &m->regions[i];
    if (r->s != s) continue;
    snprintf(dname, sizeof dname, "block-%d.backup-%d", r->block, r->j);
    snprintf(w->where, sizeof w->where, "/parity/%s/%s", esc, dname);
    hsize_t n = r->bytes;
    rc = w_ds(g, dname, H5T_NATIVE_UINT8, 1, &n, r->data, r->bytes);
    hid_t d = rc ? -1 : H5Dopen2(g, dname, H5P_DEFAULT);
    if (d < 0)
      rc = -1;
    else {
      rc = w_i64(d, "block", r->block) || w_i64(d, "backup", r->j) ? -1 : 0;
      H5Dclose(d);
    }
  }
  H5Gclose(g);
  return rc;
}

static int write_structs(wctx *w, hid_t f) {
  const char *names[] = {"arrays", "stacks", "maps", "parity"};
  hid_t g[4];
  int rc = 0, n = 0;
  for (; n < 4 && !rc; n++) {
    snprintf(w->where, sizeof w->where, "/%s", names[n]);
    g[n] = w_group(f, names[n]);
    if (g[n] < 0) rc = -1;
  }
  if (rc) n--;
  for (int i = 0; i < w->m->nstructs && !rc; i++) {
    int kind = w->m->structs[i].kind;
    rc = kind == FUZE_PS_ARRAY ? write_array(w, g[0], i) : write_fobj(w, g[kind], i);
    if (!rc) rc = write_parity(w, g[3], i);
  }
  for (int i = 0; i < n; i++) H5Gclose(g[i]);
  return rc;
}

/* Seal: the user block records the length and a crc64 of the HDF5 part. */
static void seal_header(unsigned char *h, uint32_t version, uint64_t len, uint64_t body_crc) {
  memset(h, 0, 40);
  memcpy(h, UB_MAGIC, 8);
  for (int i = 0; i < 4; i++) h[8 + i] = (unsigned char)(version >> (8 * i));
  for (int i = 0; i < 4; i++) h[12 + i] = (unsigned char)((uint32_t)UB_BYTES >> (8 * i));
  put_le64(h + 16, len);
  put_le64(h + 24, body_crc);
  put_le64(h + 32, crc(h, 32));
}

/* crc64 of [UB_BYTES, len) of an open file. */
static int crc_fd(int fd, uint64_t len, uint64_t *out) {
  size_t bufsize = 1 << 20;
  unsigned char *buf = malloc(bufsize);
  if (!buf) return -1;
  uint64_t c = 0, off = UB_BYTES;
  while (off < len) {
    size_t want = len - off < bufsize ? (size_t)(len - off) : bufsize;
    ssize_t got = pread(fd, buf, want, (off_t)off);
    if (got <= 0) {
      if (got == 0) errno = EIO;
      if (got < 0 && errno == EINTR) continue;
      free(buf);
      return -1;
    }
    c = crc_more(c, buf, (size_t)got);
    off += (uint64_t)got;
  }
  free(buf);
  *out = c;
  return 0;
}

static int seal(const char *path, uint32_t version, char *err) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(err, FUZE_ERR_IO, "%s: cannot reopen to seal: %s", path, strerror(errno));
  struct stat st;
  unsigned char h[40];
  uint64_t body = 0;
  int rc = FUZE_SUCCESS;
  if (fstat(fd, &st) || crc_fd(fd, (uint64_t)st.st_size, &body))
    rc = fail(err, FUZE_ERR_IO, "%s: cannot read back: %s", path, strerror(errno));
  else if (st.st_size < UB_BYTES)
    rc = fail(err, FUZE_ERR_IO, "%s: HDF5 left no user block", path);
  if (!rc) {
    seal_header(h, version, (uint64_t)st.st_size, body);
    if (pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h || fsync(fd))
      rc = fail(err, FUZE_ERR_IO, "%s: cannot seal: %s", path, strerror(errno ? errno : EIO));
  }
  if (close(fd) && !rc) rc = fail(err, FUZE_ERR_IO, "%s: close: %s", path, strerror(errno));
  return rc;
}

static int write_hdf5(wctx *w, const char *path, char *err) {
  hid_t fcpl = cpl_new(H5P_FILE_CREATE);
  if (fcpl < 0 || H5Pset_userblock(fcpl, UB_BYTES) < 0) {
    if (fcpl >= 0) H5Pclose(fcpl);
    return fail(err, FUZE_ERR_IO, "%s: cannot set up HDF5 file properties", path);
  }
  hid_t fapl = fapl_new();
  errno = 0;
  hid_t f = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
  H5Pclose(fcpl);
  if (fapl >= 0) H5Pclose(fapl);
  if (f < 0)
    return fail(err, FUZE_ERR_IO, "%s: HDF5 cannot create it: %s", path,
                errno ? strerror(errno) : "unknown reason");
  int rc = write_root(w, f, model_digest(w->m)) || write_plan(w, f) || write_structs(w, f);
  int e = errno;
  if (!rc) {
    snprintf(w->where, sizeof w->where, "the file (flush)");
    rc = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : 0;
    e = errno;
  }
  if (H5Fclose(f) < 0 && !rc) {
    snprintf(w->where, sizeof w->where, "the file (close)");
    rc = -1, e = errno;
  }
  if (rc)
    return fail(err, FUZE_ERR_IO, "%s: cannot write %s%s%s", path, w->where, e ? ": " : "",
                e ? strerror(e) : "");
  return FUZE_SUCCESS;
}

int fuze__pfile_write(const fuze_pfile *m, const char *path, char *err) {
  char msg[FUZE_MSG_LEN];
  if (model_check(m, msg))
    return fail(err, FUZE_ERR_ARG, "%s: refusing to write an invalid model: %s", path, msg);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(err, FUZE_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  close(fd);
  wctx w = {m, ""};
  quiet q;
  quiet_on(&q);
  int rc = write_hdf5(&w, path, err);
  quiet_off(&q);
  return rc ? rc : seal(path, m->version, err);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

#define ANY ((hsize_t)-1)

typedef struct rd {
  const char *label;
  char *err;
  uint64_t file_bytes;
  int code; /* the FUZE_ERR_* of the first failure */
} rd;

__attribute__((format(printf, 2, 3))) static int rbad(rd *x, const char *fmt, ...) {
  char msg[FUZE_MSG_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!x->code) x->code = FUZE_ERR_CORRUPT;
  return fail(x->err, FUZE_ERR_CORRUPT, "%s: %s", x->label, msg);
}

static int rnomem(rd *x) {
  x->code = FUZE_ERR_NOMEM;
  return fail(x->err, FUZE_ERR_NOMEM, "%s: out of memory", x->label);
}

static int open_obj(rd *x, hid_t loc, const char *name, const char *path, H5I_type_t want,
                    hid_t *id) {
  const char *what = want == H5I_DATASET ? "dataset" : "group";
  *id = -1;
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return rbad(x, "missing %s %s", what, path);
  H5L_info_t li;
  if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0 || li.type != H5L_TYPE_HARD)
    return rbad(x, "%s is not a hard link", path);
  hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
  if (o < 0) return rbad(x, "cannot open %s", path);
  if (H5Iget_type(o) != want) {
    H5Oclose(o);
    return rbad(x, "%s is not a %s", path, what);
  }
  *id = o;
  return 0;
}

/* A scalar (n == 0) or 1-D attribute of exactly `type`. */
static int r_attr(rd *x, hid_t obj, const char *path, const char *name, hid_t type, hsize_t n,
                  void *out) {
  if (H5Aexists(obj, name) <= 0) return rbad(x, "missing attribute '%s' of %s", name, path);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
  int ok = a >= 0 && t >= 0 && sp >= 0 && H5Tequal(t, type) > 0;
  if (ok && n == 0) ok = H5Sget_simple_extent_type(sp) == H5S_SCALAR;
  if (ok && n) {
    hsize_t d = 0;
    ok = H5Sget_simple_extent_type(sp) == H5S_SIMPLE && H5Sget_simple_extent_ndims(sp) == 1 &&
         H5Sget_simple_extent_dims(sp, &d, NULL) == 1 && d == n;
  }
  if (ok) ok = H5Aread(a, type, out) >= 0;
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return ok ? 0 : rbad(x, "attribute '%s' of %s has the wrong type or shape", name, path);
}

static int r_u64(rd *x, hid_t o, const char *path, const char *name, uint64_t *v) {
  return r_attr(x, o, path, name, H5T_NATIVE_UINT64, 0, v);
}

/* A signed attribute that must lie in [lo, hi]. */
static int r_int(rd *x, hid_t o, const char *path, const char *name, int64_t lo, int64_t hi,
                 int64_t *v) {
  if (r_attr(x, o, path, name, H5T_NATIVE_INT64, 0, v)) return -1;
  if (*v < lo || *v > hi)
    return rbad(x, "attribute '%s' of %s is %" PRId64 ", outside %" PRId64 "..%" PRId64, name, path,
                *v, lo, hi);
  return 0;
}

/* A fixed-length string attribute of at most cap - 1 bytes. */
static int r_str(rd *x, hid_t obj, const char *path, const char *name, char *out, size_t cap) {
  if (H5Aexists(obj, name) <= 0) return rbad(x, "missing attribute '%s' of %s", name, path);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
  size_t size = t < 0 ? 0 : H5Tget_size(t);
  int ok = sp >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0 && size >= 1 &&
           size < cap && H5Sget_simple_extent_type(sp) == H5S_SCALAR;
  if (ok) ok = H5Aread(a, t, out) >= 0;
  if (ok) out[size] = 0;
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return ok ? 0 : rbad(x, "attribute '%s' of %s is not a short string", name, path);
}

/* Only plain contiguous datasets: no external files, virtual layouts or
 * filters can make the reader touch anything but this file's bytes. */
static int plain_layout(hid_t d) {
  hid_t p = H5Dget_create_plist(d);
  if (p < 0) return 0;
  int ok = H5Pget_layout(p) == H5D_CONTIGUOUS && H5Pget_external_count(p) == 0;
  H5Pclose(p);
  return ok;
}

static int shape_ok(rd *x, hid_t d, const char *path, int ndims, hsize_t *dims) {
  hid_t sp = H5Dget_space(d);
  hsize_t got[2] = {0, 0};
  int ok = sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SIMPLE &&
           H5Sget_simple_extent_ndims(sp) == ndims &&
           H5Sget_simple_extent_dims(sp, got, NULL) == ndims;
  if (sp >= 0) H5Sclose(sp);
  if (!ok) return rbad(x, "dataset %s does not have %d dimension(s)", path, ndims);
  for (int i = 0; i < ndims; i++) {
    if (dims[i] != ANY && got[i] != dims[i])
      return rbad(x, "dataset %s has %llu elements in dimension %d, expected %llu", path,
                  (unsigned long long)got[i], i, (unsigned long long)dims[i]);
    dims[i] = got[i];
  }
  return 0;
}

/* Read a dataset of exactly `type` whose shape matches dims (ANY: any size
 * up to max0 for dimension 0), check its crc64, return its bytes (malloc'd). */
static int r_ds(rd *x, hid_t loc, const char *name, const char *path, hid_t type, int ndims,
                hsize_t *dims, hsize_t max0, unsigned char **out, size_t *nbytes) {
  hid_t d, t = -1;
  *out = NULL;
  if (open_obj(x, loc, name, path, H5I_DATASET, &d)) return -1;
  int rc = 0;
  t = H5Dget_type(d);
  if (t < 0 || H5Tequal(t, type) <= 0)
    rc = rbad(x, "dataset %s has the wrong type", path);
  else if (!plain_layout(d))
    rc = rbad(x, "dataset %s is not stored contiguously", path);
  else
    rc = shape_ok(x, d, path, ndims, dims);
  size_t bytes = H5Tget_size(type);
  for (int i = 0; i < ndims && !rc; i++)
    if ((i == 0 && dims[0] > max0) || __builtin_mul_overflow(bytes, dims[i], &bytes))
      rc = rbad(x, "dataset %s is too large", path);
  if (!rc && (bytes > x->file_bytes || H5Dget_storage_size(d) < bytes))
    rc = rbad(x, "dataset %s is truncated (%zu bytes expected)", path, bytes);
  if (!rc && !(*out = malloc(bytes ? bytes : 1))) rc = rnomem(x);
  if (!rc && bytes && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
    rc = rbad(x, "cannot read dataset %s", path);
  uint64_t want;
  if (!rc && !(rc = r_u64(x, d, path, "crc64", &want)) && want != crc(*out, bytes))
    rc = rbad(x, "crc64 mismatch in dataset %s", path);
  if (t >= 0) H5Tclose(t);
  H5Oclose(d);
  if (rc) {
    free(*out);
    *out = NULL;
    return rc;
  }
  *nbytes = bytes;
  return 0;
}

/* A 1-D int dataset of exactly n elements (or ANY up to max). */
static int r_ints(rd *x, hid_t g, const char *name, hsize_t n, hsize_t max, int **out,
                  hsize_t *got) {
  char path[64];
  snprintf(path, sizeof path, "/plan/%s", name);
  size_t bytes;
  unsigned char *buf;
  if (r_ds(x, g, name, path, H5T_NATIVE_INT, 1, &n, max, &buf, &bytes)) return -1;
  *out = (int *)buf;
  if (got) *got = n;
  return 0;
}

typedef struct root {
  int64_t domain, ndomains, block;
} root;

static int read_root(rd *x, hid_t f, fuze_pfile *m, root *rt) {
  char s[16];
  if (r_str(x, f, "/", "format", s, sizeof s) || strcmp(s, "fuze"))
    return rbad(x, "not a fuze rank file (attribute 'format')");
  if (r_attr(x, f, "/", "format_version", H5T_NATIVE_UINT32, 0, &m->version)) return -1;
  if (m->version != FUZE_PFILE_VERSION)
    return rbad(x, "written by format version %u; this fuze reads version %d", m->version,
                FUZE_PFILE_VERSION);
  int64_t rank, ranks, f_, spares;
  if (r_u64(x, f, "/", "job_id", &m->job_id) || r_u64(x, f, "/", "epoch", &m->epoch) ||
      r_int(x, f, "/", "ckpt_calls", 0, INT64_MAX, &m->ckpt_calls) ||
      r_int(x, f, "/", "ranks", 1, MAX_RANKS, &ranks) ||
      r_int(x, f, "/", "rank", 0, ranks - 1, &rank) || r_int(x, f, "/", "faults", 1, 255, &f_) ||
      r_int(x, f, "/", "ndomains", 1, ranks, &rt->ndomains) ||
      r_int(x, f, "/", "spares", 0, rt->ndomains - 1, &spares) ||
      r_int(x, f, "/", "domain", 0, rt->ndomains - 1, &rt->domain) ||
      r_int(x, f, "/", "block", -1, ranks - 1, &rt->block) || r_str(x, f, "/", "code", s, sizeof s))
    return -1;
  m->rank = (int)rank, m->ranks = (int)ranks, m->f = (int)f_, m->spares = (int)spares;
  if ((m->code = code_parse(s)) < 0) return rbad(x, "unknown code '%s'", s);
  return 0;
}

/* The coefficients must be exactly those fuze__code_init gives. */
static int check_coefficients(rd *x, hid_t g, const fuze_pfile *m) {
  unsigned char *want = NULL, *got = NULL;
  size_t n = 0, bytes;
  if (all_coefficients(m, &want, &n))
    return rbad(x, "the plan's blocks do not fit code %s with faults=%d", code_name(m->code), m->f);
  hsize_t dn = n;
  int rc =
      r_ds(x, g, "coefficients", "/plan/coefficients", H5T_NATIVE_UINT8, 1, &dn, ANY, &got, &bytes);
  if (!rc && memcmp(want, got, n))
    rc = rbad(x, "/plan/coefficients differ from the %s code's", code_name(m->code));
  free(want);
  free(got);
  return rc;
}

static int read_plan(rd *x, hid_t f, fuze_pfile *m, const root *rt) {
  fuze_plan *p = &m->plan;
  hid_t g;
  if (open_obj(x, f, "plan", "/plan", H5I_GROUP, &g)) return -1;
  p->nranks = m->ranks, p->ndomains = (int)rt->ndomains, p->spares = m->spares, p->f = m->f;
  hsize_t nbs = 0;
  int rc = r_ints(x, g, "domain", (hsize_t)m->ranks, ANY, &p->domain, NULL) ||
           r_ints(x, g, "block_start", ANY, (hsize_t)m->ranks + 1, &p->block_start, &nbs);
  if (!rc && nbs < 2) rc = rbad(x, "/plan/block_start has %llu entries", (unsigned long long)nbs);
  if (!rc) {
    p->nblocks = (int)nbs - 1;
    for (int r = 0; r < p->nranks; r++) {
      int d = p->domain[r];
      p->ncompute += d >= 0 && d < p->ndomains && !is_spare_domain(p, d);
    }
    rc = r_ints(x, g, "members", (hsize_t)p->ncompute, ANY, &p->members, NULL) ||
         r_ints(x, g, "hosts", (hsize_t)p->nblocks * (hsize_t)p->f, ANY, &p->hosts, NULL);
  }
  if (!rc) {
    p->block_of = malloc(sizeof(int) * (size_t)p->nranks);
    p->index_in_block = malloc(sizeof(int) * (size_t)p->nranks);
    if (!p->block_of || !p->index_in_block) rc = rnomem(x);
  }
  char msg[FUZE_MSG_LEN];
  if (!rc && plan_check(p, 1, msg)) rc = rbad(x, "%s", msg);
  if (!rc && check_codes(m, msg)) rc = rbad(x, "%s", msg);
  if (!rc) rc = check_coefficients(x, g, m);
  if (!rc && (rt->domain != p->domain[m->rank] || rt->block != p->block_of[m->rank]))
    rc = rbad(x,
              "root attributes domain=%" PRId64 " block=%" PRId64
              " disagree with the plan's %d and %d for rank %d",
              rt->domain, rt->block, p->domain[m->rank], p->block_of[m->rank], m->rank);
  H5Gclose(g);
  return rc ? -1 : 0;
}

/* The link names of a group, unescaped, in name order. */
static int list_group(rd *x, hid_t g, const char *path, char (**names)[FUZE_PFILE_NAME_MAX],
                      char (**escs)[ESC_MAX], hsize_t *n) {
  H5G_info_t info;
  *names = NULL, *escs = NULL;
  if (H5Gget_info(g, &info) < 0) return rbad(x, "cannot list %s", path);
  if (info.nlinks > MAX_STRUCTS)
    return rbad(x, "%s holds %llu links", path, (unsigned long long)info.nlinks);
  *n = info.nlinks;
  *names = calloc(*n ? *n : 1, sizeof **names);
  *escs = calloc(*n ? *n : 1, sizeof **escs);
  if (!*names || !*escs) return rnomem(x);
  for (hsize_t i = 0; i < *n; i++) {
    ssize_t len =
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, (*escs)[i], ESC_MAX, H5P_DEFAULT);
    if (len < 1 || len >= ESC_MAX || name_unescape((*escs)[i], (*names)[i]))
      return rbad(x, "%s holds a link with a bad name", path);
  }
  return 0;
}

static int r_name_attr(rd *x, hid_t o, const char *path, const char *want) {
  char name[FUZE_PFILE_NAME_MAX];
  if (r_str(x, o, path, "name", name, sizeof name)) return -1;
  if (strcmp(name, want)) return rbad(x, "%s is named '%s' inside", path, name);
  return 0;
}

static int claim_index(rd *x, fuze_pfile *m, int64_t idx, const char *path) {
  if (m->structs[idx].name[0]) return rbad(x, "%s repeats structure index %" PRId64, path, idx);
  return 0;
}

static int read_array(rd *x, hid_t g, const char *name, const char *esc, fuze_pfile *m) {
  char path[ESC_MAX + 16];
  snprintf(path, sizeof path, "/arrays/%s", esc);
  hid_t d;
  if (open_obj(x, g, esc, path, H5I_DATASET, &d)) return -1;
  fuze_pstruct tmp = {0};
  int64_t idx;
  uint64_t elem;
  int rc = r_name_attr(x, d, path, name) ||
           r_str(x, d, path, "mpi_type", tmp.type_name, sizeof tmp.type_name) ||
           r_u64(x, d, path, "elem_size", &elem) ||
           r_int(x, d, path, "index", 0, m->nstructs - 1, &idx);
  if (!rc && (elem < 1 || elem > (1u << 20))) rc = rbad(x, "%s: element size %" PRIu64, path, elem);
  if (!rc) rc = claim_index(x, m, idx, path);
  fuze_pstruct *s = rc ? NULL : &m->structs[idx];
  if (s) {
    s->kind = FUZE_PS_ARRAY, s->elem = (size_t)elem;
    memcpy(s->type_name, tmp.type_name, sizeof s->type_name);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->rank_counts = malloc(sizeof(uint64_t) * (size_t)m->ranks);
    if (!s->rank_counts)
      rc = rnomem(x);
    else
      rc = r_attr(x, d, path, "rank_counts", H5T_NATIVE_UINT64, (hsize_t)m->ranks, s->rank_counts);
  }
  H5Oclose(d);
  if (rc) return -1;
  if (s->rank_counts[m->rank] > (uint64_t)(SIZE_MAX / 4) / s->elem)
    return rbad(x, "%s: %" PRIu64 " elements", path, s->rank_counts[m->rank]);
  int owned;
  hid_t t = array_type(s, &owned);
  if (t < 0) return rbad(x, "%s: cannot build its type", path);
  hsize_t n = s->rank_counts[m->rank];
  size_t bytes;
  rc = r_ds(x, g, esc, path, t, 1, &n, ANY, &s->data, &bytes);
  if (owned) H5Tclose(t);
  s->count = (size_t)n;
  return rc;
}

static int read_fobj(rd *x, hid_t parent, int kind, const char *name, const char *esc,
                     fuze_pfile *m) {
  int map = kind == FUZE_PS_MAP;
  char path[ESC_MAX + 16], dpath[ESC_MAX + 32];
  snprintf(path, sizeof path, "/%s/%s", map ? "maps" : "stacks", esc);
  hid_t g;
  if (open_obj(x, parent, esc, path, H5I_GROUP, &g)) return -1;
  int64_t idx;
  uint64_t seq, cap, kb, nb;
  H5G_info_t info;
  int rc = r_name_attr(x, g, path, name) || r_int(x, g, path, "index", 0, m->nstructs - 1, &idx) ||
           r_u64(x, g, path, "seq", &seq) || r_u64(x, g, path, "cap", &cap) ||
           r_u64(x, g, path, "key_size", &kb) || r_u64(x, g, path, "value_size", &nb);
  if (!rc && (cap > SIZE_MAX / 4 || kb > (1u << 30) || nb > (1u << 30)))
    rc = rbad(x, "%s: capacity or sizes out of range", path);
  if (!rc) rc = claim_index(x, m, idx, path);
  if (!rc && (H5Gget_info(g, &info) < 0 || info.nlinks != (hsize_t)(map ? 2 : 1)))
    rc = rbad(x, "%s holds unexpected objects", path);
  fuze_pstruct *s = rc ? NULL : &m->structs[idx];
  if (s) {
    snprintf(s->name, sizeof s->name, "%s", name);
    s->kind = kind, s->seq = seq, s->cap = (size_t)cap, s->kb = (size_t)kb, s->nb = (size_t)nb;
    hsize_t dk[2] = {ANY, kb}, dv[2] = {ANY, nb};
    size_t bytes;
    if (map) {
      snprintf(dpath, sizeof dpath, "%s/keys", path);
      rc = r_ds(x, g, "keys", dpath, H5T_NATIVE_UINT8, 2, dk, cap, &s->keys, &bytes);
    }
    snprintf(dpath, sizeof dpath, "%s/%s", path, map ? "values" : "elements");
    if (!rc)
      rc = r_ds(x, g, map ? "values" : "elements", dpath, H5T_NATIVE_UINT8, 2, dv, cap, &s->data,
                &bytes);
    if (!rc) s->count = (size_t)dv[0];
    if (!rc && map && dk[0] != dv[0])
      rc = rbad(x, "%s: %llu keys but %llu values", path, (unsigned long long)dk[0],
                (unsigned long long)dv[0]);
  }
  H5Gclose(g);
  return rc;
}

static int read_kind(rd *x, hid_t f, int kind, fuze_pfile *m, char (*names)[FUZE_PFILE_NAME_MAX],
                     char (*escs)[ESC_MAX], hsize_t n) {
  const char *gname = kind == FUZE_PS_ARRAY ? "arrays" : kind == FUZE_PS_STACK ? "stacks" : "maps";
  hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
  if (g < 0) return rbad(x, "cannot open /%s", gname);
  int rc = 0;
  for (hsize_t i = 0; i < n && !rc; i++)
    rc = kind == FUZE_PS_ARRAY ? read_array(x, g, names[i], escs[i], m)
                               : read_fobj(x, g, kind, names[i], escs[i], m);
  H5Gclose(g);
  return rc;
}

static int read_structs(rd *x, hid_t f, fuze_pfile *m) {
  static const char *const gnames[3] = {"arrays", "stacks", "maps"};
  char(*names[3])[FUZE_PFILE_NAME_MAX] = {0}, (*escs[3])[ESC_MAX] = {0};
  hsize_t n[3] = {0, 0, 0};
  int rc = 0;
  for (int k = 0; k < 3 && !rc; k++) {
    char path[16];
    hid_t g;
    snprintf(path, sizeof path, "/%s", gnames[k]);
    if (open_obj(x, f, gnames[k], path, H5I_GROUP, &g))
      rc = -1;
    else
      rc = list_group(x, g, path, &names[k], &escs[k], &n[k]), H5Gclose(g);
  }
  if (!rc && n[0] + n[1] + n[2] > MAX_STRUCTS) rc = rbad(x, "too many structures");
  if (!rc) {
    m->nstructs = (int)(n[0] + n[1] + n[2]);
    m->structs = calloc((size_t)(m->nstructs ? m->nstructs : 1), sizeof *m->structs);
    if (!m->structs) rc = rnomem(x);
  }
  for (int k = 0; k < 3 && !rc; k++) rc = read_kind(x, f, k, m, names[k], escs[k], n[k]);
  for (int k = 0; k < 3; k++) free(names[k]), free(escs[k]);
  return rc ? -1 : 0;
}

static int read_region(rd *x, hid_t g, const char *gpath, fuze_pfile *m, int s, int b, int j) {
  char dname[64], path[ESC_MAX + 96];
  snprintf(dname, sizeof dname, "block-%d.backup-%d", b, j);
  snprintf(path, sizeof path, "%s/%s", gpath, dname);
  fuze_pregion *r = &m->regions[m->nregions];
  hsize_t n = fuze__pfile_region_bytes(m, s, b);
  int rc = r_ds(x, g, dname, path, H5T_NATIVE_UINT8, 1, &n, ANY, &r->data, &r->bytes);
  if (rc) return rc;
  r->s = s, r->block = b, r->j = j;
  m->nregions++;
  hid_t d = H5Dopen2(g, dname, H5P_DEFAULT);
  int64_t bb, jj;
  rc = d < 0 ? rbad(x, "cannot open %s", path)
             : r_int(x, d, path, "block", b, b, &bb) || r_int(x, d, path, "backup", j, j, &jj);
  if (d >= 0) H5Dclose(d);
  return rc;
}

static int read_parity_of(rd *x, hid_t gpar, fuze_pfile *m, int s) {
  const fuze_plan *p = &m->plan;
  char esc[ESC_MAX], path[ESC_MAX + 16];
  name_escape(m->structs[s].name, esc);
  snprintf(path, sizeof path, "/parity/%s", esc);
  hid_t g;
  if (open_obj(x, gpar, esc, path, H5I_GROUP, &g)) return -1;
  H5G_info_t info;
  int rc = r_name_attr(x, g, path, m->structs[s].name), want = 0;
  for (int b = 0; b < p->nblocks && !rc; b++)
    for (int j = 0; j < p->f && !rc; j++)
      if (p->hosts[b * p->f + j] == m->rank) rc = read_region(x, g, path, m, s, b, j), want++;
  if (!rc && (H5Gget_info(g, &info) < 0 || info.nlinks != (hsize_t)want))
    rc = rbad(x, "%s holds %llu regions, the plan gives this rank %d", path,
              (unsigned long long)info.nlinks, want);
  H5Gclose(g);
  return rc;
}

static int read_parity(rd *x, hid_t f, fuze_pfile *m) {
  char msg[FUZE_MSG_LEN];
  if (check_structs(m, msg)) return rbad(x, "%s", msg);
  hid_t g;
  if (open_obj(x, f, "parity", "/parity", H5I_GROUP, &g)) return -1;
  H5G_info_t info;
  int rc = 0;
  if (H5Gget_info(g, &info) < 0 || info.nlinks != (hsize_t)m->nstructs)
    rc = rbad(x, "/parity holds %llu groups for %d structures", (unsigned long long)info.nlinks,
              m->nstructs);
  int n = expected_regions(m, m->rank);
  m->regions = rc ? NULL : calloc((size_t)(n ? n : 1), sizeof *m->regions);
  if (!rc && !m->regions) rc = rnomem(x);
  for (int s = 0; s < m->nstructs && !rc; s++) rc = read_parity_of(x, g, m, s);
  H5Gclose(g);
  return rc;
}

static int read_model(rd *x, hid_t f, fuze_pfile *m) {
  root rt;
  char msg[FUZE_MSG_LEN];
  uint64_t digest;
  H5G_info_t info;
  if (read_root(x, f, m, &rt) || read_plan(x, f, m, &rt) || read_structs(x, f, m) ||
      read_parity(x, f, m))
    return -1;
  if (H5Gget_info(f, &info) < 0 || info.nlinks != 5)
    return rbad(x, "the root group holds %llu objects, expected 5",
                (unsigned long long)info.nlinks);
  if (model_check(m, msg)) return rbad(x, "%s", msg);
  if (r_u64(x, f, "/", "model_crc64", &digest)) return -1;
  if (digest != model_digest(m)) return rbad(x, "model_crc64 mismatch: attributes were altered");
  return 0;
}

/* The seal (user block) of a file of `len` bytes whose first UB_BYTES are h. */
static int check_seal(rd *x, const unsigned char *h, uint64_t len) {
  if (len < UB_BYTES) return rbad(x, "truncated: %" PRIu64 " bytes", len);
  if (memcmp(h, UB_MAGIC, 8)) return rbad(x, "not a fuze rank file (no fuze user block)");
  if (get_le64(h + 32) != crc(h, 32)) return rbad(x, "damaged user block (crc64 mismatch)");
  uint32_t v = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
  if (v != FUZE_PFILE_VERSION)
    return rbad(x, "written by format version %u; this fuze reads version %d", v,
                FUZE_PFILE_VERSION);
  if (get_le64(h + 16) != len)
    return rbad(x, "truncated or extended: %" PRIu64 " bytes, the writer wrote %" PRIu64, len,
                get_le64(h + 16));
  return 0;
}

static int read_sealed(rd *x, hid_t fapl, const char *name, fuze_pfile *m) {
  hid_t f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
  if (f < 0) return rbad(x, "not a readable HDF5 file");
  int rc = read_model(x, f, m);
  if (H5Fclose(f) < 0 && !rc) rc = rbad(x, "HDF5 close failed");
  return rc;
}

static int finish_read(const rd *x, int rc, fuze_pfile *m) {
  if (!rc) return FUZE_SUCCESS;
  fuze__pfile_free(m);
  if (x->err && !x->err[0]) snprintf(x->err, FUZE_MSG_LEN, "%s: unreadable", x->label);
  return x->code ? x->code : FUZE_ERR_CORRUPT;
}

int fuze__pfile_read(const char *path, fuze_pfile *m, char *err) {
  memset(m, 0, sizeof *m);
  if (err) err[0] = 0;
  rd x = {path, err, 0, 0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, FUZE_ERR_IO, "%s: %s", path, strerror(errno));
  struct stat st;
  unsigned char h[UB_BYTES];
  uint64_t body;
  int rc = 0;
  if (fstat(fd, &st))
    rc = fail(err, FUZE_ERR_IO, "%s: %s", path, strerror(errno));
  else if (!S_ISREG(st.st_mode))
    rc = fail(err, FUZE_ERR_IO, "%s: not a regular file", path);
  else if (st.st_size < UB_BYTES)
    rc = rbad(&x, "truncated: %lld bytes", (long long)st.st_size);
  else if (pread(fd, h, UB_BYTES, 0) != UB_BYTES)
    rc = fail(err, FUZE_ERR_IO, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
  if (!rc && !(rc = check_seal(&x, h, (uint64_t)st.st_size)) &&
      crc_fd(fd, (uint64_t)st.st_size, &body))
    rc = fail(err, FUZE_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
  close(fd);
  if (!rc && body != get_le64(h + 24)) rc = rbad(&x, "file checksum mismatch: the file is damaged");
  if (rc) return rc;
  x.file_bytes = (uint64_t)st.st_size;
  quiet q;
  quiet_on(&q);
  hid_t fapl = fapl_new();
  rc = fapl < 0 ? rbad(&x, "cannot create HDF5 properties") : read_sealed(&x, fapl, path, m);
  if (fapl >= 0) H5Pclose(fapl);
  quiet_off(&q);
  return finish_read(&x, rc, m);
}

int fuze__pfile_read_image(const void *buf, size_t len, const char *label, fuze_pfile *m,
                           char *err) {
  memset(m, 0, sizeof *m);
  if (err) err[0] = 0;
  rd x = {label, err, (uint64_t)len, 0};
  int rc = len < UB_BYTES ? rbad(&x, "truncated: %zu bytes", len) : check_seal(&x, buf, len);
  if (!rc && crc((const unsigned char *)buf + UB_BYTES, len - UB_BYTES) !=
                 get_le64((const unsigned char *)buf + 24))
    rc = rbad(&x, "file checksum mismatch: the file is damaged");
  if (rc) return rc;
  quiet q;
  quiet_on(&q);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 ||
      H5Pset_file_image(fapl, (void *)(uintptr_t)buf, len) < 0)
    rc = rbad(&x, "cannot set up the in-memory HDF5 driver");
  else
    rc = read_sealed(&x, fapl, label, m);
  if (fapl >= 0) H5Pclose(fapl);
  quiet_off(&q);
  return finish_read(&x, rc, m);
}

/* ------------------------------------------------------------------ */
/* Manifest                                                            */
/* ------------------------------------------------------------------ */

static int manifest_text(const fuze_manifest *m, char *buf, size_t cap) {
  size_t o = (size_t)snprintf(
      buf, cap,
      "fuze-manifest %d\njob_id 0x%016" PRIx64 "\nranks %d\nfaults %d\nspares %d\ncode %s\n",
      MANIFEST_VERSION, m->job_id, m->ranks, m->f, m->spares, code_name(m->code));
  if (m->mode != FUZE_MODE_NONE && o < cap)
    o += (size_t)snprintf(buf + o, cap - o, "mode %s\n", fuze__name_of(&fuze__names_mode, m->mode));
  for (int i = 0; i < m->ncomplete && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "complete %" PRIu64 " %" PRId64 "\n", m->complete[i],
                          m->ckpt_calls[i]);
  if (o < cap) o += (size_t)snprintf(buf + o, cap - o, "crc64 0x%016" PRIx64 "\n", crc(buf, o));
  return o < cap ? (int)o : -1;
}

static int write_all(int fd, const char *buf, size_t n) {
  while (n) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w, n -= (size_t)w;
  }
  return 0;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

/* A mode runs over the rs code. */
static int mode_ok(int code, int mode) {
  return mode == FUZE_MODE_NONE || (fuze__name_known(&fuze__names_mode, mode) && code == FUZE_CODE_RS);
}

int fuze__manifest_write(const char *dir, const fuze_manifest *m, char *err) {
  char path[4096], tmp[4096], text[MANIFEST_MAX];
  if (m->ncomplete < 0 || m->ncomplete > 2 || m->ranks < 1 || m->f < 1 || m->f > 255 ||
      m->spares < 0 || code_parse(code_name(m->code)) < 0 || !mode_ok(m->code, m->mode) ||
      (m->ncomplete == 2 && m->complete[0] <= m->complete[1]) ||
      (m->ncomplete >= 1 && m->ckpt_calls[0] < 0) || (m->ncomplete == 2 && m->ckpt_calls[1] < 0))
    return fail(err, FUZE_ERR_ARG, "%s: refusing to write an invalid manifest", dir);
  int n = manifest_text(m, text, sizeof text);
  if ((size_t)snprintf(path, sizeof path, "%s/manifest", dir) >= sizeof path ||
      (size_t)snprintf(tmp, sizeof tmp, "%s/manifest.tmp", dir) >= sizeof tmp || n < 0)
    return fail(err, FUZE_ERR_ARG, "%s: path too long", dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(err, FUZE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  int rc = write_all(fd, text, (size_t)n) || fsync(fd);
  int e = errno;
  if (close(fd) && !rc) rc = 1, e = errno;
  if (rc) {
    unlink(tmp);
    return fail(err, FUZE_ERR_IO, "%s: cannot write: %s", tmp, strerror(e));
  }
  if (rename(tmp, path))
    return fail(err, FUZE_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
  if (fsync_dir(dir)) return fail(err, FUZE_ERR_IO, "%s: cannot fsync: %s", dir, strerror(errno));
  return FUZE_SUCCESS;
}

/* Strict unsigned decimal (or hex after 0x): no sign, spaces or junk. */
static int parse_u64(const char *s, uint64_t *v) {
  int base = 10;
  if (s[0] == '0' && s[1] == 'x') s += 2, base = 16;
  if (!*s || strlen(s) > (base == 16 ? 16u : 20u)) return -1;
  for (const char *c = s; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (base == 16 && *c >= 'a' && *c <= 'f'))) return -1;
  errno = 0;
  char *end;
  unsigned long long x = strtoull(s, &end, base);
  if (errno || *end) return -1;
  *v = x;
  return 0;
}

static int parse_int(const char *s, int lo, int hi, int *v) {
  uint64_t x;
  if (parse_u64(s, &x) || x < (uint64_t)lo || x > (uint64_t)hi) return -1;
  *v = (int)x;
  return 0;
}

/* The keys of a manifest: every one but the last exactly once (mode is
 * written only for a mode other than none). */
static const char *const manifest_keys[] = {"job_id", "ranks",  "faults", "spares",
                                            "code",   "crc64", "mode"};
#define MANIFEST_KEYS 7
#define MANIFEST_REQUIRED 6

typedef struct mparse {
  fuze_manifest *m;
  unsigned seen; /* bit per key */
  int crc_line;
  uint64_t crc_value;
} mparse;

/* One "key value..." line (NUL-terminated, no newline). */
static int manifest_line(mparse *P, char *line) {
  char *key = line, *v1 = strchr(line, ' '), *v2 = NULL;
  if (!v1) return -1;
  *v1++ = 0;
  if ((v2 = strchr(v1, ' '))) *v2++ = 0;
  for (unsigned i = 0; i < MANIFEST_KEYS; i++) {
    if (strcmp(key, manifest_keys[i])) continue;
    if (v2 || (P->seen & (1u << i))) return -1;
    P->seen |= 1u << i;
    fuze_manifest *m = P->m;
    switch (i) {
    case 0: return strncmp(v1, "0x", 2) || parse_u64(v1, &m->job_id) ? -1 : 0;
    case 1: return parse_int(v1, 1, MAX_RANKS, &m->ranks);
    case 2: return parse_int(v1, 1, 255, &m->f);
    case 3: return parse_int(v1, 0, MAX_RANKS, &m->spares);
    case 4: return (m->code = code_parse(v1)) < 0 ? -1 : 0;
    case 6: return (m->mode = fuze__name_value(&fuze__names_mode, v1)) > FUZE_MODE_NONE ? 0 : -1;
    default:
      if (strncmp(v1, "0x", 2) || parse_u64(v1, &P->crc_value)) return -1;
      P->crc_line = 1;
      return 0;
    }
  }
  if (strcmp(key, "complete") || !v2 || strchr(v2, ' ') || P->m->ncomplete >= 2) return -1;
  uint64_t e, c;
  if (parse_u64(v1, &e) || parse_u64(v2, &c) || c > INT64_MAX) return -1;
  int i = P->m->ncomplete++;
  P->m->complete[i] = e, P->m->ckpt_calls[i] = (int64_t)c;
  return i == 1 && P->m->complete[0] <= e ? -1 : 0;
}

static int manifest_parse(const char *path, char *text, size_t len, fuze_manifest *m, char *err) {
  if (memchr(text, 0, len)) return fail(err, FUZE_ERR_CORRUPT, "%s: binary data", path);
  if (!len || text[len - 1] != '\n')
    return fail(err, FUZE_ERR_CORRUPT, "%s: truncated (no final newline)", path);
  unsigned v = 0;
  char extra;
  if (sscanf(text, "fuze-manifest %u%c", &v, &extra) != 2 || extra != '\n')
    return fail(err, FUZE_ERR_CORRUPT, "%s: line 1: expected 'fuze-manifest %d'", path,
                MANIFEST_VERSION);
  if (v > MANIFEST_VERSION)
    return fail(err, FUZE_ERR_CORRUPT,
                "%s: written by manifest version %u; this fuze reads version %d", path, v,
                MANIFEST_VERSION);
  if (v < 1) return fail(err, FUZE_ERR_CORRUPT, "%s: line 1: manifest version 0", path);
  m->version = v;
  mparse P = {m, 0, 0, 0};
  char work[MANIFEST_MAX + 1]; /* parsing cuts lines apart; the crc needs the text */
  memcpy(work, text, len + 1);
  char *line = strchr(work, '\n') + 1, *crcline = NULL;
  for (int n = 2; line < work + len; n++) {
    char *nl = strchr(line, '\n');
    *nl = 0;
    if (P.crc_line) return fail(err, FUZE_ERR_CORRUPT, "%s: line %d: text after crc64", path, n);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", line);
    if (manifest_line(&P, line))
      return fail(err, FUZE_ERR_CORRUPT, "%s: line %d: bad line '%s'", path, n, copy);
    if (P.crc_line) crcline = line;
    line = nl + 1;
  }
  for (unsigned i = 0; i < MANIFEST_REQUIRED; i++)
    if (!(P.seen & (1u << i)))
      return fail(err, FUZE_ERR_CORRUPT, "%s: missing '%s' line", path, manifest_keys[i]);
  if (!mode_ok(m->code, m->mode))
    return fail(err, FUZE_ERR_CORRUPT, "%s: mode %s over code %s", path,
                fuze__name_of(&fuze__names_mode, m->mode), code_name(m->code));
  /* The crc covers the text as written, up to the crc64 line. */
  if (P.crc_value != crc(text, (size_t)(crcline - work)))
    return fail(err, FUZE_ERR_CORRUPT, "%s: crc64 mismatch: the manifest is damaged", path);
  return FUZE_SUCCESS;
}

int fuze__manifest_read(const char *dir, fuze_manifest *m, char *err) {
  char path[4096], text[MANIFEST_MAX + 1];
  memset(m, 0, sizeof *m);
  if ((size_t)snprintf(path, sizeof path, "%s/manifest", dir) >= sizeof path)
    return fail(err, FUZE_ERR_ARG, "%s: path too long", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(err, errno == ENOENT ? FUZE_ERR_NOT_FOUND : FUZE_ERR_IO, "%s: %s", path,
                strerror(errno));
  size_t len = 0;
  ssize_t got;
  while (len < sizeof text && (got = read(fd, text + len, sizeof text - len)) != 0) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int e = errno;
      close(fd);
      return fail(err, FUZE_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    len += (size_t)got;
  }
  close(fd);
  text[len < sizeof text ? len : sizeof text - 1] = 0;
  if (len > MANIFEST_MAX)
    return fail(err, FUZE_ERR_CORRUPT, "%s: larger than %d bytes", path, MANIFEST_MAX);
  int rc = manifest_parse(path, text, len, m, err);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}
