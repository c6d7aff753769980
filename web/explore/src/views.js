// Saved views: a filter of the `customers` query under a name, shared as /explore#view=<name>.

import { gql } from "./api.js";
import { CUSTOMER_COLUMNS } from "./customer.js";
import { CUSTOMERS, CUSTOMERS_COUNT, DELETE_VIEW, SAVE_VIEW, SAVED_VIEW, SAVED_VIEWS } from "./documents.js";
import { deniedNotice, fill, fmtInstant, h, table } from "./dom.js";

const SIMPLE = [
  ["country", "Country is", (v) => ({ country: { eq: v } })],
  ["city", "City contains", (v) => ({ city: { contains: v } })],
  ["name", "Name contains", (v) => ({ name: { contains: v } })],
  ["minSpend", "Total spend at least", (v) => ({ totalSpend: { gte: Number(v) } })],
  ["minOrders", "Orders at least", (v) => ({ orderCount: { gte: Math.trunc(Number(v)) } })],
  ["category", "Bought in category", (v) => ({ boughtInCategory: v })],
  ["segment", "In segment (id)", (v) => ({ inSegment: v })],
];

/** The CustomerFilter the simple form describes (conditions ANDed). */
function filterOf(inputs) {
  const parts = SIMPLE.filter(([key]) => inputs[key].value.trim() !== "")
    .map(([key, , make]) => make(inputs[key].value.trim()));
  return parts.length === 1 ? parts[0] : parts.length ? { AND: parts } : {};
}

export async function showViews(main) {
  const inputs = Object.fromEntries(SIMPLE.map(([key]) => [key, h("input", { name: key, id: `f-${key}`, size: 14 })]));
  const advanced = h("textarea#filter-json", { rows: 4, cols: 70, name: "filter",
    placeholder: '{"country": {"eq": "FR"}, "totalSpend": {"gte": 500}}' });
  const name = h("input#view-name", { size: 24, name: "viewName", placeholder: "view name" });
  const description = h("input#view-description", { size: 40, name: "description", placeholder: "description (optional)" });
  const message = h("div#view-message");
  const list = h("div#view-list");
  const preview = h("div#view-preview");
  const filter = () => {
    const text = advanced.value.trim();
    if (!text) return filterOf(inputs);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`the filter is not JSON: ${e.message}`);
    }
  };
  const form = h("form.viewform",
    h("div.fields", SIMPLE.map(([key, label]) => h("label", label, " ", inputs[key]))),
    h("details", h("summary", "Advanced: the filter as JSON (a CustomerFilter; replaces the fields above)"), advanced),
    h("div", h("button#preview-view", { type: "button" }, "Preview"), " ", name, " ", description, " ",
      h("button#save-view", { type: "submit" }, "Save view")),
    message);
  main.replaceChildren(h("h1", "Saved views"), h("section.card", h("h2", "New view"), form),
    preview, h("section.card", h("h2", "Saved"), list));

  async function refresh() {
    try {
      const views = (await gql(SAVED_VIEWS)).data.savedViews;
      list.replaceChildren(views.length ? table([
        { label: "Name", cell: (v) => h("a", { href: `#view=${encodeURIComponent(v.name)}`, "data-view": v.name }, v.name) },
        { label: "Description", cell: (v) => v.description || "" },
        { label: "Filter", cell: (v) => h("code", JSON.stringify(v.filter)) },
        { label: "Saved by", cell: (v) => `${v.updatedBy || v.createdBy || "–"}, ${fmtInstant(v.updatedAt)}` },
        { label: "", cell: (v) => h("button", { type: "button", onclick: async () => {
          await gql(DELETE_VIEW, { name: v.name });
          refresh();
        } }, "Delete") },
      ], views) : h("p.muted", "No saved views yet."));
    } catch (e) {
      list.replaceChildren(e.forbidden ? deniedNotice("Saved views", e.message) : h("div.notice.error", e.message));
    }
  }
  form.querySelector("#preview-view").addEventListener("click", async () => {
    try {
      await showCustomers(preview, filter(), null, "Preview");
    } catch (e) {
      preview.replaceChildren(h("div.notice.error", e.message));
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const input = { name: name.value.trim(), filter: filter(), description: description.value.trim() || null };
      const answer = (await gql(SAVE_VIEW, { input })).data.saveView;
      if (answer.__typename === "SaveViewError") {
        message.replaceChildren(h("div.notice.error", `${answer.field}: ${answer.message}`));
        return;
      }
      const link = `${location.origin}${location.pathname}#view=${encodeURIComponent(answer.view.name)}`;
      message.replaceChildren(h("div.notice.ok", "Saved. Share it: ", h("a#view-link", { href: link }, link)));
      refresh();
    } catch (err) {
      message.replaceChildren(err.forbidden ? deniedNotice("Saving views", err.message) : h("div.notice.error", err.message));
    }
  });
  await refresh();
  return null;
}

async function showCustomers(target, where, orderBy, title) {
  target.replaceChildren(h("p.muted", "Loading…"));
  const variables = { where, orderBy, first: 50, after: null };
  const [page, count] = await Promise.all([
    gql(CUSTOMERS, variables),
    gql(CUSTOMERS_COUNT, { where }).catch((e) => ({ error: e })),
  ]);
  const total = count.error ? null : count.data.customers.totalCount;
  const shown = page.data.customers.nodes;
  const rows = h("div", table(CUSTOMER_COLUMNS, shown, (c) => ({ "data-customer": c.id })));
  let cursor = page.data.customers.pageInfo;
  const more = h("button#more", { type: "button", hidden: !cursor.hasNextPage }, "More");
  more.addEventListener("click", async () => {
    const next = await gql(CUSTOMERS, { ...variables, after: cursor.endCursor });
    shown.push(...next.data.customers.nodes);
    cursor = next.data.customers.pageInfo;
    rows.replaceChildren(table(CUSTOMER_COLUMNS, shown, (c) => ({ "data-customer": c.id })));
    more.hidden = !cursor.hasNextPage;
  });
  target.replaceChildren(h("section.card", h("h2", title),
    h("p#view-count", { "data-total": total ?? "" },
      total === null ? `${shown.length}${cursor.hasNextPage ? "+" : ""} customers (the total is not available for this key)`
        : `${total} customer${total === 1 ? "" : "s"} match`),
    rows, more));
}

export async function showView(main, name) {
  const found = (await gql(SAVED_VIEW, { name })).data.savedView;
  if (!found) {
    main.replaceChildren(h("div.notice.error", `No saved view is called ${name}.`), h("a", { href: "#views" }, "Saved views"));
    return null;
  }
  const body = h("div");
  fill(main, h("h1", { "data-view": found.name }, `View: ${found.name}`),
    found.description ? h("p", found.description) : null,
    h("p.muted", "Filter ", h("code#view-filter", JSON.stringify(found.filter)),
      ` · saved by ${found.updatedBy || found.createdBy || "–"} on ${fmtInstant(found.updatedAt)}`),
    body);
  await showCustomers(body, found.filter, found.orderBy, "Customers");
  return null;
}
