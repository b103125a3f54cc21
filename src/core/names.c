/* names: the lookup tables of names.h, generated from its X-macros. */
#include "core/names.h"

#include <stdio.h>
#include <string.h>

#define FUZE_XX_ROW(id, value, name) {(value), (name)},
#define FUZE_NAMES_TABLE(var, MAP)                                                                 \
  static const fuze_name_row var##_rows[] = {MAP(FUZE_XX_ROW)};                                    \
  const fuze_names var = {var##_rows, (int)(sizeof var##_rows / sizeof *var##_rows)};

FUZE_NAMES_TABLE(fuze__names_code, FUZE_CODE_MAP)
FUZE_NAMES_TABLE(fuze__names_mode, FUZE_MODE_MAP)
FUZE_NAMES_TABLE(fuze__names_phase, FUZE_PHASE_MAP)
FUZE_NAMES_TABLE(fuze__names_shm, FUZE_SHM_MAP)
FUZE_NAMES_TABLE(fuze__names_recovery, FUZE_RECOVERY_MAP)
FUZE_NAMES_TABLE(fuze__names_domain, FUZE_DOMAIN_MAP)
FUZE_NAMES_TABLE(fuze__names_lock, FUZE_LOCK_MAP)
FUZE_NAMES_TABLE(fuze__names_sync, FUZE_SYNC_MAP)
FUZE_NAMES_TABLE(fuze__names_persist, FUZE_PERSIST_MAP)
FUZE_NAMES_TABLE(fuze__names_restart, FUZE_RESTART_MAP)
FUZE_NAMES_TABLE(fuze__names_replace, FUZE_REPLACE_MAP)
FUZE_NAMES_TABLE(fuze__names_inject, FUZE_INJECT_MAP)
FUZE_NAMES_TABLE(fuze__names_target, FUZE_TARGET_MAP)
FUZE_NAMES_TABLE(fuze__names_ps_kind, FUZE_PS_KIND_MAP)
FUZE_NAMES_TABLE(fuze__names_key, FUZE_KEY_MAP)

const char *fuze__name_of(const fuze_names *t, int value) {
  for (int i = 0; i < t->n; i++)
    if (t->rows[i].value == value && t->rows[i].name) return t->rows[i].name;
  return "?";
}

int fuze__name_known(const fuze_names *t, int value) {
  for (int i = 0; i < t->n; i++)
    if (t->rows[i].value == value) return 1;
  return 0;
}

int fuze__name_value(const fuze_names *t, const char *name) {
  for (int i = 0; name && i < t->n; i++)
    if (t->rows[i].name && strcmp(t->rows[i].name, name) == 0) return t->rows[i].value;
  return -1;
}

char *fuze__name_list(const fuze_names *t, const char *sep, char *out, size_t len) {
  size_t o = 0;
  if (len) out[0] = 0;
  for (int i = 0; i < t->n && o < len; i++)
    if (t->rows[i].name)
      o += (size_t)snprintf(out + o, len - o, "%s%s", o ? sep : "", t->rows[i].name);
  return out;
}

const char *fuze__code_label(int code, int mode) {
  return mode != FUZE_MODE_NONE ? fuze__name_of(&fuze__names_mode, mode) : fuze__code_name(code);
}
