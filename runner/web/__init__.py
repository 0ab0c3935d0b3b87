"""The HTTP surface: ``create_app(config)`` with blueprints for intake, API, health, metrics, dashboard.

A thin adapter, as the CLI is: it parses requests, calls one core function and renders the
result. Every error leaves as JSON ``{"error": ..., "status": ...}`` through one handler, except
on the dashboard's pages, which answer in HTML (see runner.web.dashboard).
"""

from runner.web.app import create_app
from runner.web.state import AppConfig, runtime

__all__ = ["AppConfig", "create_app", "runtime"]
