"""The per-request context: the store, who is asking, and fresh DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.store import GraphStore

if TYPE_CHECKING:
    from crm_graph.api.auth.principal import Principal
    from crm_graph.api.customers.loaders import CustomerLoaders


@dataclass
class Context:
    store: GraphStore
    principal: Principal | None
    request_id: str = ""
    loaders: CustomerLoaders = field(init=False)
    extra: dict[object, Any] = field(default_factory=dict)
    """Loaders that take arguments, created on first use in this request."""

    def __post_init__(self) -> None:
        from crm_graph.api.customers.loaders import CustomerLoaders

        self.loaders = CustomerLoaders(self.store, self.customer_scope)

    @property
    def customer_scope(self) -> CustomerScope:
        """The customers the caller may see (every one without a principal: the limits apply
        to keys, and a request without one runs nothing)."""
        return self.principal.customers if self.principal is not None else EVERYONE
