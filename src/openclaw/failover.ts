/**
 * OpenClaw's view of a failure: each `ErrorKind` (BackendError.ts) as one of OpenClaw's `FailoverReason`s, and
 * the `errorCode` / `errorType` the stream function puts on an error message so that OpenClaw's
 * `classifyFailoverReason` hook (`classifyHookContext`) reads the same reason back. Tables only: what a message
 * means in words is decided by `BackendError.kindFromText` / `kindFromStatus`, never here.
 *
 * @since 0.2.0
 */
import * as Predicate from "effect/Predicate"
import * as BackendError from "../BackendError.js"
import * as TurnRetry from "../TurnRetry.js"

/**
 * OpenClaw's failover reasons (copied from `openclaw/plugin-sdk`, so the library does not depend on OpenClaw).
 *
 * @since 0.2.0
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
 * The one table: the reason OpenClaw sees for each kind of failure (before `afterStop` below). It decides what
 * OpenClaw does next: it retries the same model only for `rate_limit`, `overloaded`, `server_error` and `timeout`,
 * and falls back at once for the others (reference/retry-failover.md).
 *
 * @since 0.2.0
 */
export const reasonOf: { readonly [K in BackendError.ErrorKind]: FailoverReason } = {
  rate_limit: "rate_limit",
  quota: "billing",
  auth: "auth",
  auth_permanent: "auth_permanent",
  timeout: "timeout",
  unreachable: "server_error",
  tls: "tls_certificate",
  overloaded: "overloaded",
  server: "server_error",
  bad_request: "format",
  tools_unsupported: "format",
  model_not_found: "model_not_found",
  context_overflow: "context_overflow",
  malformed: "format",
  empty_reply: "empty_response"
}

/**
 * The reasons after which OpenClaw 2026.9.6 retries the same model itself (`maybeRetryTransient`: up to 8 times in a
 * 90 s window, rate limits 9 times with no window). Its fifth, `output_limit`, is never ours.
 *
 * @since 0.2.0
 */
export const openClawRetries: ReadonlySet<FailoverReason> = new Set<FailoverReason>([
  "rate_limit",
  "overloaded",
  "server_error",
  "timeout"
])

/**
 * What OpenClaw is told after a turn of ours stopped, by why it stopped (`TurnRetry.StopWhy`):
 * - `natural`: the reason of the error's kind (`reasonOf`). Either OpenClaw does not retry it anyway, or we did not
 *   retry it at all (`retry.maxRetries` 0, `retryOn: "rate_limit"` for a transient failure), so retrying is left to
 *   OpenClaw, as its own providers do.
 * - `gave_up`: our retries were used (or deliberately skipped: a refused connection under `retry.onRefused:
 *   "fail"`, a Retry-After above `retry.maxDelayMs`, a turn deadline). Reporting the natural reason would make
 *   OpenClaw redo the same work (up to 9 × more); `gaveUpReason` makes it fall back to the next model at once.
 *   A budget with no retry in it (`maxRetries` 0) stays `natural`.
 *
 * Independently of the reason, a failure after output already reached OpenClaw carries the terminal code
 * `PROVIDER_FAILURE_WITH_OUTPUT`: replaying the call would repeat what the user has seen.
 *
 * @since 0.2.0
 */
export const afterStop: { readonly [W in TurnRetry.StopWhy]: "natural" | "gave_up" } = {
  not_retryable: "natural",
  output_started: "natural",
  budget_exhausted: "gave_up",
  retry_after_too_long: "gave_up",
  deadline: "gave_up",
  refused: "gave_up"
}

/**
 * The reason for a turn we gave up on. OpenClaw has no reason for "the provider already retried"; of the reasons
 * outside its transient set, `empty_response` is the one that (in 2026.9.6) falls back to the next model at once
 * without side effects: `auth`, `billing`, `model_not_found` and `unknown` cool the auth profile down for later
 * turns, `billing` and `rate_limit` suspend the session, `unknown`/`unclassified` resubmit the turn up to 3 times,
 * `format` is shown with no fallback, `tls_certificate` and `context_overflow` would send the user down the wrong
 * path. Its user-facing line is a plain "request failed"; the message itself says what happened.
 *
 * @since 0.2.0
 */
export const gaveUpReason: FailoverReason = "empty_response"

/**
 * OpenClaw's code for a failure after output was streamed (`@openclaw/ai` `PROVIDER_FAILURE_WITH_OUTPUT_ERROR_CODE`):
 * terminal, never replayed.
 *
 * @since 0.2.0
 */
export const failureWithOutputCode = "PROVIDER_FAILURE_WITH_OUTPUT"

/**
 * Our code for a turn we gave up on (classifies to `gaveUpReason`).
 *
 * @since 0.2.0
 */
export const gaveUpCode = "AIOS_GAVE_UP"

/**
 * Our code for arguments the stream function could not use (classifies to `format`: the caller's mistake, shown).
 *
 * @since 0.2.0
 */
export const invalidRequestCode = "AIOS_INVALID_REQUEST"

/**
 * How a failed turn went, as far as the report to OpenClaw is concerned.
 *
 * @since 0.2.0
 */
export interface Circumstances {
  /** How the turn's retries ended (`TurnRetry.Outcome`), when known. */
  readonly outcome?: TurnRetry.Outcome | undefined
  /** Whether any event after `start` (text, thinking, a tool call) reached OpenClaw before the failure. */
  readonly outputSent?: boolean | undefined
}

/**
 * The reason OpenClaw is told for `error` in these circumstances, and the sentence (if any) that says why we
 * stopped: `afterStop` applied to the outcome, for the reasons OpenClaw would otherwise retry.
 *
 * @since 0.2.0
 */
export const decide = (
  error: BackendError.BackendError,
  circumstances: Circumstances = {}
): { readonly reason: FailoverReason; readonly gaveUp: string | undefined } => {
  const natural = reasonOf[error.kind]
  const outcome = circumstances.outcome
  if (outcome === undefined || !openClawRetries.has(natural) || afterStop[outcome.why] === "natural") {
    return { reason: natural, gaveUp: undefined }
  }
  const sentence = TurnRetry.summary(outcome)
  return sentence === undefined ? { reason: natural, gaveUp: undefined } : { reason: gaveUpReason, gaveUp: sentence }
}

/**
 * The context of OpenClaw's `classifyFailoverReason` / `matchesContextOverflowError` hooks.
 *
 * @since 0.2.0
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
 * What the stream function puts on an OpenClaw error message; OpenClaw hands `errorCode` / `errorType` back to
 * the hooks as `ctx.code` / `ctx.errorType`.
 *
 * @since 0.2.0
 */
export interface Emitted {
  readonly errorMessage: string
  readonly errorCode: string
  readonly errorType: string
}

// Where OpenClaw's own classifier knows a code (`RATE_LIMIT_EXCEEDED`, `OVERLOADED`, `ETIMEDOUT`) it is used, so
// OpenClaw agrees even where it does not ask our hook; every other reason gets an `AIOS_` code.
const codes: { readonly [R in FailoverReason]: string } = {
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
const types: { readonly [R in FailoverReason]: string } = {
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

const entries = (table: { readonly [R in FailoverReason]: string }): Array<readonly [string, FailoverReason]> =>
  (Object.keys(table) as Array<FailoverReason>).map((reason) => [table[reason], reason] as const)

const each = (names: ReadonlyArray<string>, reason: FailoverReason): Array<readonly [string, FailoverReason]> =>
  names.map((name) => [name, reason] as const)

/** Our codes, then the codes other providers and Node's sockets use. */
const byCode: ReadonlyMap<string, FailoverReason> = new Map<string, FailoverReason>([
  ...entries(codes),
  [gaveUpCode, gaveUpReason],
  [invalidRequestCode, "format"],
  ...each([
    "RESOURCE_EXHAUSTED",
    "RATE_LIMIT",
    "RATE_LIMITED",
    "TOO_MANY_REQUESTS",
    "THROTTLED",
    "THROTTLING",
    "THROTTLING_EXCEPTION",
    "THROTTLINGEXCEPTION"
  ], "rate_limit"),
  ...each(["OVERLOADED_ERROR"], "overloaded"),
  ...each([
    "ESOCKETTIMEDOUT",
    "ECONNABORTED",
    "TIMEOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    "UND_ERR_HEADERS_TIMEOUT",
    "UND_ERR_BODY_TIMEOUT"
  ], "timeout"),
  ...each(
    ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_SOCKET"],
    "server_error"
  ),
  ...each(["INSUFFICIENT_QUOTA"], "billing"),
  ...each(["INVALID_API_KEY"], "auth"),
  ...each(["DEACTIVATED_WORKSPACE"], "auth_permanent"),
  ...each(["MODEL_NOT_FOUND"], "model_not_found"),
  ...each(["CONTEXT_LENGTH_EXCEEDED"], "context_overflow"),
  ...each([
    "CERT_HAS_EXPIRED",
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "ERR_TLS_CERT_ALTNAME_INVALID"
  ], "tls_certificate")
])

/**
 * Our types, then other providers'. `invalid_request_error` is left out: OpenAI also sends it for context
 * overflows and unknown models, so the status and text decide first and it is only the last resort.
 */
const byType: ReadonlyMap<string, FailoverReason> = new Map<string, FailoverReason>([
  ...entries(types).filter(([, reason]) => reason !== "format"),
  ...each(["rate_limit_exceeded"], "rate_limit"),
  ...each(["insufficient_quota"], "billing"),
  ...each(["invalid_api_key", "permission_error"], "auth"),
  ...each(["model_not_found"], "model_not_found"),
  ...each(["api_error", "upstream_error"], "server_error")
])

/**
 * The failover reason of one of our errors.
 *
 * @since 0.2.0
 */
export const reasonFor = (error: BackendError.BackendError): FailoverReason => reasonOf[error.kind]

/**
 * The `errorCode` for a reason: it classifies back to the same reason.
 *
 * @since 0.2.0
 */
export const codeFor = (reason: FailoverReason): string => codes[reason]

/**
 * The `errorType` for a reason: it classifies back to the same reason (with a neutral message).
 *
 * @since 0.2.0
 */
export const typeFor = (reason: FailoverReason): string => types[reason]

/**
 * What the stream function puts on the OpenClaw error message for one of our errors: the user-facing message
 * (with a sentence saying we gave up, when we did) and a code and type that `classifyHookContext` maps back to
 * the reason `decide` chose; after output, the terminal `PROVIDER_FAILURE_WITH_OUTPUT` code.
 *
 * @since 0.2.0
 */
export const toEmitted = (error: BackendError.BackendError, circumstances: Circumstances = {}): Emitted => {
  const { gaveUp, reason } = decide(error, circumstances)
  return {
    errorMessage: gaveUp === undefined ? error.message : `${error.message} ${gaveUp}`,
    errorCode: circumstances.outputSent === true ? failureWithOutputCode : gaveUp === undefined ? codes[reason] : gaveUpCode,
    errorType: types[reason]
  }
}

const fromText = (text: string): FailoverReason | null => {
  const kind = BackendError.kindFromText(text)
  return kind === undefined ? null : reasonOf[kind]
}

/**
 * Classifies OpenClaw's hook context: our own `errorCode` or a well-known provider code; our "Gave up" sentence; a
 * context overflow said
 * in words (except under 401/402/403/429, which stand whatever the text says); the error type; the HTTP status
 * refined by the text; the text alone. `null` when nothing is recognised, so OpenClaw's own classification
 * applies.
 *
 * @since 0.2.0
 */
export const classifyHookContext = (ctx: HookContext): FailoverReason | null => {
  const code = typeof ctx.code === "string" ? byCode.get(ctx.code.trim().toUpperCase()) : undefined
  if (code !== undefined) return code
  const text = typeof ctx.errorMessage === "string" ? ctx.errorMessage : ""
  // Our own "Gave up …" sentence: the message alone agrees with the code it was sent with.
  if (TurnRetry.isGaveUpText(text)) return gaveUpReason
  const status = typeof ctx.status === "number" && Number.isInteger(ctx.status) && ctx.status >= 400
    ? ctx.status
    : undefined
  const boundary = status === 401 || status === 402 || status === 403 || status === 429
  if (!boundary && BackendError.kindFromText(text) === "context_overflow") return "context_overflow"
  const errorType = typeof ctx.errorType === "string" ? ctx.errorType.trim().toLowerCase() : ""
  const typed = byType.get(errorType)
  if (typed !== undefined) return typed
  if (status !== undefined) return reasonOf[BackendError.kindFromStatus(status, text, errorType)]
  return fromText(text) ?? (errorType === "invalid_request_error" ? "format" : null)
}

const isHookContext = (u: unknown): u is HookContext =>
  Predicate.hasProperty(u, "errorMessage") && typeof u.errorMessage === "string" && !BackendError.isBackendError(u)

const field = (u: object, key: string): unknown => (u as Record<string, unknown>)[key]

const stringField = (u: object, key: string): string | undefined => {
  const value = field(u, key)
  return typeof value === "string" && value.trim() !== "" ? value : undefined
}

const statusField = (u: object): number | undefined => {
  const raw = field(u, "status") ?? field(u, "statusCode")
  const n = typeof raw === "string" && /^\d{3}$/.test(raw.trim()) ? Number(raw) : raw
  return typeof n === "number" && Number.isInteger(n) ? n : undefined
}

const classifyUnknown = (input: unknown, depth: number): FailoverReason | null => {
  if (BackendError.isBackendError(input)) return reasonFor(input)
  if (isHookContext(input)) return classifyHookContext(input)
  if (typeof input === "string") return classifyHookContext({ errorMessage: input })
  if (input === null || typeof input !== "object" || depth > 5) return null
  const name = stringField(input, "name")
  // The caller's own abort is not a failure of the model (OpenClaw: stopReason "aborted").
  if (name === "AbortError") return null
  if (name === "TimeoutError") return "timeout"
  const message = field(input, "message")
  const own = classifyHookContext({
    errorMessage: typeof message === "string" ? message : "",
    status: statusField(input),
    code: stringField(input, "code"),
    errorType: stringField(input, "errorType") ?? stringField(input, "type")
  })
  if (own !== null) return own
  const nested = field(input, "error") ?? field(input, "cause")
  return nested === undefined || nested === input ? null : classifyUnknown(nested, depth + 1)
}

/**
 * The failover reason of anything: one of our errors, an OpenClaw hook context, an `Error` (or object) with
 * `message` / `status` / `code` / `type`, or a bare message. `null` for the caller's own abort and for what is
 * not recognised.
 *
 * @since 0.2.0
 */
export const classify = (input: unknown): FailoverReason | null => classifyUnknown(input, 0)

/**
 * Whether an error (one of ours, an OpenClaw hook context, an `Error`) or a message says the conversation did
 * not fit the model's context window.
 *
 * @since 0.2.0
 */
export const isContextOverflow = (input: unknown): boolean =>
  typeof input === "string"
    ? BackendError.kindFromText(input) === "context_overflow"
    : classify(input) === "context_overflow"
