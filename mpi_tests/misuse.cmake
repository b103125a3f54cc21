add_executable(test_misuse test_misuse.c)
target_link_libraries(test_misuse PRIVATE fuze)
fuze_add_mpi_test(NAME misuse_np3 COMMAND test_misuse NP 3 TIMEOUT 60)
