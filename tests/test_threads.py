"""core.threads: one cap reaches every compute pool, so a one-thread job really uses one core.

The cap is process-wide (as torch's own thread count is), so each check runs in a fresh process.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import PYTHON, REPO

# Builds the real bundled backend under PHOTOLORE_THREADS (image model on ONNX Runtime, faces,
# OCR), encodes real photos, and reports every pool's size and the CPU/wall ratio of the encoding.
PROBE = r"""
import json, sys, time
import numpy as np
from PIL import Image
from skimage import data
from core.settings import Settings
from models.registry import create_backend

backend, _ = create_backend(Settings(backend="bundled", image_runtime="onnx"))
photos = [Image.fromarray(a).convert("RGB").resize((320, 240)) for a in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())] * 2
backend.encode(photos)  # loads the face detector and the OCR sessions
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(2):
    backend.encode(photos)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

import cv2, torch
from threadpoolctl import threadpool_info
from core.stages import LocalExecutor
from core.threads import decode_threads

# The ingest read stage under the cap: with one thread there is no decode pool, and the batches come out whole.
import os, threading, tempfile
from core.stages import FileEntry
folder = tempfile.mkdtemp()
entries = []
for i, img in enumerate(photos[:3]):
    path = os.path.join(folder, f"p{i}.jpg")
    img.rotate(i).save(path)
    entries.append(FileEntry(path, os.path.getsize(path), os.stat(path).st_mtime_ns))
readers, got = set(), []
for k, items, skips, embedded in LocalExecutor(Settings())([entries[:2], entries[2:]], backend=backend, known=frozenset(), written=set()):
    readers |= {t.name for t in threading.enumerate() if t.name.startswith("photolore-read")}
    got.append((k, len(items), len(skips), len(embedded)))

ocr = backend.facts_extractor.ocr
sessions = [m.session.session for e in (ocr._engine, ocr._check) for m in (e.text_det, e.text_cls, e.text_rec) if m is not None]
print(json.dumps({"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(), "cv2": cv2.getNumThreads(),
                  "blas_openmp": sorted({p["num_threads"] for p in threadpool_info()}),
                  "onnx_image_model": backend._onnx.session.get_session_options().intra_op_num_threads,
                  "ocr_sessions": sorted({s.get_session_options().intra_op_num_threads for s in sessions}),
                  "decode_pool": decode_threads(Settings().decode_workers), "cpu_per_wall": cpu / wall,
                  "read_threads": sorted(readers), "batches": got}))
"""


def _probe(tmp_path, threads: str) -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PHOTOLORE_DATA_DIR": str(tmp_path / "data"),
           "PHOTOLORE_SECRETS": str(tmp_path / "none.toml"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PHOTOLORE_THREADS": threads}
    run = subprocess.run([PYTHON, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_thread_cap_reaches_every_pool_and_the_job_uses_one_core(tmp_path):
    got = _probe(tmp_path, "1")
    # torch is imported after the cap here (only to export the ONNX copies once; an ONNX ingest
    # never loads it otherwise), so its intra-op pool is sized by OMP_NUM_THREADS; its inter-op pool,
    # which eager inference does not use, keeps torch's default.
    assert (got["torch"], got["cv2"], got["onnx_image_model"]) == (1, 1, 1), got
    assert got["blas_openmp"] == [1] and got["ocr_sessions"] == [1], got
    assert got["decode_pool"] == 0, got  # decoding takes turns with embedding on the one thread
    assert got["read_threads"] == [] and got["batches"] == [[0, 2, 0, 2], [1, 1, 0, 1]], got
    # The proof that counts: CPU time never runs ahead of the clock. (Other load on the machine
    # only lowers this ratio, so the check cannot fail for want of cores.)
    assert got["cpu_per_wall"] <= 1.1, got


def test_a_cap_below_one_is_a_clear_error():
    from core.threads import limit_threads

    with pytest.raises(ValueError, match="PHOTOLORE_THREADS"):
        limit_threads(0)


def test_without_a_cap_nothing_is_touched(tmp_path):
    code = ("import os; from core.threads import limit_threads, thread_limit, decode_threads; limit_threads(None); "
            "assert thread_limit() is None and decode_threads(2) == 2 and 'OMP_NUM_THREADS' not in os.environ; "
            "import sys; assert 'torch' not in sys.modules; print('ok')")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
