/* fuze-plan: print the blocks and backup placement fuze would use for a given
 * number of ranks, spares, faults and domain size, and optionally verify by
 * brute force that every set of <= faults failed domains is recoverable.
 * Pure tool: uses the planner (src/plan.c) without MPI. */
#include "core/error.h"
#include "core/plan.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANKS (1 << 20)
#define MAX_CHECK_SETS 100000000LL /* beyond this --check would run for minutes */

typedef struct options {
  int ranks, spares, faults, domain, block, check;
} options;

static const char usage_line[] =
    "usage: fuze-plan --ranks N [--spares A] --faults F [--domain K] [--block B] [--check]\n";

static void print_help(void) {
  fputs(usage_line, stdout);
  fputs("\n"
        "Print the blocks and backup placement fuze plans (Section IV-D of the fused\n"
        "backups paper, Theorems 5 and 6) and the memory it costs next to replication.\n"
        "\n"
        "  --ranks N    compute ranks (they hold primaries): ranks 0..N-1\n"
        "  --spares A   spare ranks that only host backups: ranks N..N+A-1 (default 0)\n"
        "  --faults F   failure domains to tolerate (required)\n"
        "  --domain K   K consecutive ranks per failure domain (default 1). Compute and\n"
        "               spare ranks are cut separately: the compute domains are ranks\n"
        "               [0,K), [K,2K), ... of 0..N-1 and the spare domains the same\n"
        "               cut of N..N+A-1, so A spare ranks form ceil(A/K) spare domains\n"
        "               and no domain mixes compute and spare ranks; the last domain\n"
        "               of each kind holds fewer than K ranks when K does not divide.\n"
        "  --block B    at most B primaries per block (default 32; at most 256 - F,\n"
        "               since GF(2^8) Reed-Solomon allows primaries + backups <= 256)\n"
        "  --check      try every set of <= F failed domains and verify that no block\n"
        "               loses more than F of its primaries and backups\n"
        "  -h, --help   this text\n"
        "\n"
        "Exit status: 0 success, 1 --check found a failing set, 2 bad arguments or\n"
        "impossible plan.\n",
        stdout);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuze-plan: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%sTry 'fuze-plan --help' for more information.\n", usage_line);
  return 2;
}

/* A whole-string decimal integer in [lo, hi]. */
static int parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

/* The integer-valued options: name, destination, range. */
static int set_value(options *o, const char *name, const char *val) {
  struct { const char *name; int *dst, lo, hi; } t[] = {
      {"--ranks", &o->ranks, 1, MAX_RANKS},   {"--spares", &o->spares, 0, MAX_RANKS},
      {"--faults", &o->faults, -MAX_RANKS, MAX_RANKS}, {"--domain", &o->domain, 1, MAX_RANKS},
      {"--block", &o->block, 1, INT_MAX},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (strcmp(name, t[i].name)) continue;
    if (!val) return usage_error("option %s needs a value", name);
    if (parse_int(val, t[i].lo, t[i].hi, t[i].dst))
      return usage_error("bad value '%s' for %s (accepted: an integer in %d..%d)", val, name,
                         t[i].lo, t[i].hi);
    return 0;
  }
  return usage_error("unknown option '%s'", name);
}

/* Returns 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.ranks = 0, .faults = INT_MIN, .domain = 1, .block = 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *eq = strchr(a, '=');
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return print_help(), 1;
    if (!strcmp(a, "--check")) { o->check = 1; continue; }
    char name[32];
    if (eq && (size_t)(eq - a) < sizeof name) { /* --opt=value */
      snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
      if (set_value(o, name, eq + 1)) return 2;
    } else if (set_value(o, a, i + 1 < argc ? argv[++i] : NULL)) {
      return 2;
    }
  }
  if (!o->ranks) return usage_error("%s", "--ranks N is required");
  if (o->faults == INT_MIN) return usage_error("%s", "--faults F is required");
  if ((long)o->ranks + o->spares > MAX_RANKS)
    return usage_error("--ranks %d plus --spares %d is more than %d ranks in all (the limit)",
                       o->ranks, o->spares, MAX_RANKS);
  return 0;
}

/* Domains of K consecutive ranks, compute and spare ranks cut separately. */
static int *make_domains(const options *o, int *ndomains, int *nspare_dom) {
  int n = o->ranks + o->spares, K = o->domain;
  int ncdom = (o->ranks + K - 1) / K;
  int *dom = malloc(sizeof(int) * (size_t)n);
  if (!dom) return NULL;
  for (int r = 0; r < o->ranks; r++) dom[r] = r / K;
  for (int s = 0; s < o->spares; s++) dom[o->ranks + s] = ncdom + s / K;
  *nspare_dom = (o->spares + K - 1) / K;
  *ndomains = ncdom + *nspare_dom;
  return dom;
}

static int is_spare(const fuze_plan *p, int rank) {
  return p->domain[rank] >= p->ndomains - p->spares;
}

/* Group of every compute rank = its position in its domain; returns ngroups. */
static int group_sizes(const fuze_plan *p, int *size) {
  int ng = 0;
  int *pos = calloc((size_t)p->ndomains, sizeof(int));
  if (!pos) return 0;
  for (int r = 0; r < p->nranks; r++) {
    if (is_spare(p, r)) continue;
    int g = pos[p->domain[r]]++;
    size[g]++;
    if (g + 1 > ng) ng = g + 1;
  }
  free(pos);
  return ng;
}

static void print_rule(const fuze_plan *p, int block) {
  int *size = calloc((size_t)p->nranks, sizeof(int));
  if (!size) return;
  int ng = group_sizes(p, size), D = p->ndomains;
  printf("rule: max(ceil(n/(D-f)), ceil(n/block)) blocks per group, D = %d domains "
         "(%d compute + %d spare)\n", D, D - p->spares, p->spares);
  for (int g = 0; g < ng; g++)
    printf("  group %d (rank %d of every compute domain): n=%d -> max(ceil(%d/%d), "
           "ceil(%d/%d)) = %d\n", g, g, size[g], size[g], D - p->f, size[g], block,
           fuze__plan_group_blocks(size[g], D, p->f, block));
  free(size);
}

static void print_blocks(const fuze_plan *p) {
  printf("blocks: %d\n", p->nblocks);
  for (int b = 0; b < p->nblocks; b++) {
    printf("  block %d: primaries", b);
    for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++) printf(" %d", p->members[i]);
    printf(" | backups");
    for (int j = 0; j < p->f; j++) {
      int h = p->hosts[b * p->f + j];
      printf("%s rank %d (domain %d%s)", j ? "," : "", h, p->domain[h],
             is_spare(p, h) ? ", spare" : "");
    }
    printf("\n");
  }
}

/* Loads from one pass over the hosts (fuze__plan_load per rank would cost
 * nranks x backups). */
static void print_loads(const fuze_plan *p) {
  int *load = calloc((size_t)p->nranks, sizeof(int));
  if (!load) return;
  for (int i = 0; i < p->nblocks * p->f; i++) load[p->hosts[i]]++;
  int lo = INT_MAX, hi = 0;
  for (int r = 0; r < p->nranks; r++)
    lo = load[r] < lo ? load[r] : lo, hi = load[r] > hi ? load[r] : hi;
  printf("backups per rank: %d..%d", lo, hi);
  if (p->nranks <= 64) { /* the full list only while it fits a screen */
    printf(" (");
    for (int r = 0; r < p->nranks; r++) printf("%s%d:%d", r ? " " : "", r, load[r]);
    printf(")");
  }
  printf("\n");
  free(load);
}

static const char *plural(int n) { return n == 1 ? "" : "s"; }

static void print_plan(const fuze_plan *p, const options *o, int block) {
  int nb = p->nblocks * p->f;
  int ncdom = p->ndomains - p->spares, nspare = p->nranks - p->ncompute;
  printf("plan: %d compute rank%s in %d domain%s, %d spare rank%s in %d domain%s, "
         "%d rank%s per domain, faults=%d, block<=%d\n",
         p->ncompute, plural(p->ncompute), ncdom, plural(ncdom), nspare, plural(nspare),
         p->spares, plural(p->spares), o->domain, plural(o->domain), p->f, block);
  print_rule(p, block);
  print_blocks(p);
  print_loads(p);
  printf("backups: %d (replication: %lld = %d x %d)\n", nb, (long long)p->ncompute * p->f,
         p->ncompute, p->f);
  printf("redundancy: %.2f backups per primary (replication: %d)\n",
         (double)nb / p->ncompute, p->f);
  printf("plan size: %zu bytes, held by every rank\n", fuze__plan_bytes(p));
}

static long long count_sets(int D, int f) {
  long long total = 0, c = 1;
  for (int k = 1; k <= f && k <= D; k++) {
    c = c * (D - k + 1) / k;
    total += c;
    if (total > MAX_CHECK_SETS) return total;
  }
  return total;
}

/* Members and backups of block b in the failed domains. */
static int lost_in(const fuze_plan *p, int b, const int *set, int nset) {
  int lost = 0;
  for (int k = 0; k < nset; k++) {
    for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++)
      lost += p->domain[p->members[i]] == set[k];
    for (int j = 0; j < p->f; j++) lost += p->domain[p->hosts[b * p->f + j]] == set[k];
  }
  return lost;
}

static int run_check(const fuze_plan *p) {
  if (count_sets(p->ndomains, p->f) > MAX_CHECK_SETS) {
    fprintf(stderr, "fuze-plan: --check would try more than %lld failure sets of <= %d of %d "
            "domains; refusing\n", MAX_CHECK_SETS, p->f, p->ndomains);
    return 2;
  }
  int *set = malloc(sizeof(int) * (size_t)p->f), nset = 0, bad = -1;
  long long nsets = 0;
  int rc = set ? fuze__plan_check_detail(p, set, &nset, &nsets, &bad) : FUZE_ERR_NOMEM;
  if (rc == 0) printf("check: OK (%lld failure sets of <= %d domains)\n", nsets, p->f);
  if (rc == 1) {
    printf("check: FAILED: domains {");
    for (int k = 0; k < nset; k++) printf("%s%d", k ? ", " : "", set[k]);
    printf("} failing together cost block %d %d members (tolerates %d)\n", bad,
           lost_in(p, bad, set, nset), p->f);
  }
  if (rc < 0) fprintf(stderr, "fuze-plan: check: %s\n", fuze_strerror(rc));
  free(set);
  return rc == 0 ? 0 : rc == 1 ? 1 : 2;
}

int main(int argc, char **argv) {
  options o;
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc == 1 ? 0 : 2;
  int ndom = 0, nspare = 0;
  int *dom = make_domains(&o, &ndom, &nspare);
  if (!dom) return fprintf(stderr, "fuze-plan: out of memory\n"), 2;
  fuze_plan_input in = {o.ranks + o.spares, dom, ndom, nspare, o.faults, o.block};
  fuze_plan p;
  char err[FUZE_MSG_LEN];
  rc = fuze__plan_build(&in, &p, err, sizeof err);
  if (rc) {
    fprintf(stderr, "fuze-plan: %s\n", err);
    free(dom);
    return 2;
  }
  print_plan(&p, &o, fuze__plan_block_limit(o.faults, o.block));
  if (o.check) rc = run_check(&p);
  fuze__plan_free(&p);
  free(dom);
  return rc;
}
