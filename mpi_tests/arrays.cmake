add_executable(test_arrays test_arrays.c)
target_link_libraries(test_arrays PRIVATE fuze_static)
target_include_directories(test_arrays PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
foreach(np 3 4 5 8)
  fuze_add_mpi_test(NAME arrays_np${np} COMMAND test_arrays NP ${np} TIMEOUT 120)
endforeach()
# The cross-node transport (no RDMA) on one node (FUZE_MPI_TCP_ENV, FuzeTesting.cmake):
# Open MPI's osc/pt2pt over TCP (arrays_np4_tcp_pt2pt), or MPICH with every rank on a node
# of its own, RMA through the netmod (arrays_np4_nolocal).
fuze_add_mpi_test(NAME arrays_np4_${FUZE_MPI_TCP_NAME} COMMAND test_arrays NP 4 TIMEOUT 120 TCP)
# Emulated nodes of 2 ranks: every set of <= f failed nodes, each losing both ranks.
fuze_add_mpi_test(NAME arrays_np8_nodes_of_2 COMMAND test_arrays ARGS 4711 2 NP 8 TIMEOUT 120)
# Blocking calls polled with back-off (FUZE_WAIT=poll, comm/wait.h: what MPICH gets on an
# oversubscribed node), forced with any MPI: the reductions of 3+ but not all members go
# point to point to the root instead of through a group communicator.
fuze_add_mpi_test(NAME arrays_np4_poll COMMAND test_arrays NP 4 TIMEOUT 120 ENV FUZE_WAIT=poll)
# Arrays in an MPI shared-memory window with origin-side atomic XOR and OR (what
# MPICH gets on one node when fuze's own segments cannot be made, comm/transport.c:
# fuze__win_create_array), forced with any MPI by the test hooks (without
# FUZE_DEBUG_OWN_SHM=0 the arrays would be in fuze's own segments, as everywhere else).
fuze_add_mpi_test(NAME arrays_np5_shm_arrays COMMAND test_arrays NP 5 TIMEOUT 120
                  ENV FUZE_DEBUG_SHM_ARRAYS=1 FUZE_DEBUG_OWN_SHM=0)
