# cmake -DEXE=<fuze-plan> -DARGS=a%%b%%c -DSTATUS=<n> [-DOUT=re%%re] [-DERR=re%%re] -P run_test.cmake
# Runs EXE with ARGS, fails unless it exits with exactly STATUS and every OUT
# regex matches its stdout and every ERR regex its stderr.
string(REPLACE "%%" ";" _args "${ARGS}")
execute_process(COMMAND ${EXE} ${_args} RESULT_VARIABLE _rc
                OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
set(_bad "")
if(NOT "${_rc}" STREQUAL "${STATUS}")
  string(APPEND _bad "exit status: expected ${STATUS}, got ${_rc}\n")
endif()
foreach(_kind OUT ERR)
  string(REPLACE "%%" ";" _res "${${_kind}}")
  string(TOLOWER "${_kind}" _k)
  foreach(_re IN LISTS _res)
    if(NOT "${_${_k}}" MATCHES "${_re}")
      string(APPEND _bad "std${_k} does not match: ${_re}\n")
    endif()
  endforeach()
endforeach()
if(_bad)
  message(FATAL_ERROR "fuze-plan ${ARGS}\n${_bad}--- stdout:\n${_out}--- stderr:\n${_err}")
endif()
message(STATUS "fuze-plan ${ARGS}: status ${_rc}\n${_out}${_err}")
