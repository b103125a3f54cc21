/* transport: the RMA windows that hold working and committed parity.
 * Every window is allocated with MPI_Win_allocate (MPI_Win_create was ~20x
 * slower for accumulates here) and kept under a shared lock_all for its
 * lifetime: updates are MPI_Accumulate(BXOR), which is element-wise atomic,
 * so no update path ever takes an exclusive lock. */
#include "internal.h"

#include <limits.h>
#include <string.h>

static void win_info(MPI_Info *info) {
  MPI_Info_create(info);
  /* Only BXOR accumulates reach a window and XOR commutes (Theorem 4):
   * ordering between accumulates buys nothing. */
  MPI_Info_set(*info, "accumulate_ordering", "none");
  MPI_Info_set(*info, "accumulate_ops", "same_op");
}

int fuze__win_create(fuze_ctx *ctx, size_t bytes, MPI_Win *win, unsigned char **base,
                     int lock_all) {
  MPI_Info info;
  win_info(&info);
  void *mem = NULL;
  int rc = MPI_Win_allocate((MPI_Aint)bytes, 1, info, ctx->world, &mem, win);
  MPI_Info_free(&info);
  int ok = rc == MPI_SUCCESS, all_ok;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, ctx->world);
  if (!all_ok) {
    if (ok) MPI_Win_free(win);
    *win = MPI_WIN_NULL;
    return CTX_ERR(ctx, FUZE_ERR_MPI,
                   "transport: MPI_Win_allocate of %zu bytes failed on rank %d or another rank; "
                   "with Open MPI over TCP (no RDMA) set OMPI_MCA_osc=pt2pt "
                   "(or mpirun --mca osc pt2pt)", bytes, ctx->rank);
  }
  MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
  if (bytes) memset(mem, 0, bytes);
  *base = mem;
  if (lock_all) MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
  /* Everyone's memory is zeroed before anyone may accumulate into it. */
  MPI_Barrier(ctx->world);
  return FUZE_SUCCESS;
}

void fuze__win_free(MPI_Win *win, int locked) {
  if (*win == MPI_WIN_NULL) return;
  if (locked) MPI_Win_unlock_all(*win);
  MPI_Win_free(win);
}

int fuze__win_xor(fuze_ctx *ctx, MPI_Win win, const void *buf, size_t len, int rank,
                  size_t disp) {
  const unsigned char *p = buf;
  while (len > 0) {
    int n = len > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)len;
    int rc = MPI_Accumulate(p, n, MPI_BYTE, rank, (MPI_Aint)disp, n, MPI_BYTE, MPI_BXOR, win);
    if (rc != MPI_SUCCESS)
      return CTX_ERR(ctx, FUZE_ERR_MPI, "transport: MPI_Accumulate of %d bytes to rank %d failed",
                     n, rank);
    p += n;
    disp += (size_t)n;
    len -= (size_t)n;
    ctx->sent_bytes += (uint64_t)n;
  }
  return FUZE_SUCCESS;
}

int fuze__win_flush(fuze_ctx *ctx, MPI_Win win) {
  if (MPI_Win_flush_all(win) != MPI_SUCCESS)
    return CTX_ERR(ctx, FUZE_ERR_MPI, "transport: MPI_Win_flush_all failed on rank %d", ctx->rank);
  return FUZE_SUCCESS;
}

int fuze__win_sync(MPI_Win win) { return MPI_Win_sync(win) == MPI_SUCCESS ? 0 : FUZE_ERR_MPI; }
