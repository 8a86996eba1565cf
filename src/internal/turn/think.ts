/**
 * `<think>…</think>` sections in reply text, split out incrementally: text in, pieces out, each marked as
 * thinking or not, the tags themselves dropped. Linear in the text for any chunking: at most a partial tag
 * (7 code units) is held back, and held-back text is never rescanned more than once.
 */

const OPEN = "<think>"
const CLOSE = "</think>"

/** A run of text, inside a think section or not. */
export interface Piece {
  readonly thinking: boolean
  readonly text: string
}

/** An incremental splitter; one per reply. */
export interface ThinkSplitter {
  /** Feeds text; returns what is now certain. */
  push(text: string): ReadonlyArray<Piece>
  /** Ends the text: held-back characters are released as they stand (an unclosed section stays thinking). */
  end(): ReadonlyArray<Piece>
}

/** Where a suffix of `s` (from `from` on) that is a proper prefix of `tag` starts; `s.length` when none. */
const partialAt = (s: string, from: number, tag: string): number => {
  for (let j = Math.max(from, s.length - tag.length + 1); j < s.length; j++) {
    if (tag.startsWith(s.slice(j))) return j
  }
  return s.length
}

/**
 * A fresh splitter.
 */
export const makeThinkSplitter = (): ThinkSplitter => {
  let inside = false
  let held = ""
  const emit = (out: Array<Piece>, text: string) => {
    if (text === "") return
    const last = out.at(-1)
    if (last !== undefined && last.thinking === inside) out[out.length - 1] = { thinking: inside, text: last.text + text }
    else out.push({ thinking: inside, text })
  }
  return {
    push: (text) => {
      const s = held + text
      held = ""
      const out: Array<Piece> = []
      let p = 0
      for (;;) {
        const tag = inside ? CLOSE : OPEN
        const i = s.indexOf(tag, p)
        if (i === -1) {
          const h = partialAt(s, p, tag)
          emit(out, s.slice(p, h))
          held = s.slice(h)
          return out
        }
        emit(out, s.slice(p, i))
        p = i + tag.length
        inside = !inside
      }
    },
    end: () => {
      const out: Array<Piece> = []
      emit(out, held)
      held = ""
      return out
    }
  }
}
