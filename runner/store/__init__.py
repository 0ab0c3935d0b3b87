"""The run store: the only package that speaks SQL.

``Store(url)`` keeps runs, steps and timelines in SQLite (``sqlite:///path``)
or PostgreSQL (``postgresql://...``), migrating an empty database on first use.
"""

from __future__ import annotations

from runner.store.engine import sqlite_url
from runner.store.store import MIN_PREFIX, Store

__all__ = ["MIN_PREFIX", "Store", "sqlite_url"]
