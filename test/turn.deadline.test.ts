import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Aios from "../src/Aios.js"
import * as AiosConfig from "../src/AiosConfig.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { Turn, type TurnRequest } from "../src/Turn.js"
import type * as TurnRetry from "../src/TurnRetry.js"
import { aiosStack, deadUrl } from "./util.js"

const quiet = Logger.remove(Logger.defaultLogger)

const withKernel = (options: ReferenceKernel.Options, config: AiosConfig.AiosConfigInput) =>
<A, E>(effect: Effect.Effect<A, E, Aios.Services | ReferenceKernel.ReferenceKernel>) =>
  Effect.provide(
    effect,
    aiosStack(options, config).pipe(Layer.provide(quiet))
  )

const withConfig = (config: AiosConfig.AiosConfigInput) => <A, E>(effect: Effect.Effect<A, E, Aios.Services>) =>
  Effect.provide(effect, Aios.layerWith(AiosConfig.layer(config)).pipe(Layer.orDie, Layer.provide(NodeHttpClient.layerUndici), Layer.provide(quiet)))

/** Lets real I/O (the kernel on loopback) make progress; the test's own clock stands still. */
const tick = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const until = (condition: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100_000 && !(yield* condition); i++) yield* tick
    expect(yield* condition).toBe(true)
  })

/** Waits until the turn is asleep on the test clock (a retry wait or the deadline), then moves the clock by `ms`. */
const advance = (ms: number, sleepers = 1) =>
  Effect.zipRight(until(Effect.map(TestClock.sleeps(), (s) => Chunk.size(s) >= sleepers)), TestClock.adjust(Duration.millis(ms)))

/** Runs a turn in a fiber, collecting the outcome it reports. */
const start = (request: Omit<TurnRequest, "onGiveUp">) =>
  Effect.gen(function*() {
    const outcomes: Array<TurnRetry.Outcome> = []
    const fiber = yield* Effect.fork(
      Effect.flatMap(Turn, (turn) => Stream.runCollect(turn.run({ ...request, onGiveUp: (o) => void outcomes.push(o) })))
    )
    return { fiber, outcomes }
  })

const hello: Omit<TurnRequest, "onGiveUp"> = { model: "echo", context: { messages: [{ role: "user", content: "hello" }] } }

const failure = <A, E>(exit: Option.Option<Exit.Exit<A, E>>) =>
  Option.flatMap(exit, (e) => (Exit.isFailure(e) ? Option.some(e.cause) : Option.none())).pipe(
    Option.flatMap((cause) => (cause._tag === "Fail" ? Option.some(cause.error) : Option.none())),
    Option.getOrUndefined
  )

describe("Turn: a bounded turn (turnTimeoutMs)", () => {
  it.effect("a hung kernel: the attempt is cut at the deadline, with a timeout naming turnTimeoutMs", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.script({ _tag: "Hang" })
      const { fiber, outcomes } = yield* start(hello)
      yield* until(Effect.sync(() => kernel.openQueries() === 1))
      yield* advance(4_999, 2)
      expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
      yield* TestClock.adjust(Duration.millis(1))
      const error = failure(yield* Effect.map(Fiber.await(fiber), Option.some))
      expect(error).toMatchObject({ _tag: "BackendTimeout", kind: "timeout", timeoutMs: 5_000, setting: "turnTimeoutMs" })
      expect((error as Error).message).toContain("turnTimeoutMs")
      expect(outcomes).toMatchObject([{ why: "deadline", attempts: 1, elapsedMs: 5_000, turnTimeoutMs: 5_000 }])
      // The cut interrupted the request: the kernel's hang ends with it.
      yield* until(Effect.sync(() => kernel.openQueries() === 0))
      expect(kernel.count("/query")).toBe(1)
    }).pipe(withKernel({}, { turnTimeoutMs: 5_000, requestTimeoutMs: 60_000, callTimeoutMs: 60_000 })))

  it.effect("the model-list check is inside the deadline: a hung list ends the turn, and no /query is sent", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.scriptEndpoint("/core/llms/list", { _tag: "Hang" })
      const { fiber, outcomes } = yield* start(hello)
      yield* until(Effect.sync(() => kernel.count("/core/llms/list") === 1))
      yield* advance(5_000, 2)
      const error = failure(Option.some(yield* Fiber.await(fiber)))
      expect(error).toMatchObject({ _tag: "BackendTimeout", setting: "turnTimeoutMs" })
      expect(outcomes).toMatchObject([{ why: "deadline" }])
      expect(kernel.count("/query")).toBe(0)
    }).pipe(withKernel({}, { turnTimeoutMs: 5_000, requestTimeoutMs: 60_000, callTimeoutMs: 60_000 })))

  it.effect("rate limits: a retry whose wait would end past the deadline is not started", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.script(...Array.from({ length: 5 }, () => ({ _tag: "Status", statusCode: 429 }) as const))
      const { fiber, outcomes } = yield* start(hello)
      // First attempt at 0 s, a 20 s wait (ends at 20 s, inside 30 s), second attempt; the next wait would end at 40 s.
      yield* until(Effect.sync(() => kernel.count("/query") === 1))
      yield* advance(20_000, 2)
      const exit = yield* Fiber.await(fiber)
      expect(failure(Option.some(exit))).toMatchObject({ _tag: "BackendRejected", kind: "rate_limit" })
      expect(kernel.count("/query")).toBe(2)
      expect(outcomes).toMatchObject([{ why: "deadline", attempts: 2, waitedMs: 20_000, elapsedMs: 20_000 }])
    }).pipe(withKernel({}, { turnTimeoutMs: 30_000, retry: { delayMs: 20_000, maxRetries: 5 } })))
})

describe("Turn: a refused connection (retry.onRefused)", () => {
  it.effect("by default a refused connection ends the turn at once: one attempt, outcome refused", () =>
    Effect.flatMap(Effect.promise(deadUrl), (url) =>
      Effect.gen(function*() {
        const { fiber, outcomes } = yield* start(hello)
        const exit = yield* Fiber.await(fiber)
        expect(failure(Option.some(exit))).toMatchObject({ _tag: "BackendUnreachable", detail: "ECONNREFUSED" })
        expect(outcomes).toMatchObject([{ why: "refused", attempts: 1, waitedMs: 0 }])
      }).pipe(withConfig({ baseUrl: url, retry: { transientDelayMs: 1_000 } }))))

  it.effect("onRefused \"retry\": a transient failure like any other, retried within the budget", () =>
    Effect.flatMap(Effect.promise(deadUrl), (url) =>
      Effect.gen(function*() {
        const { fiber, outcomes } = yield* start(hello)
        yield* advance(1_000, 2)
        yield* advance(2_000, 2)
        const exit = yield* Fiber.await(fiber)
        expect(failure(Option.some(exit))).toMatchObject({ _tag: "BackendUnreachable" })
        expect(outcomes).toMatchObject([{ why: "budget_exhausted", attempts: 3, waitedMs: 3_000 }])
      }).pipe(withConfig({ baseUrl: url, retry: { onRefused: "retry", maxRetries: 2, transientDelayMs: 1_000 } }))))
})
