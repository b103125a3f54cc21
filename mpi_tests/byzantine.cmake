# code=byzantine (Theorem 7, Fig. 6) for arrays: every placement of <= f
# faulty copies/backups in a block corrected bit-exactly, wipe + recovery,
# f + 1 liars reported (test_byzantine.c). ARGS: faults seed; domain=rank.
add_executable(test_byzantine test_byzantine.c)
target_link_libraries(test_byzantine PRIVATE fuze_static)
fuze_add_mpi_test(NAME byzantine_np4_f1 COMMAND test_byzantine ARGS 1 21 NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_np5_f2 COMMAND test_byzantine ARGS 2 22 NP 5 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_np6_f2 COMMAND test_byzantine ARGS 2 23 NP 6 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_np6_f3 COMMAND test_byzantine ARGS 3 24 NP 6 TIMEOUT 60)

# code=byzantine for fused stacks and maps (test_byzantine_fused.c): every
# placement of <= f faulty copies/backups (values and index/aux parts) in a
# block corrected bit-exactly against a model, wipe + recovery, f + 1 liars
# reported twice; `inject`: the config's target=replica and target=primary.
# ARGS: faults seed stack|map [inject]; domain=rank.
add_executable(test_byzantine_fused test_byzantine_fused.c)
target_link_libraries(test_byzantine_fused PRIVATE fuze_static)
fuze_add_mpi_test(NAME byzantine_fused_stack_np4_f1 COMMAND test_byzantine_fused ARGS 1 31 stack NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_fused_map_np4_f1 COMMAND test_byzantine_fused ARGS 1 32 map NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_fused_map_np5_f2 COMMAND test_byzantine_fused ARGS 2 33 map NP 5 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_fused_stack_np6_f2 COMMAND test_byzantine_fused ARGS 2 34 stack NP 6 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_fused_map_np6_f3 COMMAND test_byzantine_fused ARGS 3 35 map NP 6 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_fused_map_inject COMMAND test_byzantine_fused ARGS 1 36 map inject NP 4 TIMEOUT 60)
fuze_add_mpi_test(NAME byzantine_fused_stack_inject COMMAND test_byzantine_fused ARGS 2 37 stack inject NP 5 TIMEOUT 60)
