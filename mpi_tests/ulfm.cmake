# ULFM (label ulfm): only with an MPI that has it (Open MPI 5's ftmpi extension; the Debian 13
# root of `./quickstart.sh ulfm`). Every test runs under `mpirun --with-ft ulfm` through
# ulfm_run.sh, which decides by what the survivors print and guards against the known
# MPI_Finalize hang after a failure.
if(NOT FUZE_HAVE_ULFM)
  return()
endif()

# fuze_add_ulfm_test(NAME n COMMAND target [ARGS ...] NP np PASS survivors
#                    [TRANSPORT sm|tcp] [KILL ranks [KILL_DELAY ms]] [ENV VAR=value ...]
#                    [TIMEOUT s])
# KILL: ulfm_run.sh kill -9s those ranks (comma-separated) from outside at a random time
# (KILL_DELAY: that many ms after they all printed their pid).
function(fuze_add_ulfm_test)
  cmake_parse_arguments(T "" "NAME;NP;PASS;TRANSPORT;KILL;KILL_DELAY;TIMEOUT" "COMMAND;ARGS;ENV" ${ARGN})
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
  if(T_KILL_DELAY)
    list(APPEND _kill --kill-delay ${T_KILL_DELAY})
  endif()
  add_test(NAME ${T_NAME}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ulfm_run.sh --pass ${T_PASS} --timeout ${_inner}
                   --transport ${T_TRANSPORT} ${_kill} -- -np ${T_NP} $<TARGET_FILE:${T_COMMAND}>
                   ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS ulfm PROCESSORS 2
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;MPIEXEC=${MPIEXEC_EXECUTABLE};${T_ENV}")
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

# In-job recovery of real deaths through the public API (test_ulfm_recover.c): arrays,
# stacks and maps bit-exact against the formulas of a failure-free run, replacements
# registering the dead ranks' structures, fuze_comm after FUZE_RECOVERED.
add_executable(test_ulfm_recover test_ulfm_recover.c)
target_link_libraries(test_ulfm_recover PRIVATE fuze_static)
set(_rc "domain=rank,faults=1,replacements=2")
# A death between two checkpoints (the others in their own MPI_Allreduce or in fuze_checkpoint).
fuze_add_ulfm_test(NAME ulfm_recover_np7 COMMAND test_ulfm_recover ARGS 2@4 "${_rc}" NP 7 PASS 6)
# Rank 0 (the control channel's root) dies.
fuze_add_ulfm_test(NAME ulfm_recover_rank0_np7 COMMAND test_ulfm_recover ARGS 0@3 "${_rc}" NP 7 PASS 6)
# Two deaths at once with faults=2; then a third later on the last replacement.
fuze_add_ulfm_test(NAME ulfm_recover_f2_np9 COMMAND test_ulfm_recover
                   ARGS 1@3+4@3+5@7 "domain=rank,faults=2,replacements=3" NP 9 PASS 6)
# A death at every phase of fuze_checkpoint (inject=kill: the victim SIGKILLs itself there).
foreach(_ph before sent promoted after)
  fuze_add_ulfm_test(NAME ulfm_recover_phase_${_ph}_np7 COMMAND test_ulfm_recover
                     ARGS - "${_rc},inject=kill:rank=3:at=checkpoint:5:phase=${_ph}" 1 NP 7 PASS 6)
endforeach()
# Deaths until no replacement is left: FUZE_ERR_UNRECOVERABLE everywhere, no hang.
fuze_add_ulfm_test(NAME ulfm_recover_exhausted_np6 COMMAND test_ulfm_recover
                   ARGS 1@3+3@6 "domain=rank,faults=1,replacements=1" U NP 6 PASS 4)

# Deaths from outside (kill -9 by ulfm_run.sh at a random time while the ranks compute and
# checkpoint, ULFM_STEP_MS per step): a compute rank; the spare that hosts backups only.
fuze_add_ulfm_test(NAME ulfm_recover_outside_np7 COMMAND test_ulfm_recover
                   ARGS - "${_rc}" 1 NP 7 PASS 6 KILL 3 ENV ULFM_STEP_MS=250)
fuze_add_ulfm_test(NAME ulfm_recover_outside_spare_np8 COMMAND test_ulfm_recover
                   ARGS - "domain=rank,faults=1,spares=1,replacements=2" 1 NP 8 PASS 7 KILL 5
                   KILL_DELAY 1200 ENV ULFM_STEP_MS=250 ULFM_PID_EARLY=1)
# A death inside a stack or map operation, recovery=forward: complete or absent, never half.
add_executable(test_ulfm_forward test_ulfm_forward.c)
target_link_libraries(test_ulfm_forward PRIVATE fuze_static)
# fuze_inject_op under ULFM: rank 2 SIGKILLs itself inside a push that reached 1 of its 2
# backups (faults=2), and inside one that reached none (faults=1); then from outside at a
# random time (mostly while it waits in a checkpoint).
fuze_add_ulfm_test(NAME ulfm_forward_op_half_np8 COMMAND test_ulfm_forward
                   ARGS "domain=rank,faults=2,replacements=1,recovery=forward,shm=off" 2 1 3
                   NP 8 PASS 7)
fuze_add_ulfm_test(NAME ulfm_forward_op_none_np6 COMMAND test_ulfm_forward
                   ARGS "domain=rank,faults=1,replacements=1,recovery=forward" 2 0 3
                   NP 6 PASS 5)
fuze_add_ulfm_test(NAME ulfm_forward_outside_np6 COMMAND test_ulfm_forward
                   ARGS "domain=rank,faults=1,replacements=1,recovery=forward,shm=off"
                   NP 6 PASS 5 KILL 2 KILL_DELAY 200)
