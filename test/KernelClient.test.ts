import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import * as AiosConfig from "../src/AiosConfig.js"
import { KernelClient } from "../src/KernelClient.js"
import * as KernelClientModule from "../src/KernelClient.js"
import type * as KernelError from "../src/KernelError.js"
import { ReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { clientStack, deadUrl, nativeReadTool } from "./util.js"

const ask = (model = "echo", content = "hello") =>
  Effect.flatMap(KernelClient, (k) => k.query({ model, messages: [{ role: "user", content }] }))

const fails = <A>(effect: Effect.Effect<A, KernelError.KernelError, KernelClient>) =>
  Effect.flatMap(Effect.either(effect), (e) =>
    Either.isLeft(e) ? Effect.succeed(e.left) : Effect.dieMessage(`expected a failure, got ${JSON.stringify(e.right)}`))

const fresh = Effect.flatMap(ReferenceKernel, (k) => Effect.sync(() => k.reset()))

layer(clientStack({}, { requestTimeoutMs: 5_000 }))("KernelClient against the reference kernel", (it) => {
  it.effect("status and listModels", () =>
    Effect.gen(function*() {
      const client = yield* KernelClient
      const status = yield* client.status
      expect(status).toEqual({ ok: true, message: "All core components are active.", inactiveComponents: [] })
      const models = yield* client.listModels
      expect(models).toEqual([
        { name: "echo", backend: "reference" },
        { name: "tool-user", backend: "reference" }
      ])
    }))

  it.effect("a successful query returns the model's text and sends the AIOS envelope", () =>
    Effect.gen(function*() {
      yield* fresh
      const result = yield* ask("echo", "ping")
      expect(result.text).toBe("ping")
      expect(result.toolCalls).toEqual([])
      expect(result.usage).toBeUndefined()
      const [sent] = (yield* ReferenceKernel).requests("/query")
      expect(sent?.body).toMatchObject({
        agent_name: "openclaw",
        query_type: "llm",
        query_data: { llms: [{ name: "echo" }], action_type: "chat", message_return_type: "text", tools: [] }
      })
    }))

  // Every in-body failure of the reference's table: HTTP 200, status_code inside.
  const inBody: ReadonlyArray<[number, KernelError.RejectionKind, boolean]> = [
    [429, "rate_limited", true],
    [401, "auth_failed", false],
    [400, "bad_request", false],
    [404, "model_not_found", false],
    [408, "timeout", true],
    [500, "server_error", true],
    [502, "bad_gateway", true],
    [503, "unavailable", true]
  ]
  for (const [statusCode, kind, retryable] of inBody) {
    it.effect(`in-body status_code ${statusCode} → KernelRejected(${kind}), retryable=${retryable}`, () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).script({ _tag: "Status", statusCode })
        const error = yield* fails(ask("echo"))
        expect(error._tag).toBe("KernelRejected")
        if (error._tag !== "KernelRejected") return
        expect(error.statusCode).toBe(statusCode)
        expect(error.kind).toBe(kind)
        expect(error.retryable).toBe(retryable)
        expect(error.model).toBe("echo")
        expect(error.message).toContain(`reported ${statusCode} for model 'echo'`)
        expect(error.message).toContain((yield* KernelClient).url)
      }))
  }

  it.effect("a model the kernel does not have → 500 'not all available' → model_not_configured, not retryable", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(ask("no-such-model"))
      expect(error).toMatchObject({ _tag: "KernelRejected", statusCode: 500, kind: "model_not_configured", model: "no-such-model" })
      expect(error.retryable).toBe(false)
      expect(error.message).toContain("not configured in the kernel")
    }))

  it.effect("empty messages → in-body 400", () =>
    Effect.gen(function*() {
      yield* fresh
      const client = yield* KernelClient
      const error = yield* fails(client.query({ model: "echo", messages: [] }))
      expect(error).toMatchObject({ _tag: "KernelRejected", statusCode: 400, kind: "bad_request" })
    }))

  it.effect("a nameless model is refused before it is sent (it would hang the real kernel)", () =>
    Effect.gen(function*() {
      yield* fresh
      const error = yield* fails(ask("  "))
      expect(error).toMatchObject({ _tag: "KernelHttpError", status: 400 })
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
          detail: [{ type: "literal_error", loc: ["body", "query_data", "action_type"], msg: "Input should be 'chat'" }]
        })
      })
      const error = yield* fails(ask())
      expect(error).toMatchObject({
        _tag: "KernelHttpError",
        status: 422,
        detail: ["body.query_data.action_type: Input should be 'chat'"]
      })
      expect(error.retryable).toBe(false)
    }))

  it.effect("HTTP 500 with a JSON detail and with plain text", () =>
    Effect.gen(function*() {
      yield* fresh
      const kernel = yield* ReferenceKernel
      kernel.script({ _tag: "Http", status: 500, body: "{\"detail\":\"scheduler crashed\"}" }, { _tag: "Http", status: 500 })
      const json = yield* fails(ask())
      expect(json).toMatchObject({ _tag: "KernelHttpError", status: 500, detail: ["scheduler crashed"] })
      const text = yield* fails(ask())
      expect(text).toMatchObject({ _tag: "KernelHttpError", status: 500, detail: ["Internal Server Error"] })
      expect(text.retryable).toBe(true)
      expect(text.message).toContain("failed internally (HTTP 500)")
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
      expect(notJson).toMatchObject({ _tag: "KernelMalformedResponse", endpoint: "/query", issue: "the body is not JSON" })
      const empty = yield* fails(ask())
      expect(empty).toMatchObject({ _tag: "KernelMalformedResponse", issue: "the body is empty" })
      const shape = yield* fails(ask())
      expect(shape).toMatchObject({ _tag: "KernelMalformedResponse", issue: "response has the wrong shape" })
      expect(shape.retryable).toBe(false)
    }))

  it.effect("a connection reset → KernelUnreachable", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Reset" })
      const error = yield* fails(ask())
      expect(error._tag).toBe("KernelUnreachable")
      expect(error.retryable).toBe(true)
    }))

  it.effect("a hanging kernel → KernelTimeout after requestTimeoutMs (TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Hang" })
      const fiber = yield* Effect.fork(fails(ask()))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "KernelTimeout", timeoutMs: 5_000, model: "echo" })
      expect(error.message).toContain("did not answer for model 'echo' within 5000 ms")
    }))

  it.effect("a slow first byte inside the timeout still succeeds", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).script({ _tag: "Delay", ms: 30 })
      const result = yield* ask("echo", "slow")
      expect(result.text).toBe("slow")
    }))

  it.effect("native tool calls survive only as content null + tool_calls; text replies are lost with tools", () =>
    Effect.gen(function*() {
      yield* fresh
      const client = yield* KernelClient
      const tools = [nativeReadTool]
      const call = yield* client.query({ model: "tool-user", messages: [{ role: "user", content: "read notes.txt" }], tools })
      expect(call.toolCalls).toEqual([{ id: expect.stringMatching(/^call\d+$/), name: "read", arguments: { path: "notes.txt" } }])
      const lost = yield* client.query({ model: "echo", messages: [{ role: "user", content: "hi" }], tools })
      expect(lost.text).toBe("")
    }))
})

describe("KernelClient transport", () => {
  it.live("an unreachable kernel → KernelUnreachable naming the URL", () =>
    Effect.gen(function*() {
      const url = yield* Effect.promise(deadUrl)
      const error = yield* fails(ask()).pipe(
        Effect.provide(KernelClientModule.layer),
        Effect.provide(Layer.merge(AiosConfig.layer({ baseUrl: url }), NodeHttpClient.layerUndici))
      )
      expect(error).toMatchObject({ _tag: "KernelUnreachable", url, detail: "ECONNREFUSED" })
      expect(error.message).toContain(`Cannot reach the AIOS kernel at ${url}`)
    }))

  layer(clientStack({}, { requestTimeoutMs: 100 }), { excludeTestServices: true })("interruption", (it) => {
    it.effect("a timeout aborts the HTTP request: the kernel sees the connection close", () =>
      Effect.gen(function*() {
        const kernel = yield* ReferenceKernel
        kernel.script({ _tag: "Hang" })
        const error = yield* fails(ask())
        expect(error._tag).toBe("KernelTimeout")
        // The aborted request ends on the server side too; poll, bounded, for it to be gone.
        const open = yield* Effect.sync(() => kernel.openQueries()).pipe(
          Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n === 0, times: 200 }),
          Effect.zipRight(Effect.sync(() => kernel.openQueries()))
        )
        expect(open).toBe(0)
      }))
  })
})
