"""The executor with real ansible-runner playbooks against localhost."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from runner.catalog.load import load_catalog
from runner.records import RunStatus, StepStatus
from runner.runs import executor
from runner.runs.executor import Plan, execute
from tests.conftest import CATALOG, runbook_yaml

PAYLOAD = "{{ lookup('pipe', 'touch %s') }}"


def cmdlines_containing(token: str) -> list[str]:
    """Command lines of live processes that contain *token*."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if token in cmd:
                found.append(cmd)
    return found


def plan_for(
    root: Path,
    name: str,
    params: dict[str, object],
    hosts: tuple[str, ...] = ("web-1",),
    dry_run: bool = False,
) -> Plan:
    cat = load_catalog(root)
    assert cat.problems == [], cat.problems
    return Plan(cat.runbooks[name], params, list(hosts), cat.root, cat.inventory, dry_run=dry_run)


def custom(
    make_catalog,
    name: str,
    steps: str,
    *,
    authority_timeout: str = "1m",
    params: str = "",
    verify: str = "",
    files: dict[str, str] | None = None,
) -> Path:  # type: ignore[no-untyped-def]
    text = (
        runbook_yaml(name, match="  - alertname: Test")
        .replace("steps:\n  - name: ping\n    task: {ansible.builtin.ping: {}}\n", f"steps:\n{steps}")
        .replace("timeout: 5m", f"timeout: {authority_timeout}")
        .replace("params:\n", f"params:\n{params}")
    )
    if verify:
        text += f"verify:\n{verify}"
    return make_catalog({f"{name}.yaml": text, **(files or {})})


def test_success_removes_old_logs_and_verify_checks_it(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    old = [logs / "app.log.1", logs / "sub" / "x.gz"]
    for f in old:
        f.write_text("old")
        os.utime(f, (time.time() - 10 * 86400,) * 2)
    fresh = logs / "app.log.2"
    fresh.write_text("new")
    seen = []
    out = execute(
        plan_for(CATALOG, "disk-full-cleanup", {"host": "web-1", "log_dir": str(logs), "max_age_days": 3}),
        on_step=lambda s: seen.append((s.index, s.status)),
    )
    assert out.status is RunStatus.SUCCEEDED, out.message
    assert out.message == "all steps and verify checks passed"
    assert not any(f.exists() for f in old) and fresh.exists()
    assert [(s.kind, s.name, s.status) for s in out.steps] == [
        ("step", "Find rotated logs older than max_age_days", StepStatus.OK),
        ("step", "Remove them", StepStatus.CHANGED),
        ("verify", "No rotated log older than max_age_days remains", StepStatus.OK),
        ("verify", "Assert none is left", StepStatus.OK),
    ]
    assert '"matched": 2' in out.steps[0].stdout
    assert all(s.duration is not None and s.duration >= 0 for s in out.steps)
    # live progress: each step was reported running, then finished, in order
    assert seen[0] == (0, StepStatus.RUNNING) and (1, StepStatus.CHANGED) in seen


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    old = tmp_path / "old.log.1"
    old.write_text("old")
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    out = execute(
        plan_for(
            CATALOG,
            "disk-full-cleanup",
            {"host": "web-1", "log_dir": str(tmp_path), "max_age_days": 3},
            dry_run=True,
        )
    )
    assert out.status is RunStatus.SUCCEEDED, out.message
    assert old.exists()
    assert [s.kind for s in out.steps] == ["step", "step"]  # verify has nothing to check
    # and the record does not claim it checked anything
    assert out.message == "dry run: all steps passed in check mode; verify checks not run"


def test_failing_step_is_recorded_and_stops_the_run(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    out = execute(
        plan_for(
            CATALOG,
            "rotate-oversized-file",
            {"host": "web-2", "path": str(missing), "compress": False},
            hosts=("web-2",),
        )
    )
    assert out.status is RunStatus.FAILED
    assert out.message.startswith("step 'Keep one copy as FILE.1' failed on web-2")
    assert [s.status for s in out.steps] == [StepStatus.FAILED]  # nothing after the failure ran
    assert out.steps[0].message


def test_rotate_really_rotates(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_bytes(b"x" * 2_000_000)
    out = execute(
        plan_for(
            CATALOG,
            "rotate-oversized-file",
            {"host": "web-2", "path": str(big), "compress": True},
            hosts=("web-2",),
        )
    )
    assert out.status is RunStatus.SUCCEEDED, out.message
    assert big.stat().st_size == 0
    assert (tmp_path / "big.log.1.gz").exists()


def test_spool_playbook_step_quarantines_old_files(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    stuck, fresh = spool / "stuck-1", spool / "fresh-1"
    stuck.write_text("m")
    fresh.write_text("m")
    os.utime(stuck, (time.time() - 3600,) * 2)
    out = execute(
        plan_for(
            CATALOG,
            "clear-stuck-spool",
            {"spool_dir": str(spool), "older_than_minutes": 30},
            hosts=("relay-1",),
        )
    )
    assert out.status is RunStatus.SUCCEEDED, out.message
    assert not stuck.exists() and fresh.exists()
    assert (tmp_path / "spool.quarantine" / "stuck-1").exists()
    playbook_step = out.steps[0]
    assert playbook_step.name == "Quarantine stuck spool files" and playbook_step.changed
    assert "[Move each stuck file into quarantine]" in playbook_step.stdout


def test_restart_from_stale_pidfile_starts_the_service(catalog_copy: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    inventory = catalog_copy / "inventory.yaml"
    inventory.write_text(
        inventory.read_text().replace("service_bin_dir: /usr/local/bin", f"service_bin_dir: {bin_dir}")
    )
    pidfile = tmp_path / "svc.pid"
    pidfile.write_text("999999\n")  # no such process
    token = f"{os.getpid()}{int(time.time())}"
    start = bin_dir / "payments-api-start"
    start.write_text(f"#!/bin/sh\nsleep 3{token} >/dev/null 2>&1 &\necho $! > {pidfile}\n")
    start.chmod(0o755)
    params = {"host": "pay-1", "service": "payments-api", "pidfile": str(pidfile)}
    try:
        out = execute(plan_for(catalog_copy, "restart-from-pidfile", params, hosts=("pay-1",)))
        assert out.status is RunStatus.SUCCEEDED, out.message
        new_pid = int(pidfile.read_text().strip())
        assert new_pid != 999999
        os.kill(
            new_pid, 0
        )  # the restarted service is alive after the run: a run that ends well reaps nothing
        statuses = {s.name: s.status for s in out.steps}
        assert statuses["Remove the stale pidfile"] is StepStatus.CHANGED
        assert statuses["Start the service"] is StepStatus.CHANGED
    finally:
        os.system(f"pkill -f 'sleep 3{token}'")


def test_retry_then_success(make_catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    counter = tmp_path / "attempts"
    flaky = (
        "import sys,os; p=sys.argv[1]; n=int(open(p).read()) if os.path.exists(p) else 0; "
        "open(p,'w').write(str(n+1)); sys.exit(0 if n >= 1 else 3)"
    )
    steps = f"""  - name: flaky
    task:
      ansible.builtin.command:
        argv: [python3, -c, "{flaky}", "{{{{ counter }}}}"]
    retries: 2
    delay: 0s
"""
    root = custom(make_catalog, "flaky", steps, params="  counter: {type: string}\n")
    out = execute(plan_for(root, "flaky", {"host": "web-1", "counter": str(counter)}))
    assert out.status is RunStatus.SUCCEEDED, out.message
    assert out.message == "all steps passed (the runbook has no verify checks)"
    assert counter.read_text() == "2"
    assert out.steps[0].retries == 1


@pytest.mark.parametrize("level", ["step", "run"])
def test_timeouts_kill_every_process_of_the_run(make_catalog, level: str) -> None:  # type: ignore[no-untyped-def]
    token = f"{317 + (level == 'run')}{os.getpid()}"
    step_timeout = "    timeout: 2s\n" if level == "step" else ""
    steps = f"""  - name: hang
    task: {{ansible.builtin.command: {{argv: [sleep, "{token}"]}}}}
{step_timeout}"""
    root = custom(make_catalog, "hang", steps, authority_timeout="2s" if level == "run" else "1m")
    payloads_before = set(Path(tempfile.gettempdir()).glob("ansible_*_payload_*"))
    started = time.monotonic()
    out = execute(plan_for(root, "hang", {"host": "web-1"}))
    elapsed = time.monotonic() - started
    assert out.status is RunStatus.TIMED_OUT
    assert out.steps[0].status is StepStatus.TIMED_OUT
    assert cmdlines_containing(f"sleep {token}") == []
    # the module wrapper was let to clean up the payload it unpacked, not SIGKILLed first
    assert set(Path(tempfile.gettempdir()).glob("ansible_*_payload_*")) - payloads_before == set()
    assert elapsed < 30  # generous: it returns in about 2-3 s, not the sleep's length


def test_cancel_stops_the_run_and_kills_the_step(make_catalog) -> None:  # type: ignore[no-untyped-def]
    import threading

    token = f"319{os.getpid()}"
    root = custom(
        make_catalog,
        "hang",
        f"""  - name: hang
    task: {{ansible.builtin.command: {{argv: [sleep, "{token}"]}}}}
""",
    )
    cancel = threading.Event()
    timer = threading.Timer(2.0, cancel.set)
    timer.start()
    out = execute(plan_for(root, "hang", {"host": "web-1"}), cancel=cancel)
    timer.cancel()
    assert out.status is RunStatus.CANCELED
    assert cmdlines_containing(f"sleep {token}") == []


def test_verify_failure_fails_the_run(make_catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    verify = """  - name: the file must exist
    task: {ansible.builtin.stat: {path: "{{ marker }}"}}
    register: st
  - name: assert it
    task: {ansible.builtin.assert: {that: st.stat.exists, fail_msg: "marker missing"}}
"""
    root = custom(
        make_catalog,
        "checks",
        "  - name: ping\n    task: {ansible.builtin.ping: {}}\n",
        params="  marker: {type: string}\n",
        verify=verify,
    )
    out = execute(plan_for(root, "checks", {"host": "web-1", "marker": str(tmp_path / "nope")}))
    assert out.status is RunStatus.FAILED
    assert out.message == "verify 'assert it' failed on web-1: marker missing"


INJECTION_STEPS = """  - name: param in module args
    task: {ansible.builtin.debug: {msg: "{{ evil }}"}}
  - name: param in argv
    task: {ansible.builtin.command: {argv: [echo, "{{ evil }}"]}}
  - name: param in a file path
    task: {ansible.builtin.stat: {path: "/tmp/{{ evil }}"}}
  - name: param in a condition
    task: {ansible.builtin.debug: {msg: checked}}
    when: evil != ''
  - name: param in a loop
    task: {ansible.builtin.debug: {msg: "{{ item }}"}}
    loop: ["{{ evil }}", "{{ nested }}"]
  - name: param in a playbook
    playbook: playbooks/echo.yml
"""
ECHO_PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.debug: {msg: "{{ evil }}"}
    - ansible.builtin.command: {argv: [echo, "{{ evil }}"]}
"""


@pytest.mark.parametrize("wrapped", [True, False], ids=["unsafe-wrapped", "control-unwrapped"])
def test_injection_payload_in_params_is_inert(
    make_catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:  # type: ignore[no-untyped-def]
    """Alert text reaches every place a param can go and is never run; the control proves the test bites."""
    (tmp_path / "catalog" / "playbooks").mkdir(parents=True)
    (tmp_path / "catalog" / "playbooks" / "echo.yml").write_text(ECHO_PLAYBOOK)
    pwned = tmp_path / "pwned"
    root = custom(
        make_catalog,
        "inject",
        INJECTION_STEPS,
        params="  evil: {type: string}\n  nested: {type: string}\n",
        verify='  - name: param in verify\n    task: {ansible.builtin.debug: {msg: "{{ evil }}"}}\n',
    )
    if not wrapped:
        monkeypatch.setattr(executor, "unsafe", lambda value: value)
    payload = PAYLOAD % pwned
    nested = "{% for x in [1] %}" + PAYLOAD % (str(pwned) + "2") + "{% endfor %}"
    out = execute(plan_for(root, "inject", {"host": "web-1", "evil": payload, "nested": nested}))
    if wrapped:
        assert out.status is RunStatus.SUCCEEDED, out.message
        assert not pwned.exists() and not Path(str(pwned) + "2").exists()
        argv_step = next(s for s in out.steps if s.name == "param in argv")
        assert argv_step.stdout.strip() == payload  # delivered verbatim, as data
    else:
        assert pwned.exists()  # without the unsafe marking, Ansible would have run it


def test_each_run_gets_a_private_data_dir_that_is_removed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = plan_for(
        CATALOG, "disk-full-cleanup", {"host": "web-1", "log_dir": str(tmp_path), "max_age_days": 3}
    )
    import threading

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(execute(plan, work_dir=work))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in results] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    assert list(work.iterdir()) == []
