# Stack/map windows: shared-memory windows with CPU atomic XOR (shm=auto on
# one node) against MPI_Accumulate (shm=off), and the fallback when no
# shared-memory window is possible (as across nodes over TCP; FUZE_MPI_TCP_ENV,
# FuzeTesting.cmake).
add_executable(test_transport test_transport.c)
target_link_libraries(test_transport PRIVATE fuze_static)
fuze_add_mpi_test(NAME transport_np4_shm COMMAND test_transport ARGS shm NP 4 TIMEOUT 60)
# Open MPI's osc/pt2pt keeps the ranks on one node but cannot allocate shared
# windows ("noshm"); MPICH's NOLOCAL puts every rank on a node of its own
# instead, so the expectations are those of ranks that span nodes ("nodes").
if(FUZE_MPI_TCP_SHARED_FAILS)
  set(_tcp_mode noshm)
else()
  set(_tcp_mode nodes)
endif()
fuze_add_mpi_test(NAME transport_np4_${FUZE_MPI_TCP_NAME} COMMAND test_transport ARGS ${_tcp_mode}
                  NP 4 TIMEOUT 60 TCP)
# Ranks taken to span nodes (test hook): shm=auto uses accumulates, shm=on is
# FUZE_ERR_CONFIG naming the reason.
fuze_add_mpi_test(NAME transport_np4_split_nodes COMMAND test_transport ARGS split NP 4 TIMEOUT 60
                  ENV FUZE_DEBUG_SPLIT_NODES=1)
# The stack/map suite once more on the MPI_Accumulate path.
fuze_add_mpi_test(NAME fused_np5_shm_off COMMAND test_fused NP 5 TIMEOUT 120 ENV FUZE_SHM=off)
fuze_add_mpi_test(NAME fused_np4_${FUZE_MPI_TCP_NAME} COMMAND test_fused ARGS 7 2 NP 4 TIMEOUT 120 TCP)
