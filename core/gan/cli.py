"""`python -m core gan train|generate|eval`: the text-conditioned GAN from the command line."""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path


def _settings():
    from core.settings import Settings

    return Settings()


def _backend(settings):
    from models.registry import create_backend

    backend, choice = create_backend(settings)
    print(f"backend: {choice.name} ({backend.model_id}) - {choice.reason}", file=sys.stderr)
    return backend


def _resolve_checkpoint(args, settings) -> Path:
    """--checkpoint PATH, or the newest generator of --run NAME."""
    from core.gan import GanError
    from core.gan.runs import latest_checkpoint, run_dir_for

    if args.checkpoint:
        return Path(args.checkpoint)
    if not args.run:
        raise GanError("say which generator to use: --checkpoint PATH or --run NAME")
    run_dir = run_dir_for(settings.data_dir, args.run)
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise GanError(f"run '{args.run}' has no checkpoint yet under {run_dir}; train it first (`python -m core gan train`)")
    return run_dir / "checkpoints" / latest["generator"]


def _tqdm_progress():
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(done: int, total: int, stage: str = "train", **info) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(desc=f"gan {stage}", total=total, unit="step" if stage == "train" else "img", file=sys.stderr, dynamic_ncols=True)
        bar.total = total
        bar.n = done
        shown = {k: f"{v:.3f}" for k, v in info.items() if k in ("loss_d", "loss_g") and v is not None}
        if shown:
            bar.set_postfix(shown, refresh=False)
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def cmd_train(args) -> int:
    from core.gan import GanError
    from core.gan.job import TrainSource, train_from_source
    from core.gan.runs import run_dir_for
    from core.gan.train import GanConfig

    settings = _settings()
    if args.folder:
        source = TrainSource("folder", str(args.folder))
    elif args.library_class:
        source = TrainSource("library", args.library_class)
    else:
        source = TrainSource("shapes", str(args.shapes))
    run_name = args.run_name or (Path(args.folder).name if args.folder else args.library_class or f"shapes{args.resolution}")
    config = GanConfig(resolution=args.resolution, preset=args.preset, epochs=args.epochs, batch_size=args.batch_size,
                       device=args.device or settings.device, seed=args.seed,
                       max_seconds=args.max_minutes * 60 if args.max_minutes else None,
                       keep_every=args.keep_every, checkpoint_budget_mb=args.checkpoint_budget_mb,
                       **{k: v for k, v in (("recon", args.recon), ("mode_seeking", args.mode_seeking)) if v is not None})
    catalog = None
    if source.kind == "library":
        from core.catalog import open_catalog

        catalog = open_catalog(settings)
    update, close = _tqdm_progress()
    cancel = threading.Event()
    try:
        run_dir = run_dir_for(settings.data_dir, run_name)
        backend = _backend(settings)
        result = train_from_source(source, backend, config, run_dir, resume=args.resume, prompts=args.prompt,
                                   catalog=catalog, library_dir=settings.library_dir, on_progress=update, cancel=cancel)
    except GanError as exc:
        close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        close()
        print("\ninterrupted: rerun with --resume to continue from the last checkpoint", file=sys.stderr)
        return 130
    close()
    for name, reason in result.skipped:
        print(f"  skipped {name}: {reason}", file=sys.stderr)
    status = "finished" if result.finished else "stopped (rerun with --resume to continue)"
    print(json.dumps({"run_dir": str(result.run_dir), "status": status, "step": result.step, "epochs": result.epoch,
                      "generator": str(result.generator_path) if result.generator_path else None,
                      "steps_per_s": round(result.steps_per_s, 3), "skipped": len(result.skipped)}, indent=1))
    return 0


def cmd_generate(args) -> int:
    from core.gan import GanError
    from core.gan.generate import generate_from_text, interpolate, load_generator, make_grid, save_images, save_png_atomic

    settings = _settings()
    try:
        ckpt = _resolve_checkpoint(args, settings)
        backend = _backend(settings)
        loaded = load_generator(ckpt, model_id=backend.model_id)
        if args.interpolate:
            images = interpolate(loaded, backend, args.interpolate[0], args.interpolate[1], steps=args.n, seed=args.seed, truncation=args.truncation)
            ncol = len(images)
        else:
            if not args.text:
                raise GanError("give at least one --text to generate from (or --interpolate A B)")
            images = generate_from_text(loaded, backend, args.text, n_per=args.n, seed=args.seed, truncation=args.truncation)
            ncol = args.n
    except GanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else ckpt.parent.parent / "generated"
    paths = save_images(images, out, prefix=f"seed{args.seed}")
    save_png_atomic(make_grid(images, ncol=ncol), out / f"grid_seed{args.seed}.png")
    print(json.dumps({"checkpoint": str(ckpt), "images": [str(p) for p in paths], "grid": str(out / f"grid_seed{args.seed}.png")}, indent=1))
    return 0


def cmd_eval(args) -> int:
    import numpy as np

    from core.gan import GanError
    from core.gan.evaluate import alignment_score, conditional_accuracy, distribution_metrics, train_judge
    from core.gan.generate import generate
    from core.gan.data import load_image_folder, shapes_image_set

    settings = _settings()
    try:
        ckpt = _resolve_checkpoint(args, settings)
        backend = _backend(settings)
        loaded = load_generator_checked(ckpt, backend)
        res = loaded.resolution
        if args.folder:
            real = load_image_folder(Path(args.folder), res, max_images=args.n)
            labels = None
        else:
            real, labels = shapes_image_set(args.n, res, seed=1)
        texts = real.captions or [d.caption for d in backend.describe([real.pil(i) for i in range(len(real))])]
        cond = np.asarray(backend.embed_texts(texts), dtype=np.float32)
        fake = generate(loaded.generator, cond, n_per=1, seed=args.seed)
        report = {"checkpoint": str(ckpt), "backend": backend.model_id}
        report.update(distribution_metrics(real.images, fake, inception_weights=args.inception_weights))
        report["alignment"] = alignment_score(backend, fake, texts)
        report["alignment_real"] = alignment_score(backend, real.images, texts)
        if labels is not None:
            train_set, train_labels = shapes_image_set(max(900, args.n), res, seed=2)
            judge = train_judge(train_set.images, train_labels, steps=args.judge_steps)
            report["judge_acc_real"] = judge.accuracy(real.images, labels)
            report["cond_acc_generated"] = conditional_accuracy(loaded.generator, judge, cond, labels, n_per=1, seed=args.seed)
    except GanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1, default=float))
    return 0


def load_generator_checked(ckpt: Path, backend):
    from core.gan.generate import load_generator

    return load_generator(ckpt, model_id=backend.model_id)


def register(subparsers) -> None:
    """Add `gan` with its `train`, `generate` and `eval` commands to the `python -m core` parser."""
    gan = subparsers.add_parser("gan", help="text-conditioned GAN: train on photos, generate from text, evaluate")
    sub = gan.add_subparsers(dest="gan_command", required=True)

    p = sub.add_parser("train", help="train (or --resume) a GAN on a folder, a library class or the shapes set")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", type=Path, help="folder of photos (recursive; captions.csv used when present)")
    src.add_argument("--class", dest="library_class", help="a class of the library catalog")
    src.add_argument("--shapes", type=int, help="train on N generated shapes images")
    p.add_argument("--run-name", help="run folder under <data_dir>/gan/ (default: the folder or class name)")
    p.add_argument("--resolution", type=int, choices=(32, 64, 128), default=64)
    p.add_argument("--preset", default="base", choices=("tiny", "compact", "small", "base"))
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32, help="lowered to the number of images when there are fewer")
    p.add_argument("--keep-every", type=int, default=10, help="keep every Nth epoch's generator besides the latest and the best")
    p.add_argument("--checkpoint-budget-mb", type=float, default=512.0, help="prune the oldest kept epochs beyond this")
    p.add_argument("--max-minutes", type=float, default=None, help="stop and checkpoint after this much training")
    p.add_argument("--prompt", action="append", help="fixed prompt for the per-epoch sample grid (repeatable)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: settings)")
    p.add_argument("--recon", type=float, default=None,
                   help="weight of the L1 between a sample and the photo whose condition made it (default: GanConfig.recon; 0 = pure GAN)")
    p.add_argument("--mode-seeking", type=float, default=None,
                   help="MSGAN weight: more variety between samples of one text, noisier images (default: GanConfig.mode_seeking, off; try 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run from its latest checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="images from text with a trained generator")
    p.add_argument("--checkpoint", help="a generator_*.pth file")
    p.add_argument("--run", help="use the newest checkpoint of this run")
    p.add_argument("--text", action="append", help="prompt (repeatable)")
    p.add_argument("--interpolate", nargs=2, metavar=("TEXT_A", "TEXT_B"), help="walk from one text to another")
    p.add_argument("--n", type=int, default=4, help="images per prompt (steps when interpolating)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None, help="redraw noise beyond +-t (e.g. 1.0) for cleaner, less varied images")
    p.add_argument("--out", help="folder for the PNGs (default: <run>/generated)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("eval", help="FID-EffNet/KID-EffNet, text alignment and (shapes) conditional accuracy")
    p.add_argument("--checkpoint")
    p.add_argument("--run")
    p.add_argument("--folder", type=Path, help="real images to compare with (default: generated shapes)")
    p.add_argument("--n", type=int, default=300, help="images per side")
    p.add_argument("--judge-steps", type=int, default=1500, help="training steps of the shapes judge")
    p.add_argument("--inception-weights", type=Path, default=None,
                   help="a local torchvision inception_v3 state dict: also report FID-Inception (never downloaded)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_eval)


def main(argv=None) -> int:
    """Standalone entry (the lead wires `register` into `python -m core`)."""
    parser = argparse.ArgumentParser(prog="python -m core.gan.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
