/* struct_model.h: the model the persistence tests (test_persist.c,
 * test_restart_load.c) keep of what they protect: arrays 'field' (doubles)
 * and 'ints', a stack of EB-byte elements and a map of 8-byte keys to VB-byte
 * values; random changes made to the live structures and the model alike;
 * and the check that the live structures equal the model. Include after
 * common.h with MODEL_MAXN defined (the most stack elements and map pairs). */
#ifndef FUZE_STRUCT_MODEL_H
#define FUZE_STRUCT_MODEL_H

#define EB 12
#define VB 20

typedef struct state {
  size_t na, ni, sn, mn;
  double a[4096];
  int32_t iv[1024];
  unsigned char st[MODEL_MAXN][EB];
  uint64_t keys[MODEL_MAXN];
  unsigned char vals[MODEL_MAXN][VB];
} state;

/* How much one mutation changes: every 1..a_stride-th double, every 1..3rd
 * int; ops_base + below(ops_range) operations, each a push (while the stack
 * has fewer than stack_max elements, with odds 1 - 1/push_odds) or a pop,
 * then a remove (odds 1/remove_odds, when the key is there) or a put of a
 * key below `keys`. */
typedef struct model_mix {
  int a_stride, ops_base, ops_range, push_odds, remove_odds;
  size_t stack_max;
  uint64_t keys;
} model_mix;

static void model_mutate(uint64_t *rng, const model_mix *x, state *s, double *a, int32_t *iv,
                         fuze_stack *st, fuze_map *m) {
  for (size_t i = 0; i < s->na; i += 1 + t_below(rng, (uint64_t)x->a_stride))
    s->a[i] = a[i] = (double)t_rng(rng);
  for (size_t i = 0; i < s->ni; i += 1 + t_below(rng, 3)) s->iv[i] = iv[i] = (int32_t)t_rng(rng);
  int ops = (int)t_below(rng, (uint64_t)x->ops_range) + x->ops_base;
  for (int o = 0; o < ops; o++) {
    unsigned char e[EB], v[VB];
    if (s->sn < x->stack_max && t_below(rng, (uint64_t)x->push_odds)) {
      t_fill(rng, e, EB);
      T_EQ_INT(fuze_stack_push(st, e), FUZE_SUCCESS, "push");
      memcpy(s->st[s->sn++], e, EB);
    } else if (s->sn) {
      T_EQ_INT(fuze_stack_pop(st, e), FUZE_SUCCESS, "pop");
      s->sn--;
    }
    uint64_t k = t_below(rng, x->keys);
    long at = -1;
    for (size_t i = 0; i < s->mn; i++)
      if (s->keys[i] == k) at = (long)i;
    if (at >= 0 && t_below(rng, (uint64_t)x->remove_odds) == 0) {
      T_EQ_INT(fuze_map_remove(m, &k), FUZE_SUCCESS, "remove");
      s->mn--;
      s->keys[at] = s->keys[s->mn];
      memcpy(s->vals[at], s->vals[s->mn], VB);
    } else if (s->mn < MODEL_MAXN) {
      t_fill(rng, v, VB);
      T_EQ_INT(fuze_map_put(m, &k, v), FUZE_SUCCESS, "put");
      if (at < 0) {
        at = (long)s->mn++;
        s->keys[at] = k;
      }
      memcpy(s->vals[at], v, VB);
    }
  }
}

static int model_fe_check(const void *k, const void *v, void *arg) {
  const state *s = arg;
  uint64_t key;
  memcpy(&key, k, 8);
  for (size_t i = 0; i < s->mn; i++)
    if (s->keys[i] == key) return memcmp(v, s->vals[i], VB) ? 1 : 0;
  return 1;
}

/* Live structures equal the model (what, when: for the messages). */
static void model_compare(const char *what, const state *s, const double *a, const int32_t *iv,
                          fuze_stack *st, fuze_map *m, const char *when) {
  T_CHECK(!memcmp(a, s->a, s->na * sizeof *a), "%s %s: array 'field' differs", what, when);
  T_CHECK(!memcmp(iv, s->iv, s->ni * sizeof *iv), "%s %s: array 'ints' differs", what, when);
  T_CHECK(fuze_stack_size(st) == s->sn, "%s %s: stack size %zu, expected %zu", what, when,
          fuze_stack_size(st), s->sn);
  for (size_t i = 0; i < s->sn && i < fuze_stack_size(st); i++) {
    unsigned char e[EB];
    fuze_stack_at(st, i, e);
    T_CHECK(!memcmp(e, s->st[i], EB), "%s %s: stack element %zu differs", what, when, i);
  }
  T_CHECK(fuze_map_size(m) == s->mn, "%s %s: map size %zu, expected %zu", what, when,
          fuze_map_size(m), s->mn);
  T_CHECK(fuze_map_foreach(m, model_fe_check, (void *)s) == 0, "%s %s: map contents differ", what,
          when);
}

#endif
