# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the Python bindings.

Tests without the ``gpu`` marker need only numpy (and use torch on the CPU when it is
importable); ``gpu`` tests need PyTorch with a CUDA device and skip themselves otherwise.
"""

import ctypes
import gc
import inspect
import re
import sys

import numpy as np
import pytest

import ssmkit
from ssmkit import _ssmkit, selective_scan_fn

try:
    import torch
except ImportError:  # CPU-only environments test without torch
    torch = None


# --------------------------------------------------------------------------------------------
# CPU tests: no GPU needed.
# --------------------------------------------------------------------------------------------

def test_import_and_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", ssmkit.__version__)
    assert ssmkit.__version__ == (
        f"{_ssmkit.VERSION_MAJOR}.{_ssmkit.VERSION_MINOR}.{_ssmkit.VERSION_PATCH}")
    n = ssmkit.cuda_device_count()
    assert isinstance(n, int) and n >= 0
    assert _ssmkit.MAX_DSTATE == 256


def test_signature_matches_mamba():
    params = list(inspect.signature(selective_scan_fn).parameters.values())
    names = [p.name for p in params]
    assert names == ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus",
                     "return_last_state", "initial_state", "stream", "conv_weight", "conv_bias",
                     "conv_activation", "conv_initial_states", "return_conv_final_states",
                     "return_conv_out"]
    kinds = {p.name: p.kind for p in params}
    assert kinds["initial_state"] == inspect.Parameter.KEYWORD_ONLY
    assert kinds["stream"] == inspect.Parameter.KEYWORD_ONLY
    assert selective_scan_fn.__doc__ and "delta_softplus" in selective_scan_fn.__doc__


def np_inputs(batch=2, dim=8, seqlen=16, dstate=4, groups=1, dtype=np.float32):
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(dtype)
    return dict(
        u=f(batch, dim, seqlen), delta=f(batch, dim, seqlen),
        A=-np.ones((dim, dstate), np.float32),
        B=f(batch, groups, dstate, seqlen), C=f(batch, groups, dstate, seqlen),
        D=np.ones(dim, np.float32), z=f(batch, dim, seqlen),
        delta_bias=np.zeros(dim, np.float32),
        h0=np.zeros((batch, dim, dstate), np.float32),
        out=np.empty((batch, dim, seqlen), dtype),
        last_state=np.empty((batch, dim, dstate), np.float32),
    )


def test_numpy_rejected_naming_u():
    a = np_inputs()
    with pytest.raises(ValueError, match=r"^u must be a CUDA tensor \(torch or cupy\); got numpy\.ndarray"):
        selective_scan_fn(a["u"], a["delta"], a["A"], a["B"], a["C"], a["D"], a["z"],
                          a["delta_bias"], True, True)


@pytest.mark.parametrize("arg, value, pattern", [
    ("u", np.ones((2, 8)), r"^u must be 3-D"),
    ("delta", np.ones((2, 8, 16, 1)), r"^delta must be 3-D"),
    ("A", np.ones(8, np.float32), r"^A must be 2-D"),
    ("B", np.ones((2, 1, 4, 16, 1), np.float32), r"^B must be 2-D .* or 4-D"),
    ("C", np.ones(4, np.float32), r"^C must be 2-D"),
    ("C", None, r"^C must be a tensor"),
    ("D", np.ones((8, 1), np.float32), r"^D must be 1-D"),
    ("z", np.ones((2, 8), np.float32), r"^z must be 3-D"),
    ("delta_bias", np.ones((1, 8), np.float32), r"^delta_bias must be 1-D"),
    ("initial_state", np.ones((8, 4), np.float32), r"^initial_state must be 3-D"),
    ("B", [[1.0]], r"^B must be a tensor"),
    ("delta_softplus", "yes", r"^delta_softplus must be a bool"),
    ("return_last_state", 1.5, r"^return_last_state must be a bool"),
    ("stream", -1, r"^stream must be"),
    ("stream", "0", r"^stream must be"),
])
def test_python_level_argument_errors(arg, value, pattern):
    a = np_inputs()
    kw = dict(u=a["u"], delta=a["delta"], A=a["A"], B=a["B"], C=a["C"], D=a["D"], z=a["z"],
              delta_bias=a["delta_bias"])
    kw[arg] = value
    with pytest.raises(ValueError, match=pattern):
        selective_scan_fn(**kw)


def call_low_level(a, softplus=False, stream=0):
    caps = {k: (v.__dlpack__() if isinstance(v, np.ndarray) else v) for k, v in a.items()}
    _ssmkit.selective_scan_fwd(caps["u"], caps["delta"], caps["A"], caps["B"], caps["C"],
                               caps["D"], caps["z"], caps["delta_bias"], softplus, caps["h0"],
                               caps["out"], caps["last_state"], stream)


def test_low_level_rejects_cpu_tensors():
    a = np_inputs()
    with pytest.raises(ValueError, match=r"^u must be a CUDA tensor, got a tensor on cpu"):
        call_low_level(a)
    # Optional arguments may be None; the device error is the same.
    for k in ("D", "z", "delta_bias", "h0", "last_state"):
        a[k] = None
    with pytest.raises(ValueError, match=r"^u must be a CUDA tensor, got a tensor on cpu"):
        call_low_level(a)


def _noncontig_last(x):
    big = np.repeat(x, 2, axis=-1)
    return big[..., ::2]


@pytest.mark.parametrize("arg, make, pattern", [
    ("u", lambda a: a["u"].astype(np.float64), r"^u has unsupported dtype float64"),
    ("u", lambda a: a["u"].astype(np.int32), r"^u has unsupported dtype int32"),
    ("u", lambda a: _noncontig_last(a["u"]), r"^u must be contiguous in its last dimension"),
    ("delta", lambda a: a["delta"][:, :, :8], r"^delta must have shape \(2, 8, 16\) like u"),
    ("delta", lambda a: a["delta"].astype(np.float16), r"^delta must be float32 like u, got float16"),
    ("delta", lambda a: a["delta"][0], r"^delta must be 3-D"),
    ("A", lambda a: a["A"][:4], r"^A must have shape \(dim, dstate\)"),
    ("A", lambda a: a["A"].astype(np.float16), r"^A must be float32"),
    ("A", lambda a: a["A"][None], r"^A must be 2-D"),
    ("A", lambda a: a["A"].astype(np.float64), r"^A must be float32, got float64"),
    ("D", lambda a: a["D"].astype(np.int64), r"^D must be float32, got int64"),
    ("delta", lambda a: a["delta"].astype(np.float64), r"^delta must be float32 like u, got float64"),
    ("B", lambda a: a["B"][:, 0], r"^B must be 2-D \(dim, dstate\) or 4-D"),
    ("B", lambda a: a["B"][:1], r"^B must have shape \(2, n_groups, 4, 16\)"),
    ("B", lambda a: a["B"].astype(np.float16), r"^B must be float32 like u when variable"),
    ("B", lambda a: np.ones((8, 4), np.float16), r"^B must be float32 when constant"),
    ("B", lambda a: np.ones((8, 5), np.float32), r"^B must have shape \(8, 4\)"),
    ("B", lambda a: np.ones((2, 3, 4, 16), np.float32), r"^B: n_groups .* must be >= 1 and divide dim = 8, got 3"),
    ("B", lambda a: _noncontig_last(a["B"]), r"^B must be contiguous in its last dimension"),
    ("C", lambda a: np.ones((2, 2, 4, 16), np.float32), r"^C must have shape \(2, 1, 4, 16\)"),
    ("C", lambda a: a["C"][..., :15], r"^C must have shape"),
    ("D", lambda a: a["D"][:4], r"^D must have shape \(8,\)"),
    ("D", lambda a: a["D"].astype(np.float16), r"^D must be float32"),
    ("D", lambda a: np.ones(16, np.float32)[::2], r"^D must be contiguous"),
    ("delta_bias", lambda a: np.ones((8, 1), np.float32), r"^delta_bias must be 1-D"),
    ("z", lambda a: a["z"][:1], r"^z must have shape \(2, 8, 16\) like u"),
    ("z", lambda a: a["z"].astype(np.float16), r"^z must be float32 like u"),
    ("h0", lambda a: a["h0"][:, :, :2], r"^h0 must have shape \(2, 8, 4\)"),
    ("h0", lambda a: _noncontig_last(a["h0"]), r"^h0 must be contiguous in its last \(dstate\)"),
    ("h0", lambda a: a["h0"].astype(np.float16), r"^h0 must be float32"),
    ("out", lambda a: a["out"].astype(np.float16), r"^out must be float32 like u"),
    ("out", lambda a: a["out"][:, :4], r"^out must have shape"),
    ("last_state", lambda a: a["last_state"][:1], r"^last_state must have shape"),
    ("u", lambda a: 5, r"^u must be a DLPack capsule or an object with __dlpack__"),
])
def test_low_level_argument_errors(arg, make, pattern):
    a = np_inputs()
    a[arg] = make(a)
    with pytest.raises(ValueError, match=pattern):
        call_low_level(a)


def test_low_level_accepts_objects_with_dlpack():
    a = np_inputs()
    caps = {k: v for k, v in a.items()}  # arrays, not capsules
    with pytest.raises(ValueError, match=r"^u must be a CUDA tensor"):
        _ssmkit.selective_scan_fwd(caps["u"], caps["delta"], caps["A"], caps["B"], caps["C"],
                                   None, None, None, False, None, caps["out"], None, None)


def test_low_level_bad_stream():
    a = np_inputs()
    with pytest.raises(ValueError, match=r"^stream must be"):
        call_low_level(a, stream="default")
    with pytest.raises(ValueError, match=r"^stream must be"):
        call_low_level(a, stream=-5)


_capsule_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_is_valid.restype = ctypes.c_int
_capsule_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]


def test_capsules_are_consumed_and_released():
    a = np_inputs()
    arrays = dict(a)
    refs_before = {k: sys.getrefcount(v) for k, v in arrays.items()}
    caps = {k: v.__dlpack__() for k, v in arrays.items()}
    with pytest.raises(ValueError, match=r"^u must be a CUDA tensor"):
        call_low_level(caps)
    for k, c in caps.items():
        assert _capsule_is_valid(c, b"used_dltensor"), k
    # A consumed capsule cannot be used again.
    with pytest.raises(ValueError, match=r"^u: the DLPack capsule has already been consumed"):
        call_low_level(caps)
    del caps
    gc.collect()
    # Every managed tensor was released: the arrays are referenced as before.
    for k, v in arrays.items():
        assert sys.getrefcount(v) == refs_before[k], k


def test_capsules_released_on_early_error():
    a = np_inputs()
    u = a["u"]
    before = sys.getrefcount(u)
    cap = u.__dlpack__()
    with pytest.raises(ValueError, match=r"^delta"):
        a2 = dict(a)
        a2["u"] = cap
        a2["delta"] = 3
        call_low_level(a2)
    del cap, a2
    gc.collect()
    assert sys.getrefcount(u) == before


def test_reference_zero_dt_is_skip_connection():
    if torch is None:
        pytest.skip("torch is not importable")
    from ssmkit.reference import selective_scan_ref

    g = torch.Generator().manual_seed(0)
    batch, dim, seqlen, dstate = 2, 6, 10, 4
    u = torch.randn(batch, dim, seqlen, generator=g)
    delta = torch.zeros(batch, dim, seqlen)
    A = -(0.5 + torch.rand(dim, dstate, generator=g))
    B = torch.randn(batch, 2, dstate, seqlen, generator=g)
    C = torch.randn(batch, 2, dstate, seqlen, generator=g)
    D = torch.randn(dim, generator=g)
    h0 = torch.randn(batch, dim, dstate, generator=g)
    out, last = selective_scan_ref(u, delta, A, B, C, D, return_last_state=True,
                                   initial_state=h0)
    assert out.dtype == torch.float32 and last.dtype == torch.float32
    # dt = 0: the state never changes, so y = C . h0 + D * u.
    expect = (C.repeat_interleave(dim // 2, dim=1) * h0[..., None]).sum(2) + D[None, :, None] * u
    torch.testing.assert_close(out, expect, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last, h0)
    out0 = selective_scan_ref(u, delta, A, B[:, 0], C[:, 0], D)
    torch.testing.assert_close(out0, D[None, :, None] * u)


def test_reference_single_step_by_hand():
    if torch is None:
        pytest.skip("torch is not importable")
    from ssmkit.reference import selective_scan_ref

    u = torch.tensor([[[2.0]]], dtype=torch.float64)
    delta = torch.tensor([[[0.3]]], dtype=torch.float64)
    A = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)
    B = torch.tensor([[0.5, 1.5]], dtype=torch.float64)
    C = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    z = torch.tensor([[[0.7]]], dtype=torch.float64)
    h0 = torch.tensor([[[1.0, 2.0]]], dtype=torch.float64)
    bias = torch.tensor([0.1], dtype=torch.float64)
    out, last = selective_scan_ref(u, delta, A, B, C, None, z, bias, True, True, h0)
    import math
    dt = math.log1p(math.exp(0.4))
    h = [math.exp(dt * -1.0) * 1.0 + dt * 0.5 * 2.0, math.exp(dt * -2.0) * 2.0 + dt * 1.5 * 2.0]
    y = (h[0] - h[1]) * 0.7 / (1 + math.exp(-0.7))
    assert out.item() == pytest.approx(y, rel=1e-12)
    assert last.flatten().tolist() == pytest.approx(h, rel=1e-12)


# --------------------------------------------------------------------------------------------
# GPU tests: PyTorch with CUDA; compared with the float64 reference.
# --------------------------------------------------------------------------------------------

TOL = {"float32": 1e-4, "float16": 5e-3, "bfloat16": 3e-2}
DTYPES = ["float32", "float16", "bfloat16"]

BASE = dict(batch=2, dim=16, seqlen=128, dstate=16, groups=1, B_var=True, C_var=True,
            B_3d=False, z=True, D=True, bias=True, softplus=True, h0=False, last=False)

VARIANTS = {
    "base": {},
    "N1": dict(dstate=1),
    "N64": dict(dstate=64),
    "N256": dict(dstate=256),
    "N5": dict(dstate=5),
    "N100": dict(dstate=100),
    "L1": dict(seqlen=1),
    "L7": dict(seqlen=7),
    "L300": dict(seqlen=300),
    "L2048": dict(seqlen=2048),
    "B_const": dict(B_var=False),
    "C_const": dict(C_var=False),
    "BC_const": dict(B_var=False, C_var=False),
    "BC_3d": dict(B_3d=True),
    "G2": dict(groups=2),
    "G4": dict(groups=4),
    "G4_C_const": dict(groups=4, C_var=False),
    "no_z": dict(z=False),
    "no_D": dict(D=False),
    "no_bias": dict(bias=False),
    "no_softplus": dict(softplus=False),
    "bare": dict(z=False, D=False, bias=False, softplus=False),
    "h0": dict(h0=True),
    "last": dict(last=True),
    "h0_last": dict(h0=True, last=True),
    "h0_last_N64_L300": dict(h0=True, last=True, dstate=64, seqlen=300),
    "batch1_dim3": dict(batch=1, dim=3),
    "dim48_G3": dict(dim=48, groups=3),
}


def _tdtype(name):
    return getattr(torch, name)


def make_inputs(cfg, dtype, device="cuda", seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    b, d, L, n, G = cfg["batch"], cfg["dim"], cfg["seqlen"], cfg["dstate"], cfg["groups"]
    dt = _tdtype(dtype)

    def rn(*s):
        return torch.randn(*s, generator=g)

    def ru(*s):
        return torch.rand(*s, generator=g)

    x = {}
    x["u"] = rn(b, d, L).to(device, dt)
    x["delta"] = ((rn(b, d, L) - 0.5) if cfg["softplus"] else 0.5 * ru(b, d, L)).to(device, dt)
    x["A"] = (-(0.5 + ru(d, n))).to(device)
    for name, var in (("B", cfg["B_var"]), ("C", cfg["C_var"])):
        if var:
            m = rn(b, G, n, L).to(device, dt)
            if cfg.get("B_3d") and G == 1:
                m = m[:, 0]
        else:
            m = rn(d, n).to(device)
        x[name] = m
    x["D"] = rn(d).to(device) if cfg["D"] else None
    x["z"] = rn(b, d, L).to(device, dt) if cfg["z"] else None
    x["delta_bias"] = (0.1 * rn(d)).to(device) if cfg["bias"] else None
    x["initial_state"] = rn(b, d, n).to(device) if cfg["h0"] else None
    return x


def _d(t):
    return None if t is None else t.double()


def run_ref(x, softplus, last):
    from ssmkit.reference import selective_scan_ref

    return selective_scan_ref(_d(x["u"]), _d(x["delta"]), _d(x["A"]), _d(x["B"]), _d(x["C"]),
                              _d(x["D"]), _d(x["z"]), _d(x["delta_bias"]), softplus, last,
                              initial_state=_d(x["initial_state"]))


def run_ssmkit(x, softplus, last, **kw):
    return selective_scan_fn(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"],
                             x["delta_bias"], softplus, last,
                             initial_state=x["initial_state"], **kw)


def assert_close_scaled(got, ref, tol, what="out"):
    got = got.double()
    scale = max(ref.abs().max().item(), 1e-6)
    err = (got - ref).abs()
    bound = tol * scale + tol * ref.abs()
    bad = err > bound
    assert torch.isfinite(got).all(), f"{what}: non-finite values"
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {bad.numel()} elements off; max error "
        f"{err.max().item():.3e}, scale {scale:.3e}, tol {tol}")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_against_reference(variant, dtype):
    cfg = dict(BASE, **VARIANTS[variant])
    x = make_inputs(cfg, dtype, seed=list(VARIANTS).index(variant))
    res = run_ssmkit(x, cfg["softplus"], cfg["last"])
    ref = run_ref(x, cfg["softplus"], cfg["last"])
    if cfg["last"]:
        out, last = res
        ref_out, ref_last = ref
        assert last.dtype == torch.float32
        assert last.shape == (cfg["batch"], cfg["dim"], cfg["dstate"])
        assert_close_scaled(last, ref_last, 1e-3 if dtype != "float32" else 1e-4, "last_state")
    else:
        assert isinstance(res, torch.Tensor)
        out, ref_out = res, ref
    assert out.dtype == x["u"].dtype and out.shape == x["u"].shape
    assert out.device == x["u"].device
    assert_close_scaled(out, ref_out, TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("wdtype", ["float32", "same"])
def test_fused_conv_equals_conv_then_scan(dtype, width, wdtype):
    from ssmkit.reference import causal_conv1d_ref

    cfg = dict(BASE, seqlen=300, h0=True)
    x = make_inputs(cfg, dtype, seed=11 + width)
    g = torch.Generator().manual_seed(5 + width)
    b, d = cfg["batch"], cfg["dim"]
    wt = torch.float32 if wdtype == "float32" else x["u"].dtype
    w = (0.5 * torch.randn(d, width, generator=g)).to("cuda", wt)
    cb = (0.1 * torch.randn(d, generator=g)).to("cuda", wt)
    init = torch.randn(b, d, width - 1, generator=g).to("cuda", x["u"].dtype)
    out, last, fin, cout = run_ssmkit(x, True, True, conv_weight=w, conv_bias=cb,
                                      conv_initial_states=init, return_conv_final_states=True,
                                      return_conv_out=True)
    ref_u, ref_fin = causal_conv1d_ref(_d(x["u"]), _d(w), _d(cb), initial_states=_d(init),
                                       return_final_states=True, activation="silu")
    y = dict(x, u=ref_u)
    ref_out, ref_last = run_ref(y, True, True)
    assert fin.shape == (b, d, width - 1) and fin.dtype == x["u"].dtype
    assert torch.equal(fin.double(), ref_fin.double())
    assert_close_scaled(cout, ref_u, TOL[dtype], "conv_out")
    assert_close_scaled(out, ref_out, TOL[dtype])
    assert_close_scaled(last, ref_last, 1e-3 if dtype != "float32" else 1e-4, "last_state")
    # Continuing from the returned conv state equals one call over the whole sequence.
    full = run_ssmkit(x, True, False, conv_weight=w, conv_bias=cb, conv_initial_states=init)
    y1 = {k: (v[..., :120] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
    y2 = {k: (v[..., 120:] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
    o1, s1, f1 = run_ssmkit(y1, True, True, conv_weight=w, conv_bias=cb, conv_initial_states=init,
                            return_conv_final_states=True)
    y2["initial_state"] = s1
    o2 = run_ssmkit(y2, True, False, conv_weight=w, conv_bias=cb, conv_initial_states=f1)
    tol = TOL[dtype] if dtype != "float32" else 1e-5
    assert_close_scaled(torch.cat([o1, o2], dim=-1), full.double(), tol)


def test_fused_conv_argument_errors():
    a = np_inputs()
    kw = dict(u=a["u"], delta=a["delta"], A=a["A"], B=a["B"], C=a["C"])
    with pytest.raises(ValueError, match=r"^conv_activation must be"):
        selective_scan_fn(**kw, conv_weight=np.ones((8, 4), np.float32), conv_activation="relu")
    with pytest.raises(ValueError, match=r"need conv_weight$"):
        selective_scan_fn(**kw, return_conv_out=True)
    with pytest.raises(ValueError, match=r"^conv_weight must be 2-D"):
        selective_scan_fn(**kw, conv_weight=np.ones(8, np.float32))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", [100, 64, 1])
def test_state_carry(dtype, split):
    cfg = dict(BASE, seqlen=256, h0=True)
    x = make_inputs(cfg, dtype, seed=7)
    full, full_last = run_ssmkit(x, True, True)

    def part(sl, h0):
        y = dict(x)
        for k in ("u", "delta", "z"):
            y[k] = x[k][..., sl]
        for k in ("B", "C"):
            y[k] = x[k][..., sl]
        y["initial_state"] = h0
        return run_ssmkit(y, True, True)

    o1, s1 = part(slice(0, split), x["initial_state"])
    o2, s2 = part(slice(split, None), s1)
    tol = TOL[dtype] if dtype != "float32" else 1e-5
    assert_close_scaled(torch.cat([o1, o2], dim=-1), full.double(), tol)
    assert_close_scaled(s2, full_last.double(), 1e-4, "last_state")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs(dtype):
    cfg = dict(BASE, seqlen=96, h0=True, last=True)
    x = make_inputs(cfg, dtype, seed=3)
    b, d, L, n = cfg["batch"], cfg["dim"], cfg["seqlen"], cfg["dstate"]
    y = dict(x)
    # Channel-strided views into bigger tensors.
    big_u = torch.zeros(b, 2 * d + 3, L, device="cuda", dtype=x["u"].dtype)
    big_u[:, 3::2] = x["u"]
    y["u"] = big_u[:, 3::2]
    big_z = torch.zeros(b + 1, d, L + 5, device="cuda", dtype=x["u"].dtype)
    big_z[1:, :, 5:] = x["z"]
    y["z"] = big_z[1:, :, 5:]
    # Last dimension not contiguous: the wrapper copies it, like mamba-ssm.
    y["delta"] = x["delta"].transpose(1, 2).contiguous().transpose(1, 2)
    assert y["delta"].stride(-1) != 1
    bigB = torch.zeros(b, 1, 2 * n, L, device="cuda", dtype=x["u"].dtype)
    bigB[:, :, ::2] = x["B"]
    y["B"] = bigB[:, :, ::2]
    y["A"] = x["A"].t().contiguous().t()  # (dim, dstate) with dstate stride != 1
    bigh = torch.zeros(b, 2 * d, n, device="cuda")
    bigh[:, ::2] = x["initial_state"]
    y["initial_state"] = bigh[:, ::2]
    out, last = run_ssmkit(y, True, True)
    ref_out, ref_last = run_ref(x, True, True)
    assert_close_scaled(out, ref_out, TOL[dtype])
    assert_close_scaled(last, ref_last, 1e-3, "last_state")


@pytest.mark.gpu
def test_requires_grad_inputs():
    cfg = dict(BASE)
    x = make_inputs(cfg, "float32", seed=4)
    x["u"].requires_grad_(True)
    x["A"].requires_grad_(True)
    out = run_ssmkit(x, True, False)
    assert not out.requires_grad
    assert_close_scaled(out, run_ref(x, True, False).detach(), TOL["float32"])


@pytest.mark.gpu
def test_non_default_stream():
    cfg = dict(BASE, seqlen=300, last=True)
    x = make_inputs(cfg, "float32", seed=5)
    ref_out, ref_last = run_ref(x, True, True)
    s = torch.cuda.Stream()
    torch.cuda.synchronize()
    with torch.cuda.stream(s):
        out, last = run_ssmkit(x, True, True)
    s.synchronize()
    assert_close_scaled(out, ref_out, TOL["float32"])
    assert_close_scaled(last, ref_last, 1e-4, "last_state")
    # An explicit stream argument outside the stream context.
    s2 = torch.cuda.Stream()
    s2.wait_stream(torch.cuda.current_stream())
    out2 = run_ssmkit(x, True, False, stream=s2.cuda_stream)
    s2.synchronize()
    assert_close_scaled(out2, ref_out, TOL["float32"])


@pytest.mark.gpu
def test_errors_on_gpu():
    cfg = dict(BASE, h0=True)
    x = make_inputs(cfg, "float32", seed=6)

    def expect(pattern, **changes):
        y = dict(x)
        y.update(changes)
        with pytest.raises(ValueError, match=pattern):
            run_ssmkit(y, True, False)

    expect(r"^delta must be float32 like u, got float16", delta=x["delta"].half())
    expect(r"^delta must have shape", delta=x["delta"][:, :, :5])
    expect(r"^A must have shape", A=x["A"][:8])
    expect(r"^A must be float32, got float64", A=x["A"].double())
    expect(r"^B must be float32 like u when variable", B=x["B"].half())
    expect(r"^B must have shape", B=x["B"][..., :10])
    expect(r"^C must be float32 when constant", C=torch.ones(16, 16, device="cuda").half())
    expect(r"^D must have shape \(16,\)", D=x["D"][:3])
    expect(r"^D must be float32", D=x["D"].half())
    expect(r"^z must have shape", z=x["z"][:1])
    expect(r"^delta_bias must be float32", delta_bias=x["delta_bias"].double())
    expect(r"^initial_state must have shape", initial_state=x["initial_state"][:, :, :3])
    expect(r"^u has unsupported dtype float64", u=x["u"].double(), delta=x["delta"].double(),
           z=x["z"].double(), B=x["B"].double(), C=x["C"].double())
    expect(r"^B: n_groups", B=torch.ones(2, 3, 16, 128, device="cuda"),
           C=torch.ones(2, 3, 16, 128, device="cuda"))
    expect(r"dstate must be in \[1, 256\]", A=-torch.ones(16, 300, device="cuda"),
           B=torch.ones(2, 1, 300, 128, device="cuda"), C=torch.ones(2, 1, 300, 128, device="cuda"),
           initial_state=None)
    # Tensors on the CPU.
    cpu = {k: (v.cpu() if v is not None else None) for k, v in x.items()}
    with pytest.raises(ValueError, match=r"^u must be a CUDA tensor, got a tensor on cpu"):
        run_ssmkit(cpu, True, False)
    expect(r"^B must be a CUDA tensor, got a tensor on cpu", B=x["B"].cpu())
    expect(r"^initial_state must be a CUDA tensor, got a tensor on cpu",
           initial_state=x["initial_state"].cpu())
    expect(r"^D must be a torch tensor like u, got numpy\.ndarray", D=x["D"].cpu().numpy())


@pytest.mark.gpu
def test_other_device():
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    cfg = dict(BASE, last=True)
    x = make_inputs(cfg, "float32", device="cuda:1", seed=8)
    with torch.cuda.device(0):
        out, last = run_ssmkit(x, True, True)
        assert torch.cuda.current_device() == 0
    assert out.device == torch.device("cuda:1")
    ref_out, ref_last = run_ref(x, True, True)
    assert_close_scaled(out, ref_out, TOL["float32"])
    y = dict(x)
    y["A"] = x["A"].to("cuda:0")
    with pytest.raises(ValueError, match=r"^A is on cuda:0 but u is on cuda:1"):
        run_ssmkit(y, True, False)


@pytest.mark.gpu
def test_cupy_arrays():
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # pragma: no cover - environment dependent
        pytest.skip(f"cupy cannot use the GPU: {e}")
    cfg = dict(BASE, last=True, h0=True)
    x = make_inputs(cfg, "float32", seed=9)
    torch.cuda.synchronize()
    cx = {k: (None if v is None else cupy.from_dlpack(v)) for k, v in x.items()}
    out, last = run_ssmkit(cx, True, True)
    assert isinstance(out, cupy.ndarray) and out.dtype == cupy.float32
    cupy.cuda.get_current_stream().synchronize()
    ref_out, ref_last = run_ref(x, True, True)
    assert_close_scaled(torch.from_dlpack(out), ref_out, TOL["float32"])
    assert_close_scaled(torch.from_dlpack(last), ref_last, 1e-4, "last_state")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_split_sequence_workspace(dtype):
    # Few channels and a long sequence: the launch cuts the sequence into ranges and the
    # package passes a workspace from the caller's framework.
    cfg = dict(BASE, batch=1, dim=8, seqlen=4000, h0=True)
    nbytes = _ssmkit.selective_scan_workspace_bytes(1, 8, 4000, cfg["dstate"], cfg["groups"],
                                                   dtype, torch.cuda.current_device())
    assert nbytes > 0
    x = make_inputs(cfg, dtype, seed=11)
    out, last = run_ssmkit(x, True, True)
    ref, ref_last = run_ref(x, True, True)
    assert_close_scaled(out, ref, TOL[dtype])
    assert_close_scaled(last, ref_last, 1e-4, "last_state")
