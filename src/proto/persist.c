/* persist: HDF5 epochs on node-local directories and the restart that
 * rebuilds lost ranks' files by decoding.
 *
 * Writing (a committed checkpoint whose epoch is a multiple of persist_every):
 *   Pre: every rank writes DIR/domain-<D>/rank-<R>/.epoch-<E>.h5.tmp (its
 *        committed primaries and the committed regions it hosts), fsyncs it
 *        and renames it to epoch-<E>.h5, then fsyncs the directory;
 *   agreement: every rank succeeded and nobody was lost;
 *   Fin: rank 0 rewrites DIR/manifest and the first rank of every failure
 *        domain DIR/domain-<D>/manifest (temporary name, fsync, rename)
 *        listing E and the previous complete epoch; only then do ranks
 *        delete files of older epochs.
 * A kill anywhere leaves the manifest naming complete epochs whose files are
 * all durable, so the previous epoch stays usable (docs/format.md).
 *
 * Restart (fuze_init with the same dir): the newest complete epoch any
 * manifest copy names (none readable: the newest the rank files restore); every
 * rank checks its own file (crc64s, job id, epoch, rank, plan); the ranks
 * whose file is missing or damaged get their model back by reductions over
 * the blocks, to which the survivors contribute from their own files
 * (prestore.c, like the in-job recovery), and write their file again. The
 * registrations then load the stored parity instead of encoding it
 * (prestore.c). Up to f per block; more gives FUZE_ERR_UNRECOVERABLE naming the
 * files, and the older complete epoch is tried before giving up. */
#include "proto/persist.h"
#include "proto/inject.h"
#include "data/array.h"
#include "comm/coll.h"
#include "comm/transport.h"
#include "data/fused.h"
#include "core/pfile.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_BYTES 1400

/* ---- files and directories ---- */

static int mkdir_p(const char *path, char *err) {
  char buf[PATH_BYTES];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || !*p) {
      char c = *p;
      *p = 0;
      if (mkdir(buf, 0755) && errno != EEXIST)
        return fuze__error(err, FUZE_ERR_IO, "persist: cannot create directory %s: %s", buf,
                           strerror(errno));
      *p = c;
      if (!c) break;
    }
  }
  struct stat st;
  if (stat(path, &st) || !S_ISDIR(st.st_mode))
    return fuze__error(err, FUZE_ERR_IO, "persist: %s is not a directory", path);
  return FUZE_SUCCESS;
}

static void fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

static void my_dir(const fuze_ctx *ctx, char *out, size_t len) {
  fuze__pfile_dir(out, len, ctx->cfg.dir, ctx->plan.domain[ctx->rank], ctx->rank);
}

/* Delete this rank's epoch and increment files except those of the epochs
 * in `keep` (n of them), and temporaries. */
static void prune(const fuze_ctx *ctx, const uint64_t *keep, int n) {
  char dir[PATH_BYTES];
  my_dir(ctx, dir, sizeof dir);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    unsigned long long ep;
    char tail[8] = "";
    int del = 0;
    if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp")) del = 1;
    else if ((sscanf(e->d_name, "epoch-%llu.h%2s", &ep, tail) == 2 ||
              sscanf(e->d_name, "incr-%llu.h%2s", &ep, tail) == 2) && !strcmp(tail, "5")) {
      del = 1;
      for (int x = 0; x < n; x++)
        if (keep[x] == ep) del = 0;
    }
    if (!del) continue;
    char path[PATH_BYTES + 300];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

/* ---- snapshot: the committed state of this rank as a file model ---- */

/* The model points into the library's buffers (shadows, vals, windows);
 * only the arrays it allocated itself are freed here. */
static void snapshot_free(fuze_pfile *m) {
  for (int s = 0; m->structs && s < m->nstructs; s++) free(m->structs[s].rank_counts);
  free(m->structs);
  free(m->regions);
  fuze__plan_free(&m->plan);
  memset(m, 0, sizeof *m);
}

/* Collective (element types come from world rank 0: spares do not know them). */
static int snapshot(fuze_ctx *ctx, fuze_pfile *m) {
  memset(m, 0, sizeof *m);
  m->version = FUZE_PFILE_VERSION;
  m->job_id = ctx->job_id;
  m->epoch = ctx->epoch;
  m->ckpt_calls = ctx->ckpt_calls;
  m->rank = ctx->rank;
  m->ranks = ctx->size;
  m->f = ctx->plan.f;
  m->spares = ctx->plan.spares;
  m->code = ctx->cfg.code;
  int n = ctx->narrays + ctx->nfobjs, nreg = 0, rc = FUZE_SUCCESS;
  for (int x = 0; x < ctx->narrays; x++) nreg += ctx->arrays[x]->nhosted;
  for (int x = 0; x < ctx->nfobjs; x++) nreg += ctx->fobjs[x]->nhosted;
  m->structs = calloc((size_t)(n ? n : 1), sizeof *m->structs);
  m->regions = calloc((size_t)(nreg ? nreg : 1), sizeof *m->regions);
  if (!m->structs || !m->regions || fuze__plan_copy(&m->plan, &ctx->plan)) rc = FUZE_ERR_NOMEM;
  for (int x = 0; x < ctx->narrays; x++) {
    fuze_array *a = ctx->arrays[x];
    struct { uint64_t elem; char type[32]; } t = {a->elem, ""};
    char tname[MPI_MAX_OBJECT_NAME] = "";
    int len = 0;
    if (!ctx->is_spare && !rc) rc = FUZE_MPI(ctx->msg, MPI_Type_get_name(a->type, tname, &len));
    snprintf(t.type, sizeof t.type, "%.31s", tname);
    int brc = FUZE_MPI(ctx->msg, MPI_Bcast(&t, (int)sizeof t, MPI_BYTE, 0, ctx->net.comm));
    if (!rc) rc = brc;
    if (rc) continue;
    fuze_pstruct *ps = &m->structs[m->nstructs++];
    snprintf(ps->name, sizeof ps->name, "%s", a->name);
    ps->kind = FUZE_PS_ARRAY;
    snprintf(ps->type_name, sizeof ps->type_name, "%s", t.type);
    ps->elem = t.elem;
    ps->count = a->bytes / (t.elem ? t.elem : 1);
    ps->data = a->shadow;
    ps->rank_counts = calloc((size_t)ctx->size, sizeof *ps->rank_counts);
    if (!ps->rank_counts) {
      rc = FUZE_ERR_NOMEM;
      continue;
    }
    for (int r = 0; r < ctx->size; r++) ps->rank_counts[r] = a->rank_bytes[r] / (t.elem ? t.elem : 1);
    fuze__win_sync(&a->ctx->net, a->win);
    for (int h = 0; h < a->nhosted; h++)
      m->regions[m->nregions++] = (fuze_pregion){m->nstructs - 1, a->hosted[h].block, a->hosted[h].j,
                                                 a->hosted[h].fused,
                                                 fuze__array_committed(a, h)};
  }
  for (int x = 0; x < ctx->nfobjs && !rc; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    fuze_pstruct *ps = &m->structs[m->nstructs++];
    snprintf(ps->name, sizeof ps->name, "%s", f->name);
    ps->kind = f->kind == FUZE_FOBJ_MAP ? FUZE_PS_MAP : FUZE_PS_STACK;
    ps->kb = f->kb;
    ps->nb = f->nb;
    ps->seq = f->seq;
    ps->cap = f->cap;
    ps->count = f->n;
    ps->keys = f->kb ? f->keys : NULL;
    ps->data = f->vals;
    if (!f->excl) fuze__win_sync(&f->ctx->net, f->win);
    for (int h = 0; h < f->nhosted; h++)
      m->regions[m->nregions++] = (fuze_pregion){m->nstructs - 1, f->hosted[h].block, f->hosted[h].j,
                                                 f->hosted[h].fused,
                                                 f->winbase + f->hosted[h].off + f->hosted[h].fused};
  }
  return rc ? CTX_ERR(ctx, rc, "persist: out of memory") : FUZE_SUCCESS;
}

static int write_manifest(fuze_ctx *ctx, const uint64_t *ep, const int64_t *calls, int n);

/* ---- persist_base > 1: increments ----
 *
 * Change marks since the last persisted snapshot: arrays keep one byte per
 * chunk of their own bytes and of every hosted region (pdirty, set where the
 * checkpoint already finds changed chunks: the primary's dirty scan and the
 * host's promotion map); stacks and maps keep the seq and the hosted regions'
 * header lines of that snapshot (a member's seq counts its operations, so an
 * equal seq is an equal state; a changed structure or region is written
 * whole). Anything that changes committed bytes without marks (a recovery, a
 * ULFM repair, a verify or byzantine repair, a restart, a registration, a
 * persist that did not complete) makes the next persisted epoch full. */

#define TOO_BIG 1 /* an increment would outgrow its budget (not an error) */

static size_t nch(size_t len, size_t chunk) { return (len + chunk - 1) / chunk; }

static size_t marks_len(const fuze_ctx *ctx, const fuze_array *a) {
  size_t n = nch(a->bytes, ctx->cfg.chunk);
  for (int h = 0; h < a->nhosted; h++) n += nch(a->hosted[h].fused, ctx->cfg.chunk);
  return n;
}

static size_t hdr_len(const fuze_ctx *ctx, const fuze_fobj *f) {
  size_t n = 0;
  for (int h = 0; h < f->nhosted; h++) {
    int b = f->hosted[h].block;
    n += fuze__hdr_off(ctx->plan.block_start[b + 1] - ctx->plan.block_start[b]);
  }
  return n;
}

static const unsigned char *fobj_committed(const fuze_fobj *f, int h) {
  return f->winbase + f->hosted[h].off + f->hosted[h].fused;
}

/* Can this rank write an increment onto persisted[0]? */
static int incr_possible(const fuze_ctx *ctx) {
  if (ctx->cfg.persist_base < 2 || !ctx->npersisted || !ctx->npchain ||
      ctx->npchain >= ctx->cfg.persist_base || ctx->pchain[ctx->npchain - 1] != ctx->persisted[0] ||
      ctx->psnap != ctx->persisted[0] || ctx->psnap_recoveries != ctx->recoveries ||
      ctx->psnap_repairs != ctx->ft_repairs || ctx->pforce ||
      ctx->psnap_nstructs != ctx->narrays + ctx->nfobjs)
    return 0;
  for (int x = 0; x < ctx->narrays; x++)
    if (!ctx->arrays[x]->pdirty || ctx->arrays[x]->pdirty_len != marks_len(ctx, ctx->arrays[x]))
      return 0;
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!ctx->fobjs[x]->pvalid) return 0;
  return 1;
}

/* The chunks of src (len bytes) that marks flags (NULL: every chunk; all 0:
 * none), packed. *budget: payload bytes the increment may still take; over
 * it, nothing is copied and TOO_BIG says a full file is due. */
static int gather(fuze_pdelta *p, const unsigned char *src, size_t len, size_t chunk,
                  const unsigned char *marks, int all, uint64_t *budget) {
  size_t n = nch(len, chunk), cnt = 0, bytes = 0;
  p->len = len;
  for (size_t c = 0; c < n; c++)
    if (all || (marks && marks[c])) cnt++, bytes += len - c * chunk < chunk ? len - c * chunk : chunk;
  if (bytes > *budget) return TOO_BIG;
  *budget -= bytes;
  p->idx = malloc(sizeof(uint64_t) * (cnt ? cnt : 1));
  p->bytes = malloc(bytes ? bytes : 1);
  if (!p->idx || !p->bytes) return FUZE_ERR_NOMEM;
  unsigned char *o = p->bytes;
  for (size_t c = 0; c < n; c++) {
    if (!(all || (marks && marks[c]))) continue;
    size_t k = len - c * chunk < chunk ? len - c * chunk : chunk;
    memcpy(o, src + c * chunk, k);
    o += k;
    p->idx[p->n++] = c;
  }
  p->nbytes = bytes;
  return FUZE_SUCCESS;
}

/* The increment of snapshot m onto persisted[0] (incr_possible held), at
 * most `budget` payload bytes (else TOO_BIG, before copying more). */
static int build_incr(fuze_ctx *ctx, const fuze_pfile *m, fuze_pincr *d, uint64_t budget) {
  size_t chunk = ctx->cfg.chunk;
  d->job_id = m->job_id, d->epoch = m->epoch, d->parent = ctx->persisted[0];
  d->base = ctx->pchain[0], d->ckpt_calls = m->ckpt_calls, d->rank = m->rank, d->ranks = m->ranks;
  d->chunk = chunk;
  d->structs = calloc((size_t)(m->nstructs ? m->nstructs : 1), sizeof *d->structs);
  d->regions = calloc((size_t)(m->nregions ? m->nregions : 1), sizeof *d->regions);
  if (!d->structs || !d->regions) return FUZE_ERR_NOMEM;
  int rc = FUZE_SUCCESS, r = 0;
  for (int s = 0; s < m->nstructs && !rc; s++) {
    const fuze_pstruct *ps = &m->structs[s];
    fuze_pincr_struct *q = &d->structs[d->nstructs++];
    snprintf(q->name, sizeof q->name, "%s", ps->name);
    q->kind = ps->kind, q->count = ps->count, q->seq = ps->seq;
    q->cap = ps->kind == FUZE_PS_ARRAY ? 0 : ps->cap;
    if (s < ctx->narrays) {
      fuze_array *a = ctx->arrays[s];
      rc = gather(&q->keys, NULL, 0, chunk, NULL, 0, &budget);
      if (!rc) rc = gather(&q->data, ps->data, ps->count * ps->elem, chunk, a->pdirty, 0, &budget);
      size_t at = nch(a->bytes, chunk);
      for (int h = 0; h < a->nhosted && !rc; h++, r++) {
        const fuze_pregion *g = &m->regions[r];
        fuze_pincr_region *z = &d->regions[d->nregions++];
        z->s = g->s, z->block = g->block, z->j = g->j;
        rc = gather(&z->d, g->data, g->bytes, chunk, a->pdirty + at, 0, &budget);
        at += nch(a->hosted[h].fused, chunk);
      }
    } else {
      fuze_fobj *f = ctx->fobjs[s - ctx->narrays];
      int changed = f->seq != f->pseq || f->cap != f->pcap;
      rc = gather(&q->keys, ps->keys, ps->count * ps->kb, chunk, NULL, changed, &budget);
      if (!rc) rc = gather(&q->data, ps->data, ps->count * ps->nb, chunk, NULL, changed, &budget);
      size_t at = 0;
      for (int h = 0; h < f->nhosted && !rc; h++, r++) {
        const fuze_pregion *g = &m->regions[r];
        int b = f->hosted[h].block;
        size_t hl = fuze__hdr_off(ctx->plan.block_start[b + 1] - ctx->plan.block_start[b]);
        fuze_pincr_region *z = &d->regions[d->nregions++];
        z->s = g->s, z->block = g->block, z->j = g->j;
        rc = gather(&z->d, g->data, g->bytes, chunk, NULL,
                    f->cap != f->pcap || memcmp(f->phdr + at, fobj_committed(f, h), hl) != 0,
                    &budget);
        at += hl;
      }
    }
  }
  return rc;
}

/* After a snapshot (of either kind): the marks start again from it. A
 * failed allocation leaves them missing, and the next epoch full. */
static void marks_reset(fuze_ctx *ctx) {
  int ok = 1;
  for (int x = 0; x < ctx->narrays; x++) {
    fuze_array *a = ctx->arrays[x];
    size_t len = marks_len(ctx, a);
    if (a->pdirty_len != len || !a->pdirty) {
      free(a->pdirty);
      a->pdirty = calloc(len ? len : 1, 1);
      a->pdirty_len = a->pdirty ? len : 0;
      ok &= a->pdirty != NULL;
    } else if (len) {
      memset(a->pdirty, 0, len);
    }
  }
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    size_t len = hdr_len(ctx, f), at = 0;
    free(f->phdr);
    f->phdr = malloc(len ? len : 1);
    f->pvalid = f->phdr != NULL;
    ok &= f->pvalid;
    for (int h = 0; h < f->nhosted && f->phdr; h++) {
      int b = f->hosted[h].block;
      size_t hl = fuze__hdr_off(ctx->plan.block_start[b + 1] - ctx->plan.block_start[b]);
      memcpy(f->phdr + at, fobj_committed(f, h), hl);
      at += hl;
    }
    f->pseq = f->seq;
    f->pcap = f->cap;
  }
  ctx->psnap = ok ? ctx->epoch : 0;
  ctx->psnap_recoveries = ctx->recoveries;
  ctx->psnap_repairs = ctx->ft_repairs;
  ctx->psnap_nstructs = ctx->narrays + ctx->nfobjs;
  ctx->pforce = 0;
}

static uint64_t model_payload(const fuze_pfile *m) {
  uint64_t n = 0;
  for (int s = 0; s < m->nstructs; s++) {
    const fuze_pstruct *ps = &m->structs[s];
    n += ps->count * (ps->kb + (ps->kind == FUZE_PS_ARRAY ? ps->elem : ps->nb));
  }
  for (int r = 0; r < m->nregions; r++) n += m->regions[r].bytes;
  return n;
}

/* Collective: *use = 1 and d the increment when every rank can write one
 * and the increments since the full file stay within half its size (else a
 * full file: the compaction). The marks restart from this snapshot. */
static int choose_incr(fuze_ctx *ctx, const fuze_pfile *m, fuze_pincr *d, int *use,
                       uint64_t *payload) {
  *use = 0;
  memset(d, 0, sizeof *d);
  *payload = m ? model_payload(m) : 0;
  if (ctx->cfg.persist_base < 2) return FUZE_SUCCESS;
  /* m NULL: this rank's snapshot failed; it still takes part (collective). */
  int ok = m && incr_possible(ctx), rc = FUZE_SUCCESS;
  /* Increments since the full file stay within half of it. Over that, or
   * out of memory: a full file instead. */
  uint64_t half = ctx->pbase_bytes / 2;
  if (ok && (ctx->pincr_bytes > half || build_incr(ctx, m, d, half - ctx->pincr_bytes))) ok = 0;
  uint64_t pay = ok ? fuze__pincr_payload(d) : 0;
  int full = !ok;
  rc = fuze__max_int(&ctx->net, &full);
  marks_reset(ctx);
  if (rc || full) {
    fuze__pincr_free(d);
    return rc;
  }
  *use = 1;
  *payload = pay;
  return FUZE_SUCCESS;
}

/* The epoch E is durable on every rank (agreed): the manifest copies name
 * it, the chain moves on, files no restart point needs go. With
 * persist_base > 1 a full file (a compaction) is the only restart point
 * named (the older one's files would double the disk use); an increment
 * keeps the previous epoch too, whose files are all in its chain. */
static int complete_epoch(fuze_ctx *ctx, uint64_t E, int64_t calls, int incr, uint64_t payload,
                          uint64_t file_bytes) {
  uint64_t keep[2] = {E, ctx->persisted[0]};
  int64_t kc[2] = {calls, ctx->persisted_calls[0]};
  int nkeep = ctx->npersisted ? 2 : 1;
  if (ctx->cfg.persist_base > 1 && !incr) nkeep = 1;
  int rc = write_manifest(ctx, keep, kc, nkeep);
  if (rc) return rc;
  uint64_t files[2 * FUZE_PERSIST_BASE_MAX + 1];
  int nfiles = 0;
  if (nkeep == 2)
    for (int x = 0; x < ctx->npchain; x++) files[nfiles++] = ctx->pchain[x];
  if (incr && ctx->npchain < FUZE_PERSIST_BASE_MAX) {
    ctx->pchain[ctx->npchain++] = E;
    ctx->pincr_bytes += payload;
    ctx->persist_increments++;
  } else {
    ctx->pchain[0] = E, ctx->npchain = 1;
    ctx->pbase_bytes = payload, ctx->pincr_bytes = 0;
  }
  for (int x = 0; x < ctx->npchain; x++) files[nfiles++] = ctx->pchain[x];
  for (int x = 0; x < nkeep; x++) {
    ctx->persisted[x] = keep[x];
    ctx->persisted_calls[x] = kc[x];
  }
  ctx->npersisted = nkeep;
  ctx->persist_files++;
  ctx->persist_bytes += file_bytes;
  ctx->persist_last_bytes = file_bytes;
  prune(ctx, files, nfiles);
  return FUZE_SUCCESS;
}

/* ---- writing ---- */

/* Write model m as its rank's file of its epoch under `top`: temporary,
 * fsync, rename, fsync of the directory. `between` (may be NULL) runs
 * between the temporary and the rename (the injection point `persist`); a
 * non-zero return abandons the file. No ctx: the async writer calls this. */
static int write_model(const char *top, const fuze_pfile *m, const fuze_pincr *inc,
                       int (*between)(void *), void *arg, uint64_t *bytes, char *err) {
  char dir[PATH_BYTES], tmp[PATH_BYTES + 64], path[PATH_BYTES + 64];
  fuze__pfile_dir(dir, sizeof dir, top, m->plan.domain[m->rank], m->rank);
  int rc = mkdir_p(dir, err);
  if (rc) return rc;
  snprintf(tmp, sizeof tmp, "%s/.%s-%llu.h5.tmp", dir, inc ? "incr" : "epoch",
           (unsigned long long)m->epoch);
  if (inc) fuze__pfile_incr_path(path, sizeof path, top, m->plan.domain[m->rank], m->rank, m->epoch);
  else fuze__pfile_path(path, sizeof path, top, m->plan.domain[m->rank], m->rank, m->epoch);
  char e2[FUZE_MSG_LEN] = "";
  struct stat st;
  if (bytes) *bytes = 0;
  if ((rc = inc ? fuze__pincr_write(inc, tmp, e2) : fuze__pfile_write(m, tmp, e2))) {
    unlink(tmp);
    return fuze__error(err, rc, "persist: %s", e2);
  }
  if (between && (rc = between(arg))) {
    unlink(tmp);
    return rc;
  }
  if (rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    return fuze__error(err, FUZE_ERR_IO, "persist: cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
  fsync_dir(dir);
  if (bytes && !stat(path, &st)) *bytes = (uint64_t)st.st_size;
  return FUZE_SUCCESS;
}

static int wipe_between(void *arg) {
  fuze_ctx *ctx = arg;
  if (!fuze__inject_point(ctx, FUZE_PHASE_PERSIST)) return 0;
  return CTX_ERR(ctx, FUZE_ERR_STATE, "persist: rank %d was wiped while persisting", ctx->rank);
}

static int write_file(fuze_ctx *ctx, const fuze_pfile *m, const fuze_pincr *inc, int inject,
                      uint64_t *bytes) {
  char err[FUZE_MSG_LEN] = "";
  int rc = write_model(ctx->cfg.dir, m, inc, inject ? wipe_between : NULL, ctx, bytes, err);
  if (rc && rc != FUZE_ERR_STATE) CTX_ERR(ctx, rc, "%s", err);
  return rc;
}

/* The first rank of this rank's failure domain: it keeps the domain's copy. */
static int domain_leader(const fuze_ctx *ctx) {
  for (int r = 0; r < ctx->size; r++)
    if (ctx->plan.domain[r] == ctx->plan.domain[ctx->rank]) return r;
  return ctx->rank;
}

static void manifest_dir(const fuze_ctx *ctx, int copy, int domain, char *out, size_t len);

/* Collective: every copy of the manifest lists ep (n of them). Rank 0 writes
 * DIR/manifest, the first rank of every failure domain DIR/domain-<D>/manifest
 * (on node-local storage each node then has one, and losing any f domains,
 * rank 0's included, leaves copies). Agreed result. */
static int write_manifest(fuze_ctx *ctx, const uint64_t *ep, const int64_t *calls, int n) {
  fuze_manifest man;
  memset(&man, 0, sizeof man);
  man.version = 1;
  man.job_id = ctx->job_id;
  man.ranks = ctx->size;
  man.f = ctx->plan.f;
  man.spares = ctx->plan.spares;
  man.code = ctx->cfg.code;
  man.mode = ctx->cfg.mode;
  man.ncomplete = n;
  for (int x = 0; x < n; x++) {
    man.complete[x] = ep[x];
    man.ckpt_calls[x] = calls[x];
  }
  char err[FUZE_MSG_LEN] = "";
  int rc = FUZE_SUCCESS;
  for (int c = 0; c < 2 && !rc; c++) {
    if (c == 0 ? ctx->rank != 0 : domain_leader(ctx) != ctx->rank) continue;
    char d[PATH_BYTES];
    manifest_dir(ctx, c, ctx->plan.domain[ctx->rank], d, sizeof d);
    if (!(rc = mkdir_p(d, ctx->msg)) && (rc = fuze__manifest_write(d, &man, err)))
      CTX_ERR(ctx, rc, "persist: %s", err);
  }
  return fuze__agree(&ctx->net, rc);
}

/* ---- persist=async: the epoch's files written by a thread ----
 *
 * At the checkpoint the committed state is copied into a staging arena (the
 * library's buffers change as soon as the application goes on) and a
 * thread writes the rank's file (HDF5 image, temporary, fsync, rename). The
 * next fuze_checkpoint (or fuze_finalize) first waits for that thread and
 * completes the epoch collectively: agreement that every rank's file is
 * durable, then the manifest copies name it; only then is it a restart
 * point. A checkpoint that finds the write unfinished waits for it: every
 * persisted epoch is written, none is skipped (persist_every chooses how
 * many). A failed write is reported by the checkpoint that completes it. */
typedef struct fuze_awrite fuze_awrite;
static void rewrite_join(fuze_ctx *ctx);
struct fuze_awrite {
  pthread_t th;
  int running;            /* a thread was started and not joined */
  fuze_pfile m;           /* the snapshot; its data points into arena */
  unsigned char *arena;
  size_t cap;
  char top[FUZE_CONFIG_DIR_MAX];
  fuze_pincr inc;         /* persist_base > 1: the increment written instead (use) */
  int use;
  uint64_t payload, bytes; /* payload bytes (increment or full), file bytes written */
  int kill;               /* inject=kill at phase persist: the thread kills the process */
  char kill_line[200], kill_marker[PATH_BYTES];
  int rc;
  char err[FUZE_MSG_LEN];
  /* Restart: a lost rank's rebuilt file, written back by a thread of its
   * own once the application has registered every stored structure again
   * (rewrite_start, rewrite_join). */
  pthread_t rth;
  int rpending;           /* rebuilt, its write not started yet */
  unsigned char *rseen;   /* per stored structure: registered again */
  int rleft;              /* stored structures not registered again yet */
  int rrunning;
  const fuze_pfile *rm;   /* ctx->restore: read-only until joined */
  char rtop[FUZE_CONFIG_DIR_MAX];
  int rrc;
  char rerr[FUZE_MSG_LEN];
};

static int kill_between(void *arg) {
  fuze_awrite *w = arg;
  if (!w->kill) return 0;
  fputs(w->kill_line, stderr);
  fflush(stderr);
  fflush(stdout);
  if (w->kill_marker[0]) {
    int fd = open(w->kill_marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      fsync(fd);
      close(fd);
    }
  }
  raise(SIGKILL);
  return FUZE_ERR_STATE;
}

static void *writer(void *arg) {
  fuze_awrite *w = arg;
  w->rc = write_model(w->top, &w->m, w->use ? &w->inc : NULL, kill_between, w, &w->bytes, w->err);
  return NULL;
}

/* Copy everything the snapshot points at into the arena and point there. */
static int stage(fuze_awrite *w) {
  fuze_pfile *m = &w->m;
  size_t need = 0;
  for (int s = 0; s < m->nstructs; s++) {
    const fuze_pstruct *ps = &m->structs[s];
    need += fuze__align(ps->count * ps->kb) +
            fuze__align(ps->count * (ps->kind == FUZE_PS_ARRAY ? ps->elem : ps->nb));
  }
  for (int r = 0; r < m->nregions; r++) need += fuze__align(m->regions[r].bytes);
  if (need > w->cap) {
    unsigned char *a = realloc(w->arena, need);
    if (!a) return FUZE_ERR_NOMEM;
    w->arena = a, w->cap = need;
  }
  unsigned char *p = w->arena;
  for (int s = 0; s < m->nstructs; s++) {
    fuze_pstruct *ps = &m->structs[s];
    size_t kb = ps->count * ps->kb, db = ps->count * (ps->kind == FUZE_PS_ARRAY ? ps->elem : ps->nb);
    if (ps->keys && kb) memcpy(p, ps->keys, kb), ps->keys = p;
    p += fuze__align(kb);
    if (ps->data && db) memcpy(p, ps->data, db), ps->data = p;
    p += fuze__align(db);
  }
  for (int r = 0; r < m->nregions; r++) {
    if (m->regions[r].bytes) memcpy(p, m->regions[r].data, m->regions[r].bytes);
    m->regions[r].data = p;
    p += fuze__align(m->regions[r].bytes);
  }
  return FUZE_SUCCESS;
}

static int persist_async(fuze_ctx *ctx) {
  int rc = FUZE_SUCCESS;
  if (!ctx->aw && !(ctx->aw = calloc(1, sizeof *ctx->aw))) rc = FUZE_NOMEM(ctx->msg, "persist");
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  fuze_awrite *w = ctx->aw;
  rc = snapshot(ctx, &w->m);
  w->use = 0;
  int crc = choose_incr(ctx, rc ? NULL : &w->m, &w->inc, &w->use, &w->payload);
  if (!rc) rc = crc;
  char dir[PATH_BYTES];
  my_dir(ctx, dir, sizeof dir);
  if (!rc) rc = mkdir_p(dir, ctx->msg);
  /* An increment holds its own copies; the writer reads only the model's
   * metadata then. A full file's bytes are staged. */
  if (!rc && !w->use && stage(w)) rc = FUZE_NOMEM(ctx->msg, "persist=async: staging the epoch");
  /* Injections at phase persist: a wipe strikes here, a kill in the writer
   * between its temporary file and the rename. */
  int ks = ctx->persist_retry ? -1 : fuze__inject_kill_pending(ctx, FUZE_PHASE_PERSIST);
  if (!ctx->persist_retry && ks < 0) fuze__inject_point(ctx, FUZE_PHASE_PERSIST);
  int lost = ctx->lost, mrc = fuze__max_int(&ctx->net, &lost);
  if (mrc || lost || (rc = fuze__agree(&ctx->net, rc))) {
    snapshot_free(&w->m);
    fuze__pincr_free(&w->inc);
    if (mrc) return mrc;
    if (lost) return FUZE_PERSIST_LOST;
    return CTX_ERR(ctx, rc, "fuze_checkpoint: epoch %llu is committed in memory but was not "
                   "persisted: %s", (unsigned long long)ctx->epoch, ctx->msg);
  }
  w->kill = ks >= 0;
  w->kill_marker[0] = 0;
  if (w->kill) {
    snprintf(w->kill_line, sizeof w->kill_line, "fuze: rank %d kills itself with SIGKILL "
             "(inject=kill, checkpoint %ld, phase persist, in the persist=async writer)\n",
             ctx->rank, ctx->ckpt_calls);
    fuze__kill_marker(ctx, ks, w->kill_marker, sizeof w->kill_marker);
  }
  snprintf(w->top, sizeof w->top, "%s", ctx->cfg.dir);
  w->rc = FUZE_SUCCESS;
  w->err[0] = 0;
  if (pthread_create(&w->th, NULL, writer, w)) writer(w); /* no thread: write it now */
  else w->running = 1;
  ctx->persist_inflight = 1;
  return FUZE_SUCCESS;
}

/* Collective at the start of every checkpoint and in fuze_finalize: wait
 * for the epoch in flight, then make it complete (manifest copies) when
 * every rank wrote it. A failure is kept for the caller to report. */
int fuze__persist_complete(fuze_ctx *ctx) {
  fuze_awrite *w = ctx->aw;
  if (!ctx->persist_inflight) return FUZE_SUCCESS;
  ctx->persist_inflight = 0;
  if (w->running) pthread_join(w->th, NULL);
  w->running = 0;
  uint64_t E = w->m.epoch;
  int64_t calls = w->m.ckpt_calls;
  snapshot_free(&w->m);
  fuze__pincr_free(&w->inc);
  int rc = w->rc;
  if (rc) CTX_ERR(ctx, rc, "%s", w->err);
  if (!(rc = fuze__agree(&ctx->net, rc))) {
    /* phase=persisted of checkpoint N strikes when epoch N's files are all
     * durable: here, in the call that completes them. */
    long now = ctx->ckpt_calls;
    ctx->ckpt_calls = calls;
    int hit = fuze__inject_point(ctx, FUZE_PHASE_PERSISTED);
    int sched = fuze__inject_scheduled(ctx, FUZE_PHASE_PERSISTED);
    ctx->ckpt_calls = now;
    if (hit || sched) {
      int lost = ctx->lost;
      if ((rc = fuze__max_int(&ctx->net, &lost))) return rc;
      if (lost) { /* not complete: the checkpoint recovers the rank, then writes it again */
        ctx->persist_redo = E;
        return FUZE_SUCCESS;
      }
    }
    if (!(rc = complete_epoch(ctx, E, calls, w->use, w->payload, w->bytes))) return FUZE_SUCCESS;
  }
  ctx->persist_failed = rc;
  snprintf(ctx->persist_msg, sizeof ctx->persist_msg, "the asynchronous write of epoch %llu "
           "failed, so it is not a restart point: %.400s", (unsigned long long)E, ctx->msg);
  return FUZE_SUCCESS;
}

int fuze__persist_epoch(fuze_ctx *ctx) {
  if (!ctx->cfg.dir[0] || ctx->epoch % (uint64_t)ctx->cfg.persist_every) return FUZE_SUCCESS;
  if (ctx->cfg.persist_async) return persist_async(ctx);
  fuze_pfile m;
  fuze_pincr inc;
  int use = 0;
  uint64_t payload = 0, fbytes = 0;
  memset(&inc, 0, sizeof inc);
  int rc = snapshot(ctx, &m);
  int crc = choose_incr(ctx, rc ? NULL : &m, &inc, &use, &payload);
  if (!rc) rc = crc;
  if (!rc) rc = write_file(ctx, &m, use ? &inc : NULL, !ctx->persist_retry, &fbytes);
  snapshot_free(&m);
  fuze__pincr_free(&inc);
  /* A rank wiped while persisting: the epoch stays incomplete. */
  int lost = ctx->lost, mrc = fuze__max_int(&ctx->net, &lost);
  if (mrc) return mrc;
  if (lost) return FUZE_PERSIST_LOST;
  if ((rc = fuze__agree(&ctx->net, rc)))
    return CTX_ERR(ctx, rc, "fuze_checkpoint: epoch %llu is committed in memory but was not "
                   "persisted: %s", (unsigned long long)ctx->epoch, ctx->msg);
  /* The wiped rank takes part in the agreement too (it used to return early
   * and leave the others waiting in it). */
  int hit = !ctx->persist_retry && fuze__inject_point(ctx, FUZE_PHASE_PERSISTED);
  if (hit || (!ctx->persist_retry && fuze__inject_scheduled(ctx, FUZE_PHASE_PERSISTED))) {
    lost = ctx->lost;
    if ((mrc = fuze__max_int(&ctx->net, &lost))) return mrc;
    if (lost) return FUZE_PERSIST_LOST;
  }
  /* Fin: the new epoch (and the previous complete one, see complete_epoch). */
  if ((rc = complete_epoch(ctx, ctx->epoch, ctx->ckpt_calls, use, payload, fbytes)))
    return CTX_ERR(ctx, rc, "fuze_checkpoint: epoch %llu is committed in memory but was not "
                   "persisted: %s", (unsigned long long)ctx->epoch, ctx->msg);
  return FUZE_SUCCESS;
}

/* ---- restart ---- */

const fuze_pstruct *fuze__persist_find(const fuze_ctx *ctx, const char *name, int kind) {
  const fuze_pfile *m = ctx->restore;
  for (int s = 0; m && name && s < m->nstructs; s++)
    if (!strcmp(m->structs[s].name, name) && (kind < 0 || m->structs[s].kind == kind))
      return &m->structs[s];
  return NULL;
}

void fuze__persist_free(fuze_ctx *ctx) {
  rewrite_join(ctx);
  if (ctx->restore) fuze__pfile_free(ctx->restore);
  free(ctx->restore);
  ctx->restore = NULL;
}

static int same_plan(const fuze_plan *a, const fuze_plan *b, char *why, size_t len) {
  if (a->nranks != b->nranks || a->f != b->f || a->spares != b->spares) {
    snprintf(why, len, "ranks/faults/spares %d/%d/%d in the file, %d/%d/%d in this job", a->nranks,
             a->f, a->spares, b->nranks, b->f, b->spares);
    return 0;
  }
  for (int r = 0; r < a->nranks; r++)
    if (a->domain[r] != b->domain[r]) {
      snprintf(why, len, "rank %d is in failure domain %d in the file, %d in this job", r,
               a->domain[r], b->domain[r]);
      return 0;
    }
  if (a->nblocks != b->nblocks) {
    snprintf(why, len, "%d blocks in the file, %d in this job", a->nblocks, b->nblocks);
    return 0;
  }
  for (int x = 0; x <= a->nblocks; x++)
    if (a->block_start[x] != b->block_start[x]) {
      snprintf(why, len, "block sizes differ (block %d)", x);
      return 0;
    }
  for (int x = 0; x < a->ncompute; x++)
    if (a->members[x] != b->members[x]) {
      snprintf(why, len, "block membership differs (rank %d vs %d)", a->members[x], b->members[x]);
      return 0;
    }
  for (int x = 0; x < a->nblocks * a->f; x++)
    if (a->hosts[x] != b->hosts[x]) {
      snprintf(why, len, "backup placement differs (block %d backup %d on rank %d vs %d)",
               x / a->f, x % a->f, a->hosts[x], b->hosts[x]);
      return 0;
    }
  return 1;
}

static void *rewriter(void *arg) {
  fuze_awrite *w = arg;
  w->rrc = write_model(w->rtop, w->rm, NULL, NULL, NULL, NULL, w->rerr);
  return NULL;
}

/* Start writing the rebuilt file back: in a thread, or here when none can
 * be started. */
static void rewrite_start(fuze_ctx *ctx) {
  fuze_awrite *w = ctx->aw;
  if (!w || !w->rpending) return;
  w->rpending = 0;
  w->rrc = FUZE_SUCCESS;
  w->rerr[0] = 0;
  w->rrunning = pthread_create(&w->rth, NULL, rewriter, w) == 0;
  if (!w->rrunning) rewriter(w);
}

/* Wait for the rebuilt file's writer (before the model it reads is freed,
 * and before this process uses HDF5 again: Debian's HDF5 is not
 * thread-safe); a write not started yet is made here. A failed write is
 * reported, not returned: the restart has happened, the survivors' files
 * still restore the epoch while no other domain is lost, and the next
 * persisted epoch writes every file. */
static void rewrite_join(fuze_ctx *ctx) {
  fuze_awrite *w = ctx->aw;
  if (!w) return;
  rewrite_start(ctx);
  if (w->rrunning) pthread_join(w->rth, NULL);
  w->rrunning = 0;
  if (w->rrc) {
    fprintf(stderr, "fuze: rank %d: writing its rebuilt file back failed: %s (the next "
            "persisted epoch writes every file again)\n", ctx->rank, w->rerr);
    fflush(stderr);
    w->rrc = FUZE_SUCCESS;
  }
}

/* A restart that fails after the rebuild: its rebuilt file is not written. */
static void rewrite_drop(fuze_ctx *ctx) {
  if (ctx->aw) ctx->aw->rpending = 0;
  rewrite_join(ctx);
}

void fuze__persist_registered(fuze_ctx *ctx, const char *name, int kind) {
  fuze_awrite *w = ctx->aw;
  if (!w || !w->rpending || !ctx->restore) return;
  const fuze_pstruct *ps = fuze__persist_find(ctx, name, kind);
  if (!ps) return;
  size_t s = (size_t)(ps - ctx->restore->structs);
  if (!w->rseen[s]) w->rseen[s] = 1, w->rleft--;
  if (w->rleft <= 0) rewrite_start(ctx);
}

/* The lost ranks' models come back by reductions over the blocks
 * (prestore.c); each lost rank then writes its file again, in a thread
 * that starts once the application has registered every stored structure
 * again (fuze__persist_registered), so that the restart the application
 * waits for does not share the processor with the disk write; a structure
 * never registered again delays it to the first fuze_checkpoint or
 * fuze_finalize (rewrite_join). Without the memory to track that, at once. */
static int rebuild(fuze_ctx *ctx, uint64_t E, const int *bad, fuze_pfile *mine) {
  int rc = fuze__persist_rebuild(ctx, E, bad, mine);
  if (rc || !bad[ctx->rank]) return rc;
  fuze_awrite *w = ctx->aw ? ctx->aw : (ctx->aw = calloc(1, sizeof *ctx->aw));
  if (w) {
    w->rm = mine;
    snprintf(w->rtop, sizeof w->rtop, "%s", ctx->cfg.dir);
    free(w->rseen);
    w->rseen = calloc((size_t)(mine->nstructs > 0 ? mine->nstructs : 1), 1);
    w->rleft = mine->nstructs;
    w->rpending = 1;
    if (!w->rseen || !w->rleft) rewrite_start(ctx);
  }
  if (!w) rc = write_file(ctx, mine, NULL, 0, NULL);
  for (int x = 0; !rc && x < mine->nstructs; x++) {
    const fuze_pstruct *ps = &mine->structs[x];
    ctx->recovered_bytes += ps->kind == FUZE_PS_ARRAY ? ps->count * ps->elem : ps->count * (ps->kb + ps->nb);
  }
  return rc;
}

/* Check this rank's own file of epoch E. Returns 0 (usable), 1 (missing or
 * damaged: why says how) or 2 (intact but from a different plan or code: a
 * configuration error). job 0: the job id is not known yet (no manifest),
 * whichever the file holds is accepted here and agreed on by the caller. */
static int check_own(fuze_ctx *ctx, uint64_t job, uint64_t E, fuze_pfile *m, char *why,
                     size_t len, uint64_t *chain, int *nchain) {
  char path[PATH_BYTES], err[FUZE_MSG_LEN] = "";
  fuze__pfile_path(path, sizeof path, ctx->cfg.dir, ctx->plan.domain[ctx->rank], ctx->rank, E);
  /* epoch-E.h5, or its increments down to the newest full file. */
  int rc = fuze__pfile_read_chain(ctx->cfg.dir, ctx->plan.domain[ctx->rank], ctx->rank, E, m,
                                  chain, nchain, FUZE_PERSIST_BASE_MAX, err);
  if (rc) {
    snprintf(why, len, "%s", err);
    return 1;
  }
  char d[FUZE_MSG_LEN] = "";
  if (job && m->job_id != job)
    snprintf(why, len, "%.200s belongs to another job (job id %016llx, the manifest says %016llx)",
             path, (unsigned long long)m->job_id, (unsigned long long)job);
  else if (m->epoch != E || m->rank != ctx->rank || m->ranks != ctx->size)
    snprintf(why, len, "%.200s holds epoch %llu of rank %d of %d, expected epoch %llu of rank %d of %d",
             path, (unsigned long long)m->epoch, m->rank, m->ranks, (unsigned long long)E,
             ctx->rank, ctx->size);
  else if (!same_plan(&m->plan, &ctx->plan, d, sizeof d) ||
           (m->code != ctx->cfg.code && snprintf(d, sizeof d, "code %s in the file, %s in this job",
                                                 fuze__code_name(m->code),
                                                 fuze__code_name(ctx->cfg.code)))) {
    snprintf(why, len, "%.200s was written with a different plan: %.200s", path, d);
    fuze__pfile_free(m);
    return 2;
  } else
    return 0;
  fuze__pfile_free(m);
  return 1;
}

/* A restart point: a complete epoch and the fuze_checkpoint() calls at it
 * (-1: not known, the rank files say). */
typedef struct cand {
  uint64_t epoch;
  int64_t calls;
} cand;

/* Without a manifest the ranks whose file is good agree on the job: the one
 * most good files belong to (a tie is refused), and its checkpoint count.
 * Files of another job count as bad. */
static int agree_job_from_files(fuze_ctx *ctx, int *bad, char *whys, const fuze_pfile *mine,
                                uint64_t E, uint64_t *job, int64_t *calls) {
  uint64_t me[2] = {bad[ctx->rank] ? 0 : mine->job_id,
                    bad[ctx->rank] ? 0 : (uint64_t)mine->ckpt_calls};
  uint64_t *all = malloc(sizeof(uint64_t) * 2 * (size_t)ctx->size);
  if (!all) return FUZE_NOMEM(ctx->msg, "restart");
  int rc = FUZE_MPI(ctx->msg, MPI_Allgather(me, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, ctx->net.comm));
  uint64_t best = 0;
  int nbest = 0, tie = 0;
  for (int r = 0; r < ctx->size && !rc; r++) {
    if (bad[r]) continue;
    int n = 0;
    for (int q = 0; q < ctx->size; q++) n += !bad[q] && all[2 * q] == all[2 * r];
    if (n > nbest) nbest = n, best = all[2 * r], tie = 0;
    else if (n == nbest && all[2 * r] != best) tie = 1;
  }
  if (!rc && tie)
    rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "restart: dir=%s has no manifest and its files of epoch "
                 "%llu belong to different jobs in equal numbers: refusing to guess (remove the "
                 "files of the job you do not want)", ctx->cfg.dir, (unsigned long long)E);
  for (int r = 0; r < ctx->size && !rc; r++) {
    if (bad[r] || all[2 * r] == best) continue;
    bad[r] = 1;
    snprintf(whys + (size_t)r * FUZE_MSG_LEN, FUZE_MSG_LEN, "rank %d's file of epoch %llu belongs "
             "to another job (%016llx, most files say %016llx)", r, (unsigned long long)E,
             (unsigned long long)all[2 * r], (unsigned long long)best);
  }
  *job = best;
  *calls = -1;
  for (int r = 0; r < ctx->size && !rc; r++) {
    if (bad[r]) continue;
    if (*calls >= 0 && (uint64_t)*calls != all[2 * r + 1])
      rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "restart: dir=%s: the files of epoch %llu disagree on "
                   "the checkpoint it was committed at (%lld and %llu)", ctx->cfg.dir,
                   (unsigned long long)E, (long long)*calls, (unsigned long long)all[2 * r + 1]);
    *calls = (int64_t)all[2 * r + 1];
  }
  free(all);
  return rc;
}

/* Restart from cands[idx] (job 0: no manifest, the files say which job). */
static int restart_from(fuze_ctx *ctx, uint64_t job, const cand *cands, int ncand, int idx) {
  uint64_t E = cands[idx].epoch;
  int64_t calls = cands[idx].calls;
  char why[FUZE_MSG_LEN] = "";
  fuze_pfile *mine = calloc(1, sizeof *mine);
  if (!mine) return fuze__agree(&ctx->net, FUZE_NOMEM(ctx->msg, "restart"));
  uint64_t chain[FUZE_PERSIST_BASE_MAX];
  int nchain = 0;
  int st = check_own(ctx, job, E, mine, why, sizeof why, chain, &nchain);
  /* A different plan is a configuration error, not damage. */
  if (st == 2) CTX_ERR(ctx, FUZE_ERR_CONFIG, "restart: dir=%s: %s (run with the same ranks, "
                       "domains and config, or use another dir)", ctx->cfg.dir, why);
  int rc = fuze__agree(&ctx->net, st == 2 ? FUZE_ERR_CONFIG : FUZE_SUCCESS);
  if (rc) {
    if (st == 0) fuze__pfile_free(mine);
    free(mine);
    return rc;
  }
  int *bad = malloc(sizeof(int) * (size_t)ctx->size);
  char *whys = malloc((size_t)ctx->size * FUZE_MSG_LEN);
  if (!bad || !whys) {
    free(bad);
    free(whys);
    if (st == 0) fuze__pfile_free(mine);
    free(mine);
    return fuze__agree(&ctx->net, FUZE_NOMEM(ctx->msg, "restart"));
  }
  rc = FUZE_MPI(ctx->msg, MPI_Allgather(&st, 1, MPI_INT, bad, 1, MPI_INT, ctx->net.comm));
  if (!rc) rc = FUZE_MPI(ctx->msg, MPI_Allgather(why, FUZE_MSG_LEN, MPI_CHAR, whys, FUZE_MSG_LEN,
                                                 MPI_CHAR, ctx->net.comm));
  if (!rc && !job) {
    rc = agree_job_from_files(ctx, bad, whys, mine, E, &job, &calls);
    if (!rc && st == 0 && mine->job_id != job) {
      fuze__pfile_free(mine);
      memset(mine, 0, sizeof *mine);
    }
  }
  /* Tolerance, the same verdict everywhere. */
  const fuze_plan *p = &ctx->plan;
  int nbad = 0;
  for (int r = 0; r < ctx->size && !rc; r++) nbad += bad[r] != 0;
  for (int b = 0; b < p->nblocks && !rc; b++) {
    int lost = 0, k = p->block_start[b + 1] - p->block_start[b];
    for (int i = 0; i < k; i++) lost += bad[p->members[p->block_start[b] + i]] != 0;
    for (int j = 0; j < p->f; j++) lost += bad[p->hosts[b * p->f + j]] != 0;
    if (lost <= p->f) continue;
    char list[FUZE_MSG_LEN] = "";
    size_t len = 0;
    for (int x = 0; x < k + p->f && len < sizeof list - 8; x++) {
      int r = x < k ? p->members[p->block_start[b] + x] : p->hosts[b * p->f + x - k];
      if (!bad[r]) continue;
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? "; " : "",
                              whys + (size_t)r * FUZE_MSG_LEN);
    }
    rc = CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "epoch %llu is unrecoverable: block %d lost %d "
                 "members but tolerates faults=%d: %s", (unsigned long long)E, b, lost, p->f, list);
  }
  if (!rc && nbad) {
    if (ctx->rank == 0) {
      fprintf(stderr, "fuze: restart from epoch %llu: rebuilding %d file%s by decoding:\n",
              (unsigned long long)E, nbad, nbad > 1 ? "s" : "");
      for (int r = 0; r < ctx->size; r++)
        if (bad[r]) fprintf(stderr, "fuze:   rank %d: %s\n", r, whys + (size_t)r * FUZE_MSG_LEN);
      fflush(stderr);
    }
  }
  if (!rc) {
    if (bad[ctx->rank]) memset(mine, 0, sizeof *mine);
    rc = fuze__agree(&ctx->net, rebuild(ctx, E, bad, mine));
  }
  int rebuilt = bad[ctx->rank] != 0;
  free(bad);
  free(whys);
  if (rc) {
    rewrite_drop(ctx);
    fuze__pfile_free(mine);
    free(mine);
    return rc;
  }
  /* This rank's files of E: its chain, or the rebuilt full file. The marks
   * start at the first persisted epoch after the restart, which is full. */
  if (rebuilt || !nchain) chain[0] = E, nchain = 1;
  memcpy(ctx->pchain, chain, sizeof(uint64_t) * (size_t)nchain);
  ctx->npchain = nchain;
  ctx->pbase_bytes = ctx->pincr_bytes = 0;
  ctx->psnap = 0;
  ctx->restore = mine;
  ctx->job_id = job;
  ctx->epoch = ctx->decided = ctx->hosted_epoch = E;
  ctx->ckpt_calls = calls;
  ctx->persisted[0] = E;
  ctx->persisted_calls[0] = calls;
  ctx->npersisted = 1;
  /* The next older restart point stays usable only when a manifest named it
   * complete (calls known) */
  if (idx + 1 < ncand && cands[idx + 1].calls >= 0 && cands[idx].calls >= 0) {
    ctx->persisted[1] = cands[idx + 1].epoch;
    ctx->persisted_calls[1] = cands[idx + 1].calls;
    ctx->npersisted = 2;
  }
  /* Every copy of the manifest names exactly what this run restarted from:
   * missing or damaged copies come back, and a newer epoch that could not be
   * restored stops being named before this run writes files of its number. */
  rc = write_manifest(ctx, ctx->persisted, ctx->persisted_calls, ctx->npersisted);
  if (ctx->cfg.verbose && ctx->rank == 0 && !rc)
    printf("fuze: restarted from epoch %llu in %s (checkpoint call %lld)\n", (unsigned long long)E,
           ctx->cfg.dir, (long long)ctx->ckpt_calls);
  return rc;
}

static uint64_t new_job_id(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x ? x : 1;
}

/* What one rank finds in dir: the two manifest copies it can see (the
 * job-wide DIR/manifest and its domain's DIR/domain-<D>/manifest; on
 * node-local storage each node sees its own) and its own epoch files. */
#define SEEN_FILES 4
typedef struct seen {
  int rc[2];                  /* per copy: 0, FUZE_ERR_NOT_FOUND or FUZE_ERR_CORRUPT */
  fuze_manifest man[2];
  int nfiles;                 /* epoch files in this rank's directory */
  uint64_t files[SEEN_FILES]; /* the newest of them, newest first */
  char why[2][200];           /* a damaged copy: what is wrong */
} seen;

static void manifest_dir(const fuze_ctx *ctx, int copy, int domain, char *out, size_t len) {
  if (copy == 0) snprintf(out, len, "%s", ctx->cfg.dir);
  else snprintf(out, len, "%s/domain-%d", ctx->cfg.dir, domain);
}

static void look(const fuze_ctx *ctx, seen *s) {
  memset(s, 0, sizeof *s);
  for (int c = 0; c < 2; c++) {
    char d[PATH_BYTES], err[FUZE_MSG_LEN] = "";
    manifest_dir(ctx, c, ctx->plan.domain[ctx->rank], d, sizeof d);
    s->rc[c] = fuze__manifest_read(d, &s->man[c], err);
    if (s->rc[c] && s->rc[c] != FUZE_ERR_NOT_FOUND) {
      s->rc[c] = FUZE_ERR_CORRUPT;
      snprintf(s->why[c], sizeof s->why[c], "%.199s", err);
    }
  }
  char dir[PATH_BYTES];
  my_dir(ctx, dir, sizeof dir);
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    unsigned long long ep;
    char tail[8] = "";
    if ((sscanf(e->d_name, "epoch-%llu.h%2s", &ep, tail) != 2 &&
         sscanf(e->d_name, "incr-%llu.h%2s", &ep, tail) != 2) || strcmp(tail, "5"))
      continue;
    s->nfiles++;
    /* Keep the SEEN_FILES newest, sorted. */
    int n = s->nfiles - 1 < SEEN_FILES ? s->nfiles - 1 : SEEN_FILES, at = n;
    while (at > 0 && s->files[at - 1] < ep) at--;
    if (at >= SEEN_FILES) continue;
    for (int x = (n < SEEN_FILES ? n : SEEN_FILES - 1); x > at; x--) s->files[x] = s->files[x - 1];
    s->files[at] = ep;
  }
  if (d) closedir(d);
}

static void add_cand(cand *c, int *n, int cap, uint64_t epoch, int64_t calls) {
  for (int x = 0; x < *n; x++)
    if (c[x].epoch == epoch) {
      if (c[x].calls < 0) c[x].calls = calls;
      return;
    }
  int at = *n;
  while (at > 0 && c[at - 1].epoch < epoch) at--;
  if (at >= cap) return;
  if (*n < cap) (*n)++;
  for (int x = *n - 1; x > at; x--) c[x] = c[x - 1];
  c[at] = (cand){epoch, calls};
}

#define MAX_CANDS 8

/* Two running jobs in one dir would overwrite each other's epochs (and the
 * second would restart from the first's): every rank holds an exclusive
 * flock on DIR/domain-<D>/rank-<R>/lock until fuze_finalize. */
static int lock_dir(fuze_ctx *ctx, const char *dir) {
  char path[PATH_BYTES + 8], who[256] = "";
  snprintf(path, sizeof path, "%s/lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return CTX_ERR(ctx, FUZE_ERR_IO, "fuze_init: cannot create %s: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    int e = errno;
    ssize_t n = read(fd, who, sizeof who - 1);
    who[n > 0 ? n : 0] = 0;
    who[strcspn(who, "\n")] = 0;
    close(fd);
    if (e == EWOULDBLOCK)
      return CTX_ERR(ctx, FUZE_ERR_CONFIG, "fuze_init: dir=%s is in use by another running job "
                     "(%s holds %s); each job needs its own dir", ctx->cfg.dir,
                     who[0] ? who : "a process", path);
    return CTX_ERR(ctx, FUZE_ERR_IO, "fuze_init: cannot lock %s: %s", path, strerror(e));
  }
  char host[128] = "";
  gethostname(host, sizeof host - 1);
  int n = snprintf(who, sizeof who, "pid %ld on %s, rank %d\n", (long)getpid(), host, ctx->rank);
  if (ftruncate(fd, 0) == 0 && pwrite(fd, who, (size_t)n, 0) < 0) { /* informative only */ }
  ctx->dir_lock = fd + 1;
  return FUZE_SUCCESS;
}

void fuze__persist_close(fuze_ctx *ctx) {
  rewrite_join(ctx);
  if (ctx->aw) {
    if (ctx->aw->running) pthread_join(ctx->aw->th, NULL);
    snapshot_free(&ctx->aw->m);
    fuze__pincr_free(&ctx->aw->inc);
    free(ctx->aw->arena);
    free(ctx->aw->rseen);
    free(ctx->aw);
    ctx->aw = NULL;
  }
  if (ctx->dir_lock > 0) close(ctx->dir_lock - 1); /* releases the flock */
  ctx->dir_lock = 0;
}

void fuze__persist_abandon(fuze_ctx *ctx) {
  fuze_awrite *w = ctx->aw;
  if (!ctx->persist_inflight || !w) return;
  ctx->persist_inflight = 0;
  ctx->persist_redo = 0;
  if (w->running) pthread_join(w->th, NULL);
  w->running = 0;
  snapshot_free(&w->m);
}

int fuze__persist_join(fuze_ctx *ctx) {
  if (!ctx->cfg.dir[0]) return FUZE_SUCCESS;
  char dir[PATH_BYTES];
  my_dir(ctx, dir, sizeof dir);
  int rc = mkdir_p(dir, ctx->msg);
  return rc ? rc : lock_dir(ctx, dir);
}

int fuze__persist_init(fuze_ctx *ctx) {
  if (!ctx->cfg.dir[0]) return FUZE_SUCCESS;
  fuze__kill_disarm(ctx);
  /* Every rank makes its directory (on node-local storage the top one too). */
  char dir[PATH_BYTES];
  my_dir(ctx, dir, sizeof dir);
  int rc = fuze__agree(&ctx->net, mkdir_p(dir, ctx->msg));
  if (rc) return rc;
  if ((rc = fuze__agree(&ctx->net, lock_dir(ctx, dir)))) return rc;
  if (ctx->cfg.restart_never) {
    /* An explicit fresh start: this job's epochs replace whatever is there,
     * so the old manifest copies go first (an old epoch must never be taken
     * for this job's), then each rank's old epoch files. */
    for (int c = 0; c < 2; c++) {
      if (c == 0 ? ctx->rank != 0 : domain_leader(ctx) != ctx->rank) continue;
      char d[PATH_BYTES], p[PATH_BYTES + 16];
      manifest_dir(ctx, c, ctx->plan.domain[ctx->rank], d, sizeof d);
      snprintf(p, sizeof p, "%s/manifest", d);
      if (unlink(p) && errno != ENOENT)
        rc = CTX_ERR(ctx, FUZE_ERR_IO, "fuze_init: restart=never: cannot delete %s: %s", p,
                     strerror(errno));
    }
    if ((rc = fuze__agree(&ctx->net, rc))) return rc;
    prune(ctx, NULL, 0);
    uint64_t job = ctx->rank == 0 ? new_job_id() : 0;
    if ((rc = FUZE_MPI(ctx->msg, MPI_Bcast(&job, 1, MPI_UINT64_T, 0, ctx->net.comm)))) return rc;
    ctx->job_id = job;
    if (ctx->rank == 0 && ctx->cfg.verbose)
      printf("fuze: restart=never: starting afresh in %s\n", ctx->cfg.dir);
    return FUZE_SUCCESS;
  }
  seen me, *all = malloc(sizeof *all * (size_t)ctx->size);
  look(ctx, &me);
  rc = all ? FUZE_SUCCESS : FUZE_NOMEM(ctx->msg, "fuze_init");
  if ((rc = fuze__agree(&ctx->net, rc))) {
    free(all);
    return rc;
  }
  if ((rc = FUZE_MPI(ctx->msg, MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me,
                                             MPI_BYTE, ctx->net.comm)))) {
    free(all);
    return rc;
  }
  /* The same verdict on every rank from the same table. */
  cand cands[MAX_CANDS];
  int ncand = 0, nvalid = 0, ncorrupt = 0, nfiles = 0, from_files = 0;
  const fuze_manifest *ref = NULL;
  int ref_rank = -1, ref_copy = 0;
  char corrupt[FUZE_MSG_LEN] = "";
  for (int r = 0; r < ctx->size && !rc; r++) {
    nfiles += all[r].nfiles;
    for (int c = 0; c < 2 && !rc; c++) {
      if (all[r].rc[c] == FUZE_ERR_CORRUPT) {
        /* Count a copy once, not once per rank that sees it. */
        int dup = 0;
        for (int q = 0; q < r; q++)
          dup |= all[q].rc[c] == FUZE_ERR_CORRUPT &&
                 (c == 0 || ctx->plan.domain[q] == ctx->plan.domain[r]);
        if (!dup && !ncorrupt++)
          snprintf(corrupt, sizeof corrupt, "%s (seen by rank %d)", all[r].why[c], r);
        continue;
      }
      if (all[r].rc[c]) continue;
      const fuze_manifest *m = &all[r].man[c];
      nvalid++;
      if (!ref) {
        ref = m, ref_rank = r, ref_copy = c;
      } else if (m->job_id != ref->job_id) {
        char a[PATH_BYTES], b[PATH_BYTES];
        manifest_dir(ctx, ref_copy, ctx->plan.domain[ref_rank], a, sizeof a);
        manifest_dir(ctx, c, ctx->plan.domain[r], b, sizeof b);
        rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "fuze_init: dir=%s holds manifests of two jobs: job "
                     "%016llx in %s/manifest (seen by rank %d) and job %016llx in %s/manifest "
                     "(seen by rank %d); each job needs its own dir", ctx->cfg.dir,
                     (unsigned long long)ref->job_id, a, ref_rank, (unsigned long long)m->job_id,
                     b, r);
      }
      for (int x = 0; x < m->ncomplete; x++)
        add_cand(cands, &ncand, MAX_CANDS, m->complete[x], m->ckpt_calls[x]);
    }
  }
  fuze_manifest man;
  memset(&man, 0, sizeof man);
  if (ref) man = *ref;
  if (!rc && ref && ncand &&
      (man.ranks != ctx->size || man.f != ctx->plan.f || man.spares != ctx->plan.spares ||
       man.code != ctx->cfg.code || man.mode != ctx->cfg.mode))
    rc = CTX_ERR(ctx, FUZE_ERR_CONFIG,
                 "fuze_init: dir=%s holds a checkpoint of a job with %d ranks, faults=%d, "
                 "spares=%d, code=%s; this job has %d ranks, faults=%d, spares=%d, code=%s "
                 "(use the same geometry, or another dir)", ctx->cfg.dir, man.ranks, man.f,
                 man.spares, fuze__code_label(man.code, man.mode), ctx->size, ctx->plan.f,
                 ctx->plan.spares, fuze__code_label(ctx->cfg.code, ctx->cfg.mode));
  if (!rc && !ncand && nfiles) {
    /* Epoch files but no manifest naming a complete epoch: the files say
     * what there is. Never a silent fresh start over another run's data. */
    from_files = 1;
    for (int r = 0; r < ctx->size; r++)
      for (int x = 0; x < all[r].nfiles && x < SEEN_FILES; x++)
        add_cand(cands, &ncand, MAX_CANDS, all[r].files[x], -1);
    if (ctx->rank == 0) {
      fprintf(stderr, "fuze: dir=%s: %s, but %d rank file%s of epoch%s", ctx->cfg.dir,
              ncorrupt ? "every manifest copy is damaged" : "no manifest", nfiles,
              nfiles > 1 ? "s" : "", ncand > 1 ? "s" : "");
      for (int x = 0; x < ncand; x++)
        fprintf(stderr, "%s %llu", x ? "," : "", (unsigned long long)cands[x].epoch);
      fprintf(stderr, " are there: restarting from the newest epoch they can restore and "
              "writing the manifest again%s%s\n", ncorrupt ? "; damaged: " : "", corrupt);
      fflush(stderr);
    }
  } else if (!rc && ncorrupt && ctx->rank == 0) {
    fprintf(stderr, "fuze: dir=%s: %d damaged manifest cop%s ignored and written again: %s\n",
            ctx->cfg.dir, ncorrupt, ncorrupt > 1 ? "ies" : "y", corrupt);
    fflush(stderr);
  }
  if (!rc && !ncand && ncorrupt)
    rc = CTX_ERR(ctx, FUZE_ERR_CORRUPT, "fuze_init: dir=%s: the manifest is damaged and no rank "
                 "file is left to rebuild it from: %s", ctx->cfg.dir, corrupt);
  free(all);
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  if (!ncand) { /* nothing of fuze's there: a fresh start */
    uint64_t job = ctx->rank == 0 ? new_job_id() : 0;
    if ((rc = FUZE_MPI(ctx->msg, MPI_Bcast(&job, 1, MPI_UINT64_T, 0, ctx->net.comm)))) return rc;
    ctx->job_id = job;
    prune(ctx, NULL, 0); /* temporaries of a run that never completed a file */
    return FUZE_SUCCESS;
  }
  /* Newest first; an older one only when a newer is unrecoverable, and the
   * error names every epoch tried. */
  char tried[FUZE_MSG_LEN] = "";
  size_t tl = 0;
  int first_rc = 0;
  for (int idx = 0; idx < ncand; idx++) {
    rc = restart_from(ctx, from_files ? 0 : man.job_id, cands, ncand, idx);
    if (!rc) {
      if (idx > 0 && ctx->rank == 0)
        fprintf(stderr, "fuze: restarted from the older epoch %llu because %s\n",
                (unsigned long long)cands[idx].epoch, tried);
      return FUZE_RESTARTED;
    }
    if (rc != FUZE_ERR_UNRECOVERABLE) return rc;
    if (!first_rc) first_rc = rc;
    if (tl < sizeof tried - 1)
      tl += (size_t)snprintf(tried + tl, sizeof tried - tl, "%s%s", tl ? "; " : "", ctx->msg);
  }
  if (from_files)
    return fuze__error(ctx->msg, FUZE_ERR_CORRUPT, "restart: dir=%s has no usable manifest but "
                       "holds rank files that restore no epoch: %s (to start afresh, move the "
                       "directory away)", ctx->cfg.dir, tried);
  return fuze__error(ctx->msg, first_rc, "restart: dir=%s: no complete epoch can be restored: %s",
                     ctx->cfg.dir, tried);
}
