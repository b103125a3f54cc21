/* verify: scrubbing of committed state (fuze_verify, verify_every). The
 * `corrupt` fault injection it is tested with lives in inject_corrupt.c.
 *
 * For every protected structure and every block, the members' committed
 * data d_i and the backups' committed parity P_j are combined into the f
 * syndromes s_j = P_j + sum_i b[j][i] * d_i (GF(2^8), + is XOR) with one
 * MPI_Reduce(BXOR) per piece over the block communicator, rooted at block
 * member 0: each member contributes its f coefficient products (one
 * ec_encode_data pass, code.h), each host its parity in its backup's slot.
 * All-zero syndromes: the block is consistent. Otherwise, per byte:
 *   - f = 1: the mismatch is detected but cannot be attributed (UNLOCATED);
 *   - exactly one s_j != 0 (f >= 2): backup j's parity is wrong by s_j;
 *   - every s_j != 0 and s_j = b[j][i] * e for one member i and one e (the
 *     ratio s_1/s_0 names i, because the 2x2 minors of a Cauchy matrix are
 *     non-singular; the other rows confirm): member i's byte is wrong by e;
 *   - anything else: more than one corrupted copy at that offset (UNLOCATED).
 * This is single-error correction per byte offset: with f = 2 (distance 3) two
 * corrupted copies at the same offset can look like one corruption of a third
 * copy; with f >= 3 they are always detected. Located errors are repaired by
 * XORing them out (the same result as decoding the copy as erased).
 *
 * Arrays: a primary's committed data is its committed copy (shadow). A
 * checkpoint computes its deltas against that copy, so a copy corrupted
 * before a checkpoint leaves, after it, a copy equal to the application's
 * buffer and backups that all disagree with it ("stale" parity). A located
 * primary error at a byte where the copy equals the application's buffer is
 * therefore repaired at the backups (P_j ^= b[j][i] * e) instead of in the
 * copy. Right after a checkpoint this rule is exact; between checkpoints a
 * byte the application has changed since is repaired in the copy.
 *
 * Stacks and maps: the primary's elements and index (count, seq, keys) against
 * the backups' fused nodes and index replicas. When no rank operated on a
 * stack or map since the last commit, the committed regions are checked (and
 * the working regions, which must equal them, are compared too); otherwise the
 * working regions against the live elements after the outstanding operations
 * were completed (a live check). Index copies (the primary's and the f
 * replicas) are compared by crc64 (ISA-L) and, where they differ, byte by byte
 * by majority (no majority with f = 1: detected only).
 *
 * Arrays also compare every host's working parity with its (now verified)
 * committed parity, which must be equal outside a checkpoint.
 *
 * Findings become report entries (contiguous ranges, findings closer than
 * VGAP bytes merged), gathered to every rank. All Galois-field arithmetic is
 * ISA-L's (gf_mul, gf_inv, ec_encode_data through code.h). */
#include "proto/verify.h"

#include "comm/coll.h"
#include "comm/transport.h"
#include "core/pfile.h" /* the region layout of a stack/map backup */
#include "data/array.h"
#include "data/fused.h"
#include "data/threads.h"
#include "proto/inject_corrupt.h"

#include <isa-l/crc64.h>
#include <isa-l/erasure_code.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VPIECE (4u << 20)      /* syndrome bytes (all f backups) reduced at a time */
#define VGAP 64                /* findings closer than this form one range */
#define VCHUNK 4096            /* corrections broadcast at a time */
#define VMAXCORR (1u << 20)    /* located bytes kept per (structure, block); beyond: unlocated */
#define VLINE 64               /* syndrome bytes tested for zero at once; pieces are multiples */
#define VCMP 4096              /* working and committed parity compared at a time */
#define VCORR0 1024            /* first size of the root's list of located bytes */
#define VBYTES (UCHAR_MAX + 1) /* values of a byte (GF(2^8) elements) */
#define VSLACK 64              /* room past VPIECE in buf and res: the last word's padding */

enum { C_BLOCKS, C_BYTES, C_FOUND, C_REP, C_UNREP, C_BAD, C_N };
enum { MODE_DATA, MODE_INDEX, MODE_WORKING };

/* A report entry with its sort key: (structure, block, source rank, order). */
typedef struct vent {
  uint32_t s, b, src, ord;
  fuze_verify_entry e;
} vent;

typedef struct vcorr {
  uint64_t p;     /* byte offset in the fused data */
  int32_t x;      /* block-communicator rank of the wrong copy */
  uint8_t e;      /* the error: XOR it out */
  uint8_t stale;  /* array primary: the copy matched the application: fix the parity */
  uint16_t pad;
} vcorr;

typedef struct vrun {
  int open;
  uint64_t start, last, bad;
} vrun;

typedef struct vstate {
  fuze_ctx *ctx;
  int live;                /* stacks and maps checked in their live state */
  int s;                   /* current structure: arrays 0.., then stacks and maps */
  const char *name;
  uint64_t cnt[C_N];
  vent ents[FUZE_VERIFY_MAX_ENTRIES];
  int nents;
  uint32_t ord;
  unsigned char *buf, *res; /* VPIECE bytes each */
  vcorr *cbuf;              /* VCHUNK corrections */
  int rc;                   /* first error (FUZE_MPI_KEEP): agreed at the end */
} vstate;

/* A checked MPI call of a pass: the first failure stays in st->rc. */
#define VMPI(st, call) FUZE_MPI_KEEP((st)->rc, (st)->ctx->msg, call)

static void vkeep(vstate *st, int rc) {
  if (!st->rc) st->rc = rc;
}

/* One block of one structure, one pass. */
typedef struct vblk {
  vstate *st;
  int b, k, f, me, nm, mode;
  int member;        /* MODE_INDEX: the member whose index is checked */
  MPI_Comm comm;
  const fuze_code *code;
  vrun runs[2 * FUZE_GF_MEMBERS2 + 1]; /* two classes per block-comm rank, then unlocated */
  uint64_t unrep;    /* unrepaired findings of this pass (known to every member) */
} vblk;

static int rank_of(const vblk *vb, int x) {
  const fuze_plan *p = &vb->st->ctx->plan;
  return x < vb->k ? p->members[p->block_start[vb->b] + x] : p->hosts[vb->b * p->f + x - vb->k];
}

static void emit(vstate *st, int b, int kind, int rank, int backup, int member, uint64_t off,
                 uint64_t len, uint64_t bad, int repaired) {
  st->cnt[C_FOUND]++;
  st->cnt[repaired ? C_REP : C_UNREP]++;
  st->cnt[C_BAD] += bad;
  if (st->nents >= FUZE_VERIFY_MAX_ENTRIES) return;
  vent *v = &st->ents[st->nents++];
  memset(v, 0, sizeof *v);
  v->s = (uint32_t)st->s;
  v->b = (uint32_t)b;
  v->src = (uint32_t)st->ctx->rank;
  v->ord = st->ord++;
  snprintf(v->e.name, sizeof v->e.name, "%s", st->name);
  v->e.block = b;
  v->e.kind = kind;
  v->e.rank = rank;
  v->e.backup = backup;
  v->e.member = member;
  v->e.repaired = repaired;
  v->e.offset = off;
  v->e.length = len;
  v->e.bytes = bad;
}

/* Classes of findings. DATA: 0..nm-1 copy x repaired, nm+i stale parity of
 * primary i, 2nm unlocated. INDEX: 0..nm-1 copy x repaired, nm+x copy x wrong
 * but not repairable, 2nm no majority. WORKING: 0, this host. */
static void run_close(vblk *vb, int c) {
  vrun *r = &vb->runs[c];
  if (!r->open) return;
  r->open = 0;
  int nm = vb->nm, kind, rank = -1, backup = -1, member = -1, repaired = 1;
  if (vb->mode == MODE_WORKING) {
    kind = FUZE_VERIFY_WORKING;
    rank = rank_of(vb, vb->me);
    backup = vb->me - vb->k;
  } else if (vb->mode == MODE_INDEX) {
    kind = FUZE_VERIFY_INDEX;
    member = rank_of(vb, vb->member);
    if (c < 2 * nm) {
      int x = c % nm;
      rank = rank_of(vb, x);
      backup = x < vb->k ? -1 : x - vb->k;
    }
    repaired = c < nm;
  } else if (c < nm) {
    kind = c < vb->k ? FUZE_VERIFY_PRIMARY : FUZE_VERIFY_PARITY;
    rank = rank_of(vb, c);
    backup = c < vb->k ? -1 : c - vb->k;
  } else if (c < 2 * nm) {
    kind = FUZE_VERIFY_STALE;
    rank = rank_of(vb, c - nm);
  } else {
    kind = FUZE_VERIFY_UNLOCATED;
    repaired = 0;
  }
  if (!repaired) vb->unrep++;
  emit(vb->st, vb->b, kind, rank, backup, member, r->start, r->last - r->start + 1, r->bad,
       repaired);
}

static void run_add(vblk *vb, int c, uint64_t p) {
  vrun *r = &vb->runs[c];
  if (r->open && p >= r->last && p - r->last < VGAP) {
    r->last = p;
    r->bad++;
    return;
  }
  run_close(vb, c);
  r->open = 1;
  r->start = r->last = p;
  r->bad = 1;
}

static void runs_close(vblk *vb) {
  for (int c = 0; c <= 2 * vb->nm; c++) run_close(vb, c);
}

/* me: this rank's place in block b's communicator. */
static void vblk_init(vblk *vb, vstate *st, int b, int me, int mode) {
  fuze_ctx *ctx = st->ctx;
  memset(vb, 0, sizeof *vb);
  vb->st = st;
  vb->b = b;
  vb->k = ctx->plan.block_start[b + 1] - ctx->plan.block_start[b];
  vb->f = ctx->plan.f;
  vb->nm = vb->k + vb->f;
  vb->mode = mode;
  vb->member = -1;
  vb->comm = ctx->block_comm[b];
  vb->code = &ctx->codes[b];
  vb->me = me;
}

/* ---- the syndrome pass ---- */

typedef struct vroot {
  int ratio[VBYTES];                  /* s_1/s_0 -> member, or -1 */
  unsigned char inv0[FUZE_GF_MEMBERS]; /* 1 / b[0][i] */
  uint64_t lens[FUZE_GF_MEMBERS2];     /* every block-comm rank's data bytes */
  vcorr *list;
  size_t n, cap;
  int full;                 /* the list is full: further located bytes are unlocated */
} vroot;

static int all_zero(const unsigned char *p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    if (w) return 0;
  }
  while (n--)
    if (*p++) return 0;
  return 1;
}

static void push_corr(vblk *vb, vroot *rt, uint64_t p, int x, unsigned char e) {
  if (!rt->full && rt->n == rt->cap) {
    size_t cap = rt->cap ? 2 * rt->cap : VCORR0;
    vcorr *l = cap <= VMAXCORR ? realloc(rt->list, cap * sizeof *l) : NULL;
    if (l) {
      rt->list = l;
      rt->cap = cap;
    } else {
      rt->full = 1;
    }
  }
  if (rt->full) {
    run_add(vb, 2 * vb->nm, p);
    return;
  }
  rt->list[rt->n++] = (vcorr){p, x, e, 0, 0};
}

/* Root: the class of one nonzero syndrome byte at p (s: its f values). */
static void classify(vblk *vb, vroot *rt, const unsigned char *s, uint64_t p) {
  int f = vb->f, nz = 0, last = -1;
  for (int j = 0; j < f; j++)
    if (s[j]) nz++, last = j;
  if (f >= 2 && nz == 1) { /* backup `last`'s parity */
    push_corr(vb, rt, p, vb->k + last, s[last]);
    return;
  }
  if (f >= 2 && nz == f) { /* one member's byte, when the ratio and the other rows say so */
    int i = rt->ratio[gf_mul(s[1], gf_inv(s[0]))];
    if (i >= 0 && p < rt->lens[i]) {
      unsigned char e = gf_mul(s[0], rt->inv0[i]);
      int ok = 1;
      for (int j = 2; j < f && ok; j++) ok = gf_mul(fuze__code_coef(vb->code, j, i), e) == s[j];
      if (ok) {
        push_corr(vb, rt, p, i, e);
        return;
      }
    }
  }
  run_add(vb, 2 * vb->nm, p);
}

/* Root: classify the nonzero syndrome bytes of one piece (f slices of m). */
static void analyze(vblk *vb, vroot *rt, const unsigned char *syn, size_t m, uint64_t off) {
  int f = vb->f;
  for (size_t q = 0; q < m; q++) {
    if (!(q % VLINE) && m - q >= VLINE) { /* fast path: a clean line in every slice */
      int clean = 1;
      for (int j = 0; j < f && clean; j++) clean = all_zero(syn + (size_t)j * m + q, VLINE);
      if (clean) {
        q += VLINE - 1;
        continue;
      }
    }
    unsigned char s[FUZE_GF_MEMBERS];
    int nz = 0;
    for (int j = 0; j < f; j++) nz |= s[j] = syn[(size_t)j * m + q];
    if (nz) classify(vb, rt, s, off + q);
  }
}

/* Apply one chunk of corrections on this rank; stale[] (array primaries)
 * flags corrections whose copy matched the application's buffer. */
static void apply_chunk(vblk *vb, const vcorr *c, int n, unsigned char *data, size_t len,
                        unsigned char *mirror, const unsigned char *live, unsigned char *stale) {
  for (int t = 0; t < n; t++) {
    if (c[t].x != vb->me || c[t].p >= len) continue;
    size_t p = (size_t)c[t].p;
    if (vb->me < vb->k && live && data[p] == live[p]) {
      stale[t] = 1; /* the copy is right: the parity is fixed below */
      continue;
    }
    data[p] ^= c[t].e;
    if (mirror) mirror[p] = data[p];
  }
}

/* Hosts: the parity of a stale primary byte takes the member's error out. */
static void apply_stale(vblk *vb, const vcorr *c, int n, const unsigned char *stale,
                        unsigned char *data, size_t len, unsigned char *mirror) {
  if (vb->me < vb->k) return;
  int j = vb->me - vb->k;
  for (int t = 0; t < n; t++) {
    if (!stale[t] || c[t].p >= len) continue;
    size_t p = (size_t)c[t].p;
    data[p] ^= gf_mul(fuze__code_coef(vb->code, j, c[t].x), c[t].e);
    if (mirror) mirror[p] = data[p];
  }
}

/* Root: the tables that locate a member's error, and what is checked. */
static void root_init(vblk *vb, vroot *rt, size_t S) {
  for (int x = 0; x < VBYTES; x++) rt->ratio[x] = -1;
  for (int i = 0; i < vb->k && vb->f >= 2; i++) {
    unsigned char c0 = fuze__code_coef(vb->code, 0, i), c1 = fuze__code_coef(vb->code, 1, i);
    rt->inv0[i] = gf_inv(c0);
    rt->ratio[gf_mul(c1, rt->inv0[i])] = i;
  }
  uint64_t checked = (uint64_t)vb->f * S;
  for (int i = 0; i < vb->k; i++) checked += rt->lens[i];
  vb->st->cnt[C_BYTES] += checked;
  vb->st->cnt[C_BLOCKS]++;
}

/* This rank's share of piece [off, off + m) in st->buf: a member its f
 * coefficient products, a host its parity in its backup's slot. */
static void contribute(vblk *vb, const unsigned char *data, size_t len, size_t off, size_t m) {
  unsigned char *buf = vb->st->buf;
  int f = vb->f, k = vb->k, me = vb->me;
  if (me < k) {
    size_t valid = len > off ? (len - off < m ? len - off : m) : 0;
    unsigned char *prod[FUZE_GF_MEMBERS];
    for (int j = 0; j < f; j++) prod[j] = buf + (size_t)j * m;
    if (valid) fuze__code_delta_encode(vb->code, me, data + off, valid, prod);
    for (int j = 0; j < f && valid < m; j++) memset(prod[j] + valid, 0, m - valid);
    return;
  }
  for (int j = 0; j < f; j++)
    if (j == me - k) memcpy(buf + (size_t)j * m, data + off, m);
    else memset(buf + (size_t)j * m, 0, m);
}

/* The syndromes of the block's S bytes, piece by piece, analysed at the
 * root (rt, NULL elsewhere). */
static void syndromes(vblk *vb, vroot *rt, size_t S, const unsigned char *data, size_t len) {
  vstate *st = vb->st;
  size_t f = (size_t)vb->f, n = ((size_t)VPIECE / f) & ~(size_t)(VLINE - 1);
  if (n > S) n = S;
  for (size_t off = 0; off < S; off += n) {
    size_t m = S - off < n ? S - off : n, words = (f * m + 7) / 8;
    /* XOR is bytewise: reduce 64-bit words, the padding zero. */
    memset(st->buf + f * m, 0, words * 8 - f * m);
    contribute(vb, data, len, off, m);
    VMPI(st, MPI_Reduce(st->buf, st->res, (int)words, MPI_UINT64_T, MPI_BXOR, 0, vb->comm));
    if (rt) analyze(vb, rt, st->res, m, off);
  }
}

/* The root's located bytes, in chunks, to the whole block: each rank repairs
 * its own. An array primary whose copy matched the application flags the
 * correction stale, and the hosts repair their parity instead. */
static void spread(vblk *vb, vroot *rt, unsigned char *data, size_t len, unsigned char *mirror,
                   const unsigned char *live, int is_array) {
  vstate *st = vb->st;
  uint64_t hdr = rt ? rt->n : 0;
  VMPI(st, MPI_Bcast(&hdr, 1, MPI_UINT64_T, 0, vb->comm));
  unsigned char stale[VCHUNK];
  for (uint64_t at = 0; at < hdr; at += VCHUNK) {
    int cnt = hdr - at < VCHUNK ? (int)(hdr - at) : VCHUNK;
    vcorr *c = rt ? rt->list + at : st->cbuf;
    VMPI(st, MPI_Bcast(c, cnt * (int)sizeof *c, MPI_BYTE, 0, vb->comm));
    memset(stale, 0, (size_t)cnt);
    apply_chunk(vb, c, cnt, data, len, mirror, live, stale);
    int prim = 0;
    for (int t = 0; t < cnt; t++) prim |= c[t].x < vb->k;
    if (is_array && prim) {
      VMPI(st, MPI_Allreduce(MPI_IN_PLACE, stale, cnt, MPI_BYTE, MPI_BOR, vb->comm));
      apply_stale(vb, c, cnt, stale, data, len, mirror);
      for (int t = 0; rt && t < cnt; t++) c[t].stale = stale[t];
    }
  }
}

/* One structure's data in block b. data/len: this rank's primary bytes (len
 * <= S) or its parity (len == S); mirror: a host's copy that must stay equal
 * (working half); live: an array primary's application buffer. Every rank
 * of the block communicator calls it (me: its place there). Returns the
 * pass's unrepaired count. */
static uint64_t data_pass(vstate *st, int b, int me, size_t S, unsigned char *data, size_t len,
                          unsigned char *mirror, const unsigned char *live, int is_array) {
  static vblk vb; /* large (runs); verify is collective, so never re-entered */
  vblk_init(&vb, st, b, me, MODE_DATA);
  int root = me == 0;
  vroot *rt = root ? calloc(1, sizeof *rt) : NULL;
  int ok = !root || rt, all_ok = 0;
  VMPI(st, MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, vb.comm));
  if (!all_ok) {
    if (!st->rc) st->rc = FUZE_NOMEM(st->ctx->msg, "fuze_verify");
    free(rt);
    return 1;
  }
  uint64_t mylen = len;
  VMPI(st, MPI_Gather(&mylen, 1, MPI_UINT64_T, root ? rt->lens : NULL, 1, MPI_UINT64_T, 0,
                      vb.comm));
  if (root) root_init(&vb, rt, S);
  syndromes(&vb, rt, S, data, len);
  spread(&vb, rt, data, len, mirror, live, is_array);
  if (root) {
    for (size_t t = 0; t < rt->n; t++)
      run_add(&vb, rt->list[t].stale ? vb.nm + rt->list[t].x : rt->list[t].x, rt->list[t].p);
    runs_close(&vb);
  }
  uint64_t unrep = vb.unrep;
  VMPI(st, MPI_Bcast(&unrep, 1, MPI_UINT64_T, 0, vb.comm));
  if (rt) free(rt->list);
  free(rt);
  return unrep;
}

/* Host, committed state: the working parity must equal the committed one. */
static void working_check(vstate *st, int b, int me, const unsigned char *committed,
                          unsigned char *working, size_t len) {
  static vblk vb;
  vblk_init(&vb, st, b, me, MODE_WORKING);
  for (size_t off = 0; off < len; off += VCMP) {
    size_t m = len - off < VCMP ? len - off : VCMP;
    if (!memcmp(committed + off, working + off, m)) continue;
    for (size_t q = off; q < off + m; q++)
      if (committed[q] != working[q]) run_add(&vb, 0, q);
    memcpy(working + off, committed + off, m);
  }
  runs_close(&vb);
}

/* This rank's place in block b's communicator; -1 when the call failed
 * (recorded in st->rc). */
static int block_rank(vstate *st, int b) {
  int me = -1;
  return VMPI(st, MPI_Comm_rank(st->ctx->block_comm[b], &me)) ? me : -1;
}

/* ---- arrays ---- */

static const fuze_hosted *hosted_of(const fuze_hosted *h, int n, int b, int j) {
  for (int x = 0; x < n; x++)
    if (h[x].block == b && h[x].j == j) return &h[x];
  return NULL;
}

static void verify_array(vstate *st, fuze_array *a) {
  fuze_ctx *ctx = st->ctx;
  const fuze_plan *p = &ctx->plan;
  vkeep(st, fuze__win_sync(&ctx->net, a->win));
  for (int b = 0; b < p->nblocks; b++) {
    if (ctx->block_comm[b] == MPI_COMM_NULL || !a->fused[b]) continue;
    int me = block_rank(st, b), k = p->block_start[b + 1] - p->block_start[b];
    if (me < 0) continue;
    size_t S = a->fused[b];
    unsigned char *data = NULL, *mirror = NULL;
    size_t len = 0;
    if (me < k) {
      data = a->shadow;
      len = a->bytes;
    } else {
      const fuze_hosted *h = hosted_of(a->hosted, a->nhosted, b, me - k);
      mirror = a->winbase + h->off;
      data = fuze__array_committed(a, (int)(h - a->hosted));
      len = S;
    }
    uint64_t unrep = data_pass(st, b, me, S, data, len, mirror, me < k ? a->base : NULL, 1);
    if (me >= k && !unrep) working_check(st, b, me, data, mirror, S);
  }
  vkeep(st, fuze__win_sync(&ctx->net, a->win));
}

/* ---- stacks and maps ---- */

/* An index record: (count, seq), then the keys of slots 0..cap-1. */
static size_t index_len(const fuze_fobj *f) { return FUZE_HDR_BYTES + f->cap * f->kb; }

/* This rank's copy of member i's index record (zeros beyond the count). */
static void index_record(const fuze_fobj *f, const unsigned char *region, int k, int i, int me,
                         unsigned char *rec) {
  if (me < k) {
    uint64_t h[2] = {(uint64_t)f->n, f->seq};
    memset(rec, 0, index_len(f));
    memcpy(rec, h, FUZE_HDR_BYTES);
    if (f->kb && f->n) memcpy(rec + FUZE_HDR_BYTES, f->keys, f->n * f->kb);
    return;
  }
  fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  memcpy(rec, region + fuze__hdr_off(i), FUZE_HDR_BYTES);
  if (f->kb)
    memcpy(rec + FUZE_HDR_BYTES, region + l.keys_off + (size_t)i * f->cap * f->kb, f->cap * f->kb);
}

/* Write the decided bytes of member i's record into this rank's copy. */
static void index_apply(fuze_fobj *f, unsigned char *region, unsigned char *mirror, int k, int i,
                        int me, const unsigned char *truth, const unsigned char *mask) {
  const size_t H = FUZE_HDR_BYTES;
  if (me < k) { /* the primary: its keys of live slots (count and seq are its own) */
    for (size_t q = H; q < H + f->n * f->kb; q++)
      if (mask[q]) f->keys[q - H] = truth[q];
    return;
  }
  fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
  for (size_t q = 0; q < index_len(f); q++) {
    if (!mask[q]) continue;
    size_t at = q < H ? fuze__hdr_off(i) + q : l.keys_off + (size_t)i * f->cap * f->kb + q - H;
    region[at] = truth[q];
    if (mirror) mirror[at] = truth[q];
  }
}

/* The rows of every block-comm rank's index crcs fit in st->res. */
_Static_assert((size_t)FUZE_GF_MEMBERS * FUZE_GF_MEMBERS * sizeof(uint64_t) <= VPIECE,
               "k members' index crcs of k + f ranks fit a syndrome piece");

/* Which members' index copies differ (bad[i], every rank): the crc64 of every
 * copy, compared at the root. */
static void index_suspects(vblk *vb, const fuze_fobj *f, const unsigned char *region,
                           unsigned char *rec, unsigned char *bad) {
  vstate *st = vb->st;
  int k = vb->k, F = vb->f, me = vb->me;
  size_t L = index_len(f);
  uint64_t row[FUZE_GF_MEMBERS] = {0}, *rows = (uint64_t *)st->res;
  for (int i = 0; i < k; i++) {
    if (me < k && i != me) continue;
    index_record(f, region, k, i, me, rec);
    row[i] = crc64_ecma_refl(0, rec, L);
  }
  VMPI(st, MPI_Gather(row, k, MPI_UINT64_T, rows, k, MPI_UINT64_T, 0, vb->comm));
  if (me == 0) {
    st->cnt[C_BYTES] += (uint64_t)(F + 1) * k * L;
    for (int i = 0; i < k; i++)
      for (int j = 0; j < F; j++) bad[i] |= rows[(size_t)(k + j) * k + i] != rows[(size_t)i * k + i];
  }
  VMPI(st, MPI_Bcast(bad, k, MPI_BYTE, 0, vb->comm));
}

/* The value held by a strict majority of v[0..n), as an index into v; -1: none. */
static int majority(const unsigned char *v, int n) {
  int best = -1, bestn = 0;
  for (int c = 0; c < n; c++) {
    int cnt = 0;
    for (int d = 0; d < n; d++) cnt += v[d] == v[c];
    if (cnt > bestn) bestn = cnt, best = c;
  }
  return 2 * bestn <= n ? -1 : best;
}

/* Root: member i's F + 1 index copies (the primary's, then backup j's at
 * j + 1) byte by byte: truth/mask where a majority differs from some copy,
 * findings into vb's runs. Returns 1 when some byte was decided. */
static int index_vote(vblk *vb, const fuze_fobj *f, int i, const unsigned char *copies,
                      unsigned char *truth, unsigned char *mask) {
  int F = vb->f, k = vb->k, nm = vb->nm, any = 0;
  size_t L = index_len(f);
  uint64_t n_primary;
  memcpy(&n_primary, copies, sizeof n_primary);
  memset(mask, 0, L);
  for (size_t q = 0; q < L; q++) {
    unsigned char v[FUZE_GF_MEMBERS + 1];
    int same = 1;
    for (int c = 0; c <= F; c++) {
      v[c] = copies[(size_t)c * L + q];
      same &= v[c] == v[0];
    }
    if (same) continue;
    int best = majority(v, F + 1);
    if (best < 0) {
      run_add(vb, 2 * nm, q);
      continue;
    }
    truth[q] = v[best];
    mask[q] = 1;
    any = 1;
    for (int c = 0; c <= F; c++) {
      if (v[c] == v[best]) continue;
      int x = c == 0 ? i : k + c - 1;
      int fixable = c > 0 || (q >= FUZE_HDR_BYTES && (q - FUZE_HDR_BYTES) / f->kb < n_primary);
      run_add(vb, fixable ? x : nm + x, q);
    }
  }
  runs_close(vb);
  return any;
}

/* Member i's index copies (its own, the f backups' replicas) to the root,
 * voted there, and the decided bytes written back by every holder. */
static void index_member(vblk *vb, fuze_fobj *f, int i, unsigned char *region,
                         unsigned char *mirror, unsigned char *scratch) {
  vstate *st = vb->st;
  int k = vb->k, F = vb->f, me = vb->me, mine = me == i || me >= k, any = 0;
  size_t L = index_len(f);
  unsigned char *rec = scratch, *copies = scratch + L, *truth = copies + (size_t)(F + 1) * L,
                *mask = truth + L;
  int counts[FUZE_GF_MEMBERS2], displs[FUZE_GF_MEMBERS2];
  vb->member = i;
  if (mine) index_record(f, region, k, i, me, rec);
  for (int x = 0; x < vb->nm; x++) {
    counts[x] = x == i || x >= k ? (int)L : 0;
    displs[x] = x == i ? 0 : x >= k ? (x - k + 1) * (int)L : 0;
  }
  VMPI(st, MPI_Gatherv(rec, mine ? (int)L : 0, MPI_BYTE, copies, counts, displs, MPI_BYTE, 0,
                       vb->comm));
  if (me == 0) any = index_vote(vb, f, i, copies, truth, mask);
  VMPI(st, MPI_Bcast(&any, 1, MPI_INT, 0, vb->comm));
  if (!any) return;
  VMPI(st, MPI_Bcast(truth, (int)L, MPI_BYTE, 0, vb->comm));
  VMPI(st, MPI_Bcast(mask, (int)L, MPI_BYTE, 0, vb->comm));
  if (mine) index_apply(f, region, mirror, k, i, me, truth, mask);
}

/* Index copies of block b: crc64 first, bytes only where they differ. */
static uint64_t index_pass(vstate *st, fuze_fobj *f, int b, int me, unsigned char *region,
                           unsigned char *mirror, unsigned char *scratch) {
  static vblk vb;
  vblk_init(&vb, st, b, me, MODE_INDEX);
  unsigned char bad[FUZE_GF_MEMBERS] = {0};
  index_suspects(&vb, f, region, scratch, bad);
  for (int i = 0; i < vb.k; i++)
    if (bad[i]) index_member(&vb, f, i, region, mirror, scratch);
  uint64_t unrep = vb.unrep;
  VMPI(st, MPI_Bcast(&unrep, 1, MPI_UINT64_T, 0, vb.comm));
  return unrep;
}

static void verify_fobj(vstate *st, fuze_fobj *f, unsigned char *scratch) {
  fuze_ctx *ctx = st->ctx;
  const fuze_plan *p = &ctx->plan;
  int half = st->live ? 0 : 1;
  if (!f->excl) vkeep(st, fuze__win_sync(&ctx->net, f->win));
  for (int b = 0; b < p->nblocks; b++) {
    if (ctx->block_comm[b] == MPI_COMM_NULL) continue;
    int me = block_rank(st, b), k = p->block_start[b + 1] - p->block_start[b];
    if (me < 0) continue;
    fuze_fobj_layout l = fuze__fobj_layout(k, f->cap, f->kb, f->nb);
    unsigned char *region = NULL, *mirror = NULL;
    if (me >= k) {
      const fuze_hosted *h = hosted_of(f->hosted, f->nhosted, b, me - k);
      region = f->winbase + h->off + (size_t)half * h->fused;
      if (!st->live) mirror = f->winbase + h->off;
    }
    uint64_t unrep = index_pass(st, f, b, me, region, mirror, scratch);
    size_t S = f->cap * f->nb;
    if (me < k)
      unrep += data_pass(st, b, me, S, f->vals, f->n * f->nb, NULL, NULL, 0);
    else
      unrep += data_pass(st, b, me, S, region + l.nodes_off, S,
                         mirror ? mirror + l.nodes_off : NULL, NULL, 0);
    if (me >= k && mirror && !unrep) working_check(st, b, me, region, mirror, l.bytes);
  }
  if (!f->excl) vkeep(st, fuze__win_sync(&ctx->net, f->win));
}

/* ---- the collective ---- */

static const char *kind_name(int kind) {
  switch (kind) {
    case FUZE_VERIFY_PRIMARY: return "primary copy";
    case FUZE_VERIFY_PARITY: return "backup parity";
    case FUZE_VERIFY_STALE: return "stale parity of every backup";
    case FUZE_VERIFY_INDEX: return "index copy";
    case FUZE_VERIFY_WORKING: return "working parity";
    case FUZE_VERIFY_UNLOCATED: return "not located";
    default: return "?";
  }
}

static int cmp_vent(const void *x, const void *y) {
  const vent *a = x, *b = y;
  if (a->s != b->s) return a->s < b->s ? -1 : 1;
  if (a->b != b->b) return a->b < b->b ? -1 : 1;
  if (a->src != b->src) return a->src < b->src ? -1 : 1;
  return a->ord < b->ord ? -1 : a->ord > b->ord;
}

/* Every rank's first entries to every rank, in (structure, block) order. rc:
 * this rank's error so far; a rank that cannot take part says so and every
 * rank skips the exchange. Not agreed. */
static int gather_entries(vstate *st, fuze_verify_report *r, int rc) {
  fuze_ctx *ctx = st->ctx;
  int n = st->nents, *counts = malloc(sizeof(int) * (size_t)ctx->size);
  int *displs = malloc(sizeof(int) * (size_t)ctx->size);
  vent *all = malloc(sizeof(vent) * FUZE_VERIFY_MAX_ENTRIES * (size_t)ctx->size);
  if (!rc && !(counts && displs && all)) rc = FUZE_NOMEM(ctx->msg, "fuze_verify");
  int ok = !rc, all_ok = 0, total = 0;
  FUZE_MPI_KEEP(rc, ctx->msg, MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, ctx->net.comm));
  if (all_ok && !rc &&
      FUZE_MPI_KEEP(rc, ctx->msg, MPI_Allgather(&n, 1, MPI_INT, counts, 1, MPI_INT, ctx->net.comm))) {
    for (int x = 0; x < ctx->size; x++) {
      displs[x] = total * (int)sizeof(vent);
      total += counts[x];
      counts[x] *= (int)sizeof(vent);
    }
    if (FUZE_MPI_KEEP(rc, ctx->msg, MPI_Allgatherv(st->ents, n * (int)sizeof(vent), MPI_BYTE, all,
                                                   counts, displs, MPI_BYTE, ctx->net.comm))) {
      qsort(all, (size_t)total, sizeof *all, cmp_vent);
      r->nentries = total < FUZE_VERIFY_MAX_ENTRIES ? total : FUZE_VERIFY_MAX_ENTRIES;
      for (int x = 0; x < r->nentries; x++) r->entries[x] = all[x].e;
    }
  }
  free(counts);
  free(displs);
  free(all);
  return rc;
}

static void print_report(const fuze_ctx *ctx, const fuze_verify_report *r) {
  if (!ctx->cfg.verbose || ctx->rank != 0) return;
  printf("fuze: verify #%llu (epoch %llu%s): %llu blocks, %llu bytes checked in %.3f s: "
         "%llu mismatching range(s), %llu repaired, %llu not\n", (unsigned long long)r->run,
         (unsigned long long)r->epoch, r->live ? ", stacks and maps live" : "",
         (unsigned long long)r->blocks, (unsigned long long)r->bytes, r->seconds,
         (unsigned long long)r->mismatches, (unsigned long long)r->repaired,
         (unsigned long long)r->unrepaired);
  for (int x = 0; x < r->nentries; x++) {
    const fuze_verify_entry *e = &r->entries[x];
    char who[96] = "";
    if (e->rank >= 0 && e->backup >= 0)
      snprintf(who, sizeof who, " of rank %d (backup %d)", e->rank, e->backup);
    else if (e->rank >= 0)
      snprintf(who, sizeof who, " of rank %d", e->rank);
    char whose[64] = "";
    if (e->member >= 0)
      snprintf(whose, sizeof whose, " (index of rank %d%s)", e->member,
               e->rank < 0 ? ": the copies have no majority" : "");
    printf("fuze:   '%s' block %d: %s%s%s, bytes [%llu, %llu) (%llu wrong): %s\n", e->name,
           e->block, kind_name(e->kind), who, whose, (unsigned long long)e->offset,
           (unsigned long long)(e->offset + e->length), (unsigned long long)e->bytes,
           e->repaired ? "repaired" : "NOT repaired");
  }
  if (r->mismatches > (uint64_t)r->nentries)
    printf("fuze:   (%llu more ranges not listed)\n",
           (unsigned long long)(r->mismatches - (uint64_t)r->nentries));
  fflush(stdout);
}

static int corrupt_message(fuze_ctx *ctx, const fuze_verify_report *r) {
  const fuze_verify_entry *e = NULL;
  for (int x = 0; x < r->nentries && !e; x++)
    if (!r->entries[x].repaired) e = &r->entries[x];
  char where[320] = "(not among the listed entries)";
  if (e) {
    char who[64] = "";
    if (e->rank >= 0) snprintf(who, sizeof who, " on rank %d", e->rank);
    snprintf(where, sizeof where, "first: '%s' block %d, %s%s, bytes [%llu, %llu)", e->name,
             e->block, kind_name(e->kind), who, (unsigned long long)e->offset,
             (unsigned long long)(e->offset + e->length));
  }
  const char *why = ctx->plan.f == 1
                        ? "faults=1 detects a mismatch but cannot tell which copy is wrong"
                        : "more copies are wrong at the same offset than the code can attribute";
  return CTX_ERR(ctx, FUZE_ERR_CORRUPT,
                 "fuze_verify: %llu corrupt range(s) could not be repaired (%llu were); %s (%s); "
                 "recovery from this epoch may be wrong for the blocks named",
                 (unsigned long long)r->unrepaired, (unsigned long long)r->repaired, where, why);
}

/* Nobody lost, and the stacks' and maps' outstanding operations completed
 * (as a checkpoint does). Collective, agreed. */
static int verify_ready(fuze_ctx *ctx) {
  int any = fuze__any(&ctx->net, ctx->lost);
  int rc = fuze__agree(&ctx->net, any < 0 ? any : FUZE_SUCCESS);
  if (rc) return rc;
  if (any)
    return CTX_ERR(ctx, FUZE_ERR_STATE, "fuze_verify: ranks were lost; call fuze_recover() or "
                   "fuze_checkpoint() first");
  if ((rc = fuze__agree(&ctx->net, fuze__fobjs_flush(ctx)))) return rc;
  return fuze__fobjs_grow(ctx);
}

/* The index passes' scratch: a record, f + 1 copies, the truth and the mask. */
static size_t scratch_bytes(const fuze_ctx *ctx) {
  size_t n = 1;
  for (int x = 0; x < ctx->nfobjs; x++) {
    size_t L = index_len(ctx->fobjs[x]);
    if ((size_t)(ctx->plan.f + 4) * L > n) n = (size_t)(ctx->plan.f + 4) * L;
  }
  return n;
}

/* Every structure, every block. Collective, agreed. */
static int verify_all(vstate *st) {
  fuze_ctx *ctx = st->ctx;
  int mine = fuze__fobjs_ops(ctx) != ctx->ops_committed;
  int rc = FUZE_MPI(ctx->msg, MPI_Allreduce(&mine, &st->live, 1, MPI_INT, MPI_MAX, ctx->net.comm));
  st->buf = malloc(VPIECE + VSLACK);
  st->res = malloc(VPIECE + VSLACK);
  st->cbuf = malloc(sizeof(vcorr) * VCHUNK);
  unsigned char *scratch = malloc(scratch_bytes(ctx));
  if (!rc && !(st->buf && st->res && st->cbuf && scratch)) rc = FUZE_NOMEM(ctx->msg, "fuze_verify");
  if (!(rc = fuze__agree(&ctx->net, rc))) {
    for (int x = 0; x < ctx->narrays; x++) {
      st->s = x;
      st->name = ctx->arrays[x]->name;
      verify_array(st, ctx->arrays[x]);
    }
    for (int x = 0; x < ctx->nfobjs; x++) {
      st->s = ctx->narrays + x;
      st->name = ctx->fobjs[x]->name;
      verify_fobj(st, ctx->fobjs[x], scratch);
    }
    rc = fuze__agree(&ctx->net, st->rc);
  }
  free(st->buf);
  free(st->res);
  free(st->cbuf);
  free(scratch);
  return rc;
}

/* Every rank's counts and entries in one report, on every rank. Collective, agreed. */
static int summarize(vstate *st, fuze_verify_report *r, double t0) {
  fuze_ctx *ctx = st->ctx;
  uint64_t tot[C_N];
  memset(r, 0, sizeof *r);
  int rc = FUZE_MPI(ctx->msg, MPI_Allreduce(st->cnt, tot, C_N, MPI_UINT64_T, MPI_SUM, ctx->net.comm));
  if ((rc = fuze__agree(&ctx->net, gather_entries(st, r, rc)))) return rc;
  double el = MPI_Wtime() - t0;
  rc = FUZE_MPI(ctx->msg, MPI_Allreduce(&el, &r->seconds, 1, MPI_DOUBLE, MPI_MAX, ctx->net.comm));
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  r->run = ++ctx->verifies;
  r->epoch = ctx->epoch;
  r->live = st->live && ctx->nfobjs;
  r->blocks = tot[C_BLOCKS];
  r->bytes = tot[C_BYTES];
  r->mismatches = tot[C_FOUND];
  r->repaired = tot[C_REP];
  if (r->repaired) ctx->pforce = 1; /* repaired bytes carry no persist_base change marks */
  r->unrepaired = tot[C_UNREP];
  r->bad_bytes = tot[C_BAD];
  return FUZE_SUCCESS;
}

int fuze__verify_collective(fuze_ctx *ctx, fuze_verify_report *out) {
  double t0 = MPI_Wtime();
  int rc = verify_ready(ctx);
  if (rc) return rc;
  vstate st;
  memset(&st, 0, sizeof st);
  st.ctx = ctx;
  fuze_verify_report r;
  if ((rc = verify_all(&st)) || (rc = summarize(&st, &r, t0))) return rc;
  ctx->vlast = r;
  if (out) *out = r;
  print_report(ctx, &r);
  if (r.unrepaired) return corrupt_message(ctx, &r);
  return r.repaired ? FUZE_RECOVERED : FUZE_SUCCESS;
}

int fuze_verify_last(const fuze_ctx *ctx, fuze_verify_report *report) {
  if (!ctx)
    return FUZE_ERR(FUZE_ERR_ARG, "fuze_verify_last: ctx is NULL (not initialised, or used after "
                    "fuze_finalize)");
  if (!report) return FUZE_ERR(FUZE_ERR_ARG, "fuze_verify_last: report is NULL");
  if (!ctx->verifies)
    return FUZE_ERR(FUZE_ERR_NOT_FOUND, "fuze_verify_last: no verification has run yet "
                    "(call fuze_verify or set verify_every)");
  fuze_ctx *c = (fuze_ctx *)ctx; /* the report is written by collective calls */
  int rc = fuze__local_enter(c, "fuze_verify_last");
  if (rc) return rc;
  *report = ctx->vlast;
  fuze__local_leave(c);
  return FUZE_SUCCESS;
}

int fuze__verify_after_commit(fuze_ctx *ctx) {
  fuze__inject_corrupt(ctx);
  if (ctx->cfg.verify_every <= 0 || ctx->ckpt_calls % ctx->cfg.verify_every) return FUZE_SUCCESS;
  int rc = fuze__verify_collective(ctx, NULL);
  return rc == FUZE_RECOVERED ? FUZE_SUCCESS : rc;
}
