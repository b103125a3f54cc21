# Every dependency of fuze, each with the Debian package that provides it.
#
# MPI: Open MPI (libopenmpi-dev openmpi-bin; the default presets) or MPICH (libmpich-dev
# mpich; preset "mpich"). Both can be installed side by side: Debian's alternatives (mpi,
# mpirun, h5pcc) pick what /usr/bin/mpicc, mpirun and h5pcc are, and the mpich preset names
# MPICH's programs by their explicit paths (mpicc.mpich, mpiexec.mpich, h5pcc.mpich) instead.
# FUZE_MPI says which implementation the build expects: `auto` takes what
# find_package(MPI) finds (MPI_C_COMPILER, by default the mpicc on PATH); `openmpi` or
# `mpich` also fails the configuration when MPI_C_COMPILER is another one. Then the
# launcher (MPIEXEC_EXECUTABLE) and the parallel HDF5 must be built for the same MPI:
# a mismatch is corrected where the matching program is installed, and a fatal error
# otherwise (an Open MPI HDF5 linked into an MPICH program crashes at run time).
set(FUZE_MPI auto CACHE STRING "MPI implementation fuze is built with: auto, openmpi or mpich")
set_property(CACHE FUZE_MPI PROPERTY STRINGS auto openmpi mpich)
if(NOT FUZE_MPI MATCHES "^(auto|openmpi|mpich)$")
  message(FATAL_ERROR "FUZE_MPI=${FUZE_MPI}: use auto, openmpi or mpich")
endif()

set(_fuze_mpi_pkg_openmpi "libopenmpi-dev openmpi-bin")
set(_fuze_mpi_pkg_mpich "libmpich-dev mpich")
set(_fuze_hdf5_pkg_openmpi "libhdf5-openmpi-dev")
set(_fuze_hdf5_pkg_mpich "libhdf5-mpich-dev")
# Debian's names of each implementation's programs, next to the alternatives.
set(_fuze_mpicc_openmpi mpicc.openmpi)
set(_fuze_mpicc_mpich mpicc.mpich)
set(_fuze_mpiexec_openmpi mpirun.openmpi mpiexec.openmpi orterun)
set(_fuze_mpiexec_mpich mpiexec.mpich mpiexec.hydra mpirun.mpich)
set(_fuze_h5pcc_openmpi h5pcc.openmpi)
set(_fuze_h5pcc_mpich h5pcc.mpich)

if(NOT FUZE_MPI STREQUAL "auto" AND NOT MPI_C_COMPILER)
  find_program(_fuze_mpicc NAMES ${_fuze_mpicc_${FUZE_MPI}} NO_CACHE)
  if(_fuze_mpicc)
    set(MPI_C_COMPILER "${_fuze_mpicc}" CACHE FILEPATH "MPI C compiler wrapper")
  endif()
endif()

find_package(MPI COMPONENTS C)
if(NOT MPI_C_FOUND)
  if(FUZE_MPI STREQUAL "auto")
    message(FATAL_ERROR "fuze needs MPI: apt-get install ${_fuze_mpi_pkg_openmpi} "
                        "(or ${_fuze_mpi_pkg_mpich} with the preset mpich)")
  endif()
  message(FATAL_ERROR "fuze needs MPI (FUZE_MPI=${FUZE_MPI}): apt-get install "
                      "${_fuze_mpi_pkg_${FUZE_MPI}}")
endif()

# Which implementation mpi.h belongs to (MPICH derivatives such as Intel MPI, MVAPICH and
# Cray MPICH define MPICH_VERSION too).
set(_fuze_mpi_h "")
foreach(_d ${MPI_C_HEADER_DIR} ${MPI_C_INCLUDE_DIRS})
  if(EXISTS "${_d}/mpi.h")
    set(_fuze_mpi_h "${_d}/mpi.h")
    break()
  endif()
endforeach()
set(FUZE_MPI_FLAVOR unknown)
if(_fuze_mpi_h)
  file(STRINGS "${_fuze_mpi_h}" _fuze_defs REGEX "^#[ \t]*define[ \t]+(OPEN_MPI|MPICH_VERSION)[ \t]")
  if(_fuze_defs MATCHES "OPEN_MPI")
    set(FUZE_MPI_FLAVOR openmpi)
  elseif(_fuze_defs MATCHES "MPICH_VERSION")
    set(FUZE_MPI_FLAVOR mpich)
  endif()
endif()
set(FUZE_MPI_FLAVOR ${FUZE_MPI_FLAVOR} CACHE INTERNAL "MPI implementation found: openmpi, mpich or unknown")
if(NOT FUZE_MPI STREQUAL "auto" AND NOT FUZE_MPI STREQUAL FUZE_MPI_FLAVOR)
  message(FATAL_ERROR "FUZE_MPI=${FUZE_MPI}, but MPI_C_COMPILER=${MPI_C_COMPILER} is "
    "${FUZE_MPI_FLAVOR} (mpi.h: ${_fuze_mpi_h}): install ${_fuze_mpi_pkg_${FUZE_MPI}} and "
    "configure with -DMPI_C_COMPILER=/usr/bin/${_fuze_mpicc_${FUZE_MPI}} (the preset "
    "${FUZE_MPI} does), in a fresh build directory")
endif()
message(STATUS "fuze: MPI is ${FUZE_MPI_FLAVOR} (${MPI_C_COMPILER}, MPI ${MPI_C_VERSION})")

# The launcher must be the same implementation's: Open MPI's mpirun cannot start MPICH
# programs (each rank would be a singleton) and Hydra's mpiexec cannot start Open MPI's.
function(_fuze_launcher_flavor exe out)
  set(_f unknown)
  if(exe AND EXISTS "${exe}")
    execute_process(COMMAND "${exe}" --version RESULT_VARIABLE _rc OUTPUT_VARIABLE _o
                    ERROR_VARIABLE _o TIMEOUT 30)
    if(_o MATCHES "Open MPI|OpenRTE")
      set(_f openmpi)
    elseif(_o MATCHES "HYDRA|Intel\\(R\\) MPI|MPICH")
      set(_f mpich)
    endif()
  endif()
  set(${out} ${_f} PARENT_SCOPE)
endfunction()
if(NOT FUZE_MPI_FLAVOR STREQUAL "unknown")
  _fuze_launcher_flavor("${MPIEXEC_EXECUTABLE}" _fuze_lf)
  if(NOT _fuze_lf STREQUAL FUZE_MPI_FLAVOR)
    get_filename_component(_fuze_mpi_bin "${MPI_C_COMPILER}" DIRECTORY)
    find_program(_fuze_mpiexec NAMES ${_fuze_mpiexec_${FUZE_MPI_FLAVOR}}
                 HINTS "${_fuze_mpi_bin}" NO_CACHE)
    _fuze_launcher_flavor("${_fuze_mpiexec}" _fuze_lf2)
    if(NOT _fuze_lf2 STREQUAL FUZE_MPI_FLAVOR)
      message(FATAL_ERROR "MPIEXEC_EXECUTABLE=${MPIEXEC_EXECUTABLE} is not ${FUZE_MPI_FLAVOR}'s "
        "launcher (it says ${_fuze_lf}) and none of ${_fuze_mpiexec_${FUZE_MPI_FLAVOR}} was "
        "found: set -DMPIEXEC_EXECUTABLE=...")
    endif()
    message(STATUS "fuze: MPIEXEC_EXECUTABLE=${MPIEXEC_EXECUTABLE} is ${_fuze_lf}'s launcher, "
                   "not ${FUZE_MPI_FLAVOR}'s: using ${_fuze_mpiexec}")
    set(MPIEXEC_EXECUTABLE "${_fuze_mpiexec}" CACHE FILEPATH "Executable for running MPI programs." FORCE)
  endif()
endif()

find_package(ISAL)
if(NOT ISAL_FOUND)
  message(FATAL_ERROR "fuze needs ISA-L (libisal): apt-get install libisal-dev")
endif()

# The parallel HDF5 of the same MPI: Debian installs one per MPI side by side
# (/usr/lib/x86_64-linux-gnu/hdf5/openmpi, .../hdf5/mpich), and FindHDF5 asks the h5pcc
# wrapper, so take the implementation's own h5pcc rather than the h5pcc alternative.
if(NOT HDF5_C_COMPILER_EXECUTABLE AND DEFINED _fuze_h5pcc_${FUZE_MPI_FLAVOR})
  find_program(_fuze_h5pcc NAMES ${_fuze_h5pcc_${FUZE_MPI_FLAVOR}} NO_CACHE)
  if(_fuze_h5pcc)
    set(HDF5_C_COMPILER_EXECUTABLE "${_fuze_h5pcc}" CACHE FILEPATH "HDF5 C compiler wrapper")
  endif()
endif()
set(_fuze_hdf5_pkg "${_fuze_hdf5_pkg_openmpi}")
if(FUZE_MPI_FLAVOR STREQUAL "mpich")
  set(_fuze_hdf5_pkg "${_fuze_hdf5_pkg_mpich}")
endif()
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 COMPONENTS C)
if(NOT HDF5_FOUND)
  message(FATAL_ERROR "fuze needs the parallel HDF5: apt-get install ${_fuze_hdf5_pkg}")
endif()
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "fuze needs the parallel (${FUZE_MPI_FLAVOR}) build of HDF5, found a "
                      "serial one at ${HDF5_INCLUDE_DIRS}: apt-get install ${_fuze_hdf5_pkg}")
endif()
# Debian's directories name the MPI each HDF5 was built with.
foreach(_other openmpi mpich)
  if(NOT _other STREQUAL FUZE_MPI_FLAVOR AND NOT FUZE_MPI_FLAVOR STREQUAL "unknown"
     AND "${HDF5_C_INCLUDE_DIRS};${HDF5_C_LIBRARIES}" MATCHES "/hdf5/${_other}[/;]|/hdf5/${_other}$")
    message(FATAL_ERROR "the parallel HDF5 found (${HDF5_C_INCLUDE_DIRS}; ${HDF5_C_LIBRARIES}) "
      "is built for ${_other}, but MPI is ${FUZE_MPI_FLAVOR}: apt-get install ${_fuze_hdf5_pkg} "
      "and configure with -DHDF5_C_COMPILER_EXECUTABLE=/usr/bin/${_fuze_h5pcc_${FUZE_MPI_FLAVOR}}, "
      "in a fresh build directory")
  endif()
endforeach()

find_package(PkgConfig)
if(PkgConfig_FOUND)
  pkg_check_modules(HWLOC IMPORTED_TARGET hwloc)
endif()
if(NOT HWLOC_FOUND)
  message(FATAL_ERROR "fuze needs hwloc: apt-get install libhwloc-dev pkg-config")
endif()

if(NOT MPIEXEC_EXECUTABLE)
  find_program(MPIEXEC_EXECUTABLE NAMES mpirun mpiexec)
endif()

# Which Open MPI: osc/pt2pt (windows over TCP) was removed in Open MPI 5.0, where osc/rdma
# runs over any BTL (tcp included, through its active-message RDMA emulation). And whether
# the MPI has ULFM (Open MPI's ftmpi extension: MPIX_Comm_revoke/agree/shrink).
set(FUZE_OMPI_VERSION "")
foreach(_d ${MPI_C_INCLUDE_DIRS} ${MPI_C_HEADER_DIR})
  if(NOT FUZE_OMPI_VERSION AND EXISTS "${_d}/mpi.h")
    file(STRINGS "${_d}/mpi.h" _v REGEX "^#define OMPI_(MAJOR|MINOR|RELEASE)_VERSION ")
    if(_v)
      string(REGEX REPLACE ".*OMPI_MAJOR_VERSION ([0-9]+).*" "\\1" _maj "${_v}")
      string(REGEX REPLACE ".*OMPI_MINOR_VERSION ([0-9]+).*" "\\1" _min "${_v}")
      string(REGEX REPLACE ".*OMPI_RELEASE_VERSION ([0-9]+).*" "\\1" _rel "${_v}")
      set(FUZE_OMPI_VERSION "${_maj}.${_min}.${_rel}")
    endif()
  endif()
endforeach()
if(FUZE_OMPI_VERSION AND FUZE_OMPI_VERSION VERSION_GREATER_EQUAL 5.0)
  set(FUZE_OSC_TCP rdma)
else()
  set(FUZE_OSC_TCP pt2pt)
endif()

include(CheckCSourceCompiles)
include(CMakePushCheckState)
cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_LIBRARIES MPI::MPI_C)
set(CMAKE_REQUIRED_QUIET ON)
check_c_source_compiles([=[
#include <mpi.h>
#include <mpi-ext.h>
#if !defined(OMPI_HAVE_MPI_EXT_FTMPI)
#error no ULFM
#endif
int main(void) {
  MPI_Comm c = MPI_COMM_NULL;
  int flag = 1;
  MPIX_Comm_revoke(c);
  MPIX_Comm_agree(c, &flag);
  MPIX_Comm_shrink(c, &c);
  return 0;
}]=] FUZE_HAVE_ULFM)
cmake_pop_check_state()
if(FUZE_HAVE_ULFM)
  set(_ulfm "yes (ftmpi extension: the tests labelled ulfm are built)")
else()
  set(_ulfm "no")
endif()
if(FUZE_OMPI_VERSION)
  message(STATUS "fuze: Open MPI ${FUZE_OMPI_VERSION}: windows over TCP with osc/${FUZE_OSC_TCP}; "
                 "ULFM: ${_ulfm}")
endif()
