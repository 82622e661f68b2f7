"""A private local Ray cluster for tests and benches: one head on 127.0.0.1, stopped on its own.

`ray stop` stops every Ray process of the machine, a user's own cluster included, so it is never
used here. The head runs as `ray start --head --block` in a process group of its own, and only
that group is stopped. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray on loopback.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RAY = str(Path(sys.executable).with_name("ray"))
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@contextmanager
def ray_head(port: int, num_cpus: int = 2, timeout: float = 180.0) -> Iterator[str]:
    """Start a head node; yields its address "127.0.0.1:PORT" once `ray status` answers."""
    with ray_head_process(port, num_cpus, timeout) as (address, _):
        yield address


@contextmanager
def ray_head_process(port: int, num_cpus: int = 2, timeout: float = 180.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """`ray_head`, also yielding the `ray start` process (the root of every Ray process of the cluster)."""
    env = {**os.environ, **RAY_ENV}
    proc = subprocess.Popen([RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--num-cpus", str(num_cpus), "--include-dashboard=false", "--disable-usage-stats"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while subprocess.run([RAY, "status", "--address", address], env=env, capture_output=True, timeout=60).returncode != 0:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the Ray head on {address} did not start (ray start exited {proc.poll()})")
            time.sleep(1)
        yield address, proc
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the head's process group (ray start --block stops what it started), SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
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
