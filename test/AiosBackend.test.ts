import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import * as AiosBackend from "../src/AiosBackend.js"
import * as AiosConfig from "../src/AiosConfig.js"
import * as Backend from "../src/Backend.js"
import * as BackendError from "../src/BackendError.js"
import * as ReferenceKernelModule from "../src/testing/ReferenceKernel.js"
import { ReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { backendStack, deadUrl, nativeReadTool } from "./util.js"

const ask = (model = "echo", content = "hello") => Backend.call({ model, messages: [{ role: "user", content }] })

const fails = <A, R>(effect: Effect.Effect<A, BackendError.BackendError, R>) =>
  Effect.flatMap(Effect.either(effect), (e) =>
    Either.isLeft(e) ? Effect.succeed(e.left) : Effect.dieMessage(`expected a failure, got ${JSON.stringify(e.right)}`))

const fresh = Effect.flatMap(ReferenceKernel, (k) => Effect.sync(() => k.reset()))

/** Polls, bounded, until the kernel has no `/query` open: an aborted request ends on the server side too. */
const noneOpen = Effect.flatMap(ReferenceKernel, (kernel) =>
  Effect.sync(() => kernel.openQueries()).pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n === 0, times: 200 }),
    Effect.zipRight(Effect.sync(() => kernel.openQueries()))
  ))

layer(backendStack({}, { requestTimeoutMs: 5_000 }))("AiosBackend against the reference kernel", (it) => {
  it.effect("status, listModels and capabilities", () =>
    Effect.gen(function*() {
      const backend = yield* Backend.Backend
      expect(backend.capabilities).toEqual({ streams: false, protocol: "aios", callEndpoint: "/query" })
      const status = yield* backend.status
      expect(status).toEqual({ ok: true, message: "All core components are active.", inactiveComponents: [] })
      const models = yield* backend.listModels
      expect(models).toEqual([
        { name: "echo", backend: "reference" },
        { name: "tool-user", backend: "reference" }
      ])
    }))

  it.effect("a successful call returns the model's text and sends the AIOS envelope", () =>
    Effect.gen(function*() {
      yield* fresh
      const result = yield* ask("echo", "ping")
      expect(result).toEqual({ model: "echo", text: "ping", toolCalls: [], usage: undefined, finishReason: undefined })
      const [sent] = (yield* ReferenceKernel).requests("/query")
      expect(sent?.body).toMatchObject({
        agent_name: "openclaw",
        query_type: "llm",
        query_data: { llms: [{ name: "echo" }], action_type: "chat", message_return_type: "text", tools: [] }
      })
    }))

  it.effect("stream gives the one reply as chunks: its text, then Finish (AIOS says no reason, no usage)", () =>
    Effect.gen(function*() {
      yield* fresh
      const backend = yield* Backend.Backend
      const chunks = yield* Stream.runCollect(backend.stream({ model: "echo", messages: [{ role: "user", content: "one piece" }] }))
      expect(Chunk.toReadonlyArray(chunks)).toEqual([
        { _tag: "TextDelta", text: "one piece" },
        { _tag: "Finish", reason: undefined, usage: undefined }
      ])
    }))

  // Every in-body failure of the reference's table: HTTP 200, status_code inside.
  const inBody: ReadonlyArray<[number, BackendError.ErrorKind, boolean]> = [
    [429, "rate_limit", true],
    [401, "auth", false],
    [400, "bad_request", false],
    [404, "model_not_found", false],
    [408, "timeout", true],
    [500, "server", true],
    [502, "server", true],
    [503, "overloaded", true]
  ]
  for (const [status, kind, retryable] of inBody) {
    it.effect(`in-body status_code ${status} → BackendRejected(${kind}), retryable=${retryable}`, () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).script({ _tag: "Status", statusCode: status })
        const error = yield* fails(ask("echo"))
        expect(error).toMatchObject({ _tag: "BackendRejected", status, kind, inBody: true, model: "echo" })
        expect(BackendError.isRetryable(error)).toBe(retryable)
        expect(error.message).toContain(`reported ${status} for model 'echo'`)
        expect(error.message).toContain((yield* Backend.Backend).url)
      }))
  }

  it.effect("a model the kernel does not have → 500 'not all available' → model_not_found, not retryable", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(ask("no-such-model"))
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 500, kind: "model_not_found", model: "no-such-model" })
      expect(BackendError.isRetryable(error)).toBe(false)
      expect(error.message).toContain("Pick a model the server lists")
    }))

  it.effect("empty messages → in-body 400", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(Backend.call({ model: "echo", messages: [] }))
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 400, kind: "bad_request", inBody: true })
    }))

  it.effect("a nameless model is refused before it is sent (it would hang the real kernel)", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(ask("  "))
      expect(error).toMatchObject({
        _tag: "BackendRejected",
        status: 400,
        inBody: false,
        kind: "bad_request",
        reason: "request not sent: the model name is empty",
        errorType: "invalid_request"
      })
      expect(error.message).toContain("request not sent")
      expect((yield* ReferenceKernel).count("/query")).toBe(0)
    }))

  it.effect("HTTP 422 carries FastAPI's detail list", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({
        _tag: "Http",
        status: 422,
        body: JSON.stringify({
          detail: [
            { type: "literal_error", loc: ["body", "query_data", "action_type"], msg: "Input should be 'chat'" },
            { type: "missing", loc: ["body", "agent_name"], msg: "Field required" }
          ]
        })
      })
      const error = yield* fails(ask())
      expect(error).toMatchObject({
        _tag: "BackendRejected",
        status: 422,
        inBody: false,
        kind: "bad_request",
        reason: "body.query_data.action_type: Input should be 'chat'; body.agent_name: Field required"
      })
      expect(BackendError.isRetryable(error)).toBe(false)
      expect(error.message).toContain("rejected the request as malformed (HTTP 422)")
    }))

  it.effect("HTTP 500 with a JSON detail and with plain text", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.script({ _tag: "Http", status: 500, body: "{\"detail\":\"scheduler crashed\"}" }, { _tag: "Http", status: 500 })
      const json = yield* fails(ask())
      expect(json).toMatchObject({ _tag: "BackendRejected", status: 500, inBody: false, reason: "scheduler crashed" })
      const text = yield* fails(ask())
      expect(text).toMatchObject({ _tag: "BackendRejected", status: 500, kind: "server", reason: "Internal Server Error" })
      expect(BackendError.isRetryable(text)).toBe(true)
      expect(text.message).toContain("failed internally (HTTP 500)")
    }))

  it.effect("an HTTP refusal carries the wait its Retry-After asks for", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Http", status: 503, body: "busy", headers: { "retry-after": "7" } })
      const error = yield* fails(ask())
      expect(error).toMatchObject({ _tag: "BackendRejected", status: 503, kind: "overloaded", retryAfterMs: 7_000 })
    }))

  it.effect("malformed bodies: not JSON, empty, wrong shape", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.script(
        { _tag: "Malformed" },
        { _tag: "Malformed", body: "" },
        { _tag: "Malformed", body: "{\"response\": \"not an object\"}" }
      )
      const notJson = yield* fails(ask())
      expect(notJson).toMatchObject({ _tag: "MalformedResponse", endpoint: "/query", issue: "the body is not JSON" })
      const empty = yield* fails(ask())
      expect(empty).toMatchObject({ _tag: "MalformedResponse", issue: "the body is empty" })
      const shape = yield* fails(ask())
      expect(shape).toMatchObject({ _tag: "MalformedResponse", issue: "response has the wrong shape" })
      expect(BackendError.isRetryable(shape)).toBe(false)
    }))

  it.effect("a connection reset → BackendUnreachable", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Reset" })
      const error = yield* fails(ask())
      expect(error._tag).toBe("BackendUnreachable")
      expect(BackendError.isRetryable(error)).toBe(true)
    }))

  it.effect("a hanging kernel → BackendTimeout after requestTimeoutMs (TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Hang" })
      const fiber = yield* Effect.fork(fails(ask()))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "BackendTimeout", timeoutMs: 5_000, model: "echo" })
      expect(error.message).toContain("did not answer for model 'echo' within 5000 ms")
      // The timeout aborted the request: the kernel sees it end.
      expect(yield* TestServices.provideLive(noneOpen)).toBe(0)
    }))

  it.effect("a request's own timeoutMs overrides requestTimeoutMs (TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Hang" })
      const fiber = yield* Effect.fork(fails(Backend.call({ model: "echo", messages: [{ role: "user", content: "x" }], timeoutMs: 250 })))
      yield* TestClock.adjust("250 millis")
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "BackendTimeout", timeoutMs: 250 })
    }))

  it.effect("a slow first byte inside the timeout still succeeds", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Delay", ms: 30 })
      const result = yield* ask("echo", "slow")
      expect(result.text).toBe("slow")
    }))

  it.effect("native tools go out in the OpenAI wire shape; calls survive only as content null + tool_calls", () =>
    Effect.gen(function*() {
      yield* fresh
      const tools = [nativeReadTool, { name: "note", description: "Takes a note" }]
      const call = yield* Backend.call({ model: "tool-user", messages: [{ role: "user", content: "read notes.txt" }], tools })
      expect(call.toolCalls).toEqual([{ id: expect.stringMatching(/^call\d+$/), name: "read", arguments: { path: "notes.txt" } }])
      expect((yield* ReferenceKernel).requests("/query")[0]?.body).toMatchObject({
        query_data: {
          tools: [
            { type: "function", function: { name: "read", parameters: nativeReadTool.parameters } },
            { type: "function", function: { name: "note", description: "Takes a note" } }
          ]
        }
      })
      // The real kernel loses text replies when tools are sent.
      const lost = yield* Backend.call({ model: "echo", messages: [{ role: "user", content: "hi" }], tools })
      expect(lost.text).toBe("")
    }))

  it.effect("tool names come back with `/` for the wire's `__`; string parameters are read as JSON or as input", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.script({
        _tag: "Http",
        status: 200,
        body: JSON.stringify({
          response: {
            response_message: null,
            tool_calls: [
              { name: "fs__read", parameters: { path: "a" }, id: "c1" },
              { name: "run", parameters: "{\"cmd\":\"ls\"}" },
              { name: "say", parameters: "plain words" }
            ],
            error: null,
            status_code: 200
          }
        })
      })
      const result = yield* ask("tool-user")
      expect(result.toolCalls).toEqual([
        { id: "c1", name: "fs/read", arguments: { path: "a" } },
        { id: undefined, name: "run", arguments: { cmd: "ls" } },
        { id: undefined, name: "say", arguments: { input: "plain words" } }
      ])
    }))
})

describe("AiosBackend transport", () => {
  it.live("an unreachable kernel → BackendUnreachable naming the URL", () =>
    Effect.gen(function*() {
      const url = yield* Effect.promise(deadUrl)
      const error = yield* fails(ask()).pipe(
        Effect.provide(AiosBackend.layer),
        Effect.provide(Layer.merge(AiosConfig.layer({ baseUrl: url }), NodeHttpClient.layerUndici))
      )
      expect(error).toMatchObject({ _tag: "BackendUnreachable", url, detail: "ECONNREFUSED" })
      expect(error.message).toContain(`Cannot reach the AIOS kernel at ${url}`)
    }))

  it.live("layerConfig reads the kernel's address from the environment", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel
      const url = yield* Effect.provide(
        Effect.gen(function*() {
          const backend = yield* Backend.Backend
          yield* Stream.runDrain(backend.stream({ model: "echo", messages: [{ role: "user", content: "env" }] }))
          return backend.url
        }),
        AiosBackend.layerConfig({ agentName: "from-options" }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["AIOS_URL", `${kernel.url}/`]])))),
          Layer.provide(NodeHttpClient.layerUndici)
        )
      )
      expect(url).toBe(kernel.url)
      expect(kernel.requests("/query")[0]?.body).toMatchObject({ agent_name: "from-options" })
    }).pipe(Effect.provide(ReferenceKernelModule.layer()), Effect.orDie))

  layer(backendStack({}, { requestTimeoutMs: 100 }), { excludeTestServices: true })("interruption", (it) => {
    it.effect("a timeout aborts the HTTP request: the kernel sees the connection close", () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).script({ _tag: "Hang" })
        const error = yield* fails(ask())
        expect(error._tag).toBe("BackendTimeout")
        expect(yield* noneOpen).toBe(0)
      }))

    it.effect("interrupting a call aborts its HTTP request", () =>
      Effect.gen(function*() {
        yield* fresh
        const kernel = yield* ReferenceKernel
        kernel.script({ _tag: "Hang" })
        const fiber = yield* Effect.fork(Backend.call({ model: "echo", messages: [{ role: "user", content: "x" }], timeoutMs: 60_000 }))
        // Wait (bounded) until the kernel holds the request, then walk away from it.
        yield* Effect.sync(() => kernel.openQueries()).pipe(
          Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (n) => n === 1, times: 400 })
        )
        yield* Fiber.interrupt(fiber)
        expect(yield* noneOpen).toBe(0)
      }))
  })
})
