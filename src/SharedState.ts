/**
 * State that several processes may share: cooldowns (API keys, ejected kernels), rate limits on call starts and
 * concurrency caps. In memory by default (`layerMemory`); with the `redis` config key (`layerRedis`) it is shared
 * by every process using the same Redis and prefix.
 *
 * Redis is a help, never a dependency: every Redis operation is bounded (250 ms by default), and when Redis is
 * down, slow or answers wrongly the in-memory state of this process takes over (per-process limits, local
 * cooldowns) with one warning per outage, so no call fails because of Redis. The client reconnects on its own;
 * the first operation that succeeds again logs that the state is shared again.
 *
 * Keys under the prefix: `<prefix>:rate:<key>` (+ `:refill`; the token bucket of `@effect/experimental`'s
 * `RateLimiter`), `<prefix>:permits:<key>` (a sorted set of leased permits), `<prefix>:cooldown:<key>` (epoch ms,
 * expiring with the cooldown). Permit leases use Redis's clock; the token bucket and cooldown deadlines use each
 * process's, so hosts sharing a Redis need synchronized clocks (NTP).
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { AiosConfig } from "./AiosConfig.js"
import * as Memory from "./internal/sharedState/memory.js"
import type * as Redis from "./internal/sharedState/redis.js"

/**
 * Where the state lives now: this process only, Redis, or this process because Redis cannot be reached.
 *
 * @since 0.2.0
 */
export type Status = "memory" | "redis" | "redis-unreachable"

/**
 * @since 0.2.0
 */
export interface Service {
  /** Epoch ms until which `key` cools down, if it does. */
  readonly cooldownUntil: (key: string) => Effect.Effect<Option.Option<number>>
  /** `key` cools down until `untilMs` (epoch ms). */
  readonly setCooldown: (key: string, untilMs: number) => Effect.Effect<void>
  readonly clearCooldown: (key: string) => Effect.Effect<void>
  /** Waits until a start is allowed: at most `limit` starts per `windowMs` for `key` (a token bucket). */
  readonly rateLimit: (key: string, limit: number, windowMs: number) => Effect.Effect<void>
  /**
   * Takes one of `max` permits for `key` until the scope closes; waits (interruptibly) for a free one.
   */
  readonly acquirePermit: (key: string, max: number) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Runs `effect` while holding one of `max` permits for `key`; waits (interruptibly) for a free one.
   */
  readonly withPermit: (
    key: string,
    max: number
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Where the state lives now. */
  readonly status: Effect.Effect<Status>
}

/**
 * @since 0.2.0
 */
export class SharedState extends Context.Tag("effect-aios/SharedState")<SharedState, Service>() {}

/**
 * The state of this process only.
 *
 * @since 0.2.0
 */
export const makeMemory: Effect.Effect<Service, never, Scope.Scope> = Memory.make

/**
 * @since 0.2.0
 */
export const layerMemory: Layer.Layer<SharedState> = Layer.scoped(SharedState, Memory.make)

/**
 * Redis settings: the `redis` config key plus tuning that tests and benchmarks may change.
 *
 * @since 0.2.0
 */
export type RedisOptions = Redis.Options

/**
 * State shared through the Redis at `options.url` under `options.prefix`, with this process's in-memory state
 * as the fallback. The Redis connection lives as long as the scope.
 *
 * @since 0.2.0
 */
export const makeRedis = (options: RedisOptions): Effect.Effect<Service, never, Scope.Scope> =>
  // Loaded on use: a process without `redis` never loads the client.
  Effect.flatMap(Effect.promise(() => import("./internal/sharedState/redis.js")), (redis) => redis.make(options))

/**
 * @since 0.2.0
 */
export const layerRedis = (options: RedisOptions): Layer.Layer<SharedState> =>
  Layer.scoped(SharedState, makeRedis(options))

/**
 * Redis when `AiosConfig.redis` is set, memory otherwise.
 *
 * @since 0.2.0
 */
export const layerConfig: Layer.Layer<SharedState, never, AiosConfig> = Layer.unwrapEffect(
  Effect.map(AiosConfig, (config) => (config.redis === undefined ? layerMemory : layerRedis(config.redis)))
)
