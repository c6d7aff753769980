// Search, and the customer 360.

import { gql } from "./api.js";
import { CUSTOMER_360, SEARCH } from "./documents.js";
import { deniedNotice, fill, fmtDate, fmtInstant, fmtMoney, fmtNumber, fmtPercent, h, table } from "./dom.js";

export const CUSTOMER_COLUMNS = [
  { label: "Id", cell: (c) => h("a", { href: `#customer=${encodeURIComponent(c.id)}` }, c.id) },
  { label: "Name", cell: (c) => c.name || "–" },
  { label: "Email", cell: (c) => c.email || "–" },
  { label: "City", cell: (c) => c.city || "–" },
  { label: "Country", cell: (c) => c.country || "–" },
  { label: "Orders", cell: (c) => c.orderCount, numeric: true },
  { label: "Spend", cell: (c) => fmtMoney(c.totalSpend), numeric: true },
];

export async function showSearch(main, text) {
  const input = h("input#search", { type: "search", value: text, size: 40, name: "q",
    placeholder: "name, email, phone or id" });
  const results = h("div#results");
  const form = h("form.searchform", input, h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `search=${encodeURIComponent(input.value.trim())}`;
  });
  main.replaceChildren(h("h1", "Find a customer"), form, results);
  input.focus();
  if (text.trim().length < 2) {
    results.append(h("p.hint", "Type at least 2 characters: part of a name, email or phone, or a customer id."));
    return;
  }
  const { data, denied } = await gql(SEARCH, { text: text.trim(), id: text.trim() });
  const found = [...(data.byId ? [data.byId] : []),
    ...(data.searchCustomers?.nodes || []).filter((c) => !data.byId || c.id !== data.byId.id)];
  fill(results,
    Object.keys(denied).length ? deniedNotice("Part of the search", Object.values(denied).join("; ")) : null,
    h("p.count", `${found.length} customer${found.length === 1 ? "" : "s"} found`),
    found.length ? table(CUSTOMER_COLUMNS, found, (c) => ({ "data-customer": c.id })) : null,
  );
}

function section(title, ...content) {
  return h("section.card", h("h2", title), ...content);
}

function facts(pairs) {
  return h("dl.facts", pairs.map(([k, v]) => [h("dt", k), h("dd", { "data-fact": k }, v ?? "–")]));
}

/** Extra properties from the input files; the models' scores (ml*) are shown in their sections. */
function attributeFacts(attributes) {
  const own = Object.entries(attributes || {}).filter(([k]) => !/^ml[A-Z]/.test(k));
  return own.length ? facts(own.map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)])) : null;
}

export async function showCustomer(main, id) {
  const { data, denied } = await gql(CUSTOMER_360, { id });
  const c = data.customer;
  if (!c) {
    main.replaceChildren(h("div.notice.error", `No customer has the id ${id}.`));
    return;
  }
  const deniedParts = Object.entries(denied).map(([field, message]) => deniedNotice(field, message));
  const orders = c.transactions.nodes.map((t, i) => h("details.order", { "data-order": t.id, open: i === 0 },
    h("summary", `${fmtInstant(t.at)} · ${t.id} · ${fmtMoney(t.total)} · ${t.channel || "–"}`),
    table([
      { label: "Product", cell: (l) => `${l.product.name || l.product.id} (${l.product.category || "–"})` },
      { label: "Quantity", cell: (l) => l.quantity, numeric: true },
      { label: "Unit price", cell: (l) => fmtMoney(l.unitPrice), numeric: true },
      { label: "Amount", cell: (l) => fmtMoney(l.amount), numeric: true },
    ], t.lines.nodes)));
  const timeline = h("ol.timeline", c.interactions.nodes.map((i) => h("li", { "data-interaction": i.id },
    h("span.when", fmtInstant(i.at)), h("span.type", i.type.toLowerCase()),
    ` ${i.subject || ""} `, i.channel ? h("span.muted", `via ${i.channel}`) : null,
    i.sentiment !== null ? h("span.muted", ` · sentiment ${fmtNumber(i.sentiment)}`) : null,
    i.satisfaction !== null ? h("span.muted", ` · satisfaction ${i.satisfaction}/5`) : null)));
  const ties = h("ul.ties", c.socialTies.nodes.map((t) => h("li", { "data-tie": t.customer.id },
    h("span.tie", { class: `tie ${t.type.toLowerCase()}` }, t.type.toLowerCase()),
    t.direction === "OUTGOING" ? " → " : " ← ",
    h("a", { href: `#customer=${encodeURIComponent(t.customer.id)}` }, t.customer.name || t.customer.id),
    t.since ? h("span.muted", ` since ${fmtDate(t.since)}`) : null)));
  const churn = c.churnRisk
    ? [facts([["Churn risk", fmtPercent(c.churnRisk.score)], ["Model", c.churnRisk.modelVersion],
        ["As of", fmtDate(c.churnRisk.asOf)]]),
      table([{ label: "Driver", cell: (d) => d.feature },
        { label: "Raises the risk by", cell: (d) => fmtNumber(d.contribution, 3), numeric: true }],
        c.churnRisk.drivers)]
    : [h("p.muted", "No churn score: run crm-graph train.")];
  main.replaceChildren(
    h("div.titlebar",
      h("h1", { "data-customer-name": c.id }, c.name || c.id),
      h("a.button", { href: `#network=${encodeURIComponent(c.id)}` }, "Network picture")),
    ...deniedParts,
    h("div.grid",
      section("Profile", facts([["Id", c.id], ["Email", c.email], ["Phone", c.phone],
        ["City", c.city], ["Country", c.country], ["Signed up", fmtDate(c.signupAt)]]),
        attributeFacts(c.attributes)),
      section("Totals", facts([["Total spend", fmtMoney(c.totalSpend)], ["Orders", String(c.orderCount)],
        ["First purchase", fmtDate(c.firstPurchaseAt)], ["Last purchase", fmtDate(c.lastPurchaseAt)],
        ["Segment", c.segment ? c.segment.name : null], ["RFM", c.rfm ? `${c.rfm.score} (${c.rfm.segment})` : null],
        ["PageRank", c.pagerank !== null ? fmtNumber(c.pagerank, 5) : null],
        ["Community", c.community !== null ? String(c.community) : null]])),
      section("Churn risk", ...churn),
      section("Lifetime value", c.clv ? facts([["Expected value", fmtMoney(c.clv.expectedValue)],
        ["Expected purchases", fmtNumber(c.clv.expectedPurchases)],
        ["Probability alive", fmtPercent(c.clv.probabilityAlive)],
        ["Horizon", c.clv.horizonDays ? `${c.clv.horizonDays} days` : null]]) : h("p.muted", "No CLV score.")),
      section("Recommendations", c.recommendations.length ? h("ol.recs", c.recommendations.map((r) =>
        h("li", { "data-recommendation": r.product.id }, h("strong", r.product.name || r.product.id),
          h("span.muted", ` ${r.product.category || ""} · score ${fmtNumber(r.score, 3)}`),
          h("ul", r.reasons.map((why) => h("li", why)))))) : h("p.muted", "No recommendations.")),
      section(`Ties (${c.socialTies.totalCount})`, ties),
    ),
    section(`Orders (${c.orderCount}, latest ${c.transactions.nodes.length})`, ...orders),
    section(`Contacts (${c.interactions.totalCount}, latest ${c.interactions.nodes.length})`, timeline),
  );
}
