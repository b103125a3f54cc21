/* pfile_seal: the HDF5 user block of a rank file ("seal": magic, version,
 * length and the crc64 of every byte after it), written after HDF5 closes
 * the file and checked before HDF5 reads a byte of it. */
#include "core/pfile_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The seal's fields (docs/format.md), little endian; the rest of the user
 * block is zero. The first 16 bytes keep their meaning in every version. */
enum {
  SEAL_MAGIC = 0, /* FUZE_PF_UB_MAGIC */
  SEAL_MAGIC_BYTES = 8,
  SEAL_VERSION = 8,   /* u32: FUZE_PFILE_VERSION */
  SEAL_UB_BYTES = 12, /* u32: FUZE_PF_UB_BYTES */
  SEAL_LENGTH = 16,   /* u64: the file's length */
  SEAL_BODY_CRC = 24, /* u64: crc64 of [FUZE_PF_UB_BYTES, length) */
  SEAL_CRC = 32,      /* u64: crc64 of the 32 bytes before it */
  SEAL_BYTES = 40
};
_Static_assert(SEAL_BYTES <= FUZE_PF_UB_BYTES, "the seal fits the user block");
_Static_assert(sizeof FUZE_PF_UB_MAGIC - 1 == SEAL_MAGIC_BYTES, "8-byte magic");

static void put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Seal: the user block records the length and a crc64 of the HDF5 part. */
static void seal_header(unsigned char *h, uint32_t version, uint64_t len, uint64_t body_crc) {
  memset(h, 0, SEAL_BYTES);
  memcpy(h + SEAL_MAGIC, FUZE_PF_UB_MAGIC, SEAL_MAGIC_BYTES);
  put_le32(h + SEAL_VERSION, version);
  put_le32(h + SEAL_UB_BYTES, FUZE_PF_UB_BYTES);
  put_le64(h + SEAL_LENGTH, len);
  put_le64(h + SEAL_BODY_CRC, body_crc);
  put_le64(h + SEAL_CRC, crc(h, SEAL_CRC));
}

/* crc64 of [FUZE_PF_UB_BYTES, len) of an open file. */
static int crc_fd(int fd, uint64_t len, uint64_t *out) {
  size_t bufsize = 1 << 20;
  unsigned char *buf = malloc(bufsize);
  if (!buf) return -1;
  uint64_t c = 0, off = FUZE_PF_UB_BYTES;
  while (off < len) {
    size_t want = len - off < bufsize ? (size_t)(len - off) : bufsize;
    ssize_t got = pread(fd, buf, want, (off_t)off);
    if (got <= 0) {
      if (got == 0) errno = EIO;
      if (got < 0 && errno == EINTR) continue;
      free(buf);
      return -1;
    }
    c = crc_more(c, buf, (size_t)got);
    off += (uint64_t)got;
  }
  free(buf);
  *out = c;
  return 0;
}

int fuze__pf_seal(const char *path, uint32_t version, char *err) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(err, FUZE_ERR_IO, "%s: cannot reopen to seal: %s", path, strerror(errno));
  struct stat st;
  unsigned char h[SEAL_BYTES];
  uint64_t body = 0;
  int rc = FUZE_SUCCESS;
  if (fstat(fd, &st) || crc_fd(fd, (uint64_t)st.st_size, &body))
    rc = fail(err, FUZE_ERR_IO, "%s: cannot read back: %s", path, strerror(errno));
  else if (st.st_size < FUZE_PF_UB_BYTES)
    rc = fail(err, FUZE_ERR_IO, "%s: HDF5 left no user block", path);
  if (!rc) {
    seal_header(h, version, (uint64_t)st.st_size, body);
    if (pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h || fsync(fd))
      rc = fail(err, FUZE_ERR_IO, "%s: cannot seal: %s", path, strerror(errno ? errno : EIO));
  }
  if (close(fd) && !rc) rc = fail(err, FUZE_ERR_IO, "%s: close: %s", path, strerror(errno));
  return rc;
}

/* The seal (user block) of a file of `len` bytes whose first FUZE_PF_UB_BYTES are h. */
static int check_seal(fuze_pf_rd *x, const unsigned char *h, uint64_t len) {
  if (len < FUZE_PF_UB_BYTES) return rbad(x, "truncated: %" PRIu64 " bytes", len);
  if (memcmp(h + SEAL_MAGIC, FUZE_PF_UB_MAGIC, SEAL_MAGIC_BYTES))
    return rbad(x, "not a fuze rank file (no fuze user block)");
  if (get_le64(h + SEAL_CRC) != crc(h, SEAL_CRC))
    return rbad(x, "damaged user block (crc64 mismatch)");
  uint32_t v = get_le32(h + SEAL_VERSION);
  if (v != FUZE_PFILE_VERSION)
    return rbad(x, "written by format version %u; this fuze reads version %d", v,
                FUZE_PFILE_VERSION);
  if (get_le64(h + SEAL_LENGTH) != len)
    return rbad(x, "truncated or extended: %" PRIu64 " bytes, the writer wrote %" PRIu64, len,
                get_le64(h + SEAL_LENGTH));
  return 0;
}

/* The seal and the file checksum of an open file of `len` bytes. */
static int check_sealed_fd(fuze_pf_rd *x, int fd, uint64_t len) {
  const char *path = x->label;
  unsigned char h[FUZE_PF_UB_BYTES];
  uint64_t body;
  if (pread(fd, h, FUZE_PF_UB_BYTES, 0) != FUZE_PF_UB_BYTES)
    return fail(x->err, FUZE_ERR_IO, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
  int rc = check_seal(x, h, len);
  if (rc) return rc;
  if (crc_fd(fd, len, &body))
    return fail(x->err, FUZE_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
  if (body != get_le64(h + SEAL_BODY_CRC))
    return rbad(x, "file checksum mismatch: the file is damaged");
  return 0;
}

int fuze__pf_check_sealed_file(fuze_pf_rd *x, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(x->err, FUZE_ERR_IO, "%s: %s", path, strerror(errno));
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st))
    rc = fail(x->err, FUZE_ERR_IO, "%s: %s", path, strerror(errno));
  else if (!S_ISREG(st.st_mode))
    rc = fail(x->err, FUZE_ERR_IO, "%s: not a regular file", path);
  else if (st.st_size < FUZE_PF_UB_BYTES)
    rc = rbad(x, "truncated: %lld bytes", (long long)st.st_size);
  else
    rc = check_sealed_fd(x, fd, (uint64_t)st.st_size);
  close(fd);
  if (!rc) x->file_bytes = (uint64_t)st.st_size;
  return rc;
}

int fuze__pf_check_sealed_image(fuze_pf_rd *x, const void *buf, size_t len) {
  const unsigned char *h = buf;
  int rc = len < FUZE_PF_UB_BYTES ? rbad(x, "truncated: %zu bytes", len) : check_seal(x, h, len);
  if (!rc && crc(h + FUZE_PF_UB_BYTES, len - FUZE_PF_UB_BYTES) != get_le64(h + SEAL_BODY_CRC))
    rc = rbad(x, "file checksum mismatch: the file is damaged");
  return rc;
}
