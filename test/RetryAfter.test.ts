import { describe, expect, it } from "@effect/vitest"
import * as PlatformHeaders from "@effect/platform/Headers"
import * as Option from "effect/Option"
import * as fc from "fast-check"
import * as BackendError from "../src/BackendError.js"
import * as RetryAfter from "../src/RetryAfter.js"

// Test-side formatters for the three HTTP-date forms of RFC 9110 §5.6.7 (the parser must read what these write).
const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
const longDays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const pad = (n: number) => String(n).padStart(2, "0")
const clock = (d: Date) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
const imf = (d: Date) =>
  `${days[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${clock(d)} GMT`
const rfc850 = (d: Date) =>
  `${longDays[d.getUTCDay()]}, ${pad(d.getUTCDate())}-${months[d.getUTCMonth()]}-${
    pad(d.getUTCFullYear() % 100)
  } ${clock(d)} GMT`
const asctime = (d: Date) =>
  `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${clock(d)} ${
    d.getUTCFullYear()
  }`

const now = Date.UTC(2026, 3, 15, 12, 0, 0)
// Whole seconds: HTTP-dates have no sub-second part.
const secondsAhead = fc.integer({ min: 0, max: 40 * 365 * 24 * 3600 })

describe("RetryAfter.parse", () => {
  it("reads the RFC 9110 examples in all three date forms", () => {
    const at = Date.UTC(1994, 10, 6, 8, 49, 7)
    expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", at)).toEqual(Option.some(30_000))
    expect(RetryAfter.parse("Sunday, 06-Nov-94 08:49:37 GMT", at)).toEqual(Option.some(30_000))
    expect(RetryAfter.parse("Sun Nov  6 08:49:37 1994", at)).toEqual(Option.some(30_000))
    expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", new Date(at))).toEqual(Option.some(30_000))
  })

  it.prop("delay-seconds is that many seconds", [fc.nat({ max: 10_000_000 })], ([s]) => {
    expect(RetryAfter.parse(String(s), now)).toEqual(Option.some(s * 1000))
    expect(RetryAfter.parse(` ${s} `, now)).toEqual(Option.some(s * 1000))
  })

  it("accepts fractional delay-seconds, as some servers send", () => {
    expect(RetryAfter.parse("2.5", now)).toEqual(Option.some(2500))
  })

  it.prop(
    "a future HTTP-date in any form is the time until it",
    [secondsAhead, fc.constantFrom(imf, asctime)],
    ([ahead, format]) => {
      const at = new Date(now + ahead * 1000)
      expect(RetryAfter.parse(format(at), now)).toEqual(Option.some(ahead * 1000))
    }
  )

  it.prop("RFC 850 two-digit years within the next 50 years", [fc.integer({ min: 0, max: 49 * 365 * 24 * 3600 })], ([
    ahead
  ]) => {
    const at = new Date(now + ahead * 1000)
    expect(RetryAfter.parse(rfc850(at), now)).toEqual(Option.some(ahead * 1000))
  })

  it("an RFC 850 year more than 50 years ahead means the past century (so: already passed)", () => {
    // '99 seen in 2026 is 1999, not 2099.
    expect(RetryAfter.parse("Friday, 31-Dec-99 23:59:59 GMT", now)).toEqual(Option.some(0))
  })

  it.prop(
    "clock skew: a date in the past waits 0",
    [fc.integer({ min: 1, max: 40 * 365 * 24 * 3600 }), fc.constantFrom(imf, asctime, rfc850)],
    ([behind, format]) => {
      expect(RetryAfter.parse(format(new Date(now - behind * 1000)), now)).toEqual(Option.some(0))
    }
  )

  it("ignores garbage", () => {
    const garbage = [
      "",
      "   ",
      "soon",
      "-5",
      "+5",
      "1e3",
      "0x10",
      "5 seconds",
      "NaN",
      "Infinity",
      "Sun, 31 Feb 2026 08:49:37 GMT",
      "Sun, 06 Nov 1994 25:00:00 GMT",
      "Sun, 06 Foo 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 PST",
      "2026-04-15T12:00:00Z",
      "9".repeat(400)
    ]
    for (const value of garbage) expect(RetryAfter.parse(value, now), value).toEqual(Option.none())
  })

  it.prop("never throws and never answers a negative or non-finite wait", [fc.string(), fc.double()], ([s, t]) => {
    const result = RetryAfter.parse(s, t)
    expect(Option.isNone(result) || (Number.isFinite(result.value) && result.value >= 0)).toBe(true)
  })

  it.prop("strings without digits are never a wait", [fc.string().filter((s) => !/\d/.test(s))], ([s]) => {
    expect(RetryAfter.parse(s, now)).toEqual(Option.none())
  })

  it("reads headers: WHATWG Headers, records in any case, value lists; retry-after-ms wins", () => {
    expect(RetryAfter.parse(new Headers({ "Retry-After": "7" }), now)).toEqual(Option.some(7000))
    expect(RetryAfter.parse(new Headers({ "retry-after-ms": "1500", "retry-after": "7" }), now)).toEqual(
      Option.some(1500)
    )
    expect(RetryAfter.parse({ "RETRY-AFTER": imf(new Date(now + 9000)) }, now)).toEqual(Option.some(9000))
    expect(RetryAfter.parse({ "retry-after": ["3", "4"] }, now)).toEqual(Option.some(3000))
    expect(RetryAfter.parse({ "Retry-After-Ms": "250.4" }, now)).toEqual(Option.some(250))
    expect(RetryAfter.parse(PlatformHeaders.fromInput({ "Retry-After": "11" }), now)).toEqual(Option.some(11_000))
  })

  it("falls back to retry-after when retry-after-ms is garbage, and to None without either", () => {
    expect(RetryAfter.parse({ "retry-after-ms": "soon", "retry-after": "2" }, now)).toEqual(Option.some(2000))
    expect(RetryAfter.parse({ "content-type": "text/plain" }, now)).toEqual(Option.none())
    expect(RetryAfter.parse(new Headers(), now)).toEqual(Option.none())
    expect(RetryAfter.parse({ "retry-after": undefined }, now)).toEqual(Option.none())
  })
})

describe("RetryAfter.fromMessage", () => {
  it("reads the wordings providers use", () => {
    const cases: ReadonlyArray<readonly [string, number]> = [
      ["Rate limit reached for gpt-4o. Please try again in 20s.", 20_000],
      ["Please try again in 1.5 seconds", 1500],
      ["Please retry after 2.5s", 2500],
      ["retry in 500ms", 500],
      ["Limit 10000, Used 9990, Requested 30. Please try again in 6m0s. Visit …", 360_000],
      ["try again in 1m30.5s", 90_500],
      ["Please try again in 2 minutes and 10 seconds.", 130_000],
      ["You can retry after 30 seconds", 30_000],
      ["Too many requests, retry after 12", 12_000],
      ["Please wait 3 sec before retrying", 3000],
      ['{"error":{"details":[{"retryDelay":"41s"}]}}', 41_000],
      ["retry-after: 7", 7000],
      ["retry_after_ms=1200", 1200],
      ["TRY AGAIN IN 2 HOURS", 7_200_000]
    ]
    for (const [text, ms] of cases) expect(RetryAfter.fromMessage(text), text).toEqual(Option.some(ms))
  })

  it("finds nothing where no wait is named", () => {
    const none = [
      "",
      "Rate Limit Exceeded for model 'gpt-4o'. Please try again later.",
      "Retrying 3 times did not help",
      "try again in a moment",
      "Internal Server Error",
      "wait for 2 replicas"
    ]
    for (const text of none) expect(RetryAfter.fromMessage(text), text).toEqual(Option.none())
  })

  it.prop("reads any whole number of seconds or milliseconds", [fc.nat({ max: 1_000_000 }), fc.boolean()], ([
    n,
    ms
  ]) => {
    const text = `Please try again in ${n}${ms ? "ms" : "s"}.`
    expect(RetryAfter.fromMessage(text)).toEqual(Option.some(ms ? n : n * 1000))
  })

  it.prop("never throws and never answers a negative or non-finite wait", [fc.string()], ([s]) => {
    const result = RetryAfter.fromMessage(`try again in ${s}`)
    expect(Option.isNone(result) || (Number.isFinite(result.value) && result.value >= 0)).toBe(true)
  })
})

describe("RetryAfter.fromError", () => {
  const url = "http://127.0.0.1:8000"

  it("prefers the header value carried by the error", () => {
    const error = BackendError.rejected({ url, status: 429, reason: "try again in 5s", retryAfterMs: 1200 })
    expect(RetryAfter.fromError(error)).toEqual(Option.some(1200))
  })

  it("reads the reason of an in-body AIOS rejection or an HTTP error", () => {
    const reason = "Rate limit exceeded. Please try again in 8s."
    const rejected = BackendError.rejected({ url, status: 429, reason, inBody: true })
    expect(RetryAfter.fromError(rejected)).toEqual(Option.some(8000))
    const http = BackendError.rejected({ url, status: 503, reason: "overloaded; retry after 2.5s" })
    expect(RetryAfter.fromError(http)).toEqual(Option.some(2500))
  })

  it("finds nothing for errors that carry no wait", () => {
    const reason = "Rate Limit Exceeded for model 'gpt-4o'. Please try again later."
    expect(RetryAfter.fromError(BackendError.rejected({ url, status: 429, reason, inBody: true }))).toEqual(Option.none())
    expect(RetryAfter.fromError(new BackendError.BackendTimeout({ url, timeoutMs: 1000 }))).toEqual(Option.none())
    // A wait named in some other error's text is not a server's request.
    const unreachable = new BackendError.BackendUnreachable({ url, detail: "retry after 5s" })
    expect(RetryAfter.fromError(unreachable)).toEqual(Option.none())
  })
})
