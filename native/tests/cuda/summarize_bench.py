"""Prints the engine-vs-anchor table from gpu_train_bench's JSON and torch_anchor.py's output.
Usage: python3 summarize_bench.py bench.json anchor.log"""
import json
import sys

bench = json.load(open(sys.argv[1]))
anchor = {}
for line in open(sys.argv[2]):
    if line.startswith("{"):
        r = json.loads(line)
        anchor[r["T"]] = r
print("| T | engine tok/s | anchor tok/s | ratio | engine peak mapped GiB | anchor peak alloc / reserved GiB | >=1.0x, peak <= anchor reserved |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for r in bench["rows"]:
    a = anchor.get(r["T"])
    if not a:
        print(f"| {r['T']} | {r['tok_s']:.0f} | - | - | {r['peak_mapped_gib']:.2f} | - | - |")
        continue
    ratio = r["tok_s"] / a["tok_s"]
    ok = ratio >= 1.0 and r["peak_mapped_gib"] <= a["peak_reserved_gib"]
    print(f"| {r['T']} | {r['tok_s']:.0f} | {a['tok_s']} | {ratio:.2f}x | {r['peak_mapped_gib']:.2f} | "
          f"{a['peak_alloc_gib']:.2f} / {a['peak_reserved_gib']:.2f} | {'PASS' if ok else 'FAIL'} |")
rows = {r["T"]: r for r in bench["rows"]}
if 8192 in rows and 'sparse_tok_s' in bench:
    print(f"alternating sparse at 8192: {bench['sparse_tok_s']:.0f} tok/s vs dense {rows[8192]['tok_s']:.0f} "
          f"({'faster' if bench['sparse_tok_s'] > rows[8192]['tok_s'] else 'NOT faster'})")
if 'lean_peak_gib' in bench: print(f"lean mode at 8192: peak {bench['lean_peak_gib']:.2f} GiB ({'<= 20 GiB PASS' if bench['lean_peak_gib'] <= 20 else '> 20 GiB FAIL'}), "
      f"{bench['lean_tok_s']:.0f} tok/s")
e, c = bench["mix"]["expandable"], bench["mix"]["classic"]
print(f"allocator 2k->4k->8k 60/40: expandable mapped {e[0]:.2f} / allocated {e[1]:.2f} GiB; "
      f"classic mapped {c[0]:.2f} / allocated {c[1]:.2f} GiB")
