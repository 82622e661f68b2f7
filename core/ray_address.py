"""Which Ray cluster a job means, and whether anything answers there, before Ray is imported.

`ray.init` given an address where nobody answers (a stopped cluster's leftover address file, a
wrong port, the machine's LAN address for a head bound to loopback) retries for many minutes
without a word. So the address is resolved here the way Ray resolves it and its GCS port is
tried with a plain TCP connect: a cluster that is not there is a `ClusterError` in seconds that
names the address, where it came from and the fix. Only the standard library is used, so this
runs (and fails) before `import ray`.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import sys
from pathlib import Path
from typing import Optional

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Ray's switch that keeps a node on loopback. Read once, when `ray` is imported: on, Ray replaces
# 127.0.0.1 in every address with the machine's LAN address, where a head bound to 127.0.0.1
# never answers.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
START_HINT = "start one with `ray start --head` (and `ray start --address HEAD:6379` on each worker machine)"


class ClusterError(RuntimeError):
    """The Ray cluster could not be reached or used; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ResolvedAddress:
    """HOST:PORT of a head's GCS, and where it came from: "--ray", "RAY_ADDRESS" or the address file's path."""

    address: str
    host: str
    port: int
    source: str

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


def default_temp_dir() -> Path:
    """Ray's temp folder when none is given, as `ray._common.utils.get_default_ray_temp_dir` finds it:
    $RAY_TMPDIR, else $TMPDIR (Linux), else /tmp; then "ray" under it."""
    if "RAY_TMPDIR" in os.environ:
        base = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        base = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        base = "/tmp"
    else:
        import tempfile

        base = tempfile.gettempdir()
    return Path(base) / "ray"


def address_file(temp_dir: Optional[Path] = None) -> Path:
    """The file the last `ray start --head` wrote its address to (`ray.init("auto")` reads it)."""
    return Path(temp_dir or default_temp_dir()) / "ray_current_cluster"


def parse(address: str, source: str) -> ResolvedAddress:
    """HOST:PORT (or [IPv6]:PORT) -> ResolvedAddress; anything else is a ClusterError naming it."""
    if "://" in address:  # Ray Client (ray://HOST:10001) runs the driver elsewhere; PhotoLore's driver writes here
        raise ClusterError(f"'{address}' is a Ray Client address, which PhotoLore does not use: give HOST:PORT of the head "
                           "(the port `ray start --head` printed, 6379 by default)")
    host, sep, port = address.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        where = "" if source == "--ray" else f" (from {source})"
        raise ClusterError(f"'{address}'{where} is not a Ray cluster address: give 'auto' or HOST:PORT of the head "
                           "(the port `ray start --head` printed, 6379 by default)")
    return ResolvedAddress(address.strip(), host, int(port), source)


def resolve(address: str, temp_dir: Optional[Path] = None) -> ResolvedAddress:
    """The head `address` means: HOST:PORT as given, or for "auto" $RAY_ADDRESS, else the address file.

    Ray's own "auto" also tries a GCS process it finds on this machine when there is one; here the
    two sources `ray start` and the user set are the whole answer, so the error can name them."""
    if address.strip() != "auto":
        return parse(address, "--ray")
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return parse(env, "RAY_ADDRESS")
    path = address_file(temp_dir)
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ClusterError(f"no Ray cluster found for 'auto': RAY_ADDRESS is unset and {path} does not exist; "
                           f"{START_HINT}, or give --ray HOST:PORT") from None
    except OSError as exc:
        raise ClusterError(f"cannot read {path} to find the Ray cluster for 'auto' ({exc}); give --ray HOST:PORT") from exc
    return parse(found, str(path))


def check_reachable(resolved: ResolvedAddress, timeout: float = 3.0) -> None:
    """A ClusterError in `timeout` seconds unless something accepts a TCP connection on the GCS port."""
    try:
        with socket.create_connection((resolved.host, resolved.port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__  # a timeout has no strerror
    where = f"the Ray cluster at '{resolved.address}'"
    if resolved.source not in ("--ray", "RAY_ADDRESS"):
        raise ClusterError(f"cannot connect to {where}, the address 'auto' found in {resolved.source} ({reason}): "
                           f"a stopped cluster left {resolved.source}; {START_HINT}, or remove the file")
    hint = "check the address (HOST:PORT of `ray start --head`, port 6379 by default) and that the head is running"
    if resolved.source == "RAY_ADDRESS":
        hint = f"RAY_ADDRESS names it: {hint}, or unset RAY_ADDRESS"
    raise ClusterError(f"cannot connect to {where} ({reason}); {hint}")


def gcs_answers(resolved: ResolvedAddress, timeout: float = 2.0) -> bool:
    """Whether the GCS port still accepts a TCP connection (the watchdog of a running job asks)."""
    try:
        with socket.create_connection((resolved.host, resolved.port), timeout=timeout):
            return True
    except OSError:
        return False


def keep_loopback(resolved: ResolvedAddress) -> None:
    """For a head on this machine's loopback, make Ray stay on loopback whatever the user's shell set.

    Must run before `import ray` (Ray reads the variable once); `core.cluster` also sets Ray's
    copy when Ray was imported already."""
    if resolved.loopback:
        os.environ[LOOPBACK_ENV] = "0"
