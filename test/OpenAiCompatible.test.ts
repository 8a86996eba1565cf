import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import * as AiosConfig from "../src/AiosConfig.js"
import * as ApiKeys from "../src/ApiKeys.js"
import { KernelClient } from "../src/KernelClient.js"
import * as KernelClientModule from "../src/KernelClient.js"
import * as KernelError from "../src/KernelError.js"
import * as ReferenceOpenAi from "../src/internal/referenceOpenAi.js"
import { ReferenceKernel } from "../src/testing/ReferenceKernel.js"
import * as ReferenceKernelModule from "../src/testing/ReferenceKernel.js"
import * as ToolTags from "../src/ToolTags.js"
import * as TurnRetry from "../src/TurnRetry.js"
import { nativeReadTool } from "./util.js"

// ---------------------------------------------------------------------------------------------------------------
// Harness: the reference server's `/v1` over real HTTP on 127.0.0.1, the client chosen by `backend`.
// ---------------------------------------------------------------------------------------------------------------

const v1 = (
  options: ReferenceKernelModule.Options = {},
  config: AiosConfig.AiosConfigInput = {},
  httpClient: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
) =>
  KernelClientModule.layerFromConfig.pipe(
    Layer.provideMerge(
      Layer.effect(
        AiosConfig.AiosConfig,
        Effect.flatMap(ReferenceKernel, (k) =>
          AiosConfig.make({ backend: "openai-compatible", requestTimeoutMs: 5_000, ...config, baseUrl: `${k.url}/v1` }))
      ).pipe(Layer.provideMerge(ReferenceKernelModule.layer(options)), Layer.orDie)
    ),
    Layer.provideMerge(httpClient)
  )

type Chunk = KernelClientModule.QueryChunk

const user = (content: string) => [{ role: "user" as const, content }]

const streamOf = (request: KernelClientModule.QueryRequest) =>
  Effect.flatMap(KernelClient, (k) => Effect.map(Stream.runCollect(k.queryStream(request)), Chunk.toReadonlyArray))

const fails = <A, R>(effect: Effect.Effect<A, KernelError.KernelError, R>) =>
  Effect.flatMap(Effect.either(effect), (e) =>
    Either.isLeft(e) ? Effect.succeed(e.left) : Effect.dieMessage(`expected a failure, got ${JSON.stringify(e.right)}`))

/** Everything a stream emitted before it ended, and how it ended. */
const partial = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(Stream.either(stream)), (all) => {
    const items = Chunk.toReadonlyArray(all)
    const lefts = items.filter(Either.isLeft).map((e) => e.left)
    return { emitted: items.filter(Either.isRight).map((e) => e.right), error: lefts[0] }
  })

const texts = <E, R>(stream: Stream.Stream<Chunk, E, R>) =>
  Stream.filterMap(stream, (c) => (c._tag === "TextDelta" ? Option.some(c.text) : Option.none()))

const textOf = (chunks: ReadonlyArray<Chunk>) =>
  chunks.map((c) => (c._tag === "TextDelta" ? c.text : "")).join("")

const fresh = Effect.flatMap(ReferenceKernel, (k) => Effect.sync(() => k.reset()))

/** Advances the TestClock until `fiber` is done (the idle timer starts only when its pull does). */
const runClockUntilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: number) =>
  TestClock.adjust(step).pipe(
    Effect.zipRight(Fiber.poll(fiber)),
    Effect.repeat({ until: (exit) => exit._tag === "Some", times: 1_000 }),
    Effect.zipRight(Fiber.join(fiber))
  )

// ---------------------------------------------------------------------------------------------------------------

layer(v1({ streamChunkChars: 3 }))("OpenAI-compatible client against the reference /v1", (it) => {
  it.effect("layerFromConfig picks the OpenAI-compatible client; models come from GET /v1/models", () =>
    Effect.gen(function*() {
      yield* fresh
      const client = yield* KernelClient
      expect(client.backend).toBe("openai-compatible")
      expect(client.url.endsWith("/v1")).toBe(true)
      const models = yield* client.listModels
      expect(models).toEqual(ReferenceKernelModule.defaultModels.map((m) => ({ name: m.name, backend: m.backend })))
      const status = yield* client.status
      expect(status.ok).toBe(true)
      const kernel = yield* ReferenceKernel
      expect(kernel.count("/v1/models")).toBe(2)
      // No keys configured: no Authorization header at all.
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
      const client = yield* KernelClient
      const firstTwo = yield* Stream.runCollect(Stream.take(client.queryStream({ model: "echo", messages: user("abcdefghij") }), 2))
      expect(Chunk.toReadonlyArray(firstTwo)).toEqual([{ _tag: "TextDelta", text: "abc" }, { _tag: "TextDelta", text: "def" }])
    }))

  it.effect("usage from the final chunk is passed through, in the stream and in query", () =>
    Effect.gen(function*() {
      yield* fresh
      const messages = user("count my tokens please")
      const expected = ReferenceOpenAi.usageFor(messages, { text: "count my tokens please", toolCalls: [] })
      const usage = { inputTokens: expected.prompt_tokens, outputTokens: expected.completion_tokens }
      const chunks = yield* streamOf({ model: "echo", messages })
      expect(chunks.at(-1)).toEqual({ _tag: "Finish", reason: "stop", usage })
      const result = yield* Effect.flatMap(KernelClient, (k) => k.query({ model: "echo", messages }))
      expect(result).toEqual({ model: "echo", text: "count my tokens please", toolCalls: [], usage, finishReason: "stop" })
    }))

  it.effect("native tool calls arrive as deltas and query assembles them", () =>
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
      const tools = planned.map((c) => ({ type: "function" as const, function: { name: c.name, parameters: { type: "object" } } }))
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
      expect(chunks.at(-1)).toMatchObject({ _tag: "Finish", reason: "tool_calls" })
      expect(kernel.requests("/v1/chat/completions")[0]?.body).toMatchObject({ tools })

      const result = yield* Effect.flatMap(KernelClient, (k) => k.query({ model: "two-calls", messages: user("go"), tools }))
      expect(result.text).toBe("Working on it.")
      expect(result.toolCalls).toEqual(planned.map((c) => ({ id: c.id, name: c.name, arguments: c.parameters })))
      expect(result.finishReason).toBe("tool_calls")
      kernel.setModels(ReferenceKernelModule.defaultModels)
    }))

  it.effect("a native tool round trip: assistant tool_calls and the tool result go back to the server", () =>
    Effect.gen(function*() {
      yield* fresh
      const client = yield* KernelClient
      const tools = [nativeReadTool]
      const first = yield* client.query({ model: "tool-user", messages: user("read notes.txt"), tools })
      expect(first.toolCalls).toEqual([{ id: expect.stringMatching(/^call\d+$/), name: "read", arguments: { path: "notes.txt" } }])
      const call = first.toolCalls[0]!
      const second = yield* client.query({
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

  it.effect("tool-call arguments cut by the length limit are never returned as a call by query", () =>
    Effect.gen(function*() {
      yield* fresh
      const event = (delta: unknown, finish: string | null = null) =>
        `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", {
        _tag: "Malformed",
        body: [
          event({ tool_calls: [{ index: 0, id: "c1", type: "function", function: { name: "write", arguments: "" } }] }),
          event({ tool_calls: [{ index: 0, function: { arguments: "{\"path\": \"a.txt\", \"content\": \"hal" } }] }),
          event({}, "length"),
          "data: [DONE]\n\n"
        ].join("")
      })
      const error = yield* fails(Effect.flatMap(KernelClient, (k) => k.query({ model: "echo", messages: user("x") })))
      expect(error).toMatchObject({
        _tag: "KernelMalformedResponse",
        issue: "the arguments of tool call 'write' are not a JSON object (the reply was cut at the length limit)"
      })
    }))

  // HTTP error statuses with OpenAI bodies → KernelRejected with the HTTP status, kind, errorType, Retry-After.
  const statuses: ReadonlyArray<
    [string, ReferenceKernelModule.Fault, Partial<Pick<KernelError.KernelRejected, "statusCode" | "kind" | "errorType" | "retryAfterMs">>, boolean]
  > = [
    ["429 + Retry-After seconds", { _tag: "Status", statusCode: 429, headers: { "retry-after": "7" } }, {
      statusCode: 429,
      kind: "rate_limited",
      errorType: "rate_limit_exceeded",
      retryAfterMs: 7_000
    }, true],
    ["429 + retry-after-ms", { _tag: "Status", statusCode: 429, headers: { "retry-after-ms": "1500", "retry-after": "9" } }, {
      kind: "rate_limited",
      retryAfterMs: 1_500
    }, true],
    ["429 insufficient_quota", { _tag: "Status", statusCode: 429, errorType: "insufficient_quota", error: "You exceeded your current quota." }, {
      statusCode: 429,
      kind: "quota_exhausted",
      errorType: "insufficient_quota"
    }, false],
    ["401 invalid key", { _tag: "Status", statusCode: 401 }, { statusCode: 401, kind: "auth_failed", errorType: "invalid_api_key" }, false],
    ["402", { _tag: "Status", statusCode: 402 }, { statusCode: 402, kind: "quota_exhausted" }, false],
    ["400 context_length_exceeded", {
      _tag: "Status",
      statusCode: 400,
      errorType: "context_length_exceeded",
      error: "This model's maximum context length is 8192 tokens."
    }, { statusCode: 400, kind: "context_overflow", errorType: "context_length_exceeded" }, false],
    ["500", { _tag: "Status", statusCode: 500 }, { statusCode: 500, kind: "server_error", errorType: "server_error" }, true],
    ["503", { _tag: "Status", statusCode: 503 }, { statusCode: 503, kind: "unavailable" }, true],
    ["plain-text 502", { _tag: "Http", status: 502, body: "upstream exploded" }, { statusCode: 502, kind: "bad_gateway" }, true]
  ]
  for (const [name, fault, expected, retryable] of statuses) {
    it.effect(`HTTP ${name} → KernelRejected ${JSON.stringify(expected)}`, () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", fault)
        const error = yield* fails(streamOf({ model: "echo", messages: user("hi") }))
        expect(error).toMatchObject({ _tag: "KernelRejected", model: "echo", ...expected })
        expect(error.retryable).toBe(retryable)
      }))
  }

  it.effect("an unknown model → 404 model_not_found; the server's message is kept", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(streamOf({ model: "nope", messages: user("hi") }))
      expect(error).toMatchObject({ _tag: "KernelRejected", statusCode: 404, kind: "model_not_found", errorType: "model_not_found" })
      if (error._tag === "KernelRejected") expect(error.reason).toContain("'nope' does not exist")
    }))

  for (const event of [false, true]) {
    it.effect(`a 429 as an SSE error ${event ? "(event: error)" : "(data: {error})"} after output began is reported, not retried`, () =>
      Effect.gen(function*() {
        yield* fresh
        const kernel = yield* ReferenceKernel
        kernel.scriptEndpoint("/v1/chat/completions", { _tag: "StreamError", afterChunks: 2, statusCode: 429, event })
        const client = yield* KernelClient
        const retry = TurnRetry.makeWith({ maxRetries: 3, delayMs: 0 })
        const { emitted, error } = yield* partial(
          retry.retryStream(client.queryStream({ model: "echo", messages: user("abcdefghij") }), { turn: "t1", model: "echo" })
        )
        expect(emitted).toEqual([{ _tag: "TextDelta", text: "abc" }, { _tag: "TextDelta", text: "def" }])
        expect(error).toMatchObject({ _tag: "KernelRejected", statusCode: 429, kind: "rate_limited", errorType: "rate_limit_exceeded" })
        expect(kernel.count("/v1/chat/completions")).toBe(1)
      }))
  }

  it.effect("an SSE error before any output may be retried by TurnRetry (nothing reached the consumer)", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "StreamError", afterChunks: 0, statusCode: 503, errorType: "overloaded" })
      const client = yield* KernelClient
      // No wait between attempts, so the TestClock need not move while HTTP is in flight.
      const retry = TurnRetry.makeWith({ maxRetries: 2, transientDelayMs: 0 })
      const chunks = Chunk.toReadonlyArray(
        yield* Stream.runCollect(retry.retryStream(client.queryStream({ model: "echo", messages: user("again") }), { turn: "t2" }))
      )
      expect(textOf(chunks)).toBe("again")
      expect(kernel.count("/v1/chat/completions")).toBe(2)
    }))

  it.effect("malformed streams: an event that is not JSON; a stream that stops before finishing", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Malformed" })
      const notJson = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(notJson).toMatchObject({ _tag: "KernelMalformedResponse", endpoint: "/chat/completions", issue: "a stream event is not JSON" })
      kernel.scriptEndpoint("/v1/chat/completions", {
        _tag: "Malformed",
        body: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"}}]}\n\n"
      })
      const cut = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(cut).toMatchObject({ _tag: "KernelUnreachable", detail: "the stream ended before the reply finished" })
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
      expect(error).toMatchObject({ _tag: "KernelRejected", statusCode: 429, kind: "rate_limited", reason: "Too many requests, slow down." })
    }))

  it.effect("a connection reset → KernelUnreachable", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Reset" })
      const error = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(error._tag).toBe("KernelUnreachable")
      expect(error.retryable).toBe(true)
    }))

  it.effect("requestTimeoutMs bounds the wait for the head (TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Hang" })
      const fiber = yield* Effect.fork(fails(streamOf({ model: "echo", messages: user("x") })))
      const error = yield* runClockUntilDone(fiber, 5_000)
      expect(error).toMatchObject({ _tag: "KernelTimeout", timeoutMs: 5_000, model: "echo" })
    }))

  it.effect("…and every wait for the next piece: a stream stalled mid-reply times out (TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 1 })
      const client = yield* KernelClient
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        partial(
          client.queryStream({ model: "echo", messages: user("abcdef"), timeoutMs: 2_000 }).pipe(
            Stream.tap(() => Deferred.succeed(first, undefined))
          )
        )
      )
      // Only once the first piece is in may the clock move: before that, a real HTTP exchange is in flight.
      yield* Deferred.await(first)
      const { emitted, error } = yield* runClockUntilDone(fiber, 2_000)
      expect(emitted).toEqual([{ _tag: "TextDelta", text: "abc" }])
      expect(error).toMatchObject({ _tag: "KernelTimeout", timeoutMs: 2_000 })
    }))

  it.effect("an empty model name is refused before it is sent", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(streamOf({ model: " ", messages: user("x") }))
      expect(error).toMatchObject({ _tag: "KernelHttpError", status: 400 })
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
        const client = yield* KernelClient
        const events = Chunk.toReadonlyArray(
          yield* Stream.runCollect(
            texts(client.queryStream({ model: "echo", messages: user("use tools") })).pipe(ToolTags.stream({ tools: toolDefs }))
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
      const client = yield* KernelClient
      const chunks = yield* streamOf({ model: "echo", messages: user("x") })
      expect(chunks.filter((c) => c._tag === "TextDelta").length).toBeGreaterThan(10)
      const events = Chunk.toReadonlyArray(
        yield* Stream.runCollect(
          texts(Stream.fromIterable(chunks)).pipe(ToolTags.stream({ tools: toolDefs }))
        )
      )
      expect(calls(events)).toEqual(planned)
      expect(client.backend).toBe("openai-compatible")
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("servers without streaming or native tools", () => {
  it.effect("a server that answers JSON to stream: true is read as one completion", () =>
    Effect.gen(function*() {
      const chunks = yield* streamOf({ model: "echo", messages: user("no streaming here") })
      expect(chunks).toEqual([
        { _tag: "TextDelta", text: "no streaming here" },
        {
          _tag: "Finish",
          reason: "stop",
          usage: (() => {
            const u = ReferenceOpenAi.usageFor(user("no streaming here"), { text: "no streaming here", toolCalls: [] })
            return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens }
          })()
        }
      ])
    }).pipe(Effect.provide(v1({ streaming: false }))))

  it.effect("a server that does not send usage: Finish has none", () =>
    Effect.gen(function*() {
      const chunks = yield* streamOf({ model: "echo", messages: user("hi") })
      expect(chunks.at(-1)).toEqual({ _tag: "Finish", reason: "stop", usage: undefined })
    }).pipe(Effect.provide(v1({ streamUsage: false }))))

  it.effect("a server without native tools: the refusal is recognised, and the tag protocol works there", () =>
    Effect.gen(function*() {
      const client = yield* KernelClient
      const tools = [{ type: "function" as const, function: { name: "read" } }]
      const error = yield* fails(client.query({ model: "tool-user", messages: user("read a.txt"), tools }))
      expect(error).toMatchObject({ _tag: "KernelRejected", statusCode: 400 })
      expect(KernelClientModule.nativeToolsUnsupported(error)).toBe(true)
      // The same turn with the tools in the prompt (tags): the model answers with a block the parser reads.
      const tagTools = [{ name: "read", parameters: { type: "object", properties: { path: { type: "string" } } } }]
      const result = yield* client.query({
        model: "tool-user",
        messages: [{ role: "system", content: ToolTags.renderToolsPrompt(tagTools) }, ...user("read a.txt")]
      })
      const parsed = ToolTags.parse(result.text, { tools: tagTools })
      expect(parsed.parts.filter((p) => p._tag === "ToolCall").map((p) => p._tag === "ToolCall" && p.arguments)).toEqual([
        { path: "a.txt" }
      ])
    }).pipe(Effect.provide(v1({ nativeTools: false }))))

  it("nativeToolsUnsupported does not match other refusals", () => {
    const make = (statusCode: number, reason: string) =>
      new KernelError.KernelRejected({
        url: "http://127.0.0.1:1/v1",
        statusCode,
        kind: KernelError.rejectionKind(statusCode, reason),
        reason
      })
    expect(KernelClientModule.nativeToolsUnsupported(make(400, "this model does not support tool calling"))).toBe(true)
    expect(KernelClientModule.nativeToolsUnsupported(make(400, "messages must not be empty"))).toBe(false)
    expect(KernelClientModule.nativeToolsUnsupported(make(429, "tools are not supported"))).toBe(false)
  })
})

// ---------------------------------------------------------------------------------------------------------------

const KEY_A = "sk-test-AAAA-0001"
const KEY_B = "sk-test-BBBB-0002"

describe("API keys over HTTP", () => {
  const twoKeys = v1({ apiKeys: [KEY_A, KEY_B] }, { apiKeys: [KEY_A, KEY_B] })

  it.effect("two keys, the first rate-limited → the second is used at once; counted by the server", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 429, headers: { "retry-after": "10" } })
      const first = yield* client.query({ model: "echo", messages: user("one") })
      expect(first.text).toBe("one")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      // A cools down for its Retry-After: the next call goes to B straight away.
      yield* client.query({ model: "echo", messages: user("two") })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 2])
      // Ten seconds later A is back in the rotation.
      yield* TestClock.adjust("10 seconds")
      yield* client.query({ model: "echo", messages: user("three") })
      yield* client.query({ model: "echo", messages: user("four") })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([2, 3])
      expect(kernel.countByKey("")).toBe(0)
    }).pipe(Effect.provide(twoKeys)))

  it.effect("round-robin: calls alternate between the keys", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      for (let i = 0; i < 6; i++) yield* client.listModels
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([3, 3])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("a key the server refuses (401) cools down for long; the good key carries on", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      yield* client.query({ model: "echo", messages: user("a") })
      expect([kernel.countByKey("sk-revoked"), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      yield* TestClock.adjust("30 minutes")
      yield* client.query({ model: "echo", messages: user("b") })
      yield* client.query({ model: "echo", messages: user("c") })
      expect([kernel.countByKey("sk-revoked"), kernel.countByKey(KEY_B)]).toEqual([1, 3])
    }).pipe(Effect.provide(v1({ apiKeys: [KEY_B] }, { apiKeys: ["sk-revoked", KEY_B] }))))

  it.effect("every key rate-limited → the call fails with the 429 after trying each once", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 429, headers: { "retry-after": "5" } })
      kernel.scriptKey(KEY_B, { _tag: "Status", statusCode: 429, headers: { "retry-after": "8" } })
      const error = yield* fails(client.query({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject({ _tag: "KernelRejected", statusCode: 429, kind: "rate_limited", retryAfterMs: 8_000 })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      // Both cool down: the one whose cooldown ends first (A) is asked rather than failing unasked.
      const next = yield* client.query({ model: "echo", messages: user("y") })
      expect(next.text).toBe("y")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([2, 1])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("a 5xx is not the key's fault: no rotation, no cooldown", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 500 })
      const error = yield* fails(client.query({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject({ statusCode: 500 })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 0])
      yield* client.query({ model: "echo", messages: user("y") })
      yield* client.query({ model: "echo", messages: user("z") })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([2, 1])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("a 429 SSE error mid-stream cools the key down too", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      kernel.scriptKey(KEY_A, { _tag: "StreamError", afterChunks: 1, statusCode: 429 })
      const { error } = yield* partial(client.queryStream({ model: "echo", messages: user("abcdefgh") }))
      expect(error).toMatchObject({ _tag: "KernelRejected", kind: "rate_limited" })
      yield* client.query({ model: "echo", messages: user("y") })
      yield* client.query({ model: "echo", messages: user("z") })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 2])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("keys never appear in errors, their JSON, or logs — even when the server echoes one", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 401, error: `Incorrect API key provided: ${KEY_A}.` })
      kernel.scriptKey(KEY_B, { _tag: "Status", statusCode: 403, error: `Key ${KEY_B} may not use this model` })
      const rejected = yield* fails(client.query({ model: "echo", messages: user("x") }))
      expect(rejected).toMatchObject({ _tag: "KernelRejected", statusCode: 403 })
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Reset" })
      const reset = yield* fails(client.query({ model: "echo", messages: user("x") }))
      expect(reset._tag).toBe("KernelUnreachable")
      const logged: Array<string> = []
      const capture = Logger.make(({ message }) => {
        logged.push(Inspectable.toStringUnknown(message))
      })
      yield* Effect.logError(rejected, reset).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      for (const error of [rejected, reset]) {
        for (const text of [error.message, String(error), JSON.stringify(error), Inspectable.toStringUnknown(error), ...logged]) {
          expect(text).not.toContain(KEY_A)
          expect(text).not.toContain(KEY_B)
        }
      }
      if (rejected._tag === "KernelRejected") expect(rejected.reason).toContain("[redacted]")
    }).pipe(Effect.provide(twoKeys)))

  it.effect("the platform redacts the Authorization header when a request is logged", () =>
    Effect.gen(function*() {
      const request = HttpClientRequest.post("http://127.0.0.1:1/v1/chat/completions").pipe(
        HttpClientRequest.bearerToken(Redacted.make(KEY_A))
      )
      const logged: Array<string> = []
      const capture = Logger.make(({ message }) => {
        logged.push(Inspectable.toStringUnknown(message))
      })
      yield* Effect.log(request).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      expect(logged.join("\n")).toContain("authorization")
      expect(logged.join("\n")).not.toContain(KEY_A)
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("over fetch as well as undici", () => {
  it.effect("streaming, key rotation and redaction do not depend on the HttpClient", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 429, error: `slow down ${KEY_A}` })
      const chunks = yield* streamOf({ model: "echo", messages: user("fetch streams too") })
      expect(chunks.filter((c) => c._tag === "TextDelta").length).toBe(Math.ceil("fetch streams too".length / 4))
      expect(textOf(chunks)).toBe("fetch streams too")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Reset" })
      const reset = yield* fails(client.query({ model: "echo", messages: user("x") }))
      expect(reset._tag).toBe("KernelUnreachable")
      expect(JSON.stringify(reset)).not.toContain(KEY_B)
    }).pipe(Effect.provide(v1({ apiKeys: [KEY_A, KEY_B] }, { apiKeys: [KEY_A, KEY_B] }, FetchHttpClient.layer))))
})

describe("layers", () => {
  it.effect("layerFromConfig with backend aios gives the AIOS client", () =>
    Effect.gen(function*() {
      const client = yield* KernelClient
      expect(client.backend).toBe("aios")
    }).pipe(
      Effect.provide(
        KernelClientModule.layerFromConfig.pipe(
          Layer.provide(AiosConfig.layer({ backend: "aios", baseUrl: "http://127.0.0.1:1" })),
          Layer.provide(NodeHttpClient.layerUndici),
          Layer.orDie
        )
      )
    ))

  it.effect("makeOpenAiCompatible takes keys from any ApiKeys service", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClientModule.makeOpenAiCompatible.pipe(
        Effect.provide(ApiKeys.layerWith([Redacted.make(KEY_B)]))
      )
      yield* client.listModels
      expect(kernel.countByKey(KEY_B)).toBe(1)
    }).pipe(Effect.provide(v1({ apiKeys: [KEY_B] }))))

  it.effect("the reference counts a stream in flight until it ends, once per request", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const client = yield* KernelClient
      yield* client.query({ model: "echo", messages: user("one at a time") })
      expect(kernel.maxConcurrentQueries()).toBe(1)
      // Three streams that stall after their first piece: all three are open on the server at once.
      kernel.scriptEndpoint("/v1/chat/completions", ...Array.from({ length: 3 }, () => ({ _tag: "Stall", afterChunks: 1 } as const)))
      const heads = yield* Effect.all(
        Array.from({ length: 3 }, () => Stream.runHead(client.queryStream({ model: "echo", messages: user("abcdef") }))),
        { concurrency: "unbounded" }
      )
      expect(heads.every(Option.isSome)).toBe(true)
      expect(kernel.maxConcurrentQueries()).toBe(3)
    }).pipe(Effect.provide(v1())))

  describe("interruption", () => {
    it.live("ending a stream early aborts the request: the server sees the stream end", () =>
      Effect.gen(function*() {
        const kernel = yield* ReferenceKernel
        kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 1 })
        const client = yield* KernelClient
        const first = yield* Stream.runHead(client.queryStream({ model: "echo", messages: user("abcdef") }))
        expect(first._tag).toBe("Some")
        // The aborted request ends on the server side too; poll, bounded, for it to be gone.
        const open = yield* Effect.sync(() => kernel.openQueries()).pipe(
          Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n === 0, times: 200 }),
          Effect.zipRight(Effect.sync(() => kernel.openQueries()))
        )
        expect(open).toBe(0)
      }).pipe(Effect.provide(v1())))
  })
})
