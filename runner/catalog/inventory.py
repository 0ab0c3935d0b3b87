"""The catalog's Ansible inventory (YAML form): which hosts and groups exist.

Only names are read here; the executor hands the file itself to Ansible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.catalog.problems import Problem, at
from runner.yamlsource import Document, Path_


@dataclass
class Inventory:
    """Host and group names of an Ansible YAML inventory."""

    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    group_vars: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # outermost first

    def variable_names(self) -> set[str]:
        """Every variable the inventory defines, for any host or group."""
        names = {k for _, variables in self.group_vars for k in variables}
        return names | {k for variables in self.hosts.values() for k in variables}

    def host_vars(self, host: str) -> dict[str, Any]:
        """Effective variables of *host*: group vars, outer groups first, then its own."""
        merged: dict[str, Any] = {}
        for group, variables in self.group_vars:
            if group == "all" or host in self.groups.get(group, ()):
                merged.update(variables)
        merged.update(self.hosts.get(host, {}))
        return merged

    def resolve(self, name: str) -> list[str]:
        """Hosts named by *name*: the host itself, or every host of the group."""
        if name in self.hosts:
            return [name]
        if name in self.groups:
            return sorted(self.groups[name])
        return []


def parse_inventory(doc: Document) -> tuple[Inventory, list[Problem]]:
    """Read groups (with children) and hosts; report what is not inventory-shaped."""
    inv = Inventory()
    problems: list[Problem] = []
    if not isinstance(doc.data, dict):
        return inv, [at(doc, (), "an inventory is a mapping of groups, like {all: {hosts: {...}}}")]

    def group(name: str, body: Any, path: Path_) -> set[str]:
        members = inv.groups.setdefault(name, set())
        if body is None:
            return members
        if not isinstance(body, dict):
            problems.append(at(doc, path, "a group is a mapping with hosts, children or vars"))
            return members
        for key in body:
            if key not in ("hosts", "children", "vars"):
                problems.append(at(doc, (*path, key), f"unknown group key '{key}'"))
        variables = body.get("vars") or {}
        if not isinstance(variables, dict):
            problems.append(at(doc, (*path, "vars"), "vars is a mapping"))
        elif variables:
            inv.group_vars.append((name, variables))
        hosts = body.get("hosts") or {}
        if not isinstance(hosts, dict):
            problems.append(at(doc, (*path, "hosts"), "hosts is a mapping of host names"))
            hosts = {}
        for host, hostvars in hosts.items():
            inv.hosts.setdefault(host, {}).update(hostvars if isinstance(hostvars, dict) else {})
            members.add(host)
        children = body.get("children") or {}
        if not isinstance(children, dict):
            problems.append(at(doc, (*path, "children"), "children is a mapping of groups"))
            children = {}
        for child, child_body in children.items():
            members |= group(child, child_body, (*path, "children", child))
        return members

    for name, body in doc.data.items():
        group(name, body, (name,))
    inv.groups.setdefault("all", set()).update(inv.hosts)
    return inv, problems
