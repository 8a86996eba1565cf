/**
 * The plugin in a real OpenClaw (the e2e install), rows of ratios within one run:
 * - `api.runtime.llm.complete` from another plugin on `aios/echo` vs on OpenClaw's built-in `openai-completions`
 *   transport pointing at the same reference kernel's `/v1` (p50 of per-call times inside one OpenClaw process,
 *   calls interleaved, the first round dropped as warm-up). OpenClaw starts a fresh plugin instance per call, so
 *   the same calls also go through `floor/echo`, a provider plugin with no code on the call path (OpenClaw's own
 *   transport does the call: test/e2e/floorPlugin.ts): floor vs built-in is what any provider plugin costs in
 *   OpenClaw, aios vs floor what is ours.
 * - a turn whose kernel is down vs a turn whose kernel answers 401, each falling back to that built-in model: the
 *   time from the first attempt's start to the fallback's answer, read from OpenClaw's log (median of n).
 * These spawn OpenClaw processes (~15–25 s each): `OPENCLAW_BENCH_N` (default 10 calls, 3 turns) keeps them few.
 */
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { installProbe, probe } from "../test/e2e/llmProbe.js"
import { FLOOR_KEY_VAR, installFloorPlugin } from "../test/e2e/floorPlugin.js"
import { addLocalProvider, agentTurn, deepMerge, ensureOpenClaw, installPlugin, makeOpenClawHome, type OpenClawHome } from "../test/e2e/openclawHarness.js"
import { events, readLog } from "../test/e2e/openclawLog.js"
import { stagePlugin } from "../test/e2e/stagePlugin.js"
import { deadUrl } from "../test/util.js"
import { percentile, type BenchRow } from "./util.js"

const CALLS = Number(process.env["OPENCLAW_BENCH_N"] ?? 10)
const TURNS = Math.max(1, Math.round(CALLS * 0.3))

const setPluginConfig = (home: OpenClawHome, config: Record<string, unknown>) =>
  home.updateConfig((c) => {
    const plugins = (c["plugins"] ?? {}) as { entries?: Record<string, Record<string, unknown>> }
    const entries = plugins.entries ?? {}
    return { ...c, plugins: { ...plugins, entries: { ...entries, aios: { ...entries["aios"], config } } } }
  })

/** One fallback turn: seconds from the aios attempt's start to the fallback's answer, from OpenClaw's log. */
const fallbackTurn = async (home: OpenClawHome, label: string): Promise<number> => {
  const since = Date.now()
  const turn = await agentTurn(home, { mode: "local", sessionId: `${label}-${since}`, message: `Hello (${label})`, timeoutMs: 200_000 })
  if (!turn.ok) throw new Error(`${label} turn failed: ${turn.error?.message}`)
  const log = await readLog(home, since)
  const start = log.find((e) => /embedded run prompt start: .*provider=aios\b/.test(e.message))
  const answered = events(log, "model_fallback_decision").find((e) => e.fields["decision"] === "candidate_succeeded")
  if (start === undefined || answered === undefined) throw new Error(`${label}: the log lacks the attempt or the fallback`)
  return answered.time - start.time
}

export const run = async (): Promise<Array<BenchRow>> => {
  const staged = await stagePlugin()
  const install = await ensureOpenClaw()
  const kernel = await startReferenceKernel()
  const home = await makeOpenClawHome({ install, env: { AIOS_API_KEY: "local", [FLOOR_KEY_VAR]: "local" }, config: { logging: { level: "debug" } } })
  try {
    await installPlugin(home, staged.pluginDir, { via: "config", config: { baseUrl: kernel.url } })
    await installProbe(home)
    await installFloorPlugin(home, `${kernel.url}/v1`)
    await addLocalProvider(home, { provider: "ref", baseUrl: `${kernel.url}/v1`, models: ["echo"] })
    await home.updateConfig((c) => deepMerge(c, { agents: { defaults: { model: { primary: "aios/echo", fallbacks: ["ref/echo"] } } } }))

    const calls = await probe(home, { models: ["aios/echo", "floor/echo", "ref/echo"], prompt: "Say hi", count: CALLS + 1, timeoutMs: 300_000 })
    const times = (model: string) => {
      const mine = calls.calls.filter((c) => c.requested === model)
      if (mine.length !== CALLS + 1 || mine.some((c) => !c.ok || c.stopReason !== "stop")) {
        throw new Error(`llm.complete on ${model} failed: ${JSON.stringify(mine)}\n${calls.output.slice(-2000)}`)
      }
      return mine.slice(1).map((c) => c.ms)
    }
    const aios = times("aios/echo")
    const floor = times("floor/echo")
    const builtIn = times("ref/echo")
    const p50 = (xs: ReadonlyArray<number>) => percentile(xs, 50)
    const llmRatio = p50(aios) / p50(builtIn)
    const floorRatio = p50(floor) / p50(builtIn)
    const oursRatio = p50(aios) / p50(floor)

    const dead = await deadUrl()
    const deadTimes: Array<number> = []
    const authTimes: Array<number> = []
    for (let i = 0; i < TURNS; i++) {
      await setPluginConfig(home, { baseUrl: dead })
      deadTimes.push(await fallbackTurn(home, "dead"))
      await setPluginConfig(home, { baseUrl: kernel.url })
      kernel.reset()
      kernel.script({ _tag: "Status", statusCode: 401 })
      authTimes.push(await fallbackTurn(home, "auth"))
    }
    const fallbackRatio = percentile(deadTimes, 50) / percentile(authTimes, 50)
    const list = (xs: ReadonlyArray<number>) => xs.map((x) => x.toFixed(0)).join("/")
    return [
      {
        name: "OpenClaw llm.complete aios/* vs built-in /v1 (p50)",
        ratio: llmRatio,
        target: "≤ 1.5× built-in",
        pass: llmRatio <= 1.5,
        detail: `aios p50 ${p50(aios).toFixed(0)} ms (${list(aios)}), built-in p50 ${p50(builtIn).toFixed(0)} ms (${
          list(builtIn)
        }), n=${CALLS}, fresh plugin instance per call; a provider plugin with no code (floor) is ${
          floorRatio.toFixed(2)
        }× built-in: that much is OpenClaw's`
      },
      {
        name: "OpenClaw llm.complete aios/* vs a provider plugin with no code (p50)",
        ratio: oursRatio,
        target: "≤ 1.3× the floor",
        pass: oursRatio <= 1.3,
        detail: `aios p50 ${p50(aios).toFixed(0)} ms, floor p50 ${p50(floor).toFixed(0)} ms (${list(floor)}): ${
          (p50(aios) - p50(floor)).toFixed(0)
        } ms per call are ours (our runtime's set-up, the model list, the turn, the larger plugin folder to copy)`
      },
      {
        name: "OpenClaw dead kernel vs 401: first attempt to fallback answer",
        ratio: fallbackRatio,
        target: "≤ 2× the 401 turn",
        pass: fallbackRatio <= 2,
        detail: `dead p50 ${percentile(deadTimes, 50).toFixed(0)} ms (${list(deadTimes)}), 401 p50 ${
          percentile(authTimes, 50).toFixed(0)
        } ms (${list(authTimes)}), n=${TURNS}`
      }
    ]
  } finally {
    await home.cleanup()
    await kernel.close()
    await staged.cleanup()
  }
}
