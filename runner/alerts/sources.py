"""Alert intake: what Alertmanager, Grafana or any other tool sends, read into one Batch.

Each source has a module with one function, ``parse(payload: object) -> Batch``, taking the
request's decoded JSON and returning its alerts (``runner.alerts.model.Alert``) with the envelope
they came in, or raising AlertFormatError naming every problem it found (the first few) by
field path. Payloads are untrusted: nothing else escapes a parser. Fields a parser does not
know are ignored, as Alertmanager does, so newer senders keep working.

- ``alertmanager``: Prometheus Alertmanager's ``webhook_config`` payload, version "4".
- ``grafana``: Grafana unified alerting's webhook contact point payload, version "1".
- ``generic``: our own format, schemas/alert.schema.json.

Each module's docstring gives the format and where it is defined; ``fields`` holds the
limits, the checks and the fingerprint every source shares.
"""

from __future__ import annotations

from collections.abc import Callable

from runner.alerts import alertmanager, generic, grafana
from runner.alerts.batch import Batch
from runner.alerts.fields import MAX_ALERTS, MAX_LABEL_VALUE, MAX_LABELS
from runner.errors import AlertFormatError

Parser = Callable[[object], Batch]
PARSERS: dict[str, Parser] = {
    alertmanager.SOURCE: alertmanager.parse,
    grafana.SOURCE: grafana.parse,
    generic.SOURCE: generic.parse,
}

__all__ = ["MAX_ALERTS", "MAX_LABELS", "MAX_LABEL_VALUE", "PARSERS", "Batch", "Parser", "parse"]


def parse(source: str, payload: object) -> Batch:
    """Read *payload* as *source* sends it (a key of PARSERS); AlertFormatError if it cannot."""
    parser = PARSERS.get(source)
    if parser is None:
        raise AlertFormatError(f"unknown alert source {source!r}; known: {', '.join(PARSERS)}")
    return parser(payload)
