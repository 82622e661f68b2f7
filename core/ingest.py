"""Ingest: scan -> read & decode -> embed -> write, as batch stages.

`read_batch` and `embed_batch` (core.stages) are functions of their inputs only, run by an
executor in this process or on a Ray cluster (core.cluster). `write_batch` is the one stage with
side effects, run by the driver here, and it is
idempotent: vectors are upserted first, then the catalog rows are committed in one SQLite
transaction. A process killed at any point leaves at worst vectors whose catalog rows are
missing; the rerun re-reads those files and upserts the same ids again, so every photo ends up
exactly once in both the catalog and the index.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from core.catalog import Catalog, FileRecord, Photo, now_iso
from core.images import NOT_READ_PREFIX, atomic_write_bytes, jpeg_bytes, make_thumbnail, unread_reason
from core.ingest_outcomes import FileOutcome, NearDup, Skip, record_outcomes, split_near_duplicates
from core.neardup import backfill as backfill_phashes
from core.neardup import to_hex
from core.pathnames import display_path
from core.stages import BatchExecutor, FileEntry, LocalExecutor, ReadItem, embed_batch, read_batch  # noqa: F401 (re-exported)

ProgressFn = Callable[..., None]


@dataclass
class IngestReport:
    scanned: int = 0
    unchanged: int = 0
    added: int = 0  # new photos written to catalog + index
    new_paths: int = 0  # duplicates or renames of photos already known
    reindexed: int = 0
    skipped: list[Skip] = field(default_factory=list)
    pruned: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    photo_ids: list[str] = field(default_factory=list)
    near_duplicates: list[NearDup] = field(default_factory=list)
    ignored: list[Skip] = field(default_factory=list)  # seen but not read: not an image type PhotoLore reads
    unscanned: int = 0  # files seen but never handed to the read stage (ignored, RAW, unreadable folders or paths)
    files: list[FileOutcome] = field(default_factory=list)  # every file seen, in scan order per batch

    def reason_counts(self) -> dict[str, int]:
        """How many files ended each way; skip reasons grouped by their words before the first colon."""
        counts: dict[str, int] = {}
        for f in self.files:
            key = f.status
            if f.status in ("skipped", "not read"):
                key = f"{f.status}: {f.detail.split(':')[0].split(' (')[0]}"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        parts = [f"{self.scanned + self.unscanned} files seen", f"{self.added} new photos", f"{self.new_paths} duplicates/renames",
                 f"{len(self.near_duplicates)} near duplicates", f"{self.unchanged} unchanged", f"{len(self.skipped)} skipped",
                 f"{len(self.ignored)} not image files"]
        if self.reindexed:
            parts.append(f"{self.reindexed} re-indexed")
        if self.pruned:
            parts.append(f"{self.pruned} paths gone")
        text = ", ".join(parts) + f" in {self.seconds:.1f}s"
        return text + (" (cancelled: run again to resume)" if self.cancelled else "")


# --- stage 0: scan ---------------------------------------------------------------------------
def scan(root: Path, *, exclude: Sequence[Path] = (), unread: Optional[list[Skip]] = None) -> Iterator[FileEntry]:
    """Image files under `root`, recursively, in a stable order; class = first sub-folder.

    Every other file (and folder that cannot be listed) is appended to `unread` with the reason,
    so a report can account for everything it saw. Names may be any bytes (see core.pathnames).
    """
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"folder not found: {display_path(root)}")
    if root.is_file():
        st = root.stat()
        yield FileEntry(str(root), st.st_size, st.st_mtime_ns, "")
        return
    excluded = {str(Path(e).resolve()) for e in exclude}

    def walk_error(exc: OSError) -> None:
        if unread is not None:
            unread.append(Skip(str(exc.filename or root), f"cannot read folder: {exc.strerror or exc}; check its permissions"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and str(Path(dirpath, d)) not in excluded)
        rel = Path(dirpath).relative_to(root)
        class_name = rel.parts[0] if rel.parts else ""
        for name in sorted(filenames):
            reason = unread_reason(name)
            if reason:
                if unread is not None:
                    unread.append(Skip(str(Path(dirpath, name)), reason))
                continue
            path = Path(dirpath, name)
            try:
                st = path.stat()
            except OSError:
                st = None
            yield FileEntry(str(path), st.st_size if st else -1, st.st_mtime_ns if st else -1, class_name)


# --- stage 3: write (idempotent) --------------------------------------------------------------------
def write_batch(items: Sequence[ReadItem], embedded: dict[str, tuple], *, catalog: Catalog, store, backend, thumbs_dir: Path,
                thumb_size: int, source: str, class_override: Optional[str] = None) -> tuple[int, int]:
    """Thumbnails, then vectors, then catalog rows. Returns (photos added, paths added to known photos)."""
    photos: dict[str, Photo] = {}
    for it in items:
        if it.photo_id not in embedded or it.photo_id in photos:
            continue
        d = it.decoded
        thumb = Path(thumbs_dir) / it.photo_id[:2] / f"{it.photo_id}.jpg"
        if not thumb.exists():
            atomic_write_bytes(thumb, it.thumbnail or jpeg_bytes(make_thumbnail(d.image, thumb_size, alpha=d.alpha)))
        desc = embedded[it.photo_id][1]
        photos[it.photo_id] = Photo(
            id=it.photo_id, path=it.entry.path, source=source,
            class_name=class_override if class_override is not None else it.entry.class_name,
            width=d.width, height=d.height, format=d.format, taken_at=d.taken_at, orientation=d.orientation,
            added_at=now_iso(), thumb_path=str(thumb), caption=desc.caption, caption_source=f"{backend.name}:{backend.model_id}",
            tags=[(t, round(p, 4)) for t, p in desc.tags], facts=getattr(desc, "facts", None),
            phash=None if it.phash is None else to_hex(it.phash),
        )
    if photos:
        ids = list(photos)
        # Keep any caption the catalog already has (user's own, crawler alt text) in the index metadata.
        known = catalog.get_many(ids)
        metas = [(known.get(i) or photos[i]).index_metadata() | {"class_name": photos[i].class_name}
                 | (photos[i].facts.index_metadata() if photos[i].facts else {}) for i in ids]  # new facts win, as in the catalog
        store.upsert(backend.model_id, "image", ids, [embedded[i][0] for i in ids], metas)
        if backend.text_space == "caption":
            store.upsert(backend.model_id, "caption", ids, [embedded[i][2] for i in ids], metas)
            with_facts = [i for i in ids if len(embedded[i]) > 3 and embedded[i][3] is not None]
            if with_facts:  # photo facts as their own vectors, scored beside the caption by core.search
                store.upsert(backend.model_id, "facts", with_facts, [embedded[i][3] for i in with_facts],
                             [metas[ids.index(i)] for i in with_facts])
    files = [FileRecord(it.entry.path, it.photo_id, it.entry.size, it.entry.mtime_ns) for it in items]
    catalog.commit_batch(list(photos.values()), files, backend.model_id, indexed=list(photos))
    firsts: set[str] = set()
    new_paths = 0  # every file beyond the first one of a newly written photo is a duplicate or a rename
    for it in items:
        if it.photo_id in photos and it.photo_id not in firsts:
            firsts.add(it.photo_id)
        else:
            new_paths += 1
    return len(photos), new_paths


# --- driver ---------------------------------------------------------------------------------------------
def _batches(entries: Iterable[FileEntry], n: int) -> Iterator[list[FileEntry]]:
    batch: list[FileEntry] = []
    for e in entries:
        batch.append(e)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_entries(services, entries: Sequence[FileEntry], *, source: str, class_override: Optional[str] = None,
                   on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
                   report: Optional[IngestReport] = None, executor: Optional[BatchExecutor] = None) -> IngestReport:
    """Ingest the given files incrementally; see the module docstring for the guarantees.

    `executor` runs read+embed over the batches (default: this process, reading one batch ahead);
    `core.cluster.RayExecutor` runs them on a Ray cluster. Writes always happen here, in order of
    arrival, so every executor gets the same idempotent write path."""
    s, catalog, backend = services.settings, services.catalog, services.backend
    report = report or IngestReport()
    t0 = time.perf_counter()
    entries = list(entries)
    report.scanned += len(entries)
    paths = [e.path for e in entries]
    state = catalog.file_state(paths)
    bad = catalog.skipped_state(paths)
    indexed = catalog.indexed_ids(backend.model_id, {r.photo_id for r in state.values()})
    todo: list[FileEntry] = []
    for e in entries:
        rec = state.get(e.path)
        if rec and rec.size == e.size and rec.mtime_ns == e.mtime_ns and rec.photo_id in indexed:
            report.unchanged += 1
            report.photo_ids.append(rec.photo_id)
            report.files.append(FileOutcome(e.path, "unchanged"))
        elif e.path in bad and bad[e.path][:2] == (e.size, e.mtime_ns):
            # Same bad file (or near duplicate) as last time: don't re-read it.
            size, mtime, reason, near_of, distance = bad[e.path]
            of = catalog.get(near_of) if near_of else None
            if near_of and (of is None or of.missing):
                todo.append(e)  # the photo it looked like is gone from the library: this file may be wanted now
            elif near_of:
                report.near_duplicates.append(NearDup(e.path, near_of, of.path, int(distance)))
                report.files.append(FileOutcome(e.path, "near duplicate", reason))
            else:
                report.skipped.append(Skip(e.path, reason))
                report.files.append(FileOutcome(e.path, "skipped", reason))
        else:
            todo.append(e)
    total = len(todo)
    if on_progress:
        on_progress(0, total, stage="ingest")
    done = 0
    batches = list(_batches(todo, s.batch_size))

    known = frozenset(catalog.indexed_ids(backend.model_id)) if todo else frozenset()
    written: set[str] = set()  # photos written by this run (a batch read ahead cannot know them yet)
    threshold = s.near_dup_threshold
    # Near duplicates are looked for among library photos (hashes stored per photo) and this run's.
    if todo and threshold >= 0:
        backfill_phashes(catalog)
    library_hashes = catalog.phashes() if todo and threshold >= 0 else []
    kept = catalog.near_dup_kept([e.path for e in todo]) if todo and threshold >= 0 else set()
    first_path: dict[str, str] = {}  # photo id -> path, for photos of this run

    run = executor or LocalExecutor(s, want_phash=threshold >= 0)

    def write(k: int, items: list[ReadItem], embedded: dict, skips: list[Skip], near: list[NearDup]):
        added, new_paths = write_batch(items, embedded, catalog=catalog, store=services.store, backend=backend,
                                       thumbs_dir=s.thumbs_dir, thumb_size=s.thumb_size, source=source, class_override=class_override)
        sizes = {e.path: (e.size, e.mtime_ns) for e in batches[k]}
        if skips or near:
            catalog.record_skipped([(sk.path, *sizes[sk.path], sk.reason) for sk in skips]
                                   + [(n.path, *sizes[n.path], n.reason, n.photo_id, n.distance) for n in near])
        return k, items, embedded, skips, near, added, new_paths

    def finish(k: int, items: list[ReadItem], embedded: dict, skips: list[Skip], near: list[NearDup], added: int, new_paths: int) -> None:
        nonlocal done  # report and progress on the calling thread (a Streamlit progress bar needs it)
        record_outcomes(report, items, embedded, skips, near, catalog, first_path)
        report.added += added
        report.new_paths += new_paths
        report.skipped.extend(skips)
        report.near_duplicates.extend(near)
        report.photo_ids.extend(it.photo_id for it in items)
        done += len(batches[k])
        if on_progress:
            on_progress(done, total, stage="ingest", added=report.added, skipped=len(report.skipped))

    # One writer stores batch k while the executor embeds batch k+1, so the model rarely waits.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photolore-write")
    writing = None
    try:
        for k, items, skips, embedded in run(batches, backend=backend, known=known, written=written, cancel=cancel):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            items, near = split_near_duplicates(items, catalog, library_hashes, kept, threshold, first_path)
            # Near duplicates are not written; an executor that embeds batches in parallel may embed
            # one photo twice: write it once.
            keep_ids = {it.photo_id for it in items}
            embedded = {pid: v for pid, v in embedded.items() if pid in keep_ids and pid not in written}
            written.update(embedded)
            if writing is not None:
                finish(*writing.result())
            writing = writer.submit(write, k, items, embedded, skips, near)
        if writing is not None:
            finish(*writing.result())
            writing = None
    finally:
        if writing is not None:  # cancelled: the batch already being written still completes
            finish(*writing.result())
        writer.shutdown(wait=True)
    report.seconds += time.perf_counter() - t0
    return report


def ingest_folder(services, root: Path, *, source: str = "folder", class_override: Optional[str] = None,
                  prune: bool = True, on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
                  executor: Optional[BatchExecutor] = None) -> IngestReport:
    """Ingest every image under `root` (recursive); forget paths under it that are gone.

    Files that are no image type PhotoLore reads are listed in `report.ignored`; camera RAW files
    and folders that cannot be listed are skipped with their reason."""
    root = Path(root).expanduser().resolve()
    exclude = [services.settings.data_dir / "thumbs", services.settings.chroma_path]
    unread: list[Skip] = []
    entries = list(scan(root, exclude=exclude, unread=unread))
    report = IngestReport(unscanned=len(unread))
    for sk in unread:
        if sk.reason.startswith(NOT_READ_PREFIX):
            report.ignored.append(sk)
            report.files.append(FileOutcome(sk.path, "not read", sk.reason))
        else:
            report.skipped.append(sk)
            report.files.append(FileOutcome(sk.path, "skipped", sk.reason))
    report = ingest_entries(services, entries, source=source, class_override=class_override, on_progress=on_progress,
                            cancel=cancel, report=report, executor=executor)
    if prune and not report.cancelled and root.is_dir():
        report.pruned = services.catalog.prune_missing(root, {e.path for e in entries})
    return report


def ingest_paths(services, paths: Sequence[Path], *, source: str, class_override: Optional[str] = None,
                 on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> IngestReport:
    """Ingest specific files (uploads, crawler downloads); class = parent folder name unless given."""
    entries = []
    report = IngestReport()
    for p in paths:
        p = Path(p).expanduser().resolve()
        try:
            st = p.stat()
        except OSError as exc:
            report.skipped.append(Skip(str(p), f"cannot read file: {exc.strerror or exc}"))
            report.files.append(FileOutcome(str(p), "skipped", report.skipped[-1].reason))
            report.unscanned += 1
            continue
        entries.append(FileEntry(str(p), st.st_size, st.st_mtime_ns, p.parent.name))
    return ingest_entries(services, entries, source=source, class_override=class_override, on_progress=on_progress, cancel=cancel, report=report)


def reindex(services, *, on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
            executor: Optional[BatchExecutor] = None) -> IngestReport:
    """Embed catalog photos missing from the active backend's index (after a backend switch)."""
    missing = services.catalog.photos_not_indexed(services.backend.model_id)
    entries = []
    for p in missing:
        for path in services.catalog.paths_of(p.id):
            try:
                st = os.stat(path)
            except OSError:
                continue
            entries.append(FileEntry(path, st.st_size, st.st_mtime_ns, p.class_name))
            break
    report = ingest_entries(services, entries, source="reindex", on_progress=on_progress, cancel=cancel, executor=executor)
    report.reindexed = report.added
    return report
