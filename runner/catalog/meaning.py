"""Stage two of validation: what the files mean, across the whole catalog.

Each check appends Problems pointing at the value at fault; nothing stops at
the first problem.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.alerts.model import Alert
from runner.catalog.content import ContentChecker
from runner.catalog.models import Catalog, Owners, Policy, Runbook
from runner.catalog.playbooks import (
    ANSIBLE_NAMES,
    canonical_module,
)
from runner.catalog.problems import Problem, at
from runner.durations import format_duration
from runner.errors import ParamError
from runner.routing.params import coerce
from runner.routing.router import Router
from runner.yamlsource import Document, Path_

# Extra vars outrank every other variable: a param with one of these names would take it over.
RESERVED_NAMES = ANSIBLE_NAMES | {"vars", "role_name", "role_names", "inventory_file", "playbook_dir"}


def check_catalog(cat: Catalog) -> None:
    """Run every meaning check; append to ``cat.problems``."""
    if cat.owners is not None and cat.owners_doc is not None:
        _check_owners(cat.owners, cat.owners_doc, cat.problems)
    if cat.policy is not None and cat.policy_doc is not None:
        _check_policy(cat, cat.policy, cat.policy_doc)
    playbooks: dict[Path, tuple[frozenset[str], str | None]] = {}  # each file is checked once
    for name, runbook in cat.runbooks.items():
        doc = cat.documents[name]
        checker = _RunbookChecker(cat, runbook, doc, playbooks)
        checker.run()
        cat.modules[name] = frozenset(checker.modules)
    _check_routing(cat)


def _check_owners(owners: Owners, doc: Document, problems: list[Problem]) -> None:
    for name, team in owners.teams.items():
        members = [m.name for m in team.members]
        base: Path_ = ("teams", name)
        seen: set[str] = set()
        for i, m in enumerate(members):
            if m in seen:
                problems.append(at(doc, (*base, "members", i, "name"), f"member '{m}' listed twice"))
            seen.add(m)
        if team.primary not in members:
            problems.append(
                at(
                    doc,
                    (*base, "primary"),
                    f"primary '{team.primary}' is not a member of team {name} ({', '.join(members)})",
                )
            )
        if team.updates is not None and team.updates not in owners.channels:
            problems.append(at(doc, (*base, "updates"), f"unknown channel '{team.updates}'"))
        previous = None
        for i, level in enumerate(team.levels):
            where: Path_ = (*base, "escalation", "levels", i)
            if previous is not None and level.after < previous:
                problems.append(
                    at(
                        doc,
                        (*where, "after"),
                        "escalation levels must not go back in time: after is shorter than the level before",
                    )
                )
            previous = level.after
            for j, target in enumerate(level.notify):
                if target.startswith("person:"):
                    person = target.removeprefix("person:")
                    if person not in members:
                        problems.append(
                            at(doc, (*where, "notify", j), f"'{person}' is not a member of team {name}")
                        )
                elif target not in owners.channels:
                    problems.append(
                        at(
                            doc,
                            (*where, "notify", j),
                            f"unknown channel '{target}' "
                            "(channels are defined under channels:, people as person:NAME)",
                        )
                    )
            if level.handoff is not None and level.handoff not in owners.teams:
                problems.append(at(doc, (*where, "handoff"), f"unknown team '{level.handoff}'"))


def _check_policy(cat: Catalog, policy: Policy, doc: Document) -> None:
    if cat.owners is not None and policy.default_owner not in cat.owners.teams:
        cat.problems.append(
            at(
                doc,
                ("default_owner",),
                f"unknown team '{policy.default_owner}' (teams are defined in owners.yaml)",
            )
        )
    forbidden = policy.forbidden_modules
    for i, module in enumerate(doc.data.get("modules", {}).get("require_approval", [])):
        if canonical_module(module) in forbidden:
            cat.problems.append(at(doc, ("modules", "require_approval", i),
                                   f"module '{module}' is both forbidden and require_approval"))


class _RunbookChecker(ContentChecker):
    def __init__(self, cat: Catalog, runbook: Runbook, doc: Document,
                 playbooks: dict[Path, tuple[frozenset[str], str | None]]) -> None:
        self.cat, self.runbook, self.doc = cat, runbook, doc
        self.playbooks = playbooks
        self.modules: set[str] = set()

    def run(self) -> None:
        self._owner()
        self._params()
        self._targets()
        self._authority()
        known = set(self.runbook.params) | self.cat.inventory.variable_names()
        for section, steps in (("steps", self.runbook.steps), ("verify", self.runbook.verify)):
            for i, step in enumerate(steps):
                self._step(step, (section, i), known)
                if step.register:
                    known.add(step.register)
        self._tests()

    def _owner(self) -> None:
        owners = self.cat.owners
        if owners is not None and self.runbook.owner not in owners.teams:
            self.problem(
                ("owner",),
                f"unknown team '{self.runbook.owner}' (teams in owners.yaml: "
                f"{', '.join(sorted(owners.teams))})",
            )

    def _params(self) -> None:
        for name, p in self.runbook.params.items():
            base: Path_ = ("params", name)
            if name in RESERVED_NAMES:
                self.problem(base, f"'{name}' is a name Ansible reserves; a param of that name would "
                             "override it (pick another name)")
            if p.type == "enum" and not p.values:
                self.problem((*base, "type"), "an enum param needs values")
            if p.type != "enum" and p.values:
                self.problem((*base, "values"), "values is only for enum params")
            numeric = p.type in ("integer", "number")
            for key, v in (("minimum", p.minimum), ("maximum", p.maximum)):
                if v is not None and not numeric:
                    self.problem((*base, key), f"{key} is only for integer and number params")
            if p.minimum is not None and p.maximum is not None and p.minimum > p.maximum:
                self.problem((*base, "minimum"), "minimum is greater than maximum")
            if p.extract is not None and p.source is None:
                self.problem((*base, "extract"), "extract needs from: (it applies to alert values)")
            misplaced = not numeric and (p.minimum is not None or p.maximum is not None)
            if p.default is not None and not misplaced and not (p.type == "enum" and not p.values):
                try:
                    coerce(p, p.default)
                except ParamError as e:
                    self.problem((*base, "default"), f"default is invalid: {e.message}")

    def _targets(self) -> None:
        t = self.runbook.targets
        if t.hosts_from is not None and t.hosts_from not in self.runbook.params:
            self.problem(("targets", "hosts_from"), f"unknown param '{t.hosts_from}'")
        if t.group is not None and self.cat.inventory_ok and t.group not in self.cat.inventory.groups:
            self.problem(("targets", "group"), f"group '{t.group}' is not in the inventory")

    def _authority(self) -> None:
        policy = self.cat.policy
        a = self.runbook.authority
        base: Path_ = ("authority",)
        if a.working_hours is not None:
            wh = (*base, "approval", "outside_hours")
            try:
                ZoneInfo(a.working_hours.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                self.problem((*wh, "timezone"), f"unknown time zone '{a.working_hours.timezone}'")
            if time.fromisoformat(a.working_hours.end) <= time.fromisoformat(a.working_hours.start):
                self.problem((*wh, "end"), "end must be after start")
        if policy is None:
            return
        for i, env in enumerate(a.environments):
            where: Path_ = (*base, "environments", i)
            c = policy.environments.get(env)
            if c is None:
                self.problem(
                    where,
                    f"unknown environment '{env}' (policy has {', '.join(sorted(policy.environments))})",
                )
                continue
            over: list[tuple[Path_, str]] = []
            if a.max_hosts > c.max_hosts:
                over.append(
                    (("max_hosts",), f"max_hosts {a.max_hosts} exceeds the {env} ceiling {c.max_hosts}")
                )
            if a.timeout > c.timeout:
                over.append((("timeout",), f"timeout {format_duration(a.timeout)} exceeds the {env} "
                             f"ceiling {format_duration(c.timeout)}"))
            if c.concurrency is not None and a.concurrency > c.concurrency:
                over.append(
                    (
                        ("concurrency",),
                        f"concurrency {a.concurrency} exceeds the {env} ceiling {c.concurrency}",
                    )
                )
            if c.max_runs is not None:
                if a.max_runs is None:
                    over.append(((), f"{env} requires max_runs (at most {c.max_runs.count} per "
                                      f"{format_duration(c.max_runs.per)})"))
                elif a.max_runs.count > c.max_runs.count or a.max_runs.per_hour > c.max_runs.per_hour:
                    over.append(
                        (
                            ("max_runs",),
                            f"max_runs allows more runs than the {env} ceiling "
                            f"of {c.max_runs.count} per {format_duration(c.max_runs.per)}",
                        )
                    )
            if c.min_cooldown is not None and (a.cooldown is None or a.cooldown < c.min_cooldown):
                over.append(
                    (("cooldown",), f"cooldown must be at least {format_duration(c.min_cooldown)} in {env}")
                )
            if a.approval.rank < c.approval.rank:
                over.append(
                    (
                        ("approval",),
                        f"{env} requires approval of at least "
                        f"'{c.approval.value}', runbook has '{a.approval.value}'",
                    )
                )
            for path, message in over:
                self.problem((*base, *path), message)

    def _tests(self) -> None:
        for case in self.runbook.tests:
            where: Path_ = ("tests", case.index)
            if "alertname" not in case.alert.labels:
                self.problem((*where, "alert", "labels"), "test alert has no alertname label")
            expected = case.expect.get("runbook", self.runbook.name)
            if expected is not None and expected not in self.cat.runbooks:
                self.problem((*where, "expect", "runbook"), f"unknown runbook '{expected}'")
                continue
            target = self.cat.runbooks.get(expected) if expected else None
            for key in case.expect.get("params", {}):
                if target is not None and key not in target.params:
                    self.problem(
                        (*where, "expect", "params", key), f"runbook {expected} has no param '{key}'"
                    )


def _check_routing(cat: Catalog) -> None:
    seen: dict[tuple[object, ...], list[tuple[Runbook, str]]] = {}
    for runbook in sorted(cat.runbooks.values(), key=lambda r: r.name):
        for i, sel in enumerate(runbook.selectors):
            key = (runbook.priority, sel.alertname, frozenset(sel.matchers))
            for other, status in seen.get(key, []):
                overlap = status == sel.status or "any" in (status, sel.status)
                if overlap and other.name != runbook.name:
                    cat.problems.append(at(cat.documents[runbook.name], ("match", i),
                                           f"selector {sel} is also runbook {other.name}'s "
                                           "(same priority): routing would be ambiguous"))
                    break
            seen.setdefault(key, []).append((runbook, sel.status))
    if cat.policy is None:
        return
    router = Router(cat)
    for runbook in cat.runbooks.values():
        for case in runbook.tests:
            a = case.alert
            found = router.matches(Alert(a.labels, a.annotations, a.status))
            tied = [m.runbook.name for m in found if found and m.rank == found[0].rank]
            if len(tied) > 1:
                cat.problems.append(
                    at(
                        cat.documents[runbook.name],
                        ("tests", case.index, "alert"),
                        f"alert matches {', '.join(tied)} at the same precedence: "
                        "routing is ambiguous (set priority or narrow a selector)",
                    )
                )
