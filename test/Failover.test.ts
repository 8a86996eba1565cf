import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Failover from "../src/Failover.js"
import type { FailoverReason } from "../src/Failover.js"
import {
  type KernelError,
  KernelHttpError,
  KernelMalformedResponse,
  KernelRejected,
  KernelTimeout,
  KernelUnreachable,
  ModelUnknown,
  type RejectionKind,
  rejectionKind
} from "../src/KernelError.js"

const url = "http://127.0.0.1:8000"
const model = "gpt-4o"

/** A kernel rejection built the way the client builds it: kind from `rejectionKind`. */
const rejected = (statusCode: number, reason: string) =>
  new KernelRejected({ url, model, statusCode, kind: rejectionKind(statusCode, reason), reason })

describe("Failover.classify: the reference table", () => {
  const rows: ReadonlyArray<readonly [string, KernelError | Failover.HookContext, FailoverReason]> = [
    ["429 rate limit", rejected(429, "Rate Limit Exceeded for model 'gpt-4o'. Please try again later."), "rate_limit"],
    ["429 over HTTP", new KernelHttpError({ url, status: 429, detail: ["Too Many Requests"] }), "rate_limit"],
    ["402", new KernelHttpError({ url, status: 402, detail: ["Payment Required"] }), "billing"],
    [
      "quota exhausted",
      new KernelHttpError({
        url,
        status: 429,
        detail: ["You exceeded your current quota, please check your plan and billing details."],
        errorType: "insufficient_quota"
      }),
      "billing"
    ],
    ["401", rejected(401, "Authentication Error with model 'gpt-4o': Incorrect API key provided"), "auth"],
    ["403", new KernelHttpError({ url, status: 403, detail: ["Forbidden"] }), "auth"],
    ["401, key revoked for good", rejected(401, "This API key has been revoked."), "auth_permanent"],
    ["404 model not found", rejected(404, "The model `gpt-5o` does not exist"), "model_not_found"],
    [
      "model not configured in the kernel",
      rejected(500, "Selected LLMs are not all available. Please check the available LLMs."),
      "model_not_found"
    ],
    ["408", rejected(408, "Request timed out."), "timeout"],
    ["504", new KernelHttpError({ url, status: 504, detail: ["Gateway Timeout"] }), "timeout"],
    ["client timeout", new KernelTimeout({ url, model, timeoutMs: 120_000 }), "timeout"],
    ["502", rejected(502, "Provider API error"), "server_error"],
    ["503", rejected(503, "Provider unreachable"), "overloaded"],
    ["connection refused", new KernelUnreachable({ url, detail: "connect ECONNREFUSED 127.0.0.1:8000" }), "server_error"],
    ["connection reset", new KernelUnreachable({ url, detail: "socket hang up (ECONNRESET)" }), "server_error"],
    ["500", new KernelHttpError({ url, status: 500, detail: ["Internal Server Error"] }), "server_error"],
    ["other 5xx", new KernelHttpError({ url, status: 507, detail: [] }), "server_error"],
    [
      "context window exceeded",
      rejected(400, "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."),
      "context_overflow"
    ],
    ["400 invalid request", rejected(400, "Invalid value for 'messages'"), "format"],
    [
      "422 invalid request",
      new KernelHttpError({ url, status: 422, detail: ["body.query_data.action_type: Input should be 'chat'"] }),
      "format"
    ],
    [
      "malformed response body",
      new KernelMalformedResponse({ url, endpoint: "/query", issue: "expected response.status_code" }),
      "format"
    ],
    ["empty response", new KernelMalformedResponse({ url, endpoint: "/query", issue: "empty response" }), "empty_response"]
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
  // [situation, error as the client builds it, reason, what OpenClaw's hook sees from another provider]
  const rows: ReadonlyArray<readonly [string, KernelError, FailoverReason]> = [
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
    ["model not in /core/llms/list", new ModelUnknown({ url, model: "gpt-9", available: ["gpt-4o"] }), "model_not_found"],
    ["empty messages", rejected(400, "messages must not be empty"), "format"],
    ["any other failure", rejected(500, "'NoneType' object is not subscriptable"), "server_error"],
    [
      "malformed request body (422)",
      new KernelHttpError({ url, status: 422, detail: ["body.query_type: Field required"] }),
      "format"
    ],
    ["exception in the handler (500 JSON)", new KernelHttpError({ url, status: 500, detail: ["KeyError: 'llms'"] }), "server_error"],
    ["exception in the handler (500 text)", new KernelHttpError({ url, status: 500, detail: ["Internal Server Error"] }), "server_error"],
    ["the request never returns", new KernelTimeout({ url, model, timeoutMs: 120_000 }), "timeout"],
    ["kernel down", new KernelUnreachable({ url, detail: "connect ECONNREFUSED 127.0.0.1:8000" }), "server_error"],
    [
      "not an AIOS kernel",
      new KernelMalformedResponse({ url, endpoint: "/query", issue: "body is not JSON" }),
      "format"
    ],
    [
      "kernel lost the answer (response_message null, no tool calls)",
      new KernelMalformedResponse({ url, endpoint: "/query", issue: "empty answer: response_message is null" }),
      "empty_response"
    ]
  ]
  for (const [name, error, reason] of rows) {
    it(`${name} → ${reason}`, () => {
      expect(Failover.classify(error)).toBe(reason)
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
    expect(Failover.isContextOverflow(new KernelTimeout({ url, timeoutMs: 1 }))).toBe(false)
    expect(Failover.isContextOverflow({ errorMessage: overflowing[2]! })).toBe(true)
    expect(Failover.isContextOverflow({ errorMessage: "x", code: "AIOS_CONTEXT_OVERFLOW" })).toBe(true)
    expect(Failover.isContextOverflow(new Error(overflowing[3]!))).toBe(true)
    expect(Failover.isContextOverflow(undefined)).toBe(false)
  })
})

// Any KernelError the library can produce.
const text = fc.oneof(
  fc.string(),
  fc.constantFrom(
    "Rate Limit Exceeded for model 'x'. Please try again later.",
    "Authentication Error with model 'x': key revoked",
    "Selected LLMs are not all available. Please check the available LLMs.",
    "maximum context length is 8192 tokens",
    "overloaded",
    "insufficient_quota",
    "self-signed certificate",
    "empty response",
    "Please try again in 20s"
  )
)
const kinds: ReadonlyArray<RejectionKind> = [
  "rate_limited",
  "auth_failed",
  "quota_exhausted",
  "bad_request",
  "model_not_found",
  "model_not_configured",
  "timeout",
  "context_overflow",
  "server_error",
  "bad_gateway",
  "unavailable"
]
const status = fc.oneof(fc.constantFrom(400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504), fc.integer({ min: 100, max: 599 }))
const optional = <A>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: undefined })
const kernelError: fc.Arbitrary<KernelError> = fc.oneof(
  fc.record({ detail: text }).map(({ detail }) => new KernelUnreachable({ url, detail })),
  fc.nat().map((timeoutMs) => new KernelTimeout({ url, model, timeoutMs })),
  fc.record({ status, detail: fc.array(text, { maxLength: 3 }), errorType: optional(text) }).map((r) =>
    new KernelHttpError({ url, model, ...r })
  ),
  fc.record({ statusCode: status, reason: text, derived: fc.boolean(), kind: fc.constantFrom(...kinds), errorType: optional(text) })
    .map(({ derived, kind, reason, statusCode, errorType }) =>
      new KernelRejected({
        url,
        model,
        statusCode,
        reason,
        errorType,
        kind: derived ? rejectionKind(statusCode, reason) : kind
      })
    ),
  fc.record({ issue: text }).map(({ issue }) => new KernelMalformedResponse({ url, endpoint: "/query", issue })),
  fc.array(fc.string(), { maxLength: 3 }).map((available) => new ModelUnknown({ url, model: "m", available }))
)

describe("Failover round trip", () => {
  it.prop("every KernelError classifies to a reason", [kernelError], ([error]) => {
    expect(Failover.classify(error)).not.toBeNull()
  })

  it.prop(
    "OpenClaw's hook context built from the emitted message classifies back to the same reason",
    [kernelError, optional(fc.constantFrom("aios", "openai", "anthropic"))],
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
      expect(Failover.classifyHookContext(ctx)).toBe(Failover.classify(error))
      expect(Failover.isContextOverflow(ctx)).toBe(Failover.classify(error) === "context_overflow")
    }
  )

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
