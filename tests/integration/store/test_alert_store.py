"""Alerts stored durably as received, with repeats recognised, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.alerts.sources import parse
from runner.store import Store

PAYLOADS = Path(__file__).resolve().parents[2] / "examples" / "payloads"
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def alertmanager_batch(status: str = "firing"):  # type: ignore[no-untyped-def]
    payload = json.loads((PAYLOADS / "alertmanager" / "firing.json").read_text())
    payload["status"] = status
    for alert in payload["alerts"]:
        alert["status"] = status
    return parse("alertmanager", payload)


def test_alerts_are_stored_with_their_envelope_and_repeats_are_marked(store_url: str) -> None:
    batch = alertmanager_batch()
    with Store(store_url) as store:
        first = store.record_alerts(batch, received_at=T0)
        assert [s.repeat_of for s in first] == [None] * len(batch.alerts)
        assert [s.fingerprint for s in first] == [a.fingerprint for a in batch.alerts]
        again = store.record_alerts(batch, received_at=T0 + timedelta(hours=4))  # repeat_interval
        assert [s.repeat_of for s in again] == [s.id for s in first]
        third = store.record_alerts(batch, received_at=T0 + timedelta(hours=8))
        assert [s.repeat_of for s in third] == [s.id for s in first]  # points at the first receipt
        resolved = store.record_alerts(alertmanager_batch("resolved"), received_at=T0 + timedelta(hours=9))
        assert [s.repeat_of for s in resolved] == [None] * len(batch.alerts)  # a change, not a repeat
        refire = store.record_alerts(batch, received_at=T0 + timedelta(hours=10))
        assert [s.repeat_of for s in refire] == [None] * len(batch.alerts)  # fires again: new
        late = store.record_alerts(batch, received_at=T0 + timedelta(hours=20))  # past the window
        assert [s.repeat_of for s in late] == [None] * len(batch.alerts)
        assert store.count_alerts() == 6 * len(batch.alerts)
        assert store.count_alerts(repeats=True) == 2 * len(batch.alerts)


def test_concurrent_identical_alerts_yield_one_first_receipt(store_url: str) -> None:
    batch = alertmanager_batch()
    fingerprint = batch.alerts[0].fingerprint
    with Store(store_url) as store:
        store.upgrade()
        errors: list[BaseException] = []

        def post() -> None:
            try:
                store.record_alerts(batch)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=post) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.count_alerts(fingerprint=fingerprint) == 20
        assert store.count_alerts(fingerprint=fingerprint, repeats=False) == 1
