/* pfile_h5read: reading a rank file (from a path or an image in memory):
 * the seal first, then the root attributes, the plan, the structures and
 * regions, and the digest of the whole model. */
#include "core/pfile_h5.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A 1-D int dataset of exactly n elements (or FUZE_PF_ANY up to max). */
static int r_ints(fuze_pf_rd *x, hid_t g, const char *name, hsize_t n, hsize_t max, int **out,
                  hsize_t *got) {
  char path[64];
  snprintf(path, sizeof path, "/plan/%s", name);
  size_t bytes;
  unsigned char *buf;
  if (fuze__pf_r_ds(x, g, name, path, H5T_NATIVE_INT, 1, &n, max, &buf, &bytes)) return -1;
  *out = (int *)buf;
  if (got) *got = n;
  return 0;
}

typedef struct root {
  int64_t domain, ndomains, block;
} root;

static int read_root(fuze_pf_rd *x, hid_t f, fuze_pfile *m, root *rt) {
  char s[16];
  if (fuze__pf_r_str(x, f, "/", "format", s, sizeof s) || strcmp(s, "fuze"))
    return rbad(x, "not a fuze rank file (attribute 'format')");
  if (fuze__pf_r_attr(x, f, "/", "format_version", H5T_NATIVE_UINT32, 0, &m->version)) return -1;
  if (m->version != FUZE_PFILE_VERSION)
    return rbad(x, "written by format version %u; this fuze reads version %d", m->version,
                FUZE_PFILE_VERSION);
  int64_t rank, ranks, f_, spares;
  if (fuze__pf_r_u64(x, f, "/", "job_id", &m->job_id) ||
      fuze__pf_r_u64(x, f, "/", "epoch", &m->epoch) ||
      fuze__pf_r_int(x, f, "/", "ckpt_calls", 0, INT64_MAX, &m->ckpt_calls) ||
      fuze__pf_r_int(x, f, "/", "ranks", 1, FUZE_PF_MAX_RANKS, &ranks) ||
      fuze__pf_r_int(x, f, "/", "rank", 0, ranks - 1, &rank) ||
      fuze__pf_r_int(x, f, "/", "faults", 1, FUZE_MAX_FAULTS, &f_) ||
      fuze__pf_r_int(x, f, "/", "ndomains", 1, ranks, &rt->ndomains) ||
      fuze__pf_r_int(x, f, "/", "spares", 0, rt->ndomains - 1, &spares) ||
      fuze__pf_r_int(x, f, "/", "domain", 0, rt->ndomains - 1, &rt->domain) ||
      fuze__pf_r_int(x, f, "/", "block", -1, ranks - 1, &rt->block) ||
      fuze__pf_r_str(x, f, "/", "code", s, sizeof s))
    return -1;
  m->rank = (int)rank, m->ranks = (int)ranks, m->f = (int)f_, m->spares = (int)spares;
  if ((m->code = fuze__name_value(&fuze__names_code, s)) < 0)
    return rbad(x, "unknown code '%s'", s);
  return 0;
}

/* The coefficients must be exactly those fuze__code_init gives. */
static int check_coefficients(fuze_pf_rd *x, hid_t g, const fuze_pfile *m) {
  unsigned char *want = NULL, *got = NULL;
  size_t n = 0, bytes;
  if (fuze__pf_all_coefficients(m, &want, &n))
    return rbad(x, "the plan's blocks do not fit code %s with faults=%d", fuze__code_name(m->code),
                m->f);
  hsize_t dn = n;
  int rc = fuze__pf_r_ds(x, g, "coefficients", "/plan/coefficients", H5T_NATIVE_UINT8, 1, &dn,
                         FUZE_PF_ANY, &got, &bytes);
  if (!rc && memcmp(want, got, n))
    rc = rbad(x, "/plan/coefficients differ from the %s code's", fuze__code_name(m->code));
  free(want);
  free(got);
  return rc;
}

static int read_plan(fuze_pf_rd *x, hid_t f, fuze_pfile *m, const root *rt) {
  fuze_plan *p = &m->plan;
  hid_t g;
  if (fuze__pf_open_obj(x, f, "plan", "/plan", H5I_GROUP, &g)) return -1;
  p->nranks = m->ranks, p->ndomains = (int)rt->ndomains, p->spares = m->spares, p->f = m->f;
  hsize_t nbs = 0;
  int rc = r_ints(x, g, "domain", (hsize_t)m->ranks, FUZE_PF_ANY, &p->domain, NULL) ||
           r_ints(x, g, "block_start", FUZE_PF_ANY, (hsize_t)m->ranks + 1, &p->block_start, &nbs);
  if (!rc && nbs < 2) rc = rbad(x, "/plan/block_start has %llu entries", (unsigned long long)nbs);
  if (!rc) {
    p->nblocks = (int)nbs - 1;
    for (int r = 0; r < p->nranks; r++) {
      int d = p->domain[r];
      p->ncompute += d >= 0 && d < p->ndomains && !is_spare_domain(p, d);
    }
    rc = r_ints(x, g, "members", (hsize_t)p->ncompute, FUZE_PF_ANY, &p->members, NULL) ||
         r_ints(x, g, "hosts", (hsize_t)p->nblocks * (hsize_t)p->f, FUZE_PF_ANY, &p->hosts, NULL);
  }
  if (!rc) {
    p->block_of = malloc(sizeof(int) * (size_t)p->nranks);
    p->index_in_block = malloc(sizeof(int) * (size_t)p->nranks);
    if (!p->block_of || !p->index_in_block) rc = rnomem(x);
  }
  char msg[FUZE_MSG_LEN];
  if (!rc && fuze__pf_plan_check(p, 1, msg)) rc = rbad(x, "%s", msg);
  if (!rc && fuze__pf_check_codes(m, msg)) rc = rbad(x, "%s", msg);
  if (!rc) rc = check_coefficients(x, g, m);
  if (!rc && (rt->domain != p->domain[m->rank] || rt->block != p->block_of[m->rank]))
    rc = rbad(x,
              "root attributes domain=%" PRId64 " block=%" PRId64
              " disagree with the plan's %d and %d for rank %d",
              rt->domain, rt->block, p->domain[m->rank], p->block_of[m->rank], m->rank);
  H5Gclose(g);
  return rc ? -1 : 0;
}

static int read_model(fuze_pf_rd *x, hid_t f, fuze_pfile *m) {
  root rt;
  char msg[FUZE_MSG_LEN];
  uint64_t digest;
  H5G_info_t info;
  if (read_root(x, f, m, &rt) || read_plan(x, f, m, &rt) || fuze__pf_read_structs(x, f, m) ||
      fuze__pf_read_parity(x, f, m))
    return -1;
  if (H5Gget_info(f, &info) < 0 || info.nlinks != 5)
    return rbad(x, "the root group holds %llu objects, expected 5",
                (unsigned long long)info.nlinks);
  if (fuze__pf_model_check(m, msg)) return rbad(x, "%s", msg);
  if (fuze__pf_r_u64(x, f, "/", "model_crc64", &digest)) return -1;
  if (digest != fuze__pf_model_digest(m))
    return rbad(x, "model_crc64 mismatch: attributes were altered");
  return 0;
}

static int read_sealed(fuze_pf_rd *x, hid_t fapl, const char *name, fuze_pfile *m) {
  hid_t f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
  if (f < 0) return rbad(x, "not a readable HDF5 file");
  int rc = read_model(x, f, m);
  if (H5Fclose(f) < 0 && !rc) rc = rbad(x, "HDF5 close failed");
  return rc;
}

static int finish_read(const fuze_pf_rd *x, int rc, fuze_pfile *m) {
  if (!rc) return FUZE_SUCCESS;
  fuze__pfile_free(m);
  if (x->err && !x->err[0]) snprintf(x->err, FUZE_MSG_LEN, "%s: unreadable", x->label);
  return x->code ? x->code : FUZE_ERR_CORRUPT;
}

int fuze__pfile_read(const char *path, fuze_pfile *m, char *err) {
  memset(m, 0, sizeof *m);
  if (err) err[0] = 0;
  fuze_pf_rd x = {path, err, 0, 0};
  int rc = fuze__pf_check_sealed_file(&x, path);
  if (rc) return rc;
  fuze_pf_quiet q;
  fuze__pf_quiet_on(&q);
  hid_t fapl = fuze__pf_fapl_new();
  rc = fapl < 0 ? rbad(&x, "cannot create HDF5 properties") : read_sealed(&x, fapl, path, m);
  if (fapl >= 0) H5Pclose(fapl);
  fuze__pf_quiet_off(&q);
  return finish_read(&x, rc, m);
}

int fuze__pfile_read_image(const void *buf, size_t len, const char *label, fuze_pfile *m,
                           char *err) {
  memset(m, 0, sizeof *m);
  if (err) err[0] = 0;
  fuze_pf_rd x = {label, err, (uint64_t)len, 0};
  int rc = fuze__pf_check_sealed_image(&x, buf, len);
  if (rc) return rc;
  fuze_pf_quiet q;
  fuze__pf_quiet_on(&q);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 ||
      H5Pset_file_image(fapl, (void *)(uintptr_t)buf, len) < 0)
    rc = rbad(&x, "cannot set up the in-memory HDF5 driver");
  else
    rc = read_sealed(&x, fapl, label, m);
  if (fapl >= 0) H5Pclose(fapl);
  fuze__pf_quiet_off(&q);
  return finish_read(&x, rc, m);
}
