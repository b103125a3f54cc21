#!/bin/sh
# plot.sh: the figures of docs/benchmarks.md from a fuze-bench CSV.
#
#   apps/fuze-bench/plot.sh RESULTS.csv [OUTDIR]
#
# OUTDIR defaults to docs/img of the repository holding this script. Writes
# (each only when the CSV has the rows it needs):
#   space.png        backup bytes / protected bytes vs n, fusion and
#                    replication, f = 1..3 (the planner rows; paper Fig. 8 left)
#   update.png       stack/map operations per second per rank vs f
#   checkpoint.png   checkpoint time vs fraction of chunks changed (+ memcpy floor)
#   recovery.png     recovery time vs number of wiped ranks t
#   concurrency.png  aggregate update rate vs primaries sharing one backup
# Needs gnuplot (pngcairo terminal, or png) and awk. Rows whose median is nan
# (unavailable) are skipped.
set -eu

if [ $# -lt 1 ] || [ ! -r "$1" ]; then
  echo "usage: $0 RESULTS.csv [OUTDIR]" >&2
  exit 2
fi
csv=$1
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$here/../../docs/img}
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v gnuplot >/dev/null || { echo "$0: gnuplot not found" >&2; exit 2; }
head -n 1 "$csv" | grep -qx 'bench,param,mode,median,min,max,unit' ||
  { echo "$0: $csv is not a fuze-bench CSV (bad header)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
  term='pngcairo noenhanced size 900,560 font "Sans,10"'
else
  term='png noenhanced size 900,560'
fi

# extract BENCH FILTER KEYS...: print "<key values> median min max" for the
# rows of BENCH whose param matches the awk regex FILTER, per mode, into
# $tmp/<bench>.<mode>.<suffix>, where the suffix is made of the param keys
# given in SPLIT (comma-separated). The first value column is the param key X.
extract() { # bench x-key split-keys filter
  awk -F, -v bench="$1" -v xkey="$2" -v split_keys="$3" -v filter="$4" -v dir="$tmp" '
    function get(p, k,   n, i, kv, a) {
      n = split(p, a, " ")
      for (i = 1; i <= n; i++) { split(a[i], kv, "="); if (kv[1] == k) return kv[2] }
      return ""
    }
    NR > 1 && $1 == bench && $2 ~ filter && $4 != "nan" {
      n = split(split_keys, ks, ",")
      suffix = ""
      for (i = 1; i <= n; i++) if (ks[i] != "") suffix = suffix "_" ks[i] get($2, ks[i])
      x = get($2, xkey); sub(/%$/, "", x)
      f = dir "/" bench "." $3 suffix ".dat"
      print x, $4, $5, $6 >> f
    }' "$csv"
}

have() { ls "$tmp"/"$1"* >/dev/null 2>&1; }

# ---- space vs n (planner) ----
extract space_plan n f,layout ""
if have space_plan.fusion; then
  cat > "$tmp/space.gp" <<EOF
set terminal $term
set output "$out/space.png"
set multiplot layout 1,2 title "Backup bytes / protected bytes (planner, domain=rank, spares=0)"
set xlabel "n (ranks = failure domains)"
set ylabel "backup bytes / protected bytes"
set key top right
set grid
set yrange [0:*]
set xrange [1.5:*]
set title "equal sizes"
plot for [f=1:3] "$tmp/space_plan.fusion_f".f."_layoutequal.dat" u 1:2 w lp lw 2 pt 7 lc f t "fusion f=".f, \
     for [f=1:3] "$tmp/space_plan.replicate_f".f."_layoutequal.dat" u 1:2 w l dt 2 lw 2 lc f t "replication f=".f
set title "unequal sizes (rank r holds (1 + r mod 4)/4)"
plot for [f=1:3] "$tmp/space_plan.fusion_f".f."_layoutunequal.dat" u 1:2 w lp lw 2 pt 7 lc f t "fusion f=".f, \
     for [f=1:3] "$tmp/space_plan.replicate_f".f."_layoutunequal.dat" u 1:2 w l dt 2 lw 2 lc f t "replication f=".f
unset multiplot
EOF
  gnuplot "$tmp/space.gp" && echo "wrote $out/space.png"
fi

# ---- update throughput vs f ----
extract update f sync,op ""
if have update.fusion; then
  cat > "$tmp/update.gp" <<EOF
set terminal $term
set output "$out/update.png"
set multiplot layout 1,2 title "Stack and map operations per second per rank (median, bars: min-max)"
set xlabel "f (faults tolerated)"
set ylabel "operations / s / rank"
set logscale y
set format y "%g"
set grid
set xrange [0.7:3.3]
set xtics 1
set key bottom left font ",8"
ops = "put update remove push pop"
do for [s in "op batch"] {
  set title "sync=".s
  plot for [i=1:5] "$tmp/update.fusion_sync".s."_op".word(ops,i).".dat" u 1:2:3:4 w yerrorlines lw 2 pt 7 lc i t "fusion ".word(ops,i), \
       for [i=1:5] "$tmp/update.replicate_sync".s."_op".word(ops,i).".dat" u (\$1+0.08):2:3:4 w yerrorlines dt 2 lw 1 pt 6 lc i t "replication ".word(ops,i)
}
unset multiplot
EOF
  gnuplot "$tmp/update.gp" && echo "wrote $out/update.png"
fi

# ---- checkpoint time vs changed fraction ----
extract checkpoint changed size,f ""
if have checkpoint.fusion; then
  series=$(cd "$tmp" && ls checkpoint.fusion_*.dat | sed 's/^checkpoint\.fusion_//; s/\.dat$//' | sort -V)
  {
    echo "set terminal $term"
    echo "set output \"$out/checkpoint.png\""
    echo 'set title "fuze_checkpoint time vs chunks changed (median, bars: min-max)"'
    echo 'set xlabel "chunks changed (%)"'
    echo 'set ylabel "time (ms)"'
    echo 'set logscale y'
    echo 'set grid'
    echo 'set key top left font ",8"'
    echo 'set format y "%g"'
    echo 'set xtics ("0" 0, "1" 1, "10" 2, "100" 3)'
    echo 'set xrange [-0.3:3.3]'
    echo 'pos(x) = x == 0 ? 0 : x <= 1 ? 1 : x <= 10 ? 2 : 3'
    printf 'plot '
    i=1
    sep=''
    for s in $series; do
      label=$(echo "$s" | sed 's/^size//; s/_f/ f=/')
      printf '%s"%s/checkpoint.fusion_%s.dat" u (pos($1)):2:3:4 w yerrorlines lw 2 pt 7 lc %d t "fusion %s"' "$sep" "$tmp" "$s" "$i" "$label"
      sep=', '
      printf '%s"%s/checkpoint.replicate_%s.dat" u (pos($1)+0.05):2:3:4 w yerrorlines dt 2 lw 2 pt 6 lc %d t "replication %s"' "$sep" "$tmp" "$s" "$i" "$label"
      if [ -f "$tmp/checkpoint.memcpy_$s.dat" ]; then
        printf '%s"%s/checkpoint.memcpy_%s.dat" u ($1 > 0 ? pos($1) : 1/0):2 w lp dt 3 lw 1 pt 2 lc %d t "memcpy floor %s"' "$sep" "$tmp" "$s" "$i" "$label"
      fi
      i=$((i + 1))
    done
    echo
  } > "$tmp/checkpoint.gp"
  gnuplot "$tmp/checkpoint.gp" && echo "wrote $out/checkpoint.png"
fi

# ---- recovery time vs t ----
extract recovery t f,size ""
if have recovery.fusion; then
  series=$(cd "$tmp" && ls recovery.fusion_*.dat | sed 's/^recovery\.fusion_//; s/\.dat$//' | sort -V)
  {
    echo "set terminal $term"
    echo "set output \"$out/recovery.png\""
    echo 'set title "fuze_recover time vs wiped ranks (median, bars: min-max)"'
    echo 'set xlabel "t (ranks wiped)"'
    echo 'set ylabel "time (ms)"'
    echo 'set grid'
    echo 'set yrange [0:*]'
    echo 'set xtics 1'
    echo 'set xrange [0.7:*]'
    echo 'set key top left'
    printf 'plot '
    i=1
    sep=''
    for s in $series; do
      label=$(echo "$s" | sed 's/^f/f=/; s/_size/ /')
      printf '%s"%s/recovery.fusion_%s.dat" u 1:2:3:4 w yerrorlines lw 2 pt 7 lc %d t "fusion %s"' "$sep" "$tmp" "$s" "$i" "$label"
      sep=', '
      printf '%s"%s/recovery.replicate_%s.dat" u ($1+0.03):2:3:4 w yerrorlines dt 2 lw 2 pt 6 lc %d t "replication %s"' "$sep" "$tmp" "$s" "$i" "$label"
      i=$((i + 1))
    done
    echo
  } > "$tmp/recovery.gp"
  gnuplot "$tmp/recovery.gp" && echo "wrote $out/recovery.png"
fi

# ---- concurrency ----
extract concurrency k lock ""
if have concurrency.fusion; then
  cat > "$tmp/concurrency.gp" <<EOF
set terminal $term
set output "$out/concurrency.png"
set title "k primaries updating one backup: aggregate map updates / s (median, bars: min-max)"
set xlabel "k (primaries sharing the backup; replication: k separate backups)"
set ylabel "updates / s (all primaries)"
set logscale x 2
set xrange [0.9:*]
set logscale y
set format y "%g"
set grid
set key bottom left
plot "$tmp/concurrency.fusion_lockshared.dat" u 1:2:3:4 w yerrorlines lw 2 pt 7 lc 1 t "fusion, shared lock_all (fine-grained)", \
     "$tmp/concurrency.fusion_lockexclusive.dat" u 1:2:3:4 w yerrorlines lw 2 pt 5 lc 2 t "fusion, lock=exclusive", \
     "$tmp/concurrency.replicate_lockshared.dat" u 1:2:3:4 w yerrorlines dt 2 lw 2 pt 6 lc 3 t "replication, shared", \
     "$tmp/concurrency.replicate_lockexclusive.dat" u 1:2:3:4 w yerrorlines dt 2 lw 2 pt 4 lc 4 t "replication, lock=exclusive"
EOF
  gnuplot "$tmp/concurrency.gp" 2>/dev/null && echo "wrote $out/concurrency.png"
fi
