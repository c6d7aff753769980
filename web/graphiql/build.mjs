// Bundles src/ into ../../api/static/graphiql/ (graphiql.js, graphiql.css): `make web`.
import { build } from "esbuild";

await build({
  entryPoints: { graphiql: "src/index.jsx" },
  outdir: "../../api/static/graphiql",
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
