"""Typed crawl configuration and the report a crawl returns."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from core.neardup import DEFAULT_THRESHOLD as NEAR_DUP_DEFAULT

Scope = Literal["host", "prefix"]
RenderMode = Literal["static", "js"]

DEFAULT_USER_AGENT = "PhotoLoreBot/0.1 (+local-first photo studio)"
DEFAULT_CLASS = "crawl"


@dataclass
class CrawlConfig:
    """Everything a crawl needs; defaults are polite settings for the open web."""

    seeds: list[tuple[str, str]]  # (class name, start URL)
    library_dir: Path
    state_path: Optional[Path] = None  # SQLite crawl state; default: <library_dir>/../crawl.sqlite
    scope: Scope = "host"  # follow links on the seed's host, or under the seed URL's path prefix
    max_depth: int = 2  # link hops from the seed page
    max_pages: int = 50
    max_images: int = 200
    workers: int = 4  # global concurrency (download pool size)
    per_host_concurrency: int = 2
    delay_s: float = 0.5  # politeness delay between request starts on one host
    timeout_s: float = 15.0  # per connect and per read
    deadline_s: float = 60.0  # total for one download (connect + all reads): a drip-feeding server costs at most this
    retries: int = 3  # retries after the first attempt, for connection errors, 429 and 5xx
    timeout_retries: int = 1  # of those, at most this many after a timeout (a hanging server costs 2 timeouts)
    backoff_s: float = 0.5  # first backoff; doubles each retry, plus jitter
    max_retry_after_s: float = 60.0  # a Retry-After longer than this gives up on the item
    max_redirects: int = 5
    max_bytes: int = 20_000_000
    max_page_bytes: int = 5_000_000
    min_width: int = 64
    min_height: int = 64
    max_pixels: int = 64_000_000
    near_dup_threshold: int = NEAR_DUP_DEFAULT  # max Hamming distance of 64-bit perceptual hashes; -1 disables
    render: RenderMode = "static"
    render_wait_s: float = 0.5  # extra time for scripts after the load event (js mode)
    allow_private: bool = False  # tests crawl 127.0.0.1; the open web never needs this
    allow_networks: tuple[str, ...] = ()  # CIDRs allowed even when private, e.g. ("192.168.1.5/32",) for a NAS
    respect_robots: bool = True
    retry_failed: bool = False  # on resume, retry items that failed transiently (timeouts, 5xx, 429)
    user_agent: str = DEFAULT_USER_AGENT
    chromium_path: str = "/usr/bin/chromium"
    chromedriver_path: str = "/usr/bin/chromedriver"

    def __post_init__(self) -> None:
        self.library_dir = Path(self.library_dir)
        if self.state_path is None:
            self.state_path = self.library_dir.parent / "crawl.sqlite"
        self.state_path = Path(self.state_path)
        if not self.seeds:
            raise ValueError("no seed URLs: give at least one start URL (optionally as 'class: url')")
        if self.scope not in ("host", "prefix"):
            raise ValueError(f"scope must be 'host' or 'prefix', not {self.scope!r}")
        if self.render not in ("static", "js"):
            raise ValueError(f"render must be 'static' or 'js', not {self.render!r}")
        for name in ("workers", "per_host_concurrency", "max_redirects"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        import ipaddress

        for net in self.allow_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"allow_networks: {net!r} is not an IP network; write it like 192.168.1.5/32") from None
        self.allow_networks = tuple(self.allow_networks)
        if self.deadline_s <= 0:
            raise ValueError("deadline_s must be positive")
        for name in ("max_depth", "max_pages", "max_images", "retries", "timeout_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def from_settings(cls, settings, seeds: list[tuple[str, str]], **overrides) -> "CrawlConfig":
        """A config whose library and state live in the app's data directory."""
        overrides.setdefault("near_dup_threshold", settings.near_dup_threshold)  # one setting for import and crawl
        return cls(seeds=seeds, library_dir=settings.library_dir, state_path=settings.data_dir / "crawl.sqlite", **overrides)


@dataclass
class SkipRecord:
    """Something the crawl did not save, and why (shown to the user)."""

    url: str
    kind: Literal["page", "image"]
    reason: str
    page_url: str = ""


@dataclass
class SavedPhoto:
    path: Path
    url: str
    class_name: str
    page_url: str
    alt: str = ""
    title: str = ""


@dataclass
class CrawlReport:
    pages_visited: int = 0
    images_found: int = 0
    saved: list[SavedPhoto] = field(default_factory=list)
    skipped: list[SkipRecord] = field(default_factory=list)
    links_ignored: dict[str, int] = field(default_factory=dict)  # reason -> count (out of scope, too deep)
    cancelled: bool = False
    stopped_by: str = ""  # "", "max_pages", "max_images", "cancelled"
    warnings: list[str] = field(default_factory=list)
    requests: int = 0  # HTTP requests sent, retries and robots.txt included
    start_problem: str = ""  # set when nothing was saved because start pages failed: the reason and what to change

    @property
    def skip_counts(self) -> dict[str, int]:
        """Skips grouped by the first words of their reason."""
        counts: dict[str, int] = {}
        for s in self.skipped:
            key = s.reason.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        return counts


# The controls a user changes when a start page fails, named as the CLI and the Collect page name them.
ALLOW_PRIVATE_CONTROL = ('tick "Allow private and local addresses" (Collect page, Advanced) or pass --allow-private '
                         "(or --allow-network CIDR) to `python -m core crawl`, only for a site you trust on your network")
RETRY_CONTROL = ('start again later with "Retry photos that timed out or failed on the server last time" ticked '
                 "(--retry-failed), or allow more time (--timeout, --deadline)")


def start_page_hint(reason: str) -> str:
    """What to change when a start page ended with `reason`."""
    if "non-public address" in reason:
        return ALLOW_PRIVATE_CONTROL
    if reason.startswith(("timed out", "too slow", "connection error", "HTTP 5", "HTTP 429")):
        return RETRY_CONTROL
    if reason.startswith("blocked by robots.txt"):
        return "the site's robots.txt does not allow PhotoLoreBot there: start from a page it allows"
    if reason.startswith("DNS lookup failed"):
        return "check the start URL's host name and your network"
    return "check the start URL"


_SEED_LINE = re.compile(r"^\s*(?:(?P<cls>[^:]+?)\s*:\s*)?(?P<url>https?://\S+)\s*$", re.I)


def parse_seed_lines(text: str, default_class: str = DEFAULT_CLASS) -> list[tuple[str, str]]:
    """Parse lines like `living room: https://...` or a bare URL into (class, url) pairs."""
    seeds: list[tuple[str, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SEED_LINE.match(line)
        if not m:
            raise ValueError(f"line {n}: {line!r} is not 'class: http(s)://url' or a bare http(s) URL")
        seeds.append(((m.group("cls") or default_class).strip(), m.group("url")))
    return seeds
