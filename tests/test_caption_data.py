"""Caption loaders on fixtures in each real format, bad-input reporting, splits and the vocabulary."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.captioning.datasets import (load_coco, load_csv, load_dataset, load_flickr8k, load_library, load_shapes,
                                      split_by_image, split_from_ids)
from core.captioning.vocab import Vocab, tokenize

FIX = Path(__file__).parent / "fixtures" / "captions"
IMAGES = FIX / "images"


def _by_id(cs):
    return {i.image_id: i for i in cs.items}


def _messages(cs):
    return [str(p) for p in cs.problems]


def test_flickr8k_loader_groups_captions_and_reports_bad_lines():
    cs = load_flickr8k(FIX / "Flickr8k.token.txt", IMAGES)
    items = _by_id(cs)
    assert sorted(items) == ["beach.png", "broken.jpg", "dog.jpg", "park.jpg"]
    assert items["dog.jpg"].captions == ["A red dog runs on the grass .", "A dog running outside ."]
    assert items["beach.png"].path == IMAGES / "beach.png"
    msgs = _messages(cs)
    # Each skipped line is named by file and line number.
    assert any(":6:" in m and "empty caption" in m for m in msgs)
    assert any(":7:" in m and "image file not found" in m and "missing.jpg" in m for m in msgs)
    assert any(":8:" in m and "UTF-8" in m for m in msgs)
    assert any(":9:" in m and "expected" in m for m in msgs)
    assert len(cs.problems) == 4


def test_coco_loader_reports_empty_missing_and_unknown_ids():
    cs = load_coco(FIX / "captions_coco.json", IMAGES)
    items = _by_id(cs)
    assert sorted(items) == ["beach.png", "dog.jpg", "park.jpg"]
    assert len(items["dog.jpg"].captions) == 2
    msgs = " | ".join(_messages(cs))
    assert "annotations[4]" in msgs and "empty caption" in msgs
    assert "missing.jpg" in msgs and "99" in msgs
    assert len(cs.problems) == 3


def test_coco_loader_non_utf8_file_keeps_good_captions(tmp_path):
    raw = (FIX / "captions_coco.json").read_bytes().replace(b"A blue sea at the beach.", b"A blue sea at the b\xe9ach.")
    bad = tmp_path / "coco.json"
    bad.write_bytes(raw)
    cs = load_coco(bad, IMAGES)
    assert "beach.png" not in _by_id(cs)  # its only caption was undecodable
    assert "dog.jpg" in _by_id(cs)
    assert any("UTF-8" in m for m in _messages(cs))


def test_coco_loader_rejects_non_coco_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="images"):
        load_coco(p, IMAGES)


def test_csv_loader_quotes_commas_and_reports_bad_rows():
    cs = load_csv(FIX / "captions.csv", IMAGES)
    items = _by_id(cs)
    assert items["dog.jpg"].captions == ["A red dog runs on the grass .", "A dog, running outside ."]
    msgs = _messages(cs)
    assert any(":6:" in m and "empty caption" in m for m in msgs)
    assert any(":7:" in m and "missing.jpg" in m for m in msgs)
    assert any(":8:" in m and "UTF-8" in m for m in msgs)
    assert len(cs.problems) == 3


def test_csv_loader_needs_header(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("dog.jpg,a dog\n")
    with pytest.raises(ValueError, match="filename,caption"):
        load_csv(p, IMAGES)


def test_broken_image_is_found_when_read():
    from core.images import ImageError

    item = _by_id(load_csv(FIX / "captions.csv", IMAGES))["broken.jpg"]
    with pytest.raises(ImageError):
        item.load()


def test_library_loader_reads_saved_captions(tmp_path):
    store = tmp_path / "captions.json"
    store.write_text(json.dumps({"abc": {"path": str(IMAGES / "dog.jpg"), "captions": [{"text": "a dog", "captioner": "x"}]},
                                 "def": {"path": str(tmp_path / "gone.jpg"), "captions": [{"text": "gone", "captioner": "x"}]}}))
    cs = load_library(store)
    assert [i.image_id for i in cs.items] == ["abc"]
    assert cs.items[0].captions == ["a dog"]
    assert len(cs.problems) == 1 and "gone.jpg" in str(cs.problems[0])


def test_load_dataset_dispatch_and_clear_errors():
    assert load_dataset("csv", path=FIX / "captions.csv", image_dir=IMAGES).name == "csv"
    with pytest.raises(ValueError, match="image_dir"):
        load_dataset("flickr8k", path=FIX / "Flickr8k.token.txt")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", path=FIX / "captions.csv", image_dir=IMAGES)


def test_shapes_set_has_three_exact_references():
    cs = load_shapes(12, seed=3)
    assert len(cs.items) == 12 and cs.n_captions == 36
    first = cs.items[0]
    assert first.load().size == (64, 64)
    assert all(len(set(i.captions)) == 3 for i in cs.items)


def test_split_is_by_image_seeded_and_disjoint():
    items = load_shapes(50).items
    a = split_by_image(items, val=0.2, test=0.2, seed=1)
    b = split_by_image(items, val=0.2, test=0.2, seed=1)
    ids = {k: {i.image_id for i in v} for k, v in a.items()}
    assert ids == {k: {i.image_id for i in v} for k, v in b.items()}
    assert len(ids["test"]) == 10 and len(ids["val"]) == 10 and len(ids["train"]) == 30
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    # All captions of an image travel together.
    assert sum(len(i.captions) for v in a.values() for i in v) == 150
    c = split_by_image(items, val=0.2, test=0.2, seed=2)
    assert {i.image_id for i in c["test"]} != ids["test"]
    again = split_from_ids(items, {k: sorted(v) for k, v in ids.items()})
    assert {k: {i.image_id for i in v} for k, v in again.items()} == ids


def test_vocab_min_freq_specials_and_roundtrip():
    assert tokenize("A dog, running.") == ["a", "dog", ",", "running", "."]
    v = Vocab.build(["a red dog", "a blue dog", "a cat"], min_freq=2)
    assert v.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert v.itos[4:] == ["a", "dog"]
    ids = v.encode("a red dog", max_len=10)
    assert ids[0] == v.bos_id and ids[-1] == v.eos_id and ids[2] == v.unk_id
    assert v.decode(ids) == "a <unk> dog"
    assert len(v.encode("a " * 50, max_len=8)) == 8
    with pytest.raises(ValueError):
        Vocab(["a", "b"])
