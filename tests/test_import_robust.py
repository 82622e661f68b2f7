"""Import of a real, messy folder: odd names, HEIC/AVIF, near duplicates, files that are no images.

Every file seen is accounted for; nothing aborts the folder; reruns are incremental.
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.ingest import ingest_folder, ingest_paths
from core.pathnames import display_path, from_db, to_db

HEIC_DIR = Path(__file__).resolve().parent / "data" / "heic"

BAD_NAME = b"caf\xe9 on the beach \xff.jpg"  # Latin-1 bytes: not valid UTF-8 (old camera card, Windows zip)


def _photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _exif(orientation: int, taken: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = taken
    return exif.tobytes()


def make_messy_folder(root: Path) -> dict[str, str]:
    """A folder a real user has: returns display name -> expected status."""
    root.mkdir(parents=True, exist_ok=True)
    coffee = _photo("coffee")
    coffee.save(root / "coffee.jpg", quality=92)
    # The same photo cropped by 1 px and re-encoded at lower quality: a near duplicate.
    coffee.crop((1, 1, coffee.width, coffee.height)).save(root / "small-coffee.jpg", quality=60)
    (root / "copy-of-coffee.jpg").write_bytes((root / "coffee.jpg").read_bytes())
    with open(os.path.join(os.fsencode(root), BAD_NAME), "wb") as fh:
        buf = io.BytesIO()
        _photo("chelsea").save(buf, "JPEG", quality=90)
        fh.write(buf.getvalue())
    # An iPhone-style HEIC, stored sideways with EXIF orientation 6 (rotate 90° to view) and a date. The
    # runtime plugin (pi-heif) only decodes, so the file was written once by pillow-heif (tests/data/heic/README.md).
    shutil.copy(HEIC_DIR / "rocket_sideways_orientation6.heic", root / "IMG_0001.HEIC")
    _photo("astronaut").resize((256, 256)).save(root / "astronaut.avif", format="AVIF", exif=_exif(1, "2023:01:02 03:04:05"))
    (root / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>')
    (root / "README").write_text("no extension")
    (root / "DSC_0042.NEF").write_bytes(b"II*\x00 not really a raw file")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "empty.jpg").write_bytes(b"")
    bad = display_path(os.fsdecode(BAD_NAME))
    return {"coffee.jpg": "added", "small-coffee.jpg": "near duplicate", "copy-of-coffee.jpg": "duplicate", bad: "added",
            "IMG_0001.HEIC": "added", "astronaut.avif": "added", "logo.svg": "not read", "README": "not read",
            "DSC_0042.NEF": "skipped", ".DS_Store": "not read", "empty.jpg": "skipped"}


def test_pathnames_round_trip_and_keep_utf8_unchanged():
    bad = os.fsdecode(b"/photos/caf\xe9/\xff\xfe x.jpg")
    assert to_db("/photos/café/ok.jpg") == "/photos/café/ok.jpg"  # valid UTF-8: stored exactly as before
    assert to_db(bad) == "/photos/caf//xe9///xff//xfe x.jpg"
    assert from_db(to_db(bad)) == bad and os.fsencode(from_db(to_db(bad))) == b"/photos/caf\xe9/\xff\xfe x.jpg"
    assert display_path(bad) == "/photos/caf\\xe9/\\xff\\xfe x.jpg"
    assert to_db(os.fsdecode(b"/p/\xc3\xa9\xe9.jpg")) == "/p/é//xe9.jpg"  # a valid sequence next to a bad byte


def test_messy_folder_imports_and_accounts_for_every_file(services, tmp_path):
    root = tmp_path / "card"
    expected = make_messy_folder(root)

    report = ingest_folder(services, root)

    seen = {Path(display_path(f.path)).name: f.status for f in report.files}
    assert seen == expected
    assert report.added == 4 and report.new_paths == 1 and len(report.near_duplicates) == 1
    assert report.summary().startswith(f"{len(expected)} files seen, 4 new photos, 1 duplicates/renames, 1 near duplicates")
    counts = report.reason_counts()
    assert counts["added"] == 4 and counts["not read: not an image type PhotoLore reads"] == 3
    assert counts["skipped: camera RAW"] == 1 and counts["near duplicate"] == 1 and counts["duplicate"] == 1
    details = {Path(display_path(f.path)).name: f.detail for f in report.files}
    assert details["small-coffee.jpg"].startswith(f"near duplicate of {root.resolve() / 'coffee.jpg'} (distance ")
    assert "RAW (.nef) is not supported" in details["DSC_0042.NEF"] and "(.svg;" in details["logo.svg"]
    assert "no extension" in details["README"] and "same bytes as" in details["copy-of-coffee.jpg"]

    cat = services.catalog
    assert cat.count() == 4 and services.store.count(services.backend.model_id, "image") == 4
    photos = {Path(p.path).name: p for p in cat.list_photos()}
    bad_name = os.fsdecode(BAD_NAME)
    assert os.fsencode(photos[bad_name].path) == os.fsencode(root.resolve()) + b"/" + BAD_NAME  # lossless
    assert Path(photos[bad_name].path).is_file()
    heic = photos["IMG_0001.HEIC"]
    rocket = _photo("rocket")
    assert (heic.width, heic.height) == rocket.size  # shown upright
    assert heic.orientation == 6 and heic.taken_at == "2024-07-01T12:30:00" and heic.format == "HEIF"
    assert photos["astronaut.avif"].taken_at == "2023-01-02T03:04:05" and photos["astronaut.avif"].format == "AVIF"
    assert all(p.phash for p in photos.values())
    near = cat.near_duplicates()
    assert [(Path(n.path).name, n.photo_id) for n in near] == [("small-coffee.jpg", photos["coffee.jpg"].id)]
    assert near[0].distance <= services.settings.near_dup_threshold

    again = ingest_folder(services, root)  # nothing changed: nothing re-read, the same account
    assert {Path(display_path(f.path)).name: f.status for f in again.files} == expected | {
        "coffee.jpg": "unchanged", "copy-of-coffee.jpg": "unchanged", display_path(bad_name): "unchanged",
        "IMG_0001.HEIC": "unchanged", "astronaut.avif": "unchanged"}
    assert again.added == 0 and cat.count() == 4

    # The user keeps both: the near duplicate becomes a photo of its own, once.
    cat.keep_near_duplicate(near[0].path)
    kept = ingest_folder(services, root)
    assert kept.added == 1 and cat.count() == 5 and cat.near_duplicates() == []
    assert ingest_folder(services, root).added == 0


def test_near_duplicate_of_a_library_photo_across_imports_and_switched_off(services, tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    coffee = _photo("coffee")
    coffee.save(first / "coffee.jpg", quality=92)
    coffee.crop((0, 0, coffee.width - 1, coffee.height)).save(second / "coffee-edit.jpg", quality=70)
    _photo("chelsea").save(second / "cat.jpg")
    ingest_folder(services, first)
    report = ingest_folder(services, second)
    assert report.added == 1 and [Path(n.path).name for n in report.near_duplicates] == ["coffee-edit.jpg"]
    assert report.near_duplicates[0].of_path == str((first / "coffee.jpg").resolve())
    # The library photo is deleted: the file it kept out is imported on the next run.
    (first / "coffee.jpg").unlink()
    ingest_folder(services, first)
    assert ingest_folder(services, second).added == 1 and services.catalog.near_duplicates() == []

    from core.services import build_services

    off = build_services(services.settings.model_copy(update={"near_dup_threshold": -1}), backend=services.backend)
    third = tmp_path / "third"
    third.mkdir()
    coffee.crop((1, 0, coffee.width, coffee.height)).save(third / "coffee-again.jpg", quality=75)
    assert ingest_folder(off, third).added == 1


def test_an_unexpected_error_on_one_file_is_its_skip_reason(services, tmp_path, monkeypatch):
    import core.stages as ingest_mod  # the read stage lives there

    root = tmp_path / "p"
    root.mkdir()
    _photo("coffee").save(root / "a.jpg")
    _photo("chelsea").save(root / "boom.jpg")
    real = ingest_mod.decode_image

    def decode(data, **kw):
        if str(kw.get("name", "")).endswith("boom.jpg"):
            raise RuntimeError("decoder crashed")
        return real(data, **kw)

    monkeypatch.setattr(ingest_mod, "decode_image", decode)
    report = ingest_folder(services, root)
    assert report.added == 1
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [("boom.jpg", "unexpected error: RuntimeError: decoder crashed")]


def test_uploads_accept_heic_and_odd_names(services, tmp_path):
    from core.uploads import save_uploads

    heic = (HEIC_DIR / "coffee.heic").read_bytes()
    saved, rejected = save_uploads([("caf\udce9.heic", heic), ("x.svg", b"<svg/>")], tmp_path / "lib" / "uploads")
    assert [p.suffix for p in saved] == [".heic"] and rejected and "not an image" in rejected[0][1]
    report = ingest_paths(services, saved, source="upload")
    assert report.added == 1 and services.catalog.list_photos()[0].format == "HEIF"


def test_sigkill_while_importing_a_messy_folder_then_rerun_holds_every_photo_once(tmp_path):
    """Kill `python -m core ingest` mid-run on a folder with odd names, HEIC, near and exact duplicates and
    non-images; the rerun's JSON report accounts for every file and every photo is in catalog and index once."""
    import json
    import subprocess

    from core.catalog import Catalog
    from core.settings import Settings
    from tests.conftest import PYTHON, REPO, start_then_sigkill
    from tests.test_ingest import _count
    from vectorstore.store import VectorStore

    root = tmp_path / "card"
    expected = make_messy_folder(root)
    n = 40
    for i in range(n):
        Image.fromarray(np.random.default_rng(1000 + i).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(root / f"n{i:03d}.jpg")
    data = tmp_path / "data"
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data), PHOTOLORE_BATCH_SIZE="2", PHOTOLORE_BACKEND="bundled",
               PHOTOLORE_SECRETS=str(tmp_path / "none.toml"))
    db = data / "catalog.sqlite"
    start_then_sigkill([PYTHON, "-m", "core", "ingest", str(root)], env, lambda: _count(db) >= 6)
    at_kill = _count(db)
    assert 0 < at_kill < n + 4, f"the kill should land mid-run (catalog had {at_kill})"

    done = subprocess.run([PYTHON, "-m", "core", "ingest", str(root), "--json"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    counts = report["counts"]
    assert sum(counts.values()) == len(report["files"]) == len(expected) + n
    assert counts.get("added", 0) + counts.get("unchanged", 0) + counts.get("duplicate", 0) == n + 5
    assert counts["near duplicate"] == 1 and counts["not read: not an image type PhotoLore reads"] == 3
    assert counts["skipped: camera RAW"] == 1 and counts["skipped: empty file"] == 1
    statuses = {Path(f["path"]).name: f["status"] for f in report["files"]}
    assert statuses[display_path(os.fsdecode(BAD_NAME))] in ("added", "unchanged")

    settings = Settings(data_dir=data)
    cat = Catalog(settings.catalog_path)
    store = VectorStore.from_settings(settings)
    assert cat.count() == n + 4 and cat.count_files() == n + 5
    ids = {p.id for p in cat.list_photos(limit=10_000)}
    assert store.ids("bundled-effnetlite0-minilm", "image") == ids
    assert store.ids("bundled-effnetlite0-minilm", "caption") == ids
    assert cat.indexed_ids("bundled-effnetlite0-minilm") == ids
    assert [Path(d.path).name for d in cat.near_duplicates()] == ["small-coffee.jpg"]


def test_library_photos_from_before_hashes_are_hashed_from_thumbnails_and_compared(services, tmp_path):
    """A library from an older PhotoLore has no hashes: the next import computes them, then compares."""
    import sqlite3

    first = tmp_path / "old"
    first.mkdir()
    coffee = _photo("coffee")
    coffee.save(first / "coffee.jpg", quality=92)
    ingest_folder(services, first)
    with sqlite3.connect(services.settings.catalog_path) as con:
        con.execute("UPDATE photos SET phash=NULL")
    later = tmp_path / "new"
    later.mkdir()
    coffee.crop((1, 1, coffee.width, coffee.height)).save(later / "coffee-edit.jpg", quality=65)
    report = ingest_folder(services, later)
    assert report.added == 0 and [Path(n.path).name for n in report.near_duplicates] == ["coffee-edit.jpg"]
    assert all(p.phash for p in services.catalog.list_photos())


@pytest.mark.slow
def test_pages_show_photos_with_odd_names_and_heic(services, tmp_path, monkeypatch):
    """Library, Search and Dashboards (AppTest) over a library holding a non-UTF-8 name and a HEIC."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    make_messy_folder(tmp_path / "card")
    assert ingest_folder(services, tmp_path / "card").added == 4
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(services.settings.data_dir))
    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    st.cache_resource.clear()
    try:
        lib = AppTest.from_file(str(REPO / "pages/library.py"), default_timeout=180).run()
        assert not lib.exception, [e.value for e in lib.exception]
        names = " ".join(c.value for c in lib.caption)
        assert "caf\\\\xe9 on the beach \\\\xff" in names and "IMG\\_0001" in names
        details = [b.key for b in lib.button if b.key and b.key.startswith("lib-grid-details-")]
        assert len(details) == 4
        for key in details:  # every photo's details open, HEIC and odd name included
            one = AppTest.from_file(str(REPO / "pages/library.py"), default_timeout=180).run()
            one.button(key=key).click().run()
            assert not one.exception, [e.value for e in one.exception]
            assert any("Files:" in t.value for t in one.text)
        search = AppTest.from_file(str(REPO / "pages/search.py"), default_timeout=180).run()
        search.text_input(key="search-text").input("a photo").run()
        assert not search.exception, [e.value for e in search.exception]
        dash = AppTest.from_file(str(REPO / "pages/dashboards.py"), default_timeout=180).run()
        assert not dash.exception, [e.value for e in dash.exception]
    finally:
        st.cache_resource.clear()


def test_folder_with_a_non_utf8_name_rescans_and_prunes(services, tmp_path):
    """Under a folder whose own name is not UTF-8: incremental rescans and forgetting deleted files work."""
    folder = os.path.join(os.fsencode(tmp_path), b"Urlaub \xe9t\xe9 2003")
    os.makedirs(folder)
    for name, photo in ((b"a.jpg", "coffee"), (b"b\xe4r.jpg", "chelsea")):
        _photo(photo).save(os.fsdecode(os.path.join(folder, name)))
    root = Path(os.fsdecode(folder))
    assert ingest_folder(services, root).added == 2
    again = ingest_folder(services, root)
    assert again.unchanged == 2 and again.added == 0
    os.unlink(os.path.join(folder, b"b\xe4r.jpg"))
    gone = ingest_folder(services, root)
    assert gone.pruned == 1 and services.catalog.count() == 1
    assert [Path(p.path).name for p in services.catalog.list_photos()] == ["a.jpg"]
    assert os.fsencode(services.catalog.list_photos()[0].path) == os.path.join(folder, b"a.jpg")
