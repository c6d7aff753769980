// The render bench (python -m bench explore): a seeded network of `n` customers drawn by the
// network page's own code (graph.js), timed to its first frame, then panned to count frames.

import { h } from "./dom.js";
import { addCustomer, addTie, draw, layout, newGraph, settle, styleNodes } from "./graph.js";

function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const TYPES = ["KNOWS", "KNOWS", "KNOWS", "COLLEAGUE", "FAMILY", "REFERRED"];

/** Nodes and ties like a neighbourhood's: a tree from the centre (so every node is reached),
 * plus ~1 extra tie per node, communities by subtree. */
export function syntheticNetwork(n, seed = 7) {
  const random = seeded(seed);
  const customers = [{ id: "c0", name: "Centre", totalSpend: 1000, pagerank: 0.01, community: 0, distance: 0 }];
  const ties = [];
  for (let i = 1; i < n; i++) {
    const parent = customers[Math.floor(random() * i)];
    customers.push({ id: `c${i}`, name: `Customer ${i}`, totalSpend: Math.round(random() * 5000),
      pagerank: random() / n, community: i < 16 ? i : parent.community, distance: Math.min(3, parent.distance + 1) });
    ties.push({ sourceId: parent.id, targetId: `c${i}`, type: TYPES[Math.floor(random() * TYPES.length)] });
  }
  for (let i = 0; i < n; i++) {
    const a = Math.floor(random() * n);
    const b = Math.floor(random() * n);
    if (a !== b) ties.push({ sourceId: `c${a}`, targetId: `c${b}`, type: TYPES[Math.floor(random() * TYPES.length)] });
  }
  return { customers, ties };
}

const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));

export async function benchNetwork(n = 2000, panSeconds = 3, settleMs = 2000) {
  const { customers, ties } = syntheticNetwork(n);
  const main = document.getElementById("main");
  const stage = h("div#sigma.stage");
  main.replaceChildren(h("h1", `Render bench: ${n} customers`), stage);
  await frame();
  const started = performance.now();
  const graph = newGraph();
  for (const c of customers) addCustomer(graph, c, { distance: c.distance, center: c.distance === 0 });
  for (const t of ties) addTie(graph, t);
  const built = performance.now();
  layout(graph);
  const laidOut = performance.now();
  styleNodes(graph);
  const renderer = draw(stage, graph);
  const constructed = performance.now();
  const rendered = new Promise((resolve) => renderer.once("afterRender", resolve));
  renderer.refresh();
  await rendered;
  await frame();
  const firstFrame = performance.now();
  await settle(graph, settleMs);
  const settled = performance.now();
  // pan: one camera animation over `panSeconds` (sigma treats an animated camera as moving,
  // as when the analyst drags), counting the frames drawn and the longest gap between two
  const camera = renderer.getCamera();
  let frames = 0;
  let longest = 0;
  let previous = performance.now();
  renderer.on("afterRender", () => {
    const now = performance.now();
    frames += 1;
    longest = Math.max(longest, now - previous);
    previous = now;
  });
  const panStart = performance.now();
  previous = panStart;
  await camera.animate({ x: 0.8, y: 0.2, ratio: 0.6 }, { duration: panSeconds * 1000, easing: "linear" });
  const panned = (performance.now() - panStart) / 1000;
  const result = {
    nodes: graph.order, edges: graph.size,
    buildMs: built - started, layoutMs: laidOut - built, drawMs: firstFrame - laidOut,
    sigmaMs: constructed - laidOut, settledMs: settled - started,
    firstFrameMs: firstFrame - started, fps: frames / panned, longestFrameMs: longest,
    renderer: (() => {
      const gl = document.createElement("canvas").getContext("webgl2") || document.createElement("canvas").getContext("webgl");
      const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
      return info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl ? "webgl" : "none";
    })(),
  };
  renderer.kill();
  return result;
}
