# heat_f90 (Fortran): rank 2 killed at the 4th checkpoint with dir=, its
# domain's files deleted, the same command restarts from epoch 3 and must end
# with the failure-free run's checksum (restart_cycle.sh, restart.cmake).
if(NOT FUZE_FORTRAN OR NOT TARGET heat_f90 OR NOT COMMAND fuze_restart_test)
  return()
endif()
fuze_restart_test(restart_heat_f90_kill APP heat_f90 NP 4
  CONFIG "faults=1,domain=rank" INJECT "kill:rank=2:at=checkpoint:4"
  DRIVER --expect "resuming at step 30 of 120"
         --expect "restart from epoch 3: rebuilding 1 file by decoding"
  ARGS --steps 120 --every 10)
