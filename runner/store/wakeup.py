"""Waking workers when a run is queued: PostgreSQL LISTEN/NOTIFY, with polling as the fallback.

A transaction that leaves a run ``queued`` calls :func:`announce`; PostgreSQL delivers the
notification to every listening session when, and only if, that transaction commits, so a
worker woken by it always finds the run (or finds it already claimed by another). The
notification carries nothing: the queue in the table stays the only truth, and a lost
notification (a listener reconnecting, say) costs one poll interval, never a run.

SQLite has no such channel: workers in the process that queued the run are woken in memory,
those in other processes at their next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

CHANNEL = "runbook_queued"  # one channel per schema: "runbook_queued:<schema>"
RETRY_MAX = 10.0  # seconds between attempts to reconnect, at most
log = logging.getLogger("runner.store.wakeup")
# Channels are per database; deployments in different schemas of one database must not wake
# each other's workers for nothing. (Identifiers stop at 63 bytes: a long schema name is cut.)
_NOTIFY = sa.text(f"SELECT pg_notify(left('{CHANNEL}:' || current_schema(), 63), '')")


def announce(connection: sa.Connection) -> None:
    """Wake the listening workers once the current transaction commits (PostgreSQL; else nothing)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_NOTIFY)  # notifications of one transaction with one payload fold into one


class Listener:
    """A thread that holds one PostgreSQL session in LISTEN and calls *on_wake* for each notification.

    *connect* opens a new DB-API (psycopg) connection outside the engine's pool: the session
    must stay with the listener. It reconnects after errors with a growing pause, and calls
    *on_wake* after every (re)connection too, since notifications sent while it was away are lost.
    """

    def __init__(self, connect: Callable[[], Any], on_wake: Callable[[], None], *,
                 check_every: float = 1.0) -> None:
        self._connect = connect
        self._on_wake = on_wake
        self._check_every = check_every
        self._stop = threading.Event()
        self.listening = threading.Event()  # set while the LISTEN session is up
        self._thread = threading.Thread(target=self._run, name="listen", daemon=True)

    def start(self) -> Listener:
        """Start listening in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop, within *check_every* seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._check_every + 5)

    def _run(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                self._session()
                pause = 0.5
            except Exception as e:  # the database went away: poll until it is back
                self.listening.clear()
                log.warning("LISTEN %s lost (%s); workers poll until it is back", CHANNEL,
                            type(e).__name__)
                self._stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX)

    def _session(self) -> None:
        connection = self._connect()
        try:
            connection.autocommit = True
            schema = connection.execute("SELECT current_schema()").fetchone()[0]
            channel = f"{CHANNEL}:{schema}".encode()[:63].decode(errors="ignore").replace('"', '""')
            connection.execute(f'LISTEN "{channel}"')
            self.listening.set()
            self._on_wake()  # whatever was queued while no session listened
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=self._check_every):
                    self._on_wake()
        finally:
            self.listening.clear()
            connection.close()
