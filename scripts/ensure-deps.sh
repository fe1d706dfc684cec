#!/usr/bin/env bash
# ensure-deps.sh GROUP - makes sure the Debian packages a build step needs are installed.
# As root, missing packages are installed with apt-get; otherwise the exact command is printed
# and the script fails. Groups: base (library, CLI, tests), bench, fuzz, aarch64,
# llama (tools/build-llama-cpp.sh: the llama.cpp peer).
set -eu
group=${1:-base}
case $group in
    base)    pkgs="gcc make pkg-config libjansson-dev libpcre2-dev libopenblas-dev zlib1g-dev" ;;
    bench)   pkgs="libdnnl-dev time" ;;
    fuzz)    pkgs="clang libclang-rt-14-dev libomp-14-dev" ;;
    aarch64) pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
    llama)   pkgs="cmake clang-16 libomp-16-dev" ;;
    *) echo "ensure-deps.sh: unknown group '$group'" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "installing missing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq $missing >/dev/null
else
    echo "missing Debian packages:$missing" >&2
    echo "install them with:  sudo apt-get install -y$missing" >&2
    exit 1
fi
