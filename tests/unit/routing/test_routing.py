from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.alerts.model import Alert
from runner.catalog.load import load_catalog
from runner.catalog.models import Verdict
from runner.errors import ParamError
from runner.routing.params import resolve_params
from runner.routing.router import Router
from tests.conftest import CATALOG, runbook_yaml

NOON = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # a Tuesday


def labels(**kw: str) -> dict[str, str]:
    return kw


def test_priority_beats_specificity_and_specificity_beats_order(make_catalog) -> None:  # type: ignore[no-untyped-def]
    root = make_catalog(
        {
            "generic.yaml": runbook_yaml("generic", match="  - alertname: HighLoad"),
            "specific.yaml": runbook_yaml(
                "specific", match="  - alertname: HighLoad\n    labels: ['env=\"prod\"']"
            ),
            "urgent.yaml": runbook_yaml(
                "urgent", match="  - alertname: HighLoad\n    labels: ['team=\"db\"']", extra="priority: 10\n"
            ),
        }
    )
    cat = load_catalog(root)
    assert cat.problems == []
    router = Router(cat)
    assert (
        router.route(Alert(labels(alertname="HighLoad", env="staging", instance="web-1")), NOON).runbook.name
        == "generic"
    )  # type: ignore[union-attr]
    assert (
        router.route(Alert(labels(alertname="HighLoad", env="prod", instance="web-1")), NOON).runbook.name
        == "specific"
    )  # type: ignore[union-attr]
    r = router.route(Alert(labels(alertname="HighLoad", env="prod", team="db", instance="web-1")), NOON)
    assert r.runbook is not None and r.runbook.name == "urgent"
    assert [m.runbook.name for m in router.matches(r.alert)] == ["urgent", "specific", "generic"]
    assert r.ambiguous == ()


def test_remaining_ties_are_reported_as_ambiguous(make_catalog) -> None:  # type: ignore[no-untyped-def]
    # Different selectors of equal rank that both match one alert: visible only at run time.
    root = make_catalog(
        {
            "a.yaml": runbook_yaml("a-book", match="  - alertname: X\n    labels: ['env=\"prod\"']"),
            "b.yaml": runbook_yaml("b-book", match="  - alertname: X\n    labels: ['team=\"db\"']"),
        }
    )
    cat = load_catalog(root)
    assert cat.problems == []
    r = Router(cat).route(Alert(labels(alertname="X", env="prod", team="db", instance="web-1")), NOON)
    assert r.runbook is not None and r.runbook.name == "a-book"
    assert r.ambiguous == ("a-book", "b-book")


def test_status_selects_firing_by_default(make_catalog) -> None:  # type: ignore[no-untyped-def]
    root = make_catalog(
        {
            "f.yaml": runbook_yaml("on-fire", match="  - alertname: X"),
            "r.yaml": runbook_yaml("on-resolve", match="  - alertname: X\n    status: resolved"),
        }
    )
    router = Router(load_catalog(root))
    fired = router.route(Alert(labels(alertname="X", instance="web-1"), status="firing"), NOON)
    resolved = router.route(Alert(labels(alertname="X", instance="web-1"), status="resolved"), NOON)
    assert fired.runbook is not None and fired.runbook.name == "on-fire"
    assert resolved.runbook is not None and resolved.runbook.name == "on-resolve"


@pytest.fixture(scope="module")
def router() -> Router:
    cat = load_catalog(CATALOG)
    assert cat.problems == []
    return Router(cat)


def test_unmatched_alert_goes_to_the_default_owner(router: Router) -> None:
    r = router.route(Alert(labels(alertname="NobodyKnowsMe", env="prod")), NOON)
    assert r.runbook is None and r.owner == "platform-ops" and r.decision is None


def test_allowed_route_carries_params_hosts_and_owner(router: Router) -> None:
    r = router.route(
        Alert(labels(alertname="DiskAlmostFull", env="prod", instance="web-1:9100", mountpoint="/var/log")),
        NOON,
    )
    assert r.runbook is not None and r.runbook.name == "disk-full-cleanup"
    assert r.owner == "platform-ops"
    assert r.params == {"host": "web-1", "log_dir": "/var/log/app", "max_age_days": 3}
    assert r.decision is not None
    assert (r.decision.verdict, r.decision.hosts, r.decision.environment) == (
        Verdict.ALLOWED,
        ("web-1",),
        "prod",
    )


@pytest.mark.parametrize(
    ("alert_labels", "annotations", "when", "verdict", "reason"),
    [
        (
            {"env": "prod", "instance": "nowhere:1"},
            {},
            NOON,
            Verdict.REJECTED,
            "host 'nowhere' is not in the inventory",
        ),
        ({"instance": "pay-1"}, {}, NOON, Verdict.REJECTED, "the alert has no 'env' label"),
        ({"env": "prod", "instance": "pay-1"}, {}, NOON, Verdict.ALLOWED, "within authority"),
        (
            {"env": "prod", "instance": "pay-1"},
            {},
            datetime(2026, 3, 3, 19, 0, tzinfo=UTC),
            Verdict.AWAITING_APPROVAL,
            "outside working hours",
        ),
        (
            {"env": "prod", "instance": "pay-1"},
            {},
            datetime(2026, 3, 7, 12, 0, tzinfo=UTC),  # Saturday
            Verdict.AWAITING_APPROVAL,
            "outside working hours",
        ),
        (
            {"env": "prod", "instance": "pay-1"},
            {"pidfile": "/etc/shadow"},
            NOON,
            Verdict.REJECTED,
            "param pidfile",
        ),
    ],
)
def test_authority_verdicts(
    router: Router,
    alert_labels: dict[str, str],
    annotations: dict[str, str],
    when: datetime,
    verdict: Verdict,
    reason: str,
) -> None:
    ann = {"pidfile": "/run/p.pid"} | annotations
    r = router.route(
        Alert({"alertname": "ProcessDown", "service": "payments-api", **alert_labels}, ann), when
    )
    assert r.decision is not None
    assert r.decision.verdict is verdict
    assert reason in r.decision.reason


def test_group_targets_and_max_hosts(make_catalog) -> None:  # type: ignore[no-untyped-def]
    text = runbook_yaml("web-wide", match="  - alertname: WebSlow").replace(
        "targets: {hosts_from: host}", "targets: {group: web}"
    )
    root = make_catalog({"w.yaml": text})
    r = Router(load_catalog(root)).route(
        Alert(labels(alertname="WebSlow", env="prod", instance="web-1")), NOON
    )
    assert r.decision is not None
    assert r.decision.verdict is Verdict.REJECTED
    assert r.decision.reason == "2 hosts exceed max_hosts 1"
    assert r.decision.hosts == ("web-1", "web-2")


def test_modules_needing_approval_hold_the_run(make_catalog) -> None:  # type: ignore[no-untyped-def]
    text = runbook_yaml("rebooter", match="  - alertname: Stuck").replace(
        "task: {ansible.builtin.ping: {}}", "task: {reboot: {reboot_timeout: 60}}"
    )
    r = Router(load_catalog(make_catalog({"r.yaml": text}))).route(
        Alert(labels(alertname="Stuck", env="prod", instance="web-1")), NOON
    )
    assert r.decision is not None
    assert r.decision.verdict is Verdict.AWAITING_APPROVAL
    assert r.decision.reason == "policy requires approval for module ansible.builtin.reboot"


def test_operator_params_override_and_unknown_ones_are_refused(router: Router) -> None:
    rb = router.catalog.runbooks["disk-full-cleanup"]
    alert = Alert(labels(alertname="DiskAlmostFull", instance="web-2"))
    assert resolve_params(rb, alert, {"max_age_days": "7"})["max_age_days"] == 7
    assert resolve_params(rb, None, {"host": "web-1"}) == {
        "host": "web-1",
        "log_dir": "/var/log/app",
        "max_age_days": 3,
    }
    with pytest.raises(ParamError, match="has no such param"):
        resolve_params(rb, alert, {"nope": "1"})
    with pytest.raises(
        ParamError, match=r"param host: a value is required \(no labels.instance in the alert\)"
    ):
        resolve_params(rb, Alert(labels(alertname="DiskAlmostFull")))


def test_an_empty_group_is_named_as_such(make_catalog) -> None:  # type: ignore[no-untyped-def]
    text = runbook_yaml("empty-group", match="  - alertname: Quiet").replace(
        "targets: {hosts_from: host}", "targets: {group: spare}"
    )
    root = make_catalog({"e.yaml": text})
    inventory = root / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "    spare: {}\n")
    cat = load_catalog(root)
    assert cat.problems == []
    r = Router(cat).route(Alert(labels(alertname="Quiet", env="prod", instance="web-1")), NOON)
    assert r.decision is not None
    assert r.decision.reason == "group 'spare' has no hosts in the inventory"


def test_every_reason_kind_is_in_the_api_schema_and_nothing_else() -> None:
    import yaml

    from runner.records import ReasonKind
    from tests.conftest import ROOT

    spec = yaml.safe_load((ROOT / "schemas" / "openapi.yaml").read_text())
    listed = spec["components"]["schemas"]["Run"]["properties"]["reason_kind"]["enum"]
    assert sorted(k for k in listed if k is not None) == sorted(k.value for k in ReasonKind)
