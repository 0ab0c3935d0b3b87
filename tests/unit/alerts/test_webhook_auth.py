from __future__ import annotations

import pytest

from runner.alerts.signing import REPLAY_WINDOW, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from runner.errors import AuthError
from runner.web.auth import WebhookAuth

BODY = b'{"alerts": []}'
NOW = 1_800_000_000


def test_bearer_token() -> None:
    auth = WebhookAuth(token="t0ken")
    assert auth.check({"Authorization": "Bearer t0ken"}, BODY) == "token"
    assert auth.check({"Authorization": "bearer t0ken"}, BODY) == "token"
    for header in ("Bearer t0ke", "Bearer t0ken2", "Basic t0ken", "t0ken"):
        with pytest.raises(AuthError, match="invalid bearer token"):
            auth.check({"Authorization": header}, BODY)
    with pytest.raises(AuthError, match="missing credentials: send a bearer token"):
        auth.check({}, BODY)


def test_signature_with_replay_window() -> None:
    auth = WebhookAuth(secret="s3cret")
    headers = sign("s3cret", BODY, NOW)
    assert auth.check(headers, BODY, now=NOW + 10) == "signature"
    with pytest.raises(AuthError, match="invalid signature"):
        auth.check(headers, BODY + b" ", now=NOW)  # body changed
    with pytest.raises(AuthError, match="invalid signature"):
        auth.check(sign("other", BODY, NOW), BODY, now=NOW)
    with pytest.raises(AuthError, match="replay window"):
        auth.check(headers, BODY, now=NOW + REPLAY_WINDOW + 1)  # replayed later
    with pytest.raises(AuthError, match="replay window"):
        auth.check(headers, BODY, now=NOW - REPLAY_WINDOW - 1)  # from the future
    with pytest.raises(AuthError, match=f"malformed {TIMESTAMP_HEADER}"):
        auth.check({SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, BODY, now=NOW)
    with pytest.raises(AuthError, match="missing credentials"):
        auth.check({}, BODY, now=NOW)


def test_either_credential_when_both_are_configured() -> None:
    auth = WebhookAuth(token="t0ken", secret="s3cret")
    assert auth.check({"Authorization": "Bearer t0ken"}, BODY) == "token"
    assert auth.check(sign("s3cret", BODY, NOW), BODY, now=NOW) == "signature"
    signed_with_bad_token = {"Authorization": "Bearer nope", **sign("s3cret", BODY, NOW)}
    assert auth.check(signed_with_bad_token, BODY, now=NOW) == "signature"


def test_no_credentials_refuses_unless_explicitly_insecure() -> None:
    with pytest.raises(AuthError, match="no credentials configured"):
        WebhookAuth().check({}, BODY)
    assert WebhookAuth(insecure=True).check({}, BODY) == "insecure"
    # credentials configured: insecure mode does not switch the check off
    with pytest.raises(AuthError):
        WebhookAuth(token="t", insecure=True).check({}, BODY)


def test_errors_never_echo_a_secret() -> None:
    auth = WebhookAuth(token="super-secret-token", secret="super-secret-key")
    for headers in ({"Authorization": "Bearer wrong"}, sign("x", BODY, NOW), {}):
        with pytest.raises(AuthError) as e:
            auth.check(headers, BODY, now=NOW)
        assert "super-secret" not in str(e.value)
