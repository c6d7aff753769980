// Dashboards: revenue, churn risk, influencers, communities; each panel's numbers as CSV.

import { gql } from "./api.js";
import { bars, panel } from "./charts.js";
import { CHURN_DISTRIBUTION, COMMUNITIES, INFLUENCERS, MOST_AT_RISK, REVENUE } from "./documents.js";
import { fmtMoney, fmtNumber, fmtPercent, h } from "./dom.js";

const money = (rows) => rows.map((r) => r.revenue);

function revenuePanel(by, title, horizontal) {
  return {
    id: `revenue-by-${by.toLowerCase()}`,
    title,
    load: async () => ({ rows: (await gql(REVENUE, { by })).data.revenue }),
    columns: [{ key: "key", label: by.toLowerCase() }, { key: "revenue", label: "revenue" },
      { key: "orders", label: "orders" }, { key: "customers", label: "customers" }],
    chart: (canvas, rows) => bars(canvas, rows.map((r) => r.key), money(rows), "revenue", "#4e79a7", horizontal),
  };
}

const PANELS = [
  revenuePanel("MONTH", "Revenue by month"),
  revenuePanel("CATEGORY", "Revenue by category", true),
  revenuePanel("COUNTRY", "Revenue by country", true),
  {
    id: "churn-risk-distribution",
    title: "Churn risk distribution",
    load: async () => ({
      rows: (await gql(CHURN_DISTRIBUTION)).data.churnRiskDistribution.map((b) => ({
        range: `${Math.round(b.low * 100)}–${Math.round(b.high * 100)}%`, ...b })),
    }),
    columns: [{ key: "low", label: "low" }, { key: "high", label: "high" }, { key: "customers", label: "customers" }],
    chart: (canvas, rows) => bars(canvas, rows.map((r) => r.range), rows.map((r) => r.customers), "customers", "#e15759"),
  },
  {
    id: "most-at-risk",
    title: "Customers most at risk",
    load: async () => ({
      rows: (await gql(MOST_AT_RISK)).data.mostAtRisk.map((c) => ({
        id: c.id, name: c.name, country: c.country, churnRisk: c.churnRisk?.score ?? null, totalSpend: c.totalSpend })),
    }),
    columns: [{ key: "id", label: "id" }, { key: "name", label: "name" }, { key: "country", label: "country" },
      { key: "churnRisk", label: "churn risk" }, { key: "totalSpend", label: "total spend" }],
    table: true,
    format: (key, v, r) => key === "id" ? h("a", { href: `#customer=${encodeURIComponent(v)}` }, v)
      : key === "churnRisk" ? fmtPercent(v) : key === "totalSpend" ? fmtMoney(v) : v ?? "–",
  },
  {
    id: "influencers",
    title: "Influencers (PageRank)",
    load: async () => ({
      rows: (await gql(INFLUENCERS)).data.influencers.map((c) => ({
        id: c.id, name: c.name, pagerank: c.pagerank, community: c.community, totalSpend: c.totalSpend })),
    }),
    columns: [{ key: "id", label: "id" }, { key: "name", label: "name" }, { key: "pagerank", label: "pagerank" },
      { key: "community", label: "community" }, { key: "totalSpend", label: "total spend" }],
    table: true,
    format: (key, v) => key === "id" ? h("a", { href: `#network=${encodeURIComponent(v)}` }, v)
      : key === "pagerank" ? fmtNumber(v, 5) : key === "totalSpend" ? fmtMoney(v) : v ?? "–",
  },
  {
    id: "communities",
    title: "Communities by size and revenue",
    load: async () => ({ rows: (await gql(COMMUNITIES)).data.communities }),
    columns: [{ key: "id", label: "community" }, { key: "size", label: "size" },
      { key: "revenue", label: "revenue" }, { key: "churnRisk", label: "mean churn risk" }],
    chart: (canvas, rows) => bars(canvas, rows.map((r) => `#${r.id} (${r.size})`), money(rows), "revenue", "#59a14f"),
    table: true,
    format: (key, v) => key === "revenue" ? fmtMoney(v) : key === "churnRisk" ? fmtPercent(v) : v ?? "–",
  },
];

export async function showDashboards(main) {
  const charts = [];
  const grid = h("div.dashboard");
  main.replaceChildren(h("h1", "Dashboards"), grid);
  const panels = PANELS.map((spec) => panel(spec, charts));
  grid.append(...panels.map((p) => p.box));
  await Promise.all(panels.map((p) => p.ready));
  return { dispose: () => charts.forEach((c) => c.destroy()) };
}
