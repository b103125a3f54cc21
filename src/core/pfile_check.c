/* pfile_check: everything a model must satisfy before it is written or
 * after it is read (the reader: FUZE_ERR_CORRUPT, the writer: FUZE_ERR_ARG):
 * the plan, the structures, the backup regions and the code of every block;
 * and the coefficient matrices the file stores. */
#include "core/code.h"
#include "core/pfile_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Recompute block_of and index_in_block from members (entries out of range
 * are skipped; fuze__pf_plan_check rejects them). */
static void plan_derive(fuze_plan *p) {
  for (int r = 0; r < p->nranks; r++) p->block_of[r] = -1, p->index_in_block[r] = -1;
  for (int b = 0; b < p->nblocks; b++)
    for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++) {
      int r = p->members[x];
      if (r < 0 || r >= p->nranks) continue;
      p->block_of[r] = b, p->index_in_block[r] = x - p->block_start[b];
    }
}

static int plan_check_scalars(const fuze_plan *p, char *msg) {
  if (p->nranks < 1 || p->nranks > FUZE_PF_MAX_RANKS) return bad(msg, "plan: %d ranks", p->nranks);
  if (p->f < 1 || p->f > FUZE_MAX_FAULTS)
    return bad(msg, "plan: faults=%d out of 1..%d", p->f, FUZE_MAX_FAULTS);
  if (p->ndomains < 1 || p->ndomains > p->nranks)
    return bad(msg, "plan: %d domains for %d ranks", p->ndomains, p->nranks);
  if (p->spares < 0 || p->spares >= p->ndomains)
    return bad(msg, "plan: %d spare domains of %d", p->spares, p->ndomains);
  if (p->nblocks < 1 || p->nblocks > p->nranks)
    return bad(msg, "plan: %d blocks for %d ranks", p->nblocks, p->nranks);
  if (!p->domain || !p->block_start || !p->members || !p->hosts || !p->block_of ||
      !p->index_in_block)
    return bad(msg, "plan: an array is missing");
  return 0;
}

static int plan_check_domains(const fuze_plan *p, char *msg) {
  int *seen = calloc((size_t)p->ndomains, sizeof *seen), ncompute = 0, rc = 0;
  if (!seen) return FUZE_NOMEM(msg, "checking the plan");
  for (int r = 0; r < p->nranks && !rc; r++) {
    int d = p->domain[r];
    if (d < 0 || d >= p->ndomains)
      rc = bad(msg, "plan: rank %d in domain %d, outside 0..%d", r, d, p->ndomains - 1);
    else
      seen[d]++, ncompute += !is_spare_domain(p, d);
  }
  for (int d = 0; d < p->ndomains && !rc; d++)
    if (!seen[d]) rc = bad(msg, "plan: domain %d holds no rank", d);
  if (!rc && ncompute != p->ncompute)
    rc = bad(msg, "plan: %d compute ranks, the domains give %d", p->ncompute, ncompute);
  free(seen);
  return rc;
}

static int plan_check_blocks(const fuze_plan *p, char *msg) {
  if (p->block_start[0] != 0 || p->block_start[p->nblocks] != p->ncompute)
    return bad(msg, "plan: block_start spans %d..%d, expected 0..%d", p->block_start[0],
               p->block_start[p->nblocks], p->ncompute);
  for (int b = 0; b < p->nblocks; b++) {
    long long k = (long long)p->block_start[b + 1] - p->block_start[b];
    if (k < 1 || k + p->f > FUZE_GF_MEMBERS)
      return bad(msg, "plan: block %d has %lld members with faults=%d", b, k, p->f);
  }
  return 0;
}

/* Every compute rank exactly once, ascending within its block, no two members
 * of a block in one domain; block_of/index_in_block agree. */
static int plan_check_members(const fuze_plan *p, char *msg) {
  int *cnt = calloc((size_t)p->nranks, sizeof *cnt), rc = 0;
  if (!cnt) return FUZE_NOMEM(msg, "checking the plan");
  for (int b = 0; b < p->nblocks && !rc; b++)
    for (int x = p->block_start[b]; x < p->block_start[b + 1] && !rc; x++) {
      int r = p->members[x];
      if (r < 0 || r >= p->nranks)
        rc = bad(msg, "plan: member %d is rank %d", x, r);
      else if (is_spare_domain(p, p->domain[r]))
        rc = bad(msg, "plan: spare rank %d is a member", r);
      else if (cnt[r]++)
        rc = bad(msg, "plan: rank %d is a member twice", r);
      else if (x > p->block_start[b] && p->members[x - 1] >= r)
        rc = bad(msg, "plan: block %d members not ascending", b);
      for (int y = p->block_start[b]; y < x && !rc; y++)
        if (p->domain[p->members[y]] == p->domain[r])
          rc = bad(msg, "plan: block %d holds two ranks of domain %d", b, p->domain[r]);
    }
  for (int r = 0; r < p->nranks && !rc; r++) {
    int spare = is_spare_domain(p, p->domain[r]);
    if (!spare && !cnt[r])
      rc = bad(msg, "plan: compute rank %d is in no block", r);
    else if (spare && (p->block_of[r] != -1 || p->index_in_block[r] != -1))
      rc = bad(msg, "plan: spare rank %d has a block", r);
    else if (!spare && (p->block_of[r] < 0 || p->block_of[r] >= p->nblocks ||
                        p->members[p->block_start[p->block_of[r]] + p->index_in_block[r]] != r))
      rc = bad(msg, "plan: block_of/index_in_block of rank %d disagree with members", r);
  }
  free(cnt);
  return rc;
}

/* Hosts: in range, distinct domains per block, none in a member's domain. */
static int plan_check_hosts(const fuze_plan *p, char *msg) {
  for (int b = 0; b < p->nblocks; b++)
    for (int j = 0; j < p->f; j++) {
      int h = p->hosts[b * p->f + j];
      if (h < 0 || h >= p->nranks)
        return bad(msg, "plan: backup %d of block %d on rank %d, outside 0..%d", j, b, h,
                   p->nranks - 1);
      for (int jj = 0; jj < j; jj++)
        if (p->domain[p->hosts[b * p->f + jj]] == p->domain[h])
          return bad(msg, "plan: two backups of block %d in domain %d", b, p->domain[h]);
      for (int x = p->block_start[b]; x < p->block_start[b + 1]; x++)
        if (p->domain[p->members[x]] == p->domain[h])
          return bad(msg, "plan: backup %d of block %d shares domain %d with a member", j, b,
                     p->domain[h]);
    }
  return 0;
}

/* derive: fill block_of/index_in_block from members once block_start is
 * known to be sane (the reader); otherwise they are checked as given. */
int fuze__pf_plan_check(fuze_plan *p, int derive, char *msg) {
  if (plan_check_scalars(p, msg) || plan_check_domains(p, msg) || plan_check_blocks(p, msg))
    return -1;
  if (derive) plan_derive(p);
  if (plan_check_members(p, msg) || plan_check_hosts(p, msg)) return -1;
  return 0;
}

static int name_ok(const char *name) {
  size_t n = strnlen(name, FUZE_PFILE_NAME_MAX);
  return n >= 1 && n < FUZE_PFILE_NAME_MAX;
}

static int is_spare_rank(const fuze_pfile *m, int r) { return m->plan.block_of[r] < 0; }

static int check_array(const fuze_pfile *m, const fuze_pstruct *s, char *msg) {
  /* An unnamed derived datatype has an empty name: stored opaque. */
  if (strnlen(s->type_name, sizeof s->type_name) >= sizeof s->type_name)
    return bad(msg, "array '%s': MPI type name not terminated", s->name);
  if (s->elem < 1 || s->elem > (1u << 20))
    return bad(msg, "array '%s': element size %zu out of 1..2^20", s->name, s->elem);
  if (!s->rank_counts) return bad(msg, "array '%s': no rank_counts", s->name);
  for (int r = 0; r < m->ranks; r++) {
    if (is_spare_rank(m, r) && s->rank_counts[r])
      return bad(msg, "array '%s': spare rank %d has %" PRIu64 " elements", s->name, r,
                 s->rank_counts[r]);
    if (s->rank_counts[r] > (uint64_t)(SIZE_MAX / 4) / s->elem)
      return bad(msg, "array '%s': rank %d has %" PRIu64 " elements", s->name, r,
                 s->rank_counts[r]);
  }
  if (s->count != s->rank_counts[m->rank])
    return bad(msg, "array '%s': %zu elements, rank_counts says %" PRIu64, s->name, s->count,
               s->rank_counts[m->rank]);
  if (s->kb || s->nb || s->cap || s->seq || s->keys)
    return bad(msg, "array '%s': stack/map fields set", s->name);
  if (s->count && !s->data) return bad(msg, "array '%s': no data", s->name);
  return 0;
}

static int check_fobj(const fuze_pfile *m, const fuze_pstruct *s, char *msg) {
  const char *kn = fuze__ps_kind_name(s->kind);
  int map = s->kind == FUZE_PS_MAP;
  if (s->nb < 1 || s->nb > (1u << 30) || (map ? s->kb < 1 || s->kb > (1u << 30) : s->kb != 0))
    return bad(msg, "%s '%s': key/value sizes %zu/%zu", kn, s->name, s->kb, s->nb);
  size_t a, b2;
  if (s->cap < 1 || __builtin_mul_overflow(s->cap, s->nb, &a) ||
      __builtin_mul_overflow(s->cap, s->kb * FUZE_GF_MEMBERS, &b2) || a > SIZE_MAX / 4 ||
      b2 > SIZE_MAX / 4)
    return bad(msg, "%s '%s': capacity %zu out of range", kn, s->name, s->cap);
  if (s->count > s->cap)
    return bad(msg, "%s '%s': %zu entries above capacity %zu", kn, s->name, s->count, s->cap);
  if (is_spare_rank(m, m->rank) && (s->count || s->seq))
    return bad(msg, "%s '%s': a spare rank holds entries", kn, s->name);
  if (s->elem || s->type_name[0] || s->rank_counts)
    return bad(msg, "%s '%s': array fields set", kn, s->name);
  if (s->count && (!s->data || (map && !s->keys))) return bad(msg, "%s '%s': no data", kn, s->name);
  if (!map && s->keys) return bad(msg, "stack '%s': keys set", s->name);
  return 0;
}

int fuze__pf_check_structs(const fuze_pfile *m, char *msg) {
  if (m->nstructs < 0 || m->nstructs > FUZE_PF_MAX_STRUCTS || (m->nstructs && !m->structs))
    return bad(msg, "%d structures", m->nstructs);
  for (int i = 0; i < m->nstructs; i++) {
    const fuze_pstruct *s = &m->structs[i];
    if (!name_ok(s->name))
      return bad(msg, "structure %d: name must be 1..%d bytes", i, FUZE_PFILE_NAME_MAX - 1);
    for (int j = 0; j < i; j++)
      if (strcmp(m->structs[j].name, s->name) == 0)
        return bad(msg, "structure name '%s' used twice", s->name);
    int rc = s->kind == FUZE_PS_ARRAY ? check_array(m, s, msg)
             : s->kind == FUZE_PS_STACK || s->kind == FUZE_PS_MAP
                 ? check_fobj(m, s, msg)
                 : bad(msg, "structure '%s': unknown kind %d", s->name, s->kind);
    if (rc) return rc;
  }
  return 0;
}

static int check_regions(const fuze_pfile *m, char *msg) {
  const fuze_plan *p = &m->plan;
  if (m->nregions != fuze__pf_expected_regions(m, m->rank) || (m->nregions && !m->regions))
    return bad(msg, "%d backup regions, the plan gives rank %d %d", m->nregions, m->rank,
               fuze__pf_expected_regions(m, m->rank));
  int i = 0;
  for (int s = 0; s < m->nstructs; s++)
    for (int b = 0; b < p->nblocks; b++)
      for (int j = 0; j < p->f; j++) {
        if (p->hosts[b * p->f + j] != m->rank) continue;
        const fuze_pregion *g = &m->regions[i++];
        if (g->s != s || g->block != b || g->j != j)
          return bad(msg, "region %d is (structure %d, block %d, backup %d), expected (%d, %d, %d)",
                     i - 1, g->s, g->block, g->j, s, b, j);
        size_t want = fuze__pfile_region_bytes(m, s, b);
        if (g->bytes != want)
          return bad(msg, "region of '%s' block %d backup %d has %zu bytes, expected %zu",
                     m->structs[s].name, b, j, g->bytes, want);
        if (g->bytes && !g->data) return bad(msg, "region without data");
      }
  return 0;
}

int fuze__pf_check_codes(const fuze_pfile *m, char *msg) {
  for (int b = 0; b < m->plan.nblocks; b++) {
    fuze_code c;
    int rc = fuze__code_init(&c, block_k(&m->plan, b), m->f, m->code);
    fuze__code_free(&c);
    if (rc == FUZE_ERR_NOMEM) return FUZE_NOMEM(msg, "checking the codes");
    if (rc) return bad(msg, "block %d: %s", b, fuze__thread_msg());
  }
  return 0;
}

/* Everything a model must satisfy (reader: CORRUPT, writer: ARG). */
int fuze__pf_model_check(const fuze_pfile *m, char *msg) {
  if (m->version < 1) return bad(msg, "format version %u", m->version);
  if (m->ranks != m->plan.nranks || m->f != m->plan.f || m->spares != m->plan.spares)
    return bad(msg, "ranks/faults/spares %d/%d/%d differ from the plan's %d/%d/%d", m->ranks, m->f,
               m->spares, m->plan.nranks, m->plan.f, m->plan.spares);
  if (!fuze__name_known(&fuze__names_code, m->code)) return bad(msg, "unknown code %d", m->code);
  if (m->ckpt_calls < 0) return bad(msg, "ckpt_calls %" PRId64, m->ckpt_calls);
  if (fuze__pf_plan_check((fuze_plan *)&m->plan, 0, msg)) return -1;
  if (m->rank < 0 || m->rank >= m->ranks) return bad(msg, "rank %d of %d", m->rank, m->ranks);
  if (fuze__pf_check_codes(m, msg) || fuze__pf_check_structs(m, msg) || check_regions(m, msg))
    return -1;
  return 0;
}

/* The f x k_b coefficient matrices of every block, in block order. */
int fuze__pf_all_coefficients(const fuze_pfile *m, unsigned char **out, size_t *n) {
  const fuze_plan *p = &m->plan;
  size_t total = (size_t)p->ncompute * (size_t)p->f, o = 0;
  unsigned char *c = malloc(total ? total : 1);
  if (!c) return FUZE_ERR_NOMEM;
  for (int b = 0; b < p->nblocks; b++) {
    fuze_code code;
    int rc = fuze__code_init(&code, block_k(p, b), p->f, m->code);
    if (rc) {
      free(c);
      return rc;
    }
    memcpy(c + o, code.coef, (size_t)p->f * (size_t)block_k(p, b));
    o += (size_t)p->f * (size_t)block_k(p, b);
    fuze__code_free(&code);
  }
  *out = c, *n = total;
  return FUZE_SUCCESS;
}
