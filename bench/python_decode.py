# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Wall time of ssmkit.selective_state_update called eagerly from Python (no CUDA graph).

On the batch-1 decode shapes of Mamba-1 2.8b and Mamba-2 2.7b (bf16 activations, fp32
state, torch CUDA tensors, mamba-ssm's argument forms), each round times `--calls` calls
back to back with one torch.cuda.synchronize() at the end; the median over `--rounds` rounds,
divided by the calls, is the cost of one call. The kernel itself takes a few microseconds,
so this is the per-call overhead of the Python path. Where ssmkit._ssmkit_torch was built,
the native torch path (the default) and the DLPack path are timed in alternating rounds. A
breakdown times the parts of the DLPack path the same way: the argument checks and exports
alone (extension call replaced), the tensor exports, the output allocation, the stream query,
the extension call on ready capsules; then the native extension called directly, and one
small torch op for scale.

    PYTHONPATH=<build>/bindings/python/pkg python bench/python_decode.py [--json FILE]
"""

import argparse
import json
import statistics
import time

import torch

import ssmkit
from ssmkit import _decode, _ssmkit


def per_call_us(fn, calls, rounds, sync=True):
    """Median over rounds of (wall time of `calls` calls of fn) / calls, in microseconds."""
    for _ in range(calls):  # warm-up (clocks, caches, allocator)
        fn()
    if sync:
        torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if sync:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def mamba1_args(dev):
    D, N = 5120, 16
    bf = torch.bfloat16
    return dict(state=torch.randn(1, D, N, device=dev), x=torch.randn(1, D, device=dev, dtype=bf),
                dt=torch.rand(1, D, device=dev, dtype=bf) - 3, A=-torch.rand(D, N, device=dev) - 0.2,
                B=torch.randn(1, N, device=dev, dtype=bf), C=torch.randn(1, N, device=dev, dtype=bf),
                D=torch.randn(D, device=dev), z=torch.randn(1, D, device=dev, dtype=bf),
                dt_bias=0.1 * torch.randn(D, device=dev), dt_softplus=True)


def mamba2_args(dev):
    H, P, N = 80, 64, 128
    bf = torch.bfloat16
    # Per-head A, dt, dt_bias and D broadcast over headdim (and dstate), as Mamba-2 layers pass them.
    return dict(state=torch.randn(1, H, P, N, device=dev), x=torch.randn(1, H, P, device=dev, dtype=bf),
                dt=(torch.rand(1, H, 1, device=dev, dtype=bf) - 3).expand(1, H, P),
                A=(-torch.rand(H, 1, 1, device=dev) - 0.2).expand(H, P, N),
                B=torch.randn(1, 1, N, device=dev, dtype=bf), C=torch.randn(1, 1, N, device=dev, dtype=bf),
                D=torch.randn(H, 1, device=dev).expand(H, P), z=torch.randn(1, H, P, device=dev, dtype=bf),
                dt_bias=(0.1 * torch.randn(H, 1, device=dev)).expand(H, P), dt_softplus=True)


def breakdown(args, calls, rounds):
    """Per-call cost of the parts of one call, in microseconds."""
    to_dlpack = torch.utils.dlpack.to_dlpack
    x = args["x"]
    tensors = [v for k, v in args.items() if isinstance(v, torch.Tensor)] + [torch.empty_like(x)]
    dev = x.get_device()
    raw_stream = torch._C._cuda_getCurrentRawStream
    parts = {}

    real = _ssmkit.selective_state_update_mamba
    _ssmkit.selective_state_update_mamba = lambda *a: None
    try:
        parts["python wrapper, extension call replaced"] = per_call_us(
            lambda: ssmkit.selective_state_update(**args), calls, rounds, sync=False)
    finally:
        _ssmkit.selective_state_update_mamba = real
    parts[f"to_dlpack x {len(tensors)}"] = per_call_us(lambda: [to_dlpack(t) for t in tensors], calls, rounds,
                                                       sync=False)
    parts["torch.empty_like(x)"] = per_call_us(lambda: torch.empty_like(x), calls, rounds, sync=False)
    parts["current raw stream"] = per_call_us(lambda: raw_stream(dev), calls, rounds, sync=False)

    # The extension on ready capsules (made outside the timed loop; each call consumes its own).
    a = args
    out = torch.empty_like(x)
    stream = raw_stream(dev)
    order = [a["state"], a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"], a["z"], a["dt_bias"]]

    def make():
        return [to_dlpack(t) for t in order] + [to_dlpack(out)]

    for _ in range(20):
        c = make()
        real(*c[:9], True, None, None, c[9], None, stream)
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        caps = [make() for _ in range(calls)]
        t0 = time.perf_counter()
        for c in caps:
            real(*c[:9], True, None, None, c[9], None, stream)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    parts["extension call on ready capsules (checks + launch)"] = statistics.median(times)

    small = torch.randn(16, device=x.device)
    parts["torch.add on 16 floats (for scale)"] = per_call_us(lambda: torch.add(small, small), calls, rounds)
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per round")
    ap.add_argument("--rounds", type=int, default=15, help="rounds (the median is reported)")
    ap.add_argument("--warmup-s", type=float, default=3.0, help="seconds of calls before the first timing")
    ap.add_argument("--json", help="write the figures to this file")
    opt = ap.parse_args()

    dev = torch.device("cuda")
    results = {"device": torch.cuda.get_device_name(dev), "torch": torch.__version__, "cases": []}
    print(f"device: {results['device']}, torch {torch.__version__}")
    cases = [("mamba-2.8b decode B1 D5120 N16", mamba1_args(dev)),
             ("mamba2-2.7b decode B1 H80 P64 N128 G1", mamba2_args(dev))]
    for name, args in cases:
        # Correctness of the call path (the kernel tests cover the numbers): finite outputs.
        out = ssmkit.selective_state_update(**args)
        torch.cuda.synchronize()
        assert torch.isfinite(out.float()).all(), name
    # A warm-up phase first: on the machines measured, the first seconds of a process ran
    # the same calls up to 1.6x slower (clocks, allocator, caches).
    t_end = time.perf_counter() + opt.warmup_s
    while time.perf_counter() < t_end:
        for _, args in cases:
            for _ in range(200):
                ssmkit.selective_state_update(**args)
        torch.cuda.synchronize()
    # The two shapes, and the native torch path and the DLPack path, are timed in alternating
    # rounds, so that a slow phase of the machine weighs on all alike.
    native = _decode.torch_fast_path()
    ext = _decode._torch_ext
    paths = ["native torch path", "DLPack path"] if native else ["DLPack path"]
    print(f"ssmkit._ssmkit_torch: {'built' if native else 'not built'}")
    rounds = {(name, path): [] for name, _ in cases for path in paths}
    for _ in range(opt.rounds):
        for name, args in cases:
            for path in paths:
                _decode._torch_ext = ext if path.startswith("native") else None
                rounds[name, path].append(per_call_us(lambda: ssmkit.selective_state_update(**args), opt.calls, 1))
    _decode._torch_ext = ext
    for name, args in cases:
        for path in paths:
            r = rounds[name, path]
            us = statistics.median(r)
            print(f"\n{name}, {path}: {us:.2f} us per eager call (median of {opt.rounds} rounds of {opt.calls}"
                  f" calls, alternating; rounds {min(r):.2f}-{max(r):.2f} us)")
            results["cases"].append({"name": name, "path": path, "us_per_call": us, "rounds_us": r})
        _decode._torch_ext = None
        try:
            parts = breakdown(args, opt.calls, opt.rounds)
        finally:
            _decode._torch_ext = ext
        if native:
            a = args
            call = ext.selective_state_update
            stream = torch._C._cuda_getCurrentRawStream(a["x"].get_device())
            parts["native extension call alone (allocates out)"] = per_call_us(
                lambda: call(a["state"], a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"], a["z"], a["dt_bias"],
                             True, None, None, None, None, stream), opt.calls, opt.rounds)
        print(f"  parts (DLPack path unless named):")
        for k, v in parts.items():
            print(f"  {k:52s} {v:7.2f} us")
        results["cases"].append({"name": name, "parts_us": parts})
    if opt.json:
        with open(opt.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"\nwrote {opt.json}")


if __name__ == "__main__":
    main()
