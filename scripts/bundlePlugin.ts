/**
 * Builds `dist/openclaw-plugin/`: the OpenClaw plugin as one self-contained folder — the library bundled into a
 * single `aios.js` (effect and the rest inlined; only Node built-ins imported), a small entry `index.js` that loads
 * it, a `package.json` that declares no dependencies, and `openclaw.plugin.json`.
 *
 * Why: OpenClaw 2026.9.6 copies and hashes a plugin's declared dependencies, whole, every time it starts a plugin
 * instance (`capturePluginGenerationArtifact`), and `api.runtime.llm.complete` starts one per call, each from a
 * fresh copy of the folder. From the package root (effect, @effect/platform, … in `dependencies`) that is seconds
 * of blocked event loop per call; from this folder there is nothing to copy but two files. And since every copy has
 * a new path, Node would load (parse, run and keep) the library again for each call: the entry loads it once per
 * process and build instead, keyed by its content hash. Each plugin instance still builds and disposes its own
 * runtime (`register`, `dispose`); only the code is shared.
 *
 * Run after `tsc` (it bundles `dist/openclaw/index.js`): `tsx scripts/bundlePlugin.ts [outDir]`.
 */
import { build } from "esbuild"
import { createHash } from "node:crypto"
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { isBuiltin } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))

/** Optional modules a bundled dependency tries inside `try { require(…) }` and does without (debug's colours). */
const optional = new Set(["supports-color"])

/** Where the folder goes by default. */
export const defaultOutDir = path.join(root, "dist", "openclaw-plugin")

/** The bundled library, beside the entry. */
const LIBRARY = "aios.js"

/** The entry: the library, loaded once per process for a given build (`id`, its content hash). */
const entrySource = (id: string): string =>
  [
    "// The effect-aios OpenClaw plugin. The library is loaded once per process and build, not once per copy of this",
    "// folder (OpenClaw makes one per plugin instance): see scripts/bundlePlugin.ts in effect-aios.",
    "import { createRequire } from \"node:module\";",
    `const library = Symbol.for(${JSON.stringify(`effect-aios/openclaw-plugin/${id}`)});`,
    `export default (globalThis[library] ??= createRequire(import.meta.url)(${JSON.stringify(`./${LIBRARY}`)})).default;`,
    ""
  ].join("\n")

/** Bundles the plugin into `outDir`; returns the library's size in bytes. */
export const bundlePlugin = async (outDir: string = defaultOutDir): Promise<number> => {
  const entry = path.join(root, "dist", "openclaw", "index.js")
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { name: string; version: string }
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  const result = await build({
    entryPoints: [entry],
    outfile: path.join(outDir, LIBRARY),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    // Fewer bytes to copy and hash per plugin instance (and to parse, once per process). `keepNames` keeps the
    // names of classes and functions (error names, stack traces) through the renaming.
    minifyWhitespace: true,
    minifySyntax: true,
    minifyIdentifiers: true,
    keepNames: true,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
    // Bundled CommonJS modules call `require` for Node built-ins; an ES module has none of its own.
    banner: { js: "import { createRequire as __aiosCreateRequire } from \"node:module\"; const require = __aiosCreateRequire(import.meta.url);" }
  })
  const outside = Object.values(result.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !isBuiltin(i.path) && !optional.has(i.path))
  if (outside.length > 0) {
    throw new Error(`the plugin bundle imports packages it does not contain: ${outside.map((i) => i.path).join(", ")}`)
  }
  writeFileSync(
    path.join(outDir, "package.json"),
    `${
      JSON.stringify(
        {
          name: `${pkg.name}-openclaw-plugin`,
          version: pkg.version,
          private: true,
          description: "The effect-aios OpenClaw plugin, bundled: no dependencies to install or copy.",
          type: "module",
          openclaw: { extensions: ["./index.js"], providers: ["aios"] }
        },
        null,
        2
      )
    }\n`
  )
  copyFileSync(path.join(root, "openclaw.plugin.json"), path.join(outDir, "openclaw.plugin.json"))
  const library = readFileSync(path.join(outDir, LIBRARY))
  writeFileSync(path.join(outDir, "index.js"), entrySource(createHash("sha256").update(library).digest("hex").slice(0, 16)))
  return library.length
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] !== undefined ? path.resolve(process.argv[2]) : defaultOutDir
  const bytes = await bundlePlugin(outDir)
  console.log(`wrote ${path.relative(process.cwd(), outDir) || "."}/ (${LIBRARY} ${(bytes / 1024).toFixed(0)} KiB)`)
}
