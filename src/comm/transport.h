/* transport: every one-sided call of fuze. The RMA windows that hold working
 * and committed parity, and the only code that puts, accumulates, XORs,
 * flushes, locks or syncs them. It sees a fuze_net, nothing of the context. */
#ifndef FUZE_TRANSPORT_H
#define FUZE_TRANSPORT_H

#include "comm/net.h"

#include <stddef.h>

/* A window set aside by a ULFM repair (ctx/repair.c): the structure moved to
 * a new window; this one is freed once every rank has its new windows. */
typedef struct fuze_oldwin {
  MPI_Win win;
  unsigned char *base;
  size_t size;
  int locked; /* fuze__win_free's argument */
} fuze_oldwin;

/* Collective over net->comm. lock_all: keep the window under a shared
 * lock_all for its lifetime (the fine-grained path); 0 for lock=exclusive
 * windows, locked per operation (fuze__win_lock). */
int fuze__win_create(fuze_net *net, size_t bytes, MPI_Win *win, unsigned char **base,
                     int lock_all);
/* The same for a stack/map window (many small concurrent XORs). With
 * shm=auto or on and every rank on one node it is in shared memory, which
 * fuze__win_xor updates with CPU atomic XOR: fuze's own segments (memfd,
 * mapped by every rank through /proc/<pid>/fd; a zero-byte MPI window is
 * the handle), or when those cannot be made an MPI-3 shared-memory window
 * (MPI_Win_allocate_shared); otherwise (or when neither can be made, auto)
 * exactly fuze__win_create. *shm tells whether it is shared. A ULFM repair
 * sets net->win_reuse to the structure's old window: fuze's own segments
 * are then kept (same bytes, same address: no copy). */
int fuze__win_create_fused(fuze_net *net, size_t bytes, MPI_Win *win, unsigned char **base,
                           int lock_all, int *shm);
/* Collective: an array's window. With every rank on one node and shm not
 * off: fuze's own segments, whose XORs are plain XORs under the host's
 * stripe locks (bulk speed, like osc/sm's accumulate); when those cannot be
 * made, with MPICH the MPI shared-memory window of fuze__win_create_fused
 * (XORs and ORs by origin-side CPU atomics: MPICH applies accumulates only
 * when the target enters MPI), otherwise fuze__win_create under a lock_all. */
int fuze__win_create_array(fuze_net *net, size_t bytes, MPI_Win *win, unsigned char **base);
/* Collective, in fuze_init: when the ranks span nodes, checks that the MPI
 * library can make a window over them, or fails naming the MCA setting. */
int fuze__win_probe(fuze_net *net);
/* What is behind a window (tests, fuze-inspect of a live context): none;
 * MPI_Win_allocate memory reached by MPI_Accumulate; an MPI shared-memory
 * window (XOR by word atomics); fuze's own segments, XOR by word atomics
 * (stacks, maps) or under the host's stripe locks (arrays). */
enum { FUZE_WIN_NONE, FUZE_WIN_MPI, FUZE_WIN_MPI_SHARED, FUZE_WIN_OWN, FUZE_WIN_OWN_BULK };
int fuze__win_kind(MPI_Win win);
/* Collective: unlock (when locked) and free; MPI_WIN_NULL is a no-op. */
void fuze__win_free(MPI_Win *win, int locked);
/* Local: a window that cannot be freed (a death cut short the collective
 * that made the others': MPI_Win_free would wait for them) is left to MPI,
 * but the segments of fuze's own it maps are unmapped now, so that a dead
 * or replaced rank's memory is not kept alive by it. *win := MPI_WIN_NULL. */
void fuze__win_abandon(MPI_Win *win);
/* XOR len bytes into rank's window at disp: MPI_Accumulate(BXOR), or in a
 * shared-memory window atomic XORs done at once. The origin buffer must stay
 * untouched until the next flush. */
int fuze__win_xor(fuze_net *net, MPI_Win win, const void *buf, size_t len, int rank,
                  size_t disp);
/* Overwrite len bytes of rank's window at disp (MPI_Put): only for regions
 * with a single writer. */
int fuze__win_put(fuze_net *net, MPI_Win win, const void *buf, size_t len, int rank,
                  size_t disp);
int fuze__win_flush(fuze_net *net, MPI_Win win);                /* every target */
int fuze__win_flush_rank(fuze_net *net, MPI_Win win, int rank); /* one target */
/* Local completion at one target (MPI_Win_flush_local): the origin buffers of
 * what was issued to rank may be reused; whether it reached rank's memory is
 * left to a later fuze__win_flush(_rank). No round trip to rank. */
int fuze__win_flush_local_rank(fuze_net *net, MPI_Win win, int rank);
/* lock=exclusive windows: an exclusive epoch on one target. */
/* Let the MPI library handle what other ranks sent to this one (their
 * accumulates into win, with an MPI whose one-sided path needs the target
 * to call MPI: Open MPI's osc/pt2pt across nodes). A no-op for a
 * shared-memory window. */
int fuze__win_progress(fuze_net *net, MPI_Win win);
int fuze__win_lock(fuze_net *net, MPI_Win win, int rank);
int fuze__win_unlock(fuze_net *net, MPI_Win win, int rank);
/* Local view of the window after others wrote into it (MPI_Win_sync). */
int fuze__win_sync(fuze_net *net, MPI_Win win);

/* OR len bytes into rank's window at disp (MPI_Accumulate(BOR), or atomic
 * ORs in a shared-memory window): flags that several origins may set. */
int fuze__win_or(fuze_net *net, MPI_Win win, const void *buf, size_t len, int rank,
                 size_t disp);

#endif
