"""Root fields for exploring relationships: neighbourhoods and paths between customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api.customers.types import Customer
from crm_graph.api.errors import user_error
from crm_graph.api.scalars import from_epoch_ms
from crm_graph.graph import network
from crm_graph.graph.schema import TieType


@strawberry.type(description="A social tie between two customers, as stored (source → target).")
class Tie:
    source_id: strawberry.ID
    target_id: strawberry.ID
    type: TieType
    since: datetime | None
    weight: float | None

    @classmethod
    def of(cls, tie: network.Tie) -> Tie:
        return cls(
            source_id=strawberry.ID(tie.source),
            target_id=strawberry.ID(tie.target),
            type=TieType(tie.type),
            since=from_epoch_ms(tie.since),
            weight=tie.weight,
        )


@strawberry.type
class NeighbourhoodMember:
    customer: Customer
    distance: int = strawberry.field(description="Ties between the centre and this customer.")


@strawberry.type(description="The customers around one customer and the ties among them.")
class Neighbourhood:
    center: Customer
    members: list[NeighbourhoodMember] = strawberry.field(
        description="Everyone within the depth, the centre excluded, nearest first."
    )
    ties: list[Tie]
    truncated: bool = strawberry.field(description="True when the member limit was reached.")


@strawberry.type(description="A shortest chain of ties between two customers.")
class CustomerPath:
    length: int
    customers: list[Customer]
    ties: list[Tie]


def _types(types: list[TieType] | None) -> list[str] | None:
    return [t.value for t in types] if types else None


@strawberry.type
class NetworkQueries:
    @strawberry.field(description="Customers within `depth` ties (1-3) of a customer.")
    async def neighbourhood(
        self,
        info: Info,
        id: strawberry.ID,
        depth: int = 1,
        types: list[TieType] | None = None,
        limit: int = network.DEFAULT_NODE_LIMIT,
    ) -> Neighbourhood | None:
        if not 1 <= depth <= network.MAX_DEPTH:
            raise user_error(
                f"depth must be between 1 and {network.MAX_DEPTH}", field="neighbourhood.depth"
            )
        if not 1 <= limit <= network.DEFAULT_NODE_LIMIT:
            raise user_error(
                f"limit must be between 1 and {network.DEFAULT_NODE_LIMIT}",
                field="neighbourhood.limit",
            )
        found = await network.neighbourhood(
            info.context.store, str(id), depth, _types(types), limit, info.context.customer_scope
        )
        if found is None:
            return None
        members = sorted(
            (
                NeighbourhoodMember(customer=Customer.from_props(found.customers[c]), distance=d)
                for c, d in found.distance.items()
                if c != str(id) and c in found.customers
            ),
            key=lambda m: (m.distance, str(m.customer.id)),
        )
        return Neighbourhood(
            center=Customer.from_props(found.center),
            members=members,
            ties=[Tie.of(t) for t in found.ties],
            truncated=found.truncated,
        )

    @strawberry.field(
        description="How two customers are connected: a shortest chain of ties "
        "(either direction), or null if none within maxLength (1-6)."
    )
    async def path(
        self,
        info: Info,
        source: Annotated[strawberry.ID, strawberry.argument(name="from")],
        target: Annotated[strawberry.ID, strawberry.argument(name="to")],
        max_length: int = 4,
        types: list[TieType] | None = None,
    ) -> CustomerPath | None:
        if not 1 <= max_length <= network.MAX_PATH_LENGTH:
            raise user_error(
                f"maxLength must be between 1 and {network.MAX_PATH_LENGTH}", field="path.maxLength"
            )
        found = await network.shortest_path(
            info.context.store, str(source), str(target), max_length, _types(types),
            info.context.customer_scope,
        )  # fmt: skip
        if found is None:
            return None
        return CustomerPath(
            length=len(found.ties),
            customers=[Customer.from_props(c) for c in found.customers],
            ties=[Tie.of(t) for t in found.ties],
        )
