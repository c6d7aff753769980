"""The loader against a real store: every rule of the data contract."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.errors import ContractError
from crm_graph.loaders.load import FORMULA_PREFIXES, LoadReport, load_folder, neutralise
from tests.helpers import read_rejects, write_csv, write_jsonl

CUSTOMERS = [
    {
        "customer_id": "c1",
        "name": "Smith, Jane",
        "email": "jane@example.com",
        "phone": "+44 20 7946 0018",
        "city": "London",
        "country": "GB",
        "signup_date": "2023-01-05",
        "source_system": "webshop",
        "age": "34",
        "tier": "gold",
    },
    {
        "customer_id": "c2",
        "name": "王芳",
        "email": "wang.fang@example.cn",
        "phone": "",
        "city": "北京",
        "country": "CN",
        "signup_date": "2023-02-01T09:30:00+08:00",
        "source_system": "webshop",
        "age": "28",
        "tier": "007",
    },
    {
        "customer_id": "c3",
        "name": "Ravi",
        "email": "ravi@example.in",
        "phone": "",
        "city": "Pune",
        "country": "IN",
        "signup_date": "",
        "source_system": "webshop",
    },
]
PRODUCTS = [
    {"product_id": "p1", "name": "Mug", "category": "Kitchen", "price": "5.00"},
    {"product_id": "p2", "name": "Lamp", "category": "Home", "price": "30"},
]
TRANSACTIONS = [
    {
        "transaction_id": "t1",
        "customer_id": "c1",
        "timestamp": "2024-01-01T10:00:00Z",
        "product_id": "p1",
        "quantity": "2",
        "unit_price": "5.00",
        "amount": "",
        "channel": "web",
    },
    {
        "transaction_id": "t1",
        "customer_id": "c1",
        "timestamp": "2024-01-01T10:00:00Z",
        "product_id": "p2",
        "quantity": "",
        "unit_price": "",
        "amount": "30",
        "channel": "web",
    },
    {
        "transaction_id": "t2",
        "customer_id": "c2",
        "timestamp": "2024-02-01 12:00:00",
        "product_id": "p1",
        "quantity": "1",
        "unit_price": "4.50",
        "amount": "",
        "channel": "",
    },
    {
        "transaction_id": "t1",
        "customer_id": "c1",
        "timestamp": "2024-01-01T10:00:00Z",
        "product_id": "p1",
        "quantity": "1",
        "unit_price": "5.00",
        "amount": "",
        "channel": "web",
    },
    {
        "transaction_id": "t3",
        "customer_id": "c2",
        "timestamp": "2024-03-01",
        "product_id": "",
        "quantity": "",
        "unit_price": "",
        "amount": "7.25",
        "channel": "store",
    },
]
INTERACTIONS = [
    {
        "interaction_id": "i1",
        "customer_id": "c1",
        "timestamp": "2024-01-02T08:00:00Z",
        "type": "Ticket",
        "channel": "email",
        "subject": "Broken mug",
        "sentiment": "-0.6",
        "satisfaction": "2",
    },
    {
        "interaction_id": "i2",
        "customer_id": "c2",
        "timestamp": "2024-02-02",
        "type": "chat",
        "channel": "",
        "subject": "",
        "sentiment": "",
        "satisfaction": "",
    },
]
TIES = [
    {
        "source_customer_id": "c1",
        "target_customer_id": "c2",
        "type": "KNOWS",
        "since": "2020-05-01",
        "weight": "0.8",
    },
    {
        "source_customer_id": "c2",
        "target_customer_id": "c3",
        "type": "family",
        "since": "",
        "weight": "",
    },
]


def business(folder: Path) -> Path:
    write_csv(folder / "customers.csv", CUSTOMERS)
    write_csv(folder / "products.csv", PRODUCTS)
    write_csv(folder / "transactions.csv", TRANSACTIONS)
    write_csv(folder / "interactions.csv", INTERACTIONS)
    write_csv(folder / "social_ties.csv", TIES)
    return folder


async def load(store: GraphStore, folder: Path, **kwargs: Any) -> LoadReport:
    kwargs.setdefault("progress", False)
    report = await load_folder(store, folder, **kwargs)
    for f in report.files:
        assert f.loaded + f.rejected == f.read, f
    return report


async def snapshot(store: GraphStore) -> dict[str, Any]:
    """Counts per label and relationship type, and every transaction's total. Not the outbox's
    events, which every write adds to (a load again included): tests/graph/test_events.py."""
    nodes = await store.read(
        "MATCH (n) WHERE NOT n:Event AND NOT n:EventSequence "
        "RETURN labels(n)[0] AS label, count(n) AS n"
    )
    rels = await store.read("MATCH ()-[r]->() RETURN type(r) AS type, count(r) AS n")
    totals = await store.read("MATCH (t:Transaction) RETURN t.id AS id, t.total AS total")
    return {
        "nodes": {r["label"]: r["n"] for r in nodes},
        "rels": {r["type"]: r["n"] for r in rels},
        "totals": {r["id"]: r["total"] for r in totals},
    }


async def one(store: GraphStore, query: str, **params: Any) -> dict[str, Any]:
    rows = await store.read(query, params)
    assert len(rows) == 1, rows
    return rows[0]


async def test_good_rows_become_the_graph(store: GraphStore, tmp_path: Path) -> None:
    # given a small business in the contract's files
    folder = business(tmp_path / "in")
    # when it is loaded
    report = await load(store, folder)
    # then every row is loaded and the graph holds what the files say
    assert [(f.file, f.read, f.loaded, f.rejected) for f in report.files] == [
        ("customers.csv", 3, 3, 0),
        ("products.csv", 2, 2, 0),
        ("transactions.csv", 5, 5, 0),
        ("interactions.csv", 2, 2, 0),
        ("social_ties.csv", 2, 2, 0),
    ]
    state = await snapshot(store)
    assert state["nodes"] == {
        "Customer": 3,
        "SourceRecord": 3,
        "Product": 2,
        "Category": 2,
        "Transaction": 3,
        "Interaction": 2,
    }
    assert state["rels"] == {
        "HAS_SOURCE": 3,
        "IN_CATEGORY": 2,
        "PLACED": 3,
        "CONTAINS": 3,
        "HAD": 2,
        "KNOWS": 1,
        "FAMILY": 1,
    }
    assert state["totals"] == {
        "t1": pytest.approx(45.0),
        "t2": pytest.approx(4.5),
        "t3": pytest.approx(7.25),
    }
    jane = await one(
        store,
        "MATCH (c:Customer {id: 'c1'}) RETURN c.name AS name, "
        "c.phone AS phone, c.signupAt AS signup, c.age AS age, c.tier AS tier",
    )
    assert jane == {
        "name": "Smith, Jane",
        "phone": "+442079460018",
        "signup": 1672876800000,
        "age": 34,
        "tier": "gold",
    }
    wang = await one(
        store,
        "MATCH (c:Customer {id: 'c2'}) RETURN c.name AS name, "
        "c.city AS city, c.signupAt AS signup, c.tier AS tier",
    )
    assert wang == {"name": "王芳", "city": "北京", "signup": 1675215000000, "tier": "007"}
    line = await one(
        store,
        "MATCH (:Transaction {id: 't1'})-[e:CONTAINS]->(:Product {id: 'p1'}) "
        "RETURN e.quantity AS q, e.amount AS a, e.unitPrice AS u",
    )
    assert line == {"q": 3, "a": pytest.approx(15.0), "u": 5.0}
    ticket = await one(
        store,
        "MATCH (:Customer {id: 'c1'})-[:HAD]->(i:Interaction) "
        "RETURN i.type AS type, i.sentiment AS s, i.satisfaction AS sat, i.at AS at",
    )
    assert ticket == {"type": "ticket", "s": -0.6, "sat": 2, "at": 1704182400000}
    tie = await one(
        store,
        "MATCH (:Customer {id: 'c1'})-[k:KNOWS]->(:Customer {id: 'c2'}) "
        "RETURN k.since AS since, k.weight AS weight",
    )
    assert tie == {"since": 1588291200000, "weight": 0.8}
    category = await one(
        store, "MATCH (:Product {id: 'p2'})-[:IN_CATEGORY]->(k:Category) RETURN k.name AS name"
    )
    assert category == {"name": "Home"}


async def test_loading_twice_changes_no_count_and_no_total(
    store: GraphStore, tmp_path: Path
) -> None:
    # given a folder whose transaction lines are spread over several batches
    folder = business(tmp_path / "in")
    await load(store, folder, batch_size=2)
    first = await snapshot(store)
    # when the same folder is loaded again (with another batch size)
    report = await load(store, folder, batch_size=3)
    # then nothing changes
    assert await snapshot(store) == first
    assert report.merges == []


async def test_reloading_a_changed_row_updates_it(store: GraphStore, tmp_path: Path) -> None:
    folder = business(tmp_path / "in")
    await load(store, folder)
    # given a later export where Jane moved, a line's quantity was corrected, and t2 was
    # re-attributed to another customer
    customers = [dict(CUSTOMERS[0], city="Bristol"), *CUSTOMERS[1:]]
    lines = [dict(row) for row in TRANSACTIONS]
    lines[1]["amount"] = "60"
    lines[2]["customer_id"] = "c3"
    write_csv(folder / "customers.csv", customers)
    write_csv(folder / "transactions.csv", lines)
    # when it is loaded
    await load(store, folder)
    # then the stored values follow the file, and nothing is doubled
    assert (await one(store, "MATCH (c:Customer {id: 'c1'}) RETURN c.city AS city"))["city"] == (
        "Bristol"
    )
    state = await snapshot(store)
    assert state["totals"]["t1"] == pytest.approx(75.0)
    assert state["rels"]["PLACED"] == 3
    owner = await one(
        store, "MATCH (c:Customer)-[:PLACED]->(:Transaction {id: 't2'}) RETURN c.id AS id"
    )
    assert owner == {"id": "c3"}


async def test_every_bad_row_is_rejected_with_file_line_column_and_reason(
    store: GraphStore, tmp_path: Path
) -> None:
    folder = business(tmp_path / "in")
    bad_customers = [
        *CUSTOMERS,
        {"customer_id": "", "name": "No id"},  # line 5
        {
            "customer_id": "c9",
            "name": "Bad extras",
            "signup_date": "soon",  # line 6: dropped
            "email": "not-an-email",
            "phone": "12",
        },
    ]
    bad_lines = [
        *TRANSACTIONS,
        {"transaction_id": "", "customer_id": "c1", "timestamp": "2024-01-01", "amount": "1"},
        {"transaction_id": "t8", "customer_id": "c1", "timestamp": "", "amount": "1"},
        {"transaction_id": "t8", "customer_id": "c1", "timestamp": "2024-01-01", "amount": "lots"},
        {
            "transaction_id": "t8",
            "customer_id": "c1",
            "timestamp": "2024-01-01",
            "quantity": "two",
            "unit_price": "1",
        },
        {
            "transaction_id": "t8",
            "customer_id": "c1",
            "timestamp": "2024-01-01",
            "product_id": "p1",
        },
        {"transaction_id": "t8", "customer_id": "ghost", "timestamp": "2024-01-01", "amount": "1"},
        {
            "transaction_id": "t1",
            "customer_id": "c2",
            "timestamp": "2024-01-01T10:00:00Z",
            "product_id": "p1",
            "amount": "1",
        },
    ]
    bad_interactions = [
        *INTERACTIONS,
        {"interaction_id": "i3", "customer_id": "c1", "timestamp": "2024-01-01", "type": "fax"},
        {"interaction_id": "i4", "customer_id": "ghost", "timestamp": "2024-01-01", "type": "call"},
        {
            "interaction_id": "i5",
            "customer_id": "c1",
            "timestamp": "2024-01-01",
            "type": "call",
            "sentiment": "3",
            "satisfaction": "9",
        },
    ]
    bad_ties = [
        *TIES,
        {"source_customer_id": "c1", "target_customer_id": "c1"},
        {"source_customer_id": "c1", "target_customer_id": "ghost"},
        {"source_customer_id": "c1", "target_customer_id": "c3", "type": "RIVAL"},
    ]
    write_csv(folder / "customers.csv", bad_customers)
    write_csv(folder / "transactions.csv", bad_lines)
    write_csv(folder / "interactions.csv", bad_interactions)
    write_csv(folder / "social_ties.csv", bad_ties)
    with open(folder / "transactions.csv", "ab") as fh:
        fh.write(b"t9,c1,2024-01-01,p1,1,1,1,web,EXTRA\n")  # line 14: ragged
        fh.write(b"t9,c1,2024-01-01,p1,1,1,1,w\xe9b\n")  # line 15: not UTF-8
        fh.write(b"t9,c1,2024-01-01,p1,1,1,1,w\x00b\n")  # line 16: NUL byte

    report = await load(store, folder, rejects_path=tmp_path / "rejects.csv")

    found = {
        (r["file"], r["line"], r["column"], r["action"]): r["reason"]
        for r in read_rejects(tmp_path / "rejects.csv")
    }
    expected = {
        ("customers.csv", "5", "customer_id", "rejected"): "required",
        ("customers.csv", "6", "signup_date", "field_dropped"): "ISO 8601",
        ("customers.csv", "6", "email", "field_dropped"): "not an email",
        ("customers.csv", "6", "phone", "field_dropped"): "country code",
        ("transactions.csv", "7", "transaction_id", "rejected"): "required",
        ("transactions.csv", "8", "timestamp", "rejected"): "required",
        ("transactions.csv", "9", "amount", "rejected"): "not a number",
        ("transactions.csv", "10", "quantity", "rejected"): "not a number",
        ("transactions.csv", "11", "amount", "rejected"): "no value",
        ("transactions.csv", "12", "customer_id", "rejected"): "not loaded",
        ("transactions.csv", "13", "customer_id", "rejected"): "line 2 of the same transaction",
        ("transactions.csv", "14", "", "rejected"): "9 fields",
        ("transactions.csv", "15", "channel", "rejected"): "UTF-8",
        ("transactions.csv", "16", "channel", "rejected"): "NUL",
        ("interactions.csv", "4", "type", "rejected"): "not one of",
        ("interactions.csv", "5", "customer_id", "rejected"): "not loaded",
        ("interactions.csv", "6", "sentiment", "field_dropped"): "above the maximum",
        ("interactions.csv", "6", "satisfaction", "field_dropped"): "above the maximum",
        ("social_ties.csv", "4", "target_customer_id", "rejected"): "themselves",
        ("social_ties.csv", "5", "target_customer_id", "rejected"): "not loaded",
        ("social_ties.csv", "6", "type", "rejected"): "not one of",
    }
    assert set(found) == set(expected)
    for key, words in expected.items():
        assert words in found[key], (key, found[key])
    counts = {f.file: (f.read, f.loaded, f.rejected, f.fields_dropped) for f in report.files}
    assert counts["customers.csv"] == (5, 4, 1, 3)
    assert counts["transactions.csv"] == (15, 5, 10, 0)
    assert counts["interactions.csv"] == (5, 3, 2, 2)
    assert counts["social_ties.csv"] == (5, 2, 3, 0)
    # and what was rejected left the good data intact
    state = await snapshot(store)
    assert state["totals"] == {
        "t1": pytest.approx(45.0),
        "t2": pytest.approx(4.5),
        "t3": pytest.approx(7.25),
    }
    c9 = await one(
        store,
        "MATCH (c:Customer {id: 'c9'}) RETURN c.name AS name, "
        "c.email AS email, c.signupAt AS signup",
    )
    assert c9 == {"name": "Bad extras", "email": None, "signup": None}


async def test_a_missing_required_column_refuses_the_folder_before_writing(
    store: GraphStore, tmp_path: Path
) -> None:
    folder = business(tmp_path / "in")
    write_csv(
        folder / "social_ties.csv",
        [{"source_customer_id": "c1", "other": "c2"}],
        columns=["source_customer_id", "other"],
    )
    with pytest.raises(ContractError, match="social_ties.csv.*target_customer_id"):
        await load(store, folder)
    assert (await snapshot(store))["nodes"] == {}


async def test_a_folder_without_customers_is_refused(store: GraphStore, tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "products.csv", PRODUCTS)
    with pytest.raises(ContractError, match="customers.csv"):
        await load(store, tmp_path / "in")


async def test_identity_resolution_merges_across_systems_and_reports_it(
    store: GraphStore, tmp_path: Path
) -> None:
    # given one person in three systems, and two accounts sharing an email inside one system
    folder = tmp_path / "in"
    write_csv(
        folder / "customers.csv",
        [
            {
                "customer_id": "w1",
                "name": "Ada",
                "email": "ada@example.com",
                "source_system": "webshop",
                "city": "London",
            },
            {
                "customer_id": "r1",
                "name": "Ada L.",
                "email": " ADA@example.com",
                "phone": "+44 7700 900123",
                "source_system": "crm",
                "country": "GB",
                "signup_date": "2020-01-01",
            },
            {
                "customer_id": "p1",
                "name": "A. Lovelace",
                "phone": "07700 900123",
                "country": "GB",
                "source_system": "pos",
            },
            {
                "customer_id": "w2",
                "name": "Family account",
                "email": "ada@example.com",
                "source_system": "webshop",
            },
            {
                "customer_id": "x1",
                "name": "Other",
                "email": "other@example.com",
                "source_system": "crm",
            },
        ],
    )
    write_csv(
        folder / "transactions.csv",
        [
            {
                "transaction_id": "t1",
                "customer_id": "w1",
                "timestamp": "2024-01-01",
                "amount": "10",
            },
            {
                "transaction_id": "t2",
                "customer_id": "r1",
                "timestamp": "2024-01-02",
                "amount": "20",
            },
            {
                "transaction_id": "t3",
                "customer_id": "p1",
                "timestamp": "2024-01-03",
                "amount": "30",
            },
        ],
    )
    # when loaded in batches of two (so that matches cross batches)
    report = await load(store, folder, batch_size=2)
    # then the three records of Ada are one customer, the family account stays apart
    assert sorted((m.customer_id, m.source_id, m.rule) for m in report.merges) == [
        ("w1", "p1", "phone"),
        ("w1", "r1", "email"),
    ]
    ada = await one(
        store,
        "MATCH (c:Customer {id: 'w1'}) RETURN c.name AS name, "
        "c.city AS city, c.phone AS phone, c.signupAt AS signup, "
        "[(c)-[:HAS_SOURCE]->(s) | s.system] AS systems, "
        "[(c)-[:PLACED]->(t) | t.total] AS totals",
    )
    assert ada["name"] == "Ada"  # the primary record's values win
    assert ada["city"] == "London"
    assert ada["phone"] == "+447700900123"  # gaps are filled from the others
    assert ada["signup"] == 1577836800000
    assert sorted(ada["systems"]) == ["crm", "pos", "webshop"]
    assert sorted(ada["totals"]) == [10, 20, 30]
    assert (await snapshot(store))["nodes"]["Customer"] == 3
    merges = (tmp_path / "in.merges.csv").read_text()
    assert "w1,r1,crm,email" in merges and "w1,p1,pos,phone" in merges

    # when a later load brings a new record matching Ada from a fourth system
    later = tmp_path / "later"
    write_csv(
        later / "customers.csv",
        [
            {
                "customer_id": "m1",
                "name": "Ada (mobile)",
                "phone": "+447700900123",
                "source_system": "app",
            },
        ],
    )
    report = await load(store, later)
    # then it joins the stored customer; and reloading the first folder changes nothing
    assert [(m.customer_id, m.rule) for m in report.merges] == [("w1", "phone")]
    before = await snapshot(store)
    assert (await load(store, folder)).merges == []
    assert await snapshot(store) == before


async def test_unicode_quotes_and_newlines_round_trip(store: GraphStore, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    names = ["王芳", "José Ñúñez", "Иван Петров", "محمد", '"Quoted" O\'Brien', "Line\nBreak, Esq."]
    rows = [{"customer_id": f"u{i}", "name": n} for i, n in enumerate(names)]
    rows.append({"customer_id": "", "name": "after the multi-line record"})
    write_csv(folder / "customers.csv", rows)
    # a BOM at the start, as spreadsheet exports write
    data = (folder / "customers.csv").read_bytes()
    (folder / "customers.csv").write_bytes(b"\xef\xbb\xbf" + data)
    report = await load(store, folder, rejects_path=tmp_path / "r.csv")
    stored = await store.read("MATCH (c:Customer) RETURN c.id AS id, c.name AS name ORDER BY id")
    assert [r["name"] for r in stored] == names
    # the record after the one spanning two lines is reported on its physical line
    assert [(r["line"], r["column"]) for r in read_rejects(tmp_path / "r.csv")] == [
        ("9", "customer_id")
    ]
    assert report.files[0].read == 7


async def test_json_lines_load_like_csv(store: GraphStore, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_jsonl(
        folder / "customers.jsonl",
        [
            {"customer_id": "j1", "name": "张伟", "age": 31, "vip": True},
            {"customer_id": "j2", "name": None},
        ],
    )
    with open(folder / "customers.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n[1, 2]\n")
    write_jsonl(
        folder / "transactions.jsonl",
        [
            {
                "transaction_id": "t1",
                "customer_id": "j1",
                "timestamp": "2024-05-01T10:00:00+02:00",
                "amount": 12.5,
                "quantity": 1,
            },
        ],
    )
    report = await load(store, folder, rejects_path=tmp_path / "r.csv")
    assert [(f.read, f.loaded, f.rejected) for f in report.files] == [(4, 2, 2), (1, 1, 0)]
    j1 = await one(
        store,
        "MATCH (c:Customer {id: 'j1'})-[:PLACED]->(t) "
        "RETURN c.name AS name, c.age AS age, c.vip AS vip, t.total AS total, t.at AS at",
    )
    assert j1 == {"name": "张伟", "age": 31, "vip": "true", "total": 12.5, "at": 1714550400000}
    reasons = [r["reason"] for r in read_rejects(tmp_path / "r.csv")]
    assert "not valid JSON" in reasons[0] and "not an object" in reasons[1]


def test_reading_a_large_file_keeps_memory_flat(tmp_path: Path) -> None:
    import tracemalloc

    from crm_graph.loaders.load import _read_batches
    from crm_graph.loaders.reading import SourceFile
    from crm_graph.loaders.validate import line_item

    # given 100,000 transaction lines (about 7 MB)
    path = tmp_path / "transactions.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(
            "transaction_id,customer_id,timestamp,product_id,quantity,unit_price,amount,channel\n"
        )
        for i in range(100_000):
            fh.write(f"t{i // 3},c{i % 5000},2024-01-01T10:00:00Z,p{i % 300},2,3.5,,web\n")
    source = SourceFile("transactions", path, "csv")
    # when it is read and validated batch by batch
    tracemalloc.start()
    rows = 0
    for batch in _read_batches(source, line_item, 5000, lambda n: None):
        rows += len(batch.records)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # then all rows came through and the peak is a few batches, not the file
    assert rows == 100_000
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


async def test_an_enormous_field_rejects_its_row_only(store: GraphStore, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "customers.csv").write_text(
        "customer_id,name\na,Ann\nb," + "y" * 200_000 + '\nc,"two\nlines"\nd,Dee\n',
        encoding="utf-8",
    )
    report = await load(store, folder, rejects_path=tmp_path / "r.csv")
    assert (report.files[0].read, report.files[0].loaded) == (4, 3)
    assert [(r["line"], r["column"], r["reason"]) for r in read_rejects(tmp_path / "r.csv")] == [
        ("3", "name", "is larger than 128 KiB")
    ]
    ids = await store.read("MATCH (c:Customer) RETURN c.id AS id ORDER BY id")
    assert [r["id"] for r in ids] == ["a", "c", "d"]


def test_neutralise_quotes_away_every_formula_start() -> None:
    for value in ("=1+1", "+1", "-2", "@SUM(1)", "\t=1", "\r=1"):
        assert neutralise(value) == "'" + value
    for value in ("", "1+1", "a=b", "'=1", " =1", "Smith, Jane"):
        assert neutralise(value) == value


async def test_formulas_are_stored_as_given_and_quoted_away_in_the_rejects_and_merges_files(
    store: GraphStore, tmp_path: Path
) -> None:
    # given customers whose ids, names, phones, emails and source systems look like formulas,
    # one person in two systems (so that a merge is reported), a column named like a formula,
    # ragged rows starting with a tab and a carriage return, and orders naming such customers
    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "customers.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "name", "phone", "email", "source_system", "=Total()"])
        writer.writerows([
            ("=cmd|' /C calc'!A0", "=cmd|' /C calc'!A0", "+1+1", "a@example.com", "=web", "ok"),
            ("+1+1", "+1+1", "", "@SUM(1)", "crm", "ok"),
            ("@SUM(1)", "\t=1+1", "-2", "", "crm", "ok"),
            ("-2", "-2", "", "A@example.com", "@pos", "ok"),
            ("c5", "Eve", "", "", "crm", "N\x00L"),
            ("\t=tab",),
            ("\r=cr", "x"),
        ])  # fmt: skip
    with open(folder / "transactions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["transaction_id", "customer_id", "timestamp", "amount"])
        writer.writerow(["=t1", "+1+1", "2024-01-01", "-2"])
        writer.writerow(["t2", "=unknown()", "2024-01-01", "5"])
        writer.writerow(["t3", "-2", "@yesterday", "5"])

    # when they are loaded
    report = await load(store, folder, rejects_path=tmp_path / "r.csv")

    # then the values are stored as given (trimmed, like every value)
    stored = await store.read("MATCH (c:Customer) RETURN c.id AS id, c.name AS name")
    assert {(r["id"], r["name"]) for r in stored} == {
        ("=cmd|' /C calc'!A0", "=cmd|' /C calc'!A0"),
        ("+1+1", "+1+1"),
        ("@SUM(1)", "=1+1"),
    }
    order = await store.read(
        "MATCH (c:Customer)-[:PLACED]->(t:Transaction) RETURN c.id AS c, t.id AS t, t.total AS x"
    )
    assert order == [{"c": "+1+1", "t": "=t1", "x": -2.0}]
    assert [(f.read, f.loaded, f.rejected) for f in report.files] == [(7, 4, 3), (3, 1, 2)]
    # and in the rejects file every such cell is quoted away, column names included
    rejects = read_rejects(tmp_path / "r.csv")
    assert {(r["file"], r["line"], r["column"], r["value"]) for r in rejects} == {
        ("customers.csv", "2", "phone", "'+1+1"),
        ("customers.csv", "3", "email", "'@SUM(1)"),
        ("customers.csv", "4", "phone", "'-2"),
        ("customers.csv", "6", "'=total()", ""),
        ("customers.csv", "7", "", "'\t=tab"),
        ("customers.csv", "8", "", "'\r=cr,x"),
        ("transactions.csv", "3", "customer_id", "'=unknown()"),
        ("transactions.csv", "4", "timestamp", "'@yesterday"),
    }
    # and in the merges file: the -2 record (system @pos) joined =cmd (system =web) by email
    merges = read_rejects(tmp_path / "r.merges.csv")
    assert [(m["customer_id"], m["merged_customer_id"], m["source_system"], m["rule"])
            for m in merges] == [("'=cmd|' /C calc'!A0", "'-2", "'@pos", "email")]  # fmt: skip
    for row in [*rejects, *merges]:
        for cell in row.values():
            assert not cell.startswith(FORMULA_PREFIXES), row


async def test_a_reload_keeps_each_records_source_system(store: GraphStore, tmp_path: Path) -> None:
    """A record's source system is its lineage (keys limited to `source:SYSTEM` see customers
    by it): a re-load with an empty `source_system` keeps it, one naming another system is
    rejected as a conflict and changes nothing of that customer; the other rows load."""
    first, second = tmp_path / "first", tmp_path / "second"
    write_csv(first / "customers.csv", [
        {"customer_id": "a1", "name": "Ann", "city": "York", "source_system": "acme"},
        {"customer_id": "b1", "name": "Bob", "city": "Hull", "source_system": "acme"},
    ])  # fmt: skip
    await load(store, first)
    write_csv(second / "customers.csv", [
        {"customer_id": "a1", "city": "Leeds"},
        {"customer_id": "b1", "city": "Ripon", "source_system": "crm"},
        {"customer_id": "n1", "name": "New"},
    ])  # fmt: skip
    report = await load(store, second, rejects_path=tmp_path / "r.csv")
    stored = await store.read(
        "MATCH (c:Customer)-[:HAS_SOURCE]->(s:SourceRecord) "
        "RETURN c.id AS id, c.city AS city, s.system AS system ORDER BY id"
    )
    assert stored == [
        {"id": "a1", "city": "Leeds", "system": "acme"},
        {"id": "b1", "city": "Hull", "system": "acme"},
        {"id": "n1", "city": None, "system": "default"},
    ]
    rejects = read_rejects(tmp_path / "r.csv")
    assert [(r["line"], r["column"], r["value"]) for r in rejects] == [
        ("3", "source_system", "crm")
    ]
    assert "'acme'" in rejects[0]["reason"] and "cannot be changed" in rejects[0]["reason"]
    file = report.files[0]
    assert (file.loaded, file.rejected, file.updated, file.new) == (2, 1, 1, 1)
