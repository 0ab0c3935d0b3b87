"""The envelope Alertmanager and Grafana share: Alertmanager's template data plus a few fields.

Both senders marshal Alertmanager's ``template.Data`` (receiver, status, alerts,
groupLabels, commonLabels, commonAnnotations, externalURL) and add ``version``,
``groupKey`` and ``truncatedAlerts`` (prometheus/alertmanager notify/webhook/webhook.go,
``Message``; grafana/alerting receivers/webhook/v1/webhook.go, ``webhookMessage``).
Fields this module does not know are left alone, as Alertmanager's own JSON decoding does.
"""

from __future__ import annotations

from typing import Any

from runner.alerts import fields
from runner.alerts.batch import Batch
from runner.alerts.fields import MISSING, Problems, child, shown


def envelope(payload: object, *, source: str, version: str, other: dict[str, str]) -> dict[str, Any]:
    """The payload as an object whose ``version`` is *version*, or AlertFormatError at once.

    *other* maps the versions of the other sources to their names, for a hint when a payload
    reaches the wrong parser.
    """
    if not isinstance(payload, dict):
        raise fields.fail("", fields.must_be(f"a {source} webhook object", payload))
    got = payload.get("version", MISSING)
    if got is MISSING:
        raise fields.fail("version", f"is required: {source} webhooks send version {version!r}")
    if got != version:
        known = isinstance(got, str) and got in other
        hint = f" (version {got!r} is what {other[got]} sends)" if known else ""
        raise fields.fail("version", f"must be {version!r} for {source}, not {shown(got)}{hint}")
    return payload


def read_batch(payload: dict[str, Any], problems: Problems, *, source: str) -> Batch:
    """The shared fields and the alerts; the caller checks its own fields and then raises."""
    group_key = fields.string(payload, "groupKey", "", problems, required=True)
    if group_key == "":
        problems.add("groupKey", "must not be empty")
    status = fields.status(payload.get("status", MISSING), "status", problems)
    receiver = fields.string(payload, "receiver", "", problems)
    external_url = fields.string(payload, "externalURL", "", problems)
    truncated = fields.count(payload.get("truncatedAlerts", MISSING), "truncatedAlerts", problems)
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        fields.str_map(payload.get(key, MISSING), key, problems)
    alerts = []
    for i, data in enumerate(fields.alert_list(payload, problems)):
        alert = fields.read_alert(
            data, child("alerts", i), problems, source=source, group_key=group_key, strict=True
        )
        if alert is not None:
            alerts.append(alert)
    return Batch(
        source=source,
        group_key=group_key,
        status=status,
        alerts=alerts,
        truncated=truncated,
        receiver=receiver,
        external_url=external_url or None,
        raw=payload,
    )
