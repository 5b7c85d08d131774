# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the decode step (selective state update) bindings.

Tests without the ``gpu`` marker need only numpy; ``gpu`` tests need PyTorch with a CUDA
device and skip themselves otherwise.
"""

import inspect
import os

import numpy as np
import pytest

import ssmkit
from ssmkit import _ssmkit, selective_state_update

try:
    import torch
except ImportError:  # CPU-only environments test without torch
    torch = None


# --------------------------------------------------------------------------------------------
# CPU tests: no GPU needed.
# --------------------------------------------------------------------------------------------

def test_signature_matches_mamba():
    params = list(inspect.signature(selective_state_update).parameters.values())
    names = [p.name for p in params]
    assert names[:11] == ["state", "x", "dt", "A", "B", "C", "D", "z", "dt_bias", "dt_softplus",
                          "state_batch_indices"]
    for p in params[11:]:
        assert p.kind == inspect.Parameter.KEYWORD_ONLY
    assert "selective_state_update" in ssmkit.__all__
    assert _ssmkit.MAX_DECODE_DSTATE == 256


def np_m2(batch=2, T=None, H=4, P=8, N=16, G=2, slots=None, dtype=np.float32):
    """Canonical (low-level) Mamba-2 arguments as numpy arrays."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(dtype)
    T1 = 1 if T is None else T
    return dict(
        state=np.zeros((slots or batch, H, P, N), np.float32),
        x=f(batch, T1, H, P), dt=f(batch, T1, H, P), A=-np.ones((H, P, N), np.float32),
        B=f(batch, T1, G, N), C=f(batch, T1, G, N), D=np.ones((H, P), np.float32),
        z=f(batch, T1, H, P), dt_bias=np.zeros((H, P), np.float32),
        src=np.arange(batch, dtype=np.int32), dst=None,
        out=np.empty((batch, T1, H, P), dtype), inter=None)


def call_low_level(a, softplus=False, stream=0):
    caps = {k: (v.__dlpack__() if isinstance(v, np.ndarray) else v) for k, v in a.items()}
    _ssmkit.selective_state_update(caps["state"], caps["x"], caps["dt"], caps["A"], caps["B"],
                                   caps["C"], caps["D"], caps["z"], caps["dt_bias"], softplus,
                                   caps["src"], caps["dst"], caps["out"], caps["inter"], stream)


def test_low_level_rejects_cpu_tensors():
    a = np_m2()
    with pytest.raises(ValueError, match=r"^state must be a CUDA tensor, got a tensor on cpu"):
        call_low_level(a)
    for k in ("D", "z", "dt_bias", "src"):
        a[k] = None
    with pytest.raises(ValueError, match=r"^state must be a CUDA tensor, got a tensor on cpu"):
        call_low_level(a)


@pytest.mark.parametrize("arg, make, pattern", [
    ("state", lambda a: a["state"][0], r"^state must be 4-D"),
    ("state", lambda a: a["state"].astype(np.float64), r"^state has unsupported dtype float64"),
    ("state", lambda a: a["state"][..., ::2], r"^state must be contiguous in its last"),
    ("x", lambda a: a["x"][:, 0], r"^x must be 4-D"),
    ("x", lambda a: a["x"][:, :, :2], r"^x must have shape \(2, 1, 4, 8\)"),
    ("x", lambda a: a["x"].astype(np.int32), r"^x has unsupported dtype int32"),
    ("dt", lambda a: a["dt"].astype(np.float16), r"^dt must be float32 like x, got float16"),
    ("dt", lambda a: a["dt"][:, :, :, :4], r"^dt must have shape \(2, 1, 4, 8\) like x"),
    ("A", lambda a: a["A"][0], r"^A must be 3-D"),
    ("A", lambda a: a["A"].astype(np.float16), r"^A must be float32"),
    ("B", lambda a: a["B"][:, :, :, :8], r"^B must have shape \(2, 1, ngroups, 16\)"),
    ("B", lambda a: np.ones((2, 1, 3, 16), np.float32), r"^B: ngroups .* must be >= 1 and divide nheads = 4, got 3"),
    ("B", lambda a: a["B"].astype(np.float16), r"^B must be float32 like x"),
    ("C", lambda a: a["C"][:, :, :1], r"^C must have shape \(2, 1, 2, 16\) like B"),
    ("D", lambda a: a["D"][0], r"^D must be 2-D"),
    ("D", lambda a: a["D"].astype(np.float64), r"^D must be float32, got float64"),
    ("dt_bias", lambda a: a["dt_bias"][:, :4], r"^dt_bias must have shape \(4, 8\)"),
    ("z", lambda a: a["z"].astype(np.float16), r"^z must be float32 like x"),
    ("src", lambda a: a["src"].astype(np.int64), r"^state_batch_indices must be int32, got int64"),
    ("src", lambda a: a["src"][:1], r"^state_batch_indices must have shape \(2,\)"),
    ("dst", lambda a: np.arange(2, dtype=np.float32), r"^dst_state_batch_indices must be int32, got float32"),
    ("out", lambda a: a["out"].astype(np.float16), r"^out must be float32 like x"),
    ("inter", lambda a: np.zeros((2, 1, 4, 8), np.float32), r"^intermediate_states must be 5-D"),
    ("inter", lambda a: np.zeros((2, 1, 4, 8, 16), np.float16), r"^intermediate_states must be float32 like state"),
])
def test_low_level_argument_errors(arg, make, pattern):
    a = np_m2()
    a[arg] = make(a)
    with pytest.raises(ValueError, match=pattern):
        call_low_level(a)


def test_low_level_too_few_slots():
    a = np_m2(batch=3, slots=2)
    a["src"] = None
    with pytest.raises(ValueError, match=r"^state has 2 slots but x has batch 3"):
        call_low_level(a)


def np_py(m2=True, tokens=False):
    """Arguments of ssmkit.selective_state_update (mamba-ssm shapes) as numpy arrays."""
    a = np_m2(T=2 if tokens else None)
    if not m2:
        return dict(state=np.zeros((2, 8, 16), np.float32),
                    x=np.ones((2, 2, 8) if tokens else (2, 8), np.float32),
                    dt=np.ones((2, 2, 8) if tokens else (2, 8), np.float32),
                    A=np.ones((8, 16), np.float32),
                    B=np.ones((2, 2, 16) if tokens else (2, 16), np.float32),
                    C=np.ones((2, 2, 16) if tokens else (2, 16), np.float32))
    sq = (lambda t: t) if tokens else (lambda t: t[:, 0])
    return dict(state=a["state"], x=sq(a["x"]), dt=sq(a["dt"]), A=a["A"], B=sq(a["B"]), C=sq(a["C"]))


@pytest.mark.parametrize("m2", [False, True])
@pytest.mark.parametrize("tokens", [False, True])
def test_numpy_rejected_naming_x(m2, tokens):
    with pytest.raises(ValueError, match=r"^x must be a CUDA tensor \(torch or cupy\); got numpy\.ndarray"):
        selective_state_update(**np_py(m2, tokens))


@pytest.mark.parametrize("arg, value, pattern", [
    ("state", np.ones((2, 8)), r"^state must be 3-D .* or 4-D"),
    ("x", np.ones(8), r"^x must be 3-D \(batch, nheads, headdim\) or 4-D"),
    ("dt", np.ones((2, 4)), r"^dt must be 3-D like x"),
    ("A", np.ones((4, 16)), r"^A must be 3-D \(nheads, headdim, dstate\)"),
    ("B", np.ones((2, 16)), r"^B must be 3-D"),
    ("C", None, r"^C must be a tensor"),
    ("D", np.ones(4), r"^D must be 2-D"),
    ("z", np.ones((2, 4)), r"^z must be 3-D like x"),
    ("dt_bias", np.ones(4), r"^dt_bias must be 2-D"),
    ("state_batch_indices", np.ones((2, 1), np.int32), r"^state_batch_indices must be 1-D"),
    ("dst_state_batch_indices", np.ones((2, 1), np.int32), r"^dst_state_batch_indices must be 1-D"),
    ("intermediate_states", np.ones((2, 4, 8, 16)), r"^intermediate_states must be 5-D"),
    ("out", np.ones((2, 4)), r"^out must be 3-D like x"),
    ("dt_softplus", "yes", r"^dt_softplus must be a bool"),
    ("stream", -1, r"^stream must be"),
])
def test_python_level_argument_errors(arg, value, pattern):
    kw = np_py()
    kw[arg] = value
    with pytest.raises(ValueError, match=pattern):
        selective_state_update(**kw)


def test_python_level_mamba1_ranks():
    kw = np_py(m2=False)
    kw["B"] = np.ones((2, 1, 16))
    with pytest.raises(ValueError, match=r"^B must be 2-D \(batch, \[T,\] dstate\)"):
        selective_state_update(**kw)
    kw = np_py(m2=False)
    kw["D"] = np.ones((8, 1))
    with pytest.raises(ValueError, match=r"^D must be 1-D \(dim,\)"):
        selective_state_update(**kw)


# --------------------------------------------------------------------------------------------
# GPU tests: against the float64 reference.
# --------------------------------------------------------------------------------------------

TOL = {"float32": (3e-4, 1e-4), "float16": (3e-3, 3e-3), "bfloat16": (2e-2, 2e-2)}


def make_inputs(m2, dtype, state_dtype, batch=4, dim=40, H=6, P=16, N=64, G=2, T=None, slots=None,
                seed=0):
    from ssmkit.reference import selective_state_update_ref  # noqa: F401  (torch needed)

    g = torch.Generator(device="cuda").manual_seed(seed)
    dev = "cuda"
    r = lambda *s, dt=dtype: torch.randn(*s, generator=g, device=dev).to(dt)
    tok = () if T is None else (T,)
    slots = slots or batch
    if m2:
        state = r(slots, H, P, N, dt=state_dtype)
        x, z = r(batch, *tok, H, P), r(batch, *tok, H, P)
        dt = (torch.rand(batch, *tok, H, 1, generator=g, device=dev) * 5 - 4).to(dtype).expand(*x.shape)
        A = (-torch.rand(H, 1, 1, generator=g, device=dev) * 2.8 - 0.2).expand(H, P, N)
        B, C = r(batch, *tok, G, N), r(batch, *tok, G, N)
        D = torch.randn(H, 1, generator=g, device=dev).expand(H, P)
        dt_bias = (0.1 * torch.randn(H, 1, generator=g, device=dev)).expand(H, P)
    else:
        state = r(slots, dim, N, dt=state_dtype)
        x, z = r(batch, *tok, dim), r(batch, *tok, dim)
        dt = (torch.rand(batch, *tok, dim, generator=g, device=dev) * 5 - 4).to(dtype)
        A = -torch.rand(dim, N, generator=g, device=dev) * 2.8 - 0.2
        B, C = r(batch, *tok, N), r(batch, *tok, N)
        D = torch.randn(dim, generator=g, device=dev)
        dt_bias = 0.1 * torch.randn(dim, generator=g, device=dev)
    return dict(state=state, x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias)


def check_close(got, want, dtype, what):
    rtol, atol = TOL[str(dtype).split(".")[-1]]
    g, w = got.double(), want.double()
    scale = w.abs().pow(2).mean().sqrt().item() + 1e-30
    err = (g - w).abs()
    bad = err > atol * scale + rtol * w.abs()
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {w.numel()} outside tolerance, "
                           f"max abs err {err.max().item():.3g}")


@pytest.mark.gpu
@pytest.mark.parametrize("m2", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("state_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("N", [16, 128])
def test_against_reference(m2, dtype, state_dtype, N):
    from ssmkit.reference import selective_state_update_ref

    dtype, state_dtype = getattr(torch, dtype), getattr(torch, state_dtype)
    a = make_inputs(m2, dtype, state_dtype, N=N, seed=N + m2)
    ref_state = a["state"].clone()
    want = selective_state_update_ref(ref_state, a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"],
                                      a["z"], a["dt_bias"], True)
    got = selective_state_update(a["state"], a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"],
                                 a["z"], a["dt_bias"], True)
    torch.cuda.synchronize()
    assert got.shape == a["x"].shape and got.dtype == dtype
    check_close(got, want, dtype, "out")
    check_close(a["state"], ref_state, state_dtype, "state")


@pytest.mark.gpu
@pytest.mark.parametrize("m2", [False, True])
def test_pool_with_padding(m2):
    from ssmkit.reference import selective_state_update_ref

    a = make_inputs(m2, torch.bfloat16, torch.float32, batch=5, slots=12, seed=3)
    idx = torch.tensor([7, -1, 2, 11, -1], dtype=torch.int32, device="cuda")
    before = a["state"].clone()
    ref_state = a["state"].clone()
    want = selective_state_update_ref(ref_state, a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"],
                                      a["z"], a["dt_bias"], True, state_batch_indices=idx)
    got = selective_state_update(a["state"], a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"],
                                 a["z"], a["dt_bias"], True, state_batch_indices=idx)
    torch.cuda.synchronize()
    check_close(got, want, torch.bfloat16, "out")
    assert (got[1] == 0).all() and (got[4] == 0).all()
    check_close(a["state"], ref_state, torch.float32, "state")
    untouched = [s for s in range(12) if s not in (7, 2, 11)]
    assert torch.equal(a["state"][untouched], before[untouched])


@pytest.mark.gpu
@pytest.mark.parametrize("m2", [False, True])
def test_tokens_equal_single_steps_and_intermediate_states(m2):
    T = 4
    a = make_inputs(m2, torch.float32, torch.float32, T=T, seed=5)
    s_steps = a["state"].clone()
    outs = []
    for t in range(T):
        outs.append(selective_state_update(s_steps, a["x"][:, t], a["dt"][:, t], a["A"], a["B"][:, t],
                                           a["C"][:, t], a["D"], a["z"][:, t], a["dt_bias"], True))
    inter = torch.full((a["x"].shape[0], T) + tuple(a["state"].shape[1:]), float("nan"), device="cuda")
    got = selective_state_update(a["state"], a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"], a["z"],
                                 a["dt_bias"], True, intermediate_states=inter)
    torch.cuda.synchronize()
    assert got.shape == a["x"].shape
    check_close(got, torch.stack(outs, dim=1), torch.float32, "out")
    check_close(a["state"], s_steps, torch.float32, "state")
    check_close(inter[:, -1], a["state"], torch.float32, "last intermediate state")
    assert not inter.isnan().any()


@pytest.mark.gpu
def test_dst_slots_and_stream():
    a = make_inputs(True, torch.float16, torch.float16, batch=3, slots=8, seed=7)
    src = torch.tensor([0, 1, 2], dtype=torch.int32, device="cuda")
    dst = torch.tensor([5, 6, 7], dtype=torch.int32, device="cuda")
    s_inplace = a["state"].clone()
    want = selective_state_update(s_inplace, a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"],
                                  a["z"], a["dt_bias"], True, state_batch_indices=src)
    before = a["state"].clone()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        got = selective_state_update(a["state"], a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"],
                                     a["z"], a["dt_bias"], True, state_batch_indices=src,
                                     dst_state_batch_indices=dst)
    stream.synchronize()
    assert torch.equal(got, want)
    assert torch.equal(a["state"][:5], before[:5])
    assert torch.equal(a["state"][5:8], s_inplace[:3])


@pytest.mark.gpu
def test_errors_on_gpu():
    a = make_inputs(True, torch.bfloat16, torch.float32, seed=9)
    with pytest.raises(ValueError, match=r"^A must be float32"):
        selective_state_update(a["state"], a["x"], a["dt"], a["A"].half(), a["B"], a["C"])
    with pytest.raises(ValueError, match=r"^dt must be bfloat16 like x"):
        selective_state_update(a["state"], a["x"], a["dt"].float(), a["A"], a["B"], a["C"])
    with pytest.raises(ValueError, match=r"^state must be contiguous in its last"):
        selective_state_update(a["state"][..., ::2], a["x"], a["dt"], a["A"][..., ::2], a["B"][..., ::2],
                               a["C"][..., ::2])


# --------------------------------------------------------------------------------------------
# The native torch path (ssmkit._ssmkit_torch) against the DLPack path.
# --------------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_native_torch_path_is_used_when_built():
    from ssmkit import _decode

    pkg = os.path.dirname(ssmkit.__file__)
    built = any(f.startswith("_ssmkit_torch") for f in os.listdir(pkg))
    assert _decode.torch_fast_path() == built


@pytest.mark.gpu
@pytest.mark.parametrize("m2", [False, True])
@pytest.mark.parametrize("tokens", [False, True])
def test_native_torch_path_equals_dlpack_path(m2, tokens, monkeypatch):
    from ssmkit import _decode

    if not _decode.torch_fast_path():
        pytest.skip("ssmkit._ssmkit_torch not built")
    T = 3 if tokens else None
    a = make_inputs(m2, torch.bfloat16, torch.float32, batch=5, slots=9, T=T, seed=11)
    idx = torch.tensor([4, -1, 0, 8, 2], dtype=torch.int32, device="cuda")
    runs = []
    for native in (True, False):
        if not native:
            monkeypatch.setattr(_decode, "_torch_ext", None)
        state = a["state"].clone()
        inter = None
        if tokens:
            inter = torch.full((5, T) + tuple(state.shape[1:]), float("nan"), device="cuda")
        out = selective_state_update(state, a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"], a["z"],
                                     a["dt_bias"], True, idx, intermediate_states=inter)
        torch.cuda.synchronize()
        runs.append((out, state, inter))
    (o1, s1, i1), (o2, s2, i2) = runs
    assert torch.equal(o1, o2) and torch.equal(s1, s2)
    if tokens:
        assert torch.equal(i1.nan_to_num(7.0), i2.nan_to_num(7.0))
    # int64 indices are not taken natively: the general path converts them, same result.
    state = a["state"].clone()
    monkeypatch.setattr(_decode, "_torch_ext", _decode._torch_ext)
    out = selective_state_update(state, a["x"], a["dt"], a["A"], a["B"], a["C"], a["D"], a["z"],
                                 a["dt_bias"], True, idx.long(), intermediate_states=None if not tokens else
                                 torch.empty_like(i1))
    torch.cuda.synchronize()
    assert torch.equal(out, o1) and torch.equal(state, s1)


@pytest.mark.gpu
def test_native_torch_path_errors_name_the_argument():
    from ssmkit import _decode

    if not _decode.torch_fast_path():
        pytest.skip("ssmkit._ssmkit_torch not built")
    from ssmkit import _ssmkit_torch

    a = make_inputs(True, torch.bfloat16, torch.float32, seed=12)
    args = [a["state"], a["x"], a["dt"], a["A"].half(), a["B"], a["C"], None, None, None, True, None, None,
            None, None, 0]
    with pytest.raises(ValueError, match=r"^A must be float32"):
        _ssmkit_torch.selective_state_update(*args)
    args[3] = a["A"]
    args[1] = a["x"].cpu()
    with pytest.raises(ValueError, match=r"must be a CUDA tensor"):
        _ssmkit_torch.selective_state_update(*args)
    # Through the wrapper, the same errors come with the same messages.
    with pytest.raises(ValueError, match=r"^x must be a CUDA tensor"):
        selective_state_update(a["state"], a["x"].cpu(), a["dt"], a["A"], a["B"], a["C"])
    with pytest.raises(ValueError, match=r"^B must have shape"):
        selective_state_update(a["state"], a["x"], a["dt"], a["A"], a["B"][:, :1, :8], a["C"])
