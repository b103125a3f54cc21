/* pincr: increments of a rank file (core/pfile.h): applying one to the
 * model of its parent epoch, and reading a rank's epoch through its chain
 * (the newest full file at or before it, then its increments in order). */
#include "core/pfile_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void fuze__pfile_incr_path(char *out, size_t len, const char *dir, int domain, int rank,
                           uint64_t epoch) {
  snprintf(out, len, "%s/domain-%d/rank-%d/incr-%" PRIu64 ".h5", dir, domain, rank, epoch);
}

static void delta_free(fuze_pdelta *p) {
  free(p->idx);
  free(p->bytes);
  memset(p, 0, sizeof *p);
}

void fuze__pincr_free(fuze_pincr *d) {
  if (!d) return;
  for (int i = 0; d->structs && i < d->nstructs; i++) {
    delta_free(&d->structs[i].keys);
    delta_free(&d->structs[i].data);
  }
  for (int i = 0; d->regions && i < d->nregions; i++) delta_free(&d->regions[i].d);
  free(d->structs);
  free(d->regions);
  memset(d, 0, sizeof *d);
}

uint64_t fuze__pincr_payload(const fuze_pincr *d) {
  uint64_t n = 0;
  for (int i = 0; i < d->nstructs; i++) n += d->structs[i].keys.nbytes + d->structs[i].data.nbytes;
  for (int i = 0; i < d->nregions; i++) n += d->regions[i].d.nbytes;
  return n;
}

/* *buf (old bytes) becomes the payload p describes. */
static int patch(unsigned char **buf, size_t old, const fuze_pdelta *p, uint64_t chunk,
                 const char *label, const char *what, char *err) {
  size_t len = (size_t)p->len;
  uint64_t nch = (len + chunk - 1) / chunk;
  if (len != old && p->n != nch)
    return fail(err, FUZE_ERR_CORRUPT, "%s: %s changes size (%zu to %zu bytes) but lists %zu of "
                "its %llu chunks", label, what, old, len, p->n, (unsigned long long)nch);
  if (len != old) {
    unsigned char *nb = malloc(len ? len : 1);
    if (!nb) return FUZE_NOMEM(err, label);
    free(*buf);
    *buf = nb;
  }
  const unsigned char *src = p->bytes;
  for (size_t i = 0; i < p->n; i++) {
    size_t off = (size_t)(p->idx[i] * chunk), n = len - off < chunk ? len - off : (size_t)chunk;
    memcpy(*buf + off, src, n);
    src += n;
  }
  if (!len) {
    free(*buf);
    *buf = NULL;
  }
  return FUZE_SUCCESS;
}

/* The model's region the increment's region r patches (NULL: none). */
static fuze_pregion *find(const fuze_pfile *m, const fuze_pincr_region *r) {
  for (int x = 0; x < m->nregions; x++)
    if (m->regions[x].s == r->s && m->regions[x].block == r->block && m->regions[x].j == r->j)
      return &m->regions[x];
  return NULL;
}

int fuze__pincr_apply(fuze_pfile *m, const fuze_pincr *d, const char *label, char *err) {
  if (d->job_id != m->job_id || d->rank != m->rank || d->ranks != m->ranks || d->parent != m->epoch)
    return fail(err, FUZE_ERR_CORRUPT, "%s: an increment of job %016llx rank %d onto epoch %llu, "
                "but its chain holds job %016llx rank %d at epoch %llu", label,
                (unsigned long long)d->job_id, d->rank, (unsigned long long)d->parent,
                (unsigned long long)m->job_id, m->rank, (unsigned long long)m->epoch);
  if (d->nstructs != m->nstructs || d->nregions != m->nregions)
    return fail(err, FUZE_ERR_CORRUPT, "%s: %d structures and %d regions, epoch %llu has %d and %d",
                label, d->nstructs, d->nregions, (unsigned long long)m->epoch, m->nstructs,
                m->nregions);
  for (int i = 0; i < d->nstructs; i++) {
    const fuze_pincr_struct *p = &d->structs[i];
    fuze_pstruct *s = &m->structs[i];
    int arr = s->kind == FUZE_PS_ARRAY;
    size_t unit = arr ? s->elem : s->nb;
    if (strcmp(p->name, s->name) || p->kind != s->kind ||
        (arr && (p->count != s->count || p->cap)) || (!arr && (p->count > p->cap || p->cap < s->cap)) ||
        p->data.len != p->count * unit || p->keys.len != p->count * s->kb)
      return fail(err, FUZE_ERR_CORRUPT, "%s: structure %d ('%s', %llu entries) does not fit "
                  "'%s' of epoch %llu", label, i, p->name, (unsigned long long)p->count, s->name,
                  (unsigned long long)m->epoch);
  }
  for (int i = 0; i < d->nregions; i++) {
    const fuze_pincr_region *r = &d->regions[i];
    const fuze_pregion *g = find(m, r);
    for (int x = 0; x < i && g; x++)
      if (d->regions[x].s == r->s && d->regions[x].block == r->block && d->regions[x].j == r->j) g = NULL;
    if (!g)
      return fail(err, FUZE_ERR_CORRUPT, "%s: region %d (structure %d block %d backup %d, %llu "
                  "bytes) does not fit epoch %llu's", label, i, r->s, r->block, r->j,
                  (unsigned long long)r->d.len, (unsigned long long)m->epoch);
  }
  int rc = FUZE_SUCCESS;
  for (int i = 0; i < d->nstructs && !rc; i++) {
    const fuze_pincr_struct *p = &d->structs[i];
    fuze_pstruct *s = &m->structs[i];
    size_t unit = s->kind == FUZE_PS_ARRAY ? s->elem : s->nb;
    rc = patch(&s->keys, s->count * s->kb, &p->keys, d->chunk, label, "keys", err);
    if (!rc) rc = patch(&s->data, s->count * unit, &p->data, d->chunk, label, "data", err);
    if (!rc) s->count = (size_t)p->count, s->seq = p->seq;
    if (!rc && s->kind != FUZE_PS_ARRAY) s->cap = (size_t)p->cap;
  }
  for (int i = 0; i < d->nregions && !rc; i++) {
    fuze_pregion *g = find(m, &d->regions[i]);
    rc = patch(&g->data, g->bytes, &d->regions[i].d, d->chunk, label, "a backup region", err);
    if (!rc) g->bytes = (size_t)d->regions[i].d.len;
  }
  /* Every size must now be what the model says (a region's size follows
   * its structure's capacity). */
  char msg[FUZE_MSG_LEN];
  if (!rc && fuze__pf_model_check(m, msg))
    rc = fail(err, FUZE_ERR_CORRUPT, "%s: applied to epoch %llu it gives an invalid model: %s",
              label, (unsigned long long)d->parent, msg);
  if (!rc) m->epoch = d->epoch, m->ckpt_calls = d->ckpt_calls;
  return rc;
}

int fuze__pfile_read_chain(const char *dir, int domain, int rank, uint64_t E, fuze_pfile *m,
                           uint64_t *chain, int *nchain, int maxchain, char *err) {
  memset(m, 0, sizeof *m);
  if (nchain) *nchain = 0;
  char path[1600];
  fuze_pincr *incs = NULL;
  int n = 0, rc = FUZE_SUCCESS;
  uint64_t X = E;
  struct stat st;
  /* Walk back to the full file. */
  for (;;) {
    fuze__pfile_path(path, sizeof path, dir, domain, rank, X);
    if (!stat(path, &st)) break;
    char ipath[1600];
    fuze__pfile_incr_path(ipath, sizeof ipath, dir, domain, rank, X);
    if (stat(ipath, &st)) {
      int e = errno;
      if (X == E)
        rc = fail(err, FUZE_ERR_IO, "%s: cannot open: %s (and no incr-%llu.h5)", path, strerror(e),
                  (unsigned long long)X);
      else
        rc = fail(err, FUZE_ERR_IO, "%s: missing (no epoch-%llu.h5 either), which the chain of "
                  "epoch %llu needs", ipath, (unsigned long long)X, (unsigned long long)E);
      break;
    }
    if (n + 1 >= maxchain) {
      rc = fail(err, FUZE_ERR_CORRUPT, "%s: the chain of epoch %llu is longer than %d files",
                ipath, (unsigned long long)E, maxchain);
      break;
    }
    fuze_pincr *g = realloc(incs, sizeof *incs * (size_t)(n + 1));
    if (!g) {
      rc = FUZE_NOMEM(err, ipath);
      break;
    }
    incs = g;
    if ((rc = fuze__pincr_read(ipath, &incs[n], err))) break;
    n++;
    if (incs[n - 1].epoch != X) {
      rc = fail(err, FUZE_ERR_CORRUPT, "%s holds epoch %llu", ipath,
                (unsigned long long)incs[n - 1].epoch);
      break;
    }
    X = incs[n - 1].parent;
  }
  if (!rc) rc = fuze__pfile_read(path, m, err);
  int got = 0;
  if (!rc && chain) chain[got++] = m->epoch;
  for (int i = n - 1; i >= 0 && !rc; i--) {
    char ipath[1600];
    fuze__pfile_incr_path(ipath, sizeof ipath, dir, domain, rank, incs[i].epoch);
    rc = fuze__pincr_apply(m, &incs[i], ipath, err);
    if (!rc && chain) chain[got++] = incs[i].epoch;
  }
  for (int i = 0; i < n; i++) fuze__pincr_free(&incs[i]);
  free(incs);
  if (rc) {
    fuze__pfile_free(m);
    return rc;
  }
  if (nchain) *nchain = got;
  return FUZE_SUCCESS;
}
