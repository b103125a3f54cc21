# The compute communicator with and without spares (README "Communicators").
add_executable(test_comms test_comms.c)
target_link_libraries(test_comms PRIVATE fuze)
target_compile_options(test_comms PRIVATE ${FUZE_WARNINGS})
fuze_add_mpi_test(NAME comms_np4 COMMAND test_comms NP 4 TIMEOUT 60)
