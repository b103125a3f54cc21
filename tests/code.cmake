# Unit tests of src/core/code.c (Reed-Solomon / XOR / replication on ISA-L).
# `test_code --bench` prints the delta-encode kernel comparison quoted in code.c.
add_executable(test_code test_code.c)
target_compile_options(test_code PRIVATE ${FUZE_WARNINGS})
target_link_libraries(test_code PRIVATE fuze_core)
fuze_add_unit_test(NAME code_unit COMMAND test_code TIMEOUT 120)
