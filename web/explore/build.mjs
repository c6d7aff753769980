// Build the explore page into the Python package (api/static/explore), from the pinned packages
// of package-lock.json: `make web` (npm ci, then this).
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";

const out = new URL("../../api/static/explore/", import.meta.url);
await mkdir(out, { recursive: true });
await build({
  entryPoints: { explore: "src/main.js" },
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: false,
  target: ["chrome110", "firefox110", "safari16"],
  outdir: out.pathname,
  legalComments: "linked",
  logLevel: "info",
});
await build({ entryPoints: { explore: "src/style.css" }, bundle: true, minify: true, outdir: out.pathname, logLevel: "info" });
await copyFile(new URL("index.html", import.meta.url), new URL("index.html", out));
