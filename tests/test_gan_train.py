"""Training loop on the tiny preset: outputs, exact resume, refusal to overwrite, bad checkpoints."""
import json
import threading

import numpy as np
import pytest
import torch

from core.gan import GanError
from core.gan.data import shapes_image_set
from core.gan.generate import generate, load_generator
from core.gan.runs import latest_checkpoint, read_log
from core.gan.train import GanConfig, train


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: on a shared 2-core machine two spinning OpenMP threads run many times slower.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def shapes32():
    images, labels = shapes_image_set(64, 32)
    rng = np.random.default_rng(0)
    cond = rng.normal(size=(64, 12)).astype(np.float32)
    return images, cond


def tiny(**kw):
    base = dict(resolution=32, preset="tiny", epochs=2, batch_size=16, log_every=2, sample_noise=3, num_threads=1)
    base.update(kw)
    return GanConfig(**base)


def _load_all(run_dir, tag):
    g = torch.load(run_dir / "checkpoints" / f"generator_{tag}.pth", weights_only=False)
    s = torch.load(run_dir / "checkpoints" / f"state_{tag}.pth", weights_only=False)
    return g, s


def _assert_same_state(a, b):
    for key in ("generator", "generator_ema"):
        for k in a[0][key]:
            assert torch.equal(a[0][key][k], b[0][key][k]), f"{key}.{k} differs"
    for k in a[1]["discriminator"]:
        assert torch.equal(a[1]["discriminator"][k], b[1]["discriminator"][k]), f"D.{k} differs"
    sa, sb = a[1]["opt_g"]["state"], b[1]["opt_g"]["state"]
    for k in sa:
        assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"])


def test_train_writes_samples_checkpoints_and_log(tmp_path, shapes32):
    images, cond = shapes32
    seen = []
    result = train(images, cond, tiny(), tmp_path / "run", model_id="test-space", on_progress=lambda d, t, **kw: seen.append((d, t)))
    run = tmp_path / "run"
    assert result.finished and result.step == 8 and result.epoch == 2
    for n in (1, 2):
        assert (run / "output" / f"sample_epoch_{n}.png").is_file()
    # Only the latest state is kept (it is what resume needs); epoch 1's generator stays only if it is the best.
    assert (run / "checkpoints" / "generator_epoch_2.pth").is_file() and (run / "checkpoints" / "state_epoch_2.pth").is_file()
    assert not (run / "checkpoints" / "state_epoch_1.pth").exists()
    assert all(np.isfinite(r["sample_l1"]) for r in read_log(run) if r["step"] % 4 == 0)
    assert seen[-1] == (8, 8)
    log = read_log(run)
    assert [r["step"] for r in log] == [2, 4, 6, 8]
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in log)
    meta = json.loads((run / "run.json").read_text())
    assert meta["model_id"] == "test-space" and meta["cond_dim"] == 12 and meta["resolution"] == 32
    from PIL import Image

    grid = Image.open(run / "output" / "sample_epoch_2.png")
    assert grid.size[0] > 3 * 32  # three noise columns

    loaded = load_generator(result.generator_path, model_id="test-space", resolution=32)
    imgs = generate(loaded.generator, cond[:2], n_per=3, seed=5)
    assert imgs.shape == (6, 32, 32, 3) and imgs.dtype == np.uint8
    assert np.array_equal(imgs, generate(loaded.generator, cond[:2], n_per=3, seed=5))


def test_resume_is_exact(tmp_path, shapes32):
    images, cond = shapes32
    train(images, cond, tiny(epochs=3), tmp_path / "straight")
    train(images, cond, tiny(epochs=1), tmp_path / "split")
    resumed = train(images, cond, tiny(epochs=3), tmp_path / "split", resume=True)
    assert resumed.step == 12 and resumed.finished
    _assert_same_state(_load_all(tmp_path / "straight", "epoch_3"), _load_all(tmp_path / "split", "epoch_3"))
    assert [r["step"] for r in read_log(tmp_path / "split")] == [r["step"] for r in read_log(tmp_path / "straight")]


def test_cancel_checkpoints_mid_epoch_and_resume_is_exact(tmp_path, shapes32):
    images, cond = shapes32
    cancel = threading.Event()

    def stop_at_step_3(done, total, **kw):
        if done == 3:
            cancel.set()

    r = train(images, cond, tiny(), tmp_path / "run", on_progress=stop_at_step_3, cancel=cancel)
    assert not r.finished and r.step == 3
    assert latest_checkpoint(tmp_path / "run")["generator"] == "generator_step_3.pth"
    r2 = train(images, cond, tiny(), tmp_path / "run", resume=True)
    assert r2.finished and r2.step == 8
    train(images, cond, tiny(), tmp_path / "straight")
    _assert_same_state(_load_all(tmp_path / "straight", "epoch_2"), _load_all(tmp_path / "run", "epoch_2"))


def test_existing_run_is_never_overwritten(tmp_path, shapes32):
    images, cond = shapes32
    train(images, cond, tiny(epochs=1), tmp_path / "run", model_id="a")
    ckpt = tmp_path / "run" / "checkpoints" / "generator_epoch_1.pth"
    before = ckpt.read_bytes()
    with pytest.raises(GanError, match="already holds a training run"):
        train(images, cond, tiny(epochs=1), tmp_path / "run", model_id="a")
    with pytest.raises(GanError, match="model_id"):
        train(images, cond, tiny(epochs=2), tmp_path / "run", model_id="b", resume=True)
    with pytest.raises(GanError, match="resolution"):
        train(shapes_image_set(64, 64)[0], cond, tiny(epochs=2, resolution=64), tmp_path / "run", model_id="a", resume=True)
    assert ckpt.read_bytes() == before
    assert json.loads((tmp_path / "run" / "run.json").read_text())["model_id"] == "a"


def test_run_keeps_its_own_architecture_on_resume(tmp_path, shapes32, monkeypatch):
    # A run started before presets fed the condition into the 4x4 map must resume as it was.
    import models.gan

    images, cond = shapes32
    old_tiny = {k: v for k, v in models.gan.PRESETS["tiny"].items() if k != "cond_layout"}
    monkeypatch.setitem(models.gan.PRESETS, "tiny", old_tiny)
    train(images, cond, tiny(epochs=1), tmp_path / "run")
    monkeypatch.undo()
    assert models.gan.PRESETS["tiny"]["cond_layout"] is True
    r = train(images, cond, tiny(epochs=2), tmp_path / "run", resume=True)
    assert r.finished and r.step == 8
    G = load_generator(r.generator_path).generator
    assert G.arch.cond_layout is False and G.fc.in_features == G.arch.z_dim
    assert generate(G, cond[:1], n_per=2, seed=0).shape == (2, 32, 32, 3)
    with pytest.raises(GanError, match="preset 'tiny', now 'compact'"):
        train(images, cond, tiny(epochs=3, preset="compact"), tmp_path / "run", resume=True)


def test_recon_term_pulls_samples_towards_their_photos(tmp_path, shapes32):
    # The paired L1 term is what makes a condition reproduce its own photo early in training.
    images, cond = shapes32
    x = torch.from_numpy(images.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    dist = {}
    for recon in (0.0, 20.0):
        r = train(images, cond, tiny(epochs=10, recon=recon), tmp_path / f"r{recon:g}")
        G = load_generator(r.generator_path).generator
        z = torch.randn(len(x), G.arch.z_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            dist[recon] = float((G(z, torch.from_numpy(cond)) - x).abs().mean())
    assert dist[20.0] < 0.85 * dist[0.0], dist


def test_mode_seeking_makes_samples_of_one_condition_differ(tmp_path, shapes32):
    from core.gan.evaluate import within_group_diversity

    images, cond = shapes32
    div = {}
    for ms in (0.0, 0.5):
        r = train(images, cond, tiny(epochs=10, mode_seeking=ms), tmp_path / f"m{ms:g}")
        G = load_generator(r.generator_path).generator
        div[ms] = within_group_diversity(generate(G, cond[:8], n_per=4, seed=1).reshape(8, 4, 32, 32, 3))
    assert div[0.5] > 1.5 * div[0.0], div


def test_bad_inputs_are_clear_errors(tmp_path, shapes32):
    images, cond = shapes32
    with pytest.raises(GanError, match="conditions must be"):
        train(images, cond[:10], tiny(), tmp_path / "a")
    with pytest.raises(GanError, match="config asks for 64 px"):
        train(images, cond, tiny(resolution=64), tmp_path / "b")
    with pytest.raises(GanError, match="needs at least 2"):
        train(images.images[:1], cond[:1], tiny(), tmp_path / "c")
    with pytest.raises(GanError, match="recon weight must be"):
        train(images, cond, tiny(recon=-1.0), tmp_path / "d")
    with pytest.raises(GanError, match="mode_seeking weight must be"):
        train(images, cond, tiny(mode_seeking=float("nan")), tmp_path / "e")
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_checkpoint_from_other_backend_or_resolution_is_refused(tmp_path, shapes32):
    images, cond = shapes32
    r = train(images, cond, tiny(epochs=1), tmp_path / "run", model_id="clip-tiny")
    with pytest.raises(GanError, match="backend 'clip-tiny'.*active backend is 'bundled"):
        load_generator(r.generator_path, model_id="bundled-effnetlite0-minilm")
    with pytest.raises(GanError, match="32 px images, not 64 px"):
        load_generator(r.generator_path, resolution=64)
    with pytest.raises(GanError, match="12-d conditions"):
        load_generator(r.generator_path, cond_dim=384)
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(GanError, match="cannot be read"):
        load_generator(bad)
    torch.save({"weights": 1}, tmp_path / "other.pth")
    with pytest.raises(GanError, match="not a PhotoLore GAN"):
        load_generator(tmp_path / "other.pth")
    with pytest.raises(GanError, match="does not exist"):
        load_generator(tmp_path / "missing.pth")


class _Words:
    """A real, trivial caption-space backend: bag-of-words embeddings."""

    name, model_id, text_space = "words", "words-v1", "caption"
    vocab = ["red", "green", "blue", "yellow", "purple", "orange", "circle", "square", "triangle", "photo"]

    def embed_texts(self, texts):
        out = np.array([[t.split().count(w) for w in self.vocab] for t in texts], np.float32) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def describe(self, images):
        from models.base import Description

        return [Description(caption="a photo") for _ in images]


def test_training_job_runs_in_background_and_stops(tmp_path):
    import time

    from core.gan.job import TrainSource, start_training_job

    job = start_training_job(TrainSource("shapes", "64"), _Words(), tiny(epochs=200), tmp_path / "run", prompts=["a red circle", "a blue square"])
    deadline = time.time() + 60
    while job.progress.get("stage") != "train" and time.time() < deadline and job.running:
        time.sleep(0.05)
    job.stop()
    job.thread.join(60)
    assert job.error is None, job.error
    assert job.result is not None and not job.result.finished and 0 < job.result.step < 800
    latest = latest_checkpoint(tmp_path / "run")
    assert latest["step"] == job.result.step
    assert load_generator(tmp_path / "run" / "checkpoints" / latest["generator"], model_id="words-v1").meta["cond_dim"] == 10


def test_folder_source_reports_skipped_files(tmp_path):
    from core.gan.job import TrainSource, train_from_source
    from core.shapes import write_dataset

    write_dataset(tmp_path / "photos", 32, image_size=40)
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    r = train_from_source(TrainSource("folder", str(tmp_path / "photos")), _Words(), tiny(epochs=1), tmp_path / "run")
    assert r.finished and [name for name, _ in r.skipped] == ["broken.png"]
    assert "broken.png" in (tmp_path / "run" / "skipped.tsv").read_text()
    with pytest.raises(GanError, match="already holds a training run"):
        train_from_source(TrainSource("folder", str(tmp_path / "photos")), _Words(), tiny(epochs=1), tmp_path / "run")


def test_checkpoints_keep_latest_best_every_nth_within_budget(tmp_path, shapes32):
    """A long run on a small set keeps latest + best + every Nth epoch, not one pair per epoch."""
    from core.gan.checkpoints import generator_choices, read_best, usage

    images, cond = shapes32
    run = tmp_path / "gan" / "run"
    r = train(images, cond, tiny(epochs=12, keep_every=5), run)
    names = sorted(p.name for p in (run / "checkpoints").glob("*.pth"))
    best = read_best(run / "checkpoints")
    kept = {"generator_epoch_5.pth", "generator_epoch_10.pth", "generator_epoch_12.pth", "state_epoch_12.pth", best["generator"]}
    assert set(names) == kept, names
    assert best["sample_l1"] == pytest.approx(min(row["sample_l1"] for row in r.log if "sample_l1" in row and row["sample_l1"] is not None), abs=1e-4)
    used = usage(run)
    assert used.files == len(kept) and used.keep_every == 5 and "budget" in used.summary()
    labels = [label for label, _ in generator_choices(tmp_path)]
    assert labels[0] == "run / generator_epoch_12.pth" + (" (latest, best)" if best["generator"] == "generator_epoch_12.pth" else " (latest)")

    # A budget smaller than one generator: the periodic ones go, latest and best stay.
    small = tmp_path / "gan" / "small"
    train(images, cond, tiny(epochs=6, keep_every=2, checkpoint_budget_mb=0.001), small)
    best = read_best(small / "checkpoints")
    assert {p.name for p in (small / "checkpoints").glob("*.pth")} == {"generator_epoch_6.pth", "state_epoch_6.pth", best["generator"]}
    assert "over budget" in usage(small).summary()


def test_small_set_trains_with_a_batch_that_fits(tmp_path, shapes32):
    images, cond = shapes32
    r = train(images.images[:10], cond[:10], tiny(epochs=2, batch_size=32), tmp_path / "run")
    assert r.finished and r.batch_size == 10 and r.step == 2
    assert json.loads((tmp_path / "run" / "run.json").read_text())["batch_size"] == 10
