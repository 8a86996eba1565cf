import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as AiosConfig from "../src/AiosConfig.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import type * as ToolTags from "../src/ToolTags.js"
import { estimateTokens } from "../src/Backend.js"
import { Turn, type TurnEvent, type TurnRequest } from "../src/Turn.js"
import { withAiosStack } from "./util.js"

const withStack = withAiosStack

const run = (request: TurnRequest) =>
  Effect.flatMap(Turn, (turn) => Stream.runCollect(turn.run(request))).pipe(Effect.map(Chunk.toReadonlyArray))

const text = (events: ReadonlyArray<TurnEvent>) =>
  events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join("")

const readTool: ToolTags.ToolDefinition = {
  name: "read",
  description: "Read a file",
  parameters: { type: "object", properties: { path: { type: "string" }, limit: { type: "integer" } }, required: ["path"] }
}

describe("Turn", () => {
  it.effect("a plain reply: text, then Finish(stop) with estimated usage", () =>
    Effect.gen(function*() {
      const events = yield* run({ model: "echo", context: { systemPrompt: "Be brief.", messages: [{ role: "user", content: "hello there" }] } })
      expect(text(events)).toBe("hello there")
      const finish = events[events.length - 1]
      expect(finish).toEqual({
        _tag: "Finish",
        reason: "stop",
        usage: {
          inputTokens: estimateTokens("Be brief.".length + "hello there".length),
          outputTokens: estimateTokens("hello there".length),
          totalTokens: estimateTokens(20) + estimateTokens(11),
          estimated: true
        }
      })
    }).pipe(withStack()))

  it.effect("tools offered as tags: the call comes back typed, with one alphanumeric id on start/delta/end", () =>
    Effect.gen(function*() {
      const events = yield* run({
        model: "tool-user",
        context: { messages: [{ role: "user", content: "please read notes.txt limit=5" }], tools: [readTool] }
      })
      const [sent] = (yield* ReferenceKernel.ReferenceKernel).requests("/query")
      const system = (sent?.body as { query_data: { messages: Array<{ role: string; content: string }> } }).query_data.messages[0]
      expect(system?.role).toBe("system")
      expect(system?.content).toContain("<tool name=\"read\">")

      const calls = events.filter((e) => e._tag.startsWith("ToolCall"))
      expect(calls.map((e) => e._tag)).toEqual(["ToolCallStart", "ToolCallDelta", "ToolCallEnd"])
      const ids = new Set(calls.map((e) => ("id" in e ? e.id : "")))
      expect(ids.size).toBe(1)
      expect([...ids][0]).toMatch(/^[A-Za-z0-9]+$/)
      expect(calls[2]).toMatchObject({ name: "read", arguments: { path: "notes.txt", limit: 5 } })
      expect(text(events)).toBe("I'll use the read tool.\n")
      expect(events[events.length - 1]).toMatchObject({ _tag: "Finish", reason: "toolUse" })
    }).pipe(withStack()))

  it.effect("tool results go back linked to their call; the model's answer quotes them", () =>
    Effect.gen(function*() {
      const events = yield* run({
        model: "tool-user",
        context: {
          tools: [readTool],
          messages: [
            { role: "user", content: "read notes.txt" },
            { role: "assistant", content: [{ type: "toolCall", id: "callA1", name: "read", arguments: { path: "notes.txt" } }] },
            { role: "toolResult", toolCallId: "callA1", toolName: "read", content: [{ type: "text", text: "alpha & <beta>" }], isError: false }
          ]
        }
      })
      expect(text(events)).toBe("The tool returned:\nalpha & <beta>")
      const [sent] = (yield* ReferenceKernel.ReferenceKernel).requests("/query")
      const last = (sent?.body as { query_data: { messages: Array<{ role: string; content: string }> } }).query_data.messages.at(-1)
      expect(last?.role).toBe("user")
      expect(last?.content).toContain("tool_call_id=\"callA1\"")
      expect(last?.content).toContain("name=\"read\"")
      expect(events[events.length - 1]).toMatchObject({ _tag: "Finish", reason: "stop" })
    }).pipe(withStack()))

  it.effect("native tool calls (toolCalls: native) become the same events", () =>
    Effect.gen(function*() {
      const events = yield* run({
        model: "tool-user",
        toolCalls: "native",
        context: { messages: [{ role: "user", content: "read notes.txt" }], tools: [readTool] }
      })
      const end = events.find((e) => e._tag === "ToolCallEnd")
      expect(end).toMatchObject({ name: "read", arguments: { path: "notes.txt" } })
      expect(end && "id" in end ? end.id : "").toMatch(/^[A-Za-z0-9]+$/)
      expect(events[events.length - 1]).toMatchObject({ _tag: "Finish", reason: "toolUse" })
    }).pipe(withStack()))

  // The waits themselves are TurnRetry's (proven under TestClock there); here: the turn really retries.
  it.live("a rate limit twice, then success: retried within the turn's budget", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.script({ _tag: "Status", statusCode: 429 }, { _tag: "Status", statusCode: 429 })
      const events = yield* run({ model: "echo", context: { messages: [{ role: "user", content: "again" }] } })
      expect(text(events)).toBe("again")
      expect(kernel.count("/query")).toBe(3)
    }).pipe(withStack({}, { retry: { delayMs: 0 } })))

  it.live("a rate limit beyond the budget fails the turn with the kernel's error", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.script(...Array.from({ length: 3 }, () => ({ _tag: "Status", statusCode: 429 }) as const))
      const error = yield* Effect.flip(run({ model: "echo", context: { messages: [{ role: "user", content: "x" }] } }))
      expect(error).toMatchObject({ _tag: "BackendRejected", kind: "rate_limit" })
      expect(kernel.count("/query")).toBe(3)
    }).pipe(withStack({}, { retry: { delayMs: 0, maxRetries: 2 } })))

  it.effect("an unknown model fails before any /query, naming the available models", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run({ model: "gpt-9", context: { messages: [{ role: "user", content: "x" }] } }))
      expect(error).toMatchObject({ _tag: "ModelUnknown", available: ["echo", "tool-user"] })
      expect((yield* ReferenceKernel.ReferenceKernel).count("/query")).toBe(0)
    }).pipe(withStack()))

  it.effect("an empty reply is the model's empty reply, not a broken kernel", () =>
    Effect.gen(function*() {
      ;(yield* ReferenceKernel.ReferenceKernel).script({ _tag: "Reply", text: "" })
      const error = yield* Effect.flip(run({ model: "echo", context: { messages: [{ role: "user", content: "x" }] } }))
      expect(error).toMatchObject({ _tag: "EmptyReply", kind: "empty_reply", model: "echo" })
      expect(error.message).toContain("empty reply")
      expect(error.message).not.toContain("malformed")
    }).pipe(withStack()))

  it.effect("turns do not re-read the model list: 50 turns, one /core/llms/list", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 50; i++) yield* run({ model: "echo", context: { messages: [{ role: "user", content: `n${i}` }] } })
      const kernel = yield* ReferenceKernel.ReferenceKernel
      expect(kernel.count("/query")).toBe(50)
      expect(kernel.count("/core/llms/list")).toBe(1)
    }).pipe(withStack()))

  it.effect("over an OpenAI-compatible /v1 backend: real deltas, tags parsed across them, usage passed through", () =>
    Effect.gen(function*() {
      const events = yield* run({
        model: "tool-user",
        context: { messages: [{ role: "user", content: "read notes.txt" }], tools: [readTool] }
      })
      expect(events.filter((e) => e._tag === "TextDelta").length).toBeGreaterThan(1)
      expect(events.find((e) => e._tag === "ToolCallEnd")).toMatchObject({ name: "read", arguments: { path: "notes.txt" } })
      const finish = events[events.length - 1]
      expect(finish).toMatchObject({ _tag: "Finish", reason: "toolUse", usage: { estimated: false } })
    }).pipe(withStack({ streamChunkChars: 3 }, { backend: "openai-compatible" })))

  // One path for every backend: the events differ only in how the text is cut and whether usage was reported.
  const eventsOf = (request: TurnRequest, options: ReferenceKernel.Options, config: AiosConfig.AiosConfigInput) =>
    run(request).pipe(withStack(options, config))
  const normalize = (events: ReadonlyArray<TurnEvent>) =>
    JSON.stringify([
      text(events),
      events.flatMap((e) => (e._tag === "ToolCallDelta" ? [e.argumentsDelta] : [])).join(""),
      events
        .filter((e) => e._tag !== "TextDelta" && e._tag !== "ToolCallDelta")
        .map((e) => (e._tag === "Finish" ? { ...e, usage: undefined } : e))
    ]).replace(/"id":"[A-Za-z0-9]+"/g, "\"id\":\"ID\"")

  it.effect("AIOS (one piece) and OpenAI-compatible (streamed) give the same events through the one run", () =>
    Effect.gen(function*() {
      const requests: ReadonlyArray<TurnRequest> = [
        { model: "echo", context: { messages: [{ role: "user", content: "a & b < c" }] } },
        { model: "tool-user", context: { messages: [{ role: "user", content: "read notes.txt limit=2" }], tools: [readTool] } },
        { model: "tool-user", toolCalls: "native", context: { messages: [{ role: "user", content: "read x.md" }], tools: [readTool] } }
      ]
      for (const request of requests) {
        const aios = yield* eventsOf(request, {}, {})
        const v1 = yield* eventsOf(request, { streamChunkChars: 5 }, { backend: "openai-compatible" })
        expect(normalize(v1)).toBe(normalize(aios))
        expect(aios.at(-1)?._tag).toBe("Finish")
      }
    }))

  it.effect("native tools refused by the endpoint: the turn falls back to tags, and later turns start there", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const turn = yield* Turn
      const request: TurnRequest = {
        model: "tool-user",
        toolCalls: "native",
        context: { messages: [{ role: "user", content: "read notes.txt" }], tools: [readTool] }
      }
      const first = yield* run(request)
      expect(first.find((e) => e._tag === "ToolCallEnd")).toMatchObject({ name: "read", arguments: { path: "notes.txt" } })
      const sent = kernel.requests("/v1/chat/completions").map((r) => r.body as { tools?: ReadonlyArray<unknown> })
      expect(sent.map((b) => (b.tools ?? []).length > 0)).toEqual([true, false])
      const second = yield* Stream.runCollect(turn.run(request)).pipe(Effect.map(Chunk.toReadonlyArray))
      expect(second.find((e) => e._tag === "ToolCallEnd")).toMatchObject({ name: "read" })
      expect(kernel.count("/v1/chat/completions")).toBe(3)
    }).pipe(withStack({ nativeTools: false }, { backend: "openai-compatible" })))
})
