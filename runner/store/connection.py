"""The store's connection to its database: the engine, schema readiness, and the read and write
transactions every store method runs in, with database errors turned into StoreError."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError, StatementError

from runner.errors import StoreError
from runner.store import migrate
from runner.store.engine import (
    POSTGRES_CONNECT_DEFAULTS,
    WRITE_OPTION,
    create_engine,
    parse_url,
    safe_url,
    scrub,
)
from runner.store.wakeup import Listener


class Connected:
    """A database, migrated on first use, and the transactions of the store's methods."""

    def __init__(self, url: str) -> None:
        self._url = parse_url(url)
        self.display_url = safe_url(self._url)
        with self._errors("cannot open the run store"):
            self._engine = create_engine(self._url)
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})
        self._ready = False
        self._ready_lock = threading.Lock()
        # SQLite has one writer at a time. Queue this process's writers on a lock, which hands
        # over at once, rather than on SQLite's busy handler, which sleeps up to 100 ms per retry.
        sqlite_file = self._url.get_backend_name() == "sqlite"
        self._write_lock: AbstractContextManager[Any] = threading.Lock() if sqlite_file else nullcontext()

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    def upgrade(self) -> None:
        """Migrate the schema to the latest revision (``runbook db upgrade``); safe to repeat."""
        with self._errors("cannot upgrade the database schema"), self._ready_lock:
            migrate.upgrade(self._engine)
            self._ready = True

    @property
    def shared(self) -> bool:
        """True for a database server that processes on many machines may share (PostgreSQL)."""
        return self._url.get_backend_name() == "postgresql"

    def listener(self, on_wake: Callable[[], None]) -> Listener | None:
        """A listener (not started) calling *on_wake* when any process queues a run; None on SQLite."""
        if not self.shared:
            return None
        dialect = self._engine.dialect
        args, params = dialect.create_connect_args(self._engine.url)  # without the pool options
        params = {**POSTGRES_CONNECT_DEFAULTS, **params}
        return Listener(lambda: dialect.loaded_dbapi.connect(*args, **params), on_wake)

    def schema_problem(self) -> str | None:
        """Why this version cannot use the database's schema now (an older one), or None."""
        with self._errors("cannot read the schema revision"):
            return migrate.problem(self._engine, self.display_url)

    def revision(self) -> str | None:
        """The schema revision of the database, None when it was never migrated."""
        with self._errors("cannot read the schema revision"):
            return migrate.current(self._engine)

    def _ensure_ready(self) -> None:
        """Migrate an empty database on first use; refuse an outdated one."""
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                migrate.ensure_current(self._engine, self.display_url)
                self._ready = True

    @contextmanager
    def _read(self, action: str) -> Iterator[sa.Connection]:
        """A connection in a read transaction (one snapshot on SQLite)."""
        with self._errors(action):
            self._ensure_ready()
            with self._engine.connect() as connection:
                yield connection

    @contextmanager
    def _write(self, action: str) -> Iterator[sa.Connection]:
        """A connection in a write transaction, committed when the block ends without error."""
        with self._errors(action):
            self._ensure_ready()
            with self._write_lock, self._writer.begin() as connection:
                yield connection

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn database errors into StoreError, never repeating the password of the URL."""
        try:
            yield
        except StoreError:
            raise
        except (SQLAlchemyError, CommandError, ImportError) as e:
            message = f"{action}: {_reason(e)} (database {self.display_url})"
            raise StoreError(scrub(message, self._url)) from e


def _reason(error: Exception) -> str:
    """The driver's own words when there are some, on one line."""
    if isinstance(error, StatementError) and error.orig is not None:
        text = str(error.orig) or type(error.orig).__name__
    else:
        text = str(error)
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
