"""What the catalog stores per photo and per file, as plain dataclasses (no database here)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple, Optional

from core.facts import PhotoFacts
from core.pathnames import display_path, from_db


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Photo:
    id: str
    path: str
    source: str
    class_name: str = ""
    width: Optional[int] = None
    height: Optional[int] = None
    format: Optional[str] = None
    taken_at: Optional[str] = None
    orientation: Optional[int] = None
    added_at: str = ""
    thumb_path: Optional[str] = None
    caption: Optional[str] = None
    caption_source: Optional[str] = None
    tags: list[tuple[str, float]] = field(default_factory=list)
    missing: bool = False
    facts: Optional[PhotoFacts] = None  # None = not extracted yet (reindex fills it in)
    phash: Optional[str] = None  # 64-bit perceptual hash, hex (core.neardup)

    @classmethod
    def from_row(cls, row) -> "Photo":
        """From a `SELECT * FROM photos` row of either database (core.db.Row or sqlite3.Row)."""
        data = {k: row[k] for k in row.keys() if k in _PHOTO_FIELDS}  # columns of later versions stay in SQL
        data["tags"] = [tuple(t) for t in json.loads(data.get("tags") or "[]")]
        data["missing"] = bool(data.get("missing"))
        data["facts"] = PhotoFacts.from_json(data.get("facts"))
        data["path"] = from_db(data["path"])
        if data.get("thumb_path"):
            data["thumb_path"] = from_db(data["thumb_path"])
        return cls(**data)

    def index_metadata(self) -> dict:
        """What the vector index stores beside the embedding, for filters and display."""
        return {
            "path": display_path(self.path), "source": self.source, "class_name": self.class_name,
            "caption": self.caption or "", "tags": [t for t, _ in self.tags[:5]],
            "width": self.width, "height": self.height, "taken_at": self.taken_at,
        } | (self.facts.index_metadata() if self.facts else {})


_PHOTO_FIELDS = frozenset(Photo.__dataclass_fields__)


class PhotoSummary(NamedTuple):
    """The columns tables of many photos show (Catalog.photo_summaries): a tuple, cheap at a million rows."""

    id: str
    path: str
    class_name: str
    caption: Optional[str]
    caption_source: Optional[str]
    taken_at: Optional[str]
    thumb_path: Optional[str]


@dataclass
class NearDuplicate:
    """A file not imported because it looks like a library photo; the user may keep it anyway."""

    path: str
    photo_id: str
    distance: int
    reason: str


@dataclass
class FileRecord:
    path: str
    photo_id: str
    size: int
    mtime_ns: int
