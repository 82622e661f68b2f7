"""Training from a source (folder, library class, shapes) as one call, and as a background job."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.gan import GanError
from core.gan.train import GanConfig, TrainResult, train


@dataclass
class TrainSource:
    """What to train on: a folder of photos, a library class, or the generated shapes set."""

    kind: str  # "folder" | "library" | "shapes"
    value: str  # folder path, class name, or number of shapes images

    def describe(self) -> str:
        return {"folder": f"folder {self.value}", "library": f"library class '{self.value}'", "shapes": f"{self.value} generated shapes"}.get(self.kind, self.kind)


def prepare_data(source: TrainSource, resolution: int, backend, *, catalog=None, library_dir: Optional[Path] = None,
                 max_pixels: int = 64_000_000, on_progress: Optional[Callable[..., None]] = None):
    """(ImageSet, conditions) for a source, conditions from the backend (see core.gan.data)."""
    from core.gan import data

    def stage(name):
        return (lambda done, total, **kw: on_progress(done, total, stage=name, **kw)) if on_progress else None

    if source.kind == "folder":
        images = data.load_image_folder(Path(source.value), resolution, max_pixels=max_pixels, on_progress=stage("load"))
    elif source.kind == "library":
        if catalog is None:
            raise GanError("training on a library class needs the catalog")
        images = data.load_library_class(catalog, source.value, resolution, library_dir=library_dir, max_pixels=max_pixels)
    elif source.kind == "shapes":
        try:
            n = int(source.value)
        except ValueError:
            raise GanError(f"shapes source needs a number of images, got {source.value!r}") from None
        images, _ = data.shapes_image_set(n, resolution)
    else:
        raise GanError(f"unknown training source {source.kind!r}; choose folder, library or shapes")
    conditions = data.conditions_from_backend(backend, images, on_progress=stage("embed"))
    return images, conditions


def train_from_source(source: TrainSource, backend, config: GanConfig, run_dir: Path, *, resume: bool = False,
                      prompts: Optional[list[str]] = None, catalog=None, library_dir: Optional[Path] = None,
                      on_progress: Optional[Callable[..., None]] = None, cancel: Optional[threading.Event] = None) -> TrainResult:
    """Load a source, embed it with the backend and train; the one call the CLI and page make."""
    run_dir = Path(run_dir)
    if not resume and (run_dir / "run.json").exists():
        raise GanError(f"run folder '{run_dir}' already holds a training run; resume it or choose another run name. Nothing was overwritten")
    images, conditions = prepare_data(source, config.resolution, backend, catalog=catalog, library_dir=library_dir, on_progress=on_progress)
    sample = None
    if prompts:
        sample = np.asarray(backend.embed_texts([p for p in prompts if p.strip()][:8]), dtype=np.float32)

    def progress(done, total, **info):
        if on_progress:
            on_progress(done, total, stage="train", **info)

    result = train(images, conditions, config, run_dir, model_id=backend.model_id, sample_conditions=sample,
                   resume=resume, on_progress=progress, cancel=cancel)
    if images.skipped:
        from core.images import atomic_write_bytes

        lines = "".join(f"{name}\t{reason}\n" for name, reason in images.skipped)
        atomic_write_bytes(run_dir / "skipped.tsv", lines.encode("utf-8"))
    result.skipped = images.skipped
    return result


class TrainingJob:
    """`train_from_source` on a background thread, with progress a UI can poll and a stop button.

    Holds only plain data for readers: `progress` (dict), `result`, `error` (a user-facing string).
    """

    def __init__(self, target: Callable[..., TrainResult], kwargs: dict):
        self.run_dir = Path(kwargs["run_dir"])
        self.cancel = threading.Event()
        self.progress: dict = {"stage": "starting", "done": 0, "total": 0}
        self.result: Optional[TrainResult] = None
        self.error: Optional[str] = None
        self._kwargs = kwargs
        self._target = target
        self.thread = threading.Thread(target=self._run, name=f"gan-train-{self.run_dir.name}", daemon=True)

    def _on_progress(self, done: int, total: int, **info) -> None:
        self.progress = {"done": done, "total": total, **info}

    def _run(self) -> None:
        try:
            self.result = self._target(on_progress=self._on_progress, cancel=self.cancel, **self._kwargs)
        except GanError as exc:
            self.error = str(exc)
        except Exception as exc:  # a crash must reach the page, not vanish with the thread
            self.error = f"training failed: {type(exc).__name__}: {exc}"

    def start(self) -> "TrainingJob":
        self.thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self.cancel.set()


def start_training_job(source: TrainSource, backend, config: GanConfig, run_dir: Path, **kwargs) -> TrainingJob:
    """Start `train_from_source` in the background; returns at once."""
    return TrainingJob(train_from_source, dict(source=source, backend=backend, config=config, run_dir=run_dir, **kwargs)).start()
