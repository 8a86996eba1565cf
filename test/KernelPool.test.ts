/**
 * The kernel pool against several real ReferenceKernels on loopback ports, killed and restarted mid-run: routing
 * (models, fewest in flight), moves within a turn, ejection and the half-open probe (TestClock), what does not
 * move (429, 4xx, errors after output), the union of models, the status, and the wiring through `Aios`.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import * as Aios from "../src/Aios.js"
import * as AiosConfig from "../src/AiosConfig.js"
import * as Backend from "../src/Backend.js"
import * as KernelPool from "../src/KernelPool.js"
import * as ModelCatalog from "../src/ModelCatalog.js"
import * as SharedState from "../src/SharedState.js"
import { type Handle, type Options, startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import * as Turn from "../src/Turn.js"
import * as TurnRetry from "../src/TurnRetry.js"

const EJECT_MS = 30_000

/** A reference kernel for the test's scope; `restart` brings a killed one back on the same port. */
const kernel = (options: Options = {}): Effect.Effect<{ current: Handle; kill: Effect.Effect<void>; restart: Effect.Effect<void> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const box = { current: yield* Effect.promise(() => startReferenceKernel(options)) }
    yield* Effect.addFinalizer(() => Effect.promise(() => box.current.close()))
    return Object.assign(box, {
      kill: Effect.promise(() => box.current.close()),
      restart: Effect.promise(async () => {
        box.current = await startReferenceKernel({ ...options, port: box.current.port })
      })
    })
  })

type Services = Turn.Turn | ModelCatalog.ModelCatalog | Backend.Backend | KernelPool.KernelPool | SharedState.SharedState

/** The stack `Aios` builds, over a pool of `urls` (with `KernelPool` itself in reach). */
const poolStack = (urls: ReadonlyArray<string>, config: AiosConfig.AiosConfigInput = {}): Layer.Layer<Services> =>
  Turn.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(ModelCatalog.layer, TurnRetry.layer)),
    Layer.provideMerge(KernelPool.layer),
    Layer.provideMerge(Layer.mergeAll(
      Layer.orDie(AiosConfig.layer({ kernels: [...urls], pool: { ejectMs: EJECT_MS }, requestTimeoutMs: 5_000, ...config })),
      SharedState.layerMemory,
      NodeHttpClient.layerUndici
    ))
  )

const say = (content: string, model = "echo"): Backend.Request => ({ model, messages: [{ role: "user", content }] })

/** One turn through `Turn`, its text, and how many times `TurnRetry` retried it. */
const turn = (content: string, model = "echo") =>
  Effect.gen(function*() {
    let retries = 0
    const events = yield* Turn.run({
      model,
      context: { messages: [{ role: "user", content }] },
      onRetry: () => {
        retries++
      }
    }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
    return { text: events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join(""), retries }
  })

const stateOf = (url: string) =>
  Effect.flatMap(KernelPool.KernelPool, (pool) => Effect.map(pool.states, (states) => states.find((s) => s.url === url)!))

/**
 * Runs `check` until it holds, a few real milliseconds apart (bounded): for work the pool does in the background
 * over real HTTP. The check itself runs on the test's clock.
 */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < 400; i++) {
      if (yield* check) return
      yield* TestServices.provideLive(Effect.sleep("5 millis"))
    }
    return yield* Effect.dieMessage("the condition did not hold within 2 s")
  })

describe("KernelPool", () => {
  it.scoped("routes each model to a kernel that lists it; the model list is the union", () =>
    Effect.gen(function*() {
      const a = yield* kernel({ models: [{ name: "alpha" }, { name: "shared" }] })
      const b = yield* kernel({ models: [{ name: "beta" }, { name: "shared", backend: "other" }] })
      yield* Effect.gen(function*() {
        const models = yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
        expect(models.map((m) => m.name)).toEqual(["alpha", "shared", "beta"])
        // The first kernel's entry wins a duplicate name.
        expect(models.find((m) => m.name === "shared")?.backend).toBe("reference")
        for (let i = 0; i < 4; i++) {
          expect((yield* Backend.call(say(`a${i}`, "alpha"))).text).toBe(`a${i}`)
          expect((yield* Backend.call(say(`b${i}`, "beta"))).text).toBe(`b${i}`)
        }
        const sent = (k: Handle) => k.requests("/query").map((r) => JSON.stringify(r.body).match(/"name":"(\w+)"/)?.[1])
        expect(sent(a.current)).toEqual(["alpha", "alpha", "alpha", "alpha"])
        expect(sent(b.current)).toEqual(["beta", "beta", "beta", "beta"])
        // A model both serve spreads over both.
        for (let i = 0; i < 4; i++) yield* Backend.call(say("s", "shared"))
        expect([a.current.count("/query"), b.current.count("/query")]).toEqual([6, 6])
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
    }))

  it.scoped("a kernel whose model list fails is asked again only after the TTL, not on every call", () =>
    Effect.gen(function*() {
      const a = yield* kernel()
      const b = yield* kernel()
      a.current.scriptEndpoint("/core/llms/list", ...Array.from({ length: 5 }, () => ({ _tag: "Malformed" }) as const))
      yield* Effect.gen(function*() {
        const models = yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
        expect(models.map((m) => m.name)).toEqual(["echo", "tool-user"])
        for (let i = 0; i < 5; i++) yield* Backend.call(say(`c${i}`))
        expect(a.current.count("/core/llms/list")).toBe(1)
        expect(b.current.count("/query")).toBe(5)
        // A malformed list is not the kernel being down: it stays in the pool.
        expect((yield* stateOf(a.current.url)).health).toBe("healthy")
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
    }))

  it.scoped("a call goes to the kernel with the fewest calls in flight", () =>
    Effect.gen(function*() {
      const a = yield* kernel({ script: [{ _tag: "Hang" }] })
      const b = yield* kernel()
      yield* Effect.gen(function*() {
        yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
        // Both idle: the first call goes to the first kernel, and hangs there.
        const stuck = yield* Effect.fork(Backend.call(say("stuck")))
        yield* eventually(Effect.sync(() => a.current.openQueries() === 1))
        expect((yield* stateOf(a.current.url)).inFlight).toBe(1)
        // Round-robin would alternate; fewest-in-flight sends every later call to the idle kernel.
        for (let i = 0; i < 6; i++) yield* Backend.call(say(`n${i}`))
        expect([a.current.count("/query"), b.current.count("/query")]).toEqual([1, 6])
        yield* Fiber.interrupt(stuck)
        expect((yield* stateOf(a.current.url)).inFlight).toBe(0)
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
    }))

  it.scoped("a kernel killed mid-call costs no failed turn: the call moves at once, no retry", () =>
    Effect.gen(function*() {
      const a = yield* kernel({ script: [{ _tag: "Hang" }] })
      const b = yield* kernel()
      yield* Effect.gen(function*() {
        const running = yield* Effect.fork(turn("survive"))
        yield* eventually(Effect.sync(() => a.current.openQueries() === 1))
        yield* a.kill
        expect(yield* Fiber.join(running)).toEqual({ text: "survive", retries: 0 })
        expect((yield* stateOf(a.current.url)).health).toBe("ejected")
        // Later turns go to the live kernel, without retries either.
        for (let i = 0; i < 5; i++) expect(yield* turn(`t${i}`)).toEqual({ text: `t${i}`, retries: 0 })
        expect(b.current.count("/query")).toBe(6)
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
    }))

  it.scoped("kernel failures (5xx, in-body 503, a dropped connection, a timeout) move the call and eject the kernel", () =>
    Effect.gen(function*() {
      const a = yield* kernel()
      const b = yield* kernel()
      const faults = [
        { _tag: "Http", status: 500 },
        { _tag: "Status", statusCode: 503 },
        { _tag: "Reset" }
      ] as const
      for (const fault of faults) {
        yield* Effect.gen(function*() {
          yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
          a.current.script(fault)
          expect((yield* Backend.call(say(fault._tag))).text).toBe(fault._tag)
          expect((yield* stateOf(a.current.url)).health).toBe("ejected")
        }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
      }
      // A hung kernel: the client timeout (TestClock) moves the call.
      yield* Effect.gen(function*() {
        yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
        a.current.script({ _tag: "Hang" })
        const call = yield* Effect.fork(Backend.call(say("late")))
        yield* eventually(Effect.sync(() => a.current.openQueries() === 1))
        yield* TestClock.adjust("5 seconds")
        expect((yield* Fiber.join(call)).text).toBe("late")
        expect((yield* stateOf(a.current.url)).health).toBe("ejected")
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
      expect(b.current.count("/query")).toBe(4)
    }))

  it.scoped("a rate limit (429) or a 4xx does not move and does not eject: it is the provider's", () =>
    Effect.gen(function*() {
      const a = yield* kernel()
      const b = yield* kernel()
      yield* Effect.gen(function*() {
        yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
        a.current.script({ _tag: "Status", statusCode: 429 })
        const limited = yield* Effect.flip(Backend.call(say("x")))
        expect(limited).toMatchObject({ _tag: "BackendRejected", kind: "rate_limit", url: a.current.url })
        b.current.script({ _tag: "Status", statusCode: 400 })
        const refused = yield* Effect.flip(Backend.call(say("y")))
        expect(refused).toMatchObject({ _tag: "BackendRejected", kind: "bad_request", url: b.current.url })
        expect([a.current.count("/query"), b.current.count("/query")]).toEqual([1, 1])
        expect((yield* stateOf(a.current.url)).health).toBe("healthy")
        expect((yield* stateOf(b.current.url)).health).toBe("healthy")
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
    }))

  it.scoped("an ejected kernel gets calls again only after a successful /status probe (TestClock)", () =>
    Effect.gen(function*() {
      const a = yield* kernel()
      const b = yield* kernel()
      yield* a.kill
      yield* Effect.gen(function*() {
        for (let i = 0; i < 3; i++) expect(yield* turn(`t${i}`)).toEqual({ text: `t${i}`, retries: 0 })
        expect((yield* stateOf(a.current.url)).health).toBe("ejected")
        yield* a.restart
        // Back up, but still cooling down: no traffic, no probe.
        yield* TestClock.adjust(EJECT_MS / 2)
        for (let i = 0; i < 3; i++) yield* turn("cooling")
        expect(a.current.requests().map((r) => r.path)).toEqual([])
        // Cool-down over: half-open. The first probe fails, which ejects it again; calls go on elsewhere.
        a.current.scriptEndpoint("/status", { _tag: "Http", status: 503 })
        yield* TestClock.adjust(EJECT_MS / 2 + 1)
        expect((yield* stateOf(a.current.url)).health).toBe("half-open")
        yield* eventually(Effect.map(turn("probing"), () => a.current.count("/status") === 1))
        yield* eventually(Effect.map(stateOf(a.current.url), (s) => s.health === "ejected"))
        for (let i = 0; i < 3; i++) yield* turn("ejected again")
        expect(a.current.count("/query")).toBe(0)
        // The next probe succeeds: then, and only then, calls reach it.
        yield* TestClock.adjust(EJECT_MS + 1)
        yield* eventually(Effect.map(turn("back"), () => a.current.count("/query") > 0))
        const paths = a.current.requests().map((r) => r.path)
        expect(paths.slice(0, 2)).toEqual(["/status", "/status"])
        expect(paths.indexOf("/query")).toBeGreaterThan(1)
        expect((yield* stateOf(a.current.url)).health).toBe("healthy")
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
    }))

  it.scoped("every kernel down: the turn fails with the kernel's own error, each kernel tried once", () =>
    Effect.gen(function*() {
      const a = yield* kernel()
      const b = yield* kernel()
      const warnings: Array<string> = []
      const captured = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(String(message))
        })
      )
      yield* Effect.gen(function*() {
        yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
        a.current.script({ _tag: "Http", status: 502 })
        b.current.script({ _tag: "Http", status: 502 })
        const error = yield* Effect.flip(Backend.call(say("x")))
        expect(error).toMatchObject({ _tag: "BackendRejected", kind: "server", status: 502 })
        expect([a.current.count("/query"), b.current.count("/query")]).toEqual([1, 1])
        // Both ejected: a call still goes to them (each once) rather than failing unasked.
        a.current.script({ _tag: "Http", status: 502 })
        b.current.script({ _tag: "Http", status: 502 })
        yield* Effect.flip(Backend.call(say("x")))
        expect([a.current.count("/query"), b.current.count("/query")]).toEqual([2, 2])
        a.current.script({ _tag: "Http", status: 502 })
        expect((yield* Backend.call(say("anyway"))).text).toBe("anyway")
        // One warning per kernel leaving the pool, not one per failure.
        expect(warnings).toEqual([["kernel ejected from the pool"], ["kernel ejected from the pool"]].map(String))
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])), Effect.provide(captured))
    }))

  it.scoped("/v1 endpoints pool the same way; an error after output started passes through, unmoved", () =>
    Effect.gen(function*() {
      const a = yield* kernel()
      const b = yield* kernel()
      const urls = [`${a.current.url}/v1`, `${b.current.url}/v1`]
      yield* Effect.gen(function*() {
        const models = yield* Effect.flatMap(Backend.Backend, (backend) => backend.listModels)
        expect(models.map((m) => m.name)).toEqual(["echo", "tool-user"])
        a.current.scriptEndpoint("/v1/chat/completions", { _tag: "Http", status: 503 })
        expect((yield* Backend.call(say("moved"))).text).toBe("moved")
        b.current.scriptEndpoint("/v1/chat/completions", { _tag: "StreamError", afterChunks: 1, statusCode: 503 })
        const error = yield* Effect.flip(Backend.call(say("a longer reply that streams in pieces")))
        expect(error).toMatchObject({ url: urls[1] })
        expect(a.current.count("/v1/chat/completions")).toBe(1)
      }).pipe(Effect.provide(poolStack(urls, { backend: "openai-compatible" })))
    }))

  it.scoped("status: ok when any kernel is, one line per kernel; check and states per kernel", () =>
    Effect.gen(function*() {
      const a = yield* kernel()
      const b = yield* kernel()
      yield* b.kill
      yield* Effect.gen(function*() {
        const status = yield* Effect.flatMap(Backend.Backend, (backend) => backend.status)
        expect(status.ok).toBe(true)
        expect(status.message).toContain("1 of 2 kernels ok")
        expect(status.message).toContain(`${a.current.url}: ok`)
        expect(status.message).toContain(`${b.current.url}: Cannot reach`)
        const pool = yield* KernelPool.KernelPool
        const checks = yield* pool.check
        expect(checks.map((c) => [c.url, c.status._tag])).toEqual([[a.current.url, "Right"], [b.current.url, "Left"]])
        const states = yield* pool.states
        expect(states.map((s) => [s.url, s.health])).toEqual([[a.current.url, "healthy"], [b.current.url, "ejected"]])
        expect(states[1]?.ejectedUntil).toBe(EJECT_MS)
        // A successful check re-admits a kernel that is back.
        yield* b.restart
        yield* pool.check
        expect((yield* stateOf(b.current.url)).health).toBe("healthy")
      }).pipe(Effect.provide(poolStack([a.current.url, b.current.url])))
    }))

  it.scoped("Aios.layer picks the pool when `kernels` is set: one Backend over the union", () =>
    Effect.gen(function*() {
      const a = yield* kernel({ models: [{ name: "alpha" }] })
      const b = yield* kernel({ models: [{ name: "beta" }] })
      yield* Effect.gen(function*() {
        const backend = yield* Backend.Backend
        expect(backend.url).toBe(`${a.current.url}, ${b.current.url}`)
        expect((yield* ModelCatalog.ModelCatalog.pipe(Effect.flatMap((c) => c.list))).map((m) => m.name)).toEqual(["alpha", "beta"])
        expect(yield* turn("hi", "beta")).toEqual({ text: "hi", retries: 0 })
        expect(b.current.count("/query")).toBe(1)
      }).pipe(Effect.provide(Layer.provide(Aios.layer({ kernels: [a.current.url, b.current.url] }), NodeHttpClient.layerUndici)))
    }))
})
