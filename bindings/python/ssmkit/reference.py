# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""Plain PyTorch reference of the selective scan, for tests (slow: a Python loop over time)."""

import torch

__all__ = ["selective_scan_ref"]


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
