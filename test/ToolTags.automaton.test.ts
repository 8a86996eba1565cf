import { describe, expect, it } from "@effect/vitest"
import type { ToolTagsOptions } from "../src/ToolTags.js"
import * as ToolTags from "../src/ToolTags.js"
import * as Automaton from "../src/internal/toolTagsAutomaton.js"
import type { Scanner } from "../src/internal/toolTagsScanner.js"
import { counter, handle, LONE_SURROGATE, tools } from "./ToolTags.arbitraries.js"

// The one-character automaton against the general path: every state, reached by one-character pushes, then every
// kind of character and a continuation, must give exactly what `parse` (the window path) gives for the same text.

/** Texts that, pushed one character at a time, leave the scanner in each of the automaton's states. */
const PREFIXES = [
  "", "a", "a\n", " ", "  ", "   ", "a\n   ", "    ",
  "a<", "<", " <", "  <", "   <", "a\n<",
  "a`", "`", "``", "```", " ```", "a~", "a~~~", "~", "~~", "~~~", "   ~~~",
  "a`b", "a`b`", "a`<b", "`x",
  "```x", "```\nx", "```\n", "```\n ", "```\n  ", "```\n   ", "```\n    ",
  "```\n`", "```\n``", "```\n```", "```\n````", "```\n``` ", "```\n```\t", "```\n``x", "```\n~~~",
  "~~~x", "~~~\n", "~~~\n ", "~~~\n  ", "~~~\n   ", "~~~\n~", "~~~\n~~", "~~~\n~~~", "~~~\n~~~~ ", "~~~\n```"
]

/** One character of every column kind: plain, blanks, line break, `<`, the run characters, tag starts, surrogates. */
const PROBES = ["a", " ", "\n", "\t", "\r", "<", "`", "~", "f", "t", "/", "é", "\ud83d", "\ude00"]

/** A block with one call: where it lands (prose, or inside a span or fence) shows the state the text left. */
const BLOCK = "<function_calls><invoke name=\"ls\"/></function_calls>"

/** What may follow: nothing, text, the block after runs, line breaks and fences, the rest of a tag. */
const CONTINUATIONS = [
  "", "x", BLOCK, "\n" + BLOCK, " \n" + BLOCK, "`" + BLOCK, "``" + BLOCK + "\n" + BLOCK, "`x`" + BLOCK,
  "```\n" + BLOCK, "~~~\n" + BLOCK, "\n```\n" + BLOCK, "\n~~~\n" + BLOCK, "\ude00" + BLOCK,
  "unction_calls><invoke name=\"ls\"/></function_calls>", "hink>z</think>" + BLOCK
]

const stateAfter = (text: string): number => {
  const p = ToolTags.makeParser({ text: () => {}, toolCall: () => {}, invalid: () => {} }) as unknown as Scanner
  for (const c of text) p.push(c)
  return p.state
}

describe("ToolTags one-character automaton", () => {
  it("every state stands for fields that give it back", () => {
    for (const row of Automaton.ROWS) {
      const fields: Automaton.LineFields = {
        mode: -1, held: "", indent: 9, runChar: 0, runLen: 0, runIndent: -1, spanLen: 0, fenceChar: 0, fenceLen: 0,
        flPhase: 3, flN: 0
      }
      Automaton.writeFields(fields, row)
      expect(Automaton.rowOf(fields)).toBe(row)
    }
  })

  it("one-character pushes reach every state (so the next test covers every row of the table)", () => {
    const reached = new Set(PREFIXES.map(stateAfter))
    for (const row of Automaton.ROWS) expect(reached.has(row), `state row ${row}`).toBe(true)
  })

  it("from every state, every kind of character then any continuation gives what whole-text parsing gives", () => {
    const variants: ReadonlyArray<ToolTagsOptions> = [{ tools }, { tools, think: "strip" }, { think: "parse" }]
    for (const opts of variants) {
      for (const prefix of PREFIXES) {
        for (const probe of PROBES) {
          for (const rest of CONTINUATIONS) {
            const text = prefix + probe + rest
            const deltas: Array<string> = []
            const got = handle(text.split(""), { ...opts, idGenerator: counter() }, (t) => deltas.push(t))
            expect(got, JSON.stringify(text)).toEqual(ToolTags.parse(text, { ...opts, idGenerator: counter() }))
            // A surrogate pair in the text is never split between two deltas.
            if (!LONE_SURROGATE.test(text)) {
              expect(deltas.filter((t) => LONE_SURROGATE.test(t)), JSON.stringify(text)).toEqual([])
            }
          }
        }
      }
    }
  })
})
