"""A training run's folder: where things are, and the atomic writes and reads of its files.

Layout (`<data_dir>/gan/<run_name>/` by default):
    run.json                        what was trained on what (backend model_id, dims, config)
    train_log.csv                   losses every `log_every` steps, metrics at epoch ends
    output/sample_epoch_N.png       fixed prompts x fixed noise, from the EMA generator
    checkpoints/generator_epoch_N.pth   generator + EMA generator + metadata (for generation)
    checkpoints/state_epoch_N.pth       discriminator + optimisers + step (for resuming)
    checkpoints/latest.json         which pair is newest
    checkpoints/best.json           which generator is best (lowest sample_l1)
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Optional

from core.gan import GanError

LOG_FIELDS = ["step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "d_mismatch", "steps_per_s", "elapsed_s"]


def run_dir_for(data_dir: Path, run_name: str) -> Path:
    """Default run folder; the name must be a plain folder name."""
    if not run_name or any(ch in run_name for ch in "/\\") or run_name in (".", ".."):
        raise GanError(f"run name {run_name!r} is not a plain folder name; use letters, digits, '-' or '_'")
    return Path(data_dir) / "gan" / run_name


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    from core.images import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _write_json(path: Path, obj: Any) -> None:
    from core.images import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(obj, indent=1, default=str).encode("utf-8"))


def _write_log(path: Path, rows: list[dict]) -> None:
    from core.images import atomic_write_bytes

    extra = sorted({k for r in rows for k in r} - set(LOG_FIELDS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS + extra, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def read_log(run_dir: Path) -> list[dict]:
    """The training log as a list of dicts (numbers parsed); [] when there is none yet."""
    path = Path(run_dir) / "train_log.csv"
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.append({k: (float(v) if v not in ("", None) else None) for k, v in row.items()})
    return rows


def latest_checkpoint(run_dir: Path) -> Optional[dict]:
    """The `latest.json` record of a run ({generator, state, step, epoch}) or None."""
    path = Path(run_dir) / "checkpoints" / "latest.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def list_generators(run_dir: Path) -> list[Path]:
    """Generator checkpoints of a run, oldest first."""
    ckpt = Path(run_dir) / "checkpoints"
    found = [p for p in ckpt.glob("generator_*.pth")]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns)


def list_runs(data_dir: Path) -> list[Path]:
    """Run folders under `<data_dir>/gan` that have written a run.json, newest first."""
    root = Path(data_dir) / "gan"
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / "run.json").is_file()]
    return sorted(runs, key=lambda p: (p / "run.json").stat().st_mtime_ns, reverse=True)


def latest_sample(run_dir: Path) -> Optional[Path]:
    """The newest `output/sample_epoch_N.png` of a run."""
    samples = list((Path(run_dir) / "output").glob("sample_epoch_*.png"))
    if not samples:
        return None
    return max(samples, key=lambda p: int(p.stem.rsplit("_", 1)[1]))
