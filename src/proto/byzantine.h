/* byzantine: code=byzantine, the MPI side (Theorem 7 of the seed paper), and
 * its test hook. Never installed. */
#ifndef FUZE_BYZANTINE_H
#define FUZE_BYZANTINE_H

#include "data/state.h"

/* code=byzantine (no-ops otherwise). Collective, at a committed checkpoint:
 * refresh the replicas right after the commit, then (after the corrupt
 * injections) compare every copy and correct (Fig. 6). */
int fuze__byz_refresh(fuze_ctx *ctx);
int fuze__byz_check(fuze_ctx *ctx); /* FUZE_SUCCESS, FUZE_RECOVERED or FUZE_ERR_CORRUPT */
void fuze__byz_free(fuze_ctx *ctx);
/* ULFM repair (ctx/repair.c), on every rank: the replicas and their
 * communicator go (it holds the dead); the next checkpoint builds them on the
 * repaired communicator and sends every replica again. Local. */
void fuze__byz_reset(fuze_ctx *ctx);
void fuze__byz_drop_array(fuze_ctx *ctx, int x); /* fuze_unprotect: before ctx->arrays shifts */
/* The first replica of structure `name` held here (*len bytes, a copy of
 * rank *rank's), NULL when there is none (inject=corrupt:...:target=replica). */
unsigned char *fuze__byz_replica(fuze_ctx *ctx, const char *name, size_t *len, int *rank);

enum { FUZE_BYZ_ARM_PRIMARY = 0, FUZE_BYZ_ARM_REPLICA = 1, FUZE_BYZ_ARM_PARITY = 2,
       /* stacks and maps only: the index/aux parts (count, seq, keys) */
       FUZE_BYZ_ARM_PRIMARY_INDEX = 3, FUZE_BYZ_ARM_REPLICA_INDEX = 4,
       FUZE_BYZ_ARM_BACKUP_INDEX = 5 };
enum { FUZE_BYZ_ARM_RANDOM = 0, FUZE_BYZ_ARM_ZERO = 1, FUZE_BYZ_ARM_ALT = 2,
       FUZE_BYZ_ARM_COUNT = 3 /* stacks and maps, index targets only */ };

/* Test hook (local, not collective): at the next checkpoint of this rank, after
 * the replicas were refreshed and before the copies are compared, corrupt the
 * array `name`'s
 *   PRIMARY  committed copy of this rank (arg unused),
 *   REPLICA  replica of rank `arg` held here,
 *   PARITY   committed parity of hosted block `arg` (backup j = `j`),
 * with RANDOM (len bytes from off, each XORed with a nonzero byte drawn from
 * seed), ZERO (every byte) or ALT (every byte XOR 0xA5: an internally
 * consistent but different copy; two ALT copies of one primary agree).
 * For a stack or map `name` (its committed state = the primary's state right
 * after the commit; replicas are serialized states):
 *   PRIMARY, REPLICA    the values (count * nb bytes),
 *   PARITY              the committed nodes parity of hosted (block arg, j),
 *   PRIMARY_INDEX, REPLICA_INDEX   RANDOM/ALT: seq and keys (as one span: seq
 *                       8 bytes, then count * kb); ZERO: the whole state
 *                       becomes a well-formed empty one (count 0, seq 0);
 *                       COUNT: the last element is dropped (consistent but
 *                       different),
 *   BACKUP_INDEX        the committed header and key replicas of hosted
 *                       (block arg, j): RANDOM over [header 16k | keys], ZERO
 *                       and ALT on both, COUNT: member 0's count - 1.
 * Returns 0, or -1 when code is not byzantine or nothing matches now. */
FUZE_EXPORT int fuze__byz_arm(fuze_ctx *ctx, const char *name, int what, int arg, int j,
                              int mode, size_t off, size_t len, uint64_t seed);

/* Bytes of replicas this rank holds (all arrays). */
FUZE_EXPORT size_t fuze__byz_replica_bytes(const fuze_ctx *ctx);

#endif
