/* fuze-bench: results table, CSV, and MPI helpers shared by the
 * sub-benchmarks. Results live on world rank 0 only. */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bench_opts g_opt;
int g_rank, g_size, g_fail;
int *g_dom, g_ndom;

const char *const bench_mode_name[M_COUNT] = {"fusion", "replicate"};
const char *const bench_mode_code[M_COUNT] = {"rs", "replicate"};

typedef struct row {
  char bench[32], param[96], mode[16], unit[16], why[96];
  double med, min, max;
  int avail, hidden;
} row;

static row *g_rows;
static int g_nrows, g_cap, g_printed;
static FILE *g_csv;

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double bench_median_of(const double *v, int n) {
  if (n <= 0) return NAN;
  double s[BENCH_MAX_REPS];
  if (n > BENCH_MAX_REPS) n = BENCH_MAX_REPS;
  memcpy(s, v, sizeof(double) * (size_t)n);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* ---- rows ---- */

static void csv_write(const row *r) {
  if (!g_csv) return;
  if (r->avail)
    fprintf(g_csv, "%s,%s,%s,%.9g,%.9g,%.9g,%s\n", r->bench, r->param, r->mode, r->med, r->min,
            r->max, r->unit);
  else
    fprintf(g_csv, "%s,%s,%s,nan,nan,nan,%s\n", r->bench, r->param, r->mode, r->unit);
  fflush(g_csv);
}

static row *row_new(const char *bench, const char *param, const char *mode, const char *unit) {
  if (g_rank != 0) return NULL;
  if (g_nrows == g_cap) {
    g_cap = g_cap ? 2 * g_cap : 256;
    g_rows = realloc(g_rows, sizeof *g_rows * (size_t)g_cap);
    if (!g_rows) {
      fprintf(stderr, "fuze-bench: out of memory\n");
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  row *r = &g_rows[g_nrows++];
  memset(r, 0, sizeof *r);
  snprintf(r->bench, sizeof r->bench, "%s", bench);
  snprintf(r->param, sizeof r->param, "%s", param);
  snprintf(r->mode, sizeof r->mode, "%s", mode);
  snprintf(r->unit, sizeof r->unit, "%s", unit);
  return r;
}

static void row_add(const char *bench, const char *param, const char *mode, const char *unit,
                    const double *v, int n, int hidden) {
  row *r = row_new(bench, param, mode, unit);
  if (!r) return;
  r->avail = 1;
  r->hidden = hidden;
  r->med = bench_median_of(v, n);
  r->min = r->max = n > 0 ? v[0] : NAN;
  for (int x = 1; x < n; x++) {
    if (v[x] < r->min) r->min = v[x];
    if (v[x] > r->max) r->max = v[x];
  }
  csv_write(r);
}

void bench_row(const char *bench, const char *param, const char *mode, const char *unit,
               const double *v, int n) {
  row_add(bench, param, mode, unit, v, n, 0);
}

void bench_row_hidden(const char *bench, const char *param, const char *mode, const char *unit,
                      const double *v, int n) {
  row_add(bench, param, mode, unit, v, n, 1);
}

void bench_row_na(const char *bench, const char *param, const char *mode, const char *unit,
                  const char *why) {
  row *r = row_new(bench, param, mode, unit);
  if (!r) return;
  r->avail = 0;
  r->med = r->min = r->max = NAN;
  snprintf(r->why, sizeof r->why, "%s", why);
  csv_write(r);
}

double bench_median(const char *bench, const char *param, const char *mode) {
  for (int x = g_nrows - 1; x >= 0; x--) {
    const row *r = &g_rows[x];
    if (!strcmp(r->bench, bench) && !strcmp(r->param, param) && !strcmp(r->mode, mode))
      return r->avail ? r->med : NAN;
  }
  return NAN;
}

/* ---- table ---- */

static void fmt_value(const row *r, char *buf, size_t len) {
  if (!r) {
    snprintf(buf, len, "-");
  } else if (!r->avail) {
    snprintf(buf, len, "unavailable (%s)", r->why);
  } else if (r->min == r->max) {
    snprintf(buf, len, "%.4g %s", r->med, r->unit);
  } else {
    snprintf(buf, len, "%.4g %s (%.4g-%.4g)", r->med, r->unit, r->min, r->max);
  }
}

void bench_table(const char *title) {
  if (g_rank != 0) return;
  int first = g_printed;
  g_printed = g_nrows;
  int any = 0;
  for (int x = first; x < g_nrows; x++) any |= !g_rows[x].hidden;
  if (!any) return;
  printf("\n### %s\n\n", title);
  printf("| bench | param | fusion | replicate | fusion/replicate | reference |\n");
  printf("|---|---|---|---|---|---|\n");
  char *done = calloc((size_t)g_nrows, 1);
  for (int x = first; x < g_nrows; x++) {
    if (done[x] || g_rows[x].hidden) continue;
    const row *fus = NULL, *rep = NULL;
    char ref[512] = "";
    size_t rl = 0;
    for (int y = x; y < g_nrows; y++) {
      row *r = &g_rows[y];
      if (done[y] || r->hidden || strcmp(r->bench, g_rows[x].bench) ||
          strcmp(r->param, g_rows[x].param))
        continue;
      done[y] = 1;
      if (!strcmp(r->mode, "fusion")) fus = r;
      else if (!strcmp(r->mode, "replicate")) rep = r;
      else {
        char v[160];
        fmt_value(r, v, sizeof v);
        rl += (size_t)snprintf(ref + rl, rl < sizeof ref ? sizeof ref - rl : 0, "%s%s: %s",
                               rl ? "; " : "", r->mode, v);
      }
    }
    char fv[160], rv[160], ratio[32] = "-";
    fmt_value(fus, fv, sizeof fv);
    fmt_value(rep, rv, sizeof rv);
    if (fus && rep && fus->avail && rep->avail && rep->med != 0)
      snprintf(ratio, sizeof ratio, "%.3g", fus->med / rep->med);
    printf("| %s | %s | %s | %s | %s | %s |\n", g_rows[x].bench, g_rows[x].param, fv, rv, ratio,
           rl ? ref : "-");
  }
  free(done);
  fflush(stdout);
}

void bench_rmdir(const char *dir) {
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) bench_note("could not remove %s\n", dir);
}

void bench_note(const char *fmt, ...) {
  if (g_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

int bench_csv_open(const char *path) {
  if (g_rank != 0 || !path) return 0;
  g_csv = fopen(path, "w");
  if (!g_csv) return -1;
  fprintf(g_csv, "bench,param,mode,median,min,max,unit\n");
  fflush(g_csv);
  return 0;
}

void bench_csv_close(void) {
  if (g_csv) fclose(g_csv);
  g_csv = NULL;
  free(g_rows);
  g_rows = NULL;
  g_nrows = g_cap = g_printed = 0;
}

/* ---- MPI and fuze helpers ---- */

void bench_idle_barrier(MPI_Comm comm) {
  MPI_Request req;
  MPI_Ibarrier(comm, &req);
  int done = 0;
  struct timespec ts = {0, 200000};
  for (;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) break;
    nanosleep(&ts, NULL);
  }
}

double bench_max(MPI_Comm comm, double v) {
  double out;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, comm);
  return out;
}

uint64_t bench_sum_u64(MPI_Comm comm, uint64_t v) {
  uint64_t out;
  MPI_Allreduce(&v, &out, 1, MPI_UINT64_T, MPI_SUM, comm);
  return out;
}

const char *bench_domain(void) { return g_opt.domain_node ? "node" : "rank"; }

int bench_init(MPI_Comm comm, const char *base, fuze_ctx **ctx, MPI_Comm *app) {
  char cfg[1024];
  int n = snprintf(cfg, sizeof cfg, "%s,chunk=%zu", base, g_opt.chunk);
  if (g_opt.config && *g_opt.config)
    snprintf(cfg + n, sizeof cfg - (size_t)n, ",%s", g_opt.config);
  return fuze_init(comm, cfg, ctx, app);
}

void bench_check(fuze_ctx *ctx, int rc, const char *what) {
  if (rc >= 0) return;
  fprintf(stderr, "fuze-bench: rank %d: %s returned %s: %s\n", g_rank, what, fuze_err_name(rc),
          fuze_last_error(ctx));
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

void bench_fmt_size(size_t bytes, char *buf, size_t len) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) snprintf(buf, len, "%zuMiB", bytes >> 20);
  else if (bytes >= 1024 && bytes % 1024 == 0) snprintf(buf, len, "%zuKiB", bytes >> 10);
  else snprintf(buf, len, "%zuB", bytes);
}

void *bench_alloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
    fprintf(stderr, "fuze-bench: rank %d: cannot allocate %zu bytes\n", g_rank, bytes);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  memset(p, 0, bytes ? bytes : 64);
  return p;
}

int bench_plan(int n, int spares, int f, int mode, fuze_plan *p) {
  int *dom = malloc(sizeof(int) * (size_t)n);
  if (!dom) return FUZE_ERR_NOMEM;
  int nd = n;
  for (int r = 0; r < n; r++) dom[r] = r;
  if (g_opt.domain_node && n == g_size && g_dom) {
    memcpy(dom, g_dom, sizeof(int) * (size_t)n);
    nd = g_ndom;
  }
  fuze_plan_input in = {n, dom, nd, spares, f, mode == M_REPLICATE ? 1 : 0};
  char err[256];
  int rc = fuze__plan_build(&in, p, err, sizeof err);
  free(dom);
  return rc;
}
