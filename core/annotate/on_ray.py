"""Zero-shot annotation on a Ray cluster: `python -m core annotate run --ray auto|HOST:PORT`.

An executor for `core.annotate.runner.run_annotations`: each batch of photos (ids plus their
catalog rows, so workers never open the catalog) becomes one row of a Ray dataset; an actor
pool builds the backend and the zero-shot annotator (prompt embeddings included) once per
actor and runs the same `annotate_batch` as a local run. Only the results travel back; the
driver writes them through the one idempotent store path (`record_results` upserts on photo,
annotator and version), so a dead worker's batch that Ray runs again, or a killed job run
again, leaves every photo annotated exactly once. Photos must be readable at the same path by
every worker, as for ingest (core.cluster). Ray is imported only when this runs.
"""
from __future__ import annotations

import pickle
import threading
from typing import TYPE_CHECKING, Iterable, Iterator, Optional

from core.cluster import ClusterError, RayPool, actor_settings, require_ray

if TYPE_CHECKING:  # pragma: no cover
    from core.annotate.base import AnnotationResult, Annotator
    from core.annotate.runner import Batch
    from core.settings import Settings

ON_RAY = ("zeroshot",)  # annotators a worker can build from the settings alone


class _AnnotateWorker:
    """One per Ray actor: loads the backend and embeds the prompts once, then annotates batch after batch."""

    def __init__(self, settings: "Settings", threads: int):
        from core.annotate.zeroshot import ZeroShotAnnotator
        from models.registry import create_backend

        settings = actor_settings(settings, threads)
        self.annotator = ZeroShotAnnotator(create_backend(settings)[0])
        self.max_pixels = settings.max_image_pixels

    def __call__(self, batch: dict) -> dict:
        from core.annotate.runner import annotate_batch

        out = []
        for raw in batch["payload"]:
            ids, photos_by_id = pickle.loads(raw)
            results = annotate_batch(self.annotator, ids, photos_by_id, self.max_pixels)
            out.append(pickle.dumps((self.annotator.version, results), protocol=pickle.HIGHEST_PROTOCOL))
        return {"result": out}


class RayAnnotateExecutor(RayPool):
    """Run zero-shot annotation batches on a Ray cluster."""

    def __call__(self, batches: "Iterable[Batch]", *, annotator: "Annotator", max_pixels: int,
                 cancel: Optional[threading.Event] = None) -> "Iterator[list[AnnotationResult]]":
        if annotator.name not in ON_RAY:
            raise ClusterError(f"the {annotator.name} annotator does not run on Ray (only {', '.join(ON_RAY)}); run it without --ray")
        payloads = [pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL) for b in batches]
        if not payloads:
            return
        kwargs = {"settings": self.settings, "threads": self.cpus_per_worker}
        for raw in self.map(payloads, _AnnotateWorker, kwargs, cancel):
            version, results = pickle.loads(raw)
            # Results are stored under the driver's version: a worker with other models or prompts must not write there.
            if version != annotator.version:
                raise ClusterError(f"a Ray worker annotates as {version}, this machine as {annotator.version}: give every "
                                   "worker the same model files and packages as this machine (settings and code are sent from here)")
            yield results


def annotate_executor_for(settings: "Settings", ray_address: Optional[str], workers: Optional[int] = None) -> Optional[RayAnnotateExecutor]:
    """None (annotate in this process) unless a Ray address is given; Ray is not imported otherwise.

    Joins the cluster at once: a run with --force forgets the old results before its first batch,
    so a cluster that is down must stop it before that, not after."""
    if not ray_address:
        return None
    require_ray()
    executor = RayAnnotateExecutor(settings, ray_address, workers)
    executor.connect()
    return executor
