"""``runbook serve`` (the HTTP receiver and API, served by waitress, with embedded workers),
``runbook worker`` (workers alone) and ``runbook token new``."""

from __future__ import annotations

import contextlib
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

from runner.catalog.live import CatalogHolder
from runner.catalog.load import find_root, load_catalog
from runner.cli.root import fail, main, open_store, print_table, settings
from runner.errors import RunbookError
from runner.runs.lifecycle import LEASE, MIN_LEASE
from runner.runs.worker import DEFAULT_GRACE, POLL_INTERVAL, Workers, WorkerSettings
from runner.store import Store
from runner.web import AppConfig, create_app, runtime
from runner.web.auth import WebhookAuth
from runner.web.tokens import Role, Tokens, add_token, load_tokens, revoke_token
from runner.web.tokens import tokens_file as tokens_file_path

log = logging.getLogger("runner.serve")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _open() -> tuple[Store, CatalogHolder]:
    """The store (migrated) and the catalog holder, loaded once; exit 2 when nothing valid loads."""
    try:
        store = open_store()  # the URL and the directory are checked; nothing is connected yet
        holder = CatalogHolder(find_root(settings().runbooks_dir))
        result = holder.reload()
        if not result.ok:
            fail(f"runbooks not loaded: {result.error}", 2)
        store.upgrade()  # only once the catalog loads: a wrong --runbooks leaves the store untouched
    except RunbookError as e:
        fail(str(e), 2)
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


serve_workers_option = click.option(
    "--workers", type=click.IntRange(0, 64), default=1, show_default=True,
    help="Worker threads executing runs and escalating (0: intake and API only; run `runbook worker` "
         "elsewhere).")
workers_option = click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
                              help="Worker threads executing runs.")
grace_option = click.option("--grace", type=click.FloatRange(0), default=DEFAULT_GRACE, show_default=True,
                            help="Seconds running runs get to finish on SIGTERM before they are interrupted.")

tokens_file_option = click.option(
    "--tokens-file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="The tokens file; default $RUNBOOK_TOKENS_FILE, else tokens.yaml in the state dir "
         "($RUNBOOK_STATE_DIR, else ~/.local/state/runbook-runner).")

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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Request threads.")
@serve_workers_option
@grace_option
@listen_option
@poll_option
@lease_option
@tokens_file_option
@click.option("--insecure-local", is_flag=True,
              help="Accept alerts and API calls without credentials; only on a loopback address.")
def serve(host: str, port: int, threads: int, workers: int,
          grace: float, listen: bool, poll: float, lease: float, tokens_file: Path | None,
          insecure_local: bool) -> None:
    """Receive alerts and serve the operator API; embedded workers execute the runs.

    Webhook credentials come from RUNBOOK_WEBHOOK_TOKEN (bearer token) and/or
    RUNBOOK_WEBHOOK_SECRET (HMAC-SHA256 signature); without either, the server refuses to
    start. Operators' API tokens come from the tokens file (`runbook token new`). SIGHUP or
    POST /api/v1/reload reloads the runbooks; SIGTERM stops claiming runs, lets running ones
    finish within --grace, then stops.

    \b
    Example:
      RUNBOOK_WEBHOOK_TOKEN=$(openssl rand -hex 24) runbook serve --host 0.0.0.0 --workers 2
      runbook serve --insecure-local --port 0     # a laptop: loopback, no credentials, any free port
    """
    auth = WebhookAuth(token=os.environ.get("RUNBOOK_WEBHOOK_TOKEN") or None,
                       secret=os.environ.get("RUNBOOK_WEBHOOK_SECRET") or None, insecure=insecure_local)
    if not auth.configured and not insecure_local:
        fail("no webhook credentials: set RUNBOOK_WEBHOOK_TOKEN and/or RUNBOOK_WEBHOOK_SECRET "
             "(or --insecure-local on a laptop)", 2)
    if insecure_local and not _loopback(host):
        fail(f"--insecure-local listens on loopback addresses only, not {host}", 2)
    tokens_path = _serving_tokens_file(tokens_file)
    try:
        tokens = load_tokens(tokens_path)
    except RunbookError as e:
        fail(f"cannot read the tokens file: {e}", 2)
    _logging()
    store, holder = _open()
    app = create_app(AppConfig(store=store, auth=auth, catalog=holder, tokens=tokens,
                               secret_key=os.environ.get("RUNBOOK_SECRET_KEY") or None))
    with app.app_context():
        state = runtime()
    server = _listen(app, host, port, threads)  # a busy port fails before any worker is set up
    crew = Workers(store, holder, WorkerSettings(workers, grace, listen, poll, lease),
                   on_finish=state.metrics.run_finished) if workers else None
    if crew is not None:
        state.on_queued.append(crew.pool.notify)
    stop = threading.Event()
    _on_signals(stop, holder)
    if tokens is not None:
        log.info("operator tokens from %s: %d identit%s", tokens_path, len(tokens.entries),
                 "y" if len(tokens.entries) == 1 else "ies")
    elif not insecure_local:
        log.warning("no tokens file (`runbook token new` makes one): "
                    "the operator API answers 401 to everyone")
    with crew or contextlib.nullcontext():
        bound = getattr(server, "effective_port", port)
        click.echo(f"listening on http://{host}:{bound} (store {store.display_url}, "
                   f"runbooks {holder.active.commit}, {workers} worker(s)"
                   + (f", {crew.pool.wakeup}" if crew is not None else "") + ")", err=True)
        threading.Thread(target=server.run, name="http", daemon=True).start()
        stop.wait()
        server.close()  # no new connections; the requests already in progress finish below
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=10)
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
    stop = threading.Event()
    _on_signals(stop, holder)
    with Workers(store, holder, WorkerSettings(workers, grace, listen, poll, lease)) as crew:
        click.echo(f"{crew.pool.size} worker(s) on {store.display_url} (runbooks {holder.active.commit}; "
                   f"{crew.pool.wakeup})", err=True)
        stop.wait()
    store.close()


@main.group()
def token() -> None:
    """Operator tokens for the API and the dashboard, kept hashed in the tokens file.

    The tokens file is --tokens-file, else $RUNBOOK_TOKENS_FILE, else tokens.yaml in the state
    directory; `runbook serve` reads the same one.

    \b
    Example:
      ALICE=$(runbook token new alice --team platform-ops)
      runbook token list
      runbook token revoke alice
    """


def _serving_tokens_file(explicit: Path | None) -> Path | None:
    """The tokens file serve reads: a named one must exist; the state directory's, if it does."""
    named = explicit is not None or bool(os.environ.get("RUNBOOK_TOKENS_FILE"))
    path = tokens_file_path(explicit)
    return path if named or path.is_file() else None


def _known_teams(teams: tuple[str, ...]) -> None:
    """Refuse a --team that owners.yaml of the catalog does not name."""
    if not teams:
        return
    root = settings().runbooks_dir
    try:
        owners = load_catalog(root).owners
    except RunbookError as e:
        fail(f"cannot check --team against owners.yaml: {e} (give the catalog with --runbooks DIR)", 2)
    if owners is None:
        fail(f"cannot check --team: no readable owners.yaml in {root} (give the catalog with --runbooks)", 2)
    unknown = sorted(set(teams) - set(owners.teams))
    if unknown:
        fail(f"unknown team {', '.join(repr(t) for t in unknown)}: owners.yaml in {root} has "
             f"{', '.join(sorted(owners.teams))}", 2)


@token.command("new")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="operator", show_default=True,
              help="viewer reads; operator also runs, approves and cancels its teams' runbooks; admin all.")
@click.option("--team", "teams", multiple=True, metavar="TEAM",
              help="A team of owners.yaml the identity acts for (repeatable).")
@click.option("--replace", is_flag=True, help="NAME has a token already: give it a new one, ending the old.")
@tokens_file_option
def token_new(name: str, role: str, teams: tuple[str, ...], replace: bool, tokens_file: Path | None) -> None:
    """Give NAME a new token: its hash goes into the tokens file (made if absent, mode 0600), the
    token itself to standard output, once. Teams are checked against owners.yaml.

    \b
    Example:
      ALICE=$(runbook token new alice --team platform-ops)
      runbook token new vic --role viewer > vic.token
      runbook token new alice --team platform-ops --replace     # rotate: the old token stops working
    """
    if Role(role) is Role.OPERATOR and not teams:
        fail("an operator acts for teams: give --team (repeatable), or --role viewer or admin", 2)
    _known_teams(teams)
    path = _file_to_write(tokens_file)
    secret = add_token(path, name, Role(role), teams, replace=replace)
    click.echo(f"{'replaced' if replace else 'added'} {name} ({role}"
               + (f", teams {', '.join(teams)}" if teams else "") + f") in {path}; "
               f"the token, shown once, is on standard output: give it to {name}", err=True)
    click.echo(secret)


@token.command("list")
@tokens_file_option
def token_list(tokens_file: Path | None) -> None:
    """List the identities of the tokens file: name, role and teams (never a token).

    \b
    Example:
      runbook token list
    """
    path = tokens_file_path(tokens_file)
    if not path.is_file():
        fail(f"no tokens file at {path}; `runbook token new NAME --team TEAM` makes one", 1)
    tokens = Tokens.load(path)
    print_table([("NAME", "ROLE", "TEAMS")] + [(who.name, who.role.value, ", ".join(sorted(who.teams)) or "-")
                                              for _, who in tokens.entries])


@token.command("revoke")
@click.argument("name")
@tokens_file_option
def token_revoke(name: str, tokens_file: Path | None) -> None:
    """Remove NAME's token from the tokens file (a running server keeps it until restarted).

    \b
    Example:
      runbook token revoke alice
    """
    path = _file_to_write(tokens_file)
    revoke_token(path, name)
    click.echo(f"revoked {name} in {path}; restart `runbook serve` for it to take effect", err=True)


def _file_to_write(explicit: Path | None) -> Path:
    """The tokens file to change; the state directory is made when it is the default's."""
    path = tokens_file_path(explicit)
    if explicit is None and not os.environ.get("RUNBOOK_TOKENS_FILE"):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path
