// The peer of `python -m bench peer`: the Neo4j GraphQL Library (@neo4j/graphql 7) on
// graphql-yoga, serving the customer 360 from the same Neo4j database crm-graph serves, with
// authentication on (a JWT signed with PEER_JWT_SECRET, HS256, checked on every request by the
// library's @authentication). Installed and started by bench/peer.py; not part of crm-graph.
//
// Environment: NEO4J_URL, NEO4J_USER, NEO4J_PASSWORD, PEER_PORT, PEER_JWT_SECRET.
import { createServer } from "node:http";
import { Neo4jGraphQL } from "@neo4j/graphql";
import { createYoga } from "graphql-yoga";
import neo4j from "neo4j-driver";

const typeDefs = /* GraphQL */ `
  extend schema @authentication

  type Customer @node {
    id: ID!
    name: String
    email: String
    phone: String
    city: String
    country: String
    transactions: [Transaction!]! @relationship(type: "PLACED", direction: OUT)
    interactions: [Interaction!]! @relationship(type: "HAD", direction: OUT)
    knows: [Customer!]! @relationship(type: "KNOWS", direction: OUT, queryDirection: UNDIRECTED)
    referred: [Customer!]!
      @relationship(type: "REFERRED", direction: OUT, queryDirection: UNDIRECTED)
    family: [Customer!]! @relationship(type: "FAMILY", direction: OUT, queryDirection: UNDIRECTED)
    colleague: [Customer!]!
      @relationship(type: "COLLEAGUE", direction: OUT, queryDirection: UNDIRECTED)
  }

  type Transaction @node {
    id: ID!
    at: BigInt
    total: Float
    lines: [Product!]! @relationship(type: "CONTAINS", direction: OUT, properties: "Line")
  }

  type Line @relationshipProperties {
    quantity: Float
    amount: Float
  }

  type Product @node {
    id: ID!
    name: String
    category: String
      @cypher(statement: "MATCH (this)-[:IN_CATEGORY]->(k:Category) RETURN k.name AS name", columnName: "name")
  }

  type Interaction @node {
    id: ID!
    type: String
    at: BigInt
  }
`;

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) {
    console.error(`peer: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const driver = neo4j.driver(
  env("NEO4J_URL"),
  neo4j.auth.basic(env("NEO4J_USER"), env("NEO4J_PASSWORD")),
  { logging: { level: "error", logger: (level, message) => console.error(level, message) } },
);
const neoSchema = new Neo4jGraphQL({
  typeDefs,
  driver,
  features: { authorization: { key: env("PEER_JWT_SECRET") } },
});
const schema = await neoSchema.getSchema();
const yoga = createYoga({
  schema,
  graphqlEndpoint: "/graphql",
  graphiql: false,
  logging: "error",
  context: ({ request }) => ({ token: request.headers.get("authorization") ?? undefined }),
});
const server = createServer(yoga);
server.keepAliveTimeout = 60_000;
const port = Number(env("PEER_PORT"));
server.listen(port, "127.0.0.1", () => console.log(`peer listening on 127.0.0.1:${port}`));
const stop = () => server.close(() => driver.close().then(() => process.exit(0)));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
