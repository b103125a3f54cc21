/* repair: a real process death survived in the job (repair.h,
 * docs/design.md "Real process failures (ULFM)"). */
#include "core/bigmem.h"
#include "ctx/repair.h"

#include "comm/coll.h"
#include "comm/ft.h"
#include "comm/transport.h"
#include "data/array.h"
#include "data/fused.h"
#include "proto/byzantine.h"
#include "proto/inject.h"
#include "proto/persist.h"
#include "proto/recovery.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the lowest surviving rank tells everyone (the replacements need it;
 * the survivors check it against their own). */
typedef struct rep_hdr {
  int64_t ckpt_calls;
  uint64_t job_id;
  int32_t narrays, nfobjs, ndomains, npersisted;
  uint64_t persisted[2];      /* the complete persisted epochs (dir=): the manifest copies */
  int64_t persisted_calls[2]; /* that a replacement writes later must list the same */
} rep_hdr;

typedef struct rep_array {
  char name[FUZE_NAME_MAX];
  uint64_t elem; /* the root's element extent: a replacement's stored count */
} rep_array;

typedef struct rep_fobj {
  char name[FUZE_NAME_MAX];
  int32_t kind, pad;
  uint64_t kb, nb, cap, alloc;
} rep_fobj;

static void revoke_all(fuze_ctx *ctx) {
  if (ctx->app != MPI_COMM_NULL) (void)fuze__ft_revoke(&ctx->net, ctx->app);
  for (int b = 0; ctx->block_comm && b < ctx->plan.nblocks; b++)
    if (ctx->block_comm[b] != MPI_COMM_NULL) (void)fuze__ft_revoke(&ctx->net, ctx->block_comm[b]);
  if (ctx->net.comm != MPI_COMM_NULL) (void)fuze__ft_revoke(&ctx->net, ctx->net.comm);
}

/* A death during a repair (of a survivor, a backup host, a replacement
 * being brought in) ends that round on every rank and the next round
 * replaces the new dead too; each round needs a new death, so this bounds
 * only a pathological run. */
#define REPAIR_ROUNDS 16

static int rejoin(fuze_ctx *ctx, int *dead);

/* The error of a repair that cannot go on, on every rank of it: the
 * context's communicators are revoked, so that no later call waits for a
 * rank that gave up, and the idle replacements are told (they return from
 * fuze_init with it). Errors other than a death are the same on every rank
 * (agreed, or decided from the same dead set, like too many losses in a
 * block): a barrier first (its result does not matter), so that the revoke
 * cuts no rank's last collective short. */
static int give_up(fuze_ctx *ctx, int rc) {
  if (ctx->net.comm != MPI_COMM_NULL) (void)MPI_Barrier(ctx->net.comm);
  (void)fuze__ctx_pool_fail(ctx, rc);
  revoke_all(ctx);
  return rc;
}

static void print_round(const fuze_ctx *ctx, const int *dead, const char *why, double t0) {
  int lowest = 0;
  while (lowest < ctx->size && dead[lowest]) lowest++;
  if (!ctx->cfg.verbose || ctx->rank != lowest) return;
  printf("fuze: process failure detected (%s); ranks", why);
  for (int r = 0; r < ctx->size; r++)
    if (dead[r]) printf(" %d", r);
  printf(" died; replaced in %.3f s%s\n", MPI_Wtime() - t0,
         ctx->ft_round ? " (a death during the repair: next round)" : "");
  fflush(stdout);
}

/* One more round: the pool shrinks to the living, every active rank that
 * died (in any round) has a replacement, and dead[] is their union. */
static int next_round(fuze_ctx *ctx, int *dead) {
  int *more = calloc((size_t)ctx->size, sizeof *more), nmore = 0, me = -1, rc = FUZE_RANK_LOST;
  if (!more) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "repair: out of memory");
  /* A death during the shrink and split: once more over the living. */
  for (int tries = 0; rc == FUZE_RANK_LOST && tries < REPAIR_ROUNDS; tries++)
    rc = fuze__ft_replace(&ctx->net, &ctx->pool, ctx->size, &ctx->net.comm, more, &nmore, &me,
                          ctx->cfg.replace != FUZE_REPLACE_IDLE);
  int psize = 0;
  if (!rc && !(rc = FUZE_MPI(ctx->msg, MPI_Comm_size(ctx->pool, &psize))))
    ctx->nreplacements = psize - ctx->size;
  if (!rc && me != ctx->rank)
    rc = CTX_ERR(ctx, FUZE_ERR_STATE, "repair: rank %d came back as rank %d", ctx->rank, me);
  for (int r = 0; !rc && r < ctx->size; r++) dead[r] |= more[r];
  free(more);
  return rc == FUZE_RANK_LOST ? CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "processes kept dying "
                                        "while the survivors shrank the job") : rc;
}

/* Rounds until one completes with no death in it (agreed). dead: ctx->size
 * flags, the active ranks whose state is lost (updated). */
static int rounds(fuze_ctx *ctx, int *dead, const char *why, double t0) {
  for (ctx->ft_round = 0;; ctx->ft_round++) {
    print_round(ctx, dead, why, t0);
    int rc = rejoin(ctx, dead);
    ctx->ft_rounds = ctx->ft_round + 1;
    if (rc == FUZE_RECOVERED) ctx->ft_repairs++;
    if (rc != FUZE_RANK_LOST) return rc < 0 ? give_up(ctx, rc) : rc;
    revoke_all(ctx);
    if (ctx->ft_round + 1 >= REPAIR_ROUNDS)
      return give_up(ctx, CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "%d processes died one after the "
                                  "other during one repair: restart the job (from dir=PATH when "
                                  "set)", REPAIR_ROUNDS));
    char list[256] = "";
    size_t len = 0;
    for (int r = 0; r < ctx->size && len < sizeof list - 16; r++)
      if (dead[r]) len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", len ? ", " : "", r);
    if ((rc = next_round(ctx, dead)) < 0)
      return give_up(ctx, CTX_ERR(ctx, rc, "another process died during the repair of the death "
                                  "of ranks %s and it cannot be repaired: %s", list, ctx->msg));
    t0 = MPI_Wtime();
  }
}

int fuze__ft_repair(fuze_ctx *ctx) {
  double t0 = MPI_Wtime();
  char why[FUZE_MSG_LEN];
  snprintf(why, sizeof why, "%s", ctx->msg);
  /* Batched operations reach the old windows, whose bytes move below. */
  (void)fuze__fobjs_flush(ctx);
  fuze__persist_abandon(ctx); /* persist=async: the epoch in flight is not completed */
  revoke_all(ctx);
  if (ctx->pool == MPI_COMM_NULL)
    return CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "a process died (%s) and the job has no "
                   "replacement ranks (config replacements=0, replace=idle): restart it (from "
                   "dir=PATH when set)", why);
  int *dead = calloc((size_t)ctx->size, sizeof *dead), ndead = 0, me = -1;
  if (!dead) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "repair: out of memory");
  int rc = fuze__ft_replace(&ctx->net, &ctx->pool, ctx->size, &ctx->net.comm, dead, &ndead, &me,
                            ctx->cfg.replace != FUZE_REPLACE_IDLE);
  if (rc == FUZE_RANK_LOST) { /* a death during the shrink itself */
    memset(dead, 0, sizeof *dead * (size_t)ctx->size);
    if (!(rc = next_round(ctx, dead))) me = ctx->rank;
  }
  ctx->ft_seconds[0] = MPI_Wtime() - t0;
  int psize = 0;
  if (!rc && !(rc = FUZE_MPI(ctx->msg, MPI_Comm_size(ctx->pool, &psize))))
    ctx->nreplacements = psize - ctx->size;
  if (!rc && me != ctx->rank)
    rc = CTX_ERR(ctx, FUZE_ERR_STATE, "repair: rank %d came back as rank %d", ctx->rank, me);
  if (!rc) rc = rounds(ctx, dead, why, t0);
  free(dead);
  return rc;
}

int fuze__ft_join(fuze_ctx *ctx, const int *dead0) {
  int *dead = malloc(sizeof *dead * (size_t)ctx->size);
  if (!dead) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_init (replacement rank): out of memory");
  memcpy(dead, dead0, sizeof *dead * (size_t)ctx->size);
  int rc = rounds(ctx, dead, "a replacement joins", MPI_Wtime());
  free(dead);
  return rc;
}

/* The layout every rank must share: from the lowest surviving rank. A
 * replacement builds its (empty) structures from it. */
static int share_layout(fuze_ctx *ctx, int root, int joining) {
  fuze_net *net = &ctx->net;
  rep_hdr h = {0};
  if (!joining)
    h = (rep_hdr){ctx->ckpt_calls, ctx->job_id, ctx->narrays, ctx->nfobjs, ctx->ndomains,
                  ctx->npersisted, {ctx->persisted[0], ctx->persisted[1]},
                  {ctx->persisted_calls[0], ctx->persisted_calls[1]}};
  int rc = fuze__bcast_bytes(net, net->comm, &h, sizeof h, root);
  if (rc) return rc;
  if (joining) {
    ctx->ckpt_calls = h.ckpt_calls;
    ctx->job_id = h.job_id;
    ctx->ndomains = h.ndomains;
    ctx->npersisted = h.npersisted;
    for (int e = 0; e < 2; e++) {
      ctx->persisted[e] = h.persisted[e];
      ctx->persisted_calls[e] = h.persisted_calls[e];
    }
    ctx->domain = calloc((size_t)ctx->size, sizeof *ctx->domain);
    ctx->arrays = calloc((size_t)(h.narrays ? h.narrays : 1), sizeof *ctx->arrays);
    rc = ctx->domain && ctx->arrays ? FUZE_SUCCESS : CTX_ERR(ctx, FUZE_ERR_NOMEM, "repair: out of memory");
  } else if (h.narrays != ctx->narrays || h.nfobjs != ctx->nfobjs) {
    rc = CTX_ERR(ctx, FUZE_ERR_STATE, "repair: rank %d has %d arrays and %d stacks/maps, rank %d "
                 "%d and %d", ctx->rank, ctx->narrays, ctx->nfobjs, root, h.narrays, h.nfobjs);
  }
  if ((rc = fuze__agree(net, rc))) return rc;
  if ((rc = fuze__bcast_bytes(net, net->comm, ctx->domain, sizeof(int) * (size_t)ctx->size, root)))
    return rc;
  if ((rc = fuze__agree(net, joining ? fuze__ctx_plan(ctx) : FUZE_SUCCESS))) return rc;
  /* dir=: the dead rank's directory (its lock went with it) is this one's. */
  if ((rc = fuze__agree(net, joining ? fuze__persist_join(ctx) : FUZE_SUCCESS))) return rc;
  uint64_t *bytes = malloc(sizeof *bytes * (size_t)ctx->size);
  if ((rc = fuze__agree(net, bytes ? FUZE_SUCCESS : CTX_ERR(ctx, FUZE_ERR_NOMEM, "repair: out of memory"))))
    return free(bytes), rc;
  for (int x = 0; x < h.narrays && !rc; x++) {
    rep_array ra = {{0}, 0};
    if (!joining) {
      snprintf(ra.name, sizeof ra.name, "%s", ctx->arrays[x]->name);
      ra.elem = ctx->arrays[x]->elem;
      /* the root's: a replacement kept from an earlier round may not have them yet */
      for (int r = 0; ctx->rank == root && r < ctx->size; r++) bytes[r] = ctx->arrays[x]->rank_bytes[r];
    }
    if ((rc = fuze__bcast_bytes(net, net->comm, &ra, sizeof ra, root)) ||
        (rc = fuze__bcast_bytes(net, net->comm, bytes, sizeof *bytes * (size_t)ctx->size, root)))
      break;
    fuze_array *a = joining ? calloc(1, sizeof *a) : NULL;
    if (a) {
      a->ctx = ctx;
      snprintf(a->name, sizeof a->name, "%s", ra.name);
      a->bytes = (size_t)bytes[ctx->rank];
      a->elem = (size_t)ra.elem;
      a->count = a->elem ? a->bytes / a->elem : 0;
      a->type = MPI_BYTE;
      a->win = MPI_WIN_NULL;
      a->base = fuze__big_zalloc(a->bytes, 0);
      a->base_owned = 1;
      if (a->base) ctx->arrays[ctx->narrays++] = a;
      else free(a), a = NULL;
    }
    rc = fuze__agree(net, a || !joining ? FUZE_SUCCESS : CTX_ERR(ctx, FUZE_ERR_NOMEM, "repair: out of memory"));
  }
  free(bytes);
  for (int x = 0; x < h.nfobjs && !rc; x++) {
    rep_fobj rf = {{0}, 0, 0, 0, 0, 0, 0};
    if (!joining) {
      const fuze_fobj *f = ctx->fobjs[x];
      snprintf(rf.name, sizeof rf.name, "%s", f->name);
      rf.kind = f->kind;
      rf.kb = f->kb;
      rf.nb = f->nb;
      rf.cap = f->cap;
      rf.alloc = f->kind == FUZE_FOBJ_MAP ? sizeof(fuze_map) : sizeof(fuze_stack);
    }
    if ((rc = fuze__bcast_bytes(net, net->comm, &rf, sizeof rf, root))) break;
    fuze_fobj *f = NULL;
    if (joining)
      rc = fuze__fobj_shell(ctx, rf.name, rf.kind, (size_t)rf.kb, (size_t)rf.nb, (size_t)rf.alloc,
                            (size_t)rf.cap, &f);
    rc = fuze__agree(net, rc);
  }
  if (!rc && joining) ctx->replay = ctx->narrays + ctx->nfobjs;
  return rc;
}

/* A replacement whose layout a death cut short: back to nothing (it has
 * no window yet). Local. */
static void drop_layout(fuze_ctx *ctx) {
  for (int x = 0; x < ctx->narrays; x++) fuze__array_free(ctx->arrays[x]);
  free(ctx->arrays);
  ctx->arrays = NULL;
  ctx->narrays = 0;
  for (int x = 0; x < ctx->nfobjs; x++) fuze__fobj_free(ctx->fobjs[x]);
  free(ctx->fobjs);
  ctx->fobjs = NULL;
  ctx->nfobjs = 0;
  for (int b = 0; ctx->codes && b < ctx->plan.nblocks; b++) fuze__code_free(&ctx->codes[b]);
  free(ctx->codes);
  ctx->codes = NULL;
  fuze__plan_free(&ctx->plan);
  memset(&ctx->plan, 0, sizeof ctx->plan);
  free(ctx->rank_flags);
  free(ctx->changed);
  free(ctx->domain);
  ctx->rank_flags = NULL;
  ctx->changed = NULL;
  ctx->domain = NULL;
  ctx->replay = 0;
}

static void debug_kill(const fuze_ctx *ctx, const char *phase);

/* Every structure into a new window on the repaired communicator: all new
 * windows first, then (when every rank has all of them, agreed so that a
 * death cannot split it) the old ones freed. Otherwise every rank puts its
 * old windows back and leaves the new ones to MPI (freeing a window is a
 * collective that a death may have cut short on another rank), having
 * unmapped the segments of fuze's own they held (fuze__win_abandon: else a
 * dead rank's segment stayed alive in every survivor): the next round
 * starts from the same windows everywhere. */
static int rewin_all(fuze_ctx *ctx) {
  int n = ctx->narrays + ctx->nfobjs, made = 0, rc = FUZE_SUCCESS;
  fuze_oldwin *old = calloc((size_t)(n ? n : 1), sizeof *old);
  if (!old) rc = CTX_ERR(ctx, FUZE_ERR_NOMEM, "repair: out of memory");
  for (; !rc && made < n; made++) {
    rc = made < ctx->narrays ? fuze__array_rewin(ctx, ctx->arrays[made], &old[made])
                             : fuze__fobj_rewin(ctx->fobjs[made - ctx->narrays], &old[made]);
    if (rc) break; /* this one kept its old window */
    if (made == 0) debug_kill(ctx, "window2"); /* one structure's new window made */
  }
  int ok = rc == FUZE_SUCCESS;
  int arc = fuze__ft_agree(&ctx->net, ctx->net.comm, &ok);
  if (!arc && ok) {
    for (int x = 0; x < n; x++) fuze__win_free(&old[x].win, old[x].locked);
    free(old);
    return FUZE_SUCCESS;
  }
  for (int x = 0; x < made; x++) {
    MPI_Win *w = x < ctx->narrays ? &ctx->arrays[x]->win : &ctx->fobjs[x - ctx->narrays]->win;
    unsigned char **base = x < ctx->narrays ? &ctx->arrays[x]->winbase : &ctx->fobjs[x - ctx->narrays]->winbase;
    size_t *size = x < ctx->narrays ? &ctx->arrays[x]->winsize : &ctx->fobjs[x - ctx->narrays]->winsize;
    fuze__win_abandon(w);
    *w = old[x].win;
    *base = old[x].base;
    *size = old[x].size;
  }
  free(old);
  if (rc && rc != FUZE_RANK_LOST) return rc;
  return arc ? arc : fuze__error(ctx->msg, FUZE_RANK_LOST, "a process died while the windows "
                                 "were made again");
}

/* Test hook: FUZE_DEBUG_REPAIR_KILL=R[@layout|windows|window2|recover]
 * (windows when no phase is given; window2: after the first structure's new
 * window is made): the process in active rank R's place (a survivor, or the
 * replacement brought in for R) dies there, in the first round of the job's
 * first repair. */
static void debug_kill(const fuze_ctx *ctx, const char *phase) {
  const char *dk = getenv("FUZE_DEBUG_REPAIR_KILL");
  if (!dk || !*dk || atoi(dk) != ctx->rank || ctx->ft_repairs || ctx->ft_round) return;
  const char *at = strchr(dk, '@');
  if (strcmp(at ? at + 1 : "windows", phase)) return;
  fprintf(stderr, "fuze: rank %d kills itself with SIGKILL inside the repair, phase %s "
          "(FUZE_DEBUG_REPAIR_KILL)\n", ctx->rank, phase);
  fflush(stderr);
  raise(SIGKILL);
}

/* The end of a round, agreed with MPIX_Comm_agree (a death during it cannot
 * split the verdict): FUZE_RANK_LOST on every rank when any saw a death, so
 * that every rank goes on to the next round; else this rank's result. */
static int round_end(fuze_ctx *ctx, int rc) {
  if (rc == FUZE_RANK_LOST) revoke_all(ctx); /* no rank stays in a collective of this round */
  int ok = rc != FUZE_RANK_LOST;
  int arc = fuze__ft_agree(&ctx->net, ctx->net.comm, &ok);
  if (arc) return arc;
  if (ok) return rc;
  return rc == FUZE_RANK_LOST ? rc : fuze__error(ctx->msg, FUZE_RANK_LOST, "another rank saw a "
                                                "process die during the repair");
}

static int rejoin(fuze_ctx *ctx, int *dead) {
  fuze_net *net = &ctx->net;
  double t = MPI_Wtime();
  /* Every rank's dead set, united: a replacement brought in by this round
   * knows only this round's. */
  int rc = FUZE_MPI(ctx->msg, MPI_Allreduce(MPI_IN_PLACE, dead, ctx->size, MPI_INT, MPI_MAX, net->comm));
  /* And the round and the job's repairs (for the test hook below): a
   * replacement counts its own from 0. */
  int64_t seen[2] = {ctx->ft_round, (int64_t)ctx->ft_repairs};
  if (!rc) rc = FUZE_MPI(ctx->msg, MPI_Allreduce(MPI_IN_PLACE, seen, 2, MPI_INT64_T, MPI_MAX, net->comm));
  if (rc) return round_end(ctx, rc);
  ctx->ft_round = (int)seen[0];
  ctx->ft_repairs = (uint64_t)seen[1];
  int root = 0;
  while (root < ctx->size && dead[root]) root++;
  if (root == ctx->size)
    return give_up(ctx, CTX_ERR(ctx, FUZE_ERR_UNRECOVERABLE, "every compute rank died"));
  /* The old block communicators are revoked: freed, then rebuilt. */
  for (int b = 0; ctx->block_comm && b < ctx->plan.nblocks; b++)
    if (ctx->block_comm[b] != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&ctx->block_comm[b]));
  free(ctx->block_comm);
  ctx->block_comm = NULL;
  /* Where the ranks are is asked again, on every rank alike (collective in
   * comm/transport.c): the replacements may sit elsewhere. */
  net->one_node = -1;
  net->acc_piece = (size_t)-1;
  /* A replacement (no layout yet, or one a death cut short) takes the
   * layout from the lowest surviving rank. */
  int joining = ctx->domain == NULL;
  rc = share_layout(ctx, root, joining);
  if (rc && joining && ctx->domain) drop_layout(ctx);
  debug_kill(ctx, "layout");
  /* Survivors saw the death in different calls: one inside fuze_checkpoint
   * (its call counted), another in fuze_recover after its own MPI call
   * failed. The interrupted checkpoint counts on every rank, so that
   * inject=...:at=checkpoint:E and verify_every stay in step everywhere. */
  if (!rc) {
    int64_t calls = ctx->ckpt_calls;
    rc = FUZE_MPI(ctx->msg, MPI_Allreduce(MPI_IN_PLACE, &calls, 1, MPI_INT64_T, MPI_MAX, net->comm));
    if (!rc) ctx->ckpt_calls = (long)calls;
  }
  if (!rc) rc = fuze__agree(net, fuze__ctx_block_comms(ctx));
  ctx->ft_seconds[1] = MPI_Wtime() - t;
  if (rc) return round_end(ctx, rc);
  t = MPI_Wtime();
  debug_kill(ctx, "windows");
  rc = rewin_all(ctx);
  ctx->ft_seconds[2] = MPI_Wtime() - t;
  if (rc) return round_end(ctx, rc);
  /* The application's communicator: the compute ranks of the new one, in
   * the same order. The old one (revoked) stays the application's to free. */
  MPI_Comm app = MPI_COMM_NULL;
  rc = FUZE_MPI(ctx->msg, MPI_Comm_split(net->comm, ctx->is_spare ? MPI_UNDEFINED : 0, ctx->rank, &app));
  if ((rc = fuze__agree(net, rc))) {
    if (app != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&app));
    return round_end(ctx, rc);
  }
  if (ctx->app_owned && ctx->app != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&ctx->app));
  ctx->app = app;
  ctx->app_owned = 1;
  /* The dead ranks' places (a replacement, here or in an earlier round that
   * a death cut short) hold nothing: exactly a wiped rank. */
  if (dead[ctx->rank]) ctx->lost = 1;
  fuze__byz_reset(ctx); /* code=byzantine: replicas made again at the next checkpoint */
  fuze__inject_deaths(ctx, dead);
  t = MPI_Wtime();
  debug_kill(ctx, "recover");
  rc = fuze__recover(ctx, dead, NULL);
  ctx->ft_seconds[3] = MPI_Wtime() - t;
  return round_end(ctx, rc);
}

/* ---- a replacement's registrations ---- */

int fuze__replay_check(fuze_ctx *ctx, const char *fn) {
  if (!ctx->replay || !strcmp(fn, "fuze_protect") || !strcmp(fn, "fuze_stack_create") ||
      !strcmp(fn, "fuze_map_create"))
    return FUZE_SUCCESS;
  const char *next = NULL;
  for (int x = 0; x < ctx->narrays && !next; x++)
    if (ctx->arrays[x]->base_owned) next = ctx->arrays[x]->name;
  for (int x = 0; x < ctx->nfobjs && !next; x++)
    if (!ctx->fobjs[x]->bound) next = ctx->fobjs[x]->name;
  return CTX_ERR(ctx, FUZE_ERR_STATE, "%s: this rank replaced a dead rank and must first make the "
                 "registrations every rank made at the start, in the same order (%d left; next: "
                 "'%s')", fn, ctx->replay, next ? next : "?");
}

static int is_named(MPI_Datatype type) {
  int ni, na, nd, comb;
  if (MPI_Type_get_envelope(type, &ni, &na, &nd, &comb) != MPI_SUCCESS) return 0;
  return comb == MPI_COMBINER_NAMED;
}

int fuze__replay_protect(fuze_ctx *ctx, const char *name, void *base, size_t count,
                         MPI_Datatype type, fuze_array **array) {
  fuze_array *a = NULL;
  for (int x = 0; x < ctx->narrays && !a; x++)
    if (ctx->arrays[x]->base_owned) a = ctx->arrays[x];
  if (!a)
    return CTX_ERR(ctx, FUZE_ERR_STATE, "fuze_protect('%s'): this replacement rank has no array left "
                   "to register (the job registered %d)", name ? name : "(null)", ctx->narrays);
  if (!name || strcmp(name, a->name))
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): this replacement rank must register the "
                   "arrays in the job's order; the next one is '%s'", name ? name : "(null)", a->name);
  MPI_Aint lb = 0, extent = 0;
  if (type == MPI_DATATYPE_NULL || MPI_Type_get_extent(type, &lb, &extent) != MPI_SUCCESS || extent <= 0)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): invalid datatype", name);
  if (count && (size_t)extent > SIZE_MAX / count)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): count %zu x extent %ld overflows", name,
                   count, (long)extent);
  if (count * (size_t)extent != a->bytes)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): the dead rank this one replaces protected "
                   "%zu bytes, this call %zu (count %zu x extent %ld)", name, a->bytes,
                   count * (size_t)extent, count, (long)extent);
  if (a->bytes && !base)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "fuze_protect('%s'): base is NULL", name);
  MPI_Datatype own = type;
  if (!is_named(type) && MPI_Type_dup(type, &own) != MPI_SUCCESS)
    return CTX_ERR(ctx, FUZE_ERR_MPI, "fuze_protect('%s'): MPI_Type_dup failed", name);
  if (a->bytes) memcpy(base, a->shadow, a->bytes); /* its buffer was never filled (recovery.c) */
  fuze__big_free(a->base, a->bytes);
  a->base = base;
  a->base_owned = 0;
  a->count = count;
  a->elem = (size_t)extent;
  a->type = own;
  a->type_owned = own != type;
  ctx->replay--;
  if (array) *array = a;
  return FUZE_SUCCESS;
}

int fuze__replay_create(fuze_ctx *ctx, const char *name, int kind, size_t kb, size_t nb,
                        struct fuze_fobj **out) {
  const char *what = kind == FUZE_FOBJ_MAP ? "fuze_map_create" : "fuze_stack_create";
  fuze_fobj *f = NULL;
  for (int x = 0; x < ctx->nfobjs && !f; x++)
    if (!ctx->fobjs[x]->bound) f = ctx->fobjs[x];
  if (!f)
    return CTX_ERR(ctx, FUZE_ERR_STATE, "%s('%s'): this replacement rank has no stack or map left "
                   "to register (the job registered %d)", what, name ? name : "(null)", ctx->nfobjs);
  if (!name || strcmp(name, f->name) || f->kind != kind)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s('%s'): this replacement rank must register the stacks and "
                   "maps in the job's order; the next one is the %s '%s'", what,
                   name ? name : "(null)", f->kind == FUZE_FOBJ_MAP ? "map" : "stack", f->name);
  if (f->kb != kb || f->nb != nb)
    return CTX_ERR(ctx, FUZE_ERR_ARG, "%s('%s'): the job registered it with sizes (%zu, %zu), this "
                   "call (%zu, %zu)", what, name, f->kb, f->nb, kb, nb);
  f->bound = 1;
  ctx->replay--;
  *out = f;
  return FUZE_SUCCESS;
}

int fuze__replay_count(const fuze_ctx *ctx, const char *name, size_t *count) {
  if (!ctx->joined || !name) return 0;
  for (int x = 0; x < ctx->narrays; x++)
    if (!strcmp(ctx->arrays[x]->name, name)) {
      const fuze_array *a = ctx->arrays[x];
      *count = a->elem ? a->bytes / a->elem : a->bytes;
      return 1;
    }
  for (int x = 0; x < ctx->nfobjs; x++)
    if (!strcmp(ctx->fobjs[x]->name, name)) {
      *count = ctx->fobjs[x]->n;
      return 1;
    }
  return 0;
}
