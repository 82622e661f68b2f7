"""Batch jobs on a Ray cluster: the same read -> decode -> embed stages, run by Ray Data.

`RayExecutor` plugs into `core.ingest.ingest_entries` (and so into folder ingest, path lists and
reindex) in place of the in-process executor. Each batch of files becomes one row of a Ray
dataset; an actor pool (one model load per actor, a GPU per actor when the cluster has them)
runs `read_batch` + `embed_batch` on it and sends back the embeddings, descriptions and a
thumbnail-sized copy of each photo. The driver writes them with the one idempotent
`write_batch`, so a Ray worker that dies is retried by Ray (its batch runs again, upserts the
same ids) and a job killed as a whole resumes from the catalog like a local one: every photo ends
up exactly once in the catalog and the index.

Photos must be readable at the same path by every worker (a shared mount), and the catalog
and index must be shared too (`PHOTOLORE_CATALOG_URL`/`CHROMA_HOST` on several machines; on one
machine the local data dir works). Ray is imported only here, only when asked for.

No job waits on a cluster that is not there: the address is checked before Ray is imported
(core.ray_address), joining has a deadline, and a head lost mid-job stops the job with a
ClusterError (what was written stays; a rerun does the rest).
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import queue
import threading
import time
from typing import TYPE_CHECKING, Iterator, Optional

# ClusterError lives with the address checks (they raise it before Ray is imported); callers import it from here.
from core.ray_address import START_HINT, ClusterError, ResolvedAddress, check_reachable, gcs_answers, keep_loopback, resolve

if TYPE_CHECKING:  # pragma: no cover
    from core.ingest_outcomes import Skip
    from core.stages import FileEntry, ReadItem
    from core.settings import Settings


# The whole of joining a cluster, TCP check included: past it the job fails, naming the address
# (12 s: a margin under the 15 s the README promises).
JOIN_DEADLINE_S = 12.0
# A running job whose next row takes longer than this asks whether the head still answers.
WATCH_EVERY_S = 5.0

_joined: Optional[ResolvedAddress] = None  # the cluster this process joined (None: not joined by us)
_joining: Optional[threading.Thread] = None  # a ray.init that ran past its deadline and may still be retrying


def _ray_keeps_loopback(ray) -> None:
    """Ray read RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it was first imported; when that happened
    before this job (an app process that imported Ray earlier), set the value it kept too, else it
    turns 127.0.0.1 into the machine's LAN address, where a loopback head never answers."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is not None and getattr(constants, "ENABLE_RAY_CLUSTER", False):
        constants.ENABLE_RAY_CLUSTER = False


def _ray_init(address: str) -> ResolvedAddress:
    """Join the cluster `address` names within JOIN_DEADLINE_S, or raise a ClusterError naming it and the fix.

    ray.init itself retries an address that nobody answers, or a head that accepts connections and
    never completes the handshake, for many minutes; so the address is checked first (core.ray_address)
    and ray.init runs in a thread that is given up on at the deadline."""
    global _joined, _joining
    import logging

    started = time.monotonic()
    resolved = resolve(address)
    check_reachable(resolved, timeout=3.0)
    keep_loopback(resolved)  # before `import ray`: Ray reads it once

    import ray

    import core
    import models
    import vectorstore

    if resolved.loopback:
        _ray_keeps_loopback(ray)
    if ray.is_initialized():
        if _joined is None or (_joined.host, _joined.port) == (resolved.host, resolved.port):
            return resolved  # joined already (or Ray was started by someone else in this process: theirs to keep)
        _leave(ray)  # a job for another cluster: this process can be in one only
    if _joining is not None and _joining.is_alive():
        raise ClusterError(f"an earlier attempt of this process to join a Ray cluster is still waiting; restart it to use "
                           f"the Ray cluster at '{resolved.address}'")
    failed: list[BaseException] = []

    def join() -> None:
        try:
            # py_modules ships PhotoLore's own code to every worker, so nodes need only the same
            # Python packages (the venv), not a checkout at the same path.
            ray.init(address=resolved.address, log_to_driver=False, logging_level="ERROR",
                     runtime_env={"py_modules": [core, models, vectorstore], "excludes": ["__pycache__"],
                                  "env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}})
        except BaseException as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError...: reported below
            failed.append(exc)

    thread = threading.Thread(target=join, name="photolore-ray-init", daemon=True)
    thread.start()
    thread.join(max(1.0, JOIN_DEADLINE_S - (time.monotonic() - started)))
    if thread.is_alive():
        _joining = thread
        raise ClusterError(f"cannot connect to the Ray cluster at '{resolved.address}': it accepts connections but this process "
                           f"could not join it within {JOIN_DEADLINE_S:.0f} s; check that a Ray head of the same version as this "
                           f"venv (Ray {ray.__version__}) runs there (`ray status --address {resolved.address}`), or {START_HINT}")
    if failed:
        raise ClusterError(f"cannot connect to the Ray cluster at '{resolved.address}' ({failed[0]}); {START_HINT}") from failed[0]
    _joined = resolved
    # Our own progress bar and report say what happened; Ray Data's per-operator log lines would bury them.
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return resolved


def _leave(ray, timeout: float = 10.0) -> None:
    """Disconnect from the cluster joined (a new job then joins afresh), given up on after `timeout` s when it hangs."""
    global _joined
    _joined = None
    thread = threading.Thread(target=ray.shutdown, name="photolore-ray-shutdown", daemon=True)
    thread.start()
    thread.join(timeout)


def actor_settings(settings: "Settings", threads: int) -> "Settings":
    """The driver's settings for an actor given `threads` CPUs: every compute pool is capped at them
    (core.threads, applied when the actor builds its models), else each sizes itself to the whole
    machine and actors that share it oversubscribe its cores."""
    return settings.model_copy(update={"threads": max(1, threads)})


class _EmbedWorker:
    """One per Ray actor: loads the backend once, then reads, decodes and embeds batch after batch."""

    def __init__(self, settings: "Settings", known: frozenset[str], threads: int):
        from PIL import Image

        from models.registry import create_backend

        self.settings = settings = actor_settings(settings, threads)
        self.known = known
        self.backend, _ = create_backend(settings)
        # What the backend loads on first use (face and text detectors, the image runtime it measures
        # once) loads now: Ray Data sends batches to an actor only once it is built, so its first
        # batch costs what every other one costs, and N actors start working together. (Four
        # photos: a batch big enough for the bundled backend's `auto` runtime to decide.)
        self.backend.encode([Image.new("RGB", (224, 224), (128, 128, 128))] * 4)

    def __call__(self, batch: dict) -> dict:
        from core.images import make_thumbnail
        from core.stages import embed_batch, read_batch

        out = []
        for k, raw in zip(batch["k"], batch["payload"]):
            entries = pickle.loads(raw)
            items, skips = read_batch(entries, max_pixels=self.settings.max_image_pixels, already_indexed=self.known,
                                      want_phash=self.settings.near_dup_threshold >= 0, max_side=self.settings.decode_max_side,
                                      thumb_size=self.settings.thumb_size)
            embedded = embed_batch(items, self.backend)
            # Only a thumbnail-sized copy travels back: the thumbnail is made already; the driver needs no pixels.
            items = [dataclasses.replace(it, decoded=dataclasses.replace(it.decoded, image=make_thumbnail(it.decoded.image, self.settings.thumb_size)))
                     if it.decoded is not None else it for it in items]
            out.append(pickle.dumps((k, items, skips, embedded), protocol=pickle.HIGHEST_PROTOCOL))
        return {"result": out}


def _pool_size(workers: Optional[int], cpus_per_worker: int) -> tuple[int, float]:
    """(actors, GPUs per actor): `workers` when given, else one per GPU when the cluster has any, else one per CPU."""
    import ray

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if workers:
        return workers, (1.0 if gpus >= workers else 0.0)
    if gpus:
        return gpus, 1.0
    return max(1, int(resources.get("CPU", 1) // cpus_per_worker)), 0.0


def map_on_actors(address: str, payloads: list[bytes], worker_cls: type, worker_kwargs: dict, *, workers: Optional[int] = None,
                  cpus_per_worker: int = 1, cancel: Optional[threading.Event] = None) -> Iterator[bytes]:
    """Run `worker_cls(**worker_kwargs)` on an actor pool over `payloads` (one row each); yield its outputs as they arrive.

    `worker_cls.__call__` takes a Ray Data batch {"k": [...], "payload": [...]} and returns {"result": [bytes, ...]}.
    Each actor is built once (one model load) and then serves row after row. A dead actor is restarted and
    its row retried, so the caller's write path must be idempotent. Stops after the current row when `cancel` is set,
    and with a ClusterError naming the address within about WATCH_EVERY_S + 5 s of the head going away."""
    resolved = _ray_init(address)
    import ray

    size, gpus = _pool_size(workers, cpus_per_worker)
    rows = [{"k": k, "payload": p} for k, p in enumerate(payloads)]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(worker_cls, batch_size=1, compute=ray.data.ActorPoolStrategy(size=size), fn_constructor_kwargs=worker_kwargs,
                        num_cpus=cpus_per_worker, num_gpus=gpus, max_restarts=-1, max_task_retries=-1)
    for row in _watched_rows(ds, resolved):
        yield row["result"]
        if cancel is not None and cancel.is_set():
            return


def _watched_rows(ds, resolved: ResolvedAddress) -> Iterator[dict]:
    """`ds.iter_rows()`, stopped with a ClusterError when the head goes away mid-job.

    When the head dies, iter_rows neither ends nor raises for minutes (Ray keeps reconnecting),
    so the rows are pulled in a thread and, whenever none has come for WATCH_EVERY_S, the GCS
    port is tried: twice closed and the job stops. What the driver wrote so far stays (every
    write is an idempotent upsert), and the same command run again does the rest."""
    import ray

    rows: queue.Queue = queue.Queue(maxsize=2)  # a row or two ahead, as iter_rows itself would be
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                rows.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for row in ds.iter_rows():
                if not put(("row", row)):
                    return  # the consumer stopped (cancelled, or the head was lost): leave iter_rows here
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(("error", exc))

    def lost() -> ClusterError:
        _leave(ray)  # a process that stays (the app) joins afresh next time; Ray would otherwise end it once GCS stays gone
        return ClusterError(f"lost the Ray cluster at '{resolved.address}' mid-job (nothing answers on its port any more): "
                            f"the photos done so far are kept; {START_HINT} again and rerun the same job to do the rest")

    thread = threading.Thread(target=pump, name="photolore-ray-rows", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = rows.get(timeout=WATCH_EVERY_S)
            except queue.Empty:
                if gcs_answers(resolved):
                    continue
                time.sleep(1.0)  # one refused connect may be a blip; two a second apart are a head that is gone
                if not gcs_answers(resolved):
                    raise lost() from None
                continue
            if kind == "row":
                yield value
            elif kind == "end":
                return
            else:
                if not gcs_answers(resolved):
                    raise lost() from value
                raise value
    finally:
        stop.set()


@dataclasses.dataclass
class RayPool:
    """Where and how wide a Ray job runs (`address`: "auto" or HOST:PORT of the head); the executors below build on it."""

    settings: "Settings"
    address: str = "auto"
    workers: Optional[int] = None  # actors in the pool; default: one per CPU the cluster has (GPUs when present)
    cpus_per_worker: int = 1

    def connect(self) -> "RayPool":
        """Join the cluster now (a ClusterError naming the fix when it is down) rather than at the first batch."""
        _ray_init(self.address)
        return self

    def map(self, payloads: list[bytes], worker_cls: type, worker_kwargs: dict,
            cancel: Optional[threading.Event] = None) -> Iterator[bytes]:
        """`map_on_actors` on this pool."""
        return map_on_actors(self.address, payloads, worker_cls, worker_kwargs, workers=self.workers,
                             cpus_per_worker=self.cpus_per_worker, cancel=cancel)


class RayExecutor(RayPool):
    """Run read + embed on a Ray cluster."""

    def __call__(self, batches: "list[list[FileEntry]]", *, backend, known: frozenset[str], written: set[str],
                 cancel: Optional[threading.Event] = None) -> "Iterator[tuple[int, list[ReadItem], list[Skip], dict]]":
        if not batches:
            return
        payloads = [pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL) for b in batches]
        kwargs = {"settings": self.settings, "known": known, "threads": self.cpus_per_worker}
        for result in self.map(payloads, _EmbedWorker, kwargs, cancel):
            yield pickle.loads(result)


def require_ray() -> None:
    """Ray is importable (else a ClusterError naming the fix); usage stats stay off."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise ClusterError("Ray is not installed: `pip install 'ray[data]'` in this venv and on every worker") from exc
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def executor_for(settings: "Settings", ray_address: Optional[str], workers: Optional[int] = None):
    """None (run locally) unless a Ray address is given; Ray is not imported otherwise."""
    if not ray_address:
        return None
    require_ray()
    return RayExecutor(settings, ray_address, workers)
