"""The per-request context: the store, who is asking, and fresh DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graph.store import GraphStore

if TYPE_CHECKING:
    from api.auth.principal import Principal
    from api.customers.loaders import CustomerLoaders


@dataclass
class Context:
    store: GraphStore
    principal: Principal | None
    request_id: str = ""
    loaders: CustomerLoaders = field(init=False)
    extra: dict[object, Any] = field(default_factory=dict)
    """Loaders that take arguments, created on first use in this request."""

    def __post_init__(self) -> None:
        from api.customers.loaders import CustomerLoaders

        self.loaders = CustomerLoaders(self.store)
