"""Kill every process of a run, found by a marker in its environment.

ansible-core's worker calls ``setsid``, so killing runner's process group
misses the task's children (a hung ``sleep`` survives a timeout). Each run
exports a unique marker variable; every descendant inherits it, whatever
session or group it moved to, and ``/proc/PID/environ`` shows it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


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


def reap(name: str, value: str, attempts: int = 20) -> int:
    """SIGKILL every process carrying the marker until none is left; return how many were killed."""
    killed = 0
    for _ in range(attempts):
        pids = processes_with(name, value)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return killed
