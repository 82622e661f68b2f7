"""A private local Ray cluster for tests and benches: one head on 127.0.0.1, stopped on its own.

`ray stop` stops every Ray process of the machine, a user's own cluster included, so it is never
used here. The head runs as `ray start --head --block` in a process group of its own, and only
that group is stopped. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray on loopback.

Each head gets a temp folder of its own (`ray start --temp-dir`): its sessions, logs and the
address file `ray start` writes (ray_current_cluster) stay there, so the user's /tmp/ray is
never touched. A leftover /tmp/ray/ray_current_cluster naming a stopped test head is what made
a user's later `--ray auto` wait on a cluster that was gone. Drivers join by the explicit
address, which needs no temp folder (Ray takes the head's from the cluster).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

RAY = str(Path(sys.executable).with_name("ray"))
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@contextmanager
def ray_head(port: int, num_cpus: int = 2, timeout: float = 180.0, **kw) -> Iterator[str]:
    """Start a head node; yields its address "127.0.0.1:PORT" once `ray status` answers."""
    with ray_head_process(port, num_cpus, timeout, **kw) as (address, _):
        yield address


def short_temp_dir() -> Path:
    """A fresh folder for a head's temp files. Short: Ray puts Unix sockets under it, whose paths
    may not exceed ~107 characters (pytest's tmp_path is too deep)."""
    return Path(tempfile.mkdtemp(prefix="plray-", dir="/tmp" if os.path.isdir("/tmp") else None))


@contextmanager
def ray_head_process(port: int, num_cpus: int = 2, timeout: float = 180.0, *, temp_dir: Optional[Path] = None,
                     loopback_env: bool = True) -> Iterator[tuple[str, subprocess.Popen]]:
    """`ray_head`, also yielding the `ray start` process (the root of every Ray process of the cluster).

    `temp_dir`: the head's temp folder, kept afterwards (its address file included); default a
    private one, removed once the head is stopped. `loopback_env=False` starts the head from an
    environment without RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, as a user's shell may."""
    own_temp = temp_dir is None
    temp_dir = short_temp_dir() if own_temp else Path(temp_dir)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    if loopback_env:
        env.update(RAY_ENV)
    else:
        env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    proc = subprocess.Popen([RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--num-cpus", str(num_cpus), "--include-dashboard=false", "--disable-usage-stats",
                             "--temp-dir", str(temp_dir)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        # `ray status` answers once GCS is up; `ray start` writes its address file a moment later.
        while (not (temp_dir / "ray_current_cluster").exists()
               or subprocess.run([RAY, "status", "--address", address], env=env, capture_output=True, timeout=60).returncode != 0):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the Ray head on {address} did not start (ray start exited {proc.poll()})")
            time.sleep(1)
        yield address, proc
    finally:
        _stop_group(proc)
        if own_temp:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the head's process group (ray start --block stops what it started), SIGKILL what is left.

    Ray's graceful stop takes about half a minute here (GCS lingers after SIGTERM); a test cluster has
    nothing to keep, so it gets 5 s. Its workers, in sessions of their own, exit once the raylet is gone."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            # The leader is gone; Ray processes that outlived it in the group get the SIGKILL.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return
