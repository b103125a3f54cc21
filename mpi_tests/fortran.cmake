# The Fortran bindings (bindings/fortran) and the Fortran heat example
# (apps/heat_f90): only with FUZE_FORTRAN. The kill + restart test of heat_f90
# is in restart_fortran.cmake (it uses restart.cmake's helper).
if(NOT FUZE_FORTRAN)
  return()
endif()
add_executable(test_fortran test_fortran.f90)
target_link_libraries(test_fortran PRIVATE fuze::fuze_fortran MPI::MPI_Fortran)
target_compile_options(test_fortran PRIVATE -Wall -Wextra -std=f2018)
fuze_add_mpi_test(NAME fortran_api_np4 COMMAND test_fortran NP 4 TIMEOUT 60)

if(TARGET heat_f90)
  # Two single-rank wipes at different checkpoints (f = 1), bit-exact against
  # the failure-free field the program recomputes without fuze.
  fuze_add_mpi_test(NAME heat_f90_wipe COMMAND heat_f90
    ARGS --config "faults=1,domain=rank,inject=wipe:ranks=1:at=checkpoint:3/wipe:ranks=3:at=checkpoint:8:phase=partial"
         --expect-recoveries 2
    NP 4 TIMEOUT 60)
  # f = 2: two ranks of one block wiped in one checkpoint, one spare rank.
  fuze_add_mpi_test(NAME heat_f90_wipe2_spare COMMAND heat_f90
    ARGS --config "faults=2,spares=1,domain=rank,inject=wipe:ranks=0+2:at=checkpoint:5:phase=promoted"
         --expect-recoveries 1
    NP 5 TIMEOUT 60)
endif()
