"""Authority checks that need no history: environment, hosts, approval.

Rate limits, concurrency and cooldowns need the run store and are decided
where runs are enqueued; everything here is a pure function of the runbook,
the policy, the inventory and the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from runner.catalog.inventory import Inventory
from runner.catalog.models import ApprovalMode, Catalog, Policy, Runbook, Verdict, WorkingHours
from runner.records import ReasonKind

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Decision:
    """A verdict with the reason a person can act on, and its kind for whatever counts them."""

    verdict: Verdict
    reason: str
    kind: ReasonKind
    hosts: tuple[str, ...] = ()
    environment: str | None = None


def environment_label(runbook: Runbook, policy: Policy) -> str:
    """The alert label that names the environment for this runbook."""
    return runbook.authority.environment_label or policy.environment_label


def within_hours(hours: WorkingHours, now: datetime) -> bool:
    """Whether *now* falls inside the working hours."""
    local = now.astimezone(ZoneInfo(hours.timezone))
    start, end = time.fromisoformat(hours.start), time.fromisoformat(hours.end)
    return DAY_NAMES[local.weekday()] in hours.days and start <= local.time() < end


def resolve_hosts(runbook: Runbook, params: dict[str, object], inventory: Inventory) -> list[str]:
    """The inventory hosts a run would touch (empty when the target is unknown)."""
    if runbook.targets.group is not None:
        return inventory.resolve(runbook.targets.group)
    assert runbook.targets.hosts_from is not None
    value = params.get(runbook.targets.hosts_from)
    return inventory.resolve(str(value)) if value is not None else []


def decide_in(catalog: Catalog, runbook: Runbook, params: dict[str, object], environment: str | None,
              now: datetime) -> Decision:
    """:func:`decide` with the catalog's policy, inventory and the modules the runbook uses."""
    assert catalog.policy is not None
    return decide(runbook, params, environment, catalog.policy, catalog.inventory,
                  catalog.modules.get(runbook.name, frozenset()), now)


def decide(
    runbook: Runbook,
    params: dict[str, object],
    environment: str | None,
    policy: Policy,
    inventory: Inventory,
    modules: frozenset[str],
    now: datetime,
) -> Decision:
    """The history-free verdict for running *runbook* with *params* in *environment*."""
    a = runbook.authority
    allowed = ", ".join(a.environments)
    if environment is None:
        label = environment_label(runbook, policy)
        return Decision(
            Verdict.REJECTED,
            f"no environment: the alert has no '{label}' label (runbook acts only in {allowed})",
            ReasonKind.ENVIRONMENT,
        )
    if environment not in a.environments:
        return Decision(
            Verdict.REJECTED,
            f"environment '{environment}' is outside the runbook's authority ({allowed})",
            ReasonKind.ENVIRONMENT,
            environment=environment,
        )
    hosts = resolve_hosts(runbook, params, inventory)
    if not hosts:
        target = (
            f"group '{runbook.targets.group}'"
            if runbook.targets.group
            else f"host '{params.get(runbook.targets.hosts_from or '')}'"
        )
        named = runbook.targets.group or str(params.get(runbook.targets.hosts_from or ""))
        known = named in inventory.groups
        where = "has no hosts in the inventory" if known else "is not in the inventory"
        return Decision(Verdict.REJECTED, f"{target} {where}", ReasonKind.TARGET, environment=environment)
    if len(hosts) > a.max_hosts:
        return Decision(Verdict.REJECTED, f"{len(hosts)} hosts exceed max_hosts {a.max_hosts}",
                        ReasonKind.MAX_HOSTS, tuple(hosts), environment)
    gated = sorted(modules & policy.approval_modules)  # both hold canonical names
    if a.approval is ApprovalMode.REQUIRED:
        reason, kind = "the runbook requires approval", ReasonKind.APPROVAL_REQUIRED
    elif (
        a.approval is ApprovalMode.OUTSIDE_HOURS
        and a.working_hours
        and not within_hours(a.working_hours, now)
    ):
        h = a.working_hours
        reason = (
            f"outside working hours ({','.join(h.days)} {h.start}-{h.end} {h.timezone}) approval is required"
        )
        kind = ReasonKind.OUTSIDE_HOURS
    elif gated:
        reason, kind = f"policy requires approval for module {', '.join(gated)}", ReasonKind.MODULE_APPROVAL
    else:
        return Decision(Verdict.ALLOWED, "within authority", ReasonKind.ALLOWED, tuple(hosts), environment)
    return Decision(Verdict.AWAITING_APPROVAL, reason, kind, tuple(hosts), environment)
