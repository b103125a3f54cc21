add_executable(test_misuse test_misuse.c)
target_link_libraries(test_misuse PRIVATE fuze)
fuze_add_mpi_test(NAME misuse_np3 COMMAND test_misuse NP 3 TIMEOUT 60)

# Configurations that differ across ranks: FUZE_ERR_CONFIG everywhere, no hang.
add_executable(test_config_ranks test_config_ranks.c)
target_link_libraries(test_config_ranks PRIVATE fuze)
fuze_add_mpi_test(NAME config_ranks_np4 COMMAND test_config_ranks NP 4 TIMEOUT 60)

# Allocation failures in fuze_protect/stack/map create leave no registration.
add_executable(test_nomem test_nomem.c)
target_link_libraries(test_nomem PRIVATE fuze)
fuze_add_mpi_test(NAME nomem_np3 COMMAND test_nomem NP 3 TIMEOUT 60)

# Injections that never fire: refused at fuze_init, counted, reported at finalize.
add_executable(test_unfired test_unfired.c)
target_link_libraries(test_unfired PRIVATE fuze)
fuze_add_mpi_test(NAME unfired_np3 COMMAND test_unfired NP 3 TIMEOUT 60)
