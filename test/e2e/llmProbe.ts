/**
 * A tiny second plugin for the e2e tests: it calls `api.runtime.llm.complete` the way other plugins do, from a
 * CLI command it registers (`openclaw llmprobe`), the one way to run plugin code headless and once. It prints one
 * JSON line per call, with timestamps, so a test can see what the call returned and where the time went.
 */
import { deepMerge, type OpenClawHome, type RunResult, writeLocalPlugin } from "./openclawHarness.js"

/** The probe plugin's id (and its CLI command). */
export const PROBE_ID = "llmprobe"

const ENTRY = String.raw`
const now = () => Date.now()
export default {
  id: "llmprobe",
  name: "LLM probe",
  description: "Calls api.runtime.llm.complete for the effect-aios e2e tests.",
  register(api) {
    api.registerCli(({ program }) => {
      program
        .command("llmprobe")
        .description("Calls api.runtime.llm.complete and prints the results as JSON")
        .requiredOption("--models <refs>", "provider/model, comma-separated: called in turn")
        .option("--prompt <text>", "the user message", "Hello")
        .option("--count <n>", "how many rounds (one call per model each)", "1")
        .action(async (opts) => {
          const calls = []
          const started = now()
          const models = String(opts.models).split(",")
          for (let i = 0; i < Number(opts.count); i++) {
            for (const model of models) {
              const at = now()
              try {
                const r = await api.runtime.llm.complete({
                  model,
                  messages: [{ role: "user", content: opts.prompt }],
                  purpose: "effect-aios e2e"
                })
                calls.push({ requested: model, ok: true, at, ms: now() - at, text: r.text, stopReason: r.stopReason, provider: r.provider, model: r.model })
              } catch (error) {
                calls.push({ requested: model, ok: false, at, ms: now() - at, error: String(error && error.message || error), code: error && error.code })
              }
            }
          }
          process.stdout.write(JSON.stringify({ probe: "llmprobe", started, ended: now(), calls }) + "\n")
        })
    }, { descriptors: [{ name: "llmprobe", description: "Calls api.runtime.llm.complete", hasSubcommands: false }] })
  }
}
`

const MANIFEST = {
  id: PROBE_ID,
  name: "LLM probe",
  description: "Calls api.runtime.llm.complete for the effect-aios e2e tests.",
  version: "0.0.0",
  configSchema: { type: "object", properties: {}, additionalProperties: false },
  cliCommands: [{ name: PROBE_ID, description: "Calls api.runtime.llm.complete", hasSubcommands: false }],
  activation: { onCommands: [PROBE_ID] },
  commandAliases: [{ name: PROBE_ID, kind: "cli" }]
}

/**
 * Writes the probe plugin into `<home>/plugins/llmprobe` and loads it through the config (`plugins.load.paths`),
 * with the host policy that lets it name a model (`llm.allowModelOverride`).
 */
export const installProbe = async (home: OpenClawHome): Promise<string> => {
  const dir = await writeLocalPlugin(home, { id: PROBE_ID, entry: ENTRY, manifest: MANIFEST })
  await home.updateConfig((config) => {
    const plugins = (config["plugins"] ?? {}) as { load?: { paths?: Array<string> }; allow?: Array<string> }
    const paths = plugins.load?.paths ?? []
    const allow = plugins.allow ?? []
    return deepMerge(config, {
      plugins: {
        load: { paths: paths.includes(dir) ? paths : [...paths, dir] },
        allow: allow.includes(PROBE_ID) ? allow : [...allow, PROBE_ID],
        entries: { [PROBE_ID]: { enabled: true, llm: { allowModelOverride: true } } }
      }
    })
  })
  return dir
}

/** One `api.runtime.llm.complete` call as the probe saw it. */
export interface ProbeCall {
  /** The model asked for. */
  readonly requested: string
  /** The call resolved (a provider failure resolves too, as `stopReason: "error"`); false: it threw. */
  readonly ok: boolean
  /** When the call started (epoch ms, the OpenClaw process's clock). */
  readonly at: number
  readonly ms: number
  readonly text?: string
  readonly stopReason?: string
  readonly provider?: string
  readonly model?: string
  readonly error?: string
  readonly code?: string
}

/** What one `openclaw llmprobe` run gave. */
export interface ProbeRun {
  readonly calls: ReadonlyArray<ProbeCall>
  /** When the command's action started and ended (epoch ms); `undefined` when it printed nothing. */
  readonly started?: number
  readonly ended?: number
  readonly run: RunResult
  /** stdout + stderr, for log assertions. */
  readonly output: string
}

/** Runs `openclaw llmprobe --models <models> --prompt <prompt> --count <count>`: `count` rounds over `models`. */
export const probe = async (
  home: OpenClawHome,
  options: {
    readonly models: ReadonlyArray<string>
    readonly prompt?: string
    readonly count?: number
    readonly timeoutMs?: number
    readonly env?: Readonly<Record<string, string>>
  }
): Promise<ProbeRun> => {
  const run = await home.run(
    [PROBE_ID, "--models", options.models.join(","), "--prompt", options.prompt ?? "Hello", "--count", String(options.count ?? 1)],
    { timeoutMs: options.timeoutMs ?? 120_000, env: options.env }
  )
  const output = `${run.stdout}\n${run.stderr}`
  const line = run.stdout.split("\n").find((l) => l.startsWith("{\"probe\":\"llmprobe\""))
  const parsed = line === undefined
    ? undefined
    : (JSON.parse(line) as { readonly started: number; readonly ended: number; readonly calls: ReadonlyArray<ProbeCall> })
  return parsed === undefined
    ? { calls: [], run, output }
    : { calls: parsed.calls, started: parsed.started, ended: parsed.ended, run, output }
}
