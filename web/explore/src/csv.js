// A chart's numbers as a CSV file the analyst downloads.

function cell(value) {
  if (value === null || value === undefined) return "";
  let text = String(value);
  const formula = typeof value === "string" && /^[=+\-@\t\r]/.test(text);
  if (formula) text = `'${text}`;
  return formula || /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** CSV text (RFC 4180, CRLF) of `rows` with `columns` ([{key, label}]). Text that a
 * spreadsheet would run as a formula is quoted and prefixed with an apostrophe. */
export function toCsv(columns, rows) {
  const lines = [columns.map((c) => cell(c.label)).join(",")];
  for (const r of rows) lines.push(columns.map((c) => cell(r[c.key])).join(","));
  return lines.join("\r\n") + "\r\n";
}

export function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
