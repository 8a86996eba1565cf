import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import * as AiosConfig from "../src/AiosConfig.js"
import * as ApiKeys from "../src/ApiKeys.js"
import * as BackendError from "../src/BackendError.js"
import * as SharedState from "../src/SharedState.js"

const url = "http://127.0.0.1:1/v1"
const secrets = ["sk-one-111", "sk-two-222", "sk-three-333"]
const redacted = secrets.map((s) => Redacted.make(s))

const rejected = (status: number, reason = "", retryAfterMs?: number, errorType?: string) =>
  BackendError.rejected({ url, status, reason, retryAfterMs, errorType })

const take = (keys: ApiKeys.Service, exclude?: ReadonlySet<number>) =>
  Effect.map(keys.next(exclude), Option.getOrThrow)

const indices = (keys: ApiKeys.Service, n: number) =>
  Effect.forEach(Array.from({ length: n }), () => Effect.map(take(keys), (k) => k.index))

describe("ApiKeys", () => {
  it.effect("round-robin over the keys", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted)
      expect(keys.size).toBe(3)
      expect(yield* indices(keys, 7)).toEqual([0, 1, 2, 0, 1, 2, 0])
    }))

  it.effect("no keys: nothing to hand out", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make([])
      expect(keys.size).toBe(0)
      expect(Option.isNone(yield* keys.next())).toBe(true)
    }))

  it.effect("a 429 cools the key down for its Retry-After; the Clock brings it back", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted)
      const first = yield* take(keys)
      expect(yield* keys.failed(first, rejected(429, "slow down", 5_000))).toBe(true)
      expect(yield* indices(keys, 4)).toEqual([1, 2, 1, 2])
      expect((yield* keys.states)[0]).toEqual({ index: 0, coolingDownMs: 5_000, reason: "rate_limit" })
      yield* TestClock.adjust("4999 millis")
      expect(yield* indices(keys, 2)).toEqual([1, 2])
      yield* TestClock.adjust("1 millis")
      expect(yield* indices(keys, 3)).toEqual([0, 1, 2])
      expect((yield* keys.states)[0]).toEqual({ index: 0, coolingDownMs: 0, reason: undefined })
    }))

  it.effect("a 429 without Retry-After: the wait its message names, else the default 30 s", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted)
      const a = yield* take(keys)
      const b = yield* take(keys)
      yield* keys.failed(a, rejected(429, "Rate limit reached. Please try again in 12s."))
      yield* keys.failed(b, rejected(429, "Rate limit reached."))
      const states = yield* keys.states
      expect(states.map((s) => s.coolingDownMs)).toEqual([12_000, ApiKeys.defaultOptions.rateLimitCooldownMs, 0])
    }))

  it.effect("401, 403 and an exhausted quota cool down for an hour; 5xx, timeouts and 400 do not", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted, { rejectedCooldownMs: 3_600_000 })
      const key = yield* take(keys)
      for (const error of [rejected(401), rejected(403), rejected(402), rejected(429, "", undefined, "insufficient_quota")]) {
        expect(yield* keys.failed(key, error)).toBe(true)
        expect((yield* keys.states)[0]).toEqual({ index: 0, coolingDownMs: 3_600_000, reason: "rejected" })
        yield* keys.succeeded(key)
      }
      const notTheKeys: ReadonlyArray<BackendError.BackendError> = [
        rejected(500),
        rejected(503),
        rejected(400, "bad"),
        rejected(400, "maximum context length exceeded"),
        new BackendError.BackendTimeout({ url, timeoutMs: 1 }),
        new BackendError.BackendUnreachable({ url, detail: "ECONNREFUSED" }),
        new BackendError.MalformedResponse({ url, endpoint: "/chat/completions", issue: "the body is not JSON" }),
        new BackendError.ModelUnknown({ url, model: "m", available: [] })
      ]
      for (const error of notTheKeys) expect(yield* keys.failed(key, error)).toBe(false)
      expect((yield* keys.states).every((s) => s.coolingDownMs === 0)).toBe(true)
    }))

  it("the cooldown of every kind is the one BackendError.policies gives it", () => {
    for (const kind of BackendError.kinds) {
      const error = new BackendError.BackendRejected({ url, status: 400, kind, reason: "", inBody: false, retryAfterMs: 5 })
      const expected = BackendError.policies[kind].keyCooldown
      const cooldown = ApiKeys.cooldownFor(error, { rejectedCooldownMs: 7 })
      expect(Option.getOrUndefined(cooldown)).toEqual(
        expected === undefined ? undefined : { reason: expected, ms: expected === "rate_limit" ? 5 : 7 }
      )
    }
  })

  it.effect("when every key cools down, the one whose cooldown ends first is used", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted)
      const [a, b, c] = [yield* take(keys), yield* take(keys), yield* take(keys)]
      yield* keys.failed(a, rejected(429, "", 9_000))
      yield* keys.failed(b, rejected(429, "", 2_000))
      yield* keys.failed(c, rejected(401))
      const soonest = yield* take(keys)
      expect(soonest.index).toBe(1)
      expect(soonest.coolingDownMs).toBe(2_000)
      yield* TestClock.adjust("2 seconds")
      expect(yield* take(keys)).toMatchObject({ index: 1, coolingDownMs: 0 })
    }))

  it.effect("excluded keys are skipped; all excluded → none", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted)
      expect((yield* take(keys, new Set([0]))).index).toBe(1)
      expect((yield* take(keys, new Set([2, 0]))).index).toBe(1)
      expect(Option.isNone(yield* keys.next(new Set([0, 1, 2])))).toBe(true)
    }))

  it.effect("success ends a cooldown", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted.slice(0, 1))
      const key = yield* take(keys)
      yield* keys.failed(key, rejected(429, "", 60_000))
      yield* keys.succeeded(key)
      expect(yield* take(keys)).toMatchObject({ index: 0, coolingDownMs: 0 })
    }))

  // A model of the rotation: a free, non-excluded key is always preferred; an excluded key is never handed out.
  const op = fc.oneof(
    fc.record({ _tag: fc.constant("next" as const), exclude: fc.uniqueArray(fc.nat({ max: 3 }), { maxLength: 4 }) }),
    fc.record({ _tag: fc.constant("fail" as const), status: fc.constantFrom(429, 401, 500), retryAfterMs: fc.nat({ max: 20_000 }) }),
    fc.record({ _tag: fc.constant("wait" as const), ms: fc.nat({ max: 40_000 }) })
  )
  it.effect.prop("never hands out an excluded key, and never a cooling one while another is free", [fc.array(op, { maxLength: 40 })], ([ops]) =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(secrets.concat("sk-four-444").map((s) => Redacted.make(s)))
      let last: ApiKeys.Key | undefined
      for (const o of ops) {
        if (o._tag === "wait") yield* TestClock.adjust(o.ms)
        else if (o._tag === "fail") {
          if (last !== undefined) yield* keys.failed(last, rejected(o.status, "", o.retryAfterMs))
        } else {
          const before = yield* keys.states
          const exclude = new Set(o.exclude)
          const got = yield* keys.next(exclude)
          const candidates = before.filter((s) => !exclude.has(s.index))
          if (candidates.length === 0) {
            expect(Option.isNone(got)).toBe(true)
            continue
          }
          const key = Option.getOrThrow(got)
          expect(exclude.has(key.index)).toBe(false)
          const anyFree = candidates.some((s) => s.coolingDownMs === 0)
          expect(key.coolingDownMs === 0).toBe(anyFree)
          if (!anyFree) expect(key.coolingDownMs).toBe(Math.min(...candidates.map((s) => s.coolingDownMs)))
          last = key
        }
      }
    }), { fastCheck: { numRuns: 50 } })

  it.effect("values stay redacted: keys and states never show them; scrub removes them from text", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.make(redacted)
      const key = yield* take(keys)
      yield* keys.failed(key, rejected(401))
      const shown = [String(key), JSON.stringify(key), JSON.stringify(yield* keys.states), String(key.value)]
      for (const text of shown) for (const s of secrets) expect(text).not.toContain(s)
      expect(Redacted.value(key.value)).toBe(secrets[0])
      const echoed = `Incorrect API key provided: ${secrets[1]} (also ${secrets[1]}, ${secrets[2]})`
      const scrubbed = keys.scrub(echoed)
      for (const s of secrets) expect(scrubbed).not.toContain(s)
      expect(scrubbed).toBe("Incorrect API key provided: [redacted] (also [redacted], [redacted])")
    }))

  it.effect("cooldowns live in the SharedState in context: a rotation with the keys in another order sees them", () =>
    Effect.gen(function*() {
      const a = yield* ApiKeys.make(redacted)
      const b = yield* ApiKeys.make([...redacted].reverse())
      const first = yield* take(a)
      yield* a.failed(first, rejected(401))
      // secrets[0] is b's last key.
      expect((yield* b.states).map((s) => s.reason)).toEqual([undefined, undefined, "rejected"])
      expect(yield* indices(b, 4)).toEqual([0, 1, 0, 1])
      yield* TestClock.adjust("1 hour")
      expect(yield* indices(b, 3)).toEqual([2, 0, 1])
      // A success in one ends the cooldown for both.
      yield* a.failed(first, rejected(429, "", 60_000))
      expect((yield* b.states)[2]).toEqual({ index: 2, coolingDownMs: 60_000, reason: "rate_limit" })
      yield* a.succeeded(first)
      expect((yield* b.states)[2]).toEqual({ index: 2, coolingDownMs: 0, reason: undefined })
    }).pipe(Effect.provide(SharedState.layerMemory)))

  it.effect("layer reads the keys from AiosConfig.apiKeys", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys.ApiKeys
      expect(keys.size).toBe(2)
      const key = yield* take(keys)
      expect(Redacted.value(key.value)).toBe("sk-from-config")
    }).pipe(
      Effect.provide(ApiKeys.layer),
      Effect.provide(AiosConfig.layer({ apiKeys: ["sk-from-config", "sk-second"] })),
      Effect.orDie
    ))
})
