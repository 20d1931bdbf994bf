#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (and a CUDA toolkit, or scripts/cuda-toolchain.sh's tree):
# builds with `--features cuda`, runs the ops tests (each test body runs on CPU and CUDA), then
# the op benchmark on the GPU (ours vs torchvision.ops on CUDA) and prints a short table.
#
#   scripts/gpu-check.sh            # DETECT_PYTHON selects the python with torch + torchvision
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${CUDA_COMPUTE_CAP:-}" ]] && command -v nvidia-smi >/dev/null; then
  CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
  export CUDA_COMPUTE_CAP
fi
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader || true

log=$(mktemp)
status=0
cargo test --release -p heads --features cuda \
  --test ops_boxes --test ops_nms --test ops_roi_align --test ops_multi_scale \
  -- --nocapture 2>&1 | tee "$log" || status=$?

echo
echo "| ops test binary | result |"
echo "|---|---|"
grep -E "^     Running|^test result" "$log" | paste - - \
  | sed -E 's#.*tests/(ops_[a-z_]+)\.rs.*test result: ([a-zA-Z]+)\. ([0-9]+) passed; ([0-9]+) failed.*#| \1 | \2: \3 passed, \4 failed |#'
if grep -q "skipped: no GPU" "$log"; then
  echo "WARNING: the CUDA half of the tests was skipped (no GPU visible)"
  status=1
fi

echo
DETECT_BENCH_DEVICE=cuda cargo run --release --features cuda --example bench_ops
exit $status
