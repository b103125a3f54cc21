/* config: the "key=value;key=value" configuration string with FUZE_<KEY>
 * environment overrides, and the fault-injection spec. Pure (no MPI). */
#ifndef FUZE_CONFIG_H
#define FUZE_CONFIG_H

#include <stddef.h>

enum fuze_domain_mode { FUZE_DOMAIN_NODE = 0, FUZE_DOMAIN_RANK = 1, FUZE_DOMAIN_K = 2 };
enum fuze_recovery_mode { FUZE_RECOVERY_ROLLBACK = 0, FUZE_RECOVERY_FORWARD = 1 };

/* Points inside fuze_checkpoint() where an injected failure strikes. */
enum fuze_phase {
  FUZE_PHASE_BEFORE = 0,   /* before any delta is sent */
  FUZE_PHASE_PARTIAL = 1,  /* after about half of every rank's deltas */
  FUZE_PHASE_SENT = 2,     /* all deltas flushed, before the commit decision */
  FUZE_PHASE_PROMOTED = 3, /* decided and promoted at the hosts, shadows not updated */
  FUZE_PHASE_AFTER = 4,    /* the new epoch is complete */
  FUZE_PHASE_PERSIST = 5,  /* persisting: this rank's file written, not yet renamed */
  FUZE_PHASE_PERSISTED = 6,/* every rank's file renamed, manifest not yet written */
  FUZE_PHASE_COUNT = 7
};

enum fuze_inject_kind { FUZE_INJECT_WIPE = 0, FUZE_INJECT_KILL = 1, FUZE_INJECT_CORRUPT = 2 };

#define FUZE_MAX_INJECT 16
#define FUZE_MAX_INJECT_RANKS 64

typedef struct fuze_inject_spec {
  int kind;              /* enum fuze_inject_kind */
  int nranks;
  int ranks[FUZE_MAX_INJECT_RANKS];
  long at_checkpoint;    /* 1-based count of fuze_checkpoint() calls */
  int phase;             /* corrupt: -1 (it fires after the commit, see verify.c) */
  /* corrupt: the structure, primary (0), parity (1) or replica (2, code=byzantine), bits to flip. */
  char name[64];
  int target;
  long bits;
} fuze_inject_spec;

/* shm: stack and map windows as MPI-3 shared-memory windows updated with CPU
 * atomic XOR (auto: when every rank is on one node and the MPI library can
 * allocate them; on: required, an error otherwise; off: MPI_Accumulate). */
enum fuze_shm_mode { FUZE_SHM_AUTO = 0, FUZE_SHM_ON = 1, FUZE_SHM_OFF = 2 };

typedef struct fuze_config {
  int faults;            /* f, default 1 */
  int spares;            /* a, default 0 */
  int domain_mode;       /* node (default), rank, K */
  int domain_k;
  int block;             /* max block size, 0 = planner default */
  int code;              /* enum fuze_code_kind */
  int recovery;          /* enum fuze_recovery_mode */
  size_t chunk;          /* dirty-tracking chunk bytes, default 64 KiB */
  int verbose;
  size_t capacity;       /* initial fused slots of a stack or map, default 256 */
  int lock_exclusive;     /* lock=exclusive: the naive per-operation window lock */
  int sync_batch;        /* sync=batch: stack/map updates complete at fuze_flush */
  int shm;               /* enum fuze_shm_mode: stack/map windows in shared memory, default auto */
  char dir[1024];         /* persistence directory ("" = none) */
  int persist_every;     /* persist every K-th committed epoch, default 1 */
  int verify_every;      /* fuze_verify after every K-th checkpoint commits, 0 = never */
  int ninject;
  fuze_inject_spec inject[FUZE_MAX_INJECT];
} fuze_config;

/* Parse str (NULL = defaults), then apply FUZE_<KEY> environment overrides.
 * Errors: FUZE_ERR_CONFIG with a message naming the key and accepted values
 * (recorded with fuze__error and copied to msg when msg is not NULL). */
int fuze__config_parse(const char *str, fuze_config *cfg, char *msg);

/* Parse one inject value ("wipe:ranks=1+2:at=checkpoint:3[:phase=sent]/..."). */
int fuze__inject_parse(const char *value, fuze_config *cfg, char *msg);

const char *fuze__phase_name(int phase);

#endif
