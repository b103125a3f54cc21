/* transport: the RMA windows that hold working and committed parity.
 * Every window is allocated with MPI_Win_allocate (MPI_Win_create was ~20x
 * slower for accumulates here) and kept under a shared lock_all for its
 * lifetime: updates are MPI_Accumulate(BXOR), which is element-wise atomic,
 * so no update path ever takes an exclusive lock.
 *
 * Stack and map windows take many small XORs from the k members of a block
 * into the same f hosts. Open MPI 4.1 makes every accumulate into a target
 * take that target's one accumulate lock (osc/sm: a spin lock in shared
 * memory; osc/rdma: an exclusive lock in the target's state), so members
 * sharing a host serialise, and on oversubscribed cores a preempted lock
 * holder stalls them all. When every rank is on one node, those windows are
 * therefore MPI-3 shared-memory windows (MPI_Win_allocate_shared, the MPI
 * shared-memory model) and an XOR is done by the origin at once with CPU
 * atomic XOR on the host's memory: lock-free, element-wise atomic like
 * BXOR, and XOR still commutes (Theorems 3 and 4). Every XOR into such a
 * window goes this way (fuze__win_xor looks the window up), so the two
 * mechanisms never mix on one region. Puts into such a window are a memcpy
 * by the origin too, and flushing it is a memory fence, not MPI_Win_flush:
 * what the origin wrote is in the host's memory when the call returns.
 * That matters with MPICH (ch4), whose MPI_Win_flush on a shared-memory
 * window still runs the whole progress engine (a UCX worker progress and
 * endpoint flush): with sync=op, one flush per stack/map operation made
 * kvstore 10-30x slower than with Open MPI, whose osc/sm flush is a no-op. */
#include "comm/transport.h"

#include "core/config.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The osc component without shared windows: Open MPI 4 has osc/pt2pt, which
 * Open MPI 5 removed; there osc/rdma runs over btl/tcp. */
#if defined(OMPI_MAJOR_VERSION) && OMPI_MAJOR_VERSION >= 5
#define NO_SHM_OSC "such as osc/rdma"
#else
#define NO_SHM_OSC "such as osc/pt2pt"
#endif

/* A shared-memory window's direct pointers: base[r] is rank r's memory. */
typedef struct shm_map {
  int n;
  unsigned char *base[];
} shm_map;

static int shm_key = MPI_KEYVAL_INVALID;
static pthread_once_t shm_once = PTHREAD_ONCE_INIT;

static int shm_delete(MPI_Win win, int key, void *val, void *extra) {
  (void)win, (void)key, (void)extra;
  free(val);
  return MPI_SUCCESS;
}

static void shm_keyval(void) {
  if (MPI_Win_create_keyval(MPI_WIN_NULL_COPY_FN, shm_delete, &shm_key, NULL) != MPI_SUCCESS)
    shm_key = MPI_KEYVAL_INVALID; /* then no window is a shared one (fuze__win_create_fused) */
}

static const shm_map *shm_of(MPI_Win win) {
  if (shm_key == MPI_KEYVAL_INVALID) return NULL;
  void *val = NULL;
  int found = 0;
  if (MPI_Win_get_attr(win, shm_key, &val, &found) != MPI_SUCCESS) return NULL;
  return found ? val : NULL;
}

/* dst ^= src, atomically per aligned 8-byte word (per byte at the edges).
 * Zero words (most of a small delta) are skipped. */
static void xor_atomic(unsigned char *dst, const unsigned char *src, size_t len) {
  for (; len && ((uintptr_t)dst & 7); len--, dst++, src++)
    if (*src) __atomic_fetch_xor(dst, *src, __ATOMIC_RELAXED);
  for (; len >= 8; len -= 8, dst += 8, src += 8) {
    uint64_t v;
    memcpy(&v, src, 8);
    if (v) __atomic_fetch_xor((uint64_t *)(void *)dst, v, __ATOMIC_RELAXED);
  }
  for (; len; len--, dst++, src++)
    if (*src) __atomic_fetch_xor(dst, *src, __ATOMIC_RELAXED);
#ifndef __SANITIZE_THREAD__
  __atomic_thread_fence(__ATOMIC_RELEASE);
#else
  /* ThreadSanitizer does not model fences (-Wtsan): a release store instead. */
  static int fence_word;
  __atomic_store_n(&fence_word, 0, __ATOMIC_RELEASE);
#endif
}

/* dst |= src, the same way (chunk maps of arrays in a shared window). */
static void or_atomic(unsigned char *dst, const unsigned char *src, size_t len) {
  for (; len && ((uintptr_t)dst & 7); len--, dst++, src++)
    if (*src) __atomic_fetch_or(dst, *src, __ATOMIC_RELAXED);
  for (; len >= 8; len -= 8, dst += 8, src += 8) {
    uint64_t v;
    memcpy(&v, src, 8);
    if (v) __atomic_fetch_or((uint64_t *)(void *)dst, v, __ATOMIC_RELAXED);
  }
  for (; len; len--, dst++, src++)
    if (*src) __atomic_fetch_or(dst, *src, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

static int win_info(fuze_net *net, MPI_Info *info) {
  int rc = FUZE_MPI(net->msg, MPI_Info_create(info));
  /* Only BXOR accumulates reach a window and XOR commutes (Theorem 4):
   * ordering between accumulates buys nothing. */
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Info_set(*info, "accumulate_ordering", "none"));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Info_set(*info, "accumulate_ops", "same_op"));
  return rc;
}

/* The fix when no osc component can make a window over every rank: Debian's
 * /etc/openmpi/openmpi-mca-params.conf sets osc = ^ucx,pt2pt, which leaves
 * only osc/sm (one node) and osc/rdma (needs RDMA hardware), so a job across
 * nodes over TCP has none; ^ucx re-enables osc/pt2pt for them. */
#if defined(MPICH_VERSION) && !defined(OPEN_MPI)
/* MPICH (ch4) makes windows across nodes through its network module; when it
 * cannot, that module does not reach every node (there is no osc choice). */
#define OSC_FIX                                                                          \
  "with MPICH the network module must reach every node: check MPIR_CVAR_CH4_NETMOD and, " \
  "for ch4:ucx, that UCX_TLS includes a transport between the nodes (e.g. tcp)"
#elif defined(OMPI_MAJOR_VERSION) && OMPI_MAJOR_VERSION >= 5
/* Open MPI 5 removed osc/pt2pt; osc/rdma runs over btl/tcp (its active-message
 * emulation of RDMA). */
#define OSC_FIX                                                                          \
  "with Open MPI 5 without RDMA hardware (TCP between nodes) use osc/rdma over btl/tcp: " \
  "mpirun --mca osc rdma --mca pml ob1 --mca btl self,sm,tcp (or the environment "       \
  "OMPI_MCA_osc=rdma OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,sm,tcp)"
#else
#define OSC_FIX                                                                          \
  "with Open MPI without RDMA hardware (TCP between nodes) enable the osc/pt2pt "        \
  "component: mpirun --mca osc ^ucx (or the environment OMPI_MCA_osc=^ucx); Debian's "   \
  "default osc = ^ucx,pt2pt (/etc/openmpi/openmpi-mca-params.conf) cannot make windows " \
  "across nodes"
#endif

/* Collective: did every rank succeed (ok)? FUZE_ERR_MPI when the vote fails. */
static int all_ok(fuze_net *net, int ok, int *all) {
  *all = 0;
  return FUZE_MPI(net->msg, MPI_Allreduce(&ok, all, 1, MPI_INT, MPI_LAND, net->comm));
}

/* A new window's last steps, on every rank: errors return, memory zeroed,
 * the lock_all epoch opened, and nobody writes before everyone has zeroed. */
static int win_ready(fuze_net *net, MPI_Win *win, void *mem, size_t bytes, int lock_all) {
  int rc = FUZE_MPI(net->msg, MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN));
  /* A repair copies the old window's bytes over the first win_keep: one
   * pass over the memory less. */
  size_t keep = net->win_keep < bytes ? net->win_keep : bytes;
  if (bytes > keep) memset((unsigned char *)mem + keep, 0, bytes - keep);
  if (!rc && lock_all) rc = FUZE_MPI(net->msg, MPI_Win_lock_all(MPI_MODE_NOCHECK, *win));
  if (!rc && lock_all && shm_of(*win)) rc = FUZE_MPI(net->msg, MPI_Win_sync(*win));
  int brc = FUZE_MPI(net->msg, MPI_Barrier(net->comm));
  return rc ? rc : brc;
}

int fuze__win_create(fuze_net *net, size_t bytes, MPI_Win *win, unsigned char **base,
                     int lock_all) {
  MPI_Info info = MPI_INFO_NULL;
  void *mem = NULL;
  int rc = win_info(net, &info);
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Win_allocate((MPI_Aint)bytes, 1, info, net->comm, &mem, win));
  if (info != MPI_INFO_NULL) FUZE_MPI_TEARDOWN(MPI_Info_free(&info));
  int all = 0, vrc = all_ok(net, rc == FUZE_SUCCESS, &all);
  if (vrc || !all) {
    if (rc == FUZE_SUCCESS) FUZE_MPI_TEARDOWN(MPI_Win_free(win));
    *win = MPI_WIN_NULL;
    if (vrc) return vrc;
    /* On one node osc/sm always makes windows: the memory ran out. */
    if (net->one_node == 1)
      return fuze__error(net->msg, FUZE_ERR_NOMEM,
                         "transport: MPI_Win_allocate of %zu bytes failed on rank %d or another rank "
                         "(every rank is on one node, so not for want of an osc component: out of "
                         "memory)", bytes, net->rank);
    return fuze__error(net->msg, FUZE_ERR_MPI,
                   "transport: MPI_Win_allocate of %zu bytes failed on rank %d or another rank "
                   "(out of memory, or no osc component makes windows across nodes); " OSC_FIX,
                   bytes, net->rank);
  }
  *base = mem;
  return win_ready(net, win, mem, bytes, lock_all);
}

/* Accumulates across nodes are cut into pieces of at most this many bytes.
 * Without RDMA hardware Open MPI's one-sided path over TCP is osc/pt2pt,
 * which packs an operation up to about this size into its message buffer
 * and sends a larger one on a path of its own that needs the target's
 * attention for every piece: measured across the emulated nodes (fuze-bench
 * link, 8 ranks on 4 nodes at once, docs/benchmarks.md section 12), 64 KiB
 * accumulates moved 0.012 GB/s and the same bytes as 16 KiB accumulates
 * 0.070 GB/s, as fast as MPI_Put. On one node (osc/sm, osc/rdma) a cut only
 * adds calls, so there is none. Any cut is correct: the pieces are XORs of
 * disjoint ranges. FUZE_ACC_PIECE=BYTES overrides it (0: no cut), read in
 * fuze_init, for measuring. */
#define FUZE_ACC_PIECE_NODES ((size_t)16 << 10)

static void acc_piece(fuze_net *net) {
  net->acc_piece = net->one_node ? 0 : FUZE_ACC_PIECE_NODES;
  const char *e = getenv("FUZE_ACC_PIECE");
  if (e && *e) {
    char *end = NULL;
    unsigned long long v = strtoull(e, &end, 10);
    if (end && !*end && v <= (unsigned long long)INT_MAX / 2) net->acc_piece = (size_t)v;
  }
}

/* Collective: 1 if every rank of net->comm shares memory with every other.
 * Test hook: FUZE_DEBUG_SPLIT_NODES=1 (set on every rank) makes it answer 0,
 * as for a job across nodes, which one machine cannot otherwise show. */
static int one_node(fuze_net *net) {
  if (net->one_node < 0 && getenv("FUZE_DEBUG_SPLIT_NODES") && atoi(getenv("FUZE_DEBUG_SPLIT_NODES")))
    net->one_node = 0;
  if (net->one_node < 0) {
    MPI_Comm node;
    int size = 0;
    if (MPI_Comm_split_type(net->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
      if (MPI_Comm_size(node, &size) != MPI_SUCCESS) size = 0;
      FUZE_MPI_TEARDOWN(MPI_Comm_free(&node));
    }
    int all = 0;
    /* A failed vote counts as "not one node": the accumulate path works everywhere. */
    (void)all_ok(net, size == net->size, &all);
    net->one_node = all;
  }
  if (net->acc_piece == (size_t)-1) acc_piece(net);
  return net->one_node;
}

int fuze__win_probe(fuze_net *net) {
  if (one_node(net)) return FUZE_SUCCESS;
  MPI_Win win = MPI_WIN_NULL;
  void *mem = NULL;
  /* Expected to fail with some osc settings: the error is not recorded. */
  int ok = MPI_Win_allocate(8, 1, MPI_INFO_NULL, net->comm, &mem, &win) == MPI_SUCCESS, all = 0;
  int rc = all_ok(net, ok, &all);
  if (ok) FUZE_MPI_TEARDOWN(MPI_Win_free(&win));
  if (rc) return rc;
  if (!all)
    return fuze__error(net->msg, FUZE_ERR_MPI, "fuze_init: the ranks span nodes and the MPI library "
                       "cannot make an RMA window over them (MPI_Win_allocate failed on rank %d or "
                       "another rank); " OSC_FIX, net->rank);
  return FUZE_SUCCESS;
}

/* MPI_Win_allocate_shared and every rank's direct pointer into it. */
static int alloc_shared(fuze_net *net, size_t bytes, MPI_Win *win, void **mem, shm_map *map) {
  MPI_Info info = MPI_INFO_NULL;
  int rc = win_info(net, &info);
  /* Each rank's memory on its own pages (first touch by its owner). */
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Info_set(info, "alloc_shared_noncontig", "true"));
  if (!rc && (!map || shm_key == MPI_KEYVAL_INVALID))
    rc = fuze__error(net->msg, FUZE_ERR_NOMEM, "transport: no shared-memory window map on rank %d", net->rank);
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, net->comm, mem, win));
  if (info != MPI_INFO_NULL) FUZE_MPI_TEARDOWN(MPI_Info_free(&info));
  if (rc) return rc;
  map->n = net->size;
  for (int r = 0; r < net->size && !rc; r++) {
    MPI_Aint sz = 0;
    int du = 0;
    void *p = NULL;
    rc = FUZE_MPI(net->msg, MPI_Win_shared_query(*win, r, &sz, &du, &p));
    map->base[r] = p;
  }
  if (rc) FUZE_MPI_TEARDOWN(MPI_Win_free(win));
  return rc;
}

int fuze__win_create_fused(fuze_net *net, size_t bytes, MPI_Win *win, unsigned char **base,
                           int lock_all, int *shm) {
  *shm = net->shm_windows = 0;
  int mode = net->shm;
  if (mode == FUZE_SHM_OFF || (mode == FUZE_SHM_AUTO && !one_node(net)))
    return fuze__win_create(net, bytes, win, base, lock_all);
  if (mode == FUZE_SHM_ON && !one_node(net))
    return fuze__error(net->msg, FUZE_ERR_CONFIG, "transport: shm=on needs every rank on one node (shared "
                   "memory), and these %d ranks are not; use shm=auto or shm=off", net->size);
  pthread_once(&shm_once, shm_keyval);
  void *mem = NULL;
  shm_map *map = malloc(sizeof *map + (size_t)net->size * sizeof map->base[0]);
  int rc = alloc_shared(net, bytes, win, &mem, map);
  int all = 0, vrc = all_ok(net, rc == FUZE_SUCCESS, &all);
  if (vrc || !all) {
    if (rc == FUZE_SUCCESS) FUZE_MPI_TEARDOWN(MPI_Win_free(win));
    *win = MPI_WIN_NULL;
    free(map);
    if (vrc) return vrc;
    if (mode == FUZE_SHM_ON)
      return fuze__error(net->msg, FUZE_ERR_MPI, "transport: shm=on, but MPI_Win_allocate_shared of %zu bytes "
                     "failed on rank %d or another rank (an osc component without shared-memory "
                     "windows, " NO_SHM_OSC "?); use shm=auto or shm=off", bytes, net->rank);
    if (net->verbose)
      fprintf(stderr, "fuze: rank %d: no shared-memory window, stacks and maps use MPI_Accumulate\n", net->rank);
    return fuze__win_create(net, bytes, win, base, lock_all);
  }
  rc = FUZE_MPI(net->msg, MPI_Win_set_attr(*win, shm_key, map));
  if (rc) free(map);
  *base = mem;
  *shm = net->shm_windows = !rc;
  int rrc = win_ready(net, win, mem, bytes, lock_all);
  return rc ? rc : rrc;
}

/* MPICH (ch3/ch4 and its derivatives) applies an MPI_Accumulate into an
 * MPI_Win_allocate window as an active message that the *target* handles
 * when it enters MPI, and its ranks busy-poll without yielding the core: on
 * an oversubscribed node every accumulate of a checkpoint waited for its
 * host's time slice (the array tests timed out at 4x their Open MPI time).
 * So with MPICH, when every rank is on one node and shm is not off, arrays
 * get the stacks' and maps' shared-memory window and their XORs (and chunk
 * map ORs) are CPU atomics done by the origin: nothing waits for the host.
 * Open MPI keeps MPI_Accumulate (osc/rdma and osc/sm apply it from the
 * origin; bulk 16 GB/s, faster than word atomics). Test hook:
 * FUZE_DEBUG_SHM_ARRAYS=1 takes the shared path with any MPI. */
static int shm_arrays(fuze_net *net) {
#if defined(MPICH_VERSION) && !defined(OPEN_MPI)
  int want = 1;
#else
  int want = 0;
#endif
  const char *e = getenv("FUZE_DEBUG_SHM_ARRAYS");
  if (e && atoi(e)) want = 1;
  return want && net->shm != FUZE_SHM_OFF;
}

int fuze__win_create_array(fuze_net *net, size_t bytes, MPI_Win *win, unsigned char **base) {
  if (!shm_arrays(net)) return fuze__win_create(net, bytes, win, base, 1);
  int shm = 0, keep = net->shm_windows; /* shm_windows tells about stack/map windows */
  int rc = fuze__win_create_fused(net, bytes, win, base, 1, &shm);
  net->shm_windows = keep;
  return rc;
}

void fuze__win_free(MPI_Win *win, int locked) {
  if (*win == MPI_WIN_NULL) return;
  if (locked) FUZE_MPI_TEARDOWN(MPI_Win_unlock_all(*win));
  FUZE_MPI_TEARDOWN(MPI_Win_free(win));
}

/* MPI_Accumulate(op) of len bytes in int-sized pieces; counted: add them to
 * net->sent_bytes. */
static int accumulate(fuze_net *net, MPI_Win win, const void *buf, size_t len, int rank,
                      size_t disp, MPI_Op op, int counted) {
  const unsigned char *p = buf;
  size_t most = net->acc_piece && net->acc_piece != (size_t)-1 ? net->acc_piece : (size_t)INT_MAX / 2;
  while (len > 0) {
    int n = len > most ? (int)most : (int)len;
    int rc = FUZE_MPI(net->msg, MPI_Accumulate(p, n, MPI_BYTE, rank, (MPI_Aint)disp, n, MPI_BYTE,
                                               op, win));
    if (rc) return rc;
    p += n;
    disp += (size_t)n;
    len -= (size_t)n;
    if (counted) net->sent_bytes += (uint64_t)n;
  }
  return FUZE_SUCCESS;
}

int fuze__win_xor(fuze_net *net, MPI_Win win, const void *buf, size_t len, int rank,
                  size_t disp) {
  const shm_map *m = shm_of(win);
  if (m) {
    xor_atomic(m->base[rank] + disp, buf, len);
    net->sent_bytes += (uint64_t)len;
    return FUZE_SUCCESS;
  }
  return accumulate(net, win, buf, len, rank, disp, MPI_BXOR, 1);
}

int fuze__win_put(fuze_net *net, MPI_Win win, const void *buf, size_t len, int rank,
                  size_t disp) {
  const shm_map *m = shm_of(win);
  if (m) { /* a single writer: plain stores, ordered before the next flush's fence */
    memcpy(m->base[rank] + disp, buf, len);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    net->sent_bytes += (uint64_t)len;
    return FUZE_SUCCESS;
  }
  const unsigned char *p = buf;
  while (len > 0) {
    int n = len > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)len;
    int rc = FUZE_MPI(net->msg, MPI_Put(p, n, MPI_BYTE, rank, (MPI_Aint)disp, n, MPI_BYTE, win));
    if (rc) return rc;
    p += n;
    disp += (size_t)n;
    len -= (size_t)n;
    net->sent_bytes += (uint64_t)n;
  }
  return FUZE_SUCCESS;
}

/* Shared-memory windows: every XOR and put into them is already in the
 * host's memory (see the top of this file); a full fence orders them before
 * whatever the caller does next (a message that tells others to read). */
int fuze__win_flush(fuze_net *net, MPI_Win win) {
  if (shm_of(win)) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return FUZE_SUCCESS;
  }
  return FUZE_MPI(net->msg, MPI_Win_flush_all(win));
}

int fuze__win_flush_rank(fuze_net *net, MPI_Win win, int rank) {
  if (shm_of(win)) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return FUZE_SUCCESS;
  }
  return FUZE_MPI(net->msg, MPI_Win_flush(rank, win));
}

int fuze__win_flush_local_rank(fuze_net *net, MPI_Win win, int rank) {
  if (shm_of(win)) return FUZE_SUCCESS; /* done at once (the origin's own stores) */
  return FUZE_MPI(net->msg, MPI_Win_flush_local(rank, win));
}

int fuze__win_progress(fuze_net *net, MPI_Win win) {
  if (shm_of(win)) return FUZE_SUCCESS;
  /* Any MPI call runs the progress engine; a probe of this rank's own
   * messages is the cheapest one that sends and takes nothing (and, under
   * ULFM, cannot report another rank's failure). */
  int flag = 0;
  return FUZE_MPI(net->msg, MPI_Iprobe(net->rank, MPI_ANY_TAG, net->comm, &flag, MPI_STATUS_IGNORE));
}

int fuze__win_lock(fuze_net *net, MPI_Win win, int rank) {
  return FUZE_MPI(net->msg, MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win));
}

int fuze__win_unlock(fuze_net *net, MPI_Win win, int rank) {
  return FUZE_MPI(net->msg, MPI_Win_unlock(rank, win));
}

int fuze__win_sync(fuze_net *net, MPI_Win win) { return FUZE_MPI(net->msg, MPI_Win_sync(win)); }

/* Not counted in net->sent_bytes (parity bytes only): the chunk maps of
 * arrays, as they always were. */
int fuze__win_or(fuze_net *net, MPI_Win win, const void *buf, size_t len, int rank,
                 size_t disp) {
  const shm_map *m = shm_of(win);
  if (m) {
    or_atomic(m->base[rank] + disp, buf, len);
    return FUZE_SUCCESS;
  }
  return accumulate(net, win, buf, len, rank, disp, MPI_BOR, 0);
}
