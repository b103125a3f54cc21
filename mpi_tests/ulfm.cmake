# ULFM (label ulfm): only with an MPI that has it (Open MPI 5's ftmpi extension; the Debian 13
# root of `./quickstart.sh ulfm`). Every test runs under `mpirun --with-ft ulfm` through
# ulfm_run.sh, which decides by what the survivors print and guards against the known
# MPI_Finalize hang after a failure.
if(NOT FUZE_HAVE_ULFM)
  return()
endif()

# fuze_add_ulfm_test(NAME n COMMAND target [ARGS ...] NP np PASS survivors
#                    [TRANSPORT sm|tcp] [KILL ranks] [TIMEOUT s])
# KILL: ulfm_run.sh kill -9s those ranks (comma-separated) from outside at a random time.
function(fuze_add_ulfm_test)
  cmake_parse_arguments(T "" "NAME;NP;PASS;TRANSPORT;KILL;TIMEOUT" "COMMAND;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_TRANSPORT)
    set(T_TRANSPORT sm)
  endif()
  math(EXPR _inner "${T_TIMEOUT} - 20")
  set(_kill)
  if(T_KILL)
    set(_kill --kill ${T_KILL})
  endif()
  add_test(NAME ${T_NAME}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ulfm_run.sh --pass ${T_PASS} --timeout ${_inner}
                   --transport ${T_TRANSPORT} ${_kill} -- -np ${T_NP} $<TARGET_FILE:${T_COMMAND}>
                   ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS ulfm PROCESSORS 2
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;MPIEXEC=${MPIEXEC_EXECUTABLE}")
endfunction()

add_executable(test_ulfm_basic test_ulfm_basic.c)
target_link_libraries(test_ulfm_basic PRIVATE MPI::MPI_C)
# test_ulfm_basic VICTIMS ROUNDS [outside]: see the file. A middle rank kills itself, over
# shared memory; rank 0 (where fuze's control channel starts), over TCP; two ranks at once;
# ranks killed from outside (kill -9 by the driver at a random time), over both transports.
fuze_add_ulfm_test(NAME ulfm_basic_np4_sm COMMAND test_ulfm_basic ARGS 2 3 NP 4 PASS 3)
fuze_add_ulfm_test(NAME ulfm_basic_np5_tcp COMMAND test_ulfm_basic ARGS 0 3 NP 5 PASS 4
                   TRANSPORT tcp)
fuze_add_ulfm_test(NAME ulfm_basic_two_np6_sm COMMAND test_ulfm_basic ARGS 1,4 2 NP 6 PASS 4)
fuze_add_ulfm_test(NAME ulfm_outside_np5_sm COMMAND test_ulfm_basic ARGS 3 2 outside NP 5 PASS 4
                   KILL 3)
fuze_add_ulfm_test(NAME ulfm_outside_two_np6_tcp COMMAND test_ulfm_basic ARGS 0,5 2 outside NP 6
                   PASS 4 KILL 0,5 TRANSPORT tcp)

# fuze's collective layer under real deaths (comm/ft.h): FUZE_RANK_LOST from FUZE_MPI, the
# fault-tolerant agreement, shrink with the dead set, and agree/max/reduce_to bit-exact on
# the survivors.
add_executable(test_ulfm_comm test_ulfm_comm.c)
target_link_libraries(test_ulfm_comm PRIVATE fuze_static)
fuze_add_ulfm_test(NAME ulfm_comm_np5_sm COMMAND test_ulfm_comm ARGS 1 NP 5 PASS 4)
fuze_add_ulfm_test(NAME ulfm_comm_two_np7_sm COMMAND test_ulfm_comm ARGS 0,4 NP 7 PASS 5)

# Replacement ranks into dead ranks' places, at the communicator level (fuze__ft_replace):
# repeated deaths until the replacements run out, then FUZE_ERR_UNRECOVERABLE and no hang.
add_executable(test_ulfm_replace test_ulfm_replace.c)
target_link_libraries(test_ulfm_replace PRIVATE fuze_static)
fuze_add_ulfm_test(NAME ulfm_replace_np7_sm COMMAND test_ulfm_replace NP 7 PASS 4)
fuze_add_ulfm_test(NAME ulfm_replace_np7_tcp COMMAND test_ulfm_replace NP 7 PASS 4 TRANSPORT tcp)

# An idle replacement rank killed from outside while the compute ranks checkpoint.
add_executable(test_ulfm_idle test_ulfm_idle.c)
target_link_libraries(test_ulfm_idle PRIVATE fuze_static)
fuze_add_ulfm_test(NAME ulfm_idle_replacement_killed_np5 COMMAND test_ulfm_idle NP 5 PASS 4 KILL 4)
