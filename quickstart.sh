#!/usr/bin/env bash
# fuze quick start on Debian 12.
#   ./quickstart.sh demo   build (preset "default") and run the heat2d demo on 8 ranks
#   ./quickstart.sh test   build (preset "default") and run the test suite
#   ./quickstart.sh asan   build (preset "asan") and run the test suite under ASan/UBSan
#   ./quickstart.sh tsan   build (preset "tsan") and run the threads and unit tests under TSan
#   ./quickstart.sh mpich  build with MPICH (preset "mpich") and run its focused test subset
# Each command first installs the Debian packages fuze needs if any is missing
# (apt-get; as root, or through sudo otherwise); mpich also MPICH's, next to Open MPI.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

PACKAGES=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libisal-dev
          libhdf5-openmpi-dev hdf5-tools libhwloc-dev gnuplot-nox gfortran)
# MPICH, installed next to Open MPI: the alternatives keep selecting Open MPI (its
# priority is higher), and the preset mpich names MPICH's programs explicitly.
MPICH_PACKAGES=(libmpich-dev mpich libhdf5-mpich-dev)

# The demo: a 2-D heat equation on 8 ranks, each rank its own failure domain, tolerating 2
# lost domains; ranks 2 and 5 are wiped at the 7th checkpoint and recovered in the job.
DEMO_ARGS=(--nx 256 --ny 256 --steps 400 --every 20
           --config "faults=2;domain=rank;inject=wipe:ranks=2+5:at=checkpoint:7")
DEMO_NP=8

usage() {
  sed -n '2,10s/^# \{0,1\}//p' "$0"
}

die() {
  echo "quickstart: $*" >&2
  exit 1
}

# Install the packages that are missing (all of them on a fresh machine).
ensure_packages() {
  local want=("${PACKAGES[@]}" "$@")
  command -v dpkg-query >/dev/null 2>&1 ||
    die "this script expects Debian 12 (dpkg/apt-get); install by hand: ${want[*]}"
  local missing=() p
  for p in "${want[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]]; then
      missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  echo "quickstart: installing ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

setup_env() {
  if [[ $(id -u) -eq 0 ]]; then
    # Open MPI refuses to run as root unless told it is intended (containers, CI).
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
}

build() {
  local preset=$1
  cmake --preset "$preset"
  cmake --build --preset "$preset"
}

run_demo() {
  build default
  local heat2d=build/default/apps/heat2d/heat2d
  [[ -x $heat2d ]] || die "$heat2d was not built"
  echo "quickstart: mpirun --oversubscribe -np $DEMO_NP $heat2d $(printf '%q ' "${DEMO_ARGS[@]}")"
  mpirun --oversubscribe -np "$DEMO_NP" "$heat2d" "${DEMO_ARGS[@]}"
}

main() {
  [[ $# -eq 1 ]] || { usage >&2; exit 2; }
  case $1 in
    demo) ensure_packages; setup_env; run_demo ;;
    test) ensure_packages; setup_env; build default; ctest --preset default ;;
    asan) ensure_packages; setup_env; build asan; ctest --preset asan ;;
    tsan) ensure_packages; setup_env; build tsan; ctest --preset tsan ;;
    mpich) ensure_packages "${MPICH_PACKAGES[@]}"; build mpich; ctest --preset mpich ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
