"""Saving a retrieval index as `<arrays>.npz` + `index.json`, the json naming the npz's checksum.

Both index kinds use this, so an interrupted save or a foreign folder is caught the same way.
No pickle: arrays are loaded with allow_pickle=False.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np


def save_index(directory: Path, npz_name: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write the arrays, then the metadata (with their checksum), each atomically."""
    from core.images import atomic_write_bytes

    directory = Path(directory)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(directory / npz_name, data)
    meta = {**meta, "arrays_sha256": hashlib.sha256(data).hexdigest()}
    atomic_write_bytes(directory / "index.json", json.dumps(meta).encode("utf-8"))
    return directory


def load_index(directory: Path, npz_name: str, kind: str, schema: int) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a saved index; a clear error when missing, foreign or inconsistent."""
    directory = Path(directory)
    meta_path, npz_path = directory / "index.json", directory / npz_name
    if not meta_path.is_file() or not npz_path.is_file():
        raise FileNotFoundError(f"no {kind} index in '{directory}' (index.json + {npz_name}); build one first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("kind") != kind or meta.get("schema") != schema:
        raise ValueError(f"'{directory}' holds a {meta.get('kind')} index of schema {meta.get('schema')}; rebuild it with this version")
    data = npz_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("arrays_sha256"):
        raise ValueError(f"'{npz_path}' does not match its index.json (interrupted save?); rebuild the index")
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return meta, {k: z[k] for k in z.files}
