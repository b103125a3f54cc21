/* fuze-bench: measures fuze's fused backups (code=rs) against the replication
 * baseline (code=replicate: f full copies through the same windows, protocol
 * and recovery) in one invocation, on the same ranks, data and transport.
 *
 * One sub-benchmark per question (select with --bench, default all):
 *   space        Theorem 1: backup bytes / protected bytes, planner for
 *                n = 2..16 and measured at the job's size (checked exactly
 *                against the planner), and memory per rank
 *   update       map put/update/remove, stack push/pop per second per rank
 *   concurrency  Theorem 3: k primaries updating the same backup
 *   checkpoint   commit time and parity bytes vs changed fraction
 *   recovery     t = 1..f wiped ranks: recover time, bytes moved
 *   kernel       delta-encode / decode GB/s next to memcpy, one core
 *   fti          FTI's geometry (8 ranks x 64 MiB, f = 2); FTI's figures as references
 *   scrub        fuze_verify of a clean epoch: seconds per protected GiB
 *   byzantine    code=byzantine against replication with 2f copies
 *   transport    XORs into a shared host vs one host per origin, with
 *                MPI_Accumulate and with shared-memory atomics (config shm)
 *   link         what the network between failure domains allows (raw MPI):
 *                ping-pong latency, put + flush round trip, put and
 *                accumulate bandwidth; and, after update, how close
 *                sync=batch comes to the rate that bandwidth allows
 *
 * Every timing is repeated (--reps) and reported as median (min-max); the
 * table gives the fusion/replication ratio. --csv FILE writes
 * bench,param,mode,median,min,max,unit.
 *
 * Exit status: 0, 1 when a check failed (space: measured backup bytes differ
 * from the planner's prediction; checkpoint: an unchanged epoch sent parity
 * bytes; recovery: restored data differ; scrub: a clean epoch reported a mismatch or a
 * flipped bit was missed) or fuze failed, 2 on bad options. */
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const bench_names[B_COUNT] = {"space",    "update",   "concurrency", "checkpoint",
                                                 "recovery", "kernel",   "fti",      "scrub",
                                                 "byzantine", "transport", "persist", "link",
                                                 "restart", "ulfm"};

static void usage(FILE *out) {
  fprintf(out,
          "usage: mpirun -np N fuze-bench [options]\n"
          "\n"
          "Benchmarks fuze's fused backups (code=rs) against replication (code=replicate).\n"
          "\n"
          "  --bench LIST         sub-benchmarks, comma-separated (default all):\n"
          "                       space,update,concurrency,checkpoint,recovery,kernel,fti,scrub,\n"
          "                       byzantine,transport,persist,link,restart; and, only by\n"
          "                       name, ulfm (kills ranks: mpirun --with-ft ulfm -np C+3,\n"
          "                       see ulfm.c)\n"
          "  --reps N             repetitions of every timing (default 5)\n"
          "  --csv FILE           write bench,param,mode,median,min,max,unit rows\n"
          "  --config STRING      extra fuze config keys for every run (must not change the\n"
          "                       plan: no faults/spares/domain/block/code)\n"
          "  --chunk BYTES        dirty-tracking chunk (default 64K)\n"
          "  --smoke              tiny sizes and 2 repetitions (the CTest smoke run)\n"
          "  --domain rank|node   failure domain of update, checkpoint and recovery (default\n"
          "                       rank; node: the ranks of a host, for runs across nodes)\n"
          "space:\n"
          "  --space-size SIZE    largest array per rank (default 1M)\n"
          "  --space-pairs N      largest map per rank (default 4096 pairs)\n"
          "  --space-nmax N       planner table for n = 2..N (default 16)\n"
          "update:\n"
          "  --ops N              operations of each kind per repetition, sync=op (default 100000)\n"
          "  --batch-ops N        the same with sync=batch (default 300000)\n"
          "  --value BYTES        map value / stack element bytes (default 64)\n"
          "  --update-faults LIST f values (default 1,2,3)\n"
          "  --update-sync LIST   op, batch or both (default op,batch)\n"
          "concurrency:\n"
          "  --conc-k LIST        primaries sharing one backup (default 1,2,4,8; needs np >= k+1)\n"
          "  --conc-time SECONDS  timed window of every repetition (default 0.25)\n"
          "checkpoint:\n"
          "  --ckpt-size LIST     array bytes per rank (default 1M,16M; e.g. add 256M)\n"
          "  --ckpt-changed LIST  percent of chunks changed (default 0,1,10,100)\n"
          "  --ckpt-faults LIST   f values (default 2)\n"
          "recovery:\n"
          "  --rec-size SIZE      array bytes per rank (default 16M)\n"
          "  --rec-faults F       f; t = 1..F ranks are wiped (default min(3, np-1))\n"
          "kernel:\n"
          "  --kernel-size LIST   buffer bytes (default 1M,64M)\n"
          "  --kernel-k K         primaries of the decoded block (default 8)\n"
          "fti:\n"
          "  --fti-size SIZE      bytes of doubles per rank (default 64M)\n"
          "  --fti-np N           ranks (default 8; needs np >= N)\n"
          "  --fti-faults F       f (default 2)\n"
          "scrub:\n"
          "  --scrub-size SIZE    array bytes per rank (default 16M)\n"
          "  --scrub-faults F     f (default min(2, np-1))\n"
          "byzantine:\n"
          "  --byz-size SIZE      array bytes per rank (default 16M); f = 1, 2 vs replicate 2f\n"
          "transport:\n"
          "  --xor-time SECONDS   timed window of every repetition (default 0.5): XORs of\n"
          "                       --value bytes, each flushed, from every rank at once\n"
          "persist:\n"
          "  --persist-size SIZE  array bytes per rank (default 16M); f = 2: in memory,\n"
          "                       persist=sync and persist=async side by side; then disk use\n"
          "                       (steady, peak) at persist_base=1 and 8 and the write volume\n"
          "                       at 0/1/10/100%% changed (persist_disk.c)\n"
          "  --persist-compute S  seconds of computing between checkpoints (default 0.2)\n"
          "  --persist-dir PATH   where the two persistence directories go (default /tmp)\n"
          "restart:\n"
          "  --restart-size SIZE  array bytes per rank (default 16M): fuze_protect vs one full\n"
          "                       checkpoint, and restarts from --persist-dir with none, one and\n"
          "                       f lost domains\n"
          "link:\n"
          "  --link-size SIZE     bytes per put/accumulate of the bandwidth loops (default 64K)\n"
          "  --link-bytes SIZE    bytes per rank per repetition (default 64M)\n"
          "ulfm:\n"
          "  --ulfm-size SIZE     array bytes per compute rank (default 64M; restart files go\n"
          "                       under --persist-dir)\n"
          "  --ulfm-relaunch SECS what a real restart adds to the restart from files: the\n"
          "                       job's abort after the death, mpirun's relaunch and MPI_Init\n"
          "                       (measured by apps/fuze-bench/ulfm_bench.sh in the same run)\n"
          "  --ulfm-probe abort|init  ulfm_bench.sh's probes for it: abort (rank 2 prints the\n"
          "                       time and SIGKILLs itself; launch without --with-ft), init\n"
          "                       (rank 0 prints the time after MPI_Init and a barrier)\n"
          "\n"
          "Sizes accept K, M, G suffixes (binary). Exit status: 0, 1 a check failed or fuze\n"
          "failed, 2 bad options.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Seconds in (0, 60]. */
static int parse_secs(const char *val, double *out) {
  char *end = NULL;
  errno = 0;
  *out = strtod(val, &end);
  return errno || end == val || *end || !(*out > 0 && *out <= 60);
}

static int parse_size(const char *s, size_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *s == '-') return -1;
  unsigned long long mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1ull << 10, end++;
  else if (*end == 'M' || *end == 'm') mul = 1ull << 20, end++;
  else if (*end == 'G' || *end == 'g') mul = 1ull << 30, end++;
  if (*end == 'i' && end[1] == 'B') end += 2;
  else if (*end == 'B') end++;
  if (*end || v == 0 || v > (1ull << 40) / mul) return -1;
  *out = (size_t)(v * mul);
  return 0;
}

/* Comma-separated list; kind 0 = int in [lo, hi], 1 = size, 2 = percent. */
static int parse_list(const char *s, int kind, long lo, long hi, void *out, int *n) {
  char buf[512];
  if (strlen(s) >= sizeof buf) return -1;
  snprintf(buf, sizeof buf, "%s", s);
  *n = 0;
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (*n >= BENCH_MAX_LIST) return -1;
    if (kind == 0) {
      long v;
      if (parse_long(t, lo, hi, &v)) return -1;
      ((int *)out)[(*n)++] = (int)v;
    } else if (kind == 1) {
      if (parse_size(t, &((size_t *)out)[*n])) return -1;
      (*n)++;
    } else {
      char *end = NULL;
      errno = 0;
      double v = strtod(t, &end);
      if (errno || end == t || *end || !(v >= 0 && v <= 100)) return -1;
      ((double *)out)[(*n)++] = v / 100.0;
    }
  }
  return *n ? 0 : -1;
}

static void defaults(int smoke) {
  bench_opts *o = &g_opt;
  memset(o, 0, sizeof *o);
  o->benches = ((1u << B_COUNT) - 1) & ~(1u << B_ULFM);
  o->smoke = smoke;
  o->ulfm_size = smoke ? 1 << 20 : 64 << 20;
  o->reps = smoke ? 2 : 5;
  o->chunk = smoke ? 4096 : 65536;
  o->space_bytes = smoke ? 64 << 10 : 1 << 20;
  o->space_pairs = smoke ? 64 : 4096;
  o->space_nmax = 16;
  o->ops = smoke ? 50 : 100000;
  o->batch_ops = smoke ? 200 : 300000;
  o->value = 64;
  o->n_upd_f = 3;
  for (int f = 1; f <= 3; f++) o->upd_f[f - 1] = f;
  o->upd_sync = 3;
  o->n_conc_k = 4;
  o->conc_k[0] = 1, o->conc_k[1] = 2, o->conc_k[2] = smoke ? 3 : 4, o->conc_k[3] = 8;
  o->conc_secs = smoke ? 0.02 : 0.25;
  o->n_ckpt_size = smoke ? 1 : 2;
  o->ckpt_size[0] = smoke ? 64 << 10 : 1 << 20;
  o->ckpt_size[1] = 16 << 20;
  o->n_changed = 4;
  o->changed[0] = 0, o->changed[1] = 0.01, o->changed[2] = 0.10, o->changed[3] = 1.0;
  o->n_ckpt_f = 1;
  o->ckpt_f[0] = 2;
  o->rec_size = smoke ? 64 << 10 : 16 << 20;
  o->rec_f = 0;
  o->n_kern_size = smoke ? 1 : 2;
  o->kern_size[0] = smoke ? 64 << 10 : 1 << 20;
  o->kern_size[1] = 64 << 20;
  o->kern_k = 8;
  o->fti_size = smoke ? 256 << 10 : 64 << 20;
  o->fti_np = smoke ? 4 : 8;
  o->fti_f = 2;
  o->scrub_size = smoke ? 64 << 10 : 16 << 20;
  o->scrub_f = 0;
  o->byz_size = smoke ? 64 << 10 : 16 << 20;
  o->xor_secs = smoke ? 0.02 : 0.5;
  o->persist_size = smoke ? 64 << 10 : 16 << 20;
  o->persist_compute = smoke ? 0.01 : 0.2;
  o->persist_dir = "/tmp";
  o->restart_size = smoke ? 64 << 10 : 16 << 20;
  o->link_size = smoke ? 4 << 10 : 64 << 10;
  o->link_bytes = smoke ? 256 << 10 : 64 << 20;
}

/* g_dom, g_ndom: the failure domains fuze makes for domain=rank or node
 * (comm/topo.c: MPI_COMM_TYPE_SHARED, numbered by their lowest rank). */
static void domains(void) {
  g_dom = malloc(sizeof(int) * (size_t)g_size);
  int *leader = malloc(sizeof(int) * (size_t)g_size);
  if (!g_dom || !leader) {
    fprintf(stderr, "fuze-bench: rank %d: out of memory\n", g_rank);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  int me = g_rank;
  if (g_opt.domain_node) {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
    MPI_Bcast(&me, 1, MPI_INT, 0, node);
    MPI_Comm_free(&node);
  }
  MPI_Allgather(&me, 1, MPI_INT, leader, 1, MPI_INT, MPI_COMM_WORLD);
  g_ndom = 0;
  for (int r = 0; r < g_size; r++)
    if (leader[r] == r) g_dom[r] = g_ndom++;
  for (int r = 0; r < g_size; r++) g_dom[r] = g_dom[leader[r]];
  free(leader);
}

/* Returns 0, 1 (--help) or -1 with a message in err. */
static int parse_options(int argc, char **argv, char *err, size_t errlen) {
  int smoke = 0;
  for (int i = 1; i < argc; i++) smoke |= !strcmp(argv[i], "--smoke");
  defaults(smoke);
  bench_opts *o = &g_opt;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return 1;
    if (!strcmp(arg, "--smoke")) continue;
    if (strncmp(arg, "--", 2)) {
      snprintf(err, errlen, "unexpected argument '%s'", arg);
      return -1;
    }
    char name[40];
    const char *eq = strchr(arg, '='), *val;
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nlen >= sizeof name) {
      snprintf(err, errlen, "unknown option '%s'", arg);
      return -1;
    }
    memcpy(name, arg, nlen);
    name[nlen] = 0;
    static const char *const known[] = {
        "--bench",       "--reps",        "--csv",         "--config",     "--chunk",
        "--space-size",  "--space-pairs", "--space-nmax",  "--ops",        "--batch-ops",  "--value",
        "--update-faults", "--update-sync", "--conc-k",    "--conc-time",    "--ckpt-size",  "--ckpt-changed",
        "--ckpt-faults", "--rec-size",    "--rec-faults",  "--kernel-size", "--kernel-k",
        "--fti-size",    "--fti-np",      "--fti-faults",  "--scrub-size", "--scrub-faults",
        "--byz-size",    "--xor-time",    "--persist-size", "--persist-compute", "--persist-dir",
        "--restart-size",
        "--domain",      "--link-size", "--link-bytes", "--ulfm-size",
        "--ulfm-relaunch", "--ulfm-probe"};
    int ok = 0;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok |= !strcmp(name, known[k]);
    if (!ok) {
      snprintf(err, errlen, "unknown option '%s'", name);
      return -1;
    }
    if (eq) val = eq + 1;
    else if (i + 1 < argc) val = argv[++i];
    else {
      snprintf(err, errlen, "option '%s' needs a value", name);
      return -1;
    }
    long v = 0;
    int bad = 0;
    if (!strcmp(name, "--bench")) {
      char buf[256];
      snprintf(buf, sizeof buf, "%s", val);
      o->benches = 0;
      for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        if (!strcmp(t, "all")) {
          o->benches |= ((1u << B_COUNT) - 1) & ~(1u << B_ULFM);
          continue;
        }
        for (int b = 0; b < B_COUNT; b++)
          if (!strcmp(t, bench_names[b])) found = b;
        if (found < 0) bad = 1;
        else o->benches |= 1u << found;
      }
      bad |= !o->benches;
    } else if (!strcmp(name, "--reps")) {
      bad = parse_long(val, 1, BENCH_MAX_REPS, &v);
      o->reps = (int)v;
    } else if (!strcmp(name, "--csv")) {
      o->csv = val;
    } else if (!strcmp(name, "--config")) {
      o->config = val;
    } else if (!strcmp(name, "--chunk")) {
      bad = parse_size(val, &o->chunk) || o->chunk % 64;
    } else if (!strcmp(name, "--space-size")) {
      bad = parse_size(val, &o->space_bytes);
    } else if (!strcmp(name, "--space-pairs")) {
      bad = parse_long(val, 4, 1L << 24, &o->space_pairs);
    } else if (!strcmp(name, "--space-nmax")) {
      bad = parse_long(val, 2, 256, &v);
      o->space_nmax = (int)v;
    } else if (!strcmp(name, "--ops")) {
      bad = parse_long(val, 1, 1L << 26, &o->ops);
    } else if (!strcmp(name, "--batch-ops")) {
      bad = parse_long(val, 1, 1L << 26, &o->batch_ops);
    } else if (!strcmp(name, "--value")) {
      bad = parse_size(val, &o->value) || o->value > (1u << 20);
    } else if (!strcmp(name, "--update-faults")) {
      bad = parse_list(val, 0, 1, 16, o->upd_f, &o->n_upd_f);
    } else if (!strcmp(name, "--update-sync")) {
      char buf[64];
      snprintf(buf, sizeof buf, "%s", val);
      o->upd_sync = 0;
      for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "op")) o->upd_sync |= 1;
        else if (!strcmp(t, "batch")) o->upd_sync |= 2;
        else bad = 1;
      }
      bad |= !o->upd_sync;
    } else if (!strcmp(name, "--conc-k")) {
      bad = parse_list(val, 0, 1, 255, o->conc_k, &o->n_conc_k);
    } else if (!strcmp(name, "--conc-time")) {
      bad = parse_secs(val, &o->conc_secs);
    } else if (!strcmp(name, "--ckpt-size")) {
      bad = parse_list(val, 1, 0, 0, o->ckpt_size, &o->n_ckpt_size);
    } else if (!strcmp(name, "--ckpt-changed")) {
      bad = parse_list(val, 2, 0, 0, o->changed, &o->n_changed);
    } else if (!strcmp(name, "--ckpt-faults")) {
      bad = parse_list(val, 0, 1, 16, o->ckpt_f, &o->n_ckpt_f);
    } else if (!strcmp(name, "--rec-size")) {
      bad = parse_size(val, &o->rec_size);
    } else if (!strcmp(name, "--rec-faults")) {
      bad = parse_long(val, 1, 16, &v);
      o->rec_f = (int)v;
    } else if (!strcmp(name, "--kernel-size")) {
      bad = parse_list(val, 1, 0, 0, o->kern_size, &o->n_kern_size);
    } else if (!strcmp(name, "--kernel-k")) {
      bad = parse_long(val, 1, 200, &v);
      o->kern_k = (int)v;
    } else if (!strcmp(name, "--fti-size")) {
      bad = parse_size(val, &o->fti_size);
    } else if (!strcmp(name, "--fti-np")) {
      bad = parse_long(val, 2, 4096, &v);
      o->fti_np = (int)v;
    } else if (!strcmp(name, "--fti-faults")) {
      bad = parse_long(val, 1, 16, &v);
      o->fti_f = (int)v;
    } else if (!strcmp(name, "--domain")) {
      bad = strcmp(val, "rank") && strcmp(val, "node");
      o->domain_node = !strcmp(val, "node");
    } else if (!strcmp(name, "--link-size")) {
      bad = parse_size(val, &o->link_size) || o->link_size > (64u << 20);
    } else if (!strcmp(name, "--link-bytes")) {
      bad = parse_size(val, &o->link_bytes);
    } else if (!strcmp(name, "--xor-time")) {
      bad = parse_secs(val, &o->xor_secs);
    } else if (!strcmp(name, "--byz-size")) {
      bad = parse_size(val, &o->byz_size) || o->byz_size < 8;
    } else if (!strcmp(name, "--persist-size")) {
      bad = parse_size(val, &o->persist_size) || o->persist_size < 8;
    } else if (!strcmp(name, "--persist-compute")) {
      bad = parse_secs(val, &o->persist_compute);
    } else if (!strcmp(name, "--restart-size")) {
      bad = parse_size(val, &o->restart_size) || o->restart_size < 8;
    } else if (!strcmp(name, "--ulfm-size")) {
      bad = parse_size(val, &o->ulfm_size) || o->ulfm_size < 8;
    } else if (!strcmp(name, "--ulfm-relaunch")) {
      bad = parse_secs(val, &o->ulfm_relaunch);
    } else if (!strcmp(name, "--ulfm-probe")) {
      bad = strcmp(val, "abort") && strcmp(val, "init");
      o->ulfm_probe = val;
    } else if (!strcmp(name, "--persist-dir")) {
      bad = !*val;
      o->persist_dir = val;
    } else if (!strcmp(name, "--scrub-size")) {
      bad = parse_size(val, &o->scrub_size) || o->scrub_size < 8;
    } else if (!strcmp(name, "--scrub-faults")) {
      bad = parse_long(val, 1, 16, &v);
      o->scrub_f = (int)v;
    }
    if (bad) {
      snprintf(err, errlen, "bad value '%s' for option '%s'", val, name);
      return -1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  char err[256] = "";
  int rc = parse_options(argc, argv, err, sizeof err);
  if (rc) {
    if (g_rank == 0) {
      if (rc < 0) fprintf(stderr, "fuze-bench: %s\n", err);
      usage(rc < 0 ? stderr : stdout);
    }
    MPI_Finalize();
    return rc < 0 ? 2 : 0;
  }
  int csv_ok = bench_csv_open(g_opt.csv) == 0;
  MPI_Bcast(&csv_ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!csv_ok) {
    if (g_rank == 0) fprintf(stderr, "fuze-bench: cannot write '%s'\n", g_opt.csv);
    MPI_Finalize();
    return 2;
  }
  domains();
  double t0 = MPI_Wtime();
  if (g_rank == 0) {
    printf("# fuze-bench: %d ranks, %d repetitions, chunk %zu bytes, domain=%s (%d domains)%s%s\n",
           g_size, g_opt.reps, g_opt.chunk, bench_domain(), g_ndom, g_opt.config ? ", config " : "",
           g_opt.config ? g_opt.config : "");
    printf("# every figure: median (min-max) over the repetitions; times are the max over ranks\n");
    fflush(stdout);
  }
  static void (*const run[B_COUNT])(void) = {bench_space,    bench_update, bench_concurrency,
                                             bench_checkpoint, bench_recovery, bench_kernel,
                                             bench_fti, bench_scrub, bench_byzantine, bench_transport,
                                             bench_persist, bench_link, bench_restart,
                                             bench_ulfm};
  for (int b = 0; b < B_COUNT; b++) {
    if (!(g_opt.benches & (1u << b))) continue;
    double tb = MPI_Wtime();
    run[b]();
    if (g_world_broken) { /* dead ranks in MPI_COMM_WORLD: no collective over it any more */
      if (g_rank == 0) printf("\n(%s: %.1f s)\n", bench_names[b], MPI_Wtime() - tb);
      break;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
      printf("\n(%s: %.1f s)\n", bench_names[b], MPI_Wtime() - tb);
      fflush(stdout);
    }
  }
  int fail = g_fail;
  if (!g_world_broken) MPI_Allreduce(&g_fail, &fail, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (g_rank == 0) {
    printf("\n# total %.1f s; checks %s\n", MPI_Wtime() - t0, fail ? "FAILED" : "passed");
    fflush(stdout);
  }
  bench_csv_close();
  free(g_dom);
  MPI_Finalize();
  return fail ? 1 : 0;
}
