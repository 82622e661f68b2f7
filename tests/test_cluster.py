"""Batch ingest on a real local Ray cluster (`ray start`) into a real `chroma run` server.

The cluster is one head node bound to 127.0.0.1 with two CPUs, so the actor pool runs two
worker processes. (A second `ray start --address` node would need a routable, non-loopback
address: Ray replaces 127.0.0.1 with the machine's own IP for nodes that join a cluster, and
tests here talk to loopback only.) RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is what keeps Ray on
127.0.0.1: with it Ray takes the loopback address as the node address. The cluster is stopped
by its own process group (tests/raycluster.py), never by `ray stop`, which would stop a user's own cluster too,
and keeps its files in a temp folder of its own (never the user's /tmp/ray).

The fail-fast tests use real heads too: one killed mid-job (its address file left behind is the
stale file `--ray auto` must name), one started without the loopback variable, a port nobody
listens on, and a TCP server that accepts and never speaks Ray's handshake.

The end-to-end test runs with the catalog in SQLite and in a real PostgreSQL server (catalog_target).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON, REPO, free_port, serve, write_image
from tests.raycluster import RAY_ENV, ray_head_process, short_temp_dir
from tests.raycluster import ray_head as private_ray_head

CHROMA = str(Path(sys.executable).with_name("chroma"))
LOOPBACK_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@pytest.fixture(scope="module")
def ray_head_and_dir():
    """One head for the module (on loopback, started with the loopback variable) and its private temp folder."""
    pytest.importorskip("ray")
    temp = short_temp_dir()
    try:
        with private_ray_head(free_port(), temp_dir=temp) as address:
            yield address, temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head(ray_head_and_dir):
    return ray_head_and_dir[0]


def _without_loopback_var(env: dict) -> dict:
    """A user's shell: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER unset (the project must set it itself)."""
    return {k: v for k, v in env.items() if k != LOOPBACK_VAR}


@pytest.fixture
def chroma_server(tmp_path):
    argv = [CHROMA, "run", "--host", "127.0.0.1", "--port", "{port}", "--path", str(tmp_path / "chroma-server")]
    with serve(argv, "/api/v2/heartbeat", tmp_path / "chroma.log", timeout=90) as url:
        yield url.rsplit(":", 1)[1]


def _photos(folder: Path, n: int, start: int) -> None:
    for i in range(start, start + n):
        write_image(folder / f"p{i:04d}.jpg", size=(64, 48), colour=(i % 255, (i * 7) % 255, (i * 13) % 255), seed=i)


def _count(target: Path | str, table: str) -> int:
    from core.db import open_database

    if isinstance(target, Path) and not target.exists():
        return 0
    db = open_database(target)
    try:
        with db.connect() as con:
            return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except Exception as exc:  # noqa: BLE001 - the catalog's tables are not created yet (either engine)
        if "no such table" in str(exc) or "does not exist" in str(exc):
            return 0
        raise
    finally:
        db.close()


def _wait(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"job ended (rc={proc.returncode}) before {what}: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _actor_pids(temp_dir: Path, worker: str = "_EmbedWorker") -> list[int]:
    """The actor processes of this module's head only: their parent, the raylet, runs under its temp
    folder (other Ray work on the machine has actors with the same name)."""
    out = subprocess.run(["pgrep", "-f", rf"MapBatches\({worker}\)"], capture_output=True, text=True).stdout
    ours = []
    for pid in map(int, out.split()):
        try:
            ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            if str(temp_dir) in Path(f"/proc/{ppid}/cmdline").read_text(errors="replace"):
                ours.append(pid)
        except (OSError, IndexError):
            continue  # gone meanwhile
    return ours


def _chroma_counts(port: str) -> dict[str, int]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host="127.0.0.1", port=int(port), settings=ChromaSettings(anonymized_telemetry=False))
    return {c.name: client.get_collection(c.name).count() for c in client.list_collections()}


def test_ray_ingest_into_chroma_server_survives_a_killed_worker_and_a_killed_job(ray_head_and_dir, chroma_server, catalog_target, tmp_path):
    ray_head = ray_head_and_dir[0]
    data = tmp_path / "data"
    env = {**os.environ, **RAY_ENV, "PHOTOLORE_DATA_DIR": str(data), "PHOTOLORE_BACKEND": "bundled",
           "PHOTOLORE_BATCH_SIZE": "4", "PHOTOLORE_SECRETS": str(tmp_path / "none.toml"),
           "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": chroma_server}
    first, second = tmp_path / "first", tmp_path / "second"
    _photos(first, 200, 0)
    _photos(second, 100, 200)
    db = catalog_target  # the SQLite file in data/, or the PostgreSQL schema PHOTOLORE_CATALOG_URL (in env) names
    assert isinstance(db, str) or db == data / "catalog.sqlite"

    def ingest(folder: Path) -> subprocess.Popen:
        return subprocess.Popen([PYTHON, "-m", "core", "ingest", str(folder), "--ray", ray_head, "--json"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # 1. One Ray worker process killed mid-job: Ray restarts it and reruns its batch; nothing lost.
    job = ingest(first)
    _wait(lambda: _count(db, "photos") >= 4, 300, "the first batch to be written", job)
    pids = _actor_pids(ray_head_and_dir[1])
    assert pids, "no Ray actor process found"
    os.kill(pids[0], signal.SIGKILL)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out
    assert _count(db, "photos") == 200 and _count(db, "files") == 200
    assert _count(db, "photos") < 200 + 1  # exactly once

    # 2. The whole job killed mid-way, then run again: it resumes, every photo exactly once.
    job = ingest(second)
    _wait(lambda: _count(db, "photos") >= 204, 300, "part of the second folder to be written", job)
    job.send_signal(signal.SIGKILL)
    job.wait(30)
    assert _count(db, "photos") < 300, "the job finished before it could be killed; the test proves nothing"
    job = ingest(second)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out
    report = json.loads(out[out.index("{"):])
    assert report["added"] + report["unchanged"] == 100
    assert _count(db, "photos") == 300 and _count(db, "files") == 300 and _count(db, "indexed") == 300
    counts = _chroma_counts(chroma_server)
    assert counts and all(n == 300 for n in counts.values()), counts

    # 3. Search reads what the cluster wrote, from the shared server.
    found = subprocess.run([PYTHON, "-m", "core", "search", "--image", str(second / "p0250.jpg"), "-k", "1", "--json"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["path"].endswith("p0250.jpg")


def _json_in(out: str) -> dict:
    """The report in the job's output (Ray may log lines before and after it)."""
    return json.JSONDecoder().raw_decode(out, out.index("{"))[0]


def _annotations(db: Path) -> dict[str, tuple[str, dict, str]]:
    """photo id -> (status, values, created_at) of the zero-shot rows."""
    from core.db import open_database

    database = open_database(db)
    try:
        with database.connect() as con:
            rows = [tuple(r) for r in con.execute("SELECT photo_id, status, data, created_at FROM annotations WHERE annotator='zeroshot'")]
    finally:
        database.close()
    assert len(rows) == len({r[0] for r in rows}), "a photo annotated twice"
    return {pid: (status, json.loads(data), created) for pid, status, data, created in rows}


def test_ray_zero_shot_annotation_survives_a_killed_worker_and_a_killed_job_and_matches_a_local_run(ray_head_and_dir, tmp_path):
    ray_head = ray_head_and_dir[0]
    data = tmp_path / "data"
    env = {**os.environ, **RAY_ENV, "PHOTOLORE_DATA_DIR": str(data), "PHOTOLORE_BACKEND": "bundled",
           "PHOTOLORE_SECRETS": str(tmp_path / "none.toml"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    _photos(tmp_path / "photos", 100, 0)
    db = data / "catalog.sqlite"
    cli = lambda *a: [PYTHON, "-m", "core", *a]  # noqa: E731

    def run(*args: str) -> dict:
        done = subprocess.run(cli(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return _json_in(done.stdout) if "--json" in args else {}

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(cli(*args), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def ok_count() -> int:
        return _count(db, "annotations WHERE status='ok'")

    run("ingest", str(tmp_path / "photos"))
    assert run("annotate", "run", "--json")["done"] == 100
    local = _annotations(db)
    run("annotate", "reset", "zeroshot")
    ray_run = ("annotate", "run", "--batch-size", "2", "--ray", ray_head, "--json")

    # 1. One Ray worker process SIGKILLed mid-job: Ray restarts it and reruns its batch; the job finishes.
    job = start(*ray_run)
    _wait(lambda: ok_count() >= 4, 300, "the first batches to be written", job)
    pids = _actor_pids(ray_head_and_dir[1], "_AnnotateWorker")
    assert pids, "no Ray annotate actor process found"
    os.kill(pids[0], signal.SIGKILL)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out
    assert _json_in(out)["done"] == 100
    assert _annotations(db).keys() == local.keys()
    run("annotate", "reset", "zeroshot")

    # 2. The whole job SIGKILLed, then run again: finished photos are skipped, every photo annotated exactly once.
    job = start(*ray_run)
    _wait(lambda: ok_count() >= 10, 300, "part of the photos to be annotated", job)
    job.send_signal(signal.SIGKILL)
    job.wait(30)
    before = _annotations(db)
    assert 10 <= len(before) < 100, "the job finished before it could be killed; the test proves nothing"
    report = run(*ray_run)
    assert (report["already_done"], report["done"], report["failed"]) == (len(before), 100 - len(before), [])
    after = _annotations(db)
    assert all(after[pid][2] == before[pid][2] for pid in before), "a finished photo was annotated again"

    # 3. Zero-shot is deterministic: the cluster wrote what this process wrote.
    assert after.keys() == local.keys()
    assert {pid: v[:2] for pid, v in after.items()} == {pid: v[:2] for pid, v in local.items()}


def _cli_env(tmp_path: Path, **extra: str) -> dict:
    """A user's shell for `python -m core`: no loopback variable, no RAY_ADDRESS, a data dir of its own."""
    env = _without_loopback_var({**os.environ, "PHOTOLORE_DATA_DIR": str(tmp_path / "data"), "PHOTOLORE_BACKEND": "bundled",
                                 "PHOTOLORE_SECRETS": str(tmp_path / "none.toml"), "RAY_USAGE_STATS_ENABLED": "0", **extra})
    env.pop("RAY_ADDRESS", None)
    return env


# Joins the cluster `sys.argv[1]` names the way every job does, and says how long the answer took
# (without the interpreter's start and the backend load that the CLI adds in front).
_CONNECT = """
import json, sys, time
from core.cluster import ClusterError, RayPool
from core.settings import Settings
t = time.monotonic()
try:
    RayPool(Settings(), sys.argv[1]).connect()
    print(json.dumps({"joined": True, "seconds": time.monotonic() - t}))
except ClusterError as exc:
    print(json.dumps({"error": str(exc), "seconds": time.monotonic() - t}))
"""


def _connect(address: str, env: dict) -> dict:
    done = subprocess.run([PYTHON, "-c", _CONNECT, address], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ingest_cli(folder: Path, address: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "core", "ingest", str(folder), "--ray", address], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_unreachable_cluster_is_a_clear_error(tmp_path):
    """A port nobody listens on: exit code 2 and a message naming the address and the fix, in seconds."""
    write_image(tmp_path / "photos" / "a.jpg")
    env = _cli_env(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    run = _ingest_cli(tmp_path / "photos", address, env)
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"cannot connect to the Ray cluster at '{address}'" in run.stderr and "ray start --head" in run.stderr
    answer = _connect(address, env)
    assert address in answer["error"] and answer["seconds"] < 15, answer


def test_a_head_that_never_completes_the_handshake_fails_within_15_s(tmp_path):
    """Something accepts TCP on the port but never speaks Ray (a stuck head, another service): ray.init
    would wait for minutes; the job gives up at its deadline, naming the address."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    try:
        answer = _connect(address, _cli_env(tmp_path))
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert "error" in answer, answer
    assert f"'{address}'" in answer["error"] and "could not join it within" in answer["error"], answer
    assert answer["seconds"] < 15, answer


def test_test_heads_keep_their_address_file_out_of_the_users_temp_folder(ray_head_and_dir, tmp_path):
    """A test head writes ray_current_cluster into its own temp folder, never /tmp/ray (where a user's
    later `--ray auto` would find it once the head is gone), and PhotoLore looks for the file where Ray does."""
    address, temp = ray_head_and_dir
    assert (temp / "ray_current_cluster").read_text().strip() == address
    _assert_users_temp_untouched(address)
    # Where `--ray auto` looks is where Ray looks, for each way of moving Ray's temp folder.
    code = ("import sys; from ray._common.utils import get_ray_address_file; from core.ray_address import address_file; "
            "print(get_ray_address_file(None)); print(address_file())")
    for extra in ({"RAY_TMPDIR": str(tmp_path / "a")}, {"TMPDIR": str(tmp_path / "b")}, {}):
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_TMPDIR", "TMPDIR")} | extra
        done = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        ray_says, we_say = done.stdout.split()[-2:]
        assert Path(ray_says) == Path(we_say), (extra, done.stdout)


def _assert_users_temp_untouched(*addresses: str) -> None:
    """Neither /tmp/ray/ray_current_cluster nor the file Ray's default temp folder would hold names a
    test head. (Other Ray work on the machine may have its own file there: only the ports are ours.
    A head started without the loopback variable writes the LAN address, hence ports, not hosts.)"""
    from core.ray_address import address_file

    ports = tuple(f":{a.rsplit(':', 1)[1]}" for a in addresses)
    for default in {Path("/tmp/ray/ray_current_cluster"), address_file()}:
        assert not default.exists() or not default.read_text().strip().endswith(ports), f"a test head wrote {default}"


def test_a_head_lost_mid_job_stops_it_and_a_rerun_on_another_head_finishes(ray_head, tmp_path):
    """A head started from a shell without the loopback variable, and drivers whose shells lack it too:
    the job runs; SIGKILLed mid-job, the head takes the job down within 30 s with a ClusterError naming it
    (exit code 2) and what was written stays; `--ray auto` then names the address file the dead head left;
    the same ingest on another head (the module's, bound to loopback) does the rest, every photo exactly once."""
    photos = tmp_path / "photos"
    _photos(photos, 120, 0)
    env = _cli_env(tmp_path, PHOTOLORE_BATCH_SIZE="2")  # many small rows: the head dies between two of them
    db = tmp_path / "data" / "catalog.sqlite"
    ray_tmp = short_temp_dir()  # RAY_TMPDIR for `--ray auto`: Ray's temp folder is ray_tmp/ray
    try:
        with ray_head_process(free_port(), temp_dir=ray_tmp / "ray", loopback_env=False) as (address, head):
            with open(tmp_path / "job.log", "w") as log:
                job = subprocess.Popen([PYTHON, "-m", "core", "ingest", str(photos), "--ray", address, "--ray-workers", "1", "--json"],
                                       cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
                _wait(lambda: _count(db, "photos") >= 4, 300, "the first batches to be written", job)
                os.killpg(head.pid, signal.SIGKILL)  # the whole cluster: GCS, raylet, and so the actors
                killed = time.monotonic()
                job.communicate(timeout=120)
                stopped = time.monotonic() - killed
        err = (tmp_path / "job.log").read_text()
        assert job.returncode == 2, err[-3000:]
        assert f"lost the Ray cluster at '{address}'" in err and "rerun" in err, err[-3000:]
        assert stopped < 30, f"the job took {stopped:.0f} s to stop after the head died"
        kept = _count(db, "photos")
        assert 4 <= kept < 120, f"{kept} photos: the job finished before the head was killed; the test proves nothing"
        assert _count(db, "files") == kept and _count(db, "indexed") == kept

        # The dead head's address file: `--ray auto` names it and the fix, in seconds.
        stale = ray_tmp / "ray" / "ray_current_cluster"
        assert stale.exists(), "the killed head left no address file; the stale-file check proves nothing"
        auto_env = {**env, "RAY_TMPDIR": str(ray_tmp)}
        run = _ingest_cli(photos, "auto", auto_env)
        assert run.returncode == 2, run.stderr[-3000:]
        assert f"a stopped cluster left {stale}" in run.stderr and "remove the file" in run.stderr, run.stderr[-3000:]
        answer = _connect("auto", auto_env)
        assert str(stale) in answer["error"] and answer["seconds"] < 15, answer
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert _count(db, "photos") == kept, "a failed run wrote photos"

    # The rerun, on the module's head (bound to loopback only), from the same shell without the variable.
    done = subprocess.run([PYTHON, "-m", "core", "ingest", str(photos), "--ray", ray_head, "--ray-workers", "1", "--json"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = _json_in(done.stdout)
    assert (report["unchanged"], report["added"]) == (kept, 120 - kept), report["summary"]
    assert _count(db, "photos") == 120 and _count(db, "files") == 120 and _count(db, "indexed") == 120
    _assert_users_temp_untouched(address, ray_head)


def test_without_ray_nothing_imports_ray(tmp_path):
    write_image(tmp_path / "photos" / "a.jpg")
    env = {**os.environ, "PHOTOLORE_DATA_DIR": str(tmp_path / "data"), "PHOTOLORE_BACKEND": "bundled",
           "PHOTOLORE_SECRETS": str(tmp_path / "none.toml")}
    code = ("import sys; from core.cli import main; rc = main(['ingest', sys.argv[1]]); "
            "assert rc == 0; assert 'ray' not in sys.modules, 'ray was imported'; print('ok')")
    run = subprocess.run([PYTHON, "-c", code, str(tmp_path / "photos")], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr
    # Zero-shot annotation too: `annotate run` without --ray stays in this process.
    code = ("import sys; from core.cli import main; rc = main(['annotate', 'run']); "
            "assert rc == 0; assert 'ray' not in sys.modules, 'ray was imported'; print('ok')")
    run = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr


def test_library_page_offers_the_configured_cluster_and_names_the_fix_when_it_is_down(tmp_path, monkeypatch):
    """PHOTOLORE_RAY_ADDRESS set: the Library page offers the cluster; a dead one is a clear error, nothing imported."""
    from streamlit.testing.v1 import AppTest

    photos = tmp_path / "photos"
    write_image(photos / "a.jpg")
    monkeypatch.setenv("PHOTOLORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHOTOLORE_BACKEND", "bundled")
    monkeypatch.setenv("PHOTOLORE_SECRETS", str(tmp_path / "none.toml"))
    monkeypatch.setenv("PHOTOLORE_RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(REPO / "pages" / "library.py"), default_timeout=300)
    at.run()
    assert not at.exception
    assert at.checkbox(key="lib-add-ray").value is True
    at.text_input(key="lib-add-folder").input(str(photos)).run()
    at.button(key="lib-add-import").click()
    at.run()
    errors = " ".join(e.value for e in at.error)
    assert "cannot connect to the Ray cluster" in errors and "Untick" in errors
    at.checkbox(key="lib-add-ray").uncheck()
    at.button(key="lib-add-import").click()
    at.run()
    assert not at.error
    assert "1 new photos" in " ".join(s.value for s in at.success)
