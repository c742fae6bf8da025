"""The engine (CUDA backend, through the C API and ctypes) against HF transformers.

A GPT-2-shaped model with random weights is saved by torch as safetensors, loaded by the engine
(lcx_model_load), and compared with GPT2LMHeadModel in fp32: logits, loss and every gradient
tensor, within bf16 tolerances (logits rel L2 <= 2e-2, loss abs <= 1e-2, gradients rel L2 <= 6e-2
per tensor, with fp32 gradients and with bf16 gradients of the layer matrices). Then a GPU-save
-> CPU-load round trip after one optimizer step (bit-exact params).
Usage: python3 check_transformers.py path/to/liblongctx.so
"""
import ctypes as C
import sys
import tempfile

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

lib = C.CDLL(sys.argv[1])
MAXL = 256


class Sparse(C.Structure):
    _fields_ = [(n, C.c_int32) for n in ("block", "num_local_blocks", "num_global_blocks",
                                         "different_layout_per_head", "num_different_global_patterns",
                                         "unidirectional", "horizontal_global_attention")]


class Config(C.Structure):
    _fields_ = [("arch", C.c_int32), ("vocab_size", C.c_int32), ("n_positions", C.c_int32),
                ("n_embd", C.c_int32), ("n_layer", C.c_int32), ("n_head", C.c_int32),
                ("n_inner", C.c_int32), ("layer_norm_eps", C.c_float),
                ("attn_kind", C.c_int32 * MAXL), ("attn_window", C.c_int32 * MAXL), ("sparse", Sparse)]


class Layout(C.Structure):
    _fields_ = [("offset", C.c_size_t * 16), ("count", C.c_size_t * 16), ("total", C.c_size_t)]


class Batch(C.Structure):
    _fields_ = [("tokens", C.POINTER(C.c_int32)), ("targets", C.POINTER(C.c_int32)),
                ("segments", C.POINTER(C.c_int32)), ("B", C.c_int32), ("T", C.c_int32)]


class TrainCfg(C.Structure):
    _fields_ = [("beta1", C.c_float), ("beta2", C.c_float), ("eps", C.c_float),
                ("weight_decay", C.c_float), ("grad_clip", C.c_float), ("recompute", C.c_int32),
                ("master_dtype", C.c_int32), ("seed", C.c_uint64), ("grad_dtype", C.c_int32)]


lib.lcx_last_error.restype = C.c_char_p
FAILS = []


def ok(st, what):
    if st != 0:
        raise RuntimeError(f"{what}: status {st}: {lib.lcx_last_error().decode()}")


def check(name, value, tol):
    good = bool(np.isfinite(value)) and value <= tol
    print(f"  {name:<40s} {value:10.3e} (tol {tol:.0e}) {'ok' if good else 'FAIL'}")
    if not good:
        FAILS.append(name)


def rel(a, b):
    a = np.asarray(a, np.float64).ravel(); b = np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def ptr(a):
    return a.ctypes.data_as(C.POINTER(C.c_int32))


def main():
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=1000, n_positions=256, n_embd=128, n_layer=2, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    d = tempfile.mkdtemp()
    model.save_pretrained(d, safe_serialization=True)

    m = C.c_void_p()
    ok(lib.lcx_model_load(d.encode(), 1, C.byref(m)), "lcx_model_load (CUDA)")
    B, T, V = 2, 200, cfg.vocab_size
    rng = np.random.default_rng(0)
    tok = rng.integers(0, V, size=(B, T)).astype(np.int32)
    tgt = np.full((B, T), -1, np.int32)
    tgt[:, :-1] = tok[:, 1:]
    batch = Batch(ptr(tok), ptr(tgt), None, B, T)

    logits = np.zeros((B, T, V), np.float32)
    loss = C.c_float()
    ok(lib.lcx_forward(m, C.byref(batch), None, logits.ctypes.data_as(C.POINTER(C.c_float)),
                       C.byref(loss)), "lcx_forward")
    ids = torch.from_numpy(tok.astype(np.int64))
    model.zero_grad()
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    print("engine (CUDA) vs transformers GPT2LMHeadModel fp32:")
    check("logits rel L2", rel(logits, out.logits.detach().numpy()), 2e-2)
    check("loss abs", abs(loss.value - out.loss.item()), 1e-2)

    ecfg = Config()
    ok(lib.lcx_model_config(m, C.byref(ecfg)), "lcx_model_config")
    lay = Layout()
    lib.lcx_param_layout_of(C.byref(ecfg), C.byref(lay))
    sd = {k: v.grad for k, v in model.named_parameters()}
    L = cfg.n_layer

    def per_layer(fmt, transpose):
        return np.stack([(sd[fmt.format(l)].T if transpose else sd[fmt.format(l)]).numpy() for l in range(L)])

    ref = [sd["transformer.wte.weight"].numpy(), sd["transformer.wpe.weight"].numpy(),
           per_layer("transformer.h.{}.ln_1.weight", False), per_layer("transformer.h.{}.ln_1.bias", False),
           per_layer("transformer.h.{}.attn.c_attn.weight", True), per_layer("transformer.h.{}.attn.c_attn.bias", False),
           per_layer("transformer.h.{}.attn.c_proj.weight", True), per_layer("transformer.h.{}.attn.c_proj.bias", False),
           per_layer("transformer.h.{}.ln_2.weight", False), per_layer("transformer.h.{}.ln_2.bias", False),
           per_layer("transformer.h.{}.mlp.c_fc.weight", True), per_layer("transformer.h.{}.mlp.c_fc.bias", False),
           per_layer("transformer.h.{}.mlp.c_proj.weight", True), per_layer("transformer.h.{}.mlp.c_proj.bias", False),
           sd["transformer.ln_f.weight"].numpy(), sd["transformer.ln_f.bias"].numpy()]
    names = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b",
             "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
    # fp32 gradients, then bf16 gradients of the layer matrices (lcx_train_config.grad_dtype).
    for grad_dtype, label in ((0, "fp32"), (1, "bf16 matrices")):
        tc = TrainCfg(0.9, 0.999, 1e-8, 0.0, 0.0, 0, 0, 1, grad_dtype)
        ok(lib.lcx_train_init(m, C.byref(tc)), "lcx_train_init")
        ok(lib.lcx_zero_grad(m), "lcx_zero_grad")
        ok(lib.lcx_forward_backward(m, C.byref(batch), C.c_float(1.0), C.byref(loss)), "lcx_forward_backward")
        grads = np.zeros(lay.total, np.float32)
        ok(lib.lcx_get_grads(m, grads.ctypes.data_as(C.POINTER(C.c_float)), C.c_size_t(lay.total)), "lcx_get_grads")
        for i, name in enumerate(names):
            got = grads[lay.offset[i]:lay.offset[i] + lay.count[i]]
            check(f"grad {name} rel L2 ({label})", rel(got, ref[i].ravel()), 6e-2)

    # GPU save -> CPU load round trip, after one step so the weights are the engine's own.
    ok(lib.lcx_optimizer_step(m, C.c_float(1e-3), None), "lcx_optimizer_step")
    p_gpu = np.zeros(lay.total, np.float32)
    ok(lib.lcx_get_params(m, p_gpu.ctypes.data_as(C.POINTER(C.c_float)), C.c_size_t(lay.total)), "lcx_get_params")
    d2 = tempfile.mkdtemp()
    ok(lib.lcx_model_save(m, d2.encode(), C.c_int64(0)), "lcx_model_save")
    mc = C.c_void_p()
    ok(lib.lcx_model_load(d2.encode(), 0, C.byref(mc)), "lcx_model_load (CPU)")
    p_cpu = np.zeros(lay.total, np.float32)
    ok(lib.lcx_get_params(mc, p_cpu.ctypes.data_as(C.POINTER(C.c_float)), C.c_size_t(lay.total)), "lcx_get_params")
    check("GPU save -> CPU load: max abs param diff", float(np.max(np.abs(p_cpu - p_gpu))), 0.0)
    lib.lcx_model_free(mc)
    lib.lcx_model_free(m)
    print(f"transformers check: {'PASS' if not FAILS else 'FAIL ' + ', '.join(FAILS)}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
