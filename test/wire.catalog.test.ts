/**
 * Catalog trust (issue 17): a partly bad model list keeps its valid entries, says once what it skipped (by
 * position and reason, never an entry's other values), and passes on only usable model ids, each once.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import { Backend } from "../src/Backend.js"
import * as ModelList from "../src/internal/modelList.js"
import { ModelCatalog } from "../src/ModelCatalog.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { backendStack, capturingLogs } from "./util.js"

const SECRET = "sk-CANARY-catalog-31c7"

// The bad entries of issue 17, some with a planted secret beside them (`id` is the name on /v1/models).
const bad: ReadonlyArray<ReferenceKernel.ModelSpec> = [
  { name: "x", extra: { name: undefined, id: undefined, api_key: SECRET } },
  { name: "x", extra: { name: 123, id: 123, api_key: SECRET } },
  { name: "" },
  { name: "   " },
  { name: "bell\u0007model" },
  { name: "rtl\u202Eledom" },
  { name: "n".repeat(257) },
  { name: " padded " }
]
const good: ReadonlyArray<ReferenceKernel.ModelSpec> = [
  { name: "echo", backend: "reference", extra: { api_key: SECRET } },
  { name: "tool-user", backend: "reference", behaviour: "tools" },
  { name: "日本語-model:7b/q4", backend: "reference" },
  { name: "m".repeat(256), backend: "reference" }
]
const list = [good[0]!, ...bad.slice(0, 4), good[1]!, { name: "echo", backend: "again" }, ...bad.slice(4), good[2]!, good[3]!]

describe("a partly bad /core/llms/list and /v1/models", () => {
  for (const backend of ["aios", "openai-compatible"] as const) {
    const endpoint = backend === "aios" ? "/core/llms/list" : "/models"
    it.effect(`${backend}: the valid entries are kept, the bad ones skipped with one warning, once`, () =>
      Effect.gen(function*() {
        const catalog = yield* ModelCatalog
        const kernel = yield* ReferenceKernel.ReferenceKernel
        const { lines, result } = yield* capturingLogs(Effect.gen(function*() {
          const first = yield* catalog.list
          // A refresh of the same list says nothing new.
          yield* TestClock.adjust("61 seconds")
          yield* catalog.list
          return first
        }))
        expect(result.map((m) => m.name)).toEqual(good.map((m) => m.name))
        expect(result[0]).toEqual({ name: "echo", backend: "reference" })
        expect(kernel.count(backend === "aios" ? "/core/llms/list" : "/v1/models")).toBe(2)
        const warnings = lines.filter((l) => l.startsWith("WARN"))
        expect(warnings.length).toBe(1)
        expect(warnings[0]).toContain(`Skipped 9 of 13 entries of ${endpoint}: #2: no name; #3: a name that is not text (number); #4: a blank name; #5: a blank name; \\"echo\\": listed again; and 4 more. The other 4 are used.`)
        expect(lines.join("\n")).not.toContain(SECRET)
        // Every kept name is usable by the catalog.
        for (const m of good) expect((yield* catalog.require(m.name)).name).toBe(m.name)
      }).pipe(Effect.provide(backendStack({ models: list }, { backend }))))
  }

  it.effect("a list whose every entry is bad is malformed, naming why (no secret)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip((yield* Backend).listModels)
      expect(error).toMatchObject({ _tag: "MalformedResponse", endpoint: "/core/llms/list" })
      expect(error.message).toContain(
        "none of its 2 entries has a usable model name (#1: a name that is not text (number); #2: a blank name)"
      )
      expect(JSON.stringify(error) + error.message).not.toContain(SECRET)
    }).pipe(Effect.provide(backendStack({ models: [bad[1]!, bad[2]!] }))))

  it.effect("entries that are not objects are skipped; the LLM core down (empty list) is no warning", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const backend = yield* Backend
      kernel.scriptEndpoint("/core/llms/list", {
        _tag: "Http",
        status: 200,
        body: JSON.stringify({ status: "success", llms: [1, null, "echo", [], { name: "echo", backend: 7 }] })
      })
      const { lines, result } = yield* capturingLogs(backend.listModels)
      expect(result).toEqual([{ name: "echo", backend: null }])
      expect(lines.join("\n")).toContain("#1: not an object; #2: not an object; #3: not an object; #4: not an object")
      kernel.setModels([])
      const empty = yield* capturingLogs(backend.listModels)
      expect(empty.result).toEqual([])
      expect(empty.lines).toEqual([])
      // A list without `llms` at all is still malformed as a whole.
      kernel.scriptEndpoint("/core/llms/list", { _tag: "Http", status: 200, body: "{\"status\":\"success\"}" })
      const whole = yield* Effect.either(backend.listModels)
      expect(Either.isLeft(whole) && whole.left._tag).toBe("MalformedResponse")
    }).pipe(Effect.provide(backendStack())))
})

describe("ModelList.check", () => {
  const anyName = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.constantFrom("echo", "echo", " echo", "", "\u0000", "\ud800", "a\u2028b", "x".repeat(300)),
    fc.integer(),
    fc.constant(null),
    fc.constant(undefined)
  )
  const entry = fc.oneof(
    fc.record({ name: anyName, backend: fc.option(fc.string({ maxLength: 5 }), { nil: undefined }) }),
    fc.constantFrom(1, "echo", null, [])
  )

  it.prop("keeps exactly the first entry of each usable name, in order; counts every other as skipped", [fc.array(entry, { maxLength: 40 })], ([entries]) => {
    const checked = ModelList.check(entries, "name", "backend")
    const names = checked.models.map((m) => m.name)
    expect(new Set(names).size).toBe(names.length)
    for (const name of names) {
      expect(ModelList.nameProblem(name)).toBeUndefined()
      expect(name.length).toBeLessThanOrEqual(256)
      expect(/[\u0000-\u001f\u007f-\u009f]/.test(name)).toBe(false)
      expect(name.trim()).toBe(name)
      expect(name).not.toBe("")
    }
    const usable = entries.flatMap((e) =>
      e !== null && typeof e === "object" && !Array.isArray(e) && ModelList.nameProblem(e.name) === undefined ? [e.name as string] : []
    )
    expect(names).toEqual([...new Set(usable)])
    expect(checked.skipped.length + checked.models.length).toBe(entries.length)
  })

  it("linear on a 200,000-entry list of duplicates and bad names", () => {
    const entries = Array.from({ length: 200_000 }, (_, i) => (i % 2 === 0 ? { name: "dup" } : { name: i }))
    const checked = ModelList.check(entries, "name", "backend")
    expect(checked.models).toEqual([{ name: "dup", backend: null }])
    expect(ModelList.warning("/core/llms/list", checked)).toContain("and 199,994 more. The other 1 are used.")
  })
})
