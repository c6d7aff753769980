// The analyst's workbench: one page, routed by the URL's fragment.
//   #search=<text>  #customer=<id>  #network=<id>  #segments  #dashboards  #views  #view=<name>

import { ApiError, forgetKey, gql, storedKey, storeKey } from "./api.js";
import { PING } from "./documents.js";
import { deniedNotice, fill, h } from "./dom.js";
import { showCustomer, showSearch } from "./customer.js";
import { showNetwork } from "./network.js";
import { showSegments } from "./segments.js";
import { showDashboards } from "./dashboards.js";
import { showView, showViews } from "./views.js";
import { benchNetwork } from "./bench.js";

const PAGES = [
  ["search", "Search"],
  ["network", "Network"],
  ["segments", "Segments map"],
  ["dashboards", "Dashboards"],
  ["views", "Saved views"],
];

function route() {
  const raw = location.hash.replace(/^#/, "");
  const at = raw.indexOf("=");
  const name = at < 0 ? raw : raw.slice(0, at);
  const arg = at < 0 ? "" : decodeURIComponent(raw.slice(at + 1));
  return { name: name || "search", arg };
}

export function go(name, arg) {
  location.hash = arg === undefined || arg === "" ? name : `${name}=${encodeURIComponent(arg)}`;
}

function keyForm(main, message) {
  const input = h("input#key", { type: "password", placeholder: "API key", autocomplete: "off",
    size: 48, name: "key" });
  const form = h("form.keyform",
    h("h2", "Enter your API key"),
    h("p", "The key is kept for this tab only (session storage) and sent to /graphql."),
    message ? h("div.notice.error", message) : null,
    input, h("button", { type: "submit" }, "Open"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    storeKey(input.value.trim());
    try {
      await gql(PING);
      render();
    } catch (e) {
      forgetKey();
      main.replaceChildren(keyForm(main, e instanceof ApiError ? `Key refused: ${e.message}` : String(e)));
    }
  });
  return form;
}

let current = null;

async function render() {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  if (current && current.dispose) current.dispose();
  current = null;
  const { name, arg } = route();
  fill(nav,
    ...PAGES.map(([page, label]) => h("a", { href: `#${page}`, class: page === name ||
      (page === "search" && name === "customer") || (page === "views" && name === "view")
      ? "active" : "" }, label)),
    storedKey() ? h("a.forget", { href: "#", onclick: (e) => {
      e.preventDefault(); forgetKey(); render();
    } }, "Forget key") : null);
  if (!storedKey()) {
    main.replaceChildren(keyForm(main));
    document.body.dataset.page = "key";
    document.body.dataset.ready = "true";
    return;
  }
  main.replaceChildren(h("div.loading", "Loading…"));
  const pages = {
    search: () => showSearch(main, arg),
    customer: () => showCustomer(main, arg),
    network: () => showNetwork(main, arg),
    segments: () => showSegments(main),
    dashboards: () => showDashboards(main),
    views: () => showViews(main),
    view: () => showView(main, arg),
  };
  const show = pages[name] || pages.search;
  document.body.dataset.page = pages[name] ? name : "search";
  document.body.dataset.ready = "false";
  try {
    current = await show();
  } catch (e) {
    const label = name === "view" ? "Saved views"
      : (PAGES.find(([page]) => page === name) || [name, "This page"])[1];
    main.replaceChildren(e instanceof ApiError && e.forbidden
      ? deniedNotice(label, e.message)
      : h("div.notice.error", `Error: ${e.message}`));
    if (e instanceof ApiError && e.code === "UNAUTHENTICATED") {
      forgetKey();
      main.replaceChildren(keyForm(main, `Key refused: ${e.message}`));
    }
  }
  document.body.dataset.ready = "true";
}

window.addEventListener("hashchange", render);
window.exploreBench = benchNetwork;
render();
