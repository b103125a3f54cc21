# Job-wide introspection, memory fields, config string, map upsert and
# capacity hint, idle spares (issue 15).
add_executable(test_introspect test_introspect.c)
target_link_libraries(test_introspect PRIVATE fuze_static)
target_include_directories(test_introspect PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_options(test_introspect PRIVATE ${FUZE_WARNINGS})
fuze_add_mpi_test(NAME introspect_np4 COMMAND test_introspect NP 4 TIMEOUT 60)
