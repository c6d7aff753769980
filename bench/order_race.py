"""`python -m bench.order_race --rounds 200`: many writers recording the same order at once
through a real `crm-graph serve`, round after round, each round's order checked for a doubled
line (two CONTAINS relationships to its one product) or a doubled order.

A stress test, not a timed one: `tests/reliability/test_concurrency.py`'s serve test records one
shared order per run (about 35 s a run here); this records one per round (about a second), with
the writes the serve test makes beside it (identity resolution of records sent by several
writers at once, ties, reads of the order), so a race that shows once in many runs shows here in
minutes. Prints each bad round (its lines with their properties) and a summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import api_server, create_admin_key, wait_ready
from crm_graph.graph.embedded import EmbeddedServer
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store

RECORD = """
mutation($input: TransactionInput!) {
  recordTransaction(input: $input) {
    __typename
    ... on RecordTransactionError { code field message }
  }
}
"""
UPSERT = """
mutation($input: [CustomerInput!]!) {
  upsertCustomers(input: $input) {
    __typename
    ... on UpsertCustomersError { code field message }
  }
}
"""
LINK = """
mutation($input: LinkCustomersInput!) {
  linkCustomers(input: $input) { __typename }
}
"""
ORDER = """
query($id: ID!) { customer(id: $id) { id orderCount totalSpend } }
"""
SYSTEMS = ("web", "crm", "shop", "app")

LINES = """
MATCH (t:Transaction {id: $id})
RETURN ID(t) AS node, [(t)-[e:CONTAINS]->(p:Product) | {edge: ID(e), product: ID(p),
        props: properties(e)}] AS lines
"""


async def round_of(post: Any, r: int, writers: int) -> None:
    """`writers` tasks record order `race-<r>` at once, each with its own price, while as many
    send identity records of new people (one person's records from several systems, by several
    writers) and tie two customers."""
    start = asyncio.Event()

    async def recorder(w: int) -> None:
        await start.wait()
        order = {"id": f"race-{r}", "customerId": "s0", "at": "2024-03-01T00:00:00Z",
                 "lines": [{"productId": "p-race", "unitPrice": w + 1.5}]}  # fmt: skip
        await post(RECORD, {"input": order}, "recordTransaction")

    async def resolver(w: int) -> None:
        await start.wait()
        person, system = divmod(w, len(SYSTEMS))
        record = {"id": f"{SYSTEMS[system]}-{r}-{person}", "email": f"p{r}-{person}@x.org",
                  "sourceSystem": SYSTEMS[system]}  # fmt: skip
        await post(UPSERT, {"input": [record]}, "upsertCustomers")
        await post(LINK, {"input": {"sourceId": "s0", "targetId": "s1", "weight": w / 100}},
                   "linkCustomers")  # fmt: skip
        await post(ORDER, {"id": "s0"}, None)

    tasks = [asyncio.create_task(recorder(w)) for w in range(writers)]
    tasks += [asyncio.create_task(resolver(w)) for w in range(writers)]
    start.set()
    await asyncio.gather(*tasks)


async def bad_rounds(store: GraphStore, r: int) -> list[dict[str, Any]]:
    rows = await store.read(LINES, {"id": f"race-{r}"})
    return [] if len(rows) == 1 and len(rows[0]["lines"]) == 1 else rows


async def run(rounds: int, writers: int, work: Path) -> int:
    data_dir = work / "data"
    _, key = await asyncio.to_thread(create_admin_key, data_dir, "order race")
    doubled = 0
    started = time.monotonic()
    with api_server(data_dir, work / "serve.log") as server:
        await wait_ready(server)
        limits = httpx.Limits(
            max_connections=2 * writers, max_keepalive_connections=2 * writers,
            keepalive_expiry=1.0,
        )  # fmt: skip
        async with httpx.AsyncClient(
            base_url=server.url, trust_env=False, timeout=60, limits=limits
        ) as client:

            async def post(document: str, variables: dict[str, Any], field: str | None) -> None:
                response = await client.post(
                    "/graphql", json={"query": document, "variables": variables},
                    headers={"Authorization": f"Bearer {key}"},
                )  # fmt: skip
                body = response.json()
                assert response.status_code == 200 and "errors" not in body, body
                if field is not None:
                    assert body["data"][field]["__typename"].endswith("Success"), body

            store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
            try:
                await store.write("MERGE (:Product {id: 'p-race', name: 'Race'})")
                await post(UPSERT, {"input": [{"id": "s0"}, {"id": "s1"}]}, "upsertCustomers")
                for r in range(rounds):
                    await round_of(post, r, writers)
                    bad = await bad_rounds(store, r)
                    if bad:
                        doubled += 1
                        print(f"round {r}: {bad}", flush=True)
            finally:
                await store.close()
    print(f"{doubled} doubled orders in {rounds} rounds of {writers} writers recording one "
          f"order at once (and {writers} resolving identities beside them), "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    if EmbeddedServer(data_dir).read_record() is not None:
        EmbeddedServer(data_dir).stop()
    return 1 if doubled else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.order_race", description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--work", type=Path, default=None, help="a directory to work in")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="order-race-"))
    return asyncio.run(run(args.rounds, args.writers, work))


if __name__ == "__main__":
    raise SystemExit(main())
