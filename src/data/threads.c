/* threads: the locks of data/threads.h and the checks of MPI's thread level. */
#include "data/threads.h"

#include "comm/ft.h"

#include "data/fused.h"

#include <pthread.h>
#include <stdlib.h>

struct fuze_locks {
  pthread_t owner;          /* the thread that called fuze_init */
  pthread_rwlock_t gate;    /* local calls hold it shared, collective calls exclusive */
  pthread_mutex_t send_mu;  /* this context's sending state and transport calls */
  pthread_mutex_t *send;    /* &send_mu; one process-wide mutex with MPI_THREAD_SERIALIZED */
};

/* With MPI_THREAD_SERIALIZED no two threads of the process may be inside MPI
 * at once, whatever context they use. */
static pthread_mutex_t serialized_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    default: return "MPI_THREAD_MULTIPLE";
  }
}

int fuze__threads_init(fuze_ctx *ctx) {
  int rc = FUZE_MPI(ctx->msg, MPI_Query_thread(&ctx->thread_level));
  if (rc) return rc;
  struct fuze_locks *l = calloc(1, sizeof *l);
  if (!l) return FUZE_NOMEM(ctx->msg, "fuze_init: locks");
  l->owner = pthread_self();
  if (pthread_rwlock_init(&l->gate, NULL)) {
    free(l);
    return FUZE_NOMEM(ctx->msg, "fuze_init: a lock");
  }
  if (pthread_mutex_init(&l->send_mu, NULL)) {
    pthread_rwlock_destroy(&l->gate);
    free(l);
    return FUZE_NOMEM(ctx->msg, "fuze_init: a lock");
  }
  l->send = ctx->thread_level == MPI_THREAD_SERIALIZED ? &serialized_mu : &l->send_mu;
  ctx->locks = l;
  return FUZE_SUCCESS;
}

void fuze__threads_free(fuze_ctx *ctx) {
  struct fuze_locks *l = ctx->locks;
  if (!l) return;
  pthread_rwlock_destroy(&l->gate);
  pthread_mutex_destroy(&l->send_mu);
  free(l);
  ctx->locks = NULL;
}

/* May this thread call MPI at MPI's thread level? */
static int thread_allowed(fuze_ctx *ctx, const char *fn) {
  if (ctx->thread_level >= MPI_THREAD_SERIALIZED || pthread_equal(pthread_self(), ctx->locks->owner))
    return FUZE_SUCCESS;
  return CTX_ERR(ctx, FUZE_ERR_STATE, "%s: called from a thread other than the one that called "
                 "fuze_init, but MPI provides only %s on rank %d; initialise MPI with "
                 "MPI_Init_thread(MPI_THREAD_SERIALIZED or MPI_THREAD_MULTIPLE) to call fuze from "
                 "several threads", fn, level_name(ctx->thread_level), ctx->rank);
}

/* Below MPI_THREAD_SERIALIZED only fuze_init's thread gets past
 * thread_allowed, so nothing runs concurrently and no lock is taken (a
 * single-threaded code pays one pthread_equal per call). */
static int threaded(const fuze_ctx *ctx) { return ctx->thread_level >= MPI_THREAD_SERIALIZED; }

int fuze__local_enter(fuze_ctx *ctx, const char *fn) {
  int rc = thread_allowed(ctx, fn);
  if (rc) return rc;
  if (threaded(ctx)) pthread_rwlock_rdlock(&ctx->locks->gate);
  return FUZE_SUCCESS;
}

void fuze__local_leave(fuze_ctx *ctx) {
  if (threaded(ctx)) pthread_rwlock_unlock(&ctx->locks->gate);
}

int fuze__op_enter(fuze_fobj *f, const char *fn) {
  int rc = fuze__local_enter(f->ctx, fn);
  if (rc) return rc;
  if (threaded(f->ctx)) pthread_mutex_lock(&f->mu);
  return FUZE_SUCCESS;
}

void fuze__op_leave(fuze_fobj *f) {
  if (threaded(f->ctx)) pthread_mutex_unlock(&f->mu);
  fuze__local_leave(f->ctx);
}

int fuze__op_lost(fuze_ctx *ctx, int rc) {
  if (!ctx->repair) return 0;
  if (rc == FUZE_RANK_LOST) return 1;
  if (rc < 0) return 0;
  fuze__send_lock(ctx);
  int lost = fuze__ft_check(&ctx->net) == FUZE_RANK_LOST;
  fuze__send_unlock(ctx);
  return lost;
}

int fuze__op_repair(fuze_ctx *ctx, const char *fn, int rc) {
  if (fuze__coll_enter(ctx, fn))
    return rc != FUZE_RANK_LOST ? rc : CTX_ERR(ctx, FUZE_ERR_STATE, "%s: a process died; the "
                                              "collective call of another thread repairs it", fn);
  rc = ctx->repair(ctx);
  fuze__coll_leave(ctx);
  return rc;
}

int fuze__coll_enter(fuze_ctx *ctx, const char *fn) {
  int rc = thread_allowed(ctx, fn);
  if (rc) return rc;
  if (__atomic_exchange_n(&ctx->coll_busy, 1, __ATOMIC_ACQ_REL)) {
    const char *other = __atomic_load_n(&ctx->coll_fn, __ATOMIC_ACQUIRE);
    return CTX_ERR(ctx, FUZE_ERR_STATE, "%s: another thread of rank %d is inside a collective "
                   "call (%s) on this context; collective calls must come from one thread at a "
                   "time, in the same order on every rank", fn, ctx->rank, other ? other : "?");
  }
  __atomic_store_n(&ctx->coll_fn, fn, __ATOMIC_RELEASE);
  if (threaded(ctx)) pthread_rwlock_wrlock(&ctx->locks->gate);
  if (ctx->thread_level == MPI_THREAD_SERIALIZED) pthread_mutex_lock(ctx->locks->send);
  return FUZE_SUCCESS;
}

void fuze__coll_leave(fuze_ctx *ctx) {
  if (ctx->thread_level == MPI_THREAD_SERIALIZED) pthread_mutex_unlock(ctx->locks->send);
  if (threaded(ctx)) pthread_rwlock_unlock(&ctx->locks->gate);
  __atomic_store_n(&ctx->coll_fn, NULL, __ATOMIC_RELEASE);
  __atomic_store_n(&ctx->coll_busy, 0, __ATOMIC_RELEASE);
}

void fuze__send_lock(fuze_ctx *ctx) {
  if (threaded(ctx)) pthread_mutex_lock(ctx->locks->send);
}

void fuze__send_unlock(fuze_ctx *ctx) {
  if (threaded(ctx)) pthread_mutex_unlock(ctx->locks->send);
}
