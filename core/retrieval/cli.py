"""`python -m core retrieval {eval,build,query}` and `python -m core explain IMAGE TEXT`."""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path


def _progress(desc: str):
    from core.cli import tqdm_progress

    return tqdm_progress(desc)


def _run_cancellable(fn):
    """Run `fn(cancel)`; Ctrl-C sets the event so work stops at the next batch."""
    from core.retrieval import Cancelled

    cancel = threading.Event()
    try:
        return fn(cancel)
    except KeyboardInterrupt:
        cancel.set()
        print("\ninterrupted", file=sys.stderr)
        raise SystemExit(130)
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        raise SystemExit(130)


def _classical_config(args):
    from core.retrieval.classical import ClassicalConfig

    return ClassicalConfig(vocab_size=args.vocab_size, n_clusters=args.clusters, n_probe=args.probe, candidate_batch=args.candidate_batch,
                           pca_dim=args.pca_dim, threshold=args.classical_threshold)


def _dataset(args):
    from core.retrieval.datasets import load_dataset

    return load_dataset(args.dataset, Path(args.path) if args.path else None, limit=args.limit, n=args.n, seed=args.seed, split=args.split)


def cmd_eval(args) -> int:
    from core.retrieval.datasets import DatasetError
    from core.retrieval.deep import DeepConfig, make_deep_backend
    from core.retrieval.evaluate import EvalConfig, run_evaluation

    try:
        ds = _dataset(args)
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        config = EvalConfig(methods=methods, n_queries=args.queries, ks=tuple(int(k) for k in args.ks.split(",")), depth=args.depth,
                            seed=args.seed, classical=_classical_config(args), deep=DeepConfig(threshold=args.threshold)).validate()
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    backend = make_deep_backend(args.backbone) if "deep" in methods else None
    update, close = _progress(f"eval {ds.name}")
    try:
        report = _run_cancellable(lambda c: run_evaluation(ds, config, backend=backend, on_progress=update, cancel=c))
    finally:
        close()
    json_path, csv_path = report.write(Path(args.out), stem=args.stem)
    cols = ["method", "mAP", *[f"P@{k}" for k in config.ks], "accuracy", "build_s", "query_p50_ms", "query_p95_ms", "index_mb"]
    print("  ".join(f"{c:>12s}" for c in cols))
    for row in report.table():
        print("  ".join(f"{row[c]:>12.4f}" if isinstance(row[c], float) else f"{str(row[c]):>12s}" for c in cols))
    print(f"wrote {json_path} and {csv_path}")
    return 0


def cmd_build(args) -> int:
    from core.retrieval.classical import ClassicalIndex
    from core.retrieval.datasets import DatasetError
    from core.retrieval.deep import DeepConfig, DeepIndex, make_deep_backend

    try:
        ds = _dataset(args)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    update, close = _progress(f"{args.method} index")
    work = Path(args.index) / ".work"
    try:
        if args.method == "classical":
            index = _run_cancellable(lambda c: ClassicalIndex.build(ds.items, _classical_config(args), on_progress=update, cancel=c, work_dir=work))
        else:
            backend = make_deep_backend(args.backbone)
            index = _run_cancellable(lambda c: DeepIndex.build(ds.items, backend, DeepConfig(threshold=args.threshold), on_progress=update, cancel=c, work_dir=work))
    finally:
        close()
    index.save(Path(args.index))
    print(f"indexed {index.report.n_indexed} images into {args.index}; skipped {len(index.report.skipped)}")
    for iid, reason in index.report.skipped:
        print(f"  skipped {iid}: {reason}")
    return 0


def cmd_query(args) -> int:
    import json as _json

    from core.images import ImageError, load_rgb
    from core.retrieval.classical import ClassicalIndex
    from core.retrieval.deep import DeepIndex, make_deep_backend

    meta_path = Path(args.index) / "index.json"
    if not meta_path.is_file():
        print(f"error: no index in '{args.index}'; build one with `python -m core retrieval build`", file=sys.stderr)
        return 2
    kind = _json.loads(meta_path.read_text()).get("kind")
    try:
        image = load_rgb(Path(args.image))
    except ImageError as exc:
        print(f"error: {args.image}: {exc.reason}", file=sys.stderr)
        return 2
    if kind == "classical":
        index = ClassicalIndex.load(Path(args.index))
    else:
        try:
            index = DeepIndex.load(Path(args.index), make_deep_backend(args.backbone))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    hits = index.query(image, args.k)
    if args.json:
        print(json.dumps([{"id": h.id, "score": round(h.score, 4), "match": h.match, "labels": list(h.labels)} for h in hits], indent=1))
    else:
        for h in hits:
            print(f"{h.score:7.4f} {'match' if h.match else '     '}  {h.id}  {','.join(h.labels)}")
    return 0


def cmd_explain(args) -> int:
    from core.explain import explain, save_overlay
    from core.images import ImageError, load_rgb
    from core.settings import Settings

    try:
        image = load_rgb(Path(args.image))
    except ImageError as exc:
        print(f"error: {args.image}: {exc.reason}", file=sys.stderr)
        return 2
    text = " ".join(args.text)
    if args.backbone == "efficientnet":
        from core.explain import gradcam_efficientnet
        from models.efficientnet import load_efficientnet_lite0

        result = gradcam_efficientnet(load_efficientnet_lite0(), image, text)
    else:
        from models.registry import create_backend

        backend, choice = create_backend(Settings())
        print(f"backend: {choice.name} ({backend.model_id})", file=sys.stderr)
        result = explain(backend, image, text)
    out = save_overlay(result, Path(args.image), text, Path(args.out))
    print(f"{result.method}: peak at {result.peak}; targets {', '.join(f'{t} ({w:.2f})' for t, w in result.targets)}")
    print(f"wrote {out}")
    return 0


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="shapes", choices=["shapes", "folders", "cifar10", "voc2007"], help="dataset kind (default: generated shapes)")
    p.add_argument("--path", help="dataset folder on disk (folders / cifar10 / voc2007)")
    p.add_argument("--split", help="cifar10: test|train; voc2007: test|train|val|trainval")
    p.add_argument("--limit", type=int, help="use at most this many images (per class for folders)")
    p.add_argument("--n", type=int, default=216, help="shapes: number of generated images")
    p.add_argument("--seed", type=int, default=0)


def _add_classical_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocab-size", type=int, default=64, help="bag-of-features size (SIFT visual words)")
    p.add_argument("--clusters", type=int, default=8, help="stage-1 coarse clusters")
    p.add_argument("--probe", type=int, default=2, help="clusters searched per query")
    p.add_argument("--candidate-batch", type=int, default=256, help="stage-2 candidates scored per batch")
    p.add_argument("--pca-dim", type=int, default=32)
    p.add_argument("--classical-threshold", type=float, default=0.8)


def register(subparsers) -> None:
    """Add the `retrieval` and `explain` command groups to `python -m core`."""
    r = subparsers.add_parser("retrieval", help="retrieval lab: evaluate, build and query classical / deep indexes")
    rsub = r.add_subparsers(dest="retrieval_command", required=True)

    p = rsub.add_parser("eval", help="evaluate methods on a dataset; writes JSON and CSV")
    _add_dataset_args(p)
    _add_classical_args(p)
    p.add_argument("--methods", default="classical,deep,random", help="comma list of classical, deep, random (chance baseline)")
    p.add_argument("--backbone", default="active", choices=["active", "efficientnet"], help="deep: the app's backend or the CNN alone")
    p.add_argument("--threshold", type=float, default=0.75, help="deep: cosine similarity that counts as a match")
    p.add_argument("--queries", type=int, default=36)
    p.add_argument("--ks", default="1,5,10")
    p.add_argument("--depth", type=int, default=50, help="results ranked per query for mAP")
    p.add_argument("--out", default="retrieval_results", help="output folder (default: retrieval_results/)")
    p.add_argument("--stem", default="retrieval_eval")
    p.set_defaults(func=cmd_eval)

    p = rsub.add_parser("build", help="build and save an index (resumable)")
    _add_dataset_args(p)
    _add_classical_args(p)
    p.add_argument("--method", choices=["classical", "deep"], default="classical")
    p.add_argument("--backbone", default="active", choices=["active", "efficientnet"])
    p.add_argument("--threshold", type=float, default=0.75)
    p.add_argument("--index", required=True, help="folder to write the index into")
    p.set_defaults(func=cmd_build)

    p = rsub.add_parser("query", help="query a saved index with an image")
    p.add_argument("index", help="index folder")
    p.add_argument("image")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--backbone", default="active", choices=["active", "efficientnet"], help="deep indexes: must match the build")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_query)

    e = subparsers.add_parser("explain", help='"why this match": write a text-guided heat-map overlay PNG')
    e.add_argument("image")
    e.add_argument("text", nargs="+")
    e.add_argument("--out", default="cam_vis", help="output folder (default: cam_vis/)")
    e.add_argument("--backbone", default="active", choices=["active", "efficientnet"],
                   help="active: the app's backend (CLIP Grad-CAM / attention, or bundled CNN Grad-CAM with MiniLM tag matching); efficientnet: the CNN alone")
    e.set_defaults(func=cmd_explain)
