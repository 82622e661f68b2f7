"""Where the cores go during a bench run: CPU seconds per process role, read from /proc (Linux).

A `CpuSampler` follows the process trees under some root pids (the job's driver, the Ray head),
names each process by its role (driver, Ray actor, raylet, GCS, ...) and takes cumulative CPU
times (user + system, all threads). Two samples give what each role used between them, so the
bench can say, for the steady-state window it times, how many cores each role kept busy, how
many CPU seconds each photo cost, and how busy the whole machine was (other processes included).
Load-independent numbers: CPU seconds per photo barely move when other jobs share the machine,
while photos/s does.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK")

# First match wins: (role, words one of which is in the command line).
ROLES = (
    ("ray_actor", ("_EmbedWorker", "_AnnotateWorker")),
    ("ray_gcs", ("gcs_server",)),
    ("ray_raylet", ("raylet",)),
    ("ray_agents", ("dashboard", "agent", "log_monitor", "monitor.py", "runtime_env")),
    ("ray_other_workers", ("ray::", "default_worker.py")),
    ("ray_cli", ("ray start",)),
)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _short(cmdline: str) -> str:
    """A process's title without the interpreter and paths: "ray::_StatsActor", "raylet", "python -m core ingest"."""
    words = cmdline.split()
    if words and words[0].startswith("ray::"):
        return words[0]
    names = [w.rsplit("/", 1)[-1] for w in words[:4] if not w.startswith("--")]
    return " ".join(names)[:60]


def role_of(cmdline: str) -> str:
    """The role of a process in a Ray job, from its command line (Ray names workers by their actor class)."""
    for role, words in ROLES:
        if any(w in cmdline for w in words):
            return role
    return "other"


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine used since boot (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as fh:
        vals = [int(v) for v in fh.readline().split()[1:]]
    return (sum(vals[:8]) - vals[3] - vals[4]) / _TICK


@dataclass
class Sample:
    t: float
    busy: float  # machine_busy_seconds()
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds so far
    roles: dict[int, str] = field(default_factory=dict)
    titles: dict[int, str] = field(default_factory=dict)  # pid -> command line, shortened


class CpuSampler:
    """Samples the process trees under `roots` (pid -> role of the root itself, e.g. {driver: "driver"})."""

    def __init__(self, roots: dict[int, str]):
        self.roots = dict(roots)
        self._roles: dict[int, str] = {}  # pid -> last role seen (a Ray worker's title changes when it becomes an actor)

    def sample(self) -> Sample:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                got = _stat(int(name))
                if got is not None:
                    parents[int(name)], cpu[int(name)] = got
        s = Sample(time.perf_counter(), machine_busy_seconds())
        for pid in cpu:
            root, p = None, pid
            for _ in range(64):  # walk up to a root (or to init)
                if p in self.roots:
                    root = p
                    break
                p = parents.get(p, 0)
                if p <= 1:
                    break
            if root is None:
                continue
            title = _cmdline(pid)
            role = self.roots[root] if pid == root else role_of(title)
            if role == "other":
                role = self.roots[root] if self.roots[root] != "ray_cli" else "ray_other"
            self._roles[pid] = role if role != "ray_other_workers" or self._roles.get(pid) != "ray_actor" else "ray_actor"
            s.cpu[pid], s.roles[pid], s.titles[pid] = cpu[pid], self._roles[pid], _short(title)
        return s


def shares(a: Sample, b: Sample, photos: int, cores: int) -> dict:
    """What each role used between samples `a` and `b`: cores kept busy and CPU ms per photo; the machine's load too."""
    wall = max(b.t - a.t, 1e-9)
    per_role: dict[str, float] = {}
    per_pid: dict[int, float] = {}
    for pid, cpu in b.cpu.items():
        per_pid[pid] = cpu - a.cpu.get(pid, 0.0)  # a process born in the window counts from zero
        per_role[b.roles[pid]] = per_role.get(b.roles[pid], 0.0) + per_pid[pid]
    top = sorted(per_pid, key=per_pid.get, reverse=True)[:10]
    ours = sum(per_role.values())
    machine = b.busy - a.busy
    out = {"window_s": round(wall, 2), "photos": photos,
           "cores_busy": {r: round(v / wall, 3) for r, v in sorted(per_role.items())},
           "cpu_ms_per_photo": {r: round(1000 * v / max(photos, 1), 1) for r, v in sorted(per_role.items())},
           "job_cores": round(ours / wall, 3), "job_cpu_ms_per_photo": round(1000 * ours / max(photos, 1), 1),
           "machine_cores_busy": round(machine / wall, 3), "other_processes_cores": round(max(machine - ours, 0.0) / wall, 3),
           "usable_cores": cores,
           "top_processes": [{"role": b.roles[p], "title": b.titles[p], "cores": round(per_pid[p] / wall, 3)} for p in top if per_pid[p] > 0]}
    return out
