"""Which device a run uses: ``--device auto`` tries CUDA, then Apple's GPUs (MPS), then the CPU.

On MPS some operators are missing on some macOS versions; ``prepare_environment`` (called by
the ``dynasketch`` command before torch is imported) sets ``PYTORCH_ENABLE_MPS_FALLBACK=1`` so
that torch runs those on the CPU instead of failing. The engine keeps float64 work (stroke
geometry in source pixels, line extraction) in NumPy on the CPU, and the CLIP encoder runs in
bf16 on CUDA only (fp32 elsewhere: bf16 on MPS needs macOS 14).
"""
from __future__ import annotations

import os
import sys

CHOICES = ("auto", "cpu", "cuda", "mps")


def prepare_environment(environ=os.environ, platform: str = sys.platform) -> None:
    """Before torch is imported: on macOS, let operators MPS lacks fall back to the CPU
    (unless the user set the variable)."""
    if platform == "darwin":
        environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(name: str, cuda: bool | None = None, mps: bool | None = None):
    """The ``torch.device`` for ``--device name``; ``cuda`` and ``mps`` say whether those are
    usable (default: ask torch)."""
    import torch

    from .errors import EngineError

    if name not in CHOICES:
        raise EngineError(f"--device {name!r}: choose {', '.join(CHOICES)}")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    mps = mps_available() if mps is None else mps
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise EngineError("--device cuda: no usable CUDA GPU here; use --device cpu or auto "
                          "(`dynasketch doctor` says why)")
    if name == "mps" and not mps:
        raise EngineError("--device mps: no usable Apple GPU here (it needs macOS 12.3+ on Apple "
                          "silicon and a torch built with MPS); use --device cpu or auto")
    return torch.device(name)


def encoder_dtype(device):
    """What the CLIP encoder computes in on ``device``: bf16 on CUDA, fp32 elsewhere."""
    import torch

    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
