/**
 * The pool's pure decisions: the fewest-in-flight choice (property tests) and which failures are the kernel's.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as BackendError from "../src/BackendError.js"
import { fewestInFlight, isKernelFailure, kernelKinds } from "../src/internal/pool/route.js"

describe("fewestInFlight", () => {
  it("picks a candidate with the least load: the first such at or after `start`, cyclically", () =>
    fc.assert(
      fc.property(fc.array(fc.nat(5), { minLength: 1, maxLength: 12 }), fc.integer({ min: -50, max: 50 }), (loads, start) => {
        const i = fewestInFlight(loads, start)
        const least = Math.min(...loads)
        expect(loads[i]).toBe(least)
        const n = loads.length
        const offset = ((start % n) + n) % n
        // No candidate with the least load comes earlier in the rotation.
        for (let step = 0; (offset + step) % n !== i; step++) expect(loads[(offset + step) % n]).toBeGreaterThan(least)
      })
    ))

  it("equal loads: successive starts visit every candidate once per round", () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.nat(3), (n, load) => {
        const loads = Array.from({ length: n }, () => load)
        const picked = Array.from({ length: n }, (_, start) => fewestInFlight(loads, start))
        expect(new Set(picked).size).toBe(n)
      })
    ))

  it("no candidate: -1", () => {
    expect(fewestInFlight([], 3)).toBe(-1)
  })
})

describe("isKernelFailure", () => {
  const rejected = (status: number, inBody = false) =>
    BackendError.rejected({ url: "http://127.0.0.1:1", model: "m", status, reason: "", inBody })

  it("unreachable, timeouts and 5xx are the kernel's: they eject it and move the call", () => {
    expect(isKernelFailure(new BackendError.BackendUnreachable({ url: "u", detail: "ECONNREFUSED" }))).toBe(true)
    expect(isKernelFailure(new BackendError.BackendTimeout({ url: "u", timeoutMs: 1 }))).toBe(true)
    for (const status of [500, 502, 503, 504, 529]) expect(isKernelFailure(rejected(status))).toBe(true)
    expect(isKernelFailure(rejected(503, true))).toBe(true)
  })

  it("a rate limit, any 4xx, a TLS failure or an odd answer are not", () => {
    for (const status of [400, 401, 402, 403, 404, 413, 422, 429]) expect(isKernelFailure(rejected(status))).toBe(false)
    expect(isKernelFailure(new BackendError.BackendUnreachable({ url: "u", detail: "self-signed certificate" }))).toBe(false)
    expect(isKernelFailure(new BackendError.MalformedResponse({ url: "u", endpoint: "/query", issue: "x" }))).toBe(false)
    expect(isKernelFailure(new BackendError.EmptyReply({ url: "u" }))).toBe(false)
    expect(isKernelFailure(new BackendError.ModelUnknown({ url: "u", model: "m", available: [] }))).toBe(false)
  })

  it("every kernel kind is retried by TurnRetry as transient (a move never hides a failure TurnRetry would drop)", () => {
    for (const kind of kernelKinds) expect(BackendError.policies[kind].retry).toBe("transient")
  })
})
