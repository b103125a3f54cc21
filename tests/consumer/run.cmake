# Driver of the install_consumer test (cmake -P). Installs a fuze build tree into a scratch
# prefix, then builds and runs tests/consumer/main.c twice against that prefix:
#   1. as a CMake project using find_package(fuze) and fuze::fuze;
#   2. with `mpicc main.c $(pkg-config --cflags --libs fuze)`, PKG_CONFIG_PATH=<prefix>.
# Any failing step fails the test. Inputs (-D...):
#   BUILD_DIR      fuze build tree to install        WORK_DIR   scratch directory (wiped)
#   SOURCE_DIR     this folder (consumer sources)    CONFIG     build configuration
#   LIBDIR         CMAKE_INSTALL_LIBDIR of the build INCLUDEDIR CMAKE_INSTALL_INCLUDEDIR
#   CMAKEDIR       fuze's package dir (relative)     PKGCONFIGDIR  fuze.pc's dir (relative)
#   GENERATOR      CMake generator for the consumer  C_COMPILER compiler for the consumer
#   MPICC          the MPI C compiler wrapper        PKG_CONFIG pkg-config executable
#   MPIEXEC        mpirun (empty: run as singleton)  MPIEXEC_FLAGS  ;-list of mpirun flags
#   NP             ranks for each run (default 2)
#   BINDIR         CMAKE_INSTALL_BINDIR of the build PROGRAMS   installed programs, %%-separated
#                  (each must start with --help, without LD_LIBRARY_PATH; heat2d also runs)
#   FORTRAN        ON: also the Fortran bindings (tests/consumer_fortran), with
#   FORTRAN_SOURCE_DIR, Fortran_COMPILER and MPIF90 (the MPI Fortran wrapper)
cmake_minimum_required(VERSION 3.20)

foreach(_v BUILD_DIR WORK_DIR SOURCE_DIR LIBDIR INCLUDEDIR CMAKEDIR PKGCONFIGDIR C_COMPILER
           MPICC PKG_CONFIG)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${_v}=... is required")
  endif()
endforeach()
if(NOT NP)
  set(NP 2)
endif()

set(prefix "${WORK_DIR}/prefix")
set(step_timeout 240)

# run(<what> <command...>): run a command, print its output, fail the test if it fails.
function(run what)
  message(STATUS "[install_consumer] ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out
    TIMEOUT ${step_timeout})
  if(NOT "${out}" STREQUAL "")
    message("${out}")
  endif()
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "[install_consumer] FAILED: ${what} (exit status: ${rc})")
  endif()
endfunction()

# run_ranks(<what> <exe> [env...]): run an MPI program on NP ranks (or as a singleton).
function(run_ranks what exe)
  if(MPIEXEC)
    run("${what}" ${CMAKE_COMMAND} -E env ${ARGN} ${MPIEXEC} ${MPIEXEC_FLAGS} -np ${NP} ${exe})
  else()
    run("${what}" ${CMAKE_COMMAND} -E env ${ARGN} ${exe})
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# --- 1. Install the build tree into the scratch prefix.
set(_cfg "")
if(CONFIG)
  set(_cfg --config ${CONFIG})
endif()
run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}" ${_cfg})

# The installed tree: the public header, the library, the package files; no private headers
# and no reference to fuze's private dependencies in the exported targets.
foreach(_f "${INCLUDEDIR}/fuze.h" "${CMAKEDIR}/fuzeConfig.cmake"
           "${CMAKEDIR}/fuzeConfigVersion.cmake" "${CMAKEDIR}/fuzeTargets.cmake"
           "${PKGCONFIGDIR}/fuze.pc")
  if(NOT EXISTS "${prefix}/${_f}")
    message(FATAL_ERROR "[install_consumer] FAILED: ${_f} is not installed in ${prefix}")
  endif()
endforeach()
file(GLOB _libs "${prefix}/${LIBDIR}/libfuze.so*")
if(NOT _libs)
  message(FATAL_ERROR "[install_consumer] FAILED: no libfuze.so in ${prefix}/${LIBDIR}")
endif()
file(GLOB_RECURSE _headers RELATIVE "${prefix}/${INCLUDEDIR}" "${prefix}/${INCLUDEDIR}/*")
foreach(_h ${_headers})
  if(NOT _h STREQUAL "fuze.h" AND NOT _h MATCHES "^fuze/")
    message(FATAL_ERROR "[install_consumer] FAILED: unexpected installed header ${_h}")
  endif()
endforeach()
file(GLOB _exports "${prefix}/${CMAKEDIR}/fuzeTargets*.cmake")
foreach(_e ${_exports})
  file(READ "${_e}" _text)
  foreach(_private "ISAL::" "PkgConfig::" "hdf5" "hwloc" "isal")
    string(FIND "${_text}" "${_private}" _at)
    if(NOT _at EQUAL -1)
      message(FATAL_ERROR "[install_consumer] FAILED: ${_e} mentions the private "
                          "dependency '${_private}'")
    endif()
  endforeach()
endforeach()

# --- 2. find_package(fuze) from a separate CMake project.
set(_bt "")
if(CONFIG)
  set(_bt -DCMAKE_BUILD_TYPE=${CONFIG})
endif()
set(_gen "")
if(GENERATOR)
  set(_gen -G "${GENERATOR}")
endif()
run("configure the consumer" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/cmake-build"
    ${_gen} ${_bt} "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
# It must have found the scratch install, not some other fuze on the machine.
file(STRINGS "${WORK_DIR}/cmake-build/CMakeCache.txt" _dir REGEX "^fuze_DIR:")
string(REGEX REPLACE "^fuze_DIR:[A-Z]+=" "" _dir "${_dir}")
get_filename_component(_dir "${_dir}" REALPATH)
get_filename_component(_want "${prefix}/${CMAKEDIR}" REALPATH)
if(NOT _dir STREQUAL _want)
  message(FATAL_ERROR "[install_consumer] FAILED: find_package(fuze) used ${_dir}, "
                      "not ${_want}")
endif()
run("build the consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/cmake-build" ${_cfg})
set(_exe "${WORK_DIR}/cmake-build/consumer")
if(CONFIG AND NOT EXISTS "${_exe}" AND EXISTS "${WORK_DIR}/cmake-build/${CONFIG}/consumer")
  set(_exe "${WORK_DIR}/cmake-build/${CONFIG}/consumer")
endif()
run_ranks("run the find_package consumer" "${_exe}")

# --- 3. mpicc $(pkg-config --cflags --libs fuze), exactly as a user would type it.
set(_pcpath "${prefix}/${PKGCONFIGDIR}")
if(DEFINED ENV{PKG_CONFIG_PATH} AND NOT "$ENV{PKG_CONFIG_PATH}" STREQUAL "")
  set(_pcpath "${_pcpath}:$ENV{PKG_CONFIG_PATH}")
endif()
run("pkg-config" ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${_pcpath}"
    ${PKG_CONFIG} --cflags --libs fuze)
find_program(SH sh REQUIRED)
set(_pc_exe "${WORK_DIR}/pkgconfig-consumer")
run("mpicc with pkg-config" ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${_pcpath}"
    "PKG_CONFIG=${PKG_CONFIG}" "MPICC=${MPICC}" "SRC=${SOURCE_DIR}/main.c" "OUT=${_pc_exe}"
    ${SH} -xc [[flags=$("$PKG_CONFIG" --cflags --libs fuze) && "$MPICC" -std=c11 "$SRC" $flags -o "$OUT"]])
# (No ';' in that script: run() passes its arguments on as a CMake list.)
if(NOT EXISTS "${_pc_exe}")
  message(FATAL_ERROR "[install_consumer] FAILED: mpicc did not produce ${_pc_exe}")
endif()
# fuze.pc gives no rpath (as usual for pkg-config), so point the loader at the prefix.
set(_ldpath "${prefix}/${LIBDIR}")
if(DEFINED ENV{LD_LIBRARY_PATH} AND NOT "$ENV{LD_LIBRARY_PATH}" STREQUAL "")
  set(_ldpath "${_ldpath}:$ENV{LD_LIBRARY_PATH}")
endif()
run_ranks("run the pkg-config consumer" "${_pc_exe}" "LD_LIBRARY_PATH=${_ldpath}")

# --- 4. The installed programs start from the prefix with no LD_LIBRARY_PATH: their run path
# finds libfuze.so ($ORIGIN/../lib) and the rest.
string(REPLACE "%%" ";" _programs "${PROGRAMS}")
foreach(_p ${_programs})
  set(_exe "${prefix}/${BINDIR}/${_p}")
  if(NOT EXISTS "${_exe}")
    message(FATAL_ERROR "[install_consumer] FAILED: ${_p} is not installed in ${prefix}/${BINDIR}")
  endif()
  run("installed ${_p} --help, no LD_LIBRARY_PATH" ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH
      "${_exe}" --help)
endforeach()
if("heat2d" IN_LIST _programs)
  set(_heat "${prefix}/${BINDIR}/heat2d;--nx;32;--ny;32;--steps;8;--every;4;--config;faults=1,domain=rank")
  if(MPIEXEC)
    run("installed heat2d on ${NP} ranks, no LD_LIBRARY_PATH" ${CMAKE_COMMAND} -E env
        --unset=LD_LIBRARY_PATH ${MPIEXEC} ${MPIEXEC_FLAGS} -np ${NP} ${_heat})
  else()
    run("installed heat2d, no LD_LIBRARY_PATH" ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${_heat})
  endif()
endif()

# --- 4. The Fortran bindings, when built (FORTRAN=ON): the installed module, library and
# package files, then tests/consumer_fortran through find_package(fuze COMPONENTS Fortran)
# and through mpif90 $(pkg-config --cflags --libs fuze-fortran).
if(FORTRAN)
  foreach(_v FORTRAN_SOURCE_DIR Fortran_COMPILER MPIF90)
    if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
      message(FATAL_ERROR "run.cmake: -D${_v}=... is required with FORTRAN=ON")
    endif()
  endforeach()
  foreach(_f "${INCLUDEDIR}/fuze/fortran/fuze.mod" "${CMAKEDIR}/fuzeFortranTargets.cmake"
             "${PKGCONFIGDIR}/fuze-fortran.pc")
    if(NOT EXISTS "${prefix}/${_f}")
      message(FATAL_ERROR "[install_consumer] FAILED: ${_f} is not installed in ${prefix}")
    endif()
  endforeach()
  file(GLOB _flibs "${prefix}/${LIBDIR}/libfuze_f.so*")
  if(NOT _flibs)
    message(FATAL_ERROR "[install_consumer] FAILED: no libfuze_f.so in ${prefix}/${LIBDIR}")
  endif()
  run("configure the Fortran consumer" ${CMAKE_COMMAND} -S "${FORTRAN_SOURCE_DIR}"
      -B "${WORK_DIR}/cmake-build-fortran" ${_gen} ${_bt} "-DCMAKE_C_COMPILER=${C_COMPILER}"
      "-DCMAKE_Fortran_COMPILER=${Fortran_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}"
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  run("build the Fortran consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/cmake-build-fortran" ${_cfg})
  set(_fexe "${WORK_DIR}/cmake-build-fortran/consumer_f")
  if(CONFIG AND NOT EXISTS "${_fexe}")
    set(_fexe "${WORK_DIR}/cmake-build-fortran/${CONFIG}/consumer_f")
  endif()
  run_ranks("run the find_package Fortran consumer" "${_fexe}")
  set(_fpc_exe "${WORK_DIR}/pkgconfig-consumer-fortran")
  run("mpif90 with pkg-config" ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${_pcpath}"
      "PKG_CONFIG=${PKG_CONFIG}" "MPIF90=${MPIF90}" "SRC=${FORTRAN_SOURCE_DIR}/main.f90"
      "OUT=${_fpc_exe}" "MODS=${WORK_DIR}"
      ${SH} -xc [[flags=$("$PKG_CONFIG" --cflags --libs fuze-fortran) && "$MPIF90" "$SRC" $flags -J "$MODS" -o "$OUT"]])
  if(NOT EXISTS "${_fpc_exe}")
    message(FATAL_ERROR "[install_consumer] FAILED: mpif90 did not produce ${_fpc_exe}")
  endif()
  run_ranks("run the pkg-config Fortran consumer" "${_fpc_exe}" "LD_LIBRARY_PATH=${_ldpath}")
  message(STATUS "[install_consumer] Fortran: find_package(fuze COMPONENTS Fortran), pkg-config fuze-fortran")
endif()

message(STATUS "[install_consumer] passed: install, find_package(fuze), pkg-config fuze, "
               "installed programs")
