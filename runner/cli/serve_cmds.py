"""``runbook serve`` (the HTTP receiver and API, served by waitress, with embedded workers),
``runbook worker`` (workers alone) and ``runbook token new``."""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click
from waitress.server import create_server

from runner.catalog import find_root
from runner.cli import fail, main, open_store, settings
from runner.errors import RunbookError
from runner.escalation import Escalator, report_channels
from runner.runs import LEASE, MIN_LEASE, set_lease
from runner.service import CatalogHolder
from runner.store import Store
from runner.web import AppConfig, create_app, runtime
from runner.web.auth import WebhookAuth
from runner.web.tokens import Role, hash_token, load_tokens, new_token
from runner.worker import DEFAULT_GRACE, POLL_INTERVAL, WorkerPool

log = logging.getLogger("runner.serve")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _open() -> tuple[Store, CatalogHolder]:
    """The store (migrated) and the catalog holder, loaded once; exit 2 when nothing valid loads.

    Notification channels that cannot send from here are logged once, as a warning.
    """
    try:
        store = open_store()
        store.upgrade()
    except RunbookError as e:
        fail(str(e), 2)
    holder = CatalogHolder(find_root(settings().runbooks_dir))
    result = holder.reload()
    if not result.ok:
        fail(f"runbooks not loaded: {result.error}", 2)
    report_channels(holder)  # one warning now, and after a reload that changes it; not per message
    return store, holder


def _listen(app: Any, host: str, port: int, threads: int) -> Any:
    """The waitress server bound to *host*:*port*, or one clear line on why it cannot be."""
    try:
        return create_server(app, host=host, port=port, threads=threads, ident="runbook-runner")
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use (another runbook serve?); "
                 f"choose another with --port, or --port 0 for any free one", 2)
        if e.errno == errno.EACCES:
            fail(f"not allowed to listen on port {port}: ports below 1024 need privileges; "
                 "choose another with --port", 2)
        if e.errno == errno.EADDRNOTAVAIL:
            fail(f"cannot listen on {host}: not an address of this machine; check --host", 2)
        fail(f"cannot listen on {host}:{port}: {e.strerror or e}; check --host and --port", 2)


def _on_signals(stop: threading.Event, holder: CatalogHolder) -> None:
    """SIGTERM/SIGINT set *stop*; SIGHUP reloads the catalog (in a thread: the handler returns at once)."""

    def terminate(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second signal: the operator does not want to wait for the grace period
            log.warning("%s again: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: shutting down", signal.Signals(signum).name)
        stop.set()

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=holder.reload, name="reload", daemon=True).start()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGHUP, hangup)


workers_option = click.option("--workers", type=click.IntRange(0, 64), default=1, show_default=True,
                              help="Worker threads executing runs (0: intake only).")
grace_option = click.option("--grace", type=click.FloatRange(0), default=DEFAULT_GRACE, show_default=True,
                            help="Seconds running runs get to finish on SIGTERM before they are interrupted.")

listen_option = click.option(
    "--listen/--no-listen", default=True, show_default=True, envvar="RUNBOOK_LISTEN",
    help="Wake idle workers by PostgreSQL LISTEN/NOTIFY (off behind a pooler in transaction mode, "
         "where LISTEN does not work: then they only poll). Env RUNBOOK_LISTEN.")
poll_option = click.option(
    "--poll", type=click.FloatRange(0.01, 60), default=POLL_INTERVAL, show_default=True,
    help="Seconds between polls of an idle worker while nothing wakes it (LISTEN up: 10x this, at least 2).")

lease_option = click.option(
    "--lease", type=click.FloatRange(MIN_LEASE, 3600), default=LEASE.total_seconds(), show_default=True,
    envvar="RUNBOOK_LEASE_SECONDS",
    help="Seconds a claimed run survives its worker's silence before any live worker records it "
         "interrupted (renewed every third of it). Env RUNBOOK_LEASE_SECONDS.")


def _pool(store: Store, holder: CatalogHolder, *, size: int, grace: float, listen: bool, poll: float,
          lease: float, **extra: Any) -> WorkerPool:
    set_lease(lease)  # before the pool exists: its heartbeat renews every third of it
    return WorkerPool(store, lambda: holder.active, size=size, grace=grace, listen=listen, poll=poll,
                      listen_poll=max(10 * poll, 2.0), **extra)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Request threads.")
@workers_option
@grace_option
@listen_option
@poll_option
@lease_option
@click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path), envvar="RUNBOOK_TOKENS_FILE",
              help="Operator tokens (hashed) for the API; env RUNBOOK_TOKENS_FILE.")
@click.option("--insecure-local", is_flag=True,
              help="Accept alerts and API calls without credentials; only on a loopback address.")
def serve(host: str, port: int, threads: int, workers: int,
          grace: float, listen: bool, poll: float, lease: float, tokens_file: Path | None,
          insecure_local: bool) -> None:
    """Receive alerts and serve the operator API; embedded workers execute the runs.

    Webhook credentials come from RUNBOOK_WEBHOOK_TOKEN (bearer token) and/or
    RUNBOOK_WEBHOOK_SECRET (HMAC-SHA256 signature); without either, the server refuses to
    start. SIGHUP or POST /api/v1/reload reloads the runbooks; SIGTERM stops claiming runs,
    lets running ones finish within --grace, then stops.

    \b
    Example:
      RUNBOOK_WEBHOOK_TOKEN=$(cat token) RUNBOOK_TOKENS_FILE=tokens.yaml \\
        runbook serve --host 0.0.0.0 --port 8080 --workers 2
      runbook serve --insecure-local
    """
    auth = WebhookAuth(token=os.environ.get("RUNBOOK_WEBHOOK_TOKEN") or None,
                       secret=os.environ.get("RUNBOOK_WEBHOOK_SECRET") or None, insecure=insecure_local)
    if not auth.configured and not insecure_local:
        fail("no webhook credentials: set RUNBOOK_WEBHOOK_TOKEN and/or RUNBOOK_WEBHOOK_SECRET "
             "(or --insecure-local on a laptop)", 2)
    if insecure_local and not _loopback(host):
        fail(f"--insecure-local listens on loopback addresses only, not {host}", 2)
    try:
        tokens = load_tokens(tokens_file)
    except RunbookError as e:
        fail(f"cannot read the tokens file: {e}", 2)
    _logging()
    store, holder = _open()
    app = create_app(AppConfig(store=store, auth=auth, catalog=holder, tokens=tokens,
                               secret_key=os.environ.get("RUNBOOK_SECRET_KEY") or None))
    with app.app_context():
        state = runtime()
    pool = _pool(store, holder, size=workers, grace=grace, listen=listen, poll=poll, lease=lease,
                 on_finish=state.metrics.run_finished) if workers else None
    if pool is not None:
        state.on_queued.append(pool.notify)
    escalator = Escalator(store, lambda: holder.active) if workers else None
    server = _listen(app, host, port, threads)
    stop = threading.Event()
    _on_signals(stop, holder)
    if pool is not None:
        pool.start()
    if escalator is not None:
        escalator.start()
    if tokens is None and not insecure_local:
        log.warning("no RUNBOOK_TOKENS_FILE: the operator API answers 401 to everyone")
    bound = getattr(server, "effective_port", port)
    click.echo(f"listening on http://{host}:{bound} (store {store.display_url}, "
               f"runbooks {holder.active.commit}, {workers} worker(s)"
               + (f", {pool.wakeup}" if pool is not None else "") + ")", err=True)
    serving = threading.Thread(target=server.run, name="http", daemon=True)
    serving.start()
    stop.wait()
    server.close()  # no new connections; the requests already in progress finish below
    server.task_dispatcher.shutdown(cancel_pending=False, timeout=10)
    if pool is not None:
        pool.stop()  # stop claiming; running runs finish within the grace period, or are interrupted
    if escalator is not None:
        escalator.stop()
    store.close()


@main.command()
@workers_option
@grace_option
@listen_option
@poll_option
@lease_option
def worker(workers: int, grace: float, listen: bool,
           poll: float, lease: float) -> None:
    """Execute queued runs from the store, without serving HTTP (scale them apart from intake).

    \b
    Example:
      RUNBOOK_DB_URL=postgresql://runbook@db/runbook runbook worker --workers 4
    """
    _logging()
    store, holder = _open()
    pool = _pool(store, holder, size=max(workers, 1), grace=grace, listen=listen, poll=poll, lease=lease)
    escalator = Escalator(store, lambda: holder.active)
    stop = threading.Event()
    _on_signals(stop, holder)
    pool.start()
    escalator.start()
    click.echo(f"{pool.size} worker(s) on {store.display_url} (runbooks {holder.active.commit}; "
               f"{pool.wakeup})", err=True)
    stop.wait()
    pool.stop()
    escalator.stop()
    store.close()


@main.group()
def token() -> None:
    """Operator tokens for the API."""


@token.command("new")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="operator", show_default=True)
@click.option("--team", "teams", multiple=True, help="A team the identity acts for (repeatable).")
def token_new(name: str, role: str, teams: tuple[str, ...]) -> None:
    """Make a token: prints the token once (give it to NAME) and the entry for the tokens file.

    \b
    Example:
      runbook token new alice --team storage >> tokens.yaml
    """
    secret = new_token()
    click.echo(f"# token for {name} (shown once, keep it secret): {secret}", err=True)
    click.echo(f"  - name: {name}\n    sha256: {hash_token(secret)}\n    role: {role}\n"
               f"    teams: [{', '.join(teams)}]")
