/**
 * State that several processes may share: cooldowns (API keys, ejected kernels), rate limits on call starts and
 * concurrency caps. In memory by default; `layerRedis` (the `redis` config key) shares it through Redis, and
 * falls back to the in-memory state, with a warning, whenever Redis is down or slow, so no call fails because
 * of it.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"

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
   * Runs `effect` while holding one of `max` permits for `key`; waits (interruptibly) for a free one.
   */
  readonly withPermit: (
    key: string,
    max: number
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * @since 0.2.0
 */
export class SharedState extends Context.Tag("effect-aios/SharedState")<SharedState, Service>() {}
