/**
 * The pure edits of `openclaw.json` (`src/openclaw/config.ts`): `setup` then `remove` on arbitrary documents.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import * as AiosConfig from "../src/AiosConfig.js"
import * as OpenClawConfig from "../src/openclaw/config.js"
import { configArb, inputArb, PLUGIN_DIR } from "./openclaw.config.arbitraries.js"

describe("openclaw/config setup / remove", () => {
  it.prop("setup then remove gives back the document; a failed setup leaves it untouched", [configArb, inputArb], ([doc, input]) => {
    const snapshot = structuredClone(doc)
    const planned = OpenClawConfig.setup(doc, input)
    expect(doc).toStrictEqual(snapshot)
    if (Either.isLeft(planned)) {
      expect(planned.left.issues.length).toBeGreaterThan(0)
      return
    }
    expect(OpenClawConfig.remove(planned.right.doc, planned.right.changes)).toStrictEqual({ doc: snapshot, kept: [] })
  }, { fastCheck: { numRuns: 400 } })

  it.prop("a second setup changes nothing", [configArb, inputArb], ([doc, input]) => {
    const first = OpenClawConfig.setup(doc, input)
    if (Either.isLeft(first)) return
    const second = OpenClawConfig.setup(first.right.doc, input)
    expect(second).toStrictEqual(Either.right({ doc: first.right.doc, changes: [] }))
  }, { fastCheck: { numRuns: 300 } })

  it.prop("two setups with different inputs, then one remove of the merged record, give back the document", [
    configArb,
    inputArb,
    inputArb
  ], ([doc, a, b]) => {
    const first = OpenClawConfig.setup(doc, a)
    if (Either.isLeft(first)) return
    const second = OpenClawConfig.setup(first.right.doc, b)
    if (Either.isLeft(second)) return
    const merged = OpenClawConfig.mergeChanges(first.right.changes, second.right.changes)
    expect(OpenClawConfig.remove(second.right.doc, merged).doc).toStrictEqual(doc)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("after setup, OpenClaw would load the plugin, authorize it (loopback) and allow every aios/<model>", [
    configArb,
    inputArb
  ], ([doc, input]) => {
    const planned = OpenClawConfig.setup(doc, input)
    if (Either.isLeft(planned)) return
    const after = planned.right.doc
    const paths = OpenClawConfig.getAt(after, ["plugins", "load", "paths"]) as Array<unknown>
    expect(paths.filter((p) => typeof p === "string" && OpenClawConfig.samePath(p, PLUGIN_DIR)).length).toBeGreaterThan(0)
    expect(OpenClawConfig.getAt(after, ["plugins", "entries", "aios", "enabled"])).toBe(true)
    const allow = OpenClawConfig.pluginAllowList(after)
    if (allow !== undefined) expect(allow).toContain("aios")
    const configured = OpenClawConfig.getAt(after, ["plugins", "entries", "aios", "config", "baseUrl"])
    // The plugin decodes its baseUrl without trailing slashes.
    expect(String(configured ?? AiosConfig.defaults.baseUrl).replace(/\/+$/, "")).toBe(input.baseUrl)
    if (input.provider !== undefined) expect(OpenClawConfig.providerAuthProblem(after)).toBeUndefined()
    const restriction = OpenClawConfig.modelRestriction(after)
    for (const m of input.models) expect(OpenClawConfig.allowsModel(restriction, `aios/${m}`)).toBe(true)
    // No allow-list is created where there was none: that would block the user's other plugins and models.
    if (OpenClawConfig.pluginAllowList(doc) === undefined) expect(OpenClawConfig.getAt(after, ["plugins", "allow"])).toStrictEqual(OpenClawConfig.getAt(doc, ["plugins", "allow"]))
    if (OpenClawConfig.modelRestriction(doc)._tag === "None") expect(restriction._tag).toBe("None")
  }, { fastCheck: { numRuns: 300 } })

  it("remove keeps what was changed since setup and says so; removes what is still as written", () => {
    const input = fc.sample(inputArb, { numRuns: 1, seed: 7 })[0]!
    const planned = Either.getOrThrow(OpenClawConfig.setup({ plugins: { allow: ["memory"] } }, { ...input, provider: undefined }))
    const edited = structuredClone(planned.doc) as { plugins: { entries: { aios: { enabled: boolean; extra?: number } } } }
    edited.plugins.entries.aios.enabled = false
    edited.plugins.entries.aios.extra = 1
    const { doc, kept } = OpenClawConfig.remove(edited, planned.changes)
    expect(kept).toEqual(["plugins.entries.aios.enabled (changed since setup)"])
    expect(doc).toStrictEqual({ plugins: { allow: ["memory"], entries: { aios: { enabled: false, extra: 1 } } } })
  })

  it("names the key of the wrong type", () => {
    const planned = OpenClawConfig.setup({ plugins: { load: { paths: "/x" } }, agents: [] }, fc.sample(inputArb, { numRuns: 1, seed: 1 })[0]!)
    expect(Either.isLeft(planned) && planned.left.issues).toEqual(["plugins.load.paths is a string, expected an array"])
  })
})
