/**
 * The OpenClaw config on disk (`src/cli/ConfigFile.ts`) and the `openclaw setup` / `openclaw remove` commands on
 * arbitrary config files against a real ReferenceKernel: atomic writes, backups, the setup record.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fc from "fast-check"
import JSON5 from "json5"
import { chmod, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises"
import * as Path from "node:path"
import * as ConfigFile from "../src/cli/ConfigFile.js"
import * as OpenClawConfig from "../src/openclaw/config.js"
import { rowFor } from "../src/openclaw/models.js"
import { cliFixture, deadUrl } from "./cliFixture.js"
import { configArb } from "./openclaw.config.arbitraries.js"

describe("ConfigFile.resolvePath", () => {
  const resolve = (env: Record<string, string>, flag?: string) =>
    ConfigFile.resolvePath(Option.fromNullable(flag)).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    )
  it.effect("--config, else $OPENCLAW_CONFIG_PATH, else $OPENCLAW_STATE_DIR/openclaw.json, else ~/.openclaw/openclaw.json", () =>
    Effect.gen(function*() {
      const all = { OPENCLAW_CONFIG_PATH: "/etc/oc.json", OPENCLAW_STATE_DIR: "~/state", HOME: "/home/u" }
      expect(yield* resolve(all, "~/flag.json")).toBe("/home/u/flag.json")
      expect(yield* resolve(all)).toBe("/etc/oc.json")
      expect(yield* resolve({ ...all, OPENCLAW_CONFIG_PATH: " " })).toBe("/home/u/state/openclaw.json")
      expect(yield* resolve({ HOME: "/home/u" })).toBe("/home/u/.openclaw/openclaw.json")
      expect(yield* resolve({ HOME: "/home/u", OPENCLAW_HOME: "/oc-home" })).toBe("/oc-home/.openclaw/openclaw.json")
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// The commands on files
// ---------------------------------------------------------------------------------------------------------------

const { kernel, root, pluginDir, cli } = cliFixture({ prefix: "effect-aios-setup-", plugin: true, home: true })

let caseNo = 0
/** A fresh folder holding `openclaw.json` with `text` (or no file). */
const configFile = (text: string | undefined) =>
  Effect.promise(async () => {
    const dir = Path.join(root, `case-${++caseNo}`)
    await mkdir(dir, { recursive: true })
    const file = Path.join(dir, "openclaw.json")
    if (text !== undefined) await writeFile(file, text)
    return { dir, file }
  })
const read = (file: string) => Effect.promise(() => readFile(file, "utf8"))
const list = (dir: string) => Effect.promise(() => readdir(dir).then((names) => names.sort()))
const setupArgs = (file: string, ...extra: Array<string>) =>
  ["openclaw", "setup", "--config", file, "--url", kernel.url, "--plugin-dir", pluginDir, ...extra]

/** A config as a user may have written it: JSON, or JSON5 with comments and trailing commas. */
const asText = (doc: OpenClawConfig.JsonObject, json5: boolean) =>
  json5 ? `// my OpenClaw config\n${JSON5.stringify(doc, null, 2).replace(/\n}$/, ",\n}")}\n` : `${JSON.stringify(doc, null, 2)}\n`

describe("effect-aios openclaw setup / remove (files)", () => {
  it.live.prop(
    "setup then remove leaves any config semantically identical; a second setup changes no byte and makes no backup",
    [configArb, fc.boolean()],
    ([doc, json5]) =>
      Effect.gen(function*() {
        const original = asText(doc, json5)
        const { dir, file } = yield* configFile(original)
        const first = yield* cli(setupArgs(file))
        if (first.code !== 0) {
          // Refused (a key of the wrong type): nothing written, no backup, and the message names the file.
          expect(first.stderr).toContain(file)
          expect(yield* read(file)).toBe(original)
          expect(yield* list(dir)).toEqual(["openclaw.json"])
          return
        }
        const afterFirst = yield* read(file)
        const listing = yield* list(dir)
        const second = yield* cli(setupArgs(file))
        expect(second.code).toBe(0)
        expect(second.stdout).toContain("nothing changed")
        expect(yield* read(file)).toBe(afterFirst)
        expect(yield* list(dir)).toEqual(listing)

        const removed = yield* cli(["openclaw", "remove", "--config", file])
        expect(removed.code).toBe(0)
        expect(JSON5.parse(yield* read(file))).toStrictEqual(JSON5.parse(original))
        expect((yield* list(dir)).filter((n) => n.endsWith(".effect-aios.json"))).toEqual([])
      }),
    { fastCheck: { numRuns: 40 } }
  )

  it.live("a missing config: setup creates it with what the plugin needs; remove deletes it again", () =>
    Effect.gen(function*() {
      const { dir, file } = yield* configFile(undefined)
      const r = yield* cli(setupArgs(file))
      expect(r.code).toBe(0)
      const written = JSON.parse(yield* read(file)) as OpenClawConfig.JsonObject
      expect(written).toStrictEqual({
        plugins: {
          load: { paths: [pluginDir] },
          entries: { aios: { enabled: true, config: { baseUrl: kernel.url } } }
        },
        models: {
          providers: {
            aios: {
              baseUrl: kernel.url,
              api: "openai-completions",
              models: ["echo", "tool-user"].map((m) => ({ ...rowFor({ models: {} }, m) }))
            }
          }
        }
      })
      expect((yield* Effect.promise(() => stat(file))).mode & 0o777).toBe(0o600)
      expect(r.stdout).toContain("openclaw gateway restart")
      const removed = yield* cli(["openclaw", "remove", "--config", file])
      expect(removed.code).toBe(0)
      expect((yield* list(dir)).filter((n) => !n.endsWith(".bak"))).toEqual([])
    }))

  it.live("JSON5 in, JSON out: the original bytes are in the backup, the mode is kept", () =>
    Effect.gen(function*() {
      const original = "// comment\n{\n  gateway: { port: 18789, },\n  plugins: { allow: ['memory'] },\n}\n"
      const { dir, file } = yield* configFile(original)
      yield* Effect.promise(() => chmod(file, 0o640))
      const r = yield* cli(setupArgs(file))
      expect(r.code).toBe(0)
      expect(r.stdout).toContain("JSON5")
      const written = JSON.parse(yield* read(file)) as { gateway: unknown; plugins: { allow: Array<string> } }
      expect(written.gateway).toEqual({ port: 18789 })
      expect(written.plugins.allow).toEqual(["memory", "aios"])
      const backups = (yield* list(dir)).filter((n) => n.endsWith(".bak"))
      expect(backups).toHaveLength(1)
      expect(yield* read(Path.join(dir, backups[0]!))).toBe(original)
      expect((yield* Effect.promise(() => stat(file))).mode & 0o777).toBe(0o640)
      expect(r.stdout).toContain(backups[0])
    }))

  it.live("a kernel that is down: exit code 1 naming the URL; the file is untouched", () =>
    Effect.gen(function*() {
      const { dir, file } = yield* configFile("{}\n")
      const url = yield* Effect.promise(deadUrl)
      const r = yield* cli(["openclaw", "setup", "--config", file, "--url", url, "--plugin-dir", pluginDir])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(url)
      expect(r.stderr).toContain("Nothing was written")
      expect(r.stderr).not.toMatch(/^\s+at /m)
      expect(yield* list(dir)).toEqual(["openclaw.json"])
    }))

  it.live("a kernel without models, or a folder without the plugin: refused, nothing written", () =>
    Effect.gen(function*() {
      const { dir, file } = yield* configFile("{}\n")
      kernel.setModels([])
      const empty = yield* cli(setupArgs(file))
      expect(empty.code).toBe(1)
      expect(empty.stderr).toContain("serves no models")
      kernel.setModels([{ name: "echo" }])
      const notPlugin = yield* cli(["openclaw", "setup", "--config", file, "--url", kernel.url, "--plugin-dir", root])
      expect(notPlugin.code).toBe(1)
      expect(notPlugin.stderr).toContain(`${root} holds no "aios" OpenClaw plugin`)
      expect(yield* list(dir)).toEqual(["openclaw.json"])
    }))

  it.live("a config that is not JSON5: exit code 1 naming the file and the position", () =>
    Effect.gen(function*() {
      const { file } = yield* configFile("{ plugins: [1, }\n")
      const r = yield* cli(setupArgs(file))
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(file)
      expect(r.stderr).toMatch(/1:\d+/)
    }))

  it.live("without --url: AIOS_URL, else the plugin's configured baseUrl", () =>
    Effect.gen(function*() {
      const { file } = yield* configFile(JSON.stringify({ plugins: { entries: { aios: { config: { baseUrl: kernel.url } } } } }))
      const fromConfig = yield* cli(["openclaw", "setup", "--config", file, "--plugin-dir", pluginDir])
      expect(fromConfig.code).toBe(0)
      expect(kernel.count("/core/llms/list")).toBe(1)
      const { file: other } = yield* configFile("{}")
      const fromEnv = yield* cli(["openclaw", "setup", "--config", other, "--plugin-dir", pluginDir], { AIOS_URL: kernel.url })
      expect(fromEnv.code).toBe(0)
      expect(OpenClawConfig.getAt(JSON.parse(yield* read(other)), ["plugins", "entries", "aios", "config", "baseUrl"])).toBe(kernel.url)
    }))

  it.live("a new kernel model: the next setup adds it; remove still restores the original", () =>
    Effect.gen(function*() {
      const original = JSON.stringify({ agents: { defaults: { models: { "anthropic/claude": { alias: "c" } } } } })
      const { file } = yield* configFile(original)
      expect((yield* cli(setupArgs(file))).code).toBe(0)
      kernel.setModels([{ name: "echo" }, { name: "tool-user" }, { name: "brand-new" }])
      const again = yield* cli(setupArgs(file))
      expect(again.code).toBe(0)
      const doc = JSON.parse(yield* read(file)) as OpenClawConfig.JsonObject
      expect(Object.keys(OpenClawConfig.getAt(doc, ["agents", "defaults", "models"]) as object)).toEqual([
        "anthropic/claude",
        "aios/echo",
        "aios/tool-user",
        "aios/brand-new"
      ])
      expect((yield* cli(["openclaw", "remove", "--config", file])).code).toBe(0)
      expect(JSON.parse(yield* read(file))).toStrictEqual(JSON.parse(original))
    }))

  it.live("remove without a setup record: exit code 1, the file is untouched", () =>
    Effect.gen(function*() {
      const { dir, file } = yield* configFile("{ \"plugins\": {} }\n")
      const r = yield* cli(["openclaw", "remove", "--config", file])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(ConfigFile.recordPath(file))
      expect(yield* read(file)).toBe("{ \"plugins\": {} }\n")
      expect(yield* list(dir)).toEqual(["openclaw.json"])
    }))

  it.live("remove keeps a value the user changed after setup, and says so", () =>
    Effect.gen(function*() {
      const { file } = yield* configFile("{}")
      expect((yield* cli(setupArgs(file))).code).toBe(0)
      const doc = JSON.parse(yield* read(file)) as { models: { providers: { aios: { baseUrl: string } } } }
      doc.models.providers.aios.baseUrl = "http://127.0.0.1:1"
      yield* Effect.promise(() => writeFile(file, JSON.stringify(doc)))
      const r = yield* cli(["openclaw", "remove", "--config", file])
      expect(r.code).toBe(0)
      expect(r.stderr).toContain("kept models.providers.aios.baseUrl (changed since setup)")
      expect(JSON.parse(yield* read(file))).toStrictEqual({ models: { providers: { aios: { baseUrl: "http://127.0.0.1:1" } } } })
    }))
})
