#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Prints the Markdown table of the README's results section from an ssmkit_bench JSON file.

    python3 bench/table.py bench/results/<run>.json
"""
import json
import sys


def fmt_time(ms):
    return f"{ms * 1e3:.2f} µs" if ms < 0.1 else f"{ms:.3f} ms"


def fmt_pct(v):
    return f"{v:.1f}" if v is not None and v >= 0 else ""


def main(path):
    with open(path) as f:
        run = json.load(f)
    print(f"{run['device']}, {run['date']}: copy {run['copy_gbs']:.0f} GB/s, ex2 {run['exp2_per_s']:.3g} /s")
    print()
    print("| op | case | dtype | shape | ssmkit | % copy BW | % exp2 bound | reference | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in run["cases"]:
        ref = c.get("anchor_ms", 0) or 0
        cells = [c["op"], c["name"], c["dtype"], c["shape"], fmt_time(c["ms"]), fmt_pct(c.get("pct_copy_bw")),
                 fmt_pct(c.get("pct_exp2")), fmt_time(ref) if ref > 0 else "",
                 f"{ref / c['ms']:.2f}x" if ref > 0 else ""]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
