/* kvstore: a sharded key-value store protected by fuze fused maps.
 *
 * In the spirit of the Dynamo example of the fused-backups paper (Section VI):
 * every compute rank owns the keys whose hash falls in its range and keeps
 * them in one fused map, fuze_map_create(ctx, "kvstore.kv", 8, VALUE_BYTES).
 * Its backups hold Reed-Solomon parity of the values (plus the slot -> key
 * index) instead of f full copies of every map.
 *
 * The run is a sequence of rounds. In every round each rank generates a batch
 * of operations (put 50%, get 30%, remove 20%) over a key space of --keys
 * 8-byte keys, from a generator seeded by (seed, round, rank), so the whole run
 * is deterministic. Operations travel to the owner rank (owner = hash(key) %
 * ranks) as fixed-size records with MPI_Alltoall + MPI_Alltoallv; the owner
 * applies them in a fixed order (by source rank, then by operation index) to
 * its fused map and returns one result record per operation (gets: found and
 * value; removes: found). Every --every rounds the ranks call
 * fuze_checkpoint(); after the last round, fuze_recover().
 *
 * The default recovery mode is "recovery=forward" (the paper's model for
 * services): survivors keep their state and a failed rank's map comes back as
 * of its last completed operation, so after FUZE_RECOVERED the run simply goes
 * on. The round counter is also protected (fuze_protect, one int64); with
 * recovery=rollback every rank returns to the last committed epoch, and the
 * restored counter says which round to redo from, so that mode works too.
 *
 * Verification, after the protected phase and outside its timing: every rank
 * replays the global operation sequence (it can regenerate every rank's
 * batches without communication) into a dense reference model and checks
 *   - that every get/remove result it received during the run is what the
 *     replay gives at that point of the sequence;
 *   - that the state of its map right after every FUZE_RECOVERED (an
 *     order-independent digest and the size) equals the replay at that round;
 *   - that its final map equals the replay for its range: fuze_map_size, a
 *     fuze_map_get of every key of its range (present with the right value,
 *     or FUZE_ERR_NOT_FOUND), and a fuze_map_foreach walk.
 *
 * Restart: with "dir=PATH" in the configuration every committed epoch is
 * persisted to PATH. When the job is killed (inject=kill:...) and the same
 * command is run again, fuze_init() returns FUZE_RESTARTED, fuze_map_create
 * brings back every rank's map and fuze_protect the round counter as of the
 * persisted epoch (decoding the files of lost failure domains), and the run
 * goes on from that round. The results of the rounds before it were checked
 * by the run that persisted it (this process has not seen them); the restored
 * maps are checked against the replay at the restart round, and everything
 * after it as above.
 *
 * The final answer is an order-independent digest of all the maps, printed
 * with the number of pairs: the same for the same options and rank count,
 * whatever failures, recoveries and restarts happened.
 *
 * Faults are injected by the library from the configuration, e.g.
 * "faults=1,domain=rank,inject=wipe:ranks=2:at=checkpoint:3", or
 * "faults=1,domain=rank,dir=/tmp/kv,inject=kill:rank=2:at=checkpoint:3".
 *
 * Exit status: 0 everything matches the replay, 1 mismatch or fuze error,
 * 2 bad options.
 */
#define _POSIX_C_SOURCE 200809L /* fuze_app_ulfm.h: getpid, nanosleep */
#include <fuze.h>
#include <mpi.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuze_app.h"
#include "fuze_app_ulfm.h"

#define KEY_BYTES 8
#define VALUE_BYTES 32
#define MAP_NAME "kvstore.kv"
#define ROUND_NAME "kvstore.round"
#define DEFAULT_CONFIG "recovery=forward"

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

typedef struct options {
  long rounds;            /* rounds of operations */
  long ops;               /* operations per rank per round */
  long keys;              /* size of the key space: keys are 0 .. keys-1 */
  long every;             /* fuze_checkpoint every this many rounds */
  uint64_t seed;          /* seed of the operation generator */
  const char *config;     /* user part of the fuze configuration (NULL: none) */
  long expect_recoveries; /* -1: not checked */
  int help;
} options;

static void usage(FILE *out) {
  fprintf(out,
          "usage: kvstore [--rounds N] [--ops N] [--keys N] [--every K] [--seed S]\n"
          "               [--config STRING] [--expect-recoveries N] [--help]\n"
          "\n"
          "A sharded key-value store (8-byte keys, %d-byte values) whose per-rank maps\n"
          "are protected by fuze fused maps, checked against a deterministic replay.\n"
          "\n"
          "  --rounds N       rounds of operations (default 24)\n"
          "  --ops N          operations per rank per round (default 1000)\n"
          "  --keys N         key space: keys 0 .. N-1 (default 8192)\n"
          "  --every K        fuze_checkpoint every K rounds (default 4)\n"
          "  --seed S         seed of the operation generator (default 1)\n"
          "  --config STRING  fuze configuration, appended to \"" DEFAULT_CONFIG "\", e.g.\n"
          "                   \"faults=1;domain=rank;inject=wipe:ranks=2:at=checkpoint:3\"\n"
          "                   (FUZE_<KEY> environment variables override its keys);\n"
          "                   with dir=PATH every epoch is persisted to PATH and the\n"
          "                   same command restarts a killed job from it\n"
          "  --expect-recoveries N\n"
          "                   also fail unless exactly N FUZE_RECOVERED were seen\n"
          "  --help           this text\n"
          "\n"
          "Exit status: 0 the store matches the replay, 1 mismatch or fuze error,\n"
          "2 bad options.\n",
          VALUE_BYTES);
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end = NULL;
  if (*s == '-' || *s == '\0') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0') return -1;
  *out = (uint64_t)v;
  return 0;
}

/* The options, in the order of the table below. */
enum {
  OPT_ROUNDS,
  OPT_OPS,
  OPT_KEYS,
  OPT_EVERY,
  OPT_SEED,
  OPT_CONFIG,
  OPT_EXPECT_RECOVERIES,
  OPT_HELP
};

static const fuze_app_option option_table[] = {
    [OPT_ROUNDS] = {"--rounds", FUZE_APP_VALUE},
    [OPT_OPS] = {"--ops", FUZE_APP_VALUE},
    [OPT_KEYS] = {"--keys", FUZE_APP_VALUE},
    [OPT_EVERY] = {"--every", FUZE_APP_VALUE},
    [OPT_SEED] = {"--seed", FUZE_APP_VALUE},
    [OPT_CONFIG] = {"--config", FUZE_APP_VALUE},
    [OPT_EXPECT_RECOVERIES] = {"--expect-recoveries", FUZE_APP_VALUE},
    [OPT_HELP] = {"--help", FUZE_APP_FLAG},
};

/* Returns 0, or -1 with a message in err. Accepts "--opt VALUE" and "--opt=VALUE". */
static int parse_options(int argc, char **argv, options *o, char *err, size_t errlen) {
  o->rounds = 24;
  o->ops = 1000;
  o->keys = 8192;
  o->every = 4;
  o->seed = 1;
  o->config = NULL;
  o->expect_recoveries = -1;
  o->help = 0;
  for (int i = 1; i < argc; i++) {
    const char *val = NULL;
    const int k = fuze_app_next_option(argc, argv, &i, option_table,
                                       sizeof option_table / sizeof option_table[0], &val, err,
                                       errlen);
    if (k < 0) return -1;
    int bad = 0;
    /* Limits: a round's records of one rank stay far below INT_MAX elements,
     * and the dense reference model (8 bytes per key) stays below 128 MiB. */
    switch (k) {
      case OPT_ROUNDS: bad = parse_long(val, 0, 1L << 20, &o->rounds); break;
      case OPT_OPS: bad = parse_long(val, 0, 1L << 20, &o->ops); break;
      case OPT_KEYS: bad = parse_long(val, 1, 1L << 24, &o->keys); break;
      case OPT_EVERY: bad = parse_long(val, 1, INT32_MAX, &o->every); break;
      case OPT_SEED: bad = parse_u64(val, &o->seed); break;
      case OPT_CONFIG: o->config = val; break;
      case OPT_EXPECT_RECOVERIES:
        bad = parse_long(val, 0, INT32_MAX, &o->expect_recoveries);
        break;
      default: o->help = 1; break;
    }
    if (bad) return fuze_app_bad_value(val, option_table[k].name, err, errlen);
  }
  if ((uint64_t)o->rounds * (uint64_t)o->ops > (UINT64_C(1) << 26)) {
    snprintf(err, errlen, "--rounds x --ops is %ld x %ld, more than 2^26 operations per rank",
             o->rounds, o->ops);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Deterministic operations                                                  */

/* splitmix64 finaliser: a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t z) {
  z += UINT64_C(0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* The rank that owns a key: hash(key) % ranks. */
static int owner_of(uint64_t key, int nranks) {
  return (int)(mix64(key ^ UINT64_C(0x6b76737461726521)) % (uint64_t)nranks);
}

enum { OP_PUT = 0, OP_GET = 1, OP_REMOVE = 2 };
static const char *const op_names[3] = {"put", "get", "remove"};

/* The generator of one rank's batch in one round. */
typedef struct opgen {
  uint64_t state;
} opgen;

static void opgen_init(opgen *g, uint64_t seed, long round, int rank) {
  g->state = mix64(mix64(mix64(seed) ^ (uint64_t)round) ^ ((uint64_t)rank << 1 | 1));
}

static uint64_t opgen_next(opgen *g) {
  g->state += UINT64_C(0x9e3779b97f4a7c15);
  return mix64(g->state);
}

/* The next operation: type (put 50%, get 30%, remove 20%) and key. */
static void opgen_op(opgen *g, long keys, int *type, uint64_t *key) {
  const uint64_t t = opgen_next(g) % 10;
  *type = t < 5 ? OP_PUT : (t < 8 ? OP_GET : OP_REMOVE);
  *key = opgen_next(g) % (uint64_t)keys;
}

/* Every operation of the run has a distinct stamp >= 1; a put stores a value
 * made from its stamp and key, so a value read back says which put wrote it
 * and can be validated byte by byte. */
static uint64_t op_stamp(long round, int rank, int nranks, long ops, long idx) {
  return ((uint64_t)round * (uint64_t)nranks + (uint64_t)rank) * (uint64_t)ops +
         (uint64_t)idx + 1;
}

static void make_value(uint64_t stamp, uint64_t key, unsigned char v[VALUE_BYTES]) {
  uint64_t w[VALUE_BYTES / 8];
  w[0] = stamp;
  w[1] = key;
  for (size_t i = 2; i < VALUE_BYTES / 8; i++) w[i] = mix64(stamp ^ mix64(key + i));
  memcpy(v, w, VALUE_BYTES);
}

/* The stamp of a well-formed value for key, or 0 when the bytes are not a
 * value any put of this run could have written for this key. */
static uint64_t value_stamp(const unsigned char v[VALUE_BYTES], uint64_t key) {
  uint64_t stamp;
  unsigned char want[VALUE_BYTES];
  memcpy(&stamp, v, sizeof stamp);
  if (stamp == 0) return 0;
  make_value(stamp, key, want);
  return memcmp(v, want, VALUE_BYTES) == 0 ? stamp : 0;
}

/* Order-independent digest of a set of pairs: the sum mod 2^64 of a hash of
 * each pair, keyed by the key. */
static uint64_t pair_hash(uint64_t key, const unsigned char v[VALUE_BYTES]) {
  uint64_t h = mix64(key ^ UINT64_C(0x70616972));
  for (size_t i = 0; i < VALUE_BYTES / 8; i++) {
    uint64_t w;
    memcpy(&w, v + 8 * i, sizeof w);
    h = mix64(h ^ w);
  }
  return h;
}

/* ------------------------------------------------------------------------ */
/* Records exchanged between requesters and owners                           */

typedef struct op_rec {
  uint64_t key;
  uint64_t stamp;  /* the operation's stamp (the value of a put is made from it) */
  uint32_t idx;    /* index of the operation in the requester's batch */
  uint32_t type;   /* OP_* */
  unsigned char value[VALUE_BYTES]; /* puts only */
} op_rec;

typedef struct res_rec {
  uint32_t idx;    /* the request's idx */
  int32_t found;   /* gets and removes: 1 found, 0 absent; puts: 0 */
  unsigned char value[VALUE_BYTES]; /* gets that found the key */
} res_rec;

/* Result kept by the requester for every one of its operations, by
 * round * ops + idx: for a get the stamp of the value read (0: absent,
 * RES_GARBAGE: bytes no put wrote), for a remove 1 found / 0 absent. */
#define RES_GARBAGE UINT64_MAX

/* A collective fuze call failed: it returns the same status on every rank,
 * rank 0 reports it with the library's message. */
static void report_fuze_error(const fuze_ctx *ctx, const char *call, int rc, long round) {
  if (!g_rank0) return;
  char where[48];
  snprintf(where, sizeof where, " after round %ld", round);
  fuze_app_fuze_error("kvstore", call, rc, where, fuze_last_error(ctx));
}

/* ------------------------------------------------------------------------ */
/* The store                                                                 */

/* State after a FUZE_RECOVERED, checked against the replay at round `round`. */
typedef struct recovery_check {
  long round;      /* rounds 0 .. round-1 had been applied */
  uint64_t digest; /* digest of this rank's map */
  size_t size;     /* fuze_map_size */
  int walk_ok;     /* the foreach walk and fuze_map_size agreed */
} recovery_check;

typedef struct store {
  MPI_Comm comm;
  int rank, nranks;
  const options *opt;
  fuze_ctx *ctx;
  fuze_map *map;
  MPI_Datatype op_type, res_type;
  /* Per-round buffers. */
  op_rec *mine, *sendops, *recvops;
  res_rec *sendres, *recvres;
  int *scount, *sdispl, *rcount, *rdispl;
  uint32_t *dest_pos; /* per destination fill position while packing */
  /* Results of this rank's operations, by round * ops + idx. */
  uint64_t *results;
  /* The first local error of a map operation on this rank. */
  int local_rc;
  char local_msg[512];
  /* Recoveries. */
  recovery_check *checks;
  int nchecks, cap_checks;
  /* Restart: the round the run resumed at (0: not restarted; the results of
   * earlier rounds were never seen by this process) and the restored map. */
  long first_round;
  int restarted;
  recovery_check restart;
  /* Real deaths (ULFM): joined is 1 on a rank that fuze_init brought in to
   * replace a dead one (FUZE_RECOVERED); fresh while its round counter is
   * still the restored one, until it first met the survivors. unchecked[t]
   * is 1 when round t was interrupted by a recovery and redone from maps
   * that held part of it: its get/remove results are not checked (the maps
   * after it are: a round applied again in full leaves every key it touches
   * as its last put or remove says, whatever part of it was applied before). */
  int joined, fresh;
  unsigned char *unchecked;
  int mpi_rc; /* the error of the last failed MPI call */
  /* Counters. */
  uint64_t ops_done;     /* operations issued by this rank (redone rounds included) */
  long rounds_redone;    /* rounds redone after a rollback */
  long ckpt_calls;       /* fuze_checkpoint calls */
  long recoveries;       /* FUZE_RECOVERED seen */
  double ckpt_seconds;   /* in fuze_checkpoint / fuze_recover (this rank) */
  double excluded;       /* time of the app's own checks inside the protected phase */
} store;

/* Collective over the app communicator, except on a replacement rank (ULFM:
 * s->joined), which allocates alone (the survivors wait for it in the
 * collectives after their FUZE_RECOVERED). Returns 0 or -1 (same on all
 * ranks; on a replacement, its own result). */
static int store_alloc(store *s) {
  const size_t ops = (size_t)s->opt->ops, np = (size_t)s->nranks;
  MPI_Type_contiguous((int)sizeof(op_rec), MPI_BYTE, &s->op_type);
  MPI_Type_commit(&s->op_type);
  MPI_Type_contiguous((int)sizeof(res_rec), MPI_BYTE, &s->res_type);
  MPI_Type_commit(&s->res_type);
  const size_t n1 = ops ? ops : 1;
  s->mine = malloc(n1 * sizeof(op_rec));
  s->sendops = malloc(n1 * sizeof(op_rec));
  s->recvres = malloc(n1 * sizeof(res_rec));
  /* What a rank receives depends on the others' batches; grown when needed. */
  s->recvops = NULL;
  s->sendres = NULL;
  s->scount = calloc(np, sizeof(int));
  s->sdispl = calloc(np, sizeof(int));
  s->rcount = calloc(np, sizeof(int));
  s->rdispl = calloc(np, sizeof(int));
  s->dest_pos = calloc(np, sizeof(uint32_t));
  const size_t nres = (size_t)s->opt->rounds * ops;
  s->results = calloc(nres ? nres : 1, sizeof(uint64_t));
  s->unchecked = calloc(s->opt->rounds ? (size_t)s->opt->rounds : 1, 1);
  int ok = s->mine && s->sendops && s->recvres && s->scount && s->sdispl && s->rcount &&
           s->rdispl && s->dest_pos && s->results && s->unchecked;
  if (!s->joined) MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, s->comm);
  return ok ? 0 : -1;
}

static void store_free(store *s) {
  if (s->op_type != MPI_DATATYPE_NULL) MPI_Type_free(&s->op_type);
  if (s->res_type != MPI_DATATYPE_NULL) MPI_Type_free(&s->res_type);
  free(s->mine);
  free(s->sendops);
  free(s->recvops);
  free(s->sendres);
  free(s->recvres);
  free(s->scount);
  free(s->sdispl);
  free(s->rcount);
  free(s->rdispl);
  free(s->dest_pos);
  free(s->results);
  free(s->unchecked);
  free(s->checks);
}

static void local_error(store *s, int rc, const char *what, uint64_t key, long round) {
  if (s->local_rc < 0) return;
  s->local_rc = rc;
  snprintf(s->local_msg, sizeof s->local_msg,
           "kvstore: rank %d: %s(key %" PRIu64 ") in round %ld returned %s (%d): %s\n", s->rank,
           what, key, round, fuze_err_name(rc), rc, fuze_last_error(s->ctx));
}

/* One round: generate, route, apply at the owners, return and keep the
 * results. Collective. Returns 0, or -1 on every rank when a map operation
 * failed somewhere (each failing rank prints its own message), or 1 on this
 * rank when one of its MPI calls failed (ULFM: a rank died, or fuze revoked
 * the communicator; *what names the call): the caller calls fuze_recover();
 * 2 when a map operation saw a death and repaired it (FUZE_RECOVERED). */
static int run_round(store *s, long round, const char **what) {
  const long ops = s->opt->ops;
  const int np = s->nranks;
  opgen g;

  /* 1. Generate this rank's batch. */
  opgen_init(&g, s->opt->seed, round, s->rank);
  memset(s->scount, 0, (size_t)np * sizeof(int));
  for (long i = 0; i < ops; i++) {
    op_rec *r = &s->mine[i];
    int type;
    memset(r, 0, sizeof *r);
    opgen_op(&g, s->opt->keys, &type, &r->key);
    r->type = (uint32_t)type;
    r->idx = (uint32_t)i;
    r->stamp = op_stamp(round, s->rank, np, ops, i);
    if (type == OP_PUT) make_value(r->stamp, r->key, r->value);
    s->scount[owner_of(r->key, np)]++;
  }
  /* 2. Pack by destination, keeping the operation order within each. */
  int off = 0;
  for (int d = 0; d < np; d++) {
    s->sdispl[d] = off;
    s->dest_pos[d] = (uint32_t)off;
    off += s->scount[d];
  }
  for (long i = 0; i < ops; i++) {
    const int d = owner_of(s->mine[i].key, np);
    s->sendops[s->dest_pos[d]++] = s->mine[i];
  }
  /* 3. Route to the owners. */
  *what = "MPI_Alltoall";
  if ((s->mpi_rc = MPI_Alltoall(s->scount, 1, MPI_INT, s->rcount, 1, MPI_INT,
                                s->comm)) != MPI_SUCCESS)
    return 1;
  long nrecv = 0;
  for (int d = 0; d < np; d++) {
    s->rdispl[d] = (int)nrecv;
    nrecv += s->rcount[d];
  }
  /* Displacements are ints: refuse a round that would overflow them. */
  int ok = nrecv <= INT_MAX;
  if (ok && nrecv > 0) {
    op_rec *ro = realloc(s->recvops, (size_t)nrecv * sizeof(op_rec));
    if (ro) s->recvops = ro;
    res_rec *rs = realloc(s->sendres, (size_t)nrecv * sizeof(res_rec));
    if (rs) s->sendres = rs;
    ok = ro != NULL && rs != NULL;
  }
  int all_ok = ok;
  *what = "MPI_Allreduce";
  if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_LAND,
                                 s->comm)) != MPI_SUCCESS)
    return 1;
  if (!all_ok) {
    if (!ok && s->local_rc >= 0) {
      s->local_rc = FUZE_ERR_NOMEM;
      snprintf(s->local_msg, sizeof s->local_msg, "kvstore: rank %d: cannot receive %ld "
               "records in round %ld (out of memory, or more than INT_MAX)\n", s->rank, nrecv,
               round);
    }
    return -1;
  }
  *what = "MPI_Alltoallv (operations)";
  if ((s->mpi_rc = MPI_Alltoallv(s->sendops, s->scount, s->sdispl, s->op_type, s->recvops,
                                 s->rcount, s->rdispl, s->op_type, s->comm)) != MPI_SUCCESS)
    return 1;

  /* 4. Apply at the owner: by source rank (the receive buffer's order), then
   *    by operation index (the order each source packed them in). */
  for (long i = 0; i < nrecv; i++) {
    const op_rec *r = &s->recvops[i];
    res_rec *out = &s->sendres[i];
    memset(out, 0, sizeof *out);
    out->idx = r->idx;
    int rc;
    switch (r->type) {
    case OP_PUT:
      rc = fuze_map_put(s->map, &r->key, r->value);
      if (rc != FUZE_SUCCESS && rc != FUZE_RECOVERED) local_error(s, rc, "fuze_map_put", r->key, round);
      break;
    case OP_GET:
      rc = fuze_map_get(s->map, &r->key, out->value);
      if (rc == FUZE_SUCCESS) out->found = 1;
      else if (rc != FUZE_ERR_NOT_FOUND) local_error(s, rc, "fuze_map_get", r->key, round);
      break;
    default:
      rc = fuze_map_remove(s->map, &r->key);
      if (rc == FUZE_SUCCESS) out->found = 1;
      else if (rc != FUZE_ERR_NOT_FOUND && rc != FUZE_RECOVERED)
        local_error(s, rc, "fuze_map_remove", r->key, round);
      break;
    }
    /* ULFM: the operation noticed a death and repaired it (the
     * communicator is new): the round is redone, like after a failed MPI
     * call, without another fuze_recover. */
    if (rc == FUZE_RECOVERED) {
      *what = "a map operation";
      return 2;
    }
  }

  /* ULFM tests (ULFM_STEP_MS): a pause here, with the round applied at the
   * owners and no result returned yet, so that a kill from outside mostly
   * lands where the round must be redone from maps that hold it. */
  fuze_app_ulfm_pace();

  /* 5. Return the results (the reverse exchange) and keep them. */
  *what = "MPI_Alltoallv (results)";
  if ((s->mpi_rc = MPI_Alltoallv(s->sendres, s->rcount, s->rdispl, s->res_type, s->recvres,
                                 s->scount, s->sdispl, s->res_type, s->comm)) != MPI_SUCCESS)
    return 1;
  uint64_t *const res = s->results + (size_t)round * (size_t)ops;
  for (long i = 0; i < ops; i++) {
    const res_rec *r = &s->recvres[i];
    if (r->idx >= (uint32_t)ops) continue; /* cannot happen: every idx comes back once */
    const op_rec *o = &s->mine[r->idx];
    if (o->type == OP_GET) {
      const uint64_t stamp = r->found ? value_stamp(r->value, o->key) : 0;
      res[r->idx] = r->found ? (stamp ? stamp : RES_GARBAGE) : 0;
    } else if (o->type == OP_REMOVE) {
      res[r->idx] = r->found ? 1 : 0;
    }
  }
  s->ops_done += (uint64_t)ops;

  int failed = s->local_rc < 0;
  *what = "MPI_Allreduce";
  if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_LOR,
                                 s->comm)) != MPI_SUCCESS)
    return 1;
  return failed ? -1 : 0;
}

/* Digest and size of this rank's map by a foreach walk. */
typedef struct walk_digest {
  uint64_t digest;
  size_t count;
} walk_digest;

static int digest_cb(const void *key, const void *value, void *arg) {
  walk_digest *w = arg;
  uint64_t k;
  memcpy(&k, key, sizeof k);
  w->digest += pair_hash(k, value);
  w->count++;
  return 0;
}

/* This rank's map state after round `round`, by a foreach walk. Local. */
static recovery_check map_state(const store *s, long round) {
  walk_digest w = {0, 0};
  int rc = fuze_map_foreach(s->map, digest_cb, &w);
  recovery_check c;
  c.round = round;
  c.digest = w.digest;
  c.size = fuze_map_size(s->map);
  c.walk_ok = (rc == 0 && w.count == c.size);
  return c;
}

/* After a FUZE_RECOVERED: record this rank's map state, checked against the
 * replay later. Local. */
static void record_recovery(store *s, long round) {
  const double t0 = MPI_Wtime();
  if (s->nchecks == s->cap_checks) {
    int cap = s->cap_checks ? 2 * s->cap_checks : 8;
    recovery_check *c = realloc(s->checks, (size_t)cap * sizeof *c);
    if (!c) return; /* the check is lost, not the run */
    s->checks = c;
    s->cap_checks = cap;
  }
  s->checks[s->nchecks++] = map_state(s, round);
  s->excluded += MPI_Wtime() - t0;
}

/* After FUZE_RECOVERED, on every compute rank: the survivors after the call
 * that returned it (at: the round they were at; mid: this rank's MPI call in
 * round `at` failed, so its recovery interrupted that round; dt: the call's
 * time), and a replacement (ULFM) once its registrations restored its map and
 * counter. They all make this one collective, on the compute communicator
 * taken again from fuze_comm() (a new one after a real death), which finds
 * the round to go on from in the protected counters. With recovery=rollback
 * every rank holds the committed epoch's, the same everywhere. With
 * recovery=forward the survivors kept theirs and a wiped or replaced rank
 * holds the last checkpoint's, so the largest says how far the run got: a
 * rank that finished a round passed its last collective, which every rank
 * had entered with its part of the round applied and its results kept, so a
 * rank whose call failed one round behind it lost nothing. When no rank was
 * inside the round to go on from, every map is the replay at that round (a
 * dead or wiped rank's came back as of its last complete operation): the
 * state is recorded for the verification. Otherwise that round is redone
 * from maps that may hold part of it, and its get/remove results are not
 * checked. Returns 0 (*round set), 1 when the collective failed (another
 * death: the caller calls fuze_recover again), or -1 when the counters are
 * inconsistent (reported). */
static int resync(store *s, int64_t *round, long at, int mid, double dt, const char *by) {
  s->comm = fuze_comm(s->ctx);
  const int64_t c = *round;
  /* MAX of: the counters, minus the counters, the round a recovery
   * interrupted, the survivors' round, the call's time in microseconds. */
  int64_t v[5] = {c, -c, mid ? (int64_t)at : -1, s->fresh ? -1 : (int64_t)at,
                  (int64_t)(dt * 1e6)};
  if ((s->mpi_rc = MPI_Allreduce(MPI_IN_PLACE, v, 5, MPI_INT64_T, MPI_MAX, s->comm)) != MPI_SUCCESS)
    return 1;
  const int64_t hi = v[0], lo = -v[1], at_max = v[3];
  const int clean = v[2] < hi;
  const double dtmax = (double)v[4] / 1e6;
  if (hi < 0 || hi > s->opt->rounds || (hi != at_max && lo != hi)) {
    SAY_ERR("kvstore: after FUZE_RECOVERED by %s the restored round counters are inconsistent "
            "(min %" PRId64 ", max %" PRId64 ", the survivors were at round %" PRId64 ")\n", by,
            lo, hi, at_max);
    return -1;
  }
  *round = hi;
  if (clean) record_recovery(s, (long)hi);
  else s->unchecked[hi] = 1; /* hi <= v[2] < rounds */
  if (s->fresh) {
    /* A replacement: it never saw the results of the rounds before this one. */
    s->fresh = 0;
    s->first_round = (long)hi;
    printf("kvstore: world rank %d replaced dead rank %d: map and round counter restored, "
           "going on from round %" PRId64 "\n", fuze_app_world_rank(), s->rank, hi);
    fflush(stdout);
    if (s->rank == 0) /* rank 0 died: the survivors' report comes from here */
      printf("kvstore: FUZE_RECOVERED by the survivors' fuze call at round %" PRId64 ": going "
             "on from round %" PRId64 "%s (the call took %.4f s, max over ranks)\n", at_max, hi,
             !clean ? ", its get/remove results not checked" : hi < at_max ? ", rolled back" : "",
             dtmax);
    return 0;
  }
  s->recoveries++;
  if (!clean)
    SAY("kvstore: FUZE_RECOVERED by %s in round %ld: redoing round %" PRId64 " (its get/remove "
        "results are not checked, the maps after it are; the call took %.4f s, max over "
        "ranks)\n", by, at, hi, dtmax);
  else if (hi >= at)
    SAY("kvstore: FUZE_RECOVERED by %s after round %ld: nothing rolled back, going on from "
        "round %" PRId64 " (the call took %.4f s, max over ranks)\n", by, at, hi, dtmax);
  else
    SAY("kvstore: FUZE_RECOVERED by %s after round %ld: rolled back, redoing from round %"
        PRId64 " (the call took %.4f s, max over ranks)\n", by, at, hi, dtmax);
  /* Rounds done before and now again, and the interrupted one. */
  const long redo = at - (long)hi + (clean ? 0 : 1);
  if (redo > 0) s->rounds_redone += redo;
  return 0;
}

/* fuze_recover() after this rank's MPI call `what` failed (with s->mpi_rc).
 * Returns 0 when it returned FUZE_RECOVERED (*dt: its time), else -1
 * (reported). */
static int recover_after(store *s, const char *what, long round, double *dt) {
  const double c0 = MPI_Wtime();
  const int rc = fuze_recover(s->ctx);
  *dt = MPI_Wtime() - c0;
  s->ckpt_seconds += *dt;
  if (rc < 0) {
    report_fuze_error(s->ctx, "fuze_recover", rc, round);
    return -1;
  }
  if (rc != FUZE_RECOVERED) {
    fuze_app_mpi_error("kvstore", s->rank, what, s->mpi_rc);
    return -1;
  }
  return 0;
}

/* resync() until it gets through: a death during it means fuze_recover()
 * again. Returns 0 or -1 (reported). */
static int after_recovered(store *s, int64_t *round, long at, int mid, double dt,
                           const char *by) {
  for (int tries = 0;; tries++) {
    const int rc = resync(s, round, at, mid, dt, by);
    if (rc <= 0) return rc;
    if (tries >= 100) {
      SAY_ERR("kvstore: giving up after %d failed collectives after FUZE_RECOVERED\n", tries);
      return -1;
    }
    if (recover_after(s, "MPI_Allreduce after FUZE_RECOVERED", at, &dt) != 0) return -1;
    by = "fuze_recover after the MPI_Allreduce after FUZE_RECOVERED failed";
  }
}

/* The protected phase. *round is the protected counter (rounds done).
 * Collective. Returns 0, a negative fuze status (reported) or -1 for the
 * app's own failures (reported). */
static int run_store(store *s, int64_t *round) {
  const long rounds = s->opt->rounds, every = s->opt->every;
  /* A library that kept returning FUZE_RECOVERED would loop forever. */
  const long max_calls = 10 * (rounds / every + 1) + 100;
  long calls = 0;
  char by[96];
  for (;;) {
    while (*round < rounds) {
      const long t = (long)*round;
      const char *what = "";
      const int rr = run_round(s, t, &what);
      if (rr < 0) {
        if (s->local_rc < 0) {
          fputs(s->local_msg, stderr);
          fflush(stderr);
        }
        SAY_ERR("kvstore: round %ld failed on some rank (see above)\n", t);
        return -1;
      }
      if (rr > 0) {
        /* The app's own MPI call saw a death (or fuze's revoke of it); or
         * (2) a map operation did and repaired it already. */
        double dt = 0.0;
        if (rr == 1 && recover_after(s, what, t, &dt) != 0) return -1;
        if (rr == 1) snprintf(by, sizeof by, "fuze_recover after %s failed", what);
        else snprintf(by, sizeof by, "%s", what);
        if (after_recovered(s, round, t, 1, dt, by) != 0) return -1;
        if (++calls > max_calls) {
          SAY_ERR("kvstore: giving up after %ld fuze calls without finishing\n", calls);
          return -1;
        }
        continue;
      }
      ++*round;
      if (*round % every != 0) continue;

      const long at = (long)*round;
      s->ckpt_calls++;
      const double c0 = MPI_Wtime();
      int rc = fuze_checkpoint(s->ctx);
      const double dt = MPI_Wtime() - c0;
      s->ckpt_seconds += dt;
      if (rc < 0) {
        report_fuze_error(s->ctx, "fuze_checkpoint", rc, at);
        return rc;
      }
      if (rc == FUZE_RECOVERED) {
        snprintf(by, sizeof by, "checkpoint call #%ld", s->ckpt_calls);
        if (after_recovered(s, round, at, 0, dt, by) != 0) return -1;
      } else if (rc != FUZE_SUCCESS) {
        SAY_ERR("kvstore: fuze_checkpoint returned unexpected status %d (%s), ignored\n", rc,
                fuze_err_name(rc));
      }
      if (++calls > max_calls) {
        SAY_ERR("kvstore: giving up after %ld fuze calls without finishing\n", calls);
        return -1;
      }
    }
    /* A failure after the last checkpoint would go unnoticed: ask once more. */
    const double c0 = MPI_Wtime();
    int rc = fuze_recover(s->ctx);
    const double dt = MPI_Wtime() - c0;
    s->ckpt_seconds += dt;
    if (rc < 0) {
      report_fuze_error(s->ctx, "fuze_recover", rc, rounds);
      return rc;
    }
    if (rc != FUZE_RECOVERED) break;
    if (after_recovered(s, round, rounds, 0, dt, "the final fuze_recover") != 0) return -1;
    if (++calls > max_calls) {
      SAY_ERR("kvstore: giving up after %ld fuze calls without finishing\n", calls);
      return -1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Verification against the replay                                          */

typedef struct verify_report {
  uint64_t keys;          /* pairs in the reference for this rank's range */
  uint64_t bad_results;   /* get/remove results that differ from the replay */
  uint64_t checked_results;
  uint64_t bad_recoveries;/* recovery checks that failed */
  uint64_t bad_keys;      /* keys of the range whose get disagrees */
  uint64_t bad_walk;      /* pairs of the foreach walk that are wrong */
  uint64_t size_off;      /* |fuze_map_size - reference| */
  uint64_t walk_count;    /* pairs seen by the walk */
  uint64_t bad_restart;   /* 1 when the map restored by a restart differs from the replay */
} verify_report;

#define MAX_DETAILS 5

typedef struct walk_ctx {
  const store *s;
  const uint64_t *model; /* stamp per key, 0 = absent */
  verify_report *rep;
  int details;
} walk_ctx;

static int verify_cb(const void *key, const void *value, void *arg) {
  walk_ctx *w = arg;
  uint64_t k;
  memcpy(&k, key, sizeof k);
  w->rep->walk_count++;
  const char *why = NULL;
  if (k >= (uint64_t)w->s->opt->keys) why = "is outside the key space";
  else if (owner_of(k, w->s->nranks) != w->s->rank) why = "belongs to another rank";
  else if (w->model[k] == 0) why = "is absent in the replay";
  else if (value_stamp(value, k) != w->model[k]) why = "has the wrong value";
  if (why) {
    w->rep->bad_walk++;
    if (w->details++ < MAX_DETAILS)
      fprintf(stderr, "kvstore: rank %d: fuze_map_foreach: key %" PRIu64 " %s\n", w->s->rank,
              k, why);
  }
  return 0;
}

/* Digest of the reference for this rank's range. */
static void model_digest(const store *s, const uint64_t *model, uint64_t *digest, size_t *n) {
  unsigned char v[VALUE_BYTES];
  *digest = 0;
  *n = 0;
  for (long k = 0; k < s->opt->keys; k++) {
    if (!model[k] || owner_of((uint64_t)k, s->nranks) != s->rank) continue;
    make_value(model[k], (uint64_t)k, v);
    *digest += pair_hash((uint64_t)k, v);
    ++*n;
  }
}

static void check_recoveries_at(const store *s, const uint64_t *model, long round,
                                verify_report *rep) {
  if (s->restarted && s->restart.round == round) {
    const recovery_check *rc = &s->restart;
    uint64_t d;
    size_t n;
    model_digest(s, model, &d, &n);
    if (d != rc->digest || n != rc->size || !rc->walk_ok) {
      rep->bad_restart++;
      fprintf(stderr, "kvstore: rank %d: map restored by the restart at round %ld differs from "
              "the replay (size %zu, replay %zu; digest %016" PRIx64 ", replay %016" PRIx64
              "%s)\n", s->rank, round, rc->size, n, rc->digest, d,
              rc->walk_ok ? "" : "; foreach walk and fuze_map_size disagree");
    }
  }
  for (int c = 0; c < s->nchecks; c++) {
    const recovery_check *rc = &s->checks[c];
    if (rc->round != round) continue;
    uint64_t d;
    size_t n;
    model_digest(s, model, &d, &n);
    if (d != rc->digest || n != rc->size || !rc->walk_ok) {
      rep->bad_recoveries++;
      fprintf(stderr, "kvstore: rank %d: map after the recovery at round %ld differs from the "
              "replay (size %zu, replay %zu; digest %016" PRIx64 ", replay %016" PRIx64
              "%s)\n", s->rank, round, rc->size, n, rc->digest, d,
              rc->walk_ok ? "" : "; foreach walk and fuze_map_size disagree");
    }
  }
}

/* Replay the global operation sequence into a dense model (every key, so the
 * results of this rank's own operations can be checked wherever they went),
 * then compare this rank's map with the model for its range. Local. */
static int verify(const store *s, verify_report *rep) {
  const long keys = s->opt->keys, ops = s->opt->ops, rounds = s->opt->rounds;
  const int np = s->nranks;
  memset(rep, 0, sizeof *rep);
  uint64_t *model = calloc((size_t)keys, sizeof *model);
  if (!model) return -1;
  int details = 0;
  for (long t = 0; t < rounds; t++) {
    check_recoveries_at(s, model, t, rep);
    const uint64_t *res = s->results + (size_t)t * (size_t)ops;
    for (int src = 0; src < np; src++) {
      opgen g;
      opgen_init(&g, s->opt->seed, t, src);
      for (long i = 0; i < ops; i++) {
        int type;
        uint64_t key;
        opgen_op(&g, keys, &type, &key);
        uint64_t expect = 0;
        if (type == OP_PUT) {
          model[key] = op_stamp(t, src, np, ops, i);
          continue;
        }
        if (type == OP_GET) {
          expect = model[key];
        } else {
          expect = model[key] != 0;
          model[key] = 0;
        }
        /* Rounds before a restart ran in the process that persisted them
         * (before a replacement joined: in the dead rank); a round redone
         * from maps that held part of it gives other results. */
        if (src != s->rank || t < s->first_round || s->unchecked[t]) continue;
        rep->checked_results++;
        if (res[i] != expect) {
          rep->bad_results++;
          if (details++ < MAX_DETAILS) {
            char got[48], want[48];
            if (type == OP_GET) {
              if (res[i] == RES_GARBAGE) snprintf(got, sizeof got, "a corrupt value");
              else if (res[i] == 0) snprintf(got, sizeof got, "not found");
              else snprintf(got, sizeof got, "stamp %" PRIu64, res[i]);
              if (expect == 0) snprintf(want, sizeof want, "not found");
              else snprintf(want, sizeof want, "stamp %" PRIu64, expect);
            } else {
              snprintf(got, sizeof got, "%s", res[i] ? "found" : "not found");
              snprintf(want, sizeof want, "%s", expect ? "found" : "not found");
            }
            fprintf(stderr, "kvstore: rank %d: round %ld op %ld %s(key %" PRIu64 ") returned "
                    "%s, the replay says %s\n", s->rank, t, i, op_names[type], key, got, want);
          }
        }
      }
    }
  }
  check_recoveries_at(s, model, rounds, rep);

  /* The final map against the model, for this rank's range. */
  unsigned char v[VALUE_BYTES];
  for (long k = 0; k < keys; k++) {
    const uint64_t key = (uint64_t)k;
    if (owner_of(key, np) != s->rank) continue;
    if (model[k]) rep->keys++;
    int rc = fuze_map_get(s->map, &key, v);
    const char *why = NULL;
    if (model[k] == 0) {
      if (rc != FUZE_ERR_NOT_FOUND) why = rc == FUZE_SUCCESS ? "is present, the replay removed it"
                                                             : "failed";
    } else if (rc == FUZE_ERR_NOT_FOUND) {
      why = "is missing";
    } else if (rc != FUZE_SUCCESS) {
      why = "failed";
    } else if (value_stamp(v, key) != model[k]) {
      why = "has the wrong value";
    }
    if (why) {
      rep->bad_keys++;
      if (details++ < MAX_DETAILS)
        fprintf(stderr, "kvstore: rank %d: fuze_map_get(key %" PRIu64 ") %s (%s)\n", s->rank,
                key, why, fuze_err_name(rc));
    }
  }
  const size_t size = fuze_map_size(s->map);
  rep->size_off = size > rep->keys ? size - rep->keys : rep->keys - size;
  if (rep->size_off)
    fprintf(stderr, "kvstore: rank %d: fuze_map_size is %zu, the replay has %" PRIu64 " keys\n",
            s->rank, size, rep->keys);
  walk_ctx w = {s, model, rep, 0};
  int rc = fuze_map_foreach(s->map, verify_cb, &w);
  if (rc != 0 || rep->walk_count != size) {
    rep->bad_walk++;
    fprintf(stderr, "kvstore: rank %d: fuze_map_foreach returned %d after %" PRIu64
            " pairs, fuze_map_size says %zu\n", s->rank, rc, rep->walk_count, size);
  }
  free(model);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */

static void print_stats(const store *s, int nspare) {
  fuze_stats st;
  fuze_fused_stats fs;
  memset(&st, 0, sizeof st);
  memset(&fs, 0, sizeof fs);
  int rc = fuze_get_stats(s->ctx, &st);
  /* fuze_fused_info wants no operation in flight: complete ours, then agree. */
  int frc = fuze_flush(s->ctx);
  MPI_Barrier(s->comm);
  if (frc >= 0) frc = fuze_fused_info(s->ctx, MAP_NAME, &fs);
  int ok[2] = {rc >= 0, frc >= 0};
  MPI_Allreduce(MPI_IN_PLACE, ok, 2, MPI_INT, MPI_LAND, s->comm);
  if (!ok[0]) {
    if (rc < 0)
      fprintf(stderr, "kvstore: rank %d: fuze_get_stats returned %s: %s\n", s->rank,
              fuze_err_name(rc), fuze_last_error(s->ctx));
    return;
  }
  if (!ok[1] && frc < 0)
    fprintf(stderr, "kvstore: rank %d: fuze_flush/fuze_fused_info(" MAP_NAME ") returned %s: "
            "%s\n", s->rank, fuze_err_name(frc), fuze_last_error(s->ctx));
  const uint64_t pairs = fuze_map_size(s->map);
  enum { NSUM = 12 };
  uint64_t mine[NSUM] = {st.protected_bytes, st.parity_bytes, st.working_bytes, st.shadow_bytes,
                         st.sent_bytes, st.recovered_bytes, pairs, (uint64_t)fs.regions,
                         fs.nodes, fs.stray_nodes, fs.capacity * (uint64_t)fs.regions,
                         fs.deferred_ops};
  uint64_t tot[NSUM] = {0};
  uint64_t ev[3] = {st.epoch, st.recoveries, fs.capacity}, evmax[3] = {0, 0, 0};
  MPI_Reduce(mine, tot, NSUM, MPI_UINT64_T, MPI_SUM, 0, s->comm);
  MPI_Reduce(ev, evmax, 3, MPI_UINT64_T, MPI_MAX, 0, s->comm);
  if (!g_rank0) return;
  /* f from the plan: nbackups = nblocks * faults. */
  const int f = st.nblocks > 0 ? st.nbackups / st.nblocks : 0;
  const uint64_t map_bytes = tot[6] * (KEY_BYTES + VALUE_BYTES);
  const uint64_t repl = (uint64_t)f * map_bytes;
  char b[7][32];
  human_bytes(tot[0], b[0], sizeof b[0]);
  human_bytes(tot[1], b[1], sizeof b[1]);
  human_bytes(tot[2], b[2], sizeof b[2]);
  human_bytes(tot[3], b[3], sizeof b[3]);
  human_bytes(tot[4], b[4], sizeof b[4]);
  human_bytes(tot[5], b[5], sizeof b[5]);
  human_bytes(repl, b[6], sizeof b[6]);
  printf("kvstore: fuze stats: epoch %" PRIu64 ", recoveries %" PRIu64 ", %d block%s, %d "
         "backup%s (f = %d)\n", evmax[0], evmax[1], st.nblocks, st.nblocks == 1 ? "" : "s",
         st.nbackups, st.nbackups == 1 ? "" : "s", f);
  printf("kvstore: fuze_get_stats summed over %d ranks: protected %" PRIu64 " (%s), parity %"
         PRIu64 " (%s), working parity %" PRIu64 " (%s), shadow %" PRIu64 " (%s)\n",
         s->nranks, tot[0], b[0], tot[1], b[1], tot[2], b[2], tot[3], b[3]);
  printf("kvstore: fuze_get_stats summed over %d ranks: sent to backups %" PRIu64
         " (%s), recovered %" PRIu64 " (%s)\n", s->nranks, tot[4], b[4], tot[5], b[5]);
  printf("kvstore: replication of the maps: f x (%" PRIu64 " pairs x (%d + %d) bytes) = %d x %"
         PRIu64 " = %" PRIu64 " bytes (%s)\n", tot[6], KEY_BYTES, VALUE_BYTES, f, map_bytes,
         repl, b[6]);
  if (nspare > 0)
    printf("kvstore: (parity hosted by the %d spare rank%s is not counted: spare ranks have no "
           "context the app could query)\n", nspare, nspare == 1 ? "" : "s");
  else if (repl > 0)
    printf("kvstore: parity hosted (fuze_get_stats) %" PRIu64 " bytes = %.3f x replication\n",
           tot[1], (double)tot[1] / (double)repl);
  if (ok[1]) {
    /* The map's own backups, from fuze_fused_info: value parity (one fused
     * node of VALUE_BYTES per slot of the block's largest map) plus the
     * replica of every member's slot -> key index at each of the f backups. */
    const uint64_t parity = tot[8] * VALUE_BYTES;
    const uint64_t index = (uint64_t)f * tot[6] * KEY_BYTES;
    char p[32], x[32], t[32];
    human_bytes(parity, p, sizeof p);
    human_bytes(index, x, sizeof x);
    human_bytes(parity + index, t, sizeof t);
    printf("kvstore: fuze_fused_info(\"" MAP_NAME "\") summed over %d ranks: %" PRIu64
           " backup regions, %" PRIu64 " live fused nodes, %" PRIu64 " stray, %" PRIu64
           " allocated (largest region %" PRIu64 "), %" PRIu64 " ops sent late\n",
           s->nranks, tot[7], tot[8], tot[9], tot[10], evmax[2], tot[11]);
    if (nspare == 0) {
      printf("kvstore: map backups: value parity %" PRIu64 " x %d = %" PRIu64 " bytes (%s) + "
             "key index replicas %d x %" PRIu64 " x %d = %" PRIu64 " bytes (%s) = %s\n",
             tot[8], VALUE_BYTES, parity, p, f, tot[6], KEY_BYTES, index, x, t);
      if (repl > 0)
        printf("kvstore: map backups / replication = %.3f\n",
               (double)(parity + index) / (double)repl);
    }
  }
  fflush(stdout);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int wrank = 0, wsize = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);

  options opt;
  char err[256] = "";
  const int parse_rc = parse_options(argc, argv, &opt, err, sizeof err);
  int exit_now = fuze_app_options_done("kvstore", parse_rc, err, opt.help, usage);
  if (exit_now >= 0) return exit_now;

  /* "recovery=forward" first: a later key of the user's string wins. The
   * capacity hint sizes the fused maps for this rank's share of the keys, so
   * that operations never wait for capacity until the next checkpoint (an
   * operation that waits is complete only then, and forward recovery brings
   * a failed rank back as of its last complete operation). */
  char *config = NULL;
  {
    int world_size;
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    char defaults[128];
    snprintf(defaults, sizeof defaults, "%s,capacity=%llu", DEFAULT_CONFIG,
             (unsigned long long)(2 * opt.keys / (world_size > 0 ? world_size : 1) + 64));
    const size_t len = strlen(defaults) + (opt.config ? strlen(opt.config) + 1 : 0) + 1;
    config = malloc(len);
    if (!config) {
      if (wrank == 0) fprintf(stderr, "kvstore: out of memory\n");
      MPI_Finalize();
      return 1;
    }
    if (opt.config && *opt.config) snprintf(config, len, "%s,%s", defaults, opt.config);
    else snprintf(config, len, "%s", defaults);
  }

  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  int restarted = 0, joined = 0;
  exit_now = fuze_app_init_ft("kvstore", config, &ctx, &app, &restarted, &joined);
  if (exit_now >= 0) { /* fuze_init failed, or a spare or unused replacement rank */
    free(config);
    return exit_now;
  }

  store s;
  memset(&s, 0, sizeof s);
  s.comm = fuze_comm(ctx); /* app; a new one after each real death (ULFM) */
  s.opt = &opt;
  s.ctx = ctx;
  s.joined = s.fresh = joined;
  s.op_type = s.res_type = MPI_DATATYPE_NULL;
  MPI_Comm_rank(s.comm, &s.rank);
  MPI_Comm_size(s.comm, &s.nranks);
  g_rank0 = (s.rank == 0) && !joined; /* a replacement says what it does itself */
  int status = 0;
  /* Protected: the number of rounds done. Registered with fuze, so it must
   * keep its address until fuze_finalize(). */
  static int64_t round = 0;

  SAY("kvstore: %d compute rank%s, %d spare rank%s; %ld rounds x %ld ops per rank, %ld keys, "
      "%d-byte keys, %d-byte values, checkpoint every %ld rounds, seed %" PRIu64 "\n",
      s.nranks, s.nranks == 1 ? "" : "s", wsize - s.nranks, wsize - s.nranks == 1 ? "" : "s",
      opt.rounds, opt.ops, opt.keys, KEY_BYTES, VALUE_BYTES, opt.every, opt.seed);
  SAY("kvstore: fuze config \"%s\" (FUZE_* environment variables override its keys)\n", config);

  if (store_alloc(&s) != 0) {
    /* A replacement's failure would leave the survivors waiting for it. */
    if (joined) {
      fprintf(stderr, "kvstore: world rank %d, replacing rank %d: out of memory\n",
              fuze_app_world_rank(), s.rank);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    SAY_ERR("kvstore: out of memory\n");
    status = 1;
    goto finish;
  }
  int rc = fuze_map_create(ctx, MAP_NAME, KEY_BYTES, VALUE_BYTES, &s.map);
  if (rc < 0) {
    report_fuze_error(ctx, "fuze_map_create(" MAP_NAME ")", rc, 0);
    status = 1;
    goto finish;
  }
  if (joined) {
    /* A replacement (ULFM): fuze_map_create restored the dead rank's map, and
     * the registration of the counter restores it: one element. */
    size_t stored = 0;
    rc = fuze_stored_count(ctx, ROUND_NAME, &stored);
    if (rc != FUZE_SUCCESS || stored != 1) {
      fprintf(stderr, "kvstore: world rank %d, replacing rank %d: fuze_stored_count(" ROUND_NAME
              ") returned %s with %zu elements, 1 expected: %s\n", fuze_app_world_rank(),
              s.rank, fuze_err_name(rc), stored, fuze_last_error(ctx));
      MPI_Abort(MPI_COMM_WORLD, 1); /* the survivors would wait for it */
    }
  }
  if (restarted) {
    /* fuze_map_create restored the maps; the registration of the counter
     * restores it too, into a buffer of the stored size: one element. */
    size_t stored = 0;
    if (fuze_app_stored_count("kvstore", ctx, app, ROUND_NAME, 1, &stored) != 0) {
      status = 1;
      goto finish;
    }
  }
  rc = fuze_protect(ctx, ROUND_NAME, &round, 1, MPI_INT64_T, NULL);
  if (rc < 0) {
    report_fuze_error(ctx, "fuze_protect(" ROUND_NAME ")", rc, 0);
    status = 1;
    goto finish;
  }
  if (joined) {
    /* This rank replaced a dead one (ULFM): the registrations above made
     * alone restored its map (as of the dead rank's last complete operation)
     * and its counter (the last checkpoint's); it meets the survivors in the
     * collective they make after their FUZE_RECOVERED, which says where the
     * run goes on. */
    if (after_recovered(&s, &round, 0, 0, 0.0, "a replacement joining") != 0) {
      status = 1;
      goto finish;
    }
    g_rank0 = (s.rank == 0);
  }
  if (restarted) {
    /* Every rank persisted the same committed round. */
    int64_t lo = round, hi = round;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT64_T, MPI_MIN, app);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT64_T, MPI_MAX, app);
    if (lo != hi || lo < 0 || lo > opt.rounds) {
      SAY_ERR("kvstore: after FUZE_RESTARTED the restored round counters are inconsistent (min %"
              PRId64 ", max %" PRId64 ", --rounds %ld)\n", lo, hi, opt.rounds);
      status = 1;
      goto finish;
    }
    s.restarted = 1;
    s.first_round = (long)round;
    s.restart = map_state(&s, s.first_round);
    uint64_t pairs = s.restart.size;
    MPI_Allreduce(MPI_IN_PLACE, &pairs, 1, MPI_UINT64_T, MPI_SUM, app);
    fuze_stats st;
    memset(&st, 0, sizeof st);
    fuze_get_stats(ctx, &st);
    SAY("kvstore: restarted from the persisted epoch %" PRIu64 ": resuming at round %" PRId64
        " of %ld with %" PRIu64 " pairs in the maps\n", st.epoch, round, opt.rounds, pairs);
  }

  /* The protected phase. */
  if (!joined) MPI_Barrier(s.comm);
  fuze_app_ulfm_pid();
  const double t0 = MPI_Wtime();
  rc = run_store(&s, &round);
  double secs = MPI_Wtime() - t0 - s.excluded;
  MPI_Allreduce(MPI_IN_PLACE, &secs, 1, MPI_DOUBLE, MPI_MAX, s.comm);
  if (rc != 0) {
    status = 1;
    goto finish;
  }
  uint64_t total_ops = 0;
  MPI_Reduce(&s.ops_done, &total_ops, 1, MPI_UINT64_T, MPI_SUM, 0, s.comm);
  /* The most of any rank: a replacement (ULFM) counts only since it joined. */
  long counts[3] = {s.ckpt_calls, s.recoveries, s.rounds_redone}, cmax[3] = {0, 0, 0};
  MPI_Reduce(counts, cmax, 3, MPI_LONG, MPI_MAX, 0, s.comm);
  SAY("kvstore: %" PRIu64 " operations in %.3f s: %.0f ops/s (%ld checkpoint call%s, %.3f s in "
      "fuze_checkpoint/fuze_recover on rank 0, %ld recover%s, %ld round%s redone)\n",
      total_ops, secs, secs > 0 ? (double)total_ops / secs : 0.0, cmax[0],
      cmax[0] == 1 ? "" : "s", s.ckpt_seconds, cmax[1], cmax[1] == 1 ? "y" : "ies", cmax[2],
      cmax[2] == 1 ? "" : "s");
  print_stats(&s, wsize - s.nranks);

  /* Verification against the replay (not timed). */
  verify_report vr;
  int ok = verify(&s, &vr) == 0;
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, s.comm);
  if (!ok) {
    SAY_ERR("kvstore: out of memory for the reference replay\n");
    status = 1;
    goto finish;
  }
  uint64_t nunchecked = 0;
  for (long t = 0; t < opt.rounds; t++) nunchecked += s.unchecked[t];
  uint64_t mine[11] = {vr.keys,     vr.bad_results, vr.checked_results, vr.bad_recoveries,
                       vr.bad_keys, vr.bad_walk,    vr.size_off,        (uint64_t)s.nchecks,
                       vr.bad_restart, (uint64_t)s.joined, 0};
  uint64_t tot[11] = {0};
  MPI_Allreduce(mine, tot, 11, MPI_UINT64_T, MPI_SUM, s.comm);
  /* The same rounds everywhere, but a replacement has not seen those before it joined. */
  MPI_Allreduce(&nunchecked, &tot[10], 1, MPI_UINT64_T, MPI_MAX, s.comm);
  /* The final answer: an order-independent digest of every rank's map (the
   * sum of the pairs' hashes mod 2^64). It depends on the options and the
   * rank count (each rank generates its own batches), not on failures,
   * recoveries or restarts. */
  {
    const recovery_check fin = map_state(&s, opt.rounds);
    uint64_t dg[2] = {fin.digest, fin.size}, dgsum[2] = {0, 0};
    MPI_Reduce(dg, dgsum, 2, MPI_UINT64_T, MPI_SUM, 0, s.comm);
    SAY("kvstore: final map digest %016" PRIx64 " over %" PRIu64 " pairs (all ranks)\n",
        dgsum[0], dgsum[1]);
  }
  const int match = tot[1] == 0 && tot[3] == 0 && tot[4] == 0 && tot[5] == 0 && tot[6] == 0 &&
                    tot[8] == 0;
  if (match) {
    SAY("kvstore: all %" PRIu64 " get/remove results match the replay%s\n", tot[2],
        s.restarted ? " (those of the rounds since the restart)"
        : tot[9] > 0 ? " (a replacement rank's: those of the rounds since it joined)" : "");
    if (tot[10] > 0)
      SAY("kvstore: the get/remove results of %" PRIu64 " round%s redone after a recovery that "
          "interrupted %s are not checked (the maps after %s are)\n", tot[10],
          tot[10] == 1 ? "" : "s", tot[10] == 1 ? "it" : "them", tot[10] == 1 ? "it" : "them");
    if (s.restarted)
      SAY("kvstore: every rank's map right after the restart matches the replay at round %ld\n",
          s.first_round);
    if (tot[7] > 0)
      SAY("kvstore: every rank's map right after each FUZE_RECOVERED (%" PRIu64 " map states) "
          "matches the replay at that round\n", tot[7]);
    SAY("kvstore: all %" PRIu64 " keys match the reference replay\n", tot[0]);
  } else {
    SAY("kvstore: MISMATCH against the reference replay: %" PRIu64 " of %" PRIu64
        " get/remove results, %" PRIu64 " post-recovery map states, %" PRIu64
        " restored map states, %" PRIu64 " keys (get), %" PRIu64 " foreach pairs, size off by %"
        PRIu64 " (%" PRIu64 " keys in the replay)\n",
        tot[1], tot[2], tot[3], tot[8], tot[4], tot[5], tot[6], tot[0]);
    status = 1;
  }
  if (opt.expect_recoveries >= 0) {
    /* Counted by the ranks that ran from the start (a replacement saw only
     * the recoveries after it joined): the fewest and the most. */
    int64_t rec[2] = {s.joined ? INT64_MIN : -(int64_t)s.recoveries,
                      s.joined ? INT64_MIN : (int64_t)s.recoveries};
    MPI_Allreduce(MPI_IN_PLACE, rec, 2, MPI_INT64_T, MPI_MAX, s.comm);
    if (-rec[0] != opt.expect_recoveries || rec[1] != opt.expect_recoveries) {
      if (-rec[0] == rec[1])
        SAY("kvstore: MISMATCH: %" PRId64 " FUZE_RECOVERED seen, --expect-recoveries %ld\n",
            rec[1], opt.expect_recoveries);
      else
        SAY("kvstore: MISMATCH: %" PRId64 " to %" PRId64 " FUZE_RECOVERED seen (by different "
            "ranks), --expect-recoveries %ld\n", -rec[0], rec[1], opt.expect_recoveries);
      status = 1;
    }
  }

finish:
  if (fuze_app_finalize("kvstore", &ctx) != 0) status = 1;
  fuze_app_ulfm_verdict("kvstore", status == 0);
  store_free(&s);
  free(config);
  MPI_Comm_free(&app);
  MPI_Finalize();
  return status;
}
