# ULFM (label ulfm): only with an MPI that has it (Open MPI 5's ftmpi extension; the Debian 13
# root of `./quickstart.sh ulfm`). Every test runs under `mpirun --with-ft ulfm` through
# ulfm_run.sh, which decides by what the survivors print and guards against the known
# MPI_Finalize hang after a failure.
if(NOT FUZE_HAVE_ULFM)
  return()
endif()

# fuze_add_ulfm_test(NAME n COMMAND target [ARGS ...] NP np PASS survivors
#                    [TRANSPORT sm|tcp] [KILL ranks [KILL_DELAY ms]] [ENV VAR=value ...]
#                    [TIMEOUT s] [LABEL l])
# LABEL: ulfm (default, the lane runs them).
# KILL: ulfm_run.sh kill -9s those ranks (comma-separated) from outside at a random time
# (KILL_DELAY: that many ms after they all printed their pid).
function(fuze_add_ulfm_test)
  cmake_parse_arguments(T "" "NAME;NP;PASS;TRANSPORT;KILL;KILL_DELAY;TIMEOUT;LABEL" "COMMAND;ARGS;ENV" ${ARGN})
  if(NOT T_LABEL)
    set(T_LABEL ulfm)
  endif()
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
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS ${T_LABEL} PROCESSORS 2
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
# Over btl tcp a survivor that writes to a dead rank's socket gets SIGPIPE, whose default
# action (Open MPI 5.0.7 starts the ranks with it) kills it: a second, real death that
# looked like MPIX_Comm_shrink splitting the survivors (it left out ranks that had died
# with exit status 141; 3 of 20 runs of this test with SIGPIPE at its default, on
# 2026-12-07). fuze_init ignores SIGPIPE under ULFM (comm/ft.h, fuze__ft_ignore_sigpipe);
# test_ulfm_basic does the same itself.
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
# A death while holding a host's stripe lock (arrays in fuze's own shared memory: the victim
# (world rank 3) dies inside its 8th locked XOR, FUZE_DEBUG_LOCK_KILL): the members waiting for that lock
# see that its holder is dead, take it over, and the repair follows as for any death.
fuze_add_ulfm_test(NAME ulfm_recover_lock_holder_np7 COMMAND test_ulfm_recover
                   ARGS - "${_rc}" 1 NP 7 PASS 6 ENV FUZE_DEBUG_LOCK_KILL=3@8)
# Deaths until no replacement is left: FUZE_ERR_UNRECOVERABLE everywhere, no hang.
fuze_add_ulfm_test(NAME ulfm_recover_exhausted_np6 COMMAND test_ulfm_recover
                   ARGS 1@3+3@6 "domain=rank,faults=1,replacements=1,replace=idle" U NP 6 PASS 4)

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
# A death during the repair of another (FUZE_DEBUG_REPAIR_KILL=R@phase: the process in rank
# R's place dies in that phase of the first repair): the next round of the same repair
# replaces it too and every rank ends bit-exact, with one recovery. Rank 4 (a survivor,
# block 1) while the windows are made again, and in the layout phase; the replacement
# brought in for rank 2 during its own recovery (decode); ranks 2 and 4 lie in different
# blocks (faults=1).
set(_rc2 "domain=rank,faults=1,replacements=2,replace=idle")
fuze_add_ulfm_test(NAME ulfm_repair_death_windows_np7 COMMAND test_ulfm_recover
                   ARGS 2@4 "${_rc2}" 1 NP 7 PASS 5 ENV FUZE_DEBUG_REPAIR_KILL=4@windows)
fuze_add_ulfm_test(NAME ulfm_repair_death_layout_np7 COMMAND test_ulfm_recover
                   ARGS 1@3 "${_rc2}" 1 NP 7 PASS 5 ENV FUZE_DEBUG_REPAIR_KILL=4@layout)
# Rank 4 dies after the first structure's new window was made (window2): the others abandon
# the windows of that round, and their mappings of its segments (the replacement's, rank
# 4's) go with them; test_ulfm_recover checks the count of mappings at the end.
fuze_add_ulfm_test(NAME ulfm_repair_death_window2_np7 COMMAND test_ulfm_recover
                   ARGS 2@4 "${_rc2}" 1 NP 7 PASS 5 ENV FUZE_DEBUG_REPAIR_KILL=4@window2)
fuze_add_ulfm_test(NAME ulfm_repair_replacement_dies_np7 COMMAND test_ulfm_recover
                   ARGS 2@4 "${_rc2}" 1 NP 7 PASS 5 ENV FUZE_DEBUG_REPAIR_KILL=2@recover)
# The same with no replacement left for the second death (replacements=1, replace=idle):
# FUZE_ERR_UNRECOVERABLE on every survivor and on the replacement, no hang.
fuze_add_ulfm_test(NAME ulfm_recover_death_in_repair_np6 COMMAND test_ulfm_recover
                   ARGS 2@4 "domain=rank,faults=1,replacements=1,replace=idle" UR NP 6 PASS 4
                   ENV FUZE_DEBUG_REPAIR_KILL=4)
# code=byzantine and persistence (dir=) across a real death: the replicas are made again on
# the repaired communicator (fuze_verify at the end finds every replica and backup in
# agreement), a replacement takes the dead rank's directory, an async write in flight is
# dropped; then a run without deaths restarts from those files at the last step.
fuze_add_ulfm_test(NAME ulfm_recover_byzantine_np6 COMMAND test_ulfm_recover
                   ARGS 2@4 "domain=rank,faults=1,replacements=1,code=byzantine" 1 NP 6 PASS 5)
foreach(_p sync async)
  set(_pd "${CMAKE_CURRENT_BINARY_DIR}/ulfm_persist_${_p}")
  set(_pc "domain=rank,faults=1,replacements=1,dir=${_pd},persist=${_p}")
  fuze_add_ulfm_test(NAME ulfm_recover_persist_${_p}_np6 COMMAND test_ulfm_recover
                     ARGS 2@4 "${_pc},restart=never" 1 NP 6 PASS 5)
  fuze_add_ulfm_test(NAME ulfm_restart_after_death_${_p}_np6 COMMAND test_ulfm_recover
                     ARGS - "${_pc}" R NP 6 PASS 6)
  set_tests_properties(ulfm_recover_persist_${_p}_np6 PROPERTIES FIXTURES_SETUP ulfm_persist_${_p})
  set_tests_properties(ulfm_restart_after_death_${_p}_np6 PROPERTIES FIXTURES_REQUIRED ulfm_persist_${_p})
endforeach()
# A death noticed by stack and map operations (no collective call in between: one-sided
# calls report nothing, the operation looks) or by fuze_flush, forward and rollback,
# sync=op and batch, shared-memory windows and osc/rdma (shm=off).
add_executable(test_ulfm_ops test_ulfm_ops.c)
target_link_libraries(test_ulfm_ops PRIVATE fuze_static)
set(_rco "domain=rank,faults=1,replacements=1")
fuze_add_ulfm_test(NAME ulfm_ops_forward_np6 COMMAND test_ulfm_ops
                   ARGS "${_rco},recovery=forward" 2 op NP 6 PASS 5)
fuze_add_ulfm_test(NAME ulfm_ops_rollback_rdma_np6 COMMAND test_ulfm_ops
                   ARGS "${_rco},recovery=rollback,shm=off" 0 op NP 6 PASS 5)
fuze_add_ulfm_test(NAME ulfm_ops_batch_np6 COMMAND test_ulfm_ops
                   ARGS "${_rco},recovery=forward,sync=batch" 3 op NP 6 PASS 5)
fuze_add_ulfm_test(NAME ulfm_flush_batch_np6 COMMAND test_ulfm_ops
                   ARGS "${_rco},recovery=forward,sync=batch" 1 flush NP 6 PASS 5)
# More than faults domains of one block at once (ranks 1 and 2 of block 0, faults=1):
# FUZE_ERR_UNRECOVERABLE naming the block, the survivors' state untouched, no hang.
fuze_add_ulfm_test(NAME ulfm_recover_beyond_f_np7 COMMAND test_ulfm_recover
                   ARGS 1@3+2@3 "domain=rank,faults=1,replacements=2" UB NP 7 PASS 5)
# The same with a third replacement left idle: it returns from fuze_init with the error.
fuze_add_ulfm_test(NAME ulfm_recover_beyond_f_idle_np8 COMMAND test_ulfm_recover
                   ARGS 1@3+2@3 "domain=rank,faults=1,replacements=3" UB NP 8 PASS 6)
# No idle replacement left (replace=auto, the default) or none at all (replace=spawn,
# replacements=0): MPI_Comm_spawn starts one (needs btl tcp); it prints as world rank 1000+.
# spawn_auto failed 7 runs in 40 before fuze_init ignored SIGPIPE (FUZE_ERR_UNRECOVERABLE,
# "block 0 lost 3 members" and the like): survivors writing to the dead rank over tcp died
# of SIGPIPE (see ulfm_outside_two_np6_tcp).
fuze_add_ulfm_test(NAME ulfm_recover_spawn_auto_np6 COMMAND test_ulfm_recover
                   ARGS 2@4+3@7 "domain=rank,faults=1,replacements=1" NP 6 PASS 5 TRANSPORT tcp)
fuze_add_ulfm_test(NAME ulfm_recover_spawn_np5 COMMAND test_ulfm_recover
                   ARGS 1@3 "domain=rank,faults=1,replace=spawn" NP 5 PASS 5 TRANSPORT tcp)

# The example apps across a real death (issue 14), checked against their failure-free
# answers: kvstore (maps, recovery=forward, or rollback) against its deterministic replay
# (every get/remove result, the maps after each recovery, every key at the end), nqueens
# (a stack, rollback) against the known count. A replacement rank takes the dead rank's
# place. ULFM_LINES=1: every compute rank prints "ULFM-PASS rank W" only when the app's
# verdict passed (else ULFM-FAIL), so PASS is the number of compute ranks;
# --expect-recoveries makes a death that never happened fail. ULFM_STEP_MS paces the rounds
# so that a kill from outside lands in the protected phase, mostly while the others are in
# the app's own collectives (they see MPIX_ERR_PROC_FAILED and call fuze_recover).
if(FUZE_BUILD_APPS AND TARGET kvstore AND TARGET nqueens)
  set(_app_rc "faults=1,domain=rank,replacements=1")
  # kvstore, 5 compute ranks + 1 replacement: rank 2 SIGKILLs itself in the 3rd checkpoint
  # (forward: the survivors keep their maps, rank 2's comes back as of its last operation).
  fuze_add_ulfm_test(NAME ulfm_kvstore_kill_np6 COMMAND kvstore
                     ARGS --config "${_app_rc},inject=kill:rank=2:at=checkpoint:3"
                          --expect-recoveries 1
                     NP 6 PASS 5 ENV ULFM_LINES=1)
  # recovery=rollback: rank 0 (the control channel's root) dies in the 4th checkpoint, every
  # map returns to the last committed epoch and the rounds since are redone.
  fuze_add_ulfm_test(NAME ulfm_kvstore_rollback_kill_np6 COMMAND kvstore
                     ARGS --every 3 --config "${_app_rc},recovery=rollback,inject=kill:rank=0:at=checkpoint:4"
                          --expect-recoveries 1
                     NP 6 PASS 5 ENV ULFM_LINES=1)
  # kill -9 of rank 3 from outside at a random time (24 rounds of 100 ms), mostly while the
  # owners wait to return a round's results (already applied): the round is redone.
  fuze_add_ulfm_test(NAME ulfm_kvstore_outside_np6 COMMAND kvstore
                     ARGS --config "${_app_rc}" --expect-recoveries 1
                     NP 6 PASS 5 KILL 3 ENV ULFM_LINES=1 ULFM_STEP_MS=100)
  # Two deaths one after the other, each taken by a replacement (2 of them): rank 1 in the 2nd
  # checkpoint, rank 3 in the 4th (the first replacement is a survivor by then).
  fuze_add_ulfm_test(NAME ulfm_kvstore_twice_np7 COMMAND kvstore
                     ARGS --config "faults=1,domain=rank,replacements=2,inject=kill:rank=1:at=checkpoint:2/kill:rank=3:at=checkpoint:4"
                          --expect-recoveries 2
                     NP 7 PASS 5 ENV ULFM_LINES=1)
  # The same over TCP (the windows on osc/rdma over btl/tcp).
  fuze_add_ulfm_test(NAME ulfm_kvstore_outside_np6_tcp COMMAND kvstore
                     ARGS --config "${_app_rc}" --expect-recoveries 1
                     NP 6 PASS 5 KILL 3 TRANSPORT tcp ENV ULFM_LINES=1 ULFM_STEP_MS=100)
  # nqueens, 4 compute ranks + 1 replacement: rank 1 dies in the 4th checkpoint.
  fuze_add_ulfm_test(NAME ulfm_nqueens_kill_np5 COMMAND nqueens
                     ARGS --n 10 --config "${_app_rc},inject=kill:rank=1:at=checkpoint:4"
                          --expect-recoveries 1
                     NP 5 PASS 4 ENV ULFM_LINES=1)
  # kill -9 of rank 2 from outside at a random time (45 rounds of 50 ms).
  fuze_add_ulfm_test(NAME ulfm_nqueens_outside_np5 COMMAND nqueens
                     ARGS --n 10 --config "${_app_rc}" --expect-recoveries 1
                     NP 5 PASS 4 KILL 2 ENV ULFM_LINES=1 ULFM_STEP_MS=50)
  # faults=2: ranks 1 and 2 die in the same (5th) checkpoint, 6 compute ranks + 2 replacements,
  # N = 11 (2680 solutions).
  fuze_add_ulfm_test(NAME ulfm_nqueens_f2_np8 COMMAND nqueens
                     ARGS --n 11 --every 100 --expect-recoveries 1
                          --config "faults=2,domain=rank,replacements=2,inject=kill:rank=1:at=checkpoint:5/kill:rank=2:at=checkpoint:5"
                     NP 8 PASS 6 ENV ULFM_LINES=1)
endif()
