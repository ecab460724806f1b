// Builds the console into dist/: index.html, app.js, app.css, minified.
// The output is deterministic (no timestamps, hashes or source maps in it),
// so CI can rebuild and `git diff --exit-code console/dist`.
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await build({
  absWorkingDir: here,
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome120", "firefox120", "safari17"],
  platform: "browser",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  charset: "utf8",
  sourcemap: false,
  metafile: false,
  logLevel: "warning",
  outdir: dist,
  define: { "process.env.NODE_ENV": '"production"' },
});

await build({
  absWorkingDir: here,
  entryPoints: { app: "src/app.css" },
  bundle: true,
  minify: true,
  charset: "utf8",
  legalComments: "none",
  logLevel: "warning",
  outdir: dist,
});

await copyFile(join(here, "src/index.html"), join(dist, "index.html"));

const files = (await readdir(dist)).sort();
const want = ["app.css", "app.js", "index.html"];
if (files.join() !== want.join()) {
  throw new Error(`dist/ holds ${files.join(", ")}; expected exactly ${want.join(", ")}`);
}
console.log(`console/dist: ${files.join(", ")}`);
