#!/usr/bin/env bash
# Builds what the GPU test machine runs (it has no cargo and no network): one stripped x86-64
# release `detect` with `--features cuda`, xz-compressed (the binary is ~62 MiB, mostly candle's
# PTX text; detect.xz is ~8 MiB), in a git-ignored folder, checked to fit in 64 MiB with the
# tracked tree. scripts/gpu-run.sh decompresses it there (xz, else python3's lzma).
#
#   scripts/gpu-build.sh [DIR]          # default DIR=gpu-bundle
#   # then, there, from a copy of this tree with DIR in it (DIR is git-ignored: with the device
#   # tool, name it in `carry`):
#   scripts/gpu-run.sh gpu-bundle
#
# Uses scripts/cuda-toolchain.sh with FULL=1 (CUDA 13.0 wheels from PyPI: the binary links
# cuBLAS, cuRAND, NVRTC and cuDNN, found there in python3's nvidia wheels; libcuda is the
# driver's). CUDA_COMPUTE_CAP defaults to 90 (H100/H200). Cold build: ~15-25 min on 2 cores.
# CARGO_TARGET_DIR defaults to target/cuda-release (apart from the CPU build).
set -euo pipefail

die() {
  echo "gpu-build.sh: error: $*" >&2
  exit 1
}

cd "$(dirname "$0")/.."
DIR=${1:-gpu-bundle}
LIMIT=$((64 * 1024 * 1024))
[[ $(uname -m) == x86_64 ]] || die "this machine is $(uname -m); the GPU machine needs x86-64 binaries"
command -v strip >/dev/null || die "strip not found (binutils)"

FULL=1 scripts/cuda-toolchain.sh || die "the CUDA toolchain could not be set up (see above)"
cuda_env=$(scripts/cuda-toolchain.sh --env) || die "scripts/cuda-toolchain.sh --env failed"
eval "$cuda_env"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda-release}

t0=$(date +%s)
cargo build --release --features cuda --bin detect || die "cargo build --release --features cuda failed"
# The ops benchmark of gpu-run.sh's bench step (examples/bench_ops.rs on the GPU).
cargo build --release --features cuda --example bench_ops || die "cargo build --release --features cuda --example bench_ops failed"
echo "build: $(($(date +%s) - t0)) s"

rm -rf "$DIR"
mkdir -p "$DIR"
# pack NAME PATH: stripped and xz-compressed into $DIR/NAME.xz
pack() {
  cp "$2" "$DIR/$1.raw"
  strip "$DIR/$1.raw" || die "strip failed"
  echo "stripped $1: $(du -b "$DIR/$1.raw" | awk '{printf "%.1f MiB", $1 / 1048576}')"
  if command -v xz >/dev/null; then
    xz -T2 -6 -c "$DIR/$1.raw" >"$DIR/$1.xz" || die "xz failed"
  else
    "${DETECT_PYTHON:-python3}" -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.compress(open(sys.argv[1], "rb").read(), preset=6))' \
      "$DIR/$1.raw" "$DIR/$1.xz" || die "compressing with python3's lzma failed"
  fi
  rm "$DIR/$1.raw"
}
echo "libraries detect needs there (from the driver and python3's nvidia wheels):"
readelf -d "$CARGO_TARGET_DIR/release/detect" | awk '/NEEDED/ {print "  " $NF}' | tr -d '[]'
pack detect "$CARGO_TARGET_DIR/release/detect"
pack bench_ops "$CARGO_TARGET_DIR/release/examples/bench_ops"
{
  echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), glibc $(ldd --version | head -1 | awk '{print $NF}')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "toolchain: $(nvcc --version | tail -1), CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"
} >"$DIR/BUILD_INFO"

bytes=$(du -cb "$DIR" | tail -1 | awk '{print $1}')
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | awk '{print $1}')
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "bundle $DIR: $(mib "$bytes") (limit 64 MiB); with the tracked tree ($(mib "$tree")): $(mib $((bytes + tree)))"
((bytes <= LIMIT)) || die "the bundle is $(mib "$bytes"), over 64 MiB"
((bytes + tree <= LIMIT)) || die "bundle + tracked tree = $(mib $((bytes + tree))), over the 64 MiB that travels to the GPU machine"
