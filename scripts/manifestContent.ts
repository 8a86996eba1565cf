import * as JSONSchema from "effect/JSONSchema"
import { readFileSync } from "node:fs"
import { AiosConfigSchema } from "../src/AiosConfig.js"
import { AUTH_ENV_VAR, PROVIDER_ID } from "../src/openclaw/models.js"

/** The plugin manifest, as it should be. */
export const manifest = () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
  return {
    id: PROVIDER_ID,
    name: "AIOS kernel (effect-aios)",
    description:
      "Routes OpenClaw model calls through the AIOS kernel (or an OpenAI-compatible endpoint) with typed errors, per-turn retries and tool calls as tags.",
    version: pkg.version,
    providers: [PROVIDER_ID],
    setup: { providers: [{ id: PROVIDER_ID, envVars: [AUTH_ENV_VAR] }] },
    providerAuthEnvVars: { [PROVIDER_ID]: [AUTH_ENV_VAR] },
    providerAuthChoices: [{
      provider: PROVIDER_ID,
      method: "local",
      choiceId: "aios-local",
      choiceLabel: "Local AIOS kernel (no key)",
      groupId: PROVIDER_ID,
      groupLabel: "AIOS"
    }],
    configSchema: JSONSchema.make(AiosConfigSchema)
  }
}
