/* pfile_model: the model of a rank file without HDF5: its paths, the digest
 * of everything it holds (root attribute model_crc64), structure names as
 * HDF5 link names, comparisons of two models, and freeing one. */
#include "core/pfile_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void fuze__pfile_dir(char *out, size_t len, const char *dir, int domain, int rank) {
  snprintf(out, len, "%s/domain-%d/rank-%d", dir, domain, rank);
}

void fuze__pfile_path(char *out, size_t len, const char *dir, int domain, int rank,
                      uint64_t epoch) {
  snprintf(out, len, "%s/domain-%d/rank-%d/epoch-%" PRIu64 ".h5", dir, domain, rank, epoch);
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
uint64_t fuze__pf_model_digest(const fuze_pfile *m) {
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

/* HDF5 link names cannot hold '/' and "." is special: '%', '/', control and
 * non-ASCII bytes, and a leading '.', become %XX (uppercase hex). Reversible,
 * and the reader accepts only the canonical form. */
static int must_escape(unsigned char c, size_t i) {
  return c == '%' || c == '/' || c < 0x20 || c >= 0x7f || (i == 0 && c == '.');
}

void fuze__pf_name_escape(const char *name, char *out) {
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
int fuze__pf_name_unescape(const char *in, char *out) {
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
  char again[FUZE_PF_ESC_MAX];
  if (o == 0) return -1;
  fuze__pf_name_escape(out, again);
  return strcmp(again, in) == 0 ? 0 : -1;
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

int fuze__pf_same_struct_meta(const fuze_pfile *a, const fuze_pstruct *x, const fuze_pstruct *y,
                              int i, char *err) {
  if (strcmp(x->name, y->name) || x->kind != y->kind)
    return fail(err, FUZE_ERR_CORRUPT, "structure %d differs: %s '%s' vs %s '%s'", i,
                fuze__ps_kind_name(x->kind), x->name, fuze__ps_kind_name(y->kind), y->name);
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
                a->ranks, a->f, a->spares, fuze__code_name(a->code), b->ranks, b->f, b->spares,
                fuze__code_name(b->code));
  if (!plans_equal(&a->plan, &b->plan)) return fail(err, FUZE_ERR_CORRUPT, "plans differ");
  if (a->nstructs != b->nstructs)
    return fail(err, FUZE_ERR_CORRUPT, "%d vs %d structures", a->nstructs, b->nstructs);
  for (int i = 0; i < a->nstructs; i++) {
    int rc = fuze__pf_same_struct_meta(a, &a->structs[i], &b->structs[i], i, err);
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
int fuze__pf_expected_regions(const fuze_pfile *m, int rank) {
  int n = 0;
  for (int i = 0; i < m->plan.nblocks * m->plan.f; i++) n += m->plan.hosts[i] == rank;
  return n * m->nstructs;
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
