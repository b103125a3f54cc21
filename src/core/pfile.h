/* pfile: the persisted form of one rank's committed epoch (an HDF5 file), the
 * job-wide manifest, and the pure (MPI-free) rebuild of a lost rank's file by
 * decoding its block from the other ranks' files. Used by the library
 * (persist.c: writing at checkpoints, restart in fuze_init) and by
 * apps/fuze-inspect (offline verify and rebuild). No MPI calls in here.
 *
 * Directory layout (docs/format.md):
 *   DIR/manifest                                  job-wide copy, written by rank 0
 *   DIR/domain-<D>/manifest                       domain D's copy, by its first rank
 *   DIR/domain-<D>/rank-<R>/epoch-<E>.h5          everything rank R writes
 * A rank file holds the rank's committed primaries (arrays as datasets of
 * their native HDF5 type, stacks' elements, maps' keys and values), the
 * committed parity (and index replicas) of every backup region it hosts, the
 * plan, the code and a crc64 (ISA-L crc64_ecma_refl) per dataset. */
#ifndef FUZE_PFILE_H
#define FUZE_PFILE_H

#include "core/limits.h"
#include "core/names.h" /* enum fuze_ps_kind, enum fuze_code_kind, enum fuze_mode */
#include "core/plan.h"

#include <stddef.h>
#include <stdint.h>

#define FUZE_PFILE_VERSION 2 /* 2: one 64-byte header line per member */
#define FUZE_PFILE_NAME_MAX FUZE_NAME_MAX /* a structure name, with its NUL */

/* Region layout of a fused stack/map region of a block of k members at
 * capacity cap (fused.c uses exactly this):
 *   [0, 64k)                 header: member i's (count u64, seq u64), native endian,
 *                            at 64i, then 48 zero bytes: one cache line per member,
 *                            so members updating their headers never share a line
 *   [keys_off, +k*cap*kb)    keys: member i's keys at keys_off + i*cap*kb, slot order
 *   [nodes_off, +cap*nb)     nodes: parity of the members' values, slot order
 * Each part starts 64-byte aligned. Slots >= a member's count hold zeros in
 * its key replica and contribute zeros to the nodes. */
#define FUZE_HDR_STRIDE FUZE_HDR_LINE /* bytes of a member's header in a region */
_Static_assert(FUZE_HDR_STRIDE == 64 && FUZE_ALIGN == 64,
               "format version 2 has 64-byte header lines and 64-byte aligned parts");
static inline size_t fuze__align64(size_t n) { return fuze__align(n); }
static inline size_t fuze__hdr_off(int i) { return FUZE_HDR_STRIDE * (size_t)i; }
typedef struct fuze_fobj_layout {
  size_t keys_off, nodes_off, bytes;
} fuze_fobj_layout;
static inline fuze_fobj_layout fuze__fobj_layout(int k, size_t cap, size_t kb, size_t nb) {
  fuze_fobj_layout l;
  l.keys_off = fuze__hdr_off(k);
  l.nodes_off = l.keys_off + fuze__align((size_t)k * cap * kb);
  l.bytes = l.nodes_off + fuze__align(cap * nb);
  return l;
}

/* One registered structure of a rank, in registration order. Canonical form
 * (fuze__pfile_write refuses anything else with FUZE_ERR_ARG, the reader
 * returns exactly this): arrays leave kb, nb, seq, cap and keys zero/NULL;
 * stacks and maps leave type_name empty, elem 0 and rank_counts NULL, and
 * stacks have kb 0 and keys NULL. A spare rank holds every structure with
 * count 0 (and seq 0 for stacks and maps). Names are unique across kinds. */
typedef struct fuze_pstruct {
  char name[FUZE_PFILE_NAME_MAX];
  int kind;               /* enum fuze_ps_kind */
  /* Arrays. */
  char type_name[32];     /* the MPI datatype's name as registered, e.g. "MPI_DOUBLE" */
  size_t elem;            /* element bytes */
  uint64_t *rank_counts;  /* element count of every rank of the job (0 for spares) */
  /* Stacks and maps. */
  size_t kb, nb;          /* key bytes (0 for stacks), value/element bytes */
  uint64_t seq;           /* operations applied (replicated in the backups' headers) */
  size_t cap;             /* fused slots per region (the same on every rank) */
  /* Both. */
  size_t count;           /* arrays: elements of this rank; stacks/maps: live entries */
  unsigned char *keys;    /* maps: count * kb bytes in slot order; else NULL */
  unsigned char *data;    /* arrays: count * elem bytes; stacks/maps: count * nb, slot order */
} fuze_pstruct;

/* One committed backup region this rank hosts: backup j of block `block` of
 * structure `s`. Arrays: the parity of the members' bytes padded to the
 * largest member's (bytes = max over members of rank_counts * elem).
 * Stacks/maps: the whole region in the layout above (bytes = layout.bytes). */
typedef struct fuze_pregion {
  int s, block, j;
  size_t bytes;
  unsigned char *data;
} fuze_pregion;

typedef struct fuze_pfile {
  uint32_t version;       /* FUZE_PFILE_VERSION */
  uint64_t job_id;        /* random at the job's first start, kept across restarts */
  uint64_t epoch;         /* committed epoch */
  int64_t ckpt_calls;     /* fuze_checkpoint() calls when it was committed */
  int rank, ranks;
  int f, spares, code;    /* code: enum fuze_code_kind */
  fuze_plan plan;         /* the whole plan (every field filled, owned) */
  int nstructs;
  fuze_pstruct *structs;
  int nregions;
  fuze_pregion *regions;  /* sorted by (s, block, j) */
} fuze_pfile;

/* Paths. */
void fuze__pfile_dir(char *out, size_t len, const char *dir, int domain, int rank);
void fuze__pfile_path(char *out, size_t len, const char *dir, int domain, int rank,
                      uint64_t epoch);

/* Write m to `path` (created or truncated), flush and fsync it. The caller
 * writes to a temporary name and renames. FUZE_ERR_IO with the path and the
 * reason in err (FUZE_MSG_LEN bytes). */
int fuze__pfile_write(const fuze_pfile *m, const char *path, char *err);

/* Read and check a rank file: every crc64, the format version (a newer one is
 * refused with its number), internal consistency (sizes vs attributes, region
 * sizes vs the layout, a valid plan). Never crashes on a damaged file.
 * Missing/unreadable: FUZE_ERR_IO; damaged, truncated or future version:
 * FUZE_ERR_CORRUPT. err names the file and what is wrong. */
int fuze__pfile_read(const char *path, fuze_pfile *m, char *err);
/* The same from a file image in memory (label names it in messages). */
int fuze__pfile_read_image(const void *buf, size_t len, const char *label, fuze_pfile *m,
                           char *err);
void fuze__pfile_free(fuze_pfile *m); /* accepts a zeroed or freed model */

/* Do a and b belong to the same job, epoch and geometry (job id, epoch,
 * ranks, f, spares, code, plan, the structures' names, kinds and sizes)?
 * 0 if so, else FUZE_ERR_CORRUPT with what differs in err. */
int fuze__pfile_same_job(const fuze_pfile *a, const fuze_pfile *b, char *err);
/* fuze__pfile_same_job, and the same rank, counts, seqs, contents and backup
 * regions byte for byte. 0 if equal, else FUZE_ERR_CORRUPT saying what differs. */
int fuze__pfile_equal(const fuze_pfile *a, const fuze_pfile *b, char *err);

/* Bytes of backup region (s, block) given the structure metadata of any
 * file of the job. */
size_t fuze__pfile_region_bytes(const fuze_pfile *m, int s, int block);

/* Recompute backup j of `block` for structure s from the members' files
 * (files[r] for every member r must be present) into out (region bytes). */
int fuze__pfile_encode_region(fuze_pfile *const *files, int s, int block, int j,
                              unsigned char *out, char *err);

/* Rebuild rank `target`'s file from the others: files[0..ranks-1], NULL for
 * missing or damaged ones (files[target] is ignored). Lost primaries are
 * decoded (ISA-L) from the surviving members and backup regions of their
 * block, lost backup regions re-encoded. out gets a complete model equal to
 * what target wrote. More than f members of a needed block missing:
 * FUZE_ERR_UNRECOVERABLE naming the block and the missing ranks. */
int fuze__pfile_rebuild(fuze_pfile *const *files, int ranks, int target, fuze_pfile *out,
                        char *err);

/* ---- increments (persist_base=K > 1, pfile_h5incr.c, pincr.c) ----
 * DIR/domain-<D>/rank-<R>/incr-<E>.h5 holds what changed in rank R's file
 * between epoch `parent` (its previous persisted epoch) and E: per structure
 * its count, seq and the changed chunks of its keys and data; per hosted
 * backup region its changed chunks. Epoch E of a rank is its newest full
 * file epoch-<B>.h5 at or before E plus the increments B < X <= E, each
 * naming its parent (the rank's "chain"). */

/* One payload's changed chunks: the payload is len bytes in the new epoch;
 * chunk c covers [c*chunk, min((c+1)*chunk, len)); `bytes` holds the listed
 * chunks packed in order. A payload whose length changed lists every chunk. */
typedef struct fuze_pdelta {
  uint64_t len;
  size_t n;
  uint64_t *idx;          /* n chunk indices, ascending */
  unsigned char *bytes;   /* packed */
  size_t nbytes;
} fuze_pdelta;

typedef struct fuze_pincr_struct {
  char name[FUZE_PFILE_NAME_MAX];
  int kind;               /* enum fuze_ps_kind */
  uint64_t count, seq, cap; /* cap: stacks and maps (their regions grow with it) */
  fuze_pdelta keys, data;
} fuze_pincr_struct;

typedef struct fuze_pincr_region {
  int s, block, j;
  fuze_pdelta d;
} fuze_pincr_region;

typedef struct fuze_pincr {
  uint64_t job_id, epoch, parent, base;
  int64_t ckpt_calls;
  int rank, ranks;
  uint64_t chunk;
  int nstructs;
  fuze_pincr_struct *structs;   /* the parent's structures, same order */
  int nregions;
  fuze_pincr_region *regions;   /* the parent's regions, same order */
} fuze_pincr;

void fuze__pfile_incr_path(char *out, size_t len, const char *dir, int domain, int rank,
                           uint64_t epoch);
/* Written like a rank file (HDF5 image, fsync, seal); read with every check
 * (seal, crc64 per dataset, chunk lists in range and ascending, packed
 * sizes). Errors as fuze__pfile_write / fuze__pfile_read, naming the file. */
int fuze__pincr_write(const fuze_pincr *d, const char *path, char *err);
int fuze__pincr_read(const char *path, fuze_pincr *d, char *err);
void fuze__pincr_free(fuze_pincr *d);
/* Bytes of payload a delta carries (what the increment costs on disk, less
 * the HDF5 overhead). */
uint64_t fuze__pincr_payload(const fuze_pincr *d);
/* m (epoch d->parent of the same job and rank) becomes epoch d->epoch.
 * FUZE_ERR_CORRUPT (label names the increment) when they do not fit. */
int fuze__pincr_apply(fuze_pfile *m, const fuze_pincr *d, const char *label, char *err);
/* Epoch E of rank `rank` under dir: epoch-E.h5, or the chain of increments
 * down to a full file, applied in order. chain (may be NULL) receives the
 * epochs read, full file first (at most maxchain; longer chains are
 * FUZE_ERR_CORRUPT). Errors name the file that is missing (FUZE_ERR_IO) or
 * damaged (FUZE_ERR_CORRUPT). */
int fuze__pfile_read_chain(const char *dir, int domain, int rank, uint64_t E, fuze_pfile *m,
                           uint64_t *chain, int *nchain, int maxchain, char *err);

/* Manifest: DIR/manifest and DIR/domain-<D>/manifest (copies), a small text
 * file. An epoch is complete only once a copy lists it (written after every rank's file is durable). */
typedef struct fuze_manifest {
  uint32_t version;
  uint64_t job_id;
  int ranks, f, spares, code; /* code: enum fuze_code_kind (the files' code) */
  int ncomplete;          /* 0..2 */
  uint64_t complete[2];   /* newest first */
  int64_t ckpt_calls[2];  /* fuze_checkpoint() calls at each complete epoch */
  int mode;               /* enum fuze_mode over code rs: a "mode" line when not none */
} fuze_manifest;

/* FUZE_ERR_NOT_FOUND when absent, FUZE_ERR_CORRUPT when unparsable or newer. */
int fuze__manifest_read(const char *dir, fuze_manifest *m, char *err);
/* Temporary name, fsync, rename, fsync of DIR. */
int fuze__manifest_write(const char *dir, const fuze_manifest *m, char *err);

#endif
