"""Shared fixtures: small real models built once per session, real stores in tmp dirs."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    import requests

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def write_image(path: Path, size=(64, 48), colour=(200, 30, 30), fmt=None, seed: int | None = None, **save_kw) -> Path:
    """A small real image; `seed` adds noise so contents (and hashes) differ."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0], 3), np.uint8) + np.array(colour, np.uint8)
    if seed is not None:
        arr = np.clip(arr.astype(int) + np.random.default_rng(seed).integers(-40, 40, arr.shape), 0, 255).astype(np.uint8)
    Image.fromarray(arr, "RGB").save(path, format=fmt, **save_kw)
    return path


@pytest.fixture(scope="session")
def bundled_backend():
    """The real bundled backend (packaged EfficientNet-Lite0 + MiniLM), loaded once."""
    from models.bundled import BundledBackend

    return BundledBackend(device="cpu")


@pytest.fixture(scope="session")
def tiny_clip_backend():
    """A randomly initialised tiny open_clip model: exercises the CLIP code path in seconds."""
    from models.clip import ClipBackend, ClipSpec

    return ClipBackend(ClipSpec("PhotoLore-Tiny-ViT", None), device="cpu", allow_random=True)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from core.settings import Settings

    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    return Settings(data_dir=tmp_path / "data", batch_size=4)


@pytest.fixture
def services(settings, bundled_backend):
    from core.services import build_services

    return build_services(settings, backend=bundled_backend)


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory, bundled_backend):
    """A data dir holding the ingested demo library (built once per test session)."""
    from core.demo import build_demo
    from core.services import build_services
    from core.settings import Settings

    data = tmp_path_factory.mktemp("demo") / "data"
    services = build_services(Settings(data_dir=data), backend=bundled_backend)
    report = build_demo(services)
    assert report.added == 15, report.summary()
    return data


@pytest.fixture
def demo_env(demo_data_dir, monkeypatch, tmp_path):
    """Environment so that Settings() (as used by the app) reads the demo library."""
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(demo_data_dir))
    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    return demo_data_dir


@pytest.fixture
def demo_env_copy(demo_data_dir, monkeypatch, tmp_path):
    """Like demo_env, on a private copy of the demo library, for tests that add photos."""
    copy = tmp_path / "demo-copy"
    shutil.copytree(demo_data_dir, copy)
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(copy))
    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    return copy


def add_library_class(services, root: Path, name: str, n: int) -> Path:
    """Ingest `n` real photos (crops of the scikit-image samples) as library class `name`."""
    from skimage import data as skdata

    from core.ingest import ingest_folder

    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    sources = ["astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry", "retina"]
    for i in range(n):
        arr = getattr(skdata, sources[i % len(sources)])()
        h, w = arr.shape[:2]
        step = i // len(sources)  # a different window of the same photo each round
        y, x = (step * h // 9) % (h // 3), (step * w // 7) % (w // 3)
        Image.fromarray(arr[y:y + h * 2 // 3, x:x + w * 2 // 3]).save(folder / f"{name}_{i:02d}.jpg", quality=90)
    ingest_folder(services, Path(root))
    return folder


@contextmanager
def serve(argv: list[str], health_path: str, log_path: Path, *, env: dict | None = None, timeout: float = 120.0):
    """Start a real server on 127.0.0.1 (`{port}` in argv is filled in), wait until `health_path`
    answers, yield its base URL, and stop it afterwards. Output goes to `log_path`."""
    port = free_port()
    log = open(log_path, "wb")
    proc = subprocess.Popen([a.format(port=port) for a in argv], cwd=REPO, env=env or dict(os.environ),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + health_path, timeout=timeout, proc=proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def streamlit_argv(script: str = "app.py") -> list[str]:
    return [PYTHON, "-m", "streamlit", "run", script, "--server.port", "{port}", "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]


@pytest.fixture
def streamlit_server(demo_env, tmp_path):
    """`streamlit run app.py` on 127.0.0.1 over the demo library; yields the base URL."""
    with serve(streamlit_argv(), "/_stcore/health", tmp_path / "streamlit.log") as url:
        yield url


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's script runner (AppTest) installs the page it ran as sys.modules["__main__"] and leaves
    it there; a process started later with multiprocessing's spawn would then re-run that page."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture
def browser_page(tmp_path):
    """A Playwright page in Debian's headless Chromium (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Playwright gives every launch a fresh, empty profile directory of its own.
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)  # generous: a loaded 2-core CI machine renders slowly
        try:
            yield page
        finally:
            browser.close()


def start_then_sigkill(argv: list[str], env: dict, ready, timeout: float = 240.0) -> None:
    """Run `argv` from the repo root and SIGKILL it as soon as `ready()` is true (or it exits, or
    `timeout` passes): the crash that the kill-and-rerun tests recover from."""
    import signal

    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def scroll_to(locator, attempts: int = 10) -> None:
    """Scroll `locator` into view, locating it again when Streamlit redraws it in between.

    A rerun replaces the element that a locator resolved to ("Element is not attached to the
    DOM"); the locator itself stays valid, so a short retry finds the redrawn one.
    """
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(attempts):
        try:
            locator.scroll_into_view_if_needed(timeout=10_000)
            return
        except PlaywrightError as exc:
            if "not attached" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.3)


def shot(page, tmp_path: Path, name: str) -> Path:
    """Screenshot the browser viewport to tmp_path/<name>.png (look at it when a test fails).

    With PHOTOLORE_SCREENSHOTS=<dir> set the same picture is also written there: the README's
    screenshots are made this way (`PHOTOLORE_SCREENSHOTS=docs/screenshots pytest -m browser ...`).
    """
    path = Path(tmp_path) / f"{name}.png"
    page.screenshot(path=str(path))
    extra = os.environ.get("PHOTOLORE_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / f"{name}.png")
    return path


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server on 127.0.0.1 for the whole session (tests/pgserver.py); skipped only without its binaries."""
    from tests.pgserver import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: run scripts/setup.sh, which installs Debian's postgresql")
    server = PostgresServer(bin_dir, free_port()).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_target(request, tmp_path, monkeypatch):
    """Where a test's catalog lives: an SQLite file in tmp_path, or a fresh schema on the session's PostgreSQL
    server. PHOTOLORE_CATALOG_URL is set to match, so Settings() and subprocesses use the same catalog."""
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "no-secrets.toml"))
    if request.param == "sqlite":
        monkeypatch.delenv("PHOTOLORE_CATALOG_URL", raising=False)
        return tmp_path / "data" / "catalog.sqlite"
    url = request.getfixturevalue("pg_server").new_schema_url()
    monkeypatch.setenv("PHOTOLORE_CATALOG_URL", url)
    return url


@pytest.fixture
def catalog_settings(catalog_target, tmp_path):
    """`settings`, with the catalog on SQLite or PostgreSQL (parametrized by catalog_target)."""
    from core.settings import Settings

    return Settings(data_dir=tmp_path / "data", batch_size=4)


@pytest.fixture
def catalog_services(catalog_settings, bundled_backend):
    """`services` on both catalog engines."""
    from core.services import build_services

    return build_services(catalog_settings, backend=bundled_backend)


@pytest.fixture(scope="session")
def detectors_dir() -> Path:
    """The ONNX detectors setup builds (models/human_models.py). Missing: the test is skipped, except
    under PHOTOLORE_REQUIRE_DETECTORS=1 (CI), where a missing or damaged build is a failure."""
    from core.settings import Settings
    from models.human_models import BUILD_COMMAND, problems

    folder = Settings().detectors_dir
    missing = problems(folder)
    if missing:
        msg = f"detectors not built in {folder} ({missing}); run `{BUILD_COMMAND}`"
        if os.environ.get("PHOTOLORE_REQUIRE_DETECTORS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return folder
