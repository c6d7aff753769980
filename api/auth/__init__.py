"""Access control: API keys stored in the graph, the principal a key stands for, the ASGI
middleware that authenticates, rate-limits, tags and logs requests.

- `principal`: `Role`, `Principal` (what a caller may do), `AuthError` (the root error).
- `keys`: create, list, revoke keys; `authenticate` an `Authorization` header.
- `middleware`: `AuthMiddleware`, the gate in front of `/graphql`.
- `ratelimit`: `RateLimiter`, a token bucket per key, from `CRM_GRAPH_RATE_*`.
"""

from api.auth.middleware import AuthMiddleware
from api.auth.principal import AuthError, Principal, Role
from api.auth.ratelimit import RateLimiter

__all__ = ["AuthError", "AuthMiddleware", "Principal", "RateLimiter", "Role"]
