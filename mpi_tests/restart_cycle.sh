#!/usr/bin/env bash
# restart_cycle.sh: drives the kill -> delete -> rerun cycle of fuze's HDF5
# persistence with one of the example apps (heat2d, heat_f90, nqueens, kvstore,
# or the test app test_incr_kill), as an
# operator would, and fails loudly (exit status 1 and a "FAIL:" message) on
# any mismatch. Used by mpi_tests/restart.cmake.
#
#   (a) a failure-free reference run (the app's --config without dir= and
#       inject=) -> its final answer (heat2d: the checksum of the protected
#       run, nqueens: the solution count, kvstore: the final map digest);
#   (b) the same with dir=WORK/dir and inject=KILL_SPEC -> the job must abort
#       (non-zero exit) and the victim's "kills itself with SIGKILL" line must
#       appear; DIR/manifest and the domains' directories must exist; with
#       --after-kill REGEX, some file under DIR (as "./domain-D/rank-R/NAME")
#       must match REGEX, with --not-after-kill REGEX none may;
#   (c) delete DIR/domain-<D> of the lost domains (default: the victim's,
#       D == R with domain=rank; --no-delete: none) and corrupt the epoch
#       files of others
#       (bytes flipped in the middle of every DIR/domain-X/rank-*/epoch-*.h5);
#   (d) optional reruns with another rank count or config, which must be
#       refused with a message matching a regex (and must not damage DIR);
#   (e) the same command as (b) again -> exit 0, the app's "restarted from
#       the persisted epoch" line, the app's own success line and the final
#       answer of (a); or, with --rerun-fails REGEX, a non-zero exit with a
#       message matching REGEX (and no success line).
#
# usage: restart_cycle.sh --mpiexec PATH [--mpiflags "FLAGS"] --np N --app PATH
#          --work DIR --config CFG --inject KILL_SPEC [--delete "D ..."]
#          [--corrupt "X ..."] [--expect REGEX]... [--mismatch NP CFG REGEX]...
#          [--rerun-fails REGEX] [--timeout SECONDS] [--no-delete]
#          [--after-kill REGEX]... [--not-after-kill REGEX]... [-- APP_ARGS...]
# CFG uses ',' between keys (the apps accept ',' and ';'); the driver appends
# ",dir=WORK/dir,inject=KILL_SPEC". Regexes are extended (grep -E).
set -u

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

MPIEXEC="" MPIFLAGS="" NP="" APP="" WORK="" CONFIG="" INJECT="" DELETE="" DELETE_SET=0
CORRUPT="" RERUN_FAILS="" TIMEOUT=60
EXPECTS=()
AFTER_KILL=()
NOT_AFTER_KILL=()
MISMATCH=()
APP_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mpiexec) MPIEXEC=$2; shift 2 ;;
    --mpiflags) MPIFLAGS=$2; shift 2 ;;
    --np) NP=$2; shift 2 ;;
    --app) APP=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --inject) INJECT=$2; shift 2 ;;
    --delete) DELETE=$2; DELETE_SET=1; shift 2 ;;
    --no-delete) DELETE=""; DELETE_SET=1; shift ;;
    --after-kill) AFTER_KILL+=("$2"); shift 2 ;;
    --not-after-kill) NOT_AFTER_KILL+=("$2"); shift 2 ;;
    --corrupt) CORRUPT=$2; shift 2 ;;
    --expect) EXPECTS+=("$2"); shift 2 ;;
    --mismatch)
      [ $# -ge 4 ] || fail "--mismatch needs NP CFG REGEX"
      MISMATCH+=("$2" "$3" "$4"); shift 4 ;;
    --rerun-fails) RERUN_FAILS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --) shift; APP_ARGS=("$@"); break ;;
    *) fail "restart_cycle.sh: unknown argument '$1'" ;;
  esac
done
for v in MPIEXEC NP APP WORK CONFIG INJECT; do
  [ -n "${!v}" ] || fail "restart_cycle.sh: --$(echo "$v" | tr '[:upper:]' '[:lower:]') is missing"
done
[ -x "$APP" ] || fail "app '$APP' is not an executable"
APPNAME=$(basename "$APP")
# The victim: kill:rank=R:...
VICTIM=$(printf '%s\n' "$INJECT" | sed -n 's/^kill:rank=\([0-9][0-9]*\):.*/\1/p')
[ -n "$VICTIM" ] || fail "--inject '$INJECT' is not kill:rank=R:at=checkpoint:E[:phase=P]"
[ "$DELETE_SET" = 1 ] || DELETE=$VICTIM

# A fresh work directory for this test.
case "$WORK" in
  ""|/) fail "refusing work directory '$WORK'" ;;
esac
rm -rf -- "$WORK" || fail "cannot remove $WORK"
mkdir -p -- "$WORK" || fail "cannot create $WORK"
DIR=$WORK/dir

# shellcheck disable=SC2206
FLAGS=($MPIFLAGS)
# The launcher's flags (--mpiflags) and environment (inherited: restart.cmake sets the
# MPI implementation's FUZE_MPIRUN_ENV, e.g. Open MPI's OMPI_ALLOW_RUN_AS_ROOT) come from
# the caller, so the driver works with any MPI's launcher.

STEP=0
LAST_LOG=""
LAST_RC=0
# run NAME NP CONFIG: runs the app, output in WORK/<n>-NAME.log; sets LAST_RC
# and LAST_LOG and prints the command and a summary.
run() {
  local name=$1 np=$2 cfg=$3
  STEP=$((STEP + 1))
  LAST_LOG=$WORK/$STEP-$name.log
  local cmd=(timeout --kill-after=10 "$TIMEOUT" "$MPIEXEC" "${FLAGS[@]}" -np "$np" "$APP"
             --config "$cfg" "${APP_ARGS[@]}")
  echo "== ($STEP) $name: ${cmd[*]:3}"
  local t0 t1 ms
  t0=$(date +%s%N)
  "${cmd[@]}" >"$LAST_LOG" 2>&1 </dev/null
  LAST_RC=$?
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  printf '== (%d) %s: exit status %d after %d.%03d s (log %s)\n' "$STEP" "$name" "$LAST_RC" \
    $((ms / 1000)) $((ms % 1000)) "$LAST_LOG"
  if [ "$LAST_RC" = 124 ] || [ "$ms" -ge $((TIMEOUT * 1000)) ]; then
    show_log
    fail "$name: timed out after $TIMEOUT s"
  fi
}

show_log() {
  echo "---- $LAST_LOG (last 60 lines) ----"
  tail -n 60 "$LAST_LOG"
  echo "---- end of $LAST_LOG ----"
}

must_match() { # must_match WHAT REGEX: the last log matches REGEX
  if ! grep -Eq -- "$2" "$LAST_LOG"; then
    show_log
    fail "$1: no line matches /$2/"
  fi
}

must_not_match() {
  if grep -Eq -- "$2" "$LAST_LOG"; then
    show_log
    fail "$1: a line matches /$2/: $(grep -E -m1 -- "$2" "$LAST_LOG")"
  fi
}

# The app's final answer and its own success line.
case "$APPNAME" in
  heat2d)
    answer() { sed -n 's/^heat2d: checksum \([0-9a-f]\{16\}\), sum .* (protected run)$/\1/p' "$1" | tail -n 1; }
    SUCCESS='^heat2d: checksum matches failure-free run$' ;;
  nqueens)
    answer() { sed -n 's/^nqueens: count \([0-9][0-9]*\), known value.*/\1/p' "$1" | tail -n 1; }
    SUCCESS='^nqueens: count matches$' ;;
  kvstore)
    answer() { sed -n 's/^kvstore: final map digest \([0-9a-f]\{16\} over [0-9][0-9]* pairs\).*/\1/p' "$1" | tail -n 1; }
    SUCCESS='^kvstore: all [0-9]+ keys match the reference replay$' ;;
  test_incr_kill)
    answer() { sed -n 's/^test_incr_kill: checksum \([0-9a-f]\{16\}\) (protected run)$/\1/p' "$1" | tail -n 1; }
    SUCCESS='^test_incr_kill: state matches the failure-free model at step [0-9]+ on every rank$' ;;
  heat_f90)
    answer() { sed -n 's/^heat_f90: checksum \([0-9A-F]\{16\}\), sum .* (protected run)$/\1/p' "$1" | tail -n 1; }
    SUCCESS='^heat_f90: checksum matches failure-free run$' ;;
  *) fail "restart_cycle.sh knows the final answer of heat2d, heat_f90, nqueens, kvstore and test_incr_kill, not '$APPNAME'" ;;
esac
RESTARTED="^$APPNAME: restarted from the persisted epoch [0-9]+: resuming "
KILLED="fuze: rank $VICTIM kills itself with SIGKILL"

# (a) failure-free reference.
REF=""
if [ -z "$RERUN_FAILS" ] || [ ${#MISMATCH[@]} -gt 0 ]; then
  run reference "$NP" "$CONFIG"
  [ "$LAST_RC" = 0 ] || { show_log; fail "reference run: exit status $LAST_RC"; }
  must_match "reference run" "$SUCCESS"
  REF=$(answer "$LAST_LOG")
  [ -n "$REF" ] || { show_log; fail "reference run: no final answer found"; }
  must_not_match "reference run" "$RESTARTED"
  echo "== reference answer: $REF"
fi

# (b) the run that is killed.
KILL_CONFIG="$CONFIG,dir=$DIR,inject=$INJECT"
run killed "$NP" "$KILL_CONFIG"
[ "$LAST_RC" != 0 ] || { show_log; fail "killed run: exit status 0, but rank $VICTIM was to be killed"; }
must_match "killed run" "$KILLED"
must_not_match "killed run" "$SUCCESS"
[ -f "$DIR/manifest" ] || fail "killed run: $DIR/manifest does not exist (nothing was persisted)"
echo "== persisted files after the kill:"
FILES=$(cd "$DIR" && find . -type f | sort)
printf '%s\n' "$FILES" | sed 's/^/   /'
for re in "${AFTER_KILL[@]}"; do
  printf '%s\n' "$FILES" | grep -Eq -- "$re" || fail "killed run: no file under $DIR matches /$re/"
done
for re in "${NOT_AFTER_KILL[@]}"; do
  if printf '%s\n' "$FILES" | grep -Eq -- "$re"; then
    fail "killed run: a file under $DIR matches /$re/: $(printf '%s\n' "$FILES" | grep -E -m1 -- "$re")"
  fi
done

# (c) lose domains, damage files.
for d in $DELETE; do
  [ -d "$DIR/domain-$d" ] || fail "$DIR/domain-$d does not exist: nothing to delete"
  rm -rf -- "$DIR/domain-$d" || fail "cannot delete $DIR/domain-$d"
  echo "== deleted $DIR/domain-$d"
done
# Flip n bytes in the middle of file $1 (its size unchanged); checks that
# exactly n bytes changed.
corrupt_file() {
  local f=$1 n=16 size off esc changed
  size=$(stat -c %s "$f")
  [ "$size" -gt $((4 * n)) ] || fail "$f has only $size bytes"
  off=$((size / 2))
  cp -- "$f" "$WORK/pristine.h5" || fail "cannot copy $f"
  esc=""
  for b in $(od -An -v -tx1 -j "$off" -N "$n" "$f"); do
    esc="$esc\\$(printf '%03o' $((0x$b ^ 0xff)))"
  done
  # shellcheck disable=SC2059
  printf "$esc" | dd of="$f" bs=1 seek="$off" count="$n" conv=notrunc status=none ||
    fail "cannot write $f"
  changed=$(cmp -l -- "$WORK/pristine.h5" "$f" | wc -l)
  if [ "$changed" != "$n" ] || [ "$(stat -c %s "$f")" != "$size" ]; then
    fail "corrupting $f changed $changed bytes, not $n"
  fi
  rm -f -- "$WORK/pristine.h5"
  echo "== corrupted $f: $n bytes flipped at offset $off of $size"
}
# Every epoch file of the domain: whichever epoch the restart picks (the
# newest complete one, or an older one), this domain's file of it is damaged.
for x in $CORRUPT; do
  found=0
  for f in "$DIR/domain-$x"/rank-*/epoch-*.h5; do
    [ -f "$f" ] || continue
    corrupt_file "$f"
    found=1
  done
  [ "$found" = 1 ] || fail "no epoch-*.h5 file in $DIR/domain-$x to corrupt"
done

# (d) reruns that must be refused.
i=0
while [ $i -lt ${#MISMATCH[@]} ]; do
  mnp=${MISMATCH[$i]} mcfg=${MISMATCH[$((i + 1))]} mre=${MISMATCH[$((i + 2))]}
  i=$((i + 3))
  run mismatch "$mnp" "$mcfg,dir=$DIR,inject=$INJECT"
  [ "$LAST_RC" != 0 ] || { show_log; fail "rerun with -np $mnp --config '$mcfg': exit status 0, expected a refusal"; }
  must_match "rerun with -np $mnp --config '$mcfg'" "$mre"
  must_not_match "rerun with -np $mnp --config '$mcfg'" "$SUCCESS"
  must_not_match "rerun with -np $mnp --config '$mcfg'" "$RESTARTED"
done

# (e) the same command again.
run rerun "$NP" "$KILL_CONFIG"
if [ -n "$RERUN_FAILS" ]; then
  [ "$LAST_RC" != 0 ] || { show_log; fail "rerun: exit status 0, expected a failure matching /$RERUN_FAILS/"; }
  must_match "rerun" "$RERUN_FAILS"
  must_not_match "rerun" "$SUCCESS"
  must_not_match "rerun" "$RESTARTED"
  echo "== PASS: the rerun failed as expected: $(grep -E -m1 -- "$RERUN_FAILS" "$LAST_LOG")"
  exit 0
fi
[ "$LAST_RC" = 0 ] || { show_log; fail "rerun: exit status $LAST_RC"; }
must_not_match "rerun" "$KILLED"
must_match "rerun" "$RESTARTED"
must_match "rerun" "$SUCCESS"
for re in "${EXPECTS[@]}"; do must_match "rerun" "$re"; done
GOT=$(answer "$LAST_LOG")
[ -n "$GOT" ] || { show_log; fail "rerun: no final answer found"; }
echo "== $(grep -E -m1 -- "$RESTARTED" "$LAST_LOG")"
if [ "$GOT" != "$REF" ]; then
  show_log
  fail "rerun: final answer '$GOT' differs from the failure-free reference '$REF'"
fi
echo "== PASS: restarted run's final answer $GOT equals the failure-free reference"
exit 0
