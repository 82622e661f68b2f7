"""The Annotate page driven by AppTest over a private copy of the demo library."""
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _clear_cache():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def test_run_review_correct_import_reset(demo_env_copy):
    from core import annotations as ann
    from core.catalog import Catalog

    at = AppTest.from_file(str(REPO / "pages/annotate.py"), default_timeout=180).run()
    _ok(at)
    assert any("No annotated photo" in i.value for i in at.info)
    at.radio(key="ann-scope").set_value("A class").run()
    at.button(key="ann-run").click().run()
    _ok(at)
    assert any("15 annotated" in s.value for s in at.success), [s.value for s in at.success]
    catalog = Catalog(demo_env_copy / "catalog.sqlite")
    assert len(ann.annotation_rows(catalog)) == 15
    # The review grid: correct one photo's Safety and sentiment, then save.
    editor = next((d for d in at.dataframe if d.key == "ann-editor-0"), None)
    assert editor is not None
    grid = ann.effective_annotations(catalog)
    first = grid.photo_id[0]
    at.session_state["ann-editor-0"] = {"edited_rows": {0: {"Safety": 1, "sentiment": "negative"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="ann-save").click().run()
    _ok(at)
    assert any("Saved corrections for 1 photos" in s.value for s in at.success)
    row = ann.effective_annotations(catalog, [first]).iloc[0]
    assert (row.Safety, row.sentiment) == (1, "negative") and row.corrected == ["Safety", "sentiment"]
    save = at.button(key="ann-save")  # nothing pending after the save
    assert save.disabled and save.label == "No unsaved corrections"
    grid_now = next(d for d in at.dataframe if d.key == "ann-editor-1").value
    assert grid_now.set_index("photo_id").loc[first, "annotator"] == "corrected (Safety, sentiment) · over zeroshot"
    assert at.get("download_button")[0].key == "ann-download"
    # Reset the annotator's results from the page.
    assert "zeroshot" in at.selectbox(key="ann-reset-pick").value
    at.button(key="ann-reset").click().run()
    _ok(at)
    assert ann.annotation_rows(catalog) == []
    assert ann.effective_annotations(catalog, [first]).iloc[0].Safety == 1  # the human value survives a reset


def test_api_annotator_without_settings_is_a_clear_error(demo_env_copy):
    at = AppTest.from_file(str(REPO / "pages/annotate.py"), default_timeout=180).run()
    at.multiselect(key="ann-annotators").set_value(["vlm-api"]).run()
    at.button(key="ann-run").click().run()
    _ok(at)
    assert any("PHOTOLORE_VLM_BASE_URL" in e.value.replace("\\", "") for e in at.error), [e.value for e in at.error]


def test_run_offers_the_configured_ray_cluster_and_names_the_fix_when_it_is_down(demo_env_copy, monkeypatch):
    """PHOTOLORE_RAY_ADDRESS set: Run offers the cluster; a dead one is a clear error; unticked, it runs here."""
    from core import annotations as ann
    from core.catalog import Catalog
    from tests.conftest import free_port

    monkeypatch.setenv("PHOTOLORE_RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(REPO / "pages/annotate.py"), default_timeout=180).run()
    _ok(at)
    assert at.checkbox(key="ann-ray").value is True
    at.button(key="ann-run").click().run()
    _ok(at)
    errors = " ".join(e.value for e in at.error)
    assert "cannot connect to the Ray cluster" in errors and "Untick" in errors, errors
    at.checkbox(key="ann-ray").uncheck().run()
    at.button(key="ann-run").click().run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    assert any("15 annotated" in s.value for s in at.success), [s.value for s in at.success]
    # A forced re-run on the dead cluster stops before it forgets the results it was to redo.
    at.checkbox(key="ann-ray").check()
    at.checkbox(key="ann-force").check().run()
    at.button(key="ann-run").click().run()
    _ok(at)
    assert "cannot connect to the Ray cluster" in " ".join(e.value for e in at.error)
    rows = ann.annotation_rows(Catalog(demo_env_copy / "catalog.sqlite"))
    assert len(rows) == 15 and all(r["status"] == "ok" for r in rows)
