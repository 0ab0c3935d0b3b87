"""runner.intake: every source's real payloads parse, and every malformed one is refused with a reason."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from runner.alerts import alertmanager, fields, generic, grafana
from runner.alerts.batch import Batch
from runner.alerts.fields import fingerprint
from runner.alerts.files import alerts_from_document
from runner.alerts.sources import PARSERS, parse
from runner.errors import AlertFormatError
from tests.conftest import ROOT
from tests.test_cli import AM_PAYLOAD

PAYLOADS = ROOT / "tests" / "examples" / "payloads"
SAMPLES = sorted(PAYLOADS.glob("*/*.json"))
SCHEMA_FILE = ROOT / "schemas" / "alert.schema.json"
DELETE = object()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def changed(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A deep copy of *data* with the field at *path* ('alerts.0.labels.env') set or deleted."""
    out = copy.deepcopy(data)
    *parents, last = path.split(".")
    node: Any = out
    for step in parents:
        node = node[int(step)] if isinstance(node, list) else node[step]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return out


# --- real samples ----------------------------------------------------------


def test_there_are_samples_for_every_source() -> None:
    assert {p.parent.name for p in SAMPLES} == set(PARSERS)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_parses(sample: Path) -> None:
    payload = json.loads(sample.read_text())
    batch = parse(sample.parent.name, payload)
    assert isinstance(batch, Batch)
    assert batch.source == sample.parent.name and batch.raw is payload
    assert batch.status in ("firing", "resolved") and batch.alerts
    for alert in batch.alerts:
        assert alert.source == batch.source and alert.alertname
        assert alert.fingerprint and alert.group_key
        for when in (alert.starts_at, alert.ends_at):
            assert when is None or when.utcoffset() is not None
        assert (alert.ends_at is None) == (alert.status == "firing")


def test_alertmanager_sample() -> None:
    batch = alertmanager.parse(load("alertmanager/firing.json"))
    assert batch.group_key == '{}/{env="prod"}:{alertname="DiskAlmostFull"}'
    assert (batch.receiver, batch.external_url, batch.truncated) == (
        "runbook-runner", "http://alertmanager.example.com:9093", 0)
    first = batch.alerts[0]
    assert first.labels["mountpoint"] == "/var/log" and first.annotations["summary"].startswith("Disk")
    assert first.fingerprint == "8d6e7c2a41f3b590" and first.group_key == batch.group_key
    # nanoseconds and an offset: kept to the microsecond, in UTC
    assert first.starts_at == datetime(2026, 3, 3, 2, 58, 0, 123456, tzinfo=UTC)
    assert first.ends_at is None
    assert first.generator_url is not None and first.generator_url.startswith("http://prometheus")


def test_alertmanager_truncated_and_mixed() -> None:
    batch = alertmanager.parse(load("alertmanager/truncated.json"))
    assert batch.truncated == 3 and batch.status == "firing"
    assert [a.status for a in batch.alerts] == ["firing", "resolved"]
    assert batch.alerts[1].ends_at == datetime(2026, 3, 4, 10, 20, tzinfo=UTC)


def test_the_cli_payload_and_the_documented_example_parse() -> None:
    assert [a.fingerprint for a in alertmanager.parse(AM_PAYLOAD).alerts] == [
        "1a2b3c4d5e6f7a8b", "9f8e7d6c5b4a3f2e"]
    example = json.loads((ROOT / "docs" / "examples" / "alertmanager-webhook.json").read_text())
    assert alertmanager.parse(example).alerts


def test_grafana_sample() -> None:
    batch = grafana.parse(load("grafana/firing.json"))
    assert batch.group_key is not None and batch.group_key.endswith(
        ':{alertname="DiskAlmostFull", grafana_folder="Infrastructure"}')
    assert batch.external_url == "https://grafana.example.com/"
    alert = batch.alerts[0]
    assert alert.labels["grafana_folder"] == "Infrastructure"
    assert alert.starts_at == datetime(2026, 3, 3, 2, 58, 10, 302715, tzinfo=UTC)
    assert alert.ends_at is None and alert.fingerprint == "57c6d9296de2ad39"
    assert batch.raw["alerts"][0]["values"] == {"A": 0.0712, "C": 1}  # Grafana's extras stay in raw


@pytest.mark.parametrize(("name", "parser"), [
    ("alertmanager/resolved.json", alertmanager.parse),
    ("grafana/resolved.json", grafana.parse),
])
def test_resolved(name: str, parser: Callable[[object], Batch]) -> None:
    batch = parser(load(name))
    assert batch.status == "resolved"
    (alert,) = batch.alerts
    assert alert.status == "resolved" and alert.alertname == "ProcessDown"
    assert alert.starts_at is not None and alert.ends_at is not None
    assert (alert.ends_at - alert.starts_at).total_seconds() in (600, 630)


def test_generic_batch_and_single() -> None:
    batch = generic.parse(load("generic/batch.json"))
    assert (batch.group_key, batch.receiver, batch.external_url, batch.truncated) == (None, None, None, 0)
    disk, proc = batch.alerts
    assert disk.fingerprint == fingerprint(disk.labels) and disk.group_key == disk.fingerprint
    assert proc.fingerprint == "nagios-pay-1-payments-api" == proc.group_key
    assert batch.status == "firing"
    single = generic.parse(load("generic/single.json"))
    assert single.alerts[0].starts_at == datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
    assert single.alerts[0].ends_at is None  # Go's zero time means: still firing
    minimal = generic.parse(load("generic/minimal.json")).alerts[0]
    assert (minimal.status, minimal.starts_at, minimal.annotations) == ("firing", None, {})


@pytest.mark.parametrize("sample", ["alertmanager/firing.json", "grafana/firing.json", "generic/batch.json",
                                    "generic/single.json"])
@pytest.mark.parametrize("nameless", [DELETE, ""], ids=["absent", "empty"])
def test_an_alert_without_alertname_is_read_like_any_other(sample: str, nameless: object) -> None:
    """Alertmanager does not require alertname, and does not retry a 400: such an alert is kept."""
    data = load(sample)
    where = "alerts.0" if "alerts" in data else ""
    payload = changed(data, f"{where}.labels.alertname".lstrip("."), nameless)
    alert = parse(sample.split("/")[0], payload).alerts[0]
    assert alert.alertname == "" and alert.name == "(no alertname)"
    assert alert.fingerprint  # the sender's, or computed from the labels it has
    assert "alertname" not in alert.labels or alert.labels["alertname"] == ""
    summary = alert.annotations.get("summary")
    if summary:
        assert alert.title == summary
    else:
        unnamed = {k: v for k, v in alert.labels.items() if k != "alertname"}
        assert alert.title.startswith("(no alertname) {")
        assert all(f'{k}="{v}"' in alert.title for k, v in unnamed.items())


def test_the_title_of_a_nameless_alert_is_its_labels() -> None:
    alert = generic.parse({"labels": {"instance": "db-1:9100", "env": "prod"}}).alerts[0]
    assert alert.title == '(no alertname) {env="prod", instance="db-1:9100"}'
    named = generic.parse({"labels": {"alertname": "DiskFull", "env": "prod"}}).alerts[0]
    assert (named.title, named.name) == ("DiskFull", "DiskFull")


def test_the_cli_reader_takes_an_alert_without_alertname() -> None:
    [alert] = alerts_from_document({"labels": {"instance": "db-1"}})
    assert alert.alertname == "" and alert.labels == {"instance": "db-1"}


def test_generic_all_resolved_is_a_resolved_batch() -> None:
    payload = {"alerts": [{"labels": {"alertname": "A"}, "status": "resolved"}]}
    assert generic.parse(payload).status == "resolved"


@pytest.mark.parametrize("zero", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00", None, DELETE])
def test_ends_at_zero_time_is_none(zero: object) -> None:
    am = changed(load("alertmanager/firing.json"), "alerts.0.endsAt", zero)
    assert alertmanager.parse(am).alerts[0].ends_at is None
    alert = {"labels": {"alertname": "A"}} | ({} if zero is DELETE else {"endsAt": zero})
    assert generic.parse(alert).alerts[0].ends_at is None


def test_the_cli_reader_reads_as_the_server_does() -> None:
    """One parser per format: a file reads as the same body posted to the server would."""
    [first, second] = alerts_from_document(AM_PAYLOAD)
    assert (first.source, first.starts_at, first.ends_at) == ("alertmanager",
                                                              datetime(2026, 11, 23, 3, tzinfo=UTC), None)
    assert first == alertmanager.parse(AM_PAYLOAD).alerts[0] and second.labels["mountpoint"] == "/data"
    one = AM_PAYLOAD["alerts"][0]  # type: ignore[index]
    assert alerts_from_document(one) == generic.parse(one).alerts  # one alert: the generic format
    assert alerts_from_document([one, one]) == generic.parse({"alerts": [one, one]}).alerts
    grafana_payload = load("grafana/firing.json")
    assert alerts_from_document(grafana_payload) == grafana.parse(grafana_payload).alerts
    with pytest.raises(AlertFormatError, match=r"startsAt.*RFC 3339"):
        alerts_from_document({"labels": {"alertname": "A"}, "startsAt": "soon"})
    with pytest.raises(AlertFormatError, match="version"):  # a webhook of a version nobody sends
        alerts_from_document({**AM_PAYLOAD, "version": "9"})


# --- fingerprints ----------------------------------------------------------

LABELS = {"alertname": "DiskAlmostFull", "env": "prod", "instance": "web-1:9100", "mountpoint": "/var/log"}


def test_fingerprint_is_the_documented_sha256_prefix() -> None:
    data = b"".join(k.encode() + b"\xff" + v.encode() + b"\xff" for k, v in sorted(LABELS.items()))
    assert fingerprint(LABELS) == hashlib.sha256(data).hexdigest()[:16]


@pytest.mark.parametrize(("labels", "expected"), [
    ({"alertname": "X"}, "b05b09a7dc6c24b7"),
    (LABELS, "7f53499766933ba6"),
])
def test_fingerprint_is_stable_across_runs_and_releases(labels: dict[str, str], expected: str) -> None:
    assert fingerprint(labels) == expected


@pytest.mark.parametrize("order", list(itertools.permutations(LABELS))[::5])
def test_fingerprint_does_not_depend_on_label_order(order: tuple[str, ...]) -> None:
    shuffled = {k: LABELS[k] for k in order}
    assert fingerprint(shuffled) == fingerprint(LABELS)
    assert generic.parse({"labels": shuffled}).alerts[0].fingerprint == fingerprint(LABELS)


@pytest.mark.parametrize(("one", "other"), [
    (LABELS, {**LABELS, "env": "staging"}),
    (LABELS, {**LABELS, "extra": ""}),
    ({"alertname": "A", "ab": "c"}, {"alertname": "A", "a": "bc"}),  # 0xFF keeps names and values apart
    ({"alertname": "A", "a": "b", "c": "d"}, {"alertname": "A", "a": "bcd"}),
])
def test_fingerprint_tells_label_sets_apart(one: dict[str, str], other: dict[str, str]) -> None:
    assert fingerprint(other) != fingerprint(one)


@pytest.mark.parametrize("absent", [DELETE, "", None])
def test_webhook_alert_without_fingerprint_gets_the_computed_one(absent: object) -> None:
    am = changed(load("alertmanager/firing.json"), "alerts.0.fingerprint", absent)
    alert = alertmanager.parse(am).alerts[0]
    assert alert.fingerprint == fingerprint(alert.labels)


# --- malformed payloads ----------------------------------------------------

AM = "alertmanager/firing.json"
GF = "grafana/firing.json"
GB = "generic/batch.json"
GS = "generic/single.json"
LONG = "x" * 4097
MANY_LABELS = {"alertname": "A", **{f"l{i}": "v" for i in range(100)}}

MALFORMED = [
    # (sample, field, new value, expected message)
    (AM, "version", "3", "version: must be '4' for alertmanager, not '3'"),
    (AM, "version", "1",
     "version: must be '4' for alertmanager, not '1' (version '1' is what Grafana sends)"),
    (AM, "version", 4, "version: must be '4' for alertmanager, not 4"),
    (AM, "version", DELETE, "version: is required: alertmanager webhooks send version '4'"),
    (GF, "version", "4",
     "version: must be '1' for grafana, not '4' (version '4' is what Alertmanager sends)"),
    (AM, "status", "ok", "status: must be firing or resolved, not 'ok'"),
    (AM, "status", DELETE, "status: is required: firing or resolved"),
    (AM, "groupKey", DELETE, "groupKey: is required"),
    (AM, "groupKey", "", "groupKey: must not be empty"),
    (AM, "groupKey", ["a"], "groupKey: must be a string, not a list"),
    (AM, "receiver", 7, "receiver: must be a string, not a number"),
    (AM, "externalURL", {}, "externalURL: must be a string, not an object"),
    (AM, "truncatedAlerts", -1, "truncatedAlerts: must be a whole number of 0 or more, not -1"),
    (AM, "truncatedAlerts", "3", "truncatedAlerts: must be a whole number of 0 or more, not '3'"),
    (AM, "truncatedAlerts", True, "truncatedAlerts: must be a whole number of 0 or more, not True"),
    (AM, "commonLabels", [], "commonLabels: must be an object of strings, not a list"),
    (AM, "groupLabels.alertname", 1, "groupLabels.alertname: must be a string, not a number"),
    (AM, "alerts", DELETE, "alerts: is required: a list of alerts"),
    (AM, "alerts", {}, "alerts: must be a list, not an object"),
    (AM, "alerts", [], "alerts: must hold at least one alert"),
    (AM, "alerts.1", "alert", "alerts[1]: must be an object, not a string"),
    (AM, "alerts.1.labels", DELETE, "alerts[1].labels: is required: every alert needs labels"),
    (AM, "alerts.1.labels", None, "alerts[1].labels: must be an object of strings, not null"),
    (AM, "alerts.1.labels.env", 5, "alerts[1].labels.env: must be a string, not a number"),
    (AM, "alerts.1.labels.env", None, "alerts[1].labels.env: must be a string, not null"),
    (AM, "alerts.1.labels.env", LONG,
     "alerts[1].labels.env: is 4,097 characters long, more than the limit of 4,096"),
    (AM, "alerts.1.labels.service-name", "x",
     "alerts[1].labels['service-name']: 'service-name' is not a valid label"),
    (AM, "alerts.1.labels.1st", "x", "alerts[1].labels['1st']: '1st' is not a valid label name"),
    (AM, "alerts.1.labels.service\u00e9", "x", "is not a valid label name"),
    (AM, "alerts.1.labels", MANY_LABELS, "alerts[1].labels: holds 101 labels, more than the limit of 100"),
    (AM, "alerts.1.labels.env", "\ud800", "alerts[1].labels.env: is not valid UTF-8 text"),
    (AM, "alerts.1.annotations", "x", "alerts[1].annotations: must be an object of strings, not a string"),
    (AM, "alerts.1.annotations.summary", 3.5,
     "alerts[1].annotations.summary: must be a string, not a number"),
    (AM, "alerts.1.status", "pending", "alerts[1].status: must be firing or resolved, not 'pending'"),
    (AM, "alerts.1.status", DELETE, "alerts[1].status: is required: firing or resolved"),
    (AM, "alerts.1.startsAt", DELETE, "alerts[1].startsAt: is required: an RFC 3339 time"),
    (AM, "alerts.1.startsAt", "yesterday", "alerts[1].startsAt: 'yesterday' is not an RFC 3339 time like"),
    (AM, "alerts.1.startsAt", "2026-03-03T02:59:30",
     "alerts[1].startsAt: '2026-03-03T02:59:30' is not an RFC"),
    (AM, "alerts.1.startsAt", "2026-13-03T02:59:30Z", "alerts[1].startsAt: '2026-13-03T02:59:30Z' is not"),
    (AM, "alerts.1.startsAt", "0001-01-01T00:00:00+01:00",
     "alerts[1].startsAt: '0001-01-01T00:00:00+01:00' is"),
    (AM, "alerts.1.endsAt", "", "alerts[1].endsAt: '' is not an RFC 3339 time like"),
    (AM, "alerts.1.startsAt", 1772506770,
     "alerts[1].startsAt: must be an RFC 3339 time string, not a number"),
    (AM, "alerts.1.endsAt", "9999-12-31T23:59:59-01:00",
     "alerts[1].endsAt: '9999-12-31T23:59:59-01:00' is not"),
    (AM, "alerts.1.fingerprint", 42, "alerts[1].fingerprint: must be a string, not a number"),
    (AM, "alerts.1.fingerprint", "f" * 129,
     "alerts[1].fingerprint: is 129 characters long, more than the limit"),
    (AM, "alerts.1.generatorURL", False, "alerts[1].generatorURL: must be a string, not a boolean"),
    (GF, "orgId", "1", "orgId: must be a whole number, not a string"),
    (GF, "title", 1, "title: must be a string, not a number"),
    (GF, "state", 5, "state: must be a string, not a number"),
    (GF, "alerts.0.labels.env", 5, "alerts[0].labels.env: must be a string, not a number"),
    (GF, "alerts.0.endsAt", "soon", "alerts[0].endsAt: 'soon' is not an RFC 3339 time"),
    (GB, "alerts", "x", "alerts: must be a list, not a string"),
    (GB, "alerts", None, "alerts: must be a list, not null"),
    (GB, "alerts", [], "alerts: must hold at least one alert"),
    (GB, "alerts.1", 3, "alerts[1]: must be an object, not a number"),
    (GB, "alerts.1.labels", DELETE, "alerts[1].labels: is required: every alert needs labels"),
    (GB, "alerts.1.labels.env", 5, "alerts[1].labels.env: must be a string, not a number"),
    (GB, "alerts.1.labels.env", LONG,
     "alerts[1].labels.env: is 4,097 characters long, more than the limit of 4,096"),
    (GB, "alerts.1.labels.alertname", LONG, "alerts[1].labels.alertname: is 4,097 characters long"),
    (GB, "alerts.1.labels.my-label", "x",
     "alerts[1].labels['my-label']: 'my-label' is not a valid label name"),
    (GB, "alerts.1.labels", MANY_LABELS, "alerts[1].labels: holds 101 labels, more than the limit of 100"),
    (GB, "alerts.1.labels.env", "\udfff", "alerts[1].labels.env: is not valid UTF-8 text"),
    (GB, "alerts.1.annotations", [], "alerts[1].annotations: must be an object of strings, not a list"),
    (GB, "alerts.0.annotations.x", 1, "alerts[0].annotations.x: must be a string, not a number"),
    (GB, "alerts.1.status", "pending", "alerts[1].status: must be firing or resolved, not 'pending'"),
    (GB, "alerts.1.startsAt", "yesterday", "alerts[1].startsAt: 'yesterday' is not an RFC 3339 time like"),
    (GB, "alerts.1.endsAt", "", "alerts[1].endsAt: '' is not an RFC 3339 time like"),
    (GB, "alerts.1.startsAt", 5, "alerts[1].startsAt: must be an RFC 3339 time string, not a number"),
    (GB, "alerts.1.endsAt", "9999-12-31T23:59:59-01:00",
     "alerts[1].endsAt: '9999-12-31T23:59:59-01:00' is not"),
    (GB, "alerts.1.fingerprint", 42, "alerts[1].fingerprint: must be a string, not a number"),
    (GB, "alerts.1.generatorURL", [], "alerts[1].generatorURL: must be a string, not a list"),
    (GS, "labels", "x", "labels: must be an object of strings, not a string"),
    (GS, "labels.queue", 1, "labels.queue: must be a string, not a number"),
    (GS, "status", "ok", "status: must be firing or resolved, not 'ok'"),
]


@pytest.mark.parametrize(("sample", "field", "value", "message"), MALFORMED,
                         ids=[f"{s.split('/')[0]}:{f}={str(v)[:20]!r}" for s, f, v, _ in MALFORMED])
def test_malformed_payloads_are_refused_with_the_field_and_reason(
    sample: str, field: str, value: object, message: str
) -> None:
    payload = changed(load(sample), field, value)
    with pytest.raises(AlertFormatError) as e:
        parse(sample.split("/")[0], payload)
    assert message in str(e.value)


ALERT_FAULTS = [
    ("labels", "x"), ("labels", MANY_LABELS), ("labels.env", 5), ("labels.env", LONG),
    ("labels", DELETE), ("labels.env", "\ud800"), ("labels.my-label", "x"), ("labels.env\n", "x"),
    ("labels.alertname", 5), ("annotations", []),
    ("annotations.x", 1), ("status", "pending"), ("startsAt", "yesterday"), ("startsAt", 5), ("endsAt", ""),
    ("fingerprint", 42), ("fingerprint", "f" * 129), ("generatorURL", []),
]
FAULT_IDS = [f"{f}={str(v)[:9]!r}" for f, v in ALERT_FAULTS]


@pytest.mark.parametrize(("field", "value"), ALERT_FAULTS, ids=FAULT_IDS)
def test_schema_and_hand_checks_say_the_same(field: str, value: object) -> None:
    """The generic source's schema messages read like the webhook sources' checks."""
    messages = []
    for name in (AM, GF, GB):
        with pytest.raises(AlertFormatError) as e:
            parse(name.split("/")[0], changed(load(name), f"alerts.0.{field}", value))
        messages.append(str(e.value))
    assert messages[0] == messages[1] == messages[2]


@pytest.mark.parametrize("source", list(PARSERS))
@pytest.mark.parametrize("payload", [None, [], "{}", 4, True, [{"labels": {"alertname": "A"}}]])
def test_a_payload_that_is_no_object_is_refused(source: str, payload: object) -> None:
    with pytest.raises(AlertFormatError, match=r"^payload: must be "):
        parse(source, payload)


@pytest.mark.parametrize(("sample", "source"), [(AM, "alertmanager"), (GF, "grafana"), (GB, "generic")])
def test_alert_count_limit(sample: str, source: str) -> None:
    data = load(sample)
    one = data["alerts"][0]
    assert len(parse(source, changed(data, "alerts", [one] * 1000)).alerts) == 1000
    with pytest.raises(AlertFormatError, match=r"^alerts: holds 1,001 alerts, more than the limit of 1,000"):
        parse(source, changed(data, "alerts", [one] * 1001))


@pytest.mark.parametrize(("sample", "source"), [(AM, "alertmanager"), (GF, "grafana"), (GB, "generic")])
def test_label_limits_are_inclusive(sample: str, source: str) -> None:
    labels = {"alertname": "A", **{f"l{i}": "v" for i in range(98)}, "big": "x" * 4096}
    assert len(labels) == 100
    batch = parse(source, changed(load(sample), "alerts.0.labels", labels))
    assert batch.alerts[0].labels["big"] == "x" * 4096


@pytest.mark.parametrize("source", list(PARSERS))
def test_every_problem_is_named_then_counted(source: str) -> None:
    data = load({"alertmanager": AM, "grafana": GF, "generic": GB}[source])
    bad = [changed(data["alerts"][0], "labels.env", i) for i in range(8)]
    with pytest.raises(AlertFormatError) as e:
        parse(source, changed(data, "alerts", bad))
    text = str(e.value)
    assert "alerts[0].labels.env: must be a string" in text and "alerts[4].labels.env" in text
    assert "alerts[5]" not in text and "more)" in text


@pytest.mark.parametrize("source", list(PARSERS))
def test_deep_nesting_never_recurses(source: str) -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    sample = load({"alertmanager": AM, "grafana": GF, "generic": GB}[source])
    payloads = [{"labels": {"alertname": "A", "v": deep}}, {"alerts": deep}, changed(sample, "extra", deep)]
    for payload in payloads:
        with contextlib.suppress(AlertFormatError):  # Alertmanager and Grafana skip what they do not know
            parse(source, payload)
    with pytest.raises(AlertFormatError, match=r"^payload: nests objects and lists more than 32 deep"):
        generic.parse(changed(sample, "extra", deep))


def test_unknown_fields_are_ignored() -> None:
    for name in (AM, GF, GB):
        source = name.split("/")[0]
        data = changed(load(name), "fromTheFuture", {"x": [1, 2]})
        data["alerts"][0]["alsoNew"] = None
        newer, known = parse(source, data), parse(source, load(name))
        assert newer.alerts == known.alerts and newer.alerts  # as if the new fields were not there
        assert (newer.status, newer.group_key) == (known.status, known.group_key)


def test_unknown_source() -> None:
    with pytest.raises(AlertFormatError, match="unknown alert source 'nagios'; known: alertmanager"):
        parse("nagios", {})


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(AlertFormatError) as e:
        alertmanager.parse(changed(load(AM), "alerts.0.startsAt", "y" * 100_000))
    assert len(str(e.value)) < 300


# --- the schema ------------------------------------------------------------


def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


def test_schema_is_valid_draft_2020_12_with_an_id() -> None:
    s = schema()
    Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["$id"].endswith("/alert.schema.json")


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            found.append((f"{path}.{name}", prop))
        for key, value in node.items():
            found += _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _properties(value, f"{path}[{i}]")
    return found


def test_every_schema_property_has_a_description_and_valid_examples() -> None:
    props = _properties(schema())
    assert {name.rsplit(".", 1)[1] for name, _ in props} >= {
        "alerts", "labels", "annotations", "status", "startsAt", "endsAt", "fingerprint", "generatorURL"}
    for name, prop in props:
        assert prop.get("description"), name
        assert prop.get("examples"), name
        check = Draft202012Validator({**prop, "$defs": schema()["$defs"]})
        for example in prop["examples"]:
            assert not list(check.iter_errors(example)), (name, example)


def test_schema_limits_are_the_parsers_limits() -> None:
    defs = schema()["$defs"]
    labels = defs["alert"]["properties"]["labels"]
    assert defs["batch"]["properties"]["alerts"]["maxItems"] == fields.MAX_ALERTS
    assert labels["maxProperties"] == fields.MAX_LABELS
    assert labels["propertyNames"]["pattern"] == f"^{fields.LABEL_NAME}$"
    assert labels["additionalProperties"]["maxLength"] == fields.MAX_LABEL_VALUE
    assert labels["properties"]["alertname"]["maxLength"] == fields.MAX_LABEL_VALUE
    assert defs["alert"]["properties"]["fingerprint"]["maxLength"] == fields.MAX_FINGERPRINT


def test_schema_examples_parse() -> None:
    for example in schema()["examples"]:
        assert generic.parse(example).alerts


def test_generic_parser_uses_the_shipped_schema() -> None:
    assert generic.validator().schema == schema()


# --- nothing but AlertFormatError escapes ------------------------------------


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "str", "list", "dict"] if depth < 4 else ["str", "int", "null"]
    match rng.choice(kinds):
        case "null":
            return None
        case "bool":
            return rng.random() < 0.5
        case "int":
            return rng.choice([0, -1, 1, 4, 2**70, -(2**63)])
        case "float":
            return rng.choice([0.5, -1e308, float("inf"), float("nan")])
        case "str":
            return rng.choice(["", "firing", "resolved", "4", "1", "alertname", "\ud800", "a" * 5000,
                               "0001-01-01T00:00:00Z", "2026-03-03T10:00:00Z", "9999-12-31T23:59:59-23:59",
                               "0001-01-01T00:00:00+23:59", "2026-02-30T00:00:00Z", "é", "a.b"])
        case "list":
            return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["alerts", "labels", "annotations", "status", "startsAt", "endsAt", "version", "groupKey",
            "fingerprint", "generatorURL", "truncatedAlerts", "alertname", "orgId", "", "x-y", 7]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _mutations(rng: random.Random, data: Any) -> Any:
    """*data* with one random node replaced by a random value (or removed)."""
    out = copy.deepcopy(data)
    node = out
    for _ in range(rng.randint(0, 5)):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) \
            if isinstance(node, list) else []
        if not children:
            break
        key, child = rng.choice(children)
        if not isinstance(child, dict | list) or rng.random() < 0.3:
            if rng.random() < 0.2 and isinstance(node, dict):
                del node[key]
            else:
                node[key] = _random_value(rng)
            return out
        node = child
    return out


@pytest.mark.parametrize("source", list(PARSERS))
def test_fuzz_only_alert_format_errors_escape(source: str) -> None:
    rng = random.Random(f"intake-{source}")
    samples = [json.loads(p.read_text()) for p in SAMPLES]
    parsed = refused = 0
    for i in range(1500):
        payload = _random_value(rng) if i % 3 == 0 else _mutations(rng, rng.choice(samples))
        try:
            result = parse(source, payload)
        except AlertFormatError as e:
            assert str(e), payload
            refused += 1
        else:
            assert isinstance(result, Batch)
            assert all(a.starts_at is None or a.starts_at.tzinfo is UTC for a in result.alerts)
            parsed += 1
    assert parsed > 50 and refused > 50  # the loop reached both ends
