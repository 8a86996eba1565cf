/**
 * fast-check generators and helpers shared by the ToolTags tests: prose rich in markup, calls drawn from tool
 * schemas, chunkings, and a way to collect a stream of events back into a parse result.
 */
import * as fc from "fast-check"
import type { ParseResult, Part, ToolDefinition, ToolTagEvent, ToolTagsOptions } from "../src/ToolTags.js"
import * as ToolTags from "../src/ToolTags.js"

export const tools: ReadonlyArray<ToolDefinition> = [
  {
    name: "read",
    description: "Read a file <path> & return its text",
    parameters: {
      type: "object",
      properties: { path: { type: "string" }, offset: { type: "integer" }, limit: { type: "integer" } },
      required: ["path"]
    }
  },
  {
    name: "write",
    parameters: {
      type: "object",
      properties: { path: { type: "string" }, content: { type: "string" } },
      required: ["path", "content"]
    }
  },
  {
    name: "exec",
    parameters: {
      type: "object",
      properties: {
        command: { type: "string" },
        timeout: { type: "number" },
        background: { type: "boolean" },
        env: { type: "object", additionalProperties: { type: "string" } },
        argv: { type: "array", items: { type: "string" } },
        cwd: { type: ["string", "null"] },
        retries: { type: ["integer", "null"] },
        mode: { enum: ["fast", "slow"] }
      }
    }
  },
  { name: "ls" },
  {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } }
  }
]

/** Pieces that trip tag parsers: tag prefixes, entities, quotes, fences, CRLF, surrogate pairs. */
const tricky = fc.constantFrom(
  "<",
  ">",
  "&",
  "\"",
  "'",
  "</",
  "<f",
  "<function_c",
  "alls>",
  "<function_calls>",
  "</function_calls>",
  "</function_calls",
  "<function_calls",
  "<</function_calls>",
  "<<![CDATA[",
  "<invoke name=\"read\">",
  "<invoke name='ls'/>",
  "<invoke",
  "</invoke>",
  "<parameter name=\"path\">",
  "</parameter>",
  "<think>",
  "</think>",
  "<![CDATA[",
  "]]>",
  "`",
  "``",
  "```",
  "~~~",
  "````",
  "\n```\n",
  "\n  ~~~~ \n",
  "\n   ``` x\n",
  "\n    ```\n",
  "\n<x",
  "    ",
  "\n",
  "\r\n",
  " ",
  "   ",
  "\t",
  "&amp;",
  "&lt;",
  "&amp;lt;",
  "&#60;",
  "&#x1F600;",
  "a && b",
  "if a<b",
  "x > y",
  "😀",
  "é",
  "日本"
)

/** Text rich in markup characters and tag prefixes (any code unit, lone surrogates included). */
export const markup: fc.Arbitrary<string> = fc
  .array(fc.oneof({ weight: 3, arbitrary: tricky }, { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) }), {
    maxLength: 14
  })
  .map((xs) => xs.join(""))

/** The same, well-formed UTF-16 only (for values whose surrogate pairs must survive). */
export const markupWellFormed: fc.Arbitrary<string> = fc
  .array(fc.oneof({ weight: 3, arbitrary: tricky }, { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 6 }) }), {
    maxLength: 14
  })
  .map((xs) => xs.join(""))

/** A JSON value exactly as JSON gives it back (no -0, no undefined). */
const json = fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown)

const finiteNumber = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x))

const valueFor = (schema: unknown): fc.Arbitrary<unknown> => {
  const t = (schema as { type?: unknown; enum?: ReadonlyArray<unknown> }).type
  const e = (schema as { enum?: ReadonlyArray<unknown> }).enum
  if (e !== undefined) return fc.constantFrom(...e)
  if (Array.isArray(t)) {
    // A null in a string-or-null parameter reads "null" and stays a string: not representable, so not drawn.
    return t.includes("string") ? markupWellFormed : fc.oneof(fc.constant(null), fc.integer())
  }
  switch (t) {
    case "integer":
      return fc.integer()
    case "number":
      return finiteNumber
    case "boolean":
      return fc.boolean()
    case "object":
      return fc.dictionary(markupWellFormed, json, { maxKeys: 3 }).map((o) => JSON.parse(JSON.stringify(o)) as unknown)
    case "array":
      return fc.array(markupWellFormed, { maxLength: 3 })
    default:
      return markupWellFormed
  }
}

export interface Call {
  readonly name: string
  readonly arguments: Record<string, unknown>
}

/** A call to one of `tools`, with any subset of its parameters, values drawn from their schemas. */
export const call: fc.Arbitrary<Call> = fc.oneof(
  ...tools.map((tool) => {
    const props = ((tool.parameters as { properties?: Record<string, unknown> } | undefined)?.properties) ?? {}
    const model: Record<string, fc.Arbitrary<unknown>> = {}
    for (const [k, s] of Object.entries(props)) model[k] = valueFor(s)
    return fc
      .record(model, { requiredKeys: [] })
      .map((args): Call => ({ name: tool.name, arguments: args as Record<string, unknown> }))
  })
)

export const calls: fc.Arbitrary<ReadonlyArray<Call>> = fc.array(call, { minLength: 1, maxLength: 4 })

/** Blocks as a model might write them: rendered, raw (unescaped values), truncated, or mangled. */
export const block: fc.Arbitrary<string> = fc.oneof(
  calls.map((cs) => ToolTags.renderToolCalls(cs)),
  fc.tuple(fc.constantFrom("read", "ls", "nope", ""), markup, markup).map(([name, a, b]) =>
    `<function_calls>\n<invoke name="${name}">\n<parameter name="path">${a}</parameter>\n</invoke>${b}</function_calls>`
  ),
  fc.tuple(calls, fc.nat()).map(([cs, k]) => {
    const s = ToolTags.renderToolCalls(cs)
    return s.slice(0, k % (s.length + 1))
  }),
  fc.tuple(calls, fc.nat(), fc.nat(), markup).map(([cs, a, b, junk]) => {
    const s = ToolTags.renderToolCalls(cs)
    const i = a % (s.length + 1)
    const j = Math.min(s.length, i + (b % 12))
    return s.slice(0, i) + junk + s.slice(j)
  })
)

/** Messages: prose with blocks, fences, inline code and think sections mixed in. */
export const message: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: markup },
      { weight: 2, arbitrary: block },
      { weight: 1, arbitrary: block.map((b) => "```\n" + b + "\n```\n") },
      { weight: 1, arbitrary: block.map((b) => "`" + b + "`") },
      { weight: 1, arbitrary: block.map((b) => "<think>" + b + "</think>") }
    ),
    { maxLength: 6 }
  )
  .map((xs) => xs.join(""))

/** Options that change the outcome: think policy, tools or none, small block caps. */
export const options: fc.Arbitrary<ToolTagsOptions> = fc.record({
  think: fc.constantFrom("strip" as const, "text" as const, "parse" as const),
  tools: fc.constantFrom(tools, undefined),
  maxBlockBytes: fc.constantFrom(undefined, 33, 64, 200, 1000),
  maxNameLength: fc.constantFrom(undefined, 3, 120)
}, { requiredKeys: [] })

/** Cut points for a text: the chunks are `text.slice(cut[i], cut[i+1])`. */
export const cuts: fc.Arbitrary<ReadonlyArray<number>> = fc.array(fc.nat(), { maxLength: 24 })

export const chunk = (text: string, points: ReadonlyArray<number>): Array<string> => {
  const at = [...new Set(points.map((p) => p % (text.length + 1)))].sort((a, b) => a - b)
  const out: Array<string> = []
  let prev = 0
  for (const p of at) {
    out.push(text.slice(prev, p))
    prev = p
  }
  out.push(text.slice(prev))
  return out
}

/** A fresh deterministic id generator: `t1`, `t2`, … */
export const counter = (prefix = "t"): () => string => {
  let n = 0
  return () => `${prefix}${++n}`
}

/** Events collected into the shape `parse` returns (adjacent text merged). */
export const collect = (events: ReadonlyArray<ToolTagEvent>): ParseResult => {
  const parts: Array<Part> = []
  const invalid: Array<ToolTags.InvalidCall> = []
  let text = ""
  for (const e of events) {
    switch (e._tag) {
      case "TextDelta":
        text += e.text
        break
      case "ToolCallEnd":
        if (text.length > 0) parts.push({ _tag: "Text", text })
        text = ""
        parts.push({ _tag: "ToolCall", id: e.id, name: e.name, arguments: e.arguments })
        break
      case "InvalidCall":
        invalid.push(e)
        break
      default:
    }
  }
  if (text.length > 0) parts.push({ _tag: "Text", text })
  return { parts, invalid }
}

/** Feeds chunks to a fresh stream parser; returns the events. */
export const feed = (chunks: ReadonlyArray<string>, opts: ToolTagsOptions): Array<ToolTagEvent> => {
  const p = ToolTags.makeStreamParser(opts)
  const out: Array<ToolTagEvent> = []
  for (const c of chunks) out.push(...p.push(c))
  out.push(...p.end())
  return out
}

/** Feeds chunks to a fresh stream parser; returns the shape `parse` returns (and each text delta to `onText`). */
export const handle = (
  chunks: ReadonlyArray<string>,
  opts: ToolTagsOptions,
  onText: (text: string) => void = () => {}
): ParseResult => {
  const events = feed(chunks, opts)
  for (const e of events) if (e._tag === "TextDelta") onText(e.text)
  return collect(events)
}

/** Half of a surrogate pair without the other half. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Concatenated text of a result. */
export const textOf = (r: ParseResult): string =>
  r.parts.map((p) => (p._tag === "Text" ? p.text : "")).join("")

/** The calls of a result, without ids. */
export const callsOf = (r: ParseResult): Array<Call> =>
  r.parts.flatMap((p) => (p._tag === "ToolCall" ? [{ name: p.name, arguments: p.arguments }] : []))
