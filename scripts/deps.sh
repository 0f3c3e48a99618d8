#!/usr/bin/env bash
# Installs the Debian packages that building, testing and benchmarking hakmem
# need, when they are missing. Root: apt-get. Not root: prints the command.
# Usage: scripts/deps.sh [build|test|bench|all]   (default: all)
set -euo pipefail
what=${1:-all}

build=(gcc g++ make pkg-config libc6-dev systemtap-sdt-dev libcjson-dev libreadline-dev clang llvm libbpf-dev bpftool)
test=(python3 perl git coreutils sqlite3 tmux procps util-linux libtsan2 valgrind curl systemd man-db redis-server redis-tools)
bench=(libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 gnuplot-nox redis-server redis-tools valgrind strace)

pkgs=()
case "$what" in
  build) pkgs=("${build[@]}") ;;
  test) pkgs=("${build[@]}" "${test[@]}") ;;
  bench) pkgs=("${build[@]}" "${bench[@]}") ;;
  all) pkgs=("${build[@]}" "${test[@]}" "${bench[@]}") ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "hakmem: missing Debian packages: ${missing[*]}" >&2
  echo "run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "hakmem: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
