/* byz: replica placement and the Fig. 6 recovery algorithm (see byz.h). */
#include "core/byz.h"

#include "core/limits.h"

#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fuze__byz_place(const int *domain, int nranks, int ndomains, int f, int *out) {
  if (!domain || !out || nranks < 1 || f < 1 || ndomains <= f) return -1;
  int *cnt = calloc((size_t)ndomains, sizeof *cnt), *pos = malloc(sizeof(int) * (size_t)nranks);
  int *start = calloc((size_t)ndomains + 1, sizeof *start), *list = malloc(sizeof(int) * (size_t)nranks);
  int rc = cnt && pos && start && list ? 0 : -1;
  for (int r = 0; !rc && r < nranks; r++) {
    if (domain[r] < 0 || domain[r] >= ndomains) rc = -1;
    else pos[r] = cnt[domain[r]]++;
  }
  for (int d = 0; !rc && d < ndomains; d++) {
    if (!cnt[d]) rc = -1;
    start[d + 1] = start[d] + cnt[d];
  }
  for (int r = 0; !rc && r < nranks; r++) list[start[domain[r]] + pos[r]] = r;
  for (int r = 0; !rc && r < nranks; r++)
    for (int c = 1; c <= f; c++) {
      int d = (domain[r] + c) % ndomains;
      out[r * f + c - 1] = list[start[d] + pos[r] % cnt[d]];
    }
  free(cnt);
  free(pos);
  free(start);
  free(list);
  return rc;
}

unsigned char fuze__byz_decode_byte(const fuze_code *code, int j, int c,
                                    unsigned char *const *src, const unsigned char *parity,
                                    size_t w) {
  unsigned char v = parity[w];
  for (int i = 0; i < code->k; i++)
    if (i != c) v ^= gf_mul(fuze__code_coef(code, j, i), src[i][w]);
  return gf_mul(v, gf_inv(fuze__code_coef(code, j, c)));
}

typedef struct bctx {
  const fuze_byz_block *in;
  int k, f, f1;
  unsigned char *out;     /* discarded/bad flags, k * f1 + f */
  unsigned char *bidx;    /* backup j discarded for a wrong index replica */
} bctx;

static int same_copy(const bctx *b, int x, int y) {
  const fuze_byz_block *in = b->in;
  if (memcmp(in->copy[x], in->copy[y], in->len)) return 0;
  return !in->ilen || !memcmp(in->icopy[x], in->icopy[y], in->ilen);
}

/* Largest group of equal copies of primary i among those not flagged:
 * returns its size, *rep a member, *tie whether another group is as large. */
static int multiplicity(const bctx *b, int i, int *rep, int *tie, int *groups) {
  int best = 0, ng = 0, seen[FUZE_GF_MEMBERS] = {0};
  *tie = 0;
  *rep = -1;
  for (int c = 0; c < b->f1; c++) {
    int x = i * b->f1 + c;
    if (b->out[x] || seen[c]) continue;
    int m = 1;
    ng++;
    for (int d = c + 1; d < b->f1; d++) {
      int y = i * b->f1 + d;
      if (!b->out[y] && !seen[d] && same_copy(b, x, y)) seen[d] = 1, m++;
    }
    if (m > best) best = m, *rep = x, *tie = 0;
    else if (m == best) *tie = 1;
  }
  if (groups) *groups = ng;
  return best;
}

/* Index vote for primary i: 2f + 1 versions (the copies' and the backups');
 * flags the copies and backups that disagree with the version of multiplicity
 * >= f + 1. Returns 0, or -1 when no version has it. */
static int index_vote(bctx *b, int i, char *msg, size_t mlen) {
  const fuze_byz_block *in = b->in;
  int n = 0;
  const unsigned char *v[FUZE_GF_MEMBERS2]; /* 2f + 1 versions */
  int who[FUZE_GF_MEMBERS2];
  for (int c = 0; c < b->f1; c++) v[n] = in->icopy[i * b->f1 + c], who[n++] = c;
  for (int j = 0; j < b->f; j++) v[n] = in->ipar[j * b->k + i], who[n++] = b->f1 + j;
  int truth = -1;
  for (int x = 0; x < n && truth < 0; x++) {
    int m = 0;
    for (int y = 0; y < n; y++) m += !memcmp(v[x], v[y], in->ilen);
    if (m >= b->f + 1) truth = x;
  }
  if (truth < 0) {
    snprintf(msg, mlen, "primary %d: no index version has multiplicity %d among %d", i, b->f + 1, n);
    return -1;
  }
  for (int x = 0; x < n; x++) {
    if (!memcmp(v[x], v[truth], in->ilen)) continue;
    if (who[x] < b->f1) b->out[i * b->f1 + who[x]] = 1;
    else b->bidx[who[x] - b->f1] = 1;
  }
  return 0;
}

/* Locate the correct copy of primary c (the only mismatched one); the other
 * primaries' truths are known. Returns the copy, or -1 with msg. */
static int locate(bctx *b, int c, const int *truth, char *msg, size_t mlen) {
  const fuze_byz_block *in = b->in;
  int f1 = b->f1, Z[FUZE_GF_MEMBERS], nz = 0;
  for (int x = 0; x < f1; x++)
    if (!b->out[c * f1 + x]) Z[nz++] = c * f1 + x;
  if (!nz) {
    snprintf(msg, mlen, "primary %d: every copy has a wrong index", c);
    return -1;
  }
  unsigned char *src[FUZE_GF_MEMBERS];
  for (int i = 0; i < b->k; i++) src[i] = i == c ? NULL : in->copy[truth[i]];
  for (;;) {
    size_t w = in->len;
    for (int z = 1; z < nz; z++) {
      const unsigned char *p = in->copy[Z[0]], *q = in->copy[Z[z]];
      size_t lim = w;
      for (size_t r = 0; r < lim; r++)
        if (p[r] != q[r]) {
          w = r;
          break;
        }
    }
    if (w == in->len) return Z[0]; /* every copy in Z is identical */
    unsigned char Y[FUZE_GF_MEMBERS2]; /* the copies and f decodes */
    int ny = 0, v = -1;
    for (int z = 0; z < nz; z++) Y[ny++] = in->copy[Z[z]][w];
    for (int j = 0; j <= b->f && v < 0; j++) {
      if (j > 0) {
        if (b->bidx[j - 1]) continue;
        Y[ny++] = fuze__byz_decode_byte(in->code, j - 1, c, src, in->parity[j - 1], w);
      }
      for (int y = 0; y < ny && v < 0; y++) {
        int m = 0;
        for (int x = 0; x < ny; x++) m += Y[x] == Y[y];
        if (m >= b->f + 1) v = Y[y];
      }
    }
    if (v < 0) {
      snprintf(msg, mlen, "primary %d byte %zu: no value has multiplicity %d among %d copies "
               "and decodes", c, w, b->f + 1, ny);
      return -1;
    }
    int kept = 0;
    for (int z = 0; z < nz; z++)
      if (in->copy[Z[z]][w] == v) Z[kept++] = Z[z];
      else b->out[Z[z]] = 1;
    nz = kept;
    if (!nz) {
      snprintf(msg, mlen, "primary %d byte %zu: no copy holds the value of multiplicity %d", c,
               w, b->f + 1);
      return -1;
    }
  }
}

/* Every copy of primary i that differs from copy rep is faulty. */
static void flag_others(bctx *b, int i, int rep) {
  for (int c = 0; c < b->f1; c++)
    if (!same_copy(b, i * b->f1 + c, rep)) b->out[i * b->f1 + c] = 1;
}

/* 2. The mismatched primaries (copies differ, or one was flagged by the index
 * vote): truth[i] is the copy of largest multiplicity; while more than one is
 * mismatched, the one with the largest multiplicity is taken as known. *last
 * is the one left (-1: none). Returns 0, or -1 with msg (uncorrectable). */
static int reduce_mismatched(bctx *b, int *truth, int *last, char *msg, size_t mlen) {
  int k = b->k, f1 = b->f1, mism[FUZE_GF_MEMBERS], t = 0;
  for (int i = 0; i < k; i++) {
    int rep, tie, groups, touched = 0;
    for (int c = 0; c < f1; c++) touched |= b->out[i * f1 + c];
    multiplicity(b, i, &rep, &tie, &groups);
    truth[i] = rep;
    if (groups > 1 || touched) mism[t++] = i;
  }
  if (t > b->f) {
    snprintf(msg, mlen, "%d primaries are mismatched, more than faults=%d", t, b->f);
    return -1;
  }
  while (t > 1) {
    int best = -1, bm = -1, brep = -1, btie = 0;
    for (int x = 0; x < t; x++) {
      int rep, tie, m = multiplicity(b, mism[x], &rep, &tie, NULL);
      if (m > bm) best = x, bm = m, brep = rep, btie = tie;
    }
    if (btie || brep < 0) {
      snprintf(msg, mlen,
               "primary %d: two versions of equal multiplicity %d while %d primaries "
               "are mismatched",
               mism[best], bm, t);
      return -1;
    }
    truth[mism[best]] = brep;
    flag_others(b, mism[best], brep);
    mism[best] = mism[--t];
  }
  *last = t ? mism[0] : -1;
  return 0;
}

/* 4. Backups against a re-encode of the correct primaries (into dst[j]):
 * flags the backups whose parity or index replicas differ. */
static void check_backups(bctx *b, const int *truth, unsigned char **dst) {
  const fuze_byz_block *in = b->in;
  unsigned char *src[FUZE_GF_MEMBERS];
  for (int i = 0; i < b->k; i++) src[i] = in->copy[truth[i]];
  if (in->len) fuze__code_encode(in->code, src, dst, in->len);
  for (int j = 0; j < b->f; j++) {
    int bad = b->bidx[j] || memcmp(dst[j], in->parity[j], in->len) != 0;
    for (int i = 0; in->ilen && i < b->k && !bad; i++)
      bad = memcmp(in->ipar[j * b->k + i], in->icopy[truth[i]], in->ilen) != 0;
    b->out[b->k * b->f1 + j] = (unsigned char)bad;
  }
}

/* "primary 1 copy 0, backup 0": the faulty objects. */
static void describe(const bctx *b, char *msg, size_t mlen) {
  int kf1 = b->k * b->f1;
  size_t len = 0;
  for (int x = 0; x < kf1 + b->f && len < mlen - 24; x++)
    if (b->out[x] && x < kf1)
      len += (size_t)snprintf(msg + len, mlen - len, "%sprimary %d copy %d", len ? ", " : "",
                              x / b->f1, x % b->f1);
    else if (b->out[x])
      len += (size_t)snprintf(msg + len, mlen - len, "%sbackup %d", len ? ", " : "", x - kf1);
}

/* Every faulty copy overwritten with the correct one, every faulty backup
 * with its re-encode dst[j] (and its index replicas with the correct ones). */
static void apply_fixes(const bctx *b, const int *truth, unsigned char *const *dst) {
  const fuze_byz_block *in = b->in;
  for (int x = 0; x < b->k * b->f1; x++) {
    if (!b->out[x]) continue;
    int tr = truth[x / b->f1];
    memcpy(in->copy[x], in->copy[tr], in->len);
    if (in->ilen) memcpy(in->icopy[x], in->icopy[tr], in->ilen);
  }
  for (int j = 0; j < b->f; j++) {
    if (!b->out[b->k * b->f1 + j]) continue;
    memcpy(in->parity[j], dst[j], in->len);
    for (int i = 0; in->ilen && i < b->k; i++)
      memcpy(in->ipar[j * b->k + i], in->icopy[truth[i]], in->ilen);
  }
}

int fuze__byz_check_block(const fuze_byz_block *in, fuze_byz_result *res, int apply) {
  int k = in->k, f = in->f, f1 = f + 1, nobj = k * f1 + f;
  res->status = FUZE_BYZ_CLEAN;
  res->nbad = 0;
  res->msg[0] = 0;
  if (k < 1 || f < 1 || f1 > FUZE_GF_MEMBERS || k > FUZE_GF_MEMBERS) {
    snprintf(res->msg, sizeof res->msg, "bad block shape k=%d f=%d", k, f);
    return res->status = FUZE_BYZ_UNCORRECTABLE;
  }
  unsigned char *flags = calloc((size_t)nobj + (size_t)f, 1);
  unsigned char *enc = malloc((size_t)f * (in->len ? in->len : 1));
  if (!flags || !enc) {
    free(flags);
    free(enc);
    return -1;
  }
  bctx b = {in, k, f, f1, flags, flags + nobj};
  int *truth = res->truth, rc = FUZE_BYZ_CLEAN, last = -1;
  char *msg = res->msg;
  size_t mlen = sizeof res->msg;
  /* 1. Index/aux parts: 2f + 1 versions per primary. */
  for (int i = 0; in->ilen && i < k && rc == FUZE_BYZ_CLEAN; i++)
    if (index_vote(&b, i, msg, mlen)) rc = FUZE_BYZ_UNCORRECTABLE;
  /* 2. Mismatched primaries, reduced to one by multiplicity. */
  if (rc == FUZE_BYZ_CLEAN && reduce_mismatched(&b, truth, &last, msg, mlen))
    rc = FUZE_BYZ_UNCORRECTABLE;
  /* 3. Locate the last mismatched primary with the fused backups. */
  if (rc == FUZE_BYZ_CLEAN && last >= 0) {
    int x = locate(&b, last, truth, msg, mlen);
    if (x < 0)
      rc = FUZE_BYZ_UNCORRECTABLE;
    else
      truth[last] = x, flag_others(&b, last, x);
  }
  /* 4. Backups against a re-encode of the correct primaries. */
  unsigned char *dst[FUZE_GF_MEMBERS];
  for (int j = 0; j < f; j++) dst[j] = enc + (size_t)j * in->len;
  if (rc == FUZE_BYZ_CLEAN) {
    check_backups(&b, truth, dst);
    for (int x = 0; x < nobj; x++) res->nbad += flags[x];
    if (res->nbad > f) {
      snprintf(msg, mlen, "%d faulty copies and backups, more than faults=%d", res->nbad, f);
      rc = FUZE_BYZ_UNCORRECTABLE;
    } else if (res->nbad) {
      rc = FUZE_BYZ_CORRECTED;
      describe(&b, msg, mlen);
    }
  }
  if (rc == FUZE_BYZ_UNCORRECTABLE) res->nbad = 0;
  if (res->bad) memcpy(res->bad, flags, (size_t)nobj);
  if (rc == FUZE_BYZ_CORRECTED && apply) apply_fixes(&b, truth, dst);
  free(flags);
  free(enc);
  return res->status = rc;
}
