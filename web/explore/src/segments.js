// The segments map: the 2-D picture (principal components) of the last segmentation.

import { gql } from "./api.js";
import { Chart } from "./charts.js";
import { SEGMENT_MAP, SEGMENTS } from "./documents.js";
import { colourOf, deniedNotice, fmtNumber, fmtPercent, h } from "./dom.js";

export async function showSegments(main) {
  main.replaceChildren(h("h1", "Segments map"));
  let map, segments;
  try {
    [map, segments] = await Promise.all([gql(SEGMENT_MAP, { sample: 2000 }), gql(SEGMENTS)]);
  } catch (e) {
    if (!e.forbidden) throw e;
    main.append(deniedNotice("The segments map", e.message));
    return null;
  }
  const m = map.data.segmentMap;
  const summaries = segments.data.segments.filter((s) => s.model === "segments");
  if (!m.points.length) {
    main.append(h("p.notice", "No segments map yet: run crm-graph train."));
    return null;
  }
  const names = Object.fromEntries(summaries.map((s) => [s.id, s.name || s.id]));
  const bySegment = {};
  for (const p of m.points) (bySegment[p.segmentId] = bySegment[p.segmentId] || []).push(p);
  const ev = m.explainedVariance;
  const canvas = h("canvas#segment-map");
  main.append(
    h("p.muted#segment-map-caption", { "data-points": m.points.length, "data-total": m.total },
      `${m.points.length} of ${m.total} customers, model ${m.modelVersion || "–"}; axes explain `
      + `${ev.length ? ev.map(fmtPercent).join(" and ") : "–"} of the variance.`),
    h("div.chartbox.tall", canvas));
  const chart = new Chart(canvas, {
    type: "scatter",
    data: {
      datasets: Object.entries(bySegment).map(([segment, points]) => ({
        label: `${names[segment] || segment} (${points.length})`,
        data: points.map((p) => ({ x: p.x, y: p.y, id: p.customerId, name: p.name })),
        backgroundColor: colourOf(segment.split(":").pop()),
        pointRadius: 2.5,
      })),
    },
    options: {
      scales: { x: { title: { display: true, text: "PC1" } }, y: { title: { display: true, text: "PC2" } } },
      plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.raw.name || ctx.raw.id} (${ctx.raw.id})` } } },
      onClick: (_, elements) => {
        if (!elements.length) return;
        const p = chart.data.datasets[elements[0].datasetIndex].data[elements[0].index];
        location.hash = `customer=${encodeURIComponent(p.id)}`;
      },
    },
  });
  const keys = [...new Set(summaries.flatMap((s) => Object.keys(s.profile || {})))]
    .filter((k) => !["name", "customers"].includes(k));
  main.append(h("section.card", h("h2", "Profiles"), h("table#segment-profiles",
    h("thead", h("tr", h("th", "Segment"), h("th", "Customers"), keys.map((k) => h("th", k)))),
    h("tbody", summaries.map((s) => h("tr", { "data-segment": s.id },
      h("td", h("span.swatch", { style: `background:${colourOf(s.id.split(":").pop())}` }), s.name),
      h("td.num", s.size),
      keys.map((k) => h("td.num", typeof s.profile?.[k] === "number"
        ? (k === "share" ? fmtPercent(s.profile[k]) : fmtNumber(s.profile[k])) : s.profile?.[k] ?? "–"))))))));
  return { dispose: () => chart.destroy() };
}
