!> heat_f90: 2-D heat diffusion in Fortran, protected by fuze through its
!> Fortran module. The field u(0:nx+1, 0:ny+1) of each rank (a slab of the
!> global grid, split along y, halo columns included) and the step counter
!> are protected; every --every steps fuze_checkpoint commits them. When a
!> checkpoint returns FUZE_RECOVERED (a rank was wiped: inject=wipe:...) every
!> rank is back at the last checkpoint, step counter included, and goes on
!> from there. With dir=PATH a killed job restarts from the persisted epoch
!> (fuze_init returns FUZE_RESTARTED, fuze_protect restores the contents).
!>
!> At the end the program recomputes the field without fuze (same
!> decomposition, same operations) and compares it bit for bit.
!>
!> usage: mpirun -np N heat_f90 [--config CFG] [--nx NX] [--ny NY_PER_RANK]
!>                              [--steps S] [--every K] [--expect-recoveries R]
program heat_f90
  use, intrinsic :: iso_c_binding, only: c_int64_t
  use mpi_f08
  use fuze
  implicit none
  type(fuze_ctx) :: ctx
  type(MPI_Comm) :: comm
  real(8), allocatable, target :: u(:, :)
  real(8), allocatable :: ref(:, :)
  integer(c_int64_t), target :: step
  integer(c_int64_t) :: stored
  character(len=1024) :: config
  integer :: nx = 64, ny = 16, steps = 120, every = 10, expect_rec = -1
  integer :: rc, rank, np, recoveries, restarted
  type(fuze_stats) :: st

  call MPI_Init()
  call parse_args()
  rc = fuze_init(MPI_COMM_WORLD, trim(config), ctx, comm)
  if (rc < 0) call die("fuze_init", rc)
  if (fuze_is_spare(ctx)) then   ! a spare rank: it hosted backups until fuze_finalize
    call MPI_Finalize()
    stop
  end if
  restarted = merge(1, 0, rc == FUZE_RESTARTED)
  call MPI_Comm_rank(comm, rank)
  call MPI_Comm_size(comm, np)

  allocate(u(0:nx + 1, 0:ny + 1), ref(0:nx + 1, 0:ny + 1))
  call initial(u)
  step = 0
  if (restarted == 1) then
    rc = fuze_stored_count(ctx, "heat_f90.u", stored)
    if (rc /= FUZE_SUCCESS) call die("fuze_stored_count", rc)
    if (stored /= size(u, kind=c_int64_t)) then
      write(*, '(a, i0, a, i0, a)') "heat_f90: the restarted epoch stores ", stored, &
        " cells on this rank, this run has ", size(u), " (use the same --nx, --ny and -np)"
      call MPI_Abort(MPI_COMM_WORLD, 1)
    end if
  end if
  rc = fuze_protect(ctx, "heat_f90.u", u)
  if (rc /= FUZE_SUCCESS) call die("fuze_protect(u)", rc)
  rc = fuze_protect(ctx, "heat_f90.step", step)
  if (rc /= FUZE_SUCCESS) call die("fuze_protect(step)", rc)
  if (restarted == 1) then
    rc = fuze_get_stats(ctx, st)
    if (rank == 0) write(*, '(a, i0, a, i0, a, i0)') "heat_f90: restarted from the persisted epoch ", &
      st%epoch, ": resuming at step ", step, " of ", steps
  end if

  recoveries = 0
  do while (step < steps)
    call advance(u, comm)
    step = step + 1
    if (mod(step, int(every, c_int64_t)) == 0) then
      rc = fuze_checkpoint(ctx)
      if (rc == FUZE_RECOVERED) then
        recoveries = recoveries + 1
        if (rank == 0) write(*, '(a, i0)') "heat_f90: recovered; resuming at step ", step
      else if (rc /= FUZE_SUCCESS) then
        call die("fuze_checkpoint", rc)
      end if
    end if
  end do

  ! The failure-free answer, computed without fuze.
  call initial(ref)
  do rc = 1, steps
    call advance(ref, comm)
  end do
  call report()
  rc = fuze_finalize(ctx)
  if (rc /= FUZE_SUCCESS) call die("fuze_finalize", rc)
  call MPI_Comm_free(comm)
  call MPI_Finalize()

contains

  subroutine parse_args()
    character(len=1024) :: arg, val
    integer :: i
    config = ""
    i = 1
    do while (i <= command_argument_count())
      call get_command_argument(i, arg)
      call get_command_argument(i + 1, val)
      select case (trim(arg))
      case ("--config"); config = val
      case ("--nx"); read(val, *) nx
      case ("--ny"); read(val, *) ny
      case ("--steps"); read(val, *) steps
      case ("--every"); read(val, *) every
      case ("--expect-recoveries"); read(val, *) expect_rec
      case default
        write(*, '(a)') "heat_f90: unknown argument '" // trim(arg) // "' (see the usage in heat_f90.f90)"
        call MPI_Abort(MPI_COMM_WORLD, 2)
      end select
      i = i + 2
    end do
  end subroutine parse_args

  subroutine die(what, code)
    character(*), intent(in) :: what
    integer, intent(in) :: code
    write(*, '(a)') "heat_f90: " // what // ": " // fuze_err_name(code) // ": " // fuze_last_error(ctx)
    call MPI_Abort(MPI_COMM_WORLD, 1)
  end subroutine die

  ! A bumpy start: every cell a different value, zero on the global boundary.
  subroutine initial(f)
    real(8), intent(out) :: f(0:, 0:)
    integer :: i, j, gj
    f = 0
    do j = 1, ny
      gj = rank * ny + j
      do i = 1, nx
        f(i, j) = real(mod(i * 37 + gj * 101, 257), 8) / 256.0d0
      end do
    end do
  end subroutine initial

  ! One explicit step; halo columns from the neighbours (columns are contiguous).
  subroutine advance(f, c)
    real(8), intent(inout) :: f(0:, 0:)
    type(MPI_Comm), intent(in) :: c
    real(8) :: g(nx, ny)
    integer :: lo, hi, i, j
    lo = merge(rank - 1, MPI_PROC_NULL, rank > 0)
    hi = merge(rank + 1, MPI_PROC_NULL, rank < np - 1)
    call MPI_Sendrecv(f(:, ny), nx + 2, MPI_DOUBLE_PRECISION, hi, 1, &
                      f(:, 0), nx + 2, MPI_DOUBLE_PRECISION, lo, 1, c, MPI_STATUS_IGNORE)
    call MPI_Sendrecv(f(:, 1), nx + 2, MPI_DOUBLE_PRECISION, lo, 2, &
                      f(:, ny + 1), nx + 2, MPI_DOUBLE_PRECISION, hi, 2, c, MPI_STATUS_IGNORE)
    do j = 1, ny
      do i = 1, nx
        g(i, j) = f(i, j) + 0.2d0 * (f(i - 1, j) + f(i + 1, j) + f(i, j - 1) + f(i, j + 1) - 4 * f(i, j))
      end do
    end do
    f(1:nx, 1:ny) = g
  end subroutine advance

  ! A hash of the bits of the field (bit operations only: no overflow).
  integer(c_int64_t) function hash(f) result(h)
    real(8), intent(in) :: f(0:, 0:)
    integer :: i, j
    h = 1469598103934665603_c_int64_t
    do j = 1, ny
      do i = 1, nx
        h = ieor(ishftc(h, 7), transfer(f(i, j), h))
      end do
    end do
  end function hash

  subroutine report()
    integer(c_int64_t) :: mine, hs(np), h
    real(8) :: s, total
    integer :: r, same, allsame
    mine = hash(u)
    call MPI_Gather(mine, 1, MPI_INTEGER8, hs, 1, MPI_INTEGER8, 0, comm)
    s = sum(u(1:nx, 1:ny))
    call MPI_Reduce(s, total, 1, MPI_DOUBLE_PRECISION, MPI_SUM, 0, comm)
    same = merge(1, 0, all(transfer(u(1:nx, 1:ny), 0_c_int64_t, nx * ny) == &
                           transfer(ref(1:nx, 1:ny), 0_c_int64_t, nx * ny)))
    call MPI_Allreduce(same, allsame, 1, MPI_INTEGER, MPI_MIN, comm)
    if (rank /= 0) then
      if (allsame == 0 .or. (expect_rec >= 0 .and. recoveries /= expect_rec)) call MPI_Abort(MPI_COMM_WORLD, 1)
      return
    end if
    h = 0
    do r = 1, np
      h = ieor(ishftc(h, 13), hs(r))
    end do
    h = ibclr(h, 63)
    write(*, '(a, z16.16, a, es24.16, a)') "heat_f90: checksum ", h, ", sum ", total, " (protected run)"
    write(*, '(a, i0, a, i0)') "heat_f90: ", recoveries, " recoveries in ", steps
    if (allsame == 0) then
      write(*, '(a)') "heat_f90: checksum DIFFERS from failure-free run"
      call MPI_Abort(MPI_COMM_WORLD, 1)
    end if
    write(*, '(a)') "heat_f90: checksum matches failure-free run"
    if (expect_rec >= 0 .and. recoveries /= expect_rec) then
      write(*, '(a, i0, a, i0)') "heat_f90: expected ", expect_rec, " recoveries, got ", recoveries
      call MPI_Abort(MPI_COMM_WORLD, 1)
    end if
  end subroutine report

end program heat_f90
