"""Signed webhooks: subscriptions to the outbox's events (`crm_graph.graph.events`), delivered
by a worker inside `crm-graph serve` (or `crm-graph webhooks run` beside it).

`subscriptions` checks and makes the changes `crm-graph webhooks` and the admin GraphQL fields
ask for; `signing` is the signature receivers verify; `worker` delivers."""
