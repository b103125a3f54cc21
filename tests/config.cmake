add_executable(test_config test_config.c)
target_link_libraries(test_config PRIVATE fuze_core)
target_compile_options(test_config PRIVATE ${FUZE_WARNINGS})
fuze_add_unit_test(NAME config_unit COMMAND test_config TIMEOUT 30)
