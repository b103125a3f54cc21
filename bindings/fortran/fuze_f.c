/* fuze_f: the C side of the Fortran bindings (fuze.f90). Everything the
 * Fortran module cannot call directly: communicator handles (MPI_Comm_f2c,
 * MPI_Comm_c2f), Fortran array descriptors (ISO_Fortran_binding.h: base
 * address, element count, type and contiguity of an array of any rank), and
 * fuze_stats, handed over as an array of values in a fixed order so that
 * fields appended to the C struct never overrun the Fortran type. Only the
 * public API (fuze.h) is used. */
#include <ISO_Fortran_binding.h>
#include <fuze.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

/* Why the last shim call on this thread refused its arguments ("" if not). */
static _Thread_local char f_msg[512];

int fuze_f_init(MPI_Fint comm, const char *config, fuze_ctx **ctx, MPI_Fint *app_comm);
int fuze_f_protect(fuze_ctx *ctx, const char *name, CFI_cdesc_t *a, int kind);
int fuze_f_stats(fuze_ctx *ctx, int job, uint64_t *vals, int n);
const char *fuze_f_last_error(const fuze_ctx *ctx);
void fuze_f_clear(void);

/* Called by the Fortran wrappers of the calls that go to fuze directly. */
void fuze_f_clear(void) { f_msg[0] = 0; }

int fuze_f_init(MPI_Fint comm, const char *config, fuze_ctx **ctx, MPI_Fint *app_comm) {
  f_msg[0] = 0;
  MPI_Comm app = MPI_COMM_NULL;
  int rc = fuze_init(MPI_Comm_f2c(comm), config && *config ? config : NULL, ctx, &app);
  *app_comm = MPI_Comm_c2f(app);
  return rc;
}

/* The kinds fuze.f90 passes: real(4), real(8), integer(4), integer(8). */
enum { F_REAL4 = 1, F_REAL8, F_INT4, F_INT8 };

static MPI_Datatype mpi_type(int kind, const CFI_cdesc_t *a) {
  switch (kind) {
  case F_REAL4: return a->elem_len == 4 ? MPI_FLOAT : MPI_DATATYPE_NULL;
  case F_REAL8: return a->elem_len == 8 ? MPI_DOUBLE : MPI_DATATYPE_NULL;
  case F_INT4: return a->elem_len == 4 ? MPI_INT32_T : MPI_DATATYPE_NULL;
  case F_INT8: return a->elem_len == 8 ? MPI_INT64_T : MPI_DATATYPE_NULL;
  default: return MPI_DATATYPE_NULL;
  }
}

/* fuze_protect is collective: a rank whose array cannot be protected still
 * calls it (with a null type), so that every rank returns FUZE_ERR_ARG. */
int fuze_f_protect(fuze_ctx *ctx, const char *name, CFI_cdesc_t *a, int kind) {
  f_msg[0] = 0;
  size_t count = 1;
  for (int d = 0; d < a->rank; d++) count *= (size_t)a->dim[d].extent;
  MPI_Datatype type = mpi_type(kind, a);
  if (count > 0 && !CFI_is_contiguous(a)) {
    snprintf(f_msg, sizeof f_msg, "fuze_protect('%s'): the Fortran array is not contiguous (a "
             "strided section cannot be protected: protect the whole array)", name);
    type = MPI_DATATYPE_NULL;
  }
  int rc = fuze_protect(ctx, name, count ? a->base_addr : NULL, count, type, NULL);
  if (rc == FUZE_SUCCESS) f_msg[0] = 0;
  return rc;
}

/* vals[0..n): the fields of fuze_stats in the order of fuze.f90's fuze_stats. */
int fuze_f_stats(fuze_ctx *ctx, int job, uint64_t *vals, int n) {
  f_msg[0] = 0;
  fuze_stats st;
  int rc = job ? fuze_get_job_stats(ctx, &st) : fuze_get_stats(ctx, &st);
  if (rc) return rc;
  const uint64_t v[] = {st.epoch, st.protected_bytes, st.parity_bytes, st.working_bytes,
                        st.shadow_bytes, st.sent_bytes, st.recovered_bytes, st.recoveries,
                        (uint64_t)st.nblocks, (uint64_t)st.nbackups, st.undo_bytes,
                        st.replica_bytes, st.total_bytes, st.injections_unfired};
  int nv = (int)(sizeof v / sizeof v[0]);
  for (int i = 0; i < n; i++) vals[i] = i < nv ? v[i] : 0;
  return FUZE_SUCCESS;
}

const char *fuze_f_last_error(const fuze_ctx *ctx) {
  return f_msg[0] ? f_msg : fuze_last_error(ctx);
}
