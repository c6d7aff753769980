"""A page served on one 127.0.0.1 port calls the API, a real `crm-graph serve`, on another port
with fetch() and a key, in headless Chromium: allowed when its origin is listed in
CRM_GRAPH_CORS_ORIGINS, blocked by the browser when it is not."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.browser.conftest import BrowserPage
from tests.serving import serving

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>a frontend elsewhere</title></head>
<body><p id="state">ready</p>
<script>
const QUERY = "query FirstCustomers { customers(first: 3) { nodes { id } } }";
async function callApi(api, key) {
  try {
    const response = await fetch(api + "/graphql", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + key,
                "X-Request-ID": "from-the-page"},
      body: JSON.stringify({query: QUERY}),
    });
    return {status: response.status, body: await response.json(),
            requestId: response.headers.get("X-Request-ID")};
  } catch (error) {
    return {failed: String(error)};
  }
}
</script></body></html>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """`folder` served on a free 127.0.0.1 port; its origin."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(PAGE, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_page_on_a_listed_origin_calls_the_api_and_another_is_blocked(
    browser_page: BrowserPage, tmp_path: Path
) -> None:
    # given two sites on their own ports, and the API allowing the first one only
    with (
        static_site(tmp_path / "allowed") as allowed,
        static_site(tmp_path / "other") as other,
        serving(tmp_path / "api", {"CRM_GRAPH_CORS_ORIGINS": allowed}, customers=20) as api,
    ):
        key = api.create_key("analyst")  # partners cannot list customers
        page = browser_page.page
        # when the allowed site's page calls the API with the key
        page.goto(f"{allowed}/index.html")
        answer = page.evaluate("([api, key]) => callApi(api, key)", [api.url, key])
        browser_page.screenshot("allowed")
        # then it gets the data, and may read the request id
        assert answer.get("status") == 200, answer
        ids = [node["id"] for node in answer["body"]["data"]["customers"]["nodes"]]
        assert len(ids) == 3 and all(i.startswith("C") for i in ids)
        assert answer["requestId"] == "from-the-page"
        # when the other site's page makes the same call
        page.goto(f"{other}/index.html")
        blocked = page.evaluate("([api, key]) => callApi(api, key)", [api.url, key])
        # then the browser refuses it: the page gets no answer at all
        assert "failed" in blocked and "Failed to fetch" in blocked["failed"], blocked
        api.stop()
        log = api.log.read_text()
    # and the API answered both preflights, but ran the allowed site's request only: the
    # browser never sent the other one
    assert log.count("OPTIONS /graphql 200") == 1 and log.count("OPTIONS /graphql 400") == 1
    assert log.count("POST /graphql") == 1
    assert "request=from-the-page operation=FirstCustomers" in log
    assert browser_page.elsewhere == []
