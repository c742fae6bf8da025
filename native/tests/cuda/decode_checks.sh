#!/usr/bin/env bash
# One GPU-machine call for the decoding and attention-kernel work (NOTES.md, runs 4-6): build,
# correctness first (test_cuda_backend, whose KV-cache == full forward checks run the decode path:
# decode graph with PDL (default), and without the graph; each also compares the decode fusions on
# and off), then the decode benchmark with PDL on and off and with LCX_CUDA_DECODE_FUSE=0, then
# test_cuda_attention (correctness of every pattern and its timing table), then dense training
# throughput at 2k..16k when the call has time left. (Run 6's version also timed the run-3
# attention kernels, then selectable with LCX_ATTN_PATH=v3.)
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
LCX_CUDA_DECODE_GRAPH=0 t test_cuda_backend 120 backend_nograph.log
t gpu_decode_bench 90 decode_pdl.log
sed -n '/^| what/,$p' "$OUT/decode_pdl.log"
LCX_CUDA_PDL=0 t gpu_decode_bench 90 decode_nopdl.log
sed -n '/^| what/,$p' "$OUT/decode_nopdl.log"
# Run 8: the decode fusions off (separate LayerNorm and merge kernels, pending biases).
LCX_CUDA_DECODE_FUSE=0 t gpu_decode_bench 90 decode_nofuse.log
sed -n '/^| what/,$p' "$OUT/decode_nofuse.log"
t test_cuda_attention 120 att.log
sed -n '/attention timing/,$p' "$OUT/att.log" | grep -v "^--"
echo "### done ${SECONDS}s"
# Training throughput with the new attention path, when the call has time left (dense 2k..16k).
if [ "$SECONDS" -lt 330 ]; then
  ninja -C $B gpu_train_bench >> "$OUT/build.log" 2>&1 && \
    timeout $((560 - SECONDS)) $B/gpu_train_bench --parts dense --json "$OUT/bench.json" > "$OUT/train.log" 2>&1
  echo "### gpu_train_bench rc=$? at ${SECONDS}s"
  grep -vE "^\s*$" "$OUT/train.log" | tail -12
fi
