// Drawing a customer network with sigma.js (WebGL) over a graphology graph, laid out with
// ForceAtlas2. Used by the network page and by the render bench (bench.js), the same code.

import Graph from "graphology";
import forceAtlas2 from "graphology-layout-forceatlas2";
import FA2Layout from "graphology-layout-forceatlas2/worker";
import Sigma from "sigma";
import { colourOf } from "./dom.js";

export const TIE_STYLES = {
  KNOWS: { color: "#9aa5b1", size: 1.2 },
  COLLEAGUE: { color: "#4e79a7", size: 1.6 },
  FAMILY: { color: "#e15759", size: 2.4 },
  REFERRED: { color: "#f28e2b", size: 2.0, type: "arrow" },
};

export function newGraph() {
  return new Graph({ multi: true, type: "directed", allowSelfLoops: false });
}

/** Add (or update) a customer node: `c` as the network documents give it. */
export function addCustomer(graph, c, extra = {}) {
  graph.mergeNode(c.id, {
    label: c.name || c.id,
    spend: c.totalSpend ?? 0,
    pagerank: c.pagerank ?? 0,
    community: c.community ?? null,
    segment: c.segment ? c.segment.name : null,
    ...extra,
  });
}

export function addTie(graph, t) {
  if (!graph.hasNode(t.sourceId) || !graph.hasNode(t.targetId)) return;
  const style = TIE_STYLES[t.type] || TIE_STYLES.KNOWS;
  graph.mergeEdgeWithKey(`${t.sourceId}|${t.type}|${t.targetId}`, t.sourceId, t.targetId, {
    tieType: t.type, color: style.color, size: style.size, type: style.type || "line",
  });
}

/** Colour and size every node: colour by "community" or "segment", size by "spend" or "pagerank". */
export function styleNodes(graph, { colourBy = "community", sizeBy = "spend" } = {}) {
  let top = 0;
  graph.forEachNode((_, a) => { top = Math.max(top, a[sizeBy] || 0); });
  graph.forEachNode((node, a) => {
    const share = top > 0 ? Math.sqrt((a[sizeBy] || 0) / top) : 0;
    graph.mergeNodeAttributes(node, {
      color: colourOf(a[colourBy]),
      size: (a.center ? 6 : 3) + 12 * share,
    });
  });
}

export const BACKGROUND_LAYOUT = 1000;
/** From this many customers the picture is drawn first and laid out afterwards, in a worker. */

function layoutSettings(graph) {
  // Barnes-Hut from a few hundred nodes: 2,000 nodes laid out in a fifth of the exact time
  return { ...forceAtlas2.inferSettings(graph), barnesHutOptimize: graph.order > 300 };
}

/** Deterministic starting places (rings by distance from the centre); then, below
 * BACKGROUND_LAYOUT customers, ForceAtlas2 before the first frame (the same picture every
 * time). Larger pictures go to `settle` once drawn. */
export function layout(graph) {
  const rings = {};
  graph.forEachNode((node, a) => {
    if (a.x !== undefined && a.y !== undefined) return;
    const d = a.distance ?? 1;
    (rings[d] = rings[d] || []).push(node);
  });
  for (const [d, nodes] of Object.entries(rings)) {
    nodes.forEach((node, i) => {
      const angle = (2 * Math.PI * i) / nodes.length + Number(d) * 0.37;
      const r = Number(d) === 0 ? 0 : 10 * Number(d) * (1 + (i % 7) / 7);
      graph.mergeNodeAttributes(node, { x: r * Math.cos(angle), y: r * Math.sin(angle) });
    });
  }
  if (graph.order > 1 && graph.order < BACKGROUND_LAYOUT) {
    forceAtlas2.assign(graph, { iterations: graph.order > 500 ? 40 : 120, settings: layoutSettings(graph) });
  }
}

/** ForceAtlas2 in a web worker for `ms` milliseconds on a drawn picture (the renderer follows
 * the nodes as they move); resolves when it has stopped. Nothing to do for small pictures. */
export function settle(graph, ms = 2000) {
  if (graph.order < BACKGROUND_LAYOUT) return Promise.resolve();
  const worker = new FA2Layout(graph, { settings: layoutSettings(graph) });
  worker.start();
  return new Promise((resolve) => setTimeout(() => { worker.kill(); resolve(); }, ms));
}

/** Places around `anchor` for `count` new nodes (sigma needs a node's x and y as it is added). */
export function placesAround(graph, anchor, count) {
  const { x = 0, y = 0 } = graph.hasNode(anchor) ? graph.getNodeAttributes(anchor) : {};
  return Array.from({ length: count }, (_, i) => {
    const angle = (2 * Math.PI * i) / Math.max(count, 1);
    return { x: x + 6 * Math.cos(angle), y: y + 6 * Math.sin(angle) };
  });
}

export function draw(container, graph, settings = {}) {
  return new Sigma(graph, container, {
    renderEdgeLabels: false,
    labelRenderedSizeThreshold: 8,
    defaultEdgeType: "line",
    zIndex: true,
    // large pictures stay fluid while panning: edges and labels come back when the camera stops
    hideEdgesOnMove: graph.order > 1000,
    hideLabelsOnMove: graph.order > 1000,
    ...settings,
  });
}
