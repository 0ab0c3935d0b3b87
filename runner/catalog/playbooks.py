"""Reading the Ansible parts of a runbook: playbook files, task modules, template references."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta

from runner.yamlsource import Document, Path_

# Task keywords of Ansible (playbook keywords reference, "Task" and "Block"):
# every other key of a task is its module.
TASK_KEYWORDS = frozenset(
    """
    action any_errors_fatal args async become become_exe become_flags become_method
    become_user changed_when check_mode collections connection debugger delay delegate_facts
    delegate_to diff environment failed_when ignore_errors ignore_unreachable local_action
    loop loop_control module_defaults name no_log notify poll port register remote_user
    retries run_once tags throttle timeout until vars when with_dict with_fileglob
    with_first_found with_indexed_items with_items with_lines with_list with_nested
    with_random_choice with_sequence with_subelements with_together listen
""".split()
)
BLOCK_KEYS = ("block", "rescue", "always")
# Modules that change which hosts the play acts on, past targets and max_hosts.
TARGET_CHANGING = frozenset({"ansible.builtin.add_host", "ansible.builtin.group_by"})
# Modules that pull in tasks from elsewhere, where validation cannot see them.
INCLUDE_MODULES = frozenset(
    f"ansible.builtin.{m}" for m in
    ("include_tasks", "import_tasks", "include_role", "import_role", "include", "import_playbook")
)
PLAY_KEYS = frozenset(
    """
    name hosts tasks pre_tasks post_tasks handlers roles vars vars_files gather_facts become
    become_user become_method connection serial strategy any_errors_fatal max_fail_percentage
    ignore_errors ignore_unreachable environment module_defaults collections tags check_mode
    diff force_handlers order remote_user timeout no_log run_once throttle port debugger
    vars_prompt gather_subset gather_timeout fact_path become_flags become_exe
""".split()
)
# Names Ansible defines for every task; anything else a template uses must be a param, an
# earlier step's register or an inventory variable.
ANSIBLE_NAMES = frozenset(
    """
    inventory_hostname inventory_hostname_short hostvars groups group_names play_hosts
    ansible_play_hosts ansible_play_batch ansible_facts ansible_check_mode ansible_diff_mode
    item omit playbook_dir inventory_dir role_path lookup query q now undef ansible_loop
    ansible_run_tags ansible_version environment
""".split()
)


class _AnyName(dict[str, object]):
    """Ansible adds hundreds of filters and tests; accept every name when reading templates."""

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key: str, default: object = None) -> object:
        return super().get(key, _any_filter)


def _any_filter(*args: object, **kwargs: object) -> None:
    """Stands in for an Ansible filter or test while only reading names."""


_ENV = jinja2.Environment()
_ENV.filters = _AnyName(_ENV.filters)
_ENV.tests = _AnyName(_ENV.tests)  # type: ignore[assignment]


def canonical_module(name: str) -> str:
    """``shell`` and ``ansible.legacy.shell`` are ``ansible.builtin.shell``."""
    if name.startswith("ansible.legacy."):
        return "ansible.builtin." + name.removeprefix("ansible.legacy.")
    return name if "." in name else f"ansible.builtin.{name}"


def module_of(task: dict[str, Any]) -> list[str]:
    """The module keys of one task (normally exactly one)."""
    return [k for k in task if k not in TASK_KEYWORDS and k not in BLOCK_KEYS]


@lru_cache(maxsize=65536)  # the same templates recur across runbooks; parsing them is the slow part
def template_names(text: str, expression: bool = False) -> frozenset[str]:
    """Variables a template (or a bare ``when`` expression) reads; TemplateSyntaxError if bad."""
    source = "{{ " + text + " }}" if expression else text
    return frozenset(meta.find_undeclared_variables(_ENV.parse(source))) - frozenset(_ENV.globals)


def strings(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """Every string (keys included) inside a task's arguments."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k), str(k)
            yield from strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, (*path, i))


def playbook_tasks(doc: Document) -> tuple[list[tuple[Path_, dict[str, Any]]], list[tuple[Path_, str]]]:
    """Tasks of a playbook file (through blocks), and faults in its shape."""
    faults: list[tuple[Path_, str]] = []
    tasks: list[tuple[Path_, dict[str, Any]]] = []
    if not isinstance(doc.data, list) or not doc.data:
        return tasks, [((), "a playbook is a non-empty list of plays")]

    def walk_tasks(items: Any, path: Path_) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            faults.append((path, "must be a list of tasks"))
            return
        for i, task in enumerate(items):
            where = (*path, i)
            if not isinstance(task, dict):
                faults.append((where, "a task is a mapping"))
                continue
            blocks = [k for k in BLOCK_KEYS if k in task]
            if blocks:
                for key in blocks:
                    walk_tasks(task[key], (*where, key))
                continue
            indirect = [k for k in ("action", "local_action") if k in task]
            if indirect:
                faults.append(((*where, indirect[0]), f"write the module as the task's key, not "
                               f"{indirect[0]}: (validation must see every module)"))
                continue
            escapes = [k for k in ("delegate_to", "delegate_facts") if k in task]
            if escapes:
                faults.append(((*where, escapes[0]), f"{escapes[0]} acts beyond the run's target hosts "
                               "(targets and max_hosts decide where a runbook acts)"))
            modules = module_of(task)
            if modules and canonical_module(modules[0]) in TARGET_CHANGING:
                faults.append(((*where, modules[0]), f"'{modules[0]}' changes the hosts a run acts on"))
            if modules and canonical_module(modules[0]) in INCLUDE_MODULES:
                faults.append(((*where, modules[0]), f"'{modules[0]}' runs tasks validation cannot see: "
                               "put them in this playbook"))
            if not module_of(task):
                faults.append((where, "task names no module"))
            elif len(module_of(task)) > 1:
                faults.append((where, f"task names several modules: {', '.join(module_of(task))}"))
            tasks.append((where, task))

    for i, play in enumerate(doc.data):
        if not isinstance(play, dict):
            faults.append(((i,), "a play is a mapping with hosts and tasks"))
            continue
        if "import_playbook" in play:
            faults.append(((i, "import_playbook"), "nested import_playbook is not supported"))
            continue
        if "hosts" not in play:
            faults.append(((i,), "play has no hosts"))
        unknown = [k for k in play if k not in PLAY_KEYS]
        if unknown:
            faults.append(((i, unknown[0]), f"unknown play keyword '{unknown[0]}'"))
        if "roles" in play:
            faults.append(((i, "roles"), "roles are not supported; put the tasks in the playbook"))
        for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            walk_tasks(play.get(key), (i, key))
    return tasks, faults
