/**
 * What a model says besides its reply, and what the AIOS kernel silently drops (issue 16): `/v1` reasoning
 * (`reasoning_content`, `reasoning`) comes as `ReasoningDelta` chunks; AIOS honours `maxTokens` client-side (the
 * reply is cut at the budget and finishes with `length`) and warns once per model that `temperature` is ignored.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as fc from "fast-check"
import * as AiosBackend from "../src/AiosBackend.js"
import * as Backend from "../src/Backend.js"
import * as Models from "../src/testing/internal/models.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { streamOf, user } from "./OpenAiBackend.harness.js"
import { backendStack } from "./util.js"

const thinker: ReferenceKernel.ModelSpec = { name: "thinker", backend: "reference", behaviour: (messages) => Models.thinker(messages) }
const models = [...ReferenceKernel.defaultModels, thinker]

const reasoningOf = (chunks: ReadonlyArray<Backend.Chunk>) => chunks.map((c) => (c._tag === "ReasoningDelta" ? c.text : "")).join("")
const textOf = (chunks: ReadonlyArray<Backend.Chunk>) => chunks.map((c) => (c._tag === "TextDelta" ? c.text : "")).join("")

/** Runs `effect`, capturing the warnings it logs. */
const warnings = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make((options) => {
      if (options.logLevel.label === "WARN") lines.push(String(options.message))
    })
    const result = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result, lines }
  })

describe("/v1 reasoning", () => {
  layer(backendStack({ models, streamChunkChars: 5 }, { backend: "openai-compatible", requestTimeoutMs: 5_000 }))("streamed", (it) => {
    it.effect("reasoning_content deltas arrive as ReasoningDelta chunks, before the reply; Backend.call keeps only the reply", () =>
      Effect.gen(function*() {
        const chunks = yield* streamOf({ model: "thinker", messages: user("hello") })
        const expected = Models.thinker(user("hello"))
        expect(reasoningOf(chunks)).toBe(expected.reasoning)
        expect(textOf(chunks)).toBe("hello")
        const firstText = chunks.findIndex((c) => c._tag === "TextDelta")
        expect(chunks.slice(0, firstText).every((c) => c._tag === "ReasoningDelta")).toBe(true)
        expect(chunks.filter((c) => c._tag === "ReasoningDelta").length).toBeGreaterThan(3)
        const result = yield* Backend.call({ model: "thinker", messages: user("hello") })
        expect(result.text).toBe("hello")
      }))

    it.effect("`reasoning` (OpenRouter, Ollama) is read too; a reasoning field of another shape is ignored, not an error", () =>
      Effect.gen(function*() {
        const event = (delta: unknown, finish: string | null = null) =>
          `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
        ;(yield* ReferenceKernel.ReferenceKernel).scriptEndpoint("/v1/chat/completions", {
          _tag: "Malformed",
          body: [
            event({ reasoning: "step one. " }),
            event({ reasoning: { summary: "an object" } }),
            event({ reasoning_content: "step two.", reasoning: "ignored: reasoning_content wins" }),
            event({ content: "answer" }),
            event({}, "stop"),
            "data: [DONE]\n\n"
          ].join("")
        })
        const chunks = yield* streamOf({ model: "echo", messages: user("x") })
        expect(chunks).toEqual([
          { _tag: "ReasoningDelta", text: "step one. " },
          { _tag: "ReasoningDelta", text: "step two." },
          { _tag: "TextDelta", text: "answer" },
          { _tag: "Finish", reason: "stop", usage: undefined }
        ])
      }))
  })

  it.effect("a server that does not stream: the completion's reasoning_content is one ReasoningDelta", () =>
    Effect.gen(function*() {
      const chunks = yield* streamOf({ model: "thinker", messages: user("json") })
      expect(chunks.slice(0, 2)).toEqual([
        { _tag: "ReasoningDelta", text: Models.thinker(user("json")).reasoning },
        { _tag: "TextDelta", text: "json" }
      ])
    }).pipe(Effect.provide(backendStack({ models, streaming: false }, { backend: "openai-compatible" }))))
})

layer(backendStack({ models }, { requestTimeoutMs: 5_000 }))("AIOS: parameters the kernel drops", (it) => {
  it.effect("maxTokens is applied client-side: the reply is cut at the budget and finishes with length", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const long = "word ".repeat(40).trim()
      const result = yield* Backend.call({ model: "echo", messages: user(long), maxTokens: 5 })
      expect(result.text).toBe(long.slice(0, 20))
      expect(result.finishReason).toBe("length")
      expect(Backend.estimateTokens(result.text.length)).toBe(5)
      // Still sent, for a kernel that honours it.
      expect(kernel.requests("/query").at(-1)?.body).toMatchObject({ query_data: { max_new_tokens: 5 } })
      // A reply within the budget is untouched and gives no reason, as the kernel gives none.
      const short = yield* Backend.call({ model: "echo", messages: user("short"), maxTokens: 5 })
      expect(short).toMatchObject({ text: "short", finishReason: undefined })
    }))

  it.effect("the cut never splits a surrogate pair", () =>
    Effect.gen(function*() {
      // 7 code units of text, then emoji (2 units each): a budget of 2 tokens (8 units) would end inside one.
      const result = yield* Backend.call({ model: "echo", messages: user("abcdefg😀😀😀"), maxTokens: 2 })
      expect(result.text).toBe("abcdefg")
      expect(result.finishReason).toBe("length")
    }))

  it.effect("temperature: one warning per model, none without it", () =>
    Effect.gen(function*() {
      const { lines } = yield* warnings(Effect.gen(function*() {
        yield* Backend.call({ model: "echo", messages: user("a") })
        for (let i = 0; i < 3; i++) yield* Backend.call({ model: "echo", messages: user("a"), temperature: 0 })
        yield* Backend.call({ model: "thinker", messages: user("a"), temperature: 0.2 })
      }))
      expect(lines).toEqual([
        "The AIOS kernel ignores temperature (it samples every call at 1.0): temperature 0 for model 'echo' is not applied.",
        "The AIOS kernel ignores temperature (it samples every call at 1.0): temperature 0.2 for model 'thinker' is not applied."
      ])
    }))

  it.effect("a reasoning model's <think> block reaches the turn in the text (ToolTags/Turn decide what to show)", () =>
    Effect.gen(function*() {
      const result = yield* Backend.call({ model: "thinker", messages: user("hi") })
      expect(result.text).toBe(`<think>${Models.thinker(user("hi")).reasoning}</think>hi`)
    }))
})

describe("AiosBackend.cutToBudget", () => {
  it.prop("a prefix within the budget, as long as it can be without half a surrogate pair", [
    fc.string({ unit: fc.oneof(fc.constantFrom("a", "é", "😀", "\ud800"), fc.char()), maxLength: 60 }),
    fc.integer({ min: 0, max: 20 })
  ], ([text, budget]) => {
    const cut = AiosBackend.cutToBudget(text, budget)
    if (text.length <= budget * 4) {
      expect(cut).toBeUndefined()
      return
    }
    expect(cut).toBeDefined()
    expect(text.startsWith(cut!)).toBe(true)
    expect(Backend.estimateTokens(cut!.length)).toBeLessThanOrEqual(budget)
    expect(cut!.length).toBeGreaterThanOrEqual(budget * 4 - 1)
    const last = cut!.charCodeAt(cut!.length - 1)
    const next = text.charCodeAt(cut!.length)
    // Never a high surrogate whose low half was left behind.
    expect(last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff).toBe(false)
  })
})
