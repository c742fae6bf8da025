#!/usr/bin/env python3
"""Second half of making test/fixtures/tokenizer-golden.json: encode the texts with HF.

    npx tsx scripts/tokenizer-golden-inputs.ts /tmp/golden          # here
    python3 scripts/make-tokenizer-golden.py /tmp/golden OUT.json   # where transformers is installed
    cp OUT.json test/fixtures/tokenizer-golden.json

Each tokenizer.json is encoded by tokenizers.Tokenizer.from_file (add_special_tokens=False) and
decoded with skip_special_tokens=False; for tiny-gpt2, transformers' AutoTokenizer and the
GPT2Tokenizer built from vocab.json + merges.txt must give the same ids. One case per line keeps
diffs of the fixture readable.
"""
import json
import os
import sys

import tokenizers
import transformers
from tokenizers import Tokenizer

src, dest = sys.argv[1], sys.argv[2]
spec = json.load(open(os.path.join(src, "texts.json"), encoding="utf-8"))
texts, edge_count = spec["texts"], spec["edgeCount"]
names = sorted(n for n in os.listdir(src) if os.path.isdir(os.path.join(src, n)))
producer = (
    f"HF tokenizers {tokenizers.__version__} (Tokenizer.from_file, encode add_special_tokens=False); "
    f"transformers {transformers.__version__} AutoTokenizer and GPT2Tokenizer(vocab.json, merges.txt) agree on tiny-gpt2"
)
result = {}
for name in names:
    d = os.path.join(src, name)
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    chosen = texts if name == "tiny-gpt2" else texts[:edge_count]
    cases = []
    for s in chosen:
        ids = tok.encode(s, add_special_tokens=False).ids
        case = {"text": s, "ids": ids}
        decoded = tok.decode(ids, skip_special_tokens=False)
        if decoded != s:
            case["decoded"] = decoded
        cases.append(case)
    if name == "tiny-gpt2":
        auto = transformers.AutoTokenizer.from_pretrained(d)
        slow = transformers.GPT2Tokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
        for c in cases:
            assert auto(c["text"], add_special_tokens=False)["input_ids"] == c["ids"], c["text"]
            assert slow(c["text"], add_special_tokens=False)["input_ids"] == c["ids"], c["text"]
    result[name] = cases

with open(dest, "w", encoding="utf-8") as f:
    f.write('{"producer": ' + json.dumps(producer) + ",\n")
    f.write(' "note": "ids (and decoded text where it is not the input) that HF produced; see test/fixtures/README.md",\n')
    f.write(' "tokenizers": {\n')
    for k, name in enumerate(names):
        f.write("  " + json.dumps(name) + ": [\n")
        cases = result[name]
        for i, c in enumerate(cases):
            f.write("   " + json.dumps(c, ensure_ascii=True, separators=(",", ":")) + ("," if i < len(cases) - 1 else "") + "\n")
        f.write("  ]" + ("," if k < len(names) - 1 else "") + "\n")
    f.write(" }\n}\n")
print(dest, {n: len(c) for n, c in result.items()}, producer)
