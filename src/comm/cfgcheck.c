/* cfgcheck: fuze_init compares the effective configuration of every rank
 * (the string plus FUZE_<KEY> environment overrides) before any collective
 * that depends on it: ranks that disagree on code, spares, domain, faults or
 * the injections would otherwise hang or crash in mismatched collectives.
 *
 * The exchange cannot itself mismatch: every rank sends a fixed-size record
 * (a hash of every key's canonical text and the mask of keys set from the
 * environment); only when the records differ does every rank, knowing the
 * same records, exchange the texts of the first differing key, lengths first
 * and contents after. Every rank then builds the same message. */
#include "comm/cfgcheck.h"

#include "comm/coll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* verbose only decides what is printed (and which rank prints it): it may
 * differ across ranks. */
#define SKIPPED(key) ((key) == FUZE_KEY_VERBOSE)
#define REC (FUZE_KEY_COUNT + 1) /* hashes of every key, then the env mask */
#define QUOTE_MAX 64             /* characters of a value quoted in the message */

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

/* "rank 3" or "ranks 0-2,5" for the ranks r with in[r] set. */
static void rank_list(const char *in, int n, char *out, size_t len) {
  int count = 0;
  for (int r = 0; r < n; r++) count += in[r] != 0;
  size_t o = (size_t)snprintf(out, len, "%s", count == 1 ? "rank " : "ranks ");
  int first = 1;
  for (int r = 0; r < n && o < len; r++) {
    if (!in[r]) continue;
    int e = r;
    while (e + 1 < n && in[e + 1]) e++;
    if (e == r) o += (size_t)snprintf(out + o, len - o, "%s%d", first ? "" : ",", r);
    else o += (size_t)snprintf(out + o, len - o, "%s%d-%d", first ? "" : ",", r, e);
    first = 0;
    r = e;
  }
  if (o >= len && len > 4) memcpy(out + len - 4, "...", 4);
}

/* The message: per distinct value, in order of its lowest rank, which ranks
 * have it and whether the environment set it there. */
static int mismatch_message(fuze_net *net, int key, const char *texts, const int *displ,
                            const uint64_t *recs, const char *others) {
  const char *name = fuze__name_of(&fuze__names_key, key);
  char var[40] = "FUZE_", msg[FUZE_MSG_LEN], list[160];
  for (size_t j = 0; name[j] && j < sizeof var - 6; j++)
    var[5 + j] = (char)(name[j] >= 'a' && name[j] <= 'z' ? name[j] - 32 : name[j]);
  int n = net->size, groups = 0;
  char *done = calloc((size_t)n, 2), *in = done ? done + n : NULL;
  if (!done) return fuze__error(net->msg, FUZE_ERR_CONFIG, "config key '%s' differs across ranks", name);
  size_t o = (size_t)snprintf(msg, sizeof msg, "config key '%s' differs across ranks: ", name);
  for (int r = 0; r < n; r++) {
    if (done[r]) continue;
    const char *v = texts + displ[r];
    int nin = 0, nenv = 0;
    memset(in, 0, (size_t)n);
    for (int q = r; q < n; q++) {
      in[q] = !done[q] && !strcmp(texts + displ[q], v);
      done[q] |= in[q];
      nin += in[q];
      nenv += in[q] && (recs[(size_t)q * REC + FUZE_KEY_COUNT] >> key & 1);
    }
    rank_list(in, n, list, sizeof list);
    if (o < sizeof msg)
      o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s %s '%.*s'%s", groups++ ? ", " : "",
                            list, nin == 1 ? "has" : "have", QUOTE_MAX, v,
                            strlen(v) > QUOTE_MAX ? "..." : "");
    if (nenv && o < sizeof msg) {
      for (int q = 0; q < n; q++) in[q] = in[q] && (recs[(size_t)q * REC + FUZE_KEY_COUNT] >> key & 1);
      if (nenv == nin) o += (size_t)snprintf(msg + o, sizeof msg - o, " (from environment variable %s)", var);
      else {
        rank_list(in, n, list, sizeof list);
        o += (size_t)snprintf(msg + o, sizeof msg - o, " (from environment variable %s on %s)", var, list);
      }
    }
  }
  free(done);
  if (others[0] && o < sizeof msg) snprintf(msg + o, sizeof msg - o, "; also differ: %s", others);
  return fuze__error(net->msg, FUZE_ERR_CONFIG, "%s", msg);
}

/* Every rank's text of `key`: lengths (fixed size) first, then contents. */
static int gather_texts(fuze_net *net, const fuze_config *cfg, int key, const uint64_t *recs,
                        const char *others) {
  char *mine = malloc(FUZE_CONFIG_TEXT_MAX);
  int n = net->size, len = 0;
  int *lens = malloc(sizeof(int) * 2 * (size_t)n);
  if (mine) len = (int)strlen(fuze__config_text(cfg, key, mine, FUZE_CONFIG_TEXT_MAX)) + 1;
  int rc = fuze__agree(net, mine && lens ? FUZE_SUCCESS : FUZE_NOMEM(net->msg, "fuze_init: config check"));
  char *texts = NULL;
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, net->comm));
  if (!rc) {
    size_t total = 0;
    for (int r = 0; r < n; r++) lens[n + r] = (int)total, total += (size_t)lens[r];
    texts = malloc(total ? total : 1);
    rc = fuze__agree(net, texts ? FUZE_SUCCESS : FUZE_NOMEM(net->msg, "fuze_init: config check"));
  }
  if (!rc)
    rc = FUZE_MPI(net->msg, MPI_Allgatherv(mine, len, MPI_CHAR, texts, lens, lens + n, MPI_CHAR, net->comm));
  if (!rc) rc = mismatch_message(net, key, texts, lens + n, recs, others);
  free(texts);
  free(lens);
  free(mine);
  return rc;
}

int fuze__config_compare(fuze_net *net, const fuze_config *cfg) {
  uint64_t rec[REC];
  char *text = malloc(FUZE_CONFIG_TEXT_MAX);
  uint64_t *recs = malloc(sizeof rec * (size_t)net->size);
  for (int k = 0; k < FUZE_KEY_COUNT && text; k++)
    rec[k] = SKIPPED(k) ? 0 : fnv1a(fuze__config_text(cfg, k, text, FUZE_CONFIG_TEXT_MAX));
  rec[FUZE_KEY_COUNT] = 0; /* bit k: key k's value came from FUZE_<KEY> */
  for (int k = 0; k < FUZE_KEY_COUNT; k++)
    if (cfg->source[k] == FUZE_SOURCE_ENV) rec[FUZE_KEY_COUNT] |= 1ull << k;
  int rc = fuze__agree(net, text && recs ? FUZE_SUCCESS : FUZE_NOMEM(net->msg, "fuze_init: config check"));
  if (!rc) rc = fuze__allgather_u64(net, net->comm, rec, REC, recs);
  int first = -1;
  char others[160] = "";
  size_t o = 0;
  for (int k = 0; k < FUZE_KEY_COUNT && !rc; k++) {
    int differs = 0;
    for (int r = 1; r < net->size; r++) differs |= recs[(size_t)r * REC + k] != recs[k];
    if (!differs) continue;
    if (first < 0) first = k;
    else if (o < sizeof others)
      o += (size_t)snprintf(others + o, sizeof others - o, "%s%s", o ? ", " : "",
                            fuze__name_of(&fuze__names_key, k));
  }
  if (!rc && first >= 0) rc = gather_texts(net, cfg, first, recs, others);
  free(recs);
  free(text);
  return rc;
}
