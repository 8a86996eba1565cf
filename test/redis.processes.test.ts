/**
 * Limits and cooldowns shared by separate OS processes through a real `redis-server` on loopback: each child runs
 * `test/redisChild.ts` with its own runtime and ioredis connection; the reference kernel (in this process)
 * counts what they send. Real time throughout: a rate shared between processes cannot run on a TestClock.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"
import * as ApiKeys from "../src/ApiKeys.js"
import * as SharedState from "../src/SharedState.js"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import type { Command } from "./redisChild.js"
import { redisAvailable, type RedisServer, skipNote, startRedis } from "./redisServer.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const childFile = fileURLToPath(new URL("./redisChild.ts", import.meta.url))

interface Child {
  readonly process: ChildProcess
  /** Resolves with the first stdout line matching `pattern`. */
  readonly line: (pattern: RegExp) => Promise<RegExpMatchArray>
  readonly exited: Promise<number | null>
}

const startChild = (command: Command): Child => {
  const child = spawn(process.execPath, ["--import", "tsx", childFile, JSON.stringify(command)], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  const waiters: Array<() => void> = []
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString()
    for (const w of waiters.splice(0)) w()
  })
  child.stderr.on("data", (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => {
    for (const w of waiters.splice(0)) w()
    resolve(code)
  }))
  const line = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(pattern)
        if (m) return resolve(m)
        if (child.exitCode !== null || child.signalCode !== null) {
          return reject(new Error(`child exited before ${pattern}; stdout: ${out}; stderr: ${err}`))
        }
        waiters.push(check)
      }
      check()
    })
  return { process: child, line, exited }
}

const resultOf = async (child: Child) => JSON.parse((await child.line(/^result (.*)$/m))[1]!) as Record<string, unknown>

describe.skipIf(!redisAvailable)(`limits shared by processes through Redis${redisAvailable ? "" : ` (${skipNote})`}`, () => {
  let redis: RedisServer
  let kernel: Handle
  const children: Array<Child> = []
  const spawnChild = (command: Command) => {
    const child = startChild(command)
    children.push(child)
    return child
  }

  beforeAll(async () => {
    redis = await startRedis()
    kernel = await startReferenceKernel()
  })
  afterAll(async () => {
    for (const c of children) c.process.kill("SIGKILL")
    await kernel?.close()
    await redis?.stop()
  })

  it.live("two processes sharing a limit of N calls per interval together make at most N (±1) per interval", () =>
    Effect.gen(function*() {
      kernel.reset()
      const N = 4
      const intervalMs = 1_500
      const windows = 5
      const prefix = `t-${randomUUID()}`
      const command: Command = {
        mode: "calls",
        kernelUrl: kernel.url,
        redisUrl: redis.url,
        prefix,
        calls: 12,
        concurrency: 3,
        maxConcurrency: 100,
        rate: { limit: N, intervalMs }
      }
      const pair = [spawnChild(command), spawnChild(command)]
      yield* Effect.promise(() => Promise.all(pair.map((c) => c.line(/^ready$/m))))
      for (const c of pair) c.process.stdin?.write("go\n")
      // The kernel's count of calls at the end of each interval since the start.
      const counts: Array<number> = []
      for (let w = 0; w <= windows; w++) {
        yield* Effect.sleep(intervalMs)
        counts.push(kernel.count("/query"))
      }
      const results = yield* Effect.promise(() => Promise.all(pair.map(resultOf)))
      const perWindow = counts.map((c, i) => c - (counts[i - 1] ?? 0))
      const seen = `calls per interval ${JSON.stringify(perWindow)}, children ${JSON.stringify(results)}`
      expect(results, seen).toEqual([{ ok: 12, failed: 0, status: "redis" }, { ok: 12, failed: 0, status: "redis" }])
      // A token bucket starts full: the first interval has the burst (N) plus the interval's refill (N).
      expect(perWindow[0], seen).toBeLessThanOrEqual(2 * N + 1)
      // After it, both processes together get N per interval (each alone would get N, so 2N together).
      for (const count of perWindow.slice(1)) expect(count, seen).toBeLessThanOrEqual(N + 1)
      expect(kernel.count("/query")).toBe(24)
    }), 60_000)

  it.live("two processes sharing a concurrency cap never exceed it together (counted by the kernel)", () =>
    Effect.gen(function*() {
      kernel.reset()
      kernel.setLatency(150)
      const command: Command = {
        mode: "calls",
        kernelUrl: kernel.url,
        redisUrl: redis.url,
        prefix: `t-${randomUUID()}`,
        calls: 6,
        concurrency: 6,
        maxConcurrency: 3
      }
      const pair = [spawnChild(command), spawnChild(command)]
      yield* Effect.promise(() => Promise.all(pair.map((c) => c.line(/^ready$/m))))
      for (const c of pair) c.process.stdin?.write("go\n")
      const results = yield* Effect.promise(() => Promise.all(pair.map(resultOf)))
      kernel.setLatency(0)
      expect(results.map((r) => r["ok"])).toEqual([6, 6])
      expect(kernel.count("/query")).toBe(12)
      // Each process alone would allow 3 at once, 6 together.
      expect(kernel.maxConcurrentQueries()).toBeLessThanOrEqual(3)
    }), 60_000)

  it.live("an API-key cooldown and a kernel ejection set by one process are seen by another", () =>
    Effect.gen(function*() {
      const prefix = `t-${randomUUID()}`
      const secrets = ["sk-shared-one", "sk-shared-two"]
      const kernelUrl = "http://127.0.0.1:9/"
      const child = spawnChild({ mode: "cool", redisUrl: redis.url, prefix, keys: secrets, kernel: kernelUrl })
      expect(yield* Effect.promise(() => resultOf(child))).toEqual({ status: "redis" })
      expect(yield* Effect.promise(() => child.exited)).toBe(0)

      const shared = yield* SharedState.makeRedis({ url: redis.url, prefix })
      // This process lists the keys in the other order: cooldowns follow the key, not its position.
      const keys = yield* ApiKeys.make([...secrets].reverse().map((s) => Redacted.make(s))).pipe(
        Effect.provideService(SharedState.SharedState, shared)
      )
      const states = yield* keys.states
      expect(states[0]).toEqual({ index: 0, coolingDownMs: 0, reason: undefined })
      expect(states[1]?.reason).toBe("rate_limit")
      expect(states[1]?.coolingDownMs).toBeGreaterThan(50_000)
      const picks = yield* Effect.forEach([1, 2, 3], () => Effect.map(keys.next(), (k) => Option.getOrThrow(k).index))
      expect(picks).toEqual([0, 0, 0])

      const ejected = yield* shared.cooldownUntil(`kernel:${kernelUrl}`)
      expect(Option.isSome(ejected)).toBe(true)
      expect(Option.getOrThrow(ejected)).toBeGreaterThan(Date.now() + 50_000)
      expect(Option.isNone(yield* shared.cooldownUntil("kernel:http://127.0.0.1:10/"))).toBe(true)
      expect(yield* shared.status).toBe("redis")
    }).pipe(Effect.scoped), 60_000)

  it.live("a crashed process's permit comes back when its lease ends", () =>
    Effect.gen(function*() {
      const prefix = `t-${randomUUID()}`
      const child = spawnChild({ mode: "hold", redisUrl: redis.url, prefix, key: "llm:echo", leaseMs: 1_000 })
      expect((yield* Effect.promise(() => child.line(/^held (.*)$/m)))[1]).toBe("redis")
      const shared = yield* SharedState.makeRedis({ url: redis.url, prefix, permitLeaseMs: 1_000 })
      // Held (and renewed) by the live child: not free within two lease renewals.
      const whileAlive = yield* Effect.scoped(shared.acquirePermit("llm:echo", 1)).pipe(Effect.timeout(800), Effect.option)
      expect(Option.isNone(whileAlive)).toBe(true)
      child.process.kill("SIGKILL")
      yield* Effect.promise(() => child.exited)
      const afterCrash = yield* Effect.scoped(shared.acquirePermit("llm:echo", 1)).pipe(Effect.timeout(10_000), Effect.option)
      expect(Option.isSome(afterCrash)).toBe(true)
    }).pipe(Effect.scoped), 60_000)
})
