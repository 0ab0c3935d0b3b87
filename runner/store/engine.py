"""The database engine: URL checks, driver choice, SQLite connection settings, safe descriptions."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from runner.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_TIMEOUT_S = 10
WRITE_OPTION = "runbook_write"  # execution option: open SQLite transactions with BEGIN IMMEDIATE

_POSTGRES_NAMES = {"postgres", "postgresql", "postgresql+psycopg"}
_SQLITE_NAMES = {"sqlite", "sqlite+pysqlite"}


def sqlite_url(path: Path) -> str:
    """The store URL of the SQLite file at *path*."""
    return f"sqlite:///{path}"


def parse_url(url: str) -> URL:
    """Check *url* and pick our driver: ``sqlite:///file`` or ``postgresql://`` (psycopg 3)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:
        # The text may hold a password: do not repeat it.
        raise StoreError("cannot parse the database URL (use sqlite:///path or postgresql://...)") from e
    if parsed.drivername in _POSTGRES_NAMES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_NAMES:
        return parsed
    raise StoreError(
        f"unsupported database {parsed.drivername!r} in {safe_url(parsed)}: use sqlite:///path or postgresql://..."
    )


def safe_url(url: URL) -> str:
    """*url* as text with any password masked."""
    return url.render_as_string(hide_password=True)


def scrub(text: str, url: URL) -> str:
    """*text* with the password of *url* masked, should a driver ever repeat it."""
    return text.replace(url.password, "***") if url.password else text


def create_engine(url: URL) -> Engine:
    """An engine for *url* (from :func:`parse_url`), SQLite files and their directories created on demand."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL) -> Engine:
    """A SQLite engine: WAL, foreign keys, a busy timeout, and transactions SQLAlchemy controls."""
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory of {database}: {e.strerror}") from e
    engine = sa.create_engine(url)
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module (it would defer it until the first write and skip it
    # for DDL); _on_sqlite_begin emits it instead, so reads see one snapshot and migrations are atomic.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch a new database file to WAL (persistent once done), retrying while another opener holds it.

    SQLite answers "database is locked" at once, without its busy handler, when two processes
    open a new file together and both try to switch it.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _on_sqlite_begin(connection: sa.Connection) -> None:
    # A writer takes the write lock up front: a deferred transaction that reads and then writes
    # fails at once with "database is locked" instead of waiting for the busy timeout.
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
