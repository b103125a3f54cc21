/* pfile_h5: what the HDF5 writer and reader share: the HDF5 type of an
 * array's elements, quiet error stacks, and file access properties. */
#include "core/pfile_h5.h"

#include <string.h>

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
hid_t fuze__pf_array_type(const fuze_pstruct *s, int *owned) {
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

/* HDF5 prints its error stack by default; our messages replace it. */
void fuze__pf_quiet_on(fuze_pf_quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void fuze__pf_quiet_off(const fuze_pf_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* Serial (sec2) file access without HDF5's flock(): a rank file is private
 * to its writer until renamed and immutable after, so the lock protects
 * nothing and fails on file systems without flock (some NFS, Lustre). */
hid_t fuze__pf_fapl_new(void) {
  hid_t p = H5Pcreate(H5P_FILE_ACCESS);
  if (p >= 0 && H5Pset_file_locking(p, 0, 1) < 0) {
    H5Pclose(p);
    return -1;
  }
  return p;
}
