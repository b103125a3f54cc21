add_executable(test_fused test_fused.c)
target_link_libraries(test_fused PRIVATE fuze_static)
foreach(np 3 4 5 8)
  fuze_add_mpi_test(NAME fused_np${np} COMMAND test_fused NP ${np} TIMEOUT 120)
endforeach()
# Theorem 4: updates reach a block's backups in different orders.
fuze_add_mpi_test(NAME fused_np5_reordered COMMAND test_fused ARGS 4242 2 NP 5 TIMEOUT 120
                  ENV FUZE_DEBUG_REORDER=1)
# The naive design (window-wide MPI_LOCK_EXCLUSIVE per operation) must be as
# correct as the fine-grained path; fuze-bench compares their speed.
# With MPICH too: on one node the exclusive lock is a lock word in the host's segment of
# fuze's own shared memory (transport.c), not MPI_Win_lock, which MPICH serves from the
# target's progress engine (with it, 4 ranks on 2 cores did not get past the first section in
# 90 s; now 22 s on a loaded machine).
fuze_add_mpi_test(NAME fused_np4_exclusive_lock COMMAND test_fused ARGS 99 2 NP 4 TIMEOUT 120
                  ENV FUZE_LOCK=exclusive)
# Emulated nodes of 2 ranks: a failed node loses both ranks' structures.
fuze_add_mpi_test(NAME fused_np8_nodes_of_2 COMMAND test_fused ARGS 2024 3 2 NP 8 TIMEOUT 120)
# The primary's hash index of a map: its count of used entries through a long
# mix of inserts and removes, and a rollback over 1000 removes (fobj.c).
add_executable(test_map_index test_map_index.c)
target_link_libraries(test_map_index PRIVATE fuze_static)
fuze_add_mpi_test(NAME map_index_np3 COMMAND test_map_index NP 3 TIMEOUT 60)
