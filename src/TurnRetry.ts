/**
 * The per-turn retry budget. A turn is one model call of the agent loop; each `retry` / `retryStream` call is one
 * turn with a fresh budget of `maxRetries` retries. Waiting is an Effect `Schedule`, so it runs on the `Clock`
 * (a `TestClock` drives it in tests) and ends at once when the fiber is interrupted (callers turn an
 * `AbortSignal` into interruption).
 *
 * Waits (all bounded by `maxDelayMs`, so a turn waits at most `maxRetries × maxDelayMs`):
 * - rate limit: `max(min(delayMs, maxDelayMs), Retry-After)`; with full jitter the policy part is
 *   `random(0, min(maxDelayMs, delayMs·2^n))`.
 * - transient (timeout, unreachable, 408, 5xx): `min(maxDelayMs, transientDelayMs·2^n)` (1 s, 2 s, 4 s … by
 *   default), or `random(0, …)` of it with full jitter; a Retry-After is a floor here too.
 * - a Retry-After above `maxDelayMs` is not waited for: the turn fails at once with the error, which carries the
 *   requested wait in `retryAfterMs`, so OpenClaw can fall back.
 * - anything else (400, 401, 404, model not configured, malformed body, context overflow) never retries.
 * - a refused connection (nothing listens at the URL) is not retried under `onRefused: "fail"` (the default), so
 *   the host can fall back to another model at once.
 *
 * A turn may also have a deadline (`Meta.deadline`, from `turnTimeoutMs`): a retry whose wait would not end before
 * it is not started, and an attempt that fails once it has passed ends the turn. The attempts themselves end by it:
 * a `Backend` call given the deadline (`Request.deadline`) fails with a `BackendTimeout` naming `turnTimeoutMs`
 * when it passes, under the same timer as its own limits, so a turn pays for no second one. When a turn ends in
 * failure, `Meta.onGiveUp` is told how (`Outcome`: attempts, time spent, why it stopped), so that whoever reports
 * the failure can say so (`summary`) and let the caller know whether retrying again makes sense. A caller stops a
 * turn by interrupting it (an `AbortSignal` given to `Effect.runPromise`, say): a wait ends at once.
 *
 * Which class a failure is in comes from `BackendError.policies`, the one policy table.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { AiosConfig, defaults } from "./AiosConfig.js"
import type { Deadline } from "./Backend.js"
import { type BackendError, type ErrorKind, policies, withRetryAfterMs } from "./BackendError.js"
import * as RetryAfter from "./RetryAfter.js"

/**
 * Which failures retry: only rate limits, rate limits and transient failures (the default), or a predicate.
 *
 * @since 0.1.0
 */
export type RetryOn =
  | "rate_limit"
  | "transient"
  | ((error: BackendError, kind: ErrorKind) => boolean)

/**
 * A complete retry policy. `maxRetries`, `delayMs`, `maxDelayMs` and `jitter` come from `AiosConfig.retry`.
 *
 * @since 0.1.0
 */
export interface Policy {
  /** Retries per turn (attempts ≤ maxRetries + 1). */
  readonly maxRetries: number
  /** The wait after a rate limit (a floor under Retry-After). */
  readonly delayMs: number
  /** No single wait is longer; a Retry-After above it fails the turn at once. */
  readonly maxDelayMs: number
  /** `"full"`: the policy wait is random(0, min(maxDelayMs, base·2^n)). */
  readonly jitter: "none" | "full"
  /** The first wait after a transient failure; doubles per retry. */
  readonly transientDelayMs: number
  readonly retryOn: RetryOn
  /** A refused connection: `"fail"` stops the turn at once (unless `retryOn` is a predicate); `"retry"` is transient. */
  readonly onRefused: "fail" | "retry"
}

/**
 * What identifies a turn in logs.
 *
 * @since 0.1.0
 */
export interface Meta {
  readonly turn: string
  readonly model?: string | undefined
  /** Told of each retry as it is decided (before its wait): for callers that report attempts, e.g. `Llm`'s span. */
  readonly onRetry?: ((retry: { readonly attempt: number; readonly delayMs: number }) => void) | undefined
  /** The turn's deadline: no wait runs past it, and a failure once it has passed ends the turn. */
  readonly deadline?: Deadline | undefined
  /** Told once when the turn ends in failure: how many attempts, how long, and why it stopped. */
  readonly onGiveUp?: ((outcome: Outcome) => void) | undefined
}

/**
 * Why a turn stopped retrying. `refused`: nothing listens, under `onRefused: "fail"`; `deadline`: the next wait
 * would not end before it, or it had passed when the attempt failed; `output_started`: output had reached the
 * consumer.
 *
 * @since 0.2.0
 */
export type StopWhy =
  "not_retryable" | "refused" | "budget_exhausted" | "retry_after_too_long" | "deadline" | "output_started"

/** How a failed turn ended. @since 0.2.0 */
export interface Outcome {
  /** The kind of the last failure. */
  readonly kind: ErrorKind
  readonly why: StopWhy
  /** Attempts made, the last one included; time spent waiting between them; from the first start to giving up. */
  readonly attempts: number
  readonly waitedMs: number
  readonly elapsedMs: number
  /** The policy's `maxRetries` and `maxDelayMs`, for messages. */
  readonly maxRetries: number
  readonly maxDelayMs: number
  /** The deadline's length, when the turn had one. */
  readonly turnTimeoutMs?: number | undefined
  /** For `retry_after_too_long`: the wait the server asked for. */
  readonly requestedMs?: number | undefined
}

/**
 * The schedule's decision after a failure.
 *
 * @since 0.1.0
 */
export type Decision =
  | {
    readonly _tag: "Retry"
    readonly kind: ErrorKind
    /** Which retry this is, 1-based. */
    readonly attempt: number
    readonly delayMs: number
  }
  | {
    readonly _tag: "Stop"
    readonly why: StopWhy
    readonly kind: ErrorKind
    readonly requestedMs?: number | undefined
  }

/** Default first wait after a transient failure. */
export const defaultTransientDelayMs = 1_000

/**
 * Counts retries, tagged `kind` (an `ErrorKind`).
 *
 * @since 0.1.0
 */
export const retriesTotal: Metric.Metric.Counter<number> = Metric.counter("effect_aios_retries_total", {
  description: "Retries of model calls, by error kind",
  incremental: true
})

const count = (value: number | undefined, fallback: number): number =>
  value !== undefined && Number.isFinite(value) && value >= 0 ? Math.floor(value) : fallback

/**
 * A complete policy from partial options; missing or invalid numbers fall back to the defaults.
 *
 * @since 0.1.0
 */
export const policy = (options: Partial<Policy> = {}): Policy => ({
  maxRetries: count(options.maxRetries, defaults.retry.maxRetries),
  delayMs: count(options.delayMs, defaults.retry.delayMs),
  maxDelayMs: count(options.maxDelayMs, defaults.retry.maxDelayMs),
  jitter: options.jitter === "full" ? "full" : "none",
  transientDelayMs: count(options.transientDelayMs, defaultTransientDelayMs),
  retryOn: options.retryOn ?? "transient",
  onRefused: options.onRefused === "retry" ? "retry" : "fail"
})

/**
 * Whether nothing listens at the server's address (a refused connection): a dead server, not a busy one.
 *
 * @since 0.2.0
 */
export const isRefused = (error: BackendError): boolean =>
  error._tag === "BackendUnreachable" && /ECONNREFUSED|nothing is listening/i.test(error.detail)

const shouldRetry = (policy: Policy, error: BackendError): boolean => {
  if (typeof policy.retryOn === "function") return policy.retryOn(error, error.kind)
  const retry = policies[error.kind].retry
  return retry === "rate_limit" || (retry === "transient" && policy.retryOn === "transient")
}

/** min(cap, base·2^n), without overflowing into Infinity·0 = NaN. */
const grow = (base: number, n: number, cap: number): number =>
  base <= 0 ? 0 : Math.min(cap, base * 2 ** Math.min(n, 64))

/**
 * The decision after the `retries`-th failure of a turn (0 for the first). `random` in [0, 1) is used only with
 * full jitter; `remainingMs` is the time left before the turn's deadline (a wait that does not end before it is
 * not started). Pure.
 *
 * @since 0.1.0
 */
export const decide = (
  policy: Policy,
  error: BackendError,
  retries: number,
  random: number,
  remainingMs: number = Number.POSITIVE_INFINITY
): Decision => {
  const kind = error.kind
  if (remainingMs <= 0) return { _tag: "Stop", why: "deadline", kind }
  if (policy.onRefused === "fail" && typeof policy.retryOn !== "function" && isRefused(error)) {
    return { _tag: "Stop", why: "refused", kind }
  }
  if (!shouldRetry(policy, error)) return { _tag: "Stop", why: "not_retryable", kind }
  if (retries >= policy.maxRetries) return { _tag: "Stop", why: "budget_exhausted", kind }
  const requested = Option.getOrUndefined(RetryAfter.fromError(error))
  if (requested !== undefined && requested > policy.maxDelayMs) {
    return { _tag: "Stop", why: "retry_after_too_long", kind, requestedMs: requested }
  }
  const cap = policy.maxDelayMs
  const upper = policies[kind].retry === "rate_limit"
    ? policy.jitter === "full" ? grow(policy.delayMs, retries, cap) : Math.min(policy.delayMs, cap)
    : grow(policy.transientDelayMs, retries, cap)
  const base = policy.jitter === "full" ? Math.min(upper, Math.floor(random * (upper + 1))) : upper
  const delayMs = Math.max(base, requested ?? 0)
  if (delayMs >= remainingMs) return { _tag: "Stop", why: "deadline", kind }
  return { _tag: "Retry", kind, attempt: retries + 1, delayMs }
}

const observe = (decision: Decision, meta: Meta, maxDelayMs: number): Effect.Effect<void> => {
  const annotations = meta.model === undefined ? { turn: meta.turn } : { turn: meta.turn, model: meta.model }
  if (decision._tag === "Retry") {
    const { attempt, delayMs, kind } = decision
    return Effect.sync(() => meta.onRetry?.({ attempt, delayMs })).pipe(
      Effect.zipRight(
        Effect.logWarning(`Retrying turn ${meta.turn} in ${delayMs} ms (${kind}, retry ${attempt})`).pipe(
          Effect.annotateLogs({ ...annotations, attempt, kind, delayMs })
        )
      ),
      Effect.zipRight(Metric.increment(Metric.tagged(retriesTotal, "kind", kind)))
    )
  }
  if (decision.why === "retry_after_too_long") {
    return Effect.logWarning(
      `Not retrying turn ${meta.turn}: the server asked to wait ${decision.requestedMs} ms, above maxDelayMs ${maxDelayMs}`
    ).pipe(Effect.annotateLogs({ ...annotations, kind: decision.kind, requestedMs: decision.requestedMs }))
  }
  if (decision.why === "deadline") {
    return Effect.logWarning(`Not retrying turn ${meta.turn}: the next wait would not end before the turn's deadline`).pipe(
      Effect.annotateLogs({ ...annotations, kind: decision.kind })
    )
  }
  return Effect.void
}

/** What one run of a turn has spent so far; made afresh for each run, so a re-run turn starts clean. */
interface Tally {
  readonly startedAt: number
  attempts: number
  waitedMs: number
  /** Set once the outcome was reported. */
  reported: boolean
}

const tallyAt = (startedAt: number): Tally => ({ startedAt, attempts: 1, waitedMs: 0, reported: false })

/** Tells `meta.onGiveUp` how the turn ended, once. */
const giveUp = (
  policy: Policy,
  meta: Meta,
  tally: Tally,
  stop: { readonly kind: ErrorKind; readonly why: StopWhy; readonly requestedMs?: number | undefined }
): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      if (tally.reported) return
      tally.reported = true
      meta.onGiveUp?.({
        kind: stop.kind,
        why: stop.why,
        attempts: tally.attempts,
        waitedMs: tally.waitedMs,
        elapsedMs: Math.max(0, now - tally.startedAt),
        maxRetries: policy.maxRetries,
        maxDelayMs: policy.maxDelayMs,
        turnTimeoutMs: meta.deadline?.timeoutMs,
        requestedMs: stop.requestedMs
      })
    }))

const remainingMs = (meta: Meta): Effect.Effect<number> =>
  meta.deadline === undefined
    ? Effect.succeed(Number.POSITIVE_INFINITY)
    : Effect.map(Clock.currentTimeMillis, (now) => (meta.deadline?.atMs ?? now) - now)

/**
 * The retry schedule of one turn, over the errors of its attempts. Each run of an effect retried with it starts
 * with a fresh budget. `canRetry` is asked before each retry (the stream variant answers "not after output").
 *
 * @since 0.1.0
 */
export const schedule = (
  policy: Policy,
  meta: Meta,
  canRetry: () => boolean = () => true
): Schedule.Schedule<Decision, BackendError> => scheduleOf(policy, meta, canRetry, tallyAt(0))

const scheduleOf = (
  policy: Policy,
  meta: Meta,
  canRetry: () => boolean,
  tally: Tally
): Schedule.Schedule<Decision, BackendError> =>
  Schedule.identity<BackendError>().pipe(
    Schedule.intersect(Schedule.count),
    Schedule.mapEffect(([error, retries]): Effect.Effect<Decision> =>
      Effect.zipWith(
        policy.jitter === "full" ? Random.next : Effect.succeed(1),
        remainingMs(meta),
        (random, remaining): Decision =>
          remaining > 0 && !canRetry()
            ? { _tag: "Stop", why: "output_started", kind: error.kind }
            : decide(policy, error, retries, random, remaining)
      )
    ),
    Schedule.whileOutput((decision) => decision._tag === "Retry"),
    Schedule.modifyDelay((decision) => Duration.millis(decision._tag === "Retry" ? decision.delayMs : 0)),
    Schedule.tapOutput((decision) =>
      Effect.zipRight(
        observe(decision, meta, policy.maxDelayMs),
        decision._tag === "Retry"
          ? Effect.sync(() => {
            tally.attempts++
            tally.waitedMs += decision.delayMs
          })
          : giveUp(policy, meta, tally, decision)
      )
    )
  )

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/**
 * A sentence for the final error of a turn that gave up on its own account: its retries are used up, its deadline
 * passed, the server asked for too long a wait, or nothing listens (under `onRefused: "fail"`). `undefined` when
 * the turn did not retry and did not stop early (the error alone says what happened), or stopped because output
 * had started. Each sentence starts with "Gave up" (`isGaveUpText` recognises them).
 *
 * @since 0.2.0
 */
export const summary = (outcome: Outcome): string | undefined => {
  const tried = `${outcome.attempts} attempt${outcome.attempts === 1 ? "" : "s"} in ${seconds(outcome.elapsedMs)}`
  switch (outcome.why) {
    case "budget_exhausted":
      return outcome.attempts > 1
        ? `Gave up after ${tried}: the turn's retries are used up (retry.maxRetries ${outcome.maxRetries}).`
        : undefined
    case "deadline":
      return `Gave up after ${tried}: the turn's deadline passed (turnTimeoutMs ${outcome.turnTimeoutMs ?? "?"}).`
    case "retry_after_too_long":
      return `Gave up at once: the server asked to wait ${seconds(outcome.requestedMs ?? 0)}, above retry.maxDelayMs (${outcome.maxDelayMs}).`
    case "refused":
      return `Gave up at once: nothing listens there (retry.onRefused "fail"), so another model can answer.`
    case "not_retryable":
    case "output_started":
      return undefined
  }
}

/** Whether a message holds one of `summary`'s sentences. @since 0.2.0 */
export const isGaveUpText = (text: string): boolean => /\bGave up (?:after \d+ attempts? in [\d.]+ s|at once): /.test(text)

// A wait read from the message text goes onto the error, so whoever sees the final error sees it too.
const withRequestedDelay = <E extends BackendError>(error: E): E =>
  error._tag === "BackendRejected" && error.retryAfterMs !== undefined
    ? error
    : Option.match(RetryAfter.fromError(error), { onNone: () => error, onSome: (ms) => withRetryAfterMs(error, ms) })

/**
 * Per-turn retries.
 *
 * @since 0.1.0
 */
export class TurnRetry extends Context.Tag("effect-aios/TurnRetry")<TurnRetry, TurnRetry.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace TurnRetry {
  /**
   * @since 0.1.0
   */
  export interface Service {
    readonly policy: Policy
    /**
     * Runs `effect` as one turn: retried per the policy with a fresh budget, no wait past `meta.deadline`; fails
     * with the last error.
     */
    readonly retry: <A, E extends BackendError, R>(
      effect: Effect.Effect<A, E, R>,
      meta: Meta
    ) => Effect.Effect<A, E | BackendError, R>
    /**
     * Runs `stream` as one turn, retried only while it has emitted nothing: once an element reached the
     * consumer, errors pass through unretried.
     */
    readonly retryStream: <A, E extends BackendError, R>(
      stream: Stream.Stream<A, E, R>,
      meta: Meta
    ) => Stream.Stream<A, E | BackendError, R>
  }
}

/**
 * The service for a policy (partial options are completed with the defaults). Pure.
 *
 * @since 0.1.0
 */
export const makeWith = (options: Partial<Policy> = {}): TurnRetry.Service => {
  const complete = policy(options)
  const started = Effect.map(Clock.currentTimeMillis, tallyAt)
  return {
    policy: complete,
    retry: <A, E extends BackendError, R>(effect: Effect.Effect<A, E, R>, meta: Meta) =>
      Effect.flatMap(started, (tally): Effect.Effect<A, E | BackendError, R> =>
        Effect.retry(Effect.mapError(effect, withRequestedDelay), scheduleOf(complete, meta, () => true, tally))),
    retryStream: <A, E extends BackendError, R>(stream: Stream.Stream<A, E, R>, meta: Meta) =>
      Stream.unwrap(Effect.map(started, (tally): Stream.Stream<A, E | BackendError, R> => {
        let emitted = false
        const watched = stream.pipe(
          Stream.mapError(withRequestedDelay),
          Stream.mapChunks((chunk) => {
            if (Chunk.isNonEmpty(chunk)) emitted = true
            return chunk
          })
        )
        return Stream.retry(watched, scheduleOf(complete, meta, () => !emitted, tally))
      }))
  }
}

/**
 * The service from `AiosConfig.retry`.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<TurnRetry.Service, never, AiosConfig> = Effect.map(
  AiosConfig,
  (config) => makeWith(config.retry)
)

/**
 * @since 0.1.0
 */
export const layer: Layer.Layer<TurnRetry, never, AiosConfig> = Layer.effect(TurnRetry, make)

/**
 * A layer for an explicit policy.
 *
 * @since 0.1.0
 */
export const layerWith = (options: Partial<Policy> = {}): Layer.Layer<TurnRetry> =>
  Layer.succeed(TurnRetry, makeWith(options))
