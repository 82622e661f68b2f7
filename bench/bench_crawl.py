"""Crawler throughput against a local server that adds fixed latency to every request.

Prints one JSON object. For each worker count N the baseline is the ideal bound measured in
the same run's terms: N requests in flight, each taking `latency`, gives N / latency images/s.
`ratio` = measured / ideal (target >= 0.7 at N=8). Memory: RSS growth between 20 % of the
images and the end of the N=8 run should stay near zero (bounded in-flight window).

    python bench/bench_crawl.py [--images 500] [--latency 0.05] [--workers 1 4 8]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _serve(n_images: int, latency: float, per_page: int, port_q) -> None:
    """Runs in its own process so the server does not compete with the crawler for the GIL."""
    import io
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for _ in range(n_images):
        small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "RGB").resize((96, 96), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=85)
        images.append(buf.getvalue())
    n_pages = (n_images + per_page - 1) // per_page
    index = "".join(f'<a href="/p/{k}.html">page {k}</a>' for k in range(n_pages)).encode()
    pages = [("".join(f'<img src="/img/{i}.jpg" alt="photo {i}">' for i in range(k * per_page, min(n_images, (k + 1) * per_page)))).encode()
             for k in range(n_pages)]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK add
        # ~40 ms to every keep-alive response (real web servers set it).
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def do_GET(self):
            time.sleep(latency)
            path = self.path
            ctype, body = "text/html", b""
            if path == "/robots.txt":
                ctype, body = "text/plain", b"User-agent: *\nAllow: /\n"
            elif path == "/":
                body = b"<html><head><title>bench</title></head><body>" + index + b"</body></html>"
            elif path.startswith("/p/"):
                body = b"<html><body>" + pages[int(path[3:].split(".")[0])] + b"</body></html>"
            elif path.startswith("/img/"):
                ctype, body = "image/jpeg", images[int(path[5:].split(".")[0])]
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    port_q.put(server.server_address[1])
    server.serve_forever()


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def run_once(base: str, workers: int, n_images: int, tmp: Path) -> dict:
    from core.crawl import CrawlConfig, crawl

    cfg = CrawlConfig(seeds=[("bench", base + "/")], library_dir=tmp / f"lib{workers}", state_path=tmp / f"state{workers}.sqlite",
                      max_depth=1, max_pages=100, max_images=n_images, workers=workers, per_host_concurrency=workers,
                      delay_s=0.0, timeout_s=10, min_width=32, min_height=32, allow_private=True)
    rss = {"at_20pct": None}

    def on_progress(done, total, saved=0, skipped=0, **_):
        if rss["at_20pct"] is None and saved + skipped >= n_images // 5:
            rss["at_20pct"] = _rss_mb()

    t0 = time.perf_counter()
    report = crawl(cfg, on_progress=on_progress)
    wall = time.perf_counter() - t0
    handled = len(report.saved) + sum(1 for s in report.skipped if s.kind == "image")
    return {"workers": workers, "images": handled, "saved": len(report.saved), "requests": report.requests,
            "wall_s": round(wall, 3), "rss_20pct_mb": rss["at_20pct"], "rss_end_mb": _rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--per-page", type=int, default=100)
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    server = ctx.Process(target=_serve, args=(args.images, args.latency, args.per_page, q), daemon=True)
    server.start()
    port = q.get(timeout=60)
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.workers:
                r = run_once(base, n, args.images, Path(tmp))
                ideal = n / args.latency
                r["images_per_s"] = round(r["images"] / r["wall_s"], 1)
                r["ideal_images_per_s"] = round(ideal, 1)
                r["ratio"] = round(r["images_per_s"] / ideal, 3)
                results.append(r)
    finally:
        server.terminate()
    last = results[-1]
    growth = None if last["rss_20pct_mb"] is None else round(last["rss_end_mb"] - last["rss_20pct_mb"], 1)
    print(json.dumps({"bench": "crawl", "latency_s": args.latency, "images": args.images, "runs": results,
                      "ratio_at_max_workers": last["ratio"], "target_ratio": 0.7,
                      "meets_target": last["ratio"] >= 0.7, "rss_growth_mb_last_80pct": growth}, indent=1))


if __name__ == "__main__":
    main()
