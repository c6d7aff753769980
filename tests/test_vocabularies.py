"""Each vocabulary is defined once, in the layer that owns it, and every other layer takes it
from there: tie types and interaction types (graph/schema.py), roles (api/auth/scopes.py),
score properties (graph/score_properties.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from strawberry.types.enum import StrawberryEnumDefinition

from crm_graph.analytics import features
from crm_graph.api.auth.scopes import PRESETS, Role
from crm_graph.api.cli import ROLES
from crm_graph.api.schema import build_schema
from crm_graph.graph import score_properties
from crm_graph.graph.schema import INTERACTION_TYPES, TIE_TYPES, InteractionType, TieType

ROOT = Path(__file__).resolve().parents[1]


def test_the_graphql_enums_are_the_graph_vocabularies() -> None:
    # the schema's enums are the graph's classes themselves, not copies of their values
    schema = build_schema()
    for name, vocabulary, graph_enum in (
        ("TieType", TIE_TYPES, TieType),
        ("InteractionType", INTERACTION_TYPES, InteractionType),
    ):
        definition = schema.get_type_by_name(name)
        assert isinstance(definition, StrawberryEnumDefinition)
        assert definition.wrapped_cls is graph_enum
        assert tuple(v.value for v in definition.values) == vocabulary


def test_the_analytics_take_the_interaction_types_from_the_graph() -> None:
    assert features.INTERACTION_TYPES is INTERACTION_TYPES


def test_the_roles_are_one_enum_with_one_preset_each() -> None:
    assert tuple(role.value for role in Role) == ROLES
    assert set(PRESETS) == set(Role)


def test_no_other_module_spells_a_vocabulary_out_again() -> None:
    # a tuple, list or set literal of a whole vocabulary is a copy of it (a few of its words,
    # such as the interaction types a survey follows, are a use of it)
    vocabularies = {
        "tie types": set(TIE_TYPES),
        "interaction types": set(INTERACTION_TYPES),
        "roles": {role.value for role in Role},
        "score properties": set(score_properties.PROPERTIES),
    }
    owners = {ROOT / "graph" / "schema.py", ROOT / "graph" / "score_properties.py"}
    copies = []
    for package in ("api", "graph", "loaders", "analytics"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path in owners:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Tuple | ast.Set | ast.List):
                    continue
                words = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                for name, vocabulary in vocabularies.items():
                    if words == vocabulary:
                        copies.append(f"{path.relative_to(ROOT)}:{node.lineno} ({name})")
    assert copies == []
