/* Unit test of the configuration parser (no MPI): defaults, both separators,
 * whitespace, environment overrides, every key's accepted and refused values,
 * and the injection spec. */
#define _POSIX_C_SOURCE 200809L
#include "core/code.h"
#include "core/config.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                   \
      fprintf(stderr, "\n");                                          \
      failures++;                                                     \
    }                                                                 \
  } while (0)

static void ok(const char *s, fuze_config *c) {
  int rc = fuze__config_parse(s, c, NULL);
  CHECK(rc == FUZE_SUCCESS, "'%s' -> %d: %s", s ? s : "(null)", rc, fuze__thread_msg());
}

static void refused(const char *s, const char *needle) {
  fuze_config c;
  char msg[FUZE_MSG_LEN] = "";
  int rc = fuze__config_parse(s, &c, msg);
  CHECK(rc == FUZE_ERR_CONFIG, "'%s' -> %d, expected FUZE_ERR_CONFIG", s, rc);
  CHECK(strstr(msg, needle) != NULL, "'%s': message '%s' lacks '%s'", s, msg, needle);
  CHECK(!strcmp(msg, fuze__thread_msg()), "'%s': thread message differs", s);
}

static void defaults(void) {
  fuze_config c;
  ok(NULL, &c);
  CHECK(c.faults == 1 && c.spares == 0 && c.domain_mode == FUZE_DOMAIN_NODE, "defaults");
  CHECK(c.code == FUZE_CODE_RS && c.mode == FUZE_MODE_NONE && c.recovery == FUZE_RECOVERY_ROLLBACK,
        "defaults");
  CHECK(c.chunk == 65536 && c.verbose == 0 && c.dir[0] == 0 && c.ninject == 0, "defaults");
  ok("", &c);
  ok(" ; , ", &c);
}

static void keys(void) {
  fuze_config c;
  ok("faults=3; spares=2 ,domain=4;block=7,code=replicate;recovery=forward;chunk=128;verbose=2;dir=/x/y", &c);
  CHECK(c.faults == 3 && c.spares == 2, "faults %d spares %d", c.faults, c.spares);
  CHECK(c.domain_mode == FUZE_DOMAIN_K && c.domain_k == 4, "domain");
  CHECK(c.block == 7 && c.code == FUZE_CODE_REPLICATE && c.recovery == FUZE_RECOVERY_FORWARD, "k");
  CHECK(c.chunk == 128 && c.verbose == 2 && !strcmp(c.dir, "/x/y"), "chunk/verbose/dir");
  ok("domain=rank", &c);
  CHECK(c.domain_mode == FUZE_DOMAIN_RANK, "rank");
  ok("domain=node;code=xor", &c);
  CHECK(c.domain_mode == FUZE_DOMAIN_NODE && c.code == FUZE_CODE_XOR, "node/xor");
  /* byzantine is a mode over the rs code, not a code of its own; a later
   * code= replaces both. */
  ok("code=byzantine", &c);
  CHECK(c.code == FUZE_CODE_RS && c.mode == FUZE_MODE_BYZANTINE, "byzantine: code %d mode %d",
        c.code, c.mode);
  CHECK(!strcmp(fuze__code_label(c.code, c.mode), "byzantine"), "byzantine label");
  ok("code=byzantine;code=xor", &c);
  CHECK(c.code == FUZE_CODE_XOR && c.mode == FUZE_MODE_NONE, "byzantine then xor");
  refused("code=none", "bad value 'none' for key 'code' (accepted: rs, xor, replicate, byzantine)");
  ok("lock=exclusive;sync=batch;capacity=16", &c);
  CHECK(c.lock_exclusive == 1 && c.sync_batch == 1 && c.capacity == 16, "lock/sync/capacity");
  ok(NULL, &c);
  CHECK(c.lock_exclusive == 0 && c.sync_batch == 0 && c.capacity == 256, "lock/sync/capacity defaults");
  refused("lock=maybe", "key 'lock' (accepted: shared, exclusive)");
  refused("sync=sometimes", "key 'sync' (accepted: op, batch)");
  ok("shm=on", &c);
  CHECK(c.shm == FUZE_SHM_ON, "shm=on");
  ok("shm=off", &c);
  CHECK(c.shm == FUZE_SHM_OFF, "shm=off");
  ok("shm=auto", &c);
  CHECK(c.shm == FUZE_SHM_AUTO, "shm=auto");
  ok("", &c);
  CHECK(c.shm == FUZE_SHM_AUTO, "shm defaults to auto");
  refused("shm=yes", "bad value 'yes' for key 'shm' (accepted: auto, on, off)");
  refused("capacity=0", "key 'capacity' (accepted: 1..1073741824 slots)");
  refused("faults=256", "'faults' (accepted: 1..255)");
  refused("faults=1x", "bad value '1x' for key 'faults'");
  refused("spares=-1", "key 'spares'");
  refused("block=0", "key 'block' (accepted: 1..255)");
  refused("domain=0", "key 'domain'");
  /* Refused at parse time with the range, not later as a domain count of -1. */
  refused("domain=2147483647", "config: bad value '2147483647' for key 'domain' (accepted: node, "
                               "rank, or a number of ranks per domain in 1..1048576)");
  ok("domain=1048576", &c);
  CHECK(c.domain_mode == FUZE_DOMAIN_K && c.domain_k == 1048576, "domain=1048576");
  refused("chunk=65", "key 'chunk'");
  refused("verbose=10", "key 'verbose'");
  refused("dir=", "key 'dir'");
  refused("=3", "empty key");
  refused("nope=1", "unknown key 'nope' (known: faults, spares, replacements, replace, domain, block, code, recovery, "
                    "chunk, capacity, sync, lock, shm, dir, persist_every, persist_base, verify_every, inject, "
                    "verbose, persist, restart)");
  refused("code=xor;faults=2", "code=xor tolerates exactly one fault");
}

static void env(void) {
  fuze_config c;
  setenv("FUZE_FAULTS", "2", 1);
  setenv("FUZE_CODE", "replicate", 1);
  ok("faults=1;code=rs", &c);
  CHECK(c.faults == 2 && c.code == FUZE_CODE_REPLICATE, "env overrides: f=%d", c.faults);
  setenv("FUZE_SPARES", "x", 1);
  refused("", "from environment variable FUZE_SPARES");
  unsetenv("FUZE_SPARES");
  /* The whole message: value, range and variable (the message used to be
   * formatted into its own argument and lost all but the variable). */
  setenv("FUZE_FAULTS", "abc", 1);
  refused("faults=1", "config: bad value 'abc' for key 'faults' (accepted: 1..255) (from "
                      "environment variable FUZE_FAULTS)");
  unsetenv("FUZE_SPARES");
  unsetenv("FUZE_FAULTS");
  unsetenv("FUZE_CODE");
  setenv("FUZE_INJECT", "wipe:ranks=3:at=checkpoint:1", 1);
  ok("inject=wipe:ranks=1:at=checkpoint:9", &c);
  CHECK(c.ninject == 1 && c.inject[0].ranks[0] == 3, "env inject replaces the string's");
  unsetenv("FUZE_INJECT");
}

static void inject(void) {
  fuze_config c;
  ok("inject=wipe:ranks=2+5:at=checkpoint:7", &c);
  CHECK(c.ninject == 1 && c.inject[0].nranks == 2 && c.inject[0].ranks[1] == 5, "ranks");
  CHECK(c.inject[0].at_checkpoint == 7 && c.inject[0].phase == FUZE_PHASE_BEFORE, "at/phase");
  ok("inject=wipe:ranks=1:at=checkpoint:3:phase=promoted/wipe:phase=partial:ranks=0+4:at=checkpoint:9", &c);
  CHECK(c.ninject == 2 && c.inject[0].phase == FUZE_PHASE_PROMOTED, "two specs");
  CHECK(c.inject[1].phase == FUZE_PHASE_PARTIAL && c.inject[1].at_checkpoint == 9, "second");
  for (int p = 0; p < FUZE_PHASE_COUNT; p++) {
    char s[128];
    snprintf(s, sizeof s, "inject=wipe:ranks=0:at=checkpoint:1:phase=%s", fuze__phase_name(p));
    ok(s, &c);
    CHECK(c.inject[0].phase == p, "phase %d", p);
  }
  refused("inject=wipe:ranks=:at=checkpoint:1", "ranks must be");
  refused("inject=wipe:ranks=1+x:at=checkpoint:1", "ranks must be");
  refused("inject=wipe:ranks=1:at=checkpoint:0", "E >= 1");
  refused("inject=wipe:ranks=1:at=checkpoint", "E >= 1");
  refused("inject=wipe:ranks=1:at=step:4", "unknown field");
  refused("inject=boom:ranks=1:at=checkpoint:1", "the kind must be 'wipe'");
  refused("inject=wipe:at=checkpoint:1", "ranks= is missing");
  refused("inject=", "bad inject spec");
  /* kill: one rank, any phase including the persisting ones. */
  ok("inject=kill:rank=3:at=checkpoint:4:phase=persist", &c);
  CHECK(c.ninject == 1 && c.inject[0].kind == FUZE_INJECT_KILL && c.inject[0].nranks == 1 &&
            c.inject[0].ranks[0] == 3 && c.inject[0].at_checkpoint == 4 &&
            c.inject[0].phase == FUZE_PHASE_PERSIST, "kill spec");
  ok("inject=wipe:ranks=1:at=checkpoint:2/kill:rank=0:at=checkpoint:5:phase=persisted", &c);
  CHECK(c.inject[0].kind == FUZE_INJECT_WIPE && c.inject[1].kind == FUZE_INJECT_KILL &&
            c.inject[1].phase == FUZE_PHASE_PERSISTED, "wipe then kill");
  refused("inject=kill:at=checkpoint:1", "rank= is missing");
  refused("inject=kill:rank=1:ranks=2:at=checkpoint:1", "ranks given twice");
}

static void persist_keys(void) {
  fuze_config c;
  ok(NULL, &c);
  CHECK(c.persist_every == 1, "persist_every default %d", c.persist_every);
  ok("dir=/tmp/a;persist_every=5", &c);
  CHECK(c.persist_every == 5 && !strcmp(c.dir, "/tmp/a"), "persist_every");
  refused("persist_every=0", "bad value '0' for key 'persist_every'");
  refused("persist_every=x", "key 'persist_every' (accepted: an integer >= 1)");
  CHECK(c.persist_base == 1, "persist_base default %d", c.persist_base);
  ok("dir=/tmp/a;persist_base=8", &c);
  CHECK(c.persist_base == 8, "persist_base=8 gave %d", c.persist_base);
  refused("persist_base=0", "config: bad value '0' for key 'persist_base' (accepted: an integer "
          "between 1 and 64 (1: every persisted epoch is a full file))");
  refused("persist_base=65", "bad value '65' for key 'persist_base'");
  CHECK(c.persist_async == 0 && c.restart_never == 0, "persist/restart defaults %d %d",
        c.persist_async, c.restart_never);
  ok("dir=/tmp/a;persist=async;restart=never", &c);
  CHECK(c.persist_async == 1 && c.restart_never == 1, "persist=async, restart=never");
  refused("persist=later", "bad value 'later' for key 'persist' (accepted: sync, async)");
  refused("restart=maybe", "bad value 'maybe' for key 'restart' (accepted: auto, never)");
}

/* Scrubbing: verify_every and the corrupt injection. */
static void verify_keys(void) {
  fuze_config c;
  ok(NULL, &c);
  CHECK(c.verify_every == 0, "verify_every default %d", c.verify_every);
  ok("verify_every=3", &c);
  CHECK(c.verify_every == 3, "verify_every");
  ok("verify_every=0", &c);
  CHECK(c.verify_every == 0, "verify_every=0");
  refused("verify_every=-1", "key 'verify_every' (accepted: an integer >= 0 (0: never))");
  refused("verify_every=2x", "bad value '2x' for key 'verify_every'");
  setenv("FUZE_VERIFY_EVERY", "7", 1);
  ok("verify_every=1", &c);
  CHECK(c.verify_every == 7, "FUZE_VERIFY_EVERY overrides: %d", c.verify_every);
  unsetenv("FUZE_VERIFY_EVERY");
  ok("inject=corrupt:rank=2:struct=u:at=checkpoint:3", &c);
  const fuze_inject_spec *sp = &c.inject[0];
  CHECK(c.ninject == 1 && sp->kind == FUZE_INJECT_CORRUPT && sp->nranks == 1 && sp->ranks[0] == 2,
        "corrupt spec");
  CHECK(!strcmp(sp->name, "u") && sp->at_checkpoint == 3 && sp->target == 0 && sp->bits == 1,
        "corrupt defaults: name '%s' target %d bits %ld", sp->name, sp->target, sp->bits);
  CHECK(sp->phase < 0, "a corrupt spec has no commit phase (%d)", sp->phase);
  ok("inject=corrupt:struct=m.x:target=parity:bytes=12:at=checkpoint:9:rank=0/wipe:ranks=1:at=checkpoint:2", &c);
  CHECK(c.ninject == 2 && !strcmp(c.inject[0].name, "m.x") && c.inject[0].target == 1 &&
            c.inject[0].bits == 12 && c.inject[0].at_checkpoint == 9 && c.inject[0].ranks[0] == 0,
        "corrupt with every field, any order");
  CHECK(c.inject[1].kind == FUZE_INJECT_WIPE && c.inject[1].phase == FUZE_PHASE_BEFORE, "then a wipe");
  ok("inject=corrupt:rank=1:struct=a:at=checkpoint:1:target=primary", &c);
  CHECK(c.inject[0].target == 0, "target=primary");
  ok("inject=corrupt:rank=1:struct=a:at=checkpoint:1:target=replica", &c);
  CHECK(c.inject[0].target == 2, "target=replica");
  refused("inject=corrupt:struct=a:at=checkpoint:1", "rank= is missing");
  refused("inject=corrupt:rank=1:at=checkpoint:1", "struct= is missing");
  refused("inject=corrupt:rank=1:struct=a", "at=checkpoint:E is missing");
  refused("inject=corrupt:rank=1:struct=a:at=checkpoint:0", "E >= 1");
  refused("inject=corrupt:rank=1+2:struct=a:at=checkpoint:1", "rank= must be given once");
  refused("inject=corrupt:rank=1:rank=2:struct=a:at=checkpoint:1", "rank= must be given once");
  refused("inject=corrupt:rank=1:struct=:at=checkpoint:1", "struct= must name");
  refused("inject=corrupt:rank=1:struct=a:at=checkpoint:1:target=index", "target must be primary or parity");
  refused("inject=corrupt:rank=1:struct=a:at=checkpoint:1:bytes=0", "bytes=N flips N random bits");
  refused("inject=corrupt:rank=1:struct=a:at=checkpoint:1:bytes=5000", "N in 1..4096");
  refused("inject=corrupt:rank=1:struct=a:at=checkpoint:1:phase=after", "unknown field");
  refused("inject=corrupt:rank=1:struct=a:at=checkpoint:1:phase=after",
          "format: corrupt:rank=R:struct=NAME:at=checkpoint:E[:target=primary|parity|replica][:bytes=N]");
  refused("inject=scramble:rank=1:at=checkpoint:1", "(or 'corrupt')");
}

/* fuze_config_string's canonical form: every setting written back, and the
 * string parses to the same configuration (round trip). */
static void canonical(void) {
  const char *cases[][2] = {
    {NULL, "faults=1;spares=0;replacements=0;replace=auto;domain=node;code=rs;recovery=rollback;chunk=65536;capacity=256;"
           "sync=op;lock=shared;shm=auto;persist_every=1;persist_base=1;verify_every=0;verbose=0;persist=sync;"
           "restart=auto"},
    {"faults=3, spares=2; domain=4;block=7;code=byzantine;recovery=forward;chunk=128;capacity=16;"
     "sync=batch;lock=exclusive;shm=off;dir=/x/y;persist_every=2;persist_base=1;verify_every=3;verbose=2;"
     "inject=wipe:ranks=1+2:at=checkpoint:3;inject=kill:rank=0:at=checkpoint:5:phase=sent;"
     "persist=async;restart=never",
     "faults=3;spares=2;replacements=0;replace=auto;domain=4;block=7;code=byzantine;recovery=forward;chunk=128;capacity=16;"
     "sync=batch;lock=exclusive;shm=off;dir=/x/y;persist_every=2;persist_base=1;verify_every=3;"
     "inject=wipe:ranks=1+2:at=checkpoint:3:phase=before/kill:rank=0:at=checkpoint:5:phase=sent;"
     "verbose=2;persist=async;restart=never"},
    {"domain=rank;code=xor;faults=1", "faults=1;spares=0;replacements=0;replace=auto;domain=rank;code=xor;recovery=rollback;"
     "chunk=65536;capacity=256;sync=op;lock=shared;shm=auto;persist_every=1;persist_base=1;verify_every=0;verbose=0;"
     "persist=sync;restart=auto"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fuze_config c, back;
    char buf[4096], again[4096];
    ok(cases[i][0], &c);
    size_t n = fuze__config_format(&c, buf, sizeof buf);
    CHECK(n == strlen(cases[i][1]) && !strcmp(buf, cases[i][1]), "canonical of '%s'\n got  %s\n want %s",
          cases[i][0] ? cases[i][0] : "(null)", buf, cases[i][1]);
    ok(buf, &back);
    fuze__config_format(&back, again, sizeof again);
    CHECK(!strcmp(buf, again), "round trip\n got  %s\n want %s", again, buf);
    CHECK(back.ninject == c.ninject && back.faults == c.faults && back.mode == c.mode,
          "round trip of '%s'", buf);
  }
  fuze_config c;
  char small[8];
  ok("faults=2", &c);
  CHECK(fuze__config_format(&c, small, sizeof small) == strlen(cases[0][1]), "length when truncated");
  CHECK(!strcmp(small, "faults="), "truncated: '%s'", small);
  CHECK(!strcmp(fuze__config_source(&c, "faults"), "config") &&
        !strcmp(fuze__config_source(&c, "chunk"), "default") && !fuze__config_source(&c, "x"),
        "sources");
  setenv("FUZE_CHUNK", "256", 1);
  ok("chunk=128", &c);
  unsetenv("FUZE_CHUNK");
  CHECK(c.chunk == 256 && !strcmp(fuze__config_source(&c, "chunk"), "environment"), "env source");
}

int main(void) {
  canonical();
  defaults();
  keys();
  env();
  inject();
  persist_keys();
  verify_keys();
  printf("test_config: %s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
