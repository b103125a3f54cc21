/* limits: the sizes and bounds every layer shares, in one place. Pure (no MPI).
 *
 * A block's code works over GF(2^8): its k primaries and f backups are
 * distinct field elements of a Cauchy matrix, so k + f <= FUZE_GF_MEMBERS.
 * Arrays sized by "members of a block" use FUZE_GF_MEMBERS; arrays holding
 * two values per member (a block communicator's ranks plus padding, or
 * erasure flags of primaries and backups of two blocks' worth) use
 * FUZE_GF_MEMBERS2. */
#ifndef FUZE_LIMITS_H
#define FUZE_LIMITS_H

#include "fuze.h"

#include <stddef.h>

/* k + f of one block (GF(2^8)). */
#define FUZE_GF_MEMBERS 256
/* Twice that: bounds for per-block-communicator tables with room to spare. */
#define FUZE_GF_MEMBERS2 (2 * FUZE_GF_MEMBERS)
/* faults=: a block needs at least one primary besides its backups. */
#define FUZE_MAX_FAULTS (FUZE_GF_MEMBERS - 1)

/* domain=K: at most this many ranks per failure domain (fuze-plan's limit
 * of ranks in all), so that counting domains cannot overflow an int. */
#define FUZE_DOMAIN_K_MAX (1 << 20)

/* A stack element, or a map's key plus value, in bytes: at most 1 GiB, so
 * that entry arithmetic (an entry times a capacity, plus headers) stays far
 * from wrapping a size_t. fuze_stack_create/fuze_map_create refuse more. */
#define FUZE_FOBJ_ENTRY_MAX ((size_t)1 << 30)

/* Name of a protected array, stack or map, with its terminating NUL (the
 * public fuze_verify_entry.name has this size too: checked below). */
#define FUZE_NAME_MAX 64

/* Alignment of every region in an RMA window (a cache line: 64 bytes). */
#define FUZE_ALIGN 64

/* A fused stack/map region's header: per member one line of FUZE_HDR_LINE
 * bytes, of which the first FUZE_HDR_BYTES are (count, seq) as two uint64. */
#define FUZE_HDR_BYTES 16
#define FUZE_HDR_LINE 64

/* Per block, what changed in this checkpoint (fuze_ctx.changed). */
#define FUZE_CHANGED_ANY 1    /* something changed (set with either bit below) */
#define FUZE_CHANGED_ARRAYS 2 /* array deltas were sent */
#define FUZE_CHANGED_FOBJS 4  /* stack/map operations were sent */

_Static_assert(FUZE_HDR_BYTES == 2 * sizeof(unsigned long long),
               "a member header is (count, seq): two 64-bit words");
_Static_assert(FUZE_HDR_BYTES <= FUZE_HDR_LINE, "a member header fits its line");
_Static_assert(FUZE_HDR_LINE % FUZE_ALIGN == 0 || FUZE_ALIGN % FUZE_HDR_LINE == 0,
               "header lines and window alignment agree");
_Static_assert((FUZE_ALIGN & (FUZE_ALIGN - 1)) == 0, "FUZE_ALIGN is a power of two");
_Static_assert(sizeof(((fuze_verify_entry *)0)->name) == FUZE_NAME_MAX,
               "fuze.h's fuze_verify_entry.name holds a name of FUZE_NAME_MAX bytes");

/* n rounded up to FUZE_ALIGN. */
static inline size_t fuze__align(size_t n) {
  return (n + FUZE_ALIGN - 1) & ~(size_t)(FUZE_ALIGN - 1);
}

#endif
