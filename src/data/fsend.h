/* fsend: the sending path of a fused stack/map (data/fsend.c) as the fused
 * object (data/fobj.c) sees it, and the bits of the object the path needs.
 * Internal to those two files; the layers above use data/fused.h.
 *
 * An operation of primary i of block b changes a few slots. Each change is a
 * "piece": a value delta for a fused node (sent as its f coefficient
 * products), a key delta for i's index replica, or the (count, seq) delta of
 * i's header. */
#ifndef FUZE_FSEND_H
#define FUZE_FSEND_H

#include "data/fused.h"

#include <stdint.h>
#include <string.h>

enum { PIECE_NODE = 0, PIECE_KEY = 1, PIECE_HDR = 2 };
/* Pieces of one operation at most (a remove has 5). */
#define FUZE_OP_PIECES 8

typedef struct fuze_piece {
  int type;
  size_t s;
  const unsigned char *delta; /* nb, kb or FUZE_HDR_BYTES bytes */
} fuze_piece;

/* Header piece: (count, seq) old xor new. */
static inline void fuze__hdr_delta(unsigned char *d, size_t n0, size_t n1, uint64_t s0,
                                   uint64_t s1) {
  uint64_t v[2] = {(uint64_t)n0 ^ (uint64_t)n1, s0 ^ s1};
  memcpy(d, v, FUZE_HDR_BYTES);
}

/* dst := a ^ b (dst may be a). Deltas of one operation are small (a value,
 * a key, a header): a word loop the compiler inlines costs less than the
 * call into ISA-L's xor_gen and its alignment checks (core/code.c), which
 * large values still go to. */
static inline void fuze__xor3_small(unsigned char *dst, const unsigned char *a,
                                    const unsigned char *b, size_t len) {
  if (len > 512) fuze__xor3(dst, a, b, len);
  else fuze__xor_words(dst, a, b, len);
}

static inline void fuze__xor_small(unsigned char *dst, const unsigned char *src, size_t len) {
  fuze__xor3_small(dst, dst, src, len);
}

/* fsend.c. The data path of one operation (the primary's state is already
 * the state after it). With sync=op it is complete (flushed at every
 * backup) when this returns, unless it had to wait for capacity. */
int fuze__fobj_send_op(fuze_fobj *f, fuze_piece *pcs, int np);
/* Send every queued operation in order (the windows are large enough now). */
int fuze__fobj_drain(fuze_fobj *f);
/* Free the sync=batch coalescing buffer (whatever it holds is dropped). */
void fuze__fobj_coal_free(fuze_fobj *f);

/* fobj.c. Offset of (block b, backup j)'s working region in host's window. */
size_t fuze__fobj_region_off(const fuze_fobj *f, int host, int b, int j);
/* "'name': out of memory" or "'name': <doing>: out of memory" (FUZE_ERR_NOMEM). */
int fuze__fobj_nomem(const fuze_fobj *f, const char *doing);

#endif
