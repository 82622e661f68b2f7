"""The CLI and the typed settings."""
import json
import subprocess

import pytest

from core.cli import main
from tests.conftest import PYTHON, REPO


def test_help_is_instant_and_imports_nothing_heavy():
    code = ("import sys, time; t=time.time(); from core.cli import build_parser; build_parser().format_help(); "
            "heavy=[m for m in ('torch','chromadb','open_clip','streamlit','langchain') if m in sys.modules]; print(heavy, time.time()-t)")
    out = subprocess.run([PYTHON, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.startswith("[]"), out
    proc = subprocess.run([PYTHON, "-m", "core", "--help"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "ingest" in proc.stdout and "search" in proc.stdout and "models" in proc.stdout


def test_a_machine_without_an_accelerator_gets_the_cpu_without_importing_torch():
    """Importing torch only to hear "cpu" would cost an ONNX ingest hundreds of MB (models/bundled.py)."""
    code = ("import sys; import core.device as d; d._accelerator_possible = lambda: False; "
            "print(d.pick_device('auto'), d.pick_device('cpu'), 'torch' in sys.modules)")
    out = subprocess.run([PYTHON, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["cpu", "cpu", "False"]


def test_ingest_and_search_commands(demo_env, capsys, tmp_path):
    assert main(["search", "a", "cup", "of", "coffee", "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["path"].endswith("coffee.jpg") and len(out) == 2
    assert main(["search", "--image", str(demo_env / "library" / "demo" / "chelsea.jpg"), "-k", "1"]) == 0
    assert "chelsea.jpg" in capsys.readouterr().out
    # a phone-size copy stored sideways (EXIF orientation 6): decoded reduced and upright, it still finds the cat
    from PIL import Image

    phone = Image.open(demo_env / "library" / "demo" / "chelsea.jpg").resize((4032, 3024), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    phone.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", quality=90, exif=exif.tobytes())
    assert main(["search", "--image", str(tmp_path / "phone.jpg"), "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"].endswith("chelsea.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    assert main(["search", "--image", str(bad)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "does-not-exist")]) == 2
    assert "folder not found" in capsys.readouterr().err


def test_models_list_and_status(demo_env, capsys):
    assert main(["models", "list", "--model", "ViT-B-32"]) == 0
    out = capsys.readouterr().out
    assert "active backend: bundled" in out and "openai" in out
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "photos: 15" in out and f"catalog: SQLite {demo_env / 'catalog.sqlite'}" in out


def test_settings_precedence_env_over_secrets_over_default(tmp_path, monkeypatch):
    from core.settings import Settings

    secrets = tmp_path / "secrets.toml"
    secrets.write_text('backend = "clip"\nbatch_size = 7\nchroma_host = "10.0.0.9"\nopenai_api_key = "ignored-here"\n')
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(secrets))
    monkeypatch.delenv("PHOTOLORE_BACKEND", raising=False)
    monkeypatch.setenv("PHOTOLORE_BATCH_SIZE", "3")
    s = Settings()
    assert s.backend == "clip" and s.batch_size == 3 and s.chroma_host == "10.0.0.9"
    monkeypatch.setenv("PHOTOLORE_BACKEND", "nonsense")
    with pytest.raises(Exception, match="backend"):
        Settings()
