# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Framework-facing wrapper of the decode step (selective state update).

A decode step runs once per layer and generated token, so the call itself must cost little.
With torch tensors on the current stream the call goes straight to ``ssmkit._ssmkit_torch``
(built where torch was found), which reads the tensors natively and allocates ``out`` in C++;
anything it rejects (or a build without it) takes the general path below, which names the
offending argument. There, ranks are checked by one comparison per argument (messages are
built only on failure), torch tensors are exported with ``torch.utils.dlpack.to_dlpack`` (no
stream handshake per tensor) and the tensors go to the extension in their own shapes, without
reshaped views.
"""

from . import _ssmkit
from ._scan import _capsule, _framework, _type_name

__all__ = ["selective_state_update"]

_NAMES = ("state", "dt", "A", "B", "C", "D", "z", "dt_bias", "state_batch_indices",
          "dst_state_batch_indices", "intermediate_states", "out")

# torch pieces looked up once, at the first call with torch tensors.
_torch_fast = None
# torch.Tensor once torch has been seen: an exact type check instead of _framework().
_torch_tensor = None
# ssmkit._ssmkit_torch once torch has been seen, if it was built; else None.
_torch_ext = None
# The raw current stream of a device index, once torch has been seen.
_raw_stream = None


def _torch_pieces():
    global _torch_fast, _torch_tensor, _torch_ext, _raw_stream
    if _torch_fast is None:
        import torch
        import torch.utils.dlpack

        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
        if raw is None:
            def raw(device):
                return torch.cuda.current_stream(device).cuda_stream
        try:
            from . import _ssmkit_torch as ext
        except ImportError:
            ext = None
        _torch_fast = (torch, torch.utils.dlpack.to_dlpack, raw)
        _raw_stream = raw
        _torch_ext = ext
        _torch_tensor = torch.Tensor
    return _torch_fast


def torch_fast_path():
    """True if torch tensors on the current stream take the native path (ssmkit._ssmkit_torch)."""
    try:
        _torch_pieces()
    except ImportError:
        return False
    return _torch_ext is not None


def _check_frameworks(fw, x, args):
    """Raises ValueError naming the first argument that is not a tensor of x's framework."""
    tx = type(x)
    for name, t in zip(_NAMES, args):
        if t is not None and type(t) is not tx and _framework(t) != fw:
            raise ValueError(f"{name} must be a {fw} tensor like x, got {_type_name(t)}")


def _torch_call(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus, sbi, dsbi, inter, out, stream):
    torch, cap, raw_stream = _torch_pieces()
    device = x.get_device()  # -1 for a CPU tensor
    if device < 0:
        raise ValueError(f"x must be a CUDA tensor, got a tensor on {x.device}")
    current = raw_stream(device)
    if stream is None:
        stream = current
    elif stream != current:
        # Work queued on the current stream (the inputs) comes before the kernel.
        torch.cuda.ExternalStream(stream, device=x.device).wait_stream(torch.cuda.current_stream(device))
    if out is None:
        out = torch.empty_like(x)
    if sbi is not None and sbi.dtype != torch.int32:
        sbi = sbi.to(torch.int32)
    if dsbi is not None and dsbi.dtype != torch.int32:
        dsbi = dsbi.to(torch.int32)
    # to_dlpack exports any tensor, autograd or not, without a stream handshake: the kernel runs
    # on `stream`, ordered after the current stream above.
    _ssmkit.selective_state_update_mamba(
        cap(state), cap(x), cap(dt), cap(A), cap(B), cap(C), None if D is None else cap(D),
        None if z is None else cap(z), None if dt_bias is None else cap(dt_bias), bool(dt_softplus),
        None if sbi is None else cap(sbi), None if dsbi is None else cap(dsbi), cap(out),
        None if inter is None else cap(inter), stream)
    return out


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


def _ranks_match(state, x, dt, A, B, C, D, z, dt_bias, sbi, dsbi, inter, out):
    """True if every argument has the rank one of the two forms needs (no message built)."""
    try:
        sd, xd = state.ndim, x.ndim
        return ((sd == 3 or sd == 4) and (xd == sd - 1 or xd == sd) and dt.ndim == xd
                and A.ndim == sd - 1 and B.ndim == xd and C.ndim == xd
                and (D is None or D.ndim == sd - 2) and (z is None or z.ndim == xd)
                and (dt_bias is None or dt_bias.ndim == sd - 2)
                and (sbi is None or sbi.ndim == 1) and (dsbi is None or dsbi.ndim == 1)
                and (inter is None or inter.ndim == sd + 1) and (out is None or out.ndim == xd))
    except AttributeError:
        return False


def _check_ranks(state, x, dt, A, B, C, D, z, dt_bias, sbi, dsbi, inter, out):
    """Raises ValueError naming the first argument of the wrong rank."""
    sd = _rank(state, "state", (3, 4), "3-D (slots, dim, dstate) or 4-D (slots, nheads, headdim, dstate)")
    m2 = sd == 4
    base = 3 if m2 else 2  # rank of x without a token dimension
    xd = _rank(x, "x", (base, base + 1),
               f"{base}-D {'(batch, nheads, headdim)' if m2 else '(batch, dim)'}"
               f" or {base + 1}-D with a token dimension")
    xwhat = f"{xd}-D like x"
    _rank(dt, "dt", (xd,), xwhat)
    _rank(z, "z", (xd,), xwhat, optional=True)
    _rank(A, "A", (sd - 1,), f"{sd - 1}-D {'(nheads, headdim, dstate)' if m2 else '(dim, dstate)'}")
    bcwhat = f"{xd}-D {'(batch, [T,] ngroups, dstate)' if m2 else '(batch, [T,] dstate)'}"
    _rank(B, "B", (xd,), bcwhat)
    _rank(C, "C", (xd,), bcwhat)
    vwhat = f"{sd - 2}-D {'(nheads, headdim)' if m2 else '(dim,)'}"
    _rank(D, "D", (sd - 2,), vwhat, optional=True)
    _rank(dt_bias, "dt_bias", (sd - 2,), vwhat, optional=True)
    _rank(sbi, "state_batch_indices", (1,), "1-D (batch,)", optional=True)
    _rank(dsbi, "dst_state_batch_indices", (1,), "1-D (batch,)", optional=True)
    _rank(inter, "intermediate_states", (sd + 1,),
          f"{sd + 1}-D (batch, T, {'nheads, headdim' if m2 else 'dim'}, dstate)", optional=True)
    _rank(out, "out", (xd,), xwhat, optional=True)


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
    current stream of x's device or CuPy's current stream; work queued on that current stream
    before the call is ordered before the kernel.

    Invalid arguments raise ``ValueError`` naming the argument; CUDA failures raise
    ``RuntimeError``.
    """
    sbi, dsbi, inter = state_batch_indices, dst_state_batch_indices, intermediate_states
    if type(x) is _torch_tensor and _torch_ext is not None and stream is None and type(dt_softplus) is bool:
        device = x.get_device()
        if device >= 0:
            try:
                return _torch_ext.selective_state_update(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus, sbi,
                                                         dsbi, inter, out, _raw_stream(device))
            except (TypeError, ValueError):
                pass  # the general path below names the argument, or converts the indices
    if not _ranks_match(state, x, dt, A, B, C, D, z, dt_bias, sbi, dsbi, inter, out):
        _check_ranks(state, x, dt, A, B, C, D, z, dt_bias, sbi, dsbi, inter, out)
    if not isinstance(dt_softplus, (bool, int)):
        raise ValueError(f"dt_softplus must be a bool, got {_type_name(dt_softplus)}")
    if stream is not None and (isinstance(stream, bool) or not isinstance(stream, int) or stream < 0):
        raise ValueError(f"stream must be a non-negative int (a cudaStream_t) or None, got {stream!r}")

    fw = "torch" if type(x) is _torch_tensor else _framework(x)
    if fw is None:
        raise ValueError(f"x must be a CUDA tensor (torch or cupy); got {_type_name(x)}")
    if fw == "torch":
        try:
            return _torch_call(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus, sbi, dsbi, inter, out,
                               stream)
        except (TypeError, RuntimeError, AttributeError):
            # A tensor of another framework fails the export: name it.
            _check_frameworks(fw, x, (state, dt, A, B, C, D, z, dt_bias, sbi, dsbi, inter, out))
            raise
    _check_frameworks(fw, x, (state, dt, A, B, C, D, z, dt_bias, sbi, dsbi, inter, out))

    import cupy

    if stream is None:
        stream = cupy.cuda.get_current_stream().ptr
    if out is None:
        with x.device:
            out = cupy.empty(x.shape, dtype=x.dtype)
    if sbi is not None and sbi.dtype != cupy.int32:
        sbi = sbi.astype(cupy.int32)
    if dsbi is not None and dsbi.dtype != cupy.int32:
        dsbi = dsbi.astype(cupy.int32)
    _ssmkit.selective_state_update_mamba(
        _capsule(state, fw, stream), _capsule(x, fw, stream), _capsule(dt, fw, stream),
        _capsule(A, fw, stream), _capsule(B, fw, stream), _capsule(C, fw, stream),
        _capsule(D, fw, stream), _capsule(z, fw, stream), _capsule(dt_bias, fw, stream),
        bool(dt_softplus), _capsule(sbi, fw, stream), _capsule(dsbi, fw, stream),
        _capsule(out, fw, stream), _capsule(inter, fw, stream), stream)
    return out
