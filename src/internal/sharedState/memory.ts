/**
 * The in-process shared state: what one process uses alone, and what the Redis-backed state falls back to.
 * Concurrency caps are `Effect.Semaphore`s and rate limits `effect/RateLimiter` token buckets, as `Llm` used them
 * directly before; cooldowns are a map of epoch-ms deadlines read through `Clock`, so a `TestClock` drives them.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as RateLimiter from "effect/RateLimiter"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { Service } from "../../SharedState.js"

/** The cooldown part of the service, which needs no scope (`ApiKeys` uses it alone when no `SharedState` is given). */
export type Cooldowns = Pick<Service, "cooldownUntil" | "setCooldown" | "clearCooldown">

export const makeCooldowns: Effect.Effect<Cooldowns> = Effect.map(
  Ref.make(new Map<string, number>()),
  (ref): Cooldowns => ({
    cooldownUntil: (key) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(ref, (map): [Option.Option<number>, Map<string, number>] => {
          const until = map.get(key)
          if (until === undefined) return [Option.none(), map]
          if (until > now) return [Option.some(until), map]
          // Expired: forget it, so the map holds only live cooldowns.
          const next = new Map(map)
          next.delete(key)
          return [Option.none(), next]
        })),
    setCooldown: (key, untilMs) => Ref.update(ref, (map) => new Map(map).set(key, untilMs)),
    clearCooldown: (key) =>
      Ref.update(ref, (map) => {
        if (!map.has(key)) return map
        const next = new Map(map)
        next.delete(key)
        return next
      })
  })
)

/** A map of lazily created values, each made once (creation is uninterruptible, so none is made twice or lost). */
const memo = <A>() =>
  Effect.map(SynchronizedRef.make(new Map<string, A>()), (ref) => (id: string, create: Effect.Effect<A>) =>
    SynchronizedRef.modifyEffect(ref, (map) => {
      const existing = map.get(id)
      return existing !== undefined
        ? Effect.succeed([existing, map] as const)
        : Effect.map(create, (value) => [value, new Map(map).set(id, value)] as const)
    }).pipe(Effect.uninterruptible))

/**
 * The whole service in memory. Token buckets refill on fibers that live as long as the scope (the layer's).
 */
export const make: Effect.Effect<Service, never, Scope.Scope> = Effect.gen(function*() {
  const scope = yield* Effect.scope
  const cooldowns = yield* makeCooldowns
  const semaphores = yield* memo<Effect.Semaphore>()
  const limiters = yield* memo<RateLimiter.RateLimiter>()

  // The cap is part of the identity: a caller asking for another `max` gets its own semaphore, not a wrong one.
  const semaphore = (key: string, max: number) => semaphores(`${key}\u0000${max}`, Effect.makeSemaphore(max))

  const acquirePermit: Service["acquirePermit"] = (key, max) =>
    Effect.flatMap(semaphore(key, max), (s) =>
      // Waiting stays interruptible; once taken, the release is registered before anything can interrupt.
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(restore(s.take(1)), Effect.addFinalizer(() => s.release(1)))
      ))

  const rateLimit: Service["rateLimit"] = (key, limit, windowMs) =>
    Effect.flatMap(
      limiters(
        `${key}\u0000${limit}\u0000${windowMs}`,
        RateLimiter.make({ limit, interval: Duration.millis(windowMs), algorithm: "token-bucket" }).pipe(Scope.extend(scope))
      ),
      (limiter) => limiter(Effect.void)
    )

  return {
    ...cooldowns,
    rateLimit,
    acquirePermit,
    withPermit: (key, max) => (effect) =>
      Effect.scopedWith((permitScope) => Effect.zipRight(Scope.extend(acquirePermit(key, max), permitScope), effect)),
    status: Effect.succeed("memory")
  }
})
