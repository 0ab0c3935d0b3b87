"""Run a runbook's steps through ansible-runner, one private data dir per run.

The one typed entry point is :func:`execute`. What we learned from
ansible-runner 2.4 / ansible-core 2.19 and handle here:

* runs that share a private data dir corrupt each other's extravars,
  inventory and settings, so every run gets a fresh one, removed afterwards;
* ``suppress_env_files=True`` silently drops ``settings=``, so it stays off
  (the dir is private and short-lived anyway);
* runner checks its job timeout only every ``pexpect_timeout`` (5 s by
  default): we set it low so a 2 s timeout returns in about 2 s;
* a timeout or cancel does not kill the task's processes (ansible's worker
  calls ``setsid``): every process of the run carries a unique marker in its
  environment, and a run that timed out or was canceled has every process
  carrying it killed (:mod:`runner.runs.reaper`). A run that ends otherwise keeps
  them: a service a runbook (re)started on a local host must survive;
* extra vars are templated: every param reaches Ansible wrapped as
  ``__ansible_unsafe`` so alert text is data, never a template;
* a blocking ``event_handler`` makes ``run()`` raise: ours is a queue put.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ansible_runner  # type: ignore[import-untyped]

from runner.catalog.inventory import Inventory
from runner.catalog.models import Runbook, Step
from runner.records import RunStatus, StepRecord, StepStatus, tail
from runner.routing.params import REDACTED
from runner.runs import reaper
from runner.yamlsource import read

MARKER_VAR = "RUNBOOK_RUN_MARKER"
STEP_PLAY_PREFIX = "runbook-runner step "
PEXPECT_TIMEOUT = 0.2  # seconds between runner's checks of the job timeout and cancel callback
_DONE = object()


@dataclass(frozen=True)
class Plan:
    """Everything :func:`execute` needs: a validated runbook, checked params, resolved hosts."""

    runbook: Runbook
    params: Mapping[str, Any]
    hosts: Sequence[str]
    catalog_root: Path
    inventory: Inventory
    dry_run: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    secrets: tuple[str, ...] = ()  # values scrubbed from every output before it is recorded
    attempt: int = 1  # which claim of the run this is (an idempotent run may be queued again)


@dataclass
class Outcome:
    """What happened: the run's final status and every step on every host."""

    status: RunStatus
    steps: list[StepRecord]
    message: str = ""
    rc: int | None = None


StepCallback = Callable[[StepRecord], None]


def unsafe(value: Any) -> Any:
    """Wrap every string inside *value* so Ansible treats it as data, never as a template."""
    if isinstance(value, str):
        return {"__ansible_unsafe": value}
    if isinstance(value, Mapping):
        return {str(k): unsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unsafe(v) for v in value]
    return value


def _seconds(step: Step) -> int | None:
    return max(1, int(step.timeout.total_seconds())) if step.timeout else None


def _retry(task: dict[str, Any], step: Step, register: str) -> None:
    if step.retries:
        task["register"] = register
        task["retries"] = step.retries
        task["until"] = f"{register} is succeeded"
        task["delay"] = int(step.delay.total_seconds()) if step.delay is not None else 1


def _inline_task(step: Step, index: int) -> dict[str, Any]:
    task: dict[str, Any] = {"name": step.name, step.module or "": step.args}
    if step.register:
        task["register"] = step.register
    _retry(task, step, step.register or f"_runbook_step_{index}")
    if step.when:
        task["when"] = step.when
    if step.loop is not None:
        task["loop"] = step.loop
    for key in ("failed_when", "changed_when"):
        if getattr(step, key) is not None:
            task[key] = getattr(step, key)
    if step.become:
        task["become"] = True
    if step.timeout:
        task["timeout"] = _seconds(step)
    return task


def _playbook_plays(step: Step, index: int, root: Path) -> list[dict[str, Any]]:
    """The plays of a playbook step, aimed at the run's hosts, with the step's timeout and retries."""
    plays = read(root / str(step.playbook)).data
    out = []
    for play in plays:
        play = dict(play, hosts="all")
        if step.timeout and "timeout" not in play:
            play["timeout"] = _seconds(step)
        for key in ("pre_tasks", "tasks", "post_tasks"):
            tasks = []
            for n, task in enumerate(play.get(key) or []):
                task = dict(task)
                if step.retries and "until" not in task and "block" not in task:
                    _retry(task, step, task.get("register") or f"_runbook_step_{index}_{key}_{n}")
                tasks.append(task)
            if key in play:
                play[key] = tasks
        out.append(play)
    return out


def build_playbook(plan: Plan) -> list[dict[str, Any]]:
    """The generated playbook: one marker play per step, then its task or its playbook's plays."""
    plays: list[dict[str, Any]] = []
    # A dry run changes nothing, so there is nothing for verify steps to check.
    steps = [*plan.runbook.steps, *(() if plan.dry_run else plan.runbook.verify)]
    for index, step in enumerate(steps):
        marker: dict[str, Any] = {"name": f"{STEP_PLAY_PREFIX}{index}", "hosts": "all",
                                  "gather_facts": False, "tasks": []}
        if step.module is not None:
            marker["tasks"] = [_inline_task(step, index)]
            plays.append(marker)
        else:
            plays.append(marker)
            plays.extend(_playbook_plays(step, index, plan.catalog_root))
    return plays


def build_inventory(plan: Plan, data_dir: Path | None = None) -> dict[str, Any]:
    """An inventory of exactly the run's hosts with their variables from the repository's inventory.

    Hosts reached with the local connection run modules with this Python (interpreter discovery
    picks broken shims on some machines) and keep their module temp files inside the run's dir;
    remote hosts keep Ansible's own defaults unless the inventory says otherwise.
    """
    interpreter = os.environ.get("RUNBOOK_PYTHON_INTERPRETER", sys.executable)
    hosts = {}
    for host in plan.hosts:
        variables = dict(plan.inventory.host_vars(host))
        if variables.get("ansible_connection") == "local":
            variables.setdefault("ansible_python_interpreter", interpreter)
            if data_dir is not None:
                variables.setdefault("ansible_remote_tmp", str(data_dir / "tmp" / "remote"))
        hosts[host] = variables
    return {"all": {"hosts": hosts}}


def _environment(data_dir: Path, marker: str) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    # ansible-runner passes our whole environment on to every task: blank our own settings, which
    # can hold secrets (a database URL with its password), so a started service never inherits them.
    blanked = {name: "" for name in os.environ if name.startswith("RUNBOOK_")}
    return {
        **blanked,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(data_dir / "tmp" / "local"),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_SYSTEM_WARNINGS": "0",
        "ANSIBLE_GATHERING": "explicit",
        MARKER_VAR: marker,
    }


class _Recorder:
    """Turns ansible-runner events into StepRecords, one per step and host."""

    def __init__(self, plan: Plan, on_step: StepCallback | None) -> None:
        self.steps = [*plan.runbook.steps, *plan.runbook.verify]
        self.n_steps = len(plan.runbook.steps)
        self.on_step = on_step
        self.secrets = tuple(s for s in plan.secrets if s)
        self.current: int | None = None
        self.records: dict[tuple[int, str], StepRecord] = {}

    def _record(self, host: str) -> StepRecord | None:
        if self.current is None:
            return None
        key = (self.current, host)
        if key not in self.records:
            step = self.steps[self.current]
            self.records[key] = StepRecord(
                index=self.current, name=step.name,
                kind="step" if self.current < self.n_steps else "verify",
                host=host, status=StepStatus.RUNNING, started_at=datetime.now(UTC),
            )
        return self.records[key]

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            name = str(data.get("name") or data.get("play") or "")
            if name.startswith(STEP_PLAY_PREFIX):
                self.current = int(name.removeprefix(STEP_PLAY_PREFIX))
            return
        if not kind.startswith("runner_on_") and kind != "runner_retry":
            return
        host = str(data.get("host", ""))
        record = self._record(host)
        if record is None:
            return
        res = data.get("res") or {}
        if kind == "runner_on_start":
            if record.status is StepStatus.SKIPPED:  # a playbook step goes on after a skipped task
                record.status = StepStatus.RUNNING
        elif kind == "runner_retry":
            record.retries += 1
            return
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            self._finish(record, kind, data, res)
        else:
            return
        if self.on_step is not None:
            self.on_step(record)

    def _finish(self, record: StepRecord, kind: str, data: dict[str, Any], res: dict[str, Any]) -> None:
        ignored = bool(data.get("ignore_errors"))
        if kind == "runner_on_failed" and not ignored:
            timed_out = bool(res.get("timedout"))  # ansible-core's own mark of a task timeout
            record.status = StepStatus.TIMED_OUT if timed_out else StepStatus.FAILED
        elif kind == "runner_on_unreachable":
            record.status = StepStatus.UNREACHABLE
        elif record.status not in (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.UNREACHABLE):
            if kind == "runner_on_skipped":
                if record.status is StepStatus.RUNNING:
                    record.status = StepStatus.SKIPPED
            else:
                changed = bool(res.get("changed"))
                record.changed = record.changed or changed
                record.status = StepStatus.CHANGED if record.changed else StepStatus.OK
        record.finished_at = datetime.now(UTC)
        if isinstance(res.get("rc"), int):
            record.rc = res["rc"]
        prefix = f"[{data.get('task', '')}]\n" if self.steps[record.index].playbook else ""
        stdout = res.get("stdout")
        if stdout is None:
            shown = {k: v for k, v in res.items() if not k.startswith("_") and k not in
                     ("invocation", "stdout_lines", "stderr_lines", "msg", "changed", "failed")}
            stdout = json.dumps(shown, default=str, sort_keys=True) if shown else ""
        record.stdout = _append(record.stdout, self.scrub(prefix + str(stdout)))
        if res.get("stderr"):
            record.stderr = _append(record.stderr, self.scrub(prefix + str(res["stderr"])))
        if res.get("msg"):
            record.message = tail(self.scrub(str(res["msg"])), 1024)

    def scrub(self, text: str) -> str:
        """*text* with every secret replaced, as written and as JSON escapes it; before any cut."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED).replace(json.dumps(secret)[1:-1], REDACTED)
        return text

    def close(self, status: RunStatus) -> list[StepRecord]:
        unfinished = {RunStatus.TIMED_OUT: StepStatus.TIMED_OUT, RunStatus.CANCELED: StepStatus.CANCELED}
        for record in self.records.values():
            if record.status is StepStatus.RUNNING:
                record.status = unfinished.get(status, StepStatus.FAILED)
                record.finished_at = datetime.now(UTC)
                if self.on_step is not None:
                    self.on_step(record)
        return sorted(self.records.values(), key=lambda r: (r.index, r.host))


def _append(before: str, text: str) -> str:
    return tail(f"{before}\n{text}" if before else text)


def _status(runner_status: str, steps: list[StepRecord], n_steps: int, *, n_verify: int,
            dry_run: bool) -> tuple[RunStatus, str]:
    bad = (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.UNREACHABLE)
    if runner_status == "timeout":
        return RunStatus.TIMED_OUT, "the run exceeded authority.timeout"
    if runner_status == "canceled":
        return RunStatus.CANCELED, "the run was canceled"
    failed = [s for s in steps if s.status in bad]
    if failed:
        first = failed[0]
        what = "verify" if first.index >= n_steps else "step"
        status = RunStatus.TIMED_OUT if first.status is StepStatus.TIMED_OUT else RunStatus.FAILED
        detail = f": {first.message}" if first.message else ""
        return status, f"{what} '{first.name}' {first.status.value} on {first.host}{detail}"
    if runner_status != "successful":
        return RunStatus.FAILED, f"ansible-runner ended with status {runner_status}"
    if dry_run:  # verify steps did not run: a dry run changes nothing for them to check
        return RunStatus.SUCCEEDED, "dry run: all steps passed in check mode; verify checks not run"
    if n_verify:
        return RunStatus.SUCCEEDED, "all steps and verify checks passed"
    return RunStatus.SUCCEEDED, "all steps passed (the runbook has no verify checks)"


def _enqueue(events: queue.Queue[Any]) -> Callable[[dict[str, Any]], bool]:
    """An event handler that never blocks: a blocking handler makes runner's run() raise."""

    def handler(event: dict[str, Any]) -> bool:
        events.put_nowait(event)
        return True

    return handler


def execute(
    plan: Plan,
    *,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
    work_dir: Path | None = None,
) -> Outcome:
    """Run *plan* to the end (or its timeout, or *cancel*); never leaves a process or a file behind."""
    marker = f"{plan.run_id}.{plan.attempt}"  # a worker recovering the run finds this attempt's orphans
    stop = cancel if cancel is not None else threading.Event()
    data_dir = Path(tempfile.mkdtemp(prefix=f"runbook-{plan.run_id[:12]}-", dir=work_dir))
    try:
        for sub in ("project", "inventory", "env", "tmp/local", "tmp/remote"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
        (data_dir / "project" / "main.yml").write_text(json.dumps(build_playbook(plan)))
        (data_dir / "inventory" / "hosts.json").write_text(json.dumps(build_inventory(plan, data_dir)))
        (data_dir / "env" / "extravars").write_text(json.dumps(unsafe(dict(plan.params))))
        events: queue.Queue[Any] = queue.Queue()
        recorder = _Recorder(plan, on_step)
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(data_dir),
            playbook="main.yml",
            inventory=str(data_dir / "inventory" / "hosts.json"),
            envvars=_environment(data_dir, marker),
            settings={"pexpect_timeout": PEXPECT_TIMEOUT, "suppress_ansible_output": True},
            timeout=max(1, int(plan.runbook.authority.timeout.total_seconds())),
            cmdline="--check --diff" if plan.dry_run else None,
            # Always ours: without a cancel callback, ansible-runner installs process-wide SIGINT and
            # SIGTERM handlers that it never restores.
            cancel_callback=stop.is_set,
            event_handler=_enqueue(events),
            finished_callback=lambda _r: events.put(_DONE),
            ident=plan.run_id,
            quiet=True,
        )
        while True:
            try:
                item = events.get(timeout=1.0)
            except queue.Empty:
                if thread.is_alive():
                    continue
                break  # the runner thread died without its finished callback: do not wait forever
            if item is _DONE:
                break
            recorder.handle(item)
        thread.join()
        steps = recorder.close(RunStatus.TIMED_OUT if runner.status == "timeout" else
                               RunStatus.CANCELED if runner.status == "canceled" else RunStatus.FAILED)
        status, message = _status(str(runner.status), steps, len(plan.runbook.steps),
                                  n_verify=len(plan.runbook.verify), dry_run=plan.dry_run)
        message = recorder.scrub(message)
        if status in (RunStatus.TIMED_OUT, RunStatus.CANCELED):
            reaper.reap(MARKER_VAR, marker)
        return Outcome(status, steps, message, runner.rc)
    except BaseException:
        reaper.reap(MARKER_VAR, marker)
        raise
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
