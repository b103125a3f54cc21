# fuze_add_mpi_test(NAME <name> COMMAND <target-or-exe> [ARGS ...] NP <n>
#                   [TIMEOUT <s>] [ENV <VAR=value> ...] [WILL_FAIL])
# Runs the command under `mpirun --oversubscribe -np n` with a timeout.
# fuze_add_unit_test(NAME <name> COMMAND <target> [ARGS ...] [TIMEOUT <s>])
# Runs a pure unit test without mpirun (label `unit`).
set(FUZE_MPIRUN_FLAGS --oversubscribe --bind-to none CACHE STRING "Extra mpirun flags for tests")

function(fuze_add_mpi_test)
  cmake_parse_arguments(T "WILL_FAIL" "NAME;NP;TIMEOUT" "COMMAND;ARGS;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  set(_cmd ${T_COMMAND})
  list(GET _cmd 0 _first)
  if(TARGET ${_first})
    list(REMOVE_AT _cmd 0)
    list(PREPEND _cmd $<TARGET_FILE:${_first}>)
  endif()
  add_test(NAME ${T_NAME}
           COMMAND ${MPIEXEC_EXECUTABLE} ${FUZE_MPIRUN_FLAGS} -np ${T_NP} ${_cmd} ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} PROCESSORS 1
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;${T_ENV}")
  if(T_WILL_FAIL)
    set_tests_properties(${T_NAME} PROPERTIES WILL_FAIL TRUE)
  endif()
endfunction()

function(fuze_add_unit_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND} ${T_ARGS})
  # Label `unit`: the TSan preset runs these with the `threads` tests.
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS unit)
endfunction()
