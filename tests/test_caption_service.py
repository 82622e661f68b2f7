"""Best available captioner, captioning files, saving captions, and the `caption` CLI."""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from core.captioning.datasets import load_library, load_shapes
from core.captioning.service import (TrainedCaptioner, best_captioner, caption_files, caption_store_path,
                                     captioner_dir, list_checkpoints, save_captions)
from core.captioning.train import TrainConfig, train
from core.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory) -> Path:
    """A data dir holding one tiny trained checkpoint under models/captioner/tiny/."""
    data_dir = tmp_path_factory.mktemp("data")
    cfg = TrainConfig(image_size=32, preset="nano", epochs=1, batch_size=32, bleu_images=0, device="cpu")
    train(load_shapes(30), cfg, captioner_dir(Settings(data_dir=data_dir)) / "tiny")
    return data_dir


def _png(colour=(200, 30, 30), square: bool = False) -> bytes:
    """A flat image, or (square=True) a coloured square on white. Two flat images of different colours
    have the same perceptual hash, so import would call the second a near duplicate of the first."""
    buf = io.BytesIO()
    img = Image.new("RGB", (40, 40), "white" if square else colour)
    if square:
        img.paste(colour, (10, 10, 30, 30))
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_without_checkpoint_falls_back_to_the_backend_description(tmp_path, bundled_backend):
    settings = Settings(data_dir=tmp_path)
    cap = best_captioner(settings, bundled_backend)
    assert cap.name.startswith("bundled backend description")
    assert "no usable trained captioner" in cap.why
    img = Image.new("RGB", (64, 64), (30, 60, 220))
    out = cap.caption([img])
    assert out == [bundled_backend.describe([img])[0].caption] and out[0].startswith("a ")  # written from the photo facts


def test_trained_checkpoint_is_preferred_and_captions_files(trained_dir):
    settings = Settings(data_dir=trained_dir)
    assert [p.name for p in list_checkpoints(settings)] == ["best.pt", "last.pt"]
    cap = best_captioner(settings)
    assert isinstance(cap, TrainedCaptioner) and "tiny/best.pt" in cap.name
    outcomes = caption_files([("red.png", _png()), ("bad.jpg", b"no image here"), ("empty.png", b"")], cap)
    assert [o.name for o in outcomes] == ["red.png", "bad.jpg", "empty.png"]
    assert outcomes[0].caption is not None and outcomes[0].captioner == cap.name and outcomes[0].error is None
    assert "bad.jpg" in outcomes[1].error and outcomes[1].caption is None
    assert "empty" in outcomes[2].error


def test_unreadable_checkpoint_is_skipped_with_reason(tmp_path, bundled_backend):
    settings = Settings(data_dir=tmp_path)
    bad = captioner_dir(settings) / "broken" / "best.pt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"garbage")
    cap = best_captioner(settings, bundled_backend)
    assert not cap.name.startswith("trained") and "best.pt" in cap.why


def test_save_captions_into_the_catalog(trained_dir, services):
    from core.captioning.datasets import load_catalog

    cap = best_captioner(Settings(data_dir=trained_dir))
    outcomes = caption_files([("red.png", _png()), ("blue.png", _png((30, 60, 220), square=True)), ("bad.jpg", b"xx")], cap)
    assert save_captions(services.settings, outcomes, services) == 2
    assert save_captions(services.settings, outcomes, services) == 0  # a rerun changes nothing
    photos = {p.id: p for p in services.catalog.list_photos()}
    assert set(photos) == {outcomes[0].sha256, outcomes[1].sha256}
    red = photos[outcomes[0].sha256]
    assert red.caption == outcomes[0].caption and red.caption_source == f"captioner:{cap.name}"
    assert Path(red.path).parent == services.settings.library_dir / "uploads"
    # Machine captions are not training data by default; a human caption is.
    assert load_catalog(services.settings.catalog_path).items == []
    services.catalog.set_caption(red.id, "a red square on white", "user")
    lib = load_catalog(services.settings.catalog_path)
    assert [(i.image_id, i.captions) for i in lib.items] == [(red.id, ["a red square on white"])]
    assert len(load_catalog(services.settings.catalog_path, include_auto=True).items) == 2


def test_save_captions_without_a_catalog_uses_the_json_store(trained_dir, tmp_path):
    settings = Settings(data_dir=tmp_path)
    cap = best_captioner(Settings(data_dir=trained_dir))
    outcomes = caption_files([("red.png", _png()), ("bad.jpg", b"xx")], cap)
    assert save_captions(settings, outcomes) == 1
    assert save_captions(settings, outcomes) == 0  # a rerun duplicates nothing
    entries = json.loads(caption_store_path(settings).read_text())
    (entry,) = entries.values()
    assert Path(entry["path"]).is_file() and Path(entry["path"]).parent == settings.library_dir / "uploads"
    assert entry["captions"] == [{"text": outcomes[0].caption, "captioner": cap.name}]
    lib = load_library(caption_store_path(settings))
    assert len(lib.items) == 1 and lib.items[0].load().size == (40, 40)


def _cli(argv: list[str]) -> int:
    from core.captioning.cli import register

    parser = argparse.ArgumentParser(prog="core")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_train_eval_predict(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOTOLORE_DEVICE", "cpu")
    rc = _cli(["caption", "train", "--n", "30", "--epochs", "1", "--preset", "nano", "--image-size", "32", "--run", "cli"])
    assert rc == 0
    assert (tmp_path / "models" / "captioner" / "cli" / "best.pt").is_file()
    assert "finished after 1 epochs" in capsys.readouterr().out
    assert _cli(["caption", "eval", "--n", "30", "--method", "greedy"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["n_images"] == 3 and "bleu4" in report
    img = tmp_path / "red.png"
    img.write_bytes(_png())
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert _cli(["caption", "predict", str(img), str(tmp_path / "bad.png")]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"{img}\t") and "bad.png" in out.err and "trained captioner" in out.err


def test_cli_eval_without_checkpoint_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path))
    assert _cli(["caption", "eval"]) == 2
    assert "caption train" in capsys.readouterr().err
