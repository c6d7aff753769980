"""`recordTransaction`: record an order (or replace the lines of an order recorded before)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api import audit_trail
from crm_graph.api.customers.mutations import (
    ErrorCode,
    MutationError,
    failure,
    late_failure,
    problems,
    raw_row,
    writer,
)
from crm_graph.api.customers.types import Transaction
from crm_graph.api.permissions import CanWrite
from crm_graph.graph import customer_reads
from crm_graph.loaders import validate

MAX_LINES = 500
FIELDS = {
    "transaction_id": "id",
    "customer_id": "customerId",
    "timestamp": "at",
    "product_id": "productId",
    "unit_price": "unitPrice",
}


@strawberry.input
class LineItemInput:
    product_id: strawberry.ID | None = None
    quantity: float = 1.0
    unit_price: float | None = None
    amount: float | None = strawberry.field(
        default=None, description="Default: quantity x unitPrice."
    )


@strawberry.input
class TransactionInput:
    id: strawberry.ID
    customer_id: strawberry.ID
    at: datetime
    channel: str | None = None
    lines: list[LineItemInput]


@strawberry.type
class RecordTransactionSuccess:
    transaction: Transaction


@strawberry.type
class RecordTransactionError(MutationError):
    pass


RecordTransactionResult = Annotated[
    RecordTransactionSuccess | RecordTransactionError, strawberry.union("RecordTransactionResult")
]


@strawberry.type
class RecordTransactionMutation:
    @strawberry.mutation(
        description="Record an order with its lines; recording the same id "
        "again replaces the lines it names.",
        permission_classes=[CanWrite],
    )
    async def record_transaction(
        self, info: Info, input: TransactionInput
    ) -> RecordTransactionResult:
        if not 1 <= len(input.lines) <= MAX_LINES:
            return RecordTransactionError(
                code=ErrorCode.INVALID,
                field="input.lines",
                problems=[],
                message=f"send 1 to {MAX_LINES} lines",
            )
        records, found = [], []
        for index, line in enumerate(input.lines):
            row = raw_row(
                {
                    "transaction_id": input.id,
                    "customer_id": input.customer_id,
                    "timestamp": input.at,
                    "channel": input.channel,
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "amount": line.amount,
                },
                line=index,
            )
            record, rejects = validate.line_item("input", row)
            for problem in problems(rejects, FIELDS, prefix="input."):
                if problem.field.split(".")[-1] in ("productId", "quantity", "unitPrice", "amount"):
                    problem.field = f"input.lines[{index}].{problem.field.split('.')[-1]}"
                found.append(problem)
            if record is not None:
                records.append(record)
        if found:
            return failure(RecordTransactionError, ErrorCode.INVALID, found)
        batch = writer(info.context.store)
        late = await batch.write_transactions("input", records)
        if late:
            return late_failure(RecordTransactionError, late, FIELDS)
        audit_trail.wrote([str(input.customer_id)])  # written: the id exists
        rows = await info.context.store.read(
            customer_reads.TRANSACTION_BY_ID, {"id": str(input.id)}
        )
        return RecordTransactionSuccess(transaction=Transaction.from_props(rows[0]["transaction"]))
