/* map: fused maps. The primary keeps pairs in slot order with a hash index;
 * insert takes the next slot, update sends one value delta, remove moves the
 * member's last slot into the hole (Fig. 5), so backups never hold more fused
 * nodes than the largest member has pairs (Theorem 1). */
#include "data/fused.h"
#include "data/threads.h"

#include <string.h>

static int usable(const fuze_map *m, const char *fn, const void *key) {
  if (!m) return FUZE_ERR(FUZE_ERR_ARG, "%s: map is NULL", fn);
  if (m->o.ctx->finalized) return FUZE_ERR(FUZE_ERR_STATE, "%s: called after fuze_finalize", fn);
  if (m->o.ctx->lost)
    return CTX_ERR(m->o.ctx, FUZE_ERR_STATE, "%s('%s'): this rank was wiped; the next collective "
                   "call recovers it", fn, m->o.name);
  if (!key) return CTX_ERR(m->o.ctx, FUZE_ERR_ARG, "%s('%s'): key is NULL", fn, m->o.name);
  return FUZE_SUCCESS;
}

static int put(fuze_map *m, const char *fn, const void *key, const void *value, int *inserted) {
  int rc = usable(m, fn, key);
  if (rc) return rc;
  if (!value) return CTX_ERR(m->o.ctx, FUZE_ERR_ARG, "%s('%s'): value is NULL", fn, m->o.name);
  fuze_keypos kp;
  int64_t s = fuze__map_lookup(&m->o, key, &kp);
  rc = s >= 0 ? fuze__fobj_set(&m->o, (size_t)s, NULL, value, 1) : fuze__fobj_append_at(&m->o, key, value, 1, &kp);
  if (!rc && inserted) *inserted = s < 0;
  return rc;
}


static int map_get(const fuze_map *m, const void *key, void *value) {
  int rc = usable(m, "fuze_map_get", key);
  if (rc) return rc;
  int64_t s = fuze__map_find(&m->o, key);
  if (s < 0) return CTX_ERR(m->o.ctx, FUZE_ERR_NOT_FOUND, "fuze_map_get('%s'): key not found", m->o.name);
  if (value) memcpy(value, m->o.vals + (size_t)s * m->o.nb, m->o.nb);
  return FUZE_SUCCESS;
}

static int map_remove(fuze_map *m, const void *key) {
  int rc = usable(m, "fuze_map_remove", key);
  if (rc) return rc;
  fuze_keypos kp;
  int64_t s = fuze__map_lookup(&m->o, key, &kp);
  if (s < 0) return CTX_ERR(m->o.ctx, FUZE_ERR_NOT_FOUND, "fuze_map_remove('%s'): key not found", m->o.name);
  return fuze__fobj_remove_slot_at(&m->o, (size_t)s, 1, &kp);
}

static int map_foreach(const fuze_map *m, int (*fn)(const void *, const void *, void *), void *arg) {
  for (size_t s = 0; s < m->o.n; s++) {
    int rc = fn(m->o.keys + s * m->o.kb, m->o.vals + s * m->o.nb, arg);
    if (rc) return rc;
  }
  return FUZE_SUCCESS;
}

/* The public calls: the map's mutex and the context's gate (data/threads.h)
 * around each. The handle's own fields (ctx, name, sizes) never change. */
#define MAP_CALL(m, fn, call) FUZE_FOBJ_CALL(m, "map", fn, call)
#define MAP_MUT(m, fn, call) FUZE_FOBJ_MUT_CALL(m, "map", fn, call)

int fuze_map_put(fuze_map *m, const void *key, const void *value) {
  MAP_MUT(m, "fuze_map_put", put(m, "fuze_map_put", key, value, NULL));
}

int fuze_map_upsert(fuze_map *m, const void *key, const void *value, int *inserted) {
  MAP_MUT(m, "fuze_map_upsert", put(m, "fuze_map_upsert", key, value, inserted));
}

int fuze_map_get(const fuze_map *m, const void *key, void *value) {
  MAP_CALL(m, "fuze_map_get", map_get(m, key, value));
}

int fuze_map_remove(fuze_map *m, const void *key) {
  MAP_MUT(m, "fuze_map_remove", map_remove(m, key));
}

size_t fuze_map_size(const fuze_map *m) {
  if (!m) return 0;
  fuze_fobj *o = (fuze_fobj *)&m->o;
  if (fuze__op_enter(o, "fuze_map_size")) return 0;
  size_t n = o->n;
  fuze__op_leave(o);
  return n;
}

int fuze_map_foreach(const fuze_map *m, int (*fn)(const void *, const void *, void *), void *arg) {
  if (!m || !fn) return FUZE_ERR(FUZE_ERR_ARG, "fuze_map_foreach: map and fn must not be NULL");
  MAP_CALL(m, "fuze_map_foreach", map_foreach(m, fn, arg));
}
