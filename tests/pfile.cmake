# Unit test of the persisted format (src/core/pfile.c): round trips over many plan
# geometries, exhaustive rebuild of every set of <= f+1 lost ranks, a mutation
# fuzzer (flips, truncation, HDF5-level edits), versions, manifest, errors.
add_executable(test_pfile ${CMAKE_CURRENT_LIST_DIR}/test_pfile.c)
target_link_libraries(test_pfile PRIVATE fuze_core)
# It edits files at the HDF5 level; the parallel hdf5.h includes mpi.h.
target_include_directories(test_pfile PRIVATE ${HDF5_C_INCLUDE_DIRS} ${MPI_C_INCLUDE_DIRS})
target_compile_options(test_pfile PRIVATE ${FUZE_WARNINGS})
# Two CTests so that each stays well under a minute (also under ASan).
fuze_add_unit_test(NAME pfile_unit COMMAND test_pfile ARGS --part core TIMEOUT 120)
fuze_add_unit_test(NAME pfile_fuzz COMMAND test_pfile ARGS --part fuzz TIMEOUT 120)
