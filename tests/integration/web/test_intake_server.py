"""The receiver as a real HTTP server on loopback: auth, bad input, durability, repeats, health."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import waitress

from runner.alerts.signing import REPLAY_WINDOW, sign
from runner.store import Store
from runner.store.engine import create_engine, parse_url
from runner.web import AppConfig, create_app
from runner.web.auth import WebhookAuth
from tests.conftest import CATALOG, ROOT

PAYLOADS = ROOT / "tests" / "examples" / "payloads"
TOKEN = "test-token-7f3a"
SECRET = "test-secret-91c2"


class Server:
    """A waitress server in a thread, on an ephemeral loopback port, set up as ``runbook serve`` sets it up.

    Waitress's own loop timeout (1 s) stays: waitress reads ``asyncore_loop_timeout`` as an int,
    so a fraction such as 0.1 becomes 0 and the server thread spins on ``select(timeout=0)``,
    taking the GIL from the request threads (a burst of 100 requests then starved). ``close``
    wakes the loop through waitress's trigger instead of relying on a short timeout.
    """

    def __init__(self, config: AppConfig) -> None:
        self.app = create_app(config)
        self.server = waitress.create_server(  # as runbook serve: its default --threads, waitress's loop
            self.app, host="127.0.0.1", port=0, threads=8, ident="runbook-runner"
        )
        self.url = f"http://127.0.0.1:{self.server.effective_port}"  # type: ignore[union-attr]
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def post(
        self,
        path: str,
        body: bytes | dict[str, Any],
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method="POST",
            headers={"Content-Type": content_type, **(headers or {})},
        )
        return self._send(request)

    def get(self, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        return self._send(urllib.request.Request(self.url + path))

    @staticmethod
    def _send(request: urllib.request.Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), dict(e.headers)

    def close(self) -> None:
        # Empty the socket map so waitress's loop ends by itself, wake it from its select() (the
        # trigger's pipe is among the descriptors it waits on), then close what it served.
        self.server._map.clear()  # type: ignore[union-attr]
        self.server.pull_trigger()  # type: ignore[union-attr]
        self.thread.join(timeout=5)
        self.server.close()
        self.server.task_dispatcher.shutdown()  # type: ignore[union-attr]


@pytest.fixture
def server(store_url: str) -> Iterator[tuple[Server, Store]]:
    store = Store(store_url)
    store.upgrade()
    srv = Server(AppConfig(store=store, auth=WebhookAuth(token=TOKEN, secret=SECRET), runbooks_dir=CATALOG))
    try:
        yield srv, store
    finally:
        srv.close()
        store.close()


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_alertmanager_alerts_are_stored_before_202_and_repeats_recognised(server) -> None:  # type: ignore[no-untyped-def]
    srv, store = server
    body = payload("alertmanager/firing.json")
    status, answer, _ = srv.post("/api/v1/alerts/alertmanager", body, BEARER)
    assert status == 202
    n = len(body["alerts"])
    assert answer["accepted"] == n and answer["repeats"] == 0
    assert [a["fingerprint"] for a in answer["alerts"]] == [a["fingerprint"] for a in body["alerts"]]
    assert store.count_alerts() == n  # committed before the answer
    status, again, _ = srv.post("/api/v1/alerts/alertmanager", body, BEARER)
    assert status == 202 and again["repeats"] == n
    assert [a["repeat_of"] for a in again["alerts"]] == [a["id"] for a in answer["alerts"]]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/alerts/grafana", "grafana/firing.json"),
        ("/api/v1/alerts", "generic/batch.json"),
        ("/api/v1/alerts", "generic/single.json"),
    ],
)
def test_grafana_and_generic_payloads(server, path: str, name: str) -> None:  # type: ignore[no-untyped-def]
    srv, store = server
    status, answer, _ = srv.post(path, payload(name), BEARER)
    assert status == 202, answer
    assert answer["accepted"] >= 1 and store.count_alerts() == answer["accepted"]


def test_every_auth_failure_is_a_401_with_a_reason(server) -> None:  # type: ignore[no-untyped-def]
    srv, store = server
    body = json.dumps(payload("generic/single.json")).encode()
    cases = [
        ({}, "missing credentials"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, "invalid bearer token"),
        (sign("wrong-secret", body), "invalid signature"),
        (sign(SECRET, body + b" "), "invalid signature"),  # signed another body
        (sign(SECRET, body, timestamp=int(__import__("time").time()) - REPLAY_WINDOW - 5), "replay window"),
        ({"X-Runbook-Signature": "sha256=00", "X-Runbook-Timestamp": "9" * 50}, "malformed"),
    ]
    for headers, reason in cases:
        status, answer, _ = srv.post("/api/v1/alerts", body, headers)
        assert status == 401, (headers, answer)
        assert reason in answer["error"] and TOKEN not in answer["error"] and SECRET not in answer["error"]
    assert store.count_alerts() == 0
    status, _, _ = srv.post("/api/v1/alerts", body, sign(SECRET, body))  # a fresh, valid signature
    assert status == 202


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"{not json", "application/json", 400, "body is not valid JSON"),
        (b'{"alerts": [{"labels": {"alertname": NaN}}]}', "application/json", 400, "NaN is not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, ""),
        (b'{"alerts": [{"annotations": {"summary": "x"}}]}', "application/json", 400,
         "alerts[0].labels: is required: every alert needs labels"),
        (
            b'{"alerts": [{"labels": {"alertname": 5}}]}',
            "application/json",
            400,
            "alerts[0].labels.alertname",
        ),
        (b'{"labels": {"alertname": "A"}, "x": 1e400}', "application/json", 400, "1e400 is out of range"),
        (b'{"labels": {"alertname": "A\\u0000"}}', "application/json", 400, "NUL characters"),
        (b'{"labels": {"alertname": "A"}}', "text/plain", 415, "application/json"),
        (b"x" * (6 * 1024 * 1024), "application/json", 413, ""),
    ],
)
def test_bad_input_gets_a_4xx_with_a_reason_never_a_500(
    server,
    body: bytes,
    content_type: str,  # type: ignore[no-untyped-def]
    status: int,
    reason: str,
) -> None:
    srv, store = server
    got, answer, _ = srv.post("/api/v1/alerts", body, BEARER, content_type=content_type)
    assert got == status, answer
    assert answer["status"] == status and reason in answer["error"]
    assert store.count_alerts() == 0


def test_an_unavailable_store_answers_503_never_a_lost_2xx(tmp_path: Path) -> None:
    store = Store("postgresql://postgres@127.0.0.1:1/none")  # nothing listens there
    srv = Server(AppConfig(store=store, auth=WebhookAuth(token=TOKEN), runbooks_dir=CATALOG))
    try:
        status, answer, headers = srv.post("/api/v1/alerts", payload("generic/single.json"), BEARER)
        assert status == 503 and headers.get("Retry-After") == "5"
        assert "retry later" in answer["error"]
        status, ready, _ = srv.get("/readyz")
        assert status == 503 and ready["checks"]["store"] != "ok" and ready["checks"]["runbooks"] == "ok"
    finally:
        srv.close()


def test_health_and_readiness(server) -> None:  # type: ignore[no-untyped-def]
    srv, _ = server
    assert srv.get("/healthz")[:2] == (200, {"status": "ok"})
    status, ready, _ = srv.get("/readyz")
    assert status == 200 and ready["status"] == "ready"
    assert ready["checks"] == {"store": "ok", "runbooks": "ok"}
    assert ready["catalog"]["runbooks"] == 4 and ready["catalog"]["last_reload_error"] is None
    assert srv.get("/nope")[0] == 404


def test_readiness_during_a_rolling_upgrade(server, store_url: str) -> None:  # type: ignore[no-untyped-def]
    srv, _ = server
    engine = create_engine(parse_url(store_url))
    try:
        with engine.begin() as connection:  # a newer version migrated the database (only adding)
            connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff0009'"))
        assert srv.get("/readyz")[0] == 200  # this older receiver stays in the load balancer
        with engine.begin() as connection:  # a newer migration removed what this version uses
            connection.execute(sa.text("UPDATE schema_compat SET min_revision = 'ffff0009'"))
        status, ready, _ = srv.get("/readyz")
        assert status == 503 and "needs runbook-runner with migration ffff0009" in ready["checks"]["store"]
    finally:
        engine.dispose()


def test_the_server_thread_sleeps_while_no_request_comes(sqlite_store_url: str) -> None:
    """The harness's waitress loop waits in select() like runbook serve's, instead of spinning.

    A spinning server thread (waitress truncates a loop timeout of 0.1 to 0) held the GIL
    against the request threads: 100 concurrent webhook requests went unanswered for 30 s.
    """
    store = Store(sqlite_store_url)
    srv = Server(AppConfig(store=store, auth=WebhookAuth(token=TOKEN), runbooks_dir=CATALOG))
    try:
        assert srv.get("/healthz")[0] == 200
        clock = time.pthread_getcpuclockid(srv.thread.ident)  # type: ignore[arg-type]
        before = time.clock_gettime(clock)
        time.sleep(1.0)
        assert time.clock_gettime(clock) - before < 0.2  # spinning, it took the whole second
    finally:
        srv.close()
        store.close()
    assert not srv.thread.is_alive()  # close() woke the loop, which ended
