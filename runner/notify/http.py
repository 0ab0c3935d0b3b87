"""POST JSON with urllib, and the one classification of HTTP failures every HTTP notifier shares.

Retryable: HTTP 5xx, 429, timeouts and connection errors. Not retryable: any other 4xx, a
redirect (never followed: a POST turned into a GET would drop the message and look delivered),
an invalid URL and a TLS certificate that does not verify. Reasons name the channel, never the
URL: for Slack and generic webhooks the URL is the secret.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from runner.catalog.models import Channel
from runner.notify.message import DeliveryError
from runner.notify.text import printable, redact

log = logging.getLogger("runner.notify")
USER_AGENT = "runbook-runner"
MAX_RESPONSE = 64 * 1024  # what we read of a response: enough for an error message


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would turn the POST into a GET without a body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def check_url(channel: Channel, url: str, var: str) -> str:
    """*url* if it is an absolute http(s) URL; else DeliveryError naming *var* (not the value)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(
            f"{channel.type} channel {channel.name}: {var} does not hold an http(s) URL", retryable=False
        )
    return url


def retryable_status(status: int) -> bool:
    """Whether an HTTP failure status may go away by itself: 5xx and 429 yes, other 4xx no."""
    return status >= 500 or status == 429


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def post_json(
    channel: Channel,
    url: str,
    body: bytes,
    *,
    timeout: float,
    secrets: Iterable[str],
    headers: dict[str, str] | None = None,
) -> int:
    """POST *body* as JSON to *url*; the 2xx status, or DeliveryError (classified, secrets redacted)."""
    what = f"{channel.type} channel {channel.name}"
    parts = urllib.parse.urlsplit(url)
    # The URL, its path and query, and each long path segment (the tokens of a Slack hook URL).
    hidden = [url, parts.path, parts.query, *(p for p in parts.path.split("/") if len(p) >= 8), *secrets]
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", USER_AGENT)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
            response.read(MAX_RESPONSE)
    except urllib.error.HTTPError as e:
        try:
            detail = printable(e.read(MAX_RESPONSE))
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            e.close()
        wait = retry_after(e.headers.get("Retry-After")) if e.headers is not None else None
        reason = f"{what}: HTTP {e.code}" + (f": {redact(detail, hidden)}" if detail else "")
        if 300 <= e.code < 400:
            reason = f"{what}: HTTP {e.code} redirect (not followed; fix the configured URL)"
        raise DeliveryError(reason, retryable=retryable_status(e.code), retry_after=wait) from None
    except urllib.error.URLError as e:
        raise network_error(what, e.reason, timeout) from None
    except (OSError, http.client.HTTPException) as e:
        raise network_error(what, e, timeout) from None
    if not 200 <= status < 300:  # 1xx never reaches here; anything else odd is the receiver's fault
        raise DeliveryError(f"{what}: unexpected HTTP {status}", retryable=True)
    log.debug("%s: HTTP %d in %.0f ms", what, status, (time.monotonic() - started) * 1000)
    return status


def network_error(what: str, error: object, timeout: float) -> DeliveryError:
    """A DeliveryError for a failure below HTTP; built from the error's type, never its text.

    (The text of some errors carries the host name or the URL.)
    """
    if isinstance(error, TimeoutError):
        return DeliveryError(f"{what}: timed out after {timeout:g} s", retryable=True)
    if isinstance(error, ssl.SSLCertVerificationError):
        return DeliveryError(f"{what}: TLS certificate verification failed", retryable=False)
    if isinstance(error, ssl.SSLError):
        return DeliveryError(f"{what}: TLS error ({type(error).__name__})", retryable=True)
    if isinstance(error, ConnectionRefusedError):
        return DeliveryError(f"{what}: connection refused", retryable=True)
    if isinstance(error, socket.gaierror):
        return DeliveryError(f"{what}: host name lookup failed", retryable=True)
    if isinstance(error, http.client.HTTPException | ConnectionError):
        return DeliveryError(f"{what}: connection failed ({type(error).__name__})", retryable=True)
    if isinstance(error, OSError):
        return DeliveryError(f"{what}: network error ({type(error).__name__})", retryable=True)
    return DeliveryError(f"{what}: request failed ({type(error).__name__})", retryable=True)
