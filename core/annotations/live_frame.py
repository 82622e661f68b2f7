"""The effective annotations of every photo as one frame, kept current by re-reading only what changed.

Reading a million photos' annotations takes half a minute on two cores (one join over the catalog, mostly
the driver building rows); the Dashboards need that frame on every open. `LiveFrame` reads it once, then on
each `get()` asks the catalog's change journal what changed since (core.photo_changes: ingest batches,
rescans, caption edits, removals, and every prediction, correction, reset and imported caption number
their photos in the writer's transaction) and re-reads those photos only, dropping the ones gone
missing or removed. A photo back from missing (its place is not at the end), a catalog restored from an
older copy, or more than `full_read_share` of the library changed: it reads everything again, as
`reload()` does.

With `cache_file`, the frame and its marks are also kept on disk (Arrow IPC, written atomically after a
full read), so a restarted app catches up from there instead of reading every photo again.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from core.annotations.effective import effective_annotations
from core.catalog import Catalog

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

FRAME_FORMAT = 1  # bump when a column's meaning changes (other columns are caught by the header): older cache files are read again
_LIST_COLUMNS = ("topics", "topics_caption", "topics_image", "corrected")


@dataclass(frozen=True)
class Mark:
    """What the frame has seen: the last change number and the photos (count, newest added_at)."""

    seq: int
    photos: int
    newest: Optional[str]


@dataclass(frozen=True)
class Refresh:
    """How the frame get() returns was last refreshed: "full" (every photo read), "changes" (only `rows`),
    "disk" (the cache file, then the `rows` changed since), or "none" (not read yet). A get() that finds
    nothing changed leaves it as it was."""

    kind: str
    rows: int
    seconds: float


class LiveFrame:
    """One per catalog and process; `get()` from any thread. The frames it returns are never modified
    afterwards (a refresh builds a new one), so callers may keep and share them."""

    def __init__(self, catalog: Catalog, cache_file: Optional[Path] = None, *, prepare: Optional[Callable[["pd.DataFrame"], "pd.DataFrame"]] = None,
                 full_read_share: float = 0.2):
        """`prepare`: a row-wise conversion applied to every frame read (the whole one, and the changed rows
        before they are patched in), e.g. core.dashboards.dashboard_frame; its result is what get() returns and
        what the cache file holds."""
        self.catalog = catalog
        self.cache_file = Path(cache_file) if cache_file else None
        self.prepare = prepare or (lambda df: df)
        self.full_read_share = full_read_share
        self._lock = threading.Lock()
        self._frame: Optional["pd.DataFrame"] = None
        self._index: Optional["pd.Index"] = None  # of the frame's photo ids
        self._mark: Optional[Mark] = None
        self.last = Refresh("none", 0, 0.0)
        self.generation = 0  # grows each time get() starts returning another frame: a key for what is derived from it

    def get(self, on_progress: Optional[Callable[[int, int], None]] = None) -> "pd.DataFrame":
        """The current frame: `prepare` of effective_annotations (values, columns, the catalog's order).
        `on_progress(rows, photos)` is called while every photo is read (store.photo_value_rows)."""
        with self._lock:
            t0 = time.perf_counter()
            kind = "none"
            if self._frame is None and self.cache_file is not None:
                loaded = self._load()
                if loaded is not None:
                    (self._frame, self._mark), self._index = loaded, None
                    self.generation += 1
                    kind = "disk"
            if self._frame is None:
                return self._full(t0, on_progress)
            rows = self._catch_up()
            if rows is None:
                return self._full(t0, on_progress)
            if rows or kind != "none":  # nothing changed: `last` still says how the frame was come by
                self.last = Refresh("changes" if kind == "none" else kind, rows, time.perf_counter() - t0)
            return self._frame

    def reload(self, on_progress: Optional[Callable[[int, int], None]] = None) -> "pd.DataFrame":
        """Read every photo again (after caption edits in the Library, say)."""
        with self._lock:
            return self._full(time.perf_counter(), on_progress)

    # --- reading -----------------------------------------------------------------------------------------
    def _marks(self) -> Mark:
        seq = self.catalog.change_number()  # first: a change written between the two reads is re-read next time
        n, newest = self.catalog.photos_mark()
        return Mark(seq, n, newest)

    def _full(self, t0: float, on_progress: Optional[Callable[[int, int], None]] = None) -> "pd.DataFrame":
        mark = self._marks()
        frame = self.prepare(effective_annotations(self.catalog, on_progress=on_progress))
        self._frame, self._mark, self._index = frame, mark, None
        self.generation += 1
        self.last = Refresh("full", len(frame), time.perf_counter() - t0)
        if self.cache_file is not None:
            self._save(frame, mark)
        return frame

    def _catch_up(self) -> Optional[int]:
        """Patch the frame with what changed since its mark; the rows re-read, or None when only a full read will do."""
        import pandas as pd

        old, frame = self._mark, self._frame
        assert old is not None and frame is not None
        seq, changed = self.catalog.changes_since(old.seq)
        n, newest = self.catalog.photos_mark()
        if (seq, n, newest) == (old.seq, old.photos, old.newest):
            return 0
        if seq < old.seq:  # the catalog went back (restored from a backup, say): the marks mean nothing now
            return None
        # Photos added since are numbered by the catalog too; added_at also finds those a writer that numbers
        # nothing added (an older PhotoLore on a shared PostgreSQL catalog, a bulk load).
        added = self.catalog.ids_added_after(old.newest) if newest != old.newest else []
        redo = list(dict.fromkeys([*changed, *added]))
        if len(redo) > self.full_read_share * max(n, 1):
            return None
        if self._index is None:  # kept between calls: hashing a million ids costs 0.3 s
            self._index = pd.Index(frame["photo_id"])
        present = self.catalog.present_ids(redo)
        fresh = self.prepare(effective_annotations(self.catalog, [i for i in redo if i in present]))
        pos = self._index.get_indexer(fresh["photo_id"])
        if not set(fresh["photo_id"][pos < 0]) <= set(added):  # a photo back from missing: its place is not at the end
            return None
        gone = self._index.get_indexer([i for i in redo if i not in present])
        gone = gone[gone >= 0]  # missing or removed photos the frame holds
        if len(frame) - len(gone) + int((pos < 0).sum()) != n:  # rows changed by a writer that numbers nothing
            return None
        self._frame = _patched(frame, fresh, pos, gone)
        self._mark = Mark(seq, n, newest)
        self.generation += 1
        if (pos < 0).any() or len(gone):
            self._index = None
        return len(fresh) + len(gone)

    # --- the cache file ---------------------------------------------------------------------------------
    def _prepared_columns(self) -> list[str]:
        """The columns `prepare` makes (of an empty frame: no rows read): a file with others is from other code."""
        return [str(c) for c in self.prepare(effective_annotations(self.catalog, [])).columns]

    def _header(self, mark: Mark) -> dict:
        return {"format": FRAME_FORMAT, "columns": self._prepared_columns(), "prepare": getattr(self.prepare, "__qualname__", ""),
                "catalog": self.catalog.describe(), "library": str(self.catalog.library_dir), "seq": mark.seq, "photos": mark.photos,
                "newest": mark.newest}

    def _save(self, frame: "pd.DataFrame", mark: Mark) -> None:
        import pyarrow as pa

        assert self.cache_file is not None
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            meta = {**(table.schema.metadata or {}), b"photolore": json.dumps(self._header(mark)).encode()}
            table = table.replace_schema_metadata(meta)
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_name(self.cache_file.name + f".{os.getpid()}.tmp")
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, self.cache_file)  # atomic: a reader sees the old file or the new one, never half
        except (OSError, pa.ArrowException) as exc:  # a cache: the app works without it, only slower to start
            log.warning("could not write the annotations cache %s: %s", self.cache_file, exc)

    def _load(self) -> Optional[tuple["pd.DataFrame", Mark]]:
        import pyarrow as pa

        assert self.cache_file is not None
        if not self.cache_file.exists():
            return None
        try:
            with pa.memory_map(str(self.cache_file)) as source:
                table = pa.ipc.open_file(source).read_all()
            header = json.loads((table.schema.metadata or {}).get(b"photolore", b"{}"))
            mark = Mark(int(header["seq"]), int(header["photos"]), header["newest"])
            same = ("format", "columns", "prepare", "catalog", "library")
            if {k: header.get(k) for k in same} != {k: v for k, v in self._header(mark).items() if k in same}:
                return None  # another catalog's, another library root's (the filenames), or an older format
            frame = table.to_pandas(ignore_metadata=False)
        except (OSError, pa.ArrowException, ValueError, KeyError, TypeError) as exc:  # damaged or foreign: read again
            log.warning("ignoring the annotations cache %s (%s); reading the catalog", self.cache_file, exc)
            return None
        for col in _LIST_COLUMNS:  # Arrow would give numpy arrays; the frame's contract is lists
            if col in frame:
                frame[col] = [v if v is not None else [] for v in table.column(col).to_pylist()]
        return frame, mark


def _patched(frame: "pd.DataFrame", fresh: "pd.DataFrame", pos, gone=()) -> "pd.DataFrame":
    """A new frame: `frame` with the rows at `pos` replaced by `fresh`'s, the rows at `gone` dropped, and
    fresh's rows at -1 appended.

    Only columns where a value differs are copied (setting rows of an Arrow string column rebuilds it:
    0.2 s per column at a million rows); the others are shared with `frame`, which nobody modifies."""
    import numpy as np
    import pandas as pd

    pos = np.asarray(pos)
    upd, new = pos >= 0, pos < 0
    cols = {}
    for c in frame.columns:
        arr = frame[c].array
        if upd.any():
            now, was = fresh[c].array[upd], arr[pos[upd]]
            if any(not _same(a, b) for a, b in zip(now, was)):
                arr = arr.copy()
                arr[pos[upd]] = now
        cols[c] = arr
    out = pd.DataFrame(cols, columns=frame.columns, copy=False)
    if len(gone):
        out = out.drop(index=np.asarray(gone)).reset_index(drop=True)
    if new.any():
        out = pd.concat([out, fresh[new]], ignore_index=True)
    return out


def _same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return a == b
    if _missing(a) or _missing(b):  # None, NA, NaN, NaT: equal when both are missing
        return _missing(a) and _missing(b)
    return bool(a == b)


def _missing(v) -> bool:
    import pandas as pd

    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)
