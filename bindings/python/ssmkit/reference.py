# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Plain PyTorch references of the selective scan (slow: a Python loop over time) and the causal
conv1d (F.conv1d based), for tests."""

import torch

__all__ = ["selective_scan_ref", "causal_conv1d_ref", "causal_conv1d_update_ref"]


def _softplus(x):
    # Same threshold as the kernel: x if x > 20 else log1p(exp(x)).
    return torch.where(x > 20, x, torch.log1p(torch.exp(torch.clamp(x, max=20))))


def _per_channel(M, dim, name):
    """B or C as either (dim, N) (constant) or (batch, dim, N, L) (variable, groups expanded)."""
    if M.dim() == 2:
        return M, False
    if M.dim() == 3:
        M = M.unsqueeze(1)
    if M.dim() != 4:
        raise ValueError(f"{name} must be 2-D, 3-D or 4-D, got {M.dim()}-D")
    groups = M.shape[1]
    if groups < 1 or dim % groups != 0:
        raise ValueError(f"{name}: n_groups {groups} does not divide dim {dim}")
    # Channel d reads group d // (dim // groups).
    return M.repeat_interleave(dim // groups, dim=1), True


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False, initial_state=None):
    """Reference selective scan computed in float64 (same semantics as selective_scan_fn).

    Shapes: u, delta, z (batch, dim, L); A (dim, N); B, C (dim, N), (batch, N, L) or
    (batch, G, N, L); D, delta_bias (dim,); initial_state (batch, dim, N).

    Returns ``out`` in u's dtype, or ``(out, last_state)`` with last_state float64 when u is
    float64 and float32 otherwise. Pass float64 inputs to get an unrounded float64 result.
    Runs on whatever device the inputs are on.
    """
    dtype_in = u.dtype
    f64 = torch.float64
    u = u.to(f64)
    delta = delta.to(f64)
    A = A.to(f64)
    batch, dim, seqlen = u.shape
    dstate = A.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias.to(f64)[None, :, None]
    if delta_softplus:
        delta = _softplus(delta)
    Bm, B_var = _per_channel(B.to(f64), dim, "B")
    Cm, C_var = _per_channel(C.to(f64), dim, "C")

    if initial_state is not None:
        h = initial_state.to(f64).clone()
    else:
        h = torch.zeros((batch, dim, dstate), dtype=f64, device=u.device)

    ys = []
    for t in range(seqlen):
        dt = delta[:, :, t]                                  # (batch, dim)
        Bt = Bm[:, :, :, t] if B_var else Bm[None]           # (batch|1, dim, N)
        Ct = Cm[:, :, :, t] if C_var else Cm[None]
        h = torch.exp(dt[..., None] * A[None]) * h + (dt * u[:, :, t])[..., None] * Bt
        ys.append((h * Ct).sum(-1))
    y = torch.stack(ys, dim=-1)                              # (batch, dim, L)
    if D is not None:
        y = y + D.to(f64)[None, :, None] * u
    if z is not None:
        zz = z.to(f64)
        y = y * (zz * torch.sigmoid(zz))
    out = y.to(dtype_in)
    if not return_last_state:
        return out
    last_state = h if dtype_in == f64 else h.to(torch.float32)
    return out, last_state


def causal_conv1d_ref(x, weight, bias=None, seq_idx=None, initial_states=None,
                      return_final_states=False, activation=None):
    """Reference causal conv1d forward (F.conv1d in float64), same semantics as causal_conv1d_fn.

    x (batch, dim, L); weight (dim, W); bias (dim,); seq_idx (batch, L) int; initial_states
    (batch, dim, W-1). Returns out in x's dtype, or (out, final_states) with final_states in
    x's dtype: the last W-1 inputs of each row (from initial_states or zeros where L < W-1).
    """
    import torch.nn.functional as F

    dtype_in = x.dtype
    batch, dim, seqlen = x.shape
    width = weight.shape[1]
    xd = x.to(torch.float64)
    w = weight.to(torch.float64)
    if initial_states is not None:
        pre = initial_states.to(torch.float64)
    else:
        pre = torch.zeros((batch, dim, width - 1), dtype=torch.float64, device=x.device)
    xp = torch.cat([pre, xd], dim=-1)  # (batch, dim, W-1 + L)
    if seq_idx is None:
        out = F.conv1d(xp, w[:, None, :], None, groups=dim)
    else:
        # Tap k of position t reads position t-W+1+k only within the same sequence index.
        s = seq_idx.to(torch.int64)
        out = torch.zeros((batch, dim, seqlen), dtype=torch.float64, device=x.device)
        for k in range(width):
            shift = width - 1 - k
            src = xp[:, :, k:k + seqlen]
            if shift > 0:
                same = torch.zeros_like(s, dtype=torch.bool)
                same[:, shift:] = s[:, shift:] == s[:, :-shift]
            else:
                same = torch.ones_like(s, dtype=torch.bool)
            out = out + w[None, :, k, None] * src * same[:, None, :]
    if bias is not None:
        out = out + bias.to(torch.float64)[None, :, None]
    if activation in ("silu", "swish"):
        out = out * torch.sigmoid(out)
    out = out.to(dtype_in)
    if not return_final_states:
        return out
    final = xp[:, :, xp.shape[-1] - (width - 1):].to(dtype_in)
    return out, final


def causal_conv1d_update_ref(x, conv_state, weight, bias=None, activation=None, cache_seqlens=None,
                             conv_state_indices=None):
    """Reference causal conv1d decode update (float64 math); updates conv_state in place.

    Same semantics as causal_conv1d_update: x (batch, dim) or (batch, dim, T); conv_state
    (pool, dim, S) shifted, or a circular buffer with cache_seqlens; conv_state_indices picks
    rows, < 0: output 0 and no state change.
    """
    squeeze = x.dim() == 2
    if squeeze:
        x = x[:, :, None]
    batch, dim, T = x.shape
    width = weight.shape[1]
    S = conv_state.shape[2]
    out = torch.zeros((batch, dim, T), dtype=torch.float64, device=x.device)
    for b in range(batch):
        row = int(conv_state_indices[b]) if conv_state_indices is not None else b
        if row < 0:
            continue
        st = conv_state[row].to(torch.float64)  # (dim, S)
        if cache_seqlens is not None:
            c = int(cache_seqlens[b]) % S
            order = [(c - (width - 1) + k) % S for k in range(width - 1)]
            kept = st[:, order]
        else:
            kept = st[:, S - (width - 1):]
        seq = torch.cat([kept, x[b].to(torch.float64)], dim=-1)
        for t in range(T):
            out[b, :, t] = (seq[:, t:t + width] * weight.to(torch.float64)).sum(-1)
        if cache_seqlens is not None:
            for t in range(T):
                conv_state[row, :, (c + t) % S] = x[b, :, t]
        else:
            allv = torch.cat([conv_state[row], x[b].to(conv_state.dtype)], dim=-1)
            conv_state[row] = allv[:, T:]
    if bias is not None:
        out = out + bias.to(torch.float64)[None, :, None]
    if activation in ("silu", "swish"):
        out = out * torch.sigmoid(out)
    if conv_state_indices is not None:
        pad = (conv_state_indices < 0).to(x.device)
        out[pad] = 0.0
    out = out.to(x.dtype)
    return out[:, :, 0] if squeeze else out


def selective_state_update_ref(state, x, dt, A, B, C, D=None, z=None, dt_bias=None,
                               dt_softplus=False, state_batch_indices=None):
    """Reference decode step in float64 (same semantics as ssmkit.selective_state_update).

    Mamba-1 form: state (slots, dim, N), x/dt/z (batch, dim), A (dim, N), B/C (batch, N),
    D/dt_bias (dim,). Mamba-2 form: state (slots, H, P, N), x/dt/z (batch, H, P), A (H, P, N),
    B/C (batch, G, N), D/dt_bias (H, P). Updates ``state`` in place (rounded to its dtype) and
    returns ``out`` in x's dtype; rows whose index is < 0 give 0 and leave the state alone.
    """
    m1 = state.dim() == 3
    if m1:
        state_v = state.unsqueeze(2)
        x, dt = x.unsqueeze(-1), dt.unsqueeze(-1)
        z = None if z is None else z.unsqueeze(-1)
        A = A.unsqueeze(1)
        B, C = B.unsqueeze(1), C.unsqueeze(1)
        D = None if D is None else D.unsqueeze(-1)
        dt_bias = None if dt_bias is None else dt_bias.unsqueeze(-1)
    else:
        state_v = state
    f64 = torch.float64
    batch, H = x.shape[0], x.shape[1]
    G = B.shape[1]
    rows = (torch.arange(batch, device=x.device) if state_batch_indices is None
            else state_batch_indices.to(torch.long))
    valid = rows >= 0
    safe = torch.where(valid, rows, torch.zeros_like(rows))
    s = state_v[safe].to(f64)                                   # (batch, H, P, N)
    d = dt.to(f64) + (dt_bias.to(f64) if dt_bias is not None else 0.0)
    if dt_softplus:
        d = _softplus(d)
    Bh = B.to(f64).repeat_interleave(H // G, dim=1)[:, :, None, :]  # (batch, H, 1, N)
    Ch = C.to(f64).repeat_interleave(H // G, dim=1)[:, :, None, :]
    s = s * torch.exp(A.to(f64)[None] * d[..., None]) + Bh * (d * x.to(f64))[..., None]
    out = (s * Ch).sum(-1)
    if D is not None:
        out = out + D.to(f64) * x.to(f64)
    if z is not None:
        zz = z.to(f64)
        out = out * zz * torch.sigmoid(zz)
    out = torch.where(valid[:, None, None], out, torch.zeros_like(out))
    state_v[rows[valid]] = s[valid].to(state.dtype)
    out = out.to(x.dtype)
    return out[..., 0] if m1 else out


__all__ += ["selective_state_update_ref"]
