"""`python -m core crawl ...`: collect photos from the web into the library."""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path


def register(subparsers) -> None:
    """Add the `crawl` command to the CLI."""
    p = subparsers.add_parser(
        "crawl", help="collect photos from web pages into the library (polite, resumable)",
        description="Crawl seed pages and save their photos to <library>/<class>/. Rerunning the same seeds resumes.")
    p.add_argument("seeds", nargs="*", help="start URLs, optionally as 'class: URL' (quote it)")
    p.add_argument("--seeds-file", type=Path, help="a file with one 'class: URL' or URL per line")
    p.add_argument("--class", dest="class_name", default="crawl", help="class for seeds given without one (default: crawl)")
    p.add_argument("--scope", choices=["host", "prefix"], default="host")
    p.add_argument("--max-depth", type=int, default=2)
    p.add_argument("--max-pages", type=int, default=50)
    p.add_argument("--max-images", type=int, default=200)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--per-host", type=int, default=2, help="concurrent requests per host")
    p.add_argument("--delay", type=float, default=0.5, help="seconds between requests to one host")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per connect and per read")
    p.add_argument("--deadline", type=float, default=60.0, help="total seconds one download may take (default 60)")
    p.add_argument("--retries", type=int, default=3, help="retries after connection errors, 429 and 5xx")
    p.add_argument("--timeout-retries", type=int, default=1, help="retries after a timeout (default 1)")
    p.add_argument("--max-bytes", type=int, default=20_000_000)
    p.add_argument("--min-size", type=int, default=64, help="minimum width and height in pixels")
    p.add_argument("--near-dup", type=int, default=None,
                   help="perceptual-hash distance counted as near duplicate (-1: off; default: PHOTOLORE_NEAR_DUP_THRESHOLD, 4)")
    p.add_argument("--render", choices=["static", "js"], default="static", help="js: render pages with headless Chromium")
    p.add_argument("--allow-private", action="store_true", help="allow private/loopback addresses (trusted local sites only)")
    p.add_argument("--allow-network", action="append", default=[], metavar="CIDR",
                   help="allow one private network or host, e.g. 192.168.1.5/32 (repeatable)")
    p.add_argument("--retry-failed", action="store_true", help="on resume, retry items that timed out or got 5xx/429")
    p.add_argument("--no-ingest", action="store_true", help="only download; do not add the photos to the catalog")
    p.set_defaults(func=run_crawl)


def _seeds_from_args(args) -> list[tuple[str, str]]:
    from core.crawl.config import parse_seed_lines

    lines = list(args.seeds)
    if args.seeds_file:
        lines.extend(args.seeds_file.read_text(encoding="utf-8").splitlines())
    return parse_seed_lines("\n".join(lines), default_class=args.class_name)


def _ingest_saved(paths: list[Path]) -> int:
    """Add freshly crawled photos to the catalog and index, so they are searchable at once."""
    from core.cli import _services, _with_cancel, tqdm_progress
    from core.ingest import ingest_paths

    services = _services()
    update, close = tqdm_progress("ingest")
    try:
        report = _with_cancel(lambda c: ingest_paths(services, paths, source="crawl", on_progress=update, cancel=c))
    finally:
        close()
    print(report.summary())
    for s in report.skipped:
        print(f"  skipped {s.path}: {s.reason}")
    return 130 if report.cancelled else 0


def run_crawl(args) -> int:
    """CLI handler: crawl with a tqdm bar; Ctrl-C cancels cleanly (rerun to resume)."""
    from tqdm import tqdm

    from core.crawl.config import CrawlConfig
    from core.crawl.crawler import crawl
    from core.settings import Settings

    try:
        seeds = _seeds_from_args(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not seeds:
        print("error: give at least one seed URL (or --seeds-file)", file=sys.stderr)
        return 2
    extra = {} if args.near_dup is None else {"near_dup_threshold": args.near_dup}
    try:
        config = CrawlConfig.from_settings(
            Settings(), seeds, scope=args.scope, max_depth=args.max_depth, max_pages=args.max_pages,
            max_images=args.max_images, workers=args.workers, per_host_concurrency=args.per_host, delay_s=args.delay,
            timeout_s=args.timeout, deadline_s=args.deadline, retries=args.retries, timeout_retries=args.timeout_retries,
            max_bytes=args.max_bytes, min_width=args.min_size, min_height=args.min_size, render=args.render,
            allow_private=args.allow_private, allow_networks=tuple(args.allow_network), retry_failed=args.retry_failed, **extra)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cancel = threading.Event()
    result: dict = {}
    bar = tqdm(total=0, unit="item", desc="crawl")

    def on_progress(done, total, **info):
        bar.total = total
        bar.n = done
        bar.set_postfix(pages=info["pages_visited"], found=info["images_found"], saved=info["saved"], skipped=info["skipped"], refresh=False)
        bar.refresh()

    def work():
        try:
            result["report"] = crawl(config, on_progress=on_progress, cancel=cancel)
        except Exception as exc:  # shown to the user below, with the input that caused it
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        print("\ncancelling... (rerun the same command to resume; saved photos are ingested then)", file=sys.stderr)
        cancel.set()
        thread.join()
    bar.close()
    if "error" in result:
        print(f"error: {result['error']}", file=sys.stderr)
        return 1
    report = result["report"]
    print(f"pages visited: {report.pages_visited}  images found: {report.images_found}  "
          f"saved: {len(report.saved)}  skipped: {len(report.skipped)}" + (f"  stopped by: {report.stopped_by}" if report.stopped_by else ""))
    for skip in report.skipped:
        print(f"  skipped {skip.kind} {skip.url}: {skip.reason}")
    for reason, n in sorted(report.links_ignored.items()):
        print(f"  ignored {n} link(s): {reason}")
    for w in report.warnings:
        print(f"  warning: {w}", file=sys.stderr)
    print(f"library: {config.library_dir}")
    if report.cancelled:
        return 130
    if report.start_problem:
        print("warning: " + report.start_problem, file=sys.stderr)
        return 1
    from core.crawl.state import saved_paths_for

    to_ingest = saved_paths_for(config)  # this run's photos and those of interrupted earlier runs
    if to_ingest and not args.no_ingest:
        return _ingest_saved(to_ingest)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the crawl command on its own (the app's CLI wires `register` into `python -m core`)."""
    parser = argparse.ArgumentParser(prog="python -m core.crawl")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)
