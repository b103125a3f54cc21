/* pfile_h5read_structs: the structures of a rank file (/arrays, /stacks,
 * /maps) and the backup regions it hosts (/parity). */
#include "core/pfile_h5.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The link names of a group, unescaped, in name order. */
static int list_group(fuze_pf_rd *x, hid_t g, const char *path, char (**names)[FUZE_PFILE_NAME_MAX],
                      char (**escs)[FUZE_PF_ESC_MAX], hsize_t *n) {
  H5G_info_t info;
  *names = NULL, *escs = NULL;
  if (H5Gget_info(g, &info) < 0) return rbad(x, "cannot list %s", path);
  if (info.nlinks > FUZE_PF_MAX_STRUCTS)
    return rbad(x, "%s holds %llu links", path, (unsigned long long)info.nlinks);
  *n = info.nlinks;
  *names = calloc(*n ? *n : 1, sizeof **names);
  *escs = calloc(*n ? *n : 1, sizeof **escs);
  if (!*names || !*escs) return rnomem(x);
  for (hsize_t i = 0; i < *n; i++) {
    ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, (*escs)[i],
                                     FUZE_PF_ESC_MAX, H5P_DEFAULT);
    if (len < 1 || len >= FUZE_PF_ESC_MAX || fuze__pf_name_unescape((*escs)[i], (*names)[i]))
      return rbad(x, "%s holds a link with a bad name", path);
  }
  return 0;
}

static int r_name_attr(fuze_pf_rd *x, hid_t o, const char *path, const char *want) {
  char name[FUZE_PFILE_NAME_MAX];
  if (fuze__pf_r_str(x, o, path, "name", name, sizeof name)) return -1;
  if (strcmp(name, want)) return rbad(x, "%s is named '%s' inside", path, name);
  return 0;
}

static int claim_index(fuze_pf_rd *x, fuze_pfile *m, int64_t idx, const char *path) {
  if (m->structs[idx].name[0]) return rbad(x, "%s repeats structure index %" PRId64, path, idx);
  return 0;
}

static int read_array(fuze_pf_rd *x, hid_t g, const char *name, const char *esc, fuze_pfile *m) {
  char path[FUZE_PF_ESC_MAX + 16];
  snprintf(path, sizeof path, "/arrays/%s", esc);
  hid_t d;
  if (fuze__pf_open_obj(x, g, esc, path, H5I_DATASET, &d)) return -1;
  fuze_pstruct tmp = {0};
  int64_t idx;
  uint64_t elem;
  int rc = r_name_attr(x, d, path, name) ||
           fuze__pf_r_str(x, d, path, "mpi_type", tmp.type_name, sizeof tmp.type_name) ||
           fuze__pf_r_u64(x, d, path, "elem_size", &elem) ||
           fuze__pf_r_int(x, d, path, "index", 0, m->nstructs - 1, &idx);
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
      rc = fuze__pf_r_attr(x, d, path, "rank_counts", H5T_NATIVE_UINT64, (hsize_t)m->ranks,
                           s->rank_counts);
  }
  H5Oclose(d);
  if (rc) return -1;
  if (s->rank_counts[m->rank] > (uint64_t)(SIZE_MAX / 4) / s->elem)
    return rbad(x, "%s: %" PRIu64 " elements", path, s->rank_counts[m->rank]);
  int owned;
  hid_t t = fuze__pf_array_type(s, &owned);
  if (t < 0) return rbad(x, "%s: cannot build its type", path);
  hsize_t n = s->rank_counts[m->rank];
  size_t bytes;
  rc = fuze__pf_r_ds(x, g, esc, path, t, 1, &n, FUZE_PF_ANY, &s->data, &bytes);
  if (owned) H5Tclose(t);
  s->count = (size_t)n;
  return rc;
}

static int read_fobj(fuze_pf_rd *x, hid_t parent, int kind, const char *name, const char *esc,
                     fuze_pfile *m) {
  int map = kind == FUZE_PS_MAP;
  char path[FUZE_PF_ESC_MAX + 16], dpath[FUZE_PF_ESC_MAX + 32];
  snprintf(path, sizeof path, "/%s/%s", fuze__pf_group(kind), esc);
  hid_t g;
  if (fuze__pf_open_obj(x, parent, esc, path, H5I_GROUP, &g)) return -1;
  int64_t idx;
  uint64_t seq, cap, kb, nb;
  H5G_info_t info;
  int rc = r_name_attr(x, g, path, name) ||
           fuze__pf_r_int(x, g, path, "index", 0, m->nstructs - 1, &idx) ||
           fuze__pf_r_u64(x, g, path, "seq", &seq) || fuze__pf_r_u64(x, g, path, "cap", &cap) ||
           fuze__pf_r_u64(x, g, path, "key_size", &kb) ||
           fuze__pf_r_u64(x, g, path, "value_size", &nb);
  if (!rc && (cap > SIZE_MAX / 4 || kb > (1u << 30) || nb > (1u << 30)))
    rc = rbad(x, "%s: capacity or sizes out of range", path);
  if (!rc) rc = claim_index(x, m, idx, path);
  if (!rc && (H5Gget_info(g, &info) < 0 || info.nlinks != (hsize_t)(map ? 2 : 1)))
    rc = rbad(x, "%s holds unexpected objects", path);
  fuze_pstruct *s = rc ? NULL : &m->structs[idx];
  if (s) {
    snprintf(s->name, sizeof s->name, "%s", name);
    s->kind = kind, s->seq = seq, s->cap = (size_t)cap, s->kb = (size_t)kb, s->nb = (size_t)nb;
    hsize_t dk[2] = {FUZE_PF_ANY, kb}, dv[2] = {FUZE_PF_ANY, nb};
    size_t bytes;
    if (map) {
      snprintf(dpath, sizeof dpath, "%s/keys", path);
      rc = fuze__pf_r_ds(x, g, "keys", dpath, H5T_NATIVE_UINT8, 2, dk, cap, &s->keys, &bytes);
    }
    snprintf(dpath, sizeof dpath, "%s/%s", path, map ? "values" : "elements");
    if (!rc)
      rc = fuze__pf_r_ds(x, g, map ? "values" : "elements", dpath, H5T_NATIVE_UINT8, 2, dv, cap,
                         &s->data, &bytes);
    if (!rc) s->count = (size_t)dv[0];
    if (!rc && map && dk[0] != dv[0])
      rc = rbad(x, "%s: %llu keys but %llu values", path, (unsigned long long)dk[0],
                (unsigned long long)dv[0]);
  }
  H5Gclose(g);
  return rc;
}

static int read_kind(fuze_pf_rd *x, hid_t f, int kind, fuze_pfile *m,
                     char (*names)[FUZE_PFILE_NAME_MAX], char (*escs)[FUZE_PF_ESC_MAX], hsize_t n) {
  const char *gname = fuze__pf_group(kind);
  hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
  if (g < 0) return rbad(x, "cannot open /%s", gname);
  int rc = 0;
  for (hsize_t i = 0; i < n && !rc; i++)
    rc = kind == FUZE_PS_ARRAY ? read_array(x, g, names[i], escs[i], m)
                               : read_fobj(x, g, kind, names[i], escs[i], m);
  H5Gclose(g);
  return rc;
}

int fuze__pf_read_structs(fuze_pf_rd *x, hid_t f, fuze_pfile *m) {
  char(*names[FUZE_PF_KINDS])[FUZE_PFILE_NAME_MAX] = {0},
  (*escs[FUZE_PF_KINDS])[FUZE_PF_ESC_MAX] = {0};
  hsize_t n[FUZE_PF_KINDS] = {0, 0, 0};
  int rc = 0;
  for (int k = 0; k < FUZE_PF_KINDS && !rc; k++) {
    char path[16];
    hid_t g;
    snprintf(path, sizeof path, "/%s", fuze__pf_group(k));
    if (fuze__pf_open_obj(x, f, fuze__pf_group(k), path, H5I_GROUP, &g))
      rc = -1;
    else
      rc = list_group(x, g, path, &names[k], &escs[k], &n[k]), H5Gclose(g);
  }
  if (!rc && n[0] + n[1] + n[2] > FUZE_PF_MAX_STRUCTS) rc = rbad(x, "too many structures");
  if (!rc) {
    m->nstructs = (int)(n[0] + n[1] + n[2]);
    m->structs = calloc((size_t)(m->nstructs ? m->nstructs : 1), sizeof *m->structs);
    if (!m->structs) rc = rnomem(x);
  }
  for (int k = 0; k < FUZE_PF_KINDS && !rc; k++)
    rc = read_kind(x, f, k, m, names[k], escs[k], n[k]);
  for (int k = 0; k < FUZE_PF_KINDS; k++) free(names[k]), free(escs[k]);
  return rc ? -1 : 0;
}

static int read_region(fuze_pf_rd *x, hid_t g, const char *gpath, fuze_pfile *m, int s, int b,
                       int j) {
  char dname[FUZE_PF_REGION_NAME_MAX], path[FUZE_PF_ESC_MAX + 96];
  snprintf(dname, sizeof dname, "block-%d.backup-%d", b, j);
  snprintf(path, sizeof path, "%s/%s", gpath, dname);
  fuze_pregion *r = &m->regions[m->nregions];
  hsize_t n = fuze__pfile_region_bytes(m, s, b);
  int rc =
      fuze__pf_r_ds(x, g, dname, path, H5T_NATIVE_UINT8, 1, &n, FUZE_PF_ANY, &r->data, &r->bytes);
  if (rc) return rc;
  r->s = s, r->block = b, r->j = j;
  m->nregions++;
  hid_t d = H5Dopen2(g, dname, H5P_DEFAULT);
  int64_t bb, jj;
  rc = d < 0 ? rbad(x, "cannot open %s", path)
             : fuze__pf_r_int(x, d, path, "block", b, b, &bb) ||
                   fuze__pf_r_int(x, d, path, "backup", j, j, &jj);
  if (d >= 0) H5Dclose(d);
  return rc;
}

static int read_parity_of(fuze_pf_rd *x, hid_t gpar, fuze_pfile *m, int s) {
  const fuze_plan *p = &m->plan;
  char esc[FUZE_PF_ESC_MAX], path[FUZE_PF_ESC_MAX + 16];
  fuze__pf_name_escape(m->structs[s].name, esc);
  snprintf(path, sizeof path, "/parity/%s", esc);
  hid_t g;
  if (fuze__pf_open_obj(x, gpar, esc, path, H5I_GROUP, &g)) return -1;
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

int fuze__pf_read_parity(fuze_pf_rd *x, hid_t f, fuze_pfile *m) {
  char msg[FUZE_MSG_LEN];
  if (fuze__pf_check_structs(m, msg)) return rbad(x, "%s", msg);
  hid_t g;
  if (fuze__pf_open_obj(x, f, fuze__pf_group(FUZE_PF_PARITY), "/parity", H5I_GROUP, &g)) return -1;
  H5G_info_t info;
  int rc = 0;
  if (H5Gget_info(g, &info) < 0 || info.nlinks != (hsize_t)m->nstructs)
    rc = rbad(x, "/parity holds %llu groups for %d structures", (unsigned long long)info.nlinks,
              m->nstructs);
  int n = fuze__pf_expected_regions(m, m->rank);
  m->regions = rc ? NULL : calloc((size_t)(n ? n : 1), sizeof *m->regions);
  if (!rc && !m->regions) rc = rnomem(x);
  for (int s = 0; s < m->nstructs && !rc; s++) rc = read_parity_of(x, g, m, s);
  H5Gclose(g);
  return rc;
}
