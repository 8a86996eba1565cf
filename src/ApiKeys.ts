/**
 * API keys for OpenAI-compatible endpoints, used round-robin. A key the server refuses cools down and the next
 * one is used, as the failure kind's `keyCooldown` in `BackendError.policies` says: after a rate limit for the
 * server's Retry-After (or `rateLimitCooldownMs`), after an auth or quota refusal for `rejectedCooldownMs` (an
 * hour by default: such a key will not heal soon). Time comes from Effect's `Clock`, so a `TestClock` drives the
 * cooldowns. Cooldowns go through `SharedState` when the context has it (`Aios.layer` provides it): with Redis
 * configured, a key one process saw refused is skipped by every process sharing that Redis.
 *
 * When every key is cooling down, the one whose cooldown ends first is used anyway rather than failing without
 * asking: a cooldown is our estimate, the server is the authority, and the retry layer above (`TurnRetry`)
 * already owns waiting. Keys stay `Redacted` until the `Authorization` header is set; nothing here exposes a
 * key's value (states name keys by position only).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { createHash } from "node:crypto"
import { AiosConfig } from "./AiosConfig.js"
import type { BackendError, Policy } from "./BackendError.js"
import { policies } from "./BackendError.js"
import * as Memory from "./internal/sharedState/memory.js"
import * as RetryAfter from "./RetryAfter.js"
import { SharedState } from "./SharedState.js"

/**
 * A key handed out for one request: its position in the configured list and its (still redacted) value.
 *
 * @since 0.1.0
 */
export interface Key {
  readonly index: number
  readonly value: Redacted.Redacted<string>
  /** How long this key still cools down, in ms; 0 when it is free (non-zero only when every key cools down). */
  readonly coolingDownMs: number
}

/**
 * Why a key cools down: the `keyCooldown` of the failure's kind in `BackendError.policies`.
 *
 * @since 0.2.0
 */
export type CooldownReason = NonNullable<Policy["keyCooldown"]>

/**
 * One key's state, without its value.
 *
 * @since 0.1.0
 */
export interface KeyState {
  readonly index: number
  /** Remaining cooldown in ms; 0 when free. */
  readonly coolingDownMs: number
  readonly reason: CooldownReason | undefined
}

/**
 * The key rotation service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** How many keys are configured; 0 means requests carry no `Authorization` header. */
  readonly size: number
  /**
   * The next key, round-robin over the free keys not in `exclude`; when all of those cool down, the one whose
   * cooldown ends first. `None` when no key is configured or all are excluded.
   */
  readonly next: (exclude?: ReadonlySet<number>) => Effect.Effect<Option.Option<Key>>
  /** The server accepted `key`: any cooldown it had is over. */
  readonly succeeded: (key: Key) => Effect.Effect<void>
  /**
   * The server refused a request made with `key`. When the failure is the key's (see `cooldownFor`), the key
   * cools down and the answer is `true`: another key may succeed. Otherwise nothing changes and it is `false`.
   */
  readonly failed: (key: Key, error: BackendError) => Effect.Effect<boolean>
  /** Every key's state, by position. */
  readonly states: Effect.Effect<ReadonlyArray<KeyState>>
  /** `text` with every configured key's value replaced by `[redacted]` (for server messages that echo a key). */
  readonly scrub: (text: string) => string
}

/**
 * @since 0.1.0
 */
export class ApiKeys extends Context.Tag("effect-aios/ApiKeys")<ApiKeys, Service>() {}

/** Cooldown settings. */
export interface Options {
  /** After a 429 without Retry-After. Default 30 s. */
  readonly rateLimitCooldownMs?: number | undefined
  /** After an auth or quota refusal (401/403, an exhausted quota). Default 1 h. */
  readonly rejectedCooldownMs?: number | undefined
}

/** The defaults: 30 s after a rate limit, 1 h after an auth or quota refusal. */
export const defaultOptions = { rateLimitCooldownMs: 30_000, rejectedCooldownMs: 3_600_000 } as const

/**
 * How long a key cools down after `error`, or `None` when the failure is not the key's (a 5xx, a timeout, a bad
 * request): the kind's `keyCooldown` in `BackendError.policies` decides. A rate limit cools it down for the wait
 * the server asked for (Retry-After / retry-after-ms, else "try again in N s" in its text; else
 * `rateLimitCooldownMs`); an auth or quota refusal for `rejectedCooldownMs`.
 *
 * @since 0.1.0
 */
export const cooldownFor = (
  error: BackendError,
  options: Options = {}
): Option.Option<{ readonly ms: number; readonly reason: CooldownReason }> => {
  const reason = policies[error.kind].keyCooldown
  if (reason === undefined) return Option.none()
  const ms = reason === "rate_limit"
    ? Option.getOrElse(RetryAfter.fromError(error), () => options.rateLimitCooldownMs ?? defaultOptions.rateLimitCooldownMs)
    : options.rejectedCooldownMs ?? defaultOptions.rejectedCooldownMs
  return Option.some({ ms, reason })
}

/** A key's name in the shared state: a fingerprint of its value, so processes agree whatever their key order. */
const stateKey = (key: Redacted.Redacted<string>) =>
  `apikey:${createHash("sha256").update(Redacted.value(key)).digest("hex").slice(0, 16)}`

/**
 * Builds the rotation over `keys`. Cooldowns live in the `SharedState` in context (so every process sharing it
 * skips a key one of them saw refused), else in memory; the round-robin position is this process's own.
 *
 * @since 0.1.0
 */
export const make = (
  keys: ReadonlyArray<Redacted.Redacted<string>>,
  options: Options = {}
): Effect.Effect<Service> =>
  Effect.gen(function*() {
    const shared: Memory.Cooldowns = yield* Effect.flatMap(
      Effect.serviceOption(SharedState),
      Option.match({ onNone: () => Memory.makeCooldowns, onSome: Effect.succeed })
    )
    const ids = keys.map(stateKey)
    // A second key marks a cooldown for an auth or quota refusal, so `states` can tell the reason in any process.
    const rejectedIds = ids.map((id) => `${id}:rejected`)
    const cursor = yield* Ref.make(0)
    // Keys this process cooled down: only those get a cooldown cleared on success (no write per request).
    const cooled = yield* Ref.make<ReadonlySet<number>>(new Set())

    const untilOf = (id: string) => Effect.map(shared.cooldownUntil(id), Option.getOrElse(() => 0))
    const untils = (list: ReadonlyArray<string>) => Effect.forEach(list, untilOf, { concurrency: "unbounded" })

    const next = (exclude: ReadonlySet<number> = new Set()) =>
      keys.length === 0 ? Effect.succeedNone : Effect.gen(function*() {
        const until = yield* untils(ids)
        const now = yield* Clock.currentTimeMillis
        return yield* Ref.modify(cursor, (start): [Option.Option<Key>, number] => {
          const n = keys.length
          let free: number | undefined
          let soonest: number | undefined
          for (let step = 0; step < n; step++) {
            const i = (start + step) % n
            if (exclude.has(i)) continue
            const u = until[i] ?? 0
            if (u <= now) {
              free = i
              break
            }
            if (soonest === undefined || u < (until[soonest] ?? 0)) soonest = i
          }
          const chosen = free ?? soonest
          if (chosen === undefined) return [Option.none(), start]
          const key: Key = {
            index: chosen,
            value: keys[chosen]!,
            coolingDownMs: Math.max(0, (until[chosen] ?? 0) - now)
          }
          return [Option.some(key), (chosen + 1) % n]
        })
      })

    const succeeded = (key: Key) =>
      Effect.flatMap(Ref.get(cooled), (set) =>
        key.coolingDownMs > 0 || set.has(key.index)
          ? Effect.all([
            shared.clearCooldown(ids[key.index]!),
            shared.clearCooldown(rejectedIds[key.index]!),
            Ref.update(cooled, (s) => {
              const next = new Set(s)
              next.delete(key.index)
              return next
            })
          ], { discard: true })
          : Effect.void)

    const failed = (key: Key, error: BackendError) =>
      Option.match(cooldownFor(error, options), {
        onNone: () => Effect.succeed(false),
        onSome: ({ ms, reason }) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.all([
              shared.setCooldown(ids[key.index]!, now + ms),
              reason === "rejected"
                ? shared.setCooldown(rejectedIds[key.index]!, now + ms)
                : shared.clearCooldown(rejectedIds[key.index]!),
              Ref.update(cooled, (s) => new Set(s).add(key.index))
            ], { discard: true })).pipe(Effect.as(true))
      })

    const states = Effect.gen(function*() {
      const [until, rejected] = yield* Effect.all([untils(ids), untils(rejectedIds)], { concurrency: 2 })
      const now = yield* Clock.currentTimeMillis
      return until.map((u, index): KeyState => ({
        index,
        coolingDownMs: Math.max(0, u - now),
        reason: u > now ? ((rejected[index] ?? 0) > now ? "rejected" : "rate_limit") : undefined
      }))
    })

    return {
      size: keys.length,
      next,
      succeeded,
      failed,
      states,
      scrub: (text) =>
        keys.reduce((t, key) => {
          const value = Redacted.value(key)
          return value.length > 0 ? t.replaceAll(value, "[redacted]") : t
        }, text)
    } satisfies Service
  })

/**
 * The rotation over `AiosConfig.apiKeys`, with the default cooldowns.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<ApiKeys, never, AiosConfig> = Layer.effect(
  ApiKeys,
  Effect.flatMap(AiosConfig, (config) => make(config.apiKeys))
)

/**
 * A rotation over explicit keys and cooldowns (tests, or keys that do not come from `AiosConfig`).
 *
 * @since 0.1.0
 */
export const layerWith = (
  keys: ReadonlyArray<Redacted.Redacted<string>>,
  options: Options = {}
): Layer.Layer<ApiKeys> => Layer.effect(ApiKeys, make(keys, options))
