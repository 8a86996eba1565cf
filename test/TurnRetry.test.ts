import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import * as fc from "fast-check"
import * as AiosConfig from "../src/AiosConfig.js"
import {
  type BackendError,
  BackendTimeout,
  BackendUnreachable,
  MalformedResponse,
  ModelUnknown,
  rejected
} from "../src/BackendError.js"
import * as TurnRetry from "../src/TurnRetry.js"

const url = "http://127.0.0.1:8000"
const meta = { turn: "t1", model: "gpt-4o" }

// ---------------------------------------------------------------------------------------------------------------
// Failures as the spec names them, and whether the spec says they retry.

const retrying = ["rate_limit", "rate_limit_http", "rate_limit_msg", "timeout", "unreachable", "503", "502", "500"] as const
const never = ["400", "401", "404", "not_configured", "unknown_model", "malformed", "overflow", "quota"] as const
/** A refused connection: retried only under `onRefused: "retry"`. */
type Kind = typeof retrying[number] | typeof never[number] | "refused"
const isRateLimit = (kind: Kind) => kind === "rate_limit" || kind === "rate_limit_http" || kind === "rate_limit_msg"
/** Kinds that can carry a Retry-After (header or message). */
const carriesRetryAfter = (kind: Kind) => isRateLimit(kind) || kind === "503" || kind === "500"

interface Failure {
  readonly kind: Kind
  readonly retryAfterMs: number | undefined
}

const build = ({ kind, retryAfterMs }: Failure): BackendError => {
  switch (kind) {
    case "rate_limit":
      return rejected({ url, inBody: true, status: 429, reason: "Rate Limit Exceeded for model 'gpt-4o'. Please try again later.",
        retryAfterMs
      })
    case "rate_limit_http":
      return rejected({ url, status: 429, reason: "Too Many Requests", retryAfterMs })
    case "rate_limit_msg":
      // The in-body AIOS 429 has no header; the wait is in the text.
      return rejected({ url, inBody: true, status: 429, reason: retryAfterMs === undefined ? "Rate limited." : `Rate limited. Please try again in ${retryAfterMs}ms.`
      })
    case "timeout":
      return new BackendTimeout({ url, timeoutMs: 120_000 })
    case "unreachable":
      return new BackendUnreachable({ url, detail: "ECONNRESET" })
    case "refused":
      return new BackendUnreachable({ url, detail: "ECONNREFUSED" })
    case "503":
      return rejected({ url, inBody: true, status: 503, reason: "unreachable", retryAfterMs })
    case "502":
      return rejected({ url, inBody: true, status: 502, reason: "API error" })
    case "500":
      return rejected({ url, status: 500, reason: "Internal Server Error", retryAfterMs })
    case "400":
      return rejected({ url, inBody: true, status: 400, reason: "bad request" })
    case "401":
      return rejected({ url, inBody: true, status: 401, reason: "Authentication Error" })
    case "404":
      return rejected({ url, inBody: true, status: 404, reason: "no such model" })
    case "not_configured":
      return rejected({ url, inBody: true, status: 500, reason: "Selected LLMs are not all available. Please check the available LLMs."
      })
    case "unknown_model":
      return new ModelUnknown({ url, model: "gpt-9", available: ["gpt-4o"] })
    case "malformed":
      return new MalformedResponse({ url, endpoint: "/query", issue: "body is not JSON" })
    case "overflow":
      return rejected({ url, inBody: true, status: 400, reason: "maximum context length is 8192 tokens"
      })
    case "quota":
      return rejected({ url, status: 429, reason: "quota", errorType: "insufficient_quota" })
  }
}

const failure = (kinds: ReadonlyArray<Kind>, maxRetryAfter: number): fc.Arbitrary<Failure> =>
  fc.record({
    kind: fc.constantFrom(...kinds),
    retryAfterMs: fc.option(fc.nat({ max: maxRetryAfter }), { nil: undefined })
  }).map(({ kind, retryAfterMs }) => ({ kind, retryAfterMs: carriesRetryAfter(kind) ? retryAfterMs : undefined }))

const policyArb = fc.record({
  maxRetries: fc.nat({ max: 5 }),
  delayMs: fc.nat({ max: 30_000 }),
  maxDelayMs: fc.nat({ max: 60_000 }),
  transientDelayMs: fc.nat({ max: 5_000 }),
  jitter: fc.constantFrom("none" as const, "full" as const),
  retryOn: fc.constantFrom("transient" as const, "rate_limit" as const),
  onRefused: fc.constantFrom("fail" as const, "retry" as const)
})

/** An effect that fails with `script[i]` on its i-th run (succeeds once the script is used up); logs run times. */
const scripted = (script: ReadonlyArray<BackendError>) => {
  const times: Array<number> = []
  const effect = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const error = script[times.length]
    times.push(now)
    return error === undefined ? Effect.succeed("ok" as const) : Effect.fail(error)
  })
  return { effect, times }
}

/** Runs a turn in a fiber and lets the TestClock run past every wait the policy could possibly make. */
const runTurn = <A>(turn: Effect.Effect<A, BackendError>, policy: TurnRetry.Policy) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(turn)
    yield* TestClock.adjust(Duration.millis(policy.maxRetries * policy.maxDelayMs + 1))
    const exit = yield* Fiber.poll(fiber)
    expect(Option.isSome(exit)).toBe(true)
    return Option.getOrThrow(exit)
  })

const failureOf = <A>(exit: Exit.Exit<A, BackendError>): BackendError | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** The policy's own part of the i-th wait, per the documented formula (upper bound when jittered). */
const policyWait = (p: TurnRetry.Policy, kind: Kind, i: number) => {
  const grow = (base: number) => Math.min(p.maxDelayMs, base * 2 ** i)
  return isRateLimit(kind) ? p.jitter === "full" ? grow(p.delayMs) : Math.min(p.delayMs, p.maxDelayMs) : grow(p.transientDelayMs)
}

// ---------------------------------------------------------------------------------------------------------------

describe("TurnRetry", () => {
  it.effect.prop(
    "for any errors and Retry-After values: attempts ≤ maxRetries + 1 and every wait within the bounds",
    {
      options: policyArb,
      script: fc.array(failure([...retrying, ...never, "refused"], 120_000), { maxLength: 8 }),
      seed: fc.integer()
    },
    ({ options, script, seed }) =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith(options)
        const p = service.policy
        const { effect, times } = scripted(script.map(build))
        const exit = yield* runTurn(service.retry(effect, meta), p)

        expect(times.length).toBeLessThanOrEqual(p.maxRetries + 1)
        const retries = (f: Failure) =>
          isRateLimit(f.kind) || (p.retryOn === "transient" && retrying.includes(f.kind as never)) ||
          (f.kind === "refused" && p.onRefused === "retry" && p.retryOn === "transient")
        for (let i = 0; i + 1 < times.length; i++) {
          // A retry happened after failure i: it must be retryable, within budget, and asked for no more than the cap.
          const f = script[i]!
          expect(retries(f)).toBe(true)
          expect(f.retryAfterMs ?? 0).toBeLessThanOrEqual(p.maxDelayMs)
          const waited = times[i + 1]! - times[i]!
          expect(waited).toBeGreaterThanOrEqual(f.retryAfterMs ?? 0)
          expect(waited).toBeLessThanOrEqual(p.maxDelayMs)
          if (p.jitter === "none") expect(waited).toBe(Math.max(f.retryAfterMs ?? 0, policyWait(p, f.kind, i)))
          else expect(waited).toBeLessThanOrEqual(Math.max(f.retryAfterMs ?? 0, policyWait(p, f.kind, i)))
        }
        const total = times[times.length - 1]! - times[0]!
        expect(total).toBeLessThanOrEqual(p.maxRetries * p.maxDelayMs)

        const last = times.length - 1
        if (last === script.length) {
          expect(exit).toEqual(Exit.succeed("ok"))
        } else {
          // The turn stopped at failure `last`: because it does not retry, the budget is spent, or the wait asked
          // for is above the cap. It fails with that error, carrying the requested wait.
          const f = script[last]!
          expect(!retries(f) || last === p.maxRetries || (f.retryAfterMs ?? 0) > p.maxDelayMs).toBe(true)
          const error = failureOf(exit)
          expect(error?._tag).toBe(build(f)._tag)
          if (f.retryAfterMs !== undefined) expect(error?._tag === "BackendRejected" ? error.retryAfterMs : undefined).toBe(f.retryAfterMs)
        }
      }).pipe(Effect.withRandom(Random.make(seed)))
  )

  it.effect.prop(
    "non-retryable errors are never retried, whatever the budget",
    { options: policyArb, first: failure(never, 120_000) },
    ({ options, first }) =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith({ ...options, maxRetries: options.maxRetries + 1 })
        const { effect, times } = scripted([build(first), build(first)])
        const exit = yield* runTurn(service.retry(effect, meta), service.policy)
        expect(times).toEqual([0])
        expect(exit).toEqual(Exit.fail(build(first)))
      })
  )

  it.effect.prop(
    "each turn has a fresh budget: a second turn retries fully after the first used its budget up",
    { maxRetries: fc.integer({ min: 1, max: 5 }), delayMs: fc.nat({ max: 60_000 }) },
    ({ delayMs, maxRetries }) =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith({ maxRetries, delayMs, maxDelayMs: 60_000 })
        const always = build({ kind: "rate_limit", retryAfterMs: undefined })
        for (const turn of ["first", "second"]) {
          const { effect, times } = scripted(Array.from({ length: 10 }, () => always))
          const exit = yield* runTurn(service.retry(effect, { turn }), service.policy)
          expect(exit).toEqual(Exit.fail(always))
          expect(times.length).toBe(maxRetries + 1)
          expect(times[times.length - 1]! - times[0]!).toBe(maxRetries * delayMs)
        }
      }),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect.prop(
    "interruption during a wait ends the turn within one tick",
    {
      delayMs: fc.integer({ min: 1, max: 60_000 }),
      fraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      kind: fc.constantFrom(...retrying)
    },
    ({ delayMs, fraction, kind }) =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith({ maxRetries: 3, delayMs, transientDelayMs: delayMs, maxDelayMs: 60_000 })
        const { effect, times } = scripted([build({ kind, retryAfterMs: undefined }), build({ kind, retryAfterMs: undefined })])
        const fiber = yield* Effect.fork(service.retry(effect, meta))
        const into = Math.floor(fraction * delayMs)
        yield* TestClock.adjust(Duration.millis(into))
        expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        // No clock time passed between the interrupt and the end of the turn, and no second attempt ran.
        expect(yield* Clock.currentTimeMillis).toBe(into)
        expect(times).toEqual([0])
      })
  )

  it("an AbortSignal (turned into interruption by Effect.runPromise) ends a wait at once", async () => {
    const service = TurnRetry.makeWith({ maxRetries: 3, delayMs: 20_000 })
    let attempts = 0
    let failed: () => void = () => {}
    const firstFailure = new Promise<void>((resolve) => (failed = resolve))
    const effect = Effect.suspend(() => {
      attempts++
      failed()
      return Effect.fail(build({ kind: "rate_limit", retryAfterMs: undefined }))
    })
    const controller = new AbortController()
    // The TestClock never advances here, so without the abort this would wait forever.
    const running = Effect.runPromiseExit(
      service.retry(effect, meta).pipe(
        Effect.provide(Layer.merge(TestContext.TestContext, Logger.remove(Logger.defaultLogger)))
      ),
      { signal: controller.signal }
    )
    await firstFailure
    controller.abort()
    const exit = await running
    expect(Exit.isInterrupted(exit)).toBe(true)
    expect(attempts).toBe(1)
  })

  it.effect.prop(
    "a Retry-After above the cap is not waited for: the turn fails at once with the requested delay on the error",
    {
      maxDelayMs: fc.nat({ max: 60_000 }),
      over: fc.integer({ min: 1, max: 600_000 }),
      kind: fc.constantFrom<Kind>("rate_limit", "rate_limit_http", "rate_limit_msg", "503", "500")
    },
    ({ kind, maxDelayMs, over }) =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith({ maxRetries: 3, maxDelayMs })
        const requested = maxDelayMs + over
        const { effect, times } = scripted([build({ kind, retryAfterMs: requested })])
        const fiber = yield* Effect.fork(service.retry(effect, meta))
        yield* TestClock.adjust(Duration.zero)
        const exit = yield* Fiber.poll(fiber)
        expect(times).toEqual([0])
        const error = Option.isSome(exit) ? failureOf(exit.value) : undefined
        expect(error?._tag).toBe(build({ kind, retryAfterMs: requested })._tag)
        expect(error?._tag === "BackendRejected" ? error.retryAfterMs : undefined).toBe(requested)
      })
  )

  it.effect("rate limits wait max(delayMs, Retry-After): 20 s by default, longer when the server says so", () =>
    Effect.gen(function*() {
      const service = TurnRetry.makeWith({})
      expect(service.policy).toMatchObject(AiosConfig.defaults.retry)
      const { effect, times } = scripted([
        build({ kind: "rate_limit", retryAfterMs: undefined }),
        build({ kind: "rate_limit", retryAfterMs: 5_000 }),
        build({ kind: "rate_limit_msg", retryAfterMs: 45_000 })
      ])
      const exit = yield* runTurn(service.retry(effect, meta), service.policy)
      expect(exit).toEqual(Exit.succeed("ok"))
      const d = AiosConfig.defaults.retry.delayMs
      expect(times).toEqual([0, d, 2 * d, 2 * d + 45_000])
    }))

  it.effect("transient failures back off exponentially from transientDelayMs, bounded by maxDelayMs", () =>
    Effect.gen(function*() {
      const service = TurnRetry.makeWith({ maxRetries: 4, transientDelayMs: 10_000, maxDelayMs: 30_000 })
      const { effect, times } = scripted(
        (["timeout", "unreachable", "503", "502"] as const).map((kind) => build({ kind, retryAfterMs: undefined }))
      )
      const exit = yield* runTurn(service.retry(effect, meta), service.policy)
      expect(exit).toEqual(Exit.succeed("ok"))
      expect(times).toEqual([0, 10_000, 30_000, 60_000, 90_000])
    }))

  it.effect.prop(
    "full jitter draws from the Random service: the same seed gives the same waits",
    { seed: fc.integer(), n: fc.integer({ min: 1, max: 5 }) },
    ({ n, seed }) =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith({ maxRetries: n, delayMs: 1_000, maxDelayMs: 60_000, jitter: "full" })
        // A fresh generator per run: the same seed must give the same draws.
        const run = Effect.suspend(() =>
          Effect.gen(function*() {
          const start = yield* Clock.currentTimeMillis
          const { effect, times } = scripted(Array.from({ length: n }, () => build({ kind: "rate_limit", retryAfterMs: undefined })))
          yield* runTurn(service.retry(effect, meta), service.policy)
          return times.map((t) => t - start)
        }).pipe(Effect.withRandom(Random.make(seed))))
        const first = yield* run
        const second = yield* run
        expect(second).toEqual(first)
        first.slice(1).forEach((t, i) => expect(t - first[i]!).toBeLessThanOrEqual(Math.min(60_000, 1_000 * 2 ** i)))
      }),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect("logs each retry with turn, attempt, kind and delay, and counts it by kind", () =>
    Effect.gen(function*() {
      const logs: Array<{ level: string; annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ annotations, logLevel }) => {
        logs.push({ level: logLevel.label, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      })
      const counter = (kind: string) => Metric.value(Metric.tagged(TurnRetry.retriesTotal, "kind", kind))
      const before = { rate: (yield* counter("rate_limit")).count, timeout: (yield* counter("timeout")).count }

      const service = TurnRetry.makeWith({ maxRetries: 3, delayMs: 1_000, transientDelayMs: 500 })
      const { effect } = scripted([
        build({ kind: "rate_limit", retryAfterMs: undefined }),
        build({ kind: "timeout", retryAfterMs: undefined })
      ])
      yield* runTurn(service.retry(effect, { turn: "turn-7", model: "gpt-4o" }), service.policy).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      expect(logs).toEqual([
        {
          level: "WARN",
          annotations: { turn: "turn-7", model: "gpt-4o", attempt: 1, kind: "rate_limit", delayMs: 1_000 }
        },
        {
          level: "WARN",
          annotations: { turn: "turn-7", model: "gpt-4o", attempt: 2, kind: "timeout", delayMs: 1_000 }
        }
      ])
      expect((yield* counter("rate_limit")).count - before.rate).toBe(1)
      expect((yield* counter("timeout")).count - before.timeout).toBe(1)
    }))

  it.effect("retryOn: a predicate decides; \"rate_limit\" retries only rate limits", () =>
    Effect.gen(function*() {
      const onlyRate = TurnRetry.makeWith({ retryOn: "rate_limit", transientDelayMs: 1 })
      const a = scripted([build({ kind: "timeout", retryAfterMs: undefined })])
      yield* runTurn(onlyRate.retry(a.effect, meta), onlyRate.policy)
      expect(a.times).toEqual([0])

      const custom = TurnRetry.makeWith({ retryOn: (_, kind) => kind === "bad_request", transientDelayMs: 7 })
      const b = scripted([build({ kind: "400", retryAfterMs: undefined })])
      const exit = yield* runTurn(custom.retry(b.effect, meta), custom.policy)
      expect(exit).toEqual(Exit.succeed("ok"))
      expect(b.times[1]! - b.times[0]!).toBe(7)
    }))

  describe("retryStream", () => {
    it.effect.prop(
      "retries while nothing was emitted, then streams everything once",
      { failures: fc.nat({ max: 3 }), elements: fc.array(fc.integer(), { minLength: 1, maxLength: 5 }) },
      ({ elements, failures }) =>
        Effect.gen(function*() {
          const service = TurnRetry.makeWith({ maxRetries: 3, delayMs: 1_000 })
          let attempts = 0
          const upstream = Stream.suspend(() =>
            attempts++ < failures
              ? Stream.fail(build({ kind: "rate_limit", retryAfterMs: undefined }))
              : Stream.fromIterable(elements)
          )
          const fiber = yield* Effect.fork(Stream.runCollect(service.retryStream(upstream, meta)))
          yield* TestClock.adjust(Duration.seconds(3))
          const exit = yield* Fiber.poll(fiber)
          expect(exit.pipe(Option.map(Exit.map(Chunk.toReadonlyArray)))).toEqual(Option.some(Exit.succeed(elements)))
          expect(attempts).toBe(failures + 1)
        })
    )

    it.effect.prop(
      "after the first element reached the consumer, errors pass through unretried",
      { emitted: fc.array(fc.integer(), { minLength: 1, maxLength: 5 }), kind: fc.constantFrom(...retrying) },
      ({ emitted, kind }) =>
        Effect.gen(function*() {
          const service = TurnRetry.makeWith({ maxRetries: 3, delayMs: 1_000, transientDelayMs: 1_000 })
          const error = build({ kind, retryAfterMs: undefined })
          let attempts = 0
          const upstream = Stream.suspend(() => {
            attempts++
            return Stream.concat(Stream.fromIterable(emitted), Stream.fail(error))
          })
          const received: Array<number> = []
          const fiber = yield* Effect.fork(
            service.retryStream(upstream, meta).pipe(
              Stream.runForEach((n) => Effect.sync(() => received.push(n))),
              Effect.either
            )
          )
          yield* TestClock.adjust(Duration.zero)
          const exit = yield* Fiber.poll(fiber)
          expect(exit).toEqual(Option.some(Exit.succeed(Either.left(error))))
          expect(received).toEqual(emitted)
          expect(attempts).toBe(1)
          expect(yield* Clock.currentTimeMillis).toBe(0)
        })
    )
  })

  describe("deadline and outcome", () => {
    /**
     * A deadline `ms` from now on the clock, the outcomes reported to it, and `honour`: an attempt ended by the
     * deadline with its error, as a backend given `Request.deadline` ends its call.
     */
    const withDeadline = (ms: number) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const outcomes: Array<TurnRetry.Outcome> = []
        const expired = new BackendTimeout({ url, timeoutMs: ms, setting: "turnTimeoutMs" })
        const m: TurnRetry.Meta = {
          turn: "t-deadline",
          deadline: { atMs: now + ms, timeoutMs: ms },
          onGiveUp: (o) => void outcomes.push(o)
        }
        const honour = <A, E>(attempt: Effect.Effect<A, E>) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.timeoutFail(attempt, { duration: Duration.millis(Math.max(0, now + ms - at)), onTimeout: () => expired }))
        return { m, outcomes, expired, honour }
      })

    it.effect.prop(
      "no wait ends past the deadline, an attempt ended by it ends the turn, and a failed turn reports its outcome once",
      {
        options: policyArb,
        script: fc.array(failure([...retrying, ...never, "refused"], 120_000), { maxLength: 8 }),
        deadlineMs: fc.integer({ min: 1, max: 200_000 }),
        hang: fc.boolean()
      },
      ({ deadlineMs, hang, options, script }) =>
        Effect.gen(function*() {
          const service = TurnRetry.makeWith(options)
          const { expired, honour, m, outcomes } = yield* withDeadline(deadlineMs)
          const { effect, times } = scripted(script.map(build))
          const attempt = honour(Effect.flatMap(effect, (ok) => (hang ? Effect.never : Effect.succeed(ok))))
          const fiber = yield* Effect.fork(service.retry(attempt, m))
          yield* TestClock.adjust(Duration.millis(deadlineMs))
          const exit = yield* Fiber.poll(fiber)
          // Whatever happened, the turn is over by its deadline.
          expect(Option.isSome(exit)).toBe(true)
          expect(times.every((t) => t < deadlineMs)).toBe(true)
          const done = Option.getOrThrow(exit)
          if (Exit.isSuccess(done)) {
            expect(outcomes).toEqual([])
            return
          }
          expect(outcomes).toHaveLength(1)
          const outcome = outcomes[0]!
          expect(outcome.attempts).toBe(times.length)
          expect(outcome.elapsedMs).toBeLessThanOrEqual(deadlineMs)
          expect(outcome.waitedMs).toBeLessThanOrEqual(outcome.elapsedMs)
          expect(outcome.turnTimeoutMs).toBe(deadlineMs)
          if (failureOf(done) === expired) expect(outcome.why).toBe("deadline")
          if (hang && times.length > script.length) expect(failureOf(done)).toBe(expired)
        })
    )

    it.effect("a stream ended by the deadline after it emitted: the deadline's error, and the outcome says deadline", () =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith({ maxRetries: 3 })
        const { expired, honour, m, outcomes } = yield* withDeadline(5_000)
        const received: Array<number> = []
        const fiber = yield* Effect.fork(
          service.retryStream(Stream.concat(Stream.make(1, 2), Stream.fromEffect(honour(Effect.never))), m).pipe(
            Stream.runForEach((n) => Effect.sync(() => received.push(n))),
            Effect.either
          )
        )
        yield* TestClock.adjust(Duration.millis(4_999))
        expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
        yield* TestClock.adjust(Duration.millis(1))
        expect(yield* Fiber.join(fiber)).toEqual(Either.left(expired))
        expect(received).toEqual([1, 2])
        expect(outcomes).toMatchObject([{ why: "deadline", kind: "timeout", attempts: 1, elapsedMs: 5_000, waitedMs: 0 }])
      }))

    it.effect("a retry whose wait would not end before the deadline is not started", () =>
      Effect.gen(function*() {
        const service = TurnRetry.makeWith({ maxRetries: 5, delayMs: 20_000 })
        const { m, outcomes } = yield* withDeadline(50_000)
        const rate = build({ kind: "rate_limit", retryAfterMs: undefined })
        const { effect, times } = scripted(Array.from({ length: 6 }, () => rate))
        const fiber = yield* Effect.fork(service.retry(effect, m))
        yield* TestClock.adjust(Duration.millis(50_000))
        // 0 and 20 s fit; the wait from 40 s would end at 60 s, past the deadline: the turn stops at 40 s.
        expect(times).toEqual([0, 20_000, 40_000])
        expect(failureOf(yield* Fiber.await(fiber))).toBe(rate)
        expect(outcomes).toEqual([{
          kind: "rate_limit",
          why: "deadline",
          attempts: 3,
          waitedMs: 40_000,
          elapsedMs: 40_000,
          maxRetries: 5,
          maxDelayMs: 60_000,
          turnTimeoutMs: 50_000,
          requestedMs: undefined
        }])
        expect(TurnRetry.summary(outcomes[0]!)).toBe(
          "Gave up after 3 attempts in 40.0 s: the turn's deadline passed (turnTimeoutMs 50000)."
        )
      }))

    it.effect("a refused connection: not retried by default (outcome: refused), retried under onRefused: retry", () =>
      Effect.gen(function*() {
        const refused = build({ kind: "refused", retryAfterMs: undefined })
        const outcomes: Array<TurnRetry.Outcome> = []
        const m: TurnRetry.Meta = { turn: "t", onGiveUp: (o) => void outcomes.push(o) }
        const byDefault = TurnRetry.makeWith({ transientDelayMs: 1_000 })
        const a = scripted([refused, refused])
        yield* runTurn(byDefault.retry(a.effect, m), byDefault.policy)
        expect(a.times).toEqual([0])
        expect(outcomes.map((o) => [o.why, o.attempts])).toEqual([["refused", 1]])
        expect(TurnRetry.summary(outcomes[0]!)).toContain("Gave up at once: nothing listens there")

        const patient = TurnRetry.makeWith({ transientDelayMs: 1_000, onRefused: "retry" })
        const b = scripted([refused, refused])
        const exit = yield* runTurn(patient.retry(b.effect, m), patient.policy)
        expect(exit).toEqual(Exit.succeed("ok"))
        expect(b.times.length).toBe(3)
        // A dropped connection (not a refusal) is transient either way.
        const c = scripted([build({ kind: "unreachable", retryAfterMs: undefined })])
        expect(yield* runTurn(byDefault.retry(c.effect, m), byDefault.policy)).toEqual(Exit.succeed("ok"))
      }))

    it.effect("used-up retries: the outcome counts attempts and time, and the summary says so", () =>
      Effect.gen(function*() {
        const outcomes: Array<TurnRetry.Outcome> = []
        const service = TurnRetry.makeWith({ maxRetries: 3, delayMs: 20_000 })
        const rate = build({ kind: "rate_limit", retryAfterMs: undefined })
        const { effect } = scripted(Array.from({ length: 4 }, () => rate))
        yield* runTurn(service.retry(effect, { turn: "t", onGiveUp: (o) => void outcomes.push(o) }), service.policy)
        expect(outcomes).toMatchObject([{ why: "budget_exhausted", attempts: 4, waitedMs: 60_000, elapsedMs: 60_000 }])
        expect(TurnRetry.summary(outcomes[0]!)).toBe(
          "Gave up after 4 attempts in 60.0 s: the turn's retries are used up (retry.maxRetries 3)."
        )
        expect(TurnRetry.isGaveUpText(`Rate limited. ${TurnRetry.summary(outcomes[0]!)}`)).toBe(true)
        // No retry in the budget: nothing to say beyond the error itself.
        const none = TurnRetry.makeWith({ maxRetries: 0 })
        const once = scripted([rate])
        yield* runTurn(none.retry(once.effect, { turn: "t", onGiveUp: (o) => void outcomes.push(o) }), none.policy)
        expect(outcomes[1]).toMatchObject({ why: "budget_exhausted", attempts: 1 })
        expect(TurnRetry.summary(outcomes[1]!)).toBeUndefined()
      }))
  })

  it.effect("TurnRetry.layer reads the policy from AiosConfig", () =>
    Effect.gen(function*() {
      const service = yield* TurnRetry.TurnRetry
      expect(service.policy).toMatchObject({ maxRetries: 1, delayMs: 5, maxDelayMs: 10, jitter: "full" })
      expect(service.policy.transientDelayMs).toBe(TurnRetry.defaultTransientDelayMs)
    }).pipe(
      Effect.provide(
        TurnRetry.layer.pipe(
          Layer.provide(AiosConfig.layer({ retry: { maxRetries: 1, delayMs: 5, maxDelayMs: 10, jitter: "full" } }))
        )
      )
    ))

  it("invalid policy numbers fall back to the defaults instead of throwing", () => {
    const p = TurnRetry.policy({ maxRetries: -1, delayMs: Number.NaN, maxDelayMs: Number.POSITIVE_INFINITY })
    expect(p).toMatchObject(AiosConfig.defaults.retry)
  })
})
