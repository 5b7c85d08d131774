# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Tests of ssmkit.causal_conv1d_fn / causal_conv1d_update and the low-level bindings.

Argument tests run without a GPU and without torch (NumPy arrays through DLPack); ``gpu``
tests need PyTorch with a CUDA device and skip themselves otherwise.
"""

import inspect

import numpy as np
import pytest

import ssmkit
from ssmkit import _ssmkit, causal_conv1d_fn, causal_conv1d_update

try:
    import torch
except ImportError:  # argument tests still run
    torch = None


def test_exported():
    assert ssmkit.causal_conv1d_fn is causal_conv1d_fn
    assert ssmkit.causal_conv1d_update is causal_conv1d_update
    assert _ssmkit.MAX_CONV_WIDTH == 8


def test_signatures_match_causal_conv1d():
    fn = list(inspect.signature(causal_conv1d_fn).parameters)
    assert fn[:8] == ["x", "weight", "bias", "seq_idx", "initial_states", "return_final_states",
                      "final_states_out", "activation"]
    upd = list(inspect.signature(causal_conv1d_update).parameters)
    assert upd[:7] == ["x", "conv_state", "weight", "bias", "activation", "cache_seqlens",
                       "conv_state_indices"]


def test_numpy_rejected_naming_x():
    x = np.ones((2, 4, 8), np.float32)
    w = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"^x must be a CUDA tensor"):
        causal_conv1d_fn(x, w)
    with pytest.raises(ValueError, match=r"^x must be a CUDA tensor"):
        causal_conv1d_update(x[:, :, 0], np.ones((2, 4, 2), np.float32), w)


@pytest.mark.parametrize("call, pattern", [
    (lambda: causal_conv1d_fn(np.ones((2, 4)), np.ones((4, 3))), r"^x must be 3-D"),
    (lambda: causal_conv1d_fn(np.ones((2, 4, 8)), np.ones(4)), r"^weight must be 2-D"),
    (lambda: causal_conv1d_fn(np.ones((2, 4, 8)), np.ones((4, 3)), activation="gelu"),
     r"^activation must be None, 'silu' or 'swish'"),
    (lambda: causal_conv1d_fn(np.ones((2, 4, 8)), np.ones((4, 3)), seq_idx=np.ones((2, 8)),
                              initial_states=np.ones((2, 4, 2))),
     r"^initial_states cannot be combined with seq_idx"),
    (lambda: causal_conv1d_fn(np.ones((2, 4, 8)), np.ones((4, 3)), final_states_out=np.ones((2, 4, 2))),
     r"^final_states_out is given but return_final_states is False"),
    (lambda: causal_conv1d_fn(np.ones((2, 4, 8)), np.ones((4, 3)), stream=-1), r"^stream must be"),
    (lambda: causal_conv1d_update(np.ones(4), np.ones((2, 4, 2)), np.ones((4, 3))), r"^x must be 2-D"),
    (lambda: causal_conv1d_update(np.ones((2, 4)), np.ones((4, 2)), np.ones((4, 3))), r"^conv_state must be 3-D"),
    (lambda: causal_conv1d_update(np.ones((2, 4)), np.ones((2, 4, 2)), np.ones((4, 3)),
                                  cache_seqlens=np.ones((2, 1))), r"^cache_seqlens must be 1-D"),
])
def test_python_level_argument_errors(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def fwd_inputs():
    return dict(
        x=np.ones((2, 8, 16), np.float32), weight=np.ones((8, 4), np.float32),
        bias=np.ones(8, np.float32), seq_idx=None, initial_states=np.ones((2, 8, 3), np.float32),
        final_states=np.ones((2, 8, 3), np.float32), out=np.ones((2, 8, 16), np.float32))


def call_fwd(a, silu=True, stream=0):
    _ssmkit.causal_conv1d_fwd(a["x"], a["weight"], a["bias"], a["seq_idx"], a["initial_states"],
                              a["final_states"], a["out"], silu, stream)


def upd_inputs():
    return dict(
        x=np.ones((2, 8, 1), np.float32), conv_state=np.ones((3, 8, 3), np.float32),
        weight=np.ones((8, 4), np.float32), bias=None, cache_seqlens=None,
        conv_state_indices=np.zeros(2, np.int32), out=np.ones((2, 8, 1), np.float32))


def call_upd(a, silu=False, stream=0):
    _ssmkit.causal_conv1d_update(a["x"], a["conv_state"], a["weight"], a["bias"], silu,
                                 a["cache_seqlens"], a["conv_state_indices"], a["out"], stream)


def test_low_level_rejects_cpu_tensors():
    with pytest.raises(ValueError, match=r"^x must be a CUDA tensor, got a tensor on cpu"):
        call_fwd(fwd_inputs())
    with pytest.raises(ValueError, match=r"^x must be a CUDA tensor, got a tensor on cpu"):
        call_upd(upd_inputs())


@pytest.mark.parametrize("arg, make, pattern", [
    ("x", lambda a: a["x"].astype(np.float64), r"^x has unsupported dtype float64"),
    ("x", lambda a: a["x"][0], r"^x must be 3-D"),
    ("x", lambda a: np.ones((2, 8, 32), np.float32)[:, :, ::2],
     r"^x must be contiguous along its channels"),
    ("weight", lambda a: a["weight"].astype(np.float16), r"^weight must be float32 \(like x\) or float32"),
    ("weight", lambda a: np.ones((8, 9), np.float32), r"^weight: width \(dimension 1\) must be in \[1, 8\]"),
    ("weight", lambda a: np.ones((4, 4), np.float32), r"^weight must have shape \(dim, width\) with dim = 8"),
    ("bias", lambda a: np.ones(4, np.float32), r"^bias must have shape \(8,\)"),
    ("bias", lambda a: np.ones(8, np.float16), r"^bias must be float32 like weight"),
    ("seq_idx", lambda a: np.ones((2, 16), np.int64), r"^seq_idx must be int32, got int64"),
    ("seq_idx", lambda a: np.ones((2, 8), np.int32), r"^seq_idx must have shape \(2, 16\)"),
    ("initial_states", lambda a: np.ones((2, 8, 2), np.float32), r"^initial_states must have shape \(2, 8, 3\)"),
    ("initial_states", lambda a: np.ones((2, 8, 3), np.float16), r"^initial_states must be float32 like x"),
    ("final_states", lambda a: np.ones((2, 8), np.float32), r"^final_states must be 3-D"),
    ("out", lambda a: np.ones((2, 8, 15), np.float32), r"^out must have shape \(2, 8, 16\) like x"),
    ("out", lambda a: np.ones((2, 8, 16), np.float16), r"^out must be float32 like x"),
    ("x", lambda a: 5, r"^x must be a DLPack capsule or an object with __dlpack__"),
])
def test_low_level_fwd_argument_errors(arg, make, pattern):
    a = fwd_inputs()
    a[arg] = make(a)
    with pytest.raises(ValueError, match=pattern):
        call_fwd(a)


@pytest.mark.parametrize("arg, make, pattern", [
    ("x", lambda a: a["x"][:, :, 0], r"^x must be 3-D"),
    ("conv_state", lambda a: np.ones((3, 8, 2), np.float32), r"^conv_state must have shape \(pool, 8, state_len >= width - 1 = 3\)"),
    ("conv_state", lambda a: np.ones((3, 8, 3), np.float16), r"^conv_state must be float32 like x"),
    ("cache_seqlens", lambda a: np.ones(2, np.int64), r"^cache_seqlens must be int32, got int64"),
    ("cache_seqlens", lambda a: np.ones(3, np.int32), r"^cache_seqlens must have shape \(2,\)"),
    ("conv_state_indices", lambda a: np.ones(2, np.float32), r"^conv_state_indices must be int32, got float32"),
    ("conv_state_indices", lambda a: np.ones(5, np.int32), r"^conv_state_indices must have shape \(2,\)"),
    ("weight", lambda a: np.ones((8, 3, 1), np.float32), r"^weight must be 2-D"),
    ("out", lambda a: np.ones((2, 8, 2), np.float32), r"^out must have shape \(2, 8, 1\) like x"),
])
def test_low_level_update_argument_errors(arg, make, pattern):
    a = upd_inputs()
    a[arg] = make(a)
    with pytest.raises(ValueError, match=pattern):
        call_upd(a)


def test_low_level_update_pool_without_indices():
    a = upd_inputs()
    a["conv_state_indices"] = None
    a["conv_state"] = np.ones((1, 8, 3), np.float32)
    with pytest.raises(ValueError, match=r"^conv_state has 1 rows but the batch is 2"):
        call_upd(a)


def test_low_level_bad_stream():
    with pytest.raises(ValueError, match=r"^stream must be an int"):
        call_fwd(fwd_inputs(), stream="s")


# ---------------------------------------------------------------------------------------------
# GPU: against the PyTorch reference (ssmkit.reference), one factor at a time.

DTYPES = ["float32", "float16", "bfloat16"]
TOL = {"float32": 1e-4, "float16": 3e-3, "bfloat16": 2e-2}

FWD_BASE = dict(batch=2, dim=40, seqlen=300, width=4, bias=True, activation="silu",
                channel_last=False, init=False, final=False, seq_idx=False, weight_f32=False)
FWD_VARIANTS = {
    "base": {},
    "no_bias_no_act": dict(bias=False, activation=None),
    "channel_last": dict(channel_last=True),
    "channel_last_states": dict(channel_last=True, init=True, final=True),
    "states": dict(init=True, final=True),
    "short": dict(seqlen=2, init=True, final=True),
    "seq_idx": dict(seq_idx=True),
    "seq_idx_channel_last": dict(seq_idx=True, channel_last=True),
    "width1": dict(width=1),
    "width8": dict(width=8, init=True, final=True),
    "weight_f32": dict(weight_f32=True),
}


def _tdt(name):
    return getattr(torch, name)


def make_fwd(cfg, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    b, d, L, W = cfg["batch"], cfg["dim"], cfg["seqlen"], cfg["width"]
    dt = _tdt(dtype)
    if cfg["channel_last"]:
        x = torch.randn(b, L, d, generator=g).to("cuda", dt).transpose(1, 2)
    else:
        x = torch.randn(b, d, L, generator=g).to("cuda", dt)
    wdt = torch.float32 if cfg["weight_f32"] else dt
    w = (0.5 * torch.randn(d, W, generator=g)).to("cuda", wdt)
    bias = (0.3 * torch.randn(d, generator=g)).to("cuda", wdt) if cfg["bias"] else None
    init = torch.randn(b, d, W - 1, generator=g).to("cuda", dt) if cfg["init"] else None
    seq = None
    if cfg["seq_idx"]:
        brk = (torch.rand(b, L, generator=g) < 0.1).to(torch.int32)
        brk[:, 0] = 0
        seq = torch.cumsum(brk, dim=1).to(torch.int32).cuda()
    return x, w, bias, seq, init


def assert_close(got, ref, tol, what):
    got = got.double()
    ref = ref.double()
    scale = max(ref.abs().max().item(), 1e-6)
    err = (got - ref).abs()
    bad = err > tol * scale + tol * ref.abs()
    assert torch.isfinite(got).all(), f"{what}: non-finite values"
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {bad.numel()} off; max error "
                           f"{err.max().item():.3e}, scale {scale:.3e}")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(FWD_VARIANTS))
def test_fwd_against_reference(variant, dtype):
    from ssmkit.reference import causal_conv1d_ref

    cfg = dict(FWD_BASE, **FWD_VARIANTS[variant])
    if cfg["weight_f32"] and dtype == "float32":
        pytest.skip("same as base")
    x, w, bias, seq, init = make_fwd(cfg, dtype, seed=list(FWD_VARIANTS).index(variant))
    fin = cfg["final"]
    res = causal_conv1d_fn(x, w, bias, seq, init, fin, None, cfg["activation"])
    ref = causal_conv1d_ref(x.double(), w, bias, seq, None if init is None else init.double(), fin,
                            cfg["activation"])
    if fin:
        out, f = res
        ref_out, ref_f = ref
        assert f.shape == (cfg["batch"], cfg["dim"], cfg["width"] - 1) and f.dtype == x.dtype
        assert torch.equal(f.double(), ref_f)
    else:
        out, ref_out = res, ref
    assert out.shape == x.shape and out.dtype == x.dtype
    if cfg["channel_last"]:
        assert out.stride(1) == 1
    assert_close(out, ref_out, TOL[dtype], "out")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_fwd_pieces_equal_one_pass(dtype):
    cfg = dict(FWD_BASE, seqlen=256, init=True)
    x, w, bias, _, init = make_fwd(cfg, dtype, seed=3)
    full, full_f = causal_conv1d_fn(x, w, bias, None, init, True, None, "silu")
    o1, f1 = causal_conv1d_fn(x[..., :2], w, bias, None, init, True, None, "silu")
    out_buf = torch.empty_like(f1)
    o2, f2 = causal_conv1d_fn(x[..., 2:], w, bias, None, f1, True, out_buf, "silu")
    assert f2 is out_buf
    assert torch.equal(torch.cat([o1, o2], -1), full)
    assert torch.equal(f2, full_f)


UPD_VARIANTS = {
    "shift_t1": dict(T=1),
    "shift_t3": dict(T=3),
    "x_2d": dict(T=None),
    "circular": dict(T=1, circular=True),
    "circular_t3": dict(T=3, circular=True),
    "pool_padding": dict(T=1, indices=True),
    "longer_state": dict(T=2, extra=2),
    "weight_f32": dict(T=1, weight_f32=True),
}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(UPD_VARIANTS))
def test_update_against_reference(variant, dtype):
    from ssmkit.reference import causal_conv1d_update_ref

    cfg = dict(dict(T=1, circular=False, indices=False, extra=0, weight_f32=False), **UPD_VARIANTS[variant])
    g = torch.Generator().manual_seed(list(UPD_VARIANTS).index(variant))
    b, d, W = 5, 64, 4
    S = W - 1 + cfg["extra"] + (2 if cfg["circular"] else 0)
    dt = _tdt(dtype)
    T = cfg["T"]
    x = torch.randn(*((b, d) if T is None else (b, d, T)), generator=g).to("cuda", dt)
    pool = b + 2 if cfg["indices"] else b
    state = torch.randn(pool, d, S, generator=g).to("cuda", dt)
    w = (0.5 * torch.randn(d, W, generator=g)).to("cuda", torch.float32 if cfg["weight_f32"] else dt)
    bias = (0.3 * torch.randn(d, generator=g)).to("cuda", w.dtype)
    lens = torch.randint(0, 40, (b,), generator=g, dtype=torch.int32).cuda() if cfg["circular"] else None
    idx = (torch.tensor([6, -1, 0, 3, -1], dtype=torch.int32).cuda() if cfg["indices"] else None)
    ref_state = state.clone()
    out = causal_conv1d_update(x, state, w, bias, "silu", lens, idx)
    ref = causal_conv1d_update_ref(x.double(), ref_state, w, bias, "silu", lens, idx)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert_close(out, ref, TOL[dtype], "out")
    assert torch.equal(state, ref_state), "conv_state"
