/* fuze-bench: shared declarations of the benchmark driver and its
 * sub-benchmarks (one file each). Every figure is measured for fusion
 * (code=rs) and for the replication baseline (code=replicate) in the same
 * invocation, on the same ranks, data and transport. */
#ifndef FUZE_BENCH_H
#define FUZE_BENCH_H

#include <fuze.h>
#include <mpi.h>

#include "core/plan.h" /* src/, via fuze_static */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_LIST 16
#define BENCH_MAX_REPS 99

enum bench_id {
  B_SPACE = 0,
  B_UPDATE,
  B_CONCURRENCY,
  B_CHECKPOINT,
  B_RECOVERY,
  B_KERNEL,
  B_FTI,
  B_SCRUB,
  B_BYZANTINE,
  B_TRANSPORT,
  B_PERSIST,
  B_LINK,
  B_RESTART,
  B_ULFM, /* only by name: it kills ranks (ULFM), not part of the default or of "all" */
  B_COUNT
};

enum bench_mode { M_FUSION = 0, M_REPLICATE = 1, M_COUNT = 2 };

typedef struct bench_opts {
  unsigned benches;                 /* bit (1u << enum bench_id) */
  int reps;
  const char *csv;
  const char *config;               /* extra keys appended to every fuze_init config */
  int smoke;
  int domain_node;                  /* --domain node: update, checkpoint, recovery */
  size_t chunk;                     /* dirty-tracking chunk (config chunk=) */
  /* space */
  size_t space_bytes;               /* largest protected array per rank */
  long space_pairs;                 /* largest map per rank (pairs) */
  int space_nmax;                   /* planner: n = 2..space_nmax */
  /* update */
  long ops;                         /* operations per kind per repetition, sync=op */
  long batch_ops;                   /* the same with sync=batch */
  size_t value;                     /* map value / stack element bytes */
  int upd_f[BENCH_MAX_LIST], n_upd_f;
  unsigned upd_sync;                /* bit 0: sync=op, bit 1: sync=batch */
  /* concurrency */
  int conc_k[BENCH_MAX_LIST], n_conc_k;
  double conc_secs;                 /* timed window per repetition */
  /* checkpoint */
  size_t ckpt_size[BENCH_MAX_LIST];
  int n_ckpt_size;
  double changed[BENCH_MAX_LIST];   /* fractions 0..1 */
  int n_changed;
  int ckpt_f[BENCH_MAX_LIST], n_ckpt_f;
  /* recovery */
  size_t rec_size;
  int rec_f;                        /* 0: min(3, np - 1) */
  /* kernel */
  size_t kern_size[BENCH_MAX_LIST];
  int n_kern_size;
  int kern_k;
  /* fti */
  size_t fti_size;
  int fti_np;
  int fti_f;
  /* scrub */
  size_t scrub_size;
  int scrub_f;                      /* 0: min(2, np - 1) */
  /* byzantine */
  size_t byz_size;
  /* transport */
  double xor_secs;                  /* timed window of every repetition */
  /* persist */
  size_t persist_size;
  double persist_compute;           /* seconds of computing between checkpoints */
  const char *persist_dir;
  /* restart */
  size_t restart_size;              /* array bytes per rank */
  /* link */
  size_t link_size;                 /* bytes per put/accumulate of the bandwidth loops */
  size_t link_bytes;                /* bytes per rank per bandwidth repetition */
  /* ulfm */
  size_t ulfm_size;                 /* array bytes per compute rank */
  double ulfm_relaunch;             /* seconds of a job's abort + relaunch + MPI_Init, measured
                                       by ulfm_bench.sh in the same run (0: not measured) */
  const char *ulfm_probe;           /* "abort" or "init": ulfm_bench.sh's relaunch probes */
} bench_opts;

extern bench_opts g_opt;
extern int g_rank, g_size; /* MPI_COMM_WORLD */
extern int g_fail;         /* a check failed: exit status 1 */
/* Failure domain of every world rank as fuze numbers them for --domain
 * (rank: the rank; node: MPI_COMM_TYPE_SHARED, numbered by lowest rank) and
 * their count; set in main before any sub-benchmark. */
extern int *g_dom, g_ndom;

extern const char *const bench_mode_name[M_COUNT]; /* "fusion", "replicate" */
extern const char *const bench_mode_code[M_COUNT]; /* "rs", "replicate" */

/* ---- results (kept on world rank 0; every call is harmless elsewhere) ---- */

/* Record a result: the median, min and max of v[0..n-1]. mode is "fusion",
 * "replicate", or a reference ("memcpy", "fti"). hidden rows go to the CSV
 * only (the sub-benchmark prints its own table for them). */
void bench_row(const char *bench, const char *param, const char *mode, const char *unit,
               const double *v, int n);
void bench_row_hidden(const char *bench, const char *param, const char *mode, const char *unit,
                      const double *v, int n);
/* A row that could not be measured: CSV gets nan, the table the reason. */
void bench_row_na(const char *bench, const char *param, const char *mode, const char *unit,
                  const char *why);
/* Median of the recorded row (NAN when absent or unavailable). */
double bench_median(const char *bench, const char *param, const char *mode);
/* Print the rows recorded since the last call as a markdown table, grouped by
 * (bench, param): fusion, replicate, fusion/replicate, references. */
void bench_table(const char *title);
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* rm -rf dir (a benchmark's persistence directory); a failure is noted. */
void bench_rmdir(const char *dir);
int bench_csv_open(const char *path);
void bench_csv_close(void);

/* ---- helpers ---- */

double bench_median_of(const double *v, int n);
void bench_idle_barrier(MPI_Comm comm); /* barrier that sleeps instead of spinning */
double bench_max(MPI_Comm comm, double v);
uint64_t bench_sum_u64(MPI_Comm comm, uint64_t v);
/* "rank" or "node" (--domain): the domain= of update, checkpoint, recovery. */
const char *bench_domain(void);
/* fuze_init with "<base>,chunk=...,<--config>"; returns its status. */
int bench_init(MPI_Comm comm, const char *base, fuze_ctx **ctx, MPI_Comm *app);
/* Abort the job on an unexpected fuze error (message from the library). */
void bench_check(fuze_ctx *ctx, int rc, const char *what);
#define BENCH_CK(ctx, call) bench_check((ctx), (call), #call)
void bench_fmt_size(size_t bytes, char *buf, size_t len);
void *bench_alloc(size_t bytes); /* 64-byte aligned, aborts on failure, zeroed */
/* The plan fuze builds for domain=rank (or, for n == g_size with --domain
 * node, for the nodes of g_dom) and `spares` spare ranks among n (replicate:
 * blocks of one primary). Returns the planner's status. */
int bench_plan(int n, int spares, int f, int mode, fuze_plan *p);

/* ---- sub-benchmarks: collective over MPI_COMM_WORLD ---- */
void bench_space(void);
void bench_update(void);
void bench_concurrency(void);
void bench_checkpoint(void);
void bench_recovery(void);
void bench_kernel(void);
void bench_fti(void);
void bench_scrub(void);
void bench_byzantine(void);
void bench_transport(void);
void bench_persist(void);
void bench_persist_disk(void); /* called by bench_persist: disk use, write volume */
void bench_ulfm(void);
extern int g_world_broken; /* ulfm: MPI_COMM_WORLD holds dead ranks from then on */
void bench_link(void);
void bench_restart(void);

#endif
