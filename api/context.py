"""The per-request context: the store, who is asking, and fresh DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.store import GraphStore

if TYPE_CHECKING:
    from crm_graph.api.audit_trail import AuditWriter
    from crm_graph.api.auth.principal import Principal
    from crm_graph.api.cost import CostReport
    from crm_graph.api.customers.loaders import CustomerLoaders
    from crm_graph.api.events.hub import EventHub


@dataclass
class Context:
    store: GraphStore
    principal: Principal | None
    request_id: str = ""
    loaders: CustomerLoaders = field(init=False)
    extra: dict[object, Any] = field(default_factory=dict)
    """Loaders that take arguments, created on first use in this request."""
    scope_state: dict[str, Any] | None = None
    """The ASGI scope's `state` of the HTTP request (None outside HTTP): the auth middleware
    leaves the key's points there (`points`), the schema the request's cost (`cost`, a
    `crm_graph.api.cost.CostReport`) and the key's points after it (`rate_status`), for the
    `X-RateLimit-*` headers and the access log."""
    cost: CostReport | None = None
    """What this request costs (`crm_graph.api.cost`), once the schema has worked it out."""
    audit_writer: AuditWriter | None = None
    """The server's audit writer (None: the request's entry is written after it)."""
    events: EventHub | None = None
    """The server's change events (`crm_graph.api.events.hub`), for subscriptions: only on a
    websocket connection."""
    connection_params: dict[str, Any] | None = None
    """A websocket's `connection_init` payload (Strawberry sets it), where its key is."""
    credential: str | None = None
    """A websocket's key (`Bearer <key>`), looked up again while its subscriptions run: a key
    revoked, expired or narrowed meanwhile stops receiving what it may no longer see."""

    def __post_init__(self) -> None:
        from crm_graph.api.customers.loaders import CustomerLoaders

        self.loaders = CustomerLoaders(self.store, self.customer_scope)

    def authenticated(self, principal: Principal) -> None:
        """The caller, once known after the context was made (a websocket's key comes in its
        `connection_init` message): its customer scope applies to the loaders from now on."""
        from crm_graph.api.customers.loaders import CustomerLoaders

        self.principal = principal
        self.loaders = CustomerLoaders(self.store, self.customer_scope)
        self.extra.clear()

    @property
    def customer_scope(self) -> CustomerScope:
        """The customers the caller may see (every one without a principal: the limits apply
        to keys, and a request without one runs nothing)."""
        return self.principal.customers if self.principal is not None else EVERYONE
