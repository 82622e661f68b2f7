"""The Caption page driven through Streamlit's AppTest: caption library photos, train with live curves."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "caption.py")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    from core.shapes import write_dataset

    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOTOLORE_DEVICE", "cpu")
    write_dataset(tmp_path / "library" / "shapes", 2)
    (tmp_path / "library" / "broken.jpg").write_bytes(b"not an image")
    return tmp_path


def _texts(at) -> str:
    return "\n".join(t.value for t in at.text)


def test_caption_tab_captions_library_photos_and_saves(data_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    pick = at.multiselect(key="caption_library_pick")
    assert "broken.jpg" in pick.options and len(pick.options) == 3
    pick.set_value(list(pick.options)).run()
    at.button(key="caption_run").click().run()
    assert not at.exception
    texts = _texts(at)
    assert "Captioner: bundled tag description" in texts or "Captioner: bundled backend" in texts
    assert texts.count("a photo") == 2  # two shapes captioned
    assert any("broken.jpg" in c.value for c in at.code)  # the bad file is reported, not fatal
    at.button(key="caption_save").click().run()
    assert "Saved 2 new caption(s)." in [s.value for s in at.success]
    assert (data_dir / "captions" / "captions.json").is_file()


def test_train_tab_runs_a_job_and_shows_curves(data_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.number_input(key="train_n").set_value(60)
    at.selectbox(key="train_preset").set_value("nano")
    at.selectbox(key="train_image_size").set_value(64)
    at.number_input(key="train_epochs").set_value(2)
    at.text_input(key="train_run").set_value("page").run()
    at.button(key="train_start").click().run()
    assert not at.exception
    deadline = time.time() + 120
    while time.time() < deadline and "Status: finished" not in _texts(at):
        time.sleep(1)
        at.run()
    texts = _texts(at)
    assert "Status: finished" in texts, texts
    assert "Best checkpoint:" in texts
    assert len(at.get("arrow_vega_lite_chart")) >= 2 or len(at.get("vega_lite_chart")) >= 2
    assert (data_dir / "models" / "captioner" / "page" / "best.pt").is_file()
    # The new checkpoint is now a choice on the Caption tab.
    choices = at.selectbox(key="caption_choice").options
    assert any("page" in c and c.endswith("best.pt") for c in choices)
