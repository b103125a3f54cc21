# Threads (docs/design.md "Threads"): several threads per rank call fuze at
# once; label `threads` (the TSan preset runs it).
find_package(Threads REQUIRED)
add_executable(test_threads test_threads.c)
target_link_libraries(test_threads PRIVATE fuze_static Threads::Threads)
target_compile_options(test_threads PRIVATE ${FUZE_WARNINGS})
fuze_add_mpi_test(NAME threads_np4 COMMAND test_threads ARGS multiple "faults=2,domain=rank" NP 4 TIMEOUT 180)
fuze_add_mpi_test(NAME threads_np4_shm_off COMMAND test_threads ARGS multiple "faults=2,domain=rank,shm=off"
                  NP 4 TIMEOUT 180)
fuze_add_mpi_test(NAME threads_np3_serialized COMMAND test_threads ARGS serialized "faults=1,domain=rank"
                  NP 3 TIMEOUT 120)
fuze_add_mpi_test(NAME threads_np3_funneled COMMAND test_threads ARGS funneled "faults=1,domain=rank"
                  NP 3 TIMEOUT 60)
set_tests_properties(threads_np4 threads_np4_shm_off threads_np3_serialized threads_np3_funneled
                     PROPERTIES LABELS threads)
