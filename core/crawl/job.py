"""A collect job: crawl, then ingest what was saved, on a background thread the UI can poll and cancel."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from core.crawl.config import CrawlConfig, CrawlReport

# ingest(paths, on_progress, cancel) -> a summary line; the caller decides which services it uses.
IngestFn = Callable[[list[Path], Callable[..., None], threading.Event], str]


@dataclass
class JobSnapshot:
    """What the page shows; a copy, safe to read while the job runs."""

    state: str  # "running", "ingesting", "done", "cancelled", "failed"
    pages_visited: int = 0
    images_found: int = 0
    saved: int = 0
    skipped: int = 0
    done: int = 0
    total: int = 0
    current_url: str = ""
    skipped_items: list[dict] = field(default_factory=list)
    saved_paths: list[str] = field(default_factory=list)
    ingest_summary: str = ""
    error: str = ""
    warning: str = ""  # nothing saved because start pages failed: why, and which control to change
    stopped_by: str = ""
    elapsed_s: float = 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "failed")


class CollectJob:
    """Runs `crawl(config)` and then `ingest(saved paths)` on its own thread."""

    def __init__(self, config: CrawlConfig, ingest: Optional[IngestFn] = None):
        self.id = uuid.uuid4().hex[:12]
        self.config = config
        self.ingest = ingest
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._snap = JobSnapshot(state="running")
        self._t0 = time.monotonic()
        self.report: Optional[CrawlReport] = None
        self._thread = threading.Thread(target=self._run, name=f"collect-{self.id}", daemon=True)

    def start(self) -> "CollectJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop soon; what is done stays done, a rerun resumes."""
        self.cancel_event.set()

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            snap = JobSnapshot(**{k: (list(v) if isinstance(v, list) else v) for k, v in self._snap.__dict__.items()})
        snap.elapsed_s = time.monotonic() - self._t0
        return snap

    def _update(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self._snap, k, v)

    def _on_progress(self, done: int, total: int, **info) -> None:
        self._update(done=done, total=total, pages_visited=info.get("pages_visited", 0), images_found=info.get("images_found", 0),
                     saved=info.get("saved", 0), skipped=info.get("skipped", 0), current_url=info.get("url", ""))

    def _run(self) -> None:
        from core.crawl.crawler import crawl

        try:
            report = crawl(self.config, on_progress=self._on_progress, cancel=self.cancel_event)
        except Exception as exc:  # shown on the page; the thread must not die silently
            self._update(state="failed", error=f"{type(exc).__name__}: {exc}")
            return
        self.report = report
        self._update(pages_visited=report.pages_visited, images_found=report.images_found, saved=len(report.saved),
                     skipped=len(report.skipped), stopped_by=report.stopped_by, warning=report.start_problem,
                     skipped_items=[{"kind": s.kind, "url": s.url, "reason": s.reason, "page": s.page_url} for s in report.skipped],
                     saved_paths=[str(p.path) for p in report.saved])
        from core.crawl.state import saved_paths_for

        # Everything this job ever saved, so photos of an interrupted earlier run get ingested too
        # (ingest skips unchanged files cheaply).
        paths = saved_paths_for(self.config)
        if self.ingest is not None and paths and not self.cancel_event.is_set():
            self._update(state="ingesting", done=0, total=len(paths))
            try:
                summary = self.ingest(paths, lambda done, total, **_: self._update(done=done, total=total), self.cancel_event)
            except Exception as exc:
                self._update(state="failed", error=f"crawl finished but ingest failed: {type(exc).__name__}: {exc}")
                return
            self._update(ingest_summary=summary)
        self._update(state="cancelled" if report.cancelled or self.cancel_event.is_set() else "done")


def ingest_with(services) -> IngestFn:
    """An ingest step that adds crawled photos to the catalog and index of `services`."""

    def run(paths: list[Path], on_progress, cancel) -> str:
        from core.ingest import ingest_paths

        report = ingest_paths(services, paths, source="crawl", on_progress=on_progress, cancel=cancel)
        return report.summary()

    return run
