"""The Caption page driven through Streamlit's AppTest: caption library photos, save, train with live curves."""
from __future__ import annotations

import time

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
PAGE = str(REPO / "pages" / "caption.py")


@pytest.fixture(autouse=True)
def _clear_cache():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _texts(at) -> str:
    return "\n".join(t.value for t in at.text)


def test_caption_tab_captions_library_photos_and_saves_them(demo_env_copy):
    from streamlit.testing.v1 import AppTest

    from core.catalog import Catalog

    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    pick = at.multiselect(key="caption_library_pick")
    assert len(pick.options) == 15
    chosen = list(pick.options)[:2]
    pick.set_value(chosen).run()
    at.button(key="caption_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    texts = _texts(at)
    # No checkpoint yet: the bundled backend's description writes the captions, and says so.
    assert "Captioner: bundled backend description" in texts and "no usable trained captioner" in texts
    lines = [t.value for t in at.text]
    signed = [i for i, v in enumerate(lines) if " - by " in v]  # each caption is followed by "<file> - by <captioner>"
    assert len(signed) == 2 and all(lines[i - 1].startswith("a") for i in signed)  # "a ..."/"an ...", from the facts
    at.button(key="caption_save").click().run()
    assert "Saved 2 new caption(s) into the library." in [s.value for s in at.success]
    catalog = Catalog(demo_env_copy / "catalog.sqlite")
    saved = [p for p in catalog.list_photos() if p.path in chosen]
    assert len(saved) == 2 and all(p.caption_source.startswith("captioner:bundled") for p in saved)
    at.button(key="caption_save").click().run()
    assert "Saved 0 new caption(s) into the library." in [s.value for s in at.success]  # idempotent


def test_train_tab_runs_a_job_shows_curves_and_offers_the_checkpoint(demo_env_copy):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=180).run()
    at.number_input(key="train_n").set_value(60)
    at.selectbox(key="train_preset").set_value("nano")
    at.selectbox(key="train_image_size").set_value(64)
    at.number_input(key="train_epochs").set_value(2)
    at.text_input(key="train_run").set_value("page").run()
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.time() + 150
    while time.time() < deadline and "Status: finished" not in _texts(at):
        time.sleep(1)
        at.run()
    texts = _texts(at)
    assert "Status: finished" in texts, texts
    assert "Best checkpoint:" in texts
    charts = at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
    assert len(charts) >= 2, [type(e).__name__ for e in at.main]  # loss and BLEU curves
    assert (demo_env_copy / "models" / "captioner" / "page" / "best.pt").is_file()
    choices = at.selectbox(key="caption_choice").options
    assert any("page" in c and c.endswith("best.pt") for c in choices)
    # Evaluate the new checkpoint on its held-out test split.
    at.selectbox(key="train_eval_ckpt").set_value(next(c for c in choices if "page" in c and c.endswith("best.pt")))
    at.radio(key="train_eval_method").set_value("greedy").run()
    at.button(key="train_eval").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert labels == ["BLEU1", "BLEU2", "BLEU3", "BLEU4", "TOKEN ACC", "LOSS"]
    assert all(0.0 <= float(m.value) <= 1.0 for m in at.metric[:5])
    # With a trained checkpoint the best available captioner is the trained one.
    at.multiselect(key="caption_library_pick").set_value([at.multiselect(key="caption_library_pick").options[0]]).run()
    at.button(key="caption_run").click().run()
    assert "Captioner: trained captioner 'page/best.pt'" in _texts(at)
