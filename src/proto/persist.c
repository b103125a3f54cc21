/* persist: HDF5 epochs on node-local directories and the restart that
 * rebuilds lost ranks' files by decoding.
 *
 * Writing (a committed checkpoint whose epoch is a multiple of persist_every):
 *   Pre: every rank writes DIR/domain-<D>/rank-<R>/.epoch-<E>.h5.tmp (its
 *        committed primaries and the committed regions it hosts), fsyncs it
 *        and renames it to epoch-<E>.h5, then fsyncs the directory;
 *   agreement: every rank succeeded and nobody was lost;
 *   Fin: rank 0 rewrites DIR/manifest (temporary name, fsync, rename) listing
 *        E and the previous complete epoch; only then do ranks delete files
 *        of older epochs.
 * A kill anywhere leaves the manifest naming complete epochs whose files are
 * all durable, so the previous epoch stays usable (docs/format.md).
 *
 * Restart (fuze_init with the same dir): the newest complete epoch; every
 * rank checks its own file (crc64s, job id, epoch, rank, plan); ranks whose
 * file is missing or damaged receive the files of the ranks their block and
 * the blocks they host need, decode (pfile.c, ISA-L) and write their file
 * again. Up to f per block; more gives FUZE_ERR_UNRECOVERABLE naming the
 * files, and the older complete epoch is tried before giving up. */
#include "proto/persist.h"
#include "proto/inject.h"
#include "data/array.h"
#include "comm/coll.h"
#include "comm/transport.h"
#include "data/fused.h"
#include "core/pfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_BYTES 1400
#define SEND_CHUNK (1 << 30)

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

/* Delete this rank's epoch files except `keep` (n of them), and temporaries. */
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
    else if (sscanf(e->d_name, "epoch-%llu.h%2s", &ep, tail) == 2 && !strcmp(tail, "5")) {
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
                                                 a->winbase + a->hosted[h].off + fuze__align(a->hosted[h].fused)};
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

/* ---- writing ---- */

/* Write model m as rank `rank`'s file of its epoch: temporary, fsync,
 * rename, fsync of the directory. The kill/wipe point `persist` is between
 * the temporary and the rename. */
static int write_file(fuze_ctx *ctx, const fuze_pfile *m, int inject) {
  char dir[PATH_BYTES], tmp[PATH_BYTES + 64], path[PATH_BYTES + 64];
  fuze__pfile_dir(dir, sizeof dir, ctx->cfg.dir, m->plan.domain[m->rank], m->rank);
  int rc = mkdir_p(dir, ctx->msg);
  if (rc) return rc;
  snprintf(tmp, sizeof tmp, "%s/.epoch-%llu.h5.tmp", dir, (unsigned long long)m->epoch);
  fuze__pfile_path(path, sizeof path, ctx->cfg.dir, m->plan.domain[m->rank], m->rank, m->epoch);
  char err[FUZE_MSG_LEN] = "";
  if ((rc = fuze__pfile_write(m, tmp, err))) {
    unlink(tmp);
    return CTX_ERR(ctx, rc, "persist: %s", err);
  }
  if (inject && fuze__inject_point(ctx, FUZE_PHASE_PERSIST)) {
    unlink(tmp);
    return CTX_ERR(ctx, FUZE_ERR_STATE, "persist: rank %d was wiped while persisting", ctx->rank);
  }
  if (rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    return CTX_ERR(ctx, FUZE_ERR_IO, "persist: cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
  fsync_dir(dir);
  return FUZE_SUCCESS;
}

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
  int rc = fuze__manifest_write(ctx->cfg.dir, &man, err);
  return rc ? CTX_ERR(ctx, rc, "persist: %s", err) : FUZE_SUCCESS;
}

int fuze__persist_epoch(fuze_ctx *ctx) {
  if (!ctx->cfg.dir[0] || ctx->epoch % (uint64_t)ctx->cfg.persist_every) return FUZE_SUCCESS;
  fuze_pfile m;
  int rc = snapshot(ctx, &m);
  if (!rc) rc = write_file(ctx, &m, 1);
  snapshot_free(&m);
  /* A rank wiped while persisting: the epoch stays incomplete. */
  int lost = ctx->lost, mrc = fuze__max_int(&ctx->net, &lost);
  if (mrc) return mrc;
  if (lost) return FUZE_PERSIST_LOST;
  if ((rc = fuze__agree(&ctx->net, rc)))
    return CTX_ERR(ctx, rc, "fuze_checkpoint: epoch %llu is committed in memory but was not "
                   "persisted: %s", (unsigned long long)ctx->epoch, ctx->msg);
  if (fuze__inject_point(ctx, FUZE_PHASE_PERSISTED)) return FUZE_PERSIST_LOST;
  if (fuze__inject_scheduled(ctx, FUZE_PHASE_PERSISTED)) {
    if ((mrc = fuze__max_int(&ctx->net, &lost))) return mrc;
    if (lost || ctx->lost) return FUZE_PERSIST_LOST;
  }
  /* Fin: the new epoch and the previous complete one. */
  uint64_t keep[2] = {ctx->epoch, ctx->persisted[0]};
  int64_t calls[2] = {ctx->ckpt_calls, ctx->persisted_calls[0]};
  int nkeep = ctx->npersisted ? 2 : 1;
  rc = ctx->rank == 0 ? write_manifest(ctx, keep, calls, nkeep) : FUZE_SUCCESS;
  if ((rc = fuze__agree(&ctx->net, rc)))
    return CTX_ERR(ctx, rc, "fuze_checkpoint: epoch %llu is committed in memory but was not "
                   "persisted: %s", (unsigned long long)ctx->epoch, ctx->msg);
  for (int x = 0; x < nkeep; x++) {
    ctx->persisted[x] = keep[x];
    ctx->persisted_calls[x] = calls[x];
  }
  ctx->npersisted = nkeep;
  prune(ctx, keep, nkeep);
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

/* Ranks whose files rank t needs to rebuild its own: its block and every
 * block it hosts (members and hosts). */
static int needs(const fuze_plan *p, int t, int g) {
  for (int b = 0; b < p->nblocks; b++) {
    int in = p->block_of[t] == b;
    for (int j = 0; j < p->f; j++) in |= p->hosts[b * p->f + j] == t;
    if (!in) continue;
    if (p->block_of[g] == b) return 1;
    for (int j = 0; j < p->f; j++)
      if (p->hosts[b * p->f + j] == g) return 1;
  }
  return 0;
}

static int read_all(const char *path, unsigned char **buf, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  *buf = malloc(n > 0 ? (size_t)n : 1);
  *len = n > 0 ? (size_t)n : 0;
  int ok = *buf && (n <= 0 || fread(*buf, 1, (size_t)n, fp) == (size_t)n);
  fclose(fp);
  return ok ? 0 : -1;
}

/* Good ranks send their file to every lost rank that needs it; lost ranks
 * decode theirs. */
static int rebuild(fuze_ctx *ctx, const fuze_manifest *man, uint64_t E, const int *bad,
                   fuze_pfile *mine) {
  const fuze_plan *p = &ctx->plan;
  int rc = FUZE_SUCCESS;
  if (!bad[ctx->rank]) {
    int any = 0;
    for (int t = 0; t < ctx->size; t++) any |= bad[t] && needs(p, t, ctx->rank);
    if (!any) return FUZE_SUCCESS;
    char path[PATH_BYTES];
    fuze__pfile_path(path, sizeof path, ctx->cfg.dir, p->domain[ctx->rank], ctx->rank, E);
    unsigned char *img = NULL;
    size_t len = 0;
    if (read_all(path, &img, &len)) len = 0; /* receivers see an empty image and fail */
    MPI_Request *rq = malloc(sizeof *rq * (size_t)ctx->size * (2 + len / SEND_CHUNK + 1));
    int nrq = 0;
    uint64_t len64 = len;
    for (int t = 0; t < ctx->size && rq; t++) {
      if (!bad[t] || !needs(p, t, ctx->rank)) continue;
      if (!rc) rc = FUZE_MPI(ctx->msg, MPI_Isend(&len64, 1, MPI_UINT64_T, t, FUZE_TAG_FILE_LEN,
                                                 ctx->net.comm, &rq[nrq++]));
      for (size_t o = 0; o < len && !rc; o += SEND_CHUNK) {
        size_t c = len - o < SEND_CHUNK ? len - o : SEND_CHUNK;
        rc = FUZE_MPI(ctx->msg, MPI_Isend(img + o, (int)c, MPI_BYTE, t, FUZE_TAG_FILE_DATA,
                                          ctx->net.comm, &rq[nrq++]));
      }
    }
    if (rq) {
      int wrc = FUZE_MPI(ctx->msg, MPI_Waitall(nrq, rq, MPI_STATUSES_IGNORE));
      if (!rc) rc = wrc;
    } else {
      rc = FUZE_NOMEM(ctx->msg, "restart");
    }
    free(rq);
    free(img);
    return rc;
  }
  fuze_pfile **files = calloc((size_t)ctx->size, sizeof *files);
  if (!files) return FUZE_NOMEM(ctx->msg, "restart");
  char err[FUZE_MSG_LEN] = "";
  for (int g = 0; g < ctx->size; g++) {
    if (bad[g] || !needs(p, ctx->rank, g)) continue;
    uint64_t len = 0;
    int mrc = FUZE_MPI(ctx->msg, MPI_Recv(&len, 1, MPI_UINT64_T, g, FUZE_TAG_FILE_LEN, ctx->net.comm,
                                          MPI_STATUS_IGNORE));
    unsigned char *img = mrc ? NULL : malloc(len ? len : 1);
    for (size_t o = 0; o < len && !mrc; o += SEND_CHUNK) {
      size_t c = len - o < SEND_CHUNK ? len - o : SEND_CHUNK;
      /* Without memory the pieces are still received (and dropped): the sender must complete. */
      mrc = FUZE_MPI(ctx->msg, MPI_Recv(img ? img + o : NULL, img ? (int)c : 0, MPI_BYTE, g,
                                        FUZE_TAG_FILE_DATA, ctx->net.comm, MPI_STATUS_IGNORE));
    }
    if (!rc) rc = mrc;
    if (rc || !img) {
      if (!rc) rc = FUZE_NOMEM(ctx->msg, "restart");
      free(img);
      continue;
    }
    char label[64];
    snprintf(label, sizeof label, "rank %d's epoch %llu", g, (unsigned long long)E);
    files[g] = calloc(1, sizeof **files);
    if (!files[g]) rc = FUZE_NOMEM(ctx->msg, "restart");
    else if ((rc = fuze__pfile_read_image(img, len, label, files[g], err)))
      rc = CTX_ERR(ctx, rc, "restart: %s", err);
    free(img);
  }
  if (!rc && (rc = fuze__pfile_rebuild(files, ctx->size, ctx->rank, mine, err)))
    rc = CTX_ERR(ctx, rc, "restart: rebuilding rank %d's file: %s", ctx->rank, err);
  if (!rc) rc = write_file(ctx, mine, 0);
  for (int x = 0; !rc && x < mine->nstructs; x++) {
    const fuze_pstruct *ps = &mine->structs[x];
    ctx->recovered_bytes += ps->kind == FUZE_PS_ARRAY ? ps->count * ps->elem : ps->count * (ps->kb + ps->nb);
  }
  for (int g = 0; g < ctx->size; g++)
    if (files[g]) {
      fuze__pfile_free(files[g]);
      free(files[g]);
    }
  free(files);
  (void)man;
  return rc;
}

/* Check this rank's own file of epoch E. Returns 0 (usable), 1 (missing or
 * damaged: why says how) or 2 (intact but from a different plan: a
 * configuration error). */
static int check_own(fuze_ctx *ctx, const fuze_manifest *man, uint64_t E, fuze_pfile *m,
                     char *why, size_t len) {
  char path[PATH_BYTES], err[FUZE_MSG_LEN] = "";
  fuze__pfile_path(path, sizeof path, ctx->cfg.dir, ctx->plan.domain[ctx->rank], ctx->rank, E);
  int rc = fuze__pfile_read(path, m, err);
  if (rc) {
    snprintf(why, len, "%s", err);
    return 1;
  }
  char d[FUZE_MSG_LEN] = "";
  if (m->job_id != man->job_id)
    snprintf(why, len, "%.200s belongs to another job (job id %016llx, the manifest says %016llx)",
             path, (unsigned long long)m->job_id, (unsigned long long)man->job_id);
  else if (m->epoch != E || m->rank != ctx->rank || m->ranks != ctx->size)
    snprintf(why, len, "%.200s holds epoch %llu of rank %d of %d, expected epoch %llu of rank %d of %d",
             path, (unsigned long long)m->epoch, m->rank, m->ranks, (unsigned long long)E,
             ctx->rank, ctx->size);
  else if (!same_plan(&m->plan, &ctx->plan, d, sizeof d)) {
    snprintf(why, len, "%.200s was written with a different plan: %.200s", path, d);
    fuze__pfile_free(m);
    return 2;
  } else
    return 0;
  fuze__pfile_free(m);
  return 1;
}

static int restart_from(fuze_ctx *ctx, const fuze_manifest *man, int idx) {
  uint64_t E = man->complete[idx];
  char why[FUZE_MSG_LEN] = "";
  fuze_pfile *mine = calloc(1, sizeof *mine);
  if (!mine) return fuze__agree(&ctx->net, FUZE_NOMEM(ctx->msg, "restart"));
  int st = check_own(ctx, man, E, mine, why, sizeof why);
  /* A different plan is a configuration error, not damage. */
  if (st == 2) CTX_ERR(ctx, FUZE_ERR_CONFIG, "restart: dir=%s: %s (run with the same ranks, "
                       "domains and config, or use another dir)", ctx->cfg.dir, why);
  int rc = fuze__agree(&ctx->net, st == 2 ? FUZE_ERR_CONFIG : FUZE_SUCCESS);
  if (rc) {
    free(mine);
    return rc;
  }
  int *bad = malloc(sizeof(int) * (size_t)ctx->size);
  char *whys = malloc((size_t)ctx->size * FUZE_MSG_LEN);
  if (!bad || !whys) {
    free(bad);
    free(whys);
    free(mine);
    return fuze__agree(&ctx->net, FUZE_NOMEM(ctx->msg, "restart"));
  }
  rc = FUZE_MPI(ctx->msg, MPI_Allgather(&st, 1, MPI_INT, bad, 1, MPI_INT, ctx->net.comm));
  if (!rc) rc = FUZE_MPI(ctx->msg, MPI_Allgather(why, FUZE_MSG_LEN, MPI_CHAR, whys, FUZE_MSG_LEN,
                                                 MPI_CHAR, ctx->net.comm));
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
    rc = CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "restart: epoch %llu in %s is unrecoverable: "
                 "block %d lost %d members but tolerates faults=%d: %s",
                 (unsigned long long)E, ctx->cfg.dir, b, lost, p->f, list);
  }
  if (!rc && nbad) {
    if (ctx->rank == 0) {
      fprintf(stderr, "fuze: restart from epoch %llu: rebuilding %d file%s by decoding:\n",
              (unsigned long long)E, nbad, nbad > 1 ? "s" : "");
      for (int r = 0; r < ctx->size; r++)
        if (bad[r]) fprintf(stderr, "fuze:   rank %d: %s\n", r, whys + (size_t)r * FUZE_MSG_LEN);
      fflush(stderr);
    }
    rc = fuze__agree(&ctx->net, rebuild(ctx, man, E, bad, mine));
  }
  free(bad);
  free(whys);
  if (rc) {
    fuze__pfile_free(mine);
    free(mine);
    return rc;
  }
  ctx->restore = mine;
  ctx->epoch = ctx->decided = ctx->hosted_epoch = E;
  ctx->ckpt_calls = man->ckpt_calls[idx];
  ctx->npersisted = 0;
  for (int x = idx; x < man->ncomplete; x++) {
    ctx->persisted[ctx->npersisted] = man->complete[x];
    ctx->persisted_calls[ctx->npersisted++] = man->ckpt_calls[x];
  }
  /* Falling back to an older epoch: the manifest must stop naming the newer
   * one before this run writes files of that epoch number again. */
  if (idx > 0)
    rc = fuze__agree(&ctx->net, ctx->rank == 0 ? write_manifest(ctx, ctx->persisted, ctx->persisted_calls,
                                                          ctx->npersisted) : FUZE_SUCCESS);
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

int fuze__persist_init(fuze_ctx *ctx) {
  if (!ctx->cfg.dir[0]) return FUZE_SUCCESS;
  fuze__kill_disarm(ctx);
  fuze_manifest man;
  memset(&man, 0, sizeof man);
  int rc = FUZE_SUCCESS;
  if (ctx->rank == 0) {
    char err[FUZE_MSG_LEN] = "";
    rc = mkdir_p(ctx->cfg.dir, ctx->msg);
    if (!rc) {
      rc = fuze__manifest_read(ctx->cfg.dir, &man, err);
      if (rc == FUZE_ERR_NOT_FOUND) {
        man.ncomplete = 0;
        man.job_id = new_job_id();
        rc = FUZE_SUCCESS;
      } else if (rc) {
        CTX_ERR(ctx, rc, "fuze_init: dir=%s: %s", ctx->cfg.dir, err);
      }
    }
  }
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  if ((rc = FUZE_MPI(ctx->msg, MPI_Bcast(&man, (int)sizeof man, MPI_BYTE, 0, ctx->net.comm))))
    return rc;
  ctx->job_id = man.job_id;
  if (man.ncomplete &&
      (man.ranks != ctx->size || man.f != ctx->plan.f || man.spares != ctx->plan.spares ||
       man.code != ctx->cfg.code || man.mode != ctx->cfg.mode))
    return fuze__agree(&ctx->net, CTX_ERR(ctx, FUZE_ERR_CONFIG,
                       "fuze_init: dir=%s holds a checkpoint of a job with %d ranks, faults=%d, "
                       "spares=%d, code=%s; this job has %d ranks, faults=%d, spares=%d, code=%s "
                       "(use the same geometry, or another dir)", ctx->cfg.dir, man.ranks, man.f,
                       man.spares, fuze__code_label(man.code, man.mode), ctx->size, ctx->plan.f,
                       ctx->plan.spares, fuze__code_label(ctx->cfg.code, ctx->cfg.mode)));
  char dir[PATH_BYTES];
  my_dir(ctx, dir, sizeof dir);
  if ((rc = fuze__agree(&ctx->net, mkdir_p(dir, ctx->msg)))) return rc;
  if (!man.ncomplete) {
    prune(ctx, NULL, 0); /* files of a run that never completed an epoch */
    return FUZE_SUCCESS;
  }
  char first[FUZE_MSG_LEN] = "";
  int first_rc = 0;
  for (int idx = 0; idx < man.ncomplete; idx++) {
    rc = restart_from(ctx, &man, idx);
    if (!rc) {
      if (idx > 0 && ctx->rank == 0)
        fprintf(stderr, "fuze: restarted from the older epoch %llu because %s\n",
                (unsigned long long)man.complete[idx], first);
      return FUZE_RESTARTED;
    }
    if (rc != FUZE_ERR_UNRECOVERABLE) return rc;
    if (!first_rc) {
      first_rc = rc;
      snprintf(first, sizeof first, "%s", ctx->msg);
    }
  }
  return fuze__error(ctx->msg, first_rc, "%s", first);
}
