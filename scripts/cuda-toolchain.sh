#!/usr/bin/env bash
# A compile-only CUDA 13 toolchain from PyPI wheels, for `--features cuda` builds on a machine
# without the CUDA toolkit (no GPU needed). Prints the environment to export at the end.
#
#   scripts/cuda-toolchain.sh [TREE]        # default TREE=/work/cuda-toolchain
#   eval "$(scripts/cuda-toolchain.sh --env [TREE])"
#   CARGO_TARGET_DIR=/work/target-cuda cargo check -p heads --features cuda --tests
#
# What it does (see /work/shared/CANDLE_NOTES.md): downloads nvcc, nvvm, crt, the runtime
# headers and CCCL (enough for `cargo check`, which runs candle-kernels' nvcc build script but
# links nothing), plus cudart, cuBLAS, cuRAND and NVRTC libraries when FULL=1 (needed to link
# test binaries); unzips them into one tree; makes bin/ and nvvm/bin/ executable; adds
# unversioned .so links; and builds a libcuda stub (every cu* symbol cudarc declares,
# returning CUDA_ERROR_NO_DEVICE, soname libcuda.so.1) so that linking works without a
# driver and the linked tests run, saying "skipped: no GPU". Wheel
# versions: CUDA 13.0 (PTX from nvcc 13.N needs a driver for CUDA >= 13.N; 13.0 runs on
# every CUDA 13 driver). Override with CUDA_WHEEL_VERSION.
set -euo pipefail

if [[ "${1:-}" == "--env" ]]; then
  TREE=${2:-/work/cuda-toolchain}
  echo "export PATH=$TREE/cuda/bin:\$PATH CUDA_HOME=$TREE/cuda CUDA_PATH=$TREE/cuda"
  echo "export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90} CUDARC_CUDA_VERSION=\${CUDARC_CUDA_VERSION:-13000}"
  echo "export LIBRARY_PATH=$TREE/cuda/lib:\${LIBRARY_PATH:-} LD_LIBRARY_PATH=$TREE/cuda/lib:\${LD_LIBRARY_PATH:-}"
  exit 0
fi

TREE=${1:-/work/cuda-toolchain}
PY=${DETECT_PYTHON:-/work/venv/bin/python}
VER=${CUDA_WHEEL_VERSION:-13.0.*}
# cuRAND has its own numbering: 10.4.0.x is the release of CUDA 13.0.
CURAND_VER=${CURAND_WHEEL_VERSION:-10.4.0.*}
PKGS=(nvidia-cuda-nvcc nvidia-nvvm nvidia-cuda-crt nvidia-cuda-runtime nvidia-cuda-cccl)
if [[ "${FULL:-0}" == 1 ]]; then
  PKGS+=(nvidia-cublas nvidia-curand nvidia-cuda-nvrtc)
fi

mkdir -p "$TREE/wheels" "$TREE/unpacked" "$TREE/cuda/lib"
for p in "${PKGS[@]}"; do
  v=$VER
  [[ $p == nvidia-curand ]] && v=$CURAND_VER
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$TREE/wheels" "$p==$v"
done
for w in "$TREE"/wheels/*.whl; do
  unzip -oq "$w" -d "$TREE/unpacked"
done

# The wheels install under nvidia/cu13/ (bin, include, lib, nvvm); merge them into one tree.
ROOT=$(dirname "$(find "$TREE/unpacked" -path '*/bin/nvcc' | head -1)")/..
cp -a "$ROOT"/. "$TREE/cuda/"
for d in "$TREE"/unpacked/nvidia/*/; do
  [[ -d "$d/include" ]] && cp -a "$d/include/." "$TREE/cuda/include/" || true
  [[ -d "$d/lib" ]] && cp -a "$d/lib/." "$TREE/cuda/lib/" || true
done
chmod +x "$TREE"/cuda/bin/* "$TREE"/cuda/nvvm/bin/* 2>/dev/null || true
[[ -e "$TREE/cuda/lib64" ]] || ln -s lib "$TREE/cuda/lib64"

# Unversioned .so names for the linker (libfoo.so.13 -> libfoo.so).
for so in "$TREE"/cuda/lib/lib*.so.*; do
  [[ -e "$so" ]] || continue
  base=${so%%.so.*}.so
  [[ -e "$base" ]] || ln -s "$(basename "$so")" "$base"
done

# libcuda stub: every cu* function cudarc's driver bindings declare, each returning
# CUDA_ERROR_NO_DEVICE (100), so a binary linked against it runs and reports "no GPU".
SYS=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys 2>/dev/null | head -1)
if [[ -n "$SYS" ]]; then
  grep -rhoE 'pub (unsafe )?fn cu[A-Za-z0-9_]+' "$SYS" | sed -E 's/.*fn //' | sort -u \
    | awk '{print "int " $1 "(void) { return 100; }"}' > "$TREE/cuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$TREE/cuda/lib/libcuda.so.1" "$TREE/cuda_stub.c"
  ln -sf libcuda.so.1 "$TREE/cuda/lib/libcuda.so"
else
  echo "note: cudarc sources not in ~/.cargo/registry yet (run cargo fetch); no libcuda stub" >&2
fi

"$TREE/cuda/bin/nvcc" --version | tail -2
echo "toolchain ready in $TREE/cuda; now: eval \"\$($0 --env $TREE)\""
