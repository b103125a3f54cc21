! The Fortran bindings (module fuze): status constants equal to the C ones,
! fuze_init with integer and type(MPI_Comm) handles (spares included),
! protect of real(4)/real(8)/integer(4)/integer(8) arrays of rank 0..3, a wipe
! and its bit-exact rollback, inject_at, stored count, stats, messages.
! Run on 4 ranks. Prints "FAIL ..." for every failed check; exit status 1 if any.
program test_fortran
  use, intrinsic :: iso_c_binding, only: c_float, c_double, c_int32_t, c_int64_t
  use mpi_f08
  use fuze
  implicit none
  integer :: failures = 0, wrank, wsize, total

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, wrank)
  call MPI_Comm_size(MPI_COMM_WORLD, wsize)
  if (wsize /= 4) then
    if (wrank == 0) write(*, '(a)') "test_fortran: run on 4 ranks"
    call MPI_Abort(MPI_COMM_WORLD, 2)
  end if
  call constants()
  call integer_handles_and_wipe()
  call f08_handles_with_spare()
  call MPI_Allreduce(failures, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD)
  if (wrank == 0) write(*, '(a, i0, a)') merge("PASS: ", "FAIL: ", total == 0), total, " failure(s)"
  call MPI_Finalize()
  if (total /= 0) error stop 1

contains

  subroutine check(ok, what)
    logical, intent(in) :: ok
    character(*), intent(in) :: what
    if (.not. ok) then
      write(*, '(a, i0, a)') "FAIL rank ", wrank, ": " // what
      failures = failures + 1
    end if
  end subroutine check

  subroutine check_rc(got, want, what)
    integer, intent(in) :: got, want
    character(*), intent(in) :: what
    call check(got == want, what // ": got " // fuze_err_name(got) // ", expected " // fuze_err_name(want))
  end subroutine check_rc

  ! Every Fortran constant names the C code of the same value, and there are
  ! as many as C has codes.
  subroutine constants()
    integer, parameter :: codes(13) = [FUZE_SUCCESS, FUZE_RECOVERED, FUZE_RESTARTED, &
      FUZE_ERR_ARG, FUZE_ERR_CONFIG, FUZE_ERR_NOMEM, FUZE_ERR_MPI, FUZE_ERR_NOT_FOUND, &
      FUZE_ERR_EMPTY, FUZE_ERR_UNRECOVERABLE, FUZE_ERR_IO, FUZE_ERR_CORRUPT, FUZE_ERR_STATE]
    character(len=24), parameter :: names(13) = [character(len=24) :: "FUZE_SUCCESS", &
      "FUZE_RECOVERED", "FUZE_RESTARTED", "FUZE_ERR_ARG", "FUZE_ERR_CONFIG", "FUZE_ERR_NOMEM", &
      "FUZE_ERR_MPI", "FUZE_ERR_NOT_FOUND", "FUZE_ERR_EMPTY", "FUZE_ERR_UNRECOVERABLE", &
      "FUZE_ERR_IO", "FUZE_ERR_CORRUPT", "FUZE_ERR_STATE"]
    integer :: i, c, nc
    do i = 1, size(codes)
      call check(fuze_err_name(codes(i)) == trim(names(i)), "constant " // trim(names(i)) // &
        " has the value of C's " // fuze_err_name(codes(i)))
    end do
    nc = 0
    do c = -100, 100
      if (fuze_err_name(c) /= "FUZE_UNKNOWN") nc = nc + 1
    end do
    call check(nc == size(codes), "C has a status code the Fortran module does not know")
    call check(fuze_strerror(FUZE_ERR_ARG) == "invalid argument", "strerror: " // fuze_strerror(FUZE_ERR_ARG))
  end subroutine constants

  subroutine fill(a4, b8, c4, s8, seed)
    real(c_float), intent(out) :: a4(0:)
    real(c_double), intent(out) :: b8(:, :, :)
    integer(c_int32_t), intent(out) :: c4(:, :)
    integer(c_int64_t), intent(out) :: s8
    integer, intent(in) :: seed
    integer :: i
    do i = 0, size(a4) - 1
      a4(i) = real(i * 3 + seed, c_float) / 7.0
    end do
    b8 = reshape([(real(i, c_double) / 3.0d0 + seed, i = 1, size(b8))], shape(b8))
    c4 = reshape([(int(i * seed - 5, c_int32_t), i = 1, size(c4))], shape(c4))
    s8 = 1234567890123_c_int64_t * seed
  end subroutine fill

  subroutine integer_handles_and_wipe()
    type(fuze_ctx) :: ctx
    type(MPI_Comm) :: wrap
    integer :: comm, rc, n, rank
    real(c_float), allocatable, target :: a4(:), a4ref(:)
    real(c_double), allocatable, target :: b8(:, :, :), b8ref(:, :, :)
    integer(c_int32_t), target :: c4(3, 7), c4ref(3, 7)
    integer(c_int64_t), target :: s8, s8ref, stored
    type(fuze_stats) :: st, job

    rc = fuze_init(MPI_COMM_WORLD%MPI_VAL, "faults=1;domain=rank", ctx, comm)
    call check_rc(rc, FUZE_SUCCESS, "fuze_init (integer handles)")
    call check(.not. fuze_is_spare(ctx), "no spares: a context on every rank")
    wrap%MPI_VAL = comm
    call MPI_Comm_size(wrap, n)
    call MPI_Comm_rank(wrap, rank)
    call check(n == 4, "the integer compute communicator has 4 ranks")
    allocate(a4(0:99 + rank), a4ref(0:99 + rank), b8(4, 5, rank + 1), b8ref(4, 5, rank + 1))
    call fill(a4, b8, c4, s8, rank + 1)
    call check_rc(fuze_protect(ctx, "a4", a4), FUZE_SUCCESS, "protect real(4) rank 1")
    call check_rc(fuze_protect(ctx, "b8", b8), FUZE_SUCCESS, "protect real(8) rank 3")
    call check_rc(fuze_protect(ctx, "c4", c4), FUZE_SUCCESS, "protect integer(4) rank 2")
    call check_rc(fuze_protect(ctx, "s8", s8), FUZE_SUCCESS, "protect integer(8) rank 0")
    call check_rc(fuze_protect(ctx, "strided", a4(::2)), FUZE_ERR_ARG, "protect a strided section")
    call check(index(fuze_last_error(ctx), "fuze_protect('strided'): the Fortran array is not contiguous") > 0, &
               "message: " // fuze_last_error(ctx))
    call check_rc(fuze_get_stats(ctx, st), FUZE_SUCCESS, "get_stats")
    call check(st%protected_bytes == 4 * (100 + rank) + 8 * 20 * (rank + 1) + 4 * 21 + 8, &
               "protected bytes of this rank")
    call check_rc(fuze_get_job_stats(ctx, job), FUZE_SUCCESS, "get_job_stats")
    call check(job%protected_bytes == 4 * 406 + 8 * 20 * 10 + 4 * 4 * 21 + 4 * 8, "job protected bytes")
    call check(job%parity_bytes > 0 .and. job%parity_bytes == job%working_bytes, "job parity bytes")
    call check_rc(fuze_checkpoint(ctx), FUZE_SUCCESS, "checkpoint 1")
    a4ref = a4; b8ref = b8; c4ref = c4; s8ref = s8
    ! Change everything, then lose rank 1: the next checkpoint rolls back.
    call fill(a4, b8, c4, s8, rank + 50)
    call check_rc(fuze_inject(ctx, [1]), FUZE_SUCCESS, "inject wipe of rank 1")
    call check_rc(fuze_checkpoint(ctx), FUZE_RECOVERED, "checkpoint after the wipe")
    call check(all(transfer(a4, 0_c_int32_t, size(a4)) == transfer(a4ref, 0_c_int32_t, size(a4))), "a4 bit-exact")
    call check(all(transfer(b8, 0_c_int64_t, size(b8)) == transfer(b8ref, 0_c_int64_t, size(b8))), "b8 bit-exact")
    call check(all(c4 == c4ref) .and. s8 == s8ref, "c4 and s8 exact")
    call check_rc(fuze_get_stats(ctx, st), FUZE_SUCCESS, "get_stats")
    call check(st%recoveries == 1 .and. st%epoch == 1, "one recovery, epoch 1")
    call check_rc(fuze_stored_count(ctx, "a4", stored), FUZE_ERR_NOT_FOUND, "stored_count without a restart")
    call check_rc(fuze_inject(ctx, [7]), FUZE_ERR_ARG, "inject of rank 7 of 4")
    call check_rc(fuze_finalize(ctx), FUZE_SUCCESS, "finalize")
    call check(fuze_is_spare(ctx), "finalize clears the context")
    call check_rc(fuze_checkpoint(ctx), FUZE_ERR_ARG, "checkpoint after finalize")
    call check(index(fuze_last_error(ctx), "ctx is NULL") > 0, "message: " // fuze_last_error(ctx))
    call MPI_Comm_free(wrap)
  end subroutine integer_handles_and_wipe

  ! spares=1: world rank 3 only hosts backups; its fuze_init returns after the
  ! compute ranks' fuze_finalize, with MPI_COMM_NULL.
  subroutine f08_handles_with_spare()
    type(fuze_ctx) :: ctx
    type(MPI_Comm) :: comm
    integer :: rc, n
    real(c_double), allocatable, target :: u(:, :), uref(:, :)
    rc = fuze_init(MPI_COMM_WORLD, "faults=1,spares=1,domain=rank", ctx, comm)
    call check_rc(rc, FUZE_SUCCESS, "fuze_init (mpi_f08 handles)")
    if (wrank == 3) then
      call check(fuze_is_spare(ctx) .and. comm == MPI_COMM_NULL, "world rank 3 is a spare")
      return
    end if
    call check(.not. fuze_is_spare(ctx) .and. comm /= MPI_COMM_NULL, "compute rank")
    call MPI_Comm_size(comm, n)
    call check(n == 3, "3 compute ranks")
    allocate(u(10, 10 + wrank), uref(10, 10 + wrank))
    call random_number(u)
    call check_rc(fuze_protect(ctx, "u", u), FUZE_SUCCESS, "protect")
    uref = u
    u = -1
    call check_rc(fuze_inject_at(ctx, [2], "sent"), FUZE_SUCCESS, "inject_at sent")
    call check_rc(fuze_checkpoint(ctx), FUZE_RECOVERED, "checkpoint with a wipe at phase sent")
    call check(all(transfer(u, 0_c_int64_t, size(u)) == transfer(uref, 0_c_int64_t, size(u))), &
               "u bit-exact after the recovery")
    call check_rc(fuze_inject_at(ctx, [2], "nonsense"), FUZE_ERR_ARG, "unknown phase")
    call check(index(fuze_last_error(ctx), "nonsense") > 0, "message: " // fuze_last_error(ctx))
    call check_rc(fuze_finalize(ctx), FUZE_SUCCESS, "finalize")
    call MPI_Comm_free(comm)
  end subroutine f08_handles_with_spare

end program test_fortran
