# Persistence and restart inside one job: every set of <= f deleted domain
# directories, corrupt/truncated files, fallback to the previous epoch, more
# than f lost, bad manifest, other geometry, a wipe in the middle of persisting.
add_executable(test_persist test_persist.c)
target_link_libraries(test_persist PRIVATE fuze)
fuze_add_mpi_test(NAME persist_np4_f1 COMMAND test_persist ARGS 1 0 NP 4 TIMEOUT 120)
fuze_add_mpi_test(NAME persist_np5_f2 COMMAND test_persist ARGS 2 0 NP 5 TIMEOUT 120)
fuze_add_mpi_test(NAME persist_np5_f1_spare COMMAND test_persist ARGS 1 1 NP 5 TIMEOUT 120)
# The same with code=byzantine (a mode over rs), and the mode kept across restarts.
fuze_add_mpi_test(NAME persist_np4_f1_byzantine COMMAND test_persist ARGS 1 0 byzantine NP 4 TIMEOUT 120)
fuze_add_mpi_test(NAME persist_np5_f2_byzantine COMMAND test_persist ARGS 2 0 byzantine NP 5 TIMEOUT 150)
# The same with persist=async: every scenario, with the writer thread.
fuze_add_mpi_test(NAME persist_np4_f1_async COMMAND test_persist ARGS 1 0 async NP 4 TIMEOUT 120)
fuze_add_mpi_test(NAME persist_np5_f1_spare_async COMMAND test_persist ARGS 1 1 async NP 5 TIMEOUT 120)
# A full disk while persisting (one rank's writes fail with EFBIG): FUZE_ERR_IO
# everywhere, no partial file, the next checkpoint persists, no crash at exit.
add_executable(test_diskfull test_diskfull.c)
target_link_libraries(test_diskfull PRIVATE fuze)
fuze_add_mpi_test(NAME persist_disk_full COMMAND test_diskfull
  ARGS ${CMAKE_CURRENT_BINARY_DIR}/diskfull-work NP 3 TIMEOUT 60)
fuze_add_mpi_test(NAME persist_disk_full_async COMMAND test_diskfull
  ARGS ${CMAKE_CURRENT_BINARY_DIR}/diskfull-async-work async NP 3 TIMEOUT 60)
# Restart after losing every set of <= f domains (and none): bit-exact, every
# rebuilt file byte-identical to the lost one, and the registrations after the
# restart load the parity from the files (nothing sent, fuze_verify clean).
add_executable(test_restart_load test_restart_load.c)
target_link_libraries(test_restart_load PRIVATE fuze)
fuze_add_mpi_test(NAME restart_load_np4_f1 COMMAND test_restart_load ARGS 1 0 NP 4 TIMEOUT 90)
fuze_add_mpi_test(NAME restart_load_np5_f2 COMMAND test_restart_load ARGS 2 0 NP 5 TIMEOUT 120)
fuze_add_mpi_test(NAME restart_load_np5_f1_spare COMMAND test_restart_load ARGS 1 1 NP 5 TIMEOUT 90)
# Incremental epochs (persist_base=4): increments of the changed chunks, the
# compaction, write volume at ~1% changed, restart after every set of <= f
# lost domains, damaged/missing increments, the directory as a kill leaves it
# at every point of an incremental write and of a compaction, wipes there.
add_executable(test_incremental test_incremental.c)
target_link_libraries(test_incremental PRIVATE fuze)
fuze_add_mpi_test(NAME incremental_np4_f1 COMMAND test_incremental ARGS 1 0 NP 4 TIMEOUT 120)
# f = 2: the restarts that depend on f (every loss set, damaged increments)
fuze_add_mpi_test(NAME incremental_np5_f2 COMMAND test_incremental ARGS 2 0 losses NP 5 TIMEOUT 150)
fuze_add_mpi_test(NAME incremental_np5_f1_spare COMMAND test_incremental ARGS 1 1 NP 5 TIMEOUT 120)
