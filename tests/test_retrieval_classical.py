"""Classical index: build, query, persistence, cancel/resume, bad input."""
import threading

import numpy as np
import pytest
from PIL import Image

from core.retrieval import Cancelled
from core.retrieval.classical import ClassicalConfig, ClassicalIndex
from core.retrieval.datasets import Item, load_shapes

SMALL = ClassicalConfig(vocab_size=24, n_clusters=4, n_probe=1, pca_dim=16, image_size=64, dense_step=8, candidate_batch=7)


@pytest.fixture(scope="module")
def data():
    ds = load_shapes(54, seed=3)
    queries, gallery = ds.split(9)
    return queries, gallery


@pytest.fixture(scope="module")
def index(data):
    return ClassicalIndex.build(data[1], SMALL)


def test_query_ranks_candidates_best_first(index, data):
    queries, gallery = data
    hits = index.query(queries[0].load(), k=5)
    assert 1 <= len(hits) <= 5
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.id in index.ids for h in hits)
    # The query's own duplicate in the gallery must come first with similarity ~1.
    dup = index.query(gallery[7].load(), k=3)
    assert dup[0].id == gallery[7].id and dup[0].score == pytest.approx(1.0, abs=1e-4) and dup[0].match


def test_stage_one_narrows_the_search(index, data):
    desc = index.describe_image(data[0][0].load())
    cand = index.candidates(desc, k=1)
    # With 4 clusters and 1 probe, stage 2 scores only part of the gallery.
    assert 0 < len(cand) < len(index.ids)
    # Asking for more results than one cluster holds pulls in further clusters.
    assert len(index.candidates(desc, k=len(index.ids))) == len(index.ids)


def test_save_load_roundtrip_gives_same_answers(index, data, tmp_path):
    index.save(tmp_path / "idx")
    again = ClassicalIndex.load(tmp_path / "idx")
    img = data[0][1].load()
    assert [(h.id, round(h.score, 6)) for h in again.query(img, 6)] == [(h.id, round(h.score, 6)) for h in index.query(img, 6)]
    assert again.config == index.config and again.labels == index.labels
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["arrays.npz", "index.json"]


def test_load_errors_are_clear(index, tmp_path):
    with pytest.raises(FileNotFoundError, match="build one first"):
        ClassicalIndex.load(tmp_path / "none")
    index.save(tmp_path / "idx")
    data = bytearray((tmp_path / "idx" / "arrays.npz").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "idx" / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="rebuild"):
        ClassicalIndex.load(tmp_path / "idx")


def test_cancel_then_resume_reuses_extracted_chunks(data, tmp_path):
    gallery = data[1]
    cancel = threading.Event()

    def stop_after_first_chunk(done, total, **info):
        if info.get("stage") == "features" and done >= 16:
            cancel.set()

    with pytest.raises(Cancelled, match="resume"):
        ClassicalIndex.build(gallery, SMALL, on_progress=stop_after_first_chunk, cancel=cancel, work_dir=tmp_path, chunk_size=16)
    done_chunks = sorted(p.name for p in tmp_path.glob("raw-*.json"))
    assert len(done_chunks) == 1

    loads = []

    class Counting:
        def __init__(self, it):
            self.it, self.id, self.labels = it, it.id, it.labels

        def load(self):
            loads.append(self.id)
            return self.it.load()

    resumed = ClassicalIndex.build([Counting(g) for g in gallery], SMALL, work_dir=tmp_path, chunk_size=16)
    assert len(loads) == len(gallery) - 16  # the first chunk came from the work dir
    fresh = ClassicalIndex.build(gallery, SMALL)
    np.testing.assert_allclose(resumed.features, fresh.features, atol=1e-5)


def test_bad_images_are_skipped_and_reported(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG truncated")

    def bad():
        from core.images import load_rgb

        return load_rgb(tmp_path / "bad.png")

    good = load_shapes(6).items
    items = list(good) + [Item(id="bad.png", labels=("x",), loader=bad)]
    idx = ClassicalIndex.build(items, SMALL)
    assert len(idx.ids) == 6 and idx.report.skipped[0][0] == "bad.png"
    assert "image" in idx.report.skipped[0][1]
    with pytest.raises(ValueError, match="could be read"):
        ClassicalIndex.build([items[-1]], SMALL)


def test_plain_pil_images_and_config_validation():
    imgs = [Image.new("RGB", (50, 40), (i * 40, 100, 200 - i * 30)) for i in range(5)]
    idx = ClassicalIndex.build(imgs, SMALL)
    assert idx.ids == [f"image-{i}" for i in range(5)]
    with pytest.raises(ValueError, match="vocab_size"):
        ClassicalIndex.build(imgs, ClassicalConfig(vocab_size=0))
