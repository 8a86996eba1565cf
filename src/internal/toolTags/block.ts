/**
 * The inside of one complete `<function_calls>` block: invokes and their parameters. Runs once per block, on the
 * block's whole text, so it may look ahead freely; every scan moves forward, so a block costs time linear in its
 * length.
 *
 * @internal
 */
import type { InvalidCall, ToolCall } from "../../ToolTags.js"
import { convertValue, decodeEntities, type ToolIndex } from "./values.js"

const isWs = (c: number): boolean => c === 32 || c === 10 || c === 13 || c === 9 || c === 12

const skipWs = (s: string, i: number): number => {
  while (i < s.length && isWs(s.charCodeAt(i))) i++
  return i
}

/** `<tag` at `i`, followed by whitespace, `>` or `/`. */
const openAt = (s: string, i: number, tag: string): boolean => {
  if (!s.startsWith(tag, i)) return false
  const c = s.charCodeAt(i + tag.length)
  return isWs(c) || c === 62 || c === 47
}

/** The end of `</tag>` at `i` (whitespace allowed before `>`), or -1. */
const closeAt = (s: string, i: number, tag: string): number => {
  if (!s.startsWith(tag, i)) return -1
  const j = skipWs(s, i + tag.length)
  return s.charCodeAt(j) === 62 ? j + 1 : -1
}

/** The next `<` at or after `p` that is not inside a CDATA section; -1 if none. */
const nextLt = (s: string, p: number): number => {
  for (;;) {
    const k = s.indexOf("<", p)
    if (k === -1 || !s.startsWith("<![CDATA[", k)) return k
    const e = s.indexOf("]]>", k + 9)
    if (e === -1) return -1
    p = e + 3
  }
}

/** A tag that ends a parameter's value early: another parameter or invoke, or `</invoke>`. */
const isStructural = (s: string, k: number): boolean =>
  openAt(s, k, "<parameter") || openAt(s, k, "<invoke") || closeAt(s, k, "</invoke") >= 0

/** Where the next tag matching `test` starts, at or after `p`; the end of `s` if none. */
const nextTag = (s: string, p: number, test: (s: string, k: number) => boolean): number => {
  for (let k = nextLt(s, p); k !== -1; k = nextLt(s, k + 1)) if (test(s, k)) return k
  return s.length
}

const isInvoke = (s: string, k: number): boolean => openAt(s, k, "<invoke")

/**
 * One attribute (or the tag's end) from the sticky position: whitespace, then `>` or `/>`, or a name with an
 * optional value, double-quoted, single-quoted or unquoted. As in XML, no value holds a `<`, so an unclosed quote
 * cannot swallow the tags after it.
 */
const ATTRIBUTE =
  /[ \t\n\r\f]*(?:(\/?>)|([^ \t\n\r\f>/="'<]+)[ \t\n\r\f]*(?:=[ \t\n\r\f]*(?:"([^"<]*)"|'([^'<]*)'|((?:[^ \t\n\r\f>"'<=/]|\/(?!>))+)))?)/y

interface StartTag {
  /** The first `name` attribute, entities decoded; undefined when there is none. */
  readonly name: string | undefined
  readonly end: number
  readonly selfClosing: boolean
}

/** The attributes from `i` (just after the tag's name) to its `>` or `/>`; undefined when malformed. */
const readStartTag = (s: string, i: number): StartTag | undefined => {
  let name: string | undefined
  ATTRIBUTE.lastIndex = i
  for (let m = ATTRIBUTE.exec(s); m !== null; m = ATTRIBUTE.exec(s)) {
    if (m[1] !== undefined) return { name, end: ATTRIBUTE.lastIndex, selfClosing: m[1] === "/>" }
    if (m[2] === "name" && name === undefined) name = decodeEntities(m[3] ?? m[4] ?? m[5] ?? "")
  }
  return undefined
}

type Items = Array<ToolCall | InvalidCall>

const invalid = (name: string | undefined, reason: string, raw: string): InvalidCall =>
  name === undefined ? { _tag: "InvalidCall", reason, raw } : { _tag: "InvalidCall", name, reason, raw }

/**
 * The calls of a block whose inside (between its tags) is `s`, in order, each valid one with an id from `nextId`.
 *
 * - A value ends at the first `</parameter>` outside CDATA. Any other parameter or invoke tag met before it means
 *   the parameter was not closed, and the invoke is invalid (so a value is never cut short silently).
 * - A malformed invoke extends to its `</invoke>` or to the next `<invoke`, whichever comes first; it is reported
 *   with its raw text and the invokes beside it are unaffected.
 * - Text between invokes is reported as invalid (nothing is dropped without a trace).
 *
 * @internal
 */
export const parseBlock = (s: string, index: ToolIndex, nextId: () => string): Items => {
  const out: Items = []
  for (let p = skipWs(s, 0); p < s.length; p = skipWs(s, p)) {
    if (isInvoke(s, p)) p = parseInvoke(s, p, index, nextId, out)
    else {
      const e = nextTag(s, p + 1, isInvoke)
      out.push(invalid(undefined, "text outside <invoke> in a <function_calls> block", s.slice(p, e).trimEnd()))
      p = e
    }
  }
  return out
}

/** A malformed `<invoke` tag at `start`: the invoke runs to its `</invoke>` or the next `<invoke`. */
const skipMalformed = (s: string, start: number): number => {
  for (let k = nextTag(s, start + 7, isStructural); k < s.length; k = nextTag(s, k + 1, isStructural)) {
    const c = closeAt(s, k, "</invoke")
    if (c >= 0) return c
    if (isInvoke(s, k)) return k
  }
  return s.length
}

/** Where a value that starts at `v` ends: at its `</parameter>`, or where another tag (or the block's end) cuts it. */
const valueEnd = (s: string, v: number): number => {
  for (let k = nextLt(s, v); k !== -1; k = nextLt(s, k + 1)) {
    if (closeAt(s, k, "</parameter") >= 0 || isStructural(s, k)) return k
  }
  return s.length
}

const parseInvoke = (s: string, start: number, index: ToolIndex, nextId: () => string, out: Items): number => {
  const tag = readStartTag(s, start + 7)
  if (tag === undefined) {
    const e = skipMalformed(s, start)
    out.push(invalid(undefined, "malformed <invoke> tag", s.slice(start, e).trimEnd()))
    return e
  }
  const name = tag.name
  const kinds = name === undefined ? undefined : index.tools.get(name)
  const args: Record<string, unknown> = {}
  // The first problem found; the invoke is then reported, not executed, and its values are not converted.
  let reason: string | undefined
  let end = tag.end
  for (let p = tag.end; !tag.selfClosing;) {
    p = skipWs(s, p)
    if (p >= s.length) {
      reason ??= "<invoke> not closed"
      end = s.length
      break
    }
    const invokeEnd = closeAt(s, p, "</invoke")
    if (invokeEnd >= 0) {
      end = invokeEnd
      break
    }
    if (isInvoke(s, p)) {
      reason ??= "<invoke> not closed"
      end = p
      break
    }
    if (!openAt(s, p, "<parameter")) {
      reason ??= "unexpected text inside <invoke>"
      p = nextTag(s, p + 1, isStructural)
      continue
    }
    const param = readStartTag(s, p + 10)
    if (param === undefined) {
      reason ??= "malformed <parameter> tag"
      p = nextTag(s, p + 1, isStructural)
      continue
    }
    const key = param.name
    const at = param.selfClosing ? param.end : valueEnd(s, param.end)
    const closed = param.selfClosing ? param.end : closeAt(s, at, "</parameter")
    if (closed < 0) {
      reason ??= `parameter ${JSON.stringify(key ?? "")} not closed by </parameter>`
      p = at
      continue
    }
    p = closed
    if (reason !== undefined) continue
    if (key === undefined || key === "") reason = "<parameter> without a name"
    else if (Object.hasOwn(args, key)) reason = `duplicate parameter ${JSON.stringify(key)}`
    else {
      const value = convertValue(s.slice(param.end, at), kinds?.get(key) ?? 0)
      // A parameter named `__proto__` is data, not a prototype.
      if (key === "__proto__") Object.defineProperty(args, key, { value, enumerable: true, writable: true, configurable: true })
      else args[key] = value
    }
  }
  if (name === undefined || name === "") reason ??= "<invoke> without a name"
  else if (name.length > index.maxNameLength) reason ??= `tool name longer than ${index.maxNameLength} characters`
  else if (index.filter && kinds === undefined) {
    reason ??= `unknown tool ${JSON.stringify(name)}: not among this turn's tools, not executed`
  }
  if (reason !== undefined) {
    const shown = name === undefined || name.length > index.maxNameLength ? undefined : name
    out.push(invalid(shown, reason, s.slice(start, end).trimEnd()))
  } else out.push({ _tag: "ToolCall", id: nextId(), name: name!, arguments: args })
  return end
}
