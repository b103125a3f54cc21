# Scrubbing: fuze_verify, verify_every and inject=corrupt (test_verify.c
# loops over every scenario inside one job). ARGS: faults code spares seed.
add_executable(test_verify test_verify.c)
target_link_libraries(test_verify PRIVATE fuze_static)
fuze_add_mpi_test(NAME verify_np4_f1_xor COMMAND test_verify ARGS 1 xor 0 11 NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np4_f2_rs COMMAND test_verify ARGS 2 rs 0 12 NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np5_f2_rs_spare COMMAND test_verify ARGS 2 rs 1 13 NP 5 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np5_f2_replicate COMMAND test_verify ARGS 2 replicate 0 14 NP 5 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np6_f3_rs COMMAND test_verify ARGS 3 rs 0 15 NP 6 TIMEOUT 60)
fuze_add_mpi_test(NAME verify_np6_f1_rs_spare COMMAND test_verify ARGS 1 rs 1 16 NP 6 TIMEOUT 60)
# End to end with the demo: 4 bits of rank 3's committed field flip after checkpoint 5, the
# scrub of checkpoint 5 repairs them, then ranks 0 and 2 (rank 3's block) are wiped at
# checkpoint 7: the final field must still match the failure-free run bit for bit.
# (',' separates config keys here: CMake would split ';'.)
if(TARGET heat2d)
  fuze_add_mpi_test(NAME verify_heat2d_np8 COMMAND heat2d
    ARGS --config "faults=2,domain=rank,verify_every=5,inject=corrupt:rank=3:struct=heat2d.field:at=checkpoint:5:bytes=4/wipe:ranks=0+2:at=checkpoint:7"
    NP 8 TIMEOUT 60)
  set_tests_properties(verify_heat2d_np8 PROPERTIES
    PASS_REGULAR_EXPRESSION "verify #1 \\(epoch 5\\)[^\n]*4 repaired, 0 not.*checksum matches failure-free run")
endif()
