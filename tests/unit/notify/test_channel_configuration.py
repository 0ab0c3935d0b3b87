"""Which notification channels can send: configured, not configured (what to set), invalid."""

from __future__ import annotations

import pytest

from runner.catalog.load import load_catalog
from runner.catalog.models import Channel, Owners
from runner.notify.configuration import (
    CONFIGURED,
    INVALID,
    NOT_CONFIGURED,
    ChannelState,
    channel_state,
    channel_states,
    unusable_text,
)
from tests.conftest import CATALOG

SMTP = {"host": "smtp.example.com", "username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD"}
CHANNELS = {
    "slack": Channel("slack", "slack", {"url_env": "SLACK_URL"}),
    "hook": Channel("hook", "webhook", {"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}),
    "open-hook": Channel("open-hook", "webhook", {"url_env": "OPEN_HOOK_URL"}),
    "pager": Channel("pager", "pagerduty", {"routing_key_env": "PD_KEY"}),
    "mail": Channel("mail", "email", {"to": ["ops@example.com"], "smtp": SMTP}),
    "relay": Channel("relay", "email", {"to": ["ops@example.com"], "smtp": {"host": "localhost"}}),
}
ALL_SET = {"SLACK_URL": "https://hooks.slack.com/services/T/B/x", "HOOK_URL": "https://hooks.example.com/a",
           "HOOK_SECRET": "s3cret", "OPEN_HOOK_URL": "http://127.0.0.1:9/hook", "PD_KEY": "key",
           "SMTP_USER": "runner", "SMTP_PASSWORD": "pw"}


@pytest.mark.parametrize(("name", "unset", "missing"), [
    ("slack", ["SLACK_URL"], ("SLACK_URL",)),
    ("hook", ["HOOK_URL", "HOOK_SECRET"], ("HOOK_URL", "HOOK_SECRET")),  # both named at once
    ("hook", ["HOOK_SECRET"], ("HOOK_SECRET",)),  # a signed webhook does not send unsigned
    ("pager", ["PD_KEY"], ("PD_KEY",)),
    ("mail", ["SMTP_PASSWORD"], ("SMTP_PASSWORD",)),
    ("mail", ["SMTP_USER", "SMTP_PASSWORD"], ("SMTP_USER", "SMTP_PASSWORD")),
])
def test_a_channel_whose_variables_are_unset_is_not_configured_and_says_what_to_set(
    name: str, unset: list[str], missing: tuple[str, ...]
) -> None:
    environ = {k: v for k, v in ALL_SET.items() if k not in unset}
    state = channel_state(CHANNELS[name], environ)
    assert state == ChannelState(name, CHANNELS[name].type, NOT_CONFIGURED, missing=missing)
    assert not state.configured
    assert str(state) == f"not configured: set {', '.join(missing)}"


def test_an_empty_variable_counts_as_unset() -> None:
    state = channel_state(CHANNELS["pager"], {**ALL_SET, "PD_KEY": ""})
    assert (state.state, state.missing) == (NOT_CONFIGURED, ("PD_KEY",))


@pytest.mark.parametrize("name", list(CHANNELS))
def test_every_channel_with_its_variables_set_is_configured(name: str) -> None:
    state = channel_state(CHANNELS[name], ALL_SET)
    assert (state.state, state.missing, state.reason, str(state)) == (CONFIGURED, (), None, "configured")
    assert state.configured


def test_channels_without_secrets_need_nothing() -> None:
    assert channel_state(CHANNELS["relay"], {}).configured  # SMTP without login
    assert channel_state(CHANNELS["open-hook"], {"OPEN_HOOK_URL": "http://127.0.0.1:9/"}).configured


@pytest.mark.parametrize(("name", "environ", "reason"), [
    ("slack", {"SLACK_URL": "hooks.slack.com/services/T/B/x"},
     "slack channel slack: SLACK_URL does not hold an http(s) URL"),
    ("pager", {"PD_KEY": "key", "RUNBOOK_PAGERDUTY_EVENTS_URL": "nowhere"},
     "pagerduty channel pager: RUNBOOK_PAGERDUTY_EVENTS_URL does not hold an http(s) URL"),
])
def test_a_channel_set_but_wrong_is_invalid_with_the_reason_and_no_secret(
    name: str, environ: dict[str, str], reason: str
) -> None:
    state = channel_state(CHANNELS[name], environ)
    assert (state.state, state.reason, state.missing) == (INVALID, reason, ())
    assert str(state) == f"invalid: {reason}"
    assert "hooks.slack.com" not in str(state)


def test_the_example_catalog_with_nothing_set_names_every_channel_and_variable() -> None:
    catalog = load_catalog(CATALOG)
    states = channel_states(catalog.owners, {})
    assert {name: str(s) for name, s in states.items()} == {
        "ops-email": "not configured: set RUNBOOK_SMTP_USER, RUNBOOK_SMTP_PASSWORD",
        "ops-pager": "not configured: set RUNBOOK_PD_OPS_KEY",
        "ops-slack": "not configured: set RUNBOOK_SLACK_OPS_URL",
        "ops-updates": "not configured: set RUNBOOK_SLACK_OPS_UPDATES_URL",
        "payments-pager": "not configured: set RUNBOOK_PD_PAYMENTS_KEY",
        "payments-webhook": "not configured: set RUNBOOK_PAYMENTS_HOOK_URL, RUNBOOK_PAYMENTS_HOOK_SECRET",
    }
    assert list(states) == sorted(states)


def test_no_owners_no_channels() -> None:
    assert channel_states(None, ALL_SET) == {}
    assert channel_states(Owners({}, {}), ALL_SET) == {}


def test_one_line_names_what_cannot_send_and_nothing_when_all_can() -> None:
    owners = Owners({}, CHANNELS)
    environ = {**ALL_SET, "PD_KEY": "", "SLACK_URL": "not a url"}
    del environ["HOOK_SECRET"]
    text = unusable_text(channel_states(owners, environ).values())
    assert text == (
        "notification channels not configured, their messages are skipped: hook (set HOOK_SECRET), "
        "pager (set PD_KEY); notification channels misconfigured, their messages fail: "
        "slack channel slack: SLACK_URL does not hold an http(s) URL")
    assert "\n" not in text
    assert unusable_text(channel_states(owners, ALL_SET).values()) is None
