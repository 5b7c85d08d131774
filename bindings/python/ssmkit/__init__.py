# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
"""ssmkit: state-space model kernels for CUDA.

``selective_scan_fn`` runs the Mamba-1 selective scan forward on CUDA torch tensors or CuPy
arrays, with mamba-ssm's signature. ``ssmkit.reference.selective_scan_ref`` is a plain PyTorch
float64 implementation of the same function, for testing.
"""

from ._ssmkit import __version__, cuda_device_count
from ._conv1d import causal_conv1d_fn, causal_conv1d_update
from ._scan import selective_scan_fn
from ._decode import selective_state_update

__all__ = ["__version__", "cuda_device_count", "selective_scan_fn", "causal_conv1d_fn",
           "causal_conv1d_update", "selective_state_update"]
