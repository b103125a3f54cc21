/* pfile_h5write: a model written as an HDF5 rank file (docs/format.md):
 * root attributes, /plan, /arrays, /stacks, /maps and /parity, every
 * dataset with its crc64; then flushed, fsynced and sealed. */
#include "core/pfile_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wctx {
  const fuze_pfile *m;
  char where[FUZE_PF_ESC_MAX + 128]; /* the object being written, for the message */
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
      w_str(f, "code", fuze__code_name(m->code)) || w_i64(f, "block", m->plan.block_of[m->rank]) ||
      w_u64(f, "model_crc64", digest))
    return -1;
  return 0;
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
  int rc = fuze__pf_all_coefficients(w->m, &coef, &ncoef) ? -1 : 0;
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
  char esc[FUZE_PF_ESC_MAX];
  fuze__pf_name_escape(s->name, esc);
  snprintf(w->where, sizeof w->where, "/arrays/%s", esc);
  int owned;
  hid_t t = fuze__pf_array_type(s, &owned);
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
  char esc[FUZE_PF_ESC_MAX];
  fuze__pf_name_escape(s->name, esc);
  snprintf(w->where, sizeof w->where, "/%s/%s", fuze__pf_group(s->kind), esc);
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
  char esc[FUZE_PF_ESC_MAX], dname[FUZE_PF_REGION_NAME_MAX];
  fuze__pf_name_escape(m->structs[s].name, esc);
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
  hid_t g[FUZE_PF_KINDS + 1];
  int rc = 0, n = 0;
  for (; n <= FUZE_PF_PARITY && !rc; n++) {
    snprintf(w->where, sizeof w->where, "/%s", fuze__pf_group(n));
    g[n] = w_group(f, fuze__pf_group(n));
    if (g[n] < 0) rc = -1;
  }
  if (rc) n--;
  for (int i = 0; i < w->m->nstructs && !rc; i++) {
    int kind = w->m->structs[i].kind;
    rc = kind == FUZE_PS_ARRAY ? write_array(w, g[kind], i) : write_fobj(w, g[kind], i);
    if (!rc) rc = write_parity(w, g[FUZE_PF_PARITY], i);
  }
  for (int i = 0; i < n; i++) H5Gclose(g[i]);
  return rc;
}

/* HDF5 builds the file in memory (core driver, no backing store) and fuze
 * writes the image itself: a full disk or any other write error then happens
 * in fuze's own write(2), never inside HDF5, which would keep a file it
 * failed to flush open until MPI_Finalize and crash there. */
static int write_all_fd(int fd, const unsigned char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) {
      errno = ENOSPC;
      return -1;
    }
    p += k, n -= (size_t)k;
  }
  return 0;
}

/* Build an HDF5 file in memory with build(f, arg) (where names the object
 * it failed on) and write its image to path behind an empty user block. */
static int write_image(const char *path, int (*build)(hid_t, void *), void *arg, char *where,
                       size_t wlen, char *err) {
  hid_t fcpl = cpl_new(H5P_FILE_CREATE);
  if (fcpl < 0 || H5Pset_userblock(fcpl, FUZE_PF_UB_BYTES) < 0) {
    if (fcpl >= 0) H5Pclose(fcpl);
    return fail(err, FUZE_ERR_IO, "%s: cannot set up HDF5 file properties", path);
  }
  hid_t fapl = fuze__pf_fapl_new();
  if (fapl >= 0 && H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) < 0) {
    H5Pclose(fapl);
    fapl = -1;
  }
  hid_t f = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
  H5Pclose(fcpl);
  if (fapl >= 0) H5Pclose(fapl);
  if (f < 0) return fail(err, FUZE_ERR_NOMEM, "%s: HDF5 cannot create the file image", path);
  int rc = build(f, arg);
  unsigned char *img = NULL;
  ssize_t len = -1;
  if (!rc) {
    snprintf(where, wlen, "the file image");
    rc = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || (len = H5Fget_file_image(f, NULL, 0)) <= 0 ||
         !(img = malloc((size_t)len)) || H5Fget_file_image(f, img, (size_t)len) != len;
  }
  H5Fclose(f); /* in memory: nothing to write, nothing that can fail half-way */
  if (rc) {
    free(img);
    return fail(err, img || len <= 0 ? FUZE_ERR_IO : FUZE_ERR_NOMEM, "%s: cannot build %s%s",
                path, where, img || len <= 0 ? "" : ": out of memory");
  }
  /* HDF5 1.10 leaves the user block out of the image (the superblock is at
   * 0 and readers find it at FUZE_PF_UB_BYTES after the block, adjusting the
   * base address); should a version include it, it is already in place. */
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  int lead = len >= 8 && !memcmp(img, sig, 8);
  if (!lead && (len < FUZE_PF_UB_BYTES + 8 || memcmp(img + FUZE_PF_UB_BYTES, sig, 8))) {
    free(img);
    return fail(err, FUZE_ERR_IO, "%s: HDF5 made a file image without a superblock where "
                "expected", path);
  }
  static const unsigned char ub[FUZE_PF_UB_BYTES];
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int e = 0;
  if (fd < 0 || (lead && write_all_fd(fd, ub, sizeof ub)) || write_all_fd(fd, img, (size_t)len) ||
      fsync(fd))
    e = errno ? errno : EIO;
  if (fd >= 0 && close(fd) && !e) e = errno;
  free(img);
  if (e) return fail(err, FUZE_ERR_IO, "%s: cannot write %zd bytes: %s", path, len, strerror(e));
  return FUZE_SUCCESS;
}

static int build_model(hid_t f, void *arg) {
  wctx *w = arg;
  return write_root(w, f, fuze__pf_model_digest(w->m)) || write_plan(w, f) || write_structs(w, f);
}

static int write_hdf5(wctx *w, const char *path, char *err) {
  return write_image(path, build_model, w, w->where, sizeof w->where, err);
}

int fuze__pf_write_image(const char *path, int (*build)(hid_t, void *), void *arg, char *where,
                         size_t wlen, char *err) {
  return write_image(path, build, arg, where, wlen, err);
}
int fuze__pf_w_u64(hid_t o, const char *n, uint64_t v) { return w_u64(o, n, v); }
int fuze__pf_w_i64(hid_t o, const char *n, int64_t v) { return w_i64(o, n, v); }
int fuze__pf_w_str(hid_t o, const char *n, const char *s) { return w_str(o, n, s); }
int fuze__pf_w_ds(hid_t loc, const char *name, hid_t type, int ndims, const hsize_t *dims,
                  const void *buf, size_t bytes) {
  return w_ds(loc, name, type, ndims, dims, buf, bytes);
}
hid_t fuze__pf_w_group(hid_t loc, const char *name) { return w_group(loc, name); }

int fuze__pfile_write(const fuze_pfile *m, const char *path, char *err) {
  char msg[FUZE_MSG_LEN];
  if (fuze__pf_model_check(m, msg))
    return fail(err, FUZE_ERR_ARG, "%s: refusing to write an invalid model: %s", path, msg);
  wctx w = {m, ""};
  fuze_pf_quiet q;
  fuze__pf_quiet_on(&q);
  int rc = write_hdf5(&w, path, err);
  fuze__pf_quiet_off(&q);
  return rc ? rc : fuze__pf_seal(path, m->version, err);
}
