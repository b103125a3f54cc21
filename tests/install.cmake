# install_consumer: install this build into a scratch prefix, then build and run a separate
# consumer project against it with find_package(fuze) and with mpicc + pkg-config fuze; with
# FUZE_FORTRAN also the Fortran consumer (tests/consumer_fortran) with find_package(fuze
# COMPONENTS Fortran) and with mpif90 + pkg-config fuze-fortran.
# The logic is in consumer/run.cmake.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}"
   OR IS_ABSOLUTE "${FUZE_INSTALL_CMAKEDIR}" OR IS_ABSOLUTE "${FUZE_INSTALL_PKGCONFIGDIR}")
  message(STATUS "install_consumer: absolute install directories, test not added")
  return()
endif()

set(_fuze_mpicc "${MPI_C_COMPILER}")
if(NOT _fuze_mpicc)
  find_program(FUZE_MPICC NAMES mpicc)
  set(_fuze_mpicc "${FUZE_MPICC}")
endif()
find_package(PkgConfig QUIET)
set(_fuze_mpif90 "")
if(FUZE_FORTRAN)
  set(_fuze_mpif90 "${MPI_Fortran_COMPILER}")
  if(NOT _fuze_mpif90)
    find_program(FUZE_MPIF90 NAMES mpif90 mpifort)
    set(_fuze_mpif90 "${FUZE_MPIF90}")
  endif()
endif()

# The installed programs the test starts without LD_LIBRARY_PATH.
set(_fuze_programs "")
if(FUZE_BUILD_APPS)
  set(_fuze_programs "heat2d%%kvstore%%nqueens%%fuze-bench%%fuze-inspect%%fuze-plan")
endif()

add_test(NAME install_consumer
  COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${PROJECT_BINARY_DIR}
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install_consumer
    -DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/consumer
    -DCONFIG=$<CONFIG>
    -DLIBDIR=${CMAKE_INSTALL_LIBDIR}
    -DBINDIR=${CMAKE_INSTALL_BINDIR}
    -DPROGRAMS=${_fuze_programs}
    -DINCLUDEDIR=${CMAKE_INSTALL_INCLUDEDIR}
    -DCMAKEDIR=${FUZE_INSTALL_CMAKEDIR}
    -DPKGCONFIGDIR=${FUZE_INSTALL_PKGCONFIGDIR}
    "-DGENERATOR=${CMAKE_GENERATOR}"
    "-DC_COMPILER=${CMAKE_C_COMPILER}"
    -DMPICC=${_fuze_mpicc}
    -DPKG_CONFIG=${PKG_CONFIG_EXECUTABLE}
    -DMPIEXEC=${MPIEXEC_EXECUTABLE}
    "-DMPIEXEC_FLAGS=${FUZE_MPIRUN_FLAGS}"
    -DNP=2
    -DFORTRAN=${FUZE_FORTRAN}
    -DFORTRAN_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/consumer_fortran
    "-DFortran_COMPILER=${CMAKE_Fortran_COMPILER}"
    -DMPIF90=${_fuze_mpif90}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
set_tests_properties(install_consumer PROPERTIES TIMEOUT 300 PROCESSORS 2)
if(FUZE_MPIRUN_ENV)
  set_tests_properties(install_consumer PROPERTIES ENVIRONMENT "${FUZE_MPIRUN_ENV}")
endif()
