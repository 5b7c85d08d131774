# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Framework-facing wrappers of the causal conv1d kernels (torch tensors or CuPy arrays)."""

from . import _ssmkit
from ._scan import _capsule, _check_rank, _check_stream, _setup, _type_name

__all__ = ["causal_conv1d_fn", "causal_conv1d_update"]


def _silu_flag(activation):
    if activation not in (None, "silu", "swish"):
        raise ValueError(f"activation must be None, 'silu' or 'swish', got {activation!r}")
    return activation is not None


def _strides(x, fw):
    if fw == "torch":
        return tuple(x.stride())
    return tuple(s // x.itemsize for s in x.strides)


def _dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def _weight_and_bias(weight, bias, x, fw):
    """weight in x's dtype or float32 (other types are cast to x's), bias in weight's dtype."""
    if _dtype_name(weight) not in (_dtype_name(x), "float32"):
        weight = weight.to(x.dtype) if fw == "torch" else weight.astype(x.dtype)
    if bias is not None and _dtype_name(bias) != _dtype_name(weight):
        bias = bias.to(weight.dtype) if fw == "torch" else bias.astype(weight.dtype)
    if bias is not None and bias.shape[0] > 1 and _strides(bias, fw)[0] != 1:
        bias = bias.contiguous() if fw == "torch" else bias.copy()
    return weight, bias


def _empty(fw, shape, dtype, like, order=None):
    """Uninitialised tensor on like's device; order: a permutation of the storage dims."""
    if order is None:
        order = tuple(range(len(shape)))
    stored = tuple(shape[i] for i in order)
    inverse = tuple(order.index(i) for i in range(len(shape)))
    if fw == "torch":
        import torch

        return torch.empty(stored, dtype=dtype, device=like.device).permute(*inverse)
    import cupy

    with like.device:
        return cupy.empty(stored, dtype=dtype).transpose(*inverse)


def causal_conv1d_fn(x, weight, bias=None, seq_idx=None, initial_states=None,
                     return_final_states=False, final_states_out=None, activation=None, *,
                     stream=None):
    r"""Causal depthwise conv1d forward on CUDA, with causal-conv1d's signature and results.

    For every batch ``b``, channel ``d`` and position ``t``::

        out[b, d, t] = act(bias[d] + sum_{k < W} weight[d, k] * x[b, d, t - W + 1 + k])

    where ``x`` before position 0 is ``initial_states[b, d, W - 1 + pos]`` (or 0) and ``act``
    is silu for ``activation`` "silu" / "swish", else the identity. With ``seq_idx`` (batch,
    seqlen) int32, a position sees only earlier positions with the same sequence index
    (packed sequences); ``initial_states`` cannot be combined with it (as upstream).

    Shapes: ``x`` (batch, dim, seqlen) stored channel-first or channel-last (strides
    (seqlen*dim, 1, dim)); ``weight`` (dim, W) with 1 <= W <= 8, in x's dtype or float32;
    ``bias`` (dim,); ``initial_states`` (batch, dim, W-1) in x's dtype, any strides.

    Returns ``out`` (same shape, dtype and layout as x), or ``(out, final_states)`` when
    ``return_final_states``: the last W-1 inputs of each row, (batch, dim, W-1), written to
    ``final_states_out`` if given. Invalid arguments raise ``ValueError`` naming the argument.
    """
    _check_rank(x, "x", (3,), "3-D (batch, dim, seqlen)")
    _check_rank(weight, "weight", (2,), "2-D (dim, width)")
    _check_rank(bias, "bias", (1,), "1-D (dim,)", optional=True)
    _check_rank(seq_idx, "seq_idx", (2,), "2-D (batch, seqlen)", optional=True)
    _check_rank(initial_states, "initial_states", (3,), "3-D (batch, dim, width - 1)", optional=True)
    _check_rank(final_states_out, "final_states_out", (3,), "3-D (batch, dim, width - 1)", optional=True)
    silu = _silu_flag(activation)
    _check_stream(stream)
    if not isinstance(return_final_states, (bool, int)):
        raise ValueError(f"return_final_states must be a bool, got {_type_name(return_final_states)}")
    if final_states_out is not None and not return_final_states:
        raise ValueError("final_states_out is given but return_final_states is False")
    if seq_idx is not None and initial_states is not None:
        raise ValueError("initial_states cannot be combined with seq_idx (packed sequences start "
                         "from zeros)")
    fw, stream = _setup(x, "x", (("weight", weight), ("bias", bias), ("seq_idx", seq_idx),
                            ("initial_states", initial_states),
                            ("final_states_out", final_states_out)), stream)

    batch, dim, seqlen = (int(s) for s in x.shape)
    width = int(weight.shape[1])
    strides = _strides(x, fw)
    channel_last = seqlen > 1 and strides[2] != 1 and (dim == 1 or strides[1] == 1)
    if seqlen > 1 and strides[2] != 1 and not channel_last:
        x = x.contiguous() if fw == "torch" else x.copy()
    weight, bias = _weight_and_bias(weight, bias, x, fw)

    out = _empty(fw, (batch, dim, seqlen), x.dtype, x, (0, 2, 1) if channel_last else None)
    final_states = None
    if return_final_states:
        if width < 2:
            raise ValueError("return_final_states needs width >= 2 (width - 1 inputs are kept)")
        final_states = (final_states_out if final_states_out is not None
                        else _empty(fw, (batch, dim, width - 1), x.dtype, x))
    _ssmkit.causal_conv1d_fwd(
        _capsule(x, fw, stream), _capsule(weight, fw, stream), _capsule(bias, fw, stream),
        _capsule(seq_idx, fw, stream), _capsule(initial_states, fw, stream),
        _capsule(final_states, fw, stream), _capsule(out, fw, stream), silu, stream)
    return (out, final_states) if return_final_states else out


def causal_conv1d_update(x, conv_state, weight, bias=None, activation=None, cache_seqlens=None,
                         conv_state_indices=None, *, stream=None):
    r"""One decode step of the causal conv1d, with causal-conv1d's signature and results.

    ``x`` (batch, dim) or (batch, dim, seqlen) new tokens; ``conv_state`` (pool, dim,
    state_len >= W-1), updated in place: shifted left by seqlen with the new tokens appended,
    or, with ``cache_seqlens`` (batch,) int32, used as a circular buffer written from
    ``cache_seqlens[b] % state_len`` on (the caller advances cache_seqlens).
    ``conv_state_indices`` (batch,) int32 picks the pool row of each entry; an index < 0 marks
    padding: its output is 0 and no state is touched. ``weight`` (dim, W), ``bias`` (dim,),
    ``activation`` None, "silu" or "swish".

    Returns the output, shaped and typed like ``x``.
    """
    _check_rank(x, "x", (2, 3), "2-D (batch, dim) or 3-D (batch, dim, seqlen)")
    _check_rank(conv_state, "conv_state", (3,), "3-D (pool, dim, state_len)")
    _check_rank(weight, "weight", (2,), "2-D (dim, width)")
    _check_rank(bias, "bias", (1,), "1-D (dim,)", optional=True)
    _check_rank(cache_seqlens, "cache_seqlens", (1,), "1-D (batch,)", optional=True)
    _check_rank(conv_state_indices, "conv_state_indices", (1,), "1-D (batch,)", optional=True)
    silu = _silu_flag(activation)
    _check_stream(stream)
    fw, stream = _setup(x, "x", (("conv_state", conv_state), ("weight", weight), ("bias", bias),
                            ("cache_seqlens", cache_seqlens),
                            ("conv_state_indices", conv_state_indices)), stream)
    squeeze = x.ndim == 2
    x3 = x[:, :, None] if squeeze else x
    weight, bias = _weight_and_bias(weight, bias, x3, fw)
    out = _empty(fw, tuple(int(s) for s in x3.shape), x3.dtype, x3)
    _ssmkit.causal_conv1d_update(
        _capsule(x3, fw, stream), _capsule(conv_state, fw, stream), _capsule(weight, fw, stream),
        _capsule(bias, fw, stream), silu, _capsule(cache_seqlens, fw, stream),
        _capsule(conv_state_indices, fw, stream), _capsule(out, fw, stream), stream)
    return out[:, :, 0] if squeeze else out
