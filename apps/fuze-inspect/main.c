/* fuze-inspect: offline look at a fuze persistence directory (docs/format.md).
 * Lists the complete epochs of the manifest and, for one of them, every
 * rank's file, its health, the structures and the redundancy they cost, and
 * whether every block can be recovered; --verify recomputes every backup
 * region from its block's primaries; --rebuild decodes a lost or damaged
 * rank's file from the others. Pure tool: pfile.c, no MPI_Init, no mpirun. */
#include "core/error.h"
#include "core/config.h" /* FUZE_PERSIST_BASE_MAX */
#include "core/pfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RANKS (1 << 20)
#define PATH_BYTES 4096

enum { ST_OK, ST_MISSING, ST_CORRUPT };
static const char *const st_name[] = {"ok", "missing", "corrupt"};

typedef struct options {
  const char *dir;
  int have_epoch, verify, rebuild; /* rebuild: rank, -1 when not asked */
  uint64_t epoch;
} options;

typedef struct rankinfo {
  int domain; /* -1: unknown */
  int found;  /* a rank directory exists */
  int status; /* ST_* */
  char path[PATH_BYTES + 64];
  char why[FUZE_MSG_LEN];
  long long bytes;
  char chain[512]; /* persist_base > 1: the files the epoch is read from, "" for one full file */
  fuze_pfile m; /* read when status == ST_OK */
} rankinfo;

typedef struct job {
  options o;
  fuze_manifest man;
  uint64_t epoch;
  int64_t calls;
  int ranks;
  rankinfo *r;
  const fuze_pfile *ref; /* the first healthy file */
  int nok, nmissing, ncorrupt;
} job;

static const char usage_line[] =
    "usage: fuze-inspect DIR [--epoch E] [--verify] [--rebuild RANK]\n";

static void print_help(void) {
  fputs(usage_line, stdout);
  fputs("\n"
        "Inspect the persistence directory DIR of a fuze job (config key dir=DIR)\n"
        "without MPI: the complete epochs listed in DIR/manifest (or, without it, in the\n"
        "newest copy DIR/domain-D/manifest) and, for the newest\n"
        "(or --epoch E), every rank's file DIR/domain-D/rank-R/epoch-E.h5 (or, with\n"
        "persist_base > 1, its increment incr-E.h5 and the chain of files it applies\n"
        "to, listed as 'chain: epoch-B.h5 + incr-...') with its\n"
        "health (ok / missing / corrupt: reason; a chain with a file missing is\n"
        "missing, one with a damaged file corrupt, naming that file), the structures\n"
        "with their sizes and\n"
        "the redundancy ratio (parity bytes / protected bytes), and for every block\n"
        "whether its lost members can be decoded (at most `faults` lost).\n"
        "\n"
        "  --epoch E       inspect epoch E (must be complete in the manifest)\n"
        "  --verify        recompute every backup region from its block's primaries\n"
        "                  and compare it with the stored one; print the mismatches\n"
        "                  as (block, structure, byte ranges)\n"
        "  --rebuild RANK  decode RANK's file of the epoch from the other ranks' files\n"
        "                  and write it atomically (temporary name, fsync, rename);\n"
        "                  a damaged file is kept as epoch-E.h5.damaged\n"
        "  -h, --help      this text\n"
        "\n"
        "Exit status: 0 every file healthy (and, with --verify, every region\n"
        "matching; with --rebuild, the file rebuilt or already healthy); 1 parity\n"
        "mismatches between healthy files (--verify); 2 missing or damaged files,\n"
        "bad arguments, a bad path, no or a damaged manifest, or a rebuild that is\n"
        "impossible.\n",
        stdout);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuze-inspect: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%sTry 'fuze-inspect --help' for more information.\n", usage_line);
  return 2;
}

__attribute__((format(printf, 1, 2))) static int die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuze-inspect: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 2;
}

/* Strict non-negative decimal. */
static int parse_u64(const char *s, uint64_t max, uint64_t *v) {
  if (!*s || strlen(s) > 20) return -1;
  for (const char *c = s; *c; c++)
    if (*c < '0' || *c > '9') return -1;
  errno = 0;
  unsigned long long x = strtoull(s, NULL, 10);
  if (errno || x > max) return -1;
  *v = x;
  return 0;
}

/* Returns -1 to continue, else an exit status. */
static int parse_args(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->rebuild = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    uint64_t v;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      print_help();
      return 0;
    } else if (!strcmp(a, "--verify")) {
      o->verify = 1;
    } else if (!strcmp(a, "--epoch") || !strcmp(a, "--rebuild")) {
      if (i + 1 >= argc) return usage_error("option %s needs a value", a);
      const char *val = argv[++i];
      if (parse_u64(val, a[2] == 'e' ? UINT64_MAX : MAX_RANKS - 1, &v))
        return usage_error("bad value for %s: '%s'", a, val);
      if (a[2] == 'e')
        o->have_epoch = 1, o->epoch = v;
      else
        o->rebuild = (int)v;
    } else if (a[0] == '-') {
      return usage_error("unknown option '%s'", a);
    } else if (o->dir) {
      return usage_error("one directory only (got '%s' and '%s')", o->dir, a);
    } else {
      o->dir = a;
    }
  }
  if (!o->dir) return usage_error("DIR is required");
  return -1;
}

/* ---- locating and reading the rank files ---- */

/* "prefix<digits>" -> value, else -1. */
static int suffix_int(const char *name, const char *prefix) {
  size_t n = strlen(prefix);
  uint64_t v;
  if (strncmp(name, prefix, n) || parse_u64(name + n, INT_MAX, &v)) return -1;
  return (int)v;
}

/* Which domain directory holds each rank directory. */
static void scan_domains(job *J) {
  DIR *d = opendir(J->o.dir);
  struct dirent *e;
  char sub[PATH_BYTES];
  while (d && (e = readdir(d))) {
    int dom = suffix_int(e->d_name, "domain-");
    if (dom < 0) continue;
    snprintf(sub, sizeof sub, "%s/%s", J->o.dir, e->d_name);
    DIR *dd = opendir(sub);
    struct dirent *f;
    while (dd && (f = readdir(dd))) {
      int r = suffix_int(f->d_name, "rank-");
      if (r < 0 || r >= J->ranks) continue;
      if (J->r[r].found) { /* two directories for one rank: keep the one with the file */
        char p[PATH_BYTES + 64];
        fuze__pfile_path(p, sizeof p, J->o.dir, dom, r, J->epoch);
        if (access(p, F_OK)) continue;
      }
      J->r[r].found = 1, J->r[r].domain = dom;
    }
    if (dd) closedir(dd);
  }
  if (d) closedir(d);
}

/* err without the leading "path: " that every pfile message carries. */
static const char *reason(const char *path, const char *err) {
  size_t n = strlen(path);
  return !strncmp(err, path, n) && !strncmp(err + n, ": ", 2) ? err + n + 2 : err;
}

static void set_bad(rankinfo *ri, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_bad(rankinfo *ri, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ri->why, sizeof ri->why, fmt, ap);
  va_end(ap);
  if (ri->status == ST_OK) fuze__pfile_free(&ri->m);
  ri->status = status;
}

/* The file must be rank r's of this job and epoch, as the manifest says. */
static void check_identity(const job *J, int r, rankinfo *ri) {
  const fuze_pfile *m = &ri->m;
  const fuze_manifest *man = &J->man;
  if (m->rank != r)
    set_bad(ri, ST_CORRUPT, "holds rank %d", m->rank);
  else if (m->epoch != J->epoch)
    set_bad(ri, ST_CORRUPT, "holds epoch %" PRIu64, m->epoch);
  else if (m->job_id != man->job_id)
    set_bad(ri, ST_CORRUPT, "belongs to job 0x%016" PRIx64, m->job_id);
  else if (m->ranks != man->ranks || m->f != man->f || m->spares != man->spares ||
           m->code != man->code)
    set_bad(ri, ST_CORRUPT, "geometry differs from the manifest's");
  else if (m->ckpt_calls != J->calls)
    set_bad(ri, ST_CORRUPT, "committed at checkpoint %" PRId64 ", the manifest says %" PRId64,
            m->ckpt_calls, J->calls);
  else if (m->plan.domain[r] != ri->domain)
    set_bad(ri, ST_CORRUPT, "found under domain-%d, its plan says domain %d", ri->domain,
            m->plan.domain[r]);
}

static void load_rank(const job *J, int r) {
  rankinfo *ri = &J->r[r];
  char err[FUZE_MSG_LEN];
  struct stat st;
  ri->status = ST_MISSING;
  if (!ri->found) {
    snprintf(ri->why, sizeof ri->why, "no directory rank-%d", r);
    return;
  }
  fuze__pfile_path(ri->path, sizeof ri->path, J->o.dir, ri->domain, r, J->epoch);
  if (stat(ri->path, &st)) {
    /* persist_base > 1: an increment onto an older full file (its chain). */
    char ipath[PATH_BYTES + 64];
    fuze__pfile_incr_path(ipath, sizeof ipath, J->o.dir, ri->domain, r, J->epoch);
    if (stat(ipath, &st)) {
      snprintf(ri->why, sizeof ri->why, "%s (and no incr-%" PRIu64 ".h5)", strerror(errno), J->epoch);
      return;
    }
    snprintf(ri->path, sizeof ri->path, "%s", ipath);
    ri->bytes = (long long)st.st_size;
    uint64_t chain[FUZE_PERSIST_BASE_MAX];
    int n = 0;
    int crc = fuze__pfile_read_chain(J->o.dir, ri->domain, r, J->epoch, &ri->m, chain, &n,
                                     FUZE_PERSIST_BASE_MAX, err);
    if (crc) {
      /* A file of the chain that is not there makes the rank's epoch
       * missing; one that is there but damaged (or does not fit) corrupt.
       * The message names that file either way. */
      ri->status = crc == FUZE_ERR_IO ? ST_MISSING : ST_CORRUPT;
      snprintf(ri->why, sizeof ri->why, "%s", err);
      return;
    }
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof ri->chain - 40; i++)
      len += (size_t)snprintf(ri->chain + len, sizeof ri->chain - len, "%s%s-%" PRIu64 ".h5",
                              i ? " + " : "", i ? "incr" : "epoch", chain[i]);
    ri->status = ST_OK;
    check_identity(J, r, ri);
    return;
  }
  ri->bytes = (long long)st.st_size;
  if (fuze__pfile_read(ri->path, &ri->m, err)) {
    ri->status = ST_CORRUPT;
    snprintf(ri->why, sizeof ri->why, "%s", reason(ri->path, err));
    return;
  }
  ri->status = ST_OK;
  check_identity(J, r, ri);
}

/* Healthy files must agree with the first one; missing ranks get their
 * expected path from its plan. */
static void cross_check(job *J) {
  char err[FUZE_MSG_LEN];
  J->ref = NULL;
  for (int r = 0; r < J->ranks; r++) {
    rankinfo *ri = &J->r[r];
    if (ri->status != ST_OK) continue;
    if (!J->ref)
      J->ref = &ri->m;
    else if (fuze__pfile_same_job(J->ref, &ri->m, err))
      set_bad(ri, ST_CORRUPT, "disagrees with rank %d: %s", J->ref->rank, err);
  }
  J->nok = J->nmissing = J->ncorrupt = 0;
  for (int r = 0; r < J->ranks; r++) {
    rankinfo *ri = &J->r[r];
    if (J->ref && !ri->path[0]) {
      ri->domain = J->ref->plan.domain[r];
      fuze__pfile_path(ri->path, sizeof ri->path, J->o.dir, ri->domain, r, J->epoch);
    }
    J->nok += ri->status == ST_OK;
    J->nmissing += ri->status == ST_MISSING;
    J->ncorrupt += ri->status == ST_CORRUPT;
  }
}

static void load_all(job *J) {
  for (int r = 0; r < J->ranks; r++) {
    if (J->r[r].status == ST_OK) fuze__pfile_free(&J->r[r].m);
    memset(&J->r[r], 0, sizeof J->r[r]);
    J->r[r].domain = -1;
  }
  scan_domains(J);
  for (int r = 0; r < J->ranks; r++) load_rank(J, r);
  cross_check(J);
}

static void free_all(job *J) {
  for (int r = 0; J->r && r < J->ranks; r++)
    if (J->r[r].status == ST_OK) fuze__pfile_free(&J->r[r].m);
  free(J->r);
  J->r = NULL;
}

/* ---- printing ---- */

static void print_header(const job *J) {
  const fuze_manifest *m = &J->man;
  printf("job 0x%016" PRIx64 ": %d ranks, faults=%d, spares=%d, code=%s\n", m->job_id, m->ranks,
         m->f, m->spares, fuze__code_label(m->code, m->mode));
  printf("complete epochs:");
  for (int i = 0; i < m->ncomplete; i++)
    printf("%s %" PRIu64 " (checkpoint %" PRId64 ")", i ? "," : "", m->complete[i],
           m->ckpt_calls[i]);
  printf("%s\n", m->ncomplete ? "" : " none");
}

static void print_ranks(const job *J) {
  printf("\nepoch %" PRIu64 ": rank files\n", J->epoch);
  printf("  %5s %7s %6s  %-8s %10s  %s\n", "rank", "domain", "block", "status", "bytes", "file");
  for (int r = 0; r < J->ranks; r++) {
    const rankinfo *ri = &J->r[r];
    int block = J->ref ? J->ref->plan.block_of[r] : -2;
    char bs[16], ds[16], bytes[24];
    snprintf(bs, sizeof bs, block == -2 ? "?" : block < 0 ? "spare" : "%d", block);
    snprintf(ds, sizeof ds, ri->domain < 0 ? "?" : "%d", ri->domain);
    snprintf(bytes, sizeof bytes, ri->bytes ? "%lld" : "-", ri->bytes);
    printf("  %5d %7s %6s  %-8s %10s  %s\n", r, ds, bs, st_name[ri->status], bytes,
           ri->path[0] ? ri->path : "?");
    if (ri->status != ST_OK)
      printf("  %5s %7s %6s  %s: %s\n", "", "", "", st_name[ri->status], ri->why);
    else if (ri->chain[0])
      printf("  %5s %7s %6s  chain: %s\n", "", "", "", ri->chain);
  }
}

/* Live bytes of structure s over the ranks; *unknown counts ranks whose
 * stack/map size is not known (their file is not healthy). */
static uint64_t protected_bytes(const job *J, int s, int *unknown, uint64_t *entries) {
  const fuze_pstruct *st = &J->ref->structs[s];
  uint64_t total = 0;
  *unknown = 0, *entries = 0;
  for (int r = 0; r < J->ranks; r++) {
    if (st->kind == FUZE_PS_ARRAY) {
      *entries += st->rank_counts[r];
      total += st->rank_counts[r] * st->elem;
    } else if (J->r[r].status == ST_OK) {
      size_t n = J->r[r].m.structs[s].count;
      *entries += n;
      total += n * (st->kb + st->nb);
    } else if (J->ref->plan.block_of[r] >= 0) {
      ++*unknown;
    }
  }
  return total;
}

static uint64_t parity_bytes(const fuze_pfile *m, int s) {
  uint64_t total = 0;
  for (int b = 0; b < m->plan.nblocks; b++)
    total += (uint64_t)m->f * fuze__pfile_region_bytes(m, s, b);
  return total;
}

static void print_structs(const job *J) {
  const fuze_pfile *m = J->ref;
  printf("\nstructures (registration order; bytes over all ranks)\n");
  printf("  %3s %-5s %-24s %-26s %10s %12s %12s %7s\n", "#", "kind", "name", "element", "entries",
         "protected", "parity", "ratio");
  uint64_t tp = 0, tq = 0;
  int anyunknown = 0;
  for (int s = 0; s < m->nstructs; s++) {
    const fuze_pstruct *st = &m->structs[s];
    char el[64], ratio[16], ent[32];
    if (st->kind == FUZE_PS_ARRAY)
      snprintf(el, sizeof el, "%s (%zu B)", st->type_name[0] ? st->type_name : "unnamed", st->elem);
    else if (st->kind == FUZE_PS_STACK)
      snprintf(el, sizeof el, "%zu B, cap %zu", st->nb, st->cap);
    else
      snprintf(el, sizeof el, "%zu+%zu B, cap %zu", st->kb, st->nb, st->cap);
    int unknown;
    uint64_t entries, p = protected_bytes(J, s, &unknown, &entries), q = parity_bytes(m, s);
    snprintf(ent, sizeof ent, unknown ? "%" PRIu64 "+?" : "%" PRIu64, entries);
    snprintf(ratio, sizeof ratio, p ? "%.2f" : "-", p ? (double)q / (double)p : 0.0);
    printf("  %3d %-5s %-24s %-26s %10s %12" PRIu64 " %12" PRIu64 " %7s\n", s, fuze__ps_kind_name(st->kind),
           st->name, el, ent, p, q, ratio);
    tp += p, tq += q, anyunknown |= unknown;
  }
  printf("  %-73s %12" PRIu64 " %12" PRIu64 " %7.2f\n",
         anyunknown ? "total (stacks/maps of unhealthy ranks not counted)" : "total", tp, tq,
         tp ? (double)tq / (double)tp : 0.0);
  printf("  redundancy ratio %.2f (replication would cost %d.00); stack and map parity is\n"
         "  sized by capacity, their protected bytes count live entries\n",
         tp ? (double)tq / (double)tp : 0.0, m->f);
}

static int block_lost(const job *J, int b, char *list, size_t n) {
  const fuze_plan *p = &J->ref->plan;
  int k = p->block_start[b + 1] - p->block_start[b], lost = 0;
  size_t o = 0;
  list[0] = 0;
  for (int x = 0; x < k + p->f; x++) {
    int r = x < k ? p->members[p->block_start[b] + x] : p->hosts[b * p->f + x - k];
    if (J->r[r].status == ST_OK) continue;
    lost++;
    if (o < n)
      o += (size_t)snprintf(list + o, n - o, "%s%s rank %d", o ? ", " : "",
                            x < k ? "primary" : "backup host", r);
  }
  return lost;
}

/* Returns the number of blocks that cannot be decoded. */
static int print_blocks(const job *J) {
  const fuze_plan *p = &J->ref->plan;
  int bad = 0;
  printf("\nblocks (faults=%d)\n", p->f);
  for (int b = 0; b < p->nblocks; b++) {
    char list[512];
    int lost = block_lost(J, b, list, sizeof list);
    printf("  block %d: primaries", b);
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) printf(" %d", p->members[x]);
    printf(" | backups on");
    for (int j = 0; j < p->f; j++) printf(" %d", p->hosts[b * p->f + j]);
    if (!lost)
      printf(": ok\n");
    else if (lost <= p->f)
      printf(": %d lost (%s): recoverable\n", lost, list);
    else
      printf(": %d lost (%s): NOT recoverable\n", lost, list), bad++;
  }
  return bad;
}

/* ---- verify ---- */

/* Prints the differing byte ranges of a and b (at most 8). Returns bytes. */
static size_t print_diff(const unsigned char *a, const unsigned char *b, size_t n) {
  size_t total = 0, shown = 0;
  for (size_t i = 0; i < n;) {
    if (a[i] == b[i]) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < n && a[j] != b[j]) j++;
    if (shown++ < 8) printf("%s[%zu, %zu)", shown > 1 ? ", " : " bytes ", i, j);
    total += j - i;
    i = j;
  }
  if (shown > 8) printf(" and %zu more ranges", shown - 8);
  return total;
}

static int verify_region(const job *J, fuze_pfile **files, int s, int b, int j, long *mism) {
  const fuze_pfile *ref = J->ref;
  int host = ref->plan.hosts[b * ref->f + j];
  const fuze_pfile *hm = &J->r[host].m;
  size_t bytes = fuze__pfile_region_bytes(ref, s, b);
  const fuze_pregion *g = NULL;
  for (int i = 0; i < hm->nregions; i++)
    if (hm->regions[i].s == s && hm->regions[i].block == b && hm->regions[i].j == j)
      g = &hm->regions[i];
  unsigned char *want = malloc(bytes ? bytes : 1);
  char err[FUZE_MSG_LEN];
  if (!want) return die("out of memory");
  int rc = fuze__pfile_encode_region(files, s, b, j, want, err);
  if (rc) {
    free(want);
    return die("block %d '%s': %s", b, ref->structs[s].name, err);
  }
  if (!g || g->bytes != bytes || memcmp(g->data, want, bytes)) {
    printf("  MISMATCH block %d, structure '%s', backup %d on rank %d:", b, ref->structs[s].name, j,
           host);
    size_t n = g && g->bytes == bytes ? print_diff(g->data, want, bytes) : bytes;
    printf(" (%zu of %zu bytes differ)\n", n, bytes);
    ++*mism;
  }
  free(want);
  return 0;
}

/* Returns the exit status contribution: 1 on any mismatch or unverifiable region. */
static int verify(const job *J) {
  const fuze_plan *p = &J->ref->plan;
  fuze_pfile **files = calloc((size_t)J->ranks, sizeof *files);
  if (!files) return die("out of memory");
  for (int r = 0; r < J->ranks; r++) files[r] = J->r[r].status == ST_OK ? &J->r[r].m : NULL;
  long checked = 0, mism = 0, skipped = 0;
  int rc = 0;
  printf("\nverify: recomputing every backup region from its block's primaries\n");
  for (int b = 0; b < p->nblocks && !rc; b++) {
    int missing = -1;
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++)
      if (!files[p->members[x]]) missing = p->members[x];
    for (int j = 0; j < p->f && !rc; j++) {
      int host = p->hosts[b * p->f + j];
      if (missing >= 0 || !files[host]) {
        printf("  block %d backup %d on rank %d: not checked (rank %d %s)\n", b, j, host,
               missing >= 0 ? missing : host, st_name[J->r[missing >= 0 ? missing : host].status]);
        skipped += J->ref->nstructs;
        continue;
      }
      for (int s = 0; s < J->ref->nstructs && !rc; s++, checked++)
        rc = verify_region(J, files, s, b, j, &mism);
    }
  }
  free(files);
  if (rc) return rc;
  printf("verify: %ld regions checked, %ld mismatch%s, %ld not checked\n", checked, mism,
         mism == 1 ? "" : "es", skipped);
  return mism || skipped ? 1 : 0;
}

/* ---- rebuild ---- */

static int mkdir_one(const char *path) {
  if (!mkdir(path, 0755) || errno == EEXIST) return 0;
  return -1;
}

static int fsync_path(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Write m as rank r's file: temporary name, fsync (pfile_write), rename,
 * fsync of the directories; then read it back and compare. */
static int install(const job *J, int r, const fuze_pfile *m) {
  char dom[PATH_BYTES + 32], dir[PATH_BYTES + 64], path[PATH_BYTES + 64], tmp[PATH_BYTES + 128];
  char err[FUZE_MSG_LEN];
  int d = m->plan.domain[r];
  snprintf(dom, sizeof dom, "%s/domain-%d", J->o.dir, d);
  fuze__pfile_dir(dir, sizeof dir, J->o.dir, d, r);
  fuze__pfile_path(path, sizeof path, J->o.dir, d, r, J->epoch);
  snprintf(tmp, sizeof tmp, "%s/.epoch-%" PRIu64 ".h5.rebuild-%ld", dir, J->epoch, (long)getpid());
  if (mkdir_one(dom) || mkdir_one(dir)) return die("cannot create %s: %s", dir, strerror(errno));
  if (fuze__pfile_write(m, tmp, err)) {
    unlink(tmp);
    return die("%s", err);
  }
  if (J->r[r].status == ST_CORRUPT && !access(path, F_OK)) {
    char keep[PATH_BYTES + 96];
    snprintf(keep, sizeof keep, "%s.damaged", path);
    if (rename(path, keep)) return die("cannot rename %s: %s", path, strerror(errno));
    printf("kept the damaged file as %s\n", keep);
  }
  if (rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    return die("cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
  if (fsync_path(dir) || fsync_path(dom) || fsync_path(J->o.dir))
    return die("cannot fsync %s: %s", dir, strerror(errno));
  fuze_pfile back;
  int rc = fuze__pfile_read(path, &back, err);
  if (!rc) rc = fuze__pfile_equal(m, &back, err);
  fuze__pfile_free(&back);
  if (rc) return die("%s: the rebuilt file does not read back: %s", path, err);
  printf("rank %d: rebuilt %s\n", r, path);
  return 0;
}

static int rebuild(job *J) {
  int t = J->o.rebuild;
  if (t >= J->ranks) return die("--rebuild %d: the job has ranks 0..%d", t, J->ranks - 1);
  if (J->r[t].status == ST_OK) {
    printf("rank %d: %s is healthy; nothing to rebuild\n", t, J->r[t].path);
    return 0;
  }
  printf("rank %d: %s (%s); rebuilding from the other ranks\n", t, st_name[J->r[t].status],
         J->r[t].why);
  fuze_pfile **files = calloc((size_t)J->ranks, sizeof *files), out;
  if (!files) return die("out of memory");
  int n = 0;
  for (int r = 0; r < J->ranks; r++)
    if (r != t && J->r[r].status == ST_OK) files[r] = &J->r[r].m, n++;
  char err[FUZE_MSG_LEN];
  int rc = fuze__pfile_rebuild(files, J->ranks, t, &out, err);
  free(files);
  if (rc) return die("cannot rebuild rank %d of epoch %" PRIu64 ": %s", t, J->epoch, err);
  printf("rank %d: decoded from %d healthy files\n", t, n);
  rc = install(J, t, &out);
  fuze__pfile_free(&out);
  return rc;
}

/* ---- main ---- */

static int choose_epoch(job *J) {
  const fuze_manifest *m = &J->man;
  if (!m->ncomplete) return die("%s: the manifest lists no complete epoch", J->o.dir);
  int i = 0;
  if (J->o.have_epoch) {
    while (i < m->ncomplete && m->complete[i] != J->o.epoch) i++;
    char list[64];
    int o = snprintf(list, sizeof list, "%" PRIu64, m->complete[0]);
    if (m->ncomplete > 1) snprintf(list + o, sizeof list - (size_t)o, ", %" PRIu64, m->complete[1]);
    if (i == m->ncomplete)
      return die("epoch %" PRIu64 " is not complete in %s/manifest (complete: %s)", J->o.epoch,
                 J->o.dir, list);
  }
  J->epoch = m->complete[i];
  J->calls = m->ckpt_calls[i];
  return 0;
}

static int open_job(job *J) {
  struct stat st;
  char err[FUZE_MSG_LEN];
  if (stat(J->o.dir, &st)) return die("%s: %s", J->o.dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return die("%s: not a directory", J->o.dir);
  int rc = fuze__manifest_read(J->o.dir, &J->man, err);
  if (rc) { /* DIR/manifest lost or damaged: the domains' copies (newest epoch wins) */
    DIR *d = opendir(J->o.dir);
    struct dirent *e;
    char best[300] = "";
    fuze_manifest m;
    while (d && (e = readdir(d))) {
      char sub[PATH_MAX], err2[FUZE_MSG_LEN];
      if (strncmp(e->d_name, "domain-", 7) || strlen(e->d_name) > 40) continue;
      snprintf(sub, sizeof sub, "%.900s/%s", J->o.dir, e->d_name);
      if (fuze__manifest_read(sub, &m, err2) || !m.ncomplete) continue;
      if (best[0] && J->man.complete[0] >= m.complete[0]) continue;
      J->man = m;
      snprintf(best, sizeof best, "%s", e->d_name);
    }
    if (d) closedir(d);
    if (best[0]) {
      fprintf(stderr, "fuze-inspect: %s; using the copy %s/%s/manifest\n", err, J->o.dir, best);
      rc = 0;
    }
  }
  if (rc == FUZE_ERR_NOT_FOUND)
    return die("%s: no manifest (%s): not a fuze persistence directory, or no epoch was ever "
               "completed",
               J->o.dir, err);
  if (rc) return die("%s", err);
  if ((rc = choose_epoch(J))) return rc;
  J->ranks = J->man.ranks;
  J->r = calloc((size_t)J->ranks, sizeof *J->r);
  if (!J->r) return die("out of memory");
  load_all(J);
  return 0;
}

static int report(job *J) {
  print_header(J);
  print_ranks(J);
  if (!J->ref) {
    printf("\nno healthy file: nothing else can be shown\n");
    fprintf(stderr, "fuze-inspect: epoch %" PRIu64 ": no healthy rank file\n", J->epoch);
    return 2;
  }
  print_structs(J);
  int bad = print_blocks(J), status = J->nmissing || J->ncorrupt ? 2 : 0;
  printf("\nhealth: %d ok, %d missing, %d corrupt; %d block%s not recoverable\n", J->nok,
         J->nmissing, J->ncorrupt, bad, bad == 1 ? "" : "s");
  if (J->o.verify) {
    int v = verify(J);
    if (v == 2) return 2;
    if (!status) status = v;
  }
  if (status)
    fprintf(stderr, "fuze-inspect: epoch %" PRIu64 ": %d missing, %d corrupt file(s)%s\n", J->epoch,
            J->nmissing, J->ncorrupt, J->o.verify ? " or parity mismatches" : "");
  return status;
}

int main(int argc, char **argv) {
  job J;
  memset(&J, 0, sizeof J);
  int rc = parse_args(argc, argv, &J.o);
  if (rc >= 0) return rc;
  if ((rc = open_job(&J))) {
    free_all(&J);
    return rc;
  }
  if (J.o.rebuild >= 0) {
    rc = rebuild(&J);
    if (!rc && J.o.verify) { /* verify the result too */
      load_all(&J);
      rc = report(&J);
    }
  } else {
    rc = report(&J);
  }
  free_all(&J);
  return rc;
}
