/* fuze_app.h: helpers shared by the example apps (heat2d, kvstore, nqueens).
 *
 * Every app is one translation unit that includes this header once, so the
 * helpers are static inline functions and macros, and the header also defines
 * the one piece of state they share, g_rank0. Nothing here is part of the fuze
 * library's API: it only keeps the apps' option parsing, rank-0 output and
 * error reporting identical without copying them from app to app.
 *
 * All messages start with the app's name followed by ": ", so an app passes
 * its name (e.g. "heat2d") to the helpers that print.
 */
#ifndef FUZE_APP_H
#define FUZE_APP_H

#include <fuze.h>
#include <mpi.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Rank-0 output                                                             */

/* Whether this process is rank 0 of the app communicator returned by
 * fuze_init(). The app sets it once it knows its rank; until then it is 0, so
 * SAY and SAY_ERR print nothing. */
static int g_rank0 = 0;

/* Rank 0 prints a message on stdout (printf arguments) and flushes it, so the
 * output of a run arrives in order even when it is cut short. */
#define SAY(...)                                                                   \
  do {                                                                             \
    if (g_rank0) {                                                                 \
      printf(__VA_ARGS__);                                                         \
      fflush(stdout);                                                              \
    }                                                                              \
  } while (0)

/* Rank 0 prints an error on stderr (printf arguments). It flushes stdout first
 * and stderr after, so the error comes after everything printed before it. */
#define SAY_ERR(...)                                                               \
  do {                                                                             \
    if (g_rank0) {                                                                 \
      fflush(stdout);                                                              \
      fprintf(stderr, __VA_ARGS__);                                                \
      fflush(stderr);                                                              \
    }                                                                              \
  } while (0)

/* Writes a byte count in a human-readable unit ("1.50 MiB", "12.0 KiB",
 * "512 B") into buf, which holds len bytes; 32 bytes are always enough. */
static inline void human_bytes(uint64_t b, char *buf, size_t len) {
  if (b >= (UINT64_C(1) << 30)) snprintf(buf, len, "%.2f GiB", (double)b / (double)(1u << 30));
  else if (b >= (UINT64_C(1) << 20)) snprintf(buf, len, "%.2f MiB", (double)b / (double)(1u << 20));
  else if (b >= (UINT64_C(1) << 10)) snprintf(buf, len, "%.1f KiB", (double)b / 1024.0);
  else snprintf(buf, len, "%" PRIu64 " B", b);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                   */

/* How an option of the command line is written. Every option starts with
 * "--"; a value is given as "--opt VALUE" or "--opt=VALUE". */
typedef enum fuze_app_option_kind {
  FUZE_APP_VALUE = 0,   /* the option needs a value */
  FUZE_APP_FLAG,        /* the option takes no value; one given with '=' is ignored */
  FUZE_APP_FLAG_STRICT  /* the option takes no value; one given with '=' is an error */
} fuze_app_option_kind;

/* One option an app accepts: its name, "--" included, and how it is written. */
typedef struct fuze_app_option {
  const char *name;
  fuze_app_option_kind kind;
} fuze_app_option;

/* Parses a decimal long in [lo, hi] into *out. Returns 0, or -1 (and leaves
 * *out alone) when s is not a whole decimal number within the bounds. */
static inline int parse_long(const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Reads the option at argv[*i], one of the nopts options of opts. On success
 * it returns the option's index in opts and sets *val to its value (NULL for a
 * flag); when the value is the next argument, *i is advanced past it. On error
 * it returns -1 with a message in err (errlen bytes): an argument that does
 * not start with "--", an unknown option, a flag given a value it must not
 * have, or a missing value. */
static inline int fuze_app_next_option(int argc, char **argv, int *i,
                                       const fuze_app_option *opts, size_t nopts,
                                       const char **val, char *err, size_t errlen) {
  const char *arg = argv[*i];
  const char *eq = strchr(arg, '=');
  char name[32];
  *val = NULL;
  if (strncmp(arg, "--", 2) != 0) {
    snprintf(err, errlen, "unexpected argument '%s'", arg);
    return -1;
  }
  const size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
  if (nlen >= sizeof name) {
    snprintf(err, errlen, "unknown option '%s'", arg);
    return -1;
  }
  memcpy(name, arg, nlen);
  name[nlen] = '\0';
  for (size_t k = 0; k < nopts; k++) {
    if (strcmp(name, opts[k].name) != 0) continue;
    if (opts[k].kind == FUZE_APP_FLAG) return (int)k;
    if (opts[k].kind == FUZE_APP_FLAG_STRICT) {
      if (!eq) return (int)k;
      snprintf(err, errlen, "option '%s' takes no value", name);
      return -1;
    }
    if (eq) {
      *val = eq + 1;
    } else if (*i + 1 < argc) {
      *val = argv[++*i];
    } else {
      snprintf(err, errlen, "option '%s' needs a value", name);
      return -1;
    }
    return (int)k;
  }
  snprintf(err, errlen, "unknown option '%s'", name);
  return -1;
}

/* Writes the message for a value that option `name` does not accept into err
 * (errlen bytes) and returns -1, the error return of an app's option parser. */
static inline int fuze_app_bad_value(const char *val, const char *name, char *err,
                                     size_t errlen) {
  snprintf(err, errlen, "bad value '%s' for option '%s'", val, name);
  return -1;
}

/* Ends the option stage of main(), after MPI_Init() and the app's option
 * parser (parse_rc is its return value, err its message, help whether --help
 * was given). On a parse error, world rank 0 prints the message and the usage
 * on stderr and the exit status is 2; with --help, world rank 0 prints the
 * usage on stdout and the exit status is 0. In both cases MPI_Finalize() has
 * been called and the status is returned for main() to return; otherwise the
 * function returns -1 and main() goes on. */
static inline int fuze_app_options_done(const char *app, int parse_rc, const char *err,
                                        int help, void (*usage)(FILE *out)) {
  int wrank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  if (parse_rc != 0) {
    if (wrank == 0) {
      fprintf(stderr, "%s: %s\n", app, err);
      usage(stderr);
    }
    MPI_Finalize();
    return 2;
  }
  if (help) {
    if (wrank == 0) usage(stdout);
    MPI_Finalize();
    return 0;
  }
  return -1;
}

/* ------------------------------------------------------------------------ */
/* fuze errors and the fuze life cycle                                       */

/* Prints "<app>: <call> returned <NAME> (<rc>)<where>: <message>" on stderr,
 * where NAME is fuze_err_name(rc), `where` says when it happened (e.g.
 * " at step 7", or "" for nothing) and `message` is fuze_last_error()'s.
 * stdout is flushed first, so the error comes after what was printed before
 * it. The caller decides which ranks print. */
static inline void fuze_app_fuze_error(const char *app, const char *call, int rc,
                                       const char *where, const char *message) {
  fflush(stdout);
  fprintf(stderr, "%s: %s returned %s (%d)%s: %s\n", app, call, fuze_err_name(rc), rc, where,
          message);
  fflush(stderr);
}

/* Calls fuze_init() on MPI_COMM_WORLD with `config` (NULL: the defaults and
 * the FUZE_* environment). Returns -1 when this rank is a compute rank, with
 * *ctx and *app set, and main() goes on; *restarted (when not NULL) is then 1
 * if fuze_init returned FUZE_RESTARTED (config dir=PATH held a complete
 * persisted epoch: the registrations restore it, see fuze_app_stored_count),
 * else 0. Otherwise MPI_Finalize() has been called and it returns the exit
 * status for main() to return: 1 when fuze_init failed (world rank 0 reports
 * it; a restart that cannot decode the lost files, or a rerun with another
 * geometry than the persisted one, fails here), 0 on a spare rank, which
 * hosted backups until the compute ranks finalized. */
/* fuze_app_init_ft: as fuze_app_init, for applications that also take in
 * replacement ranks (ULFM, config replacements=R): *joined is 1 on a rank
 * that fuze_init brought in to replace a dead one (FUZE_RECOVERED). */
static inline int fuze_app_init_ft(const char *name, const char *config, fuze_ctx **ctx,
                                   MPI_Comm *app, int *restarted, int *joined) {
  int wrank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  *ctx = NULL;
  *app = MPI_COMM_NULL;
  if (restarted) *restarted = 0;
  *joined = 0;
  const int rc = fuze_init(MPI_COMM_WORLD, config, ctx, app);
  if (restarted) *restarted = (rc == FUZE_RESTARTED);
  *joined = (rc == FUZE_RECOVERED);
  if (rc < 0) {
    if (wrank == 0 || *joined) fuze_app_fuze_error(name, "fuze_init", rc, "", fuze_last_error(NULL));
    MPI_Finalize();
    return 1;
  }
  if (*app == MPI_COMM_NULL) {
    MPI_Finalize();
    return 0;
  }
  return -1;
}

/* fuze_app_init refuses to be a replacement rank (an application that does
 * not make the replacement's registrations and rejoin its loop). */
static inline int fuze_app_init(const char *name, const char *config, fuze_ctx **ctx,
                                MPI_Comm *app, int *restarted) {
  int wrank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  *ctx = NULL;
  *app = MPI_COMM_NULL;
  if (restarted) *restarted = 0;
  const int rc = fuze_init(MPI_COMM_WORLD, config, ctx, app);
  if (restarted) *restarted = (rc == FUZE_RESTARTED);
  if (rc == FUZE_RECOVERED) {
    fprintf(stderr, "%s: world rank %d was brought in to replace a dead rank (ULFM, config "
            "replacements), which this application does not support: it exits, and the job "
            "cannot go on\n", name, wrank);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rc < 0) {
    if (wrank == 0) fuze_app_fuze_error(name, "fuze_init", rc, "", fuze_last_error(NULL));
    MPI_Finalize();
    return 1;
  }
  if (*app == MPI_COMM_NULL) {
    MPI_Finalize();
    return 0;
  }
  return -1;
}

/* After a restart (fuze_app_init set *restarted): the element count stored
 * for the structure `what` in the restarted epoch, into *count, checked
 * against `want` when want != SIZE_MAX (a registration of another size would
 * be refused). Collective over comm (the app communicator). Returns 0 on
 * every rank, or -1 on every rank when some rank has no stored count or a
 * count other than want; each such rank says so on stderr. */
static inline int fuze_app_stored_count(const char *app, fuze_ctx *ctx, MPI_Comm comm,
                                        const char *what, size_t want, size_t *count) {
  *count = 0;
  const int rc = fuze_stored_count(ctx, what, count);
  int ok = (rc == FUZE_SUCCESS && (want == SIZE_MAX || *count == want));
  if (!ok) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    fflush(stdout);
    if (rc != FUZE_SUCCESS)
      fprintf(stderr, "%s: rank %d: fuze_stored_count(%s) returned %s: %s\n", app, rank, what,
              fuze_err_name(rc), fuze_last_error(ctx));
    else
      fprintf(stderr, "%s: rank %d: the restarted epoch stores %zu elements of \"%s\", this run "
              "needs %zu (restart with the same options and rank count as the run that "
              "persisted it)\n", app, rank, *count, what, want);
    fflush(stderr);
  }
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, comm);
  return ok ? 0 : -1;
}

/* Calls fuze_finalize(ctx) on a compute rank. Returns 0, or 1 (the app's exit
 * status for a fuze error) when it failed, which rank 0 reports. */
static inline int fuze_app_finalize(const char *name, fuze_ctx **ctx) {
  const int rc = fuze_finalize(ctx);
  if (rc >= 0) return 0;
  if (g_rank0) fuze_app_fuze_error(name, "fuze_finalize", rc, "", fuze_last_error(NULL));
  return 1;
}

/* ------------------------------------------------------------------------ */
/* fuze statistics                                                           */

/* The fuze_get_stats() counters of all compute ranks, as rank 0 prints them. */
typedef struct fuze_app_stats {
  fuze_stats local;    /* this rank's own counters (rank 0 prints its plan) */
  uint64_t bytes[6];   /* on rank 0: the protected, parity, working parity, shadow,
                          sent and recovered bytes, each summed over the ranks */
  uint64_t epoch;      /* on rank 0: the largest epoch of any rank */
  uint64_t recoveries; /* on rank 0: the largest number of recoveries of any rank */
} fuze_app_stats;

/* Reads every rank's fuze_get_stats() and gathers the sums and maxima on rank
 * 0 of comm into *out. Collective over comm, the app communicator or one with
 * the same ranks. Returns 0, or -1 on every rank when fuze_get_stats() failed
 * on some rank; each rank where it failed says so on stderr. */
static inline int fuze_app_sum_stats(const char *app, const fuze_ctx *ctx, MPI_Comm comm,
                                     fuze_app_stats *out) {
  memset(out, 0, sizeof *out);
  const int rc = fuze_get_stats(ctx, &out->local);
  int ok = (rc >= 0);
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, comm);
  if (!ok) {
    if (rc < 0) {
      int rank = 0;
      MPI_Comm_rank(comm, &rank);
      fprintf(stderr, "%s: rank %d: fuze_get_stats returned %s: %s\n", app, rank,
              fuze_err_name(rc), fuze_last_error(ctx));
    }
    return -1;
  }
  const fuze_stats *st = &out->local;
  uint64_t mine[6] = {st->protected_bytes, st->parity_bytes, st->working_bytes,
                      st->shadow_bytes,    st->sent_bytes,   st->recovered_bytes};
  uint64_t ev[2] = {st->epoch, st->recoveries}, evmax[2] = {0, 0};
  MPI_Reduce(mine, out->bytes, 6, MPI_UINT64_T, MPI_SUM, 0, comm);
  MPI_Reduce(ev, evmax, 2, MPI_UINT64_T, MPI_MAX, 0, comm);
  out->epoch = evmax[0];
  out->recoveries = evmax[1];
  return 0;
}

/* Rank 0 prints the statistics gathered by fuze_app_sum_stats() on stdout:
 * the epoch, the recoveries and the plan, then the byte counters summed over
 * the nranks compute ranks, and a note when nspare spare ranks host backups
 * that no counter includes. It leaves flushing stdout to the caller. */
static inline void fuze_app_print_stats(const char *app, const fuze_app_stats *s, int nranks,
                                        int nspare) {
  if (!g_rank0) return;
  const int nblocks = s->local.nblocks, nbackups = s->local.nbackups;
  char b[6][32];
  for (int i = 0; i < 6; i++) human_bytes(s->bytes[i], b[i], sizeof b[i]);
  printf("%s: fuze stats: epoch %" PRIu64 ", recoveries %" PRIu64 ", %d block%s, %d backup%s\n",
         app, s->epoch, s->recoveries, nblocks, nblocks == 1 ? "" : "s", nbackups,
         nbackups == 1 ? "" : "s");
  printf("%s: fuze bytes summed over %d ranks: protected %" PRIu64 " (%s), parity %" PRIu64
         " (%s), working parity %" PRIu64 " (%s), shadow %" PRIu64 " (%s)\n",
         app, nranks, s->bytes[0], b[0], s->bytes[1], b[1], s->bytes[2], b[2], s->bytes[3], b[3]);
  printf("%s: fuze bytes summed over %d ranks: sent to backups %" PRIu64 " (%s), recovered %"
         PRIu64 " (%s)\n", app, nranks, s->bytes[4], b[4], s->bytes[5], b[5]);
  if (nspare > 0)
    printf("%s: (backups hosted by the %d spare rank%s are not counted: spare ranks have no "
           "context the app could query)\n", app, nspare, nspare == 1 ? "" : "s");
}

#endif /* FUZE_APP_H */
