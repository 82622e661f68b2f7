"""Captioner benchmark on the shapes set: prints one JSON object.

- Quality: BLEU-1..4 (sacrebleu, all 3 references per image) on a held-out test split of images,
  greedy vs beam search (k=3), after one CPU training run with a wall-clock budget (default 10 min).
- Speed: training throughput (caption samples/s in the real loop) against the raw
  forward+backward+step of the same decoder on the same batch shape, measured in the same run
  (the ratio is the loop's efficiency; no hard-coded baseline).

    nice -n 10 python bench/bench_caption.py [--n 1200] [--image-size 128] [--epochs 10] [--budget-s 600]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def raw_fwd_bwd(decoder, feats, tokens, batch_size: int, steps: int = 30) -> float:
    """Samples/s of forward + loss + backward + AdamW step alone, on cached features."""
    import torch
    from torch.nn import functional as F

    decoder.train()
    opt = torch.optim.AdamW(decoder.parameters(), lr=1e-4)
    f, t = feats[:batch_size].float(), tokens[:batch_size]
    for i in range(steps + 3):
        if i == 3:  # warm-up steps excluded
            t0 = time.perf_counter()
        loss = F.cross_entropy(decoder(f, t[:, :-1]).transpose(1, 2), t[:, 1:], ignore_index=0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * f.shape[0] / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1200, help="shapes images (split 80/10/10 by image)")
    p.add_argument("--image-size", type=int, default=128, help="encoder input size (128 -> a 4x4 feature grid)")
    p.add_argument("--preset", default="small")
    p.add_argument("--decoder", default="transformer")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--budget-s", type=float, default=600.0, help="wall-clock budget for training incl. feature extraction")
    p.add_argument("--threads", type=int, default=1, help="torch threads (<= 2 on shared machines)")
    p.add_argument("--out", type=Path, help="keep the run folder here (default: a temp dir)")
    args = p.parse_args(argv)

    import torch

    from core.captioning.datasets import load_shapes, split_from_ids
    from core.captioning.evaluate import evaluate_checkpoint
    from core.captioning.model import extract_features, load_trained, pair_tensors
    from core.captioning.train import TrainConfig, train
    from models.captioner import load_checkpoint

    torch.set_num_threads(args.threads)
    data = load_shapes(args.n, seed=0)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_caption_"))
    # Feature extraction counts against the budget; the epoch loop stops once the rest is spent.
    cfg = TrainConfig(image_size=args.image_size, preset=args.preset, decoder=args.decoder, epochs=args.epochs,
                      batch_size=64, lr=1e-3, patience=3, bleu_images=100, device="cpu", seed=0)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()

    def on_progress(done, total, phase="train", **info):
        if phase == "features" and done == total:
            phases[f"features_{info.get('split')}"] = time.perf_counter() - t0

    # Budget for the loop: what is left after features, minus a margin for the last epoch.
    cfg.time_limit_s = args.budget_s * 0.8
    result = train(data, cfg, out / "run", resume=False, on_progress=on_progress)
    train_wall = time.perf_counter() - t0

    ckpt = load_checkpoint(result.best_path)
    test = split_from_ids(data.items, ckpt.split)["test"]
    greedy = evaluate_checkpoint(result.best_path, test, method="greedy")
    beam = evaluate_checkpoint(result.best_path, test, method="beam", beam_size=3, length_penalty=0.6)

    model = load_trained(result.best_path)
    train_items = split_from_ids(data.items, ckpt.split)["train"][:64]
    kept, feats = extract_features(model.encoder, train_items)
    index, tokens = pair_tensors(kept, model.vocab, model.config.max_len)
    raw = raw_fwd_bwd(model.decoder, feats[torch.as_tensor(index)], tokens, cfg.batch_size)
    samples = sum(e["train_samples"] for e in result.history)
    loop_s = sum(e["train_seconds"] for e in result.history)
    train_sps = samples / loop_s
    n_feat_images = result.split_sizes["train"] + result.split_sizes["val"]
    feat_s = phases.get("features_val", float("nan"))

    report = {
        "bench": "caption",
        "dataset": f"shapes n={args.n} (train/val/test by image: {result.split_sizes})",
        "encoder": f"effnet-lite0 frozen @ {args.image_size}px, grid {model.config.n_feat} cells, features cached",
        "decoder": f"{args.decoder} {args.preset} ({sum(p.numel() for p in model.decoder.parameters())} params)",
        "threads": args.threads,
        "status": result.status,
        "epochs_run": result.epochs_run,
        "train_wall_s": round(train_wall, 1),
        "train_within_10_min": train_wall <= 600,
        "test_bleu_greedy": {k: round(greedy[k], 4) for k in ("bleu1", "bleu2", "bleu3", "bleu4")},
        "test_bleu_beam3": {k: round(beam[k], 4) for k in ("bleu1", "bleu2", "bleu3", "bleu4")},
        "test_token_acc": round(greedy["token_acc"], 4),
        "test_loss": round(greedy["loss"], 4),
        "bleu4_target_0_8_met": beam["bleu4"] >= 0.8 and greedy["bleu4"] >= 0.8,
        "beam3_minus_greedy_bleu4": round(beam["bleu4"] - greedy["bleu4"], 4),
        "beam3_at_least_greedy": beam["bleu4"] >= greedy["bleu4"],
        "feature_extraction_images_per_s": round(n_feat_images / feat_s, 1),
        "train_loop_samples_per_s": round(train_sps, 1),
        "raw_fwd_bwd_samples_per_s": round(raw, 1),
        "train_vs_raw_throughput_ratio": round(train_sps / raw, 3),
        "examples": beam["examples"][:3],
        "history": [{k: round(v, 4) if isinstance(v, float) else v for k, v in e.items()
                     if k in ("epoch", "train_loss", "val_loss", "val_bleu4", "seconds")} for e in result.history],
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
