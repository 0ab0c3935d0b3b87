"""``runbook test``: run every runbook's test alerts through routing and compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runner.alerts.model import Alert
from runner.catalog.models import Catalog, Runbook, TestCase
from runner.durations import parse_time
from runner.routing.params import redact
from runner.routing.router import Route, Router

_UNSET = object()


@dataclass
class CaseResult:
    """The outcome of one test case."""

    runbook: str
    case: TestCase
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.failures


def _compare(case: TestCase, owner: Runbook, route: Route) -> list[str]:
    expect: dict[str, Any] = case.expect
    failures = []
    want = expect.get("runbook", owner.name)
    got = route.runbook.name if route.runbook else None
    if want != got:
        failures.append(f"expected runbook {want or 'none'}, got {got or 'none'}")
        return failures
    if route.ambiguous:
        failures.append(f"routing is ambiguous between {', '.join(route.ambiguous)}")
    shown = redact(route.runbook, route.params) if route.runbook else {}
    for key, value in expect.get("params", {}).items():
        actual = route.params.get(key, _UNSET)
        if actual is _UNSET:
            failures.append(f"expected param {key}={value!r}, got no value")
        elif actual != value:
            failures.append(f"expected param {key}={value!r}, got {shown[key]!r}")
    decision = route.decision
    if "verdict" in expect:
        got_verdict = decision.verdict.value if decision else "none"
        if got_verdict != expect["verdict"]:
            reason = f" ({decision.reason})" if decision else ""
            failures.append(f"expected verdict {expect['verdict']}, got {got_verdict}{reason}")
    if "reason" in expect and (decision is None or expect["reason"] not in decision.reason):
        failures.append(
            f"expected a reason containing {expect['reason']!r}, got "
            f"{decision.reason if decision else 'none'!r}"
        )
    if "hosts" in expect:
        hosts = list(decision.hosts) if decision else []
        if hosts != list(expect["hosts"]):
            failures.append(f"expected hosts {expect['hosts']}, got {hosts}")
    return failures


def run_tests(catalog: Catalog, only: set[str] | None = None) -> list[CaseResult]:
    """Route every test alert of every runbook (or of *only*) and compare expectations."""
    router = Router(catalog)
    results = []
    for name in sorted(catalog.runbooks):
        if only is not None and name not in only:
            continue
        runbook = catalog.runbooks[name]
        for case in runbook.tests:
            now = parse_time(case.at) if case.at else datetime.now(UTC)
            a = case.alert
            route = router.route(Alert(a.labels, a.annotations, a.status), now)
            results.append(CaseResult(name, case, _compare(case, runbook, route)))
    return results
