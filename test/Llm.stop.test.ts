import { describe, expect, it } from "@effect/vitest"
import * as Option from "effect/Option"
import * as fc from "fast-check"
import * as Stop from "../src/internal/llm/stop.js"

// A small alphabet, so stop sequences overlap, nest and recur often.
const letters = fc.constantFrom("a", "b", "c")
const stopsArb = fc.array(fc.string({ unit: letters, minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 })
const textArb = fc.string({ unit: letters, maxLength: 40 })
const cutsArb = fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 })

/** The answer from the whole text: everything before the earliest-starting match. */
const expected = (stops: ReadonlyArray<string>, text: string): string => {
  const starts = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0)
  return starts.length === 0 ? text : text.slice(0, Math.min(...starts))
}

/** `text` in pieces of the given sizes (used cyclically). */
const chunk = (text: string, cuts: ReadonlyArray<number>): Array<string> => {
  const out: Array<string> = []
  for (let at = 0, i = 0; at < text.length; i++) {
    const size = cuts[i % cuts.length] ?? 1
    out.push(text.slice(at, at + size))
    at += size
  }
  return out
}

const run = (stops: ReadonlyArray<string>, pieces: ReadonlyArray<string>) => {
  const step = Stop.step(stops)
  let state = Stop.initial
  let out = ""
  let matched = false
  const steps: Array<{ readonly emitted: string; readonly state: Stop.State; readonly consumed: string }> = []
  let consumed = ""
  for (const input of [...pieces.map(Option.some), Option.none<string>()]) {
    if (Option.isSome(input)) consumed += input.value
    const [next, output] = step(state, input)
    state = next
    out += output.text
    steps.push({ emitted: out, state, consumed })
    if (output.matched) {
      matched = true
      break
    }
  }
  return { out, matched, steps }
}

describe("stop sequences (the incremental matcher)", () => {
  it.prop("any chunking gives the whole-text answer", [stopsArb, textArb, cutsArb], ([stops, text, cuts]) => {
    const { matched, out } = run(stops, chunk(text, cuts))
    expect(out).toBe(expected(stops, text))
    expect(matched).toBe(stops.some((s) => text.includes(s)))
  }, { fastCheck: { numRuns: 2000 } })

  it.prop(
    "nothing is lost and only a possible partial match is held back",
    [stopsArb, textArb, cutsArb],
    ([stops, text, cuts]) => {
      const longest = Math.max(...stops.map((s) => s.length))
      for (const { emitted, state, consumed } of run(stops, chunk(text, cuts)).steps) {
        if (state.stopped) continue
        // What was emitted plus what is held is exactly what came in.
        expect(emitted + state.pending).toBe(consumed)
        // What is held could still become a match: it is a proper prefix of some stop sequence.
        if (state.pending !== "") {
          expect(stops.some((s) => s.length > state.pending.length && s.startsWith(state.pending))).toBe(true)
        }
        expect(state.pending.length).toBeLessThan(longest)
        expect(expected(stops, consumed).startsWith(emitted)).toBe(true)
      }
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "long, overlapping stop sequences over a two-letter text: any chunking gives the whole-text answer",
    [
      fc.array(fc.string({ unit: fc.constantFrom("a", "b"), minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 5 }),
      fc.string({ unit: fc.constantFrom("a", "b"), maxLength: 80 }),
      cutsArb
    ],
    ([stops, text, cuts]) => {
      const { matched, out, steps } = run(stops, chunk(text, cuts))
      expect(out).toBe(expected(stops, text))
      expect(matched).toBe(stops.some((s) => text.includes(s)))
      expect(Stop.cut(stops, text)).toBe(expected(stops, text))
      for (const { emitted, state, consumed } of steps) if (!state.stopped) expect(emitted + state.pending).toBe(consumed)
    },
    { fastCheck: { numRuns: 2000 } }
  )

  it("a 20,000-character stop sequence over a 60,000-character reply in 16-character chunks", () => {
    // The adversarial input of issue 17: each chunk used to re-examine every held-back position.
    const stop = "a".repeat(19_999) + "b"
    const text = "a".repeat(60_000)
    const pieces = chunk(text, [16])
    const missed = run([stop], pieces)
    expect(missed.out).toBe(text)
    expect(missed.matched).toBe(false)
    // Until the end, all that is held back is a possible start of the stop sequence.
    expect(Math.max(...missed.steps.slice(0, -1).map((s) => s.state.pending.length))).toBe(19_999)
    const hit = run([stop, "ab"], chunk(text + "b" + text, [16]))
    expect(hit).toMatchObject({ matched: true, out: "a".repeat(40_001) })
    expect(Stop.cut([stop], text + "b")).toBe("a".repeat(40_001))
  })

  it("a longer stop that starts earlier wins over a shorter one completed first", () => {
    const { out } = run(["abcd", "c"], ["abc", "d"])
    expect(out).toBe("")
    expect(run(["abcd", "c"], ["abc", "x"]).out).toBe("ab")
  })

  it("no stop sequences: text passes through as it comes, nothing held", () => {
    const { steps, out } = run([], ["ab", "cd"])
    expect(out).toBe("abcd")
    expect(steps.map((s) => s.state.pending)).toEqual(["", "", ""])
  })

  it("Stop.cut agrees with the definition", () => {
    expect(Stop.cut(["b", "ab"], "xxabx")).toBe("xx")
    expect(Stop.cut(["zz"], "abc")).toBe("abc")
  })
})
