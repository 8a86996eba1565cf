/**
 * The scanner's one-character automaton: the common states of prose, of a one-backtick code span and of a
 * three-character fence, with every transition between them in one table. A one-character push in these states
 * costs one table lookup, with no branch on what the character is: branches per kind of character (space, line
 * break, `<`, backtick) mispredict on nearly every word of real text, and a mispredict costs more than the rest
 * of the push.
 *
 * Each state stands for exactly one setting of the scanner's fields (`writeFields`); the scanner writes them
 * back before any other path runs, and finds the state again afterwards (`rowOf`). What the table does not cover
 * (a `<` that may start a tag, longer backtick runs, other fences, `<think>`, blocks, surrogate pairs) it leaves
 * to the scanner's general path, which stays the reference for every transition here.
 *
 * @internal
 */

// Character classes (the rules below are written per class; the table has a column per ASCII code unit).
const PLAIN = 0
const SP = 1
const LF = 2
/** Tab and carriage return: blank on a fence's closing line, plain elsewhere. */
const BLANK = 3
const LT = 4
const TICK = 5
const TILDE = 6
/** `f` and `t`: after a `<` they may begin `<function_calls>` or `<think>`. */
const F = 7
const T = 8
/** A high surrogate waits for its low half: the general path's. */
const HIGH = 9
const CLASSES = 10

/** The class of each ASCII code unit. */
const ASCII = new Uint8Array(128)
ASCII[32] = SP
ASCII[10] = LF
ASCII[9] = ASCII[13] = BLANK
ASCII[60] = LT
ASCII[96] = TICK
ASCII[126] = TILDE
ASCII[102] = F
ASCII[116] = T

/** Columns of a state's row: one per ASCII code unit, then a high surrogate, then any other code unit. */
const ROW = 256
const HIGH_COLUMN = 128
const OTHER_COLUMN = 129

export const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff

/** The column of code unit `c` in a state's row. */
export const column = (c: number): number => (c < 128 ? c : isHighSurrogate(c) ? HIGH_COLUMN : OTHER_COLUMN)

/**
 * What a transition does besides moving to its state: a `STEP` entry is the next state's row plus one of these
 * (rows stay below HOLD). EMIT: the character is text; it is 0, so the common entry is the row itself.
 */
export const EMIT = 0
/** The `<` is held back: it may begin a tag. */
export const HOLD = 16384
/** The held `<` and this character are text. */
export const EMIT_LT = 32768
/** Not in the table: the general path takes the character. */
export const SLOW = 49152

// States. Prose: past the line's start, or at it after 0–3 spaces; the same with a `<` held back; a backtick run
// pending (mid-line: 1, at a line's start: 1–3); a tilde run pending (mid-line; at a line's start: 1–3).
const P_MID = 0
const P_LINE = 1 // + indentation 0..3
const P_LT = 5 // + 1 + indentation -1..3
const P_TICK = 10
const P_TICKS = 11 // + run length - 1, at a line's start
const P_TILDE = 14
const P_TILDES = 15 // + run length - 1, at a line's start
/** A code span opened by one backtick; the same with one backtick pending (it may close the span). */
const C_SPAN = 18
const C_TICK = 19
/** A fence of three backticks (20..28) or tildes (29..37): see `fence`. */
const FENCE_TICK = 20
const FENCE_TILDE = 29
/** Not a state of the automaton: every entry is SLOW (the scanner is elsewhere). */
const OUTSIDE = 38
const STATES = 39

// Within a fence's states: the line past its start; its start after 0–3 spaces; a run of 1–3 (or more) fence
// characters opening the line; blanks after a long enough run.
const F_MID = 0
const F_LINE = 1 // + spaces 0..3
const F_RUN = 5 // + run length - 1 (3: three or more)
const F_TRAIL = 8

/** The rules: the entry (as in `STEP`) for every state and class. */
const BY_CLASS = new Uint16Array(STATES * CLASSES).fill(SLOW)

const rule = (from: number, classes: ReadonlyArray<number>, to: number, action = EMIT): void => {
  for (const k of classes) BY_CLASS[from * CLASSES + k] = to * ROW + action
}
const copyRow = (from: number, to: number, classes: ReadonlyArray<number>): void => {
  for (const k of classes) BY_CLASS[to * CLASSES + k] = BY_CLASS[from * CLASSES + k]!
}

/** Prose with line indentation `i` (-1: past the line's start). */
const proseAt = (i: number): number => (i < 0 ? P_MID : P_LINE + i)
const heldAt = (i: number): number => P_LT + 1 + i

for (let i = -1; i <= 3; i++) {
  const s = proseAt(i)
  rule(s, [PLAIN, BLANK, F, T], P_MID)
  rule(s, [SP], i >= 0 && i < 3 ? proseAt(i + 1) : P_MID)
  rule(s, [LF], P_LINE)
  rule(s, [LT], heldAt(i), HOLD)
  rule(s, [TICK], i < 0 ? P_TICK : P_TICKS)
  rule(s, [TILDE], i < 0 ? P_TILDE : P_TILDES)
  // `<f…` and `<t…` may be tags, `<<` and a `<` before a line break or a run are the general path's.
  rule(heldAt(i), [PLAIN, SP, BLANK], P_MID, EMIT_LT)
}

/** A run resolved by a character other than its own: as in prose past the line's start. */
const ALL_BUT_RUNS = [PLAIN, SP, LF, BLANK, LT, F, T]
copyRow(P_MID, P_TILDE, [...ALL_BUT_RUNS, TICK])
rule(P_TILDE, [TILDE], P_TILDE)
for (let n = 0; n < 3; n++) {
  copyRow(P_MID, P_TILDES + n, [...ALL_BUT_RUNS, TICK])
  if (n < 2) rule(P_TILDES + n, [TILDE], P_TILDES + n + 1)
}

/** One backtick opens a span, which the next character is in (a line break ends it). */
const inSpan = (from: number): void => {
  rule(from, [PLAIN, SP, BLANK, LT, TILDE, F, T], C_SPAN)
  rule(from, [LF], P_LINE)
}
inSpan(P_TICK)
inSpan(P_TICKS)
inSpan(C_SPAN)
rule(C_SPAN, [TICK], C_TICK)
// One backtick closes the span; two do not (the general path counts them).
copyRow(P_MID, C_TICK, [...ALL_BUT_RUNS, TILDE])
rule(P_TICKS, [TICK], P_TICKS + 1)
rule(P_TICKS + 1, [TICK], P_TICKS + 2)

/** The fence states from `base`, and the runs of three that open them. */
const fence = (base: number, run: number, open: number): void => {
  rule(open, [PLAIN, SP, BLANK, LT, TICK, TILDE, F, T].filter((k) => k !== run), base + F_MID)
  rule(open, [LF], base + F_LINE)
  rule(base + F_MID, [PLAIN, SP, BLANK, LT, TICK, TILDE, F, T], base + F_MID)
  rule(base + F_MID, [LF], base + F_LINE)
  for (let n = 0; n <= 3; n++) {
    const s = base + F_LINE + n
    rule(s, [SP], n < 3 ? s + 1 : base + F_MID)
    rule(s, [run], base + F_RUN)
    rule(s, [LF], base + F_LINE)
    rule(s, [PLAIN, BLANK, LT, TICK, TILDE, F, T].filter((k) => k !== run), base + F_MID)
  }
  for (let n = 0; n < 3; n++) {
    const s = base + F_RUN + n
    const long = n === 2
    rule(s, [run], base + F_RUN + Math.min(n + 1, 2))
    // A line of three or more closes the fence; the next line is prose.
    rule(s, [LF], long ? P_LINE : base + F_LINE)
    rule(s, [SP, BLANK], long ? base + F_TRAIL : base + F_MID)
    rule(s, [PLAIN, LT, TICK, TILDE, F, T].filter((k) => k !== run), base + F_MID)
  }
  rule(base + F_TRAIL, [LF], P_LINE)
  rule(base + F_TRAIL, [SP, BLANK], base + F_TRAIL)
  rule(base + F_TRAIL, [PLAIN, LT, TICK, TILDE, F, T], base + F_MID)
}
fence(FENCE_TICK, TICK, P_TICKS + 2)
fence(FENCE_TILDE, TILDE, P_TILDES + 2)

/**
 * The next state's row plus the action, for every state and column: `STEP[row + column(c)]`. A column per ASCII
 * code unit rather than a class lookup first: one load less for the common character (about 0.3 ns a push).
 */
export const STEP = new Uint16Array(STATES * ROW)
for (let s = 0; s < STATES; s++) {
  for (let c = 0; c < 128; c++) STEP[s * ROW + c] = BY_CLASS[s * CLASSES + ASCII[c]!]!
  STEP[s * ROW + HIGH_COLUMN] = BY_CLASS[s * CLASSES + HIGH]!
  STEP[s * ROW + OTHER_COLUMN] = BY_CLASS[s * CLASSES + PLAIN]!
}

/** The scanner's fields that the states stand for (modes as the scanner numbers them). */
export interface LineFields {
  mode: number
  /** A partial tag held back (the states know a single `<`). */
  held: string
  /** Line indentation (-1: past the line's start). */
  indent: number
  /** A pending run of backticks or tildes: its character (0: none), length, and line indentation (-1: mid-line). */
  runChar: number
  runLen: number
  runIndent: number
  spanLen: number
  fenceChar: number
  fenceLen: number
  /** The fence's closing-line phase and count (see the scanner's `fenceStep`). */
  flPhase: number
  flN: number
}

export const PROSE = 0
export const CODE = 1
export const FENCE = 2

const TICK_CODE = 96
const TILDE_CODE = 126

/** What each state stands for; fields a mode does not use are left as they are. */
const FIELDS: ReadonlyArray<Partial<LineFields>> = Array.from({ length: OUTSIDE }, (_, s): Partial<LineFields> => {
  const prose = { mode: PROSE, held: "", runChar: 0 }
  if (s < P_LT) return { ...prose, indent: s - P_LINE }
  if (s < P_TICK) return { ...prose, held: "<", indent: s - P_LT - 1 }
  if (s < C_SPAN) {
    const tick = s < P_TILDE
    const first = tick ? P_TICK : P_TILDE
    const runChar = tick ? TICK_CODE : TILDE_CODE
    // A run at a line's start may open a fence (its indentation only matters as "at the start").
    if (s === first) return { ...prose, indent: -1, runChar, runLen: 1, runIndent: -1 }
    return { ...prose, indent: -1, runChar, runLen: s - first, runIndent: 0 }
  }
  const code = { mode: CODE, held: "", indent: -1, spanLen: 1 }
  if (s === C_SPAN) return { ...code, runChar: 0 }
  if (s === C_TICK) return { ...code, runChar: TICK_CODE, runLen: 1, runIndent: -1 }
  const tick = s < FENCE_TILDE
  const f = s - (tick ? FENCE_TICK : FENCE_TILDE)
  const fence = { mode: FENCE, held: "", runChar: 0, fenceChar: tick ? TICK_CODE : TILDE_CODE, fenceLen: 3 }
  if (f === F_MID) return { ...fence, indent: -1, flPhase: 3 }
  if (f < F_RUN) return { ...fence, indent: f - F_LINE, flPhase: 0, flN: f - F_LINE }
  if (f < F_TRAIL) return { ...fence, indent: -1, flPhase: 1, flN: f - F_RUN + 1 }
  return { ...fence, indent: -1, flPhase: 2 }
})

/** Sets the fields that the state at `row` stands for. */
export const writeFields = (target: LineFields, row: number): void => {
  Object.assign(target, FIELDS[row / ROW])
}

/**
 * The row of the state that stands for these fields, or -1 if none does. (In a fence the indentation is not part of
 * the state: at a line's start it equals the closing-line count, and it matters only once the fence has closed.)
 */
export const rowOf = (f: LineFields): number => {
  const s = stateOf(f)
  return s >= 0 ? s * ROW : -1
}

const stateOf = (f: LineFields): number => {
  const held = f.held.length !== 0
  if (held && (f.held !== "<" || f.mode !== PROSE || f.runChar !== 0)) return -1
  if (f.mode === PROSE) {
    if (held) return heldAt(f.indent)
    if (f.runChar === 0) return proseAt(f.indent)
    const tick = f.runChar === TICK_CODE
    if (!tick && f.runChar !== TILDE_CODE) return -1
    // Mid-line, a tilde run's length never matters; a backtick run's is the span's.
    if (f.runIndent < 0) return tick ? (f.runLen === 1 ? P_TICK : -1) : P_TILDE
    return f.runLen <= 3 ? (tick ? P_TICK : P_TILDE) + f.runLen : -1
  }
  if (f.mode === CODE) {
    if (f.spanLen !== 1) return -1
    if (f.runChar === 0) return C_SPAN
    return f.runChar === TICK_CODE && f.runLen === 1 ? C_TICK : -1
  }
  if (f.mode !== FENCE || f.runChar !== 0 || f.fenceLen !== 3) return -1
  const base = f.fenceChar === TICK_CODE ? FENCE_TICK : FENCE_TILDE
  switch (f.flPhase) {
    case 0:
      return f.flN <= 3 ? base + F_LINE + f.flN : -1
    case 1:
      return base + F_RUN + Math.min(f.flN, 3) - 1
    case 2:
      return base + F_TRAIL
    default:
      return base + F_MID
  }
}

/** Every state's row. */
export const ROWS: ReadonlyArray<number> = Array.from({ length: OUTSIDE }, (_, s) => s * ROW)
/** The row while the scanner is in none of the states. */
export const OUTSIDE_ROW = OUTSIDE * ROW
/** The state the scanner starts in: prose, at a line's start. */
export const START_ROW = P_LINE * ROW
/** Prose past the line's start (after a block's closing tag). */
export const MID_ROW = P_MID * ROW
