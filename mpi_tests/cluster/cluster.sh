#!/usr/bin/env bash
# cluster.sh: an emulated cluster of Linux "nodes" on one machine, for running
# fuze's MPI jobs across nodes (multinode tests, experiments). Needs root (or
# CAP_SYS_ADMIN + CAP_NET_ADMIN), iproute2 (`ip netns`) and util-linux
# (`unshare`, `nsenter`); without them every command exits with status 77.
#
#   cluster.sh up N            start nodes node1..nodeN (2 slots each)
#   cluster.sh run NP CMD ARGS...
#                              mpirun -np NP CMD ARGS... from the head over the
#                              nodes (ranks 2i-2 and 2i-1 on node i); exits
#                              with mpirun's status
#   cluster.sh kill I          SIGKILL every process of node I (the node
#                              crashes: its /dev/shm is emptied, its node-local
#                              storage stays until `wipe I`; the node can run
#                              the next job, like a rebooted or replaced node)
#   cluster.sh freeze I        node I stops answering: its link goes down and
#                              every process of it is stopped (SIGSTOP); the
#                              job notices through TCP keepalive (seconds).
#                              `kill I` reboots it.
#   cluster.sh wipe I          delete node I's node-local storage (its disk)
#   cluster.sh down            stop every node, remove everything `up` made
#   cluster.sh exec I CMD ARGS...
#                              run a command on node I (in its namespaces)
#   cluster.sh local [I]       print the node-local storage path (the same on
#                              every node); with I, the host directory that
#                              backs node I's
#   cluster.sh status          exit 0 when the cluster is up (and print it)
#   cluster.sh check           exit 0 when the harness can run here, else 77
#
# State directory: $CLUSTER_STATE, default ./cluster-state. Everything the
# harness makes is named after a hash of its absolute path (namespaces
# fz<hash>-hub/-head/-n<i>, subnet 10.x.y.0/24), so clusters with different
# state directories (e.g. two build trees) never collide.
#
# How a node is made: a network namespace with a veth into a bridge in a hub
# namespace, entered by a holder process with new UTS (hostname node<i>),
# IPC and mount namespaces (its own /dev/shm tmpfs, its own /etc/hosts, and
# its private directory STATE/nodes/node<i>/local mounted on STATE/local:
# node-local storage at one path). mpirun runs in a head namespace (hostname
# head) and starts its daemons through an rsh agent (STATE/agent) that enters
# the node's namespaces with nsenter: no sshd.
#
# mpirun settings (`run`): hostfile STATE/hostfile; --bind-to none and
# mpi_yield_when_idle=1 (all the nodes share the machine's cores); osc ^ucx
# (Debian's default ^ucx,pt2pt cannot make windows across nodes; override with
# CLUSTER_OSC, e.g. to test that failure; CLUSTER_OSC= passes none); btl and
# oob over the cluster subnet only; OOB TCP keepalive 5 s / 1 s / 3 probes, so a frozen node aborts the job
# within seconds instead of minutes. CLUSTER_MPIRUN_FLAGS adds flags (split
# on blanks); CLUSTER_TIMEOUT (seconds, default 300) bounds a run: exit 124
# when it expires.
set -euo pipefail

SLOTS=2
KEEPALIVE=(--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 1
           --mca oob_tcp_keepalive_probes 3)

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

skip() {
  echo "cluster.sh: SKIP: $*" >&2
  exit 77
}

usage() {
  sed -n '2,/^# State directory/{/^# State directory/d;s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

STATE=$(realpath -m -- "${CLUSTER_STATE:-./cluster-state}")
HASH=$(printf '%s' "$STATE" | sha256sum | cut -c1-8)
ID=fz${HASH:0:6}
NET_A=$((0x${HASH:0:2} % 200 + 20))
NET_B=$((0x${HASH:2:2}))
PREFIX=10.$NET_A.$NET_B
SUBNET=$PREFIX.0/24
HUB=$ID-hub
HEAD=$ID-head
ENVFILE=$STATE/cluster.env

ns_of() { echo "$ID-n$1"; }
pidfile_of() { echo "$STATE/nodes/node$1/pid"; }

# Privileges and tools, or exit 77.
check_privileges() {
  [[ $(id -u) -eq 0 ]] || skip "needs root (network, mount and UTS namespaces)"
  local t
  for t in ip unshare nsenter mpirun sha256sum realpath; do
    command -v "$t" >/dev/null 2>&1 || skip "'$t' not found (install iproute2, util-linux, openmpi-bin)"
  done
  ip netns list >/dev/null 2>&1 || skip "'ip netns' does not work here"
  unshare --uts --ipc --mount true 2>/dev/null || skip "cannot create UTS/IPC/mount namespaces"
}

load_state() {
  [[ -f $ENVFILE ]] || die "no cluster is up in $STATE (run: cluster.sh up N)"
  # shellcheck disable=SC1090
  source "$ENVFILE"
  [[ ${NODES:-} =~ ^[0-9]+$ ]] || die "$ENVFILE is damaged"
}

node_arg() {
  if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > NODES)); then
    die "no node '$1' (nodes 1..$NODES)"
  fi
}

holder_pid() {
  local f
  f=$(pidfile_of "$1")
  [[ -s $f ]] || die "node $1 has no holder process ($f)"
  cat -- "$f"
}

# Every process in node I's network namespace except its holder.
node_pids() {
  local holder=$2 p
  for p in $(ip netns pids "$(ns_of "$1")" 2>/dev/null); do
    [[ $p == "$holder" ]] || echo "$p"
  done
}

kill_node_processes() { # kill_node_processes I [all]: SIGKILL, wait until gone
  local i=$1 holder=0 pids tries
  [[ ${2:-} == all ]] || holder=$(holder_pid "$i")
  for tries in $(seq 100); do
    pids=$(node_pids "$i" "$holder")
    [[ -n $pids ]] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    ((tries < 100)) && sleep 0.05
  done
  die "node $i: processes survive SIGKILL: $pids"
}

write_agent() {
  # The rsh agent: mpirun calls `agent [-x] HOST COMMAND...` (like ssh).
  cat >"$STATE/agent" <<EOF
#!/usr/bin/env bash
# rsh agent of the emulated cluster in $STATE (made by cluster.sh up):
# runs COMMAND in node HOST's namespaces, as ssh would on a real node.
set -euo pipefail
while [[ \$# -gt 0 && \$1 == -* ]]; do shift; done
host=\${1:?agent: no host}
shift
[[ \$host =~ ^node[0-9]+\$ ]] || { echo "agent: unknown host '\$host'" >&2; exit 255; }
pid=\$(cat -- "$STATE/nodes/\$host/pid" 2>/dev/null) || { echo "agent: \$host is down" >&2; exit 255; }
exec nsenter --target "\$pid" --net --uts --ipc --mount --wd="\$PWD" -- \\
  env TMPDIR="$STATE/nodes/\$host/tmp" /bin/sh -c "\$*"
EOF
  chmod 755 "$STATE/agent"
}

# Delete every namespace of this cluster's ID (also leftovers of an earlier
# cluster with more nodes) after killing what runs in it.
remove_namespaces() {
  local ns p
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$ID-(hub|head|n[0-9]+)$" || true); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    for p in $(seq 100); do
      [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
      sleep 0.05
    done
    ip netns delete "$ns" 2>/dev/null || true
  done
}

cmd_down() {
  remove_namespaces
  # Only what `up` made: the state directory itself only if it is then empty.
  if [[ -d $STATE ]]; then
    # The node's mounts live in their (now gone) mount namespaces: nothing is
    # mounted here. Be sure before deleting.
    if grep -q " $STATE/" /proc/self/mountinfo; then
      die "something is still mounted under $STATE: not deleting it"
    fi
    rm -rf -- "$STATE/nodes" "$STATE/head" "$STATE/local" "$STATE/agent" "$STATE/hosts" \
      "$STATE/hostfile" "$ENVFILE"
    rmdir -- "$STATE" 2>/dev/null || true
  fi
  echo "cluster.sh: down ($ID, $STATE)"
}

cmd_up() {
  local n=${1:-}
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 200)); then
    die "up: N must be 1..200"
  fi
  check_privileges
  [[ -f $ENVFILE ]] && cmd_down >/dev/null
  remove_namespaces
  mkdir -p -- "$STATE/local" "$STATE/head/tmp"
  {
    echo "127.0.0.1 localhost"
    echo "$PREFIX.254 head"
    for ((i = 1; i <= n; i++)); do echo "$PREFIX.$i node$i"; done
  } >"$STATE/hosts"
  for ((i = 1; i <= n; i++)); do echo "node$i slots=$SLOTS"; done >"$STATE/hostfile"
  write_agent
  printf 'NODES=%d\nID=%s\nSUBNET=%s\n' "$n" "$ID" "$SUBNET" >"$ENVFILE"

  if ! ip netns add "$HUB" 2>/dev/null; then
    cmd_down >/dev/null
    skip "cannot create network namespaces (ip netns add $HUB failed)"
  fi
  trap 'cmd_down >/dev/null 2>&1 || true' ERR
  ip -n "$HUB" link set lo up
  ip -n "$HUB" link add br0 type bridge
  ip -n "$HUB" link set br0 up
  # veth pairs are created inside the hub: nothing appears in the root namespace.
  local name addr ns
  for ((i = 0; i <= n; i++)); do
    if ((i == 0)); then
      ns=$HEAD name=vhead addr=$PREFIX.254
    else
      ns=$(ns_of "$i") name=vn$i addr=$PREFIX.$i
    fi
    ip netns add "$ns"
    ip -n "$HUB" link add "$name" type veth peer name eth0 netns "$ns"
    ip -n "$HUB" link set "$name" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  # The nodes' holder processes: each keeps its node's UTS, IPC and mount
  # namespaces alive; the agent and `exec` enter them.
  local d
  for ((i = 1; i <= n; i++)); do
    d=$STATE/nodes/node$i
    mkdir -p -- "$d/local" "$d/tmp"
    # shellcheck disable=SC2016 # $1..$3 and $$ are the inner shell's
    setsid ip netns exec "$(ns_of "$i")" unshare --uts --ipc --mount --propagation private -- \
      /bin/sh -c 'set -e
        hostname "$1"
        mount -t tmpfs -o mode=1777,size=50% tmpfs /dev/shm
        mount --bind "$2/local" "$3/local"
        mount --bind "$3/hosts" /etc/hosts
        echo $$ >"$2/pid.tmp"
        mv "$2/pid.tmp" "$2/pid"
        exec sleep infinity' holder "node$i" "$d" "$STATE" </dev/null >"$d/holder.log" 2>&1 &
  done
  for ((i = 1; i <= n; i++)); do
    local waited=0
    while [[ ! -s $(pidfile_of "$i") ]]; do
      ((waited++ < 200)) || die "node $i did not come up: $(cat "$STATE/nodes/node$i/holder.log")"
      sleep 0.025
    done
  done
  trap - ERR
  echo "cluster.sh: up: $n nodes node1..node$n ($SLOTS slots each), subnet $SUBNET, namespaces $ID-*, state $STATE"
}

cmd_run() {
  local np=${1:-}
  if ! [[ $np =~ ^[0-9]+$ ]] || ((np < 1)); then
    die "run: NP must be a positive integer"
  fi
  shift
  (($# >= 1)) || die "run: no command"
  check_privileges
  load_state
  ((np <= NODES * SLOTS)) || die "run: $np ranks but only $((NODES * SLOTS)) slots on $NODES nodes"
  local extra=()
  # shellcheck disable=SC2206
  [[ -n ${CLUSTER_MPIRUN_FLAGS:-} ]] && extra=($CLUSTER_MPIRUN_FLAGS)
  local flags=(--hostfile "$STATE/hostfile" -np "$np"
               --mca plm_rsh_agent "$STATE/agent" --mca plm_rsh_no_tree_spawn 1
               --bind-to none --mca mpi_yield_when_idle 1
               --mca btl_tcp_if_include "$SUBNET" --mca oob_tcp_if_include "$SUBNET"
               "${KEEPALIVE[@]}" "${extra[@]}")
  # CLUSTER_OSC empty: no --mca osc at all (the MCA files and OMPI_MCA_osc decide).
  [[ -z ${CLUSTER_OSC-^ucx} ]] || flags+=(--mca osc "${CLUSTER_OSC-^ucx}")
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export TMPDIR=$STATE/head/tmp
  # shellcheck disable=SC2016 # $1 and $@ are the inner shell's
  exec timeout --kill-after=10 "${CLUSTER_TIMEOUT:-300}" \
    ip netns exec "$HEAD" unshare --uts --mount --propagation private -- \
    /bin/sh -c 'hostname head && mount --bind "$1" /etc/hosts && shift && exec "$@"' head \
    "$STATE/hosts" mpirun "${flags[@]}" "$@"
}

cmd_kill() {
  load_state
  node_arg "${1:-}"
  kill_node_processes "$1"
  # A crashed node loses its memory, /dev/shm included; it answers again.
  nsenter --target "$(holder_pid "$1")" --mount -- /bin/sh -c 'rm -rf /dev/shm/* /dev/shm/.[!.]* 2>/dev/null; true'
  ip -n "$(ns_of "$1")" link set eth0 up
  echo "cluster.sh: node $1 killed"
}

cmd_freeze() {
  load_state
  node_arg "${1:-}"
  local holder pids
  holder=$(holder_pid "$1")
  ip -n "$(ns_of "$1")" link set eth0 down
  pids=$(node_pids "$1" "$holder")
  # shellcheck disable=SC2086
  [[ -z $pids ]] || kill -STOP $pids 2>/dev/null || true
  echo "cluster.sh: node $1 frozen ($(echo "$pids" | wc -w) processes stopped, link down)"
}

cmd_wipe() {
  load_state
  node_arg "${1:-}"
  local d=$STATE/nodes/node$1/local
  [[ -d $d ]] || die "wipe: $d does not exist"
  find "$d" -mindepth 1 -delete
  echo "cluster.sh: node $1's storage wiped"
}

cmd_exec() {
  load_state
  node_arg "${1:-}"
  local i=$1
  shift
  (($# >= 1)) || die "exec: no command"
  exec nsenter --target "$(holder_pid "$i")" --net --uts --ipc --mount --wd="$PWD" -- \
    env TMPDIR="$STATE/nodes/node$i/tmp" "$@"
}

cmd_local() {
  if [[ $# -eq 0 ]]; then
    echo "$STATE/local"
    return
  fi
  load_state
  node_arg "$1"
  echo "$STATE/nodes/node$1/local"
}

cmd_status() {
  [[ -f $ENVFILE ]] || { echo "cluster.sh: no cluster in $STATE"; exit 1; }
  load_state
  local i ok=0
  for ((i = 1; i <= NODES; i++)); do
    if ! kill -0 "$(holder_pid "$i")" 2>/dev/null; then
      echo "cluster.sh: node $i is not running" >&2
      ok=1
    fi
  done
  echo "cluster.sh: $NODES nodes, subnet $SUBNET, namespaces $ID-*, state $STATE"
  exit "$ok"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    up) cmd_up "$@" ;;
    run) cmd_run "$@" ;;
    kill) check_privileges; cmd_kill "$@" ;;
    freeze) check_privileges; cmd_freeze "$@" ;;
    wipe) cmd_wipe "$@" ;;
    down) check_privileges; cmd_down ;;
    exec) check_privileges; cmd_exec "$@" ;;
    local) cmd_local "$@" ;;
    status) cmd_status ;;
    check) check_privileges; echo "cluster.sh: privileges and tools are there" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
