"""The README's graph model is the one in the store, and its Cypher examples find rows.

On the demo business (`make run`'s), loaded and trained with the real command line: every label,
relationship type and property the store holds is in the README's tables (a new one fails this
test until it is documented), every score `train` writes is in the scores table and no other,
and every `crm-graph query` line of the "Cypher with `crm-graph query`" section, run as written,
prints at least one row."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
ROW_COUNT = re.compile(r"^\((\d+) rows?\)$", re.MULTILINE)
CODE = re.compile(r"`([A-Za-z_]+)`")


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def between(text: str, first: str, last: str | None) -> str:
    start = text.index(first)
    return text[start : text.index(last, start) if last else len(text)]


def documented_nodes() -> dict[str, set[str]]:
    nodes = between(section("The graph model"), "**Nodes.**", "**Relationships.**")
    rows = re.findall(r"^\| `(\w+)` \|([^|]*)\|(.*)\|$", nodes, re.MULTILINE)
    return {label: set(CODE.findall(key + " " + props)) for label, key, props in rows}


def documented_relationships() -> dict[str, set[str]]:
    ties = between(section("The graph model"), "**Relationships.**", "**Scores**")
    rows = re.findall(r"^\| `([A-Z_]+)` \| [^|]* \|(.*)\|$", ties, re.MULTILINE)
    return {kind: set(CODE.findall(props)) for kind, props in rows}


def documented_scores() -> set[str]:
    scores = between(section("The graph model"), "**Scores**", None)
    firsts = re.findall(r"^\| (`ml.*?) \| ", scores, re.MULTILINE)
    return {name for cell in firsts for name in CODE.findall(cell)}


def query_examples() -> tuple[list[str], list[str]]:
    """The `crm-graph query` lines of the Cypher section: before training, and after it."""
    text = section("Cypher with `crm-graph query`")
    before, after = text.split("After `crm-graph train`:")

    def lines(part: str) -> list[str]:
        blocks = re.findall(r"```sh\n(.*?)```", part, re.DOTALL)
        return [line for block in blocks for line in block.splitlines()
                if line.startswith("crm-graph query ")]  # fmt: skip

    return lines(before), lines(after)


def crm_graph(*args: str, data_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *args],
        capture_output=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stderr.decode("utf-8", "replace")[-2000:])
    return done.stdout.decode("utf-8")


def run_example(line: str, data_dir: Path) -> None:
    out = crm_graph(*shlex.split(line)[1:], data_dir=data_dir)
    counts = ROW_COUNT.findall(out)
    assert counts and int(counts[-1]) > 0, (line, out)


def stored(statement: str, data_dir: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    """`{name: keys}` from rows of `name` and `key`; the key "-" only names a label or type."""
    for row in json.loads(crm_graph("query", statement, "--json", data_dir=data_dir)):
        found.setdefault(row["name"], set()).update({row["key"]} - {"-"})
    return found


def test_the_readme_tables_parse() -> None:
    nodes, ties, scores = documented_nodes(), documented_relationships(), documented_scores()
    assert {"Customer", "Transaction", "Product", "ApiKey", "AuditEntry"} <= nodes.keys()
    assert {"PLACED", "CONTAINS", "KNOWS", "HAS_SOURCE", "IN_SEGMENT"} <= ties.keys()
    assert {"mlChurnRisk", "mlClvValue", "mlSegmentX"} <= scores
    before, after = query_examples()
    assert len(before) >= 4 and len(after) >= 2


def test_the_graph_model_and_its_examples_are_the_stores(tmp_path: Path) -> None:
    from crm_graph.api.cli import DEMO_CUSTOMERS, DEMO_SEED

    # given the demo business, generated and loaded as `make run` does
    data_dir, demo = tmp_path / "data", tmp_path / "demo"
    crm_graph("generate", str(demo), "--customers", str(DEMO_CUSTOMERS), "--seed",
              str(DEMO_SEED), data_dir=data_dir)  # fmt: skip
    crm_graph("load", str(demo), "--no-progress", data_dir=data_dir)
    before, after = query_examples()
    # when the README's examples for a loaded store run as written, then each finds rows
    for line in before:
        run_example(line, data_dir)
    # and, once trained, so do the examples for a trained store
    crm_graph("train", data_dir=data_dir)
    for line in after:
        run_example(line, data_dir)
    # and every label, relationship type and property in the store is in the README's tables
    nodes = stored("MATCH (n) WITH labels(n)[0] AS name, n UNWIND keys(n) + ['-'] AS key "
                   "RETURN DISTINCT name, key", data_dir)  # fmt: skip
    ties = stored("MATCH ()-[r]->() WITH type(r) AS name, r UNWIND keys(r) + ['-'] AS key "
                  "RETURN DISTINCT name, key", data_dir)  # fmt: skip
    documented, scores = documented_nodes(), documented_scores()
    assert {"Customer", "Transaction", "Segment", "ModelCard"} <= nodes.keys()
    for label, keys in nodes.items():
        assert label in documented, f"label {label} is not in the README's graph model"
        plain = {key for key in keys if not (label == "Customer" and key.startswith("ml"))}
        assert plain <= documented[label], (label, plain - documented[label])
    assert {"PLACED", "CONTAINS", "HAD", "HAS_SOURCE", "IN_SEGMENT"} <= ties.keys()
    for kind, keys in ties.items():
        assert kind in documented_relationships(), f"{kind} is not in the README's graph model"
        assert keys <= documented_relationships()[kind], (kind, keys)
    # and the scores table lists exactly the scores training wrote
    assert {key for key in nodes["Customer"] if key.startswith("ml")} == scores


@pytest.fixture(autouse=True)
def _readme_has_the_sections() -> None:
    assert "## The graph model" in README.read_text(encoding="utf-8")
