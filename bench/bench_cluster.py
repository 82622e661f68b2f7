"""Ingest and zero-shot annotate throughput: the local pipeline vs 1 and 2 single-threaded Ray workers, same photos, same run.

Starts its own one-node Ray cluster on 127.0.0.1 (two CPUs), ingests the same generated folder
three times into fresh data dirs through the real CLI, then annotates each of them (zero-shot,
bundled backend) the same way, and prints one JSON object with the cores used and the load
average around the run. Throughput is steady state: photos written after every worker's first
batch, divided by the time from then to the last batch (model loading and Ray start-up are
reported apart, as `startup_s`).

    .venv/bin/python -m bench.bench_cluster [--photos 256] [--runs local_1_thread,ray_1_worker,ray_2_workers]
        [--no-annotate] [--repeat 1] [--json-out FILE]

Each run also says where the cores went in its steady state (bench.cpu_shares): cores kept busy
and CPU ms per photo for the driver, the Ray actors, the raylet, GCS and the other Ray
processes, and how busy the machine was with other work (`other_processes_cores`: on a shared
machine the ratios below are only as good as that number is small). From the one-worker run's
CPU per photo it derives the best 2-vs-1 ratio the cores allow with no other load
(`ceiling_2_vs_1_worker`, see `ceiling_2_vs_1`): what the driver and Ray itself need comes out
of the cores the second worker would use.

Targets (issue 17): ray_2_workers >= 1.7x ray_1_worker; ray_1_worker >= 0.9x local at one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.raycluster when run as a script

from bench.cpu_shares import CpuSampler, shares  # noqa: E402
from tests.raycluster import RAY_ENV, ray_head_process  # noqa: E402

# One thread for every compute pool of the job (core.threads): the local run's and the driver's;
# each Ray actor caps its own at its one CPU.
ONE_THREAD = {"PHOTOLORE_THREADS": "1"}


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


def run_job(args: list[str], data_dir: Path, table: str, key: str, roots: dict[int, str], env_extra: dict[str, str],
            workers: int = 1) -> dict:
    """Run `python -m core ARGS --json` on `data_dir`; time and CPU-profile its steady state.

    The rows of `table` are polled; the steady-state window runs from the `workers`-th write to
    the last one, so model loading, Ray start-up and teardown fall outside it, and so does each
    worker's first batch (started before the window, it would inflate the rate of N workers by
    about N-1 batches). The CPU each process role used in that window is sampled from /proc
    (bench.cpu_shares) at its two ends."""
    env = {**os.environ, **RAY_ENV, **env_extra, "PHOTOLORE_DATA_DIR": str(data_dir), "PHOTOLORE_BACKEND": "bundled",
           "PHOTOLORE_BATCH_SIZE": "16", "PHOTOLORE_SECRETS": str(data_dir / "none.toml"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    data_dir.mkdir(parents=True, exist_ok=True)
    log, report = data_dir / f"{args[0]}.log", data_dir / f"{args[0]}.json"
    t0 = time.perf_counter()
    # The report goes to a file: its per-file list outgrows a pipe's buffer, and a pipe read only
    # at the end would leave the job blocked on writing it.
    with open(log, "w") as err, open(report, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "core", *args, "--json"], cwd=REPO, env=env, stdout=out, stderr=err)
    sampler = CpuSampler({proc.pid: "driver", **roots})
    db = data_dir / "catalog.sqlite"
    first = last = None  # (rows, CPU sample) at the window's start and at the latest batch written
    seen, writes, t_first = 0, 0, None
    try:
        while proc.poll() is None:
            c = _count(db, table)
            if c != seen:  # a batch was committed: one CPU sample per batch keeps the sampler's own cost small
                seen, writes = c, writes + 1
                t_first = t_first or time.perf_counter()
                last = (c, sampler.sample())
                first = first or (last if writes >= workers else None)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:  # the bench itself was stopped
            proc.kill()
            proc.wait()
    out = report.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (rc {proc.returncode}): {out[-1000:]}{log.read_text()[-3000:]}")
    done = json.JSONDecoder().raw_decode(out, out.index("{"))[0][key]  # Ray may print after the report
    result = {"photos": done, "wall_s": round(time.perf_counter() - t0, 2),
              "startup_s": round((t_first or time.perf_counter()) - t0, 2), "photos_per_s": None}
    if first is not None and last[0] > first[0]:
        result["photos_per_s"] = round((last[0] - first[0]) / (last[1].t - first[1].t), 2)
        result["cpu"] = shares(first[1], last[1], last[0] - first[0], len(os.sched_getaffinity(0)))
    return result


def _ratios(result: dict) -> dict:
    rate = {k: (v["photos_per_s"] or 0.0) for k, v in result.items() if isinstance(v, dict)}
    out = {}
    if "ray_2_workers" in rate and "ray_1_worker" in rate:
        out["ratio_2_vs_1_worker"] = round(rate["ray_2_workers"] / max(rate["ray_1_worker"], 1e-9), 3)
    if "ray_1_worker" in rate and "local_1_thread" in rate:
        out["ratio_1_worker_vs_local"] = round(rate["ray_1_worker"] / max(rate["local_1_thread"], 1e-9), 3)
    one = result.get("ray_1_worker", {}).get("cpu")
    if one:
        out["ceiling_2_vs_1_worker"] = ceiling_2_vs_1(one)
        # ~1: one worker is the bottleneck and the ceiling above holds; well below 1 with no other
        # load: the actor waits on the driver, and a second worker can beat the ceiling.
        out["actor_busy_1_worker"] = one["cores_busy"].get("ray_actor")
    return out


def ceiling_2_vs_1(one: dict) -> float:
    """The best 2-vs-1-worker ratio these cores allow when one worker is the bottleneck, from the
    one-worker run's CPU (no other load).

    A single-threaded actor (core.threads caps it at its one CPU) that spends `a` CPU ms per photo
    writes at most 1000/a photos/s. Two
    of them need 2 cores for themselves, the driver's `d` ms per photo on top, and the cores the
    Ray daemons and Ray Data's helper actors keep busy (`D`, per second, whatever the rate), so
    on C cores they reach at most min(2, (C - D) * a / (a + d)) times one worker. CPU per photo
    barely moves with other load on the machine, so neither does this bound."""
    ms, cores = one["cpu_ms_per_photo"], one["cores_busy"]
    a, d = ms.get("ray_actor", 0.0), ms.get("driver", 0.0)
    daemons = sum(v for k, v in cores.items() if k not in ("ray_actor", "driver"))
    return round(min(2.0, (one["usable_cores"] - daemons) * a / max(a + d, 1e-9)), 3)


def _keep_fastest(results: dict, name: str, got: dict) -> None:
    """Keep the fastest of a configuration's runs, and every run's photos/s beside it."""
    rates = results.get(name, {}).get("all_photos_per_s", []) + [got["photos_per_s"]]
    if name not in results or (got["photos_per_s"] or 0) > (results[name]["photos_per_s"] or 0):
        results[name] = got
    results[name]["all_photos_per_s"] = rates


RUNS = {"local_1_thread": [], "ray_1_worker": ["--ray-workers", "1"], "ray_2_workers": ["--ray-workers", "2"]}
WORKERS = {"local_1_thread": 1, "ray_1_worker": 1, "ray_2_workers": 2}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=256)
    ap.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {', '.join(RUNS)}")
    ap.add_argument("--no-annotate", action="store_true", help="ingest only (annotate needs the ingest before it)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every configuration this many times, interleaved, and keep each one's fastest run "
                         "(other load only ever slows a run down)")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    # `timeout` and Ctrl-C alike: leave through the `with` blocks, which stop the private cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = {name: RUNS[name] for name in args.runs.split(",")}
    port = 26000 + os.getpid() % 1000
    cpus = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    ingest, annotate = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp = Path(tmp)
        make_photos(tmp / "photos", args.photos)
        with ray_head_process(port) as (address, head):  # a private cluster, stopped by its process group, never `ray stop`
            roots = {head.pid: "ray_cli"}
            for k in range(args.repeat):
                for name, extra in runs.items():
                    ray = ["--ray", address, *extra] if extra else []
                    data = tmp / f"{name}-{k}"
                    got = run_job(["ingest", str(tmp / "photos"), *ray], data, "photos", "added", roots, ONE_THREAD, WORKERS[name])
                    _keep_fastest(ingest, name, got)
                    if not args.no_annotate:
                        got = run_job(["annotate", "run", *ray], data, "annotations", "done", roots, ONE_THREAD, WORKERS[name])
                        _keep_fastest(annotate, name, got)
    result = {"ingest": {**ingest, **_ratios(ingest)}}
    if annotate:
        result["annotate_zeroshot"] = {**annotate, **_ratios(annotate)}
    result |= {
        # Each local run and each Ray worker is single-threaded (PHOTOLORE_THREADS=1, one CPU per actor);
        # the driver of a Ray run is one more process on the same cores.
        "cores": {"machine": os.cpu_count(), "usable": cpus, "local_run": 1, "ray_1_worker": 1, "ray_2_workers": 2,
                  "ray_cluster_cpus": 2},
        "load_avg_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    r = result["ingest"]
    if "ratio_2_vs_1_worker" in r and "ratio_1_worker_vs_local" in r:  # else a subset of the runs: no verdict
        r["targets_met"] = r["ratio_2_vs_1_worker"] >= 1.7 and r["ratio_1_worker_vs_local"] >= 0.9
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
