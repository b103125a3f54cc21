/* pfile_h5get: checked reading of HDF5 objects: every attribute and dataset
 * must exist with exactly the expected type and shape, plain contiguous
 * storage and its crc64, before a byte of it is used. */
#include "core/pfile_h5.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int fuze__pf_open_obj(fuze_pf_rd *x, hid_t loc, const char *name, const char *path, H5I_type_t want,
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
int fuze__pf_r_attr(fuze_pf_rd *x, hid_t obj, const char *path, const char *name, hid_t type,
                    hsize_t n, void *out) {
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

int fuze__pf_r_u64(fuze_pf_rd *x, hid_t o, const char *path, const char *name, uint64_t *v) {
  return fuze__pf_r_attr(x, o, path, name, H5T_NATIVE_UINT64, 0, v);
}

/* A signed attribute that must lie in [lo, hi]. */
int fuze__pf_r_int(fuze_pf_rd *x, hid_t o, const char *path, const char *name, int64_t lo,
                   int64_t hi, int64_t *v) {
  if (fuze__pf_r_attr(x, o, path, name, H5T_NATIVE_INT64, 0, v)) return -1;
  if (*v < lo || *v > hi)
    return rbad(x, "attribute '%s' of %s is %" PRId64 ", outside %" PRId64 "..%" PRId64, name, path,
                *v, lo, hi);
  return 0;
}

/* A fixed-length string attribute of at most cap - 1 bytes. */
int fuze__pf_r_str(fuze_pf_rd *x, hid_t obj, const char *path, const char *name, char *out,
                   size_t cap) {
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

static int shape_ok(fuze_pf_rd *x, hid_t d, const char *path, int ndims, hsize_t *dims) {
  hid_t sp = H5Dget_space(d);
  hsize_t got[2] = {0, 0};
  int ok = sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SIMPLE &&
           H5Sget_simple_extent_ndims(sp) == ndims &&
           H5Sget_simple_extent_dims(sp, got, NULL) == ndims;
  if (sp >= 0) H5Sclose(sp);
  if (!ok) return rbad(x, "dataset %s does not have %d dimension(s)", path, ndims);
  for (int i = 0; i < ndims; i++) {
    if (dims[i] != FUZE_PF_ANY && got[i] != dims[i])
      return rbad(x, "dataset %s has %llu elements in dimension %d, expected %llu", path,
                  (unsigned long long)got[i], i, (unsigned long long)dims[i]);
    dims[i] = got[i];
  }
  return 0;
}

/* Read a dataset of exactly `type` whose shape matches dims (FUZE_PF_ANY: any size
 * up to max0 for dimension 0), check its crc64, return its bytes (malloc'd). */
int fuze__pf_r_ds(fuze_pf_rd *x, hid_t loc, const char *name, const char *path, hid_t type,
                  int ndims, hsize_t *dims, hsize_t max0, unsigned char **out, size_t *nbytes) {
  hid_t d, t = -1;
  *out = NULL;
  if (fuze__pf_open_obj(x, loc, name, path, H5I_DATASET, &d)) return -1;
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
  if (!rc && !(rc = fuze__pf_r_u64(x, d, path, "crc64", &want)) && want != crc(*out, bytes))
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
