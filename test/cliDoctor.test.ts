/**
 * `effect-aios doctor`: passes on a set-up machine, finds each planted fault (with a fix that works), and
 * exits 0 only when every check passes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import * as Path from "node:path"
import { cliFixture, deadUrl } from "./cliFixture.js"

const { kernel, root, pluginDir, cli } = cliFixture({ prefix: "effect-aios-doctor-", plugin: true, home: true })

type Doc = Record<string, any>
let caseNo = 0
/** A config set up by `effect-aios openclaw setup`, then edited by `plant`. */
const setUp = (plant: (doc: Doc) => void = () => {}) =>
  Effect.gen(function*() {
    const file = Path.join(root, `case-${++caseNo}`, "openclaw.json")
    const r = yield* cli(["openclaw", "setup", "--config", file, "--url", kernel.url, "--plugin-dir", pluginDir])
    expect(r.code).toBe(0)
    const doc = JSON.parse(yield* Effect.promise(() => readFile(file, "utf8"))) as Doc
    plant(doc)
    yield* Effect.promise(() => writeFile(file, JSON.stringify(doc, null, 2)))
    return file
  })

/** The doctor's verdict per check: `{ kernel: true, models: false, … }`, with each failed check's fix. */
const doctor = (file: string, env: Record<string, string> = {}, extra: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const r = yield* cli(["doctor", "--config", file, ...extra], env)
    const verdicts: Record<string, boolean> = {}
    const fixes: Record<string, string> = {}
    let last = ""
    for (const line of r.stdout.split("\n")) {
      const head = /^([✓✗]) (\S+(?: refs)?)\s/.exec(line)
      if (head) {
        last = head[2]!
        verdicts[last] = head[1] === "✓"
      }
      const fix = /^\s+fix: (.*)$/.exec(line)
      if (fix) fixes[last] = fix[1]!
    }
    return { ...r, verdicts, fixes }
  })

const allPass = { kernel: true, models: true, config: true, plugin: true, auth: true, "model refs": true }

/** Runs a fix the doctor printed, when it is one of ours. */
const applyFix = (fix: string) => {
  expect(fix.startsWith("effect-aios ")).toBe(true)
  return cli([...fix.slice("effect-aios ".length).split(" "), "--plugin-dir", pluginDir])
}

describe("doctor", () => {
  it.live("a machine set up by `openclaw setup`: six checks pass, in order, exit code 0", () =>
    Effect.gen(function*() {
      const file = yield* setUp()
      const r = yield* doctor(file)
      expect(r.verdicts).toEqual(allPass)
      expect(Object.keys(r.verdicts)).toEqual(Object.keys(allPass))
      expect(r.code).toBe(0)
      expect(r.stdout).toContain("All checks passed")
    }))

  it.live("kernel down: kernel and models fail, naming the URL; exit code 1", () =>
    Effect.gen(function*() {
      const file = yield* setUp()
      const url = yield* Effect.promise(deadUrl)
      const r = yield* doctor(file, {}, ["--url", url])
      expect(r.verdicts).toEqual({ ...allPass, kernel: false, models: false, "model refs": false })
      expect(r.stdout).toContain(url)
      expect(r.fixes["kernel"]).toContain("effect-aios kernel serve")
      expect(r.code).toBe(1)
      expect(r.stderr).toBe("")
    }))

  it.live("a kernel that serves no models", () =>
    Effect.gen(function*() {
      const file = yield* setUp()
      kernel.setModels([])
      const r = yield* doctor(file)
      expect(r.verdicts).toEqual({ ...allPass, models: false, "model refs": false })
      expect(r.stdout).toContain(`${kernel.url} serves no models`)
      expect(r.code).toBe(1)
    }))

  it.live("a pool (kernels in the plugin config): a ✓ or ✗ line per kernel with its URL; models are the union", () =>
    Effect.gen(function*() {
      const url = yield* Effect.promise(deadUrl)
      const up = yield* doctor(yield* setUp((d) => (d.plugins.entries.aios.config.kernels = [kernel.url])))
      expect(up.verdicts).toEqual(allPass)
      expect(up.stdout).toContain("1 of 1 kernels up")
      expect(up.stdout).toMatch(new RegExp(`^\\s+✓ ${kernel.url} is up`, "m"))
      const file = yield* setUp((d) => (d.plugins.entries.aios.config.kernels = [kernel.url, url]))
      const r = yield* doctor(file)
      expect(r.verdicts).toEqual({ ...allPass, kernel: false })
      expect(r.stdout).toContain("1 of 2 kernels up")
      expect(r.stdout).toMatch(new RegExp(`^\\s+✓ ${kernel.url} is up`, "m"))
      expect(r.stdout).toMatch(new RegExp(`^\\s+✗ ${url}: Cannot reach`, "m"))
      expect(r.fixes["kernel"]).toBe(`start the kernel(s) at ${url}, or remove them from kernels`)
      expect(r.stdout).toContain("2 model(s): echo, tool-user")
      expect(r.code).toBe(1)
      expect(r.stderr).toBe("")
      // --url names one kernel: the list is not consulted.
      expect((yield* doctor(file, {}, ["--url", kernel.url])).verdicts).toEqual(allPass)
    }))

  it.live("no OpenClaw config: the fix (setup) creates one and the doctor passes", () =>
    Effect.gen(function*() {
      const file = Path.join(root, `case-${++caseNo}`, "openclaw.json")
      const r = yield* doctor(file, {}, ["--url", kernel.url])
      expect(r.verdicts).toEqual({ ...allPass, config: false, plugin: false, auth: false, "model refs": false })
      expect(r.stdout).toContain(`no OpenClaw config at ${file}`)
      expect(r.code).toBe(1)
      expect((yield* applyFix(r.fixes["config"]!)).code).toBe(0)
      expect((yield* doctor(file)).code).toBe(0)
    }))

  const pluginFaults: ReadonlyArray<[string, (doc: Doc) => void, string]> = [
    ["not in the load paths", (d) => (d.plugins.load.paths = ["/somewhere/else"]), "no folder in plugins.load.paths holds the aios plugin"],
    ["disabled", (d) => (d.plugins.entries.aios.enabled = false), "plugins.entries.aios.enabled is not true"],
    ["left out of an allow-list", (d) => (d.plugins.allow = ["memory"]), "plugins.allow does not list \"aios\""]
  ]
  for (const [name, plant, message] of pluginFaults) {
    it.live(`plugin ${name}: the plugin check fails; its fix makes the doctor pass`, () =>
      Effect.gen(function*() {
        const file = yield* setUp(plant)
        const r = yield* doctor(file)
        expect(r.verdicts).toEqual({ ...allPass, plugin: false })
        expect(r.stdout).toContain(message)
        expect(r.code).toBe(1)
        expect((yield* applyFix(r.fixes["plugin"]!)).code).toBe(0)
        expect((yield* doctor(file)).verdicts).toEqual(allPass)
      }))
  }

  it.live("plugin blocked by plugins.deny or plugins.enabled = false: says which key to edit", () =>
    Effect.gen(function*() {
      const denied = yield* doctor(yield* setUp((d) => (d.plugins.deny = ["aios"])))
      expect(denied.verdicts).toEqual({ ...allPass, plugin: false })
      expect(denied.fixes["plugin"]).toContain("plugins.deny")
      const off = yield* doctor(yield* setUp((d) => (d.plugins.enabled = false)))
      expect(off.verdicts).toEqual({ ...allPass, plugin: false })
      expect(off.fixes["plugin"]).toContain("plugins.enabled")
    }))

  it.live("plugin entry not built: the fix is npm run build in the plugin folder", () =>
    Effect.gen(function*() {
      const unbuilt = Path.join(root, "unbuilt-plugin")
      yield* Effect.promise(async () => {
        await mkdir(unbuilt, { recursive: true })
        await writeFile(Path.join(unbuilt, "openclaw.plugin.json"), JSON.stringify({ id: "aios" }))
        await writeFile(Path.join(unbuilt, "package.json"), JSON.stringify({ openclaw: { extensions: ["./dist/index.js"] } }))
      })
      const r = yield* doctor(yield* setUp((d) => (d.plugins.load.paths = [unbuilt])))
      expect(r.verdicts).toEqual({ ...allPass, plugin: false })
      expect(r.fixes["plugin"]).toBe(`cd ${unbuilt} && npm run build`)
    }))

  it.live("no auth (no AIOS_API_KEY, no loopback provider entry); AIOS_API_KEY alone is enough", () =>
    Effect.gen(function*() {
      const file = yield* setUp((d) => {
        delete d.models
      })
      const r = yield* doctor(file)
      expect(r.verdicts).toEqual({ ...allPass, auth: false })
      expect(r.stdout).toContain("AIOS_API_KEY is not set and there is no models.providers.aios entry")
      expect(r.code).toBe(1)
      expect((yield* doctor(file, { AIOS_API_KEY: "local" })).verdicts).toEqual(allPass)
      expect((yield* applyFix(r.fixes["auth"]!)).code).toBe(0)
      expect((yield* doctor(file)).verdicts).toEqual(allPass)
    }))

  it.live("a provider entry OpenClaw would not give the local key to (empty models)", () =>
    Effect.gen(function*() {
      const r = yield* doctor(yield* setUp((d) => (d.models.providers.aios.models = [])))
      expect(r.verdicts.auth).toBe(false)
      expect(r.stdout).toContain("models.providers.aios.models is empty")
    }))

  it.live("missing aios/<model> entries in a model allow-list, or a kernel model the provider entry lacks", () =>
    Effect.gen(function*() {
      const file = yield* setUp((d) => (d.agents = { defaults: { models: { "anthropic/claude": {} } } }))
      const r = yield* doctor(file)
      expect(r.verdicts).toEqual({ ...allPass, "model refs": false })
      expect(r.stdout).toContain("agents.defaults.models restricts models and lacks aios/echo, aios/tool-user")
      expect((yield* applyFix(r.fixes["model refs"]!)).code).toBe(0)
      expect((yield* doctor(file)).verdicts).toEqual(allPass)

      kernel.setModels([{ name: "echo" }, { name: "tool-user" }, { name: "newcomer" }])
      const grown = yield* doctor(file)
      expect(grown.verdicts).toEqual({ ...allPass, "model refs": false })
      expect(grown.stdout).toContain("lacks aios/newcomer")
      expect(grown.stdout).toContain("models.providers.aios.models lacks newcomer")
    }))

  it.live("checks the kernel the plugin will use (its configured baseUrl), and notes an AIOS_URL the plugin ignores", () =>
    Effect.gen(function*() {
      const file = yield* setUp()
      const elsewhere = yield* Effect.promise(deadUrl)
      const r = yield* doctor(file, { AIOS_URL: elsewhere })
      expect(r.verdicts).toEqual(allPass)
      expect(r.stdout).toContain(`${kernel.url} is up`)
      expect(r.stdout).toContain(`the plugin does not read AIOS_URL (${elsewhere})`)
      expect(r.code).toBe(0)
    }))

  it.live("a config that is not JSON5: the config check fails naming the file", () =>
    Effect.gen(function*() {
      const file = Path.join(root, `case-${++caseNo}.json`)
      yield* Effect.promise(() => writeFile(file, "{ oops"))
      const r = yield* doctor(file, {}, ["--url", kernel.url])
      expect(r.verdicts.config).toBe(false)
      expect(r.stdout).toContain(file)
      expect(r.code).toBe(1)
    }))
})
