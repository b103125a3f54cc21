# Every dependency of fuze, each with the Debian package that provides it.
find_package(MPI COMPONENTS C)
if(NOT MPI_C_FOUND)
  message(FATAL_ERROR "fuze needs MPI (Open MPI): apt-get install libopenmpi-dev openmpi-bin")
endif()

find_package(ISAL)
if(NOT ISAL_FOUND)
  message(FATAL_ERROR "fuze needs ISA-L (libisal): apt-get install libisal-dev")
endif()

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 COMPONENTS C)
if(NOT HDF5_FOUND)
  message(FATAL_ERROR "fuze needs the parallel HDF5: apt-get install libhdf5-openmpi-dev")
endif()
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "fuze needs the parallel (Open MPI) build of HDF5, found a serial one "
                      "at ${HDF5_INCLUDE_DIRS}: apt-get install libhdf5-openmpi-dev")
endif()

find_package(PkgConfig)
if(PkgConfig_FOUND)
  pkg_check_modules(HWLOC IMPORTED_TARGET hwloc)
endif()
if(NOT HWLOC_FOUND)
  message(FATAL_ERROR "fuze needs hwloc: apt-get install libhwloc-dev pkg-config")
endif()

find_program(MPIEXEC_EXECUTABLE NAMES mpirun mpiexec)
