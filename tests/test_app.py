"""Streamlit pages driven by AppTest (in-process) over the demo library."""
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _clear_cache():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _no_exception(at):
    assert not at.exception, [e.value for e in at.exception]


def test_router_runs(demo_env):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180).run()
    _no_exception(at)


def test_search_page_text_query(demo_env):
    at = AppTest.from_file(str(REPO / "pages/search.py"), default_timeout=180).run()
    _no_exception(at)
    at.text_input(key="search-text").input("a cup of coffee").run()
    _no_exception(at)
    captions = [c.value for c in at.caption]
    first_result = next(c for c in captions if c.startswith("**0."))
    assert "coffee" in first_result
    assert any("bundled" in c for c in captions)  # the active backend is shown
    from core.catalog import open_catalog
    from core.settings import Settings

    found = open_catalog(Settings()).detected_counts()  # what the demo photos' facts hold (none without the detectors)
    objects = at.multiselect(key="search-objects")
    assert objects.options == [f"{k} ({n:,})" for k, n in found.items()] and objects.disabled == (not found)
    if not found:
        assert "detectors build" in objects.help  # says the command that adds them


def test_search_object_filter_without_detected_objects_names_the_fix(demo_env_copy):
    import sqlite3

    from core.settings import Settings

    with sqlite3.connect(Settings().catalog_path) as con:  # a library whose facts predate the detectors (version 4)
        con.execute("UPDATE photos SET facts_terms = ','")
        con.execute("DELETE FROM photo_objects")  # the rows derived from those terms (core.photo_objects), as a write keeps them
    at = AppTest.from_file(str(REPO / "pages/search.py"), default_timeout=180).run()
    _no_exception(at)
    objects = at.multiselect(key="search-objects")
    assert objects.options == [] and objects.disabled
    assert "python -m core detectors build" in objects.help and "python -m core reindex" in objects.help
    assert objects.placeholder == "No objects detected yet"


def test_search_object_counts_follow_a_facts_write_at_once(demo_env_copy):
    """The counts come from rows every facts write keeps (core.photo_objects): the next rerun shows a new object,
    with no cache to expire (it used to be kept for 5 minutes)."""
    from core.catalog import open_catalog
    from core.facts import PhotoFacts
    from core.settings import Settings

    at = AppTest.from_file(str(REPO / "pages/search.py"), default_timeout=180).run()
    _no_exception(at)
    before = at.multiselect(key="search-objects").options
    assert not any(o.startswith("kite ") for o in before)
    catalog = open_catalog(Settings())
    pid = catalog.list_photos(limit=1)[0].id
    kite = ("kite", 0.9, (0.1, 0.1, 0.4, 0.4))
    catalog.set_facts([(pid, PhotoFacts(detections=[kite, kite], detector="centernet-320"))])  # two boxes, one photo
    at.run()
    _no_exception(at)
    assert "kite (1)" in at.multiselect(key="search-objects").options


def test_search_page_more_like_this(demo_env):
    at = AppTest.from_file(str(REPO / "pages/search.py"), default_timeout=180).run()
    at.text_input(key="search-text").input("a cup of coffee").run()
    like = [b for b in at.button if b.key and b.key.startswith("search-grid-like-")][0]
    like.click().run()
    _no_exception(at)
    assert at.session_state["search-like"] == like.key.rsplit("-", 1)[1]
    assert any("Photos like" in i.value for i in at.info)


def test_library_page_shows_counts_and_ingests_a_folder(demo_env_copy, tmp_path):
    from tests.conftest import write_image

    at = AppTest.from_file(str(REPO / "pages/library.py"), default_timeout=180).run()
    _no_exception(at)
    assert [m.value for m in at.metric][:1] == ["15"]
    folder = tmp_path / "more"
    write_image(folder / "new.jpg", seed=11)
    (folder / "broken.jpg").write_text("nope")
    at.text_input(key="lib-add-folder").input(str(folder)).run()
    at.button(key="lib-add-import").click().run()
    _no_exception(at)
    assert any("1 new photos" in w.value for w in at.warning)  # warning because one file was skipped
    assert [m.value for m in at.metric][:1] == ["16"]


def test_library_page_missing_folder_is_a_clear_error(demo_env):
    at = AppTest.from_file(str(REPO / "pages/library.py"), default_timeout=180).run()
    at.text_input(key="lib-add-folder").input("/definitely/not/here").run()
    at.button(key="lib-add-import").click().run()
    _no_exception(at)
    assert any("folder not found" in e.value for e in at.error)


def test_dashboards_page_without_annotations_explains_and_maps(demo_env):
    at = AppTest.from_file(str(REPO / "pages/dashboards.py"), default_timeout=180).run()
    _no_exception(at)
    infos = " ".join(i.value for i in at.info)
    assert "no photo has affective scores yet" in infos
    assert any("projection of 15 image embeddings" in c.value for c in at.caption)
    at.multiselect(key="dash-classes").select("demo").run()
    _no_exception(at)
    assert any("15 of 15 photos" in c.value for c in at.caption)


def test_search_page_why_this_match_heat_map(demo_env):
    at = AppTest.from_file(str(REPO / "pages/search.py"), default_timeout=180).run()
    at.text_input(key="search-text").input("a cup of coffee").run()
    why = [b for b in at.button if b.key and b.key.startswith("search-grid-why-")][0]
    why.click().run()
    _no_exception(at)
    assert any(c.value.startswith("Method: ") and "cam" in c.value for c in at.caption)
    assert any(t.value.startswith("Explained by") for t in at.text)
