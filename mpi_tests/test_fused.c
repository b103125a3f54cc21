/* Fused stacks and maps end to end. Random operation sequences on every rank
 * at once (pushes and pops, inserts, updates and removes, empty structures,
 * growth past several capacity doublings, members of very different sizes),
 * checked against a plain reference model; then every failure set of <= f
 * domains (exhaustive up to 6 ranks) at every checkpoint phase, and crashes
 * between the backups of one remove, in both recovery modes; Theorem 1 (a
 * backup holds exactly as many live fused nodes as its largest member has
 * elements, and nothing beyond) after every epoch; with sync=batch, coalesced
 * runs of several 64 KiB accumulates (cut_runs); a refusal beyond f. */
#include "common.h"

#include "data/fused.h"
#include "core/plan.h"

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

/* Theorem 1 for one structure: the live fused nodes of every region this
 * rank hosts = its block's largest member (mine: this rank's size), and
 * nothing beyond them. */
static void nodes_check(world *w, MPI_Comm app, const fuze_plan *p, const char *name, uint64_t mine) {
  int napp;
  MPI_Comm_size(app, &napp);
  uint64_t *all = malloc(sizeof(uint64_t) * (size_t)napp);
  MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, app);
  uint64_t expect = 0;
  for (int b = 0; b < p->nblocks; b++) {
    uint64_t mx = 0;
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++)
      if (all[p->members[x]] > mx) mx = all[p->members[x]];
    for (int j = 0; j < p->f; j++)
      if (p->hosts[b * p->f + j] == w->me) expect += mx;
  }
  fuze_fused_stats st;
  T_EQ_INT(fuze_fused_info(w->ctx, name, &st), FUZE_SUCCESS, "fused_info");
  T_CHECK(st.nodes == expect, "%s: %s: live fused nodes %llu, largest members say %llu "
          "(sizes %llu %llu %llu)", what, name, (unsigned long long)st.nodes,
          (unsigned long long)expect, (unsigned long long)all[0], (unsigned long long)all[1],
          (unsigned long long)all[napp > 2 ? 2 : 0]);
  T_CHECK(st.stray_nodes == 0, "%s: %s: %llu non-zero nodes beyond the live ones", what, name,
          (unsigned long long)st.stray_nodes);
  free(all);
}

/* Theorem 1: live fused nodes per region = its block's largest member. */
static void theorem1(world *w, MPI_Comm app, const fuze_plan *p) {
  T_EQ_INT(fuze_flush(w->ctx), FUZE_SUCCESS, "flush");
  nodes_check(w, app, p, "stack", w->cur.sn);
  nodes_check(w, app, p, "map", w->cur.mn);
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

/* ---- sync=batch: coalesced runs longer than one accumulate ----
 *
 * A flush sends one accumulate per run of consecutive slots, cut at 64 KiB of
 * node bytes (COAL_ACC in src/fused.c). Between two flushes every rank pushes
 * or puts thousands of elements (ascending runs of several cuts), pops or
 * removes them all, pushes them again, pops back across cuts (descending
 * runs); element sizes 24 and 72 (with 8-byte keys) do not divide 64 KiB, 64
 * does (on even ranks the run is exactly 3 x 64 KiB, so the last accumulate is
 * full and not a cut). fuze_fobj.coal_cuts (fused.h) must count exactly the
 * cuts the run lengths imply, Theorem 1 must hold, and after f domains are
 * wiped every rank must get its structures back bit for bit. Buffers hold
 * FUZE_STAGE / (nb (1 + f) + kb) entries: every run stays below that, so no
 * flush happens on its own in the middle (f <= 3). */
#define CUT_ACC ((size_t)64 << 10)

typedef struct cutobj {
  const char *name;
  size_t kb, nb, n;     /* key and value bytes; elements in the model */
  fuze_stack *s;
  fuze_map *m;
  fuze_fobj *o;
  unsigned char *vals;  /* the model, in slot order */
  uint64_t *keys;
} cutobj;

static int cut_add(world *w, cutobj *c, uint64_t tag) {
  unsigned char *v = c->vals + c->n * c->nb;
  t_fill(&w->rng, v, c->nb);
  int rc;
  if (c->m) {
    c->keys[c->n] = (tag << 32 | c->n) * 0x9E3779B97F4A7C15ULL; /* distinct */
    rc = fuze_map_put(c->m, &c->keys[c->n], v);
  } else {
    rc = fuze_stack_push(c->s, v);
  }
  T_CHECK(rc == FUZE_SUCCESS, "%s: %s: adding element %zu: %s", what, c->name, c->n, fuze_err_name(rc));
  c->n++;
  return rc;
}

static int cut_drop(cutobj *c) {
  unsigned char got[1024]; /* the largest element of cut_runs and early_sends */
  c->n--;
  int rc = c->m ? fuze_map_remove(c->m, &c->keys[c->n]) : fuze_stack_pop(c->s, got);
  T_CHECK(rc == FUZE_SUCCESS, "%s: %s: removing element %zu: %s", what, c->name, c->n, fuze_err_name(rc));
  if (!rc && !c->m && memcmp(got, c->vals + c->n * c->nb, c->nb)) {
    T_CHECK(0, "%s: %s: popped element %zu differs", what, c->name, c->n);
    rc = FUZE_ERR_STATE;
  }
  return rc;
}

/* Flush; the run of slots each structure coalesced must have been cut
 * exactly (run - 1) / (64 KiB / nb) times for each of the f backups. */
static void cut_flush(world *w, cutobj *c, int nc, const size_t *run, const char *tag) {
  uint64_t before[8];
  for (int x = 0; x < nc; x++) before[x] = c[x].o->coal_cuts;
  T_EQ_INT(fuze_flush(w->ctx), FUZE_SUCCESS, "flush");
  for (int x = 0; x < nc; x++) {
    uint64_t got = c[x].o->coal_cuts - before[x], expect = 0;
    if (!c[x].o->excl && run[x]) expect = (uint64_t)w->f * ((run[x] - 1) / (CUT_ACC / c[x].nb));
    T_CHECK(got == expect, "%s: %s %s: a run of %zu slots of %zu bytes was cut %llu times, "
            "expected %llu", what, c[x].name, tag, run[x], c[x].nb, (unsigned long long)got,
            (unsigned long long)expect);
  }
}

typedef struct cut_walk { const cutobj *c; size_t i; int bad; } cut_walk;

static int cut_fe(const void *key, const void *val, void *arg) {
  cut_walk *cw = arg;
  const cutobj *c = cw->c;
  if (cw->i >= c->n || memcmp(key, &c->keys[cw->i], 8) || memcmp(val, c->vals + cw->i * c->nb, c->nb)) {
    cw->bad = 1;
    return 1;
  }
  cw->i++;
  return 0;
}

/* Bit-exact: the size, every element in slot order, and for maps every key
 * through the (rebuilt) hash index. */
static void cut_verify(const cutobj *c, const char *tag) {
  size_t n = c->m ? fuze_map_size(c->m) : fuze_stack_size(c->s);
  T_CHECK(n == c->n, "%s %s: %s holds %zu elements, expected %zu", what, tag, c->name, n, c->n);
  if (n != c->n) return;
  unsigned char e[1024];
  if (!c->m) {
    for (size_t i = 0; i < n; i++) {
      int rc = fuze_stack_at(c->s, i, e);
      if (rc || memcmp(e, c->vals + i * c->nb, c->nb)) {
        T_CHECK(0, "%s %s: %s element %zu differs (rc %d)", what, tag, c->name, i, rc);
        return;
      }
    }
    return;
  }
  cut_walk cw = {c, 0, 0};
  T_CHECK(fuze_map_foreach(c->m, cut_fe, &cw) == 0 && !cw.bad && cw.i == n,
          "%s %s: %s slot %zu differs", what, tag, c->name, cw.i);
  for (size_t i = 0; i < n; i++) {
    int rc = fuze_map_get(c->m, &c->keys[i], e);
    if (rc || memcmp(e, c->vals + i * c->nb, c->nb)) {
      T_CHECK(0, "%s %s: %s key of slot %zu: rc %s or value differs", what, tag, c->name, i,
              fuze_err_name(rc));
      return;
    }
  }
}

/* f domains holding members of block 0 are wiped: their structures (the
 * world's and the n cut objects) are decoded from every backup of the
 * block, checked, and committed. */
static void wipe_block0(world *w, MPI_Comm app, const fuze_plan *p, const cutobj *c, int n) {
  int dom[8], nd = 0, ranks[64], nr = 0, ndom = w->np / w->k;
  for (int x = p->block_start[0]; x < p->block_start[1] + ndom && nd < w->f; x++) {
    int d = x < p->block_start[1] ? p->members[x] / w->k : x - p->block_start[1], dup = 0;
    for (int y = 0; y < nd; y++) dup |= dom[y] == d;
    if (!dup) dom[nd++] = d;
  }
  for (int y = 0; y < nd; y++)
    for (int r = dom[y] * w->k; r < (dom[y] + 1) * w->k; r++) ranks[nr++] = r;
  T_EQ_INT(fuze_inject(w->ctx, ranks, nr), FUZE_SUCCESS, "inject");
  int rc = fuze_recover(w->ctx);
  T_CHECK(rc == FUZE_RECOVERED, "%s: recover returned %s: %s", what, fuze_err_name(rc),
          fuze_last_error(w->ctx));
  verify(w, &w->cur, "after the wipe");
  for (int x = 0; x < n; x++) cut_verify(&c[x], "after the wipe");
  for (int x = 0; x < n; x++) nodes_check(w, app, p, c[x].name, c[x].n);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint after the wipe");
  w->com = w->cur;
}

static void cut_runs(world *w, MPI_Comm app, const fuze_plan *p) {
  if (!w->batch || w->f > 2) return;
  enum { NC = 3 };
  cutobj c[NC] = {{.name = "cut24", .nb = 24}, {.name = "cut64", .nb = 64},
                  {.name = "cut72", .kb = 8, .nb = 72}};
  size_t me = (size_t)w->me;
  /* Elements per rank (members of different sizes), and how many to pop back. */
  size_t full[NC] = {9000 + 61 * me, me % 2 ? 3072 + 300 + me : 3072, 3000 + 23 * me};
  size_t back[NC] = {6000, 2049, 2000};
  snprintf(what, sizeof what, "cut runs np=%d f=%d spares=%d %s%s", w->np, w->f, w->spares,
           w->forward ? "forward" : "rollback", w->k > 1 ? " nodes" : "");
  int rc = fuze_stack_create(w->ctx, c[0].name, c[0].nb, &c[0].s);
  T_EQ_INT(rc, FUZE_SUCCESS, "create cut24");
  if (!rc) T_EQ_INT(rc = fuze_stack_create(w->ctx, c[1].name, c[1].nb, &c[1].s), FUZE_SUCCESS, "create cut64");
  if (!rc) T_EQ_INT(rc = fuze_map_create(w->ctx, c[2].name, c[2].kb, c[2].nb, &c[2].m), FUZE_SUCCESS, "create cut72");
  if (rc) return;
  for (int x = 0; x < NC; x++) {
    c[x].o = c[x].m ? &c[x].m->o : &c[x].s->o;
    c[x].vals = malloc(full[x] * c[x].nb);
    c[x].keys = malloc(full[x] * sizeof *c[x].keys);
  }
  /* Grow the capacity (these operations wait in the queue), commit. */
  for (int x = 0; x < NC && !rc; x++)
    for (size_t i = 0; i < full[x] && !rc; i++) rc = cut_add(w, &c[x], 1);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint after growth");
  /* Everything popped or removed, last slot first: descending runs. */
  for (int x = 0; x < NC && !rc; x++)
    for (size_t i = 0; i < full[x] && !rc; i++) rc = cut_drop(&c[x]);
  cut_flush(w, c, NC, full, "pop all");
  /* Pushed or put again: ascending runs. */
  for (int x = 0; x < NC && !rc; x++)
    for (size_t i = 0; i < full[x] && !rc; i++) rc = cut_add(w, &c[x], 2);
  cut_flush(w, c, NC, full, "push");
  /* Back across the cuts: descending runs that start in the middle of one. */
  for (int x = 0; x < NC && !rc; x++)
    for (size_t i = 0; i < back[x] && !rc; i++) rc = cut_drop(&c[x]);
  cut_flush(w, c, NC, back, "pop back");
  for (int x = 0; x < NC; x++) nodes_check(w, app, p, c[x].name, c[x].n);
  if (!w->forward) T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint before the wipe");
  wipe_block0(w, app, p, c, NC);
  if (w->me == 0)
    printf("  cut runs: f=%d %s: %llu %llu %llu cuts\n", w->f, w->forward ? "forward" : "rollback",
           (unsigned long long)c[0].o->coal_cuts, (unsigned long long)c[1].o->coal_cuts,
           (unsigned long long)c[2].o->coal_cuts);
  for (int x = 0; x < NC; x++) {
    free(c[x].vals);
    free(c[x].keys);
  }
}

/* ---- sync=batch: buffers that fill up between two flushes ----
 *
 * A structure's coalescing buffer holds FUZE_STAGE / (nb (1 + f) + kb)
 * entries (src/data/fsend.c); when an operation finds it full, the buffer is
 * sent and completed only locally (MPI_Win_flush_local: no round trip to the
 * hosts), and the deltas are owed to the backups until the next fuze_flush
 * or collective call. With 1000-byte elements the buffers fill every few
 * hundred operations: fuze_fobj.coal_early must count exactly the sends the
 * operation counts imply (a send before operation k of a run when k is a
 * multiple of max - 1, one entry per push, pop, put of a new key or remove of
 * the last element), and after fuze_flush (forward) or fuze_checkpoint
 * (rollback), the wipe of f domains holding members of block 0 must give
 * every rank its structures back bit for bit. */
#define EARLY_STAGE ((size_t)1 << 20) /* FUZE_STAGE */

static void early_sends(world *w, MPI_Comm app, const fuze_plan *p) {
  if (!w->batch) return;
  enum { NC = 2 };
  cutobj c[NC] = {{.name = "early1000", .nb = 1000}, {.name = "earlymap", .kb = 8, .nb = 1000}};
  size_t me = (size_t)w->me, full[NC] = {1500 + 7 * me, 1200 + 11 * me};
  snprintf(what, sizeof what, "early sends np=%d f=%d spares=%d %s%s", w->np, w->f, w->spares,
           w->forward ? "forward" : "rollback", w->k > 1 ? " nodes" : "");
  int rc = fuze_stack_create(w->ctx, c[0].name, c[0].nb, &c[0].s);
  T_EQ_INT(rc, FUZE_SUCCESS, "create early1000");
  if (!rc) T_EQ_INT(rc = fuze_map_create(w->ctx, c[1].name, c[1].kb, c[1].nb, &c[1].m), FUZE_SUCCESS, "create earlymap");
  if (rc) return;
  uint64_t expect[NC], before[NC];
  for (int x = 0; x < NC; x++) {
    c[x].o = c[x].m ? &c[x].m->o : &c[x].s->o;
    c[x].vals = malloc(full[x] * c[x].nb);
    c[x].keys = malloc(full[x] * sizeof *c[x].keys);
    size_t max = EARLY_STAGE / (c[x].nb * (1 + (size_t)w->f) + c[x].kb);
    /* two runs of full[x] operations; lock=exclusive sends every operation on its own */
    expect[x] = c[x].o->excl ? 0 : 2 * ((full[x] - 1) / (max - 1));
  }
  /* Grow the capacity (these operations wait in the queue), commit. */
  for (int x = 0; x < NC && !rc; x++)
    for (size_t i = 0; i < full[x] && !rc; i++) rc = cut_add(w, &c[x], 3);
  T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint after growth");
  for (int x = 0; x < NC; x++) before[x] = c[x].o->coal_early;
  /* Everything popped or removed (the last element each time), then pushed
   * or put again, with no flush in between. */
  for (int x = 0; x < NC && !rc; x++)
    for (size_t i = 0; i < full[x] && !rc; i++) rc = cut_drop(&c[x]);
  for (int x = 0; x < NC && !rc; x++)
    for (size_t i = 0; i < full[x] && !rc; i++) rc = cut_add(w, &c[x], 4);
  for (int x = 0; x < NC; x++) {
    uint64_t got = c[x].o->coal_early - before[x];
    T_CHECK(got == expect[x], "%s: %s: %llu buffers sent before the flush, expected %llu", what,
            c[x].name, (unsigned long long)got, (unsigned long long)expect[x]);
  }
  /* The deltas reach the backups at the next fuze_flush or collective call. */
  if (w->forward) T_EQ_INT(fuze_flush(w->ctx), FUZE_SUCCESS, "flush");
  else T_EQ_INT(fuze_checkpoint(w->ctx), FUZE_SUCCESS, "checkpoint before the wipe");
  for (int x = 0; x < NC; x++) nodes_check(w, app, p, c[x].name, c[x].n);
  wipe_block0(w, app, p, c, NC);
  if (w->me == 0)
    printf("  early sends: f=%d %s: %llu %llu buffers sent before the flush\n", w->f,
           w->forward ? "forward" : "rollback", (unsigned long long)(c[0].o->coal_early - before[0]),
           (unsigned long long)(c[1].o->coal_early - before[1]));
  for (int x = 0; x < NC; x++) {
    free(c[x].vals);
    free(c[x].keys);
  }
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
  cut_runs(w, app, &p);
  early_sends(w, app, &p);
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
