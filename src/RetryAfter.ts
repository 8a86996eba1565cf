/**
 * How long a server asked us to wait: the `Retry-After` header (RFC 9110 §10.2.3: delay-seconds or any of the
 * three HTTP-date forms), `retry-after-ms`, and the "try again in N s" wording that providers put in error
 * messages when no header survives (the AIOS kernel's in-body 429s). Pure; never throws.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import type { BackendError } from "./BackendError.js"

/**
 * Anything that holds response headers: a WHATWG `Headers` (or anything with `get`), an `@effect/platform`
 * `Headers`, or a plain record (keys matched case-insensitively; for a list of values the first is used).
 *
 * @since 0.1.0
 */
export type HeadersLike =
  | { readonly get: (name: string) => string | null | undefined }
  | Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

const months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
const month = "(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
const time = "(\\d{2}):(\\d{2}):(\\d{2})"

// Matching is case-insensitive and tolerant of extra spaces; RFC 9110 asks recipients to accept all three forms.
const imfFixdate = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun),\\s+(\\d{2})\\s+${month}\\s+(\\d{4})\\s+${time}\\s+gmt$`, "i")
const rfc850 = new RegExp(
  `^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday),\\s+(\\d{2})-${month}-(\\d{2})\\s+${time}\\s+gmt$`,
  "i"
)
const asctime = new RegExp(`^(?:mon|tue|wed|thu|fri|sat|sun)\\s+${month}\\s+(\\d{1,2})\\s+${time}\\s+(\\d{4})$`, "i")
const seconds = /^\d+(?:\.\d+)?$/

const toMillis = (now: Date | number): number => (typeof now === "number" ? now : now.getTime())

/** UTC epoch ms for the fields, or `undefined` if they do not name a real instant (e.g. 31 Feb). */
const utc = (
  year: number,
  monthName: string,
  day: number,
  hour: number,
  minute: number,
  second: number
): number | undefined => {
  const m = months.indexOf(monthName.toLowerCase())
  if (m < 0 || hour > 23 || minute > 59 || second > 60) return undefined
  const date = new Date(Date.UTC(year, m, day, hour, minute, Math.min(second, 59)))
  // Date.UTC rolls 31 Feb over into March; a real date survives the round trip.
  return date.getUTCFullYear() === year && date.getUTCMonth() === m && date.getUTCDate() === day
    ? date.getTime() + (second === 60 ? 1000 : 0)
    : undefined
}

/** Parses one of the three HTTP-date forms into epoch ms. */
const httpDate = (value: string, nowMs: number): number | undefined => {
  let match = imfFixdate.exec(value)
  if (match) {
    const [, d, mon, y, h, mi, s] = match
    return utc(Number(y), mon!, Number(d), Number(h), Number(mi), Number(s))
  }
  match = rfc850.exec(value)
  if (match) {
    const [, d, mon, yy, h, mi, s] = match
    // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future means the most recent past such year.
    const nowYear = new Date(nowMs).getUTCFullYear()
    let year = Math.floor(nowYear / 100) * 100 + Number(yy)
    if (year > nowYear + 50) year -= 100
    return utc(year, mon!, Number(d), Number(h), Number(mi), Number(s))
  }
  match = asctime.exec(value)
  if (match) {
    const [, mon, d, h, mi, s, y] = match
    return utc(Number(y), mon!, Number(d), Number(h), Number(mi), Number(s))
  }
  return undefined
}

const finiteNonNegative = (n: number): Option.Option<number> =>
  Number.isFinite(n) && n >= 0 ? Option.some(Math.round(n)) : Option.none()

/**
 * Parses a `Retry-After` value (delay-seconds, or an HTTP-date relative to `now`; dates in the past give 0).
 * Fractional seconds are accepted because some servers send them.
 */
const parseRetryAfter = (raw: string, now: Date | number): Option.Option<number> => {
  const value = raw.trim()
  if (seconds.test(value)) return finiteNonNegative(Number(value) * 1000)
  const nowMs = toMillis(now)
  if (!Number.isFinite(nowMs)) return Option.none()
  const at = httpDate(value, nowMs)
  return at === undefined ? Option.none() : Option.some(Math.max(0, at - nowMs))
}

const parseRetryAfterMs = (raw: string): Option.Option<number> => {
  const value = raw.trim()
  return seconds.test(value) ? finiteNonNegative(Number(value)) : Option.none()
}

const header = (headers: HeadersLike, name: string): string | undefined => {
  if (typeof headers.get === "function") {
    const value = (headers as { readonly get: (name: string) => unknown }).get(name)
    return typeof value === "string" ? value : undefined
  }
  const record = headers as Readonly<Record<string, unknown>>
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== name) continue
    const value = record[key]
    if (typeof value === "string") return value
    if (Array.isArray(value) && typeof value[0] === "string") return value[0]
  }
  return undefined
}

/**
 * The wait, in milliseconds, that response headers (or a bare `Retry-After` value) ask for. `retry-after-ms`
 * wins over `retry-after` when both are valid. Garbage is ignored (`None`); an HTTP-date in the past (clock
 * skew) gives `Some(0)`.
 *
 * @since 0.1.0
 */
export const parse = (input: HeadersLike | string, now: Date | number): Option.Option<number> => {
  if (typeof input === "string") return parseRetryAfter(input, now)
  if (input === null || typeof input !== "object") return Option.none()
  const ms = header(input, "retry-after-ms")
  const fromMs = ms === undefined ? Option.none() : parseRetryAfterMs(ms)
  if (Option.isSome(fromMs)) return fromMs
  const value = header(input, "retry-after")
  return value === undefined ? Option.none() : parseRetryAfter(value, now)
}

const unitMs: ReadonlyArray<readonly [RegExp, number]> = [
  [/^(?:ms|msecs?|millis(?:econds?)?)$/i, 1],
  [/^(?:s|secs?|seconds?)$/i, 1000],
  [/^(?:m|mins?|minutes?)$/i, 60_000],
  [/^(?:h|hrs?|hours?)$/i, 3_600_000]
]

// A duration: "20s", "1.5 seconds", "500ms", Go-style "6m0s" / "1m30.5s", "2 minutes and 10 seconds".
// `(?![a-z])` rather than `\b`, because "6m0s" has no word boundary after "m".
const component = /(\d+(?:\.\d+)?)\s*(milliseconds?|millis|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)(?![a-z])/iy
const separator = /(?:\s*,\s*|\s+and\s+|\s*)/y
const bareNumber = /(\d+(?:\.\d+)?)(?=\s*(?:$|[.,;:)"'\]}]|\s(?![a-z\d])))/iy

const durationAt = (text: string, start: number, bareFactor: number): number | undefined => {
  let at = start
  let total = 0
  let found = false
  for (;;) {
    component.lastIndex = at
    const match = component.exec(text)
    if (!match) break
    const factor = unitMs.find(([unit]) => unit.test(match[2]!))?.[1] ?? 1000
    total += Number(match[1]) * factor
    found = true
    separator.lastIndex = component.lastIndex
    separator.exec(text)
    at = separator.lastIndex
  }
  if (found) return total
  bareNumber.lastIndex = start
  const bare = bareNumber.exec(text)
  return bare ? Number(bare[1]) * bareFactor : undefined
}

// Group 1 is set for the "retry-after-ms: 500" form, whose bare numbers are milliseconds (else seconds, as in
// the header).
const cue =
  /(?:try(?:ing)?\s+again|retry(?:ing)?|wait)\s+(?:(?:in|after|for)\s+)?(?:about\s+|approximately\s+|roughly\s+|~\s*)?|retry[-_ ]?(?:after([-_ ]?ms)?|delay)["']?\s*[:=]\s*["']?/gi

/**
 * The wait an error message asks for: "Please try again in 20s", "try again in 1.5 seconds", "Please retry
 * after 2.5s", "retry in 500ms", "try again in 6m0s", `"retryDelay": "30s"`, "retry-after: 7". `None` when the
 * message names no wait ("Please try again later").
 *
 * @since 0.1.0
 */
export const fromMessage = (text: string): Option.Option<number> => {
  if (typeof text !== "string") return Option.none()
  const cues = new RegExp(cue.source, cue.flags)
  for (let match = cues.exec(text); match !== null; match = cues.exec(text)) {
    const ms = durationAt(text, cues.lastIndex, match[1] === undefined ? 1000 : 1)
    const result = ms === undefined ? Option.none() : finiteNonNegative(ms)
    if (Option.isSome(result)) return result
  }
  return Option.none()
}

/**
 * The wait a backend error asks for: its `retryAfterMs` (from headers), else what its reason says.
 *
 * @since 0.1.0
 */
export const fromError = (error: BackendError): Option.Option<number> => {
  if (error._tag !== "BackendRejected") return Option.none()
  const header = error.retryAfterMs
  if (header !== undefined && Number.isFinite(header) && header >= 0) return Option.some(header)
  return fromMessage(error.reason)
}
