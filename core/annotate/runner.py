"""Batch annotation runs: progress, cancel, resume (done photos skipped), a report.

Each batch's results are written in one transaction as soon as the batch completes, then
copied into Chroma metadata. A killed run loses at most the batch in flight; the rerun
skips every (photo, annotator, version) already stored as 'ok' and retries the failures.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Sequence

from core import annotations as ann
from core.annotate.base import AnnotationResult, Annotator
from core.catalog import Photo
from core.pathnames import display_path

ProgressFn = Callable[..., None]


@dataclass
class RunReport:
    annotator: str
    version: str
    total: int = 0  # photos asked for
    already_done: int = 0  # skipped: done by this annotator version before
    done: int = 0  # annotated in this run
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (photo id, filename, reason)
    cancelled: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        s = (f"{self.annotator} {self.version}: {self.done} annotated, {self.already_done} already done, "
             f"{len(self.failed)} failed of {self.total} in {self.seconds:.1f}s")
        return s + (" (cancelled: rerun to resume)" if self.cancelled else "")

    def as_dict(self) -> dict:
        return {"annotator": self.annotator, "version": self.version, "total": self.total, "already_done": self.already_done,
                "done": self.done, "failed": [{"photo_id": i, "filename": f, "reason": r} for i, f, r in self.failed],
                "cancelled": self.cancelled, "seconds": round(self.seconds, 3)}


def annotate_batch(annotator: Annotator, ids: Sequence[str], photos_by_id: dict[str, Photo], max_pixels: int) -> list[AnnotationResult]:
    """One result per id: load the images (when the annotator needs them) and annotate; never raises.

    The one body of a batch, in this process or on a Ray worker (core.annotate.on_ray), so both
    give the same results for the same photos."""
    from core.images import ImageError, load_rgb

    photos, images, results_pre = [], [], []
    for pid in ids:
        photo = photos_by_id.get(pid)
        if photo is None:
            results_pre.append(AnnotationResult(pid, error="not in the catalog"))
            continue
        image = None
        if annotator.needs_image:
            try:
                image = load_rgb(photo.path, max_pixels=max_pixels)
            except (ImageError, OSError) as exc:
                results_pre.append(AnnotationResult(pid, error=f"cannot read {display_path(photo.path)}: {getattr(exc, 'reason', exc)}"))
                continue
        photos.append(photo)
        images.append(image)
    try:
        return results_pre + (annotator.annotate(photos, images) if photos else [])
    except Exception as exc:  # one broken batch must not end the run: record it and go on
        return results_pre + [AnnotationResult(p.id, error=f"annotator failed: {type(exc).__name__}: {exc}") for p in photos]


Batch = tuple[list[str], dict[str, Photo]]  # photo ids, and the catalog's photos for them
# (batches, annotator, max_pixels, cancel) -> one list of results per batch, in any order
AnnotateExecutor = Callable[..., Iterator[list[AnnotationResult]]]


def in_process(batches: Iterable[Batch], *, annotator: Annotator, max_pixels: int,
               cancel: Optional[threading.Event] = None) -> Iterator[list[AnnotationResult]]:
    """The default executor: batch after batch in this process."""
    for ids, photos_by_id in batches:
        if cancel is not None and cancel.is_set():
            return
        yield annotate_batch(annotator, ids, photos_by_id, max_pixels)


def run_annotations(services, annotator: Annotator, photo_ids: Optional[Iterable[str]] = None, *, batch_size: Optional[int] = None,
                    force: bool = False, on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
                    topic_universe: Sequence[str] = (), executor: Optional[AnnotateExecutor] = None) -> RunReport:
    """Annotate photos (default: every photo in the catalog) with `annotator`; resumable and cancellable.

    `executor` computes the results of the batches (default: this process; core.annotate.on_ray runs them
    on a Ray cluster); they are written here, as they arrive, through the one idempotent store path."""
    started = time.monotonic()
    catalog = services.catalog
    ann.ensure_schema(catalog)
    ids = list(dict.fromkeys(photo_ids)) if photo_ids is not None else catalog.photo_ids()
    report = RunReport(annotator.name, annotator.version, total=len(ids))
    if force:
        ann.reset_annotator(catalog, annotator.name, version=annotator.version, photo_ids=ids)
    done_before = ann.done_ids(catalog, annotator.name, annotator.version)
    todo = [i for i in ids if i not in done_before]
    report.already_done = len(ids) - len(todo)
    n = batch_size or getattr(annotator, "batch_size", None) or services.settings.batch_size
    lib = ann.library_dir_of(catalog)
    universe = list(topic_universe) or list(getattr(annotator, "topic_names", []))
    progress = on_progress or (lambda *a, **k: None)
    progress(report.already_done, report.total, failed=0)
    # Lazy: a local run reads one batch of the catalog at a time.
    batches = ((todo[s:s + n], catalog.get_many(todo[s:s + n])) for s in range(0, len(todo), n))
    run = executor or in_process
    for results in run(batches, annotator=annotator, max_pixels=services.settings.max_image_pixels, cancel=cancel):
        ann.record_results(catalog, annotator.name, annotator.version, results)
        ok_ids = [r.photo_id for r in results if r.ok]
        if ok_ids:
            ann.sync_chroma(catalog, services.store, ok_ids, topic_universe=universe)
        failed = [r for r in results if not r.ok]
        named = catalog.get_many([r.photo_id for r in failed]) if failed else {}
        for r in failed:
            p = named.get(r.photo_id)
            report.failed.append((r.photo_id, ann.photo_filename(p, lib) if p else r.photo_id, r.error or "unknown error"))
        report.done += len(ok_ids)
        progress(report.already_done + report.done + len(report.failed), report.total, failed=len(report.failed))
    report.cancelled = report.done + len(report.failed) < len(todo)
    report.seconds = time.monotonic() - started
    return report


def reset_results(services, annotator: str, *, version: Optional[str] = None, photo_ids: Optional[Iterable[str]] = None) -> int:
    """Forget one annotator's results and refresh the Chroma metadata of the photos touched."""
    touched = ann.reset_annotator(services.catalog, annotator, version=version, photo_ids=photo_ids)
    ann.sync_chroma(services.catalog, services.store, touched)
    return len(touched)


def make_annotator(name: str, services, **options) -> Annotator:
    """'zeroshot' (local, the active backend) or 'vlm-api' (settings from env / secrets.toml)."""
    if name == "zeroshot":
        from core.annotate.zeroshot import ZeroShotAnnotator

        return ZeroShotAnnotator(services.backend)
    if name in ("vlm-api", "vlm", "api"):
        from core.annotate.vlm_api import VlmAnnotator, VlmSettings

        return VlmAnnotator(VlmSettings(**options))
    raise ValueError(f"unknown annotator {name!r}; choose one of: zeroshot, vlm-api")
