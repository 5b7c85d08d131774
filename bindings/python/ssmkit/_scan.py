# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Framework-facing wrapper of the selective-scan kernel (torch tensors or CuPy arrays)."""

from . import _ssmkit

__all__ = ["selective_scan_fn"]


def _type_name(x):
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def _framework(x):
    """'torch', 'cupy' or None, from the type's module (imports nothing)."""
    mod = type(x).__module__ or ""
    root = mod.split(".", 1)[0]
    if root == "torch":
        return "torch"
    if root == "cupy":
        return "cupy"
    return None


def _check_rank(x, name, ranks, what, optional=False):
    if x is None:
        if optional:
            return
        raise ValueError(f"{name} must be a tensor {what}, got None")
    ndim = getattr(x, "ndim", None)
    shape = getattr(x, "shape", None)
    if not isinstance(ndim, int) or shape is None:
        raise ValueError(f"{name} must be a tensor {what}, got {_type_name(x)}")
    if ndim not in ranks:
        raise ValueError(
            f"{name} must be {what}, got a {ndim}-D tensor of shape {tuple(shape)}")


def _last_stride(x, fw):
    if fw == "torch":
        return x.stride(-1)
    return x.strides[-1] // x.itemsize


def _check_stream(stream):
    if stream is not None and (isinstance(stream, bool) or not isinstance(stream, int) or stream < 0):
        raise ValueError(f"stream must be a non-negative int (a cudaStream_t) or None, got {stream!r}")


def _setup(first, first_name, named, stream):
    """Framework of the first tensor, the same for every named tensor, and the stream to use."""
    fw = _framework(first)
    if fw is None:
        raise ValueError(f"{first_name} must be a CUDA tensor (torch or cupy); got {_type_name(first)}")
    for name, t in named:
        if t is not None and _framework(t) != fw:
            raise ValueError(f"{name} must be a {fw} tensor like {first_name}, got {_type_name(t)}")
    if fw == "torch":
        import torch

        if first.device.type != "cuda":
            raise ValueError(f"{first_name} must be a CUDA tensor, got a tensor on {first.device}")
        if stream is None:
            stream = torch.cuda.current_stream(first.device).cuda_stream
    else:
        import cupy

        if stream is None:
            stream = cupy.cuda.get_current_stream().ptr
    return fw, stream


def _make_last_contiguous(x, fw):
    """Like mamba-ssm: copy only when the last dimension is not contiguous."""
    if x is None or x.shape[-1] <= 1 or _last_stride(x, fw) == 1:
        return x
    if fw == "torch":
        return x.contiguous()
    import cupy

    return cupy.ascontiguousarray(x)


def _dlpack_stream(stream):
    # The DLPack exchange protocol reserves 0 for CUDA; the legacy default stream is 1.
    return 1 if stream == 0 else stream


def _capsule(x, fw, stream):
    if x is None:
        return None
    if fw == "torch":
        x = x.detach()
        if x.is_cuda:
            return x.__dlpack__(stream=_dlpack_stream(stream))
        return x.__dlpack__()
    return x.__dlpack__(stream=_dlpack_stream(stream))


def selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                      return_last_state=False, *, initial_state=None, stream=None,
                      conv_weight=None, conv_bias=None, conv_activation="silu",
                      conv_initial_states=None, return_conv_final_states=False,
                      return_conv_out=False):
    r"""Selective scan (Mamba-1 SSM) forward on CUDA, with mamba-ssm's signature and results.

    For every batch ``b``, channel ``d`` and state ``n``, over time ``t = 0 .. L-1``::

        dt      = delta[b, d, t] + delta_bias[d]            (bias optional)
        dt      = softplus(dt) if delta_softplus else dt     (softplus(x) = x if x > 20
                                                              else log1p(exp(x)))
        h[n]    = exp(dt * A[d, n]) * h[n] + dt * B[.., n, t] * u[b, d, t]
        y       = sum_n C[.., n, t] * h[n] + D[d] * u[b, d, t]   (D optional)
        out     = y * silu(z[b, d, t]) if z is given else y

    ``h`` starts at ``initial_state[b, d]`` or zero. Variable ``B``/``C`` with ``G`` groups
    are read at group ``d // (D_dim // G)`` for channel ``d``.

    Shapes (``Bt`` batch, ``Dm`` channels, ``L`` sequence, ``N`` state size <= 256):

    - ``u``, ``delta``, ``z``: (Bt, Dm, L), one dtype: float32, float16 or bfloat16
    - ``A``: (Dm, N) float32
    - ``B``, ``C``: (Dm, N) float32 (constant), or (Bt, N, L) (one group), or
      (Bt, G, N, L) (variable) in u's dtype
    - ``D``, ``delta_bias``: (Dm,) float32
    - ``initial_state``: (Bt, Dm, N) float32

    Returns ``out`` (same shape and dtype as ``u``), or ``(out, last_state)`` with
    ``last_state`` (Bt, Dm, N) float32, the state after the last step, when
    ``return_last_state`` is true.

    Fused causal conv1d (the x branch of a Mamba-1 block): with ``conv_weight`` (Dm, W),
    W <= 4, ``u`` is the conv's input x and the scan reads, in the same kernel,
    ``u' = act(conv_bias[d] + sum_k conv_weight[d, k] * x[b, d, t - W + 1 + k])`` with
    ``act`` silu (``conv_activation="silu"``) or none (``None``); ``D`` multiplies ``u'``.
    ``conv_weight`` and ``conv_bias`` (Dm,) are float32 or u's dtype; x before step 0 comes
    from ``conv_initial_states`` (Bt, Dm, W-1) in u's dtype, or is zero. With
    ``return_conv_final_states`` the last W-1 inputs (Bt, Dm, W-1) are returned (pass them as
    the next call's ``conv_initial_states`` to continue the sequence), with
    ``return_conv_out`` the conv's output ``u'`` (Bt, Dm, L). Extra results follow
    ``out`` (and ``last_state``) in that order.

    Inputs are CUDA torch tensors or CuPy arrays (all from the same framework, on one device);
    outputs are allocated with that framework on u's device. The kernel is enqueued on
    ``stream`` (a ``cudaStream_t`` as an int), by default torch's current stream of u's
    device or CuPy's current stream; inputs are exported with that stream so that pending
    work on the producer's current stream is ordered before the kernel.

    Invalid arguments raise ``ValueError`` naming the argument; CUDA failures raise
    ``RuntimeError``. No gradient is defined (the result is not attached to autograd).
    """
    # Structural checks that need nothing but .ndim / .shape.
    _check_rank(u, "u", (3,), "3-D (batch, dim, seqlen)")
    _check_rank(delta, "delta", (3,), "3-D (batch, dim, seqlen)")
    _check_rank(A, "A", (2,), "2-D (dim, dstate)")
    bc_what = "2-D (dim, dstate), 3-D (batch, dstate, seqlen) or 4-D (batch, n_groups, dstate, seqlen)"
    _check_rank(B, "B", (2, 3, 4), bc_what)
    _check_rank(C, "C", (2, 3, 4), bc_what)
    _check_rank(D, "D", (1,), "1-D (dim,)", optional=True)
    _check_rank(z, "z", (3,), "3-D (batch, dim, seqlen)", optional=True)
    _check_rank(delta_bias, "delta_bias", (1,), "1-D (dim,)", optional=True)
    _check_rank(initial_state, "initial_state", (3,), "3-D (batch, dim, dstate)", optional=True)
    _check_rank(conv_weight, "conv_weight", (2,), "2-D (dim, width)", optional=True)
    _check_rank(conv_bias, "conv_bias", (1,), "1-D (dim,)", optional=True)
    _check_rank(conv_initial_states, "conv_initial_states", (3,), "3-D (batch, dim, width - 1)",
                optional=True)
    if conv_activation not in ("silu", "swish", None):
        raise ValueError(f"conv_activation must be 'silu' or None, got {conv_activation!r}")
    if conv_weight is None and (conv_bias is not None or conv_initial_states is not None
                                or return_conv_final_states or return_conv_out):
        raise ValueError("conv_bias, conv_initial_states, return_conv_final_states and "
                         "return_conv_out need conv_weight")
    if not isinstance(delta_softplus, (bool, int)):
        raise ValueError(f"delta_softplus must be a bool, got {_type_name(delta_softplus)}")
    if not isinstance(return_last_state, (bool, int)):
        raise ValueError(f"return_last_state must be a bool, got {_type_name(return_last_state)}")
    _check_stream(stream)

    fw, stream = _setup(u, "u", (("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D), ("z", z),
                                 ("delta_bias", delta_bias), ("initial_state", initial_state),
                                 ("conv_weight", conv_weight), ("conv_bias", conv_bias),
                                 ("conv_initial_states", conv_initial_states)), stream)
    if fw == "torch":
        import torch
    else:
        import cupy

    u = _make_last_contiguous(u, fw)
    conv_weight = _make_last_contiguous(conv_weight, fw)
    conv_initial_states = _make_last_contiguous(conv_initial_states, fw)
    delta = _make_last_contiguous(delta, fw)
    z = _make_last_contiguous(z, fw)
    if B.ndim == 3:
        B = B[:, None]
    if C.ndim == 3:
        C = C[:, None]
    if B.ndim == 4:
        B = _make_last_contiguous(B, fw)
    if C.ndim == 4:
        C = _make_last_contiguous(C, fw)

    batch, dim, seqlen = (int(s) for s in u.shape)
    dstate = int(A.shape[1])
    width = int(conv_weight.shape[1]) if conv_weight is not None else 0

    def empty(shape, dtype, want=True):
        if not want:
            return None
        if fw == "torch":
            return torch.empty(shape, dtype=dtype, device=u.device)
        with u.device:
            return cupy.empty(shape, dtype=dtype)

    f32 = torch.float32 if fw == "torch" else cupy.float32
    out = empty((batch, dim, seqlen), u.dtype)
    last_state = empty((batch, dim, dstate), f32, return_last_state)
    conv_final = empty((batch, dim, max(width - 1, 0)), u.dtype, bool(return_conv_final_states))
    conv_out = empty((batch, dim, seqlen), u.dtype, bool(return_conv_out))

    # Workspace for launches that cut the sequence into ranges, from the caller's framework
    # (the kernel would otherwise take stream-ordered memory on every call).
    workspace = None
    n_groups = int(B.shape[1]) if B.ndim == 4 else (int(C.shape[1]) if C.ndim == 4 else 1)
    dtype_name = {"torch.float32": "float32", "torch.float16": "float16",
                  "torch.bfloat16": "bfloat16", "float32": "float32",
                  "float16": "float16"}.get(str(u.dtype))
    if dtype_name is not None:
        device_index = u.device.index if fw == "torch" else u.device.id
        try:
            nbytes = _ssmkit.selective_scan_workspace_bytes(batch, dim, seqlen, dstate, n_groups,
                                                             dtype_name, int(device_index or 0))
        except ValueError:
            nbytes = 0  # the launch below reports the argument at fault
        if nbytes:
            if fw == "torch":
                workspace = torch.empty((nbytes,), dtype=torch.uint8, device=u.device)
            else:
                with u.device:
                    workspace = cupy.empty((nbytes,), dtype=cupy.uint8)

    try:
        _ssmkit.selective_scan_fwd(
            _capsule(u, fw, stream), _capsule(delta, fw, stream), _capsule(A, fw, stream),
            _capsule(B, fw, stream), _capsule(C, fw, stream), _capsule(D, fw, stream),
            _capsule(z, fw, stream), _capsule(delta_bias, fw, stream), bool(delta_softplus),
            _capsule(initial_state, fw, stream), _capsule(out, fw, stream),
            _capsule(last_state, fw, stream), stream, _capsule(workspace, fw, stream),
            _capsule(conv_weight, fw, stream), _capsule(conv_bias, fw, stream),
            conv_activation is not None, _capsule(conv_initial_states, fw, stream),
            _capsule(conv_final if width > 1 else None, fw, stream), _capsule(conv_out, fw, stream))
    except ValueError as e:
        msg = str(e)
        if msg.startswith("h0"):  # the kernel's name for the initial state
            raise ValueError("initial_state" + msg[2:]) from None
        raise
    results = [out]
    if return_last_state:
        results.append(last_state)
    if return_conv_final_states:
        results.append(conv_final)
    if return_conv_out:
        results.append(conv_out)
    return tuple(results) if len(results) > 1 else out
