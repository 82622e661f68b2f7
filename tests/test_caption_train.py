"""Training runs on tiny real data: learning, checkpoints, cancel + resume, bad images, augmentation."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.captioning.datasets import load_csv, load_shapes, split_from_ids
from core.captioning.evaluate import evaluate_checkpoint
from core.captioning.train import TrainConfig, _swap_left_right, train
from models.captioner import load_checkpoint

pytestmark = pytest.mark.slow
FIX = Path(__file__).parent / "fixtures" / "captions"


def _tiny(**kw) -> TrainConfig:
    base = dict(image_size=32, preset="nano", epochs=4, batch_size=32, lr=3e-3, bleu_images=10, device="cpu",
                val_fraction=0.15, test_fraction=0.15, patience=10)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    # The decoder is tiny: one thread avoids contention on a shared 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shapes():
    return load_shapes(80, seed=0)


def test_training_learns_writes_checkpoints_and_evaluates(shapes, tmp_path):
    seen = []
    res = train(shapes, _tiny(), tmp_path / "run", on_progress=lambda d, t, **k: seen.append(k.get("phase")))
    assert res.status == "finished" and res.epochs_run == 4
    assert {"features", "train", "epoch"} <= set(seen)
    h = res.history
    assert [e["epoch"] for e in h] == [1, 2, 3, 4]
    assert h[-1]["val_loss"] < h[0]["val_loss"] and h[-1]["train_loss"] < h[0]["train_loss"]
    assert 0.0 <= h[-1]["val_bleu4"] <= 1.0
    assert res.best_path.is_file() and res.last_path.is_file()
    ck = load_checkpoint(res.best_path)
    ids = {k: set(v) for k, v in ck.split.items()}
    assert not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"]) and not (ids["train"] & ids["val"])
    assert len(ids["test"]) == 12
    assert ck.best_val_loss == min(e["val_loss"] for e in h)
    test_items = split_from_ids(shapes.items, ck.split)["test"]
    m = evaluate_checkpoint(res.best_path, test_items, method="greedy")
    assert set(m) >= {"bleu1", "bleu2", "bleu3", "bleu4", "token_acc", "loss", "examples"}
    assert m["n_images"] == 12 and m["token_acc"] > 0.3
    assert m["bleu1"] >= m["bleu4"]


def test_cancel_then_resume_continues_without_duplicate_epochs(shapes, tmp_path):
    cancel = threading.Event()

    def stop_after_first_epoch(done, total, phase="train", **info):
        if phase == "epoch" and info["epoch"] == 1:
            cancel.set()

    out = tmp_path / "run"
    first = train(shapes, _tiny(epochs=3), out, on_progress=stop_after_first_epoch, cancel=cancel)
    assert first.status == "cancelled" and [e["epoch"] for e in first.history] == [1]
    assert load_checkpoint(first.last_path).epoch == 1
    second = train(shapes, _tiny(epochs=3), out)
    assert second.status == "finished"
    assert [e["epoch"] for e in second.history] == [1, 2, 3]
    assert load_checkpoint(second.last_path).split == load_checkpoint(first.last_path).split
    # A finished run resumed again does nothing more.
    third = train(shapes, _tiny(epochs=3), out)
    assert third.history == second.history
    with pytest.raises(ValueError, match="decoder"):
        train(shapes, _tiny(epochs=3, decoder="lstm"), out)


def test_undecodable_images_are_reported_and_training_goes_on(tmp_path):
    data = load_csv(FIX / "captions.csv", FIX / "images")
    res = train(data, _tiny(epochs=1, val_fraction=0.25, test_fraction=0.0, bleu_images=0), tmp_path / "run")
    assert res.status == "finished"
    msgs = [str(p) for p in res.problems]
    assert any("broken.jpg" in m and "image skipped" in m for m in msgs)
    assert any("missing.jpg" in m for m in msgs)  # loader problems travel with the result
    # A rerun reads the frozen encoder's features from the run folder instead of recomputing them.
    assert len(list((tmp_path / "run" / "features").glob("*.pt"))) == 2
    phases = []
    again = train(data, _tiny(epochs=1, val_fraction=0.25, test_fraction=0.0, bleu_images=0), tmp_path / "run",
                  resume=False, on_progress=lambda d, t, **k: phases.append(k.get("phase")))
    assert "features" not in phases and "train" in phases
    assert [str(p) for p in again.problems] == msgs


def test_augment_finetune_lstm_path(tmp_path):
    from core.captioning.model import load_trained

    data = load_shapes(24, seed=5)
    res = train(data, _tiny(epochs=1, augment=True, finetune=True, decoder="lstm", bleu_images=0), tmp_path / "run")
    assert res.status == "finished"
    ck = load_checkpoint(res.best_path)
    assert ck.encoder_head_state and ck.config.finetune and ck.config.decoder == "lstm"
    model = load_trained(res.best_path)
    caps = model.caption([data.items[0].load()], method="greedy")
    assert len(caps) == 1 and isinstance(caps[0], str)


def test_flip_keeps_caption_true():
    assert _swap_left_right("a red circle in the top left") == "a red circle in the top right"
    assert _swap_left_right("right then left") == "left then right"


def test_augmented_training_skips_undecodable_images(tmp_path):
    data = load_csv(FIX / "captions.csv", FIX / "images")
    res = train(data, _tiny(epochs=1, augment=True, val_fraction=0.0, test_fraction=0.0, bleu_images=0), tmp_path / "run")
    assert res.status == "finished" and res.split_sizes["train"] == 3
    assert any("broken.jpg" in str(p) and "image skipped" in str(p) for p in res.problems)
