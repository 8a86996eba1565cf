/**
 * The Redis-backed shared state against a real `redis-server` on loopback: the operations, then Redis down at
 * start, slow (SIGSTOP) and killed mid-run under real `Llm` turns: the in-memory state takes over with one
 * warning per outage, no call fails, and the state is shared again once Redis is back. Real time: Redis's
 * own clock and timeouts cannot run on a TestClock.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { Redis } from "ioredis"
import { randomUUID } from "node:crypto"
import * as Aios from "../src/Aios.js"
import * as Llm from "../src/Llm.js"
import * as SharedState from "../src/SharedState.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { configFor } from "./util.js"
import { freePort, redisAvailable, type RedisServer, skipNote, startRedis } from "./redisServer.js"

interface Line {
  readonly level: string
  readonly message: string
}

/** A logger that keeps every line, for the warnings. */
const capture = () => {
  const lines: Array<Line> = []
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      lines.push({ level: logLevel.label, message: (Array.isArray(message) ? message : [message]).map(String).join(" ") })
    })
  )
  const count = (level: string, text: string) => lines.filter((l) => l.level === level && l.message.includes(text)).length
  return { lines, logger, count }
}

/** Repeats `probe` (an operation, then the status) until the state is shared again; fails after ~10 s. */
const untilShared = (state: SharedState.Service) =>
  Effect.zipRight(state.cooldownUntil("probe"), state.status).pipe(
    Effect.repeat(Schedule.spaced(100).pipe(
      Schedule.intersect(Schedule.recurs(100)),
      Schedule.whileInput((s: SharedState.Status) => s !== "redis"),
      Schedule.passthrough
    )),
    Effect.filterOrFail((s) => s === "redis", () => new Error("Redis did not come back"))
  )

const fastRetry = { timeoutMs: 150, retryMs: 100 } as const

describe.skipIf(!redisAvailable)(`SharedState.layerRedis${redisAvailable ? "" : ` (${skipNote})`}`, () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  const prefix = () => `t-${randomUUID()}`

  it.live("cooldowns, permits and rate limits live in Redis under the prefix", () =>
    Effect.gen(function*() {
      const p = prefix()
      const a = yield* SharedState.makeRedis({ url: redis.url, prefix: p })
      const b = yield* SharedState.makeRedis({ url: redis.url, prefix: p })
      expect(yield* a.status).toBe("redis")

      const until = Date.now() + 60_000
      yield* a.setCooldown("kernel:http://127.0.0.1:1", until)
      expect(yield* b.cooldownUntil("kernel:http://127.0.0.1:1")).toEqual(Option.some(until))
      yield* b.clearCooldown("kernel:http://127.0.0.1:1")
      expect(Option.isNone(yield* a.cooldownUntil("kernel:http://127.0.0.1:1"))).toBe(true)
      // A deadline in the past sets nothing.
      yield* a.setCooldown("kernel:x", Date.now() - 1)
      expect(Option.isNone(yield* b.cooldownUntil("kernel:x"))).toBe(true)

      // One permit between the two: b waits until a's scope closes.
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(a.withPermit("llm:echo", 1)(Deferred.await(release)))
      yield* Effect.sleep(50)
      const waiter = yield* Effect.fork(b.withPermit("llm:echo", 1)(Effect.succeed("got it")))
      const early = yield* Fiber.join(waiter).pipe(Effect.timeout(300), Effect.option)
      expect(Option.isNone(early)).toBe(true)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(waiter)).toBe("got it")

      // A bucket of 2 per minute, shared: two starts pass at once, the third would wait ~30 s.
      yield* a.rateLimit("llm:echo", 2, 60_000)
      yield* b.rateLimit("llm:echo", 2, 60_000)
      const third = yield* a.rateLimit("llm:echo", 2, 60_000).pipe(Effect.timeout(500), Effect.option)
      expect(Option.isNone(third)).toBe(true)

      const client = new Redis(redis.url)
      const keys = yield* Effect.promise(() => client.keys(`${p}:*`))
      yield* Effect.promise(() => client.quit())
      expect(keys.sort()).toEqual([`${p}:rate:llm:echo`, `${p}:rate:llm:echo:refill`])
    }).pipe(Effect.scoped), 30_000)

  it.live("Redis down at start: the layer builds, memory answers, one warning; shared once Redis is up", () => {
    const log = capture()
    return Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const url = `redis://127.0.0.1:${port}`
      const state = yield* SharedState.makeRedis({ url, prefix: prefix(), ...fastRetry })
      expect(yield* state.status).toBe("redis-unreachable")
      yield* state.setCooldown("apikey:x", Date.now() + 60_000)
      expect(Option.isSome(yield* state.cooldownUntil("apikey:x"))).toBe(true)
      yield* Effect.scoped(state.acquirePermit("llm:echo", 1))
      yield* state.rateLimit("llm:echo", 5, 1_000)
      expect(log.count("WARN", "Redis unreachable")).toBe(1)

      const late = yield* Effect.promise(() => startRedis(port))
      yield* Effect.addFinalizer(() => Effect.promise(() => late.stop()))
      yield* untilShared(state)
      expect(log.count("INFO", "Redis reachable again")).toBe(1)
      expect(log.count("WARN", "Redis unreachable")).toBe(1)
      // The URL (and any password in it) stays out of the log.
      for (const line of log.lines) expect(line.message).not.toContain("redis://")
    }).pipe(Effect.scoped, Effect.provide(log.logger))
  }, 30_000)

  it.live("slow Redis (stopped): every operation answers from memory within its bound; one warning", () => {
    const log = capture()
    return Effect.gen(function*() {
      const p = prefix()
      const state = yield* SharedState.makeRedis({ url: redis.url, prefix: p, ...fastRetry })
      yield* state.setCooldown("kernel:a", Date.now() + 60_000)
      redis.pause()
      yield* Effect.addFinalizer(() => Effect.sync(() => redis.resume()))
      // Bounded: each of these returns although Redis never answers.
      const answered = yield* Effect.gen(function*() {
        const before = yield* state.cooldownUntil("kernel:a")
        yield* state.setCooldown("kernel:b", Date.now() + 60_000)
        const after = yield* state.cooldownUntil("kernel:b")
        yield* Effect.scoped(state.acquirePermit("llm:echo", 1))
        yield* state.rateLimit("llm:echo", 5, 1_000)
        return [before, after]
      }).pipe(Effect.timeout(5_000))
      expect(answered.map(Option.isSome)).toEqual([true, true])
      expect(yield* state.status).toBe("redis-unreachable")
      expect(log.count("WARN", "no answer within 150 ms")).toBe(1)

      redis.resume()
      yield* untilShared(state)
      expect(log.count("INFO", "Redis reachable again")).toBe(1)
      expect(log.count("WARN", "Redis unreachable")).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(log.logger))
  }, 30_000)

  it.live("Redis killed mid-run: Llm turns go on under local limits, one warning; shared again after restart", () => {
    const log = capture()
    const p = prefix()
    const stack = Llm.layer.pipe(
      Layer.provideMerge(Aios.layerWith(configFor({
        redis: { url: redis.url, prefix: p },
        limits: { concurrency: 2, rate: { limit: 200, intervalMs: 1_000 } }
      }))),
      Layer.provideMerge(ReferenceKernel.layer({ latencyMs: 40 })),
      Layer.provide(NodeHttpClient.layerUndici)
    )
    return Effect.gen(function*() {
      const llm = yield* Llm.Llm
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const state = yield* SharedState.SharedState
      const calls = (n: number) =>
        Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
          Effect.map(llm.generate({ prompt: `call ${i}`, model: "echo" }), (r) => r.text), { concurrency: "unbounded" })

      expect(yield* calls(6)).toHaveLength(6)
      expect(yield* state.status).toBe("redis")
      expect(kernel.maxConcurrentQueries()).toBeLessThanOrEqual(2)

      yield* Effect.promise(() => redis.kill())
      kernel.reset()
      // Redis is gone: no call fails, and the cap still holds (locally).
      expect(yield* calls(10)).toHaveLength(10)
      expect(kernel.count("/query")).toBe(10)
      expect(kernel.maxConcurrentQueries()).toBeLessThanOrEqual(2)
      expect(yield* state.status).toBe("redis-unreachable")
      expect(log.count("WARN", "Redis unreachable")).toBe(1)

      yield* Effect.promise(() => redis.restart())
      yield* untilShared(state)
      expect(yield* calls(4)).toHaveLength(4)
      expect(log.count("INFO", "Redis reachable again")).toBe(1)
      expect(log.count("WARN", "Redis unreachable")).toBe(1)
      // Shared again: the permits of those calls went through Redis (and were given back).
      const client = new Redis(redis.url)
      const keys = yield* Effect.promise(() => client.keys(`${p}:*`))
      yield* Effect.promise(() => client.quit())
      expect(keys.sort()).toEqual([`${p}:rate:llm:echo`, `${p}:rate:llm:echo:refill`])
    }).pipe(Effect.provide(stack), Effect.provide(log.logger))
  }, 60_000)
})
