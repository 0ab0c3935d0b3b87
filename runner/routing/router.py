"""Which runbook answers an alert, and why.

Precedence, when several runbooks match one alert: the highest ``priority``
wins; at equal priority the selector with more label matchers (the more
specific one) wins; what is still tied is ambiguous. Validation rejects the
ambiguities it can see (equal selectors, a test alert that two runbooks match
at the same rank); at run time a remaining tie goes to the first name in
alphabetical order and the result says it was ambiguous.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runner.alerts.model import Alert
from runner.catalog.models import Catalog, Runbook, Selector, Verdict
from runner.errors import ParamError
from runner.records import ReasonKind
from runner.routing.authority import Decision
from runner.routing.decision import decide_run


@dataclass(frozen=True)
class Match:
    """A runbook that matches an alert, through which selector."""

    runbook: Runbook
    selector: Selector

    @property
    def rank(self) -> tuple[int, int]:
        """Precedence: priority, then specificity."""
        return (self.runbook.priority, len(self.selector.matchers))


@dataclass
class Route:
    """Where an alert goes and what authority says of it."""

    alert: Alert
    match: Match | None
    owner: str
    params: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    ambiguous: tuple[str, ...] = ()

    @property
    def runbook(self) -> Runbook | None:
        """The chosen runbook, or None when nothing matches."""
        return self.match.runbook if self.match else None


class Router:
    """Routes alerts against a catalog, indexed by alertname."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index: dict[str, list[tuple[Runbook, Selector]]] = defaultdict(list)
        for runbook in catalog.runbooks.values():
            for selector in runbook.selectors:
                self.index[selector.alertname].append((runbook, selector))

    def matches(self, alert: Alert) -> list[Match]:
        """Every matching runbook (its best selector), best first."""
        candidates = self.index.get(alert.alertname)
        if not candidates:
            return []
        if len(candidates) == 1:  # the common case: no ranking needed
            runbook, selector = candidates[0]
            return [Match(runbook, selector)] if selector.matches(alert.labels, alert.status) else []
        hits = [Match(rb, sel) for rb, sel in candidates if sel.matches(alert.labels, alert.status)]
        if len(hits) < 2:
            return hits
        best: dict[str, Match] = {}
        for m in hits:
            name = m.runbook.name
            if name not in best or m.rank > best[name].rank:
                best[name] = m
        return sorted(best.values(), key=lambda m: (-m.rank[0], -m.rank[1], m.runbook.name))

    def route(self, alert: Alert, now: datetime | None = None) -> Route:
        """Pick the runbook, extract params and decide authority for *alert*."""
        found = self.matches(alert)
        policy = self.catalog.policy
        assert policy is not None
        if not found:
            return Route(alert, None, policy.default_owner)
        top = found[0]
        tied = tuple(m.runbook.name for m in found if m.rank == top.rank)
        runbook = top.runbook
        route = Route(alert, top, runbook.owner, ambiguous=tied if len(tied) > 1 else ())
        try:
            decided = decide_run(self.catalog, runbook, now or datetime.now(UTC), alert=alert)
        except ParamError as e:
            route.decision = Decision(Verdict.REJECTED, str(e), ReasonKind.PARAMS)
            return route
        route.params, route.decision = decided.params, decided.decision
        return route
