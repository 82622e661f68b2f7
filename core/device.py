"""The one place that picks a compute device."""
from __future__ import annotations

import glob
import os
import platform
import sys


def _accelerator_possible() -> bool:
    """Whether this machine could have a GPU torch can use, judged without importing torch.

    Importing torch only to hear "cpu" costs seconds and hundreds of MB of memory, which an ingest
    on ONNX Runtime never needs (models/bundled.py). No NVIDIA or AMD device node (Linux, WSL) and
    not Apple silicon means no CUDA, ROCm or MPS device.
    """
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return bool(glob.glob("/dev/nvidia*") or os.path.exists("/dev/kfd") or os.path.exists("/dev/dxg"))


def pick_device(preference: str = "auto") -> str:
    """Return a torch device string: `auto` means cuda, then mps, then cpu."""
    pref = (preference or "auto").lower()
    if pref == "cpu" or (pref == "auto" and not _accelerator_possible()):
        return "cpu"
    import torch

    if pref != "auto":
        if pref.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device '{preference}' was asked for but CUDA is not available; use 'auto' or 'cpu'")
        return pref
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
