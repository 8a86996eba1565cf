/**
 * Client-side stop sequences, applied to text as it streams in (the AIOS kernel drops `stop`). A pure,
 * incremental step for `Stream.mapAccum`: the output is the text up to the first match of any stop sequence
 * (the match that starts earliest), whatever the chunking; only a tail that may still become a match is held
 * back.
 *
 * @internal
 */
import * as Option from "effect/Option"

/** Text seen but not yet emitted (it may start a match), and whether a match ended the output. */
export interface State {
  readonly pending: string
  readonly stopped: boolean
}

/** What one step emits: text that is certain, and whether a stop sequence matched (the output ends here). */
export interface Output {
  readonly text: string
  readonly matched: boolean
}

export const initial: State = { pending: "", stopped: false }

/** Where the earliest complete match starts in `text`, or `text.length` when there is none. */
const firstMatch = (stops: ReadonlyArray<string>, text: string): number => {
  let at = text.length
  for (const stop of stops) {
    const i = text.indexOf(stop)
    if (i >= 0 && i < at) at = i
  }
  return at
}

/**
 * Where the earliest possible match that is not complete yet starts: a position whose rest of `text` is a
 * proper prefix of a stop sequence. `text.length` when there is none. Only the last `longest - 1` positions
 * can qualify.
 */
const firstPartial = (stops: ReadonlyArray<string>, longest: number, text: string): number => {
  for (let p = Math.max(0, text.length - longest + 1); p < text.length; p++) {
    const rest = text.length - p
    for (const stop of stops) {
      if (stop.length > rest && stop.startsWith(text.slice(p))) return p
    }
  }
  return text.length
}

/**
 * The `Stream.mapAccum` step: `Option.some(chunk)` for text, `Option.none()` at the end of the input. Stop
 * sequences must be non-empty; an empty list passes text through unchanged.
 */
export const step = (stops: ReadonlyArray<string>) => {
  const longest = stops.reduce((n, s) => Math.max(n, s.length), 0)
  return (state: State, input: Option.Option<string>): readonly [State, Output] => {
    if (state.stopped) return [state, { text: "", matched: true }]
    if (Option.isNone(input)) {
      // The whole text is known: what is held back is either a complete match or plain text.
      const at = firstMatch(stops, state.pending)
      const matched = at < state.pending.length
      return [{ pending: "", stopped: matched }, { text: state.pending.slice(0, at), matched }]
    }
    const text = state.pending + input.value
    const match = firstMatch(stops, text)
    const partial = firstPartial(stops, longest, text)
    // A longer stop sequence starting before a complete match may still complete, and it would win.
    if (match < text.length && match <= partial) {
      return [{ pending: "", stopped: true }, { text: text.slice(0, match), matched: true }]
    }
    const cut = Math.min(match, partial)
    return [{ pending: text.slice(cut), stopped: false }, { text: text.slice(0, cut), matched: false }]
  }
}

/** The whole-text answer the step must agree with (for tests and for non-streamed text). */
export const cut = (stops: ReadonlyArray<string>, text: string): string => text.slice(0, firstMatch(stops, text))
