"""The crawl loop: a deterministic coordinator thread plus a pool of download workers.

Workers only do network and CPU work (fetch, parse, decode, hash). The coordinator handles
results strictly in submission order, so which copy of a duplicate wins, which pages a limit
cuts off and what a resumed crawl does next do not depend on thread timing. It is also the
only thread that touches the SQLite state and the library folder.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional, Union
from urllib.parse import urlsplit

from core.crawl.config import CrawlConfig, CrawlReport, SavedPhoto, SkipRecord, start_page_hint
from core.crawl.extract import PageContent, extract
from core.crawl.files import CheckedImage, ImageRejected, check_image, file_stem_for, safe_component, save_unique
from core.crawl.net import Fetcher, FetchError, check_ssrf, host_key, normalized_seeds
from core.crawl.state import CrawlState, job_id
from core.neardup import nearest, to_hex

ProgressFn = Callable[..., None]
SavedFn = Callable[..., None]


@dataclass(frozen=True)
class PageTask:
    url: str
    class_name: str
    depth: int


@dataclass(frozen=True)
class ImageTask:
    url: str
    class_name: str
    page_url: str
    alt: str
    title: str


Task = Union[PageTask, ImageTask]


@dataclass
class PageResult:
    content: Optional[PageContent] = None
    final_url: str = ""
    reason: str = ""
    requested: bool = True
    transient: bool = False


@dataclass
class ImageResult:
    data: bytes = b""
    checked: Optional[CheckedImage] = None
    reason: str = ""
    requested: bool = True
    transient: bool = False


@dataclass
class _Scope:
    """Where links of one class may lead: the seeds' hosts, or under the seeds' path prefixes."""

    mode: str
    roots: list[str] = field(default_factory=list)

    def allows(self, url: str) -> bool:
        for root in self.roots:
            if self.mode == "host" and host_key(url) == host_key(root):
                return True
            if self.mode == "prefix":
                prefix = root if urlsplit(root).path.endswith("/") else root.rsplit("/", 1)[0] + "/"
                if url.startswith(prefix) or url == root:
                    return True
        return False


class _Worker:
    """What runs on pool threads; holds no crawl state."""

    def __init__(self, config: CrawlConfig, fetcher: Fetcher, stop: threading.Event):
        self.config = config
        self.fetcher = fetcher
        self.stop = stop
        self.renderer = None
        self._renderer_lock = threading.Lock()

    def _render(self, url: str) -> tuple[str, str]:
        from core.crawl.render import Renderer

        with self._renderer_lock:
            if self.renderer is None:
                c = self.config
                self.renderer = Renderer(chromium_path=c.chromium_path, chromedriver_path=c.chromedriver_path,
                                         timeout_s=c.timeout_s, wait_s=c.render_wait_s, user_agent=c.user_agent,
                                         max_browsers=min(2, c.workers))
        return self.renderer.render(url)

    def page(self, task: PageTask) -> PageResult:
        if self.stop.is_set():
            return PageResult(reason="cancelled", requested=False)
        try:
            if self.config.render == "js":
                check_ssrf(task.url, self.config.allow_private, self.config.allow_networks)
                if not self.fetcher.allowed(task.url):
                    raise FetchError("blocked by robots.txt", requested=False)
                final_url, html = self._render(task.url)
                # The browser follows redirects on its own: refuse content that ended up somewhere private.
                check_ssrf(final_url, self.config.allow_private, self.config.allow_networks)
                return PageResult(content=extract(html, final_url), final_url=final_url)
            resp = self.fetcher.get(task.url, max_bytes=self.config.max_page_bytes,
                                    accept_types=("text/html", "application/xhtml+xml"))
            return PageResult(content=extract(resp.body, resp.url), final_url=resp.url)
        except FetchError as exc:
            return PageResult(reason=exc.reason, requested=exc.requested, transient=exc.transient)
        except Exception as exc:  # a parser or browser bug must cost one page, not the crawl
            return PageResult(reason=f"unexpected error: {type(exc).__name__}: {exc}")

    def image(self, task: ImageTask) -> ImageResult:
        if self.stop.is_set():
            return ImageResult(reason="cancelled", requested=False)
        c = self.config
        try:
            resp = self.fetcher.get(task.url, max_bytes=c.max_bytes, accept_types=("image/", "application/octet-stream"))
            checked = check_image(resp.body, resp.content_type, min_width=c.min_width, min_height=c.min_height,
                                  max_pixels=c.max_pixels)
            return ImageResult(data=resp.body, checked=checked)
        except FetchError as exc:
            reason = exc.reason
            if reason.startswith("wrong content type"):
                reason = "not an image: " + reason
            return ImageResult(reason=reason, requested=exc.requested, transient=exc.transient)
        except ImageRejected as exc:
            return ImageResult(reason=exc.reason)
        except Exception as exc:  # a decoder bug must cost one image, not the crawl
            return ImageResult(reason=f"unexpected error: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()


def crawl(config: CrawlConfig, *, on_progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
          on_saved: Optional[SavedFn] = None) -> CrawlReport:
    """Crawl the seeds, save new photos to `<library>/<class>/`, and report what was saved and skipped.

    Rerunning with the same seeds resumes: visited pages and finished images are not fetched again.
    `on_saved(path, provenance)` is called once per newly saved photo (the ingest hook).
    """
    seeds = normalized_seeds(config)
    report = CrawlReport()
    state = CrawlState(config.state_path, job_id(seeds))
    stop = threading.Event()
    fetcher = Fetcher(config, stop)
    worker = _Worker(config, fetcher, stop)
    scopes: dict[str, _Scope] = {}
    for class_name, url in seeds:
        scopes.setdefault(class_name, _Scope(config.scope)).roots.append(url)

    # Frontier in discovery order: resumed work first, then new seeds.
    pending: list[tuple[int, Task]] = []
    if config.retry_failed:
        state.requeue_failed()
    for url, cls, depth in state.pending_pages():
        pending.append((0, PageTask(url, cls, depth)))
    for url, cls, page_url, alt, title in state.pending_images():
        pending.append((1, ImageTask(url, cls, page_url or "", alt or "", title or "")))
    frontier: deque[Task] = deque(task for _, task in pending)
    for class_name, url in seeds:
        if state.add_page(url, class_name, 0):
            frontier.append(PageTask(url, class_name, 0))
        elif state.page_status(url) in ("skipped", "failed"):
            # A start page that was refused or failed is tried again: the settings may have changed
            # (allowed networks, retries, limits). A refusal costs no request.
            state.requeue_page(url)
            frontier.append(PageTask(url, class_name, 0))
    shas, phashes = state.known_hashes()
    pages_started = state.pages_done()
    saved_total = state.images_saved()
    report.images_found = len([t for t in frontier if isinstance(t, ImageTask)])
    window = config.workers * 4
    inflight: deque[tuple[Task, Future]] = deque()
    images_inflight = 0
    processed = 0

    def progress(task: Optional[Task], note: str = "") -> None:
        if on_progress is None:
            return
        total = processed + len(inflight) + len(frontier)
        on_progress(processed, max(total, processed), pages_visited=report.pages_visited, images_found=report.images_found,
                    saved=len(report.saved), skipped=len(report.skipped), url=task.url if task else "", note=note)

    def ignore(reason: str) -> None:
        report.links_ignored[reason] = report.links_ignored.get(reason, 0) + 1

    def handle_page(task: PageTask, res: PageResult) -> str:
        if res.requested:
            report.pages_visited += 1
        if res.content is None:
            report.skipped.append(SkipRecord(task.url, "page", res.reason))
            state.finish_page(task.url, "failed" if res.transient else "skipped", res.reason, [], [])
            return res.reason
        new_pages = []
        for link in res.content.links:
            if task.depth + 1 > config.max_depth:
                ignore("beyond max depth")
            elif not scopes[task.class_name].allows(link):
                ignore("out of scope")
            else:
                new_pages.append((link, task.class_name, task.depth + 1))
        new_images = [(ref.url, task.class_name, res.final_url, ref.alt, res.content.title) for ref in res.content.images]
        added_pages, added_images = state.finish_page(task.url, "done", None, new_pages, new_images)
        for link, cls, depth in added_pages:
            frontier.append(PageTask(link, cls, depth))
        for url, cls, page_url, alt, title in added_images:
            frontier.append(ImageTask(url, cls, page_url, alt, title))
        report.images_found += len(added_images)
        if len(added_images) < len(new_images):
            report.links_ignored["image already known"] = report.links_ignored.get("image already known", 0) + len(new_images) - len(added_images)
        return ""

    def handle_image(task: ImageTask, res: ImageResult) -> str:
        nonlocal saved_total
        checked = res.checked
        if checked is None:
            report.skipped.append(SkipRecord(task.url, "image", res.reason, task.page_url))
            state.mark_image(task.url, "failed" if res.transient else "skipped", res.reason)
            return res.reason
        reason = ""
        if checked.sha256 in shas:
            reason = f"duplicate: same bytes as {shas[checked.sha256]}"
        else:
            near = nearest(checked.phash, phashes, config.near_dup_threshold)
            if near is not None:
                reason = f"near duplicate: looks like {near[0]} (perceptual hash distance {near[1]})"
        if reason:
            report.skipped.append(SkipRecord(task.url, "image", reason, task.page_url))
            state.mark_image(task.url, "skipped", reason, sha256=checked.sha256, phash=to_hex(checked.phash))
            return reason
        directory = config.library_dir / safe_component(task.class_name, "crawl")
        try:
            path = save_unique(directory, file_stem_for(task.url), checked.ext, res.data, checked.sha256).resolve()
        except OSError as exc:
            reason = f"could not save: {exc.strerror or exc}"
            report.skipped.append(SkipRecord(task.url, "image", reason, task.page_url))
            state.mark_image(task.url, "skipped", reason)
            return reason
        state.mark_image(task.url, "saved", path=path, sha256=checked.sha256, phash=to_hex(checked.phash),
                         width=checked.width, height=checked.height)
        shas[checked.sha256] = str(path)
        phashes.append((checked.phash, str(path)))
        saved_total += 1
        photo = SavedPhoto(path=path, url=task.url, class_name=task.class_name, page_url=task.page_url, alt=task.alt, title=task.title)
        report.saved.append(photo)
        if on_saved is not None:
            provenance = {"image_url": task.url, "page_url": task.page_url, "alt": task.alt, "title": task.title,
                          "class": task.class_name, "crawled_at": time.time(), "sha256": checked.sha256}
            try:
                on_saved(path, provenance)
            except Exception as exc:  # the hook (ingest) failing must not lose the crawl
                report.warnings.append(f"on_saved failed for {path}: {type(exc).__name__}: {exc}")
        return ""

    pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="crawl")
    try:
        progress(None)
        while True:
            if cancel is not None and cancel.is_set():
                stop.set()
                report.cancelled = True
                report.stopped_by = "cancelled"
            while not stop.is_set() and len(inflight) < window and frontier:
                task = frontier[0]
                if isinstance(task, PageTask):
                    if pages_started >= config.max_pages:
                        frontier.popleft()
                        ignore("page limit reached")
                        report.stopped_by = report.stopped_by or "max_pages"
                        continue
                    pages_started += 1
                    frontier.popleft()
                    inflight.append((task, pool.submit(worker.page, task)))
                else:
                    if saved_total + images_inflight >= config.max_images:
                        break
                    images_inflight += 1
                    frontier.popleft()
                    inflight.append((task, pool.submit(worker.image, task)))
            if not inflight:
                if frontier and not stop.is_set() and saved_total >= config.max_images:
                    report.stopped_by = "max_images"
                break
            task, fut = inflight[0]
            while not fut.done():
                if cancel is not None and cancel.is_set() and not stop.is_set():
                    stop.set()
                    report.cancelled = True
                    report.stopped_by = "cancelled"
                _wait(fut, 0.1)
            inflight.popleft()
            res = fut.result()
            if isinstance(task, ImageTask):
                images_inflight -= 1
            if res.reason == "cancelled":
                continue  # left queued in the state: a rerun does it
            note = handle_page(task, res) if isinstance(task, PageTask) else handle_image(task, res)
            processed += 1
            if saved_total >= config.max_images and not stop.is_set():
                report.stopped_by = "max_images"
                stop.set()
            progress(task, note)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        worker.close()
        fetcher.close()
        state.close()
    report.requests = fetcher.request_count
    if not report.saved and not report.cancelled:
        report.start_problem = _start_problem(report, {url for _, url in seeds})
    return report


def _start_problem(report: CrawlReport, seed_urls: set[str]) -> str:
    """A crawl that saved nothing because its start pages failed says why and what to change."""
    failed = [s for s in report.skipped if s.kind == "page" and s.url in seed_urls]
    if not failed:
        return ""
    lines = [f"{s.url}: {s.reason}. To fix: {start_page_hint(s.reason)}." for s in failed]
    head = "Nothing was saved: the start page could not be crawled." if len(failed) == 1 else \
        f"Nothing was saved: {len(failed)} start pages could not be crawled."
    return "\n".join([head, *lines])


def _wait(fut: Future, timeout: float) -> None:
    from concurrent.futures import wait

    wait([fut], timeout=timeout)
