/**
 * Everything a backend (an AIOS kernel or an OpenAI-compatible endpoint) can do wrong: a tagged union of errors,
 * each classified into one `ErrorKind`, and ONE policy table saying, per kind, whether and how a call is retried
 * and whether an API key cools down. OpenClaw's failover reasons (`openclaw/failover.ts`) and `Llm`'s codes
 * (`Llm.ts`) are tables over the kind, beside their consumers.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"
import { capitalize, forModel, listed, plainDetail, sentence, server, serverKind, short, unreachableEnd } from "./internal/messages.js"
import * as Redact from "./internal/redact.js"

// ---------------------------------------------------------------------------------------------------------------
// Kinds and the policy table
// ---------------------------------------------------------------------------------------------------------------

/**
 * Our own classification of a failure.
 *
 * @since 0.2.0
 */
export type ErrorKind =
  | "rate_limit"
  | "quota"
  | "auth"
  | "auth_permanent"
  | "timeout"
  | "unreachable"
  | "tls"
  | "overloaded"
  | "server"
  | "bad_request"
  | "tools_unsupported"
  | "model_not_found"
  | "context_overflow"
  | "malformed"
  | "empty_reply"

/**
 * What is done about a kind of failure.
 *
 * @since 0.2.0
 */
export interface Policy {
  /**
   * How a turn retries it: `rate_limit` waits `retry.delayMs` (or the server's Retry-After); `transient` backs off
   * exponentially from `retry.transientDelayMs` (and only under `retry.retryOn: "transient"`); `never`.
   */
  readonly retry: "rate_limit" | "transient" | "never"
  /** Whether the API key that got this answer cools down (`ApiKeys`): for a rate limit, or for good (auth, quota). */
  readonly keyCooldown: "rate_limit" | "rejected" | undefined
  /** What the user can do, appended to a rejection's message. */
  readonly advice: string
}

/**
 * The policy table: one row per kind.
 *
 * @since 0.2.0
 */
export const policies: { readonly [K in ErrorKind]: Policy } = {
  rate_limit: { retry: "rate_limit", keyCooldown: "rate_limit", advice: "The provider is rate-limiting; lower your request rate." },
  quota: { retry: "never", keyCooldown: "rejected", advice: "The provider account is out of quota or credit." },
  auth: { retry: "never", keyCooldown: "rejected", advice: "Check the API key configured for this model." },
  auth_permanent: { retry: "never", keyCooldown: "rejected", advice: "The API key was revoked or disabled; replace it." },
  timeout: { retry: "transient", keyCooldown: undefined, advice: "The provider timed out." },
  unreachable: { retry: "transient", keyCooldown: undefined, advice: "The server cannot be reached." },
  tls: { retry: "never", keyCooldown: undefined, advice: "The server's TLS certificate is not trusted." },
  overloaded: { retry: "transient", keyCooldown: undefined, advice: "The provider is unavailable or overloaded." },
  server: { retry: "transient", keyCooldown: undefined, advice: "The kernel or provider failed." },
  bad_request: { retry: "never", keyCooldown: undefined, advice: "The provider refused the request as invalid." },
  tools_unsupported: { retry: "never", keyCooldown: undefined, advice: "The endpoint does not take native tools." },
  model_not_found: { retry: "never", keyCooldown: undefined, advice: "Pick a model the server lists." },
  context_overflow: {
    retry: "never",
    keyCooldown: undefined,
    advice: "The conversation is longer than the model's context window; compact it."
  },
  malformed: { retry: "never", keyCooldown: undefined, advice: "The server's answer is not what its API promises." },
  empty_reply: { retry: "never", keyCooldown: undefined, advice: "The model returned nothing; try again or rephrase." }
}

/**
 * Every kind, for tests and tables.
 *
 * @since 0.2.0
 */
export const kinds: ReadonlyArray<ErrorKind> = Object.keys(policies) as Array<ErrorKind>

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/** Fields common to every backend error. */
interface Common {
  /**
   * The backend's base URL, as it may be printed: every constructor redacts userinfo and secret-looking query
   * values (`http://[redacted]@host`), so no error holds a credential from a configured URL.
   */
  readonly url: string
  /** The model the call was for, when there was one. */
  readonly model?: string | undefined
}

/** The fields with `url` redacted (idempotent: errors are rebuilt from errors). */
const redacted = <A extends Common>(fields: A): A => ({ ...fields, url: Redact.url(fields.url) })

/** The settings a timeout may come from, named in its message. */
export type TimeoutSetting = "requestTimeoutMs" | "callTimeoutMs" | "turnTimeoutMs"

/**
 * The server could not be reached: connection refused, reset, DNS, or the socket closed mid-response.
 *
 * @since 0.2.0
 */
export class BackendUnreachable extends Data.TaggedError("BackendUnreachable")<
  Common & { readonly detail: string; readonly cause?: unknown }
> {
  constructor(fields: Common & { readonly detail: string; readonly cause?: unknown }) {
    super(redacted(fields))
  }
  get kind(): ErrorKind {
    return tlsText.test(this.detail) ? "tls" : "unreachable"
  }
  override get message(): string {
    return `Cannot reach ${server(this.url)}: ${sentence(plainDetail(this.detail))} ${unreachableEnd}`
  }
}

/**
 * No complete response within the client timeout (the AIOS kernel itself never times out).
 *
 * @since 0.2.0
 */
export class BackendTimeout extends Data.TaggedError("BackendTimeout")<
  Common & {
    readonly timeoutMs: number
    /**
     * Which limit ran out: `requestTimeoutMs` (the wait for an answer, or for its next bytes; the default),
     * `callTimeoutMs` (one whole call, however its bytes trickle in) or `turnTimeoutMs` (a turn with its retries).
     */
    readonly setting?: TimeoutSetting | undefined
  }
> {
  constructor(fields: Common & { readonly timeoutMs: number; readonly setting?: TimeoutSetting | undefined }) {
    super(redacted(fields))
  }
  readonly kind: ErrorKind = "timeout"
  override get message(): string {
    const at = capitalize(server(this.url))
    switch (this.setting) {
      case "callTimeoutMs":
        return `${at} did not finish answering${forModel(this.model)} within ${this.timeoutMs} ms (callTimeoutMs, ` +
          `the limit on one whole call). It may be stuck or trickling its answer; check its logs or raise the limit.`
      case "turnTimeoutMs":
        return `${at} did not answer${forModel(this.model)} within ${this.timeoutMs} ms (turnTimeoutMs, the limit on a ` +
          `whole turn with its retries). It may be overloaded or stuck; check its logs or raise the limit.`
      default:
        return `${at} did not answer${forModel(this.model)} within ${this.timeoutMs} ms (requestTimeoutMs). ` +
          `It may be overloaded or stuck; check its logs or raise the timeout.`
    }
  }
}

/**
 * The server refused the call: an HTTP error status, or (AIOS) a failure reported inside an HTTP 200 body
 * (`response.status_code`), or an error event in an OpenAI-compatible stream.
 *
 * @since 0.2.0
 */
export class BackendRejected extends Data.TaggedError("BackendRejected")<RejectedFields> {
  constructor(fields: RejectedFields) {
    super(redacted(fields))
  }
  override get message(): string {
    const what = this.inBody
      ? `reported ${this.status}`
      : this.status === 422
      ? "rejected the request as malformed (HTTP 422)"
      : this.status >= 500
      ? `failed internally (HTTP ${this.status})`
      : `answered HTTP ${this.status}`
    const reason = this.reason.trim()
    return `${capitalize(server(this.url))} ${what}${forModel(this.model)}${
      reason === "" ? "." : `: ${sentence(reason)}`
    } ${policies[this.kind].advice}`
  }
}

/** The fields of a `BackendRejected`. */
interface RejectedFields extends Common {
  /** The HTTP status, or the in-body status code. */
  readonly status: number
  readonly kind: ErrorKind
  /** The server's own words (validation details joined by "; "), possibly empty. */
  readonly reason: string
  /** `true` when the status came inside an HTTP 200 body. */
  readonly inBody: boolean
  /** Milliseconds the server asked us to wait (Retry-After, retry-after-ms, or its text), when it said. */
  readonly retryAfterMs?: number | undefined
  /** The server's own error type (OpenAI-compatible `error.code` / `error.type`), when it said. */
  readonly errorType?: string | undefined
}

/**
 * The response was not JSON, or not the shape the server's API promises. `issue` names what was wrong without
 * echoing the body (which may contain secrets).
 *
 * @since 0.2.0
 */
export class MalformedResponse extends Data.TaggedError("MalformedResponse")<
  Common & { readonly endpoint: string; readonly issue: string }
> {
  constructor(fields: Common & { readonly endpoint: string; readonly issue: string }) {
    super(redacted(fields))
  }
  readonly kind: ErrorKind = "malformed"
  override get message(): string {
    return `${capitalize(server(this.url))} sent a malformed response to ${this.endpoint}${forModel(this.model)}: ${
      sentence(this.issue)
    } Is ${this.url} really ${serverKind(this.url)}?`
  }
}

/**
 * The model answered with no text and no tool calls: the model's doing, not a broken server.
 *
 * @since 0.2.0
 */
export class EmptyReply extends Data.TaggedError("EmptyReply")<Common> {
  constructor(fields: Common) {
    super(redacted(fields))
  }
  readonly kind: ErrorKind = "empty_reply"
  override get message(): string {
    return `The model${this.model ? ` '${short(this.model)}'` : ""} returned an empty reply (no text and no tool calls) through ${
      server(this.url)
    }.`
  }
}

/**
 * The model is not in the server's model list; checked before the call, because a bad `llms` entry makes the
 * real kernel hang.
 *
 * @since 0.2.0
 */
export class ModelUnknown extends Data.TaggedError("ModelUnknown")<
  Common & { readonly model: string; readonly available: ReadonlyArray<string> }
> {
  constructor(fields: Common & { readonly model: string; readonly available: ReadonlyArray<string> }) {
    super(redacted(fields))
  }
  readonly kind: ErrorKind = "model_not_found"
  override get message(): string {
    return `Model '${short(this.model)}' is not served by ${server(this.url)}. Available: ${sentence(listed(this.available))} ${
      policies.model_not_found.advice
    }`
  }
}

/**
 * Any failure of a backend call.
 *
 * @since 0.2.0
 */
export type BackendError =
  | BackendUnreachable
  | BackendTimeout
  | BackendRejected
  | MalformedResponse
  | EmptyReply
  | ModelUnknown

const tags: ReadonlySet<string> = new Set([
  "BackendUnreachable",
  "BackendTimeout",
  "BackendRejected",
  "MalformedResponse",
  "EmptyReply",
  "ModelUnknown"
])

/**
 * Whether `u` is a `BackendError`.
 *
 * @since 0.2.0
 */
export const isBackendError = (u: unknown): u is BackendError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag)

/**
 * The policy row of an error.
 *
 * @since 0.2.0
 */
export const policyOf = (error: BackendError): Policy => policies[error.kind]

/**
 * Whether a later attempt may succeed.
 *
 * @since 0.2.0
 */
export const isRetryable = (error: BackendError): boolean => policies[error.kind].retry !== "never"

/**
 * A `BackendRejected` with its kind classified from status, text and error type.
 *
 * @since 0.2.0
 */
export const rejected = (
  fields: Omit<ConstructorParameters<typeof BackendRejected>[0], "kind" | "inBody"> & {
    readonly inBody?: boolean | undefined
  }
): BackendRejected =>
  new BackendRejected({
    ...fields,
    inBody: fields.inBody ?? false,
    kind: kindFromStatus(fields.status, `${fields.reason} ${fields.errorType ?? ""}`, fields.errorType)
  })

/**
 * The same error carrying the wait the server asked for (read from its text rather than a header); any other
 * error is returned unchanged.
 *
 * @since 0.2.0
 */
export const withRetryAfterMs = <E extends BackendError>(error: E, ms: number): E =>
  error._tag === "BackendRejected" ? (new BackendRejected({ ...error, retryAfterMs: ms }) as E) : error

// ---------------------------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------------------------

const overflowText =
  /context[ _-]?(length|window)|maximum context|too many tokens|prompt is too long|context_length_exceeded|input is too long|reduce the length|context size|exceeds? (?:the )?(?:model'?s? )?(?:available )?context|exceeds the maximum number of tokens|maximum number of tokens allowed|too many input tokens/i
const quotaText =
  /insufficient[_ ]quota|quota (?:exceeded|exhausted)|exceeded your (?:current )?quota|billing|payment required|credit balance|out of credits?|insufficient (?:credits?|balance|funds)/i
const rateLimitText = /rate[_ -]?limit|too many requests|throttl|resource[_ ]exhausted|\b429\b/i
const permanentAuthText = /revoked|deactivated|disabled|suspended|banned/i
const authText =
  /invalid[_ ]api[_ ]key|incorrect api key|unauthori[sz]ed|authentication|permission denied|forbidden|access denied|\b40[13]\b/i
const modelNotFoundText =
  /model\b(?: ['`"][^'`"\n]{1,120}['`"])?[^.\n]{0,60}?(?:not found|does not exist|not available|not configured|is unknown|is not served)|unknown model|no such model|model_not_found|not all available|check the available llms|\b404\b/i
const tlsText = /certificate|self[- ]signed|unable to verify|ERR_TLS|CERT_/i
const timeoutText = /timed? ?out|timeout|deadline exceeded|did not answer|\b408\b|\b504\b/i
const unreachableText =
  /cannot reach|nothing is listening|ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|socket hang up|connection (?:refused|reset|closed)|connection was dropped|does not resolve/i
const overloadedText =
  /overloaded|over capacity|at capacity|service unavailable|temporarily unavailable|server is busy|\b503\b|\b529\b/i
const serverText = /internal server error|bad gateway|server error|failed internally|\b50[02]\b/i
const emptyText =
  /empty (?:response|reply|completion|output|content|message)|no (?:content|choices|output|text) (?:in|was |returned)|returned no (?:content|text|output)/i
const toolsUnsupportedText =
  /\b(tools?|tool[_ ]choice|tool[_ ]call(ing|s)?|function[_ ]call(ing|s)?)\b[^.]{0,60}\b(not supported|unsupported|does not support|doesn't support)|\b(not support|unsupported|doesn't support|does not support)\w*\b[^.]{0,60}\b(tools?|tool[_ ]call(ing|s)?|function[_ ]call(ing|s)?)\b/i
const badRequestText =
  /invalid request|invalid_request|malformed|bad request|unprocessable|validation (?:error|failed)|\b400\b|\b422\b/i

/** Numbers that are not statuses: in URLs (a port, a path) and durations ("within 401 ms"). */
const notStatuses = /\bhttps?:\/\/[^\s'"`]+|\b\d+(?:\.\d+)? ?ms\b/gi

/**
 * Our own messages end in a fixed sentence: a `BackendRejected` (and `ModelUnknown`) with its kind's advice (one
 * distinct sentence per kind), the others with their own. That is the exact way back to the kind, whatever the
 * server's words or a model's name in the middle say.
 */
const kindFromOwnEnding = (text: string): ErrorKind | undefined => {
  const end = text.trimEnd()
  const advised = kinds.find((kind) => end.endsWith(policies[kind].advice))
  if (advised !== undefined) return advised
  if (end.endsWith(unreachableEnd)) {
    const detail = /^Cannot reach .+? at \S+: (.*) Is it running\?/s.exec(end)?.[1] ?? ""
    return tlsText.test(detail) ? "tls" : "unreachable"
  }
  if (/ (?:raise the timeout|raise the limit)\.$/.test(end) && /\(\w+TimeoutMs\b/.test(end)) return "timeout"
  if (/ really an? (?:AIOS kernel|OpenAI-compatible endpoint)\?$/.test(end)) return "malformed"
  if (/^The model(?: '.*')? returned an empty reply \(no text and no tool calls\) through /s.test(end)) return "empty_reply"
  return undefined
}

/**
 * The kind a message alone suggests (no status, no code), the most specific first; `undefined` when nothing is
 * recognised. Our own messages classify back to their error's kind.
 *
 * @since 0.2.0
 */
export const kindFromText = (text: string): ErrorKind | undefined => {
  if (text.trim() === "") return undefined
  const own = kindFromOwnEnding(text)
  if (own !== undefined) return own
  const plain = text.replace(notStatuses, " ")
  if (overflowText.test(plain)) return "context_overflow"
  if (quotaText.test(plain) && !/rate[_ -]?limit/i.test(plain)) return "quota"
  if (rateLimitText.test(plain)) return "rate_limit"
  if (authText.test(plain)) return permanentAuthText.test(plain) ? "auth_permanent" : "auth"
  if (modelNotFoundText.test(plain)) return "model_not_found"
  if (tlsText.test(plain)) return "tls"
  if (unreachableText.test(plain)) return "unreachable"
  if (timeoutText.test(plain)) return "timeout"
  if (overloadedText.test(plain)) return "overloaded"
  if (serverText.test(plain)) return "server"
  if (emptyText.test(plain)) return "empty_reply"
  if (toolsUnsupportedText.test(plain)) return "tools_unsupported"
  if (/sent a malformed response/i.test(plain)) return "malformed"
  if (badRequestText.test(plain)) return "bad_request"
  return undefined
}

// A 400-class refusal whose text names something more specific is that (some providers answer 400 for an unknown
// model or an overflow); otherwise it is a bad request.
const specificIn400: ReadonlySet<ErrorKind> = new Set<ErrorKind>([
  "context_overflow",
  "model_not_found",
  "rate_limit",
  "quota",
  "auth",
  "auth_permanent",
  "tools_unsupported"
])

/** A 5xx refined by its text: an overflow or an overload said in words wins over the bare status. */
const serverKindOf = (text: string): ErrorKind =>
  overflowText.test(text) ? "context_overflow" : overloadedText.test(text) ? "overloaded" : "server"

/**
 * The kind of a refusal from its status (HTTP, or AIOS's in-body `status_code`), its text and the server's error
 * type (`insufficient_quota` is quota even under 429; `context_length_exceeded` an overflow whatever the wording).
 *
 * @since 0.2.0
 */
export const kindFromStatus = (status: number, text: string, errorType?: string | undefined): ErrorKind => {
  const type = errorType?.trim().toLowerCase() ?? ""
  if (type === "context_length_exceeded") return "context_overflow"
  if (type === "insufficient_quota") return "quota"
  // 401/402/403/429 are access and quota boundaries: they stand even when the text mentions the context.
  switch (status) {
    case 429:
      return quotaText.test(text) && !/rate/i.test(text) ? "quota" : "rate_limit"
    case 401:
    case 403:
      return permanentAuthText.test(text) ? "auth_permanent" : "auth"
    case 402:
      return "quota"
  }
  if (overflowText.test(text)) return "context_overflow"
  switch (status) {
    case 400:
    case 413:
    case 422:
    case 501: {
      const specific = kindFromText(text)
      return specific !== undefined && specificIn400.has(specific) ? specific : "bad_request"
    }
    case 404:
      return "model_not_found"
    case 408:
    case 504:
      return "timeout"
    case 503:
    case 529:
      return "overloaded"
    case 500:
      return /not all available|not configured|check the available llms/i.test(text) ? "model_not_found" : serverKindOf(text)
    default:
      return status >= 500 ? serverKindOf(text) : "bad_request"
  }
}
