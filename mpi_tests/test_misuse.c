#define _POSIX_C_SOURCE 200809L
/* API misuse must give a clear error on every rank, never a crash or hang:
 * bad configuration, NULL base with count > 0, datatypes with bad bounds, names that
 * differ across ranks, bad injection arguments, calls after fuze_finalize. */
#include "common.h"

static fuze_ctx *ctx;
static MPI_Comm app;
static int me, np;

static void expect(int rc, int want, const char *needle, const char *what) {
  T_EQ_INT(rc, want, what);
  const char *msg = fuze_last_error(ctx);
  T_CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle);
  /* Collective calls return the same code everywhere. */
  int lo, hi;
  MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  T_CHECK(lo == hi, "%s: codes differ across ranks (%d..%d)", what, lo, hi);
}

static void bad_configs(void) {
  static const struct { const char *cfg, *needle; } cases[] = {
      {"faults=0", "bad value '0' for key 'faults' (accepted: 1..255)"},
      {"faults=two", "bad value 'two' for key 'faults'"},
      {"colour=blue", "unknown key 'colour'"},
      {"code=lzma", "bad value 'lzma' for key 'code' (accepted: rs, xor, replicate, byzantine)"},
      {"domain=-3", "bad value '-3' for key 'domain'"},
      {"recovery=sideways", "key 'recovery' (accepted: rollback, forward)"},
      {"shm=maybe", "bad value 'maybe' for key 'shm' (accepted: auto, on, off)"},
      {"chunk=100", "key 'chunk' (accepted: a multiple of 64"},
      {"code=xor;faults=2", "code=xor tolerates exactly one fault, got faults=2"},
      {"faults", "'faults' is not of the form key=value"},
      {"inject=boom:ranks=1:at=checkpoint:2", "the kind must be 'wipe'"},
      {"inject=kill:at=checkpoint:2", "rank= is missing"},
      {"inject=wipe:ranks=1", "at=checkpoint:E is missing"},
      {"inject=wipe:ranks=1:at=checkpoint:2:phase=middle", "unknown phase"},
      {"inject=wipe:ranks=99:at=checkpoint:1;domain=rank", "config: inject spec "
       "'wipe:ranks=99:at=checkpoint:1:phase=before' can never fire: it names rank 99 but the job "
       "has 3 ranks (0..2)"},
      {"inject=wipe:ranks=1:at=checkpoint:2:phase=persist;domain=rank", "config: inject spec "
       "'wipe:ranks=1:at=checkpoint:2:phase=persist' can never fire: phase=persist strikes while "
       "an epoch is persisted, and without dir=PATH nothing is"},
      {"inject=kill:rank=0:at=checkpoint:1:phase=persisted;domain=rank", "config: inject spec "
       "'kill:rank=0:at=checkpoint:1:phase=persisted' can never fire: phase=persisted strikes"},
      {"inject=corrupt:rank=1:struct=a:at=checkpoint:1:target=replica;domain=rank", "config: inject "
       "spec 'corrupt:rank=1:struct=a:at=checkpoint:1:target=replica:bytes=1' can never fire: "
       "target=replica needs code=byzantine (only it keeps replicas)"},
      {"faults=9;domain=rank", "faults=9 needs at least 10 failure domains"},
      {"persist_every=0;domain=rank", "bad value '0' for key 'persist_every'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fuze_ctx *c = (fuze_ctx *)1;
    MPI_Comm a = MPI_COMM_WORLD;
    int rc = fuze_init(MPI_COMM_WORLD, cases[i].cfg, &c, &a);
    T_EQ_INT(rc, FUZE_ERR_CONFIG, cases[i].cfg);
    T_CHECK(c == NULL && a == MPI_COMM_NULL, "%s: ctx/app_comm not cleared", cases[i].cfg);
    const char *msg = fuze_last_error(NULL);
    T_CHECK(strstr(msg, cases[i].needle) != NULL, "%s: message '%s' lacks '%s'", cases[i].cfg,
            msg, cases[i].needle);
  }
  setenv("FUZE_FAULTS", "abc", 1);
  fuze_ctx *c;
  MPI_Comm a;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, "faults=1", &c, &a), FUZE_ERR_CONFIG, "env override");
  T_CHECK(strstr(fuze_last_error(NULL), "config: bad value 'abc' for key 'faults' (accepted: "
                  "1..255) (from environment variable FUZE_FAULTS)") != NULL, "env msg: %s",
          fuze_last_error(NULL));
  unsetenv("FUZE_FAULTS");
  /* A persistence directory that cannot be created: FUZE_ERR_IO naming it. */
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, "domain=rank;dir=/proc/fuze-cannot-exist/x", &c, &a),
           FUZE_ERR_IO, "unwritable dir");
  T_CHECK(strstr(fuze_last_error(NULL), "cannot create directory /proc/fuze-cannot-exist") != NULL,
          "dir msg: %s", fuze_last_error(NULL));
}

static void bad_protects(void) {
  static double d[4] = {1, 2, 3, 4}; /* stays registered after this function */
  expect(fuze_protect(ctx, "x", NULL, 3, MPI_DOUBLE, NULL), FUZE_ERR_ARG,
         "base is NULL but count is 3", "NULL base");
  MPI_Datatype vec; /* derived types are accepted when their data lie in [0, extent) */
  MPI_Type_create_resized(MPI_DOUBLE, -8, 16, &vec);
  MPI_Type_commit(&vec);
  expect(fuze_protect(ctx, "x", d, 2, vec, NULL), FUZE_ERR_ARG,
         "the datatype has lower bound -8, extent 16 and its data at [0, 8)", "derived type, lb < 0");
  MPI_Type_free(&vec);
  expect(fuze_protect(ctx, "x", d, 4, MPI_DATATYPE_NULL, NULL), FUZE_ERR_ARG,
         "fuze_protect('x'): type is MPI_DATATYPE_NULL", "null type");
  char name[16];
  snprintf(name, sizeof name, "n%d", me == np - 1 ? 9 : 0);
  expect(fuze_protect(ctx, name, d, 4, MPI_DOUBLE, NULL), FUZE_ERR_ARG, "differs from 'n0' on rank 0",
         "names differ");
  /* An agreed error: each rank says who found it and, elsewhere, that it
   * reports the agreed error (not every rank's log blaming one rank). */
  char who[96];
  if (me == np - 1) snprintf(who, sizeof who, "rank %d found: fuze_protect: name 'n9' on rank %d", me, me);
  else snprintf(who, sizeof who, "rank %d reports the error agreed from rank %d: fuze_protect: name 'n9'", me, np - 1);
  T_CHECK(strstr(fuze_last_error(ctx), who) == fuze_last_error(ctx), "agreed msg '%s' does not start with '%s'",
          fuze_last_error(ctx), who);
  expect(fuze_protect(ctx, "", d, 4, MPI_DOUBLE, NULL), FUZE_ERR_ARG, "name must be", "empty name");
  /* count * size wraps to 8 bytes: refused, naming both. */
  size_t wrap = SIZE_MAX / 8 + 2;
  char want[160];
  snprintf(want, sizeof want, "fuze_protect('w'): count %zu of 8-byte elements is more than %td "
           "bytes (count * size overflows)", wrap, PTRDIFF_MAX);
  expect(fuze_protect(ctx, "w", d, wrap, MPI_DOUBLE, NULL), FUZE_ERR_ARG, want, "count*size wraps");
  snprintf(want, sizeof want, "fuze_protect('w'): count %zu of 4-byte elements", (size_t)PTRDIFF_MAX / 2);
  expect(fuze_protect(ctx, "w", d, (size_t)PTRDIFF_MAX / 2, MPI_INT, NULL), FUZE_ERR_ARG, want,
         "count*size beyond PTRDIFF_MAX");
  /* After all that the context still works. */
  fuze_array *h;
  expect(fuze_protect(ctx, "ok", d, 4, MPI_DOUBLE, &h), FUZE_SUCCESS, "", "good protect");
  expect(fuze_checkpoint(ctx), FUZE_SUCCESS, "", "checkpoint after errors");
}

static void bad_structures(void) {
  fuze_stack *st = NULL;
  fuze_map *m = NULL;
  expect(fuze_stack_create(ctx, "s0", 0, &st), FUZE_ERR_ARG, "element size must be at least 1 byte",
         "stack elem 0");
  expect(fuze_map_create(ctx, "m0", 0, 8, &m), FUZE_ERR_ARG, "key size must be at least 1 byte",
         "map key 0");
  expect(fuze_map_create(ctx, "m0", 8, 0, &m), FUZE_ERR_ARG, "value size must be at least 1 byte",
         "map value 0");
  expect(fuze_stack_create(ctx, "s1", me == np - 1 ? 16 : 8, &st), FUZE_ERR_ARG,
         "differ from (0, 8) on rank 0", "stack sizes differ across ranks");
  expect(fuze_map_create(ctx, "ok", 8, 8, &m), FUZE_ERR_ARG, "name 'ok' is already used",
         "name taken by an array");
  /* Sizes near SIZE_MAX, or beyond the documented 1 GiB per entry. */
  expect(fuze_stack_create(ctx, "big", SIZE_MAX, &st), FUZE_ERR_ARG,
         "fuze_stack_create('big'): element size 18446744073709551615 bytes is more than the limit "
         "of 1073741824 bytes", "stack elem SIZE_MAX");
  expect(fuze_map_create(ctx, "big", SIZE_MAX - 7, 8, &m), FUZE_ERR_ARG,
         "fuze_map_create('big'): key size 18446744073709551608 plus value size 8 bytes is more "
         "than the limit of 1073741824 bytes per entry", "map key near SIZE_MAX");
  expect(fuze_map_create(ctx, "big", 8, SIZE_MAX - 7, &m), FUZE_ERR_ARG,
         "key size 8 plus value size 18446744073709551608 bytes is more than the limit", "map value near SIZE_MAX");
  expect(fuze_map_create(ctx, "big", (size_t)1 << 29, ((size_t)1 << 29) + 1, &m), FUZE_ERR_ARG,
         "key size 536870912 plus value size 536870913 bytes is more than the limit", "map entry 1 GiB + 1");
  /* Within the entry limit, but 256 slots of 1 GiB per hosted region do not
   * fit any node here: the size and the memory, not the osc component. */
  expect(fuze_stack_create(ctx, "big", (size_t)1 << 30, &st), FUZE_ERR_NOMEM,
         "fuze_stack_create('big'): the backup window would need ", "stack elem 1 GiB");
  T_CHECK(strstr(fuze_last_error(ctx), "hosted region(s) at capacity 256 of 1073741824-byte entries), "
                 "more than the ") && strstr(fuze_last_error(ctx), "bytes of memory of its node") &&
          !strstr(fuze_last_error(ctx), "osc"), "huge stack msg: %s", fuze_last_error(ctx));
  T_CHECK(st == NULL, "failed create leaves no handle");
  expect(fuze_stack_create(ctx, "st", 8, &st), FUZE_SUCCESS, "", "good stack");
  expect(fuze_map_create(ctx, "mp", 8, 4, &m), FUZE_SUCCESS, "", "good map");
  unsigned char e[8] = {0};
  uint64_t k = 5;
  T_EQ_INT(fuze_stack_pop(st, e), FUZE_ERR_EMPTY, "pop on empty");
  T_CHECK(strstr(fuze_last_error(ctx), "fuze_stack_pop('st'): stack is empty") != NULL, "msg: %s",
          fuze_last_error(ctx));
  T_EQ_INT(fuze_stack_peek(st, e), FUZE_ERR_EMPTY, "peek on empty");
  T_EQ_INT(fuze_stack_push(st, NULL), FUZE_ERR_ARG, "push NULL");
  T_EQ_INT(fuze_stack_push(NULL, e), FUZE_ERR_ARG, "push on NULL stack");
  T_EQ_INT(fuze_stack_at(st, 0, e), FUZE_ERR_NOT_FOUND, "at beyond size");
  T_EQ_INT(fuze_map_get(m, &k, e), FUZE_ERR_NOT_FOUND, "get missing");
  T_CHECK(strstr(fuze_last_error(ctx), "fuze_map_get('mp'): key not found") != NULL, "msg: %s",
          fuze_last_error(ctx));
  T_EQ_INT(fuze_map_remove(m, &k), FUZE_ERR_NOT_FOUND, "remove missing");
  T_EQ_INT(fuze_map_put(m, NULL, e), FUZE_ERR_ARG, "put NULL key");
  T_EQ_INT(fuze_map_put(m, &k, NULL), FUZE_ERR_ARG, "put NULL value");
  T_EQ_INT(fuze_map_get(m, NULL, e), FUZE_ERR_ARG, "get NULL key");
  T_EQ_INT(fuze_map_foreach(m, NULL, NULL), FUZE_ERR_ARG, "foreach NULL fn");
  T_CHECK(fuze_stack_size(NULL) == 0 && fuze_map_size(NULL) == 0, "sizes of NULL handles");
  T_EQ_INT(fuze_map_put(m, &k, e), FUZE_SUCCESS, "put");
  T_EQ_INT(fuze_stack_push(st, e), FUZE_SUCCESS, "push");
  expect(fuze_checkpoint(ctx), FUZE_SUCCESS, "", "checkpoint with structures");
  expect(fuze_inject_op(ctx, np + 3, 0), FUZE_ERR_ARG, "fuze_inject_op: rank must be", "inject_op bad rank");
}

static void bad_injects(void) {
  int r = np + 5;
  expect(fuze_inject(ctx, &r, 1), FUZE_ERR_ARG, "does not exist", "inject bad rank");
  expect(fuze_inject(ctx, NULL, 1), FUZE_ERR_ARG, "fuze_inject: ranks is NULL but nranks is not 0",
         "inject NULL ranks");
  expect(fuze_inject(ctx, &r, -2), FUZE_ERR_ARG, "fuze_inject: nranks must be 0..64, got -2",
         "inject negative nranks");
  expect(fuze_inject_at(ctx, NULL, 1, "after"), FUZE_ERR_ARG,
         "fuze_inject_at: ranks is NULL but nranks is not 0", "inject_at NULL ranks");
  int z = 0;
  expect(fuze_inject_at(ctx, &z, 1, "later"), FUZE_ERR_ARG, "fuze_inject_at: unknown phase 'later' "
         "(accepted: before, partial, sent, promoted, after, persist, persisted)", "inject_at bad phase");
  expect(fuze_recover(ctx), FUZE_SUCCESS, "", "recover with nothing lost");
}

static void after_finalize(void) {
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize");
  T_CHECK(ctx == NULL, "finalize must clear ctx");
  T_EQ_INT(fuze_finalize(&ctx), FUZE_SUCCESS, "finalize(NULL) is a no-op");
  double d = 0;
  T_EQ_INT(fuze_checkpoint(ctx), FUZE_ERR_ARG, "checkpoint after finalize");
  T_CHECK(strstr(fuze_last_error(NULL), "used after fuze_finalize") != NULL, "msg: %s",
          fuze_last_error(NULL));
  T_EQ_INT(fuze_protect(ctx, "x", &d, 1, MPI_DOUBLE, NULL), FUZE_ERR_ARG, "protect after finalize");
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, NULL, NULL, NULL), FUZE_ERR_ARG, "init NULL outs");
  T_CHECK(strstr(fuze_last_error(NULL), "fuze_init: ctx must not be NULL") != NULL, "msg: %s",
          fuze_last_error(NULL));
  MPI_Comm a = MPI_COMM_WORLD;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, NULL, NULL, &a), FUZE_ERR_ARG, "init NULL ctx");
  T_CHECK(strstr(fuze_last_error(NULL), "fuze_init: ctx must not be NULL") != NULL, "msg: %s",
          fuze_last_error(NULL));
  fuze_ctx *c = (fuze_ctx *)1;
  T_EQ_INT(fuze_init(MPI_COMM_WORLD, NULL, &c, NULL), FUZE_ERR_ARG, "init NULL app_comm");
  T_CHECK(strstr(fuze_last_error(NULL), "fuze_init: app_comm must not be NULL") != NULL, "msg: %s",
          fuze_last_error(NULL));
  /* MPI_COMM_NULL: an error code, not an abort of the job. */
  T_EQ_INT(fuze_init(MPI_COMM_NULL, NULL, &c, &a), FUZE_ERR_ARG, "init MPI_COMM_NULL");
  T_CHECK(strstr(fuze_last_error(NULL), "fuze_init: comm is MPI_COMM_NULL") != NULL, "msg: %s",
          fuze_last_error(NULL));
  T_CHECK(c == NULL && a == MPI_COMM_NULL, "MPI_COMM_NULL: ctx/app_comm not cleared");
  T_CHECK(!strcmp(fuze_strerror(FUZE_ERR_UNRECOVERABLE), "more failures than the code tolerates"),
          "strerror: %s", fuze_strerror(FUZE_ERR_UNRECOVERABLE));
  T_CHECK(!strcmp(fuze_err_name(FUZE_RECOVERED), "FUZE_RECOVERED"), "name");
  T_CHECK(!strcmp(fuze_strerror(12345), "unknown status code"), "unknown");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  bad_configs();
  int rc = fuze_init(MPI_COMM_WORLD, "faults=1;domain=rank", &ctx, &app);
  T_EQ_INT(rc, FUZE_SUCCESS, "init");
  if (!rc) {
    bad_protects();
    bad_structures();
    bad_injects();
    after_finalize();
    MPI_Comm_free(&app);
  }
  int total = t_total(MPI_COMM_WORLD);
  if (me == 0) printf("test_misuse: %s (%d failed checks)\n", total ? "FAILED" : "OK", total);
  MPI_Finalize();
  return total ? 1 : 0;
}
