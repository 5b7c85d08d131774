# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Framework-facing wrapper of the decode step (selective state update)."""

from . import _ssmkit
from ._scan import _capsule, _framework, _type_name

__all__ = ["selective_state_update"]


def _rank(x, name, ranks, what, optional=False):
    if x is None:
        if optional:
            return None
        raise ValueError(f"{name} must be a tensor {what}, got None")
    ndim = getattr(x, "ndim", None)
    if not isinstance(ndim, int) or getattr(x, "shape", None) is None:
        raise ValueError(f"{name} must be a tensor {what}, got {_type_name(x)}")
    if ndim not in ranks:
        raise ValueError(f"{name} must be {what}, got a {ndim}-D tensor of shape {tuple(x.shape)}")
    return ndim


def selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
                           state_batch_indices=None, *, dst_state_batch_indices=None,
                           intermediate_states=None, out=None, stream=None):
    r"""Decode step of Mamba-1 and Mamba-2 with mamba-ssm's signature and results.

    Updates ``state`` in place and returns ``out``. For every batch row ``b``, head ``h``,
    channel ``p`` and state ``n``::

        dt    = dt[b, h, p] + dt_bias[h, p]                (bias optional)
        dt    = softplus(dt) if dt_softplus else dt
        state = state * exp(A[h, p, n] * dt) + B[b, g, n] * dt * x[b, h, p]   (g = h // (H // G))
        out   = sum_n state * C[b, g, n] + D[h, p] * x[b, h, p]
        out   = out * silu(z[b, h, p]) if z is given

    Shapes, Mamba-1 form: state (slots, dim, N); x, dt, z (batch, dim); A (dim, N);
    B, C (batch, N); D, dt_bias (dim,). Mamba-2 form: state (slots, H, P, N); x, dt, z
    (batch, H, P); A (H, P, N); B, C (batch, G, N); D, dt_bias (H, P). Broadcast views
    (stride 0, e.g. ``A[:, None, None].expand(H, P, N)``) are read without copies.

    Several tokens per call (speculative decoding): give x, dt, z and B, C a token dimension
    after the batch — (batch, T, dim) / (batch, T, N), or (batch, T, H, P) / (batch, T, G, N) —
    and they are applied in order; ``out`` then has that dimension too. ``intermediate_states``
    (batch, T, dim, N) or (batch, T, H, P, N), in the state's dtype, receives the state after
    every token.

    ``state_batch_indices`` (batch,) maps rows to state slots (an index < 0 marks a padding row:
    its output is 0 and no slot is touched); ``dst_state_batch_indices`` (batch,) writes the
    new state to other slots than those read (an index < 0 keeps every slot). x, dt, z, B, C in
    float32, float16 or bfloat16; the state independently in any of the three; A, D, dt_bias
    float32. The kernel runs on ``stream`` (a ``cudaStream_t`` as an int), by default torch's
    current stream of x's device or CuPy's current stream.

    Invalid arguments raise ``ValueError`` naming the argument; CUDA failures raise
    ``RuntimeError``.
    """
    sd = _rank(state, "state", (3, 4), "3-D (slots, dim, dstate) or 4-D (slots, nheads, headdim, dstate)")
    m2 = sd == 4
    base = 3 if m2 else 2  # rank of x without a token dimension
    xd = _rank(x, "x", (base, base + 1),
               f"{base}-D {'(batch, nheads, headdim)' if m2 else '(batch, dim)'}"
               f" or {base + 1}-D with a token dimension")
    tokens = xd == base + 1
    xwhat = f"{xd}-D like x"
    _rank(dt, "dt", (xd,), xwhat)
    _rank(z, "z", (xd,), xwhat, optional=True)
    _rank(A, "A", (sd - 1,), f"{sd - 1}-D {'(nheads, headdim, dstate)' if m2 else '(dim, dstate)'}")
    bc = (3 if m2 else 2) + (1 if tokens else 0)
    bcwhat = f"{bc}-D {'(batch, [T,] ngroups, dstate)' if m2 else '(batch, [T,] dstate)'}"
    _rank(B, "B", (bc,), bcwhat)
    _rank(C, "C", (bc,), bcwhat)
    vd = 2 if m2 else 1
    vwhat = f"{vd}-D {'(nheads, headdim)' if m2 else '(dim,)'}"
    _rank(D, "D", (vd,), vwhat, optional=True)
    _rank(dt_bias, "dt_bias", (vd,), vwhat, optional=True)
    _rank(state_batch_indices, "state_batch_indices", (1,), "1-D (batch,)", optional=True)
    _rank(dst_state_batch_indices, "dst_state_batch_indices", (1,), "1-D (batch,)", optional=True)
    _rank(intermediate_states, "intermediate_states", (sd + 1,),
          f"{sd + 1}-D (batch, T, {'nheads, headdim' if m2 else 'dim'}, dstate)", optional=True)
    _rank(out, "out", (xd,), xwhat, optional=True)
    if not isinstance(dt_softplus, (bool, int)):
        raise ValueError(f"dt_softplus must be a bool, got {_type_name(dt_softplus)}")
    if stream is not None and (isinstance(stream, bool) or not isinstance(stream, int) or stream < 0):
        raise ValueError(f"stream must be a non-negative int (a cudaStream_t) or None, got {stream!r}")

    fw = _framework(x)
    if fw is None:
        raise ValueError(f"x must be a CUDA tensor (torch or cupy); got {_type_name(x)}")
    named = (("state", state), ("dt", dt), ("A", A), ("B", B), ("C", C), ("D", D), ("z", z),
             ("dt_bias", dt_bias), ("state_batch_indices", state_batch_indices),
             ("dst_state_batch_indices", dst_state_batch_indices),
             ("intermediate_states", intermediate_states), ("out", out))
    for name, t in named:
        if t is not None and _framework(t) != fw:
            raise ValueError(f"{name} must be a {fw} tensor like x, got {_type_name(t)}")

    if fw == "torch":
        import torch

        if x.device.type != "cuda":
            raise ValueError(f"x must be a CUDA tensor, got a tensor on {x.device}")
        if stream is None:
            stream = torch.cuda.current_stream(x.device).cuda_stream
        if out is None:
            out = torch.empty(tuple(x.shape), dtype=x.dtype, device=x.device)
        idx = []
        for t in (state_batch_indices, dst_state_batch_indices):
            idx.append(t if t is None or t.dtype == torch.int32 else t.to(torch.int32))
    else:
        import cupy

        if stream is None:
            stream = cupy.cuda.get_current_stream().ptr
        if out is None:
            with x.device:
                out = cupy.empty(x.shape, dtype=x.dtype)
        idx = [t if t is None or t.dtype == cupy.int32 else t.astype(cupy.int32)
               for t in (state_batch_indices, dst_state_batch_indices)]

    # Canonical views: state (S, H, P, N); x, dt, z, out (batch, T, H, P); A (H, P, N);
    # B, C (batch, T, G, N); D, dt_bias (H, P); intermediate (batch, T, H, P, N).
    def tok(t):
        return t if t is None or tokens else t[:, None]

    if m2:
        st, Ac, Dc, bc_ = state, A, D, dt_bias
        xs = [tok(t) for t in (x, dt, z, out)]
        Bc, Cc = tok(B), tok(C)
        inter = intermediate_states
    else:  # Mamba-1: H = dim, P = 1, G = 1
        st = state[:, :, None, :]
        xs = [None if t is None else tok(t)[..., None] for t in (x, dt, z, out)]
        Bc, Cc = tok(B)[:, :, None, :], tok(C)[:, :, None, :]
        Ac = A[:, None, :]
        Dc = None if D is None else D[:, None]
        bc_ = None if dt_bias is None else dt_bias[:, None]
        inter = None if intermediate_states is None else intermediate_states[:, :, :, None, :]
    xc, dtc, zc, outc = xs

    _ssmkit.selective_state_update(
        _capsule(st, fw, stream), _capsule(xc, fw, stream), _capsule(dtc, fw, stream),
        _capsule(Ac, fw, stream), _capsule(Bc, fw, stream), _capsule(Cc, fw, stream),
        _capsule(Dc, fw, stream), _capsule(zc, fw, stream), _capsule(bc_, fw, stream),
        bool(dt_softplus), _capsule(idx[0], fw, stream), _capsule(idx[1], fw, stream),
        _capsule(outc, fw, stream), _capsule(inter, fw, stream), stream)
    return out
