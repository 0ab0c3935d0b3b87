"""``runbook serve``: the HTTP receiver, served by waitress."""

from __future__ import annotations

import ipaddress
import logging
import os

import click
import waitress

from runner.catalog import find_root
from runner.cli import fail, main, settings
from runner.store import Store
from runner.web import AppConfig, create_app
from runner.web.auth import WebhookAuth


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Request threads.")
@click.option("--insecure-local", is_flag=True,
              help="Accept alerts without credentials; only on a loopback address, for a laptop.")
def serve(host: str, port: int, threads: int, insecure_local: bool) -> None:
    """Receive alerts over HTTP: Alertmanager, Grafana and generic webhooks, stored before 2xx.

    Credentials come from RUNBOOK_WEBHOOK_TOKEN (bearer token) and/or RUNBOOK_WEBHOOK_SECRET
    (HMAC-SHA256 signature); without either, the server refuses to start.

    \b
    Example:
      RUNBOOK_WEBHOOK_TOKEN=$(cat token) runbook serve --host 0.0.0.0 --port 8080
      runbook serve --insecure-local
    """
    auth = WebhookAuth(token=os.environ.get("RUNBOOK_WEBHOOK_TOKEN") or None,
                       secret=os.environ.get("RUNBOOK_WEBHOOK_SECRET") or None, insecure=insecure_local)
    if not auth.configured and not insecure_local:
        fail("no webhook credentials: set RUNBOOK_WEBHOOK_TOKEN and/or RUNBOOK_WEBHOOK_SECRET "
             "(or --insecure-local on a laptop)", 2)
    if insecure_local and not auth.configured and not _loopback(host):
        fail(f"--insecure-local listens on loopback addresses only, not {host}", 2)
    cfg = settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(cfg.db_url)
    store.upgrade()
    app = create_app(AppConfig(store=store, auth=auth, runbooks_dir=find_root(cfg.runbooks_dir)))
    click.echo(f"listening on http://{host}:{port} (store {store.display_url})", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="runbook-runner")
