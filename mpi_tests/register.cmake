# Registrations: fuze_unprotect and the lifetime contract (include/fuze.h).
add_executable(test_register test_register.c)
target_link_libraries(test_register PRIVATE fuze)
target_compile_options(test_register PRIVATE ${FUZE_WARNINGS})
fuze_add_mpi_test(NAME register_unprotect_np4 COMMAND test_register ARGS unprotect NP 4 TIMEOUT 60)
# One registration of a struct of scalars (derived datatypes), wiped, recovered,
# persisted, restarted; h5dump reads it.
fuze_add_mpi_test(NAME register_scalars_np4 COMMAND test_register ARGS scalars NP 4 TIMEOUT 60)
