# Scrubbing: fuze_verify, verify_every and inject=corrupt (test_verify.c
# loops over every scenario inside one job). ARGS: faults code spares seed.
add_executable(test_verify test_verify.c)
target_link_libraries(test_verify PRIVATE fuze fuze_internal)
fuze_add_mpi_test(NAME verify_np4_f1_xor COMMAND test_verify ARGS 1 xor 0 11 NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np4_f2_rs COMMAND test_verify ARGS 2 rs 0 12 NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np5_f2_rs_spare COMMAND test_verify ARGS 2 rs 1 13 NP 5 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np5_f2_replicate COMMAND test_verify ARGS 2 replicate 0 14 NP 5 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np6_f3_rs COMMAND test_verify ARGS 3 rs 0 15 NP 6 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np6_f1_rs_spare COMMAND test_verify ARGS 1 rs 1 16 NP 6 TIMEOUT 60)
