add_executable(test_topo test_topo.c)
target_link_libraries(test_topo PRIVATE fuze_static)
fuze_add_mpi_test(NAME topo_np6 COMMAND test_topo NP 6 TIMEOUT 60)
set_tests_properties(topo_np6 PROPERTIES
  PASS_REGULAR_EXPRESSION "all 6 ranks share one node; using domain=rank.*test_topo: OK")
