/**
 * Parameter values: what the turn's tools say about them (the JSON Schema `type`s of each parameter), entity and
 * CDATA decoding, and typing a raw value by its schema.
 *
 * @internal
 */
import type { ToolDefinition } from "../../ToolTags.js"
import { nestsAtMost } from "../jsonObject.js"

// The JSON Schema types a value may have, as bits: 1 << the type's place in TYPES.
const TYPES: ReadonlyArray<unknown> = ["string", "number", "integer", "boolean", "object", "array", "null"]
const typeBit = (t: unknown): number => (TYPES.includes(t) ? 1 << TYPES.indexOf(t) : 0)
const [STRING, NUMBER, INTEGER, BOOLEAN, OBJECT, ARRAY, NULL] = [1, 2, 4, 8, 16, 32, 64] as const

/** @internal */
export const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const valueBit = (v: unknown): number =>
  v === null ? NULL : Array.isArray(v) ? ARRAY : typeBit(typeof v)

/** The most schema objects one tool index reads: beyond, a parameter's kinds are unknown (its values strings). */
const MAX_SCHEMA_NODES = 10_000

/**
 * The kinds of value a schema allows; 0 when it does not say (the value then stays a string). Memoised per schema
 * object, so a schema that shares or references itself (`anyOf: [self, self]`) costs one visit per node; a node met
 * again while it is being computed adds nothing. So the walk's work is bounded by the schema's size, and by
 * `MAX_SCHEMA_NODES` for the whole tool list.
 */
const kindOf = (schema: unknown, memo: Map<object, number>, depth: number): number => {
  if (!isRecord(schema) || depth > 64) return 0
  const known = memo.get(schema)
  if (known !== undefined) return known
  if (memo.size >= MAX_SCHEMA_NODES) return 0
  memo.set(schema, 0)
  let k = 0
  const t = schema["type"]
  if (Array.isArray(t)) for (const x of t) k |= typeBit(x)
  else k |= typeBit(t)
  if (k === 0) {
    for (const key of ["anyOf", "oneOf", "allOf"]) {
      const xs = schema[key]
      if (Array.isArray(xs)) for (const x of xs) k |= kindOf(x, memo, depth + 1)
    }
  }
  if (k === 0) {
    if (isRecord(schema["properties"])) k = OBJECT
    else if (schema["items"] !== undefined) k = ARRAY
    else {
      const e = schema["enum"]
      if (Array.isArray(e)) for (const v of e) k |= valueBit(v)
      if ("const" in schema) k |= valueBit(schema["const"])
    }
  }
  memo.set(schema, k)
  return k
}

/** What the block parser needs to know about the turn's tools. @internal */
export interface ToolIndex {
  /** Tools were given: names outside them are not executed. */
  readonly filter: boolean
  /** Tool name → parameter name → value kinds. */
  readonly tools: ReadonlyMap<string, ReadonlyMap<string, number>>
  readonly maxNameLength: number
}

/** @internal */
export const makeToolIndex = (tools: ReadonlyArray<ToolDefinition> | undefined, maxNameLength: number): ToolIndex => {
  const index = new Map<string, ReadonlyMap<string, number>>()
  const memo = new Map<object, number>()
  if (Array.isArray(tools)) {
    try {
      for (const tool of tools as ReadonlyArray<unknown>) {
        if (!isRecord(tool) || typeof tool["name"] !== "string" || index.has(tool["name"])) continue
        const params = tool["parameters"]
        const properties = isRecord(params) ? params["properties"] : undefined
        const kinds = new Map<string, number>()
        if (isRecord(properties)) for (const key of Object.keys(properties)) kinds.set(key, kindOf(properties[key], memo, 0))
        index.set(tool["name"], kinds)
      }
    } catch {
      // A tool list whose getters throw (a careless caller's proxy) gives what was read before.
    }
  }
  return { filter: Array.isArray(tools), tools: index, maxNameLength }
}

const NAMED: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" }
const ENTITY_OR_CDATA = /<!\[CDATA\[([^]*?)\]\]>|&(?:(amp|lt|gt|quot|apos)|#(?:([0-9]{1,7})|[xX]([0-9a-fA-F]{1,6})));/g

const decode = (whole: string, cdata?: string, name?: string, dec?: string, hex?: string): string => {
  if (cdata !== undefined) return cdata
  if (name !== undefined) return NAMED[name]!
  const cp = dec !== undefined ? Number(dec) : Number.parseInt(hex!, 16)
  return cp > 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : whole
}

/**
 * XML entities (`&amp; &lt; &gt; &quot; &apos; &#N; &#xN;`) decoded and CDATA sections taken literally, in one
 * left-to-right pass, so `&amp;lt;` gives `&lt;`. Anything else after `&` (and NUL, surrogates, out-of-range
 * numbers) stays as written. (The block parser only hands over values whose CDATA sections are closed, so the
 * lazy match always ends at the first `]]>`.)
 *
 * @internal
 */
export const decodeText = (s: string): string =>
  s.indexOf("&") === -1 && s.indexOf("<![CDATA[") === -1 ? s : s.replace(ENTITY_OR_CDATA, decode)

/** One line break (`\r\n` or `\n`) right after the opening tag and one right before the closing tag are markup. */
const stripEdgeNewlines = (s: string): string => {
  const a = s.startsWith("\n") ? 1 : s.startsWith("\r\n") ? 2 : 0
  let b = s.length
  if (b - a >= 1 && s.endsWith("\n")) b -= b - a >= 2 && s.charCodeAt(b - 2) === 13 ? 2 : 1
  return s.slice(a, b)
}

const NUMERIC = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/

/** A raw parameter value typed by its kinds; anything that does not convert stays a string. @internal */
export const convertValue = (raw: string, kind: number): unknown => {
  if (kind === 0 || (kind & STRING) !== 0) return decodeText(stripEdgeNewlines(raw))
  const t = decodeText(raw).trim()
  if ((kind & NULL) !== 0 && t === "null") return null
  if ((kind & BOOLEAN) !== 0) {
    const l = t.toLowerCase()
    if (l === "true" || l === "false") return l === "true"
  }
  if ((kind & (NUMBER | INTEGER)) !== 0 && NUMERIC.test(t)) {
    const n = Number(t)
    if (Number.isFinite(n) && ((kind & NUMBER) !== 0 || Number.isInteger(n))) return n
  }
  // Nested too deeply for what handles the value next (it would overflow the stack): it stays a string.
  if ((((kind & OBJECT) !== 0 && t.startsWith("{")) || ((kind & ARRAY) !== 0 && t.startsWith("["))) && nestsAtMost(t)) {
    try {
      const v: unknown = JSON.parse(t)
      if (Array.isArray(v) ? (kind & ARRAY) !== 0 : isRecord(v)) return v
    } catch {
      // not JSON: a string, below
    }
  }
  return decodeText(stripEdgeNewlines(raw))
}
