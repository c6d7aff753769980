"""The explore page's own JavaScript tests (web/explore/test, Node's built-in runner: no npm
package needed), run where Node 18 or later is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web" / "explore"


def test_the_page_modules_pass_their_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on PATH: the page's JavaScript tests need Node 18 or later")
    done = subprocess.run([node, "--test", "test/"], cwd=WEB, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout
