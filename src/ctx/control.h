/* control: the channel that lets spare ranks take part in every collective.
 * A compute rank entering a collective API call broadcasts a control message
 * from world rank 0 (always a compute rank); spare ranks wait for it in
 * serve() (ctx/context.c) and run the same collective. Never installed. */
#ifndef FUZE_CONTROL_H
#define FUZE_CONTROL_H

#include "data/state.h"

enum fuze_op {
  FUZE_OP_PROTECT = 1, FUZE_OP_CHECKPOINT, FUZE_OP_RECOVER, FUZE_OP_INJECT, FUZE_OP_INJECT_AT,
  FUZE_OP_INJECT_OP, FUZE_OP_CREATE, FUZE_OP_FINALIZE, FUZE_OP_VERIFY,
  FUZE_OP_JOB_STATS, FUZE_OP_UNPROTECT
};

typedef struct fuze_ctl {
  int op, n;
  uint64_t a, b; /* CREATE: key and value bytes; INJECT_OP: rank, backups */
  int ranks[FUZE_MAX_INJECT_RANKS];
  char name[FUZE_NAME_MAX]; /* registration name, or the phase of INJECT_AT */
  uint64_t cap;             /* CREATE: fused capacity hint (0: config capacity) */
} fuze_ctl;

/* FUZE_SUCCESS when ctx can be used by `fn`, else the error (recorded). */
int fuze__check_ctx(const fuze_ctx *ctx, const char *fn);

/* Collective over the world: rank 0's message reaches every rank (in c).
 * Spare ranks wait for it without spinning a core: they test the broadcast
 * with a growing sleep between tests (up to FUZE_SPARE_SLEEP_MAX_US). */
int fuze__ctl_send(fuze_ctx *ctx, fuze_ctl *c);
#define FUZE_SPARE_SLEEP_MAX_US 500

/* The collectives behind the API calls that spare ranks also run (ctx/api.c).
 * On spare ranks name, base and out are NULL. */
int fuze__protect_collective(fuze_ctx *ctx, const fuze_ctl *c, const char *name, void *base,
                             size_t count, MPI_Datatype type, fuze_array **out);
int fuze__unprotect_collective(fuze_ctx *ctx, const fuze_ctl *c, const char *name);
int fuze__create_collective(fuze_ctx *ctx, const fuze_ctl *c, const char *name, size_t kb,
                            size_t nb, size_t cap, struct fuze_fobj **out);
/* fuze_get_job_stats' collective (ctx/introspect.c); sum is NULL on spares. */
int fuze__job_stats_collective(fuze_ctx *ctx, fuze_stats *sum);
/* The memory fields of fuze_stats added after v0.1 (ctx/introspect.c). */
void fuze__stats_memory(const fuze_ctx *ctx, fuze_stats *st);
/* fuze_get_stats without its locks, for callers that hold the gate (context.c). */
int fuze__stats_fill(const fuze_ctx *ctx, fuze_stats *st);

#endif
