#!/usr/bin/env bash
# ulfm_run.sh: run an MPI program under ULFM and decide by what the survivors print.
#
#   ulfm_run.sh [--pass N] [--timeout S] [--grace S] [--transport sm|tcp] [--kill RANKS]
#               [--kill-delay MS] -- MPIRUN_ARGS...
#
# --kill R1,R2,...: once every one of those ranks printed "ULFM-PID rank R pid P", wait a random
# 100-1500 ms (--kill-delay MS: exactly MS; the delay is printed so a failure can be replayed)
# and kill -9 them all at once, from outside the job.
# Launches `mpirun --with-ft ulfm --mca pml ob1 --mca btl self,sm|self,tcp MPIRUN_ARGS` in its
# own process group and passes when exactly N distinct ranks printed "ULFM-PASS rank R" and no
# line starts with "ULFM-FAIL" or "ULFM-ABORT". mpirun's exit status is not used: under
# --with-ft it is unreliable (a rank's SIGSEGV can give 0). Watchdog: once every PASS line is
# there, mpirun gets --grace seconds to exit (MPI_Finalize after a failure sometimes hangs in
# Open MPI 5); then its process group is killed and the hang is reported, not failed. No PASS
# set within --timeout seconds fails.
set -uo pipefail

pass=0 timeout=120 grace=8 transport=sm kill_ranks="" kill_delay=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --pass) pass=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --grace) grace=$2; shift 2 ;;
    --transport) transport=$2; shift 2 ;;
    --kill) kill_ranks=$2; shift 2 ;;
    --kill-delay) kill_delay=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "ulfm_run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $pass -ge 1 && $# -ge 1 ]] || { echo "ulfm_run.sh: need --pass N >= 1 and mpirun arguments" >&2; exit 2; }

mpirun=${MPIEXEC:-mpirun}
case $transport in
  sm) btl=(--mca btl self,sm) ;;
  tcp) btl=(--mca btl self,tcp --mca btl_tcp_disable_family 6 --mca btl_tcp_if_include lo) ;;
  *) echo "ulfm_run.sh: transport sm or tcp" >&2; exit 2 ;;
esac

log=$(mktemp "${TMPDIR:-/tmp}/ulfm_run.XXXXXX")
cmd=("$mpirun" --with-ft ulfm --mca pml ob1 "${btl[@]}" --oversubscribe --bind-to none "$@")
echo "ulfm_run: ${cmd[*]}"
setsid "${cmd[@]}" >"$log" 2>&1 </dev/null &
pid=$!

# The log without NUL bytes (prterun's output forwarding writes some between lines).
text() { tr -d '\000' <"$log"; }
passes() { text | grep -E '^ULFM-PASS rank [0-9]+' | awk '{ print $3 }' | sort -u | wc -l; }
bad() { text | grep -qE '^ULFM-(FAIL|ABORT)'; }

# The victims' PIDs, once all of them are printed (empty until then).
victim_pids() {
  local r pid pids=()
  for r in ${kill_ranks//,/ }; do
    pid=$(text | grep -E "^ULFM-PID rank $r pid [0-9]+" | head -1 | awk '{ print $5 }')
    [[ -n $pid ]] || return 0
    pids+=("$pid")
  done
  echo "${pids[*]}"
}

start=$SECONDS verdict="" hung=0 killed=0
[[ -n $kill_ranks && -z $kill_delay ]] && kill_delay=$((100 + RANDOM % 1401))
while :; do
  if [[ -n $kill_ranks && $killed -eq 0 ]]; then
    pids=$(victim_pids)
    if [[ -n $pids ]]; then
      sleep "$(printf '%d.%03d' $((kill_delay / 1000)) $((kill_delay % 1000)))"
      echo "ulfm_run: kill -9 ranks $kill_ranks (pids $pids) after $kill_delay ms"
      kill -KILL $pids
      killed=1
    fi
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
  if bad; then
    verdict="a rank reported a failure"
    break
  fi
  if [[ $(passes) -ge $pass ]]; then
    # Every survivor is through: give mpirun --grace seconds to finish.
    t=$SECONDS
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - t < grace)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && hung=1
    break
  fi
  if ((SECONDS - start >= timeout)); then
    verdict="timeout after ${timeout} s with $(passes) of $pass PASS lines"
    break
  fi
  sleep 0.2
done
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM -- -"$pid" 2>/dev/null
  sleep 1
  kill -KILL -- -"$pid" 2>/dev/null
fi
wait "$pid" 2>/dev/null
status=$?
text
n=$(passes)
if [[ -n $kill_ranks && $killed -eq 0 && -z $verdict ]]; then
  verdict="the ranks to kill ($kill_ranks) never printed their pids"
fi
if [[ -z $verdict ]]; then
  if bad; then
    verdict="a rank reported a failure"
  elif [[ $n -ne $pass ]]; then
    verdict="$n PASS lines, expected $pass"
  fi
fi
rm -f "$log"
[[ $hung -eq 1 ]] && echo "ulfm_run: mpirun still running ${grace} s after every survivor passed (the known MPI_Finalize hang after a failure): killed"
echo "ulfm_run: mpirun status $status (not used), $((SECONDS - start)) s"
if [[ -n $verdict ]]; then
  echo "ulfm_run: FAIL: $verdict"
  exit 1
fi
echo "ulfm_run: PASS ($n survivors)"
