"""Grafana unified alerting's webhook contact point payload, version 1.

Grafana sends Alertmanager's template data extended per alert, plus its own fields
(grafana/alerting receivers/webhook/v1/webhook.go, ``webhookMessage``; templates/template_data.go,
``ExtendedAlert``; the example body in Grafana's docs, "Configure the webhook notifier",
https://grafana.com/docs/grafana/latest/alerting/alerting-rules/manage-contact-points/integrations/webhook-notifier/)::

    {"receiver", "status", "orgId": int, "alerts": [{"status", "labels", "annotations",
      "startsAt", "endsAt", "values": {str: float} | null, "generatorURL", "fingerprint",
      "silenceURL", "dashboardURL", "panelURL", "valueString", "imageURL"?}],
     "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "version": "1",
     "groupKey", "truncatedAlerts", "title", "state": "alerting"|"ok", "message"}

Labels and annotations named ``__x__`` are removed before sending; ``values``, the URLs and
the templated title/message are kept only in ``Batch.raw``. The request is a POST or a PUT
(the contact point's ``httpMethod``, grafana/alerting receivers/webhook/v1/config.go) with
``Content-Type: application/json`` and ``User-Agent: Grafana`` (grafana/grafana
pkg/services/notifications/webhook.go). A contact point with a custom payload template
(Grafana 12) sends some other body, which this parser refuses.
"""

from __future__ import annotations

from typing import Any

from runner.alerts import envelope, fields
from runner.alerts.batch import Batch
from runner.alerts.fields import MISSING, Problems

SOURCE = "grafana"
VERSION = "1"


def parse(payload: object) -> Batch:
    """A Grafana webhook payload as a Batch; AlertFormatError names what is wrong."""
    data = envelope.envelope(payload, source=SOURCE, version=VERSION, other={"4": "Alertmanager"})
    problems = Problems()
    batch = envelope.read_batch(data, problems, source=SOURCE)
    _grafana_fields(data, problems)
    problems.check()
    return batch


def _grafana_fields(data: dict[str, Any], problems: Problems) -> None:
    """Check the fields Grafana adds, when present: only their types (forward compatible)."""
    org_id = data.get("orgId", MISSING)
    if org_id is not MISSING and (isinstance(org_id, bool) or not isinstance(org_id, int)):
        problems.add("orgId", fields.must_be("a whole number", org_id))
    for key in ("title", "state", "message"):
        fields.string(data, key, "", problems)
