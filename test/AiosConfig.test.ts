import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as AiosConfig from "../src/AiosConfig.js"

const issues = (input: unknown) => {
  const result = AiosConfig.decode(input)
  if (Either.isRight(result)) throw new Error(`expected invalid config: ${JSON.stringify(input)}`)
  return result.left
}

describe("AiosConfig", () => {
  it("fills every default", () => {
    const config = AiosConfig.defaults
    expect({ ...config, apiKeys: config.apiKeys.length }).toEqual({
      backend: "aios",
      baseUrl: "http://localhost:8000",
      apiKeys: 0,
      aliases: {},
      limits: { concurrency: 4 },
      agentName: "openclaw",
      requestTimeoutMs: 120_000,
      callTimeoutMs: 300_000,
      turnTimeoutMs: 300_000,
      maxResponseBytes: 16 * 1024 * 1024,
      thinking: "events",
      pool: { ejectMs: 30_000 },
      catalogTtlMs: 60_000,
      toolCalls: "tags",
      retry: {
        maxRetries: 3,
        delayMs: 20_000,
        maxDelayMs: 60_000,
        jitter: "none",
        retryOn: "transient",
        transientDelayMs: 1_000,
        onRefused: "fail"
      },
      models: {}
    })
  })

  it("keeps given values, strips a trailing slash, fills nested defaults", () => {
    const config = Either.getOrThrow(AiosConfig.decode({
      baseUrl: "http://127.0.0.1:9000/",
      retry: { maxRetries: 1 },
      models: { "gpt-4o": { contextWindow: 128_000 } }
    }))
    expect(config.baseUrl).toBe("http://127.0.0.1:9000")
    expect(config.retry).toEqual({
      maxRetries: 1,
      delayMs: 20_000,
      maxDelayMs: 60_000,
      jitter: "none",
      retryOn: "transient",
      transientDelayMs: 1_000,
      onRefused: "fail"
    })
    expect(config.models).toEqual({ "gpt-4o": { contextWindow: 128_000 } })
  })

  it("names the key and the value of each invalid entry", () => {
    const error = issues({ requestTimeoutMs: -5, toolCalls: "xml", baseUrl: "localhost:8000" })
    expect(error._tag).toBe("AiosConfigError")
    expect(error.message).toContain("requestTimeoutMs = -5 is invalid")
    expect(error.message).toContain("toolCalls = \"xml\" is invalid")
    expect(error.message).toContain("baseUrl = \"localhost:8000\" is invalid")
    expect(issues({ retry: { jitter: "sometimes" } }).message).toContain("retry.jitter = \"sometimes\" is invalid")
    expect(issues({ baseUrl: "ftp://x" }).message).toContain("must be an http(s) URL")
  })

  it("never echoes an API key, even an invalid one", () => {
    const error = issues({ apiKeys: ["   ", { secret: "sk-should-not-appear" }] })
    expect(error.message).toContain("apiKeys.0 is invalid")
    expect(error.message).not.toContain("sk-should-not-appear")
    const ok = Either.getOrThrow(AiosConfig.decode({ apiKeys: ["sk-live-1"] }))
    expect(Redacted.value(ok.apiKeys[0]!)).toBe("sk-live-1")
    expect(JSON.stringify(ok)).not.toContain("sk-live-1")
    expect(String(ok.apiKeys[0])).not.toContain("sk-live-1")
  })

  it.effect("layerConfig reads the environment over the given options", () =>
    Effect.gen(function*() {
      const config = yield* AiosConfig.config({ agentName: "mine", retry: { maxRetries: 5 } }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
          ["AIOS_URL", "http://127.0.0.1:8123"],
          ["AIOS_RETRY_DELAY_MS", "1500"],
          ["AIOS_API_KEYS", "k1, k2"]
        ])))
      )
      expect(config.baseUrl).toBe("http://127.0.0.1:8123")
      expect(config.agentName).toBe("mine")
      expect(config.retry).toMatchObject({ maxRetries: 5, delayMs: 1500 })
      expect(config.apiKeys.map(Redacted.value)).toEqual(["k1", "k2"])
    }))

  it.effect("the environment names deadlines, a kernel pool and a Redis", () =>
    Effect.gen(function*() {
      const config = yield* AiosConfig.config({ redis: { url: "redis://127.0.0.1:1", prefix: "team" } }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
          ["AIOS_TURN_TIMEOUT_MS", "9000"],
          ["AIOS_CALL_TIMEOUT_MS", "8000"],
          ["AIOS_KERNELS", "http://127.0.0.1:8001/, http://127.0.0.1:8002"],
          ["AIOS_REDIS_URL", "redis://127.0.0.1:6380"]
        ])))
      )
      expect(config).toMatchObject({ turnTimeoutMs: 9000, callTimeoutMs: 8000 })
      expect(config.kernels).toEqual(["http://127.0.0.1:8001", "http://127.0.0.1:8002"])
      expect(config.redis).toEqual({ url: "redis://127.0.0.1:6380", prefix: "team" })
      expect(Either.isLeft(AiosConfig.decode({ redis: { url: "http://127.0.0.1:6379" } }))).toBe(true)
    }))

  it.effect("an invalid environment value fails at start-up naming the variable's key and value", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(AiosConfig.config().pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["AIOS_TOOL_CALLS", "json"]])))
      ))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("toolCalls = \"json\" is invalid")
    }))
})
