# Unit test of the planner (src/core/plan.c): exhaustive small layouts, multi-rank
# domains, random layouts, invalid input messages.
add_executable(test_plan ${CMAKE_CURRENT_LIST_DIR}/test_plan.c)
target_link_libraries(test_plan PRIVATE fuze_core)
target_compile_options(test_plan PRIVATE ${FUZE_WARNINGS})
fuze_add_unit_test(NAME plan_unit COMMAND test_plan TIMEOUT 120)
