"""The one decision every way into a run makes, before any history is counted: the params (from
the operator, the alert, the defaults), the environment, and authority's verdict.

Alerts at intake (runner.runs.candidates), manual runs from the CLI and the API
(runner.runs.lifecycle.prepare), and `runbook test` and `runbook route` (the router) all call
:func:`decide_run`, so a runbook's test cases exercise the code that answers a live alert.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from runner.alerts.model import Alert
from runner.catalog.models import Catalog, Runbook, Verdict
from runner.errors import UsageError
from runner.records import ReasonKind
from runner.routing.authority import Decision, decide_in, environment_label
from runner.routing.params import resolve_params


@dataclass(frozen=True)
class Decided:
    """The params a run would take, and what authority says of it."""

    params: dict[str, Any]
    decision: Decision


def environment_of(catalog: Catalog, runbook: Runbook, alert: Alert | None, given: str | None) -> str | None:
    """The environment to act in: the one given, else the alert's label (None when it has none),
    else without an alert the runbook's only one; UsageError when a person must say which."""
    if given is not None:
        return given
    if alert is not None:
        assert catalog.policy is not None
        return alert.labels.get(environment_label(runbook, catalog.policy))
    if len(runbook.authority.environments) == 1:
        return runbook.authority.environments[0]
    raise UsageError(f"runbook {runbook.name} acts in {', '.join(runbook.authority.environments)}: "
                     "say which environment (--env)")


def decide_run(catalog: Catalog, runbook: Runbook, now: datetime, *, alert: Alert | None = None,
               given: dict[str, Any] | None = None, environment: str | None = None,
               ask_approval: bool = False, requester: str = "") -> Decided:
    """Params and verdict for running *runbook* now; ParamError names a param that is wrong.

    *ask_approval* (a requester's wish for a second pair of eyes) can only make an allowed run
    wait for approval, never allow one authority refuses.
    """
    params = resolve_params(runbook, alert, given)
    decision = decide_in(catalog, runbook, params, environment_of(catalog, runbook, alert, environment), now)
    if ask_approval and decision.verdict is Verdict.ALLOWED:
        decision = replace(decision, verdict=Verdict.AWAITING_APPROVAL,
                           reason=f"approval asked for by {requester}", kind=ReasonKind.APPROVAL_ASKED)
    return Decided(params, decision)
