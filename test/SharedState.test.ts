/**
 * The in-memory shared state (what every process uses without `redis`), under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as AiosConfig from "../src/AiosConfig.js"
import * as SharedState from "../src/SharedState.js"

/** Lets forked fibers run as far as they can without the clock moving. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

const withMemory = <A, E>(effect: Effect.Effect<A, E, SharedState.SharedState>) =>
  Effect.provide(effect, SharedState.layerMemory)

describe("SharedState.layerMemory", () => {
  it.effect("a cooldown lasts until its deadline on the Clock, and can be cleared early", () =>
    Effect.gen(function*() {
      const state = yield* SharedState.SharedState
      expect(yield* state.status).toBe("memory")
      expect(Option.isNone(yield* state.cooldownUntil("kernel:a"))).toBe(true)
      yield* state.setCooldown("kernel:a", 5_000)
      yield* state.setCooldown("kernel:b", 5_000)
      expect(yield* state.cooldownUntil("kernel:a")).toEqual(Option.some(5_000))
      yield* state.clearCooldown("kernel:b")
      expect(Option.isNone(yield* state.cooldownUntil("kernel:b"))).toBe(true)
      yield* TestClock.adjust("4999 millis")
      expect(yield* state.cooldownUntil("kernel:a")).toEqual(Option.some(5_000))
      yield* TestClock.adjust("1 millis")
      expect(Option.isNone(yield* state.cooldownUntil("kernel:a"))).toBe(true)
      // A deadline already past sets nothing.
      yield* state.setCooldown("kernel:c", 1_000)
      expect(Option.isNone(yield* state.cooldownUntil("kernel:c"))).toBe(true)
    }).pipe(withMemory))

  it.effect("at most `max` permits per key are held; the next waits until one is given back", () =>
    Effect.gen(function*() {
      const state = yield* SharedState.SharedState
      const held = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      const task = state.withPermit("llm:echo", 2)(
        Effect.gen(function*() {
          const now = yield* Ref.updateAndGet(held, (n) => n + 1)
          yield* Ref.update(peak, (p) => Math.max(p, now))
          yield* Deferred.await(release)
          yield* Ref.update(held, (n) => n - 1)
        })
      )
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.fork(task))
      yield* settle
      expect(yield* Ref.get(held)).toBe(2)
      // Another key has its own permits.
      yield* Effect.scoped(state.acquirePermit("llm:other", 2))
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.joinAll(fibers)
      expect(yield* Ref.get(peak)).toBe(2)
      expect(yield* Ref.get(held)).toBe(0)
    }).pipe(withMemory))

  it.effect("a permit is given back when its scope closes, also on failure and interruption", () =>
    Effect.gen(function*() {
      const state = yield* SharedState.SharedState
      yield* Effect.exit(state.withPermit("k", 1)(Effect.fail("boom")))
      const waiting = yield* Effect.fork(Effect.scoped(Effect.zipRight(state.acquirePermit("k", 1), Effect.never)))
      yield* settle
      yield* Fiber.interrupt(waiting)
      // Both permits came back: this one is free at once.
      expect(yield* Effect.scoped(state.acquirePermit("k", 1)).pipe(Effect.as("free"))).toBe("free")
      // Interrupting a waiter takes nothing: the holder's permit is released once.
      const holder = yield* Effect.fork(Effect.scoped(Effect.zipRight(state.acquirePermit("k", 1), Effect.never)))
      yield* settle
      const waiter = yield* Effect.fork(Effect.scoped(state.acquirePermit("k", 1)))
      yield* settle
      yield* Fiber.interrupt(waiter)
      yield* Fiber.interrupt(holder)
      expect(yield* Effect.scoped(state.acquirePermit("k", 1)).pipe(Effect.as("free"))).toBe("free")
    }).pipe(withMemory))

  it.effect("the rate limit is a token bucket per key: a burst of `limit`, then one start per window/limit", () =>
    Effect.gen(function*() {
      const state = yield* SharedState.SharedState
      const starts: Array<string> = []
      const start = (key: string) => Effect.zipRight(state.rateLimit(key, 2, 1_000), Effect.sync(() => starts.push(key)))
      const fiber = yield* Effect.fork(Effect.forEach([1, 2, 3, 4], () => start("a"), { concurrency: "unbounded" }))
      yield* settle
      expect(starts.length).toBe(2)
      // Another key is not held back.
      yield* start("b")
      expect(starts.length).toBe(3)
      yield* TestClock.adjust("499 millis")
      expect(starts.length).toBe(3)
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(starts).toEqual(["a", "a", "b", "a"])
      yield* TestClock.adjust("500 millis")
      yield* Fiber.join(fiber)
      expect(starts.length).toBe(5)
    }).pipe(withMemory))

  it.effect("layerConfig: memory without `redis`", () =>
    Effect.gen(function*() {
      expect(yield* Effect.flatMap(SharedState.SharedState, (s) => s.status)).toBe("memory")
    }).pipe(Effect.provide(SharedState.layerConfig), Effect.provide(AiosConfig.layer({})), Effect.orDie))
})
