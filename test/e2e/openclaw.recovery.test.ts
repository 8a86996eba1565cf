/**
 * Failures a user meets in a real OpenClaw, and how the turn recovers: a model calling a tool that does not exist
 * (OpenClaw answers "not found" and the model corrects itself), a kernel that is down, and a kernel that keeps
 * rate-limiting — both with a fallback model configured, which must answer after one attempt of ours, not after
 * OpenClaw's own retries on top of ours.
 *
 * The fallback is OpenClaw's built-in `openai-completions` transport on the reference kernel's `/v1`. Fallback
 * turns run `agent --local` on the config's `agents.defaults.model` (OpenClaw falls back on its own only there),
 * and read OpenClaw's log for when each step happened; the times are printed for the report, not asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { ChatMessage, ModelReply } from "../../src/testing/internal/models.js"
import { toolUser } from "../../src/testing/internal/models.js"
import { defaultModels, type Handle, startReferenceKernel } from "../../src/testing/ReferenceKernel.js"
import { deadUrl } from "../util.js"
import {
  addLocalProvider,
  agentTurn,
  deepMerge,
  ensureOpenClaw,
  installPlugin,
  makeOpenClawHome,
  type OpenClawHome
} from "./openclawHarness.js"
import { events, type LogEntry, readLog, secondsBetween } from "./openclawLog.js"
import { stagePlugin, type StagedPlugin } from "./stagePlugin.js"

/** Results of tools in the conversation so far (the AIOS wire renders them as `<result … name="…">` tags). */
const resultsOf = (messages: ReadonlyArray<ChatMessage>, tool: string): ReadonlyArray<string> =>
  messages
    .filter((m) => m.role !== "system")
    .flatMap((m) => [...(m.content ?? "").matchAll(/<result\b([^>]*)>([\s\S]*?)<\/result>/g)])
    .filter((r) => new RegExp(`\\bname="${tool}"`).test(r[1] ?? ""))
    .map((r) => r[2] ?? "")

/**
 * A model that first calls a tool the agent does not have (`rm_rf`), then, once OpenClaw's answer to that is in
 * the conversation, reads `notes.txt`, then quotes what it read.
 */
const fixer = (messages: ReadonlyArray<ChatMessage>): ModelReply => {
  const read = resultsOf(messages, "read")
  if (read.length > 0) return { text: `The notes say: ${read.join("\n").trim()}`, toolCalls: [] }
  if (resultsOf(messages, "rm_rf").length > 0) {
    // The read call exactly as the tool-using model writes it for the tools this request offers.
    return toolUser([...messages.filter((m) => m.role === "system"), { role: "user", content: "Use read to open notes.txt" }], [])
  }
  return {
    text: [
      "Cleaning up first.",
      "<function_calls>",
      "<invoke name=\"rm_rf\">",
      "<parameter name=\"path\">/tmp/everything</parameter>",
      "</invoke>",
      "</function_calls>"
    ].join("\n"),
    toolCalls: []
  }
}

let kernel: Handle
let home: OpenClawHome
let staged: StagedPlugin

const PLUGIN_CONFIG = { retry: { delayMs: 100 } }

/** Replaces `plugins.entries.aios.config` (the plugin reads it afresh in each OpenClaw process). */
const setPluginConfig = (config: Record<string, unknown>) =>
  home.updateConfig((c) => {
    const plugins = (c["plugins"] ?? {}) as { entries?: Record<string, Record<string, unknown>> }
    const entries = plugins.entries ?? {}
    return { ...c, plugins: { ...plugins, entries: { ...entries, aios: { ...entries["aios"], config } } } }
  })

beforeAll(async () => {
  staged = await stagePlugin()
  const install = await ensureOpenClaw()
  kernel = await startReferenceKernel({ models: [...defaultModels, { name: "fixer", behaviour: fixer }] })
  // Debug level: OpenClaw then logs each run's start and each model request, with times.
  home = await makeOpenClawHome({ install, env: { AIOS_API_KEY: "local" }, config: { logging: { level: "debug" } } })
  await installPlugin(home, staged.pluginDir, { via: "config", config: { baseUrl: kernel.url, ...PLUGIN_CONFIG } })
  await addLocalProvider(home, { provider: "ref", baseUrl: `${kernel.url}/v1`, models: ["echo"] })
  await home.updateConfig((c) => deepMerge(c, { agents: { defaults: { model: { primary: "aios/echo", fallbacks: ["ref/echo"] } } } }))
})

afterAll(async () => {
  await home?.cleanup()
  await kernel?.close()
  await staged?.cleanup()
})

const requestText = (body: unknown): string =>
  ((body as { query_data?: { messages?: Array<{ content?: string }> } }).query_data?.messages ?? [])
    .map((m) => m.content ?? "")
    .join("\n")

/** The steps of a turn that fell back, from OpenClaw's log. */
const fallbackSteps = (log: ReadonlyArray<LogEntry>) => {
  const attemptStart = log.find((e) => /embedded run prompt start: .*provider=aios\b/.test(e.message))
  const attemptEnd = events(log, "embedded_run_agent_end").find((e) => e.fields["provider"] === "aios")
  const decisions = events(log, "embedded_run_failover_decision").filter((e) => e.fields["provider"] === "aios")
  const answered = events(log, "model_fallback_decision").find((e) => e.fields["decision"] === "candidate_succeeded")
  return { attemptStart, attemptEnd, decisions, answered }
}

const report = (label: string, steps: ReturnType<typeof fallbackSteps>, durationMs: number) =>
  console.log(
    `${label}: aios attempt ${secondsBetween(steps.attemptStart, steps.attemptEnd)?.toFixed(2)} s, ` +
      `then fallback answered after ${secondsBetween(steps.attemptEnd, steps.answered)?.toFixed(2)} s ` +
      `(first attempt to fallback answer ${secondsBetween(steps.attemptStart, steps.answered)?.toFixed(2)} s; ` +
      `whole command ${(durationMs / 1000).toFixed(1)} s)`
  )

describe("recovery in a real OpenClaw", () => {
  it("a call to an unknown tool gets OpenClaw's \"not found\", the model corrects itself, the valid call's result ends the turn", async () => {
    kernel.reset()
    const workspace = await fs.mkdtemp(path.join(home.home, "ws-"))
    const secret = `the launch code is ${Math.random().toString(36).slice(2, 10)}`
    await fs.writeFile(path.join(workspace, "notes.txt"), `${secret}\n`)
    const result = await agentTurn(home, { model: "aios/fixer", message: "Tidy up, then tell me what notes.txt says.", cwd: workspace, timeoutMs: 150_000 })
    const queries = kernel.requests("/query").map((r) => requestText(r.body))
    expect(queries.length, result.stderr).toBeGreaterThanOrEqual(3)
    // The second request carried OpenClaw's answer to the unknown call, linked to it; the third, the file.
    expect(queries[1]).toMatch(/<result\b[^>]*name="rm_rf"[^>]*>[\s\S]*not found[\s\S]*?<\/result>/i)
    expect(queries[1]).toContain("Cleaning up first.")
    expect(queries[2]).toMatch(/<result\b[^>]*name="read"/)
    expect(result.error).toBeUndefined()
    expect(result.text).toContain(secret)
  })

  it("the kernel is down: the fallback model answers after one failed attempt, and the reason names the kernel", async () => {
    kernel.reset()
    const url = await deadUrl()
    await setPluginConfig({ baseUrl: url, ...PLUGIN_CONFIG })
    try {
      const since = Date.now()
      const result = await agentTurn(home, { mode: "local", sessionId: `dead-${since}`, message: "Hello from a dead kernel", timeoutMs: 150_000 })
      expect(result.error).toBeUndefined()
      expect(result.text).toContain("Hello from a dead kernel")
      expect(kernel.count("/query")).toBe(0)
      expect(kernel.count("/v1/chat/completions")).toBe(1)
      const steps = fallbackSteps(await readLog(home, since))
      // One attempt, no same-model retries by OpenClaw, then the fallback.
      expect(steps.decisions).toHaveLength(1)
      expect(steps.decisions[0]?.fields).toMatchObject({ decision: "fallback_model", retryCount: 0 })
      expect(String(steps.attemptEnd?.fields["rawErrorPreview"])).toContain(url)
      expect(steps.answered?.fields).toMatchObject({ candidateProvider: "ref", candidateModel: "echo" })
      report("dead kernel", steps, result.durationMs)
    } finally {
      await setPluginConfig({ baseUrl: kernel.url, ...PLUGIN_CONFIG })
    }
  })

  it("a persistent 429: our retry budget once, then the fallback; OpenClaw does not retry it again", async () => {
    kernel.reset()
    const maxRetries = 2
    await setPluginConfig({ baseUrl: kernel.url, retry: { maxRetries, delayMs: 100 } })
    // Far more rate limits than our budget: were OpenClaw to retry the model too, it would meet them.
    kernel.script(...Array.from({ length: 40 }, () => ({ _tag: "Status", statusCode: 429 }) as const))
    try {
      const since = Date.now()
      const result = await agentTurn(home, { mode: "local", sessionId: `rl-${since}`, message: "Hello from a busy kernel", timeoutMs: 170_000 })
      expect(result.error).toBeUndefined()
      expect(result.text).toContain("Hello from a busy kernel")
      expect(kernel.count("/query")).toBe(maxRetries + 1)
      expect(kernel.count("/v1/chat/completions")).toBe(1)
      const steps = fallbackSteps(await readLog(home, since))
      expect(steps.decisions).toHaveLength(1)
      expect(steps.decisions[0]?.fields).toMatchObject({ decision: "fallback_model", retryCount: 0 })
      expect(String(steps.attemptEnd?.fields["rawErrorPreview"])).toMatch(/429/)
      expect(steps.answered?.fields).toMatchObject({ candidateProvider: "ref", candidateModel: "echo" })
      report("persistent 429", steps, result.durationMs)
    } finally {
      await setPluginConfig({ baseUrl: kernel.url, ...PLUGIN_CONFIG })
    }
  })
})
