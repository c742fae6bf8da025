#!/usr/bin/env bash
# One scripted GPU-machine call (no Node there): build the engine with CUDA, run what is asked,
# leave every log in $OUT (the device tool brings it back) and print a compact summary.
#   bash native/tests/cuda/run_device_checks.sh checks             correctness: CUDA attention and
#                                                                   backend tests, transformers check
#   bash native/tests/cuda/run_device_checks.sh bench [PHASE ...]  issue 5's benchmark and its report
#   bash native/tests/cuda/run_device_checks.sh [all]              checks, then the train phase
# PHASE (default all = train attention decode), usual wall time on an H100, build ~40 s first:
#   train      gpu_train_bench: dense and sparse at 2k..16k, lean at 8k, allocator mix,
#              3 x 200-step loss run (~170 s); torch anchor train 2048..16384 (~70 s)
#   attention  test_cuda_attention: checks + timing table (~60 s); PyTorch SDPA at T=8192 (~25 s)
#   decode     gpu_decode_bench (~30 s); torch anchor decode 8000 (~40 s); llama.cpp anchor
#              (~240 s, only when .bench-carry is carried)
# A step that would not finish inside BENCH_BUDGET_S (default 560: the device's 600 s call limit
# less a margin for the report and the transfer) is skipped with a note, so the default fits one
# call; llama.cpp usually needs a call of its own: `bench decode`.
# Carry .devcarry (torch_anchor.py, a copy of ../shared/bench) for the PyTorch anchor and
# .bench-carry (`bash ../shared/bench/llamacpp_anchor.sh prepare`) for llama.cpp.
# The report (native/bench/gpu_report.py) is printed from whatever logs $OUT holds and saved
# there as report.md, scaling.svg and loss.svg; every log goes into $OUT/logs.tgz (LCX_PACK_OUT=0 keeps
# them loose), since the device tool returns only a few files.
set -u
MODE=${1:-all}
[ $# -gt 0 ] && shift
OUT=${OUT:-/tmp/lcx_device_out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
NATIVE=$ROOT/native
BUILD=$NATIVE/build/cuda
BUDGET=${BENCH_BUDGET_S:-560}
ANCHOR=$ROOT/.devcarry/torch_anchor.py
LLAMA=$ROOT/.bench-carry/llamacpp_anchor.sh
export PATH=/usr/local/cuda/bin:$PATH PYTHONUNBUFFERED=1
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
summary=()
attention_ran=0
rm -f "$OUT"/*.skipped  # a reused local $OUT: old skip notes would mislabel this call's rows
note() { summary+=("$1"); echo "### $1"; }

checks=0 train=0 attention=0 decode=0
case $MODE in
  checks) checks=1 ;;
  all) checks=1 train=1 ;;
  bench)
    [ $# -eq 0 ] && set -- all
    for p in "$@"; do
      case $p in
        train) train=1 ;;
        attention) attention=1 ;;
        decode) decode=1 ;;
        all) train=1 attention=1 decode=1 ;;
        *) echo "unknown phase '$p' (train | attention | decode | all)"; exit 2 ;;
      esac
    done ;;
  *) echo "usage: $0 checks | bench [train|attention|decode|all ...] | all"; exit 2 ;;
esac

# step NAME NEED_S CAP_S LOG CMD...: runs CMD (output in $OUT/LOG) when the call has about NEED_S
# seconds left, under a timeout of CAP_S or the time left, whichever is less. A skipped step
# leaves LOG.skipped with the reason, which the report prints.
step() {
  local name=$1 need=$2 cap=$3 log=$4
  shift 4
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt "$need" ]; then
    echo "skipped: ${left} s left in this call, ${name} needs about ${need} s" > "$OUT/$log.skipped"
    note "$name SKIPPED (${left} s left, needs ~${need} s: run its phase in a call of its own)"
    return 1
  fi
  local t=$SECONDS
  timeout $((cap < left ? cap : left)) "$@" > "$OUT/$log" 2>&1
  local rc=$?
  note "$name rc=$rc in $((SECONDS - t)) s ($(tail -1 "$OUT/$log" | cut -c1-100))"
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
targets=()
[ $checks = 1 ] && targets+=(longctx_engine longctx test_cuda_backend test_cuda_attention)
[ $train = 1 ] && targets+=(gpu_train_bench)
[ $attention = 1 ] && targets+=(test_cuda_attention)
[ $decode = 1 ] && targets+=(gpu_decode_bench)
# sm_90 only here (the device is Hopper); the default build targets 80;89;90.
cmake -S "$NATIVE" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCX_WITH_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; note "cmake FAILED"; }
ninja -C "$BUILD" -k 0 $(printf '%s\n' "${targets[@]}" | sort -u) >> "$OUT/build.log" 2>&1
brc=$?
grep -E "error|FAILED|warning: .*spill" "$OUT/build.log" | head -60
note "build rc=$brc in ${SECONDS} s"

run_test() {  # executable need cap
  if [ ! -x "$BUILD/$1" ]; then note "$1: NOT BUILT"; return; fi
  step "$1" "$2" "$3" "$1.log" "$BUILD/$1"
  grep -E "FAIL|SKIP|passed, .* failed" "$OUT/$1.log" | head -40
}

if [ $checks = 1 ]; then
  run_test test_cuda_attention 60 150
  attention_ran=1
  run_test test_cuda_backend 60 150
  if [ -f "$BUILD/liblongctx.so" ]; then
    step "transformers check" 40 120 hf.log python3 "$NATIVE/tests/cuda/check_transformers.py" "$BUILD/liblongctx.so"
    grep -E "FAIL|Error|error" "$OUT/hf.log" | head -20
  fi
fi

if [ $train = 1 ]; then
  if [ -x "$BUILD/gpu_train_bench" ]; then
    step gpu_train_bench 170 300 bench.log "$BUILD/gpu_train_bench" --json "$OUT/bench.json"
    sed -n '/^dense (fp32 master/,$p' "$OUT/bench.log"
    grep -E "ERROR" "$OUT/bench.log" | head
  else
    note "gpu_train_bench: NOT BUILT"
  fi
  if [ -f "$ANCHOR" ]; then
    # the anchor's 16k row is only for the scaling table (the targets compare at 2k..8k)
    step "torch anchor train" 70 180 anchor.log python3 "$ANCHOR" train xl ${ANCHOR_TS:-2048 4096 8192 16384}
  else
    echo "skipped: no .devcarry/torch_anchor.py in this call" > "$OUT/anchor.log.skipped"
    note "torch anchor: .devcarry/torch_anchor.py not carried"
  fi
fi

if [ $attention = 1 ]; then
  [ $attention_ran = 1 ] || run_test test_cuda_attention 60 150
  sed -n '/attention timing/,$p' "$OUT/test_cuda_attention.log" 2>/dev/null | grep -v '^--'
  # PyTorch's SDPA (what the anchor's attention runs) on the same shapes, same FLOP convention
  # (causal = half of dense, backward = 2.5 x forward): the attention targets' anchor.
  step "torch SDPA attention" 25 90 sdpa.log python3 - <<'PY'
import json, torch
import torch.nn.functional as F

def timed(hd, nh, T=8192, reps=10):
    q, k, v = (torch.randn(1, nh, T, hd, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    do = torch.randn(1, nh, T, hd, device="cuda", dtype=torch.bfloat16)
    fwd, bwd = [], []
    for i in range(reps + 2):
        e = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
        e[0].record()
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        e[1].record()
        o.backward(do)
        e[2].record()
        torch.cuda.synchronize()
        if i >= 2:
            fwd.append(e[0].elapsed_time(e[1])); bwd.append(e[1].elapsed_time(e[2]))
        q.grad = k.grad = v.grad = None
    f, b = sorted(fwd)[reps // 2], sorted(bwd)[reps // 2]
    flops = 4.0 * nh * T * T * hd / 2
    print(json.dumps(dict(case=f"sdpa causal hd{hd} NH{nh} T{T}", hd=hd, nh=nh, T=T, fwd_ms=round(f, 3),
                          bwd_ms=round(b, 3), fwd_tflops=round(flops / f / 1e9, 1),
                          bwd_tflops=round(2.5 * flops / b / 1e9, 1), torch=torch.__version__)), flush=True)

timed(128, 16)
timed(64, 32)
PY
  cat "$OUT/sdpa.log" 2>/dev/null | grep '^{'
fi

if [ $decode = 1 ]; then
  if [ -x "$BUILD/gpu_decode_bench" ]; then
    step gpu_decode_bench 30 120 decode.log "$BUILD/gpu_decode_bench"
    sed -n '/^| what/,$p' "$OUT/decode.log"
  else
    note "gpu_decode_bench: NOT BUILT"
  fi
  if [ -f "$ANCHOR" ]; then
    step "torch anchor decode" 40 120 anchor_decode.log python3 "$ANCHOR" decode xl 8000
    grep '^{' "$OUT/anchor_decode.log"
  else
    echo "skipped: no .devcarry/torch_anchor.py in this call" > "$OUT/anchor_decode.log.skipped"
  fi
  if [ -f "$LLAMA" ]; then
    step "llama.cpp anchor" 270 420 llamacpp.log bash "$LLAMA" run
    grep '^|' "$OUT/llamacpp.log"
  else
    echo "skipped: .bench-carry not carried in this call" > "$OUT/llamacpp.log.skipped"
    note "llama.cpp anchor: .bench-carry not carried"
  fi
fi

if [ $((train + attention + decode)) -gt 0 ]; then
  echo "================ report"
  python3 "$NATIVE/bench/gpu_report.py" "$OUT" --out "$OUT"
fi
echo "================ summary (${SECONDS} s)"
printf '%s\n' "${summary[@]}"
# The device hands back only a few files: the report and the plots loose, everything in one archive.
if [ -n "${LCX_PACK_OUT:-1}" ] && [ "${LCX_PACK_OUT:-1}" != 0 ]; then
  tar czf /tmp/lcx_device_logs.tgz -C "$OUT" . 2>/dev/null
  find "$OUT" -maxdepth 1 -type f ! -name report.md ! -name scaling.svg ! -name loss.svg -delete
  mv /tmp/lcx_device_logs.tgz "$OUT/logs.tgz"
fi
