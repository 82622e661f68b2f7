"""Which GAN checkpoints a run keeps on disk, and which generators the app offers.

A run keeps: the latest generator + state pair (to resume), the best generator (lowest
`sample_l1`, see core.gan.train), and the generator of every Nth epoch, all within a disk
budget; everything else is deleted after each save. A small dataset finishes an epoch every
few steps, and writing one pair per epoch once filled 1.3 GB in a minute.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

_EPOCH = re.compile(r"^(generator|state)_epoch_(\d+)\.pth$")
# The policy's defaults (GanConfig.keep_every, .checkpoint_budget_mb); `usage` falls back to them
# for a run whose run.json does not name them.
KEEP_EVERY = 10
BUDGET_MB = 512.0


@dataclass
class CheckpointUsage:
    """What a run's checkpoints folder holds, for the page and the CLI."""

    files: int
    bytes: int
    budget_bytes: int
    keep_every: int
    latest: Optional[str] = None
    best: Optional[str] = None
    generators: list[str] = field(default_factory=list)

    def summary(self) -> str:
        mb = self.bytes / 2**20
        budget = self.budget_bytes / 2**20
        over = " (over budget: latest + best alone are larger)" if self.bytes > self.budget_bytes else ""
        return (f"{self.files} checkpoint files, {mb:.1f} MB of a {budget:.0f} MB budget{over}: latest, best"
                f" and every {self.keep_every}th epoch are kept, older ones are pruned.")


def _read(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_best(ckpt_dir: Path) -> Optional[dict]:
    """The `best.json` record ({generator, epoch, step, sample_l1}) or None."""
    return _read(Path(ckpt_dir) / "best.json")


def update_best(ckpt_dir: Path, generator: str, *, epoch: int, step: int, score: Optional[float]) -> Optional[dict]:
    """Record `generator` as best when its score (lower is better) beats the recorded one."""
    from core.gan.runs import _write_json

    best = read_best(ckpt_dir)
    if score is not None and (best is None or best.get("sample_l1") is None or score < best["sample_l1"]):
        best = {"generator": generator, "epoch": epoch, "step": step, "sample_l1": round(float(score), 6)}
        _write_json(Path(ckpt_dir) / "best.json", best)
    return best


def prune(ckpt_dir: Path, *, keep_every: int, budget_bytes: int) -> list[Path]:
    """Delete checkpoints the policy does not keep; returns what was deleted.

    Called after latest.json and best.json point at their files, so a crash mid-prune only
    leaves extra files that the next call removes.
    """
    ckpt_dir = Path(ckpt_dir)
    latest = _read(ckpt_dir / "latest.json") or {}
    best = read_best(ckpt_dir) or {}
    pinned = {latest.get("generator"), latest.get("state"), best.get("generator")} - {None}
    removed: list[Path] = []
    periodic: list[tuple[int, Path]] = []
    for path in ckpt_dir.glob("*.pth"):
        if path.name in pinned:
            continue
        m = _EPOCH.match(path.name)
        if m and m.group(1) == "generator" and keep_every > 0 and int(m.group(2)) % keep_every == 0:
            periodic.append((int(m.group(2)), path))
        else:
            removed.append(path)
    for path in removed:
        path.unlink(missing_ok=True)
    # Over budget: the oldest periodic generators go first; latest and best always stay.
    total = sum(p.stat().st_size for p in ckpt_dir.glob("*.pth"))
    for _, path in sorted(periodic):
        if total <= budget_bytes:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def usage(run_dir: Path) -> CheckpointUsage:
    """Files and bytes in a run's checkpoints folder, against the budget the run was started with."""
    config = ((_read(Path(run_dir) / "run.json") or {}).get("config") or {})
    keep_every = int(config.get("keep_every", KEEP_EVERY))
    budget_mb = float(config.get("checkpoint_budget_mb", BUDGET_MB))
    ckpt_dir = Path(run_dir) / "checkpoints"
    files = sorted(ckpt_dir.glob("*.pth")) if ckpt_dir.is_dir() else []
    latest, best = _read(ckpt_dir / "latest.json") or {}, read_best(ckpt_dir) or {}
    return CheckpointUsage(len(files), sum(p.stat().st_size for p in files), int(budget_mb * 2**20), keep_every,
                           latest.get("generator"), best.get("generator"),
                           [p.name for p in files if p.name.startswith("generator_")])


def _epoch_of(name: str) -> int:
    m = re.search(r"_(?:epoch|step)_(\d+)\.pth$", name)
    return int(m.group(1)) if m else -1


def generator_choices(data_dir: Path) -> list[tuple[str, Path]]:
    """(label, path) of every kept generator, newest run first and, within a run, latest first.

    The label says which one is the latest and which the best, so the default (the first) is
    the newest run's latest generator.
    """
    from core.gan.runs import list_runs

    def changed(run: Path) -> int:
        for name in ("checkpoints/latest.json", "run.json"):
            if (run / name).is_file():
                return (run / name).stat().st_mtime_ns
        return 0

    out = []
    for run in sorted(list_runs(data_dir), key=changed, reverse=True):
        ckpt_dir = run / "checkpoints"
        latest, best = _read(ckpt_dir / "latest.json") or {}, read_best(ckpt_dir) or {}
        gens = sorted(ckpt_dir.glob("generator_*.pth"), key=lambda p: (p.name == latest.get("generator"), p.stat().st_mtime_ns), reverse=True)
        for path in gens:
            tags = [t for t, rec in (("latest", latest), ("best", best)) if rec.get("generator") == path.name]
            out.append((f"{run.name} / {path.name}" + (f" ({', '.join(tags)})" if tags else ""), path))
    return out
