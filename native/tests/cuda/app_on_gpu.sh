#!/usr/bin/env bash
# The app's own path to the GPU, on the device machine (which has no Node): a carried Node
# binary builds the addon with the CUDA backend, web mode serves system.info (backends + NVML
# figures), a Node script trains a few steps on the CUDA backend through the addon, and the
# decode benchmark measures KV-cached generation of the 1.3B model after an 8000-token prompt.
# Needs in `carry`: .devcarry (node.xz, node-include.tar.xz, app/ = bundled web mode, demo-hf/ =
# an HF export to check against transformers),
# node_modules/node-addon-api.
#   bash native/tests/cuda/app_on_gpu.sh
set -u
OUT=${OUT:-/tmp/lcx_app_out}
mkdir -p "$OUT" /tmp/nodebin /tmp/nodeinc
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
export PATH=/tmp/nodebin:/usr/local/cuda/bin:$PATH
xz -dc .devcarry/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node
tar xJf .devcarry/node-include.tar.xz -C /tmp/nodeinc
node --version
B=native/build/gpuapp
SECONDS=0
cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCX_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_JS_VERSION=manual -DCMAKE_JS_INC=/tmp/nodeinc/node > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B longctx_addon gpu_decode_bench longctx >> "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
echo "### build: ${SECONDS}s"

# 1. the addon from Node: backends, NVML, a few CUDA training steps with allocator stats
cat > /tmp/addon_smoke.cjs <<'JS'
const addon = require(process.argv[2])
const out = { backends: addon.backendsAvailable(), nvml: addon.nvmlQuery() }
;(async () => {
  const m = await addon.Model.create({ vocabSize: 512, nPositions: 256, nEmbd: 128, nLayer: 2, nHead: 4 }, 1, 'cuda')
  const B = 2, T = 256, tokens = new Int32Array(B * T), targets = new Int32Array(B * T)
  for (let i = 0; i < B * T; i++) tokens[i] = (i * 37) % 512
  for (let i = 0; i < B * T; i++) targets[i] = (i + 1) % T === 0 ? -1 : tokens[i + 1]
  // Both gradient dtypes the worker asks for (bf16 layer matrices for one-micro-batch steps).
  const params = await m.getParams()
  for (const gradDtype of ['fp32', 'bf16']) {
    await m.setParams(params)
    await m.trainInit({ gradClip: 1, gradDtype })
    const losses = (out['losses_' + gradDtype] = [])
    for (let s = 0; s < 5; s++) {
      await m.zeroGrad()
      losses.push(await m.forwardBackward({ tokens, targets, B, T }, 1))
      await m.optimizerStep(1e-3)
    }
  }
  out.memory = await m.memoryStats()
  out.nvmlAfter = addon.nvmlQuery()
  m.dispose()
  console.log(JSON.stringify(out, null, 1))
})().catch((e) => { console.log('ERROR', e.code, e.message); process.exit(1) })
JS
timeout 120 node /tmp/addon_smoke.cjs "$ROOT/$B/longctx_addon.node" > "$OUT/addon_smoke.json" 2>&1
echo "### addon smoke rc=$?"; head -c 1500 "$OUT/addon_smoke.json"; echo

# 2. web mode on the GPU machine: what the system panel gets
LONGCTX_ADDON="$ROOT/$B/longctx_addon.node" LONGCTX_DATA_DIR=/tmp/lcx-data LONGCTX_CONFIG_DIR=/tmp/lcx-config \
  node .devcarry/app/main/web.mjs --no-open --port 8471 > "$OUT/web.log" 2>&1 &
WEB=$!
for i in $(seq 1 30); do grep -q 'token=' "$OUT/web.log" && break; sleep 0.5; done
TOKEN=$(grep -o 'token=[A-Za-z0-9_-]*' "$OUT/web.log" | head -1 | cut -d= -f2)
curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{}' \
  http://127.0.0.1:8471/api/system.info > "$OUT/system-info.json"
echo "### web mode system.info:"; cat "$OUT/system-info.json"; echo
curl -s -o /dev/null -w "### without token: HTTP %{http_code}\n" -X POST http://127.0.0.1:8471/api/system.info
kill $WEB

# 3. an HF export of the (tiled) demo model against transformers, engine on the GPU
if [ -d .devcarry/demo-hf ]; then
  timeout 180 python3 scripts/check-hf-export.py .devcarry/demo-hf --lib "$ROOT/$B/liblongctx.so" --backend cuda \
    > "$OUT/hf-export.log" 2>&1
  echo "### HF export check rc=$?"; tail -15 "$OUT/hf-export.log"
fi

# 4. decode/prefill of the 1.3B model after an 8000-token prompt
timeout 240 $B/gpu_decode_bench > "$OUT/decode.log" 2>&1
echo "### decode bench rc=$?"; cat "$OUT/decode.log"
echo "### total ${SECONDS}s"
