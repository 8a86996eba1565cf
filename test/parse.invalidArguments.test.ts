/**
 * `InvalidCall.arguments`: an invoke that is not executed still says what it asked for, so a caller can pass the
 * call on (OpenClaw then answers the model "tool not found" and the model can correct itself).
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as ToolTags from "../src/ToolTags.js"
import { calls, tools } from "./ToolTags.arbitraries.js"

const block = (...invokes: Array<string>) => `<function_calls>\n${invokes.join("\n")}\n</function_calls>`

describe("InvalidCall.arguments", () => {
  it("an unknown tool: its name and its parameters, as untyped strings", () => {
    const r = ToolTags.parse(
      block("<invoke name=\"rm_rf\">\n<parameter name=\"path\">/</parameter>\n<parameter name=\"depth\">3</parameter>\n" +
        "<parameter name=\"force\">true</parameter>\n</invoke>"),
      { tools }
    )
    expect(r.parts).toEqual([])
    expect(r.invalid).toHaveLength(1)
    expect(r.invalid[0]).toMatchObject({ name: "rm_rf", arguments: { path: "/", depth: "3", force: "true" } })
    expect(r.invalid[0]!.reason).toContain("unknown tool")
  })

  it("a known tool with a duplicate parameter: the last one wins, values typed by the schema", () => {
    const r = ToolTags.parse(
      block("<invoke name=\"read\"><parameter name=\"path\">/a</parameter><parameter name=\"offset\">7</parameter>" +
        "<parameter name=\"path\">/b</parameter></invoke>"),
      { tools }
    )
    expect(r.invalid[0]).toMatchObject({
      name: "read",
      reason: "duplicate parameter \"path\"",
      arguments: { path: "/b", offset: 7 }
    })
  })

  it("a malformed invoke: the parameters read before the fault, and the name", () => {
    const r = ToolTags.parse(
      block(
        "<invoke name=\"write\"><parameter name=\"path\">/x</parameter>stray<parameter name=\"content\">c</parameter></invoke>",
        "<invoke name=\"write\"><parameter name=\"path\">/y</parameter><parameter name=\"content\">open</invoke>",
        "<invoke name=\"write\"><parameter name=\"path\">/z</parameter>",
        "<invoke name=\"ls\" <bad>></invoke>",
        "<invoke name=\"read\"><parameter name=\"path\">/ok</parameter></invoke>"
      ),
      { tools }
    )
    expect(r.parts.map((p) => p._tag === "ToolCall" && p.arguments)).toEqual([{ path: "/ok" }])
    expect(r.invalid.map((i) => [i.name, i.reason, i.arguments])).toEqual([
      ["write", "unexpected text inside <invoke>", { path: "/x" }],
      ["write", "parameter \"content\" not closed by </parameter>", { path: "/y" }],
      ["write", "<invoke> not closed", { path: "/z" }],
      ["ls", "malformed <invoke> tag", {}]
    ])
  })

  it("a name is kept whenever one was read: empty, over-long; no name, no `name`", () => {
    const long = "x".repeat(200)
    const r = ToolTags.parse(
      block(`<invoke name="${long}"><parameter name="a">1</parameter></invoke>`, "<invoke name=\"\"/>",
        "<invoke><parameter name=\"a\">2</parameter></invoke>"),
      { tools }
    )
    expect(r.invalid.map((i) => i.name)).toEqual([long, "", undefined])
    expect(r.invalid.map((i) => i.arguments)).toEqual([{ a: "1" }, {}, { a: "2" }])
    expect("name" in r.invalid[2]!).toBe(false)
  })

  it("a parameter named __proto__ is data, not a prototype", () => {
    const r = ToolTags.parse(block("<invoke name=\"nope\"><parameter name=\"__proto__\">x</parameter></invoke>"), { tools })
    const args = r.invalid[0]!.arguments!
    expect(Object.getPrototypeOf(args)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(args, "__proto__")?.value).toBe("x")
  })

  it("what is not an invoke has no arguments", () => {
    const r = ToolTags.parse(block("stray words"), { tools })
    expect(r.invalid).toHaveLength(1)
    expect("arguments" in r.invalid[0]!).toBe(false)
    const long = ToolTags.parse(block(`<invoke name="ls"><parameter name="a">${"x".repeat(100)}</parameter></invoke>`),
      { tools, maxBlockBytes: 64 })
    expect("arguments" in long.invalid[0]!).toBe(false)
  })

  it.prop(
    "a call to a tool the turn does not have carries what the model wrote: the untyped arguments",
    [calls],
    ([cs]) => {
      const text = ToolTags.renderToolCalls(cs)
      // Without tools nothing is filtered and every value stays a string: the reference.
      const untyped = ToolTags.parse(text).parts.flatMap((p) => (p._tag === "ToolCall" ? [p] : []))
      const r = ToolTags.parse(text, { tools: [] })
      expect(r.parts).toEqual([])
      expect(r.invalid.map((i) => ({ name: i.name, arguments: i.arguments })))
        .toEqual(untyped.map((c) => ({ name: c.name, arguments: c.arguments })))
    }
  )

  it.prop("streamed in any chunking, the invalid calls and their arguments are those of the whole text", [
    calls,
    fc.array(fc.nat(), { maxLength: 12 })
  ], ([cs, points]) => {
    const text = "x " + ToolTags.renderToolCalls(cs).replace("<invoke name=\"", "<invoke name=\"zz") + " y"
    const whole = ToolTags.parse(text, { tools })
    const at = [...new Set(points.map((p) => p % (text.length + 1)))].sort((a, b) => a - b)
    const parser = ToolTags.makeStreamParser({ tools })
    const events: Array<ToolTags.ToolTagEvent> = []
    let prev = 0
    for (const p of [...at, text.length]) {
      events.push(...parser.push(text.slice(prev, p)))
      prev = p
    }
    events.push(...parser.end())
    expect(events.filter((e) => e._tag === "InvalidCall")).toEqual(whole.invalid)
    expect(whole.invalid[0]?.name?.startsWith("zz")).toBe(true)
  })
})
