"""schemas/openapi.yaml against the app it describes: valid, complete, and true of a live server.

a. The document: OpenAPI 3.1, every $ref resolves, every schema is valid JSON Schema 2020-12, the
   real payloads match its request bodies, and its paths and methods are exactly the app's routes.
b. Contract: a real waitress server on loopback (webhook token and HMAC secret, an operator tokens
   file, the repository's catalog, SQLite and PostgreSQL stores) answers valid and invalid requests
   to every endpoint. Every answer's status must be listed for its operation, its body must match
   the schema the document gives for that status, and the headers the document requires must be sent.
c. Fuzz: bounded Hypothesis runs POST bodies drawn from the document's request-body schemas,
   mutated real payloads, arbitrary JSON and junk bytes to every POST endpoint (valid credentials):
   never a 5xx, and every answer (every 4xx an Error) matches the document.

The bugs this found (5xx answers to odd but possible input) are fixed; the tests at the end
(``--- inputs that once answered 5xx``) keep each one's request.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import hypothesis_jsonschema._from_schema as hjs_internals
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from runner.alerts.signing import REPLAY_WINDOW, sign
from runner.catalog.load import load_catalog
from runner.durations import parse_time
from runner.records import GitRevision, RunRecord, RunStatus, StepRecord, StepStatus, Trigger
from runner.runs.lifecycle import Request, candidate, new_lease, prepare
from runner.store import Store
from runner.web import AppConfig, create_app
from runner.web.auth import WebhookAuth
from runner.web.tokens import Tokens, hash_token
from tests.conftest import CATALOG, ROOT
from tests.integration.web.test_intake_server import Server

SPEC_FILE = ROOT / "schemas" / "openapi.yaml"
ALERT_SCHEMA_FILE = ROOT / "schemas" / "alert.schema.json"
PAYLOADS = ROOT / "tests" / "examples" / "payloads"
BASE = "https://runbook-runner.dev/schemas/openapi.yaml"  # beside alert.schema.json's $id
SURFACE = ("/api/v1/", "/healthz", "/readyz", "/metrics")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

WEBHOOK_TOKEN = "openapi-webhook-token-5d1e"
WEBHOOK_SECRET = "openapi-webhook-secret-c09a"
ADMIN = "openapi-admin-token-81b7"  # root: admin
OPERATOR = "openapi-operator-token-2f6c"  # olga: operator of payments-dev
VIEWER = "openapi-viewer-token-e34a"  # vic: viewer
WEBHOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}

INTAKE_PAYLOADS = {
    "/api/v1/alerts/alertmanager": ["alertmanager/firing.json", "alertmanager/resolved.json",
                                    "alertmanager/truncated.json"],
    "/api/v1/alerts/grafana": ["grafana/firing.json", "grafana/resolved.json"],
    "/api/v1/alerts": ["generic/batch.json", "generic/minimal.json", "generic/single.json"],
}
RUNBOOKS = ("clear-stuck-spool", "disk-full-cleanup", "restart-from-pidfile", "rotate-oversized-file")
NIGHT = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # restart-from-pidfile needs approval outside 08-18 UTC


# --- hypothesis-jsonschema on this Hypothesis -----------------------------------------------------
#
# hypothesis-jsonschema 0.23.1 (the latest release) drives objects with a private Hypothesis API,
# ``cu.many(...).more()``, which Hypothesis 6.170 replaced by an iterator (``with many(...) as e:
# for _ in e: ...``): every object schema fails with "'many' object has no attribute 'more'".
# _OldStyleMany gives it the old interface over the new one. Its loop only ever ends by more()
# answering False, so the iterator always runs to its end. Applied only while the installed
# hypothesis-jsonschema still calls more() and Hypothesis no longer has it.

_conjecture_utils = hjs_internals.cu


class _OldStyleMany:
    def __init__(self, data: Any, **kwargs: Any) -> None:
        self._many = _conjecture_utils.many(data, **kwargs).__enter__()
        self._steps = iter(self._many)

    def more(self) -> bool:
        if next(self._steps, StopIteration) is StopIteration:
            self._many.__exit__(None, None, None)
            return False
        return True

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


class _ConjectureUtils:
    many = _OldStyleMany

    def __getattr__(self, name: str) -> Any:
        return getattr(_conjecture_utils, name)


if not hasattr(_conjecture_utils.many, "more") and "elements.more()" in inspect.getsource(hjs_internals):
    hjs_internals.cu = _ConjectureUtils()


# --- the document ----------------------------------------------------------------------------------

SPEC: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
ALERT_SCHEMA: dict[str, Any] = json.loads(ALERT_SCHEMA_FILE.read_text())
REGISTRY: Registry[Any] = Registry().with_resources([
    (BASE, DRAFT202012.create_resource(SPEC)),
    (ALERT_SCHEMA["$id"], DRAFT202012.create_resource(ALERT_SCHEMA)),
])
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    if isinstance(value, str):
        parse_time(value)
    return True


def escape(token: str) -> str:
    """*token* as one JSON pointer segment."""
    return token.replace("~", "~0").replace("/", "~1")


def at(pointer: str) -> Any:
    """The node of the document at *pointer* (``/paths/~1healthz/get``)."""
    node: Any = SPEC
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def deref(pointer: str) -> tuple[str, dict[str, Any]]:
    """The object at *pointer*, following local $refs (responses, headers, parameters), and where it is."""
    node = at(pointer)
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"{pointer}: only local $refs expected here, not {ref}"
        pointer = ref[1:]
        node = at(pointer)
    return pointer, node


@functools.cache
def validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at *pointer* of the document, every $ref resolved, times checked."""
    return Draft202012Validator({"$ref": f"{BASE}#{pointer}"}, registry=REGISTRY, format_checker=FORMATS)


def assert_valid(pointer: str, instance: Any, where: str) -> None:
    errors = list(itertools.islice(validator(pointer).iter_errors(instance), 5))
    shown = "; ".join(f"at {list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    assert not errors, f"{where}: does not match {pointer}: {shown}\n{json.dumps(instance)[:800]}"


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def request_schema_pointer(template: str, method: str = "post") -> str:
    return f"/paths/{escape(template)}/{method}/requestBody/content/application~1json/schema"


def inlined(node: Any, base: str = BASE) -> Any:
    """*node* with every $ref replaced by its target (for hypothesis-jsonschema, which wants one schema)."""
    if isinstance(node, list):
        return [inlined(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        resolved = REGISTRY.resolver(base).lookup(node["$ref"])
        target = inlined(resolved.contents, str(resolved.resolver._base_uri))
        siblings = {k: inlined(v, base) for k, v in node.items() if k != "$ref"}
        return {"allOf": [target, siblings]} if siblings else target
    skip = {"$id", "$schema", "$defs", "examples", "description"}
    return {k: inlined(v, base) for k, v in node.items() if k not in skip}


# --- a live server -----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:500]!r})"


def call(srv: Server, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
         content_type: str = "application/json", token: str | None = None) -> Answer:
    """One request; *body* is bytes as they are, None for none, anything else as JSON."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    if data is not None:
        all_headers.setdefault("Content-Type", content_type)
    request = urllib.request.Request(srv.url + path, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as e:
        with e:
            return Answer(e.code, e.headers, e.read())


def check(answer: Answer, template: str, method: str) -> Any:
    """Hold *answer* to the document: a listed status, the required headers, the body's schema."""
    where = f"{method.upper()} {template} -> {answer.status}"
    responses = SPEC["paths"][template][method]["responses"]
    assert str(answer.status) in responses, (
        f"{where}, a status the document does not list ({', '.join(sorted(responses))}): "
        f"{answer.body[:300]!r}"
    )
    pointer, response = deref(f"/paths/{escape(template)}/{method}/responses/{answer.status}")
    for name in response.get("headers", {}):
        header_pointer, header = deref(f"{pointer}/headers/{escape(name)}")
        value = answer.headers.get(name)
        assert value is not None or not header.get("required"), f"{where}: no {name} header"
        if value is not None:
            assert_valid(f"{header_pointer}/schema", value, f"{where}, header {name}")
    media = answer.headers.get_content_type()
    content = response.get("content", {})
    assert media in content, f"{where}: answered {media}, the document has {sorted(content)}"
    if media != "application/json":
        return answer.body.decode()
    data = answer.json()
    assert_valid(f"{pointer}/content/application~1json/schema", data, where)
    return data


def expect(answer: Answer, status: int, template: str, method: str) -> Any:
    """*answer* has *status* and matches the document; its JSON."""
    assert answer.status == status, (
        f"{method.upper()} {template}: wanted {status}, got {answer.status}: {answer.body[:500]!r}"
    )
    return check(answer, template, method)


def write_tokens(directory: Path) -> Tokens:
    entries = [
        {"name": "root", "sha256": hash_token(ADMIN), "role": "admin"},
        {"name": "olga", "sha256": hash_token(OPERATOR), "role": "operator", "teams": ["payments-dev"]},
        {"name": "vic", "sha256": hash_token(VIEWER), "role": "viewer"},
    ]
    file = directory / "tokens.yaml"
    file.write_text(yaml.safe_dump({"tokens": entries}))
    return Tokens.load(file)


@contextmanager
def serving(store: Store, directory: Path, runbooks: Path = CATALOG) -> Iterator[Server]:
    """A live server on *store*: webhook token and secret, the tokens file, the catalog at *runbooks*."""
    directory.mkdir(parents=True, exist_ok=True)
    config = AppConfig(store=store, auth=WebhookAuth(token=WEBHOOK_TOKEN, secret=WEBHOOK_SECRET),
                       runbooks_dir=runbooks, tokens=write_tokens(directory), environ={})  # no channel set
    srv = Server(config)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def live(store_url: str, tmp_path: Path) -> Iterator[tuple[Server, Store]]:
    """A live server on an empty store, once on SQLite and once on PostgreSQL."""
    store = Store(store_url)
    store.upgrade()
    try:
        with serving(store, tmp_path / "server") as srv:
            yield srv, store
    finally:
        store.close()


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


_seeded = itertools.count()


def seed_awaiting(store: Store, requester: str, host: str = "pay-1") -> str:
    """A restart-from-pidfile run *requester* asked for at night, awaiting approval; its id.

    Stored as it is (create_run), whatever runs the store has already: each seed is asked for on
    another night, long ago, so that none counts against the runbook's limits when one is approved.
    """
    catalog = load_catalog(CATALOG)
    when = NIGHT + timedelta(days=next(_seeded))
    params = {"host": host, "service": "payments-api", "pidfile": "/run/payments-api.pid"}
    prepared = prepare(catalog, Request("restart-from-pidfile", Trigger("manual", requester), params=params,
                                        environment="prod", now=when), revision=GitRevision("0" * 40))
    assert prepared.record.status is RunStatus.AWAITING_APPROVAL, prepared.record.reason
    store.create_run(prepared.record)
    return prepared.record.id


def seed_running(store: Store, host: str = "web-2") -> str:
    """A rotate-oversized-file run already claimed by a (pretend) worker; its id."""
    catalog = load_catalog(CATALOG)
    params = {"host": host, "path": "/var/log/app.log"}
    prepared = prepare(catalog, Request("rotate-oversized-file", Trigger("manual", "root"), params=params,
                                        environment="staging"), revision=GitRevision(None))
    record = store.enqueue(candidate(catalog, prepared), lease=new_lease("worker@test"))
    assert record.status is RunStatus.RUNNING, record.reason
    return record.id


# --- a. the document -----------------------------------------------------------------------------


def test_the_document_is_openapi_3_1_and_its_refs_and_schemas_are_valid() -> None:
    assert re.fullmatch(r"3\.1\.\d+", str(SPEC["openapi"])), SPEC["openapi"]
    assert SPEC["info"]["title"] and SPEC["info"]["version"]
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    schemes = set(SPEC["components"]["securitySchemes"])
    for name, schema in SPEC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        validator(f"/components/schemas/{escape(name)}")  # compiles
    for path, method, op in operations():
        where = f"{method.upper()} {path}"
        assert op["responses"], where
        for code, response in op["responses"].items():
            assert re.fullmatch(r"[1-5][0-9][0-9]", code), f"{where}: response {code}"
            pointer, response = deref(f"/paths/{escape(path)}/{method}/responses/{code}")
            assert response["description"], f"{where} {code}"
            for media in response.get("content", {}):
                schema_pointer = f"{pointer}/content/{escape(media)}/schema"
                Draft202012Validator.check_schema(at(schema_pointer))
                REGISTRY.resolver(BASE).lookup(f"#{schema_pointer}")
        for requirement in op.get("security", SPEC.get("security", [])):
            assert set(requirement) <= schemes, f"{where}: unknown security scheme in {requirement}"
        if "requestBody" in op:
            Draft202012Validator.check_schema(at(request_schema_pointer(path, method)))
        # Path templates and path parameters name the same things.
        declared = {}
        for prefix, parameters in ((f"/paths/{escape(path)}", SPEC["paths"][path].get("parameters", [])),
                                   (f"/paths/{escape(path)}/{method}", op.get("parameters", []))):
            for i in range(len(parameters)):
                _, parameter = deref(f"{prefix}/parameters/{i}")
                declared[(parameter["name"], parameter["in"])] = parameter
        in_path = {name for (name, kind) in declared if kind == "path"}
        assert in_path == set(re.findall(r"{([^}]+)}", path)), f"{where}: path parameters {in_path}"
        assert all(p["required"] for (_, kind), p in declared.items() if kind == "path"), where
    # Every $ref anywhere resolves (local ones and alert.schema.json's).
    resolver = REGISTRY.resolver(BASE)

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(SPEC):
        resolver.lookup(ref)


def test_the_document_describes_every_route_of_the_app_and_nothing_else(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        app = create_app(AppConfig(store=store, auth=WebhookAuth(token=WEBHOOK_TOKEN), runbooks_dir=CATALOG))
        routes = set()
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static" or rule.endpoint.startswith("dashboard."):
                continue  # the dashboard's HTML pages are for people: docs/dashboard.md describes them
            assert rule.rule.startswith(SURFACE), f"route {rule.rule} is outside the documented surface"
            template = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(template, m.lower()) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    finally:
        store.close()
    documented = {(path, method) for path, method, _ in operations()}
    assert sorted(routes - documented) == [], "routes the document does not describe"
    assert sorted(documented - routes) == [], "operations the app does not have"
    assert len(SPEC["paths"]) == 19 and len(documented) == 22


@pytest.mark.parametrize(("template", "name"),
                         [(t, n) for t, names in INTAKE_PAYLOADS.items() for n in names])
def test_the_real_payloads_match_the_documented_request_bodies(template: str, name: str) -> None:
    for method in ("post", "put"):
        assert_valid(request_schema_pointer(template, method), json.loads(payload(name)), name)
    for example in at(f"/paths/{escape(template)}/post/requestBody/content/application~1json")\
            .get("examples", {}).values():
        assert (SPEC_FILE.parent / example["externalValue"]).is_file(), example


# --- b. contract -------------------------------------------------------------------------------------


def test_health_readiness_and_metrics(live: tuple[Server, Store]) -> None:
    srv, _ = live
    assert expect(call(srv, "GET", "/healthz"), 200, "/healthz", "get") == {"status": "ok"}
    ready = expect(call(srv, "GET", "/readyz"), 200, "/readyz", "get")
    assert ready["catalog"]["runbooks"] == len(RUNBOOKS)
    owners = load_catalog(CATALOG).owners
    assert owners is not None and list(ready["channels"]) == sorted(owners.channels)
    assert ready["channels"]["ops-slack"] == "not configured: set RUNBOOK_SLACK_OPS_URL"  # and still ready
    call(srv, "POST", "/api/v1/alerts", body=payload("generic/single.json"), headers=WEBHOOK)
    text = expect(call(srv, "GET", "/metrics"), 200, "/metrics", "get")
    assert 'runbook_intake_requests_total{code="202",source="generic"} 1.0' in text
    assert "runbook_store_up 1.0" in text


def test_intake_answers_as_documented(live: tuple[Server, Store]) -> None:
    srv, store = live
    runs = 0
    for template, names in INTAKE_PAYLOADS.items():
        for name in names:
            body = payload(name)
            sent = json.loads(body)
            first = expect(call(srv, "POST", template, body=body, headers=WEBHOOK), 202, template, "post")
            assert first["accepted"] == len(sent.get("alerts", [sent]))
            assert first["truncated"] == sent.get("truncatedAlerts", 0)
            runs += sum(a["run"] is not None for a in first["alerts"])
            again = expect(call(srv, "PUT", template, body=body, headers=WEBHOOK), 202, template, "put")
            assert again["repeats"] == again["accepted"]
            assert [a["repeat_of"] for a in again["alerts"]] == [a["id"] for a in first["alerts"]]
    assert runs >= 2  # DiskAlmostFull on web-1 (Alertmanager), SpoolStuck (generic): the run branch
    listed = expect(call(srv, "GET", "/api/v1/runs", token=VIEWER), 200, "/api/v1/runs", "get")["runs"]
    assert len(listed) == runs and all(r["trigger"]["kind"] == "alert" and r["alert_id"] for r in listed)
    # Signed instead of the bearer token.
    body = json.dumps({"labels": {"alertname": "Signed", "instance": "web-1"}}).encode()
    expect(call(srv, "POST", "/api/v1/alerts", body=body, headers=sign(WEBHOOK_SECRET, body)), 202,
           "/api/v1/alerts", "post")
    nameless = json.dumps({"labels": {"instance": "db-1", "severity": "critical"}}).encode()  # no alertname
    answer = expect(call(srv, "POST", "/api/v1/alerts", body=nameless, headers=WEBHOOK), 202,
                    "/api/v1/alerts", "post")
    assert answer["alerts"][0]["run"] is None and answer["alerts"][0]["incident"]
    stored = store.count_alerts()

    bad_bodies = [
        ("/api/v1/alerts", b"{not json", "not valid JSON"),
        ("/api/v1/alerts", b"[]", "payload"),
        ("/api/v1/alerts", b'{"alerts": []}', "at least one"),
        ("/api/v1/alerts", b'{"annotations": {"summary": "no labels"}}', "labels: is required"),
        ("/api/v1/alerts", b'{"labels": {"alertname": NaN}}', "NaN"),
        ("/api/v1/alerts/alertmanager", payload("grafana/firing.json"), "what Grafana sends"),
        ("/api/v1/alerts/grafana", payload("alertmanager/firing.json"), "what Alertmanager sends"),
        ("/api/v1/alerts/alertmanager", b'{"version": "4"}', "groupKey"),
        ("/api/v1/alerts/grafana", b"null", "grafana webhook object"),
    ]
    for template, body, reason in bad_bodies:
        for method in ("POST", "PUT"):
            answer = call(srv, method, template, body=body, headers=WEBHOOK)
            error = expect(answer, 400, template, method.lower())
            assert reason in error["error"], error

    body = payload("generic/single.json")
    stale = int(time.time()) - REPLAY_WINDOW - 5
    for headers, reason in [
        ({}, "missing credentials"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
        ({"Authorization": f"Basic {WEBHOOK_TOKEN}"}, "invalid bearer token"),
        (sign("wrong-secret", body), "invalid signature"),
        (sign(WEBHOOK_SECRET, body + b" "), "invalid signature"),
        (sign(WEBHOOK_SECRET, body, timestamp=stale), "replay window"),
        ({"X-Runbook-Signature": "sha256=00", "X-Runbook-Timestamp": "9" * 13}, "malformed"),
    ]:
        for template, method in itertools.product(INTAKE_PAYLOADS, ("POST", "PUT")):
            answer = call(srv, method, template, body=body, headers=headers)
            error = expect(answer, 401, template, method.lower())
            assert reason in error["error"] and WEBHOOK_TOKEN not in error["error"], error

    for template in INTAKE_PAYLOADS:
        expect(call(srv, "POST", template, body=body, headers=WEBHOOK, content_type="text/plain"), 415,
               template, "post")
        expect(call(srv, "PUT", template, body=body, headers=WEBHOOK, content_type="application/xml"), 415,
               template, "put")
    too_big = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    for template, method in itertools.product(INTAKE_PAYLOADS, ("POST", "PUT")):
        expect(call(srv, method, template, body=too_big, headers=WEBHOOK), 413, template, method.lower())
    assert store.count_alerts() == stored  # nothing refused was stored


def test_runbooks_answer_as_documented(live: tuple[Server, Store]) -> None:
    srv, _ = live
    listed = expect(call(srv, "GET", "/api/v1/runbooks", token=VIEWER), 200, "/api/v1/runbooks", "get")
    assert [rb["name"] for rb in listed["runbooks"]] == list(RUNBOOKS)
    for name in RUNBOOKS:
        detail = expect(call(srv, "GET", f"/api/v1/runbooks/{name}", token=OPERATOR), 200,
                        "/api/v1/runbooks/{name}", "get")
        assert detail["name"] == name and detail["steps"]
    missing = expect(call(srv, "GET", "/api/v1/runbooks/nope", token=ADMIN), 404,
                     "/api/v1/runbooks/{name}", "get")
    assert "disk-full-cleanup" in missing["error"]
    for token in (None, "wrong"):
        expect(call(srv, "GET", "/api/v1/runbooks", token=token), 401, "/api/v1/runbooks", "get")
        expect(call(srv, "GET", "/api/v1/runbooks/disk-full-cleanup", token=token), 401,
               "/api/v1/runbooks/{name}", "get")
    webhook_is_not_an_operator = call(srv, "GET", "/api/v1/runbooks", headers=WEBHOOK)
    expect(webhook_is_not_an_operator, 401, "/api/v1/runbooks", "get")


def test_manual_runs_and_run_listing_answer_as_documented(live: tuple[Server, Store]) -> None:
    srv, _ = live
    start = "/api/v1/runbooks/{name}/runs"

    def run(name: str, body: Any = None, token: str | None = ADMIN, **kwargs: Any) -> Answer:
        return call(srv, "POST", f"/api/v1/runbooks/{name}/runs", body=body, token=token, **kwargs)

    answer = run("disk-full-cleanup", {"params": {"host": "web-1"}, "environment": "prod"})
    queued = expect(answer, 201, start, "post")
    assert queued["status"] == "queued"
    assert queued["trigger"] == {"kind": "manual", "actor": "root", "alert": None}
    assert answer.headers["Location"] == f"/api/v1/runs/{queued['id']}"
    dry = expect(run("disk-full-cleanup", {"params": {"host": "web-2"}, "environment": "staging",
                                           "dry_run": True}), 201, start, "post")
    assert dry["dry_run"] is True and dry["status"] == "queued"
    ghost = expect(run("disk-full-cleanup", {"params": {"host": "ghost"}, "environment": "prod"}), 201, start,
                   "post")
    assert ghost["status"] == "rejected" and "not in the inventory" in ghost["reason"]
    outside = expect(run("clear-stuck-spool", {"params": {"spool_dir": "/var/spool/x"},
                                               "environment": "dev"}), 201, start, "post")
    assert outside["status"] == "rejected" and "outside the runbook's authority" in outside["reason"]
    pending = expect(run("restart-from-pidfile", {"params": {"host": "pay-1", "service": "payments-api",
                                                             "pidfile": "/run/p.pid"}, "environment": "prod"},
                         token=OPERATOR), 201, start, "post")
    assert pending["status"] in ("queued", "awaiting_approval")  # which depends on the hour

    for body, reason in [
        ({"bogus": 1}, "unknown field 'bogus'"),
        ({"params": []}, "params: expected dict"),
        ({"environment": 5}, "environment: expected str"),
        ({"dry_run": "yes"}, "dry_run: expected bool"),
        ({"params": {"nope": 1}, "environment": "prod"}, "param nope"),
        ({"params": {"host": "web-1", "max_age_days": 1000}, "environment": "prod"}, "maximum"),
        ({"params": {"host": "web-1", "max_age_days": True}, "environment": "prod"}, "expected an integer"),
        ({"params": {"host": "web-1"}}, "say which environment"),
        (b"[1]", "body must be a JSON object"),
        (b"{bad", "not valid JSON"),
        (None, "param host: a value is required"),
        (b"   ", "param host: a value is required"),
    ]:
        error = expect(run("disk-full-cleanup", body), 400, start, "post")
        assert reason in error["error"], (body, error)
    expect(run("disk-full-cleanup", b"x", content_type="text/plain"), 415, start, "post")
    expect(run("nope", {"environment": "prod"}), 404, start, "post")
    expect(run("nope", b"x", content_type="text/plain"), 404, start, "post")  # the runbook is looked up first
    forbidden = expect(run("disk-full-cleanup", {"params": {"host": "web-1"}, "environment": "prod"},
                           token=OPERATOR), 403, start, "post")
    assert "owned by team platform-ops" in forbidden["error"]
    expect(run("disk-full-cleanup", {}, token=VIEWER), 403, start, "post")
    expect(run("disk-full-cleanup", {}, token=None), 401, start, "post")
    expect(run("disk-full-cleanup", {}, token="wrong"), 401, start, "post")
    expect(run("disk-full-cleanup", b"[" + b" " * (5 * 1024 * 1024) + b"]"), 413, start, "post")

    runs = "/api/v1/runs"

    def listing(query: str = "", token: str | None = VIEWER) -> Answer:
        return call(srv, "GET", f"{runs}{query}", token=token)

    everything = expect(listing(), 200, runs, "get")["runs"]
    assert everything[0]["runbook"] == "disk-full-cleanup"
    assert everything[0]["reason"].startswith("forbidden:")
    assert all(r["steps"] == [] and r["timeline"] == [] for r in everything)
    assert len(everything) == 7  # 5 created, 2 forbidden attempts on the record
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    for query, count in [
        ("?runbook=disk-full-cleanup", 5),
        ("?status=queued,rejected", None),
        ("?status=rejected", 4),
        ("?since=1h", 7),
        ("?since=" + urllib.parse.quote(hour_ago), 7),
        ("?since=1h&runbook=clear-stuck-spool&status=rejected&limit=500", 1),
        ("?limit=1", 1),
        ("?runbook=&status=&since=", 7),
    ]:
        found = expect(listing(query), 200, runs, "get")["runs"]
        assert count is None or len(found) == count, (query, len(found))
    for query, reason in [
        ("?limit=0", "limit"), ("?limit=501", "limit"), ("?limit=ten", "limit"), ("?limit=-1", "limit"),
        ("?since=yesterday", "since"), ("?since=2026-13-01T00:00:00Z", "since"), ("?since=1y", "since"),
        ("?since=99999999d", "longest"), ("?page=2", "unknown query parameter 'page'"),
    ]:
        error = expect(listing(query), 400, runs, "get")
        assert reason in error["error"], (query, error)
    expect(listing(token=None), 401, runs, "get")

    one = "/api/v1/runs/{run_id}"
    shown = expect(call(srv, "GET", f"/api/v1/runs/{queued['id']}", token=VIEWER), 200, one, "get")
    assert [e["event"] for e in shown["timeline"]] == ["created", "queued"]
    by_prefix = expect(call(srv, "GET", f"/api/v1/runs/{queued['id'][:8]}", token=VIEWER), 200, one, "get")
    assert by_prefix["id"] == queued["id"]
    for missing in ("nope", "0" * 32, queued["id"][:5]):
        expect(call(srv, "GET", f"/api/v1/runs/{missing}", token=VIEWER), 404, one, "get")
    expect(call(srv, "GET", f"/api/v1/runs/{queued['id']}"), 401, one, "get")


def test_approve_reject_and_cancel_answer_as_documented(live: tuple[Server, Store]) -> None:
    srv, store = live
    first, second = seed_awaiting(store, "carol"), seed_awaiting(store, "carol")  # both on pay-1
    own = seed_awaiting(store, "olga", host="web-1")
    approve, reject, cancel = (f"/api/v1/runs/{{run_id}}/{a}" for a in ("approve", "reject", "cancel"))

    def act(action: str, run_id: str, token: str | None = ADMIN, body: Any = None, **kwargs: Any) -> Answer:
        return call(srv, "POST", f"/api/v1/runs/{run_id}/{action}", token=token, body=body, **kwargs)

    approved = expect(act("approve", first, OPERATOR), 200, approve, "post")
    assert approved["status"] == "queued" and approved["decided_by"] == "olga"
    error = expect(act("approve", first, OPERATOR), 409, approve, "post")
    assert "not awaiting approval" in error["error"]
    error = expect(act("approve", second[:10], ADMIN, {"reason": "go"}), 409, approve, "post")
    assert "concurrency" in error["error"]  # the first, now queued on pay-1, holds the only slot
    rejected = expect(act("reject", second, ADMIN, {"reason": "not tonight"}), 200, reject, "post")
    assert rejected["status"] == "rejected" and rejected["reason"] == "rejected by root: not tonight"
    expect(act("reject", second, ADMIN), 409, reject, "post")
    four_eyes = expect(act("approve", own, OPERATOR), 403, approve, "post")
    assert "four eyes" in four_eyes["error"]
    expect(act("approve", own, VIEWER), 403, approve, "post")
    expect(act("reject", own, VIEWER), 403, reject, "post")
    for action, template in (("approve", approve), ("reject", reject)):
        expect(act(action, own, ADMIN, b"[1]"), 400, template, "post")
        expect(act(action, own, ADMIN, {"reason": 5}), 400, template, "post")
        expect(act(action, own, ADMIN, b"{", content_type="application/json"), 400, template, "post")
        expect(act(action, own, ADMIN, b"ok", content_type="text/plain"), 415, template, "post")
        expect(act(action, own, ADMIN, b"[" + b" " * (5 * 1024 * 1024) + b"]"), 413, template, "post")
        expect(act(action, "nope", ADMIN), 404, template, "post")
        expect(act(action, own, None), 401, template, "post")
    done = expect(act("reject", own, ADMIN, {"reason": None, "ignored": 1}), 200, reject, "post")
    assert done["status"] == "rejected" and done["decided_by"] == "root"

    platform = expect(call(srv, "POST", "/api/v1/runbooks/disk-full-cleanup/runs", token=ADMIN,
                           body={"params": {"host": "web-1"}, "environment": "prod"}), 201,
                      "/api/v1/runbooks/{name}/runs", "post")
    expect(act("approve", platform["id"], OPERATOR), 403, approve, "post")  # not olga's team
    expect(act("cancel", platform["id"], OPERATOR), 403, cancel, "post")
    expect(act("cancel", platform["id"], VIEWER), 403, cancel, "post")
    canceled = expect(act("cancel", platform["id"], ADMIN, b"ignored"), 202, cancel, "post")
    assert canceled["status"] == "canceled" and canceled["finished_at"] is not None
    expect(act("cancel", platform["id"], ADMIN), 409, cancel, "post")
    running = seed_running(store)
    stopping = expect(act("cancel", running, ADMIN), 202, cancel, "post")
    assert stopping["status"] == "running" and stopping["cancel_requested"] is True
    expect(act("cancel", "nope", ADMIN), 404, cancel, "post")
    expect(act("cancel", running, None), 401, cancel, "post")
    # A run with a step and an end: the Step schema and the durations.
    began = datetime.now(UTC) - timedelta(seconds=3)
    store.save_step(running, StepRecord(index=0, name="Keep one copy as FILE.1", kind="step", host="web-2",
                                        status=StepStatus.CHANGED, changed=True, started_at=began,
                                        finished_at=began + timedelta(seconds=1.5), rc=0, stdout="copied"))
    store.set_status(running, RunStatus.CANCELED, detail="stopped by the worker")
    ended = expect(call(srv, "GET", f"/api/v1/runs/{running}", token=VIEWER), 200, "/api/v1/runs/{run_id}",
                   "get")
    assert ended["steps"][0]["duration"] == 1.5 and ended["duration"] is not None
    expect(act("cancel", running, ADMIN), 409, cancel, "post")


def test_an_ambiguous_run_id_prefix_is_a_400_naming_the_runs(live: tuple[Server, Store]) -> None:
    srv, store = live
    prefix = "abcdef"
    for suffix in ("0" * 26, "1" * 26):
        store.create_run(RunRecord(
            id=prefix + suffix, runbook="restart-from-pidfile", status=RunStatus.AWAITING_APPROVAL,
            trigger=Trigger("manual", "carol"), revision=GitRevision(None), params={}, hosts=[],
            verdict="awaiting_approval", reason="seeded", created_at=datetime.now(UTC)))
    one = "/api/v1/runs/{run_id}"
    error = expect(call(srv, "GET", f"/api/v1/runs/{prefix}", token=VIEWER), 400, one, "get")
    assert "ambiguous" in error["error"] and prefix + "0" * 26 in error["error"]
    for action in ("approve", "reject", "cancel"):
        expect(call(srv, "POST", f"/api/v1/runs/{prefix}/{action}", token=ADMIN), 400,
               f"/api/v1/runs/{{run_id}}/{action}", "post")
    shown = expect(call(srv, "GET", f"/api/v1/runs/{prefix}1", token=VIEWER), 200, one, "get")
    assert shown["id"] == prefix + "1" * 26


def test_reload_answers_as_documented(live: tuple[Server, Store]) -> None:
    srv, _ = live
    reloaded = expect(call(srv, "POST", "/api/v1/reload", token=ADMIN), 200, "/api/v1/reload", "post")
    assert reloaded["runbooks"] == len(RUNBOOKS) and reloaded["error"] is None
    for token in (OPERATOR, VIEWER):
        expect(call(srv, "POST", "/api/v1/reload", token=token), 403, "/api/v1/reload", "post")
    expect(call(srv, "POST", "/api/v1/reload"), 401, "/api/v1/reload", "post")


def test_incidents_answer_as_documented(live: tuple[Server, Store]) -> None:
    srv, _ = live
    posted = expect(call(srv, "POST", "/api/v1/alerts/alertmanager", body=payload("alertmanager/firing.json"),
                         headers=WEBHOOK), 202, "/api/v1/alerts/alertmanager", "post")
    incident_id = posted["alerts"][0]["incident"]
    listed = expect(call(srv, "GET", "/api/v1/incidents?status=open&since=1h", token=VIEWER), 200,
                    "/api/v1/incidents", "get")
    assert [i["id"] for i in listed["incidents"]] == [incident_id]
    expect(call(srv, "GET", "/api/v1/incidents?status=bogus", token=VIEWER), 400, "/api/v1/incidents", "get")
    expect(call(srv, "GET", "/api/v1/incidents"), 401, "/api/v1/incidents", "get")
    one = "/api/v1/incidents/{incident_id}"
    shown = expect(call(srv, "GET", f"/api/v1/incidents/{incident_id[:8]}", token=VIEWER), 200, one, "get")
    assert shown["id"] == incident_id and len(shown["alerts"]) == len(posted["alerts"])
    expect(call(srv, "GET", "/api/v1/incidents/nope", token=VIEWER), 404, one, "get")
    ack, resolve = one + "/ack", one + "/resolve"
    expect(call(srv, "POST", f"/api/v1/incidents/{incident_id}/ack", token=VIEWER), 403, ack, "post")
    expect(call(srv, "POST", f"/api/v1/incidents/{incident_id}/ack", token=ADMIN), 200, ack, "post")
    expect(call(srv, "POST", f"/api/v1/incidents/{incident_id}/ack", token=ADMIN), 409, ack, "post")
    expect(call(srv, "POST", f"/api/v1/incidents/{incident_id}/resolve", body=b"x", content_type="text/plain",
                token=ADMIN), 415, resolve, "post")
    done = expect(call(srv, "POST", f"/api/v1/incidents/{incident_id}/resolve", body={"reason": "ok"},
                       token=ADMIN), 200, resolve, "post")
    assert done["status"] == "resolved"
    expect(call(srv, "POST", f"/api/v1/incidents/{incident_id}/resolve", token=ADMIN), 409, resolve, "post")


def test_a_refused_reload_and_a_missing_catalog_answer_as_documented(
    sqlite_store_url: str, tmp_path: Path, catalog_copy: Path
) -> None:
    store = Store(sqlite_store_url)
    store.upgrade()
    try:
        with serving(store, tmp_path / "a", runbooks=catalog_copy) as srv:
            (catalog_copy / "disk-full-cleanup.yaml").write_text("kind: Runbook\nname: [broken\n")
            refused = expect(call(srv, "POST", "/api/v1/reload", token=ADMIN), 422, "/api/v1/reload", "post")
            assert refused["ok"] is False and refused["runbooks"] == len(RUNBOOKS)
            ready = expect(call(srv, "GET", "/readyz"), 200, "/readyz", "get")  # the last good one serves
            assert ready["catalog"]["last_reload_error"] and ready["catalog"]["reload_failures"] == 1
            expect(call(srv, "GET", "/api/v1/runbooks", token=VIEWER), 200, "/api/v1/runbooks", "get")
        with serving(store, tmp_path / "b", runbooks=tmp_path / "no-catalog") as srv:
            for path, template in [("/api/v1/runbooks", "/api/v1/runbooks"),
                                   ("/api/v1/runbooks/disk-full-cleanup", "/api/v1/runbooks/{name}")]:
                expect(call(srv, "GET", path, token=VIEWER), 503, template, "get")
            expect(call(srv, "POST", "/api/v1/runbooks/disk-full-cleanup/runs", token=ADMIN, body={}), 503,
                   "/api/v1/runbooks/{name}/runs", "post")
            unready = expect(call(srv, "GET", "/readyz"), 503, "/readyz", "get")
            assert unready["checks"]["store"] == "ok" and "revision" not in unready["catalog"]
            stored = expect(call(srv, "POST", "/api/v1/alerts", body=payload("generic/single.json"),
                                 headers=WEBHOOK), 202, "/api/v1/alerts", "post")  # alerts are never lost
            assert stored["alerts"][0]["run"] is None
            expect(call(srv, "POST", "/api/v1/reload", token=ADMIN), 422, "/api/v1/reload", "post")
    finally:
        store.close()


def test_an_unavailable_store_answers_503_as_documented(tmp_path: Path) -> None:
    store = Store("postgresql://postgres@127.0.0.1:1/none")  # nothing listens there
    try:
        with serving(store, tmp_path) as srv:
            for template, method in itertools.product(INTAKE_PAYLOADS, ("POST", "PUT")):
                body = payload(INTAKE_PAYLOADS[template][0])
                answer = call(srv, method, template, body=body, headers=WEBHOOK)
                expect(answer, 503, template, method.lower())
            expect(call(srv, "GET", "/readyz"), 503, "/readyz", "get")
            expect(call(srv, "GET", "/api/v1/runs", token=VIEWER), 503, "/api/v1/runs", "get")
            expect(call(srv, "GET", "/api/v1/runs/0123456789", token=VIEWER), 503,
                   "/api/v1/runs/{run_id}", "get")
            for action in ("approve", "reject", "cancel"):
                expect(call(srv, "POST", f"/api/v1/runs/0123456789/{action}", token=ADMIN), 503,
                       f"/api/v1/runs/{{run_id}}/{action}", "post")
            expect(call(srv, "POST", "/api/v1/runbooks/disk-full-cleanup/runs", token=ADMIN,
                        body={"params": {"host": "web-1"}, "environment": "prod"}), 503,
                   "/api/v1/runbooks/{name}/runs", "post")
            expect(call(srv, "GET", "/api/v1/runbooks", token=VIEWER), 200, "/api/v1/runbooks", "get")
            text = expect(call(srv, "GET", "/metrics"), 200, "/metrics", "get")
            assert "runbook_store_up 0.0" in text
    finally:
        store.close()


# --- c. fuzz -----------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written under the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)
NASTY = ["", " ", "\x00", "\n", "firing", "resolved", "4", "1", "prod", "staging", "dev", "web-1", "pay-1",
         "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
         "2026-02-30T10:00:00Z", "2026-03-03T10:00:00Z", "/var/log/app", "/var/log/../../etc", "x" * 5000,
         "NaN", "\u00b2", "\u00e9", "\U0001f525", "a.b", "1h", "true"]
KEYS = ["alerts", "labels", "alertname", "annotations", "status", "startsAt", "endsAt", "fingerprint",
        "generatorURL", "version", "groupKey", "truncatedAlerts", "orgId", "params", "environment", "dry_run",
        "reason", "env", "instance", "mountpoint", "host"]
PARAM_NAMES = ["host", "log_dir", "max_age_days", "spool_dir", "older_than_minutes", "service", "pidfile",
               "path", "compress", "bogus"]
PARAM_VALUES = ["web-1", "web-2", "pay-1", "relay-1", "/var/log/app", "/var/spool/x", "payments-api",
                "/run/a.pid", "/var/log/big.log", 3, 30, 1440, 0, True, "true", "off", None]
DELETE = object()


def json_values() -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
               | st.sampled_from(NASTY))
    keys = st.text(max_size=8) | st.sampled_from(KEYS)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


def key_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside *value* (dict keys and list indexes)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    paths = []
    for key, item in items:
        paths.append((*prefix, key))
        paths.extend(key_paths(item, (*prefix, key)))
    return paths


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """*document* with one value somewhere in it replaced by arbitrary JSON, or removed."""
    data = copy.deepcopy(document)
    path = draw(st.sampled_from(key_paths(data)))
    *parents, last = path
    node = data
    for key in parents:
        node = node[key]
    value = draw(st.just(DELETE) | json_values())
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


ALL_PAYLOADS = [json.loads(payload(name)) for names in INTAKE_PAYLOADS.values() for name in names]


def intake_bodies(template: str) -> st.SearchStrategy[bytes]:
    schema = inlined(at(request_schema_pointer(template)))
    return st.one_of(
        from_schema(schema).map(encoded),
        st.sampled_from(ALL_PAYLOADS).flatmap(mutated).map(encoded),
        json_values().map(encoded),
        st.binary(max_size=300),
    )


INTAKE_BODIES = {template: intake_bodies(template) for template in INTAKE_PAYLOADS}
CONTENT_TYPES = st.sampled_from(["application/json"] * 6 + ["application/json; charset=utf-8", "text/plain"])


@dataclass
class Fuzzed:
    srv: Server
    store: Store
    run_ids: list[str]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """One live server on SQLite for the whole module's fuzz, with runs to approve, reject and cancel."""
    directory = tmp_path_factory.mktemp("openapi-fuzz")
    store = Store(f"sqlite:///{directory / 'runs.db'}")
    store.upgrade()
    try:
        with serving(store, directory) as srv:
            hosts = ("pay-1", "web-1", "web-2", "relay-1", "db-1")
            ids = [seed_awaiting(store, "carol", host) for host in hosts]
            ids += [seed_awaiting(store, "olga"), seed_running(store, "web-1"), seed_running(store, "db-1")]
            yield Fuzzed(srv, store, ids)
    finally:
        store.close()


def assert_documented_and_no_5xx(answer: Answer, template: str, method: str) -> None:
    assert answer.status < 500, f"{method.upper()} {template}: {answer.status}: {answer.body[:500]!r}"
    check(answer, template, method)


@FUZZ
@given(
    template=st.sampled_from(sorted(INTAKE_PAYLOADS)),
    method=st.sampled_from(["POST", "PUT"]),
    data=st.data(),
    content_type=CONTENT_TYPES,
    signed=st.booleans(),
)
def test_fuzz_intake_never_answers_5xx(fuzzed: Fuzzed, template: str, method: str, data: st.DataObject,
                                       content_type: str, signed: bool) -> None:
    body = data.draw(INTAKE_BODIES[template], label="body")
    headers = sign(WEBHOOK_SECRET, body) if signed else WEBHOOK
    answer = call(fuzzed.srv, method, template, body=body, headers=headers, content_type=content_type)
    assert_documented_and_no_5xx(answer, template, method.lower())


START_SCHEMA_BODIES = from_schema(inlined(at(request_schema_pointer("/api/v1/runbooks/{name}/runs"))))
RUNBOOK_PARAMS = {name: sorted(runbook.params) for name, runbook in load_catalog(CATALOG).runbooks.items()}


VALID_START = {
    "clear-stuck-spool": {"params": {"spool_dir": "/var/spool/postfix"}, "environment": "staging"},
    "disk-full-cleanup": {"params": {"host": "web-1", "max_age_days": 7}, "environment": "prod"},
    "restart-from-pidfile": {"params": {"host": "pay-1", "service": "payments-api", "pidfile": "/run/a.pid"},
                             "environment": "prod"},
    "rotate-oversized-file": {"params": {"host": "web-2", "path": "/var/log/big.log"}, "environment": "dev"},
}


def start_bodies(runbook: str) -> st.SearchStrategy[bytes | None]:
    """Manual-run bodies for *runbook*: a valid one as it is or with one value changed, and worse."""
    valid = VALID_START.get(runbook, {"params": {}, "environment": "prod"})
    plausible = st.tuples(st.just(valid) | mutated(valid), st.none() | st.booleans()).map(
        lambda body_dry: body_dry[0] if body_dry[1] is None else {**body_dry[0], "dry_run": body_dry[1]})
    value = st.sampled_from(PARAM_VALUES) | json_values()
    own = st.fixed_dictionaries({}, optional={name: value for name in RUNBOOK_PARAMS.get(runbook, [])})
    fields = st.fixed_dictionaries({}, optional={
        "params": own | st.dictionaries(st.sampled_from(PARAM_NAMES), value, max_size=4) | json_values(),
        "environment": st.sampled_from(["prod", "staging", "dev", ""]) | st.text(max_size=8) | st.none(),
        "dry_run": st.booleans(),
    })
    return st.one_of(plausible.map(encoded), plausible.map(encoded), fields.map(encoded),
                     START_SCHEMA_BODIES.map(encoded), json_values().map(encoded), st.binary(max_size=100),
                     st.none())


START_BODIES = {name: start_bodies(name) for name in [*RUNBOOKS, "nope"]}
DECISION_BODIES = st.one_of(
    from_schema(inlined(at(request_schema_pointer("/api/v1/runs/{run_id}/approve")))).map(encoded),
    json_values().map(encoded),
    st.binary(max_size=100),
    st.none(),
)


@FUZZ
@given(
    action=st.sampled_from(["start", "approve", "reject", "cancel", "reload"]),
    token=st.sampled_from([ADMIN, OPERATOR, VIEWER]),
    data=st.data(),
    content_type=CONTENT_TYPES,
)
def test_fuzz_operator_api_never_answers_5xx(fuzzed: Fuzzed, action: str, token: str, data: st.DataObject,
                                             content_type: str) -> None:
    if action == "start":
        name = data.draw(st.sampled_from([*RUNBOOKS, "nope"]), label="runbook")
        template, path = "/api/v1/runbooks/{name}/runs", f"/api/v1/runbooks/{name}/runs"
        body = data.draw(START_BODIES[name], label="body")
    elif action == "reload":
        template = path = "/api/v1/reload"
        body = data.draw(st.none() | st.binary(max_size=50), label="body")
    else:
        run_id = data.draw(st.sampled_from([*fuzzed.run_ids, "nope", fuzzed.run_ids[0][:7]]), label="run_id")
        template, path = f"/api/v1/runs/{{run_id}}/{action}", f"/api/v1/runs/{run_id}/{action}"
        body = data.draw(DECISION_BODIES, label="body")
    answer = call(fuzzed.srv, "POST", path, body=body, token=token, content_type=content_type)
    assert_documented_and_no_5xx(answer, template, "post")


# --- inputs that once answered 5xx ----------------------------------------------------------------------


def test_unknown_status_filter_is_a_400_not_a_503(fuzzed: Fuzzed) -> None:
    answer = call(fuzzed.srv, "GET", "/api/v1/runs?status=bogus", token=VIEWER)
    error = expect(answer, 400, "/api/v1/runs", "get")
    assert "bogus" in error["error"]


def test_unicode_digit_limit_is_a_400_not_a_500(fuzzed: Fuzzed) -> None:
    answer = call(fuzzed.srv, "GET", "/api/v1/runs?limit=%C2%B2", token=VIEWER)
    expect(answer, 400, "/api/v1/runs", "get")


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_since_outside_the_calendar_is_a_400_not_a_503(fuzzed: Fuzzed, since: str) -> None:
    answer = call(fuzzed.srv, "GET", "/api/v1/runs?since=" + urllib.parse.quote(since), token=VIEWER)
    expect(answer, 400, "/api/v1/runs", "get")


@pytest.mark.parametrize("template", sorted(INTAKE_PAYLOADS))
def test_unicode_digit_signature_timestamp_is_a_401_not_a_500(fuzzed: Fuzzed, template: str) -> None:
    headers = {"X-Runbook-Timestamp": "\u00b2", "X-Runbook-Signature": "sha256=00"}
    answer = call(fuzzed.srv, "POST", template, body=payload("generic/minimal.json"), headers=headers)
    expect(answer, 401, template, "post")


@pytest.mark.parametrize("case", ["environment", "param", "reason"])
def test_lone_surrogate_in_operator_input_is_a_400_not_a_5xx(fuzzed: Fuzzed, case: str) -> None:
    if case == "reason":
        run_id = seed_awaiting(fuzzed.store, "carol", host="web-2")
        template, path = "/api/v1/runs/{run_id}/reject", f"/api/v1/runs/{run_id}/reject"
        body = b'{"reason": "\\ud800"}'
    else:
        template, path = "/api/v1/runbooks/{name}/runs", "/api/v1/runbooks/disk-full-cleanup/runs"
        body = (b'{"environment": "\\ud800", "params": {"host": "web-1"}}' if case == "environment"
                else b'{"environment": "prod", "params": {"host": "\\ud800"}}')
    expect(call(fuzzed.srv, "POST", path, body=body, token=ADMIN), 400, template, "post")


def test_null_dry_run_is_not_a_503(fuzzed: Fuzzed) -> None:
    body = {"params": {"host": "web-2"}, "environment": "staging", "dry_run": None}
    answer = call(fuzzed.srv, "POST", "/api/v1/runbooks/disk-full-cleanup/runs", body=body, token=ADMIN)
    assert answer.status in (201, 400), answer
    check(answer, "/api/v1/runbooks/{name}/runs", "post")


@pytest.mark.parametrize("alert", [
    {"labels": {"alertname": "A", "env": "pr\u0000od"}},
    {"labels": {"alertname": "A"}, "fingerprint": "f\u0000"},
    {"labels": {"alertname": "A"}, "annotations": {"summary": "\u0000"}},
    {"labels": {"alertname": "A"}, "ignored": "\u0000"},
    {"labels": {"alertname": "A"}, "ignored": "\ud800"},
], ids=["label", "fingerprint", "annotation", "ignored-nul", "ignored-surrogate"])
def test_nul_in_an_alert_is_a_400_not_a_503_on_postgresql(
    postgresql_store_url: str, tmp_path: Path, alert: dict[str, Any]
) -> None:
    store = Store(postgresql_store_url)
    store.upgrade()
    try:
        with serving(store, tmp_path) as srv:
            answer = call(srv, "POST", "/api/v1/alerts", body=alert, headers=WEBHOOK)
            expect(answer, 400, "/api/v1/alerts", "post")
    finally:
        store.close()
