"""The GraphiQL page served at GET /graphql to a browser (not in production).

Its script and style sheet are built from pinned npm packages (`web/graphiql/`, `make web`)
into `api/static/graphiql/`, shipped in the wheel and served by the app under
`/static/graphiql/`: the page asks nothing of any other host, so it works offline. The page
itself is written here, with what it starts with (the README's 360 example) in a JSON script
element the bundle reads, so that the example can change without rebuilding the bundle. A
Content-Security-Policy lets the page load and connect to this origin only.
"""

from __future__ import annotations

import json
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = STATIC_DIR / "graphiql"
ASSETS_PATH = "/static/graphiql"
"""Where the app serves `ASSETS_DIR`."""

EXAMPLE_QUERY = """\
query Customer360($id: ID!) {
  customer(id: $id) {
    id name email phone city country signupAt
    totalSpend orderCount firstPurchaseAt lastPurchaseAt
    transactions(first: 5) { nodes { id at total channel lines { nodes { quantity amount product { name category } } } } }
    interactions(types: [TICKET, CALL], first: 10) { nodes { at type subject sentiment } }
    productsBought(first: 5) { nodes { product { name } quantity orders } }
    socialTies { nodes { type direction since customer { id name } } }
    segments { id name }
  }
}
"""  # noqa: E501 (the README's lines, as they are)
"""The README's 360 example (a test keeps them equal), pre-filled in the editor."""
EXAMPLE_VARIABLES = {"id": "C00000001"}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; style-src 'self' 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""The page's scripts, styles and requests come from this origin only (CodeMirror sets inline
styles; fonts and icons are data URLs inside the style sheet)."""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crm-graph GraphiQL</title>
<link rel="stylesheet" href="{assets}/graphiql.css">
<script id="crm-graph-config" type="application/json">{config}</script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{assets}/graphiql.js"></script>
</body>
</html>
"""


def graphiql_page(url: str) -> str:
    """The page's HTML, its editor set to the 360 example, its requests going to `url`."""
    config = {
        "url": url,
        "defaultQuery": EXAMPLE_QUERY,
        "defaultVariables": json.dumps(EXAMPLE_VARIABLES, indent=2),
    }
    # no "</script>" (nor "<!--") can close the element early: "<" is written as \u003c
    text = json.dumps(config).replace("<", "\\u003c").replace("&", "\\u0026")
    return _PAGE.format(assets=ASSETS_PATH, config=text)


def assets_missing() -> list[str]:
    """The built files the page needs and the package lacks (empty when all are there)."""
    return [name for name in ("graphiql.js", "graphiql.css") if not (ASSETS_DIR / name).is_file()]
