/**
 * Maps kernel errors, and the error context OpenClaw hands to a provider's `classifyFailoverReason` hook, onto
 * OpenClaw's `FailoverReason`s; recognises context-window overflows. The adapter puts `toEmitted(error)` on the
 * error message it emits; OpenClaw passes `errorCode` / `errorType` back as `ctx.code` / `ctx.errorType`, and
 * `classifyHookContext` reads them back to the same reason.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import type { KernelError, RejectionKind } from "./KernelError.js"
import { isKernelError, rejectionKind } from "./KernelError.js"

/**
 * OpenClaw's failover reasons (from `openclaw/plugin-sdk`, copied so the library does not depend on OpenClaw).
 *
 * @since 0.1.0
 */
export type FailoverReason =
  | "auth"
  | "auth_permanent"
  | "format"
  | "rate_limit"
  | "overloaded"
  | "billing"
  | "server_error"
  | "timeout"
  | "tls_certificate"
  | "context_overflow"
  | "model_not_found"
  | "session_expired"
  | "empty_response"
  | "no_error_details"
  | "unclassified"
  | "unknown"

/**
 * The context of OpenClaw's `classifyFailoverReason` / `matchesContextOverflowError` hooks.
 *
 * @since 0.1.0
 */
export interface HookContext {
  readonly provider?: string | undefined
  readonly modelId?: string | undefined
  readonly errorMessage: string
  readonly status?: number | undefined
  readonly code?: string | undefined
  readonly errorType?: string | undefined
}

/**
 * What the adapter puts on an OpenClaw error message for a kernel error.
 *
 * @since 0.1.0
 */
export interface Emitted {
  readonly errorMessage: string
  readonly errorCode: string
  readonly errorType: string
}

// Where OpenClaw's own classifier knows a code (`RATE_LIMIT_EXCEEDED`, `OVERLOADED`, `ETIMEDOUT`) we use it, so
// OpenClaw agrees even where it does not ask our hook; every other reason gets an `AIOS_` code.
const codes: Record<FailoverReason, string> = {
  auth: "AIOS_AUTH",
  auth_permanent: "AIOS_AUTH_PERMANENT",
  format: "AIOS_FORMAT",
  rate_limit: "RATE_LIMIT_EXCEEDED",
  overloaded: "OVERLOADED",
  billing: "AIOS_BILLING",
  server_error: "AIOS_SERVER_ERROR",
  timeout: "ETIMEDOUT",
  tls_certificate: "AIOS_TLS_CERTIFICATE",
  context_overflow: "AIOS_CONTEXT_OVERFLOW",
  model_not_found: "AIOS_MODEL_NOT_FOUND",
  session_expired: "AIOS_SESSION_EXPIRED",
  empty_response: "AIOS_EMPTY_RESPONSE",
  no_error_details: "AIOS_NO_ERROR_DETAILS",
  unclassified: "AIOS_UNCLASSIFIED",
  unknown: "AIOS_UNKNOWN"
}

// Error types in the OpenAI / Anthropic vocabulary where one exists (OpenClaw reads `invalid_request_error`,
// `server_error` and `overloaded_error` itself).
const types: Record<FailoverReason, string> = {
  auth: "authentication_error",
  auth_permanent: "auth_permanent_error",
  format: "invalid_request_error",
  rate_limit: "rate_limit_error",
  overloaded: "overloaded_error",
  billing: "billing_error",
  server_error: "server_error",
  timeout: "timeout_error",
  tls_certificate: "tls_certificate_error",
  context_overflow: "context_length_exceeded",
  model_not_found: "not_found_error",
  session_expired: "session_expired_error",
  empty_response: "empty_response_error",
  no_error_details: "no_error_details",
  unclassified: "unclassified_error",
  unknown: "unknown_error"
}

const byCode: ReadonlyMap<string, FailoverReason> = new Map<string, FailoverReason>([
  ...Object.entries(codes).map(([reason, code]) => [code, reason as FailoverReason] as const),
  ...["RESOURCE_EXHAUSTED", "RATE_LIMIT", "RATE_LIMITED", "TOO_MANY_REQUESTS", "THROTTLED", "THROTTLING"].map(
    (c) => [c, "rate_limit"] as const
  ),
  ["THROTTLING_EXCEPTION", "rate_limit"],
  ["THROTTLINGEXCEPTION", "rate_limit"],
  ["OVERLOADED_ERROR", "overloaded"],
  ...[
    "ESOCKETTIMEDOUT",
    "ECONNABORTED",
    "TIMEOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    "UND_ERR_HEADERS_TIMEOUT",
    "UND_ERR_BODY_TIMEOUT"
  ].map((c) => [c, "timeout"] as const),
  ...["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_SOCKET"]
    .map((c) => [c, "server_error"] as const),
  ["INSUFFICIENT_QUOTA", "billing"],
  ["INVALID_API_KEY", "auth"],
  ["DEACTIVATED_WORKSPACE", "auth_permanent"],
  ["MODEL_NOT_FOUND", "model_not_found"],
  ["CONTEXT_LENGTH_EXCEEDED", "context_overflow"],
  ...[
    "CERT_HAS_EXPIRED",
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "ERR_TLS_CERT_ALTNAME_INVALID"
  ].map((c) => [c, "tls_certificate"] as const)
])

const byType: ReadonlyMap<string, FailoverReason> = new Map<string, FailoverReason>([
  ...Object.entries(types)
    .filter(([reason]) => reason !== "format")
    .map(([reason, type]) => [type, reason as FailoverReason] as const),
  ["rate_limit_exceeded", "rate_limit"],
  ["insufficient_quota", "billing"],
  ["invalid_api_key", "auth"],
  ["permission_error", "auth"],
  ["model_not_found", "model_not_found"],
  ["api_error", "server_error"],
  ["upstream_error", "server_error"]
])

const overflowExtra =
  /context size|exceeds? (?:the )?(?:model'?s? )?(?:available )?context|exceeds the maximum number of tokens|maximum number of tokens allowed|too many input tokens/i
const billingText =
  /insufficient[_ ]quota|quota (?:exceeded|exhausted)|exceeded your (?:current )?quota|billing|payment required|credit balance|out of credits?|insufficient (?:credits?|balance|funds)/i
const rateLimitText = /rate[_ -]?limit|too many requests|throttl|resource[_ ]exhausted|\b429\b/i
const permanentAuthText = /revoked|deactivated|disabled|suspended|banned/i
const authText =
  /invalid[_ ]api[_ ]key|incorrect api key|unauthori[sz]ed|authentication|permission denied|forbidden|access denied|\b40[13]\b/i
const modelNotFoundText =
  /model\b[^.\n]{0,60}?(?:not found|does not exist|not available|not configured|is unknown)|unknown model|no such model|model_not_found|not all available|check the available llms|\b404\b/i
const tlsText = /certificate|self[- ]signed|unable to verify|ERR_TLS|CERT_/i
const timeoutText = /timed? ?out|timeout|deadline exceeded|\b408\b|\b504\b/i
const overloadedText =
  /overloaded|over capacity|at capacity|service unavailable|temporarily unavailable|server is busy|\b503\b|\b529\b/i
const serverErrorText =
  /internal server error|bad gateway|ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|connection (?:refused|reset|closed)|server error|\b50[02]\b/i
const emptyText =
  /empty (?:response|reply|completion|output|content|message)|no (?:content|choices|output|text) (?:in|was |returned)|returned no (?:content|text|output)/i
const formatText =
  /invalid request|invalid_request|malformed|bad request|unprocessable|validation (?:error|failed)|\b400\b|\b422\b/i

/**
 * Whether an error (a `KernelError`, an OpenClaw hook context, an `Error`) or a message text says the
 * conversation did not fit the model's context window, in kernel or OpenAI-style wording.
 *
 * @since 0.1.0
 */
export const isContextOverflow = (input: unknown): boolean => {
  if (typeof input === "string") return rejectionKind(0, input) === "context_overflow" || overflowExtra.test(input)
  if (isKernelError(input) || isHookContext(input)) return classify(input) === "context_overflow"
  return typeof messageOf(input) === "string" && isContextOverflow(messageOf(input))
}

/** The reason a message alone suggests (no status, no code). Order matters: the most specific first. */
const fromText = (text: string): FailoverReason | null => {
  if (text.trim() === "") return null
  if (isContextOverflow(text)) return "context_overflow"
  if (billingText.test(text) && !/rate[_ -]?limit/i.test(text)) return "billing"
  if (rateLimitText.test(text)) return "rate_limit"
  if (authText.test(text)) return permanentAuthText.test(text) ? "auth_permanent" : "auth"
  if (modelNotFoundText.test(text)) return "model_not_found"
  if (tlsText.test(text)) return "tls_certificate"
  if (timeoutText.test(text)) return "timeout"
  if (overloadedText.test(text)) return "overloaded"
  if (serverErrorText.test(text)) return "server_error"
  if (emptyText.test(text)) return "empty_response"
  if (formatText.test(text)) return "format"
  return null
}

// A 400-class rejection whose text names something more specific is that (some providers answer 400 for an
// unknown model or a context overflow); otherwise it is a format error.
const specificIn400: ReadonlySet<FailoverReason> = new Set<FailoverReason>([
  "context_overflow",
  "model_not_found",
  "rate_limit",
  "billing",
  "auth",
  "auth_permanent"
])

/** A `RejectionKind` (from `KernelError.rejectionKind` or a `KernelRejected`) and its text → the reason. */
const fromKind = (kind: RejectionKind, text: string): FailoverReason => {
  switch (kind) {
    case "rate_limited":
      return "rate_limit"
    case "auth_failed":
      return permanentAuthText.test(text) ? "auth_permanent" : "auth"
    case "quota_exhausted":
      return "billing"
    case "bad_request": {
      const specific = fromText(text)
      return specific !== null && specificIn400.has(specific) ? specific : "format"
    }
    case "model_not_found":
    case "model_not_configured":
      return "model_not_found"
    case "timeout":
      return "timeout"
    case "context_overflow":
      return "context_overflow"
    case "unavailable":
      return "overloaded"
    case "server_error":
    case "bad_gateway":
      return overflowExtra.test(text) ? "context_overflow" : overloadedText.test(text) ? "overloaded" : "server_error"
  }
}

/**
 * The failover reason of a kernel error. Decisions beyond the reference table: a kernel `503` ("provider
 * unreachable") is `overloaded`, as OpenClaw maps 503 ⇄ overloaded; a kernel that cannot be reached at all
 * (refused, reset) and `502` are `server_error`; a malformed response whose `issue` says it was empty is
 * `empty_response`.
 *
 * @since 0.1.0
 */
export const classifyError = (error: KernelError): FailoverReason => {
  switch (error._tag) {
    case "KernelTimeout":
      return "timeout"
    case "KernelUnreachable":
      return tlsText.test(error.detail) ? "tls_certificate" : "server_error"
    case "KernelMalformedResponse":
      return emptyText.test(error.issue) || /^\s*empty\b/i.test(error.issue) ? "empty_response" : "format"
    case "ModelUnknown":
      return "model_not_found"
    case "KernelRejected":
      return fromKind(error.kind, [error.reason, error.errorType ?? ""].join(" "))
    case "KernelHttpError": {
      const text = [error.errorType ?? "", ...error.detail].join(" ")
      return fromKind(rejectionKind(error.status, text, error.errorType), text)
    }
  }
}

const isHookContext = (u: unknown): u is HookContext =>
  Predicate.hasProperty(u, "errorMessage") && typeof u.errorMessage === "string" && !isKernelError(u)

/**
 * Classifies OpenClaw's hook context: first our own `errorCode` (and well-known provider codes), then a
 * context-overflow text, the `errorType`, the HTTP status refined by the text, and finally the text alone.
 * `null` when nothing is recognised, so OpenClaw's own classification applies.
 *
 * @since 0.1.0
 */
export const classifyHookContext = (ctx: HookContext): FailoverReason | null => {
  const code = typeof ctx.code === "string" ? byCode.get(ctx.code.trim().toUpperCase()) : undefined
  if (code !== undefined) return code
  const text = typeof ctx.errorMessage === "string" ? ctx.errorMessage : ""
  const status = typeof ctx.status === "number" && Number.isInteger(ctx.status) && ctx.status >= 400
    ? ctx.status
    : undefined
  // 401/402/403/429 are access and quota boundaries: they stand even when the text mentions the context.
  const boundary = status === 401 || status === 402 || status === 403 || status === 429
  if (!boundary && isContextOverflow(text)) return "context_overflow"
  const type = typeof ctx.errorType === "string" ? ctx.errorType.trim().toLowerCase() : ""
  const typed = byType.get(type)
  if (typed !== undefined) return typed
  if (status !== undefined) return fromKind(rejectionKind(status, text, ctx.errorType), text)
  return fromText(text) ?? (type === "invalid_request_error" ? "format" : null)
}

const messageOf = (u: unknown): unknown => (Predicate.hasProperty(u, "message") ? u.message : undefined)

const stringField = (u: object, key: string): string | undefined => {
  const value = (u as Record<string, unknown>)[key]
  return typeof value === "string" && value.trim() !== "" ? value : undefined
}

const statusField = (u: object): number | undefined => {
  const raw = (u as Record<string, unknown>)["status"] ?? (u as Record<string, unknown>)["statusCode"]
  const n = typeof raw === "string" && /^\d{3}$/.test(raw.trim()) ? Number(raw) : raw
  return typeof n === "number" && Number.isInteger(n) ? n : undefined
}

const classifyUnknown = (input: unknown, depth: number): FailoverReason | null => {
  if (isKernelError(input)) return classifyError(input)
  if (isHookContext(input)) return classifyHookContext(input)
  if (typeof input === "string") return classifyHookContext({ errorMessage: input })
  if (input === null || typeof input !== "object" || depth > 5) return null
  const name = stringField(input, "name")
  // The caller's own abort is not a failure of the model (OpenClaw: stopReason "aborted").
  if (name === "AbortError") return null
  if (name === "TimeoutError") return "timeout"
  const message = messageOf(input)
  const own = classifyHookContext({
    errorMessage: typeof message === "string" ? message : "",
    status: statusField(input),
    code: stringField(input, "code"),
    errorType: stringField(input, "errorType") ?? stringField(input, "type")
  })
  if (own !== null) return own
  const nested = (input as Record<string, unknown>)["error"] ?? (input as Record<string, unknown>)["cause"]
  return nested === undefined || nested === input ? null : classifyUnknown(nested, depth + 1)
}

/**
 * The failover reason of anything: a `KernelError`, an OpenClaw hook context, an `Error` (or object) with
 * `message` / `status` / `code` / `type`, or a bare message. `null` for the caller's own abort and for what is
 * not recognised.
 *
 * @since 0.1.0
 */
export const classify = (input: KernelError | HookContext | unknown): FailoverReason | null =>
  classifyUnknown(input, 0)

/**
 * The `errorCode` for a reason: it classifies back to the same reason.
 *
 * @since 0.1.0
 */
export const codeFor = (reason: FailoverReason): string => codes[reason]

/**
 * The `errorType` for a reason: it classifies back to the same reason (with a context-free message).
 *
 * @since 0.1.0
 */
export const typeFor = (reason: FailoverReason): string => types[reason]

/**
 * What the adapter puts on the OpenClaw error message for a kernel error: the user-facing message and a code
 * and type that `classifyHookContext` maps back to `classify(error)`.
 *
 * @since 0.1.0
 */
export const toEmitted = (error: KernelError): Emitted => {
  const reason = classifyError(error)
  return { errorMessage: error.message, errorCode: codes[reason], errorType: types[reason] }
}
