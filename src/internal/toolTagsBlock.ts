/**
 * The inside of one complete `<function_calls>` block: invokes, parameters, entity and CDATA decoding, and
 * value typing by JSON Schema. Runs once per block, on the block's whole text, so it may look ahead freely.
 *
 * @internal
 */
import type { InvalidCall, ToolDefinition } from "../ToolTags.js"

const LT = 60
const GT = 62
const SLASH = 47
const EQ = 61
const DQ = 34
const SQ = 39
const SP = 32
const TAB = 9
const LF = 10
const CR = 13
const FF = 12

const isWs = (c: number): boolean => c === SP || c === LF || c === CR || c === TAB || c === FF

const skipWs = (s: string, i: number, to: number): number => {
  while (i < to && isWs(s.charCodeAt(i))) i++
  return i
}

// ---------------------------------------------------------------------------------------------------------------
// Value kinds: the JSON Schema `type`s of a parameter, as bits, computed once per tool list.
// ---------------------------------------------------------------------------------------------------------------

const K_STRING = 1
const K_NUMBER = 2
const K_INTEGER = 4
const K_BOOLEAN = 8
const K_OBJECT = 16
const K_ARRAY = 32
const K_NULL = 64

const typeBit = (t: unknown): number => {
  switch (t) {
    case "string":
      return K_STRING
    case "number":
      return K_NUMBER
    case "integer":
      return K_INTEGER
    case "boolean":
      return K_BOOLEAN
    case "object":
      return K_OBJECT
    case "array":
      return K_ARRAY
    case "null":
      return K_NULL
    default:
      return 0
  }
}

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const valueBit = (v: unknown): number =>
  typeof v === "string"
    ? K_STRING
    : typeof v === "number"
    ? K_NUMBER
    : typeof v === "boolean"
    ? K_BOOLEAN
    : v === null
    ? K_NULL
    : Array.isArray(v)
    ? K_ARRAY
    : typeof v === "object"
    ? K_OBJECT
    : 0

/** The kinds a value of this schema may have; 0 when the schema does not say (the value stays a string). */
const kindOf = (schema: unknown, depth: number): number => {
  if (!isRecord(schema) || depth > 16) return 0
  let k = 0
  const t = schema["type"]
  if (Array.isArray(t)) for (const x of t) k |= typeBit(x)
  else k |= typeBit(t)
  if (k !== 0) return k
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    const xs = schema[key]
    if (Array.isArray(xs)) for (const x of xs) k |= kindOf(x, depth + 1)
  }
  if (k !== 0) return k
  if (isRecord(schema["properties"])) return K_OBJECT
  if (schema["items"] !== undefined) return K_ARRAY
  const e = schema["enum"]
  if (Array.isArray(e)) for (const v of e) k |= valueBit(v)
  if ("const" in schema) k |= valueBit(schema["const"])
  return k
}

/** A tool's parameters: names (as the schema spells them) and value kinds, in schema order. @internal */
export interface ToolEntry {
  readonly name: string
  readonly keys: ReadonlyArray<string>
  readonly kinds: ReadonlyArray<number>
}

/** What the block parser needs to know about the turn's tools. @internal */
export interface ToolIndex {
  /** Tools were given: names outside them are not executed. */
  readonly filter: boolean
  readonly byName: ReadonlyMap<string, ToolEntry>
  /** The tool names, for matching in place. */
  readonly names: ReadonlyArray<string>
  readonly maxNameLength: number
}

/** @internal */
export const makeToolIndex = (
  tools: ReadonlyArray<ToolDefinition> | undefined,
  maxNameLength: number
): ToolIndex => {
  const byName = new Map<string, ToolEntry>()
  if (Array.isArray(tools)) {
    for (const tool of tools as ReadonlyArray<unknown>) {
      if (!isRecord(tool) || typeof tool["name"] !== "string" || byName.has(tool["name"])) continue
      const params = tool["parameters"]
      const properties = isRecord(params) ? params["properties"] : undefined
      const keys = isRecord(properties) ? Object.keys(properties) : []
      byName.set(tool["name"], {
        name: tool["name"],
        keys,
        kinds: keys.map((k) => kindOf((properties as Record<string, unknown>)[k], 0))
      })
    }
  }
  return { filter: Array.isArray(tools), byName, names: [...byName.keys()], maxNameLength }
}

// ---------------------------------------------------------------------------------------------------------------
// Text decoding
// ---------------------------------------------------------------------------------------------------------------

const AMP = 38
const HASH = 35
const SEMI = 59

/** The value of a hex or decimal digit, or -1. */
const digit = (c: number, hex: boolean): number =>
  c >= 48 && c <= 57
    ? c - 48
    : hex && c >= 97 && c <= 102
    ? c - 87
    : hex && c >= 65 && c <= 70
    ? c - 55
    : -1

/**
 * XML entities (`&amp; &lt; &gt; &quot; &apos; &#N; &#xN;`) decoded in a single left-to-right pass, so
 * `&amp;lt;` gives `&lt;`. Anything else after `&` (and NUL, surrogates, out-of-range numbers) stays as written.
 *
 * @internal
 */
export const decodeEntities = (s: string): string => {
  let i = s.indexOf("&")
  if (i === -1) return s
  let out = ""
  let p = 0
  while (i !== -1) {
    let end = -1
    let ch = ""
    const c = s.charCodeAt(i + 1)
    if (c === HASH) {
      const hex = s.charCodeAt(i + 2) === 120 || s.charCodeAt(i + 2) === 88
      let j = hex ? i + 3 : i + 2
      const first = j
      let cp = 0
      const most = first + (hex ? 6 : 7)
      for (let d = digit(s.charCodeAt(j), hex); d !== -1 && j < most; d = digit(s.charCodeAt(j), hex)) {
        cp = cp * (hex ? 16 : 10) + d
        j++
      }
      if (j > first && s.charCodeAt(j) === SEMI && cp > 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff)) {
        end = j + 1
        ch = String.fromCodePoint(cp)
      }
    } else if (s.startsWith("amp;", i + 1)) {
      end = i + 5
      ch = "&"
    } else if (s.startsWith("lt;", i + 1)) {
      end = i + 4
      ch = "<"
    } else if (s.startsWith("gt;", i + 1)) {
      end = i + 4
      ch = ">"
    } else if (s.startsWith("quot;", i + 1)) {
      end = i + 6
      ch = "\""
    } else if (s.startsWith("apos;", i + 1)) {
      end = i + 6
      ch = "'"
    }
    if (end !== -1) {
      out += s.slice(p, i) + ch
      p = end
      i = s.indexOf("&", end)
    } else {
      i = s.indexOf("&", i + 1)
    }
  }
  return p === 0 ? s : out + s.slice(p)
}

/** Entities decoded, CDATA sections taken literally. @internal */
export const decodeText = (s: string): string => {
  let i = s.indexOf("<![CDATA[")
  if (i === -1) return decodeEntities(s)
  let out = ""
  let p = 0
  while (i !== -1) {
    const e = s.indexOf("]]>", i + 9)
    if (e === -1) break
    out += decodeEntities(s.slice(p, i)) + s.slice(i + 9, e)
    p = e + 3
    i = s.indexOf("<![CDATA[", p)
  }
  return out + decodeEntities(s.slice(p))
}

/** One line break (`\r\n` or `\n`) right after the opening tag and one right before the closing tag are markup. */
const stripEdgeNewlines = (s: string): string => {
  let a = 0
  let b = s.length
  if (s.charCodeAt(0) === LF) a = 1
  else if (s.charCodeAt(0) === CR && s.charCodeAt(1) === LF) a = 2
  if (b - a >= 1 && s.charCodeAt(b - 1) === LF) b -= b - a >= 2 && s.charCodeAt(b - 2) === CR ? 2 : 1
  return a === 0 && b === s.length ? s : s.slice(a, b)
}

const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/

/** A raw parameter value typed by its kind; anything that does not convert stays a string. @internal */
export const convertValue = (raw: string, kind: number): unknown => {
  if (kind === 0 || (kind & K_STRING) !== 0) return decodeText(stripEdgeNewlines(raw))
  const t = decodeText(raw).trim()
  if ((kind & K_NULL) !== 0 && t === "null") return null
  if ((kind & K_BOOLEAN) !== 0) {
    const l = t.toLowerCase()
    if (l === "true") return true
    if (l === "false") return false
  }
  if ((kind & (K_NUMBER | K_INTEGER)) !== 0 && NUMBER.test(t)) {
    const n = Number(t)
    if (Number.isFinite(n) && ((kind & K_NUMBER) !== 0 || Number.isInteger(n))) return n
  }
  const c = t.charCodeAt(0)
  if (((kind & K_OBJECT) !== 0 && c === 123) || ((kind & K_ARRAY) !== 0 && c === 91)) {
    try {
      const v: unknown = JSON.parse(t)
      if (Array.isArray(v) ? (kind & K_ARRAY) !== 0 : isRecord(v)) return v
    } catch {
      // not JSON: falls through to the string
    }
  }
  return decodeText(stripEdgeNewlines(raw))
}

// ---------------------------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------------------------

/** Whether `lit` occurs at `i` (a char loop: cheaper than `startsWith` for these short tags). */
const litAt = (s: string, i: number, lit: string): boolean => {
  for (let k = 0; k < lit.length; k++) if (s.charCodeAt(i + k) !== lit.charCodeAt(k)) return false
  return true
}

/** `<tag` followed by whitespace, `>` or `/`. */
const openTagAt = (s: string, i: number, to: number, tag: string): boolean => {
  if (!litAt(s, i, tag)) return false
  const j = i + tag.length
  if (j >= to) return false
  const c = s.charCodeAt(j)
  return isWs(c) || c === GT || c === SLASH
}

/** The end of `</tag>` (whitespace allowed before `>`) at `i`, or -1. */
const closeTagAt = (s: string, i: number, to: number, tag: string): number => {
  if (!litAt(s, i, tag)) return -1
  let j = i + tag.length
  while (j < to && isWs(s.charCodeAt(j))) j++
  return j < to && s.charCodeAt(j) === GT ? j + 1 : -1
}

/**
 * Result of `parseStartTag`, reused to avoid an allocation per tag: where the tag ends, and where the raw
 * value of its first `name` attribute is (`va` = -1 when there is none) and whether it holds a `&`.
 */
const tag = { va: -1, vb: -1, amp: false, next: 0, selfClosing: false }

/**
 * Attributes from `i` (just after the tag name) to the closing `>` or `/>`: double-quoted, single-quoted or
 * unquoted values, spaces allowed around `=`. Only `name` is kept (the first one). False when malformed.
 */
const parseStartTag = (s: string, i: number, to: number): boolean => {
  // Fast path for the form the prompt asks for and the renderer writes: ` name="value">` or ` name="value"/>`.
  if (s.charCodeAt(i) === SP && litAt(s, i + 1, "name=\"")) {
    let k = i + 7
    while (k < to) {
      const d = s.charCodeAt(k)
      if (d === DQ || d === LT || d === AMP) break
      k++
    }
    if (k < to && s.charCodeAt(k) === DQ) {
      const e = k + 1
      const c = s.charCodeAt(e)
      if ((c === GT && e < to) || (c === SLASH && e + 1 < to && s.charCodeAt(e + 1) === GT)) {
        tag.va = i + 7
        tag.vb = k
        tag.amp = false
        tag.selfClosing = c === SLASH
        tag.next = c === SLASH ? e + 2 : e + 1
        return true
      }
    }
  }
  tag.va = -1
  let p = i
  for (;;) {
    p = skipWs(s, p, to)
    if (p >= to) return false
    const c = s.charCodeAt(p)
    if (c === GT) {
      tag.next = p + 1
      tag.selfClosing = false
      return true
    }
    if (c === SLASH) {
      if (p + 1 < to && s.charCodeAt(p + 1) === GT) {
        tag.next = p + 2
        tag.selfClosing = true
        return true
      }
      return false
    }
    const a = p
    while (p < to) {
      const d = s.charCodeAt(p)
      if (isWs(d) || d === GT || d === SLASH || d === EQ || d === DQ || d === SQ || d === LT) break
      p++
    }
    if (p === a) return false
    const isName = p - a === 4 && litAt(s, a, "name")
    p = skipWs(s, p, to)
    let va = p
    let vb = p
    let amp = false
    if (p < to && s.charCodeAt(p) === EQ) {
      p = skipWs(s, p + 1, to)
      if (p >= to) return false
      const q = s.charCodeAt(p)
      if (q === DQ || q === SQ) {
        let k = p + 1
        // As in XML, a quoted value has no `<`: an unclosed quote cannot swallow the following tags.
        while (k < to) {
          const d = s.charCodeAt(k)
          if (d === q || d === LT) break
          if (d === AMP) amp = true
          k++
        }
        if (k >= to || s.charCodeAt(k) !== q) return false
        va = p + 1
        vb = k
        p = k + 1
      } else {
        const v = p
        while (p < to) {
          const d = s.charCodeAt(p)
          if (isWs(d) || d === GT || d === DQ || d === SQ || d === LT || d === EQ) break
          if (d === SLASH && p + 1 < to && s.charCodeAt(p + 1) === GT) break
          if (d === AMP) amp = true
          p++
        }
        if (p === v) return false
        va = v
        vb = p
      }
    }
    if (isName && tag.va === -1) {
      tag.va = va
      tag.vb = vb
      tag.amp = amp
    }
  }
}

/**
 * The `name` attribute `parseStartTag` just read: one of `known` when it matches one exactly (no slicing, no
 * hashing: the common case), else decoded from the text; undefined when there was none.
 */
const tagName = (s: string, known: ReadonlyArray<string> | undefined): string | undefined => {
  const { va, vb } = tag
  if (va === -1) return undefined
  if (!tag.amp && known !== undefined) {
    const len = vb - va
    for (const k of known) if (k.length === len && litAt(s, va, k)) return k
  }
  return decodeEntities(s.slice(va, vb))
}

/** The next `<` at or after `p` (before `to`) that is not inside a CDATA section; -1 if none. */
const nextLt = (s: string, p: number, to: number): number => {
  for (;;) {
    const k = s.indexOf("<", p)
    if (k === -1 || k >= to) return -1
    if (s.charCodeAt(k + 1) !== 33 || !s.startsWith("<![CDATA[", k)) return k
    const e = s.indexOf("]]>", k + 9)
    if (e === -1 || e + 3 > to) return -1
    p = e + 3
  }
}

/** Where a parameter, invoke or `</invoke>` tag starts, at or after `p`; `to` if none. */
const nextStructural = (s: string, p: number, to: number): number => {
  for (;;) {
    const k = nextLt(s, p, to)
    if (k === -1) return to
    if (openTagAt(s, k, to, "<parameter") || openTagAt(s, k, to, "<invoke") || closeTagAt(s, k, to, "</invoke") >= 0) {
      return k
    }
    p = k + 1
  }
}

/** Where the next `<invoke` tag starts, at or after `p`; `to` if none. */
const nextInvoke = (s: string, p: number, to: number): number => {
  for (;;) {
    const k = nextLt(s, p, to)
    if (k === -1) return to
    if (openTagAt(s, k, to, "<invoke")) return k
    p = k + 1
  }
}

/** One item of a block, in order. @internal */
export type BlockItem =
  | { readonly _tag: "Call"; readonly name: string; readonly arguments: Record<string, unknown> }
  | InvalidCall

const invalid = (name: string | undefined, reason: string, raw: string): InvalidCall =>
  name === undefined ? { _tag: "InvalidCall", reason, raw } : { _tag: "InvalidCall", name, reason, raw }

/**
 * The calls of a block whose inside is `s[from, to)`.
 *
 * - A value ends at the first `</parameter>` outside CDATA. Any other parameter or invoke tag met before it
 *   means the parameter was not closed, and the invoke is invalid (so a value is never cut short silently).
 * - A malformed invoke extends to its `</invoke>` or to the next `<invoke`, whichever comes first; it is
 *   reported with its raw text and the invokes beside it are unaffected.
 * - Text between invokes is reported as invalid (nothing is dropped without a trace).
 *
 * @internal
 */
export const parseBlock = (s: string, from: number, to: number, index: ToolIndex): Array<BlockItem> => {
  const out: Array<BlockItem> = []
  let p = from
  for (;;) {
    p = skipWs(s, p, to)
    if (p >= to) return out
    if (openTagAt(s, p, to, "<invoke")) {
      p = parseInvoke(s, p, to, index, out)
    } else {
      const e = nextInvoke(s, p + 1, to)
      out.push(invalid(undefined, "text outside <invoke> in a <function_calls> block", s.slice(p, e).trimEnd()))
      p = e
    }
  }
}

const kindIn = (entry: ToolEntry, key: string): number => {
  const i = entry.keys.indexOf(key)
  return i === -1 ? 0 : entry.kinds[i]!
}

const parseInvoke = (s: string, start: number, to: number, index: ToolIndex, out: Array<BlockItem>): number => {
  if (!parseStartTag(s, start + 7, to)) {
    let e = start + 7
    for (;;) {
      const k = nextStructural(s, e, to)
      if (k >= to) {
        e = to
        break
      }
      const c = closeTagAt(s, k, to, "</invoke")
      if (c >= 0) {
        e = c
        break
      }
      if (openTagAt(s, k, to, "<invoke")) {
        e = k
        break
      }
      e = k + 1
    }
    out.push(invalid(undefined, "malformed <invoke> tag", s.slice(start, e).trimEnd()))
    return e
  }
  const name = tagName(s, index.names)
  let reason: string | undefined
  const entry = name === undefined ? undefined : index.byName.get(name)
  const args: Record<string, unknown> = {}
  const keys: Array<string> = []
  let end: number
  if (tag.selfClosing) {
    end = tag.next
  } else {
    let p = tag.next
    for (;;) {
      p = skipWs(s, p, to)
      if (p >= to) {
        reason ??= "<invoke> not closed"
        end = to
        break
      }
      const c = closeTagAt(s, p, to, "</invoke")
      if (c >= 0) {
        end = c
        break
      }
      if (openTagAt(s, p, to, "<parameter")) {
        if (!parseStartTag(s, p + 10, to)) {
          reason ??= "malformed <parameter> tag"
          p = nextStructural(s, p + 1, to)
          continue
        }
        const key = tagName(s, entry?.keys)
        let raw = ""
        if (tag.selfClosing) {
          p = tag.next
        } else {
          const v = tag.next
          let q = v
          let closed = -1
          for (;;) {
            const k = nextLt(s, q, to)
            if (k === -1) {
              q = to
              break
            }
            closed = closeTagAt(s, k, to, "</parameter")
            if (closed >= 0) {
              q = k
              break
            }
            if (
              openTagAt(s, k, to, "<parameter") || openTagAt(s, k, to, "<invoke") ||
              closeTagAt(s, k, to, "</invoke") >= 0
            ) {
              q = k
              break
            }
            q = k + 1
          }
          if (closed < 0) {
            reason ??= `parameter ${JSON.stringify(key ?? "")} not closed by </parameter>`
            p = q
            continue
          }
          raw = s.slice(v, q)
          p = closed
        }
        if (key === undefined || key === "") reason ??= "<parameter> without a name"
        else if (keys.includes(key)) reason ??= `duplicate parameter ${JSON.stringify(key)}`
        else {
          keys.push(key)
          if (reason === undefined) {
            const value = convertValue(raw, entry === undefined ? 0 : kindIn(entry, key))
            // A parameter named `__proto__` is data, not a prototype.
            if (key === "__proto__") {
              Object.defineProperty(args, key, { value, enumerable: true, writable: true, configurable: true })
            } else args[key] = value
          }
        }
        continue
      }
      if (openTagAt(s, p, to, "<invoke")) {
        reason ??= "<invoke> not closed"
        end = p
        break
      }
      reason ??= "unexpected text inside <invoke>"
      p = nextStructural(s, p + 1, to)
    }
  }
  if (name === undefined || name === "") reason ??= "<invoke> without a name"
  else if (name.length > index.maxNameLength) {
    reason ??= `tool name longer than ${index.maxNameLength} characters`
  }
  if (reason === undefined && index.filter && entry === undefined) {
    reason = `unknown tool ${JSON.stringify(name)}: not among this turn's tools, not executed`
  }
  if (reason !== undefined) {
    const shown = name === undefined || name.length > index.maxNameLength ? undefined : name
    out.push(invalid(shown, reason, s.slice(start, end).trimEnd()))
    return end
  }
  out.push({ _tag: "Call", name: name!, arguments: args })
  return end
}
