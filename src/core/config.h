/* config: the "key=value;key=value" configuration string with FUZE_<KEY>
 * environment overrides, and the fault-injection spec. Pure (no MPI). */
#ifndef FUZE_CONFIG_H
#define FUZE_CONFIG_H

#include "core/limits.h"
#include "core/names.h" /* the modes, phases, inject kinds and keys */

#include <stddef.h>

#define FUZE_MAX_INJECT 16
#define FUZE_MAX_INJECT_RANKS 64
#define FUZE_INJECT_VALUE_MAX 1024 /* an inject= value, with its NUL */
#define FUZE_CONFIG_DIR_MAX 1024   /* dir=, with its NUL */

#define FUZE_DEFAULT_CHUNK (64 * 1024) /* chunk= */
#define FUZE_DEFAULT_CAPACITY 256      /* capacity= */
#define FUZE_PERSIST_BASE_MAX 64       /* persist_base= */

typedef struct fuze_inject_spec {
  int kind;              /* enum fuze_inject_kind */
  int nranks;
  int ranks[FUZE_MAX_INJECT_RANKS];
  long at_checkpoint;    /* 1-based count of fuze_checkpoint() calls */
  int phase;             /* corrupt: -1 (it fires after the commit, see verify.c) */
  /* corrupt: the structure, its target (enum fuze_corrupt_target), bits to flip. */
  char name[FUZE_NAME_MAX];
  int target;
  long bits;
  int fired;             /* runtime, not configuration: it struck (on this rank, or on any
                            rank after the exchange at the end of each checkpoint) */
} fuze_inject_spec;

typedef struct fuze_config {
  int faults;            /* f, default 1 */
  int spares;            /* a, default 0 */
  int replacements;      /* R, default 0: the last R ranks wait in fuze_init to replace dead ones */
  int replace;           /* enum fuze_replace_mode: idle replacements, MPI_Comm_spawn, or both (auto) */
  int domain_mode;       /* node (default), rank, K */
  int domain_k;
  int block;             /* max block size, 0 = planner default */
  int code;              /* enum fuze_code_kind (code=byzantine: rs) */
  int mode;              /* enum fuze_mode (code=byzantine: FUZE_MODE_BYZANTINE) */
  int recovery;          /* enum fuze_recovery_mode */
  size_t chunk;          /* dirty-tracking chunk bytes, default 64 KiB */
  int verbose;
  size_t capacity;       /* initial fused slots of a stack or map, default 256 */
  int lock_exclusive;     /* lock=exclusive: the naive per-operation window lock */
  int sync_batch;        /* sync=batch: stack/map updates complete at fuze_flush */
  /* enum fuze_shm_mode: stack and map windows as MPI-3 shared-memory windows
   * updated with CPU atomic XOR (auto, the default: when every rank is on one
   * node and the MPI library can allocate them; on: required, an error
   * otherwise; off: MPI_Accumulate). */
  int shm;
  char dir[FUZE_CONFIG_DIR_MAX]; /* persistence directory ("" = none) */
  int persist_every;     /* persist every K-th committed epoch, default 1 */
  int persist_base;      /* a full file every K-th persisted epoch, increments between
                            (1: every one full, the default; at most FUZE_PERSIST_BASE_MAX) */
  int persist_async;     /* persist=async: a writer thread writes the epoch's files */
  int restart_never;     /* restart=never: start afresh even over fuze data (deleting it) */
  int verify_every;      /* fuze_verify after every K-th checkpoint commits, 0 = never */
  int ninject;
  fuze_inject_spec inject[FUZE_MAX_INJECT];
  /* Where each key's value came from (enum fuze_config_source, indexed by
   * enum fuze_config_key): fuze_config_source, and the FUZE_<KEY> variable
   * named when ranks differ. */
  unsigned char source[FUZE_KEY_COUNT];
} fuze_config;

enum fuze_config_source { FUZE_SOURCE_DEFAULT = 0, FUZE_SOURCE_CONFIG, FUZE_SOURCE_ENV };

/* Parse str (NULL = defaults), then apply FUZE_<KEY> environment overrides.
 * Errors: FUZE_ERR_CONFIG with a message naming the key and accepted values
 * (recorded with fuze__error and copied to msg when msg is not NULL). */
int fuze__config_parse(const char *str, fuze_config *cfg, char *msg);

/* Room for any key's text (config_text.c): FUZE_MAX_INJECT specs of
 * FUZE_MAX_INJECT_RANKS ranks each fit. */
#define FUZE_CONFIG_TEXT_MAX 16384

/* The effective value of `key` (enum fuze_config_key) as canonical text, as
 * written after "key=" ("(unset)" for an unset block or dir, "(none)" for no
 * injection). Equal texts mean equal behaviour. Returns out. */
const char *fuze__config_text(const fuze_config *cfg, int key, char *out, size_t len);

/* One spec as canonical text ("wipe:ranks=1+2:at=checkpoint:3:phase=before"),
 * for messages. Returns out. */
const char *fuze__inject_spec_text(const fuze_inject_spec *sp, char *out, size_t len);
/* The effective configuration as "key=value;..." (fuze_config_string in
 * fuze.h says which keys, in which order). Writes at most len bytes with a
 * NUL when len > 0 and returns the length of the whole string, like
 * snprintf. */
size_t fuze__config_format(const fuze_config *cfg, char *buf, size_t len);

/* "default", "config" or "environment" for key, NULL when key is unknown. */
const char *fuze__config_source(const fuze_config *cfg, const char *key);

/* Parse one inject value ("wipe:ranks=1+2:at=checkpoint:3[:phase=sent]/..."). */
int fuze__inject_parse(const char *value, fuze_config *cfg, char *msg);

#endif
