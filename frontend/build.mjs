// Bundles the portal pages' scripts (frontend/src) with their npm dependencies into static/portal/dist,
// which whitenoise serves. The output is built at install (run.sh, test.sh), never committed.
import { build } from "esbuild";

await build({
  entryPoints: ["portal", "health", "job", "editor", "function", "run"].map((name) => `frontend/src/${name}.js`),
  outdir: "static/portal/dist",
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: true,
  target: ["es2020"],
  logLevel: "warning",
});
