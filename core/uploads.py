"""Saving uploaded files into the library with safe, non-clobbering names."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from core.images import atomic_write_bytes, sha256_bytes


def safe_filename(name: str, default: str = "photo") -> str:
    """A plain file name: no folders, no traversal, no hidden or odd characters."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "_", stem).strip(" ._-")[:100] or default
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix or "") else ""
    return stem + suffix


def save_uploads(folder: Path, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write (name, bytes) pairs into `folder`; identical content is not written twice, other content never overwritten."""
    folder = Path(folder)
    out = []
    for name, data in files:
        target = folder / safe_filename(name)
        n = 1
        while target.exists():
            if target.read_bytes() == data:
                break
            target = folder / f"{Path(safe_filename(name)).stem}-{sha256_bytes(data)[:8]}{'-' + str(n) if n > 1 else ''}{target.suffix}"
            n += 1
        if not target.exists():
            atomic_write_bytes(target, data)
        out.append(target)
    return out
