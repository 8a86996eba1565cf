/**
 * The one state machine behind both whole-text and streaming parsing. It reads text in chunks and tells a sink
 * about prose, complete calls and invalid calls. Every character is looked at a bounded number of times: the
 * only text carried from one chunk to the next is a possible partial tag (at most 16 characters) or the open
 * `<function_calls>` block, which is capped.
 *
 * Modes: prose; inline code span; fenced code block; `<think>` section; `<function_calls>` block; and a block
 * that outgrew the cap (passed through as text until its end).
 *
 * @internal
 */
import type { Handler } from "../ToolTags.js"
import type { ToolIndex } from "./toolTagsBlock.js"
import { parseBlock } from "./toolTagsBlock.js"

/** @internal */
export interface ScannerConfig {
  /** `<think>` is recognised (modes "strip" and "text"). */
  readonly thinkTags: boolean
  /** `<think>` sections are kept as text (mode "text") rather than dropped. */
  readonly thinkKeep: boolean
  readonly maxBlockBytes: number
  readonly index: ToolIndex
  readonly nextId: () => string
}

const OPEN = "<function_calls>"
const CLOSE = "</function_calls>"
const THINK_OPEN = "<think>"
const THINK_CLOSE = "</think>"
const CDATA_OPEN = "<![CDATA["

const LT = 60
const TICK = 96
const TILDE = 126
const LF = 10
const CR = 13
const SP = 32
const TAB = 9

const PROSE = 0
const CODE = 1
const FENCE = 2
const THINK = 3
const BLOCK = 4
const OVERFLOW = 5

/** How much of an invalid block's text its report repeats (the text itself is returned as text). */
const PREVIEW = 256

/**
 * The indentation of the line at `pos` if only spaces (at most 3) precede `pos` on its line, else -1.
 * `base` is the same measure at the window's start.
 */
const lineIndentAt = (w: string, pos: number, base: number): number => {
  let k = pos
  let count = 0
  while (k > 0 && w.charCodeAt(k - 1) === SP) {
    k--
    if (++count > 3) return -1
  }
  if (k === 0) {
    if (base < 0) return -1
    const t = base + count
    return t <= 3 ? t : -1
  }
  return w.charCodeAt(k - 1) === LF ? count : -1
}

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff

/** Whether the window's rest from `i` is a proper prefix of `a` or `b` (a tag that may be completed later). */
const prefixAt = (w: string, i: number, a: string, b: string | undefined): boolean => {
  const rest = w.slice(i)
  return a.startsWith(rest) || (b !== undefined && b.startsWith(rest))
}

/** Whether `s` from `k` agrees with `tag` as far as both go (so the tag may start at `k`). */
const agreesAt = (s: string, k: number, tag: string): boolean => {
  const m = Math.min(tag.length, s.length - k)
  for (let i = 1; i < m; i++) if (s.charCodeAt(k + i) !== tag.charCodeAt(i)) return false
  return true
}

/** The start of a proper prefix of `a` or `b` that ends the window, searching from `from`; -1 if none. */
const partialAt = (w: string, from: number, n: number, a: string, b: string | undefined): number => {
  let i = w.indexOf("<", Math.max(from, n - a.length + 1))
  while (i !== -1) {
    const rest = w.slice(i)
    if (a.startsWith(rest) || (b !== undefined && b.startsWith(rest))) return i
    i = w.indexOf("<", i + 1)
  }
  return -1
}

/** @internal */
export class Scanner {
  private mode = PROSE
  private held = ""
  /** Line indentation at the start of the next window (see `lineIndentAt`); the text starts on a line. */
  private indent = 0
  /** A run of backticks or tildes that reached the end of the window, so its length is not known yet. */
  private runChar = 0
  private runLen = 0
  private runIndent = -1
  private spanLen = 0
  private fenceChar = 0
  private fenceLen = 0
  /** Fence closing-line state: 0 indentation, 1 fence run, 2 trailing blanks, 3 rest of line. */
  private flPhase = 3
  private flN = 0
  /** The open block's text from earlier windows (a rope: appends are O(1), the block parser flattens it once). */
  private blockText = ""
  /** Where the open block starts in the current window, or -1 when it started in an earlier one. */
  private blockStart = -1
  private cdata = false
  private ended = false
  // The current window and the next positions of `<`, backtick, `~`, `\n`, `</function_calls>` and `<![CDATA[`
  // in it (-2: not searched yet; -1: none up to the end).
  private w = ""
  private cLt = -2
  private cTick = -2
  private cTilde = -2
  private cNl = -2
  private cClose = -2
  private cCdata = -2

  constructor(private readonly sink: Handler, private readonly cfg: ScannerConfig) {}

  /** Code units held back: a partial tag, or the open block. */
  get buffered(): number {
    return this.held.length + (this.mode === BLOCK ? this.blockText.length : 0)
  }

  get done(): boolean {
    return this.ended
  }

  push(chunk: string): void {
    // The hottest cases inline (small enough for the JIT to inline into a caller's loop): one character of plain
    // prose, or of a block's text.
    if (chunk.length === 1 && this.held.length === 0 && this.runChar === 0 && !this.ended) {
      const c = chunk.charCodeAt(0)
      if (this.mode === PROSE) {
        if (c !== LT && c !== TICK && c !== TILDE && !isHighSurrogate(c)) {
          this.sink.text(chunk)
          this.lineOne(c)
          return
        }
      } else if (this.mode === BLOCK) {
        if (c !== LT && !this.cdata) {
          this.appendBlock(chunk)
          return
        }
      } else if (this.mode === CODE && c !== TICK && c !== LF && !isHighSurrogate(c)) {
        // Inside a code span the line already has its opening backtick, so the line state stays "not a start".
        this.sink.text(chunk)
        return
      }
    }
    this.pushAny(chunk)
  }

  private pushAny(chunk: string): void {
    if (this.ended) return
    const n = chunk.length
    if (n === 1) {
      if (this.one(chunk)) return
    } else if (n === 0 || (n <= 32 && this.quick(chunk))) return
    this.run(chunk, false)
  }

  /**
   * One character (the finest streaming granularity): the common case of each mode, without setting up a
   * window. Same effect as `run`; false when `run` is needed (a backtick or tilde run, a completed tag, CDATA,
   * a surrogate pair, a `<think>` section).
   */
  private one(chunk: string): boolean {
    const c = chunk.charCodeAt(0)
    if (isHighSurrogate(c)) return false
    if (this.runChar !== 0) {
      if (c === this.runChar) {
        this.runLen++
        this.sink.text(chunk)
        this.indent = -1
        return true
      }
      this.resolveRun()
    }
    switch (this.mode) {
      case PROSE:
        if (this.held.length !== 0) return this.heldOne(chunk, c, OPEN, this.cfg.thinkTags ? THINK_OPEN : undefined)
        if (c === LT) {
          this.held = chunk
          return true
        }
        // A run starts: its length decides between span, fence and prose.
        if (c === TICK || c === TILDE) this.startRun(c, this.indent <= 3 ? this.indent : -1)
        this.sink.text(chunk)
        this.lineOne(c)
        return true
      case BLOCK:
        if (this.cdata) return false
        if (this.held.length !== 0) return this.heldOne(chunk, c, CLOSE, CDATA_OPEN)
        if (c === LT) this.held = chunk
        else this.appendBlock(chunk)
        return true
      case CODE:
        if (this.held.length !== 0) return false
        if (c === TICK) this.startRun(c, -1)
        else if (c === LF) this.mode = PROSE
        this.sink.text(chunk)
        this.lineOne(c)
        return true
      case FENCE:
        if (this.held.length !== 0) return false
        this.sink.text(chunk)
        if (this.fenceStep(c)) this.mode = PROSE
        this.lineOne(c)
        return true
      default:
        return false
    }
  }

  /**
   * `one` with a partial tag held (prose: of `<function_calls>` or `<think>`; a block: of `</function_calls>` or
   * `<![CDATA[`): it grows, or turns out to be text. False when it completes a tag, or when the character may
   * start something of its own.
   */
  private heldOne(chunk: string, c: number, a: string, b: string | undefined): boolean {
    const held = this.held
    const k = held.length
    if (held.charCodeAt(0) === LT) {
      // Which tag `held + chunk` may still begin (both tags start with `<` and differ in their second character).
      const t = k === 1
        ? (c === a.charCodeAt(1) ? a : b !== undefined && c === b.charCodeAt(1) ? b : undefined)
        : (held.charCodeAt(1) === a.charCodeAt(1) ? a : b)
      if (t !== undefined && c === t.charCodeAt(k)) {
        if (k + 1 === t.length) return false
        this.held = held + chunk
        return true
      }
    }
    if (c === LT || (this.mode === PROSE && (c === TICK || c === TILDE))) return false
    this.held = ""
    if (this.mode === BLOCK) this.appendBlock(held + chunk)
    else {
      this.sink.text(held + chunk)
      // What was held is not blank, so only a line break makes the next character a line start.
      this.indent = c === LF ? 0 : -1
    }
    return true
  }

  /** `indent` after one more character (what `lineIndentAt` gives). */
  private lineOne(c: number): void {
    // Mid-line (the common case) nothing changes: no store, and branches the CPU predicts.
    if (c === LF) this.indent = 0
    else if (this.indent >= 0) this.indent = c === SP && this.indent < 3 ? this.indent + 1 : -1
  }

  private appendBlock(s: string): void {
    this.blockText += s
    if (this.blockText.length > this.cfg.maxBlockBytes) this.overflow()
  }

  /**
   * A small chunk that only extends prose or block text (no `<` in it can start a tag, except a last one, which
   * is held back; or it turns a held partial tag into plain text), handled without setting up a window. Same
   * effect as `run`; false when `run` is needed.
   */
  private quick(chunk: string): boolean {
    const n = chunk.length
    const prose = this.mode === PROSE && this.runChar === 0
    if (!prose && !(this.mode === BLOCK && !this.cdata)) return false
    const a = prose ? OPEN : CLOSE
    const b = prose ? (this.cfg.thinkTags ? THINK_OPEN : undefined) : CDATA_OPEN
    let cut = n
    for (let k = 0; k < n; k++) {
      const c = chunk.charCodeAt(k)
      if (c === LT) {
        if (k === n - 1) cut = k
        else if (agreesAt(chunk, k, a) || (b !== undefined && agreesAt(chunk, k, b))) return false
      } else if (prose && (c === TICK || c === TILDE)) return false
    }
    let text = cut === n ? chunk : chunk.slice(0, cut)
    if (this.held.length > 0) {
      // Held: a partial tag (its only `<` first) or a high surrogate; no tag can start in `text`.
      const cand = this.held + text
      if (cut === n) {
        const partial = (cand.length < a.length && a.startsWith(cand)) ||
          (b !== undefined && cand.length < b.length && b.startsWith(cand))
        if (partial) {
          this.held = cand
          return true
        }
      }
      if (cand.startsWith(a) || (b !== undefined && cand.startsWith(b))) return false
      text = cand
    }
    if (prose) {
      if (cut === n && text.length > 0 && isHighSurrogate(text.charCodeAt(text.length - 1))) return false
      this.held = cut < n ? "<" : ""
      if (text.length > 0) this.sink.text(text)
      this.indent = lineIndentAt(text, text.length, this.indent)
    } else {
      // No line state inside a block: the block ends with `>`, which is never at a line start.
      this.held = cut < n ? "<" : ""
      this.appendBlock(text)
    }
    return true
  }

  end(): void {
    if (this.ended) return
    this.run("", true)
    this.ended = true
    this.runChar = 0
    if (this.mode === BLOCK) {
      // Case 20: a block never closed is text, never a call.
      const raw = this.blockText
      this.blockText = ""
      if (raw.length > 0) this.sink.text(raw)
    }
    this.mode = PROSE
  }

  private run(chunk: string, final: boolean): void {
    const w = this.held.length === 0 ? chunk : this.held + chunk
    this.held = ""
    this.w = w
    this.cLt = this.cTick = this.cTilde = this.cNl = this.cClose = this.cCdata = -2
    const n = w.length
    let p = 0
    if (this.runChar !== 0) p = this.continueRun(0, n, final)
    while (p < n) {
      switch (this.mode) {
        case PROSE:
          p = this.prose(p, n, final)
          break
        case CODE:
          p = this.code(p, n, final)
          break
        case FENCE:
          p = this.fence(p, n, final)
          break
        case THINK:
          p = this.think(p, n, final)
          break
        default:
          p = this.block(p, n, final)
      }
    }
    if (this.mode === BLOCK) {
      // The window is about to go: keep the block's part of it.
      const s0 = this.blockStart >= 0 ? this.blockStart : 0
      const h = n - this.held.length
      if (h > s0) {
        this.blockText += w.slice(s0, h)
      }
      this.blockStart = -1
      if (this.blockText.length > this.cfg.maxBlockBytes) this.overflow()
    }
    this.indent = lineIndentAt(w, n - this.held.length, this.indent)
    this.w = ""
  }

  private nextLt(p: number): number {
    if (this.cLt !== -1 && this.cLt < p) this.cLt = this.w.indexOf("<", p)
    return this.cLt
  }
  private nextTick(p: number): number {
    if (this.cTick !== -1 && this.cTick < p) this.cTick = this.w.indexOf("`", p)
    return this.cTick
  }
  private nextTilde(p: number): number {
    if (this.cTilde !== -1 && this.cTilde < p) this.cTilde = this.w.indexOf("~", p)
    return this.cTilde
  }
  private nextClose(p: number): number {
    if (this.cClose !== -1 && this.cClose < p) this.cClose = this.w.indexOf(CLOSE, p)
    return this.cClose
  }
  private nextCdata(p: number): number {
    if (this.cCdata !== -1 && this.cCdata < p) this.cCdata = this.w.indexOf(CDATA_OPEN, p)
    return this.cCdata
  }
  private nextNl(p: number): number {
    if (this.cNl !== -1 && this.cNl < p) this.cNl = this.w.indexOf("\n", p)
    return this.cNl
  }

  private text(a: number, b: number): void {
    if (b > a) this.sink.text(this.w.slice(a, b))
  }

  /** Text up to the window's end, holding back a high surrogate whose low half is still to come. */
  private tail(a: number, n: number, final: boolean): number {
    if (!final && n > a && isHighSurrogate(this.w.charCodeAt(n - 1))) {
      this.text(a, n - 1)
      this.held = this.w.slice(n - 1)
    } else {
      this.text(a, n)
    }
    return n
  }

  private continueRun(p: number, n: number, final: boolean): number {
    const w = this.w
    const c = this.runChar
    let j = p
    while (j < n && w.charCodeAt(j) === c) j++
    this.runLen += j - p
    this.text(p, j)
    if (j === n && !final) return n
    this.resolveRun()
    return j
  }

  private startRun(c: number, indent: number, len = 1): void {
    this.runChar = c
    this.runLen = len
    this.runIndent = indent
  }

  private resolveRun(): void {
    const c = this.runChar
    const len = this.runLen
    this.runChar = 0
    if (this.mode === PROSE) {
      if (this.runIndent >= 0 && len >= 3) this.openFence(c, len)
      else if (c === TICK) this.openSpan(len)
    } else if (this.mode === CODE) {
      if (c === TICK && len === this.spanLen) this.mode = PROSE
    }
  }

  private openFence(c: number, len: number): void {
    this.mode = FENCE
    this.fenceChar = c
    this.fenceLen = len
    this.flPhase = 3
  }

  private openSpan(len: number): void {
    this.mode = CODE
    this.spanLen = len
  }

  private prose(p: number, n: number, final: boolean): number {
    const w = this.w
    const start = p
    for (;;) {
      const lt = this.nextLt(p)
      const tk = this.nextTick(p)
      const td = this.nextTilde(p)
      let i = lt
      if (tk !== -1 && (i === -1 || tk < i)) i = tk
      if (td !== -1 && (i === -1 || td < i)) i = td
      if (i === -1) return this.tail(start, n, final)
      const c = w.charCodeAt(i)
      if (c === 60) {
        if (w.startsWith(OPEN, i)) {
          this.text(start, i)
          this.mode = BLOCK
          this.blockStart = i
          this.blockText = ""
          this.cdata = false
          return i + OPEN.length
        }
        if (this.cfg.thinkTags && w.startsWith(THINK_OPEN, i)) {
          this.text(start, i)
          if (this.cfg.thinkKeep) this.sink.text(THINK_OPEN)
          this.mode = THINK
          return i + THINK_OPEN.length
        }
        if (!final && n - i < OPEN.length && prefixAt(w, i, OPEN, this.cfg.thinkTags ? THINK_OPEN : undefined)) {
          this.text(start, i)
          this.held = w.slice(i)
          return n
        }
        p = i + 1
        continue
      }
      let j = i + 1
      while (j < n && w.charCodeAt(j) === c) j++
      if (c === TILDE && j - i < 3 && j < n) {
        p = j
        continue
      }
      const indent = lineIndentAt(w, i, this.indent)
      if (c === TILDE && indent < 0) {
        p = j
        continue
      }
      if (j === n && !final) {
        // The run may go on in the next chunk: its length decides between span, fence and prose.
        this.startRun(c, indent, j - i)
        this.text(start, n)
        return n
      }
      if (indent >= 0 && j - i >= 3) {
        this.text(start, j)
        this.openFence(c, j - i)
        return j
      }
      if (c === TICK) {
        this.text(start, j)
        this.openSpan(j - i)
        return j
      }
      p = j
    }
  }

  /** Inline code: until a backtick run of the opening length, or the end of the line. */
  private code(p: number, n: number, final: boolean): number {
    const w = this.w
    const start = p
    for (;;) {
      const nl = this.nextNl(p)
      const tk = this.nextTick(p)
      if (nl !== -1 && (tk === -1 || nl < tk)) {
        this.text(start, nl + 1)
        this.mode = PROSE
        return nl + 1
      }
      if (tk === -1) return this.tail(start, n, final)
      let j = tk + 1
      while (j < n && w.charCodeAt(j) === TICK) j++
      if (j === n && !final) {
        this.startRun(TICK, -1, j - tk)
        this.text(start, n)
        return n
      }
      if (j - tk === this.spanLen) {
        this.text(start, j)
        this.mode = PROSE
        return j
      }
      p = j
    }
  }

  /** Fenced code: until a line of at least as many fence characters (up to 3 spaces before, blanks after). */
  private fence(p: number, n: number, final: boolean): number {
    const w = this.w
    const start = p
    while (p < n) {
      if (this.flPhase === 3) {
        // Not a closing line: on to its end.
        const nl = this.nextNl(p)
        if (nl === -1) break
        p = nl
      }
      if (this.fenceStep(w.charCodeAt(p++))) {
        this.text(start, p)
        this.mode = PROSE
        return p
      }
    }
    return this.tail(start, n, final)
  }

  /** One more character of the fence's current line; true when it is the line break of a closing line. */
  private fenceStep(c: number): boolean {
    if (c === LF) {
      const closes = (this.flPhase === 1 && this.flN >= this.fenceLen) || this.flPhase === 2
      this.flPhase = 0
      this.flN = 0
      return closes
    }
    const blank = c === SP || c === TAB || c === CR
    switch (this.flPhase) {
      case 0:
        if (c === SP && this.flN < 3) this.flN++
        else if (c === this.fenceChar) {
          this.flPhase = 1
          this.flN = 1
        } else this.flPhase = 3
        break
      case 1:
        if (c === this.fenceChar) this.flN++
        else this.flPhase = blank && this.flN >= this.fenceLen ? 2 : 3
        break
      default:
        if (!blank) this.flPhase = 3
    }
    return false
  }

  private think(p: number, n: number, final: boolean): number {
    const w = this.w
    const k = w.indexOf(THINK_CLOSE, p)
    if (k !== -1) {
      if (this.cfg.thinkKeep) this.text(p, k + THINK_CLOSE.length)
      this.mode = PROSE
      return k + THINK_CLOSE.length
    }
    const h = final ? -1 : partialAt(w, p, n, THINK_CLOSE, undefined)
    if (h !== -1) {
      if (this.cfg.thinkKeep) this.text(p, h)
      this.held = w.slice(h)
      return n
    }
    if (this.cfg.thinkKeep) return this.tail(p, n, final)
    return n
  }

  /** A `<function_calls>` block (or an overflowed one): until `</function_calls>` outside CDATA. */
  private block(p: number, n: number, final: boolean): number {
    const w = this.w
    const start = p
    for (;;) {
      if (this.cdata) {
        const e = w.indexOf("]]>", p)
        if (e === -1) {
          let h = n
          if (!final) {
            if (n - 2 >= p && w.charCodeAt(n - 1) === 93 && w.charCodeAt(n - 2) === 93) h = n - 2
            else if (n - 1 >= p && w.charCodeAt(n - 1) === 93) h = n - 1
          }
          if (h < n) {
            this.pass(start, h)
            this.held = w.slice(h)
            return n
          }
          return this.passTail(start, n, final)
        }
        p = e + 3
        this.cdata = false
        continue
      }
      const close = this.nextClose(p)
      const cd = this.nextCdata(p)
      if (cd !== -1 && (close === -1 || cd < close)) {
        this.cdata = true
        p = cd + CDATA_OPEN.length
        continue
      }
      if (close !== -1) {
        const e = close + CLOSE.length
        this.pass(start, e)
        this.closeBlock(e)
        return e
      }
      const h = final ? -1 : partialAt(w, p, n, CLOSE, CDATA_OPEN)
      if (h !== -1) {
        this.pass(start, h)
        this.held = w.slice(h)
        return n
      }
      return this.passTail(start, n, final)
    }
  }

  /** Block text `[a, b)`: kept (in the window, for now) while the block is open, text once it overflowed. */
  private pass(a: number, b: number): void {
    if (this.mode === OVERFLOW) this.text(a, b)
  }

  private passTail(a: number, n: number, final: boolean): number {
    return this.mode === OVERFLOW ? this.tail(a, n, final) : n
  }

  private overflow(): void {
    const raw = this.blockText
    this.blockText = ""
    this.mode = OVERFLOW
    this.sink.invalid({
      _tag: "InvalidCall",
      reason: `<function_calls> block longer than ${this.cfg.maxBlockBytes} characters: returned as text, not executed`,
      raw: raw.slice(0, Math.min(PREVIEW, this.cfg.maxBlockBytes))
    })
    this.sink.text(raw)
  }

  private closeBlock(e: number): void {
    if (this.mode === OVERFLOW) {
      this.mode = PROSE
      return
    }
    const inWindow = this.blockStart >= 0 ? this.w.slice(this.blockStart, e) : this.w.slice(0, e)
    const raw = this.blockText.length === 0 ? inWindow : this.blockText + inWindow
    this.blockText = ""
    this.blockStart = -1
    this.mode = PROSE
    if (raw.length > this.cfg.maxBlockBytes) {
      this.sink.invalid({
        _tag: "InvalidCall",
        reason:
          `<function_calls> block longer than ${this.cfg.maxBlockBytes} characters: returned as text, not executed`,
        raw: raw.slice(0, Math.min(PREVIEW, this.cfg.maxBlockBytes))
      })
      this.sink.text(raw)
      return
    }
    const items = parseBlock(raw, OPEN.length, raw.length - CLOSE.length, this.cfg.index)
    for (const item of items) {
      if (item._tag === "Call") {
        this.sink.toolCall({ _tag: "ToolCall", id: this.cfg.nextId(), name: item.name, arguments: item.arguments })
      }
      else this.sink.invalid(item)
    }
  }
}
