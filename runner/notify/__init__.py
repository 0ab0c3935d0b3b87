"""Notifiers: deliver one incident message to one channel (webhook, Slack, PagerDuty, e-mail).

``notifier_for(channel, environ)`` resolves the channel's secrets from the environment and
returns a ``Notifier`` whose ``send(message)`` either delivers or raises ``DeliveryError``.
The error says whether trying again later can help (``retryable``); retrying, backing off and
recording attempts is the caller's job (escalation), not the notifier's.

Secrets (webhook and Slack URLs, HMAC secrets, routing keys, SMTP passwords) never appear in
an error's reason, in a log line or in a notifier's repr: reasons name the channel and, for a
missing secret, the environment variable, e.g. ``slack channel ops-slack: HTTP 500``.

A channel whose secrets are not in the environment raises ``NotConfigured`` (a DeliveryError
naming every variable to set): it is not broken, it is not set up here, and its messages are
skipped rather than failed (``runner.notify.configuration`` reports such channels up front).
"""
