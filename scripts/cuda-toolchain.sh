#!/usr/bin/env bash
# A CUDA 13 toolchain from PyPI wheels, for `--features cuda` builds on a machine without the
# CUDA toolkit (no GPU needed). Cached per version, so a second run on the same machine only
# checks the tree and prints where it is.
#
#   scripts/cuda-toolchain.sh                 # compile-only tree: enough for `cargo check`
#   FULL=1 scripts/cuda-toolchain.sh          # + the libraries needed to link binaries
#   eval "$(scripts/cuda-toolchain.sh --env)" # PATH, CUDA_HOME, CUDA_COMPUTE_CAP, ...
#   cargo check --workspace --all-targets --features cuda
#
# Where: $DETECT_CUDA_TOOLCHAIN if set, else
# ${XDG_CACHE_HOME:-~/.cache}/detect-cuda-toolchain/cuda-<version> (wheels are kept beside it,
# in .../detect-cuda-toolchain/wheels). Interpreter for `pip download`: $DETECT_PYTHON, default
# python3. Versions: CUDA_WHEEL_VERSION (13.0), CURAND_WHEEL_VERSION (10.4.0, cuRAND's own
# number for CUDA 13.0), CUDNN_WHEEL_VERSION (9.13), NCCL_WHEEL_VERSION (2.27.7).
#
# What it does (see CANDLE_NOTES.md): downloads nvcc, nvvm, crt, the runtime headers and CCCL
# (what candle-kernels' build script uses; `cargo check` links nothing), and with FULL=1 also
# cudart, cuBLAS, cuRAND, NVRTC, cuDNN and NCCL (needed to link binaries); unzips them into
# one tree; makes bin/ and nvvm/bin/ executable; adds unversioned .so links; and builds a
# libcuda stub (every cu* symbol cudarc declares, returning CUDA_ERROR_NO_DEVICE, soname
# libcuda.so.1) so that binaries link without a driver and, run here, report "no GPU". On a GPU
# machine the driver's real libcuda.so.1 is loaded instead (the stub is never shipped).
# CUDA 13.0 because PTX from nvcc 13.N needs a driver for CUDA >= 13.N; 13.0 runs on every
# CUDA 13 driver (the GPU test machine has driver 580 = CUDA 13.0).
set -euo pipefail

die() {
  echo "cuda-toolchain.sh: error: $*" >&2
  exit 1
}

VER=${CUDA_WHEEL_VERSION:-13.0}
CURAND_VER=${CURAND_WHEEL_VERSION:-10.4.0}
CUDNN_VER=${CUDNN_WHEEL_VERSION:-9.13}
NCCL_VER=${NCCL_WHEEL_VERSION:-2.27.7}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/detect-cuda-toolchain
TREE=${DETECT_CUDA_TOOLCHAIN:-$CACHE/cuda-$VER}
# CUDARC_CUDA_VERSION spelling: 13.0 -> 13000.
CUDARC_VER=$(echo "$VER" | awk -F. '{printf "%d0%d0", $1, $2}')

if [[ "${1:-}" == "--env" ]]; then
  [[ -x "$TREE/cuda/bin/nvcc" ]] || die "no toolchain in $TREE yet: run $0 first"
  echo "export PATH=$TREE/cuda/bin:\$PATH CUDA_HOME=$TREE/cuda CUDA_PATH=$TREE/cuda"
  echo "export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90} CUDARC_CUDA_VERSION=$CUDARC_VER"
  echo "export LIBRARY_PATH=$TREE/cuda/lib:\${LIBRARY_PATH:-} LD_LIBRARY_PATH=$TREE/cuda/lib:\${LD_LIBRARY_PATH:-}"
  exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument '$1' (usage: $0 [--env]; set DETECT_CUDA_TOOLCHAIN to choose the folder)"

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${DETECT_PYTHON:-python3}
FULL=${FULL:-0}
MARK="$TREE/cuda/.complete-base"
[[ $FULL == 1 ]] && MARK="$TREE/cuda/.complete-full"
if [[ -e "$MARK" && -x "$TREE/cuda/bin/nvcc" ]]; then
  echo "cached toolchain: $TREE/cuda ($(basename "$MARK"))"
  "$TREE/cuda/bin/nvcc" --version | tail -1
  echo "now: eval \"\$($0 --env)\""
  exit 0
fi

command -v "$PY" >/dev/null || die "interpreter '$PY' not found (set DETECT_PYTHON)"
"$PY" -m pip --version >/dev/null 2>&1 || die "'$PY -m pip' does not work (install pip or set DETECT_PYTHON)"
command -v unzip >/dev/null || die "unzip not found (apt-get install unzip)"
command -v cc >/dev/null || die "no C compiler 'cc' (needed for the libcuda stub)"

PKGS=("nvidia-cuda-nvcc==$VER.*" "nvidia-nvvm==$VER.*" "nvidia-cuda-crt==$VER.*"
  "nvidia-cuda-runtime==$VER.*" "nvidia-cuda-cccl==$VER.*")
if [[ $FULL == 1 ]]; then
  PKGS+=("nvidia-cublas==$VER.*" "nvidia-curand==$CURAND_VER.*" "nvidia-cuda-nvrtc==$VER.*"
    "nvidia-cudnn-cu13==$CUDNN_VER.*" "nvidia-nccl-cu13==$NCCL_VER")
fi

mkdir -p "$CACHE/wheels" "$TREE/unpacked" "$TREE/cuda/lib" || die "cannot create $TREE"
for p in "${PKGS[@]}"; do
  echo "pip download $p"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$CACHE/wheels" "$p" \
    || die "pip download of $p failed (network? version? see pip's message above)"
done
for p in "${PKGS[@]}"; do
  # The wheel's file name: distribution with '-' -> '_', then '-<version>-'.
  name=${p%%==*}
  pattern=${p#*==}
  pattern=${pattern%.\*}
  w=$(ls "$CACHE/wheels/${name//-/_}-$pattern"*.whl 2>/dev/null | sort -V | tail -1 || true)
  [[ -n "$w" ]] || die "no wheel for $p in $CACHE/wheels after the download"
  unzip -oq "$w" -d "$TREE/unpacked" || die "unzip of $w failed"
done

# The CUDA wheels install under nvidia/cu13/ (bin, include, lib, nvvm), cuDNN and NCCL under
# nvidia/cudnn, nvidia/nccl; merge them into one tree.
NVCC=$(find "$TREE/unpacked" -path '*/bin/nvcc' -type f | head -1)
[[ -n "$NVCC" ]] || die "no bin/nvcc in the unpacked nvidia-cuda-nvcc wheel ($TREE/unpacked)"
cp -a "$(dirname "$NVCC")/.."/. "$TREE/cuda/" || die "copying the CUDA tree failed"
for d in "$TREE"/unpacked/nvidia/*/; do
  if [[ -d "$d/include" ]]; then cp -a "$d/include/." "$TREE/cuda/include/" || die "copy of $d/include failed"; fi
  if [[ -d "$d/lib" ]]; then cp -a "$d/lib/." "$TREE/cuda/lib/" || die "copy of $d/lib failed"; fi
done
chmod +x "$TREE"/cuda/bin/* || die "chmod of $TREE/cuda/bin failed"
if [[ -d "$TREE/cuda/nvvm/bin" ]]; then chmod +x "$TREE"/cuda/nvvm/bin/*; fi
[[ -e "$TREE/cuda/lib64" ]] || ln -s lib "$TREE/cuda/lib64"

# Unversioned .so names for the linker (libfoo.so.13 -> libfoo.so).
for so in "$TREE"/cuda/lib/lib*.so.*; do
  [[ -e "$so" ]] || continue
  base=${so%%.so.*}.so
  [[ -e "$base" ]] || ln -s "$(basename "$so")" "$base"
done

# libcuda stub from the declarations of the cudarc version in Cargo.lock (fetched if needed).
CUDARC=$(awk '/^name = "cudarc"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$REPO/Cargo.lock")
[[ -n "$CUDARC" ]] || die "no cudarc in $REPO/Cargo.lock"
find_sys() {
  ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$CUDARC"/src/driver/sys 2>/dev/null | head -1 || true
}
SYS=$(find_sys)
if [[ -z "$SYS" ]]; then
  echo "cudarc $CUDARC sources not in the cargo registry yet: cargo fetch"
  (cd "$REPO" && cargo fetch) || die "cargo fetch failed (needed for cudarc's sources)"
  SYS=$(find_sys)
  [[ -n "$SYS" ]] || die "cudarc-$CUDARC/src/driver/sys not found under ${CARGO_HOME:-$HOME/.cargo}/registry/src after cargo fetch"
fi
grep -rhoE 'pub (unsafe )?fn cu[A-Za-z0-9_]+' "$SYS" | sed -E 's/.*fn //' | sort -u \
  | awk '{print "int " $1 "(void) { return 100; }"}' >"$TREE/cuda_stub.c"
[[ -s "$TREE/cuda_stub.c" ]] || die "no cu* declarations found in $SYS"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$TREE/cuda/lib/libcuda.so.1" "$TREE/cuda_stub.c" \
  || die "building the libcuda stub failed"
ln -sf libcuda.so.1 "$TREE/cuda/lib/libcuda.so"

"$TREE/cuda/bin/nvcc" --version | tail -1 || die "the unpacked nvcc does not run"
rm -rf "$TREE/unpacked"
touch "$TREE/cuda/.complete-base"
[[ $FULL == 1 ]] && touch "$MARK"
echo "toolchain ready in $TREE/cuda; now: eval \"\$($0 --env)\""
