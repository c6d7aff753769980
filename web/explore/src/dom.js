// Small DOM and formatting helpers.

/** h("div#id.card", {onclick}, child, ...): an element; strings become text (never HTML). */
export function h(tag, attrs = {}, ...children) {
  const id = (tag.match(/#([\w-]+)/) || [])[1];
  const [name, ...classes] = tag.replace(/#[\w-]+/, "").split(".");
  const el = document.createElement(name || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** Replace an element's children; null, undefined and false are skipped (the DOM's own
 * replaceChildren would write them out as text). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const money = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function fmtMoney(v) {
  return v === null || v === undefined ? "–" : money.format(v);
}

export function fmtNumber(v, digits = 2) {
  if (v === null || v === undefined) return "–";
  return Number(v).toFixed(digits);
}

export function fmtPercent(v) {
  return v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`;
}

/** An instant as the API sends it (ISO 8601), shown as UTC date and time. */
export function fmtInstant(v) {
  if (!v) return "–";
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toISOString().slice(0, 16).replace("T", " ");
}

export function fmtDate(v) {
  return v ? fmtInstant(v).slice(0, 10) : "–";
}

/** A notice saying a part of the page is not available for this key. */
export function deniedNotice(what, message) {
  return h("div.notice.denied", { "data-denied": what },
    h("strong", `${what}: not available for this key. `), message || "");
}

export function errorNotice(error) {
  return h("div.notice.error", `Error: ${error.message}`);
}

export function table(columns, rows, rowAttrs = () => ({})) {
  return h("table",
    h("thead", h("tr", columns.map((c) => h("th", c.label)))),
    h("tbody", rows.map((r) => h("tr", rowAttrs(r),
      columns.map((c) => h(c.numeric ? "td.num" : "td", c.cell(r)))))));
}

export const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf",
];

export function colourOf(key) {
  if (key === null || key === undefined) return "#999999";
  const s = String(key);
  let hash = 0;
  for (let i = 0; i < s.length; i++) hash = (hash * 31 + s.charCodeAt(i)) >>> 0;
  const n = Number.isInteger(Number(s)) ? Math.abs(Number(s)) : hash;
  return PALETTE[n % PALETTE.length];
}
