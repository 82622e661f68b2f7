"""What import decides per file beyond read and write: near duplicates, and the outcome of every file.

Kept apart from core.ingest's stages so the report types and rules are one small owner of their own.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.catalog import Catalog
from core.neardup import nearest
from core.pathnames import display_path


@dataclass
class Skip:
    path: str
    reason: str


@dataclass
class NearDup:
    """A file left out because it looks like a library photo (see core.neardup); the user may keep it."""

    path: str
    photo_id: str  # the library photo it looks like
    of_path: str
    distance: int

    @property
    def reason(self) -> str:
        return f"near duplicate of {display_path(self.of_path)} (distance {self.distance})"


@dataclass
class FileOutcome:
    """What import did with one file it saw."""

    path: str
    status: str  # added, duplicate, near duplicate, unchanged, skipped, not read
    detail: str = ""



def split_near_duplicates(items: list, catalog: Catalog, library_hashes: list[tuple[int, str]], kept: set[str],
                           threshold: int, first_path: dict[str, str]) -> tuple[list[ReadItem], list[NearDup]]:
    """Leave out new photos that look like a library photo or one added earlier in this run.

    Photos already in the catalog (a re-index, a known photo at a new path) are never checked:
    only what would become a new photo is. `library_hashes` grows with the photos kept here.
    """
    if threshold < 0:
        return items, []
    new = [it for it in items if it.decoded is not None and it.phash is not None]
    existing = catalog.existing_ids([it.photo_id for it in new]) if new else set()
    keep, near, accepted = [], [], set()
    for it in items:
        if it.decoded is None or it.phash is None or it.photo_id in existing or it.photo_id in accepted or it.entry.path in kept:
            keep.append(it)
            continue
        hit = nearest(it.phash, library_hashes, threshold, exclude=it.photo_id)
        if hit is None:
            accepted.add(it.photo_id)
            library_hashes.append((it.phash, it.photo_id))
            first_path.setdefault(it.photo_id, it.entry.path)
            keep.append(it)
            continue
        of_id, distance = hit
        of_photo = None if of_id in first_path else catalog.get(of_id)
        of_path = first_path.get(of_id) or (of_photo.path if of_photo else "?")
        near.append(NearDup(it.entry.path, of_id, of_path, distance))
    return keep, near


def record_outcomes(report, items: list, embedded: dict, skips: list[Skip], near: list[NearDup],
                     catalog: Catalog, first_path: dict[str, str]) -> None:
    """One FileOutcome per file of the batch, mirroring write_batch's count of new photos and new paths."""
    firsts: set[str] = set()
    is_new = []
    for it in items:
        is_new.append(it.photo_id in embedded and it.photo_id not in firsts)
        firsts.add(it.photo_id)
    dup_ids = [it.photo_id for it, new in zip(items, is_new) if not new]
    known = {pid: p.path for pid, p in catalog.get_many(dup_ids).items()} if dup_ids else {}
    for it, new in zip(items, is_new):
        first_path.setdefault(it.photo_id, it.entry.path)
        if new:
            report.files.append(FileOutcome(it.entry.path, "added"))
        else:
            same = known.get(it.photo_id) or first_path.get(it.photo_id, "")
            detail = "same photo, another path (rename)" if same == it.entry.path else f"same bytes as {display_path(same)}"
            report.files.append(FileOutcome(it.entry.path, "duplicate", detail))
    report.files.extend(FileOutcome(sk.path, "skipped", sk.reason) for sk in skips)
    report.files.extend(FileOutcome(n.path, "near duplicate", n.reason) for n in near)
