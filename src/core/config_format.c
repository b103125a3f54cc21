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
  char item[FUZE_CONFIG_TEXT_MAX + 64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(item, sizeof item, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  const char *sep = o->used ? ";" : "";
  if (o->len > o->used) snprintf(o->buf + o->used, o->len - o->used, "%s%s", sep, item);
  o->used += strlen(sep) + (size_t)n;
}

/* Every key in the names table's order, as config_text.c writes it (the
 * text fuze_init compares across ranks), leaving out the unset ones. */
size_t fuze__config_format(const fuze_config *c, char *buf, size_t len) {
  out o = {buf, len, 0};
  if (len) buf[0] = 0;
  char text[FUZE_CONFIG_TEXT_MAX];
  for (int i = 0; i < fuze__names_key.n; i++) {
    int k = fuze__names_key.rows[i].value;
    fuze__config_text(c, k, text, sizeof text);
    if (!strcmp(text, "(unset)") || !strcmp(text, "(none)")) continue;
    put(&o, "%s=%s", fuze__names_key.rows[i].name, text);
  }
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
