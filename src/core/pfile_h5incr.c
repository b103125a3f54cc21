/* pfile_h5incr: an increment file (core/pfile.h, "increments") as HDF5:
 *   / attributes: format "fuze-increment", format_version, job_id, epoch,
 *     parent, base, ckpt_calls, rank, ranks, chunk, nstructs, nregions
 *   /structs/<i>  group per structure (attributes name, kind, count, seq),
 *                 with groups keys/ and data/
 *   /regions/<i>  group per hosted backup region (attributes structure,
 *                 block, backup)
 *   every payload group: attribute len, datasets chunks (uint64 indices)
 *                 and bytes (uint8, the chunks packed), each with its crc64.
 * Sealed like a rank file (pfile_seal.c). */
#include "core/pfile_h5.h"

#include <stdlib.h>
#include <string.h>

#define INCR_VERSION 1

typedef struct iw {
  const fuze_pincr *d;
  char where[160];
} iw;

static int w_delta(hid_t parent, const char *name, const fuze_pdelta *p) {
  hid_t g = fuze__pf_w_group(parent, name);
  if (g < 0) return -1;
  hsize_t n = p->n, nb = p->nbytes;
  int rc = fuze__pf_w_u64(g, "len", p->len) ||
           fuze__pf_w_ds(g, "chunks", H5T_NATIVE_UINT64, 1, &n, p->idx, sizeof(uint64_t) * p->n) ||
           fuze__pf_w_ds(g, "bytes", H5T_NATIVE_UINT8, 1, &nb, p->bytes, p->nbytes);
  H5Gclose(g);
  return rc;
}

static int build_incr(hid_t f, void *arg) {
  iw *w = arg;
  const fuze_pincr *d = w->d;
  snprintf(w->where, sizeof w->where, "the root attributes");
  if (fuze__pf_w_str(f, "format", "fuze-increment") || fuze__pf_w_i64(f, "format_version", INCR_VERSION) ||
      fuze__pf_w_u64(f, "job_id", d->job_id) || fuze__pf_w_u64(f, "epoch", d->epoch) ||
      fuze__pf_w_u64(f, "parent", d->parent) || fuze__pf_w_u64(f, "base", d->base) ||
      fuze__pf_w_i64(f, "ckpt_calls", d->ckpt_calls) || fuze__pf_w_i64(f, "rank", d->rank) ||
      fuze__pf_w_i64(f, "ranks", d->ranks) || fuze__pf_w_u64(f, "chunk", d->chunk) ||
      fuze__pf_w_i64(f, "nstructs", d->nstructs) || fuze__pf_w_i64(f, "nregions", d->nregions))
    return -1;
  hid_t gs = fuze__pf_w_group(f, "structs"), gr = gs < 0 ? -1 : fuze__pf_w_group(f, "regions");
  int rc = gs < 0 || gr < 0;
  char nm[32];
  for (int i = 0; i < d->nstructs && !rc; i++) {
    const fuze_pincr_struct *s = &d->structs[i];
    snprintf(w->where, sizeof w->where, "/structs/%d", i);
    snprintf(nm, sizeof nm, "%d", i);
    hid_t g = fuze__pf_w_group(gs, nm);
    if (g < 0) {
      rc = -1;
      break;
    }
    rc = fuze__pf_w_str(g, "name", s->name) || fuze__pf_w_i64(g, "kind", s->kind) ||
         fuze__pf_w_u64(g, "count", s->count) || fuze__pf_w_u64(g, "seq", s->seq) ||
         fuze__pf_w_u64(g, "cap", s->cap) ||
         w_delta(g, "keys", &s->keys) || w_delta(g, "data", &s->data);
    H5Gclose(g);
  }
  for (int i = 0; i < d->nregions && !rc; i++) {
    const fuze_pincr_region *r = &d->regions[i];
    snprintf(w->where, sizeof w->where, "/regions/%d", i);
    snprintf(nm, sizeof nm, "%d", i);
    hid_t g = fuze__pf_w_group(gr, nm);
    if (g < 0) {
      rc = -1;
      break;
    }
    rc = fuze__pf_w_i64(g, "structure", r->s) || fuze__pf_w_i64(g, "block", r->block) ||
         fuze__pf_w_i64(g, "backup", r->j) || w_delta(g, "data", &r->d);
    H5Gclose(g);
  }
  if (gs >= 0) H5Gclose(gs);
  if (gr >= 0) H5Gclose(gr);
  return rc;
}

int fuze__pincr_write(const fuze_pincr *d, const char *path, char *err) {
  iw w = {d, ""};
  fuze_pf_quiet q;
  fuze__pf_quiet_on(&q);
  int rc = fuze__pf_write_image(path, build_incr, &w, w.where, sizeof w.where, err);
  fuze__pf_quiet_off(&q);
  return rc ? rc : fuze__pf_seal(path, FUZE_PFILE_VERSION, err);
}

/* ---- reading ---- */

static int r_delta(fuze_pf_rd *x, hid_t parent, const char *name, const char *where,
                   uint64_t chunk, fuze_pdelta *p) {
  char path[200];
  snprintf(path, sizeof path, "%s/%s", where, name);
  hid_t g;
  if (fuze__pf_open_obj(x, parent, name, path, H5I_GROUP, &g)) return -1;
  int rc = fuze__pf_r_u64(x, g, path, "len", &p->len);
  hsize_t n = FUZE_PF_ANY, nb = FUZE_PF_ANY;
  size_t bytes = 0;
  unsigned char *idx = NULL;
  char sub[240];
  snprintf(sub, sizeof sub, "%s/chunks", path);
  if (!rc) rc = fuze__pf_r_ds(x, g, "chunks", sub, H5T_NATIVE_UINT64, 1, &n, x->file_bytes, &idx, &bytes);
  p->idx = (uint64_t *)idx;
  p->n = rc ? 0 : (size_t)n;
  snprintf(sub, sizeof sub, "%s/bytes", path);
  if (!rc) rc = fuze__pf_r_ds(x, g, "bytes", sub, H5T_NATIVE_UINT8, 1, &nb, x->file_bytes, &p->bytes,
                              &p->nbytes);
  /* The chunks lie inside the payload, ascending, and fill `bytes` exactly. */
  uint64_t want = 0, nch = chunk ? (p->len + chunk - 1) / chunk : 0;
  for (size_t i = 0; i < p->n && !rc; i++) {
    if (p->idx[i] >= nch || (i && p->idx[i] <= p->idx[i - 1]))
      rc = rbad(x, "%s lists chunk %llu out of order or past its %llu bytes", sub,
                (unsigned long long)p->idx[i], (unsigned long long)p->len);
    else
      want += p->len - p->idx[i] * chunk < chunk ? p->len - p->idx[i] * chunk : chunk;
  }
  if (!rc && want != p->nbytes)
    rc = rbad(x, "%s holds %zu bytes, its chunks need %llu", path, p->nbytes, (unsigned long long)want);
  H5Gclose(g);
  return rc ? -1 : 0;
}

static int read_incr(fuze_pf_rd *x, hid_t f, fuze_pincr *d) {
  char s[32];
  int64_t v, nst, nreg, rank, ranks;
  if (fuze__pf_r_str(x, f, "/", "format", s, sizeof s) || strcmp(s, "fuze-increment"))
    return rbad(x, "not a fuze increment file (attribute 'format')");
  if (fuze__pf_r_int(x, f, "/", "format_version", 0, INT32_MAX, &v)) return -1;
  if (v != INCR_VERSION)
    return rbad(x, "written by increment format version %lld; this fuze reads version %d",
                (long long)v, INCR_VERSION);
  if (fuze__pf_r_u64(x, f, "/", "job_id", &d->job_id) || fuze__pf_r_u64(x, f, "/", "epoch", &d->epoch) ||
      fuze__pf_r_u64(x, f, "/", "parent", &d->parent) || fuze__pf_r_u64(x, f, "/", "base", &d->base) ||
      fuze__pf_r_int(x, f, "/", "ckpt_calls", 0, INT64_MAX, &d->ckpt_calls) ||
      fuze__pf_r_int(x, f, "/", "ranks", 1, FUZE_PF_MAX_RANKS, &ranks) ||
      fuze__pf_r_int(x, f, "/", "rank", 0, ranks - 1, &rank) ||
      fuze__pf_r_u64(x, f, "/", "chunk", &d->chunk) ||
      fuze__pf_r_int(x, f, "/", "nstructs", 0, FUZE_PF_MAX_STRUCTS, &nst) ||
      fuze__pf_r_int(x, f, "/", "nregions", 0, FUZE_PF_MAX_STRUCTS * 64, &nreg))
    return -1;
  if (d->parent >= d->epoch || d->base > d->parent || !d->chunk)
    return rbad(x, "epoch %llu, parent %llu, base %llu, chunk %llu do not make an increment",
                (unsigned long long)d->epoch, (unsigned long long)d->parent,
                (unsigned long long)d->base, (unsigned long long)d->chunk);
  d->rank = (int)rank, d->ranks = (int)ranks;
  d->structs = calloc((size_t)(nst ? nst : 1), sizeof *d->structs);
  d->regions = calloc((size_t)(nreg ? nreg : 1), sizeof *d->regions);
  if (!d->structs || !d->regions) return rnomem(x);
  hid_t gs, gr;
  if (fuze__pf_open_obj(x, f, "structs", "/structs", H5I_GROUP, &gs)) return -1;
  if (fuze__pf_open_obj(x, f, "regions", "/regions", H5I_GROUP, &gr)) {
    H5Gclose(gs);
    return -1;
  }
  int rc = 0;
  char nm[32], where[64];
  for (int i = 0; i < nst && !rc; i++) {
    fuze_pincr_struct *p = &d->structs[i];
    snprintf(nm, sizeof nm, "%d", i);
    snprintf(where, sizeof where, "/structs/%d", i);
    hid_t g;
    if ((rc = fuze__pf_open_obj(x, gs, nm, where, H5I_GROUP, &g))) break;
    d->nstructs++;
    int64_t kind;
    rc = fuze__pf_r_str(x, g, where, "name", p->name, sizeof p->name) ||
         fuze__pf_r_int(x, g, where, "kind", 0, FUZE_PF_KINDS - 1, &kind) ||
         fuze__pf_r_u64(x, g, where, "count", &p->count) || fuze__pf_r_u64(x, g, where, "seq", &p->seq) ||
         fuze__pf_r_u64(x, g, where, "cap", &p->cap) ||
         r_delta(x, g, "keys", where, d->chunk, &p->keys) ||
         r_delta(x, g, "data", where, d->chunk, &p->data);
    p->kind = (int)kind;
    H5Gclose(g);
  }
  for (int i = 0; i < nreg && !rc; i++) {
    fuze_pincr_region *r = &d->regions[i];
    snprintf(nm, sizeof nm, "%d", i);
    snprintf(where, sizeof where, "/regions/%d", i);
    hid_t g;
    if ((rc = fuze__pf_open_obj(x, gr, nm, where, H5I_GROUP, &g))) break;
    d->nregions++;
    int64_t s_, b, j;
    rc = fuze__pf_r_int(x, g, where, "structure", 0, nst - 1, &s_) ||
         fuze__pf_r_int(x, g, where, "block", 0, ranks, &b) ||
         fuze__pf_r_int(x, g, where, "backup", 0, FUZE_MAX_FAULTS, &j) ||
         r_delta(x, g, "data", where, d->chunk, &r->d);
    r->s = (int)s_, r->block = (int)b, r->j = (int)j;
    H5Gclose(g);
  }
  H5Gclose(gs);
  H5Gclose(gr);
  return rc ? -1 : 0;
}

int fuze__pincr_read(const char *path, fuze_pincr *d, char *err) {
  memset(d, 0, sizeof *d);
  if (err) err[0] = 0;
  fuze_pf_rd x = {path, err, 0, 0};
  int rc = fuze__pf_check_sealed_file(&x, path);
  if (rc) return rc;
  fuze_pf_quiet q;
  fuze__pf_quiet_on(&q);
  hid_t fapl = fuze__pf_fapl_new();
  hid_t f = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
  if (f < 0)
    rc = rbad(&x, "not a readable HDF5 file");
  else {
    rc = read_incr(&x, f, d);
    if (H5Fclose(f) < 0 && !rc) rc = rbad(&x, "HDF5 close failed");
  }
  if (fapl >= 0) H5Pclose(fapl);
  fuze__pf_quiet_off(&q);
  if (!rc) return FUZE_SUCCESS;
  fuze__pincr_free(d);
  if (err && !err[0]) snprintf(err, FUZE_MSG_LEN, "%s: unreadable", path);
  return x.code ? x.code : FUZE_ERR_CORRUPT;
}
