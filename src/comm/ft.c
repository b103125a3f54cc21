/* ft: ULFM primitives (ft.h). Everything that names an MPIX_ function is
 * inside OMPI_HAVE_MPI_EXT_FTMPI; without it the same functions exist and say
 * "no ULFM", so callers need no #if of their own. */
#include "comm/ft.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int fuze__ft_ignore_sigpipe(void) {
  if (!fuze__ft_enabled()) return 0;
  struct sigaction old, ign;
  if (sigaction(SIGPIPE, NULL, &old) != 0) return 0;
  if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) return 0; /* the application's */
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  return sigaction(SIGPIPE, &ign, NULL) == 0;
}

int fuze__ft_is_lost(int mpi_rc) {
  if (mpi_rc == MPI_SUCCESS) return 0;
  int cls = mpi_rc;
  if (MPI_Error_class(mpi_rc, &cls) != MPI_SUCCESS) return 0;
  return cls == MPIX_ERR_PROC_FAILED || cls == MPIX_ERR_REVOKED || cls == MPIX_ERR_PROC_FAILED_PENDING;
}

int fuze__ft_check(fuze_net *net) {
  if (net->comm == MPI_COMM_NULL || !fuze__ft_enabled()) return FUZE_SUCCESS;
  int flag = 0, revoked = 0, nfailed = 0;
  int rc = MPI_Iprobe(net->rank, MPI_ANY_TAG, net->comm, &flag, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) return fuze__ft_is_lost(rc) ? FUZE_RANK_LOST : FUZE_SUCCESS;
  if (MPIX_Comm_is_revoked(net->comm, &revoked) == MPI_SUCCESS && revoked)
    return fuze__error(net->msg, FUZE_RANK_LOST, "the communicator was revoked (another rank saw "
                       "a process die)");
  MPI_Group failed = MPI_GROUP_NULL;
  if (MPIX_Comm_get_failed(net->comm, &failed) != MPI_SUCCESS) return FUZE_SUCCESS;
  (void)MPI_Group_size(failed, &nfailed);
  FUZE_MPI_TEARDOWN(MPI_Group_free(&failed));
  if (!nfailed) return FUZE_SUCCESS;
  return fuze__error(net->msg, FUZE_RANK_LOST, "%d rank%s of the communicator died", nfailed,
                     nfailed == 1 ? "" : "s");
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

/* This process's command line (/proc/self/cmdline; the program from
 * /proc/self/exe): what a spawned replacement runs. *args is NULL-terminated,
 * both in one allocation (*buf) that the caller frees. */
static int self_command(char **buf, char **cmd, char ***args) {
  *buf = NULL;
  FILE *f = fopen("/proc/self/cmdline", "rb");
  if (!f) return -1;
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap + PATH_MAX + 1);
  if (b) n = fread(b, 1, cap, f);
  fclose(f);
  if (!b || n == 0 || n == cap) return free(b), -1;
  b[n] = 0;
  int argc = 0;
  for (size_t i = 0; i < n; i++) argc += b[i] == 0;
  char **av = malloc(sizeof *av * (size_t)(argc + 2)); /* the arguments, NULL, then b */
  if (!av) return free(b), -1;
  int k = 0;
  for (size_t i = 0; i < n; i += strlen(b + i) + 1) av[k++] = b + i;
  av[k] = NULL;
  char *exe = b + n + 1;
  ssize_t m = readlink("/proc/self/exe", exe, PATH_MAX);
  if (m <= 0) return free(b), free(av), -1;
  exe[m] = 0;
  *cmd = exe;
  *args = av + 1;
  *buf = (char *)av; /* av first, then b: both freed by free_command */
  av[argc + 1] = b;  /* past the NULL: where b is kept */
  return 0;
}

static void free_command(char *buf) {
  if (!buf) return;
  char **av = (char **)buf;
  int k = 0;
  while (av[k]) k++;
  free(av[k + 1]);
  free(av);
}

/* What the survivors tell the spawned replacements over the merged
 * communicator: the active size, which dead slots they take, who died. */
typedef struct spawn_hdr {
  int nactive, nspawn;
} spawn_hdr;

/* Collective over the survivors in *shrunk: start n replacements with
 * MPI_Comm_spawn (the same program and arguments), merge them in after the
 * survivors, and tell them their slots and the dead set. *shrunk becomes the
 * merged communicator (survivors first, in order, then the new ranks). */
static int spawn_replacements(fuze_net *net, MPI_Comm *shrunk, int nactive, const int *slots, int n,
                              const int *dead) {
  char *buf = NULL, *cmd = NULL, **args = NULL;
  int me = 0, ok = 1, rc = FUZE_MPI(net->msg, MPI_Comm_rank(*shrunk, &me));
  if (!rc && me == 0) ok = self_command(&buf, &cmd, &args) == 0;
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Bcast(&ok, 1, MPI_INT, 0, *shrunk));
  if (!rc && !ok) rc = fuze__error(net->msg, FUZE_ERR_UNRECOVERABLE, "cannot read this process's "
                                   "command line (/proc/self/cmdline) to spawn replacements");
  MPI_Comm inter = MPI_COMM_NULL, merged = MPI_COMM_NULL;
  int *codes = rc ? NULL : calloc((size_t)n, sizeof *codes);
  if (!rc && !codes) rc = FUZE_NOMEM(net->msg, "replace");
  if (!rc)
    rc = FUZE_MPI(net->msg, MPI_Comm_spawn(me == 0 ? cmd : NULL, me == 0 ? args : MPI_ARGV_NULL, n,
                                           MPI_INFO_NULL, 0, *shrunk, &inter, codes));
  free_command(buf);
  free(codes);
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Intercomm_merge(inter, 0, &merged));
  if (inter != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&inter));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_set_errhandler(merged, MPI_ERRORS_RETURN));
  spawn_hdr h = {nactive, n};
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Bcast(&h, (int)sizeof h, MPI_BYTE, 0, merged));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Bcast((void *)slots, n, MPI_INT, 0, merged));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Bcast((void *)dead, nactive, MPI_INT, 0, merged));
  if (rc) {
    if (merged != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&merged));
    return fuze__error(net->msg, FUZE_ERR_UNRECOVERABLE, "spawning %d replacement rank%s "
                       "failed: %s", n, n == 1 ? "" : "s", fuze__thread_msg());
  }
  FUZE_MPI_TEARDOWN(MPI_Comm_free(shrunk));
  *shrunk = merged;
  return FUZE_SUCCESS;
}

/* Both sides: the new pool (active ranks by key, then the idle ones) and the
 * new active communicator, split from the merged or shrunken one. */
static int split_new(fuze_net *net, MPI_Comm from, int key, int pkey, MPI_Comm *pool,
                     MPI_Comm *active) {
  MPI_Comm newpool = MPI_COMM_NULL, newactive = MPI_COMM_NULL;
  int rc = FUZE_MPI(net->msg, MPI_Comm_split(from, 0, pkey, &newpool));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_split(from, key >= 0 ? 0 : MPI_UNDEFINED, key, &newactive));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_set_errhandler(newpool, MPI_ERRORS_RETURN));
  if (!rc && newactive != MPI_COMM_NULL)
    rc = FUZE_MPI(net->msg, MPI_Comm_set_errhandler(newactive, MPI_ERRORS_RETURN));
  if (rc) {
    if (newpool != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&newpool));
    if (newactive != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&newactive));
    return rc;
  }
  *pool = newpool;
  *active = newactive;
  return FUZE_SUCCESS;
}

int fuze__ft_replace(fuze_net *net, MPI_Comm *pool, int nactive, MPI_Comm *active, int *dead,
                     int *ndead, int *my_rank, int spawn) {
  *ndead = 0;
  *my_rank = -1;
  if (*active != MPI_COMM_NULL) (void)MPIX_Comm_revoke(*active);
  MPI_Comm shrunk = MPI_COMM_NULL;
  int psize = 0, prank = 0, rc = FUZE_MPI(net->msg, MPI_Comm_size(*pool, &psize));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_rank(*pool, &prank));
  int *pdead = rc ? NULL : calloc((size_t)psize, sizeof *pdead), npdead = 0;
  int *slots = rc ? NULL : calloc((size_t)(nactive ? nactive : 1), sizeof *slots);
  if (!rc && (!pdead || !slots)) rc = FUZE_NOMEM(net->msg, "replace");
  if (!rc) rc = fuze__ft_shrink(net, *pool, &shrunk, pdead, &npdead);
  if (rc) {
    free(pdead);
    free(slots);
    return rc;
  }
  /* The same assignment on every survivor: dead active ranks in order, living
   * replacements in pool order, then (spawn) new ranks in order. */
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
      slots[missing++] = r;
      continue;
    }
    if (next == prank) key = r;
    next++;
  }
  int alive = psize - nactive - npdead_idle(pdead, nactive, psize);
  free(pdead);
  if (missing && !spawn) {
    free(slots);
    FUZE_MPI_TEARDOWN(MPI_Comm_free(&shrunk));
    return fuze__error(net->msg, FUZE_ERR_UNRECOVERABLE, "ranks %s died and %d of them have no "
                       "replacement left (%d idle replacement ranks were alive; config "
                       "replacements=R keeps R of them; replace=idle spawns none)", list, missing,
                       alive);
  }
  if (missing && (rc = spawn_replacements(net, &shrunk, nactive, slots, missing, dead))) {
    free(slots);
    FUZE_MPI_TEARDOWN(MPI_Comm_free(&shrunk));
    return fuze__error(net->msg, rc, "ranks %s died and %d of them have no idle replacement: %s",
                       list, missing, fuze__thread_msg());
  }
  free(slots);
  /* The new pool keeps the layout: active ranks first in their order, then
   * the idle replacements in their old pool order. */
  MPI_Comm newpool = MPI_COMM_NULL, newactive = MPI_COMM_NULL;
  rc = split_new(net, shrunk, key, key >= 0 ? key : nactive + prank, &newpool, &newactive);
  FUZE_MPI_TEARDOWN(MPI_Comm_free(&shrunk));
  if (rc) return rc;
  FUZE_MPI_TEARDOWN(MPI_Comm_free(pool));
  if (*active != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(active));
  *pool = newpool;
  *active = newactive;
  *my_rank = key;
  return FUZE_SUCCESS;
}

int fuze__ft_spawned(fuze_net *net, MPI_Comm parent, MPI_Comm *pool, MPI_Comm *active,
                     int **dead, int *nactive, int *my_rank) {
  *dead = NULL;
  *my_rank = -1;
  MPI_Comm merged = MPI_COMM_NULL;
  int rc = FUZE_MPI(net->msg, MPI_Intercomm_merge(parent, 1, &merged));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_set_errhandler(merged, MPI_ERRORS_RETURN));
  spawn_hdr h = {0, 0};
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Bcast(&h, (int)sizeof h, MPI_BYTE, 0, merged));
  int *slots = rc ? NULL : calloc((size_t)(h.nspawn > 0 ? h.nspawn : 1), sizeof *slots);
  int *d = rc ? NULL : calloc((size_t)(h.nactive > 0 ? h.nactive : 1), sizeof *d);
  if (!rc && (!slots || !d)) rc = FUZE_NOMEM(net->msg, "fuze_init (spawned replacement)");
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Bcast(slots, h.nspawn, MPI_INT, 0, merged));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Bcast(d, h.nactive, MPI_INT, 0, merged));
  int me = 0, size = 0;
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_rank(merged, &me));
  if (!rc) rc = FUZE_MPI(net->msg, MPI_Comm_size(merged, &size));
  int key = rc ? -1 : slots[me - (size - h.nspawn)];
  if (!rc) rc = split_new(net, merged, key, key, pool, active);
  if (merged != MPI_COMM_NULL) FUZE_MPI_TEARDOWN(MPI_Comm_free(&merged));
  free(slots);
  if (rc) {
    free(d);
    return rc;
  }
  *dead = d;
  *nactive = h.nactive;
  *my_rank = key;
  return FUZE_SUCCESS;
}

#else /* no ULFM: a death is not survivable in the job; nothing maps to FUZE_RANK_LOST */

int fuze__ft_enabled(void) { return 0; }
int fuze__ft_ignore_sigpipe(void) { return 0; }
int fuze__ft_is_lost(int mpi_rc) { (void)mpi_rc; return 0; }
int fuze__ft_check(fuze_net *net) { (void)net; return FUZE_SUCCESS; }
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
                     int *ndead, int *my_rank, int spawn) {
  (void)pool; (void)nactive; (void)active; (void)dead; (void)spawn;
  *ndead = 0;
  *my_rank = -1;
  return fuze__error(net->msg, FUZE_ERR_STATE, "ft: built without ULFM");
}

int fuze__ft_spawned(fuze_net *net, MPI_Comm parent, MPI_Comm *pool, MPI_Comm *active,
                     int **dead, int *nactive, int *my_rank) {
  (void)parent; (void)pool; (void)active; (void)nactive;
  *dead = NULL;
  *my_rank = -1;
  return fuze__error(net->msg, FUZE_ERR_STATE, "ft: built without ULFM");
}

#endif
