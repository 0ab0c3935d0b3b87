"""E-mail over SMTP: a text and an HTML part, threaded per incident.

Connection: ``smtp.host`` and ``smtp.port`` (default 587); port 465 is implicit TLS, any other
port is upgraded with STARTTLS unless ``smtp.starttls`` is false. Certificates are verified
against the system's trust store (``SSL_CERT_FILE`` adds a private CA). With ``username_env``
(and ``password_env``) the notifier logs in, and refuses to do so over an unencrypted connection.

Threading: every message of one incident carries ``In-Reply-To`` and ``References`` naming the
same root id derived from the incident id, so mail clients show one thread per incident.

Errors: SMTP 4xx replies, timeouts and connection errors are retryable; 5xx replies, a server
without STARTTLS when it is required and a certificate that does not verify are not.
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import hashlib
import html
import json
import re
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from runner.catalog.models import Channel
from runner.notify.http import log, network_error
from runner.notify.message import DEFAULT_TIMEOUT, DeliveryError, Message, secrets
from runner.notify.text import (
    failed_steps,
    incident_status,
    name_of,
    next_steps,
    one_line,
    printable,
    redact,
    step_output,
    step_title,
    tail,
    truncate,
)

DEFAULT_PORT = 587
SMTPS_PORT = 465
DEFAULT_SENDER = "runbook-runner@localhost"
OUTPUT_LIMIT = 4000  # of each failed step's output tail
DETAILS_LIMIT = 20000  # of the context as JSON
SUBJECT_PREFIX = "[runbook-runner]"
# RFC 5322's hard line limit: headers stay on one line (Python folds a long subject right after the
# colon, which its own parser then reads back with a leading space).
POLICY = email.policy.default.clone(max_line_length=998)
LABEL = {"escalation": "escalation", "update": "update", "acknowledge": "acknowledged", "resolve": "resolved"}


def _id_part(text: str) -> str:
    """*text* as the left part of a Message-ID (a digest keeps apart ids that differ in odd characters)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:100] or "incident"
    if safe != text:
        safe += "." + hashlib.sha256(text.encode()).hexdigest()[:12]
    return safe


def _domain(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return domain if re.fullmatch(r"[A-Za-z0-9.-]+", domain or "") else "runbook-runner.invalid"


def thread_id(incident_id: str, sender: str) -> str:
    """The root Message-ID every message of the incident refers to."""
    return f"<incident.{_id_part(incident_id)}@{_domain(sender)}>"


def subject(message: Message) -> str:
    """``[runbook-runner] SEVERITY summary`` on one line."""
    return f"{SUBJECT_PREFIX} {message.severity.upper()} {one_line(message.summary)}"


def _facts(message: Message) -> list[tuple[str, str]]:
    ctx = message.context
    facts = [
        ("Incident", message.incident_id),
        ("Kind", LABEL[message.kind]),
        ("Status", incident_status(ctx, message.kind)),
        ("Severity", message.severity),
        ("Level", str(message.level) if message.level is not None else ""),
        ("Owner", name_of(ctx.get("owner"))),
        ("Runbook", name_of(ctx.get("runbook"))),
        ("Revision", name_of(ctx.get("revision"))),
        ("Source", message.source),
        ("Link", message.link or ""),
    ]
    return [(k, one_line(v)) for k, v in facts if v]


def _details(context: dict[str, Any]) -> str:
    text = json.dumps(context, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return truncate(text, DETAILS_LIMIT)


def text_body(message: Message) -> str:
    """The plain-text part."""
    level = f" (level {message.level})" if message.kind == "escalation" and message.level else ""
    lines = [f"{message.severity.upper()} {LABEL[message.kind]}{level}: {one_line(message.summary)}", ""]
    width = max(len(k) for k, _ in _facts(message))
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in _facts(message)]
    reason = str(message.context.get("reason") or "")
    steps = failed_steps(message.context)
    if reason or steps:
        lines += ["", "What failed", "-----------"]
        if reason:
            lines.append(reason)
        for step in steps:
            lines += ["", step_title(step)]
            lines += ["    " + line for line in tail(step_output(step), OUTPUT_LIMIT).splitlines()]
    todo = next_steps(message.context)
    if todo:
        lines += ["", "Next steps", "----------", *(f"- {one_line(t)}" for t in todo)]
    lines += ["", "Details", "-------", _details(message.context), ""]
    return "\n".join(lines)


def html_body(message: Message) -> str:
    """The HTML part; every value is escaped."""
    e = html.escape
    level = f" (level {message.level})" if message.kind == "escalation" and message.level else ""
    title = f"{message.severity.upper()} {LABEL[message.kind]}{level}: {one_line(message.summary)}"
    rows = []
    for key, value in _facts(message):
        if key == "Link" and value.startswith(("https://", "http://")):
            cell = f'<a href="{e(value, quote=True)}">{e(value)}</a>'
        else:
            cell = e(value)
        rows.append(f"<tr><th align=\"left\">{e(key)}</th><td>{cell}</td></tr>")
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8"></head><body>',
             f"<h2>{e(title)}</h2>", "<table>", *rows, "</table>"]
    reason = str(message.context.get("reason") or "")
    steps = failed_steps(message.context)
    if reason or steps:
        parts.append("<h3>What failed</h3>")
        if reason:
            parts.append(f"<p>{e(reason)}</p>")
        for step in steps:
            parts.append(f"<p><b>{e(step_title(step))}</b></p>")
            output = tail(step_output(step), OUTPUT_LIMIT)
            if output:
                parts.append(f"<pre>{e(output)}</pre>")
    todo = next_steps(message.context)
    if todo:
        parts += ["<h3>Next steps</h3>", "<ul>", *(f"<li>{e(one_line(t))}</li>" for t in todo), "</ul>"]
    parts += ["<h3>Details</h3>", f"<pre>{e(_details(message.context))}</pre>", "</body></html>", ""]
    return "\n".join(parts)


def build(message: Message, sender: str, to: list[str]) -> EmailMessage:
    """The e-mail for *message*: headers, a text part and an HTML alternative."""
    mail = EmailMessage(policy=POLICY)
    mail["Subject"] = subject(message)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    domain = _domain(sender)
    mail["Message-ID"] = make_msgid(idstring=f"{message.kind}.{_id_part(message.incident_id)}", domain=domain)
    root = thread_id(message.incident_id, sender)
    mail["In-Reply-To"] = root
    mail["References"] = root
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the runner
    mail["X-Runbook-Incident"] = one_line(message.incident_id)
    mail["X-Runbook-Kind"] = message.kind
    mail.set_content(text_body(message))
    mail.add_alternative(html_body(message), subtype="html")
    return mail


class EmailNotifier:
    """Sends e-mail through the channel's SMTP server."""

    def __init__(
        self, channel: Channel, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        smtp = channel.settings.get("smtp") or {}
        if not smtp.get("host") or not channel.settings.get("to"):
            raise DeliveryError(f"email channel {channel.name}: no smtp.host or no recipients",
                                retryable=False)
        self._host = str(smtp["host"])
        self._port = int(smtp.get("port", DEFAULT_PORT))
        self._starttls = bool(smtp.get("starttls", True)) and self._port != SMTPS_PORT
        self._sender = str(smtp.get("sender") or DEFAULT_SENDER)
        self._to = [str(a) for a in channel.settings["to"]]
        self._username: str | None = None
        self._password: str | None = None
        if smtp.get("username_env"):  # every unset variable named at once
            self._username, self._password = secrets(channel, environ, "username_env", "password_env")
        if self._username and not (self._starttls or self._port == SMTPS_PORT):
            raise DeliveryError(
                f"email channel {channel.name}: refusing to send SMTP credentials without TLS "
                "(set smtp.starttls: true or use port 465)", retryable=False)

    def __repr__(self) -> str:
        return f"EmailNotifier({self.channel.name!r})"

    def _secrets(self) -> list[str]:
        if not self._password:
            return []
        plain = f"\0{self._username}\0{self._password}".encode()
        b64 = base64.b64encode
        return [self._password, b64(self._password.encode()).decode(), b64(plain).decode()]

    def send(self, message: Message) -> None:
        """Send *message* to the channel's recipients; DeliveryError when the server does not take it."""
        what = f"email channel {self.channel.name}"
        mail = build(message, self._sender, self._to)
        envelope_from = parseaddr(self._sender)[1] or DEFAULT_SENDER
        stage = "connect"
        try:
            context = ssl.create_default_context()
            client: smtplib.SMTP
            if self._port == SMTPS_PORT:
                client = smtplib.SMTP_SSL(self._host, self._port, timeout=self.timeout, context=context)
            else:
                client = smtplib.SMTP(self._host, self._port, timeout=self.timeout)
            try:
                stage = "EHLO"
                client.ehlo()
                if self._starttls:
                    stage = "STARTTLS"
                    client.starttls(context=context)
                    client.ehlo()
                if self._username and self._password:
                    stage = "login"
                    client.login(self._username, self._password)
                stage = "send"
                refused = client.send_message(mail, from_addr=envelope_from, to_addrs=self._to)
            except BaseException:
                client.close()  # no QUIT: the server may be the thing that hangs
                raise
            # Sent: a failing QUIT must not make it look undelivered (and so sent twice).
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(f"{what}: the server does not support {stage}", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as e:
            codes = sorted({code for code, _ in e.recipients.values()})
            raise DeliveryError(f"{what}: all recipients refused (SMTP {', '.join(map(str, codes))})",
                                retryable=any(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as e:
            raw = e.smtp_error if isinstance(e.smtp_error, bytes) else str(e.smtp_error).encode()
            detail = redact(printable(raw), self._secrets())
            raise DeliveryError(f"{what}: {stage} failed: SMTP {e.smtp_code} {detail}".rstrip(),
                                retryable=not 500 <= e.smtp_code < 600) from None
        except smtplib.SMTPServerDisconnected as e:
            if isinstance(e.__context__, TimeoutError):  # smtplib turns a read timeout into this
                raise network_error(what, e.__context__, self.timeout) from None
            raise DeliveryError(f"{what}: the server closed the connection during {stage}",
                                retryable=True) from None
        except smtplib.SMTPException as e:
            raise DeliveryError(f"{what}: {stage} failed ({type(e).__name__})", retryable=True) from None
        except OSError as e:  # timeouts, refused connections, TLS errors
            raise network_error(what, e, self.timeout) from None
        if refused:
            log.warning("%s: %d of %d recipients refused: %s", what, len(refused), len(self._to),
                        ", ".join(f"{addr} ({code})" for addr, (code, _) in sorted(refused.items())))
        log.info("%s: %s of incident %s sent to %d recipients", what, message.kind, message.incident_id,
                 len(self._to) - len(refused))
