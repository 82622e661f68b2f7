"""`python -m core caption train|eval|predict`: the trainable captioner from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    from core.captioning.datasets import DATASET_KINDS

    p.add_argument("--dataset", choices=DATASET_KINDS, default="shapes", help="caption set format (default: shapes)")
    p.add_argument("--path", type=Path, help="caption file: Flickr8k.token.txt, COCO captions JSON or filename,caption CSV")
    p.add_argument("--images", type=Path, help="folder holding the images the caption file names")
    p.add_argument("--n", type=int, default=1200, help="shapes: number of generated images")
    p.add_argument("--seed", type=int, default=0, help="seed of the shapes set and of the split")


def register(subparsers) -> None:
    """Add the `caption` command group (train, eval, predict)."""
    p = subparsers.add_parser("caption", help="train, evaluate and run the trainable captioner")
    sub = p.add_subparsers(dest="caption_command", required=True)

    t = sub.add_parser("train", help="train a captioner on a caption set (resumes an interrupted run)")
    _add_dataset_args(t)
    t.add_argument("--run", default="default", help="run name: checkpoints go to <data>/models/captioner/<run>/")
    t.add_argument("--out", type=Path, help="explicit run folder (overrides --run)")
    t.add_argument("--encoder", default="effnet-lite0", choices=["effnet-lite0", "clip", "resnet18"],
                   help="frozen image encoder; clip needs a CLIP backend with local weights (PHOTOLORE_BACKEND=clip)")
    t.add_argument("--resnet-weights", type=Path, help="local resnet18 state-dict for --encoder resnet18")
    t.add_argument("--image-size", type=int, default=224)
    t.add_argument("--decoder", choices=["transformer", "lstm"], default="transformer")
    t.add_argument("--preset", choices=["nano", "small", "base"], default="small")
    t.add_argument("--layers", type=int)
    t.add_argument("--heads", type=int)
    t.add_argument("--width", type=int)
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--patience", type=int, default=4)
    t.add_argument("--min-freq", type=int, default=1)
    t.add_argument("--max-len", type=int, default=24)
    t.add_argument("--augment", action="store_true", help="flips/rotations/colour jitter; runs the encoder every step (slow on CPU)")
    t.add_argument("--finetune", action="store_true", help="also train the encoder's last block")
    t.add_argument("--device", default=None, help="auto, cpu, cuda (default: settings)")
    t.add_argument("--no-resume", action="store_true", help="start over even if the run folder has last.pt")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="BLEU-1..4, token accuracy and loss on the held-out test split")
    _add_dataset_args(e)
    e.add_argument("--checkpoint", type=Path, help="default: the newest best.pt")
    e.add_argument("--split", choices=["test", "val", "train", "all"], default="test")
    e.add_argument("--method", choices=["greedy", "beam"], default="beam")
    e.add_argument("--beam", type=int, default=3)
    e.add_argument("--length-penalty", type=float, default=0.6)
    e.set_defaults(func=cmd_eval)

    pr = sub.add_parser("predict", help="caption image files with the best available captioner")
    pr.add_argument("images", nargs="+", type=Path)
    pr.add_argument("--checkpoint", type=Path, help="default: the newest best.pt, else the tag description")
    pr.add_argument("--method", choices=["greedy", "beam"], default="beam")
    pr.add_argument("--beam", type=int, default=3)
    pr.set_defaults(func=cmd_predict)


def _settings():
    from core.settings import Settings

    return Settings()


def _clip_model(settings):
    """The open_clip model of the configured CLIP backend; an error says how to get one."""
    try:
        from models.registry import create_backend
    except ImportError:
        raise SystemExit("the CLIP encoder needs models.registry (not installed in this build)") from None
    backend = create_backend(settings)
    if getattr(backend, "name", "") != "clip":
        raise SystemExit("the CLIP encoder needs CLIP weights on disk: set PHOTOLORE_BACKEND=clip and PHOTOLORE_CLIP_CHECKPOINT")
    return getattr(backend, "model", backend)


def _load(args):
    from core.captioning.datasets import load_dataset

    path = args.path
    if args.dataset == "library" and path is None:
        path = _settings().catalog_target
    data = load_dataset(args.dataset, path=path, image_dir=args.images, n=args.n, seed=args.seed)
    for p in data.problems:
        print(f"skipped: {p}", file=sys.stderr)
    return data


def cmd_train(args) -> int:
    """Handler of `caption train`."""
    import torch
    from tqdm import tqdm

    from core.captioning.service import captioner_dir
    from core.captioning.train import TrainConfig, train

    torch.set_num_threads(min(2, torch.get_num_threads()))
    settings = _settings()
    data = _load(args)
    cfg = TrainConfig(encoder=args.encoder, image_size=args.image_size, finetune=args.finetune, augment=args.augment,
                      decoder=args.decoder, preset=args.preset, n_layer=args.layers, n_head=args.heads, n_embd=args.width,
                      max_len=args.max_len, min_freq=args.min_freq, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, label_smoothing=args.label_smoothing, patience=args.patience, seed=args.seed,
                      device=args.device or settings.device,
                      resnet_weights=str(args.resnet_weights) if args.resnet_weights else None)
    from core.uploads import safe_component

    out = args.out or captioner_dir(settings) / safe_component(args.run, "default")
    bars: dict[str, tqdm] = {}

    def on_progress(done, total, phase="train", **info):
        key = f"{phase}-{info.get('split', '')}-{info.get('epoch', '')}"
        if phase == "epoch":
            tqdm.write("epoch {epoch}: train loss {train_loss:.3f}, val loss {val_loss:.3f}, token acc {val_token_acc:.3f}, "
                       "val BLEU-4 {bleu:.3f}{mark}".format(bleu=info.get("val_bleu4", float("nan")),
                                                             mark=" (best)" if info.get("best") else "", **info))
            return
        bar = bars.get(key)
        if bar is None:
            for b in bars.values():
                b.close()
            bars.clear()
            desc = f"features ({info.get('split')})" if phase == "features" else f"epoch {info.get('epoch')}/{info.get('epochs')}"
            bar = bars[key] = tqdm(total=total, desc=desc, leave=False)
        bar.n = done
        if "loss" in info:
            bar.set_postfix(loss=f"{info['loss']:.3f}", refresh=False)
        bar.refresh()

    try:
        clip_model = _clip_model(settings) if args.encoder == "clip" else None
        result = train(data, cfg, out, resume=not args.no_resume, on_progress=on_progress, clip_model=clip_model)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume from last.pt", file=sys.stderr)
        return 130
    finally:
        for b in bars.values():
            b.close()
    for p in result.problems[len(data.problems):]:
        print(f"skipped: {p}", file=sys.stderr)
    print(f"{result.status} after {result.epochs_run} epochs; split {result.split_sizes}; best checkpoint: {result.best_path}")
    return 0


def cmd_eval(args) -> int:
    """Handler of `caption eval`."""
    from tqdm import tqdm

    from core.captioning.evaluate import evaluate_split
    from core.captioning.service import list_checkpoints

    settings = _settings()
    path = args.checkpoint or next(iter(list_checkpoints(settings)), None)
    if path is None:
        print("no captioner checkpoint found; train one with `python -m core caption train`", file=sys.stderr)
        return 2
    data = _load(args)
    with tqdm(total=None, desc="features", leave=False) as bar:
        def on_progress(done, total, **info):
            bar.total = total
            bar.update(done - bar.n)

        try:
            metrics = evaluate_split(path, data, split=args.split, device=settings.device if settings.device != "auto" else "cpu",
                                     method=args.method, beam_size=args.beam, length_penalty=args.length_penalty,
                                     on_progress=on_progress)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(metrics, indent=1))
    return 0


def cmd_predict(args) -> int:
    """Handler of `caption predict`."""
    from core.captioning.service import best_captioner, caption_files

    settings = _settings()
    captioner = best_captioner(settings, checkpoint=args.checkpoint)
    if hasattr(captioner, "method"):
        captioner.method, captioner.beam_size = args.method, args.beam
    print(f"captioner: {captioner.name}", file=sys.stderr)
    files = []
    failed = 0
    for path in args.images:
        try:
            files.append((str(path), path.read_bytes()))
        except OSError as exc:
            print(f"skipped {path}: cannot read ({exc.strerror or exc})", file=sys.stderr)
            failed += 1
    for o in caption_files(files, captioner, max_pixels=settings.max_image_pixels):
        if o.error:
            print(f"skipped {o.error}", file=sys.stderr)
            failed += 1
        else:
            print(f"{o.name}\t{o.caption}")
    return 1 if failed and failed == len(args.images) else 0
