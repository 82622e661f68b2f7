"""`python -m core annotate ...`: run annotators, import/export, reset, list.

Wired in by the lead through `core.cli.COMMAND_MODULES` ("core.annotate.cli"). Heavy
imports stay inside the handlers so `--help` is instant.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _services(need_backend: bool):
    """The full services (with the backend) to annotate; catalog + store only for file jobs."""
    if need_backend:
        from core.cli import _services as lead_services

        return lead_services()
    # Import/export/reset need no model: a stub avoids loading one for a CSV.
    from core.catalog import open_catalog
    from core.settings import Settings
    from vectorstore.store import VectorStore

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return argparse.Namespace(settings=settings, catalog=open_catalog(settings), store=VectorStore.from_settings(settings))


def _photo_ids(services, args) -> list[str] | None:
    if getattr(args, "class_name", None):
        return services.catalog.photo_ids(class_name=args.class_name)
    if getattr(args, "search", None):
        from core.search import search_text

        return [r.photo.id for r in search_text(services, args.search, k=args.k)]
    return None


def cmd_run(args) -> int:
    from core.annotate.runner import make_annotator, run_annotations
    from core.cli import _with_cancel, tqdm_progress
    from core.cluster import ClusterError

    services = _services(need_backend=args.annotator == "zeroshot" or bool(args.search))
    try:
        annotator = make_annotator(args.annotator, services)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ids = _photo_ids(services, args)
    update, close = tqdm_progress(f"annotate {annotator.name}")
    try:
        executor = _executor(services, args, annotator)
        report = _with_cancel(lambda c: run_annotations(services, annotator, ids, batch_size=args.batch_size, force=args.force,
                                                        on_progress=update, cancel=c, executor=executor))
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(report.summary())
        for pid, fname, reason in report.failed:
            print(f"  failed {fname}: {reason}")
    return 0 if not report.failed else 1


def _executor(services, args, annotator):
    """The Ray executor when `--ray` (or PHOTOLORE_RAY_ADDRESS) names a cluster, else None (this process)."""
    from core.annotate.on_ray import ON_RAY, annotate_executor_for
    from core.cluster import ClusterError

    if annotator.name not in ON_RAY:  # an API annotator calls its endpoint from here; the setting alone does not move it
        if args.ray:
            raise ClusterError(f"the {annotator.name} annotator does not run on Ray (only {', '.join(ON_RAY)}); run it without --ray")
        return None
    return annotate_executor_for(services.settings, args.ray or services.settings.ray_address, args.ray_workers)


def cmd_export(args) -> int:
    from core.annotations import export_scores

    services = _services(need_backend=False)
    n = export_scores(services.catalog, Path(args.path))
    print(f"wrote {n} rows to {args.path}")
    return 0


def cmd_import(args) -> int:
    from core import annotations as ann

    # Captions are re-embedded so text search sees them: that needs the backend.
    services = _services(need_backend=args.kind != "scores")
    fn = {"scores": ann.import_scores, "captions": ann.import_captions, "senticap": ann.import_senticap}[args.kind]
    extra = {} if args.kind == "scores" else {"services": services}
    try:
        report = fn(services.catalog, Path(args.path), valid_only=args.valid_only, store=services.store, **extra)
    except ann.AnnotationImportError as exc:
        print(f"error: {args.path}: nothing imported.\n{exc.report.summary()}\n"
              "Fix the rows above, or pass --valid-only to import the valid rows.", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {args.path}: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if not report.errors else 1


def cmd_reset(args) -> int:
    from core.annotate.runner import reset_results

    services = _services(need_backend=False)
    n = reset_results(services, args.annotator, version=args.version)
    print(f"removed the {args.annotator} results of {n} photos")
    return 0


def cmd_list(args) -> int:
    from core import annotations as ann

    services = _services(need_backend=False)
    rows = ann.annotators(services.catalog)
    if args.json:
        print(json.dumps(rows, indent=1))
    for r in rows if not args.json else []:
        print(f"{r['annotator']:10s} {r['version']:50s} ok {r['ok']:5d}  failed {r['failed']:5d}  last {r['last']}")
    return 0


def register(subparsers) -> None:
    """Add the `annotate` command group."""
    from core.cli import _add_ray_args

    p = subparsers.add_parser("annotate", help="affective scores, sentiment and topics: run annotators, import/export, reset")
    sub = p.add_subparsers(dest="annotate_command", required=True)

    r = sub.add_parser("run", help="annotate photos (resumable: done photos are skipped)")
    r.add_argument("--annotator", default="zeroshot", help="zeroshot (local, default) or vlm-api (PHOTOLORE_VLM_* settings)")
    r.add_argument("--class-name", help="only photos of this class")
    r.add_argument("--search", help="only the photos of this text search")
    r.add_argument("-k", type=int, default=50, help="how many search results (with --search)")
    r.add_argument("--batch-size", type=int, default=None)
    r.add_argument("--force", action="store_true", help="re-annotate photos this annotator version already did")
    r.add_argument("--json", action="store_true", help="print the run report as JSON")
    _add_ray_args(r, "run zero-shot annotation")
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("export", help="write filename,Safety,...,Convenience,concept_text (CSV, or JSON for *.json); atomic")
    e.add_argument("path")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="import human scores, your own captions, or SentiCap JSON (all-or-nothing)")
    i.add_argument("kind", choices=["scores", "captions", "senticap"])
    i.add_argument("path")
    i.add_argument("--valid-only", action="store_true", help="import the valid rows even when some rows are invalid")
    i.set_defaults(func=cmd_import)

    x = sub.add_parser("reset", help="forget one annotator's results")
    x.add_argument("annotator")
    x.add_argument("--version", help="only this version")
    x.set_defaults(func=cmd_reset)

    ls = sub.add_parser("list", help="annotators and versions with counts")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


def main(argv=None) -> int:
    """`python -m core.annotate.cli ...`: the same commands before the lead wires them into `python -m core`."""
    parser = argparse.ArgumentParser(prog="python -m core.annotate.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["annotate", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
