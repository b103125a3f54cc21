# code=byzantine (Theorem 7, Fig. 6) for arrays: every placement of <= f
# faulty copies/backups in a block corrected bit-exactly, wipe + recovery,
# f + 1 liars reported (test_byzantine.c). ARGS: faults seed; domain=rank.
add_executable(test_byzantine test_byzantine.c)
target_link_libraries(test_byzantine PRIVATE fuze fuze_internal)
target_sources(test_byzantine PRIVATE ${PROJECT_SOURCE_DIR}/src/byz.c)
fuze_add_mpi_test(NAME byzantine_np4_f1 COMMAND test_byzantine ARGS 1 21 NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_np5_f2 COMMAND test_byzantine ARGS 2 22 NP 5 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_np6_f2 COMMAND test_byzantine ARGS 2 23 NP 6 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_np6_f3 COMMAND test_byzantine ARGS 3 24 NP 6 TIMEOUT 60)
