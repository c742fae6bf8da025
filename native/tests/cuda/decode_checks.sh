#!/usr/bin/env bash
# One GPU-machine call for the decoding work (NOTES.md, runs 4-5): build, correctness first
# (test_cuda_backend, whose KV-cache == full forward checks run the decode path, with the decode
# CUDA graph on and off), the decode benchmark both ways, then test_cuda_attention.
# Run 4's version of this script also built playground/attention_v4.cu.txt (rejected: slower).
#   bash native/tests/cuda/decode_checks.sh
set -u
OUT=${OUT:-/tmp/lcx_decode_out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
B=/tmp/lcx_build_dec
export PATH=/usr/local/cuda/bin:$PATH
SECONDS=0
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCX_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B test_cuda_attention test_cuda_backend gpu_decode_bench >> "$OUT/build.log" 2>&1 \
  || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
echo "### build ${SECONDS}s"

t() {  # name timeout log
  local s=$SECONDS
  timeout "$2" "$B/$1" > "$OUT/$3" 2>&1
  local rc=$?
  grep -E "FAIL|SKIP|passed, .* failed|generation" "$OUT/$3" | head -30
  echo "### $1 rc=$rc ($(tail -1 "$OUT/$3")) ${s}s -> ${SECONDS}s"
}
t test_cuda_backend 120 backend_graph.log
export LCX_CUDA_DECODE_GRAPH=0; t test_cuda_backend 120 backend_nograph.log; unset LCX_CUDA_DECODE_GRAPH
t gpu_decode_bench 90 decode_graph.log
sed -n '/^| what/,$p' "$OUT/decode_graph.log"
export LCX_CUDA_DECODE_GRAPH=0; t gpu_decode_bench 90 decode_nograph.log; unset LCX_CUDA_DECODE_GRAPH
sed -n '/^| what/,$p' "$OUT/decode_nograph.log"
t test_cuda_attention 120 att.log
sed -n '/attention timing/,$p' "$OUT/att.log" | grep -v "^--"
echo "### done ${SECONDS}s"
