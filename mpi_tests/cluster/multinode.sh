#!/usr/bin/env bash
# multinode.sh: fuze's multinode test cases, run on the emulated cluster of
# cluster.sh (4 nodes x 2 slots, brought up by the CTest fixture, see
# mpi_tests/multinode.cmake). Every case runs the example apps on 8 ranks,
# ranks 2i-2 and 2i-1 on node i, with the default domain=node (so node i is
# failure domain i-1), and checks the final answer against a failure-free
# run. Several scenarios share one mpirun where the library allows it
# (successive in-job wipes), as a launch over the nodes is costly.
#
# usage: multinode.sh --cluster CLUSTER_SH --heat2d PATH --kvstore PATH
#          --nqueens PATH --transport PATH --bench PATH --work DIR CASE [ARG]
#   plan            ranks sit on the nodes; domain=node plans from the real
#                   hostnames (4 domains, no block with two ranks of a node,
#                   no backup on a member's node), f=1 and f=2
#   osc             Debian's osc=^ucx,pt2pt: fuze_init fails naming the fix;
#                   the fix it names (OMPI_MCA_osc=^ucx) works
#   wipe            heat2d: in-job wipe of whole nodes, f=1 (every node in
#                   turn) and f=2 (every pair of nodes in turn)
#   unrecoverable   more than f nodes lost: FUZE_ERR_UNRECOVERABLE, in the job
#                   (f=1, f=2) and at a restart (f=1, two nodes' disks gone)
#   kill I          heat2d with node-local dir=: node I killed (cluster.sh
#                   kill) during the run, its disk wiped, the same command
#                   restarts and decodes the node's 2 files
#   freeze I        node I frozen (link down, processes stopped): the job
#                   must abort within seconds (TCP keepalive); the node is
#                   rebooted and wiped, and the same command restarts
#   transport       test_transport on ranks that really span nodes (stack/map
#                   windows: accumulates, shm=on refused); its one-node mode
#                   says it assumes one node and skips (77)
#   kvstore         kvstore: failure-free run, in-job node wipes (f=1, f=2),
#                   node kill + restart; every digest equal to the first's
#   nqueens         nqueens: the same with the known solution count
#   bench           fuze-bench --domain node, briefly: update (f=1, 2; sync=op
#                   and batch; each context's backups checked with fuze_verify
#                   after its loops), checkpoint (nothing changed sends no
#                   parity byte), recovery (whole nodes wiped, every double
#                   restored), link; completes with every check passed. No
#                   timing is checked.
# Exit status: 0 pass, 1 fail (with "FAIL: ..."), 77 skipped (no privileges).
set -euo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

CL="" WORK="" HEAT2D="" KVSTORE="" NQUEENS="" TRANSPORT="" BENCH=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --cluster) CL=$2; shift 2 ;;
    --heat2d) HEAT2D=$2; shift 2 ;;
    --kvstore) KVSTORE=$2; shift 2 ;;
    --nqueens) NQUEENS=$2; shift 2 ;;
    --transport) TRANSPORT=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    -*) fail "unknown option '$1'" ;;
    *) break ;;
  esac
done
[[ -n $CL && -n $WORK && $# -ge 1 ]] || fail "usage: multinode.sh --cluster CLUSTER_SH --heat2d PATH --kvstore PATH --nqueens PATH --transport PATH --bench PATH --work DIR CASE [ARG]"
for app in "$HEAT2D" "$KVSTORE" "$NQUEENS" "$TRANSPORT" "$BENCH"; do
  [[ -x $app ]] || fail "'$app' is not an executable (--heat2d, --kvstore, --nqueens, --transport, --bench)"
done
CASE=$1
shift

# No privileges: skip (77), like the fixture that could not bring the cluster up.
rc=0
"$CL" check >/dev/null 2>&1 || rc=$?
[[ $rc -ne 77 ]] || { echo "SKIP: the cluster harness cannot run here ($("$CL" check 2>&1 || true))"; exit 77; }
"$CL" status || fail "the cluster is not up (the multinode_cluster_up fixture should have started it)"

NODES=4 NP=8
LOCAL=$("$CL" local) # node-local storage: the same path on every node, private to each
case $WORK in ""|/) fail "refusing work directory '$WORK'" ;; esac
rm -rf -- "$WORK"
mkdir -p -- "$WORK"
# This case's node-local directory, emptied on every node.
NAME=$(basename -- "$WORK")
DIR=$LOCAL/$NAME
clear_local() {
  local i
  for ((i = 1; i <= NODES; i++)); do rm -rf -- "$("$CL" local "$i")/${NAME:?}"; done
}
clear_local

# On the way out (a failed check included): no job of this case left running,
# no node left frozen.
FROZEN=""
cleanup() {
  if [[ -n ${RUN_PID:-} ]] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  [[ -z $FROZEN ]] || "$CL" kill "$FROZEN" || true
}
trap cleanup EXIT

STEP=0 LOG="" RC=0 SECS=""
# run NAME CMD ARGS...: runs CMD on the cluster (8 ranks), output in
# WORK/<n>-NAME.log; sets RC, LOG and SECS.
run() {
  local name=$1
  shift
  start "$name" "$@"
  finish
}
# start NAME CMD ARGS...: the same in the background (PID in RUN_PID).
RUN_PID="" T0=0
start() {
  local name=$1
  shift
  STEP=$((STEP + 1))
  LOG=$WORK/$STEP-$name.log
  echo "== ($STEP) $name: cluster.sh run $NP $*"
  T0=$(date +%s%N)
  "$CL" run "$NP" "$@" >"$LOG" 2>&1 </dev/null &
  RUN_PID=$!
}
finish() {
  RC=0
  wait "$RUN_PID" || RC=$?
  local ms=$((($(date +%s%N) - T0) / 1000000))
  SECS=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  echo "== ($STEP) exit status $RC after $SECS s (log $LOG)"
  [[ $RC -ne 124 ]] || { show_log; fail "timed out (CLUSTER_TIMEOUT)"; }
}

show_log() {
  echo "---- $LOG (last 40 lines) ----"
  tail -n 40 -- "$LOG"
  echo "---- end of $LOG ----"
}
must() { # must WHAT EXTENDED_REGEX
  grep -Eq -- "$2" "$LOG" || { show_log; fail "$1: no line matches /$2/"; }
}
must_fixed() { # must_fixed WHAT STRING
  grep -Fq -- "$2" "$LOG" || { show_log; fail "$1: the output does not contain: $2"; }
}
must_not() {
  if grep -Eq -- "$2" "$LOG"; then
    show_log
    fail "$1: unexpected line: $(grep -E -m1 -- "$2" "$LOG")"
  fi
}
ok() { # ok WHAT: exit status 0
  [[ $RC -eq 0 ]] || { show_log; fail "$1: exit status $RC"; }
}
failed() { # failed WHAT: exit status not 0
  [[ $RC -ne 0 ]] || { show_log; fail "$1: exit status 0, expected a failure"; }
}
field() { # field SED_EXPR: the last line's capture
  sed -n "$1" "$LOG" | tail -n 1
}

# ---- the apps' final answers (the same as restart_cycle.sh's) --------------
HEAT_ARGS=(--nx 64 --ny 64 --steps 120)
heat2d_checked() { # the run's protected checksum equals its failure-free reference
  local what=$1 prot ref
  ok "$what"
  must "$what" '^heat2d: checksum matches failure-free run$'
  prot=$(field 's/^heat2d: checksum \([0-9a-f]\{16\}\), sum .* (protected run)$/\1/p')
  ref=$(field 's/^heat2d: checksum \([0-9a-f]\{16\}\), sum .* (failure-free reference)$/\1/p')
  [[ -n $prot && $prot == "$ref" ]] || { show_log; fail "$what: protected checksum '$prot' != failure-free '$ref'"; }
  echo "== $what: checksum $prot equals the failure-free run's"
}
heat2d_recoveries() { # heat2d_recoveries WHAT N
  local n
  n=$(field 's/^heat2d: protected run: .*, \([0-9][0-9]*\) recover\(y\|ies\),.*/\1/p')
  [[ $n == "$2" ]] || { show_log; fail "$1: $n recoveries, expected $2"; }
}
kv_digest() { field 's/^kvstore: final map digest \([0-9a-f]\{16\} over [0-9][0-9]* pairs\).*/\1/p'; }
KV_SUCCESS='^kvstore: all [0-9]+ keys match the reference replay$'
NQ_SUCCESS='^nqueens: count matches$'
nq_count() { field 's/^nqueens: count \([0-9][0-9]*\), known value.*/\1/p'; }
UNRECOVERABLE='returned FUZE_ERR_UNRECOVERABLE .*[Uu]nrecoverable'

# Wipe specs: node i is ranks 2i-2 and 2i-1.
ranks_of() { # ranks_of I [J...] -> "a+b+..."
  local out="" i
  for i in "$@"; do out+="${out:++}$((2 * i - 2))+$((2 * i - 1))"; done
  echo "$out"
}

# ---- node loss during a persisted run ---------------------------------------
# lose_node_and_restart HOW NODE WHAT CMD ARGS...: starts CMD (with
# dir=$DIR in its --config) in the background, waits until the manifest
# (on rank 0's node) names epoch >= KILL_AT (default 2), then `cluster.sh HOW NODE`; the job
# must stop with a failure. For freeze, the node is then rebooted (kill).
# The node's disk is wiped and the same command run again (LOG: the rerun).
MANIFEST() { echo "$("$CL" local 1)/$NAME/manifest"; }
DETECT_LIMIT=45 KILL_AT=2
newest_epoch() { sed -n 's/^complete \([0-9][0-9]*\) .*/\1/p' "$(MANIFEST)" 2>/dev/null | head -n 1; }
lose_node_and_restart() {
  local how=$1 node=$2 what=$3
  shift 3
  start "$what-$how-node$node" "$@"
  local waited=0
  until (($(newest_epoch || true) + 0 >= KILL_AT)); do
    if ! kill -0 "$RUN_PID" 2>/dev/null; then
      finish
      show_log
      fail "$what: the run ended before epoch $KILL_AT was persisted"
    fi
    ((waited++ < 2400)) || { "$CL" kill "$node"; finish; fail "$what: epoch $KILL_AT not persisted within 120 s"; }
    sleep 0.05
  done
  echo "== manifest: $(grep -E '^complete' "$(MANIFEST)" | tr '\n' ' ')"
  local t1
  t1=$(date +%s%N)
  [[ $how != freeze ]] || FROZEN=$node
  "$CL" "$how" "$node"
  finish
  local ms=$((($(date +%s%N) - t1) / 1000000))
  echo "== the job stopped $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s after cluster.sh $how $node"
  if [[ $how == freeze ]]; then
    "$CL" kill "$node" # reboot it
    FROZEN=""
  fi
  [[ $RC -ne 0 ]] || { show_log; fail "$what: exit status 0 although node $node was lost (it finished first?)"; }
  ((ms <= DETECT_LIMIT * 1000)) || { show_log; fail "$what: the job took $((ms / 1000)) s (> $DETECT_LIMIT s) to notice the loss of node $node"; }
  [[ $how != freeze ]] || must "$what (frozen node)" "ORTE has lost communication with a remote daemon|lost connection|peer hung up"
  "$CL" wipe "$node"
  [[ -f $(MANIFEST) ]] || [[ $node -eq 1 ]] || fail "$what: no manifest on node 1 after the loss"
  run "$what-rerun" "$@"
}

# ---- the cases -------------------------------------------------------------
node_of() { echo $(($1 / 2 + 1)); }

# check_plan F: the verbose plan in LOG is over the 4 nodes.
check_plan() {
  local f=$1 line members backups r seen="" nb=0
  must "plan f=$f" "^fuze: 8 ranks \\(8 compute\\), 4 failure domains, faults=$f, "
  must_not "plan f=$f" "share one node"
  while IFS= read -r line; do
    nb=$((nb + 1))
    members=${line#*: ranks }
    members=${members%%;*}
    backups=${line##*backups on ranks }
    local mnodes="" bnodes="" n
    for r in $members; do
      n=$(node_of "$r")
      [[ " $mnodes " != *" $n "* ]] || fail "plan f=$f: $line: two members on node$n"
      mnodes+=" $n"
      seen+=" $r"
    done
    [[ $(wc -w <<<"$backups") -eq $f ]] || fail "plan f=$f: $line: not $f backups"
    for r in $backups; do
      n=$(node_of "$r")
      [[ " $mnodes " != *" $n "* ]] || fail "plan f=$f: $line: backup rank $r on a member's node node$n"
      [[ " $bnodes " != *" $n "* ]] || fail "plan f=$f: $line: two backups on node$n"
      bnodes+=" $n"
    done
  done < <(grep -E '^fuze:   block [0-9]+: ranks ' "$LOG")
  ((nb >= 1)) || fail "plan f=$f: no block lines"
  [[ $(tr ' ' '\n' <<<"$seen" | sed '/^$/d' | sort -n | tr '\n' ' ') == "0 1 2 3 4 5 6 7 " ]] ||
    fail "plan f=$f: the blocks hold ranks '$seen', not each of 0..7 once"
  echo "== plan f=$f: $nb blocks over the 4 nodes, no two members or backups of a block on one node"
}

case_plan() {
  # Ranks on nodes, private node-local storage and /dev/shm.
  # shellcheck disable=SC2016 # expanded by the ranks' shells
  run placement sh -c 'r=$OMPI_COMM_WORLD_RANK; mkdir -p "$1" && : >"$1/rank-$r" && : >"/dev/shm/fuze-mn-$r" &&
    echo "rank $r on $(hostname): storage $(ls "$1" | tr "\n" " ")"' sh "$DIR"
  ok placement
  local r i want got
  for ((r = 0; r < NP; r++)); do must placement "^rank $r on node$(node_of "$r"): "; done
  for ((i = 1; i <= NODES; i++)); do
    want="rank-$((2 * i - 2)) rank-$((2 * i - 1)) "
    got=$(find "$("$CL" local "$i")/$NAME" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ')
    [[ $got == "$want" ]] || fail "node $i's storage holds '$got', expected '$want' (node-local storage is not private)"
    got=$("$CL" exec "$i" sh -c 'ls /dev/shm | grep "^fuze-mn-" | tr "\n" " "')
    [[ $got == "fuze-mn-$((2 * i - 2)) fuze-mn-$((2 * i - 1)) " ]] || fail "node $i's /dev/shm holds '$got'"
    "$CL" exec "$i" sh -c 'rm -f /dev/shm/fuze-mn-*'
  done
  echo "== ranks 2i-2, 2i-1 on node i; each node sees only its own storage and /dev/shm"
  run plan-f1 "$HEAT2D" "${HEAT_ARGS[@]}" --every 10 --config "faults=1,verbose=1"
  heat2d_checked "plan f=1"
  check_plan 1
  run plan-f2 "$HEAT2D" "${HEAT_ARGS[@]}" --every 10 --config "faults=2,verbose=1"
  heat2d_checked "plan f=2"
  check_plan 2
}

case_osc() {
  # Exactly Debian's default (/etc/openmpi/openmpi-mca-params.conf).
  CLUSTER_OSC='^ucx,pt2pt' run osc-debian-default "$HEAT2D" "${HEAT_ARGS[@]}" --config "faults=1"
  failed "osc=^ucx,pt2pt"
  # An agreed error names the rank that found it ("rank F found: ..." on F, "rank R reports
  # the error agreed from rank F: ..." elsewhere), then the message.
  must "osc=^ucx,pt2pt" "heat2d: fuze_init returned FUZE_ERR_MPI \\(-4\\): rank [0-9]+ (found|reports the error agreed from rank [0-9]+): fuze_init: the ranks span nodes"
  must_fixed "osc=^ucx,pt2pt" "fuze_init: the ranks span nodes and the MPI library cannot make an RMA window over them (MPI_Win_allocate failed on rank "
  must_fixed "osc=^ucx,pt2pt" " or another rank); with Open MPI without RDMA hardware (TCP between nodes) enable the osc/pt2pt component: mpirun --mca osc ^ucx (or the environment OMPI_MCA_osc=^ucx); Debian's default osc = ^ucx,pt2pt (/etc/openmpi/openmpi-mca-params.conf) cannot make windows across nodes"
  must_not "osc=^ucx,pt2pt" "checksum matches|heat2d: protecting"
  echo "== osc=^ucx,pt2pt: fuze_init failed naming mpirun --mca osc ^ucx / OMPI_MCA_osc=^ucx"
  # The fix the message names, through the environment.
  CLUSTER_OSC='' OMPI_MCA_osc='^ucx' run osc-env-fix "$HEAT2D" "${HEAT_ARGS[@]}" --config "faults=1"
  heat2d_checked "OMPI_MCA_osc=^ucx"
}

case_wipe() {
  # f=1: every node wiped in turn (each a recovery of its own), at several
  # phases of the two-phase commit.
  local spec
  spec="wipe:ranks=$(ranks_of 1):at=checkpoint:2/wipe:ranks=$(ranks_of 2):at=checkpoint:5:phase=partial"
  spec+="/wipe:ranks=$(ranks_of 3):at=checkpoint:8:phase=promoted/wipe:ranks=$(ranks_of 4):at=checkpoint:11"
  run wipe-f1-every-node "$HEAT2D" "${HEAT_ARGS[@]}" --every 10 --config "faults=1,inject=$spec"
  heat2d_checked "f=1, nodes 1..4 wiped in turn"
  heat2d_recoveries "f=1, nodes 1..4 wiped in turn" 4
  # f=2: every pair of nodes wiped in turn.
  spec="" 
  local pair e=2
  for pair in "1 2" "3 4" "1 3" "2 4" "1 4" "2 3"; do
    # shellcheck disable=SC2086
    spec+="${spec:+/}wipe:ranks=$(ranks_of $pair):at=checkpoint:$e"
    e=$((e + 3))
  done
  run wipe-f2-every-pair "$HEAT2D" "${HEAT_ARGS[@]}" --every 5 --config "faults=2,inject=$spec"
  heat2d_checked "f=2, every pair of nodes wiped in turn"
  heat2d_recoveries "f=2, every pair of nodes wiped in turn" 6
}

case_unrecoverable() {
  run unrecoverable-f1 "$HEAT2D" "${HEAT_ARGS[@]}" --every 10 \
    --config "faults=1,inject=wipe:ranks=$(ranks_of 1 2):at=checkpoint:3"
  failed "f=1, 2 nodes wiped"
  must "f=1, 2 nodes wiped" "$UNRECOVERABLE"
  must_not "f=1, 2 nodes wiped" "checksum matches"
  run unrecoverable-f2 "$HEAT2D" "${HEAT_ARGS[@]}" --every 10 \
    --config "faults=2,inject=wipe:ranks=$(ranks_of 2 3 4):at=checkpoint:3"
  failed "f=2, 3 nodes wiped"
  must "f=2, 3 nodes wiped" "$UNRECOVERABLE"
  must_not "f=2, 3 nodes wiped" "checksum matches"
  # At a restart: a persisted run, then the disks of nodes 2 and 3 (a member
  # and the backup of a block, f=1) lost.
  local cmd=("$HEAT2D" "${HEAT_ARGS[@]}" --every 10 --config "faults=1,dir=$DIR")
  run persisted "${cmd[@]}"
  heat2d_checked "persisted run"
  "$CL" wipe 2
  "$CL" wipe 3
  run unrecoverable-restart "${cmd[@]}"
  failed "restart with nodes 2 and 3's disks lost"
  must "restart with nodes 2 and 3's disks lost" "fuze_init returned FUZE_ERR_UNRECOVERABLE .*unrecoverable"
  must_not "restart with nodes 2 and 3's disks lost" "checksum matches|restarted from the persisted"
}

case_kill() {
  local node=${1:?kill: which node}
  local cmd=("$HEAT2D" "${HEAT_ARGS[@]}" --every 2 --config "faults=1,dir=$DIR")
  lose_node_and_restart kill "$node" heat2d "${cmd[@]}"
  heat2d_checked "restart after node $node was lost with its disk"
  must "restart" '^heat2d: restarted from the persisted epoch [0-9]+: resuming at step '
  must "restart" '^fuze: restart from epoch [0-9]+: rebuilding 2 files by decoding'
  echo "== $(grep -E -m1 '^heat2d: restarted from' "$LOG")"
}

case_freeze() {
  local node=${1:?freeze: which node}
  local cmd=("$HEAT2D" "${HEAT_ARGS[@]}" --every 2 --config "faults=1,dir=$DIR")
  lose_node_and_restart freeze "$node" heat2d "${cmd[@]}"
  heat2d_checked "restart after node $node froze"
  must "restart" '^heat2d: restarted from the persisted epoch [0-9]+: resuming at step '
  must "restart" '^fuze: restart from epoch [0-9]+: rebuilding 2 files by decoding'
}

case_transport() {
  # 4 ranks: nodes 1 and 2. The same expectations as the one-node "split" test
  # (FUZE_DEBUG_SPLIT_NODES), here without the hook.
  NP=4 run transport-nodes "$TRANSPORT" nodes
  ok "test_transport nodes"
  must "test_transport nodes" '^test_transport \(nodes\): 4 ranks on 2 node\(s\)$'
  must "test_transport nodes" '^test_transport \(nodes\): OK \(0 failed checks\)$'
  # The one-node mode says why it cannot run here and skips.
  run transport-shm "$TRANSPORT" shm
  [[ $RC -eq 77 ]] || { show_log; fail "test_transport shm across nodes: exit status $RC, expected 77 (skip)"; }
  must "test_transport shm" '^test_transport \(shm\): SKIP: assumes every rank on one node, and these 8 ranks span 4 nodes'
  must_not "test_transport shm" 'OK \(|FAILED'
}

case_kvstore() {
  local args=(--rounds 12 --ops 150 --keys 2048 --every 2) ref got
  run kvstore-failure-free "$KVSTORE" "${args[@]}" --config "faults=1" --expect-recoveries 0
  ok "kvstore failure-free"
  must "kvstore failure-free" "$KV_SUCCESS"
  ref=$(kv_digest)
  [[ -n $ref ]] || fail "kvstore failure-free: no digest"
  echo "== kvstore failure-free digest: $ref"
  local spec
  spec="wipe:ranks=$(ranks_of 1):at=checkpoint:1/wipe:ranks=$(ranks_of 2):at=checkpoint:2"
  spec+="/wipe:ranks=$(ranks_of 3):at=checkpoint:3/wipe:ranks=$(ranks_of 4):at=checkpoint:4"
  run kvstore-wipe-f1 "$KVSTORE" "${args[@]}" --config "faults=1,inject=$spec" --expect-recoveries 4
  kv_same "kvstore f=1, nodes 1..4 wiped in turn" "$ref"
  spec="wipe:ranks=$(ranks_of 1 4):at=checkpoint:2/wipe:ranks=$(ranks_of 2 3):at=checkpoint:4"
  run kvstore-wipe-f2 "$KVSTORE" "${args[@]}" --config "faults=2,inject=$spec" --expect-recoveries 2
  kv_same "kvstore f=2, nodes 1+4 then 2+3 wiped" "$ref"
  # 6 checkpoints in all: node 3 dies as soon as one is persisted.
  KILL_AT=1 lose_node_and_restart kill 3 kvstore "$KVSTORE" "${args[@]}" --config "faults=1,dir=$DIR"
  kv_same "kvstore restart after node 3 was lost with its disk" "$ref"
  must "kvstore restart" '^kvstore: restarted from the persisted epoch [0-9]+: resuming '
  must "kvstore restart" '^fuze: restart from epoch [0-9]+: rebuilding 2 files by decoding'
  must "kvstore restart" 'map right after the restart matches the replay'
}
kv_same() {
  ok "$1"
  must "$1" "$KV_SUCCESS"
  local got
  got=$(kv_digest)
  [[ $got == "$2" ]] || { show_log; fail "$1: digest '$got' != failure-free '$2'"; }
  echo "== $1: digest equals the failure-free run's"
}

case_nqueens() {
  # The failure-free answer is the known count (OEIS A000170), which nqueens
  # checks itself; here also explicitly.
  # N = 8 (92 solutions, 15 rounds) for the wipes; N = 9 (352, 27 rounds,
  # longer) for the kill, which must land before the search ends.
  local args=(--n 8 --every 20) want=92
  local spec
  spec="wipe:ranks=$(ranks_of 1):at=checkpoint:2/wipe:ranks=$(ranks_of 2):at=checkpoint:4"
  spec+="/wipe:ranks=$(ranks_of 3):at=checkpoint:6/wipe:ranks=$(ranks_of 4):at=checkpoint:8"
  run nqueens-wipe-f1 "$NQUEENS" "${args[@]}" --config "faults=1,inject=$spec"
  nq_same "nqueens f=1, nodes 1..4 wiped in turn" "$want" 4
  spec="wipe:ranks=$(ranks_of 2 4):at=checkpoint:2/wipe:ranks=$(ranks_of 1 3):at=checkpoint:5"
  run nqueens-wipe-f2 "$NQUEENS" "${args[@]}" --config "faults=2,inject=$spec"
  nq_same "nqueens f=2, nodes 2+4 then 1+3 wiped" "$want" 2
  lose_node_and_restart kill 2 nqueens "$NQUEENS" --n 9 --every 40 --config "faults=1,dir=$DIR"
  nq_same "nqueens restart after node 2 was lost with its disk" 352 ""
  must "nqueens restart" '^nqueens: restarted from the persisted epoch [0-9]+: '
  must "nqueens restart" '^fuze: restart from epoch [0-9]+: rebuilding 2 files by decoding'
}
nq_same() { # nq_same WHAT COUNT RECOVERIES
  ok "$1"
  must "$1" "$NQ_SUCCESS"
  local got
  got=$(nq_count)
  [[ $got == "$2" ]] || { show_log; fail "$1: count '$got' != $2"; }
  [[ -z $3 ]] || must "$1" "^nqueens: search done in .*, $3 recoveries$"
  echo "== $1: count $got, the failure-free answer"
}

case_bench() {
  run bench "$BENCH" --domain node --bench update,checkpoint,recovery,link --reps 1 \
    --ops 200 --batch-ops 2000 --update-faults 1,2 --ckpt-size 1M --ckpt-changed 0,100 \
    --ckpt-faults 1 --rec-size 1M --rec-faults 2 --link-bytes 1M
  ok "fuze-bench"
  must "fuze-bench" '^# fuze-bench: 8 ranks, 1 repetitions, chunk 65536 bytes, domain=node \(4 domains\)$'
  must "fuze-bench" '^# total [0-9.]+ s; checks passed$'
  must_not "fuze-bench" 'MISMATCH|checks FAILED'
  local f s m n
  for f in 1 2; do
    for s in op batch; do
      for m in fusion replicate; do
        must "update f=$f sync=$s $m" "^check update f=$f sync=$s $m: fuze_verify after [0-9]+ puts and pushes per rank: [1-9][0-9]* bytes compared, 0 mismatches: OK$"
      done
    done
  done
  for m in fusion replicate; do
    must "checkpoint $m" "^check checkpoint size=1MiB changed=0% f=1 $m: 0 parity bytes sent with nothing changed: OK$"
  done
  # Recovery: t = 1, 2 whole nodes wiped, each repetition's doubles checked
  # (a wrong one is a MISMATCH line above); both rows measured.
  for n in 1 2; do
    must "recovery t=$n" "^\| recovery \| t=$n f=2 size=1MiB \| [0-9.e+]+ ms .*\| [0-9.e+]+ ms "
  done
  must "link" '^### link: every rank with a partner in another failure domain, all pairs at once$'
  must "link" '^batch goal \(sync=batch at least half the rate the bandwidth allows for its bytes\): met in [0-9]+ of 20 rows'
}

case $CASE in
  bench) case_bench ;;
  plan) case_plan ;;
  osc) case_osc ;;
  wipe) case_wipe ;;
  unrecoverable) case_unrecoverable ;;
  kill) case_kill "$@" ;;
  freeze) case_freeze "$@" ;;
  transport) case_transport ;;
  kvstore) case_kvstore ;;
  nqueens) case_nqueens ;;
  *) fail "unknown case '$CASE'" ;;
esac
clear_local
echo "== PASS: $CASE $*"
