"""Crawl state and provenance in SQLite: what was visited, saved and skipped, and why.

One job = one set of seeds; a restarted job re-queues what was discovered but not done.
Image URLs and content hashes are global, so no crawl downloads or saves the same photo twice.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Optional

from core.crawl.net import normalized_seeds

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS pages (
    job TEXT NOT NULL, url TEXT NOT NULL, class TEXT NOT NULL, depth INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT, seq INTEGER NOT NULL, PRIMARY KEY (job, url));
CREATE TABLE IF NOT EXISTS images (
    url TEXT PRIMARY KEY, job TEXT NOT NULL, class TEXT NOT NULL, page_url TEXT, alt TEXT, title TEXT,
    status TEXT NOT NULL, reason TEXT, path TEXT, sha256 TEXT, phash TEXT, width INTEGER, height INTEGER,
    crawled_at REAL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS images_path ON images(path);
CREATE INDEX IF NOT EXISTS images_sha ON images(sha256);
"""


def job_id(seeds: Iterable[tuple[str, str]]) -> str:
    """A stable id for a set of seeds, so rerunning the same crawl resumes it."""
    return hashlib.sha256(json.dumps(sorted(map(list, seeds))).encode()).hexdigest()[:16]


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class CrawlState:
    """Only the crawl's coordinating thread uses one instance."""

    def __init__(self, path: Path, job: str):
        self.path = Path(path)
        self.job = job
        self.conn = _connect(self.path)
        self.conn.executescript(_SCHEMA)
        self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._seq = self.conn.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) m FROM pages UNION ALL SELECT MAX(seq) FROM images)").fetchone()[0] or 0

    def close(self) -> None:
        self.conn.close()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # pages ----------------------------------------------------------------------------------
    def page_status(self, url: str) -> Optional[str]:
        row = self.conn.execute("SELECT status FROM pages WHERE job=? AND url=?", (self.job, url)).fetchone()
        return row[0] if row else None

    def add_page(self, url: str, class_name: str, depth: int) -> bool:
        """Queue a page; False if this job already knows it."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO pages VALUES (?,?,?,?, 'queued', NULL, ?)", (self.job, url, class_name, depth, self._next_seq()))
        return cur.rowcount == 1

    def finish_page(self, url: str, status: str, reason: Optional[str], new_pages: list[tuple[str, str, int]],
                    new_images: list[tuple[str, str, str, str, str]]) -> tuple[list, list]:
        """Mark a page done and queue what it links to, in one transaction; returns what was new."""
        added_pages, added_images = [], []
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("UPDATE pages SET status=?, reason=? WHERE job=? AND url=?", (status, reason, self.job, url))
            for p in new_pages:
                if self.add_page(*p):
                    added_pages.append(p)
            for img in new_images:
                if self.add_image(*img):
                    added_images.append(img)
        return added_pages, added_images

    def requeue_page(self, url: str) -> None:
        """Queue one finished page again (a start page to retry)."""
        self.conn.execute("UPDATE pages SET status='queued', reason=NULL WHERE job=? AND url=?", (self.job, url))

    def requeue_failed(self) -> None:
        """Give pages and images that failed for transient reasons (timeouts, 5xx, 429) another try."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("UPDATE pages SET status='queued', reason=NULL WHERE job=? AND status='failed'", (self.job,))
            self.conn.execute("UPDATE images SET status='queued', reason=NULL WHERE job=? AND status='failed'", (self.job,))

    def pending_pages(self) -> list[tuple[str, str, int]]:
        return self.conn.execute(
            "SELECT url, class, depth FROM pages WHERE job=? AND status='queued' ORDER BY seq", (self.job,)).fetchall()

    def pages_done(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM pages WHERE job=? AND status!='queued'", (self.job,)).fetchone()[0]

    # images ---------------------------------------------------------------------------------
    def add_image(self, url: str, class_name: str, page_url: str, alt: str, title: str) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO images (url, job, class, page_url, alt, title, status, seq) VALUES (?,?,?,?,?,?, 'queued', ?)",
            (url, self.job, class_name, page_url, alt, title, self._next_seq()))
        return cur.rowcount == 1

    def image_row(self, url: str) -> Optional[dict]:
        cur = self.conn.execute("SELECT * FROM images WHERE url=?", (url,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def pending_images(self) -> list[tuple[str, str, str, str, str]]:
        return self.conn.execute(
            "SELECT url, class, page_url, alt, title FROM images WHERE job=? AND status='queued' ORDER BY seq", (self.job,)).fetchall()

    def images_saved(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM images WHERE job=? AND status='saved'", (self.job,)).fetchone()[0]

    def mark_image(self, url: str, status: str, reason: Optional[str] = None, *, path: Optional[Path] = None,
                   sha256: Optional[str] = None, phash: Optional[str] = None, width: Optional[int] = None,
                   height: Optional[int] = None) -> None:
        """One transaction per finished image."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute(
                "UPDATE images SET status=?, reason=?, path=?, sha256=?, phash=?, width=?, height=?, crawled_at=? WHERE url=?",
                (status, reason, str(path) if path else None, sha256, phash, width, height, time.time(), url))

    def known_hashes(self) -> tuple[dict[str, str], list[tuple[int, str]]]:
        """sha256 -> path and (phash int, path) of every photo any crawl saved."""
        shas, phashes = {}, []
        for sha, ph, path in self.conn.execute("SELECT sha256, phash, path FROM images WHERE status='saved'"):
            if sha:
                shas[sha] = path
            if ph:
                phashes.append((int(ph, 16), path))
        return shas, phashes


def provenance_for(path: Path, state_path: Path) -> Optional[dict]:
    """Where a crawled photo came from: page URL, image URL, alt text, page title, class, crawl time."""
    state_path = Path(state_path)
    if not state_path.exists():
        return None
    conn = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True, timeout=30)
    try:
        cur = conn.execute(
            "SELECT url AS image_url, page_url, alt, title, class, crawled_at, sha256, width, height, path "
            "FROM images WHERE status='saved' AND path=?", (str(Path(path).resolve()),))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row))
    finally:
        conn.close()


def candidate_captions(path: Path, state_path: Path) -> list[str]:
    """Alt text and page title of a crawled photo, as candidate caption text (data, not instructions)."""
    prov = provenance_for(path, state_path)
    if not prov:
        return []
    out: list[str] = []
    for text in (prov.get("alt"), prov.get("title")):
        text = " ".join((text or "").split())
        if text and text not in out:
            out.append(text)
    return out


def saved_paths_for(config) -> list[Path]:
    """Every photo this crawl job (same seeds) saved, across interrupted runs: what to ingest."""
    state_path = Path(config.state_path)
    if not state_path.exists():
        return []
    seeds = normalized_seeds(config)
    conn = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT path FROM images WHERE job=? AND status='saved' ORDER BY seq", (job_id(seeds),)).fetchall()
    finally:
        conn.close()
    return [Path(r[0]) for r in rows if r[0] and Path(r[0]).exists()]
