# The layer rule (docs/design.md, "Layers"): no source includes, and no object
# calls, a layer above its own; core references no MPI symbol. Runs over the
# sources and the built objects of fuze_core_obj and fuze_rt_obj.
add_test(NAME layering
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/layering.sh ${PROJECT_SOURCE_DIR}/src
          ${PROJECT_BINARY_DIR}/src/CMakeFiles)
# About 10 s of CPU; scaled like the MPI tests (FuzeTesting.cmake), which with MPICH
# busy-poll on the same cores next to it (62 s measured beside them under load).
math(EXPR _layering_timeout "60 * ${FUZE_TEST_TIMEOUT_SCALE}")
set_tests_properties(layering PROPERTIES TIMEOUT ${_layering_timeout})
