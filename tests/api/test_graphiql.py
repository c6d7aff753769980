"""The GraphiQL page as the app serves it: its own assets, no CDN, the README's 360 example.
(The page working in a real browser: tests/browser/test_graphiql_browser.py.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from crm_graph.api.app import create_app
from crm_graph.api.graphiql import ASSETS_DIR, EXAMPLE_QUERY, EXAMPLE_VARIABLES, graphiql_page
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from tests.api.test_readme_examples import examples

ROOT = Path(__file__).resolve().parents[2]
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _client(store: GraphStore, *, production: bool = False) -> httpx.AsyncClient:
    app = create_app(StoreSettings(), store=store, rate_limiter=None, production=production)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_the_page_and_its_assets_come_from_the_app_only(store: GraphStore) -> None:
    async with _client(store) as client:
        page = await client.get("/graphql", headers=BROWSER)
        assert page.status_code == 200
        # every script and style sheet is the app's own, and the policy forbids any other host
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources == ["/static/graphiql/graphiql.css", "/static/graphiql/graphiql.js"]
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        assert "http" not in policy
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200 and len(asset.content) > 100_000
            assert asset.content == (ASSETS_DIR / source.rsplit("/", 1)[1]).read_bytes()


async def test_no_page_and_no_assets_in_production(store: GraphStore) -> None:
    async with _client(store, production=True) as client:
        page = await client.get("/graphql", headers=BROWSER)
        assert "graphiql" not in page.text.lower()
        assert (await client.get("/static/graphiql/graphiql.js")).status_code == 404


def test_the_page_starts_with_the_readme_360_example() -> None:
    [(document, variables)] = [e for e in examples() if "query Customer360" in e[0]]
    assert document == EXAMPLE_QUERY
    assert json.loads(variables) == EXAMPLE_VARIABLES


def test_the_page_config_cannot_close_its_script_element() -> None:
    page = graphiql_page("/graphql</script><script>alert(1)</script>")
    config = re.search(r'<script id="crm-graph-config" type="application/json">(.*?)</script>',
                       page, re.DOTALL)  # fmt: skip
    assert config is not None and "</" not in config.group(1)
    assert json.loads(config.group(1))["url"].endswith("</script>")


def test_the_style_sheet_loads_nothing_from_elsewhere() -> None:
    # fonts and icons are inside it (data URLs); what the script requests is checked by the
    # browser test, with every host but 127.0.0.1 blocked
    css = (ASSETS_DIR / "graphiql.css").read_text(encoding="utf-8")
    assert "url(data:" in css
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", css)
    assert "@import" not in css


def test_the_sources_are_pinned() -> None:
    package = json.loads((ROOT / "web/graphiql/package.json").read_text())
    lock = json.loads((ROOT / "web/graphiql/package-lock.json").read_text())
    for name, version in {**package["dependencies"], **package["devDependencies"]}.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)  # exact versions
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert "node_modules/" in (ROOT / ".gitignore").read_text().split()


def test_the_committed_assets_are_what_the_sources_build(tmp_path: Path) -> None:
    # where the npm packages are installed (make web), building again gives the same bytes
    web = ROOT / "web/graphiql"
    if not (web / "node_modules/esbuild").is_dir() or shutil.which("node") is None:
        pytest.skip("web/graphiql/node_modules is absent (make web installs it): not rebuilt")
    subprocess.run(["node", "build.mjs", str(tmp_path)], cwd=web, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    for asset in ("graphiql.js", "graphiql.css"):
        assert (tmp_path / asset).read_bytes() == (ASSETS_DIR / asset).read_bytes(), asset
