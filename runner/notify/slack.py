"""Slack incoming webhook: a Block Kit message with a plain ``text`` fallback for notifications.

Blocks: a header (severity emoji and summary), a section of fields (owner, runbook, status,
level), a section with what failed (the reason, and each failed step with the tail of its output
in a code block), the next steps, a context line (incident id, kind, revision) and, when the
message has a link, an actions block with a button to the incident.

Slack's limits (Block Kit reference, docs.slack.dev): header text 150 characters, section text
3000, each section field 2000 (at most 10 fields), button text 75 and button url 3000, at most
50 blocks in a message. Text inserted into mrkdwn has ``&``, ``<`` and ``>`` escaped, so an
alert's text cannot become a link or a mention.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.catalog.models import Channel
from runner.notify.http import check_url, log, post_json
from runner.notify.message import DEFAULT_TIMEOUT, Message, secret
from runner.notify.text import (
    ELLIPSIS,
    failed_steps,
    incident_status,
    name_of,
    next_steps,
    one_line,
    step_output,
    step_title,
    truncate,
)

HEADER_LIMIT = 150
TEXT_LIMIT = 3000  # a section's text
FIELD_LIMIT = 2000  # each of a section's fields
BUTTON_TEXT_LIMIT = 75
URL_LIMIT = 3000
REASON_LIMIT = 1000  # of the failure section, so the step outputs keep room
MAX_STEPS = 10  # failed steps shown; more are counted
EMOJI = {"critical": ":red_circle:", "high": ":large_orange_circle:", "warning": ":large_yellow_circle:",
         "info": ":large_blue_circle:"}
PREFIX = {"escalation": "", "update": "Update: ", "acknowledge": "Acknowledged: ", "resolve": "Resolved: "}
LABEL = {"escalation": "escalation", "update": "update", "acknowledge": "acknowledged", "resolve": "resolved"}


def escape(text: str) -> str:
    """*text* safe inside Slack mrkdwn: the three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """Escaped text that cannot close the code block it is put in."""
    return escape(text).replace("```", "`\u200b`\u200b`")


def _fit_tail(raw: str, budget: int) -> str:
    """The escaped tail of *raw* that fits *budget* characters (cut on raw text, so no entity is split)."""
    if len(_code(raw)) <= budget:
        return _code(raw)
    cut = raw
    while cut:
        size = len(_code(ELLIPSIS + cut))
        if size <= budget:
            return _code(ELLIPSIS + cut)
        cut = cut[max(size - budget, 1):]
    return ""


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _field(label: str, value: str) -> dict[str, Any]:
    return _mrkdwn(truncate(f"*{label}*\n{escape(value) or '—'}", FIELD_LIMIT))


def failure_text(message: Message) -> str:
    """The mrkdwn of the 'what failed' section, at most TEXT_LIMIT characters ('' when nothing failed)."""
    reason = one_line(str(message.context.get("reason") or ""))
    steps = failed_steps(message.context)
    if not reason and not steps:
        return ""
    head = "*What failed*" + (f"\n{escape(truncate(reason, REASON_LIMIT))}" if reason else "")
    shown = steps[:MAX_STEPS]
    titles = [f"*{escape(truncate(one_line(step_title(s)), 200))}*" for s in shown]
    outputs = [step_output(s) for s in shown]
    more = f"\n_and {len(steps) - len(shown)} more failed steps_" if len(steps) > len(shown) else ""
    # Everything but the outputs, then share what is left between the outputs that have text.
    fence = len("\n```\n```")
    fixed = len(head) + sum(len(t) + 1 for t in titles) + len(more) + fence * sum(1 for o in outputs if o)
    with_output = sum(1 for o in outputs if o)
    budget = (TEXT_LIMIT - fixed) // with_output if with_output else 0
    parts = [head]
    for title, output in zip(titles, outputs, strict=True):
        parts.append("\n" + title)
        if output and budget > 0:
            parts.append(f"\n```\n{_fit_tail(output, budget)}```")
    return truncate("".join(parts) + more, TEXT_LIMIT)


def blocks(message: Message) -> list[dict[str, Any]]:
    """The Block Kit blocks for *message*."""
    ctx = message.context
    emoji = EMOJI.get(message.severity, ":white_circle:")
    header = truncate(f"{emoji} {PREFIX[message.kind]}{one_line(message.summary)}", HEADER_LIMIT)
    result: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}]
    facts = [("Owner", name_of(ctx.get("owner"))), ("Runbook", name_of(ctx.get("runbook"))),
             ("Status", incident_status(ctx, message.kind)),
             ("Level", str(message.level) if message.level is not None else "")]
    if any(value for _, value in facts):  # a short update has none of these
        result.append({"type": "section", "fields": [_field(label, value) for label, value in facts]})
    failed = failure_text(message)
    if failed:
        result.append({"type": "section", "text": _mrkdwn(failed)})
    todo = next_steps(ctx)
    if todo:
        lines = "\n".join(f"• {escape(one_line(line))}" for line in todo)
        result.append({"type": "section", "text": _mrkdwn(truncate(f"*Next steps*\n{lines}", TEXT_LIMIT))})
    about = f"Incident `{escape(message.incident_id)}` · {LABEL[message.kind]}"
    revision = name_of(ctx.get("revision"))
    if revision:
        about += f" · revision `{escape(revision)}`"
    result.append({"type": "context", "elements": [_mrkdwn(truncate(about, TEXT_LIMIT))]})
    if message.link and len(message.link) <= URL_LIMIT:
        result.append({"type": "actions", "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": truncate("Open incident", BUTTON_TEXT_LIMIT)},
            "url": message.link,
            "action_id": "open-incident",
        }]})
    return result


def fallback_text(message: Message) -> str:
    """The top-level ``text``: what notifications and clients without blocks show."""
    level = f" (level {message.level})" if message.kind == "escalation" and message.level else ""
    text = f"{message.severity.upper()} {LABEL[message.kind]}{level}: {one_line(message.summary)}"
    return escape(truncate(text, TEXT_LIMIT))


def payload(message: Message) -> dict[str, Any]:
    """The JSON document posted to the incoming webhook."""
    return {"text": fallback_text(message), "blocks": blocks(message)}


class SlackNotifier:
    """POSTs Block Kit messages to the incoming-webhook URL in the channel's ``url_env``."""

    def __init__(
        self, channel: Channel, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        self._url = check_url(channel, secret(channel, environ, "url_env"), channel.settings["url_env"])

    def __repr__(self) -> str:
        return f"SlackNotifier({self.channel.name!r})"

    def send(self, message: Message) -> None:
        """POST *message*; DeliveryError unless Slack answers 2xx."""
        body = json.dumps(payload(message), ensure_ascii=False).encode()
        status = post_json(self.channel, self._url, body, timeout=self.timeout, secrets=())
        log.info("slack channel %s: %s of incident %s delivered (HTTP %d)",
                 self.channel.name, message.kind, message.incident_id, status)
