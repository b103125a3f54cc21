# replacements=R (issue 14): idle replacement ranks beside compute ranks and spares, the wipe
# model unchanged next to them, fuze_comm.
add_executable(test_replacements test_replacements.c)
target_link_libraries(test_replacements PRIVATE fuze_static)
target_include_directories(test_replacements PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
fuze_add_mpi_test(NAME replacements_np6 COMMAND test_replacements ARGS 2 0 NP 6 TIMEOUT 60)
fuze_add_mpi_test(NAME replacements_np7_spare COMMAND test_replacements ARGS 2 1 NP 7 TIMEOUT 60)
