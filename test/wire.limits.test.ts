/**
 * Size limits (issue 17): a body over `maxResponseBytes` is a typed error, found while it streams in (its reading
 * stops: the server sees the client go), never buffered whole; error bodies are read only in part; a "model not
 * found" message lists a few names and says how many more.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Backend from "../src/Backend.js"
import * as BackendError from "../src/BackendError.js"
import { ModelCatalog } from "../src/ModelCatalog.js"
import { ReferenceKernel } from "../src/testing/ReferenceKernel.js"
import type * as ReferenceKernelModule from "../src/testing/ReferenceKernel.js"
import { fails, streamOf, user } from "./OpenAiBackend.harness.js"
import { backendStack } from "./util.js"

const MB = 1024 * 1024
const cap = 16 * MB

const fresh = Effect.flatMap(ReferenceKernel, (k) => Effect.sync(() => k.reset()))

/** A `LargeBody` fault of `bytes`, and how many bytes the server had written when the client went away. */
const large = (bytes: number, declareLength = false) => {
  let sent = 0
  const fault: ReferenceKernelModule.Fault = {
    _tag: "LargeBody",
    bytes,
    declareLength,
    onSent: (n) => {
      sent = n
    }
  }
  // The server stops writing once the client closed the connection; poll (bounded) until it has settled.
  const settled = Effect.sync(() => sent).pipe(
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), while: (n) => n < bytes, times: 15 }),
    Effect.zipRight(Effect.sync(() => sent))
  )
  return { fault, settled }
}

const tooLarge = (endpoint: string, bytes = cap) => ({
  _tag: "MalformedResponse",
  endpoint,
  issue: `the body is larger than ${bytes} bytes (maxResponseBytes)`
})

layer(backendStack({}, { requestTimeoutMs: 30_000 }), { excludeTestServices: true })("AIOS", (it) => {
  it.effect("a 100 MB /query body is a typed error while it streams in: the read stops near the cap", () =>
    Effect.gen(function*() {
      yield* fresh
      const { fault, settled } = large(100 * MB)
      ;(yield* ReferenceKernel).script(fault)
      const error = yield* fails(Backend.call({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject(tooLarge("/query"))
      expect(error.message).toContain("sent a malformed response to /query for model 'echo': the body is larger than 16777216 bytes")
      expect(BackendError.isRetryable(error)).toBe(false)
      // What the server wrote: the cap plus what the sockets buffered, nowhere near the 100 MB.
      const sent = yield* settled
      expect(sent).toBeGreaterThan(cap)
      expect(sent).toBeLessThan(40 * MB)
    }))

  it.effect("a declared content-length over the cap fails before the body is read", () =>
    Effect.gen(function*() {
      yield* fresh
      const { fault, settled } = large(100 * MB, true)
      ;(yield* ReferenceKernel).script(fault)
      expect(yield* fails(Backend.call({ model: "echo", messages: user("x") }))).toMatchObject(tooLarge("/query"))
      expect(yield* settled).toBeLessThan(cap)
    }))

  it.effect("a large reply under the cap is read whole", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "LargeBody", bytes: 3 * MB })
      const result = yield* Backend.call({ model: "echo", messages: user("x") })
      expect(result.text.length).toBe(3 * MB - "{\"response\":{\"response_message\":\"\"}}".length)
      expect(/^a+$/.test(result.text)).toBe(true)
    }))

  it.effect("/core/llms/list and /status bodies are capped too", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.scriptEndpoint("/core/llms/list", large(50 * MB).fault)
      kernel.scriptEndpoint("/status", large(50 * MB).fault)
      const backend = yield* Backend.Backend
      expect(yield* Effect.flip(backend.listModels)).toMatchObject(tooLarge("/core/llms/list"))
      expect(yield* Effect.flip(backend.status)).toMatchObject(tooLarge("/status"))
    }))

  it.effect("an error body is read only in part: a 20 MB HTTP 500 is a refusal quoting its start", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Http", status: 500, body: `boom ${"z".repeat(20 * MB)}` })
      const error = yield* fails(Backend.call({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 500, kind: "server" })
      if (error._tag === "BackendRejected") {
        expect(error.reason.startsWith("boom zzz")).toBe(true)
        expect(error.reason.length).toBeLessThanOrEqual(301)
      }
    }))
})

layer(backendStack({}, { requestTimeoutMs: 30_000, maxResponseBytes: 4_096 }), { excludeTestServices: true })(
  "AIOS with maxResponseBytes 4096",
  (it) => {
    it.effect("the cap is the configured one: 4 KiB passes, one byte more does not", () =>
      Effect.gen(function*() {
        yield* fresh
        const kernel = yield* ReferenceKernel
        kernel.script({ _tag: "LargeBody", bytes: 4_096 }, { _tag: "LargeBody", bytes: 4_097 }, { _tag: "LargeBody", bytes: 4_097, declareLength: true })
        expect((yield* Backend.call({ model: "echo", messages: user("x") })).text.length).toBe(4_096 - 36)
        expect(yield* fails(Backend.call({ model: "echo", messages: user("x") }))).toMatchObject(tooLarge("/query", 4_096))
        expect(yield* fails(Backend.call({ model: "echo", messages: user("x") }))).toMatchObject(tooLarge("/query", 4_096))
      }))
  }
)

layer(backendStack({}, { requestTimeoutMs: 30_000, backend: "openai-compatible" }), { excludeTestServices: true })("/v1", (it) => {
  it.effect("a 100 MB event stream fails at the cap and its read stops", () =>
    Effect.gen(function*() {
      yield* fresh
      const { fault, settled } = large(100 * MB)
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", fault)
      const error = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject(tooLarge("/chat/completions"))
      expect(yield* settled).toBeLessThan(40 * MB)
    }))

  it.effect("a 100 MB /models list fails at the cap", () =>
    Effect.gen(function*() {
      yield* fresh
      const models = large(100 * MB)
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/models", models.fault)
      expect(yield* Effect.flip((yield* Backend.Backend).listModels)).toMatchObject(tooLarge("/models"))
      expect(yield* models.settled).toBeLessThan(40 * MB)
    }))
})

layer(backendStack({ streaming: false }, { requestTimeoutMs: 30_000, backend: "openai-compatible" }), { excludeTestServices: true })(
  "/v1 without streaming",
  (it) => {
    it.effect("a 100 MB JSON completion fails at the cap", () =>
      Effect.gen(function*() {
        yield* fresh
        const { fault, settled } = large(100 * MB)
        ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", fault)
        expect(yield* fails(streamOf({ model: "echo", messages: user("x") }))).toMatchObject(tooLarge("/chat/completions"))
        expect(yield* settled).toBeLessThan(40 * MB)
      }))
  }
)

describe("model-not-found messages", () => {
  const many = Array.from({ length: 200_000 }, (_, i) => ({ name: `model-${String(i).padStart(6, "0")}` }))

  it.effect("200,000 models: the message names five and says how many more", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip((yield* ModelCatalog).require("gpt-9"))
      expect(error).toMatchObject({ _tag: "ModelUnknown", model: "gpt-9" })
      expect(error._tag === "ModelUnknown" && error.available.length).toBe(200_000)
      expect(error.message).toContain(
        "Available: model-000000, model-000001, model-000002, model-000003, model-000004 and 199,995 more. Pick a model the server lists."
      )
      expect(error.message.length).toBeLessThan(300)
      expect(BackendError.kindFromText(error.message)).toBe("model_not_found")
      // The cached list answers by name without a scan of it.
      expect(yield* (yield* ModelCatalog).require("model-199999")).toEqual({ name: "model-199999", backend: "reference" })
    }).pipe(Effect.provide(backendStack({ models: many }, { requestTimeoutMs: 30_000 }))), { timeout: 60_000 })

  it("a few names are listed in full; a long name is cut", () => {
    const url = "http://127.0.0.1:8000"
    expect(new BackendError.ModelUnknown({ url, model: "x", available: ["a", "b"] }).message).toContain("Available: a, b. Pick")
    expect(new BackendError.ModelUnknown({ url, model: "x", available: [] }).message).toContain("Available: none. Pick")
    const long = new BackendError.ModelUnknown({ url, model: "m".repeat(10_000), available: ["n".repeat(10_000)] }).message
    expect(long.length).toBeLessThan(700)
  })
})
