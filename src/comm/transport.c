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

#include "core/code.h"
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The osc component without shared windows: Open MPI 4 has osc/pt2pt, which
 * Open MPI 5 removed; there osc/rdma runs over btl/tcp. */
#if defined(OMPI_MAJOR_VERSION) && OMPI_MAJOR_VERSION >= 5
#define NO_SHM_OSC "such as osc/rdma"
#else
#define NO_SHM_OSC "such as osc/pt2pt"
#endif

/* fuze's own shared memory (one node). Each rank's part of a window is a
 * memfd segment of its own: a header page (the segment's id, its size and
 * the lock words), then the window's bytes. Peers map it through
 * /proc/<pid>/fd/<fd> of the owner, who keeps the descriptor open for the
 * segment's lifetime; nothing has a name, so nothing is left behind when a
 * process dies. A segment is shared by every window made over it (a ULFM
 * repair makes a new window over the same bytes: refs). */
#define SEG_HDR ((size_t)4096)
#define SEG_LOCKS 32                   /* stripe locks, one cache line each */
#define SEG_STRIPE ((size_t)256 << 10) /* bytes per stripe lock */
#define SEG_EXCL SEG_LOCKS             /* the lock=exclusive window lock */

typedef struct seg_hdr {
  uint64_t id, bytes;
  unsigned char pad[48];
  uint32_t lock[SEG_LOCKS + 1][16]; /* a holder's pid, 0 when free */
} seg_hdr;

typedef struct own_seg {
  int refs;
  int fd;           /* this rank's own segment: kept open; a peer's: -1 */
  pid_t pid;        /* owner */
  uint64_t id;
  unsigned char *map;
  size_t len;       /* SEG_HDR + bytes */
} own_seg;

/* A shared-memory window's direct pointers: base[r] is rank r's memory.
 * seg: fuze's own segments (NULL for an MPI_Win_allocate_shared window);
 * bulk: XORs are plain loops under the host's stripe locks (arrays: large
 * XORs), otherwise word atomics (stacks and maps: small ones). */
typedef struct shm_map {
  int n;
  int bulk;
  own_seg **seg;
  unsigned char *base[];
} shm_map;

static void seg_unref(own_seg *g) {
  if (!g || --g->refs > 0) return;
  if (g->map) munmap(g->map, g->len);
  if (g->fd >= 0) close(g->fd);
  free(g);
}

static void map_free(shm_map *m) {
  if (!m) return;
  for (int r = 0; m->seg && r < m->n; r++) seg_unref(m->seg[r]);
  free(m->seg);
  free(m);
}

static int shm_key = MPI_KEYVAL_INVALID;
static pthread_once_t shm_once = PTHREAD_ONCE_INIT;

static int shm_delete(MPI_Win win, int key, void *val, void *extra) {
  (void)win, (void)key, (void)extra;
  map_free(val);
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

/* A lock word in a host's segment: this process's pid while held. A waiter
 * spins briefly, then yields (ranks outnumber cores); one that waits long
 * checks that the holder still lives and takes over the lock of a process
 * that died holding it (a real death under ULFM: the repair that follows
 * rolls back or rebuilds what it was writing). */
static void seg_lock(uint32_t *w) {
  uint32_t me = (uint32_t)getpid();
  for (unsigned spins = 0;; spins++) {
    uint32_t cur = 0;
    if (__atomic_compare_exchange_n(w, &cur, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    if (spins < 64) continue;
    sched_yield();
    if ((spins & 1023) == 1023 && cur && kill((pid_t)cur, 0) && errno == ESRCH &&
        __atomic_compare_exchange_n(w, &cur, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
      return;
  }
}

static void seg_unlock(uint32_t *w) { __atomic_store_n(w, 0, __ATOMIC_RELEASE); }

static seg_hdr *hdr_of(const shm_map *m, int rank) { return (seg_hdr *)(void *)m->seg[rank]->map; }

/* Test hook: FUZE_DEBUG_LOCK_KILL=W@N: the process of MPI_COMM_WORLD rank W
 * SIGKILLs itself while it holds a host's stripe lock, in its N-th locked
 * XOR (ULFM tests: the holder's death must not stop the others; the world
 * rank, so that its replacement does not die again). */
static int lock_kill_world = -1, lock_kill_n;
static pthread_once_t lock_kill_once = PTHREAD_ONCE_INIT;

static void lock_kill_read(void) {
  const char *e = getenv("FUZE_DEBUG_LOCK_KILL");
  int w = -1;
  if (!e || sscanf(e, "%d@%d", &lock_kill_world, &lock_kill_n) != 2 ||
      MPI_Comm_rank(MPI_COMM_WORLD, &w) != MPI_SUCCESS || w != lock_kill_world)
    lock_kill_world = -1;
}

static void lock_kill(void) {
  static int calls;
  pthread_once(&lock_kill_once, lock_kill_read);
  if (lock_kill_world < 0 || __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED) != lock_kill_n) return;
  fprintf(stderr, "fuze: world rank %d kills itself with SIGKILL holding a stripe lock "
          "(FUZE_DEBUG_LOCK_KILL)\n", lock_kill_world);
  fflush(stderr);
  raise(SIGKILL);
}

/* dst ^= src under the host's stripe locks: plain (vectorised) XOR at memory
 * speed, which is what osc/sm's accumulate does under its one lock. */
static void xor_locked(const shm_map *m, int rank, size_t disp, const unsigned char *src,
                       size_t len) {
  seg_hdr *h = hdr_of(m, rank);
  unsigned char *dst = m->base[rank] + disp;
  while (len) {
    size_t n = SEG_STRIPE - disp % SEG_STRIPE;
    if (n > len) n = len;
    uint32_t *w = h->lock[(disp / SEG_STRIPE) % SEG_LOCKS];
    seg_lock(w);
    lock_kill();
    fuze__xor_into(dst, src, n); /* ISA-L xor_gen */
    seg_unlock(w);
    dst += n, src += n, disp += n, len -= n;
  }
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

/* fuze's own shared memory is the first choice on one node; the test hook
 * FUZE_DEBUG_OWN_SHM=0 turns it off (the MPI library's windows then, as
 * between nodes: the tests of TCP transports set it). */
static int own_allowed(void) {
  const char *e = getenv("FUZE_DEBUG_OWN_SHM");
  return !(e && *e && !atoi(e));
}

static uint64_t seg_newid(void) {
  static uint64_t counter;
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  uint64_t x = ((uint64_t)getpid() << 32) ^ (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 20) ^
               (__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ull);
  x ^= x >> 31, x *= 0xbf58476d1ce4e5b9ull, x ^= x >> 29; /* mixed, never 0 below */
  return x ? x : 1;
}

static own_seg *seg_map(int fd, size_t len, int keep_fd) {
  own_seg *g = calloc(1, sizeof *g);
  void *p = g ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  if (p == MAP_FAILED) {
    free(g);
    if (!keep_fd) close(fd);
    return NULL;
  }
  *g = (own_seg){1, keep_fd ? fd : -1, getpid(), 0, p, len};
  if (!keep_fd) close(fd);
  return g;
}

/* A new segment of this rank: zero bytes (fresh pages, faulted in by their
 * first writer, nothing touched here). */
static own_seg *seg_make(size_t bytes) {
  int fd = memfd_create("fuze-window", MFD_CLOEXEC);
  if (fd < 0) return NULL;
  if (ftruncate(fd, (off_t)(SEG_HDR + bytes))) {
    close(fd);
    return NULL;
  }
  own_seg *g = seg_map(fd, SEG_HDR + bytes, 1);
  if (!g) return NULL;
  g->id = seg_newid();
  seg_hdr *h = (seg_hdr *)(void *)g->map;
  h->id = g->id;
  h->bytes = bytes;
  return g;
}

/* A peer's segment, through its owner's descriptor; checked against the id
 * and size the owner announced. */
static own_seg *seg_open(pid_t pid, int fd, uint64_t id, size_t bytes) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/fd/%d", (long)pid, fd);
  int f = open(path, O_RDWR | O_CLOEXEC);
  if (f < 0) return NULL;
  own_seg *g = seg_map(f, SEG_HDR + bytes, 0);
  if (!g) return NULL;
  const seg_hdr *h = (const seg_hdr *)(const void *)g->map;
  if (h->id != id || h->bytes != bytes) {
    seg_unref(g);
    return NULL;
  }
  g->pid = pid;
  g->id = id;
  return g;
}

/* Collective: a window over fuze's own segments: a zero-byte MPI window
 * (the handle, the attribute, lock_all) whose shm_map points into every
 * rank's segment. net->win_reuse (a ULFM repair) names a window whose
 * segments are kept where they match: this rank's own when the size is the
 * same (its bytes stay where they are: nothing allocated, faulted or
 * copied; its lock words are cleared, as their holders may be dead), and a
 * peer's mapping when the peer announces the same segment. *declined: every
 * rank could not (no memfd, no /proc): nothing was made, the caller takes
 * the MPI library's windows. Any other failure is returned. */
static int own_window(fuze_net *net, size_t bytes, int bulk, int lock_all, MPI_Win *win,
                      unsigned char **base, int *declined) {
  *declined = 0;
  const shm_map *old = net->win_reuse && *net->win_reuse != MPI_WIN_NULL ? shm_of(*net->win_reuse) : NULL;
  if (old && (!old->seg || old->n != net->size)) old = NULL;
  int n = net->size;
  shm_map *m = calloc(1, sizeof *m + (size_t)n * sizeof m->base[0]);
  uint64_t *all = malloc(sizeof *all * 4 * (size_t)n);
  if (m) m->seg = calloc((size_t)n, sizeof *m->seg);
  if (m) m->n = n;
  int ok = m && m->seg && all;
  own_seg *mine = NULL;
  if (ok) {
    own_seg *o = old ? old->seg[net->rank] : NULL;
    if (o && o->fd >= 0 && o->len == SEG_HDR + bytes) {
      mine = o;
      mine->refs++;
      seg_hdr *h = (seg_hdr *)(void *)o->map;
      for (int l = 0; l <= SEG_LOCKS; l++) __atomic_store_n(&h->lock[l][0], 0, __ATOMIC_RELEASE);
    } else {
      mine = seg_make(bytes);
    }
    ok = mine != NULL;
  }
  if (m && m->seg) m->seg[net->rank] = mine;
  int every = 0;
  int rc = all_ok(net, ok, &every);
  if (!rc && every) {
    uint64_t me[4] = {(uint64_t)mine->pid, (uint64_t)mine->fd, mine->id, (uint64_t)bytes};
    rc = FUZE_MPI(net->msg, MPI_Allgather(me, 4, MPI_UINT64_T, all, 4, MPI_UINT64_T, net->comm));
    for (int r = 0; !rc && ok && r < n; r++) {
      if (r == net->rank) continue;
      const uint64_t *a = all + 4 * (size_t)r;
      own_seg *o = old ? old->seg[r] : NULL;
      if (o && o->id == a[2] && o->len == SEG_HDR + (size_t)a[3]) {
        o->refs++;
        m->seg[r] = o;
      } else {
        m->seg[r] = seg_open((pid_t)a[0], (int)a[1], a[2], (size_t)a[3]);
      }
      ok = m->seg[r] != NULL;
    }
    if (!rc) rc = all_ok(net, ok, &every);
  }
  free(all);
  if (!rc && every) {
    void *none = NULL;
    MPI_Win w = MPI_WIN_NULL;
    rc = fuze__win_create(net, 0, &w, (unsigned char **)&none, lock_all);
    if (!rc) {
      m->bulk = bulk;
      for (int r = 0; r < n; r++) m->base[r] = m->seg[r]->map + SEG_HDR;
      int arc = FUZE_MPI(net->msg, MPI_Win_set_attr(w, shm_key, m));
      rc = all_ok(net, arc == FUZE_SUCCESS, &every);
      if (!rc && every) {
        *win = w;
        *base = m->base[net->rank];
        return FUZE_SUCCESS;
      }
      if (!arc) FUZE_MPI_TEARDOWN(MPI_Win_delete_attr(w, shm_key)); /* frees m */
      else map_free(m);
      fuze__win_free(&w, lock_all);
      return rc ? rc : fuze__error(net->msg, FUZE_ERR_MPI, "transport: MPI_Win_set_attr failed "
                                   "on rank %d or another rank", net->rank);
    }
  }
  map_free(m);
  if (!rc && !every) *declined = 1;
  return rc;
}

/* A shared window: fuze's own segments first, then (own ones declined)
 * MPI_Win_allocate_shared; bulk: see shm_map. */
static int create_shared(fuze_net *net, size_t bytes, MPI_Win *win, unsigned char **base,
                         int lock_all, int *shm, int bulk, int mpi_shared) {
  int mode = net->shm;
  pthread_once(&shm_once, shm_keyval);
  if (own_allowed() && shm_key != MPI_KEYVAL_INVALID) {
    int declined = 0;
    int rc = own_window(net, bytes, bulk, lock_all, win, base, &declined);
    if (!declined) {
      *shm = !rc;
      return rc;
    }
    if (net->verbose)
      fprintf(stderr, "fuze: rank %d: no memfd segments shared through /proc\n", net->rank);
  }
  if (!mpi_shared) return fuze__win_create(net, bytes, win, base, lock_all);
  void *mem = NULL;
  shm_map *map = calloc(1, sizeof *map + (size_t)net->size * sizeof map->base[0]);
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
  *shm = !rc;
  int rrc = win_ready(net, win, mem, bytes, lock_all);
  return rc ? rc : rrc;
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
  int rc = create_shared(net, bytes, win, base, lock_all, shm, 0, 1);
  net->shm_windows = *shm;
  return rc;
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
  int shm = 0;
  if (net->shm == FUZE_SHM_OFF || !one_node(net) || (!shm_arrays(net) && !own_allowed()))
    return fuze__win_create(net, bytes, win, base, 1);
  return create_shared(net, bytes, win, base, 1, &shm, 1, shm_arrays(net));
}

int fuze__win_kind(MPI_Win win) {
  if (win == MPI_WIN_NULL) return FUZE_WIN_NONE;
  const shm_map *m = shm_of(win);
  return !m ? FUZE_WIN_MPI : !m->seg ? FUZE_WIN_MPI_SHARED : m->bulk ? FUZE_WIN_OWN_BULK : FUZE_WIN_OWN;
}

void fuze__win_abandon(MPI_Win *win) {
  if (*win == MPI_WIN_NULL) return;
  const shm_map *m = shm_of(*win);
  if (m && m->seg) FUZE_MPI_TEARDOWN(MPI_Win_delete_attr(*win, shm_key)); /* map_free: unmaps */
  *win = MPI_WIN_NULL;
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
    if (m->bulk && m->seg) xor_locked(m, rank, disp, buf, len);
    else xor_atomic(m->base[rank] + disp, buf, len);
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
  const shm_map *m = shm_of(win);
  if (m && m->seg) {
    seg_lock(hdr_of(m, rank)->lock[SEG_EXCL]);
    return FUZE_SUCCESS;
  }
  return FUZE_MPI(net->msg, MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win));
}

int fuze__win_unlock(fuze_net *net, MPI_Win win, int rank) {
  const shm_map *m = shm_of(win);
  if (m && m->seg) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    seg_unlock(hdr_of(m, rank)->lock[SEG_EXCL]);
    return FUZE_SUCCESS;
  }
  return FUZE_MPI(net->msg, MPI_Win_unlock(rank, win));
}

int fuze__win_sync(fuze_net *net, MPI_Win win) {
  const shm_map *m = shm_of(win);
  if (m && m->seg) { /* no MPI memory behind the window: a fence is the sync */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return FUZE_SUCCESS;
  }
  return FUZE_MPI(net->msg, MPI_Win_sync(win));
}

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
