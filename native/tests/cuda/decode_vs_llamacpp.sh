#!/usr/bin/env bash
# KV-cached decoding and prefill of the 1.3B GPT-2-shaped model: this engine next to llama.cpp
# (the version node-llama-cpp ships, built from its bundled source by shared/bench's anchor
# script), in one call on the GPU machine. Carry .bench-carry (made by
# `bash ../shared/bench/llamacpp_anchor.sh prepare` in the project root).
set -u
OUT=${OUT:-/tmp/lcx_decode_out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
export PATH=/usr/local/cuda/bin:$PATH
B=/tmp/lcx-decode-build
SECONDS=0
cmake -S "$ROOT/native" -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCX_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  > "$OUT/build.log" 2>&1 && ninja -C $B gpu_decode_bench >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
echo "### engine build ${SECONDS}s"
timeout 180 $B/gpu_decode_bench | tee "$OUT/engine-decode.log"
echo "### llama.cpp anchor"
timeout 420 bash "$ROOT/.bench-carry/llamacpp_anchor.sh" run 2>&1 | tee "$OUT/llamacpp.log"
