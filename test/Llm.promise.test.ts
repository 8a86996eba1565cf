import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import type { AiosConfigInput } from "../src/AiosConfig.js"
import { AiosConfigError } from "../src/AiosConfig.js"
import { LlmError } from "../src/Llm.js"
import { createLlm, type LlmClient, type Logger } from "../src/LlmPromise.js"
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

  it("a failure rejects with an LlmError carrying code, retryable, kind and the backend error", async () => {
    kernel.script({ _tag: "Status", statusCode: 429 })
    const settled = await settle(client().generate({ prompt: "x", model: "echo" }))
    expect(settled.ok).toBe(false)
    const error = settled.ok ? undefined : settled.error
    expect(error).toBeInstanceOf(LlmError)
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ code: "RATE_LIMITED", retryable: true, kind: "rate_limit", cause: { _tag: "BackendRejected" } })
  })

  it("bad options from plain JavaScript reject with INVALID_REQUEST and send nothing", async () => {
    const llm = client()
    const settled = await settle(llm.generate({ prompt: 42 } as unknown as { prompt: string }))
    expect(settled.ok ? undefined : settled.error).toMatchObject({ code: "INVALID_REQUEST" })
    expect(kernel.count("/query")).toBe(0)
  })

  it("an invalid config does not throw: every call rejects with INVALID_REQUEST naming the key", async () => {
    const llm = createLlm({ baseUrl: "ftp://nope", limits: { concurrency: 0 } })
    clients.push(llm)
    const settled = await settle(llm.generate({ prompt: "x", model: "echo" }))
    const error = settled.ok ? undefined : settled.error
    expect(error).toBeInstanceOf(LlmError)
    expect(error).toMatchObject({ code: "INVALID_REQUEST", retryable: false, cause: expect.any(AiosConfigError) })
    expect(error).toMatchObject({ message: expect.stringMatching(/baseUrl.*limits\.concurrency/) })
    await expect(llm.stream({ prompt: "x" })[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      code: "INVALID_REQUEST",
      message: expect.stringContaining("limits.concurrency")
    })
    expect(() => createLlm(null as unknown as AiosConfigInput, null as unknown as {})).not.toThrow()
  })

  it("bad call options never throw: not an object, or a signal that is not an AbortSignal, reject with INVALID_REQUEST", async () => {
    const llm = client()
    for (const options of [undefined, null, "hello", 42]) {
      await expect(llm.generate(options as unknown as { prompt: string })).rejects.toMatchObject({ code: "INVALID_REQUEST" })
    }
    const notASignal = { prompt: "x", model: "echo", signal: { aborted: false } } as unknown as { prompt: string }
    await expect(llm.generate(notASignal)).rejects.toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining("signal") })
    await expect(llm.stream(notASignal)[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: "INVALID_REQUEST" })
    expect(kernel.count("/query") + kernel.count("/core/llms/list")).toBe(0)
  })

  it("careless callers: a getter that throws or a hostile Proxy never throws synchronously; INVALID_REQUEST, nothing sent", async () => {
    const llm = client()
    const hostile = new Proxy({}, {
      get: () => {
        throw new Error("proxy get")
      },
      has: () => {
        throw new Error("proxy has")
      },
      ownKeys: () => {
        throw new Error("proxy keys")
      }
    })
    const cases: ReadonlyArray<unknown> = [
      { model: "echo", get prompt(): string { throw new Error("prompt getter") } },
      { prompt: "x", model: "echo", get signal(): AbortSignal { throw new Error("signal getter") } },
      { model: "echo", messages: [{ role: "user", get content(): string { throw new Error("content getter") } }] },
      hostile
    ]
    for (const options of cases) {
      let call: Promise<unknown> | undefined
      expect(() => (call = llm.generate(options as { prompt: string }))).not.toThrow()
      await expect(call).rejects.toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining("could not be read") })
      await expect(llm.stream(options as { prompt: string })[Symbol.asyncIterator]().next()).rejects.toMatchObject({
        code: "INVALID_REQUEST"
      })
    }
    expect(kernel.count("/query")).toBe(0)
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

describe("createLlm logging", () => {
  /** A logger that keeps its lines, by level. */
  const recording = () => {
    const lines = { debug: [] as Array<string>, info: [] as Array<string>, warn: [] as Array<string>, error: [] as Array<string> }
    const logger: Logger = {
      debug: (m) => lines.debug.push(m),
      info: (m) => lines.info.push(m),
      warn: (m) => lines.warn.push(m),
      error: (m) => lines.error.push(m)
    }
    return { lines, logger }
  }

  it("without a logger, nothing reaches the console during retries and failures", async () => {
    const spies = [
      vi.spyOn(console, "log"),
      vi.spyOn(console, "info"),
      vi.spyOn(console, "warn"),
      vi.spyOn(console, "error"),
      vi.spyOn(console, "debug"),
      vi.spyOn(process.stdout, "write"),
      vi.spyOn(process.stderr, "write"),
      vi.spyOn(process, "emitWarning")
    ]
    try {
      const llm = client({ retry: { maxRetries: 2, delayMs: 0, transientDelayMs: 0 } })
      kernel.script({ _tag: "Status", statusCode: 429 }, { _tag: "Status", statusCode: 503 })
      expect((await llm.generate({ prompt: "x", model: "echo" })).attempts).toBe(3)
      kernel.script({ _tag: "Status", statusCode: 429 }, { _tag: "Status", statusCode: 401 })
      await expect(llm.generate({ prompt: "x", model: "echo" })).rejects.toMatchObject({ code: "AUTH_FAILED" })
      kernel.script({ _tag: "Status", statusCode: 429 })
      const pieces: Array<string> = []
      for await (const piece of llm.stream({ prompt: "streamed", model: "echo" })) pieces.push(piece)
      expect(pieces.join("")).toBe("streamed")
      // Many calls at once, each listening to the client's close signal: still nothing printed.
      const many = await Promise.all(Array.from({ length: 16 }, (_, i) => llm.generate({ prompt: `call ${i}`, model: "echo" })))
      expect(many.map((r) => r.text)).toEqual(Array.from({ length: 16 }, (_, i) => `call ${i}`))
      await new Promise((resolve) => setImmediate(resolve))
      // Read before restoring: restoring a spy clears its record.
      expect(spies.map((spy) => spy.mock.calls)).toEqual(spies.map(() => []))
    } finally {
      spies.forEach((spy) => spy.mockRestore())
    }
  })

  it("with a logger, retry warnings go to its warn, and debug lines to its debug", async () => {
    const { lines, logger } = recording()
    const llm = createLlm({ baseUrl: kernel.url, retry: { maxRetries: 1, delayMs: 0 } }, { logger })
    clients.push(llm)
    kernel.script({ _tag: "Status", statusCode: 429 })
    expect((await llm.generate({ prompt: "x", model: "echo" })).attempts).toBe(2)
    expect(lines.warn.some((line) => line.startsWith("[aios] ") && /retry/i.test(line))).toBe(true)
    expect(lines.debug.some((line) => line.includes("LLM call finished") && line.includes("attempts=2"))).toBe(true)
    expect(lines.error).toEqual([])
  })

  it("a logger without debug gets no debug lines; one that throws loses its line, never the call", async () => {
    const { lines, logger } = recording()
    const llm = createLlm({ baseUrl: kernel.url, retry: { maxRetries: 1, delayMs: 0 } }, {
      logger: { info: logger.info, warn: logger.warn, error: logger.error }
    })
    clients.push(llm)
    kernel.script({ _tag: "Status", statusCode: 429 })
    await llm.generate({ prompt: "x", model: "echo" })
    expect(lines.warn.length).toBeGreaterThan(0)
    expect(lines.debug).toEqual([])

    const throwing = () => {
      throw new Error("logger down")
    }
    const broken = createLlm({ baseUrl: kernel.url, retry: { maxRetries: 1, delayMs: 0 } }, {
      logger: { debug: throwing, info: throwing, warn: throwing, error: throwing }
    })
    clients.push(broken)
    kernel.script({ _tag: "Status", statusCode: 429 })
    expect((await broken.generate({ prompt: "y", model: "echo" })).text).toBe("y")
  })
})
