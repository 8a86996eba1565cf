/**
 * Everything a kernel (AIOS or OpenAI-compatible) can do wrong, as one tagged union. Every error carries a
 * message a user can act on, the model it concerns (when known), and whether retrying may help.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"

/** Fields common to every kernel error. */
interface Common {
  /** The kernel's base URL. */
  readonly url: string
  /** The model the call was for, when there was one. */
  readonly model?: string | undefined
}

/**
 * The kernel could not be reached: connection refused, reset, DNS, or the socket closed mid-response.
 *
 * @since 0.1.0
 */
export class KernelUnreachable extends Data.TaggedError("KernelUnreachable")<
  Common & { readonly detail: string; readonly cause?: unknown }
> {
  readonly retryable = true
  override get message(): string {
    return `Cannot reach ${server(this.url)}: ${plainDetail(this.detail)}. Is it running? Start it or set AIOS_URL / baseUrl.`
  }
}

/**
 * No complete response within the client timeout (the AIOS kernel itself never times out).
 *
 * @since 0.1.0
 */
export class KernelTimeout extends Data.TaggedError("KernelTimeout")<Common & { readonly timeoutMs: number }> {
  readonly retryable = true
  override get message(): string {
    return `${capitalize(server(this.url))} did not answer${forModel(this.model)} within ${this.timeoutMs} ms ` +
      `(requestTimeoutMs). The kernel may be overloaded or stuck; check its logs or raise the timeout.`
  }
}

/**
 * A non-200 HTTP status from the kernel's transport (422 for a request it could not validate, 500 for an
 * exception in its handler, anything else). `detail` holds FastAPI's validation messages or the body text.
 *
 * @since 0.1.0
 */
export class KernelHttpError extends Data.TaggedError("KernelHttpError")<
  Common & {
    readonly status: number
    readonly detail: ReadonlyArray<string>
    /** Milliseconds the server asked us to wait (Retry-After / retry-after-ms), when it said. */
    readonly retryAfterMs?: number | undefined
    /** The server's own error type (OpenAI-compatible `error.type`/`error.code`), when it said. */
    readonly errorType?: string | undefined
  }
> {
  get retryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500
  }
  override get message(): string {
    const what = this.status === 422
      ? "rejected the request as malformed"
      : this.status >= 500
      ? "failed internally"
      : "answered"
    const detail = this.detail.length > 0 ? `: ${this.detail.join("; ")}` : ""
    return `${capitalize(server(this.url))} ${what} (HTTP ${this.status})${forModel(this.model)}${detail}`
  }
}

/**
 * The kind of an in-body failure, from `response.status_code` (and, for 500, the message).
 *
 * @since 0.1.0
 */
export type RejectionKind =
  | "rate_limited"
  | "auth_failed"
  | "quota_exhausted"
  | "bad_request"
  | "model_not_found"
  | "model_not_configured"
  | "timeout"
  | "context_overflow"
  | "server_error"
  | "bad_gateway"
  | "unavailable"

const retryableKinds: ReadonlySet<RejectionKind> = new Set<RejectionKind>([
  "rate_limited",
  "timeout",
  "server_error",
  "bad_gateway",
  "unavailable"
])

const advice: Record<RejectionKind, string> = {
  rate_limited: "The provider is rate-limiting; the call is retried after a wait, or lower your request rate.",
  auth_failed: "Check the API key configured for this model in the kernel's config.yaml.",
  quota_exhausted: "The provider account is out of quota or credit.",
  bad_request: "The provider refused the request as invalid.",
  model_not_found: "The provider does not know this model; check its name in the kernel's config.yaml.",
  model_not_configured: "This model is not configured in the kernel; pick one from /core/llms/list.",
  timeout: "The provider timed out; the call is retried.",
  context_overflow: "The conversation is longer than the model's context window; compact it.",
  server_error: "The kernel or provider failed.",
  bad_gateway: "The provider returned an error.",
  unavailable: "The provider is unreachable from the kernel."
}

/**
 * The kernel handled the call but reported a failure inside an HTTP 200 body (`response.status_code`), or an
 * OpenAI-compatible server answered with an error status that maps onto the same kinds.
 *
 * @since 0.1.0
 */
export class KernelRejected extends Data.TaggedError("KernelRejected")<
  Common & {
    readonly statusCode: number
    readonly kind: RejectionKind
    /** The kernel's own error text. */
    readonly reason: string
    readonly retryAfterMs?: number | undefined
    readonly errorType?: string | undefined
  }
> {
  get retryable(): boolean {
    return retryableKinds.has(this.kind)
  }
  override get message(): string {
    return `${capitalize(server(this.url))} reported ${this.statusCode}${forModel(this.model)}: ${
      this.reason || "(no message)"
    }. ${advice[this.kind]}`
  }
}

/**
 * The response was not JSON, or not the shape the kernel's API promises. `issue` names what was wrong
 * without echoing the body (which may contain secrets).
 *
 * @since 0.1.0
 */
export class KernelMalformedResponse extends Data.TaggedError("KernelMalformedResponse")<
  Common & { readonly endpoint: string; readonly issue: string }
> {
  readonly retryable = false
  override get message(): string {
    return `${capitalize(server(this.url))} sent a malformed response to ${this.endpoint}${
      forModel(this.model)
    }: ${this.issue}. Is ${this.url} really ${serverKind(this.url)}?`
  }
}

/**
 * The model is not in the kernel's model list; checked before `/query`, because a bad `llms` entry makes the
 * real kernel hang.
 *
 * @since 0.1.0
 */
export class ModelUnknown extends Data.TaggedError("ModelUnknown")<
  Common & { readonly model: string; readonly available: ReadonlyArray<string> }
> {
  readonly retryable = false
  override get message(): string {
    const list = this.available.length > 0 ? this.available.join(", ") : "none"
    return `Model '${this.model}' is not served by ${server(this.url)}. Available: ${list}.`
  }
}

/**
 * Any failure of a kernel call.
 *
 * @since 0.1.0
 */
export type KernelError =
  | KernelUnreachable
  | KernelTimeout
  | KernelHttpError
  | KernelRejected
  | KernelMalformedResponse
  | ModelUnknown

const tags: ReadonlySet<string> = new Set([
  "KernelUnreachable",
  "KernelTimeout",
  "KernelHttpError",
  "KernelRejected",
  "KernelMalformedResponse",
  "ModelUnknown"
])

/** Whether `u` is a `KernelError`. */
export const isKernelError = (u: unknown): u is KernelError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag)

/** The wait the server asked for, in milliseconds, if any. */
export const retryAfterMs = (error: KernelError): number | undefined =>
  error._tag === "KernelRejected" || error._tag === "KernelHttpError" ? error.retryAfterMs : undefined

const contextOverflow = /context[ _-]?(length|window)|maximum context|too many tokens|prompt is too long|context_length_exceeded|input is too long|reduce the length/i

/**
 * Classifies an in-body (or HTTP) status code and message into a `RejectionKind`. An OpenAI-style
 * `errorType` (`error.code` / `error.type`) refines it: `insufficient_quota` is quota even under 429, and
 * `context_length_exceeded` is an overflow whatever the wording.
 *
 * @since 0.1.0
 */
export const rejectionKind = (statusCode: number, reason: string, errorType?: string | undefined): RejectionKind => {
  const type = errorType?.trim().toLowerCase() ?? ""
  if (type === "context_length_exceeded" || contextOverflow.test(reason)) return "context_overflow"
  if (type === "insufficient_quota") return "quota_exhausted"
  switch (statusCode) {
    case 429:
      return /quota|billing|credit/i.test(reason) && !/rate/i.test(reason) ? "quota_exhausted" : "rate_limited"
    case 401:
    case 403:
      return "auth_failed"
    case 402:
      return "quota_exhausted"
    case 400:
    case 413:
    case 422:
      return "bad_request"
    case 404:
      return "model_not_found"
    case 408:
    case 504:
      return "timeout"
    case 502:
      return "bad_gateway"
    case 503:
      return "unavailable"
    case 500:
      return /not all available|not configured|check the available llms/i.test(reason)
        ? "model_not_configured"
        : "server_error"
    default:
      return statusCode >= 500 ? "server_error" : "bad_request"
  }
}

/**
 * A socket error code in words. Hosts (OpenClaw) replace messages that carry raw codes with a generic line that
 * drops the URL, so the code stays in `detail` and the message says what it means.
 */
const plainDetail = (detail: string): string => {
  switch (detail) {
    case "ECONNREFUSED":
      return "nothing is listening at that address"
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "the connection was dropped"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "the host name does not resolve"
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connecting took too long"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "the network cannot reach that host"
    default:
      return detail
  }
}

/** Names the server: an OpenAI-compatible base URL ends in a version segment (`/v1`), an AIOS kernel's does not. */
const serverKind = (url: string): string =>
  /\/v\d+$/.test(url) ? "an OpenAI-compatible endpoint" : "an AIOS kernel"

const server = (url: string): string => `${serverKind(url).replace(/^an? /, "the ")} at ${url}`

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)

const forModel = (model: string | undefined): string => (model ? ` for model '${model}'` : "")

/**
 * The same error carrying `retryAfterMs` (the wait the server asked for), for the errors that have the field;
 * any other error is returned unchanged. Used when the wait was read from the message text rather than a header.
 *
 * @since 0.1.0
 */
export const withRetryAfterMs = <E extends KernelError>(error: E, ms: number): E => {
  switch (error._tag) {
    case "KernelRejected":
      return new KernelRejected({
        url: error.url,
        model: error.model,
        statusCode: error.statusCode,
        kind: error.kind,
        reason: error.reason,
        retryAfterMs: ms,
        errorType: error.errorType
      }) as E
    case "KernelHttpError":
      return new KernelHttpError({
        url: error.url,
        model: error.model,
        status: error.status,
        detail: error.detail,
        retryAfterMs: ms,
        errorType: error.errorType
      }) as E
    default:
      return error
  }
}
