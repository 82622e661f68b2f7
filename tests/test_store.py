"""The vector store: naming, idempotent upserts, metadata, and a real `chroma run` server."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port, wait_http, write_image
from vectorstore.store import VectorStore, clean_metadata, collection_name


def test_collection_names_are_valid_for_chroma():
    assert collection_name("clip-ViT-B/32-laion2b_s34b", "image") == "photos-clip-ViT-B-32-laion2b_s34b-image"
    assert collection_name("x", "caption").startswith("photos-")


def test_clean_metadata_drops_none_and_joins_lists():
    assert clean_metadata({"a": None, "b": ["x", "y"], "c": np.int64(3), "d": 1.5}) == {"b": "x,y", "c": 3, "d": 1.5}
    assert clean_metadata({"detected": ["cup", "dining table"]}) == {"detected": ["cup", "dining table"]}  # filterable array
    assert clean_metadata({"detected": []}) == {"detected": [""]}


def test_upsert_is_idempotent_and_models_do_not_mix(settings):
    store = VectorStore.from_settings(settings)
    v = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    ids = [f"id{i}" for i in range(5)]
    store.upsert("m1", "image", ids, v, [{"i": i} for i in range(5)])
    store.upsert("m1", "image", ids, v, [{"i": i} for i in range(5)])
    store.upsert("m2", "image", ids[:2], v[:2, :4], [{}] * 2)
    assert store.count("m1", "image") == 5 and store.count("m2", "image") == 2
    hits = store.query("m1", "image", v[3], k=2)
    assert hits[0].id == "id3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert store.update_metadata(["id1"], [{"sentiment": "positive"}]) == 2
    assert store.query("m1", "image", v[1], k=1, where={"sentiment": "positive"})[0].id == "id1"
    assert store.query("m1", "image", v[1], k=5, where={"sentiment": "negative"}) == []


def _chroma_bin() -> str:
    exe = Path(sys.executable).with_name("chroma")
    return str(exe) if exe.exists() else (shutil.which("chroma") or "chroma")


@pytest.mark.slow
def test_ingest_and_search_against_a_real_chroma_server(tmp_path, bundled_backend, monkeypatch):
    """`chroma run` on 127.0.0.1; CHROMA_HOST/CHROMA_PORT switch the app to it."""
    from core.ingest import ingest_folder
    from core.search import search_text
    from core.services import build_services
    from core.settings import Settings

    port = free_port()
    log = open(tmp_path / "chroma.log", "wb")
    server = subprocess.Popen([_chroma_bin(), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "server-db")],
                              stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, ANONYMIZED_TELEMETRY="False"))
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=60, proc=server)
        monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
        monkeypatch.setenv("CHROMA_PORT", str(port))
        monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "none.toml"))
        settings = Settings(data_dir=tmp_path / "data")
        assert settings.chroma_host == "127.0.0.1" and settings.chroma_port == port
        services = build_services(settings, backend=bundled_backend)
        assert type(services.store.client).__name__ != "PersistentClient"
        from skimage import data
        from PIL import Image

        root = tmp_path / "photos"
        root.mkdir()
        Image.fromarray(data.coffee()).save(root / "coffee.jpg")
        Image.fromarray(data.chelsea()).save(root / "cat.jpg")
        write_image(root / "red.png", fmt="PNG", seed=1)
        assert ingest_folder(services, root).added == 3
        assert not (tmp_path / "data" / "chroma").exists()  # nothing went to the embedded store
        assert Path(search_text(services, "a cup of coffee", k=3)[0].photo.path).name == "coffee.jpg"
        assert services.store.count(bundled_backend.model_id, "image") == 3
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_unreachable_chroma_server_is_a_clear_error(tmp_path):
    from core.settings import Settings

    with pytest.raises(ConnectionError, match="chroma run"):
        VectorStore.from_settings(Settings(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=free_port()))
