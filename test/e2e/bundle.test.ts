/**
 * The bundled plugin folder (scripts/bundlePlugin.ts), without OpenClaw: self-contained, and the same plugin.
 * OpenClaw copies a plugin's declared dependencies on every instance it starts, so the folder must declare none
 * and its files must import nothing but Node built-ins (and the entry, the library beside it). OpenClaw also loads
 * every instance from a fresh copy of the folder, so copies must share one loaded library.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import { isBuiltin } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { bundlePlugin } from "../../scripts/bundlePlugin.js"
import { type Handle, startReferenceKernel } from "../../src/testing/ReferenceKernel.js"

const projectRoot = path.resolve(import.meta.dirname, "../..")
let dir: string
let kernel: Handle

beforeAll(async () => {
  if (!existsSync(path.join(projectRoot, "dist/openclaw/index.js"))) {
    throw new Error("dist/ is missing: run `npm run build` first (npm test does)")
  }
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "effect-aios-bundle-"))
  await bundlePlugin(dir)
  kernel = await startReferenceKernel()
})

afterAll(async () => {
  await kernel?.close()
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true })
})

describe("the bundled OpenClaw plugin folder", () => {
  it("declares no dependencies, names its entry, and carries the manifest", () => {
    const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as Record<string, unknown>
    expect(pkg["dependencies"]).toBeUndefined()
    expect(pkg["peerDependencies"]).toBeUndefined()
    expect(pkg["optionalDependencies"]).toBeUndefined()
    expect(pkg).toMatchObject({ type: "module", openclaw: { extensions: ["./index.js"] } })
    expect(readFileSync(path.join(dir, "openclaw.plugin.json"), "utf8")).toBe(
      readFileSync(path.join(projectRoot, "openclaw.plugin.json"), "utf8")
    )
  })

  it.each(["index.js", "aios.js"])("%s imports only Node built-ins (and the entry, the library)", (file) => {
    const source = readFileSync(path.join(dir, file), "utf8")
    const specifiers = [
      ...source.matchAll(/\bfrom\s*"([^"]+)"/g),
      ...source.matchAll(/\bimport\s*"([^"]+)"/g),
      ...source.matchAll(/\bimport\s*\(\s*"([^"]+)"\s*\)/g),
      // Also esbuild's `__require("…")`.
      ...source.matchAll(/require\(\s*"([^"]+)"\s*\)/g)
    ].map((m) => m[1]!)
    // debug's optional colour support, tried inside try/catch.
    const outside = specifiers.filter((s) => !isBuiltin(s) && s !== "supports-color" && !(file === "index.js" && s === "./aios.js"))
    expect(specifiers.length).toBeGreaterThan(0)
    expect(outside).toEqual([])
  })

  it("loads the library once for any number of copies of the folder, and again for another build", async () => {
    const copies = await Promise.all([1, 2].map(async (n) => {
      const copy = path.join(dir, `copy-${n}`)
      await fs.mkdir(copy)
      for (const file of ["index.js", "aios.js", "package.json"]) await fs.copyFile(path.join(dir, file), path.join(copy, file))
      return copy
    }))
    const load = async (folder: string) =>
      ((await import(pathToFileURL(path.join(folder, "index.js")).href)) as { default: unknown }).default
    const [first, second] = [await load(copies[0]!), await load(copies[1]!)]
    expect(first).toBeDefined()
    expect(second).toBe(first)
    // A different library (another build) is not taken for this one.
    await fs.appendFile(path.join(copies[1]!, "aios.js"), "\n// another build\n")
    const rebuilt = path.join(dir, "copy-3")
    await fs.mkdir(rebuilt)
    await fs.copyFile(path.join(copies[1]!, "aios.js"), path.join(rebuilt, "aios.js"))
    await fs.copyFile(path.join(dir, "package.json"), path.join(rebuilt, "package.json"))
    await fs.writeFile(
      path.join(rebuilt, "index.js"),
      readFileSync(path.join(dir, "index.js"), "utf8").replace(/openclaw-plugin\/[0-9a-f]+/, "openclaw-plugin/0000000000000000")
    )
    const other = await load(rebuilt)
    expect((other as { id: string }).id).toBe("aios")
    expect(other).not.toBe(first)
  })

  it("is the plugin: register gives the aios provider, whose stream answers from the kernel", async () => {
    const entry = (await import(pathToFileURL(path.join(dir, "index.js")).href)) as {
      default: { id: string; register: (api: unknown) => void }
    }
    expect(entry.default.id).toBe("aios")
    const providers: Array<Record<string, unknown>> = []
    const disposers: Array<() => unknown> = []
    entry.default.register({
      pluginConfig: { baseUrl: kernel.url },
      logger: { info: () => {}, warn: () => {}, error: () => {} },
      registerProvider: (p: Record<string, unknown>) => providers.push(p),
      lifecycle: { onDispose: (d: () => unknown) => disposers.push(d) }
    })
    expect(providers.map((p) => p["id"])).toEqual(["aios"])
    const provider = providers[0] as {
      createStreamFn: (ctx: unknown) => (model: unknown, context: unknown) => { result: () => Promise<{ content: Array<{ text?: string }> }> }
    }
    const stream = provider.createStreamFn({ provider: "aios", modelId: "echo" })(
      { id: "echo", provider: "aios", api: "openai-completions" },
      { messages: [{ role: "user", content: "bundled hello", timestamp: 0 }] }
    )
    const message = await stream.result()
    expect(message.content.map((c) => c.text ?? "").join("")).toBe("bundled hello")
    expect(disposers).toHaveLength(1)
    await Promise.all(disposers.map((d) => d()))
  })
})
