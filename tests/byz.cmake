# Unit tests of src/core/byz.c (Byzantine mode: replica placement, Fig. 6 of the
# seed paper on one block, exhaustive over placements of up to f faults).
add_executable(test_byz test_byz.c)
target_compile_options(test_byz PRIVATE ${FUZE_WARNINGS})
target_link_libraries(test_byz PRIVATE fuze_core)
fuze_add_unit_test(NAME byz_unit COMMAND test_byz TIMEOUT 120)
