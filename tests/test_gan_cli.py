"""`gan train|generate|eval` end to end with the bundled backend on a temp data dir."""
import json

import pytest

from core.gan.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: on a shared 2-core machine two spinning OpenMP threads run many times slower.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_register_adds_gan_commands():
    import argparse

    from core.gan.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gan", "generate", "--run", "x", "--text", "a red circle", "--n", "2"])
    assert args.func.__name__ == "cmd_generate" and args.text == ["a red circle"]
    with pytest.raises(SystemExit):
        parser.parse_args(["gan", "train", "--folder", "a", "--shapes", "3"])  # one source only


def test_train_generate_eval_and_refusals(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    train_args = ["gan", "train", "--shapes", "64", "--resolution", "32", "--preset", "tiny", "--epochs", "1", "--run-name", "s32", "--prompt", "a small red circle in the center",
                  "--recon", "5", "--mode-seeking", "0.02"]
    assert main(train_args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "finished" and out["step"] == 2
    run = tmp_path / "gan" / "s32"
    assert (run / "checkpoints" / "generator_epoch_1.pth").is_file() and (run / "output" / "sample_epoch_1.png").is_file()
    config = json.loads((run / "run.json").read_text())["config"]
    assert config["recon"] == 5.0 and config["mode_seeking"] == 0.02

    before = (run / "checkpoints" / "generator_epoch_1.pth").read_bytes()
    assert main(train_args) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert (run / "checkpoints" / "generator_epoch_1.pth").read_bytes() == before

    assert main(["gan", "generate", "--run", "s32", "--text", "a large blue square in the top left", "--n", "3", "--seed", "4"]) == 0
    gen = json.loads(capsys.readouterr().out)
    assert len(gen["images"]) == 3 and all((tmp_path / p).is_file() or __import__("os").path.isfile(p) for p in gen["images"])
    assert main(["gan", "generate", "--run", "s32", "--interpolate", "a red circle", "a blue square", "--n", "4", "--out", str(tmp_path / "interp")]) == 0
    assert len(list((tmp_path / "interp").glob("seed0_*.png"))) == 4

    assert main(["gan", "generate", "--run", "nope", "--text", "x"]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err

    assert main(["gan", "eval", "--run", "s32", "--n", "24", "--judge-steps", "40"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("FID-EffNet", "KID-EffNet", "alignment", "judge_acc_real", "cond_acc_generated"):
        assert key in report
    assert "not with published" in report["note"]
    assert 0 <= report["cond_acc_generated"] <= 1
