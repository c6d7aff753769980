"""`mergeCustomers`: identity resolution by hand. With `dryRun` (the default) it shows what would
merge and changes nothing."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api import audit_trail
from crm_graph.api.customers.mutations import ErrorCode, MutationError, Problem, failure
from crm_graph.api.customers.types import Customer
from crm_graph.api.permissions import CanWrite
from crm_graph.graph import writes

MAX_MERGE = 20


@strawberry.type(description="What one customer brings to a merge.")
class MergeSource:
    customer: Customer
    orders: int
    interactions: int
    ties: int
    source_systems: list[str]


@strawberry.type
class MergeCustomersSuccess:
    dry_run: bool
    kept_id: strawberry.ID = strawberry.field(description="The first id: it stays.")
    merged_ids: list[strawberry.ID] = strawberry.field(description="Gone after the merge.")
    result: Customer = strawberry.field(description="The kept profile, gaps filled.")
    sources: list[MergeSource]


@strawberry.type
class MergeCustomersError(MutationError):
    pass


MergeCustomersResult = Annotated[
    MergeCustomersSuccess | MergeCustomersError, strawberry.union("MergeCustomersResult")
]


@strawberry.type
class MergeCustomersMutation:
    @strawberry.mutation(
        description="Merge customers into the first id: orders, contacts, source records, "
        "segments and ties move to it, its gaps are filled from the others, the others are "
        "deleted. dryRun (default true) only shows the result.",
        permission_classes=[CanWrite],
    )
    async def merge_customers(
        self, info: Info, ids: list[strawberry.ID], dry_run: bool = True
    ) -> MergeCustomersResult:
        wanted = [str(i) for i in dict.fromkeys(ids)]
        if not 2 <= len(wanted) <= MAX_MERGE:
            return MergeCustomersError(
                code=ErrorCode.INVALID,
                field="ids",
                problems=[],
                message=f"give 2 to {MAX_MERGE} distinct customer ids",
            )
        found = await writes.merge_preview(info.context.store, wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            problems = [
                Problem(field=f"ids[{wanted.index(i)}]", message=f"no customer {i!r}")
                for i in missing
            ]
            return failure(MergeCustomersError, ErrorCode.NOT_FOUND, problems)
        keep, others = wanted[0], wanted[1:]
        profile = writes.merged_profile(
            found[keep]["customer"], [found[o]["customer"] for o in others]
        )
        fill = {k: v for k, v in profile.items() if found[keep]["customer"].get(k) is None}
        if not dry_run:
            await writes.merge_customers(info.context.store, keep, others, fill)
        sources = [
            MergeSource(
                customer=Customer.from_props(found[i]["customer"]),
                orders=found[i]["orders"],
                interactions=found[i]["interactions"],
                ties=found[i]["ties"],
                source_systems=sorted(found[i]["systems"]),
            )
            for i in wanted
        ]
        audit_trail.wrote(wanted)  # found: the ids exist
        return MergeCustomersSuccess(
            dry_run=dry_run,
            kept_id=strawberry.ID(keep),
            merged_ids=[strawberry.ID(o) for o in others],
            result=Customer.from_props(profile),
            sources=sources,
        )
