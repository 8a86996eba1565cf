import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as BackendError from "../src/BackendError.js"
import * as Failover from "../src/openclaw/failover.js"
import type { FailoverReason } from "../src/openclaw/failover.js"
import type * as TurnRetry from "../src/TurnRetry.js"

const url = "http://127.0.0.1:8000"
const model = "gpt-4o"

/** A refusal built the way the backends build it: kind from status, text and error type. */
const rejected = (status: number, reason: string, extra: { errorType?: string; inBody?: boolean } = {}) =>
  BackendError.rejected({ url, model, status, reason, inBody: extra.inBody ?? true, errorType: extra.errorType })

describe("Failover.reasonOf: one reason per kind", () => {
  it("covers every kind", () => {
    for (const kind of BackendError.kinds) expect(Failover.reasonOf[kind], kind).toBeTypeOf("string")
    expect(Object.keys(Failover.reasonOf).sort()).toEqual([...BackendError.kinds].sort())
  })
})

describe("Failover.classify: the reference table", () => {
  const rows: ReadonlyArray<readonly [string, BackendError.BackendError | Failover.HookContext, FailoverReason]> = [
    ["429 rate limit", rejected(429, "Rate Limit Exceeded for model 'gpt-4o'. Please try again later."), "rate_limit"],
    ["429 over HTTP", rejected(429, "Too Many Requests", { inBody: false }), "rate_limit"],
    ["402", rejected(402, "Payment Required", { inBody: false }), "billing"],
    [
      "quota exhausted",
      rejected(429, "You exceeded your current quota, please check your plan and billing details.", {
        inBody: false,
        errorType: "insufficient_quota"
      }),
      "billing"
    ],
    ["401", rejected(401, "Authentication Error with model 'gpt-4o': Incorrect API key provided"), "auth"],
    ["403", rejected(403, "Forbidden", { inBody: false }), "auth"],
    ["401, key revoked for good", rejected(401, "This API key has been revoked."), "auth_permanent"],
    ["404 model not found", rejected(404, "The model `gpt-5o` does not exist"), "model_not_found"],
    [
      "model not configured in the kernel",
      rejected(500, "Selected LLMs are not all available. Please check the available LLMs."),
      "model_not_found"
    ],
    ["408", rejected(408, "Request timed out."), "timeout"],
    ["504", rejected(504, "Gateway Timeout", { inBody: false }), "timeout"],
    ["client timeout", new BackendError.BackendTimeout({ url, model, timeoutMs: 120_000 }), "timeout"],
    ["502", rejected(502, "Provider API error"), "server_error"],
    ["503", rejected(503, "Provider unreachable"), "overloaded"],
    [
      "connection refused",
      new BackendError.BackendUnreachable({ url, detail: "connect ECONNREFUSED 127.0.0.1:8000" }),
      "server_error"
    ],
    ["connection reset", new BackendError.BackendUnreachable({ url, detail: "socket hang up (ECONNRESET)" }), "server_error"],
    ["500", rejected(500, "Internal Server Error", { inBody: false }), "server_error"],
    ["other 5xx", rejected(507, "", { inBody: false }), "server_error"],
    [
      "context window exceeded",
      rejected(400, "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."),
      "context_overflow"
    ],
    ["400 invalid request", rejected(400, "Invalid value for 'messages'"), "format"],
    [
      "422 invalid request",
      rejected(422, "body.query_data.action_type: Input should be 'chat'", { inBody: false }),
      "format"
    ],
    ["native tools refused", rejected(400, "tools is not supported for this model"), "format"],
    [
      "malformed response body",
      new BackendError.MalformedResponse({ url, endpoint: "/query", issue: "expected response.status_code" }),
      "format"
    ],
    ["empty response", new BackendError.EmptyReply({ url, model }), "empty_response"],
    ["untrusted certificate", new BackendError.BackendUnreachable({ url, detail: "self-signed certificate" }), "tls_certificate"]
  ]
  for (const [name, input, reason] of rows) {
    it(`${name} → ${reason}`, () => {
      expect(Failover.classify(input)).toBe(reason)
    })
  }

  it("abort by the caller → none", () => {
    const abort = new DOMException("This operation was aborted", "AbortError")
    expect(Failover.classify(abort)).toBeNull()
  })
})

describe("Failover.classify: every kernel failure of reference/aios-kernel.md", () => {
  const rows: ReadonlyArray<readonly [string, BackendError.BackendError, FailoverReason]> = [
    ["provider rate limit", rejected(429, "Rate Limit Exceeded for model 'gpt-4o'. Please try again later."), "rate_limit"],
    ["provider auth failure", rejected(401, "Authentication Error with model 'gpt-4o': invalid x-api-key"), "auth"],
    ["bad request to provider", rejected(400, "litellm.BadRequestError: OpenAIException"), "format"],
    ["provider timeout", rejected(408, "Request Timeout for model 'gpt-4o'"), "timeout"],
    ["provider unreachable", rejected(503, "Service Unavailable for model 'gpt-4o'"), "overloaded"],
    ["other provider API error", rejected(502, "API Error with model 'gpt-4o'"), "server_error"],
    ["model not found at provider", rejected(404, "Model 'gpt-4o' not found"), "model_not_found"],
    [
      "model not configured in the kernel",
      rejected(500, "Selected LLMs are not all available. Please check the available LLMs."),
      "model_not_found"
    ],
    [
      "model not in /core/llms/list",
      new BackendError.ModelUnknown({ url, model: "gpt-9", available: ["gpt-4o"] }),
      "model_not_found"
    ],
    ["empty messages", rejected(400, "messages must not be empty"), "format"],
    ["any other failure", rejected(500, "'NoneType' object is not subscriptable"), "server_error"],
    ["malformed request body (422)", rejected(422, "body.query_type: Field required", { inBody: false }), "format"],
    ["exception in the handler (500 JSON)", rejected(500, "KeyError: 'llms'", { inBody: false }), "server_error"],
    ["exception in the handler (500 text)", rejected(500, "Internal Server Error", { inBody: false }), "server_error"],
    ["the request never returns", new BackendError.BackendTimeout({ url, model, timeoutMs: 120_000 }), "timeout"],
    [
      "kernel down",
      new BackendError.BackendUnreachable({ url, detail: "connect ECONNREFUSED 127.0.0.1:8000" }),
      "server_error"
    ],
    [
      "not an AIOS kernel",
      new BackendError.MalformedResponse({ url, endpoint: "/query", issue: "body is not JSON" }),
      "format"
    ],
    ["kernel lost the answer (response_message null, no tool calls)", new BackendError.EmptyReply({ url, model }), "empty_response"]
  ]
  for (const [name, error, reason] of rows) {
    it(`${name} → ${reason}`, () => {
      expect(Failover.classify(error)).toBe(reason)
      expect(Failover.reasonFor(error)).toBe(reason)
    })
  }
})

describe("Failover.classifyHookContext: contexts from other providers (no code)", () => {
  const rows: ReadonlyArray<readonly [Failover.HookContext, FailoverReason | null]> = [
    [{ errorMessage: "429 Too Many Requests" }, "rate_limit"],
    [{ errorMessage: "Rate limit reached for requests" }, "rate_limit"],
    [{ errorMessage: "slow down", status: 429 }, "rate_limit"],
    [{ errorMessage: "Invalid API key provided" }, "auth"],
    [{ errorMessage: "nope", status: 401 }, "auth"],
    [{ errorMessage: "nope", status: 403 }, "auth"],
    [{ errorMessage: "Your API key was deactivated", status: 401 }, "auth_permanent"],
    [{ errorMessage: "nope", status: 402 }, "billing"],
    [{ errorMessage: "You exceeded your current quota", status: 429 }, "billing"],
    [{ errorMessage: "insufficient_quota" }, "billing"],
    [{ errorMessage: "Your credit balance is too low" }, "billing"],
    [{ errorMessage: "model 'foo' not found, try pulling it first" }, "model_not_found"],
    [{ errorMessage: "nope", status: 404 }, "model_not_found"],
    [{ errorMessage: "Request timed out." }, "timeout"],
    [{ errorMessage: "connect ETIMEDOUT 10.0.0.1:443" }, "timeout"],
    [{ errorMessage: "upstream", status: 408 }, "timeout"],
    [{ errorMessage: "upstream", status: 504 }, "timeout"],
    [{ errorMessage: "Bad gateway", status: 502 }, "server_error"],
    [{ errorMessage: "upstream", status: 503 }, "overloaded"],
    [{ errorMessage: "Overloaded" }, "overloaded"],
    [{ errorMessage: "connect ECONNREFUSED 127.0.0.1:11434" }, "server_error"],
    [{ errorMessage: "read ECONNRESET" }, "server_error"],
    [{ errorMessage: "boom", status: 500 }, "server_error"],
    [{ errorMessage: "self-signed certificate in certificate chain" }, "tls_certificate"],
    [{ errorMessage: "prompt is too long: 210000 tokens > 200000 maximum", status: 400 }, "context_overflow"],
    [{ errorMessage: "the request exceeds the available context size, try increasing it" }, "context_overflow"],
    [{ errorMessage: "x", code: "context_length_exceeded", status: 400 }, "context_overflow"],
    [{ errorMessage: "Invalid 'messages[2].role'", status: 400 }, "format"],
    [{ errorMessage: "Unprocessable", status: 422 }, "format"],
    [{ errorMessage: "x", errorType: "invalid_request_error" }, "format"],
    [{ errorMessage: "The model returned an empty response" }, "empty_response"],
    [{ errorMessage: "x", code: "RESOURCE_EXHAUSTED" }, "rate_limit"],
    [{ errorMessage: "x", errorType: "overloaded_error" }, "overloaded"],
    [{ errorMessage: "" }, null],
    [{ errorMessage: "something odd happened" }, null]
  ]
  for (const [ctx, reason] of rows) {
    it(`${JSON.stringify(ctx)} → ${reason}`, () => {
      expect(Failover.classifyHookContext(ctx)).toBe(reason)
      expect(Failover.classify(ctx)).toBe(reason)
    })
  }

  it("classifies Errors and provider SDK error objects by status, code and message", () => {
    expect(Failover.classify(Object.assign(new Error("slow down"), { status: 429 }))).toBe("rate_limit")
    expect(Failover.classify(Object.assign(new Error("connect"), { code: "ECONNREFUSED" }))).toBe("server_error")
    expect(Failover.classify({ message: "wrapped", cause: { message: "", statusCode: "401" } })).toBe("auth")
    expect(Failover.classify(new DOMException("signal timed out", "TimeoutError"))).toBe("timeout")
    expect(Failover.classify("Rate limit exceeded")).toBe("rate_limit")
    expect(Failover.classify(42)).toBeNull()
    expect(Failover.classify(null)).toBeNull()
  })
})

describe("Failover.isContextOverflow", () => {
  const overflowing = [
    "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
    "context_length_exceeded",
    "prompt is too long: 210000 tokens > 200000 maximum",
    "Input is too long for requested model.",
    "litellm.ContextWindowExceededError: ...",
    "Requested tokens exceed context window of 4096",
    "the request exceeds the available context size, try increasing it",
    "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
  ]
  const fine = ["Rate limit exceeded", "Invalid API key", "", "context is fine", "Internal Server Error"]

  it("recognises kernel and OpenAI-style wordings, and nothing else", () => {
    for (const text of overflowing) expect(Failover.isContextOverflow(text), text).toBe(true)
    for (const text of fine) expect(Failover.isContextOverflow(text), text).toBe(false)
  })

  it("accepts errors and hook contexts", () => {
    expect(Failover.isContextOverflow(rejected(400, overflowing[0]!))).toBe(true)
    expect(Failover.isContextOverflow(rejected(400, "Invalid value"))).toBe(false)
    expect(Failover.isContextOverflow(new BackendError.BackendTimeout({ url, timeoutMs: 1 }))).toBe(false)
    expect(Failover.isContextOverflow({ errorMessage: overflowing[2]! })).toBe(true)
    expect(Failover.isContextOverflow({ errorMessage: "x", code: "AIOS_CONTEXT_OVERFLOW" })).toBe(true)
    expect(Failover.isContextOverflow(new Error(overflowing[3]!))).toBe(true)
    expect(Failover.isContextOverflow(undefined)).toBe(false)
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Every error the library can produce
// ---------------------------------------------------------------------------------------------------------------

const optional = <A>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: undefined })

/** Words that mean nothing to a classifier. */
const neutral = fc.lorem({ maxCount: 6 })

/** What kernels, providers and sockets say, and neutral words. */
const reasonText = fc.oneof(
  neutral,
  fc.constantFrom(
    "",
    "Rate Limit Exceeded for model 'x'. Please try again later.",
    "Authentication Error with model 'x': Incorrect API key provided",
    "Authentication Error with model 'x': key revoked",
    "You exceeded your current quota, please check your plan and billing details.",
    "Selected LLMs are not all available. Please check the available LLMs.",
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    "The model `gpt-5o` does not exist",
    "Model 'gpt-4o' not found",
    "Request Timeout for model 'gpt-4o'",
    "Service Unavailable for model 'gpt-4o'",
    "API Error with model 'gpt-4o'",
    "litellm.BadRequestError: OpenAIException",
    "Invalid value for 'messages'",
    "messages must not be empty",
    "'NoneType' object is not subscriptable",
    "KeyError: 'llms'",
    "Internal Server Error",
    "overloaded",
    "tools is not supported for this model",
    "body.query_type: Field required",
    "Please try again in 20s"
  )
)
const status = fc.oneof(
  fc.constantFrom(400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 501, 502, 503, 504, 529),
  fc.integer({ min: 400, max: 599 })
)
const errorType = optional(
  fc.oneof(
    neutral,
    fc.constantFrom("insufficient_quota", "context_length_exceeded", "invalid_request_error", "rate_limit_exceeded", "server_error")
  )
)
const socketDetail = fc.oneof(
  neutral,
  fc.constantFrom(
    "ECONNREFUSED",
    "ECONNRESET",
    "UND_ERR_SOCKET",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "connect ECONNREFUSED 127.0.0.1:8000",
    "socket hang up (ECONNRESET)",
    "other side closed",
    "fetch failed",
    "self-signed certificate in certificate chain",
    "unable to verify the first certificate",
    "CERT_HAS_EXPIRED"
  )
)
const issue = fc.oneof(
  neutral,
  fc.constantFrom(
    "body is not JSON",
    "expected response.status_code",
    "the arguments of tool call 'read' are not a JSON object (the reply was cut at the length limit)",
    "an SSE event is not JSON",
    "choices is missing"
  )
)
const modelName = fc.constantFrom("gpt-4o", "echo", "qwen2.5:7b", "llama3.1-8b-instruct", "claude-3-5-sonnet")
const baseUrl = fc.constantFrom(url, `${url}/v1`, "http://127.0.0.1:11434/v1", "http://localhost:8001")
const timeoutMs = fc.oneof(fc.nat({ max: 600_000 }), fc.constantFrom(401, 403, 404, 408, 429, 500, 503, 504))

/** Every error class, its words drawn from `words` (what servers and sockets say, or anything at all). */
const backendErrorWith = (words: fc.Arbitrary<string>): fc.Arbitrary<BackendError.BackendError> =>
  fc.oneof(
    fc.record({ url: baseUrl, model: optional(modelName), detail: fc.oneof(socketDetail, words) }).map((f) =>
      new BackendError.BackendUnreachable(f)
    ),
    fc.record({ url: baseUrl, model: optional(modelName), timeoutMs }).map((f) => new BackendError.BackendTimeout(f)),
    fc.record({
      url: baseUrl,
      model: optional(modelName),
      status,
      reason: fc.oneof(reasonText, words),
      inBody: fc.boolean(),
      errorType: fc.oneof(errorType, optional(words)),
      retryAfterMs: optional(fc.nat())
    }).map((f) => BackendError.rejected(f)),
    fc.record({
      url: baseUrl,
      model: optional(modelName),
      endpoint: fc.constantFrom("/query", "/chat/completions"),
      issue: fc.oneof(issue, words)
    }).map((f) => new BackendError.MalformedResponse(f)),
    fc.record({ url: baseUrl, model: optional(modelName) }).map((f) => new BackendError.EmptyReply(f)),
    fc.record({ url: baseUrl, model: modelName, available: fc.array(modelName, { maxLength: 3 }) }).map((f) =>
      new BackendError.ModelUnknown(f)
    )
  )

/** Any error, with any text where a server's words go. */
const backendError = backendErrorWith(fc.string())
/** Any error, with words a server or socket would say. */
const realisticError = backendErrorWith(neutral)

describe("Failover round trip", () => {
  it.prop("every BackendError classifies to the reason of its kind", [backendError], ([error]) => {
    expect(Failover.classify(error)).toBe(Failover.reasonOf[error.kind])
  })

  it.prop(
    "OpenClaw's hook context built from the emitted message classifies back to the same reason",
    [backendError, optional(fc.constantFrom("aios", "openai", "anthropic"))],
    ([error, provider]) => {
      const emitted = Failover.toEmitted(error)
      expect(emitted.errorMessage).toBe(error.message)
      const ctx: Failover.HookContext = {
        provider,
        modelId: model,
        errorMessage: emitted.errorMessage,
        code: emitted.errorCode,
        errorType: emitted.errorType
      }
      expect(Failover.classifyHookContext(ctx)).toBe(Failover.reasonFor(error))
      expect(Failover.isContextOverflow(ctx)).toBe(Failover.reasonFor(error) === "context_overflow")
    }
  )

  it.prop(
    "the message alone (code and type lost on the way) classifies back to the same reason",
    [realisticError],
    ([error]) => {
      expect(Failover.classifyHookContext({ errorMessage: error.message }), error.message).toBe(Failover.reasonFor(error))
    },
    { fastCheck: { numRuns: 2_000 } }
  )

  it("the message alone classifies back for a refusal of every kind", () => {
    for (const kind of BackendError.kinds) {
      for (const status of [400, 429, 500]) {
        const error = new BackendError.BackendRejected({ url, model, status, kind, reason: "lorem ipsum", inBody: true })
        expect(Failover.classifyHookContext({ errorMessage: error.message }), error.message).toBe(Failover.reasonOf[kind])
      }
    }
  })

  const reasons: ReadonlyArray<FailoverReason> = [
    "auth",
    "auth_permanent",
    "format",
    "rate_limit",
    "overloaded",
    "billing",
    "server_error",
    "timeout",
    "tls_certificate",
    "context_overflow",
    "model_not_found",
    "session_expired",
    "empty_response",
    "no_error_details",
    "unclassified",
    "unknown"
  ]

  it("codes are distinct, and code or type alone (with a neutral message) map back to their reason", () => {
    expect(new Set(reasons.map(Failover.codeFor)).size).toBe(reasons.length)
    expect(new Set(reasons.map(Failover.typeFor)).size).toBe(reasons.length)
    for (const reason of reasons) {
      expect(Failover.classifyHookContext({ errorMessage: "x", code: Failover.codeFor(reason) })).toBe(reason)
      expect(Failover.classifyHookContext({ errorMessage: "x", errorType: Failover.typeFor(reason) })).toBe(reason)
    }
  })

  it("rate limits, overloads and timeouts use codes OpenClaw itself knows", () => {
    expect(Failover.codeFor("rate_limit")).toBe("RATE_LIMIT_EXCEEDED")
    expect(Failover.codeFor("overloaded")).toBe("OVERLOADED")
    expect(Failover.codeFor("timeout")).toBe("ETIMEDOUT")
  })
})

// ---------------------------------------------------------------------------------------------------------------
// After our retries: what OpenClaw is told so that it does not redo them
// ---------------------------------------------------------------------------------------------------------------

const whys: ReadonlyArray<TurnRetry.StopWhy> = [
  "not_retryable",
  "refused",
  "budget_exhausted",
  "retry_after_too_long",
  "deadline",
  "output_started"
]

const outcome = fc.record({
  kind: fc.constantFrom(...BackendError.kinds),
  why: fc.constantFrom(...whys),
  attempts: fc.integer({ min: 1, max: 6 }),
  waitedMs: fc.nat({ max: 300_000 }),
  elapsedMs: fc.nat({ max: 300_000 }),
  maxRetries: fc.nat({ max: 5 }),
  maxDelayMs: fc.nat({ max: 60_000 }),
  turnTimeoutMs: optional(fc.integer({ min: 1, max: 600_000 })),
  requestedMs: optional(fc.nat({ max: 600_000 }))
})

describe("Failover.decide: after our retries", () => {
  const rate = rejected(429, "Rate Limit Exceeded for model 'gpt-4o'.")
  const auth = rejected(401, "invalid x-api-key")
  const refused = new BackendError.BackendUnreachable({ url, model, detail: "ECONNREFUSED" })
  const timeout = new BackendError.BackendTimeout({ url, model, timeoutMs: 300_000, setting: "turnTimeoutMs" })
  const base = { waitedMs: 0, elapsedMs: 0, maxRetries: 3, maxDelayMs: 60_000, turnTimeoutMs: 300_000 }

  const table: ReadonlyArray<readonly [string, BackendError.BackendError, TurnRetry.Outcome | undefined, FailoverReason]> = [
    ["no outcome known", rate, undefined, "rate_limit"],
    ["a rate limit, retries used up", rate, { ...base, kind: "rate_limit", why: "budget_exhausted", attempts: 4 }, "empty_response"],
    ["a rate limit, no retry in the budget (maxRetries 0)", rate, { ...base, kind: "rate_limit", why: "budget_exhausted", attempts: 1, maxRetries: 0 }, "rate_limit"],
    ["a rate limit asking for too long a wait", rate, { ...base, kind: "rate_limit", why: "retry_after_too_long", attempts: 1, requestedMs: 120_000 }, "empty_response"],
    ["a rate limit we do not retry (retryOn predicate)", rate, { ...base, kind: "rate_limit", why: "not_retryable", attempts: 1 }, "rate_limit"],
    ["a refused connection under onRefused fail", refused, { ...base, kind: "unreachable", why: "refused", attempts: 1 }, "empty_response"],
    ["a dead kernel, onRefused retry, retries used up", refused, { ...base, kind: "unreachable", why: "budget_exhausted", attempts: 4 }, "empty_response"],
    ["a turn cut at its deadline", timeout, { ...base, kind: "timeout", why: "deadline", attempts: 1 }, "empty_response"],
    ["a failure after output", rate, { ...base, kind: "rate_limit", why: "output_started", attempts: 1 }, "rate_limit"],
    ["auth is never OpenClaw's to retry: its reason stands", auth, { ...base, kind: "auth", why: "not_retryable", attempts: 1 }, "auth"]
  ]
  for (const [name, error, o, reason] of table) {
    it(`${name} → ${reason}`, () => {
      expect(Failover.decide(error, { outcome: o }).reason).toBe(reason)
      const emitted = Failover.toEmitted(error, { outcome: o })
      expect(Failover.classifyHookContext({ errorMessage: emitted.errorMessage, code: emitted.errorCode, errorType: emitted.errorType }))
        .toBe(reason)
      expect(Failover.classifyHookContext({ errorMessage: emitted.errorMessage })).toBe(reason)
    })
  }

  it("the final rate-limit message says the retries are used up, how many and over how long", () => {
    const emitted = Failover.toEmitted(rate, {
      outcome: { ...base, kind: "rate_limit", why: "budget_exhausted", attempts: 4, waitedMs: 60_000, elapsedMs: 60_412 }
    })
    expect(emitted.errorMessage).toBe(
      `${rate.message} Gave up after 4 attempts in 60.4 s: the turn's retries are used up (retry.maxRetries 3).`
    )
    expect(emitted.errorCode).toBe(Failover.gaveUpCode)
  })

  it("OpenClaw's transient set is the one it retries, and the reason for giving up is outside it", () => {
    expect([...Failover.openClawRetries].sort()).toEqual(["overloaded", "rate_limit", "server_error", "timeout"])
    expect(Failover.openClawRetries.has(Failover.gaveUpReason)).toBe(false)
  })

  it.prop(
    "for any error and outcome: code, type and message alone agree on the reason decide chose",
    [realisticError, optional(outcome), fc.boolean()],
    ([error, o, outputSent]) => {
      const { gaveUp, reason } = Failover.decide(error, { outcome: o })
      const emitted = Failover.toEmitted(error, { outcome: o, outputSent })
      // We only ever change a reason OpenClaw would retry, and only when the outcome says we gave up.
      if (gaveUp !== undefined) {
        expect(Failover.openClawRetries.has(Failover.reasonOf[error.kind])).toBe(true)
        expect(o !== undefined && Failover.afterStop[o.why]).toBe("gave_up")
        expect(emitted.errorMessage.endsWith(gaveUp)).toBe(true)
      } else {
        expect(reason).toBe(Failover.reasonOf[error.kind])
        expect(emitted.errorMessage).toBe(error.message)
      }
      expect(emitted.errorCode).toBe(outputSent ? Failover.failureWithOutputCode : gaveUp !== undefined ? Failover.gaveUpCode : Failover.codeFor(reason))
      expect(Failover.classifyHookContext({ errorMessage: emitted.errorMessage, code: emitted.errorCode, errorType: emitted.errorType }))
        .toBe(reason)
      expect(Failover.classifyHookContext({ errorMessage: emitted.errorMessage }), emitted.errorMessage).toBe(reason)
    },
    { fastCheck: { numRuns: 2_000 } }
  )

  it("the message of an unreachable kernel alone classifies as the code does", () => {
    const down = new BackendError.BackendUnreachable({ url: "http://127.0.0.1:9", model, detail: "ECONNREFUSED" })
    expect(Failover.classifyHookContext({ errorMessage: down.message })).toBe("server_error")
    expect(Failover.classify(down.message)).toBe("server_error")
  })

  it("caller errors (AIOS_INVALID_REQUEST) are format: shown, not failed over", () => {
    expect(Failover.classifyHookContext({ errorMessage: "x", code: Failover.invalidRequestCode })).toBe("format")
  })
})
