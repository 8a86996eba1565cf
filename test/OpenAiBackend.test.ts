import { describe, expect, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import * as Backend from "../src/Backend.js"
import * as BackendError from "../src/BackendError.js"
import * as ReferenceOpenAi from "../src/testing/internal/openAi.js"
import { ReferenceKernel } from "../src/testing/ReferenceKernel.js"
import * as ReferenceKernelModule from "../src/testing/ReferenceKernel.js"
import * as ToolTags from "../src/ToolTags.js"
import * as TurnRetry from "../src/TurnRetry.js"
import { fails, partial, streamOf, textOf, texts, user, v1 } from "./OpenAiBackend.harness.js"
import { nativeReadTool } from "./util.js"

const fresh = Effect.flatMap(ReferenceKernel, (k) => Effect.sync(() => k.reset()))

const usageOf = (messages: ReadonlyArray<Backend.Message>, text: string) => {
  const u = ReferenceOpenAi.usageFor(messages, { text, toolCalls: [] })
  return Backend.reportedUsage(u.prompt_tokens, u.completion_tokens)
}

/** Advances the TestClock until `fiber` is done (the idle timer starts only when its pull does). */
const runClockUntilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: number) =>
  TestClock.adjust(step).pipe(
    Effect.zipRight(Fiber.poll(fiber)),
    Effect.repeat({ until: (exit) => exit._tag === "Some", times: 1_000 }),
    Effect.zipRight(Fiber.join(fiber))
  )

/** One SSE `data:` event of a completion chunk. */
const event = (delta: unknown, finish: string | null = null) =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`

layer(v1({ streamChunkChars: 3 }))("OpenAiBackend against the reference /v1", (it) => {
  it.effect("capabilities; models come from GET /v1/models, with no Authorization header when no key is set", () =>
    Effect.gen(function*() {
      yield* fresh
      const backend = yield* Backend.Backend
      expect(backend.capabilities).toEqual({ streams: true, protocol: "openai-compatible", callEndpoint: "/chat/completions" })
      expect(backend.url.endsWith("/v1")).toBe(true)
      const models = yield* backend.listModels
      expect(models).toEqual(ReferenceKernelModule.defaultModels.map((m) => ({ name: m.name, backend: m.backend })))
      const status = yield* backend.status
      expect(status).toEqual({ ok: true, message: "2 models available", inactiveComponents: [] })
      const kernel = yield* ReferenceKernel
      expect(kernel.count("/v1/models")).toBe(2)
      expect(kernel.countByKey("")).toBe(2)
    }))

  it.effect("streams text as server-sent events, piece by piece, and asks for usage", () =>
    Effect.gen(function*() {
      yield* fresh
      const content = "streaming over /v1 works"
      const chunks = yield* streamOf({ model: "echo", messages: user(content), maxTokens: 64, temperature: 0 })
      const deltas = chunks.filter((c) => c._tag === "TextDelta")
      // The reference cuts every 3 characters; each cut arrives as its own delta.
      expect(deltas.length).toBe(Math.ceil(content.length / 3))
      expect(deltas.every((d) => d.text.length <= 3)).toBe(true)
      expect(textOf(chunks)).toBe(content)
      expect(chunks.at(-1)).toMatchObject({ _tag: "Finish", reason: "stop" })
      const [sent] = (yield* ReferenceKernel).requests("/v1/chat/completions")
      expect(sent?.body).toEqual({
        model: "echo",
        messages: user(content),
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 64,
        temperature: 0
      })
    }))

  it.effect("deltas reach the consumer while the server is still generating (real streaming)", () =>
    Effect.gen(function*() {
      yield* fresh
      // The server sends two pieces and then goes silent: only a streaming client sees them.
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 2 })
      const backend = yield* Backend.Backend
      const firstTwo = yield* Stream.runCollect(Stream.take(backend.stream({ model: "echo", messages: user("abcdefghij") }), 2))
      expect(Chunk.toReadonlyArray(firstTwo)).toEqual([{ _tag: "TextDelta", text: "abc" }, { _tag: "TextDelta", text: "def" }])
    }))

  it.effect("usage from the final chunk is passed through, in the stream and in Backend.call", () =>
    Effect.gen(function*() {
      yield* fresh
      const messages = user("count my tokens please")
      const usage = usageOf(messages, "count my tokens please")
      expect(usage.estimated).toBe(false)
      const chunks = yield* streamOf({ model: "echo", messages })
      expect(chunks.at(-1)).toEqual({ _tag: "Finish", reason: "stop", usage })
      const result = yield* Backend.call({ model: "echo", messages })
      expect(result).toEqual({ model: "echo", text: "count my tokens please", toolCalls: [], usage, finishReason: "stop" })
    }))

  it.effect("native tool calls arrive as deltas and Backend.call assembles them", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      const planned = [
        { id: "call_a1", name: "read", parameters: { path: "notes/日本語 ✓.txt", lines: 20 } },
        { id: "call_b2", name: "write", parameters: { path: "out.txt", content: "a && b < c\n\"quoted\"" } }
      ]
      kernel.setModels([
        ...ReferenceKernelModule.defaultModels,
        { name: "two-calls", behaviour: () => ({ text: "Working on it.", toolCalls: planned }) }
      ])
      const tools = planned.map((c) => ({ name: c.name, description: `The ${c.name} tool`, parameters: { type: "object" } }))
      const chunks = yield* streamOf({ model: "two-calls", messages: user("go"), tools })
      const deltas = chunks.filter((c) => c._tag === "ToolCallDelta")
      // Arguments are streamed in 3-character pieces: many deltas per call, id and name on the first only.
      for (const [index, call] of planned.entries()) {
        const mine = deltas.filter((d) => d.index === index)
        expect(mine.length).toBeGreaterThan(2)
        expect(mine[0]).toMatchObject({ id: call.id, name: call.name })
        expect(mine.slice(1).every((d) => d.id === undefined && d.name === undefined)).toBe(true)
        expect(JSON.parse(mine.map((d) => d.argumentsDelta).join(""))).toEqual(call.parameters)
      }
      expect(chunks.at(-1)).toMatchObject({ _tag: "Finish", reason: "toolUse" })
      // Tools go out in OpenAI's wire shape.
      expect(kernel.requests("/v1/chat/completions")[0]?.body).toMatchObject({
        tools: tools.map((t) => ({ type: "function", function: t }))
      })

      const result = yield* Backend.call({ model: "two-calls", messages: user("go"), tools })
      expect(result.text).toBe("Working on it.")
      expect(result.toolCalls).toEqual(planned.map((c) => ({ id: c.id, name: c.name, arguments: c.parameters })))
      expect(result.finishReason).toBe("toolUse")
      kernel.setModels(ReferenceKernelModule.defaultModels)
    }))

  it.effect("tool-call deltas without an index: a new id starts a new call, anything else continues the last", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", {
        _tag: "Malformed",
        body: [
          event({ tool_calls: [{ id: "a", function: { name: "read", arguments: "{\"path\":" } }] }),
          event({ tool_calls: [{ function: { arguments: "\"x\"}" } }] }),
          event({ tool_calls: [{ id: "b", function: { name: "add", arguments: "{}" } }] }),
          event({}, "tool_calls"),
          "data: [DONE]\n\n"
        ].join("")
      })
      const result = yield* Backend.call({ model: "echo", messages: user("x") })
      expect(result.toolCalls).toEqual([
        { id: "a", name: "read", arguments: { path: "x" } },
        { id: "b", name: "add", arguments: {} }
      ])
    }))

  it.effect("a native tool round trip: assistant tool_calls and the tool result go back to the server", () =>
    Effect.gen(function*() {
      yield* fresh
      const tools = [nativeReadTool]
      const first = yield* Backend.call({ model: "tool-user", messages: user("read notes.txt"), tools })
      expect(first.toolCalls).toEqual([{ id: expect.stringMatching(/^call\d+$/), name: "read", arguments: { path: "notes.txt" } }])
      const call = first.toolCalls[0]!
      const second = yield* Backend.call({
        model: "tool-user",
        tools,
        messages: [
          ...user("read notes.txt"),
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: call.id!, type: "function", function: { name: call.name, arguments: JSON.stringify(call.arguments) } }]
          },
          { role: "tool", tool_call_id: call.id!, content: "hello from notes" }
        ]
      })
      expect(second.text).toBe("The tool returned:\nhello from notes")
      expect(second.toolCalls).toEqual([])
    }))

  it.effect("tool-call arguments cut by the length limit are never returned as a call by Backend.call", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", {
        _tag: "Malformed",
        body: [
          event({ tool_calls: [{ index: 0, id: "c1", type: "function", function: { name: "write", arguments: "" } }] }),
          event({ tool_calls: [{ index: 0, function: { arguments: "{\"path\": \"a.txt\", \"content\": \"hal" } }] }),
          event({}, "length"),
          "data: [DONE]\n\n"
        ].join("")
      })
      const error = yield* fails(Backend.call({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject({
        _tag: "MalformedResponse",
        endpoint: "/chat/completions",
        issue: "the arguments of tool call 'write' are not a JSON object (the reply was cut at the length limit)"
      })
    }))

  // HTTP error statuses with OpenAI bodies → BackendRejected with the HTTP status, kind, errorType, Retry-After.
  const statuses: ReadonlyArray<
    [string, ReferenceKernelModule.Fault, Partial<Pick<BackendError.BackendRejected, "status" | "kind" | "errorType" | "retryAfterMs">>, boolean]
  > = [
    ["429 + Retry-After seconds", { _tag: "Status", statusCode: 429, headers: { "retry-after": "7" } }, {
      status: 429,
      kind: "rate_limit",
      errorType: "rate_limit_exceeded",
      retryAfterMs: 7_000
    }, true],
    ["429 + retry-after-ms", { _tag: "Status", statusCode: 429, headers: { "retry-after-ms": "1500", "retry-after": "9" } }, {
      kind: "rate_limit",
      retryAfterMs: 1_500
    }, true],
    ["429 insufficient_quota", { _tag: "Status", statusCode: 429, errorType: "insufficient_quota", error: "You exceeded your current quota." }, {
      status: 429,
      kind: "quota",
      errorType: "insufficient_quota"
    }, false],
    ["401 invalid key", { _tag: "Status", statusCode: 401 }, { status: 401, kind: "auth", errorType: "invalid_api_key" }, false],
    ["402", { _tag: "Status", statusCode: 402 }, { status: 402, kind: "quota" }, false],
    ["400 context_length_exceeded", {
      _tag: "Status",
      statusCode: 400,
      errorType: "context_length_exceeded",
      error: "This model's maximum context length is 8192 tokens."
    }, { status: 400, kind: "context_overflow", errorType: "context_length_exceeded" }, false],
    ["500", { _tag: "Status", statusCode: 500 }, { status: 500, kind: "server", errorType: "server_error" }, true],
    ["503", { _tag: "Status", statusCode: 503 }, { status: 503, kind: "overloaded" }, true],
    ["plain-text 502", { _tag: "Http", status: 502, body: "upstream exploded" }, { status: 502, kind: "server" }, true]
  ]
  for (const [name, fault, expected, retryable] of statuses) {
    it.effect(`HTTP ${name} → BackendRejected ${JSON.stringify(expected)}`, () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", fault)
        const error = yield* fails(streamOf({ model: "echo", messages: user("hi") }))
        expect(error).toMatchObject({ _tag: "BackendRejected", model: "echo", inBody: false, ...expected })
        expect(BackendError.isRetryable(error)).toBe(retryable)
      }))
  }

  it.effect("an unknown model → 404 model_not_found; the server's message is kept", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(streamOf({ model: "nope", messages: user("hi") }))
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 404, kind: "model_not_found", errorType: "model_not_found" })
      if (error._tag === "BackendRejected") expect(error.reason).toContain("'nope' does not exist")
    }))

  for (const asEvent of [false, true]) {
    it.effect(`a 429 as an SSE error ${asEvent ? "(event: error)" : "(data: {error})"} after output began is reported, not retried`, () =>
      Effect.gen(function*() {
        yield* fresh
        const kernel = yield* ReferenceKernel
        kernel.scriptEndpoint("/v1/chat/completions", { _tag: "StreamError", afterChunks: 2, statusCode: 429, event: asEvent })
        const backend = yield* Backend.Backend
        const retry = TurnRetry.makeWith({ maxRetries: 3, delayMs: 0 })
        const { emitted, error } = yield* partial(
          retry.retryStream(backend.stream({ model: "echo", messages: user("abcdefghij") }), { turn: "t1", model: "echo" })
        )
        expect(emitted).toEqual([{ _tag: "TextDelta", text: "abc" }, { _tag: "TextDelta", text: "def" }])
        expect(error).toMatchObject({ _tag: "BackendRejected", status: 429, kind: "rate_limit", errorType: "rate_limit_exceeded", inBody: true })
        expect(kernel.count("/v1/chat/completions")).toBe(1)
      }))
  }

  it.effect("an SSE error before any output may be retried by TurnRetry (nothing reached the consumer)", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "StreamError", afterChunks: 0, statusCode: 503, errorType: "overloaded" })
      const backend = yield* Backend.Backend
      // No wait between attempts, so the TestClock need not move while HTTP is in flight.
      const retry = TurnRetry.makeWith({ maxRetries: 2, transientDelayMs: 0 })
      const chunks = Chunk.toReadonlyArray(
        yield* Stream.runCollect(retry.retryStream(backend.stream({ model: "echo", messages: user("again") }), { turn: "t2" }))
      )
      expect(textOf(chunks)).toBe("again")
      expect(kernel.count("/v1/chat/completions")).toBe(2)
    }))

  it.effect("malformed streams: an event that is not JSON; a stream that stops before finishing; nothing after [DONE] is read", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Malformed" })
      const notJson = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(notJson).toMatchObject({ _tag: "MalformedResponse", endpoint: "/chat/completions", issue: "a stream event is not JSON" })
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Malformed", body: event({ content: "half" }) })
      const cut = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(cut).toMatchObject({ _tag: "BackendUnreachable", detail: "the stream ended before the reply finished" })
      kernel.scriptEndpoint("/v1/chat/completions", {
        _tag: "Malformed",
        body: `${event({ content: "whole" })}data: [DONE]\n\ndata: not json at all\n\n`
      })
      expect(yield* streamOf({ model: "echo", messages: user("x") })).toEqual([
        { _tag: "TextDelta", text: "whole" },
        { _tag: "Finish", reason: undefined, usage: undefined }
      ])
    }))

  it.effect("an error sent with status 200 as a JSON body is an error, not a malformed completion", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", {
        _tag: "Http",
        status: 200,
        body: JSON.stringify({ error: { message: "Too many requests, slow down.", type: "rate_limit_exceeded" } })
      })
      const error = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject({
        _tag: "BackendRejected",
        status: 429,
        kind: "rate_limit",
        inBody: true,
        reason: "Too many requests, slow down."
      })
    }))

  it.effect("a connection reset → BackendUnreachable", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Reset" })
      const error = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(error._tag).toBe("BackendUnreachable")
      expect(BackendError.isRetryable(error)).toBe(true)
    }))

  it.effect("requestTimeoutMs bounds the wait for the head (TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Hang" })
      const fiber = yield* Effect.fork(fails(streamOf({ model: "echo", messages: user("x") })))
      const error = yield* runClockUntilDone(fiber, 5_000)
      expect(error).toMatchObject({ _tag: "BackendTimeout", timeoutMs: 5_000, model: "echo" })
    }))

  it.effect("…and every wait for the next piece: a stream stalled mid-reply times out (TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 1 })
      const backend = yield* Backend.Backend
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        partial(
          backend.stream({ model: "echo", messages: user("abcdef"), timeoutMs: 2_000 }).pipe(
            Stream.tap(() => Deferred.succeed(first, undefined))
          )
        )
      )
      // Only once the first piece is in may the clock move: before that, a real HTTP exchange is in flight.
      yield* Deferred.await(first)
      const { emitted, error } = yield* runClockUntilDone(fiber, 2_000)
      expect(emitted).toEqual([{ _tag: "TextDelta", text: "abc" }])
      expect(error).toMatchObject({ _tag: "BackendTimeout", timeoutMs: 2_000 })
    }))

  it.effect("an empty model name is refused before it is sent", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(streamOf({ model: " ", messages: user("x") }))
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 400, kind: "bad_request", reason: "request not sent: the model name is empty" })
      expect((yield* ReferenceKernel).count("/v1/chat/completions")).toBe(0)
    }))

  // The tag protocol over a real stream: the server cuts the reply at random points.
  const toolDefs: ReadonlyArray<ToolTags.ToolDefinition> = [
    { name: "read", parameters: { type: "object", properties: { path: { type: "string" } } } },
    { name: "add", parameters: { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } } } }
  ]
  const callArb = fc.oneof(
    fc.record({ name: fc.constant("read"), arguments: fc.record({ path: fc.string({ unit: "binary", maxLength: 30 }) }) }),
    fc.record({ name: fc.constant("add"), arguments: fc.record({ a: fc.integer(), b: fc.integer() }) })
  )
  const calls = (events: ReadonlyArray<ToolTags.ToolTagEvent>) =>
    events.flatMap((e) => (e._tag === "ToolCallEnd" ? [{ name: e.name, arguments: e.arguments }] : []))

  it.effect.prop(
    "tags in a stream split at random points give the same calls and text as the whole text",
    [
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.array(callArb, { minLength: 1, maxLength: 3 }),
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.array(fc.integer({ min: 1, max: 13 }), { minLength: 1, maxLength: 16 })
    ],
    ([before, planned, after, cuts]) =>
      Effect.gen(function*() {
        yield* fresh
        const kernel = yield* ReferenceKernel
        const text = `${before}\n${ToolTags.renderToolCalls(planned)}\n${after}`
        kernel.setStreamChunkChars(cuts)
        kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Reply", text })
        const backend = yield* Backend.Backend
        const events = Chunk.toReadonlyArray(
          yield* Stream.runCollect(
            texts(backend.stream({ model: "echo", messages: user("use tools") })).pipe(ToolTags.stream({ tools: toolDefs }))
          )
        )
        const whole = ToolTags.parse(text, { tools: toolDefs })
        const wholeCalls = whole.parts.flatMap((p) => (p._tag === "ToolCall" ? [{ name: p.name, arguments: p.arguments }] : []))
        const wholeText = whole.parts.map((p) => (p._tag === "Text" ? p.text : "")).join("")
        expect(calls(events)).toEqual(wholeCalls)
        expect(events.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")).toBe(wholeText)
        expect(events.filter((e) => e._tag === "InvalidCall").length).toBe(whole.invalid.length)
        expect(kernel.count("/v1/chat/completions")).toBe(1)
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect("the tag protocol example: the rendered calls come back from a finely cut stream", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      const planned = [{ name: "read", arguments: { path: "a<b>&c.txt" } }, { name: "add", arguments: { a: 2, b: 40 } }]
      kernel.setStreamChunkChars([1, 2, 5])
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Reply", text: `Sure.\n${ToolTags.renderToolCalls(planned)}` })
      const chunks = yield* streamOf({ model: "echo", messages: user("x") })
      expect(chunks.filter((c) => c._tag === "TextDelta").length).toBeGreaterThan(10)
      const events = Chunk.toReadonlyArray(
        yield* Stream.runCollect(texts(Stream.fromIterable(chunks)).pipe(ToolTags.stream({ tools: toolDefs })))
      )
      expect(calls(events)).toEqual(planned)
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("servers without streaming or native tools", () => {
  it.effect("a server that answers JSON to stream: true is read as one completion", () =>
    Effect.gen(function*() {
      const chunks = yield* streamOf({ model: "echo", messages: user("no streaming here") })
      expect(chunks).toEqual([
        { _tag: "TextDelta", text: "no streaming here" },
        { _tag: "Finish", reason: "stop", usage: usageOf(user("no streaming here"), "no streaming here") }
      ])
    }).pipe(Effect.provide(v1({ streaming: false }))))

  it.effect("a server that does not send usage: Finish has none", () =>
    Effect.gen(function*() {
      const chunks = yield* streamOf({ model: "echo", messages: user("hi") })
      expect(chunks.at(-1)).toEqual({ _tag: "Finish", reason: "stop", usage: undefined })
    }).pipe(Effect.provide(v1({ streamUsage: false }))))

  it.effect("a server without native tools: the refusal is tools_unsupported, and the tag protocol works there", () =>
    Effect.gen(function*() {
      const error = yield* fails(Backend.call({ model: "tool-user", messages: user("read a.txt"), tools: [{ name: "read" }] }))
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 400, kind: "tools_unsupported" })
      expect(BackendError.isRetryable(error)).toBe(false)
      // The same turn with the tools in the prompt (tags): the model answers with a block the parser reads.
      const tagTools = [{ name: "read", parameters: { type: "object", properties: { path: { type: "string" } } } }]
      const result = yield* Backend.call({
        model: "tool-user",
        messages: [{ role: "system", content: ToolTags.renderToolsPrompt(tagTools) }, ...user("read a.txt")]
      })
      const parsed = ToolTags.parse(result.text, { tools: tagTools })
      expect(parsed.parts.filter((p) => p._tag === "ToolCall").map((p) => p._tag === "ToolCall" && p.arguments)).toEqual([
        { path: "a.txt" }
      ])
    }).pipe(Effect.provide(v1({ nativeTools: false }))))
})
