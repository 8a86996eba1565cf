/**
 * The floor of a provider plugin in OpenClaw: a plugin with one provider (`floor`) that has no code of its own
 * on the call path. Its `resolveDynamicModel` points OpenClaw's built-in `openai-completions` transport at a
 * `/v1` URL, so a call through `floor/<model>` costs what OpenClaw spends on any provider plugin (an instance
 * started and disposed per `api.runtime.llm.complete` call) plus the built-in transport, and nothing else.
 * The bench sets `aios/*` beside it and beside the built-in provider itself, to show whose the time is.
 */
import { installPlugin, type OpenClawHome, writeLocalPlugin } from "./openclawHarness.js"

/** The floor plugin's id and provider id. */
export const FLOOR_ID = "floor"

/** The variable its auth is read from, as for `aios`: the home's environment must set it (any value). */
export const FLOOR_KEY_VAR = "FLOOR_API_KEY"

const ENTRY = String.raw`
export default {
  id: "floor",
  name: "Provider plugin floor",
  description: "A provider with no code on the call path: OpenClaw's built-in transport does the call.",
  register(api) {
    const baseUrl = String(api.pluginConfig?.baseUrl ?? "")
    api.registerProvider({
      id: "floor",
      label: "Floor",
      docsPath: "/providers/floor",
      envVars: ["FLOOR_API_KEY"],
      auth: [],
      resolveDynamicModel: (ctx) => ({
        id: ctx.modelId,
        name: ctx.modelId,
        provider: "floor",
        api: "openai-completions",
        baseUrl,
        reasoning: false,
        input: ["text"],
        cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
        contextWindow: 128000,
        maxTokens: 4096
      })
    })
  }
}
`

const MANIFEST = {
  id: FLOOR_ID,
  name: "Provider plugin floor",
  description: "A provider with no code on the call path, for the effect-aios bench.",
  version: "0.0.0",
  providers: [FLOOR_ID],
  setup: { providers: [{ id: FLOOR_ID, envVars: [FLOOR_KEY_VAR] }] },
  providerAuthEnvVars: { [FLOOR_ID]: [FLOOR_KEY_VAR] },
  configSchema: { type: "object", properties: { baseUrl: { type: "string" } }, additionalProperties: false }
}

/** Writes the floor plugin into `<home>/plugins/floor` and loads it with `baseUrl` (an OpenAI-compatible `/v1`). */
export const installFloorPlugin = async (home: OpenClawHome, baseUrl: string): Promise<void> => {
  const dir = await writeLocalPlugin(home, { id: FLOOR_ID, entry: ENTRY, manifest: MANIFEST, providers: [FLOOR_ID] })
  await installPlugin(home, dir, { via: "config", config: { baseUrl } })
}
