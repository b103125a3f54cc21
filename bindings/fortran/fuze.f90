!> fuze: Fortran bindings (ISO_C_BINDING) of the fuze library (include/fuze.h).
!>
!> Every function returns an integer status, as in C: FUZE_SUCCESS (0), a
!> positive informational code (FUZE_RECOVERED, FUZE_RESTARTED) or a negative
!> error; fuze_last_error(ctx) says what failed. The same calls are collective
!> as in C. The status constants are generated from include/fuze.h's
!> FUZE_STATUS_MAP at build time (fuze_status.inc), so they cannot drift.
!>
!>   use fuze
!>   type(fuze_ctx) :: ctx
!>   type(MPI_Comm) :: comm                  ! or: integer :: comm (mpif.h/mpi handle)
!>   rc = fuze_init(MPI_COMM_WORLD, "faults=1", ctx, comm)
!>   if (comm == MPI_COMM_NULL) -> a spare rank: it only hosted backups
!>   rc = fuze_protect(ctx, "u", u)          ! real(4|8)/integer(4|8), any rank
!>   rc = fuze_checkpoint(ctx)               ! FUZE_RECOVERED: resume from the checkpoint
!>   rc = fuze_finalize(ctx)
!>
!> Protected arrays must stay at the same address until fuze_finalize (use
!> allocatable or static arrays, never a temporary), and must be contiguous.
module fuze
  use, intrinsic :: iso_c_binding
  use mpi_f08, only: MPI_Comm
  implicit none
  private

  include 'fuze_status.inc'

  !> The library context (NULL on spare ranks and after fuze_finalize).
  type, public :: fuze_ctx
    type(c_ptr) :: p = c_null_ptr
  end type fuze_ctx

  !> Per-rank (fuze_get_stats) or job-wide (fuze_get_job_stats) counters;
  !> the meanings are those of fuze_stats in include/fuze.h.
  type, public :: fuze_stats
    integer(c_int64_t) :: epoch = 0, protected_bytes = 0, parity_bytes = 0, working_bytes = 0
    integer(c_int64_t) :: shadow_bytes = 0, sent_bytes = 0, recovered_bytes = 0, recoveries = 0
    integer :: nblocks = 0, nbackups = 0
    integer(c_int64_t) :: undo_bytes = 0, replica_bytes = 0, total_bytes = 0
    integer(c_int64_t) :: injections_unfired = 0
  end type fuze_stats
  integer, parameter :: NSTATS = 14

  public :: fuze_init, fuze_finalize, fuze_protect, fuze_checkpoint, fuze_recover
  public :: fuze_inject, fuze_inject_at, fuze_stored_count, fuze_get_stats, fuze_get_job_stats
  public :: fuze_strerror, fuze_err_name, fuze_last_error, fuze_is_spare

  !> rc = fuze_init(comm, config, ctx, app_comm): comm and app_comm are both
  !> type(MPI_Comm) (mpi_f08) or both integer handles (use mpi / mpif.h).
  interface fuze_init
    module procedure init_f08, init_int
  end interface fuze_init

  !> rc = fuze_protect(ctx, name, array): array is real(4), real(8),
  !> integer(4) or integer(8), of any rank, contiguous, with the TARGET
  !> attribute (or allocatable) so that its address stays valid.
  interface fuze_protect
    module procedure protect_r4, protect_r8, protect_i4, protect_i8
  end interface fuze_protect

  interface
    integer(c_int) function c_init(comm, config, ctx, app) bind(c, name="fuze_f_init")
      import :: c_int, c_char, c_ptr
      integer(c_int), value :: comm
      character(kind=c_char), dimension(*), intent(in) :: config
      type(c_ptr), intent(out) :: ctx
      integer(c_int), intent(out) :: app
    end function c_init
    integer(c_int) function c_protect(ctx, name, a, kind) bind(c, name="fuze_f_protect")
      import :: c_int, c_char, c_ptr
      type(c_ptr), value :: ctx
      character(kind=c_char), dimension(*), intent(in) :: name
      type(*), dimension(..), intent(in) :: a
      integer(c_int), value :: kind
    end function c_protect
    integer(c_int) function c_stats(ctx, job, vals, n) bind(c, name="fuze_f_stats")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ctx
      integer(c_int), value :: job, n
      integer(c_int64_t), intent(out) :: vals(*)
    end function c_stats
    type(c_ptr) function c_last_error(ctx) bind(c, name="fuze_f_last_error")
      import :: c_ptr
      type(c_ptr), value :: ctx
    end function c_last_error
    integer(c_int) function c_finalize(ctx) bind(c, name="fuze_finalize")
      import :: c_int, c_ptr
      type(c_ptr), intent(inout) :: ctx
    end function c_finalize
    integer(c_int) function c_checkpoint(ctx) bind(c, name="fuze_checkpoint")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
    end function c_checkpoint
    integer(c_int) function c_recover(ctx) bind(c, name="fuze_recover")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
    end function c_recover
    integer(c_int) function c_inject(ctx, ranks, n) bind(c, name="fuze_inject")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int), intent(in) :: ranks(*)
      integer(c_int), value :: n
    end function c_inject
    integer(c_int) function c_inject_at(ctx, ranks, n, phase) bind(c, name="fuze_inject_at")
      import :: c_int, c_ptr, c_char
      type(c_ptr), value :: ctx
      integer(c_int), intent(in) :: ranks(*)
      integer(c_int), value :: n
      character(kind=c_char), dimension(*), intent(in) :: phase
    end function c_inject_at
    integer(c_int) function c_stored_count(ctx, name, count) bind(c, name="fuze_stored_count")
      import :: c_int, c_ptr, c_char, c_size_t
      type(c_ptr), value :: ctx
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_size_t), intent(out) :: count
    end function c_stored_count
    type(c_ptr) function c_strerror(code) bind(c, name="fuze_strerror")
      import :: c_ptr, c_int
      integer(c_int), value :: code
    end function c_strerror
    type(c_ptr) function c_err_name(code) bind(c, name="fuze_err_name")
      import :: c_ptr, c_int
      integer(c_int), value :: code
    end function c_err_name
    subroutine c_clear() bind(c, name="fuze_f_clear")
    end subroutine c_clear
    integer(c_size_t) function c_strlen(s) bind(c, name="strlen")
      import :: c_size_t, c_ptr
      type(c_ptr), value :: s
    end function c_strlen
  end interface

contains

  ! A Fortran string as a NUL-terminated C string (trailing blanks dropped).
  pure function cstr(s) result(c)
    character(*), intent(in) :: s
    character(kind=c_char, len=len_trim(s) + 1) :: c
    c = trim(s) // c_null_char
  end function cstr

  ! A C string (never NULL here) as a Fortran string of its length.
  function fstr(p) result(s)
    type(c_ptr), intent(in) :: p
    character(:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    n = int(c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate(character(n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function fstr

  integer function init_int(comm, config, ctx, app_comm) result(rc)
    integer, intent(in) :: comm
    character(*), intent(in) :: config
    type(fuze_ctx), intent(out) :: ctx
    integer, intent(out) :: app_comm
    integer(c_int) :: app
    rc = c_init(int(comm, c_int), cstr(config), ctx%p, app)
    app_comm = app
  end function init_int

  integer function init_f08(comm, config, ctx, app_comm) result(rc)
    type(MPI_Comm), intent(in) :: comm
    character(*), intent(in) :: config
    type(fuze_ctx), intent(out) :: ctx
    type(MPI_Comm), intent(out) :: app_comm
    rc = init_int(comm%MPI_VAL, config, ctx, app_comm%MPI_VAL)
  end function init_f08

  !> .true. on a spare rank after fuze_init (no context: it only hosted backups).
  logical function fuze_is_spare(ctx)
    type(fuze_ctx), intent(in) :: ctx
    fuze_is_spare = .not. c_associated(ctx%p)
  end function fuze_is_spare

  integer function fuze_finalize(ctx) result(rc)
    type(fuze_ctx), intent(inout) :: ctx
    call c_clear()
    rc = c_finalize(ctx%p)
  end function fuze_finalize

  integer function protect_r4(ctx, name, a) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    character(*), intent(in) :: name
    real(c_float), dimension(..), intent(inout), target :: a
    rc = c_protect(ctx%p, cstr(name), a, 1_c_int)
  end function protect_r4

  integer function protect_r8(ctx, name, a) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    character(*), intent(in) :: name
    real(c_double), dimension(..), intent(inout), target :: a
    rc = c_protect(ctx%p, cstr(name), a, 2_c_int)
  end function protect_r8

  integer function protect_i4(ctx, name, a) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    character(*), intent(in) :: name
    integer(c_int32_t), dimension(..), intent(inout), target :: a
    rc = c_protect(ctx%p, cstr(name), a, 3_c_int)
  end function protect_i4

  integer function protect_i8(ctx, name, a) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    character(*), intent(in) :: name
    integer(c_int64_t), dimension(..), intent(inout), target :: a
    rc = c_protect(ctx%p, cstr(name), a, 4_c_int)
  end function protect_i8

  integer function fuze_checkpoint(ctx) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    call c_clear()
    rc = c_checkpoint(ctx%p)
  end function fuze_checkpoint

  integer function fuze_recover(ctx) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    call c_clear()
    rc = c_recover(ctx%p)
  end function fuze_recover

  !> Emulate the crash of ranks(:) (ranks of the communicator given to fuze_init).
  integer function fuze_inject(ctx, ranks) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    integer, intent(in) :: ranks(:)
    integer(c_int) :: r(max(1, size(ranks)))
    r = 0
    r(1:size(ranks)) = ranks
    call c_clear()
    rc = c_inject(ctx%p, r, int(size(ranks), c_int))
  end function fuze_inject

  !> Arm a wipe of ranks(:) inside the next fuze_checkpoint, at phase
  !> ("before", "partial", "sent", "promoted", "after", "persist", "persisted").
  integer function fuze_inject_at(ctx, ranks, phase) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    integer, intent(in) :: ranks(:)
    character(*), intent(in) :: phase
    integer(c_int) :: r(max(1, size(ranks)))
    r = 0
    r(1:size(ranks)) = ranks
    call c_clear()
    rc = c_inject_at(ctx%p, r, int(size(ranks), c_int), cstr(phase))
  end function fuze_inject_at

  !> Elements stored for name on this rank by the epoch a restart found.
  integer function fuze_stored_count(ctx, name, count) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    character(*), intent(in) :: name
    integer(c_int64_t), intent(out) :: count
    integer(c_size_t) :: n
    n = 0
    call c_clear()
    rc = c_stored_count(ctx%p, cstr(name), n)
    count = int(n, c_int64_t)
  end function fuze_stored_count

  integer function get_stats(ctx, job, st) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    integer, intent(in) :: job
    type(fuze_stats), intent(out) :: st
    integer(c_int64_t) :: v(NSTATS)
    v = 0
    rc = c_stats(ctx%p, int(job, c_int), v, int(NSTATS, c_int))
    st = fuze_stats(v(1), v(2), v(3), v(4), v(5), v(6), v(7), v(8), int(v(9)), int(v(10)), &
                    v(11), v(12), v(13), v(14))
  end function get_stats

  !> This rank's counters (local).
  integer function fuze_get_stats(ctx, st) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    type(fuze_stats), intent(out) :: st
    rc = get_stats(ctx, 0, st)
  end function fuze_get_stats

  !> The job's counters, spare ranks included (collective).
  integer function fuze_get_job_stats(ctx, st) result(rc)
    type(fuze_ctx), intent(in) :: ctx
    type(fuze_stats), intent(out) :: st
    rc = get_stats(ctx, 1, st)
  end function fuze_get_job_stats

  function fuze_strerror(code) result(s)
    integer, intent(in) :: code
    character(:), allocatable :: s
    s = fstr(c_strerror(int(code, c_int)))
  end function fuze_strerror

  !> The symbolic name of a status, e.g. "FUZE_ERR_ARG".
  function fuze_err_name(code) result(s)
    integer, intent(in) :: code
    character(:), allocatable :: s
    s = fstr(c_err_name(int(code, c_int)))
  end function fuze_err_name

  !> The last error message on ctx (or of this thread, for a NULL context).
  function fuze_last_error(ctx) result(s)
    type(fuze_ctx), intent(in) :: ctx
    character(:), allocatable :: s
    s = fstr(c_last_error(ctx%p))
  end function fuze_last_error

end module fuze
