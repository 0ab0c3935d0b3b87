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
POSTGRES_CONNECT_DEFAULTS = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "keepalives": 1,
                             "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
POOL_OPTIONS = ("pool_size", "max_overflow")  # URL query parameters that size the connection pool
WRITE_OPTION = "runbook_write"  # execution option: open SQLite transactions with BEGIN IMMEDIATE

MOUNTS = Path("/proc/mounts")
NETWORK_FILESYSTEMS = frozenset({  # where a file may be open on several machines at once
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "gpfs", "ncpfs",
    "coda", "davfs", "ocfs2", "gfs2", "beegfs",
    "fuse.sshfs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "fuse.glusterfs", "fuse.ceph", "fuse.davfs2",
})
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


def shown_url(text: str) -> str:
    """*text*, a store URL as given, with any password masked (for people to read)."""
    try:
        return make_url(text).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(not a database URL)"


def safe_url(url: URL) -> str:
    """*url* as text with any password masked."""
    return url.render_as_string(hide_password=True)


def scrub(text: str, url: URL) -> str:
    """*text* with the password of *url* masked, should a driver ever repeat it."""
    return text.replace(url.password, "***") if url.password else text


def pool_options(url: URL) -> tuple[URL, dict[str, int]]:
    """*url* without our pool parameters (``?pool_size=10&max_overflow=10``), and those as engine options.

    They ride in the URL so that one setting (RUNBOOK_DB_URL) sizes the pool of every process.
    """
    options: dict[str, int] = {}
    for name in POOL_OPTIONS:
        value = url.query.get(name)
        if value is None:
            continue
        text = value if isinstance(value, str) else value[-1]
        if not text.isdigit() or int(text) > 1000:
            raise StoreError(f"{name}={text!r} in the database URL: expected a whole number from 0 to 1000")
        options[name] = int(text)
    return url.difference_update_query(POOL_OPTIONS), options


def create_engine(url: URL) -> Engine:
    """An engine for *url* (from :func:`parse_url`); a SQLite file is created on demand, not its directory."""
    url, pool = pool_options(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool)
    # A connection whose peer vanished (a host or a network gone) fails within ~15 s instead of
    # hanging a worker's heartbeat for the kernel's two hours; the URL may set its own values.
    connect_args: dict[str, Any] = {key: value for key, value in POSTGRES_CONNECT_DEFAULTS.items()
                                    if key not in url.query}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool)


def filesystem_of(path: Path, mounts: str) -> str | None:
    """The type of the filesystem holding *path*, from the text of /proc/mounts (None if not listed)."""
    target = str(path.resolve())
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")  # the kernel escapes spaces in mount points
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def check_local(directory: Path) -> None:
    """Refuse a SQLite store on a network filesystem: it would be shared by processes on several machines.

    SQLite's WAL mode keeps its index in shared memory, which only processes of one machine
    share; over NFS or SMB, locks and that memory are not coherent and the file can be corrupted.
    The store on SQLite is for one machine (several processes are fine); PostgreSQL is for many.
    """
    try:
        mounts = MOUNTS.read_text()
    except OSError:
        return  # not Linux: nothing to read the filesystem type from
    kind = filesystem_of(directory, mounts)
    if kind in NETWORK_FILESYSTEMS:
        raise StoreError(
            f"the SQLite store in {directory} is on a {kind} filesystem: SQLite serves the processes of "
            f"one machine only; keep the file on a local disk, or share a PostgreSQL database instead"
        )


def _sqlite_engine(url: URL, pool: dict[str, int]) -> Engine:
    """A SQLite engine: WAL, foreign keys, a busy timeout, and transactions SQLAlchemy controls."""
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        directory = Path(database).parent
        if not directory.is_dir():  # a typo in --db must not start an empty store somewhere else
            raise StoreError(f"the directory of the SQLite store {database} does not exist: create it, "
                             "or name a file in a directory that does")
        check_local(directory)
    engine = sa.create_engine(url, **pool)
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
    open a new file together and both try to switch it. A file that cannot be in WAL mode is
    refused: several processes would then block each other's reads.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            if mode not in ("wal", "memory"):  # an in-memory database lives in one process anyway
                raise StoreError(f"SQLite refused WAL mode (journal mode stays {mode!r}); "
                                 f"keep the store on a local disk that SQLite may write beside")
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
