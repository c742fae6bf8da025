# Checks the engine's model files against the real transformers / safetensors (which only the GPU
# machine has): transformers-saved GPT-2 folders (one file, shards, fp16) load with the same
# logits; folders the engine saves load in GPT2LMHeadModel.from_pretrained with no missing or
# unexpected keys and the same logits; a tiled position extension loads and matches; the
# ruGPT3XL layout has the port's tensor names and shapes; checkpoints open with safetensors.
#
#   cmake -S native -B /tmp/b -DLCX_WITH_CUDA=OFF -DLCX_BUILD_TESTS=OFF
#   cmake --build /tmp/b -j16 --target longctx
#   python3 native/tests/hf_compat.py /tmp/b/liblongctx.so
#
# Last run (H100 box, transformers 5.17): 17 passed, 0 failed; logit differences <= 1.8e-7.
import copy, ctypes, json, os, sys, tempfile
import numpy as np, torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel

lib = ctypes.CDLL(sys.argv[1])
class Sparse(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ["block", "nlb", "ngb", "dlph", "ndgp", "uni", "hga"]]
class Config(ctypes.Structure):
    _fields_ = [("arch", ctypes.c_int32), ("vocab_size", ctypes.c_int32), ("n_positions", ctypes.c_int32),
                ("n_embd", ctypes.c_int32), ("n_layer", ctypes.c_int32), ("n_head", ctypes.c_int32),
                ("n_inner", ctypes.c_int32), ("eps", ctypes.c_float), ("attn_kind", ctypes.c_int32 * 256),
                ("attn_window", ctypes.c_int32 * 256), ("sparse", Sparse)]
class Batch(ctypes.Structure):
    _fields_ = [("tokens", ctypes.c_void_p), ("targets", ctypes.c_void_p), ("segments", ctypes.c_void_p),
                ("B", ctypes.c_int32), ("T", ctypes.c_int32)]
class Info(ctypes.Structure):
    _fields_ = [("config", Config), ("parameters", ctypes.c_int64), ("bytes_on_disk", ctypes.c_int64),
                ("num_files", ctypes.c_int32), ("dtype", ctypes.c_char * 8), ("architecture", ctypes.c_char * 64)]
lib.lcx_last_error.restype = ctypes.c_char_p
results = []
def check(name, ok, detail=""):
    results.append(ok); print(("PASS " if ok else "FAIL ") + name + (("  " + detail) if detail else ""), flush=True)
def call(fn, *args):
    s = fn(*args)
    if s != 0: raise RuntimeError(f"{fn.__name__} -> {s}: {lib.lcx_last_error().decode()}")
def load(d):
    m = ctypes.c_void_p(); call(lib.lcx_model_load, d.encode(), 0, ctypes.byref(m)); return m
def engine_logits(m, ids, V):
    ids = np.ascontiguousarray(ids, dtype=np.int32); B, T = ids.shape
    out = np.zeros((B, T, V), dtype=np.float32)
    b = Batch(ids.ctypes.data, None, None, B, T)
    call(lib.lcx_forward, m, ctypes.byref(b), None, out.ctypes.data_as(ctypes.c_void_p), None)
    return out
def hf_logits(model, ids):
    with torch.no_grad(): return model(torch.tensor(ids, dtype=torch.long)).logits.float().numpy()

root = tempfile.mkdtemp()
torch.manual_seed(0)
cfg = GPT2Config(vocab_size=101, n_positions=64, n_embd=32, n_layer=3, n_head=4)
model = GPT2LMHeadModel(cfg).eval()
ids = np.random.RandomState(0).randint(0, 101, size=(2, 40))

# 1. transformers -> engine: one file, shards, fp16.
for tag, kw in [("single", {}), ("sharded", {"max_shard_size": "40KB"})]:
    d = os.path.join(root, "hf_" + tag); model.save_pretrained(d, safe_serialization=True, **kw)
    print(tag, sorted(os.listdir(d)))
    info = Info(); call(lib.lcx_inspect, d.encode(), ctypes.byref(info))
    n_params = sum(p.numel() for p in model.parameters())
    check(f"inspect {tag}", info.parameters == n_params and info.architecture == b"GPT2LMHeadModel",
          f"params {info.parameters} vs {n_params}, files {info.num_files}, dtype {info.dtype}")
    m = load(d)
    diff = np.abs(engine_logits(m, ids, 101) - hf_logits(model, ids)).max()
    check(f"transformers->engine logits ({tag})", diff < 1e-4, f"max diff {diff:.3g}")
    lib.lcx_model_free(m)
dh = os.path.join(root, "hf_half")
copy.deepcopy(model).half().save_pretrained(dh, safe_serialization=True)
mh = GPT2LMHeadModel.from_pretrained(dh, dtype=torch.float32).eval()
m = load(dh)
diff = np.abs(engine_logits(m, ids, 101) - hf_logits(mh, ids)).max()
check("transformers fp16 folder -> engine", diff < 1e-4, f"max diff {diff:.3g}")
lib.lcx_model_free(m)

# 2. engine -> transformers.
c = Config(); c.arch = 0; c.vocab_size = 101; c.n_positions = 64; c.n_embd = 32; c.n_layer = 3
c.n_head = 4; c.n_inner = 128; c.eps = 1e-5
m = ctypes.c_void_p(); call(lib.lcx_model_create, ctypes.byref(c), ctypes.c_uint64(7), 0, ctypes.byref(m))
for tag, shard in [("single", 0), ("sharded", 50000)]:
    d = os.path.join(root, "engine_" + tag); call(lib.lcx_model_save, m, d.encode(), ctypes.c_int64(shard))
    print(tag, sorted(os.listdir(d)))
    hf, info = GPT2LMHeadModel.from_pretrained(d, output_loading_info=True)
    hf.eval()
    check(f"engine->transformers keys ({tag})", not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], str(info))
    diff = np.abs(engine_logits(m, ids, 101) - hf_logits(hf, ids)).max()
    check(f"engine->transformers logits ({tag})", diff < 1e-4, f"max diff {diff:.3g}")
with safe_open(os.path.join(root, "engine_single", "model.safetensors"), "pt") as f:
    check("safetensors metadata", f.metadata() == {"format": "pt"}, str(f.metadata()))
print(open(os.path.join(root, "engine_single", "config.json")).read())

# 3. extend a transformers model 64 -> 160 (tile), save, transformers loads it.
m2 = load(os.path.join(root, "hf_single"))
call(lib.lcx_extend_positions, m2, 160, 0, ctypes.c_uint64(0))
d = os.path.join(root, "extended"); call(lib.lcx_model_save, m2, d.encode(), ctypes.c_int64(0))
hf = GPT2LMHeadModel.from_pretrained(d).eval()
check("extended config", hf.config.n_positions == 160 and hf.transformer.wpe.weight.shape[0] == 160)
wpe = hf.transformer.wpe.weight.detach()
check("tile rows", torch.equal(wpe[:64], model.transformer.wpe.weight.detach()) and torch.equal(wpe[64:128], wpe[:64]))
long_ids = np.random.RandomState(1).randint(0, 101, size=(1, 150))
diff = np.abs(engine_logits(m2, long_ids, 101) - hf_logits(hf, long_ids)).max()
check("extended logits engine vs transformers (150 tokens)", diff < 1e-4, f"max diff {diff:.3g}")
diff = np.abs(engine_logits(m2, ids, 101) - hf_logits(model, ids)).max()
check("extended model unchanged on <= 64 tokens", diff < 1e-4, f"max diff {diff:.3g}")

# 4. ruGPT3XL layout written by the engine: names and shapes the port's state dict has.
c = Config(); c.arch = 1; c.vocab_size = 64; c.n_positions = 128; c.n_embd = 32; c.n_layer = 2
c.n_head = 4; c.n_inner = 128; c.eps = 1e-5; c.attn_kind[0] = 2
c.sparse.block = 16; c.sparse.nlb = 4; c.sparse.ngb = 1; c.sparse.dlph = 1; c.sparse.ndgp = 4; c.sparse.uni = 1
r = ctypes.c_void_p(); call(lib.lcx_model_create, ctypes.byref(c), ctypes.c_uint64(3), 0, ctypes.byref(r))
d = os.path.join(root, "rugpt"); call(lib.lcx_model_save, r, d.encode(), ctypes.c_int64(0))
sd = load_file(os.path.join(d, "model.safetensors"))
want = {"model.embed_tokens.weight": (64, 32), "model.embed_positions.weight": (128, 32),
        "model.norm.weight": (32,), "model.norm.bias": (32,), "lm_head.weight": (64, 32)}
for i in range(2):
    p = f"model.layers.{i}."
    for n in ["input_layernorm", "post_attention_layernorm"]:
        want[p + n + ".weight"] = (32,); want[p + n + ".bias"] = (32,)
    for n in ["q_proj", "k_proj", "v_proj", "o_proj"]:
        want[p + "self_attn." + n + ".weight"] = (32, 32); want[p + "self_attn." + n + ".bias"] = (32,)
    want[p + "mlp.up_proj.weight"] = (128, 32); want[p + "mlp.up_proj.bias"] = (128,)
    want[p + "mlp.down_proj.weight"] = (32, 128); want[p + "mlp.down_proj.bias"] = (32,)
got = {k: tuple(v.shape) for k, v in sd.items()}
check("rugpt3xl names/shapes", got == want, str(set(got.items()) ^ set(want.items())))
check("rugpt3xl lm_head copy", torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"]))
print(open(os.path.join(d, "config.json")).read())

# 5. checkpoint readable by safetensors.
ck = os.path.join(root, "ck.safetensors"); call(lib.lcx_save_checkpoint, r, ck.encode())
with safe_open(ck, "pt") as f:
    meta = f.metadata(); keys = list(f.keys())
check("checkpoint via safetensors", meta["format"] == "longctx-checkpoint" and "params.qkvw" in keys, str(meta)[:200])
print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
