"""Saving uploaded files into the library: validated first, safe names, never overwriting."""
from __future__ import annotations

from pathlib import Path

from core.crawl.files import safe_component  # one safe-name rule for the whole app (re-exported)


def save_uploads(files: list[tuple[str, bytes]], directory: Path, *, min_size: int = 1, max_pixels: int = 64_000_000) -> tuple[list[Path], list[tuple[str, str]]]:
    """Validate uploaded files and save them safely under `directory`; returns (saved paths, (name, reason) skips)."""
    from core.crawl.files import ImageRejected, check_image, save_unique

    saved, skipped = [], []
    for name, data in files:
        try:
            checked = check_image(data, "", min_width=min_size, min_height=min_size, max_pixels=max_pixels)
        except ImageRejected as exc:
            skipped.append((name, exc.reason))
            continue
        stem = safe_component(Path(name).stem, "upload", max_len=60)
        saved.append(save_unique(Path(directory), stem, checked.ext, data, checked.sha256).resolve())
    return saved, skipped
