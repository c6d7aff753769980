"""Change events pushed to clients: GraphQL subscriptions over graphql-transport-ws, fed by the
outbox (`crm_graph.graph.events`) through one shared poller per server (`hub.EventHub`)."""
