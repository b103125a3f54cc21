/* Fused stacks and maps end to end. Random operation sequences on every rank
 * at once (pushes and pops, inserts, updates and removes, empty structures,
 * growth past several capacity doublings, members of very different sizes),
 * checked against a plain reference model; then every failure set of <= f
 * domains (exhaustive up to 6 ranks) at every checkpoint phase, and crashes
 * between the backups of one remove, in both recovery modes; Theorem 1 (a
 * backup holds exactly as many live fused nodes as its largest member has
 * elements, and nothing beyond) after every epoch; a refusal beyond f. */
#include "common.h"

#include "plan.h"

#define EB 12 /* stack element bytes */
#define VB 20 /* map value bytes */

typedef struct model {
  size_t sn, mn;
  unsigned char st[4096][EB];
  uint64_t keys[4096];
  unsigned char vals[4096][VB];
} model;

typedef struct world {
  int np, f, spares, forward, batch;
  int k; /* ranks per failure domain (domain=K); 1 = domain=rank */
  uint64_t seed, rng;
  int me;
  fuze_ctx *ctx;
  fuze_stack *s;
  fuze_map *m;
  model cur, com, before; /* current, last committed, before the in-flight op */
  size_t target;          /* this rank's typical size: members differ a lot */
} world;

static const char *const phases[] = {"before", "partial", "sent", "promoted", "after"};
static char what[256];

static long mfind(const model *md, uint64_t k) {
  for (size_t i = 0; i < md->mn; i++)
    if (md->keys[i] == k) return (long)i;
  return -1;
}

static void stack_op(world *w) {
  unsigned char e[EB], got[EB];
  int push = w->cur.sn < w->target ? t_below(&w->rng, 10) < 7 : t_below(&w->rng, 10) < 3;
  if (push && w->cur.sn < 4096) {
    t_fill(&w->rng, e, EB);
    T_EQ_INT(fuze_stack_push(w->s, e), FUZE_SUCCESS, "push");
    memcpy(w->cur.st[w->cur.sn++], e, EB);
  } else if (!w->cur.sn) {
    T_EQ_INT(fuze_stack_pop(w->s, got), FUZE_ERR_EMPTY, "pop on empty");
    T_EQ_INT(fuze_stack_peek(w->s, got), FUZE_ERR_EMPTY, "peek on empty");
  } else {
    T_EQ_INT(fuze_stack_pop(w->s, got), FUZE_SUCCESS, "pop");
    w->cur.sn--;
    T_CHECK(!memcmp(got, w->cur.st[w->cur.sn], EB), "%s: popped element differs", what);
  }
}

static void map_op(world *w) {
  uint64_t k = t_below(&w->rng, w->target * 2 + 2);
  unsigned char v[VB], got[VB];
  long i = mfind(&w->cur, k);
  int r = (int)t_below(&w->rng, 10);
  int grow = w->cur.mn < w->target;
  if (r < (grow ? 7 : 4) && (i >= 0 || w->cur.mn < 4096)) {
    t_fill(&w->rng, v, VB);
    T_EQ_INT(fuze_map_put(w->m, &k, v), FUZE_SUCCESS, "put");
    if (i < 0) {
      i = (long)w->cur.mn++;
      w->cur.keys[i] = k;
    }
    memcpy(w->cur.vals[i], v, VB);
  } else if (r < 8) {
    T_EQ_INT(fuze_map_remove(w->m, &k), i >= 0 ? FUZE_SUCCESS : FUZE_ERR_NOT_FOUND, "remove");
    if (i >= 0) {
      w->cur.mn--;
      w->cur.keys[i] = w->cur.keys[w->cur.mn];
      memcpy(w->cur.vals[i], w->cur.vals[w->cur.mn], VB);
    }
  } else {
    T_EQ_INT(fuze_map_get(w->m, &k, got), i >= 0 ? FUZE_SUCCESS : FUZE_ERR_NOT_FOUND, "get");
    if (i >= 0) T_CHECK(!memcmp(got, w->cur.vals[i], VB), "%s: get value differs", what);
  }
}

static void ops(world *w, int n) {
  for (int x = 0; x < n; x++) {
    if (t_below(&w->rng, 2)) stack_op(w);
    else map_op(w);
  }
}

static void verify(world *w, const model *md, const char *tag) {
  unsigned char e[EB], v[VB];
  T_CHECK(fuze_stack_size(w->s) == md->sn, "%s %s: stack size %zu, expected %zu", what, tag,
          fuze_stack_size(w->s), md->sn);
  for (size_t i = 0; i < md->sn && i < fuze_stack_size(w->s); i++) {
    int rc = fuze_stack_at(w->s, i, e);
    if (rc || memcmp(e, md->st[i], EB)) {
      T_CHECK(0, "%s %s: stack element %zu differs (rc %d)", what, tag, i, rc);
      break;
    }
  }
  T_CHECK(fuze_map_size(w->m) == md->mn, "%s %s: map size %zu, expected %zu", what, tag,
          fuze_map_size(w->m), md->mn);
  for (size_t i = 0; i < md->mn; i++) {
    int rc = fuze_map_get(w->m, &md->keys[i], v);
    if (rc || memcmp(v, md->vals[i], VB)) {
      T_CHECK(0, "%s %s: key %llu: rc %s or value differs", what, tag,
              (unsigned long long)md->keys[i], fuze_err_name(rc));
      break;
    }
  }
}

/* Theorem 1: live fused nodes per region = its block's largest member. */
static void theorem1(world *w, MPI_Comm app, const fuze_plan *p) {
  T_EQ_INT(fuze_flush(w->ctx), FUZE_SUCCESS, "flush");
  int napp;
  MPI_Comm_size(app, &napp);
  uint64_t mine[2] = {w->cur.sn, w->cur.mn}, *all = malloc(sizeof(uint64_t) * 2 * (size_t)napp);
  MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, app);
  const char *names[2] = {"stack", "map"};
  for (int o = 0; o < 2; o++) {
    uint64_t expect = 0;
    for (int b = 0; b < p->nblocks; b++) {
      uint64_t mx = 0;
      for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++)
        if (all[2 * p->members[x] + o] > mx) mx = all[2 * p->members[x] + o];
      for (int j = 0; j < p->f; j++)
        if (p->hosts[b * p->f + j] == w->me) expect += mx;
    }
    fuze_fused_stats st;
    T_EQ_INT(fuze_fused_info(w->ctx, names[o], &st), FUZE_SUCCESS, "fused_info");
    T_CHECK(st.nodes == expect, "%s: %s: live fused nodes %llu, largest members say %llu "
            "(sizes %llu %llu %llu)", what, names[o], (unsigned long long)st.nodes,
            (unsigned long long)expect, (unsigned long long)all[o], (unsigned long long)all[2 + o],
            (unsigned long long)all[napp > 2 ? 4 + o : o]);
    T_CHECK(st.stray_nodes == 0, "%s: %s: %llu non-zero nodes beyond the live ones", what,
            names[o], (unsigned long long)st.stray_nodes);
  }
  free(all);
  /* Nobody starts new operations before every host has looked. */
  MPI_Barrier(app);
}

static void one_failure(world *w, const int *set, int len, int ph) {
  ops(w, 40);
  snprintf(what, sizeof what, "np=%d f=%d spares=%d %s %s seed=%llu set[0]=%d len=%d phase=%s",
           w->np, w->f, w->spares, w->forward ? "forward" : "rollback", w->batch ? "batch" : "op",
           (unsigned long long)w->seed, set[0], len, phases[ph]);
  int ranks[64], n = 0; /* a failed domain loses all of its ranks */
  for (int d = 0; d < len; d++)
    for (int r = set[d] * w->k; r < (set[d] + 1) * w->k; r++) ranks[n++] = r;
  T_EQ_INT(fuze_inject_at(w->ctx, ranks, n, phases[ph]), FUZE_SUCCESS, "inject_at");
  int rc = fuze_checkpoint(w->ctx);
  T_CHECK(rc == FUZE_RECOVERED, "%s: checkpoint returned %s: %s", what, fuze_err_name(rc),
          fuze_last_error(w->ctx));
  /* Forward: nobody loses a completed operation. Rollback: the epoch decided
   * or not by the time of the failure. */
  if (!w->forward && ph < 3) w->cur = w->com;
  verify(w, &w->cur, "after recovery");
  w->com = w->cur;
}

/* A crash between the backups of one remove (or push). */
static void op_crash(world *w, int victim, int reached) {
  ops(w, 20);
  snprintf(what, sizeof what, "np=%d f=%d spares=%d %s seed=%llu op-crash victim=%d reached=%d",
           w->np, w->f, w->spares, w->forward ? "forward" : "rollback", (unsigned long long)w->seed,
           victim, reached);
  T_EQ_INT(fuze_flush(w->ctx), FUZE_SUCCESS, "flush");
  T_EQ_INT(fuze_inject_op(w->ctx, victim, reached), FUZE_SUCCESS, "inject_op");
  if (w->me == victim) {
    w->before = w->cur;
    int rc;
    if (w->cur.mn > 1) {
      uint64_t k = w->cur.keys[0]; /* slot order differs, but any existing key will do */
      rc = fuze_map_remove(w->m, &k);
      long i = mfind(&w->cur, k);
      w->cur.mn--;
      w->cur.keys[i] = w->cur.keys[w->cur.mn];
      memcpy(w->cur.vals[i], w->cur.vals[w->cur.mn], VB);
    } else {
      unsigned char e[EB] = {7};
      rc = fuze_stack_push(w->s, e);
      memcpy(w->cur.st[w->cur.sn++], e, EB);
    }
    T_EQ_INT(rc, FUZE_ERR_STATE, "operation of the wiped rank");
  }
  int rc = fuze_recover(w->ctx);
  T_CHECK(rc == FUZE_RECOVERED, "%s: recover returned %s: %s", what, fuze_err_name(rc),
          fuze_last_error(w->ctx));
  if (!w->forward) w->cur = w->com;
  else if (w->me == victim && reached < w->f) w->cur = w->before; /* not completed: undone */
  verify(w, &w->cur, "after op crash");
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint after op crash");
  w->com = w->cur;
}

/* Operations beyond the fused capacity wait in order for the next collective
 * call. A rank that fails meanwhile comes back (forward) as of its last
 * operation that fitted; survivors lose nothing. */
static void queued_ops(world *w, int victim, int other) {
  fuze_fused_stats st;
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint before queued ops");
  w->com = w->cur;
  T_EQ_INT(fuze_fused_info(w->ctx, "stack", &st), FUZE_SUCCESS, "fused_info");
  snprintf(what, sizeof what, "np=%d f=%d spares=%d %s seed=%llu queued victim=%d cap=%llu", w->np,
           w->f, w->spares, w->forward ? "forward" : "rollback", (unsigned long long)w->seed, victim,
           (unsigned long long)st.capacity);
  unsigned char e[EB];
  model fitted = w->cur;
  if (w->me == victim || w->me == other) {
    while (w->cur.sn < st.capacity + 7 && w->cur.sn < 4096) {
      t_fill(&w->rng, e, EB);
      T_EQ_INT(fuze_stack_push(w->s, e), FUZE_SUCCESS, "push beyond capacity");
      memcpy(w->cur.st[w->cur.sn++], e, EB);
      if (w->cur.sn <= st.capacity) fitted = w->cur;
    }
    fuze_fused_stats after;
    fuze_fused_info(w->ctx, "stack", &after);
    T_CHECK(after.deferred_ops - st.deferred_ops == 7, "%s: %llu operations queued, expected 7", what,
            (unsigned long long)(after.deferred_ops - st.deferred_ops));
  }
  T_EQ_INT(fuze_inject(w->ctx, &victim, 1), FUZE_SUCCESS, "inject");
  int rc = fuze_recover(w->ctx);
  T_CHECK(rc == FUZE_RECOVERED, "%s: recover returned %s: %s", what, fuze_err_name(rc),
          fuze_last_error(w->ctx));
  if (!w->forward) w->cur = w->com;
  else if (w->me == victim) w->cur = fitted;
  verify(w, &w->cur, "after queued ops");
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint after queued ops");
  w->com = w->cur;
}

/* Growth never waits for a host: a member pushes far past the capacity while
 * one of its backup hosts sits in MPI_Recv waiting for that very member. If
 * an operation needed the host's cooperation this would deadlock (and the
 * test would time out). */
static void busy_host(world *w, MPI_Comm app, const fuze_plan *p) {
  int member = -1, host = -1;
  for (int b = 0; b < p->nblocks && member < 0; b++)
    for (int j = 0; j < p->f; j++)
      if (p->hosts[b * p->f + j] < p->ncompute) {
        member = p->members[p->block_start[b]];
        host = p->hosts[b * p->f + j];
        break;
      }
  if (member < 0) return; /* every backup on spares: nothing can be busy */
  fuze_fused_stats st;
  T_EQ_INT(fuze_fused_info(w->ctx, "stack", &st), FUZE_SUCCESS, "fused_info");
  unsigned char e[EB];
  int token = 0;
  if (w->me == host) {
    MPI_Recv(&token, 1, MPI_INT, member, 77, app, MPI_STATUS_IGNORE);
    T_CHECK(token == 42, "busy host: token %d", token);
  } else if (w->me == member) {
    while (w->cur.sn < st.capacity + 10 && w->cur.sn < 4000) {
      t_fill(&w->rng, e, EB);
      T_EQ_INT(fuze_stack_push(w->s, e), FUZE_SUCCESS, "push while the host is busy");
      memcpy(w->cur.st[w->cur.sn++], e, EB);
    }
    fuze_fused_stats after;
    fuze_fused_info(w->ctx, "stack", &after);
    T_CHECK(st.capacity + 10 > 4000 || after.deferred_ops > st.deferred_ops,
            "busy host: the member never outgrew the capacity %llu", (unsigned long long)st.capacity);
    token = 42;
    MPI_Send(&token, 1, MPI_INT, host, 77, app);
  }
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint after the busy host");
  w->com = w->cur;
  snprintf(what, sizeof what, "busy host np=%d f=%d member=%d host=%d", w->np, w->f, member, host);
  verify(w, &w->cur, "after growth past a busy host");
}

static void beyond_f(world *w, const fuze_plan *p) {
  int set[64], n = 0, k = p->block_start[1] - p->block_start[0];
  for (int i = 0; i < k && n <= w->f; i++) set[n++] = p->members[i];
  for (int j = 0; j < w->f && n <= w->f; j++) set[n++] = p->hosts[j];
  ops(w, 10);
  T_EQ_INT(fuze_flush(w->ctx), FUZE_SUCCESS, "flush");
  model keep = w->cur;
  T_EQ_INT(fuze_inject(w->ctx, set, n), FUZE_SUCCESS, "inject");
  int victim = 0;
  for (int v = 0; v < n; v++) victim |= set[v] == w->me;
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_ERR_UNRECOVERABLE, "f+1 lost");
  T_CHECK(strstr(fuze_last_error(w->ctx), "unrecoverable: block 0 lost") != NULL, "msg: %s",
          fuze_last_error(w->ctx));
  snprintf(what, sizeof what, "beyond f np=%d f=%d", w->np, w->f);
  if (!victim) verify(w, &keep, "survivor untouched");
}

static void run(world *w) {
  char cfg[200];
  snprintf(cfg, sizeof cfg, "faults=%d;spares=%d;domain=%d;recovery=%s;sync=%s;capacity=16", w->f, w->spares, w->k,
           w->forward ? "forward" : "rollback", w->batch ? "batch" : "op");
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &w->ctx, &app);
  int ndom = w->np / w->k, ncompute = w->np - w->spares * w->k;
  if (ndom <= w->f || w->spares >= ndom) {
    T_EQ_INT(rc, FUZE_ERR_CONFIG, cfg);
    return;
  }
  T_EQ_INT(rc, FUZE_SUCCESS, cfg);
  if (rc || app == MPI_COMM_NULL) return;
  int domain[64];
  for (int r = 0; r < w->np; r++) domain[r] = r / w->k;
  fuze_plan p;
  char err[256];
  fuze_plan_input in = {w->np, domain, ndom, w->spares, w->f, 0};
  T_EQ_INT(fuze__plan_build(&in, &p, err, sizeof err), FUZE_SUCCESS, "plan");
  w->rng = w->seed * 7919u + (uint64_t)w->me;
  /* Members of very different sizes; one crosses several doublings. */
  w->target = w->me == 0 ? 300 : 5 + t_below(&w->rng, 60);
  memset(&w->cur, 0, sizeof w->cur);
  T_EQ_INT(fuze_stack_create(w->ctx, "stack", EB, &w->s), FUZE_SUCCESS, "stack_create");
  T_EQ_INT(fuze_map_create(w->ctx, "map", 8, VB, &w->m), FUZE_SUCCESS, "map_create");
  snprintf(what, sizeof what, "%s seed=%llu", cfg, (unsigned long long)w->seed);
  for (int e = 0; e < 4; e++) {
    ops(w, e == 0 ? 500 : 60);
    snprintf(what, sizeof what, "%s seed=%llu epoch %d before checkpoint", cfg, (unsigned long long)w->seed, e);
    T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint");
    snprintf(what, sizeof what, "%s seed=%llu epoch %d after checkpoint", cfg, (unsigned long long)w->seed, e);
    w->com = w->cur;
    verify(w, &w->cur, "failure-free epoch");
    theorem1(w, app, &p);
  }
  /* The "hole" pattern of Fig. 2: the big member shrinks while others grow. */
  w->target = w->me == 0 ? 3 : 100;
  ops(w, 300);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint");
  theorem1(w, app, &p);
  w->com = w->cur;
  int set[64], len = 1, count = 0;
  set[0] = 0;
  uint64_t pick = w->seed;
  do {
    for (int ph = 0; ph < 5; ph++) {
      if (ndom > 6 && t_below(&pick, 6) != 0) continue;
      one_failure(w, set, len, ph);
      count++;
    }
  } while (t_next_subset(set, &len, ndom, w->f));
  for (int reached = 0; reached <= w->f; reached++) op_crash(w, (int)(t_below(&pick, (size_t)ncompute)), reached);
  busy_host(w, app, &p);
  theorem1(w, app, &p);
  int napp = ncompute;
  queued_ops(w, (int)t_below(&pick, (size_t)napp), (int)t_below(&pick, (size_t)napp));
  theorem1(w, app, &p);
  beyond_f(w, &p);
  if (w->me == 0) printf("  %s: %d failure scenarios + %d operation crashes\n", cfg, count, w->f + 1);
  fuze__plan_free(&p);
  fuze_finalize(&w->ctx);
  MPI_Comm_free(&app);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  static world w;
  MPI_Comm_size(MPI_COMM_WORLD, &w.np);
  MPI_Comm_rank(MPI_COMM_WORLD, &w.me);
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 777;
  int fmax = argc > 2 ? atoi(argv[2]) : 3;
  w.k = argc > 3 ? atoi(argv[3]) : 1; /* ranks per emulated node */
  if (w.k < 1 || w.np % w.k) w.k = 1;
  if (w.me == 0) printf("test_fused: np=%d seed=%llu\n", w.np, (unsigned long long)seed);
  for (int fwd = 0; fwd < 2; fwd++)
    for (int spares = 0; spares <= 2; spares++)
      for (int f = 1; f <= fmax; f++) {
        w.f = f;
        w.spares = spares;
        w.forward = fwd;
        w.batch = (f + spares + fwd) % 2;
        w.seed = seed + (uint64_t)(100 * fwd + 10 * spares + f);
        run(&w);
      }
  int total = t_total(MPI_COMM_WORLD);
  if (w.me == 0) printf("test_fused: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
