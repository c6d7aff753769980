// The network picture: a customer's neighbourhood, expandable, with a path highlighted.

import { gql } from "./api.js";
import { NEIGHBOURHOOD, PATH } from "./documents.js";
import { deniedNotice, h } from "./dom.js";
import { addCustomer, addTie, draw, layout, newGraph, placesAround, settle, styleNodes, TIE_STYLES } from "./graph.js";

const LIMIT = 500;

export async function showNetwork(main, id) {
  const idInput = h("input#network-id", { value: id, size: 14, name: "id", placeholder: "customer id" });
  const depth = h("select#depth", [1, 2, 3].map((d) => h("option", { value: d, selected: d === 2 }, `depth ${d}`)));
  const colourBy = h("select#colour-by", h("option", { value: "community" }, "colour: community"),
    h("option", { value: "segment" }, "colour: segment"));
  const sizeBy = h("select#size-by", h("option", { value: "spend" }, "size: spend"),
    h("option", { value: "pagerank" }, "size: PageRank"));
  const pathTo = h("input#path-to", { size: 14, name: "to", placeholder: "path to id" });
  const status = h("div#network-status.muted");
  const panel = h("aside#node-panel.card", h("p.muted", "Click a customer to see it; double-click to expand."));
  const stage = h("div#sigma.stage");
  const legend = h("div.legend", Object.entries(TIE_STYLES).map(([type, s]) =>
    h("span", h("span.swatch", { style: `background:${s.color}` }), type.toLowerCase())));
  const form = h("form.toolbar", idInput, depth, h("button", { type: "submit" }, "Draw"),
    colourBy, sizeBy, pathTo, h("button#path-button", { type: "button" }, "Highlight path"));
  main.replaceChildren(h("h1", "Network"), form, legend, status, h("div.networkview", stage, panel));

  let renderer = null;
  let graph = null;
  let highlight = null; // {nodes:Set, edges:Set}
  const center = id;

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `network=${encodeURIComponent(idInput.value.trim())}`;
  });
  if (!id) {
    status.textContent = "Enter a customer id (or open one from the search) to draw its neighbourhood.";
    return null;
  }

  const restyle = () => {
    styleNodes(graph, { colourBy: colourBy.value, sizeBy: sizeBy.value });
    renderer && renderer.refresh();
  };
  colourBy.addEventListener("change", restyle);
  sizeBy.addEventListener("change", restyle);

  async function load() {
    const { data, denied } = await gql(NEIGHBOURHOOD, { id, depth: Number(depth.value), limit: LIMIT });
    const n = data.neighbourhood;
    if (!n) {
      status.textContent = `No customer has the id ${id}.`;
      return;
    }
    if (renderer) renderer.kill();
    graph = newGraph();
    addCustomer(graph, n.center, { center: true, distance: 0 });
    for (const m of n.members) addCustomer(graph, m.customer, { distance: m.distance });
    for (const t of n.ties) addTie(graph, t);
    layout(graph);
    styleNodes(graph, { colourBy: colourBy.value, sizeBy: sizeBy.value });
    renderer = draw(stage, graph, { nodeReducer, edgeReducer });
    renderer.on("clickNode", ({ node }) => select(node));
    renderer.on("doubleClickNode", (e) => { e.preventSigmaDefault(); expand(e.node); });
    status.replaceChildren(
      Object.keys(denied).length ? deniedNotice("Scores in the picture", Object.values(denied).join("; ")) : "",
      h("span#network-counts", { "data-nodes": graph.order, "data-edges": graph.size },
        `${graph.order} customers, ${graph.size} ties within depth ${depth.value} of ${id}`
        + (n.truncated ? ` (limited to ${LIMIT})` : "")));
    window.exploreNetwork = { graph, renderer };
    await settle(graph);
  }

  function nodeReducer(node, attrs) {
    if (!highlight) return attrs;
    return highlight.nodes.has(node)
      ? { ...attrs, highlighted: true, zIndex: 1 }
      : { ...attrs, color: "#dddddd", label: null, zIndex: 0 };
  }
  function edgeReducer(edge, attrs) {
    if (!highlight) return attrs;
    return highlight.edges.has(edge)
      ? { ...attrs, color: "#111111", size: 4, zIndex: 1 }
      : { ...attrs, color: "#eeeeee", zIndex: 0 };
  }

  function select(node) {
    const a = graph.getNodeAttributes(node);
    panel.replaceChildren(
      h("h2", { "data-selected": node }, a.label),
      h("p", `Id ${node}`), h("p", `Spend ${a.spend.toFixed(2)} · PageRank ${a.pagerank ? a.pagerank.toFixed(5) : "–"}`),
      h("p", `Community ${a.community ?? "–"} · Segment ${a.segment ?? "–"}`),
      h("button#expand", { type: "button", onclick: () => expand(node) }, "Expand"), " ",
      h("a.button#open-360", { href: `#customer=${encodeURIComponent(node)}` }, "Open 360"), " ",
      h("button#path-here", { type: "button", onclick: () => { pathTo.value = node; showPath(); } }, "Path from centre"));
  }

  async function expand(node) {
    const { data } = await gql(NEIGHBOURHOOD, { id: node, depth: 1, limit: 200 });
    const n = data.neighbourhood;
    if (!n) return;
    const fresh = n.members.map((m) => m.customer).filter((c) => !graph.hasNode(c.id));
    const distance = (graph.getNodeAttribute(node, "distance") ?? 0) + 1;
    const places = placesAround(graph, node, fresh.length);
    fresh.forEach((c, i) => addCustomer(graph, c, { distance, ...places[i] }));
    for (const t of n.ties) addTie(graph, t);
    styleNodes(graph, { colourBy: colourBy.value, sizeBy: sizeBy.value });
    renderer.refresh();
    const counts = document.getElementById("network-counts");
    counts.dataset.nodes = graph.order;
    counts.dataset.edges = graph.size;
    counts.textContent = `${graph.order} customers, ${graph.size} ties (expanded ${node}: +${fresh.length})`;
  }

  async function showPath() {
    const to = pathTo.value.trim();
    if (!to) return;
    const { data } = await gql(PATH, { from: center, to, max: 6 });
    const p = data.path;
    const out = document.getElementById("path-result") || h("div#path-result");
    status.append(out);
    if (!p) {
      highlight = null;
      out.textContent = `No chain of at most 6 ties joins ${center} and ${to}.`;
      renderer.refresh();
      return;
    }
    const missing = p.customers.filter((c) => !graph.hasNode(c.id));
    const places = placesAround(graph, center, missing.length);
    missing.forEach((c, i) => addCustomer(graph, c, places[i]));
    for (const t of p.ties) addTie(graph, t);
    styleNodes(graph, { colourBy: colourBy.value, sizeBy: sizeBy.value });
    highlight = {
      nodes: new Set(p.customers.map((c) => c.id)),
      edges: new Set(p.ties.map((t) => `${t.sourceId}|${t.type}|${t.targetId}`)),
    };
    out.dataset.length = p.length;
    out.textContent = `Path of ${p.length} tie${p.length === 1 ? "" : "s"}: `
      + p.customers.map((c) => c.name || c.id).join(" → ");
    renderer.refresh();
  }
  document.getElementById("path-button").addEventListener("click", showPath);
  depth.addEventListener("change", () => load());

  await load();
  return { dispose: () => { renderer && renderer.kill(); delete window.exploreNetwork; } };
}
