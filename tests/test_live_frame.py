"""The Dashboards' whole-library frame kept current by re-reading what changed (core.annotations.live_frame), and the
columnar effective_annotations it is read with: after every kind of write the kept frame equals a fresh read.

Every test runs on an SQLite and a PostgreSQL catalog (the catalog_target fixture)."""
from __future__ import annotations

import threading

import pandas as pd

from core import dashboards as d
from core.annotations import effective_annotations, effective_records, record_results, reset_annotator, set_corrections
from core.annotations.effective import FRAME_COLUMNS
from core.annotations.store import write_captions
from core.catalog import Catalog, FileRecord, Photo
from tests.test_annotation_values import _catalog, _result, _write_history


def _plain(v):
    return v if isinstance(v, list) or not pd.isna(v) else None


def _fresh(cat: Catalog) -> pd.DataFrame:
    return d.frame_from_catalog(cat)


def _add(cat: Catalog, tmp_path, n: int, start: int, second: str = "03") -> list[str]:
    photos = [Photo(id=f"{start + i:064x}", path=str(tmp_path / "library" / "new" / f"n{start + i}.jpg"), source="test",
                    class_name="new", added_at=f"2026-01-{second}T00:00:{i:02d}+00:00") for i in range(n)]
    cat.commit_batch(photos, [FileRecord(p.path, p.id, 1, 1) for p in photos], "m")
    return [p.id for p in photos]


def test_effective_annotations_in_columns_equal_the_records(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    _write_history(cat, ids)
    write_captions(cat, {ids[2]: ("a caption", "negative")}, "senticap")
    for photo_ids in (None, [ids[5], "0" * 64, ids[0], ids[7], ids[2]], []):
        got = effective_annotations(cat, photo_ids)
        want = pd.DataFrame(effective_records(cat, photo_ids), columns=FRAME_COLUMNS)
        assert list(got.columns) == FRAME_COLUMNS and len(got) == len(want)
        for col in FRAME_COLUMNS:  # value by value: NaN and None both mean "none" here
            assert [_plain(v) for v in got[col]] == [_plain(v) for v in want[col]], col
        assert str(got["Safety"].dtype) == "Int64" and got["sentiment_score"].dtype == "float64"


def test_a_full_read_reports_its_progress(catalog_target, tmp_path, monkeypatch):
    import core.annotations.store as store

    cat, ids = _catalog(catalog_target, tmp_path)
    monkeypatch.setattr(store, "_PROGRESS_EVERY", 4)
    seen: list[tuple[int, int]] = []
    frame = d.live_frame(cat).get(on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 9), (8, 9), (9, 9)] and len(frame) == 9


def test_every_kind_of_write_is_read_back_alone(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    live = d.LiveFrame(cat, prepare=d.dashboard_frame, full_read_share=1.0)  # 9 photos: every write is a big share
    first = live.get()
    assert live.last.kind == "full" and live.last.rows == len(ids)
    before = first.copy(deep=True)
    seen = []

    def check(cat: Catalog) -> None:
        got = live.get()
        pd.testing.assert_frame_equal(got, _fresh(cat))
        seen.append((live.last.kind, live.last.rows))

    _write_history(cat, ids, check)
    write_captions(cat, {ids[2]: ("a caption", "negative")}, "senticap")  # the ground truth is in the frame too
    check(cat)
    new = _add(cat, tmp_path, 3, 200)
    check(cat)
    record_results(cat, "a", "1", [_result(new[0], 4)])
    check(cat)
    kinds = {k for k, _ in seen}
    assert kinds == {"changes"}, seen  # never a full read for these
    assert ("changes", 3) in seen  # the three new photos, read alone
    assert max(rows for _, rows in seen) <= 7, seen  # a write touches its own photos only
    pd.testing.assert_frame_equal(first, before)  # frames handed out earlier are left as they were
    last = live.last
    assert live.get() is live.get() and live.last is last  # nothing changed: the same frame, and how it was come by


def test_catalog_writes_are_read_back_alone(catalog_target, tmp_path):
    """Caption edits, a rescan that finds photos gone, a removal and a re-import under another path are numbered
    by the catalog: each is patched in (rows dropped for photos gone), no full read."""
    cat, ids = _catalog(catalog_target, tmp_path, n=10)
    record_results(cat, "a", "1", [_result(i, 2) for i in ids[:4]])
    live = d.LiveFrame(cat, prepare=d.dashboard_frame, full_read_share=1.0)
    live.get()

    def same(kind: str = "changes") -> pd.DataFrame:
        got = live.get()
        pd.testing.assert_frame_equal(got, _fresh(cat))
        assert live.last.kind == kind, live.last
        return got

    cat.set_caption(ids[1], "a hallway with a bench", "user")
    assert same().set_index("photo_id").loc[ids[1], "caption"] == "a hallway with a bench"
    trip = tmp_path / "library" / "trip"
    cat.prune_missing(trip, seen={str(trip / f"p{i}.jpg") for i in range(10) if i not in (2, 3)})  # two photos gone
    assert len(same()) == 9 and live.last.rows == 2
    cat.remove_photo(ids[5])
    assert len(same()) == 8
    moved = Photo(id=ids[6], path=str(tmp_path / "library" / "moved" / "p6.jpg"), source="test", class_name="c0",
                  added_at="2026-01-01T00:00:06+00:00")
    cat.commit_batch([moved], [FileRecord(moved.path, moved.id, 1, 1)], "m")  # the same photo found under another path
    assert same().set_index("photo_id").loc[ids[6], "filename"] == "moved/p6.jpg"
    # a photo back from missing belongs where it was, not at the end: read everything
    cat.commit_batch([], [FileRecord(str(trip / "p2.jpg"), ids[2], 1, 1)], "m")
    assert len(same("full")) == 9


def test_a_big_change_reads_everything(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path, n=10)
    live = d.live_frame(cat)
    live.get()
    more = _add(cat, tmp_path, 10, 300)
    record_results(cat, "a", "1", [_result(i, 3) for i in more])
    got = live.get()
    assert live.last.kind == "full"  # more than a fifth of the library changed: one read is cheaper
    pd.testing.assert_frame_equal(got, _fresh(cat))


def test_rows_written_around_the_journal_are_caught_by_the_count(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path, n=10)
    live = d.LiveFrame(cat, prepare=d.dashboard_frame, full_read_share=1.0)
    live.get()
    with cat.db.connect() as con:  # a writer that numbers nothing (a bulk load, an older PhotoLore)
        con.execute("UPDATE photos SET missing=1 WHERE id=?", (ids[0],))
    got = live.get()
    assert live.last.kind == "full" and ids[0] not in set(got["photo_id"])


def test_the_copy_on_disk_starts_a_new_process_warm(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    _write_history(cat, ids)
    cache = tmp_path / "cache" / "frame.arrow"
    first = d.live_frame(cat, cache)
    first.get()
    assert cache.exists() and not list(cache.parent.glob("*.tmp"))
    set_corrections(cat, {ids[0]: {"Safety": 1, "topics": ["garden"]}})

    again = d.live_frame(Catalog(catalog_target, library_dir=tmp_path / "library"), cache)  # a restarted app
    got = again.get()
    assert again.last.kind == "disk" and again.last.rows == 1  # the file, then the one photo changed since
    pd.testing.assert_frame_equal(got, _fresh(cat))
    assert got.set_index("photo_id").loc[ids[0], "topics"] == ["garden"]

    # another library root (its filenames differ), a damaged file, a foreign file: each read again, nothing raised
    other = d.live_frame(Catalog(catalog_target, library_dir=tmp_path / "elsewhere"), cache)
    other.get()
    assert other.last.kind == "full"
    for junk in (b"", b"not an arrow file", cache.read_bytes()[:200]):
        cache.write_bytes(junk)
        broken = d.live_frame(cat, cache)
        pd.testing.assert_frame_equal(broken.get(), _fresh(cat))
        assert broken.last.kind == "full"


def test_a_catalog_restored_from_an_older_copy_is_read_again(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    record_results(cat, "a", "1", [_result(i, 2) for i in ids[:4]])
    live = d.live_frame(cat)
    live.get()
    with cat.db.connect() as con:  # what a restore to an older backup looks like to the journal
        con.execute("UPDATE photo_changes SET seq = 0")
        con.execute("UPDATE annotation_values SET safety = 5")
    got = live.get()
    assert live.last.kind == "full" and set(got["Safety"].dropna()) == {5}


def test_change_numbers_commit_in_order_with_concurrent_writers(catalog_target, tmp_path):
    """A reader never passes a number whose photos it has not seen: with 4 writers at once (truly concurrent
    transactions on PostgreSQL), a frame refreshed all along ends equal to a fresh read."""
    cat, ids = _catalog(catalog_target, tmp_path, n=24)
    live = d.live_frame(cat)
    live.get()
    errors: list[BaseException] = []
    done = threading.Event()

    def write(annotator: str) -> None:
        try:
            for rnd in range(5):
                part = ids[(rnd * 5) % 20:(rnd * 5) % 20 + 6]
                record_results(cat, annotator, "1", [_result(i, 1 + (rnd + len(annotator)) % 5) for i in part])
                set_corrections(cat, {part[0]: {"Privacy": 1 + rnd % 5}})
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                live.get()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(name,)) for name in ("a", "bb", "ccc", "dddd")]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert not errors, errors
    pd.testing.assert_frame_equal(live.get(), _fresh(cat))
    last, changed = cat.changes_since(0)
    assert last == cat.change_number() and set(ids[:20]) <= set(changed) <= set(ids) | {f"{99:064x}"}


def test_a_reset_of_the_only_annotator_empties_the_values_it_kept(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    record_results(cat, "a", "1", [_result(i, 2) for i in ids])
    live = d.LiveFrame(cat, prepare=d.dashboard_frame, full_read_share=1.0)
    assert live.get()["Safety"].notna().sum() == len(ids)
    reset_annotator(cat, "a")
    got = live.get()
    assert live.last.kind == "changes" and got["Safety"].isna().all()


def test_a_zero_share_reads_everything_on_every_change(catalog_target, tmp_path):
    cat, ids = _catalog(catalog_target, tmp_path)
    live = d.LiveFrame(cat, prepare=d.dashboard_frame, full_read_share=0.0)
    live.get()
    set_corrections(cat, {ids[0]: {"Safety": 4}})
    live.get()
    assert live.last.kind == "full"
