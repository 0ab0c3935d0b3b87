"""Notifiers against real local sinks: an HTTP server and an SMTP server (aiosmtpd) on loopback.

Nothing is mocked: each notifier sends over a socket, and the test reads what the sink received.
"""

from __future__ import annotations

import contextlib
import datetime
import email
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runner.alerts.signing import verify_signature
from runner.catalog.models import Channel
from runner.errors import AuthError
from runner.notify.channels import notifier_for
from runner.notify.email import EmailNotifier
from runner.notify.message import DeliveryError, Message, NotConfigured
from runner.notify.pagerduty import PagerDutyNotifier, dedup_key, encode, event
from runner.notify.slack import SlackNotifier
from runner.notify.webhook import WebhookNotifier

SLACK_TOKEN = "T0000/B1111/xoxSlackPathToken9876"
HOOK_TOKEN = "hook-path-token-5c1e"
HOOK_SECRET = "hmac-secret-77ab19"
ROUTING_KEY = "R0UTINGKEY0123456789abcdefabcdef"
SMTP_USER = "runner"
SMTP_PASSWORD = "smtp-pa55word-e3f1"
SECRETS = (SLACK_TOKEN, HOOK_TOKEN, HOOK_SECRET, ROUTING_KEY, SMTP_PASSWORD)

XSS = "<script>alert(1)</script>"
CONTEXT: dict[str, Any] = {
    "alert": {"labels": {"alertname": "DiskFull", "instance": "web-1:9100"}, "status": "firing"},
    "incident": {"id": "inc-42", "status": "open"},
    "owner": {"team": "platform-ops", "person": "alice"},
    "runbook": {"name": "disk-full-cleanup", "title": "Clean up a full disk"},
    "revision": "abc1234",
    "steps": [
        {"name": "find big files", "host": "web-1", "status": "ok", "output": "found 3 files"},
        {"name": "clean logs", "host": "web-1", "status": "failed",
         "output": "rm: cannot remove '/var/log/app.log': Permission denied\nexit 1 <&>"},
    ],
    "reason": "step clean logs failed on web-1",
    "next_steps": ["Check /var/log on web-1", "Acknowledge the incident"],
}


def message(kind: str = "escalation", **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "kind": kind, "incident_id": "inc-42", "summary": f"{XSS} disk full on web-1", "severity": "high",
        "source": "web-1", "context": CONTEXT, "link": "https://runbooks.example.com/incidents/inc-42",
        "level": 2 if kind == "escalation" else None, "message_id": "7",
    }
    return Message(**{**fields, **changes})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- HTTP sink -----------------------------------------------------------------------------------

class HttpSink:
    """A threaded HTTP server on loopback that records requests and answers a status sequence.

    Error answers echo the request path and body, like a careless receiver: the notifiers must
    keep such echoes (which carry the secrets) out of their error reasons.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.retry_after: str | None = None
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.requests.append({"method": "POST", "path": self.path, "headers": self.headers,
                                      "body": body})
                if sink.delay:
                    time.sleep(sink.delay)
                status = sink.statuses.pop(0) if sink.statuses else 200
                answer = b"ok" if status < 300 else f"error for {self.path}: ".encode() + body[:500]
                if status == 202:
                    answer = b'{"status":"success","message":"Event processed"}'
                self.send_response(status)
                if sink.retry_after:
                    self.send_header("Retry-After", sink.retry_after)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:1{self.path}")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may have timed out and gone
                    self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    server = HttpSink()
    yield server
    server.close()


def http_channels(sink: HttpSink) -> tuple[list[Channel], dict[str, str]]:
    """One channel of each HTTP type, all pointed at *sink*, and their environment."""
    channels = [
        Channel("ops-slack", "slack", {"url_env": "RUNBOOK_SLACK_OPS_URL"}),
        Channel("payments-webhook", "webhook",
                {"url_env": "RUNBOOK_PAYMENTS_HOOK_URL", "secret_env": "RUNBOOK_PAYMENTS_HOOK_SECRET"}),
        Channel("ops-pager", "pagerduty", {"routing_key_env": "RUNBOOK_PD_OPS_KEY"}),
    ]
    environ = {
        "RUNBOOK_SLACK_OPS_URL": f"{sink.base}/services/{SLACK_TOKEN}",
        "RUNBOOK_PAYMENTS_HOOK_URL": f"{sink.base}/hooks/{HOOK_TOKEN}",
        "RUNBOOK_PAYMENTS_HOOK_SECRET": HOOK_SECRET,
        "RUNBOOK_PD_OPS_KEY": ROUTING_KEY,
        "RUNBOOK_PAGERDUTY_EVENTS_URL": f"{sink.base}/v2/enqueue",
    }
    return channels, environ


def sent_json(sink: HttpSink, index: int = -1) -> Any:
    return json.loads(sink.requests[index]["body"])


# --- construction ------------------------------------------------------------------------------

def test_message_rejects_unknown_kind_and_severity() -> None:
    with pytest.raises(DeliveryError, match="kind 'page' is not one of") as caught:
        message(kind="page")
    assert caught.value.retryable is False
    with pytest.raises(DeliveryError, match="severity 'error' is not one of"):
        message(severity="error")


def test_notifier_for_each_type_and_no_secret_in_repr(sink: HttpSink) -> None:
    channels, environ = http_channels(sink)
    email_channel = Channel("ops-email", "email", {"to": ["ops@example.com"], "smtp": {"host": "127.0.0.1"}})
    kinds = [type(notifier_for(c, environ)) for c in [*channels, email_channel]]
    assert kinds == [SlackNotifier, WebhookNotifier, PagerDutyNotifier, EmailNotifier]
    for channel in channels:
        text = repr(notifier_for(channel, environ))
        assert channel.name in text
        assert not any(s in text for s in SECRETS)


@pytest.mark.parametrize(("channel", "var"), [
    (Channel("ops-slack", "slack", {"url_env": "RUNBOOK_SLACK_OPS_URL"}), "RUNBOOK_SLACK_OPS_URL"),
    (Channel("hook", "webhook", {"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}), "HOOK_SECRET"),
    (Channel("ops-pager", "pagerduty", {"routing_key_env": "RUNBOOK_PD_OPS_KEY"}), "RUNBOOK_PD_OPS_KEY"),
    (Channel("ops-email", "email", {"to": ["ops@example.com"], "smtp": {
        "host": "127.0.0.1", "username_env": "RUNBOOK_SMTP_USER", "password_env": "RUNBOOK_SMTP_PASSWORD"}}),
     "RUNBOOK_SMTP_PASSWORD"),
])
def test_missing_secret_names_the_variable(channel: Channel, var: str) -> None:
    environ = {"HOOK_URL": "http://127.0.0.1:9/hook", "RUNBOOK_SMTP_USER": SMTP_USER, var: ""}
    with pytest.raises(NotConfigured) as caught:  # a DeliveryError: not configured, not broken
        notifier_for(channel, environ)
    assert caught.value.retryable is False and caught.value.variables == (var,)
    expected = f"{channel.type} channel {channel.name}: environment variable {var} is not set"
    assert caught.value.reason == expected


@pytest.mark.parametrize(("channel", "variables"), [
    (Channel("hook", "webhook", {"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}),
     ("HOOK_URL", "HOOK_SECRET")),
    (Channel("ops-email", "email", {"to": ["ops@example.com"], "smtp": {
        "host": "127.0.0.1", "username_env": "RUNBOOK_SMTP_USER", "password_env": "RUNBOOK_SMTP_PASSWORD"}}),
     ("RUNBOOK_SMTP_USER", "RUNBOOK_SMTP_PASSWORD")),
])
def test_every_missing_secret_is_named_at_once(channel: Channel, variables: tuple[str, ...]) -> None:
    with pytest.raises(NotConfigured) as caught:
        notifier_for(channel, {})
    assert caught.value.variables == variables
    assert caught.value.reason.endswith(f"environment variables {', '.join(variables)} are not set")


def test_bad_url_and_unknown_type_are_not_retryable() -> None:
    channel = Channel("ops-slack", "slack", {"url_env": "RUNBOOK_SLACK_OPS_URL"})
    with pytest.raises(DeliveryError, match="RUNBOOK_SLACK_OPS_URL does not hold an http") as caught:
        notifier_for(channel, {"RUNBOOK_SLACK_OPS_URL": f"hooks.slack.com/services/{SLACK_TOKEN}"})
    assert caught.value.retryable is False and SLACK_TOKEN not in caught.value.reason
    with pytest.raises(DeliveryError, match="unknown channel type 'sms'"):
        notifier_for(Channel("x", "sms", {}), {})


def test_credentials_without_tls_are_refused() -> None:
    channel = Channel("ops-email", "email", {"to": ["ops@example.com"], "smtp": {
        "host": "127.0.0.1", "starttls": False, "username_env": "U", "password_env": "P"}})
    with pytest.raises(DeliveryError, match="without TLS") as caught:
        notifier_for(channel, {"U": SMTP_USER, "P": SMTP_PASSWORD})
    assert caught.value.retryable is False


# --- webhook -----------------------------------------------------------------------------------

def test_webhook_posts_signed_json(sink: HttpSink) -> None:
    channels, environ = http_channels(sink)
    notifier_for(channels[1], environ).send(message())
    request = sink.requests[0]
    assert request["method"] == "POST" and request["path"] == f"/hooks/{HOOK_TOKEN}"
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("runbook-runner")
    assert headers["X-Runbook-Signature"].startswith("sha256=")
    verify_signature(HOOK_SECRET, headers, request["body"])  # raises unless valid and fresh
    with pytest.raises(AuthError):
        verify_signature("another-secret", headers, request["body"])
    assert headers["X-Runbook-Message-Id"] == "7"
    assert json.loads(request["body"]) == {
        "message_id": "7", "kind": "escalation", "incident_id": "inc-42",
        "summary": f"{XSS} disk full on web-1", "severity": "high", "source": "web-1", "level": 2,
        "link": "https://runbooks.example.com/incidents/inc-42", "context": CONTEXT,
    }


def test_webhook_without_secret_env_is_unsigned(sink: HttpSink) -> None:
    channel = Channel("plain-hook", "webhook", {"url_env": "HOOK_URL"})
    notifier_for(channel, {"HOOK_URL": f"{sink.base}/plain"}).send(message(kind="resolve", link=None))
    assert "X-Runbook-Signature" not in sink.requests[0]["headers"]
    assert sent_json(sink)["kind"] == "resolve" and sent_json(sink)["link"] is None


# --- Slack -------------------------------------------------------------------------------------

def test_slack_blocks(sink: HttpSink) -> None:
    channels, environ = http_channels(sink)
    notifier_for(channels[0], environ).send(message())
    assert sink.requests[0]["path"] == f"/services/{SLACK_TOKEN}"
    doc = sent_json(sink)
    assert doc["text"] == (
        "HIGH escalation (level 2): &lt;script&gt;alert(1)&lt;/script&gt; disk full on web-1")
    types = [b["type"] for b in doc["blocks"]]
    assert types == ["header", "section", "section", "section", "context", "actions"]
    header, fields, failed, todo, context, actions = doc["blocks"]
    assert header["text"] == {"type": "plain_text", "emoji": True,
                              "text": f":large_orange_circle: {XSS} disk full on web-1"}
    assert [f["text"] for f in fields["fields"]] == [
        "*Owner*\nplatform-ops / alice", "*Runbook*\ndisk-full-cleanup", "*Status*\nopen", "*Level*\n2"]
    text = failed["text"]["text"]
    assert text.startswith(
        "*What failed*\nstep clean logs failed on web-1\n*clean logs on web-1: failed*\n```\n")
    assert "Permission denied\nexit 1 &lt;&amp;&gt;```" in text
    assert "find big files" not in text  # only failed steps
    assert todo["text"]["text"] == "*Next steps*\n• Check /var/log on web-1\n• Acknowledge the incident"
    assert context["elements"][0]["text"] == "Incident `inc-42` · escalation · revision `abc1234`"
    button = actions["elements"][0]
    assert button["type"] == "button" and button["url"] == "https://runbooks.example.com/incidents/inc-42"
    assert button["text"]["type"] == "plain_text"


def test_slack_truncates_to_block_limits(sink: HttpSink) -> None:
    channels, environ = http_channels(sink)
    steps = [{"name": f"step {i}", "host": "web-1", "status": "failed",
              "output": "x" * 5000 + "```" + f"\nlast line of step {i} <&>"} for i in range(3)]
    long = message(summary="s" * 400, link=None, context={**CONTEXT, "steps": steps, "reason": "r" * 5000})
    notifier_for(channels[0], environ).send(long)
    blocks = sent_json(sink)["blocks"]
    assert len(blocks[0]["text"]["text"]) == 150 and blocks[0]["text"]["text"].endswith("…")
    assert all(len(f["text"]) <= 2000 for f in blocks[1]["fields"])
    failed = blocks[2]["text"]["text"]
    assert 2500 < len(failed) <= 3000
    for i in range(3):  # each output keeps its tail, cut at the front
        assert f"…{'x' * 10}" in failed and f"\nlast line of step {i} &lt;&amp;&gt;```" in failed
    assert failed.count("```") == 6  # the ``` inside the output cannot close the code block
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b)
    assert "actions" not in [b["type"] for b in blocks]  # no link, no button


def test_slack_short_update(sink: HttpSink) -> None:
    channels, environ = http_channels(sink)
    update = Message(kind="update", incident_id="inc-42", summary="inc-42 acknowledged by alice",
                     severity="info", source="runbook-runner", context={})
    notifier_for(channels[0], environ).send(update)
    doc = sent_json(sink)
    assert doc["text"] == "INFO update: inc-42 acknowledged by alice"
    assert doc["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": ":large_blue_circle: Update: inc-42 acknowledged by alice"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Incident `inc-42` · update"}]},
    ]


# --- PagerDuty ---------------------------------------------------------------------------------

def test_pagerduty_trigger_acknowledge_resolve(sink: HttpSink) -> None:
    channels, environ = http_channels(sink)
    pager = notifier_for(channels[2], environ)
    sink.statuses = [202, 202, 202]
    pager.send(message())
    pager.send(message(kind="update"))  # not PagerDuty's business: no request
    pager.send(message(kind="acknowledge"))
    pager.send(message(kind="resolve"))
    assert [r["path"] for r in sink.requests] == ["/v2/enqueue"] * 3
    assert [r["headers"]["Content-Type"] for r in sink.requests] == ["application/json"] * 3
    trigger, ack, resolve = (json.loads(r["body"]) for r in sink.requests)
    assert trigger == {
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "inc-42",
        "payload": {"summary": f"{XSS} disk full on web-1", "source": "web-1", "severity": "error",
                    "custom_details": CONTEXT},
        "client": "runbook-runner", "client_url": "https://runbooks.example.com/incidents/inc-42",
        "links": [{"href": "https://runbooks.example.com/incidents/inc-42",
                   "text": "Incident in runbook-runner"}],
    }
    assert ack == {"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "inc-42"}
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "inc-42"}


@pytest.mark.parametrize(("ours", "theirs"), [
    ("critical", "critical"), ("high", "error"), ("warning", "warning"), ("info", "info")])
def test_pagerduty_severity_and_summary_limit(ours: str, theirs: str) -> None:
    body = event(message(severity=ours, summary="a\nb " + "y" * 2000, link=None), ROUTING_KEY)
    assert body is not None
    assert body["payload"]["severity"] == theirs
    assert len(body["payload"]["summary"]) == 1024 and body["payload"]["summary"].startswith("a b yyy")
    assert "links" not in body


def test_pagerduty_keeps_events_within_limits() -> None:
    huge = {**CONTEXT, "steps": [{"name": "dump", "status": "failed", "output": "z" * 600_000}]}
    body = event(message(context=huge, incident_id="i" * 300), ROUTING_KEY)
    assert body is not None
    data = encode(body)
    assert len(data) <= 512 * 1024
    sent = json.loads(data)
    assert sent["dedup_key"].startswith("sha256:") and len(sent["dedup_key"]) <= 255
    assert sent["dedup_key"] == dedup_key("i" * 300)  # the same key for the acknowledge and resolve
    assert "512 KB" in sent["payload"]["custom_details"]["truncated"]
    assert sent["payload"]["custom_details"]["context"].startswith('{"alert"')


# --- HTTP error classification -----------------------------------------------------------------

@pytest.mark.parametrize(("status", "retryable"), [
    (500, True), (503, True), (429, True), (400, False), (404, False), (410, False), (302, False)])
@pytest.mark.parametrize("which", [0, 1, 2], ids=["slack", "webhook", "pagerduty"])
def test_http_status_classification(sink: HttpSink, which: int, status: int, retryable: bool) -> None:
    channels, environ = http_channels(sink)
    sink.statuses = [status]
    sink.retry_after = "7" if status == 429 else None
    with pytest.raises(DeliveryError) as caught:
        notifier_for(channels[which], environ).send(message())
    error = caught.value
    assert error.retryable is retryable
    assert error.reason.startswith(f"{channels[which].type} channel {channels[which].name}: HTTP {status}")
    assert error.retry_after == (7.0 if status == 429 else None)
    assert len(sink.requests) == 1  # a redirect is not followed


def test_connection_refused_is_retryable() -> None:
    channel = Channel("ops-slack", "slack", {"url_env": "URL"})
    with pytest.raises(DeliveryError) as caught:
        notifier_for(channel, {"URL": f"http://127.0.0.1:{free_port()}/services/{SLACK_TOKEN}"}).send(message())
    assert caught.value.retryable is True
    assert caught.value.reason == "slack channel ops-slack: connection refused"


def test_timeout_is_retryable(sink: HttpSink) -> None:
    channels, environ = http_channels(sink)
    sink.delay = 1.0
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        notifier_for(channels[1], environ, timeout=0.2).send(message())
    assert time.monotonic() - started < 0.9
    assert caught.value.retryable is True
    assert caught.value.reason == "webhook channel payments-webhook: timed out after 0.2 s"


# --- e-mail ------------------------------------------------------------------------------------

class SmtpSink:
    """aiosmtpd handler that records what it receives; rcpt_reply answers RCPT TO."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.sessions: list[dict[str, Any]] = []
        self.rcpt_reply = "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.sessions.append({"tls": session.ssl is not None, "authenticated": session.authenticated})
        return "250 Message accepted"

    def mail(self, index: int = -1) -> EmailMessage:
        content = self.envelopes[index].content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    handler = SmtpSink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def smtp_tls(tls_files: tuple[Path, Path]) -> Iterator[tuple[SmtpSink, int]]:
    """An SMTP server that requires STARTTLS and authenticates SMTP_USER / SMTP_PASSWORD."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    handler = SmtpSink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate)
    controller.start()
    yield handler, controller.port
    controller.stop()


def email_channel(port: int, **smtp: Any) -> Channel:
    settings = {"host": "127.0.0.1", "port": port, "starttls": False, "sender": "runbook-runner@example.com"}
    return Channel("ops-email", "email", {"to": ["ops@example.com", "oncall@example.com"],
                                          "smtp": {**settings, **smtp}})


def test_email_content_and_threading(smtp: tuple[SmtpSink, int]) -> None:
    handler, port = smtp
    notifier = notifier_for(email_channel(port), {})
    notifier.send(message(severity="critical"))
    notifier.send(message(kind="resolve", severity="critical"))
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "runbook-runner@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    first, second = handler.mail(0), handler.mail(1)
    assert first["Subject"] == f"[runbook-runner] CRITICAL {XSS} disk full on web-1"
    assert first["From"] == "runbook-runner@example.com"
    assert first["To"] == "ops@example.com, oncall@example.com"
    assert first["Auto-Submitted"] == "auto-generated"
    root = "<incident.inc-42@example.com>"
    for mail in (first, second):
        assert mail["In-Reply-To"] == root and mail["References"] == root
        assert mail["Message-ID"].endswith("@example.com>") and "inc-42" in mail["Message-ID"]
    assert first["Message-ID"] != second["Message-ID"]
    assert first.get_content_type() == "multipart/alternative"
    text_part, html_part = first.get_body(("plain",)), first.get_body(("html",))
    assert text_part is not None and html_part is not None
    # As received: CRLF line ends.
    text, page = (part.get_content().replace("\r\n", "\n") for part in (text_part, html_part))
    assert f"CRITICAL escalation (level 2): {XSS} disk full on web-1" in text
    assert "Owner:    platform-ops / alice" in text and "clean logs on web-1: failed" in text
    assert "    exit 1 <&>" in text and "- Check /var/log on web-1" in text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; disk full on web-1" in page
    assert ("<pre>rm: cannot remove &#x27;/var/log/app.log&#x27;: Permission denied\n"
            "exit 1 &lt;&amp;&gt;</pre>") in page
    assert '<a href="https://runbooks.example.com/incidents/inc-42">' in page


def test_email_starttls_and_login(smtp_tls: tuple[SmtpSink, int], tls_files: tuple[Path, Path],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    handler, port = smtp_tls
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))  # trust the test's self-signed certificate
    channel = email_channel(port, starttls=True, username_env="RUNBOOK_SMTP_USER",
                            password_env="RUNBOOK_SMTP_PASSWORD")
    environ = {"RUNBOOK_SMTP_USER": SMTP_USER, "RUNBOOK_SMTP_PASSWORD": SMTP_PASSWORD}
    notifier_for(channel, environ).send(message())
    assert handler.sessions == [{"tls": True, "authenticated": True}]
    with pytest.raises(DeliveryError) as caught:  # wrong password: 535, permanent
        notifier_for(channel, {**environ, "RUNBOOK_SMTP_PASSWORD": "wrong-" + SMTP_PASSWORD}).send(message())
    assert caught.value.retryable is False
    assert caught.value.reason.startswith("email channel ops-email: login failed: SMTP 535")
    assert SMTP_PASSWORD not in caught.value.reason


def test_email_untrusted_certificate_is_not_retryable(smtp_tls: tuple[SmtpSink, int]) -> None:
    handler, port = smtp_tls
    with pytest.raises(DeliveryError) as caught:
        notifier_for(email_channel(port, starttls=True), {}).send(message())
    assert caught.value.retryable is False
    assert caught.value.reason == "email channel ops-email: TLS certificate verification failed"
    assert handler.envelopes == []


def test_email_starttls_required_but_not_offered(smtp: tuple[SmtpSink, int]) -> None:
    _, port = smtp
    with pytest.raises(DeliveryError) as caught:
        notifier_for(email_channel(port, starttls=True), {}).send(message())
    assert caught.value.retryable is False
    assert caught.value.reason == "email channel ops-email: the server does not support STARTTLS"


@pytest.mark.parametrize(("reply", "retryable"), [
    ("451 4.3.0 try again later", True), ("550 5.1.1 no such user", False)])
def test_email_refused_recipients(smtp: tuple[SmtpSink, int], reply: str, retryable: bool) -> None:
    handler, port = smtp
    handler.rcpt_reply = reply
    with pytest.raises(DeliveryError) as caught:
        notifier_for(email_channel(port), {}).send(message())
    assert caught.value.retryable is retryable
    assert caught.value.reason == f"email channel ops-email: all recipients refused (SMTP {reply[:3]})"


def test_email_connection_refused_and_timeout_are_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        notifier_for(email_channel(free_port()), {}).send(message())
    assert caught.value.retryable is True
    assert caught.value.reason == "email channel ops-email: connection refused"
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(DeliveryError) as caught:
            notifier_for(email_channel(silent.getsockname()[1]), {}, timeout=0.2).send(message())
    assert caught.value.retryable is True
    assert caught.value.reason == "email channel ops-email: timed out after 0.2 s"


# --- no secret leaks ---------------------------------------------------------------------------

FAILING_STATUSES = (400, 401, 403, 404, 429, 500, 502, 301)  # error answers echo the path and the body


def assert_notify_leaks_no_secret(attempts: list[Callable[[], None]], failing: int,
                                  caplog: pytest.LogCaptureFixture,
                                  secrets: tuple[str, ...] = SECRETS) -> None:
    """Run each of *attempts* (a send of some notifier, under some condition); *failing* of them
    must fail, with a DeliveryError. Neither those errors (reason, str, repr, traceback) nor any
    log line carries a secret. Every notifier's own leak test calls this (as Alertmanager's
    notifiers call AssertNotifyLeaksNoSecret): a new notifier gets its test by one call."""
    caplog.set_level(logging.DEBUG)
    errors: list[DeliveryError] = []
    for attempt in attempts:
        try:
            attempt()
        except DeliveryError as e:
            errors.append(e)
    assert len(errors) == failing, [e.reason for e in errors]
    for error in errors:
        shown = "\n".join([error.reason, str(error), repr(error), *traceback.format_exception(error)])
        leaked = [s for s in secrets if s in shown]
        assert not leaked, f"{error.reason!r} leaks {leaked}"
    assert not [s for s in secrets if s in caplog.text]


def _http_attempts(sink: HttpSink, channel: Channel, environ: dict[str, str], dead: dict[str, str],
                   wrong_scheme: dict[str, str] | None) -> tuple[list[Callable[[], None]], int]:
    """Every status the sink answers, a timeout, a dead peer (and a URL of another scheme): the
    attempts and how many must fail."""
    def send(env: dict[str, str], status: int | None = None, delay: float = 0.0, timeout: float = 2.0
             ) -> Callable[[], None]:
        def attempt() -> None:
            sink.statuses, sink.delay = ([status] if status else []), delay
            notifier_for(channel, env, timeout=timeout).send(message())
        return attempt

    attempts = [send(environ, status) for status in (200, 202, *FAILING_STATUSES)]
    attempts += [send(environ, delay=0.5, timeout=0.1), send({**environ, **dead})]
    if wrong_scheme is not None:
        attempts.append(send({**environ, **wrong_scheme}))
    return attempts, len(FAILING_STATUSES) + 2 + (wrong_scheme is not None)


@pytest.mark.parametrize("name", ["ops-slack", "payments-webhook", "ops-pager"])
def test_http_notifiers_leak_no_secret(name: str, sink: HttpSink, caplog: pytest.LogCaptureFixture) -> None:
    channels, environ = http_channels(sink)
    channel = next(c for c in channels if c.name == name)
    dead = f"http://127.0.0.1:{free_port()}"
    where = {"ops-slack": ("RUNBOOK_SLACK_OPS_URL", f"/services/{SLACK_TOKEN}"),
             "payments-webhook": ("RUNBOOK_PAYMENTS_HOOK_URL", f"/hooks/{HOOK_TOKEN}"),
             "ops-pager": ("RUNBOOK_PAGERDUTY_EVENTS_URL", "/v2/enqueue")}[name]
    variable, path = where
    scheme = {variable: f"ftp://example.com{path}"} if name == "ops-slack" else None
    attempts, failing = _http_attempts(sink, channel, environ, {variable: dead + path}, scheme)
    assert_notify_leaks_no_secret(attempts, failing, caplog)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("runner"))
    assert "delivered" in ours or "accepted" in ours  # the successes were logged, without secrets


def test_email_leaks_no_secret(smtp_tls: tuple[SmtpSink, int], tls_files: tuple[Path, Path],
                               monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _, port = smtp_tls
    mail = email_channel(port, starttls=True, username_env="U", password_env="P")

    def send(env: dict[str, str], trusted: bool) -> Callable[[], None]:
        def attempt() -> None:
            if trusted:
                monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
            notifier_for(mail, env, timeout=2.0).send(message())
        return attempt

    assert_notify_leaks_no_secret([
        send({"U": SMTP_USER, "P": SMTP_PASSWORD}, trusted=False),  # the certificate is not trusted yet
        send({"U": SMTP_USER, "P": "x" + SMTP_PASSWORD}, trusted=True),  # a wrong password
        send({"U": SMTP_USER, "P": SMTP_PASSWORD}, trusted=True),  # delivered
        send({"U": SMTP_USER}, trusted=True),  # the password is not set
    ], failing=3, caplog=caplog)
