"""The best available captioner, captioning uploads, and saving captions into the library.

Order of preference: a trained captioner checkpoint under `<data_dir>/models/captioner/`
(newest `best.pt`), else the vision-language backend's tag-based description. Every captioner
has a `name` (shown next to each caption) and a `why` (shown once: why this one was chosen).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

from PIL import Image


class Captioner(Protocol):
    name: str
    why: str

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per PIL RGB image."""


def captioner_dir(settings) -> Path:
    """Where trained captioner runs live: one folder per run with best.pt / last.pt."""
    return Path(settings.models_dir) / "captioner"


def list_checkpoints(settings) -> list[Path]:
    """Every trained captioner checkpoint (best.pt first, then last.pt), newest first."""
    root = captioner_dir(settings)
    if not root.is_dir():
        return []
    # Runs are <root>/<run>/{best,last}.pt; <run>/features/ holds feature caches, not checkpoints.
    found = [p for p in [*root.glob("*.pt"), *root.glob("*/*.pt")] if p.is_file()]
    return sorted(found, key=lambda p: (p.name != "best.pt", -p.stat().st_mtime, str(p)))


class TrainedCaptioner:
    """A checkpoint from `core.captioning.train`, decoded with beam search by default."""

    def __init__(self, path: Path, *, device: str = "cpu", method: str = "beam", beam_size: int = 3,
                 clip_model: Any = None, why: str = ""):
        from core.captioning.model import load_trained

        self.model = load_trained(Path(path), device=device, clip_model=clip_model)
        self.path = Path(path)
        self.method, self.beam_size = method, beam_size
        cfg = self.model.config
        run = self.path.parent.name
        self.name = f"trained captioner '{run}/{self.path.name}' ({cfg.encoder} + {cfg.decoder})"
        self.why = why or f"a trained checkpoint exists at {self.path}"

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        return self.model.caption(list(images), method=self.method, beam_size=self.beam_size)


class BackendCaptioner:
    """The active vision-language backend's `describe()` (tag-based for the bundled backend)."""

    def __init__(self, backend: Any, why: str = ""):
        self.backend = backend
        self.name = f"{backend.name} backend description ({backend.model_id})"
        self.why = why

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        return [d.caption for d in self.backend.describe(list(images))] if images else []


def best_captioner(settings, backend: Any = None, *, checkpoint: Optional[Path] = None, clip_model: Any = None) -> Captioner:
    """A trained checkpoint when one exists (or `checkpoint` when given), else the backend's description."""
    from core.device import pick_device

    device = pick_device(getattr(settings, "device", "auto"))
    if clip_model is None and getattr(backend, "name", "") == "clip":
        clip_model = backend  # build_encoder takes the open_clip model from the backend's `.model`
    candidates = [Path(checkpoint)] if checkpoint else list_checkpoints(settings)
    skipped = []
    for path in candidates:
        try:
            return TrainedCaptioner(path, device=device, clip_model=clip_model,
                                    why=("the chosen checkpoint" if checkpoint else "the newest trained checkpoint") + f": {path}")
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            skipped.append(f"{path.name}: {exc}")
    why = f"no usable trained captioner under {captioner_dir(settings)}"
    if skipped:
        why += " (skipped " + "; ".join(skipped) + ")"
    if backend is None:
        from models.registry import create_backend

        backend, _choice = create_backend(settings)
    return BackendCaptioner(backend, why=why + f"; using the {backend.name} backend's description")


@dataclass
class CaptionOutcome:
    """One uploaded file: its caption, or why it could not be captioned."""

    name: str
    caption: Optional[str] = None
    captioner: Optional[str] = None
    error: Optional[str] = None
    sha256: Optional[str] = None
    image: Optional[Image.Image] = field(default=None, repr=False)
    data: Optional[bytes] = field(default=None, repr=False)


def caption_files(files: Sequence[tuple[str, bytes]], captioner: Captioner, *, max_pixels: int = 64_000_000,
                  batch_size: int = 16) -> list[CaptionOutcome]:
    """Decode and caption (name, bytes) pairs; a file that fails to decode is reported and skipped."""
    from core.images import ImageError, decode_image, sha256_bytes

    outcomes = []
    for name, data in files:
        try:
            img = decode_image(data, max_pixels=max_pixels, name=name).image
            outcomes.append(CaptionOutcome(name, sha256=sha256_bytes(data), image=img, data=data))
        except ImageError as exc:
            outcomes.append(CaptionOutcome(name, error=f"{name}: {exc.reason}"))
    good = [o for o in outcomes if o.error is None]
    for s in range(0, len(good), batch_size):
        chunk = good[s: s + batch_size]
        for o, cap in zip(chunk, captioner.caption([o.image for o in chunk])):
            o.caption, o.captioner = cap, captioner.name
    return outcomes


def caption_store_path(settings) -> Path:
    return Path(settings.data_dir) / "captions" / "captions.json"


CAPTIONER_SOURCE_PREFIX = "captioner:"


def save_captions(settings, outcomes: Sequence[CaptionOutcome], services: Any = None) -> int:
    """Save captioned photos into the library; returns how many photos got a new caption.

    With `services` (catalog + index + backend): uploaded bytes are saved under
    `<library>/uploads/`, ingested (idempotent: same bytes, same photo id), and the caption is
    stored in the catalog with source `captioner:<name>`. Without services (no catalog at hand):
    the photo bytes go to the same folder and the captions to a JSON store keyed by content hash.
    Reruns add nothing twice.
    """
    good = [o for o in outcomes if not o.error and o.caption and o.sha256]
    if not good:
        return 0
    if services is not None:
        return _save_to_catalog(settings, good, services)
    return _save_to_json(settings, good)


def _save_to_catalog(settings, outcomes: Sequence[CaptionOutcome], services: Any) -> int:
    from core.ingest import ingest_paths
    from core.uploads import save_uploads

    catalog = services.catalog
    existing = catalog.get_many([o.sha256 for o in outcomes])
    uploads = [o for o in outcomes if o.sha256 not in existing and o.data is not None]
    if uploads:
        paths, _rejected = save_uploads([(o.name, o.data) for o in uploads], Path(settings.library_dir) / "uploads",
                                        max_pixels=settings.max_image_pixels)
        ingest_paths(services, paths, source="upload")
    from core.library import set_captions

    changed = 0
    by_captioner: dict[str, list[tuple[str, str]]] = {}
    for o in outcomes:
        by_captioner.setdefault(f"{CAPTIONER_SOURCE_PREFIX}{o.captioner or ''}", []).append((o.sha256, o.caption))
    for source, items in by_captioner.items():
        changed += set_captions(services, items, source)  # catalog + caption embeddings: searchable at once
    return changed


def _save_to_json(settings, outcomes: Sequence[CaptionOutcome]) -> int:
    from core.images import atomic_write_bytes
    from core.uploads import save_uploads

    store = caption_store_path(settings)
    entries: dict = json.loads(store.read_text("utf-8")) if store.is_file() else {}
    added = 0
    for o in outcomes:
        entry = entries.setdefault(o.sha256, {"captions": []})
        if o.data is not None and not (entry.get("path") and Path(entry["path"]).is_file()):
            saved, rejected = save_uploads([(o.name, o.data)], Path(settings.library_dir) / "uploads", max_pixels=settings.max_image_pixels)
            if not saved:
                continue  # the bytes are no usable image: nothing to caption
            entry["path"] = str(saved[0])
        entry.setdefault("name", o.name)
        pair = {"text": o.caption, "captioner": o.captioner or ""}
        if pair not in entry["captions"]:
            entry["captions"].append(pair)
            added += 1
    atomic_write_bytes(store, json.dumps(entries, indent=1, sort_keys=True).encode("utf-8"))
    return added


class TrainingJob:
    """A training run on a background thread: live history, status, error, and a Stop (cancel) event."""

    def __init__(self, data_loader, cfg, out_dir: Path):
        import threading

        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.cancel = threading.Event()
        self.history: list[dict] = []
        self.progress: dict = {}
        self.problems: list[str] = []
        self.status = "starting"
        self.error: Optional[str] = None
        self.result = None
        self._data_loader = data_loader
        self._thread = threading.Thread(target=self._run, name=f"caption-train-{self.out_dir.name}", daemon=True)

    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    def _on_progress(self, done, total, phase="train", **info) -> None:
        if phase == "epoch":
            self.history.append(dict(info))
        self.progress = {"phase": phase, "done": done, "total": total, **info}

    def _run(self) -> None:
        from core.captioning.train import train

        try:
            self.status = "loading data"
            data = self._data_loader()
            self.problems = [str(p) for p in data.problems]
            self.status = "running"
            self.result = train(data, self.cfg, self.out_dir, on_progress=self._on_progress, cancel=self.cancel)
            self.history = list(self.result.history)
            self.problems = [str(p) for p in self.result.problems]
            self.status = self.result.status
        except Exception as exc:  # surfaced on the page; the thread must not die silently
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = "failed"


def start_training(data_loader, cfg, out_dir: Path) -> TrainingJob:
    """Start `train()` on a background thread; `data_loader()` builds the CaptionSet inside it."""
    return TrainingJob(data_loader, cfg, out_dir).start()
