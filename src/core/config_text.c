/* config_text: the effective value of every configuration key as canonical
 * text (what fuze_init compares across ranks, comm/cfgcheck.c). Pure (no
 * MPI). Two configurations behave the same when every key's text is equal;
 * the text is what a user would write after "key=", so that a message can
 * quote it. */
#include "core/config.h"

#include <stdio.h>
#include <string.h>

/* One injection spec, in the order and spelling the parser accepts. */
static size_t spec_text(const fuze_inject_spec *sp, char *out, size_t len) {
  size_t o = 0;
#define PUT(...) (o += (size_t)snprintf(out + o, o < len ? len - o : 0, __VA_ARGS__))
  PUT("%s:%s=", fuze__name_of(&fuze__names_inject, sp->kind),
      sp->kind == FUZE_INJECT_WIPE ? "ranks" : "rank");
  for (int r = 0; r < sp->nranks; r++) PUT("%s%d", r ? "+" : "", sp->ranks[r]);
  if (sp->kind == FUZE_INJECT_CORRUPT) {
    PUT(":struct=%s:at=checkpoint:%ld:target=%s:bytes=%ld", sp->name, sp->at_checkpoint,
        fuze__name_of(&fuze__names_target, sp->target), sp->bits);
  } else {
    PUT(":at=checkpoint:%ld:phase=%s", sp->at_checkpoint, fuze__phase_name(sp->phase));
  }
#undef PUT
  return o;
}

const char *fuze__inject_spec_text(const fuze_inject_spec *sp, char *out, size_t len) {
  if (len) out[0] = 0;
  spec_text(sp, out, len);
  return out;
}

static void inject_text(const fuze_config *cfg, char *out, size_t len) {
  size_t o = 0;
  out[0] = 0;
  if (!cfg->ninject) snprintf(out, len, "(none)");
  for (int s = 0; s < cfg->ninject && o < len; s++) {
    if (s) o += (size_t)snprintf(out + o, len - o, "/");
    if (o < len) o += spec_text(&cfg->inject[s], out + o, len - o);
  }
}

const char *fuze__config_text(const fuze_config *cfg, int key, char *out, size_t len) {
  if (!len) return out;
  out[0] = 0;
  switch (key) {
  case FUZE_KEY_FAULTS: snprintf(out, len, "%d", cfg->faults); break;
  case FUZE_KEY_SPARES: snprintf(out, len, "%d", cfg->spares); break;
  case FUZE_KEY_REPLACEMENTS: snprintf(out, len, "%d", cfg->replacements); break;
  case FUZE_KEY_REPLACE: snprintf(out, len, "%s", fuze__name_of(&fuze__names_replace, cfg->replace)); break;
  case FUZE_KEY_DOMAIN:
    if (cfg->domain_mode == FUZE_DOMAIN_K) snprintf(out, len, "%d", cfg->domain_k);
    else snprintf(out, len, "%s", fuze__name_of(&fuze__names_domain, cfg->domain_mode));
    break;
  case FUZE_KEY_BLOCK:
    if (cfg->block) snprintf(out, len, "%d", cfg->block);
    else snprintf(out, len, "(unset)");
    break;
  case FUZE_KEY_CODE: snprintf(out, len, "%s", fuze__code_label(cfg->code, cfg->mode)); break;
  case FUZE_KEY_RECOVERY:
    snprintf(out, len, "%s", fuze__name_of(&fuze__names_recovery, cfg->recovery));
    break;
  case FUZE_KEY_CHUNK: snprintf(out, len, "%zu", cfg->chunk); break;
  case FUZE_KEY_CAPACITY: snprintf(out, len, "%zu", cfg->capacity); break;
  case FUZE_KEY_SYNC: snprintf(out, len, "%s", fuze__name_of(&fuze__names_sync, cfg->sync_batch)); break;
  case FUZE_KEY_LOCK:
    snprintf(out, len, "%s", fuze__name_of(&fuze__names_lock, cfg->lock_exclusive));
    break;
  case FUZE_KEY_SHM: snprintf(out, len, "%s", fuze__name_of(&fuze__names_shm, cfg->shm)); break;
  case FUZE_KEY_DIR: snprintf(out, len, "%s", cfg->dir[0] ? cfg->dir : "(unset)"); break;
  case FUZE_KEY_PERSIST_EVERY: snprintf(out, len, "%d", cfg->persist_every); break;
  case FUZE_KEY_PERSIST_BASE: snprintf(out, len, "%d", cfg->persist_base); break;
  case FUZE_KEY_VERIFY_EVERY: snprintf(out, len, "%d", cfg->verify_every); break;
  case FUZE_KEY_INJECT: inject_text(cfg, out, len); break;
  case FUZE_KEY_VERBOSE: snprintf(out, len, "%d", cfg->verbose); break;
  case FUZE_KEY_PERSIST:
    snprintf(out, len, "%s", fuze__name_of(&fuze__names_persist, cfg->persist_async));
    break;
  case FUZE_KEY_RESTART:
    snprintf(out, len, "%s", fuze__name_of(&fuze__names_restart, cfg->restart_never));
    break;
  default: snprintf(out, len, "?"); break;
  }
  return out;
}
