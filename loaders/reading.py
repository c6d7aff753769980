"""Reading the input folder: which files there are, and their rows one at a time.

CSV is read with the standard library's reader, not pandas, on purpose: every record keeps the
physical line it starts on (quoted newlines included), a ragged row or an undecodable byte
rejects that row and not the whole file, and memory stays flat whatever the file's size.

Lines end with LF, CRLF or a lone CR, in CSV and JSON Lines alike. A file that is not UTF-8 at
all (a UTF-16 or UTF-32 export, or a header with bytes that are not UTF-8) is refused before
anything is written, with a message naming it; a single row with such bytes is rejected alone.
"""

from __future__ import annotations

import csv
import difflib
import enum
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from crm_graph.loaders.errors import ContractError

Kind = Literal["customers", "products", "transactions", "interactions", "social_ties"]
KINDS: tuple[Kind, ...] = ("customers", "products", "transactions", "interactions", "social_ties")
"""Load order: what a row refers to is always loaded before it."""

COLUMNS: dict[Kind, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "email", "phone", "city", "country", "signup_date",
                  "source_system"),
    "products": ("product_id", "name", "category", "price"),
    "transactions": ("transaction_id", "customer_id", "timestamp", "product_id", "quantity",
                     "unit_price", "amount", "channel"),
    "interactions": ("interaction_id", "customer_id", "timestamp", "type", "channel", "subject",
                     "sentiment", "satisfaction"),
    "social_ties": ("source_customer_id", "target_customer_id", "type", "since", "weight"),
}  # fmt: skip
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "products": ("product_id",),
    "transactions": ("transaction_id", "customer_id", "timestamp"),
    "interactions": ("interaction_id", "customer_id", "timestamp", "type"),
    "social_ties": ("source_customer_id", "target_customer_id"),
}
EXTRA_COLUMNS_KEPT: frozenset[Kind] = frozenset({"customers", "products"})
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

_BAD_TEXT = re.compile("[\x00\udc80-\udcff]")
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_BAD_JSON_TEXT = re.compile("[\x00\ud800-\udfff]")
MAX_FIELD = 128 * 1024
"""A CSV field longer than this many bytes rejects its row."""
MAX_RECORD = MAX_FIELD * 8
"""A JSON Lines record longer than this many characters is rejected."""
CSV_PARSE_LIMIT = 16 * 1024 * 1024
"""The csv module's own field limit, raised so that a field over `MAX_FIELD` (a long note with
quoted newlines, say) is read whole and rejected with its row, instead of the reader losing its
place inside it. A field over this limit is still rejected, with the reader's error."""
csv.field_size_limit(max(csv.field_size_limit(), CSV_PARSE_LIMIT))
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


@dataclass(frozen=True)
class SourceFile:
    kind: Kind
    path: Path
    format: Literal["csv", "jsonl"]

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True)
class RawRow:
    """One record as read: its first physical line and its values by column name."""

    line: int
    values: dict[str, str]


class RejectCode(enum.Enum):
    """Why a row was not loaded, for programs (the API's error codes come from it); `reason`
    says it for people."""

    INVALID = "invalid"
    """A value is missing or malformed, or the record cannot be read."""
    UNKNOWN_CUSTOMER = "unknown_customer"
    """The row names a customer who is not loaded (never invented)."""
    CONFLICT = "conflict"
    """The row contradicts another line or what identity resolution found (a transaction's
    lines naming two customers, a customer tied to themselves)."""


@dataclass(frozen=True)
class Reject:
    """A row (action `rejected`) or a single value (action `field_dropped`) not loaded."""

    file: str
    line: int
    column: str
    reason: str
    value: str = ""
    action: Literal["rejected", "field_dropped"] = "rejected"
    code: RejectCode = RejectCode.INVALID


def find_files(folder: Path) -> dict[Kind, SourceFile]:
    """The contract's files in `folder`; customers is required, the others optional."""
    if not folder.is_dir():
        raise ContractError(f"{folder} is not a folder")
    found: dict[Kind, SourceFile] = {}
    for kind in KINDS:
        matches = [
            SourceFile(kind, folder / f"{kind}{suffix}", fmt)  # type: ignore[arg-type]
            for suffix, fmt in SUFFIXES.items()
            if (folder / f"{kind}{suffix}").is_file()
        ]
        if len(matches) > 1:
            names = ", ".join(m.path.name for m in matches)
            raise ContractError(f"{folder} has {names}: keep one format per file")
        if matches:
            found[kind] = matches[0]
    if "customers" not in found:
        raise ContractError(
            f"{folder} has no customers.csv (or customers.jsonl); it is the one required file"
        )
    return found


def ignored_files(folder: Path) -> list[str]:
    """What `load` will not read in `folder`, one line per file, with a "did you mean" when the
    name is close to a contract file's (`transaction.csv`, `Interactions.csv`, `products.xlsx`).
    Hidden files (`.DS_Store`) are left out."""
    expected = [f"{kind}{suffix}" for kind in KINDS for suffix in SUFFIXES]
    notes = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name in expected:
            continue
        if path.is_dir():
            notes.append(f"ignored {path.name}/: load reads the files of the folder only")
            continue
        stem, suffix = path.stem.lower(), path.suffix.lower()
        kinds = difflib.get_close_matches(stem, KINDS, n=1, cutoff=0.75)
        if not kinds:
            notes.append(f"ignored {path.name}: not a contract file ({', '.join(KINDS)})")
            continue
        meant = f"{kinds[0]}{suffix if suffix in SUFFIXES else '.csv'}"
        why = ""
        if suffix not in SUFFIXES:
            why = f" ({suffix or 'no extension'}: load reads .csv, .jsonl and .ndjson)"
        elif stem == kinds[0]:
            why = " (file names are lower case)"
        notes.append(f"ignored {path.name}: did you mean {meant}?{why}")
    return notes


def read_header(source: SourceFile) -> list[str]:
    """The file's column names, checked against the contract before anything is written.

    JSON Lines has no header: its columns are the keys of its first record, and nothing about
    them refuses the file (each record is checked on its own, an empty file has no records)."""
    _refuse_other_encodings(source.path)
    if source.format == "jsonl":
        return _jsonl_columns(source.path)
    with _open_text(source.path) as fh:
        try:
            header = next(csv.reader(fh), [])
        except csv.Error as e:
            raise ContractError(f"{source.path.name}: unreadable header: {e}") from e
    columns = [name.strip().lower() for name in header]
    if not any(columns):
        if _is_blank(source.path):
            if source.kind != "customers":  # an optional file with nothing in it: no rows
                return []
            raise ContractError(f"{source.path.name} is empty: it needs a header row")
        raise ContractError(
            f"{source.path.name}: the first line is blank; the header must be the first line"
        )
    for name in columns:
        if _BAD_TEXT.search(name):
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise ContractError(
                f"{source.path.name}: the header is not UTF-8 text (column {shown!r}); "
                "save the file as UTF-8"
            )
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise ContractError(f"{source.path.name}: column {name!r} appears twice in the header")
        seen.add(name)
    missing = [c for c in REQUIRED[source.kind] if c not in seen]
    if missing:
        raise ContractError(
            f"{source.path.name}: the header lacks required column(s) {', '.join(missing)} "
            f"(header: {', '.join(columns)})"
        )
    return columns


def _refuse_other_encodings(path: Path) -> None:
    """Refuse a UTF-16 or UTF-32 file: by its byte order mark, or NUL bytes in its first line."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            raise ContractError(
                f"{path.name} is {encoding} text (it starts with a {encoding} byte order mark), "
                "not UTF-8: save it as UTF-8"
            )
    if b"\x00" in re.split(rb"[\r\n]", head, maxsplit=1)[0]:
        raise ContractError(
            f"{path.name} has NUL bytes in its first line: it is not UTF-8 text (UTF-16 or "
            "UTF-32 without a byte order mark?); save it as UTF-8"
        )


def _is_blank(path: Path) -> bool:
    """True when the file holds nothing but a UTF-8 byte order mark and whitespace."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return not head.removeprefix(b"\xef\xbb\xbf").strip() and len(head) < 4096


def iter_rows(
    source: SourceFile, on_bytes: Callable[[int], None] | None = None
) -> Iterator[RawRow | Reject]:
    """Every record of the file in order: a `RawRow`, or a `Reject` when it cannot be read."""
    if source.format == "csv":
        yield from _iter_csv(source, on_bytes)
    else:
        yield from _iter_jsonl(source, on_bytes)


class _CountingReader(io.RawIOBase):
    """A binary file that reports how many bytes were read (for the progress bar)."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if n and self._on_bytes:
            self._on_bytes(n)
        return int(n or 0)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_text(path: Path, on_bytes: Callable[[int], None] | None = None) -> IO[str]:
    raw = _CountingReader(open(path, "rb"), on_bytes)  # noqa: SIM115 - closed by the wrapper
    buffered = io.BufferedReader(raw, buffer_size=1 << 20)
    # utf-8-sig drops a BOM; surrogateescape keeps bad bytes so that only their row is rejected
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _iter_csv(
    source: SourceFile, on_bytes: Callable[[int], None] | None
) -> Iterator[RawRow | Reject]:
    name = source.path.name
    with _open_text(source.path, on_bytes) as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            return
        width = len(header)
        consumed = reader.line_num
        while True:
            line = consumed + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                consumed = reader.line_num
                yield Reject(name, line, "", f"unreadable CSV record: {e}")
                continue
            consumed = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line is not a record
            big = next((i for i, value in enumerate(row) if _too_big(value)), None)
            if big is not None:
                column = header[big] if big < width else ""
                yield Reject(name, line, column, f"is larger than {MAX_FIELD // 1024} KiB",
                             _preview(row[big]))  # fmt: skip
                continue
            if _BAD_TEXT.search("".join(row)):  # one search for the row; the column if found
                at, bad = next((i, m) for i, v in enumerate(row) if (m := _BAD_TEXT.search(v)))
                column = header[at] if at < width else ""
                reason = "contains a NUL byte" if bad.group() == "\x00" else "is not valid UTF-8"
                yield Reject(name, line, column, reason)
                continue
            if len(row) != width:
                yield Reject(
                    name, line, "", f"has {len(row)} fields where the header has {width}",
                    _preview(",".join(row)),
                )  # fmt: skip
                continue
            yield RawRow(line, dict(zip(header, row, strict=True)))


def _iter_jsonl(
    source: SourceFile, on_bytes: Callable[[int], None] | None
) -> Iterator[RawRow | Reject]:
    name = source.path.name
    with _open_text(source.path, on_bytes) as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            yield _jsonl_record(name, line, text)


def _jsonl_record(name: str, line: int, text: str) -> RawRow | Reject:
    """One JSON Lines record: a `RawRow` of its keys and values, or why it is rejected."""
    if len(text) > MAX_RECORD:
        return Reject(name, line, "", f"is longer than {MAX_RECORD} characters", _preview(text))
    if _UNDECODABLE.search(text):
        return Reject(name, line, "", "is not valid UTF-8")
    try:
        obj = json.loads(text)
    except RecursionError:
        return Reject(name, line, "", "is not valid JSON: nested too deeply", _preview(text))
    except ValueError as e:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return Reject(name, line, "", f"is not valid JSON: {e}", _preview(shown.rstrip()))
    if not isinstance(obj, dict):
        return Reject(name, line, "", f"is a JSON {type(obj).__name__}, not an object")
    try:
        values = {str(k).strip().lower(): _json_text(v) for k, v in obj.items()}
    except RecursionError:
        return Reject(name, line, "", "is not valid JSON: nested too deeply")
    for key, value in values.items():
        bad = _BAD_JSON_TEXT.search(key) or _BAD_JSON_TEXT.search(value)
        if bad is None:
            continue
        column = "" if _BAD_JSON_TEXT.search(key) else key
        if bad.group() == "\x00":
            return Reject(name, line, column, "contains a NUL character")
        return Reject(
            name, line, column,
            f"is not valid Unicode: it holds a lone surrogate ({bad.group()!a})",
        )  # fmt: skip
    return RawRow(line, values)


def _jsonl_columns(path: Path) -> list[str]:
    """JSON Lines has no header: the columns are the keys of the first record (a first line
    that is not a readable object is that record's problem, not the file's)."""
    with _open_text(path) as fh:
        for line, text in enumerate(fh, start=1):
            if text.strip():
                first = _jsonl_record(path.name, line, text)
                return list(first.values) if isinstance(first, RawRow) else []
    return []


def _too_big(value: str) -> bool:
    return len(value) > MAX_FIELD // 4 and len(value.encode("utf-8", "surrogateescape")) > MAX_FIELD


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _preview(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
