/* names: the one table of every enumerated name fuze reads or writes (the
 * configuration string, messages, the rank files' and the manifest's
 * attributes, fuze-inspect). Pure (no MPI).
 *
 * Each table is an X-macro like FUZE_STATUS_MAP in fuze.h:
 *   XX(ENUM_CONSTANT, value, "name")
 * It defines the enum and, in names.c, the lookup table, so a value and its
 * name are written once. A NULL name is a value without a spelling of its own
 * (domain=K is written as the number K). */
#ifndef FUZE_NAMES_H
#define FUZE_NAMES_H

#include <stddef.h>

/* The erasure code of a block (code.c). What the rank files and the manifest
 * record as `code`. */
#define FUZE_CODE_MAP(XX)                                                        \
  XX(FUZE_CODE_RS, 0, "rs")                                                      \
  XX(FUZE_CODE_XOR, 1, "xor")                                                    \
  XX(FUZE_CODE_REPLICATE, 2, "replicate")

/* A mode over a code. byzantine: the rs code plus f unfused replicas of every
 * primary's committed state, compared at every checkpoint (byzantine.c).
 * The configuration spells a mode as a code (code=byzantine); the manifest
 * records it as `mode` (none is not written). */
#define FUZE_MODE_MAP(XX)                                                        \
  XX(FUZE_MODE_NONE, 0, "none")                                                  \
  XX(FUZE_MODE_BYZANTINE, 1, "byzantine")

/* Points inside fuze_checkpoint() where an injected failure strikes. */
#define FUZE_PHASE_MAP(XX)                                                       \
  XX(FUZE_PHASE_BEFORE, 0, "before")       /* before any delta is sent */       \
  XX(FUZE_PHASE_PARTIAL, 1, "partial")     /* about half of every rank's deltas */ \
  XX(FUZE_PHASE_SENT, 2, "sent")           /* all flushed, before the decision */ \
  XX(FUZE_PHASE_PROMOTED, 3, "promoted")   /* promoted at the hosts, shadows not */ \
  XX(FUZE_PHASE_AFTER, 4, "after")         /* the new epoch is complete */      \
  XX(FUZE_PHASE_PERSIST, 5, "persist")     /* this rank's file written, not renamed */ \
  XX(FUZE_PHASE_PERSISTED, 6, "persisted") /* every file renamed, no manifest yet */

/* shm: stack and map windows in shared memory (transport.c). */
#define FUZE_SHM_MAP(XX)                                                         \
  XX(FUZE_SHM_AUTO, 0, "auto")                                                   \
  XX(FUZE_SHM_ON, 1, "on")                                                       \
  XX(FUZE_SHM_OFF, 2, "off")

#define FUZE_RECOVERY_MAP(XX)                                                    \
  XX(FUZE_RECOVERY_ROLLBACK, 0, "rollback")                                      \
  XX(FUZE_RECOVERY_FORWARD, 1, "forward")

/* domain=node|rank|K (K ranks per failure domain, written as the number). */
#define FUZE_DOMAIN_MAP(XX)                                                      \
  XX(FUZE_DOMAIN_NODE, 0, "node")                                                \
  XX(FUZE_DOMAIN_RANK, 1, "rank")                                                \
  XX(FUZE_DOMAIN_K, 2, NULL)

/* lock= and sync= (config.lock_exclusive and config.sync_batch are these). */
#define FUZE_LOCK_MAP(XX)                                                        \
  XX(FUZE_LOCK_SHARED, 0, "shared")                                              \
  XX(FUZE_LOCK_EXCLUSIVE, 1, "exclusive")

#define FUZE_SYNC_MAP(XX)                                                        \
  XX(FUZE_SYNC_OP, 0, "op")                                                      \
  XX(FUZE_SYNC_BATCH, 1, "batch")

/* persist= (config.persist_async) and restart= (config.restart_never). */
#define FUZE_PERSIST_MAP(XX)                                                     \
  XX(FUZE_PERSIST_SYNC, 0, "sync")                                               \
  XX(FUZE_PERSIST_ASYNC, 1, "async")
#define FUZE_RESTART_MAP(XX)                                                     \
  XX(FUZE_RESTART_AUTO, 0, "auto")                                               \
  XX(FUZE_RESTART_NEVER, 1, "never")

/* replace= (config.replace): where a dead rank's replacement comes from (ULFM). */
#define FUZE_REPLACE_MAP(XX)                                                     \
  XX(FUZE_REPLACE_AUTO, 0, "auto")                                               \
  XX(FUZE_REPLACE_IDLE, 1, "idle")                                               \
  XX(FUZE_REPLACE_SPAWN, 2, "spawn")

/* inject=<kind>:... and corrupt's target=. */
#define FUZE_INJECT_MAP(XX)                                                      \
  XX(FUZE_INJECT_WIPE, 0, "wipe")                                                \
  XX(FUZE_INJECT_KILL, 1, "kill")                                                \
  XX(FUZE_INJECT_CORRUPT, 2, "corrupt")

#define FUZE_TARGET_MAP(XX)                                                      \
  XX(FUZE_TARGET_PRIMARY, 0, "primary")                                          \
  XX(FUZE_TARGET_PARITY, 1, "parity")                                            \
  XX(FUZE_TARGET_REPLICA, 2, "replica") /* code=byzantine's replicas */

/* The kind of a persisted structure (fuze_pstruct.kind); the rank file's
 * groups are these names plus "s". */
#define FUZE_PS_KIND_MAP(XX)                                                     \
  XX(FUZE_PS_ARRAY, 0, "array")                                                  \
  XX(FUZE_PS_STACK, 1, "stack")                                                  \
  XX(FUZE_PS_MAP, 2, "map")

/* The configuration keys, in the order messages list them (and the order
 * FUZE_<KEY> environment overrides are applied in). */
#define FUZE_KEY_MAP(XX)                                                         \
  XX(FUZE_KEY_FAULTS, 0, "faults")                                               \
  XX(FUZE_KEY_SPARES, 1, "spares")                                               \
  XX(FUZE_KEY_REPLACEMENTS, 18, "replacements")                                  \
  XX(FUZE_KEY_REPLACE, 19, "replace")                                            \
  XX(FUZE_KEY_DOMAIN, 2, "domain")                                               \
  XX(FUZE_KEY_BLOCK, 3, "block")                                                 \
  XX(FUZE_KEY_CODE, 4, "code")                                                   \
  XX(FUZE_KEY_RECOVERY, 5, "recovery")                                           \
  XX(FUZE_KEY_CHUNK, 6, "chunk")                                                 \
  XX(FUZE_KEY_CAPACITY, 7, "capacity")                                           \
  XX(FUZE_KEY_SYNC, 8, "sync")                                                   \
  XX(FUZE_KEY_LOCK, 9, "lock")                                                   \
  XX(FUZE_KEY_SHM, 10, "shm")                                                    \
  XX(FUZE_KEY_DIR, 11, "dir")                                                    \
  XX(FUZE_KEY_PERSIST_EVERY, 12, "persist_every")                                \
  XX(FUZE_KEY_PERSIST_BASE, 20, "persist_base")                                  \
  XX(FUZE_KEY_VERIFY_EVERY, 13, "verify_every")                                  \
  XX(FUZE_KEY_INJECT, 14, "inject")                                              \
  XX(FUZE_KEY_VERBOSE, 15, "verbose")                                            \
  XX(FUZE_KEY_PERSIST, 16, "persist")                                            \
  XX(FUZE_KEY_RESTART, 17, "restart")

#define FUZE_XX_ENUM_ROW(id, value, name) id = (value),
#define FUZE_XX_COUNT_ROW(id, value, name) +1
enum fuze_code_kind { FUZE_CODE_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_mode { FUZE_MODE_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_phase {
  FUZE_PHASE_MAP(FUZE_XX_ENUM_ROW)
  FUZE_PHASE_COUNT = 0 FUZE_PHASE_MAP(FUZE_XX_COUNT_ROW)
};
enum fuze_shm_mode { FUZE_SHM_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_recovery_mode { FUZE_RECOVERY_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_domain_mode { FUZE_DOMAIN_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_lock_mode { FUZE_LOCK_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_sync_mode { FUZE_SYNC_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_persist_mode { FUZE_PERSIST_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_restart_mode { FUZE_RESTART_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_replace_mode { FUZE_REPLACE_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_inject_kind { FUZE_INJECT_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_corrupt_target { FUZE_TARGET_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_ps_kind { FUZE_PS_KIND_MAP(FUZE_XX_ENUM_ROW) };
enum fuze_config_key {
  FUZE_KEY_MAP(FUZE_XX_ENUM_ROW)
  FUZE_KEY_COUNT = 0 FUZE_KEY_MAP(FUZE_XX_COUNT_ROW)
};
#undef FUZE_XX_ENUM_ROW
#undef FUZE_XX_COUNT_ROW

/* One table: its rows (value, name) in the X-macro's order. */
typedef struct fuze_name_row {
  int value;
  const char *name;
} fuze_name_row;
typedef struct fuze_names {
  const fuze_name_row *rows;
  int n;
} fuze_names;

extern const fuze_names fuze__names_code, fuze__names_mode, fuze__names_phase,
    fuze__names_shm, fuze__names_recovery, fuze__names_domain, fuze__names_lock,
    fuze__names_sync, fuze__names_persist, fuze__names_restart, fuze__names_replace, fuze__names_inject, fuze__names_target, fuze__names_ps_kind,
    fuze__names_key;

/* The name of `value`, or "?" when the table has none. */
const char *fuze__name_of(const fuze_names *t, int value);
/* Whether the table has a row of `value`. */
int fuze__name_known(const fuze_names *t, int value);
/* The value named `name` (rows without a name never match), or -1. */
int fuze__name_value(const fuze_names *t, const char *name);
/* The table's names in order joined by sep ("a, b, c" with ", "), for
 * messages. Returns out. */
char *fuze__name_list(const fuze_names *t, const char *sep, char *out, size_t len);

/* Shorthands. */
static inline const char *fuze__code_name(int code) {
  return fuze__name_of(&fuze__names_code, code);
}
static inline const char *fuze__phase_name(int phase) {
  return fuze__name_of(&fuze__names_phase, phase);
}
static inline const char *fuze__ps_kind_name(int kind) {
  return fuze__name_of(&fuze__names_ps_kind, kind);
}

/* What `code=` says for a code and a mode: the mode's name when there is a
 * mode (byzantine), else the code's ("rs", "xor", "replicate"). */
const char *fuze__code_label(int code, int mode);

#endif
