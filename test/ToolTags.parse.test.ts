import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as ToolTags from "../src/ToolTags.js"
import {
  calls,
  callsOf,
  collect,
  counter,
  feed,
  markup,
  markupWellFormed,
  message,
  options,
  textOf,
  tools
} from "./ToolTags.arbitraries.js"

const parse = (text: string, opts: ToolTags.ToolTagsOptions = { tools }) => ToolTags.parse(text, opts)
const block = (...invokes: Array<string>) => `<function_calls>\n${invokes.join("\n")}\n</function_calls>`
const read = (path: string) => `<invoke name="read">\n<parameter name="path">${path}</parameter>\n</invoke>`

/** Prose that cannot open anything (no opener, no think tag, no backtick or tilde), yet full of `<` and `&`. */
const inertProse = fc
  .array(
    fc.oneof(
      fc.constantFrom("<", ">", "&", "\"", "'", "a<b", "x > y && z", "</function_calls>", "</invoke>", "<invoke name=\"ls\"/>",
        "<parameter>", "&amp;", "&lt;", "\n", "\r\n", "😀", " ", "<f", "<function_c"),
      fc.string({ unit: "binary", maxLength: 5 })
    ),
    { maxLength: 10 }
  )
  .map((xs) => xs.join(""))
  .filter((s) => !s.includes("<function_calls>") && !s.includes("<think>") && !/[`~]/.test(s))

describe("ToolTags.parse", () => {
  it.prop(
    "case 6: text before and after a block is kept byte for byte (the parser is not anchored)",
    [inertProse, calls, inertProse],
    ([before, cs, after]) => {
      const r = parse(before + ToolTags.renderToolCalls(cs) + after)
      expect(textOf(r)).toBe(before + after)
      expect(callsOf(r)).toEqual(cs)
      expect(r.parts[0]).toEqual(before.length > 0 ? { _tag: "Text", text: before } : r.parts[0])
      expect(r.parts.at(-1)).toEqual(after.length > 0 ? { _tag: "Text", text: after } : r.parts.at(-1))
    }
  )

  it.prop(
    "case 7: N invokes give N calls in order; every block of a message counts",
    [calls, inertProse, calls],
    ([first, middle, second]) => {
      const text = ToolTags.renderToolCalls(first) + middle + ToolTags.renderToolCalls(second)
      const r = parse(text)
      expect(callsOf(r)).toEqual([...first, ...second])
      const kinds = r.parts.map((p) => p._tag)
      const firstText = kinds.indexOf("Text")
      if (middle.length > 0) expect(firstText).toBe(first.length)
    }
  )

  it("case 8: parameters belong to their own invoke; identical repeated calls are all delivered", () => {
    const text = block(read("/a"), read("/b"), read("/a"), read("/a"))
    const r = parse(text)
    expect(callsOf(r).map((c) => c.arguments)).toEqual([{ path: "/a" }, { path: "/b" }, { path: "/a" }, { path: "/a" }])
    const ids = r.parts.flatMap((p) => (p._tag === "ToolCall" ? [p.id] : []))
    expect(new Set(ids).size).toBe(4)
  })

  it("case 9: zero-parameter and self-closing invokes give {} and are never dropped", () => {
    const forms = ["<invoke name=\"ls\"/>", "<invoke name=\"ls\" />", "<invoke name=\"ls\"></invoke>", "<invoke name=\"ls\">\n</invoke>"]
    const r = parse(block(...forms) + "\n" + block(forms[0]!))
    expect(callsOf(r)).toEqual(forms.concat(forms[0]!).map(() => ({ name: "ls", arguments: {} })))
    expect(r.invalid).toEqual([])
  })

  it("case 10: attributes double-quoted, single-quoted or unquoted, with spaces around =", () => {
    const forms = [
      "<invoke name=\"read\"><parameter name=\"path\">/x</parameter></invoke>",
      "<invoke name='read'><parameter name='path'>/x</parameter></invoke>",
      "<invoke name=read><parameter name=path>/x</parameter></invoke>",
      "<invoke name = \"read\" ><parameter  name =  'path' >/x</parameter ></invoke >",
      "<invoke\n  name=read\n  other=\"ignored\"><parameter name=path>/x</parameter></invoke>"
    ]
    for (const f of forms) expect(callsOf(parse(block(f)))).toEqual([{ name: "read", arguments: { path: "/x" } }])
    expect(callsOf(parse(block("<invoke name=ls/>")))).toEqual([{ name: "ls", arguments: {} }])
  })

  it("case 11: mismatched closing tags are not accepted as closers", () => {
    const badParam = parse(block("<invoke name=\"read\"><parameter name=\"path\">/x</param></invoke>", "<invoke name=\"ls\"/>"))
    expect(callsOf(badParam)).toEqual([{ name: "ls", arguments: {} }])
    expect(badParam.invalid[0]!.reason).toContain("not closed")
    const badInvoke = parse(block("<invoke name=\"ls\"></Invoke>"))
    expect(callsOf(badInvoke)).toEqual([])
    expect(badInvoke.invalid).toHaveLength(1)
    for (const closer of ["</parameters>", "</parameter_>", "</ parameter>"]) {
      const r = parse(block(`<invoke name="read"><parameter name="path">/x${closer}</invoke>`))
      expect(callsOf(r)).toEqual([])
    }
    const badBlock = "<function_calls><invoke name=\"ls\"/></function_call>"
    expect(callsOf(parse(badBlock))).toEqual([])
    expect(textOf(parse(badBlock))).toBe(badBlock)
  })

  it("case 12: an empty value gives \"\"", () => {
    const r = parse(block("<invoke name=\"write\"><parameter name=\"path\"></parameter><parameter name=\"content\"/></invoke>"))
    expect(callsOf(r)).toEqual([{ name: "write", arguments: { path: "", content: "" } }])
    // An integer parameter left empty stays "" for the tool to reject, rather than becoming 0.
    expect(callsOf(parse(block("<invoke name=\"read\"><parameter name=\"offset\"></parameter></invoke>"))))
      .toEqual([{ name: "read", arguments: { offset: "" } }])
  })

  it("case 13: a duplicate parameter name makes that invoke invalid (stated policy); its neighbours stay", () => {
    const dup = "<invoke name=\"read\"><parameter name=\"path\">/a</parameter><parameter name=\"path\">/b</parameter></invoke>"
    const r = parse(block(read("/before"), dup, read("/after")))
    expect(callsOf(r).map((c) => c.arguments)).toEqual([{ path: "/before" }, { path: "/after" }])
    expect(r.invalid).toHaveLength(1)
    expect(r.invalid[0]).toMatchObject({ name: "read", reason: "duplicate parameter \"path\"", raw: dup })
  })

  it("case 14: values containing &, <, >, a && b, if a<b come back as written", () => {
    for (const v of ["a & b", "a && b", "if a<b", "x > y", "1 < 2 > 0", "<div>", "a<b&&c>d", "&", "<", "<3"]) {
      expect(callsOf(parse(block(read(v))))).toEqual([{ name: "read", arguments: { path: v } }])
    }
  })

  it("case 15: entities are decoded once, &amp; last", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["&amp;lt;", "&lt;"],
      ["&lt;b&gt;", "<b>"],
      ["&amp;amp;", "&amp;"],
      ["&quot;&apos;", "\"'"],
      ["&#60;&#x3C;", "<<"],
      ["&#x1F600;", "😀"],
      ["&nbsp; &bogus; &#xD800; &#0;", "&nbsp; &bogus; &#xD800; &#0;"],
      ["AT&T", "AT&T"]
    ]
    for (const [raw, value] of cases) expect(callsOf(parse(block(read(raw))))[0]!.arguments.path).toBe(value)
  })

  it("case 16: CDATA is taken literally, and hides closing tags (also from the block end)", () => {
    const inner = "</parameter></invoke></function_calls> &amp; <b>"
    const text = block(read(`<![CDATA[${inner}]]>`), read("/next"))
    const r = parse(text)
    expect(callsOf(r)).toEqual([
      { name: "read", arguments: { path: inner } },
      { name: "read", arguments: { path: "/next" } }
    ])
    expect(collect(feed(text.split(""), { tools, idGenerator: counter() }))).toEqual(
      ToolTags.parse(text, { tools, idGenerator: counter() })
    )
    expect(callsOf(parse(block(read("a<![CDATA[ & ]]>&amp;"))))).toEqual([{ name: "read", arguments: { path: "a & &" } }])
  })

  it("case 17: a value with a literal </parameter> or </invoke> is reported invalid, never cut short", () => {
    const code = [
      "if (s.endsWith(\"</parameter>\")) return",
      "const end = \"</invoke>\"",
      "x </parameter> y"
    ]
    for (const c of code) {
      const raw = `<invoke name="write">\n<parameter name="path">/p.ts</parameter>\n<parameter name="content">${c}</parameter>\n</invoke>`
      const r = parse(block(raw, read("/ok")))
      expect(callsOf(r)).toEqual([{ name: "read", arguments: { path: "/ok" } }])
      expect(r.invalid.length).toBeGreaterThanOrEqual(1)
      expect(r.invalid[0]!.raw.startsWith("<invoke name=\"write\">")).toBe(true)
      // Escaped, or in CDATA, it comes back whole.
      for (const safe of [c.replace(/&/g, "&amp;").replace(/</g, "&lt;"), `<![CDATA[${c}]]>`]) {
        const ok = `<invoke name="write"><parameter name="path">/p.ts</parameter><parameter name="content">${safe}</parameter></invoke>`
        expect(callsOf(parse(block(ok)))).toEqual([{ name: "write", arguments: { path: "/p.ts", content: c } }])
      }
    }
  })

  it.prop(
    "case 17: a raw value holding a closing tag never yields a call with a shortened value",
    [markupWellFormed, fc.constantFrom("</parameter>", "</invoke>", "</function_calls>"), markupWellFormed],
    ([a, closer, b]) => {
      fc.pre(!/<\/?(?:parameter|invoke|function_calls)|<!\[CDATA\[/.test(a))
      const value = a + closer + "x" + b
      const text = block(`<invoke name="write">\n<parameter name="content">${value}</parameter>\n</invoke>`)
      for (const c of callsOf(parse(text))) {
        if (c.name === "write") expect(c.arguments.content).toBe(value)
      }
    }
  )

  it("case 18: one newline after the opening tag and one before the closing tag are markup", () => {
    const write = (content: string) =>
      callsOf(parse(block(`<invoke name="write"><parameter name="content">${content}</parameter></invoke>`)))[0]!
        .arguments.content
    expect(write("\nline 1\nline 2\n")).toBe("line 1\nline 2")
    expect(write("\nline 1\nline 2\n\n")).toBe("line 1\nline 2\n")
    expect(write("\n\nindented\n")).toBe("\nindented")
    expect(write("  spaced  ")).toBe("  spaced  ")
    expect(write("\r\nwindows\r\n")).toBe("windows")
    expect(write("inline")).toBe("inline")
    const offset = callsOf(parse(block("<invoke name=\"read\"><parameter name=\"offset\">\n  42 \n</parameter></invoke>")))
    expect(offset[0]!.arguments.offset).toBe(42)
  })

  it("case 19: malformed invokes do not lose the well-formed calls beside them", () => {
    const text = block(
      read("/1"),
      "<invoke><parameter name=\"path\">/no-name</parameter></invoke>",
      read("/2"),
      "<invoke name=\"read\"><parameter name=\"path\">/unclosed</invoke>",
      read("/3"),
      "stray words between invokes",
      "<invoke name=\"read\" <bad>><parameter name=\"path\">/bad-tag</parameter></invoke>",
      read("/4"),
      "<invoke name=\"read\"><parameter name=\"path\">/missing-invoke-close</parameter>",
      read("/5")
    )
    const r = parse(text)
    expect(callsOf(r).map((c) => c.arguments.path)).toEqual(["/1", "/2", "/3", "/4", "/5"])
    expect(r.invalid.map((i) => i.reason)).toEqual([
      "<invoke> without a name",
      "parameter \"path\" not closed by </parameter>",
      "text outside <invoke> in a <function_calls> block",
      "malformed <invoke> tag",
      "<invoke> not closed"
    ])
    expect(r.invalid[1]!.raw).toBe("<invoke name=\"read\"><parameter name=\"path\">/unclosed</invoke>")
  })

  it("case 22: markup inside Markdown code fences or inline code is prose", () => {
    const call = block(read("/x"))
    const prose = [
      "```\n" + call + "\n```\n",
      "```xml\n" + call + "\n```\n",
      "  ~~~~\n" + call + "\n~~~~\n",
      "````\n```\n" + call + "\n````\n",
      "Use `" + call + "` like this.\n",
      "Or ``a ` " + call + "`` this.\n"
    ]
    for (const p of prose) {
      const r = parse(p + "After: " + call)
      expect(callsOf(r)).toEqual([{ name: "read", arguments: { path: "/x" } }])
      expect(textOf(r)).toBe(p + "After: ")
    }
    // An unmatched backtick makes only the rest of its line code; a fence unclosed runs to the end.
    expect(callsOf(parse("a stray ` tick\n" + call))).toHaveLength(1)
    expect(callsOf(parse("a stray ` tick " + call))).toHaveLength(0)
    expect(callsOf(parse("```\n" + call))).toHaveLength(0)
    // Four spaces in, or tildes mid-line, are not fences.
    expect(callsOf(parse("x ~~~\n" + call))).toHaveLength(1)
  })

  it("case 23: markup inside <think> follows the think option", () => {
    const thought = "<think>maybe " + block(read("/t")) + " hmm</think>"
    const text = "A " + thought + " B " + block(read("/real"))
    const asText = parse(text, { tools, think: "text" })
    expect(callsOf(asText).map((c) => c.arguments.path)).toEqual(["/real"])
    expect(textOf(asText)).toBe("A " + thought + " B ")
    const stripped = parse(text, { tools, think: "strip" })
    expect(callsOf(stripped).map((c) => c.arguments.path)).toEqual(["/real"])
    expect(textOf(stripped)).toBe("A  B ")
    const parsed = parse(text, { tools, think: "parse" })
    expect(callsOf(parsed).map((c) => c.arguments.path)).toEqual(["/t", "/real"])
    expect(textOf(parsed)).toBe("A <think>maybe  hmm</think> B ")
    // Default is "text"; an unclosed think section runs to the end.
    expect(ToolTags.parse(text, { tools, idGenerator: counter() })).toEqual(
      ToolTags.parse(text, { tools, think: "text", idGenerator: counter() })
    )
    expect(textOf(parse("A <think>" + block(read("/t")), { tools, think: "strip" }))).toBe("A ")
  })

  it("case 24: a name that is not one of the turn's tools is reported, not executed", () => {
    const text = block("<invoke name=\"rm_rf\"><parameter name=\"path\">/</parameter></invoke>", read("/ok"),
      "<invoke name=\"Read\"/>")
    const r = parse(text)
    expect(callsOf(r)).toEqual([{ name: "read", arguments: { path: "/ok" } }])
    expect(r.invalid.map((i) => i.name)).toEqual(["rm_rf", "Read"])
    for (const i of r.invalid) expect(i.reason).toContain("unknown tool")
    expect(textOf(r)).toBe("")
    // Without a tool list nothing is filtered (and values stay strings).
    expect(callsOf(ToolTags.parse(text)).map((c) => c.name)).toEqual(["rm_rf", "read", "Read"])
  })

  it("values are typed by the tool's JSON Schema; what does not convert stays a string", () => {
    const exec = (params: string) =>
      callsOf(parse(block(`<invoke name="exec">${params}</invoke>`)))[0]!.arguments
    const p = (k: string, v: string) => `<parameter name="${k}">${v}</parameter>`
    expect(exec(p("command", "123") + p("timeout", "1.5e3") + p("background", "true"))).toEqual({
      command: "123",
      timeout: 1500,
      background: true
    })
    expect(exec(p("env", "{\"A\": \"&lt;1&gt;\"}") + p("argv", "[\"-l\", \"a b\"]"))).toEqual({
      env: { A: "<1>" },
      argv: ["-l", "a b"]
    })
    expect(exec(p("cwd", "null") + p("retries", "null"))).toEqual({ cwd: "null", retries: null })
    expect(exec(p("retries", "2") + p("mode", "fast"))).toEqual({ retries: 2, mode: "fast" })
    expect(exec(p("timeout", "soon") + p("background", "yes") + p("env", "{oops") + p("argv", "{\"a\":1}")))
      .toEqual({ timeout: "soon", background: "yes", env: "{oops", argv: "{\"a\":1}" })
    expect(callsOf(parse(block("<invoke name=\"read\"><parameter name=\"offset\">2.5</parameter></invoke>"))))
      .toEqual([{ name: "read", arguments: { offset: "2.5" } }])
    // A parameter the schema does not know stays a string; so does everything without a tool list.
    expect(exec(p("extra", "42"))).toEqual({ extra: "42" })
    expect(callsOf(ToolTags.parse(block(read("/x").replace("/x", "1"))))[0]!.arguments).toEqual({ path: "1" })
    const proto = callsOf(parse(block("<invoke name=\"exec\"><parameter name=\"__proto__\">x</parameter></invoke>")))
    expect(Object.getPrototypeOf(proto[0]!.arguments)).toBe(Object.prototype)
    expect(Object.keys(proto[0]!.arguments)).toEqual(["__proto__"])
  })

  it("schemas that share or reference themselves are read once per node, not walked path by path", () => {
    const loop: Record<string, unknown> = {}
    loop["anyOf"] = [loop, loop, loop, { type: "integer" }]
    // 60 levels, each naming the next twice: 2^60 paths through 61 nodes.
    let chain: Record<string, unknown> = { type: "boolean" }
    for (let i = 0; i < 60; i++) chain = { anyOf: [chain, chain] }
    const defs = [{ name: "t", parameters: { type: "object", properties: { a: loop, b: chain } } }]
    const text = block("<invoke name=\"t\"><parameter name=\"a\">7</parameter><parameter name=\"b\">true</parameter></invoke>")
    expect(callsOf(ToolTags.parse(text, { tools: defs }))).toEqual([{ name: "t", arguments: { a: 7, b: true } }])
  })

  it.prop("never throws, on any input and options", [fc.oneof(fc.string({ unit: "binary" }), markup, message), options], ([text, opts]) => {
    const r = ToolTags.parse(text, opts)
    const events = feed([text], opts)
    for (const i of [...r.invalid, ...collect(events).invalid]) expect(i.reason).not.toContain("internal parser error")
    // Nothing is lost: without a block, all of the text comes back.
    if (!text.includes("<function_calls>") && opts.think !== "strip") expect(textOf(r)).toBe(text)
  }, { fastCheck: { numRuns: 500 } })

  it("never throws on values of the wrong runtime type", () => {
    const weird = [null, undefined, 42, {}, [], Symbol.iterator] as Array<unknown>
    for (const w of weird) {
      expect(() => ToolTags.parse(w as string)).not.toThrow()
      expect(() => ToolTags.parse("x", { tools: w as never, maxBlockBytes: w as never, think: w as never })).not.toThrow()
      expect(() => ToolTags.makeStreamParser().push(w as string)).not.toThrow()
    }
  })
})
