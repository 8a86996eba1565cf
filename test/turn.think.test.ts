import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import { makeThinkSplitter, type Piece } from "../src/internal/turn/think.js"
import type * as AiosConfig from "../src/AiosConfig.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { Turn, type TurnEvent } from "../src/Turn.js"
import { chunk } from "./ToolTags.arbitraries.js"
import { aiosStack } from "./util.js"

/** An independent oracle: sections by regular expression (an unclosed one runs to the end). */
const oracle = (s: string) => {
  const sections = [...s.matchAll(/<think>([\s\S]*?)(?:<\/think>|$)/g)]
  return { text: s.replace(/<think>[\s\S]*?(?:<\/think>|$)/g, ""), thinking: sections.map((m) => m[1]).join("") }
}

const joined = (pieces: ReadonlyArray<Piece>) => ({
  text: pieces.filter((p) => !p.thinking).map((p) => p.text).join(""),
  thinking: pieces.filter((p) => p.thinking).map((p) => p.text).join("")
})

/** Text made of the pieces that matter: tags, partial tags, and letters. */
const thinkText = fc.array(
  fc.constantFrom("<think>", "</think>", "<", "<th", "<think", "</thi", "</", ">", "a", "b", " ", "\n", "think", "/"),
  { maxLength: 40 }
).map((parts) => parts.join(""))

describe("think splitter", () => {
  it.prop("for any text and any chunking: the text and the thinking of the oracle, in order", [
    thinkText,
    fc.array(fc.nat(), { maxLength: 12 })
  ], ([text, points]) => {
    const splitter = makeThinkSplitter()
    const pieces = [...chunk(text, points).flatMap((c) => splitter.push(c)), ...splitter.end()]
    expect(joined(pieces)).toEqual(oracle(text))
    // Adjacent pieces of the same kind within one push are merged, and none is empty.
    expect(pieces.every((p) => p.text !== "")).toBe(true)
  }, { fastCheck: { numRuns: 2_000 } })

  it("holds back at most a partial tag: everything else is released at once", () => {
    const splitter = makeThinkSplitter()
    expect(splitter.push("hello <thi")).toEqual([{ thinking: false, text: "hello " }])
    expect(splitter.push("nk>deep</th")).toEqual([{ thinking: true, text: "deep" }])
    expect(splitter.push("ink> out")).toEqual([{ thinking: false, text: " out" }])
    expect(splitter.push("<")).toEqual([])
    expect(splitter.end()).toEqual([{ thinking: false, text: "<" }])
  })

  it("a long text of near-tags is split in one pass (each character looked at a bounded number of times)", () => {
    const text = "<thin".repeat(200_000)
    const splitter = makeThinkSplitter()
    const pieces = [...splitter.push(text), ...splitter.end()]
    expect(joined(pieces).text).toBe(text)
  })
})

const stack = aiosStack

const turnEvents = (reply: string, options: ReferenceKernel.Options, config: AiosConfig.AiosConfigInput) =>
  Effect.gen(function*() {
    const kernel = yield* ReferenceKernel.ReferenceKernel
    kernel.scriptEndpoint(config.backend === "openai-compatible" ? "/v1/chat/completions" : "/query", { _tag: "Reply", text: reply })
    const turn = yield* Turn
    return Chunk.toReadonlyArray(
      yield* Stream.runCollect(turn.run({ model: "echo", context: { messages: [{ role: "user", content: "x" }] } }))
    )
  }).pipe(Effect.provide(stack(options, config)))

const byKind = (events: ReadonlyArray<TurnEvent>) => ({
  text: events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join(""),
  thinking: events.flatMap((e) => (e._tag === "ThinkingDelta" ? [e.text] : [])).join("")
})

describe("Turn: <think> in the reply text", () => {
  const reply = "<think>plan: read it</think>Here. <b>bold</b> <thin <think>more"

  it.effect("thinking \"events\": the same thinking and text from one piece (AIOS) and from 1-character /v1 deltas", () =>
    Effect.gen(function*() {
      const aios = yield* turnEvents(reply, {}, { thinking: "events" })
      const v1 = yield* turnEvents(reply, { streamChunkChars: 1 }, { backend: "openai-compatible", thinking: "events" })
      for (const events of [aios, v1]) {
        expect(byKind(events)).toEqual({ thinking: "plan: read itmore", text: "Here. <b>bold</b> <thin " })
        expect(events.at(-1)).toMatchObject({ _tag: "Finish", reason: "stop" })
      }
    }))

  it.effect("thinking \"strip\" drops the sections; \"text\" keeps them verbatim", () =>
    Effect.gen(function*() {
      expect(byKind(yield* turnEvents(reply, {}, { thinking: "strip" }))).toEqual({
        thinking: "",
        text: "Here. <b>bold</b> <thin "
      })
      expect(byKind(yield* turnEvents(reply, {}, { thinking: "text" }))).toEqual({ thinking: "", text: reply })
    }))

  it.effect("a reply that is only thinking is not an empty reply under \"events\"; under \"strip\" it is", () =>
    Effect.gen(function*() {
      const events = yield* turnEvents("<think>only this</think>", {}, { thinking: "events" })
      expect(byKind(events)).toEqual({ thinking: "only this", text: "" })
      const error = yield* Effect.flip(turnEvents("<think>only this</think>", {}, { thinking: "strip" }))
      expect(error).toMatchObject({ _tag: "EmptyReply" })
    }))
})
