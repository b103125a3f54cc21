/**
 * @file fuze.h
 * @brief fuze: fused backups for MPI applications.
 *
 * fuze keeps Reed-Solomon parity ("fused backups") of an application's protected
 * state on peer ranks, maintained with MPI one-sided communication, so that the
 * state of up to `faults` failed failure domains can be decoded back.
 *
 * Conventions that hold for every call:
 * - Every function returns an int status: FUZE_SUCCESS (0), a positive
 *   informational code (FUZE_RECOVERED, FUZE_RESTARTED) or a negative error.
 * - Every error records a message (what failed, where, on which rank) that
 *   fuze_last_error() returns; fuze_last_error(NULL) returns the calling
 *   thread's last message, for errors raised before a context exists.
 * - Calls marked "Collective" must be called by every compute rank (every rank
 *   of the application communicator) in the same order; they return the same
 *   code on every rank.
 * - The library never calls MPI_Abort() or exit().
 * - Handles are owned by the context; fuze_finalize() frees them all.
 */
#ifndef FUZE_H
#define FUZE_H

#include <stddef.h>
#include <stdint.h>
#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FUZE_VERSION_MAJOR 0
#define FUZE_VERSION_MINOR 1
#define FUZE_VERSION_PATCH 0
#define FUZE_VERSION_STRING "0.1.0"

#if defined(FUZE_BUILDING) && defined(__GNUC__)
#define FUZE_EXPORT __attribute__((visibility("default")))
#else
#define FUZE_EXPORT
#endif

/**
 * The status table: XX(NAME, value, description). Values are pinned.
 */
#define FUZE_STATUS_MAP(XX)                                                       \
  XX(SUCCESS, 0, "success")                                                       \
  XX(RECOVERED, 1, "failed ranks were detected and their state was restored")     \
  XX(RESTARTED, 2, "a persisted epoch was found; registrations restore it")       \
  XX(ERR_ARG, -1, "invalid argument")                                             \
  XX(ERR_CONFIG, -2, "invalid configuration")                                     \
  XX(ERR_NOMEM, -3, "out of memory")                                              \
  XX(ERR_MPI, -4, "MPI error")                                                    \
  XX(ERR_NOT_FOUND, -5, "not found")                                              \
  XX(ERR_EMPTY, -6, "structure is empty")                                         \
  XX(ERR_UNRECOVERABLE, -7, "more failures than the code tolerates")             \
  XX(ERR_IO, -8, "I/O error")                                                     \
  XX(ERR_CORRUPT, -9, "corrupt data")                                             \
  XX(ERR_STATE, -10, "call not valid in the current state")

enum fuze_status {
#define FUZE_XX_ENUM(name, val, desc) FUZE_##name = (val),
  FUZE_STATUS_MAP(FUZE_XX_ENUM)
#undef FUZE_XX_ENUM
};

/** Opaque library context, one per fuze_init(). */
typedef struct fuze_ctx fuze_ctx;
/** Opaque handle of a protected array. */
typedef struct fuze_array fuze_array;
/** Opaque handle of a fused stack. */
typedef struct fuze_stack fuze_stack;
/** Opaque handle of a fused map. */
typedef struct fuze_map fuze_map;

/**
 * @brief Start fuze. Collective over @p comm.
 *
 * Splits @p comm into failure domains, plans blocks and backup placement and
 * creates the RMA state. The last `spares` domains only host backups: on their
 * ranks fuze_init() serves until the compute ranks call fuze_finalize(), then
 * returns FUZE_SUCCESS with *app_comm == MPI_COMM_NULL and *ctx == NULL.
 *
 * @param [in]  comm     communicator of all ranks (compute and spare); duplicated.
 * @param [in]  config   "key=value" pairs separated by ';' or ',', or NULL.
 *                       FUZE_<KEY> environment variables override keys. Keys:
 *                       faults, spares, domain (node|rank|K), block, code
 *                       (rs|xor|replicate), recovery (rollback|forward),
 *                       chunk (bytes, dirty-tracking granularity),
 *                       capacity (initial fused slots of stacks and maps),
 *                       sync (op|batch), lock (shared|exclusive), dir,
 *                       inject, verbose. When a key appears twice, the later
 *                       value wins.
 * @param [out] ctx      the new context (NULL on spare ranks and on error).
 * @param [out] app_comm communicator of the compute ranks (MPI_COMM_NULL on
 *                       spare ranks); the caller frees it with MPI_Comm_free().
 * @return FUZE_SUCCESS, or FUZE_ERR_CONFIG / FUZE_ERR_MPI / FUZE_ERR_NOMEM;
 *         on error *ctx is NULL and fuze_last_error(NULL) says why.
 */
FUZE_EXPORT int fuze_init(MPI_Comm comm, const char *config, fuze_ctx **ctx,
                          MPI_Comm *app_comm);

/**
 * @brief Stop fuze and free every handle. Collective. Accepts a NULL *ctx.
 * @param [in,out] ctx set to NULL on return.
 */
FUZE_EXPORT int fuze_finalize(fuze_ctx **ctx);

/**
 * @brief Protect an array. Collective over the application communicator.
 *
 * The current contents of [base, base + count) become part of the committed
 * epoch (they are encoded into the backups before the call returns), so a
 * failure before the next checkpoint restores them. Protecting a name again
 * with another base or count re-registers it (collective, same rule).
 *
 * @param [in]  name   registration name, identical on every rank (<= 63 chars).
 * @param [in]  base   start of the buffer (may be NULL only when count == 0).
 * @param [in]  count  number of elements on this rank (may differ per rank, 0 ok).
 * @param [in]  type   a predefined MPI datatype (derived types are refused).
 * @param [out] array  handle owned by the context (may be NULL if not needed).
 * @return FUZE_SUCCESS or FUZE_ERR_ARG (the same on every rank), FUZE_ERR_MPI,
 *         FUZE_ERR_NOMEM, FUZE_ERR_STATE.
 */
FUZE_EXPORT int fuze_protect(fuze_ctx *ctx, const char *name, void *base, size_t count,
                             MPI_Datatype type, fuze_array **array);

/**
 * @brief Element count stored for @p name in the epoch a restart found.
 * @return FUZE_SUCCESS, FUZE_ERR_NOT_FOUND when nothing is stored under name.
 */
FUZE_EXPORT int fuze_stored_count(fuze_ctx *ctx, const char *name, size_t *count);

/**
 * @brief Create a fused stack of fixed-size elements. Collective.
 *
 * No capacity is declared: the stack and its backups grow as needed. At each
 * backup, fused node p holds the parity of the members' p-th elements (plus a
 * replica of every member's size), so a push or pop changes one fused node.
 * Contents are part of the committed epoch from the next fuze_checkpoint();
 * a new stack is committed empty.
 * @param [in] name      registration name, identical on every rank.
 * @param [in] elem_size element bytes, identical on every rank (>= 1).
 * @param [out] stack    handle owned by the context.
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (same on every rank), FUZE_ERR_NOMEM, FUZE_ERR_MPI.
 */
FUZE_EXPORT int fuze_stack_create(fuze_ctx *ctx, const char *name, size_t elem_size,
                                  fuze_stack **stack);
/**
 * @brief Push a copy of @p elem (local). The backups are updated before it
 * returns (sync=op), or at the next fuze_flush()/collective call (sync=batch,
 * or when the stack has outgrown the fused capacity: see config capacity).
 */
FUZE_EXPORT int fuze_stack_push(fuze_stack *s, const void *elem);
/** @brief Pop the top element into @p elem (may be NULL). FUZE_ERR_EMPTY when empty. */
FUZE_EXPORT int fuze_stack_pop(fuze_stack *s, void *elem);
/** @brief Copy the top element into @p elem. FUZE_ERR_EMPTY when empty. */
FUZE_EXPORT int fuze_stack_peek(const fuze_stack *s, void *elem);
/** @brief Number of elements (0 for a NULL handle). */
FUZE_EXPORT size_t fuze_stack_size(const fuze_stack *s);
/** @brief Copy element @p i (0 = bottom) into @p elem. FUZE_ERR_NOT_FOUND if i >= size. */
FUZE_EXPORT int fuze_stack_at(const fuze_stack *s, size_t i, void *elem);

/**
 * @brief Create a fused map with fixed-size keys and values. Collective.
 *
 * Keys are compared bytewise. The primary keeps its pairs in slot order (the
 * paper's aux list) with a hash index (O(1) average operations); the backups
 * keep fused value nodes by slot and a replica of every member's slot->key
 * index. A remove moves the member's last slot into the hole (Fig. 5).
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (same on every rank), FUZE_ERR_NOMEM, FUZE_ERR_MPI.
 */
FUZE_EXPORT int fuze_map_create(fuze_ctx *ctx, const char *name, size_t key_size,
                                size_t value_size, fuze_map **map);
/** @brief Insert or update (local). */
FUZE_EXPORT int fuze_map_put(fuze_map *m, const void *key, const void *value);
/** @brief Copy the value of @p key into @p value (may be NULL). FUZE_ERR_NOT_FOUND if absent. */
FUZE_EXPORT int fuze_map_get(const fuze_map *m, const void *key, void *value);
/** @brief Remove @p key (local). FUZE_ERR_NOT_FOUND if absent. */
FUZE_EXPORT int fuze_map_remove(fuze_map *m, const void *key);
/** @brief Number of pairs (0 for a NULL handle). */
FUZE_EXPORT size_t fuze_map_size(const fuze_map *m);
/**
 * @brief Call @p fn on every pair in slot order; a non-zero return from fn
 * stops the walk and is returned. The map must not be modified meanwhile.
 */
FUZE_EXPORT int fuze_map_foreach(const fuze_map *m,
                                 int (*fn)(const void *key, const void *value, void *arg),
                                 void *arg);

/**
 * @brief Commit the current state of every protected structure as a new epoch.
 * Collective.
 *
 * Two-phase: changed chunks' deltas are accumulated into the backups' working
 * parity, every rank agrees, then working parity is promoted to committed and
 * the committed copies are updated. A failure at any point leaves a whole
 * epoch to recover to. If failed ranks are detected, they are recovered
 * instead (see fuze_recover()) and FUZE_RECOVERED is returned. With
 * recovery=rollback every rank then holds the last committed epoch and the
 * application must resume from it; with recovery=forward survivors keep their
 * state and a lost rank's stacks and maps come back as of its last complete
 * operation, its arrays as of the last checkpoint. The E of
 * inject=...:at=checkpoint:E counts every call, including ones that recovered.
 *
 * @return FUZE_SUCCESS, FUZE_RECOVERED, FUZE_ERR_UNRECOVERABLE (nothing
 *         modified), FUZE_ERR_MPI, FUZE_ERR_STATE.
 */
FUZE_EXPORT int fuze_checkpoint(fuze_ctx *ctx);

/**
 * @brief Detect failed ranks and restore them. Collective.
 * @return FUZE_SUCCESS when nothing was lost, FUZE_RECOVERED when state was
 *         restored (rollback: every rank holds the last committed epoch),
 *         FUZE_ERR_UNRECOVERABLE when a block lost more than `faults` members
 *         (no rank's data is modified; the message names the block and ranks).
 */
FUZE_EXPORT int fuze_recover(fuze_ctx *ctx);

/**
 * @brief Emulate the crash of @p ranks (in-job "wipe"). Collective.
 *
 * Ranks are ranks of the communicator given to fuze_init() (compute ranks
 * first, so for compute ranks this is the application rank; spare ranks may be
 * named too). Each listed rank loses what a crashed process loses: protected
 * buffers are overwritten with a poison pattern, committed copies and hosted
 * parity are destroyed. Only its registrations survive, as a replacement
 * process would have them. The next collective call recovers.
 */
FUZE_EXPORT int fuze_inject(fuze_ctx *ctx, const int *ranks, int nranks);

/**
 * @brief Arm a wipe of @p ranks inside the next fuze_checkpoint(). Collective.
 *
 * The same as config inject=wipe:ranks=...:at=checkpoint:<next>:phase=P, for
 * test programs that loop over many failure scenarios in one job.
 * @param [in] phase "before" (no delta sent yet), "partial" (about half of
 *                   every rank's deltas sent), "sent" (all deltas flushed, no
 *                   commit decision yet), "promoted" (decided and promoted at
 *                   the hosts, committed copies not yet updated) or "after"
 *                   (the new epoch is complete).
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (bad rank or phase; same on every rank).
 */
FUZE_EXPORT int fuze_inject_at(fuze_ctx *ctx, const int *ranks, int nranks, const char *phase);

/**
 * @brief Arm a wipe of @p rank inside its next stack or map operation, after
 * that operation has reached @p backups of its backups (0: before any).
 * Collective; a test hook for "a crash between the deltas of one operation".
 * The operation returns FUZE_ERR_STATE on the wiped rank; the next collective
 * call recovers.
 */
FUZE_EXPORT int fuze_inject_op(fuze_ctx *ctx, int rank, int backups);

/**
 * @brief Complete this rank's outstanding backup updates (local). With
 * sync=batch, stack and map operations are complete only after this call or
 * the next collective call.
 */
FUZE_EXPORT int fuze_flush(fuze_ctx *ctx);

/** Per-rank counters, see fuze_get_stats(). */
typedef struct fuze_stats {
  uint64_t epoch;            /**< last committed epoch (0 before the first checkpoint) */
  uint64_t protected_bytes;  /**< bytes this rank protects (arrays; stack and map contents) */
  uint64_t parity_bytes;     /**< committed parity bytes this rank hosts (for stacks and maps:
                                  the allocated regions, index replicas included) */
  uint64_t working_bytes;    /**< working parity bytes this rank hosts (same size) */
  uint64_t shadow_bytes;     /**< bytes of committed array copies this rank keeps */
  uint64_t sent_bytes;       /**< bytes this rank has accumulated into backups (all f) */
  uint64_t recovered_bytes;  /**< bytes this rank restored: decoded primaries and
                                  re-encoded backup regions it hosts */
  uint64_t recoveries;       /**< recoveries performed */
  int nblocks;               /**< blocks in the plan */
  int nbackups;              /**< backups in the plan (nblocks * faults) */
} fuze_stats;

/** @brief Fill @p stats with this rank's counters (local). */
FUZE_EXPORT int fuze_get_stats(const fuze_ctx *ctx, fuze_stats *stats);

/** What this rank hosts for one fused stack or map, see fuze_fused_info(). */
typedef struct fuze_fused_stats {
  int regions;            /**< backups of this structure hosted here */
  uint64_t nodes;         /**< live fused nodes: per region, its largest member's size */
  uint64_t stray_nodes;   /**< non-zero fused nodes beyond the live ones (0 by Theorem 1) */
  uint64_t capacity;      /**< allocated fused nodes per region */
  uint64_t ops;           /**< operations this rank performed on it */
  uint64_t deferred_ops;  /**< of which were sent late for lack of capacity */
} fuze_fused_stats;

/**
 * @brief Inspect what this rank hosts for structure @p name (local). Call it
 * when no operation is in flight (after fuze_flush() and a barrier).
 * @return FUZE_SUCCESS or FUZE_ERR_NOT_FOUND.
 */
FUZE_EXPORT int fuze_fused_info(const fuze_ctx *ctx, const char *name, fuze_fused_stats *st);

/** @brief Description of a status code (never NULL). */
FUZE_EXPORT const char *fuze_strerror(int code);
/** @brief Symbolic name of a status code, e.g. "FUZE_ERR_ARG" (never NULL). */
FUZE_EXPORT const char *fuze_err_name(int code);
/**
 * @brief The last error message recorded on @p ctx, or the calling thread's
 * last message when ctx is NULL. Never NULL ("" when there was none).
 */
FUZE_EXPORT const char *fuze_last_error(const fuze_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* FUZE_H */
