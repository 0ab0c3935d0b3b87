"""What runbooks ask Ansible to do, checked before it runs: modules the policy forbids, command
lines a param could turn into code, template names that are no param, and the playbooks steps
name. The early, friendly half of the boundary; the runtime guard is the other."""

from __future__ import annotations

from pathlib import Path

import jinja2

from runner.catalog.models import Catalog, Runbook, Step
from runner.catalog.playbooks import (
    ANSIBLE_NAMES,
    BLOCK_KEYS,
    INCLUDE_MODULES,
    TASK_KEYWORDS,
    canonical_module,
    module_of,
    playbook_tasks,
    strings,
    template_names,
)
from runner.catalog.problems import Problem, at, display_path
from runner.errors import YamlError
from runner.yamlsource import Document, Path_, read

# Modules that run a command line: param text in them could become code.
COMMAND_MODULES = {f"ansible.builtin.{m}" for m in ("command", "shell", "raw", "script", "expect")}
INTERPRETERS = {"sh", "bash", "dash", "zsh", "ksh", "fish", "env", "xargs", "node", "php", "osascript"}
CODE_FLAGS = {"-c", "-e", "-E", "--command", "--eval", "-r", "-p"}


def _templated(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _code_is_templated(argv: list[object]) -> bool:
    """Whether the code an interpreter runs (after -c, or its script/program) comes from a template.

    Templated items after the code are plain arguments (``sys.argv``, ``$1``): allowed.
    """
    program = str(argv[0]).rsplit("/", 1)[-1]
    if program not in INTERPRETERS and not program.startswith(("python", "perl", "ruby")):
        return False
    items = argv[1:]
    for i, item in enumerate(items):
        if item in CODE_FLAGS:
            return i + 1 < len(items) and _templated(items[i + 1])
        if isinstance(item, str) and (item.startswith("-") or (program == "env" and "=" in item)):
            continue
        return _templated(item)  # the script or program to run
    return False


class ContentChecker:
    """The checks of a runbook's steps and playbooks (runner.catalog.meaning runs them)."""

    cat: Catalog
    runbook: Runbook
    doc: Document
    playbooks: dict[Path, tuple[frozenset[str], str | None]]
    modules: set[str]

    def problem(self, path: Path_, message: str) -> None:
        """Note a problem at *path* of the runbook's file."""
        self.cat.problems.append(at(self.doc, path, message))

    def _step(self, step: Step, where: Path_, known: set[str]) -> None:
        timeout = self.runbook.authority.timeout
        if step.timeout is not None and step.timeout > timeout:
            self.problem((*where, "timeout"), "step timeout is longer than authority.timeout")
        if step.module is not None:
            module_path: Path_ = (*where, "task", step.module)
            if step.module in TASK_KEYWORDS or step.module in BLOCK_KEYS:
                self.problem(module_path, f"'{step.module}' is a task keyword, not a module: write the "
                             "module as the task's key, like {ansible.builtin.file: {...}}")
            elif canonical_module(step.module) in INCLUDE_MODULES:
                self.problem(module_path, f"'{step.module}' runs tasks validation cannot see: put them in "
                             "a playbook step instead")
            self._module(step.module, module_path, self.doc)
            self._templates(step.args, module_path, known)
            if canonical_module(step.module) in COMMAND_MODULES:
                self._argv(step.args, module_path, self.doc)
        if step.when is not None:
            self._expression(step.when, (*where, "when"), known)
        if step.loop is not None:
            self._templates(step.loop, (*where, "loop"), known)
        own = known | ({step.register} if step.register else set())  # conditions see the step's result
        for key in ("failed_when", "changed_when"):
            condition = getattr(step, key)
            if isinstance(condition, str):
                self._expression(condition, (*where, key), own)
        if step.playbook is not None:
            self._playbook(step.playbook, (*where, "playbook"))

    def _module(self, module: str, where: Path_, doc: Document) -> None:
        self.modules.add(canonical_module(module))
        policy = self.cat.policy
        if policy and canonical_module(module) in policy.forbidden_modules:
            self.cat.problems.append(at(doc, where, f"module '{module}' is forbidden by policy"))

    def _argv(self, args: object, where: Path_, doc: Document) -> None:
        """Param text never becomes a command line: each param stays one argv item of a non-shell."""
        bad = ("command lines built from params are not allowed: use argv: [...] so each param stays "
               "one argument")
        if isinstance(args, str) and "{{" in args:
            self.cat.problems.append(at(doc, where, bad))
        elif isinstance(args, dict):
            for key in ("cmd", "command", "_raw_params"):
                if isinstance(args.get(key), str) and "{{" in args[key]:
                    self.cat.problems.append(at(doc, (*where, key), bad))
            argv = args.get("argv")
            if isinstance(argv, list) and argv and isinstance(argv[0], str) and _code_is_templated(argv):
                program = argv[0].rsplit("/", 1)[-1]
                self.cat.problems.append(at(doc, (*where, "argv"), f"argv runs the interpreter "
                                            f"'{program}' on templated text: a param would become code"))

    def _templates(self, args: object, where: Path_, known: set[str]) -> None:
        for path, text in strings(args, where):
            if "{{" in text or "{%" in text:
                self._names(text, path, known, expression=False)

    def _expression(self, text: str, where: Path_, known: set[str]) -> None:
        self._names(text, where, known, expression=True)

    def _names(self, text: str, where: Path_, known: set[str], expression: bool,
               doc: Document | None = None) -> None:
        doc = doc or self.doc

        def problem(path: Path_, message: str) -> None:
            self.cat.problems.append(at(doc, path, message))

        stripped = text.strip()
        if expression and stripped.startswith("{{") and stripped.endswith("}}"):
            inner = stripped[2:-2].strip()
            problem(where, f"a condition is a bare expression: write {inner}, not {stripped}")
            return
        try:
            names = template_names(text, expression)
        except jinja2.TemplateSyntaxError as e:
            problem(where, f"template syntax error: {e.message}")
            return
        registered = {s.register for s in (*self.runbook.steps, *self.runbook.verify) if s.register}
        params = ", ".join(sorted(self.runbook.params)) or "none"
        for name in sorted(names - known - ANSIBLE_NAMES):
            if name.startswith("ansible_"):
                continue
            if name in registered and doc is self.doc:
                problem(where, f"'{name}' is registered by a later step: a step sees only the "
                        "results of earlier ones")
            else:
                problem(where, f"unknown param '{name}' (params: {params})")

    def _playbook(self, rel: str, where: Path_) -> None:
        root = self.cat.root.resolve()
        file = (root / rel).resolve()
        if not file.is_relative_to(root):
            self.problem(where, f"playbook '{rel}' lies outside the catalog")
            return
        if not file.is_file():
            self.problem(where, f"playbook file '{rel}' does not exist")
            return
        if file not in self.playbooks:
            self.playbooks[file] = self._read_playbook(file)
        modules, fault = self.playbooks[file]
        self.modules |= modules
        self._playbook_names(file)
        if fault:
            self.problem(where, f"playbook '{rel}' {fault}")

    def _read_playbook(self, file: Path) -> tuple[frozenset[str], str | None]:
        """Check a playbook file once: its faults and forbidden modules are reported at the file."""
        try:
            pdoc = read(file)
        except YamlError as e:
            self.cat.problems.append(Problem(display_path(e.file), e.line, "", e.message))
            return frozenset(), "is not valid YAML"
        tasks, faults = playbook_tasks(pdoc)
        for path, message in faults:
            self.cat.problems.append(at(pdoc, path, message))
        found = set()
        for path, task in tasks:
            for module in module_of(task)[:1]:
                self._module(module, (*path, module), pdoc)
                found.add(canonical_module(module))
                if canonical_module(module) in COMMAND_MODULES:
                    self._argv(task[module], (*path, module), pdoc)
        return frozenset(found), "is not a valid playbook" if faults else None

    def _playbook_names(self, file: Path) -> None:
        """Template names in a playbook must be params, its own vars and registers, or inventory variables."""
        try:
            pdoc = read(file)
        except YamlError:
            return  # already reported
        tasks, _ = playbook_tasks(pdoc)
        known = set(self.runbook.params) | self.cat.inventory.variable_names()
        for play in pdoc.data if isinstance(pdoc.data, list) else []:
            if isinstance(play, dict) and isinstance(play.get("vars"), dict):
                known |= set(play["vars"])
        known |= {t["register"] for _, t in tasks if isinstance(t.get("register"), str)}
        for path, task in tasks:
            for key, value in task.items():
                if key in ("when", "failed_when", "changed_when", "until") and isinstance(value, str):
                    self._names(value, (*path, key), known, expression=True, doc=pdoc)
                elif key not in ("name", "register", "tags"):
                    for spath, text in strings(value, (*path, key)):
                        if "{{" in text or "{%" in text:
                            self._names(text, spath, known, expression=False, doc=pdoc)
