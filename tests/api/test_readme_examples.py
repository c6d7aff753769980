"""Every GraphQL example of the README runs, as written, against the demo business."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crm_graph.api.cli import DEMO_CUSTOMERS, DEMO_SEED
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate
from tests.conftest import Api

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE = re.compile(r"```graphql\n(.*?)```\n```json\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_the_promised_examples() -> None:
    documents = " ".join(doc for doc, _ in examples())
    for field in ("customer(id", "searchCustomers", "after:", "path(", "mutation"):
        assert field in documents


async def test_readme_examples_run_on_the_demo_business(
    store: GraphStore, admin: Api, tmp_path: Path
) -> None:
    generate(tmp_path / "demo", DEMO_CUSTOMERS, DEMO_SEED)
    await load_folder(store, tmp_path / "demo", progress=False)
    for document, variables in examples():
        data = await admin.data(document, **json.loads(variables))
        assert all(value is not None for value in data.values()), (document, data)
    found = await admin.data(examples()[3][0], **json.loads(examples()[3][1]))
    assert found["path"]["length"] == 2
    recorded = await admin.data(examples()[4][0], **json.loads(examples()[4][1]))
    assert recorded["recordInteraction"]["__typename"] == "RecordInteractionSuccess"


@pytest.fixture(autouse=True)
def _examples_exist() -> None:
    assert len(examples()) == 5
