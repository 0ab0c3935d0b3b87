"""Who may post alerts: a bearer token and/or an HMAC-SHA256 signature with a replay window.

Signature scheme (for senders that can sign; Alertmanager and Grafana use the token):

    X-Runbook-Timestamp: <unix seconds>
    X-Runbook-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A signature older or newer than the replay window is refused, so a captured
request cannot be replayed later. Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Protocol

from runner.errors import AuthError

TIMESTAMP_HEADER = "X-Runbook-Timestamp"
SIGNATURE_HEADER = "X-Runbook-Signature"
REPLAY_WINDOW = 300  # seconds


class Headers(Protocol):
    """Request headers: a case-insensitive lookup, as Flask's are."""

    def get(self, key: str, /) -> str | None: ...


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers that sign *body* (for senders and tests)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"sha256={mac}"}


def verify_signature(secret: str, headers: Headers, body: bytes, now: float | None = None) -> None:
    """Raise AuthError unless the signature is valid and fresh."""
    ts = headers.get(TIMESTAMP_HEADER) or ""
    if not (ts.isascii() and ts.isdigit()) or len(ts) > 12:
        raise AuthError(f"missing or malformed {TIMESTAMP_HEADER}")
    age = (time.time() if now is None else now) - int(ts)
    if abs(age) > REPLAY_WINDOW:
        raise AuthError(f"signature timestamp outside the {REPLAY_WINDOW} s replay window")
    given = headers.get(SIGNATURE_HEADER) or ""
    expected = sign(secret, body, int(ts))[SIGNATURE_HEADER]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("invalid signature")
