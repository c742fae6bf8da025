#!/usr/bin/env python3
"""Where the GPU time of one profiled region goes, from `ncu --csv --page raw` output.

Usage: ncu_summary.py FILE.csv [--total-ms MS] [--top N]

Groups the kernels into the engine's parts (matmuls, attention, LayerNorm, ...) and prints the
time of each part, its share, and the kernels that cost most. ncu runs kernels one at a time,
so the sum is GPU busy time without launch gaps or overlap; --total-ms (the region timed without
the profiler) shows how much of the wall time that is. dram__bytes_* columns, when present, give
each part's achieved bandwidth. Standard library only (it runs on the GPU machine).
"""
import csv
import re
import sys

# First match wins; names as ncu prints them (templates and arguments included).
PARTS = [
    ("matmul (cuBLASLt)", r"gemm|nvjet|xmma|cutlass|sm90_|sm80_"),
    ("attention fwd", r"attn_fwd_kernel"),
    ("attention dq", r"attn_dq_kernel"),
    ("attention dkv", r"attn_dkv_kernel"),
    ("attention dvec (rowsum dO*O)", r"attn_dvec_kernel"),
    ("decode attention", r"attn_decode"),
    ("gemv (one-row products)", r"gemv_kernel"),
    ("layernorm", r"ln_"),
    ("gelu", r"gelu_"),
    ("classifier (softmax, loss)", r"classifier_kernel"),
    ("bias / column sums", r"colsum_"),
    ("adamw", r"adamw_kernel"),
    ("grad norm", r"sumsq_kernel"),
    ("bf16/fp32 conversion", r"f2b_kernel|b2f_kernel"),
    ("embedding", r"encoder_fwd|embedding_bwd"),
    ("kv append", r"kv_append"),
]


def read(path):
    with open(path, newline="") as f:
        lines = [l for l in f if not l.startswith("==")]
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        raise SystemExit(f"{path}: no ncu CSV table (was the profiler range hit? see the ncu log)")
    rows = list(csv.DictReader(lines[start:]))
    kernels = []
    for r in rows:
        if not r.get("ID", "").strip().isdigit():
            continue  # the units row
        def num(key, scale=1.0):
            v = (r.get(key) or "").replace(",", "")
            try:
                return float(v) * scale
            except ValueError:
                return None
        # gpu__time_duration.sum is in ns (or usecond/msecond on some versions: the units row)
        kernels.append({"name": r["Kernel Name"], "ns": num("gpu__time_duration.sum"),
                        "rd": num("dram__bytes_read.sum"), "wr": num("dram__bytes_write.sum")})
    unit = next((r.get("gpu__time_duration.sum") for r in rows if not r.get("ID", "").strip().isdigit()), "nsecond")
    scale = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9}.get((unit or "nsecond").strip(), 1.0)
    byte_units = next((r.get("dram__bytes_read.sum") for r in rows if not r.get("ID", "").strip().isdigit()), "byte")
    bscale = {"byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9}.get((byte_units or "byte").strip(), 1.0)
    for k in kernels:
        k["ns"] = (k["ns"] or 0.0) * scale
        for key in ("rd", "wr"):
            if k[key] is not None:
                k[key] *= bscale
    return kernels


def part_of(name):
    for part, rx in PARTS:
        if re.search(rx, name):
            return part
    return "other"


def short(name, width=90):
    name = re.sub(r"\s+", " ", name)
    return name if len(name) <= width else name[: width - 3] + "..."


def main(argv):
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    path = argv[0]
    total_ms = float(argv[argv.index("--total-ms") + 1]) if "--total-ms" in argv else None
    top = int(argv[argv.index("--top") + 1]) if "--top" in argv else 15
    kernels = read(path)
    busy = sum(k["ns"] for k in kernels) / 1e6
    has_bytes = any(k["rd"] is not None for k in kernels)
    parts = {}
    for k in kernels:
        p = parts.setdefault(part_of(k["name"]), {"n": 0, "ms": 0.0, "bytes": 0.0})
        p["n"] += 1
        p["ms"] += k["ns"] / 1e6
        p["bytes"] += (k["rd"] or 0) + (k["wr"] or 0)
    print(f"## {path}: {len(kernels)} kernels, {busy:.2f} ms GPU busy" +
          (f" of {total_ms:.2f} ms wall ({100 * busy / total_ms:.0f}%)" if total_ms else ""))
    print("| part | kernels | ms | share |" + (" GB/s |" if has_bytes else ""))
    print("| --- | --- | --- | --- |" + (" --- |" if has_bytes else ""))
    for name, p in sorted(parts.items(), key=lambda kv: -kv[1]["ms"]):
        bw = f" {p['bytes'] / (p['ms'] * 1e6):.0f} |" if has_bytes and p["ms"] > 0 else (" |" if has_bytes else "")
        print(f"| {name} | {p['n']} | {p['ms']:.3f} | {100 * p['ms'] / busy:.1f}% |{bw}")
    by_name = {}
    for k in kernels:
        e = by_name.setdefault(k["name"], {"n": 0, "ns": 0.0, "bytes": 0.0})
        e["n"] += 1
        e["ns"] += k["ns"]
        e["bytes"] += (k["rd"] or 0) + (k["wr"] or 0)
    print(f"\nTop {top} kernels by total time:")
    print("| kernel | calls | total ms | mean us |" + (" GB/s |" if has_bytes else ""))
    print("| --- | --- | --- | --- |" + (" --- |" if has_bytes else ""))
    for name, e in sorted(by_name.items(), key=lambda kv: -kv[1]["ns"])[:top]:
        bw = f" {e['bytes'] / e['ns']:.0f} |" if has_bytes and e["ns"] > 0 else (" |" if has_bytes else "")
        print(f"| {short(name)} | {e['n']} | {e['ns'] / 1e6:.3f} | {e['ns'] / e['n'] / 1e3:.1f} |{bw}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
