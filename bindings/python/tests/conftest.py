# ssmkit — state-space model kernels for CUDA.
# SPDX-License-Identifier: Apache-2.0
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "gpu: needs PyTorch with a CUDA device (skipped otherwise)")


def _gpu_unavailable_reason():
    try:
        import torch
    except ImportError as e:
        return f"torch is not importable ({e})"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False"
    return None


_REASON = []


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is None:
        return
    if not _REASON:
        _REASON.append(_gpu_unavailable_reason())
    if _REASON[0] is not None:
        pytest.skip(f"GPU test skipped: {_REASON[0]}")
