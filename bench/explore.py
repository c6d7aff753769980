"""The network picture's render bench: `python -m bench explore --nodes 2000`.

A real `crm-graph serve` (empty embedded store in the work folder: the page's files are what is
served) and Debian's headless Chromium (the tests' flags, software WebGL as `--disable-gpu`
gives). The page draws a seeded network of `nodes` customers with the network page's own code
(web/explore/src/graph.js: graphology, ForceAtlas2, sigma.js) and reports, per run:

- build, layout and draw times, and **time to first frame** (from the data in hand to the first
  frame on screen; target under 2 s for 2,000 nodes). Pictures of 1,000 customers or more are
  drawn from their starting places (rings by distance) and laid out afterwards by ForceAtlas2 in
  a web worker for 2 s, the picture following: `settled` is when that layout stops;
- **frames per second while panning**, once settled (one camera animation of `pan_seconds`;
  sigma hides edges and labels while the camera moves on pictures of over 1,000 nodes) and the
  longest frame.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chromium import launch_options, unavailable
from bench.server import api_server, wait_ready

VIEWPORT = {"width": 1400, "height": 1000}


@dataclass
class ExploreResult:
    nodes: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        values = sorted(float(r[key]) for r in self.runs)
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


async def run(work: Path, nodes: int, runs: int, pan_seconds: float) -> ExploreResult:
    """`runs` renders of `nodes` customers in one page (the first also pays for compiling the
    shaders, as a first visit does)."""
    if reason := unavailable():
        raise RuntimeError(reason)
    from playwright.async_api import async_playwright

    work.mkdir(parents=True, exist_ok=True)
    result = ExploreResult(nodes)
    with api_server(work / "explore-store", work / "explore-server.log") as server:
        await wait_ready(server)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(**launch_options())
            try:
                page = await browser.new_page(viewport=VIEWPORT)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{server.url}/explore/")
                await page.wait_for_selector("body[data-ready=true]")
                for _ in range(runs):
                    measured = await page.evaluate(
                        "([n, s]) => window.exploreBench(n, s)", [nodes, pan_seconds]
                    )
                    if errors:
                        raise RuntimeError(f"the page failed: {errors[0]}")
                    result.runs.append(measured)
                    await asyncio.sleep(0.2)
            finally:
                await browser.close()
    return result
