import type {
  AssistantMessage,
  AssistantMessageEvent,
  AssistantMessageEventStreamLike,
  Context,
  Model,
  SimpleStreamOptions
} from "@openclaw/ai"
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
    // prepareDynamicModel starts the list fetch; once the list is in, only listed names resolve.
    await p.catalog.run({})
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

  it("rate limits within the turn's budget are retried; beyond it the turn gave up, and says so", async () => {
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
    // Beyond the budget: our retries are spent, so OpenClaw is told a reason it does not retry (it falls back).
    kernel.script(...Array.from({ length: 3 }, () => ({ _tag: "Status", statusCode: 429 }) as const))
    const { result } = await collect(p, "echo", user("x"))
    expect(result.errorMessage).toMatch(/Gave up after 3 attempts in [\d.]+ s: the turn's retries are used up \(retry\.maxRetries 2\)\.$/)
    expect(result.errorMessage).not.toMatch(/is retried|will retry/)
    expect(result.errorCode).toBe("AIOS_GAVE_UP")
    expect(p.classifyFailoverReason({ errorMessage: result.errorMessage!, code: result.errorCode, errorType: result.errorType }))
      .toBe("empty_response")
    expect(p.classifyFailoverReason({ errorMessage: result.errorMessage! })).toBe("empty_response")
  })

  it("with no retry of our own (retry.maxRetries 0), a rate limit keeps its reason: OpenClaw's retries apply", async () => {
    const p = provider({ retry: { delayMs: 0, maxRetries: 0 } })
    kernel.script({ _tag: "Status", statusCode: 429 })
    const { result } = await collect(p, "echo", user("x"))
    expect(result.errorMessage).not.toContain("Gave up")
    expect(result.errorCode).toBe("RATE_LIMIT_EXCEEDED")
    expect(p.classifyFailoverReason({ errorMessage: result.errorMessage!, code: result.errorCode, errorType: result.errorType }))
      .toBe("rate_limit")
    expect(kernel.count("/query")).toBe(1)
  })

  it("the kernel down: an error event naming the kernel URL and how to start it; OpenClaw falls back at once", async () => {
    const p = provider({ baseUrl: "http://127.0.0.1:9" })
    const { events, result } = await collect(p, "echo", user("x"))
    expect(events.map((e) => e.type)).toEqual(["start", "error"])
    expect(result.stopReason).toBe("error")
    expect(result.errorMessage).toContain("http://127.0.0.1:9")
    expect(result.errorMessage).toContain("Start it or set AIOS_URL / baseUrl.")
    expect(result.errorMessage).toContain("Gave up at once: nothing listens there")
    const reason = p.classifyFailoverReason({ errorMessage: result.errorMessage!, code: result.errorCode, errorType: result.errorType })
    expect(reason).toBe("empty_response")
    expect(p.classifyFailoverReason({ errorMessage: result.errorMessage! })).toBe(reason)
  })

  it("the kernel down under retry.onRefused \"retry\" and no retries: server_error, for OpenClaw to retry", async () => {
    const p = provider({ baseUrl: "http://127.0.0.1:9", retry: { onRefused: "retry", maxRetries: 0 } })
    const { result } = await collect(p, "echo", user("x"))
    expect(result.errorMessage).not.toContain("Gave up")
    expect(p.classifyFailoverReason({ errorMessage: result.errorMessage!, code: result.errorCode, errorType: result.errorType }))
      .toBe("server_error")
    expect(p.classifyFailoverReason({ errorMessage: result.errorMessage! })).toBe("server_error")
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

  it("an abort once `done` is out adds nothing: no second terminal event, the message stays as it ended", async () => {
    const p = provider()
    const controller = new AbortController()
    const stream = await p.createStreamFn({ provider: "aios", modelId: "echo" })(modelFor(p, "echo"), user("late"), {
      signal: controller.signal
    })
    const types: Array<string> = []
    for await (const e of stream) {
      types.push(e.type)
      if (e.type === "done") controller.abort()
    }
    expect(types).toEqual(["start", "text_start", "text_delta", "text_end", "done"])
    const result = await stream.result()
    expect(result.stopReason).toBe("stop")
    expect(result.errorMessage).toBeUndefined()
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
    providers.push(bad)
    const model = { id: "echo", api: "openai-completions", provider: "aios" } as Model
    const stream = bad.createStreamFn({ provider: "aios", modelId: "echo" })(model, user("x"), {})
    const result = await (await stream).result()
    expect(result.stopReason).toBe("error")
    expect(result.errorMessage).toContain("requestTimeoutMs = -1")
    const garbage = await collect(provider(), "echo", { messages: "nope" } as unknown as Context)
    expect(garbage.result.stopReason).toBe("error")
  })
})

const streamOf = (p: AiosProviderPlugin, model: Model, context: Context, options: unknown) =>
  p.createStreamFn({ provider: "aios", modelId: "echo" })(model, context, options as SimpleStreamOptions)

const drain = async (stream: AssistantMessageEventStreamLike | Promise<AssistantMessageEventStreamLike>) => {
  const events: Array<AssistantMessageEvent> = []
  for await (const e of await stream) events.push(e)
  return { events, result: await (await stream).result() }
}

describe("createStreamFn: calls the model made are OpenClaw's to judge", () => {
  const rmRf = "<function_calls>\n<invoke name=\"rm_rf\">\n<parameter name=\"path\">/tmp/x</parameter>\n</invoke>\n</function_calls>"

  it("a call to a tool the turn does not have reaches OpenClaw as a tool call; the text around it stays", async () => {
    kernel.script({ _tag: "Reply", text: `Deleting now.\n${rmRf}\nDone.` })
    const { events, result } = await collect(provider(), "tool-user", { ...user("clean up"), tools: [readTool] } as Context)
    expect(events.map((e) => e.type)).toEqual([
      "start",
      "text_start",
      "text_delta",
      "text_end",
      "toolcall_start",
      "toolcall_delta",
      "toolcall_end",
      "text_start",
      "text_delta",
      "text_end",
      "done"
    ])
    const end = events.find((e) => e.type === "toolcall_end") as Extract<AssistantMessageEvent, { type: "toolcall_end" }>
    expect(end.toolCall).toMatchObject({ type: "toolCall", name: "rm_rf", arguments: { path: "/tmp/x" } })
    expect(end.toolCall.id).toMatch(/^[A-Za-z0-9]+$/)
    expect(result.stopReason).toBe("toolUse")
    expect(result.content.filter((c) => c.type === "text").map((c) => (c.type === "text" ? c.text : "")).join(""))
      .toBe("Deleting now.\n\nDone.")
  })

  it("a reply that is only such a call is a tool call, not an empty reply", async () => {
    kernel.script({ _tag: "Reply", text: rmRf })
    const { events, result } = await collect(provider(), "tool-user", { ...user("clean up"), tools: [readTool] } as Context)
    expect(events.map((e) => e.type)).toEqual(["start", "toolcall_start", "toolcall_delta", "toolcall_end", "done"])
    expect(result.stopReason).toBe("toolUse")
    expect(result.content).toMatchObject([{ type: "toolCall", name: "rm_rf" }])
  })

  it("a block that names no tool goes back into the reply as text", async () => {
    kernel.script({ _tag: "Reply", text: "Look: <function_calls>\nnot a call\n</function_calls> ok" })
    const { result } = await collect(provider(), "tool-user", { ...user("x"), tools: [readTool] } as Context)
    expect(result.stopReason).toBe("stop")
    const text = result.content.map((c) => (c.type === "text" ? c.text : "")).join("")
    expect(text).toContain("Look: ")
    expect(text).toContain("not a call")
    expect(text).toContain(" ok")
  })
})

describe("createStreamFn: thinking", () => {
  let thinking: Handle
  beforeAll(async () => {
    thinking = await startReferenceKernel({
      models: [{ name: "thinker", behaviour: () => ({ reasoning: "plan it", text: "done", toolCalls: [] }) }]
    })
  })
  afterAll(() => thinking.close())

  const kinds = (events: ReadonlyArray<AssistantMessageEvent>) => events.map((e) => e.type)
  const expected = ["start", "thinking_start", "thinking_delta", "thinking_end", "text_start", "text_delta", "text_end", "done"]

  it("<think> in AIOS text and reasoning_content on /v1 become thinking events, then the text", async () => {
    for (const config of [{ baseUrl: thinking.url }, { backend: "openai-compatible" as const, baseUrl: `${thinking.url}/v1` }]) {
      const p = provider({ ...config, thinking: "events" })
      const { events, result } = await collect(p, "thinker", user("hi"))
      // /v1 streams the reasoning in pieces: one block, one start and end, any number of deltas.
      expect(kinds(events).filter((t, i, all) => t !== all[i - 1])).toEqual(expected)
      expect(result.content).toEqual([{ type: "thinking", thinking: "plan it" }, { type: "text", text: "done" }])
    }
  })

  it("thinking \"strip\" drops it; \"text\" keeps it in the text as <think>…</think>, on both backends", async () => {
    for (const config of [{ baseUrl: thinking.url }, { backend: "openai-compatible" as const, baseUrl: `${thinking.url}/v1` }]) {
      const stripped = await collect(provider({ ...config, thinking: "strip" }), "thinker", user("hi"))
      expect(stripped.result.content).toEqual([{ type: "text", text: "done" }])
      const kept = await collect(provider({ ...config, thinking: "text" }), "thinker", user("hi"))
      expect(kept.result.content).toEqual([{ type: "text", text: "<think>plan it</think>done" }])
    }
  })
})

describe("createStreamFn: careless callers", () => {
  const echo = { id: "echo", api: "openai-completions", provider: "aios" } as Model
  const hostile = new Proxy({}, {
    get: () => {
      throw new Error("hostile")
    }
  })
  const cases: ReadonlyArray<readonly [string, unknown, unknown, unknown, string]> = [
    ["a signal that is not an AbortSignal", echo, user("x"), { signal: {} }, "options.signal is not an AbortSignal"],
    ["a model without a string id", { api: "openai-completions" }, user("x"), {}, "model.id must be a model name"],
    ["a context without messages", echo, {}, {}, "context.messages must be an array"],
    ["messages that are not an array", echo, { messages: "nope" }, {}, "context.messages must be an array"],
    ["a getter that throws", echo, { get messages() { throw new Error("boom") } }, {}, "could not be read (boom)"],
    ["a hostile proxy for options", echo, user("x"), hostile, "could not be read (hostile)"]
  ]
  for (const [name, model, context, options, says] of cases) {
    it(`${name}: an invalid-request error event, and nothing is sent`, async () => {
      const p = provider()
      let stream: ReturnType<typeof streamOf> | undefined
      expect(() => (stream = streamOf(p, model as Model, context as Context, options))).not.toThrow()
      const { events, result } = await drain(stream!)
      expect(events.map((e) => e.type)).toEqual(["start", "error"])
      expect(result).toMatchObject({ stopReason: "error", errorCode: "AIOS_INVALID_REQUEST", errorType: "invalid_request_error" })
      expect(result.errorMessage).toContain(says)
      expect(p.classifyFailoverReason({ errorMessage: result.errorMessage!, code: result.errorCode, errorType: result.errorType }))
        .toBe("format")
      expect(kernel.requests()).toEqual([])
    })
  }
})

describe("createStreamFn: a failure after output", () => {
  it("is terminal for OpenClaw (PROVIDER_FAILURE_WITH_OUTPUT): replaying would repeat what was shown", async () => {
    const p = provider({ backend: "openai-compatible", baseUrl: `${kernel.url}/v1` })
    kernel.scriptEndpoint("/v1/chat/completions", { _tag: "StreamError", afterChunks: 2, statusCode: 503 })
    const { events, result } = await collect(p, "echo", user("hello kernel"))
    expect(events.map((e) => e.type)).toContain("text_delta")
    expect(events.at(-1)?.type).toBe("error")
    expect(result.errorCode).toBe("PROVIDER_FAILURE_WITH_OUTPUT")
    expect(result.errorType).toBe("overloaded_error")
    expect(kernel.count("/v1/chat/completions")).toBe(1)
  })
})

export type { AssistantMessage }
