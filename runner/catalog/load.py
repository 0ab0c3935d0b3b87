"""Load a runbook catalog: policy, owners, inventory and every runbook file.

Loading collects every problem instead of stopping at the first: stage one
checks each file's shape against its schema, then the typed models are built
from the files that have the right shape, then ``validation`` checks meaning
across the whole catalog.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runner.catalog import shape
from runner.catalog.inventory import parse_inventory
from runner.catalog.matchers import MatcherSyntaxError, parse_matcher
from runner.catalog.meaning import check_catalog
from runner.catalog.models import (
    ESCALATION_TRIGGERS,
    ApprovalMode,
    Authority,
    Catalog,
    Ceilings,
    Channel,
    Level,
    Member,
    Owners,
    Param,
    Policy,
    Rate,
    Runbook,
    Selector,
    Severity,
    Step,
    Targets,
    Team,
    TestAlert,
    TestCase,
    WorkingHours,
)
from runner.catalog.playbooks import canonical_module
from runner.catalog.problems import Problem, at, display_path
from runner.durations import parse_duration
from runner.errors import CatalogError, YamlError
from runner.yamlsource import Document, read

POLICY_FILE = "policy.yaml"
OWNERS_FILE = "owners.yaml"
PLAYBOOK_DIR = "playbooks"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def find_root(path: Path) -> Path:
    """The catalog root holding *path*: the nearest directory with a policy.yaml."""
    start = path.resolve()
    for candidate in [start, *start.parents]:
        if candidate.is_dir() and (candidate / POLICY_FILE).is_file():
            return candidate
    raise CatalogError(
        f"{path}: no {POLICY_FILE} here or in a parent directory; a catalog root holds "
        f"{POLICY_FILE}, {OWNERS_FILE} and the runbooks"
    )


def runbook_files(root: Path, inventory: str) -> list[Path]:
    """Runbook files under *root*: YAML files other than policy, owners, inventory, playbooks."""
    skip = {root / POLICY_FILE, root / OWNERS_FILE, (root / inventory).resolve()}
    files = []
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if file.suffix not in (".yaml", ".yml") or not file.is_file():
            continue
        if rel.parts[0] == PLAYBOOK_DIR or any(p.startswith(".") for p in rel.parts):
            continue
        if file in skip or file.resolve() in skip:
            continue
        files.append(file)
    return files


def _read(file: Path, problems: list[Problem]) -> Document | None:
    try:
        return read(file)
    except YamlError as e:
        problems.append(Problem(display_path(e.file), e.line, "", e.message))
        return None


def load_catalog(path: Path) -> Catalog:
    """Load and validate the catalog that holds *path*; problems are collected, not raised."""

    root = find_root(path)
    cat = Catalog(root=root)
    problems = cat.problems

    policy_doc = _read(root / POLICY_FILE, problems)
    if policy_doc is not None and _shape_ok(policy_doc, "policy", problems):
        cat.policy = build_policy(policy_doc.data)
        cat.policy_doc = policy_doc

    owners_path = root / OWNERS_FILE
    if not owners_path.is_file():
        problems.append(Problem(display_path(owners_path), 1, "", "missing owners file"))
    else:
        owners_doc = _read(owners_path, problems)
        if owners_doc is not None and _shape_ok(owners_doc, "owners", problems):
            cat.owners = build_owners(owners_doc.data)
            cat.owners_doc = owners_doc

    inventory_name = cat.policy.inventory if cat.policy else "inventory.yaml"
    inventory_path = root / inventory_name
    if not inventory_path.is_file():
        problems.append(Problem(display_path(inventory_path), 1, "", "missing inventory file"))
    else:
        inv_doc = _read(inventory_path, problems)
        if inv_doc is not None:
            cat.inventory, inv_problems = parse_inventory(inv_doc)
            problems.extend(inv_problems)
            cat.inventory_ok = isinstance(inv_doc.data, dict)

    for file in runbook_files(root, inventory_name):
        doc = _read(file, problems)
        if doc is None:
            continue
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if kind != "Runbook":
            where = ("kind",) if isinstance(doc.data, dict) and "kind" in doc.data else ()
            found = "an empty file" if doc.data is None else (
                f"kind {kind!r}" if where else "no kind field")
            problems.append(at(doc, where, f"expected a runbook (kind: Runbook), found {found}"))
            continue
        if not _shape_ok(doc, "runbook", problems):
            continue
        runbook = build_runbook(doc, problems)
        if runbook is None:
            continue
        if runbook.name in cat.runbooks:
            first = cat.documents[runbook.name]
            problems.append(
                at(
                    doc,
                    ("name",),
                    f"runbook name '{runbook.name}' is already used by "
                    f"{display_path(first.file)}:{first.line(('name',))}",
                )
            )
            continue
        cat.runbooks[runbook.name] = runbook
        cat.documents[runbook.name] = doc

    check_catalog(cat)
    # a playbook shared by several runbooks is checked for each: report each fault once
    cat.problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.path, p.message))
    return cat


def _shape_ok(doc: Document, kind: str, problems: list[Problem]) -> bool:
    found = shape.check_shape(doc, kind)
    problems.extend(found)
    return not found


def _rate(data: dict[str, Any] | None) -> Rate | None:
    return Rate(data["count"], parse_duration(data["per"])) if data else None


def _duration(text: str | None) -> Any:
    return parse_duration(text) if text else None


def build_policy(data: dict[str, Any]) -> Policy:
    """Policy from a shape-valid policy.yaml."""
    envs = {}
    for name, env in data["environments"].items():
        c = env["ceilings"]
        envs[name] = Ceilings(
            max_hosts=c["max_hosts"],
            timeout=parse_duration(c["timeout"]),
            max_runs=_rate(c.get("max_runs")),
            concurrency=c.get("concurrency"),
            min_cooldown=_duration(c.get("min_cooldown")),
            approval=ApprovalMode(c.get("approval", "none")),
        )
    modules = data.get("modules", {})
    return Policy(
        default_owner=data["default_owner"],
        environments=envs,
        environment_label=data.get("environment_label", "env"),
        inventory=data.get("inventory", "inventory.yaml"),
        forbidden_modules=frozenset(canonical_module(m) for m in modules.get("forbidden", [])),
        approval_modules=frozenset(canonical_module(m) for m in modules.get("require_approval", [])),
    )


def build_owners(data: dict[str, Any]) -> Owners:
    """Owners from a shape-valid owners.yaml."""
    channels = {
        name: Channel(name, ch["type"], {k: v for k, v in ch.items() if k != "type"})
        for name, ch in data["channels"].items()
    }
    teams = {}
    for name, t in data["teams"].items():
        esc = t["escalation"]
        teams[name] = Team(
            name=name,
            members=tuple(Member(m["name"], m.get("email"), m.get("github")) for m in t["members"]),
            primary=t["primary"],
            levels=tuple(
                Level(parse_duration(lv["after"]), tuple(lv["notify"]), lv.get("handoff"))
                for lv in esc["levels"]
            ),
            repeat=esc.get("repeat", 0),
            triggers=frozenset(esc.get("triggers", ESCALATION_TRIGGERS)),
            unmatched_severities=frozenset(esc.get("unmatched_severities", ("critical", "high"))),
            verify_window=parse_duration(esc.get("verify_window", "10m")),
            github=t.get("github"),
            updates=t.get("updates"),
            description=t.get("description", ""),
        )
    return Owners(teams=teams, channels=channels)


def _step(data: dict[str, Any]) -> Step:
    module, args = next(iter(data["task"].items())) if "task" in data else (None, None)
    return Step(
        name=data["name"],
        module=module,
        args=args,
        playbook=data.get("playbook"),
        timeout=_duration(data.get("timeout")),
        retries=data.get("retries", 0),
        delay=_duration(data.get("delay")),
        register=data.get("register"),
        when=data.get("when"),
        loop=data.get("loop"),
        failed_when=data.get("failed_when"),
        changed_when=data.get("changed_when"),
        become=data.get("become", False),
    )


def build_runbook(doc: Document, problems: list[Problem]) -> Runbook | None:
    """Runbook from a shape-valid document; regex faults become problems (and None)."""
    data = doc.data
    before = len(problems)
    selectors = []
    for i, sel in enumerate(data["match"]):
        matchers = []
        for j, text in enumerate(sel.get("labels", [])):
            try:
                m = parse_matcher(text)
            except MatcherSyntaxError as e:
                problems.append(at(doc, ("match", i, "labels", j), str(e)))
                continue
            if m.name == "alertname":
                problems.append(
                    at(
                        doc,
                        ("match", i, "labels", j),
                        "put the alertname in the selector's alertname field, not in labels",
                    )
                )
            matchers.append(m)
        selectors.append(Selector(sel["alertname"], tuple(matchers), sel.get("status", "firing")))

    params = {}
    for name, p in data.get("params", {}).items():
        for key in ("pattern", "extract"):
            if key in p:
                try:
                    compiled = re.compile(p[key])
                except re.error as e:
                    problems.append(at(doc, ("params", name, key), f"invalid regular expression: {e}"))
                    continue
                if key == "extract" and compiled.groups < 1:
                    problems.append(
                        at(
                            doc,
                            ("params", name, key),
                            "extract needs one capture group, like ([^:]+)(:[0-9]+)?",
                        )
                    )
        params[name] = Param(
            name=name,
            type=p["type"],
            source=p.get("from"),
            extract=p.get("extract"),
            pattern=p.get("pattern"),
            minimum=p.get("minimum"),
            maximum=p.get("maximum"),
            values=tuple(p.get("values", ())),
            default=p.get("default"),
            required=p.get("required", "default" not in p),
            description=p.get("description", ""),
            secret=p.get("secret", False),
        )

    a = data["authority"]
    approval = a.get("approval", "none")
    hours = None
    if isinstance(approval, dict):
        oh = approval["outside_hours"]
        hours = WorkingHours(
            tuple(oh.get("days", WEEKDAYS)), oh["start"], oh["end"], oh.get("timezone", "UTC")
        )
        approval = "outside_hours"
    authority = Authority(
        environments=tuple(a["environments"]),
        max_hosts=a["max_hosts"],
        timeout=parse_duration(a["timeout"]),
        environment_label=a.get("environment_label"),
        max_runs=_rate(a.get("max_runs")),
        concurrency=a.get("concurrency", 1),
        cooldown=_duration(a.get("cooldown")),
        approval=ApprovalMode(approval),
        working_hours=hours,
    )
    tests = tuple(
        TestCase(
            index=i,
            name=t.get("name", f"case {i + 1}"),
            alert=TestAlert(
                dict(t["alert"]["labels"]),
                dict(t["alert"].get("annotations", {})),
                t["alert"].get("status", "firing"),
            ),
            expect=dict(t["expect"]),
            at=t.get("at"),
        )
        for i, t in enumerate(data.get("tests", []))
    )
    if len(problems) > before:
        return None
    return Runbook(
        name=data["name"],
        title=data["title"],
        owner=data["owner"],
        severity=Severity(data["severity"]),
        selectors=tuple(selectors),
        params=params,
        targets=Targets(data["targets"].get("hosts_from"), data["targets"].get("group")),
        authority=authority,
        steps=tuple(_step(s) for s in data["steps"]),
        verify=tuple(_step(s) for s in data.get("verify", [])),
        tests=tests,
        description=data.get("description", ""),
        priority=data.get("priority", 0),
        idempotent=data.get("idempotent", False),
        file=doc.file,
    )
