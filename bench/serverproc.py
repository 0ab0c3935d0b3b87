"""The server process a benchmark drives: a free port, readiness, its log, a clean stop."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def log_tail(log: Path, lines: int = 20) -> str:
    """The last lines the server wrote."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, path: str, limit: float = 60.0) -> None:
    """Return once GET *path* answers 200; exit if the server dies or is not ready within *limit* s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode} before it was ready:\n{log_tail(log)}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            time.sleep(0.05)
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    sys.exit(f"the server was not ready within {limit:.0f} s:\n{log_tail(log)}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server, then kill it if it has not gone within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
