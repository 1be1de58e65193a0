"""Torch devices named by users: checked up front, with a one-line error instead of a traceback.

``resolve_device("cuda")`` on a CPU-only torch, ``"cuda:3"`` on a one-GPU machine or
``"banana"`` raise :class:`~audiolatent.core.errors.DeviceError` naming the device and what
this machine has, before any model is built or data is read.
"""

from __future__ import annotations

import torch

from audiolatent.core.errors import DeviceError

__all__ = ["resolve_device", "available_devices"]


def available_devices() -> list[str]:
    """The device names this process can use: ``cpu``, then ``cuda:N`` / ``mps`` where present."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` that exists here (None: cpu)."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown device {str(device)!r}: use one of {', '.join(available_devices())}") from None
    here = ", ".join(available_devices())
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(device)!r}: CUDA is not available (this torch is "
                              f"{'a CPU-only build' if torch.version.cuda is None else 'without a visible GPU'}); "
                              f"available: {here}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} GPU(s); available: {here}")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"device {str(device)!r}: MPS is not available here; available: {here}")
    elif dev.type != "cpu":
        raise DeviceError(f"device {str(device)!r} is not supported: use one of {here}")
    return dev
