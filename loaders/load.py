"""`crm-graph load DIR`: read the contract's files, validate every row, resolve identities, and
write the graph in batched `UNWIND` statements.

Every row read is either loaded or rejected with its file, line, column and reason into the
rejects file: loaded + rejected = read, always. Loading the same folder twice changes nothing.
Reading and validating run in a worker thread while the store writes the previous batch.

On an engine that runs transactions side by side (Neo4j), transaction and interaction batches
are written by several writers at once (`writers`, default `DEFAULT_WRITERS` of the engine):
only batches that share no transaction or interaction id overlap; a batch that shares one waits
for the earlier one. Customers (identity resolution reads what earlier batches wrote), products
and social ties are written one batch at a time, in file order. FalkorDB runs one write at a
time, so it gets one writer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import csv
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from crm_graph.graph import events, loader_writes, money
from crm_graph.graph.store import GraphStore
from crm_graph.loaders import validate
from crm_graph.loaders.errors import ConcurrentIdentityChange
from crm_graph.loaders.identity import Merge, footprint, resolve
from crm_graph.loaders.reading import (
    COLUMNS,
    EXTRA_COLUMNS_KEPT,
    Kind,
    RawRow,
    Reject,
    RejectCode,
    SourceFile,
    find_files,
    ignored_files,
    iter_rows,
    read_header,
)

DEFAULT_BATCH_SIZE = 5000
DEFAULT_WRITERS = {"neo4j": 2}
"""Concurrent batch writers per engine (`Dialect.name`); 1 for any other. Measured on Neo4j 5.26
with the load bench (bench/README.md)."""
IDENTITY_ATTEMPTS = 50
"""How many times a batch of customers is resolved again when other writers keep storing the
same people between its resolution and its write (each retry means another writer succeeded)."""
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DUPLICATE_EXAMPLES = 5


@dataclass
class FileReport:
    """What loading one file did. Of the rows loaded: `new` added what was not stored, `updated`
    changed what was stored before the load, and `duplicates` repeated an id met earlier in the
    same file (customers, products, interactions; a tie's pair and type), the later row
    updating the earlier one: loaded = new + updated + duplicates. The lines of one transaction
    share its id: each counts as its transaction (new or updated), none as a duplicate."""

    file: str
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    fields_dropped: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    duplicate_ids: list[str] = field(default_factory=list)
    """The first few ids met more than once (`DUPLICATE_EXAMPLES`), for the message."""


@dataclass
class LoadReport:
    folder: Path
    files: list[FileReport]
    merges: list[Merge]
    rejects_path: Path
    merges_path: Path
    seconds: float
    load_id: str
    ignored_files: list[str] = field(default_factory=list)
    """A line for each file of the folder not read, with a "did you mean" where one is close."""

    @property
    def rows_read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rejected for f in self.files)


def default_rejects_path(folder: Path) -> Path:
    """`exports/` → `exports.rejects.csv`, beside the folder (the folder may be read-only)."""
    folder = folder.resolve()
    return folder.parent / f"{folder.name}.rejects.csv"


def neutralise(value: str) -> str:
    """A value safe to open in a spreadsheet: a leading formula character is quoted away."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


class _RejectsFile:
    COLUMNS = ("file", "line", "column", "action", "reason", "value")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._fh)
        self._writer.writerow(self.COLUMNS)

    def write(self, reject: Reject) -> None:
        self._writer.writerow((
            reject.file, reject.line, neutralise(reject.column), reject.action,
            neutralise(reject.reason), neutralise(reject.value[:200]),
        ))  # fmt: skip

    def close(self) -> None:
        self._fh.close()


@dataclass
class _Batch:
    """Valid records of one batch (in file order) and the rows rejected while reading it."""

    records: list[Any]
    rejects: list[Reject]
    rows: int


async def load_folder(
    store: GraphStore,
    folder: Path,
    *,
    rejects_path: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    default_region: str | None = None,
    progress: bool | None = None,
    on_file: Callable[[FileReport], None] | None = None,
    writers: int | None = None,
) -> LoadReport:
    """Load a contract folder into the store; see the module docstring.

    `progress` None shows bars on a terminal only. Raises `ContractError` (before writing
    anything) when a file or required column is missing; a store failure mid-way leaves whole
    batches written, and loading again completes the job.
    """
    started = time.perf_counter()
    folder = Path(folder)
    sources = find_files(folder)
    ignored = ignored_files(folder)
    headers = {kind: read_header(source) for kind, source in sources.items()}
    region = (default_region or "").upper() or None
    rejects_path = rejects_path or default_rejects_path(folder)
    merges_path = rejects_path.with_name(rejects_path.name.replace("rejects", "merges"))
    if merges_path == rejects_path:
        merges_path = rejects_path.with_suffix(".merges.csv")
    loader = BatchWriter(store, uuid.uuid4().hex, batch_size, region, progress, writers)
    rejects = _RejectsFile(rejects_path)
    reports: list[FileReport] = []
    try:
        for kind, source in sources.items():
            report = await loader.load_file(source, headers[kind], rejects)
            reports.append(report)
            if on_file:
                on_file(report)
    finally:
        rejects.close()
        _write_merges(merges_path, loader.merges)
    return LoadReport(
        folder, reports, loader.merges, rejects_path, merges_path,
        time.perf_counter() - started, loader.load_id, ignored,
    )  # fmt: skip


def _write_merges(path: Path, merges: list[Merge]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("customer_id", "merged_customer_id", "source_system", "rule", "line"))
        for m in merges:
            writer.writerow((neutralise(m.customer_id), neutralise(m.source_id),
                             neutralise(m.system), m.rule, m.line))  # fmt: skip


class BatchWriter:
    """Validated records → the graph, one batch per call. `load_folder` streams files through it;
    the API's mutations write single records with it, by the same rules."""

    def __init__(self, store: GraphStore, load_id: str, batch_size: int, region: str | None,
                 progress: bool | None, writers: int | None = None) -> None:  # fmt: skip
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if writers is not None and writers < 1:
            raise ValueError("writers must be at least 1")
        self.writers = writers or DEFAULT_WRITERS.get(store.dialect.name, 1)
        self.store = store
        self.load_id = load_id
        self.batch_size = batch_size
        self.region = region
        self.progress = progress
        self.merges: list[Merge] = []
        self._tally: _Tally | None = None
        """The file being loaded's new / updated / duplicate counts; None for the API's single
        records (no lookups spent on counting)."""

    async def load_file(self, source: SourceFile, header: list[str], rejects: _RejectsFile
                        ) -> FileReport:  # fmt: skip
        report = FileReport(source.path.name)
        extras: list[str] = []
        if source.kind in EXTRA_COLUMNS_KEPT:
            extras, refused = validate.extra_columns(source.kind, header)
            report.ignored_columns = refused
        else:
            known = set(COLUMNS[source.kind])
            report.ignored_columns = [c for c in header if c not in known]
        parse = _parser(source.kind, extras, self.region)
        writers: dict[Kind, Callable[[str, list[Any]], Coroutine[Any, Any, list[Reject]]]] = {
            "customers": self.write_customers,
            "products": self.write_products,
            "transactions": self.write_transactions,
            "interactions": self.write_interactions,
            "social_ties": self.write_ties,
        }
        write = writers[source.kind]
        self._tally = _Tally(
            report,
            repeats_are_duplicates=source.kind != "transactions",
            none_stored=not await self.store.read(loader_writes.ANY_STORED[source.kind]),
        )
        hidden = None if self.progress is None else not self.progress
        bar = tqdm(
            total=source.size, unit="B", unit_scale=True, desc=source.path.name,
            disable=hidden, leave=False,
        )  # fmt: skip

        def account(batch: _Batch, late_rejects: list[Reject]) -> None:
            rejected_rows = {r.line for r in batch.rejects if r.action == "rejected"}
            rejected_rows.update(r.line for r in late_rejects)
            for reject in (*batch.rejects, *late_rejects):
                rejects.write(reject)
            report.read += batch.rows
            report.rejected += len(rejected_rows)
            report.loaded += batch.rows - len(rejected_rows)
            report.fields_dropped += sum(r.action == "field_dropped" for r in batch.rejects)

        keys_of = _DISJOINT_KEYS.get(source.kind) if self.writers > 1 else None
        in_flight: collections.deque[tuple[asyncio.Task[list[Reject]], _Batch, set[str]]] = (
            collections.deque()
        )

        async def finish_oldest() -> None:
            task, batch, _ = in_flight.popleft()
            account(batch, await task)

        try:
            async for batch in _batches_in_thread(source, parse, self.batch_size, bar.update):
                if not batch.records:
                    while in_flight:  # rejects stay in file order
                        await finish_oldest()
                    account(batch, [])
                elif keys_of is None:
                    account(batch, await write(report.file, batch.records))
                else:
                    keys = keys_of(batch.records)
                    while in_flight and (
                        len(in_flight) >= self.writers
                        or any(not keys.isdisjoint(other) for _, _, other in in_flight)
                    ):
                        await finish_oldest()
                    task = asyncio.create_task(write(report.file, batch.records))
                    in_flight.append((task, batch, keys))
            while in_flight:
                await finish_oldest()
        finally:
            for task, _, _ in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*(t for t, _, _ in in_flight), return_exceptions=True)
            bar.close()
            self._tally = None
        return report

    async def count(self, keys: list[Any], stored: Callable[[list[Any]], Awaitable[set[Any]]],
                    shown: Callable[[Any], str] = str) -> None:  # fmt: skip
        """Count the rows about to be written (their keys in file order) as new, updated or
        duplicates; `stored(keys)` says which of the keys not met yet in the file are stored."""
        tally = self._tally
        if tally is None:
            return
        unmet = list(dict.fromkeys(k for k in keys if k not in tally.seen))
        found = await stored(unmet) if unmet and not tally.none_stored else set()
        report = tally.report
        for key in keys:
            existed = tally.seen.get(key)
            if existed is None:
                existed = tally.seen[key] = key in found
            elif tally.repeats_are_duplicates:
                report.duplicates += 1
                if len(report.duplicate_ids) < DUPLICATE_EXAMPLES:
                    name = shown(key)
                    if name not in report.duplicate_ids:
                        report.duplicate_ids.append(name)
                continue
            if existed:
                report.updated += 1
            else:
                report.new += 1

    async def _stored_ids(self, statement: str, ids: list[Any]) -> set[Any]:
        return {row["id"] for row in await self.store.read(statement, {"ids": ids})}

    # -- one writer per file kind: each returns the rows it had to reject after lookups --------

    async def write_customers(
        self, file: str, records: list[validate.CustomerRecord], *, all_or_none: bool = False
    ) -> list[Reject]:
        """Resolve and write a batch; the records naming another source system than their stored
        record's are rejected (`identity.Resolution.conflicts`) and the others written, or, with
        `all_or_none` (the API), nothing is written when any is."""
        params = {
            "sources": sorted({r.source_id for r in records}),
            "emails": sorted({r.email_key for r in records if r.email_key}),
            "phones": sorted({r.phone_key for r in records if r.phone_key}),
        }
        keys = {
            "sourceIds": params["sources"],
            "emails": params["emails"],
            "phones": params["phones"],
        }
        for attempt in range(IDENTITY_ATTEMPTS):
            candidates = await self.store.read(loader_writes.IDENTITY_CANDIDATES, params)
            resolution = resolve(records, candidates, file)
            if resolution.conflicts and all_or_none:
                return resolution.conflicts
            if attempt == 0:
                refused = {r.line for r in resolution.conflicts}
                await self.count(
                    [r.source_id for r in records if r.line not in refused],
                    lambda ids: self._stored_ids(loader_writes.EXISTING_SOURCE_IDS, ids),
                )
            for customer in resolution.customers:
                customer["event"] = events.payload(
                    customerId=customer["id"], fields=sorted(customer["props"])
                )
            done = await self.store.write(
                self.store.dialect.serialized(loader_writes.UPSERT_CUSTOMERS_IF_UNCHANGED),
                {
                    "customers": resolution.customers,
                    "sources": resolution.sources,
                    "footprint": footprint(candidates),
                    **keys,
                },
            )
            if done[0]["written"]:
                self.merges.extend(resolution.merges)
                return resolution.conflicts
            # another writer stored one of these people in between: resolve against that
        raise ConcurrentIdentityChange(
            f"{file}: other writers stored the same people {IDENTITY_ATTEMPTS} times while a "
            f"batch of {len(records)} customer record(s) was being resolved; nothing of that "
            "batch was written: load again"
        )

    async def write_products(
        self, file: str, records: list[validate.ProductRecord]
    ) -> list[Reject]:
        await self.count(
            [r.product_id for r in records],
            lambda ids: self._stored_ids(loader_writes.EXISTING_PRODUCTS, ids),
        )
        latest = {r.product_id: r for r in records}
        rows = [{"id": r.product_id, "props": r.props, "category": r.category}
                for r in latest.values()]  # fmt: skip
        await self.store.write(loader_writes.UPSERT_PRODUCTS, {"rows": rows})
        return []

    async def customers_of(self, ids: set[str]) -> dict[str, str]:
        found = await self.store.read(loader_writes.CUSTOMERS_BY_SOURCE, {"ids": sorted(ids)})
        return {row["source"]: row["customer"] for row in found}

    async def write_transactions(
        self, file: str, records: list[validate.LineItemRecord]
    ) -> list[Reject]:
        customers = await self.customers_of({r.customer_id for r in records})
        named = sorted({r.product_id for r in records if r.product_id is not None})
        products = (
            await self._stored_ids(loader_writes.EXISTING_PRODUCTS, named) if named else set()
        )
        late: list[Reject] = []
        orders: dict[str, dict[str, Any]] = {}
        first_line: dict[str, int] = {}
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for r in records:
            customer = customers.get(r.customer_id)
            if customer is None:
                late.append(_unknown_customer(file, r.line, "customer_id", r.customer_id))
                continue
            if r.product_id is not None and r.product_id not in products:
                # never a nameless Product made up from a line: like an unknown customer
                late.append(Reject(
                    file, r.line, "product_id",
                    f"names product {r.product_id!r}, which is not loaded (products.csv)",
                    r.product_id,
                ))  # fmt: skip
                continue
            order = orders.get(r.transaction_id)
            if order is None:
                order = {"id": r.transaction_id, "customer": customer, "at": r.at,
                         "channel": r.channel, "other": 0.0}  # fmt: skip
                orders[r.transaction_id] = order
                first_line[r.transaction_id] = r.line
            elif order["customer"] != customer:
                late.append(Reject(
                    file, r.line, "customer_id",
                    f"names customer {r.customer_id!r} but line {first_line[r.transaction_id]} "
                    f"of the same transaction {r.transaction_id!r} names another", r.customer_id,
                    code=RejectCode.CONFLICT,
                ))  # fmt: skip
                continue
            else:
                order["at"] = min(order["at"], r.at)  # an order is as old as its first line
            if r.product_id is None:
                order["other"] = money.add(order["other"], r.amount)
                continue
            item = items.get((r.transaction_id, r.product_id))
            if item is None:
                items[(r.transaction_id, r.product_id)] = {
                    "transaction": r.transaction_id, "product": r.product_id,
                    "quantity": r.quantity, "amount": r.amount, "unitPrice": r.unit_price,
                }  # fmt: skip
            else:
                item["quantity"] += r.quantity
                item["amount"] = money.add(item["amount"], r.amount)
        rejected = {reject.line for reject in late}
        await self.count(
            [r.transaction_id for r in records if r.line not in rejected],
            lambda ids: self._stored_ids(loader_writes.EXISTING_TRANSACTIONS, ids),
        )
        if orders:
            lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for item in items.values():
                lines[item["transaction"]].append(
                    {k: item[k] for k in ("product", "quantity", "amount")}
                )
            for order in orders.values():
                order["lines"] = lines[order["id"]]
                # its productIds and total: from the statement (the whole order, stored lines too)
                order["event"] = events.payload(
                    transactionId=order["id"], customerId=order["customer"]
                )
            # one statement: the orders, their lines, totals and events commit together
            await self.store.write(
                loader_writes.UPSERT_TRANSACTIONS,
                {
                    "orders": _in_lock_order(orders.values(), "customer"),
                    "items": _in_lock_order(items.values(), "product"),
                    "load": self.load_id,
                },
            )
        return late

    async def write_interactions(
        self, file: str, records: list[validate.InteractionRecord]
    ) -> list[Reject]:
        customers = await self.customers_of({r.customer_id for r in records})
        late: list[Reject] = []
        rows: dict[str, dict[str, Any]] = {}
        for r in records:
            customer = customers.get(r.customer_id)
            if customer is None:
                late.append(_unknown_customer(file, r.line, "customer_id", r.customer_id))
                continue
            rows[r.interaction_id] = {
                "id": r.interaction_id,
                "customer": customer,
                "props": r.props,
                "event": events.payload(
                    interactionId=r.interaction_id, customerId=customer,
                    type=r.props.get("type"), fields=sorted(r.props),
                ),
            }  # fmt: skip
        rejected = {reject.line for reject in late}
        await self.count(
            [r.interaction_id for r in records if r.line not in rejected],
            lambda ids: self._stored_ids(loader_writes.EXISTING_INTERACTIONS, ids),
        )
        if rows:
            await self.store.write(
                loader_writes.UPSERT_INTERACTIONS,
                {"rows": _in_lock_order(rows.values(), "customer")},
            )
        return late

    async def write_ties(self, file: str, records: list[validate.TieRecord]) -> list[Reject]:
        ids = {r.source_id for r in records} | {r.target_id for r in records}
        customers = await self.customers_of(ids)
        late: list[Reject] = []
        by_type: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        written: list[tuple[str, str, str]] = []
        for r in records:
            source, target = customers.get(r.source_id), customers.get(r.target_id)
            if source is None or target is None:
                column, value = (("source_customer_id", r.source_id) if source is None
                                 else ("target_customer_id", r.target_id))  # fmt: skip
                late.append(_unknown_customer(file, r.line, column, value))
                continue
            if source == target:
                late.append(Reject(
                    file, r.line, "target_customer_id",
                    f"{r.source_id!r} and {r.target_id!r} are the same customer "
                    f"({source!r}) after identity resolution: a customer cannot be tied to "
                    "themselves", r.target_id, code=RejectCode.CONFLICT,
                ))  # fmt: skip
                continue
            by_type[r.type][(source, target)] = {
                "source": source,
                "target": target,
                "since": r.since,
                "weight": r.weight,
                "event": events.payload(type=r.type, sourceId=source, targetId=target),
            }
            written.append((r.type, source, target))
        await self.count(written, self._stored_ties, lambda k: f"{k[1]} {k[0]} {k[2]}")
        for tie_type, rows in sorted(by_type.items()):
            await self.store.write(
                loader_writes.upsert_ties(tie_type), {"rows": list(rows.values())}
            )
        return late

    async def _stored_ties(self, keys: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
        for tie_type, source, target in keys:
            by_type[tie_type].append({"source": source, "target": target})
        found: set[tuple[str, str, str]] = set()
        for tie_type, pairs in sorted(by_type.items()):
            rows = await self.store.read(loader_writes.existing_ties(tie_type), {"ids": pairs})
            found.update((tie_type, row["source"], row["target"]) for row in rows)
        return found


@dataclass
class _Tally:
    report: FileReport
    repeats_are_duplicates: bool
    none_stored: bool = False
    """Nothing of the file's kind was stored when it started (each kind is written by its own
    file only): every key not met yet in the file is new, no lookup needed."""
    seen: dict[Any, bool] = field(default_factory=dict)
    """Each key met in the file: whether it was stored before the load."""


_DISJOINT_KEYS: dict[str, Callable[[list[Any]], set[str]]] = {
    "transactions": lambda records: {r.transaction_id for r in records},
    "interactions": lambda records: {r.interaction_id for r in records},
}
"""The kinds whose batches may be written side by side, and what two batches written at once
must not share."""


def _in_lock_order(rows: Iterable[dict[str, Any]], shared: str) -> list[dict[str, Any]]:
    """Rows sorted by the node that batches written side by side share (an order's customer, a
    line's product): every writer then locks shared nodes in the same order, customers before
    products, so concurrent batches wait for each other instead of deadlocking (Neo4j detected
    deadlocks, and the driver's retries waited about a second each, with a warning)."""
    return sorted(rows, key=lambda row: row[shared])


def _unknown_customer(file: str, line: int, column: str, value: str) -> Reject:
    return Reject(file, line, column, f"names customer {value!r}, who is not loaded", value,
                  code=RejectCode.UNKNOWN_CUSTOMER)  # fmt: skip


Parser = Callable[[str, RawRow], tuple[Any | None, list[Reject]]]


def _parser(kind: Kind, extras: list[str], region: str | None) -> Parser:
    if kind == "customers":
        return lambda file, row: validate.customer(file, row, extras, region)
    if kind == "products":
        return lambda file, row: validate.product(file, row, extras)
    if kind == "transactions":
        return validate.line_item
    if kind == "interactions":
        return validate.interaction
    return validate.tie


def _read_batches(
    source: SourceFile,
    parse: Parser,
    batch_size: int,
    on_bytes: Callable[[int], None],
) -> Iterator[_Batch]:
    name = source.path.name
    batch = _Batch([], [], 0)
    for item in iter_rows(source, on_bytes):
        batch.rows += 1
        if isinstance(item, Reject):
            batch.rejects.append(item)
        else:
            record, rejects = parse(name, item)
            batch.rejects.extend(rejects)
            if record is not None:
                batch.records.append(record)
        if batch.rows >= batch_size:
            yield batch
            batch = _Batch([], [], 0)
    if batch.rows:
        yield batch


_DONE = object()


async def _batches_in_thread(
    source: SourceFile,
    parse: Parser,
    batch_size: int,
    on_bytes: Callable[[int], None],
) -> AsyncIterator[_Batch]:
    """Read and validate in a worker thread, two batches ahead of the writer."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in _read_batches(source, parse, batch_size, on_bytes):
                while not stop.is_set():
                    try:
                        buffer.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as e:  # handed to the consumer, which re-raises it
            buffer.put(e)

    worker = threading.Thread(target=produce, name=f"read-{source.kind}", daemon=True)
    worker.start()
    try:
        while True:
            item = await asyncio.to_thread(buffer.get)
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                buffer.get_nowait()
        await asyncio.to_thread(worker.join)
