/**
 * The plugin in a real OpenClaw (the pinned version, installed in an isolated folder), headless, against the
 * reference kernel on a loopback port. Each turn is a separate `openclaw agent exec` process, bounded. The plugin
 * is the packed package's bundled folder, installed the user's way (`openclaw plugins install -l`). Failures and
 * fallbacks: openclaw.recovery.test.ts; other plugins' `api.runtime.llm.complete`: openclaw.runtimeLlm.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { type Handle, startReferenceKernel } from "../../src/testing/ReferenceKernel.js"
import {
  agentTurn,
  ensureOpenClaw,
  installPlugin,
  makeOpenClawHome,
  type OpenClawHome,
  type OpenClawInstall,
  runProcess
} from "./openclawHarness.js"
import { stagePlugin, type StagedPlugin } from "./stagePlugin.js"

const projectRoot = path.resolve(import.meta.dirname, "../..")

let install: OpenClawInstall
let kernel: Handle
let home: OpenClawHome

/** Replaces `plugins.entries.aios.config` (the plugin reads it afresh in each OpenClaw process). */
const setPluginConfig = (config: Record<string, unknown>) =>
  home.updateConfig((c) => {
    const plugins = (c.plugins ?? {}) as { entries?: Record<string, Record<string, unknown>> }
    const entries = plugins.entries ?? {}
    return { ...c, plugins: { ...plugins, entries: { ...entries, aios: { ...entries.aios, config } } } }
  })

let staged: StagedPlugin
let pluginDir: string

beforeAll(async () => {
  staged = await stagePlugin()
  pluginDir = staged.pluginDir
  install = await ensureOpenClaw()
  kernel = await startReferenceKernel()
  // One documented step authorizes the provider for agent turns: the env var named in the manifest.
  home = await makeOpenClawHome({ install, env: { AIOS_API_KEY: "local" } })
  await installPlugin(home, pluginDir, { via: "cli", config: { baseUrl: kernel.url, retry: { delayMs: 200 } } })
})

afterAll(async () => {
  await home?.cleanup()
  await kernel?.close()
  await staged?.cleanup()
})

const turn = (model: string, message: string, cwd?: string) =>
  agentTurn(home, { model, message, timeoutMs: 150_000, ...(cwd !== undefined ? { cwd } : {}) })

describe("effect-aios in a real OpenClaw", () => {
  it("the provider type-checks against OpenClaw's own ProviderPlugin and plugin entry types", async () => {
    const dir = path.join(install.dir, "contract")
    await fs.mkdir(dir, { recursive: true })
    const entry = path.join(projectRoot, "dist/openclaw/index.js")
    await fs.writeFile(
      path.join(dir, "check.ts"),
      [
        `import type { OpenClawPluginApi, ProviderPlugin } from "openclaw/plugin-sdk/plugin-entry"`,
        `import plugin, { makeAiosProvider } from ${JSON.stringify(entry)}`,
        `export const provider: ProviderPlugin = makeAiosProvider()`,
        `export const register: (api: OpenClawPluginApi) => void = plugin.register`,
        ``
      ].join("\n")
    )
    const tsc = spawnSync(
      install.nodeBin,
      [
        path.join(projectRoot, "node_modules/typescript/bin/tsc"),
        "--noEmit",
        "--strict",
        "--skipLibCheck",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--target",
        "es2023",
        path.join(dir, "check.ts")
      ],
      { encoding: "utf8", timeout: 120_000 }
    )
    expect(`${tsc.stdout}${tsc.stderr}`).toBe("")
    expect(tsc.status).toBe(0)
  })

  it("a plain question: the kernel's answer is the reply", async () => {
    kernel.reset()
    kernel.script({ _tag: "Reply", text: "Paris is the capital of France." })
    const result = await turn("aios/echo", "What is the capital of France?")
    expect(result.error).toBeUndefined()
    expect(result.text).toBe("Paris is the capital of France.")
    const [request] = kernel.requests("/query")
    const messages = (request?.body as { query_data: { messages: Array<{ content: string }> } }).query_data.messages
    expect(messages.some((m) => m.content.includes("What is the capital of France?"))).toBe(true)
    expect(kernel.count("/core/llms/list")).toBeLessThanOrEqual(1)
  })

  it("a tool round trip: the model calls read, OpenClaw runs it, the result comes back, the reply quotes the file", async () => {
    kernel.reset()
    const workspace = await fs.mkdtemp(path.join(home.home, "ws-"))
    const secret = `the launch code is ${Math.random().toString(36).slice(2, 10)}`
    await fs.writeFile(path.join(workspace, "notes.txt"), `${secret}\n`)
    const result = await turn("aios/tool-user", "Use read to open notes.txt and tell me what it says.", workspace)
    expect(result.error).toBeUndefined()
    expect(result.text).toContain(secret)
    const queries = kernel.requests("/query").map((r) =>
      (r.body as { query_data: { messages: Array<{ role: string; content: string }> } }).query_data.messages
    )
    expect(queries.length).toBeGreaterThanOrEqual(2)
    // The first request offered the tools; the second carried the tool result, linked to the call.
    expect(queries[0]![0]!.content).toContain("<tool name=\"read\">")
    const second = queries[1]!.map((m) => m.content).join("\n")
    expect(second).toContain("<function_calls>")
    expect(second).toMatch(/<result tool_call_id="[A-Za-z0-9]+" name="read"/)
    expect(second).toContain(secret)
  })

  it("the kernel rate-limits twice, then answers: the turn succeeds", async () => {
    kernel.reset()
    kernel.script({ _tag: "Status", statusCode: 429 }, { _tag: "Status", statusCode: 429 }, {
      _tag: "Reply",
      text: "Answered after two rate limits."
    })
    const result = await turn("aios/echo", "Are you there?")
    expect(result.error).toBeUndefined()
    expect(result.text).toBe("Answered after two rate limits.")
    expect(kernel.count("/query")).toBe(3)
  })

  it("a turn through the OpenAI-compatible /v1 backend streams its reply", async () => {
    kernel.reset()
    await setPluginConfig({ backend: "openai-compatible", baseUrl: `${kernel.url}/v1` })
    try {
      const result = await turn("aios/echo", "Stream this sentence back to me.")
      expect(result.error).toBeUndefined()
      expect(result.text).toContain("Stream this sentence back to me.")
      const [request] = kernel.requests("/v1/chat/completions")
      expect(request?.body).toMatchObject({ stream: true, model: "echo" })
    } finally {
      await setPluginConfig({ baseUrl: kernel.url, retry: { delayMs: 200 } })
    }
  })

  it("agent --local, authorized by `effect-aios openclaw setup` alone (no env var), in a fresh home", async () => {
    kernel.reset()
    const fresh = await makeOpenClawHome({ install })
    try {
      // Async: the reference kernel answers from this process, so its event loop must keep running.
      const cli = await runProcess(
        install.nodeBin,
        [
          path.join(projectRoot, "dist/cli/main.js"),
          "openclaw",
          "setup",
          "--config",
          fresh.configPath,
          "--url",
          kernel.url,
          "--plugin-dir",
          pluginDir
        ],
        { cwd: projectRoot, timeoutMs: 120_000, env: { ...fresh.env } }
      )
      expect(cli.stderr).not.toMatch(/at .+\.js:\d+/)
      expect(`exit ${cli.code}: ${cli.stdout}${cli.stderr}`).toMatch(/^exit 0: /)
      kernel.script({ _tag: "Reply", text: "Set up in one command." })
      const result = await agentTurn(fresh, { mode: "local", model: "aios/echo", message: "Hello from --local", timeoutMs: 150_000 })
      expect(result.error).toBeUndefined()
      expect(result.text).toBe("Set up in one command.")
    } finally {
      await fresh.cleanup()
    }
  })
})
