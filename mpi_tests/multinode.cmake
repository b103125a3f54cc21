# Multinode tests (label "multinode"): fuze across the nodes of an emulated
# cluster (mpi_tests/cluster/cluster.sh: network + UTS/IPC/mount namespaces,
# 4 nodes x 2 slots, mpirun over TCP through an rsh agent). A fixture brings
# the cluster up before the first case and down after the last; the cases
# share it under a RESOURCE_LOCK. Every case runs mpi_tests/cluster/multinode.sh
# (see its header for what each checks) and exits 77 (skipped) where the
# harness cannot run (not root, no `ip netns`/`unshare`/`nsenter`).
#
# Not part of the default test preset (its filter excludes the label): run them
# with `ctest --preset multinode` (.ci/run does) or `ctest --test-dir
# build/default -L multinode`.
#
# The cluster's state directory is in this build tree, so the namespaces and
# the subnet, named after a hash of its path, differ between build trees.
if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux" OR NOT FUZE_BUILD_APPS
   OR NOT TARGET heat2d OR NOT TARGET nqueens OR NOT TARGET kvstore OR NOT TARGET fuze-bench)
  return()
endif()
# Open MPI only. The harness is built on Open MPI's launcher: cluster.sh starts the
# node daemons with mpirun's rsh agent (--mca plm_rsh_agent, plm_rsh_no_tree_spawn),
# passes osc/btl/oob MCA settings and keepalive of ORTE's daemons, and the cases check
# Open MPI's own messages (the osc/pt2pt fix fuze_init names, "ORTE has lost
# communication"). Hydra has other launch and failure semantics, so with MPICH
# (preset mpich) these tests are not registered; the cross-node transport is covered
# there by the *_nolocal tests (every rank on a node of its own, RMA through the netmod).
if(NOT FUZE_MPI_FLAVOR STREQUAL "openmpi")
  message(STATUS "multinode tests: Open MPI only (the emulated cluster drives Open MPI's "
                 "mpirun), not registered with ${FUZE_MPI_FLAVOR}")
  return()
endif()
find_program(FUZE_BASH bash)
if(NOT FUZE_BASH)
  message(STATUS "bash not found: the multinode tests are not registered")
  return()
endif()

# test_transport is defined by transport.cmake, included after this file
# (its target is resolved at generation time).
set(_mn_cluster ${CMAKE_CURRENT_SOURCE_DIR}/cluster/cluster.sh)
set(_mn_state ${CMAKE_CURRENT_BINARY_DIR}/cluster-state)
# CLUSTER_TIMEOUT bounds each mpirun of a case (cluster.sh run exits 124).
set(_mn_env "CLUSTER_STATE=${_mn_state};CLUSTER_TIMEOUT=120")

add_test(NAME multinode_cluster_up COMMAND ${FUZE_BASH} ${_mn_cluster} up 4)
add_test(NAME multinode_cluster_down COMMAND ${FUZE_BASH} ${_mn_cluster} down)
set_tests_properties(multinode_cluster_up PROPERTIES FIXTURES_SETUP fuze_cluster)
set_tests_properties(multinode_cluster_down PROPERTIES FIXTURES_CLEANUP fuze_cluster)
set_tests_properties(multinode_cluster_up multinode_cluster_down PROPERTIES
  LABELS multinode RESOURCE_LOCK fuze_cluster SKIP_RETURN_CODE 77 TIMEOUT 60
  ENVIRONMENT "${_mn_env}")

# fuze_multinode_test(<name> TIMEOUT <s> CASE <case> [args...])
function(fuze_multinode_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "CASE" ${ARGN})
  add_test(NAME ${name}
    COMMAND ${FUZE_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/cluster/multinode.sh
            --cluster ${_mn_cluster}
            --heat2d $<TARGET_FILE:heat2d> --kvstore $<TARGET_FILE:kvstore>
            --nqueens $<TARGET_FILE:nqueens> --transport $<TARGET_FILE:test_transport>
            --bench $<TARGET_FILE:fuze-bench>
            --work ${CMAKE_CURRENT_BINARY_DIR}/multinode/${name}
            ${T_CASE})
  set_tests_properties(${name} PROPERTIES
    LABELS multinode FIXTURES_REQUIRED fuze_cluster RESOURCE_LOCK fuze_cluster
    SKIP_RETURN_CODE 77 TIMEOUT ${T_TIMEOUT} PROCESSORS 2
    ENVIRONMENT "${_mn_env}" FAIL_REGULAR_EXPRESSION "FAIL: ")
endfunction()

# Ranks on their nodes, node-local storage and /dev/shm private; domain=node
# plans from the real hostnames (f=1, f=2).
fuze_multinode_test(multinode_plan TIMEOUT 120 CASE plan)
# Debian's osc=^ucx,pt2pt: fuze_init's message names the fix, which works.
fuze_multinode_test(multinode_osc_message TIMEOUT 90 CASE osc)
# Stack/map windows on ranks that really span nodes (test_transport nodes);
# test_transport's one-node mode skips there, saying why.
fuze_multinode_test(multinode_transport TIMEOUT 90 CASE transport)
# heat2d: in-job wipe of whole nodes, f=1 (each node) and f=2 (each pair).
fuze_multinode_test(multinode_wipe TIMEOUT 120 CASE wipe)
# More than f nodes lost: FUZE_ERR_UNRECOVERABLE in the job and at a restart.
fuze_multinode_test(multinode_unrecoverable TIMEOUT 150 CASE unrecoverable)
# heat2d with node-local dir=: node I killed with its disk, the same command
# restarts, decoding the node's files.
foreach(_node 1 2 3 4)
  fuze_multinode_test(multinode_kill_node${_node} TIMEOUT 120 CASE kill ${_node})
endforeach()
# node1 holds rank 0 and DIR/manifest: the other nodes' copies of the manifest
# (one per failure domain) name the restart point.
# A frozen node (link down, processes stopped): the job aborts in seconds
# (TCP keepalive); the same command restarts.
fuze_multinode_test(multinode_freeze TIMEOUT 150 CASE freeze 3)
# kvstore and nqueens: node wipes (f=1, f=2) and a node kill + restart.
fuze_multinode_test(multinode_kvstore TIMEOUT 200 CASE kvstore)
fuze_multinode_test(multinode_nqueens TIMEOUT 200 CASE nqueens)
# fuze-bench --domain node, briefly: update, checkpoint, recovery and link
# across the nodes complete with every check of the bench passed (backups
# verified after the update loops, nothing-changed checkpoints send nothing,
# recovered arrays exact). No timing is asserted.
fuze_multinode_test(multinode_bench TIMEOUT 200 CASE bench)
