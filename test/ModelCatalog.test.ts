import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as TestClock from "effect/TestClock"
import { AiosConfig } from "../src/AiosConfig.js"
import { Backend } from "../src/Backend.js"
import { ModelCatalog } from "../src/ModelCatalog.js"
import * as OpenClawModels from "../src/openclaw/models.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { backendStack, capturingLogs } from "./util.js"

const SECRET = "sk-PLANTED-4f9c2e7a"

const withStack = (options: ReferenceKernel.Options = {}, config = {}) =>
<A, E>(effect: Effect.Effect<A, E, ModelCatalog | Backend | AiosConfig | ReferenceKernel.ReferenceKernel>) =>
  Effect.provide(effect, backendStack(options, { catalogTtlMs: 60_000, ...config }))

describe("ModelCatalog", () => {
  it.effect("serves from cache within the TTL and refetches after it (TestClock)", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      const kernel = yield* ReferenceKernel.ReferenceKernel
      expect((yield* catalog.list).map((m) => m.name)).toEqual(["echo", "tool-user"])
      yield* TestClock.adjust("59 seconds")
      yield* catalog.list
      expect(kernel.count("/core/llms/list")).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* catalog.list
      expect(kernel.count("/core/llms/list")).toBe(2)
    }).pipe(withStack()))

  it.effect("100 concurrent callers share one request", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      const results = yield* Effect.all(Array.from({ length: 100 }, () => catalog.list), { concurrency: "unbounded" })
      expect(new Set(results.map((r) => r.map((m) => m.name).join(",")))).toEqual(new Set(["echo,tool-user"]))
      expect((yield* ReferenceKernel.ReferenceKernel).count("/core/llms/list")).toBe(1)
    }).pipe(withStack()))

  it.effect("a failed refresh serves the last good list and logs a warning; with no good list it fails", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      const kernel = yield* ReferenceKernel.ReferenceKernel
      yield* catalog.list
      yield* TestClock.adjust("61 seconds")
      kernel.scriptEndpoint("/core/llms/list", { _tag: "Http", status: 500 })
      const { lines, result } = yield* capturingLogs(catalog.list)
      expect(result.map((m) => m.name)).toEqual(["echo", "tool-user"])
      expect(kernel.count("/core/llms/list")).toBe(2)
      expect(lines.some((l) => l.startsWith("WARN") && l.includes("serving the last good list") && l.includes("HTTP 500"))).toBe(true)
      // The failed refresh did not extend the old list's life: the next call tries again.
      yield* catalog.list
      expect(kernel.count("/core/llms/list")).toBe(3)

      yield* catalog.invalidate
      kernel.scriptEndpoint("/core/llms/list", { _tag: "Malformed" })
      const error = yield* Effect.either(catalog.list)
      expect(Either.isLeft(error) && error.left._tag).toBe("MalformedResponse")
    }).pipe(withStack()))

  it.effect("an empty list is returned but not cached", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.setModels([])
      expect(yield* catalog.list).toEqual([])
      expect(yield* catalog.list).toEqual([])
      expect(kernel.count("/core/llms/list")).toBe(2)
      kernel.setModels(ReferenceKernel.defaultModels)
      expect((yield* catalog.list).length).toBe(2)
      yield* catalog.list
      expect(kernel.count("/core/llms/list")).toBe(3)
    }).pipe(withStack()))

  it.effect("require: a listed model, or ModelUnknown naming the available ones (no /query sent)", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      expect(yield* catalog.require("echo")).toEqual({ name: "echo", backend: "reference" })
      const error = yield* Effect.flip(catalog.require("gpt-9"))
      expect(error).toMatchObject({ _tag: "ModelUnknown", model: "gpt-9", available: ["echo", "tool-user"] })
      expect(error.message).toBe(
        `Model 'gpt-9' is not served by the AIOS kernel at ${error.url}. Available: echo, tool-user. Pick a model the server lists.`
      )
      expect((yield* ReferenceKernel.ReferenceKernel).count("/query")).toBe(0)
    }).pipe(withStack()))

  it.effect("works over any Backend: an OpenAI-compatible endpoint's /v1/models", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      const results = yield* Effect.all(Array.from({ length: 10 }, () => catalog.list), { concurrency: "unbounded" })
      expect(results.every((r) => r.map((m) => m.name).join(",") === "echo,tool-user")).toBe(true)
      expect((yield* ReferenceKernel.ReferenceKernel).count("/v1/models")).toBe(1)
      const error = yield* Effect.flip(catalog.require("gpt-9"))
      expect(error.message).toBe(
        `Model 'gpt-9' is not served by the OpenAI-compatible endpoint at ${error.url}. Available: echo, tool-user. Pick a model the server lists.`
      )
    }).pipe(withStack({}, { backend: "openai-compatible" })))

  it.effect("the catalog's models as OpenClaw rows, with defaults and per-model overrides", () =>
    Effect.gen(function*() {
      const config = yield* AiosConfig
      const rows = (yield* (yield* ModelCatalog).list).map((m) => OpenClawModels.rowFor(config, m.name))
      expect(rows).toEqual([
        {
          id: "echo",
          name: "echo",
          reasoning: true,
          input: ["text", "image"],
          cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
          contextWindow: 32_000,
          maxTokens: 4_000
        },
        {
          id: "tool-user",
          name: "tool-user",
          reasoning: false,
          input: ["text"],
          cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
          contextWindow: 128_000,
          maxTokens: 1_000
        }
      ])
    }).pipe(withStack({}, { models: { echo: { contextWindow: 32_000, maxTokens: 4_000, reasoning: true, input: ["text", "image"] } } })))

  it.effect("secrets in /core/llms/list never reach a row, a list, an error or a log", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      const backend = yield* Backend
      const config = yield* AiosConfig
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const { lines, result } = yield* capturingLogs(Effect.gen(function*() {
        const outputs: Array<unknown> = []
        const models = yield* catalog.list
        outputs.push(yield* backend.listModels, models, models.map((m) => OpenClawModels.rowFor(config, m.name)))
        outputs.push((yield* Effect.flip(catalog.require("missing"))).message)
        // A refresh that fails on a wrong-shaped body which itself carries the secret.
        yield* TestClock.adjust("2 minutes")
        kernel.scriptEndpoint("/core/llms/list", {
          _tag: "Malformed",
          body: JSON.stringify({ status: "success", llms: [{ name: 42, api_key: SECRET }] })
        })
        outputs.push(yield* catalog.list)
        yield* catalog.invalidate
        kernel.scriptEndpoint("/core/llms/list", {
          _tag: "Malformed",
          body: JSON.stringify({ status: "success", llms: [{ name: 42, api_key: SECRET }] })
        })
        const error = yield* Effect.flip(catalog.list)
        outputs.push(error, error.message, String(error), JSON.stringify(error))
        return outputs
      }))
      // The kernel really did send it.
      expect(JSON.stringify(kernel.requests())).not.toContain(SECRET)
      const everything = JSON.stringify(result) + lines.join("\n") + result.map(String).join("\n")
      expect(everything).toContain("echo")
      expect(everything).not.toContain(SECRET)
      expect(everything).not.toContain("10.0.0.7")
    }).pipe(
      withStack({
        models: [
          { name: "echo", backend: "openai", extra: { api_key: SECRET, hostname: "http://10.0.0.7:9000" } },
          { name: "tool-user", backend: "anthropic", extra: { api_key: SECRET } }
        ]
      })
    ))
})
