import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import type { AiosConfigInput } from "../src/AiosConfig.js"
import { AiosConfigError } from "../src/AiosConfig.js"
import { createLlm, type LlmClient, LlmError } from "../src/Llm.js"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"

let kernel: Handle
beforeAll(async () => {
  kernel = await startReferenceKernel({ streamChunkChars: 3 })
})
afterAll(() => kernel.close())
beforeEach(() => kernel.reset())

const clients: Array<LlmClient> = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
})
const client = (config: AiosConfigInput = {}) => {
  const c = createLlm({ baseUrl: kernel.url, retry: { maxRetries: 0 }, ...config })
  clients.push(c)
  return c
}
const v1 = (config: AiosConfigInput = {}) =>
  client({ backend: "openai-compatible", ...config, baseUrl: `${kernel.url}/v1` })

/** Lets the event loop run until `condition` holds (no timers). */
const eventually = async (condition: () => boolean, turns = 20_000): Promise<boolean> => {
  for (let i = 0; i < turns && !condition(); i++) await new Promise((resolve) => setImmediate(resolve))
  return condition()
}

/** Settles `promise` into a value to assert on. */
const settle = <A>(promise: Promise<A>) =>
  promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }))

describe("createLlm (Promise facade)", () => {
  it("generate resolves with the result; aliases and defaultModel apply", async () => {
    const llm = client({ defaultModel: "fast", aliases: { fast: "echo" } })
    const result = await llm.generate({ prompt: "Extract the company name from: Acme Corp" })
    expect(result).toMatchObject({ text: "Extract the company name from: Acme Corp", model: "echo", attempts: 1 })
    expect(result.usage.estimated).toBe(true)
    expect(result.usage.totalTokens).toBe(result.usage.inputTokens + result.usage.outputTokens)
  })

  it("stream is an AsyncIterable of the reply's pieces, stop sequences applied", async () => {
    const llm = v1()
    const pieces: Array<string> = []
    for await (const piece of llm.stream({ prompt: "one two three. four", model: "echo", stopSequences: [". "] })) {
      pieces.push(piece)
    }
    expect(pieces.length).toBeGreaterThan(1)
    expect(pieces.join("")).toBe("one two three")
  })

  it("a failure rejects with an LlmError carrying code, retryable and the kernel error", async () => {
    kernel.script({ _tag: "Status", statusCode: 429 })
    const settled = await settle(client().generate({ prompt: "x", model: "echo" }))
    expect(settled.ok).toBe(false)
    const error = settled.ok ? undefined : settled.error
    expect(error).toBeInstanceOf(LlmError)
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ code: "RATE_LIMITED", retryable: true, cause: { _tag: "KernelRejected" } })
  })

  it("bad options from plain JavaScript reject with INVALID_REQUEST and send nothing", async () => {
    const llm = client()
    const settled = await settle(llm.generate({ prompt: 42 } as unknown as { prompt: string }))
    expect(settled.ok ? undefined : settled.error).toMatchObject({ code: "INVALID_REQUEST" })
    expect(kernel.count("/query")).toBe(0)
  })

  it("an invalid config throws AiosConfigError naming the key", () => {
    expect(() => createLlm({ baseUrl: "ftp://nope", limits: { concurrency: 0 } })).toThrow(AiosConfigError)
    expect(() => createLlm({ limits: { concurrency: 0 } })).toThrow(/limits\.concurrency/)
  })

  it("abort through signal: the call rejects with the abort reason while the kernel hangs, and its request is closed", async () => {
    kernel.script({ _tag: "Hang" })
    const llm = client()
    const controller = new AbortController()
    const call = settle(llm.generate({ prompt: "x", model: "echo", signal: controller.signal }))
    expect(await eventually(() => kernel.openQueries() === 1)).toBe(true)
    controller.abort()
    const settled = await call
    expect(settled.ok).toBe(false)
    expect(settled.ok ? undefined : settled.error).toMatchObject({ name: "AbortError" })
    expect(await eventually(() => kernel.openQueries() === 0)).toBe(true)
    // The client still works afterwards.
    expect((await llm.generate({ prompt: "after", model: "echo" })).text).toBe("after")
  })

  it("a signal aborted before the call rejects at once with its reason; nothing is sent", async () => {
    const controller = new AbortController()
    const reason = new Error("user cancelled")
    controller.abort(reason)
    const llm = client()
    await expect(llm.generate({ prompt: "x", model: "echo", signal: controller.signal })).rejects.toBe(reason)
    const iterator = llm.stream({ prompt: "x", model: "echo", signal: controller.signal })[Symbol.asyncIterator]()
    await expect(iterator.next()).rejects.toBe(reason)
    expect(kernel.count("/query") + kernel.count("/core/llms/list")).toBe(0)
  })

  it("abort during a stream: the pending next() rejects with the reason and the request is closed", async () => {
    kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 1 })
    const controller = new AbortController()
    const iterator = v1().stream({ prompt: "abcdefghi", model: "echo", signal: controller.signal })[Symbol.asyncIterator]()
    expect(await iterator.next()).toEqual({ done: false, value: "abc" })
    const pending = settle(iterator.next())
    controller.abort()
    const settled = await pending
    expect(settled.ok ? undefined : settled.error).toMatchObject({ name: "AbortError" })
    expect(await eventually(() => kernel.openQueries() === 0)).toBe(true)
    expect(await iterator.next()).toEqual({ done: true, value: undefined })
  })

  it("abort between two next() calls closes the request at once; the next next() rejects with the reason", async () => {
    kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 2 })
    const controller = new AbortController()
    const iterator = v1().stream({ prompt: "abcdefghi", model: "echo", signal: controller.signal })[Symbol.asyncIterator]()
    expect(await iterator.next()).toEqual({ done: false, value: "abc" })
    expect(kernel.openQueries()).toBe(1)
    controller.abort()
    expect(await eventually(() => kernel.openQueries() === 0)).toBe(true)
    await expect(iterator.next()).rejects.toMatchObject({ name: "AbortError" })
    expect(await iterator.next()).toEqual({ done: true, value: undefined })
  })

  it("close stops an iterator its consumer left between two next() calls", async () => {
    kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 2 })
    const llm = createLlm({ backend: "openai-compatible", baseUrl: `${kernel.url}/v1` })
    const iterator = llm.stream({ prompt: "abcdefghi", model: "echo" })[Symbol.asyncIterator]()
    expect(await iterator.next()).toEqual({ done: false, value: "abc" })
    await llm.close()
    expect(await eventually(() => kernel.openQueries() === 0)).toBe(true)
    await expect(iterator.next()).rejects.toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining("closed") })
    expect(await iterator.next()).toEqual({ done: true, value: undefined })
  })

  it("leaving a for-await early ends the call and closes its request", async () => {
    kernel.scriptEndpoint("/v1/chat/completions", { _tag: "Stall", afterChunks: 2 })
    const seen: Array<string> = []
    for await (const piece of v1().stream({ prompt: "abcdefghi", model: "echo" })) {
      seen.push(piece)
      if (seen.length === 2) break
    }
    expect(seen).toEqual(["abc", "def"])
    expect(await eventually(() => kernel.openQueries() === 0)).toBe(true)
  })

  it("close ends calls in flight, releases the kernel request, and later calls reject", async () => {
    kernel.script({ _tag: "Hang" })
    const llm = createLlm({ baseUrl: kernel.url })
    const call = settle(llm.generate({ prompt: "x", model: "echo" }))
    expect(await eventually(() => kernel.openQueries() === 1)).toBe(true)
    await llm.close()
    const settled = await call
    expect(settled.ok ? undefined : settled.error).toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining("closed") })
    expect(await eventually(() => kernel.openQueries() === 0)).toBe(true)
    await expect(llm.generate({ prompt: "x", model: "echo" })).rejects.toMatchObject({ code: "INVALID_REQUEST" })
    await expect(llm.stream({ prompt: "x" })[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: "INVALID_REQUEST" })
    await llm.close()
  })
})
