/* heat2d: 2-D Jacobi heat diffusion protected by fuze (fused backups).
 *
 * The global ny x nx grid is split over an MPI Cartesian decomposition of the
 * application communicator returned by fuze_init(). Every rank holds its block
 * of the grid plus one layer of halo cells, in one contiguous row-major buffer
 * of (lny + 2) x (lnx + 2) doubles. Halos at the edge of the global grid hold
 * the fixed (Dirichlet) boundary values; the others are refreshed by a halo
 * exchange at the start of every step.
 *
 * One invocation runs the simulation twice on the same ranks:
 *   1. the failure-free reference, with no fuze call at all;
 *   2. the protected run: the whole local buffer (halos included, so the fixed
 *      boundary values come back with it) and the step counter are protected
 *      with fuze_protect(), and fuze_checkpoint() is called every K steps.
 *      When it returns FUZE_RECOVERED, every rank's buffers hold the last
 *      committed epoch, so the loop resumes from the restored step counter.
 * Both runs use the same per-cell arithmetic, so their final fields must be
 * bit-for-bit identical; heat2d compares exact checksums of the two.
 *
 * Restart: with "dir=PATH" in the configuration, fuze persists every committed
 * epoch to PATH. When the job is killed (e.g. inject=kill:rank=3:at=checkpoint:4)
 * and the same command is run again, fuze_init() returns FUZE_RESTARTED, the
 * registrations fill the field and the step counter from the persisted epoch
 * (decoding the files of lost failure domains), and the protected run resumes
 * from the restored step. The reference run is repeated (it is cheap and
 * fuze-free), so the restarted run is checked against it the same way.
 *
 * Faults are injected by the library from the configuration (--config or the
 * FUZE_* environment), e.g. "faults=2;domain=rank;inject=wipe:ranks=2+5:at=checkpoint:7",
 * or "faults=2;domain=rank;dir=/tmp/h;inject=kill:rank=3:at=checkpoint:4".
 *
 * Exit status: 0 when the checksum matches (or nothing to compare with),
 * 1 on a checksum mismatch or a fuze error, 2 on bad options.
 */
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

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

typedef struct options {
  long nx, ny;        /* global grid: ny rows x nx columns */
  long steps;         /* Jacobi sweeps */
  long every;         /* checkpoint every this many steps */
  const char *config; /* passed to fuze_init (NULL: defaults + FUZE_* env) */
  int have_expect;    /* --expect given */
  uint64_t expect;    /* expected checksum */
  int no_reference;   /* --no-reference */
  int help;           /* --help */
} options;

static void usage(FILE *out) {
  fprintf(out,
          "usage: heat2d [--nx N] [--ny N] [--steps N] [--every K] [--config STRING]\n"
          "              [--expect HEX] [--no-reference] [--help]\n"
          "\n"
          "2-D Jacobi heat diffusion whose state is protected by fuze fused backups.\n"
          "\n"
          "  --nx N           global grid columns (default 256)\n"
          "  --ny N           global grid rows (default 256)\n"
          "  --steps N        Jacobi steps (default 400)\n"
          "  --every K        fuze_checkpoint every K steps (default 20)\n"
          "  --config STRING  fuze configuration, e.g.\n"
          "                   \"faults=2;domain=rank;inject=wipe:ranks=2+5:at=checkpoint:7\"\n"
          "                   (FUZE_<KEY> environment variables override its keys);\n"
          "                   with dir=PATH every epoch is persisted to PATH and the\n"
          "                   same command restarts a killed job from it\n"
          "  --expect HEX     compare the final checksum with HEX instead of running\n"
          "                   the failure-free reference first\n"
          "  --no-reference   skip the failure-free reference run\n"
          "  --help           this text\n"
          "\n"
          "Exit status: 0 checksum matches (or nothing to compare with), 1 mismatch or\n"
          "fuze error, 2 bad options.\n");
}

static int parse_hex64(const char *s, uint64_t *out) {
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  if (*s == '\0' || strlen(s) > 16) return -1;
  for (const char *p = s; *p; p++) {
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
      return -1;
  }
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 16);
  if (errno != 0) return -1;
  *out = (uint64_t)v;
  return 0;
}

/* The options, in the order of the table below. */
enum { OPT_NX, OPT_NY, OPT_STEPS, OPT_EVERY, OPT_CONFIG, OPT_EXPECT, OPT_NO_REFERENCE, OPT_HELP };

static const fuze_app_option option_table[] = {
    [OPT_NX] = {"--nx", FUZE_APP_VALUE},
    [OPT_NY] = {"--ny", FUZE_APP_VALUE},
    [OPT_STEPS] = {"--steps", FUZE_APP_VALUE},
    [OPT_EVERY] = {"--every", FUZE_APP_VALUE},
    [OPT_CONFIG] = {"--config", FUZE_APP_VALUE},
    [OPT_EXPECT] = {"--expect", FUZE_APP_VALUE},
    [OPT_NO_REFERENCE] = {"--no-reference", FUZE_APP_FLAG_STRICT},
    [OPT_HELP] = {"--help", FUZE_APP_FLAG},
};

/* Returns 0, or -1 with a message in err. Accepts "--opt VALUE" and "--opt=VALUE". */
static int parse_options(int argc, char **argv, options *o, char *err, size_t errlen) {
  o->nx = 256;
  o->ny = 256;
  o->steps = 400;
  o->every = 20;
  o->config = NULL;
  o->have_expect = 0;
  o->expect = 0;
  o->no_reference = 0;
  o->help = 0;
  const long max_dim = 1L << 20;
  for (int i = 1; i < argc; i++) {
    const char *val = NULL;
    const int k = fuze_app_next_option(argc, argv, &i, option_table,
                                       sizeof option_table / sizeof option_table[0], &val, err,
                                       errlen);
    if (k < 0) return -1;
    int bad = 0;
    switch (k) {
      case OPT_NX: bad = parse_long(val, 1, max_dim, &o->nx); break;
      case OPT_NY: bad = parse_long(val, 1, max_dim, &o->ny); break;
      case OPT_STEPS: bad = parse_long(val, 0, INT32_MAX, &o->steps); break;
      case OPT_EVERY: bad = parse_long(val, 1, INT32_MAX, &o->every); break;
      case OPT_CONFIG: o->config = val; break;
      case OPT_EXPECT:
        bad = parse_hex64(val, &o->expect);
        o->have_expect = 1;
        break;
      case OPT_NO_REFERENCE: o->no_reference = 1; break;
      default: o->help = 1; break;
    }
    if (bad) return fuze_app_bad_value(val, option_table[k].name, err, errlen);
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Decomposition and grid                                                    */

typedef struct grid {
  MPI_Comm app;        /* the compute communicator it was made from (fuze_comm) */
  MPI_Comm cart;       /* Cartesian communicator, same ranks as the app communicator */
  int rank, size;
  int dims[2];         /* dims[0]: process rows, dims[1]: process columns */
  int coords[2];
  int up, down, left, right; /* neighbours, MPI_PROC_NULL at the global edge */
  long ny, nx;         /* global size */
  int lny, lnx;        /* local interior size */
  long gy0, gx0;       /* global index of the first interior row / column */
  int stride;          /* lnx + 2 */
  size_t ncells;       /* (lny + 2) * (lnx + 2): the whole local buffer */
  MPI_Datatype column; /* one interior column: lny doubles at stride `stride` */
} grid;

/* Block distribution of n items over p parts: part c gets len items from off. */
static void split(long n, int p, int c, int *len, long *off) {
  long base = n / p, rem = n % p;
  *len = (int)(base + (c < rem ? 1 : 0));
  *off = c * base + (c < rem ? c : rem);
}

/* Collective over app. Returns 0, or -1 (the same on every rank) when the grid
 * is too small for the decomposition. */
static int grid_create(MPI_Comm app, long ny, long nx, grid *g) {
  int periods[2] = {0, 0};
  memset(g, 0, sizeof *g);
  g->app = app;
  g->cart = MPI_COMM_NULL;
  g->column = MPI_DATATYPE_NULL;
  g->ny = ny;
  g->nx = nx;
  MPI_Comm_size(app, &g->size);
  MPI_Dims_create(g->size, 2, g->dims);
  if (g->dims[0] > ny || g->dims[1] > nx) return -1;
  /* reorder = 0: cart ranks are app ranks, which are the ranks fuze reports. */
  MPI_Cart_create(app, 2, g->dims, periods, 0, &g->cart);
  MPI_Comm_rank(g->cart, &g->rank);
  MPI_Cart_coords(g->cart, g->rank, 2, g->coords);
  MPI_Cart_shift(g->cart, 0, 1, &g->up, &g->down);
  MPI_Cart_shift(g->cart, 1, 1, &g->left, &g->right);
  split(ny, g->dims[0], g->coords[0], &g->lny, &g->gy0);
  split(nx, g->dims[1], g->coords[1], &g->lnx, &g->gx0);
  g->stride = g->lnx + 2;
  g->ncells = (size_t)(g->lny + 2) * (size_t)(g->lnx + 2);
  MPI_Type_vector(g->lny, 1, g->stride, MPI_DOUBLE, &g->column);
  MPI_Type_commit(&g->column);
  return 0;
}

static void grid_free(grid *g) {
  if (g->column != MPI_DATATYPE_NULL) MPI_Type_free(&g->column);
  if (g->cart != MPI_COMM_NULL) MPI_Comm_free(&g->cart);
}

/* Initial and boundary values as a function of the global cell (row gi,
 * column gj); gi == -1 / ny and gj == -1 / nx are the fixed boundary. */
static double initial_value(long gi, long gj, long ny, long nx) {
  if (gi < 0) return 100.0; /* hot top edge */
  if (gi >= ny) return 0.0; /* cold bottom edge */
  if (gj < 0 || gj >= nx)   /* side edges: linear from hot to cold */
    return 100.0 * (double)(ny - gi) / (double)(ny + 1);
  /* interior: cold, with a warm rectangle in the lower left quarter */
  if (gi >= ny / 2 && gi < (3 * ny) / 4 && gj >= nx / 8 && gj < (3 * nx) / 8) return 50.0;
  return 0.0;
}

static void field_init(const grid *g, double *u) {
  for (int i = 0; i < g->lny + 2; i++)
    for (int j = 0; j < g->lnx + 2; j++)
      u[(size_t)i * g->stride + j] =
          initial_value(g->gy0 + i - 1, g->gx0 + j - 1, g->ny, g->nx);
}

/* Refresh the halos from the neighbours; the global-edge halos keep the
 * boundary values (MPI_PROC_NULL neighbours). */
static void halo_exchange(const grid *g, double *u) {
  const size_t s = (size_t)g->stride;
  const int lny = g->lny, lnx = g->lnx;
  MPI_Sendrecv(u + s + 1, lnx, MPI_DOUBLE, g->up, 0, u + (size_t)(lny + 1) * s + 1, lnx,
               MPI_DOUBLE, g->down, 0, g->cart, MPI_STATUS_IGNORE);
  MPI_Sendrecv(u + (size_t)lny * s + 1, lnx, MPI_DOUBLE, g->down, 1, u + 1, lnx, MPI_DOUBLE,
               g->up, 1, g->cart, MPI_STATUS_IGNORE);
  MPI_Sendrecv(u + s + 1, 1, g->column, g->left, 2, u + s + (size_t)lnx + 1, 1, g->column,
               g->right, 2, g->cart, MPI_STATUS_IGNORE);
  MPI_Sendrecv(u + s + (size_t)lnx, 1, g->column, g->right, 3, u + s, 1, g->column, g->left,
               3, g->cart, MPI_STATUS_IGNORE);
}

/* One Jacobi step: u <- average of the 4 neighbours. `scratch` is any buffer of
 * g->ncells doubles; the result ends up in u (the protected buffer), so u's
 * address never changes. The per-cell expression is the same in both runs. */
static void jacobi_step(const grid *g, double *u, double *scratch) {
  const size_t s = (size_t)g->stride;
  halo_exchange(g, u);
  for (size_t i = 1; i <= (size_t)g->lny; i++) {
    for (size_t j = 1; j <= (size_t)g->lnx; j++) {
      const size_t c = i * s + j;
      scratch[c] = 0.25 * ((u[c - s] + u[c + s]) + (u[c - 1] + u[c + 1]));
    }
  }
  for (size_t i = 1; i <= (size_t)g->lny; i++)
    memcpy(u + i * s + 1, scratch + i * s + 1, (size_t)g->lnx * sizeof(double));
}

/* ------------------------------------------------------------------------ */
/* Checksum                                                                  */

/* splitmix64 finaliser: a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t z) {
  z += UINT64_C(0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

typedef struct checksum {
  uint64_t hash; /* exact: sum mod 2^64 of mix64(bits ^ mix64(global index)) */
  double sum;    /* floating sum of the field, for humans only */
} checksum;

/* Exact checksum of the global interior. Each cell contributes a hash of its
 * 64 bits keyed by its global index, and the contributions are added mod
 * 2^64: any single-bit change in any cell changes the result, and the result
 * depends neither on the reduction order nor on the decomposition (the same
 * grid gives the same checksum on any number of ranks). Collective; the
 * result is valid on rank 0. */
static checksum field_checksum(const grid *g, const double *u) {
  uint64_t h = 0;
  double sum = 0.0;
  for (int i = 1; i <= g->lny; i++) {
    for (int j = 1; j <= g->lnx; j++) {
      const double v = u[(size_t)i * g->stride + j];
      uint64_t bits;
      memcpy(&bits, &v, sizeof bits);
      const uint64_t gidx = (uint64_t)(g->gy0 + i - 1) * (uint64_t)g->nx + (uint64_t)(g->gx0 + j - 1);
      h += mix64(bits ^ mix64(gidx));
      sum += v;
    }
  }
  checksum c = {0, 0.0};
  MPI_Reduce(&h, &c.hash, 1, MPI_UINT64_T, MPI_SUM, 0, g->cart);
  MPI_Reduce(&sum, &c.sum, 1, MPI_DOUBLE, MPI_SUM, 0, g->cart);
  return c;
}

/* Report a fuze error from rank 0 (collective calls fail on every rank). */
static void report_fuze_error(const fuze_ctx *ctx, const char *call, int rc, int64_t step) {
  if (!g_rank0) return;
  char where[48];
  snprintf(where, sizeof where, " at step %" PRId64, step);
  fuze_app_fuze_error("heat2d", call, rc, where, fuze_last_error(ctx));
}

/* ------------------------------------------------------------------------ */
/* The two runs                                                              */

/* Failure-free reference: no fuze call at all. Collective. */
static int run_reference(const grid *g, long steps, checksum *out, double *seconds) {
  double *u = malloc(g->ncells * sizeof(double));
  double *scratch = malloc(g->ncells * sizeof(double));
  int ok = (u != NULL && scratch != NULL);
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, g->cart);
  if (!ok) {
    free(u);
    free(scratch);
    return -1;
  }
  MPI_Barrier(g->cart);
  double t0 = MPI_Wtime();
  field_init(g, u);
  for (long s = 0; s < steps; s++) jacobi_step(g, u, scratch);
  *seconds = MPI_Wtime() - t0;
  *out = field_checksum(g, u);
  free(u);
  free(scratch);
  return 0;
}

typedef struct run_report {
  checksum sum;
  double seconds;        /* wall time of the protected run */
  double ckpt_seconds;   /* time spent in fuze_checkpoint (rank 0) */
  long ckpt_calls;       /* fuze_checkpoint calls */
  long recoveries;       /* FUZE_RECOVERED seen by the app */
  long steps_redone;     /* steps recomputed after rollbacks */
  int64_t restart_step;  /* the step a restart resumed at (-1: not restarted) */
} run_report;

/* The protected state. It is registered with fuze, so it must stay at the same
 * address until fuze_finalize(): main() owns it and frees it only after that. */
typedef struct protected_state {
  double *u;       /* protected: the whole local block, halos included */
  double *scratch; /* not protected: overwritten by every step */
  int64_t step;    /* protected: the step u is at */
} protected_state;

/* The protected run. Collective. Returns 0 or a negative fuze status (already
 * reported), or FUZE_ERR_NOMEM / FUZE_ERR_STATE for the app's own failures. */
/* After FUZE_RECOVERED, on the survivors and (once registered) on a rank that
 * replaced a dead one: every rank makes these collectives in this order.
 * Under ULFM the compute communicator is a new one (fuze_comm): the
 * Cartesian grid is made again on it (same size and rank order, so the same
 * decomposition). Then the restored step counter is checked: a checkpointed
 * step, the same everywhere. Returns 0, or -1 on every rank. */
static int resync(fuze_ctx *ctx, grid *g, double dt, int64_t at, long every, int64_t step,
                  double *dtmax) {
  MPI_Comm app = fuze_comm(ctx);
  if (app != g->app) {
    long ny = g->ny, nx = g->nx;
    grid_free(g);
    grid_create(app, ny, nx, g);
  }
  *dtmax = dt;
  MPI_Reduce(&dt, dtmax, 1, MPI_DOUBLE, MPI_MAX, 0, g->cart);
  int64_t lo = step, hi = step;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT64_T, MPI_MIN, g->cart);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT64_T, MPI_MAX, g->cart);
  if (lo != hi || lo < 0 || lo > at || lo % every != 0) {
    if (g_rank0)
      fprintf(stderr, "heat2d: after FUZE_RECOVERED at step %" PRId64 " the restored step "
              "counters are inconsistent (min %" PRId64 ", max %" PRId64 ")\n", at, lo, hi);
    return -1;
  }
  return 0;
}

static int run_protected(fuze_ctx *ctx, grid *g, long steps, long every, int restarted,
                         int joined, protected_state *ps, run_report *rep) {
  int rc = FUZE_SUCCESS;
  memset(rep, 0, sizeof *rep);
  rep->restart_step = -1;
  ps->step = 0;
  ps->u = malloc(g->ncells * sizeof(double));
  ps->scratch = malloc(g->ncells * sizeof(double));
  double *const u = ps->u, *const scratch = ps->scratch;

  int ok = (u != NULL && scratch != NULL);
  if (joined && !ok) MPI_Abort(MPI_COMM_WORLD, 1); /* the survivors wait in resync */
  if (!joined) {
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, g->cart);
    if (!ok) {
      SAY_ERR("heat2d: out of memory for the protected run\n");
      return FUZE_ERR_NOMEM;
    }
    MPI_Barrier(g->cart);
  }
  const double t0 = MPI_Wtime();
  field_init(g, u);

  if (restarted) {
    /* The registrations below restore the persisted epoch into u and
     * ps->step; they need buffers of the stored sizes. The decomposition is
     * a function of the grid size and the rank count, so a rerun of the same
     * command gets the same; anything else is refused here with the sizes. */
    size_t stored = 0;
    if (fuze_app_stored_count("heat2d", ctx, g->cart, "heat2d.field", g->ncells, &stored) != 0 ||
        fuze_app_stored_count("heat2d", ctx, g->cart, "heat2d.step", 1, &stored) != 0) {
      SAY_ERR("heat2d: cannot restart: the persisted epoch does not fit this grid and "
              "decomposition (rerun the command that persisted it)\n");
      return FUZE_ERR_ARG;
    }
  }

  /* The initial contents become the committed epoch 0, so even a failure
   * before the first checkpoint rolls back to step 0. After a restart, the
   * registrations overwrite them with the persisted epoch instead. */
  rc = fuze_protect(ctx, "heat2d.field", u, g->ncells, MPI_DOUBLE, NULL);
  if (rc < 0) {
    report_fuze_error(ctx, "fuze_protect(heat2d.field)", rc, ps->step);
    return rc;
  }
  rc = fuze_protect(ctx, "heat2d.step", &ps->step, 1, MPI_INT64_T, NULL);
  if (rc < 0) {
    report_fuze_error(ctx, "fuze_protect(heat2d.step)", rc, ps->step);
    return rc;
  }
  if (joined) {
    /* This rank replaced a dead one: the registrations above restored its
     * state (the epoch the survivors rolled back to); it meets them in the
     * resync they make after FUZE_RECOVERED. */
    double dtmax = 0.0;
    if (resync(ctx, g, 0.0, INT64_MAX, every, ps->step, &dtmax) != 0) return FUZE_ERR_STATE;
    rep->recoveries++;
    int wrank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    printf("heat2d: world rank %d replaced dead rank %d: restored to step %" PRId64 ", going on\n",
           wrank, g->rank, ps->step);
    fflush(stdout);
  }
  if (restarted) {
    /* Sanity: the restored counter is a checkpointed step, the same everywhere. */
    int64_t lo = ps->step, hi = ps->step;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT64_T, MPI_MIN, g->cart);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT64_T, MPI_MAX, g->cart);
    if (lo != hi || lo < 0 || lo % every != 0) {
      SAY_ERR("heat2d: after FUZE_RESTARTED the restored step counters are inconsistent (min %"
              PRId64 ", max %" PRId64 ", --every %ld)\n", lo, hi, every);
      return FUZE_ERR_STATE;
    }
    fuze_stats st;
    memset(&st, 0, sizeof st);
    fuze_get_stats(ctx, &st);
    rep->restart_step = ps->step;
    SAY("heat2d: restarted from the persisted epoch %" PRIu64 ": resuming at step %" PRId64
        " of %ld\n", st.epoch, ps->step, steps);
  }

  /* A library that kept returning FUZE_RECOVERED would loop forever: cap the
   * number of collective fuze calls far above what the run needs. */
  const long max_calls = 10 * (steps / every + 1) + 100;
  long calls = 0;

  for (;;) {
    while (ps->step < steps) {
      jacobi_step(g, u, scratch);
      ps->step++;
      if (ps->step % every != 0) continue;

      const int64_t at = ps->step;
      rep->ckpt_calls++;
      const double c0 = MPI_Wtime();
      rc = fuze_checkpoint(ctx);
      const double dt = MPI_Wtime() - c0;
      rep->ckpt_seconds += dt;
      if (rc < 0) {
        report_fuze_error(ctx, "fuze_checkpoint", rc, at);
        return rc;
      }
      if (rc == FUZE_RECOVERED) {
        /* Every rank's buffers now hold the last committed epoch, the step
         * counter included; the loop resumes from there (the halos are
         * refreshed by the exchange at the start of the next step). */
        double dtmax = dt;
        rep->recoveries++;
        if (resync(ctx, g, dt, at, every, ps->step, &dtmax) != 0) return FUZE_ERR_STATE;
        SAY("heat2d: FUZE_RECOVERED by checkpoint call #%ld at step %" PRId64
            ": resuming from step %" PRId64 " (the call took %.4f s, max over ranks)\n",
            rep->ckpt_calls, at, ps->step, dtmax);
        rep->steps_redone += (long)(at - ps->step);
      } else if (rc != FUZE_SUCCESS) {
        SAY_ERR("heat2d: fuze_checkpoint returned unexpected status %d (%s), ignored\n", rc,
            fuze_err_name(rc));
      }
      if (++calls > max_calls) {
        SAY_ERR("heat2d: giving up after %ld fuze calls without finishing\n", calls);
        return FUZE_ERR_STATE;
      }
    }
    /* A failure after the last checkpoint would go unnoticed: ask once more.
     * If it finds lost ranks, everything rolls back and the loop goes on. */
    const double c0 = MPI_Wtime();
    rc = fuze_recover(ctx);
    const double dt = MPI_Wtime() - c0;
    if (rc < 0) {
      report_fuze_error(ctx, "fuze_recover", rc, ps->step);
      return rc;
    }
    if (rc != FUZE_RECOVERED) break;
    double dtmax = dt;
    rep->recoveries++;
    if (resync(ctx, g, dt, steps, every, ps->step, &dtmax) != 0) return FUZE_ERR_STATE;
    SAY("heat2d: FUZE_RECOVERED by the final fuze_recover at step %ld: resuming from step %"
        PRId64 " (the call took %.4f s, max over ranks)\n", steps, ps->step, dtmax);
    rep->steps_redone += (long)(steps - ps->step);
    if (++calls > max_calls) {
      SAY_ERR("heat2d: giving up after %ld fuze calls without finishing\n", calls);
      return FUZE_ERR_STATE;
    }
  }
  rep->seconds = MPI_Wtime() - t0;
  rep->sum = field_checksum(g, u);
  return FUZE_SUCCESS;
}

/* ------------------------------------------------------------------------ */

static void print_stats(const fuze_ctx *ctx, const grid *g, int nspare) {
  fuze_app_stats st;
  if (fuze_app_sum_stats("heat2d", ctx, g->cart, &st) != 0) return;
  if (!g_rank0) return;
  fuze_app_print_stats("heat2d", &st, g->size, nspare);
  if (nspare == 0 && st.bytes[0] > 0)
    printf("heat2d: parity / protected = %.3f\n", (double)st.bytes[1] / (double)st.bytes[0]);
  fflush(stdout);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int wsize = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);

  options opt;
  char err[256] = "";
  const int parse_rc = parse_options(argc, argv, &opt, err, sizeof err);
  int exit_now = fuze_app_options_done("heat2d", parse_rc, err, opt.help, usage);
  if (exit_now >= 0) return exit_now;

  fuze_ctx *ctx = NULL;
  MPI_Comm app = MPI_COMM_NULL;
  /* The demo shows what the library does: its plan, each injected failure and
   * each recovery (verbose=1 first, so a verbose key of --config wins). */
  size_t cfg_len = strlen("verbose=1,") + (opt.config ? strlen(opt.config) : 0) + 1;
  char *fuze_config = malloc(cfg_len);
  if (!fuze_config) {
    fprintf(stderr, "heat2d: out of memory\n");
    MPI_Finalize();
    return 1;
  }
  snprintf(fuze_config, cfg_len, "verbose=1%s%s", opt.config ? "," : "",
           opt.config ? opt.config : "");
  int restarted = 0, joined = 0;
  exit_now = fuze_app_init_ft("heat2d", fuze_config, &ctx, &app, &restarted, &joined);
  free(fuze_config);
  if (exit_now >= 0) return exit_now; /* fuze_init failed, or a spare rank */

  int arank = 0, asize = 1;
  MPI_Comm_rank(app, &arank);
  MPI_Comm_size(app, &asize);
  g_rank0 = (arank == 0);

  int status = 0;
  protected_state ps = {NULL, NULL, 0};
  run_report rep;
  grid g;
  if (grid_create(app, opt.ny, opt.nx, &g) != 0) {
    if (g_rank0)
      fprintf(stderr, "heat2d: the %ld x %ld grid is too small for %d ranks arranged %d x %d\n",
              opt.ny, opt.nx, asize, g.dims[0], g.dims[1]);
    fuze_finalize(&ctx);
    MPI_Comm_free(&app);
    MPI_Finalize();
    return 2;
  }

  {
    int len_lo, len_hi, wid_lo, wid_hi;
    long off;
    split(opt.ny, g.dims[0], g.dims[0] - 1, &len_lo, &off);
    split(opt.ny, g.dims[0], 0, &len_hi, &off);
    split(opt.nx, g.dims[1], g.dims[1] - 1, &wid_lo, &off);
    split(opt.nx, g.dims[1], 0, &wid_hi, &off);
    SAY("heat2d: grid %ld x %ld (rows x columns), %d compute ranks as %d x %d, %d spare or "
        "replacement rank%s\n", opt.ny, opt.nx, asize, g.dims[0], g.dims[1], wsize - asize,
        wsize - asize == 1 ? "" : "s");
    if (len_lo == len_hi && wid_lo == wid_hi)
      SAY("heat2d: local blocks %d x %d cells (+1 halo layer)\n", len_hi, wid_hi);
    else
      SAY("heat2d: local blocks %d..%d x %d..%d cells (+1 halo layer)\n", len_lo, len_hi,
          wid_lo, wid_hi);
    if (opt.config)
      SAY("heat2d: %ld steps, checkpoint every %ld steps, fuze config \"%s\"\n", opt.steps,
          opt.every, opt.config);
    else
      SAY("heat2d: %ld steps, checkpoint every %ld steps, fuze config: defaults and FUZE_* "
          "environment\n", opt.steps, opt.every);
  }

  /* 1. The failure-free reference (or the expected checksum). */
  checksum ref = {0, 0.0};
  int have_ref = 0;
  if (joined) {
    /* A replacement rank (ULFM) joins the protected run where the survivors are. */
  } else if (opt.have_expect) {
    ref.hash = opt.expect;
    have_ref = 1;
    SAY("heat2d: expected checksum %016" PRIx64 " (--expect), reference run skipped\n", ref.hash);
  } else if (!opt.no_reference) {
    double secs = 0.0;
    if (run_reference(&g, opt.steps, &ref, &secs) != 0) {
      SAY_ERR("heat2d: out of memory for the reference run\n");
      status = 1;
      goto finish;
    }
    have_ref = 1;
    SAY("heat2d: reference run (no fuze): %.3f s, checksum %016" PRIx64 ", sum %.10e\n", secs,
        ref.hash, ref.sum);
  } else {
    SAY("heat2d: reference run skipped (--no-reference)\n");
  }

  /* 2. The protected run. */
  SAY("heat2d: protecting \"heat2d.field\" (whole local block with halos, MPI_DOUBLE) and "
      "\"heat2d.step\" (MPI_INT64_T)\n");
  if (run_protected(ctx, &g, opt.steps, opt.every, restarted, joined, &ps, &rep) < 0) {
    status = 1;
    goto finish;
  }
  SAY("heat2d: protected run: %.3f s, %ld checkpoint calls (%.3f s in fuze_checkpoint on rank 0), "
      "%ld recover%s, %ld steps recomputed\n",
      rep.seconds, rep.ckpt_calls, rep.ckpt_seconds, rep.recoveries,
      rep.recoveries == 1 ? "y" : "ies", rep.steps_redone);
  if (rep.restart_step >= 0)
    SAY("heat2d: this run restarted at step %" PRId64 " from the persisted epoch: the first %"
        PRId64 " steps were computed by the run that persisted it\n", rep.restart_step,
        rep.restart_step);
  print_stats(ctx, &g, wsize - asize);

  SAY("heat2d: checksum %016" PRIx64 ", sum %.10e (protected run)\n", rep.sum.hash, rep.sum.sum);
  {
    /* A replacement rank (rank 0's included) has no reference of its own:
     * it comes from the lowest rank that has one. */
    struct { int missing, rank; } in = {!have_ref, g.rank}, src;
    MPI_Allreduce(&in, &src, 1, MPI_2INT, MPI_MINLOC, g.cart);
    if (src.missing == 0) {
      MPI_Bcast(&ref, (int)sizeof ref, MPI_BYTE, src.rank, g.cart);
      have_ref = 1;
    }
  }
  if (have_ref) {
    if (opt.have_expect)
      SAY("heat2d: checksum %016" PRIx64 " (expected)\n", ref.hash);
    else
      SAY("heat2d: checksum %016" PRIx64 ", sum %.10e (failure-free reference)\n", ref.hash,
          ref.sum);
    int match = (rep.sum.hash == ref.hash);
    MPI_Bcast(&match, 1, MPI_INT, 0, g.cart);
    if (match) {
      SAY("heat2d: checksum matches failure-free run\n");
    } else {
      SAY("heat2d: CHECKSUM MISMATCH\n");
      status = 1;
    }
  } else {
    SAY("heat2d: no reference checksum to compare with\n");
  }

finish:
  if (fuze_app_finalize("heat2d", &ctx) != 0) status = 1;
  /* Only now, with fuze finalized, may the protected buffers go away. */
  free(ps.u);
  free(ps.scratch);
  grid_free(&g);
  MPI_Comm_free(&app);
  MPI_Finalize();
  return status;
}
