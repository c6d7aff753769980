"""Identity resolution: customer records from different source systems that are one person
become one Customer, with a SourceRecord per source.

Rules, in order of precedence (the first that applies decides):

1. **Same source id.** A record whose `customer_id` was loaded before stays with the Customer it
   was resolved to then (re-loading a changed row updates that Customer; it is never re-clustered).
2. **Same email.** A new record whose normalised email (trimmed, lower-cased) equals that of a
   record from *another* source system joins that record's Customer.
3. **Same phone.** Otherwise, a new record whose phone in E.164 equals that of a record from
   another source system joins that record's Customer.
4. Otherwise the record starts a new Customer whose id is its `customer_id`.

A Customer never holds two records of the same source system: two records of one system are two
accounts there (a shared family email, say), so a match that would break this is skipped and the
next candidate, or the next rule, is tried. Candidates are tried in the order they were loaded.

Profile fields: the Customer's first record (its id is that record's `customer_id`) is its
primary; the primary's values win, and the other records only fill fields the Customer lacks.
Loading never erases a value: an empty field leaves the stored one as it is.

Source systems: a record keeps the system it was first stored with (a key limited to
`source:SYSTEM` sees the customers holding a record of that system). A record naming no system
(an empty `source_system`, an API input without `sourceSystem`) keeps its stored one, or is of
`DEFAULT_SOURCE_SYSTEM` when new; a record naming another system than the stored one is a
conflict, not written (`Resolution.conflicts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_graph.loaders.reading import Reject, RejectCode
from crm_graph.loaders.validate import DEFAULT_SOURCE_SYSTEM, CustomerRecord


@dataclass(frozen=True)
class Merge:
    """One record joined to an existing Customer, and the rule that joined it."""

    customer_id: str
    source_id: str
    system: str
    rule: str
    line: int


@dataclass
class _Cluster:
    customer_id: str
    systems: set[str]
    stored_props: set[str]
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class Resolution:
    customers: list[dict[str, Any]]
    """`{id, props}` per Customer to upsert."""
    sources: list[dict[str, Any]]
    """`{id, customer, system, emailKey, phoneKey}` per source record."""
    merges: list[Merge]
    conflicts: list[Reject] = field(default_factory=list)
    """Records naming another source system than their stored record's: not in `customers`,
    `sources` or `merges` (column `source_system`, code `CONFLICT`)."""


def resolve(
    records: Iterable[CustomerRecord],
    candidates: Iterable[Mapping[str, Any]],
    file: str = "customers.csv",
) -> Resolution:
    """Resolve one batch of records (in file order) against the Customers already stored.

    `candidates` are rows of `graph.loader_writes.IDENTITY_CANDIDATES`: `{rule, key, customer,
    system, systems, props}` for stored customers matching the batch's source ids, emails and
    phones (`system`: the matched record's).
    """
    clusters: dict[str, _Cluster] = {}
    by_source: dict[str, str] = {}
    system_of: dict[str, str] = {}
    by_key: dict[tuple[str, str], list[str]] = {}
    for row in candidates:
        customer = row["customer"]
        cluster = clusters.setdefault(
            customer, _Cluster(customer, set(row["systems"]), set(row["props"]))
        )
        cluster.systems.update(row["systems"])
        if row["rule"] == "source":
            by_source[row["key"]] = customer
            if row.get("system") is not None:
                system_of[row["key"]] = row["system"]
        else:
            owners = by_key.setdefault((row["rule"], row["key"]), [])
            if customer not in owners:
                owners.append(customer)
    for owners in by_key.values():
        owners.sort()

    sources: dict[str, dict[str, Any]] = {}
    merges: list[Merge] = []
    conflicts: list[Reject] = []
    for record in records:
        stored = system_of.get(record.source_id)
        if stored is not None and record.system is not None and record.system != stored:
            conflicts.append(
                Reject(
                    file, record.line, "source_system",
                    f"customer record {record.source_id!r} is stored from source system "
                    f"{stored!r}; a record's source system cannot be changed to "
                    f"{record.system!r} (leave it empty to keep {stored!r})",
                    record.system, code=RejectCode.CONFLICT,
                )
            )  # fmt: skip
            continue
        system = stored or record.system or DEFAULT_SOURCE_SYSTEM
        system_of[record.source_id] = system
        customer = by_source.get(record.source_id)
        if customer is None:
            customer, rule = _match(record, system, by_key, clusters)
            if customer is None:
                customer = record.source_id
                clusters[customer] = _Cluster(customer, set(), set())
            else:
                merges.append(Merge(customer, record.source_id, system, rule or "", record.line))
            by_source[record.source_id] = customer
        cluster = clusters[customer]
        cluster.systems.add(system)
        for rule, key in (("email", record.email_key), ("phone", record.phone_key)):
            if key:
                owners = by_key.setdefault((rule, key), [])
                if customer not in owners:
                    owners.append(customer)
        if customer == record.source_id:
            cluster.props.update(record.props)
        else:
            for name, value in record.props.items():
                if name not in cluster.stored_props and name not in cluster.props:
                    cluster.props[name] = value
        sources[record.source_id] = {
            "id": record.source_id,
            "customer": customer,
            "system": system,
            "emailKey": record.email_key,
            "phoneKey": record.phone_key,
        }
    touched = {s["customer"] for s in sources.values()}
    customers = [{"id": c, "props": clusters[c].props} for c in sorted(touched)]
    return Resolution(customers, list(sources.values()), merges, conflicts)


def footprint(candidates: Iterable[Mapping[str, Any]]) -> list[int]:
    """What `graph.loader_writes.IDENTITY_FOOTPRINT` finds for the same keys, from the candidate
    rows: per rule (source, email, phone) the rows, their distinct customers, and the records those
    customers hold in all. Sent with `UPSERT_CUSTOMERS_IF_UNCHANGED`, it tells whether the records
    a resolution was computed from changed before its write (another writer got there first)."""
    rows = list(candidates)
    counts: list[int] = []
    for rule in ("source", "email", "phone"):
        matched = [row for row in rows if row["rule"] == rule]
        held = {row["customer"]: len(row["systems"]) for row in matched}
        counts += [len(matched), len(held), sum(held.values())]
    return counts


def _match(
    record: CustomerRecord,
    system: str,
    by_key: dict[tuple[str, str], list[str]],
    clusters: dict[str, _Cluster],
) -> tuple[str | None, str | None]:
    for rule, key in (("email", record.email_key), ("phone", record.phone_key)):
        if not key:
            continue
        for customer in by_key.get((rule, key), []):
            if system not in clusters[customer].systems:
                return customer, rule
    return None, None
