// Every GraphQL document the explore page sends, in one place: when the schema changes (e.g.
// list fields becoming Relay connections), this is the file to update.

const CUSTOMER_ROW = `id name email phone city country totalSpend orderCount`;

export const SEARCH = `
query Search($text: String!, $id: ID!) {
  searchCustomers(text: $text, first: 20) { nodes { ${CUSTOMER_ROW} } }
  byId: customer(id: $id) { ${CUSTOMER_ROW} }
}`;

export const CUSTOMER_360 = `
query Customer360($id: ID!) {
  customer(id: $id) {
    id name email phone city country signupAt attributes
    totalSpend orderCount firstPurchaseAt lastPurchaseAt
    transactions(first: 20) {
      nodes {
        id at total channel itemCount
        lines(first: 100) { nodes { product { id name category } quantity unitPrice amount } }
      }
    }
    interactions(first: 50) { totalCount nodes { id type at channel subject sentiment satisfaction } }
    socialTies(first: 100) { totalCount nodes { type direction since weight customer { id name } } }
    segment { id name }
    rfm { recencyDays frequency monetary score segment }
    clv { expectedPurchases expectedValue probabilityAlive horizonDays }
    churnRisk { score drivers { feature contribution } modelVersion asOf }
    recommendations(first: 5) { product { id name category } score reasons }
    pagerank community
  }
}`;

const NETWORK_NODE = `id name totalSpend pagerank community segment { id name }`;

export const NEIGHBOURHOOD = `
query Neighbourhood($id: ID!, $depth: Int!, $limit: Int!) {
  neighbourhood(id: $id, depth: $depth, limit: $limit) {
    center { ${NETWORK_NODE} }
    members { distance customer { ${NETWORK_NODE} } }
    ties { sourceId targetId type weight }
    truncated
  }
}`;

export const PATH = `
query Path($from: ID!, $to: ID!, $max: Int!) {
  path(from: $from, to: $to, maxLength: $max) {
    length
    customers { ${NETWORK_NODE} }
    ties { sourceId targetId type weight }
  }
}`;

export const SEGMENT_MAP = `
query SegmentMap($sample: Int!) {
  segmentMap(sample: $sample) {
    points { customerId name x y segmentId }
    total explainedVariance modelVersion
  }
}`;

export const SEGMENTS = `query Segments { segments { id name model size profile } }`;

export const REVENUE = `
query Revenue($by: RevenueDimension!) {
  revenue(by: $by) { key revenue orders customers }
}`;

export const CHURN_DISTRIBUTION = `
query ChurnDistribution { churnRiskDistribution(buckets: 10) { low high customers } }`;

export const MOST_AT_RISK = `
query MostAtRisk { mostAtRisk(first: 15) { id name country totalSpend churnRisk { score } } }`;

export const INFLUENCERS = `
query Influencers { influencers(first: 15) { id name pagerank community totalSpend } }`;

export const COMMUNITIES = `
query Communities { communities(first: 15) { id size revenue churnRisk } }`;

export const CUSTOMERS = `
query Customers($where: CustomerFilter, $orderBy: CustomerOrder, $first: Int!, $after: String) {
  customers(where: $where, orderBy: $orderBy, first: $first, after: $after) {
    nodes { ${CUSTOMER_ROW} }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const CUSTOMERS_COUNT = `
query CustomersCount($where: CustomerFilter) {
  customers(where: $where, first: 1) { totalCount }
}`;

const VIEW = `name filter orderBy description createdAt createdBy updatedAt updatedBy`;

export const SAVED_VIEWS = `query SavedViews { savedViews { ${VIEW} } }`;

export const SAVED_VIEW = `query SavedView($name: String!) { savedView(name: $name) { ${VIEW} } }`;

export const SAVE_VIEW = `
mutation SaveView($input: SaveViewInput!) {
  saveView(input: $input) {
    __typename
    ... on SaveViewSuccess { view { ${VIEW} } }
    ... on SaveViewError { code message field }
  }
}`;

export const DELETE_VIEW = `
mutation DeleteView($name: String!) {
  deleteView(name: $name) {
    __typename
    ... on DeleteViewSuccess { name }
    ... on DeleteViewError { code message field }
  }
}`;

export const PING = `query Ping { __typename }`;
