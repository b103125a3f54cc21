#!/usr/bin/env bash
# fuze quick start on Debian 12.
#   ./quickstart.sh demo   build (preset "default") and run the heat2d demo on 8 ranks
#   ./quickstart.sh test   build (preset "default") and run the test suite
#   ./quickstart.sh asan   build (preset "asan") and run the test suite under ASan/UBSan
#   ./quickstart.sh tsan   build (preset "tsan") and run the threads and unit tests under TSan
#   ./quickstart.sh mpich  build with MPICH (preset "mpich") and run the test suite with it
#   ./quickstart.sh ulfm   in a Debian 13 root (Open MPI 5 with ULFM) at build/ulfm/root:
#                          build, install under /usr/local there, run the tests labelled ulfm
#                          and the demo (heat2d, 3 ranks SIGKILLed, replacements, bit-exact)
#                          and fuze-bench --bench ulfm (16M per rank: FUZE_ULFM_BENCH_SIZE)
#                          (FUZE_ULFM_TESTS=all: the whole suite; a ctest -R regex otherwise)
#   ./quickstart.sh ulfm-exec CMD...   run CMD in that root (in /fuze, the tree), mounts and all
# Each command first installs the Debian packages fuze needs if any is missing
# (apt-get; as root, or through sudo otherwise); mpich also MPICH's, next to Open MPI.
# `ulfm` needs root (debootstrap, mounts).
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
  sed -n '2,17s/^# \{0,1\}//p' "$0"
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

# ---------------------------------------------------------------------------------------------
# The ULFM lane: Debian 13 ("trixie") ships Open MPI 5 with ULFM; Debian 12 has none. A minbase
# trixie root under build/ulfm/root is built once (debootstrap + the packages below), kept
# unpacked and as a zstd tarball (in FUZE_ULFM_CACHE, default /var/cache/fuze-ulfm), and rebuilt
# when ULFM_PACKAGES (or the suite or mirror) change.
ULFM_SUITE=trixie
ULFM_PACKAGES=(openmpi-bin libopenmpi-dev build-essential cmake pkgconf libisal-dev
               libhdf5-openmpi-dev hdf5-tools libhwloc-dev)
ULFM_DIR=build/ulfm
ULFM_MOUNTS=()  # mount points (absolute) made by ulfm_mount, in mount order

ulfm_mirror() {
  local m=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    m=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $m && -r /etc/apt/sources.list ]]; then
    m=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2; exit }' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# Every mount point at or below $1, deepest first (from this process's mount table).
ulfm_mounts_below() {
  local base=$1
  awk -v b="$base" '{ p = $5; gsub(/\\040/, " ", p); if (p == b || index(p, b "/") == 1) print p }' \
    /proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# Unmount everything at or below the root (also what an earlier, killed run left behind).
# Recursive binds were made rslave, so nothing propagates back to the host's /dev or /sys.
ulfm_umount_all() {
  local root=$1 m tries
  [[ -n $root && -d $root ]] || return 0
  for tries in 1 2 3 4 5; do
    local left=()
    mapfile -t left < <(ulfm_mounts_below "$root")
    [[ ${#left[@]} -eq 0 ]] && return 0
    for m in "${left[@]}"; do
      umount "$m" 2>/dev/null || true
    done
    sleep 0.2
  done
  mapfile -t left < <(ulfm_mounts_below "$root")
  for m in "${left[@]}"; do
    echo "quickstart: lazy unmount of busy $m" >&2
    umount -l "$m" 2>/dev/null || true
  done
  mapfile -t left < <(ulfm_mounts_below "$root")
  if [[ ${#left[@]} -ne 0 ]]; then
    echo "quickstart: could not unmount: ${left[*]}" >&2
    return 1
  fi
}

# Processes still running inside the root (chrooted there: /proc/PID/root), which this script
# started (an interrupted build or test): they would keep the mounts busy.
ulfm_kill_inside() {
  local root=$1 p r pids=()
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [[ $r == "$root" ]] && pids+=("${p#/proc/}")
  done
  [[ ${#pids[@]} -eq 0 ]] && return 0
  echo "quickstart: ending ${#pids[@]} processes left in the root: ${pids[*]}" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  sleep 1
  kill -KILL "${pids[@]}" 2>/dev/null || true
  sleep 0.2
}

ulfm_cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [[ -n ${ULFM_ABS_ROOT:-} ]] && ulfm_kill_inside "$ULFM_ABS_ROOT"
  if [[ ${#ULFM_MOUNTS[@]} -ne 0 || -n ${ULFM_ABS_ROOT:-} ]]; then
    ulfm_umount_all "${ULFM_ABS_ROOT:-}" || rc=1
  fi
  exit "$rc"
}

ulfm_mount_one() { # mount args... ; the last argument is the mount point
  mount "$@" || die "mount $* failed"
  ULFM_MOUNTS+=("${!#}")
}

# proc, sys and dev (rbind, then rslave so that unmounting never reaches the host), a private
# tmpfs on dev/shm (Open MPI's shared-memory segments stay inside), the source tree at /fuze.
ulfm_mount() {
  local r=$ULFM_ABS_ROOT
  ulfm_umount_all "$r"
  trap ulfm_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  ulfm_mount_one -t proc proc "$r/proc"
  ulfm_mount_one --rbind /sys "$r/sys"
  mount --make-rslave "$r/sys" || die "mount --make-rslave $r/sys failed"
  ulfm_mount_one --rbind /dev "$r/dev"
  mount --make-rslave "$r/dev" || die "mount --make-rslave $r/dev failed"
  mkdir -p "$r/dev/shm"
  ulfm_mount_one -t tmpfs -o mode=1777,nosuid,nodev,size=4g ulfm-shm "$r/dev/shm"
  mkdir -p "$r/fuze"
  ulfm_mount_one --bind "$PWD" "$r/fuze"
  mount --make-private "$r/fuze" || die "mount --make-private $r/fuze failed"
  cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
  cp -L /etc/hosts "$r/etc/hosts" 2>/dev/null || true
}

# Open MPI 5's btl/tcp pairs no interfaces when it sees this VM's IPv6 address: IPv4 only.
ulfm_chroot() { # command... run inside the root, in /fuze, as root, with Open MPI allowed as root
  chroot "$ULFM_ABS_ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_tcp_disable_family=6 ${FUZE_ULFM_ENV:-} /bin/bash -c 'cd /fuze && "$@"' ulfm "$@"
}

# Build (or reuse) the root. The key names everything that goes into it.
ulfm_root() {
  [[ $(id -u) -eq 0 ]] || die "ulfm needs root (debootstrap, chroot and mounts)"
  local mirror key tarball stamp t0
  mirror=$(ulfm_mirror)
  key=$(printf '%s\n' "$ULFM_SUITE" minbase "$mirror" "${ULFM_PACKAGES[@]}" | sha256sum | cut -c1-16)
  mkdir -p "$ULFM_DIR"
  # One user of the root at a time: a second run would unmount the first one's mounts.
  exec 9>"$ULFM_DIR/lock"
  if ! flock -n 9; then
    echo "quickstart: waiting for another ./quickstart.sh ulfm using $ULFM_DIR"
    flock 9
  fi
  ULFM_ABS_ROOT=$(cd "$ULFM_DIR" && pwd)/root
  # The tarball lives outside the tree, so that a fresh clone (CI) or `rm -rf build` unpacks it
  # instead of running debootstrap again.
  local cache=${FUZE_ULFM_CACHE:-/var/cache/fuze-ulfm}
  mkdir -p "$cache" || die "cannot create the cache directory $cache (FUZE_ULFM_CACHE)"
  tarball=$cache/root-$ULFM_SUITE-$key.tar.zst
  stamp=$ULFM_ABS_ROOT/.fuze-root-key
  [[ -d $ULFM_ABS_ROOT ]] && ulfm_kill_inside "$ULFM_ABS_ROOT"
  ulfm_umount_all "$ULFM_ABS_ROOT"
  if [[ -f $stamp && $(cat "$stamp") == "$key" ]]; then
    echo "quickstart: reusing the $ULFM_SUITE root $ULFM_DIR/root ($key)"
    return 0
  fi
  rm -rf "$ULFM_ABS_ROOT"
  if [[ -f $tarball ]]; then
    t0=$SECONDS
    mkdir -p "$ULFM_ABS_ROOT"
    tar --zstd -xpf "$tarball" -C "$ULFM_ABS_ROOT" --numeric-owner
    echo "$key" >"$stamp"
    echo "quickstart: unpacked $tarball in $((SECONDS - t0)) s"
    return 0
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    echo "quickstart: installing debootstrap"
    apt-get update && apt-get install -y debootstrap zstd
  }
  command -v zstd >/dev/null 2>&1 || apt-get install -y zstd
  t0=$SECONDS
  echo "quickstart: debootstrap --variant=minbase $ULFM_SUITE $ULFM_DIR/root $mirror"
  rm -rf "$ULFM_ABS_ROOT.tmp"
  debootstrap --variant=minbase "$ULFM_SUITE" "$ULFM_ABS_ROOT.tmp" "$mirror" >"$ULFM_DIR/debootstrap.log" 2>&1 ||
    { tail -20 "$ULFM_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $ULFM_DIR/debootstrap.log)"; }
  mv "$ULFM_ABS_ROOT.tmp" "$ULFM_ABS_ROOT"
  echo "quickstart: debootstrap took $((SECONDS - t0)) s"
  t0=$SECONDS
  (
    ulfm_mount
    ulfm_chroot sh -c 'cd / && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" && apt-get clean' \
      apt "${ULFM_PACKAGES[@]}" >"$ULFM_DIR/apt.log" 2>&1 ||
      { tail -20 "$ULFM_DIR/apt.log" >&2; exit 1; }
  ) || die "installing the packages in the root failed (log: $ULFM_DIR/apt.log)"
  echo "quickstart: packages installed in the root in $((SECONDS - t0)) s"
  t0=$SECONDS
  rm -f "$cache"/root-"$ULFM_SUITE"-*.tar.zst
  tar --zstd -cpf "$tarball.tmp.$$" -C "$ULFM_ABS_ROOT" --numeric-owner --one-file-system \
    --exclude=./fuze --exclude=./proc/* --exclude=./sys/* --exclude=./dev/shm/* .
  mv "$tarball.tmp.$$" "$tarball"
  echo "$key" >"$stamp"
  echo "quickstart: cached the root as $tarball in $((SECONDS - t0)) s"
}

run_ulfm() {
  local t0 tests=${FUZE_ULFM_TESTS:-} filter
  t0=$SECONDS
  ulfm_root
  echo "quickstart: root ready in $((SECONDS - t0)) s"
  ulfm_mount
  t0=$SECONDS
  ulfm_chroot sh -c 'cmake --preset ulfm >/dev/null && cmake --build --preset ulfm' ||
    die "building fuze in the $ULFM_SUITE root failed"
  ulfm_chroot cmake --install build/ulfm/build --prefix /usr/local >/dev/null ||
    die "installing fuze under /usr/local in the root failed"
  ulfm_chroot sh -c 'ldconfig && pkg-config --modversion fuze >/dev/null' ||
    die "pkg-config fuze does not work in the root after the install"
  echo "quickstart: built and installed fuze in the root in $((SECONDS - t0)) s"
  t0=$SECONDS
  case $tests in
    "") filter=(-L "^ulfm$") ;;
    all) filter=() ;;
    *) filter=(-R "$tests") ;;
  esac
  local rc=0
  ulfm_chroot ctest --preset ulfm "${filter[@]}" || rc=$?
  echo "quickstart: ulfm tests ran in $((SECONDS - t0)) s"
  if [[ -z $tests || -n ${FUZE_ULFM_DEMO:-} ]]; then
    t0=$SECONDS
    ulfm_chroot bash apps/heat2d/ulfm_demo.sh build/ulfm/build/apps/heat2d/heat2d || rc=1
    echo "quickstart: ulfm demo ran in $((SECONDS - t0)) s"
    t0=$SECONDS
    ulfm_chroot bash apps/fuze-bench/ulfm_bench.sh build/ulfm/build/apps/fuze-bench/fuze-bench \
      "${FUZE_ULFM_BENCH_SIZE:-16M}" || rc=1
    echo "quickstart: ulfm bench ran in $((SECONDS - t0)) s"
  fi
  return "$rc"
}

main() {
  [[ $# -eq 1 || ${1:-} == ulfm-exec ]] || { usage >&2; exit 2; }
  case $1 in
    demo) ensure_packages; setup_env; run_demo ;;
    test) ensure_packages; setup_env; build default; ctest --preset default ;;
    asan) ensure_packages; setup_env; build asan; ctest --preset asan ;;
    tsan) ensure_packages; setup_env; build tsan; ctest --preset tsan ;;
    mpich) ensure_packages "${MPICH_PACKAGES[@]}"; build mpich
           ctest --preset "${FUZE_MPICH_PRESET:-mpich}" ;;  # mpich-ci: the CI's subset
    ulfm) run_ulfm ;;
    ulfm-exec) shift; [[ $# -ge 1 ]] || die "ulfm-exec needs a command"; ulfm_root; ulfm_mount
               ulfm_chroot "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
