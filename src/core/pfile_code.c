/* pfile_code: the pure (MPI-free) code over rank files: a backup region
 * encoded from its block's members' files, and a lost rank's whole file
 * rebuilt from the others (lost primaries decoded, lost regions re-encoded). */
#include "core/code.h"
#include "core/pfile_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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
    return FUZE_NOMEM(err, "encoding a backup region");
  }
  for (int i = 0; i < k; i++) {
    size_t len = v[i].count * unit;
    if (st->kind != FUZE_PS_ARRAY) {
      memcpy(out + fuze__hdr_off(i), &v[i].count, sizeof v[i].count);
      memcpy(out + fuze__hdr_off(i) + sizeof v[i].count, &v[i].seq, sizeof v[i].seq);
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
  mview v[FUZE_GF_MEMBERS];
  for (int x = p->block_start[block]; x < p->block_start[block + 1]; x++) {
    const fuze_pfile *fm = files[p->members[x]];
    if (!fm)
      return fail(err, FUZE_ERR_ARG, "encode: the file of rank %d (member of block %d) is missing",
                  p->members[x], block);
    if (fm->rank != p->members[x] || fm->nstructs != meta->nstructs ||
        fuze__pf_same_struct_meta(meta, &meta->structs[s], &fm->structs[s], s, NULL))
      return fail(err, FUZE_ERR_CORRUPT, "encode: the file of rank %d does not match block %d",
                  p->members[x], block);
    view_of(&fm->structs[s], &v[x - p->block_start[block]]);
  }
  return encode_views(meta, s, block, j, v, out, fuze__pfile_region_bytes(meta, s, block), err);
}

typedef struct blockrec {
  mview v[FUZE_GF_MEMBERS];
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
  memcpy(&v->count, hdr->data + fuze__hdr_off(x), sizeof v->count);
  memcpy(&v->seq, hdr->data + fuze__hdr_off(x) + sizeof v->count, sizeof v->seq);
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
  unsigned char *ptr[FUZE_GF_MEMBERS];
  const fuze_pregion *hdr = NULL;
  rec->buf = calloc((size_t)(k + f), len ? len : 1);
  if (!rec->buf) return FUZE_NOMEM(err, "decoding a block");
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
  unsigned char erased[FUZE_GF_MEMBERS];
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
  if (fuze__plan_copy(&out->plan, &ref->plan)) return FUZE_NOMEM(err, "rebuild");
  out->structs = calloc((size_t)(ref->nstructs ? ref->nstructs : 1), sizeof *out->structs);
  if (!out->structs) return FUZE_NOMEM(err, "rebuild");
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
      return FUZE_NOMEM(err, "rebuild");
  }
  int n = fuze__pf_expected_regions(ref, target);
  out->regions = calloc((size_t)(n ? n : 1), sizeof *out->regions);
  if (!out->regions) return FUZE_NOMEM(err, "rebuild");
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
  if (!rec) return FUZE_NOMEM(err, "rebuild");
  for (int b = 0; b < p->nblocks && !rc; b++) {
    if (b != own && !hosts_block(p, t, b)) continue;
    rc = recover_block(files, t, ref, s, b, rec, err);
    if (!rc && b == own && take_own(&out->structs[s], &rec->v[p->index_in_block[t]]))
      rc = FUZE_NOMEM(err, "rebuild");
    for (int j = 0; j < p->f && !rc; j++) {
      if (p->hosts[b * p->f + j] != t) continue;
      fuze_pregion *g = &out->regions[out->nregions];
      g->s = s, g->block = b, g->j = j, g->bytes = fuze__pfile_region_bytes(ref, s, b);
      g->data = malloc(g->bytes ? g->bytes : 1);
      if (!g->data)
        rc = FUZE_NOMEM(err, "rebuild");
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
    if (fuze__pf_model_check(m, msg)) return fail(err, FUZE_ERR_CORRUPT, "rank %d: %s", r, msg);
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
  if (!rc && fuze__pf_model_check(out, msg))
    rc = fail(err, FUZE_ERR_CORRUPT, "rebuilt rank %d is inconsistent: %s", target, msg);
  if (rc) fuze__pfile_free(out);
  return rc;
}
