/* wait: polling completion with back-off, and the process-wide mode (wait.h). */
#define FUZE_WAIT_NO_REDEFINE
#include "comm/wait.h"

#include <hwloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

atomic_int fuze__wait_any_poll;
atomic_int fuze__wait_keyval = MPI_KEYVAL_INVALID;

static pthread_once_t keyval_once = PTHREAD_ONCE_INIT;
static int keyval_rc = MPI_SUCCESS;
static char mark_value; /* the attribute's value: its address */

static void make_keyval(void) {
  int kv = MPI_KEYVAL_INVALID;
  keyval_rc = MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, MPI_COMM_NULL_DELETE_FN, &kv, NULL);
  if (keyval_rc == MPI_SUCCESS) atomic_store(&fuze__wait_keyval, kv);
}

int fuze__wait_marked(MPI_Comm comm) {
  void *v = NULL;
  int found = 0, kv = atomic_load_explicit(&fuze__wait_keyval, memory_order_relaxed);
  if (kv == MPI_KEYVAL_INVALID || comm == MPI_COMM_NULL) return 0;
  return MPI_Comm_get_attr(comm, kv, &v, &found) == MPI_SUCCESS && found;
}

int fuze__wait_mark(MPI_Comm comm) {
  pthread_once(&keyval_once, make_keyval);
  if (keyval_rc != MPI_SUCCESS) return keyval_rc;
  atomic_store(&fuze__wait_any_poll, 1);
  return MPI_Comm_set_attr(comm, atomic_load(&fuze__wait_keyval), &mark_value);
}

int fuze__wait_inherit(MPI_Comm comm, MPI_Comm *out) {
  if (*out == MPI_COMM_NULL || !fuze__wait_marked(comm)) return MPI_SUCCESS;
  return MPI_Comm_set_attr(*out, atomic_load(&fuze__wait_keyval), &mark_value);
}

int fuze__wait_env(void) {
  const char *e = getenv("FUZE_WAIT");
  if (!e || !*e || !strcmp(e, "auto")) return -1;
  if (!strcmp(e, "spin")) return FUZE_WAIT_SPIN;
  if (!strcmp(e, "poll")) return FUZE_WAIT_POLL;
  return -2;
}

int fuze__wait_node_pus(void) {
  static atomic_int cached;
  int n = atomic_load(&cached);
  if (n > 0) return n;
  hwloc_topology_t topo;
  n = 0;
  if (!hwloc_topology_init(&topo)) {
    /* Only the PUs are wanted: skip caches, I/O and the rest of the discovery. */
    hwloc_topology_set_all_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    if (!hwloc_topology_load(topo)) n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    hwloc_topology_destroy(topo);
  }
  if (n < 1) n = 1;
  atomic_store(&cached, n);
  return n;
}

int fuze__wait_mpi_yields(void) {
#ifdef OPEN_MPI
  return 1; /* mpi_yield_when_idle, on by default when oversubscribed */
#else
  return 0;
#endif
}

/* One step of the back-off after the iteration-th unsuccessful test: the
 * first tests back to back, then yields, then sleeps from 1 us doubling to
 * FUZE_WAIT_SLEEP_MAX_NS (the kernel's timer slack, 50 us by default, makes
 * the shortest ones longer). */
enum { SPINS = 32, YIELDS = 32 };

static void back_off(unsigned iteration) {
  if (iteration < SPINS) return;
  if (iteration < SPINS + YIELDS) {
    sched_yield();
    return;
  }
  unsigned k = iteration - SPINS - YIELDS;
  long ns = k >= 20 ? FUZE_WAIT_SLEEP_MAX_NS : 1000L << k;
  if (ns > FUZE_WAIT_SLEEP_MAX_NS) ns = FUZE_WAIT_SLEEP_MAX_NS;
  nanosleep(&(struct timespec){0, ns}, NULL);
}

int fuze__wait_poll(MPI_Request *req, MPI_Status *status) {
  int done = 0;
  for (unsigned i = 0;; i++) {
    int rc = MPI_Test(req, &done, status);
    if (rc != MPI_SUCCESS || done) return rc;
    back_off(i);
  }
}

int fuze__waitall_poll(int n, MPI_Request *reqs, MPI_Status *statuses) {
  int done = 0;
  for (unsigned i = 0;; i++) {
    int rc = MPI_Testall(n, reqs, &done, statuses);
    if (rc != MPI_SUCCESS || done) return rc;
    back_off(i);
  }
}

int fuze__probe_poll(int source, int tag, MPI_Comm comm, MPI_Status *status) {
  int found = 0;
  for (unsigned i = 0;; i++) {
    int rc = MPI_Iprobe(source, tag, comm, &found, status);
    if (rc != MPI_SUCCESS || found) return rc;
    back_off(i);
  }
}
