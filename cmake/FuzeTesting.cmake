# fuze_add_mpi_test(NAME <name> COMMAND <target-or-exe> [ARGS ...] NP <n>
#                   [TIMEOUT <s>] [ENV <VAR=value> ...] [TCP] [WILL_FAIL])
# Runs the command under `${MPIEXEC_EXECUTABLE} ${FUZE_MPIRUN_FLAGS} -np n` with a timeout
# and the environment ${FUZE_MPIRUN_ENV} plus ENV. TCP: also ${FUZE_MPI_TCP_ENV}, the
# transport of ranks on different nodes (see below).
# fuze_add_unit_test(NAME <name> COMMAND <target> [ARGS ...] [TIMEOUT <s>])
# Runs a pure unit test without mpirun (label `unit`).
#
# The launcher's flags and environment depend on the MPI (FUZE_MPI_FLAVOR, found by
# FuzeDependencies); tests and drivers take them from these variables, never spell them:
#   FUZE_MPIRUN_FLAGS  flags before -np: run more ranks than cores, unbound.
#                      Open MPI: --oversubscribe --bind-to none. MPICH (Hydra): none; it
#                      neither limits ranks to slots nor binds unless told (-bind-to).
#   FUZE_MPIRUN_ENV    environment of every launch. Open MPI: OMPI_ALLOW_RUN_AS_ROOT* (it
#                      refuses root otherwise; CI runs as root) and oversubscription for
#                      launches that do not pass the flags (drivers, the consumer test).
#                      MPICH: none needed (Hydra runs as root).
#   FUZE_MPI_TCP_ENV   one node made to behave like ranks on separate nodes, where no
#                      shared-memory window is possible and one-sided operations go through
#                      the network layer: Open MPI: osc/pt2pt over btl/tcp (osc/pt2pt has no
#                      shared windows: MPI_Win_allocate_shared fails). MPICH:
#                      MPIR_CVAR_NOLOCAL=1: every rank acts as if on a node of its own
#                      (MPI_COMM_TYPE_SHARED gives one rank per node, no MPICH shared
#                      memory), so RMA goes through the ch4 netmod (UCX). With Open MPI
#                      also FUZE_DEBUG_OWN_SHM=0: the ranks stay on one node, where fuze
#                      would otherwise share its own memory between them (transport.c). Not UCX over TCP
#                      (UCX_TLS=tcp,self): with Debian's MPICH 4.0.2 / UCX 1.13 MPI_Finalize
#                      then hangs now and then (a rank flushing its TCP endpoints while
#                      the others already wait in the PMI barrier), an MPICH/UCX problem
#                      that fuze cannot reach.
#   FUZE_MPI_TCP_SHARED_FAILS  TRUE when FUZE_MPI_TCP_ENV keeps every rank on one node but
#                      shared windows fail (Open MPI's osc/pt2pt); FALSE when the ranks
#                      appear on separate nodes instead (MPICH's NOLOCAL).
#   FUZE_TEST_TIMEOUT_SCALE  multiplies every MPI test's TIMEOUT. Open MPI: 1. MPICH: 4:
#                      its ch4 progress engine polls without ever yielding the core. fuze's
#                      own blocking calls poll with back-off when a node runs more ranks than
#                      it has cores (src/comm/wait.h), but window and communicator creation
#                      and MPI_Win_flush across nodes still spin inside MPICH, so with up to
#                      8 ranks on the CI machine's 2 cores the tests take 2-10x their Open
#                      MPI time.
#   FUZE_MPI_TCP_NAME  what the cross-node variants of tests are called after: tcp_pt2pt
#                      (Open MPI 4), tcp_rdma (Open MPI 5: osc/pt2pt is gone, osc/rdma runs
#                      over btl/tcp), nolocal (MPICH).
if(FUZE_MPI_FLAVOR STREQUAL "mpich")
  set(_fuze_flags "")
  set(_fuze_env "")
  set(_fuze_tcp_env MPIR_CVAR_NOLOCAL=1)
  set(FUZE_MPI_TCP_SHARED_FAILS FALSE)
  set(FUZE_MPI_TCP_NAME nolocal)
  set(_fuze_scale 4)
else()
  set(_fuze_flags --oversubscribe --bind-to none)
  set(_fuze_env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
                OMPI_MCA_rmaps_base_oversubscribe=1)
  if(FUZE_OSC_TCP STREQUAL "rdma")
    # Open MPI 5 removed osc/pt2pt; osc/rdma runs over btl/tcp (active-message emulation).
    set(_fuze_tcp_env OMPI_MCA_osc=rdma OMPI_MCA_pml=ob1 OMPI_MCA_btl=tcp,self
                      OMPI_MCA_btl_tcp_disable_family=6 FUZE_DEBUG_OWN_SHM=0)
    set(FUZE_MPI_TCP_NAME tcp_rdma)
  else()
    set(_fuze_tcp_env OMPI_MCA_osc=pt2pt OMPI_MCA_btl=tcp,self FUZE_DEBUG_OWN_SHM=0)
    set(FUZE_MPI_TCP_NAME tcp_pt2pt)
  endif()
  set(FUZE_MPI_TCP_SHARED_FAILS TRUE)
  set(_fuze_scale 1)
endif()
set(FUZE_MPIRUN_FLAGS "${_fuze_flags}" CACHE STRING
    "Extra launcher flags for tests (default: by MPI implementation, see FuzeTesting.cmake)")
set(FUZE_MPIRUN_ENV "${_fuze_env}" CACHE STRING
    "Environment of every test launch (default: by MPI implementation, see FuzeTesting.cmake)")
set(FUZE_MPI_TCP_ENV "${_fuze_tcp_env}")
set(FUZE_TEST_TIMEOUT_SCALE "${_fuze_scale}" CACHE STRING
    "Factor on every MPI test's timeout (default: by MPI implementation, see FuzeTesting.cmake)")

function(fuze_add_mpi_test)
  cmake_parse_arguments(T "WILL_FAIL;TCP" "NAME;NP;TIMEOUT" "COMMAND;ARGS;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  math(EXPR T_TIMEOUT "${T_TIMEOUT} * ${FUZE_TEST_TIMEOUT_SCALE}")
  set(_cmd ${T_COMMAND})
  list(GET _cmd 0 _first)
  if(TARGET ${_first})
    list(REMOVE_AT _cmd 0)
    list(PREPEND _cmd $<TARGET_FILE:${_first}>)
  endif()
  add_test(NAME ${T_NAME}
           COMMAND ${MPIEXEC_EXECUTABLE} ${FUZE_MPIRUN_FLAGS} -np ${T_NP} ${_cmd} ${T_ARGS})
  set(_env ${FUZE_MPIRUN_ENV})
  if(T_TCP)
    list(APPEND _env ${FUZE_MPI_TCP_ENV})
  endif()
  list(APPEND _env ${T_ENV})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} PROCESSORS 1)
  if(_env)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${_env}")
  endif()
  if(T_WILL_FAIL)
    set_tests_properties(${T_NAME} PROPERTIES WILL_FAIL TRUE)
  endif()
endfunction()

function(fuze_add_unit_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND} ${T_ARGS})
  # Label `unit`: the TSan preset runs these with the `threads` tests.
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS unit)
endfunction()
