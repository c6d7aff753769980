// Chart.js, registered once; every chart drawn without animation (the tests read the screen).

import { Chart, registerables } from "chart.js";
import { download, toCsv } from "./csv.js";
import { deniedNotice, errorNotice, h } from "./dom.js";

Chart.register(...registerables);
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

export { Chart };

/**
 * A dashboard panel: loads its rows, draws a chart, shows the table and offers them as CSV.
 * `spec`: {id, title, load: async () => ({rows, denied}), columns: [{key, label}],
 *          chart: (canvas, rows) => Chart, table: bool}
 */
export function panel(spec, charts) {
  const body = h("div.panelbody");
  const box = h("section.card.panel", { "data-panel": spec.id, "data-state": "loading" },
    h("h2", spec.title), body);
  return { box, ready: fill(spec, charts, box, body) };
}

async function fill(spec, charts, box, body) {
  let result;
  try {
    result = await spec.load();
  } catch (e) {
    body.append(e.forbidden ? deniedNotice(spec.title, e.message) : errorNotice(e));
    box.dataset.state = e.forbidden ? "denied" : "error";
    return box;
  }
  const { rows } = result;
  box.dataset.state = "ready";
  box.dataset.rows = rows.length;
  const csvButton = h("button.csv", { type: "button", "data-csv": spec.id,
    onclick: () => download(`${spec.id}.csv`, toCsv(spec.columns, rows)) }, "Download CSV");
  box.querySelector("h2").append(" ", csvButton);
  if (spec.chart) {
    const canvas = h("canvas", { "data-chart": spec.id });
    body.append(h("div.chartbox", canvas));
    charts.push(spec.chart(canvas, rows));
  }
  if (spec.table) {
    body.append(h("table.small", h("thead", h("tr", spec.columns.map((c) => h("th", c.label)))),
      h("tbody", rows.map((r) => h("tr", spec.columns.map((c) =>
        h(typeof r[c.key] === "number" ? "td.num" : "td", spec.format ? spec.format(c.key, r[c.key], r) : r[c.key] ?? "–")))))));
  }
  return box;
}

export function bars(canvas, labels, values, label, colour = "#4e79a7", horizontal = false) {
  return new Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label, data: values, backgroundColor: colour }] },
    options: { indexAxis: horizontal ? "y" : "x", plugins: { legend: { display: false } } },
  });
}
