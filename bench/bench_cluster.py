"""Ingest and zero-shot annotate throughput: the local pipeline vs 1 and 2 single-threaded Ray workers, same photos, same run.

Starts its own one-node Ray cluster on 127.0.0.1 (two CPUs), ingests the same generated folder
three times into fresh data dirs through the real CLI, then annotates each of them (zero-shot,
bundled backend) the same way, and prints one JSON object with the cores used and the load
average around the run. Throughput is steady state: photos written after the first batch,
divided by the time from the first batch to the last (model loading and Ray start-up are
reported apart, as `startup_s`).

    .venv/bin/python -m bench.bench_cluster [--photos 256] [--json-out FILE]

Targets (issue 17): ray_2_workers >= 1.7x ray_1_worker; ray_1_worker >= 0.9x local at one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.raycluster when run as a script

from tests.raycluster import RAY_ENV, ray_head  # noqa: E402

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def make_photos(folder: Path, n: int) -> None:
    """Distinct 320x240 crops of the real scikit-image / scikit-learn sample photos."""
    import numpy as np
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_images

    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), *load_sample_images().images]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.fromarray(sources[i % len(sources)]).convert("RGB")
        w, h = img.size
        x, y = int(rng.integers(0, w // 4)), int(rng.integers(0, h // 4))
        img.crop((x, y, x + 3 * w // 4, y + 3 * h // 4)).resize((320, 240)).save(folder / f"p{i:04d}.jpg", quality=90)


def _count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def run_job(args: list[str], data_dir: Path, table: str, key: str) -> dict:
    """Run `python -m core ARGS --json` on `data_dir`, polling the rows of `table` for the steady-state rate."""
    env = {**os.environ, **ONE_THREAD, **RAY_ENV, "PHOTOLORE_DATA_DIR": str(data_dir), "PHOTOLORE_BACKEND": "bundled",
           "PHOTOLORE_BATCH_SIZE": "16", "PHOTOLORE_SECRETS": str(data_dir / "none.toml"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"{args[0]}.log"
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "core", *args, "--json"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    db = data_dir / "catalog.sqlite"
    first_t = first_n = None
    while proc.poll() is None:
        c = _count(db, table)
        if c and first_t is None:
            first_t, first_n = time.perf_counter(), c
        time.sleep(0.05)
    end = time.perf_counter()
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (rc {proc.returncode}): {out[-1000:]}{log.read_text()[-3000:]}")
    done = json.JSONDecoder().raw_decode(out, out.index("{"))[0][key]  # Ray may print after the report
    steady = (done - first_n) / max(end - first_t, 1e-9) if first_t is not None and done > first_n else None
    return {"photos": done, "wall_s": round(end - t0, 2), "startup_s": round((first_t or end) - t0, 2),
            "photos_per_s": round(steady, 2) if steady else None}


def _ratios(result: dict) -> dict:
    rate = {k: v["photos_per_s"] or 0.0 for k, v in result.items()}
    return {"ratio_2_vs_1_worker": round(rate["ray_2_workers"] / max(rate["ray_1_worker"], 1e-9), 3),
            "ratio_1_worker_vs_local": round(rate["ray_1_worker"] / max(rate["local_1_thread"], 1e-9), 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=256)
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    port = 26000 + os.getpid() % 1000
    cpus = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    runs = {"local_1_thread": [], "ray_1_worker": ["--ray-workers", "1"], "ray_2_workers": ["--ray-workers", "2"]}
    ingest, annotate = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp = Path(tmp)
        make_photos(tmp / "photos", args.photos)
        with ray_head(port) as address:  # a private cluster, stopped by its process group, never `ray stop`
            for name, extra in runs.items():
                ray = ["--ray", address, *extra] if extra else []
                ingest[name] = run_job(["ingest", str(tmp / "photos"), *ray], tmp / name, "photos", "added")
                annotate[name] = run_job(["annotate", "run", *ray], tmp / name, "annotations", "done")
    result = {
        "ingest": {**ingest, **_ratios(ingest)},
        "annotate_zeroshot": {**annotate, **_ratios(annotate)},
        # Each local run and each Ray worker is single-threaded (OMP/MKL/OpenBLAS = 1, one CPU per actor);
        # the driver of a Ray run is one more process on the same cores.
        "cores": {"machine": os.cpu_count(), "usable": cpus, "local_run": 1, "ray_1_worker": 1, "ray_2_workers": 2,
                  "ray_cluster_cpus": 2},
        "load_avg_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "note": (f"{cpus} usable cores shared with other processes: the Ray driver, the Ray daemons and the workers all run on them, "
                 "so Ray cannot beat the local pipeline here; the ratios measure Ray's overhead, not a speed-up"),
    }
    r = result["ingest"]
    result["ingest"]["targets_met"] = r["ratio_2_vs_1_worker"] >= 1.7 and r["ratio_1_worker_vs_local"] >= 0.9
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
