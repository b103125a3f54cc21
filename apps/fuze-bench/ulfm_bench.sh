#!/usr/bin/env bash
# fuze-bench --bench ulfm in the ULFM lane (./quickstart.sh ulfm, Debian 13 root): 8 compute
# ranks + 3 replacements, real SIGKILLs, the repair against the restart from files
# (apps/fuze-bench/ulfm.c, docs/benchmarks.md section 14). Passes on the bit-exact checks,
# never on a time. Decided by the output, with a watchdog for the finalize hang after a
# failure (Open MPI 5).   ulfm_bench.sh FUZE_BENCH_BINARY [SIZE]
# First, in the same run, what a real restart adds to the restart from files (median of 3):
# the job's abort after a SIGKILL without --with-ft (from the victim's printed time to
# mpirun's exit) and the relaunch (from mpirun's start to every rank past MPI_Init and a
# barrier); their sum goes to fuze-bench as --ulfm-relaunch.
set -uo pipefail
bin=${1:?usage: ulfm_bench.sh FUZE_BENCH_BINARY [SIZE]}
size=${2:-16M}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp)
probe=$(mktemp)
trap 'rm -f "$out" "$probe"' EXIT
base=(mpirun --mca pml ob1 --mca btl self,sm --oversubscribe --bind-to none -np 11 "$bin" --bench ulfm)
now() { date +%s.%N; }
sums=()
for rep in 1 2 3; do
  timeout 120 "${base[@]}" --ulfm-probe abort > "$probe" 2>&1
  t_exit=$(now)
  t_kill=$(awk '/^ulfm-probe kill/ {print $3}' "$probe")
  t_launch=$(now)
  timeout 120 "${base[@]}" --ulfm-probe init > "$probe" 2>&1
  t_init=$(awk '/^ulfm-probe init/ {print $3}' "$probe")
  if [[ -z $t_kill || -z $t_init ]]; then
    echo "ulfm bench: a relaunch probe printed no time:"; cat "$probe"; exit 1
  fi
  s=$(awk -v a="$t_exit" -v k="$t_kill" -v i="$t_init" -v l="$t_launch" 'BEGIN {printf "%.3f", (a - k) + (i - l)}')
  echo "ulfm bench: relaunch probe $rep: abort $(awk -v a="$t_exit" -v k="$t_kill" 'BEGIN {printf "%.3f", a - k}') s + relaunch to MPI_Init $(awk -v i="$t_init" -v l="$t_launch" 'BEGIN {printf "%.3f", i - l}') s"
  sums+=("$s")
done
relaunch=$(printf '%s\n' "${sums[@]}" | sort -g | sed -n 2p)
cmd=(mpirun --with-ft ulfm --mca pml ob1 --mca btl self,sm --oversubscribe --bind-to none -np 11
     "$bin" --bench ulfm --ulfm-size "$size" --persist-dir /dev/shm --ulfm-relaunch "$relaunch")
echo "ulfm bench: ${cmd[*]}"
setsid "${cmd[@]}" > "$out" 2>&1 &
pid=$!
for ((i = 0; i < 1200; i++)); do
  kill -0 "$pid" 2>/dev/null || break
  if grep -q "^# total" "$out"; then
    for ((j = 0; j < 20; j++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    break
  fi
  sleep 0.5
done
kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
wait "$pid" 2>/dev/null
grep -av "not tested for post-failure\|^operation\|^When using\|^However\|^In this\|^failure scenarios\|^---\|^$\|NBC_Progress\|^normal failure\|help message" "$out"
grep -q "check ulfm: every rank bit-exact after each repair and each restart: OK" "$out" &&
  grep -q "checks passed" "$out"
