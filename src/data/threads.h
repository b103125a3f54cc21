/* threads: what lets several threads of a rank call fuze on one context
 * (docs/design.md, "Threads").
 *
 * Three locks (ctx->locks, data/threads.c), always taken in this order:
 *   the gate    (rwlock)  local calls (stack, map, fuze_flush, statistics)
 *                         hold it shared; collective calls hold it exclusive,
 *                         so a collective never sees a half-done operation and
 *                         an operation never sees a collective's state change.
 *   f->mu       (mutex)   a stack's or map's primary state (slots, hash index,
 *                         undo log, count, seq): operations on one structure
 *                         from several threads are serialised. Recursive, so
 *                         that fuze_map_foreach's callback may read the map.
 *   send lock   (mutex)   the sending state shared by every structure of the
 *                         context (the stage, pending flushes, sync=batch
 *                         buffers, the capacity queues, byte counters, the
 *                         fault-injection hook) and every transport call of a
 *                         local operation. Per context with
 *                         MPI_THREAD_MULTIPLE; one process-wide mutex with
 *                         MPI_THREAD_SERIALIZED, which collective calls then
 *                         hold too, so fuze never makes two MPI calls at once.
 * Internal functions never lock: only the public entry points do. */
#ifndef FUZE_THREADS_H
#define FUZE_THREADS_H

#include "data/state.h"

struct fuze_fobj;

/* fuze_init: query MPI's thread level and create the locks. */
int fuze__threads_init(fuze_ctx *ctx);
void fuze__threads_free(fuze_ctx *ctx);

/* A local call on ctx (any structure): checks the calling thread against
 * MPI's thread level (FUZE_ERR_STATE, recorded) and takes the gate shared. */
int fuze__local_enter(fuze_ctx *ctx, const char *fn);
void fuze__local_leave(fuze_ctx *ctx);

/* An operation on structure f: fuze__local_enter, then f's mutex. */
int fuze__op_enter(struct fuze_fobj *f, const char *fn);
void fuze__op_leave(struct fuze_fobj *f);

/* The body of a public stack or map call: a NULL handle refused (`what` names
 * it), then `call` between fuze__op_enter and fuze__op_leave on the handle's
 * structure. */
#define FUZE_FOBJ_CALL(h, what, fn, call) FUZE_FOBJ_CALL_(h, what, fn, call, 0)

/* The same for an operation that changes the structure (push, pop, put,
 * upsert, remove): under ULFM it then looks for a process death (one-sided
 * calls report none) and, when it finds one, repairs it like a collective
 * call would (fuze__op_lost, fuze__op_repair). */
#define FUZE_FOBJ_MUT_CALL(h, what, fn, call) FUZE_FOBJ_CALL_(h, what, fn, call, 1)

#define FUZE_FOBJ_CALL_(h, what, fn, call, mut)                          \
  do {                                                                   \
    if (!(h)) return FUZE_ERR(FUZE_ERR_ARG, "%s: %s is NULL", fn, what); \
    struct fuze_fobj *o_ = (struct fuze_fobj *)&(h)->o;                  \
    int rc_ = fuze__op_enter(o_, fn);                                    \
    if (rc_) return rc_;                                                 \
    rc_ = (call);                                                        \
    int lost_ = (mut) && fuze__op_lost(o_->ctx, rc_);                    \
    fuze__op_leave(o_);                                                  \
    return lost_ ? fuze__op_repair(o_->ctx, fn, rc_) : rc_;              \
  } while (0)

/* Inside an operation (its result rc): 1 under ULFM when it failed with
 * FUZE_RANK_LOST or this rank knows of a death (comm/ft.h fuze__ft_check),
 * else 0. */
int fuze__op_lost(fuze_ctx *ctx, int rc);
/* After it (the gate released): the repair (ctx->repair) as a collective
 * call: FUZE_RECOVERED, or its error. When another thread of this rank is
 * inside a collective call, that call repairs it: rc then (FUZE_ERR_STATE
 * instead of FUZE_RANK_LOST, which is never returned). */
int fuze__op_repair(fuze_ctx *ctx, const char *fn, int rc);

/* A collective call: FUZE_ERR_STATE (recorded, not agreed: the other ranks
 * are not told) when another thread of this rank is inside a collective call
 * on ctx or the calling thread may not call MPI; else the gate exclusive. */
int fuze__coll_enter(fuze_ctx *ctx, const char *fn);
void fuze__coll_leave(fuze_ctx *ctx);

/* The sending state (inside a local operation). */
void fuze__send_lock(fuze_ctx *ctx);
void fuze__send_unlock(fuze_ctx *ctx);

#endif
