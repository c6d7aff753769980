// Bundles src/ into ../../api/static/graphiql/ (graphiql.js, graphiql.css): `make web`.
// Another folder may be given (the test that checks the committed files builds into one).
import { build } from "esbuild";

const outdir = process.argv[2] ?? "../../api/static/graphiql";

await build({
  entryPoints: { graphiql: "src/index.jsx" },
  outdir,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  jsx: "automatic",
  loader: { ".woff": "dataurl", ".woff2": "dataurl", ".svg": "dataurl" },
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "linked",
  logLevel: "info",
});
