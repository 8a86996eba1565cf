/**
 * The one state machine behind both whole-text and streaming parsing. It reads text in chunks and collects prose,
 * complete calls and invalid calls in order. Each chunk is read once, as a window: the text held back from the
 * last chunk (at most a 16-character partial tag, or half a surrogate pair), then the chunk. The open
 * `<function_calls>` block goes to its own parser as it arrives (kept, capped, in case it is to become text).
 *
 * Modes: prose; an inline code span; a fenced code block; a `<think>` section; a `<function_calls>` block (one
 * that outgrew the cap passes through as text until its end).
 *
 * @internal
 */
import type { InvalidCall, TextDelta, ToolCall } from "../../ToolTags.js"
import { BlockParser, isPartial, OPEN } from "./block.js"
import type { ToolIndex } from "./values.js"

/** @internal */
export interface ScannerConfig {
  readonly think: "strip" | "text" | "parse"
  readonly maxBlockBytes: number
  readonly index: ToolIndex
  readonly nextId: () => string
}

/** What the scanner reports, in order; the text between two calls or invalid calls comes as one delta. @internal */
export type Item = TextDelta | ToolCall | InvalidCall

type Mode = "prose" | "code" | "fence" | "think" | "block"

const THINK_OPEN = "<think>"
const THINK_CLOSE = "</think>"

const LT = 60
const TICK = 96
const TILDE = 126
const LF = 10

/** The position of the first of the code units `a`, `b`, `c` in `w` at or after `p`; -1 if none. */
const indexOfAny = (w: string, p: number, a: number, b: number, c: number): number => {
  for (let i = p, n = w.length; i < n; i++) {
    const x = w.charCodeAt(i)
    if (x === a || x === b || x === c) return i
  }
  return -1
}

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff

/**
 * The indentation (0–3 spaces) of the line at `pos` if only spaces precede `pos` on its line, else -1. `base` is
 * the same measure at the window's start.
 */
const lineIndentAt = (w: string, pos: number, base: number): number => {
  let k = pos
  while (k > 0 && w.charCodeAt(k - 1) === 32) if (pos - --k > 3) return -1
  if (k > 0) return w.charCodeAt(k - 1) === LF ? pos - k : -1
  return base >= 0 && base + pos <= 3 ? base + pos : -1
}

/** @internal */
export class Scanner {
  private mode: Mode = "prose"
  /** Text carried into the next window: a possible partial tag, or the high half of a surrogate pair. */
  private held = ""
  /** Indentation of the line at the next window's start (see `lineIndentAt`); the text starts on a line. */
  private indent = 0
  /** A run of backticks or tildes that reached the window's end, so its length is not known yet. */
  private run: { readonly char: number; len: number; readonly indent: number } | undefined = undefined
  private spanLen = 0
  private fenceChar = 0
  private fenceLen = 0
  /** Where a fence's current line is: indentation, the fence run, blanks after it, or the rest of the line. */
  private fenceLine: "indent" | "run" | "blanks" | "rest" = "rest"
  private fenceCount = 0
  /** The open block's parser, fed as the block arrives. */
  private parser: BlockParser
  private ended = false
  /** What was found since the last `take`, and the text after it (one delta in the making). */
  private items: Array<Item> = []
  private pending = ""
  /** The current window. */
  private w = ""
  private readonly thinkTags: boolean
  private readonly keepThink: boolean
  private readonly proseTags: ReadonlyArray<string>

  constructor(private readonly cfg: ScannerConfig) {
    this.thinkTags = cfg.think !== "parse"
    this.keepThink = cfg.think === "text"
    this.proseTags = this.thinkTags ? [OPEN, THINK_OPEN] : [OPEN]
    this.parser = new BlockParser(cfg.index)
  }

  /** Code units held back right now: a partial tag, or the open block. */
  get buffered(): number {
    return this.held.length + (this.mode === "block" ? this.parser.text.length : 0)
  }

  push(chunk: string): void {
    if (this.ended) return
    try {
      // Typed callers pass strings; anything else is text too.
      const text = typeof chunk === "string" ? chunk : String(chunk)
      if (text.length > 0) this.window(text, false)
    } catch (e) {
      this.failed(e)
    }
  }

  /** Ends the text: held-back text is released; an unclosed block is text (never a call). */
  end(): void {
    if (this.ended) return
    try {
      this.window("", true)
      if (this.mode === "block") this.pending += this.parser.text
    } catch (e) {
      this.failed(e)
    }
    this.ended = true
    this.mode = "prose"
  }

  /** Unreachable by design: should a bug (or a hostile chunk's `toString`) throw, the caller gets a report. */
  private failed(e: unknown): void {
    this.emit({ _tag: "InvalidCall", reason: `internal parser error: ${String(e)}`, raw: "" })
  }

  /** What was found since the last call, in order. */
  take(): Array<Item> {
    this.flushText()
    const items = this.items
    this.items = []
    return items
  }

  private flushText(): void {
    if (this.pending.length > 0) this.items.push({ _tag: "TextDelta", text: this.pending })
    this.pending = ""
  }

  private emit(item: Item): void {
    this.flushText()
    this.items.push(item)
  }

  /** Window text `[a, b)` as prose. */
  private out(a: number, b: number): void {
    if (b > a) this.pending += this.w.slice(a, b)
  }

  /** Window text from `a` to its end as prose, holding back a high surrogate whose low half is still to come. */
  private tail(a: number, final: boolean): number {
    const n = this.w.length
    if (!final && n > a && isHighSurrogate(this.w.charCodeAt(n - 1))) {
      this.out(a, n - 1)
      this.held = this.w.slice(n - 1)
    } else this.out(a, n)
    return n
  }

  private window(chunk: string, final: boolean): void {
    const w = this.held + chunk
    const n = w.length
    this.held = ""
    this.w = w
    const run = this.run
    if (run !== undefined && w.charCodeAt(0) !== run.char) {
      // The run that reached the last window's end ended there.
      this.run = undefined
      this.endRun(run.char, run.len, run.indent)
    }
    let p = 0
    while (p < n) {
      const mode = this.mode
      p = mode === "prose" || mode === "code" ? this.prose(p, final)
        : mode === "fence" ? this.fence(p, final) : mode === "think" ? this.think(p, final) : this.inBlock(p, final)
    }
    if (this.mode === "block" && this.parser.text.length > this.cfg.maxBlockBytes) this.overflow()
    this.indent = lineIndentAt(w, n - this.held.length, this.indent)
    this.w = ""
  }

  /** A run of `len` backticks or tildes is complete: it may open a fence or a code span, or close a span. */
  private endRun(char: number, len: number, indent: number): boolean {
    if (this.mode === "code") {
      if (len !== this.spanLen) return false
      this.mode = "prose"
    } else if (indent >= 0 && len >= 3) {
      this.mode = "fence"
      this.fenceChar = char
      this.fenceLen = len
      this.fenceLine = "rest"
    } else if (char === TICK) {
      this.mode = "code"
      this.spanLen = len
    } else return false
    return true
  }

  /**
   * Prose, or an inline code span (`code`): text until a block, a `<think>` section, a code span or a fence opens;
   * in a span, until a backtick run of the opening length or the end of the line.
   */
  private prose(p: number, final: boolean): number {
    const w = this.w
    const n = w.length
    const start = p
    const code = this.mode === "code"
    for (;;) {
      const i = code ? indexOfAny(w, p, LF, TICK, TICK) : indexOfAny(w, p, LT, TICK, TILDE)
      if (i === -1) return this.tail(start, final)
      const c = w.charCodeAt(i)
      if (c === LF) {
        this.out(start, i + 1)
        this.mode = "prose"
        return i + 1
      }
      if (c === LT) {
        if (w.startsWith(OPEN, i)) {
          this.out(start, i)
          this.mode = "block"
          this.parser = new BlockParser(this.cfg.index)
          return i + OPEN.length
        }
        if (this.thinkTags && w.startsWith(THINK_OPEN, i)) {
          this.out(start, i)
          if (this.keepThink) this.pending += THINK_OPEN
          this.mode = "think"
          return i + THINK_OPEN.length
        }
        if (!final && isPartial(w, i, this.proseTags)) {
          this.out(start, i)
          this.held = w.slice(i)
          return n
        }
        p = i + 1
        continue
      }
      let j = i + 1
      while (j < n && w.charCodeAt(j) === c) j++
      // A run at the window's start goes on from the last window's end.
      const carried = i === 0 ? this.run : undefined
      this.run = undefined
      const len = j - i + (carried?.len ?? 0)
      const indent = carried?.indent ?? (code ? -1 : lineIndentAt(w, i, this.indent))
      // Tildes only open fences: mid-line, or fewer than three with the run complete, they are text.
      if (c === TILDE && (indent < 0 || (len < 3 && j < n))) {
        p = j
        continue
      }
      if (j === n && !final) {
        this.run = { char: c, len, indent }
        this.out(start, n)
        return n
      }
      if (this.endRun(c, len, indent)) {
        this.out(start, j)
        return j
      }
      p = j
    }
  }

  /** Fenced code: until a line of at least as many fence characters (up to 3 spaces before, blanks after). */
  private fence(p: number, final: boolean): number {
    const w = this.w
    const start = p
    while (p < w.length) {
      if (this.fenceLine === "rest") {
        // Not a closing line: on to its end.
        const nl = w.indexOf("\n", p)
        if (nl === -1) break
        p = nl
      }
      if (this.fenceStep(w.charCodeAt(p++))) {
        this.out(start, p)
        this.mode = "prose"
        return p
      }
    }
    return this.tail(start, final)
  }

  /** One more character of the fence's current line; true when it is the line break of a closing line. */
  private fenceStep(c: number): boolean {
    const line = this.fenceLine
    if (c === LF) {
      this.fenceLine = "indent"
      const count = this.fenceCount
      this.fenceCount = 0
      return line === "blanks" || (line === "run" && count >= this.fenceLen)
    }
    if (line === "indent" && c === 32 && this.fenceCount < 3) this.fenceCount++
    else if ((line === "indent" || line === "run") && c === this.fenceChar) {
      this.fenceCount = line === "run" ? this.fenceCount + 1 : 1
      this.fenceLine = "run"
    } else {
      // After the run only blanks may follow; anything else makes this an ordinary line.
      const blank = c === 32 || c === 9 || c === 13
      this.fenceLine = line !== "indent" && line !== "rest" && blank && this.fenceCount >= this.fenceLen ? "blanks" : "rest"
    }
    return false
  }

  /** A `<think>` section: kept as text or dropped, until `</think>`. */
  private think(p: number, final: boolean): number {
    const w = this.w
    const k = w.indexOf(THINK_CLOSE, p)
    if (k !== -1) {
      if (this.keepThink) this.out(p, k + THINK_CLOSE.length)
      this.mode = "prose"
      return k + THINK_CLOSE.length
    }
    // What may begin `</think>` at the window's end waits for the next window.
    let h = w.lastIndexOf("<")
    if (final || h < p || !isPartial(w, h, [THINK_CLOSE])) h = w.length
    if (h < w.length) {
      if (this.keepThink) this.out(p, h)
      this.held = w.slice(h)
      return w.length
    }
    return this.keepThink ? this.tail(p, final) : w.length
  }

  /**
   * A block, until `</function_calls>` outside CDATA. The open block's text is its parser's; once it has outgrown
   * the cap (`discard`), its text goes out as text.
   */
  private inBlock(p: number, final: boolean): number {
    const w = this.w
    const overflowed = this.parser.discard
    const e = this.parser.scan(w, p, final)
    if (e >= 0) {
      this.mode = "prose"
      if (overflowed) this.out(p, e)
      else if (this.parser.text.length > this.cfg.maxBlockBytes) this.tooLong(this.parser.text)
      else for (const item of this.parser.take(this.cfg.nextId)) this.emit(item)
      return e
    }
    const h = this.parser.hold
    if (overflowed && h === w.length) return this.tail(p, final)
    if (overflowed) this.out(p, h)
    this.held = w.slice(h)
    return w.length
  }

  /** The open block outgrew the cap: reported, its text so far returned as text, and the rest as it comes. */
  private overflow(): void {
    let raw = this.parser.text
    if (isHighSurrogate(raw.charCodeAt(raw.length - 1))) {
      // Returned as text, the block's cut waits for a surrogate's low half, as text does everywhere.
      this.held = raw.slice(-1) + this.held
      raw = raw.slice(0, -1)
    }
    this.parser.discard = true
    this.parser.text = ""
    this.tooLong(raw)
  }

  /** A block that outgrew the cap: reported, and its text returned as text. */
  private tooLong(raw: string): void {
    this.emit({
      _tag: "InvalidCall",
      reason: `<function_calls> block longer than ${this.cfg.maxBlockBytes} characters: returned as text, not executed`,
      // The text itself is returned as text: the report repeats its start.
      raw: raw.slice(0, Math.min(256, this.cfg.maxBlockBytes))
    })
    this.pending += raw
  }
}
