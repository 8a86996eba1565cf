import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import type { ToolTagEvent, ToolTagsOptions } from "../src/ToolTags.js"
import * as ToolTags from "../src/ToolTags.js"
import {
  block,
  callsOf,
  chunk,
  collect,
  counter,
  cuts,
  feed,
  handle,
  LONE_SURROGATE,
  markup,
  message,
  options,
  textOf,
  tools
} from "./ToolTags.arbitraries.js"

/** Whole-text parse and a chunked stream parse, each with its own fresh id counter. */
const both = (text: string, chunks: ReadonlyArray<string>, opts: ToolTagsOptions = {}) => ({
  whole: ToolTags.parse(text, { ...opts, idGenerator: counter() }),
  streamed: collect(feed(chunks, { ...opts, idGenerator: counter() }))
})

const everySplit = (text: string): Array<Array<string>> => {
  const out: Array<Array<string>> = []
  for (let i = 0; i <= text.length; i++) out.push([text.slice(0, i), text.slice(i)])
  out.push(text.split(""))
  return out
}

const weatherText = [
  "Let me check that.\n",
  "<function_calls>\n",
  "<invoke name=\"get_weather\">\n",
  "<parameter name=\"city\">Paris</parameter>\n",
  "<parameter name='days'>3</parameter>\n",
  "</invoke>\n",
  "<invoke name=\"ls\"/>\n",
  "</function_calls>\n",
  "Done."
].join("")

describe("ToolTags streaming", () => {
  it("case 1: a tag split at any offset leaks nothing into text, and every split equals whole-text", () => {
    for (const chunks of everySplit(weatherText)) {
      const { streamed, whole } = both(weatherText, chunks, { tools })
      expect(streamed).toEqual(whole)
      expect(textOf(streamed)).toBe("Let me check that.\n\nDone.")
      expect(callsOf(streamed)).toEqual([
        { name: "get_weather", arguments: { city: "Paris", days: 3 } },
        { name: "ls", arguments: {} }
      ])
    }
  })

  it.prop("case 1: for every chunking, streaming equals whole-text", [message, cuts, options], ([text, points, opts]) => {
    const { streamed, whole } = both(text, chunk(text, points), opts)
    expect(streamed).toEqual(whole)
  }, { fastCheck: { numRuns: 400 } })

  it.prop("case 1: one-character chunks equal whole-text", [message, options], ([text, opts]) => {
    const { streamed, whole } = both(text, text.split(""), opts)
    expect(streamed).toEqual(whole)
  }, { fastCheck: { numRuns: 500 } })

  it.prop(
    "any chunking (one character, and chunks mixed with one-character runs) equals whole-text, pairs never split",
    [message, cuts, options, fc.constantFrom("chunks", "chars", "mixed"), fc.nat()],
    ([text, points, opts, how, mask]) => {
      const chunks = how === "chars"
        ? text.split("")
        : how === "chunks"
        ? chunk(text, points)
        // The chunks whose bit is set in `mask` go one character at a time.
        : chunk(text, points).flatMap((c, i) => ((mask >> (i % 31)) & 1 ? c.split("") : [c]))
      const deltas: Array<string> = []
      const got = handle(chunks, { ...opts, idGenerator: counter() }, (t) => deltas.push(t))
      expect(got).toEqual(ToolTags.parse(text, { ...opts, idGenerator: counter() }))
      // No delta holds half of a surrogate pair that the text has whole.
      if (!LONE_SURROGATE.test(text)) expect(deltas.filter((t) => LONE_SURROGATE.test(t))).toEqual([])
    },
    { fastCheck: { numRuns: 600 } }
  )

  it.prop(
    "long blocks: one-character pushes up to near the cap, then any chunking, equal whole-text",
    [
      fc.oneof(fc.integer({ min: 4040, max: 4140 }), fc.integer({ min: 8140, max: 8240 })),
      markup,
      markup,
      fc.integer({ min: 0, max: 600 }),
      cuts,
      fc.constantFrom(undefined, 4100, 4140, 8200)
    ],
    ([pad, inner, after, shift, points, maxBlockBytes]) => {
      // The value's end, a markup tail (tag prefixes, CDATA, entities) and the closing tags fall around the block
      // cap (or well inside the default one), in one-character pushes up to a point and in any chunking after it.
      const text = `a\n<function_calls>\n<invoke name="write">\n<parameter name="content">${"x".repeat(pad)}${inner}` +
        `</parameter>\n</invoke>\n</function_calls>${after}`
      const k = Math.min(text.length, pad + shift - 200)
      const chunks = [...text.slice(0, k).split(""), ...chunk(text.slice(k), points)]
      const opts = { tools, maxBlockBytes }
      expect(handle(chunks, { ...opts, idGenerator: counter() }))
        .toEqual(ToolTags.parse(text, { ...opts, idGenerator: counter() }))
    },
    { fastCheck: { numRuns: 100 } }
  )

  it("a block closed in one-character pushes leaves its line past the start: backticks after it open no fence", () => {
    const text = "<function_calls>\n<invoke name=\"ls\"/></function_calls>```\n<function_calls><invoke name=\"ls\"/>" +
      "</function_calls>\n```"
    const chunks = ["<function_calls>\n", ...text.slice(17).split("")]
    const got = handle(chunks, { tools, idGenerator: counter() })
    expect(callsOf(got)).toHaveLength(2)
    expect(got).toEqual(ToolTags.parse(text, { tools, idGenerator: counter() }))
  })

  it("the stream parser: text as it arrives, a call when its block closes, nothing after end", () => {
    const seen: Array<string> = []
    const p = ToolTags.makeStreamParser({ tools })
    const record = (events: ReadonlyArray<ToolTagEvent>) => {
      for (const e of events) {
        if (e._tag === "TextDelta") seen.push(`text ${e.text}`)
        else if (e._tag === "ToolCallEnd") seen.push(`call ${e.name} ${JSON.stringify(e.arguments)}`)
        else if (e._tag === "InvalidCall") seen.push(`invalid ${e.reason}`)
      }
    }
    // Prose comes out with the push that completes it; a call only with `</function_calls>`.
    expect(p.push("Let me check that.\n")).toEqual([{ _tag: "TextDelta", text: "Let me check that.\n" }])
    for (const c of weatherText.slice(19).split("")) {
      const events = p.push(c)
      record(events)
      if (events.some((e) => e._tag === "ToolCallEnd")) expect(c).toBe(">")
    }
    expect(seen.filter((s) => s.startsWith("call"))).toEqual([
      "call get_weather {\"city\":\"Paris\",\"days\":3}",
      "call ls {}"
    ])
    const before = seen.length
    record(p.end())
    record(p.push("more"))
    record(p.end())
    expect(seen.length).toBe(before)
    expect(seen.map((s) => s.startsWith("text ") ? s.slice(5) : "|").join("")).toBe("||\nDone.")
  })

  it("the stream parser takes a non-string chunk from untyped callers as its string form, without throwing", () => {
    const odd = [5, undefined, null, ["<"], { length: 1 }] as unknown as ReadonlyArray<string>
    const got = handle(odd, { tools, idGenerator: counter() })
    expect(got).toEqual(ToolTags.parse(odd.map(String).join(""), { tools, idGenerator: counter() }))
  })

  it("case 2: several tags, a whole block, or two blocks in one chunk", () => {
    const two = weatherText + "\nAnd again:\n" + weatherText
    const events = feed([two], { tools, idGenerator: counter() })
    const starts = events.filter((e) => e._tag === "ToolCallStart")
    expect(starts.map((e) => e.name)).toEqual(["get_weather", "ls", "get_weather", "ls"])
    expect(collect(events)).toEqual(ToolTags.parse(two, { tools, idGenerator: counter() }))
    // A chunk boundary right inside the second block, with the first block and its text in the first chunk.
    const cut = two.indexOf("<invoke", two.lastIndexOf("<function_calls>")) + 3
    const { streamed, whole } = both(two, [two.slice(0, cut), two.slice(cut)], { tools })
    expect(streamed).toEqual(whole)
  })

  it("case 3: a surrogate pair split across chunks never reaches a text delta half", () => {
    const text = "😀 déjà 日本 <function_calls>\n<invoke name=\"read\">\n<parameter name=\"path\">/tmp/😀.txt</parameter>\n" +
      "</invoke>\n</function_calls>\n🎉"
    for (const chunks of everySplit(text)) {
      const events = feed(chunks, { tools, idGenerator: counter() })
      for (const e of events) if (e._tag === "TextDelta") expect(LONE_SURROGATE.test(e.text)).toBe(false)
      expect(collect(events)).toEqual(ToolTags.parse(text, { tools, idGenerator: counter() }))
      expect(callsOf(collect(events))).toEqual([{ name: "read", arguments: { path: "/tmp/😀.txt" } }])
    }
  })

  it.effect("case 3: UTF-8 bytes split inside multi-byte characters, decoded by Stream.decodeText", () =>
    Effect.gen(function*() {
      const text = "é日😀 <function_calls><invoke name=\"read\"><parameter name=\"path\">ü😀</parameter></invoke>" +
        "</function_calls> ✓"
      const bytes = new TextEncoder().encode(text)
      for (let i = 0; i <= bytes.length; i++) {
        const events = yield* Stream.fromIterable([bytes.slice(0, i), bytes.slice(i)]).pipe(
          Stream.decodeText(),
          ToolTags.stream({ tools, idGenerator: counter() }),
          Stream.runCollect
        )
        expect(collect(Chunk.toReadonlyArray(events))).toEqual(
          ToolTags.parse(text, { tools, idGenerator: counter() })
        )
      }
    }))

  it("case 4: \\r\\n line ends, in blocks, values and fences", () => {
    const text = "Reading.\r\n```\r\n<function_calls><invoke name=\"ls\"/></function_calls>\r\n```\r\n" +
      "<function_calls>\r\n<invoke name=\"write\">\r\n<parameter name=\"path\">\r\n/tmp/a\r\n</parameter>\r\n" +
      "<parameter name=\"content\">\r\nline 1\r\nline 2\r\n\r\n</parameter>\r\n</invoke>\r\n</function_calls>\r\nok"
    for (const chunks of everySplit(text)) {
      const { streamed, whole } = both(text, chunks, { tools })
      expect(streamed).toEqual(whole)
    }
    const r = ToolTags.parse(text, { tools })
    expect(callsOf(r)).toEqual([{ name: "write", arguments: { path: "/tmp/a", content: "line 1\r\nline 2\r\n" } }])
    expect(textOf(r)).toBe(
      "Reading.\r\n```\r\n<function_calls><invoke name=\"ls\"/></function_calls>\r\n```\r\n\r\nok"
    )
  })

  it("case 5: an open block holds at most maxBlockBytes; a longer block is text with a report", () => {
    const cap = 200
    const big = "<function_calls>\n<invoke name=\"write\">\n<parameter name=\"content\">" + "x".repeat(500) +
      "</parameter>\n</invoke>\n</function_calls>"
    const text = "before " + big + " after"
    const p = ToolTags.makeStreamParser({ tools, maxBlockBytes: cap })
    const events: Array<ToolTagEvent> = []
    let most = 0
    for (const c of text) {
      events.push(...p.push(c))
      most = Math.max(most, p.buffered)
    }
    events.push(...p.end())
    expect(most).toBeLessThanOrEqual(cap + 16)
    const r = collect(events)
    expect(callsOf(r)).toEqual([])
    expect(textOf(r)).toBe(text)
    expect(r.invalid).toHaveLength(1)
    expect(r.invalid[0]!.reason).toContain(`longer than ${cap}`)
    expect(r).toEqual(ToolTags.parse(text, { tools, maxBlockBytes: cap }))
    // The same block under the default cap is a call.
    expect(callsOf(ToolTags.parse(text, { tools }))).toHaveLength(1)
  })

  it("case 5: in one-character pushes, the open block's buffer counts every character and stops at the cap", () => {
    const head = "a\n<function_calls>\n"
    for (const cap of [undefined, 4100, 8200]) {
      const p = ToolTags.makeStreamParser({ tools, maxBlockBytes: cap })
      for (const c of head) p.push(c)
      let most = 0
      let miscounted = 0
      for (let i = 1; i <= 9000; i++) {
        p.push("x")
        most = Math.max(most, p.buffered)
        // Until the cap: `<function_calls>\n` and every `x` so far.
        if (i + 17 <= (cap ?? Infinity) && p.buffered !== i + 17) miscounted++
      }
      expect(miscounted).toBe(0)
      expect(most).toBe(cap ?? 9017)
    }
  })

  it("case 5: a block cut by the cap inside a surrogate pair returns the pair whole in one delta", () => {
    const text = "<function_calls>" + "x".repeat(20) + "😀".repeat(4) + "</function_calls>"
    for (const cap of [37, 38, 39]) {
      for (const chunks of [text.split(""), [text.slice(0, 37), text.slice(37)], [text.slice(0, 30), text.slice(30)]]) {
        const deltas: Array<string> = []
        const got = handle(chunks, { maxBlockBytes: cap }, (t) => deltas.push(t))
        expect(got).toEqual(ToolTags.parse(text, { maxBlockBytes: cap }))
        expect(deltas.join("")).toBe(text)
        expect(deltas.filter((t) => LONE_SURROGATE.test(t))).toEqual([])
      }
    }
  })

  it("case 5: the tool name is capped (120 by default)", () => {
    const named = (name: string) => `<function_calls><invoke name="${name}"/></function_calls>`
    const ok = "a".repeat(120)
    const long = "a".repeat(121)
    expect(callsOf(ToolTags.parse(named(ok)))).toEqual([{ name: ok, arguments: {} }])
    const r = ToolTags.parse(named(long))
    expect(callsOf(r)).toEqual([])
    expect(r.invalid[0]!.reason).toContain("longer than 120")
    expect(callsOf(ToolTags.parse(named("abcd"), { maxNameLength: 3 }))).toEqual([])
  })

  it.prop(
    "case 5: the buffer stays within maxBlockBytes + a partial tag, for any input and chunking",
    [message, cuts, fc.constantFrom(33, 50, 100, 300)],
    ([text, points, cap]) => {
      const p = ToolTags.makeStreamParser({ tools, maxBlockBytes: cap })
      for (const c of chunk(text, points)) {
        p.push(c)
        expect(p.buffered).toBeLessThanOrEqual(cap + 16)
      }
      p.end()
      expect(p.buffered).toBe(0)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("case 20: an unclosed block at end of stream is text, never a call, in every chunking", () => {
    const text = "Writing it now.\n<function_calls>\n<invoke name=\"write\">\n<parameter name=\"path\">/tmp/x</parameter>\n" +
      "<parameter name=\"content\">hello</parameter>\n</invoke>\n"
    for (const chunks of everySplit(text)) {
      const events = feed(chunks, { tools })
      expect(events.some((e) => e._tag.startsWith("ToolCall"))).toBe(false)
      expect(textOf(collect(events))).toBe(text)
    }
  })

  it.prop(
    "case 20: text that ends inside a block never yields a call from that block",
    [message, markup, cuts, options],
    ([prefix, body, points, opts]) => {
      fc.pre(!body.includes("</function_calls>"))
      const open = "<function_calls>" + body
      expect(callsOf(ToolTags.parse(open, opts))).toEqual([])
      const text = prefix + open
      const streamed = collect(feed(chunk(text, points), { ...opts, idGenerator: counter() }))
      expect(callsOf(streamed)).toEqual(callsOf(ToolTags.parse(prefix, opts)))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("case 21: a closing tag eaten by a stop sequence: text, unless the caller puts the stop sequence back", () => {
    const cut = "<function_calls>\n<invoke name=\"ls\"/>\n"
    const eaten = ToolTags.parse(cut, { tools })
    expect(callsOf(eaten)).toEqual([])
    expect(textOf(eaten)).toBe(cut)
    // The stated rule: a caller that stopped on `</function_calls>` pushes it back before ending.
    const p = ToolTags.makeStreamParser({ tools })
    const events = [...p.push(cut), ...p.push("</function_calls>"), ...p.end()]
    expect(callsOf(collect(events))).toEqual([{ name: "ls", arguments: {} }])
  })

  it("case 26: ids are alphanumeric, unique across a conversation, the same on start, delta and end", () => {
    const seen = new Set<string>()
    for (let turn = 0; turn < 20; turn++) {
      const events = feed(weatherText.split(""), { tools })
      const starts = events.filter((e) => e._tag === "ToolCallStart")
      const deltas = events.filter((e) => e._tag === "ToolCallDelta")
      const ends = events.filter((e) => e._tag === "ToolCallEnd")
      expect(starts.map((e) => e.id)).toEqual(deltas.map((e) => e.id))
      expect(starts.map((e) => e.id)).toEqual(ends.map((e) => e.id))
      for (const [i, d] of deltas.entries()) expect(JSON.parse(d.argumentsDelta)).toEqual(ends[i]!.arguments)
      for (const e of ends) {
        expect(ToolTags.isValidId(e.id)).toBe(true)
        expect(seen.has(e.id)).toBe(false)
        seen.add(e.id)
      }
    }
    expect(seen.size).toBe(40)
  })

  it("case 26: ids from a caller's generator are made alphanumeric and unique", () => {
    const r = ToolTags.parse(weatherText + weatherText, { tools, idGenerator: () => "call_x-1" })
    const ids = r.parts.flatMap((p) => (p._tag === "ToolCall" ? [p.id] : []))
    expect(ids[0]).toBe("callx1")
    expect(new Set(ids).size).toBe(4)
    for (const id of ids) expect(ToolTags.isValidId(id)).toBe(true)
    const thrown = ToolTags.parse(weatherText, {
      tools,
      idGenerator: () => {
        throw new Error("no ids today")
      }
    })
    expect(thrown.parts.filter((p) => p._tag === "ToolCall")).toHaveLength(2)
  })

  it.prop(
    "case 26: a message with calls has stop reason toolUse; start/delta/end come together, in order",
    [message, cuts],
    ([text, points]) => {
      const events = feed(chunk(text, points), { tools })
      const r = collect(events)
      const hasCalls = r.parts.some((p) => p._tag === "ToolCall")
      expect(ToolTags.stopReason(r.parts, "stop")).toBe(hasCalls ? "toolUse" : "stop")
      events.forEach((e, i) => {
        if (e._tag === "ToolCallStart") {
          const d = events[i + 1]
          const end = events[i + 2]
          expect(d?._tag === "ToolCallDelta" && d.id === e.id).toBe(true)
          expect(end?._tag === "ToolCallEnd" && end.id === e.id && end.name === e.name).toBe(true)
        }
      })
    }
  )

  it.effect.prop(
    "Stream transform: any chunking of a Stream equals whole-text parsing",
    [message, cuts, options],
    ([text, points, opts]) =>
      Effect.gen(function*() {
        const events = yield* Stream.fromIterable(chunk(text, points)).pipe(
          Stream.rechunk(3),
          ToolTags.stream({ ...opts, idGenerator: counter() }),
          Stream.runCollect
        )
        expect(collect(Chunk.toReadonlyArray(events))).toEqual(
          ToolTags.parse(text, { ...opts, idGenerator: counter() })
        )
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("Stream transform: the text of pieces that arrive in one Chunk comes out as one delta", () =>
    Effect.gen(function*() {
      const together = Stream.fromChunk(Chunk.make("Hel", "lo ", "<b>", " you"))
      const apart = Stream.fromIterable(["Hel", "lo"]).pipe(Stream.rechunk(1))
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(together.pipe(ToolTags.stream())))).toEqual([
        { _tag: "TextDelta", text: "Hello <b> you" }
      ])
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(apart.pipe(ToolTags.stream())))).toEqual([
        { _tag: "TextDelta", text: "Hel" },
        { _tag: "TextDelta", text: "lo" }
      ])
    }))

  it.effect("Stream transform: each run has its own parser, and upstream failures pass through", () =>
    Effect.gen(function*() {
      const s = Stream.fromIterable(weatherText.split("")).pipe(ToolTags.stream({ tools }))
      const a = collect(Chunk.toReadonlyArray(yield* Stream.runCollect(s)))
      const b = collect(Chunk.toReadonlyArray(yield* Stream.runCollect(s)))
      expect(callsOf(a)).toEqual(callsOf(b))
      expect(textOf(a)).toEqual(textOf(b))
      const failing = Stream.concat(Stream.make("Hello <function_calls>"), Stream.fail("connection reset" as const))
      const out = yield* Effect.either(Stream.runCollect(failing.pipe(ToolTags.stream({ tools }))))
      expect(Either.isLeft(out) && out.left).toBe("connection reset")
    }))

  it("push after end returns nothing; blocks in a block prefix are not invented", () => {
    const p = ToolTags.makeStreamParser()
    expect(p.push("a")).toEqual([{ _tag: "TextDelta", text: "a" }])
    expect(p.end()).toEqual([])
    expect(p.push("<function_calls><invoke name=\"x\"/></function_calls>")).toEqual([])
    expect(p.end()).toEqual([])
  })

  it.prop("blocks alone: every chunking of a generated block equals whole-text", [block, cuts], ([text, points]) => {
    const { streamed, whole } = both(text, chunk(text, points), { tools })
    expect(streamed).toEqual(whole)
  })
})
