"""Ingest: incremental, idempotent, resumable after SIGKILL, and tolerant of bad files.

The catalog-facing tests take `catalog_services`: they run on SQLite and on PostgreSQL."""
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core.ingest import ingest_folder, ingest_paths, read_batch, reindex, scan
from tests.conftest import PYTHON, REPO, start_then_sigkill, write_image


def _index_counts(services):
    mid = services.backend.model_id
    return services.store.count(mid, "image"), services.store.count(mid, "caption")


def test_folder_with_bad_files_reports_each_and_keeps_good_ones(catalog_services, tmp_path):
    services = catalog_services
    root = tmp_path / "photos"
    write_image(root / "cats" / "a.jpg", seed=1)
    write_image(root / "cats" / "b.png", fmt="PNG", seed=2)
    write_image(root / "dogs" / "c.jpg", size=(80, 60), seed=3)
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    (root / "dogs" / "html.jpg").write_text("<html>nope</html>")
    good = (root / "cats" / "a.jpg").read_bytes()
    (root / "dogs" / "cut.jpg").write_bytes(good[: len(good) // 3])
    (root / "notes.txt").write_text("ignored: not an image extension")

    report = ingest_folder(services, root)

    assert report.added == 3
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.jpg", "html.jpg", "cut.jpg"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["html.jpg"] and "truncated" in reasons["cut.jpg"]
    assert services.catalog.count() == 3 and _index_counts(services) == (3, 3)
    assert services.catalog.classes() == {"cats": 2, "dogs": 1}
    photo = services.catalog.list_photos(class_name="dogs")[0]
    assert (photo.width, photo.height) == (80, 60) and Path(photo.thumb_path).is_file() and photo.caption


def test_rerun_is_incremental_and_idempotent(catalog_services, tmp_path):
    services = catalog_services
    root = tmp_path / "p"
    for i in range(5):
        write_image(root / f"{i}.jpg", seed=i)
    first = ingest_folder(services, root)
    second = ingest_folder(services, root)
    assert first.added == 5 and second.added == 0 and second.unchanged == 5
    write_image(root / "new.jpg", seed=99)
    third = ingest_folder(services, root)
    assert third.added == 1 and third.unchanged == 5
    assert services.catalog.count() == 6 and _index_counts(services) == (6, 6)


def test_duplicates_merge_and_renames_are_recognised(catalog_services, tmp_path):
    services = catalog_services
    root = tmp_path / "p"
    write_image(root / "a.jpg", seed=7)
    (root / "copy_of_a.jpg").write_bytes((root / "a.jpg").read_bytes())
    report = ingest_folder(services, root)
    assert report.added == 1 and report.new_paths == 1
    pid = services.catalog.list_photos()[0].id
    assert len(services.catalog.paths_of(pid)) == 2

    (root / "a.jpg").rename(root / "renamed.jpg")
    (root / "copy_of_a.jpg").unlink()
    report = ingest_folder(services, root)
    assert report.added == 0 and report.new_paths == 1 and report.pruned == 2
    assert services.catalog.count() == 1
    assert services.catalog.get(pid).path.endswith("renamed.jpg")
    assert services.catalog.paths_of(pid) == [str((root / "renamed.jpg").resolve())]
    assert _index_counts(services) == (1, 1)


def test_deleted_photo_leaves_search_results(catalog_services, tmp_path):
    services = catalog_services
    from core.search import search_text

    root = tmp_path / "p"
    write_image(root / "a.jpg", seed=1)
    write_image(root / "b.jpg", seed=2)
    ingest_folder(services, root)
    (root / "a.jpg").unlink()
    ingest_folder(services, root)
    assert services.catalog.count() == 1
    assert [Path(r.photo.path).name for r in search_text(services, "a photo", k=5)] == ["b.jpg"]


def test_unchanged_bad_file_is_not_reread_but_fixed_file_is(catalog_services, tmp_path):
    services = catalog_services
    root = tmp_path / "p"
    bad = root / "x.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_text("not an image")
    r1 = ingest_folder(services, root)
    r2 = ingest_folder(services, root)
    assert len(r1.skipped) == 1 and len(r2.skipped) == 1 and r2.skipped[0].reason == r1.skipped[0].reason
    time.sleep(0.01)
    write_image(bad, fmt="JPEG", seed=5)
    r3 = ingest_folder(services, root)
    assert r3.added == 1 and not r3.skipped


def test_ingest_paths_for_uploads_and_cancel(catalog_services, tmp_path):
    services = catalog_services
    import threading

    paths = [write_image(tmp_path / "up" / f"{i}.png", fmt="PNG", seed=i) for i in range(9)]
    cancel = threading.Event()
    seen = []

    def progress(done, total, **info):
        seen.append((done, total))
        if done >= 4:
            cancel.set()

    report = ingest_paths(services, paths, source="upload", class_override="uploads", on_progress=progress, cancel=cancel)
    assert report.cancelled and 0 < report.added < 9
    assert seen[0] == (0, 9)
    rest = ingest_paths(services, paths, source="upload", class_override="uploads")
    assert rest.added + report.added == 9 and rest.unchanged == report.added
    assert services.catalog.classes() == {"uploads": 9}


def test_read_batch_is_pure_and_skips_decoding_known_photos(tmp_path):
    entries = list(scan(write_image(tmp_path / "a.jpg", seed=3).parent))
    items, skips = read_batch(entries, max_pixels=10**8)
    assert not skips and items[0].decoded is not None
    again, _ = read_batch(entries, max_pixels=10**8, already_indexed=frozenset({items[0].photo_id}))
    assert again[0].photo_id == items[0].photo_id and again[0].decoded is None


def test_backend_switch_keeps_collections_apart_and_reindexes(settings, bundled_backend, tiny_clip_backend, tmp_path):
    from core.services import build_services

    root = tmp_path / "p"
    for i in range(3):
        write_image(root / f"{i}.jpg", seed=i)
    bundled = build_services(settings, backend=bundled_backend)
    ingest_folder(bundled, root)
    clip = build_services(settings, backend=tiny_clip_backend)
    assert len(clip.catalog.photos_not_indexed(tiny_clip_backend.model_id)) == 3
    report = reindex(clip)
    assert report.reindexed == 3
    assert clip.store.count(tiny_clip_backend.model_id, "image") == 3
    assert bundled.store.count(bundled_backend.model_id, "image") == 3
    assert sorted(c for c in clip.store.collections()) == sorted([
        "photos-bundled-effnetlite0-minilm-caption", "photos-bundled-effnetlite0-minilm-facts",
        "photos-bundled-effnetlite0-minilm-image", "photos-clip-PhotoLore-Tiny-ViT-random-image"])
    assert clip.catalog.count() == 3 and ingest_folder(clip, root).unchanged == 3
    from core.search import search_image, search_text

    # CLIP compares text with image embeddings directly (no caption collection for it).
    assert len(search_text(clip, "a red square", k=5)) == 3
    first = clip.catalog.list_photos()[0]
    assert first.id not in [r.photo.id for r in search_image(clip, photo_id=first.id, k=5)]


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_midway_then_rerun_holds_every_photo_once(tmp_path):
    """Kill `python -m core ingest` with SIGKILL mid-run; the rerun completes with no duplicates."""
    root = tmp_path / "photos"
    n = 60
    for i in range(n):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (160, 200, 3), dtype=np.uint8)).save(root / f"{i:03d}.jpg" if root.exists() else (root.mkdir() or root / f"{i:03d}.jpg"))
    data = tmp_path / "data"
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data), PHOTOLORE_BATCH_SIZE="2", PHOTOLORE_BACKEND="bundled",
               PHOTOLORE_SECRETS=str(tmp_path / "none.toml"))
    db = data / "catalog.sqlite"
    start_then_sigkill([PYTHON, "-m", "core", "ingest", str(root)], env, lambda: _count(db) >= 6)
    at_kill = _count(db)
    assert 0 < at_kill < n, f"the kill should land mid-run (catalog had {at_kill}/{n})"

    done = subprocess.run([PYTHON, "-m", "core", "ingest", str(root), "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    from core.catalog import Catalog
    from core.settings import Settings
    from vectorstore.store import VectorStore

    settings = Settings(data_dir=data)
    cat = Catalog(settings.catalog_path)
    store = VectorStore.from_settings(settings)
    assert cat.count() == n and cat.count_files() == n
    ids = {p.id for p in cat.list_photos(limit=10_000)}
    assert store.ids("bundled-effnetlite0-minilm", "image") == ids
    assert store.ids("bundled-effnetlite0-minilm", "caption") == ids
    assert cat.indexed_ids("bundled-effnetlite0-minilm") == ids


def test_phone_photo_is_ingested_reduced_with_true_size_and_upright_thumbnail(services, tmp_path):
    from skimage import data as skdata

    # a real photo at phone size, stored sideways with EXIF orientation 6 ("turn 90 degrees clockwise to view")
    upright = Image.fromarray(skdata.chelsea()).resize((4032, 3024), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "p" / "cat.jpg"
    path.parent.mkdir()
    upright.transpose(Image.Transpose.ROTATE_90).save(path, quality=90, exif=exif.tobytes())

    report = ingest_folder(services, path.parent)
    photo = services.catalog.list_photos()[0]
    assert report.added == 1 and (photo.width, photo.height) == (4032, 3024) and photo.orientation == 6
    thumb = Image.open(photo.thumb_path)
    assert thumb.size == (320, 240)
    expected = np.asarray(upright.resize((320, 240), Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(np.asarray(thumb, dtype=np.float32) - expected).mean() < 6.0  # upright, the same picture
    assert any(word in photo.caption for word in ("cat", "tabby", "lynx"))  # the model saw the photo the right way up


def test_duplicate_in_a_later_batch_read_ahead_is_written_once(catalog_services, tmp_path):
    services = catalog_services
    root = tmp_path / "p"
    for i in range(11):
        write_image(root / f"{i:02d}.jpg", seed=i)
    (root / "99.jpg").write_bytes((root / "00.jpg").read_bytes())  # a copy three batches later (batch size 4)
    report = ingest_folder(services, root)
    assert report.added == 11 and report.new_paths == 1
    assert services.catalog.count() == 11 and _index_counts(services) == (11, 11)
