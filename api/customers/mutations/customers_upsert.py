"""`upsertCustomers`: create or update customers in a batch, with identity resolution."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.api.customers.mutations import (
    ErrorCode,
    MutationError,
    Problem,
    failure,
    problems,
    raw_row,
    writer,
)
from crm_graph.api.customers.types import Customer
from crm_graph.api.permissions import CanWrite
from crm_graph.graph import customer_reads
from crm_graph.loaders import validate

MAX_BATCH = 1000
FIELDS = {"customer_id": "id", "signup_date": "signupAt", "source_system": "sourceSystem"}


@strawberry.input
class CustomerInput:
    id: strawberry.ID
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    city: str | None = None
    country: str | None = None
    signup_at: datetime | None = None
    source_system: str | None = strawberry.field(
        default=None,
        description=(
            "The source system of the record `id` names. Null keeps a stored record's system "
            "(a new record is of `default`); another system than a stored record's is a "
            "CONFLICT: a record's system never changes, as keys limited to a source system "
            "see the customers by it."
        ),
    )
    attributes: JSON | None = strawberry.field(
        default=None, description="Extra properties, as extra input columns would give."
    )


@strawberry.type(description="An identity-resolution merge the upsert made.")
class ResolvedMerge:
    customer_id: strawberry.ID
    merged_id: strawberry.ID
    rule: str


@strawberry.type
class UpsertCustomersSuccess:
    customers: list[Customer]
    merges: list[ResolvedMerge]


@strawberry.type
class UpsertCustomersError(MutationError):
    pass


UpsertCustomersResult = Annotated[
    UpsertCustomersSuccess | UpsertCustomersError, strawberry.union("UpsertCustomersResult")
]


@strawberry.type
class UpsertCustomersMutation:
    @strawberry.mutation(
        description=f"Create or update up to {MAX_BATCH} customers; all or none.",
        permission_classes=[CanWrite],
    )
    async def upsert_customers(
        self, info: Info, input: list[CustomerInput]
    ) -> UpsertCustomersResult:
        if not 1 <= len(input) <= MAX_BATCH:
            return UpsertCustomersError(
                code=ErrorCode.INVALID,
                field="input",
                problems=[],
                message=f"send 1 to {MAX_BATCH} customers",
            )
        records, found = [], []
        for index, item in enumerate(input):
            extras: dict[str, Any] = item.attributes if isinstance(item.attributes, dict) else {}
            if item.attributes is not None and not isinstance(item.attributes, dict):
                message = "is not an object of property names and values"
                found.append(Problem(field=f"input[{index}].attributes", message=message))
            refused = [k for k in extras if k not in validate.extra_columns("customers", [k])[0]]
            found += [
                Problem(
                    field=f"input[{index}].attributes.{k}",
                    message="is not a property name this API accepts",
                )
                for k in refused
            ]
            row = raw_row(
                {
                    "customer_id": item.id,
                    "name": item.name,
                    "email": item.email,
                    "phone": item.phone,
                    "city": item.city,
                    "country": item.country,
                    "signup_date": item.signup_at,
                    "source_system": item.source_system,
                    **extras,
                },
                line=index,
            )
            record, rejects = validate.customer("input", row, sorted(extras), None)
            found += problems(rejects, FIELDS, prefix=f"input[{index}].")
            if record is not None:
                records.append(record)
        if found:
            return failure(UpsertCustomersError, ErrorCode.INVALID, found)
        batch = writer(info.context.store)
        conflicts = await batch.write_customers("input", records, all_or_none=True)
        if conflicts:
            found = [
                Problem(field=f"input[{r.line}].{FIELDS.get(r.column, r.column)}", message=r.reason)
                for r in conflicts
            ]
            return failure(UpsertCustomersError, ErrorCode.CONFLICT, found)
        resolved = await batch.customers_of({r.source_id for r in records})
        ids = list(dict.fromkeys(resolved[r.source_id] for r in records))
        rows = await customer_reads.by_customer(
            info.context.store, customer_reads.CUSTOMERS_BY_ID, ids
        )
        customers = [Customer.from_props(r[0]["customer"]) for r in rows.values() if r]
        merges = [
            ResolvedMerge(
                customer_id=strawberry.ID(m.customer_id),
                merged_id=strawberry.ID(m.source_id),
                rule=m.rule,
            )
            for m in batch.merges
        ]
        return UpsertCustomersSuccess(customers=customers, merges=merges)
