# Restart from HDF5 persistence: the whole operator cycle with the example
# apps, driven by restart_cycle.sh (see its header): a failure-free reference
# run; the same with dir= and inject=kill:rank=R:at=checkpoint:E, which must
# abort with the victim's kill line; the victim's failure domain deleted
# (DIR/domain-R: domain=rank) and possibly other files corrupted; the same
# command again, which must restart ("restarted from the persisted epoch")
# and end with exactly the reference's final answer - or, for the negative
# cases, fail with the expected message. Every test works in a fresh
# directory under the build tree. The --config strings use ',' between keys:
# a ';' would split them into separate CMake list items.
if(NOT FUZE_BUILD_APPS OR NOT TARGET heat2d OR NOT TARGET nqueens OR NOT TARGET kvstore)
  return()
endif()
find_program(FUZE_BASH bash)
if(NOT FUZE_BASH)
  message(STATUS "bash not found: the restart tests are not registered")
  return()
endif()

# fuze_restart_test(<name> APP <target> NP <n> CONFIG <cfg> INJECT <kill spec>
#                   [TIMEOUT <s>] [DRIVER <driver args>...] [ARGS <app args>...])
function(fuze_restart_test name)
  cmake_parse_arguments(T "" "APP;NP;CONFIG;INJECT;TIMEOUT" "DRIVER;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 90)
  endif()
  math(EXPR T_TIMEOUT "${T_TIMEOUT} * ${FUZE_TEST_TIMEOUT_SCALE}") # FuzeTesting.cmake
  string(JOIN " " _flags ${FUZE_MPIRUN_FLAGS})
  # Each mpirun of the cycle gets the test's timeout too, so a hung run is
  # reported by the driver rather than only killed by CTest.
  add_test(NAME ${name}
    COMMAND ${FUZE_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/restart_cycle.sh
            --mpiexec ${MPIEXEC_EXECUTABLE} --mpiflags "${_flags}"
            --np ${T_NP} --app $<TARGET_FILE:${T_APP}>
            --work ${CMAKE_CURRENT_BINARY_DIR}/restart/${name}
            --config ${T_CONFIG} --inject ${T_INJECT} --timeout ${T_TIMEOUT}
            ${T_DRIVER} -- ${T_ARGS})
  # The exit status decides; a "FAIL:" line of the driver fails the test too.
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} PROCESSORS 1
    FAIL_REGULAR_EXPRESSION "FAIL: ")
  # The launcher's environment (FuzeTesting.cmake: Open MPI's run-as-root switches).
  if(FUZE_MPIRUN_ENV)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${FUZE_MPIRUN_ENV}")
  endif()
endfunction()

set(_heat2d_args --nx 64 --ny 64 --steps 120 --every 10)

# heat2d, f = 1: rank 3 killed at the start of the 4th checkpoint (epoch 3,
# step 30, is the last persisted one); its domain's files deleted, decoded
# back at the restart.
fuze_restart_test(restart_heat2d_kill APP heat2d NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=3:at=checkpoint:4"
  DRIVER --expect "resuming at step 30 of 120"
         --expect "restart from epoch 3: rebuilding 1 file by decoding"
  ARGS ${_heat2d_args})

# heat2d, f = 2: rank 2 killed at the 5th checkpoint, its domain deleted AND
# the newest epoch file of domain 4 damaged (bytes flipped in the middle):
# two lost files of epoch 4, both decoded.
fuze_restart_test(restart_heat2d_corrupt APP heat2d NP 6
  CONFIG "faults=2,domain=rank" INJECT "kill:rank=2:at=checkpoint:5"
  DRIVER --corrupt 4 --expect "resuming at step 40 of 120"
         --expect "restart from epoch 4: rebuilding 2 files by decoding"
  ARGS ${_heat2d_args})

# heat2d: rank 1 killed while persisting epoch 4 (its file written, not yet
# renamed; the manifest still names epoch 3): the restart must use epoch 3
# (step 30), not the epoch-4 files the other ranks had already renamed.
fuze_restart_test(restart_heat2d_kill_persist APP heat2d NP 5
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=1:at=checkpoint:4:phase=persist"
  DRIVER --expect "resuming at step 30 of 120"
  ARGS ${_heat2d_args})

# persist=async: rank 1 killed inside its writer thread, between the temporary
# file of epoch 4 and the rename (epoch 3 was completed by that checkpoint):
# epoch 3 again. And a kill at the start of the 5th checkpoint, which first
# completed epoch 4: epoch 4.
fuze_restart_test(restart_heat2d_async_kill_persist APP heat2d NP 4
  CONFIG "faults=1,domain=rank,persist=async" INJECT "kill:rank=1:at=checkpoint:4:phase=persist"
  DRIVER --expect "resuming at step 30 of 120"
  ARGS ${_heat2d_args})
fuze_restart_test(restart_heat2d_async_kill APP heat2d NP 4
  CONFIG "faults=1,domain=rank,persist=async" INJECT "kill:rank=2:at=checkpoint:5"
  DRIVER --expect "resuming at step 40 of 120"
  ARGS ${_heat2d_args})

# persist_base=4 (issue 16, incremental epochs): heat2d changes every byte, so
# every persisted epoch is a compaction (a full file, after which only it is
# kept). Rank 1 killed between its temporary file of epoch 4 and the rename,
# while the others may have renamed theirs: the previous epoch 3, which the
# compaction must not have deleted yet.
fuze_restart_test(restart_heat2d_kill_compaction APP heat2d NP 4
  CONFIG "faults=1,domain=rank,persist_base=4" INJECT "kill:rank=1:at=checkpoint:4:phase=persist"
  DRIVER --expect "resuming at step 30 of 120"
  ARGS ${_heat2d_args})

# heat2d: every rank's file of epoch 4 is durable but rank 2 is killed before
# the manifest names it: epoch 3 again.
fuze_restart_test(restart_heat2d_kill_persisted APP heat2d NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=2:at=checkpoint:4:phase=persisted"
  DRIVER --expect "resuming at step 30 of 120"
  ARGS ${_heat2d_args})

# heat2d, f = 1 on 4 ranks (blocks {0,1} and {2,3}): the domains of ranks 0
# and 1 deleted, more than the block tolerates: the rerun must fail with the
# library's "unrecoverable" message.
fuze_restart_test(restart_heat2d_unrecoverable APP heat2d NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=1:at=checkpoint:3"
  DRIVER --delete "0 1"
         --rerun-fails "fuze_init returned FUZE_ERR_UNRECOVERABLE .*unrecoverable"
  ARGS ${_heat2d_args})

# heat2d: reruns with faults=2 instead of 1, and with 5 ranks instead of 4,
# must be refused with a configuration error naming both values (and leave
# the directory usable): the same command then restarts exactly.
fuze_restart_test(restart_heat2d_mismatch APP heat2d NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=2:at=checkpoint:3"
  DRIVER --mismatch 4 "faults=2,domain=rank"
           "FUZE_ERR_CONFIG.*faults=1.*faults=2"
         --mismatch 5 "faults=1,domain=rank"
           "FUZE_ERR_CONFIG.*4 ranks.*5 ranks"
         --expect "resuming at step 20 of 120"
  ARGS ${_heat2d_args})

# nqueens (N = 10, 724 solutions): rank 2 of 5 killed at the 6th checkpoint;
# its work stack and counter come back from the decoded file.
fuze_restart_test(restart_nqueens_kill APP nqueens NP 5
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=2:at=checkpoint:6"
  DRIVER --expect "restart from epoch 5: rebuilding 1 file by decoding"
  ARGS --n 10 --every 100)

# nqueens, f = 2: domain 1 deleted and domain 4's newest file damaged.
fuze_restart_test(restart_nqueens_corrupt APP nqueens NP 6
  CONFIG "faults=2,domain=rank" INJECT "kill:rank=1:at=checkpoint:4"
  DRIVER --corrupt 4 --expect "restart from epoch 3: rebuilding 2 files by decoding"
  ARGS --n 10 --every 100)

# nqueens: the rerun restarts from epoch 1 and then loses rank 3 in-job
# (wipe at the 4th checkpoint, counted across the restart): the restored
# stacks' backups must be able to decode it.
fuze_restart_test(restart_nqueens_then_wipe APP nqueens NP 5
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=1:at=checkpoint:2/wipe:ranks=3:at=checkpoint:4"
  DRIVER --expect "restarted from the persisted epoch 1: "
         --expect "FUZE_RECOVERED by checkpoint call #3 "
  ARGS --n 10 --every 100)

# nqueens: more than f lost domains.
fuze_restart_test(restart_nqueens_unrecoverable APP nqueens NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=0:at=checkpoint:3"
  DRIVER --delete "0 1"
         --rerun-fails "fuze_init returned FUZE_ERR_UNRECOVERABLE .*unrecoverable"
  ARGS --n 8 --every 50)

# kvstore (forward recovery by default): rank 1 of 4 killed at the 3rd
# checkpoint (after round 12); maps and round counter as of round 8.
fuze_restart_test(restart_kvstore_kill APP kvstore NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=1:at=checkpoint:3"
  DRIVER --expect "resuming at round 8 of 24"
         --expect "map right after the restart matches the replay at round 8"
  ARGS --ops 400 --keys 4096)

# kvstore, f = 2: killed after every file of epoch 2 was renamed, before the
# manifest named it; domain 4 deleted and domain 0's newest file damaged.
fuze_restart_test(restart_kvstore_persisted_corrupt APP kvstore NP 6
  CONFIG "faults=2,domain=rank" INJECT "kill:rank=4:at=checkpoint:3:phase=persisted"
  DRIVER --corrupt 0 --expect "resuming at round 8 of 24"
  ARGS --ops 400 --keys 4096)

# kvstore: restart from epoch 1, then rank 3 wiped in-job at the 4th
# checkpoint: forward recovery of a map restored by the restart.
fuze_restart_test(restart_kvstore_then_wipe APP kvstore NP 5
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=1:at=checkpoint:2/wipe:ranks=3:at=checkpoint:4"
  DRIVER --expect "resuming at round 4 of 24"
         --expect "FUZE_RECOVERED by checkpoint call #3 after round 16: nothing rolled back"
         --expect "map right after each FUZE_RECOVERED"
  ARGS --ops 400 --keys 4096)

# kvstore: a rerun with another faults value is refused.
fuze_restart_test(restart_kvstore_mismatch APP kvstore NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=3:at=checkpoint:2"
  DRIVER --mismatch 4 "faults=2,domain=rank" "FUZE_ERR_CONFIG.*faults=1.*faults=2"
         --expect "resuming at round 4 of 24"
  ARGS --ops 400 --keys 4096)

# code=byzantine is a mode over the rs code (f unfused replicas of every
# primary's committed state, compared at every checkpoint): its files carry
# the rs code, its manifest the mode, and a restart rebuilds the replicas
# from the restored primaries at the first checkpoint. Each cycle ends with
# exactly the failure-free byzantine run's final answer; a rerun of the same
# directory with code=rs is refused naming both.
# heat2d (arrays): rank 3 killed at the 4th checkpoint, its domain deleted.
fuze_restart_test(restart_heat2d_byzantine_kill APP heat2d NP 4
  CONFIG "faults=1,domain=rank,code=byzantine" INJECT "kill:rank=3:at=checkpoint:4"
  DRIVER --mismatch 4 "faults=1,domain=rank,code=rs"
           "FUZE_ERR_CONFIG.*code=byzantine.*code=rs"
         --expect "resuming at step 30 of 120"
         --expect "restart from epoch 3: rebuilding 1 file by decoding"
  ARGS ${_heat2d_args})

# nqueens (stacks), f = 2: domain 1 deleted and domain 4's newest file damaged.
fuze_restart_test(restart_nqueens_byzantine_corrupt APP nqueens NP 6
  CONFIG "faults=2,domain=rank,code=byzantine" INJECT "kill:rank=1:at=checkpoint:4"
  DRIVER --corrupt 4 --expect "restart from epoch 3: rebuilding 2 files by decoding"
  ARGS --n 10 --every 100)

# kvstore (maps): rank 1 of 4 killed at the 3rd checkpoint, then rank 3 wiped
# in-job after the restart (forward recovery of a restored map while the
# replicas are live again).
fuze_restart_test(restart_kvstore_byzantine_then_wipe APP kvstore NP 4
  CONFIG "faults=1,domain=rank,code=byzantine" INJECT "kill:rank=1:at=checkpoint:3/wipe:ranks=3:at=checkpoint:5"
  DRIVER --mismatch 4 "faults=1,domain=rank" "FUZE_ERR_CONFIG.*code=byzantine.*code=rs"
         --expect "resuming at round 8 of 24"
         --expect "map right after the restart matches the replay at round 8"
         --expect "FUZE_RECOVERED by checkpoint call #[0-9]+ after round [0-9]+: nothing rolled back"
  ARGS --ops 400 --keys 4096)

# Issue 16: a real SIGKILL in the middle of an *incremental* epoch.
# test_incr_kill (mpi_tests/test_incr_kill.c) rewrites 3 of its 64 chunks per
# step, so with persist_base=8 its persisted epochs are epoch-1.h5, then
# incr-2.h5, incr-3.h5, ... Rank 1 is killed at the 4th checkpoint:
#   phase=persist    between its temporary .incr-4.h5.tmp and the rename
#                    (persist=async: inside the writer thread), its domain
#                    then deleted: epoch 3 (the chain epoch-1 + incr-2 +
#                    incr-3 on the survivors; rank 1's rebuilt by decoding);
#   phase=persisted  every incr-4.h5 renamed, no manifest names it (async:
#                    in the 5th checkpoint, which completes epoch 4), every
#                    file kept: epoch 3 again, the stale incr-4.h5 ignored.
# The driver checks the files the kill left (--after-kill: the victim's
# temporary or renamed increment, survivors' increments of epoch 3, no full
# file of epoch 2, 3 or 4), the rerun's "resuming at step 3", its own check
# that the restored state equals the failure-free model bit for bit, and the
# final checksum against the failure-free run's.
add_executable(test_incr_kill test_incr_kill.c)
target_link_libraries(test_incr_kill PRIVATE fuze)
set(_incr_files
  --after-kill "^\\./domain-0/rank-0/epoch-1\\.h5$" --after-kill "^\\./domain-0/rank-0/incr-3\\.h5$"
  --after-kill "^\\./domain-2/rank-2/incr-3\\.h5$"
  --not-after-kill "/epoch-[234]\\.h5$")
# The rerun persists epochs 4 (full: the first after a restart) to 8, 5..8
# increments; with persist=async epoch 8 is still in flight after step 8.
# ("." matches the line's ";": a ";" would split the CMake list.)
set(_incr_rerun_sync "5 epochs, 4 of them increments")
set(_incr_rerun_async "4 epochs, 3 of them increments")
foreach(_mode sync async)
  set(_rerun --expect "step 8 committed \\(epoch 8\\). this run persisted ${_incr_rerun_${_mode}}")
  fuze_restart_test(restart_incr_kill_persist_${_mode} APP test_incr_kill NP 4 TIMEOUT 60
    CONFIG "faults=1,domain=rank,persist_base=8,persist=${_mode}"
    INJECT "kill:rank=1:at=checkpoint:4:phase=persist"
    DRIVER ${_incr_files} --after-kill "^\\./domain-1/rank-1/\\.incr-4\\.h5\\.tmp$"
           --expect "resuming at step 3 of 8"
           --expect "restart from epoch 3: rebuilding 1 file by decoding"
           --expect "state right after the restart matches the failure-free model at step 3"
           ${_rerun}
    ARGS --steps 8)
  fuze_restart_test(restart_incr_kill_persisted_${_mode} APP test_incr_kill NP 4 TIMEOUT 60
    CONFIG "faults=1,domain=rank,persist_base=8,persist=${_mode}"
    INJECT "kill:rank=1:at=checkpoint:4:phase=persisted"
    DRIVER ${_incr_files} --after-kill "^\\./domain-1/rank-1/incr-4\\.h5$"
           --after-kill "^\\./domain-3/rank-3/incr-4\\.h5$" --no-delete
           --expect "resuming at step 3 of 8"
           --expect "state right after the restart matches the failure-free model at step 3"
           ${_rerun}
    ARGS --steps 8)
endforeach()
