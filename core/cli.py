"""`python -m core`: every headless job of PhotoLore.

Heavy imports happen inside the handlers so `--help` is instant.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

# Feature areas add their own command groups through `register(subparsers)`.
COMMAND_MODULES: list[str] = ["core.crawl.cli", "core.captioning.cli", "core.annotate.cli", "core.retrieval.cli", "core.chat.cli", "core.gan.cli", "core.detectors_cli"]


def tqdm_progress(desc: str) -> tuple[Callable[..., None], Callable[[], None]]:
    """An on_progress(done, total) callback drawing a tqdm bar on stderr, and a closer."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int, **info) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        shown = {k: v for k, v in info.items() if k in ("added", "skipped")}
        if shown:
            bar.set_postfix(shown, refresh=False)
        bar.refresh()

    return update, bar.close


def _services():
    from core.services import build_services

    services = build_services()
    print(f"backend: {services.choice.name} ({services.backend.model_id}) - {services.choice.reason}", file=sys.stderr)
    return services


def _print_report(report, as_json: bool) -> None:
    """The ingest report: every file seen, counts per outcome and reason. Paths as `display_path` shows them."""
    from core.pathnames import display_path

    if as_json:
        print(json.dumps({"summary": report.summary(), "added": report.added, "new_paths": report.new_paths,
                          "unchanged": report.unchanged, "scanned": report.scanned, "cancelled": report.cancelled,
                          "counts": report.reason_counts(),
                          "skipped": [{"path": display_path(s.path), "reason": s.reason} for s in report.skipped],
                          "near_duplicates": [{"path": display_path(n.path), "of": display_path(n.of_path), "distance": n.distance}
                                              for n in report.near_duplicates],
                          "files": [{"path": display_path(f.path), "status": f.status, "detail": f.detail} for f in report.files]},
                         indent=1))
        return
    print(report.summary())
    for reason, n in report.reason_counts().items():
        print(f"  {n:6d}  {reason}")
    for f in report.files:
        if f.status in ("skipped", "near duplicate", "not read"):
            print(f"  {f.status} {display_path(f.path)}: {f.detail}")


def _with_cancel(fn):
    """Run `fn(cancel)`; Ctrl-C sets the event so the job stops after the current batch."""
    cancel = threading.Event()
    try:
        return fn(cancel)
    except KeyboardInterrupt:
        cancel.set()
        print("\ninterrupted: rerun the same command to resume", file=sys.stderr)
        raise SystemExit(130)


def _run_job(desc: str, job, as_json: bool) -> int:
    """Run `job(on_progress, cancel)` with a tqdm bar and Ctrl-C as cancel; print its report."""
    update, close = tqdm_progress(desc)
    try:
        report = _with_cancel(lambda c: job(update, c))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close()
    _print_report(report, as_json)
    return 0


def _executor(services, args):
    """The Ray executor when `--ray` (or PHOTOLORE_RAY_ADDRESS) names a cluster, else None (local)."""
    from core.cluster import executor_for

    return executor_for(services.settings, args.ray or services.settings.ray_address, args.ray_workers)


def cmd_ingest(args) -> int:
    from core.cluster import ClusterError
    from core.ingest import ingest_folder

    services = _services()
    worst = 0
    try:
        executor = _executor(services, args)
        for folder in args.folders:
            job = lambda update, cancel, f=Path(folder): ingest_folder(services, f, source=args.source, class_override=args.class_name,
                                                                      on_progress=update, cancel=cancel, executor=executor)
            worst = max(worst, _run_job(f"ingest {Path(folder).name}", job, args.json))
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return worst


def cmd_reindex(args) -> int:
    """Embed photos missing from the active index, then bring stale photo facts up to date (both resumable)."""
    from core.cluster import ClusterError
    from core.facts.refresh import refresh_facts
    from core.ingest import reindex

    services = _services()
    update, close = tqdm_progress("reindex")
    try:
        executor = _executor(services, args)
        report = _with_cancel(lambda c: reindex(services, on_progress=update, cancel=c, executor=executor))
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close()
    facts = None
    if not args.no_facts and not report.cancelled:
        update, close = tqdm_progress("facts")
        try:
            facts = _with_cancel(lambda c: refresh_facts(services, on_progress=update, cancel=c))
        finally:
            close()
    if args.json:
        print(json.dumps({"summary": report.summary(), "reindexed": report.reindexed, "cancelled": report.cancelled,
                          "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
                          "facts": None if facts is None else {"summary": facts.summary(), "stale": facts.stale, "updated": facts.updated,
                                                               "captions": facts.captions, "unsupported": facts.unsupported,
                                                               "cancelled": facts.cancelled,
                                                               "failed": [{"path": p, "reason": r} for p, r in facts.failed]}}, indent=1))
        return 0
    _print_report(report, False)
    if facts is not None:
        print(facts.summary())
        for path, reason in facts.failed:
            print(f"  facts failed {path}: {reason}")
    return 0


def _add_ray_args(p: argparse.ArgumentParser, what: str = "run read+embed") -> None:
    p.add_argument("--ray", metavar="auto|HOST:PORT", default=None,
                   help=f"{what} on a Ray cluster: 'auto' (the one `ray start` runs here) or the head's address "
                        "(default: PHOTOLORE_RAY_ADDRESS, else this process)")
    p.add_argument("--ray-workers", type=int, default=None, help="actors in the Ray pool (default: one per cluster CPU, or per GPU)")


def cmd_search(args) -> int:
    from core.facts.view import facts_where
    from core.pathnames import display_path
    from core.search import search_image, search_text

    try:
        where = facts_where(has_people=True if args.has_people else None, has_text=True if args.has_text else None, scene=args.scene,
                            setting=args.setting, monochrome=True if args.black_and_white else None,
                            objects=args.with_objects, people=args.people)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    services = _services()
    try:
        if args.image:
            from core.images import ImageError, load_rgb

            try:
                img = load_rgb(Path(args.image), max_pixels=services.settings.max_image_pixels, max_side=services.settings.decode_max_side)
            except ImageError as exc:
                print(f"error: {args.image}: {exc.reason}", file=sys.stderr)
                return 2
            results = search_image(services, image=img, k=args.k, threshold=args.threshold, where=where)
        else:
            results = search_text(services, " ".join(args.text), k=args.k, threshold=args.threshold, where=where)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"id": r.photo.id, "score": round(r.score, 4), "path": display_path(r.photo.path), "caption": r.photo.caption} for r in results], indent=1))
    else:
        if not results:
            print("no match (is the library empty? run `python -m core demo` or `python -m core ingest DIR`)")
        for r in results:
            print(f"{r.score:6.3f}  {display_path(r.photo.path)}  [{r.photo.caption}]")
    return 0


def cmd_demo(args) -> int:
    from core.demo import build_demo

    services = _services()
    if args.if_empty and services.catalog.count() > 0:
        print(f"library already holds {services.catalog.count()} photos: demo not added (drop --if-empty to add it)")
        return 0
    return _run_job("demo library", lambda update, cancel: build_demo(services, on_progress=update, cancel=cancel), args.json)


def cmd_models(args) -> int:
    from core.settings import Settings
    from models.registry import choose_backend, clip_spec

    settings = Settings()
    if args.action == "list":
        import open_clip

        from models.clip import ClipSpec, _register_configs, local_weights

        _register_configs()
        choice = choose_backend(settings)
        print(f"active backend: {choice.name} - {choice.reason}")
        print("bundled: EfficientNet-Lite0 (ImageNet tags, features) + all-MiniLM-L6-v2 (captions); ships in pip packages")
        cache = settings.models_dir / "clip"
        rows = open_clip.list_pretrained()
        if args.model:
            rows = [r for r in rows if r[0] == args.model]
        print(f"CLIP weights (cache {cache}); '*' = on disk:")
        for arch, tag in rows:
            mark = "*" if local_weights(ClipSpec(arch, tag, cache_dir=cache)) else " "
            print(f" {mark} {arch:32s} {tag}")
        return 0
    spec = clip_spec(settings)
    if args.model:
        from models.clip import ClipSpec

        spec = ClipSpec(args.model, args.pretrained or spec.pretrained, None, spec.cache_dir)
    from models.clip import pull

    print(f"downloading CLIP {spec.model}/{spec.pretrained} into {spec.cache_dir} ...", file=sys.stderr)
    try:
        path = pull(spec)
    except Exception as exc:
        print(f"error: could not download {spec.model}/{spec.pretrained}: {exc}", file=sys.stderr)
        return 1
    print(f"saved {path}. Set PHOTOLORE_CLIP_MODEL={spec.model} PHOTOLORE_CLIP_PRETRAINED={spec.pretrained} "
          "(or keep backend=auto) and run `python -m core reindex`.")
    return 0


def cmd_report(args) -> int:
    from core import charts, dashboards
    from core.catalog import open_catalog
    from core.images import atomic_write_bytes
    from core.settings import Settings

    df = dashboards.frame_from_catalog(open_catalog(Settings()))
    df = dashboards.apply_filters(df, dashboards.Filters(classes=args.class_name or None))
    html = charts.report_html(charts.build_sections(df), title=f"PhotoLore report: {len(df)} photos")
    atomic_write_bytes(Path(args.out), html.encode("utf-8"))
    print(f"wrote {args.out} ({len(df)} photos; open it in any browser, it needs no network)")
    return 0


def _runtime_lines(settings) -> list[str]:
    """What runs each bundled model and why, from the decisions stored at their last load (loads no model)."""
    from core.device import pick_device
    from models.efficientnet_onnx import read_image_decision
    from models.minilm_onnx import read_text_decision

    device, lines, runtimes = pick_device(settings.device), [], []
    for what, read in (("image model (EfficientNet-Lite0)", read_image_decision), ("text model (MiniLM)", read_text_decision)):
        decision = read(settings.models_dir)
        if settings.image_runtime == "torch":
            runtime, line = "torch", "torch - set explicitly (PHOTOLORE_IMAGE_RUNTIME=torch)"
        elif device != "cpu":
            runtime, line = "torch", f"torch - device {device} (ONNX Runtime is used on the CPU only)"
        elif decision is None:
            runtime, line = "torch", f"{settings.image_runtime} - not measured yet: the first ingest batch times ONNX Runtime against PyTorch"
        else:
            runtime, line = decision.runtime, f"{decision.runtime} - {decision.reason}"
            if decision.mode != settings.image_runtime:
                runtime = "to measure"
                line += f"; measured for PHOTOLORE_IMAGE_RUNTIME={decision.mode}, measured again at the next ingest"
        runtimes.append(runtime)
        lines.append(f"{what} runtime: {line}")
    torch_free = all(r == "onnx" for r in runtimes)
    lines.append("torch: " + ("not imported by ingest (both models on ONNX Runtime)" if torch_free
                              else "imported by ingest (a model runs on PyTorch or is still to be measured)"))
    return lines


def cmd_status(args) -> int:
    from core.catalog import open_catalog
    from core.settings import Settings
    from models.registry import choose_backend

    settings = Settings()
    cat = open_catalog(settings)  # first: a catalog that cannot be reached is said within seconds
    choice = choose_backend(settings)
    print(f"data dir: {settings.data_dir}")
    print(f"catalog: {cat.describe()}" + ("" if settings.catalog_url else " (set PHOTOLORE_CATALOG_URL=postgresql://... to share one)"))
    print(f"backend: {choice.name} - {choice.reason}")
    if choice.name == "bundled":
        from models.human_models import status_line

        for line in _runtime_lines(settings):
            print(line)
        print(status_line(settings.detectors_dir) if settings.detectors else "detectors: off (PHOTOLORE_DETECTORS=false)")
    print(f"index: {'Chroma server ' + settings.chroma_host + ':' + str(settings.chroma_port) if settings.chroma_host else 'embedded Chroma at ' + str(settings.chroma_path)}")
    print(f"photos: {cat.count()} ({cat.count_files()} files); classes: {cat.classes()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="PhotoLore: headless jobs. Settings come from PHOTOLORE_* environment variables and .streamlit/secrets.toml.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add the images under folders to the library (incremental, resumable)")
    p.add_argument("folders", nargs="+")
    p.add_argument("--source", default="folder", help="provenance label stored per photo (default: folder)")
    p.add_argument("--class-name", default=None, help="class for every photo (default: first sub-folder name)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_ray_args(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("reindex", help="embed catalog photos missing from the active backend's index, then update older photo facts")
    p.add_argument("--no-facts", action="store_true", help="skip updating photos whose facts are missing or older")
    p.add_argument("--json", action="store_true")
    _add_ray_args(p)
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("search", help="text-to-image (or --image for image-to-image) search")
    p.add_argument("text", nargs="*")
    p.add_argument("--image", help="search with this image file instead of text")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threshold", type=float, default=-1.0, help="minimum cosine similarity (default: no minimum)")
    p.add_argument("--has-people", action="store_true", help="only photos where people were found")
    p.add_argument("--has-text", action="store_true", help="only photos with text read in them")
    p.add_argument("--scene", help="only photos of this scene, e.g. kitchen")
    p.add_argument("--setting", choices=["indoor", "outdoor"], help="only photos taken indoors / outdoors (as far as the facts can tell)")
    p.add_argument("--black-and-white", action="store_true", help="only black and white photos")
    p.add_argument("--with", dest="with_objects", action="append", default=[], metavar="OBJECT",
                   help="only photos where the detector found this object (a COCO label: dog, car, couch, ...; repeatable)")
    from core.facts.view import PEOPLE_COUNTS

    p.add_argument("--people", choices=list(PEOPLE_COUNTS), help="only photos with this many people")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("demo", help="build the demo library from photos bundled with scikit-image / scikit-learn")
    p.add_argument("--if-empty", action="store_true", help="only when the library holds no photo yet")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list backends and CLIP weights, or pull CLIP weights (the only command that downloads)")
    p.add_argument("action", choices=["list", "pull"])
    p.add_argument("--model", help="CLIP architecture, e.g. ViT-B-32 (default: PHOTOLORE_CLIP_MODEL)")
    p.add_argument("--pretrained", help="pretrained tag, e.g. openai (default: PHOTOLORE_CLIP_PRETRAINED)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("report", help="write the dashboards as one self-contained HTML file")
    p.add_argument("--out", default="report.html")
    p.add_argument("--class-name", action="append", help="only this class (repeatable)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("status", help="data dir, active backend and why, library size")
    p.set_defaults(func=cmd_status)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from core.db import CatalogConnectionError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CatalogConnectionError as exc:  # a wrong PHOTOLORE_CATALOG_URL or a server that is down: say so, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
