/**
 * Streams that never end (issue 17): a body trickled a byte at a time, keep-alive forever, a final chunk with no
 * `[DONE]`. The idle timeout (`requestTimeoutMs`) resets on every byte; the whole-call deadline (`callTimeoutMs`)
 * does not, so no byte pattern keeps a call open past it. A reply whose final `finish_reason` came is complete:
 * without `[DONE]` it ends as a success after the grace.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Backend from "../src/Backend.js"
import * as Sse from "../src/internal/openAi/sse.js"
import * as ReferenceOpenAi from "../src/testing/internal/openAi.js"
import { ReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { fails, partial, streamOf, user, v1 } from "./OpenAiBackend.harness.js"
import { backendStack } from "./util.js"

const fresh = Effect.flatMap(ReferenceKernel, (k) => Effect.sync(() => k.reset()))

/** Polls, bounded, until the kernel has nothing open: an aborted request ends on the server side too. */
const noneOpen = Effect.flatMap(ReferenceKernel, (kernel) =>
  Effect.sync(() => kernel.openQueries()).pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n === 0, times: 300 }),
    Effect.zipRight(Effect.sync(() => kernel.openQueries()))
  ))

/** Advances the TestClock in `step`s until `fiber` is done. */
const runClockUntilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: number) =>
  TestClock.adjust(step).pipe(
    Effect.zipRight(Fiber.poll(fiber)),
    Effect.repeat({ until: (exit) => exit._tag === "Some", times: 2_000 }),
    Effect.zipRight(Fiber.join(fiber))
  )

const usage = (text: string) => {
  const u = ReferenceOpenAi.usageFor(user(text), { text, toolCalls: [] })
  return Backend.reportedUsage(u.prompt_tokens, u.completion_tokens)
}

// Real time, short limits: the server trickles in real time, and the point is that the idle timeout keeps
// being reset by it.
// The idle timeout is 50 pauses long, so a loaded machine's scheduling does not fire it by accident.
layer(v1({}, { requestTimeoutMs: 1_000, callTimeoutMs: 2_500 }), { excludeTestServices: true })("/v1 in real time", (it) => {
  it.effect("an SSE body trickled 1 byte every 20 ms ends at callTimeoutMs, not later, and the request is aborted", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Trickle", intervalMs: 20 })
      const { error } = yield* partial((yield* Backend.Backend).stream({ model: "echo", messages: user("a reply long enough") }))
      // The idle timeout (1 s) never fired: bytes kept coming, until the deadline.
      expect(error).toMatchObject({ _tag: "BackendTimeout", setting: "callTimeoutMs", timeoutMs: 2_500, model: "echo" })
      expect(error?.message).toContain("did not finish answering for model 'echo' within 2500 ms (callTimeoutMs")
      expect(yield* noneOpen).toBe(0)
    }))

  it.effect("keep-alive comments every 20 ms, forever, end at callTimeoutMs", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "KeepAlive", intervalMs: 20, afterChunks: 1 })
      const { emitted, error } = yield* partial((yield* Backend.Backend).stream({ model: "echo", messages: user("abcdefgh") }))
      expect(emitted).toEqual([{ _tag: "TextDelta", text: "abcd" }])
      expect(error).toMatchObject({ _tag: "BackendTimeout", setting: "callTimeoutMs" })
      expect(yield* noneOpen).toBe(0)
    }))

  it.effect("a trickle slower than the idle timeout still ends at requestTimeoutMs", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "Trickle", intervalMs: 5_000 })
      const error = yield* fails(streamOf({ model: "echo", messages: user("x") }))
      expect(error).toMatchObject({ _tag: "BackendTimeout", timeoutMs: 1_000 })
      expect(error._tag === "BackendTimeout" && error.setting).toBe("requestTimeoutMs")
    }))
})

layer(v1({}, { requestTimeoutMs: 60_000, callTimeoutMs: 5_000 }))("/v1 on the TestClock", (it) => {
  it.effect("the deadline counts from the start of the call, whatever arrives (keep-alive, TestClock)", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "KeepAlive", intervalMs: 5, afterChunks: 1 })
      const fiber = yield* Effect.fork(fails(streamOf({ model: "echo", messages: user("abcdefgh") })))
      const error = yield* runClockUntilDone(fiber, 250)
      expect(error).toMatchObject({ _tag: "BackendTimeout", setting: "callTimeoutMs", timeoutMs: 5_000 })
    }))

  it.effect("a turn's deadline sooner than callTimeoutMs ends the call under the same timer, naming turnTimeoutMs", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "KeepAlive", intervalMs: 5, afterChunks: 1 })
      const startedAt = yield* Clock.currentTimeMillis
      const deadline = { atMs: startedAt + 2_000, timeoutMs: 3_000 }
      const fiber = yield* Effect.fork(fails(streamOf({ model: "echo", messages: user("abcdefgh"), deadline })))
      const error = yield* runClockUntilDone(fiber, 250)
      expect(error).toMatchObject({ _tag: "BackendTimeout", setting: "turnTimeoutMs", timeoutMs: 3_000 })
      expect((yield* Clock.currentTimeMillis) - startedAt).toBeLessThan(2_250)
    }))

  it.effect("the final finish_reason and usage, then an open stream with no [DONE]: a success after the grace", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "OpenEnd" })
      const backend = yield* Backend.Backend
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Stream.runCollect(
          backend.stream({ model: "echo", messages: user("complete") }).pipe(Stream.tap(() => Deferred.succeed(first, undefined)))
        )
      )
      yield* Deferred.await(first)
      const chunks = [...(yield* runClockUntilDone(fiber, 100))]
      expect(chunks.map((c) => (c._tag === "TextDelta" ? c.text : "")).join("")).toBe("complete")
      expect(chunks.at(-1)).toEqual({ _tag: "Finish", reason: "stop", usage: usage("complete") })
      expect(chunks.filter((c) => c._tag === "Finish").length).toBe(1)
    }))

  it.effect("…and without usage: the same, Finish with no usage", () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "OpenEnd", usage: false })
      const backend = yield* Backend.Backend
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Stream.runCollect(backend.stream({ model: "echo", messages: user("no usage") }).pipe(Stream.tap(() => Deferred.succeed(first, undefined))))
      )
      yield* Deferred.await(first)
      const chunks = [...(yield* runClockUntilDone(fiber, 100))]
      expect(chunks.at(-1)).toEqual({ _tag: "Finish", reason: "stop", usage: undefined })
    }))

  it.effect(`only the clock ends an open stream: it waits for the ${Sse.finishGraceMs} ms grace on the Clock`, () =>
    Effect.gen(function*() {
      yield* fresh
      ;(yield* ReferenceKernel).scriptEndpoint("/v1/chat/completions", { _tag: "OpenEnd" })
      const backend = yield* Backend.Backend
      // The stream parks on the body; the Finish chunk's state arrives with it.
      const text = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Stream.runCollect(backend.stream({ model: "echo", messages: user("g") }).pipe(Stream.tap(() => Deferred.succeed(text, undefined))))
      )
      yield* Deferred.await(text)
      // Whatever arrives now (the finish and usage chunks) comes in real time; the TestClock has not moved.
      expect(yield* Fiber.poll(fiber)).toEqual(expect.objectContaining({ _tag: "None" }))
      const chunks = [...(yield* runClockUntilDone(fiber, Sse.finishGraceMs / 10))]
      expect(chunks.at(-1)?._tag).toBe("Finish")
    }))

  it.effect("a normal stream still ends at [DONE] with no wait", () =>
    Effect.gen(function*() {
      yield* fresh
      const chunks = yield* streamOf({ model: "echo", messages: user("done") })
      expect(chunks.at(-1)).toEqual({ _tag: "Finish", reason: "stop", usage: usage("done") })
    }))
})

describe("AIOS", () => {
  layer(backendStack({}, { requestTimeoutMs: 300, callTimeoutMs: 200 }), { excludeTestServices: true })("real time", (it) => {
    it.effect("a /query body trickled a byte at a time ends at the shorter limit, callTimeoutMs", () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).script({ _tag: "Trickle", intervalMs: 20 })
        const error = yield* fails(Backend.call({ model: "echo", messages: user("x") }))
        expect(error).toMatchObject({ _tag: "BackendTimeout", setting: "callTimeoutMs", timeoutMs: 200 })
      }))
  })

  layer(backendStack({}, { requestTimeoutMs: 5_000, callTimeoutMs: 60_000 }))("TestClock", (it) => {
    it.effect("keep-alive whitespace forever ends at requestTimeoutMs (the whole AIOS call)", () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).script({ _tag: "KeepAlive", intervalMs: 5 })
        const fiber = yield* Effect.fork(fails(Backend.call({ model: "echo", messages: user("x") })))
        const error = yield* runClockUntilDone(fiber, 500)
        expect(error).toMatchObject({ _tag: "BackendTimeout", timeoutMs: 5_000 })
        expect(error._tag === "BackendTimeout" && error.setting).toBe("requestTimeoutMs")
      }))

    it.effect("a turn's deadline sooner than both limits ends the call, naming turnTimeoutMs", () =>
      Effect.gen(function*() {
        yield* fresh
        ;(yield* ReferenceKernel).script({ _tag: "KeepAlive", intervalMs: 5 })
        const startedAt = yield* Clock.currentTimeMillis
        const deadline = { atMs: startedAt + 2_000, timeoutMs: 3_000 }
        const fiber = yield* Effect.fork(fails(Backend.call({ model: "echo", messages: user("x"), deadline })))
        const error = yield* runClockUntilDone(fiber, 500)
        expect(error).toMatchObject({ _tag: "BackendTimeout", setting: "turnTimeoutMs", timeoutMs: 3_000 })
        expect((yield* Clock.currentTimeMillis) - startedAt).toBeLessThan(2_500)
      }))
  })
})
