"""A real headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Never a browser download: the executable is /usr/bin/chromium ($RUNBOOK_TEST_CHROMIUM to change
it). Without Playwright or Chromium the tests are skipped, except on CI (CI set) where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures: a store on SQLite and on PostgreSQL)
    postgresql_admin,
    postgresql_store_url,
    sqlite_store_url,
    store_url,
)
from tests.integration.web.test_service import catalog_repo, service  # noqa: F401  (fixtures: the live service)

CHROMIUM = Path(os.environ.get("RUNBOOK_TEST_CHROMIUM", "/usr/bin/chromium"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests are required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium, for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, service: Any) -> Iterator[Any]:  # noqa: F811
    """A fresh page in its own context (its own cookies); fails the test on any console error,
    a Content-Security-Policy violation included. It closes before the service it is on stops,
    so no redraw of a page left open meets a closed port."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    # A refused POST logs its 403 as a console error: those are the ones a test provokes on purpose.
    unexpected = [e for e in errors if "403" not in e]
    assert not unexpected, unexpected
