/* Threads (issue 15): several threads per rank call fuze at once.
 *
 *   test_threads multiple [config]   MPI_THREAD_MULTIPLE:
 *     own:    4 threads per rank, each with its own map and stack, many
 *             puts/removes and pushes/pops; checkpoint; fuze_verify clean;
 *             more threaded operations (uncommitted); a wipe of one rank;
 *             recovery; every rank's structures bit-exact (slot order, keys,
 *             values, stack elements) against a reference replayed without
 *             threads from the same seeds; fuze_verify clean again. Every
 *             rank is the victim once.
 *     shared: the same with all 4 threads on one map and one stack (fuze
 *             serialises them): contents checked as sets against the
 *             reference (interleavings differ), then after a wipe and
 *             recovery bit-exact against the state read at the checkpoint.
 *     collective entry: a second thread entering a collective call while
 *             another is inside one gets FUZE_ERR_STATE and the message.
 *   test_threads funneled    MPI_THREAD_FUNNELED: calls from a thread other
 *             than fuze_init's get FUZE_ERR_STATE and the message; the main
 *             thread's calls work.
 *   test_threads serialized  MPI_THREAD_SERIALIZED: 4 threads on their own
 *             structures at once (fuze serialises its MPI calls); verify
 *             clean, wipe, recovery bit-exact.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <pthread.h>
#include <time.h>

#define NT 4        /* threads per rank */
#define KEYS 300    /* key space of a thread's map */
#define VB 24       /* map value bytes */
#define EB 16       /* stack element bytes */
#define MAXS 4096   /* stack elements in a model */

/* A plain model of a map with fuze's slot semantics (a remove moves the last
 * slot into the hole, Fig. 5) and of a stack. */
typedef struct model {
  size_t mn, sn;
  uint64_t keys[NT * KEYS];
  unsigned char vals[NT * KEYS][VB];
  unsigned char st[MAXS][EB];
} model;

static long mfind(const model *m, uint64_t k) {
  for (size_t i = 0; i < m->mn; i++)
    if (m->keys[i] == k) return (long)i;
  return -1;
}

static void model_put(model *m, uint64_t k, const unsigned char *v) {
  long s = mfind(m, k);
  if (s < 0) {
    s = (long)m->mn++;
    m->keys[s] = k;
  }
  memcpy(m->vals[s], v, VB);
}

static int model_remove(model *m, uint64_t k) {
  long s = mfind(m, k);
  if (s < 0) return 0;
  size_t last = --m->mn;
  m->keys[s] = m->keys[last];
  memcpy(m->vals[s], m->vals[last], VB);
  return 1;
}

typedef struct job {
  fuze_map *m;
  fuze_stack *s;
  uint64_t seed;
  int ops;
  int key_base;  /* keys of this thread: key_base .. key_base + KEYS - 1 */
  int shared;    /* the structures are shared: pop results are not predictable */
  model *ref;    /* own structures: the thread's model (applied by the replay) */
  int failures;
  char first[256];
} job;

static void job_fail(job *j, const char *what, int rc, int op) {
  if (!j->failures++) snprintf(j->first, sizeof j->first, "%s returned %d (op %d)", what, rc, op);
}

/* One operation sequence, the same in the thread (on fuze) and in the replay
 * (on the model, fuze NULL). */
static void run_ops(job *j, model *md, int on_fuze) {
  uint64_t rng = j->seed;
  unsigned char v[VB], e[EB], got[EB];
  for (int i = 0; i < j->ops; i++) {
    uint64_t r = t_rng(&rng);
    uint64_t k = (uint64_t)j->key_base + r % KEYS;
    t_fill(&rng, v, VB);
    t_fill(&rng, e, EB);
    int kind = (int)((r >> 32) % 10);
    if (kind < 4) { /* put */
      if (on_fuze) {
        int rc = fuze_map_put(j->m, &k, v);
        if (rc) job_fail(j, "fuze_map_put", rc, i);
      } else {
        model_put(md, k, v);
      }
    } else if (kind < 6) { /* remove */
      if (on_fuze) {
        int rc = fuze_map_remove(j->m, &k);
        if (rc != FUZE_SUCCESS && rc != FUZE_ERR_NOT_FOUND) job_fail(j, "fuze_map_remove", rc, i);
      } else {
        model_remove(md, k);
      }
    } else if (kind < 8) { /* push */
      if (on_fuze) {
        int rc = fuze_stack_push(j->s, e);
        if (rc) job_fail(j, "fuze_stack_push", rc, i);
      } else if (md->sn < MAXS) {
        memcpy(md->st[md->sn++], e, EB);
      }
    } else { /* pop */
      if (on_fuze) {
        int rc = fuze_stack_pop(j->s, got);
        if (rc != FUZE_SUCCESS && rc != FUZE_ERR_EMPTY) job_fail(j, "fuze_stack_pop", rc, i);
      } else if (md->sn) {
        md->sn--;
      }
    }
    if (on_fuze && (i & 63) == 0) { /* reads interleave with the writers */
      size_t n = fuze_map_size(j->m);
      if (n > (size_t)NT * KEYS) job_fail(j, "fuze_map_size (too large)", (int)n, i);
      uint64_t q = (uint64_t)j->key_base;
      int rc = fuze_map_get(j->m, &q, v);
      if (rc != FUZE_SUCCESS && rc != FUZE_ERR_NOT_FOUND) job_fail(j, "fuze_map_get", rc, i);
    }
  }
}

static void *thread_main(void *arg) {
  job *j = arg;
  run_ops(j, NULL, 1);
  return NULL;
}

static int run_threads(job *jobs) {
  pthread_t th[NT];
  int bad = 0;
  for (int t = 0; t < NT; t++)
    if (pthread_create(&th[t], NULL, thread_main, &jobs[t])) {
      fprintf(stderr, "pthread_create failed\n");
      exit(2);
    }
  for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < NT; t++)
    if (jobs[t].failures) {
      T_CHECK(0, "thread %d: %d failures, first: %s", t, jobs[t].failures, jobs[t].first);
      bad = 1;
    }
  return bad;
}

/* A snapshot of a map in slot order and a stack bottom to top. */
typedef struct snap {
  size_t mn, sn;
  uint64_t *keys;
  unsigned char *vals, *st;
} snap;

static int snap_pair(const void *k, const void *v, void *arg) {
  snap *s = arg;
  memcpy(&s->keys[s->mn], k, sizeof(uint64_t));
  memcpy(s->vals + s->mn * VB, v, VB);
  s->mn++;
  return 0;
}

static void snap_take(snap *s, fuze_map *m, fuze_stack *st) {
  size_t mn = fuze_map_size(m), sn = fuze_stack_size(st);
  s->keys = realloc(s->keys, (mn + 1) * sizeof *s->keys);
  s->vals = realloc(s->vals, (mn + 1) * VB);
  s->st = realloc(s->st, (sn + 1) * EB);
  s->mn = 0;
  T_EQ_INT(fuze_map_foreach(m, snap_pair, s), FUZE_SUCCESS, "foreach");
  T_CHECK(s->mn == mn, "foreach visited %zu pairs, size %zu", s->mn, mn);
  s->sn = sn;
  for (size_t i = 0; i < sn; i++) T_EQ_INT(fuze_stack_at(st, i, s->st + i * EB), FUZE_SUCCESS, "stack_at");
}

static void snap_free(snap *s) {
  free(s->keys);
  free(s->vals);
  free(s->st);
  memset(s, 0, sizeof *s);
}

/* Bit-exact: the map in slot order and the stack. */
static void snap_equal(const snap *a, const snap *b, const char *what) {
  T_CHECK(a->mn == b->mn, "%s: map has %zu pairs, expected %zu", what, a->mn, b->mn);
  T_CHECK(a->sn == b->sn, "%s: stack has %zu elements, expected %zu", what, a->sn, b->sn);
  if (a->mn == b->mn) {
    T_CHECK(!memcmp(a->keys, b->keys, a->mn * sizeof *a->keys), "%s: map keys (slot order) differ", what);
    T_CHECK(!memcmp(a->vals, b->vals, a->mn * VB), "%s: map values differ", what);
  }
  if (a->sn == b->sn) T_CHECK(!memcmp(a->st, b->st, a->sn * EB), "%s: stack elements differ", what);
}

static void snap_of_model(snap *s, const model *md) {
  s->keys = realloc(s->keys, (md->mn + 1) * sizeof *s->keys);
  s->vals = realloc(s->vals, (md->mn + 1) * VB);
  s->st = realloc(s->st, (md->sn + 1) * EB);
  s->mn = md->mn;
  s->sn = md->sn;
  memcpy(s->keys, md->keys, md->mn * sizeof *md->keys);
  memcpy(s->vals, md->vals, md->mn * VB);
  memcpy(s->st, md->st, md->sn * EB);
}

static void verify_clean(fuze_ctx *ctx, const char *what, int live) {
  fuze_verify_report rep;
  memset(&rep, 0xff, sizeof rep);
  int rc = fuze_verify(ctx, &rep);
  T_CHECK(rc == FUZE_SUCCESS, "%s: fuze_verify returned %s: %s", what, fuze_err_name(rc), fuze_last_error(ctx));
  T_CHECK(rep.mismatches == 0, "%s: verify found %llu mismatching ranges", what,
          (unsigned long long)rep.mismatches);
  if (live >= 0) T_CHECK(rep.live == live, "%s: report.live %d, expected %d", what, rep.live, live);
}

/* 4 threads on their own structures (own = 1) or all on one (own = 0); two
 * rounds, a checkpoint between, then a wipe of `victim` and recovery. */
static void scenario(fuze_ctx *ctx, MPI_Comm comm, int me, int own, int round, int victim, int ops) {
  char what[128], name[64];
  fuze_map *m[NT];
  fuze_stack *s[NT];
  int nstruct = own ? NT : 1;
  for (int t = 0; t < nstruct; t++) {
    snprintf(name, sizeof name, "r%d.%s.map%d", round, own ? "own" : "shared", t);
    T_EQ_INT(fuze_map_create(ctx, name, sizeof(uint64_t), VB, &m[t]), FUZE_SUCCESS, "map_create");
    snprintf(name, sizeof name, "r%d.%s.stack%d", round, own ? "own" : "shared", t);
    T_EQ_INT(fuze_stack_create(ctx, name, EB, &s[t]), FUZE_SUCCESS, "stack_create");
  }
  job jobs[NT];
  static model ref[NT];
  memset(jobs, 0, sizeof jobs);
  for (int t = 0; t < NT; t++) {
    jobs[t] = (job){.m = m[own ? t : 0], .s = s[own ? t : 0], .ops = ops, .key_base = own ? 0 : t * KEYS,
                    .shared = !own, .seed = 1000003u * (uint64_t)(me + 1) + 7919u * (uint64_t)t + (uint64_t)round};
  }
  /* Round 1: committed by the checkpoint. */
  run_threads(jobs);
  snap at_ckpt[NT], now;
  memset(at_ckpt, 0, sizeof at_ckpt);
  memset(&now, 0, sizeof now);
  if (own) {
    for (int t = 0; t < NT; t++) { /* the reference, without threads */
      memset(&ref[t], 0, sizeof ref[t]);
      run_ops(&jobs[t], &ref[t], 0);
      snap_of_model(&at_ckpt[t], &ref[t]);
      snap_take(&now, m[t], s[t]);
      snprintf(what, sizeof what, "round %d own thread %d after the threads", round, t);
      snap_equal(&now, &at_ckpt[t], what);
    }
  } else {
    /* Shared: the map's contents as a set (interleavings change slot order),
     * the stack's size (pops take whatever is on top). */
    memset(&ref[0], 0, sizeof ref[0]);
    for (int t = 0; t < NT; t++) run_ops(&jobs[t], &ref[0], 0);
    snap_take(&now, m[0], s[0]);
    T_CHECK(now.mn == ref[0].mn, "round %d shared: map has %zu pairs, reference %zu", round, now.mn, ref[0].mn);
    for (size_t i = 0; i < ref[0].mn; i++) {
      unsigned char v[VB];
      int rc = fuze_map_get(m[0], &ref[0].keys[i], v);
      T_CHECK(rc == FUZE_SUCCESS && !memcmp(v, ref[0].vals[i], VB), "round %d shared: key %llu: rc %d or value differs",
              round, (unsigned long long)ref[0].keys[i], rc);
    }
    /* Pops of one thread may find the stack empty while another's pushes
     * are pending, so only bounds hold: every element is one some thread
     * pushed (checked bit-exact after recovery below). */
    T_CHECK(now.sn <= (size_t)NT * (size_t)ops, "round %d shared: stack size %zu", round, now.sn);
    snap_take(&at_ckpt[0], m[0], s[0]);
  }
  snap_free(&now);
  int rc = fuze_checkpoint(ctx);
  T_CHECK(rc == FUZE_SUCCESS, "round %d: checkpoint returned %s: %s", round, fuze_err_name(rc), fuze_last_error(ctx));
  snprintf(what, sizeof what, "round %d %s: after the checkpoint", round, own ? "own" : "shared");
  verify_clean(ctx, what, 0);
  /* Round 2: uncommitted, rolled back by the recovery. */
  for (int t = 0; t < NT; t++) jobs[t].seed += 55555u;
  run_threads(jobs);
  snprintf(what, sizeof what, "round %d %s: live, before the wipe", round, own ? "own" : "shared");
  verify_clean(ctx, what, 1); /* live: stacks and maps changed since the commit */
  T_EQ_INT(fuze_inject(ctx, &victim, 1), FUZE_SUCCESS, "inject");
  rc = fuze_recover(ctx);
  T_CHECK(rc == FUZE_RECOVERED, "round %d: recover returned %s: %s", round, fuze_err_name(rc), fuze_last_error(ctx));
  for (int t = 0; t < nstruct; t++) {
    snap_take(&now, m[t], s[t]);
    snprintf(what, sizeof what, "round %d %s structure %d after wiping rank %d (rank %d%s)", round,
             own ? "own" : "shared", t, victim, me, me == victim ? ", the wiped one" : "");
    snap_equal(&now, &at_ckpt[t], what);
  }
  snap_free(&now);
  for (int t = 0; t < NT; t++) snap_free(&at_ckpt[t]);
  snprintf(what, sizeof what, "round %d %s: after the recovery", round, own ? "own" : "shared");
  verify_clean(ctx, what, -1);
  MPI_Barrier(comm);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A second thread's collective call while the first is inside one. */
static fuze_ctx *g_ctx;
static volatile int g_started;
static int g_ckpt_rc;
static void *ckpt_thread(void *arg) {
  (void)arg;
  __atomic_store_n(&g_started, 1, __ATOMIC_RELEASE);
  g_ckpt_rc = fuze_checkpoint(g_ctx);
  return NULL;
}

static void collective_entry(fuze_ctx *ctx, MPI_Comm comm, int me) {
  g_ctx = ctx;
  if (me == 0) {
    /* Rank 1 joins only after this: rank 0's checkpoint waits inside. */
    pthread_t th;
    pthread_create(&th, NULL, ckpt_thread, NULL);
    while (!__atomic_load_n(&g_started, __ATOMIC_ACQUIRE)) sleep_ms(1);
    sleep_ms(500);
    int rc = fuze_verify(ctx, NULL);
    T_EQ_INT(rc, FUZE_ERR_STATE, "fuze_verify while another thread is in fuze_checkpoint");
    const char *want = "fuze_verify: another thread of rank 0 is inside a collective call "
                       "(fuze_checkpoint) on this context; collective calls must come from one "
                       "thread at a time, in the same order on every rank";
    T_CHECK(!strcmp(fuze_last_error(NULL), want), "message: '%s', expected '%s'", fuze_last_error(NULL), want);
    int go = 1;
    MPI_Send(&go, 1, MPI_INT, 1, 99, comm);
    pthread_join(th, NULL);
  } else {
    if (me == 1) {
      int go = 0;
      MPI_Recv(&go, 1, MPI_INT, 0, 99, comm, MPI_STATUS_IGNORE);
    }
    g_ckpt_rc = fuze_checkpoint(ctx);
  }
  T_EQ_INT(g_ckpt_rc, FUZE_SUCCESS, "the first thread's checkpoint");
}

/* FUNNELED: another thread may not call fuze. */
static int g_thread_rc[3];
static char g_thread_msg[3][512];
static fuze_map *g_map;
static void *funneled_thread(void *arg) {
  (void)arg;
  uint64_t k = 1;
  unsigned char v[VB] = {0};
  g_thread_rc[0] = fuze_map_put(g_map, &k, v);
  snprintf(g_thread_msg[0], sizeof g_thread_msg[0], "%s", fuze_last_error(NULL));
  g_thread_rc[1] = fuze_checkpoint(g_ctx);
  snprintf(g_thread_msg[1], sizeof g_thread_msg[1], "%s", fuze_last_error(NULL));
  g_thread_rc[2] = (int)fuze_map_size(g_map);
  return NULL;
}

static void funneled(fuze_ctx *ctx, int me) {
  g_ctx = ctx;
  T_EQ_INT(fuze_map_create(ctx, "funneled", sizeof(uint64_t), VB, &g_map), FUZE_SUCCESS, "map_create");
  uint64_t k = 7;
  unsigned char v[VB] = {1};
  T_EQ_INT(fuze_map_put(g_map, &k, v), FUZE_SUCCESS, "main thread put");
  pthread_t th;
  pthread_create(&th, NULL, funneled_thread, NULL);
  pthread_join(th, NULL);
  char want[512];
  snprintf(want, sizeof want, "fuze_map_put: called from a thread other than the one that called "
           "fuze_init, but MPI provides only MPI_THREAD_FUNNELED on rank %d; initialise MPI with "
           "MPI_Init_thread(MPI_THREAD_SERIALIZED or MPI_THREAD_MULTIPLE) to call fuze from several "
           "threads", me);
  T_EQ_INT(g_thread_rc[0], FUZE_ERR_STATE, "put from another thread under FUNNELED");
  T_CHECK(!strcmp(g_thread_msg[0], want), "message '%s', expected '%s'", g_thread_msg[0], want);
  T_EQ_INT(g_thread_rc[1], FUZE_ERR_STATE, "checkpoint from another thread under FUNNELED");
  T_CHECK(strstr(g_thread_msg[1], "fuze_checkpoint: called from a thread other than") == g_thread_msg[1],
          "message '%s'", g_thread_msg[1]);
  T_EQ_INT(g_thread_rc[2], 0, "fuze_map_size from another thread under FUNNELED is 0");
  T_CHECK(fuze_map_size(g_map) == 1, "the refused put changed nothing: size %zu", fuze_map_size(g_map));
  int rc = fuze_checkpoint(ctx);
  T_EQ_INT(rc, FUZE_SUCCESS, "main thread checkpoint");
  verify_clean(ctx, "funneled", 0);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "multiple";
  const char *config = argc > 2 ? argv[2] : "faults=2;domain=rank";
  int ops = argc > 3 ? atoi(argv[3]) : 1500;
  /* The tsan preset runs fewer operations (TSan is ~10x slower). */
  if (getenv("FUZE_TEST_THREAD_OPS")) ops = atoi(getenv("FUZE_TEST_THREAD_OPS"));
  int want = !strcmp(mode, "funneled") ? MPI_THREAD_FUNNELED
             : !strcmp(mode, "serialized") ? MPI_THREAD_SERIALIZED : MPI_THREAD_MULTIPLE;
  int provided = -1;
  MPI_Init_thread(&argc, &argv, want, &provided);
  int me, np;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  if (provided < want) {
    if (me == 0) fprintf(stderr, "FAIL: MPI provides thread level %d, the test needs %d\n", provided, want);
    MPI_Finalize();
    return 1;
  }
  fuze_ctx *ctx = NULL;
  MPI_Comm comm;
  int rc = fuze_init(MPI_COMM_WORLD, config, &ctx, &comm);
  if (rc != FUZE_SUCCESS) {
    fprintf(stderr, "fuze_init: %s\n", fuze_last_error(NULL));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (!strcmp(mode, "funneled")) {
    funneled(ctx, me);
  } else {
    int round = 0;
    for (int v = 0; v < np; v++) scenario(ctx, comm, me, 1, round++, v, ops);
    if (!strcmp(mode, "multiple")) {
      for (int v = np - 1; v >= 0; v -= 2) scenario(ctx, comm, me, 0, round++, v, ops);
      collective_entry(ctx, comm, me);
    }
  }
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  int fails = t_total(comm);
  MPI_Comm_free(&comm);
  if (me == 0) printf("%s: %s (%s)\n", fails ? "FAIL" : "PASS", mode, config);
  MPI_Finalize();
  return fails ? 1 : 0;
}
