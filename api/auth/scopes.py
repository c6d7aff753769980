"""What a key may read and write: scopes, in the manner of GitHub's fine-grained tokens and
HubSpot's private-app scopes. Roles are presets of scopes.

`SCOPES` is the one table (the README's scope table is this one); `FIELD_SCOPES` says which
scope each field of the schema needs (a test checks every root field and every field of
`Customer` is in it). A request asking for a field its key's scopes do not include is refused
whole before anything runs, with `FORBIDDEN` and the field's name (`scope_rule`). Email and
phone are never refused: without `contact_details` they are masked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from graphql import FieldNode, GraphQLError, ValidationContext, ValidationRule, get_named_type


class Scope(StrEnum):
    PROFILE = "profile"
    CONTACT_DETAILS = "contact_details"
    ORDERS = "orders"
    CONTACTS = "contacts"
    TIES = "ties"
    SCORES = "scores"
    LIST = "list"
    AGGREGATES = "aggregates"
    WRITE = "write"
    ADMIN = "admin"
    SAVED_VIEWS = "saved_views"


SCOPES: dict[Scope, str] = {
    Scope.PROFILE: "name, city, country, signup date of the customers in the key's customer scope",
    Scope.CONTACT_DETAILS: (
        "email and phone unmasked, extra input columns (`attributes`); filtering and "
        "searching on email and phone"
    ),
    Scope.ORDERS: "orders with their lines, spend and order figures, products bought",
    Scope.CONTACTS: "interactions (calls, emails, tickets...: subjects, sentiment, satisfaction)",
    Scope.TIES: "social ties, `neighbourhood`, `path`",
    Scope.SCORES: (
        "model outputs: RFM, CLV, churn risk, demand, recommendations, PageRank, community, "
        "segments"
    ),
    Scope.LIST: (
        "finding customers without knowing their id: `customers` pages, `searchCustomers`, a "
        "product's buyers"
    ),
    Scope.AGGREGATES: (
        "figures over all customers: `revenue`, `segments`, `totalCount`, `influencers`, "
        "`communities`, `modelCards`, `churnRiskDistribution`, `mostAtRisk`, `segmentMap`"
    ),
    Scope.WRITE: "the mutations",
    Scope.ADMIN: (
        "the audit log, customer exports, keys' customer lists (`auditLog`, `customerExport`,"
        " `setKeyCustomers`)"
    ),
    Scope.SAVED_VIEWS: (
        "named filters of `customers` shared by link (`savedViews`, `savedView`, `saveView`, "
        "`deleteView`)"
    ),
}
"""Each scope and what it grants: the README's scope table."""


class Role(StrEnum):
    """The roles a key is made with (`keys create --role`, stored as the key's `role`)."""

    ADMIN = "admin"
    ANALYST = "analyst"
    PARTNER = "partner"


PRESETS: dict[str, frozenset[Scope]] = {
    Role.ADMIN: frozenset(Scope),
    Role.ANALYST: frozenset(Scope) - {Scope.WRITE, Scope.ADMIN},
    Role.PARTNER: frozenset({Scope.PROFILE, Scope.ORDERS}),
}
"""The roles, as sets of scopes. A partner reads the profile and orders of customers whose id it
knows, within its customer scope; email and phone masked; it cannot list customers."""

UNRESTRICTED_ONLY = frozenset({Scope.AGGREGATES, Scope.WRITE, Scope.ADMIN, Scope.SAVED_VIEWS})
"""Scopes only a key that sees every customer may hold: an aggregate over all customers, a
write or an export would otherwise reach customers outside its scope."""

FIELD_SCOPES: dict[tuple[str, str], Scope | None] = {
    # root fields
    ("Query", "customer"): None,
    ("Query", "customers"): Scope.LIST,
    ("Query", "searchCustomers"): Scope.LIST,
    ("Query", "neighbourhood"): Scope.TIES,
    ("Query", "path"): Scope.TIES,
    ("Query", "products"): None,
    ("Query", "product"): None,
    ("Query", "categories"): None,
    ("Query", "revenue"): Scope.AGGREGATES,
    ("Query", "segments"): Scope.AGGREGATES,
    ("Query", "influencers"): Scope.AGGREGATES,
    ("Query", "communities"): Scope.AGGREGATES,
    ("Query", "modelCards"): Scope.AGGREGATES,
    ("Query", "churnRiskDistribution"): Scope.AGGREGATES,
    ("Query", "mostAtRisk"): Scope.AGGREGATES,
    ("Query", "segmentMap"): Scope.AGGREGATES,
    ("Query", "savedViews"): Scope.SAVED_VIEWS,
    ("Query", "savedView"): Scope.SAVED_VIEWS,
    ("Mutation", "saveView"): Scope.SAVED_VIEWS,
    ("Mutation", "deleteView"): Scope.SAVED_VIEWS,
    # subscriptions: any key; each event is filtered by the key's scopes (api/events)
    ("Subscription", "customerChanged"): None,
    ("Subscription", "events"): None,
    ("Query", "auditLog"): Scope.ADMIN,
    ("Query", "customerExport"): Scope.ADMIN,
    ("Mutation", "setKeyCustomers"): Scope.ADMIN,
    ("Query", "webhooks"): Scope.ADMIN,
    ("Query", "webhookDeliveries"): Scope.ADMIN,
    ("Mutation", "addWebhook"): Scope.ADMIN,
    ("Mutation", "removeWebhook"): Scope.ADMIN,
    ("Mutation", "replayWebhook"): Scope.ADMIN,
    ("CustomerConnection", "totalCount"): Scope.AGGREGATES,
    ("CatalogProduct", "buyers"): Scope.LIST,
    # the parts of a customer
    ("Customer", "id"): None,
    ("Customer", "name"): Scope.PROFILE,
    ("Customer", "city"): Scope.PROFILE,
    ("Customer", "country"): Scope.PROFILE,
    ("Customer", "signupAt"): Scope.PROFILE,
    ("Customer", "email"): None,  # masked without contact_details
    ("Customer", "phone"): None,  # masked without contact_details
    ("Customer", "attributes"): None,  # null without contact_details
    ("Customer", "totalSpend"): Scope.ORDERS,
    ("Customer", "orderCount"): Scope.ORDERS,
    ("Customer", "firstPurchaseAt"): Scope.ORDERS,
    ("Customer", "lastPurchaseAt"): Scope.ORDERS,
    ("Customer", "transactions"): Scope.ORDERS,
    ("Customer", "productsBought"): Scope.ORDERS,
    ("Customer", "interactions"): Scope.CONTACTS,
    ("Customer", "socialTies"): Scope.TIES,
    ("Customer", "segments"): Scope.SCORES,
    ("Customer", "segment"): Scope.SCORES,
    ("Customer", "rfm"): Scope.SCORES,
    ("Customer", "clv"): Scope.SCORES,
    ("Customer", "churnRisk"): Scope.SCORES,
    ("Customer", "demand"): Scope.SCORES,
    ("Customer", "recommendations"): Scope.SCORES,
    ("Customer", "pagerank"): Scope.SCORES,
    ("Customer", "community"): Scope.SCORES,
}
"""The scope each field needs (None: any key). Mutations all need `write`."""


def parse_scopes(given: Iterable[str]) -> frozenset[Scope]:
    """Scopes from names, presets (`partner`) included; `ValueError` naming an unknown one."""
    found: set[Scope] = set()
    for raw in given:
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            if name in PRESETS:
                found |= PRESETS[name]
                continue
            try:
                found.add(Scope(name))
            except ValueError:
                choices = ", ".join([*(s.value for s in Scope), *PRESETS])
                raise ValueError(f"unknown scope {name!r}; expected one of {choices}") from None
    return frozenset(found)


def needed(type_name: str, field_name: str, *, mutation: bool = False) -> Scope | None:
    if (type_name, field_name) in FIELD_SCOPES:
        return FIELD_SCOPES[(type_name, field_name)]
    return Scope.WRITE if mutation else None


@functools.lru_cache(maxsize=64)
def scope_rule(scopes: frozenset[Scope]) -> type[ValidationRule]:
    """A validation rule refusing every field `scopes` do not grant (one error per field name,
    `extensions: {code: FORBIDDEN, field}`). One class per set of scopes, so that validation
    results stay cached by document and rules."""

    class ScopeRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.reported: set[str] = set()

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            parent = self.context.get_parent_type()
            if parent is None:
                return
            parent_name = get_named_type(parent).name
            schema = self.context.schema
            mutation = schema.mutation_type is not None and parent is schema.mutation_type
            scope = needed(parent_name, node.name.value, mutation=mutation)
            if scope is None or scope in scopes or node.name.value in self.reported:
                return
            self.reported.add(node.name.value)
            self.report_error(
                GraphQLError(
                    f"{node.name.value} needs the {scope.value} scope "
                    f"({scope.value.replace('_', ' ')}), which this key has not",
                    node,
                    extensions={"code": "FORBIDDEN", "field": node.name.value},
                )
            )

    return ScopeRule
