! Consumer of an installed fuze's Fortran module: `use fuze`, protect an
! array, wipe rank 1, check the rollback. Built by the install_consumer test
! with find_package(fuze COMPONENTS Fortran) and with
! `mpif90 main.f90 $(pkg-config --cflags --libs fuze-fortran)`. Run on 2 ranks.
program consumer_f
  use, intrinsic :: iso_c_binding, only: c_double
  use mpi_f08
  use fuze
  implicit none
  type(fuze_ctx) :: ctx
  type(MPI_Comm) :: comm
  real(c_double), allocatable, target :: u(:, :)
  real(c_double), allocatable :: saved(:, :)
  integer :: rc, rank, bad, anybad
  call MPI_Init()
  bad = 0
  rc = fuze_init(MPI_COMM_WORLD, "domain=rank", ctx, comm)
  if (rc /= FUZE_SUCCESS) then
    write(*, '(a)') "consumer_f: fuze_init: " // fuze_last_error(ctx)
    call MPI_Abort(MPI_COMM_WORLD, 1)
  end if
  call MPI_Comm_rank(comm, rank)
  allocate(u(8, 8), saved(8, 8))
  call random_number(u)
  saved = u
  if (fuze_protect(ctx, "u", u) /= FUZE_SUCCESS) bad = 1
  u = 0
  if (fuze_inject(ctx, [1]) /= FUZE_SUCCESS) bad = 1
  if (fuze_checkpoint(ctx) /= FUZE_RECOVERED) bad = 1
  if (any(u /= saved)) bad = 1
  if (fuze_finalize(ctx) /= FUZE_SUCCESS) bad = 1
  call MPI_Allreduce(bad, anybad, 1, MPI_INTEGER, MPI_MAX, comm)
  if (rank == 0) write(*, '(a)') merge("consumer_f: ok    ", "consumer_f: FAILED", anybad == 0)
  call MPI_Comm_free(comm)
  call MPI_Finalize()
  if (anybad /= 0) error stop 1
end program consumer_f
