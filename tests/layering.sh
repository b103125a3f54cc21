#!/usr/bin/env bash
# layering.sh SRC_DIR OBJ_DIR: fails when a layer of fuze depends on a layer
# above it (docs/design.md, "Layers"):
#
#   core (0) < comm (1) < data (2) < proto (3) < ctx (4)
#
# 1. includes: every #include "layer/file.h" of src/LAYER/* names a layer at
#    or below LAYER, and core includes neither <mpi.h> nor <mpio.h>;
# 2. links: every fuze symbol an object of LAYER references is defined by an
#    object of a layer at or below it, and no core object references an MPI
#    symbol (MPI_*, PMPI_*, ompi_*) -- the parallel hdf5.h includes mpi.h, so
#    this, not the include path alone, is what keeps MPI out of core.
# OBJ_DIR holds the object files (src/CMakeFiles of the build tree).
# Prints every violation; exit 1 if any.
set -euo pipefail

src=${1:?usage: layering.sh SRC_DIR OBJ_DIR}
obj=${2:?usage: layering.sh SRC_DIR OBJ_DIR}
layers=(core comm data proto ctx)
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done
bad=0

fail() {
  echo "layering: $*"
  bad=1
}

# ---- 1. includes ----
nfiles=0
for layer in "${layers[@]}"; do
  [[ -d $src/$layer ]] || { fail "missing layer directory $src/$layer"; continue; }
  for f in "$src/$layer"/*.[ch]; do
    nfiles=$((nfiles + 1))
    while IFS=: read -r line inc; do
      [[ $inc == fuze.h ]] && continue # the public header: below every layer
      target=${inc%%/*}
      if [[ -z ${rank[$target]+x} ]]; then
        fail "${f#"$src"/}:$line includes \"$inc\", which is not in a layer directory"
      elif ((rank[$target] > rank[$layer])); then
        fail "${f#"$src"/}:$line ($layer) includes \"$inc\" ($target): an upward dependency"
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
             sed 's/^\([0-9]*\):.*"\([^"]*\)".*/\1:\2/')
    if [[ $layer == core ]] && grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(mpi|mpio)\.h>' "$f"; then
      fail "${f#"$src"/} (core) includes an MPI header"
    fi
  done
done
((nfiles > 0)) || fail "no sources found under $src"

# ---- 2. links ----
declare -A def_layer
declare -A objs_of
nobj=0
while IFS= read -r o; do
  layer=$(basename "$(dirname "$o")")
  [[ -n ${rank[$layer]+x} ]] || continue
  base=$(basename "$o" .o)
  [[ -f $src/$layer/$base ]] || continue # a stale object of a source that is gone
  nobj=$((nobj + 1))
  objs_of[$layer]+="$o "
  while read -r sym; do
    def_layer[$sym]=$layer
  done < <(nm -g --defined-only "$o" | awk '$3 ~ /^fuze_/ {print $3}')
done < <(find "$obj" -path '*fuze_core_obj.dir/*.o' -o -path '*fuze_rt_obj.dir/*.o')
((nobj > 0)) || fail "no object files found under $obj (build first)"

for layer in "${layers[@]}"; do
  for o in ${objs_of[$layer]:-}; do
    name=${o##*.dir/}
    while read -r sym; do
      d=${def_layer[$sym]:-}
      if [[ -z $d ]]; then
        fail "$name references $sym, which no fuze object defines"
      elif ((rank[$d] > rank[$layer])); then
        fail "$name ($layer) calls $sym, defined in $d: an upward dependency"
      fi
    done < <(nm -u "$o" | awk '$2 ~ /^fuze_/ {print $2}')
    if [[ $layer == core ]]; then
      while read -r sym; do
        fail "$name (core) references the MPI symbol $sym"
      done < <(nm -u "$o" | awk '$2 ~ /^(P?MPI_|ompi_|mpi_)/ {print $2}')
    fi
  done
done

if ((bad)); then
  echo "layering: FAILED"
  exit 1
fi
echo "layering: $nfiles sources and $nobj objects in ${#layers[@]} layers depend downward only"
