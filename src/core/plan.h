/* plan: failure domains -> blocks -> backup placement (Section IV-D of the
 * seed paper). Pure functions, no MPI. */
#ifndef FUZE_PLAN_H
#define FUZE_PLAN_H

#include "core/limits.h" /* FUZE_GF_MEMBERS: primaries + backups of a block */

#include <stddef.h>

#define FUZE_PLAN_DEFAULT_BLOCK 32

typedef struct fuze_plan_input {
  int nranks;          /* all ranks, compute and spare */
  const int *domain;   /* domain of each rank, 0..ndomains-1, every domain non-empty */
  int ndomains;
  int spares;          /* the last `spares` domains (highest ids) host backups only */
  int f;               /* faults tolerated (domains) */
  int max_block;       /* max primaries per block; <= 0 means FUZE_PLAN_DEFAULT_BLOCK */
} fuze_plan_input;

typedef struct fuze_plan {
  int nranks, ndomains, spares, f;
  int ncompute;        /* ranks in non-spare domains */
  int nblocks;
  int *block_start;    /* nblocks + 1: block b's members are members[block_start[b] ..
                          block_start[b+1]) in ascending rank order */
  int *members;        /* ncompute ranks */
  int *hosts;          /* nblocks * f: rank hosting backup j of block b at [b * f + j] */
  int *block_of;       /* nranks: block of a compute rank, -1 for spare ranks */
  int *index_in_block; /* nranks: position of a compute rank in its block, -1 for spares */
  int *domain;         /* nranks: copy of the input domains */
} fuze_plan;

/* Build the plan. Rules: within each group (the i-th rank of every compute
 * domain), max(ceil(n/(n+a-f)), ceil(n/max_block)) blocks of sizes differing by
 * at most one (n = group size, n + a = domains); no block holds two ranks of one
 * domain; block b's f backups sit in f distinct domains none of which holds a
 * member of b; no host holds more than one backup above any rank that could
 * host that backup instead (a rank of a domain holding neither a member nor
 * another backup of b); spare ranks are preferred at equal load, and a spare
 * domain b does not use is never lighter than a compute rank hosting one of
 * b's backups. max_block > 256 - f is refused. Impossible input returns
 * FUZE_ERR_CONFIG with a message naming the numbers in errbuf (e.g. "faults=3
 * needs at least 4 failure domains, got 3 (2 compute + 1 spare)"). */
int fuze__plan_build(const fuze_plan_input *in, fuze_plan *out, char *errbuf,
                     size_t errlen);
void fuze__plan_free(fuze_plan *p); /* accepts a zeroed or freed plan */
/* dst := a deep copy of p (FUZE_SUCCESS or FUZE_ERR_NOMEM, dst then empty). */
int fuze__plan_copy(fuze_plan *dst, const fuze_plan *p);

/* Brute force: for every set of <= f domains, count each block's lost members
 * (primaries + backups). Returns 0 when every block loses <= f; otherwise 1
 * and the first failing domain set in failing[0..*nfailing-1]. */
int fuze__plan_check(const fuze_plan *p, int *failing, int *nfailing);

/* Number of backups hosted by `rank` (one pass over the nblocks * f hosts). */
int fuze__plan_load(const fuze_plan *p, int rank);

/* Bytes of the plan's arrays, which every rank holds: 4 * (3 * nranks +
 * ncompute + nblocks * (f + 1) + 3) with 4-byte ints (docs/plan.md). */
size_t fuze__plan_bytes(const fuze_plan *p);

/* fuze__plan_check with more detail: *nsets = failure sets tried (every
 * non-empty set of <= f domains when the plan passes, sum_k C(ndomains, k)),
 * *bad_block = the block that loses more than f members in the failing set,
 * -1 when none. Any out pointer may be NULL; failing must hold f ints.
 * Returns 0 (tolerant), 1 (failing set found) or FUZE_ERR_NOMEM. */
int fuze__plan_check_detail(const fuze_plan *p, int *failing, int *nfailing, long long *nsets,
                            int *bad_block);

/* Blocks of one group of n ranks (one rank per domain) among ndomains
 * domains: max(ceil(n / (ndomains - f)), ceil(n / max_block)); 0 when n <= 0.
 * Needs ndomains > f and max_block >= 1. */
int fuze__plan_group_blocks(int n, int ndomains, int f, int max_block);

/* The effective block limit: max_block when > 0, else
 * min(FUZE_PLAN_DEFAULT_BLOCK, FUZE_GF_MEMBERS - f). */
int fuze__plan_block_limit(int f, int max_block);

#endif
