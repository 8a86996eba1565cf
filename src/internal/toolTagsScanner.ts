/**
 * The one state machine behind both whole-text and streaming parsing. It reads text in chunks and tells a sink
 * about prose, complete calls and invalid calls. Every character is looked at a bounded number of times: the
 * only text carried from one chunk to the next is a possible partial tag (at most 16 characters) or the open
 * `<function_calls>` block, which is capped.
 *
 * Modes: prose; inline code span; fenced code block; `<think>` section; `<function_calls>` block; and a block
 * that outgrew the cap (passed through as text until its end). One-character pushes in the common states of the
 * first three go through a table instead (`toolTagsAutomaton`), and in a block into a buffer of code units.
 *
 * @internal
 */
import type { Handler, Parser } from "../ToolTags.js"
import * as Automaton from "./toolTagsAutomaton.js"
import type { LineFields } from "./toolTagsAutomaton.js"
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

// Module constants, not imported bindings, in the hot path: the JIT builds a module's own constants into its code
// but loads and checks an imported binding on every use (measured: 6.3 against 4.4 ns a push).
const {
  CODE,
  column,
  EMIT_LT,
  FENCE,
  HOLD,
  isHighSurrogate,
  MID_ROW,
  OUTSIDE_ROW,
  PROSE,
  rowOf,
  SLOW,
  START_ROW,
  STEP,
  writeFields
} = Automaton
const THINK = 3
const BLOCK = 4
const OVERFLOW = 5

/** Which inline case of `push` applies (see `refreshLane`). */
const LANE_NONE = 0
const LANE_AUTO = 1
const LANE_BLOCK = 2

/** Code units of block text that one-character pushes collect before they are made a string. */
const UNITS = 4096
const NO_UNITS = new Uint16Array(0)

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
    if (prefixAt(w, i, a, b)) return i
    i = w.indexOf("<", i + 1)
  }
  return -1
}

/**
 * The handler parser itself (`ToolTags.makeParser` returns it with no wrapper: a wrapper's extra call is a
 * measurable part of a one-character push). A class, not an object literal of closures, so that `push` has one
 * call target across all parsers, which the JIT can inline into a caller's loop.
 *
 * @internal
 */
export class Scanner implements Parser, LineFields {
  // The fields the automaton's states stand for (public for `writeFields` and `rowOf` only). In LANE_AUTO they
  // are out of date, except `held`: `row` is the state, and `pushAny` and `end` write them back first.
  mode = PROSE
  held = ""
  /** Line indentation at the start of the next window (see `lineIndentAt`); the text starts on a line. */
  indent = 0
  /** A run of backticks or tildes that reached the end of the window, so its length is not known yet. */
  runChar = 0
  runLen = 0
  runIndent = -1
  spanLen = 0
  fenceChar = 0
  fenceLen = 0
  /** Fence closing-line state: 0 indentation, 1 fence run, 2 trailing blanks, 3 rest of line. */
  flPhase = 3
  flN = 0
  /** Which inline case of `push` applies (see `refreshLane`). */
  private lane = LANE_AUTO
  /** In LANE_AUTO, the automaton's state (its row in `STEP`); otherwise OUTSIDE_ROW. */
  private row = START_ROW
  /** The open block's text from earlier windows (a rope: appends are O(1), the block parser flattens it once). */
  private blockText = ""
  /**
   * Block text from one-character pushes, as code units (no string per character). It may end with a partial
   * closing tag or CDATA opener: its first `tagLen` characters of `tag`. `flushUnits` makes them a string.
   */
  private units = NO_UNITS
  private unitsLen = 0
  /** How many code units the block lane may take: the buffer's size, or what is left below the block cap. */
  private unitsMax = 0
  private tag = CLOSE
  private tagLen = 0
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
    return this.held.length + (this.mode === BLOCK ? this.blockText.length + this.unitsLen : 0)
  }

  get done(): boolean {
    return this.ended
  }

  /** The automaton's state (its row), or -1 while the scanner is in none of its states; for tests. */
  get state(): number {
    return this.lane === LANE_AUTO ? this.row : -1
  }

  push(chunk: string): void {
    // The hottest cases inline (small enough for the JIT to inline into a caller's loop): one character in a
    // state of the automaton (prose, a code span, a fence), or of a block's text (kept as a code unit). Outside
    // the automaton `row` is OUTSIDE_ROW, whose entries all say SLOW; `lane` says whether the block case applies.
    if (typeof chunk === "string" && chunk.length === 1) {
      const c = chunk.charCodeAt(0)
      const x = STEP[this.row + column(c)]!
      if (x < HOLD) {
        this.row = x
        this.sink.text(chunk)
        return
      }
      if (x < EMIT_LT) {
        this.row = x - HOLD
        this.held = chunk
        return
      }
      if (x < SLOW) {
        this.row = x - EMIT_LT
        this.held = ""
        // Two deltas rather than a concatenated string: no allocation.
        this.sink.text("<")
        this.sink.text(chunk)
        return
      }
      if (this.lane === LANE_BLOCK) {
        const k = this.unitsLen
        if (k < this.unitsMax) {
          this.units[k] = c
          this.unitsLen = k + 1
          if (c === LT || this.tagLen !== 0) this.blockTag(c)
          return
        }
      }
    }
    this.pushAny(chunk)
  }

  /**
   * The inline case of `push` for the state now. The automaton's state is looked for only after a one-character
   * push (chunks of more characters would pay for it every time, and then for writing the fields back).
   */
  private refreshLane(one: boolean): void {
    const row = one && !this.ended ? rowOf(this) : -1
    this.row = row >= 0 ? row : OUTSIDE_ROW
    if (row >= 0) this.lane = LANE_AUTO
    else if (this.mode === BLOCK && !this.cdata && this.held.length === 0) {
      this.lane = LANE_BLOCK
      if (this.units.length === 0) this.units = new Uint16Array(UNITS)
      this.unitsMax = Math.min(UNITS, this.cfg.maxBlockBytes - this.blockText.length)
    } else this.lane = LANE_NONE
  }

  /**
   * Any push that `push` does not take inline, then the lane for the next. One character goes by the common case
   * of its mode without setting up a window; a small chunk by `quick`; the rest (and a backtick or tilde run, a
   * completed tag, CDATA, a surrogate pair, a `<think>` section) by a window, `run`.
   *
   * The one-character cases are written here rather than called: at over 460 bytecodes V8 does not inline this
   * method into a caller's push loop. Inlined, it made that loop slower and its speed depend on what the process
   * had run before (measured on 1 MB one character a push: prose 5.2–6.3 ns against 4.7, dense tags 19–27 ns
   * against 18.4–18.8).
   */
  private pushAny(input: string): void {
    if (this.lane === LANE_AUTO) writeFields(this, this.row)
    if (this.unitsLen !== 0) this.flushUnits()
    // Typed callers pass strings; anything else is text too, never a throw.
    const chunk = typeof input === "string" ? input : String(input)
    const n = chunk.length
    // `break handled`: done. Leaving the switch: the window path.
    handled: if (!this.ended && n !== 0) {
      if (n > 1) {
        if (n <= 32 && this.quick(chunk)) break handled
      } else {
        const c = chunk.charCodeAt(0)
        if (!isHighSurrogate(c)) {
          if (this.runChar !== 0) {
            if (c === this.runChar) {
              this.runLen++
              this.sink.text(chunk)
              this.indent = -1
              break handled
            }
            this.resolveRun()
          }
          switch (this.mode) {
            case PROSE:
              if (this.held.length !== 0) {
                if (this.heldOne(chunk, c, OPEN, this.cfg.thinkTags ? THINK_OPEN : undefined)) break handled
                break
              }
              if (c === LT) {
                this.held = chunk
                break handled
              }
              // A run starts: its length decides between span, fence and prose.
              if (c === TICK || c === TILDE) this.startRun(c, this.indent)
              this.sink.text(chunk)
              this.lineOne(c)
              break handled
            case BLOCK:
              if (this.cdata) break
              if (this.held.length !== 0) {
                if (this.heldOne(chunk, c, CLOSE, CDATA_OPEN)) break handled
                break
              }
              if (c === LT) this.held = chunk
              else this.appendBlock(chunk)
              break handled
            case CODE:
              if (this.held.length !== 0) break
              if (c === TICK) this.startRun(c, -1)
              else if (c === LF) this.mode = PROSE
              this.sink.text(chunk)
              this.lineOne(c)
              break handled
            case FENCE:
              if (this.held.length !== 0) break
              this.sink.text(chunk)
              if (this.fenceStep(c)) this.mode = PROSE
              this.lineOne(c)
              break handled
          }
        }
      }
      this.run(chunk, false)
    }
    this.refreshLane(n === 1)
  }

  /**
   * One character with something held: a partial tag (prose: of `<function_calls>` or `<think>`; a block: of
   * `</function_calls>` or `<![CDATA[`), which grows or turns out to be text, or a high surrogate. False when it
   * completes a tag, or when the character may start something of its own.
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
      // Two deltas rather than a concatenated string (no allocation), except for a surrogate pair: never split.
      if (isHighSurrogate(held.charCodeAt(held.length - 1))) this.sink.text(held + chunk)
      else {
        this.sink.text(held)
        this.sink.text(chunk)
      }
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
    if (this.lane === LANE_AUTO) writeFields(this, this.row)
    this.lane = LANE_NONE
    this.row = OUTSIDE_ROW
    if (this.unitsLen !== 0) this.flushUnits()
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
    this.steps(this.runChar !== 0 ? this.continueRun(0, n, final) : 0, n, final)
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

  /**
   * The window from `p`, mode by mode. A method of its own so that V8's on-stack replacement of this loop (a long
   * window is one long run of it) holds no code after the loop: code there would not have run yet when the loop
   * was compiled, and the compiled loop would then deoptimise on every later long window.
   */
  private steps(p: number, n: number, final: boolean): void {
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
    let raw = this.blockText
    if (isHighSurrogate(raw.charCodeAt(raw.length - 1))) {
      // Returned as text, the block's cut waits for a surrogate's low half, as text does everywhere.
      this.held = raw.slice(-1) + this.held
      raw = raw.slice(0, -1)
    }
    this.blockText = ""
    this.mode = OVERFLOW
    this.tooLong(raw)
  }

  /** A block that outgrew the cap: reported, and its text returned as text. */
  private tooLong(raw: string): void {
    this.sink.invalid({
      _tag: "InvalidCall",
      reason: `<function_calls> block longer than ${this.cfg.maxBlockBytes} characters: returned as text, not executed`,
      raw: raw.slice(0, Math.min(PREVIEW, this.cfg.maxBlockBytes))
    })
    this.sink.text(raw)
  }

  /**
   * The block lane's character `c` (just stored) is `<`, or follows a partial tag: the tag grows, completes, or
   * turns out to be block text. A closing tag closes the block; a CDATA opener hands the block to `run`.
   */
  private blockTag(c: number): void {
    const k = this.tagLen
    if (k === 0) {
      this.tagLen = 1
      return
    }
    if (k === 1) {
      // Both tags start with `<` and differ in their second character.
      this.tag = c === CDATA_OPEN.charCodeAt(1) ? CDATA_OPEN : CLOSE
      this.tagLen = c === this.tag.charCodeAt(1) ? 2 : c === LT ? 1 : 0
      return
    }
    const t = this.tag
    if (c !== t.charCodeAt(k)) {
      // Neither tag has a `<` after its first character, so only `c` itself may start one again.
      this.tagLen = c === LT ? 1 : 0
      return
    }
    if (k + 1 < t.length) {
      this.tagLen = k + 1
      return
    }
    this.tagLen = 0
    if (t === CLOSE) {
      const raw = this.blockText + this.unitsText(this.unitsLen)
      this.unitsLen = 0
      this.blockText = ""
      this.mode = PROSE
      // The line goes on after the tag's `>`: no fence can open on it.
      this.indent = -1
      this.lane = LANE_AUTO
      this.row = MID_ROW
      this.finishBlock(raw)
    } else {
      // CDATA is left to `run` (the next push flushes the units first).
      this.cdata = true
      this.lane = LANE_NONE
    }
  }

  /** The first `n` collected code units as a string. */
  private unitsText(n: number): string {
    // `apply` takes any array-like (TypeScript's signature wants an Array); lone surrogates stay as they are.
    return String.fromCharCode.apply(null, this.units.subarray(0, n) as unknown as Array<number>)
  }

  /** Collected block text into `blockText`, and a partial tag at its end back into `held`, as `run` expects. */
  private flushUnits(): void {
    const k = this.tagLen
    this.blockText += this.unitsText(this.unitsLen - k)
    if (k !== 0) this.held = this.tag.slice(0, k)
    this.unitsLen = 0
    this.tagLen = 0
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
    this.finishBlock(raw)
  }

  /** A closed block's text (both tags included): its calls and invalid calls, or text if it outgrew the cap. */
  private finishBlock(raw: string): void {
    if (raw.length > this.cfg.maxBlockBytes) {
      this.tooLong(raw)
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
