import type { AssistantMessage, AssistantMessageEvent, Context, Model } from "@openclaw/ai"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import type { AiosConfigInput } from "../src/AiosConfig.js"
import plugin, { type AiosProviderPlugin, makeAiosProvider } from "../src/openclaw/index.js"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"

let kernel: Handle
beforeAll(async () => {
  kernel = await startReferenceKernel({
    models: [
      { name: "echo", behaviour: "echo", extra: { api_key: "sk-PLANTED-xyz" } },
      { name: "tool-user", behaviour: "tools" }
    ]
  })
})
afterAll(() => kernel.close())
beforeEach(() => kernel.reset())

const providers: Array<AiosProviderPlugin> = []
afterAll(async () => {
  await Promise.all(providers.map((p) => p.dispose()))
})

const provider = (config: AiosConfigInput = {}) => {
  const p = makeAiosProvider({ baseUrl: kernel.url, retry: { delayMs: 0 }, ...config }, { logger: quietLogger })
  providers.push(p)
  return p
}
const warnings: Array<string> = []
const quietLogger = { info: () => {}, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) }

const modelFor = (p: AiosProviderPlugin, id: string): Model => p.resolveDynamicModel({ provider: "aios", modelId: id }) as unknown as Model

const collect = async (p: AiosProviderPlugin, model: string, context: Context, options: { signal?: AbortSignal } = {}) => {
  const stream = p.createStreamFn({ provider: "aios", modelId: model })(modelFor(p, model), context, options)
  const events: Array<AssistantMessageEvent> = []
  for await (const e of await stream) events.push(e)
  return { events, result: await (await stream).result() }
}

const user = (text: string): Context => ({ messages: [{ role: "user", content: text, timestamp: 0 }] })

const readTool = {
  name: "read",
  description: "Read a file",
  parameters: { type: "object", required: ["path"], properties: { path: { type: "string" }, offset: { type: "integer" } } }
}

describe("plugin entry", () => {
  it("register only registers: one provider, no I/O, disposal wired to the host", () => {
    const registered: Array<AiosProviderPlugin> = []
    const disposers: Array<() => unknown> = []
    plugin.register({
      pluginConfig: { baseUrl: kernel.url },
      logger: quietLogger,
      registerProvider: (p) => void registered.push(p),
      lifecycle: { onDispose: (f) => void disposers.push(f) }
    })
    expect(registered.map((p) => p.id)).toEqual(["aios"])
    expect(disposers).toHaveLength(1)
    expect(kernel.requests()).toEqual([])
    expect(plugin.id).toBe("aios")
  })

  it("passes OpenClaw's provider contract checks", () => {
    const p = provider()
    expect(p.id).toMatch(/^[a-z0-9][a-z0-9-]*$/)
    expect(p.label.trim()).not.toBe("")
    expect(p.docsPath.startsWith("/")).toBe(true)
    expect(new Set(p.envVars).size).toBe(p.envVars.length)
    expect(p.envVars.every((v) => v.trim() !== "")).toBe(true)
    expect(new Set(p.auth.map((a) => a.id)).size).toBe(p.auth.length)
    for (const a of p.auth) {
      expect(a.id.trim()).not.toBe("")
      expect(a.label.trim()).not.toBe("")
      expect(typeof a.run).toBe("function")
    }
  })
})

describe("catalog and models", () => {
  it("catalog.run lists the kernel's models as aios rows, without secrets", async () => {
    const result = await provider().catalog.run({})
    expect(result?.provider.baseUrl).toBe(kernel.url)
    expect(result?.provider.models.map((m) => m.id)).toEqual(["echo", "tool-user"])
    expect(result?.provider.models[0]).toMatchObject({ maxTokens: 1000, reasoning: false, input: ["text"] })
    expect(JSON.stringify(result)).not.toContain("sk-PLANTED")
  })

  it("the auth method patches a loopback provider entry (OpenClaw's local key) and a default model", async () => {
    const result = await provider().auth[0]!.run({})
    expect(result.configPatch.models.providers.aios?.baseUrl).toBe(kernel.url)
    expect(result.configPatch.models.providers.aios?.models.length).toBe(2)
    expect(result.defaultModel).toBe("aios/echo")
  })

  it("catalog.run with the kernel down returns null and warns, naming the URL", async () => {
    warnings.length = 0
    const result = await provider({ baseUrl: "http://127.0.0.1:9" }).catalog.run({})
    expect(result).toBeNull()
    expect(warnings.join("\n")).toContain("http://127.0.0.1:9")
  })

  it("resolveDynamicModel: any name before the list is known; after prepareDynamicModel only listed names", async () => {
    const p = provider({ models: { echo: { contextWindow: 8_000 } } })
    expect(p.resolveDynamicModel({ provider: "aios", modelId: "anything" })).toMatchObject({ id: "anything", provider: "aios" })
    await p.prepareDynamicModel({ provider: "aios", modelId: "echo" })
    expect(p.resolveDynamicModel({ provider: "aios", modelId: "anything" })).toBeUndefined()
    expect(p.resolveDynamicModel({ provider: "aios", modelId: "echo" })).toEqual({
      id: "echo",
      name: "echo",
      reasoning: false,
      input: ["text"],
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      contextWindow: 8_000,
      maxTokens: 1000,
      provider: "aios",
      api: "openai-completions",
      baseUrl: kernel.url
    })
  })
})

describe("createStreamFn", () => {
  it("a plain turn: start, text_start/delta/end, done(stop) with usage; result() is the final message", async () => {
    const { events, result } = await collect(provider(), "echo", user("hello kernel"))
    expect(events.map((e) => e.type)).toEqual(["start", "text_start", "text_delta", "text_end", "done"])
    const done = events.at(-1) as Extract<AssistantMessageEvent, { type: "done" }>
    expect(done.reason).toBe("stop")
    expect(result).toBe(done.message)
    expect(result.content).toEqual([{ type: "text", text: "hello kernel" }])
    expect(result).toMatchObject({ role: "assistant", provider: "aios", model: "echo", api: "openai-completions", stopReason: "stop" })
    expect(result.usage.output).toBeGreaterThan(0)
    expect(result.usage.totalTokens).toBe(result.usage.input + result.usage.output)
  })

  it("context.tools reach the model; its call comes back as toolcall events with typed arguments", async () => {
    const { events, result } = await collect(provider(), "tool-user", {
      ...user("read notes.md offset=3"),
      tools: [readTool]
    } as Context)
    expect(events.map((e) => e.type)).toEqual([
      "start",
      "text_start",
      "text_delta",
      "text_end",
      "toolcall_start",
      "toolcall_delta",
      "toolcall_end",
      "done"
    ])
    const end = events.find((e) => e.type === "toolcall_end") as Extract<AssistantMessageEvent, { type: "toolcall_end" }>
    expect(end.toolCall).toMatchObject({ type: "toolCall", name: "read", arguments: { path: "notes.md", offset: 3 } })
    expect(end.toolCall.id).toMatch(/^[A-Za-z0-9]+$/)
    expect(result.stopReason).toBe("toolUse")
    expect((events.at(-1) as { reason: string }).reason).toBe("toolUse")
  })

  it("a kernel failure is an error event whose code and type classify back to the same reason", async () => {
    const p = provider()
    const cases: Array<[number, string]> = [[401, "auth"], [404, "model_not_found"], [400, "format"]]
    for (const [statusCode, reason] of cases) {
      kernel.script({ _tag: "Status", statusCode })
      const { events, result } = await collect(p, "echo", user("x"))
      expect(events.map((e) => e.type)).toEqual(["start", "error"])
      expect(result.stopReason).toBe("error")
      expect(result.errorMessage).toContain(`reported ${statusCode}`)
      expect(p.classifyFailoverReason({ errorMessage: result.errorMessage!, code: result.errorCode, errorType: result.errorType }))
        .toBe(reason)
      // Where the code and type are lost on the way, the message alone says the same.
      expect(p.classifyFailoverReason({ errorMessage: result.errorMessage! })).toBe(reason)
    }
  })

  it("rate limits beyond the turn's budget fail as rate_limit; within it the turn succeeds", async () => {
    const p = provider({ retry: { delayMs: 0, maxRetries: 2 } })
    kernel.script({ _tag: "Status", statusCode: 429 }, { _tag: "Status", statusCode: 429 })
    warnings.length = 0
    const stdout: Array<string> = []
    const write = process.stdout.write
    process.stdout.write = ((chunk: string | Uint8Array) => {
      stdout.push(String(chunk))
      return true
    }) as typeof write
    try {
      expect((await collect(p, "echo", user("ok"))).result.stopReason).toBe("stop")
    } finally {
      process.stdout.write = write
    }
    // The retries are logged through the host's logger, never on stdout (OpenClaw's --json output).
    expect(warnings.filter((w) => w.startsWith("[aios] Retrying turn"))).toHaveLength(2)
    expect(stdout.join("")).not.toContain("Retrying")
    kernel.script(...Array.from({ length: 3 }, () => ({ _tag: "Status", statusCode: 429 }) as const))
    const { result } = await collect(p, "echo", user("x"))
    expect(p.classifyFailoverReason({ errorMessage: result.errorMessage!, code: result.errorCode, errorType: result.errorType }))
      .toBe("rate_limit")
  })

  it("the kernel down: an error event naming the kernel URL", async () => {
    const p = provider({ baseUrl: "http://127.0.0.1:9", retry: { maxRetries: 0 } })
    const { result } = await collect(p, "echo", user("x"))
    expect(result.stopReason).toBe("error")
    expect(result.errorMessage).toContain("http://127.0.0.1:9")
  })

  it("abort while the kernel hangs: an aborted error event, before any answer", async () => {
    kernel.script({ _tag: "Hang" })
    const controller = new AbortController()
    const stream = provider().createStreamFn({ provider: "aios", modelId: "echo" })(modelFor(provider(), "echo"), user("x"), {
      signal: controller.signal
    })
    const iterator = (await stream)[Symbol.asyncIterator]()
    expect((await iterator.next()).value?.type).toBe("start")
    while (kernel.openQueries() === 0) await new Promise((r) => setImmediate(r))
    controller.abort()
    const next = (await iterator.next()).value as Extract<AssistantMessageEvent, { type: "error" }>
    expect(next).toMatchObject({ type: "error", reason: "aborted" })
    expect((await (await stream).result()).stopReason).toBe("aborted")
    expect((await iterator.next()).done).toBe(true)
    // The turn was interrupted: its HTTP request is gone, so the kernel's scripted hang ends.
    while (kernel.openQueries() > 0) await new Promise((r) => setImmediate(r))
    expect(kernel.count("/query")).toBe(1)
  })

  it("abort during a 20 s retry wait ends the turn at once (the wait is not served)", async () => {
    kernel.script({ _tag: "Status", statusCode: 429 })
    const p = provider({ retry: { delayMs: 20_000 } })
    const controller = new AbortController()
    const stream = await p.createStreamFn({ provider: "aios", modelId: "echo" })(modelFor(p, "echo"), user("x"), {
      signal: controller.signal
    })
    const iterator = stream[Symbol.asyncIterator]()
    await iterator.next()
    // Wait until the rate limit has been answered (the turn is now waiting), then abort.
    while (kernel.count("/query") === 0 || kernel.openQueries() > 0) await new Promise((r) => setImmediate(r))
    controller.abort()
    expect(((await iterator.next()).value as { reason: string }).reason).toBe("aborted")
    expect(kernel.count("/query")).toBe(1)
  })

  it("the turn starts on the call: result() resolves without anyone iterating", async () => {
    const p = provider()
    const stream = await p.createStreamFn({ provider: "aios", modelId: "echo" })(modelFor(p, "echo"), user("unread"), {})
    const result = await stream.result()
    expect(result.stopReason).toBe("stop")
    expect(result.content).toEqual([{ type: "text", text: "unread" }])
    // The events wait for a late consumer.
    const events: Array<AssistantMessageEvent> = []
    for await (const e of stream) events.push(e)
    expect(events.map((e) => e.type)).toEqual(["start", "text_start", "text_delta", "text_end", "done"])
  })

  it("an already-aborted signal: aborted at once, nothing sent", async () => {
    const { result } = await collect(provider(), "echo", user("x"), { signal: AbortSignal.abort() })
    expect(result.stopReason).toBe("aborted")
    expect(kernel.count("/query")).toBe(0)
  })

  it("a turn's request carries no trace headers (the plugin has no tracer to report to)", async () => {
    kernel.reset()
    await collect(provider(), "echo", user("hello"))
    const [sent] = kernel.requests("/query")
    expect(sent?.headers["content-type"]).toBe("application/json")
    expect(Object.keys(sent?.headers ?? {}).filter((h) => h === "traceparent" || h === "b3")).toEqual([])
  })

  it("no /core/llms/list request per turn", async () => {
    const p = provider()
    for (let i = 0; i < 20; i++) await collect(p, "echo", user(`n${i}`))
    expect(kernel.count("/query")).toBe(20)
    expect(kernel.count("/core/llms/list")).toBe(1)
  })

  it("never throws: an invalid config and a garbage context are error events", async () => {
    const bad = makeAiosProvider({ requestTimeoutMs: -1 } as AiosConfigInput, { logger: quietLogger })
    const { result } = await collect(bad, "echo", user("x"))
    expect(result.stopReason).toBe("error")
    expect(result.errorMessage).toContain("requestTimeoutMs = -1")
    const garbage = await collect(provider(), "echo", { messages: "nope" } as unknown as Context)
    expect(garbage.result.stopReason).toBe("error")
  })
})

export type { AssistantMessage }
