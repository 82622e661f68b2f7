"""HTTP for the crawler: SSRF guard, per-host politeness, retries, redirects, streamed size caps.

Every request and every redirect hop goes through `Fetcher.get`, so the guard, robots.txt and
the politeness rules cannot be bypassed by a redirect.
"""
from __future__ import annotations

import email.utils
import ipaddress
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urljoin, urlsplit, urlunsplit

from core.crawl.config import CrawlConfig


class FetchError(Exception):
    """A URL that could not be fetched; `reason` is shown to the user."""

    def __init__(self, reason: str, *, requested: bool = True, transient: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.requested = requested  # False when refused before any byte went out
        self.transient = transient  # timeouts, connection errors, 429/5xx: worth another try on a later run


@dataclass
class Response:
    url: str  # final URL after redirects
    status: int
    headers: dict[str, str]
    body: bytes
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


# Query parameters that only track the visitor: the same page or photo with another value is the same URL.
_TRACKING = re.compile(r"^(utm_\w*|fbclid|gclid|gclsrc|dclid|gbraid|wbraid|msclkid|yclid|twclid|ttclid|igshid|mc_cid|mc_eid|"
                       r"_ga|_gl|_hsenc|_hsmi|mkt_tok|oly_anon_id|oly_enc_id|vero_id|s_cid|rb_clickid|srsltid)$", re.I)


def _without_tracking(query: str) -> str:
    if not query:
        return query
    return "&".join(p for p in query.split("&") if p and not _TRACKING.match(p.split("=", 1)[0]))


def normalize_url(url: str, base: Optional[str] = None) -> Optional[str]:
    """Absolute http(s) URL without fragment and tracking parameters (utm_*, fbclid, gclid, ...),
    lower-case host; None for other schemes."""
    try:
        absolute = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.hostname.lower()
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    port = parts.port if parts.port is not None else None
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", _without_tracking(parts.query), ""))


def normalized_seeds(config: CrawlConfig) -> list[tuple[str, str]]:
    """A config's seeds as (class, normalized URL) pairs, the crawl job's identity (see `state.job_id`);
    raises ValueError naming a seed that is no http(s) URL."""
    seeds = []
    for class_name, raw in config.seeds:
        url = normalize_url(raw)
        if url is None:
            raise ValueError(f"seed {raw!r} is not an http(s) URL")
        seeds.append((class_name.strip() or "crawl", url))
    return seeds


def host_key(url: str) -> str:
    """scheme://host[:port], the unit of politeness and robots.txt."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def _forbidden_address(ip: ipaddress._BaseAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


def check_ssrf(url: str, allow_private: bool, allow_networks: tuple[str, ...] = ()) -> None:
    """Refuse URLs whose host resolves to a private, loopback, link-local or reserved address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"refused: only http and https URLs are fetched ({parts.scheme or 'no scheme'})", requested=False)
    host = parts.hostname
    if not host:
        raise FetchError("refused: URL has no host", requested=False)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError(f"DNS lookup failed for {host}: {exc.strerror or exc}", requested=False) from None
    allowed = [ipaddress.ip_network(n, strict=False) for n in allow_networks]
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if _forbidden_address(ip) and not any(ip.version == n.version and ip in n for n in allowed):
            raise FetchError(
                f"refused: {host} resolves to non-public address {ip} (server-side request forgery guard)",
                requested=False,
            )


def crawl_delay(lines: list[str], user_agent: str) -> Optional[float]:
    """Crawl-delay for our agent (its own group first, else `*`); the stdlib parser drops fractions."""
    token = user_agent.split("/")[0].strip().lower()
    found: dict[str, float] = {}
    agents: list[str] = []
    in_rules = False
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (x.strip() for x in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
        else:
            in_rules = True
            if key == "crawl-delay":
                try:
                    delay = float(value)
                except ValueError:
                    continue
                for agent in agents:
                    found.setdefault("own" if agent not in ("*", "") and agent in token else agent, delay)
    return found.get("own", found.get("*"))


class HostGate:
    """Per-host concurrency limit and a minimum delay between request starts on one host."""

    def __init__(self, per_host: int, delay_s: float):
        self.per_host = per_host
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self._sems: dict[str, threading.Semaphore] = {}
        self._next: dict[str, float] = {}
        self._delays: dict[str, float] = {}

    def set_delay(self, host: str, delay_s: float) -> None:
        """Raise one host's delay (robots.txt Crawl-delay)."""
        with self._lock:
            self._delays[host] = max(self.delay_s, delay_s)

    def acquire(self, host: str, cancel: Optional[threading.Event]) -> None:
        with self._lock:
            sem = self._sems.setdefault(host, threading.Semaphore(self.per_host))
        while not sem.acquire(timeout=0.2):
            if cancel is not None and cancel.is_set():
                raise FetchError("cancelled", requested=False)
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, 0.0))
            self._next[host] = slot + self._delays.get(host, self.delay_s)
        wait = slot - time.monotonic()
        if wait > 0 and _sleep(wait, cancel):
            sem.release()
            raise FetchError("cancelled", requested=False)

    def release(self, host: str) -> None:
        with self._lock:
            sem = self._sems[host]
        sem.release()


def _sleep(seconds: float, cancel: Optional[threading.Event]) -> bool:
    """Sleep; True if cancelled meanwhile."""
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Fetcher:
    """Thread-safe HTTP client with the crawler's safety and politeness rules."""

    def __init__(self, config: CrawlConfig, cancel: Optional[threading.Event] = None):
        self.config = config
        self.cancel = cancel
        self.gate = HostGate(config.per_host_concurrency, config.delay_s)
        self._local = threading.local()
        self._sessions: list = []
        self._sessions_lock = threading.Lock()
        self._robots: dict[str, object] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._robots_guard = threading.Lock()
        self.request_count = 0
        self._count_lock = threading.Lock()

    def _session(self):
        s = getattr(self._local, "session", None)
        if s is None:
            import requests
            from requests.adapters import HTTPAdapter

            s = requests.Session()
            s.headers["User-Agent"] = self.config.user_agent
            s.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=self.config.per_host_concurrency, max_retries=0))
            s.mount("https://", HTTPAdapter(pool_connections=8, pool_maxsize=self.config.per_host_concurrency, max_retries=0))
            s.trust_env = False  # a proxy from the environment would bypass the SSRF check
            self._local.session = s
            with self._sessions_lock:
                self._sessions.append(s)
        return s

    def close(self) -> None:
        with self._sessions_lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()

    # robots.txt -----------------------------------------------------------------------------
    def allowed(self, url: str) -> bool:
        """Whether robots.txt of the URL's host lets our user agent fetch it."""
        if not self.config.respect_robots:
            return True
        host = host_key(url)
        with self._robots_guard:
            lock = self._robots_locks.setdefault(host, threading.Lock())
        with lock:
            parser = self._robots.get(host)
            if parser is None:
                parser = self._load_robots(host)
                self._robots[host] = parser
        return parser.can_fetch(self.config.user_agent, url)

    def _load_robots(self, host: str):
        from urllib.robotparser import RobotFileParser

        parser = RobotFileParser(host + "/robots.txt")
        try:
            resp = self.get(host + "/robots.txt", max_bytes=500_000, check_robots=False, accept_status=True)
        except FetchError:
            # Unreachable robots.txt: be conservative and crawl nothing there, as major crawlers do.
            parser.disallow_all = True
            return parser
        if resp.status >= 500 or resp.status in (401, 403):
            parser.disallow_all = True
        elif resp.status >= 400:
            parser.allow_all = True
        else:
            lines = resp.body.decode("utf-8", "replace").splitlines()
            parser.parse(lines)
            delay = crawl_delay(lines, self.config.user_agent)
            if delay:
                self.gate.set_delay(host, min(float(delay), 30.0))
        return parser

    # requests -------------------------------------------------------------------------------
    def get(self, url: str, *, max_bytes: int, check_robots: bool = True, accept_status: bool = False,
            accept_types: Optional[tuple[str, ...]] = None) -> Response:
        """GET with redirects followed by hand (guard + robots on each hop) and retries."""
        chain: list[str] = []
        current = url
        for _hop in range(self.config.max_redirects + 1):
            check_ssrf(current, self.config.allow_private, self.config.allow_networks)
            if check_robots and not self.allowed(current):
                raise FetchError("blocked by robots.txt" + (f" (after redirect to {current})" if chain else ""), requested=False)
            status, headers, body = self._get_with_retries(current, max_bytes, accept_types)
            if status in (301, 302, 303, 307, 308) and "location" in headers:
                target = normalize_url(headers["location"], current)
                chain.append(current)
                if target is None:
                    raise FetchError(f"redirect to an unsupported URL: {headers['location'][:200]}")
                if target in chain:
                    raise FetchError(f"redirect loop: {' -> '.join(chain + [target])}")
                current = target
                continue
            if status >= 400 and not accept_status:
                raise FetchError(f"HTTP {status}")
            return Response(url=current, status=status, headers=headers, body=body, redirects=chain)
        raise FetchError(f"too many redirects (more than {self.config.max_redirects})")

    def _get_with_retries(self, url: str, max_bytes: int, accept_types) -> tuple[int, dict[str, str], bytes]:
        import requests

        cfg = self.config
        host = host_key(url)
        last = ""
        timeouts = attempts = 0
        for attempt in range(cfg.retries + 1):
            attempts = attempt + 1
            if self.cancel is not None and self.cancel.is_set():
                raise FetchError("cancelled", requested=attempt > 0)
            wait: Optional[float] = None
            self.gate.acquire(host, self.cancel)
            try:
                with self._count_lock:
                    self.request_count += 1
                status, headers, body = self._get_once(url, max_bytes, accept_types)
            except requests.Timeout:
                last = f"timed out after {cfg.timeout_s:g} s"
                timeouts += 1
            except requests.ConnectionError as exc:
                last = f"connection error: {type(exc).__name__}"
            except requests.RequestException as exc:
                raise FetchError(f"request failed: {type(exc).__name__}: {exc}") from None
            else:
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                    wait = _retry_after(headers.get("retry-after")) if status in (429, 503) else None
                    if wait is not None and wait > cfg.max_retry_after_s:
                        raise FetchError(f"HTTP {status}: server asks to retry after {wait:.0f} s (more than {cfg.max_retry_after_s:g} s)",
                                         transient=True)
                else:
                    return status, headers, body
            finally:
                self.gate.release(host)
            if attempt == cfg.retries or timeouts > cfg.timeout_retries:
                break
            if wait is None:
                wait = cfg.backoff_s * (2 ** attempt) + random.uniform(0, cfg.backoff_s)
            if _sleep(wait, self.cancel):
                raise FetchError("cancelled")
        raise FetchError(f"{last} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})", transient=True)

    def _get_once(self, url: str, max_bytes: int, accept_types) -> tuple[int, dict[str, str], bytes]:
        deadline = time.monotonic() + self.config.deadline_s
        resp = self._session().get(url, timeout=self.config.timeout_s, allow_redirects=False, stream=True)
        try:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            status = resp.status_code
            if status >= 300 or resp.request.method == "HEAD":
                return status, headers, b""
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if accept_types is not None and not ctype.startswith(accept_types):
                raise FetchError(f"wrong content type: {ctype or 'none'} (expected {' or '.join(accept_types)})")
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"too large: {int(length):,} bytes (limit {max_bytes:,})")
            chunks, total = [], 0
            # read1 returns what one socket read brought, so the total deadline is checked while a server
            # drips bytes (a plain read(n) would wait for all n bytes, one timeout per byte).
            while chunk := resp.raw.read1(65536, decode_content=True):
                if time.monotonic() > deadline:
                    raise FetchError(f"too slow: the download took longer than the total deadline of {self.config.deadline_s:g} s "
                                     "(the server sends data very slowly)", transient=True)
                total += len(chunk)
                if total > max_bytes:
                    raise FetchError(f"too large: more than {max_bytes:,} bytes (limit {max_bytes:,}); download aborted")
                chunks.append(chunk)
                if self.cancel is not None and self.cancel.is_set():
                    raise FetchError("cancelled")
            return status, headers, b"".join(chunks)
        finally:
            resp.close()
