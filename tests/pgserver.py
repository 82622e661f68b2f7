"""A real PostgreSQL server for tests: Debian's binaries, a private cluster in a temp dir, 127.0.0.1 only.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to `nobody`
and initdb / pg_ctl run through `runuser`. The temp dir is made directly under the system
temp dir (world-traversable), because pytest's own temp dirs are private to the test user.
Each test gets its own schema (a URL whose search_path names it): cheap, and isolated.
"""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional
from urllib.parse import quote

USER = "photolore"


def find_bin_dir() -> Optional[Path]:
    """The directory holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self, bin_dir: Path, port: int, *, durable: bool = False):
        self.bin_dir = bin_dir
        self.port = port
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="photolore-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        self._schemas = itertools.count(1)
        if os.getuid() == 0:
            self._as_user = ["runuser", "-u", "nobody", "--"]
            shutil.chown(self.root, "nobody")
        self.sockets.mkdir()
        if self._as_user:
            shutil.chown(self.sockets, "nobody")

    def _run(self, *argv: str, timeout: float = 120) -> None:
        proc = subprocess.run([*self._as_user, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}\n{log}")

    def start(self) -> "PostgresServer":
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        # Durability off: a test cluster is thrown away, and fsync on a shared 2-core box costs seconds.
        opts = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def new_schema_url(self) -> str:
        """A fresh, empty schema; the URL makes it the only one on the search path."""
        import psycopg

        name = f"t{next(self._schemas)}_{os.getpid()}"
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options={quote(f'-csearch_path={name}')}"

