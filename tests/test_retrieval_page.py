"""AppTest of pages/retrieval_lab.py: run the classical + random methods on generated shapes."""
import pytest
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path / "data"))
    return AppTest.from_file(str(ROOT / "pages" / "retrieval_lab.py"), default_timeout=240)


def test_page_runs_an_evaluation(app):
    app.run()
    assert not app.exception
    app.number_input(key="rl_n").set_value(36)
    app.number_input(key="rl_queries").set_value(30)  # more than 36 shapes in 18 classes can answer
    app.number_input(key="rl_vocab").set_value(16)
    app.number_input(key="rl_clusters").set_value(3)
    app.number_input(key="rl_depth").set_value(20)
    app.multiselect(key="rl_methods").set_value(["classical", "random"])
    app.button[0].click()  # the form's submit button
    app.run()
    assert not app.exception, app.exception
    assert not app.error
    table = app.dataframe[0].value  # metrics as rows, methods as columns
    assert list(table.columns) == ["classical", "random"]
    assert table.loc["mAP"].astype(float).between(0, 1).all()
    assert any("Results on shapes-36" in s.value for s in app.subheader)
    used = int(table.loc["n_queries", "classical"])
    assert used < 30 and any(f"{used} of the 30 queries asked" in c.value for c in app.caption)  # says why it used fewer


def test_page_reports_a_bad_dataset_path(app, tmp_path):
    app.run()
    app.selectbox(key="rl_kind").set_value("cifar10")
    app.text_input(key="rl_path").set_value(str(tmp_path / "missing"))
    app.multiselect(key="rl_methods").set_value(["classical"])
    app.button[0].click()
    app.run()
    assert not app.exception
    assert "cifar-10-batches-py" in app.error[0].value
