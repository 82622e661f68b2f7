"""The Generate page driven by Streamlit's AppTest, with a real tiny checkpoint in a temp data dir."""
import json
import time

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: on a shared 2-core machine two spinning OpenMP threads run many times slower.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

pytestmark = pytest.mark.slow

MODEL_ID = "bundled-effnetlite0-minilm"


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    from core.gan.data import shapes_image_set
    from core.gan.train import GanConfig, train

    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    images, _ = shapes_image_set(32, 32)
    cond = np.random.default_rng(0).normal(size=(32, 384)).astype(np.float32)
    cfg = GanConfig(resolution=32, preset="tiny", epochs=1, batch_size=16, num_threads=1)
    train(images, cond, cfg, tmp_path / "gan" / "mine", model_id=MODEL_ID)
    train(images, cond[:, :16], cfg, tmp_path / "gan" / "other", model_id="clip-some-other-space")
    return tmp_path


def _app():
    from streamlit.testing.v1 import AppTest

    from pathlib import Path

    return AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "generate.py"), default_timeout=180)


def test_playground_generates_and_refuses_other_backend(data_dir):
    at = _app().run()
    assert not at.exception
    options = at.selectbox(key="gen_ckpt").options
    assert "mine / generator_epoch_1.pth (latest, best)" in options and "other / generator_epoch_1.pth (latest, best)" in options
    at.selectbox(key="gen_ckpt").set_value("mine / generator_epoch_1.pth (latest, best)")
    at.text_input(key="gen_text").input("a small red circle in the top left")
    at.slider(key="gen_n").set_value(4)
    at.button(key="gen_go").click().run()
    assert not at.exception and not at.error
    assert len(at.get("download_button")) >= 2
    assert any("4 images" in " ".join(img.captions) for img in at.image)

    at.text_input(key="gen_text_b").input("a large blue square in the center")
    at.button(key="gen_interp").click().run()
    assert not at.exception and not at.error

    at.selectbox(key="gen_ckpt").set_value("other / generator_epoch_1.pth (latest, best)")
    at.button(key="gen_go").click().run()
    assert at.error and "clip-some-other-space" in at.error[0].value

    at.selectbox(key="gen_ckpt").set_value("mine / generator_epoch_1.pth (latest, best)")
    at.text_input(key="gen_text").input("   ")
    at.button(key="gen_go").click().run()
    assert at.error and "type a text" in at.error[0].value


def test_train_tab_trains_in_background_and_refuses_to_overwrite(data_dir):
    at = _app().run()
    at.radio(key="train_kind").set_value("Shapes demo").run()
    at.number_input(key="train_shapes").set_value(64)
    at.text_input(key="train_run").input("ui-run")
    at.selectbox(key="train_res").set_value(32)
    at.selectbox(key="train_preset").set_value("tiny")
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_recon").set_value(0.0)
    at.number_input(key="train_mode_seeking").set_value(0.02)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    ckpt = data_dir / "gan" / "ui-run" / "checkpoints" / "generator_epoch_1.pth"
    deadline = time.time() + 150
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert ckpt.exists()
    config = json.loads((data_dir / "gan" / "ui-run" / "run.json").read_text())["config"]
    assert config["recon"] == 0.0 and config["mode_seeking"] == 0.02
    time.sleep(1.0)
    at.run()
    assert not at.exception
    assert any("Finished at step 2" in s.value for s in at.success)
    assert any("sample_epoch_1.png" in " ".join(img.captions) for img in at.image)

    # Starting the same run again without "resume" is refused; nothing is overwritten.
    before = ckpt.read_bytes()
    at.button(key="train_start").click().run()
    deadline = time.time() + 60
    while time.time() < deadline:
        at.run()
        if any("already holds a training run" in e.value for e in at.error):
            break
        time.sleep(0.5)
    assert any("already holds a training run" in e.value for e in at.error)
    assert ckpt.read_bytes() == before
