"""Debian's Chromium as the browser tests and `python -m bench explore` drive it (through the
Python `playwright` package's `executable_path`: Playwright's own browser download cannot work
here). `CRM_GRAPH_CHROMIUM` names another binary."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("CRM_GRAPH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",  # WebGL in software (SwiftShader): no GPU on these machines
    # without these, Chromium's background connections are refused by a closed network
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def unavailable() -> str | None:
    """Why Chromium cannot be driven here (the binary or the `playwright` package is missing), or
    None: the browser tests skip with it, `bench explore` stops with it."""
    if not CHROMIUM.is_file():
        return (
            f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium, or CRM_GRAPH_CHROMIUM)"
        )
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def launch_options(*extra_args: str) -> dict[str, Any]:
    """The keywords of Playwright's `chromium.launch` (sync or async API) for this Chromium."""
    return {
        "executable_path": str(CHROMIUM),
        "args": [*CHROMIUM_ARGS, *extra_args],
        "headless": True,
    }
