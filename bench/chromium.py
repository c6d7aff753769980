"""Debian's Chromium as the browser tests and `python -m bench explore` drive it (through the
Python `playwright` package's `executable_path`: Playwright's own browser download cannot work
here). `CRM_GRAPH_CHROMIUM` names another binary."""

from __future__ import annotations

import os
from pathlib import Path

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
