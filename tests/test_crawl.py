"""The crawler against a real, misbehaving website on 127.0.0.1."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.crawl import CrawlConfig, candidate_captions, crawl, parse_seed_lines, provenance_for
from tests.crawl_site.site import build_test_site


@pytest.fixture
def site():
    s = build_test_site().start()
    yield s
    s.stop()


def make_config(site, tmp_path: Path, **kw) -> CrawlConfig:
    defaults = dict(seeds=[("test", site.base + "/")], library_dir=tmp_path / "library", state_path=tmp_path / "crawl.sqlite",
                    max_depth=2, max_pages=50, max_images=100, workers=4, per_host_concurrency=3, delay_s=0.0,
                    timeout_s=1.0, deadline_s=1.5, retries=2, backoff_s=0.05, max_bytes=300_000, min_width=32, min_height=32,
                    near_dup_threshold=6, allow_private=True)
    defaults.update(kw)
    return CrawlConfig(**defaults)


EXPECTED_SAVED = {
    "/img/og.jpg", "/img/a.jpg", "/img/large.jpg", "/img/lazy.jpg", "/img/pic-800.webp", "/img/linked.png",
    "/img/..%2F..%2Fescape.jpg", "/flaky.jpg", "/ratelimited.jpg", "/img/n1.jpg", "/img/n2.jpg",
    # CSS backgrounds: style attributes and a <style> block, background shorthand, two url()s, quotes or none,
    # relative to <base href>; and the photo of a page reached through <meta http-equiv="refresh">.
    "/img/inline.jpg", "/styles/inline-rel.jpg", "/img/unquoted.webp", "/styles/hero.jpg", "/img/band.png",
    "/img/layer1.jpg", "/img/layer2.jpg", "/img/landed.jpg",
}
EXPECTED_SKIPPED = {  # image path -> start of the reason
    "/private/hidden.jpg": "blocked by robots.txt",
    "/slow.jpg": "timed out",
    "/loop.jpg": "redirect loop",
    "/fake.jpg": "not an image: wrong content type: text/html",
    "/fake2.jpg": "not an image: content is HTML",
    "/truncated.jpg": "undecodable: truncated image",
    "/big-declared.png": "too large",
    "/big-streamed.png": "too large",
    "/missing.jpg": "HTTP 404",
    "/tiny.png": "too small: 16x16",
    "/img/dup.jpg": "duplicate: same bytes as",
    "/img/near.jpg": "near duplicate: looks like",
    "/drip.jpg": "too slow: the download took longer than the total deadline of 1.5 s",
}
NEVER_REQUESTED = {
    "/private/secret.html", "/private/hidden.jpg", "/img/secret.jpg",  # robots.txt
    "/img/small.jpg", "/img/pic-400.webp", "/img/pic-fallback.jpg",  # a better srcset candidate exists
    "/nested/deeper/deepest/page3.html", "/img/n3.jpg", "/calendar?month=3",  # beyond max_depth=2
    "/img/css-comment.jpg", "/img/html-comment.jpg", "/img/html-comment2.jpg",  # inside CSS / HTML comments
    "/img/a.jpg?utm_source=newsletter&utm_medium=email", "/nested/page1.html?fbclid=abc123",  # tracking variants
}


def _rel(site, url: str) -> str:
    return url[len(site.base):]


def test_crawl_saves_exactly_the_good_photos_and_says_why_it_skipped_the_rest(site, tmp_path):
    saved_hook = []
    report = crawl(make_config(site, tmp_path), on_saved=lambda path, prov: saved_hook.append((path, prov)))

    assert {_rel(site, p.url) for p in report.saved} == EXPECTED_SAVED
    image_skips = {_rel(site, s.url): s.reason for s in report.skipped if s.kind == "image"}
    assert set(image_skips) == set(EXPECTED_SKIPPED)
    for path, start in EXPECTED_SKIPPED.items():
        assert image_skips[path].startswith(start), (path, image_skips[path])
    assert "a.jpg" in image_skips["/img/dup.jpg"] and "a.jpg" in image_skips["/img/near.jpg"]
    page_skips = {_rel(site, s.url): s.reason for s in report.skipped if s.kind == "page"}
    assert page_skips == {"/private/secret.html": "blocked by robots.txt"}

    requested = set(site.paths())
    assert not (NEVER_REQUESTED & requested), NEVER_REQUESTED & requested
    assert {"/calendar?month=1", "/calendar?month=2", "/nested/deeper/page2.html", "/css.html", "/moved.html",
            "/landing.html"} <= requested
    assert report.links_ignored.get("out of scope") == 1  # the external link, never resolved nor fetched
    # Retries: 5xx twice then success; 429 honours Retry-After; timeouts give up; 4xx never retried.
    assert site.count("/flaky.jpg") == 3
    t429 = site.times("/ratelimited.jpg")
    assert len(t429) == 2 and t429[1] - t429[0] >= 0.95
    assert site.count("/slow.jpg") == 2  # a timeout is retried once, not `retries` times
    assert site.count("/missing.jpg") == 1
    assert site.count("/drip.jpg") == 1  # the total deadline is not retried within a run
    assert site.count("/img/a.jpg") == 1 and site.count("/") == 1 and site.count("/robots.txt") == 1

    # Files: <library>/<class>/<safe name>, right extension from the bytes, nothing escaped the class folder.
    lib = tmp_path / "library"
    files = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file())
    assert files == sorted(["test/og.jpg", "test/a.jpg", "test/large.jpg", "test/lazy.jpg", "test/pic-800.webp",
                            "test/linked.png", "test/escape.jpg", "test/flaky.jpg", "test/ratelimited.jpg",
                            "test/n1.jpg", "test/n2.jpg", "test/inline.jpg", "test/inline-rel.jpg", "test/unquoted.webp",
                            "test/hero.jpg", "test/band.png", "test/layer1.jpg", "test/layer2.jpg", "test/landed.jpg"])
    assert [p for p, _ in saved_hook] == [p.path for p in report.saved]

    # Provenance and candidate captions.
    a_path = lib / "test" / "a.jpg"
    prov = provenance_for(a_path, tmp_path / "crawl.sqlite")
    assert prov["image_url"] == site.base + "/img/a.jpg" and prov["page_url"] == site.base + "/"
    assert prov["alt"] == "A red thing" and prov["title"] == "Home of tests" and prov["class"] == "test"
    assert prov["crawled_at"] > 0
    assert candidate_captions(a_path, tmp_path / "crawl.sqlite") == ["A red thing", "Home of tests"]
    assert candidate_captions(lib / "test" / "n1.jpg", tmp_path / "crawl.sqlite") == ["first nested", "Nested one"]
    assert candidate_captions(lib / "test" / "inline.jpg", tmp_path / "crawl.sqlite") == ["Inline hero", "Styled"]
    assert provenance_for(lib / "test" / "landed.jpg", tmp_path / "crawl.sqlite")["page_url"] == site.base + "/landing.html"
    assert provenance_for(tmp_path / "elsewhere.jpg", tmp_path / "crawl.sqlite") is None

    # A rerun of the finished crawl fetches nothing and saves nothing.
    before = len(site.paths())
    again = crawl(make_config(site, tmp_path))
    assert again.saved == [] and len(site.paths()) == before
    # Asked to, a rerun retries only what failed transiently (here: the timeout), nothing else.
    retry = crawl(make_config(site, tmp_path, retry_failed=True))
    assert set(site.paths()[before:]) == {"/robots.txt", "/slow.jpg", "/drip.jpg"} and site.count("/slow.jpg") == 4
    assert sorted((_rel(site, s.url), s.reason.split(" ")[0]) for s in retry.skipped) == [("/drip.jpg", "too"), ("/slow.jpg", "timed")]


def test_interrupted_crawl_resumes_without_refetching_or_duplicating(site, tmp_path):
    cancel = threading.Event()
    seen = []

    def stop_after_three(path, prov):
        seen.append(path)
        if len(seen) == 3:
            cancel.set()

    first = crawl(make_config(site, tmp_path), cancel=cancel, on_saved=stop_after_three)
    assert first.cancelled and 3 <= len(first.saved) < len(EXPECTED_SAVED)
    first_requests = len(site.paths())
    done_in_first = {_rel(site, p.url) for p in first.saved}

    second = crawl(make_config(site, tmp_path))
    later = site.paths()[first_requests:]
    assert not (done_in_first & set(later)), "a photo saved before the interruption was downloaded again"
    assert "/" not in later
    assert {_rel(site, p.url) for p in first.saved + second.saved} == EXPECTED_SAVED
    files = [p for p in (tmp_path / "library").rglob("*") if p.is_file()]
    assert len(files) == len(EXPECTED_SAVED)


def test_page_and_image_limits_stop_the_crawl(site, tmp_path):
    report = crawl(make_config(site, tmp_path, max_images=2, max_pages=1, workers=2))
    assert len(report.saved) == 2 and report.stopped_by == "max_images"
    assert report.pages_visited == 1
    assert "/nested/page1.html" not in site.paths()
    files = [p for p in (tmp_path / "library").rglob("*") if p.is_file()]
    assert len(files) == 2


def test_ssrf_guard_refuses_loopback_without_sending_a_request(site, tmp_path):
    report = crawl(make_config(site, tmp_path, allow_private=False))
    assert report.saved == [] and report.pages_visited == 0
    assert len(report.skipped) == 1 and "non-public address 127.0.0.1" in report.skipped[0].reason
    assert site.paths() == []
    # Not a success: the report says why and names the control to change, as the CLI and the page call it.
    assert report.start_problem.startswith("Nothing was saved: the start page could not be crawled.")
    assert "non-public address 127.0.0.1" in report.start_problem
    assert '"Allow private and local addresses"' in report.start_problem and "--allow-private" in report.start_problem

    # The same start page, started again with the setting changed, is crawled (it is not "done").
    again = crawl(make_config(site, tmp_path, allow_private=True, max_depth=0))
    assert again.start_problem == "" and again.pages_visited == 1 and len(again.saved) >= 8


def test_cli_refused_start_page_is_a_warning_with_the_flag(site, tmp_path, monkeypatch, capsys):
    from core.crawl.cli import main as crawl_main

    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    rc = crawl_main(["crawl", f"{site.base}/", "--no-ingest", "--delay", "0"])
    err = capsys.readouterr().err
    assert rc == 1 and "warning: Nothing was saved" in err and "--allow-private" in err
    assert site.paths() == []


def test_ssrf_guard_checks_every_redirect_hop(site, tmp_path):
    from core.crawl.net import Fetcher, FetchError
    from tests.crawl_site.site import Route

    site.routes["/to-other-loopback"] = Route(b"", "text/plain", 302, {"Location": "http://127.0.0.2:9/x.jpg"})
    cfg = make_config(site, tmp_path, allow_private=False, allow_networks=("127.0.0.1/32",))
    fetcher = Fetcher(cfg)
    with pytest.raises(FetchError, match="127.0.0.2 resolves to non-public address"):
        fetcher.get(site.base + "/to-other-loopback", max_bytes=1000, check_robots=False)
    assert site.count("/to-other-loopback") == 1


@pytest.mark.parametrize("url", ["http://10.1.2.3/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
                                 "http://0.0.0.0/", "http://[::ffff:192.168.0.1]/", "http://224.0.0.1/", "file:///etc/passwd"])
def test_check_ssrf_refuses_non_public_addresses(url):
    from core.crawl.net import FetchError, check_ssrf

    with pytest.raises(FetchError, match="refused"):
        check_ssrf(url, allow_private=False)


def test_parse_seed_lines():
    seeds = parse_seed_lines("living room: https://a.example/rooms\n# comment\n\nhttps://b.example/x?y=1\n")
    assert seeds == [("living room", "https://a.example/rooms"), ("crawl", "https://b.example/x?y=1")]
    with pytest.raises(ValueError, match="line 1"):
        parse_seed_lines("kitchen: ftp://nope")


def _gallery(n: int, sleep: float, robots: bytes = b"User-agent: *\nAllow: /\n"):
    from tests.crawl_site.site import Route, Site, _jpeg, html

    routes = {"/robots.txt": Route(robots, "text/plain"),
              "/": Route(html("Gallery", "".join(f'<img src="/g/{i}.jpg">' for i in range(n))))}
    for i in range(n):
        routes[f"/g/{i}.jpg"] = _jpeg(200 + i, sleep=sleep)
    return Site(routes).start()


@pytest.mark.parametrize("per_host", [1, 3])
def test_per_host_concurrency_limit_holds(tmp_path, per_host):
    site = _gallery(9, sleep=0.25)
    try:
        report = crawl(make_config(site, tmp_path, workers=6, per_host_concurrency=per_host, near_dup_threshold=-1))
    finally:
        site.stop()
    assert len(report.saved) == 9
    assert site.max_active == per_host  # never more, and the pool does use what it may


def test_politeness_delay_and_robots_crawl_delay_space_out_requests(tmp_path):
    site = _gallery(4, sleep=0.0, robots=b"User-agent: *\nCrawl-delay: 0.3\nAllow: /\n")
    try:
        report = crawl(make_config(site, tmp_path, workers=4, per_host_concurrency=4, delay_s=0.1))
    finally:
        site.stop()
    assert len(report.saved) == 4
    starts = sorted(t for p, t in site.requests if p != "/robots.txt")
    assert all(b - a >= 0.28 for a, b in zip(starts, starts[1:])), [round(b - a, 3) for a, b in zip(starts, starts[1:])]
