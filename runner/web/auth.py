"""Who may post alerts: the receiver's webhook credentials, a bearer token and/or an HMAC
signature (``runner.alerts.signing``), or, on a laptop only, none."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from runner.alerts.signing import SIGNATURE_HEADER, Headers, verify_signature
from runner.errors import AuthError


@dataclass(frozen=True)
class WebhookAuth:
    """The intake's credentials; with neither set, only an explicit insecure mode admits requests."""

    token: str | None = None
    secret: str | None = None
    insecure: bool = False

    @property
    def configured(self) -> bool:
        """True when at least one credential is set."""
        return bool(self.token or self.secret)

    def check(self, headers: Headers, body: bytes, now: float | None = None) -> str:
        """Return how the request authenticated ('token', 'signature' or 'insecure'), or raise AuthError."""
        if not self.configured:
            if self.insecure:
                return "insecure"
            raise AuthError("intake has no credentials configured")
        bearer = headers.get("Authorization") or ""
        if self.token and bearer:
            scheme, _, given = bearer.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), self.token.encode()):
                return "token"
            if not self.secret or headers.get(SIGNATURE_HEADER) is None:
                raise AuthError("invalid bearer token")
        if self.secret and headers.get(SIGNATURE_HEADER) is not None:
            verify_signature(self.secret, headers, body, now)
            return "signature"
        wanted = " or ".join(w for w, on in (("a bearer token", self.token),
                                             (f"an {SIGNATURE_HEADER} signature", self.secret)) if on)
        raise AuthError(f"missing credentials: send {wanted}")


