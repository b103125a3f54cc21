# Install rules and packaging of libfuze: the public header, the shared library, an
# exported CMake package (find_package(fuze) -> fuze::fuze) and a pkg-config file (fuze.pc).
#
# Only MPI is part of fuze's public interface (fuze.h includes mpi.h). ISA-L, HDF5 and hwloc
# are linked PRIVATE into the shared library, so neither the exported target nor fuze.pc
# asks a consumer for them.
include(CMakePackageConfigHelpers)

set(FUZE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/fuze" CACHE STRING
    "Where fuzeConfig.cmake and the exported targets are installed, relative to the prefix")
set(FUZE_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig" CACHE STRING
    "Where fuze.pc is installed, relative to the prefix")
mark_as_advanced(FUZE_INSTALL_CMAKEDIR FUZE_INSTALL_PKGCONFIGDIR)

# The installed library finds its own dependencies (MPI, HDF5 in non-default directories)
# without LD_LIBRARY_PATH; the system directories are filtered out by CMake.
set_target_properties(fuze PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)

# Installed programs (the apps, fuze-plan, fuze-inspect, fuze-bench) find libfuze.so relative
# to themselves ($ORIGIN/../lib with the default GNUInstallDirs), so they start without
# LD_LIBRARY_PATH wherever the prefix is (cmake --install --prefix, or moved later); their
# other dependencies (MPI, HDF5 outside the default directories) by the link path, as above.
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(FUZE_PROGRAM_INSTALL_RPATH "${CMAKE_INSTALL_FULL_LIBDIR}")
else()
  file(RELATIVE_PATH _fuze_bin_to_lib "/prefix/${CMAKE_INSTALL_BINDIR}"
       "/prefix/${CMAKE_INSTALL_LIBDIR}")
  set(FUZE_PROGRAM_INSTALL_RPATH "$ORIGIN/${_fuze_bin_to_lib}")
endif()

# fuze_install_program(<target>): install an executable into the bindir with that run path.
function(fuze_install_program target)
  set_target_properties(${target} PROPERTIES INSTALL_RPATH "${FUZE_PROGRAM_INSTALL_RPATH}"
                        INSTALL_RPATH_USE_LINK_PATH TRUE)
  install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()

# A sanitized libfuze.so only loads into a program that links the sanitizer runtimes first,
# so a FUZE_SANITIZE build hands the flags on to its consumers (both the target and fuze.pc).
set(FUZE_PC_EXTRA_LIBS "")
if(FUZE_SANITIZE)
  target_link_options(fuze INTERFACE -fsanitize=address,undefined)
  set(FUZE_PC_EXTRA_LIBS " -fsanitize=address,undefined")
endif()

install(TARGETS fuze EXPORT fuzeTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT fuze_runtime
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fuze_runtime
          NAMELINK_COMPONENT fuze_devel
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fuze_devel)

# Public headers only: include/fuze.h and, if the API grows, include/fuze/*.h.
# Private headers live under src/ and are never installed.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT fuze_devel
  FILES_MATCHING PATTERN "*.h")

install(EXPORT fuzeTargets NAMESPACE fuze:: FILE fuzeTargets.cmake
  DESTINATION ${FUZE_INSTALL_CMAKEDIR} COMPONENT fuze_devel)
# The same targets for a consumer pointed at the build tree (fuze_DIR=<build>).
export(EXPORT fuzeTargets NAMESPACE fuze::
  FILE ${PROJECT_BINARY_DIR}/fuzeTargets.cmake)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fuzeConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fuzeConfig.cmake
  INSTALL_DESTINATION ${FUZE_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fuzeConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fuzeConfig.cmake
              ${PROJECT_BINARY_DIR}/fuzeConfigVersion.cmake
  DESTINATION ${FUZE_INSTALL_CMAKEDIR} COMPONENT fuze_devel)

# pkg-config. The prefix is computed from the .pc file's own location (${pcfiledir}), so the
# file stays right after `cmake --install <build> --prefix <elsewhere>` or a moved tree.
# Requires names the MPI C module of the MPI fuze is built with (Open MPI: ompi-c, MPICH:
# mpich) so that a plain compiler works too; with mpicc it only repeats what the wrapper
# already adds. mpi-c is the alternative's name (whichever MPI /usr/bin/mpicc is): last.
find_package(PkgConfig QUIET)
if(NOT DEFINED FUZE_PC_MPI_MODULE)
  set(_fuze_pc_mpi "")
  if(FUZE_MPI_FLAVOR STREQUAL "mpich")
    set(_fuze_pc_candidates mpich)
  elseif(FUZE_MPI_FLAVOR STREQUAL "openmpi")
    set(_fuze_pc_candidates ompi-c)
  else()
    set(_fuze_pc_candidates ompi-c mpich mpi-c)
  endif()
  if(PKG_CONFIG_FOUND)
    foreach(_m ${_fuze_pc_candidates})
      execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --exists ${_m}
                      RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
      if(_rc EQUAL 0)
        set(_fuze_pc_mpi ${_m})
        break()
      endif()
    endforeach()
  endif()
  set(FUZE_PC_MPI_MODULE "${_fuze_pc_mpi}" CACHE STRING
      "pkg-config module of the MPI C bindings that fuze.pc requires (empty: none; use mpicc)")
endif()
if(FUZE_PC_MPI_MODULE)
  set(FUZE_PC_REQUIRES "Requires: ${FUZE_PC_MPI_MODULE}")
else()
  set(FUZE_PC_REQUIRES "# No MPI pkg-config module was found: compile with the MPI wrapper (mpicc).")
endif()

if(IS_ABSOLUTE "${FUZE_INSTALL_PKGCONFIGDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}"
   OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  # Absolute directories: no relocation possible, write the configured paths.
  set(FUZE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(FUZE_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(FUZE_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _fuze_pc_up "/prefix/${FUZE_INSTALL_PKGCONFIGDIR}" "/prefix")
  string(REGEX REPLACE "/$" "" _fuze_pc_up "${_fuze_pc_up}")
  set(FUZE_PC_PREFIX "\${pcfiledir}/${_fuze_pc_up}")
  set(FUZE_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(FUZE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/fuze.pc.in ${PROJECT_BINARY_DIR}/fuze.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fuze.pc
  DESTINATION ${FUZE_INSTALL_PKGCONFIGDIR} COMPONENT fuze_devel)
