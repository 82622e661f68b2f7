"""A CLI annotation run killed with SIGKILL resumes without duplicates and without losing finished work."""
import json
import os
import signal
import subprocess
import time

import pytest

from core import annotations as ann
from core.catalog import Catalog
from tests.annotate_server import GOOD, VlmServer, completion
from tests.conftest import PYTHON, REPO

pytestmark = pytest.mark.slow


def _cli(data_dir, base_url, *args, **popen):
    env = dict(os.environ, PHOTOLORE_DATA_DIR=str(data_dir), PHOTOLORE_VLM_BASE_URL=base_url, PHOTOLORE_VLM_MODEL="scripted",
               PHOTOLORE_VLM_CONCURRENCY="1", PHOTOLORE_VLM_REQUESTS_PER_MINUTE="60000", PHOTOLORE_VLM_TIMEOUT_S="60")
    return subprocess.Popen([PYTHON, "-m", "core.annotate.cli", "run", "--annotator", "vlm-api", "--batch-size", "2", *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def _ok_rows(catalog):
    return [r for r in ann.annotation_rows(catalog) if r["status"] == "ok"]


def test_sigkilled_run_resumes_without_duplicates(demo_env_copy):
    catalog = Catalog(demo_env_copy / "catalog.sqlite")
    ann.ensure_schema(catalog)
    good = json.dumps(completion(json.dumps(GOOD)))
    # Answers 5 requests, then hangs: batches 1-2 are stored, batch 3 is in flight when the kill comes.
    with VlmServer(lambda b, n: (200, {}, good, 0.0 if n <= 5 else 60.0)) as srv:
        proc = _cli(demo_env_copy, srv.base_url)
        deadline = time.time() + 120
        while time.time() < deadline and not (len(srv.requests) >= 6 and len(_ok_rows(catalog)) >= 4):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    first = {r["photo_id"]: r["created_at"] for r in _ok_rows(catalog)}
    assert len(first) == 4  # the in-flight batch left nothing half-written
    with VlmServer() as srv:
        proc = _cli(demo_env_copy, srv.base_url, "--json")
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    assert (report["already_done"], report["done"], report["failed"]) == (4, 11, [])
    assert len(srv.requests) == 11  # finished photos were not asked again
    rows = ann.annotation_rows(catalog)
    assert len(rows) == 15 and len({r["photo_id"] for r in rows}) == 15
    assert all(r["created_at"] == first[r["photo_id"]] for r in rows if r["photo_id"] in first)
