/* Failure domains. A node is the natural failure domain of a cluster: a
 * node crash takes all its ranks, so they must never share a block. */
#include "comm/topo.h"

#include "comm/net.h"
#include "core/error.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>

/* Number domains by the lowest rank they contain, so ids are consistent on
 * every rank and spare domains (the highest ids) are the job's last ranks. */
static int number_by_leader(const int *leader, int size, int *domain) {
  int n = 0;
  for (int r = 0; r < size; r++) {
    if (leader[r] == r) domain[r] = n++;
  }
  for (int r = 0; r < size; r++) domain[r] = domain[leader[r]];
  return n;
}

static int node_domains(MPI_Comm comm, int *domain, int *ndomains, char *msg) {
  int rank, size, leader;
  MPI_Comm node;
  int rc = FUZE_MPI(msg, MPI_Comm_rank(comm, &rank));
  if (!rc) rc = FUZE_MPI(msg, MPI_Comm_size(comm, &size));
  if (!rc) rc = FUZE_MPI(msg, MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  if (rc) return rc;
  /* Rank 0 of the node communicator is the node's lowest comm rank (key = rank). */
  leader = rank;
  rc = FUZE_MPI(msg, MPI_Bcast(&leader, 1, MPI_INT, 0, node));
  FUZE_MPI_TEARDOWN(MPI_Comm_free(&node));
  if (rc) return rc;
  /* Without memory this rank still takes part in the exchange (into domain). */
  int *leaders = malloc(sizeof(int) * (size_t)size);
  rc = FUZE_MPI(msg, MPI_Allgather(&leader, 1, MPI_INT, leaders ? leaders : domain, 1, MPI_INT, comm));
  if (!rc && !leaders) rc = FUZE_NOMEM(msg, "topo");
  if (!rc) *ndomains = number_by_leader(leaders, size, domain);
  free(leaders);
  return rc;
}

static void print_hwloc(int rank) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) || hwloc_topology_load(topo)) return;
  int pk = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
  int numa = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  char *where = NULL;
  if (set && !hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_PROCESS))
    hwloc_bitmap_list_asprintf(&where, set);
  printf("fuze: rank %d: node has %d package(s), %d NUMA node(s), %d core(s); bound to PUs %s\n",
         rank, pk, numa, cores, where ? where : "?");
  free(where);
  hwloc_bitmap_free(set);
  hwloc_topology_destroy(topo);
}

int fuze__topo_domains(MPI_Comm comm, const fuze_config *cfg, int *domain, int *ndomains,
                       char *msg) {
  int rank, size;
  int rc = FUZE_MPI(msg, MPI_Comm_rank(comm, &rank));
  if (!rc) rc = FUZE_MPI(msg, MPI_Comm_size(comm, &size));
  if (rc) return rc;
  int mode = cfg->domain_mode;
  if (mode == FUZE_DOMAIN_NODE) {
    if ((rc = node_domains(comm, domain, ndomains, msg))) return rc;
    if (*ndomains == 1 && size > 1) {
      if (rank == 0)
        fprintf(stderr, "fuze: warning: all %d ranks share one node; using domain=rank "
                        "(a node failure cannot be tolerated)\n", size);
      mode = FUZE_DOMAIN_RANK;
    }
  }
  if (mode == FUZE_DOMAIN_RANK || mode == FUZE_DOMAIN_K) {
    int k = mode == FUZE_DOMAIN_K ? cfg->domain_k : 1;
    for (int r = 0; r < size; r++) domain[r] = r / k;
    *ndomains = size / k + (size % k != 0); /* no overflow for any k (size + k - 1 could) */
  }
  if (cfg->verbose >= 2) print_hwloc(rank);
  return FUZE_SUCCESS;
}
