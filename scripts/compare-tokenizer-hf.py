#!/usr/bin/env python3
"""Compare the app's tokenizer with Hugging Face's on tricky text.

Needs python3 with transformers (and tokenizers) installed, and node with this repository's
node_modules (the app's side runs through `npx tsx scripts/tokenize-cli.ts`).

    python3 scripts/compare-tokenizer-hf.py MODEL_DIR [MODEL_DIR ...] [--corpus FILE.jsonl] [--limit N]

MODEL_DIR is a local model folder (e.g. a download of gpt2, or ai-forever/rugpt3small_based_on_gpt2).
For each folder, every string is encoded by:
  - transformers' AutoTokenizer (fast, tokenizer.json when present),
  - transformers' GPT2Tokenizer on a copy of the folder without tokenizer.json, when it has
    vocab.json + merges.txt,
  - the app, on the folder as it is and on a copy holding only vocab.json + merges.txt,
and the ids and decoded text must agree. Prints every mismatch; exits 1 if there is any.
HF's decode is called with clean_up_tokenization_spaces=False (its cleanup rewrites " ." to "."
and is not part of tokenization).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRICKY = [
    "Hello world",
    " Hello  world ",
    "In the beginning God created the heaven and the earth.",
    "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ёлка и йогурт: ЁЁЁ ёё",
    "I'm sure you'll see they've done what we'd said; it's John's.",
    "'s 't 're 've 'm 'll 'd 'S 'T ''s",
    "DON'T SHOUT, it'S fine",
    "tabs\tand\t\ttabs\n\nnew\r\nlines\n",
    "   leading spaces",
    "trailing spaces   ",
    "a  b   c    d",
    "\n\n\n",
    " ",
    "",
    "line one\n  indented\n\tline",
    "3.14159 1,000,000 2024-01-01 0x1F 1e-5 ١٢٣ ⅷ ½",
    "12345678901234567890",
    "emoji 👍 and ZWJ families 👨‍👩‍👧‍👦 🏳️‍🌈 flags 🇺🇦🇷🇺 skin 👋🏽",
    "🎉🎉🎉",
    "CJK 日本語のテキスト 中文 한국어",
    "Arabic مرحبا بالعالم Hebrew שלום",
    "Devanagari नमस्ते दुनिया",
    "combining: e\u0301 a\u0308 precomposed: é ä",
    "zero\u200bwidth\u200cjoiners\u200d",
    "nbsp\u00a0here, nel\u0085there, bom\ufeffthere, ideographic\u3000space",
    "text<|endoftext|>more text",
    "<|endoftext|>",
    "a<|endoftext|><|endoftext|>b",
    " <|endoftext|> spaced <|endoftext|>",
    "<|endoftext",
    "supercalifragilisticexpialidocious" * 20,
    "a" * 5000,
    "x" * 3 + " " * 40 + "y",
    "word" + "\u0301" * 10,
    "mixed\u00a0\u00a0spaces \u2003em\u2009thin",
    "code: def f(x):\n    return x**2  # comment\n",
    "URL https://example.com/path?q=1&r=2#frag",
    "punctuation!!! ??? ... --- ;;; «quotes» “curly” ‘single’",
    "\x00\x01\x7f control chars",
    "\U0001F600\U0001F4A9\U00010348",
]


def encode_ours(model_dir, texts):
    lines = "".join(json.dumps(t) + "\n" for t in texts)
    out = subprocess.run(
        ["npx", "tsx", os.path.join(REPO, "scripts", "tokenize-cli.ts"), model_dir, "--jsonl"],
        input=lines.encode("utf-8"),
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"tokenize-cli failed on {model_dir}:\n{out.stderr.decode()}")
    # split("\n"), not splitlines(): the JSON may hold a raw U+2028 or U+0085, which splitlines() cuts at.
    records = [json.loads(l) for l in out.stdout.decode("utf-8").split("\n") if l.strip()]
    # tokenize-cli skips blank input lines; json.dumps never produces one.
    assert len(records) == len(texts), (len(records), len(texts))
    return records


def vocab_merges_copy(model_dir):
    names = ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "added_tokens.json", "config.json"]
    if not all(os.path.exists(os.path.join(model_dir, n)) for n in names[:2]):
        return None
    tmp = tempfile.mkdtemp(prefix="tok-vm-")
    for n in names:
        src = os.path.join(model_dir, n)
        if os.path.exists(src):
            shutil.copy(src, tmp)
    return tmp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dirs", nargs="+")
    ap.add_argument("--corpus", help="a .jsonl with a text field, e.g. resources/corpus/kjv-chapters.jsonl")
    ap.add_argument("--limit", type=int, default=200, help="documents to take from --corpus")
    args = ap.parse_args()

    from transformers import AutoTokenizer, GPT2Tokenizer

    texts = list(TRICKY)
    if args.corpus:
        with open(args.corpus, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= args.limit:
                    break
                texts.append(json.loads(line)["text"])

    mismatches = 0
    for model_dir in args.model_dirs:
        refs = {"hf-fast": AutoTokenizer.from_pretrained(model_dir, use_fast=True)}
        vm_dir = vocab_merges_copy(model_dir)
        if vm_dir:
            # The folder as transformers sees it without tokenizer.json (the slow GPT2Tokenizer in
            # transformers 4, the tokenizers-backed one built from vocab.json + merges.txt in 5).
            refs["hf(vocab+merges)"] = GPT2Tokenizer.from_pretrained(vm_dir)
        ours = {"ours": encode_ours(model_dir, texts)}
        if vm_dir:
            ours["ours(vocab+merges)"] = encode_ours(vm_dir, texts)

        for ref_name, ref in refs.items():
            for our_name, results in ours.items():
                bad = 0
                for text, rec in zip(texts, results):
                    ids = ref(text, add_special_tokens=False)["input_ids"]
                    if ids != rec["ids"]:
                        bad += 1
                        print(f"[{model_dir}] {ref_name} vs {our_name}: ids differ for {text[:80]!r}")
                        print(f"    hf:   {ids[:40]}")
                        print(f"    ours: {rec['ids'][:40]}")
                        continue
                    decoded = ref.decode(ids, clean_up_tokenization_spaces=False, spaces_between_special_tokens=False)
                    if decoded != rec["text"]:
                        bad += 1
                        print(f"[{model_dir}] {ref_name} vs {our_name}: decode differs for {text[:80]!r}")
                        print(f"    hf:   {decoded[:120]!r}")
                        print(f"    ours: {rec['text'][:120]!r}")
                print(f"[{model_dir}] {ref_name} vs {our_name}: {len(texts) - bad}/{len(texts)} identical")
                mismatches += bad
        if vm_dir:
            shutil.rmtree(vm_dir, ignore_errors=True)

    print("OK: no mismatch" if mismatches == 0 else f"FAILED: {mismatches} mismatches")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
