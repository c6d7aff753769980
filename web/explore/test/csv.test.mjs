// node --test web/explore/test: the CSV the dashboards' download buttons write.
import assert from "node:assert/strict";
import { test } from "node:test";
import { toCsv } from "../src/csv.js";

const columns = [{ key: "key", label: "key" }, { key: "revenue", label: "revenue" }];

test("numbers and plain text are written as they are, lines end with CRLF", () => {
  assert.equal(toCsv(columns, [{ key: "2024-03", revenue: 1234.5 }, { key: "FR", revenue: -3 }]),
    "key,revenue\r\n2024-03,1234.5\r\nFR,-3\r\n");
});

test("commas, quotes and line breaks are quoted, quotes doubled", () => {
  assert.equal(toCsv(columns, [{ key: 'Home, "Garden"\nand more', revenue: 1 }]),
    'key,revenue\r\n"Home, ""Garden""\nand more",1\r\n');
});

test("text a spreadsheet would run as a formula is quoted behind an apostrophe", () => {
  const rows = ["=1+1", "+33 1", "-x", "@SUM(A1)", "\tx"].map((key) => ({ key, revenue: null }));
  assert.equal(toCsv(columns, rows),
    "key,revenue\r\n\"'=1+1\",\r\n\"'+33 1\",\r\n\"'-x\",\r\n\"'@SUM(A1)\",\r\n\"'\tx\",\r\n");
});

test("absent values are empty cells", () => {
  assert.equal(toCsv(columns, [{ key: undefined, revenue: null }]), "key,revenue\r\n,\r\n");
});
