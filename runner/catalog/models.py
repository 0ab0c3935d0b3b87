"""Typed models of runbooks, owners and policy, built from validated documents.

Code downstream of the loader works with these and trusts them: the schema and
the meaning checks in ``validation`` have already run.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from runner.catalog.inventory import Inventory
from runner.catalog.matchers import Matcher
from runner.catalog.problems import Problem
from runner.yamlsource import Document


class Severity(StrEnum):
    """How urgent an incident is."""

    CRITICAL = "critical"
    HIGH = "high"
    WARNING = "warning"
    INFO = "info"


class Verdict(StrEnum):
    """What authority decides for a proposed run."""

    ALLOWED = "allowed"
    REJECTED = "rejected"
    AWAITING_APPROVAL = "awaiting_approval"


class ApprovalMode(StrEnum):
    """How much human approval a runbook asks for, weakest first."""

    NONE = "none"
    OUTSIDE_HOURS = "outside_hours"
    REQUIRED = "required"

    @property
    def rank(self) -> int:
        """Strength, for comparing against a policy's floor."""
        return list(ApprovalMode).index(self)


@dataclass(frozen=True)
class Selector:
    """alertname plus label matchers, and the status that triggers."""

    alertname: str
    matchers: tuple[Matcher, ...]
    status: str = "firing"  # firing | resolved | any

    def matches(self, labels: dict[str, str], status: str) -> bool:
        """Whether an alert with *labels* and *status* is selected."""
        if self.status != "any" and self.status != status:
            return False
        if labels.get("alertname") != self.alertname:
            return False
        for m in self.matchers:  # noqa: SIM110 - a plain loop: all() with a generator is slower here
            if not m.matches(labels):
                return False
        return True

    def __str__(self) -> str:
        inner = ", ".join([f'alertname="{self.alertname}"', *(str(m) for m in self.matchers)])
        suffix = "" if self.status == "firing" else f" status={self.status}"
        return "{" + inner + "}" + suffix


@dataclass(frozen=True)
class Param:
    """A typed input of a runbook's steps."""

    name: str
    type: str
    source: str | None = None  # "labels.x" / "annotations.x"
    extract: str | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[Any, ...] = ()
    default: Any = None
    required: bool = True
    description: str = ""
    secret: bool = False
    pattern_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    extract_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Compiled once here: with thousands of runbooks, re's own cache (512 entries) thrashes.
        for text, attr in ((self.pattern, "pattern_re"), (self.extract, "extract_re")):
            if text is not None and getattr(self, attr) is None:
                with contextlib.suppress(re.error):  # reported by validation; such a runbook never routes
                    object.__setattr__(self, attr, re.compile(text))


@dataclass(frozen=True)
class Targets:
    """Which inventory hosts a runbook may touch."""

    hosts_from: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Rate:
    """At most ``count`` runs in any window of ``per``."""

    count: int
    per: timedelta

    @property
    def per_hour(self) -> float:
        """Runs per hour this rate allows, for comparing rates with different windows."""
        return self.count * 3600 / max(self.per.total_seconds(), 1)


@dataclass(frozen=True)
class WorkingHours:
    """Hours in which no approval is needed."""

    days: tuple[str, ...]
    start: str
    end: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class Authority:
    """The limits within which a runbook may act."""

    environments: tuple[str, ...]
    max_hosts: int
    timeout: timedelta
    environment_label: str | None = None
    max_runs: Rate | None = None
    concurrency: int = 1
    cooldown: timedelta | None = None
    approval: ApprovalMode = ApprovalMode.NONE
    working_hours: WorkingHours | None = None


@dataclass(frozen=True)
class Step:
    """An inline Ansible task (module + args) or an imported playbook."""

    name: str
    module: str | None = None
    args: Any = None
    playbook: str | None = None
    timeout: timedelta | None = None
    retries: int = 0
    delay: timedelta | None = None
    register: str | None = None
    when: str | None = None
    loop: str | list[Any] | None = None
    failed_when: str | bool | None = None
    changed_when: str | bool | None = None
    become: bool = False


@dataclass(frozen=True)
class TestAlert:
    """A sample alert of a runbook test."""

    labels: dict[str, str]
    annotations: dict[str, str]
    status: str = "firing"


@dataclass(frozen=True)
class TestCase:
    """One case of a runbook's tests."""

    index: int
    name: str
    alert: TestAlert
    expect: dict[str, Any]
    at: str | None = None


@dataclass
class Runbook:
    """A validated runbook."""

    name: str
    title: str
    owner: str
    severity: Severity
    selectors: tuple[Selector, ...]
    params: dict[str, Param]
    targets: Targets
    authority: Authority
    steps: tuple[Step, ...]
    verify: tuple[Step, ...] = ()
    tests: tuple[TestCase, ...] = ()
    description: str = ""
    priority: int = 0
    idempotent: bool = False
    file: Path = field(default_factory=Path)


@dataclass(frozen=True)
class Channel:
    """A notification channel; secrets stay in the named environment variables."""

    name: str
    type: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class Member:
    """A person in a team."""

    name: str
    email: str | None = None
    github: str | None = None


@dataclass(frozen=True)
class Level:
    """One escalation level."""

    after: timedelta
    notify: tuple[str, ...]
    handoff: str | None = None


ESCALATION_TRIGGERS = ("failed", "timed_out", "interrupted", "rejected", "awaiting_approval", "unmatched",
                       "fix_did_not_hold")


@dataclass(frozen=True)
class Team:
    """A team that owns runbooks and incidents."""

    name: str
    members: tuple[Member, ...]
    primary: str
    levels: tuple[Level, ...]
    repeat: int = 0
    triggers: frozenset[str] = frozenset(ESCALATION_TRIGGERS)  # when incidents escalate
    unmatched_severities: frozenset[str] = frozenset({"critical", "high"})
    verify_window: timedelta = timedelta(minutes=10)
    github: str | None = None
    updates: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Owners:
    """owners.yaml: teams and channels."""

    teams: dict[str, Team]
    channels: dict[str, Channel]


@dataclass(frozen=True)
class Ceilings:
    """The most authority a runbook may claim in one environment."""

    max_hosts: int
    timeout: timedelta
    max_runs: Rate | None = None
    concurrency: int | None = None
    min_cooldown: timedelta | None = None
    approval: ApprovalMode = ApprovalMode.NONE


@dataclass(frozen=True)
class Policy:
    """policy.yaml: the organisation's limits."""

    default_owner: str
    environments: dict[str, Ceilings]
    environment_label: str = "env"
    inventory: str = "inventory.yaml"
    forbidden_modules: frozenset[str] = frozenset()  # canonical names (ansible.builtin.shell)
    approval_modules: frozenset[str] = frozenset()


@dataclass
class Catalog:
    """Everything under one catalog root, with the problems found loading it."""

    root: Path
    policy: Policy | None = None
    owners: Owners | None = None
    inventory: Inventory = field(default_factory=Inventory)
    inventory_ok: bool = False  # False when the inventory could not be read: skip checks against it
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)  # runbook name -> its file
    modules: dict[str, frozenset[str]] = field(default_factory=dict)  # runbook -> modules used
    policy_doc: Document | None = None
    owners_doc: Document | None = None
    problems: list[Problem] = field(default_factory=list)
