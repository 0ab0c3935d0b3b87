"""An incident's record beyond its row: its timeline, and whether its alerts still fire; read
and written by incidents and escalation alike."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from runner.store.mapping import storable
from runner.store.tables import alerts, incident_timeline


def note(connection: sa.Connection, incident_id: str, at: datetime, event: str, detail: str,
         kind: str | None = None) -> None:
    """Append to an incident's timeline; *kind* is the detail as data, for who counts (the report)."""
    connection.execute(sa.insert(incident_timeline).values(
        incident_id=incident_id, at=at, event=event, detail=storable(detail), kind=kind))


def still_firing(connection: sa.Connection, incident_id: str) -> bool:
    """Whether any fingerprint of the incident was last received firing."""
    last: dict[str, str] = {}
    rows = connection.execute(sa.select(alerts.c.fingerprint, alerts.c.status)
                              .where(alerts.c.incident_id == incident_id).order_by(alerts.c.id))
    for fingerprint, status in rows:
        last[fingerprint] = status
    return any(status == "firing" for status in last.values())
