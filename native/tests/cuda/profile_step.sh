#!/usr/bin/env bash
# Where the time goes (issue 5, NOTES.md run 7): one GPU-machine call that profiles a training
# step and decoded tokens with Nsight Compute, one kernel at a time (`--clock-control none`, the
# card's own clocks; `--cache-control none`, warm caches as in a real run), and prints per-part
# tables (native/bench/ncu_summary.py). Then the dense training bench (with batch 4 at 2048).
#   bash native/tests/cuda/profile_step.sh [checks|attention|attention2|ncuattn|decodebench|decodeab|train|decode|bench ...]
#   (default: train decode bench)
set -u
OUT=${OUT:-/tmp/lcx_profile_out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
B=/tmp/lcx_build_prof
export PATH=/usr/local/cuda/bin:$PATH
SECONDS=0
what=${*:-train decode bench}
# decodebench: the plain decode benchmark (no profiler); checks: test_cuda_backend (the decode
# path's correctness: generation == full forward, graph on and off).
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: ${NCU:-not found}"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCX_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B gpu_train_bench gpu_decode_bench test_cuda_backend test_cuda_attention >> "$OUT/build.log" 2>&1 \
  || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
echo "### build ${SECONDS}s"

prof() {  # name timeout metrics binary args...
  local name=$1 limit=$2 metrics=$3
  shift 3
  local s=$SECONDS
  timeout "$limit" "$NCU" --profile-from-start off --clock-control none --cache-control none \
    --metrics "$metrics" --csv --page raw --log-file "$OUT/$name.ncu.csv" "$@" > "$OUT/$name.log" 2>&1
  echo "### $name rc=$? ${s}s -> ${SECONDS}s"
  grep -h "profiled" "$OUT/$name.log" | head -2
  local wall  # the region's time without the profiler, per step or per token
  wall=$(grep -ho "([0-9.]* ms without)\|without the profiler [0-9.]* ms" "$OUT/$name.log" | grep -o "[0-9.]*" | head -1)
  case $name in decode*) wall="" ;; esac  # its per-token time under ncu is not the real one
  python3 native/bench/ncu_summary.py "$OUT/$name.ncu.csv" ${wall:+--total-ms $wall} --top 12 > "$OUT/$name.md" 2>&1
  cat "$OUT/$name.md"
}
T=gpu__time_duration.sum
TB=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum
for w in $what; do
  case $w in
    train)
      prof train8192 150 $T $B/gpu_train_bench --profile 8192
      prof train2048x4 120 $T $B/gpu_train_bench --profile 2048 --batch 4
      ;;
    decode)
      prof decode0 90 $TB $B/gpu_decode_bench --profile 0
      prof decode8000 90 $TB $B/gpu_decode_bench --profile 8000
      ;;
    decodebench)
      timeout 120 $B/gpu_decode_bench > "$OUT/decode.log" 2>&1; echo "### gpu_decode_bench rc=$?"
      sed -n '/^| what/,$p' "$OUT/decode.log"
      ;;
    checks)
      timeout 150 $B/test_cuda_backend > "$OUT/backend.log" 2>&1; echo "### test_cuda_backend rc=$?"
      grep -E "FAIL|passed, .* failed|generation" "$OUT/backend.log" | head -20
      LCX_CUDA_DECODE_FUSE=0 timeout 150 $B/test_cuda_backend > "$OUT/backend_nofuse.log" 2>&1
      echo "### test_cuda_backend LCX_CUDA_DECODE_FUSE=0 rc=$?"
      grep -E "FAIL|passed, .* failed" "$OUT/backend_nofuse.log" | head -10
      LCX_CUDA_DECODE_GRAPH=0 timeout 150 $B/test_cuda_backend > "$OUT/backend_nograph.log" 2>&1
      echo "### test_cuda_backend LCX_CUDA_DECODE_GRAPH=0 rc=$?"
      grep -E "FAIL|passed, .* failed" "$OUT/backend_nograph.log" | head -10
      ;;
    attention)
      timeout 150 $B/test_cuda_attention > "$OUT/att.log" 2>&1; echo "### test_cuda_attention rc=$?"
      grep -E "FAIL|passed, .* failed" "$OUT/att.log" | head
      sed -n '/attention timing/,$p' "$OUT/att.log" | grep -v "^--"
      ;;
    ncuattn)
      # Full Nsight Compute sections of the dense hs128 T=8192 kernels (fwd, dq, dkv: the 4th
      # launch of each, after the timing loop's warm-up), for the next kernel work.
      LCX_ATTN_TIMING_ONLY=1 timeout 240 "$NCU" --clock-control none --set full \
        -k regex:'attn_(fwd|dq|dkv)_kernel' --launch-skip 3 --launch-count 3 -o "$OUT/attn" \
        $B/test_cuda_attention > "$OUT/ncuattn.log" 2>&1
      echo "### ncu attention rc=$?"
      "$NCU" --import "$OUT/attn.ncu-rep" --page details > "$OUT/attn_details.txt" 2>&1
      grep -E "attn_|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Executed Ipc A|Issue Slots Busy|Bank Conflicts|L1/TEX Hit|Block Limit" "$OUT/attn_details.txt" | head -60
      ;;
    attention2)
      # the same checks and timing table with the two-stage forward everywhere (run 8's choice;
      # since run 9 D = 128 on sm_90 takes one stage and three CTAs per SM)
      LCX_ATTN_FWD_STAGES=2 timeout 150 $B/test_cuda_attention > "$OUT/att2.log" 2>&1
      echo "### test_cuda_attention LCX_ATTN_FWD_STAGES=2 rc=$?"
      grep -E "FAIL|passed, .* failed" "$OUT/att2.log" | head
      sed -n '/attention timing/,$p' "$OUT/att2.log" | grep -v "^--"
      ;;
    decodeab)
      LCX_CUDA_DECODE_FUSE=0 timeout 120 $B/gpu_decode_bench > "$OUT/decode_nofuse.log" 2>&1
      echo "### gpu_decode_bench LCX_CUDA_DECODE_FUSE=0 rc=$?"
      sed -n '/^| what/,$p' "$OUT/decode_nofuse.log"
      ;;
    bench)
      timeout $((570 - SECONDS)) $B/gpu_train_bench --parts dense --json "$OUT/bench.json" > "$OUT/train.log" 2>&1
      echo "### gpu_train_bench rc=$? at ${SECONDS}s"
      grep -vE "^\s*$" "$OUT/train.log" | tail -10
      ;;
  esac
done
echo "### done ${SECONDS}s"
# The device hands back only a few files: everything in one archive.
tar czf /tmp/lcx_profile.tgz -C "$OUT" . && find "$OUT" -maxdepth 1 -type f -delete && mv /tmp/lcx_profile.tgz "$OUT/profile.tgz"
