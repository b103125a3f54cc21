add_executable(test_misuse test_misuse.c)
target_link_libraries(test_misuse PRIVATE fuze)
fuze_add_mpi_test(NAME misuse_np3 COMMAND test_misuse NP 3 TIMEOUT 60)

# Configurations that differ across ranks: FUZE_ERR_CONFIG everywhere, no hang.
add_executable(test_config_ranks test_config_ranks.c)
target_link_libraries(test_config_ranks PRIVATE fuze)
fuze_add_mpi_test(NAME config_ranks_np4 COMMAND test_config_ranks NP 4 TIMEOUT 60)
