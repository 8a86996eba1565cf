/**
 * Another plugin calling `api.runtime.llm.complete({ model: "aios/<m>" })` in a real OpenClaw, headless: the probe
 * plugin's CLI command (test/e2e/llmProbe.ts). OpenClaw starts a fresh `aios` plugin instance for every such call
 * and disposes it afterwards, so these calls also prove that nothing of ours outlives a call.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Handle, startReferenceKernel } from "../../src/testing/ReferenceKernel.js"
import { installProbe, probe } from "./llmProbe.js"
import { addLocalProvider, ensureOpenClaw, installPlugin, makeOpenClawHome, type OpenClawHome } from "./openclawHarness.js"
import { readLog } from "./openclawLog.js"
import { stagePlugin, type StagedPlugin } from "./stagePlugin.js"

let kernel: Handle
let home: OpenClawHome
let staged: StagedPlugin

beforeAll(async () => {
  staged = await stagePlugin()
  const install = await ensureOpenClaw()
  kernel = await startReferenceKernel()
  home = await makeOpenClawHome({ install, env: { AIOS_API_KEY: "local" } })
  await installPlugin(home, staged.pluginDir, { via: "config", config: { baseUrl: kernel.url, retry: { delayMs: 100 } } })
  await installProbe(home)
  // The same kernel through OpenClaw's built-in transport: the baseline a user compares with.
  await addLocalProvider(home, { provider: "ref", baseUrl: `${kernel.url}/v1`, models: ["echo"] })
})

afterAll(async () => {
  await home?.cleanup()
  await kernel?.close()
  await staged?.cleanup()
})

describe("api.runtime.llm.complete on aios/* from another plugin", () => {
  it("answers; a 429 is retried by our schedule; a 401 is a clean error with our reason in the log; nothing outlives a call", async () => {
    kernel.reset()
    // One /query fault per request, in order: call 1 answers, call 2 is rate-limited once then answers, call 3 is
    // refused (the real kernel reports both inside an HTTP 200 body). The built-in side (/v1) is not scripted.
    kernel.script(
      { _tag: "Delay", ms: 0 },
      { _tag: "Status", statusCode: 429 },
      { _tag: "Delay", ms: 0 },
      { _tag: "Status", statusCode: 401 }
    )
    const since = Date.now()
    const run = await probe(home, { models: ["aios/echo", "ref/echo"], prompt: "Say hi", count: 3 })
    expect(run.run.code, run.output).toBe(0)
    const ours = run.calls.filter((c) => c.requested === "aios/echo")
    const builtIn = run.calls.filter((c) => c.requested === "ref/echo")
    expect(ours).toHaveLength(3)
    expect(ours[0]).toMatchObject({ ok: true, text: "Say hi", stopReason: "stop", provider: "aios", model: "echo" })
    expect(ours[1]).toMatchObject({ ok: true, text: "Say hi", stopReason: "stop" })
    // What OpenClaw gives a caller for any provider's failure.
    expect(ours[2]).toMatchObject({ ok: true, text: "", stopReason: "error" })
    expect(kernel.count("/query")).toBe(4)
    // At most one list fetch per fresh plugin instance.
    expect(kernel.count("/core/llms/list")).toBeLessThanOrEqual(3)
    for (const call of builtIn) expect(call).toMatchObject({ ok: true, text: "Say hi", stopReason: "stop", provider: "ref" })

    // The reason is not lost: ours, in the command's output and in OpenClaw's log.
    expect(run.output).toMatch(/\[aios\] aios\/echo failed: .*401/)
    expect(run.output).toContain(kernel.url)
    const log = await readLog(home, since)
    expect(log.some((e) => /aios\/echo failed: .*401/.test(e.message))).toBe(true)
    expect(log.some((e) => /Retrying turn .* \(rate_limit, retry 1\)/.test(e.message))).toBe(true)

    // Each call's plugin instance was disposed in time: no forced retirement, nothing still running.
    expect(run.output).not.toContain("forced retirement")
    expect(log.some((e) => /forced retirement|still-running call/.test(e.message))).toBe(false)
    console.log(
      `llm.complete per call (ms): aios/echo ${ours.map((c) => c.ms).join(", ")} (ok, 429 + retry, 401); ` +
        `built-in ref/echo ${builtIn.map((c) => c.ms).join(", ")}; command ${run.run.durationMs} ms`
    )
  })
})
