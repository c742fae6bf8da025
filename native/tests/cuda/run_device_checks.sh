#!/usr/bin/env bash
# One scripted GPU-machine call: build the engine with CUDA, run every GPU check, the
# transformers comparison, the training benchmark and the PyTorch anchor, then print a compact
# summary. Logs go to $OUT (the device tool brings them back).
#   bash native/tests/cuda/run_device_checks.sh [checks|bench|all]   (default all)
# The anchor script is read from .devcarry/torch_anchor.py (a copy of shared/bench, carried).
set -u
WHAT=${1:-all}
OUT=${OUT:-/tmp/lcx_device_out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
NATIVE=$ROOT/native
BUILD=$NATIVE/build/cuda
export PATH=/usr/local/cuda/bin:$PATH PYTHONUNBUFFERED=1
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
summary=()
note() { summary+=("$1"); echo "### $1"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
t0=$(date +%s)
# sm_90 only here (the device is Hopper); the default build targets 80;89;90.
cmake -S "$NATIVE" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCX_WITH_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; note "cmake FAILED"; }
ninja -C "$BUILD" -k 0 longctx_engine longctx test_cuda_backend test_cuda_attention gpu_train_bench \
  >> "$OUT/build.log" 2>&1
brc=$?
grep -E "error|FAILED|warning: .*spill" "$OUT/build.log" | head -60
note "build rc=$brc in $(( $(date +%s) - t0 ))s"

run_test() {  # name timeout
  local exe=$BUILD/$1
  if [ ! -x "$exe" ]; then note "$1: NOT BUILT"; return; fi
  local t=$(date +%s)
  timeout "$2" "$exe" > "$OUT/$1.log" 2>&1
  local rc=$?
  grep -E "FAIL|SKIP|passed, .* failed" "$OUT/$1.log" | head -40
  note "$1 rc=$rc ($(tail -1 "$OUT/$1.log")) in $(( $(date +%s) - t ))s"
}

if [ "$WHAT" != bench ]; then
  run_test test_cuda_attention 150
  sed -n '/attention timing/,$p' "$OUT/test_cuda_attention.log"
  run_test test_cuda_backend 150
  if [ -f "$BUILD/liblongctx.so" ]; then
    timeout 120 python3 "$NATIVE/tests/cuda/check_transformers.py" "$BUILD/liblongctx.so" > "$OUT/hf.log" 2>&1
    note "transformers check rc=$? : $(tail -1 "$OUT/hf.log")"
    grep -E "FAIL|Error|error" "$OUT/hf.log" | head -20
  fi
fi

if [ "$WHAT" != checks ]; then
  if [ -x "$BUILD/gpu_train_bench" ]; then
    timeout 240 "$BUILD/gpu_train_bench" --json "$OUT/bench.json" > "$OUT/bench.log" 2>&1
    note "gpu_train_bench rc=$?"
    sed -n '/^T /,$p' "$OUT/bench.log"
    grep -E "ERROR" "$OUT/bench.log" | head
  fi
  if [ -f "$ROOT/.devcarry/torch_anchor.py" ]; then
    timeout 150 python3 "$ROOT/.devcarry/torch_anchor.py" train xl 2048 4096 8192 > "$OUT/anchor.log" 2>&1
    note "torch anchor rc=$?"
    grep '^{' "$OUT/anchor.log"
  fi
  [ -f "$OUT/bench.json" ] && [ -f "$OUT/anchor.log" ] && \
    python3 "$NATIVE/tests/cuda/summarize_bench.py" "$OUT/bench.json" "$OUT/anchor.log" | tee -a "$OUT/bench.log"
fi
echo "================ summary"
printf '%s\n' "${summary[@]}"
