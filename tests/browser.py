"""Debian's chromium, headless, driven by Playwright: for the tests that must see a page as a reviewer does.

The browser is the distribution's (installed by scripts/ensure-chromium), never one Playwright
downloads. A missing browser fails the test with the fix to apply; SEGUR_SKIP_BROWSER=1 is the
only way to skip, so a CI image without chromium cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking switches chromium keeps calling Google services, which on a
# closed network means a stream of failing connections.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
"""Any wait longer than this is a bug in the page or the test, not a slow machine."""


def require_chromium() -> Path:
    """The browser, or a failure saying how to get it (a skip only when asked for explicitly)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("SEGUR_SKIP_BROWSER") == "1":
        pytest.skip("SEGUR_SKIP_BROWSER=1: browser test skipped on request")
    pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium (or set SEGUR_SKIP_BROWSER=1 to skip)")


@dataclass
class Problems:
    """What a page did that a reviewer would notice: script errors, console errors, dialogs (alert…)."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium (a Playwright ``Browser``), closed on exit."""
    executable = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("SEGUR_SKIP_BROWSER") == "1":
            pytest.skip("SEGUR_SKIP_BROWSER=1: browser test skipped on request")
        pytest.fail("Python Playwright is missing: install the dev extras (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, url: str, **context_options: Any) -> tuple[Any, Problems]:
    """A new page (in its own context) at ``url``, recording errors and dismissing any dialog."""
    page = browser.new_context(**context_options).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems = Problems()
    page.on("pageerror", lambda error: problems.errors.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.errors.append(f"console: {msg.text}") if msg.type == "error" else None)

    def on_dialog(dialog: Any) -> None:
        problems.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    return page, problems
