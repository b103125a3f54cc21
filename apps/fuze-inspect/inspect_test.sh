#!/usr/bin/env bash
# inspect_test.sh SCENARIO FUZE_INSPECT FUZE_INSPECT_GEN WORKDIR
# One CTest scenario of fuze-inspect on a job directory written by
# fuze-inspect-gen (real rank files from the pfile API, no MPI). Each step
# checks the exact exit status and regexes on stdout/stderr.
set -u
scenario=$1 inspect=$2 gen=$3 work=$4
fails=0

rm -rf "$work"
mkdir -p "$work"
job=$work/job

# expect STATUS 'stdout regex' 'stderr regex' -- command...
expect() {
  local status=$1 out_re=$2 err_re=$3
  shift 4
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  local bad=""
  [ "$rc" = "$status" ] || bad="exit status $rc, expected $status"
  if [ -n "$out_re" ] && ! grep -Eq -- "$out_re" "$work/out"; then bad="$bad; stdout lacks /$out_re/"; fi
  if [ -n "$err_re" ] && ! grep -Eq -- "$err_re" "$work/err"; then bad="$bad; stderr lacks /$err_re/"; fi
  if [ -n "$bad" ]; then
    echo "FAIL: $*: $bad"
    echo "--- stdout:"; cat "$work/out"
    echo "--- stderr:"; cat "$work/err"
    fails=$((fails + 1))
  else
    echo "ok: $* (exit $rc)"
  fi
}

generate() { expect 0 "" "" -- "$gen" "$job" "$@"; }

case $scenario in
healthy)
  generate
  expect 0 "health: 6 ok, 0 missing, 0 corrupt; 0 blocks not recoverable" "" -- "$inspect" "$job"
  expect 0 "complete epochs: 7 \(checkpoint 14\), 6 \(checkpoint 12\)" "" -- "$inspect" "$job"
  expect 0 "redundancy ratio [0-9]+\.[0-9]+" "" -- "$inspect" "$job"
  expect 0 "verify: 20 regions checked, 0 mismatches, 0 not checked" "" -- "$inspect" "$job" --verify
  ;;
missing_rebuild)
  generate
  cp "$job/domain-3/rank-3/epoch-7.h5" "$work/original.h5"
  rm -rf "$job/domain-3"
  expect 2 "3 +3 +1 +missing .*domain-3/rank-3/epoch-7.h5" "1 missing, 0 corrupt" -- "$inspect" "$job"
  expect 2 "block 1: .*1 lost \(primary rank 3\): recoverable" "" -- "$inspect" "$job"
  expect 0 "rank 3: rebuilt .*/domain-3/rank-3/epoch-7.h5" "" -- "$inspect" "$job" --rebuild 3
  expect 0 "verify: 20 regions checked, 0 mismatches" "" -- "$inspect" "$job" --verify
  expect 0 "identical models" "" -- "$gen" --compare "$work/original.h5" "$job/domain-3/rank-3/epoch-7.h5"
  expect 0 "" "" -- cmp "$work/original.h5" "$job/domain-3/rank-3/epoch-7.h5"
  expect 0 "is healthy; nothing to rebuild" "" -- "$inspect" "$job" --rebuild 3
  ;;
manifest_copy)
  # DIR/manifest lost (the node of rank 0 with its disk): a domain's copy serves.
  generate
  cp "$job/manifest" "$job/domain-2/manifest"
  rm -f "$job/manifest"
  expect 0 "complete epochs: 7 \(checkpoint 14\), 6 \(checkpoint 12\)" \
    "using the copy .*/domain-2/manifest" -- "$inspect" "$job"
  echo garbage >"$job/manifest"
  expect 0 "health: 6 ok, 0 missing, 0 corrupt" "using the copy .*/domain-2/manifest" -- "$inspect" "$job"
  ;;
corrupt_verify)
  generate
  expect 0 "" "" -- "$gen" --flip "$job/domain-1/rank-1/epoch-7.h5" 6000
  expect 2 "corrupt: file checksum mismatch" "0 missing, 1 corrupt" -- "$inspect" "$job" --verify
  expect 2 "not checked \(rank 1 corrupt\)" "" -- "$inspect" "$job" --verify
  # A well-formed file whose parity is wrong: only --verify can tell.
  rm -rf "$job"
  generate --bad-parity 0
  expect 0 "health: 6 ok" "" -- "$inspect" "$job"
  expect 1 "MISMATCH block [0-9]+, structure 'u', backup [0-9] on rank 0: bytes \[[0-9]+, [0-9]+\)" \
    "parity mismatches" -- "$inspect" "$job" --verify
  expect 1 "1 mismatch," "" -- "$inspect" "$job" --verify
  ;;
corrupt_rebuild)
  generate
  cp "$job/domain-4/rank-4/epoch-7.h5" "$work/original.h5"
  expect 0 "" "" -- "$gen" --flip "$job/domain-4/rank-4/epoch-7.h5" -100
  expect 0 "kept the damaged file as .*epoch-7.h5.damaged" "" -- "$inspect" "$job" --rebuild 4
  expect 0 "health: 6 ok, 0 missing, 0 corrupt" "" -- "$inspect" "$job" --verify
  expect 0 "identical models" "" -- "$gen" --compare "$work/original.h5" "$job/domain-4/rank-4/epoch-7.h5"
  # Older epochs are rebuilt with --epoch.
  rm "$job/domain-4/rank-4/epoch-6.h5"
  expect 0 "rank 4: rebuilt .*epoch-6.h5" "" -- "$inspect" "$job" --epoch 6 --rebuild 4
  expect 0 "0 mismatches" "" -- "$inspect" "$job" --epoch 6 --verify
  ;;
unrecoverable)
  generate --ranks 4 --faults 1 --spares 0
  rm -rf "$job/domain-0" "$job/domain-1" "$job/domain-2"
  expect 2 "NOT recoverable" "3 missing" -- "$inspect" "$job"
  expect 2 "" "cannot rebuild rank 0 of epoch 7: block [0-9]+ lost [0-9]+ members \(.*\) but tolerates faults=1" \
    -- "$inspect" "$job" --rebuild 0
  ;;
bad_path)
  expect 2 "" "fuze-inspect: $work/nonexistent: No such file or directory" -- "$inspect" "$work/nonexistent"
  touch "$work/file"
  expect 2 "" "not a directory" -- "$inspect" "$work/file"
  ;;
no_manifest)
  mkdir -p "$job"
  expect 2 "" "no manifest .*not a fuze persistence directory" -- "$inspect" "$job"
  ;;
bad_manifest)
  generate
  sed -i 's/^ranks 6$/ranks 7/' "$job/manifest"
  expect 2 "" "manifest: crc64 mismatch: the manifest is damaged" -- "$inspect" "$job"
  sed -i 's/^fuze-manifest 1$/fuze-manifest 2/' "$job/manifest"
  expect 2 "" "written by manifest version 2; this fuze reads version 1" -- "$inspect" "$job"
  printf 'fuze-manifest 1\nranks six\n' >"$job/manifest"
  expect 2 "" "line 2: bad line 'ranks six'" -- "$inspect" "$job"
  ;;
bad_args)
  generate
  expect 2 "" "DIR is required" -- "$inspect"
  expect 2 "" "unknown option '--frobnicate'" -- "$inspect" "$job" --frobnicate
  expect 2 "" "bad value for --rebuild: 'x'" -- "$inspect" "$job" --rebuild x
  expect 2 "" "option --epoch needs a value" -- "$inspect" "$job" --epoch
  expect 2 "" "one directory only" -- "$inspect" "$job" "$job"
  expect 2 "" "epoch 3 is not complete in .*manifest \(complete: 7, 6\)" -- "$inspect" "$job" --epoch 3
  expect 2 "" "--rebuild 99: the job has ranks 0..5" -- "$inspect" "$job" --rebuild 99
  ;;
help)
  expect 0 "usage: fuze-inspect DIR" "" -- "$inspect" --help
  expect 0 "Exit status: 0" "" -- "$inspect" -h
  ;;
epochs)
  generate --code replicate --ranks 4 --faults 1 --spares 0
  expect 0 "^epoch 6: rank files" "" -- "$inspect" "$job" --epoch 6
  expect 0 "code=replicate" "" -- "$inspect" "$job" --verify
  generate --code xor --ranks 5 --faults 1 --spares 1 --seed 7
  expect 0 "code=xor" "" -- "$inspect" "$job" --verify
  # code=byzantine: rs files, the mode in the manifest, shown as the config says it.
  generate --code byzantine --ranks 4 --faults 1 --spares 0 --seed 9
  expect 0 "code=byzantine" "" -- "$inspect" "$job" --verify
  ;;
chain)
  # persist_base > 1: a full file and increments on every rank. Everything
  # expected is computed from the files the generator left: the manifest's
  # complete epochs, each rank's full file (the base) and increments, the
  # files' sizes.
  generate --chain 3
  newest=$(sed -n 's/^complete \([0-9]*\) \([0-9]*\)$/\1/p' "$job/manifest" | head -n 1)
  header="complete epochs: $(sed -n 's/^complete \([0-9]*\) \([0-9]*\)$/\1 (checkpoint \2)/p' "$job/manifest" | paste -sd, - | sed 's/,/, /g')"
  ranks=$(sed -n 's/^ranks \([0-9]*\)$/\1/p' "$job/manifest")
  # chain_of R E: "epoch-B.h5 + incr-X.h5 + ... + incr-E.h5" from rank R's files
  chain_of() {
    local d=$job/domain-$1/rank-$1 base x text
    base=$(ls "$d" | sed -n 's/^epoch-\([0-9]*\)\.h5$/\1/p' | sort -n | awk -v e="$2" '$1 <= e' | tail -n 1)
    text="epoch-$base.h5"
    for x in $(ls "$d" | sed -n 's/^incr-\([0-9]*\)\.h5$/\1/p' | sort -n); do
      [ "$x" -gt "$base" ] && [ "$x" -le "$2" ] && text="$text + incr-$x.h5"
    done
    echo "$text"
  }
  # row_then R STATUS FILE NEXT: rank R's row (status, file and its size) and
  # the line right after it, exactly NEXT ("" : not a chain line)
  row_then() {
    local r=$1 st=$2 f=$3 next=$4 size row after
    size=$(stat -c %s "$f")
    row=$(grep -E -A1 "^ +$r +$r +([0-9]+|spare)  $st +$size  $f\$" "$work/out")
    after=$(printf '%s\n' "$row" | sed -n 2p)
    if [ -z "$row" ]; then
      echo "FAIL: no row '$r $r <block> $st $size $f' in:"; cat "$work/out"; fails=$((fails + 1))
    elif [ -n "$next" ] && [ "$after" != "$next" ]; then
      echo "FAIL: after rank $r's row: '$after', expected '$next'"; fails=$((fails + 1))
    elif [ -z "$next" ] && printf '%s' "$after" | grep -q "chain:"; then
      echo "FAIL: rank $r (a full file) has a chain line: '$after'"; fails=$((fails + 1))
    else
      echo "ok: rank $r: $st $f${next:+ / $next}"
    fi
  }
  pad="                        "
  nincr=0
  for r in $(seq 0 $((ranks - 1))); do
    c=$(chain_of "$r" "$newest")
    n=$(printf '%s\n' "$c" | grep -o 'incr-' | wc -l)
    [ "$r" = 0 ] && nincr=$n
    [ "$n" = "$nincr" ] && [ "$n" -ge 2 ] || { echo "FAIL: rank $r's files give the chain '$c'"; fails=$((fails + 1)); }
  done
  expect 0 "^$(printf '%s' "$header" | sed 's/[()]/\\&/g')\$" "" -- "$inspect" "$job"
  expect 0 "health: $ranks ok, 0 missing, 0 corrupt; 0 blocks not recoverable" "" -- "$inspect" "$job"
  for r in $(seq 0 $((ranks - 1))); do
    row_then "$r" ok "$job/domain-$r/rank-$r/incr-$newest.h5" "${pad}chain: $(chain_of "$r" "$newest")"
  done
  # An older epoch of the chain: its own increment and a shorter chain.
  older=$((newest - 1))
  expect 0 "^epoch $older: rank files" "" -- "$inspect" "$job" --epoch "$older"
  for r in 0 $((ranks - 1)); do
    row_then "$r" ok "$job/domain-$r/rank-$r/incr-$older.h5" "${pad}chain: $(chain_of "$r" "$older")"
  done
  expect 0 "verify: [0-9]+ regions checked, 0 mismatches, 0 not checked" "" -- "$inspect" "$job" --verify
  # A missing increment in the middle of rank 2's chain: rank 2 is missing,
  # the message names that file and the epoch whose chain needs it.
  gone=$job/domain-2/rank-2/incr-$older.h5
  rm -f "$gone"
  expect 2 "health: $((ranks - 1)) ok, 1 missing, 0 corrupt; 0 blocks not recoverable" \
    "epoch $newest: 1 missing, 0 corrupt" -- "$inspect" "$job"
  row_then 2 missing "$job/domain-2/rank-2/incr-$newest.h5" \
    "${pad}missing: $gone: missing (no epoch-$older.h5 either), which the chain of epoch $newest needs"
  # A damaged increment (a byte flipped in its middle) on rank 4: corrupt,
  # naming it.
  bad=$job/domain-4/rank-4/incr-$((newest - 2)).h5
  expect 0 "" "" -- "$gen" --flip "$bad" $(($(stat -c %s "$bad") / 2))
  expect 2 "health: $((ranks - 2)) ok, 1 missing, 1 corrupt; 0 blocks not recoverable" \
    "epoch $newest: 1 missing, 1 corrupt" -- "$inspect" "$job"
  if grep -A1 -E "^ +4 +4 .* corrupt " "$work/out" | sed -n 2p | grep -Fq "${pad}corrupt: $bad: "; then
    echo "ok: rank 4: corrupt, naming $bad"
  else
    echo "FAIL: rank 4 is not reported corrupt naming $bad:"; cat "$work/out"; fails=$((fails + 1))
  fi
  # Both rebuilt as full files of the newest epoch; the others keep their chains.
  expect 0 "rank 2: rebuilt $job/domain-2/rank-2/epoch-$newest.h5" "" -- "$inspect" "$job" --rebuild 2
  expect 0 "rank 4: rebuilt $job/domain-4/rank-4/epoch-$newest.h5" "" -- "$inspect" "$job" --rebuild 4
  expect 0 "health: $ranks ok, 0 missing, 0 corrupt" "" -- "$inspect" "$job" --verify
  expect 0 "verify: [0-9]+ regions checked, 0 mismatches, 0 not checked" "" -- "$inspect" "$job" --verify
  row_then 2 ok "$job/domain-2/rank-2/epoch-$newest.h5" ""
  row_then 4 ok "$job/domain-4/rank-4/epoch-$newest.h5" ""
  row_then 3 ok "$job/domain-3/rank-3/incr-$newest.h5" "${pad}chain: $(chain_of 3 "$newest")"
  ;;
*)
  echo "unknown scenario $scenario"
  exit 2
  ;;
esac

if [ "$fails" -ne 0 ]; then
  echo "$scenario: $fails step(s) failed"
  exit 1
fi
rm -rf "$work"
echo "$scenario: all steps passed"
