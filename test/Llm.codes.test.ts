import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as BackendError from "../src/BackendError.js"
import * as Llm from "../src/Llm.js"

describe("Llm codes: one table over BackendError kinds", () => {
  const expected: Record<Llm.LlmErrorCode, ReadonlyArray<BackendError.ErrorKind>> = {
    AUTH_FAILED: ["quota", "auth", "auth_permanent"],
    RATE_LIMITED: ["rate_limit"],
    TIMEOUT: ["timeout"],
    MODEL_UNAVAILABLE: ["unreachable", "tls", "overloaded", "server", "model_not_found"],
    INVALID_REQUEST: ["bad_request", "tools_unsupported", "context_overflow", "malformed", "empty_reply"]
  }

  it("the table has exactly the kinds, each with the code it is meant to have", () => {
    expect(Object.keys(Llm.codeOf).sort()).toEqual([...BackendError.kinds].sort())
    for (const [code, kinds] of Object.entries(expected)) {
      for (const kind of kinds) expect([kind, Llm.codeOf[kind]]).toEqual([kind, code])
    }
    expect(Object.values(expected).flat().sort()).toEqual([...BackendError.kinds].sort())
  })

  it.prop(
    "every kind: the LlmError carries the table's code, the kind, the policy's retryability and the error",
    [fc.constantFrom(...BackendError.kinds), fc.integer({ min: 400, max: 599 }), fc.string({ maxLength: 20 })],
    ([kind, status, reason]) => {
      const cause = new BackendError.BackendRejected({
        url: "http://127.0.0.1:1",
        model: "echo",
        status,
        kind,
        reason,
        inBody: false
      })
      const error = Llm.fromBackendError(cause)
      expect(error).toMatchObject({ code: Llm.codeOf[kind], kind, model: "echo", message: cause.message, cause })
      expect(error.retryable).toBe(BackendError.policies[kind].retry !== "never")
    }
  )
})
