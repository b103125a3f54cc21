#define _POSIX_C_SOURCE 200809L
/* Configurations compared across ranks (issue 15): for every key, ranks 1
 * and 3 get another value, from the config string or from FUZE_<KEY> in
 * their environment; fuze_init must return FUZE_ERR_CONFIG on every rank
 * with one message naming the key, both values, the ranks that hold each
 * and the environment variable, before anything could hang. verbose may
 * differ, and a configuration equal everywhere (also through the
 * environment) still starts. Run with 4 ranks. */
#include "common.h"

static int me, np;

typedef struct variant {
  const char *key;    /* the key that differs */
  const char *base;   /* the value on ranks 0 and 2 (NULL: not given) */
  const char *other;  /* the value on ranks 1 and 3 */
  const char *base_text, *other_text; /* as the message quotes them */
  int env;            /* ranks 1 and 3 set it with FUZE_<KEY> instead */
} variant;

static const variant cases[] = {
    {"faults", "1", "2", "1", "2", 0},
    {"spares", NULL, "1", "0", "1", 1},
    {"replacements", NULL, "1", "0", "1", 0},
    {"domain", "rank", "2", "rank", "2", 1},
    {"block", NULL, "2", "(unset)", "2", 0},
    {"code", "rs", "replicate", "rs", "replicate", 1},
    {"code", NULL, "byzantine", "rs", "byzantine", 0},
    {"recovery", "rollback", "forward", "rollback", "forward", 0},
    {"chunk", NULL, "128", "65536", "128", 0},
    {"capacity", "256", "16", "256", "16", 1},
    {"sync", NULL, "batch", "op", "batch", 0},
    {"lock", NULL, "exclusive", "shared", "exclusive", 0},
    {"shm", "auto", "off", "auto", "off", 1},
    {"dir", NULL, "/tmp/fuze-config-ranks-never", "(unset)", "/tmp/fuze-config-ranks-never", 0},
    {"persist_every", NULL, "2", "1", "2", 0},
    {"verify_every", NULL, "3", "0", "3", 1},
    {"inject", NULL, "wipe:ranks=1:at=checkpoint:2", "(none)",
     "wipe:ranks=1:at=checkpoint:2:phase=before", 0},
    {"inject", "kill:rank=0:at=checkpoint:4", "kill:rank=0:at=checkpoint:4:phase=after",
     "kill:rank=0:at=checkpoint:4:phase=before", "kill:rank=0:at=checkpoint:4:phase=after", 1},
    {"inject", NULL, "corrupt:rank=2:struct=a:at=checkpoint:1", "(none)",
     "corrupt:rank=2:struct=a:at=checkpoint:1:target=primary:bytes=1", 0},
};

static void env_name(const char *key, char *out, size_t len) {
  snprintf(out, len, "FUZE_%s", key);
  for (char *p = out; *p; p++)
    if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
}

/* Every rank's code and message equal: min/max of the code, and the
 * message's hash (rank 0's compared with each). */
static void same_everywhere(int rc, const char *msg, const char *what) {
  int lo, hi;
  MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  T_CHECK(lo == hi, "%s: codes differ across ranks (%d..%d)", what, lo, hi);
  char m0[512];
  snprintf(m0, sizeof m0, "%s", msg);
  MPI_Bcast(m0, sizeof m0, MPI_CHAR, 0, MPI_COMM_WORLD);
  T_CHECK(!strncmp(m0, msg, sizeof m0 - 1), "%s: message differs from rank 0's:\n  %s\n  %s", what, msg, m0);
}

static void one_case(const variant *v) {
  char cfg[256], var[32], want[512];
  int odd = me % 2 == 1;
  env_name(v->key, var, sizeof var);
  /* Ranks 0 and 2 run the base config; 1 and 3 change one key. */
  if (odd && v->env) {
    snprintf(cfg, sizeof cfg, "domain=rank%s%s%s%s", v->base ? ";" : "", v->base ? v->key : "",
             v->base ? "=" : "", v->base ? v->base : "");
    setenv(var, v->other, 1);
  } else if (odd) {
    snprintf(cfg, sizeof cfg, "domain=rank;%s=%s", v->key, v->other);
  } else {
    snprintf(cfg, sizeof cfg, "domain=rank%s%s%s%s", v->base ? ";" : "", v->base ? v->key : "",
             v->base ? "=" : "", v->base ? v->base : "");
  }
  /* domain=rank is in every base string; its case overrides it below. */
  if (!strcmp(v->key, "domain") && !odd) snprintf(cfg, sizeof cfg, "domain=%s", v->base);
  fuze_ctx *ctx = (fuze_ctx *)1;
  MPI_Comm app = MPI_COMM_WORLD;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  if (odd && v->env) unsetenv(var);
  char what[300];
  snprintf(what, sizeof what, "%s differs (%s)", v->key, cfg);
  T_EQ_INT(rc, FUZE_ERR_CONFIG, what);
  T_CHECK(ctx == NULL && app == MPI_COMM_NULL, "%s: ctx/app_comm not cleared", what);
  snprintf(want, sizeof want, "config key '%s' differs across ranks: ranks 0,2 have '%s', ranks "
           "1,3 have '%s'%s%s%s", v->key, v->base_text, v->other_text,
           v->env ? " (from environment variable " : "", v->env ? var : "", v->env ? ")" : "");
  const char *msg = fuze_last_error(NULL);
  T_CHECK(!strcmp(msg, want), "%s: message\n  '%s', expected\n  '%s'", what, msg, want);
  same_everywhere(rc, msg, what);
  if (rc == FUZE_SUCCESS) {
    fuze_finalize(&ctx);
    MPI_Comm_free(&app);
  }
}

/* Two keys differ, one rank only: the first is described, the other named. */
static void two_keys(void) {
  const char *cfg = me == 2 ? "domain=rank;faults=2;capacity=8" : "domain=rank";
  fuze_ctx *ctx;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  T_EQ_INT(rc, FUZE_ERR_CONFIG, "two keys differ");
  const char *want = "config key 'faults' differs across ranks: ranks 0-1,3 have '1', rank 2 has "
                     "'2'; also differ: capacity";
  T_CHECK(!strcmp(fuze_last_error(NULL), want), "two keys: '%s', expected '%s'",
          fuze_last_error(NULL), want);
  same_everywhere(rc, fuze_last_error(NULL), "two keys");
}

/* Some ranks' value from the environment, others' from the string. */
static void mixed_source(void) {
  const char *cfg = me == 3 ? "domain=rank;code=xor" : "domain=rank";
  if (me == 1) setenv("FUZE_CODE", "xor", 1);
  fuze_ctx *ctx;
  MPI_Comm app;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  unsetenv("FUZE_CODE");
  T_EQ_INT(rc, FUZE_ERR_CONFIG, "mixed sources");
  const char *want = "config key 'code' differs across ranks: ranks 0,2 have 'rs', ranks 1,3 have "
                     "'xor' (from environment variable FUZE_CODE on rank 1)";
  T_CHECK(!strcmp(fuze_last_error(NULL), want), "mixed: '%s', expected '%s'", fuze_last_error(NULL),
          want);
}

/* Equal everywhere (rank 1 through the environment) and verbose differing:
 * fuze_init succeeds and the context works. */
static void matching(void) {
  const char *cfg = me == 1 ? "domain=rank;verbose=0" : "domain=rank;capacity=32;faults=2";
  if (me == 1) {
    setenv("FUZE_CAPACITY", "32", 1);
    setenv("FUZE_FAULTS", "2", 1);
  }
  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(MPI_COMM_WORLD, cfg, &ctx, &app);
  unsetenv("FUZE_CAPACITY");
  unsetenv("FUZE_FAULTS");
  T_EQ_INT(rc, FUZE_SUCCESS, "matching config");
  if (rc) {
    fprintf(stderr, "rank %d: %s\n", me, fuze_last_error(NULL));
    return;
  }
  double d[4] = {me, 1, 2, 3};
  T_EQ_INT(fuze_protect(ctx, "d", d, 4, MPI_DOUBLE, NULL), FUZE_SUCCESS, "protect");
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint");
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  MPI_Comm_free(&app);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  if (np != 4) {
    if (me == 0) fprintf(stderr, "test_config_ranks: run with 4 ranks (got %d)\n", np);
    MPI_Finalize();
    return 1;
  }
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) one_case(&cases[i]);
  two_keys();
  mixed_source();
  matching();
  int total = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("test_config_ranks: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
