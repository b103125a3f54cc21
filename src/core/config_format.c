/* config_format: the effective configuration written back as the canonical
 * "key=value;..." string (fuze_config_string), and where each value came
 * from. Pure (no MPI). */
#include "core/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct out {
  char *buf;
  size_t len, used; /* used: the whole string's length, even past len */
} out;

static void put(out *o, const char *fmt, ...) {
  char item[FUZE_INJECT_VALUE_MAX + 64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(item, sizeof item, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  const char *sep = o->used ? ";" : "";
  if (o->len > o->used) snprintf(o->buf + o->used, o->len - o->used, "%s%s", sep, item);
  o->used += strlen(sep) + (size_t)n;
}

static const char *name_of(const fuze_names *t, int v) { return fuze__name_of(t, v); }

static void put_domain(out *o, const fuze_config *c) {
  if (c->domain_mode == FUZE_DOMAIN_K) put(o, "domain=%d", c->domain_k);
  else put(o, "domain=%s", name_of(&fuze__names_domain, c->domain_mode));
}

size_t fuze__config_format(const fuze_config *c, char *buf, size_t len) {
  out o = {buf, len, 0};
  if (len) buf[0] = 0;
  put(&o, "faults=%d", c->faults);
  put(&o, "spares=%d", c->spares);
  put_domain(&o, c);
  if (c->block) put(&o, "block=%d", c->block);
  put(&o, "code=%s", c->mode == FUZE_MODE_BYZANTINE ? name_of(&fuze__names_mode, c->mode)
                                                     : name_of(&fuze__names_code, c->code));
  put(&o, "recovery=%s", name_of(&fuze__names_recovery, c->recovery));
  put(&o, "chunk=%zu", c->chunk);
  put(&o, "capacity=%zu", c->capacity);
  put(&o, "sync=%s", name_of(&fuze__names_sync, c->sync_batch));
  put(&o, "lock=%s", name_of(&fuze__names_lock, c->lock_exclusive));
  put(&o, "shm=%s", name_of(&fuze__names_shm, c->shm));
  if (c->dir[0]) put(&o, "dir=%s", c->dir);
  put(&o, "persist_every=%d", c->persist_every);
  put(&o, "verify_every=%d", c->verify_every);
  if (c->inject_text[0]) put(&o, "inject=%s", c->inject_text);
  put(&o, "verbose=%d", c->verbose);
  return o.used;
}

const char *fuze__config_source(const fuze_config *cfg, const char *key) {
  int k = fuze__name_value(&fuze__names_key, key);
  if (k < 0 || k >= FUZE_KEY_COUNT) return NULL;
  switch (cfg->source[k]) {
  case FUZE_SOURCE_CONFIG: return "config";
  case FUZE_SOURCE_ENV: return "environment";
  default: return "default";
  }
}
