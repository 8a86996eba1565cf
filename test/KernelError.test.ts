import { describe, expect, it } from "@effect/vitest"
import * as KernelError from "../src/KernelError.js"

describe("KernelError messages", () => {
  it("name the server the user configured: an AIOS kernel, or an OpenAI-compatible endpoint", () => {
    const at = (url: string) => [
      new KernelError.KernelUnreachable({ url, detail: "ECONNREFUSED" }),
      new KernelError.KernelTimeout({ url, model: "m", timeoutMs: 5 }),
      new KernelError.KernelHttpError({ url, status: 500, detail: [] }),
      new KernelError.KernelRejected({ url, statusCode: 429, kind: "rate_limited", reason: "slow down" }),
      new KernelError.KernelMalformedResponse({ url, endpoint: "/x", issue: "the body is not JSON" }),
      new KernelError.ModelUnknown({ url, model: "m", available: [] })
    ].map((e) => e.message)
    for (const message of at("http://127.0.0.1:8000")) expect(message).toMatch(/the AIOS kernel at http:\/\/127\.0\.0\.1:8000/i)
    for (const message of at("http://127.0.0.1:8080/v1")) {
      expect(message).toMatch(/the OpenAI-compatible endpoint at http:\/\/127\.0\.0\.1:8080\/v1/i)
      expect(message).not.toContain("AIOS kernel")
    }
  })

  it("say what a socket error means instead of echoing its code", () => {
    const message = new KernelError.KernelUnreachable({ url: "http://127.0.0.1:9", detail: "ECONNREFUSED" }).message
    expect(message).toBe(
      "Cannot reach the AIOS kernel at http://127.0.0.1:9: nothing is listening at that address. Is it running? Start it or set AIOS_URL / baseUrl."
    )
  })
})
