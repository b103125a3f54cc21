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
 *   code on every rank. An error one rank found is agreed: the rank that found
 *   it records "rank F found: <message>", every other rank R records "rank R
 *   reports the error agreed from rank F: <message>".
 * - The library never calls MPI_Abort() or exit().
 * - Handles are owned by the context; fuze_finalize() frees them all.
 *
 * Threads. fuze_init() records MPI's thread level (MPI_Query_thread):
 * - MPI_THREAD_MULTIPLE: any thread may call fuze. Local calls (stack and
 *   map operations, fuze_flush, fuze_get_stats, fuze_fused_info,
 *   fuze_stored_count, fuze_verify_last) may run at once from several
 *   threads. Operations on different structures proceed in parallel in their
 *   primary-side work (hash index, slots, undo log, deltas); their encoding
 *   and one-sided MPI calls are serialised per context. Operations on one
 *   structure from several threads are serialised by the structure's mutex:
 *   each is atomic, in some order. Never corrupt.
 * - MPI_THREAD_SERIALIZED: the same calls from several threads are allowed
 *   and fuze serialises its own MPI calls (across contexts too); the
 *   application must not call MPI itself while a fuze call runs in another
 *   thread.
 * - MPI_THREAD_FUNNELED or MPI_THREAD_SINGLE: only the thread that called
 *   fuze_init() may call fuze; a call from another thread does nothing and
 *   returns FUZE_ERR_STATE (message in that thread's fuze_last_error(NULL)).
 * - Collective calls (fuze_protect, fuze_unprotect, *_create, fuze_checkpoint,
 *   fuze_recover, fuze_verify, fuze_inject*, fuze_finalize) come from one
 *   thread at a time per context, in the same order on every rank. A
 *   collective call waits until no local call on the context is in progress
 *   and local calls wait while it runs, so a checkpoint commits exactly the
 *   operations that returned before it. A collective call entered while
 *   another thread of the rank is inside one on the same context returns
 *   FUZE_ERR_STATE at once on that rank only (it is not entered, the other
 *   ranks are not told). fuze_finalize() must be the last call of every
 *   thread on the context. The application must not write a protected array
 *   while a collective call runs (it reads or restores it).
 * - fuze_last_error(NULL) is per thread and always the calling thread's own
 *   last message; fuze_last_error(ctx) is the context's last message from
 *   any thread.
 */
#ifndef FUZE_H
#define FUZE_H

#include <stddef.h>
#include <stdint.h>
/* fuze's own MPI-free core (src/core) is built with FUZE_NO_MPI: it sees the
 * status codes and plain types, never an MPI declaration. Applications do
 * not define it. */
#ifndef FUZE_NO_MPI
#include <mpi.h>
#endif

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
 * While idle they sleep between tests of the control broadcast (at most
 * 500 us), using a few percent of a core rather than spinning on one.
 * With `replacements=R` the last R ranks of @p comm (after the spares) hold
 * nothing and take part in no collective: they wait inside fuze_init() and,
 * when never needed, return at fuze_finalize() of the compute ranks like a
 * spare (FUZE_SUCCESS, *app_comm == MPI_COMM_NULL, *ctx == NULL); when the
 * compute ranks' fuze_init() fails, they return its error.
 *
 * Real process deaths (ULFM: fuze built against an MPI with ULFM, such as
 * Open MPI 5, and the job launched with `mpirun --with-ft ulfm`): a death is
 * the failure of that rank's domain. When a collective fuze call sees it
 * (fuze_checkpoint(), fuze_recover(), fuze_verify(), fuze_protect(), the
 * create calls), or a stack or map operation that changes the structure
 * (push, pop, put, upsert, remove) or fuze_flush() finds that this rank
 * knows of one (their one-sided calls report nothing, so they look after
 * every operation), every survivor (compute ranks and spares) repairs it: the
 * communicators are revoked (the application's too, so its own MPI calls on
 * it fail with MPIX_ERR_PROC_FAILED or MPIX_ERR_REVOKED: it then calls
 * fuze_recover()), an idle replacement takes each dead rank's place (same
 * size, same rank order; its role in the plan: its primaries and the backups
 * it hosted), and the dead ranks' state is decoded from the fused backups as
 * after a wipe; the call returns FUZE_RECOVERED on every survivor, and the
 * application takes fuze_comm() again (the old communicator is revoked; it
 * is still the application's to free; the new one belongs to fuze). On the
 * replacement, fuze_init() returns FUZE_RECOVERED with *app_comm the new
 * compute communicator (the caller's to free, as always) and a ready
 * context; it must then make the same registrations as every rank made at
 * the start, in the same order (fuze_protect() with the dead rank's count and
 * type, fuze_stack_create(), fuze_map_create()): only it makes them, they
 * are local and fill its structures with the recovered state
 * (fuze_stored_count() gives their sizes until its first checkpoint), and any
 * other call before they are done is FUZE_ERR_STATE. With replace=spawn (or
 * auto, the default, once no idle replacement is left) a new process started
 * with MPI_Comm_spawn (the same program and arguments) is the replacement:
 * its fuze_init (MPI_Comm_get_parent is set) returns the same way. Then it joins the
 * application's loop where the survivors resume (docs/design.md, README
 * "Real failures (ULFM)"). A death during the repair (of a survivor, a
 * backup host or a replacement being brought in) is repaired by the next
 * round of the same repair: its dead ranks get replacements too and the call
 * still returns FUZE_RECOVERED once. With no idle replacement left (or
 * replacements=0), or more than faults lost domains in a block, the call
 * returns FUZE_ERR_UNRECOVERABLE on every survivor, naming the dead ranks,
 * with the survivors' state untouched; idle replacements return it from
 * fuze_init(); fuze_finalize() still returns. Under ULFM fuze_init() sets
 * SIGPIPE to SIG_IGN in its process when it is at the default action (a
 * handler or SIG_IGN the application set stays): Open MPI's btl tcp writes
 * to a dead rank's socket, and the default action would kill the survivor.
 *
 * @param [in]  comm     communicator of all ranks (compute, spare, replacement); duplicated.
 * @param [in]  config   "key=value" pairs separated by ';' or ',', or NULL.
 *                       FUZE_<KEY> environment variables override keys. Keys:
 *                       faults, spares, replacements, replace (auto|idle|spawn),
 *                       domain (node|rank|K), block, code
 *                       (rs|xor|replicate|byzantine), recovery (rollback|forward),
 *                       chunk (bytes, dirty-tracking granularity),
 *                       capacity (initial fused slots of stacks and maps),
 *                       sync (op|batch), lock (shared|exclusive), shm
 *                       (auto|on|off: windows in shared memory of fuze's
 *                       own when all ranks share a node: stacks and maps
 *                       with atomic XOR, arrays with striped locks), dir
 *                       (persistence directory), persist_every (K: persist
 *                       every K-th epoch, default 1), persist_base (K in
 *                       1..64: with K > 1 a persisted epoch writes only the
 *                       chunks that changed since the previous one, with
 *                       their parity, as an increment file per rank onto a
 *                       full file; every K-th persisted epoch, and one
 *                       whose increments since the full file would exceed
 *                       half its size, is a full file again (the
 *                       compaction), after which only it is kept; default
 *                       1: every persisted epoch a full file, the previous
 *                       one kept too), persist (sync|async:
 *                       with async a thread writes the epoch, which becomes
 *                       a restart point at the next fuze_checkpoint() or
 *                       fuze_finalize(); a failed write is reported by that
 *                       call), restart (auto|never: never starts afresh,
 *                       deleting dir's fuze data), verify_every (K:
 *                       fuze_verify() after every K-th checkpoint commits;
 *                       0, the default: never), inject, verbose. When a
 *                       key appears twice, the later value wins. Every key
 *                       but verbose must have the same effective value on
 *                       every rank: fuze_init() compares them first and
 *                       returns FUZE_ERR_CONFIG on every rank, naming the
 *                       key, the values, the ranks and the environment
 *                       variable, when they differ.
 * @param [out] ctx      the new context (NULL on spare ranks and on error).
 * @param [out] app_comm communicator of the compute ranks (MPI_COMM_NULL on
 *                       spare ranks); the caller frees it with MPI_Comm_free().
 *                       With spares=0 it is congruent with @p comm (the same
 *                       ranks in the same order, MPI_Comm_compare gives
 *                       MPI_CONGRUENT) but a communicator of its own, so the
 *                       application's messages never mix with fuze's. With
 *                       spares=S > 0 it holds the ranks of @p comm outside
 *                       the last S failure domains, in @p comm's order (with
 *                       domain=rank: every rank but the last S, each keeping
 *                       its rank). A code that hard-codes MPI_COMM_WORLD
 *                       adopts spares by passing MPI_COMM_WORLD to fuze_init
 *                       and then using *app_comm wherever it used
 *                       MPI_COMM_WORLD (sizes, ranks, decomposition,
 *                       messages, collectives, sub-communicators), and by
 *                       letting spare ranks (*app_comm == MPI_COMM_NULL) go
 *                       straight to MPI_Finalize (README "Communicators").
 *
 * Persistence (dir=PATH): every persisted epoch is written as one HDF5 file
 * per rank under PATH/domain-<D>/rank-<R>/ and becomes complete when the
 * manifest names it (PATH/manifest and a copy per failure domain,
 * PATH/domain-<D>/manifest: docs/format.md). When PATH holds a complete
 * epoch, fuze_init restarts from the newest one any surviving copy names
 * (with no readable copy, from the newest epoch the rank files can restore:
 * never a silent fresh start over fuze data): it checks every rank's file
 * (crc64, job, geometry), rebuilds missing or damaged files of up to
 * `faults` members per block by decoding (reductions over each block, to
 * which the surviving ranks contribute from their own files), and returns
 * FUZE_RESTARTED on compute ranks. The application then registers the same
 * structures (same names; arrays sized with fuze_stored_count()) before its
 * first fuze_checkpoint(): fuze_protect() copies the stored contents into
 * the buffer and fuze_stack_create()/fuze_map_create() restore theirs; the
 * backups' parity is loaded from the files, not encoded again. If the
 * newest epoch cannot be rebuilt, the previous complete one is tried.
 *
 * @return FUZE_SUCCESS, FUZE_RESTARTED, or FUZE_ERR_CONFIG (bad key or value;
 *         dir holds a job of another geometry; dir is in use by another
 *         running job), FUZE_ERR_UNRECOVERABLE (more than `faults` files of a
 *         block lost in every complete epoch; the message names them),
 *         FUZE_ERR_CORRUPT (no readable manifest copy and no epoch the rank
 *         files can restore; manifests of two jobs), FUZE_ERR_IO, FUZE_ERR_MPI,
 *         FUZE_ERR_NOMEM, FUZE_ERR_ARG (comm is MPI_COMM_NULL, or ctx or
 *         app_comm is NULL; returned on the calling rank alone, without any
 *         communication); on error *ctx is NULL and fuze_last_error(NULL)
 *         says why.
 */
#ifndef FUZE_NO_MPI
FUZE_EXPORT int fuze_init(MPI_Comm comm, const char *config, fuze_ctx **ctx,
                          MPI_Comm *app_comm);
#endif

/**
 * @brief The current compute communicator (local): the communicator fuze_init()
 * returned in *app_comm, MPI_COMM_NULL for a NULL @p ctx. After a repair of a
 * real process death (ULFM: a call returned FUZE_RECOVERED) it is a new
 * communicator of the same size and rank order, the replacements in the dead
 * ranks' places, owned by fuze (freed by fuze_finalize() or the next repair);
 * the old one is revoked. Take it again after every FUZE_RECOVERED, and make
 * again whatever the application derived from it (a Cartesian communicator,
 * say).
 */
#ifndef FUZE_NO_MPI
FUZE_EXPORT MPI_Comm fuze_comm(const fuze_ctx *ctx);
#endif

/**
 * @brief Stop fuze and free every handle. Collective. Accepts a NULL *ctx.
 *
 * Every injection spec (inject=, fuze_inject_at()) that never struck on any
 * rank is reported on stderr by rank 0, one line per spec with its text and
 * why ("fuze: inject spec '...' never fired: ..."), whatever `verbose` is.
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
 * Lifetime: fuze keeps @p base, it does not copy the buffer's address space.
 * The buffer must stay valid, at the same address and with at least @p count
 * elements, until the array is unregistered by fuze_unprotect(), by
 * fuze_finalize(), or replaced by protecting the same name again: every
 * collective call may read it (fuze_checkpoint, fuze_verify) or write it (a
 * recovery restores it, a wipe poisons it). Before freeing or moving a
 * protected buffer (a std::vector that grows, a reallocated array), call
 * fuze_unprotect(); protect the new buffer under the same name afterwards.
 *
 * @param [in]  name   registration name, identical on every rank (<= 63 chars).
 * @param [in]  base   start of the buffer (may be NULL only when count == 0).
 * @param [in]  count  number of elements on this rank (may differ per rank, 0 ok);
 *                     count times the type's extent must not exceed PTRDIFF_MAX
 *                     bytes (FUZE_ERR_ARG naming count and size otherwise).
 * @param [in]  type   the element's MPI datatype: a predefined one, or a derived
 *                     one (MPI_Type_contiguous, MPI_Type_create_struct of
 *                     scalars, ...; committed or not) with lower bound 0 whose
 *                     data lies in [0, extent). fuze protects count * extent
 *                     bytes from base, padding included, so one registration
 *                     covers a struct of scalars (cycle, time, dt). fuze keeps
 *                     its own duplicate of a derived type: the application may
 *                     free its handle after the call. Persisted as an HDF5
 *                     opaque type of extent bytes tagged with the type's name
 *                     (docs/format.md). Other bounds: FUZE_ERR_ARG naming them.
 * @param [out] array  handle owned by the context (may be NULL if not needed).
 * After a restart (fuze_init returned FUZE_RESTARTED) and before the first
 * checkpoint, the stored contents of @p name are copied into the buffer; its
 * count must equal the stored one (FUZE_ERR_ARG otherwise, naming both).
 * The committed parity of the backups is then loaded from the restarted
 * files instead of being encoded (nothing is sent: sent_bytes of
 * fuze_get_stats() does not grow); when some rank's file cannot supply a
 * region, every rank encodes as on a fresh registration (verbose=1 says
 * which rank and why).
 * On any error no registration of @p name remains on any rank and *array is
 * NULL (a re-registration that fails after its checks drops the old one:
 * protect the name again).
 *
 * @return FUZE_SUCCESS or FUZE_ERR_ARG (the same on every rank), FUZE_ERR_MPI,
 *         FUZE_ERR_NOMEM, FUZE_ERR_STATE, FUZE_ERR_NOT_FOUND (a restart stored
 *         no array of that name).
 */
#ifndef FUZE_NO_MPI
FUZE_EXPORT int fuze_protect(fuze_ctx *ctx, const char *name, void *base, size_t count,
                             MPI_Datatype type, fuze_array **array);
#endif

/**
 * @brief Unregister the array @p name. Collective over the application
 * communicator (same name on every rank, in the same order as the other
 * collective calls).
 *
 * Takes effect at once, on every rank: fuze forgets the buffer (it may be
 * freed or moved as soon as the call returns) and frees the array's committed
 * copy, the parity regions every rank hosts for it (its RMA window) and, with
 * code=byzantine, its replicas. From then on the array is in no epoch: a
 * recovery, even to the epoch committed before the call, leaves the buffer
 * alone; the next persisted epoch does not contain it (an epoch persisted
 * before still does). The name may be protected again at any time, with any
 * address, count and contents: that is a new registration, encoded at once
 * (fuze_protect). The fuze_array handle of the array is invalid afterwards.
 *
 * @return FUZE_SUCCESS; FUZE_ERR_NOT_FOUND when no array of that name is
 *         protected (a stack or map name included); FUZE_ERR_ARG (bad name, or
 *         names differing across ranks); FUZE_ERR_STATE when ranks were lost
 *         and not yet recovered (call fuze_recover() first); FUZE_ERR_MPI. The
 *         same code on every rank.
 */
FUZE_EXPORT int fuze_unprotect(fuze_ctx *ctx, const char *name);

/**
 * @brief Element count stored for @p name on this rank in the epoch a restart
 *        found (array elements, stack elements or map entries). Local.
 *
 * Available from fuze_init() returning FUZE_RESTARTED until the first
 * fuze_checkpoint(), so that an application can size its arrays before
 * fuze_protect().
 * @return FUZE_SUCCESS, FUZE_ERR_NOT_FOUND when the job did not restart or
 *         nothing is stored under @p name, FUZE_ERR_ARG for NULL arguments.
 */
FUZE_EXPORT int fuze_stored_count(fuze_ctx *ctx, const char *name, size_t *count);

/**
 * @brief Create a fused stack of fixed-size elements. Collective.
 *
 * No capacity is declared: the stack and its backups grow as needed. At each
 * backup, fused node p holds the parity of the members' p-th elements (plus a
 * replica of every member's size), so a push or pop changes one fused node.
 * Contents are part of the committed epoch from the next fuze_checkpoint();
 * a new stack is committed empty. After a restart it comes back with the
 * stored elements, committed, and its backups' regions (parity and index
 * replicas) loaded from the restarted files, not encoded again (the same
 * holds for fuze_map_create()).
 * @param [in] name      registration name, identical on every rank.
 * @param [in] elem_size element bytes, identical on every rank, 1..2^30 (1 GiB;
 *                       FUZE_ERR_ARG naming the size and the limit otherwise).
 * @param [out] stack    handle owned by the context (NULL on error).
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (same on every rank), FUZE_ERR_NOMEM (the
 *         backup window at the initial capacity would not fit a node's memory:
 *         the message gives its size and the memory), FUZE_ERR_MPI.
 */
FUZE_EXPORT int fuze_stack_create(fuze_ctx *ctx, const char *name, size_t elem_size,
                                  fuze_stack **stack);
/**
 * @brief Push a copy of @p elem (local). The backups are updated before it
 * returns (sync=op), or at the next fuze_flush()/collective call (sync=batch,
 * or when the stack has outgrown the fused capacity: see config capacity).
 *
 * Under ULFM (see fuze_init()) this call, fuze_stack_pop(), fuze_map_put(),
 * fuze_map_upsert(), fuze_map_remove() and fuze_flush() may return
 * FUZE_RECOVERED: the operation was done, then it found that a process had
 * died and repaired it with the other survivors (collective from there on,
 * like fuze_recover()). With recovery=rollback every structure is back at
 * the last checkpoint (the operation too); with recovery=forward the
 * operation and every earlier one stay. Take fuze_comm() again, as after
 * any FUZE_RECOVERED.
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
 * key_size and value_size are at least 1 and their sum at most 2^30 bytes
 * (1 GiB), identical on every rank (FUZE_ERR_ARG naming both otherwise).
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (same on every rank), FUZE_ERR_NOMEM (as
 *         for fuze_stack_create()), FUZE_ERR_MPI.
 */
FUZE_EXPORT int fuze_map_create(fuze_ctx *ctx, const char *name, size_t key_size,
                                size_t value_size, fuze_map **map);
/** @brief Insert or update (local). fuze_map_upsert() also says which. */
FUZE_EXPORT int fuze_map_put(fuze_map *m, const void *key, const void *value);
/**
 * @brief Insert or update (local), as fuze_map_put(), and say which.
 * @param [out] inserted 1 when @p key was new (a pair was inserted), 0 when
 *                       its value was updated; may be NULL. Left unchanged on
 *                       error.
 * @return the same as fuze_map_put(): FUZE_SUCCESS in both cases, or an error.
 */
FUZE_EXPORT int fuze_map_upsert(fuze_map *m, const void *key, const void *value, int *inserted);
/**
 * @brief fuze_map_create() with a capacity hint for this map. Collective.
 *
 * @p capacity fused slots are allocated per backup region from the start
 * instead of the configuration's `capacity` (default 256), so that a map
 * expected to hold many pairs per rank never waits for its backups to grow
 * (operations beyond the capacity are deferred until the next collective
 * call; fuze_fused_info() counts them). The backups still grow past it.
 * @param [in] capacity fused slots, 1..1073741824, identical on every rank;
 *                      0: the configuration's capacity.
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (also for a capacity out of range or
 *         different on some rank; the same on every rank), FUZE_ERR_NOMEM,
 *         FUZE_ERR_MPI.
 */
FUZE_EXPORT int fuze_map_create_hint(fuze_ctx *ctx, const char *name, size_t key_size,
                                     size_t value_size, size_t capacity, fuze_map **map);
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
 * inject=...:at=checkpoint:E counts every call, including ones that recovered,
 * and continues across a restart from the count of the restored epoch.
 *
 * With dir=PATH, a committed epoch whose number is a multiple of
 * persist_every is then persisted (two-phase: every rank's file is durable
 * before the manifest names the epoch; the newest two complete epochs are
 * kept). If persisting fails, the epoch stays committed in memory and the
 * call returns FUZE_ERR_IO saying so; the previous persisted epoch is intact.
 *
 * With verify_every=K, the K-th, 2K-th, ... call runs fuze_verify() right
 * after it commits (before persisting); repaired corruption leaves the result
 * FUZE_SUCCESS (fuze_verify_last() has the report), corruption it could not
 * repair makes the call return FUZE_ERR_CORRUPT (the epoch is committed in
 * memory but not persisted).
 *
 * With code=byzantine, every committed call then compares every unfused copy
 * of every array, stack and map (the primaries' committed states and their f
 * replicas) and audits the fused backups: up to f arbitrary corruptions per
 * block are corrected (Fig. 6 of the paper) and the call returns
 * FUZE_RECOVERED; a block with more is reported with FUZE_ERR_CORRUPT naming
 * the structure and block, and nothing in it is modified.
 *
 * @return FUZE_SUCCESS, FUZE_RECOVERED, FUZE_ERR_UNRECOVERABLE (nothing
 *         modified), FUZE_ERR_IO (persisting failed), FUZE_ERR_CORRUPT
 *         (verify_every, code=byzantine), FUZE_ERR_MPI, FUZE_ERR_STATE.
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
 *                   the hosts, committed copies not yet updated), "after"
 *                   (the new epoch is complete), "persist" (dir=: this
 *                   rank's file written under its temporary name) or
 *                   "persisted" (every file renamed, manifest not updated).
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (bad rank or phase; same on every rank).
 */
FUZE_EXPORT int fuze_inject_at(fuze_ctx *ctx, const int *ranks, int nranks, const char *phase);

/**
 * @brief Arm a wipe of @p rank inside its next stack or map operation, after
 * that operation has reached @p backups of its backups (0: before any).
 * Collective; a test hook for "a crash between the deltas of one operation".
 * The operation returns FUZE_ERR_STATE on the wiped rank; the next collective
 * call recovers. The wipe destroys every structure of the rank from inside
 * that operation: with several threads, arm it only when one thread operates
 * on the context until it fires. Under ULFM (fuze built with it, the job
 * launched with `mpirun --with-ft ulfm`) the rank SIGKILLs itself there
 * instead: a real death inside the operation.
 */
FUZE_EXPORT int fuze_inject_op(fuze_ctx *ctx, int rank, int backups);

/**
 * @brief Complete this rank's outstanding backup updates (local). With
 * sync=batch, stack and map operations are complete only after this call or
 * the next collective call. Under ULFM it may return FUZE_RECOVERED (see
 * fuze_stack_push()).
 */
FUZE_EXPORT int fuze_flush(fuze_ctx *ctx);

/** What a fuze_verify() finding is about (fuze_verify_entry.kind). */
enum fuze_verify_kind {
  /** A primary's committed data (an array's committed copy, a stack's or
   *  map's elements) disagreed with every backup: repaired from the parity. */
  FUZE_VERIFY_PRIMARY = 1,
  /** One backup's committed parity (fused nodes) was wrong: repaired. */
  FUZE_VERIFY_PARITY = 2,
  /** Every backup disagreed with an array's committed copy that equals the
   *  application's buffer: the copy was corrupted and a later checkpoint
   *  committed the corruption into the parity. The parity was repaired. */
  FUZE_VERIFY_STALE = 3,
  /** A stack/map index copy (the primary's count, seq and keys, or a backup's
   *  replica of them) differed from the others: repaired by majority. */
  FUZE_VERIFY_INDEX = 4,
  /** A backup's working parity differed from its verified committed parity
   *  (they must be equal outside a checkpoint): copied from the committed. */
  FUZE_VERIFY_WORKING = 5,
  /** Members and parity disagree but no single copy explains it (faults=1
   *  detects without locating; or several copies wrong at one offset). */
  FUZE_VERIFY_UNLOCATED = 6
};

/** Entries kept in a fuze_verify_report. */
#define FUZE_VERIFY_MAX_ENTRIES 16

/** One range of mismatching bytes found by fuze_verify(). */
typedef struct fuze_verify_entry {
  char name[64];     /**< the array, stack or map */
  int block;         /**< its block in the plan */
  int kind;          /**< enum fuze_verify_kind */
  int rank;          /**< rank whose copy was wrong; -1 when not located */
  int backup;        /**< that copy is backup j's parity or replica (0..faults-1); -1: a primary's */
  int member;        /**< FUZE_VERIFY_INDEX: rank of the primary whose index it is; else -1 */
  int repaired;      /**< 1 when repaired */
  /** First byte of the range. Arrays: byte offset in the primary's array,
   *  which is also the offset in the block's parity (members are zero-padded
   *  to the largest). Stacks and maps: offset in the value nodes (slot =
   *  offset / element or value bytes); FUZE_VERIFY_INDEX: offset in the
   *  member's index record (bytes 0-7 its count, 8-15 its operation count,
   *  then its keys: slot = (offset - 16) / key bytes); FUZE_VERIFY_WORKING:
   *  offset in the backup's region. */
  uint64_t offset;
  uint64_t length;   /**< from offset to the last mismatching byte of the range, + 1 */
  uint64_t bytes;    /**< mismatching bytes in the range (findings < 64 bytes apart form one range) */
} fuze_verify_entry;

/** The result of fuze_verify(), the same on every rank. */
typedef struct fuze_verify_report {
  uint64_t run;        /**< 1 for the context's first verification, 2 for the next, ... */
  uint64_t epoch;      /**< the committed epoch checked */
  int live;            /**< 1: stacks and maps were checked in their live state (see fuze_verify) */
  int nentries;        /**< entries filled, <= FUZE_VERIFY_MAX_ENTRIES */
  uint64_t blocks;     /**< (structure, block) pairs checked */
  uint64_t bytes;      /**< bytes compared: members' data, every backup's parity, index copies */
  uint64_t mismatches; /**< ranges found (entries, including those beyond entries[]) */
  uint64_t repaired;   /**< ranges repaired */
  uint64_t unrepaired; /**< ranges not repaired */
  uint64_t bad_bytes;  /**< mismatching bytes */
  double seconds;      /**< wall time of the call (max over ranks) */
  fuze_verify_entry entries[FUZE_VERIFY_MAX_ENTRIES]; /**< the first ranges, by structure and block */
} fuze_verify_report;

/**
 * @brief Scrub: check every block's parity against its members and repair
 * silent corruption. Collective.
 *
 * Checks the last committed epoch, without committing: for every protected
 * structure and block, the parity is recomputed from the members' committed
 * state (arrays: the committed copies; stacks and maps: the elements) and
 * compared, byte for byte, with every backup's committed parity; index
 * replicas of stacks and maps (counts and keys) are compared with each other
 * and with their primary. With faults >= 2 a single wrong copy per byte
 * offset of a block (a primary's committed data or one backup's parity) is
 * located from the syndromes and repaired; two wrong copies at the same
 * offset are reported unrepaired with faults >= 3, and may be mis-attributed
 * with faults = 2 (the code's distance is 3). With faults = 1 a mismatch is
 * detected, not located. Index copies are repaired by majority (faults >= 2).
 *
 * Stacks and maps are checked as committed only when no rank operated on one
 * since the last commit (for example right after fuze_checkpoint()); otherwise
 * their outstanding operations are completed (as fuze_flush() and a checkpoint
 * do) and their live elements are checked against the backups' working
 * parity, and report->live is 1. Call it right after fuze_checkpoint() (or
 * use verify_every): a checkpoint computes its deltas from the committed
 * copies, so an array copy corrupted before a checkpoint is committed into
 * the parity; fuze_verify then repairs the parity where the copy equals the
 * application's buffer (FUZE_VERIFY_STALE), which is exact right after a
 * checkpoint. A stack or map element corrupted and then updated or removed
 * before a verification cannot be told from a correct one.
 *
 * @param [out] report the findings (may be NULL); also kept for
 *                     fuze_verify_last(). With verbose >= 1 rank 0 prints it.
 * @return FUZE_SUCCESS when everything matches, FUZE_RECOVERED when corruption
 *         was found and every range repaired, FUZE_ERR_CORRUPT when some range
 *         could not be repaired (the message names the first one; the others
 *         are repaired), FUZE_ERR_STATE when ranks were lost (recover first)
 *         or after fuze_finalize, FUZE_ERR_ARG for a NULL ctx, FUZE_ERR_NOMEM,
 *         FUZE_ERR_MPI.
 */
FUZE_EXPORT int fuze_verify(fuze_ctx *ctx, fuze_verify_report *report);

/**
 * @brief The report of the last verification on this context (local), an
 * explicit fuze_verify() or one run by verify_every=K inside fuze_checkpoint().
 * @return FUZE_SUCCESS, FUZE_ERR_NOT_FOUND when none ran yet, FUZE_ERR_ARG.
 */
FUZE_EXPORT int fuze_verify_last(const fuze_ctx *ctx, fuze_verify_report *report);

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
  uint64_t injections_unfired; /**< injection specs (inject=, fuze_inject_at()) that have
                                  not struck on any rank as of the last fuze_checkpoint():
                                  those still ahead, and those whose point passed without
                                  them (fuze_finalize() reports these on stderr) */
  /* Fields added after v0.1 (appended, so the layout of the above is kept). */
  uint64_t undo_bytes;       /**< undo records of this rank's stacks and maps kept since
                                  the last checkpoint (how they return to the committed
                                  epoch: they keep no committed copy) */
  uint64_t replica_bytes;    /**< code=byzantine: unfused replicas of other ranks'
                                  committed state this rank holds (0 otherwise) */
  uint64_t total_bytes;      /**< every byte fuze allocated for data on this rank:
                                  shadow + parity + working + undo + replica bytes, plus
                                  the stacks' and maps' allocated element and key
                                  storage and hash indexes (arrays' protected bytes are
                                  the application's and not counted) */
  uint64_t process_failures; /**< ULFM: real process deaths repaired in the job (repairs,
                                  one per event, however many ranks died in it) */
  double repair_seconds[4];  /**< ULFM: this rank's time in the phases of the last repair:
                                  [0] revoke, shrink and bring in the replacements,
                                  [1] layout exchange, plan and block communicators,
                                  [2] windows made again (hosted bytes moved),
                                  [3] decode (the wipe model's recovery) */
  uint64_t persisted_bytes;      /**< dir=: bytes of the files this rank wrote for the epochs
                                      that became restart points (full files and increments;
                                      not rebuilt files written back at a restart) */
  uint64_t persisted_last_bytes; /**< dir=: bytes of this rank's file of the newest of them
                                      (an increment with persist_base > 1: only the chunks
                                      that changed since the previous persisted epoch) */
  uint64_t persisted_epochs;     /**< dir=: persisted epochs completed by this context */
  uint64_t persisted_increments; /**< dir=: how many of them this rank wrote as increments */
} fuze_stats;

/**
 * @brief Fill @p stats with this rank's counters (local).
 *
 * Memory fields: protected_bytes are the data this rank protects (arrays: the
 * application's buffers; stacks and maps: their live elements and keys).
 * shadow_bytes are the committed copies of its arrays (one per array, the
 * size of the array). parity_bytes and working_bytes are the backup regions
 * this rank hosts, each held twice (committed and working parity, the sizes
 * are equal): per array and block the block's largest member, per stack or
 * map and block the allocated fused nodes plus a replica of every member's
 * index (count, operation count, keys). README.md, "Memory", sums them up.
 */
FUZE_EXPORT int fuze_get_stats(const fuze_ctx *ctx, fuze_stats *stats);

/**
 * @brief The counters of every rank of the job, summed. Collective over the
 * application communicator; spare ranks (which sit in fuze_init() hosting
 * parity) contribute their counters too.
 *
 * Every byte and traffic field (protected, parity, working, shadow, sent,
 * recovered, undo, replica, total bytes) is the sum over all ranks of the
 * communicator given to fuze_init(), spares included. epoch, recoveries,
 * nblocks and nbackups are the job's (the largest value of any rank: they are
 * the same on every rank unless a rank was wiped and not yet recovered).
 * @param [out] sum the job's counters, the same on every compute rank.
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (NULL sum; the same on every rank),
 *         FUZE_ERR_STATE (after fuze_finalize), FUZE_ERR_MPI.
 */
FUZE_EXPORT int fuze_get_job_stats(fuze_ctx *ctx, fuze_stats *sum);

/** Bytes that always hold fuze_config_string()'s result, its NUL included. */
#define FUZE_CONFIG_STRING_MAX 4096

/**
 * @brief The effective configuration (local): after the config string, the
 * FUZE_<KEY> environment overrides and the defaults, as one canonical string
 * that fuze_init() accepts and that gives the same configuration.
 *
 * Every key is written, in the order faults, spares, domain, block, code,
 * recovery, chunk, capacity, sync, lock, shm, dir, persist_every, persist_base,
 * verify_every, inject, verbose, persist, restart, as "key=value" separated
 * by ';', except
 * block, dir and inject when unset (block: the planner's default size). code
 * is "byzantine" for code=byzantine, domain is "node", "rank" or the number
 * K. inject is the last inject= value given, as written.
 * @param [out] buf receives the string (truncated, still NUL-terminated, when
 *                  @p len is too small; FUZE_CONFIG_STRING_MAX always fits).
 * @return FUZE_SUCCESS, FUZE_ERR_ARG (NULL ctx or buf, or len too small: the
 *         message gives the length needed).
 */
FUZE_EXPORT int fuze_config_string(const fuze_ctx *ctx, char *buf, size_t len);

/**
 * @brief Where the effective value of configuration key @p key came from
 * (local): "default", "config" (the string given to fuze_init) or
 * "environment" (FUZE_<KEY>, which overrides the string).
 * @return that word, or NULL for a NULL ctx or an unknown key.
 */
FUZE_EXPORT const char *fuze_config_source(const fuze_ctx *ctx, const char *key);

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
