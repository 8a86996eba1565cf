/**
 * Client-side stop sequences, applied to text as it streams in (the AIOS kernel drops `stop`). A pure,
 * incremental step for `Stream.mapAccum`: the output is the text up to the first match of any stop sequence
 * (the match that starts earliest), whatever the chunking; only a tail that may still become a match is held
 * back.
 *
 * One Aho–Corasick automaton over all the stop sequences reads each character once, its state carried from
 * chunk to chunk, so the time is linear in the text whatever the stop sequences (long ones, overlapping ones).
 * The held-back text is the automaton state's own string, a prefix of a stop sequence: it is never copied or
 * read again.
 *
 * @internal
 */
import * as Option from "effect/Option"

/**
 * Text seen but not yet emitted (it may start a match), whether a match ended the output, the automaton's state
 * (whose string `pending` is), and where in `pending` the earliest complete match so far starts (-1: none yet).
 */
export interface State {
  readonly pending: string
  readonly stopped: boolean
  readonly node: number
  readonly found: number
}

/** What one step emits: text that is certain, and whether a stop sequence matched (the output ends here). */
export interface Output {
  readonly text: string
  readonly matched: boolean
}

export const initial: State = { pending: "", stopped: false, node: 0, found: -1 }

/**
 * The automaton: a trie of the stop sequences (node 0 is the root) with failure links. `depth` is a node's
 * length, which is also the longest tail of the text read so far that may still grow into a match; `best` is the
 * longest stop sequence that ends at a node (0: none), so the earliest-starting match ending there.
 */
interface Automaton {
  /** A node's string is the first `depth` characters of `stops[from]`. */
  readonly from: ReadonlyArray<number>
  readonly next: ReadonlyArray<Map<number, number>>
  readonly fail: ReadonlyArray<number>
  readonly depth: ReadonlyArray<number>
  readonly best: ReadonlyArray<number>
}

const build = (stops: ReadonlyArray<string>): Automaton => {
  const next: Array<Map<number, number>> = [new Map()]
  const from = [0]
  const depth = [0]
  const best = [0]
  for (const [s, stop] of stops.entries()) {
    let node = 0
    for (let i = 0; i < stop.length; i++) {
      const c = stop.charCodeAt(i)
      let child = next[node]!.get(c)
      if (child === undefined) {
        child = next.length
        next[node]!.set(c, child)
        next.push(new Map())
        from.push(s)
        depth.push(i + 1)
        best.push(0)
      }
      node = child
    }
    best[node] = stop.length
  }
  const fail = new Array<number>(next.length).fill(0)
  // Breadth first, so that a node's failure link is complete before its children need it.
  const queue = [...next[0]!.values()]
  for (let q = 0; q < queue.length; q++) {
    const node = queue[q]!
    if (best[node] === 0) best[node] = best[fail[node]!]!
    for (const [c, child] of next[node]!) {
      fail[child] = go(next, fail, fail[node]!, c)
      queue.push(child)
    }
  }
  return { from, next, fail, depth, best }
}

/** The state after reading `c` in `node`. Amortised constant: a failure step shortens what the state stands for. */
const go = (next: ReadonlyArray<Map<number, number>>, fail: ReadonlyArray<number>, node: number, c: number): number => {
  for (;;) {
    const child = next[node]!.get(c)
    if (child !== undefined) return child
    if (node === 0) return 0
    node = fail[node]!
  }
}

/**
 * The `Stream.mapAccum` step: `Option.some(chunk)` for text, `Option.none()` at the end of the input. Stop
 * sequences must be non-empty; an empty list passes text through unchanged.
 */
export const step = (stops: ReadonlyArray<string>) => {
  const { best, depth, fail, from, next } = build(stops)
  /** The first `n` characters of `pending` + `input`, without copying `pending`. */
  const prefix = (pending: string, input: string, n: number): string =>
    n <= pending.length ? pending.slice(0, n) : pending + input.slice(0, n - pending.length)
  return (state: State, input: Option.Option<string>): readonly [State, Output] => {
    if (state.stopped) return [state, { text: "", matched: true }]
    if (Option.isNone(input)) {
      // The whole text is known: what is held back is plain text, or ends at the earliest match.
      const matched = state.found >= 0
      return [{ ...initial, stopped: matched }, { text: state.pending.slice(0, matched ? state.found : undefined), matched }]
    }
    const { pending } = state
    const text = input.value
    let { found, node } = state
    // Positions count from the start of `pending`; only the new text is read.
    for (let i = pending.length, j = 0; j < text.length; i++, j++) {
      node = go(next, fail, node, text.charCodeAt(j))
      const length = best[node]!
      if (length > 0 && (found < 0 || i + 1 - length < found)) found = i + 1 - length
      // No match still to come can start before the earliest one found: it wins.
      if (found >= 0 && i + 1 - depth[node]! >= found) {
        return [{ ...initial, stopped: true }, { text: prefix(pending, text, found), matched: true }]
      }
    }
    const cut = pending.length + text.length - depth[node]!
    return [
      { pending: stops[from[node]!]?.slice(0, depth[node]) ?? "", stopped: false, node, found: found < 0 ? -1 : found - cut },
      { text: prefix(pending, text, cut), matched: false }
    ]
  }
}

/** The whole-text answer, for non-streamed text (and for tests): the same automaton, in one step. */
export const cut = (stops: ReadonlyArray<string>, text: string): string => {
  const run = step(stops)
  const [state, first] = run(initial, Option.some(text))
  return first.text + (first.matched ? "" : run(state, Option.none())[1].text)
}
