"""The pure batch stages of ingest: read & decode, embed, and the executors that run them.

`read_batch` and `embed_batch` are functions of their inputs only (no globals, no I/O beyond
reading the given files), so an executor may run them anywhere: `LocalExecutor` in this process,
`core.cluster.RayExecutor` on a Ray cluster. The driver and the one write stage live in
`core.ingest`.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from core.images import DecodedImage, ImageError, decode_image, jpeg_bytes, make_thumbnail, sha256_bytes
from core.ingest_outcomes import Skip
from core.neardup import phash
from core.threads import decode_threads

@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute, resolved
    size: int
    mtime_ns: int
    class_name: str = ""


@dataclass
class ReadItem:
    entry: FileEntry
    photo_id: str
    decoded: Optional[DecodedImage]  # None when the photo is already indexed (only a new path)
    phash: Optional[int] = None  # perceptual hash of a decoded photo (core.neardup)
    thumbnail: Optional[bytes] = None  # JPEG bytes, made by the read stage when asked to


# --- stage 1: read & decode (pure) ------------------------------------------------------------
def read_batch(entries: Sequence[FileEntry], *, max_pixels: int, already_indexed: frozenset[str] = frozenset(),
               want_phash: bool = True, max_side: Optional[int] = None, thumb_size: Optional[int] = None
               ) -> tuple[list[ReadItem], list[Skip]]:
    """Read, hash and decode files (at most `max_side` px, JPEGs decoded reduced); thumbnails when
    `thumb_size` is given. Files whose hash is in `already_indexed` are not decoded.

    Any error on one file becomes that file's skip reason: one odd file never stops a folder.
    """
    items: list[ReadItem] = []
    skips: list[Skip] = []
    for e in entries:
        try:
            got = _read_one(e, max_pixels, already_indexed, want_phash, max_side, thumb_size)
        except Exception as exc:  # a decoder or plugin bug must cost this file only
            got = Skip(e.path, f"unexpected error: {type(exc).__name__}: {exc}")
        (skips if isinstance(got, Skip) else items).append(got)
    return items, skips


def _read_one(e: FileEntry, max_pixels: int, already_indexed: frozenset[str], want_phash: bool,
              max_side: Optional[int] = None, thumb_size: Optional[int] = None) -> ReadItem | Skip:
    try:
        data = Path(e.path).read_bytes()
    except IsADirectoryError:
        return Skip(e.path, "is a directory, not a file")
    except PermissionError:
        return Skip(e.path, "permission denied: PhotoLore cannot read this file; check its permissions")
    except OSError as exc:
        return Skip(e.path, f"cannot read file: {exc.strerror or exc}")
    pid = sha256_bytes(data)
    if pid in already_indexed:
        return ReadItem(e, pid, None)
    try:
        decoded = decode_image(data, max_pixels=max_pixels, name=e.path, max_side=max_side)
    except ImageError as exc:
        return Skip(e.path, exc.reason)
    del data  # a phone photo's bytes are several MB: don't hold them while the batch waits
    thumb = jpeg_bytes(make_thumbnail(decoded.image, thumb_size, alpha=decoded.alpha)) if thumb_size else None
    return ReadItem(e, pid, decoded, phash(decoded.image) if want_phash else None, thumb)


# --- stage 2: embed (pure given the model) ------------------------------------------------------
def embed_batch(items: Sequence[ReadItem], backend) -> dict[str, tuple]:
    """photo id -> (image embedding, description, caption embedding | None, facts embedding | None)."""
    todo: dict[str, ReadItem] = {}
    for it in items:
        if it.decoded is not None and it.photo_id not in todo:  # same bytes twice in a batch: embed once
            todo[it.photo_id] = it
    if not todo:
        return {}
    ids = list(todo)
    enc = backend.encode([todo[i].decoded.image for i in ids])
    caps, facts = enc.caption_embeddings, getattr(enc, "facts_embeddings", None)
    return {pid: (enc.image_embeddings[k], enc.descriptions[k], None if caps is None else caps[k],
                  None if facts is None else facts[k]) for k, pid in enumerate(ids)}


# --- executors: who runs read + embed over the batches ------------------------------------------------
# An executor is called as run(batches, backend=, known=, written=, cancel=) and yields
# (batch index, items, skips, embedded) per batch, in any order. `written` is the live set of
# photo ids the driver has written so far (an in-process executor skips embedding those).
BatchExecutor = Callable[..., Iterator[tuple[int, list[ReadItem], list[Skip], dict[str, tuple]]]]


class LocalExecutor:
    """Read + decode on a pool of threads that keeps a few batches in flight, embed in this thread.
    Under a thread cap (core.threads) of one, there is no pool: read, decode and embed take turns.

    Memory is bounded by the batches in flight, not by the folder. Threads, not processes:
    Pillow and hashlib release the GIL, and images need no pickling.
    """

    def __init__(self, settings, want_phash: bool = True):
        self.settings = settings
        self.want_phash = want_phash

    def __call__(self, batches: list[list[FileEntry]], *, backend, known: frozenset[str], written: set[str],
                 cancel: Optional[threading.Event] = None):
        s = self.settings

        def read(batch: list[FileEntry]):
            return read_batch(batch, max_pixels=s.max_image_pixels, already_indexed=known, want_phash=self.want_phash,
                              max_side=s.decode_max_side, thumb_size=s.thumb_size)

        pool = decode_threads(s.decode_workers)
        ahead = pool + 1 if pool else 0
        readers = ThreadPoolExecutor(max_workers=max(pool, 1), thread_name_prefix="photolore-read")
        try:
            pending = deque(readers.submit(read, b) for b in batches[:ahead])
            for k in range(len(batches)):
                items, skips = pending.popleft().result() if pool else read(batches[k])  # no pool: read on this thread
                if pool and k + ahead < len(batches):
                    pending.append(readers.submit(read, batches[k + ahead]))
                if cancel is not None and cancel.is_set():
                    yield k, [], [], {}  # let the driver see the cancel without doing this batch's work
                    return
                items = [ReadItem(it.entry, it.photo_id, None) if it.photo_id in written else it for it in items]
                yield k, items, skips, embed_batch(items, backend)
        finally:
            readers.shutdown(wait=True, cancel_futures=True)
