"""The one place that picks a compute device."""
from __future__ import annotations


def pick_device(preference: str = "auto") -> str:
    """Return a torch device string: `auto` means cuda, then mps, then cpu."""
    import torch

    pref = (preference or "auto").lower()
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
