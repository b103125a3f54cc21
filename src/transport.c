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
 * mechanisms never mix on one region. */
#include "internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
  MPI_Win_create_keyval(MPI_WIN_NULL_COPY_FN, shm_delete, &shm_key, NULL);
}

static const shm_map *shm_of(MPI_Win win) {
  if (shm_key == MPI_KEYVAL_INVALID) return NULL;
  void *val = NULL;
  int found = 0;
  MPI_Win_get_attr(win, shm_key, &val, &found);
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
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void win_info(MPI_Info *info) {
  MPI_Info_create(info);
  /* Only BXOR accumulates reach a window and XOR commutes (Theorem 4):
   * ordering between accumulates buys nothing. */
  MPI_Info_set(*info, "accumulate_ordering", "none");
  MPI_Info_set(*info, "accumulate_ops", "same_op");
}

/* The fix when no osc component can make a window over every rank: Debian's
 * /etc/openmpi/openmpi-mca-params.conf sets osc = ^ucx,pt2pt, which leaves
 * only osc/sm (one node) and osc/rdma (needs RDMA hardware), so a job across
 * nodes over TCP has none; ^ucx re-enables osc/pt2pt for them. */
#define OSC_FIX                                                                          \
  "with Open MPI without RDMA hardware (TCP between nodes) enable the osc/pt2pt "        \
  "component: mpirun --mca osc ^ucx (or the environment OMPI_MCA_osc=^ucx); Debian's "   \
  "default osc = ^ucx,pt2pt (/etc/openmpi/openmpi-mca-params.conf) cannot make windows " \
  "across nodes"

int fuze__win_create(fuze_ctx *ctx, size_t bytes, MPI_Win *win, unsigned char **base,
                     int lock_all) {
  MPI_Info info;
  win_info(&info);
  void *mem = NULL;
  int rc = MPI_Win_allocate((MPI_Aint)bytes, 1, info, ctx->world, &mem, win);
  MPI_Info_free(&info);
  int ok = rc == MPI_SUCCESS, all_ok;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, ctx->world);
  if (!all_ok) {
    if (ok) MPI_Win_free(win);
    *win = MPI_WIN_NULL;
    return CTX_ERR(ctx, FUZE_ERR_MPI,
                   "transport: MPI_Win_allocate of %zu bytes failed on rank %d or another rank; "
                   OSC_FIX, bytes, ctx->rank);
  }
  MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
  if (bytes) memset(mem, 0, bytes);
  *base = mem;
  if (lock_all) MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
  /* Everyone's memory is zeroed before anyone may accumulate into it. */
  MPI_Barrier(ctx->world);
  return FUZE_SUCCESS;
}

/* Collective: 1 if every rank of ctx->world shares memory with every other.
 * Test hook: FUZE_DEBUG_SPLIT_NODES=1 (set on every rank) makes it answer 0,
 * as for a job across nodes, which one machine cannot otherwise show. */
static int one_node(fuze_ctx *ctx) {
  if (ctx->one_node < 0 && getenv("FUZE_DEBUG_SPLIT_NODES") && atoi(getenv("FUZE_DEBUG_SPLIT_NODES")))
    ctx->one_node = 0;
  if (ctx->one_node < 0) {
    MPI_Comm node;
    int size = 0;
    if (MPI_Comm_split_type(ctx->world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
      MPI_Comm_size(node, &size);
      MPI_Comm_free(&node);
    }
    int mine = size == ctx->size, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, ctx->world);
    ctx->one_node = all;
  }
  return ctx->one_node;
}

int fuze__win_probe(fuze_ctx *ctx) {
  if (one_node(ctx)) return FUZE_SUCCESS;
  MPI_Win win = MPI_WIN_NULL;
  void *mem = NULL;
  int ok = MPI_Win_allocate(8, 1, MPI_INFO_NULL, ctx->world, &mem, &win) == MPI_SUCCESS, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, ctx->world);
  if (ok) MPI_Win_free(&win);
  if (!all_ok)
    return CTX_ERR(ctx, FUZE_ERR_MPI, "fuze_init: the ranks span nodes and the MPI library "
                   "cannot make an RMA window over them (MPI_Win_allocate failed on rank %d or "
                   "another rank); " OSC_FIX, ctx->rank);
  return FUZE_SUCCESS;
}

int fuze__win_create_fused(fuze_ctx *ctx, size_t bytes, MPI_Win *win, unsigned char **base,
                           int lock_all, int *shm) {
  *shm = ctx->shm_windows = 0;
  int mode = ctx->cfg.shm;
  if (mode == FUZE_SHM_OFF || (mode == FUZE_SHM_AUTO && !one_node(ctx)))
    return fuze__win_create(ctx, bytes, win, base, lock_all);
  if (mode == FUZE_SHM_ON && !one_node(ctx))
    return CTX_ERR(ctx, FUZE_ERR_CONFIG, "transport: shm=on needs every rank on one node (shared "
                   "memory), and these %d ranks are not; use shm=auto or shm=off", ctx->size);
  pthread_once(&shm_once, shm_keyval);
  MPI_Info info;
  win_info(&info);
  /* Each rank's memory on its own pages (first touch by its owner). */
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  void *mem = NULL;
  shm_map *map = malloc(sizeof *map + (size_t)ctx->size * sizeof map->base[0]);
  int rc = map && shm_key != MPI_KEYVAL_INVALID ? MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, ctx->world, &mem, win)
                                                : MPI_ERR_NO_MEM;
  MPI_Info_free(&info);
  int ok = rc == MPI_SUCCESS;
  if (ok) {
    map->n = ctx->size;
    for (int r = 0; r < ctx->size && ok; r++) {
      MPI_Aint sz = 0;
      int du = 0;
      void *p = NULL;
      ok = MPI_Win_shared_query(*win, r, &sz, &du, &p) == MPI_SUCCESS;
      map->base[r] = p;
    }
  }
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, ctx->world);
  if (!all_ok) {
    if (rc == MPI_SUCCESS) MPI_Win_free(win);
    *win = MPI_WIN_NULL;
    free(map);
    if (mode == FUZE_SHM_ON)
      return CTX_ERR(ctx, FUZE_ERR_MPI, "transport: shm=on, but MPI_Win_allocate_shared of %zu bytes "
                     "failed on rank %d or another rank (an osc component without shared-memory "
                     "windows, such as osc/pt2pt?); use shm=auto or shm=off", bytes, ctx->rank);
    if (ctx->cfg.verbose)
      fprintf(stderr, "fuze: rank %d: no shared-memory window, stacks and maps use MPI_Accumulate\n", ctx->rank);
    return fuze__win_create(ctx, bytes, win, base, lock_all);
  }
  MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
  MPI_Win_set_attr(*win, shm_key, map);
  if (bytes) memset(mem, 0, bytes);
  *base = mem;
  *shm = ctx->shm_windows = 1;
  if (lock_all) MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
  /* Everyone's memory is zeroed before anyone may XOR into it. */
  MPI_Win_sync(*win);
  MPI_Barrier(ctx->world);
  return FUZE_SUCCESS;
}

void fuze__win_free(MPI_Win *win, int locked) {
  if (*win == MPI_WIN_NULL) return;
  if (locked) MPI_Win_unlock_all(*win);
  MPI_Win_free(win);
}

int fuze__win_xor(fuze_ctx *ctx, MPI_Win win, const void *buf, size_t len, int rank,
                  size_t disp) {
  const shm_map *m = shm_of(win);
  if (m) {
    xor_atomic(m->base[rank] + disp, buf, len);
    ctx->sent_bytes += (uint64_t)len;
    return FUZE_SUCCESS;
  }
  const unsigned char *p = buf;
  while (len > 0) {
    int n = len > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)len;
    int rc = MPI_Accumulate(p, n, MPI_BYTE, rank, (MPI_Aint)disp, n, MPI_BYTE, MPI_BXOR, win);
    if (rc != MPI_SUCCESS)
      return CTX_ERR(ctx, FUZE_ERR_MPI, "transport: MPI_Accumulate of %d bytes to rank %d failed",
                     n, rank);
    p += n;
    disp += (size_t)n;
    len -= (size_t)n;
    ctx->sent_bytes += (uint64_t)n;
  }
  return FUZE_SUCCESS;
}

int fuze__win_flush(fuze_ctx *ctx, MPI_Win win) {
  if (MPI_Win_flush_all(win) != MPI_SUCCESS)
    return CTX_ERR(ctx, FUZE_ERR_MPI, "transport: MPI_Win_flush_all failed on rank %d", ctx->rank);
  return FUZE_SUCCESS;
}

int fuze__win_sync(MPI_Win win) { return MPI_Win_sync(win) == MPI_SUCCESS ? 0 : FUZE_ERR_MPI; }
