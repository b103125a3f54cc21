#!/usr/bin/env bash
# fuze-bench --bench ulfm in the ULFM lane (./quickstart.sh ulfm, Debian 13 root): 8 compute
# ranks + 3 replacements, real SIGKILLs, the repair against the restart from files
# (apps/fuze-bench/ulfm.c, docs/benchmarks.md section 14). Passes on the bit-exact checks,
# never on a time. Decided by the output, with a watchdog for the finalize hang after a
# failure (Open MPI 5).   ulfm_bench.sh FUZE_BENCH_BINARY [SIZE]
set -uo pipefail
bin=${1:?usage: ulfm_bench.sh FUZE_BENCH_BINARY [SIZE]}
size=${2:-16M}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cmd=(mpirun --with-ft ulfm --mca pml ob1 --mca btl self,sm --oversubscribe --bind-to none -np 11
     "$bin" --bench ulfm --ulfm-size "$size" --persist-dir /dev/shm)
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
