/* pfile_h5: what the HDF5 pieces of the rank-file code share. Internal to
 * core/pfile_h5*.c, the only core sources that include hdf5.h (the parallel
 * HDF5's hdf5.h includes mpi.h: src/CMakeLists.txt gives exactly these
 * files MPI's include path). */
#ifndef FUZE_PFILE_H5_H
#define FUZE_PFILE_H5_H

#include "core/pfile_impl.h"

#include <hdf5.h>

/* "block-<b>.backup-<j>": a backup region's dataset, with its NUL. */
#define FUZE_PF_REGION_NAME_MAX 48

/* The groups of a rank file: one per structure kind (enum fuze_ps_kind, the
 * kind's name plus "s"), then /parity. */
#define FUZE_PF_KINDS 3
#define FUZE_PF_PARITY FUZE_PF_KINDS
static inline const char *fuze__pf_group(int g) {
  static const char *const groups[FUZE_PF_KINDS + 1] = {"arrays", "stacks", "maps", "parity"};
  return groups[g];
}
_Static_assert(FUZE_PS_ARRAY == 0 && FUZE_PS_STACK == 1 && FUZE_PS_MAP == 2,
               "fuze__pf_group is indexed by the structure kind");

/* Any extent (a dimension's size is read, not expected). */
#define FUZE_PF_ANY ((hsize_t)-1)

/* ---- pfile_h5.c ---- */

/* The HDF5 type of an array's elements; *owned says whether to H5Tclose it.
 * A known MPI type name whose size is not `elem` is stored opaque, tagged with
 * the MPI name ("unnamed MPI datatype" when it has none). */
hid_t fuze__pf_array_type(const fuze_pstruct *s, int *owned);

/* HDF5 prints its error stack by default; our messages replace it. */
typedef struct fuze_pf_quiet {
  H5E_auto2_t func;
  void *data;
} fuze_pf_quiet;
void fuze__pf_quiet_on(fuze_pf_quiet *q);
void fuze__pf_quiet_off(const fuze_pf_quiet *q);

/* Serial (sec2) file access without HDF5's flock(). */
hid_t fuze__pf_fapl_new(void);

/* ---- pfile_h5write.c: the pieces pfile_h5incr.c shares (0 / -1) ---- */

/* Build a file in memory with build(f, arg) (non-zero: failed at `where`),
 * write its image to path behind the user block and fsync it (not sealed). */
int fuze__pf_write_image(const char *path, int (*build)(hid_t, void *), void *arg, char *where,
                         size_t wlen, char *err);
int fuze__pf_w_u64(hid_t o, const char *n, uint64_t v);
int fuze__pf_w_i64(hid_t o, const char *n, int64_t v);
int fuze__pf_w_str(hid_t o, const char *n, const char *s);
/* A dataset with its crc64 attribute. */
int fuze__pf_w_ds(hid_t loc, const char *name, hid_t type, int ndims, const hsize_t *dims,
                  const void *buf, size_t bytes);
hid_t fuze__pf_w_group(hid_t loc, const char *name);

/* ---- pfile_h5get.c: every failure is rbad() (FUZE_ERR_CORRUPT) ---- */

/* Open the hard-linked dataset or group `name` of loc (path names it). */
int fuze__pf_open_obj(fuze_pf_rd *x, hid_t loc, const char *name, const char *path, H5I_type_t want,
                      hid_t *id);
/* A scalar (n == 0) or 1-D attribute of exactly `type`. */
int fuze__pf_r_attr(fuze_pf_rd *x, hid_t obj, const char *path, const char *name, hid_t type,
                    hsize_t n, void *out);
int fuze__pf_r_u64(fuze_pf_rd *x, hid_t o, const char *path, const char *name, uint64_t *v);
/* A signed attribute that must lie in [lo, hi]. */
int fuze__pf_r_int(fuze_pf_rd *x, hid_t o, const char *path, const char *name, int64_t lo,
                   int64_t hi, int64_t *v);
/* A fixed-length string attribute of at most cap - 1 bytes. */
int fuze__pf_r_str(fuze_pf_rd *x, hid_t obj, const char *path, const char *name, char *out,
                   size_t cap);
/* A dataset of exactly `type` whose shape matches dims (FUZE_PF_ANY: any size
 * up to max0 for dimension 0), its crc64 checked; its bytes malloc'd. */
int fuze__pf_r_ds(fuze_pf_rd *x, hid_t loc, const char *name, const char *path, hid_t type,
                  int ndims, hsize_t *dims, hsize_t max0, unsigned char **out, size_t *nbytes);

/* ---- pfile_h5read_structs.c ---- */

/* /arrays, /stacks and /maps into m->structs (after the root and the plan). */
int fuze__pf_read_structs(fuze_pf_rd *x, hid_t f, fuze_pfile *m);
/* /parity into m->regions (after the structures). */
int fuze__pf_read_parity(fuze_pf_rd *x, hid_t f, fuze_pfile *m);

#endif
