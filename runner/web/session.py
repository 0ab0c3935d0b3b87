"""Dashboard sessions: log in with an operator token, keep a signed cookie, check a CSRF token on every form.

The cookie (Flask's signed session) holds the identity's name and a binding to its token
(an HMAC of the token's digest under the signing key), never the token. Every request reads
the role and teams again from the tokens file the process loaded, so a name removed from the
file, or given a new token, loses its sessions at its next request to a process that loaded
that file. The cookie is HttpOnly, SameSite=Lax (a link from chat opens the dashboard logged
in, while no cross-site POST carries it) and Secure when the request came over TLS.

The signing key is ``RUNBOOK_SECRET_KEY``. Without it each process makes its own: sessions
then end when the server restarts, and do not span several servers behind one address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from flask import Flask, current_app, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import Forbidden

from runner.web.state import runtime
from runner.web.tokens import LOCAL_ADMIN, Identity

log = logging.getLogger("runner.web")
LIFETIME = timedelta(hours=12)  # one long on-call shift; then the token is asked for again
CSRF_FIELD = "csrf_token"


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request itself came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)


def init_app(app: Flask, secret_key: str | None) -> None:
    """Sign *app*'s sessions with *secret_key* (or a key of this process only) and set the cookie's flags."""
    if not secret_key:
        log.info("no RUNBOOK_SECRET_KEY: dashboard sessions last until this process stops")
    app.secret_key = secret_key or secrets.token_hex(32)
    app.session_interface = _Sessions()
    app.config.update(SESSION_COOKIE_NAME="runbook_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=LIFETIME)


def csrf_token() -> str:
    """This session's CSRF token, made on first use; every form carries it in a hidden field."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Forbidden unless the posted form carries this session's CSRF token."""
    sent = request.form.get(CSRF_FIELD, "")
    known = session.get("csrf")
    if not isinstance(known, str) or not hmac.compare_digest(sent.encode(), known.encode()):
        raise Forbidden("this form's CSRF token is missing or wrong: reload the page and try again")


def _binding(digest: bytes) -> str:
    key = current_app.secret_key
    raw = key.encode() if isinstance(key, str) else bytes(key or b"")
    return hmac.new(raw, b"runbook-session:" + digest, hashlib.sha256).hexdigest()


def can_log_in() -> bool:
    """True when a tokens file is loaded (without one nobody logs in; see :func:`identity`)."""
    return runtime().config.tokens is not None


def identity() -> Identity | None:
    """Who this session is, re-read from the tokens file; None when not logged in.

    Without a tokens file, ``--insecure-local`` makes everyone the local admin, as in the API.
    """
    state = runtime()
    tokens = state.config.tokens
    if tokens is None:
        return LOCAL_ADMIN if state.auth.insecure and not state.auth.configured else None
    name, bound = session.get("who"), session.get("bind")
    if not isinstance(name, str) or not isinstance(bound, str):
        return None
    found = tokens.named(name)
    if found is None or not hmac.compare_digest(_binding(found[0]), bound):
        session.pop("who", None)  # revoked or rotated: this cookie is worth nothing now
        session.pop("bind", None)
        return None
    return found[1]


def log_in(token: str) -> Identity:
    """Start a session for the identity of *token*; AuthError when it is not valid."""
    tokens = runtime().config.tokens
    assert tokens is not None  # the login form is offered only with a tokens file
    who = tokens.verify(token)
    found = tokens.named(who.name)
    assert found is not None
    session.clear()  # a fresh CSRF token too: nothing from before the login carries over
    session.permanent = True
    session["who"] = who.name
    session["bind"] = _binding(found[0])
    return who


def log_out() -> None:
    """End the session."""
    session.clear()
