"""A misbehaving test website served by a real ThreadingHTTPServer on 127.0.0.1.

Every request is recorded (path with query, time) so tests can assert what was never requested.
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

import numpy as np
from PIL import Image

TINY_GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACw="


def smooth_image(seed: int, size: int = 160) -> Image.Image:
    """A distinct smooth picture: random 6x6 colours upscaled, so perceptual hashes differ a lot."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "RGB")
    return small.resize((size, size), Image.Resampling.BICUBIC)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@dataclass
class Route:
    body: bytes = b""
    ctype: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict = field(default_factory=dict)
    sleep: float = 0.0
    content_length: bool = True
    drip: float = 0.0  # seconds between single bytes of the body (a server that drip-feeds)
    # Called with the number of times this path was requested before (0 for the first time);
    # returns a Route to serve instead, for flaky and rate-limited behaviour.
    dynamic: Optional[Callable[[int], "Route"]] = None


class Site:
    """Routes by path-with-query; records every request."""

    def __init__(self, routes: dict[str, Route]):
        self.routes = routes
        self.requests: list[tuple[str, float]] = []
        self.active = 0
        self.max_active = 0  # most requests handled at the same time
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK add
            # ~40 ms to every keep-alive response (real web servers set it).
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                with site._lock:
                    count = sum(1 for p, _ in site.requests if p == self.path)
                    site.requests.append((self.path, time.monotonic()))
                    site.active += 1
                    site.max_active = max(site.max_active, site.active)
                self._counted = True
                try:
                    self._respond(count)
                finally:
                    self._finished()

            def _finished(self) -> None:
                # Called just before the last bytes go out: once the client has read them it may start its next
                # request, and a handler thread descheduled before its bookkeeping must not count as still active.
                if self._counted:
                    self._counted = False
                    with site._lock:
                        site.active -= 1

            def _respond(self, count: int) -> None:
                route = site.routes.get(self.path)
                if route is not None and route.dynamic is not None:
                    route = route.dynamic(count)
                if route is None:
                    route = Route(b"not found", "text/plain", 404)
                if route.sleep:
                    time.sleep(route.sleep)
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.ctype)
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    if route.content_length:
                        self.send_header("Content-Length", str(len(route.body)))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    if route.drip:
                        for i in range(len(route.body)):
                            self.wfile.write(route.body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(route.drip)
                        return
                    for i in range(0, len(route.body), 65536):
                        if i + 65536 >= len(route.body):
                            self._finished()
                        self.wfile.write(route.body[i:i + 65536])
                    if not route.body:
                        self._finished()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the crawler hung up on purpose (size cap, timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "Site":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        with self._lock:
            return [p for p, _ in self.requests]

    def count(self, path: str) -> int:
        return self.paths().count(path)

    def times(self, path: str) -> list[float]:
        with self._lock:
            return [t for p, t in self.requests if p == path]


def html(title: str, body: str, head: str = "") -> bytes:
    return f"<!doctype html><html><head><title>{title}</title>{head}</head><body>{body}</body></html>".encode()


def _jpeg(seed: int, **kw) -> Route:
    return Route(encode(smooth_image(seed), "JPEG", quality=90), "image/jpeg", **kw)


CSS_HEAD = """<base href="/styles/"><style>
    .hero { background-image: url("hero.jpg"); }
    .band { background: #fff url('/img/band.png') repeat-x; }
    .layers { background-image: url(/img/layer1.jpg), url( "/img/layer2.jpg" ); }
    /* .old { background-image: url(/img/css-comment.jpg); } */
</style>"""
CSS_BODY = """
    <div style="background-image:url('/img/inline.jpg')" aria-label="Inline hero"></div>
    <div style="background-image: url(inline-rel.jpg)"></div>
    <section style="color: red; background: #222 url(/img/unquoted.webp) no-repeat center"></section>
    <!-- <div style="background-image:url(/img/html-comment.jpg)"></div> <img src="/img/html-comment2.jpg"> -->
"""


def build_test_site() -> Site:
    """The site of the crawler test; see tests/test_crawl.py for what each route exercises."""
    a = smooth_image(1)
    a_bytes = encode(a, "JPEG", quality=90)
    near = encode(a.resize((150, 150)), "JPEG", quality=70)  # same picture, other size and quality
    big = np.random.default_rng(7).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    big_png = encode(Image.fromarray(big, "RGB"), "PNG")  # ~480 kB, over the test's 300 kB cap
    truncated = encode(smooth_image(8), "JPEG", quality=95)
    fake_html = html("Not a photo", "<p>surprise</p>")

    def flaky(count: int) -> Route:
        return _jpeg(9) if count >= 2 else Route(b"oops", "text/plain", 500)

    def rate_limited(count: int) -> Route:
        return _jpeg(10) if count >= 1 else Route(b"slow down", "text/plain", 429, {"Retry-After": "1"})

    index = html(
        "Home of tests",
        """
        <img src="/img/a.jpg" alt="A red thing">
        <img src="/img/small.jpg" srcset="/img/small.jpg 100w, /img/large.jpg 800w" alt="srcset one">
        <img src="{gif}" data-src="/img/lazy.jpg" alt="lazy one">
        <picture><source type="image/webp" srcset="/img/pic-400.webp 400w, /img/pic-800.webp 800w">
          <img src="/img/pic-fallback.jpg" alt="picture one"></picture>
        <a href="/img/linked.png">a linked photo</a>
        <img src="/img/..%2F..%2Fescape.jpg" alt="sneaky name">
        <img src="/private/hidden.jpg"><a href="/private/secret.html">secret</a>
        <img src="/flaky.jpg"><img src="/ratelimited.jpg"><img src="/slow.jpg"><img src="/loop.jpg">
        <img src="/fake.jpg"><img src="/fake2.jpg"><img src="/truncated.jpg">
        <img src="/big-declared.png"><img src="/big-streamed.png"><img src="/missing.jpg"><img src="/tiny.png">
        <img src="/img/dup.jpg"><img src="/img/near.jpg">
        <a href="/nested/page1.html">nested</a>
        <a href="/nested/page1.html?fbclid=abc123#top">the same page, with a tracking parameter</a>
        <img src="/img/a.jpg?utm_source=newsletter&amp;utm_medium=email" alt="the same photo, tracked">
        <a href="/css.html">styles</a>
        <a href="/moved.html">moved</a>
        <a href="/calendar?month=1">calendar</a>
        <a href="https://example.invalid/elsewhere.html">elsewhere</a>
        <a href="mailto:someone@example.invalid">mail</a>
        """.replace("{gif}", TINY_GIF),
        head='<meta property="og:image" content="/img/og.jpg">',
    )
    routes = {
        "/robots.txt": Route(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
        "/": Route(index),
        "/nested/page1.html": Route(html("Nested one", '<img src="/img/n1.jpg" alt="first nested"><img src="/img/a.jpg">'
                                         '<a href="/nested/deeper/page2.html">deeper</a>')),
        "/nested/deeper/page2.html": Route(html("Nested two", '<img src="/img/n2.jpg" alt="second nested">'
                                                '<a href="/nested/deeper/deepest/page3.html">deepest</a>')),
        "/nested/deeper/deepest/page3.html": Route(html("Too deep", '<img src="/img/n3.jpg">')),
        # Background images in every CSS form; relative URLs resolve against <base href>.
        "/css.html": Route(html("Styled", CSS_BODY, head=CSS_HEAD)),
        # A page that only redirects by <meta refresh>; its target is one more link hop away.
        "/moved.html": Route(html("Moved", "<p>This page has moved.</p>",
                                  head="<meta http-equiv=\"refresh\" content=\"0; URL='/landing.html'\">")),
        "/landing.html": Route(html("Landing", '<img src="/img/landed.jpg" alt="landed here"><img src="/drip.jpg">')),
        "/img/inline.jpg": _jpeg(40),
        "/styles/inline-rel.jpg": _jpeg(41),
        "/img/unquoted.webp": Route(encode(smooth_image(42), "WEBP"), "image/webp"),
        "/styles/hero.jpg": _jpeg(43),
        "/img/band.png": Route(encode(smooth_image(44), "PNG"), "image/png"),
        "/img/layer1.jpg": _jpeg(45),
        "/img/layer2.jpg": _jpeg(46),
        "/img/css-comment.jpg": _jpeg(47),
        "/img/html-comment.jpg": _jpeg(48),
        "/img/html-comment2.jpg": _jpeg(49),
        "/img/landed.jpg": _jpeg(50),
        "/drip.jpg": _jpeg(51, drip=0.2),  # ~2.5 kB at 5 bytes/s: minutes, unless the total deadline stops it
        "/private/secret.html": Route(html("Secret", '<img src="/img/secret.jpg">')),
        "/private/hidden.jpg": _jpeg(20),
        "/img/og.jpg": _jpeg(2),
        "/img/a.jpg": Route(a_bytes, "image/jpeg"),
        "/img/small.jpg": _jpeg(3),
        "/img/large.jpg": _jpeg(4),
        "/img/lazy.jpg": _jpeg(5),
        "/img/pic-400.webp": Route(encode(smooth_image(6), "WEBP"), "image/webp"),
        "/img/pic-800.webp": Route(encode(smooth_image(11), "WEBP"), "image/webp"),
        "/img/pic-fallback.jpg": _jpeg(12),
        "/img/linked.png": Route(encode(smooth_image(13), "PNG"), "image/png"),
        "/img/..%2F..%2Fescape.jpg": _jpeg(14),
        "/img/n1.jpg": _jpeg(15),
        "/img/n2.jpg": _jpeg(16),
        "/img/n3.jpg": _jpeg(17),
        "/flaky.jpg": Route(dynamic=flaky),
        "/ratelimited.jpg": Route(dynamic=rate_limited),
        "/slow.jpg": _jpeg(18, sleep=5.0),
        "/loop.jpg": Route(b"", "text/plain", 302, {"Location": "/loop2.jpg"}),
        "/loop2.jpg": Route(b"", "text/plain", 302, {"Location": "/loop.jpg"}),
        "/fake.jpg": Route(fake_html, "text/html"),
        "/fake2.jpg": Route(fake_html, "image/jpeg"),
        "/truncated.jpg": Route(truncated[: len(truncated) // 2], "image/jpeg"),
        "/big-declared.png": Route(big_png, "image/png"),
        "/big-streamed.png": Route(big_png, "image/png", content_length=False),
        "/tiny.png": Route(encode(smooth_image(19, size=16), "PNG"), "image/png"),
        "/img/dup.jpg": Route(a_bytes, "image/jpeg"),
        "/img/near.jpg": Route(near, "image/jpeg"),
    }
    for month in range(1, 50):  # an endless calendar, as far as a crawler can tell
        routes[f"/calendar?month={month}"] = Route(html(f"Month {month}", f'<a href="/calendar?month={month + 1}">next month</a>'))
    return Site(routes)


def build_js_site() -> Site:
    """A page whose only photo is inserted by JavaScript after load."""
    page = html("Scripted", '<div id="gallery"></div><script>'
                "window.addEventListener('load', function () {"
                " var img = document.createElement('img'); img.src = '/img/js.jpg'; img.alt = 'made by script';"
                " document.getElementById('gallery').appendChild(img); });</script>")
    return Site({
        "/robots.txt": Route(b"User-agent: *\nAllow: /\n", "text/plain"),
        "/": Route(page),
        "/img/js.jpg": _jpeg(30),
    })
