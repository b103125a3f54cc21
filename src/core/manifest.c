/* manifest: DIR/manifest, the job-wide text file that makes an epoch
 * complete (docs/format.md). Written by rank 0 only. No HDF5. */
#include "core/pfile_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_VERSION 1
#define MANIFEST_MAX 4096 /* bytes of the whole text */
#define PATH_BYTES 4096   /* DIR/manifest and DIR/manifest.tmp */

static int manifest_text(const fuze_manifest *m, char *buf, size_t cap) {
  size_t o = (size_t)snprintf(
      buf, cap,
      "fuze-manifest %d\njob_id 0x%016" PRIx64 "\nranks %d\nfaults %d\nspares %d\ncode %s\n",
      MANIFEST_VERSION, m->job_id, m->ranks, m->f, m->spares, fuze__code_name(m->code));
  if (m->mode != FUZE_MODE_NONE && o < cap)
    o += (size_t)snprintf(buf + o, cap - o, "mode %s\n", fuze__name_of(&fuze__names_mode, m->mode));
  for (int i = 0; i < m->ncomplete && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "complete %" PRIu64 " %" PRId64 "\n", m->complete[i],
                          m->ckpt_calls[i]);
  if (o < cap) o += (size_t)snprintf(buf + o, cap - o, "crc64 0x%016" PRIx64 "\n", crc(buf, o));
  return o < cap ? (int)o : -1;
}

static int write_all(int fd, const char *buf, size_t n) {
  while (n) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w, n -= (size_t)w;
  }
  return 0;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

/* A mode runs over the rs code. */
static int mode_ok(int code, int mode) {
  return mode == FUZE_MODE_NONE ||
         (fuze__name_known(&fuze__names_mode, mode) && code == FUZE_CODE_RS);
}

int fuze__manifest_write(const char *dir, const fuze_manifest *m, char *err) {
  char path[PATH_BYTES], tmp[PATH_BYTES], text[MANIFEST_MAX];
  if (m->ncomplete < 0 || m->ncomplete > 2 || m->ranks < 1 || m->f < 1 || m->f > FUZE_MAX_FAULTS ||
      m->spares < 0 || fuze__name_value(&fuze__names_code, fuze__code_name(m->code)) < 0 ||
      !mode_ok(m->code, m->mode) || (m->ncomplete == 2 && m->complete[0] <= m->complete[1]) ||
      (m->ncomplete >= 1 && m->ckpt_calls[0] < 0) || (m->ncomplete == 2 && m->ckpt_calls[1] < 0))
    return fail(err, FUZE_ERR_ARG, "%s: refusing to write an invalid manifest", dir);
  int n = manifest_text(m, text, sizeof text);
  if ((size_t)snprintf(path, sizeof path, "%s/manifest", dir) >= sizeof path ||
      (size_t)snprintf(tmp, sizeof tmp, "%s/manifest.tmp", dir) >= sizeof tmp || n < 0)
    return fail(err, FUZE_ERR_ARG, "%s: path too long", dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(err, FUZE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  int rc = write_all(fd, text, (size_t)n) || fsync(fd);
  int e = errno;
  if (close(fd) && !rc) rc = 1, e = errno;
  if (rc) {
    unlink(tmp);
    return fail(err, FUZE_ERR_IO, "%s: cannot write: %s", tmp, strerror(e));
  }
  if (rename(tmp, path))
    return fail(err, FUZE_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
  if (fsync_dir(dir)) return fail(err, FUZE_ERR_IO, "%s: cannot fsync: %s", dir, strerror(errno));
  return FUZE_SUCCESS;
}

/* Strict unsigned decimal (or hex after 0x): no sign, spaces or junk. */
static int parse_u64(const char *s, uint64_t *v) {
  int base = 10;
  if (s[0] == '0' && s[1] == 'x') s += 2, base = 16;
  if (!*s || strlen(s) > (base == 16 ? 16u : 20u)) return -1;
  for (const char *c = s; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (base == 16 && *c >= 'a' && *c <= 'f'))) return -1;
  errno = 0;
  char *end;
  unsigned long long x = strtoull(s, &end, base);
  if (errno || *end) return -1;
  *v = x;
  return 0;
}

static int parse_int(const char *s, int lo, int hi, int *v) {
  uint64_t x;
  if (parse_u64(s, &x) || x < (uint64_t)lo || x > (uint64_t)hi) return -1;
  *v = (int)x;
  return 0;
}

/* The keys of a manifest: every one but the last exactly once (mode is
 * written only for a mode other than none). */
static const char *const manifest_keys[] = {"job_id", "ranks", "faults", "spares",
                                            "code",   "crc64", "mode"};
#define MANIFEST_KEYS 7
#define MANIFEST_REQUIRED 6

typedef struct mparse {
  fuze_manifest *m;
  unsigned seen; /* bit per key */
  int crc_line;
  uint64_t crc_value;
} mparse;

/* One "key value..." line (NUL-terminated, no newline). */
static int manifest_line(mparse *P, char *line) {
  char *key = line, *v1 = strchr(line, ' '), *v2 = NULL;
  if (!v1) return -1;
  *v1++ = 0;
  if ((v2 = strchr(v1, ' '))) *v2++ = 0;
  for (unsigned i = 0; i < MANIFEST_KEYS; i++) {
    if (strcmp(key, manifest_keys[i])) continue;
    if (v2 || (P->seen & (1u << i))) return -1;
    P->seen |= 1u << i;
    fuze_manifest *m = P->m;
    switch (i) {
    case 0: return strncmp(v1, "0x", 2) || parse_u64(v1, &m->job_id) ? -1 : 0;
    case 1: return parse_int(v1, 1, FUZE_PF_MAX_RANKS, &m->ranks);
    case 2: return parse_int(v1, 1, FUZE_MAX_FAULTS, &m->f);
    case 3: return parse_int(v1, 0, FUZE_PF_MAX_RANKS, &m->spares);
    case 4: return (m->code = fuze__name_value(&fuze__names_code, v1)) < 0 ? -1 : 0;
    case 6: return (m->mode = fuze__name_value(&fuze__names_mode, v1)) > FUZE_MODE_NONE ? 0 : -1;
    default:
      if (strncmp(v1, "0x", 2) || parse_u64(v1, &P->crc_value)) return -1;
      P->crc_line = 1;
      return 0;
    }
  }
  if (strcmp(key, "complete") || !v2 || strchr(v2, ' ') || P->m->ncomplete >= 2) return -1;
  uint64_t e, c;
  if (parse_u64(v1, &e) || parse_u64(v2, &c) || c > INT64_MAX) return -1;
  int i = P->m->ncomplete++;
  P->m->complete[i] = e, P->m->ckpt_calls[i] = (int64_t)c;
  return i == 1 && P->m->complete[0] <= e ? -1 : 0;
}

static int manifest_parse(const char *path, char *text, size_t len, fuze_manifest *m, char *err) {
  if (memchr(text, 0, len)) return fail(err, FUZE_ERR_CORRUPT, "%s: binary data", path);
  if (!len || text[len - 1] != '\n')
    return fail(err, FUZE_ERR_CORRUPT, "%s: truncated (no final newline)", path);
  unsigned v = 0;
  char extra;
  if (sscanf(text, "fuze-manifest %u%c", &v, &extra) != 2 || extra != '\n')
    return fail(err, FUZE_ERR_CORRUPT, "%s: line 1: expected 'fuze-manifest %d'", path,
                MANIFEST_VERSION);
  if (v > MANIFEST_VERSION)
    return fail(err, FUZE_ERR_CORRUPT,
                "%s: written by manifest version %u; this fuze reads version %d", path, v,
                MANIFEST_VERSION);
  if (v < 1) return fail(err, FUZE_ERR_CORRUPT, "%s: line 1: manifest version 0", path);
  m->version = v;
  mparse P = {m, 0, 0, 0};
  char work[MANIFEST_MAX + 1]; /* parsing cuts lines apart; the crc needs the text */
  memcpy(work, text, len + 1);
  char *line = strchr(work, '\n') + 1, *crcline = NULL;
  for (int n = 2; line < work + len; n++) {
    char *nl = strchr(line, '\n');
    *nl = 0;
    if (P.crc_line) return fail(err, FUZE_ERR_CORRUPT, "%s: line %d: text after crc64", path, n);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", line);
    if (manifest_line(&P, line))
      return fail(err, FUZE_ERR_CORRUPT, "%s: line %d: bad line '%s'", path, n, copy);
    if (P.crc_line) crcline = line;
    line = nl + 1;
  }
  for (unsigned i = 0; i < MANIFEST_REQUIRED; i++)
    if (!(P.seen & (1u << i)))
      return fail(err, FUZE_ERR_CORRUPT, "%s: missing '%s' line", path, manifest_keys[i]);
  if (!mode_ok(m->code, m->mode))
    return fail(err, FUZE_ERR_CORRUPT, "%s: mode %s over code %s", path,
                fuze__name_of(&fuze__names_mode, m->mode), fuze__code_name(m->code));
  /* The crc covers the text as written, up to the crc64 line. */
  if (P.crc_value != crc(text, (size_t)(crcline - work)))
    return fail(err, FUZE_ERR_CORRUPT, "%s: crc64 mismatch: the manifest is damaged", path);
  return FUZE_SUCCESS;
}

int fuze__manifest_read(const char *dir, fuze_manifest *m, char *err) {
  char path[PATH_BYTES], text[MANIFEST_MAX + 1];
  memset(m, 0, sizeof *m);
  if ((size_t)snprintf(path, sizeof path, "%s/manifest", dir) >= sizeof path)
    return fail(err, FUZE_ERR_ARG, "%s: path too long", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(err, errno == ENOENT ? FUZE_ERR_NOT_FOUND : FUZE_ERR_IO, "%s: %s", path,
                strerror(errno));
  size_t len = 0;
  ssize_t got;
  while (len < sizeof text && (got = read(fd, text + len, sizeof text - len)) != 0) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int e = errno;
      close(fd);
      return fail(err, FUZE_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    len += (size_t)got;
  }
  close(fd);
  text[len < sizeof text ? len : sizeof text - 1] = 0;
  if (len > MANIFEST_MAX)
    return fail(err, FUZE_ERR_CORRUPT, "%s: larger than %d bytes", path, MANIFEST_MAX);
  int rc = manifest_parse(path, text, len, m, err);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}
