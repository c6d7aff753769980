"""Access control: API keys stored in the graph, the principal a key stands for, the ASGI
middleware that authenticates, rate-limits, tags and logs requests.

- `principal`: `Role`, `Principal` (what a caller may do), `AuthError` (the root error).
- `keys`: create, list, revoke keys; `authenticate` an `Authorization` header.
- `middleware`: `AuthMiddleware`, the gate in front of `/graphql`.
- `ratelimit`: `RateLimiter`, a token bucket per key, from `CRM_GRAPH_RATE_*`.

Import from the modules: the package imports nothing, so the CLI stays quick to start.
"""
