#!/usr/bin/env python3
"""Checks an HF folder exported by LongCtx Studio against the engine, with transformers.

What it does, on one text of up to the model's full context (so the extended position rows are
exercised):
  1. loads the folder with transformers (AutoTokenizer + AutoModelForCausalLM; remote code for the
     ruGPT3XL port) and tokenizes the text with the exported tokenizer files;
  2. loads the same folder with the engine through its C API (ctypes on liblongctx.so) and runs
     lcx_forward on the same token ids;
  3. compares the next-token log-probabilities of the engine with transformers in float32, and
     measures transformers in bfloat16 against its own float32 the same way: that is the bf16
     noise floor. The engine passes when its error is within the bf16 tolerance:
        mean |dNLL of the actual next tokens| <= max(2 x bf16's, 2e-3)
        relative perplexity difference        <= max(2 x bf16's, 0.5 %)
        top-1 agreement                       >= bf16's - 1 %
     and, for an fp32 engine run (--backend cpu), max |dlogp| over the top tokens <= 5e-3.

Self-contained: needs python3 with torch, transformers, numpy, and the engine's shared library.

On the GPU machine (nothing is installed there; build the library in the same call):
    cmake -S native -B /tmp/b -G Ninja -DLCX_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release
    cmake --build /tmp/b --target longctx
    python3 scripts/check-hf-export.py EXPORT_DIR --lib /tmp/b/liblongctx.so --backend cuda
Options: --backend cpu|cuda (engine backend; default cuda when the library has it), --tokens N
(default: the model's n_positions), --text FILE (default: the KJV corpus in resources/corpus when
present, else a built-in paragraph repeated), --device cuda|cpu for transformers.
Exit status 0 = pass, 1 = fail, 2 = could not run. Untested on the GPU machine at the time of
writing (device time was reserved); the CPU path was written against the same C API the tests use.
"""
import argparse
import ctypes
import glob
import json
import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILTIN_TEXT = (
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; "
    "and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. "
    "And God said, Let there be light: and there was light. And God saw the light, that it was good: "
    "and God divided the light from the darkness.\n"
)


# ---- the engine through its C API (native/engine/include/longctx.h) -------------------------------
class Batch(ctypes.Structure):
    _fields_ = [("tokens", ctypes.c_void_p), ("targets", ctypes.c_void_p), ("segments", ctypes.c_void_p),
                ("B", ctypes.c_int32), ("T", ctypes.c_int32)]


def find_library(explicit):
    if explicit:
        return explicit
    found = sorted(glob.glob(os.path.join(ROOT, "native", "build", "**", "liblongctx.so"), recursive=True))
    if not found:
        sys.exit("error: no liblongctx.so under native/build; build it (see --help) and pass --lib")
    return found[0]


class Engine:
    def __init__(self, lib_path):
        self.lib = ctypes.CDLL(lib_path)
        self.lib.lcx_last_error.restype = ctypes.c_char_p
        self.lib.lcx_backends_available.restype = ctypes.c_int32

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what} failed ({status}): {self.lib.lcx_last_error().decode()}")

    def has_cuda(self):
        return bool(self.lib.lcx_backends_available() & 2)

    def logits(self, folder, ids, backend, vocab):
        model = ctypes.c_void_p()
        self.check(self.lib.lcx_model_load(folder.encode(), 1 if backend == "cuda" else 0, ctypes.byref(model)), "lcx_model_load")
        try:
            tokens = np.ascontiguousarray(np.asarray(ids, dtype=np.int32)[None, :])
            out = np.zeros((len(ids), vocab), dtype=np.float32)
            batch = Batch(tokens.ctypes.data, None, None, 1, len(ids))
            self.check(self.lib.lcx_forward(model, ctypes.byref(batch), None, out.ctypes.data_as(ctypes.c_void_p), None), "lcx_forward")
            return out
        finally:
            self.lib.lcx_model_free(model)


# ---- comparison ---------------------------------------------------------------------------------
def log_softmax(x):
    x = torch.as_tensor(x, dtype=torch.float64)
    return torch.log_softmax(x, dim=-1)


def compare(test, ref, ids):
    """Errors of `test` log-probs against `ref` (both (T, V) logits)."""
    a, b = log_softmax(test), log_softmax(ref)
    nxt = torch.as_tensor(ids[1:], dtype=torch.long)
    nll_a = -a[:-1].gather(1, nxt[:, None]).squeeze(1)
    nll_b = -b[:-1].gather(1, nxt[:, None]).squeeze(1)
    top = b > math.log(1e-3)  # tokens the reference gives at least 0.1 %
    return {
        "mean_abs_dnll": float((nll_a - nll_b).abs().mean()),
        "ppl_test": float(torch.exp(nll_a.mean())),
        "ppl_ref": float(torch.exp(nll_b.mean())),
        "rel_dppl": float(abs(torch.exp(nll_a.mean()) / torch.exp(nll_b.mean()) - 1)),
        "max_abs_dlogp_top": float((a - b).abs()[top].max()),
        "top1_agree": float((a.argmax(-1) == b.argmax(-1)).double().mean()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--lib")
    ap.add_argument("--backend", choices=["cpu", "cuda"])
    ap.add_argument("--device", choices=["cpu", "cuda"])
    ap.add_argument("--tokens", type=int)
    ap.add_argument("--text")
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = os.path.abspath(args.folder)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    n_positions = cfg.get("n_positions") or cfg.get("max_position_embeddings")
    arch = (cfg.get("architectures") or ["?"])[0]
    remote = arch != "GPT2LMHeadModel"
    print(f"export: {folder}\n  {arch}, n_positions {n_positions}, files {sorted(os.listdir(folder))}")

    engine = Engine(find_library(args.lib))
    backend = args.backend or ("cuda" if engine.has_cuda() and torch.cuda.is_available() else "cpu")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")

    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote)
    if args.text:
        text = open(args.text, encoding="utf-8").read()
    else:
        corpus = os.path.join(ROOT, "resources", "corpus", "kjv-chapters.jsonl")
        if os.path.exists(corpus):
            text = "\n".join(json.loads(l)["text"] for l in open(corpus, encoding="utf-8").read().splitlines()[:400] if l)
        else:
            text = BUILTIN_TEXT * 400
    T = min(args.tokens or n_positions, n_positions)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    while len(ids) < T:
        ids = ids + ids
    ids = ids[:T]
    print(f"  {T} tokens (the full context: the extended position rows are used)" if T == n_positions else f"  {T} tokens")

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, trust_remote_code=remote).to(device).eval()
    vocab = model.config.vocab_size
    x = torch.tensor([ids], device=device)
    with torch.no_grad():
        hf32 = model(x).logits[0].float().cpu().numpy()
        model = model.to(torch.bfloat16)
        hf16 = model(x).logits[0].float().cpu().numpy()
    del model
    if device == "cuda":
        torch.cuda.empty_cache()

    eng = engine.logits(folder, ids, backend, vocab)
    e = compare(eng, hf32, ids)
    f = compare(hf16, hf32, ids)
    print(f"  engine ({backend}) vs transformers fp32: {json.dumps({k: round(v, 6) for k, v in e.items()})}")
    print(f"  transformers bf16 vs fp32 (noise floor): {json.dumps({k: round(v, 6) for k, v in f.items()})}")

    checks = [
        ("mean |dNLL|", e["mean_abs_dnll"] <= max(2 * f["mean_abs_dnll"], 2e-3)),
        ("relative dPPL", e["rel_dppl"] <= max(2 * f["rel_dppl"], 0.005)),
        ("top-1 agreement", e["top1_agree"] >= f["top1_agree"] - 0.01),
    ]
    if backend == "cpu":
        checks.append(("fp32 max |dlogp| (top tokens)", e["max_abs_dlogp_top"] <= 5e-3))
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'} {name}")
    sys.exit(0 if all(ok for _, ok in checks) else 1)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as exc:  # a missing package or file: say so, exit 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
