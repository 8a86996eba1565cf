import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as BackendError from "../src/BackendError.js"

const aios = "http://127.0.0.1:8000"
const v1 = "http://127.0.0.1:8080/v1"

describe("BackendError messages", () => {
  it("name the server the user configured: an AIOS kernel, or an OpenAI-compatible endpoint", () => {
    const at = (url: string) => [
      new BackendError.BackendUnreachable({ url, detail: "ECONNREFUSED" }),
      new BackendError.BackendTimeout({ url, model: "m", timeoutMs: 5 }),
      BackendError.rejected({ url, status: 500, reason: "" }),
      BackendError.rejected({ url, status: 429, reason: "slow down", inBody: true }),
      new BackendError.MalformedResponse({ url, endpoint: "/x", issue: "the body is not JSON" }),
      new BackendError.EmptyReply({ url, model: "m" }),
      new BackendError.ModelUnknown({ url, model: "m", available: [] })
    ].map((e) => e.message)
    for (const message of at(aios)) expect(message).toMatch(/the AIOS kernel at http:\/\/127\.0\.0\.1:8000/i)
    for (const message of at(v1)) {
      expect(message).toMatch(/the OpenAI-compatible endpoint at http:\/\/127\.0\.0\.1:8080\/v1/i)
      expect(message).not.toContain("AIOS kernel")
    }
  })

  it("say what a socket error means instead of echoing its code", () => {
    const message = new BackendError.BackendUnreachable({ url: "http://127.0.0.1:9", detail: "ECONNREFUSED" }).message
    expect(message).toBe(
      "Cannot reach the AIOS kernel at http://127.0.0.1:9: nothing is listening at that address. Is it running? Start it or set AIOS_URL / baseUrl."
    )
  })

  it("a rejection says where its status came from, the server's words and what to do", () => {
    expect(BackendError.rejected({ url: aios, model: "gpt-4o", status: 429, reason: "Slow down.", inBody: true }).message).toBe(
      "The AIOS kernel at http://127.0.0.1:8000 reported 429 for model 'gpt-4o': Slow down. The provider is rate-limiting; lower your request rate."
    )
    expect(BackendError.rejected({ url: v1, status: 422, reason: "" }).message).toBe(
      "The OpenAI-compatible endpoint at http://127.0.0.1:8080/v1 rejected the request as malformed (HTTP 422). The provider refused the request as invalid."
    )
    expect(BackendError.rejected({ url: v1, status: 502, reason: "upstream" }).message).toContain("failed internally (HTTP 502): upstream.")
  })
})

describe("messages are punctuated once", () => {
  const url = aios
  it("a reason's own full stops, and none after ! ? …", () => {
    const at = (reason: string) => BackendError.rejected({ url, status: 401, reason, inBody: true }).message
    expect(at("Invalid API key..")).toBe(
      "The AIOS kernel at http://127.0.0.1:8000 reported 401: Invalid API key. Check the API key configured for this model."
    )
    expect(at("Who are you?")).toContain("reported 401: Who are you? Check the API key")
    expect(at("Denied!")).toContain("reported 401: Denied! Check")
    expect(at("cut short…")).toContain("reported 401: cut short… Check")
    expect(at("")).toBe("The AIOS kernel at http://127.0.0.1:8000 reported 401. Check the API key configured for this model.")
  })

  it("every class", () => {
    const messages = [
      new BackendError.BackendUnreachable({ url, detail: "socket closed." }),
      new BackendError.BackendUnreachable({ url, detail: "ECONNREFUSED" }),
      new BackendError.MalformedResponse({ url, endpoint: "/query", issue: "the body is empty." }),
      new BackendError.ModelUnknown({ url, model: "m", available: ["a", "v1."] }),
      new BackendError.EmptyReply({ url, model: "m" }),
      ...(["requestTimeoutMs", "callTimeoutMs", "turnTimeoutMs", undefined] as const).map((setting) =>
        new BackendError.BackendTimeout({ url, model: "m", timeoutMs: 5, setting })
      ),
      ...BackendError.kinds.map((kind) => new BackendError.BackendRejected({ url, status: 500, kind, reason: "Done.", inBody: false }))
    ].map((e) => e.message)
    for (const message of messages) {
      expect(message.replaceAll("127.0.0.1", "")).not.toMatch(/\.\.|\?\.|!\.|\. \./)
      expect(message).toMatch(/[.?]$/)
    }
  })
})

describe("timeouts name the limit that ran out", () => {
  it.each([
    [undefined, "did not answer for model 'm' within 5 ms (requestTimeoutMs)."],
    ["requestTimeoutMs", "did not answer for model 'm' within 5 ms (requestTimeoutMs)."],
    ["callTimeoutMs", "did not finish answering for model 'm' within 5 ms (callTimeoutMs, the limit on one whole call)."],
    ["turnTimeoutMs", "did not answer for model 'm' within 5 ms (turnTimeoutMs, the limit on a whole turn with its retries)."]
  ] as const)("%s", (setting, text) => {
    const error = new BackendError.BackendTimeout({ url: aios, model: "m", timeoutMs: 5, setting })
    expect(error.message).toContain(text)
    expect(BackendError.kindFromText(error.message)).toBe("timeout")
  })
})

describe("no error holds a configured URL's credentials", () => {
  const secret = fc.stringMatching(/^[A-Za-z0-9]{6,20}$/).map((s) => `S3CRET${s}`)
  it.prop("in its url field, message or JSON, whatever the class", [secret, secret, fc.constantFrom("", "/v1")], ([user, password, path]) => {
    const url = `http://${user}:${password}@127.0.0.1:8000${path}?api_key=${password}`
    const errors = [
      new BackendError.BackendUnreachable({ url, detail: "ECONNREFUSED" }),
      new BackendError.BackendTimeout({ url, timeoutMs: 1 }),
      BackendError.rejected({ url, status: 429, reason: "slow down" }),
      new BackendError.MalformedResponse({ url, endpoint: "/x", issue: "bad" }),
      new BackendError.EmptyReply({ url }),
      new BackendError.ModelUnknown({ url, model: "m", available: [] })
    ]
    for (const error of errors) {
      expect(error.url).toBe(`http://[redacted]@127.0.0.1:8000${path}?api_key=[redacted]`)
      const printed = `${error.message} ${JSON.stringify(error)} ${String(error)}`
      expect(printed).not.toContain(user)
      expect(printed).not.toContain(password)
    }
    // Rebuilding an error (withRetryAfterMs) keeps it redacted.
    expect(BackendError.withRetryAfterMs(BackendError.rejected({ url, status: 429, reason: "" }), 5).url).not.toContain(password)
  })
})

describe("kindFromStatus", () => {
  const table: ReadonlyArray<readonly [number, string, string | undefined, BackendError.ErrorKind]> = [
    [429, "Rate limit reached", undefined, "rate_limit"],
    [429, "You exceeded your current quota", undefined, "quota"],
    [429, "", "insufficient_quota", "quota"],
    [401, "Incorrect API key provided", undefined, "auth"],
    [403, "This key was revoked", undefined, "auth_permanent"],
    [402, "", undefined, "quota"],
    [400, "This model's maximum context length is 8192 tokens", undefined, "context_overflow"],
    [400, "", "context_length_exceeded", "context_overflow"],
    [400, "The model 'x' does not exist", undefined, "model_not_found"],
    [400, "messages must not be empty", undefined, "bad_request"],
    [404, "", undefined, "model_not_found"],
    [408, "", undefined, "timeout"],
    [504, "", undefined, "timeout"],
    [500, "Selected LLMs are not all available. Please check the available LLMs.", undefined, "model_not_found"],
    [500, "Internal error", undefined, "server"],
    [500, "The server is overloaded", undefined, "overloaded"],
    [502, "bad gateway", undefined, "server"],
    [503, "", undefined, "overloaded"],
    [529, "", undefined, "overloaded"],
    [418, "", undefined, "bad_request"]
  ]
  for (const [status, text, errorType, kind] of table) {
    it(`${status} ${JSON.stringify(text)}${errorType ? ` (${errorType})` : ""} → ${kind}`, () => {
      expect(BackendError.kindFromStatus(status, text, errorType)).toBe(kind)
    })
  }

  // What `nativeToolsUnsupported` recognised (400/422/501 and a refusal of tools): now a kind of its own.
  const tools: ReadonlyArray<readonly [number, string, boolean]> = [
    [400, "tools are not supported by this server", true],
    [400, "this model does not support tool calling", true],
    [422, "tool_choice is not supported", true],
    [501, "Function calling is unsupported for this model", true],
    [400, "Unsupported parameter: 'tools'", true],
    [400, "The model doesn't support tools.", true],
    [400, "messages must not be empty", false],
    [429, "tools are not supported", false],
    [500, "tools are not supported", false]
  ]
  for (const [status, text, unsupported] of tools) {
    it(`${status} ${JSON.stringify(text)} is ${unsupported ? "" : "not "}tools_unsupported`, () => {
      expect(BackendError.kindFromStatus(status, text) === "tools_unsupported").toBe(unsupported)
      // As `rejected` classifies it, with an OpenAI error type beside the text.
      expect(BackendError.rejected({ url: v1, status, reason: text, errorType: "invalid_request_error" }).kind === "tools_unsupported")
        .toBe(unsupported)
    })
  }
})

describe("kindFromText", () => {
  const table: ReadonlyArray<readonly [string, BackendError.ErrorKind | undefined]> = [
    ["", undefined],
    ["all good", undefined],
    ["prompt is too long: 210000 tokens > 200000 maximum", "context_overflow"],
    ["Rate limit reached for requests", "rate_limit"],
    ["insufficient_quota", "quota"],
    ["401 Unauthorized", "auth"],
    ["Your API key has been revoked. 401", "auth_permanent"],
    ["The model `gpt-9` does not exist", "model_not_found"],
    ["self-signed certificate in certificate chain", "tls"],
    ["connect ECONNREFUSED 127.0.0.1:8000", "unreachable"],
    ["Request timed out", "timeout"],
    ["Service Unavailable", "overloaded"],
    ["Internal Server Error", "server"],
    ["The model returned an empty response", "empty_reply"],
    ["tools are not supported", "tools_unsupported"],
    ["Bad Request", "bad_request"]
  ]
  for (const [text, kind] of table) {
    it(`${JSON.stringify(text)} → ${kind}`, () => expect(BackendError.kindFromText(text)).toBe(kind))
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Our own messages classify back to their error's kind
// ---------------------------------------------------------------------------------------------------------------

const url = fc.constantFrom(aios, "http://localhost:8000", v1, "https://api.example.com/v1", "http://10.1.2.3:11434/v1")
// Real model names carry dots, colons and slashes.
const model = fc.constantFrom(
  "echo",
  "gpt-4o",
  "gpt-3.5-turbo",
  "llama3.1:8b",
  "qwen2.5-coder:7b",
  "meta/llama-3.3-70b",
  "claude-3-5-haiku",
  // Names that read like another kind: our own messages still classify by their fixed ending.
  "rate-limit-tester",
  "timeout-7b",
  "certificate-checker"
)
const optionalModel = fc.option(model, { nil: undefined })

// Server texts: neutral ones, ones that name a kind (even one that contradicts the status), and any text at all.
const serverText = fc.constantFrom(
  "",
  "Something went wrong.",
  "Invalid request.",
  "Rate limit reached for requests. Please try again in 20s.",
  "You exceeded your current quota, please check your plan and billing details.",
  "Incorrect API key provided.",
  "This API key was revoked.",
  "The model 'x' does not exist",
  "This model's maximum context length is 8192 tokens.",
  "The server is overloaded. Please try again later.",
  "Internal error with model 'x'",
  "Selected LLMs are not all available. Please check the available LLMs.",
  "tools are not supported by this server",
  "body.query_data.action_type: Input should be 'chat'",
  "request timed out"
)
const reason = fc.oneof(serverText, fc.string(), fc.string({ unit: "grapheme-ascii" }))
const status = fc.oneof(
  fc.constantFrom(400, 401, 402, 403, 404, 408, 409, 413, 418, 422, 429, 500, 501, 502, 503, 504, 520, 529),
  fc.integer({ min: 400, max: 599 })
)

const rejection = fc.record({ url, model: optionalModel, status, reason, inBody: fc.boolean() }).map((fields) =>
  BackendError.rejected(fields)
)

const unreachable = fc.record({
  url,
  model: optionalModel,
  detail: fc.constantFrom(
    "ECONNREFUSED",
    "ECONNRESET",
    "UND_ERR_SOCKET",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "UND_ERR_CONNECT_TIMEOUT",
    "EHOSTUNREACH",
    "transport error",
    "the stream ended before the reply finished",
    "self-signed certificate",
    "CERT_HAS_EXPIRED"
  )
}).map((fields) => new BackendError.BackendUnreachable(fields))

const timeout = fc.record({
  url,
  model: optionalModel,
  timeoutMs: fc.nat(),
  setting: fc.constantFrom(undefined, "requestTimeoutMs" as const, "callTimeoutMs" as const, "turnTimeoutMs" as const)
}).map((f) => new BackendError.BackendTimeout(f))

const malformed = fc.record({
  url,
  model: optionalModel,
  endpoint: fc.constantFrom("/query", "/status", "/core/llms/list", "/models", "/chat/completions"),
  issue: fc.constantFrom(
    "the body is not JSON",
    "the body is empty",
    "response has the wrong shape",
    "llms.0.name is missing",
    "a stream event is not JSON",
    "the arguments of tool call 'write' are not a JSON object (the reply was cut at the length limit)"
  )
}).map((f) => new BackendError.MalformedResponse(f))

const empty = fc.record({ url, model: optionalModel }).map((f) => new BackendError.EmptyReply(f))

// Model names that read like other kinds, in lists of any length.
const listedName = fc.oneof(model, fc.constantFrom("rate-limit-tester", "timeout-7b", "auth-model", "overloaded.v1."))
const unknown = fc.record({ url, model, available: fc.array(listedName, { maxLength: 12 }) }).map((f) =>
  new BackendError.ModelUnknown(f)
)

describe("kindFromText reads our own messages", () => {
  it.prop(
    "every error's message classifies back to its kind",
    [fc.oneof(rejection, unreachable, timeout, malformed, empty, unknown)],
    ([error]) => {
      expect(BackendError.kindFromText(error.message)).toBe(error.kind)
    },
    { fastCheck: { numRuns: 2_000 } }
  )
})
