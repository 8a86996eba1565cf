import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as ApiKeys from "../src/ApiKeys.js"
import * as Backend from "../src/Backend.js"
import * as OpenAiBackend from "../src/OpenAiBackend.js"
import { ReferenceKernel } from "../src/testing/ReferenceKernel.js"
import * as ReferenceKernelModule from "../src/testing/ReferenceKernel.js"
import { fails, partial, streamOf, textOf, user, v1 } from "./OpenAiBackend.harness.js"

const KEY_A = "sk-test-AAAA-0001"
const KEY_B = "sk-test-BBBB-0002"

const call = (content: string) => Backend.call({ model: "echo", messages: user(content) })

/** Polls, bounded, until the server has no chat request open: an aborted request ends on its side too. */
const noneOpen = Effect.flatMap(ReferenceKernel, (kernel) =>
  Effect.sync(() => kernel.openQueries()).pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n === 0, times: 200 }),
    Effect.zipRight(Effect.sync(() => kernel.openQueries()))
  ))

describe("API keys over HTTP", () => {
  const twoKeys = v1({ apiKeys: [KEY_A, KEY_B] }, { apiKeys: [KEY_A, KEY_B] })

  it.effect("two keys, the first rate-limited → the second is used at once; counted by the server", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 429, headers: { "retry-after": "10" } })
      const first = yield* call("one")
      expect(first.text).toBe("one")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      // A cools down for its Retry-After: the next call goes to B straight away.
      yield* call("two")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 2])
      // Ten seconds later A is back in the rotation.
      yield* TestClock.adjust("10 seconds")
      yield* call("three")
      yield* call("four")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([2, 3])
      expect(kernel.countByKey("")).toBe(0)
    }).pipe(Effect.provide(twoKeys)))

  it.effect("round-robin: calls alternate between the keys", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const backend = yield* Backend.Backend
      for (let i = 0; i < 6; i++) yield* backend.listModels
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([3, 3])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("a key the server refuses (401) cools down for long; the good key carries on", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      yield* call("a")
      expect([kernel.countByKey("sk-revoked"), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      yield* TestClock.adjust("30 minutes")
      yield* call("b")
      yield* call("c")
      expect([kernel.countByKey("sk-revoked"), kernel.countByKey(KEY_B)]).toEqual([1, 3])
    }).pipe(Effect.provide(v1({ apiKeys: [KEY_B] }, { apiKeys: ["sk-revoked", KEY_B] }))))

  it.effect("every key rate-limited → the call fails with the 429 after trying each once", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 429, headers: { "retry-after": "5" } })
      kernel.scriptKey(KEY_B, { _tag: "Status", statusCode: 429, headers: { "retry-after": "8" } })
      const error = yield* fails(call("x"))
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 429, kind: "rate_limit", retryAfterMs: 8_000 })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      // Both cool down: the one whose cooldown ends first (A) is asked rather than failing unasked.
      const next = yield* call("y")
      expect(next.text).toBe("y")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([2, 1])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("a 5xx is not the key's fault: no rotation, no cooldown", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 500 })
      const error = yield* fails(call("x"))
      expect(error).toMatchObject({ status: 500 })
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 0])
      yield* call("y")
      yield* call("z")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([2, 1])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("a 429 SSE error mid-stream cools the key down too", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const backend = yield* Backend.Backend
      kernel.scriptKey(KEY_A, { _tag: "StreamError", afterChunks: 1, statusCode: 429 })
      const { error } = yield* partial(backend.stream({ model: "echo", messages: user("abcdefgh") }))
      expect(error).toMatchObject({ _tag: "BackendRejected", kind: "rate_limit" })
      yield* call("y")
      yield* call("z")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 2])
    }).pipe(Effect.provide(twoKeys)))

  it.effect("keys never appear in errors, their JSON, or logs — even when the server echoes one", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 401, error: `Incorrect API key provided: ${KEY_A}.` })
      kernel.scriptKey(KEY_B, { _tag: "Status", statusCode: 403, error: `Key ${KEY_B} may not use this model` })
      const rejected = yield* fails(call("x"))
      expect(rejected).toMatchObject({ _tag: "BackendRejected", status: 403 })
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Reset" })
      const reset = yield* fails(call("x"))
      expect(reset._tag).toBe("BackendUnreachable")
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
      if (rejected._tag === "BackendRejected") expect(rejected.reason).toContain("[redacted]")
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
      kernel.scriptKey(KEY_A, { _tag: "Status", statusCode: 429, error: `slow down ${KEY_A}` })
      const chunks = yield* streamOf({ model: "echo", messages: user("fetch streams too") })
      expect(chunks.filter((c) => c._tag === "TextDelta").length).toBe(Math.ceil("fetch streams too".length / 4))
      expect(textOf(chunks)).toBe("fetch streams too")
      expect([kernel.countByKey(KEY_A), kernel.countByKey(KEY_B)]).toEqual([1, 1])
      kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Reset" })
      const reset = yield* fails(call("x"))
      expect(reset._tag).toBe("BackendUnreachable")
      expect(JSON.stringify(reset)).not.toContain(KEY_B)
    }).pipe(Effect.provide(v1({ apiKeys: [KEY_A, KEY_B] }, { apiKeys: [KEY_A, KEY_B] }, FetchHttpClient.layer))))
})

describe("layers", () => {
  it.effect("make takes keys from any ApiKeys service", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const backend = yield* OpenAiBackend.make.pipe(Effect.provide(ApiKeys.layerWith([Redacted.make(KEY_B)])))
      yield* backend.listModels
      expect(kernel.countByKey(KEY_B)).toBe(1)
    }).pipe(Effect.provide(v1({ apiKeys: [KEY_B] }))))

  it.live("layerConfig reads the endpoint and its keys from the environment", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const env = ConfigProvider.fromMap(new Map([["AIOS_URL", `${kernel.url}/v1`], ["AIOS_API_KEYS", `${KEY_A}, ${KEY_B}`]]))
      const text = yield* Effect.provide(
        Effect.map(call("from env"), (r) => r.text),
        OpenAiBackend.layerConfig({ backend: "openai-compatible" }).pipe(
          Layer.provide(Layer.setConfigProvider(env)),
          Layer.provide(NodeHttpClient.layerUndici)
        )
      )
      expect(text).toBe("from env")
      expect(kernel.countByKey(KEY_A)).toBe(1)
    }).pipe(Effect.provide(ReferenceKernelModule.layer({ apiKeys: [KEY_A, KEY_B] })), Effect.orDie))

  it.effect("the reference counts a stream in flight until it ends, once per request", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const backend = yield* Backend.Backend
      yield* call("one at a time")
      expect(kernel.maxConcurrentQueries()).toBe(1)
      // Three streams that stall after their first piece: all three are open on the server at once.
      kernel.scriptEndpoint("/v1/chat/completions", ...Array.from({ length: 3 }, () => ({ _tag: "Stall", afterChunks: 1 } as const)))
      const heads = yield* Effect.all(
        Array.from({ length: 3 }, () => Stream.runHead(backend.stream({ model: "echo", messages: user("abcdef") }))),
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
        const backend = yield* Backend.Backend
        const first = yield* Stream.runHead(backend.stream({ model: "echo", messages: user("abcdef") }))
        expect(first._tag).toBe("Some")
        expect(yield* noneOpen).toBe(0)
      }).pipe(Effect.provide(v1())))

    it.live("the idle timeout aborts the request too", () =>
      Effect.gen(function*() {
        const kernel = yield* ReferenceKernel
        kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 1 })
        const backend = yield* Backend.Backend
        const { emitted, error } = yield* partial(backend.stream({ model: "echo", messages: user("abcdef") }))
        expect(emitted.length).toBe(1)
        expect(error).toMatchObject({ _tag: "BackendTimeout", timeoutMs: 100 })
        expect(yield* noneOpen).toBe(0)
      }).pipe(Effect.provide(v1({}, { requestTimeoutMs: 100 }))))
  })
})
