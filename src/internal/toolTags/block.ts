/**
 * A `<function_calls>` block, parsed as it streams in: the text is cut into tokens at each `<` outside CDATA (a
 * tag, then the text up to the next `<`), and each complete token moves a small state machine over invokes and
 * parameters. So a block costs time linear in its length, spread over the pushes that bring it, and its end
 * costs no more than its last token. Its calls are handed over when the block closes.
 *
 * @internal
 */
import type { InvalidCall, ToolCall } from "../../ToolTags.js"
import { convertValue, decodeText, type ToolIndex } from "./values.js"

/** @internal */
export const OPEN = "<function_calls>"
/** @internal */
export const CLOSE = "</function_calls>"
const CDATA_OPEN = "<![CDATA["
const BLOCK_TAGS = [CLOSE, CDATA_OPEN]
/** The most parameters an invoke may have: no tool has more, and a hostile one costs a map insert each. */
const MAX_PARAMETERS = 1000

/** Whether the rest of `w` from `i` is a proper prefix of one of `tags` (a tag that may be completed later). @internal */
export const isPartial = (w: string, i: number, tags: ReadonlyArray<string>): boolean => {
  for (const t of tags) if (w.length - i < t.length && t.startsWith(w.slice(i))) return true
  return false
}

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

const isInvoke = (s: string, i: number): boolean => openAt(s, i, "<invoke")

/** A token that ends a parameter's value early, or a skip after a fault: a parameter or invoke, or `</invoke>`. */
const isStructural = (t: string): boolean => openAt(t, 0, "<parameter") || isInvoke(t, 0) || closeAt(t, 0, "</invoke") >= 0

/**
 * One attribute (or the tag's end) from the sticky position: whitespace, then `>` or `/>`, or a name with an
 * optional value, double-quoted, single-quoted or unquoted. As in XML, no value holds a `<`, so an unclosed quote
 * cannot swallow the tags after it (and a start tag never outgrows its token).
 */
const ATTRIBUTE =
  /[ \t\n\r\f]*(?:(\/?>)|([^ \t\n\r\f>/="'<]+)[ \t\n\r\f]*(?:=[ \t\n\r\f]*(?:"([^"<]*)"|'([^'<]*)'|((?:[^ \t\n\r\f>"'<=/]|\/(?!>))+)))?)/y

/**
 * The attributes of the token `s`'s start tag from `i` (just after the tag's name) to its `>` or `/>`: the first
 * `name` attribute (entities decoded), and where the tag ends (-1 when it is malformed; `name` is then what was
 * read before).
 */
const readStartTag = (s: string, i: number): { name: string | undefined; end: number; selfClosing: boolean } => {
  // The usual ` name="x">` without the regex: what it would read.
  if (s.startsWith(" name=\"", i)) {
    const q = s.indexOf("\"", i + 7)
    if (q > 0 && s.charCodeAt(q + 1) === 62) return { name: decodeText(s.slice(i + 7, q)), end: q + 2, selfClosing: false }
  }
  let name: string | undefined
  ATTRIBUTE.lastIndex = i
  for (let m = ATTRIBUTE.exec(s); m !== null; m = ATTRIBUTE.exec(s)) {
    if (m[1] !== undefined) return { name, end: ATTRIBUTE.lastIndex, selfClosing: m[1] === "/>" }
    if (m[2] === "name" && name === undefined) name = decodeText(m[3] ?? m[4] ?? m[5] ?? "")
  }
  return { name, end: -1, selfClosing: false }
}

/** Between invokes, in stray text, or in an invoke: between parameters, in a value, or skipping after a fault. */
type State = "outside" | "stray" | "invoke" | "value" | "skip"

/**
 * The invoke being read (or run of stray text, which has no `args`): where it starts in the block, its name and
 * the kinds of its parameters, its arguments, and its first problem. After a structural fault (`broken`)
 * parameters are no longer read into `args` (a duplicate is no such fault).
 */
interface Invoke {
  readonly start: number
  readonly name: string | undefined
  readonly kinds: ReadonlyMap<string, number> | undefined
  readonly args: Record<string, unknown> | undefined
  count: number
  reason: string | undefined
  broken: boolean
}

/** What the block holds, in order: calls, and invalid calls whose `raw` is the block's text from `from` to `to`. */
type Found = ToolCall | (Omit<InvalidCall, "raw"> & { readonly from: number; readonly to: number })

/** One block's parser, by the rules stated in `ToolTags.ts`. @internal */
export class BlockParser {
  /** After a `scan` that did not reach the block's end: where the text to hold back begins. */
  hold = 0
  /** Set when the block outgrew its cap: only its end is looked for. */
  discard = false
  /** The block's text so far, opening tag included (closing tag too once read); not kept once `discard`. */
  text = OPEN
  /** The current token's text from earlier windows, and where it starts. */
  private tok = ""
  private tokAt = 0
  /** Where the current token starts in the block. */
  private at = 0
  private cdata = false
  private state: State = "outside"
  private readonly found: Array<Found> = []
  private inv: Invoke = { start: 0, name: undefined, kinds: undefined, args: {}, count: 0, reason: undefined, broken: false }
  /** The open parameter's name and value text. */
  private key: string | undefined = undefined
  private value = ""

  constructor(private readonly index: ToolIndex) {}

  /**
   * Reads the window `w` from `p`: the position just after `</function_calls>` when the block ends there, else -1
   * with `hold` set (a possible partial tag, or the start of a CDATA's `]]>`, is held back unless `final`).
   */
  scan(w: string, p: number, final: boolean): number {
    const n = w.length
    // A position in the window, plus this, is one in the block.
    const origin = this.text.length - p
    let a = p
    let i = p
    for (;;) {
      if (this.cdata) {
        const e = w.indexOf("]]>", i)
        if (e === -1) {
          this.hold = final ? n : Math.max(i, w.endsWith("]]") ? n - 2 : w.endsWith("]") ? n - 1 : n)
          break
        }
        i = e + 3
        this.cdata = false
      }
      const k = w.indexOf("<", i)
      if (k === -1 || (!final && isPartial(w, k, BLOCK_TAGS))) {
        this.hold = k === -1 ? n : k
        break
      }
      // A token ends here; a CDATA section starts a token of text.
      const t = this.discard ? "" : this.tok + w.slice(a, k)
      if (t !== "") this.token(t, this.tok === "" ? origin + a : this.tokAt)
      this.tok = ""
      a = k
      i = k + 1
      if (w.startsWith(CLOSE, k)) {
        if (!this.discard) this.text += w.slice(p, k + CLOSE.length)
        return k + CLOSE.length
      }
      if (w.startsWith(CDATA_OPEN, k)) {
        this.cdata = true
        i = k + CDATA_OPEN.length
      }
    }
    if (!this.discard && this.hold > a) {
      if (this.tok === "") this.tokAt = origin + a
      this.tok += w.slice(a, this.hold)
    }
    if (!this.discard) this.text += w.slice(p, this.hold)
    return -1
  }

  /** The block's calls once it has closed, given ids in order. */
  take(nextId: () => string): Array<ToolCall | InvalidCall> {
    if (this.state !== "outside") {
      if (this.state === "value") this.fault(`parameter ${JSON.stringify(this.key ?? "")} not closed by </parameter>`)
      this.fault("<invoke> not closed")
      this.end(this.text.length - CLOSE.length)
    }
    return this.found.map((f): ToolCall | InvalidCall => {
      if (f._tag === "ToolCall") return { ...f, id: nextId() }
      const { from, to, ...call } = f
      return { ...call, raw: this.text.slice(from, to).trimEnd() }
    })
  }

  /** A token, which starts at `at` in the block. */
  private token(t: string, at: number): void {
    this.at = at
    if (this.state === "outside") this.outside(t, 0)
    else if (this.state !== "stray") this.inside(t)
    else if (isInvoke(t, 0)) {
      // Stray text runs to the next invoke.
      this.end(at)
      this.open(t)
    }
  }

  /** Text after an invoke (from `i`), or a token between invokes: blanks, an invoke, or stray text. */
  private outside(t: string, i: number): void {
    const j = skipWs(t, i)
    if (j >= t.length) return
    if (j === 0 && isInvoke(t, 0)) return this.open(t)
    this.state = "stray"
    const reason = "text outside <invoke> in a <function_calls> block"
    this.inv = { start: this.at + j, name: undefined, kinds: undefined, args: undefined, count: 0, reason, broken: true }
  }

  /** A token that starts with `<invoke`. */
  private open(t: string): void {
    const tag = readStartTag(t, 7)
    const kinds = tag.name === undefined ? undefined : this.index.tools.get(tag.name)
    this.inv = { start: this.at, name: tag.name, kinds, args: {}, count: 0, reason: undefined, broken: false }
    if (tag.selfClosing) {
      this.end(this.at + tag.end)
      return this.outside(t, tag.end)
    }
    this.state = "invoke"
    if (tag.end < 0) this.skip("malformed <invoke> tag")
    else this.blanks(t, tag.end)
  }

  /** A token while an invoke is open. */
  private inside(t: string): void {
    const state = this.state
    if (state === "value") {
      const c = closeAt(t, 0, "</parameter")
      if (c < 0 && !isStructural(t)) {
        this.value += t
        return
      }
      if (c >= 0) {
        this.param(this.value)
        this.state = "invoke"
        return this.blanks(t, c)
      }
      this.fault(`parameter ${JSON.stringify(this.key ?? "")} not closed by </parameter>`)
    } else if (state === "skip" && !isStructural(t)) return
    const c = closeAt(t, 0, "</invoke")
    if (c >= 0) {
      this.end(this.at + c)
      return this.outside(t, c)
    }
    if (isInvoke(t, 0)) {
      this.fault("<invoke> not closed")
      this.end(this.at)
      return this.open(t)
    }
    this.state = "invoke"
    if (!openAt(t, 0, "<parameter")) return this.skip("unexpected text inside <invoke>")
    const tag = readStartTag(t, 10)
    if (tag.end < 0) return this.skip("malformed <parameter> tag")
    this.key = tag.name
    if (!tag.selfClosing) {
      this.state = "value"
      this.value = t.slice(tag.end)
      return
    }
    this.param("")
    this.blanks(t, tag.end)
  }

  /** After a tag inside an invoke, only blanks may follow (up to the next tag). */
  private blanks(t: string, i: number): void {
    if (skipWs(t, i) < t.length) this.skip("unexpected text inside <invoke>")
  }

  private skip(why: string): void {
    this.fault(why)
    this.state = "skip"
  }

  private fault(why: string): void {
    this.inv.reason ??= why
    this.inv.broken = true
  }

  /** A closed parameter; of duplicates the last is kept, for the report. */
  private param(raw: string): void {
    const { args, kinds } = this.inv
    const key = this.key
    if (this.inv.broken || args === undefined) return
    if (key === undefined || key === "") return this.fault("<parameter> without a name")
    if (Object.hasOwn(args, key)) this.inv.reason ??= `duplicate parameter ${JSON.stringify(key)}`
    else if (++this.inv.count > MAX_PARAMETERS) return this.fault(`more than ${MAX_PARAMETERS} parameters`)
    const value = convertValue(raw, kinds?.get(key) ?? 0)
    // A parameter named `__proto__` is data, not a prototype.
    if (key === "__proto__") Object.defineProperty(args, key, { value, enumerable: true, writable: true, configurable: true })
    else args[key] = value
  }

  /** The invoke ends at `to` (in the block). */
  private end(to: number): void {
    const { args, kinds, name, start } = this.inv
    let reason = this.inv.reason
    if (name === undefined || name === "") reason ??= "<invoke> without a name"
    else if (name.length > this.index.maxNameLength) reason ??= `tool name longer than ${this.index.maxNameLength} characters`
    else if (this.index.filter && kinds === undefined) {
      reason ??= `unknown tool ${JSON.stringify(name)}: not among this turn's tools, not executed`
    }
    const named = name === undefined ? {} : { name }
    this.found.push(reason === undefined
      ? { _tag: "ToolCall", id: "", name: name!, arguments: args! }
      : { _tag: "InvalidCall", ...named, reason, ...(args && { arguments: args }), from: start, to })
    this.state = "outside"
  }
}
