"""Debian's Chromium driven by Playwright's Python client, for the dashboard's tests and
its benchmark: the one browser here (nothing may download one of its own, so
`playwright install` is never run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def skip_without_chromium() -> None:
    """At a test module's top: skip the module, saying why, when the browser is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium",
            allow_module_level=True,
        )
    pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a running `sync_playwright()`."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
