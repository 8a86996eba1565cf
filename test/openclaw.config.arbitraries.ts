/**
 * Arbitrary OpenClaw config documents and setup inputs, for the pure edits (`openclaw.config.test.ts`) and the
 * `openclaw setup` / `remove` commands on files (`cliConfigFile.test.ts`).
 */
import * as fc from "fast-check"
import * as AiosConfig from "../src/AiosConfig.js"
import * as OpenClawConfig from "../src/openclaw/config.js"
import { providerEntry, rowFor } from "../src/openclaw/models.js"

// ---------------------------------------------------------------------------------------------------------------
// Arbitrary OpenClaw configs: the keys setup touches, in every shape (absent, present, of the wrong type), among
// unrelated keys.
// ---------------------------------------------------------------------------------------------------------------

export const PLUGIN_DIR = "/opt/plugins/effect-aios"

const leaf = fc.jsonValue({ maxDepth: 2 })
const extraKeys = fc.dictionary(fc.string({ maxLength: 6 }), leaf, { maxKeys: 2 })
/** An object with some of `shape`'s keys and a few unrelated ones. */
const withExtra = (shape: Record<string, fc.Arbitrary<unknown>>) =>
  fc.tuple(extraKeys, fc.record(shape, { requiredKeys: [] })).map(([extra, known]) => ({ ...extra, ...known }))
/** Mostly `arb`, sometimes any JSON value (the wrong type). */
const mostly = <A>(arb: fc.Arbitrary<A>) => fc.oneof({ weight: 8, arbitrary: arb }, { weight: 1, arbitrary: leaf })

const pluginsArb = withExtra({
  enabled: fc.boolean(),
  load: mostly(withExtra({
    paths: mostly(fc.array(fc.constantFrom(PLUGIN_DIR, `${PLUGIN_DIR}/`, "/srv/other-plugin", "~/plugins/x"), { maxLength: 3 }))
  })),
  entries: mostly(withExtra({
    aios: mostly(withExtra({
      enabled: fc.boolean(),
      config: fc.record({ baseUrl: fc.constantFrom("http://127.0.0.1:1234", "http://localhost:8000", "http://10.1.2.3:8000/") }, {
        requiredKeys: []
      })
    })),
    memory: leaf
  })),
  allow: mostly(fc.array(fc.constantFrom("aios", "discord", "memory"), { maxLength: 3 })),
  deny: fc.array(fc.constantFrom("discord", "memory"), { maxLength: 2 })
})
const modelsArb = withExtra({
  providers: mostly(withExtra({
    aios: mostly(withExtra({
      baseUrl: fc.constantFrom("http://127.0.0.1:9", "https://remote.example"),
      api: fc.constantFrom("openai-completions", "anthropic"),
      models: fc.array(leaf, { maxLength: 2 }),
      apiKey: fc.string({ maxLength: 4 })
    })),
    openai: leaf
  }))
})
const agentsArb = withExtra({
  defaults: mostly(withExtra({
    models: mostly(fc.dictionary(fc.constantFrom("aios/echo", "anthropic/claude", "openai/gpt", " "), fc.oneof(fc.constant({}), leaf), {
      maxKeys: 3
    })),
    modelPolicy: mostly(withExtra({
      allow: mostly(fc.array(fc.constantFrom("aios/echo", "aios/*", "openai/gpt", " "), { maxLength: 3 }))
    })),
    model: leaf
  }))
})
const metaArb = withExtra({ migrations: withExtra({ modelPolicyAllowlist: fc.boolean() }) })

/** An arbitrary config document. */
export const configArb: fc.Arbitrary<OpenClawConfig.JsonObject> = withExtra({
  plugins: mostly(pluginsArb),
  models: mostly(modelsArb),
  agents: mostly(agentsArb),
  meta: metaArb
})

/** What a setup run may write. */
export const inputArb: fc.Arbitrary<OpenClawConfig.SetupInput> = fc.record({
  baseUrl: fc.constantFrom("http://127.0.0.1:1234", "http://localhost:8000", "http://10.1.2.3:8000"),
  models: fc.uniqueArray(fc.constantFrom("echo", "tool-user", "claude.v2", "__proto__"), { minLength: 1, maxLength: 3 }),
  loopback: fc.boolean()
}).map(({ baseUrl, loopback, models }) => ({
  pluginDir: PLUGIN_DIR,
  baseUrl,
  defaultBaseUrl: AiosConfig.defaults.baseUrl,
  // The command offers the loopback entry only for a loopback URL.
  provider: loopback && OpenClawConfig.isLoopbackUrl(baseUrl)
    ? providerEntry(baseUrl, models.map((m) => rowFor({ models: {} }, m)))
    : undefined,
  models,
  home: "/home/someone"
}))
