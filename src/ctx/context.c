/* context: fuze_init and fuze_finalize, the plan, codes and block
 * communicators a context is built from, the spare ranks' serve loop, and
 * the context's statistics.
 *
 * Every collective call runs on all ranks of the init communicator ("world"):
 * compute ranks enter through the public API (ctx/api.c), spare ranks through
 * serve(), which receives the call's opcode from world rank 0 (always a
 * compute rank: spare domains are the highest-numbered ones). */
#include "ctx/control.h"

#include "comm/cfgcheck.h"
#include "comm/ft.h"
#include "ctx/repair.h"
#include "comm/coll.h"
#include "comm/topo.h"
#include "comm/transport.h"
#include "core/names.h"
#include "data/array.h"
#include "data/fused.h"
#include "data/threads.h"
#include "proto/byzantine.h"
#include "proto/checkpoint.h"
#include "proto/inject.h"
#include "proto/persist.h"
#include "proto/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int build_codes(fuze_ctx *ctx) {
  const fuze_plan *p = &ctx->plan;
  ctx->codes = calloc((size_t)p->nblocks, sizeof *ctx->codes);
  if (!ctx->codes) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_init: out of memory");
  for (int b = 0; b < p->nblocks; b++) {
    int k = p->block_start[b + 1] - p->block_start[b];
    int rc = fuze__code_init(&ctx->codes[b], k, p->f, ctx->cfg.code);
    if (rc) return CTX_ERR(ctx, rc, "fuze_init: %s", fuze__thread_msg());
  }
  return FUZE_SUCCESS;
}

/* One communicator per block: its members in block order, then its hosts in
 * backup order, so that block-comm rank x is block member x of the code. */
static int build_block_comms(fuze_ctx *ctx) {
  const fuze_plan *p = &ctx->plan;
  ctx->block_comm = malloc(sizeof(MPI_Comm) * (size_t)(p->nblocks ? p->nblocks : 1));
  if (!ctx->block_comm) return CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_init: out of memory");
  for (int b = 0; b < p->nblocks; b++) ctx->block_comm[b] = MPI_COMM_NULL;
  MPI_Group world;
  int rc = FUZE_MPI(ctx->msg, MPI_Comm_group(ctx->net.comm, &world));
  if (rc) return rc;
  int ranks[FUZE_GF_MEMBERS];
  for (int b = 0; b < p->nblocks && !rc; b++) {
    int k = p->block_start[b + 1] - p->block_start[b];
    for (int i = 0; i < k; i++) ranks[i] = p->members[p->block_start[b] + i];
    for (int j = 0; j < p->f; j++) ranks[k + j] = p->hosts[b * p->f + j];
    MPI_Group g;
    rc = FUZE_MPI(ctx->msg, MPI_Group_incl(world, k + p->f, ranks, &g));
    if (rc) break;
    /* Collective over the world: every rank goes through every block. */
    rc = FUZE_MPI(ctx->msg, MPI_Comm_create(ctx->net.comm, g, &ctx->block_comm[b]));
    FUZE_MPI_TEARDOWN(MPI_Group_free(&g));
  }
  FUZE_MPI_TEARDOWN(MPI_Group_free(&world));
  return rc;
}

static int build_plan(fuze_ctx *ctx) {
  char err[FUZE_MSG_LEN] = "";
  fuze_plan_input in = {ctx->size, ctx->domain, ctx->ndomains, ctx->cfg.spares, ctx->cfg.faults,
                        ctx->cfg.code == FUZE_CODE_REPLICATE ? 1 : ctx->cfg.block};
  int rc = fuze__plan_build(&in, &ctx->plan, err, sizeof err);
  if (rc) return CTX_ERR(ctx, rc, "fuze_init: %s", err);
  char text[FUZE_MSG_LEN / 2];
  for (int s = 0; s < ctx->cfg.ninject; s++)
    for (int r = 0; r < ctx->cfg.inject[s].nranks; r++)
      if (ctx->cfg.inject[s].ranks[r] >= ctx->size)
        return CTX_ERR(ctx, FUZE_ERR_CONFIG, "config: inject spec '%s' can never fire: it names "
                       "rank %d but the job has %d ranks (0..%d)",
                       fuze__inject_spec_text(&ctx->cfg.inject[s], text, sizeof text),
                       ctx->cfg.inject[s].ranks[r], ctx->size, ctx->size - 1);
  return FUZE_SUCCESS;
}

/* A replacement (ctx/repair.c): the plan and codes from the shared domains,
 * and what fuze_init allocates after them. Local. */
int fuze__ctx_plan(fuze_ctx *ctx) {
  int rc = build_plan(ctx);
  if (!rc) rc = build_codes(ctx);
  if (rc) return rc;
  ctx->rank_flags = malloc(sizeof(int) * (size_t)ctx->size);
  ctx->changed = malloc((size_t)(ctx->plan.nblocks ? ctx->plan.nblocks : 1));
  if (!ctx->rank_flags || !ctx->changed) return FUZE_NOMEM(ctx->msg, "fuze_init");
  ctx->is_spare = ctx->plan.block_of[ctx->rank] < 0;
  return FUZE_SUCCESS;
}

int fuze__ctx_block_comms(fuze_ctx *ctx) { return build_block_comms(ctx); }

static void print_plan(const fuze_ctx *ctx) {
  const fuze_plan *p = &ctx->plan;
  if (!ctx->cfg.verbose || ctx->rank != 0) return;
  printf("fuze: %d ranks (%d compute), %d failure domains, faults=%d, spares=%d, code=%s: "
         "%d blocks, %d backups (replication: %d)\n", p->nranks, p->ncompute, p->ndomains, p->f,
         p->spares, fuze__code_label(ctx->cfg.code, ctx->cfg.mode), p->nblocks, p->nblocks * p->f, p->ncompute * p->f);
  for (int b = 0; b < p->nblocks; b++) {
    printf("fuze:   block %d: ranks", b);
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) printf(" %d", p->members[x]);
    printf("; backups on ranks");
    for (int j = 0; j < p->f; j++) printf(" %d", p->hosts[b * p->f + j]);
    printf("\n");
  }
  fflush(stdout);
}

static void ctx_free(fuze_ctx *ctx) {
  if (!ctx) return;
  for (int x = 0; x < ctx->narrays; x++) fuze__array_free(ctx->arrays[x]);
  free(ctx->arrays);
  for (int x = 0; x < ctx->nfobjs; x++) fuze__fobj_free(ctx->fobjs[x]);
  free(ctx->fobjs);
  free(ctx->stage_buf);
  free(ctx->changed);
  free(ctx->rank_flags);
  fuze__byz_free(ctx);
  fuze__persist_free(ctx);
  fuze__persist_close(ctx);
  fuze__threads_free(ctx);
  for (int b = 0; ctx->block_comm && b < ctx->plan.nblocks; b++)
    if (ctx->block_comm[b] != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&ctx->block_comm[b]));
  free(ctx->block_comm);
  for (int b = 0; ctx->codes && b < ctx->plan.nblocks; b++) fuze__code_free(&ctx->codes[b]);
  free(ctx->codes);
  fuze__plan_free(&ctx->plan);
  free(ctx->domain);
  if (ctx->app_owned && ctx->app != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&ctx->app));
  if (ctx->net.comm != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&ctx->net.comm));
  if (ctx->pool != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&ctx->pool));
  free(ctx);
}

static int setup(fuze_ctx *ctx, const char *config) {
  int rc = fuze__config_parse(config, &ctx->cfg, ctx->msg);
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  /* Before the first collective that depends on a value (domains, plan,
   * windows, persistence): ranks that disagree would hang there. */
  if ((rc = fuze__config_compare(&ctx->net, &ctx->cfg))) return rc;
  ctx->net.shm = ctx->cfg.shm;
  ctx->net.verbose = ctx->cfg.verbose;
  if ((rc = fuze__agree(&ctx->net, fuze__wait_choose(&ctx->net)))) return rc; /* comm/wait.h */
  ctx->hook = fuze__inject_hook; /* specs can also be armed later (fuze_inject*) */
  if ((rc = fuze__agree(&ctx->net, fuze__debug_nomem_arm(ctx)))) return rc;
  ctx->domain = malloc(sizeof(int) * (size_t)ctx->size);
  rc = ctx->domain ? fuze__topo_domains(ctx->net.comm, &ctx->cfg, ctx->domain, &ctx->ndomains, ctx->msg)
                   : CTX_ERR(ctx, FUZE_ERR_NOMEM, "fuze_init: out of memory");
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  if ((rc = fuze__agree(&ctx->net, build_plan(ctx)))) return rc;
  if ((rc = fuze__agree(&ctx->net, build_codes(ctx)))) return rc;
  if ((rc = fuze__agree(&ctx->net, build_block_comms(ctx)))) return rc;
  if ((rc = fuze__agree(&ctx->net, fuze__win_probe(&ctx->net)))) return rc;
  ctx->rank_flags = malloc(sizeof(int) * (size_t)ctx->size);
  ctx->changed = malloc((size_t)(ctx->plan.nblocks ? ctx->plan.nblocks : 1));
  rc = ctx->rank_flags && ctx->changed ? FUZE_SUCCESS : FUZE_NOMEM(ctx->msg, "fuze_init");
  if ((rc = fuze__agree(&ctx->net, rc))) return rc;
  ctx->is_spare = ctx->plan.block_of[ctx->rank] < 0;
  print_plan(ctx);
  int prc = fuze__persist_init(ctx);
  if (prc < 0) return prc;
  /* After a restart has set the epoch: specs that can never fire. */
  if ((rc = fuze__agree(&ctx->net, fuze__inject_check(ctx)))) return rc;
  return prc;
}

static int finalize_collective(fuze_ctx *ctx);
/* Spare ranks: take part in every collective the compute ranks start. */
static void serve(fuze_ctx *ctx) {
  for (;;) {
    fuze_ctl c;
    int rc = fuze__ctl_send(ctx, &c);
    if (rc) { /* a process died (ULFM): repaired like the compute ranks do */
      if (rc == FUZE_RANK_LOST && fuze__ft_repair(ctx) == FUZE_RECOVERED) continue;
      return; /* the world communicator failed: nothing to serve */
    }
    switch (c.op) {
      case FUZE_OP_PROTECT: rc = fuze__protect_collective(ctx, &c, c.name, NULL, 0, MPI_BYTE, NULL); break;
      case FUZE_OP_CHECKPOINT: rc = fuze__checkpoint_collective(ctx); break;
      case FUZE_OP_RECOVER: rc = fuze__recover_if_lost(ctx); break;
      case FUZE_OP_INJECT: rc = fuze__inject_wipe_collective(ctx, c.ranks, c.n); break;
      case FUZE_OP_INJECT_AT: rc = fuze__inject_at_collective(ctx, c.ranks, c.n, c.name); break;
      case FUZE_OP_INJECT_OP: rc = fuze__inject_op_collective(ctx, c.a, c.b); break;
      case FUZE_OP_CREATE: rc = fuze__create_collective(ctx, &c, c.name, (size_t)c.a, (size_t)c.b, (size_t)c.cap, NULL); break;
      case FUZE_OP_FINALIZE: finalize_collective(ctx); return;
      case FUZE_OP_VERIFY: rc = fuze__verify_collective(ctx, NULL); break;
      case FUZE_OP_JOB_STATS: rc = fuze__job_stats_collective(ctx, NULL); break;
      case FUZE_OP_UNPROTECT: rc = fuze__unprotect_collective(ctx, &c, c.name); break;
      default: return;
    }
    if (rc == FUZE_RANK_LOST && fuze__ft_repair(ctx) != FUZE_RECOVERED) return;
  }
}

/* ---- replacement ranks (config replacements=R) ----
 * The last R ranks of fuze_init's communicator hold nothing and take part in
 * no collective: fuze_init splits them off (net.comm is the other ranks) and
 * they wait in pool_wait for world rank 0, which tells them the job's end
 * (fuze_finalize, or a failed fuze_init) on the pool communicator. */
enum { POOL_RELEASE = 1, POOL_FAILED = 2 };

typedef struct pool_msg {
  int cmd, code;
  char msg[FUZE_MSG_LEN];
} pool_msg;

static int pool_wait(MPI_Comm pool, char *msg) {
  pool_msg m;
  MPI_Request req = MPI_REQUEST_NULL;
  int done = 0, rc = FUZE_MPI(msg, MPI_Irecv(&m, (int)sizeof m, MPI_BYTE, 0, FUZE_TAG_POOL, pool, &req));
  /* Poll with sleeps: a blocking receive spins a core for the whole job,
   * which oversubscribed ranks (tests, small machines) pay for. */
  while (!rc && !done) {
    rc = FUZE_MPI(msg, MPI_Test(&req, &done, MPI_STATUS_IGNORE));
    if (!rc && !done) nanosleep(&(struct timespec){0, 2000000}, NULL);
  }
  if (rc) return fuze__error(msg, rc, "fuze_init (replacement rank): %s", fuze__thread_msg());
  m.msg[FUZE_MSG_LEN - 1] = 0;
  if (m.cmd == POOL_FAILED) return fuze__error(msg, m.code, "%s", m.msg);
  return FUZE_SUCCESS;
}

/* World rank 0 (the first compute rank): every replacement gets cmd. */
static int pool_tell(fuze_ctx *ctx, int cmd, int code) {
  if (ctx->pool == MPI_COMM_NULL || ctx->rank != 0) return FUZE_SUCCESS;
  pool_msg m = {cmd, code, ""};
  snprintf(m.msg, sizeof m.msg, "%s", ctx->msg);
  int size = 0, rc = FUZE_MPI(ctx->msg, MPI_Comm_size(ctx->pool, &size));
  for (int r = size - ctx->nreplacements; r < size && !rc; r++) {
    rc = FUZE_MPI(ctx->msg, MPI_Send(&m, (int)sizeof m, MPI_BYTE, r, FUZE_TAG_POOL, ctx->pool));
    if (rc == FUZE_RANK_LOST) rc = FUZE_SUCCESS; /* a dead idle replacement: nothing to tell it */
  }
  return rc;
}

static int join_as(fuze_ctx *ctx, const char *config, MPI_Comm active, int me, int nactive,
                   const int *dead);

int fuze__ctx_pool_fail(fuze_ctx *ctx, int code) {
  int rc = pool_tell(ctx, POOL_FAILED, code);
  ctx->nreplacements = 0; /* told: fuze_finalize releases nobody */
  return rc;
}

static void net_init(fuze_ctx *ctx) {
  ctx->app = MPI_COMM_NULL;
  ctx->op_inject_hosts = -1;
  ctx->net.rank = ctx->rank;
  ctx->net.size = ctx->size;
  ctx->net.one_node = -1;
  ctx->net.acc_piece = (size_t)-1; /* set with one_node (comm/transport.c) */
  ctx->net.msg = ctx->msg;
  ctx->debug_reorder = getenv("FUZE_DEBUG_REORDER") && atoi(getenv("FUZE_DEBUG_REORDER"));
  /* Under ULFM a stack or map operation that notices a death repairs it. */
  ctx->repair = fuze__ft_enabled() ? fuze__ft_repair : NULL;
}

/* An idle replacement: waits for the job's end (FUZE_SUCCESS, or the error
 * of a failed fuze_init) or, under ULFM, for a death: then it takes part in
 * the repair (comm/ft.c) and, when chosen, joins in the dead rank's place
 * (FUZE_RECOVERED: ctx ready) or goes back to waiting. */
static int replacement_wait(fuze_ctx *ctx, const char *config) {
  for (;;) {
    int rc = pool_wait(ctx->pool, ctx->msg);
    if (rc != FUZE_RANK_LOST) return rc;
    int psize = 0;
    if ((rc = FUZE_MPI(ctx->msg, MPI_Comm_size(ctx->pool, &psize)))) return rc;
    int nactive = psize - ctx->nreplacements, ndead = 0, me = -1;
    int *dead = calloc((size_t)(nactive > 0 ? nactive : 1), sizeof *dead);
    if (!dead) return FUZE_NOMEM(ctx->msg, "fuze_init");
    fuze_net tmp = {.comm = ctx->pool, .msg = ctx->msg};
    MPI_Comm active = MPI_COMM_NULL;
    /* replace= is compared across every rank at fuze_init: the same choice here */
    fuze_config cfg;
    int spawn = fuze__config_parse(config, &cfg, ctx->msg) == FUZE_SUCCESS &&
                cfg.replace != FUZE_REPLACE_IDLE;
    rc = fuze__ft_replace(&tmp, &ctx->pool, nactive, &active, dead, &ndead, &me, spawn);
    if (!rc) rc = FUZE_MPI(ctx->msg, MPI_Comm_size(ctx->pool, &psize));
    if (rc == FUZE_RANK_LOST) { /* a death during the shrink: the pool is revoked, again */
      free(dead);
      continue;
    }
    if (rc || me < 0) {
      free(dead);
      if (rc) return rc;
      ctx->nreplacements = psize - nactive;
      continue;
    }
    ctx->nreplacements = psize - nactive;
    rc = join_as(ctx, config, active, me, nactive, dead);
    free(dead);
    return rc;
  }
}

/* A replacement chosen for active rank me: the context is built, with the
 * survivors, on the new active communicator (ctx/repair.c). */
static int join_as(fuze_ctx *ctx, const char *config, MPI_Comm active, int me, int nactive,
                   const int *dead) {
  {
    int rc;
    ctx->net.comm = active;
    ctx->rank = me;
    ctx->size = nactive;
    net_init(ctx);
    rc = fuze__config_parse(config, &ctx->cfg, ctx->msg);
    ctx->net.shm = ctx->cfg.shm;
    ctx->net.verbose = ctx->cfg.verbose;
    ctx->hook = fuze__inject_hook;
    if (!rc) rc = fuze__threads_init(ctx);
    /* Agreed inside: every step of the rejoin is collective with the survivors. */
    rc = rc ? rc : fuze__ft_join(ctx, dead);
    if (rc == FUZE_RECOVERED) { /* *app_comm is the caller's to free, as from any fuze_init */
      ctx->joined = 1;
      ctx->app_owned = 0;
    }
    if (rc == FUZE_RECOVERED && ctx->cfg.verbose) {
      printf("fuze: a replacement rank took the place of rank %d; it must now make the job's "
             "registrations\n", me);
      fflush(stdout);
    }
    return rc;
  }
}

/* A process started by MPI_Comm_spawn to replace a dead rank (replace=spawn
 * or auto): it takes its slot (comm/ft.c) and joins like an idle one. */
static int spawned_join(fuze_ctx *ctx, const char *config, MPI_Comm parent) {
  MPI_Comm active = MPI_COMM_NULL;
  int *dead = NULL, nactive = 0, me = -1;
  fuze_net tmp = {.comm = MPI_COMM_NULL, .msg = ctx->msg};
  int rc = fuze__ft_spawned(&tmp, parent, &ctx->pool, &active, &dead, &nactive, &me);
  if (rc) return rc;
  int psize = 0;
  if ((rc = FUZE_MPI(ctx->msg, MPI_Comm_size(ctx->pool, &psize)))) return free(dead), rc;
  ctx->nreplacements = psize - nactive;
  rc = join_as(ctx, config, active, me, nactive, dead);
  free(dead);
  return rc;
}

/* Collective over comm: with replacements=R, split the last R ranks off.
 * Sets ctx->net.comm (a dup of comm, or of the ranks before the
 * replacements), ctx->pool and *is_replacement. The configuration is parsed
 * and agreed here over every rank, so a bad one fails everywhere alike. */
static int split_pool(fuze_ctx *ctx, MPI_Comm comm, const char *config, int *is_replacement) {
  *is_replacement = 0;
  MPI_Comm all = MPI_COMM_NULL;
  int rc = FUZE_MPI(ctx->msg, MPI_Comm_dup(comm, &all));
  if (rc) return rc;
  fuze_net net = {.comm = all, .msg = ctx->msg};
  if ((rc = FUZE_MPI(ctx->msg, MPI_Comm_set_errhandler(all, MPI_ERRORS_RETURN))) ||
      (rc = FUZE_MPI(ctx->msg, MPI_Comm_rank(all, &net.rank))) ||
      (rc = FUZE_MPI(ctx->msg, MPI_Comm_size(all, &net.size)))) {
    FUZE_MPI_TEARDOWN(MPI_Comm_free(&all));
    return rc;
  }
  fuze_config cfg;
  rc = fuze__config_parse(config, &cfg, ctx->msg);
  if (!rc && cfg.replacements >= net.size)
    rc = CTX_ERR(ctx, FUZE_ERR_CONFIG, "config: replacements=%d leaves no compute rank: the job "
                 "has %d ranks", cfg.replacements, net.size);
  /* Compared over every rank before the split: ranks that disagree on
   * replacements would otherwise split differently and hang. */
  if ((rc = fuze__agree(&net, rc)) || (rc = fuze__config_compare(&net, &cfg))) {
    FUZE_MPI_TEARDOWN(MPI_Comm_free(&all));
    return rc;
  }
  /* No pool without replacement ranks, unless dead ranks may be replaced by
   * spawned processes (ULFM and replace=spawn or auto). */
  if (cfg.replacements == 0 && (!fuze__ft_enabled() || cfg.replace == FUZE_REPLACE_IDLE)) {
    ctx->net.comm = all;
    return FUZE_SUCCESS;
  }
  ctx->pool = all;
  ctx->nreplacements = cfg.replacements;
  *is_replacement = net.rank >= net.size - cfg.replacements;
  rc = FUZE_MPI(ctx->msg, MPI_Comm_split(all, *is_replacement ? MPI_UNDEFINED : 0, net.rank,
                                          &ctx->net.comm));
  if (!rc && !*is_replacement)
    rc = FUZE_MPI(ctx->msg, MPI_Comm_set_errhandler(ctx->net.comm, MPI_ERRORS_RETURN));
  return fuze__agree(&net, rc);
}

int fuze_init(MPI_Comm comm, const char *config, fuze_ctx **ctxp, MPI_Comm *app_comm) {
  if (!ctxp || !app_comm)
    return FUZE_ERR(FUZE_ERR_ARG, "fuze_init: %s must not be NULL (it receives the %s)",
                    !ctxp ? "ctx" : "app_comm", !ctxp ? "context" : "compute communicator");
  *ctxp = NULL;
  *app_comm = MPI_COMM_NULL;
  int inited = 0;
  if (MPI_Initialized(&inited) != MPI_SUCCESS || !inited) return FUZE_ERR(FUZE_ERR_STATE, "fuze_init: MPI is not initialised (call MPI_Init first)");
  /* MPI_Comm_dup of MPI_COMM_NULL runs under MPI_COMM_WORLD's handler
   * (fatal by default): refuse it before. */
  if (comm == MPI_COMM_NULL)
    return FUZE_ERR(FUZE_ERR_ARG, "fuze_init: comm is MPI_COMM_NULL (pass the communicator of the "
                    "ranks to protect, e.g. MPI_COMM_WORLD)");
  fuze_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return FUZE_ERR(FUZE_ERR_NOMEM, "fuze_init: out of memory");
  ctx->net.comm = ctx->pool = MPI_COMM_NULL;
  /* Under ULFM a survivor must outlive its writes to a dead rank's socket. */
  (void)fuze__ft_ignore_sigpipe();
  MPI_Comm parent = MPI_COMM_NULL;
  int replacement = 0, rc;
  if (fuze__ft_enabled() && MPI_Comm_get_parent(&parent) == MPI_SUCCESS && parent != MPI_COMM_NULL)
    rc = spawned_join(ctx, config, parent); /* started by MPI_Comm_spawn to replace a dead rank */
  else {
    rc = split_pool(ctx, comm, config, &replacement);
    if (!rc && replacement) rc = replacement_wait(ctx, config);
  }
  if (rc == FUZE_RECOVERED) { /* took a dead rank's place (ULFM) */
    if (ctx->is_spare) {
      serve(ctx);
      ctx_free(ctx);
      return FUZE_SUCCESS;
    }
    *app_comm = ctx->app;
    *ctxp = ctx;
    return FUZE_RECOVERED;
  }
  if (rc || replacement) { /* a replacement returns at the job's end, like a spare */
    if (rc) fuze__error(NULL, rc, "%s", ctx->msg);
    ctx_free(ctx);
    return rc;
  }
  if ((rc = FUZE_MPI(NULL, MPI_Comm_rank(ctx->net.comm, &ctx->rank))) ||
      (rc = FUZE_MPI(NULL, MPI_Comm_size(ctx->net.comm, &ctx->size)))) {
    pool_tell(ctx, POOL_FAILED, rc);
    ctx_free(ctx);
    return rc;
  }
  net_init(ctx);
  rc = fuze__threads_init(ctx);
  if (!rc) rc = setup(ctx, config);
  if (rc < 0) {
    fuze__error(NULL, rc, "%s", ctx->msg);
    pool_tell(ctx, POOL_FAILED, rc);
    ctx_free(ctx);
    return rc;
  }
  int src = FUZE_MPI(ctx->msg, MPI_Comm_split(ctx->net.comm, ctx->is_spare ? MPI_UNDEFINED : 0,
                                               ctx->rank, app_comm));
  if ((src = fuze__agree(&ctx->net, src))) {
    fuze__error(NULL, src, "%s", ctx->msg);
    pool_tell(ctx, POOL_FAILED, src);
    if (*app_comm != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(app_comm));
    ctx_free(ctx);
    return src;
  }
  if (ctx->is_spare) {
    serve(ctx);
    ctx_free(ctx);
    return FUZE_SUCCESS;
  }
  ctx->app = *app_comm;
  *ctxp = ctx;
  return rc; /* FUZE_SUCCESS or FUZE_RESTARTED */
}

static void print_summary(fuze_ctx *ctx) {
  uint64_t mine[3] = {0, 0, 0}, sum[3];
  for (int x = 0; x < ctx->narrays; x++) {
    fuze_array *a = ctx->arrays[x];
    mine[0] += a->bytes;
    for (int h = 0; h < a->nhosted; h++) mine[1] += a->hosted[h].fused;
    mine[2] += a->bytes;
  }
  for (int x = 0; x < ctx->nfobjs; x++) {
    fuze_fobj *f = ctx->fobjs[x];
    mine[0] += f->n * (f->kb + f->nb);
    for (int h = 0; h < f->nhosted; h++) mine[1] += f->hosted[h].fused;
  }
  if (FUZE_MPI(ctx->msg, MPI_Reduce(mine, sum, 3, MPI_UINT64_T, MPI_SUM, 0, ctx->net.comm)))
    return; /* a summary only: finalize goes on */
  if (ctx->rank != 0 || !ctx->cfg.verbose) return;
  double prot = sum[0] ? (double)sum[0] : 1.0;
  printf("fuze: summary: epoch %llu, %llu protected bytes, %llu committed parity bytes "
         "(%.3fx protected; replication would hold %dx), %llu array committed-copy bytes, "
         "%llu recoveries\n", (unsigned long long)ctx->epoch, (unsigned long long)sum[0],
         (unsigned long long)sum[1], (double)sum[1] / prot, ctx->plan.f,
         (unsigned long long)sum[2], (unsigned long long)ctx->recoveries);
  fflush(stdout);
}

static int finalize_collective(fuze_ctx *ctx) {
  /* persist=async: the last epoch's write completes (or its failure is said). */
  int rc = fuze__persist_complete(ctx);
  if (!rc && ctx->persist_failed) {
    rc = CTX_ERR(ctx, ctx->persist_failed, "%s", ctx->persist_msg);
    ctx->persist_failed = 0;
  }
  print_summary(ctx);
  if (!fuze__inject_sync(ctx)) fuze__inject_report(ctx);
  ctx->finalized = 1;
  int brc = FUZE_MPI(ctx->msg, MPI_Barrier(ctx->net.comm));
  return rc ? rc : brc;
}

int fuze_finalize(fuze_ctx **ctxp) {
  if (!ctxp || !*ctxp) return FUZE_SUCCESS;
  fuze_ctx *ctx = *ctxp;
  int rc = fuze__check_ctx(ctx, "fuze_finalize");
  if (rc || (rc = fuze__coll_enter(ctx, "fuze_finalize"))) return rc;
  fuze_ctl c = {.op = FUZE_OP_FINALIZE};
  rc = fuze__ctl_send(ctx, &c);
  if (!rc) rc = finalize_collective(ctx);
  /* The replacement ranks were never needed: they return from fuze_init. */
  int prc = pool_tell(ctx, POOL_RELEASE, FUZE_SUCCESS);
  if (!rc) rc = prc;
  if (rc == FUZE_RANK_LOST) rc = FUZE_ERR_MPI;
  fuze__coll_leave(ctx); /* no other thread may use ctx from here on */
  if (rc) rc = fuze__error(NULL, rc, "fuze_finalize: %s", ctx->msg); /* ctx is freed next */
  ctx_free(ctx);
  *ctxp = NULL;
  return rc;
}


/* Local: the counters are read with no operation of another thread in
 * progress (data/threads.h). */
int fuze_get_stats(const fuze_ctx *ctx, fuze_stats *st) {
  int rc = fuze__check_ctx(ctx, "fuze_get_stats");
  if (rc) return rc;
  if (!st) return FUZE_ERR(FUZE_ERR_ARG, "fuze_get_stats: stats is NULL");
  fuze_ctx *c = (fuze_ctx *)ctx;
  if ((rc = fuze__local_enter(c, "fuze_get_stats"))) return rc;
  fuze__send_lock(c);
  rc = fuze__stats_fill(ctx, st);
  fuze__send_unlock(c);
  fuze__local_leave(c);
  return rc;
}

int fuze__stats_fill(const fuze_ctx *ctx, fuze_stats *st) {
  memset(st, 0, sizeof *st);
  st->epoch = ctx->epoch;
  for (int x = 0; x < ctx->narrays; x++) {
    const fuze_array *a = ctx->arrays[x];
    st->protected_bytes += a->bytes;
    st->shadow_bytes += a->shadow ? a->bytes : 0;
    for (int h = 0; h < a->nhosted; h++) st->parity_bytes += a->hosted[h].fused;
  }
  /* Stacks and maps: live contents; parity is what the allocated regions hold. */
  for (int x = 0; x < ctx->nfobjs; x++) {
    const fuze_fobj *f = ctx->fobjs[x];
    st->protected_bytes += f->n * (f->kb + f->nb);
    for (int h = 0; h < f->nhosted; h++) st->parity_bytes += f->hosted[h].fused;
  }
  st->working_bytes = st->parity_bytes;
  st->sent_bytes = ctx->net.sent_bytes;
  st->recovered_bytes = ctx->recovered_bytes;
  st->recoveries = ctx->recoveries;
  st->persisted_bytes = ctx->persist_bytes;
  st->persisted_last_bytes = ctx->persist_last_bytes;
  st->persisted_epochs = ctx->persist_files;
  st->persisted_increments = ctx->persist_increments;
  st->nblocks = ctx->plan.nblocks;
  st->nbackups = ctx->plan.nblocks * ctx->plan.f;
  st->injections_unfired = fuze__inject_unfired(ctx);
  fuze__stats_memory(ctx, st);
  return FUZE_SUCCESS;
}

MPI_Comm fuze_comm(const fuze_ctx *ctx) { return ctx ? ctx->app : MPI_COMM_NULL; }

const char *fuze_last_error(const fuze_ctx *ctx) {
  return ctx ? ctx->msg : fuze__thread_msg();
}
