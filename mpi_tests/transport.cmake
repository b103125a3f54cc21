# Stack/map windows: shared-memory windows with CPU atomic XOR (shm=auto on
# one node) against MPI_Accumulate (shm=off), and the fallback when the osc
# component has no shared-memory windows (osc/pt2pt, as across nodes over TCP).
add_executable(test_transport test_transport.c)
target_link_libraries(test_transport PRIVATE fuze_static)
fuze_add_mpi_test(NAME transport_np4_shm COMMAND test_transport ARGS shm NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME transport_np4_tcp_pt2pt COMMAND test_transport ARGS noshm NP 4 TIMEOUT 60
                  ENV OMPI_MCA_osc=pt2pt OMPI_MCA_btl=tcp,self)
# Ranks taken to span nodes (test hook): shm=auto uses accumulates, shm=on is
# FUZE_ERR_CONFIG naming the reason.
fuze_add_mpi_test(NAME transport_np4_split_nodes COMMAND test_transport ARGS split NP 4 TIMEOUT 60
                  ENV FUZE_DEBUG_SPLIT_NODES=1)
# The stack/map suite once more on the MPI_Accumulate path.
fuze_add_mpi_test(NAME fused_np5_shm_off COMMAND test_fused NP 5 TIMEOUT 120 ENV FUZE_SHM=off)
fuze_add_mpi_test(NAME fused_np4_tcp_pt2pt COMMAND test_fused ARGS 7 2 NP 4 TIMEOUT 120
                  ENV OMPI_MCA_osc=pt2pt OMPI_MCA_btl=tcp,self)
