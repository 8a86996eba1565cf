import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import * as fc from "fast-check"
import * as Aios from "../src/Aios.js"
import type * as AiosConfig from "../src/AiosConfig.js"
import { estimateTokens } from "../src/Backend.js"
import * as BackendError from "../src/BackendError.js"
import * as Llm from "../src/Llm.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { aiosStack } from "./util.js"

const stack = (options: ReferenceKernel.Options = {}, config: AiosConfig.AiosConfigInput = {}) =>
  Llm.layer.pipe(Layer.provideMerge(aiosStack(options, config)))

const withStack = (options: ReferenceKernel.Options = {}, config: AiosConfig.AiosConfigInput = {}) =>
<A, E>(effect: Effect.Effect<A, E, Aios.Services | Llm.Llm | ReferenceKernel.ReferenceKernel>) =>
  Effect.provide(effect, stack(options, config))

const Kernel = ReferenceKernel.ReferenceKernel

const sentMessages = (kernel: ReferenceKernel.Service, path = "/query") =>
  kernel.requests(path).map((r) => {
    const body = r.body as { query_data?: { messages: unknown }; messages?: unknown }
    return body.query_data?.messages ?? body.messages
  })

const collect = <R>(s: Stream.Stream<string, Llm.LlmError, R>) => Effect.map(Stream.runCollect(s), Chunk.toReadonlyArray)

/** Lets the event loop run (I/O included) until `condition` holds; no timers, so no real sleep. */
const eventually = (condition: () => boolean, turns = 20_000): Effect.Effect<boolean> =>
  Effect.suspend(() =>
    condition() || turns <= 0
      ? Effect.succeed(condition())
      : Effect.zipRight(
        Effect.async<void>((resume) => {
          const handle = setImmediate(() => resume(Effect.void))
          return Effect.sync(() => clearImmediate(handle))
        }),
        eventually(condition, turns - 1)
      )
  )

describe("Llm.generate", () => {
  it.effect("a prompt with a system text: the reply, the resolved model, estimated usage, one attempt", () =>
    Effect.gen(function*() {
      const result = yield* Llm.generate({ prompt: "hello there", system: "Be brief.", model: "echo" })
      expect(result.text).toBe("hello there")
      expect(result.model).toBe("echo")
      expect(result.attempts).toBe(1)
      expect(result.finishReason).toBe("stop")
      expect(result.latencyMs).toBeGreaterThanOrEqual(0)
      const input = estimateTokens("Be brief.".length + "hello there".length)
      const output = estimateTokens("hello there".length)
      expect(result.usage).toEqual({ inputTokens: input, outputTokens: output, totalTokens: input + output, estimated: true })
      expect(sentMessages(yield* Kernel)).toEqual([[
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello there" }
      ]])
    }).pipe(withStack()))

  it.effect("a chat history: system messages join the system text, the prompt becomes the last user turn", () =>
    Effect.gen(function*() {
      const result = yield* Llm.generate({
        model: "echo",
        system: "One.",
        messages: [
          { role: "system", content: "Two." },
          { role: "user", content: "first" },
          { role: "assistant", content: "reply" }
        ],
        prompt: "second"
      })
      expect(result.text).toBe("second")
      expect(sentMessages(yield* Kernel)).toEqual([[
        { role: "system", content: "One.\n\nTwo." },
        { role: "user", content: "first" },
        { role: "assistant", content: "reply" },
        { role: "user", content: "second" }
      ]])
    }).pipe(withStack()))

  it.effect("maxTokens and temperature reach the kernel", () =>
    Effect.gen(function*() {
      yield* Llm.generate({ prompt: "x", model: "echo", maxTokens: 50, temperature: 0.5 })
      const [sent] = (yield* Kernel).requests("/query")
      expect(sent?.body).toMatchObject({ query_data: { max_new_tokens: 50, temperature: 0.5 } })
    }).pipe(withStack()))

  it.effect("without a model, defaultModel is used (and may itself be an alias)", () =>
    Effect.gen(function*() {
      const result = yield* Llm.generate({ prompt: "hi" })
      expect(result.model).toBe("tool-user")
      expect(result.text).toBe("You said: hi")
    }).pipe(withStack({}, { defaultModel: "tools", aliases: { tools: "tool-user" } })))

  it.effect("over a streaming /v1 backend: the kernel's usage is passed through, not estimated", () =>
    Effect.gen(function*() {
      const result = yield* Llm.generate({ prompt: "count these words", model: "echo" })
      expect(result.text).toBe("count these words")
      expect(result.usage.estimated).toBe(false)
      expect(result.usage.totalTokens).toBe(result.usage.inputTokens + result.usage.outputTokens)
    }).pipe(withStack({ streamChunkChars: 3 }, { backend: "openai-compatible" })))
})

describe("Llm.stream", () => {
  it.effect("yields the reply as it arrives; the pieces make the generate text", () =>
    Effect.gen(function*() {
      const pieces = yield* collect(Llm.stream({ prompt: "a longer reply, streamed", model: "echo" }))
      expect(pieces.length).toBeGreaterThan(1)
      expect(pieces.join("")).toBe("a longer reply, streamed")
    }).pipe(withStack({ streamChunkChars: 3 }, { backend: "openai-compatible" })))

  it.effect("fails with an LlmError like generate does", () =>
    Effect.gen(function*() {
      ;(yield* Kernel).script({ _tag: "Status", statusCode: 401 })
      const error = yield* Effect.flip(collect(Llm.stream({ prompt: "x", model: "echo" })))
      expect(error).toMatchObject({ _tag: "LlmError", code: "AUTH_FAILED", retryable: false })
    }).pipe(withStack()))

  it.effect("taking only the first piece ends the call and closes its request", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 2 })
      const first = yield* collect(Stream.take(Llm.stream({ prompt: "abcdefghijkl", model: "echo" }), 1))
      expect(first).toEqual(["abc"])
      expect(yield* eventually(() => kernel.openQueries() === 0)).toBe(true)
    }).pipe(withStack({ streamChunkChars: 3 }, { backend: "openai-compatible" })))
})

describe("Llm errors: each code over HTTP", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly faults: ReadonlyArray<ReferenceKernel.Fault>
    readonly code: Llm.LlmErrorCode
    readonly retryable: boolean
    readonly kind: BackendError.ErrorKind
    readonly tag: BackendError.BackendError["_tag"]
  }> = [
    { name: "429 (budget spent)", faults: [{ _tag: "Status", statusCode: 429 }, { _tag: "Status", statusCode: 429 }], code: "RATE_LIMITED", retryable: true, kind: "rate_limit", tag: "BackendRejected" },
    { name: "401", faults: [{ _tag: "Status", statusCode: 401 }], code: "AUTH_FAILED", retryable: false, kind: "auth", tag: "BackendRejected" },
    { name: "402 (billing)", faults: [{ _tag: "Status", statusCode: 402, error: "billing: out of credit" }], code: "AUTH_FAILED", retryable: false, kind: "quota", tag: "BackendRejected" },
    { name: "408", faults: [{ _tag: "Status", statusCode: 408 }, { _tag: "Status", statusCode: 408 }], code: "TIMEOUT", retryable: true, kind: "timeout", tag: "BackendRejected" },
    { name: "404 at the provider", faults: [{ _tag: "Status", statusCode: 404 }], code: "MODEL_UNAVAILABLE", retryable: false, kind: "model_not_found", tag: "BackendRejected" },
    { name: "503 (provider unreachable)", faults: [{ _tag: "Status", statusCode: 503 }, { _tag: "Status", statusCode: 503 }], code: "MODEL_UNAVAILABLE", retryable: true, kind: "overloaded", tag: "BackendRejected" },
    { name: "400", faults: [{ _tag: "Status", statusCode: 400 }], code: "INVALID_REQUEST", retryable: false, kind: "bad_request", tag: "BackendRejected" },
    { name: "HTTP 422", faults: [{ _tag: "Http", status: 422 }], code: "INVALID_REQUEST", retryable: false, kind: "bad_request", tag: "BackendRejected" },
    { name: "context overflow", faults: [{ _tag: "Status", statusCode: 400, error: "maximum context length exceeded" }], code: "INVALID_REQUEST", retryable: false, kind: "context_overflow", tag: "BackendRejected" },
    { name: "an empty reply", faults: [{ _tag: "Reply", text: "" }], code: "INVALID_REQUEST", retryable: false, kind: "empty_reply", tag: "EmptyReply" },
    { name: "a connection reset", faults: [{ _tag: "Reset" }, { _tag: "Reset" }], code: "MODEL_UNAVAILABLE", retryable: true, kind: "unreachable", tag: "BackendUnreachable" }
  ]
  for (const c of cases) {
    it.live(`${c.name} → ${c.code}`, () =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        kernel.script(...c.faults)
        const error = yield* Effect.flip(Llm.generate({ prompt: "x", model: "echo" }))
        expect(error).toBeInstanceOf(Llm.LlmError)
        expect(error).toMatchObject({ code: c.code, retryable: c.retryable, model: "echo" })
        expect(error.kind).toBe(c.kind)
        expect(BackendError.isBackendError(error.cause)).toBe(true)
        expect((error.cause as BackendError.BackendError)._tag).toBe(c.tag)
        // The backend's message, and, when our retries were used up, how many and how long.
        const own = (error.cause as BackendError.BackendError).message
        expect(error.message).toBe(c.faults.length > 1 ? `${own} ${error.message.slice(own.length + 1)}` : own)
        if (c.faults.length > 1) expect(error.message).toMatch(/Gave up after 2 attempts in [\d.]+ s/)
        // Only the retryable ones were retried, within the budget of 1.
        expect(kernel.count("/query")).toBe(c.faults.length)
      }).pipe(withStack({}, { retry: { maxRetries: 1, delayMs: 0, transientDelayMs: 0 } })))
  }

  it.live("the client timeout (a hanging kernel) → TIMEOUT, with the BackendTimeout as cause", () =>
    Effect.gen(function*() {
      ;(yield* Kernel).script({ _tag: "Hang" })
      const error = yield* Effect.flip(Llm.generate({ prompt: "x", model: "echo", timeoutMs: 30 }))
      expect(error).toMatchObject({ code: "TIMEOUT", retryable: true, kind: "timeout", cause: { _tag: "BackendTimeout", timeoutMs: 30 } })
    }).pipe(withStack({}, { retry: { maxRetries: 0 } })))

  it.effect("an unknown model → MODEL_UNAVAILABLE listing aliases and kernel models; nothing is queried", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Llm.generate({ prompt: "x", model: "gpt-9" }))
      expect(error).toMatchObject({ code: "MODEL_UNAVAILABLE", retryable: false })
      expect(error.message).toContain("'gpt-9'")
      expect(error.message).toContain("Aliases: fast")
      expect(error.message).toContain("Backend models: echo, tool-user")
      expect((yield* Kernel).count("/query")).toBe(0)
    }).pipe(withStack({}, { aliases: { fast: "echo" } })))

  it.effect("no model and no defaultModel → MODEL_UNAVAILABLE saying so", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Llm.generate({ prompt: "x" }))
      expect(error.code).toBe("MODEL_UNAVAILABLE")
      expect(error.message).toContain("no defaultModel")
    }).pipe(withStack()))

  it.live("a model list that fails (HTTP 500) while resolving the model → MODEL_UNAVAILABLE, retryable", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      kernel.scriptEndpoint("/core/llms/list", { _tag: "Http", status: 500 })
      const error = yield* Effect.flip(Llm.generate({ prompt: "x", model: "echo" }))
      expect(error).toMatchObject({ code: "MODEL_UNAVAILABLE", retryable: true, kind: "server", cause: { _tag: "BackendRejected" } })
      expect(kernel.count("/query")).toBe(0)
    }).pipe(withStack()))

  const badOptions: ReadonlyArray<readonly [string, unknown, string]> = [
    ["neither prompt nor messages", {}, "give a prompt or messages"],
    ["an empty prompt", { prompt: "  " }, "prompt is empty"],
    ["only system messages", { messages: [{ role: "system", content: "x" }] }, "no user or assistant text"],
    ["a temperature of 5", { prompt: "x", temperature: 5 }, "temperature"],
    ["maxTokens of 0", { prompt: "x", maxTokens: 0 }, "maxTokens"],
    ["a fractional timeoutMs", { prompt: "x", timeoutMs: 1.5 }, "timeoutMs"],
    ["an empty stop sequence", { prompt: "x", stopSequences: [""] }, "stopSequences.0"],
    ["a message role 'tool'", { messages: [{ role: "tool", content: "x" }] }, "messages.0.role"],
    ["an empty model name", { prompt: "x", model: " " }, "model"],
    ["options that are not an object", "hello", "options"]
  ]
  for (const [name, options, mentions] of badOptions) {
    it.effect(`bad options (${name}) → INVALID_REQUEST naming the problem; nothing is sent`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Llm.generate(options as Llm.LlmOptions))
        expect(error).toMatchObject({ code: "INVALID_REQUEST", retryable: false })
        expect(error.message).toContain(mentions)
        const kernel = yield* Kernel
        expect(kernel.count("/query") + kernel.count("/core/llms/list")).toBe(0)
      }).pipe(withStack()))
  }
})

describe("Llm aliases", () => {
  it.effect("config aliases resolve case-insensitively", () =>
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      expect(yield* llm.resolveModel("Fast")).toBe("echo")
      expect(yield* llm.resolveModel("TOOLS")).toBe("tool-user")
      const result = yield* llm.generate({ prompt: "hi", model: "fast" })
      expect(result.model).toBe("echo")
      expect((yield* Kernel).requests("/query")[0]?.body).toMatchObject({ query_data: { llms: [{ name: "echo" }] } })
    }).pipe(withStack({}, { aliases: { fast: "echo", Tools: "tool-user" } })))

  it.effect("OPENCLAW_MODEL_<ALIAS> resolves, and wins over the config entry of the same alias", () =>
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      const provider = ConfigProvider.fromMap(
        new Map([["OPENCLAW_MODEL_HAIKU", "tool-user"], ["OPENCLAW_MODEL_GPT_4O", "echo"]])
      )
      const [haiku, gpt, plain] = yield* Effect.all([
        llm.resolveModel("haiku"),
        llm.resolveModel("gpt-4o"),
        llm.resolveModel("fast")
      ]).pipe(Effect.withConfigProvider(provider))
      expect(haiku).toBe("tool-user")
      expect(gpt).toBe("echo")
      expect(plain).toBe("echo")
      // Without the variable, the config entry applies.
      expect(yield* llm.resolveModel("haiku").pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))).toBe("echo")
    }).pipe(withStack({}, { aliases: { haiku: "echo", fast: "echo" } })))

  it.effect("the process environment works too (the default ConfigProvider), and is listed", () =>
    Effect.gen(function*() {
      const llm = yield* Llm.Llm
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.env["OPENCLAW_MODEL_LLM_TEST_SONNET"] = "tool-user"
        }),
        () => Effect.sync(() => delete process.env["OPENCLAW_MODEL_LLM_TEST_SONNET"])
      )
      expect(yield* llm.resolveModel("llm-test-sonnet").pipe(Effect.withConfigProvider(ConfigProvider.fromEnv()))).toBe(
        "tool-user"
      )
      const error = yield* Effect.flip(llm.resolveModel("nope").pipe(Effect.withConfigProvider(ConfigProvider.fromEnv())))
      expect(error.message).toContain("llm_test_sonnet")
    }).pipe(Effect.scoped, withStack()))

  it.effect("an unknown alias fails as MODEL_UNAVAILABLE listing config and environment aliases", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(new Map([["OPENCLAW_MODEL_OPUS", "echo"]]))
      const error = yield* Effect.flip(Llm.generate({ prompt: "x", model: "sonnet" }).pipe(Effect.withConfigProvider(provider)))
      expect(error.code).toBe("MODEL_UNAVAILABLE")
      expect(error.message).toContain("Aliases: fast, opus")
      expect(error.message).toContain("Backend models: echo, tool-user")
    }).pipe(withStack({}, { aliases: { fast: "echo" } })))

  it.effect("an alias naming a model the kernel does not serve says which alias and which model", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Llm.generate({ prompt: "x", model: "old" }))
      expect(error.code).toBe("MODEL_UNAVAILABLE")
      expect(error.message).toContain("Alias 'old'")
      expect(error.message).toContain("'claude-2'")
      expect((yield* Kernel).count("/query")).toBe(0)
    }).pipe(withStack({}, { aliases: { old: "claude-2" } })))
})

describe("Llm stop sequences", () => {
  it.effect("a stop sequence split across streamed pieces ends the output before it and ends the call", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      // "alpha ST" | "OP beta": the match is cut in two.
      kernel.setStreamChunkChars([8, 100])
      const result = yield* Llm.generate({ prompt: "alpha STOP beta", model: "echo", stopSequences: ["STOP"] })
      expect(result.text).toBe("alpha ")
      expect(result.finishReason).toBe("stop_sequence")
      expect(result.usage.estimated).toBe(true)
      kernel.setStreamChunkChars([8, 100])
      const pieces = yield* collect(Llm.stream({ prompt: "alpha STOP beta", model: "echo", stopSequences: ["STOP"] }))
      expect(pieces.join("")).toBe("alpha ")
    }).pipe(withStack({}, { backend: "openai-compatible" })))

  it.effect("on the AIOS backend (one burst) too", () =>
    Effect.gen(function*() {
      const result = yield* Llm.generate({ prompt: "one\ntwo\nthree", model: "echo", stopSequences: ["\n"] })
      expect(result).toMatchObject({ text: "one", finishReason: "stop_sequence" })
    }).pipe(withStack()))

  const piece = fc.string({ unit: fc.constantFrom("a", "b", "c", "S", "T", "O", "P", "\n"), maxLength: 12 })
  it.effect.prop(
    "over HTTP, any split of the reply gives the whole-text answer",
    [fc.array(piece, { minLength: 1, maxLength: 5 }), fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 })],
    ([parts, cuts]) =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        kernel.reset()
        const reply = `${parts.join("")}x`
        const stops = ["STOP", "bca", "\n\n"]
        kernel.setStreamChunkChars(cuts)
        kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Reply", text: reply })
        const pieces = yield* collect(Llm.stream({ prompt: "ignored", model: "echo", stopSequences: stops }))
        const firstMatch = Math.min(...stops.map((s) => (reply.includes(s) ? reply.indexOf(s) : reply.length)))
        expect(pieces.join("")).toBe(reply.slice(0, firstMatch))
      }).pipe(withStack({}, { backend: "openai-compatible" })),
    { fastCheck: { numRuns: 25 } }
  )
})

describe("Llm limits", () => {
  it.live("N parallel calls never exceed the concurrency cap (counted by the kernel)", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const results = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => `call ${i}`),
        (prompt) => Llm.generate({ prompt, model: "echo" }),
        { concurrency: "unbounded" }
      )
      expect(results.map((r) => r.text)).toEqual(Array.from({ length: 10 }, (_, i) => `call ${i}`))
      expect(kernel.count("/query")).toBe(10)
      expect(kernel.maxConcurrentQueries()).toBe(3)
    }).pipe(withStack({ latencyMs: 60 }, { limits: { concurrency: 3 } })))

  it.live("per-model limits override the global ones; a failed call gives its permit back", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      kernel.script({ _tag: "Status", statusCode: 401 })
      const exits = yield* Effect.forEach(
        Array.from({ length: 5 }, (_, i) => `call ${i}`),
        (prompt) => Effect.exit(Llm.generate({ prompt, model: "echo" })),
        { concurrency: "unbounded" }
      )
      expect(exits.filter(Exit.isSuccess).length).toBe(4)
      expect(kernel.maxConcurrentQueries()).toBe(1)
    }).pipe(withStack({ latencyMs: 20 }, { limits: { concurrency: 8 }, models: { echo: { limits: { concurrency: 1 } } } })))

  it.effect("the rate limit (2 per second, token bucket) under TestClock: starts are spaced, counted by the kernel", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const llm = yield* Llm.Llm
      const finished = yield* Queue.unbounded<number>()
      for (let i = 0; i < 5; i++) {
        yield* Effect.fork(
          llm.generate({ prompt: `call ${i}`, model: "echo" }).pipe(
            Effect.zipRight(Clock.currentTimeMillis),
            Effect.flatMap((at) => Queue.offer(finished, at))
          )
        )
      }
      // Two tokens at once; real HTTP completes while the test clock stands still.
      expect([yield* Queue.take(finished), yield* Queue.take(finished)]).toEqual([0, 0])
      expect(kernel.count("/query")).toBe(2)
      expect(yield* Queue.size(finished)).toBe(0)
      for (const at of [500, 1000, 1500]) {
        yield* TestClock.adjust("500 millis")
        expect(yield* Queue.take(finished)).toBe(at)
        expect(kernel.count("/query")).toBe(at / 500 + 2)
      }
    }).pipe(withStack({}, { limits: { concurrency: 10, rate: { limit: 2, intervalMs: 1000 } } })))

  it.effect("rate limits are per model: another model's calls are not held back", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const llm = yield* Llm.Llm
      yield* llm.generate({ prompt: "one", model: "echo" })
      const held = yield* Effect.fork(llm.generate({ prompt: "two", model: "echo" }))
      const other = yield* llm.generate({ prompt: "three", model: "tool-user" })
      expect(other.text).toBe("You said: three")
      expect(kernel.count("/query")).toBe(2)
      expect(Option.isNone(yield* Fiber.poll(held))).toBe(true)
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(held)).text).toBe("two")
    }).pipe(withStack({}, { limits: { rate: { limit: 1, intervalMs: 1000 } } })))

  it.live("the limits live in SharedState: two Llm services over one state share the cap (as processes over Redis do)", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const other = yield* Llm.make
      const llm = yield* Llm.Llm
      const results = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) => (i % 2 === 0 ? llm : other).generate({ prompt: `call ${i}`, model: "echo" }),
        { concurrency: "unbounded" }
      )
      expect(results).toHaveLength(8)
      expect(kernel.count("/query")).toBe(8)
      // Each service alone allows 2 at once.
      expect(kernel.maxConcurrentQueries()).toBe(2)
    }).pipe(Effect.scoped, withStack({ latencyMs: 40 }, { limits: { concurrency: 2 } })))
})

describe("Llm cancellation (Effect)", () => {
  it.live("interrupting a call ends its kernel request", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      kernel.script({ _tag: "Hang" })
      const fiber = yield* Effect.fork(Llm.generate({ prompt: "x", model: "echo" }))
      expect(yield* eventually(() => kernel.openQueries() === 1)).toBe(true)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(yield* eventually(() => kernel.openQueries() === 0)).toBe(true)
    }).pipe(withStack()))
})

describe("Llm observability", () => {
  const recording = (spans: Array<Tracer.Span>) =>
    Effect.map(Effect.tracer, (base) =>
      Tracer.make({
        span: (...args) => {
          const span = base.span(...args)
          spans.push(span)
          return span
        },
        context: (f, fiber) => base.context(f, fiber)
      }))

  const counter = (metric: typeof Llm.callsTotal, labels: Record<string, string>) =>
    Effect.map(
      Metric.value(Metric.taggedWithLabels(metric, Object.entries(labels).map(([k, v]) => MetricLabel.make(k, v)))),
      (state) => state.count
    )

  it.live("a span per call with model, attempts, latency and outcome; metrics for calls, retries and errors", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const spans: Array<Tracer.Span> = []
      const tracer = yield* recording(spans)
      const okBefore = yield* counter(Llm.callsTotal, { model: "echo", kind: "generate", outcome: "ok" })
      const retriesBefore = yield* counter(Llm.retriesTotal, { model: "echo" })
      const authBefore = yield* counter(Llm.errorsTotal, { code: "AUTH_FAILED" })
      const latencyBefore = (yield* Metric.value(Metric.tagged(Llm.latencyMs, "model", "echo"))).count

      kernel.script({ _tag: "Status", statusCode: 429 })
      const result = yield* Llm.generate({ prompt: "x", model: "fast" }).pipe(Effect.withTracer(tracer))
      expect(result.attempts).toBe(2)
      kernel.script({ _tag: "Status", statusCode: 401 })
      yield* Effect.flip(collect(Llm.stream({ prompt: "y", model: "echo" })).pipe(Effect.withTracer(tracer)))

      const generate = spans.find((s) => s.name === "Llm.generate")
      expect(generate?.attributes.get("llm.kind")).toBe("generate")
      expect(generate?.attributes.get("llm.model.requested")).toBe("fast")
      expect(generate?.attributes.get("llm.model")).toBe("echo")
      expect(generate?.attributes.get("llm.attempts")).toBe(2)
      expect(generate?.attributes.get("llm.outcome")).toBe("ok")
      expect(generate?.attributes.get("llm.latency_ms")).toBe(result.latencyMs)
      expect(generate?.status._tag).toBe("Ended")
      // A stream is retried too while it has emitted nothing, and its span counts the attempts.
      kernel.script({ _tag: "Status", statusCode: 429 })
      const pieces = yield* collect(Llm.stream({ prompt: "z", model: "echo" })).pipe(Effect.withTracer(tracer))
      expect(pieces.join("")).toBe("z")

      const [failed, retried] = spans.filter((s) => s.name === "Llm.stream")
      expect(failed?.attributes.get("llm.outcome")).toBe("AUTH_FAILED")
      expect(failed?.attributes.get("llm.attempts")).toBe(1)
      expect(failed?.status._tag === "Ended" && Exit.isFailure(failed.status.exit)).toBe(true)
      expect(retried?.attributes.get("llm.outcome")).toBe("ok")
      expect(retried?.attributes.get("llm.attempts")).toBe(2)

      expect(yield* counter(Llm.callsTotal, { model: "echo", kind: "generate", outcome: "ok" })).toBe(okBefore + 1)
      expect(yield* counter(Llm.retriesTotal, { model: "echo" })).toBe(retriesBefore + 2)
      expect(yield* counter(Llm.errorsTotal, { code: "AUTH_FAILED" })).toBe(authBefore + 1)
      expect((yield* Metric.value(Metric.tagged(Llm.latencyMs, "model", "echo"))).count).toBe(latencyBefore + 3)
    }).pipe(withStack({}, { aliases: { fast: "echo" }, retry: { delayMs: 0 } })))
})
