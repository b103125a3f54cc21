#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#endif
/* Configuration parsing. Every error names the key, the value and what is
 * accepted, because a configuration error is usually found by an operator
 * reading a job log. */
#include "core/config.h"

#include "core/code.h"
#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const phase_names[FUZE_PHASE_COUNT] = {
    "before", "partial", "sent", "promoted", "after", "persist", "persisted"};

const char *fuze__phase_name(int phase) {
  return phase >= 0 && phase < FUZE_PHASE_COUNT ? phase_names[phase] : "?";
}

static void config_defaults(fuze_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->faults = 1;
  cfg->domain_mode = FUZE_DOMAIN_NODE;
  cfg->code = FUZE_CODE_RS;
  cfg->recovery = FUZE_RECOVERY_ROLLBACK;
  cfg->chunk = 64 * 1024;
  cfg->capacity = 256;
  cfg->persist_every = 1;
}

/* Strict decimal integer in [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  if (!*s || isspace((unsigned char)*s)) return -1;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int bad(char *msg, const char *key, const char *val, const char *accepted) {
  return fuze__error(msg, FUZE_ERR_CONFIG, "config: bad value '%s' for key '%s' (accepted: %s)",
                     val, key, accepted);
}

static int set_int(char *msg, const char *key, const char *val, long lo, long hi,
                   const char *accepted, int *dst) {
  long v;
  if (parse_long(val, lo, hi, &v)) return bad(msg, key, val, accepted);
  *dst = (int)v;
  return FUZE_SUCCESS;
}

static int set_domain(fuze_config *cfg, const char *val, char *msg) {
  long k;
  if (!strcmp(val, "node")) cfg->domain_mode = FUZE_DOMAIN_NODE;
  else if (!strcmp(val, "rank")) cfg->domain_mode = FUZE_DOMAIN_RANK;
  else if (!parse_long(val, 1, INT_MAX, &k)) {
    cfg->domain_mode = FUZE_DOMAIN_K;
    cfg->domain_k = (int)k;
  } else
    return bad(msg, "domain", val, "node, rank, or a positive number of ranks per domain");
  return FUZE_SUCCESS;
}

static int set_code(fuze_config *cfg, const char *val, char *msg) {
  if (!strcmp(val, "rs")) cfg->code = FUZE_CODE_RS;
  else if (!strcmp(val, "xor")) cfg->code = FUZE_CODE_XOR;
  else if (!strcmp(val, "replicate")) cfg->code = FUZE_CODE_REPLICATE;
  else if (!strcmp(val, "byzantine")) cfg->code = FUZE_CODE_BYZANTINE;
  else return bad(msg, "code", val, "rs, xor, replicate, byzantine");
  return FUZE_SUCCESS;
}

static int set_recovery(fuze_config *cfg, const char *val, char *msg) {
  if (!strcmp(val, "rollback")) cfg->recovery = FUZE_RECOVERY_ROLLBACK;
  else if (!strcmp(val, "forward")) cfg->recovery = FUZE_RECOVERY_FORWARD;
  else return bad(msg, "recovery", val, "rollback, forward");
  return FUZE_SUCCESS;
}

static int set_chunk(fuze_config *cfg, const char *val, char *msg) {
  long v;
  if (parse_long(val, 64, 1L << 30, &v) || (v & 63))
    return bad(msg, "chunk", val, "a multiple of 64 bytes between 64 and 1073741824");
  cfg->chunk = (size_t)v;
  return FUZE_SUCCESS;
}

static int set_key(fuze_config *cfg, const char *key, const char *val, char *msg) {
  if (!strcmp(key, "faults")) return set_int(msg, key, val, 1, 255, "1..255", &cfg->faults);
  if (!strcmp(key, "spares")) return set_int(msg, key, val, 0, INT_MAX, "an integer >= 0", &cfg->spares);
  if (!strcmp(key, "domain")) return set_domain(cfg, val, msg);
  if (!strcmp(key, "block")) return set_int(msg, key, val, 1, 255, "1..255", &cfg->block);
  if (!strcmp(key, "code")) return set_code(cfg, val, msg);
  if (!strcmp(key, "recovery")) return set_recovery(cfg, val, msg);
  if (!strcmp(key, "chunk")) return set_chunk(cfg, val, msg);
  if (!strcmp(key, "verbose")) return set_int(msg, key, val, 0, 9, "0..9", &cfg->verbose);
  if (!strcmp(key, "inject")) return fuze__inject_parse(val, cfg, msg);
  if (!strcmp(key, "capacity")) {
    long v;
    if (parse_long(val, 1, 1L << 30, &v)) return bad(msg, key, val, "1..1073741824 slots");
    cfg->capacity = (size_t)v;
    return FUZE_SUCCESS;
  }
  if (!strcmp(key, "lock")) {
    if (strcmp(val, "shared") && strcmp(val, "exclusive")) return bad(msg, key, val, "shared, exclusive");
    cfg->lock_exclusive = !strcmp(val, "exclusive");
    return FUZE_SUCCESS;
  }
  if (!strcmp(key, "sync")) {
    if (strcmp(val, "op") && strcmp(val, "batch")) return bad(msg, key, val, "op, batch");
    cfg->sync_batch = !strcmp(val, "batch");
    return FUZE_SUCCESS;
  }
  if (!strcmp(key, "shm")) {
    if (strcmp(val, "auto") && strcmp(val, "on") && strcmp(val, "off")) return bad(msg, key, val, "auto, on, off");
    cfg->shm = !strcmp(val, "on") ? FUZE_SHM_ON : !strcmp(val, "off") ? FUZE_SHM_OFF : FUZE_SHM_AUTO;
    return FUZE_SUCCESS;
  }
  if (!strcmp(key, "persist_every"))
    return set_int(msg, key, val, 1, INT_MAX, "an integer >= 1", &cfg->persist_every);
  if (!strcmp(key, "verify_every"))
    return set_int(msg, key, val, 0, INT_MAX, "an integer >= 0 (0: never)", &cfg->verify_every);
  if (!strcmp(key, "dir")) {
    if (!*val || strlen(val) >= sizeof cfg->dir) return bad(msg, key, val, "a path of 1..1023 characters");
    snprintf(cfg->dir, sizeof cfg->dir, "%s", val);
    return FUZE_SUCCESS;
  }
  return fuze__error(msg, FUZE_ERR_CONFIG,
                     "config: unknown key '%s' (known: faults, spares, domain, block, code, "
                     "recovery, chunk, capacity, sync, lock, shm, dir, persist_every, verify_every, inject, verbose)", key);
}

static const char *const known_keys[] = {"faults", "spares", "domain", "block", "code",
                                         "recovery", "chunk", "capacity", "sync", "lock", "shm", "dir", "persist_every",
                                         "verify_every", "inject", "verbose"};

/* FUZE_<KEY> overrides the same key from the string. */
static int apply_env(fuze_config *cfg, char *msg) {
  for (size_t i = 0; i < sizeof known_keys / sizeof *known_keys; i++) {
    char var[32] = "FUZE_";
    for (size_t j = 0; known_keys[i][j]; j++) var[5 + j] = (char)toupper(known_keys[i][j]);
    const char *val = getenv(var);
    if (!val) continue;
    if (!strcmp(known_keys[i], "inject")) cfg->ninject = 0;
    int rc = set_key(cfg, known_keys[i], val, msg);
    if (rc) return fuze__error(msg, rc, "%s (from environment variable %s)", fuze__thread_msg(), var);
  }
  return FUZE_SUCCESS;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

static int parse_pair(fuze_config *cfg, char *item, char *msg) {
  char *eq = strchr(item, '=');
  if (!eq) return fuze__error(msg, FUZE_ERR_CONFIG,
                              "config: '%s' is not of the form key=value", item);
  *eq = 0;
  char *key = trim(item), *val = trim(eq + 1);
  if (!*key) return fuze__error(msg, FUZE_ERR_CONFIG, "config: empty key before '=%s'", val);
  return set_key(cfg, key, val, msg);
}

int fuze__config_parse(const char *str, fuze_config *cfg, char *msg) {
  config_defaults(cfg);
  if (str) {
    size_t len = strlen(str);
    char *copy = malloc(len + 1);
    if (!copy) return fuze__error(msg, FUZE_ERR_NOMEM, "config: out of memory");
    memcpy(copy, str, len + 1);
    int rc = FUZE_SUCCESS;
    for (char *save = NULL, *it = strtok_r(copy, ";,", &save); it && !rc;
         it = strtok_r(NULL, ";,", &save)) {
      char *item = trim(it);
      if (*item) rc = parse_pair(cfg, item, msg);
    }
    free(copy);
    if (rc) return rc;
  }
  int rc = apply_env(cfg, msg);
  if (rc) return rc;
  if (cfg->code == FUZE_CODE_XOR && cfg->faults != 1)
    return fuze__error(msg, FUZE_ERR_CONFIG,
                       "config: code=xor tolerates exactly one fault, got faults=%d "
                       "(use code=rs)", cfg->faults);
  return FUZE_SUCCESS;
}

/* ---- inject=wipe:ranks=R1+R2:at=checkpoint:E[:phase=P]
 *      inject=kill:rank=R:at=checkpoint:E[:phase=P] ---- */

static int inject_bad(char *msg, const char *spec, const char *why) {
  return fuze__error(msg, FUZE_ERR_CONFIG,
                     "config: bad inject spec '%s': %s (format: "
                     "wipe:ranks=R1+R2:at=checkpoint:E[:phase=P] or kill:rank=R:at=checkpoint:E"
                     "[:phase=P], P one of before|partial|sent|promoted|after|persist|persisted;"
                     " several separated by '/')", spec, why);
}

static int parse_ranks(fuze_inject_spec *sp, char *list) {
  for (char *save = NULL, *t = strtok_r(list, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
    long r;
    if (sp->nranks >= FUZE_MAX_INJECT_RANKS || parse_long(t, 0, INT_MAX, &r)) return -1;
    sp->ranks[sp->nranks++] = (int)r;
  }
  return sp->nranks ? 0 : -1;
}

static int parse_phase(const char *v) {
  for (int p = 0; p < FUZE_PHASE_COUNT; p++)
    if (!strcmp(v, phase_names[p])) return p;
  return -1;
}

/* corrupt:rank=R:struct=NAME:at=checkpoint:E[:target=primary|parity|replica][:bytes=N]
 * (verify.c fires it right after the E-th checkpoint commits). */
static int corrupt_bad(char *msg, const char *spec, const char *why) {
  return fuze__error(msg, FUZE_ERR_CONFIG,
                     "config: bad inject spec '%s': %s (format: corrupt:rank=R:struct=NAME:"
                     "at=checkpoint:E[:target=primary|parity|replica][:bytes=N])", spec, why);
}

static int parse_corrupt(char *save, const char *orig, fuze_inject_spec *sp, char *msg) {
  sp->kind = FUZE_INJECT_CORRUPT;
  sp->phase = -1; /* never an injection phase of the commit */
  sp->bits = 1;
  for (char *tok; (tok = strtok_r(NULL, ":", &save));) {
    long v;
    if (!strncmp(tok, "rank=", 5)) {
      if (sp->nranks || parse_long(tok + 5, 0, INT_MAX, &v))
        return corrupt_bad(msg, orig, "rank= must be given once, as one rank >= 0");
      sp->ranks[sp->nranks++] = (int)v;
    } else if (!strncmp(tok, "struct=", 7)) {
      if (!tok[7] || strlen(tok + 7) >= sizeof sp->name)
        return corrupt_bad(msg, orig, "struct= must name an array, stack or map (1..63 characters)");
      snprintf(sp->name, sizeof sp->name, "%s", tok + 7);
    } else if (!strcmp(tok, "at=checkpoint")) {
      char *num = strtok_r(NULL, ":", &save);
      if (!num || parse_long(num, 1, LONG_MAX, &sp->at_checkpoint))
        return corrupt_bad(msg, orig, "at=checkpoint must be followed by :E with E >= 1");
    } else if (!strncmp(tok, "target=", 7)) {
      if (strcmp(tok + 7, "primary") && strcmp(tok + 7, "parity") && strcmp(tok + 7, "replica"))
        return corrupt_bad(msg, orig, "target must be primary or parity (or replica, code=byzantine)");
      sp->target = !strcmp(tok + 7, "parity") ? 1 : !strcmp(tok + 7, "replica") ? 2 : 0;
    } else if (!strncmp(tok, "bytes=", 6)) {
      if (parse_long(tok + 6, 1, 4096, &sp->bits))
        return corrupt_bad(msg, orig, "bytes=N flips N random bits, N in 1..4096");
    } else {
      return corrupt_bad(msg, orig, "unknown field");
    }
  }
  if (!sp->nranks) return corrupt_bad(msg, orig, "rank= is missing");
  if (!sp->name[0]) return corrupt_bad(msg, orig, "struct= is missing");
  if (!sp->at_checkpoint) return corrupt_bad(msg, orig, "at=checkpoint:E is missing");
  return FUZE_SUCCESS;
}

/* One spec; tokens are separated by ':'. */
static int parse_spec(char *spec, const char *orig, fuze_inject_spec *sp, char *msg) {
  char *save = NULL, *tok = strtok_r(spec, ":", &save);
  memset(sp, 0, sizeof *sp);
  if (tok && !strcmp(tok, "corrupt")) return parse_corrupt(save, orig, sp, msg);
  if (!tok || (strcmp(tok, "wipe") && strcmp(tok, "kill")))
    return inject_bad(msg, orig, "the kind must be 'wipe' or 'kill' (or 'corrupt')");
  sp->kind = !strcmp(tok, "kill") ? FUZE_INJECT_KILL : FUZE_INJECT_WIPE;
  while ((tok = strtok_r(NULL, ":", &save))) {
    if (!strncmp(tok, "ranks=", 6) || !strncmp(tok, "rank=", 5)) {
      if (sp->nranks) return inject_bad(msg, orig, "ranks given twice");
      if (parse_ranks(sp, strchr(tok, '=') + 1))
        return inject_bad(msg, orig, "ranks must be R1+R2+... (non-negative)");
    } else if (!strcmp(tok, "at=checkpoint")) {
      char *num = strtok_r(NULL, ":", &save);
      if (!num || parse_long(num, 1, LONG_MAX, &sp->at_checkpoint))
        return inject_bad(msg, orig, "at=checkpoint must be followed by :E with E >= 1");
    } else if (!strncmp(tok, "phase=", 6)) {
      if ((sp->phase = parse_phase(tok + 6)) < 0) return inject_bad(msg, orig, "unknown phase");
    } else
      return inject_bad(msg, orig, "unknown field");
  }
  if (!sp->nranks) return inject_bad(msg, orig, sp->kind == FUZE_INJECT_KILL ? "rank= is missing" : "ranks= is missing");
  if (!sp->at_checkpoint) return inject_bad(msg, orig, "at=checkpoint:E is missing");
  return FUZE_SUCCESS;
}

int fuze__inject_parse(const char *value, fuze_config *cfg, char *msg) {
  char buf[1024];
  if (strlen(value) >= sizeof buf) return inject_bad(msg, "(too long)", "longer than 1023 characters");
  snprintf(buf, sizeof buf, "%s", value);
  for (char *save = NULL, *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
    if (cfg->ninject >= FUZE_MAX_INJECT) return inject_bad(msg, value, "more than 16 specs");
    char orig[1024];
    snprintf(orig, sizeof orig, "%s", s);
    int rc = parse_spec(s, orig, &cfg->inject[cfg->ninject], msg);
    if (rc) return rc;
    cfg->ninject++;
  }
  if (!cfg->ninject) return inject_bad(msg, value, "empty");
  return FUZE_SUCCESS;
}
