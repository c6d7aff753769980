"""Reading the input folder: which files there are, and their rows one at a time.

CSV is read with the standard library's reader, not pandas, on purpose: every record keeps the
physical line it starts on (quoted newlines included), a ragged row or an undecodable byte
rejects that row and not the whole file, and memory stays flat whatever the file's size.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from loaders.errors import ContractError

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
MAX_FIELD = 128 * 1024


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


@dataclass(frozen=True)
class Reject:
    """A row (action `rejected`) or a single value (action `field_dropped`) not loaded."""

    file: str
    line: int
    column: str
    reason: str
    value: str = ""
    action: Literal["rejected", "field_dropped"] = "rejected"


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


def read_header(source: SourceFile) -> list[str]:
    """The file's column names, checked against the contract before anything is written."""
    if source.format == "csv":
        with _open_text(source.path) as fh:
            try:
                header = next(csv.reader(fh), [])
            except csv.Error as e:
                raise ContractError(f"{source.path.name}: unreadable header: {e}") from e
    else:
        header = _jsonl_columns(source.path)
    columns = [name.strip().lower() for name in header]
    if not any(columns):
        raise ContractError(f"{source.path.name} is empty: it needs a header row")
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise ContractError(f"{source.path.name}: column {name!r} appears twice in the header")
        seen.add(name)
    missing = [c for c in REQUIRED[source.kind] if c not in seen]
    if missing and source.format == "csv":
        raise ContractError(
            f"{source.path.name}: the header lacks required column(s) {', '.join(missing)} "
            f"(header: {', '.join(columns)})"
        )
    return columns


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
            joined = "\x1f".join(row)
            bad = _BAD_TEXT.search(joined)
            if bad:
                column = header[min(joined.count("\x1f", 0, bad.start()), width - 1)]
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
    with open(source.path, "rb") as fh:
        for line, raw in enumerate(fh, start=1):
            if on_bytes:
                on_bytes(len(raw))
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            if len(raw) > MAX_FIELD * 8:
                yield Reject(name, line, "", f"record is larger than {MAX_FIELD * 8} bytes")
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield Reject(name, line, "", "is not valid UTF-8")
                continue
            except ValueError as e:
                yield Reject(
                    name,
                    line,
                    "",
                    f"is not valid JSON: {e}",
                    _preview(raw.decode("utf-8", "replace")),
                )
                continue
            if not isinstance(obj, dict):
                yield Reject(name, line, "", f"is a JSON {type(obj).__name__}, not an object")
                continue
            values = {str(k).strip().lower(): _json_text(v) for k, v in obj.items()}
            if any("\x00" in v for v in values.values()):
                yield Reject(name, line, "", "contains a NUL character")
                continue
            yield RawRow(line, values)


def _jsonl_columns(path: Path) -> list[str]:
    """JSON Lines has no header: the columns are the keys of the first object."""
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    obj = json.loads(raw.decode("utf-8-sig"))
                except ValueError:
                    return ["?"]
                return [str(k) for k in obj] if isinstance(obj, dict) else ["?"]
    return []


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
