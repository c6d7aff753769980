"""Broken input, hand-picked and fuzzed, loaded into the real embedded store.

Whatever the bytes, a load either refuses the whole folder before writing anything, with a
`ContractError` naming the file (the documented cases: an empty file, a file that is not UTF-8 at
all, an unreadable or blank first line, a repeated or missing required column), or finishes, and
then every record of every file was read and is either loaded or rejected: loaded + rejected =
read = the records written, each rejected record is in the rejects file under its file and the
physical line it starts on, with a column of its header (or none) and a reason. Values that look
like spreadsheet formulas are stored as given; in the CSV files the load writes (rejects,
merges) no cell starts like a formula.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.errors import ContractError
from crm_graph.loaders.load import FORMULA_PREFIXES, LoadReport, load_folder
from crm_graph.loaders.reading import COLUMNS, CSV_PARSE_LIMIT, REQUIRED

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(1)", '=HYPERLINK("http://x")', "\t=1+1"]
HUGE = 140 * 1024  # over the 128 KiB a field may hold


# -- what the load wrote -----------------------------------------------------------------------


async def load(store: GraphStore, folder: Path) -> LoadReport:
    report = await load_folder(store, folder, rejects_path=folder.parent / "r.csv", progress=False)
    for f in report.files:
        assert f.loaded + f.rejected == f.read, f
    return report


def exported_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file the load wrote; it must be UTF-8 and carry no formula."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(FORMULA_PREFIXES), (path.name, column, cell)
    return rows


def rejected(rows: list[dict[str, str]]) -> dict[tuple[str, int, str], str]:
    return {
        (r["file"], int(r["line"]), r["column"]): r["reason"]
        for r in rows
        if r["action"] == "rejected"
    }


async def graph_size(store: GraphStore) -> int:
    return int((await store.read("MATCH (n) RETURN count(n) AS n"))[0]["n"])


# -- hand-picked cases -------------------------------------------------------------------------


@dataclass
class Case:
    """Files (name → bytes) and what the load must do with them: refuse with a message matching
    `refused`, or read/load/reject `counts` per file and reject exactly `rejects`."""

    files: dict[str, bytes]
    refused: str | None = None
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    rejects: dict[tuple[str, int, str], str] = field(default_factory=dict)


def text(s: str, encoding: str = "utf-8") -> bytes:
    return s.encode(encoding)


HEADER = "customer_id,name,city\n"
ENORMOUS = (
    HEADER
    + "c1,Ann,Paris\n"
    + "c2," + "y" * HUGE + ",Rome\n"  # line 3
    + 'c3,"' + "note\n" * (HUGE // 5) + '",Oslo\n'  # lines 4 to 4 + HUGE // 5
    + "c4,Dee," + "z" * (CSV_PARSE_LIMIT + 1) + "\n"  # beyond the reader's own limit
    + "c5,Eve,Nice\n"
)  # fmt: skip
DEEP = "[" * 100_000 + "]" * 100_000
BROKEN_JSONL = text(
    '{"customer_id": "j1"\n{"customer_id": "j2",}\n'
    "{'customer_id': 'j3'}\n"
    '{"customer_id": "j4"} trailing\n{"customer_id": "j5"}\n'
    + '{"customer_id": "j6", "name": ' + DEEP + "}\n"
    + '{"customer_id": "j7", "name": "\\ud800"}\n'
    + '{"customer_id": "j8", "\\udfff": "x"}\n'
) + b'{"customer_id": "j9", "name": "caf\xe9"}\n'  # fmt: skip
CR_ONLY = HEADER.replace("\n", "\r") + 'c1,"A\rB",x\rc2,"C\nD\r\nE",y\r,Z,z\r'
NUL_JSONL = '{"product_id": "p1", "name": "M\\u0000g"}\n{"product_id": "p2"}\n'

CASES: dict[str, Case] = {
    "latin-1 rows": Case(
        {"customers.csv": text(HEADER + "c1,Ann,Paris\nc2,José,Lyon\nc3,Bob,Köln\n", "latin-1")},
        counts={"customers.csv": (3, 1, 2)},
        rejects={("customers.csv", 3, "name"): "UTF-8", ("customers.csv", 4, "city"): "UTF-8"},
    ),
    "latin-1 header": Case(
        {"customers.csv": text("customer_id,prénom\nc1,Zoé\n", "latin-1")},
        refused=r"customers\.csv: the header is not UTF-8",
    ),
    "UTF-16 with BOM": Case(
        {"customers.csv": text(HEADER + "c1,Ann,Paris\n", "utf-16")},
        refused=r"customers\.csv is UTF-16 text",
    ),
    "UTF-16 without BOM": Case(
        {"customers.csv": text(HEADER + "c1,Ann,Paris\n", "utf-16-le")},
        refused=r"customers\.csv has NUL bytes in its first line",
    ),
    "UTF-16 JSON Lines": Case(
        {"customers.jsonl": text('{"customer_id": "c1"}\n{"customer_id": "c2"}\n', "utf-16")},
        refused=r"customers\.jsonl is UTF-16 text",
    ),
    "UTF-32 optional file": Case(
        {
            "customers.csv": text(HEADER + "c1,Ann,Paris\n"),
            "products.csv": text("product_id,name\np1,Mug\n", "utf-32"),
        },
        refused=r"products\.csv is UTF-32 text",
    ),
    "UTF-8 BOM": Case(
        {
            "customers.csv": b"\xef\xbb\xbf" + text(HEADER + "c1,Ann,Paris\nc2,Bo,Rome\n"),
            "products.jsonl": b"\xef\xbb\xbf" + text('{"product_id": "p1"}\n'),
        },
        counts={"customers.csv": (2, 2, 0), "products.jsonl": (1, 1, 0)},
    ),
    "invalid UTF-8 bytes": Case(
        {
            "customers.csv": text(HEADER)
            + b"c1,\xff\xfeAnn,Paris\nc2,Ann\xe2\x82,Rome\nc3,Bo,\xc0\xaf\nc4,Cy,Oslo\n"
        },
        counts={"customers.csv": (4, 1, 3)},
        rejects={
            ("customers.csv", 2, "name"): "not valid UTF-8",
            ("customers.csv", 3, "name"): "not valid UTF-8",
            ("customers.csv", 4, "city"): "not valid UTF-8",
        },
    ),
    "ragged rows": Case(
        {"customers.csv": text(HEADER + "c1,Ann\nc2,Bo,Rome,extra\nc3\nc4,,\n")},
        counts={"customers.csv": (4, 1, 3)},
        rejects={
            ("customers.csv", 2, ""): "2 fields where the header has 3",
            ("customers.csv", 3, ""): "4 fields where the header has 3",
            ("customers.csv", 4, ""): "1 fields where the header has 3",
        },
    ),
    "enormous fields": Case(
        {"customers.csv": text(ENORMOUS)},
        counts={"customers.csv": (5, 2, 3)},
        rejects={
            ("customers.csv", 3, "name"): "larger than 128 KiB",
            ("customers.csv", 4, "name"): "larger than 128 KiB",
            ("customers.csv", 5 + HUGE // 5, ""): "unreadable CSV record",
        },
    ),
    "NUL bytes": Case(
        {
            "customers.csv": text(HEADER + "c1,A\x00n,Paris\nc2,Bo,Rome\n"),
            "products.jsonl": text(NUL_JSONL),
        },
        counts={"customers.csv": (2, 1, 1), "products.jsonl": (2, 1, 1)},
        rejects={
            ("customers.csv", 2, "name"): "NUL",
            ("products.jsonl", 1, "name"): "NUL",
        },
    ),
    "quoted newlines, CR-only line endings": Case(
        {"customers.csv": text(CR_ONLY)},
        counts={"customers.csv": (3, 2, 1)},
        rejects={("customers.csv", 7, "customer_id"): "required"},
    ),
    "mixed line endings": Case(
        {"customers.csv": text(HEADER + "c1,A,x\r\nc2,B,y\rc3,C,z\n,D,w\r\n")},
        counts={"customers.csv": (4, 3, 1)},
        rejects={("customers.csv", 5, "customer_id"): "required"},
    ),
    "numbers too large to add up": Case(
        {
            "customers.csv": text("customer_id\nc1\n"),
            "products.csv": text("product_id,price\np1,1e300\n"),
            "transactions.csv": text(
                "transaction_id,customer_id,timestamp,product_id,quantity,unit_price,amount\n"
                "t1,c1,2024-01-01,p1,1e308,10,\n"
                "t2,c1,2024-01-01,p1,,,-1e16\n"
                "t3,c1,2024-01-01,p1,,,1e15\n"
                "t3,c1,2024-01-01,p1,,,1e15\n"
            ),
        },
        counts={
            "customers.csv": (1, 1, 0),
            "products.csv": (1, 1, 0),
            "transactions.csv": (4, 2, 2),
        },
        rejects={
            ("transactions.csv", 2, "quantity"): "above the maximum",
            ("transactions.csv", 3, "amount"): "below the minimum",
        },
    ),
    "empty customers": Case({"customers.csv": b""}, refused=r"customers\.csv is empty"),
    "empty optional file": Case(  # issue 16: it used to stop the whole load
        {
            "customers.csv": text(HEADER + "c1,A,x\n"),
            "products.csv": b" \n",
            "social_ties.csv": b"",
        },
        counts={
            "customers.csv": (1, 1, 0),
            "products.csv": (0, 0, 0),
            "social_ties.csv": (0, 0, 0),
        },
    ),
    "empty JSON Lines": Case(
        {"customers.jsonl": b"", "products.jsonl": b"\xef\xbb\xbf\n{}\n"},
        counts={"customers.jsonl": (0, 0, 0), "products.jsonl": (1, 0, 1)},
        rejects={("products.jsonl", 2, "product_id"): "required"},
    ),
    "blank first line": Case(
        {"customers.csv": text("\n" + HEADER + "c1,A,x\n")},
        refused=r"customers\.csv: the first line is blank",
    ),
    "header only": Case(
        {"customers.csv": text(HEADER), "products.csv": b"\xef\xbb\xbfproduct_id\r\n"},
        counts={"customers.csv": (0, 0, 0), "products.csv": (0, 0, 0)},
    ),
    "duplicate header": Case(
        {"customers.csv": text("customer_id,Name, name \nc1,A,B\n")},
        refused=r"customers\.csv: column 'name' appears twice",
    ),
    "missing required column": Case(
        {"customers.csv": text(HEADER), "transactions.csv": text("transaction_id,customer_id\n")},
        refused=r"transactions\.csv: the header lacks required column\(s\) timestamp",
    ),
    "JSON Lines: not objects": Case(
        {"customers.jsonl": text('{"customer_id": "j1"}\n[1, 2]\n"text"\n3\nnull\ntrue\n{}\n')},
        counts={"customers.jsonl": (7, 1, 6)},
        rejects={
            ("customers.jsonl", 2, ""): "JSON list, not an object",
            ("customers.jsonl", 3, ""): "JSON str, not an object",
            ("customers.jsonl", 4, ""): "JSON int, not an object",
            ("customers.jsonl", 5, ""): "JSON NoneType, not an object",
            ("customers.jsonl", 6, ""): "JSON bool, not an object",
            ("customers.jsonl", 7, "customer_id"): "required",
        },
    ),
    "JSON Lines: broken JSON": Case(
        {"customers.jsonl": BROKEN_JSONL},
        counts={"customers.jsonl": (9, 1, 8)},
        rejects={
            ("customers.jsonl", 1, ""): "not valid JSON",
            ("customers.jsonl", 2, ""): "not valid JSON",
            ("customers.jsonl", 3, ""): "not valid JSON",
            ("customers.jsonl", 4, ""): "not valid JSON",
            ("customers.jsonl", 6, ""): "nested too deeply",
            ("customers.jsonl", 7, "name"): "lone surrogate",
            ("customers.jsonl", 8, ""): "lone surrogate",
            ("customers.jsonl", 9, ""): "not valid UTF-8",
        },
    ),
    "JSON Lines: CR-only line endings": Case(
        {"customers.jsonl": text('{"customer_id": "j1"}\r{"customer_id": "j2"}\r\r{"x": 1}\r')},
        counts={"customers.jsonl": (3, 2, 1)},
        rejects={("customers.jsonl", 4, "customer_id"): "required"},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_broken_file_is_refused_or_every_row_accounted_for(
    store: GraphStore, tmp_path: Path, name: str
) -> None:
    # given a folder with one kind of broken input
    case = CASES[name]
    folder = tmp_path / "in"
    folder.mkdir()
    for file, data in case.files.items():
        (folder / file).write_bytes(data)
    if case.refused:
        # when it is loaded, then the whole folder is refused, naming the file, before writing
        with pytest.raises(ContractError, match=case.refused):
            await load(store, folder)
        assert await graph_size(store) == 0
        return
    # when it is loaded, then each file's rows are counted and each bad row rejected by line
    report = await load(store, folder)
    assert {f.file: (f.read, f.loaded, f.rejected) for f in report.files} == case.counts
    found = rejected(exported_rows(report.rejects_path))
    assert set(found) == set(case.rejects)
    for key, words in case.rejects.items():
        assert words in found[key], (key, found[key])


# -- fuzzed input ------------------------------------------------------------------------------

IDS = ["c1", "c2", " c3 ", "c1", "c2", " c3 ", "C1", "", "=c4", "-5"]
TEXT_ALPHABET = [*"ab ,;\"'\n\r\t=+-@|!é王", "\x00", "\udcff", "\udc80", "\u2028", "\ufeff"]
nasty = st.text(alphabet=st.sampled_from(TEXT_ALPHABET), max_size=8)
formula = st.sampled_from(FORMULAS)
POOLS: dict[str, list[str]] = {
    "id": IDS,
    "email": ["a@example.com", " A@Example.com", "b@example.org", "=1+1@example.com", "bad"],
    "phone": ["+44 20 7946 0018", "+442079460018", "07700 900123", "+1+1", "-2"],
    "source_system": ["crm", "web", "=sys", ""],
    "country": ["GB", "fr", "XX", ""],
    "instant": ["2024-01-01", "2024-02-29T10:00:00+02:00", "2024-03-01 12:00", "2023-13-01", ""],
    "number": ["1", "2.5", "3", "0.25", "10", "-2", "+1", "0", "1e308", "nan", "1,5", ""],
    "type": ["call", "CHAT", "email", "fax", "KNOWS", "family", "colleague", "rival", ""],
    "product_id": ["p1", "p2", "=p3", ""],
    "key": ["t1", "t2", "i1", "=x", ""],
}
COLUMN_POOL = {
    "customer_id": "id", "source_customer_id": "id", "target_customer_id": "id",
    "transaction_id": "key", "interaction_id": "key", "product_id": "product_id",
    "email": "email", "phone": "phone", "source_system": "source_system", "country": "country",
    "signup_date": "instant", "timestamp": "instant", "since": "instant",
    "quantity": "number", "unit_price": "number", "amount": "number", "price": "number",
    "sentiment": "number", "satisfaction": "number", "weight": "number", "type": "type",
}  # fmt: skip
EXTRA_COLUMNS = ["tier", "=cmd|' /C calc'!A0", "@sum(1)", "-x", "notes"] * 3 + ["prénom", " Name"]
ENCODINGS = ["utf-8"] * 20 + ["utf-8-sig"] * 3 + ["latin-1"] * 4 + ["utf-16", "utf-16-le"]
OTHER_KINDS = ["products", "transactions", "interactions", "social_ties"]


def plausible(column: str) -> st.SearchStrategy[str]:
    """Values a real export would hold in `column`, a few of them wrong."""
    pool = COLUMN_POOL.get(column)
    return st.sampled_from(POOLS[pool]) if pool else st.sampled_from(["Ann", "José", "王芳", ""])


def value(column: str) -> st.SearchStrategy[str]:
    good = plausible(column)
    return st.one_of(good, good, formula, nasty)


def encode(content: str, encoding: str) -> bytes:
    """`content` in `encoding`; characters it cannot hold become ?, except surrogate escapes,
    which become the single bytes they stand for (that is how invalid UTF-8 is written)."""
    if encoding in ("utf-8", "utf-8-sig", "latin-1"):
        limit = 0x110000 if encoding != "latin-1" else 0x100
        kept = "".join(c if ord(c) < limit or 0xDC80 <= ord(c) <= 0xDCFF else "?" for c in content)
        return kept.encode(encoding, "surrogateescape")
    return re.sub("[\udc80-\udcff]", "?", content).encode(encoding)


def seen(raw: str, encoding: str) -> str:
    """What the loader reads for a value written in `encoding`."""
    return encode(raw, encoding.replace("-sig", "")).decode("utf-8", "surrogateescape")


@dataclass
class FuzzFile:
    kind: str
    format: str
    encoding: str
    newline: str
    header: list[str]
    records: list[Any]
    """CSV: lists of fields; JSON Lines: dicts, or raw text for broken lines."""
    quote_all: bool = False
    empty: bool = False

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.format}"

    def render(self) -> tuple[bytes, list[int]]:
        """The file's bytes, and the line each record starts on (None for a blank record)."""
        if self.empty:
            return b"", []
        lines: list[int] = []
        chunks: list[str] = []
        line = 1
        if self.format == "csv":
            chunks.append(self._csv_line(self.header))
            line += _breaks(chunks[-1])
        for record in self.records:
            chunk = self._csv_line(record) if self.format == "csv" else self._json_line(record)
            lines.append(line)
            chunks.append(chunk)
            line += _breaks(chunk)
        return encode("".join(chunks), self.encoding), lines

    def _csv_line(self, fields: list[str]) -> str:
        def cell(v: str) -> str:
            if self.quote_all or any(c in v for c in ',"\r\n') or v != v.strip():
                return '"' + v.replace('"', '""') + '"'
            return v

        return ",".join(cell(v) for v in fields) + self.newline

    def _json_line(self, record: Any) -> str:
        if isinstance(record, str):
            return record + self.newline
        return json.dumps(record, ensure_ascii=self.quote_all) + self.newline

    def refusal(self) -> str | None:
        """The message the load must refuse this file with, or None when it must load it."""
        if self.empty:  # no bytes at all: no header for CSV, no records for JSON Lines
            return "is empty" if self.format == "csv" and self.kind == "customers" else None
        if self.encoding == "utf-16":
            return "UTF-16"
        if self.encoding == "utf-16-le" and (self.format == "csv" or self.records):
            return "NUL bytes in its first line"
        if self.format == "jsonl":
            return None
        if self.encoding == "latin-1" and any(not h.isascii() for h in self.header):
            return "the header is not UTF-8"
        names = [h.strip().lower() for h in self.header]
        if len(set(names)) < len(names):
            return "appears twice"
        if any(c not in names for c in REQUIRED[self.kind]):  # type: ignore[index]
            return "lacks required column"
        return None

    def is_record(self, record: Any) -> bool:
        """False for what the reader skips as a blank line."""
        if self.format == "jsonl":
            return True
        return not (len(record) == 1 and not seen(record[0], self.encoding).strip())


def _breaks(chunk: str) -> int:
    return len(re.findall("\r\n|\r|\n", chunk))


@st.composite
def fuzz_file(draw: st.DrawFn, kind: str) -> FuzzFile:
    fmt = draw(st.sampled_from(["csv", "csv", "jsonl"]))
    columns = list(COLUMNS[kind])  # type: ignore[index]
    header = draw(st.permutations(columns))
    header = header[: len(header) - draw(st.sampled_from([0] * 20 + [1, 2]))]
    header += draw(st.lists(st.sampled_from(EXTRA_COLUMNS), max_size=2, unique=True))
    header = list(dict.fromkeys(header))  # an extra column named like a contract one: once
    file = FuzzFile(
        kind, fmt,
        encoding=draw(st.sampled_from(ENCODINGS)),
        newline=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        header=header, records=[], quote_all=draw(st.booleans()),
        empty=draw(st.sampled_from([False] * 40 + [True])),
    )  # fmt: skip
    huge_at = draw(st.sampled_from(range(200)))  # a huge field in one file in ten
    for index in range(draw(st.sampled_from(range(11)))):
        width = max(1, len(header) + draw(st.sampled_from([0] * 10 + [-2, -1, 1, 3])))
        names = [header[i] if i < len(header) else "" for i in range(width)]
        fields = [draw(plausible(name)) for name in names]
        for _ in range(draw(st.integers(0, 3))):  # then a few fields made nasty
            at = draw(st.integers(0, width - 1))
            fields[at] = draw(value(names[at]))
        if index == huge_at % 10 and huge_at < 20:
            fields[draw(st.integers(0, len(fields) - 1))] = "x\n" * (HUGE // 2)
        if fmt == "csv":
            file.records.append(fields)
        elif draw(st.integers(0, 8)) == 0:
            file.records.append(draw(st.sampled_from(BROKEN_JSON_LINES)))
        else:
            file.records.append(draw(json_object(header)))
    if file.empty:
        file.records = []
    return file


BROKEN_JSON_LINES = [
    "[1, 2]", '"text"', "3", "null", '{"customer_id": "c1"', "{bad}", '{"customer_id": "c1"} x',
    '{"customer_id": "c1", "name": "\\ud800"}', '{"customer_id": "c2", "name": "\\u0000"}',
    '{"customer_id": "c3", "name": ' + "[" * 5000 + "]" * 5000 + "}",
]  # fmt: skip


@st.composite
def json_object(draw: st.DrawFn, header: list[str]) -> dict[str, Any]:
    """Mostly plausible values; some keys left out, some values nasty or not text at all."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False))
    obj: dict[str, Any] = {}
    for key in header:
        kind = draw(st.sampled_from(["plausible"] * 6 + ["absent", "nasty", "other"]))
        if kind == "absent":
            continue
        if kind == "plausible" or COLUMN_POOL.get(key) == "id":
            obj[key] = draw(plausible(key) if kind == "plausible" else value(key))  # ids: text
        elif kind == "nasty":
            obj[key] = draw(value(key))
        else:
            obj[key] = draw(st.one_of(scalars, st.lists(scalars, max_size=2)))
    return obj


@st.composite
def fuzz_folder(draw: st.DrawFn) -> list[FuzzFile]:
    files = [draw(fuzz_file("customers"))]
    for kind in draw(st.lists(st.sampled_from(OTHER_KINDS), unique=True, max_size=2)):
        files.append(draw(fuzz_file(kind)))
    return files


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)  # fmt: skip
@given(files=fuzz_folder())
async def test_fuzzed_files_are_refused_whole_or_every_record_is_accounted_for(
    store: GraphStore, files: list[FuzzFile]
) -> None:
    await store.write("MATCH (n) DETACH DELETE n")  # one graph for all examples
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        starts: dict[str, list[int]] = {}
        for f in files:
            data, lines = f.render()
            (folder / f.name).write_bytes(data)
            starts[f.name] = [line for line, r in zip(lines, f.records, strict=True)
                              if f.is_record(r)]  # fmt: skip
        refusals = [(f.name, f.refusal()) for f in files if f.refusal()]
        if refusals:
            event(f"refused: {refusals[0][1]}")
            with pytest.raises(ContractError) as refused:
                await load(store, folder)
            message = str(refused.value)
            assert any(name in message and words in message for name, words in refusals), (
                message,
                refusals,
            )
            assert await graph_size(store) == 0
            return
        event("loaded")
        report = await load(store, folder)
        await check_report(store, report, files, starts)


async def check_report(store: GraphStore, report: LoadReport, files: list[FuzzFile],
                       starts: dict[str, list[int]]) -> None:  # fmt: skip
    by_name = {f.name: f for f in files}
    rows = exported_rows(report.rejects_path)
    exported_rows(report.merges_path)
    rejected_lines: dict[str, set[int]] = {name: set() for name in by_name}
    for r in rows:
        f = by_name[r["file"]]
        assert int(r["line"]) in starts[f.name], r
        assert r["action"] in ("rejected", "field_dropped") and r["reason"], r
        if f.format == "csv":
            header = [h.strip().lower() for h in f.header]
            assert r["column"] in {"", *header, *("'" + h for h in header)}, r
        if r["action"] == "rejected":
            rejected_lines[f.name].add(int(r["line"]))
    for report_file in report.files:
        f = by_name[report_file.file]
        assert report_file.read == len(starts[f.name]), (f.name, report_file)
        assert report_file.rejected == len(rejected_lines[f.name]), (f.name, report_file)
        if report_file.rejected:
            event(f"{f.name}: some rejected")
        if report_file.loaded:
            event(f"{f.name}: some loaded")
    # the customers loaded are exactly the records not rejected, with names as given
    customers = by_name.get("customers.csv") or by_name["customers.jsonl"]
    loaded = [
        _values(customers, record)
        for line, record in zip(starts[customers.name],
                                [r for r in customers.records if customers.is_record(r)],
                                strict=True)
        if line not in rejected_lines[customers.name]
    ]  # fmt: skip
    stored = await store.read("MATCH (s:SourceRecord) RETURN s.id AS id")
    assert {r["id"] for r in stored} == {v["customer_id"].strip() for v in loaded}
    names = await store.read("MATCH (c:Customer) WHERE c.name IS NOT NULL RETURN c.name AS name")
    given = {v.get("name", "").strip() for v in loaded}
    assert {r["name"] for r in names} <= given


def _values(f: FuzzFile, record: Any) -> dict[str, Any]:
    """A loaded record's values as the loader read them, by lower-cased column."""
    if f.format == "csv":
        header = [h.strip().lower() for h in f.header]
        return {h: seen(v, f.encoding) for h, v in zip(header, record, strict=True)}
    values = {k.strip().lower(): _as_text(v) for k, v in record.items()}
    if not f.quote_all:  # written with ensure_ascii=False: the text went through the encoding
        values = {k: seen(v, f.encoding) for k, v in values.items()}
    return values


def _as_text(value: Any) -> str:
    """A JSON value as the data contract reads it: text as is, true/false, numbers as Python
    writes them, null empty, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)
