#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#endif
/* Configuration parsing. Every error names the key, the value and what is
 * accepted, because a configuration error is usually found by an operator
 * reading a job log. */
#include "core/config.h"

#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for any name list of names.h in a message. */
#define LIST_MAX 256

static void config_defaults(fuze_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->faults = 1;
  cfg->domain_mode = FUZE_DOMAIN_NODE;
  cfg->code = FUZE_CODE_RS;
  cfg->mode = FUZE_MODE_NONE;
  cfg->recovery = FUZE_RECOVERY_ROLLBACK;
  cfg->chunk = FUZE_DEFAULT_CHUNK;
  cfg->capacity = FUZE_DEFAULT_CAPACITY;
  cfg->persist_every = 1;
  cfg->persist_base = 1;
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

/* An integer in [lo, hi]; accepted NULL: the message says "lo..hi". */
static int set_int(char *msg, const char *key, const char *val, long lo, long hi,
                   const char *accepted, int *dst) {
  long v;
  char range[64];
  if (parse_long(val, lo, hi, &v)) {
    snprintf(range, sizeof range, "%ld..%ld", lo, hi);
    return bad(msg, key, val, accepted ? accepted : range);
  }
  *dst = (int)v;
  return FUZE_SUCCESS;
}

/* A name of table t (names.h). */
static int set_named(char *msg, const char *key, const char *val, const fuze_names *t, int *dst) {
  int v = fuze__name_value(t, val);
  char list[LIST_MAX];
  if (v < 0) return bad(msg, key, val, fuze__name_list(t, ", ", list, sizeof list));
  *dst = v;
  return FUZE_SUCCESS;
}

static int set_domain(fuze_config *cfg, const char *val, char *msg) {
  long k;
  int mode = fuze__name_value(&fuze__names_domain, val);
  if (mode >= 0) cfg->domain_mode = mode;
  else if (!parse_long(val, 1, FUZE_DOMAIN_K_MAX, &k)) {
    cfg->domain_mode = FUZE_DOMAIN_K;
    cfg->domain_k = (int)k;
  } else {
    char accepted[96];
    snprintf(accepted, sizeof accepted, "node, rank, or a number of ranks per domain in 1..%d",
             FUZE_DOMAIN_K_MAX);
    return bad(msg, "domain", val, accepted);
  }
  return FUZE_SUCCESS;
}

/* code=<code> or code=<mode>: a mode runs over the rs code. */
static int set_code(fuze_config *cfg, const char *val, char *msg) {
  int code = fuze__name_value(&fuze__names_code, val);
  int mode = fuze__name_value(&fuze__names_mode, val);
  if (mode > FUZE_MODE_NONE) {
    cfg->code = FUZE_CODE_RS, cfg->mode = mode;
  } else if (code >= 0) {
    cfg->code = code, cfg->mode = FUZE_MODE_NONE;
  } else {
    char list[LIST_MAX];
    size_t o = strlen(fuze__name_list(&fuze__names_code, ", ", list, sizeof list));
    for (int i = 0; i < fuze__names_mode.n && o < sizeof list; i++)
      if (fuze__names_mode.rows[i].value != FUZE_MODE_NONE)
        o += (size_t)snprintf(list + o, sizeof list - o, ", %s", fuze__names_mode.rows[i].name);
    return bad(msg, "code", val, list);
  }
  return FUZE_SUCCESS;
}

static int set_size(char *msg, const char *key, const char *val, long lo, long hi, long multiple,
                    const char *accepted, size_t *dst) {
  long v;
  if (parse_long(val, lo, hi, &v) || v % multiple) return bad(msg, key, val, accepted);
  *dst = (size_t)v;
  return FUZE_SUCCESS;
}

static int set_dir(fuze_config *cfg, const char *val, char *msg) {
  char accepted[64];
  snprintf(accepted, sizeof accepted, "a path of 1..%zu characters", sizeof cfg->dir - 1);
  if (!*val || strlen(val) >= sizeof cfg->dir) return bad(msg, "dir", val, accepted);
  snprintf(cfg->dir, sizeof cfg->dir, "%s", val);
  return FUZE_SUCCESS;
}

static int set_key(fuze_config *cfg, const char *key, const char *val, char *msg) {
  switch (fuze__name_value(&fuze__names_key, key)) {
  case FUZE_KEY_FAULTS: return set_int(msg, key, val, 1, FUZE_MAX_FAULTS, NULL, &cfg->faults);
  case FUZE_KEY_SPARES:
    return set_int(msg, key, val, 0, INT_MAX, "an integer >= 0", &cfg->spares);
  case FUZE_KEY_REPLACEMENTS:
    return set_int(msg, key, val, 0, INT_MAX, "an integer >= 0", &cfg->replacements);
  case FUZE_KEY_REPLACE: return set_named(msg, key, val, &fuze__names_replace, &cfg->replace);
  case FUZE_KEY_DOMAIN: return set_domain(cfg, val, msg);
  case FUZE_KEY_BLOCK: return set_int(msg, key, val, 1, FUZE_GF_MEMBERS - 1, NULL, &cfg->block);
  case FUZE_KEY_CODE: return set_code(cfg, val, msg);
  case FUZE_KEY_RECOVERY: return set_named(msg, key, val, &fuze__names_recovery, &cfg->recovery);
  case FUZE_KEY_CHUNK:
    return set_size(msg, key, val, 64, 1L << 30, 64,
                    "a multiple of 64 bytes between 64 and 1073741824", &cfg->chunk);
  case FUZE_KEY_CAPACITY:
    return set_size(msg, key, val, 1, 1L << 30, 1, "1..1073741824 slots", &cfg->capacity);
  case FUZE_KEY_SYNC: return set_named(msg, key, val, &fuze__names_sync, &cfg->sync_batch);
  case FUZE_KEY_LOCK: return set_named(msg, key, val, &fuze__names_lock, &cfg->lock_exclusive);
  case FUZE_KEY_SHM: return set_named(msg, key, val, &fuze__names_shm, &cfg->shm);
  case FUZE_KEY_DIR: return set_dir(cfg, val, msg);
  case FUZE_KEY_PERSIST_EVERY:
    return set_int(msg, key, val, 1, INT_MAX, "an integer >= 1", &cfg->persist_every);
  case FUZE_KEY_PERSIST_BASE:
    return set_int(msg, key, val, 1, FUZE_PERSIST_BASE_MAX, "an integer between 1 and 64 (1: "
                   "every persisted epoch is a full file)", &cfg->persist_base);
  case FUZE_KEY_VERIFY_EVERY:
    return set_int(msg, key, val, 0, INT_MAX, "an integer >= 0 (0: never)", &cfg->verify_every);
  case FUZE_KEY_INJECT: return fuze__inject_parse(val, cfg, msg);
  case FUZE_KEY_VERBOSE: return set_int(msg, key, val, 0, 9, NULL, &cfg->verbose);
  case FUZE_KEY_PERSIST: return set_named(msg, key, val, &fuze__names_persist, &cfg->persist_async);
  case FUZE_KEY_RESTART: return set_named(msg, key, val, &fuze__names_restart, &cfg->restart_never);
  }
  char known[LIST_MAX];
  return fuze__error(msg, FUZE_ERR_CONFIG, "config: unknown key '%s' (known: %s)", key,
                     fuze__name_list(&fuze__names_key, ", ", known, sizeof known));
}

/* Remember where key's value came from (fuze_config_source, and the
 * environment variable named when ranks differ). */
static int note_source(fuze_config *cfg, const char *key, const char *val, int source, char *msg) {
  (void)val, (void)msg;
  int k = fuze__name_value(&fuze__names_key, key);
  if (k >= 0 && k < FUZE_KEY_COUNT) cfg->source[k] = (unsigned char)source;
  return FUZE_SUCCESS;
}

/* FUZE_<KEY> overrides the same key from the string. */
static int apply_env(fuze_config *cfg, char *msg) {
  for (int i = 0; i < fuze__names_key.n; i++) {
    const char *key = fuze__names_key.rows[i].name;
    char var[32] = "FUZE_";
    for (size_t j = 0; key[j]; j++) var[5 + j] = (char)toupper(key[j]);
    const char *val = getenv(var);
    if (!val) continue;
    if (fuze__names_key.rows[i].value == FUZE_KEY_INJECT) cfg->ninject = 0;
    int rc = set_key(cfg, key, val, msg);
    if (!rc) rc = note_source(cfg, key, val, FUZE_SOURCE_ENV, msg);
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
  int rc = set_key(cfg, key, val, msg);
  return rc ? rc : note_source(cfg, key, val, FUZE_SOURCE_CONFIG, msg);
}

int fuze__config_parse(const char *str, fuze_config *cfg, char *msg) {
  config_defaults(cfg);
  if (str) {
    size_t len = strlen(str);
    char *copy = malloc(len + 1);
    if (!copy) return FUZE_NOMEM(msg, "config");
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
  char phases[LIST_MAX];
  return fuze__error(msg, FUZE_ERR_CONFIG,
                     "config: bad inject spec '%s': %s (format: "
                     "wipe:ranks=R1+R2:at=checkpoint:E[:phase=P] or kill:rank=R:at=checkpoint:E"
                     "[:phase=P], P one of %s; several separated by '/')", spec, why,
                     fuze__name_list(&fuze__names_phase, "|", phases, sizeof phases));
}

static int parse_ranks(fuze_inject_spec *sp, char *list) {
  for (char *save = NULL, *t = strtok_r(list, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
    long r;
    if (sp->nranks >= FUZE_MAX_INJECT_RANKS || parse_long(t, 0, INT_MAX, &r)) return -1;
    sp->ranks[sp->nranks++] = (int)r;
  }
  return sp->nranks ? 0 : -1;
}

/* The E of "at=checkpoint:E" (the next ':'-token), E >= 1. */
static int parse_at(char **save, long *at) {
  char *num = strtok_r(NULL, ":", save);
  return !num || parse_long(num, 1, LONG_MAX, at) ? -1 : 0;
}

/* corrupt:rank=R:struct=NAME:at=checkpoint:E[:target=primary|parity|replica][:bytes=N]
 * (verify.c fires it right after the E-th checkpoint commits). */
static int corrupt_bad(char *msg, const char *spec, const char *why) {
  char targets[LIST_MAX];
  return fuze__error(msg, FUZE_ERR_CONFIG,
                     "config: bad inject spec '%s': %s (format: corrupt:rank=R:struct=NAME:"
                     "at=checkpoint:E[:target=%s][:bytes=N])", spec, why,
                     fuze__name_list(&fuze__names_target, "|", targets, sizeof targets));
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
      if (!tok[7] || strlen(tok + 7) >= sizeof sp->name) {
        char why[96];
        snprintf(why, sizeof why, "struct= must name an array, stack or map (1..%zu characters)",
                 sizeof sp->name - 1);
        return corrupt_bad(msg, orig, why);
      }
      snprintf(sp->name, sizeof sp->name, "%s", tok + 7);
    } else if (!strcmp(tok, "at=checkpoint")) {
      if (parse_at(&save, &sp->at_checkpoint))
        return corrupt_bad(msg, orig, "at=checkpoint must be followed by :E with E >= 1");
    } else if (!strncmp(tok, "target=", 7)) {
      if ((sp->target = fuze__name_value(&fuze__names_target, tok + 7)) < 0)
        return corrupt_bad(msg, orig, "target must be primary or parity (or replica, code=byzantine)");
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
  sp->kind = fuze__name_value(&fuze__names_inject, tok);
  if (sp->kind == FUZE_INJECT_CORRUPT) return parse_corrupt(save, orig, sp, msg);
  if (sp->kind < 0) return inject_bad(msg, orig, "the kind must be 'wipe' or 'kill' (or 'corrupt')");
  while ((tok = strtok_r(NULL, ":", &save))) {
    if (!strncmp(tok, "ranks=", 6) || !strncmp(tok, "rank=", 5)) {
      if (sp->nranks) return inject_bad(msg, orig, "ranks given twice");
      if (parse_ranks(sp, strchr(tok, '=') + 1))
        return inject_bad(msg, orig, "ranks must be R1+R2+... (non-negative)");
    } else if (!strcmp(tok, "at=checkpoint")) {
      if (parse_at(&save, &sp->at_checkpoint))
        return inject_bad(msg, orig, "at=checkpoint must be followed by :E with E >= 1");
    } else if (!strncmp(tok, "phase=", 6)) {
      if ((sp->phase = fuze__name_value(&fuze__names_phase, tok + 6)) < 0)
        return inject_bad(msg, orig, "unknown phase");
    } else
      return inject_bad(msg, orig, "unknown field");
  }
  if (!sp->nranks) return inject_bad(msg, orig, sp->kind == FUZE_INJECT_KILL ? "rank= is missing" : "ranks= is missing");
  if (!sp->at_checkpoint) return inject_bad(msg, orig, "at=checkpoint:E is missing");
  return FUZE_SUCCESS;
}

int fuze__inject_parse(const char *value, fuze_config *cfg, char *msg) {
  char buf[FUZE_INJECT_VALUE_MAX], why[64];
  if (strlen(value) >= sizeof buf) {
    snprintf(why, sizeof why, "longer than %zu characters", sizeof buf - 1);
    return inject_bad(msg, "(too long)", why);
  }
  snprintf(buf, sizeof buf, "%s", value);
  for (char *save = NULL, *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
    if (cfg->ninject >= FUZE_MAX_INJECT) {
      snprintf(why, sizeof why, "more than %d specs", FUZE_MAX_INJECT);
      return inject_bad(msg, value, why);
    }
    char orig[FUZE_INJECT_VALUE_MAX];
    snprintf(orig, sizeof orig, "%s", s);
    int rc = parse_spec(s, orig, &cfg->inject[cfg->ninject], msg);
    if (rc) return rc;
    cfg->ninject++;
  }
  if (!cfg->ninject) return inject_bad(msg, value, "empty");
  return FUZE_SUCCESS;
}
