/* plan: failure domains -> blocks -> backup placement (Section IV-D of the
 * seed paper: Theorem 5 fixes the number of blocks, Theorem 6 says putting
 * every primary in exactly one block is minimal). Pure C, no MPI. */
#include "core/plan.h"
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Scratch state of one fuze__plan_build call.
 *
 * Placement asks, for every backup, "the best host among the ranks of the
 * domains this block does not use" (best = fewest backups, then spare, then
 * lowest rank: a strict total order, so the answer is unique). A min segment
 * tree over the ranks listed domain by domain answers that for any run of
 * whole domains in O(log n); the domains a block uses are at most its
 * members' and backups' (<= FUZE_PLAN_FIELD), so the eligible domains are a
 * few runs and one placement costs O((block + f) log n) instead of a scan
 * of every domain. */
typedef struct plan_work {
  const fuze_plan_input *in;
  int ndom, nspare_dom, max_block;
  int *dom_start;      /* ndom + 1: domain d's ranks are leaves dom_start[d] .. */
  int *tree;           /* 2 * nranks: leaf i at [nranks + i] = i-th rank in domain
                          order (ascending within a domain); node x holds the
                          best rank of its two children, -1 none */
  int *pos;            /* nranks: leaf index of each rank */
  int *load;           /* nranks: backups hosted so far */
  unsigned char *mark; /* ndom: domains a block may not use for the backup at hand */
  int *used;           /* the marked domains, ascending once sorted */
  int nused;
} plan_work;

/* One block before the final sort: members grp_ranks[start .. start + size). */
typedef struct plan_chunk {
  int first, start, size;
} plan_chunk;

__attribute__((format(printf, 4, 5)))
static int plan_fail(char *errbuf, size_t errlen, int code, const char *fmt, ...) {
  char msg[FUZE_MSG_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* fuze__error copies FUZE_MSG_LEN bytes; the caller's buffer may be smaller. */
  if (errbuf && errlen) snprintf(errbuf, errlen, "%s", msg);
  return fuze__error(NULL, code, "%s", msg);
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

int fuze__plan_group_blocks(int n, int ndomains, int f, int max_block) {
  if (n <= 0) return 0;
  /* Theorem 5: a block of more than ndomains - f members would not find f
   * domains outside itself for its backups; fewer blocks cannot tolerate f. */
  int by_domains = ceil_div(n, ndomains - f);
  int by_size = ceil_div(n, max_block);
  return by_domains > by_size ? by_domains : by_size;
}

int fuze__plan_block_limit(int f, int max_block) {
  int field = FUZE_GF_MEMBERS - f;
  if (max_block > 0) return max_block;
  return FUZE_PLAN_DEFAULT_BLOCK < field ? FUZE_PLAN_DEFAULT_BLOCK : field;
}

/* The scalar parameters; the per-rank domains are checked by index_domains. */
static int check_numbers(const fuze_plan_input *in, char *eb, size_t el) {
  int ndom = in->ndomains, a = in->spares, f = in->f;
  if (in->nranks < 1)
    return plan_fail(eb, el, FUZE_ERR_CONFIG, "nranks=%d: a plan needs at least 1 rank",
                     in->nranks);
  if (!in->domain) return plan_fail(eb, el, FUZE_ERR_ARG, "plan input has no domain array");
  if (ndom < 1)
    return plan_fail(eb, el, FUZE_ERR_CONFIG, "ndomains=%d: a plan needs at least 1 domain",
                     ndom);
  if (a < 0) return plan_fail(eb, el, FUZE_ERR_CONFIG, "spares=%d must be >= 0", a);
  if (a >= ndom)
    return plan_fail(eb, el, FUZE_ERR_CONFIG,
                     "spares=%d leaves no compute domain: only %d failure domains", a, ndom);
  if (f < 1) return plan_fail(eb, el, FUZE_ERR_CONFIG, "faults=%d must be at least 1", f);
  if (ndom <= f)
    return plan_fail(eb, el, FUZE_ERR_CONFIG,
                     "faults=%d needs at least %d failure domains, got %d (%d compute + %d spare)",
                     f, f + 1, ndom, ndom - a, a);
  if (f >= FUZE_GF_MEMBERS)
    return plan_fail(eb, el, FUZE_ERR_CONFIG,
                     "faults=%d exceeds GF(2^8): k + m <= %d allows at most %d faults", f,
                     FUZE_GF_MEMBERS, FUZE_GF_MEMBERS - 1);
  if (in->max_block > FUZE_GF_MEMBERS - f)
    return plan_fail(eb, el, FUZE_ERR_CONFIG,
                     "block=%d too large for faults=%d: GF(2^8) allows at most %d primaries "
                     "per block (k + m <= %d)",
                     in->max_block, f, FUZE_GF_MEMBERS - f, FUZE_GF_MEMBERS);
  return FUZE_SUCCESS;
}

/* Bucket the ranks by domain (ascending inside each), refusing bad ids and
 * empty domains. */
static int index_domains(plan_work *w, char *eb, size_t el) {
  const fuze_plan_input *in = w->in;
  for (int r = 0; r < in->nranks; r++) {
    int d = in->domain[r];
    if (d < 0 || d >= w->ndom)
      return plan_fail(eb, el, FUZE_ERR_CONFIG, "rank %d has domain %d, outside 0..%d (%d domains)",
                       r, d, w->ndom - 1, w->ndom);
    w->dom_start[d + 1]++;
  }
  for (int d = 0; d < w->ndom; d++) {
    if (w->dom_start[d + 1] == 0)
      return plan_fail(eb, el, FUZE_ERR_CONFIG, "domain %d has no ranks (%d domains, %d ranks)", d,
                       w->ndom, in->nranks);
    w->dom_start[d + 1] += w->dom_start[d];
  }
  /* Scanning ranks in order keeps each domain ascending. The fill cursors
   * borrow load (ndom <= nranks: no domain is empty), zeroed again below. */
  int *fill = w->load, n = in->nranks;
  for (int r = 0; r < n; r++) {
    int d = in->domain[r], i = w->dom_start[d] + fill[d]++;
    w->tree[n + i] = r;
    w->pos[r] = i;
  }
  memset(w->load, 0, sizeof(int) * (size_t)n);
  return FUZE_SUCCESS;
}

static int is_spare(const plan_work *w, int rank) {
  return w->in->domain[rank] >= w->ndom - w->nspare_dom;
}

static int cmp_chunk(const void *x, const void *y) {
  const plan_chunk *a = x, *b = y;
  return (a->first > b->first) - (a->first < b->first);
}

/* Cut one group (ascending ranks grp[0..n)) into contiguous blocks whose
 * sizes differ by at most one, larger blocks first as in the paper's
 * [X1,X2],[X3,X4],[X5]. */
static int cut_group(const plan_work *w, const int *grp, int start, int n, plan_chunk *out) {
  int nb = fuze__plan_group_blocks(n, w->ndom, w->in->f, w->max_block);
  int q = n / nb, extra = n % nb, at = start;
  for (int b = 0; b < nb; b++) {
    int size = q + (b < extra);
    out[b] = (plan_chunk){grp[at], at, size};
    at += size;
  }
  return nb;
}

/* Group g = the g-th rank of every compute domain (SCR/FTI style). Two ranks
 * of a group never share a domain, so blocks cut from one group never hold
 * two ranks of a domain. grp_start (ngroups + 1) and grp (ncompute) are out. */
static int group_ranks(const plan_work *w, int **grp_start_out, int **grp_out, int *ngroups) {
  int ncdom = w->ndom - w->nspare_dom, ng = 0;
  for (int d = 0; d < ncdom; d++) {
    int size = w->dom_start[d + 1] - w->dom_start[d];
    if (size > ng) ng = size;
  }
  int ncomp = w->dom_start[ncdom];
  int *start = calloc((size_t)ng + 2, sizeof(int));
  int *grp = malloc(sizeof(int) * ((size_t)ncomp + 1));
  const int *pos = w->pos;
  if (!start || !grp) {
    free(start), free(grp);
    return FUZE_ERR_NOMEM;
  }
  for (int d = 0; d < ncdom; d++)
    for (int i = w->dom_start[d]; i < w->dom_start[d + 1]; i++) start[i - w->dom_start[d] + 2]++;
  for (int g = 0; g < ng; g++) start[g + 2] += start[g + 1];
  /* Ascending rank order inside each group falls out of scanning ranks in order. */
  for (int r = 0; r < w->in->nranks; r++) {
    int d = w->in->domain[r];
    if (d < ncdom) grp[start[pos[r] - w->dom_start[d] + 1]++] = r;
  }
  *grp_start_out = start, *grp_out = grp, *ngroups = ng;
  return FUZE_SUCCESS;
}

static int alloc_plan(fuze_plan *p, int nranks, int ncompute, int nblocks, int f) {
  p->block_start = malloc(sizeof(int) * ((size_t)nblocks + 1));
  p->members = malloc(sizeof(int) * ((size_t)ncompute + 1));
  p->hosts = malloc(sizeof(int) * ((size_t)nblocks * (size_t)f + 1));
  p->block_of = malloc(sizeof(int) * (size_t)nranks);
  p->index_in_block = malloc(sizeof(int) * (size_t)nranks);
  p->domain = malloc(sizeof(int) * (size_t)nranks);
  if (!p->block_start || !p->members || !p->hosts || !p->block_of || !p->index_in_block ||
      !p->domain)
    return FUZE_ERR_NOMEM;
  return FUZE_SUCCESS;
}

/* Write the sorted chunks into the plan arrays. */
static void fill_blocks(fuze_plan *p, const plan_chunk *ch, const int *grp) {
  int at = 0;
  for (int r = 0; r < p->nranks; r++) p->block_of[r] = p->index_in_block[r] = -1;
  for (int b = 0; b < p->nblocks; b++) {
    p->block_start[b] = at;
    for (int i = 0; i < ch[b].size; i++, at++) {
      int r = grp[ch[b].start + i];
      p->members[at] = r;
      p->block_of[r] = b;
      p->index_in_block[r] = i;
    }
  }
  p->block_start[p->nblocks] = at;
  for (int i = 0; i < p->nblocks * p->f; i++) p->hosts[i] = -1;
}

/* Partition the compute ranks into blocks, every group on its own. */
static int make_blocks(plan_work *w, fuze_plan *p) {
  int *gs = NULL, *grp = NULL, ng = 0, nb = 0;
  int rc = group_ranks(w, &gs, &grp, &ng);
  if (rc) return rc;
  p->ncompute = gs[ng];
  plan_chunk *ch = malloc(sizeof(plan_chunk) * ((size_t)p->ncompute + 1));
  if (!ch) rc = FUZE_ERR_NOMEM;
  for (int g = 0; !rc && g < ng; g++)
    nb += cut_group(w, grp, gs[g], gs[g + 1] - gs[g], ch + nb);
  if (!rc) {
    qsort(ch, (size_t)nb, sizeof *ch, cmp_chunk);
    p->nblocks = nb;
    rc = alloc_plan(p, p->nranks, p->ncompute, nb, p->f);
  }
  if (!rc) fill_blocks(p, ch, grp);
  free(ch), free(gs), free(grp);
  return rc;
}

/* Preference order of hosts: fewer backups, then spare ranks (they hold no
 * primaries, so a backup there costs no compute rank memory), then lower rank.
 * A strict total order on ranks; -1 (no rank) loses to every rank. */
static int better_host(const plan_work *w, int r, int s) {
  if (s < 0) return 1;
  if (r < 0) return 0;
  if (w->load[r] != w->load[s]) return w->load[r] < w->load[s];
  if (is_spare(w, r) != is_spare(w, s)) return is_spare(w, r);
  return r < s;
}

static int pick(const plan_work *w, int r, int s) { return better_host(w, r, s) ? r : s; }

static void tree_build(plan_work *w) {
  for (int x = w->in->nranks - 1; x >= 1; x--)
    w->tree[x] = pick(w, w->tree[2 * x], w->tree[2 * x + 1]);
}

/* Best rank among leaves [lo, hi), -1 when empty. */
static int tree_best(const plan_work *w, int lo, int hi) {
  int best = -1, n = w->in->nranks;
  for (lo += n, hi += n; lo < hi; lo >>= 1, hi >>= 1) {
    if (lo & 1) best = pick(w, w->tree[lo++], best);
    if (hi & 1) best = pick(w, w->tree[--hi], best);
  }
  return best;
}

static void add_load(plan_work *w, int rank, int delta) {
  w->load[rank] += delta;
  for (int x = (w->in->nranks + w->pos[rank]) >> 1; x >= 1; x >>= 1)
    w->tree[x] = pick(w, w->tree[2 * x], w->tree[2 * x + 1]);
}

static void use_domain(plan_work *w, int d) {
  if (w->mark[d]) return;
  w->mark[d] = 1;
  w->used[w->nused++] = d;
}

/* Mark the domains backup `skip` of block b may not use: its members' and
 * its other backups' domains. */
static void mark_block(plan_work *w, const fuze_plan *p, int b, int skip) {
  for (int i = 0; i < w->nused; i++) w->mark[w->used[i]] = 0;
  w->nused = 0;
  for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++)
    use_domain(w, p->domain[p->members[i]]);
  for (int j = 0; j < p->f; j++) {
    int h = p->hosts[b * p->f + j];
    if (j != skip && h >= 0) use_domain(w, p->domain[h]);
  }
}

/* Best rank of an unmarked domain, -1 when every domain is marked: the
 * overall best when its domain is free, else the best of the runs of
 * domains between the marked ones. */
static int best_host(plan_work *w) {
  int top = w->tree[1];
  if (!w->mark[w->in->domain[top]]) return top;
  int *u = w->used, k = w->nused, best = -1, from = 0;
  for (int i = 1; i < k; i++) /* insertion sort: short, usually nearly sorted */
    for (int x = i; x > 0 && u[x - 1] > u[x]; x--) {
      int t = u[x];
      u[x] = u[x - 1], u[x - 1] = t;
    }
  for (int i = 0; i <= k; i++) {
    int to = i < k ? u[i] : w->ndom;
    if (from < to) best = pick(w, tree_best(w, w->dom_start[from], w->dom_start[to]), best);
    from = to + 1;
  }
  return best;
}

/* First pass: blocks in order, every backup to the best eligible host. */
static int place_greedy(plan_work *w, fuze_plan *p, char *eb, size_t el) {
  for (int b = 0; b < p->nblocks; b++) {
    for (int j = 0; j < p->f; j++) {
      mark_block(w, p, b, j);
      int h = best_host(w);
      if (h < 0) /* unreachable while blocks hold <= ndomains - f members */
        return plan_fail(eb, el, FUZE_ERR_CONFIG,
                         "block %d (%d members) finds only %d of faults=%d backup domains "
                         "outside it (%d domains)",
                         b, p->block_start[b + 1] - p->block_start[b], j, p->f, w->ndom);
      p->hosts[b * p->f + j] = h;
      add_load(w, h, 1);
    }
  }
  return FUZE_SUCCESS;
}

/* Move backup j of block b to a better host when that improves balance (the
 * target ends below the source's old load) or, at equal balance, moves a
 * backup from a compute rank to a spare. Both strictly decrease
 * (sum of squared loads, -backups on spares), so repeating terminates. No
 * eligible host is lighter than the overall best rank, so a backup whose
 * host is at most that light (or one above it, when it cannot move to a
 * spare) stays without a search. */
static int try_move(plan_work *w, fuze_plan *p, int b, int j) {
  int h = p->hosts[b * p->f + j], floor = w->load[w->tree[1]];
  if (w->load[h] <= floor) return 0;
  if (w->load[h] == floor + 1 && (w->nspare_dom == 0 || is_spare(w, h))) return 0;
  mark_block(w, p, b, j);
  int e = best_host(w);
  if (e < 0 || e == h) return 0;
  int lighter = w->load[e] + 1 < w->load[h];
  int to_spare = w->load[e] + 1 == w->load[h] && is_spare(w, e) && !is_spare(w, h);
  if (!lighter && !to_spare) return 0;
  add_load(w, h, -1);
  add_load(w, e, 1);
  p->hosts[b * p->f + j] = e;
  return 1;
}

/* Greedy can leave a host two above a host that was eligible: a later block
 * may be forced onto a host an earlier block chose while the lighter host it
 * skipped is ineligible for the later one. Repair by local moves until no
 * backup has an eligible host two below its own. */
static void rebalance(plan_work *w, fuze_plan *p) {
  int moved = 1;
  while (moved) {
    moved = 0;
    for (int b = 0; b < p->nblocks; b++)
      for (int j = 0; j < p->f; j++) moved |= try_move(w, p, b, j);
  }
}

static int work_init(plan_work *w, const fuze_plan_input *in) {
  memset(w, 0, sizeof *w);
  w->in = in;
  w->ndom = in->ndomains;
  w->nspare_dom = in->spares;
  w->max_block = fuze__plan_block_limit(in->f, in->max_block);
  size_t n = (size_t)in->nranks;
  w->dom_start = calloc((size_t)w->ndom + 1, sizeof(int));
  w->tree = malloc(sizeof(int) * 2 * n);
  w->pos = malloc(sizeof(int) * n);
  w->load = calloc(n, sizeof(int));
  w->mark = calloc((size_t)w->ndom, 1);
  /* A block's domains: <= max_block members (check_numbers keeps max_block
   * + f <= FUZE_PLAN_FIELD) and f backups. */
  w->used = malloc(sizeof(int) * ((size_t)w->max_block + (size_t)in->f));
  return w->dom_start && w->tree && w->pos && w->load && w->mark && w->used ? FUZE_SUCCESS
                                                                             : FUZE_ERR_NOMEM;
}

static void work_free(plan_work *w) {
  free(w->dom_start), free(w->tree), free(w->pos), free(w->load), free(w->mark), free(w->used);
}

static int build_steps(plan_work *w, fuze_plan *out, char *eb, size_t el) {
  int rc = index_domains(w, eb, el);
  if (rc) return rc;
  rc = make_blocks(w, out);
  if (rc == FUZE_ERR_NOMEM) return plan_fail(eb, el, rc, "plan: out of memory");
  if (rc) return rc;
  memcpy(out->domain, w->in->domain, sizeof(int) * (size_t)out->nranks);
  tree_build(w);
  rc = place_greedy(w, out, eb, el);
  if (rc) return rc;
  rebalance(w, out);
  return FUZE_SUCCESS;
}

int fuze__plan_build(const fuze_plan_input *in, fuze_plan *out, char *errbuf,
                     size_t errlen) {
  if (!out) return plan_fail(errbuf, errlen, FUZE_ERR_ARG, "plan: no output plan");
  memset(out, 0, sizeof *out);
  if (!in) return plan_fail(errbuf, errlen, FUZE_ERR_ARG, "plan: no input");
  int rc = check_numbers(in, errbuf, errlen);
  if (rc) return rc;
  *out = (fuze_plan){.nranks = in->nranks, .ndomains = in->ndomains, .spares = in->spares,
                     .f = in->f};
  plan_work w;
  rc = work_init(&w, in);
  if (rc) rc = plan_fail(errbuf, errlen, rc, "plan for %d ranks: out of memory", in->nranks);
  else rc = build_steps(&w, out, errbuf, errlen);
  work_free(&w);
  if (rc) fuze__plan_free(out);
  return rc;
}

void fuze__plan_free(fuze_plan *p) {
  if (!p) return;
  free(p->block_start), free(p->members), free(p->hosts);
  free(p->block_of), free(p->index_in_block), free(p->domain);
  memset(p, 0, sizeof *p);
}

int fuze__plan_load(const fuze_plan *p, int rank) {
  int n = 0;
  for (int i = 0; i < p->nblocks * p->f; i++) n += p->hosts[i] == rank;
  return n;
}

size_t fuze__plan_bytes(const fuze_plan *p) {
  if (!p->block_start) return 0;
  /* The counts alloc_plan asks for. */
  size_t n = (size_t)p->nranks, nb = (size_t)p->nblocks;
  return sizeof(int) * (3 * n + ((size_t)p->ncompute + 1) + (nb + 1) + (nb * (size_t)p->f + 1));
}

/* ---- brute-force tolerance check ---- */

/* For every domain, the blocks that lose one element (a member or a backup)
 * when it fails, once per element. */
typedef struct plan_check {
  const fuze_plan *p;
  int *touch_start, *touch; /* ndomains + 1 CSR */
  int *lost;                /* nblocks */
  int *set, depth;          /* the domain set being tried */
  int bad;                  /* first block losing more than f, -1 if none */
  long long nsets;
} plan_check;

static void touch_add(plan_check *c, int d, int b, int fill) {
  if (fill) c->touch[c->touch_start[d]++] = b;
  else c->touch_start[d + 1]++;
}

static void touch_scan(plan_check *c, int fill) {
  const fuze_plan *p = c->p;
  for (int b = 0; b < p->nblocks; b++) {
    for (int i = p->block_start[b]; i < p->block_start[b + 1]; i++)
      touch_add(c, p->domain[p->members[i]], b, fill);
    for (int j = 0; j < p->f; j++) touch_add(c, p->domain[p->hosts[b * p->f + j]], b, fill);
  }
}

static int check_init(plan_check *c, const fuze_plan *p) {
  memset(c, 0, sizeof *c);
  c->p = p, c->bad = -1;
  size_t nel = (size_t)p->ncompute + (size_t)p->nblocks * (size_t)p->f;
  c->touch_start = calloc((size_t)p->ndomains + 2, sizeof(int));
  c->touch = malloc(sizeof(int) * (nel + 1));
  c->lost = calloc((size_t)p->nblocks + 1, sizeof(int));
  c->set = malloc(sizeof(int) * ((size_t)p->f + 1));
  if (!c->touch_start || !c->touch || !c->lost || !c->set) return FUZE_ERR_NOMEM;
  touch_scan(c, 0);
  for (int d = 0; d < p->ndomains; d++) c->touch_start[d + 1] += c->touch_start[d];
  /* Filling advances every start to the next domain's start; shift back. */
  touch_scan(c, 1);
  memmove(c->touch_start + 1, c->touch_start, sizeof(int) * (size_t)p->ndomains);
  c->touch_start[0] = 0;
  return FUZE_SUCCESS;
}

static void fail_domain(plan_check *c, int d, int delta) {
  for (int i = c->touch_start[d]; i < c->touch_start[d + 1]; i++) {
    int b = c->touch[i];
    c->lost[b] += delta;
    if (delta > 0 && c->lost[b] > c->p->f && c->bad < 0) c->bad = b;
  }
}

/* Depth-first over domain sets in lexicographic order; losses only grow with
 * the set, so the first failing set found has no failing prefix. */
static int enum_sets(plan_check *c, int next) {
  if (c->depth > 0) c->nsets++;
  if (c->bad >= 0) return 1;
  if (c->depth == c->p->f) return 0;
  for (int d = next; d < c->p->ndomains; d++) {
    c->set[c->depth++] = d;
    fail_domain(c, d, 1);
    if (enum_sets(c, d + 1)) return 1;
    fail_domain(c, d, -1);
    c->depth--;
  }
  return 0;
}

int fuze__plan_check_detail(const fuze_plan *p, int *failing, int *nfailing, long long *nsets,
                            int *bad_block) {
  plan_check c;
  int rc = check_init(&c, p);
  if (rc == FUZE_SUCCESS) rc = enum_sets(&c, 0);
  if (rc == 1 && failing) memcpy(failing, c.set, sizeof(int) * (size_t)c.depth);
  if (nfailing) *nfailing = rc == 1 ? c.depth : 0;
  if (nsets) *nsets = c.nsets;
  if (bad_block) *bad_block = c.bad;
  free(c.touch_start), free(c.touch), free(c.lost), free(c.set);
  return rc;
}

int fuze__plan_check(const fuze_plan *p, int *failing, int *nfailing) {
  return fuze__plan_check_detail(p, failing, nfailing, NULL, NULL);
}

int fuze__plan_copy(fuze_plan *dst, const fuze_plan *p) {
  memset(dst, 0, sizeof *dst);
  *dst = *p;
  size_t nr = (size_t)p->nranks, nb = (size_t)p->nblocks;
  dst->block_start = malloc(sizeof(int) * (nb + 1));
  dst->members = malloc(sizeof(int) * ((size_t)p->ncompute + 1));
  dst->hosts = malloc(sizeof(int) * (nb * (size_t)p->f + 1));
  dst->block_of = malloc(sizeof(int) * nr);
  dst->index_in_block = malloc(sizeof(int) * nr);
  dst->domain = malloc(sizeof(int) * nr);
  if (!dst->block_start || !dst->members || !dst->hosts || !dst->block_of || !dst->index_in_block ||
      !dst->domain) {
    fuze__plan_free(dst);
    return FUZE_ERR_NOMEM;
  }
  memcpy(dst->block_start, p->block_start, sizeof(int) * (nb + 1));
  memcpy(dst->members, p->members, sizeof(int) * (size_t)p->ncompute);
  memcpy(dst->hosts, p->hosts, sizeof(int) * nb * (size_t)p->f);
  memcpy(dst->block_of, p->block_of, sizeof(int) * nr);
  memcpy(dst->index_in_block, p->index_in_block, sizeof(int) * nr);
  memcpy(dst->domain, p->domain, sizeof(int) * nr);
  return FUZE_SUCCESS;
}
