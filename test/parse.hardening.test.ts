/**
 * Issue 17's adversarial inputs for the tag parser and JSON arguments, as the tests' data: one invoke holding
 * 1 MiB of distinct parameters, tool schemas whose `anyOf` refers back to itself, nesting 100,000 levels deep.
 * (Their time is measured in bench/toolTags.ts and bench/stall.ts, as ratios; here: results and bounded work.)
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import { jsonObject, MAX_JSON_DEPTH, nestsAtMost, toolCallArguments } from "../src/internal/jsonObject.js"
import * as ToolTags from "../src/ToolTags.js"
import { chunk, collect, counter, feed } from "./ToolTags.arbitraries.js"

const MiB = 1024 * 1024

/** One block just under the cap: one invoke of `write` with distinct parameters `p0`, `p1`, … */
const distinctParameters = (size: number): string => {
  const pieces = ["<function_calls>\n<invoke name=\"write\">\n"]
  let len = pieces[0]!.length + 30
  for (let i = 0; len < size; i++) {
    const p = `<parameter name="p${i}">v${i}</parameter>\n`
    pieces.push(p)
    len += p.length
  }
  return pieces.join("") + "</invoke>\n</function_calls>"
}

const tools: ReadonlyArray<ToolTags.ToolDefinition> = [{ name: "write", parameters: { type: "object", properties: {} } }]

describe("one invoke of 1 MiB of distinct parameters", () => {
  const text = distinctParameters(MiB - 64)

  it("is one clear InvalidCall: capped at 1,000 parameters, the first 1,000 kept", () => {
    const r = ToolTags.parse(text, { tools })
    expect(text.length).toBeLessThan(MiB)
    expect(r.parts).toEqual([])
    expect(r.invalid).toHaveLength(1)
    const [call] = r.invalid
    expect(call).toMatchObject({ name: "write", reason: "more than 1000 parameters" })
    expect(Object.keys(call!.arguments!)).toHaveLength(1000)
    expect(call!.arguments!["p999"]).toBe("v999")
    expect(call!.raw).toBe(text.slice("<function_calls>\n".length, -"\n</function_calls>".length))
  })

  it("streamed in any chunking (16 characters, 64 KiB, uneven), gives the whole-text result", () => {
    const whole = ToolTags.parse(text, { tools })
    for (const size of [16, 65_536, 4093]) {
      const pieces = Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size))
      expect(collect(feed(pieces, { tools }))).toEqual(whole)
    }
  })

  it("a valid call may have 1,000 parameters", () => {
    const params = Array.from({ length: 1000 }, (_, i) => `<parameter name="k${i}">${i}</parameter>`).join("")
    const r = ToolTags.parse(`<function_calls><invoke name="write">${params}</invoke></function_calls>`, { tools })
    expect(r.invalid).toEqual([])
    expect(Object.keys((r.parts[0] as ToolTags.ToolCall).arguments)).toHaveLength(1000)
  })
})

/** A schema node whose property reads are counted. */
const counted = <A extends object>(target: A, reads: { n: number }): A =>
  new Proxy(target, {
    get: (t, key, receiver) => {
      reads.n++
      return Reflect.get(t, key, receiver) as unknown
    }
  })

/** `{ anyOf: [A, A, …] }` where every A is the schema itself, plus `tail` as the last alternative. */
const selfReferencing = (width: number, reads: { n: number }, tail: object = {}): object => {
  const alternatives: Array<object> = []
  const schema = counted({ anyOf: counted(alternatives, reads) }, reads)
  for (let i = 0; i < width; i++) alternatives.push(schema)
  alternatives.push(tail)
  return schema
}

/** 60 levels, each an `anyOf` of the next level four times: 4^60 paths, 61 nodes. */
const layered = (reads: { n: number }, leaf: object): object => {
  let level: object = leaf
  for (let i = 0; i < 60; i++) level = counted({ anyOf: counted([level, level, level, level], reads) }, reads)
  return level
}

describe("schemas whose anyOf refers back", () => {
  it.each([3, 4])("width %i: read once per node, and the alternatives still type the value", (width) => {
    const reads = { n: 0 }
    const schema = selfReferencing(width, reads, { type: "integer" })
    const deep = [{ name: "deep", parameters: { type: "object", properties: { n: schema, m: { anyOf: [schema, schema] } } } }]
    const r = ToolTags.parse(
      "<function_calls><invoke name=\"deep\"><parameter name=\"n\">42</parameter><parameter name=\"m\">7</parameter></invoke></function_calls>",
      { tools: deep }
    )
    expect(r.parts).toMatchObject([{ _tag: "ToolCall", arguments: { n: 42, m: 7 } }])
    // One node plus its alternatives array: a handful of reads each, whatever the width's powers would be.
    expect(reads.n).toBeLessThan(20 + 3 * width)
  })

  it("60 layers of width 4 (4^60 paths): each layer read a bounded number of times", () => {
    const reads = { n: 0 }
    const deep = [{ name: "deep", parameters: { type: "object", properties: { q: layered(reads, { type: "boolean" }) } } }]
    const r = ToolTags.parse("<function_calls><invoke name=\"deep\"><parameter name=\"q\">true</parameter></invoke></function_calls>", {
      tools: deep
    })
    expect(r.parts).toMatchObject([{ _tag: "ToolCall", arguments: { q: true } }])
    expect(reads.n).toBeLessThan(60 * 20)
  })

  it.prop("random schema graphs with shared and cyclic anyOf/oneOf/allOf: reads linear in the nodes", [
    fc.array(fc.array(fc.nat(), { maxLength: 6 }), { minLength: 1, maxLength: 30 }),
    fc.array(fc.constantFrom("anyOf", "oneOf", "allOf"), { minLength: 30, maxLength: 30 })
  ], ([edges, keys]) => {
    const reads = { n: 0 }
    const raw: Array<Record<string, unknown>> = edges.map(() => ({}))
    const nodes = raw.map((r) => counted(r, reads))
    edges.forEach((out, i) => {
      raw[i]![keys[i]!] = counted(out.map((j) => nodes[j % nodes.length]!), reads)
    })
    ToolTags.parse("", { tools: [{ name: "t", parameters: { type: "object", properties: { a: nodes[0], b: nodes.at(-1) } } }] })
    const size = edges.reduce((n, out) => n + out.length + 1, 0)
    expect(reads.n).toBeLessThanOrEqual(12 * size + 12)
  })

  it("a tool list whose getters throw does not throw: the tools read before it still count", () => {
    const hostile = new Proxy({}, { get: () => { throw new Error("boom") } })
    const list = [{ name: "ok", parameters: { type: "object", properties: { n: { type: "integer" } } } }, hostile]
    const r = ToolTags.parse("<function_calls><invoke name=\"ok\"><parameter name=\"n\">1</parameter></invoke></function_calls>", {
      tools: list as unknown as ReadonlyArray<ToolTags.ToolDefinition>
    })
    expect(r.parts).toMatchObject([{ _tag: "ToolCall", name: "ok", arguments: { n: 1 } }])
  })
})

describe("nesting 100,000 levels deep", () => {
  const depth = 100_000
  const objects = "{\"a\":".repeat(depth) + "1" + "}".repeat(depth)
  const arrays = "[".repeat(depth) + "]".repeat(depth)

  it("native tool-call arguments: None (not a usable JSON object), never a stack overflow", () => {
    expect(toolCallArguments(objects)).toEqual(Option.none())
    expect(jsonObject(objects)).toEqual(Option.none())
    const limit = "{\"a\":".repeat(MAX_JSON_DEPTH) + "1" + "}".repeat(MAX_JSON_DEPTH)
    expect(Option.isSome(toolCallArguments(limit))).toBe(true)
    expect(toolCallArguments(`{"a":${limit}}`)).toEqual(Option.none())
    // Brackets inside strings are text.
    expect(toolCallArguments(JSON.stringify({ s: "[".repeat(depth) }))).toEqual(Option.some({ s: "[".repeat(depth) }))
  })

  it.prop("the depth check agrees with the depth of what JSON.parse reads", [fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 9 })], ([v, max]) => {
    const depthOf = (x: unknown): number =>
      x !== null && typeof x === "object" ? 1 + Math.max(0, ...Object.values(x).map(depthOf)) : 0
    expect(nestsAtMost(JSON.stringify(v), max)).toBe(depthOf(v) <= max || JSON.stringify(v).length <= max)
  })

  it("a tag value that deep stays a string: parsing, streaming and its JSON never throw", () => {
    const deep = [{ name: "deep", parameters: { type: "object", properties: { o: { type: "object" }, a: { type: "array" } } } }]
    const text = `<function_calls><invoke name="deep"><parameter name="o">${objects}</parameter>` +
      `<parameter name="a">${arrays}</parameter></invoke></function_calls>`
    const r = ToolTags.parse(text, { tools: deep, maxBlockBytes: 4 * MiB })
    expect(r.parts).toMatchObject([{ _tag: "ToolCall", arguments: { o: objects, a: arrays } }])
    const events = feed(chunk(text, [1000, 500_000]), { tools: deep, maxBlockBytes: 4 * MiB, idGenerator: counter() })
    expect(events.map((e) => e._tag)).toEqual(["ToolCallStart", "ToolCallDelta", "ToolCallEnd"])
    expect(() => JSON.stringify(events)).not.toThrow()
  })
})

describe("ToolTags.feed and ToolTags.stream on one large chunk", () => {
  const large = Array.from({ length: 40 }, (_, i) =>
    `Step ${i}: ${"prose & <b> ".repeat(500)}\n<function_calls>\n<invoke name="write">\n<parameter name="p">${"v".repeat(i * 97)}</parameter>\n</invoke>\n</function_calls>\n`)
    .join("")

  it.effect("a text over 64 KiB, fed in pieces, gives the events of the whole text", () =>
    Effect.gen(function*() {
      expect(large.length).toBeGreaterThan(3 * 65_536)
      const parser = ToolTags.makeStreamParser({ tools, idGenerator: counter() })
      const events = [...(yield* ToolTags.feed(parser, large)), ...parser.end()]
      expect(collect(events)).toEqual(ToolTags.parse(large, { tools, idGenerator: counter() }))
    }))

  it.effect("between its pieces other fibers run; a short text is one step", () =>
    Effect.gen(function*() {
      let turns = 0
      const other = yield* Effect.fork(Effect.forever(Effect.zipRight(Effect.sync(() => turns++), Effect.yieldNow())))
      yield* Effect.yieldNow()
      const before = turns
      yield* ToolTags.feed(ToolTags.makeStreamParser({ tools }), "short text")
      expect(turns).toBe(before)
      yield* ToolTags.feed(ToolTags.makeStreamParser({ tools }), large)
      expect(turns).toBeGreaterThan(before)
      yield* Fiber.interrupt(other)
    }))

  it.effect("a 1 MiB reply in one chunk comes out as from the whole text", () =>
    Effect.gen(function*() {
      const text = "Before.\n" + distinctParameters(MiB - 64) + "\nAfter."
      const events = yield* Stream.make(text).pipe(ToolTags.stream({ tools, idGenerator: counter() }), Stream.runCollect)
      expect(collect(Chunk.toReadonlyArray(events))).toEqual(ToolTags.parse(text, { tools, idGenerator: counter() }))
    }))
})
