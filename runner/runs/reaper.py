"""Kill every process of a run, found by a marker in its environment.

ansible-core's worker calls ``setsid``, so killing runner's process group
misses the task's children (a hung ``sleep`` survives a timeout). Each run
exports a unique marker variable; every descendant inherits it, whatever
session or group it moved to, and ``/proc/PID/environ`` shows it.

Ansible's module wrapper (``AnsiballZ_*.py``) unpacks the module into a
``/tmp/ansible_*_payload_*`` directory and removes it in a ``finally``. A
SIGKILL skips that, so the wrappers are spared at first: once the command
they wait for is killed they return and clean up; only wrappers still alive
after a grace period are killed too.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")
POLL = 0.05  # seconds between rounds
WRAPPER_GRACE = 1.0  # seconds a module wrapper gets to clean up after its command died
ROUNDS = 60


def processes_with(name: str, value: str) -> list[int]:
    """PIDs of processes whose environment holds ``name=value`` (ours only: others are unreadable)."""
    needle = f"{name}={value}".encode()
    found = []
    me = os.getpid()
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _is_module_wrapper(pid: int) -> bool:
    try:
        return b"AnsiballZ_" in (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def _kill(pids: list[int]) -> int:
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def reap(name: str, value: str) -> int:
    """SIGKILL every process carrying the marker until none is left; return how many were killed."""
    killed = 0
    waited = 0.0
    for _ in range(ROUNDS):
        pids = processes_with(name, value)
        if not pids:
            break
        wrappers = [p for p in pids if _is_module_wrapper(p)]
        others = [p for p in pids if p not in wrappers]
        if others:
            killed += _kill(others)
        elif waited >= WRAPPER_GRACE:
            killed += _kill(wrappers)
        else:
            waited += POLL
        time.sleep(POLL)
    return killed
