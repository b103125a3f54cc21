/* ft: ULFM primitives (ft.h). Everything that names an MPIX_ function is
 * inside OMPI_HAVE_MPI_EXT_FTMPI; without it the same functions exist and say
 * "no ULFM", so callers need no #if of their own. */
#include "comm/ft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(OPEN_MPI) && OPEN_MPI
#include <mpi-ext.h>
#endif

#if defined(OMPI_HAVE_MPI_EXT_FTMPI)

/* Whether the launcher enabled ULFM: Open MPI's control variable
 * mpi_ft_enable (set by `mpirun --with-ft ulfm`, a bool), read once through
 * MPI_T. */
static int ft_enabled = -1;

static int read_ft_enable(void) {
  int provided, n = 0, on = 0;
  if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return 0;
  if (MPI_T_cvar_get_num(&n) == MPI_SUCCESS) {
    for (int i = 0; i < n && !on; i++) {
      char name[256], desc[8];
      int nlen = sizeof name, dlen = sizeof desc, verb, bind, scope;
      MPI_Datatype dt;
      MPI_T_enum en;
      if (MPI_T_cvar_get_info(i, name, &nlen, &verb, &dt, &en, desc, &dlen, &bind, &scope) != MPI_SUCCESS)
        continue;
      if (strcmp(name, "mpi_ft_enable") != 0) continue;
      /* A bool variable: MPI_C_BOOL or MPI_INT, read into a zeroed word. */
      MPI_T_cvar_handle h;
      int count = 0;
      unsigned long long v = 0;
      if (MPI_T_cvar_handle_alloc(i, NULL, &h, &count) == MPI_SUCCESS) {
        if (count == 1 && MPI_T_cvar_read(h, &v) == MPI_SUCCESS) on = v != 0;
        MPI_T_cvar_handle_free(&h);
      }
    }
  }
  MPI_T_finalize();
  return on;
}

int fuze__ft_enabled(void) {
  if (ft_enabled < 0) ft_enabled = read_ft_enable();
  return ft_enabled;
}

int fuze__ft_is_lost(int mpi_rc) {
  if (mpi_rc == MPI_SUCCESS) return 0;
  int cls = mpi_rc;
  if (MPI_Error_class(mpi_rc, &cls) != MPI_SUCCESS) return 0;
  return cls == MPIX_ERR_PROC_FAILED || cls == MPIX_ERR_REVOKED || cls == MPIX_ERR_PROC_FAILED_PENDING;
}

int fuze__ft_revoke(fuze_net *net, MPI_Comm comm) {
  int rc = MPIX_Comm_revoke(comm);
  /* Revoking a communicator another rank already revoked is fine. */
  if (rc != MPI_SUCCESS && fuze__ft_is_lost(rc)) rc = MPI_SUCCESS;
  return fuze__mpi_check(rc, "MPIX_Comm_revoke(comm)", __FILE__, __LINE__, net->msg);
}

int fuze__ft_agree(fuze_net *net, MPI_Comm comm, int *flag) {
  /* Acknowledge what this rank knows failed, so that agree reports only
   * failures news to the agreement; the agreed value is valid either way. */
  (void)MPIX_Comm_failure_ack(comm);
  int rc = MPIX_Comm_agree(comm, flag);
  if (rc != MPI_SUCCESS && fuze__ft_is_lost(rc)) rc = MPI_SUCCESS;
  return fuze__mpi_check(rc, "MPIX_Comm_agree(comm, flag)", __FILE__, __LINE__, net->msg);
}

int fuze__ft_shrink(fuze_net *net, MPI_Comm comm, MPI_Comm *out, int *dead, int *ndead) {
  *out = MPI_COMM_NULL;
  *ndead = 0;
  int rc = fuze__ft_revoke(net, comm);
  if (rc) return rc;
  rc = FUZE_MPI(net->msg, MPIX_Comm_shrink(comm, out));
  if (rc) return rc;
  if ((rc = FUZE_MPI(net->msg, MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN)))) return rc;
  MPI_Group old = MPI_GROUP_NULL, now = MPI_GROUP_NULL;
  int size = 0;
  rc = FUZE_MPI(net->msg, MPI_Comm_group(comm, &old));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_group(*out, &now));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Group_size(old, &size));
  int *in = NULL;
  if (!rc && !(in = malloc(sizeof(int) * (size_t)size))) rc = FUZE_NOMEM(net->msg, "shrink");
  if (!rc) {
    for (int r = 0; r < size; r++) in[r] = r;
    rc = FUZE_MPI(net->msg, MPI_Group_translate_ranks(old, size, in, now, dead));
  }
  if (!rc)
    for (int r = 0; r < size; r++) {
      dead[r] = dead[r] == MPI_UNDEFINED;
      *ndead += dead[r];
    }
  free(in);
  if (old != MPI_GROUP_NULL) FUZE_MPI_TEARDOWN(MPI_Group_free(&old));
  if (now != MPI_GROUP_NULL) FUZE_MPI_TEARDOWN(MPI_Group_free(&now));
  return rc;
}

static int npdead_idle(const int *pdead, int nactive, int psize) {
  int n = 0;
  for (int r = nactive; r < psize; r++) n += pdead[r] != 0;
  return n;
}

int fuze__ft_replace(fuze_net *net, MPI_Comm *pool, int nactive, MPI_Comm *active, int *dead,
                     int *ndead, int *my_rank) {
  *ndead = 0;
  *my_rank = -1;
  if (*active != MPI_COMM_NULL) (void)MPIX_Comm_revoke(*active);
  MPI_Comm shrunk = MPI_COMM_NULL;
  int psize = 0, prank = 0, rc = FUZE_MPI(net->msg, MPI_Comm_size(*pool, &psize));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_rank(*pool, &prank));
  int *pdead = rc ? NULL : calloc((size_t)psize, sizeof *pdead), npdead = 0;
  if (!rc && !pdead) rc = FUZE_NOMEM(net->msg, "replace");
  if (!rc) rc = fuze__ft_shrink(net, *pool, &shrunk, pdead, &npdead);
  if (rc) {
    free(pdead);
    return rc;
  }
  /* The same assignment on every survivor: dead active ranks in order, living
   * replacements in pool order. */
  int key = -1, next = nactive, missing = 0;
  char list[256] = "";
  size_t len = 0;
  for (int r = 0; r < nactive; r++) {
    dead[r] = pdead[r];
    if (!dead[r]) {
      if (r == prank) key = r;
      continue;
    }
    (*ndead)++;
    if (len < sizeof list - 16) len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", len ? ", " : "", r);
    while (next < psize && pdead[next]) next++;
    if (next >= psize) {
      missing++;
      continue;
    }
    if (next == prank) key = r;
    next++;
  }
  if (missing) {
    int alive = psize - nactive - npdead_idle(pdead, nactive, psize);
    free(pdead);
    FUZE_MPI_TEARDOWN(MPI_Comm_free(&shrunk));
    return fuze__error(net->msg, FUZE_ERR_UNRECOVERABLE, "ranks %s died and %d of them have no "
                       "replacement left (%d idle replacement ranks were alive; config "
                       "replacements=R keeps R of them)", list, missing, alive);
  }
  /* The new pool keeps the layout: active ranks first in their order, then
   * the idle replacements in their old pool order. */
  int pkey = key >= 0 ? key : nactive + prank;
  MPI_Comm newpool = MPI_COMM_NULL, newactive = MPI_COMM_NULL;
  rc = FUZE_MPI(net->msg, MPI_Comm_split(shrunk, 0, pkey, &newpool));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_split(shrunk, key >= 0 ? 0 : MPI_UNDEFINED, key, &newactive));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_set_errhandler(newpool, MPI_ERRORS_RETURN));
  if (!rc && newactive != MPI_COMM_NULL)
    rc = FUZE_MPI(net->msg, MPI_Comm_set_errhandler(newactive, MPI_ERRORS_RETURN));
  FUZE_MPI_TEARDOWN(MPI_Comm_free(&shrunk));
  free(pdead);
  if (rc) {
    if (newpool != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&newpool));
    if (newactive != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&newactive));
    return rc;
  }
  FUZE_MPI_TEARDOWN(MPI_Comm_free(pool));
  if (*active != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(active));
  *pool = newpool;
  *active = newactive;
  *my_rank = key;
  return FUZE_SUCCESS;
}

#else /* no ULFM: a death is not survivable in the job; nothing maps to FUZE_RANK_LOST */

int fuze__ft_enabled(void) { return 0; }
int fuze__ft_is_lost(int mpi_rc) { (void)mpi_rc; return 0; }
int fuze__ft_revoke(fuze_net *net, MPI_Comm comm) {
  (void)comm;
  return fuze__error(net->msg, FUZE_ERR_STATE, "ft: built without ULFM");
}
int fuze__ft_agree(fuze_net *net, MPI_Comm comm, int *flag) {
  (void)comm; (void)flag;
  return fuze__error(net->msg, FUZE_ERR_STATE, "ft: built without ULFM");
}
int fuze__ft_shrink(fuze_net *net, MPI_Comm comm, MPI_Comm *out, int *dead, int *ndead) {
  (void)comm; (void)dead;
  *out = MPI_COMM_NULL;
  *ndead = 0;
  return fuze__error(net->msg, FUZE_ERR_STATE, "ft: built without ULFM");
}

int fuze__ft_replace(fuze_net *net, MPI_Comm *pool, int nactive, MPI_Comm *active, int *dead,
                     int *ndead, int *my_rank) {
  (void)pool; (void)nactive; (void)active; (void)dead;
  *ndead = 0;
  *my_rank = -1;
  return fuze__error(net->msg, FUZE_ERR_STATE, "ft: built without ULFM");
}

#endif
