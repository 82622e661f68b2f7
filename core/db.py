"""The catalog's database: an SQLite file (the default) or a PostgreSQL server (`PHOTOLORE_CATALOG_URL`).

The catalog and the annotation store write their SQL once, in the dialect both engines share
(`?` placeholders, `INSERT ... ON CONFLICT`, `CREATE TABLE IF NOT EXISTS`); this module hides
what differs: connecting, placeholders, rows, JSON field access, and the lock that serialises
schema upgrades across processes. psycopg is imported only when a PostgreSQL URL is used.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit

URL_SETTING = "PHOTOLORE_CATALOG_URL"
PG_SCHEMES = ("postgresql", "postgres")
# Any 64-bit number; the same one in every process makes schema upgrades run one at a time.
_SCHEMA_LOCK_KEY = 0x50686F746F4C6F72  # "PhotoLor"
_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
T = TypeVar("T")


class CatalogConnectionError(RuntimeError):
    """The catalog database cannot be reached or the URL is wrong; the message names the setting and the fix."""


def is_database_url(target: str | Path) -> bool:
    return isinstance(target, str) and "://" in target


def redact_url(url: str) -> str:
    """The URL without its password, for status lines and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> str:
    """Refuse anything but a postgresql:// URL, naming the setting and the fix."""
    scheme = urlsplit(url).scheme
    if scheme not in PG_SCHEMES:
        raise CatalogConnectionError(
            f"{URL_SETTING}={redact_url(url)!r} is not a PostgreSQL URL: use postgresql://USER:PASSWORD@HOST:PORT/DATABASE, "
            f"or unset {URL_SETTING} to keep the catalog in an SQLite file in the data directory")
    return url


class Row(tuple):
    """A result row readable by position and by column name, like sqlite3.Row."""

    _names: tuple[str, ...] = ()

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type:
    return type("PgRow", (Row,), {"_names": names, "__slots__": ()})


def _pg_row_factory(cursor):
    cls = _row_class(tuple(d.name for d in cursor.description or ()))  # one class per column list, not per query
    return lambda values: cls(values)


@lru_cache(maxsize=1024)
def _pg_sql(sql: str) -> str:
    # No query here has a literal '?' or '%'; the catalog's SQL uses ? placeholders only.
    return sql.replace("%", "%%").replace("?", "%s")


class Conn:
    """One transaction on either engine: `execute`, `executemany` and `script` take `?` placeholders."""

    def __init__(self, raw, dialect: "Dialect"):
        self.raw = raw
        self.dialect = dialect

    def execute(self, sql: str, args: Sequence[Any] = ()):
        if self.dialect.kind == "sqlite":
            return self.raw.execute(sql, args)
        return self.raw.execute(_pg_sql(sql), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self.dialect.kind == "sqlite":
            self.raw.executemany(sql, rows)
        else:
            with self.raw.cursor() as cur:
                cur.executemany(_pg_sql(sql), rows)

    def script(self, text: str) -> None:
        """Several `;`-separated statements in this transaction (sqlite3's executescript would commit it)."""
        for stmt in text.split(";"):
            if stmt.strip():
                self.execute(stmt)

    def lock_schema(self) -> None:
        """Hold the schema lock until this transaction ends, so concurrent processes upgrade one at a time."""
        if self.dialect.kind == "postgresql":
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        # SQLite: the caller's BEGIN IMMEDIATE already holds the write lock.


class Dialect:
    """SQL that differs between the engines, as fragments the queries splice in."""

    def __init__(self, kind: Literal["sqlite", "postgresql"]):
        self.kind = kind

    def json_number(self, column: str, key: str) -> str:
        if self.kind == "sqlite":
            return f"json_extract({column}, '$.{key}')"
        return f"({column}::jsonb->>'{key}')::numeric"

    def json_text(self, column: str, key: str) -> str:
        if self.kind == "sqlite":
            return f"json_extract({column}, '$.{key}')"
        return f"({column}::jsonb->>'{key}')"

    def json_array_length(self, column: str, key: str) -> str:
        if self.kind == "sqlite":
            return f"json_array_length(json_extract({column}, '$.{key}'))"
        return f"CASE WHEN jsonb_typeof({column}::jsonb->'{key}') = 'array' THEN jsonb_array_length({column}::jsonb->'{key}') ELSE 0 END"

    @property
    def insert_order(self) -> str:
        """A column that grows with each insert, to order rows written in the same second."""
        return "rowid" if self.kind == "sqlite" else "seq"

    @property
    def serial_column(self) -> str:
        """The column declaration behind `insert_order` (SQLite has rowid built in)."""
        return "" if self.kind == "sqlite" else ", seq BIGSERIAL"


class Database:
    """Where the catalog lives; `connect()` yields one transaction. Any thread may use one Database."""

    dialect: Dialect

    def connect(self) -> "contextmanager[Conn]":  # pragma: no cover - interface
        raise NotImplementedError

    def migration(self) -> "contextmanager[Conn]":  # pragma: no cover - interface
        """A transaction holding the schema lock, for creating and upgrading tables."""
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def transact(self, work: Callable[[Conn], T], *, attempts: int = 5) -> T:
        """Run `work(con)` in one transaction; on PostgreSQL a deadlock or serialisation failure (another
        writer locked the same rows in another order) rolls it back and runs it again: `work` must be idempotent."""
        for attempt in range(attempts):
            try:
                with self.connect() as con:
                    return work(con)
            except Exception as exc:  # noqa: BLE001 - only the retryable PostgreSQL states are retried
                if attempt + 1 == attempts or getattr(exc, "sqlstate", None) not in _RETRYABLE:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def close(self) -> None:
        pass


class SqliteDatabase(Database):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dialect = Dialect("sqlite")

    def describe(self) -> str:
        return f"SQLite {self.path}"

    @contextmanager
    def connect(self) -> Iterator[Conn]:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            with con:  # one transaction: commit on success, roll back on error
                yield Conn(con, self.dialect)
        finally:
            con.close()

    @contextmanager
    def migration(self) -> Iterator[Conn]:
        # BEGIN IMMEDIATE serialises processes that open the same catalog at once.
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE")
            try:
                yield Conn(con, self.dialect)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()


class _Held:
    """A thread's connection; closed when the thread ends (its thread-local goes) or the process forks away."""

    def __init__(self, raw):
        self.raw, self.pid = raw, os.getpid()

    def __del__(self):
        if self.pid == os.getpid():  # never close a parent's socket from a forked child
            try:
                self.raw.close()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass


class PostgresDatabase(Database):
    """One connection per thread and process, reused across calls (a new one costs milliseconds)."""

    def __init__(self, url: str, *, connect_timeout: int = 5):
        self.url = check_url(url)
        self.connect_timeout = connect_timeout
        self.dialect = Dialect("postgresql")
        self._local = threading.local()
        # Weak, so a connection goes (and psycopg closes it) with its thread: an app server's
        # short-lived session threads must not pile up connections until max_connections.
        self._all: "weakref.WeakSet" = weakref.WeakSet()
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"PostgreSQL {redact_url(self.url)}"

    def _raw(self):
        held = getattr(self._local, "held", None)
        # A forked worker (multiprocessing, Ray) must not share its parent's socket.
        if held is not None and not held.raw.closed and held.pid == os.getpid():
            return held.raw
        try:
            import psycopg
        except ImportError as exc:
            raise CatalogConnectionError(f"{URL_SETTING} names a PostgreSQL catalog but psycopg is not installed: "
                                         "run scripts/setup.sh (it installs requirements.txt)") from exc
        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout, row_factory=_pg_row_factory)
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise CatalogConnectionError(
                f"cannot reach the PostgreSQL catalog {redact_url(self.url)} ({URL_SETTING}): {reason}. "
                f"Start the server or fix {URL_SETTING} (postgresql://USER:PASSWORD@HOST:PORT/DATABASE); "
                f"unset it to use the SQLite catalog in the data directory") from None
        self._local.held = _Held(raw)
        with self._lock:
            self._all.add(raw)
        return raw

    @contextmanager
    def connect(self) -> Iterator[Conn]:
        import psycopg

        raw = self._raw()
        try:
            with raw.transaction():
                yield Conn(raw, self.dialect)
        except psycopg.OperationalError:
            raw.close()  # a broken connection is not reused; the next call opens a new one
            raise

    @contextmanager
    def migration(self) -> Iterator[Conn]:
        with self.connect() as con:
            con.lock_schema()
            yield con

    def close(self) -> None:
        with self._lock:
            for raw in list(self._all):
                raw.close()
            self._all.clear()


def open_database(target: str | Path, *, connect_timeout: int = 5) -> Database:
    """A Database for a file path (SQLite) or a postgresql:// URL."""
    if is_database_url(target):
        return PostgresDatabase(str(target), connect_timeout=connect_timeout)
    return SqliteDatabase(Path(target))


def chunks(items: list, n: int = 500) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def placeholders(n: int) -> str:
    return ",".join("?" * n)


def in_chunks(con: Conn, sql: str, values: Sequence[Any], *, before: Sequence[Any] = (), size: int = 500) -> Iterator[Any]:
    """Rows of `sql` (with one `{in}` for an IN list) over `values` in chunks; `before` are the arguments ahead of the list."""
    for chunk in chunks(list(values), size):
        yield from con.execute(sql.format(**{"in": placeholders(len(chunk))}), [*before, *chunk])


__all__ = ["CatalogConnectionError", "Conn", "Database", "Dialect", "Row", "URL_SETTING", "chunks", "check_url",
           "in_chunks", "is_database_url", "open_database", "placeholders", "redact_url"]
