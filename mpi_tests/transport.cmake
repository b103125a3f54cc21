# Stack/map windows: shared-memory windows with CPU atomic XOR (shm=auto on
# one node) against MPI_Accumulate (shm=off), and the fallback when no
# shared-memory window is possible (as across nodes over TCP; FUZE_MPI_TCP_ENV,
# FuzeTesting.cmake).
add_executable(test_transport test_transport.c)
target_link_libraries(test_transport PRIVATE fuze_static)
fuze_add_mpi_test(NAME transport_np4_shm COMMAND test_transport ARGS shm NP 4 TIMEOUT 60)
# The same without fuze's own segments (test hook): the MPI library's shared window for
# stacks and maps, MPI_Win_allocate for arrays (MPICH: its shared window).
fuze_add_mpi_test(NAME transport_np4_mpi_shared COMMAND test_transport ARGS shm NP 4 TIMEOUT 60
                  ENV FUZE_DEBUG_OWN_SHM=0)
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
# The stack/map suite once more on the MPI_Accumulate path. Not with MPICH (not solved yet,
# issue 13): there every accumulate and flush into an MPI_Win_allocate window is an active
# message the host applies from its progress engine, and at 5 ranks on 2 cores the test
# timed out (480 s) with fuze's polled waits; the same path runs with MPICH in
# fused_np4_nolocal (4 ranks, every rank a node of its own: 182 s on the loaded machine).
if(FUZE_MPI_FLAVOR STREQUAL "mpich")
  message(STATUS "fused_np5_shm_off: not registered with MPICH (accumulates wait for the host's "
                 "progress engine: over 480 s at 5 ranks on 2 cores; fused_np4_nolocal covers the path)")
else()
  fuze_add_mpi_test(NAME fused_np5_shm_off COMMAND test_fused NP 5 TIMEOUT 120 ENV FUZE_SHM=off)
endif()
fuze_add_mpi_test(NAME fused_np4_${FUZE_MPI_TCP_NAME} COMMAND test_fused ARGS 7 2 NP 4 TIMEOUT 120 TCP)
