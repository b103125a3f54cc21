/* topo: failure domains from MPI (node = shared-memory domain) and hwloc. */
#ifndef FUZE_TOPO_H
#define FUZE_TOPO_H

#include <mpi.h>

#include "core/config.h"

/* Fill domain[0..size-1] (size of comm) with a domain id per rank, numbered
 * 0.. in order of each domain's lowest rank, and *ndomains. Collective.
 * domain=node on a single node with several ranks falls back to rank (rank 0
 * prints a one-line warning). With cfg->verbose, each rank prints its hwloc
 * view (packages, NUMA nodes, cores, binding). */
int fuze__topo_domains(MPI_Comm comm, const fuze_config *cfg, int *domain, int *ndomains,
                       char *msg);

#endif
