"""Prometheus Alertmanager's webhook payload, version 4.

The format, from Alertmanager's configuration reference (``<webhook_config>``,
prometheus/alertmanager docs/configuration.md, https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)
and the code that sends it (prometheus/alertmanager notify/webhook/webhook.go)::

    {"version": "4", "groupKey": str, "truncatedAlerts": int, "status": "firing"|"resolved",
     "receiver": str, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
     "externalURL": str,
     "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                 "fingerprint"}]}

``groupKey`` identifies the group (the docs: "e.g. to deduplicate"); ``truncatedAlerts``
counts the alerts cut by the receiver's ``max_alerts``; times are Go's RFC 3339 with
nanoseconds; ``endsAt`` of a firing alert is Go's zero time (see fields). Alertmanager POSTs
it as ``Content-Type: application/json`` with ``User-Agent: Alertmanager/<version>``
(prometheus/alertmanager notify/util.go).
"""

from __future__ import annotations

from runner.alerts import envelope
from runner.alerts.batch import Batch
from runner.alerts.fields import Problems

SOURCE = "alertmanager"
VERSION = "4"


def parse(payload: object) -> Batch:
    """An Alertmanager webhook payload as a Batch; AlertFormatError names what is wrong."""
    data = envelope.envelope(payload, source=SOURCE, version=VERSION, other={"1": "Grafana"})
    problems = Problems()
    batch = envelope.read_batch(data, problems, source=SOURCE)
    problems.check()
    return batch
