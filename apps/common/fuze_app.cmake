# fuze_app.cmake: the build and test boilerplate shared by the example apps
# (heat2d, kvstore, nqueens). An app's CMakeLists.txt includes this file; it
# is not a subdirectory of its own (apps/CMakeLists.txt adds every
# apps/*/CMakeLists.txt, and apps/common has none).
include_guard(GLOBAL)

# fuze_app_add_executable(<name>)
# Builds the app <name> from main.c in the calling directory with the
# project's warnings, linked to fuze and able to include "fuze_app.h", and
# installs it.
function(fuze_app_add_executable name)
  add_executable(${name} main.c)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  target_link_libraries(${name} PRIVATE fuze::fuze)
  target_compile_options(${name} PRIVATE ${FUZE_WARNINGS})
  fuze_install_program(${name})
endfunction()

# fuze_app_add_tests(<function>)
# When the tests are built, calls <function> (which registers an app's tests)
# at the end of the project's top directory, after FuzeTesting is included.
# The top-level CMakeLists.txt may add apps/ before it calls enable_testing()
# and include(FuzeTesting), so tests added from an app's directory directly
# would not reach CTest; deferring works whatever the order there.
function(fuze_app_add_tests fn)
  if(FUZE_BUILD_TESTS)
    # EVAL: the deferred call must get the function's name, not ${fn} to be
    # expanded later in the top directory, where fn is not set.
    cmake_language(EVAL CODE
      "cmake_language(DEFER DIRECTORY [[${PROJECT_SOURCE_DIR}]] CALL _fuze_app_call_tests [[${fn}]])")
  endif()
endfunction()

# Runs a deferred fuze_app_add_tests() function, with FuzeTesting included.
function(_fuze_app_call_tests fn)
  if(NOT COMMAND fuze_add_mpi_test)
    include(FuzeTesting)
  endif()
  cmake_language(CALL ${fn})
endfunction()

# fuze_app_bad_option_test(<app> <option> <value>)
# Registers <app>_bad_option: <app> run on one rank with "<option> <value>",
# which it must refuse with "bad value '<value>' for option '<option>'"
# followed by its usage (exit status 2). Option and value must not contain
# regex special characters.
function(fuze_app_bad_option_test app option value)
  fuze_add_mpi_test(NAME ${app}_bad_option COMMAND ${app}
    ARGS ${option} ${value}
    NP 1 TIMEOUT 30)
  set_tests_properties(${app}_bad_option PROPERTIES
    PASS_REGULAR_EXPRESSION "bad value '${value}' for option '${option}'.*usage: ${app}")
endfunction()

# fuze_app_unrecoverable_test(<app> NP <n> SUCCESS <regex> ARGS <arg>...)
# Registers <app>_unrecoverable: <app> run on <n> ranks with the arguments,
# which lose more members of a block than the backups can decode. The run
# must stop with the library's FUZE_ERR_UNRECOVERABLE message and never print
# the app's success line (matched by <regex>).
function(fuze_app_unrecoverable_test app)
  cmake_parse_arguments(T "" "NP;SUCCESS" "ARGS" ${ARGN})
  fuze_add_mpi_test(NAME ${app}_unrecoverable COMMAND ${app}
    ARGS ${T_ARGS}
    NP ${T_NP} TIMEOUT 60)
  set_tests_properties(${app}_unrecoverable PROPERTIES
    PASS_REGULAR_EXPRESSION "returned FUZE_ERR_UNRECOVERABLE [^\n]*[Uu]nrecoverable"
    FAIL_REGULAR_EXPRESSION "${T_SUCCESS}")
endfunction()
